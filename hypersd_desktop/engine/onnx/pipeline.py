"""Text to image on an ONNX export with no torch: SD1.5 and SDXL.

The same steps as diffusers' `StableDiffusionPipeline` and `StableDiffusionXLPipeline` with
`output_type="latent"`, as the torch backend calls them:

- SD1.5: the prompt through the CLIP tokenizer and text encoder (last hidden state).
- SDXL: both tokenizers and text encoders, each one's second-to-last hidden state joined along the
  features, the second encoder's projected pooled output, and the time ids (original size, crop
  0,0, target size); with guidance and no negative prompt the negative embeddings are zeros
  (`force_zeros_for_empty_prompt`).
- The negative prompt runs only when guidance is above 1 (one UNet pass per step otherwise).
- The latents are drawn as torch draws them (`noise`), the scheduler steps in numpy
  (`schedulers`), and `decode` turns latents into 8-bit images with the VAE decoder (latents /
  scaling factor) or a given decoder (TAESD).

Sessions come from a `Provider`; `on_step(step, total, latents)` is called after every step and may
raise to cancel. A provider that runs faster with fixed shapes (DirectML) gets sessions made for one
`Shape`; generating another shape needs another pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypersd_desktop.core.vocab import Architecture
from hypersd_desktop.engine.onnx.noise import TorchCpuGenerator, batch_randn
from hypersd_desktop.engine.onnx.providers import CPU, Provider
from hypersd_desktop.engine.onnx.schedulers import build

MAX_TOKENS = 77  # CLIP's window: every prompt is padded to it

StepCallback = Callable[[int, int, np.ndarray], None]


@dataclass(frozen=True)
class Shape:
    """What fixes the graphs' free dimensions: images per UNet pass (twice the batch with guidance) and size."""

    unet_batch: int
    width: int
    height: int

    def free_dimensions(self, part: str, vae_scale: int) -> dict[str, int]:
        latent = {"height": self.height // vae_scale, "width": self.width // vae_scale}
        if part.startswith("text_encoder"):
            return {"batch_size": 1, "sequence_length": MAX_TOKENS}
        if part == "unet":
            return {"batch_size": self.unet_batch, "sequence_length": MAX_TOKENS, **latent}
        return {"batch_size": 1, "latent_height": latent["height"], "latent_width": latent["width"]}


def to_uint8(decoded: np.ndarray) -> np.ndarray:
    """A decoder's C × H × W output in [-1, 1] as an H × W × C 8-bit image, rounded as diffusers does."""
    image = np.clip(decoded / 2 + 0.5, 0, 1).transpose(1, 2, 0)
    return (image * 255).round().astype(np.uint8)


class OnnxPipeline:
    """The sessions and configs of one export (SD1.5 or SDXL, read from its model_index.json)."""

    def __init__(self, folder: Path, provider: Provider = CPU, shape: Shape | None = None) -> None:
        from transformers import CLIPTokenizer

        self.folder = folder
        self.provider = provider
        self.shape = shape if provider.fixed_shapes else None
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        self.architecture = Architecture.SDXL if "text_encoder_2" in index else Architecture.SD15
        self.force_zeros_for_empty_prompt = bool(index.get("force_zeros_for_empty_prompt", True))
        vae = json.loads((folder / "vae_decoder" / "config.json").read_text(encoding="utf-8"))
        self.scaling_factor = vae.get("scaling_factor", 0.18215)
        self.latents_mean, self.latents_std = vae.get("latents_mean"), vae.get("latents_std")
        self.vae_scale = 2 ** (len(vae["block_out_channels"]) - 1)  # 8 for both
        names = ("", "_2") if self.architecture == Architecture.SDXL else ("",)
        self.tokenizers = [CLIPTokenizer.from_pretrained(folder / f"tokenizer{n}") for n in names]
        self.text_encoders = [self._session(f"text_encoder{n}") for n in names]
        self.unet = self._session("unet")
        self.unet_inputs = {i.name for i in self.unet.get_inputs()}
        self.vae_decoder = self._session("vae_decoder")
        self.scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))

    def _session(self, part: str):
        fixed = self.shape.free_dimensions(part, self.vae_scale) if self.shape else None
        return self.provider.session(self.folder / part / "model.onnx", fixed)

    # -- text ----------------------------------------------------------------------------------

    def token_ids(self, tokenizer, text: str) -> np.ndarray:
        return tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                         return_tensors="np").input_ids.astype(np.int64)

    def encode(self, prompt: str) -> tuple[np.ndarray, np.ndarray | None]:
        """(embeddings, pooled embeddings or None for SD1.5) of one prompt."""
        if self.architecture == Architecture.SD15:
            ids = self.token_ids(self.tokenizers[0], prompt)
            return self.text_encoders[0].run(["last_hidden_state"], {"input_ids": ids})[0], None
        embeds, pooled = [], None
        for tokenizer, encoder in zip(self.tokenizers, self.text_encoders):
            hidden = sorted((o.name for o in encoder.get_outputs() if o.name.startswith("hidden_states.")),
                            key=lambda name: int(name.rsplit(".", 1)[1]))
            wanted = [hidden[-2], *(["text_embeds"] if encoder is self.text_encoders[-1] else [])]
            outputs = encoder.run(wanted, {"input_ids": self.token_ids(tokenizer, prompt)})
            embeds.append(outputs[0])
            if len(outputs) > 1:
                pooled = outputs[1]
        return np.concatenate(embeds, axis=-1), pooled

    def conditioning(self, prompt: str, negative_prompt: str, batch_size: int, guided: bool,
                     width: int, height: int) -> dict[str, np.ndarray]:
        """The UNet's inputs besides the sample and timestep, negative half first when guided."""
        embeds, pooled = self.encode(prompt)
        parts = [(embeds, pooled)]
        if guided:
            if self.architecture == Architecture.SDXL and not negative_prompt and self.force_zeros_for_empty_prompt:
                parts.insert(0, (np.zeros_like(embeds), np.zeros_like(pooled)))
            else:
                parts.insert(0, self.encode(negative_prompt))
        feeds = {"encoder_hidden_states": np.concatenate([np.repeat(e, batch_size, axis=0) for e, _ in parts])}
        if self.architecture == Architecture.SDXL:
            feeds["text_embeds"] = np.concatenate([np.repeat(p, batch_size, axis=0) for _, p in parts])
            time_ids = np.array([[height, width, 0, 0, height, width]], np.float32)
            feeds["time_ids"] = np.repeat(time_ids, len(parts) * batch_size, axis=0)
        return feeds

    # -- images --------------------------------------------------------------------------------

    def generate(self, prompt: str, seed: int, steps: int, scheduler: str, width: int, height: int,
                 batch_size: int = 1, guidance: float = 0.0, negative_prompt: str = "", eta: float | None = None,
                 timesteps: tuple[int, ...] | None = None, on_step: StepCallback | None = None,
                 decoder: Callable[[np.ndarray], np.ndarray] | None = None) -> list[np.ndarray]:
        """`batch_size` images (H × W × 3 uint8) of `prompt`; image k from seed + k."""
        latents = self.denoise(prompt, seed, steps, scheduler, width, height, batch_size, guidance, negative_prompt,
                               eta, timesteps, on_step)
        return [self.decode(latents[k:k + 1], decoder) for k in range(batch_size)]

    def denoise(self, prompt: str, seed: int, steps: int, scheduler: str, width: int, height: int,
                batch_size: int = 1, guidance: float = 0.0, negative_prompt: str = "", eta: float | None = None,
                timesteps: tuple[int, ...] | None = None, on_step: StepCallback | None = None) -> np.ndarray:
        """The denoised latents of the batch."""
        guided = guidance > 1
        feeds = self.conditioning(prompt, negative_prompt, batch_size, guided, width, height)
        stepper = build(scheduler, self.scheduler_config)
        if timesteps is not None:
            stepper.set_timesteps(timesteps=list(timesteps))
        else:
            stepper.set_timesteps(steps)
        generators = [TorchCpuGenerator(seed + k) for k in range(batch_size)]
        shape = (batch_size, 4, height // self.vae_scale, width // self.vae_scale)
        latents = batch_randn(generators, shape) * np.float32(stepper.init_noise_sigma)
        extra = {"eta": eta} if eta is not None else {}
        total = len(stepper.timesteps)
        for index, t in enumerate(stepper.timesteps.tolist()):
            sample = np.concatenate([latents, latents]) if guided else latents
            inputs = {"sample": sample, "timestep": np.array(t, np.float32), **feeds}
            predicted = self.unet.run(["out_sample"], {k: v for k, v in inputs.items() if k in self.unet_inputs})[0]
            if guided:
                unconditional, conditional = np.split(predicted, 2)
                predicted = unconditional + np.float32(guidance) * (conditional - unconditional)
            latents = stepper.step(predicted, t, latents, generators=generators, **extra).astype(np.float32)
            if on_step is not None:
                on_step(index + 1, total, latents)
        return latents

    def decode(self, latent: np.ndarray, decoder: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """One latent (1 × 4 × h × w) as an 8-bit image, through the VAE or `decoder` (C × H × W in [-1, 1])."""
        if decoder is not None:
            return to_uint8(decoder(latent))
        if self.architecture == Architecture.SDXL and self.latents_mean is not None and self.latents_std is not None:
            mean = np.array(self.latents_mean, np.float32).reshape(1, -1, 1, 1)
            std = np.array(self.latents_std, np.float32).reshape(1, -1, 1, 1)
            latent = latent * std / np.float32(self.scaling_factor) + mean
        else:
            latent = latent / np.float32(self.scaling_factor)
        return to_uint8(self.vae_decoder.run(["sample"], {"latent_sample": latent.astype(np.float32)})[0][0])
