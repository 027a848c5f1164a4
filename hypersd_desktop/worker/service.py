"""Generate → save → index: one service used by the worker program, the CLI and batch jobs.

The PNG and its gallery row are written from the same typed result, so the row holds exactly
what ran (scheduler, recipe, LoRA weights, device, time taken) and indexing a generated image
reads nothing back from the file. Engines come from the backend registry, one per backend.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import AppError, CancelledError, InputError, NotSavedError, OutOfMemoryError
from hypersd_desktop.core.files import why_not_written, write_atomic
from hypersd_desktop.core.images import InputImages, png_data
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import Architecture, Device, DType, MapKind, Mode, Preprocessor, Scheduler, Tiling
from hypersd_desktop.engine import backend as backends
from hypersd_desktop.engine.backend import BatchingEngine, Engine, batch_key
from hypersd_desktop.engine.inspect import weights_name
from hypersd_desktop.engine.ip_adapter_files import webui_module
from hypersd_desktop.engine.plot import PLOT_KEY, PLOT_PARTS, PLOT_STAGE, PlotCell, PlotSpec
from hypersd_desktop.engine.types import (
    DISTILLED_STEPS, FACE_STAGE, HAND_STAGE, HIRES_STAGE, MAX_HIRES_SCALE, MAX_SEED, MAX_STEPS, SEAMS_STAGE,
    TILE_STAGE, UPSCALE_STAGE, DetailPass, GenerationRequest, GenerationResult, Progress, ResolvedSettings,
    hires_schedule, hires_size, init_size,
)
from hypersd_desktop.gallery.formats.common import adetailer_suffix
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.metadata import ImageParameters, encode_png
from hypersd_desktop.core.hashes import LORA_HASH_DIGITS, HashCache

log = logging.getLogger("hypersd.worker")
PLOT_BATCH = 8  # a plot's images that run as one batch at most (a batch job finds its size by measuring)


def _map_device(device: str) -> Device:
    """Where a depth map, pose or face finding runs: `device` where torch has it (DirectML is ONNX Runtime's, and
    "auto" names none), else torch's first device."""
    from hypersd_desktop.engine.devices import available_devices

    return Device(device) if device in available_devices() else Device(available_devices()[0])


def hires_pass_schedule(request: GenerationRequest, first: ResolvedSettings) -> tuple[int | None, int]:
    """The steps asked of a Hires fix's second pass (None: the first pass's) and the steps that run, after a first
    pass that ran as `first`: the last `hires_steps` of a schedule long enough (as long as its scheduler makes
    them), or without them `hires_strength` of the first pass's steps. A1111 writes the second as "Hires steps"."""
    if request.hires_steps is None:
        return request.steps, max(1, int(first.steps * request.hires_strength))
    most = DISTILLED_STEPS if first.scheduler in (Scheduler.TCD, Scheduler.LCM) else MAX_STEPS
    schedule = hires_schedule(request.hires_steps, request.hires_strength, most)
    return schedule, int(schedule * request.hires_strength)


def _own_pass_fields(wanted: DetailPass) -> list[tuple[str, str]]:
    """A detail pass's own size, steps and guidance, as ADetailer writes them (only those it has)."""
    fields = []
    if wanted.width and wanted.height:
        fields += [("use inpaint width height", "True"), ("inpaint width", str(wanted.width)),
                   ("inpaint height", str(wanted.height))]
    if wanted.steps is not None:
        fields += [("use separate steps", "True"), ("steps", str(wanted.steps))]
    if wanted.guidance is not None:
        fields += [("use separate CFG scale", "True"), ("CFG scale", f"{wanted.guidance:g}")]
    return fields


def _mask_fields(wanted: DetailPass) -> list[tuple[str, str]]:
    """How a detail pass's masks were shaped, as ADetailer writes it and in its order: the dilation always, the rest
    where it is not ADetailer's default (the ratios together, the offsets together)."""
    fields = []
    if wanted.min_ratio or wanted.max_ratio != 1.0:
        fields += [("mask min ratio", f"{wanted.min_ratio:g}"), ("mask max ratio", f"{wanted.max_ratio:g}")]
    if wanted.x_offset or wanted.y_offset:
        fields += [("x offset", str(wanted.x_offset)), ("y offset", str(wanted.y_offset))]
    fields.append(("dilate erode", str(wanted.dilate_erode)))
    if wanted.merge != "none":
        fields.append(("mask merge invert", wanted.merge.title().replace(" And ", " and ")))
    return fields


def _none_found(part: str, seed: int, wanted: DetailPass, found: bool, sized: bool) -> str:
    """The warning of a detail pass that repainted nothing, saying why: none found, none of the sizes asked for,
    or every mask shrunk away."""
    if not found:
        why = f"No {part} was found in the image of seed {seed}"
    elif not sized:
        why = (f"No {part} found in the image of seed {seed} takes {wanted.min_ratio:g} to {wanted.max_ratio:g} of "
               "its area")
    else:
        why = f"The {part} masks of the image of seed {seed} shrank to nothing ({wanted.dilate_erode} pixels)"
    return f"{why}, so the {part} pass left it as it was."


def in_tiles(request: GenerationRequest) -> bool:
    """Whether `request` repaints its init image in tiles: it asks for them, at a size larger than one."""
    return (request.repaint_tile is not None and request.init_image is not None and bool(request.width)
            and bool(request.height) and max(request.width, request.height) > request.repaint_tile)


def _job_timings(passes: list[dict[str, float]], total_s: float, images: int) -> dict[str, float]:
    """The timings of a job run as several engine calls, as one batch reports them (the same for each of its
    images): each stage's time summed over `passes` (one dict per call), the job's wall time, and the time per
    image after loading."""
    stages = {key: sum(timings.get(key, 0.0) for timings in passes)
              for key in ("load_s", "denoise_s", "decode_s")}
    return {**stages, "total_s": total_s, "per_image_s": (total_s - stages["load_s"]) / images}


