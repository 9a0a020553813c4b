"""What the notebooks call: each step of the reproduction in one function.

Notebooks run in fresh kernels, so every step hands its results to the next through
files: the split manifests (``data/processed``), the feature cache (``data/interim``),
trained models (``models/``) and metric parts (``reports/metrics/``), which
:func:`write_metrics` joins into ``reports/metrics.json`` and ``reports/summary.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import config, ood
from .augment import load_images
from .errors import DataError
from .experiment import cv_metrics, holdout_metrics, run_cv, run_holdout
from .features import cached_features
from .io_utils import write_json
from .model import assemble, save_model
from .prepare import prepare_all, read_augmented, read_splits
from .provenance import provenance

METRICS_DIR = config.REPORTS / "metrics"


def prepare(
    cfg: config.PaperConfig = config.PAPER,
    progress: bool = True,
    processed: Path = config.PROCESSED,
) -> pd.DataFrame:
    """Build (or reuse) the augmented set and the split manifests.

    Args:
        cfg: settings and seed.
        progress: show progress bars.
        processed: output folder (``data/processed``; ablations use a subfolder).

    Returns:
        The augmented manifest.
    """
    prepare_all(config.data_dir(), cfg, processed=processed, progress=progress)
    return read_augmented(processed)


def features(
    cfg: config.PaperConfig = config.PAPER,
    engine: str = "litert",
    progress: bool = True,
    processed: Path = config.PROCESSED,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The augmented manifest and every image's cached backbone feature.

    Args:
        cfg: settings (``preprocess`` mode).
        engine: ``"litert"`` or ``"keras"``.
        progress: show progress bars.
        processed: the processed-data folder.

    Returns:
        ``(table, features)`` with ``features`` float32 ``(n, 1280)`` in table order.
    """
    table = prepare(cfg, progress, processed)
    images = load_images(table, Path(processed) / "augmented", progress=progress)
    return table, cached_features(images, cfg.preprocess, engine, progress=progress)


def audit(cfg: config.PaperConfig = config.PAPER, progress: bool = True) -> tuple[dict, dict]:
    """The dataset audit (duplicates, pseudo-cases, shortcuts); saves its metrics part.

    Args:
        cfg: settings and seed.
        progress: show progress bars.

    Returns:
        ``(result, summary)``: see :func:`~lungct_utils.audit.audit_originals` and
        :func:`~lungct_utils.audit.audit_summary`.
    """
    from .audit import audit_originals, audit_summary

    result = audit_originals(config.data_dir(), cfg, progress)
    summary = audit_summary(result, cfg.seed)
    write_json(summary, METRICS_DIR / "audit.json")
    return result, summary


def pad_square_ablation(
    cfg: config.PaperConfig = config.PAPER, protocol: str = "grouped_near", progress: bool = True
) -> dict:
    """The shape-shortcut ablation: pad every image to a square before resizing.

    Rebuilds the augmented set (same seed and plan) under ``data/processed/ablation_pad_square``,
    then runs the holdout and the CV of ``protocol``; saves the metrics part.

    Args:
        cfg: settings (``pad_square`` is switched on here).
        protocol: the protocol to compare under.
        progress: show progress bars.

    Returns:
        ``{"protocol", "holdout", "cv"}`` for the padded data.
    """
    padded = cfg.with_overrides(pad_square=True)
    folder = config.PROCESSED / "ablation_pad_square"
    _, feats = features(padded, progress=progress, processed=folder)
    splits = read_splits(protocol, folder)
    hold = holdout_metrics(run_holdout(feats, splits, padded, progress), splits, cfg.seed)
    cv = cv_metrics(run_cv(feats, splits, protocol, padded, progress), splits)
    out = {"protocol": protocol, "holdout": hold, "cv": cv}
    write_json(out, METRICS_DIR / "ablation_pad_square.json")
    return out


def run_name(protocol: str) -> str:
    """The name of a protocol's holdout run (``models/<run>.keras``)."""
    if protocol not in config.PROTOCOLS:
        raise ValueError(f"protocol must be one of {config.PROTOCOLS}, got {protocol!r}")
    return f"{protocol}_holdout"


