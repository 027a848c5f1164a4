"""Engine behaviour: seeds across batches, cancellation, previews, caching, loading and warnings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypersd_desktop.core.errors import ArchitectureMismatchError, CancelledError, InputError
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.core.vocab import Architecture
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import inspect_file
from hypersd_desktop.engine.torch_engine import TorchEngine


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture
def request_sd15(tiny_sd15, hyper_lora):
    return GenerationRequest(
        prompt="a cat", base_model=str(tiny_sd15), loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),),
        steps=3, seed=40, width=64, height=64,
    )


def test_image_k_of_a_batch_equals_a_single_image_with_seed_plus_k(request_sd15):
    engine = TorchEngine()
    batch = engine.generate(request_sd15.replace(batch_size=3))
    single = engine.generate(request_sd15.replace(seed=42))[0]
    assert [r.seed for r in batch] == [40, 41, 42]
    assert np.abs(pixels(batch[2].image) - pixels(single.image)).max() <= 1
    assert np.abs(pixels(batch[0].image) - pixels(batch[1].image)).max() > 10


def test_cancel_mid_run_stops_before_decoding(request_sd15, monkeypatch):
    engine = TorchEngine()
    token = CancelToken()
    seen = []
    decoded = []
    monkeypatch.setattr(TorchEngine, "_decode", lambda self, *args: decoded.append(1))

    def on_progress(progress):
        seen.append(progress.step)
        if progress.step == 1:
            token.cancel()

    with pytest.raises(CancelledError):
        engine.generate(request_sd15.replace(steps=4), on_progress=on_progress, cancel=token)
    assert seen == [1]
    assert decoded == []


def test_progress_reports_every_step_with_latent_previews(request_sd15):
    events = []
    TorchEngine().generate(request_sd15.replace(steps=4, preview="latent"), on_progress=events.append)
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert all(e.total_steps == 4 for e in events)
    assert events[-1].preview.size == (32, 32)  # latent resolution of the tiny VAE (factor 2)


def test_taesd_previews_and_fast_decode(request_sd15, tmp_path):
    from diffusers import AutoencoderTiny

    taesd = tmp_path / "taesd"
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1)).save_pretrained(taesd)
    events = []
    request = request_sd15.replace(preview="taesd", decoder="taesd", taesd=str(taesd))
    (result,) = TorchEngine().generate(request, on_progress=events.append)
    assert events[-1].preview.size == result.image.size


def test_changing_prompt_or_seed_reuses_the_pipeline_and_new_loras_are_refused(request_sd15, hyper_lora):
    engine = TorchEngine()
    first = engine.generate(request_sd15)[0]
    pipe = engine._loaded.pipe
    engine.generate(request_sd15.replace(prompt="a dog", seed=7))
    assert engine._loaded.pipe is pipe

    other = hyper_lora("Hyper-SD15-2steps-lora")
    swapped = engine.generate(request_sd15.replace(loras=(LoraSpec(str(other)),), steps=2))[0]
    assert engine._loaded.pipe is pipe
    assert swapped.settings.recipe == "Hyper-SD15-2steps-lora"
    back = engine.generate(request_sd15)[0]
    assert np.abs(pixels(back.image) - pixels(first.image)).max() <= 1, "unfusing restored the base weights"


def test_single_file_checkpoint_gives_the_folders_image(tiny_sd15, tmp_path):
    from diffusers import StableDiffusionPipeline

    import ldm_format

    checkpoint = ldm_format.save_single_file(StableDiffusionPipeline.from_pretrained(tiny_sd15), tmp_path / "tiny.safetensors")
    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), steps=2, seed=3, width=64, height=64)
    from_folder = TorchEngine().generate(request)[0]
    from_file = TorchEngine().generate(request.replace(base_model=str(checkpoint), base_config=str(tiny_sd15)))[0]
    assert np.abs(pixels(from_folder.image) - pixels(from_file.image)).max() <= 1


def test_an_sd1_checkpoint_saved_before_transformers_put_clip_under_text_model_gives_the_folders_image(tiny_sd15,
                                                                                                      tmp_path):
    """Checkpoints of 2022 (NovelAI's, Anything V3 and the merges made of them) hold the text encoder as
    `cond_stage_model.transformer.embeddings.…`, without `text_model.`; A1111 renames these as it loads them."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file, save_file

    import ldm_format

    state = load_file(ldm_format.save_single_file(StableDiffusionPipeline.from_pretrained(tiny_sd15),
                                                  tmp_path / "new.safetensors"))
    old = tmp_path / "old-layout.safetensors"
    save_file({key.replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."): tensor
               for key, tensor in state.items() if not key.endswith("position_ids")}, old)
    assert not any(".text_model." in key for key in load_file(old))
    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), steps=2, seed=3, width=64, height=64)
    from_folder = TorchEngine().generate(request)[0]
    from_file = TorchEngine().generate(request.replace(base_model=str(old), base_config=str(tiny_sd15)))[0]
    assert np.abs(pixels(from_folder.image) - pixels(from_file.image)).max() <= 1


