"""The notebooks' sentences (:mod:`lungct_utils.sentences`) and the report's use of them.

Each is rendered on planted numbers on both sides of the line where its words change, so a
sentence that stops following its numbers fails here. No figure of the real run is used.
"""

import math

import numpy as np
import pytest

from lungct_utils import config, evaluate, prose, report, sentences

PAPER_PARAMS = config.PAPER.to_dict()


@pytest.fixture
def reworded(tmp_path, monkeypatch):
    """A copy of the shipped templates in which one passage can be reworded."""
    for path in prose.TEMPLATES.glob("*.md"):
        (tmp_path / path.name).write_text(path.read_text())
    monkeypatch.setattr(prose, "TEMPLATES", tmp_path)
    prose.passages.cache_clear()
    yield tmp_path
    prose.passages.cache_clear()


def test_a_sentence_is_reworded_in_the_template_alone(reworded):
    path = reworded / "sentences.md"
    text = path.read_text().replace("keep source originals apart", "hold sources out")
    path.write_text(text.replace("\n{n} times\n", "\n{n} runs\n"))
    rows = {p: _leak(10, 0, 0, 1) for p in ("grouped", "cases")}
    assert "So `grouped` and `cases` hold sources out, and no protocol" in (
        sentences.leakage_sentence(rows)
    )
    settings = sentences.protocol_settings_sentence(PAPER_PARAMS)
    assert "repeated 5 runs with fresh fold assignments" in settings


def test_split_label_and_settings_follow_the_config():
    assert sentences.split_label(PAPER_PARAMS) == "70/15/15"
    text = sentences.protocol_settings_sentence(PAPER_PARAMS)
    assert "Holdout split 70/15/15 (train/validation/test; the paper's, II.B)" in text
    assert "15/85 of the training folds" in text
    assert "5-fold CV (the paper's, II.F), repeated 5 times" in text
    other = config.PAPER.with_overrides(
        train_frac=0.6, val_frac=0.2, test_frac=0.2, n_folds=3, cv_repeats=1
    ).to_dict()
    text = sentences.protocol_settings_sentence(other)
    assert "Holdout split 60/20/20 (train/validation/test; the paper's: 70/15/15)" in text
    assert "20/80 of the training folds" in text
    assert "3-fold CV (the paper's: 5), run once, as the paper's" in text
    assert "the paper's, II" not in text
    with pytest.raises(ValueError, match=r"do not split 1"):
        sentences.split_label({**PAPER_PARAMS, "test_frac": 0.3})
    with pytest.raises(ValueError, match=r"train_frac=1.5"):
        sentences.split_label({**PAPER_PARAMS, "train_frac": 1.5})
    with pytest.raises(ValueError, match=r"n_folds=1 "):
        sentences.protocol_settings_sentence({**PAPER_PARAMS, "n_folds": 1})


