"""Command line: ``python -m lungct_utils COMMAND``.

Commands:
    verify [DATA_DIR]   check a release folder against data/manifest.csv
    fetch               put the release into data/raw/iq-othnccd (``make data``)
    prepare             build the augmented set and the split manifests
    report [NB ...]     run the notebooks in order, render reports/*.html
    predict PATH ...    classify JPEG/PNG/DICOM images (probabilities, input check, Grad-CAM);
                        --study: one answer per folder (one patient's slices)
    export              .keras + TFLite float32 and int8 of a trained model
    benchmark           time the fast route against plain Keras (reports/benchmarks.md)
    manifest DATA_DIR   write a reference manifest of a folder (maintainers only)

Exit codes: 0 success, 1 a data or input problem (one line each, no traceback), 2 usage.

Each command imports what it needs when it runs: ``verify`` and ``fetch`` never load
TensorFlow (a few seconds of start-up), so those imports stay inside the commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from . import config
from .audit import duplicate_groups
from .config import CLASSES
from .io_utils import LungCTError, console

#: Commands that load TensorFlow: what it prints goes to ``.cache/logs/<command>.log``.
LOGGED = ("prepare", "predict", "export", "deployment", "benchmark", "finetune")
LOGS = config.ROOT / ".cache" / "logs"


def summarize(manifest: pd.DataFrame) -> dict:
    """Per-class counts, image sizes and exact-duplicate groups of a manifest.

    Args:
        manifest: as returned by :func:`~lungct_utils.data.scan_files`.

    Returns:
        ``{"counts", "total", "sizes", "duplicate_groups"}``.
    """
    sizes = {}
    for label in CLASSES:
        part = manifest[manifest["label"] == label]
        wh = (part["width"].astype(str) + "x" + part["height"].astype(str)).value_counts()
        sizes[label] = {k: int(v) for k, v in wh.sort_index().items()}
    return {
        "counts": {c: int((manifest["label"] == c).sum()) for c in CLASSES},
        "total": int(len(manifest)),
        "sizes": sizes,
        "duplicate_groups": duplicate_groups(manifest),
    }


def format_summary(summary: dict) -> str:
    """The human-readable summary ``verify`` prints.

    Args:
        summary: from :func:`summarize`.

    Returns:
        Several lines of text.
    """
    counts = summary["counts"]
    lines = [
        f"images: {summary['total']} (" + ", ".join(f"{c} {counts[c]}" for c in CLASSES) + ")",
        "image sizes (width x height):",
    ]
    for label in CLASSES:
        lines.append(
            f"  {label}: " + ", ".join(f"{k}: {v}" for k, v in summary["sizes"][label].items())
        )
    groups = summary["duplicate_groups"]
    n_files = sum(len(g) for g in groups)
    lines.append(f"exact duplicates (same bytes): {len(groups)} groups, {n_files} files")
    lines += ["  " + " = ".join(group) for group in groups]
    return "\n".join(lines)


def _cmd_verify(args: argparse.Namespace) -> int:
    from .data import read_reference, verify_release

    root = Path(args.data_dir) if args.data_dir else config.data_dir()
    reference = read_reference(Path(args.manifest))
    report = verify_release(root, reference, progress=not args.quiet)
    if not args.brief:
        print(f"release: {report.root}")
        if len(report.manifest):
            print(format_summary(summarize(report.manifest)))
    if report.ok:
        print(f"data: OK, {len(report.manifest)} files of {report.root} match {args.manifest}")
        return 0
    for line in report.problems:
        print(line, file=sys.stderr)
    print(f"FAILED: {len(report.problems)} problem(s) against {args.manifest}", file=sys.stderr)
    return 1


def _cmd_manifest(args: argparse.Namespace) -> int:
    from .data import MANIFEST_COLUMNS, load_manifest
    from .io_utils import write_csv

    manifest = load_manifest(Path(args.data_dir), progress=not args.quiet)
    manifest = manifest[MANIFEST_COLUMNS].sort_values(["label", "path"], kind="stable")
    write_csv(manifest, Path(args.output))
    print(f"wrote {args.output}: {len(manifest)} files")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .fetch import fetch_release

    dest = fetch_release(args.source, Path(args.dest), progress=not args.quiet)
    print(f"release ready and verified: {dest}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .pipeline import prepare

    table = prepare(config.PAPER.with_overrides(seed=args.seed), progress=not args.quiet)
    print(
        f"prepared {len(table)} images and the split manifests of {', '.join(config.PROTOCOLS)} "
        f"in {config.PROCESSED}"
    )
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .studies.benchmark import main as bench

    bench(progress=not args.quiet, output=Path(args.output) if args.output else None)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .runner import run_all

    run_all(args.notebooks or None, params_file=Path(args.params) if args.params else None)
    return 0


def _cmd_drift(args: argparse.Namespace) -> int:
    from . import drift

    current = Path(args.current) if args.current else None
    written = drift.write(Path(args.reference), current, tuple(args.skip))
    print(f"wrote {written} and the README's drift paragraph")
    return 0


def writable_problem(path: Path, folder: bool = False) -> str:
    """Why results cannot be written to ``path`` ("" when they can), checked before any work.

    Args:
        path: the output file, or folder when ``folder``.
        folder: ``path`` is a folder that may be created.

    Returns:
        A message naming the path, or "".
    """
    path = Path(path)
    target = path if folder and path.exists() else path.parent
    while not target.exists() and target != target.parent:  # the folder will be created
        target = target.parent
    if folder and path.exists() and not path.is_dir():
        return f"{path}: exists and is not a folder"
    if not folder and path.is_dir():
        return f"{path}: is a folder; give a .csv or .json file"
    if not target.is_dir() or not os.access(target, os.W_OK | os.X_OK):
        return f"{path}: cannot write there ({target} is not a writable folder)"
    if not folder and path.exists() and not os.access(path, os.W_OK):
        return f"{path}: file is not writable"
    return ""


def _predict_usage_problem(args: argparse.Namespace) -> str:
    if args.output and Path(args.output).suffix.lower() not in (".csv", ".json"):
        return f"--output must end in .csv or .json, got {args.output!r}"
    if not Path(args.model).is_file():
        return f"{args.model}: model not found (make report trains it)"
    if args.study:
        files = [p for p in args.paths if Path(p).exists() and not Path(p).is_dir()]
        if files:
            return f"{files[0]}: --study takes folders, one patient's slices each"
    problems = [writable_problem(Path(args.output))] if args.output else []
    problems += [writable_problem(Path(args.gradcam), folder=True)] if args.gradcam else []
    return next((p for p in problems if p), "")


def _cmd_predict(args: argparse.Namespace) -> int:
    from .deploy.predict import (
        Predictor,
        collect,
        format_study,
        format_table,
        predict_files,
        save_results,
        study_row,
    )

    try:
        window = None if args.window is None else tuple(float(v) for v in args.window.split(","))
        if window is not None and (len(window) != 2 or not window[1] > 0):
            raise ValueError(args.window)
    except ValueError:
        print(f"error: --window must be CENTER,WIDTH in HU, got {args.window!r}", file=sys.stderr)
        return 2
    problem = _predict_usage_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    groups = [[p] for p in args.paths] if args.study else [args.paths]
    found = [collect(g) for g in groups]
    problems = [item for _, probs in found for item in probs]
    for path, why in problems:
        print(f"error: {path}: {why}", file=sys.stderr)
    if not any(files for files, _ in found):
        return 1
    predictor = Predictor(Path(args.model))
    frames, studies = [], []
    for group, (files, _) in zip(groups, found, strict=True):
        frame = predict_files(predictor, files, window, args.gradcam)
        if args.study:  # one spelling of the folder in both levels ("a/" and "a" alike)
            studies.append(study_row(frame, Path(group[0])))
            frame.insert(0, "study", str(Path(group[0])))
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    print(format_table(frame))
    for row in studies:
        print(format_study(row))
    for row in frame[frame["error"] != ""].itertuples():
        print(f"error: {row.path}: {row.error}", file=sys.stderr)
    if args.output:
        save_results(frame, Path(args.output), pd.DataFrame(studies) if args.study else None)
        print(f"saved {args.output}")
    no_answer = any(not row["prediction"] for row in studies)
    return 1 if problems or (frame["error"] != "").any() or no_answer else 0


def _evaluate_usage_problem(args: argparse.Namespace, prefixes) -> str:
    """Why ``evaluate`` cannot run ("" when it can), checked before the model loads."""
    from .external import find
    from .io_utils import DataError

    try:
        find(Path(args.root), prefixes)  # the folder exists and holds class folders
    except DataError as exc:
        return str(exc)
    if Path(args.output).suffix.lower() != ".json":
        return f"--output must end in .json, got {args.output!r}"
    if args.seed < 0:
        return f"--seed must be a non-negative integer, got {args.seed!r}"
    if not Path(args.model).is_file():
        return f"{args.model}: model not found (make report trains it)"
    return writable_problem(Path(args.output))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .external import DEFAULT_PREFIXES, parse_classes
    from .io_utils import write_json

    try:
        prefixes = parse_classes(args.classes) if args.classes is not None else DEFAULT_PREFIXES
    except ValueError as exc:
        print(f"error: --classes: {exc}", file=sys.stderr)
        return 2
    problem = _evaluate_usage_problem(args, prefixes)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with console(LOGS / "evaluate.log", python_too=False):  # TensorFlow's logging to a file
        from .deploy.predict import Predictor
        from .deploy.validate import evaluate_folder, format_summary

        predictor = Predictor(Path(args.model))
        report = evaluate_folder(predictor, Path(args.root), prefixes, args.seed)
    write_json(report, Path(args.output))
    print(format_summary(report))
    for item in report["unreadable"]:
        print(f"{item['path']}: {item['error']} (not scored)", file=sys.stderr)
    print(f"saved {args.output}")
    return 1 if report["unreadable"] else 0  # as predict: 1 when any file could not be read


def _cmd_export(args: argparse.Namespace) -> int:
    from .deploy.export import export_all

    paths = export_all(Path(args.model), Path(args.outdir), args.protocol)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from .studies.finetune import run

    row = run(progress=not args.quiet)
    print(f"{row['name']}: macro-F1 {row['macro_f1']:.4f}, {row['train_seconds']:.0f} s per fold")
    return 0


def _cmd_deployment(args: argparse.Namespace) -> int:
    from .deploy.model_card import main as card
    from .studies.deployment import main as deploy

    deploy(Path(args.model), Path(args.outdir), args.protocol, study=args.study)
    if args.study:
        print(f"wrote {config.reports_dir() / 'deployment_study.md'}")
        return 0
    card()
    print(f"wrote {config.reports_dir() / 'deployment.md'} and MODEL_CARD.md")
    return 0


def _add_data_commands(sub) -> None:
    """Add ``verify``, ``fetch`` and ``prepare``: get and check the release, build the set.

    Args:
        sub: the subparsers of :func:`build_parser` (``add_subparsers``).
    """
    p = sub.add_parser("verify", help="check a release folder against data/manifest.csv")
    p.add_argument("data_dir", nargs="?", help="release folder (default: $LUNGCT_DATA_DIR)")
    p.add_argument("--manifest", default=str(config.MANIFEST_CSV), help="reference manifest")
    p.add_argument("--brief", action="store_true", help="one line when everything matches")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("fetch", help="copy/unpack/download the release into data/raw, verified")
    p.add_argument(
        "--source", default=None, help="folder, zip or URL (default: $LUNGCT_DATA_SOURCE)"
    )
    p.add_argument("--dest", default=str(config.DEFAULT_DATA_DIR), help="target folder")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("prepare", help="build the augmented set and split manifests")
    p.add_argument("--seed", type=int, default=config.PAPER.seed, help="the one seed")
    p.set_defaults(func=_cmd_prepare)


def _add_predict_commands(sub, default_model: Path) -> None:
    """Add ``benchmark`` (the speed of the prediction route) and ``predict``.

    Args:
        sub: the subparsers of :func:`build_parser` (``add_subparsers``).
        default_model: the shipped model, ``--model``'s default.
    """
    p = sub.add_parser("benchmark", help="time the fast route against plain Keras")
    p.add_argument("--output", help="Markdown table (default: reports/benchmarks.md)")
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("predict", help="classify JPEG/PNG/DICOM images with a trained model")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument(
        "--model",
        default=str(default_model),
        help=f"a .keras model (default: {default_model.relative_to(config.ROOT)})",
    )
    p.add_argument("--output", help="save the results as .csv or .json")
    p.add_argument("--gradcam", help="folder for Grad-CAM overlay PNGs")
    p.add_argument(
        "--window",
        help="DICOM window CENTER,WIDTH in HU (default: the lung window -600,1500, or min-max "
        "scaling for pixel data that is not HU of a chest CT)",
    )
    p.add_argument(
        "--study",
        action="store_true",
        help="each folder is one patient's study: also one answer per study (mean "
        "log-probability over the slices the input check does not refuse; no answer when "
        "fewer than 3 or fewer than half of its slices pass)",
    )
    p.set_defaults(func=_cmd_predict)


def _add_model_commands(sub, default_model: Path) -> None:
    """Add ``export``, ``deployment`` and ``finetune``: the model's formats and a study.

    Args:
        sub: the subparsers of :func:`build_parser` (``add_subparsers``).
        default_model: the shipped model, ``--model``'s default.
    """
    p = sub.add_parser("export", help="write the .keras model plus TFLite float32 and int8")
    p.add_argument("--model", default=str(default_model))
    p.add_argument("--outdir", default=str(config.MODELS / "export"))
    p.add_argument(
        "--protocol", default=config.DEFAULT_PROTOCOL, help="whose training images calibrate int8"
    )
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("deployment", help="export, measure formats, write deployment.md + card")
    p.add_argument("--model", default=str(default_model))
    p.add_argument("--outdir", default=str(config.MODELS / "export"))
    p.add_argument("--protocol", default=config.DEFAULT_PROTOCOL, help="whose test split scores")
    p.add_argument(
        "--study",
        action="store_true",
        help="the long study: int8 calibration draws, 200-run latency",
    )
    p.set_defaults(func=_cmd_deployment)

    p = sub.add_parser("finetune", help="the partial fine-tuning study (make study-finetune)")
    p.set_defaults(func=_cmd_finetune)


def _add_evaluate_command(sub, default_model: Path) -> None:
    """Add ``evaluate``: score a model on a labelled folder (an external test set).

    Args:
        sub: the subparsers of :func:`build_parser` (``add_subparsers``).
        default_model: the shipped model, ``--model``'s default.
    """
    p = sub.add_parser(
        "evaluate", help="score a model on a labelled folder of slices (malignant vs normal)"
    )
    p.add_argument("root", help="folder with class folders (e.g. train/normal, adenocarcinoma_*)")
    p.add_argument(
        "--classes",
        help="extra or overriding folder-name prefixes, PREFIX=CLASS,... (class: benign, "
        "malignant or normal)",
    )
    p.add_argument(
        "--model",
        default=str(default_model),
        help=f"a .keras model (default: {default_model.relative_to(config.ROOT)})",
    )
    p.add_argument("--output", required=True, help="the report, a .json file")
    p.add_argument("--seed", type=int, default=config.PAPER.seed, help="bootstrap seed")
    p.set_defaults(func=_cmd_evaluate)


def _add_report_commands(sub) -> None:
    """Add ``report`` (run the notebooks), ``drift`` (two runs' figures) and ``manifest``.

    Args:
        sub: the subparsers of :func:`build_parser` (``add_subparsers``).
    """
    p = sub.add_parser("report", help="run the notebooks with papermill and render reports")
    p.add_argument("notebooks", nargs="*", help="notebook file names (default: all, in order)")
    p.add_argument("--params", help="a YAML file of notebook parameters (papermill -f)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("drift", help="compare a metrics.json made elsewhere with this run's")
    p.add_argument("reference", help="the other run's metrics.json")
    p.add_argument("current", nargs="?", help="this run's (default: reports/metrics.json)")
    p.add_argument("--skip", action="append", default=[], help="a part not to compare (repeatable)")
    p.set_defaults(func=_cmd_drift)

    p = sub.add_parser("manifest", help="write a reference manifest (maintainers)")
    p.add_argument("data_dir", help="release folder")
    p.add_argument("--output", default=str(config.MANIFEST_CSV), help="CSV to write")
    p.set_defaults(func=_cmd_manifest)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lungct_utils``.

    Returns:
        The parser, one subcommand per command.
    """
    parser = argparse.ArgumentParser(
        prog="python -m lungct_utils", description=__doc__.split("\n")[0]
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    default_model = config.model_path(config.DEFAULT_RUN)
    # the order of the help's command list
    _add_data_commands(sub)
    _add_predict_commands(sub, default_model)
    _add_evaluate_command(sub, default_model)
    _add_model_commands(sub, default_model)
    _add_report_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 success, 1 data/input problem, 2 usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in LOGGED:  # TensorFlow's C++ logging to a file, our lines to the screen
            with console(LOGS / f"{args.command}.log", python_too=False):
                return args.func(args)
        return args.func(args)
    except (LungCTError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
