"""A corpus of images that are not lung CT slices, to test the out-of-distribution check.

The corpus is what the OOD check of ``predict`` must flag: photographs, other imaging
modalities, digits, charts, text, gradients, patterns, and two kinds made from real CT
slices that are still not slices as a user would give them (an inverted slice, and a heavy
off-centre crop). It is built only from data shipped inside installed packages or drawn by
code, so it needs no download:

* scikit-image (``skimage.data``): astronaut, chelsea, coffee, rocket, hubble_deep_field,
  immunohistochemistry, retina, colorwheel, camera, moon, coins, clock, brick, grass,
  gravel, stereo_motorcycle, cell, microaneurysms, shepp_logan_phantom (and its sinogram,
  by ``skimage.transform.radon``), page, text, checkerboard, binary_blobs;
* scikit-learn (``sklearn.datasets``): the sample images china.jpg and flower.jpg, and the
  8x8 handwritten digits;
* matplotlib (``cbook.get_sample_data``): grace_hopper.jpg, Minduka_Present_Blue_Pack.png,
  the MRI slice s1045.ima.gz, the elevation maps jacksboro_fault_dem.npz and topobathy.npz;
  and charts drawn with matplotlib's Agg canvas;
* Pillow (``ImageDraw``, default font) and NumPy/SciPy: text pages, gradients, patterns;
* the caller's CT slices, for the inverted and cropped items.

**Parts.** Each kind lists its items in a fixed order; the item at position ``p`` (0-based)
is in the ``"design"`` part when ``p % 3 == 0`` and in the ``"held-out"`` part otherwise.
Thresholds and rules may be tuned on the design part; the held-out part (about two thirds)
is looked at only to report how well they work. A grey photograph is never a grey copy of an
image used as a colour photograph, so the two parts share no picture.

Every image is 8-bit RGB. Images with a side under 200 pixels are upscaled (bilinear) so the
shorter side is 256, and images with a side over 700 are downscaled so the longer side is
700: the corpus tests more than the size rule. Randomised images (charts, tables, terminal
text, blobs, noise, shapes) draw from ``numpy.random.default_rng([seed, crc32(name)])``, so
the corpus is identical for the same inputs and seed.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO

import matplotlib
import numpy as np
import pandas as pd
import skimage.data
from matplotlib import cbook
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LightSource
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter
from skimage.transform import radon, rescale
from sklearn.datasets import load_digits, load_sample_image

PARTS = ("design", "held-out")
KINDS = (
    "colour photograph",
    "grey photograph",
    "microscopy/astronomy/other modality",
    "digits",
    "chart",
    "text",
    "gradient",
    "pattern",
    "inverted CT",
    "cropped CT",
)
#: Within a kind, the item at position p is in the design part when p % DESIGN_EVERY == 0.
DESIGN_EVERY = 3
#: Fewest CT slices ``non_ct_corpus`` accepts (it uses ten, each once).
MIN_CT_IMAGES = 12
#: Smallest CT side accepted (a 30% window of it still has 19 pixels).
MIN_CT_SIDE = 64
#: Side of the inverted and cropped CT items (the model's input size).
CT_SIDE = 224
#: Shorter sides below SMALL_SIDE are upscaled to UPSCALED_SIDE; longer sides above
#: LARGE_SIDE are downscaled to it.
SMALL_SIDE, UPSCALED_SIDE, LARGE_SIDE = 200, 256, 700
#: Crop windows of the cropped CT items: (share of the side, centre x, centre y).
CROP_WINDOWS = (
    (0.30, 0.30, 0.35),
    (0.35, 0.70, 0.40),
    (0.40, 0.35, 0.68),
    (0.45, 0.66, 0.64),
    (0.38, 0.50, 0.27),
)

Recipe = tuple[str, Callable[[np.random.Generator], Image.Image]]


@dataclass(frozen=True)
class Item:
    """One image of the corpus.

    Attributes:
        name: unique, ``"<kind>: <what it is>"``.
        kind: one of :data:`KINDS`.
        part: one of :data:`PARTS`.
        image: 8-bit RGB image.
    """

    name: str
    kind: str
    part: str
    image: Image.Image


# ----------------------------------------------------------------------------- helpers


def _static(
    make: Callable[..., Image.Image], *args
) -> Callable[[np.random.Generator], Image.Image]:
    """A recipe function that ignores the random generator."""
    return lambda _rng: make(*args)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric array to 0-255 uint8 (a constant array becomes 0)."""
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min()
    if span == 0:
        return np.zeros(values.shape, np.uint8)
    return np.round((values - values.min()) / span * 255).astype(np.uint8)


