"""Text encoders wait in RAM on a GPU too small for the whole model and a run (SDXL on an 8 GB card): the
decision from the weights and the free memory, and images equal to the unparked engine's, with a LoRA on the
text encoders fused after parking. The moves themselves need a GPU: the `gpu` test makes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline

import tiny_models
from hypersd_desktop.engine import GenerationRequest, LoraSpec, notices, parking
from hypersd_desktop.engine.torch_engine import TorchEngine


def pixels(results) -> np.ndarray:
    return np.stack([np.asarray(result.image, dtype=np.int16) for result in results])


@pytest.fixture
def with_text_lora(tiny_sdxl, tmp_path):
    """A LoRA on the UNet and both text encoders, so that parked encoders take a fuse in place."""
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    path = tmp_path / "style.safetensors"
    tiny_models.kohya_lora(pipe.unet, path, text_encoder=pipe.text_encoder, te_prefix="lora_te1")
    return path


def request_for(tiny_sdxl, lora, device="cpu", dtype="fp32") -> GenerationRequest:
    return GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sdxl), seed=3, width=64, height=64, steps=2,
                             device=device, dtype=dtype, loras=(LoraSpec(str(lora)),))


def test_encoders_are_parked_only_where_a_gpu_lacks_room_for_every_weight_and_a_run(tiny_sdxl):
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    weights = sum(parking.module_bytes(module) for module in
                  (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2))
    assert parking.module_bytes(pipe.text_encoder_2) > 0
    assert parking.should_park(pipe, "cuda", weights + parking.RUN_ROOM - 1)
    assert not parking.should_park(pipe, "cuda", weights + parking.RUN_ROOM)
    assert not parking.should_park(pipe, "cuda", None)  # unknown: as before
    assert not parking.should_park(pipe, "cpu", 0) and not parking.should_park(pipe, "mps", 0)  # RAM is the device


def test_a_parked_engine_makes_the_unparked_images_and_says_why(tiny_sdxl, with_text_lora, monkeypatch):
    request = request_for(tiny_sdxl, with_text_lora)
    plain = TorchEngine().generate(request)
    heard = []
    stop = notices.listen(lambda text, busy: heard.append(text))
    monkeypatch.setattr(parking, "should_park", lambda pipe, device, free: True)
    try:
        engine = TorchEngine()
        parked = engine.generate(request)
    finally:
        stop()
    assert parking.parked(engine._loaded.pipe)
    assert np.abs(pixels(parked) - pixels(plain)).max() <= 1
    assert any("the text encoders wait in RAM" in text for text in heard)
    # Another strength unfuses and fuses again, in place, on the parked encoders.
    half = request.replace(loras=(LoraSpec(str(with_text_lora), 0.5),))
    assert np.abs(pixels(engine.generate(half)) - pixels(TorchEngine().generate(half))).max() <= 1
    parking.unpark(engine._loaded.pipe)
    assert not parking.parked(engine._loaded.pipe)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_parked_encoders_come_to_the_gpu_only_to_read_a_prompt(tiny_sdxl, with_text_lora, monkeypatch):
    request = request_for(tiny_sdxl, with_text_lora, "cuda", "fp16")
    plain = TorchEngine().generate(request)
    monkeypatch.setattr(parking, "RUN_ROOM", 2**50)  # no GPU has room for that
    engine = TorchEngine()
    parked = engine.generate(request)
    pipe = engine._loaded.pipe
    assert parking.parked(pipe)
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        weight = next(encoder.parameters())
        assert weight.device.type == "cpu" and not weight.is_inference()
    assert pipe.unet.device.type == "cuda"
    assert np.abs(pixels(parked) - pixels(plain)).max() <= 1
    half = request.replace(loras=(LoraSpec(str(with_text_lora), 0.5),))
    assert np.abs(pixels(engine.generate(half)) - pixels(TorchEngine().generate(half))).max() <= 1
