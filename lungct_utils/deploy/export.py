"""Deployable formats of a trained model: ``.keras``, TFLite float32 and TFLite int8.

``export_all`` writes the ``.keras`` model, a float32 TFLite file (Keras' LiteRT export)
and an int8 TFLite file (full-integer post-training quantization: weights and activations
int8, inputs and outputs float32) by the TFLite converter: each activation's int8 range is
its minimum and maximum over a representative set of 200 training images. Their measured
cost is in :mod:`lungct_utils.studies.deployment`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .. import config
from ..augment import load_images
from ..images import scale
from ..input_check import path_for as input_check_path
from ..io_utils import DataError, atomic_path
from ..model import model_info
from ..pipeline import read_splits, read_table
from ..splits import holdout_roles

#: The int8 file's goal: accuracy at most this many points below the float32 file's.
INT8_GOAL_POINTS = 1.0


#: Representative images of the int8 calibration.
N_REPRESENTATIVE = 200


def model_mode(model_path: Path) -> str:
    """The pixel scaling a saved model was trained with (from its ``.json`` sidecar).

    Args:
        model_path: the ``.keras`` file.

    Returns:
        A preprocessing mode (the paper's when the sidecar says nothing).
    """
    return model_info(model_path).get("params", {}).get("preprocess", config.PAPER.preprocess)


def split_images(protocol: str, roles=("test",), limit: int | None = None, seed: int = 0):
    """uint8 images of some holdout roles of a protocol, optionally a seeded sample.

    Args:
        protocol: whose split manifest to use.
        roles: holdout roles to take (``test`` rows are the scored ones).
        limit: at most this many, drawn with ``seed``.
        seed: sampling seed.

    Returns:
        ``(images, manifest rows)``.
    """
    table = read_table()
    splits = read_splits(protocol)
    keep = np.isin(holdout_roles(splits), roles)
    idx = np.flatnonzero(keep)
    if limit is not None and len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    return load_images(table.iloc[idx], config.AUGMENTED_DIR, progress=False), splits.iloc[idx]


def quantize_int8(saved_model_dir: str, x: np.ndarray) -> bytes:
    """Full-integer post-training quantization (int8 weights and activations, float I/O).

    The TFLite converter's public route: each activation's int8 range is the minimum and
    maximum it takes over the representative inputs; inputs and outputs stay float32.

    Args:
        saved_model_dir: the model as a TensorFlow SavedModel.
        x: representative inputs ``(n, s, s, 3)``, scaled as the model takes them.

    Returns:
        The ``.tflite`` bytes.
    """
    if len(x) == 0:
        raise ValueError(f"quantize_int8: got 0 representative images (shape {x.shape})")

    def representative():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _copy_model(model_path: Path, outdir: Path) -> Path:
    """Copy a model with its sidecar and OOD reference into ``outdir`` (atomically).

    The sidecar (pixel scaling, recipe) and the OOD reference travel with the model, so
    ``predict --model <outdir>/model.keras`` scales and flags as the original does.

    Args:
        model_path: the ``.keras`` file.
        outdir: an existing folder.

    Returns:
        The copy, ``<outdir>/model.keras``.
    """
    copy = outdir / "model.keras"
    companions = [model_path.with_suffix(".json"), input_check_path(model_path)]
    targets = [outdir / "model.json", input_check_path(copy)]
    for source, target in [(model_path, copy), *zip(companions, targets, strict=True)]:
        if source.is_file():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
    return copy


def export_all(
    model_path: Path,
    outdir: Path,
    protocol: str,
    representative_images: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write ``model.keras``, ``model_float32.tflite`` and ``model_int8.tflite``.

    Args:
        model_path: a trained end-to-end ``.keras`` model.
        outdir: target folder.
        protocol: whose training images form the int8 representative set.
        representative_images: uint8 images to use instead (default: 200 training images
            of ``protocol``).

    Returns:
        Format name -> path.
    """
    model_path, outdir = Path(model_path), Path(outdir)
    if not model_path.is_file():
        raise DataError(f"{model_path}: model not found (make report trains it)")
    outdir.mkdir(parents=True, exist_ok=True)
    out = {"keras": _copy_model(model_path, outdir)}
    model = keras.models.load_model(model_path, compile=False)
    out["tflite_float32"] = outdir / "model_float32.tflite"
    with atomic_path(out["tflite_float32"], suffix=".tflite") as tmp:
        model.export(str(tmp), format="litert", verbose=False)
    if representative_images is None:
        representative_images, _ = split_images(
            protocol, ("train",), N_REPRESENTATIVE, seed=config.PAPER.seed
        )
    x = scale(representative_images, model_mode(model_path))
    out["tflite_int8"] = outdir / "model_int8.tflite"
    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        with atomic_path(out["tflite_int8"]) as tmp:
            tmp.write_bytes(quantize_int8(saved, x))
    return out


def int8_met(change: float) -> bool:
    """Whether an int8 file meets its goal: at most :data:`INT8_GOAL_POINTS` below float32.

    The change is rounded to 9 decimals first: losing exactly one image in a hundred
    computes to -1.0000000000000009 points and must meet a 1-point goal.

    Args:
        change: int8 accuracy minus float32 accuracy, in points.

    Returns:
        True when the goal is met.
    """
    return round(change, 9) >= -INT8_GOAL_POINTS
