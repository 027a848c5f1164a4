"""From a request to what will run: the recipe, scheduler, steps, guidance and warnings.

Torch-free, so the GUI can show the same warnings as the engine before a job is sent. Files
are checked from their headers: a LoRA or UNet for the other architecture is an error here,
not a crash in the middle of loading.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import ArchitectureMismatchError, InputError
from hypersd_desktop.core.prompt_tags import network_tags
from hypersd_desktop.core.vocab import (
    Architecture, ControlType, Mode, Preprocessor, Scheduler, WeightsKind, architecture_label,
)
from hypersd_desktop.engine import prompt_editing
from hypersd_desktop.engine.inspect import (
    CONTROLNET_CLASSES, CROSS_ATTENTION_DIMS, INPAINTING_CHANNELS, OTHER_CROSS_ATTENTION_DIMS, T2I_ADAPTER_CLASS,
    WeightsInfo, base_architecture, base_has_vae, base_in_channels, base_prediction, controlnet_weights,
    for_other_family, inspect_file, is_t2i_adapter, not_the_kind, union_control_types, weights_name,
)
from hypersd_desktop.engine.recipes import (
    PLAIN_GUIDANCE, PLAIN_STEPS, Recipe, check_architecture, recipe_by_id, recipe_for_checkpoint, recipe_for_file,
    settings_warnings,
)
from hypersd_desktop.engine.types import GenerationRequest

DEFAULT_TCD_ETA = 1.0


@dataclass(frozen=True)
class Plan:
    """The settings a request resolves to before device placement."""

    recipe: Recipe | None
    architecture: Architecture
    scheduler: Scheduler
    steps: int
    guidance: float
    eta: float
    timesteps: tuple[int, ...] | None
    width: int
    height: int
    warnings: tuple[str, ...]
    # The steps that run: image-to-image and inpainting start `strength` of the way into a `steps`-long
    # schedule, so int(steps × strength) of them run (diffusers' rule). None: all of them.
    denoise_steps: int | None = None
    clip_skip: int = 1  # the layer SD1.5's text encoder is read at, from its end (SDXL: always 1)

    @property
    def running_steps(self) -> int:
        return self.denoise_steps if self.denoise_steps is not None else self.steps


def check_lora_files(request: GenerationRequest, architecture: str) -> None:
    """Raise for a LoRA, embedding, UNet or ControlNet that is missing, unsafe, of the wrong kind, or for the
    other architecture."""
    for lora in request.loras:
        check_weights_file(Path(lora.path), architecture, WeightsKind.LORA, "LoRA")
    for embedding in request.embeddings:
        check_weights_file(Path(embedding), architecture, WeightsKind.EMBEDDING, "embedding")
    if request.unet is not None:
        check_unet_file(Path(request.unet), architecture)
    check_controls(request, architecture)
    check_ip_adapters(request, architecture)


def check_ip_adapters(request: GenerationRequest, architecture: str) -> None:
    """Raise for an IP-Adapter that is missing, not an IP-Adapter or for another UNet than the request's (its
    layers take the text's width), and for an image encoder that is missing or not the one the adapter reads
    pictures with."""
    from hypersd_desktop.engine.ip_adapter_files import adapter_text_width, check_pair, encoder_weights, unet_text_width

    for adapter in request.ip_adapters:
        check_weights_file(Path(adapter.model), architecture, WeightsKind.IP_ADAPTER, "IP-Adapter")
        theirs, ours = adapter_text_width(adapter.model), unet_text_width(request.base_model, request.unet)
        if theirs is not None and ours is not None and theirs != ours:
            label = Architecture(architecture).label
            made_for = Architecture(CROSS_ATTENTION_DIMS[theirs]).label if theirs in CROSS_ATTENTION_DIMS else "other"
            raise ArchitectureMismatchError(
                f"The IP-Adapter {Path(adapter.model).name} is for {made_for} models, whose text is {theirs} wide; "
                f"this {label} model's is {ours}. Use an IP-Adapter for {label}.")
        encoder = Path(adapter.encoder)
        if not encoder_weights(encoder).is_file():
            raise InputError(f"The image encoder {encoder} does not exist; check the path or install it.")
        info = inspect_file(encoder_weights(encoder))
        if info.kind != WeightsKind.IMAGE_ENCODER:
            raise InputError(not_the_kind(encoder, info, WeightsKind.IMAGE_ENCODER.phrase))
        check_pair(adapter.model, encoder)


def check_weights_file(path: Path, architecture: str, kind: WeightsKind, noun: str) -> None:
    """Raise for a `kind` file (a LoRA, an embedding; `noun` in messages) that is missing, unsafe, of another
    kind, or for another base model."""
    if not path.exists():
        raise InputError(f"The {noun} {path} does not exist; check the path or install it.")
    info = inspect_file(path)
    label = Architecture(architecture).label
    if info.family:
        raise ArchitectureMismatchError(f"{for_other_family(path, info)} Use {label} {noun}s with this base model.")
    if info.kind != kind:
        raise InputError(not_the_kind(path, info, kind.phrase))
    if info.architecture is not None and info.architecture != architecture:
        theirs = Architecture(info.architecture).label
        raise ArchitectureMismatchError(f"The {noun} {path.name} is for {theirs}; the base model is {label}. Use an "
                                        f"{label} {noun} or an {theirs} base model.")


def controlnet_architecture(path: Path) -> str | None:
    """SD1.5 or SDXL for a ControlNet (a diffusers folder or a single file); `InputError` for anything else."""
    if not path.exists():
        raise InputError(f"The ControlNet {path} does not exist; check the path or install it.")
    if path.is_dir() and not (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        path = controlnet_weights(path)  # weights downloaded without their config: they say what they are
    if path.is_dir():
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            raise InputError(f"{path.name} is not a diffusers ControlNet folder: its config.json is missing or "
                             "damaged.") from None
        if isinstance(config, dict) and config.get("_class_name") == T2I_ADAPTER_CLASS:  # full_adapter(_xl)
            return Architecture.SDXL if config.get("adapter_type") == "full_adapter_xl" else Architecture.SD15
        if not isinstance(config, dict) or config.get("_class_name") not in CONTROLNET_CLASSES:
            raise InputError(f"{path.name} is not a ControlNet (its config names "
                             f"{config.get('_class_name') if isinstance(config, dict) else 'nothing'}).")
        width = config.get("cross_attention_dim")
        if width in OTHER_CROSS_ATTENTION_DIMS:
            raise InputError(f"{path.name} is a ControlNet for {OTHER_CROSS_ATTENTION_DIMS[width]}, which this app does "
                             "not run; it runs SD1.5 and SDXL models.")
        return CROSS_ATTENTION_DIMS.get(width) if isinstance(width, int) else None
    info = inspect_file(path)
    if info.kind != WeightsKind.CONTROLNET or info.family:
        raise InputError(not_the_kind(path, info, "a ControlNet"))
    if info.architecture is None:
        raise InputError(f"{path.name} is a ControlNet for a base model other than SD1.5 and SDXL; only SD1.5 "
                         "and SDXL ControlNets are used.")
    return info.architecture


def check_controls(request: GenerationRequest, architecture: str) -> None:
    """Raise for a ControlNet that is missing, not a ControlNet or for the other architecture; for a ControlNet
    Union model not told what its image is, or told a type it does not know; and for a Union model mixed with
    single-kind ControlNets, which diffusers runs in different pipelines."""
    unions = []
    for control in request.controls:
        path = Path(control.model)
        check_controlnet(path, architecture)
        if control.preprocessor == Preprocessor.INPAINT and is_t2i_adapter(path):
            raise InputError(f"{weights_name(path)} is a T2I-Adapter, which follows a map (edges, depth, a pose, a "
                             "sketch), not the init image with its masked part open: that is an inpainting "
                             "ControlNet's picture. Choose another preprocessor, or an inpainting ControlNet.")
        types = union_control_types(path)
        unions.append(types is not None)
        if types is None:
            continue
        wanted, name = control.union_type, weights_name(path)
        if wanted is None:
            raise InputError(f"{name} is a ControlNet Union model, which follows several kinds of image: say "
                             f"which kind the control image is (the control type: "
                             f"{', '.join(ControlType.values()[:types])}; on the command line "
                             "--control MODEL:IMAGE:SCALE:TYPE).")
        if wanted.index >= types:
            raise InputError(f"{name} knows {types} control types; \"{wanted}\" ({wanted.label.lower()}) needs "
                             "the ProMax version of the ControlNet Union model.")
    if any(unions) and not all(unions):
        raise InputError("A ControlNet Union model and a single-kind ControlNet cannot steer one image together; "
                         "give the Union model both control images, or use single-kind ControlNets for both.")
    if any(unions) and base_in_channels(request.base_model) == INPAINTING_CHANNELS:
        raise InputError(f"{Path(request.base_model).name} is an inpainting model, which diffusers' ControlNet Union "
                         "pipelines cannot run; choose a text-to-image model, or a single-kind ControlNet.")


def check_controlnet(path: Path, architecture: str) -> None:
    found = controlnet_architecture(path)
    if found is not None and found != architecture:
        raise ArchitectureMismatchError(
            f"The ControlNet {path.name} is for {Architecture(found).label}; the base model is "
            f"{Architecture(architecture).label}. Use an {Architecture(architecture).label} ControlNet."
        )


def check_unet_file(path: Path, architecture: str) -> WeightsInfo:
    """Raise for a UNet override that is missing, unsafe, not a UNet, or for the other architecture."""
    if not path.exists():
        raise InputError(f"The UNet {path} does not exist; check the path or install it.")
    info = inspect_file(path)
    if info.kind not in (WeightsKind.UNET, WeightsKind.CHECKPOINT) or info.family:
        raise InputError(not_the_kind(path, info, "a UNet"))
    if info.architecture is not None and info.architecture != architecture:
        raise ArchitectureMismatchError(
            f"The UNet {path.name} is for {Architecture(info.architecture).label}; the base model is "
            f"{Architecture(architecture).label}."
        )
    return info


def request_recipe(request: GenerationRequest, architecture: str) -> tuple[Recipe | None, list[str]]:
    """The recipe named by the request, or the one its Hyper-SD LoRA or UNet file is."""
    warnings: list[str] = []
    if request.recipe is not None:
        recipe = recipe_by_id(request.recipe)
        check_architecture(recipe, architecture)
        return recipe, warnings
    found = [recipe for recipe in (recipe_for_file(lora.path) for lora in request.loras) if recipe is not None]
    if request.unet is not None and (unet_recipe := recipe_for_file(request.unet)) is not None:
        found.insert(0, unet_recipe)
    if request.unet is None and (built_in := recipe_for_checkpoint(request.base_model)) is not None:
        found.insert(0, built_in)  # a checkpoint that is a Hyper-SD file itself
    for recipe in found:
        check_architecture(recipe, architecture)
    if len(found) > 1:
        warnings.append(
            f"Several Hyper-SD files are applied ({', '.join(r.label for r in found)}); their speed-ups do not "
            f"combine. Following {found[0].label}'s recipe; keep only one."
        )
    return (found[0] if found else None), warnings


# The catalog's VAE for each architecture, by the name the Models tab shows.
CATALOG_VAE_NAMES = {Architecture.SD15: "SD1.5 VAE (ft-MSE)", Architecture.SDXL: "SDXL VAE (fp16 fix)"}


def check_vae(request: GenerationRequest, architecture: str) -> None:
    """A checkpoint shared without a VAE needs the request to name one."""
    if request.vae is None and not base_has_vae(request.base_model):
        catalog = CATALOG_VAE_NAMES[architecture]
        raise InputError(
            f"{Path(request.base_model).name} has no VAE inside it: some checkpoints are shared without one, to be "
            "used with a VAE of your choice. Choose one in the VAE list on the Generate tab, or install "
            f"\"{catalog}\" from the Models tab, which the app then picks for {architecture_label(architecture)} "
            "models without a VAE (on the command line, --vae names one: a file or an installed VAE).")


def reads_negative(request: GenerationRequest) -> bool:
    """Whether `request` reads a negative prompt: it runs with guidance above 1 (its own, or its recipe's)."""
    return plan(request, base_architecture(request.base_model)).guidance > 1


def plan(request: GenerationRequest, architecture: str) -> Plan:
    """Resolve what the request leaves open from its recipe, and collect warnings."""
    check_lora_files(request, architecture)
    check_vae(request, architecture)
    recipe, warnings = request_recipe(request, architecture)
    if request.scheduler != Scheduler.AUTO:
        scheduler = request.scheduler
    else:
        scheduler = recipe.scheduler if recipe else Scheduler.BASE
    timesteps = request.timesteps
    if timesteps is None and recipe is not None and scheduler == recipe.scheduler:
        timesteps = recipe.timesteps
    if request.steps is not None:
        steps = request.steps
        if timesteps is not None and request.timesteps is None and len(timesteps) != steps:
            timesteps = None  # the recipe's fixed timesteps only apply at its own step count
    else:
        steps = len(timesteps) if timesteps else (recipe.default_steps if recipe else PLAIN_STEPS)
    if timesteps is not None and len(timesteps) != steps:
        raise InputError(f"{len(timesteps)} timesteps were given for {steps} steps; give one timestep per step.")
    if request.guidance is not None:
        guidance = request.guidance
    else:
        guidance = recipe.guidance if recipe else PLAIN_GUIDANCE
    if request.eta is not None:
        eta = request.eta
    elif scheduler == Scheduler.TCD:
        eta = recipe.eta if recipe is not None and recipe.eta is not None else DEFAULT_TCD_ETA
    else:
        eta = 0.0
    warnings += settings_warnings(recipe, steps, guidance, scheduler, bool(request.negative_prompt))
    warnings += tag_warnings(request)
    warnings += [f"The control type \"{control.control_type}\" was ignored: {Path(control.model).name} is a "
                 "single-kind ControlNet, which follows what it was trained on; types are for ControlNet Union models."
                 for control in request.controls
                 if control.control_type is not None and union_control_types(Path(control.model)) is None]
    warnings += prompt_editing.and_warnings(request.prompt, request.negative_prompt if guidance > 1 else "")
    if recipe is not None and base_prediction(request.base_model)[0] is not None:
        warnings.append(f"{Path(request.base_model).name} is a v-prediction model, and Hyper-SD's files are trained "
                        "on noise-prediction SD1.5 and SDXL: with one, its images come out wrong. Generate without "
                        "the Hyper-SD file (about 28 steps at guidance 5, as v-prediction models' cards advise).")
    clip_skip = request.clip_skip
    if clip_skip > 1 and architecture == Architecture.SDXL:
        warnings.append(f"Clip skip {clip_skip} was ignored: it applies to SD1.5 models, and SDXL already reads its "
                        "text encoders' second-to-last layers (as AUTOMATIC1111 does with SDXL).")
        clip_skip = 1
    denoise_steps = None
    if request.mode != Mode.TEXT_TO_IMAGE:
        steps, denoise_steps = _steps_with_strength(steps, request.strength, timesteps is not None, warnings)
    if (request.hires_scale is not None and request.hires_steps is None and timesteps is not None
            and int(len(timesteps) * request.hires_strength) < 1):
        # the second pass starts hires_strength into the same fixed timesteps: say so before the first pass runs
        raise InputError(f"Hires fix strength {request.hires_strength:g} leaves none of the {len(timesteps)} fixed "
                         f"timesteps of {recipe.label if recipe else 'these timesteps'} to run; raise it to at least "
                         f"{1 / len(timesteps):g}.")
    for part, wanted in request.detail_passes():
        if timesteps is not None and int(len(timesteps) * wanted.strength) < 1:
            # each face (hand) is inpainted from the same fixed timesteps: say so before the image is made
            raise InputError(f"The {part} pass's strength {wanted.strength:g} leaves none of the {len(timesteps)} "
                             f"fixed timesteps of {recipe.label if recipe else 'these timesteps'} to run; raise it to "
                             f"at least {1 / len(timesteps):g}.")
    warnings += prompt_editing.unchanging_warnings(request.prompt, request.negative_prompt if guidance > 1 else "",
                                                   len(timesteps) if timesteps else steps, denoise_steps)
    size = Architecture(architecture).default_size
    return Plan(
        recipe=recipe,
        architecture=architecture,
        scheduler=scheduler,
        steps=steps,
        guidance=guidance,
        eta=eta,
        timesteps=timesteps,
        width=request.width or size,
        height=request.height or size,
        warnings=tuple(warnings),
        denoise_steps=denoise_steps,
        clip_skip=clip_skip,
    )


def tag_warnings(request: GenerationRequest) -> list[str]:
    """What the prompts' A1111 `<lora:…>` tags did not do: the text encoder does not read them (as in A1111), and
    the LoRAs they name apply from the request's LoRA list, where the window, the command line and batch jobs put
    the installed ones a tag names by their file's name."""
    listed = {Path(lora.path).stem.lower() for lora in request.loras}
    warnings = []
    for label, text in (("prompt", request.prompt), ("negative prompt", request.negative_prompt)):
        missing = [f"<{kind}:{name}{':' + weight if weight else ''}>" for kind, name, weight in network_tags(text)
                   if name.lower() not in listed]
        if missing:
            warnings.append(f"The {label}'s {', '.join(missing)} {'tag is' if len(missing) == 1 else 'tags are'} "
                            "left out of the text the model reads and applies no LoRA here: no LoRA installed for "
                            "this model has that file name. Install it, or tick the LoRA in the LoRA list (or give "
                            "it with --lora) to apply it.")
    return warnings


def _steps_with_strength(steps: int, strength: float, fixed_timesteps: bool, warnings: list[str]) -> tuple[int, int]:
    """The schedule's length and the steps that run from it at `strength`; at least one runs.

    At 1–4 steps strength moves in coarse jumps: 4 steps at strength 0.6 run 2, not 2.4. When
    steps × strength is under one, the schedule is lengthened until one step runs, with a warning.
    """
    runs = int(steps * strength)
    if runs >= 1:
        return steps, runs
    if fixed_timesteps:
        raise InputError(f"Strength {strength:g} leaves none of the {steps} fixed timesteps to run; raise the strength "
                         f"to at least {1 / steps:g}.")
    longer = steps
    while int(longer * strength) < 1:
        longer += 1
    warnings.append(f"Strength {strength:g} × {steps} step{'s' if steps > 1 else ''} leaves under one step to run, so "
                    f"the last step of a {longer}-step schedule ran instead.")
    return longer, 1


_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
# Pixels per side of a VAE tile when tiling is on. diffusers' default is the VAE's sample size, which for SDXL is
# 1024: at SDXL's own 1024² nothing would be tiled, so the engine sets 512 for both architectures.
VAE_TILE = 512
# What the VAE decode holds at its peak, in bytes per image pixel and byte of the VAE's dtype (SD1.5's and SDXL's
# decoders are the same shape). Measured: 962-969 on the CPU (SDXL's VAE, fp32, 256² to 1024², the profiler's
# allocations), about 1250 on an H200 (SDXL 1024² peaked at 11.5 GiB with 6.6 GiB of weights, fp32 decode).
DECODE_BYTES_PER_PIXEL = 1280


class Decode(enum.Enum):
    """How the VAE decodes an image, by the memory free for it."""

    WHOLE = "whole"  # replayed as a graph where graphs are on
    WHOLE_EAGER = "whole, eager"  # fits, but not twice over: recording a graph would need a second copy
    TILES = "tiles"


def decode_memory(width: int, height: int, vae_dtype: str, tiled: bool = False) -> int:
    """Bytes the VAE decode of one image holds at its peak: an estimate from measurements, not a floor. Tiled, one
    tile's worth, plus the decoded tiles and the finished image."""
    if not tiled:
        return DECODE_BYTES_PER_PIXEL * width * height * _BYTES[vae_dtype]
    tile = min(width, VAE_TILE) * min(height, VAE_TILE)
    return DECODE_BYTES_PER_PIXEL * tile * _BYTES[vae_dtype] + 3 * 3 * width * height * _BYTES[vae_dtype]


def choose_decode(width: int, height: int, vae_dtype: str, free: int | None) -> Decode:
    """Decode whole when the device has room for it (twice over to record a graph of it), else in tiles, which
    is slower (about 1.5 times the work at 1024², as tiles overlap) but needs a quarter of the memory or less."""
    need = decode_memory(width, height, vae_dtype)
    if free is None or 2 * need <= free:
        return Decode.WHOLE
    return Decode.WHOLE_EAGER if need <= free else Decode.TILES


def working_memory_floor(settings: Plan, batch_size: int, dtype: str, vae_dtype: str) -> int:
    """Bytes a run needs beyond the loaded weights, at the least.

    A floor, not an estimate: the two biggest tensors that must exist at once. The VAE decodes
    one image at a time, in tiles when memory is short; its last block holds 128 channels of one
    tile at full resolution (input and output), besides the finished image. The UNet's first block
    holds 320 channels at 1/8 resolution for every image of the batch, twice with guidance. A
    request above the floor cannot run; one below it may still run out of memory, which the
    engine reports.
    """
    width, height = settings.width, settings.height
    vae = 2 * 128 * min(width, VAE_TILE) * min(height, VAE_TILE) * _BYTES[vae_dtype] + 3 * width * height * 4
    copies = batch_size * (2 if settings.guidance > 1 else 1)
    unet = 2 * 320 * (width // 8) * (height // 8) * copies * _BYTES[dtype]
    return max(vae, unet)


def check_fits(settings: Plan, batch_size: int, dtype: str, vae_dtype: str, free: int | None, device: str) -> None:
    """`InputError` before any work when the device cannot hold even the floor of the run."""
    if free is None:
        return
    need = working_memory_floor(settings, batch_size, dtype, vae_dtype)
    if need <= free:
        return
    where = "memory" if device == "cpu" else f"{device.upper()} memory"
    advice = ["make the batch smaller"] if batch_size > 1 else []
    advice.append("make the image smaller")
    raise InputError(
        f"{batch_size} × {settings.width} × {settings.height} needs at least {need / 2**30:.1f} GiB of free {where} "
        f"besides the model, and {free / 2**30:.1f} GiB is free. To fit, {', or '.join(advice)}."
    )
