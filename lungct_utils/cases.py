"""Reconstruct the dataset's stated cases (patients) from scan order and similarity.

The release has no patient identifiers, only the statement that its slices come from 110
cases (15 benign, 40 malignant, 55 normal). Within each class folder the files are numbered
in scan order: neighbouring numbers are neighbouring slices of one scan, and one patient's
slices form a run of numbers. The **central reconstruction** (:func:`reconstruct`):

1. **Copies** filed twice (byte-identical files under two numbers) are one slice: each sits
   at its *home*, the occurrence most alike to its scan neighbours, and the other numbers
   follow it (:func:`copy_homes`).
2. **Cut** each class's sequence of distinct slices into contiguous runs at the least-alike
   consecutive pairs (:func:`plan_cuts`). "Alike" is the mean of two centred cosines: of the
   backbone features (content) and of 32x32 grey thumbnails (outline, table, field of view).
   A change of image size or of display window (soft tissue against lung) is always a cut;
   no cut makes a run shorter than :data:`MIN_RUN` slices; the stated number of cases sets
   the budget, but a boundary less alike than a typical pair of slices from far apart in the
   folder is cut whatever the budget, and a run longer than :data:`LONG_RUN_FACTOR` times its
   class's mean case is cut at its least-alike boundary unless that boundary is more alike
   than 99% of far-apart pairs (:func:`evidence_levels`). A pair of slices so alike that
   only slices of one scan are (:func:`same_scan_level`) is never cut apart.
3. **Merge** runs that near-duplicate links join through at least :data:`MIN_LINKS` distinct
   slices on each side (one look-alike slice is not enough: look-alikes of two patients exist).

The levels come from the data itself; notebook 01 shows the evidence. Alternative
groupings, for the bracket of answers, are in :mod:`lungct_utils.groupings`. Every function
here is pure (arrays in, arrays out).
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
#: No cut leaves a run shorter than this (unless a change of size or window forces it).
MIN_RUN = 3
#: A run longer than this many times its class's mean case (slices per stated case) is cut.
LONG_RUN_FACTOR = 2.5
#: Runs merge when near-duplicate links join at least this many distinct slices on each side.
MIN_LINKS = 2
#: Slices "far apart" in a folder, for the reference levels of :func:`evidence_levels`.
FAR_APART = 50
#: Largest distance in numbering of a same-scan pair (see :func:`same_scan_level`).
SAME_SCAN_GAP = 3
#: Grey level counted as saturated (white bone and soft tissue in a lung window).
SATURATED = 235
#: The hand-set numbers of the central rule (:func:`reconstruct`); the bracket varies each
#: (:data:`lungct_utils.groupings.SENSITIVITY`).
RULE = {"min_run": MIN_RUN, "long_run_factor": LONG_RUN_FACTOR, "min_links": MIN_LINKS}


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


def same_class_pairs(labels, exact_groups) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of slices of one class that are not copies of each other.

    Args:
        labels: class per slice.
        exact_groups: exact-duplicate key per slice.

    Returns:
        ``(i, j)`` row positions, ``i < j``.
    """
    labels, exact = np.asarray(labels, dtype=object), np.asarray(exact_groups, dtype=object)
    i, j = np.triu_indices(len(labels), 1)
    keep = (labels[i] == labels[j]) & (exact[i] != exact[j])
    return i[keep], j[keep]


def soft_window(images: np.ndarray) -> np.ndarray:
    """Slices shown in a soft-tissue window: (almost) no saturated pixel inside the body.

    In the release's lung window soft tissue and bone are white (saturated); in a soft-tissue
    window nothing is, and the lungs are black. Every slice of the release falls clearly on
    one side (notebook 01).

    Args:
        images: uint8 ``(n, s, s, 3)`` resized slices.

    Returns:
        bool ``(n,)``: under 0.2% of the body's pixels (grey above 40) saturated.
    """
    grey = np.asarray(images, dtype=np.float32).mean(axis=-1)
    body = grey > 40
    saturated = (grey >= SATURATED) & body
    return saturated.sum(axis=(1, 2)) < 0.002 * np.maximum(body.sum(axis=(1, 2)), 1)


