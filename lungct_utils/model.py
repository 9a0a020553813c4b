"""The paper's model (section II.C, Table II), with the head as a named, swappable part.

``build_model()`` with the default ``head="paper"`` is the paper's network exactly::

    base = MobileNetV2(include_top=False, weights="imagenet", input_shape=(224, 224, 3))
    base.trainable = False
    x = GlobalAveragePooling2D()(base.output)
    x = Dense(128, activation="relu")(x)
    x = Dropout(0.5)(x)
    predictions = Dense(3, activation="softmax")(x)
    model = Model(inputs=base.input, outputs=predictions)
    model.compile(Adam(1e-3), "categorical_crossentropy", ["accuracy"])

A *head* is a function ``cfg -> list of Keras layers`` applied to the pooled 1280-d
feature; :data:`HEADS` names the ones this project ships, and a notebook can pass its own.
Because the base is frozen (and a frozen BatchNorm runs in inference mode), each image's
pooled feature is fixed: :func:`build_head` is the same head on cached features, so training
it there is training the whole model (``tests/test_train.py`` proves it).

A trained head is kept as an end-to-end model ``models/<name>.keras``, the head alone and a
JSON sidecar of its settings and provenance (:func:`save_run`; :func:`load_run` and
:func:`model_info` read them back).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from . import config
from .config import CLASSES, PAPER, PaperConfig
from .features import build_base
from .io_utils import DataError, atomic_path, provenance, write_json

#: Width of MobileNetV2 1.0's pooled feature.
FEATURE_DIM = 1280
#: Layer names of the paper's head, as in Table II.
HEAD_LAYERS = ("fc_relu", "dropout", "predictions")


def paper_head(cfg: PaperConfig = PAPER) -> list:
    """The paper's head (Table II): Dense(128, ReLU) -> Dropout(0.5) -> Dense(3, softmax).

    Initializers and the dropout carry the seed, so the same ``cfg`` builds the same head.

    Args:
        cfg: ``dense_units``, ``dropout`` and ``seed``.

    Returns:
        The three layers, named as in :data:`HEAD_LAYERS`.
    """
    seed = cfg.seed
    return [
        keras.layers.Dense(
            cfg.dense_units,
            activation="relu",
            name="fc_relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        ),
        keras.layers.Dropout(cfg.dropout, seed=seed, name="dropout"),
        keras.layers.Dense(
            len(CLASSES),
            activation="softmax",
            name="predictions",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
        ),
    ]


def linear_head(cfg: PaperConfig = PAPER) -> list:
    """A linear softmax head on the pooled feature (a linear probe trained with Adam).

    Args:
        cfg: ``seed``.

    Returns:
        One Dense(3, softmax) layer.
    """
    init = keras.initializers.GlorotUniform(seed=cfg.seed)
    return [
        keras.layers.Dense(
            len(CLASSES), activation="softmax", name="predictions", kernel_initializer=init
        )
    ]


#: The heads this project ships, by name.
HEADS: dict[str, Callable[[PaperConfig], list]] = {"paper": paper_head, "linear": linear_head}


def head_layers(head: str | Callable[[PaperConfig], list], cfg: PaperConfig) -> list:
    """The layers of a named head or of a head function.

    Args:
        head: a name in :data:`HEADS` or a function ``cfg -> list of layers``.
        cfg: the settings.

    Returns:
        Fresh Keras layers.
    """
    if callable(head):
        return list(head(cfg))
    if head not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)} or a function, got {head!r}")
    return HEADS[head](cfg)


def compile_model(model, cfg: PaperConfig = PAPER):
    """Compile as the paper: Adam(lr 1e-3), categorical cross-entropy, accuracy (II.C).

    Args:
        model: a Keras model.
        cfg: supplies ``learning_rate``.

    Returns:
        The same model, compiled.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_model(cfg: PaperConfig = PAPER, head="paper", weights="imagenet"):
    """The end-to-end model: frozen MobileNetV2, global average pooling, a head; compiled.

    Args:
        cfg: head and optimizer settings (default: the paper's).
        head: ``"paper"`` (Table II, the default), another name in :data:`HEADS`, or a
            function ``cfg -> list of layers``.
        weights: backbone weights, see :func:`~lungct_utils.features.build_base`.

    Returns:
        ``keras.Model`` named ``"mobilenetv2_<head>"``: input 224x224x3 in the range of
        ``cfg.preprocess``, output 3 softmax probabilities (benign, malignant, normal).
    """
    base = build_base(weights, cfg.image_size)
    x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling")(base.output)
    for layer in head_layers(head, cfg):
        x = layer(x)
    name = head if isinstance(head, str) else getattr(head, "__name__", "custom")
    return compile_model(keras.Model(inputs=base.input, outputs=x, name=f"mobilenetv2_{name}"), cfg)


