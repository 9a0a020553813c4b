"""Training with the paper's schedule (section II.D): the Keras loop and the fast route.

Both loops share one schedule: batch 32, at most 50 epochs, a seeded permutation of the
training set each epoch, and early stopping on validation accuracy with patience 5 (Keras
``EarlyStopping`` semantics: an epoch counts as an improvement when validation accuracy
strictly rises; training stops after ``patience`` epochs without one).
``restore_best_weights`` is off, as in the paper.

* :func:`fit` runs each epoch through Keras ``model.fit`` (the reference; it trains the
  end-to-end model on images too).
* :func:`fast_fit` runs the same Keras model, loss and a fresh copy of its optimizer through
  one compiled TensorFlow graph per epoch. Keras ``fit`` spends nearly all its time on
  per-step and per-epoch overhead when the model is the paper's 164k-parameter head; here a
  whole epoch is one graph call: a loop over the batches of the epoch's permutation, each a
  ``GradientTape`` step on the model's own loss and the optimizer's public
  ``apply_gradients``. ``tests/test_train.py`` proves the two loops give the same weights
  and histories, and that both equal end-to-end Keras training.

:func:`train_head` trains a fresh head (the paper's by default, or any head function, see
:mod:`lungct_utils.model`) on cached features with :func:`fast_fit`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from .config import CLASSES, PAPER, THREADS, PaperConfig
from .images import label_indices, one_hot
from .model import build_head

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def setup(seed: int, threads: int = THREADS) -> None:
    """Seed everything and make TensorFlow deterministic (call before any TensorFlow op).

    Fixes the thread counts, seeds Python, NumPy and TensorFlow through
    ``keras.utils.set_random_seed`` and turns on op determinism, so the same seed on the
    same machine gives identical numbers (see ``../shared/NOTES-notebooks.md``).

    Args:
        seed: the one seed.
        threads: intra- and inter-op threads (fixed: a different count changes numbers).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"setup: seed must be a non-negative int, got {seed!r}")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already initialized: the counts set first stay in force
    tf.get_logger().setLevel("ERROR")  # retracing notices are noise in notebooks
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass
class TrainResult:
    """A trained model and its per-epoch history.

    Attributes:
        model: the trained Keras model.
        history: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` lists per epoch.
        epochs: epochs run.
        best_epoch: 1-based epoch of the best validation accuracy.
    """

    model: object
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    best_epoch: int = 0


def _check_inputs(x, y, x_val, y_val, sample_weight) -> None:
    if len(x) != len(y) or len(x_val) != len(y_val):
        raise ValueError(f"fit: {len(x)} inputs vs {len(y)} labels, {len(x_val)} vs {len(y_val)}")
    if len(x) == 0 or len(x_val) == 0:
        raise ValueError(f"fit: empty training ({len(x)}) or validation ({len(x_val)}) set")
    if sample_weight is not None and len(sample_weight) != len(x):
        raise ValueError(f"fit: {len(sample_weight)} sample weights for {len(x)} inputs")


