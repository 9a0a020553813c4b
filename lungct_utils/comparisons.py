"""Many paired comparisons: one primary, named before the numbers; the rest Holm-adjusted.

A paired difference is called better or worse only when its interval excludes 0
(:func:`lungct_utils.evaluate.paired_difference`). With many of them, some exclude 0 by
chance, so the reports keep three kinds apart:

* the **primary** comparison (:data:`PRIMARY`), fixed before its figures were read: the
  nested selection of notebook 06 against the paper's model, per-patient macro-F1,
  central grouping; its plain 95% interval decides;
* **secondary** comparisons, a family at a time, with Holm's step-down adjustment
  (:func:`holm`, :func:`holm_family`): a comparison is called better or worse only when Holm
  rejects it, and its interval is taken at the level of its step;
* **exploratory** ones (the other groupings' differences), shown without a verdict.

:func:`detectable` gives the smallest difference the data can detect, from the spread of
the bootstrap replicates.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from .evaluate import N_BOOT

#: The primary comparison: ``model`` minus ``against`` on ``metric`` at ``level`` under
#: ``grouping``, named before its figures were read (the paired result's ``a`` and ``b`` are
#: the two models' values).
PRIMARY = {
    "model": "selected",
    "against": "paper",
    "grouping": "central",
    "level": "case",
    "metric": "macro_f1",
}
#: Family-wise error rate of a family of comparisons.
ALPHA = 0.05
#: The power at which :func:`detectable` states the smallest detectable difference.
POWER = 0.8


def holm(p_values: dict, alpha: float = ALPHA) -> dict:
    """Holm's step-down procedure over a family of p-values.

    The ``j``-th smallest p-value (1-based) of ``m`` is tested at ``alpha / (m - j + 1)``;
    the procedure stops at the first it does not reject, and every later one is kept at that
    step's level.

    Args:
        p_values: name -> p-value in [0, 1].
        alpha: the family-wise error rate, in (0, 1).

    Returns:
        name -> ``{"p_holm", "level", "rejected"}``: the adjusted p-value, the level of the
        comparison's step, and whether Holm rejects "no difference".
    """
    if not 0 < alpha < 1:
        raise ValueError(f"holm: alpha must be in (0, 1), got {alpha!r}")
    bad = {k: p for k, p in p_values.items() if not 0 <= p <= 1}
    if bad:
        raise ValueError(f"holm: p-values must be in [0, 1], got {bad!r}")
    order = sorted(p_values, key=lambda k: (p_values[k], str(k)))
    m, out, running, stopped = len(order), {}, 0.0, None
    for j, name in enumerate(order):
        running = max(running, min(1.0, (m - j) * p_values[name]))
        level = alpha / (m - j) if stopped is None else stopped
        rejected = stopped is None and p_values[name] <= level
        if not rejected and stopped is None:
            stopped = level
        out[name] = {"p_holm": running, "level": level, "rejected": rejected}
    return out


def replicates_for(m: int, alpha: float = ALPHA, per_tail: int = 10) -> int:
    """Bootstrap replicates that resolve Holm's first level in a family of ``m``.

    Holm's smallest level is ``alpha / m``; an interval at that level rests on the
    ``alpha / (2 m)`` tails of the replicates, which need ``per_tail`` draws each.

    Args:
        m: comparisons in the family (>= 1).
        alpha: the family-wise error rate.
        per_tail: draws wanted in each tail at the smallest level.

    Returns:
        At least :data:`lungct_utils.evaluate.N_BOOT`.
    """
    if not isinstance(m, int) or m < 1 or not 0 < alpha < 1:
        raise ValueError(f"replicates_for: bad m={m!r} or alpha={alpha!r}")
    return max(N_BOOT, math.ceil(2 * per_tail * m / alpha))


def holm_family(paired, recompute, alpha: float = ALPHA) -> dict:
    """A family of paired differences with Holm-adjusted intervals and verdicts.

    Holm's levels come from the p-values (:func:`holm`); each comparison's interval is then
    taken at its level. The p-value and the interval are read from the same replicates
    (:func:`~lungct_utils.evaluate.bootstrap_p_value`,
    :func:`~lungct_utils.evaluate.order_interval`),
    so "rejected" and "the interval excludes 0" agree; walking in Holm's order, a comparison
    is called different only while every earlier one was and its own interval excludes 0, so
    a verdict never contradicts the interval shown beside it, even at a float tie.

    Args:
        paired: name -> metric -> :func:`lungct_utils.evaluate.paired_difference` result
            (``p_value``, ``n_boot``).
        recompute: ``recompute(name, coverage)`` -> the same comparison for the metrics of
            ``coverage`` (metric -> coverage), e.g. ``paired_difference(..., ci=coverage)``
            with the same seed and replicates.
        alpha: the family-wise error rate.

    Returns:
        name -> metric -> the result plus ``"holm": {"p_holm", "level", "rejected",
        "ci": [lo, hi], "coverage"}``.
    """
    p_values = {(name, k): d["p_value"] for name, part in paired.items() for k, d in part.items()}
    steps = holm(p_values, alpha)
    low = min(d["n_boot"] for part in paired.values() for d in part.values())
    if low < replicates_for(len(p_values), alpha) and len(p_values) > 1:
        need = replicates_for(len(p_values), alpha)
        raise ValueError(
            f"holm_family: {low} replicates cannot resolve {len(p_values)} (use {need})"
        )
    intervals = {}
    for name, part in paired.items():
        again = recompute(name, {k: 1 - steps[(name, k)]["level"] for k in part})
        intervals |= {(name, k): again[k]["diff_ci95"] for k in part}
    stopped = None
    for key in sorted(p_values, key=lambda key: (p_values[key], str(key))):
        level = steps[key]["level"]
        if stopped is not None and level != stopped:  # the walk stopped before Holm did
            level = stopped
            intervals[key] = recompute(key[0], {key[1]: 1 - level})[key[1]]["diff_ci95"]
        lo, hi = intervals[key]
        rejected = stopped is None and (lo > 0 or hi < 0)
        if not rejected and stopped is None:
            stopped = level
        steps[key] = {**steps[key], "level": level, "rejected": rejected}
    return {
        name: {
            k: {
                **d,
                "holm": {
                    **steps[(name, k)],
                    "ci": intervals[(name, k)],
                    "coverage": 1 - steps[(name, k)]["level"],
                },
            }
            for k, d in part.items()
        }
        for name, part in paired.items()
    }


def verdict(d: dict) -> str:
    """A paired difference in words: Holm's verdict when it has one, else its interval's.

    Args:
        d: a :func:`lungct_utils.evaluate.paired_difference` result, with ``"holm"`` when it
            is a secondary comparison.

    Returns:
        ``"better"``, ``"worse"`` or ``"not shown different"`` (of model ``a`` against ``b``).
    """
    shown = d["holm"]["rejected"] if "holm" in d else d["excludes_zero"]
    if not shown:
        return "not shown different"
    return "better" if d["diff"] > 0 else "worse"


def detectable(se: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference a two-sided test at ``alpha`` detects with ``power``.

    ``(z(1 - alpha / 2) + z(power)) * se``, with ``se`` the bootstrap replicates' spread.

    Args:
        se: the standard error of the difference (>= 0).
        alpha: the test's level, in (0, 1).
        power: the wanted power, in (0, 1).

    Returns:
        The difference, in the unit of ``se``.
    """
    if not se >= 0 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"detectable: bad se={se!r}, alpha={alpha!r} or power={power!r}")
    z = NormalDist()
    return float((z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * se)


def primary_and_secondary(paired: dict, recompute, primary=PRIMARY, alpha: float = ALPHA) -> dict:
    """Split one grouping's comparisons into the primary one and its Holm-adjusted family.

    Args:
        paired: level -> metric -> :func:`lungct_utils.evaluate.paired_difference` result,
            the primary's level and metric among them.
        recompute: ``recompute(level, coverage)`` (see :func:`holm_family`).
        primary: the primary comparison (:data:`PRIMARY`).
        alpha: the family-wise error rate of the secondary family.

    Returns:
        ``{"primary": {**primary, **result, "detectable"}, "secondary": level -> metric ->
        result with ``"holm"`` and ``"detectable"``}``; ``detectable`` is the smallest
        difference detected at ``alpha`` with :data:`POWER` (:func:`detectable`).
    """
    level, metric = primary["level"], primary["metric"]
    if metric not in paired.get(level, {}):
        raise ValueError(f"primary_and_secondary: no {metric!r} at level {level!r} in paired")
    rest = {
        lv: {k: d for k, d in part.items() if (lv, k) != (level, metric)}
        for lv, part in paired.items()
    }
    secondary = holm_family(rest, recompute, alpha)
    for part in secondary.values():
        for d in part.values():
            d["detectable"] = detectable(d["se"], d["holm"]["level"])
    found = paired[level][metric]
    return {
        "primary": {**primary, **found, "detectable": detectable(found["se"], alpha)},
        "secondary": secondary,
    }
