"""Dataset audit: exact and near-duplicates, pseudo-case groups, thumbnails.

IQ-OTH/NCCD has no patient identifiers, so slices of one scan can sit on both sides of a
split even when augmented copies do not. We infer **pseudo-cases**:

1. exact duplicates (same bytes) are merged;
2. near-duplicates are linked by the cosine similarity of their frozen MobileNetV2 features
   after subtracting the dataset's mean feature (plain cosine of ReLU features is high for
   any two CT slices), taking the best over the other image's views (itself, its mirror,
   rotations by +-4 and +-8 degrees) so that flipped or rotated copies link too;
3. the threshold is the lowest at which **no link joins two classes**: slices of different
   classes come from different patients, so a cross-class link is certainly false, and the
   count of cross-class links estimates the false-link rate at a threshold;
4. connected components of the links are the pseudo-cases.

Notebook 01 runs the shortcut probes (a decision tree on width, height and aspect ratio;
logistic regression on :func:`thumbnails`) in its own cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .augment import apply_transform
from .config import CLASSES
from .images import open_rgb
from .io_utils import sha256_bytes

THRESHOLDS = np.round(np.arange(0.50, 0.995, 0.01), 2)
#: Side of the grey thumbnails the shortcut probe of notebook 01 classifies.
SHORTCUT_SIDE = 8


def centered_unit(features: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Subtract the mean feature and scale rows to unit length.

    Args:
        features: ``(n, d)``.
        mean: the mean to subtract (default: of ``features``).

    Returns:
        float64 ``(n, d)``.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x - (x.mean(axis=0) if mean is None else mean)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


#: Views of each image whose features are compared too: a mirror and small rotations, so
#: flipped or rotated copies (rotations up to about 10 degrees) still link.
VIEWS: tuple[tuple[bool, float], ...] = (
    (True, 0.0),
    (False, 4.0),
    (False, -4.0),
    (False, 8.0),
    (False, -8.0),
)


def views(images: np.ndarray) -> list[np.ndarray]:
    """The :data:`VIEWS` of a batch of images (mirror, then rotations).

    Args:
        images: uint8 ``(n, s, s, 3)``.

    Returns:
        One uint8 array per view, each ``(n, s, s, 3)``.
    """
    return [
        np.stack([apply_transform(img, flip=f, rotation=r) for img in images]) for f, r in VIEWS
    ]


def similarity(
    features: np.ndarray, view_features: list[np.ndarray], mean: np.ndarray | None = None
) -> np.ndarray:
    """Centered cosine similarity between all pairs, the best over the other image's views.

    Args:
        features: ``(n, d)`` features of the images.
        view_features: ``(n, d)`` features of each view (mirror, rotations) of them.
        mean: the feature to centre on (default: the mean of ``features``).

    Returns:
        ``(n, n)`` symmetric matrix, diagonal set to -1.
    """
    for v in view_features:
        if v.shape != features.shape:
            raise ValueError(f"similarity: shapes {features.shape} and {v.shape} differ")
    mean = features.mean(axis=0) if mean is None else mean
    a = centered_unit(features, mean)
    sim = a @ a.T
    for v in view_features:
        cross = a @ centered_unit(v, mean).T
        sim = np.maximum(sim, np.maximum(cross, cross.T))
    np.fill_diagonal(sim, -1.0)
    return sim


def link_counts(sim: np.ndarray, labels, exact_groups, thresholds=THRESHOLDS) -> pd.DataFrame:
    """Near-duplicate links per threshold: all, and those joining two classes.

    Args:
        sim: from :func:`similarity`.
        labels: class per image.
        exact_groups: exact-duplicate group per image (pairs inside one are not counted).
        thresholds: candidate thresholds.

    Returns:
        DataFrame ``threshold, links, cross_class_links``.
    """
    labels, groups = np.asarray(labels, dtype=object), np.asarray(exact_groups, dtype=object)
    iu = np.triu_indices(len(labels), 1)
    values = sim[iu]
    keep = groups[iu[0]] != groups[iu[1]]
    cross = labels[iu[0]] != labels[iu[1]]
    rows = []
    for t in thresholds:
        linked = (values > t) & keep
        rows.append(
            {
                "threshold": float(t),
                "links": int(linked.sum()),
                "cross_class_links": int((linked & cross).sum()),
            }
        )
    return pd.DataFrame(rows)


def choose_threshold(counts: pd.DataFrame) -> float:
    """The lowest threshold with no cross-class link.

    Args:
        counts: from :func:`link_counts`.

    Returns:
        The threshold.
    """
    ok = counts[counts["cross_class_links"] == 0]
    if ok.empty:
        raise ValueError("choose_threshold: every candidate threshold links two classes")
    return float(ok["threshold"].min())


def components(sim: np.ndarray, threshold: float, exact_groups) -> np.ndarray:
    """Pseudo-case id per image: components of exact-duplicate and near-duplicate links.

    Args:
        sim: from :func:`similarity`.
        threshold: link when similarity exceeds it.
        exact_groups: exact-duplicate group per image.

    Returns:
        int array of component ids (0..k-1).
    """
    n = len(sim)
    i, j = np.nonzero(np.triu(sim > threshold, 1))
    _, exact = np.unique(np.asarray(exact_groups, dtype=object), return_inverse=True)
    order = np.argsort(exact, kind="stable")
    same = exact[order][1:] == exact[order][:-1]
    ei, ej = order[1:][same], order[:-1][same]
    rows = np.concatenate([i, ei])
    cols = np.concatenate([j, ej])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def top_pairs(
    sim: np.ndarray, exact_groups, threshold: float, n: int = 4
) -> list[tuple[int, int, float]]:
    """Example pairs: the most similar non-identical pairs and pairs just above the threshold.

    Args:
        sim: from :func:`similarity`.
        exact_groups: exact-duplicate group per image.
        threshold: the chosen threshold.
        n: pairs of each kind.

    Returns:
        ``(i, j, similarity)`` tuples.
    """
    groups = np.asarray(exact_groups, dtype=object)
    i, j = np.triu_indices(len(sim), 1)
    keep = groups[i] != groups[j]
    i, j, v = i[keep], j[keep], sim[i[keep], j[keep]]
    order = np.argsort(-v)
    best = [(int(i[k]), int(j[k]), float(v[k])) for k in order[:n]]
    above = np.flatnonzero(v > threshold)
    near = above[np.argsort(v[above])][:n]
    return best + [(int(i[k]), int(j[k]), float(v[k])) for k in near]


def thumbnails(images: np.ndarray, size: int = 8) -> np.ndarray:
    """Grey thumbnails (area-averaged) as flat vectors.

    Args:
        images: uint8 ``(n, s, s, 3)``.
        size: thumbnail side (``s`` must be a multiple).

    Returns:
        float32 ``(n, size * size)`` in [0, 1].
    """
    n, s = images.shape[:2]
    if s % size:
        raise ValueError(f"thumbnails: image side {s} is not a multiple of size={size!r}")
    grey = images.astype(np.float32).mean(axis=3) / 255.0
    k = s // size
    return grey.reshape(n, size, k, size, k).mean(axis=(2, 4)).reshape(n, -1)


def pseudo_case_counts(labels, comp) -> dict[str, int]:
    """Pseudo-cases per class (a case counts for the class of its majority).

    Args:
        labels: class per image.
        comp: component per image.

    Returns:
        class -> count.
    """
    frame = pd.DataFrame({"label": np.asarray(labels, dtype=object), "comp": comp})
    major = frame.groupby("comp")["label"].agg(lambda s: s.value_counts().index[0])
    return {c: int((major == c).sum()) for c in CLASSES}


def pseudo_case_names(comp: np.ndarray) -> list[str]:
    """Readable pseudo-case ids (``"c0042"``) for component numbers.

    Args:
        comp: from :func:`components`.

    Returns:
        One id per element.
    """
    return [f"c{c:04d}" for c in comp]


def duplicate_groups(manifest: pd.DataFrame, column: str = "sha256") -> list[list[str]]:
    """Groups of files sharing a value (exact duplicates when ``column`` is a hash).

    Args:
        manifest: a manifest with ``path`` and ``column``.
        column: the column to group on.

    Returns:
        Lists of paths (two or more each), sorted.
    """
    if column not in manifest.columns:
        raise ValueError(f"duplicate_groups: unknown column {column!r}")
    groups = manifest.groupby(column)["path"].apply(sorted)
    return sorted(g for g in groups if len(g) > 1)


def near_pairs(manifest, images, sim, threshold: float, n: int = 3) -> list[tuple]:
    """The most similar distinct originals and pairs just above the threshold, for a figure.

    Args:
        manifest: the originals (``path``, ``sha256``).
        images: their uint8 images.
        sim: from :func:`similarity`.
        threshold: the chosen threshold.
        n: pairs of each kind.

    Returns:
        ``(image, image, title)`` tuples for :func:`~lungct_utils.plots.image_pairs`.
    """
    m = manifest.reset_index(drop=True)
    out = []
    for i, j, v in top_pairs(sim, m["sha256"], threshold, n):
        title = f"{m['path'][j].split('/')[-1]} ~ {m['path'][i].split('/')[-1]}: {v:.3f}"
        out.append((images[i], images[j], title))
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


def pixel_duplicate_groups(manifest: pd.DataFrame) -> list[list[str]]:
    """Groups of files whose decoded pixels are identical (even if bytes differ).

    Args:
        manifest: a manifest with ``abspath`` and ``path``.

    Returns:
        Lists of relative paths, two or more each, sorted.
    """
    keys = [sha256_bytes(np.asarray(open_rgb(p)).tobytes()) for p in manifest["abspath"]]
    groups = pd.Series(manifest["path"].to_numpy()).groupby(keys).apply(sorted)
    return sorted(g for g in groups if len(g) > 1)