def test_an_fp8_checkpoint_loads_as_the_same_model(tiny_sd15, tmp_path):
    """Checkpoints shared in fp8 (float8_e4m3fn) to halve the download are read into the chosen precision."""
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file, save_file

    import ldm_format

    state = load_file(ldm_format.save_single_file(StableDiffusionPipeline.from_pretrained(tiny_sd15),
                                                  tmp_path / "fp32.safetensors"))
    fp8 = tmp_path / "fp8.safetensors"
    save_file({key: tensor.to(torch.float8_e4m3fn) if tensor.is_floating_point() else tensor
               for key, tensor in state.items()}, fp8)
    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), steps=2, seed=3, width=64, height=64)
    from_folder = pixels(TorchEngine().generate(request)[0].image)
    from_fp8 = pixels(TorchEngine().generate(request.replace(base_model=str(fp8), base_config=str(tiny_sd15)))[0].image)
    assert np.abs(from_folder - from_fp8).mean() < 6, "fp8 weights: the same model, rounded"


def test_sdxl_single_file_checkpoint_gives_the_folders_image(tmp_path):
    """SDXL as community checkpoints ship it: both text encoders in one file, the second in open_clip's layout,
    the weights in fp16."""
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import load_file, save_file

    import ldm_format
    import tiny_models

    folder = tiny_models.save_pipeline("sdxl", tmp_path / "sdxl", seed=4, text_width_2=48)
    checkpoint = ldm_format.save_single_file(StableDiffusionXLPipeline.from_pretrained(folder), tmp_path / "xl.safetensors")
    assert inspect_file(checkpoint).architecture == Architecture.SDXL
    request = GenerationRequest(prompt="a cat", base_model=str(folder), steps=2, seed=3, width=64, height=64)
    from_folder = pixels(TorchEngine().generate(request)[0].image)
    from_file = TorchEngine().generate(request.replace(base_model=str(checkpoint), base_config=str(folder)))[0]
    assert np.abs(from_folder - pixels(from_file.image)).max() <= 1
    half = tmp_path / "xl-fp16.safetensors"
    save_file({key: tensor.half() for key, tensor in load_file(checkpoint).items()}, half)
    from_half = TorchEngine().generate(request.replace(base_model=str(half), base_config=str(folder)))[0]
    assert np.abs(from_folder - pixels(from_half.image)).mean() < 2, "fp16 weights load as the same model"


def test_mismatch_warnings_say_what_to_change(tiny_sd15, hyper_lora):
    lora = LoraSpec(str(hyper_lora("Hyper-SD15-2steps-lora")))
    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), loras=(lora,), steps=8, guidance=7.0,
                                seed=1, width=64, height=64)
    (result,) = TorchEngine().generate(request)
    text = " ".join(result.warnings)
    assert "trained for 2 steps, not 8" in text and "set steps to 2" in text
    assert "set guidance to 0" in text


def test_lora_for_the_other_architecture_names_both(tiny_sd15, hyper_lora):
    request = GenerationRequest(prompt="x", base_model=str(tiny_sd15),
                                loras=(LoraSpec(str(hyper_lora("Hyper-SDXL-2steps-lora"))),), width=64, height=64)
    with pytest.raises(ArchitectureMismatchError, match="for SDXL; the base model is SD1.5"):
        TorchEngine().generate(request)


