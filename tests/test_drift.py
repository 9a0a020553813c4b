"""Drift between two runs' metrics: what differs, by how much, and the README paragraph."""

import copy
import json

import pytest

from lungct_utils import config, drift
from lungct_utils.io_utils import DataError


def _metrics(cv=0.9662, holdout=0.9797):
    return {
        "git_commit": "abc",
        "cpu": {"model": "CPU A", "flags": ["avx2"]},
        "created": "today",
        "paper_seeds": {"cv_accuracy": {"mean": cv}, "seeds": [42, 43]},
        "protocols": {"paper": {"holdout": {"accuracy": holdout}}},
        "honest_cv": {
            p: {"mean": {"balanced_accuracy": 0.8}, "provenance": {"created": "x"}}
            for p in ("grouped", "grouped_near", "cases")
        },
        "beyond": {"selected": {"macro_f1": 0.66}},
        "groupings": {"central": {"selected": {"case": {"mean": {"macro_f1": 0.69}}}}},
        "audit": {"flag": True, "values": [1, 2]},
    }


def test_compare_counts_only_figures_that_moved():
    a, b = _metrics(), _metrics(cv=0.9651)
    b["created"], b["honest_cv"]["cases"]["provenance"]["created"] = "tomorrow", "y"
    parts = drift.compare(a, b)
    assert parts.loc["paper_seeds", "differ"] == 1
    assert parts.loc["paper_seeds", "max_abs_difference"] == pytest.approx(0.0011)
    assert parts.loc["audit", "compared"] == 2 and parts.loc["audit", "differ"] == 0
    assert "created" not in parts.index  # a run's description is not a figure
    table = drift.headlines(a, b)
    row = table.loc["paper protocol, 5-fold CV accuracy (mean over seeds)"]
    assert list(row) == ["96.62", "96.51", "-0.11"]


def test_paragraph_names_both_machines_and_what_is_identical():
    a, b = _metrics(), copy.deepcopy(_metrics(holdout=0.97))
    b["cpu"] = {"model": "CPU B", "flags": ["avx2", "avx512f"]}
    text = drift.paragraph(a, b)
    assert "CPU A (AVX2)" in text and "CPU B (AVX-512)" in text
    assert "Identical: audit, beyond, groupings, honest_cv, paper_seeds" in text
    assert "protocols (1 of 1 figures, up to 0.0097)" in text
    skipped = drift.paragraph(a, b, skip=("protocols",))
    assert "protocols (" not in skipped and "Not compared: protocols." in skipped


def test_write_updates_the_report_and_the_readme_block(tmp_path, monkeypatch):
    ref, cur = tmp_path / "ref.json", tmp_path / "cur.json"
    ref.write_text(json.dumps(_metrics()))
    cur.write_text(json.dumps(_metrics(cv=0.95)))
    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{drift.DRIFT_START}\nstale\n{drift.DRIFT_END}\nend\n")
    monkeypatch.setattr(config, "README", readme)
    monkeypatch.setenv("LUNGCT_REPORTS_DIR", str(tmp_path / "reports"))
    out = drift.write(ref, cur)
    assert out == tmp_path / "reports" / "drift.md" and "-1.62" in out.read_text()
    text = readme.read_text()
    assert "stale" not in text and "Measured drift" in text and text.endswith("\nend\n")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not a readable metrics.json"):
        drift.write(tmp_path / "bad.json", cur)
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(DataError, match="other.json: no figure"):
        drift.write(tmp_path / "other.json", cur)


def test_a_gap_of_float_summation_order_is_not_drift():
    a, b = _metrics(), _metrics(cv=0.9662 + 1e-15)
    assert drift.compare(a, b).loc["paper_seeds", "differ"] == 0
    assert drift.compare(a, _metrics(cv=0.9662 + 1e-9)).loc["paper_seeds", "differ"] == 1
