"""Grad-CAM (Selvaraju et al. 2017) from MobileNetV2's last convolutional block.

The class score's gradient with respect to the 7x7x1280 output of ``out_relu`` (the last
block of the frozen base) weights its channels; the positive part of the weighted sum,
upsampled to the image, shows where the evidence for the class lies.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from matplotlib import colormaps
from PIL import Image

LAYER = "out_relu"


def grad_model(model, layer: str = LAYER):
    """A model returning the conv map and the class probabilities.

    Args:
        model: the end-to-end paper model.
        layer: the convolutional layer to explain.

    Returns:
        A Keras model ``x -> [conv map, probabilities]``.
    """
    try:
        conv = model.get_layer(layer).output
    except ValueError:
        raise ValueError(f"gradcam: model has no layer {layer!r}") from None
    return keras.Model(model.inputs, [conv, model.output])


def heatmap(gmodel, x: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """The Grad-CAM map of one preprocessed image.

    Args:
        gmodel: from :func:`grad_model`.
        x: float32 ``(s, s, 3)`` in the model's input range.
        class_index: the class to explain (default: the predicted one).

    Returns:
        float32 ``(h, w)`` map of the conv grid, scaled to [0, 1].
    """
    inputs = tf.convert_to_tensor(x[None].astype(np.float32))
    with tf.GradientTape() as tape:
        conv, probs = gmodel(inputs, training=False)
        idx = int(tf.argmax(probs[0])) if class_index is None else int(class_index)
        target = probs[:, idx]
    grads = tape.gradient(target, conv)
    weights = tf.reduce_mean(grads, axis=(1, 2))
    cam = tf.nn.relu(tf.reduce_sum(conv * weights[:, None, None, :], axis=-1))[0].numpy()
    top = cam.max()
    return (cam / top if top > 0 else cam).astype(np.float32)


def upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a map to ``size`` (width, height) bilinearly.

    Args:
        cam: float map in [0, 1].
        size: target (width, height).

    Returns:
        float32 ``(height, width)``.
    """
    img = Image.fromarray(cam.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def overlay(image: Image.Image, cam: np.ndarray, alpha: float = 0.4) -> Image.Image:
    """Blend a jet-coloured map over an image at the image's size.

    Args:
        image: the original RGB image (any size).
        cam: the Grad-CAM map.
        alpha: weight of the map.

    Returns:
        An RGB image of ``image.size``.
    """
    big = upsample(cam, image.size)
    colour = (colormaps["jet"](np.clip(big, 0, 1))[..., :3] * 255).astype(np.float32)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    return Image.fromarray(np.clip((1 - alpha) * base + alpha * colour, 0, 255).astype(np.uint8))
