"""int8 calibration: average-min/max ranges on a tiny model (no data or weights needed)."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tf_setup):
    """A small conv net as a SavedModel, with inputs whose per-image ranges differ a lot."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    saved = tmp_path_factory.mktemp("tiny")
    model.export(str(saved), format="tf_saved_model", verbose=False)
    rng = np.random.default_rng(0)
    x = rng.random((12, 16, 16, 3), dtype=np.float32)
    x[0] *= 20.0  # one extreme image stretches the global range, not the average one
    return str(saved), x


def test_average_ranges_are_means_of_per_image_extremes(tiny):
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils

    from lungct_utils.app.export import _calibrated_model, activation_ranges

    saved, x = tiny
    calibrated = _calibrated_model(saved, x)
    ranges = activation_ranges(calibrated, x)
    tensors = flatbuffer_utils.read_model_from_bytearray(calibrated).subgraphs[0].tensors
    interp = Interpreter(model_content=bytes(calibrated))
    inp = interp.get_input_details()[0]["index"]
    low, high = ranges[inp]
    assert low == pytest.approx(min(0.0, x.min(axis=(1, 2, 3)).mean()))
    assert high == pytest.approx(x.max(axis=(1, 2, 3)).mean(), rel=1e-6)
    assert tensors[inp].quantization.max[0] == pytest.approx(x.max(), rel=1e-6)  # global
    for i, (lo, hi) in ranges.items():
        q = tensors[i].quantization
        # inside the global range (which int8 widens to include 0 anyway)
        assert min(q.min[0], 0.0) - 1e-6 <= lo <= 0.0 <= hi <= max(q.max[0], 0.0) + 1e-6
    assert len(ranges) >= 4


def test_average_calibration_gives_a_working_int8_model(tiny, tmp_path):
    from lungct_utils.app.export import quantize_int8
    from lungct_utils.features import LiteRTModel

    saved, x = tiny
    for calibration in ("average", "global"):
        path = tmp_path / f"{calibration}.tflite"
        path.write_bytes(quantize_int8(saved, x, calibration))
        out = LiteRTModel(path, 1)(x)
        assert out.shape == (12, 3)
        np.testing.assert_allclose(out.sum(1), 1.0, atol=0.02)


@pytest.mark.parametrize("bad", ["percentile", "", "AVERAGE"])
def test_unknown_calibration_is_refused(tiny, bad):
    from lungct_utils.app.export import quantize_int8

    with pytest.raises(ValueError, match=repr(bad)):
        quantize_int8(tiny[0], tiny[1], bad)


def test_export_all_refuses_bad_calibrations_before_writing(tmp_path):
    from lungct_utils.app.export import export_all

    for bad in [(), ("average", "minmax")]:
        with pytest.raises(ValueError, match="calibrations"):
            export_all(tmp_path / "missing.keras", tmp_path / "out", "cases", calibrations=bad)
    assert not (tmp_path / "out").exists()


def test_no_representative_images_is_refused(tiny):
    from lungct_utils.app.export import activation_ranges

    with pytest.raises(ValueError, match="0 representative"):
        activation_ranges(b"", np.zeros((0, 16, 16, 3), np.float32))


def _result(float_acc, int8_acc):
    row = {
        "latency_ms": {1: 5.0, 2: 3.0},
        "size_mb": 1.0,
        "agreement_vs_keras": 1.0,
        "mean_abs_prob_diff_vs_keras": 0.0,
        "max_abs_prob_diff_vs_keras": 0.0,
    }
    return {
        "keras": dict(row, accuracy=float_acc),
        "tflite_float32": dict(row, accuracy=float_acc),
        "tflite_int8": dict(row, accuracy=int8_acc),
        "_meta": {"protocol": "cases", "test_images": 158, "runs": 10, "model": "m.keras"},
    }


@pytest.mark.parametrize(
    ("int8_acc", "verdict"),
    [(0.74, "met"), (0.7305, "met"), (0.7285, "NOT met"), (0.70, "NOT met")],
)
def test_deployment_report_judges_the_one_point_goal(int8_acc, verdict):
    from lungct_utils.app.deployment import format_deployment

    text = format_deployment(_result(0.7389, int8_acc), "Deployment")
    line = next(x for x in text.splitlines() if x.startswith("* tflite_int8"))
    assert line.endswith(f"; {verdict}).")
    assert f"{100 * (int8_acc - 0.7389):+.2f} accuracy points" in line


def test_calibration_study_table_reports_the_worst_draw():
    from lungct_utils.app.deployment import format_calibration_study

    rows = [
        {
            "draw_seed": None,
            "calibration": "float32",
            "val_accuracy": 0.8,
            "test_accuracy": 0.7,
            "test_agreement_vs_float": 1.0,
            "test_mean_abs_prob_diff_vs_float": 0.0,
        }
    ]
    for seed, (avg, glob) in enumerate([(0.71, 0.69), (0.695, 0.66)]):
        for name, acc in [("average", avg), ("global", glob)]:
            rows.append(
                {
                    "draw_seed": seed,
                    "calibration": name,
                    "val_accuracy": 0.8,
                    "test_accuracy": acc,
                    "test_agreement_vs_float": 0.9,
                    "test_mean_abs_prob_diff_vs_float": 0.01,
                }
            )
    table = format_calibration_study(rows)
    average = next(x for x in table if x.startswith("| average"))
    glob = next(x for x in table if x.startswith("| global"))
    assert "70.25% (69.50-71.00)" in average and "| -0.50 |" in average
    assert "67.50% (66.00-69.00)" in glob and "| -4.00 |" in glob


def test_export_carries_the_sidecar_and_ood_reference(tmp_path, tf_setup):
    """The exported ``model.keras`` scales and flags like the model it copies."""
    import keras

    from lungct_utils.app import ood
    from lungct_utils.app.export import export_all, model_mode
    from lungct_utils.app.predict import Predictor
    from lungct_utils.io_utils import write_json

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="global_average_pooling")(
        keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    )
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    source = tmp_path / "run.keras"
    model.save(source)
    write_json(
        {"params": {"preprocess": "mobilenet_v2"}, "tta": False}, source.with_suffix(".json")
    )
    rng = np.random.default_rng(0)
    reference = ood.fit(
        rng.random((20, 4)), rng.random((20, 256)), np.arange(20) % 3, np.arange(20)
    )
    ood.save(reference, ood.path_for(source))
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)

    paths = export_all(source, tmp_path / "out", "cases", representative_images=images)

    exported = paths["keras"]
    assert model_mode(exported) == "mobilenet_v2" != model_mode(tmp_path / "none.keras")
    assert ood.path_for(exported).read_bytes() == ood.path_for(source).read_bytes()
    assert Predictor(exported).mode == "mobilenet_v2"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "model.json",
        "model.keras",
        "model.ood.npz",
        "model_float32.tflite",
        "model_int8.tflite",
    ]
