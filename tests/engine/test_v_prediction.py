"""V-prediction checkpoints (NoobAI-XL V-Pred and its merges): they mark themselves with an empty `v_pred`
tensor, and zero terminal SNR with `ztsnr`, as ComfyUI and reForge read them. Loaded with an epsilon model's
config they give broken images; the engine runs them as their card's diffusers code does (a v-prediction
Euler scheduler with zero terminal SNR)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import ldm_format
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import base_prediction, inspect_file
from hypersd_desktop.engine.planning import plan
from hypersd_desktop.engine.torch_engine import TorchEngine


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny SDXL model as an epsilon checkpoint, and the same weights marked v-prediction (with and without
    zero terminal SNR); "config" is its diffusers folder, the config single-file loading takes."""
    from diffusers import StableDiffusionXLPipeline

    import tiny_models

    folder = tmp_path_factory.mktemp("vpred")
    config = tiny_models.save_pipeline("sdxl", folder / "config", seed=5, text_width_2=48)  # encoders told apart
    plain = ldm_format.save_single_file(StableDiffusionXLPipeline.from_pretrained(config), folder / "eps.safetensors")
    tensors = load_file(str(plain))
    save_file({**tensors, "v_pred": torch.tensor([]), "ztsnr": torch.tensor([])}, str(folder / "vpred-ztsnr.safetensors"))
    save_file({**tensors, "v_pred": torch.tensor([])}, str(folder / "vpred.safetensors"))
    return {"eps": plain, "vpred-ztsnr": folder / "vpred-ztsnr.safetensors", "vpred": folder / "vpred.safetensors",
            "config": config}


def test_the_marks_are_read_from_the_header(checkpoints, tmp_path):
    assert (inspect_file(checkpoints["eps"]).prediction, base_prediction(checkpoints["eps"])) == (None, (None, False))
    info = inspect_file(checkpoints["vpred-ztsnr"])
    assert (info.kind, info.architecture, info.prediction, info.zero_snr) == ("checkpoint", "sdxl", "v_prediction", True)
    assert base_prediction(checkpoints["vpred"]) == ("v_prediction", False)
    folder = tmp_path / "vpred-folder"  # a diffusers folder says it in its scheduler config
    (folder / "scheduler").mkdir(parents=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "EulerDiscreteScheduler", "prediction_type": "v_prediction", "rescale_betas_zero_snr": True}))
    assert base_prediction(folder) == ("v_prediction", True)
    assert base_prediction(tmp_path / "missing.safetensors") == (None, False)


def test_a_v_prediction_checkpoint_runs_as_its_card_runs_it(checkpoints):
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    request = GenerationRequest(prompt="a lighthouse", base_model=str(checkpoints["vpred-ztsnr"]), steps=4,
                                guidance=3.0, negative_prompt="blurry", width=64, height=64, seed=9, device="cpu",
                                base_config=str(checkpoints["config"]))
    engine = TorchEngine()
    ours = np.asarray(engine.generate(request)[0].image, dtype=np.int16)
    assert engine._loaded.pipe.scheduler.config.prediction_type == "v_prediction"

    pipe = StableDiffusionXLPipeline.from_single_file(str(checkpoints["vpred-ztsnr"]), config=str(checkpoints["config"]),
                                                      local_files_only=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, prediction_type="v_prediction",
                                                        rescale_betas_zero_snr=True)
    theirs = pipe("a lighthouse", negative_prompt="blurry", num_inference_steps=4, guidance_scale=3.0, width=64,
                  height=64, generator=[torch.Generator("cpu").manual_seed(9)], output_type="np").images[0]
    assert np.abs(ours - np.round(theirs * 255).astype(np.int16)).max() <= 1

    as_epsilon = np.asarray(engine.generate(request.replace(base_model=str(checkpoints["eps"])))[0].image, np.int16)
    assert np.abs(ours - as_epsilon).max() > 10  # the same weights read as noise prediction: another image
    without_zero_snr = engine.generate(request.replace(base_model=str(checkpoints["vpred"])))[0]
    assert np.abs(ours - np.asarray(without_zero_snr.image, np.int16)).max() > 0


def test_a_hyper_sd_file_on_a_v_prediction_model_is_warned_about_and_onnx_declines_it(checkpoints, hyper_lora):
    from hypersd_desktop.engine.onnx.backend import declines

    lora = LoraSpec(str(hyper_lora("Hyper-SDXL-2steps-lora")))
    request = GenerationRequest(prompt="a fox", base_model=str(checkpoints["vpred"]), loras=(lora,), width=64, height=64)
    (warning,) = [w for w in plan(request, "sdxl").warnings if "v-prediction" in w]
    assert "vpred.safetensors is a v-prediction model" in warning and "Generate without the Hyper-SD file" in warning
    assert not any("v-prediction" in w for w in plan(request.replace(base_model=str(checkpoints["eps"])), "sdxl").warnings)
    assert "v-prediction" in declines(request)
    assert declines(request.replace(base_model=str(checkpoints["eps"]))) is None


def test_an_sd15_v_prediction_checkpoint_runs_as_diffusers_runs_it(tiny_sd15, tmp_path):
    """SD1.5 fine-tunes trained on v (and zero terminal SNR) carry the same marks; their base scheduler is PNDM."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    plain = ldm_format.save_single_file(StableDiffusionPipeline.from_pretrained(tiny_sd15), tmp_path / "eps.safetensors")
    marked = tmp_path / "sd15-vpred.safetensors"
    save_file({**load_file(str(plain)), "v_pred": torch.tensor([]), "ztsnr": torch.tensor([])}, str(marked))
    assert inspect_file(marked).architecture == "sd15" and base_prediction(marked) == ("v_prediction", True)
    request = GenerationRequest(prompt="a lighthouse", base_model=str(marked), base_config=str(tiny_sd15), steps=4,
                                guidance=3.0, width=64, height=64, seed=9, device="cpu")
    ours = np.asarray(TorchEngine().generate(request)[0].image, dtype=np.int16)
    pipe = StableDiffusionPipeline.from_single_file(str(marked), config=str(tiny_sd15), local_files_only=True,
                                                    safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, prediction_type="v_prediction",
                                                        rescale_betas_zero_snr=True)
    theirs = pipe("a lighthouse", num_inference_steps=4, guidance_scale=3.0, width=64, height=64,
                  generator=[torch.Generator("cpu").manual_seed(9)], output_type="np").images[0]
    assert np.abs(ours - np.round(theirs * 255).astype(np.int16)).max() <= 1
    as_epsilon = np.asarray(TorchEngine().generate(request.replace(base_model=str(plain)))[0].image, np.int16)
    assert np.abs(ours - as_epsilon).max() > 10
