"""Deployable formats of a trained model and their measured cost (``reports/deployment.md``).

``export_all`` writes the ``.keras`` model, a float32 TFLite file (Keras' LiteRT export)
and an int8 TFLite file (post-training quantization, weights and activations int8, inputs
and outputs float32; representative set: 200 training images of the model's protocol).
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


def export_all(
    model_path: Path,
    outdir: Path,
    protocol: str = "grouped_near",
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
    import keras
    import tensorflow as tf

    from .errors import DataError
    from .preprocess import scale

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
        representative_images, _ = _test_images(protocol, ("train",), N_REPRESENTATIVE)
    x = scale(representative_images)

    def representative():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        blob = converter.convert()
    out["tflite_int8"] = outdir / "model_int8.tflite"
    with atomic_path(out["tflite_int8"]) as tmp:
        tmp.write_bytes(blob)
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
    paths: dict[str, Path], protocol: str = "grouped_near", runs: int = 50
) -> dict:
    """Measure size, latency and test accuracy of each exported format.

    Args:
        paths: from :func:`export_all`.
        protocol: whose test split to score.
        runs: single-image runs per latency figure.

    Returns:
        Format -> ``{"size_mb", "latency_ms": {"1": .., "2": ..}, "accuracy"}``.
    """
    import keras

    from .preprocess import label_indices, scale

    images, rows = _test_images(protocol)
    x = scale(images)
    y = label_indices(rows["label"])
    model = keras.models.load_model(paths["keras"], compile=False)
    probs = {"keras": model.predict(x, batch_size=32, verbose=0)}
    result = {
        "keras": {
            "latency_ms": {t: keras_latency_subprocess(paths["keras"], t, runs) for t in (1, 2)}
        }
    }
    for name in ("tflite_float32", "tflite_int8"):
        probs[name] = LiteRTModel(paths[name], 2)(x)
        result[name] = {
            "latency_ms": {t: _median_latency(LiteRTModel(paths[name], t), x, runs) for t in (1, 2)}
        }
    for name, p in probs.items():
        result[name]["size_mb"] = paths[name].stat().st_size / 1e6
        result[name]["accuracy"] = float(np.mean(p.argmax(1) == y))
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
        "test accuracy | max. prob. diff. vs Keras |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("keras", "tflite_float32", "tflite_int8"):
        r = result[name]
        lines.append(
            f"| {name} | {r['size_mb']:.2f} | {r['latency_ms'][1]:.1f} | "
            f"{r['latency_ms'][2]:.1f} | {100 * r['accuracy']:.2f}% | "
            f"{r['max_abs_prob_diff_vs_keras']:.4f} |"
        )
    drop = 100 * (result["tflite_float32"]["accuracy"] - result["tflite_int8"]["accuracy"])
    verdict = "within" if drop <= 1 else "NOT within"
    lines += [
        "",
        f"int8 loses {drop:.2f} accuracy points against float32 ({verdict} the 1-point goal).",
        "",
    ]
    return "\n".join(lines)


def main(model_path: Path, outdir: Path, report: Path = config.REPORTS / "deployment.md") -> dict:
    """Export, measure and write ``reports/deployment.md`` and ``metrics/deployment.json``.

    Args:
        model_path: the ``.keras`` model.
        outdir: export folder.
        report: Markdown target.

    Returns:
        The measurements.
    """
    paths = export_all(model_path, outdir)
    result = deployment_report(paths)
    write_text(format_deployment(result), report)
    write_text(json.dumps({k: v for k, v in result.items()}, indent=2, default=str) + "\n",
               config.REPORTS / "metrics" / "deployment.json")  # fmt: skip
    return result