def train_holdout(
    protocol: str, feats: np.ndarray, cfg: config.PaperConfig = config.PAPER, progress: bool = True
) -> dict:
    """Train the holdout run of a protocol and save it.

    Writes ``models/<run>.keras`` (the end-to-end model), ``models/<run>_head.keras``,
    ``models/<run>.ood.npz`` (the out-of-distribution reference: training features and a
    threshold at the 99th percentile of the validation scores) and ``models/<run>.json``
    (history, epochs, provenance).

    Args:
        protocol: a protocol name.
        feats: features aligned with the split manifest.
        cfg: settings.
        progress: show progress bars.

    Returns:
        ``{"history", "epochs", "best_epoch", "model_path"}``.
    """
    name = run_name(protocol)
    splits = read_splits(protocol)
    run = run_holdout(feats, splits, cfg, progress)
    save_model(run.train.model, config.MODELS / f"{name}_head.keras")
    model_path = save_model(assemble(run.train.model, cfg), config.MODELS / f"{name}.keras")
    roles = splits["holdout"].to_numpy()
    ood.save(ood.fit(feats[roles == "train"], feats[roles == "val"]), ood.path_for(model_path))
    info = {
        "protocol": protocol,
        "history": run.train.history,
        "epochs": run.train.epochs,
        "best_epoch": run.train.best_epoch,
        "model_path": str(model_path.relative_to(config.ROOT)),
        **provenance(cfg),
    }
    write_json(info, config.MODELS / f"{name}.json")
    return info


def load_run(protocol: str) -> tuple[object, dict]:
    """The saved head and run info of a protocol's holdout run.

    Args:
        protocol: a protocol name.

    Returns:
        ``(head model, info dict)``.
    """
    import keras

    name = run_name(protocol)
    path = config.MODELS / f"{name}_head.keras"
    if not path.is_file():
        raise DataError(f"{path}: not trained yet; run notebooks/03_training.ipynb first")
    info = json.loads((config.MODELS / f"{name}.json").read_text())
    return keras.models.load_model(path), info


