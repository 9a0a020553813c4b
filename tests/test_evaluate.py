"""Scores, calibration and cluster intervals, checked by hand and against scikit-learn."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
    roc_auc_score,
)

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


def test_case_score_uses_the_mean_log_probability_per_case():
    y = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.3, 0.7, 0], [0.1, 0.9, 0], [0.6, 0.4, 0]])
    cases = np.array(["a", "a", "a", "b", "b"])
    # case a: mean log benign -0.973 < malignant -0.961 -> wrong; case b: malignant -> right
    assert evaluate.case_score(y, probs, cases)["accuracy"] == 0.5
    with pytest.raises(ValueError, match="case 'a' holds two classes"):
        evaluate.case_score(np.array([0, 1]), probs[:2], ["a", "a"])


def test_case_predictions_take_the_mean_log_probability():
    # case "x": the mean probability (0.475, 0.32, 0.205) would say benign, but its second
    # slice all but rules benign out: geometric means 0.2121, 0.2225, 0.0632 (sum
    # 0.4979) say malignant
    probs = np.array([[0.90, 0.09, 0.01], [0.05, 0.55, 0.40], [0.2, 0.3, 0.5]])
    case_y, case_probs, ids = evaluate.case_predictions([0, 0, 2], probs, ["x", "x", "w"])
    assert ids.tolist() == ["w", "x"] and case_y.tolist() == [2, 0]
    np.testing.assert_allclose(case_probs[1], [0.426084, 0.446881, 0.127034], atol=1e-5)
    np.testing.assert_allclose(case_probs[0], [0.2, 0.3, 0.5])  # one slice: unchanged
    # a zero probability is clipped, not -inf: the other slices still count
    _, clipped, _ = evaluate.case_predictions([1, 1], [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], [7, 7])
    assert np.isfinite(clipped).all() and clipped.sum() == pytest.approx(1)
    with pytest.raises(ValueError, match=r"probs \(2, 2\) and 2 cases for 2 rows"):
        evaluate.case_predictions([0, 1], np.ones((2, 2)), ["a", "b"])


def test_one_mean_log_probability_for_views_ensembles_studies_and_cases():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=(4, 5))  # four views (or members) of five rows
    geometric = np.exp(np.log(probs).mean(axis=0))
    geometric /= geometric.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(evaluate.mean_log_prob(probs), geometric, rtol=1e-12)
    np.testing.assert_array_equal(
        evaluate.mean_log_prob(list(probs)), evaluate.mean_log_prob(probs)
    )
    # per group: each group's rows alone, to the last bit (a study and a case agree)
    rows, codes = probs[0], np.array([1, 0, 1, 1, 0])
    grouped = evaluate.mean_log_prob(rows, codes)
    for g in (0, 1):
        np.testing.assert_array_equal(grouped[g], evaluate.mean_log_prob(rows[codes == g]))
        np.testing.assert_array_equal(grouped[g], evaluate.study_probabilities(rows[codes == g]))
    # one floor for every caller: a zero counts as PROB_FLOOR
    zero = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    floored = np.sqrt(
        np.clip(zero[0], evaluate.PROB_FLOOR, 1) * np.clip(zero[1], evaluate.PROB_FLOOR, 1)
    )
    np.testing.assert_allclose(evaluate.mean_log_prob(zero), floored / floored.sum(), rtol=1e-12)
    np.testing.assert_array_equal(
        evaluate.case_predictions([1, 1], zero, [7, 7])[1][0], evaluate.mean_log_prob(zero)
    )
    with pytest.raises(ValueError, match=r"got \(0, 3\)"):
        evaluate.mean_log_prob(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"\(4,\) group codes for probabilities \(5, 3\)"):
        evaluate.mean_log_prob(rows, codes[:4])


def test_case_score_by_hand():
    # cases: a (benign) right, b (benign) called malignant, c (malignant) right, d (normal) right
    y = np.array([0, 0, 0, 1, 2])
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]
    )
    s = evaluate.case_score(y, probs, ["a", "b", "b", "c", "d"])
    assert s["accuracy"] == pytest.approx(3 / 4)
    assert s["recall_benign"] == pytest.approx(1 / 2)
    assert s["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    # F1: benign 2/3, malignant (precision 1/2, recall 1) 2/3, normal 1
    assert s["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert set(s) == set(evaluate.CASE_KEYS)


def test_confusion_metrics_of_weighted_rows_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 3, 200))
    weights = rng.integers(0, 4, 200)  # a bootstrap's multiplicities: 0 leaves a row out
    cm = np.bincount(y * 3 + pred, weights, 9).reshape(3, 3)
    m = evaluate.confusion_metrics(cm)
    yy, pp = np.repeat(y, weights), np.repeat(pred, weights)
    assert m["accuracy"] == pytest.approx(accuracy_score(yy, pp))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(yy, pp))
    assert m["macro_f1"] == pytest.approx(f1_score(yy, pp, average="macro"))
    recall = recall_score(yy, pp, average=None)
    for k, c in enumerate(CLASSES):
        assert m[f"recall_{c}"] == pytest.approx(recall[k])
    # a stack of matrices gives each one's metrics; an absent class has no recall
    absent = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
    stacked = evaluate.confusion_metrics(np.stack([cm, absent]))
    assert stacked["macro_f1"][0] == pytest.approx(m["macro_f1"])
    assert np.isnan(stacked["recall_normal"][1])
    assert stacked["balanced_accuracy"][1] == pytest.approx((5 / 6 + 4 / 6) / 2)
    with pytest.raises(ValueError, match=r"got \(2, 2\)"):
        evaluate.confusion_metrics(np.eye(2))


def test_cluster_intervals_are_wider_for_correlated_copies():
    # 20 source images, each copied 10 times: copies share their outcome
    right = np.repeat(np.arange(20) % 4 != 0, 10)

    def accuracy(unit_of):
        units = np.unique(unit_of)
        hits = np.array([right[unit_of == u].sum() for u in units])
        rows = np.array([(unit_of == u).sum() for u in units])

        def stats(_, counts):
            return {"accuracy": (counts @ hits) / (counts @ rows)}

        return evaluate.cluster_intervals(stats, [len(units)], 400)["accuracy"]

    by_image = accuracy(np.arange(200))
    by_source = accuracy(np.repeat(np.arange(20), 10))
    assert by_source[1] - by_source[0] > 2 * (by_image[1] - by_image[0])
    assert by_source[0] < 0.75 < by_source[1]
    with pytest.raises(ValueError, match="level=1.5"):
        evaluate.cluster_intervals(lambda s, c: {}, [200], 100, level=1.5)


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
    """The same n rows (classes and cases) in every repeat, predicted differently."""
    y, _ = _predictions(n, 0.7, seed=seed)
    cases = [f"c{i // 3}-{y[i]}" for i in range(n)]
    frames = []
    for r in range(repeats):
        _, probs = _predictions(n, 0.7 + 0.05 * r, seed=seed + r)
        columns = {f"p_{c}": probs[:, k] for k, c in enumerate(CLASSES)}
        frames.append(pd.DataFrame({"repeat": r, "y": y, "case": cases, **columns}))
    return pd.concat(frames, ignore_index=True)


def test_repeated_cv_summary_means_and_intervals():
    preds = _repeated()
    s = evaluate.repeated_cv_summary(preds, n_boot=200)
    per = [
        evaluate.score(g["y"], g[[f"p_{c}" for c in CLASSES]].to_numpy())
        for _, g in preds.groupby("repeat")
    ]
    assert s["repeats"] == 3 and s["n_test"] == 120
    assert s["mean"]["accuracy"] == pytest.approx(np.mean([p["accuracy"] for p in per]))
    lo, hi = s["ci95"]["accuracy"]
    assert lo < s["mean"]["accuracy"] < hi


def test_repeated_cv_summary_scores_every_repeat_on_one_draw_of_cases():
    # repeat 0 calls every case right, repeat 1 every case wrong: each replicate scores both on
    # the same draw of cases, so its mean over repeats is 1/2 whatever it draws
    right, wrong = _planted_table(0), _planted_table(1, wrong=range(30))
    wrong.loc[wrong["y"] == 0, ["p_benign", "p_malignant"]] = [0.05, 0.9]
    s = evaluate.repeated_cv_summary(pd.concat([right, wrong], ignore_index=True), n_boot=200)
    assert s["mean"]["accuracy"] == 0.5
    assert s["ci95"]["accuracy"] == [0.5, 0.5]
    lacking = pd.concat([right, wrong[wrong["case"] != "c0"]], ignore_index=True)
    lacking = pd.concat([lacking, wrong[wrong["case"] == "c3"]], ignore_index=True)  # 1 slice
    with pytest.raises(ValueError, match="lacks some of the units"):
        evaluate.repeated_cv_summary(lacking, n_boot=200)


def _planted_table(repeat, wrong=()):
    """Thirty cases, ten of each class (case number mod 3; benign cases hold one slice,
    malignant two, normal three), called right with probability 0.9; the slices of the
    ``wrong`` cases are called benign."""
    case = np.repeat(np.arange(30), np.tile([1, 2, 3], 10))
    y = case % 3
    called = np.where(np.isin(case, wrong), 0, y)
    probs = np.full((len(y), 3), 0.05)
    probs[np.arange(len(y)), called] = 0.9
    columns = {f"p_{c}": probs[:, k] for k, c in enumerate(CLASSES)}
    return pd.DataFrame({"repeat": repeat, "y": y, "case": [f"c{c}" for c in case], **columns})


def test_repeated_cv_summary_is_exact_on_planted_predictions():
    perfect = pd.concat([_planted_table(0), _planted_table(1)], ignore_index=True)
    s = evaluate.repeated_cv_summary(perfect, n_boot=200)
    for key in evaluate.SCORE_KEYS[:-1]:  # every resample is scored right
        assert s["mean"][key] == 1.0 and s["ci95"][key] == [1.0, 1.0], key
    assert s["ci95"]["ece"] == pytest.approx([0.1, 0.1])  # right at confidence 0.9
    assert s["case"]["ci95"] == {k: [1.0, 1.0] for k in evaluate.CASE_KEYS}
    # repeat 1 calls case 2 (normal, 3 slices) and case 4 (malignant, 2 slices) benign
    mixed = pd.concat([_planted_table(0), _planted_table(1, wrong=[2, 4])], ignore_index=True)
    s = evaluate.repeated_cv_summary(mixed, n_boot=200)
    assert s["n_test"] == 60 and s["mean"]["accuracy"] == pytest.approx((1 + 55 / 60) / 2)
    assert s["mean"]["recall_normal"] == pytest.approx((1 + 27 / 30) / 2)
    assert s["case_accuracy"] == pytest.approx((1 + 28 / 30) / 2)
    assert s["case"]["mean"]["balanced_accuracy"] == pytest.approx((1 + (1 + 0.9 + 0.9) / 3) / 2)
    assert s["case"]["mean"]["recall_benign"] == 1.0
    # the perfect repeat holds the top of every interval; the other pulls the bottom below it
    lo, hi = s["ci95"]["accuracy"]
    assert hi == 1.0 and lo < 55 / 60
    lo, hi = s["case_accuracy_ci95"]
    assert hi == 1.0 and lo < 28 / 30


def test_repeated_cv_summary_scores_cases_per_repeat():
    preds = _repeated(n=150)
    s = evaluate.repeated_cv_summary(preds, n_boot=200)
    per = [
        evaluate.case_score(g["y"], g[evaluate.PROB_COLUMNS].to_numpy(), g["case"])
        for _, g in preds.groupby("repeat")
    ]
    assert set(s["case"]["mean"]) == set(s["case"]["ci95"]) == set(evaluate.CASE_KEYS)
    for key in evaluate.CASE_KEYS:
        assert s["case"]["mean"][key] == pytest.approx(np.mean([p[key] for p in per]))
        lo, hi = s["case"]["ci95"][key]
        assert lo <= s["case"]["mean"][key] <= hi
    assert s["case_accuracy"] == s["case"]["mean"]["accuracy"]
    assert s["case_accuracy_ci95"] == s["case"]["ci95"]["accuracy"]


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


def _models(n_cases=110, repeats=5, base=0.65, seed=0):
    """Predictions of two models over the same rows: same skill, independent noise.

    Each model has its own per-case difficulty, so its errors cluster by case.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 16, n_cases)
    case = np.repeat(np.arange(n_cases), sizes)
    y = np.repeat(rng.choice(3, n_cases, p=[0.2, 0.35, 0.45]), sizes)
    tables = []
    for _ in range(2):
        frames = []
        for r in range(repeats):
            logits = rng.normal(0, 1, (len(y), 3))
            logits[np.arange(len(y)), y] += base + rng.normal(0, 1.5, n_cases)[case]
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            columns = {f"p_{c}": probs[:, k] for k, c in enumerate(CLASSES)}
            frames.append(
                pd.DataFrame(
                    {
                        "repeat": r,
                        "id": [f"i{i}" for i in range(len(y))],
                        "y": y,
                        "case": [f"c{c}" for c in case],
                        **columns,
                    }
                )
            )
        tables.append(pd.concat(frames, ignore_index=True))
    return tables