MAX_ENLARGED_SIDE = 8192  # the longest side an image is enlarged to alone: a 2048² image ×4
# sd-webui-controlnet's module for each preprocessor, as a unit is written ("none": the picture as it is)
WEBUI_MODULES = {Preprocessor.NONE: "none", Preprocessor.SCRIBBLE: "scribble", Preprocessor.INPAINT: "inpaint_only"}
MAP_SIDE = 2048  # the longest side of a depth or pose map: a phone photo's is made at 2048 × 1536, not 4032 × 3024


def image_parameters(result: GenerationResult, hashes: HashCache) -> ImageParameters:
    """What goes into the PNG and the gallery row of one result."""
    request, settings = result.request, result.settings
    base = Path(request.base_model)
    loras = tuple((Path(lora.path).stem, lora.weight, hashes.lora_short_hash(Path(lora.path))) for lora in request.loras)
    embeddings = tuple((Path(path).stem, hashes.sha256(Path(path))[:LORA_HASH_DIGITS])
                       for path in request.embeddings if Path(path).is_file())
    extra: list[tuple[str, str]] = []
    if settings.recipe:
        extra.append(("Hyper-SD", settings.recipe))
    if settings.eta and settings.scheduler == Scheduler.TCD:
        extra.append(("Eta", f"{settings.eta:g}"))
    if settings.timesteps:
        extra.append(("Timesteps", " ".join(str(t) for t in settings.timesteps)))
    if request.unet:
        extra.append(("UNet", Path(request.unet).stem))
    if request.vae:  # as A1111 names the VAE it chose: the file, with its hash where it is one file
        vae = Path(request.vae)
        digest = hashes.short_hash(vae)
        extra.extend([*([("VAE hash", digest)] if digest else []), ("VAE", vae.name)])
    if request.varied:  # as A1111 writes them, after the VAE
        extra.extend([("Variation seed", str(result.variation_seed)),
                      ("Variation seed strength", f"{request.variation_strength:g}")])
    if request.clip_skip > 1 and settings.architecture == Architecture.SD15:
        extra.append(("Clip skip", str(request.clip_skip)))  # A1111 writes it only when it is not 1
    if request.tiling != Tiling.OFF:  # A1111's "Tiling: True" both ways; one way "x" or "y" (A1111 has none)
        extra.append(("Tiling", "True" if request.tiling == Tiling.BOTH else request.tiling.value))
    if request.mode != Mode.TEXT_TO_IMAGE and not request.detail_only:  # A1111's img2img fields (the init image
        extra.append(("Denoising strength", f"{request.strength:g}"))  # is named in the request)
    if request.hires_scale is not None:  # as A1111 writes its Hires fix (its Size is the first pass's)
        extra.extend([("Denoising strength", f"{request.hires_strength:g}"),
                      ("Hires upscale", f"{request.hires_scale:g}"),
                      ("Hires steps", str(hires_pass_schedule(request, settings)[1])),
                      ("Hires upscaler", Path(request.upscaler).stem if request.upscaler else "Lanczos")])
        if request.hires_guidance is not None:  # as Forge writes the second pass's own CFG scale
            extra.append(("Hires CFG Scale", f"{request.hires_guidance:g}"))
        extra.extend((key, text) for key, text in (("Hires prompt", request.hires_prompt),
                                                   ("Hires negative prompt", request.hires_negative_prompt)) if text)
    if request.repaint_tile is not None:  # as the Ultimate SD Upscale extension writes its tiles
        repainted = (hires_size(settings.width, settings.height, request.hires_scale) if request.hires_scale
                     else (request.width or 0, request.height or 0))
        if max(repainted) > request.repaint_tile:
            extra.extend([("Ultimate SD upscale upscaler", Path(request.upscaler).stem if request.upscaler else
                           "Lanczos"), ("Ultimate SD upscale tile_width", str(request.repaint_tile)),
                          ("Ultimate SD upscale tile_height", str(request.repaint_tile)),
                          ("Ultimate SD upscale mask_blur", str(request.tile_mask_blur)),
                          ("Ultimate SD upscale padding", str(request.tile_padding))])
            fix = request.seams_fix
            if fix is not None:  # as the extension names its settings (it writes them nowhere)
                extra.extend([("Ultimate SD upscale seams_fix_type", fix.mode.label),
                              ("Ultimate SD upscale seams_fix_denoise", f"{fix.strength:g}"),
                              ("Ultimate SD upscale seams_fix_width", str(fix.width)),
                              ("Ultimate SD upscale seams_fix_mask_blur", str(fix.mask_blur)),
                              ("Ultimate SD upscale seams_fix_padding", str(fix.padding))])
    if request.mode == Mode.INPAINT:
        extra.append(("Mask blur", str(request.mask_blur)))
        if request.masked_padding is not None:  # as A1111 writes its "Only masked" inpainting
            extra.extend([("Inpaint area", "Only masked"), ("Masked area padding", str(request.masked_padding))])
    # as sd-webui-controlnet and Forge write their units, after A1111's own fields
    for number, control in enumerate(request.controls):
        module = WEBUI_MODULES[control.preprocessor]
        extra.append((f"ControlNet {number}", f"Module: {module}, Model: {weights_name(Path(control.model))}, "
                      f"Weight: {control.scale:g}, Guidance Start: {control.start:g}, Guidance End: {control.end:g}"))
    for number, adapter in enumerate(request.ip_adapters, start=len(request.controls)):  # as IP-Adapter units
        extra.append((f"ControlNet {number}", f"Module: {webui_module(adapter.encoder)}, Model: "
                      f"{Path(adapter.model).stem}, Weight: {adapter.scale:g}, Guidance Start: 0, Guidance End: 1"))
    for number, (part, wanted) in enumerate(request.detail_passes()):
        # as ADetailer writes its passes, the second's keys ending " 2nd" (its model: what found the faces or hands)
        extra.extend((f"ADetailer {key}{adetailer_suffix(number)}", text) for key, text in (
            ("model", f"{part} from pose ({Path(wanted.model).name})"), ("prompt", wanted.prompt),
            ("negative prompt", wanted.negative_prompt), ("confidence", f"{wanted.confidence:g}"),
            ("mask only top k largest", str(wanted.largest) if wanted.largest else ""), *_mask_fields(wanted),
            ("mask blur", str(wanted.mask_blur)), ("denoising strength", f"{wanted.strength:g}"),
            ("inpaint only masked", "True"), ("inpaint padding", str(wanted.padding)),
            *_own_pass_fields(wanted)) if text)
    for key, template in (("Template", request.prompt_template), ("Negative Template", request.negative_template)):
        if template:  # as the Dynamic Prompts extension writes the prompts with choices the image's were made from
            extra.append((key, template))
    return ImageParameters(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        steps=settings.steps,
        sampler=settings.scheduler.value,
        guidance=settings.guidance,
        seed=result.seed,
        width=settings.width,
        height=settings.height,
        model_name=base.stem if base.is_file() else base.name,
        model_hash=hashes.short_hash(base),
        loras=loras,
        embeddings=embeddings,
        extra=tuple(extra),
        request=result.image_request().to_dict(),
        recipe=settings.recipe,
    )


