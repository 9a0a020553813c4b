import dataclasses
import re

import pytest

from lungct_utils import config


def test_paper_settings_match_the_paper():
    p = config.PAPER
    assert (p.image_size, p.batch_size, p.epochs, p.patience) == (224, 32, 50, 5)
    assert (p.learning_rate, p.dense_units, p.dropout) == (1e-3, 128, 0.5)
    assert (p.train_frac, p.val_frac, p.test_frac, p.n_folds) == (0.70, 0.15, 0.15, 5)
    assert dict(p.augmented_counts) == {"benign": 1201, "malignant": 1205, "normal": 1203}
    assert sum(p.augmented_counts.values()) == 3609
    assert p.restore_best_weights is False


def test_paper_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.PAPER.seed = 1
    with pytest.raises(TypeError):
        config.PAPER.augmented_counts["benign"] = 5


def test_overrides_accept_upper_case_and_ignore_none():
    cfg = config.PAPER.with_overrides(SEED=7, EPOCHS=None, batch_size=16)
    assert (cfg.seed, cfg.epochs, cfg.batch_size) == (7, 50, 16)
    assert config.PAPER.seed == 42


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("dropout", 1.5),
        ("batch_size", 0),
        ("preprocess", "caffe"),
        ("test_frac", 1.2),
        ("seed", -1),
    ],
)
def test_bad_settings_raise_value_error_quoting_the_value(name, value):
    with pytest.raises(ValueError, match=re.escape(f"{name}={value!r}")):
        config.PAPER.with_overrides(**{name: value})


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match="'LERNING_RATE'"):
        config.PAPER.with_overrides(LERNING_RATE=0.1)


def test_data_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.delenv("LUNGCT_DATA_DIR", raising=False)
    assert config.data_dir() == config.ROOT / "data" / "raw" / "iq-othnccd"
    monkeypatch.setenv("LUNGCT_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()


def test_weights_path_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert config.weights_path().parent == tmp_path / "models"
    assert config.weights_path().name.endswith("_1.0_224_no_top.h5")


def test_keras_home_defaults_to_the_repository_cache(monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    assert config.keras_home() == config.ROOT / ".cache" / "keras"


def test_reports_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LUNGCT_REPORTS_DIR", raising=False)
    assert config.reports_dir() == config.REPORTS
    monkeypatch.setenv("LUNGCT_REPORTS_DIR", str(tmp_path / "r"))
    assert config.reports_dir() == tmp_path / "r" and (tmp_path / "r").is_dir()
    assert config.figures_dir() == tmp_path / "r" / "figures"


def test_split_path_and_cv_repeats_are_checked():
    assert config.split_path("cases").name == "splits_cases.csv"
    with pytest.raises(ValueError, match="'patients'"):
        config.split_path("patients")
    with pytest.raises(ValueError, match="cv_repeats=0"):
        config.PAPER.with_overrides(cv_repeats=0)
