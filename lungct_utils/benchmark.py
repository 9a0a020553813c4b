"""``python -m lungct_utils benchmark``: the fast route against the plain Keras way.

Measures on the real augmented set (this machine, ``runtime.THREADS`` threads):

* naive: the paper's end-to-end ``model.fit`` on images, seconds per epoch, timed on one
  real epoch of the paper holdout (training plus validation pass);
* Keras ``model.predict`` images/s against our LiteRT extraction images/s (and their
  maximum relative difference);
* ours: extracting every distinct image once (fresh cache), then head training with the
  paper's schedule for the holdout and the 5-fold CV of every protocol.

The naive time of the whole reproduction is projected from the measured epoch time and
the epochs each of our runs actually took (scaled by its training+validation size); the
table goes to ``reports/benchmarks.md`` and the last line printed is
``speedup=<x> extraction_ratio=<y>``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from . import config
from .augment import load_images
from .experiment import run_cv, run_holdout
from .features import KerasBackbone, LiteRTModel, cached_features, litert_model_path
from .io_utils import write_text
from .model import build_model
from .prepare import prepare_all, read_augmented, read_splits
from .preprocess import one_hot, scale
from .provenance import git_commit
from .runtime import THREADS, setup
from .train import fit


def _rate(fn, x: np.ndarray, repeats: int = 2) -> tuple[float, np.ndarray]:
    fn(x[:8])  # warm-up (graph tracing, interpreter allocation)
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(x)
        best = min(best, time.perf_counter() - start)
    return len(x) / best, out


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
    prepare_all(config.data_dir(), cfg, progress=progress)
    table = read_augmented()
    images = load_images(table, config.AUGMENTED_DIR, progress=progress)
    r: dict = {"n_images": len(images), "threads": THREADS}

    x = scale(images[:n_speed], cfg.preprocess)
    keras_bb = KerasBackbone()
    lite_bb = LiteRTModel(litert_model_path())
    r["keras_ips"], k_out = _rate(keras_bb, x)
    r["litert_ips"], l_out = _rate(lite_bb, x)
    r["extraction_ratio"] = r["litert_ips"] / r["keras_ips"]
    r["max_rel_diff"] = float(np.abs(l_out - k_out).max() / np.abs(k_out).max())

    # naive: one real epoch of the paper's end-to-end fit on the paper holdout
    splits = read_splits("paper")
    train = (splits["holdout"] == "train").to_numpy()
    val = (splits["holdout"] == "val").to_numpy()
    y = one_hot(splits["label"])
    model = build_model(cfg)
    one_epoch = cfg.with_overrides(epochs=1)
    x_train, x_val = scale(images[train], cfg.preprocess), scale(images[val], cfg.preprocess)
    start = time.perf_counter()
    fit(model, x_train, y[train], x_val, y[val], one_epoch, progress=False)
    r["naive_epoch_s"] = time.perf_counter() - start
    r["naive_epoch_images"] = int(train.sum() + val.sum())
    del x_train, x_val, model

    # ours: extraction of every distinct image into a fresh cache, then all head trainings
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        feats = cached_features(
            images, cfg.preprocess, "litert", cache_dir=Path(tmp), progress=progress
        )
        r["extract_s"] = time.perf_counter() - start  # includes the one-off LiteRT conversion
    r["runs"] = {}
    naive_total, ours_train = 0.0, 0.0
    per_image = r["naive_epoch_s"] / r["naive_epoch_images"]
    for protocol in config.PROTOCOLS:
        splits = read_splits(protocol)
        start = time.perf_counter()
        hold = run_holdout(feats, splits, cfg, progress=False)
        hold_s = time.perf_counter() - start
        start = time.perf_counter()
        folds = run_cv(feats, splits, protocol, cfg, progress=False)
        cv_s = time.perf_counter() - start
        for run in [hold, *folds]:
            n_fit = len(splits) - len(run.test_index)
            naive_total += run.train.epochs * n_fit * per_image
        ours_train += hold_s + cv_s
        r["runs"][protocol] = {
            "holdout_s": hold_s,
            "holdout_epochs": hold.train.epochs,
            "cv_s": cv_s,
            "cv_epochs": [f.train.epochs for f in folds],
        }
    r["ours_total_s"] = r["extract_s"] + ours_train
    r["naive_total_s"] = naive_total
    r["speedup"] = naive_total / r["ours_total_s"]
    return r


def format_table(r: dict) -> str:
    """The benchmark as a Markdown table plus the closing ``speedup=`` line.

    Args:
        r: from :func:`run_benchmark`.

    Returns:
        Markdown text.
    """
    rows = [
        ("naive end-to-end `model.fit`, s/epoch (measured, 1 real epoch)",
         f"{r['naive_epoch_s']:.1f}", f"{r['naive_epoch_images']} images (train+val)"),
        ("Keras `model.predict`, images/s", f"{r['keras_ips']:.1f}", "1.00x"),
        ("LiteRT extraction (XNNPACK), images/s", f"{r['litert_ips']:.1f}",
         f"{r['extraction_ratio']:.2f}x; max rel. diff {r['max_rel_diff']:.1e}"),
        ("extract all images once (fresh cache, incl. conversion), s", f"{r['extract_s']:.1f}",
         f"{r['n_images']} images"),
    ]  # fmt: skip
    for protocol, run in r["runs"].items():
        rows.append((f"{protocol}: head training, paper schedule, s", f"{run['holdout_s']:.1f}",
                     f"{run['holdout_epochs']} epochs"))  # fmt: skip
        rows.append((f"{protocol}: 5-fold CV, s", f"{run['cv_s']:.1f}",
                     "epochs " + ", ".join(map(str, run["cv_epochs"]))))  # fmt: skip
    rows += [
        ("whole reproduction, naive (projected), s", f"{r['naive_total_s']:.0f}",
         "holdout + 5-fold CV, every protocol"),
        ("whole reproduction, ours (measured), s", f"{r['ours_total_s']:.1f}",
         f"{r['speedup']:.0f}x faster"),
    ]  # fmt: skip
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {r['threads']} threads, CPU only; commit {git_commit()}. "
        "Produced by `python -m lungct_utils benchmark`.",
        "",
        "| measure | value | ratio / note |",
        "|---|---:|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"speedup={r['speedup']:.1f} extraction_ratio={r['extraction_ratio']:.2f}",
    ]
    return "\n".join(lines) + "\n"


def main(progress: bool = True, output: Path = config.REPORTS / "benchmarks.md") -> str:
    """Run, print and save the benchmark.

    Args:
        progress: show progress bars.
        output: the Markdown file to write.

    Returns:
        The Markdown text.
    """
    text = format_table(run_benchmark(progress=progress))
    write_text(text, output)
    print(text, end="")
    return text
