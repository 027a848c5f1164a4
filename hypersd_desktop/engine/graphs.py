"""The UNet, the VAE decode and ControlNets replayed as CUDA graphs, captured per input shape on first use.

At one to four steps a fast GPU spends most of a UNet step launching kernels, not running them: an
SD1.5 UNet step took 26 ms eager and 9.4 ms replayed as a graph on an H200. A CUDA graph records the
kernels of one call on fixed input and output memory and replays them with one launch. So each
`Graphed` keeps, per input layout (shapes, dtypes, which optional inputs are given), static input
tensors, the static output and the replay; a call copies its inputs into the static tensors, replays,
and returns a copy of the output (the next replay overwrites it).

What makes a replay equal to the eager call:

- The recording runs after warm-up calls on a side stream, so cuBLAS/cuDNN pick their kernels and
  allocate their workspaces outside the capture.
- Every graph of an engine shares one memory pool; the engine replays them one at a time.
- Weights are read where they lie: fusing or unfusing a LoRA writes them in place (`lora.apply_layers`),
  so a graph keeps seeing the current weights. Loading another model drops the graphs with the pipeline.
- A call with inputs the graph cannot take (a dict of non-tensor options, say) runs eagerly.

`install(pipe, recorder, compiler)` puts these callables in place of `pipe.unet.forward` and the
VAE's `decode`; `uninstall(pipe)` restores them. `follow(pipe, controlnets)` does the same for the
ControlNets a request runs (each step calls them before the UNet: the Draw tab's every stroke), with the
UNet's recorder, or restores them where the UNet runs eagerly. The recorder is `record_cuda_graph` on CUDA; tests on
the CPU pass one that keeps the same contract (static inputs in, static output out) by re-running.
Either may be None. With a compiler (`engine/compiled.py`), a call whose layout has a compiled step
ready runs that instead of the eager code; when one becomes ready, the layout's graph is recorded
again around it. No graph is recorded while the compiler's thread uses the device (`DEVICE_WORK`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import torch

log = logging.getLogger(__name__)

# Held while a graph is captured, and while the compiler's thread runs a compiled step on the device (its
# check and timing): during a capture another thread's allocation would break it (and fail itself).
DEVICE_WORK = threading.Lock()

# A recorder runs `fn` on the static inputs once for real and returns (static output, replay): after
# `replay()` the static output holds `fn` of whatever the static inputs hold then.
Recorder = Callable[[Callable[..., torch.Tensor], list[torch.Tensor]], tuple[torch.Tensor, Callable[[], None]]]

class Compiler(Protocol):
    """What the graphs ask of `compiled.Compiler`: the compiled step for these inputs, or None for now."""

    def runner(self, part: str, module: torch.nn.Module, layout: tuple, tensors: list[torch.Tensor],
               scale: int = 8) -> Callable[..., torch.Tensor] | None: ...


# The UNet's keyword inputs a graph takes, in a fixed order: tensors, tuples of tensors (ControlNet
# residuals) or dicts of tensors (SDXL's added conditions), or None.
UNET_INPUTS = ("class_labels", "timestep_cond", "attention_mask", "added_cond_kwargs",
               "down_block_additional_residuals", "mid_block_additional_residual",
               "down_intrablock_additional_residuals", "encoder_attention_mask")


def record_cuda_graph(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], pool=None,
                      warmups: int = 2) -> tuple[torch.Tensor, Callable[[], None]]:
    """Warm `fn` up on a side stream, then capture one call of it as a CUDA graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmups):
            fn(*inputs)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        output = fn(*inputs)
    return output, graph.replay


def cuda_recorder() -> Recorder:
    """A CUDA-graph recorder whose graphs all share one memory pool."""
    pool = torch.cuda.graph_pool_handle()
    return lambda fn, inputs: record_cuda_graph(fn, inputs, pool=pool)


