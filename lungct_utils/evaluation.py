"""Tables and curves for the evaluation and CV notebooks (04, 05)."""

from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from .config import CLASSES
from .summary import PAPER_TABLE_III, PAPER_TABLE_IV


def table_iii(metrics: dict) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support in the layout of the paper's Table III.

    Args:
        metrics: a holdout metrics dict.

    Returns:
        DataFrame indexed by class (percent, two decimals), plus an ``accuracy`` row.
    """
    rows = {c.capitalize(): {k: metrics["per_class"][c][k] for k in ("precision", "recall", "f1")}
            for c in CLASSES}  # fmt: skip
    frame = pd.DataFrame(rows).T * 100
    frame["support"] = [metrics["per_class"][c]["support"] for c in CLASSES]
    frame.loc["accuracy"] = [metrics["accuracy"] * 100, None, None, sum(frame["support"])]
    return frame.round(2)


def paper_vs_ours(holdouts: dict[str, dict]) -> pd.DataFrame:
    """The paper's Table III numbers beside each protocol's (percent).

    Args:
        holdouts: protocol -> holdout metrics.

    Returns:
        DataFrame: rows metric names, columns ``paper`` and the protocols.
    """

    def flat(m: dict) -> dict:
        out = {"accuracy": m["accuracy"]}
        for c in CLASSES:
            for k in ("precision", "recall", "f1"):
                out[f"{c} {k}"] = m["per_class"][c][k]
        return out

    cols = {"paper (Table III)": flat(PAPER_TABLE_III)}
    cols.update({p: flat(m) for p, m in holdouts.items()})
    return (pd.DataFrame(cols) * 100).round(2)


def interval_table(holdouts: dict[str, dict]) -> pd.DataFrame:
    """Accuracy and per-class recall with their 95% bootstrap intervals (percent).

    Args:
        holdouts: protocol -> holdout metrics.

    Returns:
        DataFrame: rows protocol, columns ``metric [lo, hi]`` strings.
    """
    rows = {}
    for p, m in holdouts.items():
        lo, hi = m["accuracy_ci95"]
        row = {"accuracy": f"{100 * m['accuracy']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"}
        lo, hi = m.get("macro_f1_ci95", [float("nan")] * 2)
        row["macro F1"] = f"{100 * m['macro_f1']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"
        for c in CLASSES:
            r = m["per_class"][c]
            lo, hi = r["recall_ci95"]
            row[f"{c} recall"] = f"{100 * r['recall']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"
        rows[p] = row
    return pd.DataFrame(rows).T


def roc_data(preds: pd.DataFrame) -> dict[str, tuple]:
    """One-vs-rest ROC curve and AUC per class.

    Args:
        preds: predictions with ``label`` and ``p_<class>`` columns.

    Returns:
        class -> ``(fpr, tpr, auc)``.
    """
    out = {}
    for c in CLASSES:
        truth = (preds["label"] == c).to_numpy()
        fpr, tpr, _ = roc_curve(truth, preds[f"p_{c}"])
        out[c] = (fpr, tpr, float(roc_auc_score(truth, preds[f"p_{c}"])))
    return out


def table_iv(cv: dict) -> pd.DataFrame:
    """Per-fold accuracy, precision, recall, F1, mean and std in Table IV's layout (percent).

    Args:
        cv: CV metrics (``folds``, ``mean``, ``std``).

    Returns:
        DataFrame indexed by fold number, ``mean`` and ``std``.
    """
    keys = ["accuracy", "precision", "recall", "f1"]
    rows = {str(i + 1): {k: f[k] for k in keys} for i, f in enumerate(cv["folds"])}
    rows["mean"] = {k: cv["mean"][k] for k in keys}
    rows["std"] = {k: cv["std"][k] for k in keys}
    return (pd.DataFrame(rows).T * 100).round(2)


def cv_side_by_side(cvs: dict[str, dict]) -> pd.DataFrame:
    """Accuracy per fold, mean and std: the paper's Table IV beside each protocol.

    Args:
        cvs: protocol -> CV metrics.

    Returns:
        DataFrame indexed like :func:`table_iv`, one column per source.
    """
    cols = {"paper (Table IV)": table_iv(PAPER_TABLE_IV)["accuracy"]}
    cols.update({p: table_iv(cv)["accuracy"] for p, cv in cvs.items()})
    return pd.DataFrame(cols)


def cv_long(cvs: dict[str, dict]) -> pd.DataFrame:
    """Per-fold accuracy in long form (fold, source, accuracy) for plotting.

    Args:
        cvs: protocol -> CV metrics.

    Returns:
        DataFrame.
    """
    rows = []
    for source, cv in {"paper (Table IV)": PAPER_TABLE_IV, **cvs}.items():
        rows += [{"fold": i + 1, "source": source, "accuracy": f["accuracy"]}
                 for i, f in enumerate(cv["folds"])]  # fmt: skip
    return pd.DataFrame(rows)


def protocol_frame(holdouts: dict[str, dict]) -> pd.DataFrame:
    """Holdout accuracy, macro-F1 and per-class recall per protocol, long form.

    Args:
        holdouts: protocol -> holdout metrics.

    Returns:
        DataFrame ``protocol, metric, value, lo, hi`` (fractions).
    """
    rows = []
    for p, m in holdouts.items():
        lo, hi = m["accuracy_ci95"]
        rows.append(
            {"protocol": p, "metric": "accuracy", "value": m["accuracy"], "lo": lo, "hi": hi}
        )
        flo, fhi = m.get("macro_f1_ci95", [float("nan")] * 2)
        rows.append(
            {"protocol": p, "metric": "macro F1", "value": m["macro_f1"], "lo": flo, "hi": fhi}
        )
        for c in CLASSES:
            r = m["per_class"][c]
            lo, hi = r["recall_ci95"]
            rows.append(
                {"protocol": p, "metric": f"{c} recall", "value": r["recall"], "lo": lo, "hi": hi}
            )
    return pd.DataFrame(rows)


def ablation_table(baseline: dict, ablated: dict) -> pd.DataFrame:
    """Holdout and CV accuracy with and without the pad-to-square ablation (percent).

    Args:
        baseline: ``{"holdout", "cv"}`` of the protocol as run.
        ablated: the same after padding to square.

    Returns:
        DataFrame: rows metrics, columns ``as the paper (stretch)``, ``pad to square``,
        ``difference``.
    """

    def row(m):
        return {"holdout accuracy": m["holdout"]["accuracy"],
                "holdout malignant recall": m["holdout"]["per_class"]["malignant"]["recall"],
                "CV mean accuracy": m["cv"]["mean"]["accuracy"]}  # fmt: skip

    frame = pd.DataFrame({"as the paper (stretch)": row(baseline), "pad to square": row(ablated)})
    frame["difference"] = frame["pad to square"] - frame["as the paper (stretch)"]
    return (frame * 100).round(2)
