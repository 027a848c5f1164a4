"""Export a base model, with its LoRA set fused, to ONNX once, into a cache of complete exports.

The ONNX backend cannot apply a LoRA to a graph at run time, so every base model + LoRAs (with
their weights) + dtype + opset is exported once, on the torch side, in the worker:

1. The torch engine's own loader builds the pipeline on the CPU in fp32 and fuses the LoRAs, so the
   graph holds exactly the weights the torch backend generates with.
2. The disk is checked against the parameters' size before a byte is written.
3. Each component (text encoder(s), UNet, VAE decoder and encoder) is exported by optimum with its
   ONNX config, in the layout optimum's ORT pipelines read (a model over 2 GB keeps its weights as
   external data beside it), then the tokenizers, the scheduler and `model_index.json`.
4. All of it goes into a temporary folder that is renamed into the cache only once complete; a
   cancel (checked between components) or a failure removes it. A folder in the cache is
   therefore always whole, and `find` never returns half an export.

The cache key is a digest of what makes the graph: the files' sha256 (`hash_of`), the LoRA
weights, the dtype, the opset, and the exporter's versions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.files import folder_size
from hypersd_desktop.core.progress import CancelToken, TransferProgress
from hypersd_desktop.core.vocab import DType
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec

OPSET = 17  # what ONNX Runtime's DirectML Stable Diffusion sample exports with
LAYOUT = 1  # bumped when what is written changes
MANIFEST = "hypersd-export.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt")
DISK_MARGIN = 1.15  # protobuf framing, configs, and room to spare


@dataclass(frozen=True)
class ExportSpec:
    """What an export is made of."""

    architecture: str
    base_model: str
    base_config: str | None = None
    unet: str | None = None
    vae: str | None = None
    loras: tuple[LoraSpec, ...] = ()
    dtype: str = DType.FP32.value
    opset: int = OPSET

    @classmethod
    def for_request(cls, request: GenerationRequest, architecture: str, dtype: str = DType.FP32.value) -> ExportSpec:
        return cls(architecture, request.base_model, request.base_config, request.unet, request.vae,
                   tuple(request.loras), dtype)


@dataclass(frozen=True)
class CachedExport:
    key: str
    folder: Path
    size_bytes: int
    spec: dict
    seconds: float


def weights_digest(path: str | Path, hash_of: Callable[[Path], str]) -> str:
    """A weights file's sha256; for a diffusers folder, a digest over its weights and configs."""
    path = Path(path)
    if path.is_file():
        return hash_of(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        digest.update(f"{file.relative_to(path).as_posix()}={hash_of(file)}\n".encode())
    return digest.hexdigest()


def exporter_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "diffusers", "optimum-onnx", "onnx")}


