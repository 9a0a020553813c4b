"""The fold loop: one predictions frame in the folds' order, whatever the worker processes."""

import os
import uuid

import numpy as np
import pandas as pd
import pytest

from lungct_utils import crossval
from lungct_utils.evaluate import PROB_COLUMNS

ROWS = pd.DataFrame(
    {
        "id": [f"img{i}" for i in range(12)],
        "y": np.arange(12) % 3,
        "case": np.arange(12) // 2,
    }
)
#: Deliberately not sorted: the frame follows this order.
FOLDS = [(1, 0), (0, 1), (0, 0), (1, 1), (2, 0)]


def _test_rows(repeat, fold):
    """A fold's test positions (a fixed shuffle per fold)."""
    rng = np.random.default_rng(10 * repeat + fold)
    return rng.permutation(12)[: 3 + fold]


def _probs(repeat, fold, test):
    """Probabilities that tell the fold and the row apart."""
    logits = np.stack([test, test * 0.5 + repeat, np.full(len(test), fold)], axis=1)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _fit_predict(repeat, fold):
    test = _test_rows(repeat, fold)
    return test, _probs(repeat, fold, test)


def test_the_frame_lists_each_folds_test_rows_in_the_given_order():
    frame = crossval.cv_predictions(_fit_predict, ROWS, FOLDS, progress=False)
    assert list(frame.columns) == ["repeat", "fold", "id", "y", "case", *PROB_COLUMNS]
    expected = pd.concat(
        [
            pd.DataFrame(
                {
                    "repeat": r,
                    "fold": k,
                    "id": ROWS["id"].to_numpy()[_test_rows(r, k)],
                    "y": ROWS["y"].to_numpy()[_test_rows(r, k)],
                    "case": ROWS["case"].to_numpy()[_test_rows(r, k)],
                    **dict(zip(PROB_COLUMNS, _probs(r, k, _test_rows(r, k)).T, strict=True)),
                }
            )
            for r, k in FOLDS
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(frame, expected)


def test_worker_processes_give_the_same_frame_as_one_process():
    here = crossval.cv_predictions(_fit_predict, ROWS, FOLDS, progress=False, seconds=True)
    there = crossval.cv_predictions(_fit_predict, ROWS, FOLDS, n_jobs=2, seconds=True)
    assert list(there.columns[:3]) == ["repeat", "fold", "seconds"]
    assert (there["seconds"] >= 0).all()
    assert there.groupby(["repeat", "fold"])["seconds"].nunique().eq(1).all()  # one per fold
    pd.testing.assert_frame_equal(here.drop(columns="seconds"), there.drop(columns="seconds"))


def _kept():
    return {"pid": os.getpid(), "token": uuid.uuid4().hex, "folds": []}


def _record(kept, repeat, fold):
    kept["folds"].append((repeat, fold))
    return kept["pid"], kept["token"], list(kept["folds"])


def test_a_process_makes_its_worker_once_for_all_its_folds():
    for n_jobs in (1, 2):
        answers = crossval.run_folds(
            _record, FOLDS, worker=_kept, n_jobs=n_jobs, progress=n_jobs == 2
        )
        by_worker = {}
        for (pid, kept, seen), _ in answers:
            by_worker.setdefault((pid, kept), []).append(seen)
        assert len(by_worker) == n_jobs
        for j, runs in enumerate(by_worker.values()):
            chunk = FOLDS[j::n_jobs]  # interleaved chunks, each run in order
            assert runs == [chunk[: i + 1] for i in range(len(chunk))]
        if n_jobs == 1:
            assert answers[0][0][0] == os.getpid()  # one job runs here
        else:
            assert os.getpid() not in {pid for pid, _ in by_worker}


def test_several_models_on_the_same_test_rows_give_a_frame_each():
    def fit_predict(repeat, fold):
        test, probs = _fit_predict(repeat, fold)
        return test, {"plain": probs, "flipped": probs[:, ::-1]}

    frames = crossval.cv_predictions(fit_predict, ROWS, FOLDS, progress=False)
    assert list(frames) == ["plain", "flipped"]
    plain = crossval.cv_predictions(_fit_predict, ROWS, FOLDS, progress=False)
    pd.testing.assert_frame_equal(frames["plain"], plain)
    np.testing.assert_array_equal(
        frames["flipped"][PROB_COLUMNS].to_numpy(), plain[PROB_COLUMNS].to_numpy()[:, ::-1]
    )


def test_the_fold_loop_rejects_what_it_cannot_run():
    with pytest.raises(ValueError, match="got 0"):
        crossval.run_folds(_fit_predict, FOLDS, n_jobs=0)
    with pytest.raises(ValueError, match="distinct"):
        crossval.run_folds(_fit_predict, [(0, 0), (0, 0)], progress=False)
    with pytest.raises(ValueError, match="distinct"):
        crossval.run_folds(_fit_predict, [], progress=False)
    with pytest.raises(ValueError, match=r"lack the columns \['case'\]"):
        crossval.cv_predictions(_fit_predict, ROWS.drop(columns="case"), FOLDS, progress=False)

    def short(repeat, fold):
        test, probs = _fit_predict(repeat, fold)
        return test, probs[1:]

    with pytest.raises(ValueError, match=r"fold \(1, 0\) has 3 test rows"):
        crossval.cv_predictions(short, ROWS, FOLDS, progress=False)
