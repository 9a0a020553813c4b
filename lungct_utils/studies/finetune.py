"""``make study-finetune``: partial fine-tuning of MobileNetV2, measured once on ``cases``.

Fine-tuning the last inverted-residual block (``block_16``) and the last 1x1 convolution
(``Conv_1``) with the paper's head on top does not fit notebook 06's budget on two CPU
cores, so this study runs on its own: one repeat of the ``cases`` protocol's 5-fold CV
(distinct originals scored, whole patients per fold). The frozen layers below ``block_16``
never change, so their output (7x7x160 per image) is computed once for every image of the
augmented set and the trainable top is trained on it; the training augmentation is the
augmented set's planned copies of the training originals (fixed, not redrawn every epoch).
Batch-norm statistics stay frozen (inference mode); convolutions and the head train with
Adam (learning rate 1e-4), batch 32, early stopping on validation accuracy (patience 5) and
at most 15 epochs. The result is saved as ``reports/metrics/study_finetune.json`` and shown
in notebook 06 with its cost; it is not a candidate of the nested selection (this target
does not produce the shipped model).
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import config, pipeline
from ..augment import load_images
from ..evaluate import repeated_cv_summary
from ..features import build_base
from ..images import label_indices, one_hot, scale
from ..io_utils import provenance, write_json
from ..model import compile_model, paper_head
from ..splits import fold_roles
from ..train import fit, predict_proba, setup

#: The frozen bottom ends here; everything after it trains.
SPLIT_LAYER = "block_15_add"
TOP_LAYERS = (
    "block_16_expand",
    "block_16_expand_BN",
    "block_16_expand_relu",
    "block_16_depthwise",
    "block_16_depthwise_BN",
    "block_16_depthwise_relu",
    "block_16_project",
    "block_16_project_BN",
    "Conv_1",
    "Conv_1_bn",
    "out_relu",
)
NAME = "fine-tuned block_16 + Conv_1, paper head, [-1, 1] scaling"


def split_backbone(cfg: config.PaperConfig):
    """The frozen bottom (image -> 7x7x160) and the trainable top model (-> probabilities).

    Args:
        cfg: head settings and ``learning_rate`` (the study uses 1e-4).

    Returns:
        ``(bottom, top)``; ``top`` is compiled, its batch norms frozen.
    """
    base = build_base("imagenet", cfg.image_size)
    bottom = keras.Model(base.input, base.get_layer(SPLIT_LAYER).output, name="frozen_bottom")
    inputs = keras.Input(bottom.output.shape[1:], name="block_15_output")
    x = inputs
    for name in TOP_LAYERS:
        layer = base.get_layer(name)
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
        x = layer(x, training=False) if not layer.trainable else layer(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling")(x)
    for layer in paper_head(cfg):
        x = layer(x)
    return bottom, compile_model(keras.Model(inputs, x, name="finetune_top"), cfg)


def _frozen_activations(
    bottom: keras.Model, images: np.ndarray, cfg: config.PaperConfig, progress: bool
) -> np.ndarray:
    """The frozen bottom's output (7x7x160) of every image, 64 images per call.

    Args:
        bottom: from :func:`split_backbone`.
        images: uint8 ``(n, s, s, 3)`` images.
        cfg: its ``preprocess`` scales the pixels.
        progress: show a progress bar.

    Returns:
        ``(n, 7, 7, 160)`` activations.
    """
    chunks = tqdm(range(0, len(images), 64), desc="frozen bottom", disable=not progress)
    return np.concatenate(
        [bottom.predict(scale(images[i : i + 64], cfg.preprocess), verbose=0) for i in chunks]
    )


def _fold_predictions(
    acts: np.ndarray,
    table: pd.DataFrame,
    roles: np.ndarray,
    repeat: int,
    cfg: config.PaperConfig,
    progress: bool,
) -> tuple[pd.DataFrame, float]:
    """Train a fresh top on one fold and predict its held-out originals.

    Args:
        acts: the frozen bottom's output of every image of ``table``.
        table: the augmented set's table (``label``, ``case``).
        roles: each image's role in the fold (``train``, ``val``, ``test``, ...).
        repeat: the repeat, copied into the rows.
        cfg: training settings.
        progress: show progress bars.

    Returns:
        ``(rows, seconds)``: ``repeat, case, y, p_<class>`` per test image, and the training
        time.
    """
    y = one_hot(table["label"])
    _, top = split_backbone(cfg)
    tr, va, te = (np.flatnonzero(roles == r) for r in ("train", "val", "test"))
    start = time.perf_counter()
    fit(top, acts[tr], y[tr], acts[va], y[va], cfg, progress=progress)
    seconds = time.perf_counter() - start
    probs = predict_proba(top, acts[te])
    columns = {f"p_{c}": probs[:, i] for i, c in enumerate(config.CLASSES)}
    frame = pd.DataFrame(
        {
            "repeat": repeat,
            "case": table["case"].to_numpy()[te],
            "y": label_indices(table["label"].iloc[te]),
            **columns,
        }
    )
    return frame, seconds


def run(repeat: int = 0, progress: bool = True) -> dict:
    """Fine-tune on each fold of one ``cases`` repeat and score the held-out originals.

    Args:
        repeat: which repeat's folds.
        progress: show progress bars.

    Returns:
        The study's row: metrics with 95% intervals, seconds per fold, provenance.
    """
    cfg = config.PAPER.with_overrides(preprocess="mobilenet_v2", learning_rate=1e-4, epochs=15)
    setup(cfg.seed)
    table = pipeline.prepare(cfg.with_overrides(preprocess="paper"), progress=progress)
    manifest = pipeline.read_splits("cases")
    bottom, _ = split_backbone(cfg)
    images = load_images(table, config.AUGMENTED_DIR, progress=progress)
    start = time.perf_counter()
    acts = _frozen_activations(bottom, images, cfg, progress)
    extract_seconds = time.perf_counter() - start
    del images
    frames, seconds = [], []
    for fold in range(cfg.n_folds):
        roles = fold_roles(manifest, repeat, fold, "cases", cfg)
        frame, fold_seconds = _fold_predictions(acts, table, roles, repeat, cfg, progress)
        frames.append(frame)
        seconds.append(fold_seconds)
    summary = repeated_cv_summary(pd.concat(frames, ignore_index=True), seed=cfg.seed)
    row = {
        "name": NAME,
        "train_seconds": float(np.mean(seconds)),
        "repeats": 1,
        "folds": cfg.n_folds,
        "extract_seconds": extract_seconds,
    }
    for k in ("macro_f1", "balanced_accuracy", "recall_benign", "auc_macro", "ece", "accuracy"):
        row[k], row[f"{k}_ci95"] = summary["mean"][k], summary["ci95"][k]
    write_json({**row, "provenance": provenance(cfg)}, config.STUDIES / "study_finetune.json")
    return row
