"""Simulated scanner and hospital shift: transforms of CT slices that another site might give.

Another hospital's slices differ from IQ-OTH/NCCD's in how they were windowed, exported and
framed. :func:`simulate` draws, for each slice, one random combination of:

* **window and level**: grey levels ``v`` become ``(v - low) / (high - low)``, clipped, with
  ``low`` in [-0.35, 0.15] and ``high`` in [0.75, 1.25] (in units of the 0-255 range): a
  negative ``low`` lifts black (a wider window shows lungs grey), a ``high`` under 1
  saturates bone;
* **contrast** about the slice's mean, factor in [0.7, 1.3], and **gamma** in [0.5, 2.0];
* **noise** (Gaussian, sd up to 6 grey levels) and **blur** (Gaussian, sd up to 1.5 pixels);
* **framing**: the body's box (:func:`~lungct_utils.images.body_box`) plus a margin in
  [0, 0.25] of its side, cut out and resized back to the square (another site frames the
  body tighter or looser), then a **zoom** in [0.9, 1.15] and a **shift** of up to 6% of the
  side.

The ranges are a rule written down before any external image was scored; they are not
tuned on any external set. Each slice draws from a generator seeded by the run's seed and
its own pixels, so a view is identical for the same seed and slice, whatever the batch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from .images import body_box, pixel_key, resize_rgb

#: The ranges of :func:`draw` (see the module docstring).
LOW = (-0.35, 0.15)
HIGH = (0.75, 1.25)
CONTRAST = (0.7, 1.3)
GAMMA = (0.5, 2.0)
NOISE_SD = (0.0, 6.0)
BLUR_SD = (0.0, 1.5)
MARGIN = (0.0, 0.25)
ZOOM = (0.9, 1.15)
SHIFT = 0.06


def draw(rng: np.random.Generator) -> dict:
    """One random set of transform parameters.

    Args:
        rng: the generator of one slice.

    Returns:
        ``low, high, contrast, gamma, noise_sd, blur_sd, margin, zoom, dx, dy``.
    """
    return {
        "low": rng.uniform(*LOW),
        "high": rng.uniform(*HIGH),
        "contrast": rng.uniform(*CONTRAST),
        "gamma": float(np.exp(rng.uniform(*np.log(GAMMA)))),
        "noise_sd": rng.uniform(*NOISE_SD),
        "blur_sd": rng.uniform(*BLUR_SD),
        "margin": rng.uniform(*MARGIN),
        "zoom": rng.uniform(*ZOOM),
        "dx": rng.uniform(-SHIFT, SHIFT),
        "dy": rng.uniform(-SHIFT, SHIFT),
    }


def frame(grey: np.ndarray, margin: float, zoom: float, dx: float, dy: float) -> np.ndarray:
    """Re-frame a grey slice: body box plus margin, then zoom and shift, same side.

    Args:
        grey: float ``(s, s)`` grey levels 0-255.
        margin: margin around the body box, as a share of the box's side.
        zoom: magnification about the centre (> 1 crops in).
        dx: shift right, as a share of the side.
        dy: shift down, as a share of the side.

    Returns:
        float ``(s, s)``.
    """
    side = grey.shape[0]
    left, top, right, bottom = body_box(grey, margin=0.0)
    mx, my = margin * (right - left), margin * (bottom - top)
    box = (
        max(left - mx, 0),
        max(top - my, 0),
        min(right + mx, grey.shape[1]),
        min(bottom + my, grey.shape[0]),
    )
    img = Image.fromarray(grey.astype(np.float32), mode="F").crop(box)
    out = np.asarray(img.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64)
    # zoom and shift about the centre: output pixel p samples input centre + (p - c) / zoom
    c = (side - 1) / 2
    matrix = np.eye(2) / zoom
    offset = c - matrix @ np.array([c, c]) - np.array([dy, dx]) * side
    return ndimage.affine_transform(out, matrix, offset=offset, order=1, mode="constant")


def intensity(grey: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """Window, contrast, gamma, blur and noise on a grey slice.

    Args:
        grey: float ``(s, s)`` grey levels 0-255.
        p: parameters from :func:`draw`.
        rng: the slice's generator (noise).

    Returns:
        float ``(s, s)`` grey levels 0-255.
    """
    v = np.clip((grey / 255.0 - p["low"]) / (p["high"] - p["low"]), 0, 1)
    v = np.clip(v.mean() + p["contrast"] * (v - v.mean()), 0, 1) ** p["gamma"]
    v = ndimage.gaussian_filter(v, p["blur_sd"]) if p["blur_sd"] > 0.05 else v
    return np.clip(v * 255.0 + rng.normal(0, p["noise_sd"], v.shape), 0, 255)


def shifted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One simulated-shift view of one slice.

    Args:
        image: uint8 ``(s, s, 3)`` grey RGB slice.
        rng: its generator.

    Returns:
        uint8 ``(s, s, 3)``.
    """
    p = draw(rng)
    grey = np.asarray(image, dtype=np.float64).mean(axis=2)
    grey = frame(grey, p["margin"], p["zoom"], p["dx"], p["dy"])
    grey = intensity(grey, p, rng)
    return np.repeat(np.round(grey).astype(np.uint8)[..., None], 3, axis=2)


