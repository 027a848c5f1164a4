"""The ONNX backend's `Engine`: the same requests, recipes, seeds, previews and cancellation as the
torch backend, on ONNX Runtime sessions.

A request resolves to a plan as in the torch backend (`planning.plan`), then to an export of its base
model + LoRA set: found in the export cache, or made now on first use (torch side, in this process;
reported as a stage of the job with progress, cancellable, and refused before writing when the disk
is short). The export's sessions stay open between requests with the same export and provider.
TAESD (previews and "fast decode") runs as its own small ONNX graph, exported once per TAESD folder.
Image-to-image and inpainting read their images from the engine's input store, as the torch backend
does; ControlNets are the torch backend's alone (the backend's capabilities say so).

Generation itself imports no torch: a runtime with ONNX Runtime alone generates from exports made
elsewhere and copied into the cache (`ExportCache.import_folder`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import InputError, OutOfMemoryError
from hypersd_desktop.core.hashes import HashCache
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken, TransferProgress
from hypersd_desktop.core.vocab import Architecture, Decoder, Device, DType, Mode, Preview, Scheduler
from hypersd_desktop.engine.inputs import open_inputs
from hypersd_desktop.engine.inspect import base_architecture
from hypersd_desktop.engine.onnx.export import ExportCache, ExportSpec, cache_root
from hypersd_desktop.engine.onnx.providers import Provider, choose_provider
from hypersd_desktop.engine.onnx.schedulers import SCHEDULERS
from hypersd_desktop.engine.planning import plan
from hypersd_desktop.engine.previews import latent_preview, to_image
from hypersd_desktop.engine.schedulers import check_timesteps
from hypersd_desktop.engine.types import GenerationRequest, GenerationResult, Progress, ResolvedSettings

EXPORT_STAGE = "Exporting the model to ONNX"  # then why: the first use of the model and LoRA set, or of them seamless


def default_cache(paths: AppPaths | None = None) -> ExportCache:
    """The app's export cache: `<data>/onnx`, hashing files through the app's hash cache."""
    paths = paths or AppPaths.default()
    return ExportCache(cache_root(paths.data), hash_of=HashCache(paths.cache / "hashes.json").sha256)


def export_dtype(provider: Provider, asked: str) -> str:
    """fp16 where the GPU providers want it, fp32 on the CPU (ORT's CPU kernels are fp32)."""
    if asked in (DType.FP32, DType.FP16):
        return DType(asked).value if provider.device != Device.CPU else DType.FP32.value
    return DType.FP16.value if provider.device.is_gpu else DType.FP32.value


@dataclass
class _Open:
    key: tuple  # export folder, provider, and the shape where the provider fixes shapes
    pipeline: object


class OnnxEngine:
    """Generates requests from ONNX exports; keeps the last export's sessions open."""

    def __init__(self, cache: ExportCache | None = None, provider: Provider | None = None,
                 inputs: InputImages | None = None) -> None:
        """`provider` fixes the execution provider (benchmarks); by default the request's device chooses.
        `inputs` holds the images that image-to-image and inpainting requests name."""
        self.cache = cache or default_cache()
        self.provider = provider
        self.inputs = inputs
        self._open: _Open | None = None
        self._taesd: tuple[Path, str, object] | None = None
        self._upscalers = None  # made on the first request with an upscaler (which runs on torch, on the CPU)

    def unload(self) -> None:
        self._open = None
        self._taesd = None
        self._upscalers = None

    def _enlarger(self, request: GenerationRequest, on_progress, cancel: CancelToken) -> Callable | None:
        if request.upscaler is None:
            return None
        from hypersd_desktop.engine.upscalers import Upscalers, enlarger

        self._upscalers = self._upscalers or Upscalers()
        return enlarger(self._upscalers, request, "cpu", on_progress, cancel)

    def memory_in_use(self, device: Device) -> int | None:
        """On the CPU, this process's resident memory (as the PyTorch backend says it); a GPU's ONNX Runtime does not
        say what it holds."""
        if device != Device.CPU:
            return None
        import psutil

        return psutil.Process().memory_info().rss

    def prepare(self, request: GenerationRequest) -> None:
        architecture = base_architecture(request.base_model)
        self._pipeline(request, architecture, self._provider(request), None, CancelToken(), time.perf_counter())

    def generate(self, request: GenerationRequest, on_progress: Callable[[Progress], None] | None = None,
                 cancel: CancelToken | None = None) -> list[GenerationResult]:
        try:
            return self._generate(request, on_progress, cancel or CancelToken())
        except MemoryError:
            self.unload()
            raise OutOfMemoryError() from None
        except Exception as error:
            if "Failed to allocate memory" not in str(error):  # ONNX Runtime's arena, on any provider
                raise
            self.unload()
            raise OutOfMemoryError("ONNX Runtime ran out of memory for this size and batch. Try a smaller size or "
                                   "batch, or the PyTorch backend (Settings), whose attention needs less.") from None

    def _generate(self, request: GenerationRequest, on_progress, cancel: CancelToken) -> list[GenerationResult]:
        import numpy as np
        from PIL import Image

        from hypersd_desktop.engine.onnx.pipeline import Start

        started = time.perf_counter()
        if request.controls:
            raise InputError(f"The ONNX Runtime backend has no ControlNet ({request.mode.label} with a ControlNet was "
                             "asked); choose PyTorch (or Automatic) as the backend in Settings.")
        if request.ip_adapters:
            raise InputError("The ONNX Runtime backend has no IP-Adapter; leave the reference picture out, or choose "
                             "PyTorch (or Automatic) as the backend in Settings.")
        architecture = base_architecture(request.base_model)
        settings_plan = plan(request, architecture)
        if request.embeddings:
            raise InputError("The ONNX Runtime backend has no textual-inversion embeddings; leave them out, or choose "
                             "PyTorch (or Automatic) as the backend in Settings.")
        if settings_plan.clip_skip > 1:
            raise InputError(f"The ONNX Runtime backend reads the text encoder's last layer only (clip skip "
                             f"{settings_plan.clip_skip} was asked); set clip skip to 1, or choose PyTorch (or "
                             "Automatic) as the backend in Settings.")
        sources = open_inputs(request, self.inputs, settings_plan.width, settings_plan.height,
                              self._enlarger(request, on_progress, cancel))
        settings_plan = dataclasses.replace(settings_plan, width=sources.width, height=sources.height)
        start = None
        if request.mode != Mode.TEXT_TO_IMAGE:
            start = Start(np.asarray(sources.init.convert("RGB")), request.strength,
                          None if sources.mask is None else np.asarray(sources.mask))
        check_timesteps(settings_plan.scheduler, settings_plan.timesteps)
        if settings_plan.scheduler not in SCHEDULERS:
            raise InputError("The ONNX backend runs the Hyper-SD schedulers (DDIM trailing, TCD, LCM) only; choose a "
                             "Hyper-SD LoRA, or generate without one on the torch backend.")
        provider = self._provider(request)
        cancel.raise_if_cancelled()
        pipeline, dtype = self._pipeline(request, architecture, provider, on_progress, cancel, started,
                                         settings_plan)
        loaded_at = time.perf_counter()
        warnings = [*settings_plan.warnings, *pipeline.length_warnings(
            request.prompt, request.negative_prompt if settings_plan.guidance > 1 else "",
            len(settings_plan.timesteps) if settings_plan.timesteps else settings_plan.steps)]
        taesd = self._taesd_decoder(request, provider) if Preview.TAESD in (request.preview, request.decoder) else None

        def on_step(step: int, total: int, latents) -> None:
            cancel.raise_if_cancelled()
            if on_progress is None:
                return
            preview = None
            if request.preview == Preview.LATENT:
                preview = latent_preview(latents[0], architecture)
            elif request.preview == Preview.TAESD:
                preview = to_image(taesd(latents[:1]))
            on_progress(Progress(step, total, 0, request.batch_size, preview, time.perf_counter() - started))

        latents = pipeline.denoise(request.prompt, request.seed, settings_plan.steps, settings_plan.scheduler,
                                   settings_plan.width, settings_plan.height, request.batch_size,
                                   settings_plan.guidance, request.negative_prompt, settings_plan.eta,
                                   settings_plan.timesteps, on_step, start,
                                   (tuple(request.advanced(k).variation_seed for k in range(request.batch_size)),
                                    request.variation_strength) if request.varied else None)
        denoised_at = time.perf_counter()
        images = []
        for k in range(request.batch_size):
            cancel.raise_if_cancelled()
            decoder = taesd if request.decoder == Decoder.TAESD else None
            images.append(sources.finish(Image.fromarray(pipeline.decode(latents[k:k + 1], decoder))))
        finished = time.perf_counter()
        settings = ResolvedSettings(
            recipe=settings_plan.recipe.id if settings_plan.recipe else None,
            architecture=Architecture(architecture), scheduler=Scheduler(settings_plan.scheduler),
            steps=settings_plan.steps, guidance=settings_plan.guidance, eta=settings_plan.eta,
            timesteps=settings_plan.timesteps, width=settings_plan.width, height=settings_plan.height,
            device=provider.device, dtype=DType(dtype), backend="onnx",
        )
        timings = {"load_s": loaded_at - started, "denoise_s": denoised_at - loaded_at,
                     "decode_s": finished - denoised_at, "total_s": finished - started,
                   "per_image_s": (finished - loaded_at) / request.batch_size}
        members = [request.advanced(k) for k in range(request.batch_size)]
        return [GenerationResult(image, member.seed, k, request, settings, tuple(warnings), timings,
                                 member.variation_seed) for k, (image, member) in enumerate(zip(images, members))]

    # -- exports and sessions -------------------------------------------------------------

    def _provider(self, request: GenerationRequest) -> Provider:
        return self.provider or choose_provider(request.device)

    def _pipeline(self, request: GenerationRequest, architecture: str, provider: Provider, on_progress,
                  cancel: CancelToken, started: float, settings_plan=None):
        from hypersd_desktop.engine.onnx.pipeline import OnnxPipeline, Shape

        dtype = export_dtype(provider, request.dtype)
        spec = ExportSpec.for_request(request, architecture, dtype)
        folder = self.cache.find(spec)
        if folder is None:
            self._open = None  # free the old sessions before the export needs the memory
            first = ("first use of this model and LoRA set" if request.tiling == "off" else
                     "first seamless image of this model and LoRA set")

            def exporting(progress: TransferProgress) -> None:
                if on_progress is not None:
                    percent = min(100, round(100 * progress.done / max(progress.total, 1)))
                    on_progress(Progress(percent, 100, 0, request.batch_size, None, time.perf_counter() - started,
                                         stage=f"{EXPORT_STAGE} ({first}): {progress.item.replace('_', ' ')}"))

            folder = self.cache.export(spec, on_progress=exporting, cancel=cancel)
        shape = None
        if provider.fixed_shapes:
            settings_plan = settings_plan or plan(request, architecture)
            shape = Shape(request.batch_size * (2 if settings_plan.guidance > 1 else 1), settings_plan.width,
                          settings_plan.height)
        key = (folder, provider.name, shape)
        if self._open is None or self._open.key != key:
            self._open = None
            self._open = _Open(key, OnnxPipeline(folder, provider, shape))
        return self._open.pipeline, dtype

    def _taesd_decoder(self, request: GenerationRequest, provider: Provider):
        folder = self.cache.export_taesd(Path(request.taesd), request.tiling)
        if self._taesd is None or self._taesd[:2] != (folder, provider.name):
            session = provider.session(folder / "decoder.onnx")
            self._taesd = (folder, provider.name, session)
        session = self._taesd[2]
        return lambda latent: session.run(None, {"latent_sample": latent.astype("float32")})[0][0]