def _corrected(table, share=0.15, seed=0):
    """The model with every wrong prediction of a random ``share`` of the cases put right."""
    cases = table["case"].unique()
    fixed = np.random.default_rng(seed).choice(cases, int(share * len(cases)), replace=False)
    out = table.copy()
    rows = out["case"].isin(fixed).to_numpy()
    out.loc[rows, evaluate.PROB_COLUMNS] = np.eye(3)[out.loc[rows, "y"]] * 0.9 + 0.1 / 3
    return out


def test_paired_difference_finds_a_planted_gain():
    base, _ = _models()
    better = _corrected(base)
    for level in ("slice", "case"):
        d = evaluate.paired_difference(better, base, level=level)
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            lo, hi = d[key]["diff_ci95"]
            assert d[key]["diff"] > 0 and 0 < lo <= hi and d[key]["excludes_zero"], (level, key)
            assert d[key]["diff"] == pytest.approx(d[key]["a"] - d[key]["b"])
    # a and b are the means over repeats of the metric
    per = [
        evaluate.score(g["y"], g[evaluate.PROB_COLUMNS].to_numpy())["balanced_accuracy"]
        for _, g in base.groupby("repeat")
    ]
    assert d["balanced_accuracy"]["b"] != pytest.approx(np.mean(per))  # case level differs
    slices = evaluate.paired_difference(better, base, n_boot=50)
    assert slices["balanced_accuracy"]["b"] == pytest.approx(np.mean(per))


