"""Input check: two questions, not one.

1. **Is this a CT slice at all?** If not, the image is refused (verdict ``not_ct``) and
   gets no class. Three layers answer it, cheapest first:

   * **content**: too small, blank, pure noise (fixed rules from the release's ranges);
   * **colour**: a CT slice is grey, its three channels equal;
   * **ct**: a logistic regression on the pooled backbone feature (:func:`fit_ct`), CT
     slices against images that are not. Its CT side is the training slices *and*
     transforms of them that simulate other scanners and hospitals (:mod:`lungct_utils.shift`:
     window and level, contrast, gamma, noise, blur, scale, shift, framing); its other side
     is the design part of the non-CT corpus (:mod:`lungct_utils.corpus`). The
     threshold refuses :data:`CT_RATE` of **held-out patients'** slices and their
     transforms (grouped folds). No image of an external set takes part.

2. **Is it like the training hospital's slices?** If not, the class and probabilities are
   kept with a warning (verdict ``ct_unlike_training``). Two layers:

   * **layout**: the image's *contrast-normalised* 16x16 grey thumbnail (:func:`layouts`)
     against the training slices' (root-mean-square distance to the nearest one);
   * **features**: one minus the largest centred cosine similarity of the image's pooled
     backbone feature to a training feature.

   Both are calibrated on **held-out patients** (:func:`fit`): the training slices are cut
   into grouped folds of whole reconstructed cases; each slice's distance to the *other*
   folds is the distance a new patient's slice has, and the threshold is the quantile of
   those distances that flags a stated share of them (:data:`LAYOUT_RATE`,
   :data:`FEATURE_RATE`).

The first layer that fires gives the reason ("" when none does) and so the verdict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from . import corpus, shift
from .audit import centered_unit, thumbnails
from .features import cached_features
from .images import resize_rgb
from .io_utils import atomic_path
from .splits import group_kfold

#: Images smaller than this on either side are too small to be a CT slice (the release's
#: smallest side is 331 pixels).
MIN_SIDE = 128
#: A grey-level standard deviation below this is a blank image (CT slices: 41 or more).
BLANK_STD = 2.0
#: Mean neighbour difference over the standard deviation above this is noise (CT: <= 0.56).
NOISE_ROUGHNESS = 0.9
#: A pixel whose channels differ by more than this is coloured (grey JPEGs stay within a
#: few levels of chroma noise; the release's slices: 0) ...
COLOUR_SPREAD = 24
#: ... and an image with more than this share of coloured pixels is a colour picture.
COLOUR_SHARE = 0.02
#: Side of the layout thumbnail (224 / 16 = 14 pixels per cell).
LAYOUT_SIDE = 16
#: Share of held-out CT slices the layout layer may flag in calibration ...
LAYOUT_RATE = 0.002
#: ... and the feature layer. On new patients both flag more than in calibration (some
#: slices are unlike any other patient's): notebook 04 measures it, nested in the CV.
FEATURE_RATE = 0.001
#: Grouped folds of the calibration.
CALIBRATION_FOLDS = 5
#: Share of held-out patients' CT slices (and their simulated-scanner transforms) the ct
#: layer may refuse in calibration (goal: at most 1% of new patients' slices refused).
CT_RATE = 0.005
#: The check's goals, measured nested in the ``cases`` CV (notebook 04): flag at least this
#: share of held-out non-CT images ...
INPUT_CHECK_GOAL_NON_CT = 0.95
#: ... and at most this share of new patients' CT slices.
INPUT_CHECK_GOAL_CT = 0.01
#: At another hospital (notebook 09): refuse at most this share of its CT slices.
INPUT_CHECK_GOAL_EXTERNAL = 0.05
#: Inverse regularisation of the ct layer's logistic regression (a rule fixed before any
#: external image was seen: scikit-learn's default).
CT_C = 1.0
#: The reasons, by layer, in the order they are tried.
LAYERS = ("content", "colour", "ct", "layout", "features")
#: The layers of question 1 (refuse) and of question 2 (warn).
NOT_CT_LAYERS = ("content", "colour", "ct")
UNLIKE_LAYERS = ("layout", "features")
#: The verdicts of the input check.
VERDICTS = ("ok", "ct_unlike_training", "not_ct")
#: The numbers behind the verdict, one column each in ``predict``'s rows.
CHECK_COLUMNS = ("ct_score", "layout_distance", "feature_distance")


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


def colour_share(img: Image.Image) -> float:
    """Share of pixels whose RGB channels differ by more than :data:`COLOUR_SPREAD`.

    Args:
        img: the image as read.

    Returns:
        A share in [0, 1] (0 for a grey image).
    """
    rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    return float(((rgb.max(axis=2) - rgb.min(axis=2)) > COLOUR_SPREAD).mean())


def colour_reason(img: Image.Image) -> str:
    """``"colour image (N% of pixels coloured)"`` for a colour picture, else ``""``."""
    share = colour_share(img)
    return f"colour image ({share:.0%} of pixels coloured)" if share > COLOUR_SHARE else ""


def layouts(images: np.ndarray) -> np.ndarray:
    """Contrast-normalised grey thumbnails: the intensity layout of each image.

    Each ``LAYOUT_SIDE``-square thumbnail (area average) is mapped so that its 1st and 99th
    percentiles become 0 and 1; a window or bit depth change leaves it nearly unchanged.

    Args:
        images: uint8 ``(n, s, s, 3)`` resized images (``s`` a multiple of 16).

    Returns:
        float32 ``(n, 256)``.
    """
    thumbs = thumbnails(np.asarray(images), LAYOUT_SIDE)
    lo, hi = np.percentile(thumbs, [1, 99], axis=1, keepdims=True)
    return ((thumbs - lo) / np.maximum(hi - lo, 1 / 255)).astype(np.float32)


def layout_distance(layout: np.ndarray, reference: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Root-mean-square distance of each layout to its nearest reference layout.

    Args:
        layout: ``(n, 256)`` from :func:`layouts`.
        reference: ``(m, 256)``.
        chunk: rows per matrix product.

    Returns:
        float32 ``(n,)``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref_sq = (ref**2).sum(axis=1)
    out = []
    for i in range(0, len(layout), chunk):
        q = np.asarray(layout[i : i + chunk], dtype=np.float64)
        sq = (q**2).sum(axis=1)[:, None] + ref_sq[None, :] - 2 * q @ ref.T
        out.append(np.sqrt(np.maximum(sq.min(axis=1), 0) / ref.shape[1]))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def feature_distance(
    features: np.ndarray, mean: np.ndarray, reference: np.ndarray, chunk: int = 512
) -> np.ndarray:
    """One minus the largest centred cosine similarity to a reference feature.

    Args:
        features: ``(n, d)`` pooled backbone features.
        mean: the reference's mean feature (subtracted first).
        reference: ``(m, d)`` centred unit reference features.
        chunk: rows per matrix product.

    Returns:
        float32 ``(n,)``; larger is stranger.
    """
    x = centered_unit(features, mean).astype(np.float32)
    out = [1 - (x[i : i + chunk] @ reference.T).max(axis=1) for i in range(0, len(x), chunk)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def reference(features: np.ndarray, layout: np.ndarray) -> dict:
    """The reference arrays of a training set (no thresholds yet).

    Args:
        features: ``(n, d)`` pooled features of the training slices.
        layout: ``(n, 256)`` their layouts.

    Returns:
        ``{"mean", "reference", "layout_reference"}``.
    """
    features = np.asarray(features, dtype=np.float32)
    if len(features) != len(layout) or len(features) < 2:
        raise ValueError(
            f"input_check.reference: needs as many layouts as features (>= 2), got {len(features)} "
            f"features and {len(layout)} layouts"
        )
    mean = features.mean(axis=0)
    return {
        "mean": mean,
        "reference": centered_unit(features, mean).astype(np.float32),
        "layout_reference": np.asarray(layout, dtype=np.float32),
    }


def distances(features: np.ndarray, layout: np.ndarray, ref: dict) -> pd.DataFrame:
    """Layout and feature distances of images to a reference.

    Args:
        features: ``(n, d)`` their pooled features.
        layout: ``(n, 256)`` their layouts.
        ref: from :func:`reference` or :func:`fit`.

    Returns:
        DataFrame ``ct_score, layout_distance, feature_distance`` (``ct_score`` NaN when
        the reference has no ct layer).
    """
    scores = ct_scores(features, ref) if "ct_coef" in ref else np.full(len(features), np.nan)
    return pd.DataFrame(
        {
            "ct_score": scores.astype(np.float32),
            "layout_distance": layout_distance(layout, ref["layout_reference"]),
            "feature_distance": feature_distance(features, ref["mean"], ref["reference"]),
        }
    )


def held_out_distances(
    features, layout, y, groups, n_folds: int = CALIBRATION_FOLDS, seed: int = 0
) -> pd.DataFrame:
    """Each training slice's distances to the slices of the other grouped folds.

    Args:
        features: ``(n, d)`` pooled features of the training slices.
        layout: ``(n, 256)`` their layouts.
        y: their class indices (the folds keep the class mix).
        groups: their case (whole cases stay in one fold).
        n_folds: grouped folds.
        seed: fold seed.

    Returns:
        DataFrame ``fold, layout_distance, feature_distance`` in row order.
    """
    fold = group_kfold(y, groups, n_folds, seed)
    out = pd.DataFrame(index=range(len(fold)), columns=["layout_distance", "feature_distance"])
    for k in range(n_folds):
        test, train = fold == k, fold != k
        ref = reference(features[train], layout[train])
        part = distances(features[test], layout[test], ref)[out.columns]
        out.loc[test, part.columns] = part.to_numpy()
    return out.astype(np.float32).assign(fold=fold)


def fit(
    features,
    layout,
    y,
    groups,
    layout_rate: float = LAYOUT_RATE,
    feature_rate: float = FEATURE_RATE,
    n_folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
) -> dict:
    """Reference of a training set, thresholds calibrated on its held-out patients.

    Args:
        features: ``(n, d)`` pooled features of the model's training slices.
        layout: ``(n, 256)`` their layouts (:func:`layouts`).
        y: their class indices.
        groups: their case.
        layout_rate: share of held-out slices the layout layer may flag.
        feature_rate: share of held-out slices the feature layer may flag.
        n_folds: grouped calibration folds.
        seed: fold seed.

    Returns:
        The :func:`reference` arrays plus ``threshold`` (features), ``layout_threshold``,
        ``layout_rate`` and ``feature_rate``.
    """
    for name, rate in (("layout_rate", layout_rate), ("feature_rate", feature_rate)):
        if not 0 < rate < 0.5:
            raise ValueError(f"input_check.fit: {name} must be in (0, 0.5), got {rate!r}")
    features, layout = np.asarray(features, np.float32), np.asarray(layout, np.float32)
    held = held_out_distances(features, layout, y, groups, n_folds, seed)
    ref = reference(features, layout)
    ref["threshold"] = np.float32(np.quantile(held["feature_distance"], 1 - feature_rate))
    ref["layout_threshold"] = np.float32(np.quantile(held["layout_distance"], 1 - layout_rate))
    ref["layout_rate"], ref["feature_rate"] = np.float32(layout_rate), np.float32(feature_rate)
    return ref


def ct_scores(features: np.ndarray, ref: dict) -> np.ndarray:
    """The ct layer's probability that each image is a CT slice.

    Args:
        features: ``(n, d)`` pooled backbone features.
        ref: a reference holding the ct layer (:func:`fit_ct`).

    Returns:
        float64 ``(n,)`` in [0, 1].
    """
    z = (np.asarray(features, np.float64) - ref["ct_mean"]) / ref["ct_scale"]
    logit = z @ np.asarray(ref["ct_coef"], np.float64) + float(ref["ct_intercept"])
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -500, 500)))


def _ct_classifier(ct: np.ndarray, non_ct: np.ndarray) -> dict:
    """Fit the ct layer's logistic regression (standardised features, balanced classes).

    Args:
        ct: ``(n, d)`` features of CT slices.
        non_ct: ``(m, d)`` features of images that are not CT slices.

    Returns:
        ``ct_mean, ct_scale, ct_coef, ct_intercept``.
    """
    x = np.vstack([ct, non_ct]).astype(np.float64)
    target = np.r_[np.ones(len(ct)), np.zeros(len(non_ct))]
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=CT_C, class_weight="balanced", max_iter=5000)
    clf.fit(scaler.transform(x), target)
    return {
        "ct_mean": scaler.mean_,
        "ct_scale": scaler.scale_,
        "ct_coef": clf.coef_[0],
        "ct_intercept": np.float64(clf.intercept_[0]),
    }


def held_out_ct_scores(
    ct, ct_y, ct_groups, non_ct, non_ct_items, n_folds: int = CALIBRATION_FOLDS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's ct score from a classifier that never saw its patient or its item.

    Args:
        ct: ``(n, d)`` features of CT slices (originals and their simulated-shift views).
        ct_y: their class indices (the folds keep the class mix).
        ct_groups: their case; a view shares its original's case.
        non_ct: ``(m, d)`` features of non-CT images (with their views).
        non_ct_items: the item of each non-CT row; views of an item share a fold.
        n_folds: grouped folds.
        seed: fold seed.

    Returns:
        ``(ct_scores (n,), non_ct_scores (m,))``.
    """
    ct_fold = group_kfold(ct_y, ct_groups, n_folds, seed)
    items = np.unique(non_ct_items)
    order = np.random.default_rng(seed).permutation(len(items))
    item_fold = dict(zip(items[order], np.arange(len(items)) % n_folds, strict=True))
    non_fold = np.array([item_fold[i] for i in non_ct_items])
    ct_out, non_out = np.zeros(len(ct)), np.zeros(len(non_ct))
    for k in range(n_folds):
        part = _ct_classifier(ct[ct_fold != k], non_ct[non_fold != k])
        ct_out[ct_fold == k] = ct_scores(ct[ct_fold == k], part)
        non_out[non_fold == k] = ct_scores(non_ct[non_fold == k], part)
    return ct_out, non_out


