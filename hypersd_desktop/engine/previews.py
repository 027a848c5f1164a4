"""Cheap step previews: a linear latent-to-RGB map, or the TAESD decoder when installed."""

from __future__ import annotations

import torch
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


def latent_preview(latents: torch.Tensor, architecture: str) -> Image.Image:
    """An RGB image at latent resolution (1/8 of the output) from the first latent of a batch."""
    factors, bias = _LATENT_RGB[architecture]
    weight = torch.tensor(factors, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->rhw", latents[0].float().cpu(), weight) + torch.tensor(bias).view(3, 1, 1)
    return _to_pil((rgb + 1.0) / 2.0)


def taesd_preview(latents: torch.Tensor, taesd: torch.nn.Module) -> Image.Image:
    """The first latent decoded by TAESD (full resolution, about 1/20 of the VAE's cost)."""
    decoded = taesd.decode(latents[:1].to(taesd.dtype)).sample[0]
    return _to_pil((decoded.float().cpu() + 1.0) / 2.0)


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")