def test_paired_difference_of_equal_models_covers_zero():
    excluded = 0
    for seed in range(20):
        a, b = _models(seed=seed)
        d = evaluate.paired_difference(a, b, n_boot=400, seed=seed)
        excluded += d["balanced_accuracy"]["excludes_zero"]
        if seed == 0:
            for key in evaluate.CASE_KEYS:
                lo, hi = d[key]["diff_ci95"]
                assert lo < 0 < hi and not d[key]["excludes_zero"], key
    # errors cluster by case: seen 1 of 20 here; resampling slices instead of cases: 7 of 20
    assert excluded <= 3


def test_paired_difference_of_identical_tables_is_zero_and_rows_are_aligned():
    a, _ = _models(n_cases=40, repeats=2)
    shuffled = a.sample(frac=1, random_state=0)
    for level in ("slice", "case"):
        d = evaluate.paired_difference(a, shuffled, level=level, n_boot=100)
        for key in evaluate.CASE_KEYS:
            assert d[key]["diff"] == 0 and d[key]["diff_ci95"] == [0.0, 0.0]
            assert not d[key]["excludes_zero"]


def test_paired_difference_refuses_unpaired_tables():
    a, b = _models(n_cases=20, repeats=2)
    other = b.copy()
    other.loc[3, "id"] = "elsewhere"
    with pytest.raises(ValueError, match="differ in 'id'"):
        evaluate.paired_difference(a, other, n_boot=20)
    with pytest.raises(ValueError, match=f"a has {len(a)} rows, b {len(b) - 1}"):
        evaluate.paired_difference(a, b.iloc[1:], n_boot=20)
    relabelled = b.assign(y=(b["y"] + 1) % 3)
    with pytest.raises(ValueError, match="differ in 'y'"):
        evaluate.paired_difference(a, relabelled, n_boot=20)
    with pytest.raises(ValueError, match="b lacks columns \\['case'\\]"):
        evaluate.paired_difference(a, b.drop(columns="case"), n_boot=20)
    with pytest.raises(ValueError, match="got 'patient'"):
        evaluate.paired_difference(a, b, level="patient")
    with pytest.raises(ValueError, match="bad keys \\['auc'\\]"):
        evaluate.paired_difference(a, b, keys=("auc",))


