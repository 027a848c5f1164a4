"""Upscaler models (ESRGAN, Real-ESRGAN Compact, SPAN, RealPLKSR, DAT, HAT and SwinIR files; see `upscaler_files` and
`upscaler_nets`) that enlarge a picture before it is repainted: a Hires fix's first pass, an init image made larger
(Enlarge, Upscale).

As A1111 uses them: the model runs over the picture as many times as it takes to cover the size asked for (a ×4
model once for a ×1.5 Hires fix; a 1× model, which restores a picture without enlarging it, once), and the caller
fits its output to that size (Lanczos). It runs in tiles
with a margin around each, so memory stays bounded at any size; each tile keeps only its middle, so a tile's edge
never shows where the margin is wider than what a pixel of the model's output sees.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hypersd_desktop.core.errors import ModelFormatError, OutOfMemoryError
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import Tiling, upscaler_families
from hypersd_desktop.engine.devices import release_cached
from hypersd_desktop.engine.upscaler_files import DAT, HAT, SWINIR, UpscalerLayout, canonical_names, upscaler_layout
from hypersd_desktop.engine.upscaler_nets import build_upscaler

log = logging.getLogger(__name__)

TILE = 256  # input pixels a side per tile (A1111's ESRGAN default is 192)
# RealPLKSR's group norms and DAT's attention across channels take their statistics from the tile they are given, so
# each tile comes out a little differently: larger tiles (ComfyUI's default) see more of the picture and differ less
NORMED_TILE = 512
MARGIN = 32  # input pixels around each tile that the model reads but whose output is dropped
MIN_TILE = 64  # the smallest tile a pass that runs out of memory is tried again in
MAX_PASSES = 3  # a ×2 model three times makes ×8, more than any enlargement asked for (at most ×4)


def load_upscaler(path: Path) -> tuple[nn.Module, UpscalerLayout]:
    """The model in an upscaler file, in fp32 on the CPU, with its layout; `ModelFormatError` for a file that is
    none this app runs."""
    from safetensors import safe_open

    from hypersd_desktop.engine.inspect import read_header

    tensors, _ = read_header(path)
    layout = upscaler_layout({key: info.shape for key, info in tensors.items()})
    if layout is None:
        raise ModelFormatError(f"{Path(path).name} is no upscaler this app runs ({upscaler_families()}, in "
                               "safetensors).")
    names = canonical_names(tensors)
    with safe_open(str(path), framework="pt") as handle:
        state = {name: handle.get_tensor(key).float() for name, key in names.items()}
    return build_upscaler(layout, state), layout


def run_tiled(net: nn.Module, scale: int, picture: torch.Tensor, tile: int = TILE, margin: int = MARGIN,
              cancel: CancelToken | None = None, on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """`net` (enlarging `scale` times) over `picture` (1 × 3 × H × W, values 0–1, on the net's device and dtype) in
    tiles of `tile` input pixels, each read with `margin` more around it; the output as H·scale × W·scale × 3
    bytes. `on_tile(done, total)` is told after each tile."""
    height, width = picture.shape[-2:]
    out = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    tops, lefts = range(0, height, tile), range(0, width, tile)
    total = len(tops) * len(lefts)
    for n, (top, left) in enumerate(((top, left) for top in tops for left in lefts), start=1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        bottom, right = min(top + tile, height), min(left + tile, width)
        y0, x0 = max(top - margin, 0), max(left - margin, 0)
        y1, x1 = min(bottom + margin, height), min(right + margin, width)
        made = net(picture[..., y0:y1, x0:x1])[0, :, (top - y0) * scale:(bottom - y0) * scale,
                                                (left - x0) * scale:(right - x0) * scale]
        out[top * scale:bottom * scale, left * scale:right * scale] = \
            (made.float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        if on_tile is not None:
            on_tile(n, total)
    return out


def run_passes(net: nn.Module, layout: UpscalerLayout, image, passes: int, device: str, dtype: torch.dtype,
               cancel: CancelToken | None = None, on_progress: Callable[[int, int], None] | None = None,
               wraps: tuple[bool, bool] = (False, False)):
    """`image` (PIL, RGB) run through `net` `passes` times, in tiles; each pass's tiles (a later pass reads a
    larger picture) counted as one run. A pass that runs out of the device's memory runs again in tiles half as
    large, down to `MIN_TILE` (as ComfyUI's upscaling does): a transformer's attention grows fast with the tile.
    A seamless image (`wraps` across, down) is read wrapped around its edges, `MARGIN` pixels, as its tiles are
    read inside it, so the enlargement tiles as the image does."""
    from PIL import Image

    tile = NORMED_TILE if layout.whole_tile else TILE

    def tiles(n: int) -> int:
        side = layout.scale ** n
        width = image.width * side + (2 * MARGIN if wraps[0] else 0)  # a seamless image's wrapped margins too
        height = image.height * side + (2 * MARGIN if wraps[1] else 0)
        return math.ceil(width / tile) * math.ceil(height / tile)

    done = 0  # the tiles of the passes run
    n = 0
    while n < passes:
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
        across, down = (MARGIN if wraps[0] else 0), (MARGIN if wraps[1] else 0)
        if across or down:
            pixels = _wrapped(pixels, across, down)
        total = done + sum(tiles(later) for later in range(passes - n))

        def told(count: int, _total: int, before: int = done, total: int = total) -> None:
            if on_progress is not None:
                on_progress(before + count, total)

        try:
            with torch.inference_mode():
                made = run_tiled(net, layout.scale, pixels.to(device=device, dtype=dtype), tile=tile, cancel=cancel,
                                 on_tile=told)
        except torch.OutOfMemoryError:
            if tile <= MIN_TILE:
                raise OutOfMemoryError(_too_large(layout, device)) from None
            made = None  # the traceback, and the memory its frames hold, goes before the next try
        if made is None:
            log.warning("the upscaler ran out of %s memory in tiles of %d pixels; trying %d", device, tile, tile // 2)
            release_cached(device.split(":")[0])
            tile //= 2
            continue
        done += tiles(0)
        height, width = made.shape[0] - 2 * down * layout.scale, made.shape[1] - 2 * across * layout.scale
        image = Image.fromarray(made[down * layout.scale:down * layout.scale + height,
                                     across * layout.scale:across * layout.scale + width])
        n += 1
    return image


def _wrapped(pixels: torch.Tensor, across: int, down: int) -> torch.Tensor:
    """`pixels` (1 × 3 × H × W) with `across` columns of the other edge on each side and `down` rows, as if the
    picture went round (repeated where it is smaller than that)."""
    height, width = pixels.shape[-2:]
    columns = torch.arange(-across, width + across) % width
    rows = torch.arange(-down, height + down) % height
    return pixels[..., rows[:, None], columns[None, :]]


def _too_large(layout: UpscalerLayout, device: str) -> str:
    """What a person reads when an upscaler does not fit the device even in the smallest tiles."""
    where = "GPU" if device.startswith(("cuda", "mps")) else "computer"
    lighter = ("a lighter upscaler (ESRGAN, Real-ESRGAN Compact, SPAN) or Lanczos"
               if layout.family in (DAT, HAT, SWINIR) else "Lanczos")
    return (f"The upscaler ({layout.description}) ran out of the {where}'s memory even in tiles of {MIN_TILE} "
            f"pixels. Choose {lighter} in the Upscaler list, or close other programs using the {where}'s memory, "
            "and try again.")


def passes_to_cover(picture: tuple[int, int], size: tuple[int, int], scale: int) -> int:
    """How many runs of a ×`scale` model a picture needs to cover `size` (each side at least as large); a 1× model
    runs once, as A1111 runs one, and Lanczos enlarges its picture."""
    if scale == 1:
        return 1
    needed = max(size[0] / picture[0], size[1] / picture[1])
    return 0 if needed <= 1 else min(math.ceil(math.log(needed, scale) - 1e-9), MAX_PASSES)


class Upscalers:
    """The upscaler last used, kept loaded on the device it last ran on (one at a time: a Hires fix's batch
    reuses it image after image)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: tuple[tuple, nn.Module, UpscalerLayout] | None = None

    def _model(self, path: Path, device: str) -> tuple[nn.Module, UpscalerLayout, torch.dtype]:
        """The upscaler in `path` on `device`, its layout and the dtype it runs in: fp16 on CUDA (the models are
        trained in fp32 and hold in fp16, but for RealPLKSR's group norms, DAT, HAT and SwinIR), fp32 elsewhere."""
        try:
            stat = path.stat()
        except OSError:
            raise ModelFormatError(f"The upscaler {path} is gone (moved or deleted); choose another in the Upscaler "
                                   "list, or import it again in the Models tab.") from None
        key = (str(path), stat.st_size, stat.st_mtime_ns, device)
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = None  # the last one's memory goes before the next loads
            net, layout = load_upscaler(path)
            dtype = torch.float16 if device.startswith("cuda") and layout.half_ok else torch.float32
            self._loaded = (key, net.to(device=device, dtype=dtype), layout)
        net, layout = self._loaded[1], self._loaded[2]
        return net, layout, next(net.parameters()).dtype

    def enlarge(self, path: str | Path, picture, size: tuple[int, int], device: str = "cpu",
                cancel: CancelToken | None = None, on_progress: Callable[[int, int], None] | None = None,
                wraps: tuple[bool, bool] = (False, False)):
        """`picture` (PIL) enlarged by the upscaler in `path` until it covers `size`, seamless as `wraps` says
        (`run_passes`); the caller fits it to the size."""
        with self._lock:
            net, layout, dtype = self._model(Path(path), device)
            image = picture.convert("RGB")
            return run_passes(net, layout, image, passes_to_cover(image.size, size, layout.scale), device, dtype,
                              cancel, on_progress, wraps)

    @property
    def half(self) -> bool:
        """Whether the upscaler last used runs in fp16 (on CUDA, where its architecture holds in it)."""
        loaded = self._loaded
        return loaded is not None and next(loaded[1].parameters()).dtype == torch.float16

    def unload(self) -> None:
        with self._lock:
            self._loaded = None


def enlarger(upscalers: Upscalers, request, device: str, on_progress: Callable | None = None,
             cancel: CancelToken | None = None) -> Callable | None:
    """What `open_inputs` enlarges a picture with for `request`: its upscaler on `device`, its tiles reported to
    `on_progress` as a stage of their own; None for a request without one (Lanczos)."""
    from hypersd_desktop.engine.types import UPSCALE_STAGE, Progress

    if request.upscaler is None:
        return None
    stage = f"{UPSCALE_STAGE} ({Path(request.upscaler).stem})"
    started = time.perf_counter()

    def told(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(Progress(done, total, elapsed_s=time.perf_counter() - started, stage=stage))

    return lambda picture, size: upscalers.enlarge(request.upscaler, picture, size, device, cancel, told,
                                                   Tiling(request.tiling).wraps)
