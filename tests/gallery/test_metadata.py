"""Reading and writing generation parameters: our PNGs and hand-made PNGs of other tools."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.gallery.formats import parse_a1111, parse_chunks
from hypersd_desktop.gallery.gallery import read_metadata
from hypersd_desktop.gallery.metadata import ImageParameters, a1111_parameters, write_png


def png(path, **chunks):
    info = PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value)
    Image.new("RGB", (96, 64), (200, 30, 40)).save(path, pnginfo=info)
    return path


def test_our_png_round_trips(tmp_path):
    request = {"prompt": "a fox, snow\nsecond line", "base_model": "/m/sd15", "seed": 7, "loras": [{"path": "/l/x.safetensors", "weight": 0.8}]}
    params = ImageParameters(
        prompt="a fox, snow\nsecond line", negative_prompt="blurry", steps=4, sampler="ddim-trailing", guidance=0.0,
        seed=7, width=512, height=768, model_name="sd15", model_hash="abcdef0123",
        loras=(("Hyper-SD15-4steps-lora", 1.0, "1234567890"), ("style: v2", 0.5, "0987654321")),
        extra=(("Hyper-SD", "Hyper-SD15-4steps-lora"),), request=request,
    )
    path = tmp_path / "out.png"
    data = write_png(Image.new("RGB", (64, 64)), path, params)
    assert data == path.read_bytes()
    metadata, width, height, warnings = read_metadata(path)
    assert warnings == [] and metadata.format == "hypersd" and metadata.request == request
    assert (metadata.prompt, metadata.negative_prompt) == ("a fox, snow\nsecond line", "blurry")
    assert (metadata.steps, metadata.sampler, metadata.guidance, metadata.seed) == (4, "DDIM", 0.0, 7)
    assert (metadata.width, metadata.height, metadata.model_name, metadata.model_hash) == (512, 768, "sd15", "abcdef0123")
    assert metadata.loras == (("Hyper-SD15-4steps-lora", 1.0, "1234567890"), ("style: v2", 0.5, "0987654321"))
    assert metadata.recipe == "Hyper-SD15-4steps-lora"
    assert not list(tmp_path.glob(".partial-*"))


def test_the_a1111_text_tags_the_loras_that_ran(tmp_path):
    """A1111's PNG Info sends the prompt's `<lora:…>` tags to txt2img, not `Lora hashes`: each LoRA that ran is
    tagged with its weight, after the prompt as typed, unless the prompt tags it already."""
    params = ImageParameters(
        prompt="a fox <LORA:Fox_Style:0.4>, snow", negative_prompt="blurry", steps=4, sampler="tcd", guidance=0.0,
        seed=7, width=512, height=512, model_name="sd15", model_hash=None,
        loras=(("Hyper-SD15-1step-lora", 0.125, "45b5bd0819cf"), ("fox_style", 0.8, None), ("style: v2", -0.5, None)),
        request={"prompt": "a fox <LORA:Fox_Style:0.4>, snow", "negative_prompt": "blurry"},
    )
    text = a1111_parameters(params)
    first, negative, settings = text.split("\n")
    assert first == "a fox <LORA:Fox_Style:0.4>, snow <lora:Hyper-SD15-1step-lora:0.125>"
    assert negative == "Negative prompt: blurry"
    assert 'Lora hashes: "Hyper-SD15-1step-lora: 45b5bd0819cf"' in settings
    assert 'Lora weights: "style: v2: -0.5"' in settings  # a name a tag cannot hold keeps its weight here
    read = parse_a1111(text)
    assert ("Hyper-SD15-1step-lora", 0.125, "45b5bd0819cf") in read.loras
    untagged = ImageParameters(**{**params.__dict__, "prompt": "", "loras": params.loras[:1]})
    assert a1111_parameters(untagged).startswith("<lora:Hyper-SD15-1step-lora:0.125>\nNegative prompt: blurry\n")
    write_png(Image.new("RGB", (8, 8)), tmp_path / "a.png", params)
    metadata, *_ = read_metadata(tmp_path / "a.png")
    assert metadata.format == "hypersd" and metadata.prompt == "a fox <LORA:Fox_Style:0.4>, snow", "as typed"


def test_a1111_and_forge(tmp_path):
    text = ("masterpiece, a castle on a hill\nat dusk <lora:detail:0.6>\nNegative prompt: lowres, bad anatomy\n"
            "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567890, Size: 832x1216, "
            'Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "detail: 62b6bd3de1", Version: f2.0.1')
    metadata, *_ = read_metadata(png(tmp_path / "a.png", parameters=text))
    assert metadata.format == "a1111"
    assert metadata.prompt == "masterpiece, a castle on a hill\nat dusk <lora:detail:0.6>"
    assert metadata.negative_prompt == "lowres, bad anatomy"
    assert (metadata.steps, metadata.sampler, metadata.guidance, metadata.seed) == (28, "DPM++ 2M", 6.5, 1234567890)
    assert (metadata.width, metadata.height) == (832, 1216)
    assert (metadata.model_name, metadata.model_hash) == ("sd_xl_base_1.0", "31e35c80fc")
    assert metadata.loras == (("detail", 0.6, "62b6bd3de1"),)  # the weight is the prompt tag's
    assert metadata.extra["Schedule type"] == "Karras"


def test_comfyui_api_graph(tmp_path):
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 6, "cfg": 1.0, "sampler_name": "lcm",
                                                    "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0],
                                                    "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper_8.safetensors"}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "Hyper-SD15-8steps-lora.safetensors",
                                                      "strength_model": 0.9, "model": ["4", 0], "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog", "clip": ["10", 1]}},
    }
    metadata, *_ = read_metadata(png(tmp_path / "c.png", prompt=json.dumps(graph), workflow="{}"))
    assert metadata.format == "comfyui"
    assert (metadata.prompt, metadata.negative_prompt, metadata.seed, metadata.steps) == ("a lighthouse", "fog", 42, 6)
    assert (metadata.width, metadata.height, metadata.model_name) == (512, 640, "dreamshaper_8")
    assert metadata.loras == (("Hyper-SD15-8steps-lora", 0.9, None),)


def test_invokeai(tmp_path):
    data = {"positive_prompt": "a cabin", "negative_prompt": "people", "seed": 99, "steps": 8, "cfg_scale": 5.5,
            "width": 1024, "height": 1024, "scheduler": "euler", "model": {"name": "juggernaut", "hash": "blake3:ab"},
            "loras": [{"model": {"name": "Hyper-SDXL-8steps-CFG-lora"}, "weight": 1.0}]}
    metadata, *_ = read_metadata(png(tmp_path / "i.png", invokeai_metadata=json.dumps(data)))
    assert metadata.format == "invokeai"
    assert (metadata.prompt, metadata.seed, metadata.guidance, metadata.model_name) == ("a cabin", 99, 5.5, "juggernaut")
    assert metadata.loras == (("Hyper-SDXL-8steps-CFG-lora", 1.0, None),)


def test_fooocus(tmp_path):
    data = {"prompt": "a koi pond", "negative_prompt": "", "steps": 30, "guidance_scale": 4, "seed": "123",
            "resolution": "(1152, 896)", "sampler": "dpmpp_2m_sde_gpu", "base_model": "juggernautXL_v8.safetensors",
            "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1"}
    metadata, *_ = read_metadata(png(tmp_path / "f.png", parameters=json.dumps(data), fooocus_scheme="fooocus"))
    assert metadata.format == "fooocus"
    assert (metadata.prompt, metadata.seed, metadata.width, metadata.height) == ("a koi pond", 123, 1152, 896)
    assert metadata.model_name == "juggernautXL_v8"
    assert metadata.loras == (("sd_xl_offset_example-lora_1.0", 0.1, None),)


def test_invokeai_dream(tmp_path):
    metadata, *_ = read_metadata(png(tmp_path / "n.png", Dream='"a red barn [blurry, text]" -s 25 -S 77 -W 512 -H 512 -C 7.5 -A k_euler'))
    assert metadata.format == "invokeai"  # the Dream chunk is InvokeAI's
    assert (metadata.prompt, metadata.negative_prompt, metadata.steps, metadata.seed) == ("a red barn", "blurry, text", 25, 77)


def test_jpeg_with_a1111_user_comment(tmp_path):
    text = "a tram\nSteps: 4, Sampler: TCD, CFG scale: 0, Seed: 5, Size: 512x512, Model: sd15"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")
    path = tmp_path / "j.jpg"
    Image.new("RGB", (32, 32)).save(path, exif=exif.tobytes())
    metadata, *_ = read_metadata(path)
    assert (metadata.prompt, metadata.steps, metadata.seed) == ("a tram", 4, 5)


@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_a_user_comment_whose_prompt_begins_outside_ascii_reads_in_either_byte_order(tmp_path, encoding):
    """A1111 writes UTF-16 big-endian (piexif), some savers little-endian; a prompt that begins with 猫 gives the
    first bytes no zero to tell them by, the settings line does."""
    text = "猫が窓辺に座っている, 油絵\nSteps: 4, Sampler: TCD, CFG scale: 0, Seed: 5, Size: 512x512"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode(encoding)
    path = tmp_path / "j.jpg"
    Image.new("RGB", (32, 32)).save(path, exif=exif.tobytes())
    metadata, *_ = read_metadata(path)
    assert (metadata.prompt, metadata.steps, metadata.seed) == ("猫が窓辺に座っている, 油絵", 4, 5)


@pytest.mark.parametrize("chunks", [
    {"parameters": "x" * (2 * 1024 * 1024)},
    {"prompt": "{not json"},
    {"invokeai_metadata": "[1, 2"},
    {"parameters": "Steps: lots, Seed: ???, Size: big"},
    {"hypersd": "{broken"},
])
def test_malformed_or_huge_chunks_import_without_metadata(tmp_path, chunks):
    metadata, width, height, warnings = read_metadata(png(tmp_path / "m.png", **chunks))
    assert (width, height) == (96, 64)
    if "x" * 10 in str(chunks):
        assert metadata is None and "over 1 MB" in warnings[0]
    else:
        assert metadata is None or metadata.seed is None


def test_a1111_text_without_settings_line_is_not_metadata():
    assert parse_a1111("just a caption") is None
    assert a1111_parameters(ImageParameters("p", "", 1, "tcd", 0, 1, 8, 8, "m", None, ())).endswith(
        "Version: HyperSD Desktop 0.1.0")


GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 18446744073709551615, "steps": 4, "cfg": 1.5,
                                               "sampler_name": "euler", "positive": ["6", 0], "negative": ["7", 0],
                                               "model": ["4", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in the snow", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
}


def test_utf8_in_a_text_chunk_is_read_as_utf8(tmp_path):
    path = tmp_path / "utf8.png"
    info = PngInfo()
    info.add_text("parameters", "café au lait ☕, naïve\nSteps: 4, Seed: 1".encode("utf-8"))  # UTF-8 bytes in tEXt
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    metadata, *_ = read_metadata(path)
    assert metadata.prompt == "café au lait ☕, naïve"
    latin = tmp_path / "latin.png"
    info = PngInfo()
    info.add_text("parameters", "crème brûlée\nSteps: 4, Seed: 1".encode("latin-1"))  # as the PNG standard says
    Image.new("RGB", (8, 8)).save(latin, pnginfo=info)
    assert read_metadata(latin)[0].prompt == "crème brûlée"


def test_keys_of_the_settings_line_match_whatever_their_case():
    parsed = parse_a1111("a fox\nSteps: 20, Sampler: Euler a, CFG Scale: 6.5, Seed: 3, size: 512x768")
    assert (parsed.steps, parsed.guidance, parsed.seed, parsed.width, parsed.height) == (20, 6.5, 3, 512, 768)


@pytest.mark.parametrize("kind", ["JPEG", "WEBP"])
def test_comfyui_graphs_in_exif_of_jpeg_and_webp(tmp_path, kind):
    path = tmp_path / f"comfy.{kind.lower()}"
    exif = Image.Exif()
    exif[0x010F] = "Prompt:" + json.dumps(GRAPH)
    exif[0x0110] = "Workflow:" + json.dumps({"nodes": []})
    Image.new("RGB", (8, 8)).save(path, kind, exif=exif.tobytes())
    metadata, *_ = read_metadata(path)
    assert metadata.format == "comfyui" and metadata.prompt == "a red fox in the snow"
    assert (metadata.negative_prompt, metadata.seed, metadata.steps, metadata.guidance) == ("blurry", 2**64 - 1, 4, 1.5)


def test_a_comfyui_graph_in_the_user_comment_is_read_as_comfyui(tmp_path):
    path = tmp_path / "civitai.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + json.dumps(GRAPH).encode("utf-16-be")
    Image.new("RGB", (8, 8)).save(path, "JPEG", exif=exif.tobytes())
    metadata, *_ = read_metadata(path)
    assert metadata.format == "comfyui" and metadata.prompt == "a red fox in the snow"


def test_json_of_other_tools_is_not_taken_for_fooocus(tmp_path):
    swarm = tmp_path / "swarm.png"
    info = PngInfo()
    info.add_text("parameters", json.dumps({"sui_image_params": {"prompt": "a castle", "seed": 5}}))
    info.add_text("prompt", json.dumps(GRAPH))
    Image.new("RGB", (8, 8)).save(swarm, pnginfo=info)
    metadata, *_ = read_metadata(swarm)
    assert metadata.format == "swarmui" and (metadata.prompt, metadata.seed) == ("a castle", 5)  # not an empty Fooocus record
    fooocus = parse_chunks({"parameters": json.dumps({"prompt": "a lake", "guidance_scale": 4.0, "seed": "6952411511246973023",
                                                      "base_model": "juggernautXL.safetensors", "steps": 30})})
    assert fooocus.format == "fooocus" and fooocus.seed == 6952411511246973023 and fooocus.model_name == "juggernautXL"


@pytest.mark.parametrize("dream, expected", [
    ("banana sushi -s 50 -S 478163327 -W 640 -H 448 -C 7.5 -A k_lms",
     ("banana sushi", "", 50, 478163327, 640, 448, 7.5, "k_lms")),
    ('"a cat [dog, blurry]" -s50 -W512 -H512 -C7.5 -Ak_lms -S3357757885',
     ("a cat", "dog, blurry", 50, 3357757885, 512, 512, 7.5, "k_lms")),
    ("it's a cat's life -s 4 -S 1", ("it's a cat's life", "", 4, 1, None, None, None, None)),
])
def test_dream_command_lines_as_invokeai_wrote_them(dream, expected):
    from hypersd_desktop.gallery.formats import parse_dream

    parsed = parse_dream(dream)
    assert (parsed.prompt, parsed.negative_prompt, parsed.steps, parsed.seed, parsed.width, parsed.height,
            parsed.guidance, parsed.sampler) == expected


def test_invokeai_sd_metadata_chunk(tmp_path):
    sd_metadata = {"model": "stable diffusion", "model_weights": "stable-diffusion-1.5", "model_hash": "cc6cb27103",
                   "app_id": "invoke-ai/InvokeAI", "app_version": "2.2.5",
                   "image": {"prompt": [{"prompt": "a lighthouse at dusk [fog]", "weight": 1.0}], "steps": 30,
                             "cfg_scale": 7.5, "height": 512, "width": 768, "seed": 3357757885, "type": "txt2img",
                             "sampler": "k_lms"}}
    metadata, *_ = read_metadata(png(tmp_path / "s.png", **{"sd-metadata": json.dumps(sd_metadata),
                                                           "Dream": '"a lighthouse at dusk [fog]" -s 30 -S 3357757885'}))
    assert metadata.format == "invokeai" and (metadata.prompt, metadata.negative_prompt) == ("a lighthouse at dusk", "fog")
    assert (metadata.steps, metadata.guidance, metadata.seed, metadata.width, metadata.height) == (30, 7.5, 3357757885,
                                                                                                  768, 512)
    assert (metadata.model_name, metadata.model_hash, metadata.sampler) == ("stable-diffusion-1.5", "cc6cb27103", "k_lms")


def test_a_placeholder_parameters_text_loses_to_the_real_graph(tmp_path):
    metadata, *_ = read_metadata(png(tmp_path / "saver.png", parameters="\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 0",
                                     prompt=json.dumps(GRAPH)))
    assert metadata.format == "comfyui" and metadata.prompt == "a red fox in the snow" and metadata.steps == 4


def test_the_vae_an_image_was_made_with(tmp_path):
    """A1111 and Forge name a VAE chosen in the settings (`VAE hash`, `VAE`: the file); Civitai's `Hashes` JSON may
    hash it as `vae`; a ComfyUI graph decodes with a `VAELoader`'s file. A checkpoint's own VAE is named by none."""
    settings = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 31e35c80fc, Model: dream"
    a1111 = parse_a1111(f"a fox\n{settings}, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, "
                        "Version: v1.10.1")
    assert (a1111.vae_name, a1111.vae_hash) == ("vae-ft-mse-840000-ema-pruned.safetensors", "735e4c3a44")
    assert a1111.extra["VAE"] == "vae-ft-mse-840000-ema-pruned.safetensors", "still shown among the settings"
    civitai = parse_a1111(f'a fox\n{settings}, Hashes: {{"model": "31e35c80fc", "vae": "735e4c3a44"}}')
    assert (civitai.vae_name, civitai.vae_hash) == (None, "735e4c3a44")
    plain = parse_a1111(f"a fox\n{settings}")
    assert (plain.vae_name, plain.vae_hash) == (None, None)
    assert parse_a1111(f"a fox\n{settings}, VAE: None").vae_name is None  # the model's own, in the settings' words

    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dream.safetensors"}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": "SD15\\kl-f8-anime2.safetensors"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["3", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "seed": 1, "steps": 4, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "sgm_uniform"}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["2", 0]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0]}},
    }
    metadata, *_ = read_metadata(png(tmp_path / "loader.png", prompt=json.dumps(graph)))
    assert metadata.format == "comfyui" and metadata.vae_name == "SD15\\kl-f8-anime2.safetensors"
    graph["6"]["inputs"]["vae"] = ["1", 2]  # the checkpoint's own
    metadata, *_ = read_metadata(png(tmp_path / "own.png", prompt=json.dumps(graph)))
    assert metadata.vae_name is None


@pytest.mark.parametrize("chunks, vae", [
    ({"parameters": json.dumps({"prompt": "a fox", "base_model": "juggernautXL", "resolution": "(1024, 1024)",
                                "vae": "sdxl_vae.safetensors", "performance": "Speed"})}, ("sdxl_vae.safetensors", None)),
    ({"parameters": json.dumps({"prompt": "a fox", "base_model": "juggernautXL", "resolution": "(1024, 1024)",
                                "vae": "Default (model)", "performance": "Speed"})}, (None, None)),
    ({"invokeai_metadata": json.dumps({"positive_prompt": "a fox", "model": {"name": "sdxl"}, "seed": 1,
                                       "vae": {"name": "sdxl-vae-fp16-fix", "hash": "blake3:99aa"}})},
     ("sdxl-vae-fp16-fix", "blake3:99aa")),
    ({"invokeai_metadata": json.dumps({"positive_prompt": "a fox", "model": {"name": "sdxl"}, "seed": 1, "vae": None})},
     (None, None)),
    ({"parameters": json.dumps({"sui_image_params": {"prompt": "a fox", "model": "sdxl", "seed": 1,
                                                     "vae": "OfficialStableDiffusion/sdxl_vae"},
                                "sui_models": [{"name": "sdxl_vae.safetensors", "param": "vae",
                                                "hash": "0x63aeecb90ff7bc1c115395962d3e803571385b61938377bc7089b36e81e92e2e"}]})},
     ("OfficialStableDiffusion/sdxl_vae", "63aeecb90f")),
    ({"parameters": json.dumps({"sui_image_params": {"prompt": "a fox", "model": "sdxl", "seed": 1, "vae": "None"}})},
     (None, None)),
], ids=["fooocus", "fooocus-default", "invokeai", "invokeai-own", "swarmui", "swarmui-none"])
def test_the_vae_fooocus_invokeai_and_swarmui_name(tmp_path, chunks, vae):
    metadata, *_ = read_metadata(png(tmp_path / "tool.png", **chunks))
    assert (metadata.vae_name, metadata.vae_hash) == vae
