"""A corpus of images that are not lung CT slices, to test the input check.

The corpus is what the input check of ``predict`` must refuse: photographs, other imaging
modalities, digits, charts, text, gradients, patterns, grey look-alikes of a CT slice (MRI
slices, microscopy, chest radiographs), and three kinds made from real CT slices that are
still not slices as a user would give them (an inverted slice, a heavy off-centre crop of
30-45% of the side, and a wide off-centre crop of 60-70% of the side, in grey).

**Files.** Every item that does not depend on the dataset is a committed PNG under
``data/non_ct/`` (:data:`lungct_utils.config.NON_CT_DIR`), listed in its ``manifest.csv``
(file, kind, order, part, label, source, licence, sha256; ``README.md`` there says how they
were made): samples of scikit-image, scikit-learn and matplotlib, and images drawn by code.
The corpus is one fixed data set: the images drawn from random numbers (charts, a table,
terminal text, dots, blobs, noise, shapes, and the drawn MRI slices, nuclei and radiographs)
are stored as one draw, and no seed of a caller changes them. Grey images are stored as one
channel and read back as three equal ones.
The manifest's SHA-256 is pinned here (:data:`MANIFEST_SHA256`) and each file's is in the
manifest, so the files cannot change without this module changing (and with it every
results-cache key that names it).

**CT-derived items.** The inverted, cropped and wide-cropped items are the dataset's pixels,
so they are made at run time from the caller's ``ct_images``: twelve slices spread over the
array, each used by one item (:func:`ct_picks`, :func:`wide_ct_picks`). Nothing random goes
into them: the same slices give the same items.

**Parts.** Each kind lists its items in a fixed order; the item at position ``p`` (0-based)
is in the ``"design"`` part when ``p % 3 == 0`` and in the ``"held-out"`` part otherwise.
Thresholds and rules may be tuned on the design part; no threshold or classifier is fitted on
the held-out part (about two thirds), which reports how well they work. The corpus and the
check's layers were written (and widened) together, so the held-out part is held out from
fitting, not from design. A grey photograph is never a grey copy of an
image used as a colour photograph, and an item made from another item's picture sits at a
position of that item's part: the variants of the MRI slice and of immunohistochemistry are
held-out, the window of cell is design. Each kind has items in both parts.

Every image is 8-bit RGB. The stored ones were sized by one rule (a shorter side under 200
pixels upscaled to 256, a longer side over 700 downscaled to 700); the CT-derived ones are
224 pixels square.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from . import config
from .io_utils import DataError

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
#: The kinds made from the caller's CT slices; every other kind is read from files.
CT_KINDS = ("inverted CT", "cropped CT", "wide-cropped CT")
#: Within a kind, the item at position p is in the design part when p % DESIGN_EVERY == 0.
DESIGN_EVERY = 3
#: SHA-256 of ``manifest.csv`` (read with ``\n`` line ends): the files this module reads.
MANIFEST_SHA256 = "ceae56068840c9aca4d7ea2cbc391308596d342745778f75814cf3e65e66ddf5"
MANIFEST_COLUMNS = (
    "file",
    "kind",
    "order",
    "part",
    "label",
    "source",
    "licence",
    "sha256",
)
#: Fewest CT slices ``non_ct_corpus`` accepts (it uses twelve, each once).
MIN_CT_IMAGES = 12
#: Smallest CT side accepted (a 30% window of it still has 19 pixels).
MIN_CT_SIDE = 64
#: Side of the CT-derived items (the model's input size).
CT_SIDE = 224
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

Labelled = list[tuple[str, Image.Image]]


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


# ----------------------------------------------------------------------------- files


def read_manifest(folder: Path | None = None) -> pd.DataFrame:
    """The manifest of the stored corpus images, checked against :data:`MANIFEST_SHA256`.

    Args:
        folder: the corpus folder; :data:`lungct_utils.config.NON_CT_DIR` when None.

    Returns:
        One row per file, the columns of :data:`MANIFEST_COLUMNS` as text.

    Raises:
        DataError: the manifest is missing, unreadable or not the pinned one.
    """
    path = Path(config.NON_CT_DIR if folder is None else folder) / "manifest.csv"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: the non-CT corpus manifest is unreadable ({exc})") from None
    digest = hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()
    if digest != MANIFEST_SHA256:
        raise DataError(f"{path}: SHA-256 {digest} is not the corpus's {MANIFEST_SHA256}")
    return pd.read_csv(BytesIO(raw), dtype=str, keep_default_na=False)


def _read_image(path: Path, sha256: str) -> Image.Image:
    """A stored corpus image as RGB, after checking its bytes.

    Args:
        path: the PNG file.
        sha256: its SHA-256 from the manifest.

    Returns:
        The decoded image, loaded, RGB.

    Raises:
        DataError: the file is missing, unreadable, changed or not an image.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: a non-CT corpus file is unreadable ({exc})") from None
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(f"{path}: a non-CT corpus file differs from its manifest's SHA-256")
    try:
        with Image.open(BytesIO(raw)) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: a non-CT corpus file is not a readable image ({exc})") from None


