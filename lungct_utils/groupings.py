"""A family of plausible patient groupings, for the bracket of honest answers.

The release has no patient ids, so any patient-level score rests on a reconstruction. Rather
than trust one, the honest CV runs under a family of groupings of the originals and reports
the central estimate (:func:`lungct_utils.cases.reconstruct`) with the range over the
**readings of the patients**, the groupings that respect the evidence of patient boundaries:

* ``central``: the central reconstruction (cut rule, strong-link merge);
* ``runs``: its runs before merging;
* ``stated_runs``: exactly the stated number of runs per class at the least-alike neighbours
  (:func:`cut_runs`), then every near-duplicate or duplicate link merged (the rule before the
  central one);
* ``peer``: a public work's rule (anaguedes0802/lung-cancer-classifier, ``src/preproc.py``
  ``patient_groups``): per class in file order, cut at the stated-cases-minus-one largest
  L2 jumps between 64x64 thumbnails of the centre square, then join groups holding any
  pair closer than 3.0 (:func:`peer_groups`; OpenCV's bilinear resizing rebuilt in NumPy);
* the central rule with one hand-set number changed (:data:`SENSITIVITY`): the shortest run,
  the long-run factor, the links a merge needs, and the similarity the cuts use (thumbnails
  only, or backbone features only, instead of their mean).

**Leak controls** are shown apart and never enter the range: ``equal_0.5x``, ``equal_1x`` and
``equal_2x`` cut each class into equal contiguous runs of file numbers, half, as many as and
twice the stated cases (:func:`equal_runs`). They cut through patients (``equal_2x`` halves
the average one by design), so they show what cutting through patients would add; their
units are not independent, so their intervals are too narrow.

No grouping splits a distinct original: copies sit with their home
(:func:`lungct_utils.cases.copy_homes`), with the first copy in file order under the peer's
rule (:func:`first_copies`, as its code keeps them), or with each other through the
duplicate links of ``stated_runs``.

:func:`group_originals` runs every step on the originals' images and features: the
pseudo-cases of near-duplicates, the central reconstruction and this family.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from . import audit, cases
from .cases import link_pairs, merge_groups, name_groups, scan_order
from .config import CASES_CSV, CLASSES, PSEUDO_CASES_CSV, STATED_CASES

#: The saved groups of the originals: column -> its CSV under ``data/processed``.
GROUPS_CSV = {"pseudo_case": PSEUDO_CASES_CSV, "case": CASES_CSV}

#: The central rule with one hand-set number changed: name -> overrides of
#: :data:`lungct_utils.cases.RULE`, or ``views`` (the similarity the cuts use).
SENSITIVITY = {
    "min_run_2": {"min_run": 2},
    "min_run_5": {"min_run": 5},
    "long_run_2.0x": {"long_run_factor": 2.0},
    "long_run_3.0x": {"long_run_factor": 3.0},
    "links_1": {"min_links": 1},
    "links_3": {"min_links": 3},
    "thumbnails_only": {"views": "thumbnails"},
    "features_only": {"views": "features"},
}
#: Equal runs of file numbers, which cut through patients: "what cutting through patients
#: would add", not readings of the patients. Scored per slice with the paper's model only.
LEAK_CONTROLS = ("equal_0.5x", "equal_1x", "equal_2x")
#: The readings of the patients, central first: the bracket's range is taken over them.
READINGS = ("central", "runs", "stated_runs", "peer", *SENSITIVITY)
#: Every grouping, readings first.
FAMILY = (*READINGS, *LEAK_CONTROLS)
#: How the reports name each grouping.
FAMILY_LABELS = {
    "central": "central reconstruction",
    "runs": "its runs, not merged",
    "stated_runs": "stated runs, every link merged",
    "peer": "peer's rule (thumbnail jumps)",
    "min_run_2": "central, shortest run 2 (not 3)",
    "min_run_5": "central, shortest run 5 (not 3)",
    "long_run_2.0x": "central, long-run factor 2.0 (not 2.5)",
    "long_run_3.0x": "central, long-run factor 3.0 (not 2.5)",
    "links_1": "central, merge on 1 link (not 2)",
    "links_3": "central, merge on 3 links (not 2)",
    "thumbnails_only": "central, cuts by thumbnails only",
    "features_only": "central, cuts by backbone features only",
    "equal_0.5x": "leak control: equal runs, 0.5x stated",
    "equal_1x": "leak control: equal runs, 1x stated",
    "equal_2x": "leak control: equal runs, 2x stated",
}
#: The peer's thumbnail side and merge distance (its ``patient_groups``).
PEER_THUMBNAIL, PEER_MERGE = 64, 3.0


def cut_runs(similarity: np.ndarray, n_runs: int, forced: np.ndarray | None = None) -> np.ndarray:
    """Exactly ``n_runs`` runs at the least-alike neighbouring pairs.

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


