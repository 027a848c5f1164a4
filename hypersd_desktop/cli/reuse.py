"""`hypersd-desktop gallery reuse`: the `generate` command that makes an image again.

An image made here holds its exact request, which the command repeats. Another tool's image (or
its generation data copied as text) gives its settings; the command names the installed models
they match, by hash and then by name, as the window's reuse does (`worker.matching`), and a note
says what it changes and what is not installed.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.prompt_tags import embeddings_by_name, without_network_tags
from hypersd_desktop.core.vocab import Decoder, Preprocessor, Tiling
from hypersd_desktop.engine.plot import PLOT_KEY, stored_axes
from hypersd_desktop.engine.recipes import RECIPES_BY_ID, recipe_for_file
from hypersd_desktop.engine.types import TILE_MASK_BLUR, TILE_PADDING, GenerationRequest, SeamsFix
from hypersd_desktop.gallery.formats import ImageMetadata, MAX_PASTED, parse_text
from hypersd_desktop.gallery.formats.common import (
    DETAIL_PARTS, detail_pass, hires_guidance, hires_prompts, hires_settings, picture_strength, stem, tiling_of,
    variation_of,
)
from hypersd_desktop.gallery.formats.hosted import HOSTED_MODELS
from hypersd_desktop.gallery.formats.syntax import reused_prompts
from hypersd_desktop.gallery.gallery import read_metadata
from hypersd_desktop.gallery.sidecars import settings_file
from hypersd_desktop.gallery.store import ImageRecord
from hypersd_desktop.models.registry import InstalledModel
from hypersd_desktop.worker.matching import match_metadata

NOT_MADE_HERE = "this image was not made here; the command repeats its settings with the models installed here."
NOTHING_READ = ("{what} holds no generation settings to repeat: give an image with its parameters (a PNG from "
                "A1111, ComfyUI, InvokeAI …), the text A1111 or Civitai copies (\"Copy generation data\"), or a "
                "ComfyUI workflow's .json.")


def reuse_command(record: ImageRecord, models: list[InstalledModel]) -> tuple[str, str | None]:
    """The `generate` command line that reproduces a gallery image (exactly, when its request is stored), and a
    note on what it cannot repeat. What the gallery's row lacks of another tool's image is read from its file."""
    damaged = None
    if record.request:
        try:
            return with_plot(request_command(GenerationRequest.from_json(record.request)),
                             json.loads(record.request).get(PLOT_KEY))
        except InputError as error:
            damaged = str(error).rstrip(".")
    try:
        written = read_metadata(Path(record.path))[0]
    except OSError:  # gone: what the row holds is repeated
        written = None
    settings = _row_settings(record) if written is None else \
        replace(written, width=written.width or record.width, height=written.height or record.height)
    where = "the gallery shows" if written is None else "its file holds"
    return with_plot(settings_command(settings, models, f"{damaged}; the command repeats the settings {where}."
                                      if damaged else NOT_MADE_HERE), written.extra if written else None)


def source_command(source: str, models: list[InstalledModel]) -> tuple[str, str | None]:
    """The command for an image file, a text file of generation data, or `-`: the text piped in."""
    if source == "-":
        metadata, what = parse_text(sys.stdin.read(MAX_PASTED)), "The text piped in"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"{source} is neither an image id of the gallery (`gallery list` shows them) nor a file.")
        try:
            metadata, width, height, _ = read_metadata(path)
        except OSError:  # not an image: generation data as text (A1111's .txt beside an image, a workflow's .json)
            metadata = settings_file(path)
        else:
            metadata = replace(metadata, width=metadata.width or width, height=metadata.height or height) \
                if metadata is not None else None
        what = path.name
    if metadata is None:
        raise InputError(NOTHING_READ.format(what=what))
    if metadata.request:  # made here
        try:
            return with_plot(request_command(GenerationRequest.from_dict(metadata.request)),
                             metadata.request.get(PLOT_KEY))
        except InputError as error:
            return settings_command(metadata, models, f"{str(error).rstrip('.')}; the command repeats its "
                                                      "A1111 parameters.")
    return with_plot(settings_command(metadata, models), metadata.extra)  # another tool's grid: its plot too


def _row_settings(record: ImageRecord) -> ImageMetadata:
    """What the gallery's row holds of an image's settings."""
    return ImageMetadata(
        format=record.metadata_format or "none", prompt=record.prompt, negative_prompt=record.negative_prompt,
        steps=record.steps, sampler=record.scheduler, guidance=record.guidance, seed=record.seed, width=record.width,
        height=record.height, model_name=record.model_name, model_hash=record.model_hash, loras=record.loras)


def settings_command(metadata: ImageMetadata, models: list[InstalledModel],
                     first_note: str = NOT_MADE_HERE) -> tuple[str, str]:
    """The command that repeats another tool's settings with the installed models they name (matched as the
    window's reuse matches them: by hash, then by name), and a note on what changes and what is missing. A model
    not installed is named as the image names it; one that runs only on its tool's service, as MODEL."""
    match = match_metadata(metadata, models, hosted_instead="name a model installed here in place of MODEL")
    steps, guidance = metadata.steps, metadata.guidance
    if match.recipe_settings:  # made without Hyper-SD: the recipe's own settings
        recipe = RECIPES_BY_ID[match.hyper.recipe]
        steps, guidance = recipe.default_steps, recipe.guidance
    prompt, negative, rewritten = reused_prompts(metadata.format, metadata.prompt, metadata.negative_prompt,
                                                 metadata.extra)
    # the LoRAs installed here are --lora options (a tag would name them by the image's name for them); a tag
    # naming one not installed is kept, for the command to apply it once it is installed under that name
    missing = {name.lower() for name, _, _ in metadata.loras if f"the LoRA {name}" in match.missing}
    prompt = without_network_tags(prompt, {name.lower() for name, _, _ in metadata.loras} - missing)
    prompt, negative = embeddings_by_name(prompt), embeddings_by_name(negative)
    hosted = metadata.format in HOSTED_MODELS  # its model is not to be had: another is named in its place
    model = None if hosted else match.base.path if match.base is not None else metadata.model_name
    words = ["hypersd-desktop", "generate", "--model", model or "MODEL", "--prompt", prompt]
    words += ["--negative", negative] if negative else []
    if match.hyper is not None:
        words += ["--lora", match.hyper.path]
        named = recipe_for_file(match.hyper.path)
        if named is None or named.id != match.hyper.recipe:  # its file name does not say which recipe it is
            words += ["--recipe", match.hyper.recipe]
    for lora in match.styles:
        words += ["--lora", f"{lora.path}:{lora.weight:g}"]
    if match.vae is not None or stem(metadata.vae_name):
        words += ["--vae", match.vae.path if match.vae is not None else stem(metadata.vae_name)]
    for flag, value in (("--steps", steps), ("--guidance", guidance), ("--seed", metadata.seed),
                        ("--width", metadata.width), ("--height", metadata.height)):
        if value is not None:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if metadata.clip_skip and metadata.clip_skip > 1:
        words += ["--clip-skip", str(metadata.clip_skip)]
    if tiling_of(metadata) != Tiling.OFF:
        words += ["--tiling", tiling_of(metadata).value]
    variation = variation_of(metadata)
    if variation is not None and picture_strength(metadata) is None:  # an image made from the prompt, varied
        words += ["--variation-seed", str(variation[0]), "--variation-strength", f"{variation[1]:g}"]
    hires = hires_settings(metadata)
    if hires:  # the image's Size is its first pass; this app's Hires fix makes the second
        words += ["--hires", f"{hires.scale:g}", "--hires-strength", f"{hires.strength:g}"]
        # A1111 runs all of the first pass's steps again (or its Hires steps); a Hyper-SD recipe in place of the
        # image's sampler runs its share of the recipe's
        words += ["--hires-steps", str(hires.steps)] if hires.steps and not match.recipe_settings else []
        words += ["--upscaler", match.upscaler.path] if match.upscaler is not None else []
        # its own CFG scale, where the image's guidance is the one run (not a Hyper-SD recipe's in its place)
        words += _hires_own_words(*hires_prompts(metadata),
                                  None if match.recipe_settings else hires_guidance(metadata))
    for part in DETAIL_PARTS:  # ADetailer's face and hand passes, as --detail-faces and --detail-hands (the pose
        found = detail_pass(metadata, part)  # models find them), with its own steps and CFG scale where the image's run
        if found is not None and match.recipe_settings:
            found = found._replace(steps=None, guidance=None)
        words += _detail_words(part, found) if found is not None else []
    return shlex.join(words), " ".join([first_note, *match.warnings, *filter(None, [rewritten]),
                                        *filter(None, [_missing_note(match.missing, match.downloads)])])


