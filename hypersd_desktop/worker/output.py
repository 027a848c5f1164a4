"""Saving generated images with their parameters (used by the CLI and the worker process)."""

from __future__ import annotations

import time
from pathlib import Path

from hypersd_desktop.engine.types import GenerationResult
from hypersd_desktop.gallery.metadata import ImageParameters, write_png
from hypersd_desktop.models.hashes import HashCache


def image_parameters(result: GenerationResult, hashes: HashCache) -> ImageParameters:
    request, settings = result.request, result.settings
    base = Path(request.base_model)
    loras = tuple((Path(lora.path).stem, lora.weight, hashes.short_hash(Path(lora.path))) for lora in request.loras)
    extra: list[tuple[str, str]] = []
    if settings.recipe:
        extra.append(("Hyper-SD", settings.recipe))
    if settings.eta and settings.scheduler == "tcd":
        extra.append(("Eta", f"{settings.eta:g}"))
    if settings.timesteps:
        extra.append(("Timesteps", " ".join(str(t) for t in settings.timesteps)))
    if request.unet:
        extra.append(("UNet", Path(request.unet).stem))
    return ImageParameters(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        steps=settings.steps,
        sampler=settings.scheduler,
        guidance=settings.guidance,
        seed=result.seed,
        width=settings.width,
        height=settings.height,
        model_name=base.stem if base.is_file() else base.name,
        model_hash=hashes.short_hash(base),
        loras=loras,
        extra=tuple(extra),
        request={**request.to_dict(), "seed": result.seed, "batch_size": 1},
    )


def output_path(out_dir: Path, seed: int) -> Path:
    """A new file name `YYYYmmdd-HHMMSS-<seed>.png` that does not exist yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{stamp}-{seed}.png"
    counter = 1
    while path.exists():
        path = out_dir / f"{stamp}-{seed}-{counter}.png"
        counter += 1
    return path


def save_result(result: GenerationResult, out_dir: Path, hashes: HashCache) -> Path:
    """Write one result as a new PNG in `out_dir` with A1111 parameters and the exact request."""
    return save_result_as(result, output_path(out_dir, result.seed), hashes)


def save_result_as(result: GenerationResult, path: Path, hashes: HashCache) -> Path:
    """Write one result to `path` (through a temporary name) with its parameters."""
    return write_png(result.image, path, image_parameters(result, hashes))