def test_reproduction_section_takes_its_split_and_folds_from_the_metrics():
    hold = {
        "accuracy": 0.9,
        "macro_f1": 0.9,
        "accuracy_ci95": [0.8, 0.95],
        "macro_f1_ci95": [0.8, 0.95],
        "epochs": 12,
        "per_class": {
            c: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 10, "recall_ci95": [0.8, 1]}
            for c in config.CLASSES
        },
    }
    fold = {"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9}
    cv = evaluate.summarize_folds([fold] * 3)
    spread = {"mean": 0.9, "sd": 0.01, "min": 0.8123, "max": 0.9456}
    metrics = {
        "seed": 7,
        "params": {**PAPER_PARAMS, "train_frac": 0.8, "val_frac": 0.1, "test_frac": 0.1},
        "cases": {"stated": {"benign": 10, "malignant": 20, "normal": 30}},
        "protocols": {"paper": {"holdout": hold, "cv": cv}, "cases": {"holdout": hold}},
        "paper_seeds": {
            "seeds": [7, 8],
            "holdout_accuracy": spread,
            "cv_accuracy": spread,
            "holdout_accuracy_per_seed": [0.8123, 0.9456],
            "cv_accuracy_per_seed": [0.9, 0.9],
        },
    }
    text = "\n".join(report.reproduction_section(metrics))
    assert "Table IV (3-fold CV)" in text and "Table IV (5-fold" not in text
    assert "One 80/10/10 split per protocol" in text and "70/15/15 split" not in text
    assert "spans 81.23-94.56% over 2 seeds" in text
    assert "about 6 of the 60 stated patients" in text
    assert sentences.protocol_settings_sentence(metrics["params"]) in text


def test_seed_spread_sentence_names_the_machine_only_from_the_data():
    seeds = {
        "seeds": [1, 2],
        "holdout_accuracy_per_seed": [0.9, 0.8],
        "holdout_accuracy": {"mean": 0.85, "sd": 0.07, "min": 0.8, "max": 0.9},
    }
    plain = report.seed_spread_sentence(seeds)
    assert "drawn on" not in plain and "lungct_utils drift" in plain
    named = report.seed_spread_sentence({**seeds, "cpu": {"model": "Planted CPU", "cores": 3}})
    assert "10.00 points from the lowest to the highest, drawn on 3 cores of Planted CPU." in named


@pytest.mark.parametrize(
    ("pseudo", "words"),
    [
        ({"a": 40, "b": 20}, "3.0 times as many pseudo-cases (60) as stated cases (20;"),
        ({"a": 5, "b": 5}, "fewer pseudo-cases (10) than stated cases (20;"),
        ({"a": 12, "b": 10}, "about as many pseudo-cases (22) as stated cases (20;"),
    ],
)
def test_pseudo_case_sentence_flips_with_the_ratio(pseudo, words):
    text = sentences.pseudo_case_sentence(pseudo, {"a": 10, "b": 10})
    assert words in text and f"a {pseudo['a']} / 10, b {pseudo['b']} / 10" in text
    assert ("cannot find the patient" in text) == ("about as many" not in text)


def test_pseudo_case_sentence_checks_its_counts():
    with pytest.raises(ValueError, match=r"classes \['a'\] against stated \['a', 'b'\]"):
        sentences.pseudo_case_sentence({"a": 1}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match=r"stated\['b'\]=0 "):
        sentences.pseudo_case_sentence({"a": 1, "b": 1}, {"a": 1, "b": 0})


def test_reconstruction_settings_sentence_quotes_every_number():
    settings = {
        "min_run": 4,
        "long_run_factor": 3.5,
        "min_links": 1,
        "same_scan_gap": 6,
        "far_apart": 70,
        "thumbnail_side": 16,
    }
    text = sentences.reconstruction_settings_sentence(settings)
    for words in (
        "at most 6 numbers apart",
        "more than 70 numbers apart",
        "16x16 grey",
        "shorter than 4 slices",
        "longer than 3.5 times",
        "at least 1 distinct slice on each side",
    ):
        assert words in text
    with pytest.raises(ValueError, match=r"long_run_factor=1.0 must exceed 1"):
        sentences.reconstruction_settings_sentence({**settings, "long_run_factor": 1.0})
    with pytest.raises(ValueError, match=r"min_run=0 "):
        sentences.reconstruction_settings_sentence({**settings, "min_run": 0})


def test_least_alike_sentence_says_cut_or_kept_as_the_runs_say():
    numbers, sims = [10, 11, 12, 13], [0.9, 0.17, 0.8, np.nan]
    cut = sentences.least_alike_sentence(numbers, sims, ["r1", "r1", "r2", "r2"])
    assert "(11) and (12), similarity 0.17: the rule cuts there" in cut
    kept = sentences.least_alike_sentence(numbers, sims, ["r1", "r1", "r1", "r2"])
    assert "(11) and (12), similarity 0.17, yet the rule keeps them in one run" in kept
    # the last slice's similarity points outside the strip and is ignored
    last = sentences.least_alike_sentence([1, 2], [0.5, 0.01], ["r", "r"])
    assert "(1) and (2), similarity 0.50" in last
    with pytest.raises(ValueError, match=r"2 numbers, 3 similarities"):
        sentences.least_alike_sentence([1, 2], [0.1, 0.2, 0.3], ["r", "r"])
    with pytest.raises(ValueError, match=r"no finite similarity"):
        sentences.least_alike_sentence([1, 2], [math.nan, 0.2], ["r", "r"])


def test_non_square_sentence_flips_with_the_share_of_one_class():
    totals = {"benign": 10, "malignant": 70, "normal": 20}
    every = sentences.non_square_sentence({"benign": 0, "malignant": 7, "normal": 0}, totals)
    assert every.startswith("Every non-square image (7) is malignant: a non-square image is")
    assert "carries label information" in every and "marks only 10% of the malignant" in every
    most = sentences.non_square_sentence({"benign": 0, "malignant": 6, "normal": 1}, totals)
    assert most.startswith("Of the 7 non-square images, 6 malignant and 1 normal: a non-square")
    spread = sentences.non_square_sentence({"benign": 3, "malignant": 2, "normal": 2}, totals)
    assert "spread over the classes, image shape says little" in spread
    assert "carries" not in spread
    none = sentences.non_square_sentence(
        {"benign": 0, "malignant": 0}, {"benign": 1, "malignant": 1}
    )
    assert "carries no label" in none
    with pytest.raises(ValueError, match=r"counts\['benign'\]=-1 "):
        sentences.non_square_sentence({"benign": -1}, {"benign": 1})
    with pytest.raises(ValueError, match=r"totals\['benign'\]=2 is not a whole number >= 3"):
        sentences.non_square_sentence({"benign": 3}, {"benign": 2})


def test_duplicate_groups_sentence_counts_pairs_and_classes():
    assert sentences.duplicate_groups_sentence([["a", "a"], ["b", "b"]]) == (
        "All 2 groups are pairs within one class."
    )
    mixed = sentences.duplicate_groups_sentence([["a", "a", "a"], ["a", "b"]])
    assert mixed == (
        "Of the 2 groups, 1 are pairs and 1 larger; 1 lie within one class and 1 across classes."
    )
    assert sentences.duplicate_groups_sentence([]) == "No two files are identical."
    with pytest.raises(ValueError, match=r"fewer than 2 files: \[\['a'\]\]"):
        sentences.duplicate_groups_sentence([["a"]])


def test_augmentation_sentence_flips_between_most_and_fewer_than_half():
    many = sentences.augmentation_sentence({"a": 10, "b": 50}, {"a": 100, "b": 100}, 0.7)
    assert many.startswith("A has 10 originals and needs 90 copies: each a original appears")
    assert "about 10 times" in many and "most a test images have one" in many
    # twice each: one sibling, in training with the chance 0.3 < 1/2
    few = sentences.augmentation_sentence({"a": 10}, {"a": 20}, 0.3)
    assert "a chance of about 30%: fewer than half of the a test images" in few
    with pytest.raises(ValueError, match=r"augmented\['a'\]=5 is not a whole number >= 10"):
        sentences.augmentation_sentence({"a": 10}, {"a": 5}, 0.7)


def _leak(n, copies, source, case):
    return {
        "test images scored": n,
        "augmented copies among them": copies,
        "source original in train": source,
        "case (patient) in train": case,
    }


def test_leakage_sentence_names_who_keeps_sources_and_patients_apart():
    rows = {"paper": _leak(100, 70, 68, 99), "grouped": _leak(50, 0, 0, 40)}
    text = sentences.leakage_sentence(rows)
    assert "`paper` 70% augmented copies, 68% with their source original" in text
    assert "So `grouped` keeps source originals apart, and no protocol keeps patients apart." in (
        text
    )
    rows["cases"] = _leak(40, 0, 0, 0)
    text = sentences.leakage_sentence(rows)
    assert "`grouped` and `cases` keep source originals apart, and `cases` keeps patients" in text
    with pytest.raises(ValueError, match=r"paper: counts \[70, 68, 101\] above 100 tests"):
        sentences.leakage_sentence({"paper": _leak(100, 70, 68, 101)})


def test_shortcut_sentence_flips_at_chance_and_names_the_better_probe():
    thumb = sentences.shortcut_sentence(0.335, 0.5)
    assert "shape alone 33.50% (at chance), the thumbnail 50.00% (+16.7 points" in thumb
    assert "The thumbnail (brightness, outline) carries part of the label" in thumb
    shape = sentences.shortcut_sentence(0.6, 0.4)
    assert "Image shape carries part of the label" in shape
    neither = sentences.shortcut_sentence(0.34, 0.335)
    assert "Neither gets above chance" in neither and "carries" not in neither
    assert "(chance 50.00%)" in sentences.shortcut_sentence(0.5, 0.9, n_classes=2)
    with pytest.raises(ValueError, match=r"thumbnail=1.2 is not a fraction"):
        sentences.shortcut_sentence(0.5, 1.2)


def test_parameter_count_sentence_says_whether_the_head_is_the_papers():
    counts = {"total": 110, "trainable": 10, "non_trainable": 100}
    paper = sentences.parameter_count_sentence(counts, config.PAPER.dense_units)
    assert paper.startswith("The network has 110 parameters: the head's 10 train")
    assert "The head is the paper's, Dense(128)" in paper
    other = sentences.parameter_count_sentence(counts, 64)
    assert "The head has Dense(64), not the paper's Dense(128)" in other
    assert "The head is the paper's" not in other
    with pytest.raises(ValueError, match=r"total 111 is not 10 \+ 100"):
        sentences.parameter_count_sentence({**counts, "total": 111}, 128)


def test_epochs_sentence_flips_between_early_stop_and_the_maximum():
    early = sentences.epochs_sentence({"paper": 20, "cases": 9}, 50, restore_best=False)
    assert f"stopped after {config.PAPER_EPOCHS} epochs (III.C)" in early
    assert "ours ran 20 (`paper`), 9 (`cases`) epochs of at most 50: every run stopped early" in (
        early
    )
    assert "its last epoch's, not its best one's" in early
    some = sentences.epochs_sentence({"paper": 50, "cases": 9}, 50, restore_best=True)
    assert "`paper` reached the maximum" in some and "its best epoch's" in some
    assert "every run reached the maximum" in sentences.epochs_sentence({"a": 5}, 5, False)
    with pytest.raises(ValueError, match=r"epochs\['a'\]=6 above the maximum 5"):
        sentences.epochs_sentence({"a": 6}, 5, False)


def _holdout(acc, lo, hi, recalls):
    per_class = {c: {"recall": r} for c, r in zip(config.CLASSES, recalls, strict=True)}
    return {"accuracy": acc, "accuracy_ci95": [lo, hi], "per_class": per_class}


@pytest.mark.parametrize(
    ("interval", "words"),
    [
        ((0.96, 0.98), "its interval holds the paper's 97%"),
        ((0.90, 0.95), "below the paper's 97%"),
        ((0.975, 0.99), "above the paper's 97%"),
    ],
)
def test_holdout_sentence_places_the_paper_against_the_interval(interval, words):
    lo, hi = interval
    text = sentences.holdout_sentence({"paper": _holdout((lo + hi) / 2, lo, hi, (1, 1, 1))})
    assert words in text and "honest" not in text


def test_holdout_sentence_names_the_class_that_drops_most():
    paper = _holdout(0.97, 0.95, 0.99, (0.9, 0.9, 0.9))
    text = sentences.holdout_sentence(
        {"paper": paper, "cases": _holdout(0.8, 0.7, 0.9, (0.9, 0.5, 0.8))}
    )
    assert "accuracy is lower: 80.00% (`cases`)" in text
    assert "malignant recall drops most, by 40.0 points on average" in text
    higher = sentences.holdout_sentence(
        {"paper": paper, "grouped": _holdout(0.98, 0.9, 0.99, (0.95, 0.95, 0.95))}
    )
    assert "accuracy is not lower" in higher and "no class's recall drops" in higher
    with pytest.raises(ValueError, match=r"no 'paper' holdout among \['cases'\]"):
        sentences.holdout_sentence({"cases": paper})
    with pytest.raises(ValueError, match=r"accuracy 0.5 outside its interval"):
        sentences.holdout_sentence({"paper": _holdout(0.5, 0.6, 0.7, (1, 1, 1))})


def test_input_check_sentences_quote_their_settings():
    text = sentences.input_check_settings_sentence(0.05, 0.01, 0.003, 2, 4)
    assert "more than 5% of coloured pixels" in text
    assert "flag 1% (layout) and 0.3% (features)" in text
    assert "each of the 8 outer folds (2 repeats x 4 folds)" in text
    goal = sentences.input_check_goal_sentence(0.9, 0.02)
    assert "at least 90% of the held-out non-CT images flagged, at most 2% of" in goal
    with pytest.raises(ValueError, match=r"layout_rate=2 is not a fraction"):
        sentences.input_check_settings_sentence(0.05, 2, 0.003, 2, 4)


def _summary(bal, recalls):
    mean = {"balanced_accuracy": bal, **{f"recall_{c}": r for c, r in recalls.items()}}
    return {"mean": mean, "ci95": {k: [v - 0.1, v + 0.1] for k, v in mean.items()}}


def test_protocol_cost_sentence_says_cost_or_gain_and_the_weakest_class():
    seeds = {"cv_balanced_accuracy": {"mean": 0.9}}
    recalls = {"benign": 0.6, "malignant": 0.3, "normal": 0.8}
    honest = {"grouped": _summary(0.85, recalls), "cases": _summary(0.95, recalls)}
    text = sentences.protocol_cost_sentence(seeds, honest, {"benign": 15, "malignant": 40})
    assert "(`grouped`) costs 5.0 points" in text and "(`cases`) gains 5.0 points" in text
    assert "the lowest recall is malignant's, 30.00 [20.00, 40.00]%, a class of 40" in text
    alone = sentences.protocol_cost_sentence(seeds, {"grouped": _summary(0.9, recalls)}, {})
    assert "changes by 0.0 points" in alone and "lowest recall" not in alone
    with pytest.raises(ValueError, match=r"no honest protocol"):
        sentences.protocol_cost_sentence(seeds, {}, {})


def _shift(grey, dark, width, height):
    return {
        "mean grey level": grey,
        "share of pixels below 10": dark,
        "median body width": width,
        "median body height": height,
    }


def test_domain_shift_sentence_flips_each_comparison():
    internal = _shift(60.0, 0.5, 0.7, 0.6)
    text = sentences.domain_shift_sentence(
        {"IQ-OTH/NCCD": internal, "external": _shift(90.0, 0.2, 0.9, 0.8)}
    )
    assert "the external slices are brighter on average (mean grey level 90 against 60)" in text
    assert "with fewer near-black pixels (20% against 50%)" in text
    assert "body fills more of the frame (median width 90% against 70%" in text
    text = sentences.domain_shift_sentence(
        {"IQ-OTH/NCCD": internal, "external": _shift(30.0, 0.5, 0.5, 0.5)}
    )
    assert "darker" in text and "as many near-black" in text and "fills less" in text
    with pytest.raises(ValueError, match=r"need 'IQ-OTH/NCCD' and 'external'"):
        sentences.domain_shift_sentence({"external": internal})
