"""Scores: the paper's tables (III, IV), the honest metric set, calibration and intervals.

* Table III (holdout) and Table IV (per fold: accuracy and macro precision, recall, F1;
  mean and the population standard deviation with 1/k, as the paper).
* The honest metric set of one set of predictions (:func:`score`): accuracy, balanced
  accuracy, macro-F1, per-class precision/recall/F1, one-vs-rest ROC AUC (macro mean) and
  the expected calibration error (ECE, 15 equal-width confidence bins, top-label).
* Intervals are percentile **cluster** bootstraps: a replicate resamples whole units (source
  originals or reconstructed cases, never single copies), because slices of one patient are
  not independent. Over repeated CV a replicate also draws one repeat, so the interval
  holds both the split-to-split spread and the sampling of patients.

All metric code is vectorized NumPy (checked against scikit-learn in the tests), so a
thousand replicates take about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import roc_curve

from .config import CLASSES

K = len(CLASSES)
#: The keys of :func:`score`, in report order.
SCORE_KEYS = (
    "accuracy", "balanced_accuracy", "macro_f1",
    *(f"{m}_{c}" for c in CLASSES for m in ("precision", "recall", "f1")),
    "auc_macro", "ece",
)  # fmt: skip
#: Confidence bins of the expected calibration error.
ECE_BINS = 15


def confusion(y_true, y_pred) -> np.ndarray:
    """The confusion matrix, rows true and columns predicted (benign, malignant, normal).

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.

    Returns:
        int ``(3, 3)``.
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"confusion: shapes {y_true.shape} and {y_pred.shape}")
    return np.bincount(y_true * K + y_pred, minlength=K * K).reshape(K, K)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, pred, out=np.zeros(K), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros(K), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(K), where=denom > 0)
    return precision, recall, f1


def auc_ovr(y_true, probs) -> np.ndarray:
    """One-vs-rest ROC AUC per class (Mann-Whitney U with mid-ranks for ties).

    Args:
        y_true: true class indices.
        probs: ``(n, 3)`` probabilities.

    Returns:
        ``(3,)``; NaN for a class absent or alone.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    out = np.full(K, np.nan)
    for k in range(K):
        pos = y_true == k
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos and n_neg:
            ranks = rankdata(probs[:, k])
            out[k] = (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out


def _binned(probs, y_true, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    conf, hit = probs.max(axis=1), (probs.argmax(axis=1) == np.asarray(y_true)).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    return np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1), conf, hit


def reliability(probs, y_true, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """Top-label confidence against accuracy in equal-width bins (the reliability diagram).

    Args:
        probs: ``(n, 3)`` probabilities.
        y_true: true class indices.
        n_bins: bins over [0, 1].

    Returns:
        DataFrame per non-empty bin: ``lo, hi, count, confidence, accuracy``.
    """
    idx, conf, hit = _binned(probs, y_true, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    frame = pd.DataFrame({
        "lo": edges[:-1], "hi": edges[1:], "count": count,
        "confidence": np.bincount(idx, conf, n_bins) / np.maximum(count, 1),
        "accuracy": np.bincount(idx, hit, n_bins) / np.maximum(count, 1),
    })  # fmt: skip
    return frame[frame["count"] > 0].reset_index(drop=True)


def expected_calibration_error(probs, y_true, n_bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins.

    Args:
        probs: ``(n, 3)`` probabilities.
        y_true: true class indices.
        n_bins: bins over [0, 1].

    Returns:
        A fraction in [0, 1].
    """
    idx, conf, hit = _binned(probs, y_true, n_bins)
    gap = np.bincount(idx, conf, n_bins) - np.bincount(idx, hit, n_bins)
    return float(np.abs(gap).sum() / len(conf))


