"""Cheap step previews: a linear latent-to-RGB map, or the TAESD decoder when installed (numpy: both backends use them)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hypersd_desktop.core.vocab import Architecture


# Least-squares fits of RGB to the four latent channels, as used by the SD community's
# live previews; good enough to see composition and colour while the steps run.
_LATENT_RGB = {
    Architecture.SD15: (
        ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177)),
        (0.0, 0.0, 0.0),
    ),
    Architecture.SDXL: (
        ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188)),
        (0.1084, -0.0175, -0.0011),
    ),
}


def latent_preview(latent: np.ndarray, architecture: str) -> Image.Image:
    """An RGB image at latent resolution (1/8 of the output) from one latent (C × h × w)."""
    factors, bias = _LATENT_RGB[architecture]
    rgb = np.einsum("chw,cr->rhw", latent.astype(np.float32), np.array(factors, np.float32))
    return to_image(rgb + np.array(bias, np.float32).reshape(3, 1, 1))


def to_image(decoded: np.ndarray) -> Image.Image:
    """A decoder's output (C × H × W, in [-1, 1]) as an RGB image, rounded as diffusers rounds."""
    array = (np.clip((decoded.astype(np.float32) + 1.0) / 2.0, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(array.transpose(1, 2, 0), mode="RGB")
