"""The layered input check on synthetic images: each layer, the calibration, the order."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lungct_utils import evaluate
from lungct_utils.app import ood


def _phantom(rng, size=224, contrast=1.0, offset=0.0):
    """A CT-like slice: dark surround, bright body ellipse, two dark lungs, some texture."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    body = ((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.32) ** 2 < 1
    lungs = (((xx - 0.33) / 0.12) ** 2 + ((yy - 0.5) / 0.2) ** 2 < 1) | (
        ((xx - 0.67) / 0.12) ** 2 + ((yy - 0.5) / 0.2) ** 2 < 1
    )
    grey = np.where(body, 170.0, 5.0) - 140 * lungs + rng.normal(0, 6, (size, size))
    grey = grey * contrast + offset
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_colour_layer_flags_colour_pictures_only():
    grey = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (200, 1))
    assert ood.colour_reason(Image.fromarray(grey).convert("RGB")) == ""
    buf = io.BytesIO()  # a grey picture saved as a colour JPEG keeps a little chroma noise
    Image.fromarray(grey).convert("RGB").save(buf, format="JPEG", quality=70)
    assert ood.colour_reason(Image.open(buf)) == ""
    colour = np.stack([grey, grey[::-1], np.full_like(grey, 90)], axis=2)
    assert ood.colour_reason(Image.fromarray(colour)).startswith("colour image (")
    dot = np.stack([grey] * 3, axis=2).copy()
    dot[:10, :10] = (255, 0, 0)  # a small coloured mark (0.2% of pixels) is not a colour picture
    assert ood.colour_reason(Image.fromarray(dot)) == ""


def test_layout_ignores_contrast_but_not_inversion():
    rng = np.random.default_rng(0)
    ct = _phantom(rng)
    dimmer = _phantom(np.random.default_rng(0), contrast=0.3, offset=60)
    a, b, inv = ood.layouts(np.stack([ct, dimmer, 255 - ct]))
    assert np.abs(a - b).max() < 0.05
    assert np.sqrt(((a - inv) ** 2).mean()) > 0.5
    assert ood.layouts(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 256)


def test_layout_distance_is_the_nearest_reference():
    rng = np.random.default_rng(1)
    ref, query = rng.random((30, 256)), rng.random((7, 256))
    brute = np.sqrt(((query[:, None] - ref[None]) ** 2).mean(axis=2).min(axis=1))
    np.testing.assert_allclose(ood.layout_distance(query, ref, chunk=3), brute, atol=1e-5)
    assert ood.layout_distance(ref[:4], ref).max() < 1e-3


def _training_set(rng, n_cases=30, per_case=4):
    images = np.stack([_phantom(rng) for _ in range(n_cases * per_case)])
    feats = rng.normal(size=(len(images), 16)).astype(np.float32)
    groups = np.repeat(np.arange(n_cases), per_case)
    return images, feats, groups % 3, groups


def test_fit_calibrates_on_held_out_cases():
    rng = np.random.default_rng(2)
    images, feats, y, groups = _training_set(rng)
    layout = ood.layouts(images)
    ref = ood.fit(feats, layout, y, groups, layout_rate=0.1, feature_rate=0.2, seed=3)
    held = ood.held_out_distances(feats, layout, y, groups, seed=3)
    assert float(ref["threshold"]) == pytest.approx(np.quantile(held["feature_distance"], 0.8))
    assert float(ref["layout_threshold"]) == pytest.approx(
        np.quantile(held["layout_distance"], 0.9)
    )
    # held out: never the own case; every fold holds whole cases
    assert held.groupby(groups)["fold"].nunique().max() == 1
    in_sample = ood.distances(feats, layout, ref)
    assert in_sample.to_numpy().max() < 1e-3 < held["feature_distance"].min()
    for bad in (0, 0.5, -1):
        with pytest.raises(ValueError, match=repr(bad)):
            ood.fit(feats, layout, y, groups, layout_rate=bad)
        with pytest.raises(ValueError, match=f"feature_rate must be in .*{bad!r}"):
            ood.fit(feats, layout, y, groups, feature_rate=bad)
    with pytest.raises(ValueError, match="as many layouts"):
        ood.reference(feats, layout[:5])