def fit_ct(
    ct,
    ct_y,
    ct_groups,
    non_ct,
    non_ct_items,
    rate: float = CT_RATE,
    n_folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
) -> dict:
    """The ct layer: a CT-or-not classifier, its threshold set on held-out patients.

    Args:
        ct: ``(n, d)`` features of the training CT slices and of their simulated-shift
            views (:func:`lungct_utils.shift.simulate`).
        ct_y: their class indices.
        ct_groups: their case (a view shares its original's case).
        non_ct: ``(m, d)`` features of the design part of the non-CT corpus (with views).
        non_ct_items: the item of each non-CT row.
        rate: share of held-out CT rows the threshold refuses.
        n_folds: grouped folds of the calibration.
        seed: fold seed.

    Returns:
        ``ct_mean, ct_scale, ct_coef, ct_intercept`` (fitted on everything), ``ct_threshold``
        and ``ct_rate``; merge it into a :func:`fit` reference.
    """
    if not 0 < rate < 0.5:
        raise ValueError(f"input_check.fit_ct: rate must be in (0, 0.5), got {rate!r}")
    ct, non_ct = np.asarray(ct, np.float64), np.asarray(non_ct, np.float64)
    if (
        not len(ct) == len(ct_y) == len(ct_groups)
        or len(non_ct) != len(non_ct_items)
        or not len(non_ct)
    ):
        raise ValueError(
            f"input_check.fit_ct: got {len(ct)} CT rows for {len(ct_y)} labels and "
            f"{len(ct_groups)} groups, "
            f"{len(non_ct)} non-CT rows for {len(non_ct_items)} items (needs >= 1)"
        )
    held, _ = held_out_ct_scores(ct, ct_y, ct_groups, non_ct, non_ct_items, n_folds, seed)
    out = _ct_classifier(ct, non_ct)
    out["ct_threshold"] = np.float64(np.quantile(held, rate))
    out["ct_rate"] = np.float64(rate)
    return out


