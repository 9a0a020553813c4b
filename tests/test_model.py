"""The paper's model (Table II) on the real ImageNet weights."""

import numpy as np
import pytest

from lungct_utils import config
from lungct_utils.config import PAPER
from lungct_utils.images import scale
from lungct_utils.io_utils import DataError
from lungct_utils.model import (
    HEAD_LAYERS,
    build_base,
    build_head,
    build_model,
    load_run,
    model_info,
    save_model,
    save_run,
)

pytestmark = pytest.mark.weights

BASE_PARAMS = 2_257_984  # MobileNetV2 1.0/224 without top (Keras' documented count)
HEAD_PARAMS = (1280 * 128 + 128) + (128 * 3 + 3)  # Dense(128) + Dense(3) = 164,355


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def model(imagenet_weights, tf_setup):
    return build_model(PAPER)


def test_parameter_counts(model):
    assert model.count_params() == BASE_PARAMS + HEAD_PARAMS == 2_422_339
    assert _count(model.trainable_weights) == HEAD_PARAMS == 164_355
    assert _count(model.non_trainable_weights) == BASE_PARAMS


def test_layers_and_compile_match_table_two(model):
    names = [layer.name for layer in model.layers[-4:]]
    assert names == ["global_average_pooling", *HEAD_LAYERS]
    fc, drop, out = (model.get_layer(n) for n in HEAD_LAYERS)
    assert (fc.units, fc.activation.__name__) == (128, "relu")
    assert drop.rate == 0.5
    assert (out.units, out.activation.__name__) == (3, "softmax")
    assert model.input_shape == (None, 224, 224, 3)
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.loss == "categorical_crossentropy"
    assert not any(layer.trainable for layer in model.layers[:-4] if layer.weights)


def test_frozen_base_runs_in_inference_mode(imagenet_weights, real_images, tf_setup):
    base = build_base("imagenet", pooling="avg")
    x = scale(real_images[0][:8])
    train_mode = np.asarray(base(x, training=True))
    infer_mode = np.asarray(base(x, training=False))
    np.testing.assert_allclose(train_mode, infer_mode, rtol=0, atol=1e-5)
    # real weights give informative features: they vary across images
    assert infer_mode.std(axis=0).mean() > 0.05


def test_head_is_the_same_head(tf_setup):
    head = build_head(PAPER)
    assert [layer.name for layer in head.layers[1:]] == list(HEAD_LAYERS)
    assert head.count_params() == HEAD_PARAMS


def test_save_model_needs_keras_suffix(tmp_path, tf_setup):
    with pytest.raises(ValueError, match="model.h5"):
        save_model(build_head(PAPER), tmp_path / "model.h5")


def test_a_saved_run_loads_back_with_its_settings(
    tmp_path, monkeypatch, imagenet_weights, tf_setup
):
    monkeypatch.setattr(config, "MODELS", tmp_path)
    with pytest.raises(DataError, match="not trained yet"):
        load_run("run")
    head = build_head(PAPER, head="linear")
    path = save_run("run", head, PAPER.with_overrides(dropout=0.3), {"protocol": "cases"})
    assert path == tmp_path / "run.keras" and (tmp_path / "run_head.keras").is_file()
    loaded, info = load_run("run")
    x = np.random.default_rng(0).normal(size=(4, 1280)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), head.predict(x, verbose=0), atol=1e-6)
    assert (info["protocol"], info["params"]["dropout"]) == ("cases", 0.3)
    assert model_info(path) == info


def _tiny(seed: int = 0):
    """A tiny Dense model (no ImageNet weights needed)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])


def test_fingerprint_follows_the_weights_not_the_bytes(tmp_path):
    from lungct_utils.model import fingerprint

    model = _tiny()
    first = save_model(model, tmp_path / "a.keras")
    second = save_model(model, tmp_path / "b.keras")
    digest = fingerprint(first)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert fingerprint(second) == digest
    assert fingerprint(str(first)) == digest
    # the same weights in a model named otherwise: other bytes, the same fingerprint
    renamed = _tiny(seed=5)
    renamed.name = "renamed"
    renamed.set_weights(model.get_weights())
    third = save_model(renamed, tmp_path / "r.keras")
    assert third.read_bytes() != first.read_bytes()
    assert fingerprint(third) == digest
    kernel, bias = model.get_weights()
    kernel[0, 0] += 1e-3
    model.set_weights([kernel, bias])
    assert fingerprint(save_model(model, tmp_path / "c.keras")) != digest
    assert fingerprint(save_model(_tiny(seed=1), tmp_path / "d.keras")) != digest


def test_fingerprint_of_a_missing_model(tmp_path):
    from lungct_utils.model import fingerprint

    with pytest.raises(DataError, match="none.keras: model not found"):
        fingerprint(tmp_path / "none.keras")


def test_copy_run_copies_every_part_that_exists(tmp_path, monkeypatch):
    from lungct_utils.model import copy_run, fingerprint

    monkeypatch.setattr(config, "MODELS", tmp_path)
    save_model(_tiny(), tmp_path / "src.keras")
    (tmp_path / "src_head.keras").write_bytes(b"head")
    (tmp_path / "src.json").write_text('{"protocol": "cases"}')
    (tmp_path / "src.ood.npz").write_bytes(b"reference")
    (tmp_path / "other.json").write_text("{}")  # another run: not copied
    path = copy_run("src", "dst")
    assert path == config.model_path("dst") == tmp_path / "dst.keras"
    for suffix in (".keras", "_head.keras", ".json", ".ood.npz"):
        copied = tmp_path / f"dst{suffix}"
        assert copied.read_bytes() == (tmp_path / f"src{suffix}").read_bytes(), suffix
    assert fingerprint(path) == fingerprint(tmp_path / "src.keras")
    assert model_info(path) == {"protocol": "cases"}
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        f"{run}{s}"
        for run in ("src", "dst")
        for s in (".keras", "_head.keras", ".json", ".ood.npz")
    } | {"other.json"}


def test_copy_run_copies_only_the_parts_present(tmp_path, monkeypatch):
    from lungct_utils.model import copy_run

    monkeypatch.setattr(config, "MODELS", tmp_path)
    (tmp_path / "src.keras").write_bytes(b"model")
    (tmp_path / "src.json").write_text("{}")
    copy_run("src", "dst")
    assert {p.name for p in tmp_path.glob("dst*")} == {"dst.keras", "dst.json"}


def test_copy_run_of_a_missing_model(tmp_path, monkeypatch):
    from lungct_utils.model import copy_run

    monkeypatch.setattr(config, "MODELS", tmp_path)
    (tmp_path / "src.json").write_text("{}")  # a sidecar without its model
    with pytest.raises(DataError, match="src.keras: model not found"):
        copy_run("src", "dst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.json"]
