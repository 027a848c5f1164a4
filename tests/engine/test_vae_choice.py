"""Checkpoints shared without a VAE, and a VAE chosen instead of the model's own."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.core.vocab import Architecture, WeightsKind
from hypersd_desktop.engine import GenerationRequest
from hypersd_desktop.engine.inspect import base_has_vae, inspect_file
from hypersd_desktop.engine.torch_engine import TorchEngine

VAE_PREFIX = "first_stage_model."


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _pipeline_class(architecture: str):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if architecture == Architecture.SDXL else StableDiffusionPipeline


@pytest.fixture(scope="module")
def split_checkpoints(tmp_path_factory, tiny_sd15):
    """Per architecture: its diffusers folder, and its checkpoint cut in two as such models are shared: the
    checkpoint without the VAE, and the VAE as a file of its own in the original key names."""
    import ldm_format
    import tiny_models

    root = tmp_path_factory.mktemp("split")
    folders = {Architecture.SD15: tiny_sd15,  # SDXL's second text encoder wider than the first, as in the real one
               Architecture.SDXL: tiny_models.save_pipeline("sdxl", root / "sdxl", seed=4, text_width_2=48)}
    made = {}
    for architecture, folder in folders.items():
        whole = ldm_format.save_single_file(_pipeline_class(architecture).from_pretrained(folder),
                                            root / f"{architecture}-whole.safetensors")
        state = load_file(whole)
        save_file({k: t for k, t in state.items() if not k.startswith(VAE_PREFIX)}, root / f"{architecture}-novae.safetensors")
        save_file({k[len(VAE_PREFIX):]: t for k, t in state.items() if k.startswith(VAE_PREFIX)},
                  root / f"{architecture}-vae.safetensors")
        made[architecture] = (folder, root / f"{architecture}-novae.safetensors", root / f"{architecture}-vae.safetensors")
    return made


@pytest.mark.parametrize("architecture", [Architecture.SD15, Architecture.SDXL])
def test_a_checkpoint_without_a_vae_runs_with_the_vae_named_and_gives_the_whole_models_image(split_checkpoints,
                                                                                            architecture):
    folder, checkpoint, vae = split_checkpoints[architecture]
    assert inspect_file(checkpoint).kind == WeightsKind.CHECKPOINT and not base_has_vae(checkpoint)
    assert inspect_file(vae).kind == WeightsKind.VAE
    request = GenerationRequest(prompt="a cat", base_model=str(folder), steps=2, seed=3, width=64, height=64)
    whole = pixels(TorchEngine().generate(request)[0].image)
    split = TorchEngine().generate(request.replace(base_model=str(checkpoint), base_config=str(folder), vae=str(vae)))
    assert np.abs(whole - pixels(split[0].image)).max() <= 1


def test_a_checkpoint_without_a_vae_and_none_named_says_what_to_do(split_checkpoints):
    folder, checkpoint, _ = split_checkpoints[Architecture.SD15]
    request = GenerationRequest(prompt="a cat", base_model=str(checkpoint), base_config=str(folder), steps=2,
                                width=64, height=64)
    with pytest.raises(InputError) as error:
        TorchEngine().generate(request)
    message = str(error.value)
    assert "sd15-novae.safetensors has no VAE inside it" in message
    assert "Choose one in the VAE list" in message and '"SD1.5 VAE (ft-MSE)" from the Models tab' in message
    assert "--vae names one: a file or an installed VAE" in message


def test_a_vae_named_replaces_the_models_own(split_checkpoints, tmp_path):
    """The VAE named decodes the image, not the one inside the checkpoint: a VAE with other weights gives
    another image, from the same latents."""
    folder, _, vae = split_checkpoints[Architecture.SD15]
    state = load_file(vae)
    save_file({k: t * 0.9 if k.startswith("decoder.conv_out") else t for k, t in state.items()}, tmp_path / "other.safetensors")
    request = GenerationRequest(prompt="a cat", base_model=str(folder), steps=2, seed=3, width=64, height=64)
    engine = TorchEngine()
    own = pixels(engine.generate(request.replace(vae=str(vae)))[0].image)
    other = pixels(engine.generate(request.replace(vae=str(tmp_path / "other.safetensors")))[0].image)
    assert np.abs(own - pixels(engine.generate(request)[0].image)).max() <= 1, "the same weights: the same image"
    assert np.abs(own - other).max() > 5


def test_a_checkpoint_without_its_text_encoder_names_the_part_it_lacks(split_checkpoints, tmp_path):
    folder, checkpoint, vae = split_checkpoints[Architecture.SD15]
    cut = tmp_path / "unet-and-vae.safetensors"
    save_file({k: t for k, t in load_file(checkpoint).items() if not k.startswith("cond_stage_model.")}, cut)
    request = GenerationRequest(prompt="a cat", base_model=str(cut), base_config=str(folder), vae=str(vae), steps=2,
                                width=64, height=64)
    with pytest.raises(ModelFormatError, match="unet-and-vae.safetensors has no weights for its text encoder: it is "
                                               "not a whole SD1.5 checkpoint"):
        TorchEngine().generate(request)


def _with_metadata(source, target, metadata: dict[str, str]) -> None:
    """`source`'s tensors, saved again with `metadata` in the header."""
    save_file(load_file(source), target, metadata=metadata)


