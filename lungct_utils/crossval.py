"""The fold loop: every (repeat, fold) of a cross-validation, in worker processes.

A notebook states what one fold does, ``fit_predict(repeat, fold)`` (its roles, what it
trains, the test rows it predicts), and :func:`cv_predictions` runs it for every fold and
returns the predictions frame the scoring reads
(:func:`~lungct_utils.evaluate.repeated_cv_summary`): one row per test row of every fold,

    repeat, fold, [seconds,] id, y, case, p_benign, p_malignant, p_normal

in the order of the folds given, each fold's rows in the order ``fit_predict`` returned
them, whatever ``n_jobs``.

Folds are independent, so :func:`run_folds` runs them in ``n_jobs`` worker processes
(joblib), each process one chunk of the folds: ``worker`` (e.g.
:func:`~lungct_utils.train.worker_trainer`) makes what a process keeps for all its folds,
a trainer whose compiled graphs serve every fold, and ``fit_predict`` receives it first.
Chunks interleave the folds (process ``j`` runs folds ``j, j + n_jobs, ...``), so that the
processes finish at about the same time. A fold's answer does not depend on the process
that ran it (``tests/test_train.py`` compares the weights; ``tests/test_crossval.py`` the
frames).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm import tqdm

from .evaluate import PROB_COLUMNS

#: The columns of ``rows`` that :func:`predictions_frame` copies for each test row.
ROW_COLUMNS = ("id", "y", "case")


def _chunks(folds: list, n_jobs: int) -> list[list]:
    """``n_jobs`` interleaved chunks of the folds (fewer when there are fewer folds)."""
    return [folds[j::n_jobs] for j in range(min(n_jobs, len(folds)))]


def _run_chunk(fit_predict: Callable, worker: Callable | None, chunk: list, ticks) -> list:
    """One process's folds: ``worker()`` once, then every fold, timed; a tick per fold."""
    kept = None if worker is None else worker()
    out = []
    for repeat, fold in chunk:
        start = time.perf_counter()
        if worker is None:
            answer = fit_predict(repeat, fold)
        else:
            answer = fit_predict(kept, repeat, fold)
        out.append((answer, time.perf_counter() - start))
        if ticks is not None:
            ticks.put(1)
    return out


def _advance(ticks, bar) -> None:
    """Move the bar one step per tick until the closing ``None``."""
    for _ in iter(ticks.get, None):
        bar.update()


def _progress_ticks(stack: contextlib.ExitStack, total: int, desc: str, processes: int):
    """A queue whose every item moves a tqdm bar one step, closed with ``stack``.

    Args:
        stack: closes the bar, the thread that moves it and the queue's manager.
        total: the bar's steps.
        desc: its label.
        processes: processes that put into the queue (several: a manager's queue).

    Returns:
        The queue.
    """
    bar = stack.enter_context(tqdm(total=total, desc=desc))
    if processes > 1:  # spawned, not forked: this process may run TensorFlow's threads
        ticks = stack.enter_context(multiprocessing.get_context("spawn").Manager()).Queue()
    else:
        ticks = queue.SimpleQueue()
    pump = threading.Thread(target=_advance, args=(ticks, bar), daemon=True)
    pump.start()
    stack.callback(pump.join)
    stack.callback(ticks.put, None)
    return ticks


def run_folds(
    fit_predict: Callable,
    folds: Sequence[tuple],
    *,
    worker: Callable[[], object] | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    desc: str = "folds",
) -> list[tuple[object, float]]:
    """Run ``fit_predict`` for every fold, ``n_jobs`` chunks of the folds at once.

    Args:
        fit_predict: ``fit_predict(repeat, fold)``, or ``fit_predict(kept, repeat, fold)``
            with ``worker``; what it returns is the fold's answer (it must pickle when
            ``n_jobs > 1``).
        folds: ``(repeat, fold)`` pairs.
        worker: made once per chunk, in the process that runs the chunk (e.g. a trainer:
            :func:`~lungct_utils.train.worker_trainer` bound to its settings with
            ``functools.partial``); None for folds that keep nothing.
        n_jobs: worker processes; 1 runs every fold here, in order.
        progress: show a tqdm bar over the folds (worker processes report each fold
            through a queue).
        desc: the bar's label.

    Returns:
        ``(answer, seconds)`` per fold, in the order of ``folds``; seconds time the fold's
        ``fit_predict`` call.
    """
    folds = [tuple(f) for f in folds]
    if not folds or any(len(f) != 2 for f in folds) or len(set(folds)) < len(folds):
        raise ValueError(f"run_folds: folds must be distinct (repeat, fold) pairs, got {folds!r}")
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"run_folds: n_jobs must be a positive int, got {n_jobs!r}")
    chunks = _chunks(folds, n_jobs)
    with contextlib.ExitStack() as stack:
        ticks = _progress_ticks(stack, len(folds), desc, len(chunks)) if progress else None
        if len(chunks) == 1:
            parts = [_run_chunk(fit_predict, worker, chunks[0], ticks)]
        else:
            parts = Parallel(n_jobs=len(chunks))(
                delayed(_run_chunk)(fit_predict, worker, chunk, ticks) for chunk in chunks
            )
    answers = {
        f: answer
        for chunk, part in zip(chunks, parts, strict=True)
        for f, answer in zip(chunk, part, strict=True)
    }
    return [answers[f] for f in folds]