def evidence_levels(labels, numbers, exact_groups, *unit_views: np.ndarray) -> dict[str, float]:
    """Reference similarities of slices far apart in a folder (mostly different patients).

    Args:
        labels: class per slice.
        numbers: file number per slice.
        exact_groups: exact-duplicate key per slice (a copy is no far pair of itself).
        *unit_views: the views of :func:`consecutive_similarity`.

    Returns:
        ``{"always_cut_below": median, "join_above": 99th percentile}`` of the same-class
        pairs more than :data:`FAR_APART` numbers apart: a boundary less alike than a typical
        far pair is always cut; one more alike than 99% of them joins a long run.
    """
    numbers = np.asarray(numbers)
    i, j = same_class_pairs(labels, exact_groups)
    far = np.abs(numbers[i] - numbers[j]) > FAR_APART
    if not far.any():
        return {"always_cut_below": -np.inf, "join_above": np.inf}
    values = np.mean([(v @ v.T)[i[far], j[far]] for v in unit_views], axis=0)
    return {
        "always_cut_below": float(np.median(values)),
        "join_above": float(np.quantile(values, 0.99)),
    }


def same_scan_level(sim: np.ndarray, labels, numbers, exact_groups, grid=None) -> float:
    """The lowest near-duplicate level above which every same-class link is within one scan.

    Args:
        sim: ``(n, n)`` near-duplicate similarity.
        labels: class per slice.
        numbers: file number per slice.
        exact_groups: exact-duplicate key per slice (pairs inside one are not links).
        grid: candidate levels (default 0.80, 0.81, ..., 0.99).

    Returns:
        The level: every link above it joins slices at most :data:`SAME_SCAN_GAP` apart.
    """
    grid = np.round(np.arange(0.80, 0.995, 0.01), 2) if grid is None else np.asarray(grid)
    numbers = np.asarray(numbers)
    i, j = same_class_pairs(labels, exact_groups)
    values = np.asarray(sim)[i, j]
    far = np.abs(numbers[i] - numbers[j]) > SAME_SCAN_GAP
    ok = [t for t in grid if not np.any(far & (values > t))]
    return float(min(ok)) if ok else float("inf")


def copy_homes(frame: pd.DataFrame, similarity_to_prev_next: np.ndarray) -> np.ndarray:
    """For each slice, the row of its home: the occurrence of its copy most alike to neighbours.

    Args:
        frame: rows with ``label`` and ``sha256`` (exact-duplicate key).
        similarity_to_prev_next: ``(n,)`` per row, the larger similarity to its scan
            neighbours.

    Returns:
        int ``(n,)`` row positions (a row that is no copy is its own home).
    """
    home = np.arange(len(frame))
    score = np.nan_to_num(np.asarray(similarity_to_prev_next, float), nan=-np.inf)
    for rows in frame.groupby(["label", "sha256"]).indices.values():
        if len(rows) > 1:
            home[rows] = rows[np.argmax(score[rows])]
    return home


def _fits(cuts: np.ndarray, gap: int, min_run: int) -> bool:
    """Whether cutting ``gap`` leaves runs of at least ``min_run`` on both sides."""
    at = np.flatnonzero(cuts)
    before, after = at[at < gap], at[at > gap]
    left = gap - (before[-1] if len(before) else -1)
    right = (after[0] if len(after) else len(cuts)) - gap
    return left >= min_run and right >= min_run


