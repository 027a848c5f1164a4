"""Each tool's layout, written here as the tool writes it, read by its reader.

The real-file corpus (test_corpus.py) covers the tools whose files public test suites publish;
these cover the rest (Draw Things and Easy Diffusion: `tool_layouts.py`), other layouts of tools in
the corpus, and ComfyUI graph shapes of custom node packs.
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.gallery.formats import parse_chunks, sampler_key
from hypersd_desktop.gallery.formats.common import other_prompts
from hypersd_desktop.gallery.gallery import read_metadata
from tool_layouts import (
    MOCHI, draw_things_png, easy_diffusion_png, fooocus_outputs, midjourney_png, mochi_jpeg, mochi_png,
)

CORPUS = Path(__file__).parent / "corpus"


def png(path, mode="RGB", **chunks):
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key.replace("_", "-") if key == "parameters_json" else key, value)
    Image.new(mode, (32, 32), (10, 20, 30, 255)[: len(mode)]).save(path, pnginfo=info)
    return path


def test_swarmui_parameters_with_its_model_hash(tmp_path):
    params = {"sui_image_params": {"prompt": "a lighthouse at dusk", "negativeprompt": "fog", "model": "OfficialStableDiffusion/sd_xl_base_1.0",
                                   "seed": 18446744073709551615, "steps": 4, "cfgscale": 1.0, "width": 1024, "height": 768,
                                   "sampler": "euler", "scheduler": "sgm_uniform", "loras": ["Hyper-SDXL-4steps-lora"],
                                   "loraweights": ["1"]},
              "sui_models": [{"name": "sd_xl_base_1.0.safetensors", "param": "model", "hash": "0x31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6ffb5e0d6e6e2"}]}
    metadata, *_ = read_metadata(png(tmp_path / "s.png", parameters=json.dumps(params)))
    assert (metadata.format, metadata.prompt, metadata.negative_prompt) == ("swarmui", "a lighthouse at dusk", "fog")
    assert (metadata.seed, metadata.steps, metadata.guidance, metadata.width, metadata.height) == (2**64 - 1, 4, 1.0, 1024, 768)
    assert (metadata.model_name, metadata.model_hash) == ("sd_xl_base_1.0", "31e35c80fc")
    assert metadata.loras == (("Hyper-SDXL-4steps-lora", 1.0, None),)


def test_swarmui_says_what_it_ran_besides_its_settings():
    """SwarmUI's parameter ids (names in lower-case letters): an init image's creativity, its mask, the ControlNet
    models, the refiner and its share of the steps, a variation seed; seamless tiling, by axis, is reused. Its
    "upscale" of an image (a real file) is an image-to-image at 0.4."""
    from hypersd_desktop.gallery.formats.common import tiling_of, unrepeated_note

    params = {"prompt": "a cat", "seed": 1, "steps": 20, "initimagecreativity": 0.6, "maskblur": 4,
              "controlnetmodel": "diffusers_xl_canny_full.safetensors", "controlnettwomodel": "OpenPoseXL2.safetensors",
              "refinermodel": "sd_xl_refiner_1.0", "refinercontrolpercentage": 0.2, "variationseed": 7,
              "variationseedstrength": 0.3, "seamlesstileable": "X-Only"}
    metadata = parse_chunks({"parameters": json.dumps({"sui_image_params": params})})
    note = unrepeated_note(metadata)
    assert ("inpainting from another picture at strength 0.6, ControlNet (diffusers_xl_canny_full and OpenPoseXL2), "
            "the refiner sd_xl_refiner_1.0 from 80% of the steps and the variation seed 7 at 0.3, which") in note
    assert tiling_of(metadata) == "x"
    for value, tiling in (("true", "both"), ("Y-Only", "y"), ("false", "off")):
        tiled = parse_chunks({"parameters": json.dumps({"sui_image_params": {**params, "seamlesstileable": value}})})
        assert tiling_of(tiled) == tiling
    plain = {"prompt": "a cat", "seed": 1, "refinermodel": "(Use Base)", "variationseed": 7, "seamlesstileable": "false"}
    assert unrepeated_note(parse_chunks({"parameters": json.dumps({"sui_image_params": plain})})) is None
    upscaled, *_ = read_metadata(CORPUS / "sd-metadata" / "png" / "swarmui-upscale.png")
    assert "image-to-image from another picture at strength 0.4" in unrepeated_note(upscaled)


def test_swarmuis_segment_refines_are_its_face_and_hand_passes_and_the_prompt_is_what_precedes_them():
    """SwarmUI's prompt syntax (docs/Features/Prompt Syntax.md): `<segment:TARGET,CREATIVITY,THRESHOLD> words`
    refines what CLIPSeg or a YOLO model finds with its own words at that strength, after the main prompt; reuse
    makes a face's and a hand's with Detail faces and Detail hands and names another; `<comment:…>` is no words,
    `<break>` is A1111's BREAK."""
    from hypersd_desktop.gallery.formats.common import PartPass, detail_notes, detail_pass, unrepeated_note

    prompt = ("a photo of a woman <comment:for the blog> at a cafe <break> smiling <lora:film:0.5> "
              "<segment:face,0.45,0.5> detailed face, blue eyes <segment:yolo-hand_yolov8n.pt:0:,0.35> "
              "<segment:hair|hat> curly red hair")
    metadata = parse_chunks({"parameters": json.dumps({"sui_image_params": {
        "prompt": prompt, "negativeprompt": "blur <comment:x>", "seed": 1, "steps": 4}})})
    assert metadata.prompt == "a photo of a woman at a cafe BREAK smiling <lora:film:0.5>"
    assert metadata.negative_prompt == "blur"
    tool = "SwarmUI's <segment> refining"
    # SwarmUI grows a mask 16 pixels each way, blurs it by 10 (a Gaussian of 10 cut off at 10: as one of 5.4) and
    # repaints it with 16 pixels around
    assert detail_pass(metadata, "face") == PartPass("face", 0.45, 0.3, 16, 5, "detailed face, blue eyes", "", tool,
                                                     dilate_erode=33)
    assert detail_pass(metadata, "hand") == PartPass("hand_yolov8n.pt", 0.35, 0.3, 16, 5, "", "", tool,
                                                     dilate_erode=33)
    assert "The image's hands were made again by SwarmUI's <segment> refining (hand_yolov8n.pt, strength 0.35)" in \
        detail_notes(metadata)[1]
    assert unrepeated_note(metadata) == ("The image was made with SwarmUI's <segment> refining (hair|hat), which "
                                         "reuse does not repeat.")
    plain = parse_chunks({"parameters": json.dumps({"sui_image_params": {"prompt": "<segment:face> a cat"}})})
    assert plain.prompt == "" and detail_pass(plain, "face").strength == 0.6  # SwarmUI's default creativity
    for grow, across in ((8, 17), (0, 0), (64, 127), (500, 127), (-3, 33), ("x", 33)):  # "Segment Mask Grow"
        grown = parse_chunks({"parameters": json.dumps({"sui_image_params": {"prompt": "<segment:face> a cat",
                                                                             "segmentmaskgrow": grow}})})
        assert detail_pass(grown, "face").dilate_erode == across
    # its "Segment Mask Blur", "Segment Mask Oversize" and the refine's own steps, CFG scale and size where set
    own = {"segmentmaskblur": 20, "segmentmaskoversize": 48, "segmentsteps": 6, "segmentcfgscale": 2.5,
           "segmenttargetresolution": "768x1024", "steps": 4, "cfgscale": 1}
    found = detail_pass(parse_chunks({"parameters": json.dumps({"sui_image_params": {
        "prompt": "<segment:face> a cat", **own}})}), "face")
    assert (found.mask_blur, found.padding, found.steps, found.guidance, found.size) == (11, 48, 6, 2.5, (768, 1024))
    found = detail_pass(parse_chunks({"parameters": json.dumps({"sui_image_params": {
        "prompt": "<segment:face> a cat", "segmentmaskblur": 0, "segmentsteps": "many", "steps": 4}})}), "face")
    assert (found.mask_blur, found.padding, found.steps, found.guidance, found.size) == (0, 16, None, None, None)


def test_stability_matrix_json_beside_its_a1111_text(tmp_path):
    record = {"PositivePrompt": "a red barn", "NegativePrompt": "people", "Seed": 7, "Steps": 8, "CfgScale": 1.5,
              "Sampler": "dpmpp_2m", "Width": 512, "Height": 512, "ModelName": "dreamshaper_8.safetensors", "ModelHash": "879db523c3"}
    path = png(tmp_path / "sm.png", parameters="placeholder\nSteps: 1, Seed: 1", parameters_json=json.dumps(record))
    metadata, *_ = read_metadata(path)
    assert (metadata.format, metadata.prompt, metadata.seed, metadata.model_name, metadata.model_hash) == (
        "stabilitymatrix", "a red barn", 7, "dreamshaper_8", "879db523c3")


def test_ruinedfooocus(tmp_path):
    record = {"Prompt": "a koi pond", "Negative": "text", "steps": 30, "cfg": 7.0, "width": 1152, "height": 896,
              "seed": 6952411511246973023, "sampler_name": "dpmpp_2m_sde_gpu", "scheduler": "karras",
              "base_model_name": "sd_xl_base_1.0_0.9vae.safetensors", "base_model_hash": "e6bb9ea85b",
              "loras": [["sd_xl_offset_example-lora_1.0.safetensors", 0.5]], "software": "RuinedFooocus"}
    metadata, *_ = read_metadata(png(tmp_path / "rf.png", parameters=json.dumps(record)))
    assert (metadata.format, metadata.prompt, metadata.negative_prompt, metadata.seed) == (
        "ruinedfooocus", "a koi pond", "text", 6952411511246973023)
    assert (metadata.model_name, metadata.guidance, metadata.loras) == (
        "sd_xl_base_1.0_0.9vae", 7.0, (("sd_xl_offset_example-lora_1.0", 0.5, None),))


def test_easy_diffusion_png_chunks_and_jpeg_json(tmp_path):
    metadata, *_ = read_metadata(easy_diffusion_png(tmp_path / "ed.png"))
    assert (metadata.format, metadata.prompt, metadata.seed, metadata.steps, metadata.model_name) == (
        "easydiffusion", "an owl on a birch branch", 3, 25, "sd-v1-5")
    jpeg = tmp_path / "ed.jpg"
    exif = Image.Exif()
    display = {"Prompt": "an owl", "Negative Prompt": "blurry", "Seed": 3, "Stable Diffusion model": "sd-v1-5",
               "Steps": 25, "Guidance Scale": 7.5, "Width": 512, "Height": 640, "Sampler": "euler_a"}
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + json.dumps(display).encode("utf-16-be")
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG", exif=exif.tobytes())
    metadata, *_ = read_metadata(jpeg)
    assert (metadata.format, metadata.prompt, metadata.guidance, metadata.sampler_key) == (
        "easydiffusion", "an owl", 7.5, "euler_ancestral")


def test_draw_things_xmp(tmp_path):
    metadata, *_ = read_metadata(draw_things_png(tmp_path / "dt.png"))
    assert (metadata.format, metadata.prompt, metadata.seed, metadata.width, metadata.model_name) == (
        "drawthings", "a paper boat & a frog", 123456789, 1024, "sd_xl_base_1.0_f16")
    assert (metadata.sampler_key, metadata.loras) == ("dpmpp_2m", (("hyper_sdxl_8_step_lora_f16", 1.0, None),))


def test_draw_things_image_to_image_is_said(tmp_path):
    """Draw Things writes `strength` (1 from the prompt): under 1 the image was made from a picture."""
    from hypersd_desktop.gallery.formats.common import unrepeated_note
    from tool_layouts import DRAW_THINGS

    assert unrepeated_note(read_metadata(draw_things_png(tmp_path / "a.png", {**DRAW_THINGS, "strength": 1}))[0]) is None
    again, *_ = read_metadata(draw_things_png(tmp_path / "b.png", {**DRAW_THINGS, "strength": 0.6}))
    assert "image-to-image from another picture at strength 0.6" in unrepeated_note(again)


def test_draw_things_json_in_a_jpeg_user_comment(tmp_path):
    record = {"c": "a lantern", "uc": "", "model": "flux_1_schnell_q5p.ckpt", "sampler": "Euler A Trailing",
              "scale": 1.0, "seed": 4041, "steps": 4, "size": "768x768"}
    path = tmp_path / "dt.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + json.dumps(record).encode("utf-16-be")
    Image.new("RGB", (8, 8)).save(path, "JPEG", exif=exif.tobytes())
    metadata, *_ = read_metadata(path)
    assert (metadata.format, metadata.prompt, metadata.seed, metadata.width, metadata.model_name) == (
        "drawthings", "a lantern", 4041, 768, "flux_1_schnell_q5p")


