"""Notebook conventions, the report machinery, and the committed metrics and README."""

import ast
import json
import re

import nbformat
import pytest

from lungct_utils import config, report
from lungct_utils.io_utils import LungCTError
from lungct_utils.runner import clean, declared, notebook_paths, render_html

EXPECTED = [
    "01_eda",
    "02_preprocessing",
    "03_training",
    "04_evaluation",
    "05_cross_validation",
    "06_beyond_the_paper",
    "07_patient_bracket",
    "08_external_validation",
]
COMMITTED = config.REPORTS / "metrics.json"


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(scope="module", params=EXPECTED)
def notebook(request):
    return nbformat.read(config.NOTEBOOKS / f"{request.param}.ipynb", as_version=4)


def test_the_notebooks_exist_in_order():
    assert [p.stem for p in notebook_paths()][: len(EXPECTED)] == EXPECTED


def test_notebook_opens_with_goals_then_imports_then_parameters(notebook):
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    bullets = [line for line in first.source.splitlines() if line.startswith("- ")]
    assert 3 <= len(bullets) <= 5
    code = _code(notebook)
    assert all(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.parse(code[0].source).body)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[1]
    names = [t.id for node in ast.parse(tagged[0].source).body for t in node.targets]
    assert names and all(n.isupper() for n in names) and "SEED" in names


def test_notebook_hard_codes_no_paths_and_no_sys_path(notebook):
    for cell in _code(notebook):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not any(s in node.value for s in ("data/", ".jpg", "/work", "../")), (
                    node.value
                )
        assert "sys.path" not in cell.source and "print(df.to_string" not in cell.source


def test_tables_are_displayed_as_dataframes_not_printed_text(notebook):
    for cell in _code(notebook):
        assert ".to_string()" not in cell.source, cell.source


def test_notebook_carries_outputs_and_checked_cells(notebook):
    code = _code(notebook)
    assert any(c.outputs for c in code)
    assert all(c.execution_count is not None for c in code if c.outputs)
    assert any(c.source.startswith("# NBVAL_CHECK_OUTPUT") for c in code)
    assert "papermill" not in notebook.metadata
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)


@pytest.mark.parametrize("stem", EXPECTED)
def test_papermill_reads_every_parameter(stem):
    """A comment holding '=' on a parameter line defeats papermill's inference."""
    path = config.NOTEBOOKS / f"{stem}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {t.id for node in ast.parse(cell.source).body for t in node.targets}
    assert declared(path) == names


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


@pytest.fixture(scope="module")
def committed():
    return json.loads(COMMITTED.read_text())


def test_committed_metrics_record_their_provenance(committed):
    assert {"params", "seed", "git_commit", "versions", "cpu", "parameters_file"} <= set(committed)
    assert committed["seed"] == committed["params"]["seed"]
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", committed["git_commit"])
    assert committed["dataset"]["original"] == {"benign": 120, "malignant": 561, "normal": 416}
    assert committed["dataset"]["distinct_originals"] == 1055


def test_committed_metrics_have_the_cases_and_honest_cv_keys(committed):
    cases = committed["cases"]
    assert set(cases["groups"]) == set(config.CLASSES)
    for c in config.CLASSES:  # the stated count is the cut budget; evidence may move it a little
        assert 0.5 * config.STATED_CASES[c] <= cases["groups"][c] <= 1.5 * config.STATED_CASES[c]
    # the crossing links are counted at the audit's near-duplicate threshold, and a higher
    # threshold never links more slices nor crosses more cases
    assert cases["link_threshold"] == committed["audit"]["near_duplicate_threshold"]
    rows = sorted(cases["crossing_by_threshold"], key=lambda r: r["threshold"])
    at = next(r for r in rows if r["threshold"] == cases["link_threshold"])
    assert cases["links_crossing_groups"] == at["crossing_groups"] <= at["links"]
    assert at["crossing_share"] == pytest.approx(at["crossing_groups"] / at["links"])
    for key in ("links", "crossing_groups"):
        counts = [r[key] for r in rows]
        assert counts == sorted(counts, reverse=True), key
    keys = {
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "recall_benign",
        "recall_malignant",
        "recall_normal",
        "auc_macro",
        "ece",
    }
    assert set(committed["honest_cv"]) == set(config.HONEST_PROTOCOLS)
    for protocol, s in committed["honest_cv"].items():
        assert s["folds"] == 5 and s["repeats"] >= 5 and s["n_test"] == 1055, protocol
        assert keys <= set(s["mean"]) and keys <= set(s["ci95"])
        for k in keys:
            lo, hi = s["ci95"][k]
            assert _fraction(s["mean"][k]) and lo <= s["mean"][k] <= hi, (protocol, k)
        assert _fraction(s["case_accuracy"])


