"""Every path, every setting and every published number of the project, in one place.

Paths derive from the repository root (found from this file, so notebooks run from any
working directory). ``LUNGCT_DATA_DIR`` overrides the dataset folder, ``LUNGCT_REPORTS_DIR``
the reports folder (tests and nbval write to a temporary one, so only ``make report``
rewrites the committed reports); ``KERAS_HOME`` is Keras' own variable for where the
ImageNet weights live (default here: the repository's ``.cache/keras``).

The paper's settings (Rajendra & Wardhana 2025; the README's "Data and citation") live in the
frozen :class:`PaperConfig`; a notebook parameter overrides a field with
:func:`dataclasses.replace` (``PAPER.with_overrides(...)``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
RAW = DATA / "raw"
INTERIM = DATA / "interim"
PROCESSED = DATA / "processed"
MANIFEST_CSV = DATA / "manifest.csv"
#: The non-CT corpus images that do not depend on the dataset, with their manifest (tracked).
NON_CT_DIR = DATA / "non_ct"
MODELS = ROOT / "models"
NOTEBOOKS = ROOT / "notebooks"
#: The committed reports; :func:`reports_dir` is where a run writes (may be a temp folder).
REPORTS = ROOT / "reports"
#: Committed metrics of studies run by their own targets (``make study-finetune``); read
#: from here even when a run writes its reports elsewhere (``LUNGCT_REPORTS_DIR``).
STUDIES = REPORTS / "metrics"
README = ROOT / "README.md"

DEFAULT_DATA_DIR = RAW / "iq-othnccd"
FEATURE_CACHE = INTERIM / "features"
AUGMENTED_DIR = PROCESSED / "augmented"
AUGMENTED_CSV = PROCESSED / "augmented.csv"
PREPARE_JSON = PROCESSED / "prepare.json"
DATASET_DOI = "doi:10.17632/bhmdr45bh2"
DATASET_CITATION = (
    "alyasriy, H. & AL-Huseiny, M. (2021), The IQ-OTH/NCCD lung cancer dataset, "
    "Mendeley Data, doi:10.17632/bhmdr45bh2 (CC BY 4.0)"
)

#: The three labels, in the fixed order used for one-hot columns and confusion matrices.
CLASSES: tuple[str, ...] = ("benign", "malignant", "normal")

#: Preprocessing modes: "paper" divides by 255 (paper II.B); "mobilenet_v2" is Keras'
#: ``preprocess_input`` ([-1, 1]), kept for ablations.
PREPROCESS_MODES: tuple[str, ...] = ("paper", "mobilenet_v2")

#: Split protocols: "paper" splits augmented images at random (as the paper did, leaky);
#: "grouped" keeps every source original (byte-identical originals merged) on one side;
#: "grouped_near" keeps every pseudo-case (near-duplicate slices linked, see audit.py)
#: on one side; "cases" keeps every reconstructed case (patient, see cases.py) on one side.
PROTOCOLS: tuple[str, ...] = ("paper", "grouped", "grouped_near", "cases")
#: The protocols scored honestly: test sets hold each distinct original once, never a copy.
HONEST_PROTOCOLS: tuple[str, ...] = ("grouped", "grouped_near", "cases")
PSEUDO_CASES_CSV = PROCESSED / "pseudo_cases.csv"
CASES_CSV = PROCESSED / "cases.csv"
#: The family of patient groupings (one column each, per original) behind the bracket.
GROUPINGS_CSV = PROCESSED / "groupings.csv"

#: Cases per class as the dataset's description states (110 in all; no per-image ids).
STATED_CASES = MappingProxyType({"benign": 15, "malignant": 40, "normal": 55})


def data_dir() -> Path:
    """The IQ-OTH/NCCD release folder: ``$LUNGCT_DATA_DIR`` or ``data/raw/iq-othnccd``.

    Returns:
        The folder path (not checked for existence).
    """
    env = os.environ.get("LUNGCT_DATA_DIR")
    return Path(env).expanduser().resolve() if env else DEFAULT_DATA_DIR


#: The external test set (the Kaggle "Chest CT-Scan images" release, its ``train/`` and
#: ``valid/`` folders), read-only: put or link it here, or name its folder in
#: :data:`EXTERNAL_DIR_ENV` (``make`` does, when the Makefile's source folder holds it).
DEFAULT_EXTERNAL_DIR = DATA / "external"
#: The variable that overrides it.
EXTERNAL_DIR_ENV = "LUNGCT_EXTERNAL_DIR"


#: The notebook that scores the external set (skipped, with one line, when it is missing).
EXTERNAL_NOTEBOOK = "09_external_validation.ipynb"


def external_dir() -> Path:
    """The external test set: ``$LUNGCT_EXTERNAL_DIR`` or :data:`DEFAULT_EXTERNAL_DIR`.

    Returns:
        The folder path (not checked for existence).
    """
    env = os.environ.get(EXTERNAL_DIR_ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_EXTERNAL_DIR


#: Threads for TensorFlow and LiteRT: the 2-core target machine (a different count changes
#: the float rounding, so numbers are reproducible per thread count).
THREADS = int(os.environ.get("LUNGCT_THREADS", "2"))

#: Where the ImageNet weights live when ``KERAS_HOME`` is unset: the repository's own cache
#: (``make weights`` fills it), not ``~/.keras``, so the package works outside make too.
DEFAULT_KERAS_HOME = ROOT / ".cache" / "keras"
# Keras reads KERAS_HOME once, when it is first imported: point it at the repository's cache
# before any module of this package imports it.
os.environ.setdefault("KERAS_HOME", str(DEFAULT_KERAS_HOME))


def reports_dir() -> Path:
    """Where this run writes reports, figures and metrics: ``$LUNGCT_REPORTS_DIR`` or ``reports/``.

    Returns:
        The folder (created if missing).
    """
    env = os.environ.get("LUNGCT_REPORTS_DIR")
    path = Path(env).expanduser().resolve() if env else REPORTS
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    """The figures folder of this run's reports (``<reports>/figures``)."""
    return reports_dir() / "figures"


