"""The tables the notebooks and reports show, as DataFrames (numbers as fractions or counts).

Each builder takes data or metrics dicts and returns a DataFrame; notebooks ``display`` it
(styled with :func:`percent` where that helps), and :mod:`lungct_utils.report` renders the
same frames as Markdown for ``summary.md``, the README and the model card, so every table
is written once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import CLASSES, PAPER_TABLE_III, PAPER_TABLE_IV, STATED_CASES, PaperConfig
from .evaluate import ECE_BINS, SCORE_KEYS


def pct(x: float, digits: int = 2) -> str:
    """A fraction as a percentage with ``digits`` decimals (no sign)."""
    return f"{100 * x:.{digits}f}"


def markdown(frame: pd.DataFrame, percent: bool = False, index: str = "") -> str:
    """A DataFrame as a Markdown table.

    Args:
        frame: the table.
        percent: show float cells as percentages (two decimals).
        index: header of the index column.

    Returns:
        Markdown text.
    """

    def cell(v) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else (pct(v) if percent else f"{v:.4g}")
        return str(v)

    head = f"| {index} | " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|---|" + "---:|" * len(frame.columns)
    body = [
        f"| {i} | " + " | ".join(cell(v) for v in row) + " |"
        for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    return "\n".join([head, rule, *body])


def percent(frame: pd.DataFrame, digits: int = 2):
    """A Styler showing fractions as percentages (for ``display`` in notebooks).

    Args:
        frame: a table of fractions (NaN shown empty).
        digits: decimals.

    Returns:
        ``frame.style`` with a percent format.
    """
    return frame.style.format(lambda v: "" if pd.isna(v) else f"{100 * v:.{digits}f}%")


def with_interval(value: float, ci, digits: int = 2) -> str:
    """``"87.30 [84.10, 90.20]"``: a fraction and its interval, in percent.

    Args:
        value: the estimate.
        ci: ``[low, high]`` or None.
        digits: decimals.

    Returns:
        The text.
    """
    text = f"{100 * value:.{digits}f}"
    if ci is None:
        return text
    return f"{text} [{100 * ci[0]:.{digits}f}, {100 * ci[1]:.{digits}f}]"


def class_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per class, their share, the stated cases and images per case.

    Args:
        manifest: the release manifest.

    Returns:
        DataFrame indexed by class plus ``total``.
    """
    counts = manifest["label"].value_counts().reindex(CLASSES).astype(int)
    out = pd.DataFrame({"images": counts, "stated_cases": pd.Series(dict(STATED_CASES))})
    out.loc["total"] = out.sum()
    out["share"] = (out["images"] / counts.sum()).round(3)
    out["images_per_case"] = (out["images"] / out["stated_cases"]).round(1)
    return out


def size_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Counts of each image size (width x height, aspect) per class.

    Args:
        manifest: the release manifest.

    Returns:
        DataFrame: rows ``WxH (aspect)``, columns classes.
    """
    size = manifest["width"].astype(str) + "x" + manifest["height"].astype(str)
    aspect = (manifest["width"] / manifest["height"]).map(lambda a: f"{a:.2f}")
    tab = pd.crosstab((size + " (" + aspect + ")").rename("size (aspect)"), manifest["label"])
    return tab.reindex(columns=list(CLASSES), fill_value=0)


def intensity_table(hists: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean grey level and share of near-black pixels per class.

    Args:
        hists: class -> 256-bin normalized histogram.

    Returns:
        DataFrame indexed by class.
    """
    levels = np.arange(256)
    rows = {
        c: {"mean_grey": float((h * levels).sum()), "share_below_10": float(h[:10].sum())}
        for c, h in hists.items()
    }
    return pd.DataFrame(rows).T.round(3)


def duplicate_table(manifest: pd.DataFrame, byte_groups, pixel_groups) -> pd.DataFrame:
    """Exact duplicates per class: groups and files, by bytes and by pixels.

    Args:
        manifest: the release manifest.
        byte_groups: groups of paths with equal bytes.
        pixel_groups: groups of paths with equal decoded pixels.

    Returns:
        DataFrame indexed by kind (``across classes`` counts groups mixing labels).
    """
    label = dict(zip(manifest["path"], manifest["label"], strict=True))
    rows = {}
    for name, groups in (("same bytes", byte_groups), ("same pixels", pixel_groups)):
        labels = [{label[p] for p in g} for g in groups]
        row = {c: sum(1 for s in labels if s == {c}) for c in CLASSES}
        row["across classes"] = sum(1 for s in labels if len(s) > 1)
        row["files in groups"] = sum(len(g) for g in groups)
        rows[name] = row
    return pd.DataFrame(rows).T