def stored_items(folder: Path | None = None) -> dict[str, Labelled]:
    """The stored images, kind by kind.

    Args:
        folder: the corpus folder; :data:`lungct_utils.config.NON_CT_DIR` when None.

    Returns:
        Kind -> ``(label, image)`` in the kind's fixed order, for every kind not in
        :data:`CT_KINDS`.

    Raises:
        DataError: a file is missing, unreadable or changed (see :func:`read_manifest`).
    """
    folder = Path(config.NON_CT_DIR if folder is None else folder)
    rows = read_manifest(folder)
    rows = rows.assign(position=rows["order"].astype(int))
    return {
        kind: [
            (r.label, _read_image(folder / r.file, r.sha256))
            for r in group.sort_values("position").itertuples()
        ]
        for kind, group in rows.groupby("kind", sort=False)
    }


# ----------------------------------------------------------------------------- CT-derived


def ct_picks(n: int) -> list[int]:
    """Ten distinct indices spread over ``n >= 10`` CT slices, first and last included.

    Args:
        n: number of CT slices.

    Returns:
        The inverted items' slices at even positions, the cropped items' at odd ones.
    """
    return [k * (n - 1) // 9 for k in range(10)]


def wide_ct_picks(n: int, taken: Sequence[int]) -> list[int]:
    """One index per wide crop window, each not in ``taken`` and not picked before.

    Window ``k`` of ``m`` takes the free index nearest to ``(k + 0.5) / m`` of the way
    through the slices (the lower one on a tie), so the picks of :func:`ct_picks` and the
    items made from them do not depend on the wide crops.

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


def _span(length: int, share: float, centre: float) -> tuple[int, int]:
    """``(start, stop)`` of ``share`` of a length centred near ``centre`` (0-1), inside it."""
    size = max(1, round(share * length))
    start = min(max(round(centre * length - size / 2), 0), length - size)
    return start, start + size


def _crop_box(side: int, share: float, cx: float, cy: float) -> tuple[int, int, int, int]:
    """A square window of ``share`` of the side centred near ``(cx, cy)``, inside the image."""
    (x0, x1), (y0, y1) = _span(side, share, cx), _span(side, share, cy)
    return x0, y0, x1, y1


def _resized(img: Image.Image) -> Image.Image:
    """An image resized to :data:`CT_SIDE` square (bilinear)."""
    return img.resize((CT_SIDE, CT_SIDE), Image.Resampling.BILINEAR)


def _crops(ct_images: np.ndarray, indices: Sequence[int], windows: Sequence[tuple]) -> Labelled:
    """Slice ``indices[k]`` cropped to window ``windows[k]``, resized to :data:`CT_SIDE`.

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices, already checked.
        indices: one slice index per window.
        windows: ``(share, cx, cy)`` crop windows (see :func:`_crop_box`).

    Returns:
        ``(label, image)`` in window order; a label names the slice and the box.
    """
    boxes = [_crop_box(ct_images.shape[1], *window) for window in windows]
    return [
        (f"ct_images[{i}], box {box}", _resized(Image.fromarray(ct_images[i], "RGB").crop(box)))
        for i, box in zip(indices, boxes, strict=True)
    ]


def ct_items(ct_images: np.ndarray) -> dict[str, Labelled]:
    """The inverted, cropped and wide-cropped CT items, each from its own slice.

    Ten picks spread over the slices alternate between an inverted slice (255 minus it) and
    a crop; the wide crops take two other slices and are turned grey. Every item is resized
    to :data:`CT_SIDE` (bilinear).

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices, already checked.

    Returns:
        Kind of :data:`CT_KINDS` -> ``(label, image)`` in its fixed order; a label names
        the slice (``ct_images[i]``) and, for a crop, its box.
    """
    picks = ct_picks(len(ct_images))
    wide = _crops(ct_images, wide_ct_picks(len(ct_images), picks), WIDE_CROP_WINDOWS)
    inverted = [
        (f"ct_images[{i}]", _resized(Image.fromarray(255 - ct_images[i], "RGB")))
        for i in picks[0::2]
    ]
    return {
        "inverted CT": inverted,
        "cropped CT": _crops(ct_images, picks[1::2], CROP_WINDOWS),
        "wide-cropped CT": [(label, img.convert("L").convert("RGB")) for label, img in wide],
    }


# ----------------------------------------------------------------------------- public


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


def _part(position: int) -> str:
    """The part of the item at ``position`` within its kind."""
    return PARTS[0] if position % DESIGN_EVERY == 0 else PARTS[1]


def non_ct_corpus(ct_images: np.ndarray, *, folder: Path | None = None) -> list[Item]:
    """The non-CT corpus: the stored images and the items made from ``ct_images``.

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` real CT slices, ``n >= 12`` and ``s >= 64``; twelve
            of them, spread over the array and each used once, become the inverted, cropped
            and wide-cropped CT items.
        folder: the corpus folder; :data:`lungct_utils.config.NON_CT_DIR` when None.

    Returns:
        The items, kind by kind in :data:`KINDS` order, each kind in its fixed order.

    Raises:
        ValueError: on a bad ``ct_images``.
        DataError: a stored file is missing, unreadable or changed.
    """
    _check_ct(ct_images)
    made = {**stored_items(folder), **ct_items(ct_images)}
    return [
        Item(f"{kind}: {label}", kind, _part(position), image)
        for kind in KINDS
        for position, (label, image) in enumerate(made[kind])
    ]


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
