"""Upscaler weights as people have them, read from tensor names and shapes alone (no torch).

Nearly every upscaler people pair with a Hires fix is one of two architectures:

- ESRGAN's RRDBNet, in three key layouts: ESRGAN's own (`model.0.weight`, `model.1.sub.0.RDB1.conv1.0.weight`),
  which most community files keep (4x-UltraSharp, 4x_NMKD-Siax, 4x_foolhardy_Remacri, 4x-AnimeSharp);
  BasicSR's (`conv_first`, `body.0.rdb1.conv1`), Real-ESRGAN's (RealESRGAN_x4plus, its anime_6B and x2plus); and
  BSRGAN's and RealSR's (`RRDB_trunk.0.RDB1.conv1`, `trunk_conv`, `upconv1`). Each enlarging layer doubles the
  picture; Real-ESRGAN's x2 model first folds the picture into four times the channels (a pixel unshuffle), so its
  two doublings make it twice as large.
- Real-ESRGAN's SRVGGNetCompact (realesr-general-x4v3, realesr-animevideov3): 3×3 convolutions with PReLUs at the
  picture's own size, ending in a pixel shuffle, added to the picture enlarged by nearest neighbour.

Two fast architectures of the newer community models (2024 on, traiNNer-redux and neosr's) run too:

- SPAN (Swift Parameter-free Attention Network): six blocks of re-parameterised convolutions (`conv_1`, `block_1`
  … `block_6` with `c1_r` … `c3_r`, `conv_cat`, `conv_2`, `upsampler.0`). Each such convolution is kept as it was
  trained, a 1×1, 3×3, 1×1 chain beside a 1×1 skip, which add up to one 3×3 convolution (its `eval_conv`, not
  needed: it is computed from the others, as at inference). A `no_norm` tensor marks a model that takes the
  picture as it is rather than centred and times 255.
- RealPLKSR (Partial Large Kernel CNNs): blocks of a channel mixer, a large-kernel convolution over part of the
  channels, element-wise attention and a refinement (`feats.N`), the picture's pixels repeated and added before
  the pixel shuffle, or DySample's learned resampling (`to_img`) instead of it.

Three transformers run too, for the detail they keep (slowly on a CPU):

- DAT (Dual Aggregation Transformer; DAT, DAT-S, DAT-light and DAT2, as OpenModelDB's 4xNomos8kDAT and the like):
  residual groups (`layers.N`) of blocks that alternate attention within windows of the picture and attention
  across its channels, each followed by a gated feed-forward layer; a convolution after the groups, then pixel
  shuffles. The windows' size is read from the shapes of the position tables the file carries.
- HAT (Hybrid Attention Transformer; HAT-S, HAT, HAT-L, Real_HAT_GAN): groups (`layers.N.residual_group`) of
  window-attention blocks, every other one shifted, each with a convolution branch and channel attention beside it,
  and an overlapping cross-attention at the end of each group; then pixel shuffles. The windows' sizes are read
  from the position indexes' shapes.
- SwinIR (Liang et al. 2021; A1111's built-in SwinIR_4x is its real-world SwinIR-L): groups
  (`layers.N.residual_group`) of window-attention blocks, every other one shifted, each group ending in one
  convolution or three (`3conv`); then pixel shuffles after a convolution (classical), one pixel shuffle straight
  from the features (lightweight, `upsample.0` alone), or nearest-neighbour doublings each with a convolution
  (real-world, `conv_up1` …). The file's position indexes and shifted windows' masks (made at the training size)
  are made again from the window's size.

Every layout is renamed to one (BasicSR's names; `body.N` for the Compact; SPAN, RealPLKSR and the transformers keep
theirs) and checked against the shapes its layout implies, so a file that would not load is refused when it is
imported, not when a Hires fix runs. The CNN families' 1× models (restorations: they clean, sharpen or deblur a
picture without enlarging it; 1x-ITF-SkinDiffDetail-Lite, 1x_NMKD-… and the like) are read too; other architectures
(Swin2SR …), ESRGAN+ and the transformers' 1× models are not run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ESRGAN = "ESRGAN"
COMPACT = "Real-ESRGAN Compact"
SPAN = "SPAN"
PLKSR = "RealPLKSR"
DAT = "DAT"
ONE_TO_ONE = (ESRGAN, COMPACT, SPAN, PLKSR)  # the families whose 1× models (restorations) are run
HAT = "HAT"
SWINIR = "SwinIR"
SPAN_BLOCKS = 6
RDB_CONVS = 5  # the convolutions of one residual dense block; each of an RRDB's three reads all before it
_PREFIXES = ("params_ema.", "params.", "module.")  # BasicSR's training wrappers, DataParallel's
_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
_BSRGAN_RDB = re.compile(r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)")
_OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")
_OLD_LAYER = re.compile(r"model\.(\d+)\.(weight|bias)")
_UP = re.compile(r"(?:conv_up|upconv)(\d+)\.(weight|bias)")
_COMPACT = re.compile(r"body\.(\d+)\.(weight|bias)")
_FEATS = re.compile(r"feats\.(\d+)\.")
_DAT_BLOCK = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.")
_HAT_BLOCK = re.compile(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")
# What a SwinIR file carries that is made again from the window's size: each block's position index, and the masks
# of shifted windows at the size it was trained at
_SWINIR_DERIVED = re.compile(r"layers\.\d+\.residual_group\.blocks\.\d+\.(?:attn\.relative_position_index|attn_mask)")
# What a DAT file carries besides its weights: tables computed from the window's size (made again when it loads),
# the masks of shifted windows at the size it was trained at, and batch norms' counts of training steps
_DAT_DERIVED = re.compile(r".*\.(?:attn_mask_[01]|num_batches_tracked)")


@dataclass(frozen=True)
class DATShape:
    """The shape of a DAT model beyond its channels and scale."""

    depths: tuple[int, ...]  # the blocks of each residual group
    heads: tuple[int, ...]  # the attention heads of each group
    window: tuple[int, int]  # the spatial attention's window, height × width (the second branch's is turned)
    hidden: int  # the feed-forward layers' width
    qkv_bias: bool
    three_convs: bool  # a residual group ends in three convolutions (a quarter as wide between) instead of one
    shuffle_features: int  # the channels before the pixel shuffles; 0: one convolution straight into them


@dataclass(frozen=True)
class HATShape:
    """The shape of a HAT model beyond its channels and scale."""

    depths: tuple[int, ...]  # the window-attention blocks of each group
    heads: tuple[int, ...]  # the attention heads of each group
    window: int  # the side of the square attention windows
    overlap_window: int  # the side of the windows the overlapping cross-attention reads (the window and half, mostly)
    hidden: int  # the blocks' MLP width
    overlap_hidden: int  # the cross-attention's MLP width
    compressed: int  # the channels inside a block's convolution branch
    squeezed: int  # the channels inside its channel attention
    qkv_bias: bool
    patch_norm: bool  # a layer norm on the features as they become tokens
    body_convs: bool  # a convolution ends each group and the body (else nothing does)
    shuffle_features: int  # the channels before the pixel shuffles


@dataclass(frozen=True)
class SwinIRShape:
    """The shape of a SwinIR model beyond its channels and scale."""

    depths: tuple[int, ...]  # the window-attention blocks of each group
    heads: tuple[int, ...]  # the attention heads of each group
    window: int  # the side of the square attention windows
    hidden: int  # the blocks' MLP width
    patch_norm: bool  # a layer norm on the features as they become tokens
    three_convs: bool  # a group (and the body) ends in three convolutions (a quarter as wide between) instead of one
    upsampler: str  # PIXELSHUFFLE, DIRECT or NEAREST (see the module's description)
    shuffle_features: int  # the channels before the enlarging layers (none: 0, for DIRECT)

    @property
    def picture_range(self) -> float:
        """What the picture (centred on DIV2K's mean) is multiplied by first: 255 for the models of 7-pixel windows,
        1 for the rest, as spandrel reads them."""
        return 255.0 if self.window == 7 else 1.0


PIXELSHUFFLE, DIRECT, NEAREST = "pixelshuffle", "pixelshuffledirect", "nearest+conv"  # SwinIR's upsamplers


def dat_shifted(group: int, block: int) -> bool:
    """Whether a DAT block's windows are shifted by half a window: every fourth spatial block, from the second in
    even groups and the first in odd ones."""
    return (group % 2 == 0 and block > 0 and (block - 2) % 4 == 0) or (group % 2 == 1 and block % 4 == 0)


@dataclass(frozen=True)
class UpscalerLayout:
    """What an upscaler file holds, read off its weights."""

    family: str  # ESRGAN, COMPACT, SPAN or PLKSR
    scale: int  # how many times larger, each side, its output is than its input
    features: int
    blocks: int  # ESRGAN: its RRDB blocks (23 in most); Compact: its convolutions between the first and the last
    growth: int = 0  # ESRGAN: the channels each dense convolution adds
    doublings: int = 0  # ESRGAN: its enlarging layers, each doubling the picture
    unshuffle: int = 1  # ESRGAN: the picture is folded by this (a pixel unshuffle) before the first layer
    normalized: bool = True  # SPAN: the picture is centred on ImageNet's mean and times 255 before the first layer
    kernel: int = 0  # RealPLKSR: the large kernel's size (17 in most)
    split: int = 0  # RealPLKSR: the channels the large kernel convolves (a quarter in most)
    attention: bool = True  # RealPLKSR: element-wise attention in each block
    layer_norm: bool = False  # RealPLKSR: a layer norm in front of each block instead of a group norm after it
    dysample: bool = False  # RealPLKSR: DySample's learned resampling instead of the pixel shuffle
    dat: DATShape | None = None  # DAT: the rest of its shape
    hat: HATShape | None = None  # HAT: the rest of its shape
    swinir: SwinIRShape | None = None  # SwinIR: the rest of its shape

    @property
    def description(self) -> str:
        """"ESRGAN ×4 (23 blocks)", "Real-ESRGAN Compact ×4 (32 convolutions)", "SPAN ×4 (48 channels)",
        "RealPLKSR ×4 (28 blocks, DySample)"."""
        if self.family == COMPACT:
            parts = f"{self.blocks} convolution{'s' * (self.blocks != 1)}"
        elif (transformer := self.dat or self.hat or self.swinir) is not None:
            groups, depths = len(transformer.depths), "/".join(str(depth) for depth in sorted(set(transformer.depths)))
            parts = f"{groups} group{'s' * (groups != 1)} of {depths} blocks, {self.features} channels"
        elif self.family == SPAN:
            parts = f"{self.features} channels"
        else:
            parts = f"{self.blocks} block{'s' * (self.blocks != 1)}" + (", DySample" * self.dysample)
        return f"{self.family} ×{self.scale} ({parts})"

    @property
    def whole_tile(self) -> bool:
        """Whether each pixel of its output depends on all of the picture it is given (RealPLKSR's group norms, DAT's
        attention across channels), so that its output depends on the tiles it runs in. (HAT's channel attention
        pools the whole tile too, but is added at a hundredth of its strength.)"""
        return self.family == PLKSR and not self.layer_norm or self.family == DAT

    @property
    def half_ok(self) -> bool:
        """Whether it holds in fp16: RealPLKSR's group norms, DAT, HAT and SwinIR do not (spandrel runs them in fp32
        too)."""
        return not self.whole_tile and self.family not in (HAT, SWINIR)


def _without_prefix(keys: Iterable[str]) -> dict[str, str]:
    keys = list(keys)
    if any(key.startswith("params_ema.") for key in keys):  # BasicSR's training state: its EMA weights are the model
        keys = [key for key in keys if key.startswith("params_ema.")]
    for prefix in _PREFIXES:
        if keys and all(key.startswith(prefix) for key in keys):
            return {key[len(prefix):]: key for key in keys}
    return {key: key for key in keys}


def canonical_names(keys: Iterable[str]) -> dict[str, str]:
    """Each tensor of an ESRGAN or Compact file under BasicSR's name (canonical name → the file's key); an empty
    dict for a file in neither layout."""
    named = _without_prefix(keys)
    if "model.0.weight" in named and "model.1.sub.0.RDB1.conv1.0.weight" in named:
        return _from_esrgan_layout(named)
    if "conv_first.weight" in named and ("body.0.rdb1.conv1.weight" in named
                                         or "RRDB_trunk.0.RDB1.conv1.weight" in named):
        renamed = {}
        for key, original in named.items():
            key = _BSRGAN_RDB.sub(r"body.\1.rdb\2.conv\3.\4", key)
            key = {"trunk_conv.weight": "conv_body.weight", "trunk_conv.bias": "conv_body.bias",
                   "HRconv.weight": "conv_hr.weight", "HRconv.bias": "conv_hr.bias"}.get(key, key)
            key = _UP.sub(r"conv_up\1.\2", key)
            renamed[key] = original
        return renamed
    if "body.0.weight" in named and "body.1.weight" in named and all(_COMPACT.fullmatch(key) for key in named):
        return named
    if "conv_1.sk.weight" in named and "block_1.c1_r.sk.weight" in named:
        return {key: original for key, original in named.items() if ".eval_conv." not in key}  # made from the rest
    if "feats.0.weight" in named and "feats.1.channel_mixer.0.weight" in named:
        return named
    if "conv_first.weight" in named and "before_RG.1.weight" in named:
        return {key: original for key, original in named.items() if not _DAT_DERIVED.fullmatch(key)}
    if "conv_first.weight" in named and "layers.0.residual_group.overlap_attn.qkv.weight" in named:
        return named
    if "conv_first.weight" in named and "layers.0.residual_group.blocks.0.mlp.fc1.weight" in named:
        return {key: original for key, original in named.items() if not _SWINIR_DERIVED.fullmatch(key)}
    return {}


def _from_esrgan_layout(named: dict[str, str]) -> dict[str, str]:
    """ESRGAN's own layout: `model` is a sequence of the first convolution, the trunk (`model.1.sub`: the blocks,
    then one convolution), and after it the enlarging convolutions (each after an upsample, before an activation),
    the high-resolution convolution and the last, numbered with the layers between them."""
    trunk = max((int(match[1]) for key in named if (match := _OLD_TRUNK.fullmatch(key))), default=None)
    later = sorted({int(match[1]) for key in named if (match := _OLD_LAYER.fullmatch(key)) and int(match[1]) >= 2})
    names = {layer: f"conv_up{n}" for n, layer in enumerate(later[:-2], start=1)}
    if len(later) >= 2:
        names.update({later[-2]: "conv_hr", later[-1]: "conv_last"})
    renamed = {}
    for key, original in named.items():
        if (match := _OLD_RDB.fullmatch(key)) is not None:
            renamed[f"body.{match[1]}.rdb{match[2]}.conv{match[3]}.{match[4]}"] = original
        elif (match := _OLD_TRUNK.fullmatch(key)) is not None and int(match[1]) == trunk:
            renamed[f"conv_body.{match[2]}"] = original
        elif (match := _OLD_LAYER.fullmatch(key)) is not None and int(match[1]) in names:
            renamed[f"{names[int(match[1])]}.{match[2]}"] = original
        elif key.startswith("model.0."):
            renamed[f"conv_first.{key.rsplit('.', 1)[1]}"] = original
        else:
            renamed[key] = original  # not an ESRGAN layer: the shape check refuses the file
    return renamed


def upscaler_layout(shapes: Mapping[str, tuple[int, ...]]) -> UpscalerLayout | None:
    """The layout of an upscaler file from its tensors' shapes (by the file's keys), or None when the file is no
    upscaler this app runs (another architecture, ESRGAN+, a transformer's 1× model, a file that does not add
    up)."""
    names = canonical_names(shapes)
    if not names:
        return None
    canonical = {name: tuple(shapes[key]) for name, key in names.items()}
    read = _dat_layout if "before_RG.1.weight" in canonical else _hat_layout if "relative_position_index_SA" in \
        canonical else _swinir_layout if "layers.0.residual_group.blocks.0.mlp.fc1.weight" in canonical \
        else _esrgan_layout if "conv_first.weight" in canonical \
        else _span_layout if "conv_1.sk.weight" in canonical else _plksr_layout if "feats.0.weight" in canonical \
        else _compact_layout
    layout = read(canonical)
    least = 1 if layout is not None and layout.family in ONE_TO_ONE else 2
    if layout is None or layout.scale < least or canonical != expected_shapes(layout):
        return None
    return layout


def _shuffled_scale(channels: int) -> int | None:
    """The scale of a last layer making `channels` for a pixel shuffle into three: 3·scale² of them."""
    scale = math.isqrt(channels // 3)
    return scale if 3 * scale * scale == channels else None


def _esrgan_layout(shapes: dict[str, tuple[int, ...]]) -> UpscalerLayout | None:
    first, last, dense = (shapes.get(key, ()) for key in ("conv_first.weight", "conv_last.weight",
                                                          "body.0.rdb1.conv1.weight"))
    if len(first) != 4 or len(last) != 4 or len(dense) != 4 or last[0] != 3:
        return None
    unshuffle = {3: 1, 12: 2, 48: 4}.get(first[1])
    doublings = sum(1 for key in shapes if re.fullmatch(r"conv_up\d+\.weight", key))
    if unshuffle is None or 2 ** doublings % unshuffle:
        return None
    blocks = sum(1 for key in shapes if re.fullmatch(r"body\.\d+\.rdb1\.conv1\.weight", key))
    return UpscalerLayout(ESRGAN, 2 ** doublings // unshuffle, first[0], blocks, dense[0], doublings, unshuffle)


def _compact_layout(shapes: dict[str, tuple[int, ...]]) -> UpscalerLayout | None:
    layers = sorted({int(match[1]) for key in shapes if (match := _COMPACT.fullmatch(key))})
    first, last = shapes.get("body.0.weight", ()), shapes.get(f"body.{layers[-1]}.weight", ())
    if len(first) != 4 or len(last) != 4 or first[1] != 3 or layers[-1] % 2 or layers[-1] < 2:
        return None
    scale = math.isqrt(last[0] // 3)
    if 3 * scale * scale != last[0]:
        return None
    return UpscalerLayout(COMPACT, scale, first[0], layers[-1] // 2 - 1)


def _span_layout(shapes: dict[str, tuple[int, ...]]) -> UpscalerLayout | None:
    first, last = shapes.get("conv_1.sk.weight", ()), shapes.get("upsampler.0.weight", ())
    if len(first) != 4 or len(last) != 4 or first[1] != 3 or (scale := _shuffled_scale(last[0])) is None:
        return None
    return UpscalerLayout(SPAN, scale, first[0], SPAN_BLOCKS, normalized="no_norm" not in shapes)


def _plksr_layout(shapes: dict[str, tuple[int, ...]]) -> UpscalerLayout | None:
    first, large = shapes.get("feats.0.weight", ()), shapes.get("feats.1.lk.conv.weight", ())
    layers = max((int(match[1]) for key in shapes if (match := _FEATS.match(key))), default=0)
    last = shapes.get(f"feats.{layers}.weight", ())
    if len(first) != 4 or len(large) != 4 or len(last) != 4 or first[1] != 3 or layers < 3:
        return None
    scale = _shuffled_scale(last[0])
    if scale is None:
        return None
    return UpscalerLayout(PLKSR, scale, first[0], layers - 2, kernel=large[-1], split=large[0],
                          attention="feats.1.attn.f.0.weight" in shapes,
                          layer_norm="feats.1.layer_norm.weight" in shapes, dysample="to_img.init_pos" in shapes)


def _dat_layout(shapes: dict[str, tuple[int, ...]]) -> UpscalerLayout | None:
    first, fc1 = shapes.get("conv_first.weight", ()), shapes.get("layers.0.blocks.0.ffn.fc1.weight", ())
    table, index = (shapes.get(f"layers.0.blocks.0.attn.attns.0.{name}", ()) for name in ("rpe_biases",
                                                                                          "relative_position_index"))
    if len(first) != 4 or first[1] != 3 or len(fc1) != 2 or len(table) != 2 or len(index) != 2:
        return None
    blocks = sorted({(int(match[1]), int(match[2])) for key in shapes if (match := _DAT_BLOCK.match(key))})
    depths = tuple(1 + max(block for group, block in blocks if group == n) for n in range(blocks[-1][0] + 1))
    heads = tuple(shapes.get(f"layers.{n}.blocks.1.attn.temperature", (0,))[0] if depth > 1 else
                  2 * shapes.get(f"layers.{n}.blocks.0.attn.attns.0.pos.pos3.2.weight", (0,))[0]
                  for n, depth in enumerate(depths))
    window = _window(index[0], table[0])
    channels = first[0]  # in halves for the two windows, each in half the heads; the position network 1/32 as wide
    if window is None or channels < 32 or any(count < 2 or channels % count or channels // 2 % (count // 2)
                                              for count in heads):
        return None
    if "conv_last.weight" in shapes:  # convolutions into 64 channels, then ×2 shuffles (or one ×3)
        before, up = shapes.get("conv_before_upsample.0.weight", ()), shapes.get("upsample.0.weight", ())
        doublings = sum(1 for key in shapes if re.fullmatch(r"upsample\.\d+\.weight", key))
        if len(before) != 4 or len(up) != 4:
            return None
        scale, shuffled = (3, before[0]) if up[0] == 9 * before[0] and doublings == 1 else (2 ** doublings, before[0])
    else:
        direct = shapes.get("upsample.0.weight", ())
        scale, shuffled = (_shuffled_scale(direct[0]) if len(direct) == 4 else None), 0
        if scale is None:
            return None
    shape = DATShape(depths, heads, window, fc1[0], "layers.0.blocks.0.attn.qkv.bias" in shapes,
                     "conv_after_body.4.weight" in shapes, shuffled)
    return UpscalerLayout(DAT, scale, first[0], sum(depths), dat=shape)


def _hat_layout(shapes: dict[str, tuple[int, ...]]) -> UpscalerLayout | None:
    first, last = shapes.get("conv_first.weight", ()), shapes.get("conv_last.weight", ())
    own, overlap = shapes.get("relative_position_index_SA", ()), shapes.get("relative_position_index_OCA", ())
    block, cross = "layers.0.residual_group.blocks.0", "layers.0.residual_group.overlap_attn"
    sizes = [shapes.get(f"{block}.{name}", ()) for name in ("mlp.fc1.weight", "conv_block.cab.0.weight",
                                                            "conv_block.cab.3.attention.1.weight")]
    crossed = shapes.get(f"{cross}.mlp.fc1.weight", ())
    if len(first) != 4 or first[1] != 3 or len(last) != 4 or len(own) != 2 or len(overlap) != 2 or \
            not all(sizes) or not crossed:
        return None
    window, overlap_window = math.isqrt(own[0]), math.isqrt(overlap[1])
    groups = sorted({(int(match[1]), int(match[2])) for key in shapes if (match := _HAT_BLOCK.match(key))})
    if window * window != own[0] or overlap_window ** 2 != overlap[1] or (overlap_window - window) % 2 or not groups:
        return None
    depths = tuple(1 + max(n for group, n in groups if group == index) for index in range(groups[-1][0] + 1))
    heads = tuple(shapes.get(f"layers.{n}.residual_group.overlap_attn.relative_position_bias_table", (0, 0))[1]
                  for n in range(len(depths)))
    channels, shuffled = first[0], last[1]
    if any(not count or channels % count for count in heads):
        return None
    doublings = sum(1 for key in shapes if re.fullmatch(r"upsample\.\d+\.weight", key))
    up = shapes.get("upsample.0.weight", ())
    scale = 3 if len(up) == 4 and up[0] == 9 * shuffled and doublings == 1 else 2 ** doublings
    shape = HATShape(depths, heads, window, overlap_window, sizes[0][0], crossed[0], sizes[1][0], sizes[2][0],
                     f"{block}.attn.qkv.bias" in shapes, "patch_embed.norm.weight" in shapes,
                     "conv_after_body.weight" in shapes, shuffled)
    return UpscalerLayout(HAT, scale, channels, sum(depths), hat=shape)


def _swinir_layout(shapes: dict[str, tuple[int, ...]]) -> UpscalerLayout | None:
    first, table = shapes.get("conv_first.weight", ()), shapes.get("layers.0.residual_group.blocks.0.attn."
                                                                   "relative_position_bias_table", ())
    hidden = shapes.get("layers.0.residual_group.blocks.0.mlp.fc1.weight", ())
    groups = sorted({(int(match[1]), int(match[2])) for key in shapes if (match := _HAT_BLOCK.match(key))})
    if len(first) != 4 or first[1] != 3 or len(table) != 2 or len(hidden) != 2 or not groups:
        return None
    window = (math.isqrt(table[0]) + 1) // 2
    if (2 * window - 1) ** 2 != table[0]:
        return None
    depths = tuple(1 + max(n for group, n in groups if group == index) for index in range(groups[-1][0] + 1))
    heads = tuple(shapes.get(f"layers.{n}.residual_group.blocks.0.attn.relative_position_bias_table", (0, 0))[1]
                  for n in range(len(depths)))
    channels = first[0]
    if any(not count or channels % count for count in heads):
        return None
    before = shapes.get("conv_before_upsample.0.weight", ())
    if before and "conv_up1.weight" in shapes:
        upsampler, scale = NEAREST, 2 ** sum(1 for key in shapes if re.fullmatch(r"conv_up\d+\.weight", key))
    elif before:
        doublings = sum(1 for key in shapes if re.fullmatch(r"upsample\.\d+\.weight", key))
        up = shapes.get("upsample.0.weight", ())
        upsampler, scale = PIXELSHUFFLE, 3 if len(up) == 4 and up[0] == 9 * before[0] and doublings == 1 \
            else 2 ** doublings
    else:
        up = shapes.get("upsample.0.weight", ())
        upsampler, scale = DIRECT, (_shuffled_scale(up[0]) or 0) if len(up) == 4 else 0
    shape = SwinIRShape(depths, heads, window, hidden[0], "patch_embed.norm.weight" in shapes,
                        "conv_after_body.0.weight" in shapes, upsampler, before[0] if before else 0)
    return UpscalerLayout(SWINIR, scale, channels, sum(depths), swinir=shape)


def _window(cells: int, offsets: int) -> tuple[int, int] | None:
    """The window (height ≤ width, as DAT's models are made) of `cells` = h·w cells and `offsets` = (2h−1)(2w−1)
    relative positions, or None when no whole sides give both."""
    for height in range(1, math.isqrt(cells) + 1):
        width = cells // height
        if height * width == cells and (2 * height - 1) * (2 * width - 1) == offsets:
            return height, width
    return None


class _Shapes(dict):
    """Tensor shapes by name, written a layer at a time."""

    def conv(self, name: str, out: int, into: int, size: int = 3, bias: bool = True) -> None:
        self[f"{name}.weight"] = (out, into, size, size)
        if bias:
            self[f"{name}.bias"] = (out,)

    def linear(self, name: str, out: int, into: int, bias: bool = True) -> None:
        self[f"{name}.weight"] = (out, into)
        if bias:
            self[f"{name}.bias"] = (out,)

    def norm(self, name: str, channels: int, batch: bool = False) -> None:
        """A layer or group norm's scale and shift; a batch norm's running statistics too."""
        self[f"{name}.weight"] = self[f"{name}.bias"] = (channels,)
        if batch:
            self[f"{name}.running_mean"] = self[f"{name}.running_var"] = (channels,)


def expected_shapes(layout: UpscalerLayout) -> dict[str, tuple[int, ...]]:
    """Every tensor a file of `layout` holds, by its canonical name, with its shape."""
    shapes = _Shapes()
    conv = shapes.conv
    features = layout.features
    if layout.dat is not None:
        return _dat_shapes(layout)
    if layout.hat is not None:
        return _hat_shapes(layout)
    if layout.swinir is not None:
        return _swinir_shapes(layout)
    if layout.family == SPAN:
        def reparameterised(name: str, out: int, into: int) -> None:  # 1×1, 3×3, 1×1 at twice the width, a 1×1 skip
            conv(f"{name}.sk", out, into, 1)
            conv(f"{name}.conv.0", 2 * into, into, 1)
            conv(f"{name}.conv.1", 2 * out, 2 * into)
            conv(f"{name}.conv.2", out, 2 * out, 1)

        reparameterised("conv_1", features, 3)
        for block in range(1, SPAN_BLOCKS + 1):
            for n in (1, 2, 3):
                reparameterised(f"block_{block}.c{n}_r", features, features)
        conv("conv_cat", features, 4 * features, 1)
        reparameterised("conv_2", features, features)
        conv("upsampler.0", 3 * layout.scale ** 2, features)
        if not layout.normalized:
            shapes["no_norm"] = (1,)
        return shapes
    if layout.family == PLKSR:
        conv("feats.0", features, 3)
        for block in range(1, layout.blocks + 1):
            name = f"feats.{block}"
            norm = f"{name}.layer_norm" if layout.layer_norm else f"{name}.norm"
            shapes[f"{norm}.weight"] = shapes[f"{norm}.bias"] = (features,)
            conv(f"{name}.channel_mixer.0", 2 * features, features)
            conv(f"{name}.channel_mixer.2", features, 2 * features)
            conv(f"{name}.lk.conv", layout.split, layout.split, layout.kernel)
            if layout.attention:
                conv(f"{name}.attn.f.0", features, features)
            conv(f"{name}.refine", features, features, 1)
        shuffled = 3 * layout.scale ** 2
        conv(f"feats.{layout.blocks + 2}", shuffled, features)  # after the blocks, a dropout (no weights)
        if layout.dysample:
            offsets = 2 * dysample_groups(layout.scale) * layout.scale ** 2
            shapes["to_img.init_pos"] = (1, offsets, 1, 1)
            conv("to_img.offset", offsets, shuffled, 1)
            conv("to_img.scope", offsets, shuffled, 1, bias=False)
            conv("to_img.end_conv", 3, shuffled, 1)
        return shapes
    if layout.family == COMPACT:
        conv("body.0", features, 3)
        for n in range(layout.blocks + 1):
            shapes[f"body.{2 * n + 1}.weight"] = (features,)  # a PReLU's slopes
            if n < layout.blocks:
                conv(f"body.{2 * n + 2}", features, features)
        conv(f"body.{2 * layout.blocks + 2}", 3 * layout.scale ** 2, features)
        return shapes
    conv("conv_first", features, 3 * layout.unshuffle ** 2)
    for block in range(layout.blocks):
        for rdb in (1, 2, 3):
            for n in range(1, RDB_CONVS + 1):
                conv(f"body.{block}.rdb{rdb}.conv{n}", layout.growth if n < RDB_CONVS else features,
                     features + (n - 1) * layout.growth)
    conv("conv_body", features, features)
    for n in range(1, layout.doublings + 1):
        conv(f"conv_up{n}", features, features)
    conv("conv_hr", features, features)
    conv("conv_last", 3, features)
    return shapes


def _dat_shapes(layout: UpscalerLayout) -> dict[str, tuple[int, ...]]:
    """Every tensor of a DAT file but those `canonical_names` leaves out (`_DAT_DERIVED`)."""
    shape, features = layout.dat, layout.features
    shapes = _Shapes()

    def gates(name: str) -> None:  # a depth-wise convolution beside the attention, and the two maps they trade
        shapes.conv(f"{name}.dwconv.0", features, 1)
        shapes.norm(f"{name}.dwconv.1", features, batch=True)
        shapes.conv(f"{name}.channel_interaction.1", features // 8, features, 1)
        shapes.norm(f"{name}.channel_interaction.2", features // 8, batch=True)
        shapes.conv(f"{name}.channel_interaction.4", features, features // 8, 1)
        shapes.conv(f"{name}.spatial_interaction.0", features // 16, features, 1)
        shapes.norm(f"{name}.spatial_interaction.1", features // 16, batch=True)
        shapes.conv(f"{name}.spatial_interaction.3", 1, features // 16, 1)

    height, width = shape.window
    shapes.conv("conv_first", features, 3)
    shapes.norm("before_RG.1", features)
    for group, (depth, heads) in enumerate(zip(shape.depths, shape.heads)):
        for block in range(depth):
            name = f"layers.{group}.blocks.{block}"
            shapes.norm(f"{name}.norm1", features)
            shapes.norm(f"{name}.norm2", features)
            shapes.linear(f"{name}.attn.qkv", 3 * features, features, shape.qkv_bias)
            shapes.linear(f"{name}.attn.proj", features, features)
            gates(f"{name}.attn")
            if block % 2:
                shapes[f"{name}.attn.temperature"] = (heads, 1, 1)
            else:
                positions = (features // 2) // 4 // 4
                for branch in (0, 1):
                    table = f"{name}.attn.attns.{branch}"
                    shapes[f"{table}.rpe_biases"] = ((2 * height - 1) * (2 * width - 1), 2)
                    shapes[f"{table}.relative_position_index"] = (height * width, height * width)
                    shapes.linear(f"{table}.pos.pos_proj", positions, 2)
                    for n in (1, 2, 3):
                        shapes.norm(f"{table}.pos.pos{n}.0", positions)
                        shapes.linear(f"{table}.pos.pos{n}.2", positions if n < 3 else heads // 2, positions)
            shapes.linear(f"{name}.ffn.fc1", shape.hidden, features)
            shapes.norm(f"{name}.ffn.sg.norm", shape.hidden // 2)
            shapes.conv(f"{name}.ffn.sg.conv", shape.hidden // 2, 1)
            shapes.linear(f"{name}.ffn.fc2", features, shape.hidden // 2)
        _residual_convs(shapes, f"layers.{group}.conv", features, shape.three_convs)
    shapes.norm("norm", features)
    _residual_convs(shapes, "conv_after_body", features, shape.three_convs)
    if shape.shuffle_features:
        shapes.conv("conv_before_upsample.0", shape.shuffle_features, features)
        _shuffles(shapes, layout.scale, shape.shuffle_features)
        shapes.conv("conv_last", 3, shape.shuffle_features)
    else:
        shapes.conv("upsample.0", 3 * layout.scale ** 2, features)
    return shapes


def _hat_shapes(layout: UpscalerLayout) -> dict[str, tuple[int, ...]]:
    """Every tensor of a HAT file."""
    shape, features = layout.hat, layout.features
    shapes = _Shapes()
    window, overlap = shape.window, shape.overlap_window
    shapes.conv("conv_first", features, 3)
    if shape.patch_norm:
        shapes.norm("patch_embed.norm", features)
    shapes["relative_position_index_SA"] = (window ** 2, window ** 2)
    shapes["relative_position_index_OCA"] = (window ** 2, overlap ** 2)
    for group, (depth, heads) in enumerate(zip(shape.depths, shape.heads)):
        prefix = f"layers.{group}.residual_group"
        for block in range(depth):
            name = f"{prefix}.blocks.{block}"
            shapes.norm(f"{name}.norm1", features)
            shapes[f"{name}.attn.relative_position_bias_table"] = ((2 * window - 1) ** 2, heads)
            shapes.linear(f"{name}.attn.qkv", 3 * features, features, shape.qkv_bias)
            shapes.linear(f"{name}.attn.proj", features, features)
            shapes.conv(f"{name}.conv_block.cab.0", shape.compressed, features)
            shapes.conv(f"{name}.conv_block.cab.2", features, shape.compressed)
            shapes.conv(f"{name}.conv_block.cab.3.attention.1", shape.squeezed, features, 1)
            shapes.conv(f"{name}.conv_block.cab.3.attention.3", features, shape.squeezed, 1)
            shapes.norm(f"{name}.norm2", features)
            shapes.linear(f"{name}.mlp.fc1", shape.hidden, features)
            shapes.linear(f"{name}.mlp.fc2", features, shape.hidden)
        cross = f"{prefix}.overlap_attn"
        shapes.norm(f"{cross}.norm1", features)
        shapes.linear(f"{cross}.qkv", 3 * features, features, shape.qkv_bias)
        shapes[f"{cross}.relative_position_bias_table"] = ((window + overlap - 1) ** 2, heads)
        shapes.linear(f"{cross}.proj", features, features)
        shapes.norm(f"{cross}.norm2", features)
        shapes.linear(f"{cross}.mlp.fc1", shape.overlap_hidden, features)
        shapes.linear(f"{cross}.mlp.fc2", features, shape.overlap_hidden)
        if shape.body_convs:
            shapes.conv(f"layers.{group}.conv", features, features)
    shapes.norm("norm", features)
    if shape.body_convs:
        shapes.conv("conv_after_body", features, features)
    shapes.conv("conv_before_upsample.0", shape.shuffle_features, features)
    _shuffles(shapes, layout.scale, shape.shuffle_features)
    shapes.conv("conv_last", 3, shape.shuffle_features)
    return shapes


def _swinir_shapes(layout: UpscalerLayout) -> dict[str, tuple[int, ...]]:
    """Every tensor of a SwinIR file but those made again from the window's size."""
    shape, features = layout.swinir, layout.features
    shapes = _Shapes()
    shapes.conv("conv_first", features, 3)
    if shape.patch_norm:
        shapes.norm("patch_embed.norm", features)
    for group, (depth, heads) in enumerate(zip(shape.depths, shape.heads)):
        for block in range(depth):
            name = f"layers.{group}.residual_group.blocks.{block}"
            shapes.norm(f"{name}.norm1", features)
            shapes[f"{name}.attn.relative_position_bias_table"] = ((2 * shape.window - 1) ** 2, heads)
            shapes.linear(f"{name}.attn.qkv", 3 * features, features)
            shapes.linear(f"{name}.attn.proj", features, features)
            shapes.norm(f"{name}.norm2", features)
            shapes.linear(f"{name}.mlp.fc1", shape.hidden, features)
            shapes.linear(f"{name}.mlp.fc2", features, shape.hidden)
        _residual_convs(shapes, f"layers.{group}.conv", features, shape.three_convs)
    shapes.norm("norm", features)
    _residual_convs(shapes, "conv_after_body", features, shape.three_convs)
    shuffled = shape.shuffle_features
    if shape.upsampler == DIRECT:
        shapes.conv("upsample.0", 3 * layout.scale ** 2, features)
        return shapes
    shapes.conv("conv_before_upsample.0", shuffled, features)
    if shape.upsampler == PIXELSHUFFLE:
        _shuffles(shapes, layout.scale, shuffled)
    else:
        for n in range(1, layout.scale.bit_length()):
            shapes.conv(f"conv_up{n}", shuffled, shuffled)
        shapes.conv("conv_hr", shuffled, shuffled)
    shapes.conv("conv_last", 3, shuffled)
    return shapes


def _residual_convs(shapes: _Shapes, name: str, features: int, three: bool) -> None:
    """The end of a DAT group (and of the body): one 3×3 convolution, or 3×3, 1×1, 3×3 a quarter as wide."""
    if not three:
        shapes.conv(name, features, features)
        return
    shapes.conv(f"{name}.0", features // 4, features)
    shapes.conv(f"{name}.2", features // 4, features // 4, 1)
    shapes.conv(f"{name}.4", features, features // 4)


def _shuffles(shapes: _Shapes, scale: int, features: int) -> None:
    """A transformer's enlarging convolutions, each before a pixel shuffle: one ×3, or as many ×2 as it takes."""
    if scale == 3:
        shapes.conv("upsample.0", 9 * features, features)
        return
    for n in range(scale.bit_length() - 1):
        shapes.conv(f"upsample.{2 * n}", 4 * features, features)


def dysample_groups(scale: int) -> int:
    """The groups DySample samples a RealPLKSR's channels in: four, or three at odd scales."""
    return 3 if scale % 2 else 4
