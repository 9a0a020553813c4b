"""Scores: the paper's tables (III, IV), the honest metric set, calibration and intervals.

* Table III (holdout) and Table IV (per fold: accuracy and macro precision, recall, F1;
  mean and the population standard deviation with 1/k, as the paper).
* The honest metric set of one set of predictions (:func:`score`): accuracy, balanced
  accuracy, macro-F1, per-class precision/recall/F1, one-vs-rest ROC AUC (macro mean) and
  the expected calibration error (ECE, 15 equal-width confidence bins, top-label).
* Intervals are percentile **cluster** bootstraps: a replicate resamples whole units (source
  originals or reconstructed cases, never single copies), because slices of one patient are
  not independent. Over repeated CV a replicate draws the units once and scores every
  repeat on them (the mean over repeats is the estimate), for one model as for the paired
  difference of two. The intervals hold the fitted models fixed: they cover the sampling of
  patients, not the variability of training or of the split.
* Patient level (:func:`case_score`): a case's slices vote by their mean log-probability.
  Two models are compared on the same rows by a paired cluster bootstrap of the difference
  (:func:`paired_difference`): one draw of cases serves both models and every repeat.

All metric code is vectorized NumPy (checked against scikit-learn in the tests). A bootstrap
scores all its replicates at once from how often each drew each unit
(:func:`cluster_draw_counts`, :func:`cluster_intervals`): a row weighs as often as its unit was
drawn, which gives the statistics of the resampled rows. A thousand replicates over repeated CV
take a fraction of a second.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import binomtest, rankdata
from sklearn.metrics import roc_curve

from .config import CLASSES

K = len(CLASSES)
#: The keys of :func:`score`, in report order.
SCORE_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    *(f"{m}_{c}" for c in CLASSES for m in ("precision", "recall", "f1")),
    "auc_macro",
    "ece",
)
#: Confidence bins of the expected calibration error.
ECE_BINS = 15
#: The keys of :func:`confusion_metrics`.
CONFUSION_KEYS = ("accuracy", "balanced_accuracy", "macro_f1", *(f"recall_{c}" for c in CLASSES))
#: The patient-level metrics of :func:`case_score` (fractions).
CASE_KEYS = ("accuracy", "balanced_accuracy", "macro_f1", "recall_benign")
#: Probabilities are clipped to at least this before their log (:func:`mean_log_prob`).
PROB_FLOOR = 1e-12
#: Bootstrap replicates of the intervals over repeated CV and of the paired differences.
N_BOOT = 1000
#: The probability columns of a predictions table, in class order.
PROB_COLUMNS = [f"p_{c}" for c in CLASSES]


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
    """Precision, recall and F1 per class (0 where undefined) of ``(..., 3, 3)`` matrices."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    pred, true = cm.sum(axis=-2), cm.sum(axis=-1)
    precision = np.divide(tp, pred, out=np.zeros(tp.shape), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros(tp.shape), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(tp.shape), where=denom > 0)
    return precision, recall, f1


