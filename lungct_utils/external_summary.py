"""The external validation in words and tables (notebook 08's part of ``metrics.json``).

Every sentence here is chosen by the numbers: whether a figure holds at another hospital,
whether a difference is shown, whether a goal is met. The external set is only scored; these
functions read its figures, never choose anything with them.
"""

from __future__ import annotations

from .tables import goal_status, markdown, metric_table, signed_interval, with_interval


def _fig(m: dict, key: str) -> str:
    """``"81.0% [71.5, 88.1]"`` of one metric of a :func:`binary_metrics` result (``"n/a"``
    where the class mix cannot give it)."""
    if m.get(key) is None:
        return "n/a"
    return f"{with_interval(m[key]['value'], m[key]['ci95'], 1)}%"


def holds(internal: dict, external: dict, key: str = "balanced_accuracy") -> str:
    """Whether a metric holds outside: ``"falls"``, ``"rises"`` or ``"not shown to move"``.

    The external interval wholly below the internal one is a fall, wholly above a rise; the
    two come from different units (patients inside, case proxies outside), so only intervals
    that do not overlap count.

    Args:
        internal: patient-level metrics inside IQ-OTH/NCCD.
        external: metrics on the external set.
        key: the metric.

    Returns:
        One of the three phrases, or ``"not measured"`` when either side lacks the metric.
    """
    if internal.get(key) is None or external.get(key) is None:
        return "not measured"
    (ilo, ihi), (elo, ehi) = internal[key]["ci95"], external[key]["ci95"]
    if ehi < ilo:
        return "falls"
    if elo > ihi:
        return "rises"
    return "not shown to move"


def model_sentence(
    name: str, internal: dict, external: dict, inside: str = "on held-out IQ-OTH/NCCD patients"
) -> str:
    """One model's external figures beside its internal ones, with the verdict.

    Args:
        name: the model's name in the text.
        internal: its patient-level metrics inside IQ-OTH/NCCD.
        external: its metrics on every distinct external slice.
        inside: where the internal figures come from, in the text.

    Returns:
        A sentence.
    """
    verdict = {
        "falls": "it does not hold",
        "rises": "it holds",
        "not shown to move": "the data do not show it falling",
        "not measured": "the class mix cannot tell",
    }[holds(internal, external)]
    return (
        f"The {name}: balanced accuracy {_fig(external, 'balanced_accuracy')} and AUC "
        f"{_fig(external, 'auc')} outside, against {_fig(internal, 'balanced_accuracy')} and "
        f"{_fig(internal, 'auc')} {inside}: {verdict} "
        f"(sensitivity {_fig(external, 'sensitivity')}, specificity "
        f"{_fig(external, 'specificity')})."
    )


def _difference_word(d: dict) -> str:
    """``"better than"``, ``"worse than"`` or ``"not shown different from"``: a paired
    difference's interval, wholly above 0, wholly below, or across it."""
    lo, hi = d["diff_ci95"]
    return "better than" if lo > 0 else "worse than" if hi < 0 else "not shown different from"


def transfer_sentence(transfer: dict) -> str:
    """What the shipping rule chose, and how each transfer recipe did outside.

    Args:
        transfer: ``metrics["external"]["transfer"]``.

    Returns:
        A sentence.
    """
    parts = []
    for name, d in transfer["external_paired"].items():
        ba = d["balanced_accuracy"]
        parts.append(
            f"{name} is {_difference_word(ba)} the recipe 06 selected, outside (balanced "
            f"accuracy {signed_interval(ba)} points)"
        )
    chosen = transfer["chosen"]
    rule = (
        f"the rule written before scoring ships **{chosen}**"
        if chosen != "as shipped"
        else "the rule written before scoring keeps the shipped recipe"
    )
    return f"Recipes aimed at transfer: {rule}; " + "; ".join(parts) + "."


def goal_lines(goals: dict) -> list[str]:
    """Each goal with its figure and status; a shortfall is named as one.

    Args:
        goals: goal text -> ``{"value", "ci95", "met", "shown", "unit"}`` (``unit`` ``"%"``
            or ``"points"``, a difference).

    Returns:
        Markdown bullet lines.
    """
    lines = []
    for goal, g in goals.items():
        if g.get("unit") == "points":
            figure = signed_interval({"diff": g["value"], "diff_ci95": g["ci95"]}) + " points"
        else:
            figure = f"{with_interval(g['value'], g['ci95'], 1)}%"
        lines.append(f"  * {goal_status(g)}: {goal}: {figure}")
    return lines