def metrics_dir() -> Path:
    """The folder of this run's metric parts (``<reports>/metrics``)."""
    return reports_dir() / "metrics"


def split_path(protocol: str, processed: Path = PROCESSED) -> Path:
    """Where the split manifest of a protocol lives.

    Args:
        protocol: a protocol name.
        processed: the processed-data folder.

    Returns:
        ``processed/splits_<protocol>.csv``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return Path(processed) / f"splits_{protocol}.csv"


def model_path(name: str) -> Path:
    """Where a trained model is saved: ``models/<name>.keras``.

    Args:
        name: the run name, e.g. ``"cases_holdout"``.

    Returns:
        The path.
    """
    return MODELS / f"{name}.keras"


#: The model ``predict``, ``export`` and the model card use by default, and the protocol whose
#: test split scores it in ``deployment.md``.
DEFAULT_RUN = "beyond"
#: The nested-selected model (the recipe as 06 selects it, shipped by 07), kept under its own
#: name: notebook 09 scores it and, when its shipping rule picks a transfer recipe, replaces
#: :data:`DEFAULT_RUN` with that.
NESTED_RUN = "beyond_nested"
DEFAULT_PROTOCOL = "cases"


def keras_home() -> Path:
    """Keras' cache folder: ``$KERAS_HOME``, else the repository's ``.cache/keras``.

    Returns:
        The folder whose ``models/`` subfolder holds the ImageNet weights.
    """
    return Path(os.environ.get("KERAS_HOME") or DEFAULT_KERAS_HOME).expanduser()


def weights_path(include_top: bool = False) -> Path:
    """Where Keras looks for the MobileNetV2 1.0/224 ImageNet weights.

    Args:
        include_top: True for the file with the ImageNet classifier.

    Returns:
        The path of the ``.h5`` file inside ``$KERAS_HOME/models``.
    """
    suffix = "" if include_top else "_no_top"
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224{suffix}.h5"
    return keras_home() / "models" / name


def _frozen(mapping: dict[str, int]) -> MappingProxyType:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class PaperConfig:
    """The paper's settings; every field cites where it comes from.

    Attributes:
        image_size: side of the square input (II.B: resize to 224x224).
        preprocess: pixel scaling mode (II.B: divide by 255 -> "paper").
        augmented_counts: class counts of the augmented set (Table I).
        train_frac: training share of the holdout split (II.B: 70%).
        val_frac: validation share (II.B: 15%).
        test_frac: test share (II.B: 15%).
        n_folds: folds of the cross-validation (II.F: 5).
        batch_size: mini-batch size (II.D: 32).
        epochs: maximum epochs (II.D: 50).
        patience: early-stopping patience on validation accuracy (II.D: 5).
        restore_best_weights: Keras' EarlyStopping option; the paper does not use it.
        learning_rate: Adam learning rate (II.C: 0.001).
        dense_units: hidden units of the head (Table II: 128).
        dropout: dropout rate of the head (Table II: 0.5).
        max_rotation_deg: augmentation rotation range, degrees (paper silent; ours).
        max_shift_frac: augmentation shift range, fraction of the side (ours).
        max_zoom: augmentation zoom range around 1 (ours).
        pad_square: pad each image to a square (black) before resizing; False as the
            paper (True is the shape-shortcut ablation).
        cv_repeats: repeats of the k-fold CV, each with another fold assignment (ours; the
            paper ran one).
        seed: the one seed for augmentation, splits and training.
    """

    image_size: int = 224
    preprocess: str = "paper"
    augmented_counts: MappingProxyType = field(
        default_factory=lambda: _frozen({"benign": 1201, "malignant": 1205, "normal": 1203})
    )
    train_frac: float = 0.70
    val_frac: float = 0.15
    test_frac: float = 0.15
    n_folds: int = 5
    batch_size: int = 32
    epochs: int = 50
    patience: int = 5
    restore_best_weights: bool = False
    learning_rate: float = 1e-3
    dense_units: int = 128
    dropout: float = 0.5
    max_rotation_deg: float = 10.0
    max_shift_frac: float = 0.05
    max_zoom: float = 0.05
    pad_square: bool = False
    cv_repeats: int = 5
    seed: int = 42

    def __post_init__(self) -> None:
        if not isinstance(self.augmented_counts, MappingProxyType):
            object.__setattr__(self, "augmented_counts", _frozen(dict(self.augmented_counts)))
        checks = [
            (self.image_size >= 32, "image_size", self.image_size),
            (self.preprocess in PREPROCESS_MODES, "preprocess", self.preprocess),
            (set(self.augmented_counts) == set(CLASSES), "augmented_counts", self.augmented_counts),
            (0 < self.train_frac < 1, "train_frac", self.train_frac),
            (0 < self.val_frac < 1, "val_frac", self.val_frac),
            (0 < self.test_frac < 1, "test_frac", self.test_frac),
            (
                abs(self.train_frac + self.val_frac + self.test_frac - 1) < 1e-9,
                "train_frac + val_frac + test_frac",
                self.train_frac + self.val_frac + self.test_frac,
            ),
            (self.n_folds >= 2, "n_folds", self.n_folds),
            (
                isinstance(self.cv_repeats, int) and self.cv_repeats >= 1,
                "cv_repeats",
                self.cv_repeats,
            ),
            (self.batch_size >= 1, "batch_size", self.batch_size),
            (self.epochs >= 1, "epochs", self.epochs),
            (self.patience >= 0, "patience", self.patience),
            (self.learning_rate > 0, "learning_rate", self.learning_rate),
            (self.dense_units >= 1, "dense_units", self.dense_units),
            (0 <= self.dropout < 1, "dropout", self.dropout),
            (0 <= self.max_rotation_deg <= 45, "max_rotation_deg", self.max_rotation_deg),
            (0 <= self.max_shift_frac <= 0.25, "max_shift_frac", self.max_shift_frac),
            (0 <= self.max_zoom <= 0.25, "max_zoom", self.max_zoom),
            (isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed),
        ]
        for ok, name, value in checks:
            if not ok:
                raise ValueError(f"PaperConfig: invalid {name}={value!r}")
        for label, n in self.augmented_counts.items():
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"PaperConfig: invalid augmented_counts[{label!r}]={n!r}")

    def with_overrides(self, **overrides) -> PaperConfig:
        """A copy with some fields replaced (notebook parameters use this).

        Args:
            **overrides: field names (lower or UPPER case) and their new values; ``None``
                values are ignored so notebook parameters can default to "paper's value".

        Returns:
            A new, validated :class:`PaperConfig`.
        """
        names = {f.name for f in dataclasses.fields(self)}
        clean = {}
        for key, value in overrides.items():
            if value is None:
                continue
            name = key.lower()
            if name not in names:
                raise ValueError(f"PaperConfig: unknown setting {key!r}; known: {sorted(names)}")
            clean[name] = value
        return dataclasses.replace(self, **clean)

    def to_dict(self) -> dict:
        """The settings as a plain JSON-ready dict (for metrics files)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["augmented_counts"] = dict(self.augmented_counts)
        return out


