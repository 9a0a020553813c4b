"""Case reconstruction on synthetic sequences with known cut points."""

import numpy as np
import pandas as pd
import pytest

from lungct_utils import cases
from lungct_utils.config import STATED_CASES

#: Levels that switch off the data-driven parts of the rule (no forced low level, no joining
#: level, no same-scan protection): only the budget, min run, forced cuts and links act.
NO_LEVELS = {"always_cut_below": -np.inf, "join_above": np.inf, "same_scan": np.inf}


def _sequence(runs: list[int], label="benign", seed=0, size=(512, 512)):
    """Slices that look alike within a run and unlike across runs, in features and images.

    Returns ``(frame, features, images)``: 16-d features near a run centre, and 32x32 grey
    images of a run-specific pattern plus noise, with 4 saturated pixels in the body (lung
    window). ``true_run`` names the planted run.
    """
    rng = np.random.default_rng(seed)
    rows, feats, images = [], [], []
    number = 1
    for r, length in enumerate(runs):
        centre = rng.normal(0, 1, 16)
        pattern = rng.integers(50, 200, (32, 32, 1))
        for _ in range(length):
            feats.append(centre + rng.normal(0, 0.05, 16))
            image = np.clip(pattern + rng.integers(-5, 6, (32, 32, 1)), 0, 255)
            image = np.repeat(image, 3, axis=2).astype(np.uint8)
            image[:2, :2] = 255
            images.append(image)
            name = f"x/{label} case ({number}).jpg"
            rows.append(
                {"path": name, "label": label, "sha256": f"{label}{number}", "number": number}
                | {"width": size[0], "height": size[1], "true_run": f"{label}{r}"}
            )
            number += 1
    return pd.DataFrame(rows), np.array(feats), np.stack(images)


def _renumber(frame, feats, images, take):
    """The rows ``take`` (repeats are byte copies) renumbered 1, 2, ... in that order."""
    take = np.asarray(take)
    out = frame.iloc[take].reset_index(drop=True)
    out["number"] = np.arange(1, len(out) + 1)
    out["path"] = [
        f"x/{lab} case ({n}).jpg" for lab, n in zip(out["label"], out["number"], strict=True)
    ]
    return out, feats[take], images[take]


def _reconstruct(frame, feats, images, stated, sim=None, levels=None, soft=None, rule=None):
    n = len(frame)
    return cases.reconstruct(
        frame,
        cases.slice_views(feats, images),
        np.full((n, n), -1.0) if sim is None else sim,
        0.9,
        cases.soft_window(images) if soft is None else soft,
        {**NO_LEVELS, **(levels or {})},
        {"benign": 1, "malignant": 1, "normal": 1, **stated},
        rule,
    )


def _partition(values) -> set[frozenset[int]]:
    """The partition of row positions that a labelling induces."""
    return {
        frozenset(rows) for rows in pd.Series(list(values)).groupby(list(values)).indices.values()
    }


def _runs(cuts) -> list[int]:
    """Run lengths of a sequence cut at ``cuts`` (bool per gap)."""
    bounds = np.concatenate([[-1], np.flatnonzero(cuts), [len(cuts)]])
    return np.diff(bounds).tolist()


def _gaps(n: int, base: float, **low: float) -> np.ndarray:
    """Similarity ``base`` at each of the ``n - 1`` gaps, except ``g<k>=value`` ones."""
    sim = np.full(n - 1, base)
    for key, value in low.items():
        sim[int(key[1:])] = value
    return sim


# --- file numbers, merging, links ----------------------------------------------------------


def test_file_number_reads_the_scan_order_and_names_bad_files():
    assert cases.file_number("Malignant cases/Malignant case (367).jpg") == 367
    assert cases.file_number("Bengin case (1).jpg") == 1
    with pytest.raises(ValueError, match="'scan.jpg'"):
        cases.file_number("scan.jpg")


def test_merge_groups_joins_linked_runs_and_renumbers_in_order():
    groups = np.array(["r0", "r0", "r1", "r2", "r2", "r3"])
    merged = cases.merge_groups(groups, np.array([[1, 4]]))
    assert merged.tolist() == [0, 0, 1, 0, 0, 2]
    assert cases.merge_groups(groups, np.zeros((0, 2))).tolist() == [0, 0, 1, 2, 2, 3]


