"""Images in: image-to-image, inpainting and ControlNet give the model card's diffusers images.

The reference side is the diffusers code a model card or the diffusers docs show for the mode: the
mode's pipeline class loaded from the folder, load_lora_weights + fuse_lora, TCD from the base
scheduler's config, the mask blurred with the pipeline's own mask processor, and the call; an inpainted
image is laid into the init image with `apply_overlay`, as the docs do to keep the unmasked area. The engine
gets the same images through its input store, by sha256. Tiny models, fp32, CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from hypersd_desktop.core.errors import ArchitectureMismatchError, InputError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import ControlSpec, GenerationRequest, LoraSpec
from hypersd_desktop.engine.inputs import open_inputs
from hypersd_desktop.engine.planning import plan
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.types import DetailPass, init_size
from pictures import SIZE, diffusers_image, edges_picture, init_picture, mask_picture, png

SEED = 77
PROMPT = "a lighthouse on a cliff"
CLASSES = {
    ("sd15", "img2img", False): "StableDiffusionImg2ImgPipeline",
    ("sd15", "inpaint", False): "StableDiffusionInpaintPipeline",
    ("sd15", "txt2img", True): "StableDiffusionControlNetPipeline",
    ("sd15", "img2img", True): "StableDiffusionControlNetImg2ImgPipeline",
    ("sdxl", "img2img", False): "StableDiffusionXLImg2ImgPipeline",
    ("sdxl", "inpaint", False): "StableDiffusionXLInpaintPipeline",
    ("sdxl", "txt2img", True): "StableDiffusionXLControlNetPipeline",
    ("sdxl", "img2img", True): "StableDiffusionXLControlNetImg2ImgPipeline",
}


def model_card_image(base, lora, mode, control_path, steps, call):
    import diffusers
    from diffusers import ControlNetModel, TCDScheduler

    architecture = "sdxl" if "xl" in base.name else "sd15"
    extra = {"controlnet": ControlNetModel.from_pretrained(control_path)} if control_path else {}
    pipe = getattr(diffusers, CLASSES[architecture, mode, control_path is not None]).from_pretrained(base, **extra)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    return diffusers_image(pipe, blur=4 if "mask_image" in call else None, prompt=PROMPT, num_inference_steps=steps,
                           guidance_scale=0, eta=1.0, generator=torch.Generator("cpu").manual_seed(SEED), **call)


# id: (mode, steps, strength, ControlNet scale or None)
CASES = {
    "img2img-strength-0.5": ("img2img", 4, 0.5, None),
    "img2img-strength-0.75": ("img2img", 4, 0.75, None),
    "inpaint": ("inpaint", 4, 0.9, None),
    "controlnet-canny": ("txt2img", 2, None, 0.5),  # the model card's ControlNet recipe: unified LoRA, TCD, scale 0.5
    "controlnet-scribble-demo": ("txt2img", 1, None, 1.0),  # the drawing demo's: 1 step, TCD, eta 1, scale 1
    "controlnet-img2img": ("img2img", 4, 0.75, 0.8),
}


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_two_controlnets_match_the_diffusers_code(architecture, tiny_sd15, tiny_sdxl, hyper_lora, controlnets,
                                                  tmp_path):
    """Several ControlNets at once, each with its own scale (diffusers 0.39 refused the old import of the class
    that holds them, so every request with two failed)."""
    import diffusers
    from diffusers import ControlNetModel, TCDScheduler

    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    net = controlnets[architecture]
    store = InputImages(tmp_path / "inputs")
    first, second = edges_picture(), init_picture()
    request = GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2, seed=SEED,
                                width=SIZE, height=SIZE,
                                controls=(ControlSpec(str(net), store.add(png(first)), 0.7),
                                          ControlSpec(str(net), store.add(png(second)), 0.4)))
    (result,) = TorchEngine(inputs=store).generate(request)

    pipe = getattr(diffusers, CLASSES[architecture, "txt2img", True]).from_pretrained(
        base, controlnet=[ControlNetModel.from_pretrained(net), ControlNetModel.from_pretrained(net)])
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    expected = diffusers_image(pipe, prompt=PROMPT, num_inference_steps=2, guidance_scale=0, eta=1.0,
                               generator=torch.Generator("cpu").manual_seed(SEED), image=[first, second],
                               controlnet_conditioning_scale=[0.7, 0.4], width=SIZE, height=SIZE)
    ours, theirs = np.asarray(result.image, dtype=np.int16), np.asarray(expected, dtype=np.int16)
    assert ours.std() > 5
    assert np.abs(ours - theirs).max() <= 1


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
@pytest.mark.parametrize("case", list(CASES))
def test_engine_matches_the_model_card_code(case, architecture, tiny_sd15, tiny_sdxl, hyper_lora, controlnets,
                                             tmp_path):
    mode, steps, strength, scale = CASES[case]
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    init, mask, edges = init_picture(), mask_picture(), edges_picture()
    request = GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=steps,
                                seed=SEED)
    call: dict = {}
    if mode in ("img2img", "inpaint"):
        request = request.replace(init_image=store.add(png(init)), strength=strength)
        call.update(image=init, strength=strength)
    else:
        request = request.replace(width=SIZE, height=SIZE)
        call.update(width=SIZE, height=SIZE)
    if mode == "inpaint":
        request = request.replace(mask_image=store.add(png(mask)), mask_blur=4)
        call.update(mask_image=mask, width=SIZE, height=SIZE)
    control_path = None
    if scale is not None:
        control_path = controlnets[architecture]
        ours = edges
        if case == "controlnet-canny":  # from a photo: the app's Canny edges, and the model card's own cv2 code
            import cv2

            from hypersd_desktop.engine.preprocess import canny

            ours = canny(init)
            found = cv2.Canny(np.array(init), 100, 200)[:, :, None]
            edges = Image.fromarray(np.concatenate([found, found, found], axis=2))
        request = request.replace(controls=(ControlSpec(str(control_path), store.add(png(ours)), scale),))
        call.update({"image" if mode == "txt2img" else "control_image": edges, "controlnet_conditioning_scale": scale})

    progress = []
    (result,) = TorchEngine(inputs=store).generate(request, on_progress=progress.append)
    expected = model_card_image(base, lora, mode, control_path, steps, call)

    ours = np.asarray(result.image, dtype=np.int16)
    theirs = np.asarray(expected, dtype=np.int16)
    assert ours.shape == theirs.shape == (SIZE, SIZE, 3)
    assert ours.std() > 5
    assert np.abs(ours - theirs).max() <= 1
    if mode == "inpaint":  # only what the mask paints changes: away from it, the init image's own pixels
        from PIL import ImageFilter

        kept = np.asarray(mask.filter(ImageFilter.GaussianBlur(4))) == 0  # the request's mask blur
        assert kept.mean() > 0.2
        assert np.array_equal(ours[kept], np.asarray(init, dtype=np.int16)[kept])
        assert np.abs(ours - np.asarray(init, dtype=np.int16))[np.asarray(mask) == 255].mean() > 10
    running = int(steps * strength) if strength else steps
    assert [p.step for p in progress] == list(range(1, running + 1))
    assert all(p.total_steps == running for p in progress)
    if scale is not None:  # the ControlNet changes the image: a pipeline that dropped it would not
        plain = TorchEngine(inputs=store).generate(request.replace(controls=()))[0]
        assert np.abs(np.asarray(plain.image, dtype=np.int16) - ours).max() > 10


def test_switching_modes_keeps_one_copy_of_the_weights(tiny_sd15, hyper_lora, controlnets, tmp_path):
    store = InputImages(tmp_path / "inputs")
    lora = hyper_lora("Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=2,
                                seed=SEED, width=SIZE, height=SIZE)
    engine = TorchEngine(inputs=store)
    engine.generate(request)
    loaded = engine._loaded
    unet = loaded.pipe.unet
    init = store.add(png(init_picture()))
    for changes in ({"init_image": init}, {"init_image": init, "mask_image": store.add(png(mask_picture()))},
                    {"controls": (ControlSpec(str(controlnets["sd15"]), store.add(png(edges_picture()))),)}, {}):
        engine.generate(request.replace(**changes))
        assert engine._loaded is loaded and engine._loaded.pipe.unet is unet, changes


def test_strength_under_one_step_lengthens_the_schedule_and_says_so(tiny_sd15, hyper_lora, tmp_path):
    digest = InputImages(tmp_path / "inputs").add(png(init_picture()))
    lora = hyper_lora("Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=1,
                                init_image=digest, strength=0.3)
    settings = plan(request, "sd15")
    assert (settings.steps, settings.running_steps) == (4, 1)
    assert any("leaves under one step to run" in warning for warning in settings.warnings)
    four = plan(request.replace(steps=4, strength=0.6), "sd15")
    assert (four.steps, four.running_steps, four.warnings) == (4, 2, ())
    assert plan(request.replace(init_image=None), "sd15").running_steps == 1


def test_a_strength_that_leaves_none_of_fixed_timesteps_is_refused_before_anything_runs(tiny_sdxl, tmp_path):
    """The Hyper-SDXL 1-step UNet runs timestep 800 alone: a later start has nothing to run, for an init image and
    for a Hires fix's second pass alike, which must be said before the first pass is made."""
    digest = InputImages(tmp_path / "inputs").add(png(init_picture()))
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sdxl), recipe="Hyper-SDXL-1step-Unet",
                                width=SIZE, height=SIZE)
    with pytest.raises(InputError, match="Strength 0.5 leaves none of the 1 fixed timesteps"):
        plan(request.replace(init_image=digest, strength=0.5), "sdxl")
    assert plan(request.replace(init_image=digest, strength=1.0), "sdxl").running_steps == 1
    with pytest.raises(InputError, match="Hires fix strength 0.5 leaves none of the 1 fixed timesteps of "
                                         "Hyper-SDXL-1step-Unet to run; raise it to at least 1"):
        plan(request.replace(hires_scale=2.0, hires_strength=0.5), "sdxl")
    assert plan(request.replace(hires_scale=2.0, hires_strength=1.0), "sdxl").timesteps == (800,)
    faces = DetailPass("vitpose-base-simple", "rtdetr_r50vd_coco_o365", strength=0.4)  # a face pass: the same
    with pytest.raises(InputError, match="The face pass's strength 0.4 leaves none of the 1 fixed timesteps of "
                                         "Hyper-SDXL-1step-Unet to run; raise it to at least 1"):
        plan(request.replace(face_detail=faces), "sdxl")
    assert plan(request.replace(face_detail=dataclasses.replace(faces, strength=1.0)), "sdxl").timesteps == (800,)


