"""Text to image, image to image and inpainting on an ONNX export with no torch: SD1.5 and SDXL.

The same steps as diffusers' `StableDiffusion(XL)Pipeline`, `…Img2ImgPipeline` and `…InpaintPipeline`
with `output_type="latent"`, as the torch backend calls them:

- SD1.5: the prompt through the CLIP tokenizer and text encoder (last hidden state), window by window
  with A1111's emphasis (`prompts`), as the torch backend encodes such prompts.
- SDXL: both tokenizers and text encoders, each one's second-to-last hidden state joined along the
  features, the second encoder's projected pooled output, and the time ids (original size, crop
  0,0, target size); with guidance and no negative prompt the negative embeddings are zeros
  (`force_zeros_for_empty_prompt`).
- The negative prompt runs only when guidance is above 1 (one UNet pass per step otherwise).
- The latents are drawn as torch draws them (`noise`), the scheduler steps in numpy
  (`schedulers`), and `decode` turns latents into 8-bit images with the VAE decoder (latents /
  scaling factor) or a given decoder (TAESD).
- Image to image (`Start`): the init image through the VAE encoder (its mean and log-variance), one
  sample per image from that image's generator, scaled (SDXL: by its latents mean and std where the
  VAE has them); then noise from each generator, added at the first timestep of the schedule's last
  int(steps × strength) steps, which are the ones that run.
- Inpainting (`Start` with a mask): the mask binarized at 0.5; the init image sampled once from the
  first image's generator and scaled by the scaling factor alone (both pipelines do so); pure noise
  at strength 1, else the noised init latents; the masked image encoded (and sampled from the first
  generator) as diffusers does even for a 4-channel UNet, so the generators stay in step. After
  every step a 4-channel UNet's latents keep the init latents, noised to the next timestep, where the
  mask (resized to the latents, nearest) is black; a 9-channel inpainting UNet gets the mask and the
  masked image's latents beside the sample instead. Such a model runs text to image and image to image
  as inpainting masked all over: from mid-grey at strength 1, or from the init image.

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

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import Architecture
from hypersd_desktop.engine import prompt_editing, prompts
from hypersd_desktop.engine.inspect import INPAINTING_CHANNELS
from hypersd_desktop.engine.onnx.noise import TorchCpuGenerator, batch_randn
from hypersd_desktop.engine.onnx.providers import CPU, Provider
from hypersd_desktop.engine.onnx.schedulers import NumpyScheduler, build
from hypersd_desktop.engine.variation import slerp

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
        if part == "vae_encoder":
            return {"batch_size": 1, "sample_height": self.height, "sample_width": self.width}
        if part == "unet":
            return {"batch_size": self.unet_batch, "sequence_length": MAX_TOKENS, **latent}
        return {"batch_size": 1, "latent_height": latent["height"], "latent_width": latent["width"]}


@dataclass(frozen=True)
class Start:
    """Where image to image and inpainting start: the init image (H × W × 3 uint8), the strength, and for
    inpainting the mask (H × W uint8, already blurred; white is repainted)."""

    image: np.ndarray
    strength: float
    mask: np.ndarray | None = None


def to_pixels(image: np.ndarray) -> np.ndarray:
    """An H × W × 3 8-bit image as the VAE encoder's 1 × 3 × H × W input in [-1, 1] (diffusers' preprocess)."""
    return (image.astype(np.float32) / np.float32(255.0) * 2 - 1).transpose(2, 0, 1)[None].copy()


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
        self.unet_channels = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))["in_channels"]
        self.vae_decoder = self._session("vae_decoder")
        self._vae_encoder = None  # opened on the first image-to-image or inpainting request
        self.scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))

    def _session(self, part: str):
        fixed = self.shape.free_dimensions(part, self.vae_scale) if self.shape else None
        return self.provider.session(self.folder / part / "model.onnx", fixed)

    # -- text ----------------------------------------------------------------------------------

    def encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(embeddings, pooled embeddings or None for SD1.5) of each text, read as A1111 reads prompts
        (`prompts`): window by window, weighted, every text padded to the most windows. With fixed shapes the
        UNet takes one window, so the first is used (`length_warnings` says what that leaves out)."""
        sdxl = self.architecture == Architecture.SDXL
        rows: list[list[np.ndarray]] = [[] for _ in texts]
        pooled: list[np.ndarray | None] = [None for _ in texts]
        for tokenizer, encoder in zip(self.tokenizers, self.text_encoders):
            windows = prompts.padded([self._windows(tokenizer, text) for text in texts],
                                     prompts.chunks(tokenizer, "")[0])
            wanted = ["last_hidden_state"]
            if sdxl:
                hidden = sorted((o.name for o in encoder.get_outputs() if o.name.startswith("hidden_states.")),
                                key=lambda name: int(name.rsplit(".", 1)[1]))
                wanted = [hidden[-2], *(["text_embeds"] if encoder is self.text_encoders[-1] else [])]
            for index, text_windows in enumerate(windows):
                states = []
                for window in text_windows:
                    outputs = encoder.run(wanted, {"input_ids": np.array([window.ids], np.int64)})
                    hidden_states = outputs[0]
                    if window.weighted:
                        weights = np.array(window.weights, np.float32).reshape(1, -1, 1)
                        emphasised = prompts.emphasise(hidden_states.astype(np.float32), weights)
                        hidden_states = emphasised.astype(hidden_states.dtype)
                    states.append(hidden_states)
                    if len(outputs) > 1 and pooled[index] is None:
                        pooled[index] = outputs[1]  # the first window's, as A1111
                rows[index].append(np.concatenate(states, axis=1))
        return [(np.concatenate(row, axis=-1), pool) for row, pool in zip(rows, pooled)]

    def _windows(self, tokenizer, text: str) -> list[prompts.Chunk]:
        return prompts.chunks(tokenizer, text)[: self.max_windows]

    @property
    def max_windows(self) -> int:
        """The windows of a prompt this pipeline reads: one when its UNet's shapes are fixed."""
        return 1 if self.shape else prompts.MAX_WINDOWS

    def length_warnings(self, prompt: str, negative_prompt: str, steps: int | None = None) -> list[str]:
        """What this pipeline leaves out of the prompts (see `max_windows`); "" for a negative it does not use.
        An edited prompt is judged by the texts its `steps` steps read."""
        advice = (f", or choose PyTorch as the backend in Settings, which reads up to "
                  f"{prompts.MAX_WINDOWS * prompts.CHUNK_TOKENS} tokens") if self.shape else ""
        return prompts.length_warnings(self.tokenizers[0], prompt, negative_prompt, self.max_windows, advice,
                                       steps=steps)

    def conditioning(self, runs: list[tuple[str, str]], batch_size: int, guided: bool, width: int,
                     height: int) -> list[dict[str, np.ndarray]]:
        """The UNet's inputs besides the sample and timestep, negative half first when guided, for each (prompt,
        negative prompt) of `runs`: the texts of an edited prompt's runs of steps (`prompt_editing`), padded to
        one length together, as the torch backend pads them."""
        sdxl = self.architecture == Architecture.SDXL
        zero = [sdxl and not negative and self.force_zeros_for_empty_prompt for _, negative in runs]
        texts = [text for (prompt, negative), zero_negative in zip(runs, zero)
                 for text in [prompt, *([negative] if guided and not zero_negative else [])]]
        encoded = iter(self.encode(texts))
        all_feeds = []
        for zero_negative in zero:
            parts = [next(encoded)]
            if guided:
                embeds, pooled = parts[0]
                parts.insert(0, (np.zeros_like(embeds), np.zeros_like(pooled)) if zero_negative else next(encoded))
            feeds = {"encoder_hidden_states": np.concatenate([np.repeat(e, batch_size, axis=0) for e, _ in parts])}
            if sdxl:
                feeds["text_embeds"] = np.concatenate([np.repeat(p, batch_size, axis=0) for _, p in parts])
                time_ids = np.array([[height, width, 0, 0, height, width]], np.float32)
                feeds["time_ids"] = np.repeat(time_ids, len(parts) * batch_size, axis=0)
            all_feeds.append(feeds)
        return all_feeds

    # -- images --------------------------------------------------------------------------------

    def generate(self, prompt: str, seed: int, steps: int, scheduler: str, width: int, height: int,
                 batch_size: int = 1, guidance: float = 0.0, negative_prompt: str = "", eta: float | None = None,
                 timesteps: tuple[int, ...] | None = None, on_step: StepCallback | None = None,
                 decoder: Callable[[np.ndarray], np.ndarray] | None = None, start: Start | None = None) -> list[np.ndarray]:
        """`batch_size` images (H × W × 3 uint8) of `prompt`; image k from seed + k."""
        latents = self.denoise(prompt, seed, steps, scheduler, width, height, batch_size, guidance, negative_prompt,
                               eta, timesteps, on_step, start)
        return [self.decode(latents[k:k + 1], decoder) for k in range(batch_size)]

    def denoise(self, prompt: str, seed: int, steps: int, scheduler: str, width: int, height: int,
                batch_size: int = 1, guidance: float = 0.0, negative_prompt: str = "", eta: float | None = None,
                timesteps: tuple[int, ...] | None = None, on_step: StepCallback | None = None,
                start: Start | None = None, variation: tuple[tuple[int, ...], float] | None = None) -> np.ndarray:
        """The denoised latents of the batch: from noise, or from `start`'s image. With a `variation` (each image's
        variation seed, the strength), every image is of `seed`, its starting noise varied (engine/variation.py)."""
        guided = guidance > 1
        runs = prompt_editing.runs([prompt, negative_prompt if guided else ""], len(timesteps) if timesteps else steps)
        ends = [end for end, _ in runs]
        run_feeds = self.conditioning([(texts[0], texts[1]) for _, texts in runs], batch_size, guided, width, height)
        stepper = build(scheduler, self.scheduler_config)
        if timesteps is not None:
            stepper.set_timesteps(timesteps=list(timesteps))
        else:
            stepper.set_timesteps(steps)
        if self.unet_channels == INPAINTING_CHANNELS and (start is None or start.mask is None):
            # an inpainting model runs every request as inpainting, masked all over (as engine/modes.py says)
            image = start.image if start is not None else np.full((height, width, 3), 128, np.uint8)
            start = Start(image, start.strength if start is not None else 1.0, np.full(image.shape[:2], 255, np.uint8))
        generators = [TorchCpuGenerator(seed if variation else seed + k) for k in range(batch_size)]
        shape = (batch_size, 4, height // self.vae_scale, width // self.vae_scale)
        schedule = stepper.timesteps.tolist()
        vary = _varied(variation)
        if start is None:
            latents = vary(batch_randn(generators, shape)) * np.float32(stepper.init_noise_sigma)
            image_start = None
        else:
            schedule = schedule[len(schedule) - min(int(len(schedule) * start.strength), len(schedule)):]
            if not schedule:
                raise InputError(f"Strength {start.strength:g} leaves none of the {len(stepper.timesteps)} steps to run.")
            stepper.set_begin_index(len(stepper.timesteps) - len(schedule))
            image_start = _ImageStart(self, start, generators, shape, stepper, schedule[0], vary)
            latents = image_start.latents
        extra = {"eta": eta} if eta is not None else {}
        total = len(schedule)
        for index, t in enumerate(schedule):
            sample = np.concatenate([latents, latents]) if guided else latents
            if image_start is not None and image_start.beside is not None:
                beside = np.concatenate([image_start.beside] * 2) if guided else image_start.beside
                sample = np.concatenate([sample, beside], axis=1)
            feeds = run_feeds[prompt_editing.run_of(ends, index)]
            inputs = {"sample": sample, "timestep": np.array(t, np.float32), **feeds}
            predicted = self.unet.run(["out_sample"], {k: v for k, v in inputs.items() if k in self.unet_inputs})[0]
            if guided:
                unconditional, conditional = np.split(predicted, 2)
                predicted = unconditional + np.float32(guidance) * (conditional - unconditional)
            latents = stepper.step(predicted, t, latents, generators=generators, **extra).astype(np.float32)
            if image_start is not None:
                latents = image_start.keep_unmasked(latents, schedule[index + 1] if index + 1 < total else None)
            if on_step is not None:
                on_step(index + 1, total, latents)
        return latents

    def vae_encoder(self):
        if self._vae_encoder is None:
            self._vae_encoder = self._session("vae_encoder")
        return self._vae_encoder

    def encode_image(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The VAE encoder's distribution of a 1 × 3 × H × W image: (mean, std), as diffusers'
        `DiagonalGaussianDistribution` makes them (log-variance clamped to [-30, 20])."""
        parameters = self.vae_encoder().run(["latent_parameters"], {"sample": pixels})[0]
        mean, log_variance = np.split(parameters, 2, axis=1)
        return mean, np.exp(np.float32(0.5) * np.clip(log_variance, -30.0, 20.0))

    def scale_latents(self, latents: np.ndarray, with_mean: bool) -> np.ndarray:
        """Encoder samples to UNet latents: × scaling factor; for SDXL image to image, (x - mean) × factor / std
        where the VAE has latents mean and std."""
        if with_mean and self.latents_mean is not None and self.latents_std is not None:
            mean = np.array(self.latents_mean, np.float32).reshape(1, -1, 1, 1)
            std = np.array(self.latents_std, np.float32).reshape(1, -1, 1, 1)
            return (latents - mean) * np.float32(self.scaling_factor) / std
        return np.float32(self.scaling_factor) * latents

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


def _varied(variation: tuple[tuple[int, ...], float] | None) -> Callable[[np.ndarray], np.ndarray]:
    """What the starting noise of a batch becomes: with a variation, each image's turned towards its variation
    seed's (engine/variation.py); without one, the noise as drawn."""
    if variation is None:
        return lambda noise: noise
    seeds, strength = variation
    return lambda noise: slerp(strength, noise, batch_randn([TorchCpuGenerator(seed) for seed in seeds], noise.shape))


class _ImageStart:
    """The starting latents of image to image and inpainting, and inpainting's work after each step."""

    def __init__(self, pipeline: OnnxPipeline, start: Start, generators: list[TorchCpuGenerator], shape: tuple,
                 stepper: NumpyScheduler, first: int, vary: Callable[[np.ndarray], np.ndarray]) -> None:
        height, width = start.image.shape[:2]
        if (width, height) != (shape[3] * pipeline.vae_scale, shape[2] * pipeline.vae_scale):
            raise InputError(f"The init image is {width} × {height}, not the {shape[3] * pipeline.vae_scale} × "
                             f"{shape[2] * pipeline.vae_scale} asked.")
        self.stepper = stepper
        self.beside = None  # a 9-channel UNet's mask and masked-image latents
        self.mask = None
        pixels = to_pixels(start.image)
        mean, std = pipeline.encode_image(pixels)
        one = (1, *shape[1:])
        if start.mask is None:  # image to image: one sample per image, each from its own generator
            samples = np.concatenate([mean + std * generator.randn(one) for generator in generators])
            init = pipeline.scale_latents(samples, with_mean=pipeline.architecture == Architecture.SDXL)
            self.latents = stepper.add_noise(init, vary(batch_randn(generators, shape)), first)
            return
        if pipeline.unet_channels == INPAINTING_CHANNELS and start.strength == 1.0:
            self.init = None  # diffusers samples no init latents for pure noise and a 9-channel UNet, which needs none
        else:
            self.init = np.repeat(pipeline.scale_latents(mean + std * generators[0].randn(one), with_mean=False),
                                  shape[0], axis=0)
        self.noise = vary(batch_randn(generators, shape))  # also what the kept part is noised with after each step
        if start.strength == 1.0:  # pure noise (an inpainting model's image from the prompt)
            self.latents = self.noise * np.float32(stepper.init_noise_sigma)
        else:
            self.latents = stepper.add_noise(self.init, self.noise, first)
        binary = (start.mask.astype(np.float32) / np.float32(255.0) >= 0.5).astype(np.float32)
        mask = np.repeat(binary[None, None, ::pipeline.vae_scale, ::pipeline.vae_scale], shape[0], axis=0)
        unet_channels = pipeline.unet_channels
        if unet_channels == 9:
            masked_mean, masked_std = pipeline.encode_image(pixels * (binary < 0.5))
            masked = pipeline.scale_latents(masked_mean + masked_std * generators[0].randn(one), with_mean=False)
            self.beside = np.concatenate([mask, np.repeat(masked, shape[0], axis=0)], axis=1)
        elif unet_channels == 4:
            generators[0].randn(one)  # diffusers samples the masked image's latents from it here, unused
            self.mask = mask
        else:
            raise InputError(f"The UNet takes {unet_channels} input channels; inpainting needs 4 (a base model) or 9 "
                             "(an inpainting model).")

    def keep_unmasked(self, latents: np.ndarray, following: int | None) -> np.ndarray:
        """After a step: a 4-channel UNet's latents keep the init latents (noised to the `following` timestep)
        where the mask is black."""
        if self.mask is None:
            return latents
        init = self.init if following is None else self.stepper.add_noise(self.init, self.noise, following)
        return ((1 - self.mask) * init + self.mask * latents).astype(np.float32)
