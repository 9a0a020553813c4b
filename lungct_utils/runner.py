"""``make report``: run the notebooks in order with papermill, render them, write the reports.

Each notebook ``notebooks/NN_name.ipynb`` runs in a fresh ``python3`` kernel (working
directory ``notebooks/``) into ``reports/executed/``, is rendered to a self-contained
``reports/NN_name.html`` with the code hidden, and is copied back to ``notebooks/`` with its
outputs but without run noise (execution counts, papermill timings, the injected
parameters cell), so the committed notebooks carry the outputs nbval checks. A full run then
writes ``metrics.json``, ``summary.md``, the README's results, ``deployment.md`` and the
model card.

The console shows one line per step (a progress bar over the notebook's cells); everything
else that the run, its kernels and TensorFlow print goes to ``reports/make_report.log``,
which a failure names together with the notebook, the cell and the error.
"""

from __future__ import annotations

import copy
import os
import re
import time
from pathlib import Path

import nbformat
import papermill as pm
import yaml
from nbconvert import HTMLExporter

from . import cache, config
from .io_utils import LungCTError, console, cpu_info, write_json, write_text
from .report import update_run_time, write_reports

#: Scripts and styles of the HTML template that load from the internet (MathJax, require.js,
#: mermaid): the reports must open offline and contact no third party, and use none of them.
_EXTERNAL = re.compile(
    r"<script[^>]*>(?:(?!</script>).)*?https?://(?:(?!</script>).)*?</script>"
    r"|<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>|<link[^>]+href=\"https?://[^\"]*\"[^>]*>",
    re.I | re.S,
)


def notebook_paths(folder: Path = config.NOTEBOOKS) -> list[Path]:
    """The ordered notebooks ``NN_*.ipynb``.

    Args:
        folder: the notebooks folder.

    Returns:
        Paths sorted by name.
    """
    paths = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise LungCTError(f"{folder}: no notebooks NN_name.ipynb found")
    return paths


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without run noise: papermill metadata and timings, injected cells, kernel
    paths; execution counts renumbered 1..n.

    Args:
        nb: an executed notebook.

    Returns:
        The cleaned copy (outputs kept).
    """
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            # nbval treats a cell without a count as unrun: renumber 1..n instead of stripping,
            # so reruns leave no diff.
            count += 1
            cell.execution_count = count
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = count
    return nb


def render_html(nb: nbformat.NotebookNode, target: Path) -> Path:
    """Render a notebook to HTML with the code hidden.

    Args:
        nb: an executed notebook.
        target: the HTML file.

    Returns:
        ``target``.
    """
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb)
    return write_text(_EXTERNAL.sub("", body), target)


def run_notebook(
    path: Path, parameters: dict, timeout: int = 3600, progress=False
) -> nbformat.NotebookNode:
    """Execute one notebook with papermill into ``reports/executed/``.

    Args:
        path: the notebook.
        parameters: papermill parameters.
        timeout: per-cell timeout in seconds.
        progress: papermill's progress bar: False, or tqdm options.

    Returns:
        The executed notebook.

    Raises:
        LungCTError: a cell failed; the message names the notebook, cell and error.
    """
    output = config.reports_dir() / "executed" / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(path),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(path.parent),
            progress_bar=progress,
            log_output=False,
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as exc:
        raise LungCTError(
            f"{path.name}: cell {exc.cell_index} (execution {exc.exec_count}) failed: "
            f"{exc.ename}: {exc.evalue} (executed notebook: {output})"
        ) from None
    return nbformat.read(output, as_version=4)


def read_params(path: Path | None) -> dict:
    """The notebook parameters of a YAML file (``make report PARAMS=...``), checked.

    Args:
        path: the file, or None for none.

    Returns:
        name -> value (UPPER_CASE names).

    Raises:
        LungCTError: the file is missing, not a YAML mapping, or has a lower-case name.
    """
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise LungCTError(f"{path}: parameters file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise LungCTError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(params, dict) or not all(isinstance(k, str) and k.isupper() for k in params):
        raise LungCTError(f"{path}: expected a mapping of UPPER_CASE names to values")
    return params


def declared(path: Path) -> set[str]:
    """The parameter names a notebook declares in its ``parameters`` cell.

    Args:
        path: the notebook.

    Returns:
        Names.
    """
    return set(pm.inspect_notebook(str(path)))


def _bar(name: str, terminal) -> dict:
    return {
        "desc": f"{name:<24}",
        "file": terminal,
        "mininterval": 0.5,
        "ncols": 80,
        "bar_format": "{desc} {bar:24} {n_fmt:>2}/{total_fmt} cells {elapsed}",
    }


def _without_external(paths: list[Path]) -> list[Path]:
    """``paths`` without notebook 09 when the external set is missing (one line), or an
    error under ``LUNGCT_REQUIRE_DATA=1`` naming the missing folder."""
    external = config.external_dir()
    if external.is_dir() or config.EXTERNAL_NOTEBOOK not in {p.name for p in paths}:
        return paths
    if os.environ.get("LUNGCT_REQUIRE_DATA") == "1":
        raise LungCTError(
            f"{external}: no external set (LUNGCT_REQUIRE_DATA=1; set {config.EXTERNAL_DIR_ENV})"
        )
    print(
        f"{config.EXTERNAL_NOTEBOOK} skipped: no external set at {external} "
        f"(set {config.EXTERNAL_DIR_ENV})"
    )
    return [p for p in paths if p.name != config.EXTERNAL_NOTEBOOK]


def _selected(names: list[str] | None) -> list[Path]:
    """The notebooks to run: all, or those named, in order (:func:`_without_external`)."""
    paths = notebook_paths()
    unknown = set(names or ()) - {p.name for p in paths}
    if unknown:
        raise ValueError(f"unknown notebook(s) {sorted(unknown)}")
    return _without_external([p for p in paths if not names or p.name in names])


def _parameters(paths: list[Path], params_file: Path | None) -> dict[Path, dict]:
    """Each notebook's parameters: the names of the file it declares, plus quiet progress."""
    given = read_params(params_file)
    unused = set(given) - set().union(*(declared(p) for p in notebook_paths()))
    if unused:
        raise LungCTError(f"{params_file}: no notebook declares {sorted(unused)}")
    params = {"PROGRESS": False, **given}
    return {p: {k: v for k, v in params.items() if k in declared(p)} for p in paths}


