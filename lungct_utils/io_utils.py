"""The package's errors, file helpers (hashing, atomic writes) and provenance.

Bad input (a corrupt image, a wrong folder, a missing class) raises :class:`DataError` with
a message naming the path and the problem; bad parameters raise ``ValueError`` quoting the
value. The command line prints either as one line, never a traceback.

Every file is written to a temporary path beside its target and renamed into place, so
nothing half-written is ever left behind. Every metrics file records :func:`provenance`:
parameters, seed, git commit, library versions and the CPU.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pandas as pd

from .config import ROOT

_CHUNK = 1 << 20
#: Set by ``make report`` to the commit taken before the run: the run itself rewrites
#: tracked notebooks and reports, which would mark every later step ``+dirty``.
COMMIT_ENV = "LUNGCT_GIT_COMMIT"
_PACKAGES = ("numpy", "pandas", "scikit-learn", "pillow", "tensorflow", "keras", "ai-edge-litert")


class LungCTError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(LungCTError):
    """A file or folder of the dataset is missing, unreadable or not what was expected."""


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
def atomic_path(target: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    Nothing half-written is left behind: on an exception the temporary file is removed and
    ``target`` keeps its old content (or stays absent).

    Args:
        target: the final file path; its folder is created if needed.
        suffix: the temporary name's ending, for writers that insist on one (Keras'
            ``.keras``, LiteRT's ``.tflite``).

    Yields:
        The temporary path to write to.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
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


def _writes_to(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # e.g. pytest's captured streams
        return False


@contextlib.contextmanager
def console(log: Path, python_too: bool = True) -> Iterator:
    """Send what C libraries and child processes print to ``log``; yield the terminal.

    File descriptors 1 and 2 are redirected, so TensorFlow's C++ logging and the notebook
    kernels write to the log. With ``python_too`` Python's own ``print`` and warnings go
    there too; otherwise ``sys.stdout`` and ``sys.stderr`` keep reaching the terminal.

    Args:
        log: the log file (appended to).
        python_too: also send Python's streams to the log (else only warnings go there).

    Yields:
        A text stream to the original standard output.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    errors = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    streams = sys.stdout, sys.stderr
    with open(log, "a", buffering=1) as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        shown = warnings.showwarning
        if not python_too:  # streams that write to fds 1/2 follow them unless redirected back
            if _writes_to(sys.stdout, 1):
                sys.stdout = terminal
            if _writes_to(sys.stderr, 2):
                sys.stderr = errors

            def to_log(message, category, filename, lineno, file=None, line=None):
                sink.write(warnings.formatwarning(message, category, filename, lineno, line))

            warnings.showwarning = to_log  # library warnings are log material too
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = streams
            warnings.showwarning = shown
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for stream in (terminal, errors):
                stream.close()
            for fd in saved:
                os.close(fd)


def git_commit() -> str:
    """The repository's HEAD commit, with ``+dirty`` when tracked files have changes.

    Returns:
        ``$LUNGCT_GIT_COMMIT`` when set; else the commit hash, or ``"unknown"`` outside a
        git checkout.
    """
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def cpu_info() -> dict:
    """The CPU: model name, logical cores and instruction-set flags that change float results.

    Returns:
        ``{"model", "cores", "flags"}`` (flags: the AVX/FMA family, from ``/proc/cpuinfo``).
    """
    model, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = sorted(f for f in value.split() if f.startswith(("avx", "fma", "sse4", "amx")))
    return {"model": model, "cores": os.cpu_count(), "flags": flags}


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide the numbers.

    Returns:
        name -> version (``"not installed"`` for a missing one).
    """
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(cfg) -> dict:
    """Parameters, seed, commit, versions and CPU, for a metrics or meta file.

    Args:
        cfg: the :class:`~lungct_utils.config.PaperConfig` used.

    Returns:
        ``{"params", "seed", "git_commit", "created", "versions", "cpu"}``.
    """
    return {
        "params": cfg.to_dict(),
        "seed": cfg.seed,
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "cpu": cpu_info(),
    }
