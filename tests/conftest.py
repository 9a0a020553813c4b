"""Shared fixtures: tiny synthetic releases, and the real release and weights.

Under ``LUNGCT_REQUIRE_DATA=1`` (CI) a test that needs the real data or the ImageNet
weights fails when they are missing; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lungct_utils import config

REQUIRE_DATA = os.environ.get("LUNGCT_REQUIRE_DATA") == "1"
SYNTH_FOLDERS = {"benign": "Bengin cases", "malignant": "Malignant cases", "normal": "Normal cases"}


def _missing(what: str) -> None:
    message = f"needs {what}"
    if REQUIRE_DATA:
        pytest.fail(f"{message} (LUNGCT_REQUIRE_DATA=1: CI must provide it)")
    pytest.skip(message)


def synthetic_image(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A grayscale test image, different for each seed: blobs on a gradient."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = 40 + 100 * xx / w + 30 * np.sin(yy / (3 + seed % 5))
    for _ in range(3):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 10)
        img += 120 * ((xx - cx) ** 2 + (yy - cy) ** 2 < r**2)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="L")


def make_release(root: Path, counts: dict[str, int] | None = None, duplicate: bool = True) -> Path:
    """Write a tiny release with the original folder names; returns its root.

    Args:
        root: folder to create it in.
        counts: images per label (default 6 benign, 9 malignant, 7 normal).
        duplicate: make the last malignant image a byte copy of the first.
    """
    counts = counts or {"benign": 6, "malignant": 9, "normal": 7}
    seed = 0
    for label, n in counts.items():
        folder = root / SYNTH_FOLDERS[label]
        folder.mkdir(parents=True, exist_ok=True)
        stem = SYNTH_FOLDERS[label][:-1]
        for i in range(1, n + 1):
            size = (60, 40) if label == "malignant" and i % 3 == 0 else (48, 48)
            synthetic_image(seed, size).save(folder / f"{stem} ({i}).jpg", quality=90)
            seed += 1
    if duplicate and counts.get("malignant", 0) >= 2:
        folder = root / SYNTH_FOLDERS["malignant"]
        n = counts["malignant"]
        (folder / f"Malignant case ({n}).jpg").write_bytes(
            (folder / "Malignant case (1).jpg").read_bytes()
        )
    (root / "README.txt").write_text("synthetic release for tests\n")
    return root


@pytest.fixture
def synth_release(tmp_path: Path) -> Path:
    """A tiny synthetic release in the original layout."""
    return make_release(tmp_path / "release")


@pytest.fixture(scope="session")
def real_release() -> Path:
    """The real IQ-OTH/NCCD release ($LUNGCT_DATA_DIR or data/raw/iq-othnccd)."""
    root = config.data_dir()
    if not (root / "Bengin cases").is_dir():
        _missing(f"the IQ-OTH/NCCD release at {root} (set LUNGCT_DATA_DIR or run 'make data')")
    return root


@pytest.fixture(scope="session")
def imagenet_weights() -> Path:
    """The MobileNetV2 ImageNet no-top weights in $KERAS_HOME/models."""
    path = config.weights_path(include_top=False)
    if not path.is_file():
        _missing(f"the MobileNetV2 ImageNet weights at {path} (run 'make weights')")
    return path


@pytest.fixture(scope="session")
def real_images(real_release):
    """80 real originals (uint8, 224x224, preprocessed as the paper) and their labels."""
    from lungct_utils.data import load_manifest
    from lungct_utils.images import load_uint8

    manifest = load_manifest(real_release, progress=False)
    rng = np.random.default_rng(0)
    rows = [rng.permutation(np.flatnonzero(manifest["label"] == c))[:27] for c in config.CLASSES]
    order = np.stack(rows, axis=1).ravel()[:80]  # interleaved: every class in train and val
    picked = manifest.iloc[order]
    images = np.stack([load_uint8(p) for p in picked["abspath"]])
    return images, picked["label"].tolist()


@pytest.fixture(scope="session")
def tf_setup():
    """Seeded, deterministic TensorFlow (once per session; tests reseed as they need)."""
    from lungct_utils import train

    train.setup(0)


@pytest.fixture(scope="session")
def prepared(real_release, imagenet_weights, tmp_path_factory):
    """The groups, augmented set and split manifests built from the real release."""
    from lungct_utils import pipeline
    from lungct_utils.config import PAPER

    out = tmp_path_factory.mktemp("processed")
    pipeline.prepare(PAPER, processed=out, progress=False)
    return out


@pytest.fixture(scope="session")
def trained_run(prepared, tmp_path_factory):
    """A real holdout run (cases protocol): saved end-to-end model, OOD reference, test data."""
    from lungct_utils import input_check, pipeline
    from lungct_utils.augment import load_images
    from lungct_utils.config import PAPER
    from lungct_utils.images import label_indices
    from lungct_utils.model import assemble, save_model
    from lungct_utils.splits import holdout_roles
    from lungct_utils.train import train_head

    table = pipeline.read_table(prepared)
    images = load_images(table, prepared / "augmented", progress=False)
    feats = pipeline.table_features(table, PAPER, processed=prepared, progress=False)
    splits = pipeline.read_splits("cases", prepared)
    roles = holdout_roles(splits)
    result = train_head(feats, splits["label"], roles, PAPER, progress=False)
    folder = tmp_path_factory.mktemp("models")
    path = save_model(assemble(result.model, PAPER), folder / "run.keras")
    seen = np.isin(roles, ("train", "val")) & splits["scored"].to_numpy()
    labels = label_indices(table["label"][seen])
    # both questions of predict's input check, as 03 fits them
    reference = input_check.fit_input_check(
        images[seen], feats[seen], labels, table["case"][seen].to_numpy(), PAPER.preprocess
    )
    input_check.save(reference, input_check.path_for(path))
    return {
        "path": path,
        "result": result,
        "splits": splits,
        "table": table,
        "roles": roles,
        "images": images,
        "features": feats,
        "augmented_dir": prepared / "augmented",
    }


@pytest.fixture(scope="session")
def external_release() -> Path:
    """The real external set ($LUNGCT_EXTERNAL_DIR, which make sets, or data/external)."""
    root = config.external_dir()
    if not root.is_dir():
        message = (
            f"needs the external set (Kaggle 'Chest CT-Scan images' train/ and valid/) at "
            f"{root}; set {config.EXTERNAL_DIR_ENV}"
        )
        if os.environ.get("LUNGCT_REQUIRE_DATA") == "1":
            pytest.fail(f"{message} (LUNGCT_REQUIRE_DATA=1: CI must provide it)")
        pytest.skip(message)
    return root
