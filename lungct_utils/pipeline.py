"""The file-level steps of the flow, shared by the notebooks and the command line.

Notebooks run in fresh kernels, so every step hands its results to the next through files:
the groups of the originals and the split manifests (``data/processed``), the feature cache
(``data/interim``), trained models (``models/``, :func:`lungct_utils.model.save_run`), and
metric parts and predictions (:mod:`lungct_utils.parts`).
``make prepare`` (:func:`prepare`) runs the data steps without any notebook; notebook 01
runs the same steps one by one on visible data and saves them with :func:`save_groups`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from . import audit, augment, cases, config, groupings, splits
from .augment import load_images, materialize, plan_augmentation
from .data import load_manifest
from .features import cached_features, features_for_keys, imagenet_weights, weights_fingerprint
from .groupings import GROUPS_CSV, group_originals
from .images import body_crop, load_uint8
from .io_utils import DataError, provenance, sha256_bytes, write_csv, write_json
from .splits import make_splits


def release_manifest(progress: bool = True) -> pd.DataFrame:
    """The verified originals of the release (``$LUNGCT_DATA_DIR`` or ``data/raw``).

    Args:
        progress: show progress bars.

    Returns:
        ``path, label, sha256, width, height, mode, abspath, number`` in path order.
    """
    manifest = load_manifest(config.data_dir(), progress=progress).reset_index(drop=True)
    manifest["number"] = [cases.file_number(p) for p in manifest["path"]]
    return manifest


def original_images(
    manifest: pd.DataFrame, cfg: config.PaperConfig = config.PAPER, progress: bool = True
) -> np.ndarray:
    """The originals decoded, in RGB and resized as the paper does (II.B).

    Args:
        manifest: from :func:`release_manifest`.
        cfg: ``image_size`` and ``pad_square``.
        progress: show progress bars.

    Returns:
        uint8 ``(n, s, s, 3)`` in manifest order.
    """
    paths = tqdm(manifest["abspath"], desc="loading originals", disable=not progress, leave=False)
    return np.stack([load_uint8(p, cfg.image_size, cfg.pad_square) for p in paths])


def view_features(images: np.ndarray, cfg: config.PaperConfig, progress: bool = True):
    """Backbone features of the originals and of their audit views (mirror, rotations).

    Args:
        images: uint8 originals.
        cfg: ``preprocess``.
        progress: show progress bars.

    Returns:
        ``(features, [features of each view])``.
    """
    feats = cached_features(images, cfg.preprocess, progress=progress)
    return feats, [
        cached_features(v, cfg.preprocess, progress=progress) for v in audit.views(images)
    ]


def _code_digest(*modules) -> str:
    """The source of some modules (every rule, level and constant in them), hashed: a cache
    built by older code is not reused."""
    return sha256_bytes(b"".join(Path(m.__file__).read_bytes() for m in modules))


def _groups_fingerprint(manifest: pd.DataFrame, cfg: config.PaperConfig) -> dict:
    digest = sha256_bytes("\n".join(sorted(manifest["sha256"] + manifest["path"])).encode())
    return {
        "originals_sha256": digest,
        "weights_sha256": weights_fingerprint(imagenet_weights()),
        "image_size": cfg.image_size,
        "preprocess": cfg.preprocess,
        "views": [list(v) for v in audit.VIEWS],
        "thresholds": [float(t) for t in audit.THRESHOLDS],
        "thumbnail_side": cases.THUMBNAIL_SIDE,
        "rules_sha256": _code_digest(audit, cases, groupings),
        "stated": dict(config.STATED_CASES),
    }


def save_groups(
    groups: pd.DataFrame,
    manifest: pd.DataFrame,
    cfg: config.PaperConfig,
    processed: Path = config.PROCESSED,
    family: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``pseudo_cases.csv``, ``cases.csv`` and ``groupings.csv`` (the family).

    Beside them ``groups.json`` records what they were computed from, so :func:`prepare`
    reuses them instead of running the audit again.

    Args:
        groups: per original ``path, label, sha256, pseudo_case, case``.
        manifest: the originals they were computed from.
        cfg: the settings used (``image_size``, ``preprocess``).
        processed: the processed-data folder.
        family: from :func:`lungct_utils.groupings.family`.

    Returns:
        Column -> path written (``"family"`` for ``groupings.csv``).
    """
    out = {}
    for column, default in GROUPS_CSV.items():
        target = Path(processed) / default.name
        out[column] = write_csv(groups[["path", "label", "sha256", column]], target)
    if family is not None:
        out["family"] = write_csv(family, Path(processed) / config.GROUPINGS_CSV.name)
    write_json(
        {"fingerprint": _groups_fingerprint(manifest, cfg), **provenance(cfg)},
        Path(processed) / "groups.json",
    )
    return out