def stated_runs(frame: pd.DataFrame, similarity_to_next, sim, threshold: float) -> np.ndarray:
    """Exactly the stated runs per class, then every near-duplicate link merged.

    Args:
        frame: rows with ``label``, ``number``, ``sha256``, ``width`` and ``height``.
        similarity_to_next: per row (:func:`lungct_utils.cases.next_similarity`).
        sim: ``(n, n)`` near-duplicate similarity.
        threshold: the near-duplicate linking level.

    Returns:
        Group label per row.
    """
    sim_next = np.asarray(similarity_to_next, dtype=np.float64)
    size = (frame["width"].astype(str) + "x" + frame["height"].astype(str)).to_numpy()
    run = np.empty(len(frame), dtype=object)
    for label in CLASSES:
        rows = scan_order(frame, label)
        if len(rows):
            runs = cut_runs(
                sim_next[rows[:-1]], STATED_CASES[label], size[rows[:-1]] != size[rows[1:]]
            )
            run[rows] = [f"{label}-r{r:02d}" for r in runs]
    pairs = link_pairs(sim, frame["label"], frame["sha256"], threshold)
    return name_groups(frame, merge_groups(run, pairs), digits=3)


def equal_runs(frame: pd.DataFrame, home: np.ndarray, factor: float) -> np.ndarray:
    """Equal contiguous runs of file numbers: ``factor`` times the stated cases per class.

    Args:
        frame: rows with ``label`` and ``number``.
        home: per row, the row of its copy's home (copies follow it).
        factor: runs per stated case (> 0).

    Returns:
        Group label per row.
    """
    if not factor > 0:
        raise ValueError(f"equal_runs: factor must be > 0, got {factor!r}")
    home = np.asarray(home)
    group = np.empty(len(frame), dtype=object)
    for label in CLASSES:
        rows = scan_order(frame, label)
        rows = rows[home[rows] == rows]
        k = min(len(rows), max(1, round(factor * STATED_CASES[label])))
        for i, part in enumerate(np.array_split(rows, k) if len(rows) else []):
            group[part] = f"{label}-{i:03d}"
    return group[home]


