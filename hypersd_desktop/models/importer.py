"""Importing weights the user already has: a file, a diffusers folder, or a whole models folder.

Kind and architecture come from the safetensors header (the engine's inspector); the sha256 is
computed once, with progress, and kept with the AUTOMATIC1111 short hash. A model is used in
place ("reference": never deleted by the app) or copied into the app's models folder. Pickle
files are refused with the reason; broken or unknown files are listed, never crash the scan.
AUTOMATIC1111 (`models/Stable-diffusion`, `models/Lora`, …) and ComfyUI (`models/checkpoints`,
`models/loras`, …) folders need nothing special: every weights file below the folder is
judged by its header, not by where it sits.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import AppError, ModelFormatError, UnsafeFileError
from hypersd_desktop.core.files import NOT_TEXT_NAME, copy_file, name_is_text, replace_file, shown_path
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.vocab import (
    Architecture, ImportStatus, ModelKind, ModelLayout, WeightsKind, upscaler_families,
)
from hypersd_desktop.engine.inspect import (
    DEPTH_MODEL_TYPES, PERSON_DETECTOR_TYPES, PICKLE_SUFFIXES, PIPELINE_CLASSES, POSE_MODEL_TYPES, WEIGHTS_SUFFIXES,
    family_phrase, folder_family, folder_name, inspect_file, map_model_type,
    unknown_phrase, weights_name,
)
from hypersd_desktop.core.hashes import other_tools_hashes, sha256_file
from hypersd_desktop.engine.ip_adapter_files import encoder_shape, is_encoder_folder
from hypersd_desktop.engine.tagger import is_tagger, read_tag_list, tagger_files
from hypersd_desktop.models.catalog import slug
from hypersd_desktop.models.model_notes import NOTED_KINDS, ModelNotes, read_notes
from hypersd_desktop.models.registry import InstalledModel, ModelFile, Registry

KIND_OF_WEIGHTS = {WeightsKind.CHECKPOINT: ModelKind.BASE, WeightsKind.UNET: ModelKind.UNET, WeightsKind.VAE: ModelKind.VAE,
                   WeightsKind.TAESD: ModelKind.TAESD, WeightsKind.LORA: ModelKind.LORA,
                   WeightsKind.CONTROLNET: ModelKind.CONTROLNET, WeightsKind.EMBEDDING: ModelKind.EMBEDDING,
                   WeightsKind.UPSCALER: ModelKind.UPSCALER, WeightsKind.IP_ADAPTER: ModelKind.IP_ADAPTER,
                   WeightsKind.IMAGE_ENCODER: ModelKind.IMAGE_ENCODER}
MAP_MODEL_KINDS = {**dict.fromkeys(DEPTH_MODEL_TYPES, ModelKind.DEPTH),  # by the folder's model_type
                   **dict.fromkeys(POSE_MODEL_TYPES, ModelKind.POSE),
                   **dict.fromkeys(PERSON_DETECTOR_TYPES, ModelKind.DETECTOR)}


@dataclass(frozen=True)
class ImportItem:
    """What happened to one file or folder of an import."""

    path: str
    status: ImportStatus
    kind: str | None = None
    architecture: str | None = None
    reason: str = ""
    model_id: str | None = None


class Importer:
    """Imports into `registry`; copies go under `models_dir/<id>/`."""

    def __init__(self, registry: Registry, models_dir: Path) -> None:
        self.registry = registry
        self.models_dir = models_dir

    def import_path(self, path: Path, copy: bool = False,
                    on_progress: Callable[[TransferProgress], None] | None = None,
                    cancel: CancelToken | None = None, sha256: str | None = None,
                    leave_out: set[str] | None = None) -> list[ImportItem]:
        """Import a weights file, a diffusers folder, or every model found below a folder (but those at the paths
        `leave_out` names). `sha256`: a file's, checked a moment ago (a download, against the one its site
        publishes), taken as it is where hashing a 7 GB checkpoint again would take a while."""
        cancel = cancel or CancelToken()
        path = path.expanduser().resolve()
        if not path.exists():
            return [ImportItem(str(path), ImportStatus.BROKEN, reason="does not exist")]
        if path.is_dir() and path.suffix.lower() in WEIGHTS_SUFFIXES and not _is_diffusers_folder(path):
            return [ImportItem(str(path), ImportStatus.BROKEN, reason="a folder named like a weights file, not a file")]
        if not path.is_dir() and not path.is_file():
            return [ImportItem(str(path), ImportStatus.BROKEN, reason="not a regular file (a pipe or a device)")]
        candidates = [path] if path.is_file() or _is_diffusers_folder(path) else list(_scan(path))
        candidates = [candidate for candidate in candidates if str(candidate) not in (leave_out or ())]
        total = sum(_size(candidate) for candidate in candidates) * (2 if copy else 1)  # a copy reads them twice
        meter = TransferMeter("import", total, 0, on_progress)
        items = []
        for candidate in candidates:
            cancel.raise_if_cancelled()
            items.append(self._import_one(candidate, copy, meter, cancel, sha256 if candidate == path else None))
        meter.advance("", 0, force=True)
        return items

    def _import_one(self, path: Path, copy: bool, meter: TransferMeter, cancel: CancelToken,
                    sha256: str | None) -> ImportItem:
        """One model, its bytes counted on `meter` once read (and once more copied) whatever becomes of it."""
        start = meter.done
        item = self._import_checked(path, copy, meter, cancel, sha256)
        meter.advance(shown_path(path.name), start + _size(path) * (2 if copy else 1) - meter.done)
        return item

    def _import_checked(self, path: Path, copy: bool, meter: TransferMeter, cancel: CancelToken,
                        sha256: str | None) -> ImportItem:
        if not name_is_text(path):
            return ImportItem(shown_path(path), ImportStatus.BROKEN, reason=NOT_TEXT_NAME)
        existing = self.registry.find(str(path))
        if existing is not None and existing.size == _size(path):
            meter.advance(path.name, _size(path))
            return ImportItem(str(path), ImportStatus.ALREADY, existing.kind, existing.architecture, model_id=existing.id)
        try:
            if is_tagger(path):
                return self._import_tagger(path, copy, meter, cancel)
            if path.is_dir():
                return self._import_folder(path, copy, meter, cancel)
            return self._import_file(path, copy, meter, cancel, sha256)
        except UnsafeFileError as error:
            meter.advance(path.name, _size(path))
            return ImportItem(str(path), ImportStatus.REFUSED, reason=str(error))
        except (ModelFormatError, OSError, ValueError) as error:
            meter.advance(path.name, _size(path))
            return ImportItem(str(path), ImportStatus.BROKEN, reason=str(error))

    def _import_file(self, path: Path, copy: bool, meter: TransferMeter, cancel: CancelToken,
                     sha256: str | None) -> ImportItem:
        info = inspect_file(path)
        kind = KIND_OF_WEIGHTS.get(info.kind)
        needs_architecture = kind in (ModelKind.BASE, ModelKind.CONTROLNET, ModelKind.EMBEDDING)
        if (kind is None or info.kind == WeightsKind.UNKNOWN or info.family
                or (needs_architecture and info.architecture is None)):
            meter.advance(path.name, _size(path))
            if info.family:
                what = family_phrase(info)
            elif needs_architecture:
                what = f"{WeightsKind(info.kind).phrase} for a base model other than SD1.5 and SDXL"
            elif info.kind == WeightsKind.UNKNOWN:
                what = unknown_phrase(info)
            else:
                what = f"a {info.kind} file"
            return ImportItem(str(path), ImportStatus.UNSUPPORTED, info.kind, info.architecture,
                              reason=f"{what}; only SD1.5/SDXL models, LoRAs, VAEs, ControlNets, IP-Adapters and "
                                     f"their image encoders, embeddings and upscalers ({upscaler_families('and')}) "
                                     "are used")
        sha = sha256 or sha256_file(path, meter, cancel)
        lora, legacy = other_tools_hashes(path, kind == ModelKind.LORA, cancel)
        architecture = info.architecture
        if kind == ModelKind.VAE and architecture is None:
            architecture = _vae_architecture(path, sha)
        name = _encoder_name(path) if kind == ModelKind.IMAGE_ENCODER else _model_name(path)
        notes = read_notes(path, info.metadata) if kind in NOTED_KINDS else ModelNotes()
        model_id = self._new_id(name, sha)
        source, final = "import-reference", path
        if copy:
            final = self.models_dir / model_id / path.name
            _copy(path, final, meter, cancel)
            source = "import-copy"
        model = self.registry.add(InstalledModel(
            id=model_id, name=name, kind=kind, architecture=architecture, layout="file", path=str(final),
            size=path.stat().st_size, sha256=sha, short_hash=sha[:10], source=source, owned=copy,
            recipe=info.hyper_sd, files=(ModelFile(path.name, path.stat().st_size, sha),), lora_hash=lora,
            legacy_hash=legacy, trigger_words=notes.trigger_words, preferred_weight=notes.preferred_weight,
        ))
        return ImportItem(str(path), ImportStatus.IMPORTED, kind, architecture, model_id=model.id)

    def _import_folder(self, path: Path, copy: bool, meter: TransferMeter, cancel: CancelToken) -> ImportItem:
        """A diffusers pipeline folder, or a model that makes control maps, as transformers saves it (Depth Anything,
        ViTPose, RT-DETR)."""
        kind, architecture = MAP_MODEL_KINDS.get(map_model_type(path)), None
        if is_encoder_folder(path):
            kind = ModelKind.IMAGE_ENCODER
        if kind is None:
            kind = ModelKind.BASE
            try:
                index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
                class_name = index.get("_class_name")
            except (UnicodeDecodeError, ValueError, RecursionError, AttributeError):
                raise ModelFormatError(f"{path.name}: its model_index.json is damaged (not a JSON object); download "
                                       "or export the model again.") from None
            architecture = PIPELINE_CLASSES.get(class_name) if isinstance(class_name, str) else None
            family = folder_family(path)
            if architecture is None or family:
                meter.advance(path.name, _size(path))
                what = f"a model for {family}" if family else f"a {class_name}"
                return ImportItem(str(path), ImportStatus.UNSUPPORTED, ModelKind.BASE, None,
                                  reason=f"{what}; only SD1.5 and SDXL pipelines are used")
        pickles = [p for p in path.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file()]
        weights = [p for p in path.rglob("*.safetensors") if p.is_file()]
        if pickles and not weights:
            meter.advance(path.name, _size(path))
            raise UnsafeFileError(f"{path.name} holds only pickle weights ({pickles[0].name}); convert it to safetensors.")
        files = []
        for weight in sorted(weights):
            inspect_file(weight)  # refuses truncated or malformed parts before anything is registered
            sha = sha256_file(weight, meter, cancel)
            files.append(ModelFile(str(weight.relative_to(path)).replace(os.sep, "/"), weight.stat().st_size, sha))
        meter.advance(path.name, _size(path) - sum(file.size for file in files))  # configs and tokenizer files
        name = _encoder_name(path) if kind == ModelKind.IMAGE_ENCODER else folder_name(path)
        model_id = self._new_id(name, files[0].sha256 if files else "")
        final = path
        if copy:
            final = self.models_dir / model_id
            _copy(path, final, meter, cancel)
        model = self.registry.add(InstalledModel(
            id=model_id, name=name, kind=kind, architecture=architecture, layout="diffusers", path=str(final),
            size=_size(path), sha256=None, short_hash=None, source="import-copy" if copy else "import-reference",
            owned=copy, files=tuple(files),
        ))
        return ImportItem(str(path), ImportStatus.IMPORTED, kind, architecture, model_id=model.id)

    def _import_tagger(self, path: Path, copy: bool, meter: TransferMeter, cancel: CancelToken) -> ImportItem:
        """A WD tagger (engine/tagger.py): a folder with `model.onnx` and `selected_tags.csv`, or `NAME.onnx` with
        `NAME.csv` beside it (ComfyUI's WD14 Tagger keeps them so; both files are copied, or used in place)."""
        model_file, tags_file = tagger_files(path)
        read_tag_list(tags_file)  # a file that is no tag list is refused before anything is registered
        files = [ModelFile(file.name, file.stat().st_size, sha256_file(file, meter, cancel))
                 for file in (model_file, tags_file)]
        name = folder_name(path) if path.is_dir() else path.stem
        model_id = self._new_id(name, files[0].sha256)
        final = path
        if copy:
            final = self.models_dir / model_id if path.is_dir() else self.models_dir / model_id / path.name
            if path.is_dir():
                _copy(path, final, meter, cancel)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                for file in (model_file, tags_file):
                    _copy(file, final.parent / file.name, meter, cancel)
        layout = ModelLayout.DIFFUSERS if path.is_dir() else ModelLayout.FILE
        sha = files[0].sha256 if layout == ModelLayout.FILE else None
        model = self.registry.add(InstalledModel(
            id=model_id, name=name, kind=ModelKind.TAGGER, architecture=None, layout=layout, path=str(final),
            size=sum(file.size for file in files), sha256=sha, short_hash=sha[:10] if sha else None,
            source="import-copy" if copy else "import-reference", owned=copy, files=tuple(files),
        ))
        return ImportItem(str(path), ImportStatus.IMPORTED, ModelKind.TAGGER, None, model_id=model.id)

    def _new_id(self, name: str, sha: str) -> str:
        """An id no installed model has: the name, else the name and the hash, else numbered (two
        copies of one file in two folders are two models)."""
        base = slug(name)
        candidates = itertools.chain((base, f"{base}-{sha[:8]}"), (f"{base}-{sha[:8]}-{n}" for n in itertools.count(2)))
        return next(candidate for candidate in candidates if self.registry.find(candidate) is None)


# VAE files shared under these sha256 hashes, with the architecture whose latents they decode: a VAE's weights do not
# say it (SD1.5's and SDXL's VAEs are the same shape), and the app's automatic choice for a checkpoint without a VAE
# takes only one made for its architecture.
KNOWN_VAES = {
    "735e4c3a447a3255760d7f86845f09f937809baa529c17370d83e4c3758f3c75": Architecture.SD15,  # vae-ft-mse-840000-ema-pruned
    "63aeecb90ff7bc1c115395962d3e803571385b61938377bc7089b36e81e92e2e": Architecture.SDXL,  # stabilityai's sdxl_vae
}
# A diffusers VAE folder's latent scaling factor, which differs between them.
VAE_SCALING_FACTORS = {0.18215: Architecture.SD15, 0.13025: Architecture.SDXL}


def _vae_architecture(path: Path, sha: str) -> str | None:
    """The architecture a VAE file is for, where its hash is a known one's or a diffusers config beside it says."""
    if sha in KNOWN_VAES:
        return KNOWN_VAES[sha]
    try:
        config = json.loads((path.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(config, dict) or config.get("_class_name") != "AutoencoderKL":
        return None
    factor = config.get("scaling_factor")
    return VAE_SCALING_FACTORS.get(factor) if isinstance(factor, float) else None


def _model_name(path: Path) -> str:
    """A weights file's name in the library: its stem, or its folder's name for diffusers' generic file names
    (a ControlNet or VAE folder holds `diffusion_pytorch_model.safetensors`)."""
    stem = path.name.lower().removesuffix(".safetensors")
    if stem.split(".")[0] in ("model", "pytorch_model") and path.parent.name:
        return folder_name(path.parent)
    return weights_name(path).removesuffix(".safetensors")  # xinsir's `diffusion_pytorch_model_promax` too


# The names h94/IP-Adapter and ComfyUI give image encoders' folders and files, which say nothing of which one it is
_PLAIN_ENCODER_NAMES = ("image_encoder", "image-encoder", "clip_vision", "clip-vision", "model", "pytorch_model")


def _encoder_name(path: Path) -> str:
    """An image encoder's name in the library: its file's or folder's, or, where that is h94's `image_encoder`, what
    its shapes say it is ("OpenCLIP ViT-H/14 image encoder")."""
    name = _model_name(path) if path.is_file() else folder_name(path)
    if name.lower() not in _PLAIN_ENCODER_NAMES:
        return name
    shape = encoder_shape(path)
    return f"{shape.known} image encoder" if shape.known else f"CLIP image encoder ({shape.projection} wide)"


def _is_diffusers_folder(path: Path) -> bool:
    """A folder imported whole: a diffusers pipeline, a model that makes control maps, a CLIP image encoder, a
    tagger."""
    return path.is_dir() and ((path / "model_index.json").is_file() or map_model_type(path) is not None
                              or is_encoder_folder(path) or is_tagger(path))


def is_models_folder(path: Path) -> bool:
    """Whether importing `path` looks through a folder of models (an A1111 or ComfyUI `models` folder), not one
    model's own folder or file."""
    return path.is_dir() and not _is_diffusers_folder(path)


def _scan(root: Path) -> Iterator[Path]:
    """Weights files and diffusers folders below `root`, not descending into a diffusers folder."""
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        if _is_diffusers_folder(here):
            subfolders[:] = []
            yield here
            continue
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):  # macOS's `._` companions on a USB drive: no weights, only named so
                continue
            if Path(name).suffix.lower() in WEIGHTS_SUFFIXES or is_tagger(here / name):
                yield here / name


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _copy(source: Path, target: Path, meter: TransferMeter, cancel: CancelToken) -> None:
    """Copy a file or folder to `target` through a temporary name, counting its bytes on `meter`, so a cancel stops
    it within a few megabytes and leaves nothing. A folder's links (the Hugging Face cache's) are copied as the
    files they point to."""
    temporary = target.with_name(target.name + ".part")
    if temporary.is_dir():  # left by an import that was killed
        shutil.rmtree(temporary, ignore_errors=True)
    try:
        if source.is_dir():
            for file in sorted(source.rglob("*")):
                if file.is_file():
                    copy_file(file, temporary / file.relative_to(source), meter.counter(file.name, cancel))
        else:
            copy_file(source, temporary, meter.counter(source.name, cancel))
        replace_file(temporary, target)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        raise


__all__ = ["AppError", "ImportItem", "Importer"]