def _together(cells: list[PlotCell]) -> list[list[int]]:
    """The plot's images in groups that run as one batch (equal `batch_key`s, up to `PLOT_BATCH`), in the order of
    their first image; an image that runs alone is a group of one."""
    groups: list[list[int]] = []
    open_groups: dict[str, list[int]] = {}
    for index, cell in enumerate(cells):
        key = batch_key(cell.request)
        group = open_groups.get(key) if key is not None else None
        if group is None or len(group) >= PLOT_BATCH:
            group = []
            groups.append(group)
            if key is not None:
                open_groups[key] = group
        group.append(index)
    return groups


def output_path(out_dir: Path, seed: int) -> Path:
    """A new file name `YYYYmmdd-HHMMSS-<seed>.png` that does not exist yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{stamp}-{seed}.png"
    counter = 1
    while path.exists():
        path = out_dir / f"{stamp}-{seed}-{counter}.png"
        counter += 1
    return path


@dataclass(frozen=True)
class SavedImage:
    """A result written to `path` (`png` is the file's bytes) and indexed as `image_id` (None when
    no gallery was given)."""

    result: GenerationResult
    path: Path
    png: bytes
    image_id: int | None


@dataclass(frozen=True)
class Enlarged:
    """An image enlarged alone (`GenerationService.enlarge`), written to `path` and indexed as `image_id`."""

    path: Path
    png: bytes
    image_id: int | None
    seed: int  # the original's (`_seed_of`; 0 where nothing says)
    device: Device
    half: bool = False  # the upscaler ran in fp16 (on CUDA, where its architecture holds in it)


def _tiling_of(path: Path) -> Tiling:
    """Which way the image at `path` tiles, as its metadata says (this app's and A1111's `Tiling`, InvokeAI's and
    SwarmUI's own fields)."""
    from hypersd_desktop.gallery.formats.common import tiling_of
    from hypersd_desktop.gallery.gallery import read_metadata

    try:
        metadata = read_metadata(path)[0]
    except OSError:
        return Tiling.OFF
    return tiling_of(metadata) if metadata is not None else Tiling.OFF


def _seed_of(path: Path) -> int:
    """The seed an image was made with, as its metadata says, else as a file name this app gives says
    (`YYYYmmdd-HHMMSS-<seed>.png`), else 0."""
    from hypersd_desktop.gallery.gallery import read_metadata

    try:
        metadata = read_metadata(path)[0]
    except OSError:
        metadata = None
    if metadata is not None and metadata.seed is not None:
        return metadata.seed
    parts = path.stem.split("-")
    return int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() and len(parts[2]) < 20 else 0


class Engines:
    """The engines opened in this process, one per backend, chosen through the registry; they read the
    input images requests name from `inputs`."""

    def __init__(self, inputs: InputImages | None = None) -> None:
        self.inputs = inputs
        self._open: dict[str, Engine] = {}

    def for_request(self, request: GenerationRequest) -> Engine:
        return self.open(backends.for_request(request))

    def open(self, backend: backends.Backend) -> Engine:
        """The engine of `backend`, opened (its inference library imported) on first use."""
        if backend.name not in self._open:
            self._open[backend.name] = backend.open(self.inputs)
        return self._open[backend.name]

    def unload(self) -> None:
        for engine in self._open.values():
            engine.unload()


class GenerationService:
    """Runs requests, writes their PNGs and indexes them in `gallery` (when given). Input images come from
    `inputs` (default: the data folder's), and an image saved keeps the inputs it was made from there,
    so reusing its request later finds them."""

    def __init__(self, paths: AppPaths, gallery: Gallery | None, hashes: HashCache,
                 engines: Engines | None = None, inputs: InputImages | None = None) -> None:
        self.paths = paths
        self.gallery = gallery
        self.hashes = hashes
        self.inputs = inputs or InputImages(paths.inputs)
        self.engines = engines or Engines(self.inputs)
        self._depth = None  # the DepthEstimator, made on the first depth map
        self._pose = None  # the PoseEstimator, made on the first pose map
        self._tagger = None  # the last tagger a picture was described with (engine/tagger.py)
        self._upscalers = None  # the Upscalers that enlarge images alone (`enlarge`), made on the first

    def control_map(self, control_map, device: str = Device.AUTO) -> tuple[bytes, Device]:
        """The map (PNG) a `ControlMap` (worker/protocol.py, which imports this module) asks for, and the device it
        was made on: `device` where torch has it (DirectML is ONNX Runtime's: the map is made on the CPU)."""
        return self.picture_map(control_map.image, control_map.kind, control_map.model, control_map.detector, device)

    def picture_map(self, image: str, kind: str, model: str, detector: str = "",
                    device: str = Device.AUTO) -> tuple[bytes, Device]:
        """The map (PNG) of the input image `image` (a digest) of `kind` (`MapKind`) that `model` (and for a pose,
        the person detector `detector`) makes, and the device it was made on (as `control_map`)."""
        placed = _map_device(device)
        picture = self.inputs.open(image)
        if max(picture.size) > MAP_SIDE:  # the models see 518 pixels or fewer: a larger map holds nothing more
            from PIL import Image, ImageOps

            picture = ImageOps.contain(picture, (MAP_SIDE, MAP_SIDE), Image.Resampling.LANCZOS)
        if kind == MapKind.POSE:
            made = self._pose_estimator().pose_map(picture, model, detector, placed.value)
        else:
            from hypersd_desktop.engine.depth import DepthEstimator

            self._depth = self._depth or DepthEstimator()
            made = self._depth.depth_map(picture, model, placed.value)
        return png_data(made), placed

    def describe(self, describing, device: str = Device.AUTO):
        """The tags a `Describing` (worker/protocol.py) asks for, and the device the tagger ran on: `device` where
        ONNX Runtime has it, else the CPU. The tagger stays loaded for the next picture."""
        from hypersd_desktop.engine.tagger import Tagger, tagger_provider

        provider = tagger_provider(device)
        if self._tagger is None or (self._tagger.path, self._tagger.provider) != (Path(describing.tagger), provider):
            self._tagger = None  # the last one's memory is free before the next loads
            self._tagger = Tagger(describing.tagger, provider)
        picture = self.inputs.open(describing.image)
        description = self._tagger.describe(picture, describing.threshold, describing.character_threshold)
        return description, provider.device

    def _pose_estimator(self):
        from hypersd_desktop.engine.pose import PoseEstimator

        self._pose = self._pose or PoseEstimator()
        return self._pose

    def enlarge(self, enlargement, device: str = Device.AUTO, on_progress: Callable[[Progress], None] | None = None,
                cancel: CancelToken | None = None) -> Enlarged:
        """The image an `Enlargement` (worker/protocol.py) asks for: its file enlarged by the upscaler model until it
        covers the size, then fitted to it with Lanczos (or by Lanczos alone), not repainted, as A1111's Extras tab
        enlarges one. It keeps the file's metadata (so it reads, and is reused, as the original is) and says how it
        was enlarged as A1111 does (`postprocessing`); it is written beside the images made here and indexed."""
        from PIL import Image, ImageOps, PngImagePlugin

        from hypersd_desktop.core.images import eight_bit, open_any_size, too_many_pixels
        from hypersd_desktop.engine.devices import available_devices
        from hypersd_desktop.engine.preprocess import resized_seamless
        from hypersd_desktop.engine.upscalers import Upscalers
        from hypersd_desktop.gallery.gallery import metadata_chunks

        source = Path(enlargement.path)
        if not 1 < enlargement.scale <= MAX_HIRES_SCALE:
            raise InputError(f"An image is enlarged above 1 and at most {MAX_HIRES_SCALE:g} times; got "
                             f"{enlargement.scale:g}.")
        try:
            with open_any_size(source) as picture:
                size = (round(picture.width * enlargement.scale), round(picture.height * enlargement.scale))
                if max(size) > MAX_ENLARGED_SIDE or too_many_pixels(picture):
                    raise InputError(f"{source.name} enlarged {enlargement.scale:g} times would be {size[0]} × "
                                     f"{size[1]}; the most is {MAX_ENLARGED_SIDE} pixels a side. Enlarge it less.")
                profile = picture.info.get("icc_profile")
                picture = eight_bit(picture)  # 16-bit grey (a depth map, a scan) scaled, not clipped to white
                picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
        except (OSError, SyntaxError) as error:
            raise InputError(f"{source.name} cannot be read as an image ({error}); it may have been moved or "
                             "deleted.") from None
        started = time.perf_counter()
        placed = Device(device) if device in available_devices() else Device(available_devices()[0])
        alpha = picture.getchannel("A") if picture.mode == "RGBA" else None
        made = picture.convert("RGB")
        wraps = _tiling_of(source).wraps  # a seamless image's enlargement stays seamless
        if enlargement.upscaler:
            name = Path(enlargement.upscaler).stem
            self._upscalers = self._upscalers or Upscalers()

            def told(done: int, total: int) -> None:
                if on_progress is not None:
                    on_progress(Progress(done, total, elapsed_s=time.perf_counter() - started,
                                         stage=f"{UPSCALE_STAGE} ({name})"))

            made = self._upscalers.enlarge(enlargement.upscaler, made, size, placed.value, cancel, told, wraps)
        if made.size != size:
            made = resized_seamless(made, size, wraps) if any(wraps) else ImageOps.fit(made, size,
                                                                                      Image.Resampling.LANCZOS)
        if alpha is not None:  # transparency is enlarged as it is, by Lanczos
            made.putalpha(alpha.resize(size, Image.Resampling.LANCZOS))
        text = PngImagePlugin.PngInfo()
        for key, value in metadata_chunks(source).items():
            if key != "postprocessing":
                text.add_itxt(key, value)
        text.add_itxt("postprocessing", f"Postprocess upscale by: {enlargement.scale:g}, Postprocess upscaler: "
                                        f"{Path(enlargement.upscaler).stem if enlargement.upscaler else 'Lanczos'}")
        buffer = io.BytesIO()
        made.save(buffer, format="PNG", pnginfo=text, **({"icc_profile": profile} if profile else {}))
        png = buffer.getvalue()
        seed = _seed_of(source)
        path = output_path(self.paths.images, seed)
        try:
            write_atomic(path, png)
        except OSError as error:
            raise NotSavedError(f"The enlarged image was not saved: {why_not_written(error, path.parent)}.", png,
                                why_not_written(error, path.parent)) from None
        image_id = None
        if self.gallery is not None:
            try:
                image_id = self.gallery.add_file(path, device=placed.value, time_taken=time.perf_counter() - started)
            except sqlite3.Error as error:  # saved: File → Import images from a folder adds it later
                log.warning("the gallery could not record %s: %s", path, error)
        return Enlarged(path, png, image_id, seed, placed, bool(enlargement.upscaler) and self._upscalers.half)

    def generate(self, request: GenerationRequest, on_progress: Callable[[Progress], None] | None = None,
                 cancel: CancelToken | None = None) -> list[GenerationResult]:
        engine = self.engines.for_request(request)
        if request.detail_only:
            return self._detailed_alone(engine, request, on_progress, cancel)
        if request.hires_scale is not None:
            made = self._hires_fix(engine, request, on_progress, cancel)
        elif in_tiles(request):
            made = self._in_tiles(engine, request, on_progress, cancel)
        else:
            made = engine.generate(request, on_progress=on_progress, cancel=cancel)
        return self._detail_parts(engine, made, on_progress, cancel)

    def _in_tiles(self, engine: Engine, request: GenerationRequest, on_progress: Callable[[Progress], None] | None,
                  cancel: CancelToken | None) -> list[GenerationResult]:
        """An init image repainted at the request's size a tile at a time (engine/repaint_tiles.py), as the Ultimate
        SD Upscale extension repaints it: the picture enlarged to the size (by the request's upscaler, else
        Lanczos), then each tile inpainted on its own into the picture the tile before it left, only the masked
        area (the tile, `tile_padding` pixels around it and the reach of its mask's blur, made at its own pixels),
        then the seams between them where the request asks for a seams fix, image k of the batch with seed + k for
        all its tiles and seams. The results name the whole request, at its size."""
        from hypersd_desktop.engine.inputs import enlarged_to
        from hypersd_desktop.engine.repaint_tiles import seams, tiles
        from hypersd_desktop.engine.upscalers import Upscalers, enlarger

        started = time.perf_counter()
        size = (request.width, request.height)
        if request.upscaler is not None:
            self._upscalers = self._upscalers or Upscalers()
        enlarge = enlarger(self._upscalers, request, _map_device(request.device).value, on_progress, cancel) \
            if request.upscaler is not None else None
        whole = enlarged_to(self.inputs.open(request.init_image), size, enlarge)
        tiled = tiles(size, request.repaint_tile, request.tile_padding, request.tile_mask_blur)
        fixed = seams(size, request.repaint_tile, request.seams_fix) if request.seams_fix is not None else []
        parts = [(f"{TILE_STAGE} ({number} of {len(tiled)})", tile, request.strength)
                 for number, tile in enumerate(tiled, start=1)]
        parts += [(f"{SEAMS_STAGE} ({number} of {len(fixed)})", seam, request.seams_fix.strength)
                  for number, seam in enumerate(fixed, start=1)]
        results, runs = [], []
        for index in range(request.batch_size):
            seed, image, made = (request.seed + index) % (MAX_SEED + 1), whole, []
            for label, part, strength in parts:
                mask = part.mask(size)
                width, height = part.run_size(size)  # made at its own pixels
                tile = request.replace(
                    init_image=self.inputs.hold_picture(image), mask_image=self.inputs.hold_picture(mask),
                    masked_padding=part.padding, mask_blur=part.blur, width=width, height=height, strength=strength,
                    upscaler=None, repaint_tile=None, seams_fix=None, seed=seed, batch_size=1, face_detail=None,
                    hand_detail=None)

                def report(progress: Progress, index: int = index, label: str = label) -> None:
                    if on_progress is not None:
                        on_progress(dataclasses.replace(progress, image_index=index, batch_size=request.batch_size,
                                                        stage=progress.stage or label))

                (run,) = engine.generate(tile, on_progress=report, cancel=cancel)
                image = run.image
                if label.startswith(SEAMS_STAGE):  # said as the seams fix's, as a face pass's are the pass's
                    run = dataclasses.replace(run, warnings=tuple(f"Seams fix: {warning}" for warning in run.warnings))
                made.append(run)
            runs.extend(made)
            results.append(dataclasses.replace(
                made[-1], request=request, index=index, seed=seed, image=image,
                settings=dataclasses.replace(made[-1].settings, width=size[0], height=size[1]),
                warnings=tuple(dict.fromkeys(warning for run in made for warning in run.warnings))))
        timings = _job_timings([run.timings for run in runs], time.perf_counter() - started, len(results))
        return [dataclasses.replace(result, timings=timings) for result in results]

    def _detailed_alone(self, engine: Engine, request: GenerationRequest,
                        on_progress: Callable[[Progress], None] | None, cancel: CancelToken | None):
        """The init image with its faces and hands made again and nothing else (`detail_only`, ADetailer's "skip
        img2img"), named by the settings its passes ran with at its size. `InputError` where no pass found anything
        to repaint (or none could run): there is no new image."""
        from hypersd_desktop.engine.inspect import base_architecture
        from hypersd_desktop.engine.planning import plan

        started = time.perf_counter()
        picture = self.inputs.open(request.init_image).convert("RGB")
        planned = plan(request.replace(detail_only=False, strength=1.0), base_architecture(request.base_model))
        found = GenerationResult(picture, request.seed, 0, request, ResolvedSettings(
            planned.recipe.id if planned.recipe else None, planned.architecture, planned.scheduler, planned.steps,
            planned.guidance, planned.eta, planned.timesteps, picture.width, picture.height, Device.CPU,
            DType.FP32))
        image, warnings, runs = self._all_parts_made(engine, found, "as it was", on_progress, cancel)
        if not runs:
            found_none = all(warning.startswith("No ") for warning in warnings)
            raise InputError(("No face or hand was found in the picture, so nothing was made. " if found_none else
                              "Nothing was made: ") + " ".join(warnings))
        # named as the passes ran, at the picture's size
        settings = dataclasses.replace(runs[0].settings, width=picture.width, height=picture.height)
        return [dataclasses.replace(found, image=image, settings=settings, warnings=tuple(warnings),
                                    timings=_job_timings([run.timings for run in runs],
                                                         time.perf_counter() - started, 1))]

    def _detail_parts(self, engine: Engine, results: list[GenerationResult],
                      on_progress: Callable[[Progress], None] | None,
                      cancel: CancelToken | None) -> list[GenerationResult]:
        """Each result whose request asks for detail passes (`DetailPass`) with its faces, then its hands, made again
        (`_parts_made`). A pass that cannot run (a damaged pose model, no memory left) leaves the image as the pass
        before it left it, with a warning that says why: the image is not lost to it."""
        detailed = []
        for result in results:
            if not result.request.detail_passes():
                detailed.append(result)
                continue
            started = time.perf_counter()
            image, warnings, runs = self._all_parts_made(engine, result, "as it was made", on_progress, cancel)
            timings = _job_timings([result.timings, *(run.timings for run in runs)],
                                   time.perf_counter() - started + result.timings.get("total_s", 0.0), 1)
            detailed.append(dataclasses.replace(result, image=image, timings=timings,
                                                warnings=tuple(dict.fromkeys((*result.warnings, *warnings)))))
        return detailed

    def _all_parts_made(self, engine: Engine, result: GenerationResult, before: str,
                        on_progress: Callable[[Progress], None] | None, cancel: CancelToken | None):
        """`result`'s image after each of its request's detail passes in turn (`_parts_made`), their warnings and
        runs. A pass that cannot run leaves the image as the one before it left it (`before` for the first), with a
        warning saying why."""
        image, warnings, runs = result.image, [], []
        for part, wanted in result.request.detail_passes():
            try:
                image, said, made = self._parts_made(engine, dataclasses.replace(result, image=image), part, wanted,
                                                     on_progress, cancel)
                before = f"as the {part} pass left it"
            except CancelledError:
                raise
            except AppError as error:
                log.warning("the %s pass of seed %d did not run: %s", part, result.seed, error)
                said, made = [f"The {part} pass did not run, so the image is {before}: {error}"], []
            warnings.extend(said)
            runs.extend(made)
        return image, warnings, runs

    def _parts_made(self, engine: Engine, result: GenerationResult, part: str, wanted: DetailPass,
                    on_progress: Callable[[Progress], None] | None, cancel: CancelToken | None):
        """`result`'s image with its faces (`part` "face") or hands ("hand") made again, as ADetailer makes them, its
        warnings and the passes' runs (each one's result): those found in the image (engine/body_parts.py), left
        to right, each inpainted on its own into the image the one before it left: only the masked area, made at the
        image's size (ADetailer's inpaint size; a photo over 2.25 times the model's area at the model's, as an init
        image is) or the pass's own, with the image's steps and guidance or the pass's own, the k-th with the
        image's seed + k (as ADetailer seeds them) and its part of the pass's prompts (`pass_prompt`: ADetailer's
        `[SEP]`, `[PROMPT]` and `[SKIP]`), no ControlNets or upscaler. An image with none found is kept as it is,
        with a warning."""
        from hypersd_desktop.engine.body_parts import part_boxes, part_mask, pass_prompt, shaped_masks, within_ratio

        image = result.image
        people = self._pose_estimator().keypoints(image, wanted.model, wanted.detector,
                                                  _map_device(result.request.device).value)
        found = part_boxes(part, people, image.size, wanted.confidence)
        boxes = within_ratio(found, image.size, wanted.min_ratio, wanted.max_ratio)
        if wanted.largest:  # only the largest, left to right still
            kept = sorted(boxes, key=lambda box: -box.area)[:wanted.largest]
            boxes = [box for box in boxes if box in kept]
        masks = shaped_masks([part_mask(image.size, box) for box in boxes], wanted.dilate_erode, wanted.x_offset,
                             wanted.y_offset, wanted.merge)
        warnings = [] if masks else [_none_found(part, result.seed, wanted, bool(found), bool(boxes))]
        passes = []
        width, height = (wanted.width, wanted.height) if wanted.width and wanted.height else \
            init_size(image.size, result.settings.architecture.default_size)
        own = {name: value for name, value in (("steps", wanted.steps), ("guidance", wanted.guidance))
               if value is not None}  # the pass's own (ADetailer's "use separate …"), else the image's
        stage = {"face": FACE_STAGE, "hand": HAND_STAGE}[part]
        for number, mask in enumerate(masks):
            prompt = pass_prompt(wanted.prompt, result.request.prompt, number)
            if prompt is None:  # `[SKIP]`: this one stays as it is
                continue
            request = result.request.replace(
                init_image=self.inputs.hold_picture(image),  # the image before this one's pass
                mask_image=self.inputs.hold_picture(mask),
                masked_padding=wanted.padding, mask_blur=wanted.mask_blur, strength=wanted.strength, prompt=prompt,
                negative_prompt=pass_prompt(wanted.negative_prompt, result.request.negative_prompt, number) or "",
                seed=(result.seed + number) % (MAX_SEED + 1), width=width, height=height, batch_size=1,
                variation_seed=None, variation_strength=0.0, controls=(), upscaler=None, face_detail=None,
                hand_detail=None, detail_only=False, repaint_tile=None, seams_fix=None, hires_scale=None,
                hires_steps=None, hires_prompt=None, hires_negative_prompt=None, hires_guidance=None,
                prompt_template=None, negative_template=None, **own)

            def report(progress: Progress, index: int = result.index, number: int = number) -> None:
                if on_progress is not None:
                    on_progress(dataclasses.replace(progress, image_index=index, stage=progress.stage or
                                                    f"{stage} ({number + 1} of {len(masks)})"))

            (made,) = engine.generate(request, on_progress=report, cancel=cancel)
            image = made.image
            passes.append(made)
            warnings.extend(f"{part.capitalize()} pass: {warning}" for warning in made.warnings
                            if warning not in result.warnings)
        return image, warnings, passes

    def _hires_fix(self, engine: Engine, request: GenerationRequest, on_progress: Callable[[Progress], None] | None,
                   cancel: CancelToken | None) -> list[GenerationResult]:
        """A1111's Hires fix on any engine: the images at the request's size, then each enlarged `hires_scale`
        times (by the request's upscaler, else Lanczos, as the image-to-image inputs are fitted) and made again
        from it with its own seed, `hires_strength` of the schedule repainting it (the first pass's, or one whose
        last `hires_steps` run, as A1111's "Hires steps"), with the Hires prompts and guidance where it has its own.
        The results name the whole request (the first pass is made again from it), with the first pass's settings,
        as A1111 reports a Hires fix."""
        started = time.perf_counter()
        first = engine.generate(request.replace(hires_scale=None, hires_steps=None, hires_prompt=None,
                                                hires_negative_prompt=None, hires_guidance=None, repaint_tile=None,
                                                seams_fix=None),
                                on_progress=on_progress, cancel=cancel)
        steps, runs = hires_pass_schedule(request, first[0].settings)
        notes = []
        if request.hires_steps is not None and runs < request.hires_steps:
            notes.append(f"Hires steps {request.hires_steps} at strength {request.hires_strength:g} would need a "
                         f"schedule of over {steps} steps, the most {first[0].settings.scheduler.label} runs; the "
                         f"second pass ran the last {runs} of {steps}. Raise the strength to run them all.")
        results = []
        for result in first:
            width, height = hires_size(result.settings.width, result.settings.height, request.hires_scale)
            second = request.replace(hires_scale=None, hires_steps=None, strength=request.hires_strength,
                                     prompt=request.hires_prompt or request.prompt, hires_prompt=None,
                                     negative_prompt=request.hires_negative_prompt or request.negative_prompt,
                                     hires_negative_prompt=None, hires_guidance=None,
                                     guidance=request.guidance if request.hires_guidance is None else
                                     request.hires_guidance,
                                     init_image=self.inputs.hold_picture(result.image), width=width,
                                     height=height, seed=result.seed, batch_size=1, steps=steps,
                                     variation_seed=None, variation_strength=0.0)  # the first pass was varied

            def report(progress: Progress, index: int = result.index) -> None:
                if on_progress is not None:
                    on_progress(dataclasses.replace(progress, stage=progress.stage or HIRES_STAGE, image_index=index,
                                                    batch_size=len(first)))

            (made,) = (self._in_tiles(engine, second, report, cancel) if in_tiles(second) else
                       engine.generate(second, on_progress=report, cancel=cancel))
            results.append(dataclasses.replace(made, request=request, index=result.index, settings=result.settings,
                                               variation_seed=result.variation_seed,
                                               warnings=tuple(dict.fromkeys((*result.warnings, *made.warnings,
                                                                             *notes)))))
        timings = _job_timings([first[0].timings, *(made.timings for made in results)],
                               time.perf_counter() - started, len(results))
        return [dataclasses.replace(made, timings=timings) for made in results]

    def generate_batch(self, requests: list[GenerationRequest], cancel: CancelToken | None = None,
                       on_progress: Callable[[Progress], None] | None = None) -> list[GenerationResult]:
        """One-image requests of one `batch_key`: as one batch where the engine can (`on_progress` gets its steps),
        else one by one."""
        engine = self.engines.for_request(requests[0])
        if (len(requests) > 1 and isinstance(engine, BatchingEngine) and requests[0].hires_scale is None
                and not in_tiles(requests[0])):
            made = engine.generate_batch(requests, on_progress=on_progress, cancel=cancel)
            return self._detail_parts(engine, made, on_progress, cancel)
        return self._one_by_one(requests, cancel, on_progress)

    def _one_by_one(self, requests: list[GenerationRequest], cancel: CancelToken | None,
                    on_progress: Callable[[Progress], None] | None) -> list[GenerationResult]:
        """Each request's images in turn; `on_progress` counts the steps of them all, as a batch's are counted (a
        stage, such as a Hires fix's second pass, is passed on as it comes)."""
        results = []
        for index, request in enumerate(requests):
            def counted(progress: Progress, index: int = index) -> None:
                if on_progress is None:
                    return
                if not progress.stage and progress.total_steps:
                    progress = dataclasses.replace(progress, step=index * progress.total_steps + progress.step,
                                                   total_steps=len(requests) * progress.total_steps)
                on_progress(dataclasses.replace(progress, image_index=index, batch_size=len(requests)))

            results.extend(dataclasses.replace(result, index=index)
                           for result in self.generate(request, counted, cancel))
        return results

    def render(self, result: GenerationResult) -> bytes:
        """`result` as the PNG file `save` would write (with its parameters), written nowhere."""
        return encode_png(result.image, image_parameters(result, self.hashes))

    def save(self, result: GenerationResult, path: Path | None = None, out_dir: Path | None = None,
             plot_fields: tuple[tuple[str, str], ...] = ()) -> SavedImage:
        """Write `result` to `path` (default: a new name in `out_dir`, or the images folder) and index it.
        `plot_fields` (a plot's grid's: its axes, as A1111 writes them) follow its parameters in the PNG text and
        are kept in its request as `plot`."""
        params = image_parameters(result, self.hashes)
        if plot_fields:  # kept in the request too, which the gallery reads (reuse leaves out what it does not know)
            params = dataclasses.replace(params, extra=(*params.extra, *plot_fields),
                                         request={**params.request, PLOT_KEY: dict(plot_fields)})
        path = path or output_path(out_dir or self.paths.images, result.seed)
        png = encode_png(result.image, params)
        try:
            for digest in result.request.input_images():  # what reuse of the image needs, kept first
                self.inputs.keep(digest)
            write_atomic(path, png)
        except (OSError, InputError) as error:
            why = why_not_written(error, path.parent) if isinstance(error, OSError) else str(error).rstrip(".")
            raise NotSavedError(f"The image (seed {result.seed}) was not saved: {why}.", png, why) from None
        image_id = None
        if self.gallery is not None:
            try:
                image_id = self.gallery.add_generated(path, params, result.settings.device.value,
                                                      result.timings.get("per_image_s"))
            except sqlite3.Error as error:  # "database or disk is full": the image is saved, and said so
                log.warning("the gallery could not record %s: %s", path, error)
                result = dataclasses.replace(result, warnings=(*result.warnings, (
                    f"{path.name} was saved, but the gallery could not record it ({error}); once that is mended, "
                    f"File → Import images from a folder ({path.parent}) adds it.")))
        return SavedImage(result, path, png, image_id)

    def run(self, request: GenerationRequest, out_dir: Path | None = None,
            on_progress: Callable[[Progress], None] | None = None, cancel: CancelToken | None = None,
            on_saved: Callable[[SavedImage], None] | None = None, stored: GenerationRequest | None = None,
            on_unsaved: Callable[[GenerationResult, bytes], None] | None = None) -> list[SavedImage]:
        """Generate, save and index every image of `request`.

        `stored` is the request written into the images when it differs from the one run (the
        window asks for live previews, which are no part of the image). `on_saved` is called as
        each image is written, and `on_unsaved` with the file's bytes for one that cannot be (a full disk):
        `NotSavedError` then ends the run, once every image was tried.
        """
        results = self.generate(request, on_progress, cancel)
        if stored is not None:
            results = [dataclasses.replace(result, request=stored) for result in results]
        return self._save_all(results, out_dir, on_saved, on_unsaved)

    def run_together(self, requests: list[GenerationRequest], out_dir: Path | None = None,
                     on_progress: Callable[[Progress], None] | None = None, cancel: CancelToken | None = None,
                     on_saved: Callable[[SavedImage], None] | None = None,
                     stored: list[GenerationRequest] | None = None,
                     on_unsaved: Callable[[GenerationResult, bytes], None] | None = None) -> list[SavedImage]:
        """Generate, save and index one image for each of `requests`, one-image requests of one `batch_key` (a
        dynamic prompt's images, each with its own choices): as one batch, as `run` makes one request's. `stored`
        are the requests written into the images, as `run`'s."""
        results = self._made_together(requests, cancel, on_progress)
        if stored is not None:
            results = [dataclasses.replace(result, request=request) for request, result in zip(stored, results)]
        return self._save_all(results, out_dir, on_saved, on_unsaved)

    def _save_all(self, results: list[GenerationResult], out_dir: Path | None,
                  on_saved: Callable[[SavedImage], None] | None,
                  on_unsaved: Callable[[GenerationResult, bytes], None] | None) -> list[SavedImage]:
        """Save and index each result (see `run`)."""
        saved, unsaved, seeds = [], [], []
        for result in results:
            try:
                saved.append(self.save(result, out_dir=out_dir))
            except NotSavedError as error:  # the others are tried too: a file removed meanwhile frees room
                unsaved.append(error)
                seeds.append(str(result.seed))
                if on_unsaved is not None:
                    on_unsaved(result, error.png)
                continue
            if on_saved is not None:
                on_saved(saved[-1])
        if len(unsaved) == 1:
            raise unsaved[0]
        if unsaved:
            raise NotSavedError(f"{len(unsaved)} of the {len(results)} images (seeds {', '.join(seeds)}) were not "
                                f"saved: {unsaved[0].reason}.", unsaved[0].png, unsaved[0].reason)
        return saved

    def plot(self, spec: PlotSpec, on_progress: Callable[[Progress], None] | None = None,
             cancel: CancelToken | None = None, on_saved: Callable[[SavedImage], None] | None = None,
             on_unsaved: Callable[[GenerationResult, bytes], None] | None = None,
             out_dir: Path | None = None) -> list[SavedImage]:
        """Make, save (into `out_dir`, default the images folder) and index each image of an X/Y/Z plot
        (engine/plot.py), then its grid: the saved images in the plot's order, the grid last. Images that differ
        only in their seed or prompt (a Seed or Prompt S/R axis) run together as one batch, as a batch job's do.
        `on_progress` counts the images made; a cancel keeps those already saved and makes no grid; an image the
        disk cannot take (`on_unsaved` gets it) ends the plot."""
        cells = spec.cells()
        started = time.perf_counter()
        made: dict[int, SavedImage] = {}

        def progress(done: float) -> None:  # in hundredths of an image, so that a slow image moves the bar too
            if on_progress is not None:
                on_progress(Progress(round(done * PLOT_PARTS), len(cells) * PLOT_PARTS,
                                     elapsed_s=time.perf_counter() - started, stage=PLOT_STAGE))

        try:
            for group in _together(cells):
                progress(len(made))
                if cancel is not None:
                    cancel.raise_if_cancelled()

                def steps(step: Progress, before: int = len(made), count: int = len(group)) -> None:
                    if step.total_steps and not step.stage:  # the images' denoising steps (a Hires fix's first pass)
                        progress(before + count * min(step.step / step.total_steps, 1.0))

                requests = [cells[k].request for k in group]
                for index, result in zip(group, self._made_together(requests, cancel, steps)):
                    made[index] = self._save_or_hand_back(result, out_dir, on_unsaved)
                    if on_saved is not None:
                        on_saved(made[index])
        except CancelledError:
            if not made:
                raise
            raise CancelledError(f"{len(made)} of the plot's {len(cells)} images were made and saved; its grid is "
                                 "made once every image is") from None
        saved = [made[index] for index in range(len(cells))]
        grid = spec.grid([image.result.image for image in saved])
        # the grid's text is its first image's, with the plot's fields, as A1111 writes it
        made[len(cells)] = self._save_or_hand_back(dataclasses.replace(saved[0].result, image=grid, warnings=()),
                                                   out_dir, on_unsaved, tuple(spec.text_fields()))
        if on_saved is not None:
            on_saved(made[len(cells)])
        progress(len(cells))
        return [*saved, made[len(cells)]]

    def _made_together(self, requests: list[GenerationRequest], cancel: CancelToken | None,
                       on_progress: Callable[[Progress], None] | None) -> list[GenerationResult]:
        """One-image requests' images, each result naming its own request: as one batch where they can be (one by
        one when that is too large for memory)."""
        if len(requests) > 1:
            try:
                results = self.generate_batch(requests, cancel, on_progress)
                return [dataclasses.replace(result, request=request) for request, result in zip(requests, results)]
            except OutOfMemoryError:
                log.warning("a batch of %d images did not fit in memory; making them one by one", len(requests))
        results = self._one_by_one(requests, cancel, on_progress)
        return [dataclasses.replace(result, request=request) for request, result in zip(requests, results)]

    def _save_or_hand_back(self, result: GenerationResult, out_dir: Path | None,
                           on_unsaved: Callable[[GenerationResult, bytes], None] | None,
                           plot_fields: tuple[tuple[str, str], ...] = ()) -> SavedImage:
        try:
            return self.save(result, out_dir=out_dir, plot_fields=plot_fields)
        except NotSavedError as error:
            if on_unsaved is not None:
                on_unsaved(result, error.png)
            raise

    def memory_in_use(self, request: GenerationRequest, device) -> int | None:
        return self.engines.for_request(request).memory_in_use(device)
