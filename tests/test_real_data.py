"""Integration tests on the real IQ-OTH/NCCD release (fail in CI when it is missing)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from lungct_utils import cli, pipeline
from lungct_utils.augment import plan_augmentation, render
from lungct_utils.config import HONEST_PROTOCOLS, PAPER, PROTOCOLS, STATED_CASES
from lungct_utils.data import verify_release
from lungct_utils.images import load_uint8, pixel_key
from lungct_utils.splits import distinct_originals, fold_roles, make_splits, proportions

pytestmark = pytest.mark.data


def test_release_verifies_against_committed_manifest(real_release):
    report = verify_release(real_release, progress=False)
    assert report.ok, report.problems
    counts = report.manifest["label"].value_counts().to_dict()
    assert counts == {"benign": 120, "malignant": 561, "normal": 416}


def test_verify_names_truncated_jpeg_and_stray_text(real_release, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(real_release, copy, copy_function=shutil.copyfile)
    victim = copy / "Malignant cases" / "Malignant case (100).jpg"
    victim.write_bytes(victim.read_bytes()[:5000])
    (copy / "Normal cases" / "readme.txt").write_text("stray file")
    assert cli.main(["-q", "verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "Malignant case (100).jpg: corrupt or truncated" in err
    assert "Normal cases/readme.txt: not an image" in err
    assert "FAILED: 2 problem(s)" in err and "Traceback" not in err


def test_augmented_counts_equal_table_one(prepared):
    table = pipeline.read_table(prepared)
    assert table["label"].value_counts().to_dict() == {
        "malignant": 1205,
        "normal": 1203,
        "benign": 1201,
    }
    assert (table["transform"] == "identity").sum() == 1097
    assert distinct_originals(table).sum() == 1055
    # every copy differs from every other image; only the 42 byte-identical originals repeat
    assert table["pixel_sha256"].nunique() == 3609 - 42
    assert all((prepared / "augmented" / f).is_file() for f in table["file"].iloc[::97])


def test_cases_are_reconstructed_within_the_stated_counts(prepared):
    groups = pd.read_csv(prepared / "pseudo_cases.csv").merge(
        pd.read_csv(prepared / "cases.csv")[["path", "case"]], on="path", validate="one_to_one"
    )
    assert len(groups) == 1097
    assert (groups.groupby("case")["label"].nunique() == 1).all()
    assert (groups.groupby("sha256")["case"].nunique() == 1).all()  # duplicates share a case
    # near-duplicate components stay inside one case, but for the few look-alikes one link
    # joins across runs (one look-alike slice is no proof of one patient)
    spans = groups.groupby("pseudo_case")["case"].nunique()
    assert (spans > 1).mean() < 0.03, (spans > 1).sum()
    counts = groups.groupby("label")["case"].nunique()
    for label, stated in STATED_CASES.items():  # the stated count is the cut budget
        assert stated * 0.6 <= counts[label] <= stated * 1.2, (label, counts[label])
    # runs follow the file numbers: a case's slices are few contiguous stretches
    groups["number"] = groups["path"].str.extract(r"\((\d+)\)")[0].astype(int)
    spans = groups.groupby("case")["number"].agg(lambda n: n.max() - n.min() + 1)
    sizes = groups.groupby("case").size()
    assert (spans <= 2 * sizes).mean() > 0.7


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_split_sizes_and_proportions(prepared, protocol):
    splits = pipeline.read_splits(protocol, prepared)
    scored = splits[splits["scored"]]
    share = scored["holdout"].value_counts(normalize=True)
    tolerance = 0.01 if protocol != "cases" else 0.03  # cases are large groups
    for name, target in [("train", 0.70), ("val", 0.15), ("test", 0.15)]:
        assert abs(share[name] - target) < tolerance, (name, share[name])
    overall = scored["label"].value_counts(normalize=True)
    for column in ("holdout", "fold_0"):
        gap = (proportions(scored, column) - overall).abs().to_numpy().max()
        assert gap <= (0.02 if protocol != "cases" else 0.06), (column, gap)


@pytest.mark.parametrize("protocol", HONEST_PROTOCOLS)
def test_honest_test_folds_hold_distinct_originals_only(prepared, protocol):
    table = pipeline.read_table(prepared)
    splits = pipeline.read_splits(protocol, prepared)
    case = table["case"].to_numpy()
    for repeat in range(PAPER.cv_repeats):
        seen = []
        for fold in range(PAPER.n_folds):
            roles = fold_roles(splits, repeat, fold, protocol, PAPER)
            test = roles == "test"
            assert (table.loc[test, "transform"] == "identity").all()
            fit = np.isin(roles, ("train", "val"))
            assert not set(table.loc[fit, "source_sha256"]) & set(table.loc[test, "source_sha256"])
            if protocol == "cases":  # no patient on both sides
                assert not set(case[fit]) & set(case[test])
            seen += table.loc[test, "id"].tolist()
        assert len(seen) == len(set(seen)) == 1055


def test_grouped_near_keeps_pseudo_cases_whole(prepared):
    splits = pipeline.read_splits("grouped_near", prepared)
    groups = pd.read_csv(prepared / "pseudo_cases.csv")
    assert (splits.groupby("group")["holdout"].nunique() == 1).all()
    table = pipeline.read_table(prepared)
    assert (splits["group"].to_numpy() == table["pseudo_case"].to_numpy()).all()
    assert splits["group"].nunique() < pipeline.read_splits("grouped", prepared)["group"].nunique()
    assert (groups.groupby("pseudo_case")["label"].nunique() == 1).all()


def test_the_paper_protocol_leaks_and_cases_does_not(prepared):
    table = pipeline.read_table(prepared)
    paper = pipeline.read_splits("paper", prepared)
    assert (paper.groupby("group")["holdout"].nunique() > 1).sum() > 300  # the paper's leak
    cases = pipeline.read_splits("cases", prepared)
    train = set(table.loc[cases["holdout"] == "train", "case"])
    test = set(table.loc[(cases["holdout"] == "test") & cases["scored"], "case"])
    assert not train & test


def test_same_seed_rebuilds_identically(prepared, tmp_path):
    pipeline.prepare(PAPER, processed=tmp_path, progress=False)
    pd.testing.assert_frame_equal(pipeline.read_table(prepared), pipeline.read_table(tmp_path))
    for protocol in PROTOCOLS:
        pd.testing.assert_frame_equal(
            pipeline.read_splits(protocol, prepared), pipeline.read_splits(protocol, tmp_path)
        )
    for f in pipeline.read_table(prepared)["file"].iloc[::251]:
        assert (prepared / "augmented" / f).read_bytes() == (
            tmp_path / "augmented" / f
        ).read_bytes()


def test_other_seed_gives_other_images_and_splits(prepared):
    table = pipeline.read_table(prepared)
    manifest = pipeline.release_manifest(progress=False)
    other = plan_augmentation(manifest, PAPER.with_overrides(seed=PAPER.seed + 1))
    copies = other[other["transform"] != "identity"].head(40)
    sources = {
        p: load_uint8(a)
        for p, a in zip(manifest["path"], manifest["abspath"], strict=True)
        if p in set(copies["source"])
    }
    hashes = {pixel_key(img) for _, img in render(copies, sources, progress=False)}
    assert not hashes & set(table["pixel_sha256"])
    resplit = make_splits(table, "cases", PAPER.with_overrides(seed=PAPER.seed + 1))
    cases = pipeline.read_splits("cases", prepared)
    assert not np.array_equal(resplit["holdout"], cases["holdout"])
    assert not np.array_equal(resplit["fold_0"], cases["fold_0"])