def score(y_true, probs) -> dict[str, float]:
    """The honest metric set of one set of predictions (keys :data:`SCORE_KEYS`).

    Args:
        y_true: true class indices.
        probs: ``(n, 3)`` probabilities; the prediction is the arg-max.

    Returns:
        Fractions: accuracy, balanced accuracy (mean recall), macro-F1, per-class
        precision/recall/F1, macro one-vs-rest AUC and ECE.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    cm = confusion(y_true, probs.argmax(axis=1))
    precision, recall, f1 = _per_class(cm)
    out = {"accuracy": float(np.trace(cm) / cm.sum()),
           "balanced_accuracy": float(recall[cm.sum(axis=1) > 0].mean()),
           "macro_f1": float(f1.mean())}  # fmt: skip
    for i, c in enumerate(CLASSES):
        out.update({f"precision_{c}": float(precision[i]), f"recall_{c}": float(recall[i]),
                    f"f1_{c}": float(f1[i])})  # fmt: skip
    out["auc_macro"] = float(np.nanmean(auc_ovr(y_true, probs)))
    out["ece"] = expected_calibration_error(probs, y_true)
    return out


def classification_metrics(y_true, y_pred) -> dict:
    """Table III: accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix.

    Args:
        y_true: true class indices (benign 0, malignant 1, normal 2).
        y_pred: predicted class indices.

    Returns:
        ``{"accuracy", "macro_f1", "per_class": {label: {...}}, "confusion_matrix"}``.
    """
    cm = confusion(y_true, y_pred)
    precision, recall, f1 = _per_class(cm)
    per_class = {c: {"precision": float(precision[i]), "recall": float(recall[i]),
                     "f1": float(f1[i]), "support": int(cm[i].sum())}
                 for i, c in enumerate(CLASSES)}  # fmt: skip
    return {"accuracy": float(np.trace(cm) / cm.sum()), "macro_f1": float(f1.mean()),
            "per_class": per_class, "confusion_matrix": cm.tolist()}  # fmt: skip


def fold_metrics(y_true, y_pred) -> dict:
    """One row of Table IV: accuracy and macro precision, recall, F1.

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.

    Returns:
        ``{"accuracy", "precision", "recall", "f1"}`` as fractions.
    """
    cm = confusion(y_true, y_pred)
    precision, recall, f1 = _per_class(cm)
    return {"accuracy": float(np.trace(cm) / cm.sum()), "precision": float(precision.mean()),
            "recall": float(recall.mean()), "f1": float(f1.mean())}  # fmt: skip


def summarize_folds(folds: list[dict]) -> dict:
    """Mean and population standard deviation (1/k, as the paper) of fold metrics.

    Args:
        folds: rows from :func:`fold_metrics`.

    Returns:
        ``{"folds": folds, "mean": {...}, "std": {...}}``.
    """
    if not folds:
        raise ValueError("summarize_folds: no folds")
    values = {k: np.array([f[k] for f in folds], dtype=float) for k in folds[0]}
    return {"folds": folds, "mean": {k: float(v.mean()) for k, v in values.items()},
            "std": {k: float(v.std(ddof=0)) for k, v in values.items()}}  # fmt: skip


def spread(values) -> dict[str, float]:
    """Mean, sample standard deviation, minimum and maximum (e.g. over seeds).

    Args:
        values: numbers.

    Returns:
        ``{"mean", "sd", "min", "max"}``.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("spread: no values")
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "sd": sd, "min": float(v.min()), "max": float(v.max())}


def _units(groups) -> list[np.ndarray]:
    _, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)


def cluster_bootstrap(stat, sets, groups_per_set, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, list[float]]:  # fmt: skip
    """Percentile intervals of a statistic, resampling whole units (and one set per replicate).

    Args:
        stat: ``stat(set_index, rows, units)`` -> dict of numbers, where ``rows`` are row
            positions into the set and ``units`` the replicate's unit id of each row (a unit
            drawn twice counts as two units).
        sets: how many prediction sets there are (e.g. CV repeats; 1 for a holdout).
        groups_per_set: per set, the unit (case, source original) of each row.
        n_boot: replicates.
        seed: random seed.
        level: coverage.

    Returns:
        key -> ``[low, high]``.
    """
    if not 0 < level < 1 or n_boot < 10:
        raise ValueError(f"cluster_bootstrap: bad level={level!r} or n_boot={n_boot!r}")
    rng = np.random.default_rng(seed)
    units = [_units(g) for g in groups_per_set]
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        s = int(rng.integers(sets))
        pick = rng.integers(0, len(units[s]), len(units[s]))
        rows = np.concatenate([units[s][i] for i in pick])
        ids = np.repeat(np.arange(len(pick)), [len(units[s][i]) for i in pick])
        for key, value in stat(s, rows, ids).items():
            draws.setdefault(key, []).append(value)
    alpha = (1 - level) / 2
    return {k: [float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))]
            for k, v in draws.items()}  # fmt: skip


