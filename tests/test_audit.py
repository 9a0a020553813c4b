import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lungct_utils import audit, pipeline, splits
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


def test_shortcut_probes_on_synthetic_shortcuts():
    n = 60
    labels = np.array(["benign", "malignant", "normal"] * (n // 3))
    width = np.where(labels == "malignant", 600, 512)
    manifest = pd.DataFrame({"width": width, "height": 512, "label": labels})
    folds = [np.arange(n) % 5, (np.arange(n) // 3) % 5]
    # width separates malignant exactly; benign and normal look the same: 1/3 + 1/3 right
    shape = audit.shape_shortcut(manifest, folds)
    assert shape["accuracy"] == pytest.approx(2 / 3, abs=0.05)
    assert shape["balanced_accuracy"] == pytest.approx(2 / 3, abs=0.05)
    images = np.zeros((n, 16, 16, 3), np.uint8)
    images[labels == "benign"] = 200
    images[labels == "normal", :8] = 120
    assert audit.thumbnail_shortcut(images, labels, folds) == {
        "accuracy": 1.0,
        "balanced_accuracy": 1.0,
    }
    with pytest.raises(ValueError, match="size=5"):
        audit.thumbnails(images, 5)


@pytest.fixture(scope="module")
def real_audit(real_release, imagenet_weights):
    manifest = pipeline.release_manifest(progress=False)
    images = pipeline.original_images(manifest, PAPER, progress=False)
    feats, others = pipeline.view_features(images, PAPER, progress=False)
    result = pipeline.group_originals(manifest, images, feats, others)
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
    distinct = ~m["sha256"].duplicated().to_numpy()
    folds = [splits.kfold(m["label"][distinct], m["case"][distinct], 5, r) for r in range(2)]
    summary = audit.audit_summary(m, real_audit["images"], real_audit["counts"], threshold, folds)
    assert summary["exact_duplicate_groups"] == 42 and summary["unique_images"] == 1055
    assert 110 <= sum(summary["pseudo_case_groups"].values()) <= 1055
    # under patient folds: the thumbnail beats chance (1/3) but is far from perfect; shape
    # alone tells malignant (every non-square slice) from the rest and little else
    assert 0.45 < summary["thumbnail_shortcut_balanced_accuracy"] < 0.9
    assert 0.33 < summary["shape_shortcut_balanced_accuracy"] < 0.6
