"""The paper's schedule, the trainer, and their equality with end-to-end Keras training."""

import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import keras
import numpy as np
import pytest
import tensorflow as tf

from lungct_utils import crossval
from lungct_utils.config import PAPER, THREADS
from lungct_utils.features import KerasBackbone, extract
from lungct_utils.images import one_hot, scale
from lungct_utils.model import HEAD_LAYERS, assemble, build_head, build_model
from lungct_utils.train import (
    WORKER_THREADS,
    Trainer,
    TrainResult,
    class_weights,
    fit,
    predict_proba,
    setup,
    train_head,
    worker_trainer,
)

#: The trainer runs Keras' own loss and Adam update, so its results equal Keras' to float32
#: rounding in the order of sums (measured: weights within 1e-7, losses within 5e-7 relative,
#: accuracies exact); early stopping therefore stops at the same epoch.
TOLERANCE = 1e-6
#: Features from a separate backbone call differ from those inside the end-to-end model at
#: float32 rounding (convolutions batched differently); training carries that to the
#: weights (measured: within 3e-6).
END_TO_END_TOLERANCE = 1e-5
#: Fifteen noisy epochs (losses near 30) carry the rounding of oneDNN's and XLA's kernels
#: further: the weights agreed within 3e-8 on an AVX2 CPU and within 1.3e-6 on an AVX-512
#: one run with the AVX2 caps (their blocking still follows the cache sizes).
LONG_RUN_TOLERANCE = 1e-5


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


def _features(n=300, seed=0, noise=2.0):
    """Synthetic 1280-d features: a class mean plus noise (separable at the default noise)."""
    rng = np.random.default_rng(seed)
    labels = np.array(["benign", "malignant", "normal"])[rng.integers(0, 3, n)]
    centres = rng.normal(0, 1, (3, 1280)).astype("f4")
    x = centres[[["benign", "malignant", "normal"].index(c) for c in labels]]
    return (x + rng.normal(0, noise, (n, 1280))).astype("f4"), labels


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
    trainer = Trainer(PAPER.with_overrides(epochs=1))
    with pytest.raises(ValueError, match="3 sample weights for 10 inputs"):
        trainer.fit(x, y, x, y, np.ones(3))
    with pytest.raises(ValueError, match="got -1"):
        trainer.fit(x, y, x, y, seed=-1)
    with pytest.raises(ValueError, match="10 features, 10 labels, 9 roles"):
        trainer.fit_roles(x, ["benign"] * 10, ["train"] * 9)


def test_the_trainer_equals_keras_fit_on_features():
    x, labels = _features()
    y = one_hot(labels)
    cfg = PAPER.with_overrides(epochs=4, patience=10)
    trainer = Trainer(cfg)
    trainer.fit(x[:240], y[:240], x[240:], y[240:], seed=cfg.seed + 1)  # the next starts afresh
    setup(cfg.seed)
    slow = fit(build_head(cfg), x[:240], y[:240], x[240:], y[240:], cfg, progress=False)
    fast = trainer.fit(x[:240], y[:240], x[240:], y[240:])
    assert fast.model is trainer.model
    for key in slow.history:
        np.testing.assert_allclose(slow.history[key], fast.history[key], rtol=0, atol=TOLERANCE)
    for a, b in zip(slow.model.get_weights(), fast.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE)
    assert not np.allclose(fast.model.get_weights()[0], build_head(cfg).get_weights()[0])


def test_the_trainer_stops_at_the_same_epoch_as_keras_fit():
    x, labels = _features(noise=20.0)  # hard: validation accuracy rises, stalls and ties
    y = one_hot(labels)
    cfg = PAPER.with_overrides(epochs=15, patience=3)
    slow = fit(build_head(cfg), x[:240], y[:240], x[240:], y[240:], cfg, progress=False)
    fast = Trainer(cfg).fit(x[:240], y[:240], x[240:], y[240:])
    assert slow.epochs < cfg.epochs  # early stopping, not the cap, ended the run
    assert (fast.epochs, fast.best_epoch) == (slow.epochs, slow.best_epoch)
    for key in slow.history:  # losses reach 30 here: compared relative
        np.testing.assert_allclose(slow.history[key], fast.history[key], rtol=TOLERANCE)
    for a, b in zip(slow.model.get_weights(), fast.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=LONG_RUN_TOLERANCE)


