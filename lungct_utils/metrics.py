"""Evaluation metrics in the paper's layouts (Table III, Table IV) plus intervals.

Per-fold precision, recall and F1 are macro averages over the three classes (the paper's
Table IV recall differs from accuracy, so it is not the support-weighted average). The
standard deviation across folds uses 1/k, as the paper does (``ddof=0``).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .config import CLASSES


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        y_true: true class indices (benign 0, malignant 1, normal 2).
        y_pred: predicted class indices.

    Returns:
        ``{"accuracy", "macro_f1", "per_class": {label: {...}}, "confusion_matrix"}``, the
        matrix with rows true and columns predicted in the order of ``CLASSES``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"classification_metrics: shapes {y_true.shape} and {y_pred.shape}")
    labels = list(range(len(CLASSES)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(np.mean(f)),
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(CLASSES)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def fold_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """One row of Table IV: accuracy and macro precision, recall, F1.

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.

    Returns:
        ``{"accuracy", "precision", "recall", "f1"}`` as fractions.
    """
    labels = list(range(len(CLASSES)))
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {"accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
            "precision": float(p), "recall": float(r), "f1": float(f)}  # fmt: skip


def summarize_folds(folds: list[dict]) -> dict:
    """Mean and population standard deviation (1/k, as the paper) of fold metrics.

    Args:
        folds: rows from :func:`fold_metrics`.

    Returns:
        ``{"folds": folds, "mean": {...}, "std": {...}}``.
    """
    if not folds:
        raise ValueError("summarize_folds: no folds")
    keys = list(folds[0])
    values = {k: np.array([f[k] for f in folds], dtype=float) for k in keys}
    return {
        "folds": folds,
        "mean": {k: float(v.mean()) for k, v in values.items()},
        "std": {k: float(v.std(ddof=0)) for k, v in values.items()},
    }


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    stat: str = "accuracy",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    groups: np.ndarray | None = None,
) -> list[float]:
    """Percentile bootstrap interval of accuracy or of one class's recall.

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.
        stat: ``"accuracy"``, ``"macro_f1"`` or ``"recall:<label>"``.
        n_boot: resamples.
        seed: random seed.
        level: coverage.
        groups: resample whole groups (e.g. source originals) instead of images, so
            correlated copies do not shrink the interval.

    Returns:
        ``[low, high]``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if stat in ("accuracy", "macro_f1"):
        target = None
    elif stat.startswith("recall:") and stat[7:] in CLASSES:
        target = CLASSES.index(stat[7:])
    else:
        raise ValueError(
            f"bootstrap_ci: stat must be 'accuracy', 'macro_f1' or 'recall:<class>', got {stat!r}"
        )
    rng = np.random.default_rng(seed)
    if groups is None:
        units = np.arange(len(y_true))[:, None]
    else:
        _, inverse = np.unique(np.asarray(groups), return_inverse=True)
        units = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
    correct = (y_true == y_pred).astype(float)
    stats = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(units), len(units))
        idx = np.concatenate([units[i] for i in pick])
        if stat == "macro_f1":
            stats.append(_macro_f1(y_true[idx], y_pred[idx]))
        elif target is None:
            stats.append(correct[idx].mean())
        else:
            mask = y_true[idx] == target
            if mask.any():
                stats.append(correct[idx][mask].mean())
    alpha = (1 - level) / 2
    return [float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))]


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    scores = []
    for k in range(len(CLASSES)):
        tp = np.sum((y_true == k) & (y_pred == k))
        wrong = np.sum((y_true == k) != (y_pred == k))
        scores.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return float(np.mean(scores))