def check_sentence(part: dict) -> str:
    """What the input check's two questions did outside.

    Args:
        part: ``metrics["external"]``.

    Returns:
        A sentence.
    """
    check = part["models"]["shipped model"]["input_check"]
    refused, unlike = check.get("refused_share"), check.get("unlike_share")
    if refused is None or unlike is None:
        return "The input check had no scored external slice to judge."
    return (
        f"The input check of the shipped model refuses "
        f"{with_interval(refused['value'], refused['ci95'], 1)}% of the external CT slices as "
        f"not CT (`not_ct`: no class) and warns on "
        f"{with_interval(unlike['value'], unlike['ci95'], 1)}% as CT unlike the training "
        f"hospital's (`ct_unlike_training`: class kept, with a warning)."
    )


def model_names(part: dict) -> list[tuple[str, str, str]]:
    """``(key, name in the text, where its internal figure comes from)`` of each model."""
    held_out = "on held-out IQ-OTH/NCCD patients"
    names = [("paper model", "paper's model", held_out)]
    if part.get("shipped", {}).get("selection", "").endswith("(08)"):
        recipe_cv = (
            f"{held_out} (08's recipe CV with the head setting 06 chose on all patients: "
            "not nested, optimistic)"
        )
        return names + [
            ("shipped model (06)", "model notebook 06 selected", f"{held_out} (nested CV)"),
            ("shipped model", f"shipped model ({part['shipped']['recipe']})", recipe_cv),
        ]
    return names + [("shipped model", "shipped model", f"{held_out} (nested CV)")]


def plain_lines(metrics: dict) -> list[str]:
    """The summary's and README's bullets on the external set (none before 08 has run).

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines.
    """
    if "external" not in metrics:
        return []
    part = metrics["external"]
    facts, models, internal = part["set"], part["models"], part["internal"]
    sentences = [
        model_sentence(text, internal[key], models[key]["metrics"], inside)
        for key, text, inside in model_names(part)
    ]
    return [
        f"* **At another hospital** (Chest CT-Scan images, {facts['distinct slices']} distinct "
        f"slices, {facts['case proxies']} case proxies; malignant against normal, a benign "
        f"call counted wrong; 95% intervals over patients inside and over case proxies "
        f"outside; a model does not hold when its external interval lies wholly below its "
        f"internal one): "
        + " ".join(sentences)
        + " "
        + transfer_sentence(part["transfer"])
        + " "
        + check_sentence(part),
        "* **Goals of the external validation** (issue 24), each with its figure (met: the "
        "whole interval meets it):",
        *goal_lines(part["goals"]),
    ]


def section(metrics: dict) -> list[str]:
    """The summary's section on notebook 08: tables of every figure.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines (none before 08 has run).
    """
    if "external" not in metrics:
        return []
    part = metrics["external"]
    rows = {}
    for name, scores in part["models"].items():
        if name in part["internal"]:
            rows[f"{name}: IQ-OTH/NCCD patients"] = part["internal"][name]
        rows[f"{name}: external"] = scores["metrics"]
        rows[f"{name}: external, accepted"] = scores["metrics_accepted"]
    recipes = {name: m for name, m in part["transfer"]["external"].items()}
    return [
        "## At another hospital (notebook 08)",
        "",
        f"External set: {part['set']['proxy']}",
        "",
        markdown(metric_table(rows), index="model: set"),
        "",
        "Percent, malignant against normal; brackets: 95% cluster bootstrap over patients "
        "(inside) or case proxies (outside). 'accepted': the slices the input check does not "
        "refuse.",
        "",
        "Recipes aimed at transfer, each refitted on all originals and scored once outside:",
        "",
        markdown(metric_table(recipes), index="recipe"),
        "",
        f"Shipping rule: {part['transfer']['rule']}",
        "",
        *[f"* {name}: {why}" for name, why in part["transfer"]["why"].items()],
        "",
        "![external samples](figures/08_samples.png)",
        "",
    ]