@dataclass
class _Entry:
    inputs: list[torch.Tensor]
    output: torch.Tensor
    replay: Callable[[], None]
    compiled: object = None  # the compiled step the graph holds; None: the eager code


class Graphed:
    """`fn(layout, *tensors) -> tensor` of one part ("unet" or "vae") of `module`: run compiled where the
    compiler has the layout ready, and replayed from a graph recorded per layout and input shapes where
    there is a recorder."""

    def __init__(self, fn: Callable[..., torch.Tensor], recorder: Recorder | None, limit: int = 8,
                 part: str = "unet", module: torch.nn.Module | None = None, compiler: Compiler | None = None,
                 scale: int = 8) -> None:
        self.fn = fn
        self.recorder = recorder
        self.limit = limit  # layouts kept; each holds its static tensors (the pool is shared)
        self.entries: dict[tuple, _Entry] = {}
        self.part = part
        self.module = module
        self.compiler = compiler
        self.scale = scale  # image pixels per latent
        self.ungraphable: set[tuple] = set()  # layouts whose compiled step could not be recorded

    def __call__(self, layout: tuple, tensors: list[torch.Tensor]) -> torch.Tensor:
        fn = partial(self.fn, layout)
        compiled = self.compiler.runner(self.part, self.module, layout, tensors, self.scale) if self.compiler else None
        if compiled is not None:
            fn = compiled
        if self.recorder is None:
            return fn(*tensors)
        key = (layout, *((t.shape, t.dtype, t.device) for t in tensors))
        if compiled is not None and key in self.ungraphable:
            return fn(*tensors)
        entry = self.entries.get(key)
        if entry is None or entry.compiled is not compiled:
            if not DEVICE_WORK.acquire(blocking=False):
                return fn(*tensors)  # a compile is using the device: record the graph after it
            try:
                self.entries.pop(key, None)
                if len(self.entries) >= self.limit:
                    self.entries.pop(next(iter(self.entries)))
                statics = [t.clone() for t in tensors]
                output, replay = self.recorder(fn, statics)
            except Exception:
                if compiled is None:
                    raise
                # The compiled step could not be recorded: it runs as it is, which is still faster than eager.
                log.warning("could not record a graph of the compiled %s; running it without one", self.part,
                            exc_info=True)
                self.ungraphable.add(key)
                return fn(*tensors)
            finally:
                DEVICE_WORK.release()
            entry = self.entries[key] = _Entry(statics, output, replay, compiled)
            log.info("recorded a graph of %s%s for %s", self.fn.__name__, " (compiled)" if compiled else "",
                     [tuple(t.shape) for t in tensors])
        else:
            for static, tensor in zip(entry.inputs, tensors):
                static.copy_(tensor)
        entry.replay()
        return _copy(entry.output)


def _copy(output):
    """A copy of a static output (a tensor, or a tuple of them): the next replay overwrites it."""
    return tuple(t.clone() for t in output) if isinstance(output, tuple) else output.clone()


def _flatten(kwargs: dict) -> tuple[tuple, list[torch.Tensor]] | None:
    """The UNet's optional inputs as (layout, tensors); None when one is not a tensor, tuple or dict of them."""
    layout, tensors = [], []
    for name in UNET_INPUTS:
        value = kwargs.get(name)
        if value is None:
            continue
        if isinstance(value, torch.Tensor):
            layout.append((name, None))
            tensors.append(value)
        elif isinstance(value, (tuple, list)) and all(isinstance(v, torch.Tensor) for v in value):
            layout.append((name, len(value)))
            tensors.extend(value)
        elif isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values()):
            keys = tuple(sorted(value))
            layout.append((name, keys))
            tensors.extend(value[k] for k in keys)
        else:
            return None
    return tuple(layout), tensors