def non_ct_design(
    ct_images: np.ndarray, seed: int, size: int = 224
) -> tuple[np.ndarray, np.ndarray]:
    """The design part of the non-CT corpus with its views, as model inputs.

    Each design item gives itself, its mirror image and one simulated-shift view
    (:func:`lungct_utils.shift.simulate`); the held-out part is never used.

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices (the corpus's CT-derived items).
        seed: the seed of the simulated-shift views (the corpus itself is fixed).
        size: model input side.

    Returns:
        ``(images uint8 (m, size, size, 3), item index of each row)``.
    """
    items = [i for i in corpus.non_ct_corpus(ct_images) if i.part == "design"]
    base = np.stack([resize_rgb(i.image, size) for i in items])
    rows = np.concatenate([base, base[:, :, ::-1], shift.simulate(base, seed)])
    return rows, np.tile(np.arange(len(items)), 3)


def fit_input_check(images, features, y, groups, mode: str, seed: int = 0) -> dict:
    """Both questions of the input check, fitted on a model's training slices.

    Args:
        images: uint8 ``(n, s, s, 3)`` the model's training slices (as model inputs).
        features: their pooled features under the model's pixel scaling ``mode``.
        y: their class indices.
        groups: their case.
        mode: the model's preprocessing mode (features of views and corpus use it too).
        seed: the seed of folds and views (the non-CT corpus is fixed).

    Returns:
        The :func:`fit` reference with the ct layer (:func:`fit_ct`) merged in.
    """
    ref = fit(features, layouts(images), y, groups, seed=seed)
    views = cached_features(shift.simulate(images, seed), mode, progress=False)
    non_ct, items = non_ct_design(np.asarray(images), seed, images.shape[1])
    non_ct_feats = cached_features(non_ct, mode, progress=False)
    y, groups = np.asarray(y), np.asarray(groups)
    ct = np.vstack([features, views])
    ref.update(fit_ct(ct, np.r_[y, y], np.r_[groups, groups], non_ct_feats, items, seed=seed))
    return ref


