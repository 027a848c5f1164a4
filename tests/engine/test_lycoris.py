"""LyCORIS files (LoCon, LoHa, LoKr, with Tucker cores and DoRA) as LyCORIS itself writes them, fused to the
update its training pass applies.

The files come from the `lycoris-lora` package (what people train them with) on the tiny SD1.5 model, with
random factors; the expected update of each layer is the one LyCORIS's own module computes for its forward
pass (`get_weight`, scaled once by alpha/rank, as AUTOMATIC1111 and ComfyUI apply it too).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from lycoris import kohya as lycoris_kohya

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import WeightsKind
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import inspect_file
from hypersd_desktop.engine.lora import apply_layers, load_lora_layers


# What LyCORIS adapts on a diffusers UNet (its "full" preset, less a name it would take twice here).
PRESET = """
enable_conv = true
unet_target_module = ["Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D"]
unet_target_name = ["conv_in", "conv_out", "time_embedding.linear_1", "time_embedding.linear_2"]
text_encoder_target_module = ["CLIPAttention", "CLIPMLP"]
text_encoder_target_name = []
"""


@pytest.fixture(scope="module")
def pipe(tiny_sd15):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(tiny_sd15)


def write_lycoris(pipe, path, algo: str, dim: int = 4, alpha: float = 2.0, dtype=torch.float32, **options):
    """A LyCORIS file of `algo` for copies of `pipe`'s UNet and text encoder, with random factors. Returns the
    update of each adapted layer, by (component, module name), as LyCORIS's forward pass applies it."""
    preset = path.with_suffix(".toml")
    preset.write_text(PRESET)
    unet, text_encoder = copy.deepcopy(pipe.unet), copy.deepcopy(pipe.text_encoder)
    network = lycoris_kohya.create_network(1.0, dim, alpha, None, text_encoder, unet, algo=algo, preset=str(preset),
                                           **options)
    network.apply_to(text_encoder, unet, apply_text_encoder=True, apply_unet=True)
    generator = torch.Generator().manual_seed(len(algo) + dim)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if "dora_scale" in name:  # magnitudes near the weights' own norms, as training leaves them
                parameter.mul_(1 + 0.2 * torch.rand(parameter.shape, generator=generator))
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
            parameter.copy_(parameter.to(dtype))  # the values the file will hold
    network.save_weights(str(path), dtype, {})
    names = {id(module): ("unet", name) for name, module in unet.named_modules()}
    names |= {id(module): ("text_encoder", name) for name, module in text_encoder.named_modules()}
    expected = {}
    with torch.no_grad():
        for module in network.loras:
            original = module.org_module[0]
            shape = original.weight.shape
            # what the module's forward pass adds: LoCon scales its factors' product, LoHa and LoKr rebuild scaled
            update = (module.get_weight(shape) if hasattr(module, "get_weight")
                      else module.get_diff_weight(1, shape)[0]).float()
            if getattr(module, "wd", False):
                expected[names[id(original)]] = module.apply_weight_decompose(original.weight + update) - original.weight
            else:
                expected[names[id(original)]] = update
    network.restore()
    return expected


def fuse(pipe, path, weight: float = 1.0):
    components = {"unet": copy.deepcopy(pipe.unet), "text_encoder": copy.deepcopy(pipe.text_encoder)}
    layers, unmatched = load_lora_layers(path, components, dict(pipe.unet.config))
    apply_layers(components, layers, weight)
    return components, layers, unmatched


def assert_updates(pipe, components, expected, weight: float = 1.0):
    originals = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    convolutions = 0
    for (component, name), update in expected.items():
        before = originals[component].get_submodule(name).weight
        after = components[component].get_submodule(name).weight
        torch.testing.assert_close(after - before, weight * update, rtol=1e-4, atol=1e-5, msg=f"{component} {name}")
        convolutions += before.dim() == 4
    assert convolutions > 0 and len(expected) > 50  # convolutions and the text encoder's layers are covered


