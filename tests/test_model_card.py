"""The model card's measured limits, chosen by planted figures."""

import copy
import json

import pytest

from lungct_utils import config, prose
from lungct_utils.deploy import model_card

CELL = "microscopy/astronomy/other modality: skimage cell (microscopy)"


@pytest.fixture(scope="module")
def real():
    return json.loads((config.REPORTS / "metrics.json").read_text())


@pytest.fixture
def metrics(real):
    return copy.deepcopy(real)


def deployment(float_acc=0.9747, int8_acc=0.9684, commit="abc1234", n=158):
    row = {
        "latency_ms": {"1": 5.0, "2": 3.0},
        "size_mb": 1.0,
        "agreement_vs_keras": 1.0,
        "mean_abs_prob_diff_vs_keras": 0.0,
        "max_abs_prob_diff_vs_keras": 0.0,
    }
    meta = {"protocol": "cases", "test_images": n, "runs": 10, "model": "m.keras"}
    return {
        "keras": dict(row, accuracy=float_acc),
        "tflite_float32": dict(row, accuracy=float_acc),
        "tflite_int8": dict(row, accuracy=int8_acc),
        "_meta": {**meta, "git_commit": commit},
    }


def study(float_acc, int8_accs, commit="abc1234"):
    rows = [{"calibration": "float32", "test_accuracy": float_acc}]
    rows += [{"calibration": "int8, min/max", "test_accuracy": a} for a in int8_accs]
    return {"_calibration_study": rows, "_meta": {"git_commit": commit}}


def line(text: str, start: str) -> str:
    return next(x for x in text.splitlines() if x.startswith(start))


def test_int8_goal_follows_the_accuracy_change(metrics):
    short = model_card.render(metrics, deployment(0.9747, 0.9557))
    assert "SHORTFALL for the file `make report` exports, -1.90 points" in short
    assert "one image is 0.63 points" in short
    passing = model_card.render(metrics, deployment(0.9747, 0.9684))
    assert "met for the file `make report` exports, -0.63 points" in passing
    assert "SHORTFALL" not in line(passing, "* **int8 file**")
    assert "## Deployment" not in model_card.render(metrics, None)
    assert "**int8 file**" not in model_card.render(metrics, None)


@pytest.mark.parametrize(
    ("f32_acc", "int8_acc", "status"),
    [
        (0.7389, 0.7305, "met"),
        (0.7389, 0.7285, "SHORTFALL"),
        (0.97, 0.96, "met"),  # exactly one image in a hundred: -1.0000000000000009 points
        (0.97, 0.9599, "SHORTFALL"),
    ],
)
def test_int8_goal_is_the_deployment_reports(f32_acc, int8_acc, status):
    from lungct_utils.studies.deployment import format_deployment

    result = deployment(f32_acc, int8_acc)
    assert model_card.int8_status(model_card.int8_change(result)) == status
    report = line(format_deployment(result, "Deployment"), "* tflite_int8")
    assert report.endswith("; met).") == (status == "met")


def test_int8_study_counts_the_draws_that_miss_and_flags_another_commit(metrics):
    dep = deployment(0.9747, 0.9684)
    text = model_card.render(metrics, dep, study(1.0, [0.981, 0.9873, 0.995]))
    sub = line(text, "  * Over 3 draws")
    assert "SHORTFALL in 2 of 3 draws; mean -1.22, worst -1.90 points." in sub
    assert "rerun" not in sub
    assert "met in every draw" in model_card.render(metrics, dep, study(1.0, [0.995, 0.999]))
    stale = model_card.render(metrics, dep, study(1.0, [0.99], commit="772261a0+dirty"))
    assert "commit `772261a` with uncommitted changes, not this card's `abc1234`" in stale
    assert "scored 100.00% on these images, this one 97.47%" in stale
    # the study run right after make report, before its reports are committed, is current
    same = model_card.render(metrics, dep, study(1.0, [0.99], commit="abc1234+dirty"))
    assert "rerun" not in line(same, "  * Over 1 draw")
    # another commit whose float32 file scores the same on the images is named, not stale
    later = model_card.render(metrics, dep, study(0.9747, [0.97], commit="def5678"))
    assert "commit `def5678`, whose float32 file scores as this card's" in later
    assert "rerun" not in line(later, "  * Over 1 draw")
    assert "Over other draws of the representative images: not measured." in (
        model_card.render(metrics, dep)
    )


def test_every_corpus_item_that_passes_is_named_with_its_count(metrics):
    check = metrics["input_check"]
    check["corpus_passed"] = {
        "folds": 25,
        "items": {
            "mobilenet_v2": {
                "design": {CELL: 21, "grey look-alike (MRI): drawn axial head slice": 3},
                "held-out": {"grey look-alike (MRI): s1045.ima, T2-like": 8, "never": 0},
            },
            "paper": {"design": {"a paper-scaling item": 25}},
        },
    }
    bullet = line(model_card.render(metrics, None), "* **Non-CT images that pass")
    assert (
        f"Items that pass in any fold: {CELL} (design part): 21 of 25 folds; "
        "grey look-alike (MRI): s1045.ima, T2-like (held-out part): 8 of 25 folds; "
        "grey look-alike (MRI): drawn axial head slice (design part): 3 of 25 folds." in bullet
    )
    assert "never" not in bullet and "paper-scaling" not in bullet
    check["corpus_passed"]["items"]["mobilenet_v2"] = {}
    assert "Items that pass in any fold: none." in model_card.render(metrics, None)
    del check["corpus_passed"]
    assert "Which items pass is not recorded in `metrics.json`" in model_card.render(metrics, None)