def _reference_bootstrap(stat, groups_per_set, n_boot, seed, level=0.95):
    """The cluster bootstrap as a plain loop (the algorithm before vectorisation).

    Returns the intervals and, per key, the draw of every replicate.
    """
    rng = np.random.default_rng(seed)
    units = []
    for groups in groups_per_set:
        _, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        units.append(np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1))
    draws = {}
    for _ in range(n_boot):
        s = int(rng.integers(len(groups_per_set)))
        pick = rng.integers(0, len(units[s]), len(units[s]))
        rows = np.concatenate([units[s][i] for i in pick])
        ids = np.repeat(np.arange(len(pick)), [len(units[s][i]) for i in pick])
        for key, value in stat(s, rows, ids).items():
            draws.setdefault(key, []).append(value)
    alpha = (1 - level) / 2
    intervals = {
        k: [float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))]
        for k, v in draws.items()
    }
    return intervals, {k: np.asarray(v, dtype=float) for k, v in draws.items()}


def _reference_repeated_cv(preds, n_boot, seed):
    """Intervals of :func:`evaluate.repeated_cv_summary` by a plain loop: each replicate draws
    the cases once, scores every repeat on them, and keeps the mean over repeats.

    Returns the intervals and, per key, the draw of every replicate."""
    parts = [g for _, g in preds.groupby("repeat", sort=True)]
    names = np.unique(preds["case"].to_numpy().astype(str))
    picks = np.random.default_rng(seed).integers(0, len(names), (n_boot, len(names)))
    draws = {}
    with warnings.catch_warnings():  # a one-class replicate's AUCs are all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        for pick in picks:
            scores = []
            for g in parts:
                where = [np.flatnonzero(g["case"].to_numpy() == names[i]) for i in pick]
                rows = np.concatenate(where)
                units = np.repeat(np.arange(len(pick)), [len(w) for w in where])
                y, p = g["y"].to_numpy()[rows], g[evaluate.PROB_COLUMNS].to_numpy()[rows]
                case = evaluate.case_score(y, p, units)
                scores.append(evaluate.score(y, p) | {f"case_{k}": v for k, v in case.items()})
            for key in scores[0]:
                draws.setdefault(key, []).append(np.mean([sc[key] for sc in scores]))
    intervals = {}
    for k, v in draws.items():
        v = np.sort(np.asarray(v, dtype=float))
        v = v[~np.isnan(v)]
        k_low = int(np.floor(len(v) * 0.05 / 2 + 1e-9))
        intervals[k] = [float(v[k_low]), float(v[len(v) - 1 - k_low])]
    return intervals, {k: np.asarray(v, dtype=float) for k, v in draws.items()}


