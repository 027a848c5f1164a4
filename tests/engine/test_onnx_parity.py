"""The ONNX backend's image equals the torch backend's for the same request: every Hyper-SD recipe row on the
tiny SD1.5 and SDXL models, a LoRA stack with weights, image to image and inpainting, fp32 on the CPU
provider."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hypersd_desktop.core.hashes import sha256_file
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine.onnx.engine import OnnxEngine
from hypersd_desktop.engine.onnx.export import ExportCache
from hypersd_desktop.engine.recipes import RECIPES
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec

pytestmark = pytest.mark.filterwarnings("ignore")
TOLERANCE = 2  # of 255, per pixel (max)


@pytest.fixture(scope="module")
def onnx_engine(tmp_path_factory):
    """One engine and export cache for the module: LoRA files with equal contents share an export."""
    return OnnxEngine(ExportCache(tmp_path_factory.mktemp("onnx"), hash_of=sha256_file))


def assert_same_images(request: GenerationRequest, onnx_engine: OnnxEngine, inputs: InputImages | None = None) -> None:
    theirs = TorchEngine(inputs=inputs).generate(request)
    onnx_engine.inputs = inputs
    ours = onnx_engine.generate(request.replace(backend="onnx"))
    assert ours[0].settings == dataclasses.replace(theirs[0].settings, backend="onnx")
    for expected, image in zip(theirs, ours):
        difference = np.abs(np.asarray(image.image, np.int16) - np.asarray(expected.image, np.int16)).max()
        assert difference <= TOLERANCE, (request.loras, request.steps, difference)
    first, second = (np.asarray(result.image, np.int16) for result in ours)
    assert np.abs(first - second).max() > 20, "the two seeds' images differ: the comparison can fail"


def cases():
    for recipe in RECIPES:
        for steps in ((1, 4) if recipe.unified else (recipe.default_steps,)):
            yield pytest.param(recipe, steps, id=f"{recipe.id}-{steps}")


@pytest.mark.parametrize(("recipe", "steps"), list(cases()))
def test_every_recipe_row_gives_the_torch_backends_image(recipe, steps, onnx_engine, tiny_sd15, tiny_sdxl, hyper_lora,
                                                         tmp_path_factory):
    base = tiny_sdxl if recipe.architecture == "sdxl" else tiny_sd15
    common = dict(prompt="a lighthouse on a cliff at dusk", base_model=str(base), seed=1234, width=64, height=64,
                  batch_size=2, device="cpu", dtype="fp32")
    if recipe.kind == "unet":
        from diffusers import UNet2DConditionModel

        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
        with torch.no_grad():
            generator = torch.Generator().manual_seed(3)
            for parameter in unet.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.01)
        path = tmp_path_factory.mktemp("unet") / recipe.file_name
        save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(path))
        request = GenerationRequest(unet=str(path), **common)
    else:
        negative = "blurry, low quality" if recipe.uses_guidance else ""
        request = GenerationRequest(negative_prompt=negative, loras=(LoraSpec(str(hyper_lora(recipe.id))),),
                                    steps=steps, **common)
    assert_same_images(request, onnx_engine)


def test_sdxl_guidance_with_no_negative_prompt_uses_zero_embeddings_as_diffusers_does(onnx_engine, tiny_sdxl, hyper_lora):
    request = GenerationRequest(prompt="a red kite", base_model=str(tiny_sdxl), seed=9, width=64, height=64, batch_size=2,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SDXL-8steps-CFG-lora"))),), guidance=6.0,
                                device="cpu", dtype="fp32")
    assert_same_images(request, onnx_engine)


def test_a_lora_stack_with_weights_gives_the_torch_backends_fused_image(onnx_engine, tiny_sd15, hyper_lora, tmp_path):
    import tiny_models
    from diffusers import UNet2DConditionModel

    style = tmp_path / "watercolour.safetensors"
    tiny_models.kohya_lora(UNet2DConditionModel.from_pretrained(tiny_sd15, subfolder="unet"), style, seed=7)
    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sd15), seed=77, width=64, height=64,
                                batch_size=2, steps=2, device="cpu", dtype="fp32",
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora")), 0.8), LoraSpec(str(style), -0.6)))
    assert_same_images(request, onnx_engine)


def test_the_onnx_pipeline_runs_where_torch_cannot_be_imported(onnx_engine, tiny_sd15, hyper_lora):
    """As in a runtime with ONNX Runtime and no torch: importing torch or diffusers fails, and transformers is
    told there is none (USE_TORCH=0, what it finds by itself where torch is not installed). The export was made
    here; the engine there finds it in the cache by the files' hashes."""
    import os
    import subprocess
    import sys

    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sd15), seed=7, steps=2, width=64, height=64,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),), device="cpu", dtype="fp32",
                                backend="onnx", preview="latent")
    (expected,) = onnx_engine.generate(request)
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "diffusers"):
            raise ImportError(f"{{name}} is not installed here")
