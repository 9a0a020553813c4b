"""The non-CT corpus: its stored files, counts, parts, pixels and the CT-derived items."""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lungct_utils import config, corpus
from lungct_utils.io_utils import DataError

N_CT, SIDE = 12, 224
#: Items drawn from random numbers: stored as one fixed draw like every other image.
RANDOMISED = {
    "chart: matplotlib bar chart",
    "text: PIL table",
    "pattern: skimage binary_blobs",
    "pattern: smoothed noise",
    "pattern: geometric shapes",
    "grey look-alike (MRI): drawn axial head slice, T1-like",
    "grey look-alike (MRI): drawn axial head slice, FLAIR-like",
    "grey look-alike (microscopy): drawn fluorescence nuclei, dense",
    "grey look-alike (radiograph): drawn frontal chest radiograph",
    "grey look-alike (radiograph): drawn frontal chest radiograph, side marker",
}
#: The grey look-alike and wide-cropped CT kinds: label -> part, in their fixed order.
NEW_ITEMS = {
    "grey look-alike (MRI)": {
        "drawn axial head slice, T1-like": "design",
        "matplotlib s1045.ima, contrast inverted inside the head (T2-like)": "held-out",
        "matplotlib s1045.ima, turned 90 degrees and mirrored, gamma 0.6": "held-out",
        "drawn axial head slice, T2-like": "design",
        "drawn axial head slice, FLAIR-like": "held-out",
    },
    "grey look-alike (microscopy)": {
        "drawn fluorescence nuclei, sparse": "design",
        "skimage immunohistochemistry, grey": "held-out",
        "drawn fluorescence nuclei, dense": "held-out",
        "skimage cell, 65% off-centre window, contrast-stretched": "design",
        "skimage immunohistochemistry, haematoxylin stain (rgb2hed)": "held-out",
    },
    "grey look-alike (radiograph)": {
        "drawn frontal chest radiograph": "design",
        "drawn frontal chest radiograph, side marker": "held-out",
        "drawn frontal chest radiograph, gamma 1.6": "held-out",
    },
}


def _ct_stand_ins(n: int = N_CT, side: int = SIDE, seed: int = 7) -> np.ndarray:
    """Random uint8 RGB arrays standing in for CT slices (no TensorFlow, no data)."""
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    return _ct_stand_ins()


@pytest.fixture(scope="module")
def items(ct) -> list[corpus.Item]:
    return corpus.non_ct_corpus(ct)


def _pixels(item: corpus.Item) -> np.ndarray:
    return np.asarray(item.image)


def _index(name: str) -> int:
    return int(re.search(r"ct_images\[(\d+)\]", name).group(1))


def _box(name: str) -> tuple[int, int, int, int]:
    return tuple(int(v) for v in re.search(r"box \((.*)\)", name).group(1).split(","))


def _of_kind(items, kind: str) -> list[corpus.Item]:
    return [i for i in items if i.kind == kind]


def test_counts(items):
    parts = [item.part for item in items]
    assert len(items) >= 90
    assert parts.count("held-out") >= 55 and parts.count("design") >= 33
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


def test_same_inputs_give_identical_pixels_and_leave_the_input_alone(items, ct):
    before_ct = ct.copy()
    again = corpus.non_ct_corpus(ct)
    assert np.array_equal(ct, before_ct)
    assert [i.name for i in again] == [i.name for i in items]
    assert [i.part for i in again] == [i.part for i in items]
    for a, b in zip(items, again, strict=True):
        assert np.array_equal(_pixels(a), _pixels(b)), a.name


def test_the_corpus_takes_no_seed(ct):
    # one fixed data set: a caller still passing a seed stops instead of reading it as a folder
    with pytest.raises(TypeError):
        corpus.non_ct_corpus(ct, 42)
    with pytest.raises(TypeError):
        corpus.non_ct_corpus(ct, seed=42)


def test_ct_indices_are_used_once_and_spread(items):
    kinds = ("inverted CT", "cropped CT", "wide-cropped CT")
    indices = [_index(i.name) for i in items if i.kind in kinds]
    assert len(indices) == len(set(indices)) == corpus.MIN_CT_IMAGES == N_CT
    assert min(indices) == 0 and max(indices) == N_CT - 1


