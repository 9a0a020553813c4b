import numpy as np
import pytest

from lungct_utils.metrics import bootstrap_ci, classification_metrics, fold_metrics, summarize_folds


def test_classification_metrics_by_hand():
    y_true = np.array([0, 0, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0])
    m = classification_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert m["per_class"]["benign"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert m["per_class"]["malignant"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["normal"]["recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(np.mean([0.5, 2 / 3, 2 / 3]))


def test_fold_metrics_are_macro_averages():
    y_true = np.array([0, 0, 0, 0, 1, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 2])
    f = fold_metrics(y_true, y_pred)
    assert f["accuracy"] == pytest.approx(5 / 6)
    assert f["recall"] == pytest.approx(np.mean([0.75, 1, 1]))
    assert f["precision"] == pytest.approx(np.mean([1, 0.5, 1]))


def test_summarize_folds_uses_population_std():
    s = summarize_folds([{"accuracy": 0.9}, {"accuracy": 1.0}])
    assert s["mean"]["accuracy"] == pytest.approx(0.95)
    assert s["std"]["accuracy"] == pytest.approx(0.05)  # 1/k, as the paper
    with pytest.raises(ValueError):
        summarize_folds([])


def test_bootstrap_interval_properties():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.8, y_true, (y_true + 1) % 3)
    lo, hi = bootstrap_ci(y_true, y_pred, "accuracy", n_boot=500)
    acc = np.mean(y_true == y_pred)
    assert lo < acc < hi and hi - lo < 0.15
    assert bootstrap_ci(y_true, y_true, "recall:benign", n_boot=200) == [1.0, 1.0]
    with pytest.raises(ValueError, match="'recall:cyst'"):
        bootstrap_ci(y_true, y_pred, "recall:cyst")


def test_group_bootstrap_is_wider_for_correlated_copies():
    # 20 source images, each copied 10 times: copies share their outcome
    y_true = np.zeros(200, dtype=int)
    outcome = np.repeat(np.arange(20) % 4 != 0, 10)
    y_pred = np.where(outcome, 0, 1)
    groups = np.repeat(np.arange(20), 10)
    lo_i, hi_i = bootstrap_ci(y_true, y_pred, n_boot=500)
    lo_g, hi_g = bootstrap_ci(y_true, y_pred, n_boot=500, groups=groups)
    assert hi_g - lo_g > 2 * (hi_i - lo_i)


def test_macro_f1_interval_contains_the_estimate():
    from lungct_utils.metrics import classification_metrics

    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.integers(0, 3, 400))
    f1 = classification_metrics(y_true, y_pred)["macro_f1"]
    lo, hi = bootstrap_ci(y_true, y_pred, "macro_f1", n_boot=400)
    assert lo < f1 < hi and hi - lo < 0.2
