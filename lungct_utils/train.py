"""Training with the paper's schedule (section II.D): the Keras reference loop and the trainer.

Both loops share one schedule (:func:`_schedule`): batch 32, at most 50 epochs, a seeded
permutation of the training set each epoch, and early stopping on validation accuracy with
patience 5 (Keras ``EarlyStopping`` semantics: an epoch counts as an improvement when
validation accuracy strictly rises; training stops after ``patience`` epochs without one).
``restore_best_weights`` is off, as in the paper.

* :func:`fit` runs each epoch through Keras ``model.fit`` (the reference; it trains the
  end-to-end model on images too).
* :class:`Trainer` holds one head, its optimizer and two compiled TensorFlow graphs: a whole
  epoch (a loop over the batches of the epoch's permutation, each a ``GradientTape`` step on
  the model's own loss and the optimizer's public ``apply_gradients``) and the validation
  pass. Every :meth:`Trainer.fit` starts from the initial weights of a head freshly built
  from its seed and from a fresh optimizer state, so one trainer trains any number of folds,
  each as if alone. Keras ``fit`` spends nearly all its time on per-step and per-epoch
  overhead when the model is the paper's 164k-parameter head; tracing the two graphs costs
  about as much as one whole training, so the caller builds the trainer once and keeps it
  (a fold loop's worker process builds one for all its folds: :func:`worker_trainer`).
  ``tests/test_train.py`` proves that the trainer and Keras ``fit`` give the same weights
  and histories, and that both equal end-to-end Keras training.

Keras' own compiled loop is not used: ``model.compile(jit_compile=True,
steps_per_execution=n)`` and one ``model.fit`` with ``EarlyStopping`` over the same
schedule (:func:`~lungct_utils.studies.benchmark.keras_compiled_fit`) is measured by
``make benchmark`` against the trainer and plain Keras ``fit`` (``reports/benchmarks.md``
states the ratios on the machine that ran it); it is slower than the trainer by more than
the factor of two that would have made it the choice, and Keras compiles it without XLA
while op determinism is on (:func:`setup`).

:func:`train_head` trains a fresh head on cached features with a trainer of its own.
"""

from __future__ import annotations

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
#: TensorFlow threads of a fold loop's worker process (:func:`worker_trainer`).
WORKER_THREADS = 1


