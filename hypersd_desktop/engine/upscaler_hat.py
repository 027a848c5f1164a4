"""HAT, the Hybrid Attention Transformer (Chen et al., CVPR 2023), as its upscaler files are laid out (see
`upscaler_files`). Written from the paper and its published code's structure, and checked against spandrel's on the
same weights (tests/engine/test_upscalers.py).

The picture (padded by reflection to whole windows) becomes one token a pixel. Each group is a run of blocks that
attend within square windows (every other block with the windows shifted by half a window), beside a convolution
branch with channel attention added at a hundredth of its strength; then one overlapping cross-attention, whose
queries are a window and whose keys and values are a larger window around it; then a convolution. Pixel shuffles
make the picture larger.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from hypersd_desktop.engine.upscaler_dat import from_windows, shift_mask, to_windows, window_index
from hypersd_desktop.engine.upscaler_files import HATShape, UpscalerLayout

CONV_SCALE = 0.01  # how much of the convolution branch a block adds (HAT's, not kept in its files)


def overlap_index(window: int, overlap: int) -> torch.Tensor:
    """For each pair of a window's cell and a cell of the larger window around it, the row of the cross-attention's
    position table with their offset."""
    inner = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    outer = torch.stack(torch.meshgrid(torch.arange(overlap), torch.arange(overlap), indexing="ij")).flatten(1)
    offsets = outer[:, None, :] - inner[:, :, None] + (window - overlap + 1)
    return offsets[0] * (window + overlap - 1) + offsets[1]


class Mlp(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels, hidden), nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(functional.gelu(self.fc1(x)))


class WindowAttention(nn.Module):
    """Attention of `heads` heads within windows of `cells` cells, with a learned bias per offset."""

    def __init__(self, channels: int, heads: int, window: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads, self.scale = heads, (channels // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.qkv = nn.Linear(channels, 3 * channels, bias=qkv_bias)
        self.proj = nn.Linear(channels, channels)

    def forward(self, windows: torch.Tensor, index: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        count, cells, channels = windows.shape
        q, k, v = self.qkv(windows).view(count, cells, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attention = (q * self.scale) @ k.transpose(-2, -1)
        attention = attention + self.relative_position_bias_table[index.view(-1)].view(cells, cells, -1) \
            .permute(2, 0, 1)[None]
        if mask is not None:
            attention = (attention.view(-1, mask.shape[0], self.heads, cells, cells) + mask[None, :, None]) \
                .view(-1, self.heads, cells, cells)
        return self.proj((attention.softmax(-1) @ v).transpose(1, 2).reshape(count, cells, channels))

    def over(self, grid: torch.Tensor, window: int, shift: int, index: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """Attention within the windows of `grid` (B, H, W, C) rolled back by `shift` (and rolled again after; the
        `mask` keeps apart what the roll brought together) as tokens (B, H·W, C)."""
        batch, rows, columns, channels = grid.shape
        if shift:
            grid = grid.roll((-shift, -shift), dims=(1, 2))
        made = self(to_windows(grid, window, window), index, mask if shift else None)
        grid = from_windows(made, window, window, rows, columns)
        if shift:
            grid = grid.roll((shift, shift), dims=(1, 2))
        return grid.reshape(batch, rows * columns, channels)


class _ChannelAttention(nn.Module):
    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeezed, 1), nn.ReLU(),
                                       nn.Conv2d(squeezed, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class _ConvBranch(nn.Module):
    def __init__(self, channels: int, shape: HATShape) -> None:
        super().__init__()
        self.cab = nn.Sequential(nn.Conv2d(channels, shape.compressed, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(shape.compressed, channels, 3, padding=1),
                                 _ChannelAttention(channels, shape.squeezed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)


class _Block(nn.Module):
    """Window attention (shifted by half a window in every other block) beside the convolution branch, then an MLP."""

    def __init__(self, channels: int, heads: int, shape: HATShape, shifted: bool) -> None:
        super().__init__()
        self.window, self.shift = shape.window, shape.window // 2 if shifted else 0
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attn = WindowAttention(channels, heads, shape.window, shape.qkv_bias)
        self.conv_block = _ConvBranch(channels, shape)
        self.mlp = Mlp(channels, shape.hidden)

    def forward(self, x: torch.Tensor, rows: int, columns: int, index: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        grid = self.norm1(x).view(x.shape[0], rows, columns, x.shape[2])
        convolved = self.conv_block(grid.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)
        x = x + self.attn.over(grid, self.window, self.shift, index, mask) + convolved * CONV_SCALE
        return x + self.mlp(self.norm2(x))


class _OverlapAttention(nn.Module):
    """Each window's cells ask the larger window around it (read with `unfold`, zeros past the edge)."""

    def __init__(self, channels: int, heads: int, shape: HATShape) -> None:
        super().__init__()
        self.heads, self.window, self.overlap = heads, shape.window, shape.overlap_window
        self.scale = (channels // heads) ** -0.5
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels, bias=shape.qkv_bias)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((shape.window + shape.overlap_window - 1) ** 2,
                                                                     heads))
        self.proj = nn.Linear(channels, channels)
        self.mlp = Mlp(channels, shape.overlap_hidden)

    def forward(self, x: torch.Tensor, rows: int, columns: int, index: torch.Tensor) -> torch.Tensor:
        batch, _, channels = x.shape
        window, overlap, heads = self.window, self.overlap, self.heads
        qkv = self.qkv(self.norm1(x)).view(batch, rows, columns, 3, channels)
        queries = to_windows(qkv[..., 0, :], window, window)  # (windows, cells, C)
        keys_values = qkv[..., 1:, :].permute(0, 3, 4, 1, 2).reshape(batch, 2 * channels, rows, columns)
        around = functional.unfold(keys_values, overlap, padding=(overlap - window) // 2, stride=window)
        around = around.view(batch, 2, channels, overlap * overlap, -1).permute(1, 0, 4, 3, 2) \
            .reshape(2, -1, overlap * overlap, channels)
        q = queries.view(-1, window * window, heads, channels // heads).transpose(1, 2)
        k, v = (part.view(-1, overlap * overlap, heads, channels // heads).transpose(1, 2) for part in around)
        attention = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[index.view(-1)].view(window * window, overlap * overlap, -1)
        attention = attention + bias.permute(2, 0, 1)[None]
        made = (attention.softmax(-1) @ v).transpose(1, 2).reshape(-1, window * window, channels)
        x = self.proj(from_windows(made, window, window, rows, columns).reshape(batch, rows * columns, channels)) + x
        return x + self.mlp(self.norm2(x))


class _Blocks(nn.Module):
    def __init__(self, channels: int, heads: int, depth: int, shape: HATShape) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_Block(channels, heads, shape, block % 2 == 1) for block in range(depth))
        self.overlap_attn = _OverlapAttention(channels, heads, shape)


class _Group(nn.Module):
    def __init__(self, channels: int, heads: int, depth: int, shape: HATShape) -> None:
        super().__init__()
        self.residual_group = _Blocks(channels, heads, depth, shape)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if shape.body_convs else nn.Identity()

    def forward(self, x: torch.Tensor, rows: int, columns: int, indexes: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor) -> torch.Tensor:
        tokens = x
        for block in self.residual_group.blocks:
            tokens = block(tokens, rows, columns, indexes[0], mask)
        tokens = self.residual_group.overlap_attn(tokens, rows, columns, indexes[1])
        image = tokens.transpose(1, 2).reshape(x.shape[0], -1, rows, columns)
        return self.conv(image).flatten(2).transpose(1, 2) + x


class PatchNorm(nn.Module):
    def __init__(self, channels: int, normed: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels) if normed else nn.Identity()


class WindowTransformer(nn.Module):
    """What HAT and SwinIR share around their groups: the picture centred on `mean` (and times `picture_range`),
    padded by reflection to whole windows, a convolution into tokens, the groups (each given the position indexes
    `indexes()` and the shifted windows' mask), a norm, a convolution added to the first one's features; then the
    picture made larger (`enlarged`), and the padding cut off again."""

    window: int
    scale_factor: int
    picture_range = 1.0

    def indexes(self):
        raise NotImplementedError

    def enlarged(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, picture: torch.Tensor) -> torch.Tensor:
        height, width = picture.shape[-2:]
        padding = (0, -width % self.window, 0, -height % self.window)
        # reflection needs more picture than it pads; a picture smaller than a window repeats its edge instead
        mode = "reflect" if padding[1] < width and padding[3] < height else "replicate"
        features = self.conv_first(functional.pad((picture - self.mean) * self.picture_range, padding, mode=mode))
        rows, columns = features.shape[-2:]
        mask = shift_mask(rows, columns, (self.window, self.window), (self.window // 2,) * 2).to(features)
        indexes = self.indexes()
        tokens = self.patch_embed.norm(features.flatten(2).transpose(1, 2))
        for group in self.layers:
            tokens = group(tokens, rows, columns, indexes, mask)
        body = self.norm(tokens).transpose(1, 2).reshape(features.shape)
        features = self.conv_after_body(body) + features
        made = self.enlarged(features) / self.picture_range + self.mean
        return made[..., :height * self.scale_factor, :width * self.scale_factor]


class HATNet(WindowTransformer):
    """The whole model: the picture centred on DIV2K's mean colour and padded by reflection to whole windows, a
    convolution into tokens, the groups, a convolution added to the first one's features, the pixel shuffles, and
    the padding cut off again."""

    def __init__(self, layout: UpscalerLayout, mean: tuple[float, float, float]) -> None:
        super().__init__()
        shape, channels = layout.hat, layout.features
        self.window, self.scale_factor = shape.window, layout.scale
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("relative_position_index_SA", window_index(shape.window, shape.window),
                             persistent=False)
        self.register_buffer("relative_position_index_OCA", overlap_index(shape.window, shape.overlap_window),
                             persistent=False)
        self.conv_first = nn.Conv2d(3, channels, 3, padding=1)
        self.patch_embed = PatchNorm(channels, shape.patch_norm)
        self.layers = nn.ModuleList(_Group(channels, heads, depth, shape)
                                    for depth, heads in zip(shape.depths, shape.heads))
        self.norm = nn.LayerNorm(channels)
        self.conv_after_body = nn.Conv2d(channels, channels, 3, padding=1) if shape.body_convs else nn.Identity()
        shuffled = shape.shuffle_features
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(channels, shuffled, 3, padding=1), nn.LeakyReLU())
        steps = [(3, 9)] if layout.scale == 3 else [(2, 4)] * (layout.scale.bit_length() - 1)
        self.upsample = nn.Sequential(*(layer for factor, widen in steps for layer in (
            nn.Conv2d(shuffled, widen * shuffled, 3, padding=1), nn.PixelShuffle(factor))))
        self.conv_last = nn.Conv2d(shuffled, 3, 3, padding=1)

    def indexes(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.relative_position_index_SA, self.relative_position_index_OCA

    def enlarged(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv_last(self.upsample(self.conv_before_upsample(features)))
