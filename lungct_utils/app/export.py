"""Deployable formats of a trained model: ``.keras``, TFLite float32 and TFLite int8.

``export_all`` writes the ``.keras`` model, a float32 TFLite file (Keras' LiteRT export)
and an int8 TFLite file (full-integer post-training quantization: weights and activations
int8, inputs and outputs float32; representative set: 200 training images; activation
ranges by average-min/max calibration, see :data:`CALIBRATIONS`). Their measured cost is
in :mod:`lungct_utils.app.deployment`.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import convert
from tensorflow.lite.tools import flatbuffer_utils

from .. import config
from ..augment import load_images
from ..images import scale
from ..io_utils import DataError, atomic_path
from ..pipeline import model_info, read_splits, read_table
from ..splits import holdout_roles
from .ood import path_for as ood_path_for

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


#: Activation-range calibrations of the int8 file. ``"average"`` (default): each activation
#: tensor's range is the mean over the representative images of its per-image minimum and
#: maximum (the "average min/max" calibration of TensorFlow's quantizers, and the
#: moving-average ranges that quantization-aware training learns). ``"global"``: the TFLite
#: converter's default, the minimum and maximum over the whole representative set; a few
#: extreme images then stretch every range and the int8 steps grow (measured in
#: ``reports/deployment.md``).
CALIBRATIONS = config.INT8_CALIBRATIONS


def _calibrated_model(saved_model_dir: str, x: np.ndarray) -> bytes:
    """The float TFLite model with the converter's recorded activation ranges (no rounding yet).

    Uses the same calibrate-then-quantize route as ``tf.lite.experimental.QuantizationDebugger``.
    """

    def representative():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    return converter.convert()


def activation_ranges(calibrated: bytes, x: np.ndarray) -> dict[int, tuple[float, float]]:
    """Average-min/max range of every calibrated activation tensor.

    Args:
        calibrated: a model from the converter's calibration step (float, with ranges).
        x: the representative inputs ``(n, s, s, 3)``, as the model takes them.

    Returns:
        Tensor index -> ``(mean of per-image minima, mean of per-image maxima)``, widened to
        include 0 as TFLite's asymmetric int8 requires.
    """
    if len(x) == 0:
        raise ValueError("activation_ranges: got 0 representative images")
    tensors = flatbuffer_utils.read_model_from_bytearray(calibrated).subgraphs[0].tensors
    ids = [
        i
        for i, t in enumerate(tensors)
        if t.quantization is not None
        and t.quantization.min is not None
        and len(t.quantization.min) == 1
    ]
    with warnings.catch_warnings():  # "preserve_all_tensors is for debugging"
        warnings.simplefilter("ignore", UserWarning)
        interp = Interpreter(
            model_content=bytes(calibrated), experimental_preserve_all_tensors=True
        )
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    lows, highs = np.zeros((len(x), len(ids))), np.zeros((len(x), len(ids)))
    for k in range(len(x)):
        interp.set_tensor(inp, x[k : k + 1].astype(np.float32, copy=False))
        interp.invoke()
        for j, i in enumerate(ids):
            values = interp.get_tensor(i)
            lows[k, j], highs[k, j] = values.min(), values.max()
    low, high = np.minimum(lows.mean(0), 0.0), np.maximum(highs.mean(0), 0.0)
    return {i: (float(lo), float(hi)) for i, lo, hi in zip(ids, low, high, strict=True) if hi > lo}


def quantize_int8(
    saved_model_dir: str,
    x: np.ndarray,
    calibration: str = "average",
    calibrated: bytes | None = None,
) -> bytes:
    """Full-integer post-training quantization (int8 weights and activations, float I/O).

    Args:
        saved_model_dir: the model as a TensorFlow SavedModel.
        x: representative inputs, scaled as the model takes them.
        calibration: one of :data:`CALIBRATIONS`.
        calibrated: the converter's calibration of ``saved_model_dir`` on ``x``, if already
            made (it is the slow step); made here otherwise.

    Returns:
        The ``.tflite`` bytes.
    """
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
    if calibrated is None:
        calibrated = _calibrated_model(saved_model_dir, x)
    if calibration == "average":
        ranges = activation_ranges(calibrated, x)
        model = flatbuffer_utils.read_model_from_bytearray(calibrated)
        tensors = model.subgraphs[0].tensors
        for i, (low, high) in ranges.items():
            tensors[i].quantization.min, tensors[i].quantization.max = [low], [high]
        calibrated = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    return convert.mlir_quantize(calibrated)


def export_all(
    model_path: Path,
    outdir: Path,
    protocol: str,
    representative_images: np.ndarray | None = None,
    calibrations: tuple[str, ...] = ("average",),
) -> dict[str, Path]:
    """Write ``model.keras``, ``model_float32.tflite`` and ``model_int8.tflite``.

    Args:
        model_path: a trained end-to-end ``.keras`` model.
        outdir: target folder.
        protocol: whose training images form the int8 representative set.
        representative_images: uint8 images to use instead (default: 200 training images
            of ``protocol``).
        calibrations: int8 files to write, from :data:`CALIBRATIONS`; the first is
            ``model_int8.tflite`` (key ``tflite_int8``), any other ``model_int8_<name>.tflite``
            (key ``tflite_int8_<name>``), for comparisons.

    Returns:
        Format name -> path.
    """
    if not calibrations or any(c not in CALIBRATIONS for c in set(calibrations)):
        raise ValueError(
            f"calibrations must be a non-empty subset of {CALIBRATIONS}, got {calibrations!r}"
        )
    model_path, outdir = Path(model_path), Path(outdir)
    if not model_path.is_file():
        raise DataError(f"{model_path}: model not found (make report trains it)")
    outdir.mkdir(parents=True, exist_ok=True)
    out = {"keras": outdir / "model.keras"}
    # the sidecar (pixel scaling, recipe) and the OOD reference travel with the model, so
    # ``predict --model <outdir>/model.keras`` scales and flags as the original does
    companions = [model_path.with_suffix(".json"), ood_path_for(model_path)]
    targets = [outdir / "model.json", ood_path_for(out["keras"])]
    for source, target in [(model_path, out["keras"]), *zip(companions, targets, strict=True)]:
        if source.is_file():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
    model = keras.models.load_model(model_path, compile=False)
    out["tflite_float32"] = outdir / "model_float32.tflite"
    with atomic_path(out["tflite_float32"], suffix=".tflite") as tmp:
        model.export(str(tmp), format="litert", verbose=False)
    if representative_images is None:
        representative_images, _ = split_images(
            protocol, ("train",), N_REPRESENTATIVE, seed=config.PAPER.seed
        )
    x = scale(representative_images, model_mode(model_path))
    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        for k, calibration in enumerate(calibrations):
            suffix = "" if k == 0 else f"_{calibration}"
            key = f"tflite_int8{suffix}"
            out[key] = outdir / f"model_int8{suffix}.tflite"
            with atomic_path(out[key]) as tmp:
                tmp.write_bytes(quantize_int8(saved, x, calibration))
    return out