def _rgb(array: np.ndarray) -> Image.Image:
    """An RGB image from a uint8 ``(h, w)`` grey or ``(h, w, 3|4)`` colour array."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = _to_uint8(array)
    if array.ndim == 2:
        return Image.fromarray(array, mode="L").convert("RGB")
    if array.shape[2] == 4:
        return _on_white(Image.fromarray(array, mode="RGBA"))
    return Image.fromarray(array[..., :3], mode="RGB")


def _on_white(img: Image.Image) -> Image.Image:
    """Composite an image with transparency on white, as RGB."""
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _grey(img: Image.Image) -> Image.Image:
    """The grey (L) version of an image, as RGB."""
    return img.convert("L").convert("RGB")


def _fit_size(img: Image.Image) -> Image.Image:
    """Upscale small images (shorter side 256) and downscale large ones (longer side 700)."""
    w, h = img.size
    factor = 1.0
    if min(w, h) < SMALL_SIDE:
        factor = UPSCALED_SIDE / min(w, h)
    elif max(w, h) > LARGE_SIDE:
        factor = LARGE_SIDE / max(w, h)
    if factor == 1.0:
        return img
    return img.resize((round(w * factor), round(h * factor)), Image.Resampling.BILINEAR)


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: ``(x, y)`` arrays of shape ``(height, width)``."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return (x + 0.5) / width, (y + 0.5) / height


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font at a size."""
    return ImageFont.load_default(size=size)


# ----------------------------------------------------------------------------- sources


def _skimage(name: str) -> Image.Image:
    """A ``skimage.data`` image by name."""
    return _rgb(getattr(skimage.data, name)())


def _sklearn_photo(name: str) -> Image.Image:
    """One of scikit-learn's sample photographs (``china.jpg``, ``flower.jpg``)."""
    return _rgb(load_sample_image(name))


def _mpl_sample(name: str) -> Image.Image:
    """An image file of matplotlib's sample data, as RGB (transparency on white)."""
    with Image.open(cbook.get_sample_data(name, asfileobj=False)) as img:
        return _on_white(img)


def _motorcycle_grey() -> Image.Image:
    """The left view of scikit-image's stereo motorcycle, in grey."""
    left, _right, _disparity = skimage.data.stereo_motorcycle()
    return _grey(_rgb(left))


def _mri_slice() -> Image.Image:
    """matplotlib's sample MRI head slice (256x256, 16-bit raw) as 8-bit RGB."""
    with gzip.open(cbook.get_sample_data("s1045.ima.gz", asfileobj=False)) as handle:
        raw = np.frombuffer(handle.read(), np.uint16).reshape(256, 256)
    return _rgb(raw)


def _elevation(name: str, key: str) -> np.ndarray:
    """An elevation grid from a matplotlib sample ``.npz``."""
    with np.load(cbook.get_sample_data(name, asfileobj=False)) as data:
        return np.asarray(data[key], dtype=np.float64)


def _hillshade() -> Image.Image:
    """The Jacksboro fault elevation map rendered as a shaded relief."""
    dem = _elevation("jacksboro_fault_dem.npz", "elevation")
    return _rgb(LightSource(azdeg=315, altdeg=45).hillshade(dem, vert_exag=0.05))


def _sinogram() -> Image.Image:
    """The Radon transform (raw CT projections) of the Shepp-Logan head phantom."""
    phantom = rescale(skimage.data.shepp_logan_phantom(), 0.5)
    return _rgb(radon(phantom, theta=np.linspace(0.0, 180.0, 256, endpoint=False)))


