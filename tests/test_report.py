"""Table builders, the summary, the README block and the metrics writer."""

import copy
import json
import math
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lungct_utils import comparisons, config, parts, prose, report, tables
from lungct_utils.io_utils import DataError, write_json


@pytest.fixture(scope="module")
def metrics():
    return json.loads((config.REPORTS / "metrics.json").read_text())


def test_markdown_renders_text_counts_and_percentages():
    frame = pd.DataFrame(
        {"n": [3, 4], "share": [0.5, np.nan], "note": ["a", "b"]}, index=["x", "y"]
    )
    text = tables.markdown(frame, percent=True, index="row")
    assert text.splitlines() == [
        "| row | n | share | note |",
        "|---|---:|---:|---:|",
        "| x | 3 | 50.00 | a |",
        "| y | 4 |  | b |",
    ]


def test_with_interval_formats_percent():
    assert tables.with_interval(0.8731, [0.841, 0.902]) == "87.31 [84.10, 90.20]"
    assert tables.with_interval(0.5, None, digits=1) == "50.0"


def test_honest_table_shows_every_protocol_and_metric(metrics):
    table = tables.honest_table(metrics["honest_cv"])
    assert list(table.index) == list(config.HONEST_PROTOCOLS)
    s = metrics["honest_cv"]["cases"]
    expected = tables.with_interval(s["mean"]["macro_f1"], s["ci95"]["macro_f1"])
    assert table.loc["cases", "macro-F1"] == expected
    assert table.loc["cases", "test images (distinct originals)"] == 1055
    with pytest.raises(ValueError, match="kappa"):
        tables.honest_table(metrics["honest_cv"], keys=("kappa",))


def test_paper_tables_keep_the_published_numbers(metrics):
    hold = metrics["protocols"]["paper"]["holdout"]
    t3 = tables.table_iii(hold)
    assert list(t3.index) == [*config.CLASSES, "accuracy"]
    assert t3.loc["accuracy", "f1"] == hold["accuracy"]
    assert t3["support"].iloc[:3].sum() == t3.loc["accuracy", "support"]
    side = tables.cv_side_by_side(metrics["protocols"]["paper"]["cv"])
    assert side.loc["mean", "published accuracy"] == 0.9726
    assert side.loc["std", "published F1"] == 0.0066
    both = tables.paper_vs_ours({"paper": hold})
    assert both.loc["benign recall", "paper (Table III)"] == 0.96


def test_seed_spread_and_headline_frames(metrics):
    spread = tables.seed_spread_table(metrics["paper_seeds"])
    assert spread.loc["5-fold CV accuracy", "mean"] == metrics["paper_seeds"]["cv_accuracy"]["mean"]
    head = tables.headline_frame(metrics)
    assert set(head["protocol"]) == {"paper", *config.HONEST_PROTOCOLS}
    assert (head["lo"] <= head["value"]).all() and (head["value"] <= head["hi"]).all()


