"""Notebook conventions, the report machinery and the committed metrics' shape."""

import ast
import json

import nbformat
import pytest

from lungct_utils import config
from lungct_utils.report import clean, notebook_paths, render_html

EXPECTED = ["01_eda", "02_preprocessing", "03_training", "04_evaluation", "05_cross_validation"]


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(scope="module", params=EXPECTED)
def notebook(request):
    return nbformat.read(config.NOTEBOOKS / f"{request.param}.ipynb", as_version=4)


def test_the_five_notebooks_exist_in_order():
    assert [p.stem for p in notebook_paths()] == EXPECTED


def test_notebook_opens_with_goals_then_imports_then_parameters(notebook):
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    bullets = [line for line in first.source.splitlines() if line.startswith("- ")]
    assert 3 <= len(bullets) <= 5
    code = _code(notebook)
    assert all(line.startswith(("from ", "import ")) for line in code[0].source.splitlines())
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[1]
    names = [t.id for node in ast.parse(tagged[0].source).body for t in node.targets]
    assert names and all(n.isupper() for n in names)


def test_notebook_holds_no_logic_and_no_paths(notebook):
    for cell in _code(notebook):
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Lambda), cell.source
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not any(s in node.value for s in ("data/", ".jpg", "/work", "../")), (
                    node.value
                )
        assert "sys.path" not in cell.source


def test_notebook_carries_outputs_and_checked_cells(notebook):
    code = _code(notebook)
    assert any(c.outputs for c in code)
    assert all(c.execution_count is not None for c in code if c.outputs)
    assert any(c.source.startswith("# NBVAL_CHECK_OUTPUT") for c in code)
    assert "papermill" not in notebook.metadata


def test_clean_strips_run_noise_and_keeps_outputs():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 3.2}
    injected = nbformat.v4.new_code_cell("SEED = 1")
    injected.metadata["tags"] = ["injected-parameters"]
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=17)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    cell.metadata["papermill"] = {"start_time": "2026"}
    cell.metadata["execution"] = {"iopub.status.busy": "2026"}
    nb.cells = [injected, cell]
    out = clean(nb)
    assert len(out.cells) == 1 and out.cells[0].outputs[0].text == "1\n"
    assert out.cells[0].execution_count == 1
    assert "papermill" not in out.metadata and out.cells[0].metadata == {}
    assert nb.cells[1].execution_count == 17  # the input is not modified


def test_render_html_hides_code(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("secret_code_marker = 1", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="visible_output_marker\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), cell]
    html = render_html(nb, tmp_path / "r.html").read_text()
    assert "visible_output_marker" in html and "secret_code_marker" not in html


def _fraction(x):
    return isinstance(x, float) and 0.0 <= x <= 1.0


def test_committed_metrics_json_has_the_agreed_shape():
    metrics = json.loads((config.REPORTS / "metrics.json").read_text())
    assert {"params", "seed", "git_commit", "dataset", "protocols"} <= set(metrics)
    assert metrics["dataset"]["original"] == {"benign": 120, "malignant": 561, "normal": 416}
    assert metrics["dataset"]["augmented"] == {"benign": 1201, "malignant": 1205, "normal": 1203}
    assert metrics["seed"] == metrics["params"]["seed"]
    for protocol in config.PROTOCOLS:
        hold = metrics["protocols"][protocol]["holdout"]
        assert _fraction(hold["accuracy"]) and _fraction(hold["macro_f1"])
        lo, hi = hold["accuracy_ci95"]
        assert lo <= hold["accuracy"] <= hi
        lo, hi = hold["macro_f1_ci95"]
        assert lo <= hold["macro_f1"] <= hi
        assert isinstance(hold["epochs"], int) and 1 <= hold["epochs"] <= 50
        assert list(hold["per_class"]) == list(config.CLASSES)
        for row in hold["per_class"].values():
            assert all(_fraction(row[k]) for k in ("precision", "recall", "f1"))
        cm = hold["confusion_matrix"]
        assert len(cm) == 3 and all(len(r) == 3 for r in cm)
        assert [sum(r) for r in cm] == [hold["per_class"][c]["support"] for c in config.CLASSES]
        cv = metrics["protocols"][protocol]["cv"]
        assert len(cv["folds"]) == 5
        for key in ("accuracy", "precision", "recall", "f1"):
            assert all(_fraction(f[key]) for f in cv["folds"])
            assert _fraction(cv["mean"][key]) and _fraction(cv["std"][key])


def test_committed_metrics_json_has_the_audit_and_ablation():
    metrics = json.loads((config.REPORTS / "metrics.json").read_text())
    audit = metrics["audit"]
    keys = ["exact_duplicate_groups", "images_in_exact_duplicate_groups", "unique_images"]
    keys += ["near_duplicate_groups", "shape_shortcut_accuracy", "thumbnail_shortcut_accuracy"]
    assert set(keys) <= set(audit)
    assert audit["exact_duplicate_groups"] == 42 and audit["unique_images"] == 1055
    assert set(audit["pseudo_case_groups"]) == set(config.CLASSES)
    assert _fraction(audit["shape_shortcut_accuracy"])
    assert _fraction(audit["thumbnail_shortcut_accuracy"])
    ablation = metrics["ablations"]["pad_square"]
    assert ablation["protocol"] in config.PROTOCOLS and len(ablation["cv"]["folds"]) == 5


def test_generated_reports_exist():
    for name in ("summary.md", "MODEL_CARD.md", "deployment.md", "benchmarks.md"):
        assert (config.REPORTS / name).is_file(), name
    for stem in EXPECTED:
        assert (config.REPORTS / f"{stem}.html").is_file()
