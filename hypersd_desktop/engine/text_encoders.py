"""The text encoders' calls: outputs kept per prompt, and the encoders kept in RAM on a GPU too small for
the whole model and a run beside it.

A prompt is read once. People make image after image from one prompt (new seeds, a batch job's
repeats, every stroke on the Draw tab), and at one to four steps the text encoders are a visible part
of each image. So each encoder's `forward` is replaced on the instance by `EncoderCalls`, which keeps
the outputs of the last `KEEP` distinct inputs (token ids, masks, options) and gives a copy of a kept
output instead of running the encoder again. What changes an encoder's weights (a LoRA fused or
unfused, embeddings loaded) must call `forget`.

Parking. SDXL's weights are 6.46 GiB in fp16: the UNet 4.78, the two text encoders 1.52, the VAE 0.16.
On an 8 GB card (7.5 GiB usable) the rest of a 1024² run does not fit beside them; on an H200 held to
7.5 GiB, the default plan ran out of memory. The text encoders run only to read a prompt, so there
they wait in RAM and come to the GPU only for a prompt not read before: the UNet and the VAE keep
the room they need, and a prompt read before costs no copying at all. The moves run outside
inference mode, so the parameters stay ordinary tensors that a LoRA can later be fused into in place.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import torch

from hypersd_desktop.engine.devices import module_bytes

log = logging.getLogger("hypersd.engine")

ENCODERS = ("text_encoder", "text_encoder_2")
KEEP = 8  # outputs kept per encoder: SDXL's bigger encoder's, with every layer's hidden states, are 6.5 MB each
# What a run needs on the device besides the weights, at the most: a 1024² SDXL image with the UNet and the VAE
# decode replayed as CUDA graphs took 2.6 GiB above its weights on an H200 (bench/memory_plans.py).
RUN_ROOM = 3 * 2**30
HOME = torch.device("cpu")


class EncoderCalls:
    """A text encoder's `forward`: a kept output for inputs seen before, else the encoder's own forward (brought to
    `device` for the call and sent back to RAM after it where the encoder is parked)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        self.encoder = encoder
        self.plain = encoder.forward  # the class's, or a wrapper already on the instance (accelerate's hooks)
        self.replaced = encoder.__dict__.get("forward")  # put back by `uninstall`
        self.outputs: OrderedDict[tuple, object] = OrderedDict()
        self.device: torch.device | None = None  # where a parked encoder runs; None: not parked
        self.runs = 0  # calls the encoder itself answered

    def __call__(self, *args, **kwargs):
        key = _key(args, kwargs)
        if key is not None and key in self.outputs:
            self.outputs.move_to_end(key)
            return _copy(self.outputs[key])
        self.runs += 1
        if self.device is not None:
            _move(self.encoder, self.device)
        try:
            output = self.plain(*args, **kwargs)
        finally:
            if self.device is not None:
                _move(self.encoder, HOME)
        if key is not None:
            self.outputs[key] = _copy(output)
            while len(self.outputs) > KEEP:
                self.outputs.popitem(last=False)
        return output


def encoders_of(pipe) -> list[torch.nn.Module]:
    return [module for module in (getattr(pipe, name, None) for name in ENCODERS) if module is not None]


def calls_of(encoder: torch.nn.Module) -> EncoderCalls | None:
    current = encoder.__dict__.get("forward")
    return current if isinstance(current, EncoderCalls) else None


def install(pipe) -> None:
    """Keep `pipe`'s text encoders' outputs (again a no-op where they are kept already)."""
    for encoder in encoders_of(pipe):
        if calls_of(encoder) is None:
            encoder.forward = EncoderCalls(encoder)


def uninstall(pipe) -> None:
    """Back to the encoders' own forward, on the device the rest of the pipeline is on (for an export)."""
    for encoder in encoders_of(pipe):
        calls = calls_of(encoder)
        if calls is not None:
            if calls.device is not None:
                _move(encoder, calls.device)
            if calls.replaced is None:
                del encoder.__dict__["forward"]
            else:
                encoder.forward = calls.replaced


def forget(pipe) -> None:
    """Drop the kept outputs: the encoders' weights changed."""
    for encoder in encoders_of(pipe):
        calls = calls_of(encoder)
        if calls is not None:
            calls.outputs.clear()


def should_park(pipe, device: str, free: int | None) -> bool:
    """Whether `pipe`'s text encoders should wait in RAM: `device` is a GPU of its own (CUDA; Apple's GPUs share
    the RAM) and, with `free` bytes before the model is on it, cannot hold every weight and a run beside them."""
    if device != "cuda" or free is None:
        return False
    weights = sum(module_bytes(module) for module in pipe.components.values() if isinstance(module, torch.nn.Module))
    return weights + RUN_ROOM > free


def park(pipe, device: str | torch.device) -> None:
    """Keep `pipe`'s text encoders in RAM, brought to `device` only to read a prompt not read before."""
    install(pipe)
    for encoder in encoders_of(pipe):
        _move(encoder, HOME)
        calls_of(encoder).device = torch.device(device)
    log.info("the text encoders wait in RAM and come to the GPU only to read a new prompt: the GPU is short of "
             "memory for the whole model and a run")


def parked(pipe) -> bool:
    return any(calls is not None and calls.device is not None for calls in map(calls_of, encoders_of(pipe)))


def _move(module: torch.nn.Module, device: torch.device) -> None:
    with torch.inference_mode(False):
        module.to(device)


def _key(args: tuple, kwargs: dict) -> tuple | None:
    """What the call's output depends on besides the weights, hashable; None where a value is not understood."""
    parts = []
    for name, value in [*enumerate(args), *sorted(kwargs.items())]:
        if isinstance(value, torch.Tensor):
            if value.requires_grad:
                return None
            data = value.detach().cpu().flatten().view(torch.uint8).numpy().tobytes()
            value = (tuple(value.shape), str(value.dtype), str(value.device), data)
        elif not (value is None or isinstance(value, (bool, int, float, str))):
            return None
        parts.append((name, value))
    return tuple(parts)


def _copy(value):
    """A copy of an output (a ModelOutput, tuple or tensor), so that no caller can change a kept one."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and not hasattr(value, "keys"):
        return type(value)(_copy(item) for item in value)
    if hasattr(value, "keys"):  # transformers' ModelOutput: a dataclass and an ordered dict
        return type(value)(**{name: _copy(value[name]) for name in value.keys()})
    return value
