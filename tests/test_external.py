"""Reading a labelled folder of slices: class mapping, scan, de-duplication, case proxy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lungct_utils import config, external, groupings, images
from lungct_utils.io_utils import DataError

ADENO = "adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib"
LARGE = "large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa"
SQUAMOUS = "squamous.cell.carcinoma_left.hilum_T1_N2_M0_IIIa"


def grey(seed: int, size: tuple[int, int] = (64, 56)) -> Image.Image:
    """A grey test image, different for each seed (a blob on a gradient, some noise)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
    img = 30 + 80 * xx / w + 140 * ((xx - cx) ** 2 + (yy - cy) ** 2 < (0.2 * w) ** 2)
    img = img + rng.normal(0, 25, (h, w))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="L")


def save(img: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def nudged(img: Image.Image, delta: int = 2) -> Image.Image:
    """The same slice with every grey level moved a little (a near-duplicate)."""
    a = np.asarray(img, dtype=np.int16) + delta
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), mode="L")


def make_tree(root: Path) -> Path:
    """A tiny external set: subtype folders, copies, re-encodings, RGBA, junk, a conflict."""
    adeno, normal = root / "train" / ADENO, root / "train" / "normal"
    save(grey(1), adeno / "000108.png")
    (adeno / "000108 - Copy.png").write_bytes((adeno / "000108.png").read_bytes())
    save(grey(2), adeno / "000108 (3).png")  # another slice, same stem: one case by name
    save(grey(3).convert("RGBA"), adeno / "ad5.png")  # opaque RGBA
    save(nudged(grey(3)), adeno / "ad9.png")  # near-duplicate of ad5, other name
    (adeno / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    save(grey(9), adeno / "ad7.png")
    save(grey(4), root / "train" / LARGE / "l4.png")
    (root / "train" / SQUAMOUS).mkdir(parents=True)
    (root / "train" / SQUAMOUS / "sq2.png").write_bytes(
        (root / "train" / LARGE / "l4.png").read_bytes()
    )
    save(grey(5), normal / "10.png")
    save(grey(5).convert("RGB"), normal / "10 - Copy (2).png")  # same pixels, RGB PNG
    save(grey(6), normal / "n1.png")
    save(nudged(grey(4)), normal / "n2.png")  # looks like l4, but another class
    save(grey(9), normal / "cross.png")  # the pixels of a malignant slice: a conflict
    save(grey(7), root / "valid" / "normal" / "7.png")
    save(grey(8), root / "docs" / "figure.png")  # outside every class folder
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "external")


def test_class_of_maps_folders_by_their_longest_prefix_in_any_case():
    assert external.class_of(ADENO) == "malignant"
    assert external.class_of(LARGE) == "malignant"
    assert external.class_of("Squamous.Cell.Carcinoma_x") == "malignant"
    assert external.class_of("normal") == "normal"
    assert external.class_of("Bengin cases") == "benign"
    assert external.class_of("Malignant cases") == "malignant"
    prefixes = {"normal": "normal", "normal.tumour": "malignant"}
    assert external.class_of("normal.tumour_b", prefixes) == "malignant"
    assert external.class_of("Normal_b", prefixes) == "normal"
    with pytest.raises(ValueError, match="'train'"):
        external.class_of("train")


