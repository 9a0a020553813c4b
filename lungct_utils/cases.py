"""Reconstruct the dataset's stated cases (patients) from scan order and similarity.

The release has no patient identifiers, only the statement that its slices come from 110
cases (15 benign, 40 malignant, 55 normal). Within each class folder the files are numbered
in scan order: neighbouring numbers are neighbouring slices of one scan, and one patient's
slices form a run of numbers. We rebuild the cases in two steps:

1. **Cut** each class's sequence of file numbers into contiguous runs, at the points where
   consecutive slices are least alike: as many runs as the class has stated cases. A change
   of image size between two consecutive files is always a cut (one scan has one geometry).
   "Alike" is the mean of two similarities of the two slices: the centred cosine of their
   backbone features (content) and the centred cosine of their 32x32 grey thumbnails (body
   outline, table, field of view), see :func:`slice_views`.
2. **Merge** runs that an exact duplicate (the same file stored twice under two numbers) or
   a strong near-duplicate link (backbone similarity above the audit's threshold, see
   :mod:`lungct_utils.audit`) joins: such slices belong to one patient, so their runs do too.

Merging can leave a class with fewer groups than it has stated cases; we report how many.
Every function here is pure (arrays in, arrays out); notebook 01 and ``make prepare`` feed
them the originals, their features and the audit's similarity matrix.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .audit import centered_unit, thumbnails
from .config import CLASSES, STATED_CASES

_NUMBER = re.compile(r"\((\d+)\)")
#: Side of the grey thumbnails compared between consecutive slices.
THUMBNAIL_SIDE = 32


def file_number(path: str) -> int:
    """The scan-order number of a release file, e.g. 367 for ``Malignant case (367).jpg``.

    Args:
        path: the file path or name.

    Returns:
        The number in the last parentheses of the name.

    Raises:
        ValueError: the name holds no ``(number)``; the message quotes it.
    """
    found = _NUMBER.findall(str(path).rsplit("/", 1)[-1])
    if not found:
        raise ValueError(f"file_number: no '(number)' in file name {str(path)!r}")
    return int(found[-1])


def slice_views(features: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two views consecutive slices are compared in: content and outline.

    Args:
        features: ``(n, d)`` backbone features of the originals.
        images: their uint8 ``(n, s, s, 3)`` resized images.

    Returns:
        ``(centred unit features, centred unit 32x32 thumbnails)``.
    """
    return centered_unit(features), centered_unit(thumbnails(images, THUMBNAIL_SIDE))


def consecutive_similarity(*unit_views: np.ndarray) -> np.ndarray:
    """Similarity of each slice to the next, averaged over several unit-vector views.

    Args:
        *unit_views: ``(n, d_k)`` unit rows in scan order (e.g. centred features and
            centred thumbnails), each giving a cosine per neighbouring pair.

    Returns:
        ``(n - 1,)``: entry ``i`` compares slice ``i`` with slice ``i + 1``.
    """
    if not unit_views:
        raise ValueError("consecutive_similarity: give at least one view")
    sims = [np.sum(v[:-1] * v[1:], axis=1) for v in unit_views]
    return np.mean(sims, axis=0)


def cut_runs(similarity: np.ndarray, n_runs: int, forced: np.ndarray | None = None) -> np.ndarray:
    """Cut a sequence into contiguous runs at its least-alike neighbouring pairs.

    Forced cuts come first; then the lowest similarities (earliest first on ties) until there
    are ``n_runs`` runs (or every gap is cut).

    Args:
        similarity: ``(n - 1,)`` similarity of each element to the next.
        n_runs: the number of runs wanted (>= 1).
        forced: optional ``(n - 1,)`` booleans: gaps that must be cut.

    Returns:
        int ``(n,)``: run index per element, 0, 1, ... in sequence order.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if not isinstance(n_runs, int | np.integer) or n_runs < 1:
        raise ValueError(f"cut_runs: n_runs must be an int >= 1, got {n_runs!r}")
    forced = np.zeros(len(similarity), bool) if forced is None else np.asarray(forced, bool)
    if forced.shape != similarity.shape:
        raise ValueError(f"cut_runs: forced has shape {forced.shape}, expected {similarity.shape}")
    score = np.where(forced, -np.inf, similarity)
    n_cuts = max(n_runs - 1, int(forced.sum()))
    cuts = np.zeros(len(similarity), bool)
    cuts[np.argsort(score, kind="stable")[:n_cuts]] = True
    return np.concatenate([[0], np.cumsum(cuts)]).astype(np.int64)


def merge_groups(groups: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Join groups that a pair of members links (connected components).

    Args:
        groups: ``(n,)`` group label per element (any values).
        pairs: ``(m, 2)`` element indices that belong together.

    Returns:
        int ``(n,)`` merged group ids, numbered 0, 1, ... in order of first appearance.
    """
    _, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    k = int(inverse.max()) + 1 if len(inverse) else 0
    graph = coo_matrix(
        (np.ones(len(pairs)), (inverse[pairs[:, 0]], inverse[pairs[:, 1]])), shape=(k, k)
    )
    comp = connected_components(graph, directed=False)[1][inverse]
    _, first = np.unique(comp, return_index=True)  # first element of each component
    renumber = np.empty(len(first), np.int64)
    renumber[np.argsort(first)] = np.arange(len(first))
    return renumber[comp]


