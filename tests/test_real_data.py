"""Integration tests on the real IQ-OTH/NCCD release (fail in CI when it is missing)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from lungct_utils import cli
from lungct_utils.augment import plan_augmentation, render
from lungct_utils.config import PAPER, PROTOCOLS
from lungct_utils.dataset import load_manifest, verify_release
from lungct_utils.io_utils import sha256_bytes
from lungct_utils.prepare import prepare_all, read_augmented, read_splits
from lungct_utils.splits import proportions

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
    table = read_augmented(prepared)
    assert table["label"].value_counts().to_dict() == {
        "malignant": 1205,
        "normal": 1203,
        "benign": 1201,
    }
    assert (table["transform"] == "identity").sum() == 1097
    # every copy differs from every other image; only the 42 byte-identical originals repeat
    assert table["pixel_sha256"].nunique() == 3609 - 42
    assert all((prepared / "augmented" / f).is_file() for f in table["file"].iloc[::97])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_split_sizes_and_proportions(prepared, protocol):
    splits = read_splits(protocol, prepared)
    share = splits["holdout"].value_counts(normalize=True)
    for name, target in [("train", 0.70), ("val", 0.15), ("test", 0.15)]:
        assert abs(share[name] - target) < 0.01, (name, share[name])
    overall = splits["label"].value_counts(normalize=True)
    for column in ("holdout", "fold"):
        gap = (proportions(splits, column) - overall).abs().to_numpy().max()
        assert gap <= 0.02, (column, gap)


def test_grouped_near_keeps_pseudo_cases_whole(prepared):
    splits = read_splits("grouped_near", prepared)
    cases = pd.read_csv(prepared / "pseudo_cases.csv")
    assert (splits.groupby("group")["holdout"].nunique() == 1).all()
    assert (splits.groupby("group")["fold"].nunique() == 1).all()
    table = read_augmented(prepared)
    expected = table["source"].map(dict(zip(cases["path"], cases["pseudo_case"], strict=True)))
    assert (splits["group"].to_numpy() == expected.to_numpy()).all()  # copies follow their source
    # pseudo-cases are coarser than source images and never mix classes
    assert splits["group"].nunique() < read_splits("grouped", prepared)["group"].nunique()
    assert (cases.groupby("pseudo_case")["label"].nunique() == 1).all()


def test_grouped_protocol_keeps_sources_whole(prepared, real_release):
    splits = read_splits("grouped", prepared)
    assert (splits.groupby("group")["holdout"].nunique() == 1).all()
    assert (splits.groupby("group")["fold"].nunique() == 1).all()
    manifest = load_manifest(real_release, progress=False)
    assert splits["group"].nunique() == manifest["sha256"].nunique() == 1097 - 42
    paper = read_splits("paper", prepared)
    assert (paper.groupby("group")["holdout"].nunique() > 1).sum() > 300  # the paper's leak


def test_same_seed_rebuilds_identically(prepared, real_release, tmp_path):
    prepare_all(real_release, PAPER, processed=tmp_path, progress=False)
    pd.testing.assert_frame_equal(read_augmented(prepared), read_augmented(tmp_path))
    for protocol in PROTOCOLS:
        pd.testing.assert_frame_equal(
            read_splits(protocol, prepared), read_splits(protocol, tmp_path)
        )
    for f in read_augmented(prepared)["file"].iloc[::251]:
        assert (prepared / "augmented" / f).read_bytes() == (
            tmp_path / "augmented" / f
        ).read_bytes()


def test_other_seed_gives_other_images_and_splits(prepared, real_release):
    table = read_augmented(prepared)
    manifest = load_manifest(real_release, progress=False)
    other = plan_augmentation(manifest, PAPER.with_overrides(seed=PAPER.seed + 1))
    copies = other[other["transform"] != "identity"].head(40)
    hashes = {
        sha256_bytes(img.tobytes()) for _, img in render(copies, real_release, progress=False)
    }
    assert not hashes & set(table["pixel_sha256"])
    from lungct_utils.splits import make_splits

    resplit = make_splits(table, "grouped", PAPER.with_overrides(seed=PAPER.seed + 1))
    assert not np.array_equal(resplit["holdout"], read_splits("grouped", prepared)["holdout"])