def _digit(digit: int, resample: Image.Resampling, ink_dark: bool) -> Image.Image:
    """The first sklearn 8x8 image of a digit, upscaled to 256x256."""
    data = load_digits()
    grey = _to_uint8(data.images[int(np.flatnonzero(data.target == digit)[0])])
    grey = 255 - grey if ink_dark else grey
    return _rgb(grey).resize((256, 256), resample)


def _digit_montage() -> Image.Image:
    """A 4x4 montage of sklearn digits (the first 16 images), upscaled bilinearly."""
    images = load_digits().images[:16]
    montage = np.block([[images[4 * r + c] for c in range(4)] for r in range(4)])
    return _rgb(255 - _to_uint8(montage)).resize((320, 320), Image.Resampling.BILINEAR)


# ----------------------------------------------------------------------------- charts


def _render(draw: Callable, rng: np.random.Generator, style: str = "default") -> Image.Image:
    """Render a matplotlib chart on the Agg canvas to PNG in memory.

    Args:
        draw: ``draw(ax, rng)`` plots on the axes.
        rng: the item's random generator.
        style: a matplotlib style, applied over the defaults (the user's rc is ignored).

    Returns:
        The rendered chart, RGB.
    """
    with mpl_style.context(["default", style]):
        fig = Figure(figsize=(5.0, 4.0), dpi=90)
        FigureCanvasAgg(fig)
        draw(fig.add_subplot(), rng)
        fig.tight_layout()
        buffer = BytesIO()
        fig.savefig(buffer, format="png")
    fig.clear()
    buffer.seek(0)
    with Image.open(buffer) as img:
        return img.convert("RGB")


def _bar(ax, rng: np.random.Generator) -> None:
    ax.bar(list("ABCDEF"), rng.uniform(2, 10, 6), color="tab:blue")
    ax.set(title="Sales by region", ylabel="units")


def _line(ax, rng: np.random.Generator) -> None:
    t = np.arange(60)
    for label in ("train", "validation"):
        ax.plot(t, np.cumsum(rng.normal(0, 1, 60)), label=label)
    ax.set(title="Loss", xlabel="epoch")
    ax.legend()


def _scatter(ax, rng: np.random.Generator) -> None:
    x = rng.normal(0, 1, 150)
    ax.scatter(x, 0.6 * x + rng.normal(0, 0.5, 150), c=rng.uniform(0, 1, 150), cmap="viridis")
    ax.set(title="Scatter", xlabel="x", ylabel="y")


def _pie(ax, rng: np.random.Generator) -> None:
    ax.pie(rng.uniform(1, 5, 5), labels=["north", "east", "south", "west", "other"])
    ax.set(title="Share")


def _histogram(ax, rng: np.random.Generator) -> None:
    ax.hist(rng.normal(0, 1, 800), bins=30, color="tab:orange", edgecolor="black")
    ax.set(title="Histogram", xlabel="value", ylabel="count")


def _box(ax, rng: np.random.Generator) -> None:
    ax.boxplot([rng.normal(m, 1, 80) for m in (0, 1, 0.5, 2)], tick_labels=list("ABCD"))
    ax.set(title="Box plot")


def _heatmap(ax, rng: np.random.Generator) -> None:
    shown = ax.imshow(rng.uniform(0, 1, (12, 16)), cmap="magma")
    ax.figure.colorbar(shown, ax=ax)
    ax.set(title="Heatmap")


def _contour(ax, rng: np.random.Generator) -> None:
    x, y = np.meshgrid(np.linspace(-3, 3, 120), np.linspace(-3, 3, 120))
    cx, cy = rng.uniform(-1, 1, 2)
    z = np.exp(-((x - cx) ** 2) - (y - cy) ** 2) - 0.7 * np.exp(-((x + cx) ** 2) - (y + 1) ** 2)
    ax.contourf(x, y, z, levels=12, cmap="coolwarm")
    ax.clabel(ax.contour(x, y, z, levels=12, colors="black", linewidths=0.5), fontsize=7)
    ax.set(title="Contour plot")


