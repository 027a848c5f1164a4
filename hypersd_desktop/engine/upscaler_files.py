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

Every layout is renamed to one (BasicSR's names; `body.N` for the Compact) and checked against the shapes its
layout implies, so a file that would not load is refused when it is imported, not when a Hires fix runs.
Other architectures (SwinIR, DAT, HAT, SPAN …), ESRGAN+ and 1× restoration models are not run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ESRGAN = "ESRGAN"
COMPACT = "Real-ESRGAN Compact"
RDB_CONVS = 5  # the convolutions of one residual dense block; each of an RRDB's three reads all before it
_PREFIXES = ("params_ema.", "params.", "module.")  # BasicSR's training wrappers, DataParallel's
_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
_BSRGAN_RDB = re.compile(r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)")
_OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")
_OLD_LAYER = re.compile(r"model\.(\d+)\.(weight|bias)")
_UP = re.compile(r"(?:conv_up|upconv)(\d+)\.(weight|bias)")
_COMPACT = re.compile(r"body\.(\d+)\.(weight|bias)")


@dataclass(frozen=True)
class UpscalerLayout:
    """What an upscaler file holds, read off its weights."""

    family: str  # ESRGAN or COMPACT
    scale: int  # how many times larger, each side, its output is than its input
    features: int
    blocks: int  # ESRGAN: its RRDB blocks (23 in most); Compact: its convolutions between the first and the last
    growth: int = 0  # ESRGAN: the channels each dense convolution adds
    doublings: int = 0  # ESRGAN: its enlarging layers, each doubling the picture
    unshuffle: int = 1  # ESRGAN: the picture is folded by this (a pixel unshuffle) before the first layer

    @property
    def description(self) -> str:
        """"ESRGAN ×4 (23 blocks)", "Real-ESRGAN Compact ×4 (32 convolutions)"."""
        parts = f"{self.blocks} block{'s' * (self.blocks != 1)}" if self.family == ESRGAN else \
            f"{self.blocks} convolution{'s' * (self.blocks != 1)}"
        return f"{self.family} ×{self.scale} ({parts})"


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
    ESRGAN or Compact upscaler this app runs (another architecture, ESRGAN+, a 1× model, a file that does not add
    up)."""
    names = canonical_names(shapes)
    if not names:
        return None
    canonical = {name: tuple(shapes[key]) for name, key in names.items()}
    layout = (_esrgan_layout if "conv_first.weight" in canonical else _compact_layout)(canonical)
    if layout is None or layout.scale < 2 or canonical != expected_shapes(layout):
        return None
    return layout


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


def expected_shapes(layout: UpscalerLayout) -> dict[str, tuple[int, ...]]:
    """Every tensor a file of `layout` holds, by its canonical name, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, out: int, into: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (out, into, 3, 3), (out,)

    features = layout.features
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
