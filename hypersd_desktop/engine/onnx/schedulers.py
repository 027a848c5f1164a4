"""The Hyper-SD recipes' schedulers in numpy, for the ONNX backend's torch-free runtime.

Each one is built from the base model's scheduler config, as the torch backend builds diffusers'
(`engine/schedulers.py`), and follows diffusers 0.39's `set_timesteps` and `step` for what the
recipes use: DDIM with trailing spacing (eta 0), TCD (eta, explicit timesteps) and LCM (the 1-step
UNet's [800]), epsilon prediction, float32 throughout. The noise that TCD and LCM add between
steps comes from the images' generators, continuing after the latents, as in torch.

Image-to-image and inpainting start part of the way into the schedule: `set_begin_index` (as the
diffusers pipelines' `get_timesteps` calls it) and `add_noise`, the forward process at a timestep.
"""

from __future__ import annotations

import numpy as np

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import Scheduler
from hypersd_desktop.engine.onnx.noise import TorchCpuGenerator, batch_randn

DEFAULTS = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
            "set_alpha_to_one": True, "prediction_type": "epsilon", "original_inference_steps": 50,
            "timestep_scaling": 10.0, "clip_sample": False, "thresholding": False}


def alphas_cumprod(config: dict) -> np.ndarray:
    n = config["num_train_timesteps"]
    if config.get("trained_betas") is not None:
        betas = np.asarray(config["trained_betas"], np.float32)
    elif config["beta_schedule"] == "scaled_linear":
        betas = np.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, n, dtype=np.float32) ** 2
    elif config["beta_schedule"] == "linear":
        betas = np.linspace(config["beta_start"], config["beta_end"], n, dtype=np.float32)
    else:
        raise InputError(f"The ONNX backend does not support the beta schedule {config['beta_schedule']!r}.")
    return np.cumprod((1.0 - betas).astype(np.float32), dtype=np.float32)


class NumpyScheduler:
    """What the denoising loop needs: `timesteps`, `init_noise_sigma`, `step`."""

    init_noise_sigma = 1.0

    def __init__(self, base_config: dict, **overrides) -> None:
        self.config = {**DEFAULTS, **{k: v for k, v in base_config.items() if not k.startswith("_")}, **overrides}
        if self.config["prediction_type"] != "epsilon" or self.config["clip_sample"] or self.config["thresholding"]:
            raise InputError("The ONNX backend runs epsilon-prediction models without sample clipping.")
        self.alphas_cumprod = alphas_cumprod(self.config)
        self.final_alpha_cumprod = np.float32(1.0) if self.config["set_alpha_to_one"] else self.alphas_cumprod[0]
        self.timesteps = np.zeros(0, np.int64)
        self.step_index = 0

    def set_begin_index(self, index: int) -> None:
        """Start stepping at `timesteps[index]` (image-to-image's strength slice)."""
        self.step_index = index

    def add_noise(self, original: np.ndarray, noise: np.ndarray, timestep: int) -> np.ndarray:
        """`original` noised to `timestep`, as diffusers' schedulers do it in float32."""
        alpha_t = self.alphas_cumprod[timestep]
        return (np.float32(alpha_t ** 0.5) * original + np.float32((1 - alpha_t) ** 0.5) * noise).astype(np.float32)

    def alpha(self, timestep: int) -> np.float32:
        return self.alphas_cumprod[timestep] if timestep >= 0 else self.final_alpha_cumprod

    def original_sample(self, model_output: np.ndarray, timestep: int, sample: np.ndarray) -> np.ndarray:
        alpha_t = self.alphas_cumprod[timestep]
        return (sample - np.sqrt(1 - alpha_t) * model_output) / np.sqrt(alpha_t)

    def distilled_timesteps(self, steps: int | None, timesteps: list[int] | None) -> np.ndarray:
        """TCD's and LCM's: `steps` evenly spaced in index over the `original_inference_steps` schedule, or
        explicit descending `timesteps`."""
        if timesteps is not None:
            if any(b >= a for a, b in zip(timesteps, timesteps[1:])):
                raise InputError("Explicit timesteps must be in descending order.")
            return np.asarray(timesteps, np.int64)
        original = self.config["original_inference_steps"]
        k = self.config["num_train_timesteps"] // original
        origin = (np.arange(1, original + 1) * k - 1)[::-1]
        if steps > original:
            raise InputError(f"{steps} steps exceed the {original} of the distilled schedule.")
        return origin[np.floor(np.linspace(0, len(origin), num=steps, endpoint=False)).astype(np.int64)]


