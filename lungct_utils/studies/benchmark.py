"""``make benchmark``: our routes against the plain Keras way, as a table with ratios.

Measured on the real augmented set, on this machine (``config.THREADS`` threads):

* feature extraction: Keras ``model.predict`` against our LiteRT engine (images/s, their
  maximum relative difference);
* head training with the paper's schedule on cached features (paper holdout), all from the
  same initial weights: Keras ``fit`` one epoch at a time (the reference), the
  :class:`~lungct_utils.train.Trainer` (one compiled graph per epoch; its first training
  includes tracing the graphs), and Keras' own compiled loop
  (:func:`keras_compiled_fit`: ``jit_compile=True`` and ``steps_per_execution`` of 1, 8,
  32 steps and a whole epoch, one ``model.fit`` with ``EarlyStopping``), with the largest
  difference of its test probabilities from the trainer's;
* the end-to-end Keras ``fit`` on images (one real epoch) and, projected from it, the whole
  reproduction (holdout and one 5-fold CV per protocol) the plain way, against ours measured;
* the time of each notebook and of the whole ``make report`` run, from the last run's log
  (``<reports>/run_times.json``).

Speed is never asserted in tests; this table is where it is measured.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .. import config, pipeline
from ..augment import load_images
from ..features import KerasBackbone, LiteRTModel, cached_features, litert_model_path
from ..images import one_hot, scale
from ..io_utils import git_commit, write_text
from ..model import build_head, build_model
from ..splits import fold_roles, holdout_roles
from ..train import Trainer, fit, predict_proba, setup

#: ``steps_per_execution`` values of Keras' compiled loop (None: a whole epoch).
STEPS_PER_EXECUTION = (1, 8, 32, None)


def _rate(fn, x: np.ndarray, repeats: int = 2) -> tuple[float, np.ndarray]:
    fn(x[:8])  # warm-up (graph tracing, interpreter allocation)
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(x)
        best = min(best, time.perf_counter() - start)
    return len(x) / best, out


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def keras_compiled_fit(x, y, x_val, y_val, cfg: config.PaperConfig, steps_per_execution):
    """The paper's head trained by Keras' own compiled loop over the paper's schedule.

    One ``model.fit`` over at most ``cfg.epochs`` epochs with
    ``keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=cfg.patience)``, the
    model compiled with ``jit_compile=True`` and ``steps_per_execution``. Each epoch takes
    the next seeded permutation (the ones :func:`~lungct_utils.train.fit` draws) in batches
    of ``cfg.batch_size``; the data set knows its batches per epoch, so an execution never
    runs into the next epoch. Keras falls back to ``jit_compile=False`` (with a warning)
    while TensorFlow's op determinism is on, as :func:`~lungct_utils.train.setup` sets it.

    Args:
        x: training features.
        y: one-hot training labels.
        x_val: validation features.
        y_val: one-hot validation labels.
        cfg: the settings (``seed`` fixes the initial weights and the permutations).
        steps_per_execution: batches per compiled call; None for a whole epoch.

    Returns:
        ``(model, epochs)``.
    """
    steps = math.ceil(len(x) / cfg.batch_size)
    keras.utils.set_random_seed(cfg.seed)
    model = build_head(cfg)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=True,
        steps_per_execution=steps_per_execution or steps,
    )
    rng = np.random.default_rng(cfg.seed)
    orders = tf.constant(np.stack([rng.permutation(len(x)) for _ in range(cfg.epochs)]))
    epoch = tf.Variable(-1, dtype=tf.int64, trainable=False)
    xs, ys = tf.constant(x), tf.constant(y)

    def epoch_batches(_):  # each pass over the data set (one per epoch) takes the next order
        rows = orders[epoch.assign_add(1)]
        return tf.data.Dataset.from_tensor_slices(rows).batch(cfg.batch_size)

    data = (
        tf.data.Dataset.from_tensors(0)
        .flat_map(epoch_batches)
        .map(lambda rows: (tf.gather(xs, rows), tf.gather(ys, rows)))
        .apply(tf.data.experimental.assert_cardinality(steps))
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=cfg.patience)
    history = model.fit(
        data,
        epochs=cfg.epochs,
        validation_data=(x_val, y_val),
        validation_batch_size=256,
        callbacks=[stop],
        verbose=0,
    )
    return model, len(history.history["loss"])


def head_training(feats: np.ndarray, splits, cfg: config.PaperConfig) -> dict:
    """Seconds to train the paper's head on the paper holdout, three ways.

    Args:
        feats: features aligned with ``splits``.
        splits: the paper protocol's manifest.
        cfg: the settings.

    Returns:
        ``{"keras_s", "keras_epochs", "trainer_first_s", "trainer_s", "trainer_epochs",
        "ratio", "ratio_first", "compiled"}`` (``trainer_first_s`` includes tracing the
        graphs; ``compiled`` lists, per ``steps_per_execution``, Keras' compiled loop:
        ``{"steps", "seconds", "epochs", "ratio", "max_abs_diff"}``, its ratio to the
        trainer's seconds and its test probabilities' largest difference from the
        trainer's).
    """
    roles = holdout_roles(splits)
    y = one_hot(splits["label"])
    tr, va, te = roles == "train", roles == "val", roles == "test"
    args = (feats[tr], y[tr], feats[va], y[va])
    setup(cfg.seed)
    keras_run, keras_s = _timed(lambda: fit(build_head(cfg), *args, cfg, progress=False))
    trainer, first_s = _timed(lambda: Trainer(cfg))
    _, fit_s = _timed(lambda: trainer.fit(*args))
    trained, trainer_s = _timed(lambda: trainer.fit(*args))
    reference = predict_proba(trained.model, feats[te])
    compiled = []
    for n in STEPS_PER_EXECUTION:
        (model, epochs), seconds = _timed(lambda n=n: keras_compiled_fit(*args, cfg, n))
        diff = np.abs(predict_proba(model, feats[te]) - reference).max()
        compiled.append(
            {
                "steps": n or "epoch",
                "seconds": seconds,
                "epochs": epochs,
                "ratio": seconds / trainer_s,
                "max_abs_diff": float(diff),
            }
        )
    return {
        "keras_s": keras_s,
        "keras_epochs": keras_run.epochs,
        "trainer_first_s": first_s + fit_s,
        "trainer_s": trainer_s,
        "trainer_epochs": trained.epochs,
        "ratio": keras_s / trainer_s,
        "ratio_first": keras_s / (first_s + fit_s),
        "compiled": compiled,
    }


def extraction_speed(images: np.ndarray, cfg: config.PaperConfig, n_speed: int) -> dict:
    """Images/s of Keras ``predict`` and of our LiteRT engine on the same images.

    Args:
        images: uint8 images (the first ``n_speed`` are used).
        cfg: ``preprocess``.
        n_speed: images to time.

    Returns:
        ``{"keras_ips", "litert_ips", "extraction_ratio", "max_rel_diff"}``.
    """
    x = scale(images[:n_speed], cfg.preprocess)
    keras_ips, k_out = _rate(KerasBackbone(), x)
    litert_ips, l_out = _rate(LiteRTModel(litert_model_path()), x)
    return {
        "keras_ips": keras_ips,
        "litert_ips": litert_ips,
        "extraction_ratio": litert_ips / keras_ips,
        "max_rel_diff": float(np.abs(l_out - k_out).max() / np.abs(k_out).max()),
    }


def naive_epoch(images: np.ndarray, splits, cfg: config.PaperConfig) -> dict:
    """One real epoch of the end-to-end Keras ``fit`` on images (paper holdout), timed.

    Args:
        images: uint8 images aligned with ``splits``.
        splits: the paper protocol's manifest.
        cfg: the settings.

    Returns:
        ``{"naive_epoch_s", "naive_epoch_images"}`` (images seen: train + val).
    """
    roles = holdout_roles(splits)
    tr, va = roles == "train", roles == "val"
    y = one_hot(splits["label"])
    x_tr, x_va = scale(images[tr], cfg.preprocess), scale(images[va], cfg.preprocess)
    model, one_epoch = build_model(cfg), cfg.with_overrides(epochs=1)
    _, seconds = _timed(lambda: fit(model, x_tr, y[tr], x_va, y[va], one_epoch, progress=False))
    return {"naive_epoch_s": seconds, "naive_epoch_images": int(tr.sum() + va.sum())}


def reproduction(feats: np.ndarray, cfg: config.PaperConfig, per_image: float) -> dict:
    """Every head training of the reproduction (holdout + CV per protocol), ours measured.

    Args:
        feats: features of all images (manifest order).
        cfg: the settings.
        per_image: seconds per image of one end-to-end epoch (the plain way's projection).

    Returns:
        ``{"runs": {protocol: {"seconds", "epochs"}}, "naive_s"}``: our seconds and epochs
        per protocol, and the plain way's projected seconds for the same epochs.
    """
    naive, runs = 0.0, {}
    for protocol in config.PROTOCOLS:
        splits = pipeline.read_splits(protocol)
        roles_list = [holdout_roles(splits)]
        roles_list += [fold_roles(splits, 0, k, protocol, cfg) for k in range(cfg.n_folds)]
        start, epochs = time.perf_counter(), []
        trainer = Trainer(cfg)  # one per protocol, as a fold loop's worker keeps one
        for roles in roles_list:
            epochs.append(trainer.fit_roles(feats, splits["label"], roles).epochs)
            naive += epochs[-1] * int(np.isin(roles, ("train", "val")).sum()) * per_image
        runs[protocol] = {"seconds": time.perf_counter() - start, "epochs": epochs}
    return {"runs": runs, "naive_s": naive}


def run_benchmark(
    cfg: config.PaperConfig = config.PAPER, n_speed: int = 256, progress: bool = True
) -> dict:
    """Measure everything the benchmark table reports.

    Args:
        cfg: the settings (the paper's).
        n_speed: images for the predict/extraction speed comparison.
        progress: show progress bars.

    Returns:
        A dict of measurements (seconds, images/s, ratios).
    """
    setup(cfg.seed)
    table = pipeline.prepare(cfg, progress=progress)
    images = load_images(table, config.AUGMENTED_DIR, progress=progress)
    r: dict = {"n_images": len(images), "threads": config.THREADS}
    r.update(extraction_speed(images, cfg, n_speed))
    with tempfile.TemporaryDirectory() as tmp:  # a fresh cache: every image computed once
        feats, r["extract_s"] = _timed(
            lambda: cached_features(
                images, cfg.preprocess, "litert", cache_dir=Path(tmp), progress=progress
            )
        )
    paper = pipeline.read_splits("paper")
    r["head"] = head_training(feats, paper, cfg)
    # the plain way: one real epoch of the end-to-end fit on images, projected to every run
    r.update(naive_epoch(images, paper, cfg))
    rep = reproduction(feats, cfg, r["naive_epoch_s"] / r["naive_epoch_images"])
    r["runs"] = rep["runs"]
    r["ours_total_s"] = r["extract_s"] + sum(run["seconds"] for run in rep["runs"].values())
    r["naive_total_s"] = rep["naive_s"]
    r["speedup"] = r["naive_total_s"] / r["ours_total_s"]
    times = config.reports_dir() / "run_times.json"
    r["report"] = json.loads(times.read_text()) if times.is_file() else None
    return r


def _speed_rows(r: dict) -> list[tuple[str, str, str]]:
    """Table rows: extraction, head training and the end-to-end epoch."""
    h = r["head"]
    return [
        ("Keras `model.predict`, images/s", f"{r['keras_ips']:.1f}", "1.00x"),
        (
            "LiteRT extraction (XNNPACK), images/s",
            f"{r['litert_ips']:.1f}",
            f"{r['extraction_ratio']:.2f}x; max rel. diff {r['max_rel_diff']:.1e}",
        ),
        (
            "extract all images once (fresh cache, incl. conversion), s",
            f"{r['extract_s']:.1f}",
            f"{r['n_images']} images",
        ),
        (
            "paper head, paper holdout: Keras `fit` (one call per epoch), whole run, s",
            f"{h['keras_s']:.2f}",
            f"1.00x; {h['keras_epochs']} epochs",
        ),
        (
            "paper head, paper holdout: `train.Trainer`, s",
            f"{h['trainer_s']:.2f}",
            f"**{h['ratio']:.1f}x**; {h['trainer_epochs']} epochs",
        ),
        (
            "paper head, paper holdout: `train.Trainer` incl. graph tracing, s",
            f"{h['trainer_first_s']:.2f}",
            f"{h['ratio_first']:.1f}x",
        ),
        *[
            (
                "paper head, paper holdout: Keras `fit`, `jit_compile=True` (no XLA under op "
                f"determinism), `steps_per_execution={c['steps']}`, s",
                f"{c['seconds']:.2f}",
                f"{h['keras_s'] / c['seconds']:.1f}x; {c['ratio']:.1f}x the trainer's time; "
                f"{c['epochs']} epochs; max abs. diff. from the trainer {c['max_abs_diff']:.1e}",
            )
            for c in h["compiled"]
        ],
        (
            "end-to-end `model.fit` on images, s/epoch (1 real epoch)",
            f"{r['naive_epoch_s']:.1f}",
            f"{r['naive_epoch_images']} images (train+val)",
        ),
    ]


def _reproduction_rows(r: dict) -> list[tuple[str, str, str]]:
    """Table rows: each protocol's trainings, the whole reproduction, the last report run."""
    rows = [
        (
            f"{protocol}: holdout + 5-fold CV (6 trainings), s",
            f"{run['seconds']:.1f}",
            "epochs " + ", ".join(map(str, run["epochs"])),
        )
        for protocol, run in r["runs"].items()
    ]
    rows += [
        ("whole reproduction, plain Keras (projected), s", f"{r['naive_total_s']:.0f}", "1.00x"),
        (
            "whole reproduction, ours (measured), s",
            f"{r['ours_total_s']:.1f}",
            f"{r['speedup']:.0f}x",
        ),
    ]
    if r.get("report"):
        for name, seconds in r["report"]["notebooks"].items():
            rows.append((f"`make report`: {name}, s", f"{seconds:.0f}", "last run"))
        rows.append(("`make report`: whole run, s", f"{r['report']['total']:.0f}", "last run"))
    return rows


def format_table(r: dict) -> str:
    """The benchmark as a Markdown table (value, ratio against the plain Keras way).

    Args:
        r: from :func:`run_benchmark`.

    Returns:
        Markdown text ending with a ``speedup=... head_training_ratio=...`` line.
    """
    rows = _speed_rows(r) + _reproduction_rows(r)
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {r['threads']} threads, CPU only; commit {git_commit()}. "
        "Produced by `make benchmark` (`python -m lungct_utils benchmark`).",
        "",
        "| measure | value | ratio / note |",
        "|---|---:|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"speedup={r['speedup']:.1f} head_training_ratio={r['head']['ratio']:.1f} "
        f"extraction_ratio={r['extraction_ratio']:.2f}",
    ]
    return "\n".join(lines) + "\n"


def main(progress: bool = True, output: Path | None = None) -> str:
    """Run, print and save the benchmark (default ``<reports>/benchmarks.md``).

    Args:
        progress: show progress bars.
        output: the Markdown file to write.

    Returns:
        The Markdown text.
    """
    text = format_table(run_benchmark(progress=progress))
    write_text(text, output or config.reports_dir() / "benchmarks.md")
    print(text, end="")
    return text