def test_single_and_paired_intervals_share_their_draws():
    # b calls every slice benign: its malignant recall is 0 in every replicate, so the paired
    # difference's replicates are a's own, and so are the intervals
    a = _ragged(n_cases=24, seed=4).assign(id=lambda t: t.groupby("repeat").cumcount())
    b = a.assign(p_benign=0.9, p_malignant=0.05, p_normal=0.05)
    single = evaluate.repeated_cv_summary(a, n_boot=300, seed=9)["ci95"]["recall_malignant"]
    paired = evaluate.paired_difference(a, b, ("recall_malignant",), n_boot=300, seed=9)
    assert paired["recall_malignant"]["diff_ci95"] == pytest.approx(single)


def _ragged(repeats=4, n_cases=24, seed=0):
    """Cases of 1 to 9 slices, two of them benign (so some replicates hold none),
    probabilities on a 0.1 grid (ties), and the slices of the cases shuffled over the rows."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 10, n_cases)
    case_y = np.r_[0, 0, rng.choice([1, 2], n_cases - 2)]
    case = np.repeat(np.arange(n_cases), sizes)
    order = rng.permutation(len(case))
    y = case_y[case][order]
    frames = []
    for r in range(repeats):
        logits = rng.normal(0, 1, (len(y), 3))
        logits[np.arange(len(y)), y] += rng.normal(1, 1.5, n_cases)[case[order]]
        probs = np.round(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 1)
        probs[probs.sum(1) == 0] = 1 / 3
        columns = {f"p_{c}": probs[:, k] for k, c in enumerate(CLASSES)}
        cases = [f"case{c}" for c in case[order]]
        frames.append(pd.DataFrame({"repeat": r, "y": y, "case": cases, **columns}))
    return pd.concat(frames, ignore_index=True)


def _max_gap(a: dict, b: dict) -> float:
    """The largest difference between two key -> [lo, hi] dicts (NaN must match NaN)."""
    assert a.keys() == b.keys()
    x = np.array([a[k] for k in a], dtype=float)
    z = np.array([b[k] for k in a], dtype=float)
    np.testing.assert_array_equal(np.isnan(x), np.isnan(z))
    return float(np.nanmax(np.abs(x - z)))


@pytest.mark.parametrize(("n_cases", "seed"), [(24, 0), (24, 7), (3, 1)])
def test_repeated_cv_summary_intervals_equal_the_reference_loop(n_cases, seed):
    preds = _ragged(n_cases=n_cases, seed=seed)
    expected, draws = _reference_repeated_cv(preds, n_boot=300, seed=seed)
    # the data reach the awkward cases: no benign case drawn, tied probabilities and, with
    # three cases, replicates of one class (every AUC NaN)
    assert np.isnan(draws["case_recall_benign"]).any()
    assert preds[evaluate.PROB_COLUMNS].duplicated().any()
    assert np.isnan(draws["auc_macro"]).any() == (n_cases == 3)
    s = evaluate.repeated_cv_summary(preds, n_boot=300, seed=seed)
    got = s["ci95"] | {f"case_{k}": v for k, v in s["case"]["ci95"].items()}
    assert _max_gap(got, expected) <= 1e-12
    assert s["case_accuracy_ci95"] == s["case"]["ci95"]["accuracy"]


def test_repeated_cv_summary_intervals_follow_the_seed():
    preds = _ragged(seed=1)
    s0 = evaluate.repeated_cv_summary(preds, n_boot=200, seed=0)
    s1 = evaluate.repeated_cv_summary(preds, n_boot=200, seed=1)
    assert s0["mean"] == s1["mean"] and s0["ci95"] != s1["ci95"]
    expected, _ = _reference_repeated_cv(preds, n_boot=200, seed=1)
    assert _max_gap(s1["ci95"], {k: expected[k] for k in evaluate.SCORE_KEYS}) <= 1e-12


def test_holdout_metrics_intervals_equal_the_reference_loop():
    preds = _ragged(repeats=1, n_cases=40, seed=2)
    y, probs, cases = preds["y"].to_numpy(), preds[evaluate.PROB_COLUMNS].to_numpy(), preds["case"]
    keys = ("accuracy", "macro_f1", *(f"recall_{c}" for c in CLASSES))

    def stat(_, rows, _units):
        metrics = evaluate.confusion_metrics(evaluate.confusion(y[rows], probs[rows].argmax(1)))
        return {k: metrics[k] for k in keys}

    expected, draws = _reference_bootstrap(stat, [cases], n_boot=500, seed=3)
    assert np.isnan(draws["recall_benign"]).any()
    m = evaluate.holdout_metrics(y, probs, cases, n_boot=500, seed=3)
    got = {"accuracy": m["accuracy_ci95"], "macro_f1": m["macro_f1_ci95"]}
    got |= {f"recall_{c}": m["per_class"][c]["recall_ci95"] for c in CLASSES}
    assert _max_gap(got, expected) <= 1e-12
    with pytest.raises(ValueError, match="39 groups for"):
        evaluate.holdout_metrics(y, probs, cases[:39], n_boot=50)


def test_rate_interval_equals_the_reference_loop():
    preds = _ragged(repeats=3, seed=4)
    parts = [g for _, g in preds.groupby("repeat")]
    flags = [g["p_benign"].to_numpy() >= 0.2 for g in parts]
    units = [g["case"].to_numpy() for g in parts]
    expected, _ = _reference_bootstrap(
        lambda s, rows, _: {"rate": float(flags[s][rows].mean())}, units, n_boot=400, seed=5
    )
    out = evaluate.rate_interval(flags, units, n_boot=400, seed=5)
    assert abs(np.array(out["ci95"]) - expected["rate"]).max() <= 1e-12
    with pytest.raises(ValueError, match="set 1 has"):
        evaluate.rate_interval(flags, [units[0], units[1][:-1], units[2]], n_boot=50)


def test_cluster_draw_counts_are_the_loops_draws():
    n_units = [4, 7, 5]
    set_of, counts = evaluate.cluster_draw_counts(n_units, n_boot=60, seed=11)
    rng = np.random.default_rng(11)
    seen = [0, 0, 0]
    for b in range(60):
        s = int(rng.integers(3))
        pick = rng.integers(0, n_units[s], n_units[s])
        assert set_of[b] == s
        np.testing.assert_array_equal(counts[s][seen[s]], np.bincount(pick, minlength=n_units[s]))
        seen[s] += 1
    assert [len(c) for c in counts] == seen and all(
        (c.sum(1) == n).all() for c, n in zip(counts, n_units, strict=True)
    )
    other, _ = evaluate.cluster_draw_counts(n_units, n_boot=60, seed=12)
    assert not np.array_equal(set_of, other)
    with pytest.raises(ValueError, match=r"n_units=\[3, 0\]"):
        evaluate.cluster_draw_counts([3, 0], n_boot=5)
    with pytest.raises(ValueError, match="got 0"):
        evaluate.cluster_draw_counts([3], n_boot=0)
    with pytest.raises(ValueError, match="level=0"):
        evaluate.cluster_intervals(lambda s, c: {}, [3], n_boot=50, level=0)


def test_weighted_auc_is_the_auc_of_repeated_rows():
    rng = np.random.default_rng(5)
    y = rng.choice(3, 40, p=[0.1, 0.45, 0.45])
    probs = np.round(rng.dirichlet(np.ones(3), 40), 1)  # many ties
    weights = rng.integers(0, 4, (6, 40))
    weights[0, y == 0] = 0  # no benign row drawn: its AUC is NaN
    weights[1] = np.where(y == 2, 1, 0)  # one class alone: all NaN
    got = evaluate.weighted_auc_ovr(weights, y, probs)
    for w, row in zip(weights, got, strict=True):
        rows = np.repeat(np.arange(40), w)
        np.testing.assert_array_equal(row, evaluate.auc_ovr(y[rows], probs[rows]))
    assert np.isnan(got[0, 0]) and np.isnan(got[1]).all()
    with pytest.raises(ValueError, match=r"weights \(40,\)"):
        evaluate.weighted_auc_ovr(weights[0], y, probs)