def test_parse_classes_extends_the_defaults_and_quotes_bad_input():
    parsed = external.parse_classes("Tumour=malignant, ctrl = NORMAL,normal=benign")
    assert parsed["tumour"] == "malignant" and parsed["ctrl"] == "normal"
    assert parsed["normal"] == "benign"  # overrides a default
    assert parsed["adenocarcinoma"] == "malignant"  # the defaults stay
    assert external.DEFAULT_PREFIXES["normal"] == "normal"  # and are not changed
    for text, quoted in [
        ("tumour", "'tumour'"),
        ("=normal", "'=normal'"),
        ("x=cancer", "'cancer'"),
        (" , ", "' , '"),
    ]:
        with pytest.raises(ValueError, match=quoted):
            external.parse_classes(text)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("000108 (3).png", "000108"),
        ("10 - Copy.png", "10"),
        ("10 - Copy (2) - Copy.png", "10"),
        ("10 (2) - Copy.png", "10"),
        ("n1 (2) - Copy.jpg", "n1"),
        ("sq2.png", "sq2"),
        ("003828_02_01_174.png", "003828_02_01_174"),
        ("Malignant case (367).jpg", "Malignant case (367)"),  # the number is the slice's
        ("Copy.png", "Copy"),
    ],
)
def test_normalise_stem_strips_copy_suffixes(name, stem):
    assert external.normalise_stem(name) == stem


def test_scan_reads_every_class_folder_file_and_keys_it_by_pixels(tree):
    frame = external.scan(tree)
    assert list(frame.columns) == list(external.SCAN_COLUMNS)
    assert len(frame) == 15  # docs/figure.png is outside every class folder
    assert frame["path"].is_monotonic_increasing
    rows = frame.set_index(frame["path"].map(lambda p: Path(p).relative_to(tree).as_posix()))
    ad5 = rows.loc[f"train/{ADENO}/ad5.png"]
    assert (ad5["split"], ad5["folder"], ad5["class"], ad5["mode"]) == (
        "train",
        ADENO,
        "malignant",
        "RGBA",
    )
    assert (ad5["width"], ad5["height"]) == (64, 56)
    broken = rows.loc[f"train/{ADENO}/broken.png"]
    assert broken["error"] and not broken["pixel_sha"]
    sha = rows["pixel_sha"]
    assert sha[f"train/{ADENO}/000108.png"] == sha[f"train/{ADENO}/000108 - Copy.png"]
    assert sha["train/normal/10.png"] == sha["train/normal/10 - Copy (2).png"]  # L vs RGB
    assert sha[f"train/{LARGE}/l4.png"] == sha[f"train/{SQUAMOUS}/sq2.png"]
    assert sha[f"train/{ADENO}/ad5.png"] != sha[f"train/{ADENO}/ad9.png"]
    assert rows.loc["valid/normal/7.png", "split"] == "valid"
    assert not any(path.startswith("docs/") for path in rows.index)  # outside every class


