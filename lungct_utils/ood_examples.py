"""Images that are not lung CT slices, for checking the out-of-distribution flag.

Real ones ship with matplotlib (a photograph, a product photo, a logo and an MRI slice
of a head, ``s1045.ima``); synthetic ones are made here (blank, noise, gradient,
checkerboard).
"""

from __future__ import annotations

import gzip

import numpy as np
from PIL import Image


def _sample(name: str):
    from matplotlib import cbook

    return cbook.get_sample_data(name, asfileobj=False)


def mri_slice() -> Image.Image:
    """matplotlib's sample MRI slice (256x256, 16-bit) as 8-bit RGB."""
    with gzip.open(_sample("s1045.ima.gz")) as handle:
        raw = np.frombuffer(handle.read(), np.uint16).reshape(256, 256).astype(np.float64)
    return Image.fromarray((raw / raw.max() * 255).astype(np.uint8), mode="L").convert("RGB")


def non_ct_images(size: int = 256, seed: int = 0) -> dict[str, Image.Image]:
    """A named set of RGB images that are not chest CT slices.

    Args:
        size: side of the synthetic images.
        seed: noise seed.

    Returns:
        name -> RGB image.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    checker = (((xx // 32) + (yy // 32)) % 2 * 255).astype(np.uint8)
    synth = {
        "blank black": np.zeros((size, size), np.uint8),
        "blank white": np.full((size, size), 255, np.uint8),
        "uniform noise": rng.integers(0, 256, (size, size), dtype=np.uint8),
        "gradient": (xx / size * 255).astype(np.uint8),
        "checkerboard": checker,
    }
    out = {
        "photograph (grace_hopper.jpg)": Image.open(_sample("grace_hopper.jpg")).convert("RGB"),
        "photograph (Minduka_Present_Blue_Pack.png)": Image.open(
            _sample("Minduka_Present_Blue_Pack.png")
        ).convert("RGB"),
        "logo (logo2.png)": Image.open(_sample("logo2.png")).convert("RGB"),
        "MRI head slice (s1045.ima)": mri_slice(),
    }
    out.update({k: Image.fromarray(v, mode="L").convert("RGB") for k, v in synth.items()})
    return out