def link_pairs(sim: np.ndarray, labels, exact_groups, threshold: float) -> np.ndarray:
    """Pairs that must share a case: exact duplicates and near-duplicate links, same class.

    Args:
        sim: ``(n, n)`` near-duplicate similarity (:func:`lungct_utils.audit.similarity`).
        labels: class per element.
        exact_groups: exact-duplicate key per element (e.g. the file's SHA-256).
        threshold: a near-duplicate link is a similarity above it.

    Returns:
        int ``(m, 2)`` index pairs; pairs across classes are left out (different patients).
    """
    labels = np.asarray(labels, dtype=object)
    exact = np.asarray(exact_groups, dtype=object)
    i, j = np.nonzero(np.triu(np.asarray(sim) > threshold, 1))
    members = pd.Series(np.arange(len(exact))).groupby(exact).agg(list)
    dup = [(g[0], other) for g in members if len(g) > 1 for other in g[1:]]
    pairs = np.vstack([np.column_stack([i, j]), np.array(dup, dtype=np.int64).reshape(-1, 2)])
    return pairs[labels[pairs[:, 0]] == labels[pairs[:, 1]]]


def scan_order(frame: pd.DataFrame, label: str) -> np.ndarray:
    """Row positions of one class, sorted by file number.

    Args:
        frame: rows with ``label`` and ``number``.
        label: the class.

    Returns:
        int positions into ``frame``.
    """
    rows = np.flatnonzero(frame["label"].to_numpy() == label)
    return rows[np.argsort(frame["number"].to_numpy()[rows], kind="stable")]


def next_similarity(frame: pd.DataFrame, *unit_views: np.ndarray) -> np.ndarray:
    """Per row, its similarity to the next slice of its class in scan order.

    Args:
        frame: rows with ``label`` and ``number``.
        *unit_views: ``(n, d_k)`` unit rows aligned with ``frame`` (see
            :func:`consecutive_similarity`).

    Returns:
        ``(n,)``; NaN for the last slice of each class.
    """
    out = np.full(len(frame), np.nan)
    for label in CLASSES:
        rows = scan_order(frame, label)
        if len(rows) > 1:
            out[rows[:-1]] = consecutive_similarity(*(v[rows] for v in unit_views))
    return out