def _schedule(model, run_epoch, run_val, n: int, cfg: PaperConfig, progress: bool) -> TrainResult:
    """The paper's epochs and early stopping around one epoch step and one validation step."""
    rng = np.random.default_rng(cfg.seed)
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    best, best_epoch, wait, best_weights = -np.inf, 0, 0, None
    bar = tqdm(range(cfg.epochs), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        loss, acc = run_epoch(rng.permutation(n))
        val_loss, val_acc = run_val()
        for key, value in zip(HISTORY_KEYS, (loss, acc, val_loss, val_acc), strict=True):
            history[key].append(float(value))
        bar.set_postfix(val_acc=f"{val_acc:.4f}")
        if val_acc > best:
            best, best_epoch, wait = val_acc, epoch + 1, 0
            if cfg.restore_best_weights:
                best_weights = model.get_weights()
        else:
            wait += 1
            if wait >= cfg.patience:
                break
    bar.close()
    if cfg.restore_best_weights and best_weights is not None:
        model.set_weights(best_weights)
    return TrainResult(model, history, len(history["loss"]), best_epoch)


def fit(
    model,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: PaperConfig = PAPER,
    progress: bool = True,
    sample_weight: np.ndarray | None = None,
) -> TrainResult:
    """Train a compiled model with the paper's schedule, one Keras ``fit`` call per epoch.

    Args:
        model: a compiled Keras model.
        x: training inputs (images or features).
        y: one-hot training labels.
        x_val: validation inputs.
        y_val: one-hot validation labels.
        cfg: ``batch_size``, ``epochs``, ``patience``, ``restore_best_weights``, ``seed``.
        progress: show a tqdm bar over epochs.
        sample_weight: optional weight per training row (class weighting).

    Returns:
        A :class:`TrainResult`.
    """
    _check_inputs(x, y, x_val, y_val, sample_weight)

    def run_epoch(order):
        w = None if sample_weight is None else sample_weight[order]
        h = model.fit(
            x[order],
            y[order],
            batch_size=cfg.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
            sample_weight=w,
        )
        return h.history["loss"][-1], h.history["accuracy"][-1]

    def run_val():
        val = model.evaluate(x_val, y_val, batch_size=256, verbose=0, return_dict=True)
        return val["loss"], val["accuracy"]

    return _schedule(model, run_epoch, run_val, len(x), cfg, progress)


def _per_sample_loss(model) -> Callable:
    """The compiled loss without reduction: a Loss object's ``call``, or the function named."""
    loss = model.loss
    return loss.call if isinstance(loss, keras.losses.Loss) else keras.losses.get(loss)


def _epoch_function(model, optimizer, loss_fn: Callable) -> Callable:
    """One compiled graph for a whole epoch: ``(x, y, w, order, batch_size) -> (loss, acc)``.

    The batches of ``order`` (the epoch's permutation) are taken inside the graph, so an
    epoch costs one call instead of a Python round trip per batch.
    """
    variables = model.trainable_variables

    # XLA fuses Adam's dozen elementwise passes over each weight into one: on the 1280x128
    # kernel those passes cost as much as the forward and backward pass together.
    @tf.function(jit_compile=True)
    def apply(grads):
        optimizer.apply_gradients(zip(grads, variables, strict=True))

    def step(xb, yb, wb):
        nb = tf.cast(tf.shape(xb)[0], tf.float32)
        with tf.GradientTape() as tape:
            probs = model(xb, training=True)
            # Keras' "sum_over_batch_size" reduction: weighted sum over the batch size
            loss = tf.reduce_sum(loss_fn(yb, probs) * wb) / nb
        apply(tape.gradient(loss, variables))
        hits = tf.cast(tf.argmax(probs, 1) == tf.argmax(yb, 1), tf.float32)
        # Keras' loss tracker weights each batch by its size; its accuracy ignores weights
        return loss * nb, tf.reduce_sum(hits)

    # one graph for every training-set size: folds differ by a few rows
    @tf.function(reduce_retracing=True)
    def epoch(x, y, w, order, batch_size):
        n = tf.shape(order)[0]
        loss_sum, correct = tf.constant(0.0), tf.constant(0.0)
        for start in tf.range(0, n, batch_size):
            rows = order[start : start + batch_size]
            loss, hits = step(tf.gather(x, rows), tf.gather(y, rows), tf.gather(w, rows))
            loss_sum, correct = loss_sum + loss, correct + hits
        n = tf.cast(n, tf.float32)
        return loss_sum / n, correct / n

    return epoch


def _validation_function(model, loss_fn: Callable) -> Callable:
    """One compiled graph: ``(x, y) -> (mean loss, accuracy)`` in inference mode."""

    @tf.function(reduce_retracing=True)
    def evaluate(x, y):
        probs = model(x, training=False)
        hits = tf.cast(tf.argmax(probs, 1) == tf.argmax(y, 1), tf.float32)
        return tf.reduce_mean(loss_fn(y, probs)), tf.reduce_mean(hits)

    return evaluate


class _Trainer:
    """A working copy of one architecture with a fresh optimizer and its compiled graphs.

    Why it is kept: tracing the epoch graph and compiling its optimizer step take about a
    second, a third of a whole training of the paper's head (``make benchmark``), and the
    notebooks train the same architecture hundreds of times (folds x repeats). So each
    architecture gets one trainer (see :func:`_trainer`); a run loads the model's variables
    (weights, dropout seed state) and the optimizer's initial state into it, and copies the
    result back.
    """

    def __init__(self, model) -> None:
        self.model = keras.models.clone_model(model)
        self.optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
        self.optimizer.build(self.model.trainable_variables)
        self.optimizer_start = [v.numpy() for v in self.optimizer.variables]  # step 0
        loss_fn = _per_sample_loss(model)
        self.epoch = _epoch_function(self.model, self.optimizer, loss_fn)
        self.evaluate = _validation_function(self.model, loss_fn)

    def load(self, model) -> None:
        """Start from ``model``'s variables with the optimizer as freshly built."""
        for mine, theirs in zip(self.model.variables, model.variables, strict=True):
            mine.assign(theirs)
        for var, start in zip(self.optimizer.variables, self.optimizer_start, strict=True):
            var.assign(start)

    def store(self, model) -> None:
        """Copy the trained variables back into ``model``."""
        for theirs, mine in zip(model.variables, self.model.variables, strict=True):
            theirs.assign(mine)


#: Trainers by architecture, at most :data:`MAX_TRAINERS` (the oldest goes first).
_TRAINERS: dict[str, _Trainer] = {}
MAX_TRAINERS = 8


def _architecture(config):
    """A config without ``seed`` and ``name`` entries.

    Seeds act only through variables a run copies in (initial weights, dropout seed state);
    Keras numbers names per instance (``adam_1``).
    """
    if isinstance(config, dict):
        return {k: _architecture(v) for k, v in config.items() if k not in ("seed", "name")}
    if isinstance(config, list | tuple):
        return [_architecture(v) for v in config]
    return config


def _trainer(model) -> _Trainer:
    """The trainer for ``model``'s architecture, optimizer settings and loss (made once)."""
    if not model.compiled or model.loss is None:
        raise ValueError(
            f"fast_fit: model {model.name!r} is not compiled (needs optimizer and loss)"
        )
    loss = keras.saving.serialize_keras_object(model.loss)
    parts = [model.get_config(), model.optimizer.get_config(), loss]
    key = json.dumps(_architecture(parts), sort_keys=True, default=repr)
    if key not in _TRAINERS:
        if len(_TRAINERS) >= MAX_TRAINERS:
            del _TRAINERS[next(iter(_TRAINERS))]
        _TRAINERS[key] = _Trainer(model)
    return _TRAINERS[key]


def fast_fit(
    model,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: PaperConfig = PAPER,
    progress: bool = True,
    sample_weight: np.ndarray | None = None,
) -> TrainResult:
    """Train a compiled model like :func:`fit`, one compiled graph call per epoch.

    The model starts from its current weights with a fresh optimizer (step 0), as a freshly
    compiled model does under :func:`fit`; its weights (and dropout seed state) are updated
    in place.

    Args:
        model: a compiled Keras model (e.g. :func:`~lungct_utils.model.build_head`).
        x: training inputs.
        y: one-hot training labels.
        x_val: validation inputs.
        y_val: one-hot validation labels.
        cfg: ``batch_size``, ``epochs``, ``patience``, ``restore_best_weights``, ``seed``.
        progress: show a tqdm bar over epochs.
        sample_weight: optional weight per training row (class weighting).

    Returns:
        A :class:`TrainResult` holding ``model``.
    """
    _check_inputs(x, y, x_val, y_val, sample_weight)
    trainer = _trainer(model)
    trainer.load(model)
    w = np.ones(len(x)) if sample_weight is None else sample_weight
    x, y, w, x_val, y_val = (tf.constant(a, tf.float32) for a in (x, y, w, x_val, y_val))
    batch_size = tf.constant(cfg.batch_size)

    def run_epoch(order):
        loss, acc = trainer.epoch(x, y, w, tf.constant(order), batch_size)
        return float(loss), float(acc)

    def run_val():
        loss, acc = trainer.evaluate(x_val, y_val)
        return float(loss), float(acc)

    result = _schedule(trainer.model, run_epoch, run_val, int(x.shape[0]), cfg, progress)
    trainer.store(model)
    result.model = model
    return result


def class_weights(labels, mode: str | None) -> dict[str, float] | None:
    """Per-class loss weights.

    Args:
        labels: the training labels.
        mode: None (no weighting) or ``"balanced"`` (``n / (k * n_class)``, scikit-learn's
            rule: every class carries the same total weight).

    Returns:
        class -> weight, or None.
    """
    if mode is None:
        return None
    if mode != "balanced":
        raise ValueError(f"class_weight must be None or 'balanced', got {mode!r}")
    idx = label_indices(list(labels))
    counts = np.bincount(idx, minlength=len(CLASSES))
    return {
        c: float(len(idx) / (len(CLASSES) * n)) for c, n in zip(CLASSES, counts, strict=True) if n
    }


def train_head(
    features: np.ndarray,
    labels,
    roles,
    cfg: PaperConfig = PAPER,
    head: str | Callable[[PaperConfig], list] = "paper",
    class_weight: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a fresh head on cached features with the paper's schedule (:func:`fast_fit`).

    Args:
        features: float32 ``(n, d)``.
        labels: n label strings.
        roles: n of ``"train"``/``"val"``/``"test"`` (test rows are not used).
        cfg: the settings; ``seed`` fixes initial weights, dropout and batch order.
        head: ``"paper"`` (Table II, the default), another name in
            :data:`~lungct_utils.model.HEADS`, or a function ``cfg -> list of Keras layers``
            (a notebook can define its own).
        class_weight: None, or ``"balanced"`` to weight the loss by inverse class frequency.
        progress: show a tqdm bar.

    Returns:
        A :class:`TrainResult` whose model is the trained head.
    """
    roles = np.asarray(roles)
    labels = np.asarray(list(labels), dtype=object)
    if len(roles) != len(features) or len(labels) != len(features):
        raise ValueError(
            f"train_head: {len(features)} features, {len(labels)} labels, {len(roles)} roles"
        )
    y = one_hot(list(labels))
    train, val = roles == "train", roles == "val"
    weights = class_weights(labels[train], class_weight)
    sample_weight = None if weights is None else np.array([weights[c] for c in labels[train]])
    keras.utils.set_random_seed(cfg.seed)
    model = build_head(cfg, head)
    return fast_fit(
        model, features[train], y[train], features[val], y[val], cfg, progress, sample_weight
    )


#: TensorFlow threads of a fresh worker process that trains folds (:func:`fit_fold`).
WORKER_THREADS = 1


@dataclass
class FoldFit:
    """What one fold's training gives back (small and picklable: a worker process's answer).

    Attributes:
        test: positions of the fold's test rows.
        probs: their ``(n_test, 3)`` probabilities.
        epochs: epochs run.
        seconds: training time in seconds.
        weights: the trained head's weights, when asked for.
    """

    test: np.ndarray
    probs: np.ndarray
    epochs: int
    seconds: float
    weights: list | None = None


def fit_fold(
    features: np.ndarray,
    labels,
    roles,
    cfg: PaperConfig = PAPER,
    head: str | Callable[[PaperConfig], list] = "paper",
    class_weight: str | None = None,
    keep_weights: bool = False,
) -> FoldFit:
    """Train a fresh head on one fold's training rows and predict its test rows.

    Made to run in a worker process (``joblib.Parallel``): it calls :func:`setup` first, so
    the seed and op determinism are those of the main process. A fresh worker runs on one
    thread (:data:`WORKER_THREADS`; a process that set its threads already keeps them): the
    head's ops are too small to gain from a second thread, the other core runs the other
    worker, and the thread count does not change the head's numbers here (measured on the
    real folds; ``tests/test_train.py`` compares the weights of workers with this process's).

    Args:
        features: float32 ``(n, d)``.
        labels: n label strings.
        roles: n of ``"train"``/``"val"``/``"test"``/``"unused"``.
        cfg: the settings; ``seed`` fixes initial weights, dropout and batch order.
        head: as in :func:`train_head`.
        class_weight: as in :func:`train_head`.
        keep_weights: return the trained weights too.

    Returns:
        A :class:`FoldFit`.
    """
    setup(cfg.seed, WORKER_THREADS)
    start = time.perf_counter()
    result = train_head(features, labels, roles, cfg, head, class_weight, progress=False)
    seconds = time.perf_counter() - start
    test = np.flatnonzero(np.asarray(roles) == "test")
    probs = predict_proba(result.model, features[test])
    weights = result.model.get_weights() if keep_weights else None
    return FoldFit(test, probs, result.epochs, seconds, weights)


def predict_proba(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (columns benign, malignant, normal).

    Args:
        model: a Keras model.
        x: inputs.
        batch_size: feature rows per call (images go through ``predict`` in batches of 32).

    Returns:
        float32 ``(n, 3)``.
    """
    x = np.asarray(x)
    if x.ndim > 2:  # images through the whole network: Keras' batched predict
        probs = np.asarray(model.predict(x, batch_size=32, verbose=0), dtype=np.float32)
    else:  # features through a head: direct calls, without predict's per-call overhead
        parts = [
            np.asarray(model(x[i : i + batch_size], training=False))
            for i in range(0, len(x), batch_size)
        ]
        probs = np.concatenate(parts).astype("f4") if parts else np.zeros((0, len(CLASSES)), "f4")
    if probs.shape[1:] != (len(CLASSES),):
        raise ValueError(f"predict_proba: expected (n, {len(CLASSES)}) output, got {probs.shape}")
    return probs
