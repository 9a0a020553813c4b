"""Training with the paper's schedule (section II.D) and the fast head-only route.

:func:`fit` is one training loop for any compiled Keras model: batch 32, at most 50
epochs, a seeded permutation of the training set each epoch, and early stopping on
validation accuracy with patience 5 (Keras ``EarlyStopping`` semantics: an epoch counts as
an improvement when validation accuracy strictly rises; training stops after ``patience``
epochs without one). ``restore_best_weights`` is off as in the paper.

The same loop trains the end-to-end model on images or the head on cached features; with
equal initial weights and batch order the two give equal weights (tests prove it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .config import CLASSES, PAPER, PaperConfig
from .preprocess import one_hot

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


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


def fit(
    model,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: PaperConfig = PAPER,
    progress: bool = True,
) -> TrainResult:
    """Train a compiled model with the paper's schedule.

    Args:
        model: a compiled Keras model.
        x: training inputs (images or features).
        y: one-hot training labels.
        x_val: validation inputs.
        y_val: one-hot validation labels.
        cfg: ``batch_size``, ``epochs``, ``patience``, ``restore_best_weights``, ``seed``.
        progress: show a tqdm bar over epochs.

    Returns:
        A :class:`TrainResult`.
    """
    if len(x) != len(y) or len(x_val) != len(y_val):
        raise ValueError(f"fit: {len(x)} inputs vs {len(y)} labels, {len(x_val)} vs {len(y_val)}")
    if len(x) == 0 or len(x_val) == 0:
        raise ValueError(f"fit: empty training ({len(x)}) or validation ({len(x_val)}) set")
    rng = np.random.default_rng(cfg.seed)
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    best, best_epoch, wait, best_weights = -np.inf, 0, 0, None
    bar = tqdm(range(cfg.epochs), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        order = rng.permutation(len(x))
        h = model.fit(
            x[order], y[order], batch_size=cfg.batch_size, epochs=1, shuffle=False, verbose=0
        )
        val = model.evaluate(x_val, y_val, batch_size=256, verbose=0, return_dict=True)
        history["loss"].append(float(h.history["loss"][-1]))
        history["accuracy"].append(float(h.history["accuracy"][-1]))
        history["val_loss"].append(float(val["loss"]))
        history["val_accuracy"].append(float(val["accuracy"]))
        bar.set_postfix(val_acc=f"{val['accuracy']:.4f}")
        if val["accuracy"] > best:
            best, best_epoch, wait = val["accuracy"], epoch + 1, 0
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


def train_head(
    features: np.ndarray,
    labels,
    roles,
    cfg: PaperConfig = PAPER,
    progress: bool = True,
) -> TrainResult:
    """Train a fresh paper head on cached features.

    Args:
        features: float32 ``(n, 1280)``.
        labels: n label strings.
        roles: n of ``"train"``/``"val"``/``"test"`` (test rows are not used).
        cfg: the settings; ``seed`` fixes initial weights, dropout and batch order.
        progress: show a tqdm bar.

    Returns:
        A :class:`TrainResult` whose model is the head.
    """
    from .model import build_head
    from .runtime import setup

    roles = np.asarray(roles)
    y = one_hot(list(labels))
    train, val = roles == "train", roles == "val"
    setup(cfg.seed)
    head = build_head(cfg)
    return fit(head, features[train], y[train], features[val], y[val], cfg, progress)


def predict_proba(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (columns benign, malignant, normal).

    Args:
        model: a Keras model.
        x: inputs.
        batch_size: predict batch size.

    Returns:
        float32 ``(n, 3)``.
    """
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
    if probs.shape[1:] != (len(CLASSES),):
        raise ValueError(f"predict_proba: expected (n, {len(CLASSES)}) output, got {probs.shape}")
    return probs