def simulate(images: np.ndarray, seed: int) -> np.ndarray:
    """A simulated-shift view of every slice (one random combination each).

    Args:
        images: uint8 ``(n, s, s, 3)`` square slices.
        seed: the run's seed; a slice draws from ``default_rng([seed, k])``, ``k`` from its
            pixels' SHA-256 (:func:`~lungct_utils.images.pixel_key`): the same slice gets the
            same view in any batch, so its features are cached once.

    Returns:
        uint8 ``(n, s, s, 3)``.
    """
    images = np.asarray(images)
    if (
        images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[1] != images.shape[2]
        or images.shape[3] != 3
    ):
        raise ValueError(
            f"simulate: expected uint8 (n, s, s, 3) square images, got {images.dtype} "
            f"{images.shape}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"simulate: seed must be a non-negative int, got {seed!r}")
    out = np.empty_like(images)
    for i, image in enumerate(images):
        out[i] = shifted(image, np.random.default_rng([int(seed), int(pixel_key(image)[:15], 16)]))
    return out


def standardise(img: Image.Image, size: int = 224) -> np.ndarray:
    """Framing and intensity normalisation: the body's box, stretched inside the body.

    The body (:func:`~lungct_utils.images.body_box`) is cut out and resized; its grey levels
    are mapped so that the 1st and 99th percentiles of the pixels brighter than the crop's
    5th percentile (the body and its anti-aliased edge, when more than 5% of the crop is
    black) become 0 and 255. Applied alike to training, held-out and external slices, it
    removes framing and window differences that a fixed rule can see.

    Args:
        img: an RGB slice at its original size.
        size: output side.

    Returns:
        uint8 ``(size, size, 3)``.
    """
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    box = body_box(grey)
    crop = resize_rgb(img.crop(box), size).astype(np.float64).mean(axis=2)
    inside = crop[crop > np.percentile(crop, 5)]
    lo, hi = np.percentile(inside if inside.size else crop, [1, 99])
    v = np.clip((crop - lo) / max(hi - lo, 1.0) * 255.0, 0, 255)
    return np.repeat(np.round(v).astype(np.uint8)[..., None], 3, axis=2)


def standardised(images: np.ndarray) -> np.ndarray:
    """:func:`standardise` of model inputs: every slice as it is resized for the model.

    Training, scoring and ``predict`` all standardise the resized slice, so a standardised
    model sees the same pixels in each.

    Args:
        images: uint8 ``(n, s, s, 3)`` resized slices.

    Returns:
        uint8 ``(n, s, s, 3)``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(
            f"standardised: expected uint8 (n, s, s, 3) square images, got {images.dtype} "
            f"{images.shape}"
        )
    side = images.shape[1]
    out = [standardise(Image.fromarray(img), side) for img in images]
    return np.stack(out) if out else images.copy()
