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

The cache keeps its exports within a budget (`budget_bytes`): before an export, the least recently
used ones are removed until the new one fits (an SD1.5 export is about 4 GB in fp32, 2 GB in fp16;
every new LoRA weight is a new export).

The cache key is a digest of what makes the graph: the files' sha256 (`hash_of`), the LoRA
weights, the dtype and the opset. The exporter's versions are recorded in the manifest but are not
part of the key, so a runtime without torch finds exports made elsewhere (`import_folder`).

For GPU providers (dtype fp16) each graph is converted to fp16 with fp32 inputs and outputs, as ORT's
DirectML Stable Diffusion sample does after export; the SDXL VAE stays fp32 (it overflows in fp16).
(The sample also runs ORT's transformer optimiser; its UNet attention fusion fails on graphs that
torch 2.13 exports, so the sessions' own graph optimisations do the fusing.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.files import folder_size
from hypersd_desktop.core.progress import CancelToken, TransferProgress
from hypersd_desktop.core.vocab import DType, Tiling
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec

log = logging.getLogger("hypersd.onnx")

OPSET = 17  # what ONNX Runtime's DirectML Stable Diffusion sample exports with
LAYOUT = 2  # bumped when what is written changes
MANIFEST = "hypersd-export.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt")
DISK_MARGIN = 1.15  # protobuf framing, configs, and room to spare
BUDGET_BYTES = 24 * 2**30  # about six SD1.5 exports in fp32, or two SDXL ones


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
    tiling: str = Tiling.OFF.value  # a seamless image's export: its convolutions wrap around (engine/tiling.py)

    @classmethod
    def for_request(cls, request: GenerationRequest, architecture: str, dtype: str = DType.FP32.value) -> ExportSpec:
        return cls(architecture, request.base_model, request.base_config, request.unet, request.vae,
                   tuple(request.loras), dtype, tiling=Tiling(request.tiling).value)


@dataclass(frozen=True)
class CachedExport:
    key: str
    folder: Path
    size_bytes: int
    spec: dict
    seconds: float

    @property
    def title(self) -> str:
        """What the export is of, for people: the model, its UNet and LoRAs with weights, the precision."""
        spec = self.spec
        if "taesd" in spec:
            return f"TAESD decoder ({Path(spec['taesd']).name})"
        parts = [Path(spec.get("base_model", "?")).name]
        if spec.get("unet"):
            parts.append(f"UNet {Path(spec['unet']).stem}")
        parts += [f"{Path(lora['path']).stem} × {lora['weight']:g}" for lora in spec.get("loras", ())]
        seamless = spec.get("tiling", Tiling.OFF.value)
        return " + ".join(parts) + f", {spec.get('dtype', 'fp32')}" + (
            f", seamless ({Tiling(seamless).label.lower()})" if seamless in Tiling.values() and seamless != Tiling.OFF
            else "")


def cache_root(data: Path) -> Path:
    """Where the app keeps its exports, under its data folder."""
    return data / "onnx"


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
        "dtype": spec.dtype, "opset": spec.opset,
        **({"tiling": spec.tiling} if spec.tiling != Tiling.OFF else {}),  # the keys of plain exports stay as they were
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