def test_layers_fire_in_order_and_name_themselves():
    rng = np.random.default_rng(4)
    images, feats, y, groups = _training_set(rng)
    ref = ood.fit(feats, ood.layouts(images), y, groups, layout_rate=0.05, feature_rate=0.05)
    ct = Image.fromarray(_phantom(rng))
    photo = Image.fromarray(np.stack([np.full((224, 224), 40, np.uint8)] * 3, axis=2))
    tiny = ct.resize((60, 60))
    candidates = [ct, ct, photo, tiny, Image.fromarray(255 - np.asarray(ct))]
    dist = pd.DataFrame(
        {
            "layout_distance": [0.0, 0.0, 9.0, 9.0, 9.0],
            "feature_distance": [0.0, 9.0, 9.0, 9.0, 0.0],
        }
    )
    why = ood.reasons(candidates, dist, ref)
    assert why[0] == ""
    assert why[1].startswith("far from training slices (feature distance 9.00 >")
    assert why[2] == "blank image"  # content wins over every distance
    assert why[3] == "too small: 60x60"
    assert why[4].startswith("not a CT layout (distance 9.00 >")
    assert [ood.layer(w) for w in why] == ["", "features", "content", "content", "layout"]
    assert ood.reasons(candidates, None, None)[:3] == ["", "", "blank image"]


def test_reference_round_trips(tmp_path):
    rng = np.random.default_rng(5)
    images, feats, y, groups = _training_set(rng, n_cases=12)
    ref = ood.fit(feats, ood.layouts(images), y, groups)
    path = ood.save(ref, ood.path_for(tmp_path / "run.keras"))
    assert path.name == "run.ood.npz"
    back = ood.load(path)
    keys = {"mean", "reference", "layout_reference", "threshold", "layout_threshold"}
    keys |= {"layout_rate", "feature_rate"}
    assert set(back) == keys
    np.testing.assert_array_equal(back["layout_reference"], ref["layout_reference"])


def test_rate_interval_resamples_cases_and_is_exact_for_independent_images():
    flags = [np.array([1, 1, 0, 0, 0, 0, 0, 0], bool), np.array([1, 0, 0, 0, 0, 0, 0, 0], bool)]
    units = [np.repeat(np.arange(4), 2), np.repeat(np.arange(4), 2)]
    out = evaluate.rate_interval(flags, units, n_boot=500, seed=0)
    assert out["rate"] == pytest.approx((2 / 8 + 1 / 8) / 2)
    assert (out["flagged"], out["rows"], out["units"]) == (3, 16, 4)
    assert out["method"] == "cluster bootstrap"
    lo, hi = out["ci95"]
    assert lo == 0 and 0.25 <= hi <= 0.5  # one flagged case of four can be drawn up to 2x
    # 50 of 50 independent images: not a point, the exact interval [0.929, 1]
    every = evaluate.rate_interval([np.ones(100, bool)], [np.arange(100) % 50], independent=True)
    assert every["method"] == "exact" and every["rate"] == 1.0
    assert every["ci95"][0] == pytest.approx(0.9289, abs=1e-3) and every["ci95"][1] == 1.0
    assert every["units"] == 50  # two folds scored each of the 50 images: 50 units, not 100
    with pytest.raises(ValueError, match="non-empty"):
        evaluate.rate_interval([np.array([], bool)], [np.array([])])


def test_study_probabilities_is_the_case_rule():
    rng = np.random.default_rng(6)
    probs = rng.dirichlet(np.ones(3), size=9)
    _, case_probs, _ = evaluate.case_predictions(np.zeros(9, int), probs, np.zeros(9))
    np.testing.assert_allclose(evaluate.study_probabilities(probs), case_probs[0])
    confident = np.array([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.4, 0.3, 0.3]])
    assert evaluate.study_probabilities(confident).argmax() == 0
    with pytest.raises(ValueError, match=r"\(0, 3\)"):
        evaluate.study_probabilities(np.zeros((0, 3)))


def test_threshold_reflects_other_patients_not_near_copies_in_the_own_case():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(20, 64))
    x = np.repeat(centres, 5, axis=0) + 0.01 * rng.normal(size=(100, 64))
    layout = np.repeat(rng.random((20, 256)), 5, axis=0)
    ref = ood.fit(x, layout, np.arange(100) % 3, np.repeat(np.arange(20), 5))
    assert ref["threshold"] > 0.5 and ref["layout_threshold"] > 0.2
    assert ood.distances(x[:5], layout[:5], ref).to_numpy().max() < 0.01
