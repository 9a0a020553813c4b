"""Read a labelled folder of CT slices: an external test set, scored as a whole.

**Layout.** ``ROOT/[split/...]/CLASS_FOLDER/[...]/image``: the first folder level under
``ROOT`` whose name maps to a class (:func:`class_of`, by case-insensitive prefix, longest
prefix first) is the image's class folder; the folders above it are its ``split`` ("" when
none), so ``train/normal/x.png`` and ``normal/x.png`` both work. The defaults
(:data:`DEFAULT_PREFIXES`) read the Kaggle "Chest CT-Scan images" release, whose folders
carry staging suffixes (``adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib`` is malignant), and
the IQ-OTH/NCCD release (``Bengin cases``). JPEG and PNG files count; files outside every
class folder are not read.

**Pixels, not bytes.** Each file is decoded and its pixels hashed (:func:`pixel_sha`: RGBA
composited on black, then grey when the three channels are equal, else RGB), so byte
copies (``10 - Copy.png``) and re-encodings of the same pixels (a PNG saved again as RGB)
share one key. :func:`distinct` keeps one row per pixel content; content filed under two
*classes* is a labelling conflict and is left out (and listed), content filed under two
subtype folders of one class is kept once.

**The case proxy** (:func:`case_proxy`). The release has no patient identifiers, and its
slices of one patient are not independent, so an interval must resample groups of slices
that probably belong together. The proxy is a **guess**, documented rather than known:

1. *File names*: within one class folder (the folder's name, so ``train/normal`` and
   ``valid/normal`` are one folder), slices whose normalised stems are equal are linked
   (:func:`normalise_stem`: the extension, ``" - Copy"`` and ``" (N)"`` copy suffixes and
   outer spaces stripped, so ``000108 (3).png`` and ``000108.png`` are one stem). The names hint
   at cases but the release does not document them.
2. *Near-duplicates*: slices of one class whose grey thumbnails are nearly equal are
   linked, by the thumbnail rule the repository already uses for near-duplicates
   (:data:`lungct_utils.groupings.PEER_MERGE`: 64x64 thumbnails of the centre square, an
   L2 distance below 3.0). Slices of two classes are never linked (two patients).

The proxy is the connected component of the union of both links (byte copies are one row
already). It may join two patients (an over-large cluster widens an interval, the safe
side) or split one (slices of one scan that differ in name and look: intervals too narrow).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from PIL import Image

from .cases import merge_groups
from .config import CLASSES
from .groupings import PEER_MERGE, PEER_THUMBNAIL, resize_linear
from .images import decoded, to_rgb
from .io_utils import DataError, sha256_bytes

#: Folder-name prefix (lower case) -> class.
DEFAULT_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "adenocarcinoma": "malignant",
        "large.cell.carcinoma": "malignant",
        "squamous.cell.carcinoma": "malignant",
        "malignant": "malignant",
        "normal": "normal",
        "bengin": "benign",
        "benign": "benign",
    }
)
#: The image files read (by suffix, any case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: The columns of :func:`scan`.
SCAN_COLUMNS = (
    "path",
    "split",
    "folder",
    "class",
    "width",
    "height",
    "mode",
    "pixel_sha",
    "error",
)
#: One sentence on the case proxy, for reports.
PROXY_DESCRIPTION = (
    "A guess at patients (the release has none): connected components of slices linked by "
    "equal normalised file stems within a class folder (copy suffixes ' - Copy' and ' (N)' "
    "stripped) or by near-duplicate grey thumbnails within a class (64x64 centre square, "
    f"L2 distance below {PEER_MERGE:g})."
)
_COPY_SUFFIX = re.compile(r"(\s*-\s*copy|\s*\(\d+\))$", re.IGNORECASE)


def class_of(folder_name: str, prefixes: Mapping[str, str] = DEFAULT_PREFIXES) -> str:
    """The class of a folder, by the longest prefix its name starts with (any case).

    Args:
        folder_name: a folder's name, e.g. ``"adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib"``.
        prefixes: prefix -> class.

    Returns:
        One of :data:`~lungct_utils.config.CLASSES`.

    Raises:
        ValueError: no prefix matches; the message names the folder.
    """
    name = str(folder_name).strip().lower()
    matches = [p for p in prefixes if name.startswith(p.lower())]
    if not matches:
        known = ", ".join(sorted(prefixes))
        raise ValueError(f"folder {folder_name!r} matches no class prefix (known: {known})")
    return prefixes[max(matches, key=len)]


def parse_classes(text: str, base: Mapping[str, str] = DEFAULT_PREFIXES) -> dict[str, str]:
    """Prefix mappings from ``"PREFIX=CLASS,..."``, extending and overriding ``base``.

    Args:
        text: comma-separated ``PREFIX=CLASS`` pairs, e.g. ``"tumour=malignant,ctrl=normal"``.
        base: the mappings they extend (the defaults).

    Returns:
        prefix (lower case) -> class.

    Raises:
        ValueError: an empty text, a pair without ``=``, an empty prefix or an unknown
            class; the message quotes it.
    """
    out = {p.lower(): c for p, c in base.items()}
    pairs = [part.strip() for part in str(text).split(",") if part.strip()]
    if not pairs:
        raise ValueError(f"expected PREFIX=CLASS,..., got {text!r}")
    for pair in pairs:
        prefix, sep, label = (s.strip() for s in pair.partition("="))
        if not sep or not prefix:
            raise ValueError(f"expected PREFIX=CLASS, got {pair!r}")
        if label.lower() not in CLASSES:
            raise ValueError(f"class must be one of {', '.join(CLASSES)}, got {label!r}")
        out[prefix.lower()] = label.lower()
    return out


def _known(name: str, prefixes: Mapping[str, str]) -> str | None:
    try:
        return class_of(name, prefixes)
    except ValueError:
        return None


def image_files(root: Path) -> list[Path]:
    """The JPEG and PNG files under a folder, recursively, sorted (hidden names skipped).

    Args:
        root: the folder.

    Returns:
        Paths.
    """
    root = Path(root)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def locate(relative: Path, prefixes: Mapping[str, str] = DEFAULT_PREFIXES) -> tuple | None:
    """Where a file sits: its split, class folder and class.

    Args:
        relative: the file's path relative to the root.
        prefixes: prefix -> class.

    Returns:
        ``(split, folder, class)`` (``split`` the folders above the class folder joined by
        ``/``, "" when none), or None when no folder on the way maps to a class.
    """
    folders = Path(relative).parts[:-1]
    for depth, name in enumerate(folders):
        label = _known(name, prefixes)
        if label is not None:
            return "/".join(folders[:depth]), name, label
    return None


def find(root: Path, prefixes: Mapping[str, str] = DEFAULT_PREFIXES) -> list[tuple]:
    """The image files of a labelled folder with their place, without decoding them.

    Args:
        root: the folder.
        prefixes: prefix -> class.

    Returns:
        ``(path, split, folder, class)`` per file in a class folder, sorted by path.

    Raises:
        DataError: ``root`` is missing or not a folder, holds no JPEG or PNG file, or no
            folder under it maps to a class (the message lists the folder names found).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    files = image_files(root)
    if not files:
        raise DataError(f"{root}: holds no JPEG or PNG files")
    found = []
    for path in files:
        place = locate(path.relative_to(root), prefixes)
        if place is not None:
            found.append((path, *place))
    if not found:
        names = sorted({n for p in files for n in p.relative_to(root).parts[:-1]})
        shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
        raise DataError(
            f"{root}: no class folder (a name starting with one of "
            f"{', '.join(sorted(prefixes))}); folders found: "
            f"{shown or 'none (the images sit directly in it)'}"
        )
    return found


