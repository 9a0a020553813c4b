"""A corpus of images that are not lung CT slices, to test the out-of-distribution check.

The corpus is what the OOD check of ``predict`` must flag: photographs, other imaging
modalities, digits, charts, text, gradients, patterns, grey look-alikes of a CT slice (MRI
slices, microscopy, chest radiographs), and three kinds made from real CT slices that are
still not slices as a user would give them (an inverted slice, a heavy off-centre crop of
30-45% of the side, and a wide off-centre crop of 60-70% of the side, in grey). It is built
only from data shipped inside installed packages or drawn by code, so it needs no download
(scikit-image images fetched on demand, such as human_mitosis, kidney, cells3d, brain or
lily, are not used):

* scikit-image (``skimage.data``): astronaut, chelsea, coffee, rocket, hubble_deep_field,
  immunohistochemistry (also in grey and as its haematoxylin stain, by
  ``skimage.color.rgb2hed``), retina, colorwheel, camera, moon, coins, clock, brick, grass,
  gravel, stereo_motorcycle, cell (also a contrast-stretched 65% window), microaneurysms,
  shepp_logan_phantom (and its sinogram, by ``skimage.transform.radon``), page, text,
  checkerboard, binary_blobs;
* scikit-learn (``sklearn.datasets``): the sample images china.jpg and flower.jpg, and the
  8x8 handwritten digits;
* matplotlib (``cbook.get_sample_data``): grace_hopper.jpg, Minduka_Present_Blue_Pack.png,
  the sagittal T1 MRI slice s1045.ima.gz (its only slice; also with the contrast inverted
  inside the head, T2-like, and turned, mirrored and gamma-windowed), the elevation maps
  jacksboro_fault_dem.npz and topobathy.npz; and charts drawn with matplotlib's Agg canvas;
* Pillow (``ImageDraw``, default font) and NumPy/SciPy: text pages, gradients, patterns,
  axial MRI head slices (T1-, T2- and FLAIR-like, with Rician noise), fluorescence
  microscopy of nuclei, and frontal chest radiographs (bright mediastinum, heart, ribs and
  clavicles over darker lung fields);
* the caller's CT slices, for the inverted, cropped and wide-cropped items (twelve slices,
  spread over the array, each used by one item; the wide crops take slices the others leave,
  so the inverted and cropped items are the same as before the wide crops were added).

**Parts.** Each kind lists its items in a fixed order; the item at position ``p`` (0-based)
is in the ``"design"`` part when ``p % 3 == 0`` and in the ``"held-out"`` part otherwise.
Thresholds and rules may be tuned on the design part; no threshold or classifier is fitted on
the held-out part (about two thirds), which reports how well they work. The corpus and the
check's layers were written (and widened) together, so the held-out part is held out from
fitting, not from design. A grey photograph is never a grey copy of an
image used as a colour photograph, and an item made from another item's picture sits at a
position of that item's part: the variants of the MRI slice and of immunohistochemistry are
held-out, the window of cell is design. Each kind has items in both parts. New items are
appended to a kind or form a new kind, so no item ever changes part.

Every image is 8-bit RGB; the grey look-alikes and the wide-cropped CT items are grey (three
equal channels). Images with a side under 200 pixels are upscaled (bilinear) so the shorter
side is 256, and images with a side over 700 are downscaled so the longer side is 700: the
corpus tests more than the size rule. Randomised images (charts, tables, terminal text,
blobs, noise, shapes, and the drawn MRI slices, nuclei and radiographs) draw from
``numpy.random.default_rng([seed, crc32(name)])``, so the corpus is identical for the same
inputs and seed.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO

import matplotlib
import numpy as np
import pandas as pd
import skimage.data
from matplotlib import cbook
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LightSource
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont, ImageOps
from scipy.ndimage import binary_fill_holes, binary_opening, gaussian_filter
from skimage.color import rgb2hed
from skimage.transform import radon, rescale
from sklearn.datasets import load_digits, load_sample_image

PARTS = ("design", "held-out")
KINDS = (
    "colour photograph",
    "grey photograph",
    "microscopy/astronomy/other modality",
    "digits",
    "chart",
    "text",
    "gradient",
    "pattern",
    "inverted CT",
    "cropped CT",
    "grey look-alike (MRI)",
    "grey look-alike (microscopy)",
    "grey look-alike (radiograph)",
    "wide-cropped CT",
)
#: Within a kind, the item at position p is in the design part when p % DESIGN_EVERY == 0.
DESIGN_EVERY = 3
#: Fewest CT slices ``non_ct_corpus`` accepts (it uses twelve, each once).
MIN_CT_IMAGES = 12
#: Smallest CT side accepted (a 30% window of it still has 19 pixels).
MIN_CT_SIDE = 64
#: Side of the inverted and cropped CT items (the model's input size).
CT_SIDE = 224
#: Shorter sides below SMALL_SIDE are upscaled to UPSCALED_SIDE; longer sides above
#: LARGE_SIDE are downscaled to it.
SMALL_SIDE, UPSCALED_SIDE, LARGE_SIDE = 200, 256, 700
#: Crop windows of the cropped CT items: (share of the side, centre x, centre y).
CROP_WINDOWS = (
    (0.30, 0.30, 0.35),
    (0.35, 0.70, 0.40),
    (0.40, 0.35, 0.68),
    (0.45, 0.66, 0.64),
    (0.38, 0.50, 0.27),
)
#: Crop windows of the wide-cropped CT items (60-70% of the side, off-centre, in grey).
WIDE_CROP_WINDOWS = (
    (0.62, 0.30, 0.62),
    (0.68, 0.68, 0.38),
)
#: Tissue levels of the drawn MRI head slices: scalp, skull, CSF, grey and white matter.
HEAD_CONTRASTS = {
    "T1": (0.85, 0.08, 0.12, 0.45, 0.70),
    "T2": (0.55, 0.06, 0.95, 0.60, 0.40),
    "FLAIR": (0.50, 0.06, 0.08, 0.62, 0.42),
}

Recipe = tuple[str, Callable[[np.random.Generator], Image.Image]]


@dataclass(frozen=True)
class Item:
    """One image of the corpus.

    Attributes:
        name: unique, ``"<kind>: <what it is>"``.
        kind: one of :data:`KINDS`.
        part: one of :data:`PARTS`.
        image: 8-bit RGB image.
    """

    name: str
    kind: str
    part: str
    image: Image.Image


# ----------------------------------------------------------------------------- helpers


def _static(
    make: Callable[..., Image.Image], *args
) -> Callable[[np.random.Generator], Image.Image]:
    """A recipe function that ignores the random generator."""
    return lambda _rng: make(*args)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric array to 0-255 uint8 (a constant array becomes 0)."""
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min()
    if span == 0:
        return np.zeros(values.shape, np.uint8)
    return np.round((values - values.min()) / span * 255).astype(np.uint8)