def test_explicit_timesteps_need_a_scheduler_that_takes_them(tiny_sd15, hyper_lora):
    request = GenerationRequest(prompt="x", base_model=str(tiny_sd15), width=64, height=64, timesteps=(999, 500),
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-2steps-lora"))),))
    with pytest.raises(InputError, match="takes no explicit timesteps"):
        TorchEngine().generate(request)


def test_a_lora_file_changed_after_fusing_reloads_the_base_model(request_sd15, hyper_lora, tmp_path):
    import shutil

    lora = tmp_path / "Hyper-SD15-1step-lora.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-1step-lora"), lora)
    request = request_sd15.replace(loras=(LoraSpec(str(lora)),))
    engine = TorchEngine()
    engine.generate(request)
    first_pipe = engine._loaded.pipe
    shutil.copy(hyper_lora("Hyper-SD15-4steps-lora"), lora)  # same name, other weights
    other = hyper_lora("Hyper-SD15-2steps-lora")
    swapped = engine.generate(request.replace(loras=(LoraSpec(str(other)),), steps=2))[0]
    assert engine._loaded.pipe is not first_pipe
    fresh = TorchEngine().generate(request.replace(loras=(LoraSpec(str(other)),), steps=2))[0]
    assert np.abs(pixels(swapped.image) - pixels(fresh.image)).max() <= 1


def test_running_out_of_memory_frees_the_pipeline_and_says_so(request_sd15, monkeypatch):
    from hypersd_desktop.core.errors import OutOfMemoryError

    engine = TorchEngine()
    engine.generate(request_sd15.replace(steps=1))
    assert engine.loaded_key is not None

    def out_of_memory(self, *args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    monkeypatch.setattr(TorchEngine, "_denoise", out_of_memory)
    with pytest.raises(OutOfMemoryError, match="The GPU ran out of memory. Try a smaller size or batch"):
        engine.generate(request_sd15.replace(steps=1))
    assert engine.loaded_key is None

    monkeypatch.undo()  # a part that said what to do (an upscaler in its smallest tiles): its words, models freed
    engine.generate(request_sd15.replace(steps=1))

    def upscaler_too_large(self, *args):
        raise OutOfMemoryError("The upscaler (DAT ×4) ran out of the GPU's memory even in tiles of 64 pixels.")

    monkeypatch.setattr(TorchEngine, "_denoise", upscaler_too_large)
    with pytest.raises(OutOfMemoryError, match=r"^The upscaler \(DAT ×4\) ran out"):
        engine.generate(request_sd15.replace(steps=1))
    assert engine.loaded_key is None


def test_the_decoded_image_becomes_8_bits_as_diffusers_makes_it():
    """The conversion runs where the image is (on the GPU, a quarter of the bytes cross); its pixels must be
    diffusers' postprocess's to the last bit, rounding halves included and values outside [-1, 1] clipped."""
    from diffusers.image_processor import VaeImageProcessor

    from hypersd_desktop.engine.torch_engine import to_pil

    generator = torch.Generator().manual_seed(0)
    decoded = torch.randn(1, 3, 40, 48, generator=generator) * 1.5
    halves = (torch.arange(256, dtype=torch.float32) + 0.5) / 255 * 2 - 1  # every k + ½ of the 8-bit scale
    decoded[0, 0, :8, :32] = halves.view(8, 32)
    for image in (decoded, decoded.half()):
        theirs = VaeImageProcessor().postprocess(image.float(), output_type="pil")[0]
        ours = to_pil(image)
        assert ours.mode == theirs.mode == "RGB" and ours.size == (48, 40)
        assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    grey = torch.rand(1, 1, 8, 8, generator=generator)
    theirs = VaeImageProcessor(do_normalize=False).postprocess(grey, output_type="pil")[0]
    assert np.array_equal(np.asarray(to_pil(grey, denormalize=False)), np.asarray(theirs))
