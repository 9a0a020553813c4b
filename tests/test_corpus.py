"""The non-CT corpus: counts, parts, pixels, determinism and the CT-derived items."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
from PIL import Image

from lungct_utils.app import corpus

N_CT, SIDE = 12, 224
RANDOMISED = {
    "chart: matplotlib bar chart",
    "text: PIL table",
    "pattern: skimage binary_blobs",
    "pattern: smoothed noise",
    "pattern: geometric shapes",
}


def _ct_stand_ins(n: int = N_CT, side: int = SIDE, seed: int = 7) -> np.ndarray:
    """Random uint8 RGB arrays standing in for CT slices (no TensorFlow, no data)."""
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    return _ct_stand_ins()


@pytest.fixture(scope="module")
def items(ct) -> list[corpus.Item]:
    return corpus.non_ct_corpus(ct, seed=0)


def _pixels(item: corpus.Item) -> np.ndarray:
    return np.asarray(item.image)


def _index(name: str) -> int:
    return int(re.search(r"ct_images\[(\d+)\]", name).group(1))


def test_counts(items):
    parts = [item.part for item in items]
    assert len(items) >= 60
    assert parts.count("held-out") >= 40
    assert set(parts) == set(corpus.PARTS)


def test_every_kind_is_in_both_parts(items):
    assert {item.kind for item in items} == set(corpus.KINDS)
    for kind in corpus.KINDS:
        assert {i.part for i in items if i.kind == kind} == set(corpus.PARTS), kind


def test_parts_follow_the_fixed_position_rule(items):
    for kind in corpus.KINDS:
        parts = [i.part for i in items if i.kind == kind]
        expected = ["design" if p % 3 == 0 else "held-out" for p in range(len(parts))]
        assert parts == expected, kind


def test_names_are_unique_and_start_with_the_kind(items):
    names = [item.name for item in items]
    assert len(set(names)) == len(names)
    for item in items:
        assert item.name.startswith(f"{item.kind}: "), item.name


def test_every_image_is_rgb_uint8_and_not_too_small(items):
    for item in items:
        assert isinstance(item.image, Image.Image), item.name
        assert item.image.mode == "RGB", item.name
        pixels = _pixels(item)
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3, item.name
        assert min(item.image.size) >= 128, (item.name, item.image.size)
        assert max(item.image.size) <= 700, (item.name, item.image.size)
        assert pixels.std() > 2, f"{item.name} is blank"


def test_design_and_held_out_share_no_image(items):
    def keys(part):
        return {(i.image.size, _pixels(i).tobytes()) for i in items if i.part == part}

    assert not keys("design") & keys("held-out")
    assert len({(i.image.size, _pixels(i).tobytes()) for i in items}) == len(items)


def test_grey_photographs_are_grey_and_colour_ones_are_not(items):
    for item in items:
        pixels = _pixels(item).astype(int)
        spread = np.abs(pixels - pixels.mean(axis=2, keepdims=True)).max()
        if item.kind == "grey photograph":
            assert spread == 0, item.name
        elif item.kind == "colour photograph":
            assert spread > 20, item.name


def test_grey_conversions_never_reuse_a_colour_photograph(items):
    def source(item):  # "<kind>: <package> <source>[, ...]"
        return item.name.split(": ", 1)[1].split()[1].rstrip(",")

    colour = {source(i) for i in items if i.kind == "colour photograph"}
    assert {"astronaut", "china.jpg", "grace_hopper.jpg"} <= colour
    for item in items:
        if item.kind == "grey photograph":
            assert source(item) not in colour, item.name


def test_small_sources_are_upscaled(items):
    by_name = {item.name: item for item in items}
    assert by_name["digits: sklearn digit 0, nearest, white on black"].image.size == (256, 256)
    tiny = "microscopy/astronomy/other modality: skimage microaneurysms (retinal angiography)"
    assert by_name[tiny].image.size == (256, 256)


def test_same_seed_and_inputs_give_identical_pixels(items, ct):
    again = corpus.non_ct_corpus(ct.copy(), seed=0)
    assert [i.name for i in again] == [i.name for i in items]
    assert [i.part for i in again] == [i.part for i in items]
    for a, b in zip(items, again, strict=True):
        assert np.array_equal(_pixels(a), _pixels(b)), a.name


def test_a_different_seed_changes_randomised_images_only(items, ct):
    before_ct, before_rc = ct.copy(), dict(matplotlib.rcParams)
    other = {i.name: _pixels(i) for i in corpus.non_ct_corpus(ct, seed=1)}
    # building leaves its input and the global matplotlib settings alone
    assert np.array_equal(ct, before_ct)
    assert dict(matplotlib.rcParams) == before_rc
    assert set(other) == {i.name for i in items}
    changed = {i.name for i in items if not np.array_equal(_pixels(i), other[i.name])}
    assert RANDOMISED <= changed
    for item in items:
        if item.kind in ("colour photograph", "grey photograph", "inverted CT", "cropped CT"):
            assert item.name not in changed, item.name


def test_ct_indices_are_used_once_and_spread(items):
    indices = [_index(i.name) for i in items if i.kind in ("inverted CT", "cropped CT")]
    assert len(indices) == len(set(indices))
    assert min(indices) == 0 and max(indices) == N_CT - 1


def test_inverted_ct_items_are_255_minus_a_given_slice(items, ct):
    inverted = [i for i in items if i.kind == "inverted CT"]
    assert inverted
    for item in inverted:
        assert np.array_equal(_pixels(item), 255 - ct[_index(item.name)]), item.name


def test_inverted_ct_items_are_resized_to_224():
    big = _ct_stand_ins(side=256)
    item = next(i for i in corpus.non_ct_corpus(big) if i.kind == "inverted CT")
    expected = Image.fromarray(255 - big[_index(item.name)]).resize(
        (224, 224), Image.Resampling.BILINEAR
    )
    assert np.array_equal(_pixels(item), np.asarray(expected))


def test_cropped_ct_items_are_heavy_off_centre_crops_of_a_given_slice(items, ct):
    cropped = [i for i in items if i.kind == "cropped CT"]
    assert cropped
    for item in cropped:
        box = tuple(int(v) for v in re.search(r"box \((.*)\)", item.name).group(1).split(","))
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= SIDE and 0 <= y0 < y1 <= SIDE
        assert x1 - x0 == y1 - y0 and 0.30 * SIDE - 1 <= x1 - x0 <= 0.45 * SIDE + 1
        assert np.hypot((x0 + x1) / 2 - SIDE / 2, (y0 + y1) / 2 - SIDE / 2) > 0.1 * SIDE
        source = Image.fromarray(ct[_index(item.name)]).crop(box)
        expected = source.resize((224, 224), Image.Resampling.BILINEAR)
        assert item.image.size == (224, 224)
        assert np.array_equal(_pixels(item), np.asarray(expected)), item.name


def test_corpus_frame(items):
    frame = corpus.corpus_frame(items)
    assert list(frame.columns) == ["name", "kind", "part", "width", "height"]
    assert len(frame) == len(items)
    assert frame["name"].tolist() == [i.name for i in items]
    assert frame["width"].tolist() == [i.image.width for i in items]
    assert frame["height"].tolist() == [i.image.height for i in items]
    assert set(frame["part"]) == set(corpus.PARTS)


def test_corpus_frame_rejects_other_entries():
    with pytest.raises(ValueError, match="'not an item'"):
        corpus.corpus_frame(["not an item"])


@pytest.mark.parametrize(
    ("bad", "quoted"),
    [
        (_ct_stand_ins().astype(np.float32), "float32"),
        (_ct_stand_ins()[0], "(224, 224, 3)"),
        (_ct_stand_ins(n=11), "11"),
        (_ct_stand_ins()[:, :, :200], "(12, 224, 200, 3)"),
        (np.zeros((12, 224, 224, 4), np.uint8), "(12, 224, 224, 4)"),
        (_ct_stand_ins(side=32), "32"),
        (_ct_stand_ins().tolist(), "list"),
    ],
    ids=["dtype", "ndim", "too-few", "not-square", "four-channels", "too-small", "not-array"],
)
def test_bad_ct_images_raise_quoting_the_value(bad, quoted):
    with pytest.raises(ValueError, match=re.escape(quoted)):
        corpus.non_ct_corpus(bad)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_raises_quoting_the_value(ct, seed):
    with pytest.raises(ValueError, match=re.escape(repr(seed))):
        corpus.non_ct_corpus(ct, seed=seed)