def _bars_and_line(ax, rng: np.random.Generator) -> None:
    ax.bar(np.arange(8), rng.uniform(1, 6, 8))
    ax.plot(np.arange(8), rng.uniform(1, 6, 8), marker="o", color="C1")
    ax.set(title="Bars and a line", xlabel="week")


# ----------------------------------------------------------------------------- text

_PARAGRAPH = (
    "The committee met on Tuesday to review the quarterly figures. Revenue rose in three of "
    "the four regions, while costs stayed close to the budget. The board asked for a short "
    "note on the delays in the northern warehouse and for a plan to reduce the backlog before "
    "the end of the year. Members agreed to meet again in six weeks."
)
_CODE = '''def moving_average(values, window=3):
    """Mean of each run of `window` values."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window!r}")
    out = []
    for i in range(len(values) - window + 1):
        out.append(sum(values[i : i + window]) / window)
    return out


if __name__ == "__main__":
    print(moving_average([1, 2, 3, 4, 5]))'''


def _wrap(text: str, width: int) -> list[str]:
    """Split text into lines of at most ``width`` characters, at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines


def _page() -> Image.Image:
    """A page of black text on white: a title and wrapped paragraphs."""
    img = Image.new("RGB", (480, 640), "white")
    draw = ImageDraw.Draw(img)
    draw.text((40, 36), "Minutes of the meeting", fill="black", font=_font(26))
    y = 90
    for _ in range(3):
        for line in _wrap(_PARAGRAPH, 52):
            draw.text((40, y), line, fill="black", font=_font(15))
            y += 21
        y += 14
    return img


def _terminal(rng: np.random.Generator) -> Image.Image:
    """A terminal window: white and green log lines on black."""
    img = Image.new("RGB", (640, 400), "black")
    draw = ImageDraw.Draw(img)
    for k in range(20):
        step, loss = k * 50, rng.uniform(0.05, 2.0)
        colour = (120, 230, 120) if k % 5 == 4 else (235, 235, 235)
        text = f"$ step {step:5d}  loss {loss:.4f}  lr 1e-3  [{'#' * (k % 12):<12}]"
        draw.text((12, 8 + 19 * k), text, fill=colour, font=_font(14))
    return img


def _code_listing() -> Image.Image:
    """A code listing with line numbers, dark text on a light background."""
    img = Image.new("RGB", (600, 380), (250, 250, 244))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 34, 380), fill=(225, 225, 225))
    for k, line in enumerate(_CODE.splitlines()):
        draw.text((6, 12 + 26 * k), f"{k + 1:2d}", fill=(120, 120, 120), font=_font(15))
        draw.text((44, 12 + 26 * k), line, fill=(20, 20, 110), font=_font(15))
    return img


def _table(rng: np.random.Generator) -> Image.Image:
    """A ruled table of numbers with a header row."""
    columns, rows, cell_w, cell_h = 5, 12, 104, 30
    img = Image.new("RGB", (columns * cell_w + 20, (rows + 1) * cell_h + 20), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 10, 10 + columns * cell_w, 10 + cell_h), fill=(210, 220, 240))
    for c, head in enumerate(("id", "age", "weight", "score", "group")):
        draw.text((18 + c * cell_w, 16), head, fill="black", font=_font(16))
    for r in range(1, rows + 1):
        values = (r, rng.integers(18, 90), rng.uniform(50, 110), rng.uniform(0, 1), "ABC"[r % 3])
        texts = (f"{values[0]}", f"{values[1]}", f"{values[2]:.1f}", f"{values[3]:.3f}", values[4])
        for c, text in enumerate(texts):
            draw.text((18 + c * cell_w, 16 + r * cell_h), text, fill="black", font=_font(15))
    for r in range(rows + 2):
        draw.line((10, 10 + r * cell_h, 10 + columns * cell_w, 10 + r * cell_h), fill="black")
    for c in range(columns + 1):
        x = 10 + c * cell_w
        draw.line((x, 10, x, 10 + (rows + 1) * cell_h), fill="black")
    return img


# ----------------------------------------------------------------------------- gradients


def _ramp(shape: str, width: int, height: int) -> np.ndarray:
    """A 0-1 ramp: horizontal, vertical, diagonal, radial or inverted radial."""
    x, y = _grid(width, height)
    radius = np.hypot(x - 0.5, y - 0.5) / np.hypot(0.5, 0.5)
    ramps = {
        "horizontal": x,
        "vertical": y,
        "diagonal": (x + y) / 2,
        "radial": 1 - radius,
        "inverted radial": radius,
    }
    return ramps[shape]


def _grey_gradient(shape: str, width: int, height: int) -> Image.Image:
    """A grey gradient."""
    return _rgb(np.round(_ramp(shape, width, height) * 255).astype(np.uint8))


def _colour_gradient(shape: str, width: int, height: int, cmap: str) -> Image.Image:
    """A colour gradient through a matplotlib colormap."""
    rgba = matplotlib.colormaps[cmap](_ramp(shape, width, height))
    return _rgb(np.round(rgba[..., :3] * 255).astype(np.uint8))


# ----------------------------------------------------------------------------- patterns


def _checkerboard(side: int, square: int) -> Image.Image:
    """A black and white checkerboard."""
    y, x = np.mgrid[0:side, 0:side]
    return _rgb((((x // square) + (y // square)) % 2 * 255).astype(np.uint8))


def _stripes(width: int, height: int, period: int) -> Image.Image:
    """Vertical colour stripes (red, white, blue)."""
    colours = np.array([[200, 30, 40], [245, 245, 245], [30, 60, 190]], np.uint8)
    x = np.arange(width) // period % 3
    return _rgb(np.broadcast_to(colours[x], (height, width, 3)).copy())


def _dots(rng: np.random.Generator) -> Image.Image:
    """A grid of dark dots, slightly jittered, on a light background."""
    img = Image.new("RGB", (384, 384), (240, 236, 220))
    draw = ImageDraw.Draw(img)
    for cy in range(24, 384, 48):
        for cx in range(24, 384, 48):
            dx, dy = rng.uniform(-4, 4, 2)
            draw.ellipse(
                (cx + dx - 10, cy + dy - 10, cx + dx + 10, cy + dy + 10), fill=(40, 40, 90)
            )
    return img


def _rings(side: int, period: float) -> Image.Image:
    """Concentric grey rings (a cosine of the distance from the centre)."""
    x, y = _grid(side, side)
    return _rgb(np.round(127.5 + 127.5 * np.cos(np.hypot(x - 0.5, y - 0.5) * side / period)))


def _blobs(rng: np.random.Generator) -> Image.Image:
    """scikit-image binary blobs."""
    mask = skimage.data.binary_blobs(320, blob_size_fraction=0.08, rng=int(rng.integers(2**31)))
    return _rgb(mask.astype(np.uint8) * 255)


def _smoothed_noise(rng: np.random.Generator) -> Image.Image:
    """Gaussian-filtered white noise, scaled to 0-255."""
    return _rgb(gaussian_filter(rng.normal(0, 1, (320, 320)), sigma=6))


def _disc(side: int, radius: float) -> Image.Image:
    """One bright disc on black."""
    x, y = _grid(side, side)
    return _rgb(np.where(np.hypot(x - 0.5, y - 0.5) < radius, 235, 0).astype(np.uint8))


def _shapes(rng: np.random.Generator) -> Image.Image:
    """Coloured rectangles, ellipses and triangles at random places on white."""
    img = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(img)
    for k in range(9):
        x0, y0 = rng.uniform(0, 320), rng.uniform(0, 220)
        w, h = rng.uniform(30, 90, 2)
        colour = tuple(int(v) for v in rng.integers(0, 230, 3))
        if k % 3 == 0:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        elif k % 3 == 1:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            draw.polygon([(x0, y0 + h), (x0 + w, y0 + h), (x0 + w / 2, y0)], fill=colour)
    return img


# ----------------------------------------------------------------------------- CT-derived


def _ct_picks(n: int) -> list[int]:
    """Ten distinct indices spread over ``n >= 10`` CT slices."""
    return [k * (n - 1) // 9 for k in range(10)]


def _inverted_ct(ct: np.ndarray) -> Image.Image:
    """255 minus a CT slice, at :data:`CT_SIDE` (bilinear when resized)."""
    img = Image.fromarray(255 - ct, mode="RGB")
    return img.resize((CT_SIDE, CT_SIDE), Image.Resampling.BILINEAR)


def _crop_box(side: int, share: float, cx: float, cy: float) -> tuple[int, int, int, int]:
    """A square window of ``share`` of the side centred near ``(cx, cy)``, inside the image."""
    w = max(1, round(share * side))
    x0 = min(max(round(cx * side - w / 2), 0), side - w)
    y0 = min(max(round(cy * side - w / 2), 0), side - w)
    return x0, y0, x0 + w, y0 + w


def _cropped_ct(ct: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """A window of a CT slice resized to :data:`CT_SIDE` (bilinear)."""
    img = Image.fromarray(ct, mode="RGB").crop(box)
    return img.resize((CT_SIDE, CT_SIDE), Image.Resampling.BILINEAR)


# ----------------------------------------------------------------------------- recipes


def _colour_photo_recipes() -> list[Recipe]:
    """The colour photographs: scikit-image, scikit-learn and matplotlib samples.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    colour = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")
    colour += ("immunohistochemistry", "retina", "colorwheel")
    return [(f"skimage {n}", _static(_skimage, n)) for n in colour] + [
        ("sklearn china.jpg", _static(_sklearn_photo, "china.jpg")),
        ("sklearn flower.jpg", _static(_sklearn_photo, "flower.jpg")),
        ("matplotlib grace_hopper.jpg", _static(_mpl_sample, "grace_hopper.jpg")),
    ]