def groups_current(
    manifest: pd.DataFrame, cfg: config.PaperConfig, processed: Path = config.PROCESSED
) -> bool:
    """True when the saved groups were computed from these originals, weights and settings.

    Args:
        manifest: the originals.
        cfg: the settings.
        processed: the processed-data folder.

    Returns:
        Whether :func:`save_groups`' outputs can be reused.
    """
    meta = Path(processed) / "groups.json"
    files = [Path(processed) / g.name for g in (*GROUPS_CSV.values(), config.GROUPINGS_CSV)]
    if not meta.is_file() or not all(f.is_file() for f in files):
        return False
    return json.loads(meta.read_text()).get("fingerprint") == _groups_fingerprint(manifest, cfg)


def compute_groups(manifest: pd.DataFrame, cfg: config.PaperConfig, progress: bool = True) -> dict:
    """The pseudo-case and case of every original (the steps of notebook 01, in one call).

    Args:
        manifest: from :func:`release_manifest`.
        cfg: settings (padding is ignored: groups describe the data as released).
        progress: show progress bars.

    Returns:
        :func:`~lungct_utils.groupings.group_originals`' result.
    """
    plain = cfg.with_overrides(pad_square=False)
    images = original_images(manifest, plain, progress)
    feats, others = view_features(images, plain, progress)
    return group_originals(manifest, images, feats, others)


def _fingerprint(cfg: config.PaperConfig, processed: Path) -> dict:
    keys = (
        "image_size",
        "augmented_counts",
        "max_rotation_deg",
        "max_shift_frac",
        "max_zoom",
        "pad_square",
        "train_frac",
        "val_frac",
        "test_frac",
        "n_folds",
        "cv_repeats",
        "seed",
    )
    groups = json.loads((Path(processed) / "groups.json").read_text())["fingerprint"]
    # the splits follow the groups' content, not only what they were computed from
    files = GROUPS_CSV.values()
    content = sha256_bytes(b"".join((Path(processed) / f.name).read_bytes() for f in files))
    # the fingerprint's format: its pixel keys hash the image shape too
    settings = {k: cfg.to_dict()[k] for k in keys}
    code = _code_digest(augment, splits)  # how the set is augmented and split
    fingerprint = {"format": 2, "settings": settings, "groups": groups}
    return {**fingerprint, "groups_content": content, "code_sha256": code}


def prepare(
    cfg: config.PaperConfig = config.PAPER,
    processed: Path = config.PROCESSED,
    progress: bool = True,
    force: bool = False,
) -> pd.DataFrame:
    """Build (or reuse) the groups of the originals, the augmented set and every split manifest.

    Outputs under ``processed``: ``pseudo_cases.csv``, ``cases.csv`` and ``groups.json``
    (:func:`save_groups`), ``augmented/`` (PNG), ``augmented.csv``, ``splits_<protocol>.csv``
    and ``prepare.json`` (fingerprint and provenance). A rerun with the same release,
    settings, weights and seed reuses them; groups saved by notebook 01 are reused too.

    Args:
        cfg: settings and seed.
        processed: output folder.
        progress: show progress bars.
        force: rebuild even when the outputs match.

    Returns:
        The augmented table with its group columns (:func:`read_table`).
    """
    processed = Path(processed)
    manifest = release_manifest(progress)
    if force or not groups_current(manifest, cfg, processed):
        found = compute_groups(manifest, cfg, progress)
        save_groups(found["groups"], manifest, cfg, processed, found["family"])
    meta = processed / config.PREPARE_JSON.name
    fingerprint = _fingerprint(cfg, processed)
    outputs = [processed / config.AUGMENTED_CSV.name, processed / config.AUGMENTED_DIR.name]
    outputs += [config.split_path(p, processed) for p in config.PROTOCOLS]
    if not force and meta.is_file() and all(p.exists() for p in outputs):
        if json.loads(meta.read_text()).get("fingerprint") == fingerprint:
            return read_table(processed)
    images = original_images(manifest, cfg, progress)
    plan = plan_augmentation(manifest, cfg)
    sources = dict(zip(manifest["path"], images, strict=True))
    materialize(plan, sources, processed / "augmented", progress)
    table = read_table(processed)
    for protocol in config.PROTOCOLS:
        write_csv(make_splits(table, protocol, cfg), config.split_path(protocol, processed))
    write_json({"fingerprint": fingerprint, **provenance(cfg)}, meta)
    return table