def test_committed_metrics_have_the_bracket_paired_and_fold_choices(committed):
    from lungct_utils import bracket, comparisons, groupings

    assert list(committed["groupings"]) == list(groupings.FAMILY)
    for name, g in committed["groupings"].items():
        assert g["n_groups"] >= 50, name
        # a leak control is scored with the paper's model only, per slice only: no paired part
        control = name in groupings.LEAK_CONTROLS
        models = ("paper",) if control else bracket.MODELS
        assert set(g) == {"n_groups", *models} | ({"paired"} if not control else set())
        for model in models:
            assert set(g[model]) == ({"slice"} if control else set(bracket.LEVELS)), name
            for level, part in g[model].items():
                for k in bracket.KEYS:
                    lo, hi = part["ci95"][k]
                    assert lo <= part["mean"][k] <= hi, (name, model, level, k)
        for level in () if control else bracket.LEVELS:
            d = g["paired"][level]["macro_f1"]
            assert d["diff"] == pytest.approx(d["a"] - d["b"])
            assert d["excludes_zero"] == (d["diff_ci95"][0] > 0 or d["diff_ci95"][1] < 0)
    readings = {g: v for g, v in committed["groupings"].items() if g in groupings.READINGS}
    for model in bracket.MODELS:
        for level in bracket.LEVELS:
            for k, m in committed["bracket"][model][level].items():
                values = [g[model][level]["mean"][k] for g in readings.values()]
                assert m["min"] == min(values) and m["max"] == max(values), (model, level, k)
                assert m["central"] == committed["groupings"]["central"][model][level]["mean"][k]
                assert m["readings"] == len(groupings.READINGS)
                scored = level == "slice" and model == "paper"  # the controls' one reading
                expected = set(groupings.LEAK_CONTROLS) if scored else set()
                assert set(m["leak_controls"]) == expected
    # the primary comparison is the one named in the code, and out of its secondary family
    comparison = committed["comparison"]
    primary = comparison["primary"]
    assert {k: primary[k] for k in comparisons.PRIMARY} == comparisons.PRIMARY
    central = committed["groupings"]["central"]["paired"][primary["level"]][primary["metric"]]
    assert primary["diff"] == pytest.approx(central["diff"])
    assert primary["metric"] not in comparison["secondary"][primary["level"]]
    for part in comparison["secondary"].values():
        for d in part.values():
            lo, hi = d["holm"]["ci"]
            assert d["holm"]["coverage"] >= 0.95 and lo <= d["diff"] <= hi
            assert not d["holm"]["rejected"] or lo > 0 or hi < 0
    assert set(committed["nearest_training"]) == set(groupings.FAMILY)
    assert len(committed["fold_choices"]) == 25
    assert {"repeat", "fold", "selected", "benign prior"} <= set(committed["fold_choices"][0])
    grid = {c for row in committed["fold_choices"] for k, c in row.items() if k.startswith("C of")}
    assert grid <= {1e-4, 1e-3, 1e-2, 1e-1, 1.0}
    assert set(committed["paired"]) == {v["name"] for v in committed["beyond"]["variants"]} - {
        "paper (head, /255, copies)",
        *(v["name"] for v in committed["beyond"]["variants"] if "fine-tun" in v["name"]),
    }