def _rgb(array: np.ndarray) -> Image.Image:
    """An RGB image from a uint8 ``(h, w)`` grey or ``(h, w, 3|4)`` colour array."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = _to_uint8(array)
    if array.ndim == 2:
        return Image.fromarray(array, mode="L").convert("RGB")
    if array.shape[2] == 4:
        return _on_white(Image.fromarray(array, mode="RGBA"))
    return Image.fromarray(array[..., :3], mode="RGB")


def _on_white(img: Image.Image) -> Image.Image:
    """Composite an image with transparency on white, as RGB."""
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _grey(img: Image.Image) -> Image.Image:
    """The grey (L) version of an image, as RGB."""
    return img.convert("L").convert("RGB")


def _fit_size(img: Image.Image) -> Image.Image:
    """Upscale small images (shorter side 256) and downscale large ones (longer side 700)."""
    w, h = img.size
    factor = 1.0
    if min(w, h) < SMALL_SIDE:
        factor = UPSCALED_SIDE / min(w, h)
    elif max(w, h) > LARGE_SIDE:
        factor = LARGE_SIDE / max(w, h)
    if factor == 1.0:
        return img
    return img.resize((round(w * factor), round(h * factor)), Image.Resampling.BILINEAR)


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: ``(x, y)`` arrays of shape ``(height, width)``."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return (x + 0.5) / width, (y + 0.5) / height


def _span(length: int, share: float, centre: float) -> tuple[int, int]:
    """``(start, stop)`` of ``share`` of a length centred near ``centre`` (0-1), inside it."""
    size = max(1, round(share * length))
    start = min(max(round(centre * length - size / 2), 0), length - size)
    return start, start + size


def _crop_share(img: Image.Image, share: float, cx: float, cy: float) -> Image.Image:
    """A window of ``share`` of each side of an image, centred near ``(cx, cy)``, inside it."""
    x0, x1 = _span(img.width, share, cx)
    y0, y1 = _span(img.height, share, cy)
    return img.crop((x0, y0, x1, y1))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font at a size."""
    return ImageFont.load_default(size=size)


# ----------------------------------------------------------------------------- sources


def _skimage(name: str) -> Image.Image:
    """A ``skimage.data`` image by name."""
    return _rgb(getattr(skimage.data, name)())


def _sklearn_photo(name: str) -> Image.Image:
    """One of scikit-learn's sample photographs (``china.jpg``, ``flower.jpg``)."""
    return _rgb(load_sample_image(name))


def _mpl_sample(name: str) -> Image.Image:
    """An image file of matplotlib's sample data, as RGB (transparency on white)."""
    with Image.open(cbook.get_sample_data(name, asfileobj=False)) as img:
        return _on_white(img)


def _motorcycle_grey() -> Image.Image:
    """The left view of scikit-image's stereo motorcycle, in grey."""
    left, _right, _disparity = skimage.data.stereo_motorcycle()
    return _grey(_rgb(left))


def _mri_raw() -> np.ndarray:
    """matplotlib's sample MRI head slice: a 256x256 sagittal T1 slice, 16-bit raw."""
    with gzip.open(cbook.get_sample_data("s1045.ima.gz", asfileobj=False)) as handle:
        return np.frombuffer(handle.read(), np.uint16).reshape(256, 256)


def _mri_slice() -> Image.Image:
    """matplotlib's sample MRI head slice as 8-bit RGB."""
    return _rgb(_mri_raw())


def _elevation(name: str, key: str) -> np.ndarray:
    """An elevation grid from a matplotlib sample ``.npz``."""
    with np.load(cbook.get_sample_data(name, asfileobj=False)) as data:
        return np.asarray(data[key], dtype=np.float64)


def _hillshade() -> Image.Image:
    """The Jacksboro fault elevation map rendered as a shaded relief."""
    dem = _elevation("jacksboro_fault_dem.npz", "elevation")
    return _rgb(LightSource(azdeg=315, altdeg=45).hillshade(dem, vert_exag=0.05))


def _sinogram() -> Image.Image:
    """The Radon transform (raw CT projections) of the Shepp-Logan head phantom."""
    phantom = rescale(skimage.data.shepp_logan_phantom(), 0.5)
    return _rgb(radon(phantom, theta=np.linspace(0.0, 180.0, 256, endpoint=False)))


def _digit(digit: int, resample: Image.Resampling, ink_dark: bool) -> Image.Image:
    """The first sklearn 8x8 image of a digit, upscaled to 256x256."""
    data = load_digits()
    grey = _to_uint8(data.images[int(np.flatnonzero(data.target == digit)[0])])
    grey = 255 - grey if ink_dark else grey
    return _rgb(grey).resize((256, 256), resample)


def _digit_montage() -> Image.Image:
    """A 4x4 montage of sklearn digits (images 16-31: none is a single-digit item's image),
    upscaled bilinearly."""
    images = load_digits().images[16:32]
    montage = np.block([[images[4 * r + c] for c in range(4)] for r in range(4)])
    return _rgb(255 - _to_uint8(montage)).resize((320, 320), Image.Resampling.BILINEAR)