def test_link_pairs_takes_exact_duplicates_and_strong_links():
    labels = ["benign"] * 4
    sha = ["a", "b", "a", "c"]
    sim = np.full((4, 4), 0.1)
    sim[1, 3] = sim[3, 1] = 0.95
    pairs = {tuple(p) for p in cases.link_pairs(sim, labels, sha, 0.9).tolist()}
    assert pairs == {(1, 3), (0, 2)}


def test_next_similarity_follows_the_numbers_within_each_class():
    frame = pd.DataFrame(
        {"label": ["benign", "benign", "benign", "normal"], "number": [3, 1, 2, 1]}
    )
    unit = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8], [1.0, 0.0]])
    # scan order of benign: rows 1 (number 1), 2 (number 2), 0 (number 3)
    nxt = cases.next_similarity(frame, unit)
    assert nxt[1] == pytest.approx(0.6) and nxt[2] == pytest.approx(0.8)
    assert np.isnan(nxt[0]) and np.isnan(nxt[3])  # last of its class, alone in its class


def test_consecutive_neighbours_takes_the_better_side():
    frame = pd.DataFrame({"label": ["benign"] * 3 + ["normal"], "number": [1, 2, 3, 1]})
    unit = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])
    near = cases.consecutive_neighbours(frame, unit)
    assert near[:3] == pytest.approx([0.6, 0.8, 0.8])
    assert np.isnan(near[3])


def test_copy_homes_puts_each_copy_where_it_fits_its_neighbours():
    frame = pd.DataFrame({"sha256": ["a", "b", "a", "c", "d", "d"], "label": "benign"})
    score = np.array([0.2, 0.9, 0.8, 0.5, np.nan, 0.1])
    assert cases.copy_homes(frame, score).tolist() == [2, 1, 2, 3, 5, 5]
    # a copy in another class is another slice (none in the release): it stays its own home
    frame.loc[0, "label"] = "normal"
    assert cases.copy_homes(frame, score).tolist() == [0, 1, 2, 3, 5, 5]


# --- the display window ----------------------------------------------------------------------


def test_soft_window_is_the_absence_of_saturated_pixels_in_the_body():
    body = np.full((32, 32, 3), 120, np.uint8)
    lung = body.copy()
    lung[:2, :2] = 255  # 4 of 1024 body pixels saturated (>= 0.2%): lung window
    speck = body.copy()
    speck[0, 0] = 240  # 1 of 1024 (< 0.2%): still soft tissue
    dark = np.zeros_like(body)
    almost = body.copy()
    almost[:2, :2] = 234  # bright, but below the saturation level
    small = np.zeros_like(body)
    small[:10, :10] = 120
    small[0, 0] = 255  # 1 of 100 body pixels: a lung window on a small body
    soft = cases.soft_window(np.stack([body, lung, speck, dark, almost, small]))
    assert soft.tolist() == [True, False, True, True, True, False]


# --- reference levels ------------------------------------------------------------------------


def test_evidence_levels_use_same_class_pairs_far_apart_only():
    labels = ["benign"] * 4 + ["malignant"]
    numbers = [1, 2, 60, 61, 200]
    unit = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8], [1.0, 0.0]])
    # far benign pairs: (1, 60) 1.0, (1, 61) 0.6, (2, 60) 0.0, (2, 61) 0.8; the near pairs
    # (1, 2), (60, 61) and the malignant slice do not count
    exact = ["a", "b", "c", "d", "e"]
    levels = cases.evidence_levels(labels, numbers, exact, unit)
    assert levels["always_cut_below"] == pytest.approx(0.7)  # median of 0, 0.6, 0.8, 1
    assert levels["join_above"] == pytest.approx(0.8 + 0.97 * 0.2)  # 99th percentile
    # a second view that rates every pair 1.0 lifts each pair to the mean of the two views
    both = cases.evidence_levels(labels, numbers, exact, unit, np.ones((5, 1)))
    assert both["always_cut_below"] == pytest.approx(0.85)
    # slice 60 a copy of slice 1: their pair (similarity 1.0) is no pair of two slices
    copies = cases.evidence_levels(labels, numbers, ["a", "b", "a", "d", "e"], unit)
    assert copies["always_cut_below"] == pytest.approx(0.6)  # median of 0, 0.6, 0.8


