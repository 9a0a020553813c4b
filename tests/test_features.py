import numpy as np
import pytest

from lungct_utils import features
from lungct_utils.features import FeatureCache, cached_features, pixel_key


class CountingBackbone:
    """A stand-in backbone for the cache logic: deterministic, counts the images it sees."""

    def __init__(self):
        self.seen = 0

    def __call__(self, batch):
        self.seen += len(batch)
        return np.repeat(batch.mean(axis=(1, 2)), 1280 // 3 + 1, axis=1)[:, :1280]


@pytest.fixture
def fake_weights(tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(b"weights-v1")
    return path


@pytest.fixture
def counting(monkeypatch):
    backbone = CountingBackbone()
    monkeypatch.setattr(features, "make_backbone", lambda engine, *args: (backbone, engine))
    return backbone


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_cache_computes_each_distinct_image_once(tmp_path, fake_weights, counting):
    imgs = _images(5)
    imgs[4] = imgs[0]  # a duplicate is computed once
    first = cached_features(imgs, "paper", "litert", fake_weights, tmp_path / "c", progress=False)
    assert counting.seen == 4 and first.shape == (5, 1280)
    again = cached_features(
        imgs[::-1], "paper", "litert", fake_weights, tmp_path / "c", progress=False
    )
    assert counting.seen == 4
    np.testing.assert_array_equal(again, first[::-1])


def test_changed_image_is_recomputed(tmp_path, fake_weights, counting):
    imgs = _images(3)
    cached_features(imgs, "paper", "litert", fake_weights, tmp_path, progress=False)
    imgs[1, 0, 0, 0] ^= 1
    out = cached_features(imgs, "paper", "litert", fake_weights, tmp_path, progress=False)
    assert counting.seen == 4
    np.testing.assert_array_equal(out[1], CountingBackbone()(imgs[1:2].astype(np.float32) / 255)[0])


def test_changed_weights_or_mode_use_another_cache(tmp_path, fake_weights, counting):
    imgs = _images(2)
    cached_features(imgs, "paper", "litert", fake_weights, tmp_path, progress=False)
    cached_features(imgs, "mobilenet_v2", "litert", fake_weights, tmp_path, progress=False)
    assert counting.seen == 4
    fake_weights.write_bytes(b"weights-v2")  # same path, new content
    cached_features(imgs, "paper", "litert", fake_weights, tmp_path, progress=False)
    assert counting.seen == 6
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_pixel_key_depends_on_shape_and_content():
    a = np.zeros((4, 4, 3), np.uint8)
    assert pixel_key(a) != pixel_key(np.zeros((2, 8, 3), np.uint8))
    b = a.copy()
    b[0, 0, 0] = 1
    assert pixel_key(a) != pixel_key(b) and pixel_key(a) == pixel_key(a.copy())


def test_bad_arguments(tmp_path, fake_weights):
    with pytest.raises(ValueError, match="'fast'"):
        features.make_backbone("fast")
    with pytest.raises(ValueError, match="float64"):
        cached_features(np.zeros((1, 4, 4, 3)), weights=fake_weights, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="'caffe'"):
        FeatureCache("keras", "caffe", fake_weights, tmp_path)
    with pytest.raises(features.LungCTError, match="missing.h5: weights file not found"):
        features.weights_fingerprint(tmp_path / "missing.h5")


@pytest.mark.weights
@pytest.mark.data
def test_litert_matches_keras_on_real_images(imagenet_weights, real_images, tmp_path, tf_setup):
    images = real_images[0][:24]
    keras_feats = cached_features(
        images, "paper", "keras", imagenet_weights, tmp_path, progress=False
    )
    lite_feats = cached_features(
        images, "paper", "litert", imagenet_weights, tmp_path, progress=False
    )
    assert sorted(p.name.split("_")[0] for p in tmp_path.glob("*.npz")) == ["keras", "litert"]
    assert list(tmp_path.glob("backbone_*.tflite"))  # the converted model, run by ai_edge_litert
    rel = np.abs(lite_feats - keras_feats).max() / np.abs(keras_feats).max()
    assert rel < 1e-4, rel
    assert keras_feats.std(axis=0).mean() > 0.05  # real weights: features vary