def pixel_sha(rgb: np.ndarray) -> str:
    """The key of an image's pixels: SHA-256 of its grey (or RGB) levels and shape.

    Args:
        rgb: uint8 ``(h, w, 3)``.

    Returns:
        64 hex characters; the same for a grey image stored as grey or as RGB.
    """
    rgb = np.asarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"pixel_sha: expected (h, w, 3) pixels, got shape {rgb.shape}")
    grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    pixels = np.ascontiguousarray(rgb[..., 0] if grey else rgb)
    return sha256_bytes(f"{pixels.shape}".encode() + pixels.tobytes())


def inspect(path: Path) -> dict:
    """Size, mode and pixel key of one image file, or its error.

    Args:
        path: the file.

    Returns:
        ``{"width", "height", "mode", "pixel_sha", "error"}`` (``error`` "" when read;
        otherwise the other values are empty).
    """
    try:
        with decoded(path) as img:
            size, mode, rgb = img.size, img.mode, np.asarray(to_rgb(img))
    except DataError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        return {"width": 0, "height": 0, "mode": "", "pixel_sha": "", "error": message}
    return {
        "width": int(size[0]),
        "height": int(size[1]),
        "mode": mode,
        "pixel_sha": pixel_sha(rgb),
        "error": "",
    }


