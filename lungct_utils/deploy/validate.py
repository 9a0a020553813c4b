"""``python -m lungct_utils evaluate``: score a model on a labelled folder as a whole.

An external set rarely has the model's three classes: the Kaggle "Chest CT-Scan images"
release has malignant subtypes and normal slices, no benign one. So the score is binary,
**malignant against normal** (:func:`binary_metrics`): slices whose true class is benign
are left out; a slice called benign is wrong whatever its class (it lowers sensitivity or
specificity) and the share called benign is reported on its own. Sensitivity, specificity,
balanced accuracy, the AUC of ``p_malignant`` and the expected calibration error of the
three-class top prediction (:func:`lungct_utils.evaluate.expected_calibration_error`) get
95% intervals from a cluster bootstrap (:func:`lungct_utils.evaluate.cluster_intervals`).

What is scored (:func:`summarise`): each distinct pixel content once
(:func:`lungct_utils.external.distinct`), clustered by the case proxy
(:func:`lungct_utils.external.case_proxy`); the same clustered per image shows how much
the proxy widens the intervals. "All slices" uses the network's arg-max even where the
input check refuses the slice (``not_ct``); "accepted" keeps only the slices the check lets
through, as a user of ``predict`` would see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .. import external, input_check
from ..config import CLASSES
from ..evaluate import ECE_BINS, cluster_intervals, rate_interval, weighted_auc_ovr
from ..images import resize_rgb
from . import predict

#: Bootstrap replicates of the intervals.
N_BOOT = 2000
#: The metrics of :func:`binary_metrics`, in report order.
BINARY_KEYS = (
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "auc",
    "share_called_benign",
    "ece",
)
#: The metrics of :func:`paired_binary`.
PAIRED_KEYS = ("sensitivity", "specificity", "balanced_accuracy", "auc")
#: The columns :func:`summarise` needs in the predictor's rows.
ROW_COLUMNS = ("path", "prediction", "verdict", "reason", "error", *(f"p_{c}" for c in CLASSES))
#: The predicted column of a slice the input check refuses.
REFUSED = "refused"
#: Replicates whose row weights are built at once for the AUC (memory bound).
_AUC_BLOCK = 256


def load_images(frame: pd.DataFrame, size: int = 224) -> np.ndarray:
    """The model inputs of a scan's files, read and resized as the predictor of a model
    trained on resized slices does (every model but a standardised one).

    Args:
        frame: rows with ``path`` (e.g. ``kept`` of :func:`lungct_utils.external.distinct`).
        size: the output side.

    Returns:
        uint8 ``(n, size, size, 3)``.

    Raises:
        DataError: a file cannot be read.
    """
    images = [resize_rgb(predict.read_image(Path(p)), size) for p in frame["path"]]
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)


def _unit_table(codes: np.ndarray, n_units: int, columns: list[np.ndarray]) -> np.ndarray:
    """Per unit, the sum of each column over its rows: ``(n_units, len(columns))``."""
    return np.stack([np.bincount(codes, c.astype(float), n_units) for c in columns], axis=1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)


def _ece_table(codes: np.ndarray, n_units: int, y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per unit and confidence bin, the sum of confidence minus hit (top label).

    The bins of :func:`lungct_utils.evaluate.expected_calibration_error`.

    Returns:
        ``(n_units, ECE_BINS)``.
    """
    conf, hit = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, ECE_BINS + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, ECE_BINS - 1)
    out = np.zeros((n_units, ECE_BINS))
    np.add.at(out, (codes, bins), conf - hit)
    return out


def _auc_malignant(counts, codes, y, probs) -> np.ndarray:
    """The AUC of ``p_malignant`` (malignant against the rest) of each replicate."""
    out = [
        weighted_auc_ovr(counts[s : s + _AUC_BLOCK][:, codes].astype(float), y, probs)[
            :, CLASSES.index("malignant")
        ]
        for s in range(0, len(counts), _AUC_BLOCK)
    ]
    return np.concatenate(out) if out else np.zeros(0)