def _detail_words(part: str, wanted) -> list[str]:
    """The --detail-faces (`part` "face") or --detail-hands ("hand") options of a detail pass (a request's
    `DetailPass`, or another tool's `PartPass`)."""
    words = [f"--detail-{part}s", f"{wanted.strength:g}"]
    words += [f"--{part}-prompt", wanted.prompt] if wanted.prompt else []
    words += [f"--{part}-negative", wanted.negative_prompt] if wanted.negative_prompt else []
    words += [f"--{part}-padding", str(wanted.padding)] if wanted.padding != 32 else []
    words += [f"--{part}-largest", str(wanted.largest)] if wanted.largest else []
    words += [f"--{part}-steps", str(wanted.steps)] if wanted.steps is not None else []
    words += [f"--{part}-cfg", f"{wanted.guidance:g}"] if wanted.guidance is not None else []
    size = wanted.size if hasattr(wanted, "size") else (wanted.width, wanted.height)  # a PartPass's, a DetailPass's
    words += [f"--{part}-size", f"{size[0]}x{size[1]}"] if size and size[0] and size[1] else []
    words += [f"--{part}-dilate", str(wanted.dilate_erode)] if wanted.dilate_erode else []
    offset = f"--{part}-offset={wanted.x_offset},{wanted.y_offset}"  # one word: "-3,2" alone reads as an option
    words += [offset] if wanted.x_offset or wanted.y_offset else []
    ratios = (wanted.min_ratio, wanted.max_ratio)
    words += [f"--{part}-ratios", f"{ratios[0]:g},{ratios[1]:g}"] if ratios != (0.0, 1.0) else []
    merge = "invert" if "invert" in wanted.merge else wanted.merge  # --face-merge's word
    words += [f"--{part}-merge", merge] if merge != "none" else []
    return words + ([f"--{part}-confidence", f"{wanted.confidence:g}"] if wanted.confidence != 0.3 else [])