def _grey_photo_recipes() -> list[Recipe]:
    """The grey photographs (none is a grey copy of a colour photograph's picture).

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    grey = ("camera", "moon", "coins", "clock", "brick", "grass", "gravel")
    return [(f"skimage {n}", _static(_skimage, n)) for n in grey] + [
        ("skimage stereo_motorcycle left, grey", _static(_motorcycle_grey)),
        (
            "matplotlib Minduka_Present_Blue_Pack.png, grey",
            _static(lambda: _grey(_mpl_sample("Minduka_Present_Blue_Pack.png"))),
        ),
    ]


def _modality_recipes() -> list[Recipe]:
    """Microscopy, MRI, phantoms, elevation maps and a sinogram: other imaging.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("skimage cell (microscopy)", _static(_skimage, "cell")),
        ("matplotlib s1045.ima MRI head slice", _static(_mri_slice)),
        (
            "skimage shepp_logan_phantom (head phantom)",
            _static(_skimage, "shepp_logan_phantom"),
        ),
        (
            "matplotlib jacksboro_fault_dem elevation, grey",
            _static(lambda: _rgb(_elevation("jacksboro_fault_dem.npz", "elevation"))),
        ),
        ("skimage microaneurysms (retinal angiography)", _static(_skimage, "microaneurysms")),
        (
            "matplotlib topobathy elevation, grey",
            _static(lambda: _rgb(_elevation("topobathy.npz", "topo"))),
        ),
        ("matplotlib jacksboro_fault_dem shaded relief", _static(_hillshade)),
        ("sinogram of the Shepp-Logan phantom", _static(_sinogram)),
    ]