@pytest.mark.parametrize("write", [mochi_png, mochi_jpeg, lambda path: mochi_jpeg(path, xmp=True)],
                         ids=["png-xmp", "jpeg-iptc", "jpeg-iptc-and-xmp"])
def test_mochi_diffusion_caption(tmp_path, write):
    """Mochi's fields joined by "; ": the prompt keeps its own "; " (only "; " before one of Mochi's keys ends a
    field), an empty negative prompt stays empty."""
    metadata, *_ = read_metadata(write(tmp_path / ("m.png" if write is mochi_png else "m.jpg")))
    assert (metadata.format, metadata.prompt, metadata.negative_prompt) == (
        "mochi", "a lighthouse; stormy sea, dramatic sky", "")
    assert (metadata.seed, metadata.steps, metadata.guidance, metadata.width, metadata.height) == (
        3141592653, 12, 7.5, 512, 768)
    assert (metadata.model_name, metadata.sampler_key) == ("sd-1.5_512x512", "dpmpp_2m")
    assert metadata.extra == {"ML Compute Unit": "CPU & Neural Engine", "Generator": "Mochi Diffusion 5.2"}


def test_mochi_diffusion_caption_of_an_enlarged_image_gives_the_size_it_was_made_at(tmp_path):
    caption = ("Include in Image: a fox; Exclude from Image: blurry; Model: sd-2-1; Steps: 25; Guidance Scale: 11.0; "
               "Seed: 7; Size: 2048x3072; Upscaler: RealESRGAN; Scheduler: PNDM; ML Compute Unit: All; "
               "Generator: Mochi Diffusion 4.7.1")
    metadata, *_ = read_metadata(mochi_png(tmp_path / "m.png", caption))
    assert (metadata.prompt, metadata.negative_prompt, metadata.width, metadata.height) == ("a fox", "blurry", 512, 768)
    assert (metadata.sampler_key, metadata.extra["Upscaler"]) == ("plms", "RealESRGAN (×4, after generating)")


def test_mochi_diffusion_caption_of_an_image_made_from_pictures_says_so():
    """Mochi 6 names the starting image of an image-to-image and a ControlNet's image; reuse says it makes
    neither again."""
    from hypersd_desktop.gallery.formats.common import unrepeated_note

    caption = ("Include in Image: a cube; Model: sd-1.5; Steps: 8; Seed: 4; Size: 512x512; Starting Image: start.png; "
               "ControlNet Image: edges.png; Generator: Mochi Diffusion 6.0")
    note = unrepeated_note(parse_chunks({"Description": caption}))
    assert "image-to-image from another picture (start.png) and ControlNet, which reuse does not repeat" in note


def test_mochi_diffusion_line_caption_with_escapes():
    """6.1's `Metadata Version: 2`: a field a line, backslash and line breaks escaped, repeated keys."""
    caption = ("Metadata Version: 2\nInclude in Image: a red; blue cube\\nsecond line\nExclude from Image: back\\\\slash\n"
               "Model: Example\nEngine: coreml\nSteps: 8\nGuidance Scale: 4.5\nSeed: 42\nSize: 64x32\n"
               "Input Images: first, one.png\nInput Images: second.png\nScheduler: DPM-Solver++\n"
               "Generator: Mochi Diffusion 6.1.2")
    metadata = parse_chunks({"XML:com.adobe.xmp": '<x:xmpmeta><rdf:RDF><rdf:Description><dc:description><rdf:Alt>'
                             f'<rdf:li xml:lang="x-default">{caption}</rdf:li></rdf:Alt></dc:description>'
                             '</rdf:Description></rdf:RDF></x:xmpmeta>'})
    assert (metadata.prompt, metadata.negative_prompt) == ("a red; blue cube\nsecond line", "back\\slash")
    assert (metadata.steps, metadata.guidance, metadata.seed, metadata.width, metadata.height) == (8, 4.5, 42, 64, 32)
    assert metadata.extra["Input Images"] == "first, one.png, second.png"
    assert metadata.extra["Engine"] == "coreml"


def test_mochi_diffusion_caption_as_png_text_is_not_read_as_a1111s():
    """Scripts copying Mochi's layout write it as `Description` and `parameters` text too; A1111's reader would
    take the whole caption for a prompt. A caption with its prompt left out (Mochi lets fields be left out) is
    still Mochi's."""
    metadata = parse_chunks({"Description": MOCHI, "parameters": MOCHI})
    assert (metadata.format, metadata.prompt, metadata.steps) == ("mochi", "a lighthouse; stormy sea, dramatic sky", 12)
    metadata = parse_chunks({"Description": "Model: sd-1.5; Steps: 8; Seed: 9; Generator: Mochi Diffusion 6.0"})
    assert (metadata.format, metadata.prompt, metadata.steps, metadata.seed, metadata.model_name) == (
        "mochi", "", 8, 9, "sd-1.5")
    assert parse_chunks({"Description": "a photo; Model: x"}) is None  # a caption, not Mochi's


@pytest.mark.parametrize("xmp_only", [False, True], ids=["png-text", "xmp"])
def test_midjourney_prompt_line(tmp_path, xmp_only):
    """Midjourney's prompt line: the image prompt's address and the parameters are no part of the prompt; `--no`
    is the negative prompt, `--seed` the seed, `--v` the model; the rest is kept as written."""
    metadata, width, height, _ = read_metadata(midjourney_png(tmp_path / "m.png", xmp_only=xmp_only))
    assert (metadata.format, metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.model_name) == (
        "midjourney", "a lighthouse on a cliff, storm, oil painting", "boats, people", 4242, "Midjourney v6.1")
    assert (width, height, metadata.steps, metadata.guidance) == (24, 16, None, None)
    assert metadata.extra == {"Image prompts": "https://s.mj.run/x1Yz",
                              "Midjourney parameters": "--no boats, people --ar 3:2 --stylize 250 --seed 4242 --v 6.1",
                              "Job ID": "5e0b2f7c-9d41-4c8e-a3f6-1b2c3d4e5f60", "Author": "lumen_artist"}
    assert other_prompts(metadata.extra) == {}  # addresses: no words to search, no prompt row in the large view


@pytest.mark.parametrize("line, read", [
    ("cat::2 dog --niji 6 --style expressive Job ID: 0a1b2c3d-0000-4000-8000-000000000000",
     ("cat::2 dog", "", None, "niji 6")),
    ("a quiet harbour at dawn Job ID: 0a1b2c3d-0000-4000-8000-000000000000", ("a quiet harbour at dawn", "", None,
                                                                            "Midjourney")),
    ("a--b test --raw --tile Job ID: 0a1b2c3d-0000-4000-8000-000000000000", ("a--b test", "", None, "Midjourney")),
])
def test_midjourney_prompt_lines_of_other_shapes(line, read):
    metadata = parse_chunks({"Description": line})
    assert (metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.model_name) == read


def test_a_description_without_a_midjourney_job_is_no_midjourney_record():
    """A photo's caption, even with a double dash in it, says nothing of how an image was made."""
    assert parse_chunks({"Description": "Sunset over the bay --ar 16:9 --v 6"}) is None
    assert parse_chunks({"Description": "Holiday 2024", "Author": "Sam"}) is None


@pytest.mark.parametrize(("sampler", "key"), [("Default - DPM++ 2M", "dpmpp_2m"), ("Fast - UniPC BH2", "uni_pc"),
                                              ("Turbo/Lightning Merge - DPM++ SDE", "dpmpp_sde"),
                                              ("Realtime - Hyper", "realtime_hyper")])
def test_krita_ai_diffusion_a1111_text(sampler, key):
    """Krita's AI plugin writes A1111's layout with its sampler preset's name, "Model hash: unknown", the LoRAs
    as tags and, for a refine of the canvas, its strength (as in its own tests' expected text)."""
    text = (f"A cat <lora:lora1:0.7>\nNegative prompt: \nSteps: 8, Sampler: {sampler}, CFG scale: 3.5, Seed: 12345, "
            "Size: 512x768, Model hash: unknown, Model: realisticVisionV51.safetensors, Denoising strength: 0.6")
    metadata = parse_chunks({"parameters": text})
    assert (metadata.prompt, metadata.negative_prompt, metadata.model_name, metadata.model_hash) == (
        "A cat <lora:lora1:0.7>", "", "realisticVisionV51", None)
    assert (metadata.sampler, metadata.sampler_key, metadata.loras) == (sampler, key, (("lora1", 0.7, None),))


@pytest.mark.parametrize("version", ["2.5", "2.1-button", "2.1", "2.1.7"])
def test_fooocus_images_saved_without_metadata_are_read_from_its_log(tmp_path, version):
    """Fooocus writes no metadata into its images by default; its day folder's log.html has each image's settings
    (2.1's: keyed by the table's labels, before its "Copy to Clipboard" button only in the table, and before the
    table in paragraphs)."""
    folder = fooocus_outputs(tmp_path / "outputs" / "2026-12-03", version=version)
    first, second = (read_metadata(folder / name)[0] for name in ("2026-12-03_10-00-01_1234.png",
                                                                  "2026-12-03_10-01-07_5678.png"))
    assert (first.format, first.prompt, first.negative_prompt, first.seed, second.seed) == (
        "fooocus", "a red fox in the snow", "blurry", 1234567890, 1234567891)
    assert (first.steps, first.guidance, first.width, first.height, first.model_name) == (
        None if version.startswith("2.1") else 4, 1.0, 1152, 896, "juggernautXL_v8Rundiffusion")
    assert first.loras == (("sdxl_hyper_sd_4step_lora", 0.8, None),) and first.sampler_key == "dpmpp_sde"
    from hypersd_desktop.gallery.formats.common import unrepeated_note
    assert unrepeated_note(first) == ("The image was made with Fooocus's styles on the prompt (Fooocus V2, Fooocus "
                                      "Enhance), which reuse does not repeat.")
    record = {"prompt": "a castle", "styles": "['Fooocus V2', \"Sai's Anime\"]", "refiner_model": "realvis.safetensors",
              "refiner_switch": 0.8, "performance": "Quality", "metadata_scheme": "fooocus"}
    assert ("Fooocus's styles on the prompt (Fooocus V2, Sai's Anime) and the refiner realvis from 80% of the steps"
            in unrepeated_note(parse_chunks({"parameters": json.dumps(record)})))
    Image.new("RGB", (8, 8)).save(folder / "not-in-the-log.png")
    assert read_metadata(folder / "not-in-the-log.png")[0] is None


def test_a_fooocus_image_is_reused_with_the_prompts_it_ran_and_its_clip_skip():
    """Fooocus's own scheme lists the prompts it ran (each style's template around the typed prompt, and the V2
    expansion); reuse runs those, as no Fooocus style is made here, and says what was typed."""
    from hypersd_desktop.gallery.formats.common import unrepeated_note
    from hypersd_desktop.gallery.formats.syntax import reused_prompts

    metadata = read_metadata(CORPUS / "sd-parsers" / "fooocus1_cropped.png")[0]
    assert (metadata.prompt, metadata.clip_skip) == ("a smiling goldfish", 2)
    prompt, negative, note = reused_prompts(metadata.format, metadata.prompt, metadata.negative_prompt, metadata.extra)
    assert prompt.startswith("cinematic still a smiling goldfish . emotional, harmonious") and prompt.endswith(
        ", a smiling goldfish, deep focus, intricate, elegant, highly detailed, cinematic, still, dynamic background, "
        "professional fine composition, ambient light, magic, vivid colors, creative, positive, attractive, glossy, "
        "shiny, colorful, strong, sharp, heroic, awesome, determined, cute, epic, stunning, gorgeous, amazing, "
        "symmetry, great, perfect, excellent, complex")
    assert negative.startswith("(worst quality, low quality")
    assert negative.endswith(", deformed, mutated, ugly, disfigured")
    assert "typed as \u201ca smiling goldfish\u201d" in note and unrepeated_note(metadata) is None
    plain = parse_chunks({"parameters": json.dumps({"prompt": "a lake", "styles": "['Fooocus V2']", "seed": 1,
                                                    "full_prompt": ["a lake"], "metadata_scheme": "fooocus",
                                                    "clip_skip": 99})})
    assert reused_prompts(plain.format, plain.prompt, "", plain.extra) == ("a lake", "", None)  # nothing added
    assert plain.clip_skip is None