@pytest.mark.parametrize(("algo", "options"), [
    ("locon", {"conv_dim": 4, "conv_alpha": 1.0}),
    ("locon", {"conv_dim": 4, "conv_alpha": 1.0, "use_tucker": True}),
    ("loha", {}),
    ("loha", {"conv_dim": 4, "conv_alpha": 1.0, "use_tucker": True}),
    ("lokr", {"factor": 4}),  # w1 whole, w2 in two factors
    ("lokr", {"factor": 4, "decompose_both": True}),
    ("lokr", {"factor": 4, "full_matrix": True, "dim": 8}),  # two whole matrices: scale 1 (the file says alpha 8)
    ("lokr", {"factor": 4, "conv_dim": 2, "conv_alpha": 1.0, "use_tucker": True}),
], ids=["locon", "locon-tucker", "loha", "loha-tucker", "lokr", "lokr-both", "lokr-full", "lokr-tucker"])
def test_a_lycoris_file_fuses_to_the_update_lycoris_trains(pipe, tmp_path, algo, options):
    path = tmp_path / f"{algo}.safetensors"
    expected = write_lycoris(pipe, path, algo, **options)
    components, layers, unmatched = fuse(pipe, path)
    assert unmatched == 0 and len(layers) == len(expected)
    assert_updates(pipe, components, expected)
    assert inspect_file(path).kind == WeightsKind.LORA

    apply_layers(components, layers, 1.0, sign=-1)  # unfused: the weights are back
    for name, parameter in components["unet"].named_parameters():
        torch.testing.assert_close(parameter, pipe.unet.get_parameter(name), rtol=0, atol=2e-5)


@pytest.mark.parametrize(("algo", "options"), [("locon", {}), ("loha", {}), ("lokr", {"factor": 4})])
def test_a_file_of_lycoriss_own_wrapper_fuses_into_the_unet(pipe, tmp_path, monkeypatch, algo, options):
    """LyCORIS's own wrapper (`create_lycoris`, which SimpleTuner and other diffusers trainers use) names the
    UNet's layers `lycoris_<diffusers path with _>`, as ComfyUI's loader reads them."""
    from lycoris import LycorisNetwork, create_lycoris
    from safetensors import safe_open

    unet = copy.deepcopy(pipe.unet)
    # its preset, as `apply_preset` would set it, undone after the test (it is the class's, for every network)
    monkeypatch.setattr(LycorisNetwork, "TARGET_REPLACE_MODULE", ["Transformer2DModel", "ResnetBlock2D"])
    monkeypatch.setattr(LycorisNetwork, "ENABLE_CONV", True)
    network = create_lycoris(unet, 1.0, linear_dim=4, linear_alpha=2.0, conv_dim=4, conv_alpha=1.0, algo=algo,
                             **options)
    network.apply_to()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for _, parameter in network.named_parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    path = tmp_path / f"{algo}.safetensors"
    network.save_weights(str(path), torch.float32, {})
    names = {id(module): ("unet", name) for name, module in unet.named_modules()}
    with torch.no_grad():
        expected = {}
        for module in network.loras:
            shape = module.org_module[0].weight.shape
            update = module.get_weight(shape) if hasattr(module, "get_weight") else module.get_diff_weight(1, shape)[0]
            expected[names[id(module.org_module[0])]] = update.float()
    network.restore()
    with safe_open(str(path), "pt") as weights:
        assert all(key.startswith("lycoris_") for key in weights.keys())
    info = inspect_file(path)
    assert (info.kind, info.architecture) == (WeightsKind.LORA, "sd15")
    components, layers, unmatched = fuse(pipe, path)
    assert unmatched == 0 and len(layers) == len(expected)
    for (component, name), update in expected.items():
        after = components[component].get_submodule(name).weight
        torch.testing.assert_close(after - pipe.unet.get_submodule(name).weight, update, rtol=1e-4, atol=1e-5)


def test_a_half_precision_lokr_file_at_weight_0_6(pipe, tmp_path):
    path = tmp_path / "lokr-fp16.safetensors"
    expected = write_lycoris(pipe, path, "lokr", factor=4, decompose_both=True, dtype=torch.float16)
    components, _, _ = fuse(pipe, path, weight=0.6)
    assert_updates(pipe, components, {key: update for key, update in expected.items()}, weight=0.6)