def augmented_vs_table_one(table: pd.DataFrame, cfg: PaperConfig) -> pd.DataFrame:
    """Augmented class counts beside the paper's Table I and the originals.

    Args:
        table: the augmented manifest.
        cfg: its settings.

    Returns:
        DataFrame indexed by class: ``originals``, ``copies``, ``augmented``, ``table_I``.
    """
    originals = table[table["transform"] == "identity"]["label"].value_counts()
    total = table["label"].value_counts()
    table_one = pd.Series(dict(cfg.augmented_counts)).reindex(CLASSES)
    out = pd.DataFrame(
        {
            "originals": originals.reindex(CLASSES),
            "copies": (total - originals).reindex(CLASSES),
            "augmented": total.reindex(CLASSES),
            "table_I": table_one,
        }
    )
    out.loc["total"] = out.sum()
    return out.astype(int)


def split_table(splits: pd.DataFrame, column: str = "holdout") -> pd.DataFrame:
    """Images per split value and class, how many are scored, and the split's share.

    Args:
        splits: a split manifest.
        column: ``"holdout"`` or ``"fold_<r>"``.

    Returns:
        DataFrame indexed by split value.
    """
    tab = pd.crosstab(splits[column], splits["label"]).reindex(columns=list(CLASSES), fill_value=0)
    if column == "holdout":
        tab = tab.reindex(["train", "val", "test"])
    tab["total"] = tab.sum(axis=1)
    tab["scored"] = splits[splits["scored"]].groupby(column).size().reindex(tab.index).fillna(0)
    tab["share"] = (tab["total"] / tab["total"].sum()).round(3)
    return tab.astype({"scored": int})


