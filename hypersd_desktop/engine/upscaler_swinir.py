"""SwinIR (Liang et al., ICCV Workshops 2021), as its upscaler files are laid out (see `upscaler_files`). Written from
the paper and its published code's structure, and checked against spandrel's on the same weights
(tests/engine/test_upscalers.py). Its blocks are HAT's without the convolution branch, so they share HAT's window
attention.

The picture (centred on DIV2K's mean, padded by reflection to whole windows) becomes one token a pixel. Each group
is a run of blocks that attend within square windows (every other block with the windows shifted by half a window),
then one convolution (or three), added to the group's input; a convolution after the groups is added to the first
one's features. Then the picture is made larger: by pixel shuffles after a convolution (classical SR), by one pixel
shuffle straight from the features (lightweight SR), or by nearest-neighbour doublings each followed by a convolution
(real-world SR, as A1111's SwinIR_4x).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from hypersd_desktop.engine.upscaler_dat import window_index
from hypersd_desktop.engine.upscaler_files import DIRECT, PIXELSHUFFLE, SwinIRShape, UpscalerLayout
from hypersd_desktop.engine.upscaler_hat import Mlp, PatchNorm, WindowAttention, WindowTransformer

SLOPE = 0.2  # the leaky ReLUs' inside the three-convolution ends and the real-world enlarging layers


class _Block(nn.Module):
    """Window attention (shifted by half a window in every other block), then an MLP, each added to its input."""

    def __init__(self, channels: int, heads: int, shape: SwinIRShape, shifted: bool) -> None:
        super().__init__()
        self.window, self.shift = shape.window, shape.window // 2 if shifted else 0
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attn = WindowAttention(channels, heads, shape.window, qkv_bias=True)
        self.mlp = Mlp(channels, shape.hidden)

    def forward(self, x: torch.Tensor, rows: int, columns: int, index: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        grid = self.norm1(x).view(x.shape[0], rows, columns, x.shape[2])
        x = x + self.attn.over(grid, self.window, self.shift, index, mask)
        return x + self.mlp(self.norm2(x))


def _end(channels: int, three: bool) -> nn.Module:
    """A group's (and the body's) last convolution: one 3×3, or 3×3, 1×1, 3×3 a quarter as wide."""
    if not three:
        return nn.Conv2d(channels, channels, 3, padding=1)
    narrow = channels // 4
    return nn.Sequential(nn.Conv2d(channels, narrow, 3, padding=1), nn.LeakyReLU(SLOPE), nn.Conv2d(narrow, narrow, 1),
                         nn.LeakyReLU(SLOPE), nn.Conv2d(narrow, channels, 3, padding=1))


class _Blocks(nn.Module):
    def __init__(self, channels: int, heads: int, depth: int, shape: SwinIRShape) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_Block(channels, heads, shape, block % 2 == 1) for block in range(depth))


class _Group(nn.Module):
    def __init__(self, channels: int, heads: int, depth: int, shape: SwinIRShape) -> None:
        super().__init__()
        self.residual_group = _Blocks(channels, heads, depth, shape)
        self.conv = _end(channels, shape.three_convs)

    def forward(self, x: torch.Tensor, rows: int, columns: int, index: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        tokens = x
        for block in self.residual_group.blocks:
            tokens = block(tokens, rows, columns, index, mask)
        image = tokens.transpose(1, 2).reshape(x.shape[0], -1, rows, columns)
        return self.conv(image).flatten(2).transpose(1, 2) + x


class SwinIRNet(WindowTransformer):
    """The whole model (`WindowTransformer`'s forward) with SwinIR's way of making the picture larger."""

    def __init__(self, layout: UpscalerLayout, mean: tuple[float, float, float]) -> None:
        super().__init__()
        shape, channels = layout.swinir, layout.features
        self.window, self.scale_factor, self.upsampler = shape.window, layout.scale, shape.upsampler
        self.picture_range = shape.picture_range
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("index", window_index(shape.window, shape.window), persistent=False)
        self.conv_first = nn.Conv2d(3, channels, 3, padding=1)
        self.patch_embed = PatchNorm(channels, shape.patch_norm)
        self.layers = nn.ModuleList(_Group(channels, heads, depth, shape)
                                    for depth, heads in zip(shape.depths, shape.heads))
        self.norm = nn.LayerNorm(channels)
        self.conv_after_body = _end(channels, shape.three_convs)
        shuffled, scale = shape.shuffle_features, layout.scale
        if shape.upsampler == DIRECT:
            self.upsample = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
            return
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(channels, shuffled, 3, padding=1), nn.LeakyReLU())
        if shape.upsampler == PIXELSHUFFLE:
            steps = [(3, 9)] if scale == 3 else [(2, 4)] * (scale.bit_length() - 1)
            self.upsample = nn.Sequential(*(layer for factor, widen in steps for layer in (
                nn.Conv2d(shuffled, widen * shuffled, 3, padding=1), nn.PixelShuffle(factor))))
        else:
            for n in range(1, scale.bit_length()):
                self.add_module(f"conv_up{n}", nn.Conv2d(shuffled, shuffled, 3, padding=1))
            self.conv_hr = nn.Conv2d(shuffled, shuffled, 3, padding=1)
        self.conv_last = nn.Conv2d(shuffled, 3, 3, padding=1)

    def indexes(self) -> torch.Tensor:
        return self.index

    def enlarged(self, features: torch.Tensor) -> torch.Tensor:
        if self.upsampler == DIRECT:
            return self.upsample(features)
        x = self.conv_before_upsample(features)
        if self.upsampler == PIXELSHUFFLE:
            return self.conv_last(self.upsample(x))
        for n in range(1, self.scale_factor.bit_length()):
            x = functional.leaky_relu(getattr(self, f"conv_up{n}")(functional.interpolate(x, scale_factor=2,
                                                                                            mode="nearest")), SLOPE)
        return self.conv_last(functional.leaky_relu(self.conv_hr(x), SLOPE))