# ----------------------------------------------------------------------------- grey look-alikes


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation."""
    field = gaussian_filter(rng.normal(0, 1, shape), sigma)
    return field / field.std()


def _ellipse(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], radii) -> np.ndarray:
    """The mask of an axis-aligned ellipse on a :func:`_grid`."""
    return np.hypot((x - centre[0]) / radii[0], (y - centre[1]) / radii[1]) < 1


def _soft(mask: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """A mask (or any array) blurred to soft edges, as float."""
    return gaussian_filter(np.asarray(mask, np.float64), sigma)


def _mri_t2_like() -> Image.Image:
    """The sample MRI slice with its contrast inverted inside the head (a T2-like look).

    The air around the head stays dark, as in a real T2 slice.
    """
    raw = _mri_raw().astype(np.float64)
    level = np.clip(raw / np.percentile(raw, 99.5), 0, 1)
    head = binary_fill_holes(binary_opening(gaussian_filter(level, 2) > 0.08, iterations=2))
    return _rgb(_soft(head, 1.0) * (1 - level))


def _mri_turned() -> Image.Image:
    """The sample MRI slice turned by 90 degrees, mirrored and windowed with gamma 0.6."""
    raw = _mri_raw().astype(np.float64)
    level = np.clip(raw / np.percentile(raw, 99.5), 0, 1) ** 0.6
    return _rgb(np.fliplr(np.rot90(level)))


def _head_labels(rng: np.random.Generator, side: int) -> np.ndarray:
    """A drawn axial head slice as tissue labels.

    Args:
        rng: the item's random generator (head shape, gyri, sulci).
        side: the slice's side in pixels.

    Returns:
        uint8 ``(side, side)``: 0 air, 1 scalp, 2 skull, 3 CSF, 4 grey, 5 white matter.
    """
    x, y = _grid(side, side)
    cx, cy = 0.5 + rng.uniform(-0.02, 0.02, 2)
    r = np.hypot((x - cx) / rng.uniform(0.36, 0.40), (y - cy) / rng.uniform(0.43, 0.47))
    labels = np.select([r < 0.68, r < 0.86, r < 0.88, r < 0.93, r < 1.0], [5, 4, 3, 2, 1], 0)
    folds = r < 0.68 + 0.1 * _smooth_noise(rng, r.shape, side / 50)
    labels[(r < 0.86) & folds] = 5
    sulci = (r > 0.45) & (np.abs(_smooth_noise(rng, r.shape, side / 60)) < 0.12)
    labels[(r < 0.86) & (sulci | (np.abs(x - cx) < 0.006))] = 3
    for s in (-1, 1):
        u = x - cx - s * (0.05 + 0.12 * (y - cy))
        labels[np.hypot(u / 0.03, (y - cy + 0.02) / 0.13) < 1] = 3
    return labels.astype(np.uint8)


def _drawn_head(rng: np.random.Generator, contrast: str, side: int = 256) -> Image.Image:
    """A drawn axial MRI head slice with Rician noise.

    Args:
        rng: the item's random generator.
        contrast: a key of :data:`HEAD_CONTRASTS` (``"T1"``, ``"T2"``, ``"FLAIR"``).
        side: the slice's side in pixels.

    Returns:
        The slice, grey RGB.
    """
    labels = _head_labels(rng, side)
    values = np.array((0.0, *HEAD_CONTRASTS[contrast]))[labels]
    values = gaussian_filter(values, 0.8) * (1 + 0.05 * _smooth_noise(rng, labels.shape, 3))
    noise = rng.normal(0, 0.03, (2, *labels.shape))
    return _rgb(np.hypot(values + noise[0], noise[1]))


def _cell_zoom() -> Image.Image:
    """An off-centre 65% window of scikit-image's cell, contrast-stretched (1% cut-off)."""
    return ImageOps.autocontrast(_crop_share(_skimage("cell"), 0.65, 0.7, 0.55), cutoff=1)


def _haematoxylin() -> Image.Image:
    """The haematoxylin stain of scikit-image's immunohistochemistry (``rgb2hed``), dark on
    light."""
    stain = rgb2hed(skimage.data.immunohistochemistry())[..., 0]
    return _rgb(-np.clip(stain, 0, np.percentile(stain, 99.5)))


def _nuclei(rng: np.random.Generator, count: int, side: int = 384) -> Image.Image:
    """Drawn fluorescence microscopy: stained nuclei (a few small bright mitotic ones) on
    black, textured, blurred and noisy.

    Args:
        rng: the item's random generator.
        count: number of nuclei.
        side: the image's side in pixels.

    Returns:
        The image, grey RGB.
    """
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        cx, cy = rng.uniform(0, side, 2)
        mitotic = rng.uniform() < 0.12
        rx, ry = rng.uniform(3, 5, 2) if mitotic else rng.uniform(7, 13, 2)
        level = 250 if mitotic else int(rng.integers(70, 190))
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=level)
    signal = np.asarray(canvas, np.float64) / 255
    signal = gaussian_filter(signal * (1 + 0.35 * _smooth_noise(rng, signal.shape, 1.5)), 1.6)
    return _rgb(np.clip(0.04 + signal + rng.normal(0, 0.02, signal.shape), 0, None))


def _strokes(size: tuple[int, int], paths: list, width: int) -> np.ndarray:
    """Polylines in 0-1 coordinates drawn white on black, as a 0-1 float array."""
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    for path in paths:
        draw.line([(px * size[0], py * size[1]) for px, py in path], fill=255, width=width)
    return np.asarray(canvas, np.float64) / 255


def _rib_paths(rng: np.random.Generator, count: int = 10) -> list:
    """Posterior ribs: arcs from the spine that rise, then fall laterally, on both sides."""
    t = np.linspace(0, 1, 24)
    paths = []
    for k in range(count):
        y0 = 0.13 + 0.062 * k + rng.uniform(-0.005, 0.005)
        for s in (-1, 1):
            xs = 0.5 + s * (0.035 + (0.30 + 0.01 * k) * t)
            ys = y0 - 0.04 * np.sin(np.pi * t * 0.9) + (0.06 + 0.012 * k) * t**2
            paths.append(list(zip(xs, ys, strict=True)))
    return paths


def _vessel_paths(rng: np.random.Generator) -> list:
    """Lung vessels: slightly bent lines fanning out from both hila."""
    t = np.linspace(0, 1, 12)
    paths = []
    for s in (-1, 1):
        for angle in np.linspace(-1.2, 1.3, 9) + rng.uniform(-0.08, 0.08, 9):
            length, bend = rng.uniform(0.12, 0.22), rng.uniform(-0.15, 0.15)
            xs = 0.5 + s * (0.09 + length * t * np.cos(angle + bend * t))
            ys = 0.5 - 1.3 * length * t * np.sin(angle + bend * t)
            paths.append(list(zip(xs, ys, strict=True)))
    return paths


