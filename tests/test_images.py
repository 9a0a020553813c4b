import numpy as np
import pytest
from PIL import Image

from lungct_utils.images import label_indices, load_uint8, one_hot, open_rgb, resize_rgb, scale
from lungct_utils.io_utils import DataError


def test_load_uint8_gives_rgb_224(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(np.arange(60 * 80, dtype=np.uint32).reshape(60, 80).astype(np.uint8)).save(path)
    arr = load_uint8(path, 224)
    assert arr.shape == (224, 224, 3) and arr.dtype == np.uint8
    assert np.array_equal(arr[..., 0], arr[..., 2])  # gray repeated in every channel


def test_resize_is_bilinear_not_nearest():
    img = Image.fromarray(np.array([[0, 255]] * 2, dtype=np.uint8)).convert("RGB")
    out = resize_rgb(img, 8)
    assert len(np.unique(out[..., 0])) > 2  # nearest would keep only 0 and 255


def test_scale_modes_match_definitions():
    x = np.array([[[0, 127, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(scale(x, "paper"), [[[0, 127 / 255, 1]]], rtol=1e-6)
    np.testing.assert_allclose(scale(x, "mobilenet_v2"), [[[-1, 127 / 127.5 - 1, 1]]], rtol=1e-6)


def test_mobilenet_mode_equals_keras_preprocess_input():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    expected = keras.applications.mobilenet_v2.preprocess_input(x.astype(np.float32))
    np.testing.assert_allclose(scale(x, "mobilenet_v2"), expected, atol=1e-6)


def test_scale_rejects_bad_input():
    with pytest.raises(ValueError, match="'caffe'"):
        scale(np.zeros((1, 1, 3), np.uint8), "caffe")
    with pytest.raises(ValueError, match="float64"):
        scale(np.zeros((1, 1, 3)), "paper")


def test_one_hot_order_and_unknown_label():
    assert one_hot(["normal", "benign", "malignant"]).tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert label_indices(["malignant"]).tolist() == [1]
    with pytest.raises(ValueError, match="'cyst'"):
        one_hot(["cyst"])


def test_open_rgb_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="gone.jpg: no such file"):
        open_rgb(tmp_path / "gone.jpg")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(DataError, match="bad.png"):
        open_rgb(bad)
