"""The ``beyond`` part of ``metrics.json`` (notebook 06): its rows, the goal and the peer.

:mod:`lungct_utils.heads` fits and selects the candidates; this module turns their scores
into the entries :mod:`lungct_utils.report` renders: one row per variant
(:func:`variant_rows`), the outer score of the nested selection (:func:`selected_summary`)
and that score against the project's goal for a model that survives the patient-level test,
beside the best public leak-aware peer's own figures (:func:`check`).
"""

from __future__ import annotations

import pandas as pd

from .heads import RECIPES

#: The project's goal for the selected model, and the best public leak-aware peer's figures.
GOAL = {"macro_f1": 0.85, "recall_benign": 0.70}
PEER = {
    "name": "anaguedes0802/lung-cancer-classifier (103 patient groups, ResNet50 + LR)",
    "accuracy": 0.873,
    "macro_f1": 0.729,
    "recall_benign": 0.37,
}
#: The metrics each variant row keeps, with their intervals.
VARIANT_KEYS = ("macro_f1", "balanced_accuracy", "recall_benign", "auc_macro", "ece", "accuracy")


def variant_rows(summaries: dict, seconds: dict, finetune: dict | None = None) -> list[dict]:
    """The ``beyond.variants`` entries of ``metrics.json``: one per variant, with intervals.

    Args:
        summaries: variant name -> :func:`~lungct_utils.evaluate.repeated_cv_summary`.
        seconds: variant name -> mean training seconds per outer fold.
        finetune: the fine-tuning study's row, if it ran.

    Returns:
        ``{"name", <metric>, "<metric>_ci95" for each of VARIANT_KEYS, "train_seconds"}``.
    """
    rows = []
    for name, s in summaries.items():
        row = {"name": name, "train_seconds": float(seconds[name])}
        for k in VARIANT_KEYS:
            row[k], row[f"{k}_ci95"] = s["mean"][k], s["ci95"][k]
        row["case"] = s["case"]
        rows.append(row)
    return rows + ([finetune] if finetune else [])


def selected_summary(summary: dict, chosen: list[dict]) -> dict:
    """The ``beyond.selected`` entry: the outer score of the whole nested selection.

    Args:
        summary: repeated-CV summary of the selected predictions.
        chosen: per outer fold, the recipe the inner folds chose.

    Returns:
        Its metrics with intervals, ``"selection": "nested"`` and how often each recipe won.
    """
    out = {
        "name": "nested selection over " + ", ".join(r.name for r in RECIPES),
        "selection": "nested",
    }
    for k in VARIANT_KEYS:
        out[k], out[f"{k}_ci95"] = summary["mean"][k], summary["ci95"][k]
    out["case_accuracy"] = summary["case_accuracy"]
    out["case"] = summary["case"]
    counts = pd.Series([c["selected"] for c in chosen]).value_counts()
    out["chosen_in_outer_folds"] = {str(k): int(v) for k, v in counts.items()}
    return out


def check(selected: dict) -> dict:
    """The selected score against the goal, with the best public peer's own figure beside it.

    The peer scored one holdout of its own 103-group reconstruction on its copy of the data:
    its figure is shown, not compared (the groupings differ); notebook 08 scores the shipped
    recipe under the peer's grouping rule for a like-for-like reading.

    Args:
        selected: from :func:`selected_summary`.

    Returns:
        metric -> ``{"ours", "goal", "reached", "deficit", "peer", "peer_grouping"}``.
    """
    return {
        k: {
            "ours": selected[k],
            "goal": g,
            "reached": selected[k] >= g,
            "deficit": max(0.0, g - selected[k]),
            "peer": PEER[k],
            "peer_grouping": "its own 103 groups, one holdout (differs from ours)",
        }
        for k, g in GOAL.items()
    }