def prepared_config(processed: Path = config.PROCESSED, **overrides) -> config.PaperConfig:
    """The settings the augmented set and splits on disk were made with, plus a notebook's own.

    Notebook 02 builds the set and the splits (:func:`prepare`); notebooks 03-08 train and
    score on them. A later notebook never rebuilds them: a parameter of its own that would
    need another set or split (seed, augmentation range, CV repeats) stops it with one line
    naming the parameter.

    Args:
        processed: the folder :func:`prepare` wrote.
        **overrides: the notebook's parameters (UPPER or lower case setting names).

    Returns:
        The config of the set on disk with ``overrides`` applied.

    Raises:
        DataError: nothing prepared yet, or an override disagrees with the set on disk.
    """
    meta = Path(processed) / config.PREPARE_JSON.name
    if not meta.is_file():
        raise DataError(f"{meta}: no augmented set yet; run notebook 02 (or `make report`)")
    settings = json.loads(meta.read_text())["fingerprint"]["settings"]
    cfg = config.PAPER.with_overrides(**settings).with_overrides(**overrides)
    for key, made in settings.items():
        wanted = json.loads(json.dumps(cfg.to_dict()[key]))
        if wanted != made:
            raise DataError(
                f"{key.upper()}={wanted!r}, but the augmented set and splits on disk were made "
                f"with {key.upper()}={made!r}: set it in a parameters file and run "
                "`make report PARAMS=file.yaml` (notebook 02 rebuilds them)"
            )
    return cfg


def read_table(processed: Path = config.PROCESSED) -> pd.DataFrame:
    """The augmented manifest with each row's pseudo-case and case (by its source).

    Args:
        processed: the processed-data folder.

    Returns:
        ``augmented.csv`` plus ``pseudo_case`` and ``case`` columns.
    """
    path = Path(processed) / config.AUGMENTED_CSV.name
    missing = [
        p
        for p in (path, *(Path(processed) / g.name for g in GROUPS_CSV.values()))
        if not p.is_file()
    ]
    if missing:
        raise DataError(f"{missing[0]}: not built yet; run 'make prepare'")
    table = pd.read_csv(path, dtype={"source_sha256": str, "group": str, "pixel_sha256": str})
    for column, default in GROUPS_CSV.items():
        groups = pd.read_csv(Path(processed) / default.name)
        table[column] = table["source"].map(dict(zip(groups["path"], groups[column], strict=True)))
    return table


def read_splits(protocol: str, processed: Path = config.PROCESSED) -> pd.DataFrame:
    """The split manifest of a protocol (:func:`~lungct_utils.splits.make_splits`).

    Args:
        protocol: a protocol name.
        processed: the processed-data folder.

    Returns:
        The table.
    """
    path = config.split_path(protocol, processed)
    if not path.is_file():
        raise DataError(f"{path}: not built yet; run 'make prepare'")
    return pd.read_csv(path, dtype={"group": str})


def table_features(
    table: pd.DataFrame,
    cfg: config.PaperConfig = config.PAPER,
    engine: str = "litert",
    processed: Path = config.PROCESSED,
    progress: bool = True,
) -> np.ndarray:
    """Every augmented image's backbone feature, from the cache (images read only if missing).

    Args:
        table: from :func:`read_table`.
        cfg: ``preprocess``.
        engine: ``"litert"`` or ``"keras"``.
        processed: the processed-data folder holding ``augmented/``.
        progress: show progress bars.

    Returns:
        float32 ``(n, 1280)`` in table order.
    """

    def load(rows):
        return load_images(table.iloc[rows], Path(processed) / "augmented", progress)

    keys = table["pixel_sha256"].tolist()
    return features_for_keys(keys, load, cfg.preprocess, engine, progress=progress)


def body_crops(images: np.ndarray) -> np.ndarray:
    """The body crop (:func:`~lungct_utils.images.body_crop`) of resized originals.

    Args:
        images: uint8 ``(n, s, s, 3)``, e.g. from :func:`original_images`.

    Returns:
        uint8 ``(n, s, s, 3)``: each body's bounding box resized back to ``s``.
    """
    return np.stack([body_crop(Image.fromarray(img), img.shape[0]) for img in images])
