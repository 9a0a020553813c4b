"""Out-of-distribution flag: is an input unlike the training CT slices?

An image's pooled backbone feature is compared with the training features: after
subtracting their mean, the score is one minus the largest cosine similarity to any
training feature (its nearest training slice). The threshold is a high quantile (99% by
default) of the validation images' scores, so about 1% of held-out CT slices are flagged,
while photographs, blank images and other modalities land far away.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import cbook
from PIL import Image

from ..audit import centered_unit
from ..io_utils import DataError, atomic_path

#: Images smaller than this on either side are too small to be a CT slice (the release's
#: smallest side is 331 pixels).
MIN_SIDE = 128
#: A grey-level standard deviation below this is a blank image (CT slices: 41 or more).
BLANK_STD = 2.0
#: Mean neighbour difference over the standard deviation above this is noise (CT: <= 0.56).
NOISE_ROUGHNESS = 0.9


def content_reason(img: Image.Image) -> str:
    """Why an image cannot be a CT slice, from its content alone ("" when it could be).

    Args:
        img: the image as read (any size).

    Returns:
        ``"too small: WxH"``, ``"blank image"``, ``"pure noise"`` or ``""``.
    """
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        return f"too small: {w}x{h}"
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    spread = float(grey.std())
    if spread < BLANK_STD:
        return "blank image"
    if float(np.abs(np.diff(grey, axis=1)).mean()) / spread > NOISE_ROUGHNESS:
        return "pure noise"
    return ""


def reasons(
    images: list[Image.Image], scores: np.ndarray | None, threshold: float | None
) -> list[str]:
    """The out-of-distribution reason of each image ("" for an ordinary CT slice).

    Args:
        images: the images as read.
        scores: their feature distances (:func:`score`), or None without a reference.
        threshold: the reference's threshold.

    Returns:
        One reason per image; the content checks win over the distance.
    """
    out = []
    for k, img in enumerate(images):
        reason = content_reason(img)
        if not reason and scores is not None and scores[k] > threshold:
            reason = "far from training slices"
        out.append(reason)
    return out


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
    reference = centered_unit(train, mean).astype(np.float32)
    ref = {"mean": mean, "reference": reference, "quantile": np.float32(quantile)}
    ref["threshold"] = np.float32(np.quantile(score(val, ref), quantile))
    return ref


def fit_by_group(features: np.ndarray, groups, quantile: float = 0.99) -> dict:
    """Fit on every feature; set the threshold as if each group were a new patient.

    For a model trained on all slices there is no validation set: each slice is scored
    against the slices of the *other* groups (cases), so the threshold is the quantile of
    the distances of unseen patients' slices, not of slices already in the reference.

    Args:
        features: ``(n, 1280)`` features of every training slice.
        groups: the group (case) of each.
        quantile: share of those slices that must pass.

    Returns:
        ``{"mean", "reference", "threshold", "quantile"}``.
    """
    if not 0.5 <= quantile < 1:
        raise ValueError(f"ood.fit_by_group: quantile must be in [0.5, 1), got {quantile!r}")
    groups = np.asarray(groups).astype(str)
    if len(np.unique(groups)) < 2:
        raise ValueError("ood.fit_by_group: needs at least two groups")
    mean = np.asarray(features, dtype=np.float32).mean(axis=0)
    unit = centered_unit(features, mean).astype(np.float32)
    sim = unit @ unit.T
    sim[groups[:, None] == groups[None, :]] = -np.inf  # never the own case
    distance = 1 - sim.max(axis=1)
    return {"mean": mean, "reference": unit, "quantile": np.float32(quantile),
            "threshold": np.float32(np.quantile(distance, quantile))}  # fmt: skip


def score(features: np.ndarray, ref: dict, chunk: int = 512) -> np.ndarray:
    """Distance to the nearest training feature (1 - centered cosine).

    Args:
        features: ``(n, 1280)``.
        ref: from :func:`fit`.
        chunk: rows per matrix product.

    Returns:
        float32 ``(n,)``; larger is stranger.
    """
    x = centered_unit(features, ref["mean"]).astype(np.float32)
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


def _sample(name: str):
    return cbook.get_sample_data(name, asfileobj=False)


def mri_slice() -> Image.Image:
    """matplotlib's sample MRI slice (256x256, 16-bit) as 8-bit RGB."""
    with gzip.open(_sample("s1045.ima.gz")) as handle:
        raw = np.frombuffer(handle.read(), np.uint16).reshape(256, 256).astype(np.float64)
    return Image.fromarray((raw / raw.max() * 255).astype(np.uint8), mode="L").convert("RGB")


def non_ct_images(size: int = 256, seed: int = 0) -> dict[str, Image.Image]:
    """A named set of RGB images that are not chest CT slices.

    Args:
        size: side of the synthetic images.
        seed: noise seed.

    Returns:
        name -> RGB image.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    checker = (((xx // 32) + (yy // 32)) % 2 * 255).astype(np.uint8)
    synth = {
        "blank black": np.zeros((size, size), np.uint8),
        "blank white": np.full((size, size), 255, np.uint8),
        "one grey level": np.full((size, size), 97, np.uint8),
        "uniform noise": rng.integers(0, 256, (size, size), dtype=np.uint8),
        "gradient": (xx / size * 255).astype(np.uint8),
        "checkerboard": checker,
    }
    out = {
        "photograph (grace_hopper.jpg)": Image.open(_sample("grace_hopper.jpg")).convert("RGB"),
        "photograph (Minduka_Present_Blue_Pack.png)": Image.open(
            _sample("Minduka_Present_Blue_Pack.png")
        ).convert("RGB"),
        "logo (logo2.png)": Image.open(_sample("logo2.png")).convert("RGB"),
        "MRI head slice (s1045.ima)": mri_slice(),
    }
    out.update({k: Image.fromarray(v, mode="L").convert("RGB") for k, v in synth.items()})
    out["tiny (64x64)"] = out["photograph (grace_hopper.jpg)"].resize((64, 64))
    return out


def ood_rates(predictor, test_features: np.ndarray) -> pd.DataFrame:
    """How often the OOD flag fires on held-out CT slices and on images that are not CT.

    Args:
        predictor: a loaded model with its OOD reference.
        test_features: backbone features of held-out CT slices (its test split).

    Returns:
        DataFrame indexed by image set: ``images``, ``flagged``, ``flagged_share``.
    """
    if predictor.ood_ref is None:
        raise DataError(f"{predictor.model_path}: no OOD reference beside the model")
    ref = predictor.ood_ref
    rows = {"held-out CT slices (test split)": score(test_features, ref) > ref["threshold"]}
    others = non_ct_images()
    _, _, why = predictor(list(others.values()))
    flags = np.array([bool(r) for r in why])
    rows.update({f"not CT: {name} ({r or 'not flagged'})": np.array([f])
                 for name, r, f in zip(others, why, flags, strict=True)})  # fmt: skip
    rows["not CT: all"] = flags
    table = {k: {"images": len(v), "flagged": int(v.sum()), "flagged_share": float(v.mean())}
             for k, v in rows.items()}  # fmt: skip
    return pd.DataFrame(table).T
