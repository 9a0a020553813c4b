"""Scores, calibration and cluster intervals, checked by hand and against scikit-learn."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from lungct_utils import evaluate
from lungct_utils.config import CLASSES


def _predictions(n=300, accuracy=0.8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    right = rng.random(n) < accuracy
    logits[np.arange(n), np.where(right, y, (y + 1) % 3)] += 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def test_classification_metrics_by_hand():
    y_true = np.array([0, 0, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0])
    m = evaluate.classification_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert m["per_class"]["benign"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert m["per_class"]["malignant"]["precision"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(np.mean([0.5, 2 / 3, 2 / 3]))


def test_fold_metrics_are_macro_averages_and_folds_use_population_std():
    f = evaluate.fold_metrics(np.array([0, 0, 0, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 2]))
    assert f["accuracy"] == pytest.approx(5 / 6)
    assert f["recall"] == pytest.approx(np.mean([0.75, 1, 1]))
    assert f["precision"] == pytest.approx(np.mean([1, 0.5, 1]))
    s = evaluate.summarize_folds([{"accuracy": 0.9}, {"accuracy": 1.0}])
    assert s["std"]["accuracy"] == pytest.approx(0.05)  # 1/k, as the paper
    with pytest.raises(ValueError):
        evaluate.summarize_folds([])


def test_score_agrees_with_scikit_learn():
    y, probs = _predictions()
    s = evaluate.score(y, probs)
    pred = probs.argmax(1)
    assert s["accuracy"] == pytest.approx(np.mean(pred == y))
    assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert s["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert s["recall_benign"] == pytest.approx(np.mean(pred[y == 0] == 0))
    assert s["auc_macro"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert set(s) == set(evaluate.SCORE_KEYS)


def test_auc_handles_ties_like_scikit_learn():
    y = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    probs = np.array([[0.5, 0.3, 0.2]] * 4 + [[0.2, 0.3, 0.5]] * 4)
    ours = evaluate.auc_ovr(y, probs)
    for k in range(3):
        assert ours[k] == pytest.approx(roc_auc_score(y == k, probs[:, k]))


def test_ece_by_hand_and_reliability_bins():
    # four predictions at confidence 0.9 (3 right) and two at 0.6 (both right)
    probs = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.6, 0.3, 0.1]] * 2)
    y = np.array([0, 0, 0, 1, 0, 0])
    expected = (4 * abs(0.9 - 0.75) + 2 * abs(0.6 - 1.0)) / 6
    assert evaluate.expected_calibration_error(probs, y) == pytest.approx(expected)
    table = evaluate.reliability(probs, y)
    assert table["count"].tolist() == [2, 4]
    assert table["accuracy"].tolist() == pytest.approx([1.0, 0.75])
    perfect = np.eye(3)[y]
    assert evaluate.expected_calibration_error(perfect, y) == 0.0


def test_case_accuracy_uses_mean_probability_per_case():
    y = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.3, 0.7, 0], [0.1, 0.9, 0], [0.6, 0.4, 0]])
    cases = np.array(["a", "a", "a", "b", "b"])
    # case a: mean benign 0.467 < malignant 0.533 -> wrong; case b: malignant -> right
    assert evaluate.case_accuracy(y, probs, cases) == 0.5
    with pytest.raises(ValueError, match="two classes"):
        evaluate.case_accuracy(np.array([0, 1]), probs[:2], ["a", "a"])


def test_cluster_bootstrap_is_wider_for_correlated_copies():
    # 20 source images, each copied 10 times: copies share their outcome
    y = np.zeros(200, dtype=int)
    right = np.repeat(np.arange(20) % 4 != 0, 10)
    probs = np.where(right[:, None], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1])

    def stat(_, rows, units):
        return {"accuracy": float(np.mean(probs[rows].argmax(1) == y[rows]))}

    by_image = evaluate.cluster_bootstrap(stat, 1, [np.arange(200)], 400)["accuracy"]
    by_source = evaluate.cluster_bootstrap(stat, 1, [np.repeat(np.arange(20), 10)], 400)["accuracy"]
    assert by_source[1] - by_source[0] > 2 * (by_image[1] - by_image[0])
    assert by_source[0] < 0.75 < by_source[1]
    with pytest.raises(ValueError, match="level=1.5"):
        evaluate.cluster_bootstrap(stat, 1, [np.arange(200)], 100, level=1.5)


def test_holdout_metrics_intervals_contain_the_estimates():
    y, probs = _predictions(400, 0.75, seed=1)
    m = evaluate.holdout_metrics(y, probs, np.arange(400) // 4, n_boot=300)
    lo, hi = m["accuracy_ci95"]
    assert lo < m["accuracy"] < hi and hi - lo < 0.2
    lo, hi = m["macro_f1_ci95"]
    assert lo < m["macro_f1"] < hi
    for c in CLASSES:
        lo, hi = m["per_class"][c]["recall_ci95"]
        assert lo <= m["per_class"][c]["recall"] <= hi
    assert m["scores"]["accuracy"] == m["accuracy"]


def _repeated(repeats=3, n=120, seed=0):
    frames = []
    for r in range(repeats):
        y, probs = _predictions(n, 0.7 + 0.05 * r, seed=seed + r)
        cases = [f"c{i // 3}-{y[i]}" for i in range(n)]
        columns = {f"p_{c}": probs[:, k] for k, c in enumerate(CLASSES)}
        frames.append(pd.DataFrame({"repeat": r, "y": y, "case": cases, **columns}))
    return pd.concat(frames, ignore_index=True)


def test_repeated_cv_summary_means_and_intervals():
    preds = _repeated()
    s = evaluate.repeated_cv_summary(preds, n_boot=200)
    per = [evaluate.score(g["y"], g[[f"p_{c}" for c in CLASSES]].to_numpy())
           for _, g in preds.groupby("repeat")]  # fmt: skip
    assert s["repeats"] == 3 and s["n_test"] == 120
    assert s["mean"]["accuracy"] == pytest.approx(np.mean([p["accuracy"] for p in per]))
    for key in evaluate.SCORE_KEYS:
        lo, hi = s["ci95"][key]
        assert lo <= hi
    lo, hi = s["ci95"]["accuracy"]
    assert lo < s["mean"]["accuracy"] < hi
    assert 0 <= s["case_accuracy"] <= 1
    # the interval spans the spread between repeats, not just one repeat's sampling
    assert hi - lo > max(p["accuracy"] for p in per) - min(p["accuracy"] for p in per) - 0.02


def test_repeated_cv_summary_refuses_repeats_of_different_sizes():
    preds = _repeated()
    with pytest.raises(ValueError, match="different rows"):
        evaluate.repeated_cv_summary(preds.iloc[:-1], n_boot=50)


def test_spread_uses_sample_sd():
    s = evaluate.spread([0.9, 1.0])
    assert s == pytest.approx(
        {"mean": 0.95, "sd": np.std([0.9, 1.0], ddof=1), "min": 0.9, "max": 1.0}
    )
    with pytest.raises(ValueError):
        evaluate.spread([])