def test_evidence_levels_without_far_pairs_cut_and_join_nothing():
    levels = cases.evidence_levels(["benign"] * 3, [1, 2, 40], ["a", "b", "c"], np.eye(3))
    assert levels == {"always_cut_below": -np.inf, "join_above": np.inf}


def test_same_scan_level_is_the_lowest_level_without_far_links():
    labels = ["benign"] * 4 + ["malignant"]
    numbers = [1, 2, 3, 10, 30]
    exact = ["a", "b", "c", "b", "e"]
    sim = np.full((5, 5), 0.5)
    sim[0, 1] = sim[1, 0] = 0.97  # 1 apart: same scan, allowed at any level
    sim[0, 3] = sim[3, 0] = 0.905  # 9 apart: needs a level of 0.91
    sim[1, 3] = sim[3, 1] = 0.99  # exact copies: not a link
    sim[0, 4] = sim[4, 0] = 0.99  # another class: not a link
    assert cases.same_scan_level(sim, labels, numbers, exact) == pytest.approx(0.91)
    sim[0, 3] = sim[3, 0] = 0.999  # above every candidate level
    assert cases.same_scan_level(sim, labels, numbers, exact) == np.inf
    assert cases.same_scan_level(sim, labels, numbers, exact, grid=[0.5, 0.9995]) == 0.9995


def test_cut_levels_combine_the_far_pairs_and_the_same_scan_level():
    frame = pd.DataFrame(
        {"label": ["benign"] * 4, "number": [1, 2, 60, 61], "sha256": ["a", "b", "c", "d"]}
    )
    unit = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    sim = np.full((4, 4), 0.5)
    sim[0, 2] = sim[2, 0] = 0.935  # 59 apart
    levels = cases.cut_levels(frame, sim, unit)
    assert levels["always_cut_below"] == pytest.approx(0.7)
    assert levels["same_scan"] == pytest.approx(0.94)


# --- the cut rule ----------------------------------------------------------------------------


def test_no_fragments_an_outlier_slice_joins_a_neighbour_run():
    # planted runs of 5, 8, 12 and 6 slices (boundaries after 4, 12 and 24); slice 17, inside
    # the third run, is an outlier: unlike both of its neighbours
    sim = _gaps(31, 0.9, g4=0.2, g12=0.25, g24=0.3, g16=0.05, g17=0.1)
    cuts = cases.plan_cuts(sim, 4, rule={"always_cut_below": 0.5})
    # gap 16 is cut first; cutting gap 17 too would leave slice 17 alone, so it joins 18...
    assert np.flatnonzero(cuts).tolist() == [4, 12, 16, 24]
    assert _runs(cuts) == [5, 8, 4, 8, 6]
    # ... which is what the minimum run prevents: without it the outlier stands alone
    loose = cases.plan_cuts(sim, 4, rule={"always_cut_below": 0.5, "min_run": 1})
    assert np.flatnonzero(loose).tolist() == [4, 12, 16, 17, 24]


def test_no_fragments_near_the_ends_of_the_sequence():
    sim = _gaps(12, 0.9, g0=0.01, g1=0.02, g10=0.03, g5=0.5)
    cuts = cases.plan_cuts(sim, 2, rule={"always_cut_below": 0.1})
    assert np.flatnonzero(cuts).tolist() == [5]  # the low gaps near the ends would leave 1-2
    assert cases.plan_cuts(_gaps(5, 0.9, g2=0.0), 2).tolist() == [False] * 4  # 3 + 2 slices


def test_no_run_is_shorter_than_the_minimum_on_random_sequences():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 60))
        sim = rng.uniform(-0.2, 1.0, n - 1)
        rule = {"always_cut_below": float(rng.uniform(-0.2, 0.6)), "max_run": rng.integers(3, 20)}
        cuts = cases.plan_cuts(sim, int(rng.integers(1, 30)), rule=rule)
        if n >= 3:
            assert min(_runs(cuts)) >= 3, (n, sim, rule)
        else:
            assert not cuts.any()


def test_forced_cuts_are_made_even_as_fragments_and_past_the_budget():
    sim = _gaps(10, 0.9, g5=0.1)
    forced = np.zeros(9, bool)
    forced[[0, 8]] = True  # a size change after the first and before the last slice
    cuts = cases.plan_cuts(sim, 1, forced)  # a budget of one run: no other cut
    assert np.flatnonzero(cuts).tolist() == [0, 8]
    assert _runs(cuts) == [1, 8, 1]
    # forced cuts use up the budget: a third run is allowed, none more
    assert np.flatnonzero(cases.plan_cuts(sim, 3, forced)).tolist() == [0, 8]
    assert np.flatnonzero(cases.plan_cuts(sim, 4, forced)).tolist() == [0, 5, 8]