def plan_cuts(similarity, n_runs: int, forced=None, protected=None, rule: dict | None = None):
    """Where to cut a scan-ordered sequence into runs (the central cut rule).

    Forced gaps are cut first. Then, least alike first, a gap is cut if it is not protected
    and leaves runs of at least ``min_run`` on both sides, until there are ``n_runs`` runs;
    gaps below ``always_cut_below`` are cut past that budget (still leaving ``min_run``).
    Last, a run longer than ``max_run`` is cut at its least-alike allowed gap below
    ``join_above``, until none can be.

    Args:
        similarity: ``(n - 1,)`` similarity of each element to the next.
        n_runs: the budget (the stated cases), >= 1.
        forced: ``(n - 1,)`` gaps that must be cut (size or window change).
        protected: ``(n - 1,)`` gaps never cut (inside a same-scan pair) unless forced.
        rule: ``min_run``, ``max_run``, ``always_cut_below`` and ``join_above`` (defaults:
            :data:`MIN_RUN`, no maximum, no forced low level, no joining level).

    Returns:
        bool ``(n - 1,)``: the gaps cut.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if not isinstance(n_runs, int | np.integer) or n_runs < 1:
        raise ValueError(f"plan_cuts: n_runs must be an int >= 1, got {n_runs!r}")
    defaults = {"min_run": MIN_RUN, "max_run": None, "always_cut_below": -np.inf}
    rule = {**defaults, "join_above": np.inf, **(rule or {})}
    forced = np.zeros(len(sim), bool) if forced is None else np.asarray(forced, bool)
    protected = np.zeros(len(sim), bool) if protected is None else np.asarray(protected, bool)
    for name, mask in (("forced", forced), ("protected", protected)):
        if mask.shape != sim.shape:
            raise ValueError(f"plan_cuts: {name} has shape {mask.shape}, expected {sim.shape}")
    cuts = forced.copy()
    for gap in np.argsort(sim, kind="stable"):
        if cuts.sum() + 1 >= n_runs and not sim[gap] < rule["always_cut_below"]:
            break
        if not cuts[gap] and not protected[gap] and _fits(cuts, gap, rule["min_run"]):
            cuts[gap] = True
    return _cut_long_runs(sim, cuts, protected, rule)


def _cut_long_runs(sim, cuts, protected, rule) -> np.ndarray:
    """Cut every run longer than ``rule["max_run"]`` at its least-alike allowed gap below
    ``rule["join_above"]``, until no run can be cut (see :func:`plan_cuts`)."""
    if rule["max_run"] is None:
        return cuts
    while True:
        bounds = np.concatenate([[-1], np.flatnonzero(cuts), [len(sim)]])
        candidates = []
        for start, end in zip(bounds[:-1] + 1, bounds[1:], strict=True):  # run: start..end
            if end - start + 1 <= rule["max_run"]:
                continue
            gaps = [
                g for g in range(start, end) if not protected[g] and sim[g] < rule["join_above"]
            ]
            gaps = [g for g in gaps if _fits(cuts, g, rule["min_run"])]
            if gaps:
                candidates.append(min(gaps, key=lambda g: sim[g]))
        if not candidates:
            return cuts
        cuts[candidates] = True


def cut_levels(frame: pd.DataFrame, sim: np.ndarray, *unit_views: np.ndarray) -> dict:
    """The data's own levels for :func:`reconstruct` (see notebook 01 for the evidence).

    Args:
        frame: rows with ``label``, ``number`` and ``sha256``.
        sim: ``(n, n)`` near-duplicate similarity.
        *unit_views: the views of :func:`consecutive_similarity`.

    Returns:
        :func:`evidence_levels` plus ``same_scan`` (:func:`same_scan_level`).
    """
    labels, numbers = frame["label"].to_numpy(), frame["number"].to_numpy()
    out = evidence_levels(labels, numbers, frame["sha256"].to_numpy(), *unit_views)
    out["same_scan"] = same_scan_level(sim, labels, numbers, frame["sha256"].to_numpy())
    return out


def _protected(order: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Gaps of a sequence (row positions ``order``) lying between the two rows of a pair."""
    where = {int(r): k for k, r in enumerate(order)}
    out = np.zeros(max(len(order) - 1, 0), bool)
    for a, b in pairs:
        if int(a) in where and int(b) in where:
            lo, hi = sorted((where[int(a)], where[int(b)]))
            out[lo:hi] = True
    return out


def _merge_linked(
    run: np.ndarray, pairs: np.ndarray, home: np.ndarray, min_links: int = MIN_LINKS
) -> np.ndarray:
    """Merge runs joined by look-alike pairs of at least ``min_links`` distinct slices on
    each side (copies count as their home), so one slice alike to two neighbours is no proof."""
    pairs = np.unique(home[np.asarray(pairs, np.int64).reshape(-1, 2)], axis=0)
    runs = run[pairs].astype(str)
    cross = runs[:, 0] != runs[:, 1]
    swap = runs[cross, 0] > runs[cross, 1]  # order each pair's runs, and its slices with them
    ends = np.where(swap[:, None], pairs[cross][:, ::-1], pairs[cross])
    ordered = np.sort(runs[cross], axis=1)
    links = pd.DataFrame({"a": ordered[:, 0], "b": ordered[:, 1]})
    links["slice_a"], links["slice_b"] = ends[:, 0], ends[:, 1]
    sides = links.groupby(["a", "b"])[["slice_a", "slice_b"]].nunique().min(axis=1)
    strong = sides[sides >= min_links].index.tolist()
    first = {r: int(np.flatnonzero(run == r)[0]) for r in np.unique(run)}
    joins = np.array([(first[a], first[b]) for a, b in strong], np.int64).reshape(-1, 2)
    return merge_groups(run, joins)


