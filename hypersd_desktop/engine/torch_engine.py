"""The torch backend: runs a `GenerationRequest` with diffusers on CUDA, MPS or the CPU.

One pipeline stays loaded, keyed by `PipelineKey`. A request that changes only the prompt,
seed, steps or guidance reuses it as is; one that changes only the LoRAs unfuses the old ones
and fuses the new; anything else loads the base model again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hypersd_desktop.core.errors import OutOfMemoryError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import Architecture, Decoder, Device, DType, Preview, Scheduler, Tiling
from hypersd_desktop.engine import (compiled, conditioning, devices, embeddings, graphs, ip_adapters, loading, modes,
                                    notices, prompt_editing, t2i_adapters, text_encoders, tiling)
from hypersd_desktop.engine.backend import batch_key
from hypersd_desktop.engine.inputs import ModeInputs, open_inputs
from hypersd_desktop.engine.inspect import base_architecture, is_t2i_adapter
from hypersd_desktop.engine.devices import TORCH_DTYPES, Placement, choose_placement, cpu_supports_bf16
from hypersd_desktop.engine.lora import apply_layers, has_dora, load_lora_layers
from hypersd_desktop.engine.planning import VAE_TILE, Decode, Plan, check_fits, choose_decode, plan
from hypersd_desktop.engine.previews import latent_preview, to_image
from hypersd_desktop.engine.schedulers import build_scheduler, check_timesteps
from hypersd_desktop.engine.upscalers import Upscalers, enlarger
from hypersd_desktop.engine.types import GenerationRequest, GenerationResult, LoraSpec, Progress, ResolvedSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineKey:
    """What a loaded pipeline is made of; two requests with equal keys share it."""

    base_model: str
    base_config: str | None
    unet: str | None
    vae: str | None
    device: str
    dtype: str
    cpu_offload: bool = False
    loras: tuple[LoraSpec, ...] = ()

    def without_loras(self) -> PipelineKey:
        return PipelineKey(self.base_model, self.base_config, self.unet, self.vae, self.device, self.dtype,
                           self.cpu_offload)


@dataclass
class LoadedPipeline:
    key: PipelineKey
    pipe: object
    architecture: str
    placement: Placement
    base_scheduler: object
    fused: list[tuple[LoraSpec, tuple[int, int]]] = field(default_factory=list)  # with the file's (size, mtime)
    embeddings: embeddings.Loaded = ()
    load_warnings: list[str] = field(default_factory=list)
    memory_options: tuple[bool, bool] | None = None  # (attention slicing, VAE tiling) as last set


def _file_stamp(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def quiet_libraries() -> None:
    """diffusers and transformers log advice meant for library users; the engine reports its own warnings."""
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def lora_components(pipe) -> dict[str, torch.nn.Module]:
    names = ("unet", "text_encoder", "text_encoder_2")
    return {name: getattr(pipe, name) for name in names if getattr(pipe, name, None) is not None}


class TorchEngine:
    """The torch backend's `Engine`: generates images for requests and keeps the last pipeline
    loaded between calls."""

    def __init__(self, graph_recorder: graphs.Recorder | None = None, inputs: InputImages | None = None,
                 compiler: compiled.Compiler | None = None, channels_last: Collection[str] | None = None) -> None:
        """`graph_recorder` records graphs on any device (tests pass one that re-runs on the CPU); without it,
        graphs are recorded as CUDA graphs on CUDA only. `compiler` compiles steps in the background on any
        device; without it, requests that allow compiling get one on CUDA only, with its packages in the
        app's cache. `inputs` holds the input images requests name. `channels_last`: the parts ("unet",
        "controlnet", "vae") whose weights are laid out channels_last; by default the device's measured choice
        (`devices.CHANNELS_LAST`)."""
        quiet_libraries()
        if compiler is None and os.environ.get("HYPERSD_BENCH_COMPILE_ON_CPU"):
            # bench/compile_cache.py's window phase: the worker compiles on the CPU as it does on CUDA, so the
            # window's stall during a background compile can be measured where there is no GPU.
            compiler = compiled.Compiler(compiled.default_root())
        self._loaded: LoadedPipeline | None = None
        self._taesd: tuple[str, str, object] | None = None
        self._graph_recorder = graph_recorder
        self._given_compiler = compiler is not None
        self._channels_last = None if channels_last is None else frozenset(channels_last)
        self.compiler = compiler
        self._inputs = inputs
        self._controlnets = modes.ControlNets()
        self._adapters = t2i_adapters.Adapters()
        self._upscalers = Upscalers()
        self._ip_adapters = ip_adapters.IPAdapters()
        # The last mode pipeline built on the loaded weights, by (pipeline, mode, ControlNets): building one
        # (`from_pipe`) takes longer than a one-step image on a GPU, and the Draw tab asks for the same one each time.
        self._mode_pipe: tuple[tuple, object] | None = None

    @property
    def loaded_key(self) -> PipelineKey | None:
        return self._loaded.key if self._loaded else None

    def unload(self) -> None:
        if self.compiler is not None:
            self.compiler.forget()
        self._loaded = None
        self._taesd = None
        self._mode_pipe = None
        self._controlnets.clear()
        self._adapters.clear()
        self._ip_adapters.forget()
        self._upscalers.unload()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def memory_in_use(self, device: Device) -> int | None:
        return devices.memory_in_use(device)

    def prepare(self, request: GenerationRequest) -> None:
        """Load the base model and fuse the LoRAs of `request`, so that generating it starts at once."""
        with self._out_of_memory_freed():
            self._prepare(request, base_architecture(request.base_model))

    def generate(
        self,
        request: GenerationRequest,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> list[GenerationResult]:
        """Run the request; one result per image of the batch.

        `on_progress` is called after every denoising step (with a preview if the request asks
        for one). `cancel` stops the run at the next step with `CancelledError`; no image is
        decoded after a cancel. Running out of memory frees the pipeline and raises
        `OutOfMemoryError`.
        """
        with self._out_of_memory_freed():
            return self._generate(request, on_progress, cancel)

    def generate_batch(self, requests: list[GenerationRequest], on_progress: Callable[[Progress], None] | None = None,
                       cancel: CancelToken | None = None) -> list[GenerationResult]:
        """Run one-image requests that differ only in prompt and seed (one `batch_key`) as one batch: the prompts
        are encoded together and every step runs the UNet once for all of them. One result per request."""
        if len({batch_key(request) for request in requests}) != 1 or batch_key(requests[0]) is None:
            raise ValueError("generate_batch takes one-image text-to-image requests that differ only in prompt and seed")
        with self._out_of_memory_freed():
            pipe = self._prepare(requests[0], base_architecture(requests[0].base_model)).pipe
            groups: dict[int, list[int]] = {}
            for index, request in enumerate(requests):  # one batch's prompts must take as many windows
                prompt = embeddings.in_their_case(request.prompt, request.embeddings)
                key = ("alone", index) if prompt_editing.has_edits(prompt) else \
                    conditioning.window_count(pipe, prompt)  # an edited prompt: padded over its own steps
                groups.setdefault(key, []).append(index)
            results: list[GenerationResult | None] = [None] * len(requests)
            for indices in groups.values():
                group = tuple(requests[index] for index in indices)
                for index, result in zip(indices, self._generate(group[0].replace(batch_size=len(group)),
                                                                 on_progress, cancel, group)):
                    results[index] = result
            return results

    @contextlib.contextmanager
    def _out_of_memory_freed(self):
        try:
            yield
        except torch.OutOfMemoryError:
            self.unload()
            raise OutOfMemoryError("The GPU ran out of memory. Try a smaller size or batch, or enable memory "
                                   "options in Settings.") from None
        except MemoryError:
            self.unload()
            raise OutOfMemoryError() from None
        except OutOfMemoryError:  # said by a part that knows better what to do (an upscaler's smallest tiles)
            self.unload()
            raise

    def _generate(self, request: GenerationRequest, on_progress, cancel,
                  members: tuple[GenerationRequest, ...] | None = None) -> list[GenerationResult]:
        """`request` with its batch's images; `members` are the one-image requests the images are for, when they
        are several requests run as a batch (each its own prompt and seed)."""
        cancel = cancel or CancelToken()
        separate = members is not None  # each image is its own request (its result's request)
        members = members or tuple(request.advanced(k) for k in range(request.batch_size))
        started = time.perf_counter()
        architecture = base_architecture(request.base_model)
        settings_plan = plan(request, architecture)
        check_timesteps(settings_plan.scheduler, settings_plan.timesteps)
        cancel.raise_if_cancelled()

        loaded = self._prepare(request, architecture)
        sources = open_inputs(request, self._inputs, settings_plan.width, settings_plan.height,
                              enlarger(self._upscalers, request, str(loaded.placement.device), on_progress, cancel))
        settings_plan = dataclasses.replace(settings_plan, width=sources.width, height=sources.height)
        loaded_at = time.perf_counter()
        warnings = [*settings_plan.warnings, *loaded.load_warnings]
        if not request.ip_adapters:  # before attention slicing, which gives every attention a processor of its own
            self._ip_adapters.remove(loaded.pipe)
        self._memory_options(loaded, request)
        placement = loaded.placement
        self._ip_adapters.apply(loaded.pipe, request, placement.device, TORCH_DTYPES[placement.dtype],
                                loaded.key.cpu_offload)
        if request.ip_adapters and request.attention_slicing:
            warnings.append("Attention slicing is off while an IP-Adapter runs: its attention is diffusers' own.")
        self._graphs(loaded, request)
        if not loaded.key.cpu_offload:  # offload's own hooks move the encoders
            text_encoders.install(loaded.pipe)
        check_fits(settings_plan, request.batch_size, placement.dtype, placement.vae_dtype,
                   devices.free_memory(placement.device), placement.device)
        if request.cpu_offload and loaded.placement.device != Device.CUDA:
            warnings.append("Model offload to the CPU only applies on CUDA; it was ignored.")
        if loaded.placement.device == Device.CPU and loaded.placement.dtype == DType.BF16 and not cpu_supports_bf16():
            warnings.append("This CPU has no native bf16 arithmetic, so bf16 runs slower than fp32; choose fp32.")
        taesd = self._taesd_model(request, loaded) if Preview.TAESD in (request.preview, request.decoder) else None

        if request.tiling != Tiling.OFF and request.vae_tiling:
            warnings.append("VAE tiling (Settings) decodes in tiles, each wrapping around on its own: the seamless "
                            "image may show seams; turn VAE tiling off for it.")
        parts = (loaded.pipe.unet, loaded.pipe.vae, taesd)  # the ControlNets are wrapped where they run (_denoise)
        with torch.inference_mode(), tiling.seamless(parts, request.tiling):
            latents = self._denoise(request, members, settings_plan, loaded, sources, taesd, on_progress, cancel,
                                    started)
            denoised_at = time.perf_counter()
            images = []
            decoder = taesd if request.decoder == Decoder.TAESD else None
            for k in range(request.batch_size):
                cancel.raise_if_cancelled()
                images.append(sources.finish(self._decode(loaded, latents[k : k + 1], decoder)))
        finished = time.perf_counter()
        settings = ResolvedSettings(
            recipe=settings_plan.recipe.id if settings_plan.recipe else None,
            architecture=Architecture(architecture),
            scheduler=Scheduler(settings_plan.scheduler),
            steps=settings_plan.steps,
            guidance=settings_plan.guidance,
            eta=settings_plan.eta,
            timesteps=settings_plan.timesteps,
            width=settings_plan.width,
            height=settings_plan.height,
            device=Device(placement.device),
            dtype=DType(placement.dtype),
            backend="torch",
        )
        timings = {
            "load_s": loaded_at - started,
            "denoise_s": denoised_at - loaded_at,
            "decode_s": finished - denoised_at,
            "total_s": finished - started,
            "per_image_s": (finished - loaded_at) / request.batch_size,
        }
        negative = request.negative_prompt if settings_plan.guidance > 1 else ""
        steps = len(settings_plan.timesteps) if settings_plan.timesteps else settings_plan.steps
        return [
            GenerationResult(image, member.seed, 0 if separate else k, member if separate else request, settings,
                             (*warnings, *conditioning.length_warnings(loaded.pipe, member.prompt, negative, steps)),
                             timings, member.variation_seed)
            for k, (image, member) in enumerate(zip(images, members))
        ]

    # -- loading -------------------------------------------------------------------------

    def _prepare(self, request: GenerationRequest, architecture: str) -> LoadedPipeline:
        placement = choose_placement(request.device, request.dtype, architecture, safe_fp16_vae=False)
        key = PipelineKey(
            request.base_model, request.base_config, request.unet, request.vae,
            placement.device, placement.dtype, request.cpu_offload and placement.device == Device.CUDA,
            tuple(request.loras),
        )
        loaded = self._loaded
        if loaded is None or loaded.key.without_loras() != key.without_loras():
            loaded = None  # drop the old pipeline before the new one is loaded
            loaded = self._reload(key, architecture, placement)
        if loaded.key.loras != key.loras:
            if not self._unfuse_all(loaded):
                loaded = None
                loaded = self._reload(key, architecture, placement)
            text_encoders.forget(loaded.pipe)  # before the fuse: one that fails part way leaves other weights
            self._fuse(loaded, key.loras)
            loaded.key = key
            if self.compiler is not None:
                self.compiler.weights_changed()  # compiled steps recompute what they folded from the weights
        try:
            embedded = embeddings.apply(loaded.pipe, request.embeddings, loaded.embeddings)
        except Exception:
            text_encoders.forget(loaded.pipe)  # a load that failed part way may have changed the encoders
            raise
        if embedded != loaded.embeddings:
            text_encoders.forget(loaded.pipe)
        loaded.embeddings = embedded
        return loaded

    def _reload(self, key: PipelineKey, architecture: str, placement: Placement) -> LoadedPipeline:
        self.unload()
        self._loaded = self._load(key, architecture, placement)
        return self._loaded

    def _load(self, key: PipelineKey, architecture: str, placement: Placement) -> LoadedPipeline:
        dtype = TORCH_DTYPES[placement.dtype]
        unet = vae = None
        if key.unet is not None:
            config = loading.part_config(key.base_model, key.base_config, architecture, "unet")
            unet = loading.load_unet_override(key.unet, config, architecture, dtype)
        if key.vae is not None:  # before the base model: a checkpoint may have no VAE of its own
            config = loading.part_config(key.base_model, key.base_config, architecture, "vae")
            vae = loading.load_vae_override(key.vae, dtype, config)
        pipe = loading.load_base_pipeline(key.base_model, architecture, dtype, key.base_config, unet=unet, vae=vae)
        safe_vae = pipe.vae.config.get("force_upcast", True) is False
        placement = choose_placement(placement.device, placement.dtype, architecture, safe_fp16_vae=safe_vae,
                                     native_bf16=placement.device == Device.CUDA and devices.cuda_supports_bf16())
        if key.cpu_offload:
            pipe.enable_model_cpu_offload()  # each component moves to the GPU only while it runs
        else:
            free = devices.free_memory(placement.device)
            pipe.to(placement.device)
            if text_encoders.should_park(pipe, placement.device, free):
                text_encoders.park(pipe, placement.device)
                notices.post(f"The GPU has {free / 2**30:.1f} GiB free, too little for the whole model and an image "
                             "beside it: the text encoders wait in RAM and come to the GPU only to read a new prompt.")
        if placement.vae_dtype != placement.dtype:
            pipe.vae.to(TORCH_DTYPES[placement.vae_dtype])
        laid_out = self._channels_last_parts(placement.device)
        for part in ("unet", "vae"):
            if part in laid_out:
                devices.lay_out(getattr(pipe, part), channels_last=True)
        pipe.set_progress_bar_config(disable=True)
        return LoadedPipeline(key.without_loras(), pipe, architecture, placement, pipe.scheduler)

    def _channels_last_parts(self, device: str) -> frozenset[str]:
        return devices.channels_last_parts(device) if self._channels_last is None else self._channels_last

    def _unfuse_all(self, loaded: LoadedPipeline) -> bool:
        """Subtract the fused LoRAs again, reading them from disk (nothing is kept in memory).

        Returns False when a LoRA file changed since it was fused (the update it held can no
        longer be subtracted) or a LoRA is a DoRA one; the caller must load the base model afresh.
        """
        if any(_file_stamp(spec.path) != stamp for spec, stamp in loaded.fused):
            return False
        if any(has_dora(spec.path) for spec, _ in loaded.fused):
            return False  # DoRA rescales the weights it is fused into: only a reload undoes it
        components = lora_components(loaded.pipe)
        unet_config = dict(loaded.pipe.unet.config)
        for spec, _ in reversed(loaded.fused):
            layers, _ = load_lora_layers(spec.path, components, unet_config)
            apply_layers(components, layers, spec.weight, sign=-1)
        loaded.fused = []
        loaded.load_warnings = []
        return True

    def _fuse(self, loaded: LoadedPipeline, loras: tuple[LoraSpec, ...]) -> None:
        components = lora_components(loaded.pipe)
        unet_config = dict(loaded.pipe.unet.config)
        try:
            for spec in loras:
                layers, unmatched = load_lora_layers(spec.path, components, unet_config)
                apply_layers(components, layers, spec.weight)
                loaded.fused.append((spec, _file_stamp(spec.path)))
                if unmatched:
                    loaded.load_warnings.append(
                        f"{unmatched} layers of the LoRA {Path(spec.path).name} were skipped: they match nothing "
                        "in this base model, or hold parts the app does not read, so the LoRA applies in part."
                    )
        except Exception:
            # A half-applied LoRA set would poison every later image: drop the pipeline.
            self._loaded = None
            self.unload()
            raise

    def _taesd_model(self, request: GenerationRequest, loaded: LoadedPipeline):
        cache_key = (request.taesd, loaded.placement.device)
        if self._taesd is None or self._taesd[:2] != cache_key:
            model = loading.load_taesd(request.taesd, TORCH_DTYPES[loaded.placement.dtype], loaded.placement.device)
            self._taesd = (*cache_key, model)
        return self._taesd[2]

    # -- running -------------------------------------------------------------------------

    @staticmethod
    def _memory_options(loaded: LoadedPipeline, request: GenerationRequest) -> None:
        """Attention slicing and VAE tiling as the request asks, set when they change (setting slicing walks every
        module of the UNet and gives each attention a new processor)."""
        slicing = request.attention_slicing and not request.ip_adapters  # an IP-Adapter's processors are its own
        options = (slicing, request.vae_tiling)
        if loaded.memory_options == options:
            return
        pipe = loaded.pipe
        if slicing:
            pipe.enable_attention_slicing()
        else:
            pipe.disable_attention_slicing()
        if request.vae_tiling:
            _tile(pipe)
        else:
            pipe.vae.disable_tiling()
        loaded.memory_options = options

    def _graphs(self, loaded: LoadedPipeline, request: GenerationRequest) -> None:
        """Run the UNet and VAE decode compiled and replay them as graphs where asked and possible; the
        memory-saving options change what runs between calls (offload moves weights, slicing and tiling
        split the work), so they run eagerly, as IP-Adapters do (their pictures' tokens are one more input of
        every attention), T2I-Adapters (their features are one more input of the down blocks) and seamless images
        (their convolutions wrap: engine/tiling.py)."""
        cuda = loaded.placement.device == Device.CUDA
        plain = (not loaded.key.cpu_offload and not request.attention_slicing and not request.vae_tiling
                 and not request.ip_adapters and request.tiling == Tiling.OFF
                 and not any(is_t2i_adapter(control.model) for control in request.controls))
        record = request.cuda_graphs and plain and (cuda or self._graph_recorder is not None)
        compile_steps = request.compile and plain and (cuda or self._given_compiler)
        if compile_steps and self.compiler is None:
            self.compiler = compiled.Compiler(compiled.default_root())
        if not record and not compile_steps:
            graphs.uninstall(loaded.pipe)
            return
        recorder = None
        if record:
            current = loaded.pipe.unet.__dict__.get("forward")
            kept = current.graphed.recorder if isinstance(current, graphs.GraphedUNet) else None
            recorder = kept or self._graph_recorder or graphs.cuda_recorder()
        graphs.install(loaded.pipe, recorder, self.compiler if compile_steps else None)

    def _denoise(self, request, members, settings_plan: Plan, loaded: LoadedPipeline, sources: ModeInputs, taesd,
                 on_progress, cancel, started):
        placement = loaded.placement
        unet = loaded.pipe.unet
        # T2I-Adapters run beside the pipeline (their features handed to the UNet); the ControlNets in it
        adapted = [is_t2i_adapter(control.model) for control in request.controls]
        adapter_controls = [control for control, adapter in zip(request.controls, adapted) if adapter]
        adapter_pictures = [picture for picture, adapter in zip(sources.controls, adapted) if adapter]
        if adapter_controls:
            request = request.replace(controls=tuple(c for c, adapter in zip(request.controls, adapted) if not adapter))
            sources = dataclasses.replace(sources, controls=[p for p, adapter in zip(sources.controls, adapted)
                                                             if not adapter])
        adapters = self._adapters.get([control.model for control in adapter_controls], placement.device,
                                      TORCH_DTYPES[placement.dtype])
        controlnets = self._controlnets.get([control.model for control in request.controls], placement.device,
                                            TORCH_DTYPES[placement.dtype], dict(unet.config),
                                            "controlnet" in self._channels_last_parts(placement.device),
                                            unet, (loaded.key, id(unet), tuple(loaded.fused)))
        graphs.follow(loaded.pipe, controlnets)
        key = (id(loaded.pipe), request.mode, tuple(id(controlnet) for controlnet in controlnets),
               id(getattr(loaded.pipe, "image_encoder", None)))  # an IP-Adapter's encoder is one of its parts
        if self._mode_pipe is None or self._mode_pipe[0] != key:
            self._mode_pipe = (key, modes.mode_pipeline(loaded.pipe, loaded.architecture, request, controlnets))
        pipe = self._mode_pipe[1]
        pipe.scheduler = build_scheduler(settings_plan.scheduler, loaded.base_scheduler)
        generators = [torch.Generator("cpu").manual_seed(member.seed) for member in members]
        prompts = [embeddings.in_their_case(member.prompt, request.embeddings) for member in members]
        one_prompt = len(set(prompts)) == 1
        total = settings_plan.running_steps

        guided = settings_plan.guidance > 1
        clip_skip = settings_plan.clip_skip
        texts = prompts[:1] if one_prompt else prompts
        negative_prompt = embeddings.in_their_case(request.negative_prompt, request.embeddings) if guided else ""
        schedule_steps = len(settings_plan.timesteps) if settings_plan.timesteps else settings_plan.steps
        runs = prompt_editing.runs([*texts, negative_prompt], schedule_steps)
        ends = [end for end, _ in runs]
        texts, negative = runs[0][1][:-1], runs[0][1][-1]
        # diffusers' own clip_skip leaves the negative prompt at the last layer; A1111 skips for both
        if len(runs) > 1 or clip_skip > 1 or conditioning.needs_encoding(pipe, [*texts, negative if guided else ""]):
            per_run = conditioning.run_arguments(
                pipe, loaded.architecture, [(step_texts[:-1], step_texts[-1]) for _, step_texts in runs], guided,
                clip_skip)
            text_arguments = per_run[0]
        else:
            # diffusers wants a list of negatives beside a list of prompts
            negatives = (negative or None) if one_prompt or not negative else [negative] * len(texts)
            text_arguments = dict(prompt=texts[0] if one_prompt else texts, negative_prompt=negatives)
        copies = request.batch_size if one_prompt else 1

        running = [0]  # the index of the step being run, for the T2I-Adapters' ranges

        def on_step_end(_pipe, index, _timestep, tensors):
            running[0] = index + 1
            cancel.raise_if_cancelled()
            if len(runs) > 1:  # an edited prompt: the next step's text, if it changes
                following = prompt_editing.run_of(ends, index + 1)
                if following != prompt_editing.run_of(ends, index):
                    _replace_prompt(tensors, per_run[following], copies)
            if on_progress is not None:
                preview = None
                if request.preview == Preview.LATENT:
                    preview = latent_preview(tensors["latents"][0].float().cpu().numpy(), loaded.architecture)
                elif request.preview == Preview.TAESD:
                    decoded = taesd.decode(tensors["latents"][:1].to(taesd.dtype)).sample[0]
                    preview = to_image(decoded.float().cpu().numpy())
                on_progress(Progress(index + 1, total, 0, request.batch_size, preview, time.perf_counter() - started))
            return {}

        kwargs = dict(
            **text_arguments,
            num_inference_steps=settings_plan.steps,  # the schedule; `total` of its steps run (strength)
            guidance_scale=settings_plan.guidance,
            eta=settings_plan.eta,
            generator=generators,
            num_images_per_prompt=copies,
            output_type="latent",
            callback_on_step_end=on_step_end,
            callback_on_step_end_tensor_inputs=["latents", "prompt_embeds",
                                                *(["add_text_embeds"] if loaded.architecture == Architecture.SDXL
                                                  else [])],
            **modes.mode_arguments(request, sources, any(modes.is_union(net) for net in controlnets),
                                   modes.is_inpainting(loaded.pipe.unet)),
            **ip_adapters.call_arguments(request, sources.references),
        )
        if settings_plan.timesteps is not None:
            kwargs["timesteps"] = list(settings_plan.timesteps)
        with (modes.vae_as_placed(pipe.vae), _varied_draw(pipe, members),
              tiling.seamless([*controlnets, *adapters], request.tiling)):
            adapter_units = t2i_adapters.units(adapters, adapter_controls, adapter_pictures, sources.width,
                                               sources.height)
            with t2i_adapters.adding(pipe.unet, adapter_units, total, lambda: running[0]):
                return pipe(**kwargs).images

    def _decode(self, loaded: LoadedPipeline, latents: torch.Tensor, taesd):
        pipe = loaded.pipe
        if taesd is not None:
            image = taesd.decode(latents.to(taesd.dtype)).sample
        else:
            vae = pipe.vae
            config = vae.config
            mean, std = config.get("latents_mean"), config.get("latents_std")
            if loaded.architecture == Architecture.SDXL and mean is not None and std is not None:
                mean_t = torch.tensor(mean).view(1, -1, 1, 1).to(latents.device, latents.dtype)
                std_t = torch.tensor(std).view(1, -1, 1, 1).to(latents.device, latents.dtype)
                latents = latents * std_t / config.scaling_factor + mean_t
            else:
                latents = latents / config.scaling_factor
            image = self._vae_decode(loaded, latents.to(vae.dtype))
        return to_pil(image, pipe.image_processor.config.do_normalize)

    @staticmethod
    def _vae_decode(loaded: LoadedPipeline, latents: torch.Tensor) -> torch.Tensor:
        """The VAE decode of one image: whole where the device has room for it, in tiles where it has not (as
        when SDXL at 1024² runs on an 8 GB card) or where a whole decode ran out of memory. Tiling asked for in
        Settings always tiles."""
        pipe, device = loaded.pipe, loaded.placement.device
        vae = pipe.vae
        if vae.use_tiling:
            return vae.decode(latents, return_dict=False)[0]
        scale = pipe.vae_scale_factor
        width, height = latents.shape[-1] * scale, latents.shape[-2] * scale
        how = choose_decode(width, height, loaded.placement.vae_dtype, devices.free_memory(device))
        if how is not Decode.TILES:
            decode = vae.decode if how is Decode.WHOLE else graphs.eager(vae.decode)
            try:
                return decode(latents, return_dict=False)[0]
            except torch.OutOfMemoryError:
                pass  # the traceback, and the memory its frames hold, goes at the end of this block
            log.warning("the VAE decode of %d × %d ran out of %s memory; decoding in tiles", width, height, device)
        else:
            log.info("decoding %d × %d in tiles: %s memory is short for a whole decode", width, height, device)
        devices.release_cached(device)
        _tile(pipe)
        try:
            return vae.decode(latents, return_dict=False)[0]
        finally:
            vae.disable_tiling()


def to_pil(image: torch.Tensor, denormalize: bool = True):
    """The first image of a decoded batch as diffusers' `postprocess(output_type="pil")` makes it (from [-1, 1] to
    [0, 1], × 255, rounded half to even, 8 bits), the same arithmetic in fp32, done where the image is: 8-bit
    pixels, a quarter of the bytes, cross to the host, and the host does no float work (at 1024² it did 12 MB)."""
    from PIL import Image

    pixels = image[0].float()
    if denormalize:
        pixels = (pixels * 0.5 + 0.5).clamp(0, 1)
    pixels = (pixels * 255).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[-1] == 1 else array)


def _tile(pipe) -> None:
    """Make `pipe`'s VAE decode in tiles of `VAE_TILE` pixels (or its own sample size, if smaller)."""
    vae = pipe.vae
    vae.enable_tiling()
    vae.tile_sample_min_size = min(vae.config.sample_size, VAE_TILE)
    vae.tile_latent_min_size = vae.tile_sample_min_size // pipe.vae_scale_factor


