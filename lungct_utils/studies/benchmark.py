"""``make benchmark``: the fast route against the plain Keras way, as a table with ratios.

Measured on the real augmented set, on this machine (``config.THREADS`` threads):

* feature extraction: Keras ``model.predict`` against our LiteRT engine (images/s, their
  maximum relative difference);
* head training with the paper's schedule on cached features (paper holdout): Keras
  ``fit`` one epoch at a time (the previous route) against :func:`~lungct_utils.train.fast_fit`
  (one compiled graph per epoch), both from the same initial weights;
* the end-to-end Keras ``fit`` on images (one real epoch) and, projected from it, the whole
  reproduction (holdout and one 5-fold CV per protocol) the plain way, against ours measured;
* the time of each notebook and of the whole ``make report`` run, from the last run's log
  (``<reports>/run_times.json``).

Speed is never asserted in tests; this table is where it is measured.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import config, pipeline
from ..augment import load_images
from ..features import KerasBackbone, LiteRTModel, cached_features, litert_model_path
from ..images import one_hot, scale
from ..io_utils import git_commit, write_text
from ..model import build_head, build_model
from ..splits import fold_roles, holdout_roles
from ..train import fast_fit, fit, setup, train_head


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


def head_training(feats: np.ndarray, splits, cfg: config.PaperConfig) -> dict:
    """Seconds to train the paper's head on the paper holdout: Keras fit against fast_fit.

    Args:
        feats: features aligned with ``splits``.
        splits: the paper protocol's manifest.
        cfg: the settings.

    Returns:
        ``{"keras_s", "keras_epochs", "fast_first_s", "fast_s", "fast_epochs", "ratio",
        "ratio_first"}`` (``fast_first_s`` includes tracing the graphs once).
    """
    roles = holdout_roles(splits)
    y = one_hot(splits["label"])
    tr, va = roles == "train", roles == "val"
    args = (feats[tr], y[tr], feats[va], y[va], cfg)
    setup(cfg.seed)
    keras_run, keras_s = _timed(lambda: fit(build_head(cfg), *args, progress=False))
    setup(cfg.seed)
    _, first_s = _timed(lambda: fast_fit(build_head(cfg), *args, progress=False))
    setup(cfg.seed)
    fast_run, fast_s = _timed(lambda: fast_fit(build_head(cfg), *args, progress=False))
    return {
        "keras_s": keras_s,
        "keras_epochs": keras_run.epochs,
        "fast_first_s": first_s,
        "fast_s": fast_s,
        "fast_epochs": fast_run.epochs,
        "ratio": keras_s / fast_s,
        "ratio_first": keras_s / first_s,
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
        for roles in roles_list:
            epochs.append(train_head(feats, splits["label"], roles, cfg, progress=False).epochs)
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
            "paper head, paper holdout: `fast_fit`, s",
            f"{h['fast_s']:.2f}",
            f"**{h['ratio']:.1f}x**; {h['fast_epochs']} epochs",
        ),
        (
            "paper head, paper holdout: `fast_fit` incl. graph tracing, s",
            f"{h['fast_first_s']:.2f}",
            f"{h['ratio_first']:.1f}x",
        ),
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
