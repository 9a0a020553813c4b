"""Out-of-distribution flag: is an input unlike the training CT slices?

An image's pooled backbone feature is compared with the training features: after
subtracting their mean, the score is one minus the largest cosine similarity to any
training feature (its nearest training slice). The threshold is a high quantile (99% by
default) of the validation images' scores, so about 1% of held-out CT slices are flagged,
while photographs, blank images and other modalities land far away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io_utils import atomic_path


def _unit(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32) - mean
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def fit(train: np.ndarray, val: np.ndarray, quantile: float = 0.99) -> dict:
    """Fit the reference set and the threshold.

    Args:
        train: training features ``(n, 1280)``.
        val: validation features (set the threshold).
        quantile: share of validation images that must pass.

    Returns:
        ``{"mean", "reference", "threshold", "quantile"}``.
    """
    if not 0.5 <= quantile < 1:
        raise ValueError(f"ood.fit: quantile must be in [0.5, 1), got {quantile!r}")
    mean = np.asarray(train, dtype=np.float32).mean(axis=0)
    ref = {"mean": mean, "reference": _unit(train, mean), "quantile": np.float32(quantile)}
    ref["threshold"] = np.float32(np.quantile(score(val, ref), quantile))
    return ref


def score(features: np.ndarray, ref: dict, chunk: int = 512) -> np.ndarray:
    """Distance to the nearest training feature (1 - centered cosine).

    Args:
        features: ``(n, 1280)``.
        ref: from :func:`fit`.
        chunk: rows per matrix product.

    Returns:
        float32 ``(n,)``; larger is stranger.
    """
    x = _unit(features, ref["mean"])
    out = [1 - (x[i : i + chunk] @ ref["reference"].T).max(axis=1) for i in range(0, len(x), chunk)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def save(ref: dict, path: Path) -> Path:
    """Save a reference as ``.npz`` atomically.

    Args:
        ref: from :func:`fit`.
        path: target file.

    Returns:
        ``path``.
    """
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **ref)
    return Path(path)


def load(path: Path) -> dict:
    """Load a reference saved by :func:`save`.

    Args:
        path: the ``.npz`` file.

    Returns:
        The reference dict.
    """
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def path_for(model_path: Path) -> Path:
    """Where the OOD reference of a model lives (``models/<run>.ood.npz``)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".ood.npz")