def build_head(cfg: PaperConfig = PAPER, head="paper"):
    """A head alone, on pooled 1280-d backbone features, compiled.

    Args:
        cfg: head and optimizer settings.
        head: a name in :data:`HEADS` or a function ``cfg -> list of layers``.

    Returns:
        ``keras.Model`` named ``"<head>_head"``.
    """
    inputs = keras.Input((FEATURE_DIM,), name="features")
    x = inputs
    for layer in head_layers(head, cfg):
        x = layer(x)
    name = head if isinstance(head, str) else getattr(head, "__name__", "custom")
    return compile_model(keras.Model(inputs, x, name=f"{name}_head"), cfg)


def assemble(head, cfg: PaperConfig = PAPER, weights="imagenet"):
    """Join the frozen base and a trained head into one end-to-end Keras model.

    Args:
        head: a trained head model (from :func:`build_head` or any model on the 1280-d
            pooled feature).
        cfg: the settings it was trained with (``image_size``, ``learning_rate``).
        weights: backbone weights (the ones its features came from).

    Returns:
        An inference model ``image -> probabilities`` (not compiled: it is saved, exported
        and used, never trained again) whose pooled layer is ``global_average_pooling``; the
        head's layers keep their trained weights.
    """
    inference_head = keras.models.clone_model(head)  # the same layers, without an optimizer
    inference_head.set_weights(head.get_weights())
    base = build_base(weights, cfg.image_size)
    x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling")(base.output)
    return keras.Model(base.input, inference_head(x), name=f"mobilenetv2_{head.name}")


def save_model(model, path: Path) -> Path:
    """Save a Keras model atomically (``.keras`` format).

    Args:
        model: the model.
        path: target ``.keras`` file.

    Returns:
        ``path``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"save_model: path must end in .keras, got {str(path)!r}")
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def parameter_counts(model) -> dict[str, int]:
    """Total, trainable and frozen parameter counts of a Keras model.

    Args:
        model: a Keras model.

    Returns:
        ``{"total", "trainable", "non_trainable"}``.
    """

    def count(weights):
        return int(sum(int(np.prod(w.shape)) for w in weights))

    trainable = count(model.trainable_weights)
    frozen = count(model.non_trainable_weights)
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}


def save_run(name: str, head, cfg: PaperConfig, info: dict) -> Path:
    """Save a trained head as an end-to-end model ``models/<name>.keras`` plus ``<name>.json``.

    Args:
        name: the run name.
        head: the trained head.
        cfg: its settings.
        info: anything JSON-ready to keep beside it (history, protocol, ...).

    Returns:
        The ``.keras`` path.
    """
    path = save_model(assemble(head, cfg), config.model_path(name))
    save_model(head, config.MODELS / f"{name}_head.keras")
    write_json({**info, **provenance(cfg)}, config.MODELS / f"{name}.json")
    return path


def model_info(model_path: Path) -> dict:
    """The ``.json`` sidecar of a saved model (settings, recipe, provenance), ``{}`` if none.

    Args:
        model_path: the ``.keras`` file; its sidecar is the same path with ``.json``.

    Returns:
        The sidecar's content.

    Raises:
        DataError: the sidecar exists but is not valid JSON.
    """
    sidecar = Path(model_path).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        return json.loads(sidecar.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{sidecar}: not valid JSON ({exc})") from None


def load_run(name: str) -> tuple[object, dict]:
    """A saved head and its info (:func:`save_run`).

    Args:
        name: the run name.

    Returns:
        ``(head, info)``.
    """
    path = config.MODELS / f"{name}_head.keras"
    if not path.is_file():
        raise DataError(f"{path}: not trained yet; run notebooks/03_training.ipynb (make report)")
    return keras.models.load_model(path, compile=False), model_info(config.model_path(name))


def fingerprint(model_path: Path) -> str:
    """SHA-256 of a saved model's weights (a ``.keras`` file's bytes change at every save).

    Args:
        model_path: the ``.keras`` file.

    Returns:
        64 hex characters over the weights' shapes, dtypes and values, in layer order.

    Raises:
        DataError: the file is missing.
    """
    path = Path(model_path)
    if not path.is_file():
        raise DataError(f"{path}: model not found (make report trains it)")
    digest = hashlib.sha256()
    for w in keras.models.load_model(path, compile=False).get_weights():
        digest.update(f"{w.shape}{w.dtype}".encode())
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def copy_run(source: str, target: str) -> Path:
    """Copy a saved run (model, head, sidecar, input check) under another name, atomically.

    Args:
        source: the run to copy.
        target: its new name.

    Returns:
        The target's ``.keras`` path.
    """
    src = config.model_path(source)
    if not src.is_file():
        raise DataError(f"{src}: model not found (make report trains it)")
    for suffix in (".keras", "_head.keras", ".json", ".ood.npz"):
        origin, copy = config.MODELS / f"{source}{suffix}", config.MODELS / f"{target}{suffix}"
        if origin.is_file():
            with atomic_path(copy) as tmp:
                shutil.copyfile(origin, tmp)
        else:  # a part the source lacks must not stay paired with the copy
            copy.unlink(missing_ok=True)
    return config.model_path(target)
