"""Provenance, atomic writes and the package finding its weights outside make."""

import os
import re
import subprocess
import sys

import pytest

from lungct_utils import config, io_utils
from lungct_utils.config import PAPER


def test_commit_is_pinned_by_the_environment(monkeypatch):
    monkeypatch.setenv(io_utils.COMMIT_ENV, "abc123")
    assert io_utils.git_commit() == "abc123"
    assert io_utils.provenance(PAPER)["git_commit"] == "abc123"


def test_commit_of_this_checkout_and_outside_one(monkeypatch, tmp_path):
    monkeypatch.delenv(io_utils.COMMIT_ENV, raising=False)
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", io_utils.git_commit())
    monkeypatch.setattr(io_utils, "ROOT", tmp_path)  # not a git checkout
    assert io_utils.git_commit() == "unknown"


def test_provenance_records_parameters_versions_and_cpu():
    prov = io_utils.provenance(PAPER.with_overrides(seed=7))
    assert prov["seed"] == 7 and prov["params"]["seed"] == 7
    for name in ("python", "numpy", "tensorflow", "keras", "ai-edge-litert", "scikit-learn"):
        assert prov["versions"][name] != "not installed", name
    assert prov["cpu"]["cores"] == os.cpu_count() and prov["cpu"]["model"]
    assert isinstance(prov["cpu"]["flags"], list)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    io_utils.write_json({"a": 1}, target)
    with pytest.raises(RuntimeError), io_utils.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_path_keeps_a_suffix_and_cleans_up(tmp_path):
    target = tmp_path / "model.tflite"
    with pytest.raises(RuntimeError), io_utils.atomic_path(target, suffix=".tflite") as tmp:
        assert tmp.suffix == ".tflite" and tmp.parent == tmp_path
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.weights
def test_plain_python_finds_the_weights_without_keras_home(imagenet_weights, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    env["HOME"] = str(tmp_path)  # no ~/.keras to fall back on
    code = (
        "from lungct_utils import features, config; "
        "print(config.keras_home()); print(features.imagenet_weights())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == str(config.DEFAULT_KERAS_HOME)
    if config.weights_path() == config.DEFAULT_KERAS_HOME / "models" / imagenet_weights.name:
        assert out[1] == str(imagenet_weights)


def test_missing_weights_give_one_line_naming_make_weights(tmp_path):
    env = dict(os.environ, KERAS_HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    code = "from lungct_utils import model; model.build_model()"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "ImageNet weights not found; run 'make weights'" in done.stderr
    assert "urlopen" not in done.stderr and "http" not in done.stderr


def test_console_sends_native_output_to_the_log_and_keeps_ours(tmp_path):
    log = tmp_path / "run.log"
    code = (
        "import os, warnings\n"
        "from pathlib import Path\n"
        "from lungct_utils.io_utils import console\n"
        f"with console(Path({str(log)!r}), python_too=False) as terminal:\n"
        "    os.write(2, b'native C++ logging\\n')\n"
        "    print('our table')\n"
        "    print('a progress line', file=terminal)\n"
        "    warnings.warn('library warning')\n"
        "print('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["our table", "a progress line", "after"]
    assert "native" not in done.stderr and "library warning" not in done.stderr
    text = log.read_text()
    assert "native C++ logging" in text and "library warning" in text