def test_input_images_that_do_not_fit_are_refused_with_what_to_do(tiny_sd15, hyper_lora, controlnets, tmp_path):
    store = InputImages(tmp_path / "inputs")
    lora = hyper_lora("Hyper-SD15-1step-lora")
    init = store.add(png(init_picture()))
    base = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=1,
                             init_image=init, strength=1.0)
    engine = TorchEngine(inputs=store)
    small_mask = store.add(png(Image.new("L", (32, 32), 255)))
    with pytest.raises(InputError, match="the mask must be a grayscale image of the same size"):
        engine.generate(base.replace(mask_image=small_mask))
    with pytest.raises(InputError, match="is not here"):
        engine.generate(base.replace(init_image="0" * 64))
    with pytest.raises(InputError, match="A mask needs an init image"):
        base.replace(init_image=None, mask_image=small_mask)
    with pytest.raises(InputError, match="start < end"):
        base.replace(controls=(ControlSpec("x", init, start=0.5, end=0.5),))
    with pytest.raises(InputError, match="not a ControlNet"):
        plan(base.replace(controls=(ControlSpec(str(tiny_sd15 / "unet"), init),)), "sd15")


@pytest.mark.parametrize(("picture", "model_side", "expected"), [
    ((64, 64), 512, (64, 64)),
    ((900, 601), 512, (896, 600)),  # sides cut to multiples of 8, nothing scaled
    ((768, 768), 512, (768, 768)),  # 2.25 times SD1.5's area: still its own size
    ((4032, 3024), 512, (584, 440)),  # a phone photo: about the model's area, its aspect kept
    ((4032, 3024), 1024, (1176, 880)),
    ((3024, 4032), 1024, (880, 1176)),
    ((30, 500), 512, (64, 496)),
    ((8000, 900), 0, (4096, 456)),  # no model size: only MAX_SIDE limits it
])
def test_init_size(picture, model_side, expected):
    assert init_size(picture, model_side) == expected


