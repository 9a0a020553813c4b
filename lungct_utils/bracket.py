"""The bracket: the honest answer under every grouping of the family, and paired differences.

Patient boundaries are unknown (:mod:`lungct_utils.groupings`), so the honest CV runs under
each grouping of the family; the answer is the central grouping's estimate together with
the range over the readings of the patients, for both the paper's model and the shipped
recipe, at slice level (each distinct original) and at patient level (each group, scored on
its slices' mean log-probability). The leak controls are shown apart, per slice only: their
groups are not patients. Every builder here turns the ``metrics.json`` blocks into plain
dicts or DataFrames; no number is computed twice.
"""

from __future__ import annotations

import pandas as pd

from .comparisons import verdict
from .groupings import FAMILY_LABELS, LEAK_CONTROLS
from .tables import LABELS, LEVEL_NAMES, signed_interval, with_interval

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
    reported apart, per slice only, for the models they were scored with.

    Args:
        groupings: ``metrics["groupings"]``: name -> ``{"n_groups", "paper"[, "selected"]}``
            with :func:`compact` blocks (a leak control may lack ``"selected"``).
        central: the central grouping's name.
        leak_controls: groupings left out of the range.

    Returns:
        model -> level -> metric -> ``{"central", "ci95", "min", "max", "min_at",
        "max_at", "width", "readings", "leak_controls": {grouping: mean}}`` (no leak
        control per patient: its groups are not patients).
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
                    if g in leak_controls and model in v and level == "slice"
                }
                out[model][level][k] = {
                    "central": values[central],
                    "ci95": groupings[central][model][level]["ci95"][k],
                    "min": values[low],
                    "max": values[high],
                    "min_at": low,
                    "max_at": high,
                    "width": values[high] - values[low],
                    "readings": len(values),
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
        DataFrame indexed by grouping (those scored with ``model``; per patient, the readings
        of the patients only): groups, then one column per metric.
    """
    rows = {}
    for name, g in groupings.items():
        if model not in g or (level == "case" and name in LEAK_CONTROLS):
            continue
        part = g[model][level]
        row = {"groups": str(g["n_groups"])}
        row.update({LABELS[k]: with_interval(part["mean"][k], part["ci95"][k]) for k in KEYS})
        rows[FAMILY_LABELS.get(name, name)] = row
    return pd.DataFrame(rows).T


def bracket_table(result: dict) -> pd.DataFrame:
    """The bracket as text: central [interval] and the range over the readings of the patients.

    Args:
        result: from :func:`bracket`.

    Returns:
        DataFrame indexed by ``"<model>, <level>"``, one column per metric.
    """
    names = {"paper": "paper's model", "selected": "06's nested selection"}
    rows = {}
    for model, levels in result.items():
        for level, metrics in levels.items():
            rows[f"{names[model]}, {LEVEL_NAMES[level]}"] = {
                LABELS[k]: f"{with_interval(m['central'], m['ci95'])}; "
                f"readings {100 * m['min']:.1f}-{100 * m['max']:.1f}"
                for k, m in metrics.items()
            }
    return pd.DataFrame(rows).T


def family_frame(groupings: dict, level: str = "slice") -> pd.DataFrame:
    """Long form for :func:`lungct_utils.plots.family_plot`.

    Args:
        groupings: ``metrics["groupings"]``.
        level: ``"slice"`` or ``"case"``.

    Returns:
        DataFrame ``grouping, model, metric, value, lo, hi`` (per patient, the readings of
        the patients only).
    """
    rows = []
    for name, g in groupings.items():
        if level == "case" and name in LEAK_CONTROLS:
            continue
        for model in (m for m in MODELS if m in g):
            part = g[model][level]
            for k in KEYS[:3]:
                lo, hi = part["ci95"][k]
                row = {"grouping": name, "model": model, "metric": LABELS[k]}
                rows.append({**row, "value": part["mean"][k], "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def paired_table(paired: dict, exploratory: bool = False) -> pd.DataFrame:
    """Differences from the paper's model: mean over repeats [interval], percent points.

    Args:
        paired: variant -> level -> metric -> from
            :func:`lungct_utils.evaluate.paired_difference`, with ``"holm"`` when the
            comparisons were adjusted (:func:`lungct_utils.comparisons.holm_family`).
        exploratory: show plain 95% intervals and mark none (no verdict is drawn).

    Returns:
        DataFrame indexed by ``"<variant>, <level>"``. Adjusted comparisons show the Holm
        interval and end with ``*`` when Holm calls them different (then, and only then, a
        difference is called real); plain ones show the 95% interval, ``*`` when it excludes
        0, unless exploratory.
    """
    rows = {}
    for variant, levels in paired.items():
        for level, metrics in levels.items():
            cells = {}
            for k, d in metrics.items():
                if "holm" in d and not exploratory:
                    mark = " *" if d["holm"]["rejected"] else ""
                    cells[LABELS[k]] = signed_interval(d, 2, d["holm"]["ci"]) + mark
                else:
                    mark = " *" if d["excludes_zero"] and not exploratory else ""
                    cells[LABELS[k]] = signed_interval(d, 2) + mark
            rows[f"{variant}, {LEVEL_NAMES[level]}"] = cells
    return pd.DataFrame(rows).T


def comparison_table(block: dict) -> pd.DataFrame:
    """The primary comparison and its secondary family, one row each, percent points.

    Args:
        block: from :func:`lungct_utils.comparisons.primary_and_secondary`.

    Returns:
        DataFrame indexed by ``"<metric>, <level>"``: role, difference, interval (its
        coverage), verdict and the smallest difference detectable.
    """

    def row(role, d, interval, coverage):
        lo, hi = interval
        return {
            "role": role,
            "difference": f"{100 * d['diff']:+.2f}",
            "interval": f"[{100 * lo:+.2f}, {100 * hi:+.2f}] ({100 * coverage:.2f}%)",
            "verdict": verdict(d),
            "detectable": f"{100 * d['detectable']:.1f}",
        }

    p = block["primary"]
    where = LEVEL_NAMES[p["level"]]
    rows = {f"{LABELS[p['metric']]}, {where}": row("primary", p, p["diff_ci95"], p["coverage"])}
    for level, metrics in block["secondary"].items():
        for k, d in metrics.items():
            name = f"{LABELS[k]}, {LEVEL_NAMES[level]}"
            rows[name] = row("secondary (Holm)", d, d["holm"]["ci"], d["holm"]["coverage"])
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