def test_a1111_parameters_in_a_text_file_beside_the_image(tmp_path):
    """A1111's "Create a text file next to every image with generation parameters"; a text file of other words is
    not read as parameters, and metadata in the image wins over a text file."""
    Image.new("RGB", (8, 8)).save(tmp_path / "00012-777.jpg")
    (tmp_path / "00012-777.txt").write_text("a lighthouse\nNegative prompt: fog\nSteps: 4, Sampler: Euler, "
                                           "CFG scale: 1, Seed: 777, Size: 512x512, Model: dreamshaper_8")
    metadata, *_ = read_metadata(tmp_path / "00012-777.jpg")
    assert (metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.model_name) == (
        "a lighthouse", "fog", 777, "dreamshaper_8")
    png(tmp_path / "notes.png")
    (tmp_path / "notes.txt").write_text("things to try tomorrow")
    assert read_metadata(tmp_path / "notes.png")[0] is None
    png(tmp_path / "00012-777.png", parameters="a boat\nSteps: 2, Seed: 5")  # beside the same 00012-777.txt
    assert read_metadata(tmp_path / "00012-777.png")[0].prompt == "a boat"
    # As A1111 writes it on Windows (CRLF line ends), then saved again by Notepad (a BOM before the text).
    Image.new("RGB", (8, 8)).save(tmp_path / "00013-778.jpg")
    (tmp_path / "00013-778.txt").write_bytes("\ufeffa lighthouse,\r\nat dusk\r\nNegative prompt: fog\r\nSteps: 4, "
                                            "Seed: 778, Size: 512x768\r\n".encode())
    metadata, *_ = read_metadata(tmp_path / "00013-778.jpg")
    assert (metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.height) == (
        "a lighthouse,\nat dusk", "fog", 778, 768)
    # Saved again as Notepad's "Unicode" (UTF-16), and as an older Windows editor's "ANSI" (cp1252)
    for number, encoding in ((14, "utf-16"), (15, "cp1252")):
        Image.new("RGB", (8, 8)).save(tmp_path / f"000{number}-9.jpg")
        (tmp_path / f"000{number}-9.txt").write_bytes("café au lait\r\nSteps: 4, Seed: 9, Size: 512x512".encode(encoding))
        assert read_metadata(tmp_path / f"000{number}-9.jpg")[0].prompt == "café au lait"


def test_hugging_face_demo_json(tmp_path):
    record = {"prompt": "a teapot", "negative_prompt": "", "num_inference_steps": 2, "guidance_scale": 0.0, "seed": 42,
              "width": 1024, "height": 1024, "Model": "ByteDance/SDXL-Lightning", "Model hash": "a1b2c3d4e5"}
    metadata, *_ = read_metadata(png(tmp_path / "hf.png", parameters=json.dumps(record)))
    assert (metadata.format, metadata.prompt, metadata.steps, metadata.seed, metadata.model_hash) == (
        "diffusers", "a teapot", 2, 42, "a1b2c3d4e5")


def _hide_in_alpha(image: Image.Image, payload: bytes, signature: bytes) -> Image.Image:
    bits = "".join(f"{byte:08b}" for byte in signature + (len(payload) * 8).to_bytes(4, "big") + payload)
    alpha = image.getchannel("A")
    width, height = image.size
    for index, bit in enumerate(bits):
        x, y = divmod(index, height)
        alpha.putpixel((x, y), (alpha.getpixel((x, y)) & ~1) | int(bit))
    image.putalpha(alpha)
    return image


def test_novelai_stealth_record_in_the_alpha_channel(tmp_path):
    record = {"Description": "a cat in space", "Software": "NovelAI", "Source": "NovelAI Diffusion V3 7BCCAA2C",
              "Comment": json.dumps({"prompt": "a cat in space", "uc": "lowres", "steps": 28, "scale": 5.0,
                                     "seed": 2253955223, "sampler": "k_euler_ancestral", "width": 832, "height": 1216})}
    image = _hide_in_alpha(Image.new("RGBA", (64, 64), (40, 50, 60, 255)),
                           gzip.compress(json.dumps(record).encode()), b"stealth_pngcomp")
    image.save(tmp_path / "nai.png")  # no text chunks: a site stripped them
    metadata, *_ = read_metadata(tmp_path / "nai.png")
    assert (metadata.format, metadata.prompt, metadata.negative_prompt, metadata.seed) == (
        "novelai", "a cat in space", "lowres", 2253955223)
    assert (metadata.model_name, metadata.model_hash, metadata.width) == ("NovelAI Diffusion V3", "7BCCAA2C", 832)