def test_any_picture_starts_a_run_fitted_to_its_size(tiny_sd15, hyper_lora, controlnets, tmp_path):
    """A picture of another shape than the size asked, with sides that are not multiples of 8, or far larger
    than the model's size, starts a run: cut about the centre to the run's aspect ratio and scaled to it
    (Pillow's ImageOps.fit), its mask with it, and a control image too. The run equals one from the fitted
    pictures."""
    from PIL import ImageOps

    store = InputImages(tmp_path / "inputs")
    lora = hyper_lora("Hyper-SD15-1step-lora")
    base = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                             seed=SEED, strength=0.75)
    engine = TorchEngine(inputs=store)
    odd = init_picture(100).crop((0, 10, 90, 78))  # 90 × 68
    odd_mask = mask_picture(100).crop((0, 10, 90, 78))
    for asked, size in (((None, None), (88, 64)), ((64, 96), (64, 96))):
        request = base.replace(init_image=store.add(png(odd)), mask_image=store.add(png(odd_mask)),
                               width=asked[0], height=asked[1])
        (result,) = engine.generate(request)
        fitted = base.replace(init_image=store.add(png(ImageOps.fit(odd, size, Image.Resampling.LANCZOS))),
                              mask_image=store.add(png(ImageOps.fit(odd_mask, size, Image.Resampling.LANCZOS))))
        (expected,) = engine.generate(fitted)
        assert result.image.size == expected.image.size == size
        assert np.abs(np.asarray(result.image, np.int16) - np.asarray(expected.image, np.int16)).max() == 0
        assert (result.settings.width, result.settings.height) == size
    wide_edges = edges_picture(100).crop((0, 20, 100, 70))  # 100 × 50, for a 64 × 64 run
    control = base.replace(width=SIZE, height=SIZE, steps=1,
                           controls=(ControlSpec(str(controlnets["sd15"]), store.add(png(wide_edges))),))
    fitted = ImageOps.fit(wide_edges, (SIZE, SIZE), Image.Resampling.LANCZOS)
    expected = engine.generate(control.replace(controls=(dataclasses.replace(control.controls[0], image=store.add(png(fitted))),)))
    assert np.asarray(engine.generate(control)[0].image).tolist() == np.asarray(expected[0].image).tolist()
    photo = base.replace(init_image=store.add(png(init_picture(64).resize((2000, 1500)))))
    sources = open_inputs(photo, store, *(plan(photo, "sd15").width,) * 2)  # a run without a size: the model's 512²
    assert (sources.width, sources.height) == sources.init.size == (584, 440)