def _same_scan_pairs(sim: np.ndarray, numbers: np.ndarray, level: float) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, more alike than ``level`` and at most
    :data:`SAME_SCAN_GAP` apart in numbering: slices only one scan could give."""
    pairs = np.argwhere(np.triu(sim > level, 1))
    return pairs[np.abs(numbers[pairs[:, 0]] - numbers[pairs[:, 1]]) <= SAME_SCAN_GAP]


def reconstruct(
    frame: pd.DataFrame,
    unit_views: tuple[np.ndarray, ...],
    sim: np.ndarray,
    threshold: float,
    soft: np.ndarray,
    levels: dict,
    stated: dict[str, int] | None = None,
    rule: dict | None = None,
) -> pd.DataFrame:
    """The central reconstruction: copies at home, runs cut by the rule, strong links merged.

    Args:
        frame: one row per original with ``label``, ``number`` (scan order), ``sha256``,
            ``width`` and ``height``.
        unit_views: from :func:`slice_views`, aligned with ``frame``.
        sim: ``(n, n)`` near-duplicate similarity (:func:`lungct_utils.audit.similarity`).
        threshold: the near-duplicate linking level.
        soft: from :func:`soft_window`.
        levels: from :func:`cut_levels`.
        stated: cases per class (default :data:`~lungct_utils.config.STATED_CASES`).
        rule: overrides of :data:`RULE` (``min_run``, ``long_run_factor``, ``min_links``).

    Returns:
        A copy of ``frame`` plus ``home`` (the row of its copy's home), ``run``
        (``"<class>-r<k>"``, before merging) and ``case`` (``"<class>-<k>"`` in scan order).
    """
    stated = dict(STATED_CASES if stated is None else stated)
    if unknown := set(rule or {}) - set(RULE):
        raise ValueError(f"reconstruct: unknown rule keys {sorted(unknown)}, known {list(RULE)}")
    rule = {**RULE, **(rule or {})}
    out = frame.reset_index(drop=True).copy()
    sim = np.asarray(sim)
    nxt = consecutive_neighbours(out, *unit_views)
    home = copy_homes(out, nxt)
    labels, numbers = out["label"].to_numpy(), out["number"].to_numpy()
    same_scan = _same_scan_pairs(sim, numbers, levels["same_scan"])
    look = (
        out["width"].astype(str) + "x" + out["height"].astype(str) + soft.astype(str)
    ).to_numpy()
    run = np.empty(len(out), dtype=object)
    for label in CLASSES:
        order = scan_order(out, label)
        order = order[home[order] == order]
        if not len(order):
            continue
        cut_rule = {
            "min_run": rule["min_run"],
            "max_run": rule["long_run_factor"] * len(order) / stated[label],
            "always_cut_below": levels["always_cut_below"],
            "join_above": levels["join_above"],
        }
        cuts = plan_cuts(
            consecutive_similarity(*(v[order] for v in unit_views)),
            int(stated[label]),
            look[order[:-1]] != look[order[1:]],
            _protected(order, same_scan),
            cut_rule,
        )
        run[order] = [f"{label}-r{r:02d}" for r in np.concatenate([[0], np.cumsum(cuts)])]
    run = run[home]
    pairs = link_pairs(sim, labels, out["sha256"], threshold)
    merged = _merge_linked(run, pairs, home, rule["min_links"])
    return out.assign(home=home, run=run, case=name_groups(out, merged))


def name_groups(frame: pd.DataFrame, groups: np.ndarray, digits: int = 2) -> np.ndarray:
    """Group names ``<class>-<k>``, numbered in scan order within each class.

    Args:
        frame: rows with ``label`` and ``number``.
        groups: group per row (a group spans one class).
        digits: width of the number.

    Returns:
        Name per row.
    """
    groups = np.asarray(groups)
    out = np.empty(len(frame), dtype=object)
    for label in CLASSES:
        rows = scan_order(frame, label)
        names = {g: f"{label}-{k:0{digits}d}" for k, g in enumerate(pd.unique(groups[rows]))}
        out[rows] = [names[g] for g in groups[rows]]
    return out


def consecutive_neighbours(frame: pd.DataFrame, *unit_views: np.ndarray) -> np.ndarray:
    """Per row, its larger similarity to the previous and the next slice of its class.

    Args:
        frame: rows with ``label`` and ``number``.
        *unit_views: the views of :func:`consecutive_similarity`.

    Returns:
        ``(n,)``; NaN for a class of one slice.
    """
    nxt = next_similarity(frame, *unit_views)
    prev = np.full(len(frame), np.nan)
    for label in CLASSES:
        rows = scan_order(frame, label)
        prev[rows[1:]] = nxt[rows[:-1]]
    return np.fmax(nxt, prev)


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
        rows[label] = {
            "stated": stated[label],
            "runs": part["run"].nunique(),
            "cases": len(sizes),
            "images": len(part),
            "smallest": int(sizes.min()),
            "median": float(sizes.median()),
            "largest": int(sizes.max()),
        }
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
    groups = np.asarray(groups, dtype=object)
    i, j = same_class_pairs(labels, exact_groups)
    values, crossing = np.asarray(sim)[i, j], groups[i] != groups[j]
    rows = []
    for t in thresholds:
        linked = values > t
        n, c = int(linked.sum()), int((linked & crossing).sum())
        rows.append(
            {
                "threshold": float(t),
                "links": n,
                "crossing_groups": c,
                "crossing_share": c / n if n else 0.0,
            }
        )
    return pd.DataFrame(rows)


def summary(
    groups: pd.DataFrame,
    crossing: pd.DataFrame,
    threshold: float,
    levels: dict,
) -> dict:
    """The ``cases`` block of ``metrics.json``.

    Args:
        groups: from :func:`reconstruct`.
        crossing: from :func:`crossing_links` (must include ``threshold``).
        threshold: the near-duplicate linking threshold.
        levels: from :func:`cut_levels`.

    Returns:
        ``{"rule", "groups", "stated", "runs", "links_crossing_groups", "link_threshold",
        "levels", "crossing_by_threshold", "sizes"}``.
    """
    counts = group_counts(groups)
    at = crossing.set_index("threshold")
    if not np.isclose(at.index, threshold).any():
        raise ValueError(f"summary: crossing has no row for threshold={threshold!r}")
    row = at.iloc[int(np.argmin(np.abs(at.index - threshold)))]
    sizes = ("smallest", "median", "largest")
    out = {
        "rule": dict(RULE),
        "groups": {c: int(counts.loc[c, "cases"]) for c in CLASSES},
        "stated": dict(STATED_CASES),
        "runs": {c: int(counts.loc[c, "runs"]) for c in CLASSES},
        "links_crossing_groups": int(row["crossing_groups"]),
        "link_threshold": float(threshold),
        "levels": {k: float(v) for k, v in levels.items()},
        "crossing_by_threshold": crossing.to_dict(orient="records"),
        "sizes": {c: {k: float(counts.loc[c, k]) for k in sizes} for c in CLASSES},
    }
    return out


def link_distances(sim: np.ndarray, labels, numbers, exact_groups, levels, gaps) -> pd.DataFrame:
    """Same-class slice pairs by similarity level and by distance in numbering (the evidence).

    Args:
        sim: ``(n, n)`` near-duplicate similarity.
        labels: class per slice.
        numbers: file number per slice.
        exact_groups: exact-duplicate key per slice (pairs inside one are left out).
        levels: similarity bin edges, increasing.
        gaps: distance bin edges, increasing (e.g. 0, 1, 3, 10, 50, 1000).

    Returns:
        Counts, rows similarity bins and columns distance bins.
    """
    numbers = np.asarray(numbers)
    i, j = same_class_pairs(labels, exact_groups)
    keep = np.asarray(sim)[i, j] > levels[0]
    i, j = i[keep], j[keep]
    frame = pd.DataFrame(
        {
            "similarity": pd.cut(np.asarray(sim)[i, j], levels),
            "numbers apart": pd.cut(np.abs(numbers[i] - numbers[j]), gaps),
        }
    )
    return pd.crosstab(frame["similarity"], frame["numbers apart"])
