"""Seamless images (A1111's "Tiling", InvokeAI's seamless X and Y) on the torch backend.

An image tiles when every convolution that makes it reads across the image's edge what lies at the other
edge, as if the picture were drawn on a cylinder (one way) or a torus (both ways): where a convolution
pads its input with zeros, here it pads by wrapping around on the axes asked for, and with zeros on the
other. Both ways is PyTorch's own `padding_mode="circular"`, as A1111 sets it on every Conv2d; one way
pads each axis on its own, as InvokeAI does. The UNet, the VAE (decoding, and encoding an init image),
TAESD and ControlNets are wrapped for the run and given back as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from functools import partial

import torch
import torch.nn.functional as F

from hypersd_desktop.core.vocab import Tiling


@contextlib.contextmanager
def seamless(modules: Iterable[torch.nn.Module | None], tiling: Tiling):
    """While the block runs, every zero-padding Conv2d of `modules` wraps around the edges as `tiling` asks."""
    if tiling == Tiling.OFF:
        yield
        return
    wrap_x, wrap_y = tiling.wraps
    wrapped = []
    for module in filter(None, modules):
        for layer in module.modules():
            if (isinstance(layer, torch.nn.Conv2d) and layer.padding_mode == "zeros"
                    and not isinstance(layer.padding, str) and any(layer.padding)
                    and "_conv_forward" not in layer.__dict__):
                layer._conv_forward = partial(_wrapping_conv, layer, wrap_x, wrap_y)
                wrapped.append(layer)
    try:
        yield
    finally:
        for layer in wrapped:
            del layer._conv_forward


def _wrapping_conv(layer: torch.nn.Conv2d, wrap_x: bool, wrap_y: bool, pixels: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor | None) -> torch.Tensor:
    """`layer`'s convolution with its padding wrapped around across (`wrap_x`) and down (`wrap_y`), zeros on an
    axis that does not wrap."""
    down, across = layer.padding
    pixels = F.pad(pixels, (across, across, 0, 0), mode="circular" if wrap_x else "constant")
    pixels = F.pad(pixels, (0, 0, down, down), mode="circular" if wrap_y else "constant")
    return F.conv2d(pixels, weight, bias, layer.stride, 0, layer.dilation, layer.groups)