def reconstruct(
    frame: pd.DataFrame,
    similarity_to_next: np.ndarray,
    pairs: np.ndarray,
    stated: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Cut each class's scan order into runs, then merge linked runs into cases.

    Args:
        frame: one row per original with ``label``, ``number`` (scan order), ``width`` and
            ``height``.
        similarity_to_next: per row, from :func:`next_similarity`.
        pairs: ``(m, 2)`` row positions that must share a case (:func:`link_pairs`).
        stated: cases per class (default :data:`~lungct_utils.config.STATED_CASES`).

    Returns:
        A copy of ``frame`` plus ``run`` (``"<class>-r<k>"``, before merging) and ``case``
        (``"<class>-<k>"``, numbered in scan order within the class).
    """
    stated = dict(STATED_CASES if stated is None else stated)
    out = frame.reset_index(drop=True).copy()
    sim = np.asarray(similarity_to_next, dtype=np.float64)
    size = (out["width"].astype(str) + "x" + out["height"].astype(str)).to_numpy()
    run = np.empty(len(out), dtype=object)
    for label in CLASSES:
        rows = scan_order(out, label)
        if len(rows):
            geometry_change = size[rows[:-1]] != size[rows[1:]]
            runs = cut_runs(sim[rows[:-1]], int(stated[label]), geometry_change)
            run[rows] = [f"{label}-r{r:02d}" for r in runs]
    merged = merge_groups(run, pairs)
    case = np.empty(len(out), dtype=object)
    for label in CLASSES:
        rows = scan_order(out, label)
        names = {g: f"{label}-{k:02d}" for k, g in enumerate(pd.unique(merged[rows]))}
        case[rows] = [names[g] for g in merged[rows]]
    return out.assign(run=run, case=case)


def group_counts(cases: pd.DataFrame, stated: dict[str, int] | None = None) -> pd.DataFrame:
    """Runs and reconstructed cases per class against the stated cases, with their sizes.

    Args:
        cases: from :func:`reconstruct`.
        stated: cases per class (default the dataset's).

    Returns:
        DataFrame indexed by class: ``stated``, ``runs``, ``cases``, ``images``, and the
        smallest, median and largest case (images).
    """
    stated = dict(STATED_CASES if stated is None else stated)
    rows = {}
    for label in CLASSES:
        part = cases[cases["label"] == label]
        sizes = part.groupby("case").size() if len(part) else pd.Series([0])
        rows[label] = {"stated": stated[label], "runs": part["run"].nunique(),
                       "cases": len(sizes), "images": len(part), "smallest": int(sizes.min()),
                       "median": float(sizes.median()), "largest": int(sizes.max())}  # fmt: skip
    return pd.DataFrame(rows).T.astype(
        {k: int for k in ("stated", "runs", "cases", "images", "smallest", "largest")}
    )


def crossing_links(sim: np.ndarray, labels, exact_groups, groups, thresholds) -> pd.DataFrame:
    """Near-duplicate links per similarity level, and how many join two different groups.

    Args:
        sim: ``(n, n)`` near-duplicate similarity.
        labels: class per element.
        exact_groups: exact-duplicate key per element (pairs inside one are not counted).
        groups: group per element (e.g. the reconstructed case).
        thresholds: similarity levels.

    Returns:
        DataFrame ``threshold, links, crossing_groups, crossing_share`` (same-class links).
    """
    labels, exact = np.asarray(labels, dtype=object), np.asarray(exact_groups, dtype=object)
    groups = np.asarray(groups, dtype=object)
    i, j = np.triu_indices(len(labels), 1)
    keep = (labels[i] == labels[j]) & (exact[i] != exact[j])
    values, crossing = np.asarray(sim)[i[keep], j[keep]], groups[i[keep]] != groups[j[keep]]
    rows = []
    for t in thresholds:
        linked = values > t
        n, c = int(linked.sum()), int((linked & crossing).sum())
        rows.append({"threshold": float(t), "links": n, "crossing_groups": c,
                     "crossing_share": c / n if n else 0.0})  # fmt: skip
    return pd.DataFrame(rows)


def summary(groups: pd.DataFrame, crossing: pd.DataFrame, threshold: float) -> dict:
    """The ``cases`` block of ``metrics.json``.

    Args:
        groups: from :func:`reconstruct`.
        crossing: from :func:`crossing_links` (must include ``threshold``).
        threshold: the near-duplicate linking threshold.

    Returns:
        ``{"groups", "stated", "runs", "links_crossing_groups", "link_threshold",
        "crossing_by_threshold", "sizes"}``; ``links_crossing_groups`` counts the links
        above the threshold that join two cases (0 when every link was merged).
    """
    counts = group_counts(groups)
    at = crossing.set_index("threshold")
    if not np.isclose(at.index, threshold).any():
        raise ValueError(f"summary: crossing has no row for threshold={threshold!r}")
    row = at.iloc[int(np.argmin(np.abs(at.index - threshold)))]
    return {
        "groups": {c: int(counts.loc[c, "cases"]) for c in CLASSES},
        "stated": dict(STATED_CASES),
        "runs": {c: int(counts.loc[c, "runs"]) for c in CLASSES},
        "links_crossing_groups": int(row["crossing_groups"]),
        "link_threshold": float(threshold),
        "crossing_by_threshold": crossing.to_dict(orient="records"),
        "sizes": {c: {k: float(counts.loc[c, k]) for k in ("smallest", "median", "largest")}
                  for c in CLASSES},
    }  # fmt: skip
