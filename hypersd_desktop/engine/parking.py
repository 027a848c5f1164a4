"""Text encoders kept in RAM on a GPU too small for the whole model and a run beside it.

SDXL's weights are 6.46 GiB in fp16: the UNet 4.78, the two text encoders 1.52, the VAE 0.16. On an
8 GB card (7.5 GiB usable) the rest of a 1024² run does not fit beside them; measured on an H200
held to 7.5 GiB, the default plan ran out of memory. The text encoders run once per prompt, before
the first step, so they can wait in RAM and come to the GPU only to read a prompt: the UNet and the
VAE keep the room they need, at the cost of copying 1.5 GB in and out (a fraction of a second).

Parked encoders move with forward hooks: to the GPU before their forward, back to RAM after it (the
output stays on the GPU). The moves run outside inference mode, so the parameters stay ordinary
tensors that a LoRA can later be fused into in place.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("hypersd.engine")

ENCODERS = ("text_encoder", "text_encoder_2")
# What a run needs on the device besides the weights, at the most: a 1024² SDXL image with the UNet and the VAE
# decode replayed as CUDA graphs took 2.6 GiB above its weights on an H200 (bench/memory_plans.py).
RUN_ROOM = 3 * 2**30
HOME = torch.device("cpu")


def module_bytes(module: torch.nn.Module | None) -> int:
    if module is None:
        return 0
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def encoders_of(pipe) -> list[torch.nn.Module]:
    return [module for module in (getattr(pipe, name, None) for name in ENCODERS) if module is not None]


def should_park(pipe, device: str, free: int | None) -> bool:
    """Whether `pipe`'s text encoders should wait in RAM: `device` is a GPU of its own (CUDA; Apple's GPUs share
    the RAM) and, with `free` bytes before the model is on it, cannot hold every weight and a run beside them."""
    if device != "cuda" or free is None:
        return False
    weights = sum(module_bytes(module) for module in pipe.components.values() if isinstance(module, torch.nn.Module))
    return weights + RUN_ROOM > free


def park(pipe, device: str | torch.device) -> None:
    """Keep `pipe`'s text encoders in RAM and bring each to `device` only while it runs."""
    device = torch.device(device)
    for encoder in encoders_of(pipe):
        if getattr(encoder, "_hypersd_parked", None) is not None:
            continue
        _move(encoder, HOME)
        encoder._hypersd_parked = (
            encoder.register_forward_pre_hook(lambda module, args, device=device: _move(module, device)),
            encoder.register_forward_hook(lambda module, args, output: _move(module, HOME)),
        )
    log.info("the text encoders wait in RAM and come to the GPU only to read a prompt: the GPU is short of "
             "memory for the whole model and a run")


def unpark(pipe) -> None:
    for encoder in encoders_of(pipe):
        hooks = getattr(encoder, "_hypersd_parked", None)
        if hooks is not None:
            for hook in hooks:
                hook.remove()
            encoder._hypersd_parked = None


def parked(pipe) -> bool:
    return any(getattr(encoder, "_hypersd_parked", None) is not None for encoder in encoders_of(pipe))


def _move(module: torch.nn.Module, device: torch.device) -> None:
    with torch.inference_mode(False):
        module.to(device)
