"""The cost of each deployable format: size, CPU latency, accuracy (``deployment.md``).

``make report`` runs the short version (:func:`main`): the formats of the shipped model,
their file sizes, test accuracy and agreement with Keras, and latency from 30 single-image
runs. ``make deployment-study`` adds 200-run latencies, the Keras latency per thread count
and how much the int8 file moves over several draws of its representative set
(``reports/deployment_study.md``, committed).

The reports' words live in ``templates/deployment.md`` (:func:`lungct_utils.prose.fill`); the
code measures, chooses the passages, formats the figures and builds the tables.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from .. import config, prose
from ..deploy.export import (
    INT8_GOAL_POINTS,
    N_REPRESENTATIVE,
    export_all,
    int8_met,
    model_mode,
    quantize_int8,
    split_images,
)
from ..features import LiteRTModel
from ..images import label_indices, scale
from ..io_utils import provenance, write_text
from ..model import model_info

#: The ``calibration`` of the int8 rows of :func:`calibration_study`: the TFLite converter's
#: activation ranges, each activation's minimum and maximum over the representative images.
INT8_CALIBRATION = "int8, min/max"


def _say(key: str, /, **values) -> str:
    """One passage of ``templates/deployment.md``, filled."""
    return prose.fill("deployment", key, **values)


def _float_row(scored: dict) -> dict:
    """The reference row of :func:`calibration_study`: the float model itself.

    Args:
        scored: split -> ``(x, y, Keras probabilities)`` for ``"val"`` and ``"test"``.

    Returns:
        The row, ``calibration == "float32"`` (agreement 1, probability difference 0).
    """
    return {
        "draw_seed": None,
        "calibration": "float32",
        "val_accuracy": float(np.mean(scored["val"][2].argmax(1) == scored["val"][1])),
        "test_accuracy": float(np.mean(scored["test"][2].argmax(1) == scored["test"][1])),
        "test_agreement_vs_float": 1.0,
        "test_mean_abs_prob_diff_vs_float": 0.0,
    }


def _int8_row(tflite: Path, draw: int, scored: dict) -> dict:
    """Score one int8 file on the splits and against the float model's test probabilities.

    Args:
        tflite: the int8 ``.tflite`` file.
        draw: the seed of its representative draw.
        scored: split -> ``(x, y, Keras probabilities)`` for ``"val"`` and ``"test"``.

    Returns:
        One row of :func:`calibration_study`.
    """
    run = LiteRTModel(tflite, 2)
    row = {"draw_seed": draw, "calibration": INT8_CALIBRATION}
    probs = {split: run(xs) for split, (xs, _, _) in scored.items()}
    for split, (_, y, _) in scored.items():
        row[f"{split}_accuracy"] = float(np.mean(probs[split].argmax(1) == y))
    p, ref = probs["test"], scored["test"][2]
    row["test_agreement_vs_float"] = float(np.mean(p.argmax(1) == ref.argmax(1)))
    row["test_mean_abs_prob_diff_vs_float"] = float(np.abs(p - ref).mean())
    return row


def _draw_row(saved: str, work: Path, protocol: str, mode: str, draw: int, scored: dict) -> dict:
    """Quantize from one representative draw and score the int8 file.

    Args:
        saved: the model as a TensorFlow SavedModel folder.
        work: a scratch folder for the ``.tflite`` files.
        protocol: whose training images are drawn.
        mode: the model's pixel scaling.
        draw: the draw's seed.
        scored: split -> ``(x, y, Keras probabilities)`` for ``"val"`` and ``"test"``.

    Returns:
        One row of :func:`calibration_study`.
    """
    x = scale(split_images(protocol, ("train",), N_REPRESENTATIVE, seed=draw)[0], mode)
    path = work / f"{draw}.tflite"
    path.write_bytes(quantize_int8(saved, x))
    return _int8_row(path, draw, scored)


def calibration_study(
    model_path: Path,
    protocol: str,
    draws: int = 5,
    seed: int = 0,
    reference: dict | None = None,
) -> list[dict]:
    """Accuracy of the int8 file over several draws of its representative set.

    The converter sets each activation's int8 range to its minimum and maximum over
    200 training images; one draw of them can be lucky or unlucky, so this
    measures how much the int8 accuracy moves when the draw changes.

    Args:
        model_path: the ``.keras`` model.
        protocol: whose training images are drawn and whose validation and test splits
            are scored.
        draws: representative sets, drawn with seeds ``seed``, ``seed + 1``, ...
        seed: the first draw's seed.
        reference: :func:`reference_predictions` of the model, if already made.

    Returns:
        One row per draw: ``{"draw_seed", "calibration", "val_accuracy", "test_accuracy",
        "test_agreement_vs_float", "test_mean_abs_prob_diff_vs_float"}`` with ``calibration ==
        INT8_CALIBRATION``, after a first row for the float model itself (``"float32"``).
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    mode = model_mode(model_path)
    model = keras.models.load_model(model_path, compile=False)
    if reference is None:
        reference = reference_predictions(model, protocol, mode=mode)
    scored = {split: reference[split] for split in ("val", "test")}
    rows = [_float_row(scored)]
    with tempfile.TemporaryDirectory() as work:
        saved = str(Path(work) / "saved")
        model.export(saved, format="tf_saved_model", verbose=False)
        for draw in tqdm(range(seed, seed + draws), desc="int8 representative draws"):
            rows.append(_draw_row(saved, Path(work), protocol, mode, draw, scored))
    return rows


