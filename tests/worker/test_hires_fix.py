"""Hires fix, as A1111 runs it: the image at the asked size, enlarged (Lanczos) and made again from it at the
larger size with part of the schedule. The reference is the diffusers code of the two passes: the model card's
text-to-image call, then the image-to-image pipeline of the same components on the enlarged picture, each with
a generator of the image's seed. Tiny models, fp32, CPU."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.gallery import read_metadata
from hypersd_desktop.gallery.metadata import read_request

PROMPT = "a harbour at dawn"
SEED = 31


def two_passes(base, lora, steps: int, scale: float, strength: float, seeds: list[int],
               second_steps: int | None = None, second_prompt: str = PROMPT, second_guidance: float = 0,
               negative: str | None = None) -> list[Image.Image]:
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline, TCDScheduler

    pipe = StableDiffusionPipeline.from_pretrained(base)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    again = StableDiffusionImg2ImgPipeline(**pipe.components)
    made = []
    for seed in seeds:
        first = pipe(prompt=PROMPT, num_inference_steps=steps, guidance_scale=0, eta=1.0, width=64, height=64,
                     generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        size = (int(64 * scale) // 8 * 8,) * 2
        enlarged = ImageOps.fit(first, size, Image.Resampling.LANCZOS)
        made.append(again(prompt=second_prompt, negative_prompt=negative, image=enlarged, strength=strength,
                          num_inference_steps=second_steps or steps, guidance_scale=second_guidance, eta=1.0,
                          generator=torch.Generator("cpu").manual_seed(seed)).images[0])
    return made


def test_hires_fix_makes_the_two_passes_of_the_diffusers_code_and_says_so_as_a1111(service, tiny_sd15, hyper_lora):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, width=64, height=64, batch_size=2, device="cpu", hires_scale=2.0,
                                hires_strength=0.5)
    progress = []
    began = time.perf_counter()
    saved = service.run(request, on_progress=progress.append)
    took = time.perf_counter() - began
    expected = two_passes(tiny_sd15, lora, 4, 2.0, 0.5, [SEED, SEED + 1])
    assert [image.result.seed for image in saved] == [SEED, SEED + 1]
    for image, reference in zip(saved, expected):
        assert image.result.image.size == (128, 128)
        difference = np.abs(np.asarray(image.result.image, np.int16) - np.asarray(reference, np.int16))
        assert difference.max() <= 1, difference.max()
        # the PNG: A1111's words for it (Size is the first pass's), and the whole request to make it again
        metadata, width, height, _ = read_metadata(image.path)
        assert (width, height) == (128, 128) and (metadata.width, metadata.height) == (64, 64)
        with Image.open(image.path) as png:
            settings = png.text["parameters"].splitlines()[-1]
        # the second pass ran 2 steps: half of the first pass's 4, which A1111 writes as its Hires steps
        assert "Size: 64x64" in settings and ("Denoising strength: 0.5, Hires upscale: 2, Hires steps: 2, "
                                              "Hires upscaler: Lanczos") in settings
        assert GenerationRequest.from_dict(read_request(image.path)) == request.replace(seed=image.result.seed,
                                                                                        batch_size=1)
    # the timings are the whole job's, as a batch's are: the same for each image, within the time it took
    timings = [image.result.timings for image in saved]
    assert timings[0] == timings[1] and timings[0]["total_s"] <= took
    assert timings[0]["load_s"] + timings[0]["denoise_s"] + timings[0]["decode_s"] <= timings[0]["total_s"]
    assert timings[0]["per_image_s"] * 2 == pytest.approx(timings[0]["total_s"] - timings[0]["load_s"])
    stages = {(p.stage, p.image_index) for p in progress}
    assert ("", 0) in stages and ("Hires fix", 0) in stages and ("Hires fix", 1) in stages  # both passes, each image

    again = service.generate(request.replace(batch_size=1, seed=SEED + 1))  # reuse: the same image
    assert np.array_equal(np.asarray(again[0].image), np.asarray(saved[1].result.image))


def test_a_hires_prompt_is_the_second_passs_own_and_comes_back_from_the_png(service, tiny_sd15, hyper_lora):
    """A1111's Hires prompt: the second pass repaints with its own words (the diffusers reference's image-to-image
    call given them); the PNG writes it as A1111 does, quoted for its commas, and reuse reads it back."""
    from hypersd_desktop.gallery.formats.common import hires_note, hires_prompts

    lora = hyper_lora("Hyper-SD15-1step-lora")
    own = "zebra crossing, a purple elephant"  # far from the prompt: the tiny model's words weigh little
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, width=64, height=64, device="cpu", hires_scale=2.0, hires_strength=0.5,
                                hires_prompt=own)
    (saved,) = service.run(request)
    (expected,) = two_passes(tiny_sd15, lora, 4, 2.0, 0.5, [SEED], second_prompt=own)
    (plain,) = two_passes(tiny_sd15, lora, 4, 2.0, 0.5, [SEED])
    made = np.asarray(saved.result.image, np.int16)
    assert np.abs(made - np.asarray(expected, np.int16)).max() <= 1
    assert np.abs(made - np.asarray(plain, np.int16)).max() > 4  # the words changed the second pass (10 seen)
    with Image.open(saved.path) as png:
        assert f'Hires upscaler: Lanczos, Hires prompt: "{own}"' in png.text["parameters"]
    metadata = read_metadata(saved.path)[0]
    assert hires_prompts(metadata) == (own, None) and "second pass had its own" not in hires_note(metadata)
    with pytest.raises(InputError, match="Hires prompt is the prompt of a Hires fix's second pass"):
        request.replace(hires_scale=None)


def test_hires_guidance_is_the_second_passs_own_and_comes_back_from_the_png(service, tiny_sd15, hyper_lora):
    """Forge's Hires CFG Scale: the second pass is guided at its own scale, with the negative prompt (the diffusers
    reference's image-to-image call given them), the first pass at its own (here none); the PNG writes it as Forge
    does and reuse reads it back."""
    from hypersd_desktop.gallery.formats.common import hires_guidance, hires_note

    lora = hyper_lora("Hyper-SD15-1step-lora")
    negative = "zebra crossing, a purple elephant"  # far from the prompt: the tiny model's words weigh little
    request = GenerationRequest(prompt=PROMPT, negative_prompt=negative, base_model=str(tiny_sd15),
                                loras=(LoraSpec(str(lora)),), steps=4, seed=SEED, width=64, height=64, device="cpu",
                                hires_scale=2.0, hires_strength=0.5, hires_guidance=3.0)
    (saved,) = service.run(request)
    (expected,) = two_passes(tiny_sd15, lora, 4, 2.0, 0.5, [SEED], second_guidance=3.0, negative=negative)
    (plain,) = two_passes(tiny_sd15, lora, 4, 2.0, 0.5, [SEED])
    made = np.asarray(saved.result.image, np.int16)
    assert np.abs(made - np.asarray(expected, np.int16)).max() <= 1
    assert np.abs(made - np.asarray(plain, np.int16)).max() > 4  # guidance changed the second pass
    with Image.open(saved.path) as png:
        assert "Hires upscaler: Lanczos, Hires CFG Scale: 3" in png.text["parameters"]
    metadata = read_metadata(saved.path)[0]
    assert hires_guidance(metadata) == 3.0 and "second pass had its own" not in hires_note(metadata)
    with pytest.raises(InputError, match="Hires guidance is the guidance of a Hires fix's second pass"):
        request.replace(hires_scale=None)
    with pytest.raises(InputError, match="Hires guidance must be between 0 and 30"):
        request.replace(hires_guidance=float("nan"))


def test_a_hires_fix_with_an_upscaler_repaints_the_upscalers_picture(service, tiny_sd15, hyper_lora, tmp_path):
    """With an upscaler model the first pass is enlarged by it (until it covers the size, then fitted to it with
    Lanczos, as A1111 does) instead of by Lanczos alone; the PNG names it as A1111 does."""
    from diffusers import StableDiffusionImg2ImgPipeline

    from hypersd_desktop.engine.upscalers import load_upscaler, run_tiled
    from tests.tiny_models import save_upscaler

    upscaler = save_upscaler(tmp_path / "4x-Tiny.safetensors", "esrgan", scale=4)
    lora = hyper_lora("Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, width=64, height=64, device="cpu", hires_scale=1.5, hires_strength=0.5,
                                upscaler=str(upscaler))
    progress = []
    [saved] = service.run(request, on_progress=progress.append)

    net, _ = load_upscaler(upscaler)
    first = service.generate(request.replace(hires_scale=None, upscaler=None))[0].image
    with torch.no_grad():
        picture = torch.from_numpy(np.asarray(first, np.float32) / 255).permute(2, 0, 1)[None]
        enlarged = ImageOps.fit(Image.fromarray(run_tiled(net, 4, picture)), (96, 96), Image.Resampling.LANCZOS)
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_sd15)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    from diffusers import TCDScheduler

    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    reference = pipe(prompt=PROMPT, image=enlarged, strength=0.5, num_inference_steps=4, guidance_scale=0, eta=1.0,
                     generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    made = np.asarray(saved.result.image, np.int16)
    assert np.abs(made - np.asarray(reference, np.int16)).max() <= 1
    lanczos = service.generate(request.replace(upscaler=None))[0].image
    assert np.abs(made - np.asarray(lanczos, np.int16)).max() > 8  # the upscaler's picture is another
    with Image.open(saved.path) as png:
        assert "Hires upscale: 1.5, Hires steps: 2, Hires upscaler: 4x-Tiny" in png.text["parameters"]
    assert ("Upscaling (4x-Tiny)", 1, 1) in {(p.stage, p.step, p.total_steps) for p in progress}
    again = service.generate(GenerationRequest.from_dict(read_request(saved.path)))
    assert np.array_equal(np.asarray(again[0].image), np.asarray(saved.result.image))


def test_a_hires_fix_with_a_controlnet_steers_both_passes_as_the_diffusers_pipelines_do(service, tiny_sd15,
                                                                                       hyper_lora, controlnets):
    """A1111 runs a Hires fix with ControlNet: its picture steers the first pass at the asked size and the second
    at the larger one. The reference: the ControlNet pipeline, then the ControlNet image-to-image pipeline of the
    same components on the enlarged picture, each with the control picture fitted to its size."""
    import io

    from diffusers import (
        ControlNetModel, StableDiffusionControlNetImg2ImgPipeline, StableDiffusionControlNetPipeline, TCDScheduler,
    )
    from PIL import ImageDraw

    from hypersd_desktop.engine.types import ControlSpec

    lora = hyper_lora("Hyper-SD15-1step-lora")
    edges = Image.new("RGB", (96, 96), "black")
    ImageDraw.Draw(edges).ellipse((20, 20, 76, 76), outline="white", width=3)
    buffer = io.BytesIO()
    edges.save(buffer, format="PNG")
    control = ControlSpec(str(controlnets["sd15"]), service.inputs.add(buffer.getvalue()), 0.8)
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, width=64, height=64, device="cpu", hires_scale=1.5, hires_strength=0.5,
                                controls=(control,))
    (made,) = service.generate(request)

    pipe = StableDiffusionControlNetPipeline.from_pretrained(
        tiny_sd15, controlnet=ControlNetModel.from_pretrained(controlnets["sd15"]))
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    again = StableDiffusionControlNetImg2ImgPipeline(**pipe.components)
    fitted = lambda size: ImageOps.fit(edges, size, Image.Resampling.LANCZOS)  # noqa: E731 - as the run fits it
    common = dict(prompt=PROMPT, num_inference_steps=4, guidance_scale=0, eta=1.0, controlnet_conditioning_scale=0.8)
    first = pipe(image=fitted((64, 64)), width=64, height=64, generator=torch.Generator("cpu").manual_seed(SEED),
                 **common).images[0]
    enlarged = ImageOps.fit(first, (96, 96), Image.Resampling.LANCZOS)
    expected = again(image=enlarged, control_image=fitted((96, 96)), strength=0.5,
                     generator=torch.Generator("cpu").manual_seed(SEED), **common).images[0]
    assert made.image.size == (96, 96)
    difference = np.abs(np.asarray(made.image, np.int16) - np.asarray(expected, np.int16))
    assert difference.max() <= 1, difference.max()
    plain = service.generate(request.replace(controls=()))[0]  # the ControlNet changed the image
    assert np.abs(np.asarray(plain.image, np.int16) - np.asarray(made.image, np.int16)).max() > 10


def test_a_hires_fix_with_a_t2i_adapter_steers_both_passes(service, tiny_sd15, hyper_lora, tmp_path):
    """A T2I-Adapter in a Hires fix reads its picture at each pass's size (64², then 96²): the image is the first
    pass steered, enlarged and made again from it with the adapter at the larger size (each pass run as a request of
    its own), and differs from the plain Hires fix's."""
    import io

    import tiny_models
    from PIL import ImageDraw

    from hypersd_desktop.engine.types import ControlSpec

    adapter = tiny_models.save_t2i_adapter(tmp_path / "t2iadapter-canny", "sd15")
    edges = Image.new("RGB", (96, 96), "black")
    ImageDraw.Draw(edges).ellipse((20, 20, 76, 76), outline="white", width=3)
    buffer = io.BytesIO()
    edges.save(buffer, format="PNG")
    control = ControlSpec(str(adapter), service.inputs.add(buffer.getvalue()), 1.0)
    lora = hyper_lora("Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, width=64, height=64, device="cpu", hires_scale=1.5, hires_strength=0.5,
                                controls=(control,))
    (made,) = service.generate(request)
    assert made.image.size == (96, 96)
    plain = service.generate(request.replace(controls=()))[0]
    assert np.abs(np.asarray(plain.image, np.int16) - np.asarray(made.image, np.int16)).max() > 10
    first = service.generate(request.replace(hires_scale=None))[0]  # the first pass, steered
    unsteered = service.generate(request.replace(hires_scale=None, controls=()))[0]
    assert np.abs(np.asarray(first.image, np.int16) - np.asarray(unsteered.image, np.int16)).max() > 10
    buffer = io.BytesIO()
    ImageOps.fit(first.image, (96, 96), Image.Resampling.LANCZOS).save(buffer, format="PNG")
    second = service.generate(request.replace(hires_scale=None, hires_strength=0.5, width=96, height=96,
                                              init_image=service.inputs.add(buffer.getvalue()), strength=0.5))[0]
    assert np.abs(np.asarray(second.image, np.int16) - np.asarray(made.image, np.int16)).max() <= 1


