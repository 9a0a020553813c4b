"""The hand-off between notebooks: metric parts and saved predictions, in temporary folders."""

import json

import pandas as pd
import pytest

from lungct_utils import config, parts
from lungct_utils.io_utils import DataError, write_json


@pytest.fixture
def reports(tmp_path, monkeypatch):
    monkeypatch.setenv("LUNGCT_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path / "reports"


def test_a_saved_part_is_loaded_back_from_this_runs_folder(reports):
    path = parts.save_part("holdout_cases", {"accuracy": 0.8, "per_class": {"benign": [1, 2]}})
    assert path == reports / "metrics" / "holdout_cases.json"
    assert parts.has_part("holdout_cases") and not parts.has_part("holdout_paper")
    assert parts.load_part("holdout_cases") == {"accuracy": 0.8, "per_class": {"benign": [1, 2]}}
    assert parts.load_part("holdout_cases", reports / "metrics")["accuracy"] == 0.8
    with pytest.raises(DataError, match=r"holdout_paper.json: missing; run the notebooks"):
        parts.load_part("holdout_paper")


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", None, 3])
def test_a_name_that_is_no_plain_file_stem_is_refused(reports, name):
    with pytest.raises(ValueError, match=f"name={name!r} is not a plain file stem"):
        parts.save_part(name, {})
    with pytest.raises(ValueError, match="is not a plain file stem"):
        parts.predictions_path(name)
    assert not (reports / "metrics").exists() or not any((reports / "metrics").iterdir())


def test_an_optional_part_is_read_from_the_committed_studies(tmp_path, monkeypatch, reports):
    monkeypatch.setattr(config, "STUDIES", tmp_path / "committed")
    assert parts.load_optional_part("study_finetune") is None
    (tmp_path / "committed").mkdir()
    (tmp_path / "committed" / "study_finetune.json").write_text('{"macro_f1": 0.7}')
    parts.save_part("study_finetune", {"macro_f1": 0.1})  # this run's folder is not read
    assert parts.load_optional_part("study_finetune") == {"macro_f1": 0.7}


def test_predictions_round_trip_through_the_interim_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "INTERIM", tmp_path / "interim")
    preds = pd.DataFrame(
        {"id": ["a", "b"], "repeat": [0, 1], "case": ["c1", "c2"], "p_benign": [0.25, 0.5]}
    )
    path = parts.save_predictions("cv_cases", preds)
    assert path == tmp_path / "interim" / "predictions" / "cv_cases.csv"
    pd.testing.assert_frame_equal(parts.load_predictions("cv_cases"), preds)
    with pytest.raises(DataError, match=r"beyond_selected.csv: missing"):
        parts.load_predictions("beyond_selected")


def test_the_shipping_part_completes_the_selection_part(tmp_path):
    """06 saves the selection, 07 the study rule and the shipped model: metrics join them."""
    committed = parts.collect_metrics(folder=config.REPORTS / "metrics")["beyond"]
    folder = tmp_path / "metrics"
    folder.mkdir()
    holdouts = [f"holdout_{p}" for p in config.PROTOCOLS]
    for name in (*parts.REQUIRED, *holdouts):
        write_json(parts.load_part(name, config.REPORTS / "metrics"), folder / f"{name}.json")
    selection = json.loads(json.dumps(committed))
    final, study = selection["selected"].pop("final"), selection.pop("study")
    write_json({**selection, "paired": {}, "fold_choices": []}, folder / "beyond.json")
    with pytest.raises(DataError, match="shipping.json: missing"):
        parts.collect_metrics(folder=folder)  # 06 ran, 07 did not: no half-made metrics
    write_json({"final": final, "study": study}, folder / "shipping.json")
    joined = parts.collect_metrics(folder=folder)["beyond"]
    assert joined["selected"]["final"] == committed["selected"]["final"]
    assert joined["study"] == committed["study"]