def test_min_run_counts_from_forced_cuts():
    sim = _gaps(12, 0.9, g1=0.1, g6=0.2)
    forced = np.zeros(11, bool)
    forced[3] = True  # runs 0-3 and 4-11
    cuts = cases.plan_cuts(sim, 3, forced)
    # gap 1 would leave runs of 2 (0-1 and 2-3): the next lowest gap, 6, is cut instead
    assert np.flatnonzero(cuts).tolist() == [3, 6]


def test_the_lowest_boundaries_are_cut_whatever_the_budget():
    # boundaries after slices 4, 9 and 14 of 20, at 0.1, 0.2 and 0.45
    sim = _gaps(20, 0.9, g4=0.1, g9=0.2, g14=0.45)
    assert np.flatnonzero(cases.plan_cuts(sim, 2)).tolist() == [4]
    low = cases.plan_cuts(sim, 2, rule={"always_cut_below": 0.3})
    assert np.flatnonzero(low).tolist() == [4, 9]  # 0.2 past the budget, 0.45 not
    high = cases.plan_cuts(sim, 2, rule={"always_cut_below": 0.5})
    assert np.flatnonzero(high).tolist() == [4, 9, 14]
    within = cases.plan_cuts(sim, 4, rule={"always_cut_below": 0.3})
    assert np.flatnonzero(within).tolist() == [4, 9, 14]  # above the level, within the budget


def test_protected_gaps_are_never_cut():
    sim = _gaps(12, 0.9, g4=0.1, g7=0.3)
    protected = np.zeros(11, bool)
    protected[4] = True
    assert np.flatnonzero(cases.plan_cuts(sim, 2, protected=protected)).tolist() == [7]
    cuts = cases.plan_cuts(sim, 5, None, protected, {"always_cut_below": 0.5, "max_run": 4})
    assert not cuts[4]
    assert np.flatnonzero(cases.plan_cuts(sim, 2)).tolist() == [4]  # unprotected: cut


def test_a_long_run_is_cut_at_its_least_alike_gap_below_the_joining_level():
    sim = _gaps(20, 0.9, g1=0.1, g4=0.7, g9=0.6)
    # one run of 20 > 12: its least-alike gap (1) would leave a fragment, so gap 9 is cut
    cuts = cases.plan_cuts(sim, 1, rule={"max_run": 12, "join_above": 0.8})
    assert np.flatnonzero(cuts).tolist() == [9]
    # until no run is too long or none can be cut: 0-9 is cut at 4, 10-19 has no gap < 0.8
    cuts = cases.plan_cuts(sim, 1, rule={"max_run": 6, "join_above": 0.8})
    assert np.flatnonzero(cuts).tolist() == [4, 9]
    assert _runs(cuts) == [5, 5, 10]


def test_a_long_run_more_alike_than_the_joining_level_stays_whole():
    sim = _gaps(20, 0.9, g9=0.6)
    assert not cases.plan_cuts(sim, 1, rule={"max_run": 12, "join_above": 0.5}).any()
    assert not cases.plan_cuts(sim, 1).any()  # no maximum by default


def test_plan_cuts_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n_runs must be an int >= 1, got 0"):
        cases.plan_cuts(np.ones(3), 0)
    with pytest.raises(ValueError, match="got 2.5"):
        cases.plan_cuts(np.ones(3), 2.5)
    with pytest.raises(ValueError, match=r"forced has shape \(2,\), expected \(3,\)"):
        cases.plan_cuts(np.ones(3), 2, np.ones(2, bool))
    with pytest.raises(ValueError, match=r"protected has shape \(4,\), expected \(3,\)"):
        cases.plan_cuts(np.ones(3), 2, None, np.ones(4, bool))


# --- the central reconstruction --------------------------------------------------------------


def test_reconstruct_recovers_planted_runs():
    frame, feats, images = _sequence([5, 8, 12, 6, 9])
    out = _reconstruct(frame, feats, images, {"benign": 5})
    assert _partition(out["case"]) == _partition(frame["true_run"])
    assert out["case"].iloc[[0, 5, 13, 25, 31]].tolist() == [f"benign-{k:02d}" for k in range(5)]
    assert out["home"].tolist() == list(range(len(frame)))
    assert out["run"].nunique() == 5