def _hide_in_rgb(image: Image.Image, payload: bytes, signature: bytes) -> Image.Image:
    """As the stealth-pnginfo extension's RGB mode writes: three bits a pixel (red, green, blue), down each column."""
    bits = "".join(f"{byte:08b}" for byte in signature + (len(payload) * 8).to_bytes(4, "big") + payload)
    width, height = image.size
    for start in range(0, len(bits), 3):
        x, y = divmod(start // 3, height)
        pixel = list(image.getpixel((x, y)))
        for channel, bit in enumerate(bits[start:start + 3]):
            pixel[channel] = (pixel[channel] & ~1) | int(bit)
        image.putpixel((x, y), tuple(pixel))
    return image


@pytest.mark.parametrize("signature", [b"stealth_rgbinfo", b"stealth_rgbcomp"])
def test_a1111_stealth_parameters_in_the_rgb_channels_of_an_image_without_alpha(tmp_path, signature):
    parameters = ("a red fox in fresh snow, (golden hour:1.2)\nNegative prompt: blurry\nSteps: 2, Sampler: TCD, "
                  "CFG scale: 0, Seed: 4242, Size: 512x512, Model: sd15")
    payload = gzip.compress(parameters.encode()) if signature.endswith(b"comp") else parameters.encode()
    photo = Image.effect_noise((48, 40), 60).convert("RGB")  # odd heights: a pixel's bits run past a column's end
    _hide_in_rgb(photo, payload, signature).save(tmp_path / "stealth.png")
    metadata, *_ = read_metadata(tmp_path / "stealth.png")
    assert (metadata.format, metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.steps) == (
        "a1111", "a red fox in fresh snow, (golden hour:1.2)", "blurry", 4242, 2)
    photo.save(tmp_path / "stealth.jpg", quality=95)  # a lossy copy has lost the bits: read as plain
    assert read_metadata(tmp_path / "stealth.jpg")[0] is None


def _png_with_every_filter(path: Path, image: Image.Image) -> Path:
    """An 8-bit RGB(A) PNG whose rows take PNG's five filter types in turn (Pillow's writer picks one for all)."""
    channels = len(image.getbands())
    width, height = image.size
    rows = [image.tobytes()[y * width * channels:(y + 1) * width * channels] for y in range(height)]

    def paeth(a: int, b: int, c: int) -> int:
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c

    data = bytearray()
    for y, row in enumerate(rows):
        kind, above = y % 5, rows[y - 1] if y else bytes(len(row))
        data.append(kind)
        for i, value in enumerate(row):
            left = row[i - channels] if i >= channels else 0
            corner = above[i - channels] if i >= channels else 0
            predicted = (0, left, above[i], (left + above[i]) // 2, paeth(left, above[i], corner))[kind]
            data.append((value - predicted) & 0xFF)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0)
    compressed = zlib.compress(bytes(data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed[:999])
                     + chunk(b"IDAT", compressed[999:]) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("mode, signature", [("RGB", b"stealth_rgbcomp"), ("RGBA", b"stealth_pngcomp")])
def test_a_stealth_record_in_a_tall_png_with_every_filter_type_is_read(tmp_path, mode, signature):
    """The signature is looked for in the top of the first column without decoding the image; rows filtered every
    way PNG filters them must give the pixels the decoder gives."""
    parameters = "a lighthouse at dusk\nSteps: 1, Sampler: TCD, CFG scale: 0, Seed: 77, Size: 512x512"
    image = Image.effect_noise((9, 400), 90).convert(mode)
    hide = _hide_in_rgb if mode == "RGB" else _hide_in_alpha
    path = _png_with_every_filter(tmp_path / "tall.png", hide(image, gzip.compress(parameters.encode()), signature))
    with Image.open(path) as written:
        assert written.tobytes() == image.tobytes(), "the test's own encoder writes the image it was given"
    metadata, *_ = read_metadata(path)
    assert (metadata.prompt, metadata.seed) == ("a lighthouse at dusk", 77)
    plain = _png_with_every_filter(tmp_path / "plain.png", Image.effect_noise((9, 400), 90).convert(mode))
    assert read_metadata(plain)[0] is None


def test_a_stealth_signature_in_the_wrong_layer_is_not_read(tmp_path):
    """RGB's signature in the alpha channel (or the reverse) is not what either writer makes."""
    image = _hide_in_alpha(Image.new("RGBA", (64, 64), (40, 50, 60, 255)), b"x" * 8, b"stealth_rgbinfo")
    image.save(tmp_path / "odd.png")
    assert read_metadata(tmp_path / "odd.png")[0] is None


def test_an_opaque_image_has_no_stealth_record(tmp_path):
    Image.new("RGBA", (4000, 2), (1, 2, 3, 255)).save(tmp_path / "opaque.png")
    assert read_metadata(tmp_path / "opaque.png")[0] is None


def comfy(nodes: dict) -> str:
    return json.dumps({key: {"class_type": kind, "inputs": inputs} for key, (kind, inputs) in nodes.items()})


def test_comfyui_sampler_custom_advanced_with_links_to_custom_nodes():
    graph = comfy({
        "1": ("UNETLoader", {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}),
        "2": ("LoraLoaderModelOnly", {"lora_name": "loras/Hyper-FLUX.1-dev-8steps-lora.safetensors", "strength_model": 0.125, "model": ["1", 0]}),
        "3": ("Seed (rgthree)", {"seed": 18446744073709551615}),
        "4": ("RandomNoise", {"noise_seed": ["3", 0]}),
        "5": ("Text Multiline", {"text": "a glass apple on a table"}),
        "6": ("CLIPTextEncode", {"text": ["5", 0], "clip": ["9", 0]}),
        "7": ("FluxGuidance", {"guidance": 3.5, "conditioning": ["6", 0]}),
        "8": ("BasicGuider", {"model": ["2", 0], "conditioning": ["7", 0]}),
        "10": ("KSamplerSelect", {"sampler_name": "euler"}),
        "11": ("Int Literal", {"int": 8}),
        "12": ("BasicScheduler", {"scheduler": "simple", "steps": ["11", 0], "denoise": 1.0, "model": ["2", 0]}),
        "13": ("SDXL Empty Latent Image (rgthree)", {"dimensions": "1024 x 1024 (square)", "batch_size": 1}),
        "14": ("SamplerCustomAdvanced", {"noise": ["4", 0], "guider": ["8", 0], "sampler": ["10", 0], "sigmas": ["12", 0],
                                         "latent_image": ["13", 0]}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert (metadata.prompt, metadata.seed, metadata.steps, metadata.sampler) == ("a glass apple on a table", 2**64 - 1, 8, "euler")
    assert (metadata.width, metadata.height, metadata.model_name) == (1024, 1024, "flux1-dev")
    assert metadata.loras == (("Hyper-FLUX.1-dev-8steps-lora", 0.125, None),)
    assert metadata.extra["scheduler"] == "simple"


def test_comfyui_sampler_custom_with_sdxl_text_and_lora_chain():
    graph = comfy({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "sdxl/sd_xl_base_1.0.safetensors"}),
        "2": ("LoraLoader", {"lora_name": "Hyper-SDXL-8steps-lora.safetensors", "strength_model": 1.0, "strength_clip": 1.0,
                             "model": ["1", 0], "clip": ["1", 1]}),
        "3": ("LoraLoader", {"lora_name": "style.safetensors", "strength_model": 0.6, "strength_clip": 0.6,
                             "model": ["2", 0], "clip": ["2", 1]}),
        "4": ("CLIPTextEncodeSDXL", {"text_g": "a snowy village", "text_l": "a snowy village", "width": 1024, "height": 1024,
                                     "clip": ["3", 1]}),
        "5": ("CLIPTextEncode", {"text": "", "clip": ["3", 1]}),
        "6": ("EmptyLatentImage", {"width": 896, "height": 1152, "batch_size": 1}),
        "7": ("KSamplerSelect", {"sampler_name": "lcm"}),
        "8": ("BasicScheduler", {"scheduler": "sgm_uniform", "steps": 8, "denoise": 1.0, "model": ["3", 0]}),
        "9": ("SamplerCustom", {"add_noise": True, "noise_seed": 99, "cfg": 1.0, "model": ["3", 0], "positive": ["4", 0],
                                "negative": ["5", 0], "sampler": ["7", 0], "sigmas": ["8", 0], "latent_image": ["6", 0]}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert (metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.steps, metadata.guidance) == (
        "a snowy village", "", 99, 8, 1.0)
    assert (metadata.width, metadata.height, metadata.model_name) == (896, 1152, "sd_xl_base_1.0")
    assert metadata.loras == (("Hyper-SDXL-8steps-lora", 1.0, None), ("style", 0.6, None))


def test_swarmuis_refiner_upscale_reads_as_a1111s_hires_fix():
    """SwarmUI's refiner on the finished image with an upscale is a Hires fix (the real swarmui-hires.png is in the
    corpus): its control percentage is the strength, its refiner steps run that share, a refiner model of its own
    is the second pass's own model; its "StepSwap" method (the refiner taking over mid-schedule) is none."""
    from hypersd_desktop.gallery.formats.common import hires_guidance, hires_note, hires_settings, unrepeated_note

    params = {"prompt": "a cat", "seed": 1, "steps": 30, "cfgscale": 6, "width": 640, "height": 832,
              "refinerupscale": 2, "refinerupscalemethod": "latent-bislerp", "refinercontrolpercentage": 0.45,
              "refinersteps": 40, "refinermodel": "sdxl/juggernautXL_v9.safetensors", "refinercfgscale": 4}
    made = parse_chunks({"parameters": json.dumps({"sui_image_params": params})})
    assert hires_settings(made) == (2, 0.45, 18) and made.extra["Hires upscaler"] == "Latent"
    assert "The second pass had its own model (juggernautXL_v9)" in hires_note(made)  # its CFG scale reuse repeats
    assert hires_guidance(made) == 4
    assert "Refiner" not in made.extra and unrepeated_note(made) is None
    swapped = parse_chunks({"parameters": json.dumps({"sui_image_params": {**params, "refinermethod": "StepSwap"}})})
    assert hires_settings(swapped) is None and swapped.extra["Refiner"] == "juggernautXL_v9"


def test_an_enlargement_of_the_finished_image_is_named_as_reuse_does_not_repeat_it():
    """A1111's Extras tab writes `Postprocess upscale by` into the image; a ComfyUI graph that enlarges the decoded
    picture on its way to the saved image (the corpus's comfyui-upscale.png) reads the same. Reuse makes the image
    at its size and says so."""
    from hypersd_desktop.gallery.formats.common import unrepeated_note

    text = ("a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Postprocess upscale by: 2, "
            "Postprocess upscaler: R-ESRGAN 4x+")
    assert "made with an enlargement ×2 by R-ESRGAN 4x+ of the finished image" in unrepeated_note(parse_chunks(
        {"parameters": text}))
    graph, *_ = read_metadata(CORPUS / "sd-metadata" / "png" / "comfyui-upscale.png")
    assert (graph.width, graph.height) == (1024, 1024)
    assert "made with an enlargement ×1.5 by SwinIR_4x of the finished image" in unrepeated_note(graph)


def test_comfyui_second_passes_read_as_a1111s_hires_fix():
    """A sampler that repaints the first pass's picture enlarged is a Hires fix: through a latent upscale to a
    KSamplerAdvanced that starts at step 12 of 20 with a prompt of its own; through an upscaler model whose name
    gives its scale. A second pass at the same size, one that repaints the whole picture, or an upscaler whose
    scale its name does not say (with no resize after it) is none."""
    from hypersd_desktop.gallery.formats.common import hires_guidance, hires_note, hires_prompts, hires_settings

    def graph(*between: tuple[str, dict], second: tuple[str, dict]) -> str:
        nodes = {
            "1": ("CheckpointLoaderSimple", {"ckpt_name": "sd15/dreamshaper_8.safetensors"}),
            "2": ("CLIPTextEncode", {"text": "a harbour at dusk", "clip": ["1", 1]}),
            "3": ("CLIPTextEncode", {"text": "blurry", "clip": ["1", 1]}),
            "4": ("EmptyLatentImage", {"width": 512, "height": 768, "batch_size": 1}),
            "5": ("KSampler", {"seed": 5, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                               "denoise": 1.0, "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                               "latent_image": ["4", 0]}),
            "6": ("CLIPTextEncode", {"text": "a harbour at dusk, sharp rigging", "clip": ["1", 1]}),
            "20": ("UpscaleModelLoader", {"model_name": "4x-UltraSharp.pth"}),
            "21": ("UpscaleModelLoader", {"model_name": "BSRGAN.pth"}),
        }
        previous = ["5", 0]
        for number, (kind, inputs) in enumerate(between, start=10):
            nodes[str(number)] = (kind, {**inputs, ("samples" if "Latent" in kind or kind == "VAEDecode" else
                                                    "pixels" if kind == "VAEEncode" else "image"): previous})
            previous = [str(number), 0]
        kind, inputs = second
        nodes["30"] = (kind, {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": previous,
                              "seed": 5, "sampler_name": "euler", "scheduler": "normal", "cfg": 7.0, **inputs})
        nodes["31"] = ("VAEDecode", {"samples": ["30", 0], "vae": ["1", 2]})
        nodes["32"] = ("SaveImage", {"images": ["31", 0]})
        return comfy(nodes)

    advanced = ("KSamplerAdvanced", {"steps": 20, "start_at_step": 12, "end_at_step": 10000, "cfg": 5.0,
                                     "positive": ["6", 0]})
    made = parse_chunks({"prompt": graph(("LatentUpscaleBy", {"scale_by": 1.5, "upscale_method": "bislerp"}),
                                         second=advanced)})
    assert (made.width, made.height, made.steps, made.prompt) == (512, 768, 20, "a harbour at dusk")
    assert hires_settings(made) == (1.5, 0.4, 8)
    assert {key: made.extra[key] for key in ("Hires size", "Hires upscaler", "Hires prompt", "Hires CFG Scale")} == {
        "Hires size": "768x1152", "Hires upscaler": "Latent", "Hires prompt": "a harbour at dusk, sharp rigging",
        "Hires CFG Scale": "5"}
    assert "second pass had" not in hires_note(made)  # its prompt and CFG scale reuse repeats
    assert hires_guidance(made) == 5
    assert hires_prompts(made) == ("a harbour at dusk, sharp rigging", None)

    decoded = (("VAEDecode", {"vae": ["1", 2]}), ("ImageUpscaleWithModel", {"upscale_model": ["20", 0]}))
    made = parse_chunks({"prompt": graph(*decoded, ("VAEEncode", {"vae": ["1", 2]}),
                                         second=("KSampler", {"steps": 12, "denoise": 0.35}))})
    assert hires_settings(made) == (4, 0.35, 12) and made.extra["Hires upscaler"] == "4x-UltraSharp"
    made = parse_chunks({"prompt": graph(*decoded, ("ImageScaleBy", {"scale_by": 0.5, "upscale_method": "lanczos"}),
                                         ("VAEEncode", {"vae": ["1", 2]}),
                                         second=("KSampler", {"steps": 12, "denoise": 0.35}))})
    assert made.extra["Hires size"] == "1024x1536"  # ×4, then halved: A1111's "Hires upscale: 2"

    for between, second in (
            ((("LatentUpscaleBy", {"scale_by": 1.0}),), ("KSampler", {"steps": 12, "denoise": 0.5})),
            ((("LatentUpscaleBy", {"scale_by": 2.0}),), ("KSampler", {"steps": 12, "denoise": 1.0})),
            ((("VAEDecode", {"vae": ["1", 2]}), ("ImageUpscaleWithModel", {"upscale_model": ["21", 0]}),
              ("VAEEncode", {"vae": ["1", 2]})), ("KSampler", {"steps": 12, "denoise": 0.5}))):
        made = parse_chunks({"prompt": graph(*between, second=second)})
        assert (made.width, made.steps, hires_settings(made)) == (512, 20, None)
        assert not any(key.startswith("Hires") for key in made.extra)


def test_efficiency_nodes_highres_fix_script_reads_as_a1111s_hires_fix():
    """Efficiency Nodes' KSampler (Efficient) runs the HighRes-Fix Script chained to its `script` input: its
    upscale, upscaler model, steps, denoise and checkpoint are A1111's Hires fields; more iterations than one are
    more than one Hires fix, and are not read as one."""
    from hypersd_desktop.gallery.formats.common import hires_note, hires_settings

    def graph(**script) -> str:
        return comfy({
            "1": ("Efficient Loader", {"ckpt_name": "dreamshaper_8.safetensors", "vae_name": "Baked VAE",
                                       "clip_skip": -1, "lora_name": "None", "positive": "a lighthouse at dusk",
                                       "negative": "blurry", "empty_latent_width": 512, "empty_latent_height": 768,
                                       "batch_size": 1}),
            "2": ("XY Plot", {"grid_spacing": 0}),
            "3": ("HighRes-Fix Script", {"upscale_type": "pixel", "hires_ckpt_name": "(use same)",
                                         "latent_upscaler": "nearest-exact", "pixel_upscaler": "4x-UltraSharp.pth",
                                         "upscale_by": 1.5, "use_same_seed": True, "seed": 0, "hires_steps": 12,
                                         "denoise": 0.45, "iterations": 1, "use_controlnet": False,
                                         "script": ["2", 0], **script}),
            "4": ("KSampler (Efficient)", {"model": ["1", 0], "positive": ["1", 1], "negative": ["1", 2],
                                           "latent_image": ["1", 3], "optional_vae": ["1", 4], "script": ["3", 0],
                                           "seed": 9, "steps": 25, "cfg": 7.0, "sampler_name": "dpmpp_2m",
                                           "scheduler": "karras", "denoise": 1.0, "preview_method": "auto",
                                           "vae_decode": "true"}),
        })

    made = parse_chunks({"prompt": graph()})
    assert (made.width, made.height, made.steps, made.seed) == (512, 768, 25, 9)
    assert hires_settings(made) == (1.5, 0.45, 12) and made.extra["Hires upscaler"] == "4x-UltraSharp"
    made = parse_chunks({"prompt": graph(upscale_type="latent", hires_ckpt_name="sd15/photon_v1.safetensors")})
    assert made.extra["Hires upscaler"] == "Latent"
    assert "The second pass had its own model (photon_v1)" in hires_note(made)
    for changes in ({"iterations": 2}, {"iterations": 0}, {"upscale_by": 1.0}):
        assert hires_settings(parse_chunks({"prompt": graph(**changes)})) is None


@pytest.mark.parametrize("name, key", [
    ("Euler a", "euler_ancestral"), ("k_euler_ancestral", "euler_ancestral"), ("DPM++ 2M Karras", "dpmpp_2m"),
    ("dpmpp_2m_sde_gpu", "dpmpp_2m_sde"), ("sample_dpmpp_2m", "dpmpp_2m"), ("k_lms", "lms"), ("UniPC", "uni_pc"),
    ("DDIM", "ddim"), ("LCM", "lcm"), ("TCD", "tcd"), ("dpmpp_2m_k", "dpmpp_2m"), ("uni_pc_bh2", "uni_pc"),
])
def test_sampler_names_of_every_tool_map_to_one_vocabulary(name, key):
    assert sampler_key(name) == key


def test_a1111_loras_take_their_weights_from_the_prompt_tags(tmp_path):
    """A1111 names a LoRA in `Lora hashes` and applies it by a `<lora:NAME:WEIGHT>` tag: the weight is the tag's."""

    from hypersd_desktop.core.prompt_tags import without_network_tags

    text = ("a harbour at dawn, <lora:add_detail:0.6> oil painting <lora:film grain:1.2:0.5>, "
            "<lyco:loha_style:0.8> <lora:plain> <hypernet:old_net:0.3>\n"
            "Negative prompt: blurry\n"
            'Steps: 4, Sampler: DPM++ 2M, CFG scale: 1.5, Seed: 9, Size: 512x512, Model: sd15, '
            'Lora hashes: "add_detail: 7c6bad76eb54, film grain: 0123456789ab"')
    metadata, *_ = read_metadata(png(tmp_path / "a.png", parameters=text))
    assert metadata.prompt.startswith("a harbour at dawn, <lora:add_detail:0.6>")  # kept as written
    assert metadata.loras == (("add_detail", 0.6, "7c6bad76eb54"), ("film grain", 1.2, "0123456789ab"),
                              ("loha_style", 0.8, None), ("plain", 1.0, None))
    assert without_network_tags(metadata.prompt) == "a harbour at dawn, oil painting,"
    corpus = Path(__file__).parent / "corpus" / "sd-metadata" / "png" / "easy-reforge.png"  # written by reForge
    assert read_metadata(corpus)[0].loras == (("NoobV065sHyperDmd", 1.0, "45b5bd0819cf"),)


def test_clip_skip_is_read_from_a1111_text_and_comfyuis_clip_set_last_layer():
    corpus = Path(__file__).parent / "corpus" / "sd-metadata" / "png"
    assert read_metadata(corpus / "forge-neo.png")[0].clip_skip == 2  # "Clip skip: 2"
    assert read_metadata(corpus / "comfyui.png")[0].clip_skip == 2  # CLIPSetLastLayer, stop_at_clip_layer -2
    assert read_metadata(corpus / "easy-reforge.png")[0].clip_skip is None
    graph = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "anything.safetensors"}},
             "2": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["1", 1], "stop_at_clip_layer": -3}},
             "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": "a fox"}},
             "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
             "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["3", 0], "negative": ["3", 0],
                                                        "latent_image": ["4", 0], "seed": 1, "steps": 4, "cfg": 1,
                                                        "sampler_name": "euler", "scheduler": "normal"}}}
    metadata = parse_chunks({"prompt": json.dumps(graph)})
    assert metadata.format == "comfyui" and metadata.clip_skip == 3 and metadata.prompt == "a fox"
    graph["2"]["inputs"]["stop_at_clip_layer"] = -1
    assert parse_chunks({"prompt": json.dumps(graph)}).clip_skip == 1


