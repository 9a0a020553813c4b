"""Notebook conventions, the report machinery, and the committed metrics and README."""

import ast
import copy
import json
import re
from collections.abc import Mapping

import nbformat
import pytest

from lungct_utils import config, parts, report
from lungct_utils.io_utils import LungCTError
from lungct_utils.runner import clean, declared, notebook_paths, render_html

EXPECTED = [
    "01_eda",
    "02_preprocessing",
    "03_training",
    "04_evaluation",
    "05_cross_validation",
    "06_variants_and_selection",
    "07_study_rule_and_shipping",
    "08_patient_bracket",
    "09_external_validation",
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


def test_metrics_json_is_the_join_of_the_committed_parts(committed):
    """The committed ``metrics.json`` is what the committed parts of one run join to."""
    joined = parts.collect_metrics(committed["parameters_file"], config.STUDIES)
    assert joined == committed


def _readme_block() -> str:
    text = config.README.read_text(encoding="utf-8")
    start, end = text.index(report.README_START), text.index(report.README_END)
    assert start < end, "the README's generated block is out of order"
    return text[start:end]


#: A figure in running text: an optional sign, digits, optional decimals; not part of a word.
FIGURE = re.compile(r"(?<![\w.])[+-]?\d+(?:\.\d+)?(?![\w.])")


def _numbers(node):
    """Every number (not a flag) in a nested structure of dicts and lists."""
    if isinstance(node, Mapping):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _numbers(v)
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield node


def _derived(m: dict) -> list[float]:
    """The figures the reports derive from ``metrics.json`` by a stated rule."""
    seeds = m["paper_seeds"]
    cv, hold = seeds["cv_accuracy"], seeds["holdout_accuracy"]
    welch = report.compare_with_paper(cv["mean"], cv["sd"], len(seeds["seeds"]))
    counts = m["dataset"]["distinct_by_class"]
    bal = m["bracket"]["paper"]["slice"]["balanced_accuracy"]
    near = [m["nearest_training"][g] for g in ("central", "thumbnails_only")]
    return [
        welch["diff"],  # the reproduction's difference and its interval
        *welch["ci95"],
        max(counts.values()) / sum(counts.values()),  # the majority class's share
        hold["max"] - hold["min"],  # how far the seeds' holdouts lie apart
        1 / m["comparison"]["patients_by_class"]["benign"],  # one benign patient
        *(v - bal["central"] for v in bal["leak_controls"].values()),
        max(max(v["per_repeat"]) - min(v["per_repeat"]) for v in near),
        near[1]["median"] - near[0]["median"],
    ]


def _as_rendered(values) -> set[str]:
    """Each value as the reports render it: in percent with 0-2 decimals (signed or not),
    or as it is with 0-3 decimals."""
    out = set()
    for x in values:
        for d in (0, 1, 2):
            out |= {f"{100 * x:.{d}f}", f"{100 * x:+.{d}f}"}
        out |= {f"{x:.{d}f}" for d in (0, 1, 2, 3)}
    return out


@pytest.mark.parametrize("name", ["README.md results block", "summary.md"])
def test_every_figure_of_a_generated_report_is_a_committed_value(committed, name):
    """Each decimal figure is a value of ``metrics.json``, of the paper's tables or derived
    from them: a report left behind by new metrics, or a figure typed by hand, fails.
    (Integers are left out: counts, folds and names such as notebook numbers.)"""
    text = _readme_block() if name.startswith("README") else (config.REPORTS / name).read_text()
    text = text.replace(config.DATASET_CITATION, "")  # its DOI is no figure
    published = [*_numbers(config.PAPER_TABLE_III), *_numbers(config.PAPER_TABLE_IV)]
    allowed = _as_rendered([*_numbers(committed), *published, *_derived(committed)])
    figures = [f for f in FIGURE.findall(text) if "." in f]
    assert len(figures) > 100, name  # the block's tables and sentences are there
    assert [f for f in figures if f not in allowed] == []


def _provenance_commits(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "provenance" and isinstance(v, dict):
                yield v["git_commit"]
            else:
                yield from _provenance_commits(v)


def test_each_report_rendered_from_the_metrics_names_their_commit(committed):
    commit = committed["git_commit"]
    assert set(_provenance_commits(committed)) <= {commit}  # every part from the same run
    named = re.compile(r"commit `([0-9a-f]{7,40}(?:\+dirty)?)`")
    summary = (config.REPORTS / "summary.md").read_text()
    assert set(named.findall(summary)) == {commit}
    card = (config.REPORTS / "MODEL_CARD.md").read_text()
    assert named.findall(card)[0] == commit  # later ones name where a study was measured


#: The results table's columns and the metric each shows.
COLUMNS = {
    "accuracy": "accuracy",
    "balanced accuracy": "balanced_accuracy",
    "macro-F1": "macro_f1",
    "benign recall": "recall_benign",
}


def _table(text: str, index: str) -> dict[str, dict[str, str]]:
    """The Markdown table of ``text`` whose first header cell is ``index``: row -> column ->
    cell."""
    rows, header = {}, None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            if header:
                break
        elif header is None and cells[0] == index:
            header = cells
        elif header and not set(line) <= set("|-: "):
            rows[cells[0]] = dict(zip(header, cells, strict=True))
    assert header, f"no table headed {index!r}"
    return rows


def _cell(mean: float, ci) -> str:
    return f"{100 * mean:.2f} [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]"


def _assert_each_metric_under_its_name(block: str, m: dict) -> None:
    rows = _table(block, "protocol")
    for p, s in m["honest_cv"].items():
        row = next(v for name, v in rows.items() if name.startswith(f"{p} ("))
        for column, key in COLUMNS.items():
            assert row[column] == _cell(s["mean"][key], s["ci95"][key]), (p, column)
    seeds = m["paper_seeds"]
    row = next(v for name, v in rows.items() if name.startswith("paper protocol, ours"))
    cv = seeds["cv_accuracy"]
    spread = f"{100 * cv['mean']:.2f} ± {100 * cv['sd']:.2f}"
    assert row["accuracy"] == f"{spread} ({100 * cv['min']:.2f}-{100 * cv['max']:.2f})"
    for column, key in list(COLUMNS.items())[1:]:
        s = seeds[f"cv_{key}"]
        assert row[column] == f"{100 * s['mean']:.2f} ± {100 * s['sd']:.2f}", column


def test_the_committed_readme_shows_each_metric_under_its_name(committed):
    _assert_each_metric_under_its_name(_readme_block(), committed)


def test_the_readme_renderer_reads_each_metric_from_its_own_key(committed):
    """Distinct planted values per protocol and metric: reading a neighbouring key (the
    committed paper-protocol figures coincide) puts a wrong figure under a name."""
    planted = copy.deepcopy(committed)
    for i, s in enumerate(planted["honest_cv"].values()):
        for j, key in enumerate(COLUMNS.values()):
            value = (11 + 23 * i + 5 * j + 0.37) / 100
            s["mean"][key], s["ci95"][key] = value, [value - 0.0111 * (j + 1), value + 0.0013]
    for j, key in enumerate(COLUMNS.values()):
        s = planted["paper_seeds"][f"cv_{key}"]
        s.update(mean=0.5 + 0.07 * j + 0.0013, sd=0.001 * (j + 2), min=0.41 + j / 100, max=0.9)
    _assert_each_metric_under_its_name(report.readme_block(planted), planted)


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