def test_reconstruct_sorts_by_number_not_by_row_order():
    frame, feats, images = _sequence([3, 4, 5])
    order = np.random.default_rng(1).permutation(len(frame))
    shuffled = frame.iloc[order].reset_index(drop=True)
    out = _reconstruct(shuffled, feats[order], images[order], {"benign": 3})
    assert _partition(out["case"]) == _partition(shuffled["true_run"])
    first = out.loc[out["number"] == 1, "case"].item()
    assert first == "benign-00"


def test_reconstruct_cuts_boundaries_less_alike_than_far_pairs_past_the_budget():
    frame, feats, images = _sequence([5, 4, 6, 5, 4], seed=5)
    # planted boundaries are near 0, slices of one run near 1
    assert _reconstruct(frame, feats, images, {"benign": 3})["case"].nunique() == 3
    out = _reconstruct(frame, feats, images, {"benign": 3}, levels={"always_cut_below": 0.5})
    assert _partition(out["case"]) == _partition(frame["true_run"])


def test_an_exact_copy_elsewhere_gets_its_homes_case():
    frame, feats, images = _sequence([5, 8, 6, 7], seed=6)
    # a copy of slice 7 (third of the second run) filed inside the first run, at position 2;
    # the original moves to position 8
    take = [0, 1, 7, *range(2, len(frame))]
    frame, feats, images = _renumber(frame, feats, images, take)
    out = _reconstruct(frame, feats, images, {"benign": 4})
    assert out.loc[2, "home"] == 8 and out.loc[8, "home"] == 8
    assert out.loc[2, "case"] == out.loc[8, "case"] == out.loc[7, "case"]
    assert out.loc[2, "run"] == out.loc[8, "run"]
    # the copy does not break the run it was filed in: the planted runs come back whole
    assert _partition(out["case"]) == _partition(frame["true_run"])


def test_one_look_alike_pair_does_not_merge_runs_two_distinct_pairs_do():
    frame, feats, images = _sequence([5, 6, 5], seed=7)
    # plus a copy of slice 1 at the end (its home stays at 1)
    frame, feats, images = _renumber(frame, feats, images, [*range(16), 1])
    n = len(frame)

    def with_links(*pairs):
        sim = np.full((n, n), -1.0)
        for a, b in pairs:
            sim[a, b] = sim[b, a] = 0.95
        return _reconstruct(frame, feats, images, {"benign": 3}, sim=sim)

    planted = _partition(frame["true_run"])
    one = with_links((1, 13))
    assert _partition(one["case"]) == planted
    # the same pair again through the copy of slice 1 is not a second distinct pair
    assert _partition(with_links((1, 13), (16, 13))["case"]) == planted
    # one slice alike to two neighbouring slices of another run is still one look-alike
    assert _partition(with_links((1, 13), (1, 14))["case"]) == planted
    two = with_links((1, 13), (2, 14))
    assert _partition(two["run"]) == planted
    assert two["case"].nunique() == 2
    assert two.loc[0, "case"] == two.loc[15, "case"] == two.loc[16, "case"]
    assert two.loc[0, "case"] != two.loc[5, "case"]


def test_the_rule_overrides_change_the_merge_and_the_shortest_run():
    frame, feats, images = _sequence([5, 6, 5], seed=7)
    n = len(frame)
    sim = np.full((n, n), -1.0)
    sim[1, 13] = sim[13, 1] = 0.95  # one look-alike pair between runs 0 and 2
    planted = _partition(frame["true_run"])
    assert _partition(_reconstruct(frame, feats, images, {"benign": 3}, sim=sim)["case"]) == planted
    one_link = _reconstruct(frame, feats, images, {"benign": 3}, sim=sim, rule={"min_links": 1})
    assert one_link["case"].nunique() == 2
    assert one_link.loc[1, "case"] == one_link.loc[13, "case"]
    # runs of 5 and 6 cannot be cut into runs of at least 6: fewer cuts than the budget
    long_min = _reconstruct(frame, feats, images, {"benign": 3}, rule={"min_run": 6})
    assert long_min["case"].nunique() < 3
    with pytest.raises(ValueError, match="unknown rule keys.*'min_lnks'"):
        _reconstruct(frame, feats, images, {"benign": 3}, rule={"min_lnks": 1})