def _lung_fields(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The two lung fields of a frontal chest view: apex to diaphragm dome, beside the
    mediastinum (the left dome a little lower)."""
    lungs = np.zeros(x.shape, bool)
    width, base = rng.uniform(0.25, 0.31), rng.uniform(0.66, 0.74)
    for s in (-1, 1):
        lateral = 0.11 + width * np.sqrt(np.clip((y - 0.08) / 0.45, 0, 1))
        medial = 0.07 + 0.03 * np.clip((y - 0.45) / 0.2, 0, 1)
        dome = base + (0.0 if s < 0 else 0.03) + 0.10 * (np.abs(x - 0.5) / 0.38) ** 3
        across = s * (x - 0.5)
        lungs |= (across > medial) & (across < lateral) & (y > 0.1) & (y < dome)
    return lungs


def _chest_attenuation(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """How much a drawn frontal chest absorbs: brighter where more tissue or bone.

    Args:
        rng: the item's random generator (lung, heart and rib shapes, vessels).
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        Non-negative float ``(height, width)``.
    """
    x, y = _grid(width, height)
    torso = np.abs((x - 0.5) / 0.47) ** 4 + np.abs((y - 0.62) / 0.68) ** 4 < 1
    body = _soft(torso | ((np.abs(x - 0.5) < 0.1) & (y < 0.2)), 4)
    thickness = body * (0.6 + 0.4 * np.sqrt(np.clip(1 - ((x - 0.5) / 0.47) ** 2, 0, 1)))
    lungs = _soft(_lung_fields(x, y, rng), 4)
    heart_centre = (0.54 + rng.uniform(-0.01, 0.02), rng.uniform(0.58, 0.63))
    heart = _ellipse(x, y, heart_centre, (rng.uniform(0.15, 0.21), rng.uniform(0.12, 0.15)))
    mediastinum = (np.abs(x - 0.5) < 0.06) & (y < 0.62)
    vessels = _soft(_strokes((width, height), _vessel_paths(rng), 3), 2.0)
    ribs = _strokes((width, height), _rib_paths(rng), 7)
    clavicles = [
        [(0.47, 0.17), (0.3, 0.13), (0.14, 0.15)],
        [(0.53, 0.17), (0.7, 0.13), (0.86, 0.15)],
    ]
    bones = 0.13 * _soft(ribs, 1.5) + 0.2 * _soft(_strokes((width, height), clavicles, 11), 1.5)
    att = (
        0.6 * thickness
        - 0.4 * lungs
        + (bones + 0.05 * _soft(np.abs(x - 0.5) < 0.03, 2)) * thickness
    )
    att += lungs * (0.08 * vessels + 0.015 * _smooth_noise(rng, x.shape, 4))
    att += 0.3 * _soft(heart | mediastinum, 4) * lungs + 0.12 * _soft(mediastinum)
    att -= 0.08 * _soft((np.abs(x - 0.5) < 0.018) & (y < 0.4), 2)  # the trachea's air
    return np.clip(att, 0, None)


def _pose(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An image turned by up to 4 degrees and zoomed to a random 82-100% window, same size."""
    turned = img.rotate(rng.uniform(-4, 4), Image.Resampling.BILINEAR)
    cx, cy = 0.5 + rng.uniform(-0.05, 0.05, 2)
    window = _crop_share(turned, rng.uniform(0.82, 1.0), cx, cy)
    return window.resize(img.size, Image.Resampling.BILINEAR)


def _chest_radiograph(
    rng: np.random.Generator, gamma: float = 1.0, marker: str = ""
) -> Image.Image:
    """A drawn frontal chest radiograph (360x400): bright mediastinum, heart and bones, dark
    lung fields, smooth.

    Args:
        rng: the item's random generator (anatomy, pose, noise).
        gamma: exposure curve applied to the attenuation (above 1: harder contrast).
        marker: a side marker letter drawn top left (none when empty).

    Returns:
        The radiograph, grey RGB.
    """
    att = _chest_attenuation(rng, 360, 400) ** gamma
    att = gaussian_filter(att, 0.8) + rng.normal(0, 0.008, att.shape)
    img = _pose(Image.fromarray(_to_uint8(np.clip(att, 0, None)), mode="L"), rng)
    if marker:
        ImageDraw.Draw(img).text((22, 16), marker, fill=245, font=_font(28))
    return img.convert("RGB")


# ----------------------------------------------------------------------------- charts


def _render(draw: Callable, rng: np.random.Generator, style: str = "default") -> Image.Image:
    """Render a matplotlib chart on the Agg canvas to PNG in memory.

    Args:
        draw: ``draw(ax, rng)`` plots on the axes.
        rng: the item's random generator.
        style: a matplotlib style, applied over the defaults (the user's rc is ignored).

    Returns:
        The rendered chart, RGB.
    """
    with mpl_style.context(["default", style]):
        fig = Figure(figsize=(5.0, 4.0), dpi=90)
        FigureCanvasAgg(fig)
        draw(fig.add_subplot(), rng)
        fig.tight_layout()
        buffer = BytesIO()
        fig.savefig(buffer, format="png")
    fig.clear()
    buffer.seek(0)
    with Image.open(buffer) as img:
        return img.convert("RGB")


def _bar(ax, rng: np.random.Generator) -> None:
    ax.bar(list("ABCDEF"), rng.uniform(2, 10, 6), color="tab:blue")
    ax.set(title="Sales by region", ylabel="units")


def _line(ax, rng: np.random.Generator) -> None:
    t = np.arange(60)
    for label in ("train", "validation"):
        ax.plot(t, np.cumsum(rng.normal(0, 1, 60)), label=label)
    ax.set(title="Loss", xlabel="epoch")
    ax.legend()


def _scatter(ax, rng: np.random.Generator) -> None:
    x = rng.normal(0, 1, 150)
    ax.scatter(x, 0.6 * x + rng.normal(0, 0.5, 150), c=rng.uniform(0, 1, 150), cmap="viridis")
    ax.set(title="Scatter", xlabel="x", ylabel="y")


def _pie(ax, rng: np.random.Generator) -> None:
    ax.pie(rng.uniform(1, 5, 5), labels=["north", "east", "south", "west", "other"])
    ax.set(title="Share")


def _histogram(ax, rng: np.random.Generator) -> None:
    ax.hist(rng.normal(0, 1, 800), bins=30, color="tab:orange", edgecolor="black")
    ax.set(title="Histogram", xlabel="value", ylabel="count")


def _box(ax, rng: np.random.Generator) -> None:
    ax.boxplot([rng.normal(m, 1, 80) for m in (0, 1, 0.5, 2)], tick_labels=list("ABCD"))
    ax.set(title="Box plot")


def _heatmap(ax, rng: np.random.Generator) -> None:
    shown = ax.imshow(rng.uniform(0, 1, (12, 16)), cmap="magma")
    ax.figure.colorbar(shown, ax=ax)
    ax.set(title="Heatmap")


def _contour(ax, rng: np.random.Generator) -> None:
    x, y = np.meshgrid(np.linspace(-3, 3, 120), np.linspace(-3, 3, 120))
    cx, cy = rng.uniform(-1, 1, 2)
    z = np.exp(-((x - cx) ** 2) - (y - cy) ** 2) - 0.7 * np.exp(-((x + cx) ** 2) - (y + 1) ** 2)
    ax.contourf(x, y, z, levels=12, cmap="coolwarm")
    ax.clabel(ax.contour(x, y, z, levels=12, colors="black", linewidths=0.5), fontsize=7)
    ax.set(title="Contour plot")


def _bars_and_line(ax, rng: np.random.Generator) -> None:
    ax.bar(np.arange(8), rng.uniform(1, 6, 8))
    ax.plot(np.arange(8), rng.uniform(1, 6, 8), marker="o", color="C1")
    ax.set(title="Bars and a line", xlabel="week")


# ----------------------------------------------------------------------------- text

_PARAGRAPH = (
    "The committee met on Tuesday to review the quarterly figures. Revenue rose in three of "
    "the four regions, while costs stayed close to the budget. The board asked for a short "
    "note on the delays in the northern warehouse and for a plan to reduce the backlog before "
    "the end of the year. Members agreed to meet again in six weeks."
)
_CODE = '''def moving_average(values, window=3):
    """Mean of each run of `window` values."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window!r}")
    out = []
    for i in range(len(values) - window + 1):
        out.append(sum(values[i : i + window]) / window)
    return out


if __name__ == "__main__":
    print(moving_average([1, 2, 3, 4, 5]))'''


def _wrap(text: str, width: int) -> list[str]:
    """Split text into lines of at most ``width`` characters, at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines


def _page() -> Image.Image:
    """A page of black text on white: a title and wrapped paragraphs."""
    img = Image.new("RGB", (480, 640), "white")
    draw = ImageDraw.Draw(img)
    draw.text((40, 36), "Minutes of the meeting", fill="black", font=_font(26))
    y = 90
    for _ in range(3):
        for line in _wrap(_PARAGRAPH, 52):
            draw.text((40, y), line, fill="black", font=_font(15))
            y += 21
        y += 14
    return img


def _terminal(rng: np.random.Generator) -> Image.Image:
    """A terminal window: white and green log lines on black."""
    img = Image.new("RGB", (640, 400), "black")
    draw = ImageDraw.Draw(img)
    for k in range(20):
        step, loss = k * 50, rng.uniform(0.05, 2.0)
        colour = (120, 230, 120) if k % 5 == 4 else (235, 235, 235)
        text = f"$ step {step:5d}  loss {loss:.4f}  lr 1e-3  [{'#' * (k % 12):<12}]"
        draw.text((12, 8 + 19 * k), text, fill=colour, font=_font(14))
    return img


def _code_listing() -> Image.Image:
    """A code listing with line numbers, dark text on a light background."""
    img = Image.new("RGB", (600, 380), (250, 250, 244))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 34, 380), fill=(225, 225, 225))
    for k, line in enumerate(_CODE.splitlines()):
        draw.text((6, 12 + 26 * k), f"{k + 1:2d}", fill=(120, 120, 120), font=_font(15))
        draw.text((44, 12 + 26 * k), line, fill=(20, 20, 110), font=_font(15))
    return img


def _table(rng: np.random.Generator) -> Image.Image:
    """A ruled table of numbers with a header row."""
    columns, rows, cell_w, cell_h = 5, 12, 104, 30
    img = Image.new("RGB", (columns * cell_w + 20, (rows + 1) * cell_h + 20), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 10, 10 + columns * cell_w, 10 + cell_h), fill=(210, 220, 240))
    for c, head in enumerate(("id", "age", "weight", "score", "group")):
        draw.text((18 + c * cell_w, 16), head, fill="black", font=_font(16))
    for r in range(1, rows + 1):
        values = (r, rng.integers(18, 90), rng.uniform(50, 110), rng.uniform(0, 1), "ABC"[r % 3])
        texts = (f"{values[0]}", f"{values[1]}", f"{values[2]:.1f}", f"{values[3]:.3f}", values[4])
        for c, text in enumerate(texts):
            draw.text((18 + c * cell_w, 16 + r * cell_h), text, fill="black", font=_font(15))
    for r in range(rows + 2):
        draw.line((10, 10 + r * cell_h, 10 + columns * cell_w, 10 + r * cell_h), fill="black")
    for c in range(columns + 1):
        x = 10 + c * cell_w
        draw.line((x, 10, x, 10 + (rows + 1) * cell_h), fill="black")
    return img


# ----------------------------------------------------------------------------- gradients


def _ramp(shape: str, width: int, height: int) -> np.ndarray:
    """A 0-1 ramp: horizontal, vertical, diagonal, radial or inverted radial."""
    x, y = _grid(width, height)
    radius = np.hypot(x - 0.5, y - 0.5) / np.hypot(0.5, 0.5)
    ramps = {
        "horizontal": x,
        "vertical": y,
        "diagonal": (x + y) / 2,
        "radial": 1 - radius,
        "inverted radial": radius,
    }
    return ramps[shape]


def _grey_gradient(shape: str, width: int, height: int) -> Image.Image:
    """A grey gradient."""
    return _rgb(np.round(_ramp(shape, width, height) * 255).astype(np.uint8))


def _colour_gradient(shape: str, width: int, height: int, cmap: str) -> Image.Image:
    """A colour gradient through a matplotlib colormap."""
    rgba = matplotlib.colormaps[cmap](_ramp(shape, width, height))
    return _rgb(np.round(rgba[..., :3] * 255).astype(np.uint8))


# ----------------------------------------------------------------------------- patterns


def _checkerboard(side: int, square: int) -> Image.Image:
    """A black and white checkerboard."""
    y, x = np.mgrid[0:side, 0:side]
    return _rgb((((x // square) + (y // square)) % 2 * 255).astype(np.uint8))


def _stripes(width: int, height: int, period: int) -> Image.Image:
    """Vertical colour stripes (red, white, blue)."""
    colours = np.array([[200, 30, 40], [245, 245, 245], [30, 60, 190]], np.uint8)
    x = np.arange(width) // period % 3
    return _rgb(np.broadcast_to(colours[x], (height, width, 3)).copy())


def _dots(rng: np.random.Generator) -> Image.Image:
    """A grid of dark dots, slightly jittered, on a light background."""
    img = Image.new("RGB", (384, 384), (240, 236, 220))
    draw = ImageDraw.Draw(img)
    for cy in range(24, 384, 48):
        for cx in range(24, 384, 48):
            dx, dy = rng.uniform(-4, 4, 2)
            draw.ellipse(
                (cx + dx - 10, cy + dy - 10, cx + dx + 10, cy + dy + 10), fill=(40, 40, 90)
            )
    return img


def _rings(side: int, period: float) -> Image.Image:
    """Concentric grey rings (a cosine of the distance from the centre)."""
    x, y = _grid(side, side)
    return _rgb(np.round(127.5 + 127.5 * np.cos(np.hypot(x - 0.5, y - 0.5) * side / period)))


def _blobs(rng: np.random.Generator) -> Image.Image:
    """scikit-image binary blobs."""
    mask = skimage.data.binary_blobs(320, blob_size_fraction=0.08, rng=int(rng.integers(2**31)))
    return _rgb(mask.astype(np.uint8) * 255)


def _smoothed_noise(rng: np.random.Generator) -> Image.Image:
    """Gaussian-filtered white noise, scaled to 0-255."""
    return _rgb(gaussian_filter(rng.normal(0, 1, (320, 320)), sigma=6))


def _disc(side: int, radius: float) -> Image.Image:
    """One bright disc on black."""
    x, y = _grid(side, side)
    return _rgb(np.where(np.hypot(x - 0.5, y - 0.5) < radius, 235, 0).astype(np.uint8))


def _shapes(rng: np.random.Generator) -> Image.Image:
    """Coloured rectangles, ellipses and triangles at random places on white."""
    img = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(img)
    for k in range(9):
        x0, y0 = rng.uniform(0, 320), rng.uniform(0, 220)
        w, h = rng.uniform(30, 90, 2)
        colour = tuple(int(v) for v in rng.integers(0, 230, 3))
        if k % 3 == 0:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        elif k % 3 == 1:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            draw.polygon([(x0, y0 + h), (x0 + w, y0 + h), (x0 + w / 2, y0)], fill=colour)
    return img


# ----------------------------------------------------------------------------- CT-derived


def _ct_picks(n: int) -> list[int]:
    """Ten distinct indices spread over ``n >= 10`` CT slices, first and last included."""
    return [k * (n - 1) // 9 for k in range(10)]


def _wide_ct_picks(n: int, taken: Sequence[int]) -> list[int]:
    """One index per wide crop window, each not in ``taken`` and not picked before.

    Window ``k`` of ``m`` takes the free index nearest to ``(k + 0.5) / m`` of the way
    through the slices (the lower one on a tie), so the ten picks of :func:`_ct_picks` and
    the items made from them stay as they were.

    Args:
        n: number of CT slices, at least ``len(taken) + len(WIDE_CROP_WINDOWS)``.
        taken: indices already used.

    Returns:
        Distinct indices, in window order.
    """
    free = sorted(set(range(n)) - set(taken))
    picks = []
    for k in range(len(WIDE_CROP_WINDOWS)):
        target = (k + 0.5) / len(WIDE_CROP_WINDOWS) * (n - 1)
        picks.append(min(free, key=lambda i, t=target: (abs(i - t), i)))
        free.remove(picks[-1])
    return picks


def _inverted_ct(ct: np.ndarray) -> Image.Image:
    """255 minus a CT slice, at :data:`CT_SIDE` (bilinear when resized)."""
    img = Image.fromarray(255 - ct, mode="RGB")
    return img.resize((CT_SIDE, CT_SIDE), Image.Resampling.BILINEAR)


def _crop_box(side: int, share: float, cx: float, cy: float) -> tuple[int, int, int, int]:
    """A square window of ``share`` of the side centred near ``(cx, cy)``, inside the image."""
    (x0, x1), (y0, y1) = _span(side, share, cx), _span(side, share, cy)
    return x0, y0, x1, y1


def _cropped_ct(ct: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """A window of a CT slice resized to :data:`CT_SIDE` (bilinear)."""
    img = Image.fromarray(ct, mode="RGB").crop(box)
    return img.resize((CT_SIDE, CT_SIDE), Image.Resampling.BILINEAR)


def _wide_cropped_ct(ct: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """The grey version of a window of a CT slice, resized to :data:`CT_SIDE` (bilinear)."""
    return _grey(_cropped_ct(ct, box))


# ----------------------------------------------------------------------------- recipes


def _colour_photo_recipes() -> list[Recipe]:
    """The colour photographs: scikit-image, scikit-learn and matplotlib samples.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    colour = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")
    colour += ("immunohistochemistry", "retina", "colorwheel")
    return [(f"skimage {n}", _static(_skimage, n)) for n in colour] + [
        ("sklearn china.jpg", _static(_sklearn_photo, "china.jpg")),
        ("sklearn flower.jpg", _static(_sklearn_photo, "flower.jpg")),
        ("matplotlib grace_hopper.jpg", _static(_mpl_sample, "grace_hopper.jpg")),
    ]


def _grey_photo_recipes() -> list[Recipe]:
    """The grey photographs (none is a grey copy of a colour photograph's picture).

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    grey = ("camera", "moon", "coins", "clock", "brick", "grass", "gravel")
    return [(f"skimage {n}", _static(_skimage, n)) for n in grey] + [
        ("skimage stereo_motorcycle left, grey", _static(_motorcycle_grey)),
        (
            "matplotlib Minduka_Present_Blue_Pack.png, grey",
            _static(lambda: _grey(_mpl_sample("Minduka_Present_Blue_Pack.png"))),
        ),
    ]


def _modality_recipes() -> list[Recipe]:
    """Microscopy, MRI, phantoms, elevation maps and a sinogram: other imaging.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("skimage cell (microscopy)", _static(_skimage, "cell")),
        ("matplotlib s1045.ima MRI head slice", _static(_mri_slice)),
        (
            "skimage shepp_logan_phantom (head phantom)",
            _static(_skimage, "shepp_logan_phantom"),
        ),
        (
            "matplotlib jacksboro_fault_dem elevation, grey",
            _static(lambda: _rgb(_elevation("jacksboro_fault_dem.npz", "elevation"))),
        ),
        ("skimage microaneurysms (retinal angiography)", _static(_skimage, "microaneurysms")),
        (
            "matplotlib topobathy elevation, grey",
            _static(lambda: _rgb(_elevation("topobathy.npz", "topo"))),
        ),
        ("matplotlib jacksboro_fault_dem shaded relief", _static(_hillshade)),
        ("sinogram of the Shepp-Logan phantom", _static(_sinogram)),
    ]


