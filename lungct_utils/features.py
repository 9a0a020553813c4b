"""Pooled MobileNetV2 features, computed once per distinct image and cached on disk.

The paper freezes the base and trains without online augmentation, so an image's pooled
1280-d feature never changes during training. We compute it once and keep it in
``data/interim/features/<engine>_<mode>_<weights sha256[:16]>.npz``, keyed by the SHA-256
of the image's uint8 pixels: a changed image has another key and a changed weights file
another cache file, so nothing stale is ever reused.

Two engines compute the same function: ``"keras"`` (``model.predict``, the reference and
the fallback) and ``"litert"``: the same Keras backbone exported once to a float32
``.tflite`` and run by ``ai_edge_litert`` with XNNPACK (about 3x faster on 2 CPU cores;
equal to Keras within 1e-5 relative; ``python -m lungct_utils benchmark`` measures both).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tqdm import tqdm

from . import config
from .config import THREADS
from .images import pixel_key, scale
from .io_utils import LungCTError, atomic_path, sha256_file

ENGINES = ("litert", "keras")
#: Cache files already read in this process, by (path, size, mtime): notebooks ask often.
_STORES: dict[tuple, dict[str, np.ndarray]] = {}
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def weights_fingerprint(path: Path) -> str:
    """SHA-256 of a weights file (memoized by path, size and mtime).

    Args:
        path: the ``.h5`` file.

    Returns:
        64 hex characters.
    """
    path = Path(path)
    if not path.is_file():
        raise LungCTError(f"{path}: weights file not found")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = sha256_file(path)
    return _FINGERPRINTS[key]


def imagenet_weights() -> Path:
    """The MobileNetV2 1.0/224 no-top ImageNet weights file, checked to exist.

    Returns:
        Its path under ``$KERAS_HOME/models`` (default: the repository's ``.cache/keras``).

    Raises:
        LungCTError: the file is missing; the message names ``make weights``.
    """
    path = config.weights_path(include_top=False)
    if not path.is_file():
        raise LungCTError(
            f"{path}: ImageNet weights not found; run 'make weights' (or set KERAS_HOME to a "
            "folder whose models/ holds the MobileNetV2 1.0/224 files)"
        )
    return path


def build_base(weights: str | Path | None = "imagenet", image_size: int = 224, pooling=None):
    """MobileNetV2 1.0 without its classifier, frozen (paper II.C).

    Args:
        weights: ``"imagenet"`` (the file in ``$KERAS_HOME/models``, passed by path: no
            download attempt), a weights-file path, or None (random; only for shape tests:
            its features are near-constant).
        image_size: input side.
        pooling: None for the 7x7x1280 map, ``"avg"`` for the pooled 1280-d feature.

    Returns:
        A Keras model with ``trainable = False``.
    """
    if weights == "imagenet":
        weights = imagenet_weights()
    base = keras.applications.MobileNetV2(
        include_top=False,
        weights=str(weights) if isinstance(weights, Path) else weights,
        input_shape=(image_size, image_size, 3),
        pooling=pooling,
    )
    base.trainable = False  # all base layers frozen (paper II.C)
    return base


def keras_backbone(weights: Path | None = None, image_size: int = 224):
    """The frozen MobileNetV2 base with average pooling (the paper's GAP), in Keras.

    Args:
        weights: the no-top ``.h5`` file (default ``$KERAS_HOME/models/...``).
        image_size: input side.

    Returns:
        A Keras model mapping ``(n, s, s, 3)`` floats to ``(n, 1280)``.
    """
    weights = Path(weights) if weights else imagenet_weights()
    return build_base(weights, image_size, pooling="avg")


def litert_model_path(
    weights: Path | None = None, image_size: int = 224, cache_dir: Path = config.FEATURE_CACHE
) -> Path:
    """A float32 ``.tflite`` of the pooled backbone, converted once and cached.

    Args:
        weights: the no-top ``.h5`` file.
        image_size: input side.
        cache_dir: where converted models are kept.

    Returns:
        Path of ``backbone_<weights sha[:16]>_<size>_tf<version>.tflite``.
    """
    weights = Path(weights) if weights else imagenet_weights()
    fp = weights_fingerprint(weights)[:16]
    path = Path(cache_dir) / f"backbone_{fp}_{image_size}_tf{tf.__version__}.tflite"
    if path.is_file():
        return path
    model = keras_backbone(weights, image_size)
    with atomic_path(path, suffix=".tflite") as tmp:
        model.export(str(tmp), format="litert", verbose=False)
    return path


class LiteRTModel:
    """A ``.tflite`` model run by ``ai_edge_litert`` (XNNPACK), one image per invoke.

    Used for the pooled backbone here and for the exported classifiers (export.py). Batch 1
    is the fastest setting measured on the 2-core target (about 230 images/s for the
    backbone against about 190 at batch 32).

    Args:
        tflite_path: the ``.tflite`` file.
        threads: LiteRT threads.
    """

    def __init__(self, tflite_path: Path, threads: int = THREADS) -> None:
        self._interp = Interpreter(model_path=str(tflite_path), num_threads=threads)
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        self._in, self._dtype = inp["index"], inp["dtype"]
        self._out = self._interp.get_output_details()[0]["index"]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Outputs of a batch ``(n, s, s, 3)``, e.g. ``(n, 1280)`` features or ``(n, 3)``."""
        out = []
        for image in batch:
            self._interp.set_tensor(self._in, image[None].astype(self._dtype, copy=False))
            self._interp.invoke()
            out.append(self._interp.get_tensor(self._out)[0].copy())
        return np.stack(out)


class KerasBackbone:
    """The pooled backbone run by Keras ``predict`` (the reference).

    Args:
        weights: the no-top ``.h5`` file.
        image_size: input side.
        batch_size: predict batch size.
    """

    def __init__(self, weights: Path | None = None, image_size: int = 224, batch_size: int = 32):
        self.model = keras_backbone(weights, image_size)
        self.batch_size = batch_size

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Features of a float32 batch ``(n, s, s, 3)`` -> ``(n, 1280)``."""
        return self.model.predict(batch, batch_size=self.batch_size, verbose=0)


def make_backbone(
    engine: str = "litert",
    weights: Path | None = None,
    image_size: int = 224,
    cache_dir: Path = config.FEATURE_CACHE,
):
    """A feature extractor; LiteRT falls back to Keras (with a warning) if it cannot run.

    Args:
        engine: ``"litert"`` or ``"keras"``.
        weights: the no-top ``.h5`` file.
        image_size: input side.
        cache_dir: where the converted ``.tflite`` is kept.

    Returns:
        ``(callable, engine actually used)``.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "litert":
        try:
            return LiteRTModel(litert_model_path(weights, image_size, cache_dir)), "litert"
        except (ImportError, RuntimeError, ValueError, OSError) as exc:
            warnings.warn(f"LiteRT unavailable ({exc}); using Keras", stacklevel=2)
    return KerasBackbone(weights, image_size), "keras"


def extract(
    images: np.ndarray,
    backbone: Callable[[np.ndarray], np.ndarray],
    mode: str = "paper",
    chunk: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """Preprocess uint8 images chunk by chunk and run the backbone.

    Args:
        images: uint8 ``(n, s, s, 3)``.
        backbone: from :func:`make_backbone`.
        mode: preprocessing mode (:func:`~lungct_utils.preprocess.scale`).
        chunk: images scaled to float at a time (bounds memory).
        progress: show a tqdm bar.

    Returns:
        float32 ``(n, 1280)``.
    """
    out = []
    with tqdm(
        total=len(images), desc="features", unit="img", disable=not progress, leave=False
    ) as bar:
        for start in range(0, len(images), chunk):
            out.append(backbone(scale(images[start : start + chunk], mode)))
            bar.update(min(chunk, len(images) - start))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 1280), np.float32)


class FeatureCache:
    """An on-disk store of features for one engine, preprocessing mode and weights file.

    Args:
        engine: the engine name.
        mode: the preprocessing mode.
        weights: the no-top ``.h5`` file (its SHA-256 names the cache file).
        cache_dir: the cache folder (``data/interim/features``).
    """

    def __init__(
        self,
        engine: str,
        mode: str,
        weights: Path | None = None,
        cache_dir: Path = config.FEATURE_CACHE,
    ) -> None:
        weights = Path(weights) if weights else imagenet_weights()
        if mode not in config.PREPROCESS_MODES:
            raise ValueError(f"mode must be one of {config.PREPROCESS_MODES}, got {mode!r}")
        self.path = Path(cache_dir) / f"{engine}_{mode}_{weights_fingerprint(weights)[:16]}.npz"

    def _stamp(self) -> tuple:
        stat = self.path.stat()
        return (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)

    def load(self) -> dict[str, np.ndarray]:
        """Everything stored: key -> feature (read once per process while the file is unchanged)."""
        if not self.path.is_file():
            return {}
        stamp = self._stamp()
        if stamp not in _STORES:
            with np.load(self.path) as data:
                _STORES[stamp] = dict(zip(data["keys"].tolist(), data["features"], strict=True))
        return dict(_STORES[stamp])

    def save(self, store: dict[str, np.ndarray]) -> None:
        """Replace the file with ``store`` (atomically)."""
        keys = sorted(store)
        feats = np.stack([store[k] for k in keys]) if keys else np.zeros((0, 1280), np.float32)
        with atomic_path(self.path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, keys=np.array(keys), features=feats.astype(np.float32))
        _STORES[self._stamp()] = dict(store)


def features_for_keys(
    keys: list[str],
    load: Callable[[np.ndarray], np.ndarray],
    mode: str = "paper",
    engine: str = "litert",
    weights: Path | None = None,
    cache_dir: Path = config.FEATURE_CACHE,
    progress: bool = True,
) -> np.ndarray:
    """Features of images known by their pixel keys, loading only those the cache lacks.

    Args:
        keys: :func:`pixel_key` of each image (e.g. ``augmented.csv``'s ``pixel_sha256``).
        load: ``positions -> uint8 (m, s, s, 3)`` images at those positions of ``keys``;
            called once, for the missing ones only.
        mode: preprocessing mode.
        engine: ``"litert"`` or ``"keras"``.
        weights: the no-top ``.h5`` file.
        cache_dir: the cache folder.
        progress: show progress bars.

    Returns:
        float32 ``(n, 1280)`` in the order of ``keys``.
    """
    cache = FeatureCache(engine, mode, weights, cache_dir)
    store = cache.load()
    todo: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key not in store and key not in todo:
            todo[key] = i
    if todo:
        images = load(np.array(list(todo.values())))
        backbone, used = make_backbone(engine, weights, images.shape[1], cache_dir)
        if used != engine:
            cache = FeatureCache(used, mode, weights, cache_dir)
            store = cache.load()
        store.update(zip(todo, extract(images, backbone, mode, progress=progress), strict=True))
        cache.save(store)
    return np.stack([store[k] for k in keys]).astype(np.float32)


def cached_features(
    images: np.ndarray,
    mode: str = "paper",
    engine: str = "litert",
    weights: Path | None = None,
    cache_dir: Path = config.FEATURE_CACHE,
    progress: bool = True,
) -> np.ndarray:
    """Features of uint8 images, computing only those the cache lacks.

    Args:
        images: uint8 ``(n, s, s, 3)``.
        mode: preprocessing mode.
        engine: ``"litert"`` or ``"keras"``.
        weights: the no-top ``.h5`` file.
        cache_dir: the cache folder.
        progress: show progress bars.

    Returns:
        float32 ``(n, 1280)`` in the order of ``images``.
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
            f"cached_features: expected uint8 (n, h, w, 3), got {images.dtype} {images.shape}"
        )
    keys = [pixel_key(img) for img in images]
    return features_for_keys(
        keys, lambda idx: images[idx], mode, engine, weights, cache_dir, progress
    )
