"""The external validation in words and tables, from planted figures."""

import pytest

from lungct_utils import external_summary as es
from lungct_utils import prose, tables


def metric(value: float, lo: float, hi: float) -> dict:
    return {"value": value, "ci95": [lo, hi]}


def binary(ba=(0.8, 0.7, 0.9), auc=(0.9, 0.8, 0.95), sens=(0.85, 0.8, 0.9), spec=None):
    """A planted ``binary_metrics`` result (``spec`` None: no normal slice)."""
    return {
        "n": 40,
        "n_malignant": 20,
        "n_normal": 20,
        "n_benign_excluded": 0,
        "clusters": 25,
        "notes": [],
        "sensitivity": metric(*sens),
        "specificity": None if spec is None else metric(*spec),
        "balanced_accuracy": metric(*ba),
        "auc": metric(*auc),
        "share_called_benign": metric(0.05, 0.0, 0.1),
        "ece": metric(0.08, 0.05, 0.12),
    }


def paired(diff, lo, hi) -> dict:
    return {"a": 0.5 + diff, "b": 0.5, "diff": diff, "diff_ci95": [lo, hi]}


def test_signed_interval():
    assert tables.signed_interval({"diff": 0.052, "diff_ci95": [0.01, 0.093]}) == (
        "+5.2 [+1.0, +9.3]"
    )
    assert tables.signed_interval({"diff": -0.03, "diff_ci95": [-0.06, 0.005]}) == (
        "-3.0 [-6.0, +0.5]"
    )
    assert tables.signed_interval(paired(0.0, 0.0, 0.0), digits=2) == "+0.00 [+0.00, +0.00]"


def test_metric_table_shows_missing_metrics_empty():
    table = tables.metric_table(
        {"model: inside": binary(spec=(0.7, 0.6, 0.8)), "model: outside": binary()}
    )
    assert list(table.index) == ["model: inside", "model: outside"]
    assert list(table.columns) == ["n", "clusters", *tables.BINARY_COLUMNS.values()]
    inside, outside = table.loc["model: inside"], table.loc["model: outside"]
    assert inside["specificity"] == "70.0 [60.0, 80.0]"
    assert outside["specificity"] == ""
    assert outside["balanced accuracy"] == "80.0 [70.0, 90.0]"
    assert outside["AUC"] == "90.0 [80.0, 95.0]" and outside["ECE"] == "8.0 [5.0, 12.0]"
    assert (outside["n"], outside["clusters"]) == (40, 25)
    markdown = tables.markdown(table, index="model: set")
    assert "| model: outside | 40 | 25 |" in markdown
    # a metric key left out altogether is empty too
    part = binary(spec=(0.7, 0.6, 0.8))
    del part["ece"]
    assert tables.metric_table({"x": part}).loc["x", "ECE"] == ""


def test_goal_table():
    table = tables.goal_table(
        {
            "refused (<= 5%)": {"value": 0.02, "ci95": [0.01, 0.04], "met": True, "shown": True},
            "corpus (>= 95%)": {"value": 0.96, "ci95": [0.88, 0.99], "met": True, "shown": False},
            "AUC (>= 0.90)": {"value": 0.81, "ci95": [0.7, 0.9], "met": False, "shown": False},
        }
    )
    assert list(table.columns) == ["figure", "status"]
    assert table.loc["refused (<= 5%)"].tolist() == ["2.0 [1.0, 4.0]", "met"]
    assert table.loc["corpus (>= 95%)"].tolist() == [
        "96.0 [88.0, 99.0]",
        "met on the estimate only",
    ]
    assert table.loc["AUC (>= 0.90)"].tolist() == ["81.0 [70.0, 90.0]", "SHORTFALL"]


@pytest.mark.parametrize(
    ("external", "expected"),
    [
        ((0.5, 0.4, 0.6), "falls"),  # wholly below [0.7, 0.9]
        ((0.95, 0.91, 0.99), "rises"),  # wholly above
        ((0.65, 0.55, 0.75), "not shown to move"),  # overlapping
        ((0.6, 0.5, 0.7), "not shown to move"),  # touching: not wholly below
        ((0.8, 0.6, 1.0), "not shown to move"),  # around it
    ],
)
def test_holds(external, expected):
    internal = binary(ba=(0.8, 0.7, 0.9))
    assert es.holds(internal, binary(ba=external)) == expected


def test_holds_reads_the_key_it_is_given():
    internal = binary(ba=(0.8, 0.7, 0.9), auc=(0.9, 0.85, 0.95))
    outside = binary(ba=(0.8, 0.7, 0.9), auc=(0.6, 0.5, 0.7))
    assert es.holds(internal, outside) == "not shown to move"
    assert es.holds(internal, outside, key="auc") == "falls"