def _digit_recipes() -> list[Recipe]:
    """Upscaled sklearn 8x8 digits, single and as a montage.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    nearest, bilinear = Image.Resampling.NEAREST, Image.Resampling.BILINEAR
    return [
        ("sklearn digit 0, nearest, white on black", _static(_digit, 0, nearest, False)),
        ("sklearn digit 1, bilinear, white on black", _static(_digit, 1, bilinear, False)),
        ("sklearn digit 2, nearest, black on white", _static(_digit, 2, nearest, True)),
        ("sklearn digit 3, bilinear, black on white", _static(_digit, 3, bilinear, True)),
        ("sklearn digit 4, nearest, white on black", _static(_digit, 4, nearest, False)),
        ("sklearn digits 4x4 montage, bilinear", _static(_digit_montage)),
    ]


def _chart_recipes() -> list[Recipe]:
    """Randomised matplotlib charts, two of them in other styles.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("matplotlib bar chart", lambda rng: _render(_bar, rng)),
        ("matplotlib line chart", lambda rng: _render(_line, rng)),
        ("matplotlib scatter plot", lambda rng: _render(_scatter, rng)),
        ("matplotlib pie chart", lambda rng: _render(_pie, rng)),
        ("matplotlib histogram", lambda rng: _render(_histogram, rng)),
        ("matplotlib box plot", lambda rng: _render(_box, rng)),
        ("matplotlib heatmap (magma)", lambda rng: _render(_heatmap, rng)),
        ("matplotlib contour plot", lambda rng: _render(_contour, rng)),
        (
            "matplotlib dark_background chart",
            lambda rng: _render(_bars_and_line, rng, "dark_background"),
        ),
        ("matplotlib grayscale chart", lambda rng: _render(_bars_and_line, rng, "grayscale")),
    ]


