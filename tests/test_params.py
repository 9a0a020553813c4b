"""One parameters file: every experiment parameter in notebooks/params.yaml, applied by each
notebook that declares it, and no notebook rebuilding the set or splits another one made."""

import ast
import dataclasses
import json

import nbformat
import pytest

from lungct_utils import config, pipeline
from lungct_utils.io_utils import DataError, LungCTError
from lungct_utils.runner import declared, read_params

PARAMS = config.NOTEBOOKS / "params.yaml"
NOTEBOOKS = sorted(config.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
#: Parameters that only change what is displayed or how fast it runs, not a result.
DISPLAY_ONLY = {"N_SAMPLES", "N_PAIRS", "N_JOBS"}
SETTINGS = {f.name.upper() for f in dataclasses.fields(config.PaperConfig)}


def _defaults(path) -> dict:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {
        t.id: ast.literal_eval(node.value)
        for node in ast.parse(cell.source).body
        for t in node.targets
    }


def _config_keywords(path) -> set[str]:
    """Keyword names of the notebook's ``prepared_config(...)`` / ``with_overrides(...)`` calls."""
    nb = nbformat.read(path, as_version=4)
    names = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "prepared_config",
                "with_overrides",
            ):
                names |= {k.arg for k in node.keywords if k.arg and k.arg.isupper()}
    return names


def test_every_experiment_parameter_lives_in_the_params_file_with_the_notebook_default():
    given = read_params(PARAMS)
    for path in NOTEBOOKS:
        for name, default in _defaults(path).items():
            if name in DISPLAY_ONLY or name == "PROGRESS":
                continue
            assert name in given, f"{path.name}: {name} is not in {PARAMS.name}"
            value = list(default) if isinstance(default, tuple) else default
            assert given[name] == value, f"{path.name}: {name}={default!r}, params.yaml {value!r}"
    assert given["PROGRESS"] is False  # make report runs quietly
    every = set().union(*(declared(p) for p in NOTEBOOKS))
    assert set(given) <= every, set(given) - every


def test_each_notebook_applies_every_setting_it_declares():
    """DROPOUT: 0.3 in a parameters file reaches every notebook that trains a head."""
    for path in NOTEBOOKS:
        settings = declared(path) & SETTINGS
        assert settings <= _config_keywords(path), (path.name, settings - _config_keywords(path))
    trainers = [p for p in NOTEBOOKS if p.stem[:2] in ("03", "05", "06", "08")]
    for path in trainers:
        assert {"SEED", "HEAD", "DENSE_UNITS", "DROPOUT", "EPOCHS"} <= declared(path), path.name


def test_only_notebook_02_builds_the_set_and_declares_its_ranges():
    ranges = {"MAX_ROTATION_DEG", "MAX_SHIFT_FRAC", "MAX_ZOOM"}
    for path in NOTEBOOKS:
        text = path.read_text()
        builds = "pipeline.prepare(" in text
        assert builds == (path.stem == "02_preprocessing"), path.name
        assert (ranges <= declared(path)) == builds, path.name


def test_params_file_is_read_and_checked(tmp_path):
    assert read_params(None) == {}
    good = tmp_path / "p.yaml"
    good.write_text("SEED: 7\nDENSE_UNITS: 64\n")
    assert read_params(good) == {"SEED": 7, "DENSE_UNITS": 64}
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 7\n")
    with pytest.raises(LungCTError, match="bad.yaml: expected a mapping of UPPER_CASE"):
        read_params(bad)
    with pytest.raises(LungCTError, match="none.yaml: parameters file not found"):
        read_params(tmp_path / "none.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("SEED: [1\n")
    with pytest.raises(LungCTError, match="not valid YAML"):
        read_params(broken)


def _prepared(tmp_path, **settings):
    made = {**config.PAPER.to_dict(), **settings}
    keys = ("augmented_counts", "max_rotation_deg", "max_shift_frac", "max_zoom", "cv_repeats")
    fingerprint = {"settings": {k: made[k] for k in (*keys, "seed")}}
    (tmp_path / config.PREPARE_JSON.name).write_text(json.dumps({"fingerprint": fingerprint}))
    return tmp_path


def test_prepared_config_takes_the_set_on_disk_and_the_notebook_s_own_settings(tmp_path):
    folder = _prepared(tmp_path, max_zoom=0.1, seed=7)
    cfg = pipeline.prepared_config(folder, SEED=7, DROPOUT=0.3, CV_REPEATS=5)
    assert (cfg.max_zoom, cfg.seed, cfg.dropout, cfg.cv_repeats) == (0.1, 7, 0.3, 5)
    assert cfg.max_rotation_deg == config.PAPER.max_rotation_deg


@pytest.mark.parametrize(
    "override, message",
    [
        ({"SEED": 42}, r"SEED=42, but .* made with SEED=7: .*make report PARAMS="),
        ({"SEED": 7, "MAX_ZOOM": 0.05}, r"MAX_ZOOM=0.05, but .* made with MAX_ZOOM=0.1"),
        ({"SEED": 7, "CV_REPEATS": 2}, r"CV_REPEATS=2, but .* made with CV_REPEATS=5"),
    ],
)
def test_prepared_config_stops_on_a_setting_the_set_on_disk_was_not_made_with(
    tmp_path, override, message
):
    folder = _prepared(tmp_path, max_zoom=0.1, seed=7)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(DataError, match=message):
        pipeline.prepared_config(folder, **override)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing rebuilt


def test_prepared_config_without_a_set_says_to_run_02(tmp_path):
    with pytest.raises(DataError, match="no augmented set yet; run notebook 02"):
        pipeline.prepared_config(tmp_path)


def test_one_notebook_takes_its_own_names_from_the_whole_params_file(tmp_path):
    """`report 05_cross_validation.ipynb --params ...`: names other notebooks declare are fine."""
    from lungct_utils.runner import _parameters

    five = next(p for p in NOTEBOOKS if p.stem.startswith("05"))
    mine = tmp_path / "my.yaml"
    mine.write_text(PARAMS.read_text() + "DROPOUT: 0.3\n")  # the later value wins in YAML
    got = _parameters([five], mine)[five]
    speed_only = DISPLAY_ONLY - set(read_params(PARAMS))  # N_JOBS: each notebook's default
    assert set(got) == declared(five) - speed_only
    assert got["DROPOUT"] == 0.3 and got["PROGRESS"] is False
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("DROPOUTS: 0.3\n")
    with pytest.raises(LungCTError, match=r"no notebook declares \['DROPOUTS'\]"):
        _parameters([five], unknown)