@pytest.mark.parametrize(
    ("external", "phrase"),
    [
        ((0.5, 0.4, 0.6), "it does not hold"),
        ((0.95, 0.91, 0.99), "it holds"),
        ((0.75, 0.6, 0.85), "the data do not show it falling"),
    ],
)
def test_model_sentence_follows_the_numbers(external, phrase):
    internal = binary(ba=(0.8, 0.7, 0.9), spec=(0.7, 0.6, 0.8))
    outside = binary(ba=external, spec=(0.3, 0.2, 0.4))
    text = es.model_sentence("test model", internal, outside)
    assert text.startswith("The test model: balanced accuracy ")
    assert f": {phrase} (" in text
    others = {"it does not hold", "it holds", "the data do not show it falling"} - {phrase}
    assert not any(f": {o} (" in text for o in others)
    value, lo, hi = (100 * v for v in external)
    assert f"balanced accuracy {value:.1f} [{lo:.1f}, {hi:.1f}]% and AUC" in text
    assert "against 80.0 [70.0, 90.0]%" in text
    assert "specificity 30.0 [20.0, 40.0]%" in text


def transfer_part(chosen="as shipped") -> dict:
    return {
        "chosen": chosen,
        "rule": "a recipe ships only if shown better on the simulated shift",
        "why": {
            "shift augmentation": "passes: macro-F1 not shown worse, simulated-shift score "
            "shown better",
            "standardised input": "simulated-shift balanced accuracy not shown better "
            "(interval lower -0.010)",
        },
        "external": {
            "as shipped": binary(spec=(0.3, 0.2, 0.4)),
            "shift augmentation": binary(spec=(0.4, 0.3, 0.5)),
            "standardised input": binary(),
        },
        "external_paired": {
            "shift augmentation": {"balanced_accuracy": paired(0.05, 0.01, 0.09)},
            "standardised input": {"balanced_accuracy": paired(-0.08, -0.15, -0.02)},
            "third": {"balanced_accuracy": paired(0.01, -0.03, 0.05)},
        },
    }


def test_transfer_sentence_names_the_choice_and_each_difference():
    text = es.transfer_sentence(transfer_part("shift augmentation"))
    assert "ships **shift augmentation**" in text
    assert "shift augmentation is better than the recipe 06 selected, outside" in text
    assert "(balanced accuracy +5.0 [+1.0, +9.0] points)" in text
    assert "standardised input is worse than" in text
    assert "third is not shown different from" in text
    kept = es.transfer_sentence(transfer_part("as shipped"))
    assert "keeps the shipped recipe" in kept and "**" not in kept


def test_difference_at_zero_is_not_shown():
    part = transfer_part()
    part["external_paired"] = {
        "x": {"balanced_accuracy": paired(0.02, 0.0, 0.04)},
        "y": {"balanced_accuracy": paired(-0.02, -0.04, 0.0)},
    }
    text = es.transfer_sentence(part)
    assert "x is not shown different" in text and "y is not shown different" in text


def goals() -> dict:
    return {
        "external CT slices refused (<= 5%)": {"value": 0.49, "ci95": [0.44, 0.54], "met": False},
        "held-out non-CT refused (>= 95%)": {
            "value": 0.966,
            "ci95": [0.883, 0.996],
            "met": True,
            "shown": False,
        },
        "held-out CT refused (<= 1%)": {"value": 0.002, "ci95": [0, 0.006], "met": True},
        "macro-F1 not shown worse": {
            "value": 0.056,
            "ci95": [-0.007, 0.125],
            "met": True,
            "shown": True,
            "unit": "points",
        },
    }


def test_goal_lines_name_a_shortfall_with_its_figure():
    lines = es.goal_lines(goals())
    assert lines == [
        "  * SHORTFALL: external CT slices refused (<= 5%): 49.0 [44.0, 54.0]%",
        "  * met on the estimate only: held-out non-CT refused (>= 95%): 96.6 [88.3, 99.6]%",
        "  * met: held-out CT refused (<= 1%): 0.2 [0.0, 0.6]%",
        "  * met: macro-F1 not shown worse: +5.6 [-0.7, +12.5] points",
    ]
    assert es.goal_lines({}) == []


