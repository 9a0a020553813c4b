"""The IQ-OTH/NCCD release: find, scan and verify it (``make verify``).

The release (alyasriy & AL-Huseiny 2021, Mendeley Data, doi:10.17632/bhmdr45bh2, CC BY 4.0)
ships three folders, ``Bengin cases`` (sic), ``Malignant cases`` and ``Normal cases``. Common
re-packagings are tolerated: up to two extra nesting levels (the Kaggle copy has one or two)
and lower-case ``benign/malignant/normal`` names. Files whose names start with a dot and
``Thumbs.db`` are ignored everywhere; files directly beside the class folders (the
dataset's own description ``.txt``) are ignored too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .config import CLASSES, INTERIM, MANIFEST_CSV
from .images import decoded
from .io_utils import DataError, sha256_file, write_json

#: Folder-name stems (lower case, " cases"/" case" removed) -> label.
FOLDER_LABELS = {
    "bengin": "benign",
    "benign": "benign",
    "malignant": "malignant",
    "normal": "normal",
}
MANIFEST_COLUMNS = ["path", "label", "sha256", "width", "height", "mode"]
#: What :func:`scan_files` remembers of files it decoded (keyed by path, size and mtime).
SCAN_CACHE = INTERIM / "scan_cache.json"
_IGNORED = {"thumbs.db", "desktop.ini", "__macosx"}
_MAX_NESTING = 2


def folder_label(name: str) -> str | None:
    """Map a class-folder name to its label.

    Args:
        name: a folder name such as ``"Bengin cases"`` or ``"benign"``.

    Returns:
        ``"benign"``, ``"malignant"`` or ``"normal"``, or None for any other name.
    """
    stem = re.sub(r"[\s_-]*cases?$", "", name.strip().lower())
    return FOLDER_LABELS.get(stem)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name.lower() not in _IGNORED


@dataclass(frozen=True)
class Release:
    """A located release: its root and one folder per label.

    Attributes:
        root: the folder holding the class folders.
        class_dirs: label -> class folder.
        unknown_dirs: other folders beside the class folders.
    """

    root: Path
    class_dirs: dict[str, Path]
    unknown_dirs: tuple[Path, ...] = field(default_factory=tuple)


def _class_dirs_in(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for child in sorted(folder.iterdir()):
        if child.is_dir() and _visible(child):
            label = folder_label(child.name)
            if label:
                found.setdefault(label, []).append(child)
    return found


def find_release(root: Path) -> Release:
    """Locate the class folders under ``root`` (at most two extra nesting levels).

    Args:
        root: the release folder, or a folder that wraps it.

    Returns:
        The located :class:`Release`.

    Raises:
        DataError: ``root`` is not a folder, no class folder is found, a class is missing,
            or two folders map to one label.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected the IQ-OTH/NCCD release folder)")
    level = [root]
    for _ in range(_MAX_NESTING + 1):
        for folder in level:
            found = _class_dirs_in(folder)
            if found:
                return _release_from(folder, found)
        level = [c for f in level for c in sorted(f.iterdir()) if c.is_dir() and _visible(c)]
    raise DataError(
        f"{root}: no class folders found (expected 'Bengin cases', 'Malignant cases' and "
        "'Normal cases', or benign/malignant/normal, at most two levels down)"
    )


def _release_from(folder: Path, found: dict[str, list[Path]]) -> Release:
    for label, dirs in found.items():
        if len(dirs) > 1:
            names = ", ".join(repr(d.name) for d in dirs)
            raise DataError(f"{folder}: several folders map to class {label!r}: {names}")
    missing = [c for c in CLASSES if c not in found]
    if missing:
        raise DataError(f"{folder}: missing class folder for {', '.join(missing)}")
    known = {d[0] for d in found.values()}
    unknown = tuple(
        c for c in sorted(folder.iterdir()) if c.is_dir() and _visible(c) and c not in known
    )
    return Release(folder, {c: found[c][0] for c in CLASSES}, unknown)


def class_files(release: Release) -> list[tuple[Path, str]]:
    """Every visible file in the class folders (recursively), with its label.

    Args:
        release: a located release.

    Returns:
        ``(path, label)`` pairs sorted by path.
    """
    out = []
    for label, folder in release.class_dirs.items():
        for path in sorted(folder.rglob("*")):
            rel_parts = path.relative_to(folder).parts
            if path.is_file() and all(not p.startswith(".") for p in rel_parts) and _visible(path):
                out.append((path, label))
    return out


def inspect_image(path: Path) -> dict:
    """Fully decode an image and report its size and mode.

    Args:
        path: the image file.

    Returns:
        ``{"width", "height", "mode", "format"}``.

    Raises:
        DataError: the file is empty, not an image, or corrupt/truncated.
    """
    with decoded(path) as img:
        return {"width": img.width, "height": img.height, "mode": img.mode, "format": img.format}