def table_iii(metrics: dict) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support in the layout of the paper's Table III.

    Args:
        metrics: a holdout metrics dict (:func:`~lungct_utils.evaluate.holdout_metrics`).

    Returns:
        DataFrame indexed by class (fractions) plus an ``accuracy`` row.
    """
    rows = {
        c: {k: metrics["per_class"][c][k] for k in ("precision", "recall", "f1", "support")}
        for c in CLASSES
    }
    frame = pd.DataFrame(rows).T
    frame.loc["accuracy"] = [np.nan, np.nan, metrics["accuracy"], frame["support"].sum()]
    return frame.astype({"support": int})


def paper_vs_ours(holdouts: dict[str, dict]) -> pd.DataFrame:
    """The paper's Table III beside each protocol's holdout (fractions).

    Args:
        holdouts: protocol -> holdout metrics.

    Returns:
        DataFrame: rows metric names, columns ``paper (Table III)`` and the protocols.
    """

    def flat(m) -> dict:
        out = {"accuracy": m["accuracy"]}
        for c in CLASSES:
            out.update({f"{c} {k}": m["per_class"][c][k] for k in ("precision", "recall", "f1")})
        return out

    return pd.DataFrame(
        {"paper (Table III)": flat(PAPER_TABLE_III), **{p: flat(m) for p, m in holdouts.items()}}
    )


def interval_table(holdouts: dict[str, dict]) -> pd.DataFrame:
    """Holdout accuracy, macro-F1 and per-class recall with their 95% intervals (percent text).

    Args:
        holdouts: protocol -> holdout metrics.

    Returns:
        DataFrame: rows protocol, columns ``metric [lo, hi]`` strings.
    """
    rows = {}
    for p, m in holdouts.items():
        row = {
            "test images": sum(r["support"] for r in m["per_class"].values()),
            "accuracy": with_interval(m["accuracy"], m["accuracy_ci95"]),
            "macro F1": with_interval(m["macro_f1"], m["macro_f1_ci95"]),
        }
        for c in CLASSES:
            r = m["per_class"][c]
            row[f"{c} recall"] = with_interval(r["recall"], r["recall_ci95"])
        rows[p] = row
    return pd.DataFrame(rows).T


def table_iv(cv: dict) -> pd.DataFrame:
    """Per-fold accuracy, precision, recall, F1, mean and std in Table IV's layout (fractions).

    Args:
        cv: ``{"folds", "mean", "std"}`` (:func:`~lungct_utils.evaluate.summarize_folds`).

    Returns:
        DataFrame indexed by fold number, ``mean`` and ``std``.
    """
    keys = ["accuracy", "precision", "recall", "f1"]
    rows = {str(i + 1): {k: f[k] for k in keys} for i, f in enumerate(cv["folds"])}
    rows["mean"] = {k: cv["mean"][k] for k in keys}
    rows["std"] = {k: cv["std"][k] for k in keys}
    return pd.DataFrame(rows).T


def cv_side_by_side(paper_cv: dict) -> pd.DataFrame:
    """Table IV of the paper beside our paper-protocol CV: accuracy and F1 per fold (fractions).

    Args:
        paper_cv: our Table IV dict.

    Returns:
        DataFrame indexed like :func:`table_iv`; columns published/ours accuracy and F1.
    """
    published, ours = table_iv(PAPER_TABLE_IV), table_iv(paper_cv)
    return pd.DataFrame(
        {
            "published accuracy": published["accuracy"],
            "published F1": published["f1"],
            "ours accuracy": ours["accuracy"],
            "ours F1": ours["f1"],
        }
    )


def seed_spread_table(spread: dict) -> pd.DataFrame:
    """The reproduction over seeds: holdout and CV accuracy, mean, sd and range.

    Args:
        spread: ``metrics["paper_seeds"]``.

    Returns:
        DataFrame: rows ``holdout test accuracy``, ``5-fold CV accuracy``; columns
        ``seed <first>``, ``mean``, ``sd``, ``min``, ``max`` (fractions).
    """
    first = spread["seeds"][0]
    rows = {}
    for key, name in (
        ("holdout_accuracy", "holdout test accuracy"),
        ("cv_accuracy", "5-fold CV accuracy"),
    ):
        s = spread[key]
        rows[name] = {
            f"seed {first}": spread[f"{key}_per_seed"][0],
            "mean": s["mean"],
            "sd": s["sd"],
            "min": s["min"],
            "max": s["max"],
        }
    return pd.DataFrame(rows).T


#: Metric names as the honest tables show them.
LABELS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro-F1",
    "recall_benign": "benign recall",
    "recall_malignant": "malignant recall",
    "recall_normal": "normal recall",
    "auc_macro": "AUC (macro, one-vs-rest)",
    "ece": f"ECE ({ECE_BINS} bins)",
}


def honest_table(summaries: dict[str, dict], keys=tuple(LABELS)) -> pd.DataFrame:
    """Repeated CV per protocol: mean [95% interval] of each metric (percent text).

    Args:
        summaries: protocol -> :func:`~lungct_utils.evaluate.repeated_cv_summary`.
        keys: metrics to show (from :data:`~lungct_utils.evaluate.SCORE_KEYS`).

    Returns:
        DataFrame: rows protocols, columns metrics, plus case-level accuracy.
    """
    unknown = set(keys) - set(SCORE_KEYS)
    if unknown:
        raise ValueError(f"honest_table: unknown metric(s) {sorted(unknown)}")
    rows = {}
    for p, s in summaries.items():
        row = {"test images (distinct originals)": s["n_test"], "repeats": s["repeats"]}
        row.update({LABELS.get(k, k): with_interval(s["mean"][k], s["ci95"][k]) for k in keys})
        row["case-level accuracy"] = with_interval(s["case_accuracy"], s["case_accuracy_ci95"])
        rows[p] = row
    return pd.DataFrame(rows).T


def per_class_table(summary: dict) -> pd.DataFrame:
    """Per-class precision, recall and F1 of one repeated-CV summary (means, fractions).

    Args:
        summary: :func:`~lungct_utils.evaluate.repeated_cv_summary`.

    Returns:
        DataFrame indexed by class.
    """
    m = summary["mean"]
    return pd.DataFrame(
        {c: {k: m[f"{k}_{c}"] for k in ("precision", "recall", "f1")} for c in CLASSES}
    ).T


def headline_frame(metrics: dict) -> pd.DataFrame:
    """Every protocol side by side for the headline figure (fractions with intervals).

    The reproduction (``paper``) shows its 5-fold CV over seeds (mean, min-max); the honest
    protocols their repeated grouped CV (mean, 95% cluster-bootstrap interval over cases).

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        DataFrame ``protocol, metric, value, lo, hi``.
    """
    rows = []
    seeds = metrics["paper_seeds"]
    cv = seeds["cv_accuracy"]
    rows.append(
        {
            "protocol": "paper",
            "metric": "accuracy",
            "value": cv["mean"],
            "lo": cv["min"],
            "hi": cv["max"],
        }
    )
    for key in ("balanced_accuracy", "macro_f1", "recall_benign"):
        s = seeds["cv_" + key]
        rows.append(
            {
                "protocol": "paper",
                "metric": LABELS[key],
                "value": s["mean"],
                "lo": s["min"],
                "hi": s["max"],
            }
        )
    for p, s in metrics["honest_cv"].items():
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "recall_benign"):
            lo, hi = s["ci95"][key]
            rows.append(
                {"protocol": p, "metric": LABELS[key], "value": s["mean"][key], "lo": lo, "hi": hi}
            )
    return pd.DataFrame(rows)


def beyond_table(rows: list[dict]) -> pd.DataFrame:
    """The variants of notebook 06: mean [95% interval] per metric, and training seconds.

    Args:
        rows: ``metrics["beyond"]["variants"]``.

    Returns:
        DataFrame of text cells, one row per variant.
    """
    keys = ("macro_f1", "balanced_accuracy", "recall_benign", "auc_macro", "ece")
    out = {}
    for row in rows:
        cells = {LABELS[k]: with_interval(row[k], row.get(f"{k}_ci95")) for k in keys}
        cells["training s per fold"] = f"{row['train_seconds']:.1f}"
        out[row["name"]] = cells
    return pd.DataFrame(out).T


def beyond_frame(summaries: dict[str, dict]) -> pd.DataFrame:
    """The variants in long form for :func:`~lungct_utils.plots.protocol_comparison`.

    Args:
        summaries: variant name -> repeated-CV summary.

    Returns:
        DataFrame ``protocol, metric, value, lo, hi`` (the variant in ``protocol``).
    """
    rows = []
    for name, s in summaries.items():
        for key in ("macro_f1", "balanced_accuracy", "recall_benign"):
            lo, hi = s["ci95"][key]
            rows.append(
                {
                    "protocol": name,
                    "metric": LABELS[key],
                    "value": s["mean"][key],
                    "lo": lo,
                    "hi": hi,
                }
            )
    return pd.DataFrame(rows)


def rate_table(rates: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """Flag rates of the input check: image set x pixel scaling, as "rate [low, high] (n/N)".

    Args:
        rates: image set -> scaling -> :func:`~lungct_utils.evaluate.rate_interval` result.

    Returns:
        DataFrame indexed by image set, one column per scaling.
    """
    return pd.DataFrame(
        {
            name: {
                mode: f"{with_interval(r['rate'], r['ci95'])} ({r['flagged']}/{r['rows']})"
                for mode, r in by_mode.items()
            }
            for name, by_mode in rates.items()
        }
    ).T


#: How the reports name the two levels of scoring.
LEVEL_NAMES = {"slice": "per slice", "case": "per patient"}


def signed_interval(d: dict, digits: int = 1, interval=None) -> str:
    """``"+5.2 [+1.0, +9.3]"``: a paired difference and its interval, in points.

    Args:
        d: ``{"diff", "diff_ci95": [lo, hi]}`` (fractions).
        digits: decimals.
        interval: another ``[lo, hi]`` to show (e.g. a Holm-adjusted one); default
            ``d["diff_ci95"]``.

    Returns:
        The text.
    """
    lo, hi = d["diff_ci95"] if interval is None else interval
    return f"{100 * d['diff']:+.{digits}f} [{100 * lo:+.{digits}f}, {100 * hi:+.{digits}f}]"


#: The binary metrics of an external score, in table order.
BINARY_COLUMNS = {
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "balanced_accuracy": "balanced accuracy",
    "auc": "AUC",
    "share_called_benign": "called benign",
    "ece": "ECE",
}


def metric_table(rows: dict) -> pd.DataFrame:
    """Malignant-against-normal metrics with intervals, one row per (model, set).

    Args:
        rows: row label -> a :func:`lungct_utils.deploy.validate.binary_metrics` result.

    Returns:
        DataFrame of ``"value [lo, hi]"`` percent cells plus ``n`` and ``clusters``.
    """
    out = {}
    for label, m in rows.items():
        cells = {"n": m["n"], "clusters": m["clusters"]}
        for key, name in BINARY_COLUMNS.items():
            cells[name] = (
                "" if m.get(key) is None else with_interval(m[key]["value"], m[key]["ci95"], 1)
            )
        out[label] = cells
    return pd.DataFrame(out).T


def goal_status(goal: dict) -> str:
    """``"met"`` (the whole interval meets the goal), ``"met on the estimate only"`` (the
    interval crosses it) or ``"SHORTFALL"`` (the estimate misses it).

    Args:
        goal: ``{"value", "ci95", "met", "shown"}`` (``shown``: the interval meets it too).

    Returns:
        The status.
    """
    if not goal["met"]:
        return "SHORTFALL"
    return "met" if goal.get("shown", True) else "met on the estimate only"


def goal_table(goals: dict) -> pd.DataFrame:
    """Goals with their figure, interval and status (:func:`goal_status`).

    Args:
        goals: goal text -> ``{"value", "ci95", "met", "shown"}``.

    Returns:
        DataFrame ``figure, status``.
    """
    return pd.DataFrame(
        {
            goal: {"figure": with_interval(g["value"], g["ci95"], 1), "status": goal_status(g)}
            for goal, g in goals.items()
        }
    ).T
