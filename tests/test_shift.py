"""Simulated scanner shift and the standardisation rule, on synthetic slices."""

import re

import numpy as np
import pytest
from PIL import Image

from lungct_utils import shift
from lungct_utils.images import body_box


def _slice(seed: int, side: int = 64) -> np.ndarray:
    """A CT-like grey RGB slice: black surround, bright body ellipse, two dark lungs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    body = ((xx - 0.5) / 0.4) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1
    lungs = (((xx - 0.35) / 0.1) ** 2 + ((yy - 0.5) / 0.18) ** 2 < 1) | (
        ((xx - 0.65) / 0.1) ** 2 + ((yy - 0.5) / 0.18) ** 2 < 1
    )
    grey = np.where(body, 160.0, 4.0) - 120 * lungs + rng.normal(0, 8, (side, side))
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.fixture
def batch() -> np.ndarray:
    return np.stack([_slice(s) for s in range(5)])


def test_simulate_keeps_shape_dtype_and_grey(batch):
    out = shift.simulate(batch, seed=1)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    # every slice is transformed, not passed through
    assert all(not np.array_equal(o, b) for o, b in zip(out, batch, strict=True))
    assert shift.simulate(batch[:0], seed=1).shape == (0, 64, 64, 3)


def test_simulate_is_deterministic_and_per_slice(batch):
    out = shift.simulate(batch, seed=7)
    np.testing.assert_array_equal(shift.simulate(batch, seed=7), out)
    # the same slice gets the same view whatever the batch order, size or position
    np.testing.assert_array_equal(shift.simulate(batch[::-1], seed=7), out[::-1])
    np.testing.assert_array_equal(shift.simulate(batch[3:4], seed=7), out[3:4])
    twice = shift.simulate(np.stack([batch[2], batch[0], batch[2]]), seed=7)
    np.testing.assert_array_equal(twice[0], out[2])
    np.testing.assert_array_equal(twice[2], out[2])
    np.testing.assert_array_equal(twice[1], out[0])
    # numpy integer seeds are seeds too
    np.testing.assert_array_equal(shift.simulate(batch, seed=np.int64(7)), out)


def test_another_seed_gives_another_view(batch):
    a, b = shift.simulate(batch, seed=0), shift.simulate(batch, seed=1)
    assert all(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 8, 8, 3), np.float64),  # not uint8
        np.zeros((8, 8, 3), np.uint8),  # one image, no batch axis
        np.zeros((2, 8, 10, 3), np.uint8),  # not square
    ],
)
def test_simulate_refuses_bad_images(images):
    message = f"{images.dtype} {images.shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        shift.simulate(images, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", None])
def test_simulate_refuses_bad_seeds(batch, seed):
    with pytest.raises(ValueError, match=re.escape(f"got {seed!r}")):
        shift.simulate(batch, seed=seed)


def test_draw_stays_within_the_written_ranges():
    ranges = {
        "low": shift.LOW,
        "high": shift.HIGH,
        "contrast": shift.CONTRAST,
        "gamma": shift.GAMMA,
        "noise_sd": shift.NOISE_SD,
        "blur_sd": shift.BLUR_SD,
        "margin": shift.MARGIN,
        "zoom": shift.ZOOM,
        "dx": (-shift.SHIFT, shift.SHIFT),
        "dy": (-shift.SHIFT, shift.SHIFT),
    }
    rng = np.random.default_rng(0)
    draws = [shift.draw(rng) for _ in range(2000)]
    assert set(draws[0]) == set(ranges)
    for key, (lo, hi) in ranges.items():
        values = np.array([d[key] for d in draws])
        assert values.min() >= lo and values.max() <= hi, key
        # the whole range is used, not a corner of it
        span = hi - lo
        assert values.min() < lo + 0.05 * span and values.max() > hi - 0.05 * span, key
    gamma = np.array([d["gamma"] for d in draws])
    assert np.mean(gamma < 1) == pytest.approx(0.5, abs=0.05)  # log-uniform about 1
    assert shift.draw(np.random.default_rng(3)) == shift.draw(np.random.default_rng(3))


def test_intensity_window_and_identity():
    grey = np.tile(np.linspace(0, 255, 32), (32, 1))
    neutral = {"low": 0.0, "high": 1.0, "contrast": 1.0, "gamma": 1.0}
    neutral |= {"noise_sd": 0.0, "blur_sd": 0.0}
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(shift.intensity(grey, neutral, rng), grey, atol=1e-9)
    # a negative low lifts black: 0 becomes 0.2 / 1.2 of the range
    lifted = shift.intensity(grey, neutral | {"low": -0.2, "high": 1.0}, rng)
    assert lifted[:, 0] == pytest.approx(255 * 0.2 / 1.2)
    # a high under 1 saturates the bright end
    saturated = shift.intensity(grey, neutral | {"high": 0.5}, rng)
    assert (saturated[:, grey[0] >= 128] == 255).all()
    assert (saturated[:, grey[0] < 120] < 255).all()
    # gamma > 1 darkens the middle greys and keeps the ends
    dark = shift.intensity(grey, neutral | {"gamma": 2.0}, rng)
    assert (dark[:, 1:-1] < grey[:, 1:-1]).all()
    assert dark[0, -1] == pytest.approx(255)


def test_frame_shifts_right_and_down_and_zooms_about_the_centre():
    side = 50
    grey = np.zeros((side, side))
    grey[5:45, 5:45] = 60.0  # the body box: 40 pixels from (5, 5)
    grey[20, 30] = 250.0
    same = shift.frame(grey, margin=0.0, zoom=1.0, dx=0.0, dy=0.0)
    assert same.shape == (side, side)
    # the 40-pixel box is resized to 50 (pixel centres: (p + 0.5) * 50 / 40 - 0.5)
    spot = tuple(round((p - 5 + 0.5) * side / 40 - 0.5) for p in (20, 30))
    assert np.unravel_index(same.argmax(), same.shape) == spot
    right = shift.frame(grey, margin=0.0, zoom=1.0, dx=0.1, dy=0.0)
    assert np.unravel_index(right.argmax(), right.shape) == (spot[0], spot[1] + 5)
    down = shift.frame(grey, margin=0.0, zoom=1.0, dx=0.0, dy=0.1)
    assert np.unravel_index(down.argmax(), down.shape) == (spot[0] + 5, spot[1])
    zoomed = shift.frame(grey, margin=0.0, zoom=1.15, dx=0.0, dy=0.0)
    r, c = np.unravel_index(zoomed.argmax(), zoomed.shape)
    centre = (side - 1) / 2
    assert abs(c - centre) > abs(spot[1] - centre) and abs(r - centre) > abs(spot[0] - centre)


def test_frame_cuts_the_body_box_with_its_margin():
    side = 80
    grey = np.zeros((side, side))
    grey[20:60, 20:60] = 150.0  # a body of half the side, centred
    tight = shift.frame(grey, margin=0.0, zoom=1.0, dx=0.0, dy=0.0)
    loose = shift.frame(grey, margin=0.25, zoom=1.0, dx=0.0, dy=0.0)
    share = {name: (img > 75).mean() for name, img in (("tight", tight), ("loose", loose))}
    assert share["tight"] > 0.9  # the body fills the frame
    # margin 0.25 on each side: the body is 1 / 1.5 of the side
    assert share["loose"] == pytest.approx((1 / 1.5) ** 2, abs=0.05)


def _body(table: bool, h: int = 300, w: int = 400, seed: int = 0):
    """A slice at its original size: body ellipse with lungs on black, a table below it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = 0.5 * w, 0.42 * h
    body = ((xx - cx) / (0.25 * w)) ** 2 + ((yy - cy) / (0.22 * h)) ** 2 < 1
    lungs = (((xx - cx + 0.1 * w) / (0.07 * w)) ** 2 + ((yy - cy) / (0.12 * h)) ** 2 < 1) | (
        ((xx - cx - 0.1 * w) / (0.07 * w)) ** 2 + ((yy - cy) / (0.12 * h)) ** 2 < 1
    )
    grey = np.where(body, 150.0, 3.0) - 70 * lungs + rng.normal(0, 3, (h, w)) * body
    if table:
        grey[int(0.85 * h) : int(0.9 * h), int(0.1 * w) : int(0.9 * w)] = 200.0
    img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).convert("RGB")
    return img, body


def test_standardise_fills_the_frame_with_the_body_and_stretches_it():
    img, body = _body(table=True)
    source = np.asarray(img.convert("L"))
    src_lo, src_hi = np.percentile(source[body], [1, 99])
    assert src_lo > 60 and src_hi < 170  # the source body spans a narrow band
    out = shift.standardise(img)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    grey = out[..., 0]
    left, top, right, bottom = body_box(grey.astype(float), margin=0.0)
    assert left <= 0.05 * 224 and top <= 0.05 * 224
    assert right >= 0.95 * 224 and bottom >= 0.95 * 224
    yy, xx = np.mgrid[0:224, 0:224]
    inside = ((xx - 111.5) / 100) ** 2 + ((yy - 111.5) / 100) ** 2 < 1  # within the body
    lo, hi = np.percentile(grey[inside], [1, 99])
    assert hi >= 245  # the bright end of the body reaches white ...
    assert (hi - lo) > 2 * (src_hi - src_lo)  # ... and its grey levels are stretched
    # the table is cut away: the same slice without it standardises the same
    np.testing.assert_array_equal(shift.standardise(_body(table=False)[0]), out)
    assert shift.standardise(img, size=96).shape == (96, 96, 3)
