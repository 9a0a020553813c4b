"""Case reconstruction on synthetic sequences with known cut points."""

import numpy as np
import pandas as pd
import pytest

from lungct_utils import cases


def _sequence(runs: list[int], label="benign", seed=0, size=(512, 512)):
    """Slices whose features drift slowly within a run and jump between runs."""
    rng = np.random.default_rng(seed)
    rows, feats = [], []
    number = 1
    for r, length in enumerate(runs):
        centre = rng.normal(0, 1, 16)
        for _ in range(length):
            feats.append(centre + rng.normal(0, 0.05, 16))
            rows.append({"path": f"x/{label} case ({number}).jpg", "label": label,
                         "sha256": f"{label}{number}", "number": number,
                         "width": size[0], "height": size[1], "true_run": r})  # fmt: skip
            number += 1
    return pd.DataFrame(rows), np.array(feats)


def test_file_number_reads_the_scan_order_and_names_bad_files():
    assert cases.file_number("Malignant cases/Malignant case (367).jpg") == 367
    assert cases.file_number("Bengin case (1).jpg") == 1
    with pytest.raises(ValueError, match="'scan.jpg'"):
        cases.file_number("scan.jpg")


def test_cut_runs_cuts_at_the_least_alike_neighbours():
    sim = np.array([0.9, 0.8, 0.1, 0.95, 0.2, 0.9])
    assert cases.cut_runs(sim, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert cases.cut_runs(sim, 1).tolist() == [0] * 7
    assert cases.cut_runs(sim, 99).tolist() == list(range(7))  # every gap cut at most


def test_forced_cuts_come_first():
    sim = np.array([0.9, 0.8, 0.1, 0.95])
    forced = np.array([False, False, False, True])
    assert cases.cut_runs(sim, 2, forced).tolist() == [0, 0, 0, 0, 1]
    assert cases.cut_runs(sim, 3, forced).tolist() == [0, 0, 0, 1, 2]


def test_cut_runs_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n_runs.*0"):
        cases.cut_runs(np.ones(3), 0)
    with pytest.raises(ValueError, match="forced has shape"):
        cases.cut_runs(np.ones(3), 2, np.ones(2, bool))


def test_merge_groups_joins_linked_runs_and_renumbers_in_order():
    groups = np.array(["r0", "r0", "r1", "r2", "r2", "r3"])
    merged = cases.merge_groups(groups, np.array([[1, 4]]))
    assert merged.tolist() == [0, 0, 1, 0, 0, 2]
    assert cases.merge_groups(groups, np.zeros((0, 2))).tolist() == [0, 0, 1, 2, 2, 3]


def test_reconstruct_recovers_known_runs():
    frame, feats = _sequence([4, 7, 3, 5, 6])
    unit = cases.centered_unit(feats)
    nxt = cases.next_similarity(frame, unit)
    out = cases.reconstruct(
        frame, nxt, np.zeros((0, 2)), {"benign": 5, "malignant": 1, "normal": 1}
    )
    assert out["case"].nunique() == 5
    pd.testing.assert_series_equal(
        pd.Series(pd.factorize(out["case"])[0]), pd.Series(out["true_run"]), check_names=False
    )


def test_reconstruct_sorts_by_number_not_by_row_order():
    frame, feats = _sequence([3, 4, 5])
    order = np.random.default_rng(1).permutation(len(frame))
    shuffled, feats = frame.iloc[order].reset_index(drop=True), feats[order]
    nxt = cases.next_similarity(shuffled, cases.centered_unit(feats))
    out = cases.reconstruct(
        shuffled, nxt, np.zeros((0, 2)), {"benign": 3, "malignant": 1, "normal": 1}
    )
    assert (out.groupby("true_run")["case"].nunique() == 1).all()
    assert out["case"].nunique() == 3


def test_geometry_change_is_a_cut_and_links_merge_runs():
    a, fa = _sequence([4, 4], seed=2)
    a.loc[4:, ["width", "height"]] = [623, 512]  # the second run has another size
    fa[4:] = fa[:4] + 0.01  # ... but looks the same: only the geometry says cut
    nxt = cases.next_similarity(a, cases.centered_unit(fa))
    stated = {"benign": 2, "malignant": 1, "normal": 1}
    out = cases.reconstruct(a, nxt, np.zeros((0, 2)), stated)
    assert out["case"].iloc[:4].nunique() == 1 and out["case"].iloc[3] != out["case"].iloc[4]
    merged = cases.reconstruct(a, nxt, np.array([[0, 7]]), stated)  # an exact duplicate
    assert merged["case"].nunique() == 1 and merged["run"].nunique() == 2


def test_classes_are_cut_separately_and_never_merged_across():
    b, fb = _sequence([3, 3], "benign", seed=3)
    m, fm = _sequence([2, 2, 2], "malignant", seed=4)
    frame = pd.concat([b, m], ignore_index=True)
    feats = np.vstack([fb, fm])
    nxt = cases.next_similarity(frame, cases.centered_unit(feats))
    sim = np.full((len(frame), len(frame)), -1.0)
    sim[0, 7] = sim[7, 0] = 0.99  # a strong link across classes: never a merge
    pairs = cases.link_pairs(sim, frame["label"], frame["sha256"], 0.9)
    assert len(pairs) == 0
    out = cases.reconstruct(frame, nxt, pairs, {"benign": 2, "malignant": 3, "normal": 1})
    counts = cases.group_counts(out, {"benign": 2, "malignant": 3, "normal": 1})
    assert counts.loc["benign", "cases"] == 2 and counts.loc["malignant", "cases"] == 3
    assert set(out["case"].str.split("-").str[0]) == {"benign", "malignant"}


def test_link_pairs_takes_exact_duplicates_and_strong_links():
    labels = ["benign"] * 4
    sha = ["a", "b", "a", "c"]
    sim = np.full((4, 4), 0.1)
    sim[1, 3] = sim[3, 1] = 0.95
    pairs = {tuple(p) for p in cases.link_pairs(sim, labels, sha, 0.9).tolist()}
    assert pairs == {(1, 3), (0, 2)}


def test_crossing_links_counts_links_between_groups():
    sim = np.array([[-1, 0.95, 0.85], [0.95, -1, 0.5], [0.85, 0.5, -1]])
    table = cases.crossing_links(sim, ["b"] * 3, ["x", "y", "z"], ["g0", "g0", "g1"], [0.8, 0.9])
    assert table["links"].tolist() == [2, 1]
    assert table["crossing_groups"].tolist() == [1, 0]