def format_calibration_study(rows: list[dict]) -> list[str]:
    """Markdown lines: per calibration, mean and range of accuracy over the draws.

    Args:
        rows: from :func:`calibration_study`.

    Returns:
        Lines of a table.
    """
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
            f"| {name} | {len(g)} | {test.mean():.2f}% ({test.min():.2f}-{test.max():.2f}) "
            f"| {worst:+.2f} | {100 * g['test_agreement_vs_float'].mean():.1f}% | "
            f"{val.mean():.2f}% ({val.min():.2f}-{val.max():.2f}) |"
        )
    return lines


def reference_predictions(
    model, protocol: str, splits=("val", "test"), mode: str = "paper"
) -> dict:
    """Scaled images, labels and Keras probabilities of whole splits, scored once.

    Args:
        model: the loaded Keras model.
        protocol: whose split manifest to use.
        splits: split names.
        mode: the model's pixel scaling.

    Returns:
        Split -> ``(x, y, probabilities)``.
    """
    out = {}
    for split in splits:
        images, rows = split_images(protocol, (split,))
        x = scale(images, mode)
        out[split] = (x, label_indices(rows["label"]), model.predict(x, batch_size=32, verbose=0))
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
        "import json,sys,numpy as np;from lungct_utils import train;train.setup(0);"
        "import keras,tensorflow as tf;from lungct_utils.studies.deployment import _median_latency;"
        f"m=keras.models.load_model({str(model_path)!r},compile=False);"
        "f=tf.function(lambda b: m(b,training=False),reduce_retracing=True);"
        "x=np.random.default_rng(0).random((8,224,224,3),dtype=np.float32);"
        f"print(json.dumps(_median_latency(lambda b: f(tf.constant(b)).numpy(),x,{runs})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def keras_latency(model_path: Path, runs: int) -> float:
    """Keras latency in this process, at its thread count (``config.THREADS``).

    Args:
        model_path: the ``.keras`` file.
        runs: single-image runs.

    Returns:
        Median milliseconds per image.
    """
    model = keras.models.load_model(model_path, compile=False)
    graph = tf.function(lambda b: model(b, training=False), reduce_retracing=True)
    x = np.random.default_rng(0).random((8, 224, 224, 3), dtype=np.float32)
    return _median_latency(lambda b: graph(tf.constant(b)).numpy(), x, runs)


