"""DAT, the Dual Aggregation Transformer (Chen et al., ICCV 2023), as its upscaler files are laid out (see
`upscaler_files`). Written from the paper and its published code's structure, and checked against spandrel's on the
same weights (tests/engine/test_upscalers.py).

The picture becomes one token a pixel. Each residual group alternates two kinds of block:

- spatial: half of the channels attend within windows h × w of the picture, the other half within windows w × h,
  every fourth such block with the windows shifted by half a window (and a mask keeping the pieces that the shift
  wrapped around apart); a position bias comes from a small network of the offsets within a window;
- channel: the channels attend to each other across the whole picture;

each beside a depth-wise convolution, with which it trades a gate (a channel map one way, a spatial map the other),
and each followed by a feed-forward layer whose second half gates the first after a depth-wise convolution.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn import functional

from hypersd_desktop.engine.upscaler_files import DATShape, UpscalerLayout, dat_shifted

MASKED = -100.0  # what a shifted window adds to the attention between pixels that the shift brought together


def window_offsets(height: int, width: int) -> torch.Tensor:
    """Every offset (dy, dx) between two cells of a window, a row each, in the order `window_index` counts them."""
    grid = torch.meshgrid(torch.arange(1 - height, height), torch.arange(1 - width, width), indexing="ij")
    return torch.stack(grid).flatten(1).T.float()


def window_index(height: int, width: int) -> torch.Tensor:
    """For each pair of a window's cells (a query's, a key's), the row of `window_offsets` with their offset."""
    ys, xs = (axis.flatten() for axis in torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij"))
    return (ys[:, None] - ys[None, :] + height - 1) * (2 * width - 1) + (xs[:, None] - xs[None, :] + width - 1)


@functools.lru_cache(maxsize=4)  # the groups' shifted blocks of one picture share theirs
def shift_mask(height: int, width: int, window: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor:
    """For a picture rolled back by `shift` and cut into `window`s: each window's (cells × cells) additions that keep
    apart the regions the roll brought together (0 within a region, `MASKED` across)."""
    (window_h, window_w), (shift_h, shift_w) = window, shift
    regions = torch.zeros(height, width)
    label = 0
    for rows in (slice(0, -window_h), slice(-window_h, -shift_h), slice(-shift_h, None)):
        for columns in (slice(0, -window_w), slice(-window_w, -shift_w), slice(-shift_w, None)):
            regions[rows, columns] = label
            label += 1
    cells = to_windows(regions[None, :, :, None], window_h, window_w)[..., 0]
    return (cells[:, None, :] != cells[:, :, None]).float() * MASKED


def to_windows(grid: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W, C) → (B · windows, height · width, C), windows row by row."""
    batch, rows, columns, channels = grid.shape
    grid = grid.view(batch, rows // height, height, columns // width, width, channels)
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(-1, height * width, channels)


def from_windows(windows: torch.Tensor, height: int, width: int, rows: int, columns: int) -> torch.Tensor:
    """The inverse of `to_windows`: (B · windows, height · width, C) → (B, rows, columns, C)."""
    grid = windows.view(-1, rows // height, columns // width, height, width, windows.shape[-1])
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(-1, rows, columns, windows.shape[-1])


def _normed(channels: int, out: int) -> nn.Sequential:
    """The position network's layer: layer norm, ReLU, linear."""
    return nn.Sequential(nn.LayerNorm(channels), nn.ReLU(), nn.Linear(channels, out))


class _PositionBias(nn.Module):
    """A bias for each head from the offset between two cells of a window, made by a small network."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.pos_proj = nn.Linear(2, channels)
        self.pos1, self.pos2, self.pos3 = _normed(channels, channels), _normed(channels, channels), \
            _normed(channels, heads)

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        return self.pos3(self.pos2(self.pos1(self.pos_proj(offsets))))


class _WindowAttention(nn.Module):
    """Attention within windows of `window` cells, over `channels` channels in `heads` heads."""

    def __init__(self, channels: int, heads: int, window: tuple[int, int]) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.scale = (channels // heads) ** -0.5
        self.pos = _PositionBias(channels // 4 // 4, heads)
        self.register_buffer("rpe_biases", window_offsets(*window), persistent=False)
        self.register_buffer("relative_position_index", window_index(*window), persistent=False)

    def forward(self, qkv: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """`qkv`: (3, B, H, W, C) → (B, H, W, C)."""
        _, _, rows, columns, channels = qkv.shape
        height, width = self.window
        cells = height * width
        q, k, v = (to_windows(part, height, width).view(-1, cells, self.heads, channels // self.heads)
                   .transpose(1, 2) for part in qkv)
        attention = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.pos(self.rpe_biases)[self.relative_position_index.view(-1)].view(cells, cells, -1)
        attention = attention + bias.permute(2, 0, 1)[None]
        if mask is not None:
            windows = mask.shape[0]
            attention = (attention.view(-1, windows, self.heads, cells, cells) + mask[None, :, None]) \
                .view(-1, self.heads, cells, cells)
        made = (attention.softmax(-1) @ v).transpose(1, 2).reshape(-1, cells, channels)
        return from_windows(made, height, width, rows, columns)


class _Gates(nn.Module):
    """What both kinds of attention have beside them: a depth-wise convolution of the values, a channel map (global
    pooling, a bottleneck) and a spatial map (a bottleneck to one channel)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
                                    nn.BatchNorm2d(channels), nn.GELU())
        self.channel_interaction = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // 8, 1), nn.BatchNorm2d(channels // 8), nn.GELU(),
            nn.Conv2d(channels // 8, channels, 1))
        self.spatial_interaction = nn.Sequential(
            nn.Conv2d(channels, channels // 16, 1), nn.BatchNorm2d(channels // 16), nn.GELU(),
            nn.Conv2d(channels // 16, 1, 1))


class _SpatialAttention(_Gates):
    """Half the channels attend in h × w windows, half in w × h; the convolution gates the attention by channel and
    the attention gates the convolution by place."""

    def __init__(self, channels: int, heads: int, shape: DATShape, shifted: bool) -> None:
        super().__init__(channels)
        self.qkv = nn.Linear(channels, 3 * channels, bias=shape.qkv_bias)
        self.proj = nn.Linear(channels, channels)
        height, width = shape.window
        self.windows = ((height, width), (width, height))
        self.attns = nn.ModuleList(_WindowAttention(channels // 2, heads // 2, window) for window in self.windows)
        self.shifts = tuple((h // 2, w // 2) for h, w in self.windows) if shifted else None

    def forward(self, x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        batch, _, channels = x.shape
        qkv = self.qkv(x).view(batch, rows, columns, 3, channels).permute(3, 0, 1, 2, 4)
        values = qkv[2].permute(0, 3, 1, 2)
        side = max(self.windows[0])
        qkv = functional.pad(qkv, (0, 0, 0, -columns % side, 0, -rows % side))  # whole windows
        padded = qkv.shape[2:4]
        halves = []
        for n, (attend, part) in enumerate(zip(self.attns, qkv.chunk(2, dim=-1))):
            if self.shifts is None:
                made = attend(part, None)
            else:
                shift = self.shifts[n]
                mask = shift_mask(*padded, self.windows[n], shift).to(x)
                made = attend(part.roll((-shift[0], -shift[1]), dims=(2, 3)), mask).roll(shift, dims=(1, 2))
            halves.append(made[:, :rows, :columns].reshape(batch, rows * columns, channels // 2))
        attended = torch.cat(halves, dim=-1)
        convolved = self.dwconv(values)
        by_channel = self.channel_interaction(convolved).view(batch, 1, channels)
        by_place = self.spatial_interaction(attended.transpose(1, 2).reshape(batch, channels, rows, columns))
        convolved = (torch.sigmoid(by_place) * convolved).flatten(2).transpose(1, 2)
        return self.proj(attended * torch.sigmoid(by_channel) + convolved)


class _ChannelAttention(_Gates):
    """The channels attend to each other across the picture (cosine similarity, a learned temperature per head); the
    convolution gates the attention by place and the attention gates the convolution by channel."""

    def __init__(self, channels: int, heads: int, shape: DATShape) -> None:
        super().__init__(channels)
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Linear(channels, 3 * channels, bias=shape.qkv_bias)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        batch, cells, channels = x.shape
        qkv = self.qkv(x).view(batch, cells, 3, self.heads, channels // self.heads).permute(2, 0, 3, 4, 1)
        q, k, v = functional.normalize(qkv[0], dim=-1), functional.normalize(qkv[1], dim=-1), qkv[2]
        attention = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(-1)
        attended = (attention @ v).permute(0, 3, 1, 2).reshape(batch, cells, channels)
        convolved = self.dwconv(v.reshape(batch, channels, rows, columns))
        by_channel = self.channel_interaction(attended.transpose(1, 2).reshape(batch, channels, rows, columns))
        by_place = self.spatial_interaction(convolved).flatten(2).transpose(1, 2)
        convolved = (convolved * torch.sigmoid(by_channel)).flatten(2).transpose(1, 2)
        return self.proj(attended * torch.sigmoid(by_place) + convolved)


class _SpatialGate(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        kept, gate = x.chunk(2, dim=-1)
        gate = self.conv(self.norm(gate).transpose(1, 2).reshape(x.shape[0], -1, rows, columns))
        return kept * gate.flatten(2).transpose(1, 2)


class _FeedForward(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.sg = _SpatialGate(hidden // 2)
        self.fc2 = nn.Linear(hidden // 2, channels)

    def forward(self, x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        return self.fc2(self.sg(functional.gelu(self.fc1(x)), rows, columns))


class _Block(nn.Module):
    def __init__(self, channels: int, heads: int, shape: DATShape, group: int, block: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attn = _ChannelAttention(channels, heads, shape) if block % 2 else \
            _SpatialAttention(channels, heads, shape, dat_shifted(group, block))
        self.ffn = _FeedForward(channels, shape.hidden)

    def forward(self, x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rows, columns)
        return x + self.ffn(self.norm2(x), rows, columns)


def _residual_convs(channels: int, three: bool) -> nn.Module:
    if not three:
        return nn.Conv2d(channels, channels, 3, padding=1)
    quarter = channels // 4
    return nn.Sequential(nn.Conv2d(channels, quarter, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(quarter, quarter, 1), nn.LeakyReLU(0.2), nn.Conv2d(quarter, channels, 3, padding=1))


class _Group(nn.Module):
    def __init__(self, channels: int, heads: int, depth: int, shape: DATShape, group: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_Block(channels, heads, shape, group, block) for block in range(depth))
        self.conv = _residual_convs(channels, shape.three_convs)

    def forward(self, x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        tokens = x
        for block in self.blocks:
            tokens = block(tokens, rows, columns)
        image = tokens.transpose(1, 2).reshape(x.shape[0], -1, rows, columns)
        return x + self.conv(image).flatten(2).transpose(1, 2)


class DATNet(nn.Module):
    """The whole model: the picture centred on DIV2K's mean colour, a convolution into tokens, the groups, a
    convolution added to the first one's features, and the pixel shuffles."""

    def __init__(self, layout: UpscalerLayout, mean: tuple[float, float, float]) -> None:
        super().__init__()
        shape, channels = layout.dat, layout.features
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(3, channels, 3, padding=1)
        self.before_RG = nn.Sequential(nn.Identity(), nn.LayerNorm(channels))  # noqa: N815 - the files' name
        self.layers = nn.ModuleList(_Group(channels, heads, depth, shape, n)
                                    for n, (depth, heads) in enumerate(zip(shape.depths, shape.heads)))
        self.norm = nn.LayerNorm(channels)
        self.conv_after_body = _residual_convs(channels, shape.three_convs)
        scale, shuffled = layout.scale, shape.shuffle_features
        if shuffled:
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(channels, shuffled, 3, padding=1), nn.LeakyReLU())
            steps = [(3, 9)] if scale == 3 else [(2, 4)] * (scale.bit_length() - 1)
            self.upsample = nn.Sequential(*(layer for factor, widen in steps for layer in (
                nn.Conv2d(shuffled, widen * shuffled, 3, padding=1), nn.PixelShuffle(factor))))
            self.conv_last = nn.Conv2d(shuffled, 3, 3, padding=1)
        else:
            self.upsample = nn.Sequential(nn.Conv2d(channels, 3 * scale ** 2, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, picture: torch.Tensor) -> torch.Tensor:
        rows, columns = picture.shape[-2:]
        features = self.conv_first(picture - self.mean)
        tokens = self.before_RG(features.flatten(2).transpose(1, 2))
        for group in self.layers:
            tokens = group(tokens, rows, columns)
        body = self.norm(tokens).transpose(1, 2).reshape(features.shape)
        features = self.conv_after_body(body) + features
        if hasattr(self, "conv_last"):
            made = self.conv_last(self.upsample(self.conv_before_upsample(features)))
        else:
            made = self.upsample(features)
        return made + self.mean


def dat_window(state: dict[str, torch.Tensor], layout: UpscalerLayout) -> tuple[int, int]:
    """The window a DAT file was trained with, read from its first position table, whose last row is the largest
    offset, (h − 1, w − 1): the layout, read from shapes alone, cannot tell h × w from w × h."""
    table = state.get("layers.0.blocks.0.attn.attns.0.rpe_biases")
    if table is None or table.ndim != 2 or table.shape[0] < 1 or table.shape[1] != 2:
        return layout.dat.window
    height, width = (int(value) + 1 for value in table[-1].tolist())
    return (height, width) if sorted((height, width)) == sorted(layout.dat.window) else layout.dat.window
