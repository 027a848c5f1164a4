"""Text to image on an ONNX export with no torch: SD1.5 so far.

The same steps as diffusers' `StableDiffusionPipeline` with `output_type="pil"`, as the torch backend
calls it: the prompt through the CLIP tokenizer and text encoder (last hidden state), the negative
prompt too when guidance is above 1, the latents drawn as torch draws them (`noise`), the
scheduler's steps in numpy (`schedulers`), the VAE decoder on latents / scaling factor, and the
image rounded to 8 bits. Sessions come from a `Provider`; `on_step` is called after every step and
may raise to cancel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hypersd_desktop.engine.onnx.noise import TorchCpuGenerator, batch_randn
from hypersd_desktop.engine.onnx.providers import CPU, Provider
from hypersd_desktop.engine.onnx.schedulers import build

MAX_TOKENS = 77


class OnnxSD15:
    """The sessions and configs of one SD1.5 export."""

    def __init__(self, folder: Path, provider: Provider = CPU) -> None:
        from transformers import CLIPTokenizer

        self.folder = folder
        self.tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
        self.text_encoder = provider.session(folder / "text_encoder" / "model.onnx")
        self.unet = provider.session(folder / "unet" / "model.onnx")
        self.vae_decoder = provider.session(folder / "vae_decoder" / "model.onnx")
        self.scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        vae = json.loads((folder / "vae_decoder" / "config.json").read_text())
        self.scaling_factor = vae.get("scaling_factor", 0.18215)
        self.vae_scale = 2 ** (len(vae["block_out_channels"]) - 1)  # 8 for SD1.5

    def encode(self, prompt: str) -> np.ndarray:
        ids = self.tokenizer(prompt, padding="max_length", max_length=MAX_TOKENS, truncation=True,
                             return_tensors="np").input_ids.astype(np.int64)
        return self.text_encoder.run(["last_hidden_state"], {"input_ids": ids})[0]

    def generate(self, prompt: str, seed: int, steps: int, scheduler: str, width: int, height: int,
                 batch_size: int = 1, guidance: float = 0.0, negative_prompt: str = "", eta: float | None = None,
                 timesteps: tuple[int, ...] | None = None,
                 on_step: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
        """`batch_size` images (H × W × 3 uint8) of `prompt`; image k from seed + k."""
        embeds = np.repeat(self.encode(prompt), batch_size, axis=0)
        guided = guidance > 1
        if guided:
            embeds = np.concatenate([np.repeat(self.encode(negative_prompt), batch_size, axis=0), embeds])
        stepper = build(scheduler, self.scheduler_config)
        if timesteps is not None:
            stepper.set_timesteps(timesteps=list(timesteps))
        else:
            stepper.set_timesteps(steps)
        generators = [TorchCpuGenerator(seed + k) for k in range(batch_size)]
        latents = batch_randn(generators, (batch_size, 4, height // self.vae_scale, width // self.vae_scale)) * np.float32(stepper.init_noise_sigma)
        extra = {"eta": eta} if eta is not None else {}
        for index, t in enumerate(stepper.timesteps.tolist()):
            sample = np.concatenate([latents, latents]) if guided else latents
            predicted = self.unet.run(["out_sample"], {"sample": sample, "timestep": np.array(t, np.float32),
                                                       "encoder_hidden_states": embeds})[0]
            if guided:
                unconditional, conditional = np.split(predicted, 2)
                predicted = unconditional + np.float32(guidance) * (conditional - unconditional)
            latents = stepper.step(predicted, t, latents, generators=generators, **extra).astype(np.float32)
            if on_step is not None:
                on_step(index + 1, len(stepper.timesteps))
        images = []
        for k in range(batch_size):
            decoded = self.vae_decoder.run(["sample"], {"latent_sample": latents[k:k + 1] / np.float32(self.scaling_factor)})[0]
            image = np.clip(decoded[0] / 2 + 0.5, 0, 1).transpose(1, 2, 0)
            images.append((image * 255).round().astype(np.uint8))
        return images
