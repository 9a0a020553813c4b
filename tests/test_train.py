"""The head-on-cached-features shortcut trains the paper's model exactly."""

import numpy as np
import pytest

from lungct_utils.config import PAPER
from lungct_utils.features import KerasBackbone, extract
from lungct_utils.model import HEAD_LAYERS, assemble, build_head, build_model, copy_head_weights
from lungct_utils.preprocess import one_hot, scale
from lungct_utils.runtime import setup
from lungct_utils.train import TrainResult, fit, predict_proba, train_head


class ScriptedModel:
    """Replays validation accuracies to check the early-stopping rule alone."""

    def __init__(self, val_accs):
        self.val_accs, self.calls, self.weights = list(val_accs), 0, 0

    def fit(self, x, y, **kw):
        self.calls += 1
        self.weights = self.calls
        return type("H", (), {"history": {"loss": [1.0], "accuracy": [0.5]}})()

    def evaluate(self, x, y, **kw):
        return {"loss": 1.0, "accuracy": self.val_accs[self.calls - 1]}

    def get_weights(self):
        return self.weights

    def set_weights(self, w):
        self.weights = w


def _xy(n=10):
    return np.zeros((n, 2)), one_hot(["benign"] * n)


def test_early_stopping_follows_keras_semantics():
    x, y = _xy()
    accs = [0.5, 0.6, 0.6, 0.55, 0.61, 0.6, 0.6, 0.6, 0.6, 0.6, 0.9]
    model = ScriptedModel(accs)
    result = fit(model, x, y, x, y, PAPER.with_overrides(patience=5), progress=False)
    assert (result.epochs, result.best_epoch) == (10, 5)  # 5 epochs after the best at 5
    assert model.weights == 10  # restore_best_weights is off, as in the paper
    model = ScriptedModel(accs)
    cfg = PAPER.with_overrides(patience=5, restore_best_weights=True)
    assert fit(model, x, y, x, y, cfg, progress=False).epochs == 10 and model.weights == 5
    model = ScriptedModel([0.1 * i for i in range(1, 60)])
    assert fit(model, x, y, x, y, PAPER, progress=False).epochs == 50  # the epoch cap


def test_fit_rejects_mismatched_inputs():
    x, y = _xy()
    with pytest.raises(ValueError, match="10 inputs vs 9 labels"):
        fit(ScriptedModel([1]), x, y[:9], x, y, PAPER)


@pytest.mark.weights
@pytest.mark.data
def test_head_on_features_equals_end_to_end_training(imagenet_weights, real_images):
    images, labels = real_images
    y = one_hot(labels)
    cfg = PAPER.with_overrides(epochs=2)
    setup(cfg.seed)
    model = build_model(cfg)
    head = build_head(cfg)
    copy_head_weights(model, head)  # identical initial head weights
    feats = extract(images, KerasBackbone(imagenet_weights), "paper", progress=False)
    x = scale(images)
    e2e = fit(model, x[:64], y[:64], x[64:], y[64:], cfg, progress=False)
    short = fit(head, feats[:64], y[:64], feats[64:], y[64:], cfg, progress=False)
    for name in HEAD_LAYERS:
        for a, b in zip(
            model.get_layer(name).get_weights(), head.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    np.testing.assert_allclose(e2e.history["loss"], short.history["loss"], rtol=1e-4)
    assert not np.allclose(
        model.get_layer("predictions").get_weights()[0],
        build_head(cfg).get_layer("predictions").get_weights()[0],
    )
    np.testing.assert_allclose(
        predict_proba(model, x), predict_proba(head, feats), rtol=0, atol=1e-4
    )


@pytest.mark.weights
@pytest.mark.data
def test_assembled_model_saved_and_reloaded_predicts_like_the_head(
    imagenet_weights, real_images, tmp_path
):
    import keras

    from lungct_utils.model import save_model

    images, labels = real_images
    feats = extract(images, KerasBackbone(imagenet_weights), "paper", progress=False)
    roles = np.array(["train"] * 60 + ["val"] * 20)
    result = train_head(feats, labels, roles, PAPER.with_overrides(epochs=3), progress=False)
    path = save_model(assemble(result.model, PAPER), tmp_path / "run.keras")
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        predict_proba(reloaded, scale(images)),
        predict_proba(result.model, feats),
        rtol=0,
        atol=1e-4,
    )


@pytest.mark.weights
@pytest.mark.data
def test_same_seed_same_history_and_predictions(imagenet_weights, real_images):
    images, labels = real_images
    feats = extract(images, KerasBackbone(imagenet_weights), "paper", progress=False)
    roles = np.array(["train"] * 60 + ["val"] * 20)
    cfg = PAPER.with_overrides(epochs=6)
    a = train_head(feats, labels, roles, cfg, progress=False)
    b = train_head(feats, labels, roles, cfg, progress=False)
    assert isinstance(a, TrainResult) and a.history == b.history
    np.testing.assert_array_equal(predict_proba(a.model, feats), predict_proba(b.model, feats))
    c = train_head(feats, labels, roles, cfg.with_overrides(seed=cfg.seed + 1), progress=False)
    assert c.history != a.history
