import numpy as np
import pandas as pd
import pytest

from lungct_utils import augment
from lungct_utils.augment import (
    apply_transform,
    load_images,
    materialize,
    plan_augmentation,
    render,
)
from lungct_utils.config import PAPER
from lungct_utils.data import load_manifest
from lungct_utils.images import load_uint8

SMALL = PAPER.with_overrides(
    augmented_counts={"benign": 20, "malignant": 12, "normal": 10}, image_size=32
)


@pytest.fixture
def originals(synth_release):
    return load_manifest(synth_release, progress=False)


def _sources(originals, size=32):
    return {
        p: load_uint8(a, size) for p, a in zip(originals["path"], originals["abspath"], strict=True)
    }


def test_plan_hits_targets_and_keeps_every_original(originals):
    plan = plan_augmentation(originals, SMALL)
    assert plan["label"].value_counts().to_dict() == {"benign": 20, "malignant": 12, "normal": 10}
    identity = plan[plan["transform"] == "identity"]
    assert sorted(identity["source"]) == sorted(originals["path"])
    assert plan["id"].is_unique
    # copies are spread evenly: every benign original is the source of 20/6 -> 3 or 4 rows
    per_source = plan[plan["label"] == "benign"].groupby("source").size()
    assert set(per_source) <= {3, 4}
    # byte-identical originals share a group
    dup = originals.groupby("sha256")["path"].transform("size") > 1
    dup_groups = plan[plan["source"].isin(originals.loc[dup, "path"])]["group"].unique()
    assert len(dup_groups) == 1


def test_plan_is_seeded(originals):
    a, b = plan_augmentation(originals, SMALL), plan_augmentation(originals, SMALL)
    pd.testing.assert_frame_equal(a, b)
    c = plan_augmentation(originals, SMALL.with_overrides(seed=SMALL.seed + 1))
    assert not a[["source", "rotation"]].equals(c[["source", "rotation"]])


def test_plan_rejects_targets_below_originals(originals):
    with pytest.raises(ValueError, match=r"augmented_counts\['benign'\]=3"):
        plan_augmentation(
            originals,
            SMALL.with_overrides(augmented_counts={"benign": 3, "malignant": 12, "normal": 10}),
        )


def test_transform_identity_flip_and_shift():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    assert np.array_equal(apply_transform(img), img)
    assert np.array_equal(apply_transform(img, flip=True), img[:, ::-1])
    shifted = apply_transform(img, shift_x=3.0)
    assert np.array_equal(shifted[:, 3:], img[:, :-3]) and not shifted[:, :3].any()
    rotated = apply_transform(img, rotation=8.0, zoom=1.03)
    assert rotated.shape == img.shape and not np.array_equal(rotated, img)
    with pytest.raises(ValueError, match="zoom"):
        apply_transform(img, zoom=0)


def test_rotation_is_counter_clockwise():
    img = np.zeros((41, 41, 3), np.uint8)
    img[20, 35] = 255  # a dot right of centre
    out = apply_transform(img, rotation=90.0)
    y, x = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    assert y < 10 and abs(x - 20) <= 1  # moved to the top


def test_materialize_writes_pngs_that_the_manifest_regenerates(originals, synth_release, tmp_path):
    plan = plan_augmentation(originals, SMALL)
    out = tmp_path / "processed" / "augmented"
    table = materialize(plan, _sources(originals), out, progress=False)
    assert (tmp_path / "processed" / "augmented.csv").is_file()
    images = load_images(table, out, progress=False)
    assert images.shape == (42, 32, 32, 3)
    reread = pd.read_csv(tmp_path / "processed" / "augmented.csv")
    regenerated = dict(render(reread, _sources(originals), progress=False))
    for i in range(len(reread)):
        assert np.array_equal(regenerated[i], images[i])
    src = originals.set_index("path")
    for row in table.itertuples():  # every copy traces to an original of its class
        assert src.loc[row.source, "label"] == row.label


def test_materialize_leaves_nothing_on_failure(originals, synth_release, tmp_path, monkeypatch):
    plan = plan_augmentation(originals, SMALL)
    calls = {"n": 0}
    real = augment.apply_transform

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 10:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(augment, "apply_transform", flaky)
    with pytest.raises(OSError):
        materialize(plan, _sources(originals), tmp_path / "out" / "augmented", progress=False)
    assert list((tmp_path / "out").iterdir()) == []