#: The paper's configuration; never mutated.
PAPER = PaperConfig()

#: The paper's Table III (test split) and Figure 6, as fractions and counts.
PAPER_TABLE_III = MappingProxyType(
    {
        "accuracy": 0.97,
        "per_class": {
            "benign": {"precision": 0.96, "recall": 0.96, "f1": 0.96},
            "malignant": {"precision": 0.98, "recall": 1.00, "f1": 0.99},
            "normal": {"precision": 0.97, "recall": 0.95, "f1": 0.96},
        },
        "confusion_matrix": [[173, 1, 6], [0, 180, 0], [8, 2, 172]],
    }
)
#: The paper's Table IV (stratified 5-fold CV), as fractions; std with 1/k.
PAPER_TABLE_IV = MappingProxyType(
    {
        "folds": [
            {"accuracy": 0.9695, "precision": 0.9696, "recall": 0.9695, "f1": 0.9695},
            {"accuracy": 0.9792, "precision": 0.9793, "recall": 0.9793, "f1": 0.9792},
            {"accuracy": 0.9806, "precision": 0.9808, "recall": 0.9807, "f1": 0.9806},
            {"accuracy": 0.9626, "precision": 0.9633, "recall": 0.9627, "f1": 0.9627},
            {"accuracy": 0.9709, "precision": 0.9710, "recall": 0.9709, "f1": 0.9709},
        ],
        "mean": {"accuracy": 0.9726, "precision": 0.9728, "recall": 0.9726, "f1": 0.9726},
        "std": {"accuracy": 0.0066, "precision": 0.0065, "recall": 0.0066, "f1": 0.0066},
    }
)
#: Epochs of the paper's reported run (III.C).
PAPER_EPOCHS = 28