def deployment_report(
    paths: dict[str, Path],
    protocol: str,
    runs: int = 200,
    reference: dict | None = None,
    keras_threads: tuple[int, ...] = (1, 2),
) -> dict:
    """Measure size, latency and test accuracy of each exported format.

    Args:
        paths: from :func:`export_all`.
        protocol: whose test split to score.
        runs: single-image runs per latency figure.
        reference: :func:`reference_predictions` of the Keras model, if already made.
        keras_threads: thread counts of the Keras latency, each in a fresh process; empty:
            measured once in this process (the short report).

    Returns:
        Format -> ``{"size_mb", "latency_ms": {1: .., 2: ..}, "accuracy", "agreement_vs_keras",
        "mean_abs_prob_diff_vs_keras", "max_abs_prob_diff_vs_keras"}``, plus ``"_meta"``.
    """
    if reference is None:
        model = keras.models.load_model(paths["keras"], compile=False)
        # the exported copy carries the original's sidecar, hence its pixel scaling
        reference = reference_predictions(model, protocol, ("test",), model_mode(paths["keras"]))
    x, y, keras_probs = reference["test"]
    probs = {"keras": keras_probs}
    if keras_threads:
        latency = {t: keras_latency_subprocess(paths["keras"], t, runs) for t in keras_threads}
    else:
        latency = {config.THREADS: keras_latency(paths["keras"], runs)}
    result = {"keras": {"latency_ms": latency}}
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


#: Row names of the int8 files in the deployment report (other formats go by their key).
_FORMAT_LABELS = {"tflite_int8": f"tflite_int8 (min/max over {N_REPRESENTATIVE} training images)"}


def _ms(row: dict, threads: int) -> str:
    """A format's latency at a thread count, as table text.

    Args:
        row: one format of :func:`deployment_report` (keys int, or str once read from JSON).
        threads: the thread count.

    Returns:
        Milliseconds with one decimal, or "-" when not measured.
    """
    value = row["latency_ms"].get(threads, row["latency_ms"].get(str(threads)))
    return "-" if value is None else f"{float(value):.1f}"


def _intro_lines(meta: dict, title: str) -> list[str]:
    """The title and what was measured, on which images, how.

    Args:
        meta: ``result["_meta"]`` of :func:`deployment_report` (with ``model``).
        title: the first heading.

    Returns:
        Markdown lines, ending with an empty one.
    """
    intro = _say(
        "intro",
        title=title,
        model=meta["model"],
        test_images=meta["test_images"],
        protocol=meta["protocol"],
        runs=meta["runs"],
    )
    return [intro, ""]