def image_reasons(images: list[Image.Image]) -> list[str]:
    """The content and colour layers of each image ("" when neither fires).

    Args:
        images: the images as read.

    Returns:
        One reason per image.
    """
    return [content_reason(img) or colour_reason(img) for img in images]


def distance_reasons(first: list[str], dist: pd.DataFrame | None, ref: dict | None) -> list[str]:
    """Add the layout and feature layers to the first layers' reasons.

    Args:
        first: from :func:`image_reasons`.
        dist: the images' :func:`distances`, or None without a reference.
        ref: the reference with its thresholds.

    Returns:
        One reason per image, from the first layer that fires.
    """
    out = list(first)
    if dist is None:
        return out
    layout_t, feature_t = float(ref["layout_threshold"]), float(ref["threshold"])
    ct_t = float(ref["ct_threshold"]) if "ct_threshold" in ref else -np.inf
    for k, (ct, layout_d, feature_d) in enumerate(dist[list(CHECK_COLUMNS)].to_numpy()):
        if out[k]:
            continue
        if ct < ct_t:
            out[k] = f"not a CT slice (CT score {ct:.3f} < {ct_t:.3f})"
        elif layout_d > layout_t:
            out[k] = (
                f"unlike the training slices' layout (distance {layout_d:.2f} > {layout_t:.2f})"
            )
        elif feature_d > feature_t:
            out[k] = (
                f"far from training slices (feature distance {feature_d:.2f} > {feature_t:.2f})"
            )
    return out