def case_accuracy(y_true, probs, cases) -> float:
    """Accuracy per case: each case's mean probability decides its class.

    Args:
        y_true: true class indices (one class per case).
        probs: ``(n, 3)`` probabilities.
        cases: case per row.

    Returns:
        The share of cases classified correctly.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    _, code = np.unique(np.asarray(cases).astype(str), return_inverse=True)
    n = code.max() + 1
    label = np.zeros(n, np.int64)
    label[code] = y_true
    if np.any(label[code] != y_true):
        raise ValueError("case_accuracy: a case holds two classes")
    total = np.zeros((n, K))
    np.add.at(total, code, probs)  # summed probabilities: same arg-max as the mean
    return float(np.mean(total.argmax(axis=1) == label))


def holdout_metrics(y_true, probs, groups, n_boot: int = 2000, seed: int = 0) -> dict:
    """Table III metrics of one test split, the honest metric set, and cluster intervals.

    Args:
        y_true: true class indices of the test rows.
        probs: their ``(n, 3)`` probabilities.
        groups: the unit of independence per row (the bootstrap resamples these).
        n_boot: bootstrap replicates.
        seed: bootstrap seed.

    Returns:
        :func:`classification_metrics` plus ``scores`` (:func:`score`), ``accuracy_ci95``,
        ``macro_f1_ci95`` and per-class ``recall_ci95``.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    out = classification_metrics(y_true, probs.argmax(1))
    out["scores"] = score(y_true, probs)
    keys = ("accuracy", "macro_f1", *(f"recall_{c}" for c in CLASSES))

    def stat(_, rows, _units):
        cm = confusion(y_true[rows], probs[rows].argmax(1))
        _, recall, f1 = _per_class(cm)
        present = cm.sum(axis=1) > 0
        values = [np.trace(cm) / cm.sum(), f1.mean(),
                  *np.where(present, recall, np.nan)]  # fmt: skip
        return dict(zip(keys, values, strict=True))

    ci = cluster_bootstrap(stat, 1, [groups], n_boot, seed)
    out["accuracy_ci95"], out["macro_f1_ci95"] = ci["accuracy"], ci["macro_f1"]
    for c in CLASSES:
        out["per_class"][c]["recall_ci95"] = ci[f"recall_{c}"]
    return out


def repeated_cv_summary(preds: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean and 95% interval of :func:`score` over repeated CV, plus case-level accuracy.

    Args:
        preds: one row per scored test row per repeat: ``repeat``, ``y`` (class index),
            ``case`` (the unit of independence) and ``p_<class>`` columns.
        n_boot: bootstrap replicates (each draws a repeat, then resamples its cases).
        seed: bootstrap seed.

    Returns:
        ``{"repeats", "n_test", "mean", "ci95", "per_repeat", "case_accuracy",
        "case_accuracy_ci95"}`` (fractions; ``ci95`` values ``[lo, hi]``).
    """
    cols = [f"p_{c}" for c in CLASSES]
    parts = [g for _, g in preds.groupby("repeat", sort=True)]
    y = [g["y"].to_numpy() for g in parts]
    p = [g[cols].to_numpy() for g in parts]
    cases = [g["case"].to_numpy() for g in parts]
    n_test = {len(g) for g in parts}
    if len(n_test) != 1:
        raise ValueError(f"repeated_cv_summary: repeats score different rows ({sorted(n_test)})")
    per_repeat = [score(y[r], p[r]) for r in range(len(parts))]

    def stat(r, rows, units):
        out = score(y[r][rows], p[r][rows])
        out["case_accuracy"] = case_accuracy(y[r][rows], p[r][rows], units)
        return out

    ci = cluster_bootstrap(stat, len(parts), cases, n_boot, seed)
    case_acc = [case_accuracy(y[r], p[r], cases[r]) for r in range(len(parts))]
    return {
        "repeats": len(parts),
        "n_test": n_test.pop(),
        "mean": {k: float(np.mean([s[k] for s in per_repeat])) for k in SCORE_KEYS},
        "ci95": {k: ci[k] for k in SCORE_KEYS},
        "per_repeat": per_repeat,
        "case_accuracy": float(np.mean(case_acc)),
        "case_accuracy_ci95": ci["case_accuracy"],
    }


def roc_data(y_true, probs) -> dict[str, tuple]:
    """One-vs-rest ROC curve and AUC per class.

    Args:
        y_true: true class indices.
        probs: ``(n, 3)`` probabilities.

    Returns:
        class -> ``(fpr, tpr, auc)``.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    aucs = auc_ovr(y_true, probs)
    out = {}
    for k, c in enumerate(CLASSES):
        fpr, tpr, _ = roc_curve(y_true == k, probs[:, k])
        out[c] = (fpr, tpr, float(aucs[k]))
    return out