def _hires_own_words(prompt: str | None, negative: str | None, guidance: float | None) -> list[str]:
    return [*(["--hires-prompt", prompt] if prompt else []), *(["--hires-negative", negative] if negative else []),
            *(["--hires-cfg", f"{guidance:g}"] if guidance is not None else [])]


def _missing_note(missing: list[str], downloads: list[str]) -> str | None:
    if not missing:
        return None
    fetch = (f" `hypersd-desktop models download {' '.join(downloads)}` fetches "
             f"{'it' if len(downloads) == 1 else 'them'} from Civitai.") if downloads else ""
    return f"Not installed here: {', '.join(missing)}.{fetch}"


def with_plot(command: tuple[str, str | None], fields: object) -> tuple[str, str | None]:
    """A grid's command makes its X/Y/Z plot again: its first image's, with the plot's axes (see `stored_axes`)."""
    axes = stored_axes(fields)
    if axes is None:
        return command
    words = [word for flag, axis in zip(("--x-axis", "--y-axis", "--z-axis"), axes) if axis is not None
             for word in (flag, f"{axis.axis.value}:{axis.values}")]
    text, note = command
    return f"{text} {shlex.join(words)}", note


def request_command(request: GenerationRequest) -> tuple[str, str | None]:
    """The command that repeats a request made here."""
    words, note = _request_words(request, InputImages(AppPaths.default().inputs))
    return shlex.join(["hypersd-desktop", "generate", *words]), note