def test_a_controlnet_for_the_other_architecture_is_refused(tiny_sd15, controlnets, tmp_path):
    import json
    import shutil

    folder = tmp_path / "sdxl-canny"
    shutil.copytree(controlnets["sd15"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 2048}))
    digest = InputImages(tmp_path / "inputs").add(png(edges_picture()))
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), controls=(ControlSpec(str(folder), digest),))
    with pytest.raises(ArchitectureMismatchError, match="is for SDXL; the base model is SD1.5"):
        plan(request, "sd15")


def test_the_input_store_keeps_bytes_once_and_refuses_what_is_no_image(tmp_path):
    store = InputImages(tmp_path / "inputs")
    data = png(init_picture())
    first, second = store.add(data), store.add(data)
    assert first == second and len(list((tmp_path / "inputs").iterdir())) == 1
    assert store.read(first) == data
    with pytest.raises(InputError, match="cannot be read as an image"):
        store.add(b"not an image at all")
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent: reads as the white a canvas shows
    assert store.open(store.add(png(rgba))).getpixel((0, 0)) == (255, 255, 255)


def test_a_camera_jpeg_carrying_more_pictures_is_a_jpeg_and_other_formats_are_named(tmp_path):
    """Cameras and phones write JPEGs with a preview or depth map in MPF segments, which Pillow opens as MPO."""
    import io

    store = InputImages(tmp_path / "inputs")
    photo, preview = init_picture(), Image.new("RGB", (16, 16), "black")
    buffer = io.BytesIO()
    photo.save(buffer, format="MPO", save_all=True, append_images=[preview])
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        assert opened.format == "MPO"
    digest = store.add(buffer.getvalue())
    assert store.find(digest).suffix == ".jpg"
    assert store.open(digest).size == photo.size
    buffer = io.BytesIO()
    photo.save(buffer, format="ICO")
    with pytest.raises(InputError, match="The image is an ICO file; use PNG, JPEG"):
        store.add(buffer.getvalue())
    # an iPhone's HEIC photo begins with its ISO media file type box (ISO/IEC 23008-12): brand heic, then its
    # compatible brands; a file with nothing after them is named for what it is (tests/test_photo_formats.py
    # reads real ones)
    ftyp = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1MiHEmiafheic"
    heic = len(ftyp + b"1234").to_bytes(4, "big") + ftyp + b"\x00\x00\x00\x22meta" + bytes(30)
    with pytest.raises(InputError, match="is a HEIC photo .* cannot be decoded; it may be damaged"):
        store.add(heic)