def unflatten(layout: tuple, tensors: list[torch.Tensor]) -> dict:
    kwargs, at = {}, 0
    for name, shape in layout:
        if shape is None:
            kwargs[name] = tensors[at]
            at += 1
        elif isinstance(shape, int):
            kwargs[name] = tuple(tensors[at:at + shape])
            at += shape
        else:
            kwargs[name] = dict(zip(shape, tensors[at:at + len(shape)]))
            at += len(shape)
    return kwargs


class GraphedUNet:
    """A UNet's `forward` that runs compiled steps and replays graphs; installed on the instance, so
    `unet(...)` goes through it."""

    def __init__(self, unet: torch.nn.Module, recorder: Recorder | None, compiler: Compiler | None = None,
                 scale: int = 8) -> None:
        self.eager = unet.forward
        self.unet = unet

        def unet_step(layout, sample, timestep, encoder_hidden_states, *rest):
            return self.eager(sample, timestep, encoder_hidden_states, **unflatten(layout, list(rest)),
                              return_dict=False)[0]

        self.graphed = Graphed(unet_step, recorder, part="unet", module=unet, compiler=compiler, scale=scale)

    def __call__(self, sample, timestep, encoder_hidden_states, cross_attention_kwargs=None, return_dict=True,
                 **kwargs):
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        flat = _flatten(kwargs)
        unknown = set(kwargs) - set(UNET_INPUTS)
        if flat is None or unknown or cross_attention_kwargs or torch.is_grad_enabled():
            return self.eager(sample, timestep, encoder_hidden_states, cross_attention_kwargs=cross_attention_kwargs,
                              return_dict=return_dict, **kwargs)
        layout, rest = flat
        # The timestep as a tensor on the device: the UNet would otherwise make one from a number on the
        # host, which a graph cannot record.
        timestep = torch.as_tensor(timestep, device=sample.device)
        if timestep.dtype == torch.float64:
            timestep = timestep.float()
        output = self.graphed(layout, [sample, timestep, encoder_hidden_states, *rest])
        return UNet2DConditionOutput(sample=output) if return_dict else (output,)


class GraphedDecode:
    """A VAE's `decode(latents)` that runs compiled steps and replays graphs; other calls (tiling, options)
    run eagerly."""

    def __init__(self, vae: torch.nn.Module, recorder: Recorder | None, compiler: Compiler | None = None,
                 scale: int = 8) -> None:
        self.eager = vae.decode
        self.vae = vae

        def vae_decode(_layout, latents):
            return self.eager(latents, return_dict=False)[0]

        self.graphed = Graphed(vae_decode, recorder, limit=4, part="vae", module=vae, compiler=compiler, scale=scale)

    def __call__(self, latents, return_dict=True, **kwargs):
        from diffusers.models.autoencoders.vae import DecoderOutput

        if kwargs or getattr(self.vae, "use_tiling", False) or getattr(self.vae, "use_slicing", False):
            return self.eager(latents, return_dict=return_dict, **kwargs)
        image = self.graphed((), [latents])
        return DecoderOutput(sample=image) if return_dict else (image,)


