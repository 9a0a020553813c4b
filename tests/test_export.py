"""The int8 TFLite export on a tiny model (no data or weights needed), and the reports."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tf_setup):
    """A small conv net (Keras and SavedModel), inputs in [0, 1) and its int8 conversion."""
    import keras

    from lungct_utils.deploy.export import quantize_int8

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
    x = np.random.default_rng(0).random((12, 16, 16, 3), dtype=np.float32)
    int8 = tmp_path_factory.mktemp("int8") / "model_int8.tflite"
    int8.write_bytes(quantize_int8(str(saved), x))
    return {"model": model, "saved": str(saved), "x": x, "int8": int8}


def _interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    return interp


def test_int8_file_computes_in_int8_between_float32_input_and_output(tiny):
    interp = _interpreter(tiny["int8"])
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    tensors = interp.get_tensor_details()
    # only the model's input and output stay float: weights and activations are int8
    # (the int32 tensors are shape constants)
    assert {t["index"] for t in tensors if t["dtype"] == np.float32} == {inp["index"], out["index"]}
    assert {t["dtype"] for t in tensors} == {np.float32, np.int8, np.int32}
    assert sum(t["dtype"] == np.int8 for t in tensors) >= 9  # 3 weights, 6 activations


def test_int8_predictions_agree_with_the_float_model(tiny):
    from lungct_utils.features import LiteRTModel

    x = tiny["x"]
    ref = tiny["model"].predict(x, verbose=0)
    int8 = LiteRTModel(tiny["int8"], 1)(x)
    # the output is int8 in steps of 1/256: within five steps of the float probabilities,
    # and every top-two margin here is over 0.25, so the class is the same
    np.testing.assert_allclose(int8, ref, atol=5 / 256)
    np.testing.assert_array_equal(int8.argmax(1), ref.argmax(1))


def test_activation_ranges_are_the_min_max_over_the_representative_set(tiny, tmp_path):
    from lungct_utils.deploy.export import quantize_int8

    plain = _interpreter(tiny["int8"]).get_tensor_details()
    x = np.concatenate([tiny["x"], 20.0 * tiny["x"][:1]])  # one image 20 times brighter
    path = tmp_path / "stretched.tflite"
    path.write_bytes(quantize_int8(tiny["saved"], x))
    stretched = _interpreter(path).get_tensor_details()
    # the quantized input spans [0, max over all images] in 256 steps (zero point -128)
    for details, images in [(plain, tiny["x"]), (stretched, x)]:
        scale, zero = next(t["quantization"] for t in details if t["name"] == "tfl.quantize")
        assert zero == -128
        assert scale == pytest.approx(images.max() / 255, rel=1e-3)


def test_no_representative_images_is_refused(tiny):
    from lungct_utils.deploy.export import quantize_int8

    with pytest.raises(ValueError, match=r"0 representative images \(shape \(0, 16, 16, 3\)\)"):
        quantize_int8(tiny["saved"], np.zeros((0, 16, 16, 3), np.float32))


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
    from lungct_utils.studies.deployment import format_deployment

    text = format_deployment(_result(0.7389, int8_acc), "Deployment")
    line = next(x for x in text.splitlines() if x.startswith("* tflite_int8"))
    assert line.endswith(f"; {verdict}).")
    assert f"{100 * (int8_acc - 0.7389):+.2f} accuracy points" in line


def test_calibration_study_table_reports_the_worst_draw():
    from lungct_utils.studies.deployment import INT8_CALIBRATION, format_calibration_study

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
    for seed, (test, val) in enumerate([(0.71, 0.82), (0.695, 0.79), (0.7, 0.8)]):
        rows.append(
            {
                "draw_seed": seed,
                "calibration": INT8_CALIBRATION,
                "val_accuracy": val,
                "test_accuracy": test,
                "test_agreement_vs_float": 0.9 + 0.01 * seed,
                "test_mean_abs_prob_diff_vs_float": 0.01,
            }
        )
    table = format_calibration_study(rows)
    assert table[2].startswith("| float32 (reference) | - | 70.00% |")
    (line,) = [x for x in table if x.startswith(f"| {INT8_CALIBRATION} | 3 |")]
    assert "| 70.17% (69.50-71.00) | -0.50 | 91.0% | 80.33% (79.00-82.00) |" in line
    assert len(table) == 4


def test_export_carries_the_sidecar_and_ood_reference(tmp_path, tf_setup):
    """The exported ``model.keras`` scales and flags like the model it copies."""
    import keras

    from lungct_utils import input_check
    from lungct_utils.deploy.export import export_all, model_mode
    from lungct_utils.deploy.predict import Predictor
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
    reference = input_check.fit(
        rng.random((20, 4)), rng.random((20, 256)), np.arange(20) % 3, np.arange(20)
    )
    input_check.save(reference, input_check.path_for(source))
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)

    paths = export_all(source, tmp_path / "out", "cases", representative_images=images)

    exported = paths["keras"]
    assert model_mode(exported) == "mobilenet_v2" != model_mode(tmp_path / "none.keras")
    assert input_check.path_for(exported).read_bytes() == input_check.path_for(source).read_bytes()
    assert Predictor(exported).mode == "mobilenet_v2"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "model.json",
        "model.keras",
        "model.ood.npz",
        "model_float32.tflite",
        "model_int8.tflite",
    ]