def test_a_drawing_reaches_the_controlnet_as_white_strokes_on_black(tiny_sd15, hyper_lora, controlnets, tmp_path,
                                                                   monkeypatch):
    """The Draw tab sends black strokes on white with the scribble preprocessor; the ControlNet's
    conditioning image (diffusers scales it to 0–1) must be 1 on the strokes and 0 elsewhere."""
    store = InputImages(tmp_path / "inputs")
    drawing = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(drawing).rectangle((16, 16, 47, 23), fill="black")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), width=SIZE, height=SIZE, seed=SEED,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),), steps=1,
                                controls=(ControlSpec(str(controlnets["sd15"]), store.add(png(drawing)),
                                                      preprocessor="scribble"),))
    from hypersd_desktop.engine import modes

    seen = []
    load = modes.load_controlnet

    def watched(path, dtype, base_unet_config, unet=None):  # the engine's ControlNet, with a look at what it is given
        model = load(path, dtype, base_unet_config, unet)
        model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["controlnet_cond"]),
                                        with_kwargs=True)
        return model

    monkeypatch.setattr(modes, "load_controlnet", watched)
    TorchEngine(inputs=store).generate(request)
    condition = seen[0][0].mean(dim=0)  # the first image of the batch, averaged over RGB
    assert condition[16:24, 16:48].min() > 0.99  # the stroke: white
    assert condition[:12].max() < 0.01 and condition[30:].max() < 0.01  # the paper: black


def test_controlnets_load_as_downloaded(controlnets, tmp_path):
    """The catalog downloads the fp16 variant's name (diffusion_pytorch_model.fp16.safetensors); the library
    may name the weights file itself. (Single files of other layouts: test_controlnet_files.py.)"""
    import shutil

    from safetensors.torch import load_file

    from hypersd_desktop.engine.modes import load_controlnet

    folder = tmp_path / "control_v11p_sd15_scribble"
    shutil.copytree(controlnets["sd15"], folder)
    (folder / "diffusion_pytorch_model.safetensors").rename(folder / "diffusion_pytorch_model.fp16.safetensors")
    expected = load_file(controlnets["sd15"] / "diffusion_pytorch_model.safetensors")
    for path in (folder, folder / "diffusion_pytorch_model.fp16.safetensors"):
        model = load_controlnet(path, torch.float32)
        assert all(torch.equal(model.state_dict()[key], value) for key, value in expected.items())


def test_the_mode_pipeline_is_built_once_for_a_run_of_requests_of_one_mode(tiny_sd15, hyper_lora, controlnets,
                                                                          tmp_path, monkeypatch):
    """The Draw tab asks for the same mode and ControlNet after each stroke: `from_pipe` runs once for them."""
    from hypersd_desktop.engine import modes

    built = []
    build = modes.mode_pipeline
    monkeypatch.setattr(modes, "mode_pipeline", lambda *args: built.append(args[2].mode) or build(*args))
    store = InputImages(tmp_path / "inputs")
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), steps=1, seed=SEED, width=SIZE, height=SIZE,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),))
    engine = TorchEngine(inputs=store)
    for k in range(3):  # three strokes: three drawings, one ControlNet
        drawing = edges_picture().rotate(30 * k)
        control = ControlSpec(str(controlnets["sd15"]), store.add(png(drawing)), preprocessor="scribble")
        first = engine.generate(request.replace(controls=(control,)))[0]
    engine.generate(request.replace(init_image=store.add(png(init_picture()))))
    assert built == ["txt2img", "img2img"]
    again = engine.generate(request.replace(controls=(control,)))[0]  # back to the ControlNet: built again, same image
    assert built == ["txt2img", "img2img", "txt2img"]
    assert np.array_equal(np.asarray(again.image), np.asarray(first.image))


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_every_mode_runs_on_the_weights_as_loaded(architecture, tiny_sd15, tiny_sdxl, hyper_lora, controlnets,
                                                  tmp_path):
    """Image-to-image, inpainting and ControlNets share the loaded weights in the dtypes the engine chose, and leave
    them so. diffusers' `from_pipe` moved every shared part to fp32 by default (on CUDA an fp16 UNet became fp32),
    and its SDXL image-to-image and inpainting moved the stock VAE to fp32 and back to the UNet's dtype (on CUDA an
    fp16 VAE, which overflows); either way the weights became new tensors under recorded graphs. In bf16 on the CPU
    both show."""
    from hypersd_desktop.engine.torch_engine import lora_components

    store = InputImages(tmp_path / "inputs")
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2, seed=SEED,
                                width=SIZE, height=SIZE, dtype="bf16")
    engine = TorchEngine(inputs=store)
    before = engine.generate(request)[0]
    pipe = engine._loaded.pipe
    parts = {**lora_components(pipe), "vae": pipe.vae}

    def weights():
        return {name: (part.dtype, [p.data_ptr() for p in part.parameters()]) for name, part in parts.items()}

    loaded = weights()
    assert {dtype for dtype, _ in loaded.values()} == {torch.bfloat16}
    init, mask = store.add(png(init_picture())), store.add(png(mask_picture()))
    control = ControlSpec(str(controlnets[architecture]), store.add(png(edges_picture())), 0.8)
    for other in (request.replace(init_image=init, strength=0.5),
                  request.replace(init_image=init, mask_image=mask, strength=0.9),
                  request.replace(controls=(control,)),
                  request.replace(init_image=init, strength=0.75, controls=(control,))):
        image = np.asarray(engine.generate(other)[0].image, dtype=np.int16)
        assert image.std() > 5
        assert weights() == loaded, other.mode
    after = engine.generate(request)[0]
    assert np.array_equal(np.asarray(after.image), np.asarray(before.image))