def _binary_stats(codes, n_units, y, probs, called, keys=BINARY_KEYS):
    """The statistic of :func:`binary_metrics` for unit counts (all replicates at once).

    Args:
        codes: unit index per row.
        n_units: how many units.
        y: class index per row (malignant or normal).
        probs: ``(n, 3)`` probabilities.
        called: predicted class index per row (-1 for none).
        keys: the metrics to give (of :data:`BINARY_KEYS`).

    Returns:
        ``stats(set_index, counts)`` -> key -> ``(m,)`` for
        :func:`lungct_utils.evaluate.cluster_intervals`.
    """
    mal, nor = CLASSES.index("malignant"), CLASSES.index("normal")
    columns = [y == mal, (y == mal) & (called == mal), y == nor, (y == nor) & (called == nor)]
    columns += [called == CLASSES.index("benign"), np.ones(len(y), bool)]
    table = _unit_table(codes, n_units, columns)
    ece = _ece_table(codes, n_units, y, probs)

    def stats(_, counts):
        s = counts @ table
        sens, spec = _ratio(s[:, 1], s[:, 0]), _ratio(s[:, 3], s[:, 2])
        out = {
            "sensitivity": sens,
            "specificity": spec,
            "balanced_accuracy": (sens + spec) / 2,
            "share_called_benign": _ratio(s[:, 4], s[:, 5]),
            "ece": _ratio(np.abs(counts @ ece).sum(axis=1), s[:, 5]),
        }
        if "auc" in keys:
            out["auc"] = _auc_malignant(counts, codes, y, probs)
        return {k: out[k] for k in keys}

    return stats


def _needs(n_malignant: int, n_normal: int) -> tuple[set[str], list[str]]:
    """The metrics a class mix cannot give, and the notes saying why."""
    missing, notes = set(), []
    if n_malignant == 0:
        missing |= {"sensitivity", "balanced_accuracy", "auc"}
        notes.append("no malignant slice: sensitivity, balanced accuracy and AUC need one")
    if n_normal == 0:
        missing |= {"specificity", "balanced_accuracy", "auc"}
        notes.append("no normal slice: specificity, balanced accuracy and AUC need one")
    if n_malignant + n_normal == 0:
        missing |= set(BINARY_KEYS)
    return missing, notes


def binary_metrics(
    y_true_class, probs, predicted_class, clusters, seed: int, n_boot: int = N_BOOT
) -> dict:
    """Malignant against normal: sensitivity, specificity, balanced accuracy, AUC, with intervals.

    Rows whose true class is benign are left out. Sensitivity is the share of malignant
    slices called malignant, specificity the share of normal slices called normal (a benign
    call is an error for both); balanced accuracy their mean; AUC that of ``p_malignant``,
    malignant against normal. ``share_called_benign`` and the expected calibration error of
    the three-class top prediction come along. Intervals: 95% percentile cluster bootstrap
    over ``clusters`` (whole clusters resampled with replacement).

    Args:
        y_true_class: true class name per row.
        probs: ``(n, 3)`` probabilities in :data:`~lungct_utils.config.CLASSES` order.
        predicted_class: predicted class name per row ("" or any other value: no class).
        clusters: the unit of independence per row.
        seed: bootstrap seed.
        n_boot: bootstrap replicates (at least 10).

    Returns:
        ``{"n", "n_malignant", "n_normal", "n_benign_excluded", "clusters", "notes"}`` and,
        per :data:`BINARY_KEYS`, ``{"value", "ci95": [lo, hi]}`` or None where the class mix
        cannot give it (``notes`` says why).
    """
    y_name = np.asarray(y_true_class, dtype=object).astype(str)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(CLASSES):
        raise ValueError(f"binary_metrics: probabilities must be (n, 3), got {probs.shape}")
    called_name = np.asarray(predicted_class, dtype=object).astype(str)
    clusters = np.asarray(clusters).astype(str)
    if not len(y_name) == len(probs) == len(called_name) == len(clusters):
        got = f"{len(y_name)} classes, {len(probs)} probabilities, {len(called_name)} calls"
        raise ValueError(f"binary_metrics: {got} and {len(clusters)} clusters")
    if unknown := sorted(set(y_name) - set(CLASSES)):
        raise ValueError(f"binary_metrics: unknown true class {unknown[0]!r}")
    keep = y_name != "benign"
    y = np.array([CLASSES.index(c) for c in y_name[keep]], dtype=np.int64)
    called = np.array([CLASSES.index(c) if c in CLASSES else -1 for c in called_name[keep]])
    n_mal = int((y == CLASSES.index("malignant")).sum())
    n_nor = int((y == CLASSES.index("normal")).sum())
    units, codes = np.unique(clusters[keep], return_inverse=True)
    missing, notes = _needs(n_mal, n_nor)
    out = {
        "n": int(keep.sum()),
        "n_malignant": n_mal,
        "n_normal": n_nor,
        "n_benign_excluded": int((~keep).sum()),
        "clusters": len(units),
        "notes": notes,
    }
    if len(y) == 0:
        return out | {k: None for k in BINARY_KEYS}
    keys = [k for k in BINARY_KEYS if k not in missing]
    stats = _binary_stats(codes.ravel(), len(units), y, probs[keep], called, keys)
    point = stats(0, np.ones((1, len(units)), np.int64))
    ci = cluster_intervals(stats, [len(units)], n_boot, seed)
    for key in BINARY_KEYS:
        out[key] = None if key in missing else {"value": float(point[key][0]), "ci95": ci[key]}
    return out


