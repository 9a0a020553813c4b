"""The bracket over the family of groupings: central estimate, range, tables."""

import numpy as np
import pandas as pd
import pytest

from lungct_utils import bracket, evaluate
from lungct_utils.config import CLASSES


def _summary(value: float) -> dict:
    """A repeated-CV summary whose every bracket metric is ``value`` (interval +-0.05)."""
    mean = {k: value for k in bracket.KEYS}
    ci = {k: [value - 0.05, value + 0.05] for k in bracket.KEYS}
    return {"mean": {**mean, "auc_macro": 0.9}, "ci95": ci, "case": {"mean": mean, "ci95": ci}}


def _groupings(values: dict[str, tuple[float, float]]) -> dict:
    return {
        name: {
            "n_groups": 100 + i,
            "paper": bracket.compact(_summary(paper)),
            "selected": bracket.compact(_summary(selected)),
        }
        for i, (name, (paper, selected)) in enumerate(values.items())
    }


def test_compact_keeps_the_bracket_keys_at_both_levels():
    out = bracket.compact(_summary(0.6))
    assert set(out) == {"slice", "case"}
    assert set(out["slice"]["mean"]) == set(bracket.KEYS)  # auc_macro is left out
    assert out["case"]["ci95"]["macro_f1"] == pytest.approx([0.55, 0.65])


def test_bracket_gives_the_central_value_and_the_range_over_the_family():
    fam = _groupings({"central": (0.6, 0.7), "coarse": (0.5, 0.9), "fine": (0.8, 0.65)})
    out = bracket.bracket(fam)
    paper = out["paper"]["slice"]["macro_f1"]
    assert paper["central"] == 0.6 and paper["ci95"] == pytest.approx([0.55, 0.65])
    assert (paper["min"], paper["min_at"], paper["max"], paper["max_at"]) == (
        0.5,
        "coarse",
        0.8,
        "fine",
    )
    assert paper["width"] == pytest.approx(0.3)
    assert out["selected"]["case"]["balanced_accuracy"]["max_at"] == "coarse"
    with pytest.raises(ValueError, match="'middle'"):
        bracket.bracket(fam, central="middle")


def test_leak_controls_stay_out_of_the_range_and_need_only_the_papers_model():
    fam = _groupings({"central": (0.6, 0.7), "fine": (0.65, 0.75), "equal_2x": (0.9, 0.9)})
    del fam["equal_2x"]["selected"]  # leak controls run the paper's model only
    out = bracket.bracket(fam, leak_controls=("equal_2x",))
    paper = out["paper"]["slice"]["macro_f1"]
    assert (paper["min"], paper["max"], paper["max_at"]) == (0.6, 0.65, "fine")
    assert paper["leak_controls"] == {"equal_2x": 0.9}
    assert out["selected"]["slice"]["macro_f1"]["leak_controls"] == {}
    # its groups are not patients: no per-patient figure of a leak control anywhere
    del fam["equal_2x"]["paper"]["case"]
    out = bracket.bracket(fam, leak_controls=("equal_2x",))
    assert out["paper"]["case"]["macro_f1"]["leak_controls"] == {}
    assert "equal_2x" not in bracket.family_frame(fam, "case")["grouping"].tolist()
    assert len(bracket.family_table(fam, "paper", "case")) == 2
    assert "equal_2x" not in bracket.family_table(fam, "selected").index
    assert len(bracket.family_table(fam, "paper")) == 3
    frame = bracket.family_frame(fam)
    assert not ((frame["grouping"] == "equal_2x") & (frame["model"] == "selected")).any()
    assert ((frame["grouping"] == "equal_2x") & (frame["model"] == "paper")).any()
    del fam["fine"]["selected"]  # a reading of the patients must have both models
    with pytest.raises(ValueError, match="'fine'"):
        bracket.bracket(fam, leak_controls=("equal_2x",))