def _digit_recipes() -> list[Recipe]:
    """Upscaled sklearn 8x8 digits, single and as a montage.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    nearest, bilinear = Image.Resampling.NEAREST, Image.Resampling.BILINEAR
    return [
        ("sklearn digit 0, nearest, white on black", _static(_digit, 0, nearest, False)),
        ("sklearn digit 1, bilinear, white on black", _static(_digit, 1, bilinear, False)),
        ("sklearn digit 2, nearest, black on white", _static(_digit, 2, nearest, True)),
        ("sklearn digit 3, bilinear, black on white", _static(_digit, 3, bilinear, True)),
        ("sklearn digit 4, nearest, white on black", _static(_digit, 4, nearest, False)),
        ("sklearn digits 4x4 montage, bilinear", _static(_digit_montage)),
    ]


def _chart_recipes() -> list[Recipe]:
    """Randomised matplotlib charts, two of them in other styles.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("matplotlib bar chart", lambda rng: _render(_bar, rng)),
        ("matplotlib line chart", lambda rng: _render(_line, rng)),
        ("matplotlib scatter plot", lambda rng: _render(_scatter, rng)),
        ("matplotlib pie chart", lambda rng: _render(_pie, rng)),
        ("matplotlib histogram", lambda rng: _render(_histogram, rng)),
        ("matplotlib box plot", lambda rng: _render(_box, rng)),
        ("matplotlib heatmap (magma)", lambda rng: _render(_heatmap, rng)),
        ("matplotlib contour plot", lambda rng: _render(_contour, rng)),
        (
            "matplotlib dark_background chart",
            lambda rng: _render(_bars_and_line, rng, "dark_background"),
        ),
        ("matplotlib grayscale chart", lambda rng: _render(_bars_and_line, rng, "grayscale")),
    ]


