"""Small file helpers: hashing and atomic writes (temp path, then rename)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The SHA-256 hex digest of a file's bytes.

    Args:
        path: the file.

    Returns:
        64 hex characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    Nothing half-written is left behind: on an exception the temporary file is removed and
    ``target`` keeps its old content (or stays absent).

    Args:
        target: the final file path; its folder is created if needed.

    Yields:
        The temporary path to write to.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; swap it into place on success.

    An existing ``target`` is replaced only after the new folder is complete.

    Args:
        target: the final folder path.

    Yields:
        The temporary folder to fill.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(source: Path, target: Path) -> Path:
    """Move a complete folder onto ``target``, replacing any old one only at the end.

    Args:
        source: the finished folder (on the same file system as ``target``).
        target: where it belongs.

    Returns:
        ``target``.
    """
    target = Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def write_csv(df: pd.DataFrame, target: Path) -> Path:
    """Write a DataFrame to CSV atomically (no index).

    Args:
        df: the table.
        target: the CSV path.

    Returns:
        ``target``.
    """
    with atomic_path(target) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")
    return Path(target)


def write_text(text: str, target: Path) -> Path:
    """Write text atomically (UTF-8).

    Args:
        text: the content.
        target: the file path.

    Returns:
        ``target``.
    """
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(obj, target: Path) -> Path:
    """Write an object as indented JSON atomically.

    Args:
        obj: anything ``json.dumps`` accepts.
        target: the file path.

    Returns:
        ``target``.
    """
    return write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", target)


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 hex digest of a bytes object.

    Args:
        data: the bytes.

    Returns:
        64 hex characters.
    """
    return hashlib.sha256(data).hexdigest()
