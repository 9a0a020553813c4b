"""The transfer recipes' shipping rule, on planted paired differences."""

import pytest

from lungct_utils import transfer


def candidate(f1: tuple[float, float], shift: tuple[float, float]) -> dict:
    """A paired difference from the shipped recipe: macro-F1 and shift-score intervals."""
    return {
        "internal_macro_f1": {"diff": sum(f1) / 2, "diff_ci95": list(f1)},
        "shift_balanced_accuracy": {"diff": sum(shift) / 2, "diff_ci95": list(shift)},
    }


def test_recipes_and_choices():
    assert transfer.RECIPES[0] == "as shipped" and len(set(transfer.RECIPES)) == 3
    frame = transfer.choices_frame()
    assert list(frame.columns) == ["choice", "where it was made"]
    assert len(frame) == len(transfer.CHOICES) and frame.notna().all().all()
    assert frame["choice"].is_unique
    assert "which recipe ships" in set(frame["choice"])


def test_shown_worse_on_macro_f1_is_not_shipped():
    chosen, why = transfer.ship({"shift augmentation": candidate((-0.10, -0.01), (0.1, 0.3))})
    assert chosen == "as shipped"
    assert "shown worse" in why["shift augmentation"]
    assert "-0.010" in why["shift augmentation"]  # the interval's upper end


def test_not_shown_better_on_shift_is_not_shipped():
    candidates = {
        "shift augmentation": candidate((-0.05, 0.05), (-0.02, 0.20)),
        "standardised input": candidate((-0.05, 0.05), (0.0, 0.20)),  # lower end 0: not above
    }
    chosen, why = transfer.ship(candidates)
    assert chosen == "as shipped"
    assert "not shown better" in why["shift augmentation"]
    assert "-0.020" in why["shift augmentation"]
    assert "not shown better" in why["standardised input"]


def test_macro_f1_upper_end_at_zero_is_not_shown_worse():
    chosen, why = transfer.ship({"standardised input": candidate((-0.08, 0.0), (0.01, 0.1))})
    assert chosen == "standardised input" and why["standardised input"].startswith("passes")


def test_of_two_passing_the_larger_shift_difference_ships():
    candidates = {
        "shift augmentation": candidate((-0.02, 0.06), (0.05, 0.15)),  # diff 0.10
        "standardised input": candidate((0.01, 0.09), (0.02, 0.30)),  # diff 0.16
    }
    chosen, why = transfer.ship(candidates)
    assert chosen == "standardised input"
    assert all(w.startswith("passes") for w in why.values())
    # the winner follows the difference, not the order or the macro-F1
    candidates["shift augmentation"]["shift_balanced_accuracy"]["diff"] = 0.2
    assert transfer.ship(candidates)[0] == "shift augmentation"
    assert transfer.ship(dict(reversed(candidates.items())))[0] == "shift augmentation"


def test_a_failing_candidate_never_wins_over_a_passing_one():
    candidates = {
        "shift augmentation": candidate((-0.2, -0.1), (0.3, 0.5)),  # largest shift, worse F1
        "standardised input": candidate((-0.05, 0.05), (0.01, 0.05)),
    }
    chosen, why = transfer.ship(candidates)
    assert chosen == "standardised input"
    assert "shown worse" in why["shift augmentation"]


def test_no_candidates_keeps_the_shipped_recipe():
    assert transfer.ship({}) == ("as shipped", {})


def test_the_reference_is_not_a_candidate():
    with pytest.raises(ValueError, match="'as shipped'"):
        transfer.ship({"as shipped": candidate((0, 0), (0, 0))})


def test_ship_refuses_a_missing_or_non_finite_difference():
    good = {"diff": 0.1, "diff_ci95": [0.0, 0.2]}
    for bad in ({"diff": float("nan"), "diff_ci95": [0.0, 0.2]}, {"diff": 0.1}, None):
        candidate = {"internal_macro_f1": good, "shift_balanced_accuracy": bad}
        if bad is None:
            del candidate["shift_balanced_accuracy"]
        with pytest.raises(ValueError, match="finite shift_balanced_accuracy"):
            transfer.ship({"shift augmentation": candidate})
