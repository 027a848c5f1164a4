"""The text encoders' calls: a prompt read before is not read again (and the image is the same), until the
encoders' weights change (a LoRA, an embedding); and on a GPU too small for the whole model and a run (SDXL on an
8 GB card) the encoders wait in RAM. The moves between RAM and the GPU need a GPU: the `gpu` test makes them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline
from safetensors.torch import save_file

import tiny_models
from hypersd_desktop.engine import GenerationRequest, LoraSpec, devices, notices, text_encoders
from hypersd_desktop.engine.torch_engine import TorchEngine





def pixels(results) -> np.ndarray:
    return np.stack([np.asarray(result.image, dtype=np.int16) for result in results])


def refused_alike(ours, theirs) -> None:
    """Images of one request, ours made with a LoRA subtracted and fused again at another weight (in float32, as the
    engine does), theirs with it fused once: alike to a level or two of a pixel, as rounding leaves them (which way
    a pixel rounds varies with the matrix products' rounding, which in a long test run depends on the memory the
    process holds); a prompt not read again at the new weight differs by tens of levels."""
    difference = np.abs(pixels(ours) - pixels(theirs)).max()
    assert difference <= 2, f"the images differ by up to {difference} levels"


def runs(engine) -> list[int]:
    return [text_encoders.calls_of(encoder).runs for encoder in text_encoders.encoders_of(engine._loaded.pipe)]


@pytest.fixture
def with_text_lora(tiny_sdxl, tmp_path):
    """A LoRA on the UNet and the first text encoder, so that a change of its weight changes what the encoder says."""
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    path = tmp_path / "style.safetensors"
    # alpha 32 at rank 4: a strong update, so that the prompt read at a stale weight moves pixels by tens of levels
    # (at alpha 2, by 2: as far as rounding moves them, `refused_alike`)
    tiny_models.kohya_lora(pipe.unet, path, alpha=32.0, text_encoder=pipe.text_encoder, te_prefix="lora_te1")
    return path


def request_for(tiny_sdxl, lora, device="cpu", dtype="fp32") -> GenerationRequest:
    return GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sdxl), seed=3, width=64, height=64, steps=2,
                             device=device, dtype=dtype, loras=(LoraSpec(str(lora)),))


def test_a_prompt_read_before_is_not_read_again_and_makes_the_same_image(tiny_sdxl, with_text_lora):
    request = request_for(tiny_sdxl, with_text_lora)
    engine = TorchEngine()
    first = engine.generate(request)
    assert runs(engine) == [1, 1]
    again = engine.generate(request.replace(seed=4))
    assert runs(engine) == [1, 1]  # both encoders answered from what they said before
    assert np.array_equal(pixels(again), pixels(TorchEngine().generate(request.replace(seed=4))))
    assert np.array_equal(pixels(engine.generate(request)), pixels(first))
    engine.generate(request.replace(prompt="a lighthouse at night"))
    assert runs(engine) == [2, 2]


def test_a_lora_on_the_text_encoder_makes_it_read_the_prompt_again(tiny_sdxl, with_text_lora, monkeypatch):
    request = request_for(tiny_sdxl, with_text_lora)
    half = request.replace(loras=(LoraSpec(str(with_text_lora), 0.5),))
    theirs = TorchEngine().generate(half)
    engine = TorchEngine()
    engine.generate(request)
    ours = engine.generate(half)  # unfused and fused again, in place
    assert runs(engine) == [2, 2]
    refused_alike(ours, theirs)
    # Outputs kept across the change would be wrong: here is the image they would make.
    monkeypatch.setattr(text_encoders, "forget", lambda pipe: None)
    stale = TorchEngine()
    stale.generate(request)
    assert np.abs(pixels(stale.generate(half)) - pixels(theirs)).max() > 10  # far more than rounding moves


def test_an_embedding_changed_on_disk_is_read_again(tiny_sd15, tmp_path):
    path = tmp_path / "style.safetensors"
    save_file({"emb_params": torch.randn(2, 32, generator=torch.Generator().manual_seed(1))}, str(path))
    request = GenerationRequest(prompt="a cat, style", base_model=str(tiny_sd15), steps=2, width=64, height=64, seed=6,
                                embeddings=(str(path),))
    engine = TorchEngine()
    before = engine.generate(request)
    save_file({"emb_params": torch.randn(2, 32, generator=torch.Generator().manual_seed(2))}, str(path))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    after = engine.generate(request)
    assert np.abs(pixels(after) - pixels(before)).max() > 0
    assert np.array_equal(pixels(after), pixels(TorchEngine().generate(request)))


def test_kept_outputs_are_copies_and_only_the_last_few_are_kept():
    encoder = torch.nn.Linear(3, 2)
    calls = text_encoders.EncoderCalls(encoder)
    ids = torch.tensor([[1.0, 2.0, 3.0]])
    out = calls(ids)
    out.add_(100)  # a caller changing what it was given
    assert torch.allclose(calls(ids), encoder(ids)) and calls.runs == 1
    assert torch.equal(calls(ids.clone()), calls(ids))  # the values count, not the tensor
    for k in range(text_encoders.KEEP + 1):
        calls(torch.tensor([[float(k), 0.0, 0.0]]))
    assert len(calls.outputs) == text_encoders.KEEP
    before = calls.runs
    calls(torch.tensor([[0.0, 0.0, 0.0]]))  # the oldest was dropped
    assert calls.runs == before + 1


def test_encoders_are_parked_only_where_a_gpu_lacks_room_for_every_weight_and_a_run(tiny_sdxl):
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    weights = sum(devices.module_bytes(module) for module in
                  (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2))
    assert devices.module_bytes(pipe.text_encoder_2) > 0
    assert text_encoders.should_park(pipe, "cuda", weights + text_encoders.RUN_ROOM - 1)
    assert not text_encoders.should_park(pipe, "cuda", weights + text_encoders.RUN_ROOM)
    assert not text_encoders.should_park(pipe, "cuda", None)  # unknown: as before
    assert not text_encoders.should_park(pipe, "cpu", 0) and not text_encoders.should_park(pipe, "mps", 0)


def test_a_parked_engine_makes_the_unparked_images_and_says_why(tiny_sdxl, with_text_lora, monkeypatch):
    request = request_for(tiny_sdxl, with_text_lora)
    plain = TorchEngine().generate(request)
    heard = []
    stop = notices.listen(lambda text, busy: heard.append(text))
    monkeypatch.setattr(text_encoders, "should_park", lambda pipe, device, free: True)
    try:
        engine = TorchEngine()
        parked = engine.generate(request)
    finally:
        stop()
    assert text_encoders.parked(engine._loaded.pipe)
    assert np.array_equal(pixels(parked), pixels(plain))
    assert any("the text encoders wait in RAM" in text for text in heard)
    half = request.replace(loras=(LoraSpec(str(with_text_lora), 0.5),))  # fused in place on the parked encoders
    refused_alike(engine.generate(half), TorchEngine().generate(half))
    text_encoders.uninstall(engine._loaded.pipe)
    assert not text_encoders.parked(engine._loaded.pipe)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_parked_encoders_come_to_the_gpu_only_to_read_a_new_prompt(tiny_sdxl, with_text_lora, monkeypatch):
    request = request_for(tiny_sdxl, with_text_lora, "cuda", "fp16")
    plain = TorchEngine().generate(request)
    monkeypatch.setattr(text_encoders, "RUN_ROOM", 2**50)  # no GPU has room for that
    engine = TorchEngine()
    parked = engine.generate(request)
    pipe = engine._loaded.pipe
    assert text_encoders.parked(pipe)
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        weight = next(encoder.parameters())
        assert weight.device.type == "cpu" and not weight.is_inference()
    assert pipe.unet.device.type == "cuda"
    assert np.abs(pixels(parked) - pixels(plain)).max() <= 1
    half = request.replace(loras=(LoraSpec(str(with_text_lora), 0.5),))
    assert np.abs(pixels(engine.generate(half)) - pixels(TorchEngine().generate(half))).max() <= 1
    engine.generate(half.replace(prompt="a lighthouse at night"))
    assert next(pipe.text_encoder_2.parameters()).device.type == "cpu"


def test_a_forward_already_on_the_instance_is_called_and_put_back():
    """accelerate's hooks, for one, replace a module's forward on the instance: the kept outputs wrap that."""
    encoder = torch.nn.Linear(3, 2)
    seen = []

    def hooked(x):
        seen.append(x)
        return torch.nn.Linear.forward(encoder, x)

    encoder.forward = hooked
    pipe = type("Pipe", (), {"text_encoder": encoder})()
    text_encoders.install(pipe)
    ids = torch.ones(1, 3)
    assert torch.equal(encoder(ids), encoder(ids)) and len(seen) == 1
    text_encoders.uninstall(pipe)
    assert encoder.forward is hooked
