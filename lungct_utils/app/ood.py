"""Input check: is an image a chest CT slice like the ones the model was trained on?

Four layers, cheapest first; the first that fires gives the reason (""  when none does):

1. **content**: too small, blank, pure noise (fixed rules from the release's ranges);
2. **colour**: a CT slice is grey, its three channels equal; a picture with coloured
   pixels is not a CT slice (every one of the release's 1,097 files is single-channel);
3. **layout**: a CT slice shows a dark surround, a bright body and dark lungs; the image's
   *contrast-normalised* 16x16 grey thumbnail (:func:`layouts`) is compared with the
   training slices' (root-mean-square distance to the nearest one). Normalising the
   contrast keeps CT slices shown through another window (a DICOM file, a 16-bit PNG) in,
   while photographs, charts, text, gradients, inverted and cropped slices land far away;
4. **features**: one minus the largest centred cosine similarity of the image's pooled
   backbone feature to a training feature.

Layers 3 and 4 are calibrated where they will be used: on **held-out patients**
(:func:`fit`). The training slices are cut into grouped folds of whole reconstructed cases;
each slice's distance to the *other* folds is the distance a new patient's slice has, and
the threshold is the quantile of those distances that flags a stated share of them
(:data:`LAYOUT_RATE`, :data:`FEATURE_RATE`). No image that is not CT takes part in any
threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..audit import centered_unit, thumbnails
from ..io_utils import atomic_path
from ..splits import group_kfold

#: Images smaller than this on either side are too small to be a CT slice (the release's
#: smallest side is 331 pixels).
MIN_SIDE = 128
#: A grey-level standard deviation below this is a blank image (CT slices: 41 or more).
BLANK_STD = 2.0
#: Mean neighbour difference over the standard deviation above this is noise (CT: <= 0.56).
NOISE_ROUGHNESS = 0.9
#: A pixel whose channels differ by more than this is coloured (grey JPEGs stay within a
#: few levels of chroma noise; the release's slices: 0) ...
COLOUR_SPREAD = 24
#: ... and an image with more than this share of coloured pixels is a colour picture.
COLOUR_SHARE = 0.02
#: Side of the layout thumbnail (224 / 16 = 14 pixels per cell).
LAYOUT_SIDE = 16
#: Share of held-out CT slices the layout layer may flag in calibration ...
LAYOUT_RATE = 0.002
#: ... and the feature layer. On new patients both flag more than in calibration (some
#: slices are unlike any other patient's): notebook 04 measures it, nested in the CV.
FEATURE_RATE = 0.001
#: Grouped folds of the calibration.
CALIBRATION_FOLDS = 5
#: The reasons, by layer.
LAYERS = ("content", "colour", "layout", "features")


def content_reason(img: Image.Image) -> str:
    """Why an image cannot be a CT slice, from its content alone ("" when it could be).

    Args:
        img: the image as read (any size).

    Returns:
        ``"too small: WxH"``, ``"blank image"``, ``"pure noise"`` or ``""``.
    """
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        return f"too small: {w}x{h}"
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    spread = float(grey.std())
    if spread < BLANK_STD:
        return "blank image"
    if float(np.abs(np.diff(grey, axis=1)).mean()) / spread > NOISE_ROUGHNESS:
        return "pure noise"
    return ""


def colour_share(img: Image.Image) -> float:
    """Share of pixels whose RGB channels differ by more than :data:`COLOUR_SPREAD`.

    Args:
        img: the image as read.

    Returns:
        A share in [0, 1] (0 for a grey image).
    """
    rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    return float(((rgb.max(axis=2) - rgb.min(axis=2)) > COLOUR_SPREAD).mean())


def colour_reason(img: Image.Image) -> str:
    """``"colour image (N% of pixels coloured)"`` for a colour picture, else ``""``."""
    share = colour_share(img)
    return f"colour image ({share:.0%} of pixels coloured)" if share > COLOUR_SHARE else ""


def layouts(images: np.ndarray) -> np.ndarray:
    """Contrast-normalised grey thumbnails: the intensity layout of each image.

    Each ``LAYOUT_SIDE``-square thumbnail (area average) is mapped so that its 1st and 99th
    percentiles become 0 and 1; a window or bit depth change leaves it nearly unchanged.

    Args:
        images: uint8 ``(n, s, s, 3)`` resized images (``s`` a multiple of 16).

    Returns:
        float32 ``(n, 256)``.
    """
    thumbs = thumbnails(np.asarray(images), LAYOUT_SIDE)
    lo, hi = np.percentile(thumbs, [1, 99], axis=1, keepdims=True)
    return ((thumbs - lo) / np.maximum(hi - lo, 1 / 255)).astype(np.float32)


def layout_distance(layout: np.ndarray, reference: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Root-mean-square distance of each layout to its nearest reference layout.

    Args:
        layout: ``(n, 256)`` from :func:`layouts`.
        reference: ``(m, 256)``.
        chunk: rows per matrix product.

    Returns:
        float32 ``(n,)``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref_sq = (ref**2).sum(axis=1)
    out = []
    for i in range(0, len(layout), chunk):
        q = np.asarray(layout[i : i + chunk], dtype=np.float64)
        sq = (q**2).sum(axis=1)[:, None] + ref_sq[None, :] - 2 * q @ ref.T
        out.append(np.sqrt(np.maximum(sq.min(axis=1), 0) / ref.shape[1]))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def feature_distance(
    features: np.ndarray, mean: np.ndarray, reference: np.ndarray, chunk: int = 512
) -> np.ndarray:
    """One minus the largest centred cosine similarity to a reference feature.

    Args:
        features: ``(n, d)`` pooled backbone features.
        mean: the reference's mean feature (subtracted first).
        reference: ``(m, d)`` centred unit reference features.
        chunk: rows per matrix product.

    Returns:
        float32 ``(n,)``; larger is stranger.
    """
    x = centered_unit(features, mean).astype(np.float32)
    out = [1 - (x[i : i + chunk] @ reference.T).max(axis=1) for i in range(0, len(x), chunk)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def reference(features: np.ndarray, layout: np.ndarray) -> dict:
    """The reference arrays of a training set (no thresholds yet).

    Args:
        features: ``(n, d)`` pooled features of the training slices.
        layout: ``(n, 256)`` their layouts.

    Returns:
        ``{"mean", "reference", "layout_reference"}``.
    """
    features = np.asarray(features, dtype=np.float32)
    if len(features) != len(layout) or len(features) < 2:
        raise ValueError(
            f"ood.reference: needs as many layouts as features (>= 2), got {len(features)} "
            f"features and {len(layout)} layouts"
        )
    mean = features.mean(axis=0)
    return {
        "mean": mean,
        "reference": centered_unit(features, mean).astype(np.float32),
        "layout_reference": np.asarray(layout, dtype=np.float32),
    }


def distances(features: np.ndarray, layout: np.ndarray, ref: dict) -> pd.DataFrame:
    """Layout and feature distances of images to a reference.

    Args:
        features: ``(n, d)`` their pooled features.
        layout: ``(n, 256)`` their layouts.
        ref: from :func:`reference` or :func:`fit`.

    Returns:
        DataFrame ``layout_distance, feature_distance``.
    """
    return pd.DataFrame(
        {
            "layout_distance": layout_distance(layout, ref["layout_reference"]),
            "feature_distance": feature_distance(features, ref["mean"], ref["reference"]),
        }
    )


def held_out_distances(
    features, layout, y, groups, n_folds: int = CALIBRATION_FOLDS, seed: int = 0
) -> pd.DataFrame:
    """Each training slice's distances to the slices of the other grouped folds.

    Args:
        features: ``(n, d)`` pooled features of the training slices.
        layout: ``(n, 256)`` their layouts.
        y: their class indices (the folds keep the class mix).
        groups: their case (whole cases stay in one fold).
        n_folds: grouped folds.
        seed: fold seed.

    Returns:
        DataFrame ``fold, layout_distance, feature_distance`` in row order.
    """
    fold = group_kfold(y, groups, n_folds, seed)
    out = pd.DataFrame(index=range(len(fold)), columns=["layout_distance", "feature_distance"])
    for k in range(n_folds):
        test, train = fold == k, fold != k
        part = distances(features[test], layout[test], reference(features[train], layout[train]))
        out.loc[test, part.columns] = part.to_numpy()
    return out.astype(np.float32).assign(fold=fold)


def fit(
    features,
    layout,
    y,
    groups,
    layout_rate: float = LAYOUT_RATE,
    feature_rate: float = FEATURE_RATE,
    n_folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
) -> dict:
    """Reference of a training set, thresholds calibrated on its held-out patients.

    Args:
        features: ``(n, d)`` pooled features of the model's training slices.
        layout: ``(n, 256)`` their layouts (:func:`layouts`).
        y: their class indices.
        groups: their case.
        layout_rate: share of held-out slices the layout layer may flag.
        feature_rate: share of held-out slices the feature layer may flag.
        n_folds: grouped calibration folds.
        seed: fold seed.

    Returns:
        The :func:`reference` arrays plus ``threshold`` (features), ``layout_threshold``,
        ``layout_rate`` and ``feature_rate``.
    """
    for name, rate in (("layout_rate", layout_rate), ("feature_rate", feature_rate)):
        if not 0 < rate < 0.5:
            raise ValueError(f"ood.fit: {name} must be in (0, 0.5), got {rate!r}")
    features, layout = np.asarray(features, np.float32), np.asarray(layout, np.float32)
    held = held_out_distances(features, layout, y, groups, n_folds, seed)
    ref = reference(features, layout)
    ref["threshold"] = np.float32(np.quantile(held["feature_distance"], 1 - feature_rate))
    ref["layout_threshold"] = np.float32(np.quantile(held["layout_distance"], 1 - layout_rate))
    ref["layout_rate"], ref["feature_rate"] = np.float32(layout_rate), np.float32(feature_rate)
    return ref


def image_reasons(images: list[Image.Image]) -> list[str]:
    """The content and colour layers of each image ("" when neither fires).

    Args:
        images: the images as read.

    Returns:
        One reason per image.
    """
    return [content_reason(img) or colour_reason(img) for img in images]


def distance_reasons(first: list[str], dist: pd.DataFrame | None, ref: dict | None) -> list[str]:
    """Add the layout and feature layers to the first layers' reasons.

    Args:
        first: from :func:`image_reasons`.
        dist: the images' :func:`distances`, or None without a reference.
        ref: the reference with its thresholds.

    Returns:
        One reason per image, from the first layer that fires.
    """
    out = list(first)
    if dist is None:
        return out
    layout_t, feature_t = float(ref["layout_threshold"]), float(ref["threshold"])
    for k, (layout_d, feature_d) in enumerate(
        dist[["layout_distance", "feature_distance"]].to_numpy()
    ):
        if out[k]:
            continue
        if layout_d > layout_t:
            out[k] = f"not a CT layout (distance {layout_d:.2f} > {layout_t:.2f})"
        elif feature_d > feature_t:
            out[k] = (
                f"far from training slices (feature distance {feature_d:.2f} > {feature_t:.2f})"
            )
    return out


def reasons(images: list[Image.Image], dist: pd.DataFrame | None, ref: dict | None) -> list[str]:
    """The reason each image is not an ordinary CT slice ("" when it is one).

    Args:
        images: the images as read.
        dist: their :func:`distances`, or None without a reference.
        ref: the reference with its thresholds.

    Returns:
        One reason per image, from the first layer that fires.
    """
    return distance_reasons(image_reasons(images), dist, ref)


def layer(reason: str) -> str:
    """The layer that gave a reason (``""`` for none).

    Args:
        reason: from :func:`reasons`.

    Returns:
        One of :data:`LAYERS`, or ``""``.
    """
    if not reason:
        return ""
    if reason.startswith("colour"):
        return "colour"
    if reason.startswith("not a CT layout"):
        return "layout"
    if reason.startswith("far from"):
        return "features"
    return "content"


def save(ref: dict, path: Path) -> Path:
    """Save a reference as ``.npz`` atomically.

    Args:
        ref: from :func:`fit`.
        path: target file.

    Returns:
        ``path``.
    """
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **ref)
    return Path(path)


def load(path: Path) -> dict:
    """Load a reference saved by :func:`save`.

    Args:
        path: the ``.npz`` file.

    Returns:
        The reference dict.
    """
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def path_for(model_path: Path) -> Path:
    """Where the OOD reference of a model lives (``models/<run>.ood.npz``)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".ood.npz")
