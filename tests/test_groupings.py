"""The family of alternative patient groupings, on synthetic sequences with known structure."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lungct_utils import groupings
from lungct_utils.config import CLASSES, STATED_CASES

#: Planted runs per class with exactly the stated cases (15, 40, 55): some of two slices.
STATED_RUNS = {
    "benign": [2] * 5 + [1] * 10,
    "malignant": [2] * 5 + [1] * 35,
    "normal": [2] * 5 + [1] * 50,
}


def _frame(runs: dict[str, list[int]]) -> pd.DataFrame:
    """One row per slice, classes one after the other, numbered 1, 2, ... in each class."""
    rows = []
    for label, sizes in runs.items():
        number = 1
        for r, size in enumerate(sizes):
            for _ in range(size):
                rows.append(
                    {"path": f"x/{label} case ({number}).jpg", "label": label, "number": number}
                    | {"sha256": f"{label}{number}", "width": 512, "height": 512}
                    | {"planted": f"{label}{r:02d}"}
                )
                number += 1
    return pd.DataFrame(rows)


def _add_copy(frame: pd.DataFrame, label: str, of_number: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Append a byte copy of one slice at the end of its class; returns ``(frame, home)``."""
    source = int(np.flatnonzero((frame["label"] == label) & (frame["number"] == of_number))[0])
    number = int(frame.loc[frame["label"] == label, "number"].max()) + 1
    copy = frame.iloc[[source]].assign(number=number, path=f"x/{label} case ({number}).jpg")
    out = pd.concat([frame, copy], ignore_index=True)
    home = np.arange(len(out))
    home[-1] = source
    return out, home


def _partition(values) -> set[frozenset[int]]:
    """The partition of row positions that a labelling induces."""
    values = list(values)
    return {frozenset(rows) for rows in pd.Series(values).groupby(values).indices.values()}


def _blocks(groups, frame: pd.DataFrame, label: str, rows=None) -> list[int]:
    """Lengths of the blocks of equal groups along a class's scan order."""
    order = frame.index[frame["label"] == label] if rows is None else rows
    order = sorted(order, key=lambda r: frame.loc[r, "number"])
    seq = [groups[r] for r in order]
    starts = [0] + [k for k in range(1, len(seq)) if seq[k] != seq[k - 1]] + [len(seq)]
    return np.diff(starts).tolist()


# --- the earlier cut rule (moved from cases) -------------------------------------------------