def scan(root: Path, prefixes: Mapping[str, str] = DEFAULT_PREFIXES) -> pd.DataFrame:
    """Every image file in the class folders of ``root``, decoded and keyed by its pixels.

    Args:
        root: the labelled folder.
        prefixes: prefix -> class.

    Returns:
        DataFrame :data:`SCAN_COLUMNS`, one row per file, sorted by ``path`` (the file's
        path as found under ``root``). An unreadable file has its ``error`` set.

    Raises:
        DataError: as :func:`find`.
    """
    rows = [
        {"path": str(path), "split": split, "folder": folder, "class": label, **inspect(path)}
        for path, split, folder, label in find(root, prefixes)
    ]
    return pd.DataFrame(rows, columns=list(SCAN_COLUMNS))


def normalise_stem(name: str) -> str:
    """A file name without extension and copy suffixes (the name-based link of the proxy).

    ``" - Copy"`` and ``" (N)"`` are stripped from the end as often as they occur, then
    spaces. A ``" (N)"`` is kept when nothing numbered would remain (IQ-OTH/NCCD's
    ``Malignant case (367).jpg``: there the number is the slice's own).

    Args:
        name: a file name, e.g. ``"10 - Copy (2) - Copy.png"``.

    Returns:
        The stem, e.g. ``"10"``.
    """
    stem = Path(str(name)).stem.strip()
    while match := _COPY_SUFFIX.search(stem):
        shorter = stem[: match.start()].strip()
        if not shorter or (
            match.group(0).strip().startswith("(") and not re.search(r"\d", shorter)
        ):
            break
        stem = shorter
    return stem


def stem_key(folder: str, name: str) -> str:
    """The name-based case key of a file: its class folder and normalised stem.

    Args:
        folder: the class folder's name.
        name: the file's name.

    Returns:
        ``"folder/stem"``.
    """
    return f"{folder}/{normalise_stem(name)}"