def _text_recipes() -> list[Recipe]:
    """Pages, a terminal, code and a table drawn with Pillow, and scikit-image's text images.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("PIL page, black on white", _static(_page)),
        ("PIL terminal, white on black", _terminal),
        ("PIL code listing", _static(_code_listing)),
        ("PIL table", _table),
        ("skimage page", _static(_skimage, "page")),
        ("skimage text", _static(_skimage, "text")),
    ]


def _gradient_recipes() -> list[Recipe]:
    """Grey gradients, then colour gradients through matplotlib colormaps.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("horizontal, grey", _static(_grey_gradient, "horizontal", 320, 256)),
        ("vertical, grey", _static(_grey_gradient, "vertical", 256, 320)),
        ("diagonal, grey", _static(_grey_gradient, "diagonal", 384, 384)),
        ("radial, grey", _static(_grey_gradient, "radial", 300, 300)),
        ("inverted radial, grey", _static(_grey_gradient, "inverted radial", 256, 256)),
        ("horizontal, viridis", _static(_colour_gradient, "horizontal", 400, 300, "viridis")),
        ("vertical, plasma", _static(_colour_gradient, "vertical", 256, 256, "plasma")),
        ("diagonal, rainbow", _static(_colour_gradient, "diagonal", 320, 320, "rainbow")),
        ("radial, autumn", _static(_colour_gradient, "radial", 384, 288, "autumn")),
        (
            "inverted radial, cool",
            _static(_colour_gradient, "inverted radial", 256, 256, "cool"),
        ),
    ]


def _pattern_recipes() -> list[Recipe]:
    """Checkerboards, stripes, dots, rings, blobs, noise, a disc and shapes.

    Returns:
        ``(label, make)`` recipes in their fixed order.
    """
    return [
        ("checkerboard, 32 px squares", _static(_checkerboard, 256, 32)),
        ("colour stripes", _static(_stripes, 360, 270, 20)),
        ("jittered dots", _dots),
        ("concentric rings", _static(_rings, 320, 6.0)),
        ("skimage binary_blobs", _blobs),
        ("skimage checkerboard", _static(_skimage, "checkerboard")),
        ("smoothed noise", _smoothed_noise),
        ("single bright disc", _static(_disc, 256, 0.3)),
        ("geometric shapes", _shapes),
    ]


def _ct_recipes(ct_images: np.ndarray) -> tuple[list[Recipe], list[Recipe]]:
    """The inverted and the cropped CT items, from ten distinct slices (each used once).

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices, already checked.

    Returns:
        ``(inverted, cropped)``: ``(label, make)`` recipes in their fixed order.
    """
    picks = _ct_picks(len(ct_images))
    side = ct_images.shape[1]
    boxes = [_crop_box(side, *window) for window in CROP_WINDOWS]
    inverted = [(f"ct_images[{i}]", _static(_inverted_ct, ct_images[i])) for i in picks[0::2]]
    cropped = [
        (f"ct_images[{i}], box {box}", _static(_cropped_ct, ct_images[i], box))
        for i, box in zip(picks[1::2], boxes, strict=True)
    ]
    return inverted, cropped