def _text_recipes() -> list[Recipe]:
    """Pages, a terminal, code and a table drawn with Pillow, and scikit-image's text images.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("PIL page, black on white", _static(_page)),
        ("PIL terminal, white on black", _terminal),
        ("PIL code listing", _static(_code_listing)),
        ("PIL table", _table),
        ("skimage page", _static(_skimage, "page")),
        ("skimage text", _static(_skimage, "text")),
    ]


def _gradient_recipes() -> list[Recipe]:
    """Grey gradients, then colour gradients through matplotlib colormaps.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("horizontal, grey", _static(_grey_gradient, "horizontal", 320, 256)),
        ("vertical, grey", _static(_grey_gradient, "vertical", 256, 320)),
        ("diagonal, grey", _static(_grey_gradient, "diagonal", 384, 384)),
        ("radial, grey", _static(_grey_gradient, "radial", 300, 300)),
        ("inverted radial, grey", _static(_grey_gradient, "inverted radial", 256, 256)),
        ("horizontal, viridis", _static(_colour_gradient, "horizontal", 400, 300, "viridis")),
        ("vertical, plasma", _static(_colour_gradient, "vertical", 256, 256, "plasma")),
        ("diagonal, rainbow", _static(_colour_gradient, "diagonal", 320, 320, "rainbow")),
        ("radial, autumn", _static(_colour_gradient, "radial", 384, 288, "autumn")),
        (
            "inverted radial, cool",
            _static(_colour_gradient, "inverted radial", 256, 256, "cool"),
        ),
    ]