sys.meta_path.insert(0, NoTorch())
from pathlib import Path
import numpy as np
from hypersd_desktop.core.hashes import sha256_file
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine.onnx.engine import OnnxEngine
from hypersd_desktop.engine.onnx.export import ExportCache
from hypersd_desktop.engine.types import GenerationRequest
request = GenerationRequest.from_json({request.to_json()!r})
steps = []
(result,) = OnnxEngine(ExportCache(Path({str(onnx_engine.cache.root)!r}), sha256_file)).generate(request, steps.append)
np.save(sys.argv[1], np.asarray(result.image))
print(len(steps), steps[-1].preview.size, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers")))
"""
    out = onnx_engine.cache.root.parent / "no-torch.npy"
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "USE_TORCH": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "2 (32, 32) []"  # latent resolution (the tiny VAE halves once)
    assert np.array_equal(np.load(out), np.asarray(expected.image))


# id: (strength, mask blur or None for image to image, steps)
IMAGE_CASES = {
    "img2img-0.5": (0.5, None, 4),
    "img2img-0.75": (0.75, None, 4),
    "img2img-1-step-lengthened": (0.3, None, 1),  # the planner lengthens the schedule: its last step runs
    "inpaint-0.9-blur-4": (0.9, 4, 4),
    "inpaint-strength-1": (1.0, 0, 2),  # pure noise under the mask, as diffusers' is_strength_max
}


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_image_to_image_and_inpainting_give_the_torch_backends_images(case, architecture, onnx_engine, tiny_sd15,
                                                                      tiny_sdxl, hyper_lora, tmp_path):
    from pictures import init_picture, mask_picture, png

    strength, blur, steps = IMAGE_CASES[case]
    store = InputImages(tmp_path / "inputs")
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt="a lighthouse on a cliff", base_model=str(base), seed=31, steps=steps,
                                batch_size=2, loras=(LoraSpec(str(lora)),), device="cpu", dtype="fp32",
                                init_image=store.add(png(init_picture())), strength=strength)
    if blur is not None:
        request = request.replace(mask_image=store.add(png(mask_picture())), mask_blur=blur)
    assert_same_images(request, onnx_engine, store)
    if blur is not None:  # the kept part is the init image's, not the noise's: the mask reached the latents
        (image, _) = (np.asarray(r.image, np.int16) for r in onnx_engine.generate(request.replace(backend="onnx")))
        (other, _) = (np.asarray(r.image, np.int16) for r in
                      onnx_engine.generate(request.replace(backend="onnx", mask_image=None, mask_blur=0)))
        assert np.abs(image - other).max() > 10


def test_inpainting_only_the_masked_area_gives_the_torch_backends_whole_picture(onnx_engine, tiny_sd15, hyper_lora,
                                                                                 tmp_path):
    from pictures import init_picture, mask_picture, png

    store = InputImages(tmp_path / "inputs")
    request = GenerationRequest(prompt="a lighthouse on a cliff", base_model=str(tiny_sd15), seed=31, steps=4,
                                batch_size=2, loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),),
                                device="cpu", dtype="fp32", init_image=store.add(png(init_picture(160))), strength=0.9,
                                mask_image=store.add(png(mask_picture(160))), masked_padding=8, width=64, height=64)
    assert_same_images(request, onnx_engine, store)
    assert {result.image.size for result in onnx_engine.generate(request.replace(backend="onnx"))} == {(160, 160)}


@pytest.mark.parametrize("strength", [0.75, 1.0])
def test_an_inpainting_model_with_a_9_channel_unet_gives_the_torch_backends_images(strength, onnx_engine, tiny_sd15,
                                                                                   hyper_lora, tmp_path):
    """stable-diffusion-inpainting's layout: the UNet takes the latents, the mask and the masked image's latents.
    At strength 1 diffusers samples no init latents (the noise is all), so neither does the ONNX pipeline."""
    import tiny_models
    from pictures import init_picture, mask_picture, png

    model = tiny_models.save_inpainting_pipeline(tiny_sd15, tmp_path / "sd15-inpainting")
    store = InputImages(tmp_path / "inputs")
    request = GenerationRequest(prompt="a lighthouse on a cliff", base_model=str(model), seed=5, steps=4, batch_size=2,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),), device="cpu",
                                dtype="fp32", init_image=store.add(png(init_picture())), strength=strength,
                                mask_image=store.add(png(mask_picture())), mask_blur=2)
    assert_same_images(request, onnx_engine, store)


@pytest.mark.parametrize("mode", ["txt2img", "img2img"])
def test_an_inpainting_model_makes_whole_images_as_inpainting_masked_all_over(mode, onnx_engine, tiny_sd15, hyper_lora,
                                                                              tmp_path):
    """As the torch backend (test_inpainting_models.py): text to image is inpainting of mid-grey at strength 1,
    image to image that of the init image, both with a white mask. (Their images are not compared with the torch
    backend's: the tiny VAE encodes a flat picture unstably, 1/255 of grey moving its latents by 1.5, so the
    two runtimes' rounding shows; test_an_inpainting_model_with_a_9_channel_unet… compares a real mask.)"""
    import tiny_models
    from PIL import Image

    from pictures import init_picture, png

    model = tiny_models.save_inpainting_pipeline(tiny_sd15, tmp_path / "sd15-inpainting")
    store = InputImages(tmp_path / "inputs")
    onnx_engine.inputs = store
    request = GenerationRequest(prompt="a lighthouse on a cliff", base_model=str(model), seed=5, steps=4, batch_size=2,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),), device="cpu",
                                dtype="fp32", width=64, height=64, backend="onnx")
    white = store.add(png(Image.new("L", (64, 64), 255)))
    if mode == "img2img":
        request = request.replace(init_image=store.add(png(init_picture())), strength=0.75)
        spelled_out = request.replace(mask_image=white, mask_blur=0)
    else:
        grey = store.add(png(Image.new("RGB", (64, 64), (128, 128, 128))))
        spelled_out = request.replace(init_image=grey, strength=1.0, mask_image=white, mask_blur=0)
    ours, theirs = onnx_engine.generate(request), onnx_engine.generate(spelled_out)
    for image, expected in zip(ours, theirs):
        assert np.array_equal(np.asarray(image.image), np.asarray(expected.image))
    first, second = (np.asarray(result.image, np.int16) for result in ours)
    assert np.abs(first - second).max() > 20 and first.std() > 5