def _format_table(result: dict) -> list[str]:
    """The table of formats: size, latency, accuracy and agreement with Keras.

    Args:
        result: from :func:`deployment_report`.

    Returns:
        Markdown lines, one row per format, ending with an empty one.
    """
    lines = [
        "| format | file size (MB) | latency 1 thread (ms) | latency 2 threads (ms) | "
        "accuracy | same class as Keras | mean / max prob. diff. vs Keras |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in [k for k in result if not k.startswith("_")]:
        r = result[name]
        lines.append(
            f"| {_FORMAT_LABELS.get(name, name)} | {r['size_mb']:.2f} | {_ms(r, 1)} | "
            f"{_ms(r, 2)} | {100 * r['accuracy']:.2f}% | "
            f"{100 * r['agreement_vs_keras']:.1f}% | {r['mean_abs_prob_diff_vs_keras']:.4f} / "
            f"{r['max_abs_prob_diff_vs_keras']:.4f} |"
        )
    return [*lines, ""]


def _int8_verdicts(result: dict) -> list[str]:
    """One bullet per int8 file: its accuracy change against float32 and the goal.

    Args:
        result: from :func:`deployment_report`.

    Returns:
        Markdown bullets.
    """
    lines = []
    for name in [k for k in result if k.startswith("tflite_int8")]:
        change = 100 * (result[name]["accuracy"] - result["tflite_float32"]["accuracy"])
        verdict = _say("goal_met" if int8_met(change) else "goal_not_met")
        label = _FORMAT_LABELS.get(name, name)
        lines.append(
            _say("int8_verdict", label=label, change=change, goal=INT8_GOAL_POINTS, verdict=verdict)
        )
    return lines


def _calibration_note() -> list[str]:
    """The paragraph on the int8 calibration, after the table and the verdicts.

    Returns:
        Markdown lines between empty ones.
    """
    return ["", _say("calibration_note", representative=N_REPRESENTATIVE), ""]


def _study_lines(result: dict) -> list[str]:
    """The calibration study's section, when it ran.

    Args:
        result: from :func:`deployment_report`, with ``"_calibration_study"`` rows or without.

    Returns:
        Markdown lines ending with an empty one; none without the study.
    """
    if "_calibration_study" not in result:
        return []
    return [_say("study"), "", *format_calibration_study(result["_calibration_study"]), ""]


def format_deployment(result: dict, title: str) -> str:
    """The Markdown report of :func:`deployment_report` (plus the study, when it ran).

    Args:
        result: from :func:`deployment_report`.
        title: the first heading.

    Returns:
        Markdown.
    """
    lines = [
        *_intro_lines(result["_meta"], title),
        *_format_table(result),
        *_int8_verdicts(result),
        *_calibration_note(),
        *_study_lines(result),
    ]
    return "\n".join(lines)


def _ci(value: float, interval) -> str:
    """A fraction and its 95% interval, in percent.

    Args:
        value: the estimate.
        interval: ``[low, high]``.

    Returns:
        Text such as "66.42% [61.34, 71.25]".
    """
    return f"{100 * value:.2f}% [{100 * interval[0]:.2f}, {100 * interval[1]:.2f}]"


def honest_figures(metrics_path: Path) -> str:
    """A paragraph with the shipped recipe's nested-CV figures and the paper model's, if known.

    Args:
        metrics_path: ``metrics.json``.

    Returns:
        Markdown (empty before the notebooks have run).
    """
    if not metrics_path.is_file():
        return ""
    metrics = json.loads(metrics_path.read_text())
    if "beyond" not in metrics:
        return ""
    sel, paper = metrics["beyond"]["selected"], metrics["honest_cv"]["cases"]
    text = _say(
        "honest",
        recipe=sel["final"]["recipe"],
        macro_f1=_ci(sel["macro_f1"], sel["macro_f1_ci95"]),
        balanced_accuracy=_ci(sel["balanced_accuracy"], sel["balanced_accuracy_ci95"]),
        recall_benign=_ci(sel["recall_benign"], sel["recall_benign_ci95"]),
        paper_macro_f1=_ci(paper["mean"]["macro_f1"], paper["ci95"]["macro_f1"]),
        paper_recall_benign=_ci(paper["mean"]["recall_benign"], paper["ci95"]["recall_benign"]),
    )
    return text + "\n"


def main(model_path: Path, outdir: Path, protocol: str, study: bool = False) -> dict:
    """Export a model, measure its formats and write the deployment report.

    Args:
        model_path: the ``.keras`` model.
        outdir: export folder.
        protocol: whose holdout test split scores the formats.
        study: the long version (``make deployment-study``): 200-run latencies, Keras per
            thread count and the int8 file over 5 representative draws, written to
            ``deployment_study.md``; else 30-run latencies into ``deployment.md``.

    Returns:
        The measurements (also in ``<reports>/metrics/deployment[_study].json``).
    """
    paths = export_all(model_path, outdir, protocol)
    model = keras.models.load_model(paths["keras"], compile=False)
    splits = ("val", "test") if study else ("test",)
    reference = reference_predictions(model, protocol, splits, model_mode(model_path))
    result = deployment_report(
        paths,
        protocol,
        runs=200 if study else 30,
        reference=reference,
        keras_threads=(1, 2) if study else (),
    )
    model_path = Path(model_path).resolve()
    root = config.ROOT.resolve()
    shown = model_path.relative_to(root) if model_path.is_relative_to(root) else model_path
    meta = provenance(config.PAPER)
    # the settings the model was trained with, from its sidecar, not the paper's defaults
    meta["params"] = model_info(model_path).get("params", meta["params"])
    result["_meta"].update({"model": str(shown), **meta})
    result["_meta"]["export"] = {
        "representative_images": N_REPRESENTATIVE,
        "representative_seed": config.PAPER.seed,
        "calibration": INT8_CALIBRATION,
    }
    if study:
        result["_calibration_study"] = calibration_study(
            model_path, protocol, draws=5, seed=config.PAPER.seed, reference=reference
        )
    name = "deployment_study" if study else "deployment"
    title = _say("title_study" if study else "title")
    text = format_deployment(result, title) + honest_figures(config.reports_dir() / "metrics.json")
    write_text(text, config.reports_dir() / f"{name}.md")
    write_text(
        json.dumps(result, indent=2, default=str) + "\n", config.metrics_dir() / f"{name}.json"
    )
    return result