def reasons(images: list[Image.Image], dist: pd.DataFrame | None, ref: dict | None) -> list[str]:
    """The reason each image is not an ordinary CT slice ("" when it is one).

    Args:
        images: the images as read.
        dist: their :func:`distances`, or None without a reference.
        ref: the reference with its thresholds.

    Returns:
        One reason per image, from the first layer that fires.
    """
    return distance_reasons(image_reasons(images), dist, ref)


def layer(reason: str) -> str:
    """The layer that gave a reason (``""`` for none).

    Args:
        reason: from :func:`reasons`.

    Returns:
        One of :data:`LAYERS`, or ``""``.

    Raises:
        ValueError: a reason no layer of this check gives (e.g. an older version's text).
    """
    if not reason:
        return ""
    if reason.startswith("colour"):
        return "colour"
    if reason.startswith("not a CT slice"):
        return "ct"
    if reason.startswith("unlike the training slices' layout"):
        return "layout"
    if reason.startswith("far from"):
        return "features"
    if reason.startswith("too small") or reason in ("blank image", "pure noise"):
        return "content"
    raise ValueError(f"input_check.layer: not a reason of this input check: {reason!r}")


def verdict(reason: str) -> str:
    """The verdict a reason gives: ``ok``, ``ct_unlike_training`` or ``not_ct``.

    Args:
        reason: from :func:`reasons`.

    Returns:
        One of :data:`VERDICTS`.
    """
    which = layer(reason)
    if not which:
        return "ok"
    return "not_ct" if which in NOT_CT_LAYERS else "ct_unlike_training"


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