def _recipes(ct_images: np.ndarray) -> dict[str, list[Recipe]]:
    """Every kind's items in their fixed order (the order sets the part).

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` CT slices, already checked.

    Returns:
        Kind -> its ``(label, make)`` recipes, kinds in :data:`KINDS` order.
    """
    inverted, cropped = _ct_recipes(ct_images)
    recipes = [
        _colour_photo_recipes(),
        _grey_photo_recipes(),
        _modality_recipes(),
        _digit_recipes(),
        _chart_recipes(),
        _text_recipes(),
        _gradient_recipes(),
        _pattern_recipes(),
        inverted,
        cropped,
    ]
    return dict(zip(KINDS, recipes, strict=True))


def _check_ct(ct_images) -> None:
    """Raise ValueError unless ``ct_images`` is uint8 ``(n, s, s, 3)`` with enough slices."""
    if not isinstance(ct_images, np.ndarray):
        raise ValueError(f"non_ct_corpus: ct_images must be a numpy array, got {type(ct_images)!r}")
    if ct_images.dtype != np.uint8:
        raise ValueError(f"non_ct_corpus: ct_images must be uint8, got dtype {ct_images.dtype!s}")
    shape = ct_images.shape
    if ct_images.ndim != 4 or shape[3] != 3 or shape[1] != shape[2]:
        raise ValueError(f"non_ct_corpus: ct_images must have shape (n, s, s, 3), got {shape}")
    if shape[0] < MIN_CT_IMAGES:
        raise ValueError(
            f"non_ct_corpus: needs at least {MIN_CT_IMAGES} CT images, got {shape[0]} ({shape})"
        )
    if shape[1] < MIN_CT_SIDE:
        raise ValueError(f"non_ct_corpus: CT side must be >= {MIN_CT_SIDE}, got {shape[1]}")


def _item_rng(seed: int, name: str) -> np.random.Generator:
    """The random generator of one item: from the seed and the item's name."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _part(position: int) -> str:
    """The part of the item at ``position`` within its kind."""
    return PARTS[0] if position % DESIGN_EVERY == 0 else PARTS[1]


# ----------------------------------------------------------------------------- public


def non_ct_corpus(ct_images: np.ndarray, seed: int = 0) -> list[Item]:
    """Build the non-CT corpus.

    Args:
        ct_images: uint8 ``(n, s, s, 3)`` real CT slices, ``n >= 12`` and ``s >= 64``; ten of
            them, spread over the array and each used once, become the inverted and cropped
            CT items.
        seed: non-negative seed of the randomised images (charts, text, patterns).

    Returns:
        The items, kind by kind in :data:`KINDS` order, each kind in its fixed order.

    Raises:
        ValueError: on a bad ``ct_images`` or ``seed``.
    """
    _check_ct(ct_images)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"non_ct_corpus: seed must be a non-negative int, got {seed!r}")
    items = []
    for kind, recipes in _recipes(ct_images).items():
        for position, (label, make) in enumerate(recipes):
            name = f"{kind}: {label}"
            image = _fit_size(make(_item_rng(int(seed), name)).convert("RGB"))
            items.append(Item(name=name, kind=kind, part=_part(position), image=image))
    return items


def corpus_frame(items: Sequence[Item]) -> pd.DataFrame:
    """A table of the corpus without the images.

    Args:
        items: from :func:`non_ct_corpus`.

    Returns:
        DataFrame with columns ``name, kind, part, width, height``, one row per item.

    Raises:
        ValueError: when an entry is not an :class:`Item`.
    """
    bad = [item for item in items if not isinstance(item, Item)]
    if bad:
        raise ValueError(f"corpus_frame: expected Item entries, got {bad[0]!r}")
    rows = [(i.name, i.kind, i.part, i.image.width, i.image.height) for i in items]
    return pd.DataFrame(rows, columns=["name", "kind", "part", "width", "height"])