def setup(seed: int, threads: int = THREADS) -> None:
    """Seed everything and make TensorFlow deterministic (call before any TensorFlow op).

    Fixes the thread counts, seeds Python, NumPy and TensorFlow through
    ``keras.utils.set_random_seed`` and turns on op determinism, so the same seed on the
    same machine gives identical numbers (see the README's "Repeatable numbers").

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


@dataclass
class FoldFit:
    """What one fold's training gives back (small and picklable: a worker process's answer).

    Attributes:
        test: positions of the fold's test rows.
        probs: their ``(n_test, 3)`` probabilities.
        epochs: epochs run.
    """

    test: np.ndarray
    probs: np.ndarray
    epochs: int


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


class Trainer:
    """One head, its optimizer and its compiled graphs: the paper's schedule, fold after fold.

    Built once (the head, a fresh optimizer, the traced epoch and validation graphs), it
    trains as often as asked: each :meth:`fit` loads the initial weights of a head freshly
    built for the seed (``keras.utils.set_random_seed(seed)`` then
    :func:`~lungct_utils.model.build_head`, the dropout's seed state included) and the
    optimizer's step-0 state, then runs :func:`_schedule`. The trained head is
    :attr:`model`, whose weights the next :meth:`fit` replaces: predict or save before.

    Args:
        cfg: the head's and the optimizer's settings, the schedule (``batch_size``,
            ``epochs``, ``patience``, ``restore_best_weights``) and the default seed.
        head: ``"paper"`` (Table II, the default), another name in
            :data:`~lungct_utils.model.HEADS`, or a function ``cfg -> list of Keras layers``
            (a notebook can define its own).
    """

    def __init__(self, cfg: PaperConfig = PAPER, head: str | Callable = "paper") -> None:
        self.cfg, self.head = cfg, head
        self.model = build_head(cfg, head)
        # an optimizer of the trainer's own: the head keeps its compiled one unbuilt, so a
        # saved head carries no training state
        compiled = self.model.optimizer
        self.optimizer = type(compiled).from_config(compiled.get_config())
        self.optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [v.numpy() for v in self.optimizer.variables]  # step 0
        loss_fn = _per_sample_loss(self.model)
        self._epoch = _epoch_function(self.model, self.optimizer, loss_fn)
        self._evaluate = _validation_function(self.model, loss_fn)

    def _start(self, cfg: PaperConfig) -> None:
        """Load a fresh head's initial variables for ``cfg.seed``; reset the optimizer."""
        keras.utils.set_random_seed(cfg.seed)
        fresh = build_head(cfg, self.head)
        for mine, initial in zip(self.model.variables, fresh.variables, strict=True):
            mine.assign(initial)
        for var, start in zip(self.optimizer.variables, self._optimizer_start, strict=True):
            var.assign(start)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        seed: int | None = None,
        progress: bool = False,
    ) -> TrainResult:
        """Train the head afresh with the paper's schedule, one graph call per epoch.

        Args:
            x: training features ``(n, d)``.
            y: one-hot training labels.
            x_val: validation features.
            y_val: one-hot validation labels.
            sample_weight: optional weight per training row (class weighting).
            seed: initial weights, dropout and batch order (default: the trainer's
                ``cfg.seed``); a fold loop gives each repeat its own.
            progress: show a tqdm bar over epochs.

        Returns:
            A :class:`TrainResult` holding :attr:`model`.
        """
        _check_inputs(x, y, x_val, y_val, sample_weight)
        if seed is not None and (not isinstance(seed, int) or seed < 0):
            raise ValueError(f"Trainer.fit: seed must be a non-negative int, got {seed!r}")
        cfg = self.cfg if seed is None else self.cfg.with_overrides(seed=seed)
        self._start(cfg)
        w = np.ones(len(x)) if sample_weight is None else sample_weight
        x, y, w, x_val, y_val = (tf.constant(a, tf.float32) for a in (x, y, w, x_val, y_val))
        batch_size = tf.constant(cfg.batch_size)

        def run_epoch(order):
            loss, acc = self._epoch(x, y, w, tf.constant(order), batch_size)
            return float(loss), float(acc)

        def run_val():
            loss, acc = self._evaluate(x_val, y_val)
            return float(loss), float(acc)

        return _schedule(self.model, run_epoch, run_val, int(x.shape[0]), cfg, progress)

    def fit_roles(
        self,
        features: np.ndarray,
        labels,
        roles,
        *,
        seed: int | None = None,
        class_weight: str | None = None,
        progress: bool = False,
    ) -> TrainResult:
        """Train on the rows whose role is ``train``; stop early on those whose role is ``val``.

        Args:
            features: float32 ``(n, d)``.
            labels: n label strings.
            roles: n of ``"train"``/``"val"``/``"test"``/``"unused"`` (only the training
                and validation rows are read).
            seed: as in :meth:`fit`.
            class_weight: None, or ``"balanced"`` to weight the loss by inverse class
                frequency (:func:`class_weights`).
            progress: show a tqdm bar over epochs.

        Returns:
            A :class:`TrainResult` holding :attr:`model`.
        """
        roles = np.asarray(roles)
        labels = np.asarray(list(labels), dtype=object)
        if len(roles) != len(features) or len(labels) != len(features):
            raise ValueError(
                f"fit_roles: {len(features)} features, {len(labels)} labels, {len(roles)} roles"
            )
        y = one_hot(list(labels))
        train, val = roles == "train", roles == "val"
        weights = class_weights(labels[train], class_weight)
        sample_weight = None if weights is None else np.array([weights[c] for c in labels[train]])
        return self.fit(
            features[train],
            y[train],
            features[val],
            y[val],
            sample_weight,
            seed=seed,
            progress=progress,
        )

    def fit_fold(
        self,
        features: np.ndarray,
        labels,
        roles,
        *,
        seed: int | None = None,
        class_weight: str | None = None,
    ) -> FoldFit:
        """One fold: :meth:`fit_roles`, then the probabilities of the rows whose role is test.

        Args:
            features: float32 ``(n, d)``.
            labels: n label strings.
            roles: n of ``"train"``/``"val"``/``"test"``/``"unused"``.
            seed: as in :meth:`fit`.
            class_weight: as in :meth:`fit_roles`.

        Returns:
            A :class:`FoldFit`.
        """
        result = self.fit_roles(features, labels, roles, seed=seed, class_weight=class_weight)
        test = np.flatnonzero(np.asarray(roles) == "test")
        return FoldFit(test, predict_proba(result.model, features[test]), result.epochs)


def worker_trainer(cfg: PaperConfig = PAPER, head: str | Callable = "paper") -> Trainer:
    """A trainer for the process it is built in, set up as :func:`setup` sets a notebook's.

    A fold loop's worker process (:func:`~lungct_utils.crossval.run_folds`) builds one for
    all the folds it runs. It seeds and turns on op determinism as the main process does,
    and a fresh process runs on one thread (:data:`WORKER_THREADS`; a process that set its
    threads already keeps them): the head's ops are too small to gain from a second
    thread, the other core runs the other worker, and the thread count does not change the
    head's numbers here (measured on the real folds; ``tests/test_train.py`` compares the
    weights of workers with those of a two-thread process).

    Args:
        cfg: as in :class:`Trainer`.
        head: as in :class:`Trainer`.

    Returns:
        A :class:`Trainer`.
    """
    setup(cfg.seed, WORKER_THREADS)
    return Trainer(cfg, head)


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
    """Train a fresh head once, with a trainer of its own (:meth:`Trainer.fit_roles`).

    Args:
        features: float32 ``(n, d)``.
        labels: n label strings.
        roles: n of ``"train"``/``"val"``/``"test"`` (test rows are not used).
        cfg: the settings; ``seed`` fixes initial weights, dropout and batch order.
        head: as in :class:`Trainer`.
        class_weight: None, or ``"balanced"`` to weight the loss by inverse class frequency.
        progress: show a tqdm bar.

    Returns:
        A :class:`TrainResult` whose model is the trained head.
    """
    trainer = Trainer(cfg, head)
    return trainer.fit_roles(features, labels, roles, class_weight=class_weight, progress=progress)


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
