"""The results cache of the fold loops: every key part recomputes, a stored result is read."""

import json

import numpy as np
import pandas as pd
import pytest

from lungct_utils import cache, evaluate, splits, train
from lungct_utils.config import PAPER


@pytest.fixture(autouse=True)
def _results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LUNGCT_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv(cache.RECOMPUTE_ENV, raising=False)


def loop_a(x):
    return x.sum()


def loop_b(x):
    return x.sum() + 0


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def _inputs(tmp_path):
    groupings = tmp_path / "groupings.csv"
    if not groupings.exists():
        groupings.write_text("path,central\na.png,c1\n")
    return {
        "features": np.arange(12, dtype="f4").reshape(4, 3),
        "manifest": pd.DataFrame({"id": [1, 2], "fold_0": [0, 1]}),
        "groupings": groupings,
        "config": PAPER.to_dict(),
        "cases": np.array(["c1", "c2"], dtype=object),
    }


def test_digest_changes_with_every_key_part(tmp_path):
    base = _inputs(tmp_path)
    key = cache.digest({"inputs": base, "code": [loop_a, splits]})
    assert key == cache.digest({"inputs": _inputs(tmp_path), "code": [loop_a, splits]})
    changed = [
        {**base, "features": base["features"] + np.float32(1e-6)},
        {**base, "features": base["features"].astype("f8")},  # same values, other bytes
        {**base, "manifest": base["manifest"].assign(fold_0=[1, 0])},
        {**base, "config": PAPER.with_overrides(dropout=0.3).to_dict()},
        {**base, "cases": np.array(["c1", "c3"], dtype=object)},
    ]
    for inputs in changed:
        assert cache.digest({"inputs": inputs, "code": [loop_a, splits]}) != key
    assert cache.digest({"inputs": base, "code": [loop_b, splits]}) != key  # the loop's source
    assert cache.digest({"inputs": base, "code": [loop_a, train]}) != key  # a module's file
    (tmp_path / "groupings.csv").write_text("path,central\na.png,c2\n")
    assert cache.digest({"inputs": _inputs(tmp_path), "code": [loop_a, splits]}) != key


def test_library_versions_and_thread_settings_are_part_of_the_key(monkeypatch):
    before = cache.environment()
    monkeypatch.setattr(cache, "versions", lambda: {"python": "3.11", "tensorflow": "9.9"})
    assert cache.environment()["versions"] != before["versions"]
    monkeypatch.undo()
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert cache.environment()["env"] != before["env"]
    monkeypatch.setattr(cache.config, "THREADS", before["threads"] + 1)
    assert cache.environment()["threads"] != before["threads"]


def test_a_stored_result_is_read_and_a_changed_key_recomputes(tmp_path, monkeypatch):
    compute = Counter(pd.DataFrame({"p": [0.25, 0.75]}))
    inputs = _inputs(tmp_path)
    first = cache.cached("fold_loop", compute, inputs, [loop_a])
    second = cache.cached("fold_loop", compute, inputs, [loop_a])
    assert compute.calls == 1
    pd.testing.assert_frame_equal(first, second)
    cache.cached("fold_loop", compute, {**inputs, "config": {"seed": 7}}, [loop_a])
    cache.cached("fold_loop", compute, inputs, [loop_b])
    assert compute.calls == 3
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    cache.cached("fold_loop", compute, inputs, [loop_a])
    assert compute.calls == 4
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setenv(cache.RECOMPUTE_ENV, "1")
    cache.cached("fold_loop", compute, inputs, [loop_a])
    assert compute.calls == 5
    assert len(list((cache.results_dir() / "fold_loop").glob("*.pkl"))) == 4


def test_a_failed_computation_or_write_leaves_nothing_behind(tmp_path):
    def broken():
        raise RuntimeError("kernel died")

    with pytest.raises(RuntimeError):
        cache.cached("broken", broken, _inputs(tmp_path), [loop_a])
    with pytest.raises((AttributeError, TypeError, ValueError)):  # a result pickle refuses
        cache.cached("broken", lambda: lambda: 1, _inputs(tmp_path), [loop_a])
    assert [p.name for p in cache.results_dir().rglob("*") if p.is_file()] == []
    with pytest.raises(ValueError, match="'bad name'"):
        cache.cached("bad name", broken, _inputs(tmp_path), [loop_a])
    with pytest.raises(ValueError, match="got {}"):
        cache.digest({})


def test_a_cached_fold_loop_scores_like_a_fresh_one(tmp_path):
    """A fold loop read from the cache gives the same summary as the loop run afresh."""
    rng = np.random.default_rng(0)
    labels = np.array(["benign", "malignant", "normal"])[np.arange(90) % 3]
    x = (rng.normal(0, 1, (90, 1280)) + (np.arange(90) % 3)[:, None]).astype("f4")
    cases = np.arange(90) % 30  # each case holds one class
    cfg = PAPER.with_overrides(epochs=3)

    def loop():
        rows, trainer = [], train.Trainer(cfg)
        for k in range(3):
            roles = np.where(cases // 3 % 3 == k, "test", "train").astype(object)
            roles[(roles == "train") & (cases % 5 == 0)] = "val"
            fit = trainer.fit_fold(x, labels, roles)
            frame = {"repeat": 0, "fold": k, "y": fit.test % 3, "case": cases[fit.test]}
            rows.append(pd.DataFrame(frame | {f"p_{i}": fit.probs[:, i] for i in range(3)}))
        return pd.concat(rows, ignore_index=True).rename(
            columns=dict(zip(["p_0", "p_1", "p_2"], evaluate.PROB_COLUMNS, strict=True))
        )

    inputs = {"features": x, "labels": labels, "config": cfg.to_dict()}
    fresh = cache.cached("tiny_cv", loop, inputs, [loop])
    stored = cache.cached("tiny_cv", lambda: pytest.fail("recomputed"), inputs, [loop])
    a = evaluate.repeated_cv_summary(fresh, n_boot=50)
    b = evaluate.repeated_cv_summary(stored, n_boot=50)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_a_module_key_part_covers_the_package_modules_it_uses(monkeypatch):
    from lungct_utils import heads

    used = cache.package_modules(heads)
    assert {"lungct_utils.heads", "lungct_utils.evaluate", "lungct_utils.splits"} <= set(used)
    assert "lungct_utils.train" not in used  # heads does not train the paper's head
    key = cache.digest({"code": [heads]})
    original = cache.module_source

    def edited(name):  # evaluate.py as if its scoring had changed
        return original(name) + (b"# changed" if name == "lungct_utils.evaluate" else b"")

    monkeypatch.setattr(cache, "module_source", edited)
    assert cache.digest({"code": [heads]}) != key


def test_the_run_counts_results_rewritten_in_place_as_computed(tmp_path, monkeypatch):
    import os

    from lungct_utils import runner as notebooks

    stored = cache.results_dir() / "honest_cv" / "key.pkl"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"old")
    before = notebooks._stored_results()
    assert notebooks._stored_results() == before  # read, not rewritten: not computed
    stored.write_bytes(b"new")  # RECOMPUTE=1 rewrites the same key
    os.utime(stored, ns=(before[stored] + 10**9, before[stored] + 10**9))
    fresh = cache.results_dir() / "family_cv" / "key.pkl"
    fresh.parent.mkdir()
    fresh.write_bytes(b"new")
    assert notebooks._computed(before, notebooks._stored_results()) == ["family_cv", "honest_cv"]
    assert notebooks._computed(before, before) == []