def test_the_trainer_with_class_weights_equals_keras_fit():
    x, labels = _features(seed=1)
    y = one_hot(labels)
    weights = class_weights(labels[:240], "balanced")
    w = np.array([weights[c] for c in labels[:240]], "f4")
    cfg = PAPER.with_overrides(epochs=3, learning_rate=3e-3)  # another optimizer setting too
    slow = fit(build_head(cfg), x[:240], y[:240], x[240:], y[240:], cfg, False, w)
    fast = Trainer(cfg).fit(x[:240], y[:240], x[240:], y[240:], w)
    for key in slow.history:
        np.testing.assert_allclose(slow.history[key], fast.history[key], rtol=0, atol=TOLERANCE)
    for a, b in zip(slow.model.get_weights(), fast.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE)


def test_every_fit_of_a_trainer_starts_afresh():
    """A fit gives the same weights whatever the trainer trained before (initial weights,
    dropout seed state and optimizer state all reset), and the weights a fresh trainer gives."""
    x, labels = _features(seed=4)
    roles = np.array(["train"] * 200 + ["val"] * 50 + ["test"] * 50)
    cfg = PAPER.with_overrides(epochs=5, patience=10)
    trainer = Trainer(cfg)
    first = trainer.fit_fold(x, labels, roles, seed=7)
    weights = trainer.model.get_weights()
    other = trainer.fit_fold(x, labels, roles, seed=8, class_weight="balanced")
    again = trainer.fit_fold(x, labels, roles, seed=7)
    for a, b in zip(weights, trainer.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.probs, again.probs)
    np.testing.assert_array_equal(first.test, np.arange(250, 300))
    assert not np.array_equal(first.probs, other.probs)
    alone = Trainer(cfg.with_overrides(seed=7)).fit_fold(x, labels, roles)
    np.testing.assert_array_equal(first.probs, alone.probs)
    assert first.epochs == alone.epochs == 5


def test_class_weights_balance_the_classes():
    w = class_weights(["benign"] * 10 + ["malignant"] * 30 + ["normal"] * 20, "balanced")
    assert w == pytest.approx({"benign": 2.0, "malignant": 2 / 3, "normal": 1.0})
    assert class_weights(["benign"], None) is None
    with pytest.raises(ValueError, match="'inverse'"):
        class_weights(["benign"], "inverse")