def test_same_scan_pairs_are_never_cut_apart():
    frame, feats, images = _sequence([5, 5, 5], seed=8)
    n = len(frame)
    sim = np.full((n, n), -1.0)
    sim[3, 5] = sim[5, 3] = 0.99  # 2 apart across the first boundary: one scan
    out = _reconstruct(frame, feats, images, {"benign": 3}, sim=sim, levels={"same_scan": 0.95})
    assert out.loc[4, "run"] == out.loc[5, "run"]
    assert out.loc[9, "run"] != out.loc[10, "run"]
    assert out["run"].nunique() == 3
    far = np.full((n, n), -1.0)
    far[2, 6] = far[6, 2] = 0.99  # 4 apart: more than a scan's gap, protects nothing
    out = _reconstruct(frame, feats, images, {"benign": 3}, sim=far, levels={"same_scan": 0.95})
    assert _partition(out["case"]) == _partition(frame["true_run"])


def test_a_window_change_is_a_cut():
    frame, feats, images = _sequence([8], seed=9)
    images[4:, :2, :2] = images[4:, 2:4, :2]  # no saturated pixels from slice 4 on
    soft = cases.soft_window(images)
    assert soft.tolist() == [False] * 4 + [True] * 4
    out = _reconstruct(frame, feats, images, {"benign": 1}, soft=soft)
    assert out["case"].tolist() == ["benign-00"] * 4 + ["benign-01"] * 4


def test_a_size_change_is_a_cut_and_two_links_merge_the_runs():
    frame, feats, images = _sequence([4, 4], seed=2)
    frame.loc[4:, ["width", "height"]] = [623, 512]  # the second run has another size
    feats[4:], images[4:] = feats[:4] + 0.01, images[:4]  # ... but looks the same
    out = _reconstruct(frame, feats, images, {"benign": 1})
    assert out["case"].tolist() == ["benign-00"] * 4 + ["benign-01"] * 4
    sim = np.full((8, 8), -1.0)
    sim[0, 4] = sim[4, 0] = sim[1, 5] = sim[5, 1] = 0.95
    merged = _reconstruct(frame, feats, images, {"benign": 1}, sim=sim)
    assert merged["case"].nunique() == 1 and merged["run"].nunique() == 2


def test_classes_are_cut_separately_and_never_merged_across():
    b, fb, ib = _sequence([3, 3], "benign", seed=3)
    m, fm, im = _sequence([3, 3, 3], "malignant", seed=4)
    frame = pd.concat([b, m], ignore_index=True)
    feats, images = np.vstack([fb, fm]), np.concatenate([ib, im])
    sim = np.full((len(frame), len(frame)), -1.0)
    for a, c in ((0, 9), (1, 10)):  # strong links across classes: never a merge
        sim[a, c] = sim[c, a] = 0.99
    assert len(cases.link_pairs(sim, frame["label"], frame["sha256"], 0.9)) == 0
    stated = {"benign": 2, "malignant": 3, "normal": 1}
    out = _reconstruct(frame, feats, images, stated, sim=sim)
    assert _partition(out["case"]) == _partition(frame["true_run"])
    counts = cases.group_counts(out, stated)
    assert counts.loc["benign", "cases"] == 2 and counts.loc["malignant", "cases"] == 3
    assert counts.loc["malignant", ["smallest", "median", "largest"]].tolist() == [3, 3, 3]
    assert set(out["case"].str.split("-").str[0]) == {"benign", "malignant"}


# --- counts and summary ----------------------------------------------------------------------


def test_crossing_links_counts_links_between_groups():
    sim = np.array([[-1, 0.95, 0.85], [0.95, -1, 0.5], [0.85, 0.5, -1]])
    table = cases.crossing_links(sim, ["b"] * 3, ["x", "y", "z"], ["g0", "g0", "g1"], [0.8, 0.9])
    assert table["links"].tolist() == [2, 1]
    assert table["crossing_groups"].tolist() == [1, 0]
    assert table["crossing_share"].tolist() == [0.5, 0.0]


