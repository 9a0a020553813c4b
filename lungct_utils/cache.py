"""A results cache for the expensive fold loops (CV predictions and selections).

A notebook's fold loop is a function of its inputs: the features and split manifests, the
groupings, the parameters, the code that computes it, the library versions and the thread
settings. :func:`cached` hashes all of these into one key; when a result under that key is
on disk (``data/interim/results/<name>/<key>.pkl``) it is read instead of computed, so a
second ``make report`` (or ``make test``'s nbval run after ``make report``) executes every
cell but trains nothing. Any change to a key part computes afresh; ``LUNGCT_RECOMPUTE=1``
(``make report RECOMPUTE=1``) ignores the cache and overwrites it.

The key is built from bytes, never from timestamps: an array is hashed with its dtype and
shape, a table through its CSV text, a file by its content, a function by its source, a
module by its file and those of the package modules it uses (:func:`package_modules`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .io_utils import DataError, atomic_path, cpu_info, versions

#: Set to ``1`` to ignore stored results (they are recomputed and overwritten).
RECOMPUTE_ENV = "LUNGCT_RECOMPUTE"
#: Environment variables that change how many threads compute, or which kernels run
#: (``lungct_utils`` sets the two instruction-set caps when they are unset).
THREAD_ENV = (
    "LUNGCT_THREADS",
    "ONEDNN_MAX_CPU_ISA",
    "XLA_FLAGS",
    "TF_ENABLE_ONEDNN_OPTS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
)
#: Libraries whose versions decide the numbers of a fold loop.
LIBRARIES = ("python", "numpy", "pandas", "scikit-learn", "tensorflow", "keras")


def results_dir() -> Path:
    """Where results are kept: ``$LUNGCT_RESULTS_DIR`` or ``data/interim/results``.

    Returns:
        The folder (not created).
    """
    return Path(os.environ.get("LUNGCT_RESULTS_DIR", config.INTERIM / "results"))


def module_source(name: str) -> bytes:
    """The file bytes of an imported module.

    Args:
        name: its dotted name (``lungct_utils.evaluate``).

    Returns:
        The bytes of its ``.py`` file.
    """
    return Path(sys.modules[name].__file__).read_bytes()


def package_modules(module: types.ModuleType) -> list[str]:
    """The module and every module of its package it uses, directly or through another.

    A loop's result depends on the code its modules call (``heads`` scores through
    ``evaluate``), so a module key part stands for all of them.

    Args:
        module: a module of this package (others stand for themselves).

    Returns:
        Sorted dotted names.
    """
    package = __name__.split(".")[0]
    seen, todo = set(), [module.__name__]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for value in vars(sys.modules[name]).values():
            owner = value.__name__ if isinstance(value, types.ModuleType) else None
            owner = owner or getattr(value, "__module__", None)
            if isinstance(owner, str) and owner.split(".")[0] == package and owner in sys.modules:
                todo.append(owner)
    return sorted(seen)


def _digest_one(value) -> bytes:
    """Bytes that stand for one key part (hashed by :func:`digest`)."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return b"objects " + json.dumps([str(v) for v in value.ravel()]).encode()
    if isinstance(value, np.ndarray):
        head = f"ndarray {value.dtype.str} {value.shape}".encode()
        return head + np.ascontiguousarray(value).tobytes()
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.to_csv(lineterminator="\n").encode()
    if isinstance(value, Path):
        if not value.is_file():
            raise DataError(f"{value}: a results-cache input is missing")
        return b"file " + value.read_bytes()
    if isinstance(value, types.ModuleType):
        names = package_modules(value)
        return b"module " + b"".join(n.encode() + b"\n" + module_source(n) for n in names)
    if callable(value):
        return b"function " + inspect.getsource(value).encode()
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return b"{" + b",".join(str(k).encode() + b":" + _digest_one(v) for k, v in items) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(_digest_one(v) for v in value) + b"]"
    return json.dumps(value, sort_keys=True, default=repr).encode()


def digest(parts: dict) -> str:
    """The SHA-256 of named key parts (arrays, tables, files, modules, functions, values).

    Args:
        parts: name -> part; nested dicts and lists are hashed element by element.

    Returns:
        64 hex characters.
    """
    if not isinstance(parts, dict) or not parts:
        raise ValueError(f"digest: parts must be a non-empty dict, got {parts!r}")
    h = hashlib.sha256()
    for name in sorted(parts):
        h.update(name.encode() + b"=" + hashlib.sha256(_digest_one(parts[name])).digest())
    return h.hexdigest()


def environment() -> dict:
    """The key parts every result shares: library versions, thread settings and the CPU.

    Returns:
        ``{"versions", "threads", "env", "cpu_flags"}``.
    """
    library = {k: v for k, v in versions().items() if k in LIBRARIES}
    env = {name: os.environ.get(name) for name in THREAD_ENV}
    return {
        "versions": library,
        "threads": config.THREADS,
        "env": env,
        "cpu_flags": cpu_info()["flags"],
    }


def recompute() -> bool:
    """Whether ``$LUNGCT_RECOMPUTE`` asks to ignore stored results.

    Returns:
        True for ``1``/``true``/``yes``.
    """
    return os.environ.get(RECOMPUTE_ENV, "").strip().lower() in ("1", "true", "yes")


def cached(name: str, compute: Callable[[], object], inputs: dict, code: list) -> object:
    """The result of ``compute()``, read from the cache when its key is stored.

    Args:
        name: the result's name (a folder under :func:`results_dir`), e.g. ``"05_honest_cv"``.
        compute: a function without arguments that computes the result (picklable output).
        inputs: what the result depends on: arrays, tables, files, parameters.
        code: the functions and modules that compute it (their source is hashed).

    Returns:
        The result, stored or freshly computed.
    """
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"cached: name must be letters, digits and '_', got {name!r}")
    key = digest({"inputs": inputs, "code": list(code), "environment": environment()})
    path = results_dir() / name / f"{key}.pkl"
    if path.is_file() and not recompute():
        with open(path, "rb") as handle:
            result = pickle.load(handle)
        print(f"{name}: read from the results cache (key {key[:12]})")
        return result
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{name}: computed and stored in the results cache (key {key[:12]})")
    return result