def export_key(spec: ExportSpec, hash_of: Callable[[Path], str]) -> str:
    optional = {name: weights_digest(getattr(spec, name), hash_of) if getattr(spec, name) else None
                for name in ("unet", "vae", "base_config")}
    parts = {
        "layout": LAYOUT, "architecture": spec.architecture, "base": weights_digest(spec.base_model, hash_of),
        **optional, "loras": [[weights_digest(lora.path, hash_of), round(lora.weight, 6)] for lora in spec.loras],
        "dtype": spec.dtype, "opset": spec.opset, "versions": exporter_versions(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


class ExportCache:
    """Complete ONNX exports under `root`, one folder each, named by their key."""

    def __init__(self, root: Path, hash_of: Callable[[Path], str],
                 free_space: Callable[[Path], int] = lambda path: shutil.disk_usage(path).free) -> None:
        self.root = root
        self.hash_of = hash_of
        self.free_space = free_space

    def find(self, spec: ExportSpec) -> Path | None:
        folder = self.root / export_key(spec, self.hash_of)
        return folder if (folder / MANIFEST).is_file() else None

    def entries(self) -> list[CachedExport]:
        found = []
        for manifest in sorted(self.root.glob(f"*/{MANIFEST}")):
            data = json.loads(manifest.read_text(encoding="utf-8"))
            found.append(CachedExport(manifest.parent.name, manifest.parent, folder_size(manifest.parent),
                                      data["spec"], data["seconds"]))
        return found

    def remove(self, key: str) -> int:
        folder = self.root / key
        if not (folder / MANIFEST).is_file():
            raise InputError(f"No ONNX export {key} in {self.root}.")
        freed = folder_size(folder)
        shutil.rmtree(folder)
        return freed

    def export(self, spec: ExportSpec, on_progress: Callable[[TransferProgress], None] | None = None,
               cancel: CancelToken | None = None) -> Path:
        """The export of `spec`: found in the cache, or made now (minutes for a full-size model)."""
        cached = self.find(spec)
        if cached is not None:
            return cached
        report = on_progress or (lambda progress: None)
        cancel = cancel or CancelToken()
        key = export_key(spec, self.hash_of)
        started = time.perf_counter()
        pipe = load_fused_pipeline(spec)
        parts = components(pipe)
        sizes = {name: sum(p.numel() * p.element_size() for p in model.parameters()) for name, (model, _) in parts.items()}
        needed = int(sum(sizes.values()) * DISK_MARGIN)
        self.root.mkdir(parents=True, exist_ok=True)
        free = self.free_space(self.root)
        if free < needed:
            raise InputError(f"The ONNX export of this model needs about {needed / 2**30:.1f} GiB free in {self.root}; "
                             f"{free / 2**30:.1f} GiB is free. Free some space, or generate with the torch backend.")
        partial = self.root / f".{key}.{uuid.uuid4().hex[:8]}.partial"
        label = f"Exporting {Path(spec.base_model).name} to ONNX"
        try:
            done = 0
            for name, (model, config) in parts.items():
                if cancel.cancelled:
                    raise CancelledError("the ONNX export stopped; nothing half-written was kept")
                report(TransferProgress(label, name, done, sum(sizes.values())))
                write_component(model, config, partial / name, spec.opset)
                done += sizes[name]
            write_pipeline_files(pipe, partial)
            manifest = {"key": key, "spec": json.loads(json.dumps(asdict(spec), default=str)),
                        "seconds": round(time.perf_counter() - started, 2), "versions": exporter_versions()}
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            final = self.root / key
            if final.exists():  # made meanwhile by another process: keep theirs
                shutil.rmtree(partial)
            else:
                partial.rename(final)
            report(TransferProgress(label, "done", done, done))
            return final
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def load_fused_pipeline(spec: ExportSpec):
    """The pipeline as the torch backend builds it on the CPU in fp32, its LoRAs fused."""
    from hypersd_desktop.engine.torch_engine import TorchEngine

    request = GenerationRequest(prompt="", base_model=spec.base_model, base_config=spec.base_config, unet=spec.unet,
                                vae=spec.vae, loras=spec.loras, device="cpu", dtype=DType.FP32.value)
    return TorchEngine()._prepare(request, spec.architecture).pipe


def components(pipe) -> dict:
    """name -> (module, optimum's ONNX config), in optimum's order."""
    import optimum.exporters.onnx.model_configs as registered  # registers the diffusers components' ONNX configs
    from optimum.exporters.utils import get_diffusion_models_for_export

    del registered
    return get_diffusion_models_for_export(pipe, int_dtype="int64", float_dtype="fp32", exporter="onnx")


def write_component(model, config, folder: Path, opset: int) -> None:
    from optimum.exporters.onnx import export

    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_config"):
        model.save_config(folder)
    else:
        model.config.save_pretrained(folder)
    export(model, config, folder / "model.onnx", opset=opset, dtype="fp32")


def write_pipeline_files(pipe, folder: Path) -> None:
    """What the ORT pipelines read besides the graphs: scheduler, tokenizers, model_index.json."""
    pipe.scheduler.save_pretrained(folder / "scheduler")
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder / name)
    pipe.save_config(folder)