@pytest.mark.parametrize("wd_on_output", [True, False])
def test_dora_rescales_to_the_trained_magnitudes_and_is_not_subtracted(pipe, tmp_path, wd_on_output):
    path = tmp_path / "dora.safetensors"
    # alpha = rank: LyCORIS's own merge applies alpha/rank twice, its forward pass (and the app) once
    expected = write_lycoris(pipe, path, "locon", dim=4, alpha=4.0, conv_dim=4, conv_alpha=4.0, dora_wd=True,
                             wd_on_output=wd_on_output)
    components, layers, _ = fuse(pipe, path)
    assert all(layer.magnitude is not None for layer in layers)
    assert_updates(pipe, components, expected)
    with pytest.raises(ValueError, match="reload"):
        apply_layers(components, layers, 1.0, sign=-1)


def test_the_engine_reloads_the_base_model_to_drop_a_dora_lora(pipe, tiny_sd15, hyper_lora, tmp_path):
    from hypersd_desktop.engine.torch_engine import TorchEngine

    dora = tmp_path / "dora.safetensors"
    write_lycoris(pipe, dora, "locon", dim=4, alpha=4.0, dora_wd=True)
    hyper = LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora")))
    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), loras=(hyper, LoraSpec(str(dora), 0.8)),
                                steps=1, seed=4, width=64, height=64)
    engine = TorchEngine()
    with_dora = np.asarray(engine.generate(request)[0].image, dtype=np.int16)
    first = engine._loaded.pipe
    without = np.asarray(engine.generate(request.replace(loras=(hyper,)))[0].image, dtype=np.int16)
    assert engine._loaded.pipe is not first  # reloaded: a DoRA update cannot be subtracted
    fresh = np.asarray(TorchEngine().generate(request.replace(loras=(hyper,)))[0].image, dtype=np.int16)
    assert np.abs(without - fresh).max() <= 1 and np.abs(with_dora - fresh).max() > 10


def test_a_lycoris_method_the_app_cannot_fuse_is_named(pipe, tiny_sd15, tmp_path, app_home):
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.vocab import ImportStatus
    from hypersd_desktop.engine.planning import check_lora_files
    from hypersd_desktop.models.library import ModelLibrary

    path = tmp_path / "oft.safetensors"
    write_lycoris(pipe, path, "diag-oft", dim=4)
    with pytest.raises(InputError, match="is a LyCORIS OFT/BOFT file, which the app cannot fuse"):
        fuse(pipe, path)
    ia3 = tmp_path / "ia3.safetensors"
    write_lycoris(pipe, ia3, "ia3", dim=4)
    # a request naming it, and an import of it, say what it is before anything loads
    with pytest.raises(InputError, match=r"^ia3.safetensors is a LyCORIS IA³ file, which the app cannot use; LoRA, "
                                         r"LoCon, LoHa and LoKr files work.$"):
        check_lora_files(GenerationRequest(prompt="", base_model=str(tiny_sd15), loras=(LoraSpec(str(ia3)),)), "sd15")
    library = ModelLibrary(AppPaths.default())
    [item] = library.import_path(ia3)
    library.close()
    assert item.status == ImportStatus.UNSUPPORTED and item.reason.startswith("a LyCORIS IA³ file;")


@pytest.mark.parametrize(("width", "architecture", "family"), [(768, "sd15", None), (2048, "sdxl", None),
                                                               (1024, None, "SD2")])
@pytest.mark.parametrize("layer", ["lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k",
                                   "diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k"])  # ComfyUI's
def test_the_architecture_of_a_loha_or_lokr_file_is_read_off_its_cross_attention(tmp_path, width, architecture,
                                                                                  family, layer):
    from safetensors.torch import save_file

    files = {
        "loha": {f"{layer}.hada_w1_a": torch.zeros(640, 4), f"{layer}.hada_w1_b": torch.zeros(4, width),
                 f"{layer}.hada_w2_a": torch.zeros(640, 4), f"{layer}.hada_w2_b": torch.zeros(4, width)},
        # w1 ⊗ w2: 8 × (width / 8) input columns
        "lokr": {f"{layer}.lokr_w1": torch.zeros(8, 8), f"{layer}.lokr_w2_a": torch.zeros(80, 4),
                 f"{layer}.lokr_w2_b": torch.zeros(4, width // 8), f"{layer}.alpha": torch.tensor(4.0)},
    }
    for name, tensors in files.items():
        save_file(tensors, str(tmp_path / f"{name}.safetensors"))
        info = inspect_file(tmp_path / f"{name}.safetensors")
        assert (info.kind, info.architecture, info.family) == (WeightsKind.LORA, architecture, family), name