def test_the_onnx_backend_says_it_has_image_modes_and_no_controlnet(tiny_sd15, hyper_lora, onnx_engine, tmp_path):
    from hypersd_desktop.core.errors import InputError
    from hypersd_desktop.core.vocab import Mode
    from hypersd_desktop.engine.backend import resolve
    from hypersd_desktop.engine.onnx.backend import probe
    from hypersd_desktop.engine.types import ControlSpec
    from pictures import edges_picture, png

    info = probe()
    assert {Mode.TEXT_TO_IMAGE, Mode.IMAGE_TO_IMAGE, Mode.INPAINT} <= set(info.modes) and not info.controlnet
    store = InputImages(tmp_path / "inputs")
    request = GenerationRequest(prompt="a kite", base_model=str(tiny_sd15), width=64, height=64, device="cpu",
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),),
                                controls=(ControlSpec(str(tmp_path / "controlnet"), store.add(png(edges_picture()))),))
    with pytest.raises(InputError, match="onnx: no ControlNet"):
        resolve("onnx", "cpu", request.mode, request)
    assert resolve("auto", "cpu", request.mode, request)[0].name == "torch"
    onnx_engine.inputs = store
    with pytest.raises(InputError, match="has no ControlNet"):
        onnx_engine.generate(request.replace(backend="onnx"))


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_weighted_and_long_prompts_give_the_torch_backends_images(architecture, onnx_engine, tiny_sd15, tiny_sdxl,
                                                                  hyper_lora):
    """A1111 emphasis, BREAK and a prompt past one window (`engine/prompts.py`), guided with a long negative."""
    base, lora = (tiny_sdxl, "Hyper-SDXL-8steps-CFG-lora") if architecture == "sdxl" else (tiny_sd15,
                                                                                         "Hyper-SD15-8steps-CFG-lora")
    request = GenerationRequest(prompt="a (red:1.4) kite [over] the sea BREAK " + "cat, " * 50 + "(gulls)",
                                negative_prompt="blurry, " * 45, base_model=str(base), seed=21, width=64, height=64,
                                batch_size=2, loras=(LoraSpec(str(hyper_lora(lora))),), guidance=5.0, device="cpu",
                                dtype="fp32")
    assert_same_images(request, onnx_engine)


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_edited_prompts_give_the_torch_backends_images(architecture, onnx_engine, tiny_sd15, tiny_sdxl, hyper_lora):
    """Prompt editing and alternation (`engine/prompt_editing.py`), in the prompt and the negative, guided, with
    the texts of one run of steps in two windows and of another in one."""
    base, lora = (tiny_sdxl, "Hyper-SDXL-8steps-CFG-lora") if architecture == "sdxl" else (tiny_sd15,
                                                                                         "Hyper-SD15-8steps-CFG-lora")
    request = GenerationRequest(prompt="a [cat|dog] on a [" + "mat, " * 40 + ":rug:0.5]", negative_prompt="[blurry|dark]",
                                base_model=str(base), seed=5, width=64, height=64, steps=6, batch_size=2,
                                loras=(LoraSpec(str(hyper_lora(lora))),), guidance=5.0, device="cpu", dtype="fp32")
    assert_same_images(request, onnx_engine)