class DDIMTrailing(NumpyScheduler):
    def set_timesteps(self, steps: int) -> None:
        ratio = self.config["num_train_timesteps"] / steps
        self.timesteps = np.round(np.arange(self.config["num_train_timesteps"], 0, -ratio)).astype(np.int64) - 1
        self.steps, self.step_index = steps, 0

    def step(self, model_output: np.ndarray, timestep: int, sample: np.ndarray, eta: float = 0.0, **_) -> np.ndarray:
        if eta:
            raise InputError("The ONNX backend's DDIM runs with eta 0, as the Hyper-SD recipes do.")
        previous = timestep - self.config["num_train_timesteps"] // self.steps
        alpha_prev = self.alpha(previous)
        original = self.original_sample(model_output, timestep, sample)
        self.step_index += 1
        return np.sqrt(alpha_prev) * original + np.sqrt(1 - alpha_prev) * model_output


class TCD(NumpyScheduler):
    def set_timesteps(self, steps: int | None = None, timesteps: list[int] | None = None) -> None:
        self.timesteps = self.distilled_timesteps(steps, timesteps)
        self.step_index = 0

    def step(self, model_output: np.ndarray, timestep: int, sample: np.ndarray, eta: float = 0.3,
             generators: list[TorchCpuGenerator] | None = None) -> np.ndarray:
        last = self.step_index == len(self.timesteps) - 1
        previous = 0 if last else int(self.timesteps[self.step_index + 1])
        timestep_s = int(np.floor((1 - eta) * previous))
        alpha_s = self.alphas_cumprod[timestep_s]
        original = self.original_sample(model_output, timestep, sample)
        noised = np.sqrt(alpha_s) * original + np.sqrt(1 - alpha_s) * model_output
        self.step_index += 1
        if eta <= 0 or last:
            return noised
        noise = batch_randn(generators, model_output.shape)
        alpha_prev = self.alpha(previous)
        return np.sqrt(alpha_prev / alpha_s) * noised + np.sqrt(1 - alpha_prev / alpha_s) * noise


class LCM(NumpyScheduler):
    def set_timesteps(self, steps: int | None = None, timesteps: list[int] | None = None) -> None:
        self.timesteps = self.distilled_timesteps(steps, timesteps)
        self.step_index = 0

    def step(self, model_output: np.ndarray, timestep: int, sample: np.ndarray,
             generators: list[TorchCpuGenerator] | None = None, **_) -> np.ndarray:
        last = self.step_index == len(self.timesteps) - 1
        previous = timestep if last else int(self.timesteps[self.step_index + 1])
        scaled = np.float32(timestep * self.config["timestep_scaling"])
        c_skip = np.float32(0.25) / (scaled**2 + np.float32(0.25))
        c_out = scaled / np.sqrt(scaled**2 + np.float32(0.25))
        denoised = c_out * self.original_sample(model_output, timestep, sample) + c_skip * sample
        self.step_index += 1
        if last:
            return denoised
        alpha_prev = self.alpha(previous)
        return np.sqrt(alpha_prev) * denoised + np.sqrt(1 - alpha_prev) * batch_randn(generators, model_output.shape)


SCHEDULERS = {Scheduler.DDIM_TRAILING: DDIMTrailing, Scheduler.TCD: TCD, Scheduler.LCM: LCM}


def build(name: str, base_config: dict) -> NumpyScheduler:
    if name not in SCHEDULERS:
        raise InputError(f"The ONNX backend has no {name} scheduler yet; use a Hyper-SD recipe (TCD, LCM or DDIM "
                         "trailing) or the torch backend.")
    return SCHEDULERS[name](base_config)