def paired_binary(
    y_true_class, probs_a, probs_b, clusters, seed: int, n_boot: int = N_BOOT
) -> dict:
    """Model ``a`` minus model ``b`` on the same slices, malignant against normal, paired.

    Each model calls its arg-max class; every replicate resamples the same clusters for
    both, so the interval is that of the difference (:func:`binary_metrics`' definitions).

    Args:
        y_true_class: true class name per row (benign rows are left out).
        probs_a: ``(n, 3)`` probabilities of model a.
        probs_b: ``(n, 3)`` probabilities of model b, same rows.
        clusters: the unit of independence per row.
        seed: bootstrap seed.
        n_boot: bootstrap replicates (at least 10).

    Returns:
        key -> ``{"a", "b", "diff", "diff_ci95": [lo, hi], "excludes_zero"}`` for the keys of
        :data:`PAIRED_KEYS` the class mix can give.
    """
    y_name = np.asarray(y_true_class, dtype=object).astype(str)
    pa, pb = (np.asarray(p, dtype=np.float64) for p in (probs_a, probs_b))
    clusters = np.asarray(clusters).astype(str)
    if pa.shape != (len(y_name), len(CLASSES)) or pb.shape != pa.shape:
        raise ValueError(
            f"paired_binary: needs two ({len(y_name)}, 3) probability arrays, got {pa.shape} "
            f"and {pb.shape}"
        )
    if len(clusters) != len(y_name):
        raise ValueError(f"paired_binary: {len(clusters)} clusters for {len(y_name)} rows")
    if unknown := sorted(set(y_name) - set(CLASSES)):
        raise ValueError(f"paired_binary: unknown true class {unknown[0]!r}")
    keep = y_name != "benign"
    y = np.array([CLASSES.index(c) for c in y_name[keep]], dtype=np.int64)
    units, codes = np.unique(clusters[keep], return_inverse=True)
    mal, nor = CLASSES.index("malignant"), CLASSES.index("normal")
    missing, _ = _needs(int((y == mal).sum()), int((y == nor).sum()))
    keys = [k for k in PAIRED_KEYS if k not in missing]
    a, b = (
        _binary_stats(codes.ravel(), len(units), y, p[keep], p[keep].argmax(axis=1), keys)
        for p in (pa, pb)
    )

    def diff(s, counts):
        sa, sb = a(s, counts), b(s, counts)
        return {k: sa[k] - sb[k] for k in keys}

    ones = np.ones((1, len(units)), np.int64)
    point_a, point_b = a(0, ones), b(0, ones)
    ci = cluster_intervals(diff, [len(units)], n_boot, seed)
    return {
        k: {
            "a": float(point_a[k][0]),
            "b": float(point_b[k][0]),
            "diff": float(point_a[k][0] - point_b[k][0]),
            "diff_ci95": ci[k],
            "excludes_zero": bool(ci[k][0] > 0 or ci[k][1] < 0),
        }
        for k in keys
    }


