"""Build the derived data: the augmented set and the split manifests (``make prepare``).

Outputs under ``data/processed``: ``augmented/`` (PNG images), ``augmented.csv`` (one row
per image: source, transform, pixel hash), ``pseudo_cases.csv`` (the inferred case of
each original, which needs the ImageNet weights), ``splits_<protocol>.csv`` and
``prepare.json`` (the parameters, seed and commit that made them). A rerun with the same
release, settings and seed reuses them; anything else rebuilds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import config
from .augment import materialize, plan_augmentation
from .dataset import load_manifest
from .io_utils import write_csv, write_json
from .provenance import provenance
from .splits import make_splits


def split_path(protocol: str, processed: Path = config.PROCESSED) -> Path:
    """Where the split manifest of a protocol lives.

    Args:
        protocol: a protocol name.
        processed: the processed-data folder.

    Returns:
        ``processed/splits_<protocol>.csv``.
    """
    return Path(processed) / f"splits_{protocol}.csv"


def _fingerprint(manifest: pd.DataFrame, cfg: config.PaperConfig) -> dict:
    keys = (
        "image_size", "augmented_counts", "max_rotation_deg", "max_shift_frac", "max_zoom",
        "pad_square", "train_frac", "val_frac", "test_frac", "n_folds", "seed", "preprocess",
    )  # fmt: skip
    settings = {k: cfg.to_dict()[k] for k in keys}
    from .audit import THRESHOLDS, VIEWS
    from .features import weights_fingerprint
    from .io_utils import sha256_bytes

    digest = sha256_bytes("\n".join(sorted(manifest["sha256"] + manifest["label"])).encode())
    # pseudo-cases depend on the audit's method and the backbone weights too
    audit = {"views": [list(v) for v in VIEWS], "thresholds": [float(t) for t in THRESHOLDS],
             "weights_sha256": weights_fingerprint(config.weights_path())}  # fmt: skip
    return {"settings": settings, "originals_sha256": digest, "audit": audit}


def prepare_all(
    release_root: Path,
    cfg: config.PaperConfig = config.PAPER,
    processed: Path = config.PROCESSED,
    progress: bool = True,
    force: bool = False,
) -> dict[str, Path]:
    """Build (or reuse) the augmented set and the split manifests of every protocol.

    Args:
        release_root: the IQ-OTH/NCCD release folder.
        cfg: settings and seed.
        processed: output folder (``data/processed``).
        progress: show progress bars.
        force: rebuild even when the outputs match.

    Returns:
        Name -> path of everything written.
    """
    processed = Path(processed)
    manifest = load_manifest(release_root, progress=progress)
    meta_path = processed / "prepare.json"
    fingerprint = _fingerprint(manifest, cfg)
    outputs = {"augmented": processed / "augmented.csv", "images": processed / "augmented",
               "pseudo_cases": processed / "pseudo_cases.csv"}  # fmt: skip
    outputs.update({f"splits_{p}": split_path(p, processed) for p in config.PROTOCOLS})
    if not force and meta_path.is_file() and all(p.exists() for p in outputs.values()):
        if json.loads(meta_path.read_text()).get("fingerprint") == fingerprint:
            return outputs | {"meta": meta_path}
    plan = plan_augmentation(manifest, cfg)
    table = materialize(
        plan, Path(release_root), processed / "augmented", cfg.image_size, progress, cfg.pad_square
    )
    cases = pseudo_cases(release_root, cfg, processed, progress)
    table = table.assign(
        case=table["source"].map(dict(zip(cases["path"], cases["pseudo_case"], strict=True)))
    )
    for protocol in config.PROTOCOLS:
        write_csv(make_splits(table, protocol, cfg), split_path(protocol, processed))
    write_json({"fingerprint": fingerprint, **provenance(cfg)}, meta_path)
    return outputs | {"meta": meta_path}


def pseudo_cases(
    release_root: Path,
    cfg: config.PaperConfig,
    processed: Path = config.PROCESSED,
    progress: bool = True,
) -> pd.DataFrame:
    """Infer pseudo-cases of the originals (audit.py) and save ``pseudo_cases.csv``.

    Args:
        release_root: the release folder.
        cfg: settings (padding is ignored: the audit looks at the data as released).
        processed: output folder.
        progress: show progress bars.

    Returns:
        DataFrame ``path, label, sha256, pseudo_case``.
    """
    from .audit import audit_originals, pseudo_case_table

    result = audit_originals(release_root, cfg.with_overrides(pad_square=False), progress)
    table = pseudo_case_table(result)
    write_csv(table, Path(processed) / "pseudo_cases.csv")
    return table


def read_augmented(processed: Path = config.PROCESSED) -> pd.DataFrame:
    """The augmented manifest written by :func:`prepare_all`.

    Args:
        processed: the processed-data folder.

    Returns:
        The table.
    """
    path = Path(processed) / "augmented.csv"
    if not path.is_file():
        from .errors import DataError

        raise DataError(
            f"{path}: not built yet; run 'make prepare' (python -m lungct_utils prepare)"
        )
    return pd.read_csv(path, dtype={"source_sha256": str, "group": str, "pixel_sha256": str})


def read_splits(protocol: str, processed: Path = config.PROCESSED) -> pd.DataFrame:
    """The split manifest of a protocol.

    Args:
        protocol: a protocol name.
        processed: the processed-data folder.

    Returns:
        The table (``id, label, group, holdout, fold``).
    """
    if protocol not in config.PROTOCOLS:
        raise ValueError(f"protocol must be one of {config.PROTOCOLS}, got {protocol!r}")
    path = split_path(protocol, processed)
    if not path.is_file():
        from .errors import DataError

        raise DataError(
            f"{path}: not built yet; run 'make prepare' (python -m lungct_utils prepare)"
        )
    return pd.read_csv(path, dtype={"group": str})
