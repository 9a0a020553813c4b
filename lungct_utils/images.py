"""Image decoding and the paper's preprocessing (section II.B).

Every image is decoded with Pillow, converted to RGB (the CT slices are 8-bit grayscale
JPEGs; RGB repeats the channel), resized to 224x224 with **bilinear** interpolation
(Pillow's, which antialiases when shrinking; the paper does not name one) and kept as
``uint8``; :func:`scale` then maps it to floats: mode ``"paper"`` divides by 255 to [0, 1]
as the paper did, mode ``"mobilenet_v2"`` gives Keras' ``preprocess_input`` range [-1, 1].
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from .config import CLASSES, PREPROCESS_MODES
from .io_utils import DataError

RESAMPLE = Image.Resampling.BILINEAR


@contextlib.contextmanager
def decoded(path: Path) -> Iterator[Image.Image]:
    """Open and fully decode an image; any failure becomes one ``DataError`` naming the file.

    The one place that maps Pillow's errors to messages (used by ``open_rgb``, the release
    scan and ``predict``).

    Args:
        path: the image file.

    Yields:
        The loaded Pillow image (closed afterwards).

    Raises:
        DataError: missing, empty, not an image, too large, or corrupt/truncated.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as img:
            img.load()
            yield img
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (Pillow cannot identify its format)") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc})") from None


def pixel_key(image: np.ndarray) -> str:
    """The key of an image's content: SHA-256 of its shape and uint8 pixels.

    ``augmented.csv`` records it per image (``pixel_sha256``) and the feature cache is keyed
    by it, so a changed image never reuses a stale feature.

    Args:
        image: uint8 ``(h, w, 3)``.

    Returns:
        64 hex characters.
    """
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def open_rgb(path: Path) -> Image.Image:
    """Decode an image file fully and convert it to RGB.

    Args:
        path: the image file.

    Returns:
        A loaded RGB Pillow image.

    Raises:
        DataError: the file is missing, empty, not an image, or corrupt.
    """
    with decoded(path) as img:
        return img.convert("RGB")


def min_max_uint8(values: np.ndarray) -> np.ndarray:
    """Values scaled from their minimum and maximum to 0-255 (all 0 when constant)."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(values)
    return scaled.round().astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB (16-bit min-max scaled, alpha on black).

    Args:
        img: a loaded image.

    Returns:
        RGB image.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return Image.fromarray(min_max_uint8(np.asarray(img)), mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def resize_rgb(img: Image.Image, size: int = 224) -> np.ndarray:
    """Resize an RGB image to ``size`` x ``size`` (bilinear) as a uint8 array.

    Args:
        img: an RGB Pillow image.
        size: the output side.

    Returns:
        ``uint8`` array of shape ``(size, size, 3)``.
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"resize_rgb: size must be a positive int, got {size!r}")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img.resize((size, size), RESAMPLE), dtype=np.uint8)


def pad_to_square(img: Image.Image) -> Image.Image:
    """Pad an image with black to a centred square (keeps the aspect ratio on resize).

    Args:
        img: an RGB Pillow image.

    Returns:
        A square RGB image (the input itself when already square).
    """
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def load_uint8(path: Path, size: int = 224, pad_square: bool = False) -> np.ndarray:
    """Decode, convert to RGB and resize one file (paper II.B, before scaling).

    Args:
        path: the image file.
        size: the output side.
        pad_square: pad to a square first (shape-shortcut ablation; the paper does not).

    Returns:
        ``uint8`` array ``(size, size, 3)``.
    """
    img = open_rgb(path)
    return resize_rgb(pad_to_square(img) if pad_square else img, size)


def body_box(grey: np.ndarray, threshold: float = 20, margin: float = 0.02) -> tuple[int, ...]:
    """The bounding box of the body on a CT slice, without the black border and the table.

    Pixels brighter than ``threshold`` are closed into blobs; blobs smaller than 0.2% of the
    image and the scanner table (a wide, flat blob starting in the lower 45%) are dropped;
    the box holds the rest, plus a margin.

    Args:
        grey: ``(h, w)`` grey levels 0-255.
        threshold: the grey level above which a pixel is tissue or bone.
        margin: the margin added on every side, as a fraction of the side.

    Returns:
        ``(left, top, right, bottom)`` (the whole image when nothing is found).
    """
    grey = np.asarray(grey)
    if grey.ndim != 2:
        raise ValueError(f"body_box: expected a 2-D grey image, got shape {grey.shape}")
    h, w = grey.shape
    labels, n = ndimage.label(ndimage.binary_closing(grey > threshold, iterations=3))
    keep = np.zeros(n + 1, bool)
    for k, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        bh, bw = rows.stop - rows.start, cols.stop - cols.start
        table = rows.start > 0.55 * h and bh < 0.3 * h and bw > 0.3 * w
        keep[k] = (labels[rows, cols] == k).sum() > 0.002 * h * w and not table
    ys, xs = np.nonzero(keep[labels])
    if not len(ys):
        return (0, 0, w, h)
    my, mx = int(margin * h), int(margin * w)
    return (
        max(int(xs.min()) - mx, 0),
        max(int(ys.min()) - my, 0),
        min(int(xs.max()) + mx + 1, w),
        min(int(ys.max()) + my + 1, h),
    )


def body_crop(img: Image.Image, size: int = 224) -> np.ndarray:
    """The body of a CT slice (:func:`body_box`), resized to ``size`` x ``size``.

    Args:
        img: an RGB image at its original size.
        size: the output side.

    Returns:
        uint8 ``(size, size, 3)``.
    """
    box = body_box(np.asarray(img.convert("L"), dtype=np.float32))
    return resize_rgb(img.crop(box), size)


def scale(images: np.ndarray, mode: str = "paper") -> np.ndarray:
    """Map uint8 pixels to the model's input range.

    Args:
        images: uint8 array (any leading shape, last axis channels).
        mode: ``"paper"`` (x / 255, paper II.B) or ``"mobilenet_v2"`` (x / 127.5 - 1,
            Keras' ``mobilenet_v2.preprocess_input``).

    Returns:
        float32 array of the same shape.
    """
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"scale: mode must be one of {PREPROCESS_MODES}, got {mode!r}")
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"scale: expected uint8 pixels, got dtype {images.dtype!s}")
    x = images.astype(np.float32)
    if mode == "paper":
        return x / np.float32(255.0)
    return x / np.float32(127.5) - np.float32(1.0)


def one_hot(labels: Sequence[str]) -> np.ndarray:
    """One-hot encode labels in the order of :data:`~lungct_utils.config.CLASSES`.

    Args:
        labels: ``"benign"``, ``"malignant"`` or ``"normal"`` each.

    Returns:
        float32 array ``(n, 3)``.
    """
    return np.eye(len(CLASSES), dtype=np.float32)[label_indices(labels)]


def label_indices(labels: Sequence[str]) -> np.ndarray:
    """Class indices of labels (benign 0, malignant 1, normal 2).

    Args:
        labels: label strings.

    Returns:
        int64 array.
    """
    index = {c: i for i, c in enumerate(CLASSES)}
    try:
        return np.array([index[label] for label in labels], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"unknown label {exc.args[0]!r}; expected one of {CLASSES}") from None
