"""The face and hand passes (ADetailer's): the image made, then each face found in it inpainted on its own into the
image the face before left, only the masked area, at the pass's strength, seed and prompt; then each hand likewise.
The reference makes the same inpaintings as a user would ask for them (init image, the face's or hand's mask, only
masked), one after the other. The faces and hands are the tiny pose models' (random weights: random keypoints,
scored about 0.1 to 0.3). Tiny models, fp32, CPU."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageFilter

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import png_data
from hypersd_desktop.engine.body_parts import part_boxes, part_mask
from hypersd_desktop.engine.pose import PoseEstimator
from hypersd_desktop.engine.types import DetailPass, GenerationRequest, LoraSpec
from hypersd_desktop.gallery.metadata import read_request

PROMPT = "two friends on a bench"
SEED = 12


@pytest.fixture
def made(tiny_sd15, hyper_lora, pose_models):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    model, detector = pose_models
    faces = DetailPass(str(model), str(detector), strength=0.5, prompt="freckles", confidence=0.1, padding=8)
    return GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=4,
                             seed=SEED, width=128, height=96, device="cpu", face_detail=faces)


def inpainted_faces(service, request: GenerationRequest, plain: Image.Image, seed: int,
                    part: str = "face") -> tuple[Image.Image, list]:
    """The image a user makes from `plain` by inpainting each face (`part` "face") or hand ("hand") the pose models
    find, left to right: its mask, only the masked area at the image's size, the pass's strength, padding, prompt
    (else the image's) and seed (+ 1 a face)."""
    wanted = getattr(request, f"{part}_detail")
    people = PoseEstimator().keypoints(plain, wanted.model, wanted.detector, "cpu")
    boxes = part_boxes(part, people, plain.size, wanted.confidence)
    image = plain
    for number, box in enumerate(boxes):
        ask = GenerationRequest(prompt=wanted.prompt or request.prompt, base_model=request.base_model,
                                loras=request.loras, steps=wanted.steps or 4, seed=seed + number, device="cpu",
                                guidance=wanted.guidance, backend=request.backend, strength=wanted.strength,
                                width=wanted.width or plain.width, height=wanted.height or plain.height,
                                init_image=service.inputs.hold(png_data(image)),
                                mask_image=service.inputs.hold(png_data(part_mask(plain.size, box))),
                                masked_padding=wanted.padding, mask_blur=wanted.mask_blur)
        (result,) = service.generate(ask)
        image = result.image
    return image, boxes


def test_each_face_found_is_inpainted_in_turn_and_the_png_says_so_as_adetailer(service, made):
    progress = []
    (saved,) = service.run(made, on_progress=progress.append)
    (plain,) = service.generate(made.replace(face_detail=None))
    expected, boxes = inpainted_faces(service, made, plain.image, SEED)
    assert len(boxes) >= 2, "the tiny models find faces at this confidence"
    assert np.array_equal(np.asarray(saved.result.image), np.asarray(expected))

    # the faces (their masks, and as far as the blur of their edges reaches) are repainted; the rest is the image
    covered = Image.new("L", plain.image.size, 0)
    for box in boxes:
        covered.paste(255, mask=part_mask(plain.image.size, box))
    reached = np.asarray(covered.filter(ImageFilter.GaussianBlur(made.face_detail.mask_blur))) > 0
    before, after = (np.asarray(image, np.int16) for image in (plain.image, saved.result.image))
    assert np.array_equal(before[~reached], after[~reached])
    assert np.abs(before - after)[np.asarray(covered) > 0].mean() > 5

    with Image.open(saved.path) as png:
        settings = png.text["parameters"].splitlines()[-1]
    assert ("ADetailer model: face from pose (vitpose-base-simple), ADetailer prompt: freckles, ADetailer confidence: "
            "0.1, ADetailer dilate erode: 0, ADetailer mask blur: 4, ADetailer denoising strength: 0.5, ADetailer "
            "inpaint only masked: True, ADetailer inpaint padding: 8") in settings
    assert "Denoising strength" not in settings.replace("ADetailer denoising strength", "")  # an image from the prompt
    assert GenerationRequest.from_dict(read_request(saved.path)) == made
    stages = [p.stage for p in progress if p.stage.startswith("Detailing")]
    assert stages[0] == f"Detailing faces (1 of {len(boxes)})" and stages[-1] == f"Detailing faces ({len(boxes)} of " \
                                                                                  f"{len(boxes)})"
    again = service.generate(made)  # reuse: the same image
    assert np.array_equal(np.asarray(again[0].image), np.asarray(saved.result.image))


@pytest.mark.parametrize("backend", ["auto", "torch"])  # PyTorch runs a batch job's requests as one batch
def test_a_batch_details_each_image_with_its_own_seed_and_prompt(service, made, backend):
    """Image k of a batch (seed + k) has its faces made with seeds seed + k, + k + 1 …; a batch job's images (one
    batch of one-image requests, each its own prompt) are made alike, each face with its own image's prompt where
    the pass has none of its own."""
    made = made.replace(backend=backend)
    plain = service.generate(made.replace(face_detail=None, batch_size=2))  # a batch's images, as the batch makes them
    for number, result in enumerate(service.generate(made.replace(batch_size=2))):
        expected, _boxes = inpainted_faces(service, made, plain[number].image, SEED + number)
        assert np.array_equal(np.asarray(result.image), np.asarray(expected))
    bare = made.replace(face_detail=dataclasses.replace(made.face_detail, prompt=""))  # the faces: each image's
    requests = [bare, bare.replace(prompt="a crowd", seed=SEED + 1)]
    plain = service.generate_batch([request.replace(face_detail=None) for request in requests])
    for request, made_plain, together in zip(requests, plain, service.generate_batch(requests)):
        expected, _boxes = inpainted_faces(service, request, made_plain.image, request.seed)
        assert np.array_equal(np.asarray(together.image), np.asarray(expected))


def test_an_image_without_faces_is_kept_and_the_warning_says_so(service, made):
    sure = made.replace(face_detail=DetailPass(made.face_detail.model, made.face_detail.detector, confidence=1.0))
    (result,) = service.generate(sure)
    (plain,) = service.generate(made.replace(face_detail=None))
    assert np.array_equal(np.asarray(result.image), np.asarray(plain.image))
    assert f"No face was found in the image of seed {SEED}, so the face pass left it as it was." in result.warnings


def test_what_a_face_pass_warns_of_is_said_to_be_the_face_passs(service, made):
    """One step at strength 0.5 leaves under a step to run: each face runs the last step of a 2-step schedule, and
    the warning says it is the face pass's (once for all the faces)."""
    (result,) = service.generate(made.replace(steps=1))
    assert [warning for warning in result.warnings if "leaves under one step" in warning] == [
        "Face pass: Strength 0.5 × 1 step leaves under one step to run, so the last step of a 2-step schedule ran "
        "instead."]


def test_a_face_pass_that_cannot_run_keeps_the_image_and_says_why(service, made, pose_models, tmp_path):
    """A pose model damaged on disk since it was installed: the image made is not lost to the face pass."""
    import shutil

    damaged = shutil.copytree(pose_models[0], tmp_path / "vitpose-base-simple")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (result,) = service.generate(made.replace(face_detail=dataclasses.replace(made.face_detail, model=str(damaged))))
    (plain,) = service.generate(made.replace(face_detail=None))
    assert np.array_equal(np.asarray(result.image), np.asarray(plain.image))
    (said,) = [warning for warning in result.warnings if "face pass did not run" in warning]
    assert said.startswith("The face pass did not run, so the image is as it was made: The pose model in ") and \
        "cannot be read" in said, said


def test_a_hires_fix_is_detailed_after_its_second_pass(service, made):
    hires = made.replace(hires_scale=1.5, hires_strength=0.5)
    (result,) = service.generate(hires)
    (plain,) = service.generate(hires.replace(face_detail=None))
    assert result.image.size == plain.image.size == (192, 144)
    expected, _boxes = inpainted_faces(service, made, plain.image, SEED)
    assert np.array_equal(np.asarray(result.image), np.asarray(expected))


def test_a_pass_with_its_own_steps_guidance_and_size_runs_with_them_and_the_png_says_so_as_adetailer(service,
                                                                                                         made):
    """ADetailer's "use separate steps", "use separate CFG scale" and "use inpaint width height": each face made
    with the pass's own, as a user would inpaint it with them."""
    own = made.replace(face_detail=dataclasses.replace(made.face_detail, steps=2, guidance=1.5, width=96, height=64))
    (saved,) = service.run(own)
    (plain,) = service.generate(made.replace(face_detail=None))
    expected, boxes = inpainted_faces(service, own, plain.image, SEED)
    assert boxes and np.array_equal(np.asarray(saved.result.image), np.asarray(expected))
    (alike,) = service.generate(made)
    assert not np.array_equal(np.asarray(alike.image), np.asarray(saved.result.image))
    with Image.open(saved.path) as png:
        settings = png.text["parameters"].splitlines()[-1]
    assert ("ADetailer inpaint padding: 8, ADetailer use inpaint width height: True, ADetailer inpaint width: 96, "
            "ADetailer inpaint height: 64, ADetailer use separate steps: True, ADetailer steps: 2, ADetailer use "
            "separate CFG scale: True, ADetailer CFG scale: 1.5") in settings
    assert GenerationRequest.from_dict(read_request(saved.path)) == own
    from hypersd_desktop.gallery.formats.common import detail_pass
    from hypersd_desktop.gallery.gallery import read_metadata

    found = detail_pass(read_metadata(saved.path)[0], "face")  # as another tool's image is read
    assert (found.steps, found.guidance, found.size) == (2, 1.5, (96, 64))


@pytest.mark.parametrize(("part", "changes", "words"), [
    ("face", {"strength": 0.0}, "The face pass's strength must be above 0"),
    ("face", {"padding": 300}, "padding around a face"),
    ("face", {"confidence": 1.5}, "confidence must be between 0 and 1"), ("face", {"mask_blur": -1}, "mask's blur"),
    ("face", {"prompt": "x" * 20_001}, "The face prompt is 20,001 characters"),
    ("hand", {"strength": 1.5}, "The hand pass's strength must be above 0"),
    ("hand", {"padding": -1}, "padding around a hand"),
    ("hand", {"negative_prompt": "x" * 20_001}, "The hand negative prompt is 20,001 characters"),
    ("face", {"steps": 0}, "The face pass's steps must be between 1 and 100"),
    ("hand", {"guidance": 31.0}, "The hand pass's guidance must be between 0 and 30"),
    ("face", {"width": 512}, "The face pass's own size needs both a width and a height"),
    ("face", {"width": 500, "height": 512}, "multiples of 8 from 64 to 4096; got 500 × 512"),
])
def test_a_detail_pass_out_of_range_is_refused(made, part, changes, words):
    with pytest.raises(InputError, match=words):
        made.replace(**{f"{part}_detail": dataclasses.replace(made.face_detail, **changes)})


def test_the_hands_are_made_after_the_faces_each_in_turn_and_the_png_says_so_as_adetailer(service, made):
    """Faces first, then each hand found in the image the faces left (its wrist and elbow seen), with the hand
    pass's own strength, padding and prompt, hand k with the image's seed + k; the PNG writes the hand pass as
    ADetailer writes its second, and reuse makes the image again."""
    hands = DetailPass(made.face_detail.model, made.face_detail.detector, strength=0.6, prompt="five fingers",
                       confidence=0.1, padding=12)
    both = made.replace(hand_detail=hands)
    progress = []
    (saved,) = service.run(both, on_progress=progress.append)
    (plain,) = service.generate(made.replace(face_detail=None))
    faced, _faces = inpainted_faces(service, both, plain.image, SEED)
    expected, boxes = inpainted_faces(service, both, faced, SEED, part="hand")
    assert len(boxes) >= 2, "the tiny models find hands at this confidence"
    assert np.array_equal(np.asarray(saved.result.image), np.asarray(expected))
    assert not np.array_equal(np.asarray(faced), np.asarray(expected))

    with Image.open(saved.path) as png:
        settings = png.text["parameters"].splitlines()[-1]
    assert ("ADetailer model: face from pose (vitpose-base-simple), ADetailer prompt: freckles, ADetailer confidence: "
            "0.1, ADetailer dilate erode: 0, ADetailer mask blur: 4, ADetailer denoising strength: 0.5, ADetailer "
            "inpaint only masked: True, ADetailer inpaint padding: 8, ADetailer model 2nd: hand from pose "
            "(vitpose-base-simple), ADetailer prompt 2nd: five fingers, ADetailer confidence 2nd: 0.1, ADetailer "
            "dilate erode 2nd: 0, ADetailer mask blur 2nd: 4, ADetailer denoising strength 2nd: 0.6, ADetailer inpaint "
            "only masked 2nd: True, ADetailer inpaint padding 2nd: 12") in settings
    assert GenerationRequest.from_dict(read_request(saved.path)) == both
    stages = list(dict.fromkeys(p.stage for p in progress if p.stage.startswith("Detailing")))
    assert stages[-len(boxes):] == [f"Detailing hands ({number} of {len(boxes)})" for number in
                                    range(1, len(boxes) + 1)]
    assert stages[0].startswith("Detailing faces (1 of ")

    alone = made.replace(face_detail=None, hand_detail=hands)  # the hand pass alone is ADetailer's first
    (result,) = service.generate(alone)
    expected, _boxes = inpainted_faces(service, alone, plain.image, SEED, part="hand")
    assert np.array_equal(np.asarray(result.image), np.asarray(expected))
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import detail_pass
    from hypersd_desktop.gallery.metadata import a1111_parameters
    from hypersd_desktop.worker.service import image_parameters

    text = a1111_parameters(image_parameters(result, service.hashes))
    assert "ADetailer model: hand from pose (vitpose-base-simple), ADetailer prompt: five fingers" in text
    assert detail_pass(parse_a1111(text), "hand").strength == 0.6 and detail_pass(parse_a1111(text), "face") is None


def test_a_hand_pass_that_cannot_run_keeps_the_image_the_face_pass_left(service, made, pose_models, tmp_path):
    import shutil

    damaged = shutil.copytree(pose_models[0], tmp_path / "vitpose-base-simple")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    hands = DetailPass(str(damaged), made.face_detail.detector, confidence=0.1)
    (result,) = service.generate(made.replace(hand_detail=hands))
    (faced,) = service.generate(made)
    assert np.array_equal(np.asarray(result.image), np.asarray(faced.image))
    (said,) = [warning for warning in result.warnings if "hand pass did not run" in warning]
    assert said.startswith("The hand pass did not run, so the image is as the face pass left it: The pose model in ")


def test_sep_gives_each_face_its_own_prompt_and_skip_leaves_one(service, made):
    """ADetailer's `[SEP]`, `[PROMPT]` and `[SKIP]` in the pass's prompt: the first face is left as it is, the
    second is made with the image's prompt and its own words, and its seed is still the image's + 1."""
    split = made.replace(face_detail=dataclasses.replace(made.face_detail, prompt="[SKIP] [SEP] [PROMPT], freckles"))
    (result,) = service.generate(split)
    (plain,) = service.generate(made.replace(face_detail=None))
    people = PoseEstimator().keypoints(plain.image, made.face_detail.model, made.face_detail.detector, "cpu")
    boxes = part_boxes("face", people, plain.image.size, made.face_detail.confidence)
    assert len(boxes) >= 2
    image = plain.image
    for number, box in enumerate(boxes[1:], start=1):
        ask = GenerationRequest(prompt=f"{PROMPT}, freckles", base_model=made.base_model, loras=made.loras, steps=4,
                                seed=SEED + number, device="cpu", strength=0.5, width=image.width,
                                height=image.height, init_image=service.inputs.hold(png_data(image)),
                                mask_image=service.inputs.hold(png_data(part_mask(image.size, box))),
                                masked_padding=made.face_detail.padding, mask_blur=made.face_detail.mask_blur)
        (image,) = (made_now.image for made_now in service.generate(ask))
    assert np.array_equal(np.asarray(result.image), np.asarray(image))


def test_only_the_largest_are_repainted_when_asked(service, made):
    """ADetailer's "mask only top k largest": the largest face alone is made again (with the image's seed), the
    PNG says so as ADetailer does, and reading it back asks for the same."""
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import detail_pass
    from hypersd_desktop.gallery.metadata import a1111_parameters
    from hypersd_desktop.worker.service import image_parameters

    largest = made.replace(face_detail=dataclasses.replace(made.face_detail, largest=1))
    (result,) = service.generate(largest)
    (plain,) = service.generate(made.replace(face_detail=None))
    people = PoseEstimator().keypoints(plain.image, made.face_detail.model, made.face_detail.detector, "cpu")
    boxes = part_boxes("face", people, plain.image.size, made.face_detail.confidence)
    assert len(boxes) >= 2 and len({box.area for box in boxes}) == len(boxes)
    biggest = max(boxes, key=lambda box: box.area)
    ask = GenerationRequest(prompt="freckles", base_model=made.base_model, loras=made.loras, steps=4, seed=SEED,
                            device="cpu", strength=0.5, width=plain.image.width, height=plain.image.height,
                            init_image=service.inputs.hold(png_data(plain.image)),
                            mask_image=service.inputs.hold(png_data(part_mask(plain.image.size, biggest))),
                            masked_padding=made.face_detail.padding, mask_blur=made.face_detail.mask_blur)
    (expected,) = service.generate(ask)
    assert np.array_equal(np.asarray(result.image), np.asarray(expected.image))
    text = a1111_parameters(image_parameters(result, service.hashes))
    assert ("ADetailer confidence: 0.1, ADetailer mask only top k largest: 1, ADetailer dilate erode: 0, ADetailer "
            "mask blur: 4") in text
    assert detail_pass(parse_a1111(text), "face").largest == 1
    with pytest.raises(InputError, match="repaints from 1 to 100 of the largest faces"):
        made.replace(face_detail=dataclasses.replace(made.face_detail, largest=-1))


def test_a_picture_alone_has_its_faces_and_hands_made_again_and_nothing_else(service, made):
    """`detail_only` (ADetailer's "skip img2img"): an existing picture's faces, then hands, made again as a face
    pass after a generation makes them (the same inpaintings), the rest of it untouched; the PNG says no img2img
    strength; a picture with nothing found gives no new image and says why."""
    hands = DetailPass(made.face_detail.model, made.face_detail.detector, strength=0.6, confidence=0.1)
    (plain,) = service.generate(made.replace(face_detail=None))
    picture = service.inputs.hold(png_data(plain.image))
    alone = made.replace(init_image=picture, hand_detail=hands, detail_only=True, seed=SEED + 5)
    (saved,) = service.run(alone)
    faced, _faces = inpainted_faces(service, alone, plain.image, SEED + 5)
    expected, boxes = inpainted_faces(service, alone, faced, SEED + 5, part="hand")
    assert boxes and np.array_equal(np.asarray(saved.result.image), np.asarray(expected))
    assert (saved.result.settings.width, saved.result.settings.height) == plain.image.size
    with Image.open(saved.path) as png:
        settings = png.text["parameters"].splitlines()[-1]
    assert "Denoising strength" not in settings.replace("ADetailer denoising strength", "")
    assert "ADetailer model 2nd: hand from pose" in settings and f"Seed: {SEED + 5}," in settings
    assert GenerationRequest.from_dict(read_request(saved.path)) == alone

    unsure = alone.replace(face_detail=dataclasses.replace(made.face_detail, confidence=1.0),
                           hand_detail=dataclasses.replace(hands, confidence=1.0))
    with pytest.raises(InputError, match="No face or hand was found in the picture, so nothing was made"):
        service.generate(unsure)
    for wrong in ({"init_image": None}, {"face_detail": None, "hand_detail": None}, {"batch_size": 2}):
        with pytest.raises(InputError, match="Detailing a picture alone makes its faces or hands again"):
            alone.replace(**wrong)


def test_a_pictures_hand_pass_that_cannot_run_keeps_what_its_face_pass_made(service, made, pose_models, tmp_path):
    import shutil

    damaged = shutil.copytree(pose_models[0], tmp_path / "vitpose-base-simple")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (plain,) = service.generate(made.replace(face_detail=None))
    alone = made.replace(init_image=service.inputs.hold(png_data(plain.image)), detail_only=True,
                         hand_detail=DetailPass(str(damaged), made.face_detail.detector, confidence=0.1))
    (result,) = service.generate(alone)
    faced, _boxes = inpainted_faces(service, alone, plain.image, SEED)
    assert np.array_equal(np.asarray(result.image), np.asarray(faced))
    assert any(warning.startswith("The hand pass did not run, so the image is as the face pass left it: The pose "
                                  "model in ") for warning in result.warnings)
    with pytest.raises(InputError, match="Nothing was made: The hand pass did not run, so the image is as it was: "):
        service.generate(alone.replace(face_detail=None))


def test_the_masks_shaped_and_merged_are_repainted_in_one_pass_and_the_png_says_so_as_adetailer(service, made):
    """ADetailer's mask preprocessing: the faces' masks moved, grown and merged make one inpainting (with the
    image's seed) through their union; the PNG writes them as ADetailer does, reading it back asks for the same,
    and a size ratio that leaves every face out keeps the image, saying why."""
    from hypersd_desktop.engine.body_parts import shaped_masks
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import detail_pass
    from hypersd_desktop.gallery.metadata import a1111_parameters
    from hypersd_desktop.worker.service import image_parameters

    shape = {"dilate_erode": 6, "x_offset": 3, "y_offset": -2, "merge": "merge"}
    merged = made.replace(face_detail=dataclasses.replace(made.face_detail, **shape))
    progress = []
    (result,) = service.generate(merged, on_progress=progress.append)
    (plain,) = service.generate(made.replace(face_detail=None))
    people = PoseEstimator().keypoints(plain.image, made.face_detail.model, made.face_detail.detector, "cpu")
    boxes = part_boxes("face", people, plain.image.size, made.face_detail.confidence)
    assert len(boxes) >= 2
    (mask,) = shaped_masks([part_mask(plain.image.size, box) for box in boxes], **shape)
    ask = GenerationRequest(prompt="freckles", base_model=made.base_model, loras=made.loras, steps=4, seed=SEED,
                            device="cpu", strength=0.5, width=plain.image.width, height=plain.image.height,
                            init_image=service.inputs.hold(png_data(plain.image)),
                            mask_image=service.inputs.hold(png_data(mask)),
                            masked_padding=made.face_detail.padding, mask_blur=made.face_detail.mask_blur)
    (expected,) = service.generate(ask)
    assert np.array_equal(np.asarray(result.image), np.asarray(expected.image))
    assert {p.stage for p in progress if p.stage.startswith("Detailing")} == {"Detailing faces (1 of 1)"}
    text = a1111_parameters(image_parameters(result, service.hashes))
    assert ("ADetailer confidence: 0.1, ADetailer x offset: 3, ADetailer y offset: -2, ADetailer dilate erode: 6, "
            "ADetailer mask merge invert: Merge, ADetailer mask blur: 4") in text
    read = detail_pass(parse_a1111(text), "face")
    assert {name: getattr(read, name) for name in shape} == shape

    none_so_small = made.replace(face_detail=dataclasses.replace(made.face_detail, max_ratio=0.0001))
    (kept,) = service.generate(none_so_small)
    assert np.array_equal(np.asarray(kept.image), np.asarray(plain.image))
    assert (f"No face found in the image of seed {SEED} takes 0 to 0.0001 of its area, so the face pass left it as it "
            "was.") in kept.warnings
    text = a1111_parameters(image_parameters(kept, service.hashes))
    assert "ADetailer mask min ratio: 0, ADetailer mask max ratio: 0.0001" in text
    assert detail_pass(parse_a1111(text), "face").max_ratio == 0.0001
    for wrong, said in (({"dilate_erode": 129}, "grows or shrinks by at most 128 pixels"),
                        ({"y_offset": -201}, "moves by at most 200 pixels each way"),
                        ({"min_ratio": 0.5, "max_ratio": 0.2}, r"0 ≤ min ≤ max ≤ 1; got 0.5 and 0.2"),
                        ({"merge": "invert"}, "must be one of none, merge, merge and invert")):
        with pytest.raises(InputError, match=said):
            made.replace(face_detail=dataclasses.replace(made.face_detail, **wrong))