def _relative(path: str, root: Path | None) -> str:
    if root is None:
        return str(path)
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _joined(kept: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The distinct slices with their predictor rows, matched by ``path``.

    A slice without a row gets the error ``"not predicted"`` (``error_row``).

    Raises:
        ValueError: the rows of predicted slices lack a column of :data:`ROW_COLUMNS`.
    """
    predicted = rows["error"].fillna("") == "" if "error" in rows else pd.Series(True, rows.index)
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing and predicted.any():
        raise ValueError(f"summarise: the predictor's rows lack columns {missing}")
    rows = rows.reindex(columns=list(ROW_COLUMNS)).drop_duplicates("path")
    rows = rows.assign(path=rows["path"].astype(str), error=rows["error"].fillna(""))
    joined = kept.merge(rows, on="path", how="left", suffixes=("", "_row"))
    joined["error_row"] = joined["error_row"].fillna("not predicted")
    for column in ("prediction", "verdict", "reason"):  # text columns, "" where missing
        joined[column] = joined[column].astype(object).where(joined[column].notna(), "")
    return joined


def _counts(values, keys) -> dict[str, int]:
    series = pd.Series(values, dtype=object)
    return {k: int((series == k).sum()) for k in keys}


def _confusion(frame: pd.DataFrame, by: str) -> dict:
    """Per value of ``by``, how many slices were called each class or refused."""
    return {
        str(name): _counts(part["called"], [*CLASSES, REFUSED])
        for name, part in frame.groupby(by, sort=True)
    }


def _input_check(scored: pd.DataFrame, seed: int, n_boot: int) -> dict:
    """Counts of the input check's verdicts, layers, and verdicts per true class; the shares
    refused (``not_ct``) and warned (``ct_unlike_training``), with intervals over the proxy."""
    layers = [input_check.layer(r) or "none" for r in scored["reason"]]
    shares = {}
    for key, verdict in (("refused_share", "not_ct"), ("unlike_share", "ct_unlike_training")):
        flags = scored["verdict"].to_numpy() == verdict
        if len(flags):
            rate = rate_interval([flags], [scored["proxy"].to_numpy()], n_boot=n_boot, seed=seed)
            shares[key] = {"value": rate["rate"], "ci95": rate["ci95"]}
    return {
        **shares,
        "verdict": _counts(scored["verdict"], input_check.VERDICTS),
        "layer": _counts(layers, ["none", *input_check.LAYERS]),
        "verdict_by_class": {
            c: _counts(scored.loc[scored["class"] == c, "verdict"], input_check.VERDICTS)
            for c in CLASSES
            if (scored["class"] == c).any()
        },
    }


def _metrics(scored: pd.DataFrame, clusters: str, seed: int, n_boot: int) -> dict:
    probs = scored[[f"p_{c}" for c in CLASSES]].to_numpy(np.float64)
    called = np.asarray(CLASSES, dtype=object)[probs.argmax(axis=1)] if len(probs) else []
    return binary_metrics(scored["class"], probs, called, scored[clusters], seed, n_boot)


def summarise(
    scan_frame: pd.DataFrame,
    rows: pd.DataFrame,
    seed: int,
    proxy=None,
    root: Path | None = None,
    model: str = "",
    n_boot: int = N_BOOT,
) -> dict:
    """The report of a labelled folder from its scan and the predictor's rows.

    Args:
        scan_frame: from :func:`lungct_utils.external.scan`.
        rows: :func:`lungct_utils.deploy.predict.predict_files` rows of (at least) the distinct
            slices' paths (``kept["path"]`` of :func:`lungct_utils.external.distinct`).
        seed: bootstrap seed.
        proxy: the case proxy of each distinct slice, or None to compute it
            (:func:`lungct_utils.external.case_proxy`, reads the images).
        root: the folder, to show paths relative to it.
        model: the model's name or path, recorded.
        n_boot: bootstrap replicates.

    Returns:
        The JSON-ready report: ``root``, ``model``, ``seed``; counts ``n_files``,
        ``n_readable``, ``n_distinct`` (pixel contents kept), ``n_scored`` (those predicted),
        ``copies_dropped``; ``unreadable`` (``{path, error}``, by the scan or the predictor),
        ``conflicts`` (``{paths, classes}``: content under two classes, left out);
        ``classes`` (distinct slices per class); ``proxy`` (what it is), ``n_proxies``,
        ``largest_proxy``; ``input_check`` (``verdict``, ``layer`` and
        ``verdict_by_class`` counts; ``refused_share`` and ``unlike_share`` with intervals
        over the proxy); :func:`binary_metrics` of all scored slices
        (``metrics``: the arg-max of ``p_*``, clustered by proxy; ``metrics_per_image``: the
        same, clustered per image) and of the slices not refused (``metrics_accepted``);
        ``confusion_by_folder`` and ``confusion_by_class`` (true folder or class -> counts
        called each class or ``refused``).
    """
    kept, conflicts = external.distinct(scan_frame)
    proxy = external.case_proxy(kept) if proxy is None else np.asarray(proxy)
    if len(proxy) != len(kept):
        raise ValueError(f"summarise: {len(proxy)} proxies for {len(kept)} distinct slices")
    joined = _joined(kept.assign(proxy=proxy), rows)
    failed = joined["error_row"] != ""
    scored = joined[~failed].copy()
    scored["called"] = np.where(scored["verdict"] == "not_ct", REFUSED, scored["prediction"])
    accepted = scored[scored["verdict"] != "not_ct"]
    unread = scan_frame[scan_frame["error"] != ""]
    problems = [*zip(unread["path"], unread["error"], strict=True)]
    problems += zip(joined.loc[failed, "path"], joined.loc[failed, "error_row"], strict=True)
    sizes = np.bincount(pd.factorize(scored["proxy"])[0]) if len(scored) else np.zeros(1, int)
    return {
        "root": str(root) if root is not None else "",
        "model": str(model),
        "seed": int(seed),
        "n_files": int(len(scan_frame)),
        "n_readable": int((scan_frame["error"] == "").sum()),
        "n_distinct": int(len(kept)),
        "n_scored": int(len(scored)),
        "copies_dropped": int((kept["n_copies"] - 1).sum()),
        "unreadable": [{"path": _relative(p, root), "error": str(e)} for p, e in problems],
        "conflicts": [
            {"paths": [_relative(p, root) for p in r.paths], "classes": list(r.classes)}
            for r in conflicts.itertuples()
        ],
        "classes": _counts(kept["class"], CLASSES),
        "proxy": external.PROXY_DESCRIPTION,
        "n_proxies": int(scored["proxy"].nunique()),
        "largest_proxy": int(sizes.max()),
        "input_check": _input_check(scored, seed, n_boot),
        "metrics": _metrics(scored, "proxy", seed, n_boot),
        "metrics_per_image": _metrics(scored, "pixel_sha", seed, n_boot),
        "metrics_accepted": _metrics(accepted, "proxy", seed, n_boot),
        "confusion_by_folder": _confusion(scored, "folder"),
        "confusion_by_class": _confusion(scored, "class"),
    }


def evaluate_folder(
    predictor,
    root: Path,
    prefixes: Mapping[str, str] = external.DEFAULT_PREFIXES,
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> dict:
    """Scan a labelled folder, predict each distinct slice once and summarise.

    Args:
        predictor: a loaded :class:`~lungct_utils.deploy.predict.Predictor`.
        root: the labelled folder.
        prefixes: folder-name prefix -> class.
        seed: bootstrap seed.
        n_boot: bootstrap replicates.

    Returns:
        :func:`summarise`'s report.

    Raises:
        DataError: as :func:`lungct_utils.external.scan`.
    """
    root = Path(root)
    frame = external.scan(root, prefixes)
    kept, _ = external.distinct(frame)
    proxy = external.case_proxy(kept)
    rows = predict.predict_files(predictor, [Path(p) for p in kept["path"]])
    model = getattr(predictor, "model_path", "")
    return summarise(frame, rows, seed, proxy=proxy, root=root, model=str(model), n_boot=n_boot)


def _figure(metric: dict | None) -> str:
    if metric is None:
        return "n/a"
    lo, hi = metric["ci95"]
    return f"{100 * metric['value']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def format_summary(report: dict) -> str:
    """The short human summary ``evaluate`` prints.

    Args:
        report: from :func:`summarise`.

    Returns:
        A few lines of text.
    """
    m, acc = report["metrics"], report["metrics_accepted"]
    verdicts = ", ".join(f"{k} {v}" for k, v in report["input_check"]["verdict"].items())
    lines = [
        f"{report['root']}: {report['n_files']} files, {report['n_distinct']} distinct slices "
        f"({report['copies_dropped']} copies dropped, {len(report['unreadable'])} unreadable, "
        f"{len(report['conflicts'])} cross-class conflicts); "
        + ", ".join(f"{c} {n}" for c, n in report["classes"].items() if n),
        f"case proxy: {report['n_proxies']} groups (largest {report['largest_proxy']} slices)",
        f"input check: {verdicts}",
        f"all slices (n={m['n']}), 95% intervals over case proxies:",
    ]
    for title, metrics in (("", m), ("accepted ", acc)):
        if title:
            lines.append(f"accepted slices only (n={metrics['n']}, verdict not not_ct):")
        for key in ("sensitivity", "specificity", "balanced_accuracy", "auc"):
            lines.append(f"  {key.replace('_', ' ')}: {_figure(metrics[key])}")
        lines += [f"  note: {note}" for note in metrics["notes"]]
    lines.append(f"called benign: {_figure(m['share_called_benign'])}")
    return "\n".join(lines)