def test_summary_reports_cases_runs_and_links_left_between_cases():
    parts = [_sequence([3, 3], "benign", 10), _sequence([3, 3, 3], "malignant", 11)]
    parts.append(_sequence([4], "normal", 12))
    frame = pd.concat([p[0] for p in parts], ignore_index=True)
    feats = np.vstack([p[1] for p in parts])
    images = np.concatenate([p[2] for p in parts])
    n = len(frame)
    sim = np.full((n, n), -1.0)
    sim[0, 4] = sim[4, 0] = 0.95  # one link between the two benign runs: not merged
    sim[6, 13] = sim[13, 6] = 0.85  # a weaker one between malignant runs
    out = _reconstruct(frame, feats, images, {"benign": 2, "malignant": 3}, sim=sim)
    crossing = cases.crossing_links(sim, frame["label"], frame["sha256"], out["case"], [0.8, 0.9])
    levels = {"always_cut_below": 0.25, "join_above": 0.75, "same_scan": np.float64(0.97)}
    result = cases.summary(out, crossing, 0.9, levels)
    assert result["groups"] == {"benign": 2, "malignant": 3, "normal": 1}
    assert result["runs"] == {"benign": 2, "malignant": 3, "normal": 1}
    assert result["stated"] == dict(STATED_CASES)
    assert result["links_crossing_groups"] == 1
    assert cases.summary(out, crossing, 0.8, levels)["links_crossing_groups"] == 2
    assert result["sizes"]["normal"] == {"smallest": 4.0, "median": 4.0, "largest": 4.0}
    assert result["levels"] == {"always_cut_below": 0.25, "join_above": 0.75, "same_scan": 0.97}
    assert type(result["levels"]["same_scan"]) is float  # JSON-ready
    assert "family_groups" not in result
    with pytest.raises(ValueError, match="threshold=0.85"):
        cases.summary(out, crossing, 0.85, levels)


def test_link_distances_tabulates_same_class_pairs_by_level_and_distance():
    labels = ["benign"] * 4 + ["normal"]
    numbers = [1, 2, 10, 11, 3]
    exact = ["a", "b", "c", "a", "e"]
    sim = np.full((5, 5), 0.1)
    for (i, j), value in {(0, 1): 0.95, (0, 2): 0.85, (1, 2): 0.95, (2, 3): 0.5}.items():
        sim[i, j] = sim[j, i] = value
    sim[0, 3] = sim[3, 0] = 0.99  # exact copies: left out
    sim[0, 4] = sim[4, 0] = 0.99  # another class: left out
    table = cases.link_distances(sim, labels, numbers, exact, [0.8, 0.9, 1.0], [0, 1, 50])
    # (1, 2) 1 apart at 0.95; (1, 10) 9 apart at 0.85; (2, 10) 8 apart at 0.95
    assert table.to_numpy().tolist() == [[0, 1], [1, 1]]
    assert table.to_numpy().sum() == 3


def test_a_lower_long_run_factor_cuts_long_runs():
    frame, feats, images = _sequence([10, 10], seed=5)
    assert _reconstruct(frame, feats, images, {"benign": 2})["case"].nunique() == 2
    # runs over 0.5 x the mean case (10 slices) are cut, never below the shortest run
    short = _reconstruct(frame, feats, images, {"benign": 2}, rule={"long_run_factor": 0.5})
    assert short["case"].nunique() > 2
    assert short["case"].value_counts().min() >= cases.MIN_RUN


def test_sensitivity_changes_one_thing_of_the_central_rule_at_a_time():
    from lungct_utils import groupings

    frame, feats, images = _sequence([5, 6, 5], seed=7)
    n = len(frame)
    sim = np.full((n, n), -1.0)
    sim[1, 13] = sim[13, 1] = 0.95  # one look-alike pair between runs 0 and 2
    views, soft = cases.slice_views(feats, images), cases.soft_window(images)
    out = groupings.sensitivity(frame, views, sim, 0.9, soft, NO_LEVELS)
    assert list(out) == list(groupings.SENSITIVITY)
    assert all(len(v) == n for v in out.values())
    one = cases.reconstruct(frame, views, sim, 0.9, soft, NO_LEVELS, rule={"min_links": 1})
    assert out["links_1"].tolist() == one["case"].tolist()
    assert out["links_1"][1] == out["links_1"][13] and out["links_3"][1] != out["links_3"][13]
    # a one-view variant takes its levels from that view
    levels = cases.cut_levels(frame, sim, views[1])
    blind = cases.reconstruct(frame, views[1:], sim, 0.9, soft, levels)
    assert out["thumbnails_only"].tolist() == blind["case"].tolist()
