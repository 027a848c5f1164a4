"""TAESD as people have it: madebyollin's `taesd_decoder.safetensors` / `taesdxl_decoder.safetensors` (the files in
ComfyUI's vae_approx folder), a diffusers folder's weights file on its own, and the halves the app has no use for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.core.vocab import Architecture, Decoder, ImportStatus, ModelKind, WeightsKind
from hypersd_desktop.engine import GenerationRequest
from hypersd_desktop.engine.inspect import inspect_file
from hypersd_desktop.engine.loading import load_taesd
from hypersd_desktop.engine.torch_engine import TorchEngine


# TAESD as madebyollin's taesd.py defines it (https://github.com/madebyollin/taesd): each half a bare nn.Sequential,
# the decoder's first module a clamp without weights. Written here from that definition, not from the app's loader.
def _conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class _Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class _Block(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n_in, n_out), nn.ReLU(), _conv(n_out, n_out), nn.ReLU(), _conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def original_decoder(latent_channels: int = 4) -> nn.Sequential:
    def stage():
        return [_Block(64, 64), _Block(64, 64), _Block(64, 64), nn.Upsample(scale_factor=2), _conv(64, 64, bias=False)]

    return nn.Sequential(_Clamp(), _conv(latent_channels, 64), nn.ReLU(), *stage(), *stage(), *stage(),
                         _Block(64, 64), _conv(64, 3))


def original_encoder(latent_channels: int = 4) -> nn.Sequential:
    def stage():
        return [_conv(64, 64, stride=2, bias=False), _Block(64, 64), _Block(64, 64), _Block(64, 64)]

    return nn.Sequential(_conv(3, 64), _Block(64, 64), *stage(), *stage(), *stage(), _conv(64, latent_channels))


def save_module(module: nn.Module, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: tensor.contiguous() for key, tensor in module.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    torch.manual_seed(11)
    module = original_decoder().eval()
    return module, save_module(module, tmp_path_factory.mktemp("vae_approx") / "taesd_decoder.safetensors")


def test_a_taesd_decoder_file_decodes_as_the_original_decoder(decoder):
    module, path = decoder
    latents = torch.randn(1, 4, 8, 12, generator=torch.Generator().manual_seed(2)) * 2
    loaded = load_taesd(path, torch.float32, "cpu")
    with torch.inference_mode():
        ours = loaded.decode(latents).sample
        reference = module(latents) * 2 - 1  # the original decodes to [0, 1], diffusers to [-1, 1]
    assert ours.shape == (1, 3, 64, 96)
    assert (ours - reference).abs().max().item() < 1e-5
    assert reference.std().item() > 0.01, "the random decoder gives an image, not a constant"


def test_a_diffusers_taesd_weights_file_on_its_own_loads_as_its_folder(tmp_path):
    from diffusers import AutoencoderTiny

    torch.manual_seed(3)
    AutoencoderTiny().save_pretrained(tmp_path / "taesdxl")
    file = tmp_path / "taesdxl" / "diffusion_pytorch_model.safetensors"
    assert inspect_file(file).kind == WeightsKind.TAESD
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        from_folder = load_taesd(tmp_path / "taesdxl", torch.float32, "cpu").decode(latents).sample
        from_file = load_taesd(file, torch.float32, "cpu").decode(latents).sample
    assert torch.equal(from_folder, from_file)


def test_inspect_names_each_half_and_the_other_families_tiny_decoders(decoder, tmp_path):
    info = inspect_file(decoder[1])
    assert (info.kind, info.format, info.family) == (WeightsKind.TAESD, "decoder only", None)
    encoder = inspect_file(save_module(original_encoder(), tmp_path / "taesd_encoder.safetensors"))
    assert encoder.kind == WeightsKind.UNKNOWN and encoder.format.startswith("TAESD encoder")
    flux = inspect_file(save_module(original_decoder(16), tmp_path / "taef1_decoder.safetensors"))
    assert (flux.kind, flux.family) == (WeightsKind.TAESD, "SD3 or FLUX")
    with pytest.raises(InputError, match="SD3 or FLUX"):
        load_taesd(tmp_path / "taef1_decoder.safetensors", torch.float32, "cpu")
    with pytest.raises(InputError, match="taesd_encoder.safetensors is a TAESD encoder"):
        load_taesd(tmp_path / "taesd_encoder.safetensors", torch.float32, "cpu")


def test_a_damaged_decoder_file_is_refused_with_its_name(decoder, tmp_path):
    state = {key: tensor.contiguous() for key, tensor in decoder[0].state_dict().items()}
    del state["8.conv.2.weight"]
    save_file(state, str(tmp_path / "missing.safetensors"))
    state = {key: tensor.contiguous() for key, tensor in decoder[0].state_dict().items()}
    state["8.conv.2.weight"] = torch.zeros(64, 32, 3, 3)
    save_file(state, str(tmp_path / "misshapen.safetensors"))
    for name in ("missing", "misshapen"):
        with pytest.raises(ModelFormatError, match=f"{name}.safetensors does not fit TAESD"):
            load_taesd(tmp_path / f"{name}.safetensors", torch.float32, "cpu")


def test_importing_comfyuis_vae_approx_folder_takes_the_decoders_with_their_architecture(decoder, tmp_path):
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary

    folder = tmp_path / "ComfyUI" / "models" / "vae_approx"
    torch.manual_seed(5)
    for name, module in {"taesd_decoder": decoder[0], "taesdxl_decoder": original_decoder(),
                         "taesd_encoder": original_encoder(), "taef1_decoder": original_decoder(16)}.items():
        save_module(module, folder / f"{name}.safetensors")
    library = ModelLibrary(AppPaths.default().ensure())
    try:
        items = {Path(item.path).name: item for item in library.importer.import_path(folder)}
        assert {name: (item.status, item.architecture) for name, item in items.items()} == {
            "taesd_decoder.safetensors": (ImportStatus.IMPORTED, Architecture.SD15),
            "taesdxl_decoder.safetensors": (ImportStatus.IMPORTED, Architecture.SDXL),
            "taesd_encoder.safetensors": (ImportStatus.UNSUPPORTED, None),
            "taef1_decoder.safetensors": (ImportStatus.UNSUPPORTED, None),
        }
        assert "TAESD encoder" in items["taesd_encoder.safetensors"].reason
        assert "SD3 or FLUX" in items["taef1_decoder.safetensors"].reason
        assert library.taesd_for(Architecture.SD15) == str(folder / "taesd_decoder.safetensors")
        assert library.taesd_for(Architecture.SDXL) == str(folder / "taesdxl_decoder.safetensors")
        assert all(model.kind == ModelKind.TAESD for model in library.registry.list(ModelKind.TAESD))
    finally:
        library.close()


def test_fast_decode_and_previews_with_a_decoder_file_equal_those_of_the_same_weights_as_a_folder(decoder, tiny_sd15,
                                                                                                  tmp_path):
    """Through the engine, which took only folders before. The folder is made from the original decoder's weights
    by its definition (the decoder's layers one place on, after the clamp), not with the app's loader."""
    from diffusers import AutoencoderTiny

    module, path = decoder
    tiny = AutoencoderTiny()
    state = {f"decoder.layers.{int(key.split('.', 1)[0]) - 1}.{key.split('.', 1)[1]}": tensor
             for key, tensor in module.state_dict().items()}
    assert not [key for key in tiny.load_state_dict(state, strict=False).missing_keys if key.startswith("decoder.")]
    tiny.save_pretrained(tmp_path / "taesd")
    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), steps=2, seed=3, width=64, height=64,
                                decoder=Decoder.TAESD, preview="taesd", taesd=str(path))
    engine = TorchEngine()
    previews = []
    (from_file,) = engine.generate(request, on_progress=previews.append)
    (from_folder,) = engine.generate(request.replace(taesd=str(tmp_path / "taesd")))
    assert np.array_equal(np.asarray(from_file.image), np.asarray(from_folder.image))
    assert np.asarray(from_file.image).std() > 0 and previews[-1].preview.size == from_file.image.size


def test_the_command_line_fast_decode_takes_the_installed_taesd_for_the_model_or_says_how_to_get_one(decoder,
                                                                                                  tiny_sd15, tmp_path):
    import json

    from cli_process import run_cli as cli

    generate = ("generate", "--model", tiny_sd15, "--prompt", "a cat", "--steps", 2, "--seed", 1, "--width", 64,
                "--height", 64, "--out", tmp_path / "out", "--json", "--no-gallery", "--fast-decode")
    missing = cli(*generate)
    assert missing.returncode == 2, missing.stderr
    assert "--fast-decode needs TAESD for this SD1.5 model: install it with `hypersd-desktop models download taesd`" \
        in missing.stderr
    imported = cli("models", "import", decoder[1].parent)
    assert imported.returncode == 0, imported.stderr
    made = cli(*generate)
    assert made.returncode == 0, made.stderr
    from PIL import Image

    with Image.open(json.loads(made.stdout.splitlines()[-1])["path"]) as image:
        request = json.loads(image.text["hypersd"])
    assert (request["decoder"], request["taesd"]) == ("taesd", str(decoder[1]))