def test_pixel_sha_composites_alpha_on_black():
    img = grey(3)
    rgba = img.convert("RGBA")
    assert external.pixel_sha(np.asarray(images.to_rgb(rgba))) == external.pixel_sha(
        np.asarray(img.convert("RGB"))
    )
    half = rgba.copy()
    half.putalpha(128)
    assert external.pixel_sha(np.asarray(images.to_rgb(half))) != external.pixel_sha(
        np.asarray(img.convert("RGB"))
    )
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 0] = 9
    assert external.pixel_sha(colour) != external.pixel_sha(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        external.pixel_sha(np.zeros((4, 4), np.uint8))


def test_scan_without_a_split_level(tmp_path):
    save(grey(1), tmp_path / "normal" / "a.png")
    save(grey(2), tmp_path / "Malignant cases" / "b.jpg")
    frame = external.scan(tmp_path)
    assert frame["split"].tolist() == ["", ""]
    assert frame["class"].tolist() == ["malignant", "normal"]


def test_scan_names_a_missing_root_and_the_folders_of_an_unlabelled_one(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such folder"):
        external.scan(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no JPEG or PNG"):
        external.scan(tmp_path / "empty")
    save(grey(1), tmp_path / "other" / "train" / "tumours" / "a.png")
    with pytest.raises(DataError, match="folders found: 'train', 'tumours'"):
        external.scan(tmp_path / "other")
    frame = external.scan(tmp_path / "other", external.parse_classes("tumour=malignant"))
    assert frame["class"].tolist() == ["malignant"]


def test_distinct_keeps_one_row_per_pixel_content_and_sets_conflicts_apart(tree):
    frame = external.scan(tree)
    kept, conflicts = external.distinct(frame)
    # 14 readable files; 3 copies (byte, re-encoded, other subtype); 2 files in a conflict
    assert len(kept) == 14 - 3 - 2
    assert kept["path"].is_monotonic_increasing and kept["pixel_sha"].is_unique
    assert int((kept["n_copies"] - 1).sum()) == 3
    both = kept[kept["n_copies"] == 2].set_index("folder")
    assert both.loc[LARGE, "folders"] == (LARGE, SQUAMOUS)
    assert both.loc[LARGE, "stem_keys"] == (f"{LARGE}/l4", f"{SQUAMOUS}/sq2")
    assert Path(both.loc[LARGE, "path"]).name == "l4.png"  # the first path in sorted order
    assert both.loc["normal", "stem_keys"] == ("normal/10",)
    assert len(conflicts) == 1
    assert conflicts.loc[0, "classes"] == ("malignant", "normal")
    assert {Path(p).name for p in conflicts.loc[0, "paths"]} == {"ad7.png", "cross.png"}
    assert not kept["path"].isin(conflicts.loc[0, "paths"]).any()
    empty, none = external.distinct(frame[frame["error"] != ""])
    assert empty.empty and none.empty


def test_proxy_groups_join_names_and_near_duplicates_of_one_class():
    keys = [("a/1",), ("a/1", "b/9"), ("b/9",), ("a/2",), ("a/3",), ("n/3",)]
    thumbs = np.zeros((6, 4))
    thumbs[3:, 0] = [10.0, 10.5, 10.2]  # rows 3-5 look alike; 5 is of another class
    classes = ["malignant"] * 5 + ["normal"]
    groups = external.proxy_groups(keys, thumbs, classes, merge=1.0)
    assert groups.tolist() == [0, 0, 0, 1, 1, 2]
    pairs = external.near_duplicate_pairs(thumbs, classes, merge=1.0)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (0, 2), (1, 2), (3, 4)]


def test_thumbnails_follow_the_repositorys_near_duplicate_rule(tree):
    path = tree / "train" / "normal" / "n1.png"
    assert np.allclose(external.thumbnails([path]), groupings.peer_thumbnails([path]))


def test_case_proxy_of_the_tree(tree):
    kept, _ = external.distinct(external.scan(tree))
    proxy = pd.Series(external.case_proxy(kept), index=kept["path"].map(lambda p: Path(p).name))
    assert proxy["ad5.png"] == proxy["ad9.png"]  # near-duplicates, same class
    assert proxy["l4.png"] != proxy["n2.png"]  # near-duplicates, two classes: not linked
    assert proxy["000108 - Copy.png"] == proxy["000108 (3).png"]  # one stem (sorted first)
    assert proxy["000108 (3).png"] != proxy["ad5.png"]
    assert proxy.nunique() == len(proxy) - 2


def test_external_dir_follows_its_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(config.EXTERNAL_DIR_ENV, str(tmp_path / "x" / ".." / "ext"))
    assert config.external_dir() == (tmp_path / "ext").resolve()
    monkeypatch.delenv(config.EXTERNAL_DIR_ENV)
    assert config.external_dir() == config.DATA / "external"  # inside the repository


@pytest.mark.slow
def test_the_real_external_set(external_release):
    frame = external.scan(external_release)
    assert len(frame) == 685 and (frame["error"] == "").all()
    assert set(frame["split"]) == {"train", "valid"}
    kept, conflicts = external.distinct(frame)
    assert len(kept) == 578 and conflicts.empty
    assert set(kept["class"]) == {"malignant", "normal"}
    assert int((kept["n_copies"] - 1).sum()) == 685 - 578
    shared = kept[kept["folders"].map(len) > 1]
    assert [Path(p).name for p in shared["path"]] == ["l4.png"]
    sizes = np.bincount(external.case_proxy(kept))
    assert (len(sizes), sizes.max()) == (317, 8)  # the proxy as documented (a guess)