def resize_linear(image: np.ndarray, side: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres and no antialiasing, as OpenCV's INTER_LINEAR.

    Args:
        image: 2-D array.
        side: output side (square).

    Returns:
        float ``(side, side)``.
    """
    out = np.asarray(image, dtype=np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        x = np.clip((np.arange(side) + 0.5) * n / side - 0.5, 0, n - 1)
        lo = np.floor(x).astype(np.int64)
        hi, w = np.minimum(lo + 1, n - 1), x - lo
        shape = (-1, 1) if axis == 0 else (1, -1)
        a, b = np.take(out, lo, axis=axis), np.take(out, hi, axis=axis)
        out = a * (1 - w.reshape(shape)) + b * w.reshape(shape)
    return out


def peer_thumbnails(paths) -> np.ndarray:
    """The peer's thumbnails: grey, centre square, 150x150, then 64x64 in [0, 1], flattened.

    Args:
        paths: image files.

    Returns:
        float ``(n, 4096)``.
    """
    out = []
    for path in paths:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"))
        h, w = grey.shape
        s = min(h, w)
        square = grey[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        small = np.clip(np.round(resize_linear(square, 150)), 0, 255)  # OpenCV keeps uint8
        out.append(resize_linear(small / 255.0, PEER_THUMBNAIL).ravel())
    return np.stack(out)


def first_copies(frame: pd.DataFrame) -> np.ndarray:
    """The peer's way with copies: the first in class, then file-number order is kept.

    Args:
        frame: rows with ``label``, ``number`` and ``sha256``.

    Returns:
        int ``(n,)``: per row, the row of the copy kept (itself when it is no copy).
    """
    order = np.lexsort((frame["number"].to_numpy(), frame["label"].map(CLASSES.index).to_numpy()))
    first = pd.Series(order, index=frame["sha256"].to_numpy()[order]).groupby(level=0).first()
    return frame["sha256"].map(first).to_numpy(np.int64)


def peer_groups(frame: pd.DataFrame, home: np.ndarray, thumbs: np.ndarray) -> np.ndarray:
    """The peer's rule: stated runs at the largest thumbnail jumps, then close pairs joined.

    Args:
        frame: rows with ``label`` and ``number``.
        home: per row, the row of its copy's home (copies are dropped, then follow it).
        thumbs: from :func:`peer_thumbnails`, aligned with ``frame``.

    Returns:
        Group label per row.
    """
    home = np.asarray(home)
    run = np.empty(len(frame), dtype=object)
    for label in CLASSES:
        rows = scan_order(frame, label)
        rows = rows[home[rows] == rows]
        jumps = np.linalg.norm(thumbs[rows[1:]] - thumbs[rows[:-1]], axis=1)
        cuts = np.zeros(len(jumps), bool)
        cuts[np.argsort(jumps)[len(jumps) - (STATED_CASES[label] - 1) :]] = True
        run[rows] = [f"{label}-r{r:02d}" for r in np.concatenate([[0], np.cumsum(cuts)])]
    kept = np.flatnonzero(home == np.arange(len(frame)))
    t = np.asarray(thumbs, np.float64)[kept]
    norms = np.sum(t * t, axis=1)
    squared = norms[:, None] + norms[None, :] - 2 * t @ t.T  # pairwise squared L2 distances
    i, j = np.nonzero(np.triu(squared < PEER_MERGE**2, 1))
    merged = merge_groups(run[home], np.column_stack([kept[i], kept[j]]))
    return name_groups(frame, merged, digits=3)


def sensitivity(
    frame: pd.DataFrame,
    views: tuple[np.ndarray, np.ndarray],
    sim: np.ndarray,
    threshold: float,
    soft: np.ndarray,
    levels: dict,
) -> dict[str, np.ndarray]:
    """The central rule with one hand-set number changed, per :data:`SENSITIVITY` entry.

    A variant that cuts by one view only takes its levels from that view
    (:func:`lungct_utils.cases.cut_levels`): the levels are in the view's own scale.

    Args:
        frame: as for :func:`lungct_utils.cases.reconstruct`.
        views: ``(features, thumbnails)`` from :func:`lungct_utils.cases.slice_views`.
        sim: ``(n, n)`` near-duplicate similarity.
        threshold: the near-duplicate linking level.
        soft: from :func:`lungct_utils.cases.soft_window`.
        levels: the central rule's levels (both views).

    Returns:
        name -> the case of each row.
    """
    out = {}
    for name, change in SENSITIVITY.items():
        rule, use, use_levels = dict(change), views, levels
        if "views" in rule:
            use = (views[1],) if rule.pop("views") == "thumbnails" else (views[0],)
            use_levels = cases.cut_levels(frame, sim, *use)
        found = cases.reconstruct(frame, use, sim, threshold, soft, use_levels, rule=rule)
        out[name] = found["case"].to_numpy()
    return out


def family(
    central: pd.DataFrame, similarity_to_next, sim, threshold: float, thumbs, variants: dict
) -> pd.DataFrame:
    """Every grouping of :data:`FAMILY`, one column each, per original.

    Args:
        central: from :func:`lungct_utils.cases.reconstruct` (``home``, ``run``, ``case``).
        similarity_to_next: per row (:func:`lungct_utils.cases.next_similarity`).
        sim: ``(n, n)`` near-duplicate similarity.
        threshold: the near-duplicate linking level.
        thumbs: from :func:`peer_thumbnails`.
        variants: from :func:`sensitivity`.

    Returns:
        DataFrame ``path, label, sha256`` plus one column per grouping, in :data:`FAMILY` order.
    """
    if missing := set(SENSITIVITY) - set(variants):
        raise ValueError(f"family: variants lacks {sorted(missing)}")
    home = central["home"].to_numpy()
    columns = {"central": central["case"].to_numpy(), "runs": central["run"].to_numpy()}
    columns["stated_runs"] = stated_runs(central, similarity_to_next, sim, threshold)
    columns["peer"] = peer_groups(central, first_copies(central), thumbs)
    columns |= {name: np.asarray(variants[name]) for name in SENSITIVITY}
    for factor in (0.5, 1, 2):
        columns[f"equal_{factor}x"] = equal_runs(central, home, factor)
    out = central[["path", "label", "sha256"]].copy()
    for name in FAMILY:
        out[name] = columns[name]
    return out


def family_counts(groups: pd.DataFrame) -> pd.DataFrame:
    """Groups per class under each grouping, against the stated cases.

    Args:
        groups: from :func:`family`.

    Returns:
        DataFrame indexed by grouping: one column per class and ``total``.
    """
    rows = {"stated": {**dict(STATED_CASES), "total": sum(STATED_CASES.values())}}
    for name in FAMILY:
        per = groups.groupby("label")[name].nunique().reindex(list(CLASSES), fill_value=0)
        rows[name] = {**{c: int(n) for c, n in per.items()}, "total": int(per.sum())}
    return pd.DataFrame(rows).T


def group_originals(
    manifest: pd.DataFrame, images: np.ndarray, feats: np.ndarray, others: list[np.ndarray]
) -> dict:
    """Pseudo-cases, the central reconstruction of the cases and the family of groupings.

    Args:
        manifest: the originals (:func:`lungct_utils.pipeline.release_manifest`): ``path,
            label, sha256, number, width, height, abspath``.
        images: its uint8 images.
        feats: their backbone features.
        others: features of each audit view.

    Returns:
        ``{"sim", "counts", "threshold", "levels", "groups", "family"}``; ``groups`` is
        ``path, label, sha256, number, width, height, pseudo_case, home, run, case`` per
        original, ``family`` one column per grouping of :data:`FAMILY`.
    """
    sim = audit.similarity(feats, others)
    counts = audit.link_counts(sim, manifest["label"], manifest["sha256"])
    threshold = audit.choose_threshold(counts)
    frame = manifest[["path", "label", "sha256", "number", "width", "height"]].copy()
    frame["pseudo_case"] = audit.pseudo_case_names(
        audit.components(sim, threshold, manifest["sha256"])
    )
    views = cases.slice_views(feats, images)
    levels = cases.cut_levels(frame, sim, *views)
    soft = cases.soft_window(images)
    groups = cases.reconstruct(frame, views, sim, threshold, soft, levels)
    variants = sensitivity(frame, views, sim, threshold, soft, levels)
    thumbs = peer_thumbnails(manifest["abspath"])
    nxt = cases.next_similarity(frame, *views)
    found = {"sim": sim, "counts": counts, "threshold": threshold, "levels": levels}
    grouped = family(groups, nxt, sim, threshold, thumbs, variants)
    return {**found, "groups": groups, "family": grouped}
