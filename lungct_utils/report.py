"""``make report``: run the notebooks in order with papermill and render them.

Each notebook ``notebooks/NN_name.ipynb`` runs in a fresh ``python3`` kernel (working
directory ``notebooks/``) into ``reports/executed/``, is rendered to
``reports/NN_name.html`` with the code hidden, and is copied back to ``notebooks/`` with its
outputs but without run noise (execution counts, papermill timings, the injected
parameters cell), so the committed notebooks carry the outputs nbval checks. The first
failing cell stops the run, naming the notebook and the cell.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import nbformat

from . import config
from .errors import LungCTError
from .io_utils import write_text

EXECUTED = config.REPORTS / "executed"


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
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb)
    return write_text(body, target)


def run_notebook(path: Path, parameters: dict, timeout: int = 3600) -> nbformat.NotebookNode:
    """Execute one notebook with papermill into ``reports/executed/``.

    Args:
        path: the notebook.
        parameters: papermill parameters.
        timeout: per-cell timeout in seconds.

    Returns:
        The executed notebook.

    Raises:
        LungCTError: a cell failed; the message names the notebook, cell and error.
    """
    import papermill as pm

    output = EXECUTED / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(path), str(output), parameters=parameters, kernel_name="python3",
            cwd=str(path.parent), progress_bar=False, log_output=False,
            execution_timeout=timeout,
        )  # fmt: skip
    except pm.PapermillExecutionError as exc:
        raise LungCTError(
            f"{path.name}: cell {exc.cell_index} (execution {exc.exec_count}) failed: "
            f"{exc.ename}: {exc.evalue} (see {output})"
        ) from None
    return nbformat.read(output, as_version=4)


def run_all(names: list[str] | None = None, parameters: dict | None = None) -> list[Path]:
    """Run, render and copy back every notebook in order.

    Args:
        names: notebook file names to run (default all, in order).
        parameters: papermill parameters for every notebook (default ``PROGRESS=False``).

    Returns:
        The HTML reports written.
    """
    os.environ.setdefault("IPYTHONDIR", str(config.ROOT / ".ipython"))
    parameters = {"PROGRESS": False} if parameters is None else parameters
    paths = notebook_paths()
    if names:
        unknown = set(names) - {p.name for p in paths}
        if unknown:
            raise ValueError(f"unknown notebook(s) {sorted(unknown)}")
        paths = [p for p in paths if p.name in names]
    written = []
    begin = time.perf_counter()
    for path in paths:
        start = time.perf_counter()
        print(f"running {path.name} ...", flush=True)
        nb = run_notebook(path, parameters)
        written.append(render_html(nb, config.REPORTS / f"{path.stem}.html"))
        nbformat.write(clean(nb), path)
        print(f"  done in {time.perf_counter() - start:.0f} s -> {written[-1].name}", flush=True)
    print(
        f"{len(paths)} notebook(s) in {time.perf_counter() - begin:.0f} s; see reports/", flush=True
    )
    return written
