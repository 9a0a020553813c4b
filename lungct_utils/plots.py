"""Figures of the notebooks; each is saved under ``<reports>/figures/`` and returned.

Every function draws one figure (matplotlib/seaborn), saves it as PNG (atomically) and
returns the ``Figure``; notebooks assign the result (``_ = plots.x(...)``) so no
``<Figure ...>`` text reaches the stored outputs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from PIL import Image

from . import config
from .images import open_rgb
from .io_utils import atomic_path

PALETTE = {"benign": "#4c72b0", "malignant": "#c44e52", "normal": "#55a868"}


def save(fig, name: str, folder: Path | None = None) -> Path:
    """Save a figure as ``folder/name.png`` atomically.

    Args:
        fig: the figure.
        name: file stem.
        folder: target folder (default: this run's ``<reports>/figures``).

    Returns:
        The PNG path.
    """
    path = Path(folder or config.figures_dir()) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def class_counts(manifest: pd.DataFrame, name: str = "01_class_counts"):
    """Bar chart of images per class."""
    fig, ax = plt.subplots(figsize=(5, 3))
    counts = manifest["label"].value_counts().reindex(config.CLASSES)
    ax.bar(counts.index, counts.to_numpy(), color=[PALETTE[c] for c in counts.index])
    for i, v in enumerate(counts.to_numpy()):
        ax.text(i, v, str(v), ha="center", va="bottom")
    ax.set_ylabel("images")
    ax.set_title("IQ-OTH/NCCD originals per class")
    save(fig, name)
    return fig


def sample_grid(manifest: pd.DataFrame, n: int = 4, seed: int = 0, name: str = "01_samples"):
    """A grid of ``n`` seeded example slices per class, one row per class (paper Fig. 2)."""
    rng = np.random.default_rng(seed)
    paths_by_label = {}
    for c in config.CLASSES:
        paths = manifest.loc[manifest["label"] == c, "abspath"].to_numpy()
        paths_by_label[c] = list(paths[rng.permutation(len(paths))[:n]])
    fig, axes = plt.subplots(len(paths_by_label), n, figsize=(2.2 * n, 2.4 * len(paths_by_label)))
    for r, (label, paths) in enumerate(paths_by_label.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(paths):
                ax.imshow(np.asarray(open_rgb(paths[c])))
                ax.set_title(f"{label}: {Path(paths[c]).name}", fontsize=7)
    fig.tight_layout()
    save(fig, name)
    return fig


def size_scatter(manifest: pd.DataFrame, name: str = "01_image_sizes"):
    """Image width against height per class (jittered) and aspect-ratio counts."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    rng = np.random.default_rng(0)
    for label in config.CLASSES:
        part = manifest[manifest["label"] == label]
        jitter = rng.normal(0, 3, (2, len(part)))
        axes[0].scatter(
            part["width"] + jitter[0],
            part["height"] + jitter[1],
            s=8,
            alpha=0.5,
            label=label,
            color=PALETTE[label],
        )
    axes[0].set_xlabel("width (px)")
    axes[0].set_ylabel("height (px)")
    axes[0].legend()
    axes[0].set_title("image size by class (jittered)")
    aspect = (manifest["width"] / manifest["height"]).round(2).astype(str)
    tab = pd.crosstab(aspect, manifest["label"]).reindex(columns=list(config.CLASSES), fill_value=0)
    tab.plot.bar(ax=axes[1], color=[PALETTE[c] for c in tab.columns], logy=True)
    axes[1].set_xlabel("aspect ratio (width / height)")
    axes[1].set_ylabel("images (log)")
    axes[1].set_title("aspect ratio by class")
    fig.tight_layout()
    save(fig, name)
    return fig


def intensity_histograms(hists: dict[str, np.ndarray], name: str = "01_intensity"):
    """Mean normalized grey-level histogram per class."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, h in hists.items():
        ax.plot(np.arange(len(h)), h, label=label, color=PALETTE[label])
    ax.set_yscale("log")
    ax.set_xlabel("grey level")
    ax.set_ylabel("fraction of pixels (log)")
    ax.set_title("pixel-intensity distribution per class")
    ax.legend()
    save(fig, name)
    return fig


def image_pairs(pairs: list[tuple[np.ndarray, np.ndarray, str]], name: str):
    """Rows of (source, augmented copy) with the transform as title."""
    fig, axes = plt.subplots(len(pairs), 2, figsize=(5, 2.5 * len(pairs)))
    axes = np.atleast_2d(axes)
    for r, (src, aug, title) in enumerate(pairs):
        for c, (img, t) in enumerate([(src, "source"), (aug, title)]):
            axes[r, c].imshow(img)
            axes[r, c].set_title(t, fontsize=7)
            axes[r, c].axis("off")
    fig.tight_layout()
    save(fig, name)
    return fig


def image_grid(images: list, titles: list[str], name: str, cols: int = 8):
    """Images in a grid, each with a short title (e.g. what the input check said).

    Args:
        images: RGB arrays or Pillow images.
        titles: one per image.
        name: figure file name.
        cols: images per row.

    Returns:
        The figure.
    """
    if len(images) != len(titles) or not images:
        raise ValueError(f"image_grid: {len(images)} images and {len(titles)} titles")
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.95 * cols, 1.1 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles, strict=False):
        thumb = Image.fromarray(np.asarray(img)) if not isinstance(img, Image.Image) else img
        thumb = thumb.copy()
        thumb.thumbnail((64, 64))  # small thumbnails keep the notebook and its HTML light
        ax.imshow(np.asarray(thumb))
        ax.set_title(title, fontsize=5)
    fig.tight_layout()
    save(fig, name)
    return fig


def split_proportions(tables: dict[str, pd.DataFrame], name: str = "02_split_proportions"):
    """Stacked class proportions per holdout split, one panel per protocol."""
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3), sharey=True)
    for ax, (protocol, tab) in zip(np.atleast_1d(axes), tables.items(), strict=True):
        tab.plot.bar(stacked=True, ax=ax, color=[PALETTE[c] for c in tab.columns], legend=False)
        ax.set_title(f"protocol: {protocol}")
        ax.set_ylabel("class share")
    np.atleast_1d(axes)[-1].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    save(fig, name)
    return fig


def training_curves(histories: dict[str, dict], name: str = "03_training_curves"):
    """Train/validation accuracy and loss per epoch (paper Figs. 4 and 5)."""
    fig, axes = plt.subplots(len(histories), 2, figsize=(10, 3.2 * len(histories)), squeeze=False)
    for r, (protocol, h) in enumerate(histories.items()):
        epochs = np.arange(1, len(h["loss"]) + 1)
        for c, metric in enumerate(("accuracy", "loss")):
            ax = axes[r, c]
            ax.plot(epochs, h[metric], label=f"train {metric}")
            ax.plot(epochs, h[f"val_{metric}"], label=f"validation {metric}")
            ax.set_xlabel("epoch")
            ax.set_title(f"{protocol}: {metric}")
            ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, name)
    return fig


def confusion(matrices: dict[str, list[list[int]]], name: str = "04_confusion"):
    """Confusion-matrix heatmaps (paper Fig. 6), rows true, columns predicted."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.5 * len(matrices), 3.8), squeeze=False)
    for ax, (title, cm) in zip(axes[0], matrices.items(), strict=True):
        sns.heatmap(
            np.array(cm),
            annot=True,
            fmt="d",
            cmap="Blues",
            cbar=False,
            ax=ax,
            xticklabels=config.CLASSES,
            yticklabels=config.CLASSES,
        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.tight_layout()
    save(fig, name)
    return fig


def roc_curves(curves: dict[str, dict[str, tuple]], name: str = "04_roc"):
    """One-vs-rest ROC curves with AUC, one panel per protocol."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 4), squeeze=False)
    for ax, (protocol, per_class) in zip(axes[0], curves.items(), strict=True):
        for label, (fpr, tpr, auc) in per_class.items():
            ax.plot(fpr, tpr, label=f"{label} (AUC {auc:.3f})", color=PALETTE[label])
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{protocol}: one-vs-rest ROC")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save(fig, name)
    return fig


def seed_spread(per_seed: pd.DataFrame, published: dict, name: str = "05_seed_spread"):
    """Holdout and CV accuracy of the reproduction per seed, beside the paper's figures.

    Args:
        per_seed: rows ``seed, holdout accuracy, CV accuracy`` (fractions).
        published: ``{"holdout accuracy": x, "CV accuracy": y}``.
        name: file stem.
    """
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k, column in enumerate(("holdout accuracy", "CV accuracy")):
        ax.scatter(
            np.full(len(per_seed), k),
            per_seed[column],
            color="#4c72b0",
            zorder=3,
            label="ours, one point per seed" if k == 0 else None,
        )
        ax.hlines(
            published[column],
            k - 0.3,
            k + 0.3,
            color="#c44e52",
            label="published" if k == 0 else None,
        )
    ax.set_xticks([0, 1], ["holdout test accuracy", "5-fold CV accuracy"])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylabel("accuracy (paper protocol)")
    ax.set_title("the reproduction over seeds")
    ax.legend(fontsize=8)
    save(fig, name)
    return fig


def case_strip(images, numbers, runs, cases, similarity, title: str, name: str):
    """Consecutive slices of one class folder, with the cuts between runs and merged cases.

    Args:
        images: uint8 slices in scan order.
        numbers: their file numbers.
        runs: run id per slice (before merging).
        cases: case id per slice (after merging).
        similarity: per slice, its similarity to the next (NaN for the last).
        title: figure title.
        name: file stem.
    """
    n, cols = len(images), 10
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.6 * rows), squeeze=False)
    palette = sns.color_palette("tab10", 10)
    colour = {c: palette[k % 10] for k, c in enumerate(dict.fromkeys(cases))}
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k])
        cut = k + 1 < n and runs[k] != runs[k + 1]
        after = "" if k + 1 >= n else f"\n→ {similarity[k]:.2f}" + (" CUT" if cut else "")
        ax.set_title(
            f"({numbers[k]}) {cases[k]}{after}", fontsize=6, color="red" if cut else "black"
        )
        for side in ax.spines.values():
            side.set_visible(True)
            side.set_color(colour[cases[k]])
            side.set_linewidth(3)
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, name)
    return fig


def reliability_diagrams(tables: dict[str, pd.DataFrame], name: str = "05_reliability"):
    """Reliability diagram per protocol: confidence against accuracy, bins sized by count.

    Args:
        tables: protocol -> :func:`~lungct_utils.evaluate.reliability` of its pooled
            repeated-CV predictions.
        name: file stem.
    """
    fig, axes = plt.subplots(1, len(tables), figsize=(3.4 * len(tables), 3.4), squeeze=False)
    for ax, (protocol, t) in zip(axes[0], tables.items(), strict=True):
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.bar(
            (t["lo"] + t["hi"]) / 2,
            t["accuracy"],
            width=t["hi"] - t["lo"],
            alpha=0.6,
            edgecolor="black",
            label="accuracy in bin",
        )
        ax.scatter(
            t["confidence"],
            t["accuracy"],
            s=8 + 200 * t["count"] / t["count"].sum(),
            color="#c44e52",
            zorder=3,
            label="mean confidence",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top class)")
        ax.set_title(protocol)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save(fig, name)
    return fig


def similarity_distribution(
    sim: np.ndarray, counts: pd.DataFrame, threshold: float, name: str = "01_near_duplicates"
):
    """Nearest-neighbour similarity histogram and links per threshold, threshold marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    axes[0].hist(sim.max(axis=1), bins=60, color="grey")
    axes[0].axvline(threshold, color="red", ls="--", label=f"threshold {threshold:.2f}")
    axes[0].set_xlabel("similarity to the nearest other original (centered cosine, flip-invariant)")
    axes[0].set_ylabel("originals")
    axes[0].legend()
    axes[1].plot(counts["threshold"], counts["links"], label="all links")
    axes[1].plot(counts["threshold"], counts["cross_class_links"], label="links across classes")
    axes[1].axvline(threshold, color="red", ls="--")
    axes[1].set_yscale("symlog", linthresh=1)
    axes[1].set_ylim(bottom=0)
    axes[1].set_xlabel("threshold")
    axes[1].set_ylabel("near-duplicate links")
    axes[1].set_title("lowest threshold with no cross-class link")
    axes[1].legend()
    fig.tight_layout()
    save(fig, name)
    return fig


def protocol_comparison(frame: pd.DataFrame, title: str, name: str = "05_protocols"):
    """Metrics per protocol side by side, with their intervals (the headline figure).

    Args:
        frame: rows ``protocol, metric, value, lo, hi`` (fractions; lo/hi may be NaN).
        title: figure title (say what the intervals are).
        name: file stem.
    """
    fig, ax = plt.subplots(figsize=(9, 3.8))
    metrics = list(dict.fromkeys(frame["metric"]))
    protocols = list(dict.fromkeys(frame["protocol"]))
    width = 0.8 / len(protocols)
    for k, protocol in enumerate(protocols):
        part = frame[frame["protocol"] == protocol].set_index("metric").reindex(metrics)
        x = np.arange(len(metrics)) + (k - (len(protocols) - 1) / 2) * width
        err = np.vstack([part["value"] - part["lo"], part["hi"] - part["value"]])
        ax.bar(x, part["value"], width, label=protocol, yerr=np.nan_to_num(err, nan=0.0), capsize=3)
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.set_ylim(0.0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    save(fig, name)
    return fig


def family_plot(frame: pd.DataFrame, title: str, name: str = "08_bracket"):
    """Each metric against the grouping, for both models, with 95% intervals.

    Args:
        frame: rows ``grouping, model, metric, value, lo, hi`` (fractions).
        title: figure title.
        name: file stem.
    """
    metrics = list(dict.fromkeys(frame["metric"]))
    groupings = list(dict.fromkeys(frame["grouping"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.8), sharey=True)
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for k, model in enumerate(dict.fromkeys(frame["model"])):
            part = frame[(frame["metric"] == metric) & (frame["model"] == model)]
            part = part.set_index("grouping").reindex(groupings)
            x = np.arange(len(groupings)) + (k - 0.5) * 0.25
            err = np.vstack([part["value"] - part["lo"], part["hi"] - part["value"]])
            ax.errorbar(x, part["value"], yerr=err, fmt="o", capsize=3, label=model)
        ax.set_xticks(np.arange(len(groupings)), groupings, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric)
        ax.set_ylim(0.0, 1.0)
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, name)
    return fig


def set_histograms(hists: dict[str, np.ndarray], name: str = "09_intensity"):
    """Grey-level histograms of image sets (one line each), e.g. internal against external.

    Args:
        hists: set name -> 256 fractions.
        name: figure file name.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, h in hists.items():
        ax.plot(np.arange(len(h)), h, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("grey level (model input, 224 x 224)")
    ax.set_ylabel("fraction of pixels (log)")
    ax.set_title("pixel-intensity distribution per set")
    ax.legend(fontsize=8)
    save(fig, name)
    return fig


def distance_histograms(frames: dict[str, pd.DataFrame], thresholds: dict, name: str):
    """Histograms of the input check's distances per set, with each layer's threshold.

    Args:
        frames: set name -> DataFrame with ``layout_distance`` and ``feature_distance``.
        thresholds: column -> the threshold line to draw.
        name: figure file name.

    Returns:
        The figure.
    """
    columns = ("layout_distance", "feature_distance")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, column in zip(axes, columns, strict=True):
        values = np.concatenate([f[column].to_numpy(float) for f in frames.values()])
        top = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
        bins = np.linspace(0, max(top * 1.02, 1e-6), 40)
        for label, frame in frames.items():
            ax.hist(frame[column], bins=bins, alpha=0.5, density=True, label=label)
        if column in thresholds:
            ax.axvline(float(thresholds[column]), color="black", ls="--", lw=1, label="threshold")
        ax.set_xlabel(column.replace("_", " "))
        ax.set_ylabel("density")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save(fig, name)
    return fig