def test_each_step_of_an_edited_prompt_feeds_that_steps_text_to_the_unet(onnx_engine, tiny_sd15, hyper_lora):
    """On the tiny models the first steps decide most of an image, so this checks what each step is fed: the
    embeddings of that step's prompt and negative (A1111 counts steps from 0; see `prompt_editing.text_at`)."""
    request = GenerationRequest(prompt="a cat", negative_prompt="blurry", base_model=str(tiny_sd15), seed=3,
                                width=64, height=64, steps=4, guidance=5.0, device="cpu", dtype="fp32",
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-8steps-CFG-lora"))),))
    onnx_engine.generate(request.replace(backend="onnx"))
    pipeline = onnx_engine._open.pipeline
    fed = []

    class Recording:
        def __init__(self, session):
            self.session = session

        def run(self, names, feeds):
            fed.append(feeds["encoder_hidden_states"].copy())
            return self.session.run(names, feeds)

    unet = pipeline.unet
    pipeline.unet = Recording(unet)
    try:
        pipeline.denoise("a [cat|dog] [on a mat::0.5]", 3, 4, "ddim-trailing", 64, 64, guidance=5.0,
                         negative_prompt="[blurry|dark]")
    finally:
        pipeline.unet = unet
    steps = [("a cat on a mat", "blurry"), ("a cat on a mat", "blurry"), ("a dog on a mat", "dark"), ("a cat ", "blurry")]
    assert len(fed) == 4
    for index, texts in enumerate(steps):
        (expected,) = pipeline.conditioning([texts], 1, True, 64, 64)
        assert np.array_equal(fed[index], expected["encoder_hidden_states"]), index
    assert not np.array_equal(fed[1], fed[2])


def test_a_hires_fix_gives_the_torch_backends_images(onnx_engine, tiny_sd15, hyper_lora, tmp_path, app_home):
    """The Hires fix runs on any engine (worker/service.py): both passes on ONNX Runtime, at two sizes."""
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.hashes import HashCache
    from hypersd_desktop.worker.service import Engines, GenerationService

    store = InputImages(tmp_path / "inputs")
    engines = Engines(store)
    onnx_engine.inputs = store
    engines._open["onnx"] = onnx_engine  # the module's export cache
    service = GenerationService(AppPaths.default().ensure(), None, HashCache(tmp_path / "hashes.json"), engines, store)
    request = GenerationRequest(prompt="a lighthouse on a cliff", base_model=str(tiny_sd15), seed=31, steps=4,
                                batch_size=2, loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),),
                                device="cpu", dtype="fp32", width=64, height=64, hires_scale=1.5, hires_strength=0.5)
    theirs = service.generate(request.replace(backend="torch"))
    ours = service.generate(request.replace(backend="onnx"))
    for expected, image in zip(theirs, ours):
        assert image.image.size == expected.image.size == (96, 96)
        difference = np.abs(np.asarray(image.image, np.int16) - np.asarray(expected.image, np.int16)).max()
        assert difference <= TOLERANCE, difference
    # with an upscaler model enlarging the first pass (on torch, on the CPU, under either backend)
    from tests.tiny_models import save_upscaler

    upscaled = request.replace(batch_size=1, upscaler=str(save_upscaler(tmp_path / "4x.safetensors")))
    (expected,), (image,) = (service.generate(upscaled.replace(backend=backend)) for backend in ("torch", "onnx"))
    assert np.abs(np.asarray(image.image, np.int16) - np.asarray(expected.image, np.int16)).max() <= TOLERANCE
    assert np.abs(np.asarray(image.image, np.int16) - np.asarray(ours[0].image, np.int16)).max() > TOLERANCE