def distinct(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per pixel content among the readable files; cross-class content set apart.

    Args:
        frame: from :func:`scan`.

    Returns:
        ``(kept, conflicts)``. ``kept``: the columns of :func:`scan` for the first path (in
        sorted order) of each content, plus ``n_copies`` (files holding it), ``folders``
        (tuple of every class folder it sits in, sorted) and ``stem_keys`` (tuple of the
        :func:`stem_key` of every copy, sorted); sorted by ``path``. ``conflicts``: per
        content filed under two or more classes, ``pixel_sha``, ``paths`` and ``classes``
        (sorted tuples); its files are not in ``kept``.
    """
    read = frame[frame["error"] == ""].sort_values("path", kind="stable")
    keys = [stem_key(f, Path(p).name) for f, p in zip(read["folder"], read["path"], strict=True)]
    read = read.assign(stem_key=pd.Series(keys, index=read.index, dtype=object))
    if read.empty:
        kept_columns = [*SCAN_COLUMNS, "n_copies", "folders", "stem_keys"]
        return pd.DataFrame(columns=kept_columns), pd.DataFrame(
            columns=["pixel_sha", "paths", "classes"]
        )
    groups = read.groupby("pixel_sha", sort=False)
    summary = groups.agg(
        n_copies=("path", "size"),
        n_classes=("class", "nunique"),
        folders=("folder", lambda s: tuple(sorted(set(s)))),
        stem_keys=("stem_key", lambda s: tuple(sorted(set(s)))),
        paths=("path", lambda s: tuple(sorted(s))),
        classes=("class", lambda s: tuple(sorted(set(s)))),
    )
    clash = summary["n_classes"] > 1
    conflicts = summary.loc[clash, ["paths", "classes"]].reset_index()
    first = read.drop_duplicates("pixel_sha", keep="first").set_index("pixel_sha")
    ok = summary.index[~clash]
    kept = first.loc[ok, [c for c in SCAN_COLUMNS if c != "pixel_sha"]].assign(
        n_copies=summary.loc[ok, "n_copies"],
        folders=summary.loc[ok, "folders"],
        stem_keys=summary.loc[ok, "stem_keys"],
    )
    kept = kept.reset_index()[[*SCAN_COLUMNS, "n_copies", "folders", "stem_keys"]]
    kept = kept.sort_values("path", kind="stable").reset_index(drop=True)
    return kept, conflicts.sort_values("pixel_sha").reset_index(drop=True)


def thumbnail(img: Image.Image) -> np.ndarray:
    """The near-duplicate thumbnail of an image: grey centre square, 150x150, then 64x64.

    The rule of :func:`lungct_utils.groupings.peer_thumbnails`, on the decoded pixels
    (alpha composited on black).

    Args:
        img: a loaded Pillow image.

    Returns:
        float ``(4096,)`` in [0, 1].
    """
    grey = np.asarray(to_rgb(img).convert("L"))
    h, w = grey.shape
    s = min(h, w)
    square = grey[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    small = np.clip(np.round(resize_linear(square, 150)), 0, 255)
    return resize_linear(small / 255.0, PEER_THUMBNAIL).ravel()


def thumbnails(paths) -> np.ndarray:
    """:func:`thumbnail` of each file.

    Args:
        paths: readable image files.

    Returns:
        float ``(n, 4096)``.

    Raises:
        DataError: a file cannot be decoded.
    """
    out = []
    for path in paths:
        with decoded(Path(path)) as img:
            out.append(thumbnail(img))
    return np.stack(out) if out else np.zeros((0, PEER_THUMBNAIL**2))


def near_duplicate_pairs(thumbs: np.ndarray, classes, merge: float = PEER_MERGE) -> np.ndarray:
    """Pairs of slices of one class whose thumbnails are near-duplicates.

    Args:
        thumbs: ``(n, d)`` from :func:`thumbnails`.
        classes: class per row.
        merge: link when the L2 distance of two thumbnails is below it.

    Returns:
        int ``(m, 2)`` index pairs ``i < j``.
    """
    t = np.asarray(thumbs, np.float64)
    labels = np.asarray(classes, dtype=object)
    if len(t) != len(labels):
        raise ValueError(f"near_duplicate_pairs: {len(t)} thumbnails for {len(labels)} classes")
    norms = np.sum(t * t, axis=1)
    squared = norms[:, None] + norms[None, :] - 2 * t @ t.T
    close = np.triu(squared < merge**2, 1) & (labels[:, None] == labels[None, :])
    return np.argwhere(close).astype(np.int64).reshape(-1, 2)


def stem_pairs(stem_keys) -> np.ndarray:
    """Pairs of rows that share a name-based case key.

    Args:
        stem_keys: per row, an iterable of :func:`stem_key` values (a content's copies).

    Returns:
        int ``(m, 2)``: each row holding a key, paired with the first row holding it.
    """
    first: dict[str, int] = {}
    pairs = []
    for row, keys in enumerate(stem_keys):
        for key in keys:
            pairs.append((first.setdefault(key, row), row))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def proxy_groups(stem_keys, thumbs: np.ndarray, classes, merge: float = PEER_MERGE) -> np.ndarray:
    """The case proxy from its two links (pure): connected components of their union.

    Args:
        stem_keys: per row, its :func:`stem_key` values.
        thumbs: ``(n, d)`` thumbnails of the rows.
        classes: class per row.
        merge: the near-duplicate distance (:func:`near_duplicate_pairs`).

    Returns:
        int ``(n,)`` proxy ids, 0, 1, ... in order of first appearance.
    """
    pairs = np.vstack([stem_pairs(stem_keys), near_duplicate_pairs(thumbs, classes, merge)])
    return merge_groups(np.arange(len(thumbs)), pairs)


def case_proxy(frame: pd.DataFrame, thumbs: np.ndarray | None = None) -> np.ndarray:
    """The case proxy of each distinct slice (see the module's docstring: a guess).

    Args:
        frame: ``kept`` from :func:`distinct` (``path``, ``class``, ``stem_keys``).
        thumbs: their :func:`thumbnails`, or None to read them from ``path``.

    Returns:
        int ``(n,)`` proxy ids, 0, 1, ... in row order of first appearance.
    """
    if thumbs is None:
        thumbs = thumbnails(frame["path"])
    return proxy_groups(frame["stem_keys"], thumbs, frame["class"].to_numpy())
