"""The dtype policy: which precision each part runs in, per device, model and GPU."""

from __future__ import annotations

import pytest
import torch

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine.devices import placement_on

# (device, dtype asked, architecture, fp16-safe VAE, native bf16) -> (dtype, VAE dtype)
CASES = {
    ("cuda", "auto", "sd15", False, True): ("fp16", "fp16"),
    ("cuda", "auto", "sdxl", True, True): ("fp16", "fp16"),  # the fp16-fix VAE
    ("cuda", "auto", "sdxl", False, True): ("fp16", "bf16"),  # the stock VAE overflows in fp16; bf16 has fp32's range
    ("cuda", "auto", "sdxl", False, False): ("fp16", "fp32"),  # before Ampere bf16 is emulated: fp32
    ("cuda", "bf16", "sdxl", False, True): ("bf16", "bf16"),
    ("cuda", "fp32", "sdxl", False, True): ("fp32", "fp32"),
    ("mps", "auto", "sd15", False, False): ("fp16", "fp32"),  # fp16 decodes on MPS are black
    ("mps", "auto", "sdxl", True, True): ("fp16", "fp32"),
    ("cpu", "auto", "sdxl", False, True): ("fp32", "fp32"),
    ("cpu", "bf16", "sd15", False, True): ("bf16", "bf16"),
}


@pytest.mark.parametrize("case", list(CASES), ids=["-".join(map(str, case)) for case in CASES])
def test_each_part_runs_in_the_precision_the_policy_names(case):
    placement = placement_on(*case)
    assert (placement.dtype, placement.vae_dtype) == CASES[case]


def test_fp16_on_the_cpu_is_refused_with_what_to_choose():
    with pytest.raises(InputError, match="fp32, or bf16"):
        placement_on("cpu", "fp16", "sd15", False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_stock_sdxl_vae_decodes_in_bf16_or_fp32_on_cuda_and_stays_so(tiny_sdxl, hyper_lora, tmp_path):
    """fp16 SDXL with the stock VAE: the VAE decodes in bf16 (fp32 before Ampere), close to an all-fp32 run, and an
    image-to-image run between two images leaves it so (diffusers would have left it in fp16)."""
    import numpy as np

    from hypersd_desktop.core.images import InputImages
    from hypersd_desktop.engine import GenerationRequest, LoraSpec
    from hypersd_desktop.engine.devices import cuda_supports_bf16
    from hypersd_desktop.engine.torch_engine import TorchEngine
    from pictures import init_picture, png

    store = InputImages(tmp_path / "inputs")
    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sdxl), steps=2, seed=4, width=64, height=64,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SDXL-1step-lora"))),), device="cuda",
                                dtype="fp16")
    engine = TorchEngine(inputs=store)
    first = np.asarray(engine.generate(request)[0].image, dtype=np.float64)
    vae = engine._loaded.pipe.vae
    assert vae.dtype == (torch.bfloat16 if cuda_supports_bf16() else torch.float32)
    engine.generate(request.replace(init_image=store.add(png(init_picture())), strength=0.5))
    assert engine._loaded.pipe.vae is vae and vae.dtype == (torch.bfloat16 if cuda_supports_bf16() else torch.float32)
    again = np.asarray(engine.generate(request)[0].image, dtype=np.float64)
    assert np.array_equal(again, first)
    full = np.asarray(TorchEngine().generate(request.replace(dtype="fp32"))[0].image, dtype=np.float64)
    assert first.std() > 5
    assert 10 * np.log10(255**2 / max(((first - full) ** 2).mean(), 1e-9)) > 30  # dB: fp16 UNet and bf16 VAE


def test_a_module_built_with_a_state_dict_holds_it_in_the_dtype_asked_for_or_says_what_does_not_fit():
    """`built_with` makes the module on the meta device and copies each weight in once: the weights are the state
    dict's, converted; a state dict that does not fit gives no module and names what is wrong."""
    from functools import partial

    from diffusers import UNet2DConditionModel

    import tiny_models
    from hypersd_desktop.engine.devices import built_with

    unet = tiny_models.sdxl_unet()
    state = {key: tensor.half() for key, tensor in unet.state_dict().items()}
    make = partial(UNet2DConditionModel.from_config, dict(unet.config))
    built, misfit = built_with(make, state, torch.bfloat16)
    assert not misfit and built is not None
    for key, tensor in built.state_dict().items():
        assert tensor.device.type == "cpu" and torch.equal(tensor, state[key].to(torch.bfloat16)), key
    broken = dict(state)
    del broken["conv_in.bias"]
    broken["conv_out.weight"] = broken["conv_out.weight"][:2]
    broken["extra.weight"] = torch.zeros(1)
    built, misfit = built_with(make, broken, torch.float32)
    assert built is None
    assert (misfit.missing, misfit.unexpected, misfit.misshapen) == (("conv_in.bias",), ("extra.weight",),
                                                                      ("conv_out.weight",))
    assert misfit.counts() == "1 missing, 1 unexpected and 1 misshapen weights"