def test_only_a_key_counts_as_the_vae_not_text_that_mentions_one(split_checkpoints, tmp_path):
    """A header's metadata may quote a VAE key (a merge recipe, a training note): its quotes are escaped there,
    so it does not make a checkpoint without a VAE read as one with it."""
    folder, checkpoint, vae = split_checkpoints[Architecture.SD15]
    noted = tmp_path / "noted.safetensors"
    _with_metadata(checkpoint, noted, {"note": 'baked from {"first_stage_model.decoder.conv_in.weight": 1}'})
    header = noted.read_bytes()[8:8 + struct.unpack("<Q", noted.read_bytes()[:8])[0]]
    assert b'\\"first_stage_model.' in header and not base_has_vae(noted)
    assert base_has_vae(folder)
    whole = tmp_path / "whole.safetensors"
    save_file({**load_file(checkpoint), **{VAE_PREFIX + k: t for k, t in load_file(vae).items()}}, whole)
    assert base_has_vae(whole)
    assert json.loads(header)["__metadata__"]["note"].startswith("baked from")


def _cli(*args):
    from cli_process import run_cli

    return run_cli(*args)


def test_the_command_line_takes_the_vae_beside_a_checkpoint_and_names_it_in_the_png(split_checkpoints, tmp_path):
    """AUTOMATIC1111's `<checkpoint>.vae.safetensors` beside a checkpoint shared without a VAE; the PNG names the VAE
    as A1111 does (`VAE hash`, `VAE`), and reusing the image reads them back."""
    import hashlib
    import shutil

    from PIL import Image

    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.metadata import read_request

    folder, checkpoint, vae = split_checkpoints[Architecture.SD15]
    shutil.copy(checkpoint, tmp_path / "model.safetensors")
    args = ("generate", "--model", tmp_path / "model.safetensors", "--config", folder, "--prompt", "a fox", "--steps", 2,
            "--width", 64, "--height", 64, "--out", tmp_path / "out", "--json", "--backend", "torch")
    refused = _cli(*args)
    assert refused.returncode == 2 and "model.safetensors has no VAE inside it" in refused.stderr
    assert "No VAE inside: it runs with a VAE installed" in _cli("inspect", tmp_path / "model.safetensors").stdout
    assert json.loads(_cli("inspect", tmp_path / "model.safetensors", "--json").stdout)["has_vae"] is False
    shutil.copy(vae, tmp_path / "model.vae.safetensors")
    run = _cli(*args)
    assert run.returncode == 0, run.stderr
    path = json.loads(run.stdout)["path"]
    assert read_request(path)["vae"] == str(tmp_path / "model.vae.safetensors")
    with Image.open(path) as image:
        text = image.text["parameters"]
    digest = hashlib.sha256(vae.read_bytes()).hexdigest()[:10]
    assert f"VAE hash: {digest}, VAE: model.vae.safetensors" in text
    read = parse_a1111(text)
    assert (read.vae_name, read.vae_hash) == ("model.vae.safetensors", digest)


def test_a_vae_for_another_base_model_is_named_as_such_and_refused(split_checkpoints, tmp_path):
    """FLUX's `ae.safetensors` sits in many ComfyUI vae folders: its 16 latent channels say what it is for, so it is
    neither offered for SD1.5 and SDXL models nor loaded for one. A VAE of misshapen weights says so."""
    import torch

    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.engine.inspect import for_other_family
    from hypersd_desktop.models.library import ModelLibrary

    flux = tmp_path / "ae.safetensors"
    save_file({"decoder.conv_in.weight": torch.zeros(8, 16, 3, 3), "decoder.up.0.block.0.conv1.weight": torch.zeros(8, 8, 3, 3),
               "encoder.down.0.block.0.conv1.weight": torch.zeros(8, 8, 3, 3)}, flux)
    info = inspect_file(flux)
    assert (info.kind, info.family) == (WeightsKind.VAE, "SD3 or FLUX")
    assert for_other_family(flux, info) == ("ae.safetensors is a VAE for SD3 or FLUX, which this app does not run; it "
                                            "runs SD1.5 and SDXL models.")
    library = ModelLibrary(AppPaths.default())
    try:
        (item,) = library.import_path(flux)
        assert item.status == "unsupported" and "a VAE for SD3 or FLUX" in item.reason
    finally:
        library.close()
    folder, checkpoint, vae = split_checkpoints[Architecture.SD15]
    request = GenerationRequest(prompt="a cat", base_model=str(checkpoint), base_config=str(folder), steps=2,
                                width=64, height=64)
    with pytest.raises(InputError, match="ae.safetensors is a VAE for SD3 or FLUX"):
        TorchEngine().generate(request.replace(vae=str(flux)))
    flux_folder = tmp_path / "flux-vae"
    flux_folder.mkdir()
    (flux_folder / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 16}))
    with pytest.raises(InputError, match="flux-vae is a VAE for SD3 or FLUX"):
        TorchEngine().generate(request.replace(vae=str(flux_folder)))
    misshapen = tmp_path / "misshapen.safetensors"
    save_file({k: t[:1] if k.endswith("conv_out.weight") else t for k, t in load_file(vae).items()}, misshapen)
    with pytest.raises(ModelFormatError, match="misshapen.safetensors does not fit the base model's VAE"):
        TorchEngine().generate(request.replace(vae=str(misshapen)))