def test_a_vae_in_another_dtype_than_the_pipelines_encodes_in_its_own(tiny_sdxl):
    """A VAE kept in fp32 beside a bf16 UNet (MPS keeps it so) encodes the pipeline's bf16 pixels in fp32 and hands
    the latents back in bf16, sampled as an fp32 encode samples them; its `force_upcast` mark and `encode` are as
    before afterwards."""
    from diffusers import AutoencoderKL
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import retrieve_latents

    from hypersd_desktop.engine.modes import vae_as_placed

    vae = AutoencoderKL.from_pretrained(tiny_sdxl / "vae")
    pixels = torch.from_numpy(np.asarray(init_picture(), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    pixels = pixels.to(torch.bfloat16)
    assert vae.config.force_upcast
    with torch.no_grad():
        expected = retrieve_latents(vae.encode(pixels.float()), torch.Generator().manual_seed(3)).to(torch.bfloat16)
        with vae_as_placed(vae):
            assert not vae.config.force_upcast
            latents = retrieve_latents(vae.encode(pixels), torch.Generator().manual_seed(3))
            mode = retrieve_latents(vae.encode(pixels), sample_mode="argmax")
    assert latents.dtype == mode.dtype == torch.bfloat16
    assert torch.equal(latents, expected)
    assert not torch.equal(latents, mode)
    assert vae.config.force_upcast and "encode" not in vae.__dict__ and vae.dtype == torch.float32


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_every_mode_runs_with_the_vae_in_another_dtype_than_the_unet(architecture, tiny_sd15, tiny_sdxl, hyper_lora,
                                                                     controlnets, tmp_path, monkeypatch):
    """MPS keeps the VAE in fp32 beside an fp16 UNet, as GPUs before Ampere do for SDXL's stock VAE; here bf16
    stands in for fp16. Each mode encodes its init image with the VAE in fp32 and denoises in bf16, and the VAE
    stays fp32."""
    from hypersd_desktop.engine import devices

    policy = devices.placement_on
    monkeypatch.setattr(devices, "placement_on", lambda device, dtype, *rest, **options: dataclasses.replace(
        policy(device, "bf16", *rest, **options), vae_dtype="fp32"))
    store = InputImages(tmp_path / "inputs")
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    request = GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2, seed=SEED,
                                width=SIZE, height=SIZE)
    init, mask = store.add(png(init_picture())), store.add(png(mask_picture()))
    control = ControlSpec(str(controlnets[architecture]), store.add(png(edges_picture())), 0.8)
    engine = TorchEngine(inputs=store)
    for other in (request.replace(init_image=init, strength=0.5),
                  request.replace(init_image=init, mask_image=mask, strength=0.9),
                  request.replace(init_image=init, strength=0.75, controls=(control,))):
        image = np.asarray(engine.generate(other)[0].image, dtype=np.int16)
        assert image.std() > 5
        pipe = engine._loaded.pipe
        assert (pipe.unet.dtype, pipe.vae.dtype) == (torch.bfloat16, torch.float32)