def test_tables_show_every_grouping_and_mark_only_real_differences():
    fam = _groupings({"central": (0.6, 0.7), "runs": (0.5, 0.9)})
    table = bracket.family_table(fam, "selected", "case")
    assert table.index.tolist() == ["central reconstruction", "its runs, not merged"]
    assert table.loc["its runs, not merged", "macro-F1"] == "90.00 [85.00, 95.00]"
    assert "readings 50.0-60.0" in bracket.bracket_table(bracket.bracket(fam)).iloc[0, 0]
    real = {"a": 0.7, "b": 0.6, "diff": 0.1, "diff_ci95": [0.02, 0.2], "excludes_zero": True}
    unsure = {**real, "diff_ci95": [-0.02, 0.2], "excludes_zero": False}
    paired = bracket.paired_table({"probe": {"slice": {"macro_f1": real, "recall_benign": unsure}}})
    assert paired.loc["probe, per slice", "macro-F1"] == "+10.00 [+2.00, +20.00] *"
    assert paired.loc["probe, per slice", "benign recall"] == "+10.00 [-2.00, +20.00]"
    frame = bracket.family_frame(fam, "slice")
    assert len(frame) == 2 * 2 * 3 and set(frame["model"]) == {"paper", "selected"}


def test_level_table_reads_patient_scores_from_real_summaries():
    rng = np.random.default_rng(0)
    rows = []
    for r in range(2):
        y = np.repeat([0, 1, 2], 20)
        probs = rng.dirichlet([1, 1, 1], len(y))
        probs[np.arange(len(y)), y] += 1.0
        probs /= probs.sum(1, keepdims=True)
        frame = pd.DataFrame({"repeat": r, "id": np.arange(len(y)), "y": y})
        frame["case"] = [f"c{i // 4}" for i in range(len(y))]
        frame[[f"p_{c}" for c in CLASSES]] = probs
        rows.append(frame)
    summary = evaluate.repeated_cv_summary(pd.concat(rows), n_boot=50)
    table = bracket.level_table({"model": summary}, "case")
    expected = summary["case"]["mean"]["macro_f1"]
    assert table.loc["model", "macro-F1"].startswith(f"{100 * expected:.2f} [")


def test_paired_tables_mark_holm_verdicts_and_never_exploratory_rows():
    plain = {"a": 0.7, "b": 0.6, "diff": 0.1, "diff_ci95": [0.02, 0.2], "excludes_zero": True}
    kept = {**plain, "holm": {"rejected": False, "ci": [-0.01, 0.25], "coverage": 0.99}}
    called = {**plain, "holm": {"rejected": True, "ci": [0.01, 0.22], "coverage": 0.99}}
    table = bracket.paired_table({"v": {"slice": {"macro_f1": kept, "recall_benign": called}}})
    assert table.loc["v, per slice", "macro-F1"] == "+10.00 [-1.00, +25.00]"
    assert table.loc["v, per slice", "benign recall"] == "+10.00 [+1.00, +22.00] *"
    exploratory = bracket.paired_table({"v": {"slice": {"macro_f1": plain}}}, exploratory=True)
    assert exploratory.loc["v, per slice", "macro-F1"] == "+10.00 [+2.00, +20.00]"


def test_comparison_table_leads_with_the_primary_row():
    d = {"diff": 0.01, "diff_ci95": [-0.03, 0.05], "coverage": 0.95, "detectable": 0.08}
    d |= {"excludes_zero": False}
    worse = {**d, "diff": -0.1, "holm": {"rejected": True, "ci": [-0.2, -0.01], "coverage": 0.995}}
    block = {
        "primary": {"metric": "macro_f1", "level": "case", **d},
        "secondary": {"slice": {"accuracy": worse}},
    }
    table = bracket.comparison_table(block)
    assert table.index.tolist() == ["macro-F1, per patient", "accuracy, per slice"]
    assert table.iloc[0]["role"] == "primary" and table.iloc[0]["verdict"] == "not shown different"
    assert table.iloc[1]["verdict"] == "worse"
    assert table.iloc[1]["interval"] == "[-20.00, -1.00] (99.50%)"