def test_committed_metrics_have_the_seed_spread_and_the_paper_tables(committed):
    spread = committed["paper_seeds"]
    assert len(spread["seeds"]) >= 5
    for key in ("holdout_accuracy", "cv_accuracy"):
        s = spread[key]
        assert set(s) == {"mean", "sd", "min", "max"}
        assert s["min"] <= s["mean"] <= s["max"] and s["sd"] >= 0
    for protocol in config.PROTOCOLS:
        hold = committed["protocols"][protocol]["holdout"]
        cm = hold["confusion_matrix"]
        assert [sum(r) for r in cm] == [hold["per_class"][c]["support"] for c in config.CLASSES]
        lo, hi = hold["accuracy_ci95"]
        assert lo <= hold["accuracy"] <= hi
    cv = committed["protocols"]["paper"]["cv"]
    assert len(cv["folds"]) == 5 and _fraction(cv["mean"]["accuracy"])


def test_committed_metrics_have_the_external_part(committed):
    from lungct_utils import transfer

    ext = committed["external"]
    assert ext["set"]["files"] >= ext["set"]["distinct slices"] >= ext["set"]["case proxies"] > 0
    for name, m in ext["models"].items():
        assert m["n_distinct"] == ext["set"]["distinct slices"], name
        assert sum(m["input_check"]["verdict"].values()) == m["n_scored"], name
        for block in ("metrics", "metrics_per_image", "metrics_accepted"):
            for key in ("sensitivity", "specificity", "balanced_accuracy", "auc"):
                v = m[block][key]
                assert v["ci95"][0] <= v["value"] <= v["ci95"][1], (name, block, key)
        # the proxy clusters slices: never narrower than one slice per unit
        assert m["metrics"]["clusters"] <= m["metrics_per_image"]["clusters"]
    t = ext["transfer"]
    # the rule as written, applied to the recorded internal differences, gives the recorded choice
    assert transfer.ship(t["candidates"])[0] == t["chosen"]
    assert set(t["recipes"]) == set(transfer.RECIPES)
    for goal in ext["goals"].values():
        assert goal["ci95"][0] <= goal["value"] <= goal["ci95"][1] and isinstance(goal["met"], bool)
    assert ext["provenance"]["seed"] == committed["seed"]


def test_readme_results_agree_with_the_committed_metrics(committed):
    assert report.readme_block(committed) in config.README.read_text(encoding="utf-8")


def test_summary_is_generated_from_the_committed_metrics(committed):
    assert (config.REPORTS / "summary.md").read_text() == report.render_summary(committed)


def test_generated_reports_exist():
    for name in ("summary.md", "MODEL_CARD.md", "deployment.md", "benchmarks.md"):
        assert (config.REPORTS / name).is_file(), name
    for stem in EXPECTED:
        assert (config.REPORTS / f"{stem}.html").is_file()


@pytest.mark.slow
def test_runner_is_quiet_and_names_the_failing_cell(tmp_path, monkeypatch, capfd):
    from lungct_utils import runner

    good, bad = tmp_path / "01_good.ipynb", tmp_path / "02_bad.ipynb"
    for path, body in (
        (good, "print('chatty output')"),
        (bad, "x = 1\nraise ValueError('broken on purpose')"),
    ):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("SEED = 1")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, path)
    monkeypatch.setattr(runner, "notebook_paths", lambda: [good, bad])
    monkeypatch.setenv("LUNGCT_REPORTS_DIR", str(tmp_path / "reports"))
    with pytest.raises(LungCTError, match="02_bad.ipynb: cell 2 .*ValueError: broken on purpose"):
        runner.run_all(["01_good.ipynb", "02_bad.ipynb"])
    out, err = capfd.readouterr()
    assert "01_good" in out and "FAILED: 02_bad.ipynb: cell 2" in out
    assert "chatty output" not in out + err and "Kernel" not in out + err
    log = tmp_path / "reports" / "make_report.log"
    assert log.is_file()
    assert (tmp_path / "reports" / "01_good.html").is_file()
