"""The layered input check on synthetic images: each layer, the calibration, the order."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lungct_utils import evaluate, input_check


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
    assert input_check.colour_reason(Image.fromarray(grey).convert("RGB")) == ""
    buf = io.BytesIO()  # a grey picture saved as a colour JPEG keeps a little chroma noise
    Image.fromarray(grey).convert("RGB").save(buf, format="JPEG", quality=70)
    assert input_check.colour_reason(Image.open(buf)) == ""
    colour = np.stack([grey, grey[::-1], np.full_like(grey, 90)], axis=2)
    assert input_check.colour_reason(Image.fromarray(colour)).startswith("colour image (")
    dot = np.stack([grey] * 3, axis=2).copy()
    dot[:10, :10] = (255, 0, 0)  # a small coloured mark (0.2% of pixels) is not a colour picture
    assert input_check.colour_reason(Image.fromarray(dot)) == ""


def test_layout_ignores_contrast_but_not_inversion():
    rng = np.random.default_rng(0)
    ct = _phantom(rng)
    dimmer = _phantom(np.random.default_rng(0), contrast=0.3, offset=60)
    a, b, inv = input_check.layouts(np.stack([ct, dimmer, 255 - ct]))
    assert np.abs(a - b).max() < 0.05
    assert np.sqrt(((a - inv) ** 2).mean()) > 0.5
    assert input_check.layouts(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 256)


def test_layout_distance_is_the_nearest_reference():
    rng = np.random.default_rng(1)
    ref, query = rng.random((30, 256)), rng.random((7, 256))
    brute = np.sqrt(((query[:, None] - ref[None]) ** 2).mean(axis=2).min(axis=1))
    np.testing.assert_allclose(input_check.layout_distance(query, ref, chunk=3), brute, atol=1e-5)
    assert input_check.layout_distance(ref[:4], ref).max() < 1e-3


def _training_set(rng, n_cases=30, per_case=4):
    images = np.stack([_phantom(rng) for _ in range(n_cases * per_case)])
    feats = rng.normal(size=(len(images), 16)).astype(np.float32)
    groups = np.repeat(np.arange(n_cases), per_case)
    return images, feats, groups % 3, groups


def test_fit_calibrates_on_held_out_cases():
    rng = np.random.default_rng(2)
    images, feats, y, groups = _training_set(rng)
    layout = input_check.layouts(images)
    ref = input_check.fit(feats, layout, y, groups, layout_rate=0.1, feature_rate=0.2, seed=3)
    held = input_check.held_out_distances(feats, layout, y, groups, seed=3)
    assert float(ref["threshold"]) == pytest.approx(np.quantile(held["feature_distance"], 0.8))
    assert float(ref["layout_threshold"]) == pytest.approx(
        np.quantile(held["layout_distance"], 0.9)
    )
    # held out: never the own case; every fold holds whole cases
    assert held.groupby(groups)["fold"].nunique().max() == 1
    in_sample = input_check.distances(feats, layout, ref)
    assert in_sample["ct_score"].isna().all()  # no ct layer without fit_ct
    distance = in_sample[["layout_distance", "feature_distance"]].to_numpy()
    assert distance.max() < 1e-3 < held["feature_distance"].min()
    for bad in (0, 0.5, -1):
        with pytest.raises(ValueError, match=repr(bad)):
            input_check.fit(feats, layout, y, groups, layout_rate=bad)
        with pytest.raises(ValueError, match=f"feature_rate must be in .*{bad!r}"):
            input_check.fit(feats, layout, y, groups, feature_rate=bad)
    with pytest.raises(ValueError, match="as many layouts"):
        input_check.reference(feats, layout[:5])


def test_layers_fire_in_order_and_name_themselves():
    rng = np.random.default_rng(4)
    images, feats, y, groups = _training_set(rng)
    ref = input_check.fit(
        feats, input_check.layouts(images), y, groups, layout_rate=0.05, feature_rate=0.05
    )
    ct = Image.fromarray(_phantom(rng))
    photo = Image.fromarray(np.stack([np.full((224, 224), 40, np.uint8)] * 3, axis=2))
    tiny = ct.resize((60, 60))
    candidates = [ct, ct, photo, tiny, Image.fromarray(255 - np.asarray(ct))]
    dist = pd.DataFrame(
        {
            "ct_score": [np.nan] * 5,
            "layout_distance": [0.0, 0.0, 9.0, 9.0, 9.0],
            "feature_distance": [0.0, 9.0, 9.0, 9.0, 0.0],
        }
    )
    why = input_check.reasons(candidates, dist, ref)
    assert why[0] == ""
    assert why[1].startswith("far from training slices (feature distance 9.00 >")
    assert why[2] == "blank image"  # content wins over every distance
    assert why[3] == "too small: 60x60"
    assert why[4].startswith("unlike the training slices' layout (distance 9.00 >")
    assert [input_check.layer(w) for w in why] == ["", "features", "content", "content", "layout"]
    verdicts = ["ok", "ct_unlike_training", "not_ct", "not_ct", "ct_unlike_training"]
    assert [input_check.verdict(w) for w in why] == verdicts
    assert input_check.reasons(candidates, None, None)[:3] == ["", "", "blank image"]


def test_reference_round_trips(tmp_path):
    rng = np.random.default_rng(5)
    images, feats, y, groups = _training_set(rng, n_cases=12)
    ref = input_check.fit(feats, input_check.layouts(images), y, groups)
    path = input_check.save(ref, input_check.path_for(tmp_path / "run.keras"))
    assert path.name == "run.ood.npz"
    back = input_check.load(path)
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
    ref = input_check.fit(x, layout, np.arange(100) % 3, np.repeat(np.arange(20), 5))
    assert ref["threshold"] > 0.5 and ref["layout_threshold"] > 0.2
    near = input_check.distances(x[:5], layout[:5], ref)[["layout_distance", "feature_distance"]]
    assert near.to_numpy().max() < 0.01


def _ct_data(seed=0, n_groups=20, per_group=3, n_items=15, views=2, dim=6):
    """Gaussian features: CT rows (cases of three slices) around one mean, non-CT around another."""
    rng = np.random.default_rng(seed)
    ct = rng.normal(size=(n_groups * per_group, dim))
    ct[:, 0] += 2.5
    groups = np.repeat(np.arange(n_groups), per_group)
    non_ct = rng.normal(size=(n_items * views, dim))
    non_ct[:, 0] -= 2.5
    return ct, groups % 3, groups, non_ct, np.tile(np.arange(n_items), views)


def test_fit_ct_threshold_is_the_rate_quantile_of_held_out_ct_scores():
    ct, y, groups, non_ct, items = _ct_data()
    out = input_check.fit_ct(ct, y, groups, non_ct, items, rate=0.1, seed=2)
    held, held_non = input_check.held_out_ct_scores(ct, y, groups, non_ct, items, seed=2)
    assert out["ct_threshold"] == pytest.approx(np.quantile(held, 0.1))
    assert out["ct_rate"] == pytest.approx(0.1)
    assert held.shape == (len(ct),) and held_non.shape == (len(non_ct),)
    assert ((held >= 0) & (held <= 1)).all() and ((held_non >= 0) & (held_non <= 1)).all()
    # the classes are apart: held-out CT rows score high, non-CT rows low
    assert np.median(held) > 0.8 > 0.2 > np.median(held_non)
    assert np.mean(held < out["ct_threshold"]) <= 0.1 + 1 / len(held)
    # another rate, another quantile of the same held-out scores
    low = input_check.fit_ct(ct, y, groups, non_ct, items, rate=0.02, seed=2)
    assert low["ct_threshold"] == pytest.approx(np.quantile(held, 0.02))
    assert low["ct_threshold"] <= out["ct_threshold"]


def test_ct_scores_are_the_standardised_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ct, y, groups, non_ct, items = _ct_data(seed=1)
    out = input_check.fit_ct(ct, y, groups, non_ct, items)
    x = np.vstack([ct, non_ct])
    target = np.r_[np.ones(len(ct)), np.zeros(len(non_ct))]
    clf = LogisticRegression(C=input_check.CT_C, class_weight="balanced", max_iter=5000)
    pipe = make_pipeline(StandardScaler(), clf).fit(x, target)
    query = np.random.default_rng(9).normal(size=(25, ct.shape[1])) * 2
    np.testing.assert_allclose(
        input_check.ct_scores(query, out), pipe.predict_proba(query)[:, 1], rtol=1e-6, atol=1e-9
    )
    # extreme logits do not overflow
    far = input_check.ct_scores(np.array([[1e6] + [0] * 5, [-1e6] + [0] * 5]), out)
    assert far[0] == pytest.approx(1.0) and far[1] == pytest.approx(0.0)


def test_held_out_ct_scores_come_from_a_classifier_that_never_saw_the_case():
    from lungct_utils.splits import group_kfold

    ct, y, groups, non_ct, items = _ct_data()
    base, _ = input_check.held_out_ct_scores(ct, y, groups, non_ct, items)
    # the other slices of row 0's case change: its score does not (they are in its test fold)
    moved = ct.copy()
    moved[1:3] += 5.0
    again, _ = input_check.held_out_ct_scores(moved, y, groups, non_ct, items)
    assert again[0] == pytest.approx(base[0], abs=1e-12)
    assert not np.allclose(again[3:], base[3:])  # the other folds trained on the moved rows
    # an odd slice (non-CT-like, with a feature no other row has) and one copy of it:
    odd = np.zeros(ct.shape[1])
    odd[0], odd[-1] = -2.5, 8.0
    ct[0] = odd
    same_case, other_case = ct.copy(), ct.copy()
    same_case[1] = odd  # in its own case: never trained on while scoring row 0
    fold = group_kfold(y, groups, input_check.CALIBRATION_FOLDS, 0)
    other = next(i for i in range(len(ct)) if fold[i] != fold[0])
    other_case[other] = odd  # in another fold's case: trained on while scoring row 0
    held_same, _ = input_check.held_out_ct_scores(same_case, y, groups, non_ct, items)
    held_other, _ = input_check.held_out_ct_scores(other_case, y, groups, non_ct, items)
    assert held_same[0] < 0.5 < held_other[0]


def test_held_out_ct_scores_keep_the_views_of_a_non_ct_item_together():
    ct, y, groups, non_ct, items = _ct_data()
    _, base = input_check.held_out_ct_scores(ct, y, groups, non_ct, items)
    moved = non_ct.copy()
    moved[items == 4] += np.r_[5.0, np.zeros(non_ct.shape[1] - 1)]
    first = np.flatnonzero(items == 4)[0]
    moved[first] = non_ct[first]  # one view kept: the other view of its item moved
    _, again = input_check.held_out_ct_scores(ct, y, groups, moved, items)
    assert again[first] == pytest.approx(base[first], abs=1e-12)


@pytest.mark.parametrize("rate", [0, 0.5, -0.1, 1.0])
def test_fit_ct_refuses_a_bad_rate(rate):
    ct, y, groups, non_ct, items = _ct_data()
    with pytest.raises(ValueError, match=f"rate must be in .*{rate!r}"):
        input_check.fit_ct(ct, y, groups, non_ct, items, rate=rate)


def test_fit_ct_refuses_mismatched_lengths():
    ct, y, groups, non_ct, items = _ct_data()
    with pytest.raises(ValueError, match="60 CT rows for 60 labels and 59 groups"):
        input_check.fit_ct(ct, y, groups[:-1], non_ct, items)
    with pytest.raises(ValueError, match="60 CT rows for 59 labels and 60 groups"):
        input_check.fit_ct(ct, y[:-1], groups, non_ct, items)
    with pytest.raises(ValueError, match="30 non-CT rows for 29 items"):
        input_check.fit_ct(ct, y, groups, non_ct, items[:-1])
    with pytest.raises(ValueError, match="0 non-CT rows"):
        input_check.fit_ct(ct, y, groups, non_ct[:0], items[:0])


CT_REF = {"ct_threshold": 0.5, "layout_threshold": 0.3, "threshold": 0.4}


def _dist(rows):
    return pd.DataFrame(rows, columns=list(input_check.CHECK_COLUMNS))


def test_each_layer_gives_its_verdict():
    first = ["", "", "", "", "", "", "colour image (40% of pixels coloured)", "too small: 60x60"]
    dist = _dist(
        [
            (0.9, 0.1, 0.1),  # passes every layer
            (0.2, 0.1, 0.1),  # not CT
            (0.2, 0.9, 0.9),  # not CT first, though unlike on both distances
            (0.9, 0.9, 0.9),  # layout first
            (0.9, 0.1, 0.9),  # features
            (0.5, 0.3, 0.4),  # at every threshold: passes (the comparisons are strict)
            (0.1, 0.9, 0.9),  # colour before ct
            (0.1, 0.9, 0.9),  # content before ct
        ]
    )
    why = input_check.distance_reasons(first, dist, CT_REF)
    assert why[0] == "" and why[5] == ""
    assert why[1] == "not a CT slice (CT score 0.200 < 0.500)"
    assert why[2].startswith("not a CT slice")
    assert why[3] == "unlike the training slices' layout (distance 0.90 > 0.30)"
    assert why[4] == "far from training slices (feature distance 0.90 > 0.40)"
    assert why[6:] == first[6:]
    layers = [input_check.layer(w) for w in why]
    assert layers == ["", "ct", "ct", "layout", "features", "", "colour", "content"]
    verdicts = [input_check.verdict(w) for w in why]
    assert verdicts == [
        "ok",
        "not_ct",
        "not_ct",
        "ct_unlike_training",
        "ct_unlike_training",
        "ok",
        "not_ct",
        "not_ct",
    ]
    assert set(verdicts) <= set(input_check.VERDICTS)
    assert set(input_check.NOT_CT_LAYERS) | set(input_check.UNLIKE_LAYERS) == set(
        input_check.LAYERS
    )
    assert not set(input_check.NOT_CT_LAYERS) & set(input_check.UNLIKE_LAYERS)
    for name in input_check.LAYERS:
        assert (name in input_check.NOT_CT_LAYERS) == (name in ("content", "colour", "ct"))
    assert input_check.distance_reasons(first, None, None) == first


def test_reasons_read_the_images_first():
    rng = np.random.default_rng(7)
    ct = Image.fromarray(_phantom(rng))
    grey = _phantom(rng)[..., 0]
    colour = Image.fromarray(np.stack([grey, grey[::-1], np.full_like(grey, 90)], axis=2))
    dist = _dist([(0.1, 0.0, 0.0), (0.9, 0.0, 0.0), (0.1, 0.0, 0.0)])
    why = input_check.reasons([ct, ct, colour], dist, CT_REF)
    assert why[0].startswith("not a CT slice") and why[1] == ""
    assert input_check.layer(why[2]) == "colour"


def test_a_reference_without_the_ct_layer_never_refuses_by_it():
    rng = np.random.default_rng(8)
    images, feats, y, groups = _training_set(rng, n_cases=12)
    ref = input_check.fit(feats, input_check.layouts(images), y, groups)
    assert "ct_threshold" not in ref
    dist = input_check.distances(feats[:6], input_check.layouts(images[:6]), ref)
    assert list(dist.columns) == list(input_check.CHECK_COLUMNS)
    assert dist["ct_score"].isna().all()
    why = input_check.distance_reasons([""] * 6, dist, ref)
    assert all(input_check.layer(w) != "ct" for w in why)
    planted = _dist([(np.nan, 0.0, 0.0), (np.nan, 0.9, 0.0), (0.0, 0.0, 0.0)])
    no_ct = {k: v for k, v in CT_REF.items() if k != "ct_threshold"}
    why = input_check.distance_reasons([""] * 3, planted, no_ct)
    assert [input_check.verdict(w) for w in why] == ["ok", "ct_unlike_training", "ok"]


def test_distances_score_the_ct_layer_of_a_merged_reference():
    rng = np.random.default_rng(9)
    images, feats, y, groups = _training_set(rng, n_cases=12)
    ref = input_check.fit(feats, input_check.layouts(images), y, groups)
    non_ct = rng.normal(size=(20, feats.shape[1])) + 2.0
    ref.update(input_check.fit_ct(feats, y, groups, non_ct, np.arange(20) % 10))
    dist = input_check.distances(feats[:5], input_check.layouts(images[:5]), ref)
    np.testing.assert_allclose(dist["ct_score"], input_check.ct_scores(feats[:5], ref), rtol=1e-6)
    assert dist["ct_score"].notna().all()


def test_an_unknown_reason_is_an_error_not_a_refusal():
    for old in ("not a CT layout (distance 0.50 > 0.30)", "something else"):
        with pytest.raises(ValueError, match="not a reason of this input check"):
            input_check.verdict(old)
    assert input_check.layer("pure noise") == input_check.layer("too small: 60x60") == "content"


def test_non_ct_design_gives_three_rows_per_design_item_of_the_corpus():
    from lungct_utils import corpus

    ct = np.stack([_phantom(np.random.default_rng(k)) for k in range(corpus.MIN_CT_IMAGES)])
    design = [i for i in corpus.non_ct_corpus(ct) if i.part == "design"]
    rows, items = input_check.non_ct_design(ct, 0, size=64)
    assert rows.shape == (3 * len(design), 64, 64, 3) and rows.dtype == np.uint8
    assert items.tolist() == list(range(len(design))) * 3
    n = len(design)
    assert np.array_equal(rows[n : 2 * n], rows[:n, :, ::-1])  # each item's mirror image


def test_any_seed_of_the_input_check_uses_the_one_corpus():
    from lungct_utils import corpus

    ct = np.stack([_phantom(np.random.default_rng(k)) for k in range(corpus.MIN_CT_IMAGES)])
    rows, items = input_check.non_ct_design(ct, 0, size=64)
    n = len(rows) // 3
    for seed in (7, 42):
        other, other_items = input_check.non_ct_design(ct, seed, size=64)
        assert np.array_equal(other_items, items)
        # the items and their mirrors are the same; only the simulated-shift views follow the seed
        assert np.array_equal(other[: 2 * n], rows[: 2 * n])
        assert not np.array_equal(other[2 * n :], rows[2 * n :])
