"""Rebuild the paper's augmented set (Table I: 3,609 images) from the 1,097 originals.

The paper used a Kaggle copy that was augmented before splitting, by an undescribed
method. We rebuild a set of the same class counts: every original once (identity), plus
seeded random copies until each class reaches its Table I count. Sources are drawn in
rounds of a seeded permutation, so every original of a class gets the same number of
copies, plus or minus one. Each copy applies, to the 224x224 resized original:

* a horizontal flip with probability 1/2,
* a rotation uniform in [-10, 10] degrees,
* a shift uniform in [-5%, 5%] of the side, horizontally and vertically,
* a zoom uniform in [0.95, 1.05],

as one bilinear affine map about the image centre, with black fill. The parameters are
rounded (0.01 degree, 0.01 pixel, 1e-4 zoom) and stored per row, so the manifest alone
regenerates every image bit-identically, and every copy names its source original.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from .config import AUGMENTED_DIR, CLASSES, PaperConfig
from .images import open_rgb, pixel_key
from .io_utils import atomic_dir, write_csv

PLAN_COLUMNS = [
    "id",
    "label",
    "source",
    "source_sha256",
    "group",
    "flip",
    "rotation",
    "shift_x",
    "shift_y",
    "zoom",
    "transform",
]


def describe(flip: bool, rotation: float, shift_x: float, shift_y: float, zoom: float) -> str:
    """A readable one-line description of a transform.

    Args:
        flip: horizontal flip.
        rotation: degrees, counter-clockwise.
        shift_x: pixels to the right.
        shift_y: pixels down.
        zoom: scale factor.

    Returns:
        ``"identity"`` or e.g. ``"hflip rot=+3.21deg shift=(-4.10,+2.00)px zoom=1.0213"``.
    """
    if not flip and rotation == 0 and shift_x == 0 and shift_y == 0 and zoom == 1:
        return "identity"
    head = "hflip " if flip else ""
    return f"{head}rot={rotation:+.2f}deg shift=({shift_x:+.2f},{shift_y:+.2f})px zoom={zoom:.4f}"


def plan_augmentation(originals: pd.DataFrame, cfg: PaperConfig) -> pd.DataFrame:
    """Decide every image of the augmented set: its source and its exact transform.

    Pure: the same originals, counts and seed give the same plan.

    Args:
        originals: manifest with ``path``, ``label`` and ``sha256`` columns.
        cfg: the configuration (``augmented_counts``, transform ranges, ``seed``,
            ``image_size``).

    Returns:
        A DataFrame with :data:`PLAN_COLUMNS`, originals first within each class. ``group``
        is the source's SHA-256 prefix, so byte-identical originals share a group.

    Raises:
        ValueError: a target count is smaller than the class's number of originals.
    """
    for col in ("path", "label", "sha256"):
        if col not in originals.columns:
            raise ValueError(f"plan_augmentation: originals lack column {col!r}")
    rng = np.random.default_rng(cfg.seed)
    max_shift = cfg.max_shift_frac * cfg.image_size
    rows = []
    for label in CLASSES:
        part = originals[originals["label"] == label].sort_values("path", kind="stable")
        target = cfg.augmented_counts[label]
        if target < len(part):
            raise ValueError(
                f"augmented_counts[{label!r}]={target!r} is smaller than the "
                f"{len(part)} originals of that class"
            )
        sources = list(part.itertuples())
        n_extra = target - len(sources)
        picks = []
        while len(picks) < n_extra:
            picks.extend(rng.permutation(len(sources)).tolist())
        picks = picks[:n_extra]
        for i, src in enumerate(sources):
            rows.append(_row(f"{label}_{i:04d}", src, False, 0.0, 0.0, 0.0, 1.0))
        for j, k in enumerate(picks, start=len(sources)):
            flip = bool(rng.random() < 0.5)
            rot = round(float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)), 2)
            sx = round(float(rng.uniform(-max_shift, max_shift)), 2)
            sy = round(float(rng.uniform(-max_shift, max_shift)), 2)
            zoom = round(float(rng.uniform(1 - cfg.max_zoom, 1 + cfg.max_zoom)), 4)
            rows.append(_row(f"{label}_{j:04d}", sources[k], flip, rot, sx, sy, zoom))
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def _row(id_, src, flip, rot, sx, sy, zoom) -> dict:
    return {
        "id": id_,
        "label": src.label,
        "source": src.path,
        "source_sha256": src.sha256,
        "group": src.sha256[:16],
        "flip": flip,
        "rotation": rot,
        "shift_x": sx,
        "shift_y": sy,
        "zoom": zoom,
        "transform": describe(flip, rot, sx, sy, zoom),
    }


def apply_transform(
    image: np.ndarray,
    flip: bool = False,
    rotation: float = 0.0,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    zoom: float = 1.0,
) -> np.ndarray:
    """Apply one planned transform to a uint8 RGB image.

    Args:
        image: uint8 ``(h, w, 3)``.
        flip: mirror left-right first.
        rotation: degrees counter-clockwise about the centre.
        shift_x: pixels to the right.
        shift_y: pixels down.
        zoom: scale about the centre (>1 enlarges).

    Returns:
        uint8 array of the same shape; the identity returns a copy.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(
            f"apply_transform: expected uint8 (h, w, 3), got {image.dtype} {image.shape}"
        )
    if not zoom > 0:
        raise ValueError(f"apply_transform: zoom must be > 0, got {zoom!r}")
    img = Image.fromarray(image)
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rotation == 0 and shift_x == 0 and shift_y == 0 and zoom == 1:
        return np.array(img, dtype=np.uint8)
    h, w = image.shape[:2]
    cx, cy = w / 2.0, h / 2.0
    theta = math.radians(rotation)
    cos, sin = math.cos(theta) / zoom, math.sin(theta) / zoom
    # Output pixel (x, y) samples input  M @ (p - c - t) + c  with M the inverse rotation
    # (image y points down, so a counter-clockwise turn on screen has this sign pattern).
    ox, oy = cx + shift_x, cy + shift_y
    a, b = cos, -sin
    d, e = sin, cos
    coeffs = (a, b, cx - a * ox - b * oy, d, e, cy - d * ox - e * oy)
    out = img.transform(
        (w, h),
        Image.Transform.AFFINE,
        coeffs,
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.array(out, dtype=np.uint8)


def render(plan: pd.DataFrame, sources, progress: bool = True):
    """Yield ``(row_index, uint8 image)`` for every planned row.

    Args:
        plan: from :func:`plan_augmentation` (or read back from its CSV).
        sources: mapping of each ``source`` path to its resized uint8 original.
        progress: show a tqdm bar.

    Yields:
        The plan's index label and the image.
    """
    with tqdm(total=len(plan), desc="augmenting", disable=not progress, leave=False) as bar:
        for r in plan.itertuples():
            image = apply_transform(
                sources[r.source],
                bool(r.flip),
                float(r.rotation),
                float(r.shift_x),
                float(r.shift_y),
                float(r.zoom),
            )
            yield r.Index, image
            bar.update(1)


def materialize(plan: pd.DataFrame, sources, out_dir: Path, progress: bool = True) -> pd.DataFrame:
    """Write every augmented image as PNG (lossless) and its manifest, atomically.

    Images go to ``out_dir/<label>/<id>.png``; the manifest ``out_dir/../augmented.csv``
    gets the plan plus ``file`` (relative to ``out_dir``) and ``pixel_sha256`` (hash of the
    uint8 pixels, the key of the feature cache).

    Args:
        plan: from :func:`plan_augmentation`.
        sources: mapping of each ``source`` path to its resized uint8 original.
        out_dir: the image folder (``data/processed/augmented``); replaced only once complete.
        progress: show a tqdm bar.

    Returns:
        The manifest written.
    """
    out_dir = Path(out_dir)
    table = plan.copy()
    table["file"] = table["label"] + "/" + table["id"] + ".png"
    hashes = {}
    with atomic_dir(out_dir) as tmp:
        for label in CLASSES:
            (tmp / label).mkdir()
        for idx, image in render(plan, sources, progress):
            hashes[idx] = pixel_key(image)
            Image.fromarray(image).save(tmp / table.at[idx, "file"], format="PNG", compress_level=1)
        table["pixel_sha256"] = [hashes[i] for i in table.index]
        write_csv(table, out_dir.parent / f"{out_dir.name}.csv")
    return table


def load_images(table: pd.DataFrame, image_dir: Path, progress: bool = True) -> np.ndarray:
    """Read materialized augmented images back as one uint8 array.

    Args:
        table: the augmented manifest (``file`` column).
        image_dir: the folder :func:`materialize` wrote.
        progress: show a tqdm bar.

    Returns:
        uint8 array ``(n, size, size, 3)`` in the table's order.
    """
    files = [Path(image_dir) / f for f in table["file"]]
    arrays = [
        np.asarray(open_rgb(f))
        for f in tqdm(files, desc="loading images", disable=not progress, leave=False)
    ]
    return np.stack(arrays) if arrays else np.zeros((0, 0, 0, 3), np.uint8)


def augmentation_pairs(table: pd.DataFrame, n: int = 4, seed: int = 0):
    """``n`` augmented copies beside their sources (seeded choice).

    Args:
        table: the augmented manifest.
        n: pairs.
        seed: random seed.

    Returns:
        List of ``(source image, copy, transform text)``.
    """
    rng = np.random.default_rng(seed)
    copies = table[table["transform"] != "identity"]
    picks = copies.iloc[rng.permutation(len(copies))[:n]]
    originals = (
        table[table["transform"] == "identity"].drop_duplicates("source").set_index("source")
    )
    folder = AUGMENTED_DIR
    return [
        (
            np.asarray(open_rgb(folder / originals.loc[r.source, "file"])),
            np.asarray(open_rgb(folder / r.file)),
            f"{r.id}: {r.transform}",
        )
        for r in picks.itertuples()
    ]