def test_train_head_takes_a_head_function_from_the_caller():
    x, labels = _features()
    roles = np.array(["train"] * 240 + ["val"] * 60)

    def wide_head(cfg):
        return [
            keras.layers.Dense(32, activation="relu", name="wide"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]

    result = train_head(
        x, labels, roles, PAPER.with_overrides(epochs=3), head=wide_head, progress=False
    )
    assert [layer.name for layer in result.model.layers[1:]] == ["wide", "out"]
    assert result.model.name == "wide_head_head"
    linear = train_head(
        x, labels, roles, PAPER.with_overrides(epochs=3), head="linear", progress=False
    )
    assert linear.model.count_params() == 1280 * 3 + 3
    with pytest.raises(ValueError, match="'huge'"):
        train_head(x, labels, roles, PAPER, head="huge", progress=False)


def test_same_seed_same_history_and_predictions():
    x, labels = _features(seed=2)
    roles = np.array(["train"] * 240 + ["val"] * 60)
    cfg = PAPER.with_overrides(epochs=6)
    a = train_head(x, labels, roles, cfg, progress=False)
    b = train_head(x, labels, roles, cfg, progress=False)
    assert isinstance(a, TrainResult) and a.history == b.history
    np.testing.assert_array_equal(predict_proba(a.model, x), predict_proba(b.model, x))
    c = train_head(x, labels, roles, cfg.with_overrides(seed=cfg.seed + 1), progress=False)
    assert c.history != a.history


def _folds_with_weights(x, labels, folds, epochs, seeds, n_jobs):
    """Each fold's test rows, probabilities, epochs and weights, one trainer per process (the
    config is built here: it does not pickle for a plain process pool)."""
    cfg = PAPER.with_overrides(epochs=epochs)

    def fit_predict(trainer, r, k):
        fit = trainer.fit_fold(x, labels, folds[k], seed=seeds[k])
        return fit.test, fit.probs, fit.epochs, trainer.model.get_weights()

    worker = functools.partial(worker_trainer, cfg, "paper")
    pairs = [(0, k) for k in range(len(folds))]
    answers = crossval.run_folds(fit_predict, pairs, worker=worker, n_jobs=n_jobs, progress=False)
    return [answer for answer, _ in answers]


def test_folds_trained_in_worker_processes_equal_the_sequential_run():
    """The notebooks train independent folds in two worker processes (one thread each, a
    trainer each): each fold's weights, probabilities and epochs must equal the same folds
    trained one after another by one trainer in a process on two threads, as the notebook's
    own process is."""
    x, labels = _features(n=400, seed=3)
    rng = np.random.default_rng(0)
    folds = []
    for k in range(3):
        roles = np.where(np.arange(400) % 3 == k, "test", "train").astype(object)
        roles[(roles == "train") & (rng.random(400) < 0.15)] = "val"
        folds.append(roles)
    seeds = [PAPER.seed + k for k in range(3)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=setup, initargs=(0, THREADS)) as one:
        assert one.submit(tf.config.threading.get_intra_op_parallelism_threads).result() == 2
        here = one.submit(_folds_with_weights, x, labels, folds, 8, seeds, 1).result()
    assert WORKER_THREADS == 1
    workers = _folds_with_weights(x, labels, folds, 8, seeds, 2)
    for a, b in zip(here, workers, strict=True):
        assert a[2] == b[2]
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        for wa, wb in zip(a[3], b[3], strict=True):
            np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(here[0][3][0], here[1][3][0])  # seeds differ


@pytest.mark.slow
@pytest.mark.weights
@pytest.mark.data
def test_head_on_features_equals_end_to_end_training(imagenet_weights, real_images):
    images, labels = real_images
    y = one_hot(labels)
    cfg = PAPER.with_overrides(epochs=2)
    setup(cfg.seed)
    model = build_model(cfg)
    trainer = Trainer(cfg)
    for name in HEAD_LAYERS:  # the trainer starts from the end-to-end model's head
        for a, b in zip(
            model.get_layer(name).get_weights(),
            build_head(cfg).get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    feats = extract(images, KerasBackbone(imagenet_weights), "paper", progress=False)
    x = scale(images)
    e2e = fit(model, x[:64], y[:64], x[64:], y[64:], cfg, progress=False)
    short = trainer.fit(feats[:64], y[:64], feats[64:], y[64:])
    head = short.model
    for name in HEAD_LAYERS:
        for a, b in zip(
            model.get_layer(name).get_weights(), head.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=0, atol=END_TO_END_TOLERANCE)
    np.testing.assert_allclose(
        e2e.history["loss"], short.history["loss"], rtol=END_TO_END_TOLERANCE
    )
    np.testing.assert_allclose(
        predict_proba(model, x), predict_proba(head, feats), atol=END_TO_END_TOLERANCE
    )


@pytest.mark.slow
@pytest.mark.weights
@pytest.mark.data
def test_assembled_model_saved_and_reloaded_predicts_like_the_head(
    imagenet_weights, real_images, tmp_path
):
    from lungct_utils.model import save_model

    images, labels = real_images
    feats = extract(images, KerasBackbone(imagenet_weights), "paper", progress=False)
    roles = np.array(["train"] * 60 + ["val"] * 20)
    result = train_head(feats, labels, roles, PAPER.with_overrides(epochs=3), progress=False)
    path = save_model(assemble(result.model, PAPER), tmp_path / "run.keras")
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(
        predict_proba(reloaded, scale(images)),
        predict_proba(result.model, feats),
        rtol=0,
        atol=1e-4,
    )


def test_a_trainer_traces_one_graph_for_every_training_set_size():
    """Folds differ by a few rows: a graph per size would cost a trace (about a second) per
    fold, which is what keeping the trainer saves."""
    x, labels = _features()
    y = one_hot(labels)
    trainer = Trainer(PAPER.with_overrides(epochs=2, patience=10))
    for n in (200, 217, 240):
        trainer.fit(x[:n], y[:n], x[n:], y[n:], seed=n)
    assert trainer._epoch.experimental_get_tracing_count() <= 2
    assert trainer._evaluate.experimental_get_tracing_count() <= 2