def test_readme_block_is_replaced_in_place(metrics, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{report.README_START}\nSTALE-BLOCK\n{report.README_END}\n\ntail\n")
    report.update_readme(metrics, readme)
    text = readme.read_text()
    assert text.startswith("# x\n") and text.endswith("\ntail\n") and "STALE-BLOCK" not in text
    assert report.readme_block(metrics) in text
    report.update_readme(metrics, readme)
    assert readme.read_text() == text  # idempotent
    readme.write_text("no block here\n")
    with pytest.raises(DataError, match="no generated results block"):
        report.update_readme(metrics, readme)


def test_readme_block_quotes_the_seed_spread_it_was_rendered_from(metrics):
    """Every figure of the block's reproduction paragraph is one of the metrics it renders."""
    block = report.readme_block(metrics)
    seeds = metrics["paper_seeds"]
    cv, hold = seeds["cv_accuracy"], seeds["holdout_accuracy"]
    assert f"{100 * cv['mean']:.2f} ± {100 * cv['sd']:.2f}" in block
    assert f"**{report.reproduction_verdict(seeds)}** {report.seed_spread_sentence(seeds)}" in block
    for seed, value in zip(seeds["seeds"], seeds["holdout_accuracy_per_seed"], strict=True):
        assert f"{100 * value:.2f}% (seed {seed})" in block
    assert f"{100 * hold['mean']:.2f} ± {100 * hold['sd']:.2f}% over {len(seeds['seeds'])}" in block
    assert f"{100 * (hold['max'] - hold['min']):.2f} points from the lowest" in block
    assert "epochs)" not in block  # no fixed figures of some other machine's run


def test_seed_spread_sentence_is_made_of_the_planted_figures():
    seeds = {
        "seeds": [1, 2, 3],
        "holdout_accuracy_per_seed": [0.9, 0.95, 0.8],
        "holdout_accuracy": {"mean": 0.8833, "sd": 0.0764, "min": 0.8, "max": 0.95},
    }
    assert report.seed_spread_sentence(seeds).startswith(
        "A single seed's figure is one draw: the paper-protocol holdout gives 90.00% (seed 1), "
        "95.00% (seed 2), 80.00% (seed 3); 88.33 ± 7.64% over 3 seeds, 15.00 points from the "
        "lowest to the highest."
    )
    with pytest.raises(ValueError, match=r"2 holdout accuracies for the seeds \[1, 2, 3\]"):
        report.seed_spread_sentence({**seeds, "holdout_accuracy_per_seed": [0.9, 0.95]})


def test_summary_says_how_much_survives_with_intervals(metrics):
    text = report.render_summary(metrics)
    c = metrics["honest_cv"]["cases"]
    bal = tables.with_interval(c["mean"]["balanced_accuracy"], c["ci95"]["balanced_accuracy"])
    assert f"At the level of patients, balanced accuracy is {bal}%" in text
    assert tables.with_interval(c["mean"]["recall_benign"], c["ci95"]["recall_benign"]) in text
    # the verdict's words follow the numbers it is rendered from, whichever way they fall
    seeds = metrics["paper_seeds"]
    cv, verdict = seeds["cv_accuracy"], report.reproduction_verdict(seeds)
    assert f"**{verdict}**" in text
    test = report.compare_with_paper(cv["mean"], cv["sd"], len(seeds["seeds"]))
    assert verdict.startswith("The paper's protocol reproduces: ") == test["consistent"]
    lo, hi = test["ci95"]
    assert f"{100 * cv['mean']:.2f} ± {100 * cv['sd']:.2f}% over {len(seeds['seeds'])} seeds" in (
        verdict
    )
    assert f"difference {100 * test['diff']:+.2f} points" in verdict
    assert f"95% interval [{100 * lo:+.2f}, {100 * hi:+.2f}]" in verdict


def _planted(metrics, **changes):
    planted = copy.deepcopy(metrics)
    for path, value in changes.items():
        *keys, last = path.split("/")
        node = planted
        for k in keys:
            node = node[k]
        node[last] = value
    return planted


def _seeds(mean, sd, n):
    """A planted ``paper_seeds`` part: CV accuracy over ``n`` seeds."""
    return {"cv_accuracy": {"mean": mean, "sd": sd}, "seeds": list(range(42, 42 + n))}


def test_compare_with_paper_is_welchs_t_on_both_spreads():
    # the paper: 97.26 with a population sd of 0.66 over 5 folds, i.e. a sample sd of
    # 0.66 * sqrt(5/4), so its squared standard error is 0.66**2 / 4
    a = report.compare_with_paper(0.9662, 0.0062, 5)
    assert a["diff"] == pytest.approx(-0.0064)
    assert a["se"] == pytest.approx(math.sqrt(0.0062**2 / 5 + 0.0066**2 / 4))
    assert a["df"] == pytest.approx(7.769, abs=1e-3)
    assert a["ci95"] == pytest.approx([-0.016391, 0.003591], abs=1e-6)
    assert a["consistent"] is True
    b = report.compare_with_paper(0.9651, 0.0064, 5)
    assert (b["diff"], b["se"]) == pytest.approx((-0.0075, 0.0043683), abs=1e-6)
    assert b["df"] == pytest.approx(7.843, abs=1e-3)
    assert b["ci95"] == pytest.approx([-0.017608, 0.002608], abs=1e-6)
    assert b["consistent"] is True  # the other machine's figures: the same verdict
    for mean, sd, n in [(0.9662, 0.0062, 5), (0.9651, 0.0064, 5), (0.95, 0.002, 20)]:
        welch = stats.ttest_ind_from_stats(
            mean, sd, n, 0.9726, 0.0066 * math.sqrt(5 / 4), 5, equal_var=False
        )
        assert report.compare_with_paper(mean, sd, n)["consistent"] == (welch.pvalue >= 0.05)
    # at sd 0.62 over 5 seeds the half-width is 1.00 point: the verdict flips below 96.26
    assert report.compare_with_paper(0.9627, 0.0062, 5)["consistent"] is True
    assert report.compare_with_paper(0.9625, 0.0062, 5)["consistent"] is False
    # planted tiny spreads on both sides: within 0.66 points, yet the interval excludes 0
    tight = report.compare_with_paper(0.9680, 0.0005, 50, paper_sd=0.0005, paper_k=50)
    assert tight["consistent"] is False and tight["ci95"][1] < 0


def test_compare_with_paper_quotes_bad_input():
    with pytest.raises(ValueError, match="at least 2 seeds .* n=1 seeds"):
        report.compare_with_paper(0.97, 0.01, 1)
    with pytest.raises(ValueError, match="paper_k=1 folds"):
        report.compare_with_paper(0.97, 0.01, 5, paper_k=1)
    with pytest.raises(ValueError, match="sd=-0.01 is not a finite sd"):
        report.compare_with_paper(0.97, -0.01, 5)
    with pytest.raises(ValueError, match="mean=nan is not a finite number"):
        report.compare_with_paper(float("nan"), 0.01, 5)
    with pytest.raises(ValueError, match="sd=0.0 and paper_sd=0.0: no spread"):
        report.compare_with_paper(0.97, 0.0, 5, paper_sd=0.0)


def test_reproduction_verdict_holds_only_within_the_papers_spread():
    # paper: 97.26 +/- 0.66 (5-fold CV); the verdict is the Welch interval of the difference
    assert report.reproduction_verdict(_seeds(0.9662, 0.0062, 5)) == (
        "The paper's protocol reproduces: 96.62 ± 0.62% over 5 seeds, consistent with the "
        "paper's 97.26 ± 0.66% (5 folds); difference -0.64 points, 95% interval "
        "[-1.64, +0.36] (Welch t, both spreads)."
    )
    assert report.reproduction_verdict(_seeds(0.9651, 0.0064, 5)).startswith(
        "The paper's protocol reproduces: 96.51 ± 0.64% over 5 seeds"
    )
    # more than 0.66 points below, but with a large spread over seeds: consistent
    wide = report.reproduction_verdict(_seeds(0.9600, 0.0200, 5))
    assert wide.startswith("The paper's protocol reproduces: ") and "-1.26 points" in wide
    # within 0.66 points, tiny spread, many seeds: the paper's own spread alone keeps the
    # half-width at t(0.975, 4) * 0.33 = 0.92 points, so this is consistent too
    tight = report.compare_with_paper(0.9680, 0.0001, 100)
    assert tight["consistent"] and tight["df"] == pytest.approx(4, abs=0.01)
    assert tight["ci95"][1] - tight["diff"] == pytest.approx(0.0033 * 2.776, abs=1e-5)
    assert report.reproduction_verdict(_seeds(0.9500, 0.0020, 20)) == (
        "The paper's protocol does not reproduce: 95.00 ± 0.20% over 20 seeds, below the "
        "paper's 97.26 ± 0.66% (5 folds); difference -2.26 points, 95% interval "
        "[-3.17, -1.35] (Welch t, both spreads)."
    )
    above = report.reproduction_verdict(_seeds(0.99, 0.006, 5))
    assert "above the paper's" in above and "+1.74 points" in above
    assert "[+0.75, +2.73]" in above
    with pytest.raises(ValueError, match="at least 2 seeds"):
        report.reproduction_verdict(_seeds(0.97, 0.01, 1))
    with pytest.raises(ValueError, match=r"4 CV accuracies for the 5 seeds \[42, 43"):
        report.reproduction_verdict({**_seeds(0.97, 0.01, 5), "cv_accuracy_per_seed": [0.97] * 4})


def _summary_of(tmp_path, cv, cv_balanced, shortcut, goal_margin, cv_sd=0.006):
    """The summary of the committed metrics.json copied into tmp with planted numbers."""
    planted = tmp_path / "metrics.json"
    planted.write_text((config.REPORTS / "metrics.json").read_text())
    m = json.loads(planted.read_text())
    seeds = m["paper_seeds"]
    seeds["seeds"] = [42, 43, 44, 45, 46]
    seeds["cv_accuracy"].update(mean=cv, sd=cv_sd)
    seeds["cv_accuracy_per_seed"] = seeds["holdout_accuracy_per_seed"] = [cv] * 5
    m["paper_seeds"]["cv_balanced_accuracy"]["mean"] = cv_balanced
    cases = m["honest_cv"]["cases"]
    cases["mean"]["balanced_accuracy"], cases["ci95"]["balanced_accuracy"] = 0.65, [0.60, 0.70]
    m["audit"]["thumbnail_shortcut_balanced_accuracy"] = shortcut
    m["audit"]["shape_shortcut_balanced_accuracy"] = 0.33
    for goal in m["beyond"]["goal"].values():
        goal["ours"] = goal["goal"] + goal_margin  # the stored "reached" flag is not read
    return report.render_summary(m)


def test_a_failing_metrics_file_flips_every_verdict_of_the_summary(tmp_path):
    passing = _summary_of(tmp_path, cv=0.9700, cv_balanced=0.97, shortcut=0.60, goal_margin=-0.1)
    failing = _summary_of(tmp_path, cv=0.8000, cv_balanced=0.66, shortcut=0.34, goal_margin=0.01)
    assert (
        "**The paper's protocol reproduces: 97.00 ± 0.60% over 5 seeds, consistent with the "
        "paper's 97.26 ± 0.66% (5 folds); difference -0.26 points, 95% interval "
        "[-1.25, +0.73] (Welch t, both spreads).**"
    ) in passing
    assert "reproduces:" not in failing
    assert (
        "**The paper's protocol does not reproduce: 80.00 ± 0.60% over 5 seeds, below the "
        "paper's 97.26 ± 0.66% (5 folds); difference -17.26 points, 95% interval "
        "[-18.25, -16.27] (Welch t, both spreads).**"
    ) in failing
    assert "**Why.**" in passing and "No gap shown" not in passing
    assert "**Why.**" not in failing
    assert (
        "**No gap shown.** The paper protocol's balanced accuracy (66.00%, CV over seeds) lies "
        "within the 95% interval of the patient-level one (65.00 [60.00, 70.00]%)"
    ) in failing
    assert "against the model's 65.00%: much of the honest figure" in passing
    assert "against the model's 65.00%: little of the honest figure" in failing
    assert "against the goal 85% (10.00 points short)" in passing
    assert "points short" not in failing and "against the goal 85% (reached)" in failing


def test_summary_sentences_follow_the_numbers(metrics):
    """A planted failing metrics.json changes the words, not just the figures."""
    held = _comparison(_difference(0.008, -0.04, 0.06), _difference(0.2, 0.05, 0.4, False))
    shown = _comparison(_difference(0.06, 0.01, 0.11), _difference(0.2, 0.05, 0.4, True))
    lines = report.comparison_lines(_planted(metrics, comparison=held))
    assert lines[1].startswith("* **Primary comparison**")  # it leads the comparisons
    assert "**not shown different**" in lines[1]
    assert "**better**" in report.comparison_lines(_planted(metrics, comparison=shown))[1]
    text = "\n".join(lines)
    width = metrics["bracket"]["paper"]["case"]["macro_f1"]["width"]
    moves = "more" if round(width, 4) > 0.008 else "less"
    assert f"move the answer {moves} than the choice of model" in text
    controls = {"equal_0.5x": 0.5, "equal_2x": 0.99}
    planted = _planted(metrics, **{"bracket/paper/slice/balanced_accuracy/leak_controls": controls})
    lines = "\n".join(report.comparison_lines(planted))
    assert "balanced accuracy per slice is 50.0% (0.5x: " in lines
    assert "1 of the 2 lie above every reading" in lines
    no_controls = {"bracket/paper/slice/balanced_accuracy/leak_controls": {}}
    assert "Leak controls" not in "\n".join(
        report.comparison_lines(_planted(metrics, **no_controls))
    )


def test_metrics_are_collected_from_parts_and_written(metrics, tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    write_json(metrics["audit"], folder / "audit.json")
    write_json(metrics["cases"], folder / "cases.json")
    write_json(metrics["protocols"]["paper"]["cv"], folder / "cv_paper.json")
    write_json(metrics["paper_seeds"], folder / "paper_seeds.json")
    for p in config.PROTOCOLS:
        write_json(metrics["protocols"][p]["holdout"], folder / f"holdout_{p}.json")
    prov = {k: metrics[k] for k in ("params", "seed", "git_commit", "created", "versions", "cpu")}
    honest = {"protocols": metrics["honest_cv"], "dataset": metrics["dataset"], "provenance": prov}
    write_json(honest, folder / "honest_cv.json")
    bracket = {k: metrics[k] for k in ("groupings", "bracket", "comparison", "nearest_training")}
    write_json(bracket, folder / "bracket.json")
    if "input_check" in metrics:
        write_json(metrics["input_check"], folder / "input_check.json")
    if "external" in metrics:
        write_json(metrics["external"], folder / "external.json")
    if "beyond" in metrics:  # 06's selection, and 07's study rule and shipped model
        beyond = json.loads(json.dumps(metrics["beyond"]))
        shipping = {"final": beyond["selected"].pop("final"), "study": beyond.pop("study")}
        beyond.update(paired=metrics["paired"], fold_choices=metrics["fold_choices"])
        write_json(beyond, folder / "beyond.json")
        write_json(shipping, folder / "shipping.json")
    collected = parts.collect_metrics({"SEED": 42}, folder)
    assert collected["parameters_file"] == {"SEED": 42}
    assert {k: v for k, v in collected.items() if k != "parameters_file"} == {
        k: v for k, v in metrics.items() if k != "parameters_file"
    }
    readme_before = config.README.read_text()
    monkeypatch.setenv("LUNGCT_REPORTS_DIR", str(tmp_path))
    written = report.write_reports()
    assert json.loads((tmp_path / "metrics.json").read_text()) == written
    assert (tmp_path / "summary.md").read_text() == report.render_summary(written)
    assert config.README.read_text() == readme_before  # only `make report` touches the README
    (folder / "audit.json").unlink()
    with pytest.raises(DataError, match="audit.json: missing"):
        parts.collect_metrics(None, folder)


def _rate(rate, lo, hi, flagged, rows, units):
    return {"rate": rate, "ci95": [lo, hi], "flagged": flagged, "rows": rows, "units": units}


def test_input_check_sentence_follows_its_rates(metrics):
    def planted(ct_rate, other_rate):
        by_set = {
            "held-out CT originals": _rate(ct_rate, 0.0, 0.03, 46, 5275, 109),
            "not CT, design part": _rate(0.97, 0.9, 1.0, 704, 725, 29),
            "not CT, held-out part": _rate(other_rate, 0.93, 1.0, 1250, 1250, 50),
        }
        check = {"rates": {name: {"mobilenet_v2": r, "paper": r} for name, r in by_set.items()}}
        return "\n".join(report.input_check_section({**metrics, "input_check": check}))

    assert "it meets both goals on the estimates, though the CT rate's interval reaches 3.00%" in (
        planted(0.0087, 1.0)
    )
    assert (
        "flag (refuse or warn about) 100.00 [93.00, 100.00]% of the 50 held-out non-CT images"
        in (planted(0.0087, 1.0))
    )
    assert "misses the goal on CT slices (" in planted(0.02, 1.0)
    assert "misses the goal on CT slices and non-CT images" in planted(0.02, 0.9)
    assert (
        report.input_check_section({k: v for k, v in metrics.items() if k != "input_check"}) == []
    )


def test_study_section_renders_the_rule_with_and_without_the_check(metrics):
    mean = {"accuracy": 0.8, "balanced_accuracy": 0.7, "macro_f1": 0.69, "recall_benign": 0.45}
    ci = {k: [v - 0.1, v + 0.1] for k, v in mean.items()}
    study = {
        "counts": {
            "selected (nested)": {
                "slices refused": 0.0087,
                "patients with no answer (mean per repeat)": 0.0,
            }
        },
        "case": {"selected (nested): every slice": {"mean": mean, "ci95": ci}},
    }
    planted = {**metrics, "beyond": {**metrics.get("beyond", {}), "study": study}}
    text = "\n".join(report.study_section(planted))
    assert "selected (nested): 0.87% of slices refused, 0.0 patients with no answer" in text
    assert "69.00 [59.00, 79.00]" in text
    assert report.study_section({"beyond": {}}) == []


def _numbers(text: str) -> Counter:
    return Counter(re.findall(r"\d+(?:\.\d+)?", text))


def _times(total, seconds, computed, cpu=None):
    """A planted ``run_times.json``; step names without digits, so every number is a figure."""
    times = {
        "notebooks": dict(zip(("eda", "training", "bracket"), seconds, strict=False)),
        "total": total,
        "results_cache": {"computed": computed, "recompute": False},
    }
    return times | ({"cpu": cpu} if cpu else {})


@pytest.mark.parametrize(
    ("total", "seconds", "computed", "cpu"),
    [
        (457.0, (30.4, 201.6), ["family_cv", "honest_cv", "beyond"], {"model": "Ours", "cores": 7}),
        (90.0, (12.0, 48.49, 29.5), [], {"model": "Other", "cores": 64}),
        (3725.0, (3600.0,), ["honest_cv"], None),
    ],
)
def test_run_time_sentence_takes_every_figure_from_the_times_given(total, seconds, computed, cpu):
    text = report.run_time_sentence(_times(total, seconds, computed, cpu))
    steps = [f"{s:.0f}" for s in seconds]
    expected = [f"{total / 60:.1f}", str(cpu["cores"]) if cpu else "?", *steps]
    expected += [str(len(computed))] if computed else []
    assert _numbers(text) == _numbers(" ".join(expected))  # no figure from anywhere else
    for name, s in zip(("eda", "training", "bracket"), steps, strict=False):
        assert f"{name} {s} s" in text  # each step beside its own seconds
    machine = cpu["model"] if cpu else prose.fill("report", "run_time_unknown_cpu")
    assert machine in text


def test_run_time_sentence_says_cold_only_when_a_fold_loop_was_computed():
    cold_passage = prose.fill("report", "run_time_cold", computed=2)
    warm_passage = prose.fill("report", "run_time_warm")
    cold = report.run_time_sentence(_times(300.0, (30.0,), ["family_cv", "honest_cv"]))
    warm = report.run_time_sentence(_times(300.0, (30.0,), []))
    assert cold_passage in cold and warm_passage not in cold
    assert warm_passage in warm and cold_passage not in warm
    assert cold.replace(cold_passage, warm_passage) == warm  # the cache is all that differs
    one = report.run_time_sentence(_times(300.0, (30.0,), ["honest_cv"]))
    assert prose.fill("report", "run_time_cold", computed=1) in one
    with pytest.raises(ValueError, match="no timed steps"):
        report.run_time_sentence(_times(300.0, (), []))


def test_run_time_block_is_replaced_in_place(tmp_path):
    times = _times(300.0, (30.0,), [], {"model": "Test CPU", "cores": 2})
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.RUN_TIME_START}\nstale\n{report.RUN_TIME_END}\nrest\n")
    report.update_run_time(times, readme)
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("\nrest\n")
    assert report.run_time_sentence(times) in text
    readme.write_text("no markers\n")
    with pytest.raises(DataError, match="no generated block"):
        report.update_run_time(times, readme)


def _difference(diff, lo, hi, rejected=None, se=0.02):
    """A planted paired difference; a secondary one's Holm interval agrees with ``rejected``."""
    d = {"diff": diff, "diff_ci95": [lo, hi], "excludes_zero": lo > 0 or hi < 0, "se": se}
    d |= {"coverage": 0.95, "detectable": 2.8 * se}
    if rejected is not None:
        wide = [lo, hi] if rejected else [min(lo, -0.01), max(hi, 0.01)]
        d["holm"] = {"rejected": rejected, "ci": wide, "coverage": 0.99}
    return d


def _comparison(primary, benign_recall):
    secondary = {
        "slice": {"accuracy": _difference(0.01, -0.02, 0.04, False)},
        "case": {
            "recall_benign": benign_recall,
            "accuracy": _difference(-0.05, -0.08, -0.02, True),
        },
    }
    return {
        "primary": {**comparisons.PRIMARY, **primary},
        "secondary": secondary,
        "patients_by_class": {"benign": 15, "malignant": 40, "normal": 55},
    }


def test_comparison_sentences_turn_with_the_planted_intervals():
    held = _comparison(_difference(0.008, -0.04, 0.06), _difference(0.2, 0.05, 0.4, False))
    primary, secondary = report.comparison_sentences(held)
    assert "**not shown different**" in primary and "+0.80 [-4.00, +6.00]" in primary
    assert "(95% interval over patients)" in primary and "at the 5% level" in primary
    assert "one benign patient of 15 is 6.7 points" in primary
    assert "worse: accuracy per patient -5.00 [-8.00, -2.00]" in secondary
    assert "not shown different: accuracy per slice +1.00" in secondary
    # Holm keeps benign recall: its adjusted interval reaches below 0
    kept = secondary.split("not shown different:")[1]
    assert "benign recall per patient +20.00 [-1.00, +40.00]" in kept
    shown = _comparison(_difference(0.06, 0.01, 0.11), _difference(0.2, 0.05, 0.4, True))
    primary, secondary = report.comparison_sentences(shown)
    assert "**better**" in primary
    assert "better: benign recall per patient +20.00 [+5.00, +40.00]" in secondary
    lower = _comparison(_difference(-0.06, -0.11, -0.01), _difference(0.2, 0.05, 0.4, True))
    assert "**worse**" in report.comparison_sentences(lower)[0]
    with pytest.raises(ValueError, match="lacks benign recall per patient"):
        report.comparison_sentences({**held, "secondary": {"slice": {}}})


def _nearest(median, per_repeat):
    return {"median": median, "per_repeat": per_repeat}


def test_nearest_training_sentence_turns_with_the_numbers():
    pushed = {
        "central": _nearest(0.80, [0.79, 0.80, 0.81]),
        "thumbnails_only": _nearest(0.83, [0.82, 0.83, 0.835]),
        "equal_1x": _nearest(0.9, [0.9]),
        "equal_2x": _nearest(0.95, [0.95]),
    }
    text = report.nearest_training_sentence(pushed)
    assert "lower by 0.030, more than the 0.020 the repeats move it: the feature-based" in text
    assert "leak controls, 0.900-0.950" in text
    noisy = {**pushed, "central": _nearest(0.80, [0.75, 0.80, 0.85])}
    assert "within the 0.100 the repeats move it: no push" in report.nearest_training_sentence(
        noisy
    )
    higher = {**pushed, "central": _nearest(0.86, [0.86, 0.861])}
    assert "higher by 0.030" in report.nearest_training_sentence(higher)
    same = {"central": _nearest(0.83 + 1e-9, [0.83]), "thumbnails_only": _nearest(0.83, [0.83])}
    assert "within the 0.000" in report.nearest_training_sentence(same)  # rounding cannot turn it
    with pytest.raises(ValueError, match="no 'thumbnails_only'"):
        report.nearest_training_sentence({"central": _nearest(0.8, [0.8])})


def test_leak_control_sentence_says_whether_cutting_through_patients_raises_the_answer():
    bal = {"central": 0.65, "max": 0.67, "leak_controls": {"equal_1x": 0.77, "equal_2x": 0.66}}
    text = report.leak_control_sentence(bal)
    assert "77.0% (1x: +12.0 points), 66.0% (2x: +1.0 points)" in text
    assert "1 of the 2 lie above every reading of the patients: cutting through" in text
    low = {**bal, "leak_controls": {"equal_1x": 0.66, "equal_2x": 0.67}}
    assert "none lies above every reading" in report.leak_control_sentence(low)
    with pytest.raises(ValueError, match="no leak control"):
        report.leak_control_sentence({**bal, "leak_controls": {}})


def _branches(metrics):
    """Planted copies of ``metrics`` that between them take every branch of the summary."""
    central = metrics["bracket"]["paper"]["slice"]["balanced_accuracy"]["central"]
    p = metrics["comparison"]["primary"]
    width = metrics["bracket"]["paper"][p["level"]][p["metric"]]["width"]
    nearest = metrics["nearest_training"]
    blind = nearest["thumbnails_only"]["median"]
    ct, other = "held-out CT originals", "not CT, held-out part"

    def rates(ct_rate, ct_high, other_rate, other_low):
        r = copy.deepcopy(metrics["input_check"]["rates"])
        r[ct]["mobilenet_v2"].update(rate=ct_rate, ci95=[0.0, ct_high])
        r[other]["mobilenet_v2"].update(rate=other_rate, ci95=[other_low, 1.0])
        return r

    def seeds(cv, balanced):
        s = copy.deepcopy(metrics["paper_seeds"])
        s["cv_accuracy"].update(mean=cv, sd=0.006)
        s["cv_balanced_accuracy"]["mean"] = balanced
        return s

    cases_ci = metrics["honest_cv"]["cases"]["ci95"]["balanced_accuracy"]
    return [
        metrics,
        _planted(metrics, paper_seeds=seeds(0.99, cases_ci[0] - 0.01)),  # above; a gap below
        _planted(metrics, paper_seeds=seeds(0.80, (sum(cases_ci) / 2))),  # below; within
        _planted(metrics, paper_seeds=seeds(0.97, round(central, 4))),  # like for like: stays
        _planted(metrics, **{"paper_seeds/cv_balanced_accuracy/mean": central - 0.1}),  # rises
        _planted(metrics, **{"comparison/primary/diff": round(width, 4)}),  # as much
        _planted(metrics, **{"comparison/primary/diff": width + 0.1}),  # less
        _planted(metrics, **{"audit/thumbnail_shortcut_balanced_accuracy": 0.0}),  # little
        _planted(metrics, **{"audit/thumbnail_shortcut_balanced_accuracy": 1.0}),  # much
        _planted(metrics, **{"bracket/paper/slice/balanced_accuracy/leak_controls": {"e": 0.0}}),
        _planted(metrics, **{"bracket/paper/slice/balanced_accuracy/leak_controls": {"e": 1.0}}),
        _planted(metrics, **{"nearest_training/central/median": blind - 0.5}),  # lower
        _planted(metrics, **{"nearest_training/central/median": blind + 0.5}),  # higher
        _planted(metrics, **{"nearest_training/central/median": blind}),  # within
        _planted(metrics, nearest_training={k: nearest[k] for k in ("central", "thumbnails_only")}),
        _planted(
            metrics, **{"beyond/goal/macro_f1/ours": 1.0, "beyond/goal/recall_benign/ours": 0}
        ),
        _planted(metrics, **{"input_check/rates": rates(0.001, 0.005, 0.99, 0.97)}),  # meets
        _planted(metrics, **{"input_check/rates": rates(0.005, 0.02, 0.96, 0.9)}),  # estimates
        _planted(metrics, **{"input_check/rates": rates(0.02, 0.03, 0.9, 0.8)}),  # misses both
        _planted(metrics, **{"input_check/corpus_passed": None}),  # not recorded
        _planted(metrics, **{"input_check/corpus_passed/items": {}}),  # no item
        _planted(metrics, **{"paper_seeds/cpu": {}}),  # no machine named
    ]


def test_every_passage_of_the_report_template_is_reached(metrics, monkeypatch):
    """Planted numbers take every branch: no passage of ``report.md`` is dead, and every
    passage a branch asks for exists (a misspelt key fails here, not in a later run)."""
    used, fill = set(), prose.fill

    def recording(name, key, /, **values):
        used.add((name, key))
        return fill(name, key, **values)

    monkeypatch.setattr(prose, "fill", recording)
    for planted in _branches(metrics):
        report.render_summary(planted)
        report.readme_block(planted)
    for computed, cpu in (([], {"model": "x", "cores": 1}), (["honest_cv"], None)):
        report.run_time_sentence(_times(60.0, (1.0,), computed, cpu))
    assert {("report", key) for key in prose.passages("report")} - used == set()
