"""The bracket: the honest answer under every grouping of the family, and paired differences.

Patient boundaries are unknown (:mod:`lungct_utils.groupings`), so the honest CV runs under
each grouping of the family; the answer is the central grouping's estimate together with
the range over the family, for both the paper's model and the shipped recipe, at slice level
(each distinct original) and at patient level (each group, scored on its slices' mean
log-probability). Every builder here turns the ``metrics.json`` blocks into plain dicts or
DataFrames; no number is computed twice.
"""

from __future__ import annotations

import pandas as pd

from .groupings import FAMILY_LABELS, LEAK_CONTROLS
from .tables import LABELS, with_interval

#: The metrics of the bracket, headline first (balanced accuracy and macro-F1 do not depend
#: on the class mix of the test set; accuracy does).
KEYS = ("balanced_accuracy", "macro_f1", "recall_benign", "accuracy")
#: The two models the bracket compares.
MODELS = ("paper", "selected")
#: Levels: each distinct original, or each group (patient) of the grouping.
LEVELS = ("slice", "case")


def compact(summary: dict) -> dict:
    """A repeated-CV summary reduced to the bracket's keys at both levels.

    Args:
        summary: from :func:`lungct_utils.evaluate.repeated_cv_summary`.

    Returns:
        ``{"slice": {"mean", "ci95"}, "case": {"mean", "ci95"}}`` over :data:`KEYS`.
    """
    out = {}
    for level, part in (("slice", summary), ("case", summary["case"])):
        out[level] = {
            "mean": {k: float(part["mean"][k]) for k in KEYS},
            "ci95": {k: [float(v) for v in part["ci95"][k]] for k in KEYS},
        }
    return out


def bracket(groupings: dict, central: str = "central", leak_controls=LEAK_CONTROLS) -> dict:
    """Central estimate and range over the readings of the patients, per model, level, metric.

    The range is taken over the groupings that respect the evidence of patient boundaries,
    the same for both models; the leak controls (equal runs that cut through patients) are
    reported apart, for the models they were scored with.

    Args:
        groupings: ``metrics["groupings"]``: name -> ``{"n_groups", "paper"[, "selected"]}``
            with :func:`compact` blocks (a leak control may lack ``"selected"``).
        central: the central grouping's name.
        leak_controls: groupings left out of the range.

    Returns:
        model -> level -> metric -> ``{"central", "ci95", "min", "max", "min_at",
        "max_at", "width", "leak_controls": {grouping: mean}}``.
    """
    if central not in groupings:
        raise ValueError(f"bracket: no central grouping {central!r} in {sorted(groupings)}")
    readings = [g for g in groupings if g not in leak_controls]
    missing = [(g, m) for g in readings for m in MODELS if m not in groupings[g]]
    if missing:
        raise ValueError(f"bracket: grouping {missing[0][0]!r} lacks model {missing[0][1]!r}")
    out = {}
    for model in MODELS:
        out[model] = {}
        for level in LEVELS:
            out[model][level] = {}
            for k in KEYS:
                values = {g: groupings[g][model][level]["mean"][k] for g in readings}
                low, high = min(values, key=values.get), max(values, key=values.get)
                controls = {
                    g: v[model][level]["mean"][k]
                    for g, v in groupings.items()
                    if g in leak_controls and model in v
                }
                out[model][level][k] = {
                    "central": values[central],
                    "ci95": groupings[central][model][level]["ci95"][k],
                    "min": values[low],
                    "max": values[high],
                    "min_at": low,
                    "max_at": high,
                    "width": values[high] - values[low],
                    "leak_controls": controls,
                }
    return out


def family_table(groupings: dict, model: str, level: str = "slice") -> pd.DataFrame:
    """One model's scores under every grouping: mean [95% interval], percent text.

    Args:
        groupings: ``metrics["groupings"]``.
        model: ``"paper"`` or ``"selected"``.
        level: ``"slice"`` or ``"case"``.

    Returns:
        DataFrame indexed by grouping (those scored with ``model``): groups, then one column
        per metric.
    """
    rows = {}
    for name, g in groupings.items():
        if model not in g:  # a leak control scored with the paper's model only
            continue
        part = g[model][level]
        row = {"groups": str(g["n_groups"])}
        row.update({LABELS[k]: with_interval(part["mean"][k], part["ci95"][k]) for k in KEYS})
        rows[FAMILY_LABELS.get(name, name)] = row
    return pd.DataFrame(rows).T


def bracket_table(result: dict) -> pd.DataFrame:
    """The bracket as text: central [interval] and the range over the family.

    Args:
        result: from :func:`bracket`.

    Returns:
        DataFrame indexed by ``"<model>, <level>"``, one column per metric.
    """
    names = {"paper": "paper's model", "selected": "shipped recipe"}
    rows = {}
    for model, levels in result.items():
        for level, metrics in levels.items():
            rows[f"{names[model]}, {'per slice' if level == 'slice' else 'per patient'}"] = {
                LABELS[k]: f"{with_interval(m['central'], m['ci95'])}; "
                f"family {100 * m['min']:.1f}-{100 * m['max']:.1f}"
                for k, m in metrics.items()
            }
    return pd.DataFrame(rows).T


def family_frame(groupings: dict, level: str = "slice") -> pd.DataFrame:
    """Long form for :func:`lungct_utils.plots.family_plot`.

    Args:
        groupings: ``metrics["groupings"]``.
        level: ``"slice"`` or ``"case"``.

    Returns:
        DataFrame ``grouping, model, metric, value, lo, hi``.
    """
    rows = []
    for name, g in groupings.items():
        for model in (m for m in MODELS if m in g):
            part = g[model][level]
            for k in KEYS[:3]:
                lo, hi = part["ci95"][k]
                row = {"grouping": name, "model": model, "metric": LABELS[k]}
                rows.append({**row, "value": part["mean"][k], "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def paired_table(paired: dict) -> pd.DataFrame:
    """Differences from the paper's model: mean over repeats [95% cluster interval], percent.

    Args:
        paired: variant -> level -> metric -> from
            :func:`lungct_utils.evaluate.paired_difference`.

    Returns:
        DataFrame indexed by ``"<variant>, <level>"``; a cell ends with ``*`` when the interval
        excludes 0 (then, and only then, the difference is called real).
    """
    rows = {}
    for variant, levels in paired.items():
        for level, metrics in levels.items():
            rows[f"{variant}, {'per slice' if level == 'slice' else 'per patient'}"] = {
                LABELS[k]: f"{100 * d['diff']:+.2f} [{100 * d['diff_ci95'][0]:+.2f}, "
                f"{100 * d['diff_ci95'][1]:+.2f}]" + (" *" if d["excludes_zero"] else "")
                for k, d in metrics.items()
            }
    return pd.DataFrame(rows).T


def level_table(summaries: dict, level: str = "case") -> pd.DataFrame:
    """Several repeated-CV summaries side by side at one level: mean [95% interval].

    Args:
        summaries: name -> :func:`lungct_utils.evaluate.repeated_cv_summary`.
        level: ``"slice"`` or ``"case"`` (per patient).

    Returns:
        DataFrame indexed by name, one column per metric of :data:`KEYS`.
    """
    rows = {}
    for name, s in summaries.items():
        part = compact(s)[level]
        rows[name] = {LABELS[k]: with_interval(part["mean"][k], part["ci95"][k]) for k in KEYS}
    return pd.DataFrame(rows).T
