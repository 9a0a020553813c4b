import numpy as np
import pandas as pd
import pytest

from lungct_utils.config import PAPER
from lungct_utils.splits import grouped_holdout, inner_validation, kfold, make_splits, proportions


@pytest.fixture
def table():
    """600 images in 3 classes; groups of 1-9 copies, as an augmented set has."""
    rng = np.random.default_rng(0)
    rows, g = [], 0
    for label, n_groups in [("benign", 30), ("malignant", 60), ("normal", 45)]:
        for _ in range(n_groups):
            for _ in range(int(rng.integers(1, 10))):
                rows.append({"id": f"i{len(rows)}", "label": label, "group": f"g{g}"})
            g += 1
    return pd.DataFrame(rows)


def _max_gap(splits, column):
    overall = splits["label"].value_counts(normalize=True)
    return float((proportions(splits, column) - overall).abs().to_numpy().max())


@pytest.mark.parametrize("protocol", ["paper", "grouped"])
def test_sizes_and_class_proportions(table, protocol):
    splits = make_splits(table, protocol, PAPER)
    share = splits["holdout"].value_counts(normalize=True)
    assert abs(share["test"] - 0.15) < 0.03 and abs(share["val"] - 0.15) < 0.03
    assert sorted(splits["fold"].unique()) == [0, 1, 2, 3, 4]
    assert _max_gap(splits, "holdout") <= 0.02 + (0.03 if protocol == "grouped" else 0)
    assert _max_gap(splits, "fold") <= 0.02 + (0.03 if protocol == "grouped" else 0)


def test_grouped_keeps_groups_whole_and_paper_does_not(table):
    grouped = make_splits(table, "grouped", PAPER)
    assert (grouped.groupby("group")["holdout"].nunique() == 1).all()
    assert (grouped.groupby("group")["fold"].nunique() == 1).all()
    paper = make_splits(table, "paper", PAPER)
    assert (paper.groupby("group")["holdout"].nunique() > 1).any()


def test_same_seed_same_splits_other_seed_differs(table):
    a = make_splits(table, "grouped", PAPER)
    pd.testing.assert_frame_equal(a, make_splits(table, "grouped", PAPER))
    b = make_splits(table, "grouped", PAPER.with_overrides(seed=1))
    assert not a["holdout"].equals(b["holdout"])


@pytest.mark.parametrize("protocol", ["paper", "grouped"])
def test_inner_validation_stays_inside_training_folds(table, protocol):
    splits = make_splits(table, protocol, PAPER)
    role = inner_validation(splits, 2, protocol, PAPER)
    assert (role[splits["fold"] == 2] == "test").all()
    assert set(role[splits["fold"] != 2]) == {"train", "val"}
    val_share = (role == "val").sum() / (role != "test").sum()
    assert abs(val_share - 0.15 / 0.85) < 0.04
    if protocol == "grouped":
        assert (
            pd.DataFrame({"g": splits["group"], "r": role}).groupby("g")["r"].nunique() == 1
        ).all()


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="'random'"):
        make_splits(pd.DataFrame({"id": [], "label": [], "group": []}), "random", PAPER)
    with pytest.raises(ValueError, match="n_folds.*1"):
        kfold(np.array(["a", "b"]), None, 1, 0)


def test_grouped_holdout_handles_mixed_label_groups():
    labels = np.array(["a"] * 10 + ["b"] * 10)
    groups = np.array([f"g{i // 2}" for i in range(20)])
    groups[9] = "g0"  # one group with both labels
    out = grouped_holdout(labels, groups, 0.2, 0.2, 0)
    assert pd.Series(out).groupby(groups).nunique().max() == 1
