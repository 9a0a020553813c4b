"""The hand-off between notebooks: metric parts and saved predictions.

Notebooks run in fresh kernels, so each hands what a later one needs through files:

* **metric parts** (``<reports>/metrics/<name>.json``, :func:`save_part`), which
  :func:`collect_metrics` joins into the ``metrics.json`` structure;
* **predictions** of a CV (``data/interim/predictions/<name>.csv``,
  :func:`save_predictions`), which later notebooks score again (06 the paper's head's; 07,
  08 and 09 both models').

Studies run by their own targets (``make study-finetune``) leave committed parts under
``reports/metrics``; :func:`load_optional_part` reads them there even when a run writes
its reports elsewhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from . import config
from .io_utils import DataError, write_csv, write_json

#: The parts every ``metrics.json`` needs (notebooks 01, 05 and 08), besides one holdout
#: part per protocol (04); ``input_check`` (04), ``beyond`` (06) and ``external`` (09) join
#: it when present.
REQUIRED = ("audit", "cases", "cv_paper", "paper_seeds", "honest_cv", "bracket")
#: A part's or predictions' name: a file stem, no folder.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _checked(name: str) -> str:
    """``name`` if it is a plain file stem, else ValueError quoting it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"parts: name={name!r} is not a plain file stem (letters, digits, _.-)")
    return name


def part_path(name: str, folder: Path | None = None) -> Path:
    """Where a metric part lives.

    Args:
        name: the part's name.
        folder: the parts folder (default: this run's ``<reports>/metrics``).

    Returns:
        ``<folder>/<name>.json``.

    Raises:
        ValueError: a name that is not a plain file stem.
    """
    return Path(folder or config.metrics_dir()) / f"{_checked(name)}.json"


def save_part(name: str, obj: dict) -> Path:
    """Save one part of ``metrics.json`` (``<reports>/metrics/<name>.json``).

    Args:
        name: the part's name.
        obj: its content.

    Returns:
        The path.

    Raises:
        ValueError: a name that is not a plain file stem.
    """
    return write_json(obj, part_path(name))


def has_part(name: str, folder: Path | None = None) -> bool:
    """Whether a metric part has been saved.

    Args:
        name: the part's name.
        folder: the parts folder (default: this run's ``<reports>/metrics``).

    Returns:
        True when its file exists.
    """
    return part_path(name, folder).is_file()


def load_part(name: str, folder: Path | None = None) -> dict:
    """A saved metric part.

    Args:
        name: the part's name.
        folder: the parts folder (default: this run's ``<reports>/metrics``).

    Returns:
        Its dict.

    Raises:
        DataError: the part has not been saved.
    """
    path = part_path(name, folder)
    if not path.is_file():
        raise DataError(f"{path}: missing; run the notebooks in order (make report)")
    return json.loads(path.read_text())


def load_optional_part(name: str) -> dict | None:
    """A committed metric part if it exists (e.g. a study run by its own target), else None.

    Args:
        name: the part's name (``reports/metrics/<name>.json``).

    Returns:
        Its dict, or None.
    """
    return load_part(name, config.STUDIES) if has_part(name, config.STUDIES) else None


def collect_metrics(parameters_file: dict | None = None, folder: Path | None = None) -> dict:
    """Join the metric parts into the ``metrics.json`` structure (fractions).

    Args:
        parameters_file: the parameters ``make report`` passed (PARAMS), if any.
        folder: the parts folder (default: this run's ``<reports>/metrics``).

    Returns:
        ``{"params", "parameters_file", "seed", "git_commit", "created", "versions",
        "cpu", "dataset", "audit", "cases", "protocols", "honest_cv", "paper_seeds",
        "groupings", "bracket", "comparison", "nearest_training"}`` plus ``"input_check"``
        when notebook 04 has measured it, ``"beyond"``, ``"paired"`` and ``"fold_choices"``
        when 06 has run (with 07's study rule and shipped model, ``beyond.study`` and
        ``beyond.selected.final``; 06's part without 07's is an error) and ``"external"``
        when 09 has.

    Raises:
        DataError: a required part is missing.
    """
    folder = Path(folder or config.metrics_dir())
    parts = {name: load_part(name, folder) for name in REQUIRED}
    prov = parts["honest_cv"]["provenance"]
    protocols = {p: {"holdout": load_part(f"holdout_{p}", folder)} for p in config.PROTOCOLS}
    protocols["paper"]["cv"] = parts["cv_paper"]
    out = {
        "params": prov["params"],
        "parameters_file": parameters_file or {},
        **{k: prov[k] for k in ("seed", "git_commit", "created", "versions", "cpu")},
        "dataset": parts["honest_cv"]["dataset"],
        "audit": parts["audit"],
        "cases": parts["cases"],
        "protocols": protocols,
        "honest_cv": {
            p: {k: v for k, v in s.items() if k != "per_repeat"}
            for p, s in parts["honest_cv"]["protocols"].items()
        },
        "paper_seeds": parts["paper_seeds"],
        "groupings": parts["bracket"]["groupings"],
        "bracket": parts["bracket"]["bracket"],
        "comparison": parts["bracket"]["comparison"],
        "nearest_training": parts["bracket"]["nearest_training"],
    }
    if has_part("input_check", folder):
        out["input_check"] = load_part("input_check", folder)
    if has_part("external", folder):
        out["external"] = load_part("external", folder)
    if has_part("beyond", folder):
        beyond = load_part("beyond", folder)
        out["paired"] = beyond.pop("paired")
        out["fold_choices"] = beyond.pop("fold_choices")
        shipping = load_part("shipping", folder)  # 07: the study rule and the shipped model
        beyond["selected"]["final"] = shipping["final"]
        beyond["study"] = shipping["study"]
        out["beyond"] = beyond
    return out


def predictions_path(name: str) -> Path:
    """Where a CV's saved predictions live.

    Args:
        name: their name, e.g. ``"cv_cases"``.

    Returns:
        ``data/interim/predictions/<name>.csv``.

    Raises:
        ValueError: a name that is not a plain file stem.
    """
    return config.INTERIM / "predictions" / f"{_checked(name)}.csv"


def save_predictions(name: str, preds: pd.DataFrame) -> Path:
    """Keep a CV's predictions for a later notebook (``data/interim/predictions/<name>.csv``).

    Args:
        name: e.g. ``"cv_cases"``.
        preds: one row per prediction.

    Returns:
        The path.

    Raises:
        ValueError: a name that is not a plain file stem.
    """
    return write_csv(preds, predictions_path(name))


def load_predictions(name: str) -> pd.DataFrame:
    """Predictions saved by :func:`save_predictions`.

    Args:
        name: their name.

    Returns:
        The table.

    Raises:
        DataError: they have not been saved.
    """
    path = predictions_path(name)
    if not path.is_file():
        raise DataError(f"{path}: missing; run the notebooks in order (make report)")
    return pd.read_csv(path)