def _pattern_recipes() -> list[Recipe]:
    """Checkerboards, stripes, dots, rings, blobs, noise, a disc and shapes.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("checkerboard, 32 px squares", _static(_checkerboard, 256, 32)),
        ("colour stripes", _static(_stripes, 360, 270, 20)),
        ("jittered dots", _dots),
        ("concentric rings", _static(_rings, 320, 6.0)),
        ("skimage binary_blobs", _blobs),
        ("skimage checkerboard", _static(_skimage, "checkerboard")),
        ("smoothed noise", _smoothed_noise),
        ("single bright disc", _static(_disc, 256, 0.3)),
        ("geometric shapes", _shapes),
    ]


def _mri_recipes() -> list[Recipe]:
    """MRI look-alikes: drawn axial head slices at design positions, and the sample slice's
    variants at held-out ones (the sample slice itself is a held-out other modality).

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("drawn axial head slice, T1-like", lambda rng: _drawn_head(rng, "T1")),
        (
            "matplotlib s1045.ima, contrast inverted inside the head (T2-like)",
            _static(_mri_t2_like),
        ),
        ("matplotlib s1045.ima, turned 90 degrees and mirrored, gamma 0.6", _static(_mri_turned)),
        ("drawn axial head slice, T2-like", lambda rng: _drawn_head(rng, "T2")),
        ("drawn axial head slice, FLAIR-like", lambda rng: _drawn_head(rng, "FLAIR")),
    ]


def _microscopy_recipes() -> list[Recipe]:
    """Grey microscopy: drawn fluorescence nuclei, a zoom of ``cell`` (a design item, so at a
    design position) and grey versions of ``immunohistochemistry`` (a held-out colour
    photograph, so at held-out positions).

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("drawn fluorescence nuclei, sparse", lambda rng: _nuclei(rng, 70)),
        (
            "skimage immunohistochemistry, grey",
            _static(lambda: _grey(_skimage("immunohistochemistry"))),
        ),
        ("drawn fluorescence nuclei, dense", lambda rng: _nuclei(rng, 160)),
        ("skimage cell, 65% off-centre window, contrast-stretched", _static(_cell_zoom)),
        ("skimage immunohistochemistry, haematoxylin stain (rgb2hed)", _static(_haematoxylin)),
    ]


def _radiograph_recipes() -> list[Recipe]:
    """Drawn frontal chest radiographs (each a new drawing).

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("drawn frontal chest radiograph", _chest_radiograph),
        (
            "drawn frontal chest radiograph, side marker",
            lambda rng: _chest_radiograph(rng, marker="R"),
        ),
        ("drawn frontal chest radiograph, gamma 1.6", lambda rng: _chest_radiograph(rng, 1.6)),
    ]