def test_embeddings_and_civitais_hashes_field_are_read_from_a1111_text(tmp_path):
    """A1111 names the embeddings its prompts used in `TI hashes`; Civitai's extension adds an unquoted JSON
    `Hashes` field, whose commas must not split it (A1111's own pattern would)."""
    text = ("a lighthouse, EasyNegative <lora:more_details:0.5>\n"
            "Negative prompt: badhandv4, (EasyNegative:1.2)\n"
            "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x768, Model hash: 6ce0161689, Model: v1-5, "
            'TI hashes: "EasyNegative: c74b4e810b03, badhandv4: 5e40d722fc3d", '
            'Hashes: {"vae": "c6a580b13a", "embed:EasyNegative": "c74b4e810b", "model": "6ce0161689", '
            '"lora:more_details": "3b8aa1d351"}, Version: v1.6.0')
    metadata, *_ = read_metadata(png(tmp_path / "civitai.png", parameters=text))
    assert metadata.embeddings == (("EasyNegative", "c74b4e810b03"), ("badhandv4", "5e40d722fc3d"))
    assert metadata.loras == (("more_details", 0.5, "3b8aa1d351"),)
    assert (metadata.width, metadata.height, metadata.model_hash) == (512, 768, "6ce0161689")
    assert metadata.extra == {"Version": "v1.6.0"}  # no stray "lora" or "embed" fields from the JSON
    # an image saver that writes only `Hashes` (no `Model hash`): the model's hash comes from it
    alone = "a fox\nSteps: 4, Sampler: Euler, Seed: 1, Model: sd15, Hashes: {\"model\": \"0123456789\", \"embed:x\": \"ab\"}"
    metadata, *_ = read_metadata(png(tmp_path / "saver.png", parameters=alone))
    assert (metadata.model_hash, metadata.embeddings, metadata.extra) == ("0123456789", (("x", "ab"),), {})
    corpus = Path(__file__).parent / "corpus" / "sd-metadata" / "png" / "comfyui-saveimagewithmetadata.png"
    metadata = read_metadata(corpus)[0]  # ComfyUI's SaveImageWithMetaData node, as written
    assert metadata.model_hash == "45a21ea00a" and "Hashes" not in metadata.extra


def test_civitais_generator_names_its_resources_in_unquoted_json():
    """Civitai's on-site generator writes `Civitai resources: [...]` unquoted; it names the model (the text has no
    `Model`), LoRAs with weights and embeddings by their Civitai names."""
    corpus = Path(__file__).parent / "corpus" / "sd-metadata" / "jpg" / "civitai.jpeg"
    metadata = read_metadata(corpus)[0]
    assert metadata.model_name == "WAI-illustrious-SDXL" and metadata.clip_skip == 2
    assert json.loads(metadata.extra["Civitai resources"])[0]["modelVersionName"] == "v16.0"  # whole, not cut at ","
    text = ('a cat <lora:detail:0.4>\nSteps: 4, Sampler: Euler, Seed: 1, Civitai resources: [{"type":"checkpoint",'
            '"modelVersionId":1,"modelName":"Juggernaut XL","modelVersionName":"v9"},{"type":"lora","weight":0.6,'
            '"modelVersionId":2,"modelName":"Hyper-SD"},{"type":"embed","modelName":"negativeXL_D"}], '
            'Civitai metadata: {"remixOfId": 5}, Broken: [not json, Version: v1')
    metadata = parse_chunks({"parameters": text})
    assert metadata.model_name == "Juggernaut XL" and metadata.seed == 1
    assert metadata.loras == (("Hyper-SD", 0.6, None), ("detail", 0.4, None))
    assert metadata.embeddings == (("negativeXL_D", None),)
    assert metadata.extra["Broken"] == "[not json" and metadata.extra["Version"] == "v1"


@pytest.mark.parametrize(("hires", "own"), [
    ("Hires steps: 10, Hires upscaler: Latent", None),
    ("Hires CFG Scale: 6, Hires upscaler: Latent, Hires sampler: Use same sampler, "
     "Hires checkpoint: Use same checkpoint", None),  # reForge and Forge write them even when they are the first pass's
    ('Hires CFG Scale: 4, Hires prompt: "a fox, detailed fur", Hires sampler: Euler a, '
     "Hires checkpoint: juggernaut_xl [d91d35736d]", "own sampler (Euler a) and model (juggernaut_xl)"),
    ('Hires negative prompt: "lowres"', None),  # its prompts reuse repeats (`hires_prompts`)
])
def test_reuse_says_which_settings_of_a_hires_pass_it_does_not_repeat(hires, own):
    """A1111 lets the second pass have its own prompt, CFG scale, sampler and model; this app's Hires fix runs
    its own prompts and CFG scale but the first pass's sampler and model, and the note on reuse says which the
    image had."""
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import hires_guidance, hires_note

    metadata = parse_a1111("a fox\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 6, Seed: 3, "
                           f"Size: 512x512, Denoising strength: 0.4, Hires upscale: 2, {hires}")
    note = hires_note(metadata)
    assert note.startswith("The image was made at 512 × 512 and then enlarged to 1024 × 1024")
    assert hires_guidance(metadata) == (4 if "Hires CFG Scale: 4" in hires else None)  # 6: the first pass's
    if own is None:
        assert "second pass had" not in note
    else:
        assert f"The second pass had its {own}, which reuse does not repeat" in note


A1111_BASE = "a fox\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 6, Seed: 3, Size: 512x512, "


@pytest.mark.parametrize(("fields", "said"), [
    ("Denoising strength: 0.75", "image-to-image from another picture at strength 0.75, which reuse does not "
                                 "repeat. Give that picture as the init image to make it again from it (at strength "
                                 "0.75)."),
    ("Denoising strength: 0.5, Mask blur: 4, Inpaint area: Only masked", "inpainting from another picture at "
                                                                         "strength 0.5, which reuse does not repeat. "
                                                                         "Give that picture as the init image with its mask"),
    ('ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1, Guidance Start: 0", '
     'ControlNet 1: "Module: none, Model: control_v11f1p_sd15_depth [cfd03158], Weight: 0.5"',
     "ControlNet (canny and control_v11f1p_sd15_depth)"),
    ("ControlNet-0 Enabled: True, ControlNet-0 Module: openpose, ControlNet-0 Model: control_sd15_openpose [fef5e48e]",
     "ControlNet (openpose)"),  # sd-webui-controlnet of early 2023
    # sd-webui-controlnet 1.1.2xx, with A1111 1.2 to 1.4: lower-case fields, and "ControlNet" alone for one unit
    ('ControlNet 0: "preprocessor: lineart_coarse, model: control_v11p_sd15_lineart [43d4be0d], weight: 0.6, '
     'starting/ending: (0.1, 0.8), resize mode: Crop and Resize, pixel perfect: True, control mode: ControlNet is '
     'more important, preprocessor params: (512, 32, 64)"', "ControlNet (lineart_coarse)"),
    ('ControlNet: "preprocessor: none, model: control_v1p_sd15_qrcode_monster [a6e58995], weight: 1.35, '
     'starting/ending: (0.05, 1), preprocessor params: (512, 64, 64)"', "ControlNet (control_v1p_sd15_qrcode_monster)"),
    # IP-Adapters run as ControlNet units: sd-webui-controlnet's, Forge's FaceID, this app's own
    ('ControlNet 0: "Module: ip-adapter_clip_sd15, Model: ip-adapter-plus_sd15 [c817b455], Weight: 0.7, Resize Mode: '
     'Crop and Resize, Guidance Start: 0, Guidance End: 1", ControlNet 1: "Module: canny, Model: '
     'control_v11p_sd15_canny [d14c016b], Weight: 1"', "ControlNet (canny) and IP-Adapter (ip-adapter-plus_sd15)"),
    ('ControlNet 0: "preprocessor: InsightFace+CLIP-H (IPAdapter), model: ip-adapter-faceid-plusv2_sd15 [6e14fc1a], '
     'weight: 1, starting/ending: (0, 1)"', "IP-Adapter (ip-adapter-faceid-plusv2_sd15)"),
    ('ControlNet 0: "Module: ip-adapter_clip_h, Model: ip-adapter_sd15, Weight: 0.6, Guidance Start: 0, Guidance '
     'End: 1"', "IP-Adapter (ip-adapter_sd15)"),
    # the face and hand passes are Detail faces and Detail hands (`detail_pass`); a person's pass is not repeated,
    # nor a second face pass (the eyes' of mediapipe's face mesh)
    ("ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3, ADetailer model 2nd: hand_yolov8n.pt", None),
    ("ADetailer model: face_yolov8n.pt, ADetailer model 2nd: person_yolov8n-seg.pt, ADetailer model 3rd: "
     "hand_yolov8n.pt, ADetailer model 4th: mediapipe_face_mesh_eyes_only",
     "ADetailer's second pass (person_yolov8n-seg.pt and mediapipe_face_mesh_eyes_only)"),
    ("ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3", None),
    ("ADetailer model: person_yolov8n-seg.pt", "ADetailer's second pass (person_yolov8n-seg.pt)"),
    ("Refiner: sd_xl_refiner_1.0 [7440042bbd], Refiner switch at: 0.8", "the refiner sd_xl_refiner_1.0 from 80% of"),
    ("Variation seed: 12345, Variation seed strength: 0.3", None),  # reuse varies the image by it
    ("Denoising strength: 0.5, Variation seed: 12345, Variation seed strength: 0.3",  # not an image from the prompt
     "image-to-image from another picture at strength 0.5 and the variation seed 12345 at 0.3"),
    ("Face restoration: CodeFormer, Tiling: True", "with face restoration (CodeFormer), which"),  # tiling: reused
    ("Denoising strength: 0.4, Hires upscale: 2, Variation seed strength: 0", None),  # a Hires fix: hires_note's
    # an X/Y/Z plot's grid (A1111 1.x writes the plot into its grid's text): reuse makes its first image
    ('Script: X/Y/Z plot, X Type: Steps, X Values: "10,20,30", Y Type: Sampler, Y Values: "Euler a, DPM++ 2M '
     'Karras"', "an X/Y/Z plot of Steps (10,20,30) × Sampler (Euler a, DPM++ 2M Karras) (this is its grid; reuse "
     "makes its first image)"),
    ("Script: X/Y/Z plot, X Type: Seed, X Values: -1, Fixed X Values: 7, Y Type: Nothing, Z Type: CFG Scale, "
     "Z Values: 5", "an X/Y/Z plot of Seed (7) × CFG Scale (5)"),
    ("Script: Prompt matrix", None),  # another script: no plot
])
def test_reuse_names_what_an_a1111_image_had_besides_its_settings(fields, said):
    """Reuse makes an image from its prompt and settings; what A1111 and its extensions added (a source picture,
    ControlNet, ADetailer, the refiner, a variation seed, face restoration, tiling) is named, not dropped unsaid."""
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import unrepeated_note

    note = unrepeated_note(parse_a1111(A1111_BASE + fields))
    if said is None:
        assert note is None
    else:
        assert note.startswith("The image was made with ") and ", which reuse does not repeat." in note
        assert said in note