def confusion_metrics(cm) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, macro-F1 and per-class recall of confusion matrices.

    Args:
        cm: ``(..., 3, 3)`` matrices, rows true and columns predicted; counts or weights
            (e.g. how often a bootstrap drew each row).

    Returns:
        :data:`CONFUSION_KEYS`: ``accuracy``, ``balanced_accuracy`` (mean recall of the classes
        present), ``macro_f1`` and ``recall_<class>`` (NaN for an absent class), each of
        shape ``cm.shape[:-2]``.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim < 2 or cm.shape[-2:] != (K, K):
        raise ValueError(f"confusion_metrics: needs (..., {K}, {K}) matrices, got {cm.shape}")
    _, recall, f1 = _per_class(cm)
    present = cm.sum(axis=-1) > 0
    out = {
        "accuracy": np.trace(cm, axis1=-2, axis2=-1) / cm.sum(axis=(-2, -1)),
        "balanced_accuracy": np.where(present, recall, 0).sum(axis=-1) / present.sum(axis=-1),
        "macro_f1": f1.mean(axis=-1),
    }
    for k, c in enumerate(CLASSES):
        out[f"recall_{c}"] = np.where(present[..., k], recall[..., k], np.nan)
    return out


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
    frame = pd.DataFrame(
        {
            "lo": edges[:-1],
            "hi": edges[1:],
            "count": count,
            "confidence": np.bincount(idx, conf, n_bins) / np.maximum(count, 1),
            "accuracy": np.bincount(idx, hit, n_bins) / np.maximum(count, 1),
        }
    )
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
    out = {
        "accuracy": float(np.trace(cm) / cm.sum()),
        "balanced_accuracy": float(recall[cm.sum(axis=1) > 0].mean()),
        "macro_f1": float(f1.mean()),
    }
    for i, c in enumerate(CLASSES):
        out.update(
            {
                f"precision_{c}": float(precision[i]),
                f"recall_{c}": float(recall[i]),
                f"f1_{c}": float(f1[i]),
            }
        )
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
    per_class = {
        c: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(cm[i].sum()),
        }
        for i, c in enumerate(CLASSES)
    }
    return {
        "accuracy": float(np.trace(cm) / cm.sum()),
        "macro_f1": float(f1.mean()),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


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
    return {
        "accuracy": float(np.trace(cm) / cm.sum()),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }


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
    return {
        "folds": folds,
        "mean": {k: float(v.mean()) for k, v in values.items()},
        "std": {k: float(v.std(ddof=0)) for k, v in values.items()},
    }


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


def _unit_codes(groups) -> tuple[np.ndarray, int]:
    """Per row, the index of its unit among the distinct units (sorted as strings).

    Args:
        groups: the unit of each row.

    Returns:
        ``(codes, n_units)``: int codes in ``[0, n_units)``, and how many units there are.
    """
    distinct, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    return codes.ravel(), len(distinct)


def _cluster_picks(n_units: list[int], n_boot: int, seed: int):
    """The draws of the cluster bootstrap, one replicate at a time.

    The one source of its random numbers: each replicate draws a set, then as many of its
    units as it holds, with replacement, from one ``np.random.default_rng(seed)``.

    Args:
        n_units: per set, its number of units.
        n_boot: replicates.
        seed: random seed.

    Yields:
        ``(set_index, picks)``: the set drawn and the unit indices drawn from it.
    """
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        s = int(rng.integers(len(n_units)))
        yield s, rng.integers(0, n_units[s], n_units[s])


def cluster_draw_counts(n_units, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, list]:
    """How often each replicate of the cluster bootstrap drew each unit.

    Statistics computed from these counts (a row weighs as often as its unit was drawn) equal
    the ones of the resampled rows of each replicate.

    Args:
        n_units: per set, its number of units (at least one).
        n_boot: replicates (at least one).
        seed: random seed.

    Returns:
        ``(set_of, counts)``: the set each replicate drew, int ``(n_boot,)``, and per set ``s``
        an int ``(m, n_units[s])`` matrix, one row per replicate that drew ``s`` (the ``m``
        replicates with ``set_of == s``, in order) counting how often it drew each unit.
    """
    n_units = [int(n) for n in n_units]
    if not n_units or min(n_units) < 1:
        raise ValueError(f"cluster_draw_counts: every set needs a unit, got n_units={n_units!r}")
    if n_boot < 1:
        raise ValueError(f"cluster_draw_counts: needs n_boot >= 1, got {n_boot!r}")
    set_of = np.empty(n_boot, np.int64)
    rows: list[list[np.ndarray]] = [[] for _ in n_units]
    for b, (s, picks) in enumerate(_cluster_picks(n_units, n_boot, seed)):
        set_of[b] = s
        rows[s].append(np.bincount(picks, minlength=n_units[s]))
    counts = [np.array(r, np.int64).reshape(len(r), n) for r, n in zip(rows, n_units, strict=True)]
    return set_of, counts


def _check_bootstrap(name: str, n_boot: int, level: float) -> None:
    """Refuse a coverage outside (0, 1) or fewer than ten replicates.

    Args:
        name: the calling function, for the message.
        n_boot: replicates.
        level: coverage.

    Raises:
        ValueError: quoting ``level`` and ``n_boot``.
    """
    if not 0 < level < 1 or n_boot < 10:
        raise ValueError(f"{name}: bad level={level!r} or n_boot={n_boot!r}")


def _percentile_intervals(draws: dict, level: float) -> dict[str, list[float]]:
    """Percentile intervals of bootstrap draws, ignoring NaN draws.

    Args:
        draws: key -> the statistic of each replicate.
        level: coverage.

    Returns:
        key -> ``[low, high]``.
    """
    alpha = (1 - level) / 2
    return {
        k: [float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))]
        for k, v in draws.items()
    }