@pytest.mark.parametrize("n", [12, 13, 20, 37, 100, 1097])
def test_ct_picks_are_distinct_spread_and_leave_the_older_picks_alone(n):
    picks = corpus.ct_picks(n)
    assert picks == [k * (n - 1) // 9 for k in range(10)]
    wide = corpus.wide_ct_picks(n, picks)
    every = picks + wide
    assert len(set(every)) == len(every) == corpus.MIN_CT_IMAGES
    assert all(0 <= i < n for i in every)
    assert wide[0] < (n - 1) / 2 < wide[1]  # one in each half of the slices
    assert corpus.wide_ct_picks(n, picks) == wide


def test_wide_ct_picks_take_the_slices_left_at_twelve():
    assert corpus.wide_ct_picks(12, corpus.ct_picks(12)) == [5, 10]


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
        x0, y0, x1, y1 = box = _box(item.name)
        assert 0 <= x0 < x1 <= SIDE and 0 <= y0 < y1 <= SIDE
        assert x1 - x0 == y1 - y0 and 0.30 * SIDE - 1 <= x1 - x0 <= 0.45 * SIDE + 1
        assert np.hypot((x0 + x1) / 2 - SIDE / 2, (y0 + y1) / 2 - SIDE / 2) > 0.1 * SIDE
        source = Image.fromarray(ct[_index(item.name)]).crop(box)
        expected = source.resize((224, 224), Image.Resampling.BILINEAR)
        assert item.image.size == (224, 224)
        assert np.array_equal(_pixels(item), np.asarray(expected)), item.name


def test_new_kinds_hold_their_items_in_order_and_part(items):
    for kind, expected in NEW_ITEMS.items():
        got = {i.name.removeprefix(f"{kind}: "): i.part for i in _of_kind(items, kind)}
        assert list(got.items()) == list(expected.items()), kind
    wide = _of_kind(items, "wide-cropped CT")
    assert [i.part for i in wide] == ["design", "held-out"]
    assert list(corpus.KINDS[-4:]) == [*NEW_ITEMS, "wide-cropped CT"]


def test_each_new_kind_has_design_and_held_out_items(items):
    for kind in [*NEW_ITEMS, "wide-cropped CT"]:
        parts = [i.part for i in _of_kind(items, kind)]
        assert parts.count("design") >= 1 and parts.count("held-out") >= 1, kind


def test_grey_look_alikes_and_wide_crops_are_grey_with_sensible_sizes(items):
    sizes = {
        "grey look-alike (MRI)": {(256, 256)},
        "grey look-alike (microscopy)": {(384, 384), (512, 512), (358, 429)},
        "grey look-alike (radiograph)": {(360, 400)},
        "wide-cropped CT": {(224, 224)},
    }
    for kind, allowed in sizes.items():
        for item in _of_kind(items, kind):
            pixels = _pixels(item)
            assert np.array_equal(pixels[..., 0], pixels[..., 1]), item.name
            assert np.array_equal(pixels[..., 0], pixels[..., 2]), item.name
            assert item.image.size in allowed, (item.name, item.image.size)
            assert pixels.std() > 10, item.name


def test_variants_of_a_picture_stay_in_that_pictures_part(items):
    sources = ["s1045.ima", "skimage cell", "skimage immunohistochemistry"]
    sources += [f"ct_images[{k}]" for k in range(N_CT)]
    for source in sources:
        parts = {i.part for i in items if source in i.name}
        assert len(parts) == 1, (source, parts)
    by_name = {i.name: i.part for i in items}
    assert by_name["microscopy/astronomy/other modality: skimage cell (microscopy)"] == "design"
    assert by_name["colour photograph: skimage immunohistochemistry"] == "held-out"
    mri = "microscopy/astronomy/other modality: matplotlib s1045.ima MRI head slice"
    assert by_name[mri] == "held-out"


def test_new_items_differ_from_every_other_item(items):
    new = [i for i in items if i.kind in (*NEW_ITEMS, "wide-cropped CT")]
    others = {_pixels(i).tobytes() for i in items if i not in new}
    assert len({_pixels(i).tobytes() for i in new}) == len(new) == 15
    assert not {_pixels(i).tobytes() for i in new} & others


def test_wide_cropped_ct_items_are_grey_off_centre_crops_of_distinct_slices(items, ct):
    wide = _of_kind(items, "wide-cropped CT")
    assert len(wide) == len(corpus.WIDE_CROP_WINDOWS) == 2
    other_ct = {_index(i.name) for i in items if i.kind in ("inverted CT", "cropped CT")}
    indices = [_index(item.name) for item in wide]
    assert len(set(indices)) == len(indices) and not set(indices) & other_ct
    for item in wide:
        x0, y0, x1, y1 = box = _box(item.name)
        assert 0 <= x0 < x1 <= SIDE and 0 <= y0 < y1 <= SIDE
        assert x1 - x0 == y1 - y0 and 0.60 * SIDE - 1 <= x1 - x0 <= 0.70 * SIDE + 1
        assert np.hypot((x0 + x1) / 2 - SIDE / 2, (y0 + y1) / 2 - SIDE / 2) > 0.1 * SIDE
        source = Image.fromarray(ct[_index(item.name)]).crop(box)
        expected = source.resize((224, 224), Image.Resampling.BILINEAR).convert("L")
        assert np.array_equal(_pixels(item)[..., 0], np.asarray(expected)), item.name


def test_wide_crops_of_grey_slices_keep_their_pixels():
    grey = np.repeat(_ct_stand_ins(side=256)[..., :1], 3, axis=3)
    item = next(i for i in corpus.non_ct_corpus(grey) if i.kind == "wide-cropped CT")
    source = Image.fromarray(grey[_index(item.name)]).crop(_box(item.name))
    expected = source.resize((224, 224), Image.Resampling.BILINEAR)
    assert np.array_equal(_pixels(item), np.asarray(expected))


def test_drawn_radiographs_have_dark_lungs_beside_a_bright_mediastinum(items):
    for item in _of_kind(items, "grey look-alike (radiograph)"):
        grey = _pixels(item)[..., 0].astype(float)
        h, w = grey.shape
        rows = slice(int(0.3 * h), int(0.5 * h))
        middle = grey[rows, int(0.46 * w) : int(0.54 * w)].mean()
        for lung in (slice(int(0.2 * w), int(0.33 * w)), slice(int(0.67 * w), int(0.8 * w))):
            assert middle > grey[rows, lung].mean() + 50, (item.name, lung)


def test_mri_look_alikes_have_dark_air_around_the_head(items):
    for item in _of_kind(items, "grey look-alike (MRI)"):
        grey = _pixels(item)[..., 0]
        corners = [grey[:20, :20], grey[:20, -20:], grey[-20:, :20], grey[-20:, -20:]]
        assert min(c.mean() for c in corners) < 30, item.name
        assert grey.mean() > 40, item.name


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


# ----------------------------------------------------------------------------- stored files


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return corpus.read_manifest()


def test_the_manifest_lists_every_stored_file_once(manifest):
    assert tuple(manifest.columns) == corpus.MANIFEST_COLUMNS
    on_disk = {
        p.relative_to(config.NON_CT_DIR).as_posix() for p in config.NON_CT_DIR.rglob("*.png")
    }
    assert sorted(manifest["file"]) == sorted(on_disk)
    assert manifest["file"].is_unique
    assert (manifest["source"] != "").all() and (manifest["licence"] != "").all()


def test_the_manifest_follows_the_kinds_order_and_part_rule(manifest):
    assert set(manifest["kind"]) == set(corpus.KINDS) - set(corpus.CT_KINDS)
    order = manifest["order"].astype(int)
    assert (manifest["part"] == np.where(order % 3 == 0, "design", "held-out")).all()
    for kind, group in manifest.groupby("kind"):
        assert sorted(group["order"].astype(int)) == list(range(len(group))), kind


def test_every_stored_item_is_stored_once(manifest, items):
    names = manifest["kind"] + ": " + manifest["label"]
    assert names.is_unique
    assert set(names) == {i.name for i in items if i.kind not in corpus.CT_KINDS}
    assert RANDOMISED <= set(names)


def test_stored_images_are_the_items_pixels(manifest, items):
    by_name = {i.name: i for i in items}
    assert len(manifest) == len(items) - sum(i.kind in corpus.CT_KINDS for i in items)
    for row in manifest.itertuples():
        with Image.open(config.NON_CT_DIR / row.file) as img:
            stored = np.asarray(img.convert("RGB"))
        item = by_name[f"{row.kind}: {row.label}"]
        assert item.part == row.part
        assert np.array_equal(stored, _pixels(item)), row.file


def _copy_manifest(tmp_path):
    shutil.copy(config.NON_CT_DIR / "manifest.csv", tmp_path / "manifest.csv")
    return corpus.read_manifest(tmp_path)


def test_a_missing_file_is_named(tmp_path, ct):
    first = _copy_manifest(tmp_path)["file"].iloc[0]
    with pytest.raises(DataError, match=re.escape(first)):
        corpus.non_ct_corpus(ct, folder=tmp_path)


def test_a_changed_file_is_named(tmp_path, ct):
    first = _copy_manifest(tmp_path)["file"].iloc[0]
    (tmp_path / first).parent.mkdir(parents=True)
    (tmp_path / first).write_bytes(b"not a png")
    with pytest.raises(DataError, match=re.escape(first)):
        corpus.non_ct_corpus(ct, folder=tmp_path)


def test_a_missing_or_changed_manifest_is_named(tmp_path, ct):
    with pytest.raises(DataError, match="manifest.csv"):
        corpus.non_ct_corpus(ct, folder=tmp_path)
    text = (config.NON_CT_DIR / "manifest.csv").read_text(encoding="utf-8")
    (tmp_path / "manifest.csv").write_text(text.replace("held-out", "design", 1), encoding="utf-8")
    with pytest.raises(DataError, match="manifest.csv.*SHA-256"):
        corpus.non_ct_corpus(ct, folder=tmp_path)


def test_the_pinned_manifest_hash_ignores_windows_line_ends(tmp_path):
    raw = (config.NON_CT_DIR / "manifest.csv").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == corpus.MANIFEST_SHA256
    (tmp_path / "manifest.csv").write_bytes(raw.replace(b"\n", b"\r\n"))
    assert corpus.read_manifest(tmp_path).equals(corpus.read_manifest())