class GraphedControlNet:
    """A ControlNet's `forward` replayed from graphs, as the UNet's is: its residuals come out as copies. The
    conditioning scale and guess mode are numbers the graph holds, so they are part of the layout (a scale that
    changes by step, with a start or end, records a graph per scale). Calls a graph cannot take run eagerly."""

    def __init__(self, controlnet: torch.nn.Module, recorder: Recorder) -> None:
        import inspect

        self.eager = controlnet.forward
        self.signature = inspect.signature(self.eager)

        def controlnet_step(layout, sample, timestep, encoder_hidden_states, controlnet_cond, *rest):
            (scale, guess), optional = layout
            down, mid = self.eager(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=scale,
                                   guess_mode=guess, **unflatten(optional, list(rest)), return_dict=False)
            return (*down, mid)

        self.graphed = Graphed(controlnet_step, recorder, part="controlnet", module=controlnet)

    def __call__(self, *args, **kwargs):
        from diffusers.models.controlnets.controlnet import ControlNetOutput

        given = self.signature.bind(*args, **kwargs)
        given.apply_defaults()
        named = dict(given.arguments)
        scale, guess, return_dict = named.pop("conditioning_scale"), named.pop("guess_mode"), named.pop("return_dict")
        sample, timestep = named.pop("sample"), named.pop("timestep")
        hidden, cond = named.pop("encoder_hidden_states"), named.pop("controlnet_cond")
        attention_options = named.pop("cross_attention_kwargs")
        flat = _flatten(named)
        if (flat is None or set(named) - set(UNET_INPUTS) or attention_options or isinstance(scale, bool)
                or not isinstance(scale, (int, float)) or torch.is_grad_enabled()):
            return self.eager(*args, **kwargs)
        optional, rest = flat
        timestep = torch.as_tensor(timestep, device=sample.device)  # a device tensor, as for the UNet
        if timestep.dtype == torch.float64:
            timestep = timestep.float()
        *down, mid = self.graphed(((float(scale), bool(guess)), optional), [sample, timestep, hidden, cond, *rest])
        if return_dict:
            return ControlNetOutput(down_block_res_samples=tuple(down), mid_block_res_sample=mid)
        return tuple(down), mid


def follow(pipe, controlnets: list) -> None:
    """Replay `controlnets` from graphs where `pipe`'s UNet is (with its recorder, so their graphs share its
    memory pool), and run them eagerly where it is not. Union ControlNets, which take other inputs, stay eager."""
    from diffusers import ControlNetModel

    wrapper = pipe.unet.__dict__.get("forward")
    recorder = wrapper.graphed.recorder if isinstance(wrapper, GraphedUNet) else None
    for net in controlnets:
        current = net.__dict__.get("forward")
        if isinstance(current, GraphedControlNet):
            if current.graphed.recorder is recorder:
                continue
            del net.__dict__["forward"]
        if recorder is not None and type(net) is ControlNetModel:
            net.forward = GraphedControlNet(net, recorder)


def eager(method: Callable) -> Callable:
    """The eager code behind `method` (a UNet's forward or a VAE's decode) where graphs are installed."""
    return method.eager if isinstance(method, (GraphedUNet, GraphedDecode)) else method


def install(pipe, recorder: Recorder | None, compiler: Compiler | None = None) -> None:
    """Route `pipe`'s UNet and VAE decode through compiled steps and graphs. A second call with a recorder
    again (or none again) and the same compiler keeps the graphs."""
    for module, name, cls in ((pipe.unet, "forward", GraphedUNet), (pipe.vae, "decode", GraphedDecode)):
        current = module.__dict__.get(name)
        if isinstance(current, cls):
            if (current.graphed.recorder is None) == (recorder is None) and current.graphed.compiler is compiler:
                continue
            del module.__dict__[name]
        setattr(module, name, cls(module, recorder, compiler, getattr(pipe, "vae_scale_factor", 8)))


def uninstall(pipe) -> None:
    """Back to eager calls; the graphs and their static tensors are freed."""
    for module, name in ((pipe.unet, "forward"), (pipe.vae, "decode")):
        if isinstance(module.__dict__.get(name), (GraphedUNet, GraphedDecode)):
            del module.__dict__[name]


def installed(pipe) -> bool:
    """Whether `pipe` records graphs."""
    wrapper = pipe.unet.__dict__.get("forward")
    return isinstance(wrapper, GraphedUNet) and wrapper.graphed.recorder is not None


def recorded(pipe) -> int:
    """How many graphs `pipe` holds (UNet and VAE together)."""
    count = 0
    for module, name in ((pipe.unet, "forward"), (pipe.vae, "decode")):
        wrapper = module.__dict__.get(name)
        if isinstance(wrapper, (GraphedUNet, GraphedDecode)):
            count += len(wrapper.graphed.entries)
    return count