def predictions_frame(rows: pd.DataFrame, fold_probs: dict, seconds: dict | None = None):
    """The predictions frame of some folds' test rows.

    Args:
        rows: one row per position the folds' test positions index, with the columns
            :data:`ROW_COLUMNS` (``id``, ``y`` the class index, ``case``).
        fold_probs: ``(repeat, fold)`` -> ``(test positions, (n_test, 3) probabilities)``,
            in the order the frame lists them.
        seconds: optional ``(repeat, fold)`` -> seconds, kept as a ``seconds`` column.

    Returns:
        DataFrame ``repeat, fold, [seconds,] id, y, case, p_benign, p_malignant, p_normal``.
    """
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"predictions_frame: rows lack the columns {missing}")
    columns = {c: rows[c].to_numpy() for c in ROW_COLUMNS}
    frames = []
    for (repeat, fold), (test, probs) in fold_probs.items():
        test, probs = np.asarray(test), np.asarray(probs)
        if probs.shape != (len(test), len(PROB_COLUMNS)):
            raise ValueError(
                f"predictions_frame: fold {(repeat, fold)} has {len(test)} test rows and "
                f"probabilities {probs.shape}"
            )
        frame = {"repeat": repeat, "fold": fold}
        if seconds is not None:
            frame["seconds"] = seconds[(repeat, fold)]
        frame.update({c: values[test] for c, values in columns.items()})
        frame.update({c: probs[:, i] for i, c in enumerate(PROB_COLUMNS)})
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


def cv_predictions(
    fit_predict: Callable,
    rows: pd.DataFrame,
    folds: Sequence[tuple],
    *,
    worker: Callable[[], object] | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    desc: str = "folds",
    seconds: bool = False,
):
    """Every fold's test predictions, as one frame (:func:`run_folds`, :func:`predictions_frame`).

    Args:
        fit_predict: what a fold does: ``fit_predict(repeat, fold)`` (or
            ``fit_predict(kept, repeat, fold)`` with ``worker``) returns ``(test positions,
            probabilities)``: positions into ``rows`` and their ``(n_test, 3)``
            probabilities, or a dict ``name -> probabilities`` of several models on the same
            test rows.
        rows: ``id``, ``y``, ``case`` of every position (:func:`predictions_frame`).
        folds: ``(repeat, fold)`` pairs, in the order of the frame.
        worker: as in :func:`run_folds`.
        n_jobs: worker processes.
        progress: show a tqdm bar over the folds.
        desc: the bar's label.
        seconds: keep each fold's seconds (its ``fit_predict`` call) as a column.

    Returns:
        The predictions frame, or ``name -> frame`` when ``fit_predict`` returns a dict.
    """
    folds = [tuple(f) for f in folds]
    answers = run_folds(
        fit_predict, folds, worker=worker, n_jobs=n_jobs, progress=progress, desc=desc
    )
    times = {f: s for f, (_, s) in zip(folds, answers, strict=True)} if seconds else None
    tests = {f: test for f, ((test, _), _) in zip(folds, answers, strict=True)}
    probs = {f: p for f, ((_, p), _) in zip(folds, answers, strict=True)}
    if not isinstance(probs[folds[0]], dict):
        return predictions_frame(rows, {f: (tests[f], probs[f]) for f in folds}, times)
    return {
        name: predictions_frame(rows, {f: (tests[f], probs[f][name]) for f in folds}, times)
        for name in probs[folds[0]]
    }