def cluster_intervals(
    stats, n_units, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile intervals of vectorised statistics over the cluster bootstrap's replicates.

    Each replicate draws a set, then its units with replacement; all replicates of a set are
    scored at once from their unit counts (:func:`cluster_draw_counts`).

    Args:
        stats: ``stats(set_index, counts)`` -> key -> ``(m,)`` values of the ``m``
            replicates whose unit counts are the rows of the int ``(m, n_units[set_index])``
            ``counts``.
        n_units: per set (e.g. CV repeat; one for a holdout), its number of units.
        n_boot: replicates.
        seed: random seed.
        level: coverage.

    Returns:
        key -> ``[low, high]``.
    """
    _check_bootstrap("cluster_intervals", n_boot, level)
    set_of, counts = cluster_draw_counts(n_units, n_boot, seed)
    draws: dict[str, np.ndarray] = {}
    for s, c in enumerate(counts):
        if len(c):
            for key, values in stats(s, c).items():
                draws.setdefault(key, np.full(n_boot, np.nan))[set_of == s] = values
    return _percentile_intervals(draws, level)


def _rate_interval(flags, units_per_set, n_boot: int, seed: int) -> list[float]:
    """The cluster-bootstrap interval of the flagged share (for :func:`rate_interval`).

    A replicate's share is its flagged rows over its rows, each row weighing as often as its
    unit was drawn (integer sums, so exactly the share of the resampled rows).

    Args:
        flags: per set, a boolean array, one entry per row.
        units_per_set: per set, the unit of each row.
        n_boot: replicates.
        seed: random seed.

    Returns:
        ``[low, high]`` (95%).
    """
    flagged, sizes, n_units = [], [], []
    for s, (f, u) in enumerate(zip(flags, units_per_set, strict=True)):
        codes, n = _unit_codes(u)
        if len(codes) != len(f):
            raise ValueError(f"rate_interval: set {s} has {len(f)} flags but {len(codes)} units")
        flagged.append(np.bincount(codes[f], minlength=n))
        sizes.append(np.bincount(codes, minlength=n))
        n_units.append(n)

    def stats(s, counts):
        return {"rate": (counts @ flagged[s]) / (counts @ sizes[s])}

    return cluster_intervals(stats, n_units, n_boot, seed)["rate"]


def rate_interval(
    flags_per_set, units_per_set, independent: bool = False, n_boot: int = 2000, seed: int = 0
) -> dict:
    """A share of flagged rows, with a 95% interval over its units of independence.

    For independent units (images, each scored once or once per CV fold), the interval is
    the exact Clopper-Pearson one for the mean flagged share out of the distinct units (a
    bootstrap would collapse to a point at 0% or 100%). Otherwise (slices of one case are
    not independent) it is the percentile interval of a cluster bootstrap over the units
    (:func:`cluster_intervals`, one set per replicate).

    Args:
        flags_per_set: per set (e.g. CV repeat) a boolean array, one entry per row.
        units_per_set: per set the unit of each row (case for CT slices, image for images).
        independent: the units are independent images (exact interval).
        n_boot: bootstrap replicates.
        seed: random seed.

    Returns:
        ``{"rate", "ci95", "flagged", "rows", "units", "method"}``: the mean share over sets,
        its interval, the flagged and total rows over all sets, the distinct units of the
        first set and ``"exact"`` or ``"cluster bootstrap"``.
    """
    flags = [np.asarray(f, dtype=bool) for f in flags_per_set]
    if not flags or any(len(f) == 0 for f in flags) or len(flags) != len(units_per_set):
        raise ValueError(f"rate_interval: needs non-empty sets with units, got {len(flags)} sets")
    rate = float(np.mean([f.mean() for f in flags]))
    units = len(np.unique(np.asarray(units_per_set[0]).astype(str)))
    if independent:
        ci = binomtest(int(round(rate * units)), units).proportion_ci(0.95, method="exact")
        low, high, method = float(ci.low), float(ci.high), "exact"
    else:
        low, high = _rate_interval(flags, units_per_set, n_boot, seed)
        method = "cluster bootstrap"
    return {
        "rate": rate,
        "ci95": [low, high],
        "flagged": int(sum(f.sum() for f in flags)),
        "rows": int(sum(len(f) for f in flags)),
        "units": units,
        "method": method,
    }


def mean_log_prob(probs, groups=None) -> np.ndarray:
    """The softmax of the mean log-probability: several probabilities of one thing made one.

    The mean log-probability multiplies the probabilities (then renormalises): one that all
    but rules a class out counts more than under the mean probability. Probabilities are
    clipped to :data:`PROB_FLOOR` first. The mean runs over the first axis: over a stack of
    ``(n, 3)`` probabilities of the same rows (the views of a slice, the members of an
    ensemble), over the slices of one study, or over the rows of each group.

    Args:
        probs: ``(m, ..., 3)`` probabilities, or a list of m arrays of one shape.
        groups: optional group code (``0 .. g-1``, each present) of each of the m rows of
            ``(m, 3)`` probabilities: the mean then runs over each group's rows.

    Returns:
        ``(..., 3)`` probabilities, or ``(g, 3)`` with ``groups``.
    """
    logs = np.log(np.clip(np.asarray(probs, np.float64), PROB_FLOOR, 1))
    if logs.ndim == 0 or logs.shape[-1] != K or len(logs) == 0:
        raise ValueError(
            f"mean_log_prob: expected (m >= 1, ..., {K}) probabilities, got {logs.shape}"
        )
    if groups is None:
        mean = logs.mean(axis=0)
    else:
        codes = np.asarray(groups, np.int64)
        if logs.ndim != 2 or codes.shape != (len(logs),):
            raise ValueError(
                f"mean_log_prob: {codes.shape} group codes for probabilities {logs.shape}"
            )
        cells = (codes[:, None] * K + np.arange(K)).ravel()
        n_groups = int(codes.max()) + 1
        total = np.bincount(cells, weights=logs.ravel(), minlength=n_groups * K)
        mean = total.reshape(-1, K) / np.bincount(codes, minlength=n_groups)[:, None]
    e = np.exp(mean - mean.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def case_predictions(y_true, probs, cases) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per case: its class and the softmax of its slices' mean log-probability.

    Args:
        y_true: true class indices (one class per case).
        probs: ``(n, 3)`` probabilities.
        cases: case per row.

    Returns:
        ``(case_y, case_probs, case_ids)``: per case (sorted by id) its class index, its
        ``(m, 3)`` probabilities (:func:`mean_log_prob` of its slices) and its id.
    """
    y_true, probs = np.asarray(y_true, np.int64), np.asarray(probs, np.float64)
    if probs.shape != (len(y_true), K) or len(cases) != len(y_true):
        got = f"probs {probs.shape} and {len(cases)} cases"
        raise ValueError(f"case_predictions: {got} for {len(y_true)} rows")
    code, ids = pd.factorize(np.asarray(cases), sort=True)
    label = np.zeros(len(ids), np.int64)
    label[code] = y_true
    if np.any(label[code] != y_true):
        bad = ids.tolist()[code[label[code] != y_true][0]]
        raise ValueError(f"case_predictions: case {bad!r} holds two classes")
    return label, mean_log_prob(probs, code), np.asarray(ids)


def study_probabilities(probs) -> np.ndarray:
    """One patient's probabilities from its slices': the softmax of their mean log-probability.

    The rule of :func:`case_predictions` (:func:`mean_log_prob`) for one study of unknown
    class (``predict --study``).

    Args:
        probs: ``(n, 3)`` probabilities of the study's slices (n >= 1).

    Returns:
        ``(3,)`` probabilities.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[1] != K or len(probs) == 0:
        raise ValueError(
            f"study_probabilities: expected (n >= 1, {K}) probabilities, got {probs.shape}"
        )
    return mean_log_prob(probs)


def case_score(y_true, probs, cases) -> dict[str, float]:
    """Patient-level metrics (:data:`CASE_KEYS`) of :func:`case_predictions`.

    Args:
        y_true: true class indices (one class per case).
        probs: ``(n, 3)`` probabilities.
        cases: case per row.

    Returns:
        Fractions: accuracy, balanced accuracy, macro-F1 and benign recall (NaN without a
        benign case) over cases.
    """
    case_y, case_probs, _ = case_predictions(y_true, probs, cases)
    metrics = confusion_metrics(confusion(case_y, case_probs.argmax(axis=1)))
    return {k: float(metrics[k]) for k in CASE_KEYS}


def _unit_sums(codes: np.ndarray, n_units: int, values: np.ndarray) -> np.ndarray:
    """Per unit, the sum of its rows' values (added in row order).

    Args:
        codes: the unit index of each row.
        n_units: how many units there are.
        values: ``(n, m)`` values of the rows.

    Returns:
        ``(n_units, m)``, of the dtype of ``values``.
    """
    out = np.zeros((n_units, values.shape[1]), dtype=values.dtype)
    np.add.at(out, codes, values)
    return out


def _unit_cells(codes: np.ndarray, n_units: int, y_true, y_pred) -> np.ndarray:
    """Per unit, how many of its rows fall in each confusion cell.

    Args:
        codes: the unit index of each row.
        n_units: how many units there are.
        y_true: true class indices of the rows.
        y_pred: predicted class indices of the rows.

    Returns:
        int ``(n_units, 9)``, cell ``true * 3 + predicted``.
    """
    cells = np.asarray(y_true, np.int64) * K + np.asarray(y_pred, np.int64)
    return _unit_sums(codes, n_units, np.eye(K * K, dtype=np.int64)[cells])


def _weighted_confusions(counts: np.ndarray, unit_cells: np.ndarray) -> np.ndarray:
    """The confusion matrices of bootstrap replicates.

    Args:
        counts: int ``(m, n_units)``: how often each replicate drew each unit.
        unit_cells: int ``(n_units, 9)`` from :func:`_unit_cells`.

    Returns:
        int ``(m, 3, 3)``, rows true and columns predicted.
    """
    return (counts @ unit_cells).reshape(-1, K, K)


def weighted_auc_ovr(weights, y_true, probs) -> np.ndarray:
    """One-vs-rest ROC AUC per class of weighted rows (weighted Mann-Whitney U, ties count 1/2).

    With integer weights this is :func:`auc_ovr` of the rows repeated as often as their
    weight (the same number: sums of half-integers are exact), for every row of weights.

    Args:
        weights: ``(m, n)`` non-negative weights of the ``n`` rows, one row per replicate.
        y_true: the ``n`` true class indices.
        probs: ``(n, 3)`` probabilities.

    Returns:
        ``(m, 3)``; NaN where a class has no weight or is alone.
    """
    weights = np.asarray(weights, np.float64)
    y_true, probs = np.asarray(y_true), np.asarray(probs, np.float64)
    if weights.ndim != 2 or probs.shape != (len(y_true), K) or weights.shape[1] != len(y_true):
        got = f"weights {weights.shape} and probs {probs.shape}"
        raise ValueError(f"weighted_auc_ovr: {got} for {len(y_true)} rows")
    out = np.full((len(weights), K), np.nan)
    for k in range(K):
        order = np.argsort(probs[:, k], kind="stable")
        out[:, k] = _mann_whitney(weights[:, order], y_true[order] == k, probs[order, k])
    return out


def _mann_whitney(weights: np.ndarray, pos: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC of one class, its rows sorted by score.

    Each positive row adds its weight times the negative weight below it and half the negative
    weight at its score; the sum is divided by the positive times the negative weight.

    Args:
        weights: ``(m, n)`` row weights, rows sorted by ``value``.
        pos: ``(n,)`` whether each row is of the class.
        value: ``(n,)`` the rows' scores for the class, ascending.

    Returns:
        ``(m,)``; NaN where the positive or the negative weight is zero.
    """
    neg = np.where(pos, 0.0, weights)
    below = np.hstack([np.zeros((len(weights), 1)), np.cumsum(neg, axis=1)])
    first = np.searchsorted(value, value[pos], side="left")  # the tie group of each positive
    last = np.searchsorted(value, value[pos], side="right")
    mid = 0.5 * (below[:, first] + below[:, last])  # negatives strictly below + half the ties
    pairs = weights[:, pos].sum(axis=1) * neg.sum(axis=1)
    u = (weights[:, pos] * mid).sum(axis=1)
    return np.divide(u, pairs, out=np.full(len(weights), np.nan), where=pairs > 0)


def _weighted_ece(counts, codes, y_true, probs, n_bins: int = ECE_BINS) -> np.ndarray:
    """:func:`expected_calibration_error` of bootstrap replicates (the bins of :func:`_binned`).

    Args:
        counts: int ``(m, n_units)``: how often each replicate drew each unit.
        codes: the unit index of each row.
        y_true: true class indices of the rows.
        probs: their ``(n, 3)`` probabilities.
        n_bins: bins over [0, 1].

    Returns:
        ``(m,)``.
    """
    idx, conf, hit = _binned(probs, y_true, n_bins)
    n_units, in_bin = counts.shape[1], np.eye(n_bins)[idx]
    conf_sum = counts @ _unit_sums(codes, n_units, in_bin * conf[:, None])
    hit_sum = counts @ _unit_sums(codes, n_units, in_bin * hit[:, None])
    return np.abs(conf_sum - hit_sum).sum(axis=1) / (counts @ np.bincount(codes, minlength=n_units))


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """The mean of each row over its non-NaN entries, as ``np.nanmean`` but silent.

    Args:
        values: ``(m, k)``.

    Returns:
        ``(m,)``; NaN for a row of NaNs.
    """
    finite = ~np.isnan(values)
    n = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    return np.divide(total, n, out=np.full(len(values), np.nan), where=n > 0)


def _score_arrays(cm: np.ndarray, auc: np.ndarray, ece: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`score` of each replicate from its confusion matrix, per-class AUC and ECE.

    Args:
        cm: int ``(m, 3, 3)`` confusion matrices.
        auc: ``(m, 3)`` one-vs-rest AUCs (NaN for a class absent).
        ece: ``(m,)`` expected calibration errors.

    Returns:
        :data:`SCORE_KEYS` -> ``(m,)``.
    """
    precision, recall, f1 = _per_class(cm)
    metrics = confusion_metrics(cm)
    out = {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}
    for i, c in enumerate(CLASSES):
        out[f"precision_{c}"], out[f"recall_{c}"] = precision[:, i], recall[:, i]
        out[f"f1_{c}"] = f1[:, i]
    out["auc_macro"], out["ece"] = _nanmean_rows(auc), ece
    return {k: out[k] for k in SCORE_KEYS}


def _replicate_scores(counts, codes, y_true, probs) -> dict[str, np.ndarray]:
    """:func:`score` and ``case_``-prefixed :func:`case_score` of each replicate of one set.

    Args:
        counts: int ``(m, n_units)``: how often each replicate drew each unit.
        codes: the unit index of each row (:func:`_unit_codes`).
        y_true: true class indices of the rows.
        probs: their ``(n, 3)`` probabilities.

    Returns:
        key -> ``(m,)``. A unit drawn twice counts as two cases with its one prediction.
    """
    n_units = counts.shape[1]
    cm = _weighted_confusions(counts, _unit_cells(codes, n_units, y_true, probs.argmax(axis=1)))
    blocks = [weighted_auc_ovr(w, y_true, probs) for w in _row_weights(counts, codes)]
    auc = np.vstack([np.empty((0, K)), *blocks])
    out = _score_arrays(cm, auc, _weighted_ece(counts, codes, y_true, probs))
    case_y, case_probs, _ = case_predictions(y_true, probs, codes)  # one case per unit
    case_cells = _unit_cells(np.arange(n_units), n_units, case_y, case_probs.argmax(axis=1))
    case = confusion_metrics(_weighted_confusions(counts, case_cells))
    return out | {f"case_{k}": case[k] for k in CASE_KEYS}


def _row_weights(counts: np.ndarray, codes: np.ndarray, cells: int = 1 << 20):
    """Per-row weights (the count of the row's unit), a block of replicates at a time.

    Args:
        counts: int ``(m, n_units)``: how often each replicate drew each unit.
        codes: the unit index of each row.
        cells: at most this many weights per block (at least one replicate).

    Yields:
        float ``(block, n_rows)`` weights, the blocks in replicate order.
    """
    step = max(1, cells // max(len(codes), 1))
    for start in range(0, len(counts), step):
        yield counts[start : start + step][:, codes].astype(np.float64)


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
    codes, n_units = _unit_codes(groups)
    if len(codes) != len(y_true):
        raise ValueError(f"holdout_metrics: {len(codes)} groups for {len(y_true)} rows")
    out = classification_metrics(y_true, probs.argmax(1))
    out["scores"] = score(y_true, probs)
    keys = ("accuracy", "macro_f1", *(f"recall_{c}" for c in CLASSES))
    cells = _unit_cells(codes, n_units, y_true, probs.argmax(1))

    def stats(_, counts):
        metrics = confusion_metrics(_weighted_confusions(counts, cells))
        return {k: metrics[k] for k in keys}

    ci = cluster_intervals(stats, [n_units], n_boot, seed)
    out["accuracy_ci95"], out["macro_f1_ci95"] = ci["accuracy"], ci["macro_f1"]
    for c in CLASSES:
        out["per_class"][c]["recall_ci95"] = ci[f"recall_{c}"]
    return out


def repeated_cv_summary(preds: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Mean and 95% interval of :func:`score` over repeated CV, and of :func:`case_score`.

    The interval treats repeats as :func:`paired_difference` does: a replicate draws the
    units (cases) with replacement once, every repeat is scored on that draw, and the
    replicate's value is the mean over repeats. It holds the fitted models fixed, so it
    covers the sampling of patients, not the variability of training.

    Args:
        preds: one row per scored test row per repeat: ``repeat``, ``y`` (class index),
            ``case`` (the unit of independence) and ``p_<class>`` columns; every repeat
            scores the same units.
        n_boot: bootstrap replicates.
        seed: bootstrap seed (the draws of :func:`paired_difference` with the same seed).

    Returns:
        ``{"repeats", "n_test", "n_boot", "mean", "ci95", "per_repeat", "case",
        "case_accuracy", "case_accuracy_ci95"}`` (fractions; ``ci95`` values ``[lo, hi]``).
        ``case`` is
        ``{"mean": {k: ...}, "ci95": {k: [lo, hi]}}`` over :data:`CASE_KEYS` (cases decided
        by their mean log-probability); ``case_accuracy`` is its accuracy.
    """
    _check_bootstrap("repeated_cv_summary", n_boot, 0.95)
    parts = [g for _, g in preds.groupby("repeat", sort=True)]
    n_test = {len(g) for g in parts}
    if len(n_test) != 1:
        raise ValueError(f"repeated_cv_summary: repeats score different rows ({sorted(n_test)})")
    units = pd.Index(np.unique(preds["case"].to_numpy().astype(str)))
    y = [g["y"].to_numpy() for g in parts]
    p = [g[PROB_COLUMNS].to_numpy() for g in parts]
    codes = [units.get_indexer(g["case"].to_numpy().astype(str)) for g in parts]
    if any(len(np.unique(c)) != len(units) for c in codes):
        raise ValueError("repeated_cv_summary: a repeat lacks some of the units the others score")
    per_repeat = [score(y[r], p[r]) for r in range(len(parts))]
    counts = _draw_counts(len(units), n_boot, seed)[1:]
    draws = [_replicate_scores(counts, codes[r], y[r], p[r]) for r in range(len(parts))]
    ci = {}
    for k in draws[0]:  # a replicate without a class has NaN for its recall: left out
        values = np.mean([d[k] for d in draws], axis=0)
        values = values[~np.isnan(values)]
        ci[k] = order_interval(values, 0.95) if len(values) else [math.nan, math.nan]
    per_case = [case_score(y[r], p[r], parts[r]["case"].to_numpy()) for r in range(len(parts))]
    case_mean = {k: float(np.mean([s[k] for s in per_case])) for k in CASE_KEYS}
    return {
        "repeats": len(parts),
        "n_test": n_test.pop(),
        "n_boot": n_boot,
        "mean": {k: float(np.mean([s[k] for s in per_repeat])) for k in SCORE_KEYS},
        "ci95": {k: ci[k] for k in SCORE_KEYS},
        "per_repeat": per_repeat,
        "case": {"mean": case_mean, "ci95": {k: ci[f"case_{k}"] for k in CASE_KEYS}},
        "case_accuracy": case_mean["accuracy"],
        "case_accuracy_ci95": ci["case_accuracy"],
    }


def _aligned(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two prediction tables sorted by ``(repeat, id)``; ValueError naming what differs.

    Rows must agree on repeat, id, class and case, and on the fold when both tables carry one
    (the same folds, not only the same rows)."""
    for name, t in (("a", a), ("b", b)):
        if missing := {"repeat", "id", "y", "case", *PROB_COLUMNS} - set(t.columns):
            raise ValueError(f"paired_difference: {name} lacks columns {sorted(missing)}")
    if len(a) != len(b):
        raise ValueError(f"paired_difference: a has {len(a)} rows, b {len(b)}")
    a, b = (t.sort_values(["repeat", "id"], kind="stable").reset_index(drop=True) for t in (a, b))
    shared = ["repeat", "id", "y", "case"] + (["fold"] if {"fold"} <= set(a) & set(b) else [])
    for column in shared:
        same = a[column].to_numpy() == b[column].to_numpy()
        if not same.all():
            i = int(np.argmin(same))
            got = f"{a[column].iloc[i]!r} in a, {b[column].iloc[i]!r} in b"
            raise ValueError(f"paired_difference: the tables differ in {column!r}: {got}")
    return a, b


def _case_cells(preds: pd.DataFrame, level: str, cases: pd.Index) -> np.ndarray:
    """Per case, its count in each confusion cell of each repeat: ``(cases, repeats * 9)``."""
    blocks = []
    for _, part in preds.groupby("repeat", sort=True):
        y, probs, case = part["y"].to_numpy(), part[PROB_COLUMNS].to_numpy(), part["case"]
        if level == "case":
            y, probs, case = case_predictions(y, probs, case)
        cell = (
            cases.get_indexer(np.asarray(case).astype(str)) * K * K + y * K + probs.argmax(axis=1)
        )
        blocks.append(np.bincount(cell, minlength=len(cases) * K * K).reshape(len(cases), -1))
    return np.concatenate(blocks, axis=1)


def _draw_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot + 1, n)``: row 0 all ones (the data), then how often each replicate drew a unit."""
    draws = np.random.default_rng(seed).integers(0, n, (n_boot, n)) + n * np.arange(n_boot)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)
    return np.vstack([np.ones((1, n), np.int64), counts])


def paired_difference(
    a: pd.DataFrame,
    b: pd.DataFrame,
    keys=CASE_KEYS,
    level: str = "slice",
    n_boot: int = N_BOOT,
    seed: int = 0,
    ci: float | dict = 0.95,
) -> dict:
    """Model ``a`` minus model ``b`` on the same rows, with a paired cluster-bootstrap interval.

    A replicate draws the cases with replacement once, for both models and every repeat; a
    row (or case) then weighs as often as its case was drawn, so the replicate's confusion
    matrices are weighted counts (all replicates at once: draw counts times per-case cell
    counts). Its estimate is the mean over repeats of the difference. The interval holds the
    fitted models fixed: it covers the sampling of patients, not training variability.

    Args:
        a: predictions of one model: ``repeat``, ``id``, ``y``, ``case`` and ``p_<class>``
            (as :func:`repeated_cv_summary`).
        b: the other model's predictions of the same ``(repeat, id)`` rows.
        keys: metrics, of :data:`CONFUSION_KEYS`.
        level: ``"slice"`` scores rows, ``"case"`` the cases (:func:`case_predictions`).
        n_boot: bootstrap replicates.
        seed: bootstrap seed.
        ci: coverage of the percentile interval, or key -> coverage (an adjusted interval
            per metric, :func:`lungct_utils.comparisons.holm_family`).

    Returns:
        key -> ``{"a", "b", "diff", "diff_ci95": [lo, hi], "coverage", "excludes_zero",
        "p_value", "se"}``: the means over repeats of a's and b's metric and of a minus b,
        the interval of the difference (its ``coverage``; ``diff_ci95`` names it whatever the
        coverage), whether it lies wholly above or below 0, the two-sided bootstrap p-value
        and the replicates' standard deviation.
    """
    if level not in ("slice", "case"):
        raise ValueError(f"paired_difference: level must be 'slice' or 'case', got {level!r}")
    unknown = [k for k in keys if k not in CONFUSION_KEYS]
    coverage = ci if isinstance(ci, dict) else dict.fromkeys(keys, ci)
    if unknown or not all(0 < coverage.get(k, -1) < 1 for k in keys) or not n_boot >= 10:
        raise ValueError(f"paired_difference: bad keys {unknown}, ci={ci!r} or n_boot={n_boot!r}")
    a, b = _aligned(a, b)
    cases = pd.Index(np.unique(a["case"].to_numpy().astype(str)))  # as repeated_cv_summary
    cells = [_case_cells(t, level, cases) for t in (a, b)]
    weights = _draw_counts(len(cases), n_boot, seed)  # row 0: the estimate, then replicates
    metrics = [confusion_metrics((weights @ c).reshape(n_boot + 1, -1, K, K)) for c in cells]
    out = {}
    for key in keys:
        mean_a, mean_b = (m[key].mean(axis=1) for m in metrics)
        diff = mean_a - mean_b
        draws = diff[1:][~np.isnan(diff[1:])]
        lo, hi = order_interval(draws, coverage[key])
        out[key] = {
            "a": float(mean_a[0]),
            "b": float(mean_b[0]),
            "diff": float(diff[0]),
            "diff_ci95": [lo, hi],
            "coverage": float(coverage[key]),
            "excludes_zero": bool(lo > 0 or hi < 0),
            "p_value": bootstrap_p_value(draws),
            "se": float(np.std(draws, ddof=1)),
            "n_boot": int(len(draws)),
        }
    return out


def order_interval(draws, coverage: float) -> list[float]:
    """The percentile interval of bootstrap draws as order statistics (no interpolation).

    With ``k = floor(n * (1 - coverage) / 2)``, the interval is the ``k``-th smallest and
    ``k``-th largest draw (0-based), so it excludes 0 exactly when
    :func:`bootstrap_p_value` is at most ``1 - coverage``.

    Args:
        draws: 1-D finite replicates (at least one).
        coverage: in (0, 1).

    Returns:
        ``[low, high]``.
    """
    draws = np.sort(np.asarray(draws, np.float64))
    if draws.ndim != 1 or len(draws) == 0 or np.isnan(draws).any() or not 0 < coverage < 1:
        raise ValueError(f"order_interval: bad draws {draws.shape} or coverage={coverage!r}")
    k = int(np.floor(len(draws) * (1 - coverage) / 2 + 1e-9))
    return [float(draws[k]), float(draws[len(draws) - 1 - k])]


def bootstrap_p_value(draws) -> float:
    """Two-sided bootstrap p-value of "no difference": twice the share of draws on the far side
    of 0 (a draw at exactly 0 counts on both sides).

    Args:
        draws: the replicates of a difference (at least one).

    Returns:
        ``min(1, 2 * min(#(d <= 0), #(d >= 0)) / n)``. It is at most ``1 - c`` exactly when
        the order-statistic interval of coverage ``c`` (:func:`order_interval`) excludes 0;
        it is 0 when every draw lies on one side, which a family needs enough replicates to
        resolve (:func:`lungct_utils.comparisons.replicates_for`).
    """
    draws = np.asarray(draws, np.float64)
    if draws.ndim != 1 or len(draws) == 0 or np.isnan(draws).any():
        raise ValueError(f"bootstrap_p_value: needs 1-D finite draws, got shape {draws.shape}")
    tail = min(np.sum(draws <= 0), np.sum(draws >= 0))
    return float(min(1.0, 2 * tail / len(draws)))


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
