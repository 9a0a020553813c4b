"""Recipes aimed at another hospital's slices, and the rule that ships one: fixed before scoring.

The external set (notebook 09) is only ever scored. Every choice that could move its figures
is listed in :data:`CHOICES` with where it was made; none reads an external image or label.

**The recipes** (:data:`RECIPES`) share the shipped model's head and its setting (the MLP head
and L2 penalty that notebook 06's nested selection chose); only what the head is trained on
and what the backbone sees differ, so a difference is the recipe's:

* ``as shipped``: the distinct training originals, as 07 ships it;
* ``shift augmentation``: the originals plus one simulated-scanner view of each
  (:func:`lungct_utils.shift.simulate`, with a seed other than the one that scores);
* ``standardised input``: every slice, in training and in use, framed to its body and its
  grey levels stretched inside the body (:func:`lungct_utils.shift.standardise`).

**The shipping rule** (:func:`ship`), written before any external figure was seen: a
transfer recipe replaces the shipped one only if (1) its internal patient-level macro-F1 is
*not shown worse* (the upper end of the paired 95% interval of its difference from the
shipped recipe's, on the same outer folds, is at or above 0) and (2) it is *shown better*
on the simulated-shift score (the lower end of the paired interval of the difference in
balanced accuracy, malignant against normal, on held-out internal patients' simulated-shift
views, is above 0). Among several that pass, the highest simulated-shift score wins.
External figures are reported, never used to choose.
"""

from __future__ import annotations

import math

import pandas as pd

#: The recipes, the first one the shipped model's (the reference of every paired difference).
RECIPES = ("as shipped", "shift augmentation", "standardised input")

#: Every choice that could move the external figures, and where it was made.
CHOICES = (
    ("classifier head and its L2 penalty", "06: nested selection on IQ-OTH/NCCD inner folds"),
    ("the paper model's head and schedule", "the paper (Table II), trained in 03"),
    ("decision rule", "argmax of the three probabilities (no threshold is tuned)"),
    ("benign prior", "06: nested selection (inner folds)"),
    (
        "input check, question 1 (not CT)",
        "IQ-OTH/NCCD held-out patients + their simulated-shift "
        "views + the design part of the non-CT corpus (input_check.fit_input_check)",
    ),
    (
        "input check, question 2 (unlike training)",
        "IQ-OTH/NCCD held-out patients (input_check.fit)",
    ),
    ("simulated-shift ranges", "a rule written down in lungct_utils/shift.py before scoring"),
    ("standardisation rule", "a rule written down in lungct_utils/shift.py before scoring"),
    ("which recipe ships", "transfer.ship: internal nested CV + simulated-shift score"),
    ("external class mapping", "folder-name prefixes fixed in external.DEFAULT_PREFIXES"),
    (
        "case proxy of the external set",
        "file-name stems + near-duplicate links, written down "
        "in external.py; it changes intervals, never a point estimate",
    ),
)


def choices_frame() -> pd.DataFrame:
    """The choices as a table.

    Returns:
        DataFrame ``choice, where it was made``.
    """
    return pd.DataFrame(list(CHOICES), columns=["choice", "where it was made"])


def ship(candidates: dict[str, dict]) -> tuple[str, dict[str, str]]:
    """Apply the shipping rule.

    Args:
        candidates: recipe name -> ``{"internal_macro_f1": {"diff", "diff_ci95"},
            "shift_balanced_accuracy": {"diff", "diff_ci95"}}``, each a paired difference
            from the shipped recipe (:data:`RECIPES`\\[0], which must not be among them).

    Returns:
        ``(recipe that ships, {recipe: why it passed or failed})``.

    Raises:
        ValueError: the reference among the candidates, or a difference or interval that is
            missing or not a finite number.
    """
    if RECIPES[0] in candidates:
        raise ValueError(f"ship: {RECIPES[0]!r} is the reference, not a candidate")
    for name, d in candidates.items():
        for key in ("internal_macro_f1", "shift_balanced_accuracy"):
            values = [d.get(key, {}).get("diff"), *d.get(key, {}).get("diff_ci95", [None, None])]
            if len(values) != 3 or not all(
                isinstance(v, int | float) and math.isfinite(v) for v in values
            ):
                raise ValueError(
                    f"ship: {name!r} needs a finite {key} difference and interval, "
                    f"got {d.get(key)!r}"
                )
    why, passed = {}, {}
    for name, d in candidates.items():
        f1_hi = d["internal_macro_f1"]["diff_ci95"][1]
        shift_lo = d["shift_balanced_accuracy"]["diff_ci95"][0]
        if f1_hi < 0:
            why[name] = f"internal patient-level macro-F1 shown worse (interval upper {f1_hi:+.3f})"
        elif shift_lo <= 0:
            why[name] = (
                "simulated-shift balanced accuracy not shown better "
                f"(interval lower {shift_lo:+.3f})"
            )
        else:
            why[name] = "passes: macro-F1 not shown worse, simulated-shift score shown better"
            passed[name] = d["shift_balanced_accuracy"]["diff"]
    if not passed:
        return RECIPES[0], why
    return max(passed, key=passed.get), why
