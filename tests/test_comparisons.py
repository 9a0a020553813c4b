"""The primary comparison and Holm-adjusted secondary ones."""

import numpy as np
import pandas as pd
import pytest

from lungct_utils import comparisons, evaluate
from lungct_utils.config import CLASSES


def test_holm_steps_down_and_stops_at_the_first_kept():
    out = comparisons.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    assert [out[k]["rejected"] for k in "dacb"] == [True, True, False, False]
    assert [out[k]["level"] for k in "dacb"] == pytest.approx([0.0125, 0.05 / 3, 0.025, 0.025])
    assert [out[k]["p_holm"] for k in "dacb"] == pytest.approx([0.02, 0.03, 0.06, 0.06])
    # one p-value alone is tested at alpha
    assert comparisons.holm({"x": 0.049})["x"]["rejected"]
    with pytest.raises(ValueError, match="alpha must be in \\(0, 1\\), got 1.5"):
        comparisons.holm({"x": 0.1}, alpha=1.5)
    with pytest.raises(ValueError, match="'x': 1.2"):
        comparisons.holm({"x": 1.2})


def _table(repeat: int, wrong=()) -> pd.DataFrame:
    """Sixty cases of two slices, twenty per class, called right unless in ``wrong``
    (then called the next class)."""
    case = np.repeat(np.arange(60), 2)
    y = case % 3
    called = np.where(np.isin(case, wrong), (y + 1) % 3, y)
    probs = np.full((len(y), 3), 0.1)
    probs[np.arange(len(y)), called] = 0.8
    columns = {f"p_{c}": probs[:, k] for k, c in enumerate(CLASSES)}
    ids = np.arange(len(y))
    return pd.DataFrame({"repeat": repeat, "id": ids, "y": y, "case": case, **columns})


def test_holm_family_calls_a_difference_only_when_its_adjusted_interval_excludes_zero():
    a = pd.concat([_table(r) for r in range(2)], ignore_index=True)
    # b errs on 24 malignant cases and on one normal one
    b_wrong = [*range(1, 73, 3), 2]
    b = pd.concat([_table(r, wrong=b_wrong) for r in range(2)], ignore_index=True)
    keys = ("accuracy", "recall_malignant", "recall_normal", "recall_benign")

    n_boot = comparisons.replicates_for(2 * len(keys))

    def recompute(level, coverage):
        return evaluate.paired_difference(a, b, tuple(coverage), level, n_boot, 1, ci=coverage)

    paired = {level: recompute(level, dict.fromkeys(keys, 0.95)) for level in ("slice", "case")}
    out = comparisons.holm_family(paired, recompute)
    for level in paired:
        big, small = out[level]["recall_malignant"], out[level]["recall_normal"]
        assert comparisons.verdict(big) == "better" and big["holm"]["rejected"]
        assert comparisons.verdict(small) == "not shown different"
        assert comparisons.verdict(out[level]["recall_benign"]) == "not shown different"
        for d in out[level].values():
            lo, hi = d["holm"]["ci"]
            # a verdict agrees with the interval shown beside it, both ways, and with p_holm
            assert d["holm"]["rejected"] == (lo > 0 or hi < 0)
            assert d["holm"]["rejected"] == (d["holm"]["p_holm"] <= comparisons.ALPHA)
            assert hi - lo >= d["diff_ci95"][1] - d["diff_ci95"][0] - 1e-12  # never narrower
    # planted: the same verdict turns when the models swap
    swapped = comparisons.holm_family(
        {"case": evaluate.paired_difference(b, a, keys, "case", n_boot, 1)},
        lambda level, cov: evaluate.paired_difference(b, a, tuple(cov), level, n_boot, 1, ci=cov),
    )
    assert comparisons.verdict(swapped["case"]["recall_malignant"]) == "worse"


def test_the_primary_verdict_reads_the_plain_interval():
    d = {"diff": 0.05, "diff_ci95": [0.01, 0.09], "excludes_zero": True}
    assert comparisons.verdict(d) == "better"
    assert comparisons.verdict({**d, "diff": -0.05, "diff_ci95": [-0.09, -0.01]}) == "worse"
    assert comparisons.verdict({**d, "excludes_zero": False}) == "not shown different"
    held = {**d, "holm": {"rejected": False}}
    assert comparisons.verdict(held) == "not shown different"


def test_detectable_difference_grows_with_the_spread():
    assert comparisons.detectable(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert comparisons.detectable(0.02) == pytest.approx(2 * comparisons.detectable(0.01))
    assert comparisons.detectable(0.01, power=0.9) > comparisons.detectable(0.01)
    assert comparisons.detectable(0.0) == 0.0
    with pytest.raises(ValueError, match="se=-0.1"):
        comparisons.detectable(-0.1)


def test_a_family_too_large_for_its_replicates_is_refused():
    # 104 comparisons whose every draw is above 0: Holm's first level, 0.05 / 104, rests on
    # tails of 1000 replicates that hold about a quarter of a draw
    draws = {(f"v{i}", "accuracy"): {"p_value": 0.0, "n_boot": 1000} for i in range(104)}
    paired = {name: {k: d} for (name, k), d in draws.items()}
    with pytest.raises(ValueError, match="1000 replicates cannot resolve 104 \\(use 41600\\)"):
        comparisons.holm_family(paired, lambda name, cov: None)
    assert comparisons.replicates_for(1) == evaluate.N_BOOT


def test_bootstrap_p_value_and_the_order_interval_agree():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.1, 0.2, 0.3, 0.5):
        draws = np.round(rng.normal(shift, 0.1, 999), 2)  # ties at 0 included
        p = evaluate.bootstrap_p_value(draws)
        for coverage in (0.9, 0.95, 0.99, 0.995, 0.999):
            lo, hi = evaluate.order_interval(draws, coverage)
            assert (lo > 0 or hi < 0) == (p <= 1 - coverage + 1e-12), (shift, coverage)
    assert evaluate.bootstrap_p_value(np.ones(99)) == 0.0
    assert evaluate.bootstrap_p_value(np.r_[-np.ones(50), np.ones(50)]) == 1.0
    with pytest.raises(ValueError, match="finite"):
        evaluate.bootstrap_p_value([0.1, np.nan])


def test_primary_and_secondary_keeps_the_primary_out_of_the_family():
    a = pd.concat([_table(r) for r in range(2)], ignore_index=True)
    b = pd.concat([_table(r, wrong=[*range(1, 73, 3)]) for r in range(2)], ignore_index=True)
    keys = ("accuracy", "macro_f1", "recall_malignant")

    def recompute(level, coverage):
        n_boot = comparisons.replicates_for(6)
        return evaluate.paired_difference(a, b, tuple(coverage), level, n_boot, 1, ci=coverage)

    paired = {level: recompute(level, dict.fromkeys(keys, 0.95)) for level in ("slice", "case")}
    out = comparisons.primary_and_secondary(paired, recompute)
    # the definition survives the merge with the result's fields
    assert {k: out["primary"][k] for k in comparisons.PRIMARY} == comparisons.PRIMARY
    assert out["primary"]["diff"] == paired["case"]["macro_f1"]["diff"]
    assert "macro_f1" not in out["secondary"]["case"] and "macro_f1" in out["secondary"]["slice"]
    assert out["primary"]["detectable"] > 0
    with pytest.raises(ValueError, match="no 'macro_f1' at level 'case'"):
        comparisons.primary_and_secondary({"slice": paired["slice"]}, recompute)