def external_part() -> dict:
    """A minimal ``metrics["external"]``: what the summary's functions read."""
    check = {
        "refused_share": metric(0.12, 0.08, 0.17),
        "unlike_share": metric(0.3, 0.25, 0.36),
    }
    return {
        "set": {"distinct slices": 578, "case proxies": 317, "proxy": "a guess at patients"},
        "internal": {
            "paper model": binary(ba=(0.9, 0.85, 0.95), spec=(0.8, 0.7, 0.9)),
            "shipped model": binary(ba=(0.85, 0.8, 0.9), spec=(0.7, 0.6, 0.8)),
        },
        "models": {
            "paper model": {
                "metrics": binary(ba=(0.5, 0.45, 0.55), spec=(0.1, 0.0, 0.2)),
                "metrics_accepted": binary(),
                "input_check": check,
            },
            "shipped model": {
                "metrics": binary(ba=(0.82, 0.75, 0.88), spec=(0.6, 0.5, 0.7)),
                "metrics_accepted": binary(spec=(0.65, 0.5, 0.8)),
                "input_check": check,
            },
        },
        "transfer": transfer_part("standardised input"),
        "goals": goals(),
    }


def test_plain_lines():
    assert es.plain_lines({}) == [] and es.plain_lines({"beyond": {}}) == []
    lines = es.plain_lines({"external": external_part()})
    first = lines[0]
    assert first.startswith("* **At another hospital** (Chest CT-Scan images, 578 distinct")
    assert "317 case proxies" in first
    assert "The paper's model: balanced accuracy 50.0 [45.0, 55.0]%" in first
    assert first.index("it does not hold") < first.index("The shipped model")
    assert "The shipped model: balanced accuracy 82.0 [75.0, 88.0]%" in first
    assert "the data do not show it falling" in first
    assert "ships **standardised input**" in first
    assert "refuses 12.0 [8.0, 17.0]% of the external CT slices" in first
    assert "warns on 30.0 [25.0, 36.0]%" in first
    assert lines[1].startswith("* **Goals of the external validation**")
    assert lines[2:] == es.goal_lines(goals())


def test_section():
    assert es.section({}) == []
    text = "\n".join(es.section({"external": external_part()}))
    assert text.startswith("## At another hospital (notebook 09)")
    assert "External set: a guess at patients" in text
    for name in ("paper model", "shipped model"):
        for suffix in ("IQ-OTH/NCCD patients", "external", "external, accepted"):
            assert f"| {name}: {suffix} |" in text
    assert "| model: set |" in text and "| recipe |" in text
    for recipe in ("as shipped", "shift augmentation", "standardised input"):
        assert f"| {recipe} | 40 | 25 |" in text
    assert "Shipping rule: a recipe ships only if shown better" in text
    assert "* standardised input: simulated-shift balanced accuracy not shown better" in text
    # the accepted rows are the accepted metrics: no specificity where none was planted
    row = next(line for line in text.splitlines() if "| paper model: external, accepted |" in line)
    assert "|  |" in row


def test_every_passage_of_the_external_template_is_reached(monkeypatch):
    """Planted figures take every branch: no passage of ``external.md`` is dead, and every
    passage a branch asks for exists."""
    used, fill = set(), prose.fill

    def recording(name, key, /, **values):
        used.add((name, key))
        return fill(name, key, **values)

    monkeypatch.setattr(prose, "fill", recording)
    kept = external_part()
    kept["transfer"] = transfer_part("as shipped")
    unjudged = external_part()
    unjudged["models"]["shipped model"]["input_check"] = {"refused_share": None}
    chosen_in_08 = external_part()
    chosen_in_08["shipped"] = {"recipe": "MLP head", "selection": "nested (06) + rule (09)"}
    for where in ("internal", "models"):
        chosen_in_08[where]["shipped model (06)"] = chosen_in_08[where]["shipped model"]
    for part in (external_part(), kept, unjudged, chosen_in_08):
        es.plain_lines({"external": part})
        es.section({"external": part})
        for key, name, inside in es.model_names(part):
            es.model_sentence(name, part["internal"][key], part["models"][key]["metrics"], inside)
    inside = binary(ba=(0.5, 0.4, 0.6))
    es.model_sentence("x", inside, binary(ba=(0.9, 0.8, 0.95)))  # rises
    es.model_sentence("x", inside, {**binary(), "balanced_accuracy": None})  # not measured
    assert {("external", key) for key in prose.passages("external")} - used == set()


def test_model_names_follow_where_the_shipped_model_was_chosen():
    part = external_part()
    assert [key for key, _, _ in es.model_names(part)] == ["paper model", "shipped model"]
    part["shipped"] = {"recipe": "MLP head", "selection": "nested (06) + rule (09)"}
    names = es.model_names(part)
    assert [key for key, _, _ in names] == ["paper model", "shipped model (06)", "shipped model"]
    assert "MLP head" in names[2][1] and names[2][2] != names[1][2]  # not nested, said so
    assert all(inside.startswith(names[0][2]) for _, _, inside in names)  # all held-out patients