def test_hires_steps_run_that_many_steps_at_the_end_of_a_longer_schedule_as_a1111s_do(service, tiny_sd15,
                                                                                     hyper_lora):
    """A1111's "Hires steps" (written by it, Forge and reForge; reuse sets them) are the steps its second pass
    runs, of a schedule long enough that the strength's share of it is that many: 3 at 0.5 run the last 3 of 6.
    The reference: the image-to-image pipeline asked for 6 steps at strength 0.5."""
    lora = hyper_lora("Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                                seed=SEED, width=64, height=64, device="cpu", hires_scale=1.5, hires_strength=0.5,
                                hires_steps=3)
    progress = []
    (saved,) = service.run(request, on_progress=progress.append)
    (expected,) = two_passes(tiny_sd15, lora, 4, 1.5, 0.5, [SEED], second_steps=6)
    difference = np.abs(np.asarray(saved.result.image, np.int16) - np.asarray(expected, np.int16))
    assert difference.max() <= 1, difference.max()
    assert max(p.step for p in progress if p.stage == "Hires fix") == 3
    with Image.open(saved.path) as png:
        assert "Hires upscale: 1.5, Hires steps: 3, Hires upscaler: Lanczos" in png.text["parameters"]
    assert GenerationRequest.from_dict(read_request(saved.path)) == request
    assert saved.result.warnings == ()

    # 60 at 0.5 would need 120: the longest schedule there is runs its last 50 (TCD's is 50 long), and says so
    for changes, schedule in (({"loras": (), "guidance": 0.0, "scheduler": "ddim-trailing"}, 100), ({}, 50)):
        progress.clear()
        (long,) = service.generate(request.replace(hires_steps=60, steps=1, **changes), on_progress=progress.append)
        assert max(p.step for p in progress if p.stage == "Hires fix") == schedule // 2
        assert any(f"Hires steps 60 at strength 0.5 would need a schedule of over {schedule} steps" in warning
                   and f"ran the last {schedule // 2} of {schedule}" in warning for warning in long.warnings), \
            long.warnings