def evaluate_holdout(protocol: str, feats: np.ndarray, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Evaluate a saved holdout run on its test split; save the metrics part.

    Args:
        protocol: a protocol name.
        feats: features aligned with the split manifest.
        seed: bootstrap seed.

    Returns:
        ``(metrics, predictions)``; predictions has ``id, label, group`` and one
        probability column per class plus ``pred``.
    """
    from .experiment import RunResult
    from .train import TrainResult, predict_proba

    head, info = load_run(protocol)
    splits = read_splits(protocol)
    test = np.flatnonzero(splits["holdout"].to_numpy() == "test")
    probs = predict_proba(head, feats[test])
    run = RunResult(TrainResult(head, info["history"], info["epochs"]), test, probs, 0.0)
    metrics = holdout_metrics(run, splits, seed)
    preds = splits.iloc[test][["id", "label", "group"]].reset_index(drop=True)
    for i, c in enumerate(config.CLASSES):
        preds[f"p_{c}"] = probs[:, i]
    preds["pred"] = [config.CLASSES[i] for i in probs.argmax(1)]
    write_json(metrics, METRICS_DIR / f"holdout_{protocol}.json")
    return metrics, preds


def cross_validate(
    protocol: str, feats: np.ndarray, cfg: config.PaperConfig = config.PAPER, progress: bool = True
) -> dict:
    """Stratified k-fold CV of a protocol (paper II.F); save the metrics part.

    Args:
        protocol: a protocol name.
        feats: features aligned with the split manifest.
        cfg: settings.
        progress: show progress bars.

    Returns:
        Table IV metrics: ``{"folds", "mean", "std"}``.
    """
    splits = read_splits(protocol)
    result = cv_metrics(run_cv(feats, splits, protocol, cfg, progress), splits)
    write_json(result, METRICS_DIR / f"cv_{protocol}.json")
    return result


def load_part(name: str) -> dict:
    """A saved metrics part (``reports/metrics/<name>.json``), e.g. ``holdout_grouped``.

    Args:
        name: the part's name.

    Returns:
        Its dict.
    """
    path = METRICS_DIR / f"{name}.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; run the notebooks in order (make report)")
    return json.loads(path.read_text())


def collect_metrics(cfg: config.PaperConfig = config.PAPER) -> dict:
    """Join the metric parts into the ``metrics.json`` structure.

    Args:
        cfg: the settings the parts were made with.

    Returns:
        ``{"params", "seed", "git_commit", "dataset", "protocols"}`` (fractions).
    """
    from .dataset import read_reference

    reference = read_reference()
    table = read_augmented()
    prov = provenance(cfg)
    protocols = {}
    for protocol in config.PROTOCOLS:
        hold = load_part(f"holdout_{protocol}")
        protocols[protocol] = {"holdout": hold, "cv": load_part(f"cv_{protocol}")}
    return {
        "params": prov["params"],
        "seed": prov["seed"],
        "git_commit": prov["git_commit"],
        "created": prov["created"],
        "dataset": {
            "original": {c: int((reference["label"] == c).sum()) for c in config.CLASSES},
            "augmented": {c: int((table["label"] == c).sum()) for c in config.CLASSES},
        },
        "audit": load_part("audit"),
        "protocols": protocols,
        "ablations": {"pad_square": load_part("ablation_pad_square")},
    }


def write_metrics(cfg: config.PaperConfig = config.PAPER) -> dict:
    """Write ``reports/metrics.json`` and ``reports/summary.md``.

    Args:
        cfg: the settings used.

    Returns:
        The metrics dict.
    """
    from .io_utils import write_text
    from .summary import render_summary

    metrics = collect_metrics(cfg)
    write_json(metrics, config.REPORTS / "metrics.json")
    write_text(render_summary(metrics), config.REPORTS / "summary.md")
    return metrics


def model_path(protocol: str) -> Path:
    """Where the end-to-end model of a protocol's holdout run is saved."""
    return config.MODELS / f"{run_name(protocol)}.keras"


def ood_rates(protocol: str, feats: np.ndarray) -> pd.DataFrame:
    """How often the OOD flag fires on held-out CT slices and on images that are not CT.

    Args:
        protocol: whose holdout model and reference to use.
        feats: features aligned with the split manifest (test rows are scored).

    Returns:
        DataFrame indexed by image set: ``images``, ``flagged``, ``flagged_share``.
    """
    from .ood_examples import non_ct_images
    from .predict import Predictor

    splits = read_splits(protocol)
    ref = ood.load(ood.path_for(model_path(protocol)))
    test = splits["holdout"].to_numpy() == "test"
    ct_flags = ood.score(feats[test], ref) > float(ref["threshold"])
    predictor = Predictor(model_path(protocol))
    others = non_ct_images()
    _, _, other_flags = predictor(list(others.values()))
    rows = {"held-out CT slices (test split)": ct_flags}
    for name, flag in zip(others, other_flags, strict=True):
        rows[f"not CT: {name}"] = np.array([flag])
    rows["not CT: all"] = np.asarray(other_flags)
    return pd.DataFrame(
        {
            k: {"images": len(v), "flagged": int(v.sum()), "flagged_share": float(v.mean())}
            for k, v in rows.items()
        }  # fmt: skip
    ).T


def gradcam_examples(protocol: str, preds: pd.DataFrame, n: int = 3, seed: int = 0) -> list[tuple]:
    """Grad-CAM overlays of ``n`` correct and ``n`` wrong test predictions.

    Args:
        protocol: whose holdout model to explain.
        preds: its test predictions (from :func:`evaluate_holdout`).
        n: examples of each kind.
        seed: sampling seed.

    Returns:
        ``(image, overlay, title)`` tuples for :func:`~lungct_utils.plots.image_pairs`.
    """
    from . import gradcam
    from .predict import Predictor
    from .preprocess import open_rgb, scale

    predictor = Predictor(model_path(protocol))
    gmodel = gradcam.grad_model(predictor.model)
    files = read_augmented().set_index("id")["file"]
    right = preds[preds["pred"] == preds["label"]]
    wrong = preds[preds["pred"] != preds["label"]]
    picks = pd.concat([right.sample(min(n, len(right)), random_state=seed),
                       wrong.sample(min(n, len(wrong)), random_state=seed)])  # fmt: skip
    out = []
    for row in picks.itertuples():
        img = open_rgb(config.AUGMENTED_DIR / files[row.id])
        cam = gradcam.heatmap(gmodel, scale(np.asarray(img)))
        verdict = "correct" if row.pred == row.label else "WRONG"
        out.append((np.asarray(img), np.asarray(gradcam.overlay(img, cam)),
                    f"{row.id}: true {row.label}, predicted {row.pred} ({verdict})"))  # fmt: skip
    return out