def test_corpus_pass_counts_come_from_the_rates(metrics):
    rate = metrics["input_check"]["rates"]["not CT, held-out part"]["mobilenet_v2"]
    rate.update(flagged=1400, rows=1500, units=60)
    bullet = line(model_card.render(metrics, None), "* **Non-CT images that pass")
    assert "100 of the 1,500 checks of the held-out part (60 images x 25 outer folds)" in bullet


def test_shipped_check_names_the_corpus_images_it_lets_through(metrics):
    ext = metrics["external"]["input_check"]
    ext["corpus_held_out"] = {"not_ct": 57, "ct_unlike_training": 1, "ok": 1}
    ext["corpus_not_refused"] = {CELL: "ok", "text: page": "ct_unlike_training"}
    bullet = line(model_card.render(metrics, None), "* **Non-CT images that pass")
    assert "refuses 57 of the 59 held-out images; the other 2 keep a class" in bullet
    assert f"{CELL} (`ok`); text: page (`ct_unlike_training`)." in bullet
    ext["corpus_held_out"] = {"not_ct": 59}
    bullet = line(model_card.render(metrics, None), "* **Non-CT images that pass")
    assert bullet.endswith("refuses 59 of the 59 held-out images.")


@pytest.mark.parametrize(
    ("rate", "high", "status"),
    [
        (0.0087, 0.0367, "met on the estimate only"),
        (0.004, 0.009, "met"),
        (0.02, 0.05, "SHORTFALL"),
    ],
)
def test_ct_flag_states_the_interval_and_its_status(metrics, rate, high, status):
    ct = metrics["input_check"]["rates"]["held-out CT originals"]["mobilenet_v2"]
    ct.update(rate=rate, ci95=[0.0, high])
    bullet = line(model_card.render(metrics, None), "* **New patients' CT slices flagged**")
    assert f"the interval allows up to {100 * high:.2f}% of a new patient's slices" in bullet
    assert f"(goal: at most 1%; {status})." in bullet


def test_without_the_input_check_or_the_external_set(metrics):
    del metrics["input_check"], metrics["external"]
    text = model_card.render(metrics, None)
    assert "## Measured limits" not in text
    assert "no other hospital's slices have been scored" in text
    assert "* **Other hospitals**: any scanner or centre other than the training hospital's." in (
        text
    )


def test_unmeasured_other_hospitals_follow_the_external_classes(metrics):
    text = model_card.render(metrics, None)
    assert "and no benign class, so per-patient (`--study`) answers and benign recall" in text
    metrics["external"]["set"]["classes"]["benign"] = 12
    other = line(model_card.render(metrics, None), "* **Other hospitals**: any scanner")
    assert "benign" not in other


def test_external_goals_and_their_status_are_on_the_card(metrics):
    goals = metrics["external"]["goals"]
    name = next(iter(goals))
    goals[name] = {"value": 0.5, "ci95": [0.4, 0.6], "met": False, "shown": False, "unit": "%"}
    assert f"* SHORTFALL: {name}: 50.0 [40.0, 60.0]%" in model_card.render(metrics, None)


def test_main_reads_the_deployment_parts(tmp_path, real):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics.json").write_text(json.dumps(real))
    dep = deployment(0.9747, 0.9557)
    (tmp_path / "metrics" / "deployment.json").write_text(json.dumps(dep))
    stud = study(0.9747, [0.97])
    (tmp_path / "metrics" / "deployment_study.json").write_text(json.dumps(stud))
    text = model_card.main(tmp_path)
    assert (tmp_path / "MODEL_CARD.md").read_text() == text
    assert "SHORTFALL for the file" in text and "Over 1 draw of" in text


def test_summary_and_card_name_the_same_passing_items(metrics):
    from lungct_utils import report

    passed = {"design": {CELL: 21, "b": 3, "a": 3}, "held-out": {"c": 8, "d": 0}}
    metrics["input_check"]["corpus_passed"] = {"folds": 25, "items": {"mobilenet_v2": passed}}
    rates = metrics["input_check"]["rates"]
    rates["not CT, design part"]["mobilenet_v2"].update(flagged=851, rows=875)
    rates["not CT, held-out part"]["mobilenet_v2"].update(flagged=1467, rows=1475)
    summary = "\n".join(report.input_check_section(metrics))
    items = model_card.corpus_passes(metrics["input_check"])
    assert items[1:] == [
        "c (held-out part): 8 of 25 folds",
        "a (design part): 3 of 25 folds",
        "b (design part): 3 of 25 folds",
    ]
    assert "in 24 of 875 checks of the design part and 8 of 1475 checks of the held-out part" in (
        summary
    )
    assert "(a check: one image in one outer fold): " + "; ".join(items) + "." in summary
    del metrics["input_check"]["corpus_passed"]
    assert "which items is not recorded in `metrics.json`" in (
        "\n".join(report.input_check_section(metrics))
    )


def test_the_cards_words_are_reworded_in_its_template_alone(metrics, tmp_path, monkeypatch):
    for path in prose.TEMPLATES.glob("*.md"):
        (tmp_path / path.name).write_text(path.read_text())
    card = tmp_path / "model_card.md"
    card.write_text(card.read_text().replace("**Not a medical device.**", "**No device.**"))
    monkeypatch.setattr(prose, "TEMPLATES", tmp_path)
    prose.passages.cache_clear()
    try:
        text = model_card.render(metrics, None)
    finally:
        prose.passages.cache_clear()
    assert "**No device.** It must not be used" in text and "Not a medical" not in text