def _replace_prompt(tensors: dict, arguments: dict, copies: int) -> None:
    """Put another run's prompt embeddings into the pipeline's own tensors, in place (every pipeline reads them
    each step; not every one takes replacements back from the callback): each prompt `copies` times, the
    negative half first when guidance runs, as the pipelines lay them out."""
    def laid_out(positive, negative, current):
        rows = positive.repeat_interleave(copies, 0)
        if current.shape[0] == 2 * rows.shape[0]:
            rows = torch.cat([negative.repeat_interleave(copies, 0), rows])
        current.copy_(rows)

    laid_out(arguments["prompt_embeds"], arguments.get("negative_prompt_embeds"), tensors["prompt_embeds"])
    if "add_text_embeds" in tensors:
        laid_out(arguments["pooled_prompt_embeds"], arguments.get("negative_pooled_prompt_embeds"),
                 tensors["add_text_embeds"])


@contextlib.contextmanager
def _varied_draw(pipe, members):
    """While `pipe` runs, its starting noise is varied by the members' variation seeds (engine/variation.py).

    Each mode pipeline draws the starting noise once, in `prepare_latents`, with its module's `randn_tensor`: from
    the prompt the latents themselves, from a picture the noise added to the picture's latents (and, inpainting,
    to the kept part's after each step). Here that one draw is the seed's noise, drawn as the pipeline draws it
    (its generators, after whatever it drew from them before, as the picture's latents; its dtype and device),
    turned towards the variation seeds' noise; the generators go on to the scheduler's steps as in a plain run.
    The scheduler's own draws (TCD's) and the VAE's are other modules' and stay the seed's. The engine runs one
    pipeline at a time, which the module's name is swapped for."""
    if not members[0].varied:
        yield
        return
    import sys

    from hypersd_desktop.engine.variation import slerp

    module = sys.modules[type(pipe).__module__]
    draw = module.randn_tensor  # every mode pipeline has it: tests/engine/test_variation.py runs each mode

    def varied(shape, generator=None, device=None, dtype=None, layout=None):
        noise = draw(shape, generator=generator, device=device, dtype=dtype, layout=layout)
        if shape[0] != len(members):
            raise RuntimeError(f"{type(pipe).__name__} drew noise for {shape[0]} images, not {len(members)}")
        others = draw(shape, generator=[torch.Generator("cpu").manual_seed(member.variation_seed)
                                        for member in members], device=device, dtype=dtype, layout=layout)
        mixed = slerp(members[0].variation_strength, noise.float().cpu().numpy(), others.float().cpu().numpy())
        return torch.from_numpy(mixed).to(device=noise.device, dtype=noise.dtype)

    module.randn_tensor = varied
    try:
        yield
    finally:
        module.randn_tensor = draw
