"""Tables for the EDA and preprocessing notebooks (01, 02)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from . import config
from .config import CLASSES
from .io_utils import sha256_bytes
from .preprocess import load_uint8, open_rgb, scale

#: Cases per class as the dataset's description states (110 in all).
STATED_CASES = {"benign": 15, "malignant": 40, "normal": 55}


def class_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per class, their share, and the cases the dataset description states.

    Args:
        manifest: the release manifest.

    Returns:
        DataFrame indexed by class with ``images``, ``share``, ``stated_cases`` and
        ``images_per_case``, plus a ``total`` row.
    """
    counts = manifest["label"].value_counts().reindex(CLASSES).astype(int)
    out = pd.DataFrame({"images": counts, "stated_cases": pd.Series(STATED_CASES)})
    out.loc["total"] = out.sum()
    out["share"] = (out["images"] / counts.sum()).round(3)
    out["images_per_case"] = (out["images"] / out["stated_cases"]).round(1)
    return out


def size_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Counts of each image size (width x height) per class.

    Args:
        manifest: the release manifest.

    Returns:
        DataFrame: rows ``WxH (aspect)``, columns classes.
    """
    size = manifest["width"].astype(str) + "x" + manifest["height"].astype(str)
    aspect = (manifest["width"] / manifest["height"]).map(lambda a: f"{a:.2f}")
    key = size + " (" + aspect + ")"
    tab = pd.crosstab(key.rename("size (aspect)"), manifest["label"])
    return tab.reindex(columns=list(CLASSES), fill_value=0)


def sample_paths(manifest: pd.DataFrame, n: int = 4, seed: int = 0) -> dict[str, list[str]]:
    """A seeded sample of ``n`` file paths per class (for paper Fig. 2).

    Args:
        manifest: a manifest with ``abspath``.
        n: images per class.
        seed: random seed.

    Returns:
        label -> list of paths.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for c in CLASSES:
        paths = manifest.loc[manifest["label"] == c, "abspath"].to_numpy()
        out[c] = list(paths[rng.permutation(len(paths))[:n]])
    return out


def intensity_histograms(manifest: pd.DataFrame) -> dict[str, np.ndarray]:
    """Mean normalized 256-bin grey-level histogram per class (full-size images).

    Args:
        manifest: a manifest with ``abspath``.

    Returns:
        label -> array of 256 fractions.
    """
    out = {}
    for c in CLASSES:
        hists = []
        for path in manifest.loc[manifest["label"] == c, "abspath"]:
            grey = np.asarray(open_rgb(path).convert("L"))
            hists.append(np.bincount(grey.ravel(), minlength=256) / grey.size)
        out[c] = np.mean(hists, axis=0)
    return out