@pytest.mark.parametrize(("record", "said"), [
    ({"generation_mode": "img2img", "strength": 0.55, "init_image": "b3a1.png",  # 3.x, with its ControlNet units
      "controlnets": [{"control_model": {"model_name": "canny", "base_model": "sd-1"}, "control_weight": 1}],
      "t2iAdapters": [{"t2i_adapter_model": {"model_name": "t2i-sketch"}}]},
     "image-to-image from another picture (b3a1.png) at strength 0.55 and ControlNet (canny and t2i-sketch)"),
    ({"generation_mode": "sdxl_inpaint", "canvas_v2_metadata": {"controlLayers": [  # 5.x's canvas
        {"isEnabled": True, "controlAdapter": {"type": "controlnet", "model": {"name": "xinsir-canny-sdxl"}}},
        {"isEnabled": False, "controlAdapter": {"type": "controlnet", "model": {"name": "switched-off"}}}]},
      "ref_images": [{"config": {"type": "ip_adapter", "model": {"name": "Standard Reference (IP Adapter ViT-H)"}}}],
      "seamless_x": True, "seamless_y": False, "refiner_model": {"name": "sdxl-refiner"}, "refiner_start": 0.8},
     "inpainting from another picture, ControlNet (xinsir-canny-sdxl), IP-Adapter (Standard Reference (IP Adapter "
     "ViT-H)) and the refiner sdxl-refiner from 80% of the steps, which reuse does not repeat. Give that "
     "picture as the init image with its mask"),
    ({"generation_mode": "sdxl_txt2img", "seamless_x": False, "seamless_y": False}, None),
])
def test_invokeai_says_what_it_ran_besides_its_settings(record, said):
    from hypersd_desktop.gallery.formats.common import tiling_of, unrepeated_note

    """InvokeAI's metadata says the picture or canvas it started from, its control layers, its reference images
    (IP-Adapters), seamless tiling and the refiner; reuse names them, switched-off layers not among them."""
    metadata = parse_chunks({"invokeai_metadata": json.dumps({"positive_prompt": "a cat", "seed": 3, **record})})
    assert tiling_of(metadata) == ("x" if record.get("seamless_x") else "off")  # seamless X only: reused as "x"
    if said is not None:
        assert said in unrepeated_note(metadata)
    else:
        assert unrepeated_note(metadata) is None
    corpus, *_ = read_metadata(CORPUS / "sd-parsers" / "invokeai_imeta1.png")  # a real one, with an IP-Adapter
    assert "IP-Adapter (ip-adapter-plus_sdxl_vit-h)" in unrepeated_note(corpus)


def test_a_comfyui_graph_that_encodes_a_picture_or_uses_controlnet_says_so():
    """ComfyUI's graphs say the same in nodes: a sampler whose latent encodes a loaded picture at a denoise under 1
    (image-to-image), or masked (inpainting, at any denoise); ControlNets on its positive prompt, by model;
    IP-Adapters on its model's path; a detailer after it (a face detailer is reuse's Detail faces, a hand detailer its
    Detail hands)."""
    from hypersd_desktop.gallery.formats.common import (
        PartPass, detail_notes, detail_pass, other_passes, unrepeated_note,
    )

    metadata, *_ = read_metadata(CORPUS / "sd-parsers" / "img2img_cropped.png")  # ComfyUI's img2img example
    assert (metadata.extra["Denoising strength"], metadata.extra["Init image"]) == ("0.87", "example.png")
    assert "image-to-image from another picture (example.png) at strength 0.87" in unrepeated_note(metadata)
    inpaint = comfy({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "sd15-inpainting.safetensors"}),
        "2": ("LoadImage", {"image": "yosemite_inpaint_example.png", "upload": "image"}),
        "3": ("VAEEncodeForInpaint", {"pixels": ["2", 0], "vae": ["1", 2], "mask": ["2", 1], "grow_mask_by": 6}),
        "4": ("CLIPTextEncode", {"text": "a lake", "clip": ["1", 1]}),
        "5": ("ControlNetLoader", {"control_net_name": "control_v11p_sd15_canny.pth"}),
        "6": ("ControlNetApplyAdvanced", {"positive": ["4", 0], "negative": ["4", 0], "control_net": ["5", 0],
                                          "image": ["2", 0], "strength": 1.0}),
        "7": ("KSampler", {"seed": 1, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                           "denoise": 1.0, "model": ["1", 0], "positive": ["6", 0], "negative": ["6", 1],
                           "latent_image": ["3", 0]})})
    metadata = parse_chunks({"prompt": inpaint})
    assert metadata.extra["Mask"] == "VAEEncodeForInpaint" and metadata.extra["ControlNet 0"] == \
        "Model: control_v11p_sd15_canny"
    note = unrepeated_note(metadata)
    assert "inpainting from another picture (yosemite_inpaint_example.png) at strength 1" in note
    assert "ControlNet (control_v11p_sd15_canny)" in note
    # IPAdapter Plus on the model's path, Impact Pack's FaceDetailer after the sampler (their nodes' input names)
    adapted = comfy({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "dreamshaper_8.safetensors"}),
        "2": ("IPAdapterModelLoader", {"ipadapter_file": "ip-adapter-plus_sd15.safetensors"}),
        "3": ("LoadImage", {"image": "reference.png", "upload": "image"}),
        "4": ("IPAdapterAdvanced", {"model": ["1", 0], "ipadapter": ["2", 0], "image": ["3", 0], "weight": 0.8,
                                    "weight_type": "linear", "start_at": 0.0, "end_at": 1.0}),
        "5": ("CLIPTextEncode", {"text": "a portrait", "clip": ["1", 1]}),
        "6": ("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}),
        "7": ("KSampler", {"seed": 1, "steps": 8, "cfg": 2, "sampler_name": "euler", "scheduler": "normal",
                           "denoise": 1.0, "model": ["4", 0], "positive": ["5", 0], "negative": ["5", 0],
                           "latent_image": ["6", 0]}),
        "8": ("VAEDecode", {"samples": ["7", 0], "vae": ["1", 2]}),
        "9": ("UltralyticsDetectorProvider", {"model_name": "bbox/face_yolov8m.pt"}),
        "10": ("FaceDetailer", {"image": ["8", 0], "model": ["1", 0], "clip": ["1", 1], "vae": ["1", 2],
                                "bbox_detector": ["9", 0], "positive": ["5", 0], "negative": ["5", 0],
                                "denoise": 0.5, "seed": 2, "steps": 8, "cfg": 2}),
        "11": ("SaveImage", {"images": ["10", 0]})})
    metadata = parse_chunks({"prompt": adapted})
    assert (metadata.prompt, metadata.seed, metadata.steps) == ("a portrait", 1, 8)  # the sampler, not the detailer
    # the FaceDetailer with a face detector is reuse's Detail faces, at its denoise (the bbox threshold its default)
    assert unrepeated_note(metadata) == "The image was made with IP-Adapter (ip-adapter-plus_sd15), which reuse does " \
                                        "not repeat."
    assert detail_pass(metadata, "face") == PartPass("face_yolov8m", 0.5, 0.3, 32, 4, "", "",
                                                     "Impact Pack's FaceDetailer")
    assert detail_pass(metadata, "hand") is None
    assert "faces were made again by Impact Pack's FaceDetailer (face_yolov8m, strength 0.5)" in \
        detail_notes(metadata)[0]
    assert "Impact Pack's FaceDetailer (face_yolov8m)" in other_passes(metadata)  # what the image was made with
    hands = json.loads(adapted)
    hands["9"]["inputs"]["model_name"] = "bbox/hand_yolov8s.pt"
    hands["10"]["inputs"]["bbox_threshold"] = 0.6
    metadata = parse_chunks({"prompt": json.dumps(hands)})
    assert detail_pass(metadata, "face") is None and unrepeated_note(metadata) == "The image was made with " \
        "IP-Adapter (ip-adapter-plus_sd15), which reuse does not repeat."  # the hands' detailer is Detail hands
    assert detail_pass(metadata, "hand") == PartPass("hand_yolov8s", 0.5, 0.6, 32, 4, "", "",
                                                     "Impact Pack's FaceDetailer")
    own = json.loads(json.dumps(hands))
    own["10"]["inputs"].update(steps=4, cfg=1.5)  # its own steps and CFG scale, not the sampler's
    own["10"]["inputs"].update(bbox_dilation=10, feather=5)  # its mask grown, its edge feathered
    found = detail_pass(parse_chunks({"prompt": json.dumps(own)}), "hand")
    assert (found.steps, found.guidance, found.size, found.dilate_erode, found.mask_blur) == (4, 1.5, None, 10, 5)
    # a face's FaceDetailer, then a hand's (the graph written hand first): each its own pass, with its own numbers
    hands["12"] = {"class_type": "FaceDetailer", "inputs": {**hands["10"]["inputs"], "image": ["8", 0],
                                                            "bbox_detector": ["13", 0], "denoise": 0.35}}
    hands["13"] = {"class_type": "UltralyticsDetectorProvider", "inputs": {"model_name": "bbox/face_yolov8m.pt"}}
    hands["10"]["inputs"]["image"] = ["12", 0]
    metadata = parse_chunks({"prompt": json.dumps(hands)})
    assert detail_pass(metadata, "face") == PartPass("face_yolov8m", 0.35, 0.6, 32, 4, "", "",
                                                     "Impact Pack's FaceDetailer")
    assert detail_pass(metadata, "hand").strength == 0.5
    assert [key for key in metadata.extra if key.startswith("Detailer model")] == ["Detailer model",
                                                                                   "Detailer model 2nd"]
    assert metadata.extra["Detailer model"] == "face_yolov8m"  # the one the sampler's image goes through first
    assert "detailer" not in (unrepeated_note(metadata) or "").lower()
    person = json.loads(json.dumps(hands))
    person["13"]["inputs"]["model_name"] = "segm/person_yolov8m-seg.pt"
    assert "Impact Pack's FaceDetailer (person_yolov8m-seg)" in unrepeated_note(
        parse_chunks({"prompt": json.dumps(person)}))
    plain = json.loads(inpaint)
    plain["3"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["1", 2]}}
    assert unrepeated_note(parse_chunks({"prompt": json.dumps({**plain, "6": plain["4"]})})) is None  # denoise 1


def sampled(nodes: dict) -> dict:
    """`nodes` and a KSampler on the model of node "9", with texts and an empty latent."""
    return comfy({**nodes,
                  "20": ("CLIPTextEncode", {"text": "a quiet harbour", "clip": ["1", 1]}),
                  "21": ("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}),
                  "22": ("KSampler", {"seed": 5, "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal",
                                      "denoise": 1.0, "model": ["9", 0], "positive": ["20", 0], "negative": ["20", 0],
                                      "latent_image": ["21", 0]})})


def test_comfyui_loras_of_rgthrees_power_lora_loader_those_switched_on():
    graph = sampled({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "dreamshaper_8.safetensors"}),
        "9": ("Power Lora Loader (rgthree)", {
            "PowerLoraLoaderHeaderWidget": {"type": "PowerLoraLoaderHeaderWidget"}, "➕ Add Lora": "",
            "lora_1": {"on": True, "lora": "SDXL/add-detail-xl.safetensors", "strength": 0.95},
            "lora_2": {"on": False, "lora": "DMD2/dmd2_sdxl_4step_lora_fp16.safetensors", "strength": 1},
            "lora_10": {"on": True, "lora": "style.safetensors", "strength": 0.8},
            "model": ["1", 0], "clip": ["1", 1]}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert metadata.model_name == "dreamshaper_8"
    assert metadata.loras == (("add-detail-xl", 0.95, None), ("style", 0.8, None))


def test_comfyui_loras_of_rgthrees_lora_loader_stack():
    graph = sampled({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "base.safetensors"}),
        "2": ("Primitive string [Crystools]", {"string": "linked.safetensors"}),
        "9": ("Lora Loader Stack (rgthree)", {"model": ["1", 0], "clip": ["1", 1],
                                              "lora_01": "first.safetensors", "strength_01": 0.6,
                                              "lora_02": "None", "strength_02": 1.0,
                                              "lora_03": "zero.safetensors", "strength_03": 0.0,
                                              "lora_04": ["2", 0], "strength_04": 0.3}),
    })
    assert parse_chunks({"prompt": graph}).loras == (("first", 0.6, None), ("linked", 0.3, None))


def test_comfyui_lora_stacks_of_comfyroll_and_efficiency_nodes():
    """Comfyroll's stacks chain into CR Apply LoRA Stack (the upstream stack's LoRAs first; "Off" ones not
    applied); Efficiency's Efficient Loader applies its own LoRA, then its LoRA Stacker's first `lora_count`."""
    comfyroll = sampled({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "base.safetensors"}),
        "2": ("CR LoRA Stack", {"switch_1": "On", "lora_name_1": "first.safetensors", "model_weight_1": 0.5,
                                "clip_weight_1": 1.0, "switch_2": "Off", "lora_name_2": "off.safetensors",
                                "model_weight_2": 1.0, "clip_weight_2": 1.0}),
        "3": ("CR LoRA Stack", {"switch_1": "On", "lora_name_1": "second.safetensors", "model_weight_1": 0.7,
                                "clip_weight_1": 1.0, "switch_2": "On", "lora_name_2": "None", "model_weight_2": 1.0,
                                "clip_weight_2": 1.0, "lora_stack": ["2", 0]}),
        "4": ("CR Apply LoRA Stack", {"model": ["1", 0], "clip": ["1", 1], "lora_stack": ["3", 0]}),
        "9": ("LoraLoader", {"lora_name": "last.safetensors", "strength_model": 0.6, "strength_clip": 0.6,
                             "model": ["4", 0], "clip": ["4", 1]}),
    })
    assert parse_chunks({"prompt": comfyroll}).loras == (("first", 0.5, None), ("second", 0.7, None),
                                                         ("last", 0.6, None))
    efficiency = sampled({
        "2": ("LoRA Stacker", {"input_mode": "simple", "lora_count": 2, "lora_name_1": "stacked.safetensors",
                               "lora_wt_1": 0.4, "model_str_1": 1.0, "lora_name_2": "None", "lora_wt_2": 1.0,
                               "lora_name_3": "beyond_the_count.safetensors", "lora_wt_3": 1.0}),
        "9": ("Efficient Loader", {"ckpt_name": "base.safetensors", "vae_name": "Baked VAE", "clip_skip": -1,
                                   "lora_name": "own.safetensors", "lora_model_strength": 0.9,
                                   "lora_clip_strength": 1.0, "lora_stack": ["2", 0]}),
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "unused.safetensors"}),
    })
    metadata = parse_chunks({"prompt": efficiency})
    assert metadata.model_name == "base" and metadata.loras == (("own", 0.9, None), ("stacked", 0.4, None))
    without = json.loads(efficiency)
    without["9"]["inputs"]["lora_name"] = "None"
    assert parse_chunks({"prompt": json.dumps(without)}).loras == (("stacked", 0.4, None),)


