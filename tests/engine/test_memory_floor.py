"""A request the device cannot hold is refused before any work, with what would make it fit."""

from __future__ import annotations

import psutil
import pytest

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine import GenerationRequest, LoraSpec, devices
from hypersd_desktop.engine.planning import Plan, check_fits, working_memory_floor
from hypersd_desktop.engine.torch_engine import TorchEngine

GIB = 2**30


def settings(width: int, height: int, guidance: float = 0.0, architecture: str = "sdxl") -> Plan:
    return Plan(recipe=None, architecture=architecture, scheduler="ddim", steps=1, guidance=guidance, eta=0.0,
                timesteps=None, width=width, height=height, warnings=())


def test_the_untiled_vae_decode_dominates_a_large_image():
    # 128 channels of 4096² in fp16, input and output: 8 GiB.
    assert working_memory_floor(settings(4096, 4096), 1, "fp16", "fp16", vae_tiling=False) == 8 * GIB


def test_vae_tiling_bounds_the_decode_to_one_tile_plus_the_image():
    untiled = working_memory_floor(settings(4096, 4096), 1, "fp16", "fp32", vae_tiling=False)
    tiled = working_memory_floor(settings(4096, 4096), 1, "fp16", "fp32", vae_tiling=True)
    assert tiled < untiled / 10


def test_a_batch_with_guidance_counts_every_copy_in_the_unet():
    guided = working_memory_floor(settings(1024, 1024, guidance=5.0), 64, "fp16", "fp16", vae_tiling=True)
    plain = working_memory_floor(settings(1024, 1024, guidance=1.0), 64, "fp16", "fp16", vae_tiling=True)
    assert guided == 2 * 320 * 128 * 128 * (64 * 2) * 2  # 2.5 GiB: the UNet's first block, not the decode
    assert plain == guided // 2


def test_the_refusal_says_what_is_needed_what_is_free_and_what_to_change():
    with pytest.raises(InputError) as caught:
        check_fits(settings(4096, 4096), 1, "fp16", "fp16", vae_tiling=False, free=6 * GIB, device="cuda")
    message = str(caught.value)
    assert "8.0 GiB of free CUDA memory" in message and "6.0 GiB is free" in message
    assert "turn on VAE tiling" in message and "batch" not in message
    check_fits(settings(4096, 4096), 1, "fp16", "fp16", vae_tiling=True, free=6 * GIB, device="cuda")
    check_fits(settings(4096, 4096), 1, "fp16", "fp16", vae_tiling=False, free=None, device="mps")


def test_free_memory_on_the_cpu_is_what_the_system_has_available():
    free = devices.free_memory("cpu")
    assert 0 < free <= psutil.virtual_memory().total


def test_the_engine_refuses_before_denoising_when_the_device_is_short(tiny_sd15, hyper_lora, monkeypatch):
    request = GenerationRequest(
        prompt="a cat", base_model=str(tiny_sd15), loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),),
        steps=1, seed=1, width=2048, height=2048, device="cpu",
    )
    denoised = []
    monkeypatch.setattr(TorchEngine, "_denoise", lambda self, *args: denoised.append(1))
    monkeypatch.setattr(devices, "free_memory", lambda device: GIB)  # a machine with 1 GiB left
    with pytest.raises(InputError, match="needs at least 4.0 GiB of free memory"):
        TorchEngine().generate(request)
    assert denoised == []


def test_vae_tiling_tiles_an_sdxl_image_at_sdxl_s_own_size():
    """diffusers tiles above the VAE's sample size, which is 1024 for SDXL's VAE: tiling on would do nothing at
    1024². The engine's 512-pixel tiles make it tile there (measured on this CPU: the decode's peak 3.77 GiB
    untiled, 1.05 GiB tiled, fp32)."""
    from types import SimpleNamespace

    import torch
    from diffusers import AutoencoderKL

    from hypersd_desktop.engine.loading import bundled_config

    with torch.device("meta"):
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(bundled_config("sdxl") / "vae"))
    assert vae.tile_latent_min_size == 1024 // 8  # diffusers' own: no tile at 1024²
    pipe = SimpleNamespace(vae=vae, vae_scale_factor=8, disable_attention_slicing=lambda: None)
    TorchEngine._memory_options(pipe, GenerationRequest(prompt="", base_model="m", vae_tiling=True))
    assert vae.use_tiling and vae.tile_sample_min_size == 512 and 1024 // 8 > vae.tile_latent_min_size == 64
