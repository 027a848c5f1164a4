"""Which installed models an image's settings name: for the window's "reuse settings", dropped and pasted images,
and `gallery reuse`.

A request made here names its files by path; another tool's parameters name them by A1111 short
hash and by name, matched in that order. No Qt here: the window fills its controls from the
result, the command line writes a `generate` command, and what is not installed is listed for
the person to install.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hypersd_desktop.core.vocab import ModelKind, Scheduler
from hypersd_desktop.engine.recipes import RECIPES_BY_ID, recipe_for_file
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.formats import ImageMetadata
from hypersd_desktop.gallery.formats.common import (
    civitai_airs, detail_notes, hires_note, hires_upscaler, stem, unrepeated_note,
)
from hypersd_desktop.gallery.formats.hosted import hosted_note
from hypersd_desktop.models.registry import InstalledModel


@dataclass
class ModelMatch:
    """The base model, the Hyper-SD file and the style LoRAs found; `missing` names the rest.

    `warnings` say what reuse changes from how the image was made (another sampler, or a
    Hyper-SD recipe chosen for an image made without one); `recipe_settings` is set when the
    image's steps and guidance do not apply and the recipe's own are used."""

    base: InstalledModel | None = None
    hyper: InstalledModel | None = None
    vae: InstalledModel | None = None  # a VAE the image was made with instead of the model's own
    upscaler: InstalledModel | None = None  # the upscaler model its Hires fix (or enlarged init image) ran
    styles: list[LoraSpec] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recipe_settings: bool = False
    lacking: set[str] = field(default_factory=set)  # the kinds (Civitai's words: checkpoint, lora…) missing
    hashes: list[str] = field(default_factory=list)  # the hashes the image gives for what is missing
    downloads: list[str] = field(default_factory=list)  # where the image's tool has what is missing (Civitai)
    by_hash: bool = False  # the downloads are looked up by the hashes the image gives, not named by it


def match_request(request: GenerationRequest, models: list[InstalledModel]) -> ModelMatch:
    """The installed models a request of this app names: by path, else by file name (an image made on another
    computer, or before the models were moved), which a warning says."""
    by_path = {str(Path(m.path)): m for m in models}
    match = ModelMatch()
    moved: list[str] = []

    def installed(path: str, kind: ModelKind) -> InstalledModel | None:
        model = by_path.get(str(Path(path)))
        if model is None or not Path(model.path).exists():  # not here, or a stale entry of a model since moved
            named = find_model(models, stem(path), None, kind)
            if named is not None and (model is None or Path(named.path).exists()):
                model = named
                moved.append(f"{_file_name(path)} ({model.path})")
        return model

    match.base = installed(request.base_model, ModelKind.BASE)
    if match.base is None:
        match.missing.append(f"the base model {_file_name(request.base_model)}")
    if request.unet:
        match.hyper = installed(request.unet, ModelKind.UNET)
        if match.hyper is None:
            match.missing.append(f"the UNet {_file_name(request.unet)}")
    if request.vae:
        match.vae = installed(request.vae, ModelKind.VAE)
        if match.vae is None:
            match.missing.append(f"the VAE {_file_name(request.vae)}")
    for lora in request.loras:
        model = installed(lora.path, ModelKind.LORA)
        if model is None:
            match.missing.append(f"the LoRA {_file_name(lora.path)}")
        elif model.recipe and match.hyper is None and lora.weight == 1.0:
            match.hyper = model
        else:
            match.styles.append(LoraSpec(model.path, lora.weight))
    match.missing.extend(f"the embedding {_file_name(path)}" for path in request.embeddings
                         if installed(path, ModelKind.EMBEDDING) is None)
    if request.upscaler:
        match.upscaler = installed(request.upscaler, ModelKind.UPSCALER)
        if match.upscaler is None:
            match.missing.append(f"the upscaler {_file_name(request.upscaler)}")
    if moved:
        match.warnings.append("The image names its models where they were when it was made; the ones installed "
                              f"here of the same names are used: {', '.join(moved)}.")
    return match


def _file_name(path: str) -> str:
    """The file or folder name of a path written on any system (a Windows path read here too)."""
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1]


def find_model(models: list[InstalledModel], name: str | None, short_hash: str | None,
               kind: ModelKind | None = None) -> InstalledModel | None:
    """A model by one of the hashes other tools write (see `InstalledModel.has_hash`), else by name, id or file stem;
    a name that is a Civitai AIR (as Civitai's generator names its files), the version downloaded from there."""
    candidates = [m for m in models if kind is None or m.kind == kind]
    for model in candidates:
        if short_hash and model.has_hash(short_hash):
            return model
    if air := civitai_airs([(name or "").strip()]):
        return _downloaded(candidates, {str(version) for _, version in air})
    wanted = (name or "").lower()
    named = [m for m in candidates if wanted and wanted in (m.name.lower(), m.id.lower(), Path(m.path).stem.lower())]
    return min(named, key=lambda m: not Path(m.path).exists(), default=None)  # one whose files are here first


def _same_hyper_file(models: list[InstalledModel], name: str) -> InstalledModel | None:
    """The installed Hyper-SD file an image names by another name its tool gave the published file (Fooocus's
    `sdxl_hyper_sd_4step_lora`, `hyper_sdxl_8steps_lora`)."""
    recipe = recipe_for_file(name)
    return next((m for m in models if recipe is not None and m.recipe == recipe.id), None)


def match_metadata(metadata: ImageMetadata, models: list[InstalledModel],
                   hosted_instead: str | None = None) -> ModelMatch:
    """The installed models another tool's parameters name (by hash, then by name). `hosted_instead` is what the
    warning on a model that runs only on its tool's service says to do instead (`hosted_note`)."""
    match = ModelMatch(base=find_model(models, metadata.model_name, metadata.model_hash, ModelKind.BASE) or _downloaded(
        [m for m in models if m.kind == ModelKind.BASE],
        {str(version) for kind, version in metadata.civitai if kind in ("checkpoint", "")}))  # from Civitai before
    hosted = hosted_note(metadata, hosted_instead) if hosted_instead else hosted_note(metadata)
    if hosted:
        match.warnings.append(hosted)
    elif match.base is None and (metadata.model_name or metadata.model_hash):
        match.missing.append(f"the base model {metadata.model_name or metadata.model_hash}")
        match.lacking.add("checkpoint")
        match.hashes.append(metadata.model_hash or "")
    if metadata.vae_name or metadata.vae_hash:  # A1111 names the file, extension and all
        match.vae = find_model(models, stem(metadata.vae_name), metadata.vae_hash, ModelKind.VAE)
        if match.vae is None:
            match.missing.append(f"the VAE {metadata.vae_name or metadata.vae_hash}")
    else:  # Forge's `Module 1: …`: the VAE or a text encoder chosen beside the model, whichever is an installed VAE
        modules = (value for key, value in metadata.extra.items() if re.fullmatch(r"Module \d+", key))
        match.vae = next(filter(None, (find_model(models, stem(name), None, ModelKind.VAE) for name in modules)), None)
    for name, weight, short_hash in metadata.loras:
        model = find_model(models, name, short_hash) or _same_hyper_file(models, name)
        if model is None:
            match.missing.append(f"the LoRA {name}")
            match.lacking.add("lora")
            match.hashes.append(short_hash or "")
        elif model.recipe and match.hyper is None:
            match.hyper = model
        else:
            match.styles.append(LoraSpec(model.path, weight))
    _match_embeddings(metadata, match, models)
    match.downloads = civitai_downloads(metadata, match, models)
    match.by_hash = bool(match.downloads) and not metadata.civitai
    _map_to_recipe(metadata, match, models)
    if name := hires_upscaler(metadata):
        match.upscaler = find_upscaler(models, name)
    upscaler = Path(match.upscaler.path).stem if match.upscaler is not None else None
    match.warnings.extend(note for note in (hires_note(metadata, upscaler),
                                            *detail_notes(metadata, match.recipe_settings),
                                            unrepeated_note(metadata)) if note)
    return match


# The upscalers AUTOMATIC1111 brings, by the names it writes into images, and the files they are
A1111_UPSCALERS = {"r-esrgan 4x+": "RealESRGAN_x4plus", "r-esrgan 4x+ anime6b": "RealESRGAN_x4plus_anime_6B",
                   "r-esrgan 2x+": "RealESRGAN_x2plus", "r-esrgan general 4xv3": "realesr-general-x4v3",
                   "r-esrgan general wdn 4xv3": "realesr-general-wdn-x4v3",
                   "r-esrgan animevideo": "realesr-animevideov3", "esrgan_4x": "ESRGAN_4x",
                   "swinir 4x": "SwinIR_4x"}
_SCALE_WORD = re.compile(r"x?\d+x?")


def _name_words(name: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", name.lower())) - {"esrgan"}


def find_upscaler(models: list[InstalledModel], name: str) -> InstalledModel | None:
    """The installed upscaler an image names: by A1111's name for its own (R-ESRGAN 4x+ is RealESRGAN_x4plus), by
    name, or by the words of its name in any order, as other tools rename files ("ESRGAN 4x Ultrasharp",
    "ESRGAN-UltraSharp-4x" and `4x-UltraSharp.safetensors` are one; a word beyond the scale must be shared)."""
    upscalers = [m for m in models if m.kind == ModelKind.UPSCALER]
    named = stem(name) or ""
    found = find_model(upscalers, A1111_UPSCALERS.get(named.lower(), named), None)
    if found is not None:
        return found
    words = _name_words(named)

    def same(model: InstalledModel) -> bool:
        theirs = _name_words(Path(model.path).stem)
        shared = theirs & words
        return shared in (theirs, words) and any(not _SCALE_WORD.fullmatch(word) for word in shared)

    return next((m for m in upscalers if same(m)), None)



def _downloaded(models: list[InstalledModel], versions: set[str]) -> InstalledModel | None:
    """The model among `models` downloaded from Civitai as one of these versions (its revision), if any."""
    return next((m for m in models if m.source == "download" and m.revision in versions), None) if versions else None


def civitai_downloads(metadata: ImageMetadata, match: ModelMatch, models: list[InstalledModel]) -> list[str]:
    """Where on Civitai what `match` lacks may be: the versions an image from Civitai names, of the kinds lacking
    (one whose kind the image does not say, whenever anything is), less those downloaded here before; for another
    tool's image, the hashes it gives the files missing (Civitai looks a version up by its file's AutoV2 hash, which
    A1111 writes, its sha256 and others)."""
    if metadata.civitai:
        downloaded = {model.revision for model in models if model.source == "download" and model.revision}
        return [f"https://civitai.com/api/download/models/{version}" for kind, version in metadata.civitai
                if match.lacking and (kind in match.lacking or not kind) and str(version) not in downloaded]
    return [f"https://civitai.com/api/v1/model-versions/by-hash/{digest.lower()}"
            for digest in dict.fromkeys(match.hashes) if re.fullmatch(r"[0-9a-fA-F]{8,64}", digest)]


def _match_embeddings(metadata: ImageMetadata, match: ModelMatch, models: list[InstalledModel]) -> None:
    """The embeddings the image's `TI hashes` name must be installed, under the name the prompt uses: an embedding
    applies where a prompt names its file."""
    architecture = match.base.architecture if match.base is not None else None
    embeddings = [m for m in models if m.kind == ModelKind.EMBEDDING
                  and (architecture is None or m.architecture == architecture)]
    for name, short_hash in metadata.embeddings:
        model = find_model(embeddings, name, short_hash)
        if model is None:
            match.missing.append(f"the embedding {name}")
            match.lacking.add("embedding")
            match.hashes.append(short_hash or "")
        elif Path(model.path).stem.lower() != name.lower():  # names are read in any case
            match.warnings.append(
                f"The image used the embedding {name}, which is installed here as {Path(model.path).stem}; write "
                f"{Path(model.path).stem} where the prompt says {name} for it to apply.")


_RUNS = {Scheduler.DDIM_TRAILING: ("ddim", "DDIM (trailing)"), Scheduler.TCD: ("tcd", "TCD"), Scheduler.LCM: ("lcm", "LCM")}


def _map_to_recipe(metadata: ImageMetadata, match: ModelMatch, models: list[InstalledModel]) -> None:
    """A foreign image is reused with the nearest Hyper-SD recipe installed, saying what changes."""
    how = ", ".join(part for part in (
        f"the {metadata.sampler} sampler" if metadata.sampler else "",
        f"{metadata.steps} steps" if metadata.steps else "",
        f"guidance {metadata.guidance:g}" if metadata.guidance is not None else "") if part)
    if match.hyper is None and match.base is not None and match.base.architecture:
        recipes = [(m, RECIPES_BY_ID[m.recipe]) for m in models if m.recipe in RECIPES_BY_ID and m.kind == ModelKind.LORA]
        recipes = [(m, r) for m, r in recipes if r.architecture == match.base.architecture]
        if not recipes:
            return
        steps = metadata.steps or 4
        wants_guidance = (metadata.guidance or 0.0) > 2.0

        def distance(pair):
            recipe = pair[1]
            return (recipe.uses_guidance != wants_guidance, abs(recipe.default_steps - steps), -recipe.default_steps)
        match.hyper, recipe = min(recipes, key=distance)
        match.recipe_settings = True
        # Krita's AI plugin runs Hyper-SD's 8-step CFG LoRA in its "Realtime - Hyper" sampler preset, unnamed
        made = "with Hyper-SD as another tool runs it" if "hyper" in (metadata.sampler or "").lower() \
            else "without Hyper-SD"
        match.warnings.append(
            f"The image was made {made} ({how or 'settings unknown'}); it is reused with {recipe.label}: "
            f"{recipe.default_steps} step{'' if recipe.default_steps == 1 else 's'}, {_RUNS[recipe.scheduler][1]}, "
            f"guidance {recipe.guidance:g}.")
        return
    recipe = RECIPES_BY_ID.get(match.hyper.recipe) if match.hyper is not None else None
    key = metadata.sampler_key
    if recipe is not None and key and key != _RUNS[recipe.scheduler][0]:
        match.warnings.append(
            f"The image was made with the {metadata.sampler} sampler; {recipe.label} runs "
            f"{_RUNS[recipe.scheduler][1]} as its model card does, so the result will differ.")
