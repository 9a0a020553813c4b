import io

import numpy as np
import pytest
from PIL import Image

from lungct_utils import audit, groupings, pipeline
from lungct_utils.audit import duplicate_groups, pixel_duplicate_groups
from lungct_utils.config import PAPER
from lungct_utils.data import load_manifest


def test_exact_duplicates_planted_in_a_synthetic_set(synth_release):
    folder = synth_release / "Normal cases"
    (folder / "Normal case (99).jpg").write_bytes((folder / "Normal case (2).jpg").read_bytes())
    # same pixels, other bytes: a lossless re-encoding as PNG
    Image.open(folder / "Normal case (3).jpg").save(folder / "Normal case (98).png")
    manifest = load_manifest(synth_release, progress=False)
    by_bytes = duplicate_groups(manifest)
    assert ["Normal cases/Normal case (2).jpg", "Normal cases/Normal case (99).jpg"] in by_bytes
    assert len(by_bytes) == 2  # with the malignant pair the fixture plants
    by_pixels = pixel_duplicate_groups(manifest)
    assert ["Normal cases/Normal case (3).jpg", "Normal cases/Normal case (98).png"] in by_pixels
    assert len(by_pixels) == 3


def test_components_merge_exact_and_near_links():
    sim = np.full((5, 5), 0.1)
    sim[0, 1] = sim[1, 0] = 0.95  # near link
    np.fill_diagonal(sim, -1)
    comp = audit.components(sim, 0.9, ["a", "b", "c", "c", "d"])  # 2 and 3 identical
    assert comp[0] == comp[1] and comp[2] == comp[3]
    assert len(set(comp)) == 3


def test_threshold_is_lowest_without_cross_class_links():
    sim = np.array([[-1, 0.9, 0.7], [0.9, -1, 0.6], [0.7, 0.6, -1]])
    counts = audit.link_counts(sim, ["a", "a", "b"], ["x", "y", "z"], thresholds=[0.5, 0.65, 0.8])
    assert counts["cross_class_links"].tolist() == [2, 1, 0]
    assert audit.choose_threshold(counts) == 0.8
    with pytest.raises(ValueError):
        audit.choose_threshold(counts[counts["threshold"] < 0.7])


def test_flip_invariance_of_similarity():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(4, 16))
    mirrored = f[[1, 0, 3, 2]]  # image 0's mirror looks like image 1
    sim = audit.similarity(f, [mirrored])
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 2] < 0.99
    assert np.allclose(sim, sim.T)


def test_thumbnails_average_each_block_in_grey():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[0, :2, :2] = 255  # the top-left block white
    images[1, :, :, 0] = 51  # one channel at 51: grey 17
    thumbs = audit.thumbnails(images, 2)
    assert thumbs.shape == (2, 4)
    assert np.allclose(thumbs[0], [1, 0, 0, 0]) and np.allclose(thumbs[1], 17 / 255)
    with pytest.raises(ValueError, match="size=3"):
        audit.thumbnails(images, 3)


@pytest.fixture(scope="module")
def real_audit(real_release, imagenet_weights):
    manifest = pipeline.release_manifest(progress=False)
    images = pipeline.original_images(manifest, PAPER, progress=False)
    feats, others = pipeline.view_features(images, PAPER, progress=False)
    result = groupings.group_originals(manifest, images, feats, others)
    manifest["pseudo_case"] = result["groups"]["pseudo_case"].to_numpy()
    manifest["case"] = result["groups"]["case"].to_numpy()
    return {**result, "manifest": manifest, "images": images, "mean_feature": feats.mean(axis=0)}


@pytest.mark.data
@pytest.mark.weights
def test_near_duplicate_detector_finds_planted_copies(real_audit, tmp_path):
    from lungct_utils.augment import apply_transform
    from lungct_utils.features import cached_features

    m, images, threshold = real_audit["manifest"], real_audit["images"], real_audit["threshold"]
    rng = np.random.default_rng(0)
    picks = [
        int(rng.choice(np.flatnonzero(m["label"] == c))) for c in ("benign", "malignant", "normal")
    ]
    sources, copies = [], []
    for k in picks:
        img = images[k]
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=60)
        recompressed = np.asarray(Image.open(buf).convert("RGB"))
        for copy in (img[:, ::-1], apply_transform(img, rotation=7.0), recompressed):
            sources.append(img)
            copies.append(np.ascontiguousarray(copy))
    batch = np.stack(sources + copies)
    feats = cached_features(batch, "paper", "litert", cache_dir=tmp_path, progress=False)
    others = [
        cached_features(v, "paper", "litert", cache_dir=tmp_path, progress=False)
        for v in audit.views(batch)
    ]
    sim = audit.similarity(feats, others, real_audit["mean_feature"])
    n = len(sources)
    planted = np.array([sim[i, n + i] for i in range(n)])
    assert (planted > threshold).all(), planted
    # different images are not linked: the three sources are far apart
    for a in range(0, n, 3):
        for b in range(a + 3, n, 3):
            assert sim[a, b] < threshold


@pytest.mark.data
@pytest.mark.weights
def test_real_audit_links_no_classes_and_few_pairs(real_audit):
    m, sim, threshold = real_audit["manifest"], real_audit["sim"], real_audit["threshold"]
    assert 0.5 <= threshold < 0.99
    assert (m.groupby("pseudo_case")["label"].nunique() == 1).all()
    i, j = np.triu_indices(len(m), 1)
    assert (sim[i, j] > threshold).mean() < 0.01  # a sparse graph, not one blob
    sizes = m.groupby("sha256").size()
    assert (sizes > 1).sum() == 42 and len(sizes) == 1055
    cases_per_class = audit.pseudo_case_counts(m["label"], m["pseudo_case"].to_numpy())
    assert 110 <= sum(cases_per_class.values()) <= 1055