def _write_final_reports(params_file: Path | None) -> None:
    """metrics.json, summary.md and the README's results; the deployment; the model card."""
    # lazy: the deployment imports TensorFlow, whose start-up logging must land in the log,
    # inside the caller's redirect
    from .deploy import model_card
    from .studies import deployment

    write_reports(read_params(params_file))
    deployment.main(
        config.model_path(config.DEFAULT_RUN), config.MODELS / "export", config.DEFAULT_PROTOCOL
    )
    model_card.main()


def _stored_results() -> dict[Path, int]:
    """Every stored result of the results cache, with its modification time (ns): a result
    computed by a run is new or rewritten (``RECOMPUTE=1`` rewrites it in place)."""
    return {p: p.stat().st_mtime_ns for p in cache.results_dir().rglob("*.pkl")}


def _computed(before: dict[Path, int], after: dict[Path, int]) -> list[str]:
    """Names of the results a run stored: new files, or files rewritten since ``before``."""
    return sorted({p.parent.name for p, stamp in after.items() if before.get(p) != stamp})


def run_all(names: list[str] | None = None, params_file: Path | None = None) -> list[Path]:
    """Run, render and copy back every notebook in order, then write the reports.

    Every notebook gets the parameters of ``params_file`` that it declares (a name no
    notebook declares is an error), plus ``PROGRESS=False``. A full run (no ``names``) then
    writes ``metrics.json``, ``summary.md`` and the README's results from the parts, measures
    the deployable formats and writes the model card.

    Args:
        names: notebook file names to run (default all, in order).
        params_file: a YAML file of parameters, or None.

    Returns:
        The HTML reports written.

    Raises:
        LungCTError: a step failed; the message names it and the log.
    """
    os.environ.setdefault("IPYTHONDIR", str(config.ROOT / ".ipython"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    paths = _selected(names)
    params = _parameters(paths, params_file)
    log = config.reports_dir() / "make_report.log"
    log.unlink(missing_ok=True)
    written, times = [], {}
    stored = _stored_results()
    begin = time.perf_counter()
    with console(log) as terminal:
        try:
            for path in paths:
                start = time.perf_counter()
                nb = run_notebook(path, params[path], progress=_bar(path.stem, terminal))
                written.append(render_html(nb, config.reports_dir() / f"{path.stem}.html"))
                write_text(nbformat.writes(clean(nb)) + "\n", path)
                times[path.stem] = time.perf_counter() - start
            if not names:
                start = time.perf_counter()
                _write_final_reports(params_file)
                seconds = times["reports, deployment, model card"] = time.perf_counter() - start
                print(f"{'reports, deployment':<24} {seconds:.0f} s", file=terminal)
        except Exception as exc:
            print(f"FAILED: {exc}", file=terminal)
            raise LungCTError(f"{exc} (full log: {log})") from None
    total = time.perf_counter() - begin
    computed = _computed(stored, _stored_results())
    run_times = {
        "notebooks": times,
        "total": total,
        "results_cache": {"computed": computed, "recompute": cache.recompute()},
        "cpu": cpu_info(),
    }
    write_json(run_times, config.reports_dir() / "run_times.json")
    if not names and config.reports_dir() == config.REPORTS:
        update_run_time(run_times)
    print(
        f"{len(paths)} notebook(s) in {total:.0f} s; reports in {config.reports_dir()} "
        f"(log: {log.name})"
    )
    return written
