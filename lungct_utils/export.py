"""Deployable formats of a trained model and their measured cost (``reports/deployment.md``).

``export_all`` writes the ``.keras`` model, a float32 TFLite file (Keras' LiteRT export)
and an int8 TFLite file (full-integer post-training quantization: weights and activations
int8, inputs and outputs float32; representative set: 200 training images of the model's
protocol; activation ranges by average-min/max calibration, see :data:`CALIBRATIONS`).
``deployment_report`` measures each format: file size, CPU latency per image at 1 and 2
threads (median of many single-image runs) and accuracy on the test split.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import config
from .features import LiteRTModel
from .io_utils import atomic_path, write_text

N_REPRESENTATIVE = 200


def _test_images(protocol: str, roles=("test",), limit: int | None = None, seed: int = 0):
    from .augment import load_images
    from .prepare import read_augmented, read_splits

    table = read_augmented()
    splits = read_splits(protocol)
    keep = splits["holdout"].isin(roles).to_numpy()
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
    import tensorflow as tf

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
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils

    if len(x) == 0:
        raise ValueError("activation_ranges: got 0 representative images")
    tensors = flatbuffer_utils.read_model_from_bytearray(calibrated).subgraphs[0].tensors
    ids = [
        i for i, t in enumerate(tensors)
        if t.quantization is not None and t.quantization.min is not None
        and len(t.quantization.min) == 1
    ]  # fmt: skip
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
    from tensorflow.lite.python import convert
    from tensorflow.lite.tools import flatbuffer_utils

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


def calibration_study(
    model_path: Path,
    protocol: str = "grouped_near",
    draws: int = 5,
    seed: int = 0,
    reference: dict | None = None,
) -> list[dict]:
    """Accuracy of each int8 calibration over several draws of the representative set.

    One draw of 200 training images can be lucky or unlucky for a calibration; this
    measures how much the int8 accuracy moves when the draw changes.

    Args:
        model_path: the ``.keras`` model.
        protocol: whose training images are drawn and whose validation and test splits
            are scored.
        draws: representative sets, drawn with seeds ``seed``, ``seed + 1``, ...
        seed: the first draw's seed.
        reference: :func:`reference_predictions` of the model, if already made.

    Returns:
        One row per draw and calibration: ``{"draw_seed", "calibration", "val_accuracy",
        "test_accuracy", "test_agreement_vs_float", "test_mean_abs_prob_diff_vs_float"}``,
        after a first row for the float model itself (``calibration == "float32"``).
    """
    import keras
    from tqdm.auto import tqdm

    from .preprocess import scale

    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    model = keras.models.load_model(model_path, compile=False)
    if reference is None:
        reference = reference_predictions(model, protocol)
    scored = {split: reference[split] for split in ("val", "test")}
    rows = [{"draw_seed": None, "calibration": "float32",
             "val_accuracy": float(np.mean(scored["val"][2].argmax(1) == scored["val"][1])),
             "test_accuracy": float(np.mean(scored["test"][2].argmax(1) == scored["test"][1])),
             "test_agreement_vs_float": 1.0, "test_mean_abs_prob_diff_vs_float": 0.0}]  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        saved = str(Path(work) / "saved")
        model.export(saved, format="tf_saved_model", verbose=False)
        for draw in tqdm(range(seed, seed + draws), desc="int8 calibration draws"):
            x = scale(_test_images(protocol, ("train",), N_REPRESENTATIVE, seed=draw)[0])
            calibrated = _calibrated_model(saved, x)
            for calibration in CALIBRATIONS:
                path = Path(work) / f"{draw}_{calibration}.tflite"
                path.write_bytes(quantize_int8(saved, x, calibration, calibrated))
                run = LiteRTModel(path, 2)
                row = {"draw_seed": draw, "calibration": calibration}
                probs = {split: run(xs) for split, (xs, _, _) in scored.items()}
                for split, (_, y, _) in scored.items():
                    row[f"{split}_accuracy"] = float(np.mean(probs[split].argmax(1) == y))
                p, ref = probs["test"], scored["test"][2]
                row["test_agreement_vs_float"] = float(np.mean(p.argmax(1) == ref.argmax(1)))
                row["test_mean_abs_prob_diff_vs_float"] = float(np.abs(p - ref).mean())
                rows.append(row)
    return rows


def format_calibration_study(rows: list[dict]) -> list[str]:
    """Markdown lines: per calibration, mean and range of accuracy over the draws.

    Args:
        rows: from :func:`calibration_study`.

    Returns:
        Lines of a table and a sentence.
    """
    import pandas as pd

    frame = pd.DataFrame(rows)
    ref = frame[frame["calibration"] == "float32"].iloc[0]
    lines = [
        "| calibration | draws | test accuracy, mean (min-max) | worst change vs float32 "
        "(points) | same class as float32 | val accuracy, mean (min-max) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| float32 (reference) | - | {100 * ref['test_accuracy']:.2f}% | - | - | "
        f"{100 * ref['val_accuracy']:.2f}% |",
    ]
    for name, g in frame[frame["calibration"] != "float32"].groupby("calibration", sort=False):
        test, val = 100 * g["test_accuracy"], 100 * g["val_accuracy"]
        worst = (test - 100 * ref["test_accuracy"]).min()
        lines.append(
            f"| {name} min/max | {len(g)} | {test.mean():.2f}% ({test.min():.2f}-{test.max():.2f}) "
            f"| {worst:+.2f} | {100 * g['test_agreement_vs_float'].mean():.1f}% | "
            f"{val.mean():.2f}% ({val.min():.2f}-{val.max():.2f}) |"
        )
    return lines


def reference_predictions(model, protocol: str, splits=("val", "test")) -> dict:
    """Scaled images, labels and Keras probabilities of whole splits, scored once.

    Args:
        model: the loaded Keras model.
        protocol: whose split manifest to use.
        splits: split names.

    Returns:
        Split -> ``(x, y, probabilities)``.
    """
    from .preprocess import label_indices, scale

    out = {}
    for split in splits:
        images, rows = _test_images(protocol, (split,))
        x = scale(images)
        out[split] = (x, label_indices(rows["label"]), model.predict(x, batch_size=32, verbose=0))
    return out


def export_all(
    model_path: Path,
    outdir: Path,
    protocol: str = "grouped_near",
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
    import keras

    from .errors import DataError
    from .preprocess import scale

    if not calibrations or any(c not in CALIBRATIONS for c in set(calibrations)):
        raise ValueError(f"calibrations must be a non-empty subset of {CALIBRATIONS}, "
                         f"got {calibrations!r}")  # fmt: skip
    model_path, outdir = Path(model_path), Path(outdir)
    if not model_path.is_file():
        raise DataError(f"{model_path}: model not found (make report trains it)")
    outdir.mkdir(parents=True, exist_ok=True)
    out = {"keras": outdir / "model.keras"}
    with atomic_path(out["keras"]) as tmp:
        shutil.copyfile(model_path, tmp)
    model = keras.models.load_model(model_path, compile=False)
    out["tflite_float32"] = outdir / "model_float32.tflite"
    with atomic_path(out["tflite_float32"]) as tmp:
        exported = tmp.with_suffix(".tflite")
        model.export(str(exported), format="litert", verbose=False)
        exported.replace(tmp)
    if representative_images is None:
        representative_images, _ = _test_images(
            protocol, ("train",), N_REPRESENTATIVE, seed=config.PAPER.seed
        )
    x = scale(representative_images)
    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        for k, calibration in enumerate(calibrations):
            suffix = "" if k == 0 else f"_{calibration}"
            key = f"tflite_int8{suffix}"
            out[key] = outdir / f"model_int8{suffix}.tflite"
            with atomic_path(out[key]) as tmp:
                tmp.write_bytes(quantize_int8(saved, x, calibration))
    return out


def _median_latency(fn, x: np.ndarray, runs: int) -> float:
    fn(x[:1])
    times = []
    for i in range(runs):
        one = x[i % len(x) : i % len(x) + 1]
        start = time.perf_counter()
        fn(one)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def keras_latency_subprocess(model_path: Path, threads: int, runs: int) -> float:
    """Keras latency measured in a fresh process (TensorFlow's threads are set at start-up).

    The model runs as a compiled ``tf.function`` (graph mode), Keras' fastest single-image
    path; eager ``model(x)`` or ``predict`` add tens of milliseconds of Python overhead.

    Args:
        model_path: the ``.keras`` file.
        threads: intra/inter-op threads.
        runs: single-image runs.

    Returns:
        Median milliseconds per image.
    """
    env = dict(os.environ, LUNGCT_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="3")
    code = (
        "import json,sys,numpy as np;from lungct_utils import runtime;runtime.setup(0);"
        "import keras,tensorflow as tf;from lungct_utils.export import _median_latency;"
        f"m=keras.models.load_model({str(model_path)!r},compile=False);"
        "f=tf.function(lambda b: m(b,training=False),reduce_retracing=True);"
        "x=np.random.default_rng(0).random((8,224,224,3),dtype=np.float32);"
        f"print(json.dumps(_median_latency(lambda b: f(tf.constant(b)).numpy(),x,{runs})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def deployment_report(
    paths: dict[str, Path],
    protocol: str = "grouped_near",
    runs: int = 200,
    reference: dict | None = None,
) -> dict:
    """Measure size, latency and test accuracy of each exported format.

    Args:
        paths: from :func:`export_all`.
        protocol: whose test split to score.
        runs: single-image runs per latency figure.
        reference: :func:`reference_predictions` of the Keras model, if already made.

    Returns:
        Format -> ``{"size_mb", "latency_ms": {1: .., 2: ..}, "accuracy", "agreement_vs_keras",
        "mean_abs_prob_diff_vs_keras", "max_abs_prob_diff_vs_keras"}``, plus ``"_meta"``.
    """
    import keras

    if reference is None:
        model = keras.models.load_model(paths["keras"], compile=False)
        reference = reference_predictions(model, protocol, ("test",))
    x, y, keras_probs = reference["test"]
    probs = {"keras": keras_probs}
    result = {
        "keras": {
            "latency_ms": {t: keras_latency_subprocess(paths["keras"], t, runs) for t in (1, 2)}
        }
    }
    for name in [k for k in paths if k.startswith("tflite")]:
        probs[name] = LiteRTModel(paths[name], 2)(x)
        result[name] = {
            "latency_ms": {t: _median_latency(LiteRTModel(paths[name], t), x, runs) for t in (1, 2)}
        }
    for name, p in probs.items():
        result[name]["size_mb"] = paths[name].stat().st_size / 1e6
        result[name]["accuracy"] = float(np.mean(p.argmax(1) == y))
        result[name]["agreement_vs_keras"] = float(np.mean(p.argmax(1) == probs["keras"].argmax(1)))
        result[name]["mean_abs_prob_diff_vs_keras"] = float(np.abs(p - probs["keras"]).mean())
        result[name]["max_abs_prob_diff_vs_keras"] = float(np.abs(p - probs["keras"]).max())
    result["_meta"] = {"protocol": protocol, "test_images": int(len(y)), "runs": runs}
    return result


def format_deployment(result: dict) -> str:
    """``reports/deployment.md`` text.

    Args:
        result: from :func:`deployment_report`.

    Returns:
        Markdown.
    """
    meta = result["_meta"]
    lines = [
        "# Deployment: model formats on a CPU",
        "",
        f"Model: the `{meta['protocol']}` holdout model "
        f"(`models/{meta['protocol']}_holdout.keras`), "
        f"accuracy on its {meta['test_images']} test images. Latency: median of {meta['runs']} "
        "single-image runs on this machine's CPU, TFLite through `ai_edge_litert` (XNNPACK); "
        "Keras measured in a fresh process per thread count. Produced by `make report` "
        "(`python -m lungct_utils deployment`).",
        "",
        "| format | file size (MB) | latency 1 thread (ms) | latency 2 threads (ms) | "
        "test accuracy | same class as Keras | mean / max prob. diff. vs Keras |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"tflite_int8": "tflite_int8 (average min/max)",
              "tflite_int8_global": "tflite_int8, converter default (global min/max)"}  # fmt: skip
    formats = [k for k in result if not k.startswith("_")]
    for name in formats:
        r = result[name]
        lines.append(
            f"| {labels.get(name, name)} | {r['size_mb']:.2f} | {r['latency_ms'][1]:.1f} | "
            f"{r['latency_ms'][2]:.1f} | {100 * r['accuracy']:.2f}% | "
            f"{100 * r['agreement_vs_keras']:.1f}% | {r['mean_abs_prob_diff_vs_keras']:.4f} / "
            f"{r['max_abs_prob_diff_vs_keras']:.4f} |"
        )
    lines.append("")
    for name in [k for k in formats if k.startswith("tflite_int8")]:
        change = 100 * (result[name]["accuracy"] - result["tflite_float32"]["accuracy"])
        verdict = "met" if change >= -1 else "NOT met"
        lines.append(f"* {labels.get(name, name)}: {change:+.2f} accuracy points against "
                     f"float32 (goal: at most 1 point lower; {verdict}).")  # fmt: skip
    lines += [
        "",
        "The shipped int8 file (`model_int8.tflite`) sets each activation's int8 range to the "
        f"mean over {meta.get('export', {}).get('representative_images', N_REPRESENTATIVE)} "
        "training images of that activation's per-image minimum and maximum (average min/max "
        "calibration). The TFLite converter's default takes the minimum and maximum over all "
        "of them instead, so the few most extreme slices of the draw set every range; the int8 "
        "steps grow, and so does the rounding error. "
        "`python -m lungct_utils export --calibration global` writes the default variant.",
        "",
    ]
    if "_calibration_study" in result:
        lines += [
            "## How much the representative draw matters",
            "",
            "The same export repeated with other random draws of the representative training "
            "images (seeds in `metrics/deployment.json`), scored on the validation and test "
            "splits:",
            "",
            *format_calibration_study(result["_calibration_study"]),
            "",
        ]
    return "\n".join(lines)


def main(model_path: Path, outdir: Path, report: Path = config.REPORTS / "deployment.md") -> dict:
    """Export, measure and write ``reports/deployment.md`` and ``metrics/deployment.json``.

    Besides the three formats, ``outdir`` gets ``model_int8_global.tflite`` (the converter's
    default calibration), measured for comparison.

    Args:
        model_path: the ``.keras`` model.
        outdir: export folder.
        report: Markdown target.

    Returns:
        The measurements.
    """
    from .provenance import provenance

    calibrations = ("average", "global")
    import keras

    paths = export_all(model_path, outdir, calibrations=calibrations)
    model = keras.models.load_model(paths["keras"], compile=False)
    reference = reference_predictions(model, "grouped_near")
    result = deployment_report(paths, reference=reference)
    result["_meta"].update(provenance(config.PAPER))
    result["_calibration_study"] = calibration_study(
        model_path, draws=5, seed=config.PAPER.seed, reference=reference
    )
    result["_meta"]["export"] = {
        "model": str(model_path),
        "representative_images": N_REPRESENTATIVE,
        "representative_seed": config.PAPER.seed,
        "calibrations": list(calibrations),
    }
    write_text(format_deployment(result), report)
    write_text(json.dumps({k: v for k, v in result.items()}, indent=2, default=str) + "\n",
               config.REPORTS / "metrics" / "deployment.json")  # fmt: skip
    return result