class ExportCache:
    """Complete ONNX exports under `root`, one folder each, named by their key."""

    def __init__(self, root: Path, hash_of: Callable[[Path], str],
                 free_space: Callable[[Path], int] = lambda path: shutil.disk_usage(path).free,
                 budget_bytes: int | None = BUDGET_BYTES) -> None:
        self.root = root
        self.hash_of = hash_of
        self.free_space = free_space
        self.budget_bytes = budget_bytes

    def import_folder(self, folder: Path) -> Path:
        """Copy an export made by this app elsewhere (its folder, with its manifest) into the cache."""
        manifest = folder / MANIFEST
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            key = data["key"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(f"{folder} is not an ONNX export made by this app: it has no readable {MANIFEST}.") from None
        missing = [part for part in ("unet", "vae_decoder", "text_encoder") if not (folder / part / "model.onnx").is_file()]
        if missing or not isinstance(key, str) or not key.isalnum():
            raise InputError(f"The ONNX export in {folder} is incomplete (missing: {', '.join(missing) or 'its key'}).")
        final = self.root / key
        if (final / MANIFEST).is_file():
            return final
        partial = self.root / f".{key}.{uuid.uuid4().hex[:8]}.partial"
        try:
            shutil.copytree(folder, partial)
            partial.rename(final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return final

    def export_taesd(self, taesd: Path, tiling: str = Tiling.OFF.value) -> Path:
        """TAESD's decoder as one ONNX graph (`decoder.onnx`, input `latent_sample`), exported once per folder (and
        once more for each way a seamless image wraps around)."""
        key = "taesd-" + weights_digest(taesd, self.hash_of)[:16] + ("" if tiling == Tiling.OFF else f"-{tiling}")
        final = self.root / key
        if (final / MANIFEST).is_file():
            return final
        partial = self.root / f".{key}.{uuid.uuid4().hex[:8]}.partial"
        started = time.perf_counter()
        try:
            write_taesd_decoder(taesd, partial / "decoder.onnx", tiling)
            manifest = {"key": key, "spec": {"taesd": str(taesd), "tiling": tiling},
                        "seconds": round(time.perf_counter() - started, 2)}
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            partial.rename(final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return final

    def find(self, spec: ExportSpec) -> Path | None:
        """The complete export of `spec`, marked as just used; None when there is none."""
        folder = self.root / export_key(spec, self.hash_of)
        if not (folder / MANIFEST).is_file():
            return None
        try:
            os.utime(folder / MANIFEST)  # the manifest's time is the export's last use
        except OSError:
            pass
        return folder

    def make_room(self, needed: int) -> list[CachedExport]:
        """Remove the least recently used exports until `needed` more bytes fit in the budget; returns them."""
        if self.budget_bytes is None:
            return []
        entries = sorted(self.entries(), key=lambda entry: (entry.folder / MANIFEST).stat().st_mtime)
        total = sum(entry.size_bytes for entry in entries)
        removed = []
        while entries and total + needed > self.budget_bytes:
            oldest = entries.pop(0)
            try:
                self.remove(oldest.key)
            except OSError:  # open elsewhere (Windows): leave it
                continue
            total -= oldest.size_bytes
            removed.append(oldest)
        return removed

    def entries(self) -> list[CachedExport]:
        found = []
        for manifest in sorted(self.root.glob(f"*/{MANIFEST}")):
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                spec, seconds = dict(data["spec"]), float(data["seconds"])
            except (OSError, ValueError, KeyError, TypeError):
                spec, seconds = {"base_model": f"{manifest.parent.name} (damaged manifest)"}, 0.0
            found.append(CachedExport(manifest.parent.name, manifest.parent, folder_size(manifest.parent), spec, seconds))
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
        if not torch_installed():
            raise InputError(f"{Path(spec.base_model).name} with these LoRAs has no ONNX export here, and exporting "
                             "needs PyTorch, which this Python lacks. Install the cpu or directml compute runtime "
                             "(File → Compute runtime…), or export it where PyTorch is and import the folder.")
        report = on_progress or (lambda progress: None)
        cancel = cancel or CancelToken()
        key = export_key(spec, self.hash_of)
        started = time.perf_counter()
        pipe = load_fused_pipeline(spec)
        parts = components(pipe)
        sizes = {name: part_bytes(name, model) for name, (model, _) in parts.items()}
        needed = int(sum(sizes.values()) * DISK_MARGIN)
        if spec.dtype == DType.FP16.value:
            needed //= 2
        self.root.mkdir(parents=True, exist_ok=True)
        for removed in self.make_room(needed):
            log.info("removed the least recently used ONNX export %s (%s, %d bytes) to stay within the budget",
                     removed.key, removed.title, removed.size_bytes)
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
                write_component(model, config, partial / name, spec.opset, spec.tiling)
                if spec.dtype == DType.FP16.value and not (name.startswith("vae") and spec.architecture == "sdxl"):
                    optimise_fp16(partial / name / "model.onnx", name)
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


def torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


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


def part_bytes(name: str, model) -> int:
    """The bytes of a component's weights; a VAE half counts only its own (optimum hands over the whole VAE)."""
    halves = {"vae_encoder": ("encoder", "quant_conv"), "vae_decoder": ("decoder", "post_quant_conv")}
    modules = [getattr(model, attribute, None) for attribute in halves[name]] if name in halves else [model]
    return sum(p.numel() * p.element_size() for module in modules if module is not None for p in module.parameters())


def write_component(model, config, folder: Path, opset: int, tiling: str = Tiling.OFF.value) -> None:
    """One component's graph and config; for a seamless image (`tiling`), its convolutions traced wrapping around
    the edges as the torch backend's do (`engine.tiling.seamless`)."""
    from optimum.exporters.onnx import export

    from hypersd_desktop.engine.tiling import seamless

    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_config"):
        model.save_config(folder)
    else:
        model.config.save_pretrained(folder)
    with warnings.catch_warnings(), seamless([model], Tiling(tiling)):  # the tracer's notes are for model authors
        warnings.simplefilter("ignore")
        export(model, config, folder / "model.onnx", opset=opset, dtype="fp32")


def optimise_fp16(path: Path, name: str) -> None:
    """Convert a graph's weights and arithmetic to fp16, keeping fp32 inputs and outputs (ORT's converter
    keeps the ops that need fp32 in fp32)."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(path))
    # Resize takes its scales in fp32 only: the upsamplers' Resize and the constants it reads stay fp32.
    resize_inputs = {name for node in model.graph.node if node.op_type == "Resize" for name in node.input}
    constants = [node.name for node in model.graph.node if node.op_type == "Constant" and node.output[0] in resize_inputs]
    model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True,
                                     op_block_list=[*DEFAULT_OP_BLOCK_LIST, "Resize"], node_block_list=constants)
    for stale in path.parent.glob("model.onnx*"):
        stale.unlink()
    large = model.ByteSize() > 2**31 - 2**26
    onnx.save_model(model, str(path), save_as_external_data=large, all_tensors_to_one_file=True,
                    location="model.onnx_data")


def write_taesd_decoder(taesd: Path, path: Path, tiling: str = Tiling.OFF.value) -> None:
    import torch

    from hypersd_desktop.engine.loading import load_taesd
    from hypersd_desktop.engine.tiling import seamless

    model = load_taesd(taesd, torch.float32, "cpu")

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, latent_sample):
            return self.model.decode(latent_sample).sample

    path.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.zeros(1, model.config.latent_channels, 8, 8)
    with torch.inference_mode(), warnings.catch_warnings(), seamless([model], Tiling(tiling)):
        warnings.simplefilter("ignore")
        torch.onnx.export(Decoder(), (sample,), str(path), input_names=["latent_sample"], output_names=["sample"],
                          dynamic_axes={"latent_sample": {0: "batch", 2: "height", 3: "width"}}, opset_version=OPSET,
                          dynamo=False)


def write_pipeline_files(pipe, folder: Path) -> None:
    """What the ORT pipelines read besides the graphs: scheduler, tokenizers, model_index.json."""
    pipe.scheduler.save_pretrained(folder / "scheduler")
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder / name)
    pipe.save_config(folder)