@pytest.mark.parametrize(("steps", "strength"), [(s, k / 20) for s in (1, 3, 10, 20, 28, 50) for k in range(1, 21)])
def test_a_hires_schedule_is_the_shortest_whose_strength_share_is_the_hires_steps(steps, strength):
    from hypersd_desktop.engine.types import MAX_STEPS, hires_schedule

    length = hires_schedule(steps, strength)
    if steps / strength <= MAX_STEPS - 1:
        assert int(length * strength) == steps and int((length - 1) * strength) < steps
    else:
        assert length == MAX_STEPS


@pytest.mark.parametrize(("changes", "message"), [
    ({"hires_scale": 1.0}, "above 1 and at most 4"),
    ({"hires_scale": 4.5}, "above 1 and at most 4"),
    ({"hires_strength": 0.0}, "strength must be above 0"),
    ({"init_image": "0" * 64}, "Hires fix enlarges an image made from the prompt"),
    ({"width": 2048, "height": 1024, "hires_scale": 3.0}, "over 4096 pixels on a side"),
    ({"hires_steps": 0}, "Hires steps must be between 1 and 100"),
    ({"hires_steps": 101}, "Hires steps must be between 1 and 100"),
    ({"hires_scale": None, "hires_steps": 10}, "choose its scale too"),
])
def test_a_hires_fix_that_cannot_run_is_refused_with_what_to_do(changes, message):
    with pytest.raises(InputError, match=message):
        GenerationRequest(prompt=PROMPT, base_model="model", **{"hires_scale": 2.0, **changes})