def _request_words(request: GenerationRequest, inputs: InputImages) -> tuple[list[str], str | None]:
    """The `generate` options of a stored request, and a note on what they cannot repeat (None: all of it). A model
    whose path is gone (an image made on another computer, or before the models moved) is named by its file name,
    which `generate` finds among the installed models."""
    renamed: list[str] = []

    def here(path: str | None) -> str | None:
        if path is None or Path(path).exists():
            return path
        renamed.append(stem(path))
        return stem(path)

    words = ["--model", here(request.base_model), "--prompt", request.prompt]
    if request.negative_prompt:
        words += ["--negative", request.negative_prompt]
    for lora in request.loras:
        words += ["--lora", f"{here(lora.path)}:{lora.weight:g}"]
    for embedding in request.embeddings:
        words += ["--embedding", here(embedding)]
    options = {"--unet": here(request.unet), "--vae": here(request.vae), "--upscaler": here(request.upscaler),
               "--config": request.base_config,
               "--recipe": request.recipe, "--steps": request.steps, "--guidance": request.guidance,
               "--eta": request.eta, "--width": request.width, "--height": request.height,
               "--backend": request.backend, "--device": request.device, "--dtype": request.dtype,
               "--scheduler": request.scheduler}
    for flag, value in options.items():
        if value is not None and value != "auto":
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if request.timesteps:
        words += ["--timesteps", ",".join(str(t) for t in request.timesteps)]
    if request.clip_skip > 1:
        words += ["--clip-skip", str(request.clip_skip)]
    if request.tiling != Tiling.OFF:
        words += ["--tiling", request.tiling.value]
    if request.decoder == Decoder.TAESD and request.taesd:
        words += ["--taesd", here(request.taesd), "--fast-decode"]
    if request.hires_scale is not None:
        words += ["--hires", f"{request.hires_scale:g}", "--hires-strength", f"{request.hires_strength:g}"]
        words += ["--hires-steps", str(request.hires_steps)] if request.hires_steps else []
        words += _hires_own_words(request.hires_prompt, request.hires_negative_prompt, request.hires_guidance)
    if request.detail_only:
        words += ["--detail-only"]
    if request.repaint_tile is not None:
        words += ["--tiles", str(request.repaint_tile)]
        words += ["--tile-padding", str(request.tile_padding)] if request.tile_padding != TILE_PADDING else []
        words += ["--tile-mask-blur", str(request.tile_mask_blur)] if request.tile_mask_blur != TILE_MASK_BLUR else []
    fix = request.seams_fix
    if fix is not None:
        words += ["--seams-fix", fix.mode.value]
        words += [word for option, value, default in (
            ("strength", fix.strength, SeamsFix.strength), ("width", fix.width, SeamsFix.width),
            ("mask-blur", fix.mask_blur, SeamsFix.mask_blur), ("padding", fix.padding, SeamsFix.padding))
            if value != default for word in (f"--seams-{option}", f"{value:g}")]
    image_words, notes = _image_words(request, inputs, here)
    for part, wanted in request.detail_passes():
        words += _detail_words(part, wanted)
        notes += [f"the command line's {part} pass blurs its masks 4 pixels, not {wanted.mask_blur}"] \
            if wanted.mask_blur != 4 else []
    models = list(dict.fromkeys((wanted.model, wanted.detector) for _part, wanted in request.detail_passes()))
    if models:  # the first pass's pose models: the command line's passes share them
        words += ["--pose-model", here(models[0][0]), "--person-detector", here(models[0][1])]
        notes += ["the command line's face and hand passes share one pose model and person detector"] \
            if len(models) > 1 else []
    if renamed:
        notes.append(f"the models at the paths it names are gone, so it names them by file name, as installed here "
                     f"({', '.join(renamed)})")
    note = f"the command cannot repeat all of the request: {'; '.join(notes)}." if notes else None
    if request.varied:
        words += ["--variation-seed", str(request.variation_seed), "--variation-strength",
                  f"{request.variation_strength:g}"]
    return words + image_words + ["--seed", str(request.seed)], note


def _image_words(request: GenerationRequest, inputs: InputImages,
                 here: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """The init image, mask, control images and IP-Adapter pictures of a request as `generate` takes them: files of
    the app's input store, which keeps them by their sha256. What the options cannot say is noted."""
    words: list[str] = []
    notes: list[str] = []

    def path_of(digest: str, what: str) -> str:
        found = inputs.find(digest)
        if found is None:
            notes.append(f"its {what} ({digest[:12]}…) is no longer in {inputs.root}")
        return str(found or f"{digest[:12]}-MISSING.png")

    if request.init_image is not None:
        words += ["--init-image", path_of(request.init_image, "init image"), "--strength", f"{request.strength:g}"]
    if request.mask_image is not None:
        words += ["--mask", path_of(request.mask_image, "mask"), "--mask-blur", str(request.mask_blur)]
        if request.masked_padding is not None:
            words += ["--only-masked", str(request.masked_padding)]
    for control in request.controls:
        kind = f":{control.control_type}" if control.control_type is not None else ""
        image = path_of(control.image, "control image")
        words += ["--control", f"{here(control.model)}:{image}:{control.scale:g}{kind}"]
    preprocessors = {control.preprocessor for control in request.controls}
    if len(preprocessors) == 1 and preprocessors != {Preprocessor.NONE}:  # a scribble, an inpainting's init image
        words += ["--preprocess", preprocessors.pop().value]
    elif len(preprocessors) > 1:
        notes.append("its control images were made in different ways, and --preprocess applies to all of them")
    if any((control.start, control.end) != (0.0, 1.0) for control in request.controls):
        notes.append("the command line has no ControlNet start and end: the command steers over all steps")
    for adapter in request.ip_adapters:
        words += ["--ip-adapter", f"{here(adapter.model)}:{path_of(adapter.image, 'IP-Adapter picture')}:"
                                  f"{adapter.scale:g}"]
    if request.ip_adapters:  # one encoder for all (`GenerationRequest.validate`)
        words += ["--image-encoder", here(request.ip_adapters[0].encoder)]
    return words, notes