def _crop_recipes(
    ct_images: np.ndarray, indices: Sequence[int], windows: Sequence[tuple], make: Callable
) -> list[Recipe]:
    """Crop recipes: slice ``indices[k]`` through window ``windows[k]``.

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices, already checked.
        indices: one slice index per window.
        windows: ``(share, cx, cy)`` crop windows (see :func:`_crop_box`).
        make: ``make(slice, box)`` builds the item (:func:`_cropped_ct` or
            :func:`_wide_cropped_ct`).

    Returns:
        ``(label, make)`` recipes in window order.
    """
    boxes = [_crop_box(ct_images.shape[1], *window) for window in windows]
    return [
        (f"ct_images[{i}], box {box}", _static(make, ct_images[i], box))
        for i, box in zip(indices, boxes, strict=True)
    ]


def _ct_recipes(ct_images: np.ndarray) -> dict[str, list[Recipe]]:
    """The inverted, cropped and wide-cropped CT items, each from its own slice.

    Ten picks spread over the slices alternate between an inverted and a cropped item; the
    wide crops take two other slices (:func:`_wide_ct_picks`).

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices, already checked.

    Returns:
        Kind (``"inverted CT"``, ``"cropped CT"``, ``"wide-cropped CT"``) -> its
        ``(label, make)`` recipes in their fixed order.
    """
    picks = _ct_picks(len(ct_images))
    wide_picks = _wide_ct_picks(len(ct_images), picks)
    return {
        "inverted CT": [
            (f"ct_images[{i}]", _static(_inverted_ct, ct_images[i])) for i in picks[0::2]
        ],
        "cropped CT": _crop_recipes(ct_images, picks[1::2], CROP_WINDOWS, _cropped_ct),
        "wide-cropped CT": _crop_recipes(
            ct_images, wide_picks, WIDE_CROP_WINDOWS, _wide_cropped_ct
        ),
    }


def _recipes(ct_images: np.ndarray) -> dict[str, list[Recipe]]:
    """Every kind's items in their fixed order (the order sets the part).

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices, already checked.

    Returns:
        Kind -> its ``(label, make)`` recipes, kinds in :data:`KINDS` order.
    """
    ct = _ct_recipes(ct_images)
    recipes = {
        "colour photograph": _colour_photo_recipes(),
        "grey photograph": _grey_photo_recipes(),
        "microscopy/astronomy/other modality": _modality_recipes(),
        "digits": _digit_recipes(),
        "chart": _chart_recipes(),
        "text": _text_recipes(),
        "gradient": _gradient_recipes(),
        "pattern": _pattern_recipes(),
        "grey look-alike (MRI)": _mri_recipes(),
        "grey look-alike (microscopy)": _microscopy_recipes(),
        "grey look-alike (radiograph)": _radiograph_recipes(),
        **ct,
    }
    return {kind: recipes[kind] for kind in KINDS}


def _check_ct(ct_images) -> None:
    """Raise ValueError unless ``ct_images`` is uint8 ``(n, s, s, 3)`` with enough slices."""
    if not isinstance(ct_images, np.ndarray):
        raise ValueError(f"non_ct_corpus: ct_images must be a numpy array, got {type(ct_images)!r}")
    if ct_images.dtype != np.uint8:
        raise ValueError(f"non_ct_corpus: ct_images must be uint8, got dtype {ct_images.dtype!s}")
    shape = ct_images.shape
    if ct_images.ndim != 4 or shape[3] != 3 or shape[1] != shape[2]:
        raise ValueError(f"non_ct_corpus: ct_images must have shape (n, s, s, 3), got {shape}")
    if shape[0] < MIN_CT_IMAGES:
        raise ValueError(
            f"non_ct_corpus: needs at least {MIN_CT_IMAGES} CT images, got {shape[0]} ({shape})"
        )
    if shape[1] < MIN_CT_SIDE:
        raise ValueError(f"non_ct_corpus: CT side must be >= {MIN_CT_SIDE}, got {shape[1]}")


def _item_rng(seed: int, name: str) -> np.random.Generator:
    """The random generator of one item: from the seed and the item's name."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _part(position: int) -> str:
    """The part of the item at ``position`` within its kind."""
    return PARTS[0] if position % DESIGN_EVERY == 0 else PARTS[1]


# ----------------------------------------------------------------------------- public


def non_ct_corpus(ct_images: np.ndarray, seed: int = 0) -> list[Item]:
    """Build the non-CT corpus.

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` real CT slices, ``n >= 12`` and ``s >= 64``; twelve
            of them, spread over the array and each used once, become the inverted, cropped
            and wide-cropped CT items.
        seed: non-negative seed of the randomised images (charts, text, patterns).

    Returns:
        The items, kind by kind in :data:`KINDS` order, each kind in its fixed order.

    Raises:
        ValueError: on a bad ``ct_images`` or ``seed``.
    """
    _check_ct(ct_images)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"non_ct_corpus: seed must be a non-negative int, got {seed!r}")
    items = []
    for kind, recipes in _recipes(ct_images).items():
        for position, (label, make) in enumerate(recipes):
            name = f"{kind}: {label}"
            image = _fit_size(make(_item_rng(int(seed), name)).convert("RGB"))
            items.append(Item(name=name, kind=kind, part=_part(position), image=image))
    return items


def corpus_frame(items: Sequence[Item]) -> pd.DataFrame:
    """A table of the corpus without the images.

    Args:
        items: from :func:`non_ct_corpus`.

    Returns:
        DataFrame with columns ``name, kind, part, width, height``, one row per item.

    Raises:
        ValueError: when an entry is not an :class:`Item`.
    """
    bad = [item for item in items if not isinstance(item, Item)]
    if bad:
        raise ValueError(f"corpus_frame: expected Item entries, got {bad[0]!r}")
    rows = [(i.name, i.kind, i.part, i.image.width, i.image.height) for i in items]
    return pd.DataFrame(rows, columns=["name", "kind", "part", "width", "height"])