def intensity_table(hists: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean grey level and share of near-black pixels per class.

    Args:
        hists: from :func:`intensity_histograms`.

    Returns:
        DataFrame indexed by class.
    """
    levels = np.arange(256)
    rows = {c: {"mean_grey": float((h * levels).sum()), "share_below_10": float(h[:10].sum())}
            for c, h in hists.items()}  # fmt: skip
    return pd.DataFrame(rows).T.round(3)


def pixel_duplicate_groups(manifest: pd.DataFrame) -> list[list[str]]:
    """Groups of files whose decoded pixels are identical (even if bytes differ).

    Args:
        manifest: a manifest with ``abspath`` and ``path``.

    Returns:
        Lists of relative paths, two or more each, sorted.
    """
    keys = [sha256_bytes(np.asarray(Image.open(p)).tobytes()) for p in manifest["abspath"]]
    groups = pd.Series(manifest["path"].to_numpy()).groupby(keys).apply(sorted)
    return sorted(g for g in groups if len(g) > 1)


def duplicate_table(manifest: pd.DataFrame, byte_groups, pixel_groups) -> pd.DataFrame:
    """Exact duplicates per class: groups and files, by bytes and by pixels.

    Args:
        manifest: the release manifest.
        byte_groups: from :func:`~lungct_utils.dataset.duplicate_groups`.
        pixel_groups: from :func:`pixel_duplicate_groups`.

    Returns:
        DataFrame indexed by class (``across classes`` counts groups mixing labels).
    """
    label = dict(zip(manifest["path"], manifest["label"], strict=True))
    rows = {}
    for name, groups in (("same bytes", byte_groups), ("same pixels", pixel_groups)):
        labels = [{label[p] for p in g} for g in groups]
        row = {c: sum(1 for s in labels if s == {c}) for c in CLASSES}
        row["across classes"] = sum(1 for s in labels if len(s) > 1)
        row["files in groups"] = sum(len(g) for g in groups)
        rows[name] = row
    return pd.DataFrame(rows).T


def preprocess_steps(path: str, mode: str = "paper") -> pd.DataFrame:
    """What each preprocessing step (paper II.B) does to one image.

    Args:
        path: an image file.
        mode: preprocessing mode.

    Returns:
        DataFrame with one row per step: shape, dtype, min, max.
    """
    with Image.open(path) as raw:
        raw.load()
        first = np.asarray(raw)
    rgb = np.asarray(open_rgb(path))
    resized = load_uint8(path, config.PAPER.image_size)
    scaled = scale(resized, mode)
    steps = [("decoded (Pillow)", first), ("RGB", rgb), ("resized 224x224 bilinear", resized),
             (f"scaled ({mode})", scaled)]  # fmt: skip
    return pd.DataFrame(
        [
            {
                "step": s,
                "shape": str(a.shape),
                "dtype": str(a.dtype),
                "min": float(a.min()),
                "max": float(a.max()),
            }
            for s, a in steps
        ]  # fmt: skip
    ).set_index("step")


def augmented_vs_table_one(
    table: pd.DataFrame, cfg: config.PaperConfig = config.PAPER
) -> pd.DataFrame:
    """Augmented class counts beside the paper's Table I and the originals.

    Args:
        table: the augmented manifest.
        cfg: its settings.

    Returns:
        DataFrame indexed by class: ``originals``, ``copies``, ``augmented``, ``table_I``.
    """
    originals = table[table["transform"] == "identity"]["label"].value_counts()
    total = table["label"].value_counts()
    out = pd.DataFrame({
        "originals": originals.reindex(CLASSES),
        "copies": (total - originals).reindex(CLASSES),
        "augmented": total.reindex(CLASSES),
        "table_I": pd.Series(dict(cfg.augmented_counts)).reindex(CLASSES),
    })  # fmt: skip
    out.loc["total"] = out.sum()
    return out.astype(int)


def augmentation_pairs(table: pd.DataFrame, n: int = 4, seed: int = 0):
    """``n`` augmented copies beside their sources (seeded choice).

    Args:
        table: the augmented manifest.
        n: pairs.
        seed: random seed.

    Returns:
        List of ``(source image, copy, transform text)``.
    """
    rng = np.random.default_rng(seed)
    copies = table[table["transform"] != "identity"]
    picks = copies.iloc[rng.permutation(len(copies))[:n]]
    originals = (
        table[table["transform"] == "identity"].drop_duplicates("source").set_index("source")
    )
    folder = config.AUGMENTED_DIR
    return [
        (
            np.asarray(open_rgb(folder / originals.loc[r.source, "file"])),
            np.asarray(open_rgb(folder / r.file)),
            f"{r.id}: {r.transform}",
        )  # fmt: skip
        for r in picks.itertuples()
    ]


def split_table(splits: pd.DataFrame, column: str = "holdout") -> pd.DataFrame:
    """Images per split value and class, with totals and the split's share.

    Args:
        splits: a split manifest.
        column: ``"holdout"`` or ``"fold"``.

    Returns:
        DataFrame indexed by split value.
    """
    tab = pd.crosstab(splits[column], splits["label"]).reindex(columns=list(CLASSES), fill_value=0)
    if column == "holdout":
        tab = tab.reindex(["train", "val", "test"])
    tab["total"] = tab.sum(axis=1)
    tab["share"] = (tab["total"] / tab["total"].sum()).round(3)
    return tab


def leakage_table(splits_by_protocol: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """How many source groups sit on more than one side of each split.

    Args:
        splits_by_protocol: protocol -> split manifest.

    Returns:
        DataFrame indexed by protocol: ``groups``, ``crossing holdout``, ``crossing folds``,
        ``test images with a copy in train``.
    """
    rows = {}
    for protocol, s in splits_by_protocol.items():
        train_groups = set(s.loc[s["holdout"] == "train", "group"])
        test = s[s["holdout"] == "test"]
        rows[protocol] = {
            "groups": s["group"].nunique(),
            "crossing holdout": int((s.groupby("group")["holdout"].nunique() > 1).sum()),
            "crossing folds": int((s.groupby("group")["fold"].nunique() > 1).sum()),
            "test images with a copy in train": int(test["group"].isin(train_groups).sum()),
        }
    return pd.DataFrame(rows).T


def example_image(label: str = "malignant", index: int = 0):
    """A file of the release (sorted by name) to demonstrate preprocessing on.

    Args:
        label: its class.
        index: position among that class's files.

    Returns:
        The file path.
    """
    from .dataset import class_files, find_release

    if label not in CLASSES:
        raise ValueError(f"example_image: label must be one of {CLASSES}, got {label!r}")
    files = [p for p, lab in class_files(find_release(config.data_dir())) if lab == label]
    if not 0 <= index < len(files):
        raise ValueError(f"example_image: index {index!r} outside 0..{len(files) - 1}")
    return files[index]


def near_pairs(result: dict, n: int = 3) -> list[tuple]:
    """The most similar distinct originals and pairs just above the audit threshold.

    Args:
        result: from :func:`~lungct_utils.audit.audit_originals`.
        n: pairs of each kind.

    Returns:
        ``(image, image, title)`` tuples for :func:`~lungct_utils.plots.image_pairs`.
    """
    from .audit import top_pairs

    m, images, sim = result["manifest"], result["images"], result["sim"]
    out = []
    for i, j, v in top_pairs(sim, m["sha256"], result["threshold"], n):
        title = f"{m['path'][j].split('/')[-1]} ~ {m['path'][i].split('/')[-1]}: {v:.3f}"
        out.append((images[i], images[j], title))
    return out