def scan_files(
    release: Release, progress: bool = True, cache: Path | None = SCAN_CACHE
) -> tuple[pd.DataFrame, list[tuple[Path, str, DataError]]]:
    """Hash and decode every file of a release.

    A file already scanned with the same path, size and modification time is not decoded
    again: its hash, size and mode come from ``cache`` (a JSON file; None to skip it).

    Args:
        release: a located release.
        progress: show a tqdm bar.
        cache: the scan cache.

    Returns:
        The manifest of readable images (columns :data:`MANIFEST_COLUMNS`, ``path``
        relative to the release root in POSIX form) and ``(path, label, error)`` for each
        unreadable file.
    """
    known = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    rows, problems, fresh = [], [], {}
    files = class_files(release)
    for path, label in tqdm(files, desc="scanning images", disable=not progress, leave=False):
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        info = known.get(key)
        if info is None:
            try:
                info = {k: v for k, v in inspect_image(path).items() if k != "format"}
            except DataError as exc:
                problems.append((path, label, exc))
                continue
            info["sha256"] = sha256_file(path)
        fresh[key] = info
        rows.append({"path": path.relative_to(release.root).as_posix(), "label": label, **info})
    if cache is not None and fresh.keys() - known.keys():
        alive = {k: v for k, v in known.items() if Path(k.split("|")[0]).exists()}
        write_json({**alive, **fresh}, cache)
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS), problems


def load_manifest(root: Path, progress: bool = True) -> pd.DataFrame:
    """The manifest of a release, failing on any unreadable file or empty class.

    Args:
        root: the release folder (or a folder wrapping it).
        progress: show a tqdm bar.

    Returns:
        A DataFrame with :data:`MANIFEST_COLUMNS` plus ``abspath``.

    Raises:
        DataError: the folder layout is wrong, a class is empty or a file is unreadable.
    """
    release = find_release(root)
    if release.unknown_dirs:
        names = ", ".join(repr(d.name) for d in release.unknown_dirs)
        raise DataError(f"{release.root}: unknown class folder(s) {names}; expected {CLASSES}")
    manifest, problems = scan_files(release, progress=progress)
    if problems:
        raise DataError("; ".join(str(exc) for _, _, exc in problems))
    for label in CLASSES:
        if not (manifest["label"] == label).any():
            raise DataError(f"{release.class_dirs[label]}: class folder has no images")
    manifest["abspath"] = [str(release.root / p) for p in manifest["path"]]
    return manifest


def read_reference(csv_path: Path = MANIFEST_CSV) -> pd.DataFrame:
    """The committed reference manifest.

    Args:
        csv_path: its path (default ``data/manifest.csv``).

    Returns:
        The table with :data:`MANIFEST_COLUMNS`.

    Raises:
        DataError: the file is missing or lacks columns.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: reference manifest not found")
    ref = pd.read_csv(csv_path, dtype={"sha256": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in ref.columns]
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {missing}")
    return ref


def _match_key(path: str, label: str) -> tuple[str, str]:
    # Re-packagings rename folders, not files: match on (label, file name).
    return label, Path(path).name


@dataclass
class VerifyReport:
    """What :func:`verify_release` found.

    Attributes:
        root: the located release root (or the folder given, if none was found).
        manifest: readable images found.
        problems: one line per missing, extra, unreadable, non-image or changed file.
    """

    root: Path
    manifest: pd.DataFrame
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when the folder matches the reference manifest exactly."""
        return not self.problems


def verify_release(
    root: Path, reference: pd.DataFrame | None = None, progress: bool = True
) -> VerifyReport:
    """Compare a release folder with the reference manifest, file by file.

    Args:
        root: the release folder (or a folder wrapping it).
        reference: the reference manifest (default: ``data/manifest.csv``).
        progress: show a tqdm bar.

    Returns:
        A :class:`VerifyReport`; ``ok`` is True only when every reference file is present
        and unchanged and nothing else is there.
    """
    reference = read_reference() if reference is None else reference
    try:
        release = find_release(root)
    except DataError as exc:
        return VerifyReport(Path(root), pd.DataFrame(columns=MANIFEST_COLUMNS), [str(exc)])
    manifest, bad = scan_files(release, progress=progress)
    problems = [_kind_line(str(exc)) for _, _, exc in bad]
    unreadable = {_match_key(path.name, label) for path, label, _ in bad}
    for folder in release.unknown_dirs:
        problems.append(f"unknown folder: {folder} (not a class folder)")
    expected = {_match_key(r.path, r.label): r for r in reference.itertuples()}
    seen = set()
    for row in manifest.itertuples():
        key = _match_key(row.path, row.label)
        ref = expected.get(key)
        if ref is None:
            problems.append(
                f"extra file: {release.root / row.path} (not in the reference manifest)"
            )
        elif ref.sha256 != row.sha256:
            problems.append(
                f"changed file: {release.root / row.path} (sha256 {row.sha256[:12]}..., "
                f"expected {ref.sha256[:12]}...)"
            )
        seen.add(key)
    for key, ref in expected.items():
        if key not in seen and key not in unreadable:
            problems.append(f"missing file: {release.root / ref.path}")
    return VerifyReport(release.root, manifest, problems)


def _kind_line(message: str) -> str:
    if "not an image" in message or "empty file" in message:
        return f"not an image: {message}"
    return f"unreadable: {message}"