def test_comfyui_prompts_through_controlnets_keep_their_sides():
    """ControlNetApplyAdvanced (and every node that takes both prompts) passes the positive and the negative
    through: each prompt is read along its own side, through a chain of them (the negative read the positive's
    text before)."""
    graph = comfy({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "m.safetensors"}),
        "2": ("CLIPTextEncode", {"text": "a lighthouse", "clip": ["1", 1]}),
        "3": ("CLIPTextEncode", {"text": "blurry", "clip": ["1", 1]}),
        "4": ("ControlNetLoader", {"control_net_name": "canny.safetensors"}),
        "5": ("LoadImage", {"image": "edges.png"}),
        "6": ("ControlNetApplyAdvanced", {"positive": ["2", 0], "negative": ["3", 0], "control_net": ["4", 0],
                                          "image": ["5", 0], "strength": 0.8, "start_percent": 0, "end_percent": 1}),
        "7": ("ControlNetApplyAdvanced", {"positive": ["6", 0], "negative": ["6", 1], "control_net": ["4", 0],
                                          "image": ["5", 0], "strength": 0.5, "start_percent": 0, "end_percent": 1}),
        "8": ("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}),
        "9": ("KSampler", {"seed": 1, "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal",
                           "denoise": 1.0, "model": ["1", 0], "positive": ["7", 0], "negative": ["7", 1],
                           "latent_image": ["8", 0]}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert (metadata.prompt, metadata.negative_prompt) == ("a lighthouse", "blurry")


def test_comfyui_efficiency_nodes_loader_and_sampler():
    """Efficiency's Efficient Loader holds the prompts, size, clip skip and VAE; its KSampler decodes itself."""
    graph = comfy({
        "1": ("Efficient Loader", {
            "ckpt_name": "dreamshaper_8.safetensors", "vae_name": "vae-ft-mse-840000-ema-pruned.safetensors",
            "clip_skip": -2, "lora_name": "None", "lora_model_strength": 1.0, "lora_clip_strength": 1.0,
            "positive": "a lighthouse at dusk", "negative": "blurry, lowres", "token_normalization": "none",
            "weight_interpretation": "comfy", "empty_latent_width": 512, "empty_latent_height": 768,
            "batch_size": 1}),
        "2": ("KSampler (Efficient)", {"seed": 1234, "steps": 25, "cfg": 7.0, "sampler_name": "dpmpp_2m",
                                       "scheduler": "karras", "denoise": 1.0, "preview_method": "auto",
                                       "vae_decode": "true", "model": ["1", 0], "positive": ["1", 1],
                                       "negative": ["1", 2], "latent_image": ["1", 3], "optional_vae": ["1", 4]}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert (metadata.prompt, metadata.negative_prompt) == ("a lighthouse at dusk", "blurry, lowres")
    assert (metadata.seed, metadata.steps, metadata.guidance, metadata.sampler) == (1234, 25, 7.0, "dpmpp_2m")
    assert (metadata.width, metadata.height, metadata.clip_skip, metadata.model_name) == (512, 768, 2, "dreamshaper_8")
    assert metadata.vae_name == "vae-ft-mse-840000-ema-pruned.safetensors" and metadata.loras == ()
    baked = json.loads(graph)
    baked["1"]["inputs"]["vae_name"] = "Baked VAE"
    assert parse_chunks({"prompt": json.dumps(baked)}).vae_name is None


def test_comfyui_prompts_from_a_node_giving_both_take_the_side_linked():
    """The SDXL Prompt Styler gives the positive and the negative text as its two outputs: each encoder's text is
    the one of the output it links (the negative read the positive's before)."""
    graph = sampled({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "sdxl.safetensors"}),
        "2": ("SDXLPromptStyler", {"text_positive": "a castle on a hill", "text_negative": "blurry",
                                   "style": "base", "log_prompt": False}),
        "9": ("LoraLoader", {"lora_name": "None", "strength_model": 1.0, "strength_clip": 1.0, "model": ["1", 0],
                             "clip": ["1", 1]}),
        "30": ("CLIPTextEncode", {"text": ["2", 0], "clip": ["1", 1]}),
        "31": ("CLIPTextEncode", {"text": ["2", 1], "clip": ["1", 1]}),
    })
    data = json.loads(graph)
    data["22"]["inputs"].update(positive=["30", 0], negative=["31", 0])
    metadata = parse_chunks({"prompt": json.dumps(data)})
    assert (metadata.prompt, metadata.negative_prompt, metadata.loras) == ("a castle on a hill", "blurry", ())


def test_comfyui_loaders_with_preview_images_give_their_files_names():
    """pysssss's CheckpointLoader and LoraLoader (with preview images) pass {"content": name, "image": …}."""
    graph = sampled({
        "1": ("CheckpointLoader|pysssss", {"ckpt_name": {"content": "sd15/dreamshaper_8.safetensors",
                                                         "image": "checkpoints/sd15/dreamshaper_8.png"}}),
        "9": ("LoraLoader|pysssss", {"lora_name": {"content": "detail.safetensors", "image": None},
                                     "strength_model": 0.7, "strength_clip": 1.0, "model": ["1", 0], "clip": ["1", 1]}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert (metadata.model_name, metadata.loras) == ("dreamshaper_8", (("detail", 0.7, None),))


def test_comfyui_impact_wildcard_nodes_give_the_text_as_populated():
    """Impact Pack's wildcard nodes hold the template (`wildcard_text`) and the text as it ran
    (`populated_text`): the prompt is the populated one, not both, and their seed is not taken for a text."""
    graph = sampled({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "m.safetensors"}),
        "9": ("ImpactWildcardEncode", {"wildcard_text": "a __animal__ in the snow",
                                       "populated_text": "a red fox in the snow", "mode": "populate",
                                       "Select to add LoRA": "Select the LoRA to add to the text",
                                       "Select to add Wildcard": "Select the Wildcard to add to the text",
                                       "seed": 7, "model": ["1", 0], "clip": ["1", 1]}),
        "10": ("ImpactWildcardProcessor", {"wildcard_text": "__style__, portrait",
                                           "populated_text": "oil painting, portrait", "mode": "populate", "seed": 3,
                                           "Select to add Wildcard": "Select the Wildcard to add to the text"}),
        "11": ("CLIPTextEncode", {"text": ["10", 0], "clip": ["1", 1]}),
    })
    data = json.loads(graph)
    data["22"]["inputs"].update(positive=["9", 2])
    assert parse_chunks({"prompt": json.dumps(data)}).prompt == "a red fox in the snow"
    data["22"]["inputs"].update(positive=["11", 0])
    assert parse_chunks({"prompt": json.dumps(data)}).prompt == "oil painting, portrait"


def test_comfyui_texts_joined_by_concatenating_nodes():
    """ComfyUI's StringConcatenate (no delimiter unless given) and WAS's Text Concatenate (its delimiter, inputs in
    order, text_10 after text_2) build the prompt from several boxes: the prompt is their join, not the first."""
    graph = sampled({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "m.safetensors"}),
        "9": ("LoraLoader", {"lora_name": "None", "strength_model": 1.0, "strength_clip": 1.0, "model": ["1", 0],
                             "clip": ["1", 1]}),
        "2": ("PrimitiveStringMultiline", {"value": "a red fox"}),
        "3": ("StringConcatenate", {"string_a": ["2", 0], "string_b": " in the snow", "delimiter": ""}),
        "4": ("Text Concatenate", {"delimiter": ", ", "clean_whitespace": "true", "text_10": "35mm",
                                   "text_2": ["3", 0], "text_1": "photo"}),
        "30": ("CLIPTextEncode", {"text": ["4", 0], "clip": ["1", 1]}),
    })
    data = json.loads(graph)
    data["22"]["inputs"].update(positive=["30", 0])
    assert parse_chunks({"prompt": json.dumps(data)}).prompt == "photo, a red fox in the snow, 35mm"


def test_comfyui_joins_of_joins_and_cycles_are_bounded():
    """A chain of concatenations each taking the one before twice doubles its text 60 times, and two that take
    each other loop: both are read, the text cut at 100,000 characters (uncut, 2^60 of them would not fit)."""
    nodes = {"0": ("PrimitiveString", {"value": "x"}), "9": ("CheckpointLoaderSimple", {"ckpt_name": "m"}),
             "1": ("CheckpointLoaderSimple", {"ckpt_name": "m"})}
    for i in range(1, 61):
        nodes[f"j{i}"] = ("StringConcatenate", {"string_a": [f"j{i - 1}" if i > 1 else "0", 0],
                                                "string_b": [f"j{i - 1}" if i > 1 else "0", 0], "delimiter": ""})
    nodes["c1"] = ("StringConcatenate", {"string_a": ["c2", 0], "string_b": "y", "delimiter": ""})
    nodes["c2"] = ("StringConcatenate", {"string_a": ["c1", 0], "string_b": "z", "delimiter": ""})
    nodes["30"] = ("CLIPTextEncode", {"text": ["j60", 0], "clip": ["1", 1]})
    nodes["31"] = ("CLIPTextEncode", {"text": ["c1", 0], "clip": ["1", 1]})
    data = json.loads(sampled(nodes))
    data["22"]["inputs"].update(positive=["30", 0], negative=["31", 0])
    metadata = parse_chunks({"prompt": json.dumps(data)})
    assert metadata.prompt == "x" * 100_000 and metadata.negative_prompt == "zy"


def test_comfyui_prompts_of_flux_and_sd3_text_encoders():
    """FLUX's and SD3's encoders hold a text per text encoder (often the same one): the gallery keeps them for
    search, once each, though the app runs neither model."""
    graph = sampled({
        "1": ("UNETLoader", {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}),
        "9": ("LoraLoaderModelOnly", {"lora_name": "None", "strength_model": 1.0, "model": ["1", 0]}),
        "30": ("CLIPTextEncodeFlux", {"clip_l": "a lighthouse", "t5xxl": "a lighthouse", "guidance": 3.5,
                                      "clip": ["1", 1]}),
        "31": ("CLIPTextEncodeSD3", {"clip_l": "blurry", "clip_g": "blurry", "t5xxl": "blurry, lowres",
                                     "empty_padding": "none", "clip": ["1", 1]}),
    })
    data = json.loads(graph)
    data["22"]["inputs"].update(positive=["30", 0], negative=["31", 0])
    metadata = parse_chunks({"prompt": json.dumps(data)})
    assert (metadata.prompt, metadata.negative_prompt) == ("a lighthouse", "blurry\nblurry, lowres")
    assert metadata.model_name == "flux1-dev"


def test_comfyui_easy_use_pipes_from_the_loader_through_pre_sampling():
    """Easy-Use's loader holds the model, prompts, size (a preset over its widths), clip skip, LoRA and VAE, and
    passes them on as a pipe; its pre-sampling node adds the seed, steps, guidance and sampler; its kSampler only
    runs the pipe. Read as one sampler."""
    graph = comfy({
        "1": ("easy a1111Loader", {"ckpt_name": "sd15/majicmixRealistic_v7.safetensors", "vae_name": "Baked VAE",
                                   "clip_skip": -2, "lora_name": "detail.safetensors", "lora_model_strength": 0.7,
                                   "lora_clip_strength": 1.0, "resolution": "512 x 768", "empty_latent_width": 512,
                                   "empty_latent_height": 512, "positive": "a girl in a garden",
                                   "negative": "lowres, bad hands", "batch_size": 1, "a1111_prompt_style": False}),
        "2": ("easy preSampling", {"pipe": ["1", 0], "steps": 25, "cfg": 7.0, "sampler_name": "dpmpp_2m",
                                   "scheduler": "karras", "denoise": 1.0, "seed": 987654321}),
        "3": ("easy kSampler", {"pipe": ["2", 0], "image_output": "Preview", "link_id": 0, "save_prefix": "ComfyUI"}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert (metadata.prompt, metadata.negative_prompt) == ("a girl in a garden", "lowres, bad hands")
    assert (metadata.seed, metadata.steps, metadata.guidance, metadata.sampler) == (987654321, 25, 7.0, "dpmpp_2m")
    assert (metadata.width, metadata.height, metadata.clip_skip) == (512, 768, 2)
    assert (metadata.model_name, metadata.loras, metadata.vae_name) == ("majicmixRealistic_v7",
                                                                        (("detail", 0.7, None),), None)
    from hypersd_desktop.gallery.formats.comfyui import parse_comfyui_graph

    data = json.loads(graph)
    assert parse_comfyui_graph(data) == metadata and data == json.loads(graph)  # the caller's graph is left as is


def test_comfyui_impact_packs_ksampler_with_a_basic_pipe():
    graph = comfy({
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "base.safetensors"}),
        "2": ("CLIPTextEncode", {"text": "a lighthouse", "clip": ["1", 1]}),
        "3": ("CLIPTextEncode", {"text": "blurry", "clip": ["1", 1]}),
        "4": ("ToBasicPipe", {"model": ["1", 0], "clip": ["1", 1], "vae": ["1", 2], "positive": ["2", 0],
                              "negative": ["3", 0]}),
        "5": ("EmptyLatentImage", {"width": 640, "height": 512, "batch_size": 1}),
        "6": ("ImpactKSamplerBasicPipe", {"basic_pipe": ["4", 0], "seed": 11, "steps": 6, "cfg": 2.0,
                                          "sampler_name": "euler", "scheduler": "sgm_uniform", "denoise": 1.0,
                                          "latent_image": ["5", 0]}),
    })
    metadata = parse_chunks({"prompt": graph})
    assert (metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.steps) == ("a lighthouse", "blurry",
                                                                                          11, 6)
    assert (metadata.model_name, metadata.width, metadata.height) == ("base", 640, 512)


def test_adetailers_face_pass_is_read_with_its_settings_and_prompts():
    """ADetailer's first pass, where its model finds faces: its strength, confidence, padding and blur (its defaults
    where the image leaves one out or has one out of range), and its own prompts, `[PROMPT]` being the image's."""
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import PartPass, detail_notes, detail_pass

    def face_pass(metadata):
        return detail_pass(metadata, "face")

    read = parse_a1111(A1111_BASE + 'ADetailer model: mediapipe_face_full, ADetailer prompt: "[PROMPT], freckles", '
                                    "ADetailer negative prompt: blur, ADetailer confidence: 0.25, ADetailer mask "
                                    "blur: 6, ADetailer denoising strength: 0.35, ADetailer inpaint padding: 48")
    prompt = read.prompt
    assert face_pass(read) == PartPass("mediapipe_face_full", 0.35, 0.25, 48, 6, f"{prompt}, freckles", "blur")
    assert "ADetailer (mediapipe_face_full, strength 0.35); reuse does that with Detail faces with its own prompt" \
           in detail_notes(read)[0]
    odd = parse_a1111(A1111_BASE + "ADetailer model: face_yolov8s.pt, ADetailer denoising strength: 3, ADetailer "
                                   "inpaint padding: many, ADetailer prompt: [PROMPT]")
    assert face_pass(odd) == PartPass("face_yolov8s.pt", 0.4, 0.3, 32, 4, "", "")  # [PROMPT] alone: the image's
    assert face_pass(parse_a1111(A1111_BASE + "ADetailer model: hand_yolov8n.pt")) is None
    assert face_pass(parse_a1111(A1111_BASE.rstrip(", "))) is None and detail_notes(parse_a1111(A1111_BASE)) == []

    # its own steps, CFG scale and size where it says it used them ("use separate …"); its other own settings named
    own = parse_a1111(A1111_BASE + "ADetailer model: face_yolov8n.pt, ADetailer use inpaint width height: True, "
                                   "ADetailer inpaint width: 1020, ADetailer inpaint height: 1024, ADetailer use "
                                   "separate steps: True, ADetailer steps: 30, ADetailer use separate CFG scale: True, "
                                   "ADetailer CFG scale: 5.0, ADetailer use separate sampler: True, ADetailer sampler: "
                                   "Euler a, ADetailer restore face: True, ADetailer ControlNet model: "
                                   "control_v11p_sd15_inpaint [ebff9138]")
    found = face_pass(own)
    assert (found.steps, found.guidance, found.size) == (30, 5.0, (1016, 1024))  # a size on multiples of 8
    assert ("reuse does that with Detail faces with its own 30 steps, CFG scale 5 and made at 1016 × 1024, which "
            "finds") in detail_notes(own)[0]
    assert detail_notes(own)[0].endswith("Its own sampler Euler a, ControlNet control_v11p_sd15_inpaint [ebff9138] "
                                         "and face restoration are not repeated.")
    switched_off = parse_a1111(A1111_BASE + "ADetailer model: face_yolov8n.pt, ADetailer steps: 30, ADetailer use "
                                            "separate CFG scale: False, ADetailer CFG scale: 5, ADetailer use inpaint "
                                            "width height: True")  # values without their switch, a switch alone
    found = face_pass(switched_off)
    assert (found.steps, found.guidance, found.size) == (None, None, None)


def test_adetailers_hand_pass_is_read_from_whichever_of_its_passes_finds_hands():
    """ADetailer writes its second pass's fields ending " 2nd" (the third's " 3rd" …): the hand pass is the first
    whose model finds hands, read with its own fields (not the face pass's), and a pass ADetailer skipped ("None")
    is none."""
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import PartPass, adetailer_suffix, detail_notes, detail_pass

    assert [adetailer_suffix(number) for number in (0, 1, 2, 3, 10, 11, 20)] == [
        "", " 2nd", " 3rd", " 4th", " 11th", " 12th", " 21st"]
    read = parse_a1111(A1111_BASE + "ADetailer model: face_yolov8n.pt, ADetailer denoising strength: 0.35, "
                                    "ADetailer model 2nd: None, ADetailer model 3rd: hand_yolov8n.pt, ADetailer "
                                    'prompt 3rd: "[PROMPT], five fingers", ADetailer confidence 3rd: 0.5, ADetailer '
                                    "denoising strength 3rd: 0.45, ADetailer inpaint padding 3rd: 24, ADetailer mask "
                                    "blur 3rd: 8")
    assert detail_pass(read, "hand") == PartPass("hand_yolov8n.pt", 0.45, 0.5, 24, 8, f"{read.prompt}, five fingers",
                                                 "")
    assert detail_pass(read, "face") == PartPass("face_yolov8n.pt", 0.35, 0.3, 32, 4, "", "")
    notes = detail_notes(read)
    assert len(notes) == 2
    assert "reuse does that with Detail hands with its own prompt, which finds the hands" in notes[1]
    alone = parse_a1111(A1111_BASE + "ADetailer model: hand_yolov8n.pt, ADetailer denoising strength: 0.3")
    assert detail_pass(alone, "hand") == PartPass("hand_yolov8n.pt", 0.3, 0.3, 32, 4, "", "")
    assert detail_pass(alone, "face") is None


def test_ultimate_sd_upscales_tiles_are_read_from_a1111s_text_and_its_comfyui_node():
    """The Ultimate SD Upscale extension's fields (A1111) and its ComfyUI node: the tiles reuse asks for (In tiles),
    and the pass named among what the image was made with."""
    from hypersd_desktop.core.vocab import SeamFix
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import (
        other_passes, repaint_tile, seams_fix_of, tile_surround, unrepeated_note,
    )

    read = parse_a1111(A1111_BASE + "Denoising strength: 0.3, Ultimate SD upscale upscaler: 4x-UltraSharp, Ultimate "
                                    "SD upscale tile_width: 512, Ultimate SD upscale tile_height: 512, Ultimate SD "
                                    "upscale mask_blur: 8, Ultimate SD upscale padding: 32")
    assert repaint_tile(read) == 512 and tile_surround(read) == (32, 8)
    assert tile_surround(parse_a1111(A1111_BASE + "Ultimate SD upscale tile_width: 512, Ultimate SD upscale "
                                                  "mask_blur: 16, Ultimate SD upscale padding: 64")) == (64, 16)
    assert tile_surround(parse_a1111(A1111_BASE + "Ultimate SD upscale padding: 500")) == (32, 8)  # past its slider
    assert ("Ultimate SD Upscale (tiles of 512, enlarged by 4x-UltraSharp; reuse ticks In tiles, for the picture it "
            "was made from given with Enlarge)") in other_passes(read)
    assert "image-to-image from another picture at strength 0.3" in unrepeated_note(read)
    assert repaint_tile(parse_a1111(A1111_BASE + "Ultimate SD upscale tile_width: 30")) is None
    assert repaint_tile(parse_a1111(A1111_BASE + "Ultimate SD upscale tile_width: 3000")) == 2048
    assert repaint_tile(parse_a1111(A1111_BASE.rstrip(", "))) is None
    nodes = {
        "1": ("CheckpointLoaderSimple", {"ckpt_name": "juggernautXL.safetensors"}),
        "2": ("CLIPTextEncode", {"text": "a castle on a hill", "clip": ["1", 1]}),
        "3": ("EmptyLatentImage", {"width": 1024, "height": 1024, "batch_size": 1}),
        "4": ("KSampler", {"seed": 5, "steps": 4, "cfg": 1, "sampler_name": "euler", "scheduler": "sgm_uniform",
                           "denoise": 1.0, "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                           "latent_image": ["3", 0]}),
        "5": ("VAEDecode", {"samples": ["4", 0], "vae": ["1", 2]}),
        "6": ("UpscaleModelLoader", {"model_name": "4x_NMKD-Siax_200k.pth"}),
        "7": ("UltimateSDUpscale", {"image": ["5", 0], "model": ["1", 0], "positive": ["2", 0],
                                    "negative": ["2", 0], "vae": ["1", 2], "upscale_by": 2, "seed": 5, "steps": 4,
                                    "cfg": 1, "sampler_name": "euler", "scheduler": "sgm_uniform", "denoise": 0.35,
                                    "upscale_model": ["6", 0], "mode_type": "Linear", "tile_width": 1024,
                                    "tile_height": 1024, "mask_blur": 8, "tile_padding": 32}),
        "8": ("SaveImage", {"images": ["7", 0]})}
    metadata = parse_chunks({"prompt": comfy(nodes)})
    assert (metadata.prompt, metadata.seed, metadata.steps) == ("a castle on a hill", 5, 4)
    assert repaint_tile(metadata) == 1024 and tile_surround(metadata) == (32, 8)
    nodes["7"][1].update(tile_padding=48, mask_blur=12)  # the node's names for them
    assert tile_surround(parse_chunks({"prompt": comfy(nodes)})) == (48, 12)
    assert "Ultimate SD Upscale (tiles of 1024, enlarged by 4x_NMKD-Siax_200k;" in unrepeated_note(metadata)
    assert seams_fix_of(metadata) is None  # the node's seam fix off ("None"), or not named
    for mode, expected in (("Band Pass", SeamFix.BAND), ("Half Tile", SeamFix.HALF_TILE),
                           ("Half Tile + Intersections", SeamFix.HALF_TILE_CORNERS), ("None", None)):
        nodes["7"][1].update(seam_fix_mode=mode, seam_fix_denoise=0.4, seam_fix_width=48, seam_fix_mask_blur=8,
                             seam_fix_padding=24)
        metadata = parse_chunks({"prompt": comfy(nodes)})
        assert seams_fix_of(metadata) == (None if expected is None else (expected, 0.4, 48, 8, 24))
        if expected is not None:
            assert f"enlarged by 4x_NMKD-Siax_200k, its seams fixed by a {expected.label.lower()};" in \
                unrepeated_note(metadata)
    # as this app writes them in its text (the A1111 extension's names); a value out of range is the default
    written = parse_a1111(A1111_BASE + "Ultimate SD upscale tile_width: 512, Ultimate SD upscale seams_fix_type: "
                                       "Half tile offset pass + intersections, Ultimate SD upscale seams_fix_denoise: "
                                       "0.25, Ultimate SD upscale seams_fix_width: 999")
    assert seams_fix_of(written) == (SeamFix.HALF_TILE_CORNERS, 0.25, 64, 4, 16)
    assert seams_fix_of(parse_a1111(A1111_BASE + "Ultimate SD upscale seams_fix_type: Band pass")) is None  # no tiles
