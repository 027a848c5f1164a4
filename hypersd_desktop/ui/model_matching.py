"""Which installed models an image's settings name: for "reuse settings" and dropped images.

A request made here names its files by path; another tool's parameters name them by A1111 short
hash and by name, matched in that order. No Qt here: the window fills its controls from the
result, and what is not installed is listed for the person to install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hypersd_desktop.core.vocab import ModelKind
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.formats import ImageMetadata
from hypersd_desktop.models.registry import InstalledModel


@dataclass
class ModelMatch:
    """The base model, the Hyper-SD file and the style LoRAs found; `missing` names the rest."""

    base: InstalledModel | None = None
    hyper: InstalledModel | None = None
    styles: list[LoraSpec] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def match_request(request: GenerationRequest, models: list[InstalledModel]) -> ModelMatch:
    """The installed models a request of this app names (by path)."""
    by_path = {str(Path(m.path)): m for m in models}
    match = ModelMatch(base=by_path.get(str(Path(request.base_model))))
    if match.base is None:
        match.missing.append(f"the base model {Path(request.base_model).name}")
    if request.unet:
        match.hyper = by_path.get(str(Path(request.unet)))
        if match.hyper is None:
            match.missing.append(f"the UNet {Path(request.unet).name}")
    for lora in request.loras:
        model = by_path.get(str(Path(lora.path)))
        if model is None:
            match.missing.append(f"the LoRA {Path(lora.path).name}")
        elif model.recipe and match.hyper is None and lora.weight == 1.0:
            match.hyper = model
        else:
            match.styles.append(lora)
    return match


def find_model(models: list[InstalledModel], name: str | None, short_hash: str | None,
               kind: ModelKind | None = None) -> InstalledModel | None:
    """A model by A1111 short hash (its first 10 hex digits), else by name, id or file stem."""
    candidates = [m for m in models if kind is None or m.kind == kind]
    for model in candidates:
        if short_hash and model.short_hash and model.short_hash.lower().startswith(short_hash.lower()[:10]):
            return model
    wanted = (name or "").lower()
    return next((m for m in candidates if wanted and wanted in (m.name.lower(), m.id.lower(), Path(m.path).stem.lower())),
                None)


def match_metadata(metadata: ImageMetadata, models: list[InstalledModel]) -> ModelMatch:
    """The installed models another tool's parameters name (by hash, then by name)."""
    match = ModelMatch(base=find_model(models, metadata.model_name, metadata.model_hash, ModelKind.BASE))
    if match.base is None and (metadata.model_name or metadata.model_hash):
        match.missing.append(f"the base model {metadata.model_name or metadata.model_hash}")
    for name, weight, short_hash in metadata.loras:
        model = find_model(models, name, short_hash)
        if model is None:
            match.missing.append(f"the LoRA {name}")
        elif model.recipe and match.hyper is None:
            match.hyper = model
        else:
            match.styles.append(LoraSpec(model.path, weight))
    return match
