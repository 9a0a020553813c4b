"""The external validation in words and tables (notebook 09's part of ``metrics.json``).

Every sentence here is chosen by the numbers: whether a figure holds at another hospital,
whether a difference is shown, whether a goal is met. The external set is only scored; these
functions read its figures, never choose anything with them. The words live in
``templates/external.md`` (:mod:`lungct_utils.prose`).
"""

from __future__ import annotations

from . import prose
from .tables import goal_status, markdown, metric_table, signed_interval, with_interval

#: The template file of this module's words (``templates/external.md``).
TEMPLATE = "external"


def _say(key: str, /, **values) -> str:
    """One passage of ``templates/external.md``, filled."""
    return prose.fill(TEMPLATE, key, **values)


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


def model_sentence(name: str, internal: dict, external: dict, inside: str | None = None) -> str:
    """One model's external figures beside its internal ones, with the verdict.

    Args:
        name: the model's name in the text.
        internal: its patient-level metrics inside IQ-OTH/NCCD.
        external: its metrics on every distinct external slice.
        inside: where the internal figures come from, in the text (default: held-out
            IQ-OTH/NCCD patients).

    Returns:
        A sentence: the passage ``model_<verdict>`` of :func:`holds` says whether it holds.
    """
    verdict = _say("model_" + holds(internal, external).replace(" ", "_"))
    return _say(
        "model_sentence",
        model=name,
        balanced_accuracy=_fig(external, "balanced_accuracy"),
        auc=_fig(external, "auc"),
        internal_balanced_accuracy=_fig(internal, "balanced_accuracy"),
        internal_auc=_fig(internal, "auc"),
        inside=_say("inside_held_out") if inside is None else inside,
        verdict=verdict,
        sensitivity=_fig(external, "sensitivity"),
        specificity=_fig(external, "specificity"),
    )


def _difference_word(d: dict) -> str:
    """A paired difference in words (passages ``difference_*``): better than, worse than or
    not shown different from, as its interval lies wholly above 0, wholly below, or across it."""
    lo, hi = d["diff_ci95"]
    return _say(
        "difference_better" if lo > 0 else "difference_worse" if hi < 0 else "difference_not_shown"
    )


def transfer_sentence(transfer: dict) -> str:
    """What the shipping rule chose, and how each transfer recipe did outside.

    Args:
        transfer: ``metrics["external"]["transfer"]``.

    Returns:
        A sentence.
    """
    recipes = [
        _say(
            "transfer_recipe",
            recipe=name,
            relation=_difference_word(d["balanced_accuracy"]),
            difference=signed_interval(d["balanced_accuracy"]),
        )
        for name, d in transfer["external_paired"].items()
    ]
    chosen = transfer["chosen"]
    rule = (
        _say("transfer_ships", chosen=chosen) if chosen != "as shipped" else _say("transfer_keeps")
    )
    return _say("transfer_sentence", rule=rule, recipes="; ".join(recipes))


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
        lines.append("  " + _say("goal_line", status=goal_status(g), goal=goal, figure=figure))
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
        return _say("check_not_judged")
    return _say(
        "check_sentence",
        refused=with_interval(refused["value"], refused["ci95"], 1),
        unlike=with_interval(unlike["value"], unlike["ci95"], 1),
    )


def model_names(part: dict) -> list[tuple[str, str, str]]:
    """``(key, name in the text, where its internal figure comes from)`` of each model."""
    held_out = _say("inside_held_out")
    nested = _say("inside_nested", held_out=held_out)
    names = [("paper model", _say("name_paper_model"), held_out)]
    if part.get("shipped", {}).get("selection", "").endswith("(09)"):
        recipe = _say("name_shipped_recipe", recipe=part["shipped"]["recipe"])
        return names + [
            ("shipped model (06)", _say("name_selected_06"), nested),
            ("shipped model", recipe, _say("inside_recipe_cv", held_out=held_out)),
        ]
    return names + [("shipped model", _say("name_shipped"), nested)]


def plain_lines(metrics: dict) -> list[str]:
    """The summary's and README's bullets on the external set (none before 09 has run).

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
    plain = _say(
        "plain_bullet",
        slices=facts["distinct slices"],
        proxies=facts["case proxies"],
        models=" ".join(sentences),
        transfer=transfer_sentence(part["transfer"]),
        check=check_sentence(part),
    )
    return [plain, _say("goals_bullet"), *goal_lines(part["goals"])]


def section(metrics: dict) -> list[str]:
    """The summary's section on notebook 09: tables of every figure.

    Args:
        metrics: the ``metrics.json`` dict.

    Returns:
        Markdown lines (none before 09 has run).
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
    head = _say(
        "section",
        proxy=part["set"]["proxy"],
        models_table=markdown(metric_table(rows), index="model: set"),
        recipes_table=markdown(metric_table(recipes), index="recipe"),
        rule=part["transfer"]["rule"],
    )
    why = [
        _say("section_why", recipe=name, why=text) for name, text in part["transfer"]["why"].items()
    ]
    return [head, "", *why, "", _say("section_figure"), ""]
