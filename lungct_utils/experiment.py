"""Holdout and cross-validation runs on cached features (paper II.D-II.F).

Every run trains a fresh paper head with the same seed on the training rows, stops early
on the validation rows, and predicts the test rows. Features come from
:func:`~lungct_utils.features.cached_features`, so a run costs seconds, not hours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import PAPER, PaperConfig
from .metrics import bootstrap_ci, classification_metrics, fold_metrics, summarize_folds
from .preprocess import label_indices
from .splits import inner_validation
from .train import TrainResult, predict_proba, train_head


@dataclass
class RunResult:
    """One training run and its test predictions.

    Attributes:
        train: the training result (model, history, epochs).
        test_index: positions of the test rows in the split manifest.
        probs: test probabilities ``(n_test, 3)``.
        seconds: wall time of training and prediction.
    """

    train: TrainResult
    test_index: np.ndarray
    probs: np.ndarray
    seconds: float


def run_split(features: np.ndarray, splits: pd.DataFrame, roles, cfg: PaperConfig = PAPER,
              progress: bool = True) -> RunResult:  # fmt: skip
    """Train on ``roles == "train"``, stop on ``"val"``, predict ``"test"``.

    Args:
        features: ``(n, 1280)`` aligned with ``splits``.
        splits: a split manifest (``label`` column).
        roles: ``"train"``/``"val"``/``"test"`` per row.
        cfg: the settings.
        progress: show progress bars.

    Returns:
        A :class:`RunResult`.
    """
    if len(features) != len(splits):
        raise ValueError(f"run_split: {len(features)} features for {len(splits)} rows")
    start = time.perf_counter()
    roles = np.asarray(roles)
    result = train_head(features, splits["label"], roles, cfg, progress)
    test = np.flatnonzero(roles == "test")
    probs = predict_proba(result.model, features[test])
    return RunResult(result, test, probs, time.perf_counter() - start)


def run_holdout(features, splits, cfg=PAPER, progress=True) -> RunResult:
    """The 70/15/15 holdout run of a split manifest.

    Args:
        features: ``(n, 1280)`` aligned with ``splits``.
        splits: a split manifest.
        cfg: the settings.
        progress: show progress bars.

    Returns:
        A :class:`RunResult`.
    """
    return run_split(features, splits, splits["holdout"].to_numpy(), cfg, progress)


def run_cv(features, splits, protocol: str, cfg=PAPER, progress=True) -> list[RunResult]:
    """The k-fold CV of a split manifest; validation carved from each training part.

    Args:
        features: ``(n, 1280)`` aligned with ``splits``.
        splits: a split manifest.
        protocol: its protocol (decides how the inner validation is drawn).
        cfg: the settings.
        progress: show progress bars.

    Returns:
        One :class:`RunResult` per fold, in fold order.
    """
    folds = sorted(splits["fold"].unique())
    return [
        run_split(features, splits, inner_validation(splits, k, protocol, cfg), cfg, progress)
        for k in folds
    ]


def holdout_metrics(run: RunResult, splits: pd.DataFrame, seed: int = 0) -> dict:
    """Table III metrics of a holdout run, with 95% bootstrap intervals.

    Intervals resample whole groups (source originals), the honest unit when copies of one
    image are in the test set.

    Args:
        run: from :func:`run_holdout`.
        splits: its split manifest.
        seed: bootstrap seed.

    Returns:
        :func:`~lungct_utils.metrics.classification_metrics` plus ``accuracy_ci95``,
        ``macro_f1_ci95``, per-class ``recall_ci95`` and ``epochs``.
    """
    test = splits.iloc[run.test_index]
    y_true = label_indices(test["label"])
    y_pred = run.probs.argmax(1)
    groups = test["group"].to_numpy()
    out = classification_metrics(y_true, y_pred)
    out["accuracy_ci95"] = bootstrap_ci(y_true, y_pred, "accuracy", seed=seed, groups=groups)
    out["macro_f1_ci95"] = bootstrap_ci(y_true, y_pred, "macro_f1", seed=seed, groups=groups)
    for label, row in out["per_class"].items():
        row["recall_ci95"] = bootstrap_ci(
            y_true, y_pred, f"recall:{label}", seed=seed, groups=groups
        )
    out["epochs"] = run.train.epochs
    return out


def cv_metrics(runs: list[RunResult], splits: pd.DataFrame) -> dict:
    """Table IV: per-fold accuracy and macro precision/recall/F1, mean and std (1/k).

    Args:
        runs: from :func:`run_cv`.
        splits: their split manifest.

    Returns:
        ``{"folds": [...], "mean": {...}, "std": {...}}``, each fold also with ``epochs``.
    """
    folds = []
    for run in runs:
        y_true = label_indices(splits.iloc[run.test_index]["label"])
        folds.append(fold_metrics(y_true, run.probs.argmax(1)))
    summary = summarize_folds(folds)
    for row, run in zip(summary["folds"], runs, strict=True):
        row["epochs"] = run.train.epochs
    return summary