def test_cut_runs_cuts_at_the_least_alike_neighbours():
    sim = np.array([0.9, 0.8, 0.1, 0.95, 0.2, 0.9])
    assert groupings.cut_runs(sim, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert groupings.cut_runs(sim, 1).tolist() == [0] * 7
    assert groupings.cut_runs(sim, 99).tolist() == list(range(7))  # every gap cut at most


def test_cut_runs_makes_forced_cuts_first():
    sim = np.array([0.9, 0.8, 0.1, 0.95])
    forced = np.array([False, False, False, True])
    assert groupings.cut_runs(sim, 2, forced).tolist() == [0, 0, 0, 0, 1]
    assert groupings.cut_runs(sim, 3, forced).tolist() == [0, 0, 0, 1, 2]
    assert groupings.cut_runs(sim, 1, forced).tolist() == [0, 0, 0, 0, 1]  # past the budget


def test_cut_runs_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n_runs.*0"):
        groupings.cut_runs(np.ones(3), 0)
    with pytest.raises(ValueError, match="forced has shape"):
        groupings.cut_runs(np.ones(3), 2, np.ones(2, bool))


def test_stated_runs_cut_stated_runs_and_merge_on_any_link():
    frame = _frame(STATED_RUNS)
    ends = frame["planted"].ne(frame["planted"].shift(-1)).to_numpy()
    nxt = np.where(ends, 0.1, 0.9)  # unlike across planted runs
    nxt[frame["label"].ne(frame["label"].shift(-1)).to_numpy()] = np.nan
    n = len(frame)
    sim = np.full((n, n), -1.0)
    assert _partition(groupings.stated_runs(frame, nxt, sim, 0.9)) == _partition(frame["planted"])
    sim[0, 6] = sim[6, 0] = 0.95  # one link, benign runs 0 and 3: enough for this rule
    groups = groupings.stated_runs(frame, nxt, sim, 0.9)
    assert groups[0] == groups[6] == "benign-000"
    assert len(set(groups[:20])) == 14 and len(set(groups[20:65])) == 40


# --- equal runs ------------------------------------------------------------------------------


def _shuffled_equal_frame():
    originals = _frame({"benign": [1] * 20, "malignant": [1] * 45, "normal": [1] * 60})
    frame, home = _add_copy(originals, "benign", 3)
    perm = np.random.default_rng(0).permutation(len(frame))
    where = np.argsort(perm)  # old row -> new position
    return frame.iloc[perm].reset_index(drop=True), where[home[perm]]


#: Run sizes in scan order of 20 benign, 45 malignant and 60 normal originals, per factor.
EQUAL_SIZES = {
    0.5: {
        "benign": [3] * 4 + [2] * 4,
        "malignant": [3] * 5 + [2] * 15,
        "normal": [3] * 4 + [2] * 24,
    },
    1: STATED_RUNS,
    2: {"benign": [1] * 20, "malignant": [1] * 45, "normal": [1] * 60},
}


@pytest.mark.parametrize("factor", sorted(EQUAL_SIZES))
def test_equal_runs_split_each_class_into_contiguous_equal_runs(factor):
    sizes = EQUAL_SIZES[factor]
    # 20 benign (plus a copy of number 3 filed as 21), 45 malignant, 60 normal, rows shuffled;
    # round(0.5 * 15) = 8, round(0.5 * 55) = 28; 2 * stated is more than the slices
    frame, home = _shuffled_equal_frame()
    groups = groupings.equal_runs(frame, home, factor)
    homes = np.flatnonzero(home == np.arange(len(frame)))
    for label in CLASSES:
        rows = [r for r in homes if frame.loc[r, "label"] == label]
        assert _blocks(groups, frame, label, rows) == sizes[label]
        assert len({groups[r] for r in rows}) == len(sizes[label])  # each group one block
        assert all(groups[r].startswith(label) for r in rows)
    copy = int(np.flatnonzero(home != np.arange(len(frame)))[0])
    assert groups[copy] == groups[home[copy]]


def test_equal_runs_rejects_a_factor_that_is_not_positive():
    frame, home = _shuffled_equal_frame()
    for factor in (0, -1.0):
        with pytest.raises(ValueError, match=f"factor must be > 0, got {factor}"):
            groupings.equal_runs(frame, home, factor)


# --- the peer's rule -------------------------------------------------------------------------


def test_resize_linear_halving_averages_pairs_of_pixels():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert groupings.resize_linear(image, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert groupings.resize_linear(image, 4).tolist() == image.tolist()


def test_resize_linear_doubling_uses_half_pixel_centres_and_clamps_the_border():
    # output pixel centres fall at -0.25, 0.25, 0.75, 1.25 input pixels: clamped at the border
    out = groupings.resize_linear(np.array([[0, 4], [8, 12]]), 4)
    assert out.tolist() == [[0, 1, 3, 4], [2, 3, 5, 6], [6, 7, 9, 10], [8, 9, 11, 12]]


def test_peer_thumbnails_take_the_grey_centre_square(tmp_path):
    wide = np.zeros((40, 60, 3), np.uint8)
    wide[:, 10:50] = 255  # white centre square, black side strips
    tall = np.zeros((60, 40), np.uint8)
    tall[10:50] = 200
    halves = np.zeros((40, 40), np.uint8)
    halves[20:] = 255
    paths = []
    for name, pixels in (("wide", wide), ("tall", tall), ("halves", halves)):
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(pixels).save(paths[-1])
    thumbs = groupings.peer_thumbnails(paths)
    assert thumbs.shape == (3, groupings.PEER_THUMBNAIL**2)
    assert np.allclose(thumbs[0], 1.0) and np.allclose(thumbs[1], 200 / 255)
    halves = thumbs[2].reshape(64, 64)
    assert np.allclose(halves[:30], 0.0) and np.allclose(halves[34:], 1.0)
    assert np.all(np.diff(halves, axis=0) >= 0) and np.all(halves == halves[:, :1])


def _peer_case():
    """16 planted benign runs (20 slices) plus a copy; 40 malignant and 55 normal runs.

    Thumbnails are 2-d points: each planted run sits at its own place (0.3 apart inside a
    run, 20 apart from the next run); classes are 1000 apart. Two benign runs (10 and 11) are
    only 5 apart, and benign run 5 sits 1 from run 0.
    """
    frame = _frame({"benign": [2] * 4 + [1] * 12, **{c: STATED_RUNS[c] for c in CLASSES[1:]}})
    frame, home = _add_copy(frame, "benign", 13)  # a copy of planted run 8
    run = frame["planted"].str[-2:].astype(int).to_numpy()
    klass = frame["label"].map({c: k for k, c in enumerate(CLASSES)}).to_numpy()
    x = 20.0 * run
    benign = klass == 0
    x[benign & (run > 10)] -= 15  # run 11 is 5 after run 10
    x[benign & (run == 5)] = 1.0
    within = frame.groupby("planted").cumcount().to_numpy() * 0.3
    thumbs = np.column_stack([x + within, 1000.0 * klass])
    thumbs[-1] = thumbs[frame.index[(frame["planted"] == "benign12")][0]] + 0.5  # near run 12
    return frame, home, thumbs


def test_peer_groups_cut_at_the_largest_jumps_and_join_close_pairs():
    frame, home, thumbs = _peer_case()
    groups = groupings.peer_groups(frame, home, thumbs)
    expected = frame["planted"].replace({"benign05": "benign00", "benign11": "benign10"})
    # 15 runs: the 14 largest of 15 planted boundaries are cut, not the jump of 5 between
    # runs 10 and 11; run 5 is within 3.0 of run 0 and joins it; the copy follows its home
    # (run 9) whatever its thumbnail, and neither cuts nor joins anything
    assert _partition(groups) == _partition(expected)
    counts = pd.Series(groups).groupby(frame["label"]).nunique()
    assert counts.to_dict() == {"benign": 14, "malignant": 40, "normal": 55}
    assert groups[0] == "benign-000" and groups[-1] == groups[home[-1]]


def test_peer_groups_cut_stated_runs_when_nothing_is_close():
    frame = _frame(STATED_RUNS)
    run = frame["planted"].str[-2:].astype(int).to_numpy()
    klass = frame["label"].map({c: k for k, c in enumerate(CLASSES)}).to_numpy()
    thumbs = np.column_stack([20.0 * run, 1000.0 * klass])
    groups = groupings.peer_groups(frame, np.arange(len(frame)), thumbs)
    assert _partition(groups) == _partition(frame["planted"])


# --- the family ------------------------------------------------------------------------------


def _family_case():
    frame, home, thumbs = _peer_case()
    central = frame.assign(home=home, run=frame["planted"], case=frame["planted"])
    nxt = np.where(frame["planted"].ne(frame["planted"].shift(-1)), 0.1, 0.9)
    nxt[frame["label"].ne(frame["label"].shift(-1)).to_numpy()] = np.nan
    n = len(frame)
    sim = np.full((n, n), -1.0)
    sim[n - 1, home[-1]] = sim[home[-1], n - 1] = 1.0  # the copy and its home
    variants = {name: frame["planted"].to_numpy() for name in groupings.SENSITIVITY}
    return central, groupings.family(central, nxt, sim, 0.9, thumbs, variants)


def test_family_has_every_grouping_and_keeps_copies_together():
    central, family = _family_case()
    assert family.columns.tolist() == ["path", "label", "sha256", *groupings.FAMILY]
    assert set(groupings.FAMILY_LABELS) == set(groupings.FAMILY)
    assert family["central"].tolist() == central["case"].tolist()
    assert family["runs"].tolist() == central["run"].tolist()
    copy, home = len(family) - 1, int(central["home"].iloc[-1])
    for name in groupings.FAMILY:
        assert family.loc[copy, name] == family.loc[home, name], name
        labels = family.groupby(name)["label"].nunique()
        assert (labels == 1).all(), name  # no group spans two classes


def test_family_needs_every_sensitivity_variant():
    central, _ = _family_case()
    with pytest.raises(ValueError, match="variants lacks.*min_run_2"):
        groupings.family(central, np.zeros(len(central)), None, 0.9, None, {})


def test_family_counts_of_the_equal_runs_follow_the_stated_cases():
    _, family = _family_case()
    counts = groupings.family_counts(family)
    assert counts.index.tolist() == ["stated", *groupings.FAMILY]
    assert counts.loc["stated"].tolist() == [15, 40, 55, 110]
    # 20 benign, 45 malignant and 60 normal originals (the copy is not one)
    assert counts.loc["equal_0.5x"].tolist() == [8, 20, 28, 56]
    assert counts.loc["equal_1x"].tolist() == [15, 40, 55, 110]
    assert counts.loc["equal_2x"].tolist() == [20, 45, 60, 125]
    assert counts.loc["peer"].tolist() == [14, 40, 55, 109]


def test_family_counts_counts_distinct_groups_per_class():
    groups = pd.DataFrame({"label": ["benign"] * 3 + ["malignant", "normal"]})
    for k, name in enumerate(groupings.FAMILY):
        groups[name] = ["b0", "b1" if k % 2 else "b0", "b2", "m0", "n0"]
    counts = groupings.family_counts(groups)
    assert counts.loc["central"].tolist() == [2, 1, 1, 4]  # k = 0: b0, b0, b2
    assert counts.loc["runs"].tolist() == [3, 1, 1, 5]  # k = 1: b0, b1, b2
    assert counts.columns.tolist() == [*CLASSES, "total"]
    assert counts.loc["stated", "total"] == sum(STATED_CASES.values())


def test_first_copies_keeps_the_first_in_class_then_number_order():
    frame = pd.DataFrame(
        {
            "label": ["malignant", "malignant", "malignant", "benign"],
            "number": [60, 3, 7, 9],
            "sha256": ["a", "a", "b", "c"],
        }
    )
    # malignant (3) comes before (60) in the peer's order, so (60) follows (3)
    assert groupings.first_copies(frame).tolist() == [1, 1, 2, 3]
