"""The upscaler architectures the app runs (see `upscaler_files` for the files): ESRGAN's RRDBNet, Real-ESRGAN's
SRVGGNetCompact, SPAN and RealPLKSR (the transformers DAT, HAT and SwinIR are `upscaler_dat`'s, `upscaler_hat`'s and
`upscaler_swinir`'s), each
built from a file's layout and loaded with its weights under their canonical names. Written from the papers and
checked against spandrel (chaiNNer's loader, which ComfyUI uses) on the same weights (tests/engine/test_upscalers.py).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional

from hypersd_desktop.core.errors import ModelFormatError
from hypersd_desktop.engine.upscaler_files import (
    COMPACT, DAT, ESRGAN, HAT, PLKSR, RDB_CONVS, SPAN, SPAN_BLOCKS, SWINIR, UpscalerLayout, dysample_groups,
)

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K's mean colour (SPAN's training set), which a normalised SPAN centres on
NORMALISED_RANGE = 255.0


def build_upscaler(layout: UpscalerLayout, state: dict[str, torch.Tensor]) -> nn.Module:
    """The network of `layout` with `state` (canonical names, fp32) loaded, in eval mode on the CPU."""
    if layout.family == DAT:
        return _built_dat(layout, state)
    if layout.family == HAT:
        from hypersd_desktop.engine.upscaler_hat import HATNet

        net = HATNet(layout, DIV2K_MEAN)  # its position indexes are made from the windows' sizes, not read
        net.load_state_dict({name: tensor for name, tensor in state.items()
                             if not name.startswith("relative_position_index_")})
        return net.eval().requires_grad_(False)
    if layout.family == SWINIR:
        from hypersd_desktop.engine.upscaler_swinir import SwinIRNet

        net = SwinIRNet(layout, DIV2K_MEAN)  # its position indexes and masks are made from the window's size
        net.load_state_dict(state)
        return net.eval().requires_grad_(False)
    if layout.family == SPAN:
        net: nn.Module = SPANNet(layout)
        state = span_inference_state(state)
    else:
        net = {ESRGAN: RRDBNet, COMPACT: CompactNet, PLKSR: PLKSRNet}[layout.family](layout)
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)


def _built_dat(layout: UpscalerLayout, state: dict[str, torch.Tensor]) -> nn.Module:
    """A DAT model: its position tables are made from the window (read from the file's); the batch norms' step counts
    are not needed (and not in `state`, nor are the masks of shifted windows, made for the picture at hand)."""
    from hypersd_desktop.engine.upscaler_dat import DATNet, dat_window

    shape = dataclasses.replace(layout.dat, window=dat_window(state, layout))
    net = DATNet(dataclasses.replace(layout, dat=shape), DIV2K_MEAN)
    weights = {name: tensor for name, tensor in state.items()
               if not name.endswith((".rpe_biases", ".relative_position_index"))}
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if unexpected or any(not name.endswith(".num_batches_tracked") for name in missing):
        raise ModelFormatError(f"The DAT weights do not fit their layout: {sorted(unexpected)[:3]} "
                               f"{sorted(missing)[:3]}; the file is damaged.")
    return net.eval().requires_grad_(False)


class _DenseBlock(nn.Module):
    """ESRGAN's residual dense block: five convolutions, each reading the block's input and every output before it;
    the last one's output, scaled by 0.2, is added to the input."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for n in range(1, RDB_CONVS + 1):
            setattr(self, f"conv{n}", nn.Conv2d(features + (n - 1) * growth,
                                                growth if n < RDB_CONVS else features, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for n in range(1, RDB_CONVS):
            outputs.append(functional.leaky_relu(getattr(self, f"conv{n}")(torch.cat(outputs, 1)), 0.2))
        return getattr(self, f"conv{RDB_CONVS}")(torch.cat(outputs, 1)) * 0.2 + x


class _ResidualInResidual(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (_DenseBlock(features, growth) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator, under BasicSR's names: blocks at the picture's size (or the folded picture's), then
    doublings (nearest neighbour, a convolution, an activation) and two convolutions at the output's size."""

    def __init__(self, layout: UpscalerLayout) -> None:
        super().__init__()
        features = layout.features
        self.unshuffle = layout.unshuffle
        self.conv_first = nn.Conv2d(3 * layout.unshuffle ** 2, features, 3, padding=1)
        self.body = nn.Sequential(*(_ResidualInResidual(features, layout.growth) for _ in range(layout.blocks)))
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        self.ups = [f"conv_up{n}" for n in range(1, layout.doublings + 1)]
        for name in self.ups:
            setattr(self, name, nn.Conv2d(features, features, 3, padding=1))
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.unshuffle > 1:  # Real-ESRGAN x2plus: the picture folded into 4 times the channels
            x = functional.pad(x, (0, -width % self.unshuffle, 0, -height % self.unshuffle), mode="reflect")
            x = functional.pixel_unshuffle(x, self.unshuffle)
        features = self.conv_first(x)
        features = features + self.conv_body(self.body(features))
        for name in self.ups:
            features = functional.interpolate(features, scale_factor=2, mode="nearest")
            features = functional.leaky_relu(getattr(self, name)(features), 0.2)
        out = self.conv_last(functional.leaky_relu(self.conv_hr(features), 0.2))
        scale = 2 ** len(self.ups) // self.unshuffle
        return out[..., : height * scale, : width * scale]


class CompactNet(nn.Module):
    """Real-ESRGAN's SRVGGNetCompact: convolutions with PReLUs at the picture's size, the last making `scale`²
    pixels of each channel, shuffled into place, added to the picture enlarged by nearest neighbour."""

    def __init__(self, layout: UpscalerLayout) -> None:
        super().__init__()
        features, self.scale = layout.features, layout.scale
        layers: list[nn.Module] = [nn.Conv2d(3, features, 3, padding=1), nn.PReLU(features)]
        for _ in range(layout.blocks):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.PReLU(features)]
        layers.append(nn.Conv2d(features, 3 * layout.scale ** 2, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = functional.pixel_shuffle(self.body(x), self.scale)
        return out + functional.interpolate(x, scale_factor=self.scale, mode="nearest")


class SPANNet(nn.Module):
    """SPAN: a 3×3 convolution, six attention blocks (three convolutions each, SiLU between; the block's output is
    its last convolution plus its input, times the sigmoid of that convolution less one half), a 3×3 convolution, a
    1×1 joining the first features, the last and first blocks' outputs and the last block's first activation, and a
    pixel shuffle. Every 3×3 here is the re-parameterised sum its file trained (`span_inference_state`)."""

    def __init__(self, layout: UpscalerLayout) -> None:
        super().__init__()
        features = layout.features
        self.normalized = layout.normalized
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_1 = nn.Conv2d(3, features, 3, padding=1)
        for block in range(1, SPAN_BLOCKS + 1):
            setattr(self, f"block_{block}", _AttentionBlock(features))
        self.conv_cat = nn.Conv2d(4 * features, features, 1)
        self.conv_2 = nn.Conv2d(features, features, 3, padding=1)
        self.upsampler = nn.Conv2d(features, 3 * layout.scale ** 2, 3, padding=1)
        self.scale = layout.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalized:
            x = (x - self.mean.to(x.dtype)) * NORMALISED_RANGE
        first = self.conv_1(x)
        out = first_block = self.block_1(first)[0]
        for block in range(2, SPAN_BLOCKS):
            out = getattr(self, f"block_{block}")(out)[0]
        out, last_first = getattr(self, f"block_{SPAN_BLOCKS}")(out)
        joined = self.conv_cat(torch.cat([first, self.conv_2(out), first_block, last_first], 1))
        return functional.pixel_shuffle(self.upsampler(joined), self.scale)


class _AttentionBlock(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.c1_r, self.c2_r, self.c3_r = (nn.Conv2d(features, features, 3, padding=1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its first activation (SPAN's reference code activates that in place, so its
        "first convolution" output, which the last block passes on, is the activated one)."""
        first = functional.silu(self.c1_r(x))
        last = self.c3_r(functional.silu(self.c2_r(first)))
        return (last + x) * (torch.sigmoid(last) - 0.5), first


def span_inference_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A SPAN file's weights as `SPANNet` holds them: each trained chain (a 1×1 convolution widening, a 3×3, a 1×1
    narrowing, beside a 1×1 skip) summed into the one 3×3 convolution it equals; other tensors as they are."""
    merged: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name == "no_norm":
            continue
        if name.endswith(".sk.weight"):
            layer = name[: -len(".sk.weight")]
            merged[f"{layer}.weight"], merged[f"{layer}.bias"] = _summed(state, layer)
        elif ".sk." not in name and ".conv." not in name:
            merged[name.replace("upsampler.0.", "upsampler.")] = tensor
    return merged


def _summed(state: dict[str, torch.Tensor], layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One 3×3 convolution equal to `layer`'s chain and skip: the chain's kernel is the widening 1×1, the 3×3 and
    the narrowing 1×1 multiplied through; its bias carries the first two biases through what follows."""
    def weights(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return state[f"{layer}.{name}.weight"].double(), state[f"{layer}.{name}.bias"].double()

    (widen, widen_bias), (middle, middle_bias), (narrow, narrow_bias) = (weights(f"conv.{n}") for n in range(3))
    skip, skip_bias = weights("sk")
    narrow, widen, skip = narrow[:, :, 0, 0], widen[:, :, 0, 0], skip[:, :, 0, 0]
    kernel = torch.einsum("on,nmyx,mi->oiyx", narrow, middle, widen)
    kernel[:, :, 1, 1] += skip
    bias = narrow @ (middle.sum((2, 3)) @ widen_bias + middle_bias) + narrow_bias + skip_bias
    return kernel.float(), bias.float()


class PLKSRNet(nn.Module):
    """RealPLKSR: a 3×3 convolution, blocks (a group norm after, or a layer norm before; a doubled 3×3 channel
    mixer with Mish; a large-kernel convolution over the first `split` channels; element-wise attention; a 1×1
    refinement; added to the block's input), a 3×3 convolution making 3·scale² channels to which the picture's
    pixels, each repeated scale² times, are added, then a pixel shuffle or DySample."""

    def __init__(self, layout: UpscalerLayout) -> None:
        super().__init__()
        shuffled = 3 * layout.scale ** 2
        self.feats = nn.Sequential(nn.Conv2d(3, layout.features, 3, padding=1),
                                   *(_LargeKernelBlock(layout) for _ in range(layout.blocks)),
                                   nn.Identity(),  # the dropout of training
                                   nn.Conv2d(layout.features, shuffled, 3, padding=1))
        self.scale = layout.scale
        self.to_img = DySample(layout.scale) if layout.dysample else nn.PixelShuffle(layout.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_img(self.feats(x) + torch.repeat_interleave(x, self.scale ** 2, dim=1))


class _LargeKernel(nn.Module):
    def __init__(self, split: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(split, split, kernel, padding=kernel // 2)
        self.split = split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x[:, : self.split]), x[:, self.split:]], 1)


class _Attention(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(features, features, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.f(x)


class _ChannelsLayerNorm(nn.Module):
    """A layer norm over the channels of each pixel (RealPLKSR's, eps 1e-6)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(features)), nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(1, keepdim=True)
        normed = centred / torch.sqrt(centred.pow(2).mean(1, keepdim=True) + 1e-6)
        return self.weight[:, None, None] * normed + self.bias[:, None, None]


class _LargeKernelBlock(nn.Module):
    def __init__(self, layout: UpscalerLayout) -> None:
        super().__init__()
        features = layout.features
        self.layer_norm = _ChannelsLayerNorm(features) if layout.layer_norm else nn.Identity()
        self.channel_mixer = nn.Sequential(nn.Conv2d(features, 2 * features, 3, padding=1), nn.Mish(),
                                           nn.Conv2d(2 * features, features, 3, padding=1))
        self.lk = _LargeKernel(layout.split, layout.kernel)
        self.attn = _Attention(features) if layout.attention else nn.Identity()
        self.refine = nn.Conv2d(features, features, 1)
        self.norm = nn.Identity() if layout.layer_norm else nn.GroupNorm(4, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lk(self.channel_mixer(self.layer_norm(x)))
        return self.norm(self.refine(self.attn(out))) + x


class DySample(nn.Module):
    """DySample ("Learning to Upsample by Learning to Sample", 2023) as RealPLKSR ends with it: each output pixel
    samples its input (in groups of channels, bilinearly) at the position a pixel shuffle would take it from, moved
    by a learned offset; a 1×1 convolution then makes the three colours."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        channels, self.groups, self.scale = 3 * scale ** 2, dysample_groups(scale), scale
        offsets = 2 * self.groups * scale ** 2
        self.offset = nn.Conv2d(channels, offsets, 1)
        self.scope = nn.Conv2d(channels, offsets, 1, bias=False)
        self.end_conv = nn.Conv2d(channels, 3, 1)
        self.register_buffer("init_pos", torch.zeros(1, offsets, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        offset = self.offset(x) * torch.sigmoid(self.scope(x)) * 0.5 + self.init_pos
        rows = torch.arange(height, device=x.device, dtype=x.dtype) + 0.5
        columns = torch.arange(width, device=x.device, dtype=x.dtype) + 0.5
        grid = torch.stack([columns.expand(height, width), rows[:, None].expand(height, width)])  # x, y
        size = torch.tensor([width, height], device=x.device, dtype=x.dtype).view(1, 2, 1, 1, 1)
        where = 2 * (grid.view(1, 2, 1, height, width) + offset.view(batch, 2, -1, height, width)) / size - 1
        where = functional.pixel_shuffle(where.reshape(batch, -1, height, width), self.scale)
        where = where.view(batch, 2, self.groups, self.scale * height, self.scale * width).permute(0, 2, 3, 4, 1)
        sampled = functional.grid_sample(x.reshape(batch * self.groups, -1, height, width),
                                         where.reshape(batch * self.groups, self.scale * height, self.scale * width, 2),
                                         mode="bilinear", align_corners=False, padding_mode="border")
        return self.end_conv(sampled.view(batch, -1, self.scale * height, self.scale * width))
