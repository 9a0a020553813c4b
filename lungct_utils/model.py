"""The paper's model (section II.C, Table II) and its parts.

``build_model()`` is the paper's network exactly::

    base = MobileNetV2(include_top=False, weights="imagenet", input_shape=(224, 224, 3))
    base.trainable = False
    x = GlobalAveragePooling2D()(base.output)
    x = Dense(128, activation="relu")(x)
    x = Dropout(0.5)(x)
    predictions = Dense(3, activation="softmax")(x)
    model = Model(inputs=base.input, outputs=predictions)
    model.compile(Adam(1e-3), "categorical_crossentropy", ["accuracy"])

Because the base is frozen (and a frozen BatchNorm runs in inference mode), each image's
pooled 1280-d feature is fixed; :func:`build_head` is the same head on those features, so
training it on cached features is training the paper's model (tests prove it).
"""

from __future__ import annotations

from pathlib import Path

from .config import CLASSES, PAPER, PaperConfig

#: Layer names of the head, as in Table II.
HEAD_LAYERS = ("fc_relu", "dropout", "predictions")
FEATURE_DIM = 1280


def _keras():
    import keras

    return keras


def build_base(weights: str | Path | None = "imagenet", image_size: int = 224, pooling=None):
    """MobileNetV2 1.0 without its classifier, frozen (paper II.C).

    Args:
        weights: ``"imagenet"`` (from ``$KERAS_HOME/models``), a weights-file path, or None
            (random; only for shape tests: its features are near-constant).
        image_size: input side.
        pooling: None for the 7x7x1280 map, ``"avg"`` for the pooled 1280-d feature.

    Returns:
        A Keras model with ``trainable = False``.
    """
    keras = _keras()
    weights = str(weights) if isinstance(weights, Path) else weights
    base = keras.applications.MobileNetV2(
        include_top=False,
        weights=weights,
        input_shape=(image_size, image_size, 3),
        pooling=pooling,
    )
    base.trainable = False  # all base layers frozen (paper II.C)
    return base


def _head_layers(cfg: PaperConfig):
    keras = _keras()
    seed = cfg.seed  # explicit seeds: the same head init and dropout masks wherever it is built
    return [
        keras.layers.Dense(
            cfg.dense_units,
            activation="relu",
            name="fc_relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        ),  # Table II: Dense(128, ReLU)
        keras.layers.Dropout(cfg.dropout, seed=seed, name="dropout"),  # Table II: Dropout(0.5)
        keras.layers.Dense(
            len(CLASSES),
            activation="softmax",
            name="predictions",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
        ),  # Table II: Dense(3, softmax)
    ]


def compile_model(model, cfg: PaperConfig = PAPER):
    """Compile as the paper: Adam(lr 1e-3), categorical cross-entropy, accuracy (II.C).

    Args:
        model: a Keras model.
        cfg: supplies ``learning_rate``.

    Returns:
        The same model, compiled.
    """
    keras = _keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_model(cfg: PaperConfig = PAPER, weights: str | Path | None = "imagenet"):
    """The paper's end-to-end model (Table II), compiled.

    Args:
        cfg: head and optimizer settings (default: the paper's).
        weights: backbone weights, see :func:`build_base`.

    Returns:
        ``keras.Model`` named ``"mobilenetv2_paper"``: input 224x224x3 in the
        preprocessing range of ``cfg.preprocess``, output 3 softmax probabilities in the
        order benign, malignant, normal.
    """
    keras = _keras()
    base = build_base(weights, cfg.image_size)
    x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling")(base.output)
    for layer in _head_layers(cfg):
        x = layer(x)
    model = keras.Model(inputs=base.input, outputs=x, name="mobilenetv2_paper")
    return compile_model(model, cfg)


def build_head(cfg: PaperConfig = PAPER):
    """The paper's head alone, on pooled 1280-d backbone features, compiled.

    Args:
        cfg: head and optimizer settings.

    Returns:
        ``keras.Model`` named ``"paper_head"`` with the layers of :data:`HEAD_LAYERS`.
    """
    keras = _keras()
    inputs = keras.Input((FEATURE_DIM,), name="features")
    x = inputs
    for layer in _head_layers(cfg):
        x = layer(x)
    return compile_model(keras.Model(inputs, x, name="paper_head"), cfg)


def copy_head_weights(source, target) -> None:
    """Copy the head's weights between a head and an end-to-end model (by layer name).

    Args:
        source: a model holding the layers of :data:`HEAD_LAYERS`.
        target: another such model.
    """
    for name in HEAD_LAYERS:
        target.get_layer(name).set_weights(source.get_layer(name).get_weights())


def assemble(head, cfg: PaperConfig = PAPER, weights: str | Path | None = "imagenet"):
    """Join the frozen base and a trained head into one end-to-end Keras model.

    Args:
        head: a trained :func:`build_head` model.
        cfg: the settings it was trained with.
        weights: backbone weights (the ones its features came from).

    Returns:
        The :func:`build_model` network carrying the head's weights.
    """
    model = build_model(cfg, weights)
    copy_head_weights(head, model)
    model.optimizer.build(model.trainable_variables)  # saved and reloaded without warnings
    return model


def save_model(model, path: Path) -> Path:
    """Save a Keras model atomically (``.keras`` format).

    Args:
        model: the model.
        path: target ``.keras`` file.

    Returns:
        ``path``.
    """
    from .io_utils import atomic_path

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"save_model: path must end in .keras, got {str(path)!r}")
    with atomic_path(path) as tmp:
        model.save(tmp.with_suffix(".keras"))
        tmp.with_suffix(".keras").replace(tmp)
    return path


def parameter_counts(model) -> dict[str, int]:
    """Total, trainable and frozen parameter counts of a Keras model.

    Args:
        model: a Keras model.

    Returns:
        ``{"total", "trainable", "non_trainable"}``.
    """
    import numpy as np

    def count(weights):
        return int(sum(int(np.prod(w.shape)) for w in weights))

    trainable = count(model.trainable_weights)
    frozen = count(model.non_trainable_weights)
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}
