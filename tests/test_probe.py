"""The linear probe, its decision rule, and nested selection that never sees outer test data."""

import json

import numpy as np
import pytest

from lungct_utils import config, probe
from lungct_utils.app import cli


@pytest.fixture(scope="module")
def data():
    """300 slices of 60 patients: class signal plus a per-patient offset, three views each."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), 5)
    y = np.repeat(rng.integers(0, 3, 60), 5)
    centres = rng.normal(0, 1, (3, 32))
    x = centres[y] + rng.normal(0, 1.5, (60, 32))[groups] + rng.normal(0, 1, (300, 32))
    views = [x + rng.normal(0, 0.3, x.shape) for _ in range(3)]
    return x, views, y, groups


def test_prior_multiplies_the_benign_probability():
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    out = probe.with_prior(probs, 2.0)
    np.testing.assert_allclose(out[0], np.array([0.4, 0.3, 0.5]) / 1.2)
    np.testing.assert_allclose(probe.with_prior(probs, 1.0), probs)
    with pytest.raises(ValueError, match="prior must be > 0, got 0"):
        probe.with_prior(probs, 0)
    with pytest.raises(ValueError, match="C must be > 0, got -1"):
        probe.fit_probe(np.zeros((3, 2)), np.array([0, 1, 2]), -1)


def test_tta_averages_features(data):
    x, views, y, _ = data
    model = probe.fit_probe(x, y, 0.1)
    np.testing.assert_allclose(
        probe.predict(model, x, views), probe.predict(model, np.mean([x, *views], 0))
    )


def test_inner_folds_keep_patients_whole(data):
    _, _, y, groups = data
    for train, test in probe.inner_folds(y, groups, seed=1):
        assert not set(groups[train]) & set(groups[test])


def test_best_setting_tunes_the_prior_only_for_recipes_that_do():
    import pandas as pd

    scores = pd.DataFrame([
        {"C": 0.01, "tta": False, "prior": 1.0, "macro_f1": 0.6},
        {"C": 0.01, "tta": False, "prior": 2.0, "macro_f1": 0.7},
        {"C": 0.001, "tta": False, "prior": 1.0, "macro_f1": 0.6},
    ])  # fmt: skip
    plain = probe.best_setting(scores, probe.Recipe("p"))
    assert (plain["C"], plain["prior"]) == (0.001, 1.0)  # a tie goes to the stronger penalty
    tuned = probe.best_setting(scores, probe.Recipe("p", prior=True))
    assert (tuned["C"], tuned["prior"], tuned["inner_macro_f1"]) == (0.01, 2.0, 0.7)


def test_selection_does_not_depend_on_outer_test_data(data):
    x, views, y, groups = data
    train = np.flatnonzero(groups < 48)
    test = np.flatnonzero(groups >= 48)
    a = probe.select(x, views, y, groups, train, seed=3)
    # plant a leak: the outer test rows get other labels and features that give them away
    y_leak, x_leak = y.copy(), x.copy()
    y_leak[test] = (y[test] + 1) % 3
    x_leak[test] += 100 * np.eye(3)[y_leak[test]] @ np.ones((3, 32))
    views_leak = [v.copy() for v in views]
    b = probe.select(x_leak, views_leak, y_leak, groups, train, seed=3)
    assert a["settings"] == b["settings"] and a["selected"] == b["selected"]
    for name in a["settings"]:
        np.testing.assert_array_equal(probe.apply(a, name, x, views, test),
                                      probe.apply(b, name, x, views, test))  # fmt: skip


def test_selection_beats_chance_on_new_patients(data):
    x, views, y, groups = data
    train, test = np.flatnonzero(groups < 48), np.flatnonzero(groups >= 48)
    sel = probe.select(x, views, y, groups, train, seed=0)
    assert sel["selected"] in {r.name for r in probe.RECIPES}
    probs = probe.apply(sel, sel["selected"], x, views, test)
    assert np.mean(probs.argmax(1) == y[test]) > 0.6


def test_keras_head_equals_the_probe_with_its_prior(data):
    x, _, y, _ = data
    model = probe.fit_probe(x, y, 0.05)
    head = probe.keras_head(model, prior=1.7)
    expected = probe.with_prior(probe.predict(model, x), 1.7)
    np.testing.assert_allclose(np.asarray(head(x.astype("f4"))), expected, atol=1e-5)


def test_goal_check_reports_deficits_against_goal_and_peer():
    goal = probe.goal_check({"macro_f1": 0.70, "recall_benign": 0.45})
    assert goal["macro_f1"]["reached"] is False
    assert goal["macro_f1"]["deficit"] == pytest.approx(0.15)
    assert "differs" in goal["macro_f1"]["peer_grouping"]  # shown, never ranked against ours
    assert "ahead_of_peer" not in goal["macro_f1"]


def test_the_default_model_is_the_selected_one(tmp_path):
    assert config.DEFAULT_RUN == "beyond"
    parser = cli.build_parser()
    for command in (["predict", "x.png"], ["export"], ["deployment"]):
        assert parser.parse_args(command).model == str(config.model_path(config.DEFAULT_RUN))
    metrics = json.loads((config.REPORTS / "metrics.json").read_text())
    final = metrics["beyond"]["selected"]["final"]
    assert final["recipe"] in {r.name for r in probe.RECIPES}
    assert final["selection"] == "nested"
    card = (config.REPORTS / "MODEL_CARD.md").read_text()
    assert final["recipe"] in card and f"models/{config.DEFAULT_RUN}.keras" in card


@pytest.mark.weights
@pytest.mark.data
def test_the_committed_final_recipe_is_what_selection_on_all_originals_gives(prepared):
    from lungct_utils import pipeline
    from lungct_utils.images import label_indices

    table = pipeline.read_table(prepared)
    scored = pipeline.read_splits("cases", prepared)["scored"].to_numpy()
    cfg = config.PAPER.with_overrides(preprocess="mobilenet_v2")
    release = pipeline.release_manifest(progress=False).set_index("path")
    order = release.index.get_indexer(table["source"][scored])
    images = pipeline.original_images(release.reset_index(), cfg, progress=False)[order]
    x, views = pipeline.view_features(images, cfg, progress=False)
    y, groups = label_indices(table["label"][scored]), table["case"].to_numpy()[scored]
    final = probe.select(x, views, y, groups, np.arange(len(y)), seed=config.PAPER.seed)
    committed = json.loads((config.REPORTS / "metrics.json").read_text())["beyond"]["selected"]
    assert final["selected"] == committed["final"]["recipe"]
    setting = final["settings"][final["selected"]]
    assert (setting["C"], setting["prior"]) == (
        committed["final"]["C"],
        committed["final"]["prior"],
    )


@pytest.mark.weights
def test_gradcam_and_the_ood_flag_work_on_a_probe_model(imagenet_weights, tmp_path):
    from PIL import Image

    from lungct_utils.app import gradcam, ood
    from lungct_utils.app.predict import Predictor
    from lungct_utils.model import assemble, save_model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(90, 1280)), np.repeat([0, 1, 2], 30)
    head = probe.keras_head(probe.fit_probe(x, y, 0.1), prior=2.0, name="beyond")
    path = save_model(assemble(head, config.PAPER), tmp_path / "beyond.keras")
    ood.save(ood.fit_by_group(x.astype("f4"), np.arange(90) // 3), ood.path_for(path))
    blob = np.outer(np.hanning(300), np.hanning(300)) * 200
    slices = [Image.fromarray((blob + k).astype(np.uint8)).convert("RGB") for k in range(2)]
    predictor = Predictor(path)
    probs, scores, why = predictor(slices)
    assert probs.shape == (2, 3) and scores.shape == (2,) and len(why) == 2
    cam = gradcam.heatmap(gradcam.grad_model(predictor.model), np.zeros((224, 224, 3), "f4"))
    assert cam.shape == (7, 7) and 0 <= cam.min() and cam.max() <= 1


def test_ood_threshold_treats_each_group_as_a_new_patient():
    from lungct_utils.app import ood

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(20, 64))
    x = np.repeat(centres, 5, axis=0) + 0.01 * rng.normal(size=(100, 64))
    by_group = ood.fit_by_group(x, np.repeat(np.arange(20), 5))
    # the own group's near-copies never set the threshold: it reflects other patients
    assert by_group["threshold"] > 0.5
    assert ood.score(x[:5], by_group).max() < 0.01
    with pytest.raises(ValueError, match="two groups"):
        ood.fit_by_group(x, np.zeros(100))
