"""Scoring a labelled folder: binary metrics, the report, ``evaluate`` on the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from lungct_utils import cli, external
from lungct_utils.config import CLASSES
from lungct_utils.deploy import predict, validate
from lungct_utils.evaluate import expected_calibration_error
from lungct_utils.images import resize_rgb

# true class, probabilities (benign, malignant, normal); the arg-max is the call
PLANTED = [
    ("malignant", (0.05, 0.90, 0.05)),  # called malignant
    ("malignant", (0.10, 0.80, 0.10)),  # called malignant
    ("malignant", (0.20, 0.60, 0.20)),  # called malignant
    ("malignant", (0.60, 0.30, 0.10)),  # called benign: a miss
    ("normal", (0.10, 0.70, 0.20)),  # called malignant
    ("normal", (0.10, 0.20, 0.70)),  # called normal
    ("normal", (0.00, 0.10, 0.90)),  # called normal
    ("normal", (0.50, 0.40, 0.10)),  # called benign
    ("benign", (0.80, 0.10, 0.10)),  # left out
    ("benign", (0.10, 0.80, 0.10)),  # left out
]


def planted():
    y = [c for c, _ in PLANTED]
    probs = np.array([p for _, p in PLANTED])
    called = np.array(CLASSES)[probs.argmax(axis=1)]
    return y, probs, called


def test_binary_metrics_on_planted_predictions():
    y, probs, called = planted()
    m = validate.binary_metrics(y, probs, called, np.arange(len(y)), seed=0, n_boot=500)
    assert (m["n"], m["n_malignant"], m["n_normal"], m["n_benign_excluded"]) == (8, 4, 4, 2)
    assert m["sensitivity"]["value"] == pytest.approx(3 / 4)
    assert m["specificity"]["value"] == pytest.approx(2 / 4)
    assert m["balanced_accuracy"]["value"] == pytest.approx(5 / 8)
    assert m["share_called_benign"]["value"] == pytest.approx(2 / 8)
    # p_malignant: malignant .9 .8 .6 .3 against normal .7 .2 .1 .4: 4 + 4 + 3 + 2 of 16 pairs
    assert m["auc"]["value"] == pytest.approx(13 / 16)
    keep = np.array(y) != "benign"
    y_bin = np.array(y)[keep] == "malignant"
    assert m["auc"]["value"] == pytest.approx(roc_auc_score(y_bin, probs[keep, 1]))
    # top-label bins (confidence | hits): .9 .9 | 2: .2; .8 | 1: .2; .6 .6 | 1: .2;
    # .7 .7 | 1: .4; .5 | 0: .5
    assert m["ece"]["value"] == pytest.approx(1.5 / 8)
    y_idx = np.array([CLASSES.index(c) for c in np.array(y)[keep]])
    assert m["ece"]["value"] == pytest.approx(expected_calibration_error(probs[keep], y_idx))
    for key in validate.BINARY_KEYS:
        lo, hi = m[key]["ci95"]
        assert lo <= m[key]["value"] <= hi, key
    assert m["notes"] == [] and m["clusters"] == 8
    again = validate.binary_metrics(y, probs, called, np.arange(len(y)), seed=0, n_boot=500)
    assert again == m


def test_a_benign_call_and_no_call_are_errors_for_both_classes():
    y, probs, _ = planted()
    called = np.array(
        ["malignant", "", "refused", "malignant", "normal", "", "normal", "x"] + [""] * 2
    )
    m = validate.binary_metrics(y, probs, called, np.arange(len(y)), seed=0, n_boot=100)
    assert m["sensitivity"]["value"] == pytest.approx(2 / 4)
    assert m["specificity"]["value"] == pytest.approx(2 / 4)
    assert m["share_called_benign"]["value"] == 0


def test_a_missing_class_gives_none_with_a_note_not_a_crash():
    y, probs, called = planted()
    only = np.array(y) != "normal"
    m = validate.binary_metrics(
        np.array(y)[only], probs[only], called[only], np.arange(only.sum()), seed=0, n_boot=100
    )
    assert m["sensitivity"]["value"] == pytest.approx(3 / 4)
    assert m["specificity"] is None and m["balanced_accuracy"] is None and m["auc"] is None
    assert m["share_called_benign"]["value"] == pytest.approx(1 / 4)
    assert any("no normal slice" in note for note in m["notes"])
    benign = validate.binary_metrics(["benign"], [[1.0, 0, 0]], ["benign"], [0], seed=0)
    assert benign["n"] == 0 and all(benign[k] is None for k in validate.BINARY_KEYS)
    empty = validate.binary_metrics([], np.zeros((0, 3)), [], [], seed=0)
    assert empty["n"] == 0 and empty["sensitivity"] is None


def test_binary_metrics_refuse_mismatched_or_unknown_input():
    y, probs, called = planted()
    with pytest.raises(ValueError, match="9 clusters"):
        validate.binary_metrics(y, probs, called, np.arange(9), seed=0)
    with pytest.raises(ValueError, match="'tumour'"):
        validate.binary_metrics(["tumour"] * 10, probs, called, np.arange(10), seed=0)
    with pytest.raises(ValueError, match=r"\(10, 2\)"):
        validate.binary_metrics(y, probs[:, :2], called, np.arange(10), seed=0)


def test_large_clusters_widen_the_interval():
    # 10 malignant cases of 20 slices each; a case's slices are all hits or all misses
    hit = np.repeat([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], 20).astype(bool)
    probs = np.where(hit[:, None], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8])
    y = ["malignant"] * 200
    called = np.array(CLASSES)[probs.argmax(axis=1)]
    by_case = validate.binary_metrics(y, probs, called, np.repeat(np.arange(10), 20), 0, 1000)
    by_image = validate.binary_metrics(y, probs, called, np.arange(200), 0, 1000)
    assert by_case["sensitivity"]["value"] == by_image["sensitivity"]["value"] == 0.6
    width = {
        k: np.diff(m["sensitivity"]["ci95"])[0] for k, m in [("case", by_case), ("image", by_image)]
    }
    assert width["case"] > 3 * width["image"]
    assert by_case["clusters"] == 10 and by_image["clusters"] == 200


def scan_frame(paths_classes, errors=()):
    """A planted scan: one file per ``(name, folder, class, sha)``; names in ``errors`` fail."""
    rows = []
    for name, folder, label, sha in paths_classes:
        rows.append(
            {
                "path": f"/set/train/{folder}/{name}",
                "split": "train",
                "folder": folder,
                "class": label,
                "width": 512,
                "height": 512,
                "mode": "L",
                "pixel_sha": "" if name in errors else sha,
                "error": "corrupt or truncated image" if name in errors else "",
            }
        )
    return pd.DataFrame(rows, columns=list(external.SCAN_COLUMNS))


def predictor_row(path, probs, verdict="ok", reason="", error=""):
    if error:
        return {"path": path, "prediction": "", "error": error}
    prediction = "" if verdict == "not_ct" else CLASSES[int(np.argmax(probs))]
    row = {"path": path, "prediction": prediction}
    row |= {f"p_{c}": p for c, p in zip(CLASSES, probs, strict=True)}
    return row | {
        "layout_distance": 0.1,
        "feature_distance": 0.2,
        "ct_score": 3.0,
        "verdict": verdict,
        "reason": reason,
        "error": "",
    }


def test_summarise_on_planted_rows():
    adeno = "adenocarcinoma_x"
    files = [
        ("a1.png", adeno, "malignant", "s1"),
        ("a1 - Copy.png", adeno, "malignant", "s1"),  # a byte copy
        ("a2.png", adeno, "malignant", "s2"),
        ("a3.png", adeno, "malignant", "s3"),
        ("bad.png", adeno, "malignant", "sx"),  # unreadable
        ("n1.png", "normal", "normal", "s4"),
        ("n2.png", "normal", "normal", "s5"),
        ("n3.png", "normal", "normal", "s6"),
        ("n4.png", "normal", "normal", "s7"),  # the predictor fails on it
        ("x.png", "normal", "normal", "s8"),  # a conflict with ...
        ("y.png", adeno, "malignant", "s8"),  # ... this one
    ]
    frame = scan_frame(files, errors={"bad.png"})
    kept, conflicts = external.distinct(frame)
    assert len(kept) == 7 and len(conflicts) == 1
    p = {"a1": "/set/train/adenocarcinoma_x/a1 - Copy.png"}  # the first in sorted order
    p |= {n: f"/set/train/{adeno}/{n}.png" for n in ("a2", "a3")}
    p |= {n: f"/set/train/normal/{n}.png" for n in ("n1", "n2", "n3", "n4")}
    rows = pd.DataFrame(
        [
            predictor_row(p["a1"], (0.1, 0.8, 0.1)),
            predictor_row(p["a2"], (0.1, 0.7, 0.2), "ct_unlike_training", "far from training"),
            predictor_row(p["a3"], (0.2, 0.2, 0.6), "not_ct", "not a CT slice (score -2.0)"),
            predictor_row(p["n1"], (0.1, 0.1, 0.8)),
            predictor_row(p["n2"], (0.6, 0.2, 0.2)),
            predictor_row(p["n3"], (0.1, 0.6, 0.3), "not_ct", "colour picture"),
            predictor_row(p["n4"], None, error="cannot decode"),
        ]
    )
    order = kept["path"].tolist()
    proxy = [0 if path in (p["a1"], p["a2"]) else k + 1 for k, path in enumerate(order)]
    report = validate.summarise(frame, rows, seed=3, proxy=proxy, root=Path("/set"), n_boot=200)
    json.dumps(report)  # JSON-ready
    assert (report["n_files"], report["n_readable"], report["n_distinct"]) == (11, 10, 7)
    assert report["n_scored"] == 6 and report["copies_dropped"] == 1
    assert report["unreadable"] == [
        {"path": f"train/{adeno}/bad.png", "error": "corrupt or truncated image"},
        {"path": "train/normal/n4.png", "error": "cannot decode"},
    ]
    assert report["conflicts"] == [
        {
            "paths": [f"train/{adeno}/y.png", "train/normal/x.png"],
            "classes": ["malignant", "normal"],
        }
    ]
    assert report["classes"] == {"benign": 0, "malignant": 3, "normal": 4}
    assert report["n_proxies"] == 5 and report["largest_proxy"] == 2
    assert report["input_check"]["verdict"] == {"ok": 3, "ct_unlike_training": 1, "not_ct": 2}
    layers = report["input_check"]["layer"]
    assert (layers["none"], layers["ct"], layers["colour"], layers["features"]) == (3, 1, 1, 1)
    assert report["input_check"]["verdict_by_class"]["normal"] == {
        "ok": 2,
        "ct_unlike_training": 0,
        "not_ct": 1,
    }
    m = report["metrics"]  # arg-max of p_*, refused slices included
    assert (m["n"], m["n_malignant"], m["n_normal"]) == (6, 3, 3)
    assert m["sensitivity"]["value"] == pytest.approx(2 / 3)
    assert m["specificity"]["value"] == pytest.approx(1 / 3)
    assert m["clusters"] == 5 and report["metrics_per_image"]["clusters"] == 6
    assert report["metrics_per_image"]["sensitivity"]["value"] == pytest.approx(2 / 3)
    acc = report["metrics_accepted"]  # a3 and n3 refused
    assert (acc["n"], acc["n_malignant"], acc["n_normal"]) == (4, 2, 2)
    assert acc["sensitivity"]["value"] == 1.0 and acc["specificity"]["value"] == 0.5
    assert report["confusion_by_folder"] == {
        adeno: {"benign": 0, "malignant": 2, "normal": 0, "refused": 1},
        "normal": {"benign": 1, "malignant": 0, "normal": 1, "refused": 1},
    }
    assert report["confusion_by_class"]["normal"] == report["confusion_by_folder"]["normal"]
    assert report["root"] == "/set" and report["seed"] == 3 and "guess" in report["proxy"]
    text = validate.format_summary(report)
    assert "sensitivity: 66.7%" in text and "not_ct 2" in text


def test_summarise_refuses_rows_without_the_check_columns():
    frame = scan_frame([("a.png", "normal", "normal", "s1")])
    rows = pd.DataFrame([{"path": "/set/train/normal/a.png", "prediction": "normal", "error": ""}])
    with pytest.raises(ValueError, match="lack columns"):
        validate.summarise(frame, rows, seed=0, proxy=[0], n_boot=20)
    with pytest.raises(ValueError, match="2 proxies for 1"):
        validate.summarise(frame, rows, seed=0, proxy=[0, 1], n_boot=20)


def grey(seed: int, side: int = 160) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8), mode="L")


@pytest.fixture
def labelled(tmp_path):
    """A small labelled folder: two malignant subtypes, normal, a byte copy, a broken file."""
    root = tmp_path / "set"
    for k, folder in enumerate(["adenocarcinoma_a", "squamous.cell.carcinoma_b", "normal"]):
        (root / "train" / folder).mkdir(parents=True)
        for i in range(3):
            grey(10 * k + i).save(root / "train" / folder / f"{i}.png")
    rgba = grey(99).convert("RGBA")
    rgba.save(root / "train" / "normal" / "rgba.png")
    copy = root / "train" / "normal" / "0 - Copy.png"
    copy.write_bytes((root / "train" / "normal" / "0.png").read_bytes())
    (root / "train" / "normal" / "broken.png").write_bytes(b"junk")
    return root


def fake_predict_files(predictor, files, *args, **kwargs):
    """Rows as ``predict_files`` gives them: malignant folders get p_malignant 0.7."""
    rows = []
    for path in files:
        malignant = "normal" not in str(path)
        probs = (0.1, 0.7, 0.2) if malignant else (0.1, 0.3, 0.6)
        verdict = "not_ct" if Path(path).name == "rgba.png" else "ok"
        rows.append(predictor_row(str(path), probs, verdict, "colour" if verdict != "ok" else ""))
    return pd.DataFrame(rows)


def test_evaluate_folder_scores_each_distinct_slice_once(labelled, monkeypatch):
    seen = []

    def spy(predictor, files, *args, **kwargs):
        seen.extend(files)
        return fake_predict_files(predictor, files)

    monkeypatch.setattr(predict, "predict_files", spy)
    report = validate.evaluate_folder(object(), labelled, seed=1, n_boot=50)
    assert len(seen) == 10 and len(set(seen)) == 10  # 12 files: a copy, a broken one
    assert (report["n_files"], report["n_readable"], report["n_distinct"]) == (12, 11, 10)
    assert report["unreadable"][0]["path"] == "train/normal/broken.png"
    assert report["classes"] == {"benign": 0, "malignant": 6, "normal": 4}
    assert report["metrics"]["sensitivity"]["value"] == 1.0
    assert report["metrics"]["specificity"]["value"] == 1.0
    assert report["metrics_accepted"]["n_normal"] == 3
    assert report["input_check"]["verdict"]["not_ct"] == 1


def test_load_images_reads_as_the_predictor_does(labelled):
    kept, _ = external.distinct(external.scan(labelled))
    images = validate.load_images(kept, size=32)
    assert images.shape == (10, 32, 32, 3) and images.dtype == np.uint8
    path = kept["path"].iloc[0]
    assert np.array_equal(images[0], resize_rgb(predict.read_image(Path(path)), 32))
    assert validate.load_images(kept.iloc[:0]).shape == (0, 224, 224, 3)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"not loaded by the usage checks")
    return path


def _evaluate(*args) -> list[str]:
    return ["evaluate", *map(str, args)]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_dir", "nowhere: no such folder"),
        ("no_class_folders", "folders found: 'scans'"),
        ("bad_classes", "--classes: expected PREFIX=CLASS, got 'tumour'"),
        ("bad_class_name", "--classes: class must be one of"),
        ("not_json", "--output must end in .json, got"),
        ("unwritable", "cannot write there"),
        ("missing_model", "none.keras: model not found"),
    ],
)
def test_evaluate_cli_bad_input_is_one_line_and_exit_2(
    case, message, labelled, model_file, tmp_path, capsys
):
    out = tmp_path / "report.json"
    (tmp_path / "misc" / "scans").mkdir(parents=True)
    grey(1).save(tmp_path / "misc" / "scans" / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    args = {
        "missing_dir": _evaluate(tmp_path / "nowhere", "--model", model_file, "--output", out),
        "no_class_folders": _evaluate(tmp_path / "misc", "--model", model_file, "--output", out),
        "bad_classes": _evaluate(labelled, "--classes", "tumour", "--output", out),
        "bad_class_name": _evaluate(labelled, "--classes", "t=cancer", "--output", out),
        "not_json": _evaluate(labelled, "--model", model_file, "--output", tmp_path / "r.csv"),
        "unwritable": _evaluate(
            labelled, "--model", model_file, "--output", blocker / "report.json"
        ),
        "missing_model": _evaluate(labelled, "--model", tmp_path / "none.keras", "--output", out),
    }[case]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists() and not (tmp_path / "r.csv").exists()


def test_evaluate_cli_writes_the_report(labelled, model_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(predict, "Predictor", lambda path: type("P", (), {"model_path": path})())
    monkeypatch.setattr(predict, "predict_files", fake_predict_files)
    out = tmp_path / "out" / "report.json"
    args = _evaluate(labelled, "--model", model_file, "--output", out, "--classes", "x=benign")
    assert cli.main(args) == 1  # as predict: the report is written, one file could not be read
    report = json.loads(out.read_text())
    assert report["n_distinct"] == 10 and report["model"] == str(model_file)
    assert report["seed"] == 42 and report["metrics"]["auc"]["value"] == 1.0
    captured = capsys.readouterr()
    assert "sensitivity: 100.0%" in captured.out and f"saved {out}" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0] and "(not scored)" in err[0]
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]  # no temporary left


def test_paired_binary_of_identical_models_is_zero():
    y, probs, _ = planted()
    out = validate.paired_binary(y, probs, probs.copy(), np.arange(len(y)), seed=0, n_boot=200)
    assert list(out) == list(validate.PAIRED_KEYS)
    for key, d in out.items():
        assert d["a"] == d["b"], key
        assert d["diff"] == 0 and d["diff_ci95"] == [0, 0] and not d["excludes_zero"], key


def _other_model():
    """Planted probabilities of a second model on the rows of ``PLANTED``."""
    return np.array(
        [
            (0.10, 0.85, 0.05),
            (0.10, 0.80, 0.10),
            (0.05, 0.90, 0.05),
            (0.10, 0.70, 0.20),  # the first model's miss, called malignant
            (0.10, 0.30, 0.60),  # the first model's false alarm, called normal
            (0.10, 0.20, 0.70),
            (0.70, 0.10, 0.20),  # called benign
            (0.10, 0.10, 0.80),
            (0.30, 0.40, 0.30),
            (0.90, 0.05, 0.05),
        ]
    )


def test_paired_binary_is_the_difference_of_binary_metrics():
    y, probs_a, _ = planted()
    probs_b = _other_model()
    clusters = np.arange(len(y)) // 2
    out = validate.paired_binary(y, probs_a, probs_b, clusters, seed=4, n_boot=400)
    metrics = {}
    for name, p in (("a", probs_a), ("b", probs_b)):
        called = np.array(CLASSES)[p.argmax(axis=1)]
        metrics[name] = validate.binary_metrics(y, p, called, clusters, seed=4, n_boot=20)
    for key, d in out.items():
        assert d["a"] == pytest.approx(metrics["a"][key]["value"]), key
        assert d["b"] == pytest.approx(metrics["b"][key]["value"]), key
        assert d["diff"] == pytest.approx(d["a"] - d["b"]), key
        lo, hi = d["diff_ci95"]
        assert lo <= d["diff"] <= hi, key
        assert d["excludes_zero"] == (lo > 0 or hi < 0), key
    assert out["sensitivity"]["diff"] != 0 and out["specificity"]["diff"] != 0
    again = validate.paired_binary(y, probs_a, probs_b, clusters, seed=4, n_boot=400)
    assert again == out
    # swapping the models flips the difference
    swapped = validate.paired_binary(y, probs_b, probs_a, clusters, seed=4, n_boot=400)
    for key, d in swapped.items():
        assert d["diff"] == pytest.approx(-out[key]["diff"]), key
        assert d["diff_ci95"] == pytest.approx(
            [-out[key]["diff_ci95"][1], -out[key]["diff_ci95"][0]]
        )


def test_a_model_better_in_every_cluster_is_shown_better():
    # 12 cases, each a malignant and a normal slice b misses and one of each both get right
    y = np.tile(["malignant", "normal", "malignant", "normal"], 12)
    clusters = np.repeat(np.arange(12), 4)
    right = {"malignant": (0.05, 0.9, 0.05), "normal": (0.05, 0.05, 0.9)}
    wrong = {"malignant": (0.05, 0.1, 0.85), "normal": (0.05, 0.8, 0.15)}
    probs_a = np.array([right[c] for c in y])
    probs_b = np.array([wrong[c] if k % 4 < 2 else right[c] for k, c in enumerate(y)])
    out = validate.paired_binary(y, probs_a, probs_b, clusters, seed=0, n_boot=300)
    for key, d in out.items():
        assert d["diff"] > 0 and d["diff_ci95"][0] > 0 and d["excludes_zero"], key
    assert out["sensitivity"]["a"] == 1 and out["sensitivity"]["b"] == 0.5


def test_paired_binary_leaves_benign_rows_out():
    y, probs_a, _ = planted()
    probs_b = _other_model()
    keep = np.array(y) != "benign"
    clusters = np.arange(len(y))
    whole = validate.paired_binary(y, probs_a, probs_b, clusters, seed=1, n_boot=200)
    without = validate.paired_binary(
        np.array(y)[keep], probs_a[keep], probs_b[keep], clusters[keep], seed=1, n_boot=200
    )
    assert whole == without


def test_paired_binary_gives_only_what_the_class_mix_can_give():
    y, probs_a, _ = planted()
    probs_b = _other_model()
    y = np.array(y)
    for absent, keys in (("normal", ["sensitivity"]), ("malignant", ["specificity"])):
        only = y != absent
        out = validate.paired_binary(
            y[only], probs_a[only], probs_b[only], np.arange(only.sum()), seed=0, n_boot=50
        )
        assert list(out) == keys, absent


def test_paired_binary_refuses_bad_shapes():
    y, probs, _ = planted()
    clusters = np.arange(len(y))
    with pytest.raises(ValueError, match=r"\(10, 2\)"):
        validate.paired_binary(y, probs[:, :2], probs, clusters, seed=0)
    with pytest.raises(ValueError, match=r"\(9, 3\)"):
        validate.paired_binary(y, probs, probs[:9], clusters, seed=0)
    with pytest.raises(ValueError, match="9 clusters for 10 rows"):
        validate.paired_binary(y, probs, probs, clusters[:9], seed=0)
    with pytest.raises(ValueError, match="'tumour'"):
        validate.paired_binary(["tumour"] * 10, probs, probs, clusters, seed=0)


def test_summarise_reports_the_refused_and_warned_shares():
    names = [f"s{k}" for k in range(12)]
    files = [(f"{n}.png", "normal" if k % 2 else "adeno_x", "", n) for k, n in enumerate(names)]
    files = [(f, d, "normal" if d == "normal" else "malignant", s) for f, d, _, s in files]
    frame = scan_frame(files)
    kept, _ = external.distinct(frame)
    verdicts = ["not_ct"] * 3 + ["ct_unlike_training"] * 2 + ["ok"] * 6
    reasons = {"not_ct": "not a CT slice (CT score 0.1 < 0.5)", "ok": ""}
    reasons["ct_unlike_training"] = "far from training slices (feature distance 0.9 > 0.4)"
    paths = kept["path"].tolist()
    rows = [
        predictor_row(path, (0.1, 0.6, 0.3), v, reasons[v])
        for path, v in zip(paths[:11], verdicts, strict=True)
    ]
    rows.append(predictor_row(paths[11], None, error="cannot decode"))  # not scored
    proxy = np.arange(12) // 2
    report = validate.summarise(frame, pd.DataFrame(rows), seed=0, proxy=proxy, n_boot=300)
    check = report["input_check"]
    assert report["n_scored"] == 11
    assert check["refused_share"]["value"] == pytest.approx(3 / 11)
    assert check["unlike_share"]["value"] == pytest.approx(2 / 11)
    assert check["refused_share"]["value"] == pytest.approx(
        check["verdict"]["not_ct"] / report["n_scored"]
    )
    for key in ("refused_share", "unlike_share"):
        lo, hi = check[key]["ci95"]
        assert lo <= check[key]["value"] <= hi, key
        assert hi > lo, key  # three cases of two slices vary
    assert check["layer"]["ct"] == 3 and check["layer"]["features"] == 2
    json.dumps(report)


def test_summarise_without_a_scored_slice_gives_no_shares():
    frame = scan_frame(
        [("a.png", "normal", "normal", "s1"), ("b.png", "adeno_x", "malignant", "s2")]
    )
    rows = pd.DataFrame(
        [
            predictor_row("/set/train/normal/a.png", None, error="cannot decode"),
            predictor_row("/set/train/adeno_x/b.png", None, error="cannot decode"),
        ]
    )
    report = validate.summarise(frame, rows, seed=0, proxy=[0, 1], n_boot=20)
    assert report["n_scored"] == 0
    assert "refused_share" not in report["input_check"]
    assert "unlike_share" not in report["input_check"]


@pytest.mark.slow
def test_evaluate_cli_on_real_external_slices(trained_run, external_release, tmp_path, capsys):
    """The command end to end: real slices of both classes, a byte copy, a broken file."""
    folder = tmp_path / "ext"
    picked = []
    for source in ("normal", "adenocarcinoma"):
        found, seen = [], set()
        for f in sorted((external_release / "train").glob(f"{source}*/*.png")):
            sha = external.inspect(f)["pixel_sha"]
            if sha not in seen and len(found) < 4:  # four distinct slices (the set has copies)
                found.append(f)
                seen.add(sha)
        target = folder / found[0].parent.name
        target.mkdir(parents=True)
        for f in found:
            shutil.copyfile(f, target / f.name)
        picked.append(target)
    shutil.copyfile(next(picked[0].iterdir()), picked[0] / "copy of a slice.png")
    (picked[1] / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "report.json"
    args = ["evaluate", str(folder), "--model", str(trained_run["path"]), "--output", str(out)]
    assert cli.main(args) == 1  # one file could not be read
    report = json.loads(out.read_text())
    assert (report["n_files"], report["n_readable"], report["n_distinct"]) == (10, 9, 8)
    assert report["copies_dropped"] == 1 and report["classes"]["normal"] == 4
    assert [u["path"] for u in report["unreadable"]] == [f"{picked[1].name}/broken.png"]
    assert sum(report["input_check"]["verdict"].values()) == 8
    for key in ("sensitivity", "specificity", "balanced_accuracy", "auc"):
        v = report["metrics"][key]
        assert v["ci95"][0] <= v["value"] <= v["ci95"][1], key
    assert "broken.png" in capsys.readouterr().err
