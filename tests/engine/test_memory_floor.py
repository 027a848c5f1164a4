"""A request the device cannot hold is refused before any work, with what would make it fit."""

from __future__ import annotations

import logging

import numpy as np
import psutil
import pytest
import torch

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine import GenerationRequest, LoraSpec, devices
from hypersd_desktop.engine.planning import Decode, Plan, check_fits, choose_decode, decode_memory, working_memory_floor
from hypersd_desktop.engine.torch_engine import TorchEngine

GIB = 2**30


def settings(width: int, height: int, guidance: float = 0.0, architecture: str = "sdxl") -> Plan:
    return Plan(recipe=None, architecture=architecture, scheduler="ddim", steps=1, guidance=guidance, eta=0.0,
                timesteps=None, width=width, height=height, warnings=())


def test_the_floor_of_a_large_image_is_one_tile_of_the_decode_plus_the_image():
    # 128 channels of a 512² tile in fp16, input and output, and the 4096² image in fp32.
    floor = working_memory_floor(settings(4096, 4096), 1, "fp16", "fp16")
    assert floor == 2 * 128 * 512 * 512 * 2 + 3 * 4096 * 4096 * 4
    assert floor < decode_memory(4096, 4096, "fp16", tiled=True) < decode_memory(4096, 4096, "fp16") / 10


def test_a_batch_with_guidance_counts_every_copy_in_the_unet():
    guided = working_memory_floor(settings(1024, 1024, guidance=5.0), 64, "fp16", "fp16")
    plain = working_memory_floor(settings(1024, 1024, guidance=1.0), 64, "fp16", "fp16")
    assert guided == 2 * 320 * 128 * 128 * (64 * 2) * 2  # 2.5 GiB: the UNet's first block, not the decode
    assert plain == guided // 2


def test_the_refusal_says_what_is_needed_what_is_free_and_what_to_change():
    with pytest.raises(InputError) as caught:
        check_fits(settings(8192, 8192), 2, "fp16", "fp16", free=GIB, device="cuda")
    message = str(caught.value)
    assert "needs at least 2.5 GiB of free CUDA memory" in message and "1.0 GiB is free" in message
    assert "make the batch smaller, or make the image smaller" in message
    check_fits(settings(8192, 8192), 1, "fp16", "fp16", free=2 * GIB, device="cuda")
    check_fits(settings(8192, 8192), 2, "fp16", "fp16", free=None, device="mps")


def test_sdxl_at_1024_decodes_in_tiles_on_an_8_gb_card_and_whole_on_a_larger_one():
    whole = decode_memory(1024, 1024, "fp16")
    assert 2.4 * GIB < whole < 2.6 * GIB  # the SDXL decode at 1024² in fp16, from the measured bytes per pixel
    # An 8 GB card: about 7.6 GiB usable, 6.5 GiB of SDXL weights in fp16, the UNet's working memory.
    assert choose_decode(1024, 1024, "fp16", free=int(0.8 * GIB)) is Decode.TILES
    assert decode_memory(1024, 1024, "fp16", tiled=True) < 0.8 * GIB
    assert choose_decode(1024, 1024, "fp16", free=4 * GIB) is Decode.WHOLE_EAGER  # no room to record a graph too
    assert choose_decode(1024, 1024, "fp16", free=16 * GIB) is Decode.WHOLE
    assert choose_decode(1024, 1024, "fp32", free=4 * GIB) is Decode.TILES
    assert choose_decode(1024, 1024, "fp16", free=None) is Decode.WHOLE  # unknown (MPS without the figure)


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
    monkeypatch.setattr(devices, "free_memory", lambda device: GIB // 4)  # a machine with 256 MiB left
    with pytest.raises(InputError, match="needs at least 0.3 GiB of free memory"):
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
    TorchEngine._memory_options(SimpleNamespace(pipe=pipe, memory_options=None),
                                GenerationRequest(prompt="", base_model="m", vae_tiling=True))
    assert vae.use_tiling and vae.tile_sample_min_size == 512 and 1024 // 8 > vae.tile_latent_min_size == 64


@pytest.fixture
def request_128(tiny_sd15, hyper_lora):
    # 128² is two tiles of the tiny VAE (its sample size is 64) each way.
    return GenerationRequest(
        prompt="a cat", base_model=str(tiny_sd15), loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),),
        steps=1, seed=3, width=128, height=128, device="cpu",
    )


def pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


def test_short_of_memory_for_a_whole_decode_the_engine_decodes_in_tiles(request_128, monkeypatch, caplog):
    engine = TorchEngine()
    whole = pixels(engine.generate(request_128)[0])
    tiled = pixels(engine.generate(request_128.replace(vae_tiling=True))[0])
    assert np.abs(whole - tiled).max() > 0  # tiles blend at their seams: the two decodes can be told apart
    short = int(decode_memory(128, 128, "fp32") * 0.9)
    monkeypatch.setattr(devices, "free_memory", lambda device: short)
    caplog.set_level(logging.INFO, logger="hypersd_desktop.engine.torch_engine")
    assert np.array_equal(pixels(engine.generate(request_128)[0]), tiled)
    assert "decoding 128 × 128 in tiles: cpu memory is short" in caplog.text
    assert not engine._loaded.pipe.vae.use_tiling  # the next image with memory to spare decodes whole again
    monkeypatch.undo()
    assert np.array_equal(pixels(engine.generate(request_128)[0]), whole)


def test_a_whole_decode_that_runs_out_of_memory_is_done_again_in_tiles(request_128, monkeypatch, caplog):
    engine = TorchEngine()
    tiled = pixels(engine.generate(request_128.replace(vae_tiling=True))[0])
    decoder = engine._loaded.pipe.vae.decoder
    whole_decodes = []

    def small_device(latents, *args, **kwargs):  # stands in for a GPU that holds a tile's decode, not the image's
        if latents.shape[-1] > engine._loaded.pipe.vae.tile_latent_min_size:
            whole_decodes.append(latents.shape)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return type(decoder).forward(decoder, latents, *args, **kwargs)

    monkeypatch.setattr(decoder, "forward", small_device)
    caplog.set_level(logging.WARNING, logger="hypersd_desktop.engine.torch_engine")
    result = engine.generate(request_128)[0]
    assert whole_decodes == [(1, 4, 64, 64)]  # the tiny VAE scales by 2
    assert np.array_equal(pixels(result), tiled)
    assert "the VAE decode of 128 × 128 ran out of cpu memory; decoding in tiles" in caplog.text
    assert engine.loaded_key is not None  # the model stays loaded: nothing but the decode was repeated