def test_generate_with_hires_from_the_command_line(tiny_sd15, hyper_lora, tmp_path):
    import json
    import shlex

    from cli_process import run_cli
    from tests.tiny_models import save_upscaler

    upscaler = save_upscaler(tmp_path / "models" / "2x-Compact.safetensors", "compact", scale=2)
    run = run_cli("generate", "--model", tiny_sd15, "--prompt", PROMPT, "--lora", hyper_lora("Hyper-SD15-1step-lora"),
                  "--steps", "2", "--width", "64", "--height", "64", "--hires", "1.5", "--hires-strength", "0.5",
                  "--hires-steps", "2", "--upscaler", upscaler, "--seed", "4", "--out", tmp_path, "--json",
                  "--hires-prompt", "a harbour at dawn: masts, rigging", "--hires-cfg", "2.5",
                  "--hires-negative", "fog")
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout.splitlines()[-1])
    with Image.open(made["path"]) as image:
        assert image.size == (96, 96) and "Hires upscale: 1.5" in image.text["parameters"]
        assert "Hires CFG Scale: 2.5" in image.text["parameters"]
    assert (made["width"], made["height"]) == (64, 64)  # the settings of the first pass, as A1111 reports them
    listing = json.loads(run_cli("gallery", "list", "--json", timeout=120).stdout)
    reuse = run_cli("gallery", "reuse", listing[0]["id"], timeout=120).stdout.strip()
    words = shlex.split(reuse)
    assert words[words.index("--hires") + 1] == "1.5" and words[words.index("--hires-strength") + 1] == "0.5"
    assert words[words.index("--hires-steps") + 1] == "2" and words[words.index("--upscaler") + 1] == str(upscaler)
    assert words[words.index("--hires-prompt") + 1] == "a harbour at dawn: masts, rigging"
    assert words[words.index("--hires-cfg") + 1] == "2.5" and words[words.index("--hires-negative") + 1] == "fog"
    again = run_cli(*words[1:], "--out", tmp_path, "--json")
    assert again.returncode == 0, again.stderr
    with Image.open(made["path"]) as first, Image.open(json.loads(again.stdout)["path"]) as second:
        assert np.array_equal(np.asarray(first), np.asarray(second))  # reuse makes the same image
    refused = run_cli("generate", "--model", tiny_sd15, "--prompt", PROMPT, "--hires", "5", timeout=120)
    assert refused.returncode != 0 and "Hires fix scale must be above 1 and at most 4" in refused.stderr
    for words, said in ((["--upscaler", str(upscaler)], "it goes with --hires"),
                        (["--hires", "2", "--upscaler", str(hyper_lora("Hyper-SD15-1step-lora"))],
                         "is a LoRA, not an upscaler")):
        refused = run_cli("generate", "--model", tiny_sd15, "--prompt", PROMPT, *words, timeout=120)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
