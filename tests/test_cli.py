"""The command line as a user runs it: a separate process, files on disk, exit codes."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_process import run_cli
from hypersd_desktop.gallery.metadata import read_png_text, read_request


def cli(*args, cwd=None):
    return run_cli(*args, cwd=cwd)


def test_generate_writes_pngs_with_parameters_and_json(tiny_sd15, hyper_lora, tmp_path):
    lora = hyper_lora("Hyper-SD15-4steps-lora")
    out = tmp_path / "out"
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", lora, "--seed", 5, "--batch", 2,
              "--width", 64, "--height", 64, "--out", out, "--json", "--no-cuda-graphs")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["seed"] for line in lines] == [5, 6]
    first = lines[0]
    assert (first["recipe"], first["scheduler"], first["steps"], first["warnings"]) == (
        "Hyper-SD15-4steps-lora", "ddim-trailing", 4, [])
    assert set(first["timings"]) >= {"total_s", "per_image_s"}
    with Image.open(first["path"]) as image:
        parameters = image.text["parameters"]
        assert image.size == (64, 64)
    prompt, settings = parameters.split("\n")
    assert prompt == "a red fox <lora:Hyper-SD15-4steps-lora:1>"  # as A1111 writes the LoRA it applied
    assert "Steps: 4, Sampler: DDIM, CFG scale: 0, Seed: 5, Size: 64x64" in settings
    assert "Lora hashes: " in settings
    request = read_request(first["path"])
    assert request["seed"] == 5 and request["loras"][0]["path"] == str(lora)
    assert request["cuda_graphs"] is False
    assert sorted(p.name for p in out.iterdir()) == sorted(p.rsplit("/", 1)[-1] for p in (l["path"] for l in lines))


def test_out_names_a_png_file_or_a_folder(tiny_sd15, tmp_path):
    """`--out cat.png` is the file, as image tools' `-o` is; several images are numbered beside it. A JPEG name is
    refused before anything runs: the images are PNGs, which keep their parameters."""
    common = ("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--steps", 1, "--width", 64, "--height", 64,
              "--seed", 5, "--backend", "torch", "--json", "--no-gallery")
    one = cli(*common, "--out", tmp_path / "cat.png")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["path"] == str(tmp_path / "cat.png")
    with Image.open(tmp_path / "cat.png") as image:
        assert image.format == "PNG" and "Seed: 5" in image.text["parameters"]
    two = cli(*common, "--batch", 2, "--out", tmp_path / "new" / "Dog.PNG")
    assert two.returncode == 0, two.stderr
    assert [json.loads(line)["path"] for line in two.stdout.splitlines()] == [
        str(tmp_path / "new" / "Dog-1.PNG"), str(tmp_path / "new" / "Dog-2.PNG")]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["Dog-1.PNG", "Dog-2.PNG"]
    jpeg = cli(*common, "--out", tmp_path / "fox.jpg")
    assert jpeg.returncode == 2 and "name a .png file (fox.png) or a folder" in jpeg.stderr
    assert not (tmp_path / "fox.jpg").exists()
    (tmp_path / "folder.png").mkdir()  # a folder that happens to end in .png stays a folder
    into = cli(*common, "--out", tmp_path / "folder.png")
    assert into.returncode == 0 and Path(json.loads(into.stdout)["path"]).parent == tmp_path / "folder.png"


def test_reusing_the_stored_request_reproduces_the_image(tiny_sd15, hyper_lora, tmp_path):
    from hypersd_desktop.engine import GenerationRequest
    from hypersd_desktop.engine.torch_engine import TorchEngine
    import numpy as np

    # The torch backend on both sides: on the CPU "auto" takes ONNX Runtime, whose images are within 2/255 of
    # torch's, not equal (tests/engine/test_onnx_parity.py); the random seed decides whether a pixel differs.
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a boat", "--lora", f"{hyper_lora('Hyper-SD15-1step-lora')}:0.8",
              "--steps", 2, "--eta", 0.5, "--width", 64, "--height", 64, "--out", tmp_path, "--json", "--backend", "torch")
    path = json.loads(run.stdout)["path"]
    again = TorchEngine().generate(GenerationRequest.from_dict(read_request(path)))[0]
    with Image.open(path) as image:
        assert np.abs(np.asarray(image, dtype=np.int16) - np.asarray(again.image, dtype=np.int16)).max() == 0


def test_generate_on_the_onnx_backend_says_it_exports_once_and_then_does_not(tiny_sd15, hyper_lora, tmp_path):
    args = ("generate", "--model", tiny_sd15, "--prompt", "a boat", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
            "--steps", 2, "--width", 64, "--height", 64, "--out", tmp_path, "--backend", "onnx", "--device", "cpu")
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "Exporting the model to ONNX (first use of this model and LoRA set); this takes a while once." in first.stderr
    assert re.fullmatch(r"\S+\.png  \(seed \d+, 2 steps, tcd, \d+ ms per image\)", first.stdout.strip())
    second = cli(*args, "--json")
    assert second.returncode == 0 and "Exporting" not in second.stderr
    assert json.loads(second.stdout)["backend"] == "onnx"


def test_generate_from_an_init_image_with_a_mask_and_a_controlnet(tiny_sd15, hyper_lora, tmp_path):
    import tiny_models

    init, mask, edges = tmp_path / "init.png", tmp_path / "mask.png", tmp_path / "edges.png"
    Image.new("RGB", (64, 64), (40, 120, 200)).save(init)
    Image.new("L", (64, 64), 0).save(mask)
    Image.new("RGB", (64, 64), "white").save(edges)  # a drawing: dark on light, made a scribble by --preprocess
    controlnet = tiny_models.save_controlnet(tiny_sd15, tmp_path / "controlnet")
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
              "--steps", 4, "--init-image", init, "--strength", 0.5, "--mask", mask, "--control",
              f"{controlnet}:{edges}:0.7", "--preprocess", "scribble", "--seed", 3, "--out", tmp_path / "out", "--json")
    assert run.returncode == 0, run.stderr
    (line,) = [json.loads(line) for line in run.stdout.splitlines()]
    request = read_request(line["path"])
    assert request["strength"] == 0.5 and request["controls"][0]["scale"] == 0.7
    assert request["controls"][0]["preprocessor"] == "scribble"
    assert (request["init_image"], request["mask_image"]) == tuple(
        hashlib.sha256(path.read_bytes()).hexdigest() for path in (init, mask))
    with Image.open(line["path"]) as image:
        assert image.size == (64, 64)  # the init image's size: no --width or --height was given
        settings = image.text["parameters"].splitlines()[-1]
    assert "Denoising strength: 0.5, Mask blur: 4" in settings  # as A1111 writes an inpainting's


def test_an_inpainting_controlnet_takes_the_init_image_and_reuse_repeats_it(tiny_sd15, hyper_lora, controlnets,
                                                                             tmp_path):
    """--preprocess inpaint with --control MODEL::SCALE (no image): the control is the init image, written as
    sd-webui-controlnet's inpaint_only unit, and `gallery reuse` gives back a command that makes the same request."""
    from pictures import init_picture, mask_picture

    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    init_picture().save(init)
    mask_picture().save(mask)
    base = ["generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
            "--steps", 4, "--seed", 3, "--out", tmp_path / "out", "--json"]
    inpaint = ["--control", f"{controlnets['sd15']}::0.8", "--preprocess", "inpaint"]
    run = cli(*base, "--init-image", init, "--mask", mask, "--strength", 0.9, *inpaint)
    assert run.returncode == 0, run.stderr
    line = json.loads(run.stdout)
    request = read_request(line["path"])
    (control,) = request["controls"]
    assert (control["preprocessor"], control["scale"]) == ("inpaint", 0.8)
    assert control["image"] == request["init_image"] == hashlib.sha256(init.read_bytes()).hexdigest()
    with Image.open(line["path"]) as made:
        assert 'ControlNet 0: "Module: inpaint_only, Model: sd15, Weight: 0.8' in made.text["parameters"]
    listing = json.loads(cli("gallery", "search", "fox", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", listing[0]["id"]).stdout)
    assert reuse[reuse.index("--preprocess") + 1] == "inpaint", reuse
    again = cli(*reuse[reuse.index("generate"):], "--json", "--out", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert read_request(json.loads(again.stdout)["path"])["controls"] == request["controls"]

    no_init = cli(*base, *inpaint)
    assert no_init.returncode == 2 and "An inpainting ControlNet repaints the init image" in no_init.stderr
    no_image = cli(*base, "--init-image", init, "--control", str(controlnets["sd15"]))
    assert no_image.returncode == 2 and "names no image for the ControlNet to follow" in no_image.stderr


def test_variations_keep_the_seed_and_vary_it_and_reuse_repeats_each(tiny_sd15, hyper_lora, tmp_path):
    """--variation-strength with --batch: one seed, variation seeds N and N + 1, written as A1111 writes them; each
    image's `gallery reuse` makes it again."""
    base = ["generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
            "--steps", 2, "--width", 64, "--height", 64, "--seed", 3, "--json"]
    run = cli(*base, "--variation-strength", 0.3, "--variation-seed", 50, "--batch", 2, "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(line["seed"], line["variation_seed"]) for line in lines] == [(3, 50), (3, 51)]
    with Image.open(lines[1]["path"]) as made:
        assert "Seed: 3, Size: 64x64" in made.text["parameters"]
        assert "Variation seed: 51, Variation seed strength: 0.3" in made.text["parameters"]
        second = np.asarray(made.convert("RGB"), dtype=np.int16)
    request = read_request(lines[1]["path"])
    assert (request["seed"], request["variation_seed"], request["variation_strength"]) == (3, 51, 0.3)
    listing = json.loads(cli("gallery", "search", "fox", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", next(item["id"] for item in listing
                                                     if item["path"] == lines[1]["path"])).stdout)
    assert reuse[reuse.index("--variation-seed") + 1] == "51"
    again = cli(*reuse[reuse.index("generate"):], "--json", "--out", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    with Image.open(json.loads(again.stdout)["path"]) as made:
        assert np.abs(np.asarray(made.convert("RGB"), dtype=np.int16) - second).max() <= 1
    with Image.open(lines[0]["path"]) as first:
        assert np.abs(np.asarray(first.convert("RGB"), dtype=np.int16) - second).max() > 10

    chosen = json.loads(cli(*base, "--variation-strength", 0.2, "--out", tmp_path / "out").stdout)
    assert isinstance(chosen["variation_seed"], int)  # none given: a random one
    from pictures import init_picture

    init_picture(64).save(tmp_path / "init.png")  # from a picture: the noise added to it is varied, and reused
    picture = [*base, "--init-image", tmp_path / "init.png", "--strength", 0.8, "--steps", 4]
    varied = json.loads(cli(*picture, "--variation-strength", 0.5, "--variation-seed", 8,
                            "--out", tmp_path / "pic").stdout)
    plain = json.loads(cli(*picture, "--out", tmp_path / "plain").stdout)
    listing = json.loads(cli("gallery", "search", "fox", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", next(item["id"] for item in listing
                                                     if item["path"] == varied["path"])).stdout)
    assert reuse[reuse.index("--variation-seed") + 1] == "8" and "--init-image" in reuse
    again = json.loads(cli(*reuse[reuse.index("generate"):], "--json", "--out", tmp_path / "again").stdout)
    with Image.open(varied["path"]) as one, Image.open(again["path"]) as two, Image.open(plain["path"]) as three:
        one, two, three = (np.asarray(made.convert("RGB"), dtype=np.int16) for made in (one, two, three))
    assert np.abs(one - two).max() <= 1 and np.abs(one - three).mean() > 3
    alone = cli(*base, "--variation-seed", 5)
    assert alone.returncode == 2 and "add --variation-strength" in alone.stderr


def test_a_prompt_with_choices_makes_them_by_the_seed_in_generate_and_in_batch_jobs(tiny_sd15, hyper_lora, tmp_path,
                                                                                   app_home):
    """`generate` makes a prompt's {a|b} and __wildcard__ choices by its seed (the image's request names the prompt
    it was made with); a batch job's lines make them by each image's seed."""
    from hypersd_desktop.core.dynamic_prompts import Wildcards, chosen

    folder = app_home / "data" / "wildcards"
    folder.mkdir(parents=True)
    (folder / "animals.txt").write_text("fox\nowl\nhare\n", encoding="utf-8")
    template = "a {red|blue} __animals__"
    lora = hyper_lora("Hyper-SD15-1step-lora")
    run = cli("generate", "--model", tiny_sd15, "--lora", lora, "--prompt", template, "--width", 64, "--height", 64,
              "--seed", 8, "--json", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    request = read_request(json.loads(run.stdout)["path"])
    assert (request["prompt"], request["prompt_template"]) == (chosen(template, 8, Wildcards(folder)), template)
    job = tmp_path / "job.txt"
    job.write_text(template + "\n", encoding="utf-8")
    run = cli("batch", job, "--model", tiny_sd15, "--lora", lora, "--width", 64, "--height", 64, "--seed", 20,
              "--seeds-per-prompt", 3, "--to", tmp_path / "batch")
    assert run.returncode == 0, run.stderr
    made = sorted((read_request(path)["seed"], read_request(path)["prompt"])
                  for path in (tmp_path / "batch").rglob("*.png"))
    assert made == [(seed, chosen(template, seed, Wildcards(folder))) for seed in (20, 21, 22)]
    missing = cli("generate", "--model", tiny_sd15, "--lora", lora, "--prompt", "a __plants__")
    assert missing.returncode == 2 and "no wildcard file plants.txt" in missing.stderr


def test_tiling_is_written_as_a1111_writes_it_and_reuse_repeats_it(tiny_sd15, hyper_lora, tmp_path):
    """--tiling: the PNG says `Tiling: True` both ways (A1111's) and `Tiling: x` one way; `gallery reuse` gives the
    option back and makes the same image; the ONNX backend named for it makes it too."""
    base = ["generate", "--model", tiny_sd15, "--prompt", "a tiled floor", "--lora",
            hyper_lora("Hyper-SD15-1step-lora"), "--steps", 1, "--width", 64, "--height", 64, "--seed", 5, "--json"]
    made = {}
    for tiling, written in (("both", "Tiling: True"), ("x", "Tiling: x")):
        run = cli(*base, "--tiling", tiling, "--out", tmp_path / tiling)
        assert run.returncode == 0, run.stderr
        made[tiling] = json.loads(run.stdout)["path"]
        with Image.open(made[tiling]) as image:
            assert written in image.text["parameters"]
        assert read_request(made[tiling])["tiling"] == tiling
    listing = json.loads(cli("gallery", "search", "tiled", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", next(item["id"] for item in listing
                                                     if item["path"] == made["x"])).stdout)
    assert reuse[reuse.index("--tiling") + 1] == "x"
    again = json.loads(cli(*reuse[reuse.index("generate"):], "--json", "--out", tmp_path / "again").stdout)
    with Image.open(made["x"]) as one, Image.open(again["path"]) as two, Image.open(made["both"]) as three:
        one, two, three = (np.asarray(image.convert("RGB"), dtype=np.int16) for image in (one, two, three))
    assert np.abs(one - two).max() <= 1 and np.abs(one - three).mean() > 2
    # the ONNX backend named for it exports the model wrapping around (DirectML's way) and makes PyTorch's image
    onnx = cli(*base, "--tiling", "x", "--backend", "onnx", "--device", "cpu", "--out", tmp_path / "onnx")
    assert onnx.returncode == 0, onnx.stderr
    with Image.open(json.loads(onnx.stdout)["path"]) as exported:
        assert np.abs(np.asarray(exported.convert("RGB"), dtype=np.int16) - one).max() <= 2


def test_outpaint_extends_the_picture_paints_the_new_part_and_reuse_repeats_it(tiny_sd15, hyper_lora, tmp_path):
    from pictures import init_picture

    init_picture().save(tmp_path / "init.png")
    base = ["generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
            "--steps", 2, "--seed", 3, "--json"]
    run = cli(*base, "--init-image", tmp_path / "init.png", "--outpaint", "0,0,32,0", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    line = json.loads(run.stdout)
    request = read_request(line["path"])
    assert request["strength"] == 1.0 and request["mask_image"] is not None
    assert request["init_image"] != hashlib.sha256((tmp_path / "init.png").read_bytes()).hexdigest()
    with Image.open(line["path"]) as made:
        assert made.size == (96, 64)
        pixels = np.asarray(made.convert("RGB"), dtype=np.int16)
    kept = np.asarray(init_picture(), dtype=np.int16)[:, :40]  # away from the seam and its blur: its own pixels
    assert np.array_equal(pixels[:, :40], kept)
    assert np.abs(pixels[:, 70:] - pixels[:, 70:].mean()).mean() > 3  # the new part is painted, not flat
    listing = json.loads(cli("gallery", "search", "fox", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", listing[0]["id"]).stdout)
    assert "--outpaint" not in reuse and "--mask" in reuse  # the extended picture and its mask are named
    again = cli(*reuse[reuse.index("generate"):], "--json", "--out", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    with Image.open(json.loads(again.stdout)["path"]) as made:
        assert np.abs(np.asarray(made.convert("RGB"), dtype=np.int16) - pixels).max() <= 1

    alone = cli(*base, "--outpaint", "0,0,32,0")
    assert alone.returncode == 2 and "--outpaint needs --init-image" in alone.stderr
    odd = cli(*base, "--init-image", tmp_path / "init.png", "--outpaint", "32")
    assert odd.returncode == 2 and "four whole numbers of pixels" in odd.stderr


def test_enlarge_upscales_an_init_image_and_gallery_reuse_repeats_its_size(tiny_sd15, hyper_lora, tmp_path):
    init = tmp_path / "small.png"
    Image.new("RGB", (80, 64), (40, 120, 200)).save(init)
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
              "--steps", 2, "--init-image", init, "--strength", 0.5, "--enlarge", 2, "--seed", 3,
              "--out", tmp_path / "out", "--json")
    assert run.returncode == 0, run.stderr
    (line,) = [json.loads(line) for line in run.stdout.splitlines()]
    with Image.open(line["path"]) as image:
        assert image.size == (160, 128)
    request = read_request(line["path"])
    assert (request["width"], request["height"], request["strength"]) == (160, 128, 0.5)
    listing = json.loads(cli("gallery", "search", "fox", "--json").stdout)
    reuse = cli("gallery", "reuse", listing[0]["id"]).stdout
    assert "--width 160 --height 128" in reuse and "--init-image" in reuse, reuse


def test_tiles_repaint_an_enlarged_init_image_and_gallery_reuse_repeats_them(tiny_sd15, hyper_lora, tmp_path):
    init = tmp_path / "small.png"
    Image.new("RGB", (48, 32), (40, 120, 200)).save(init)
    common = ("generate", "--model", tiny_sd15, "--prompt", "a blue door", "--steps", 2, "--seed", 3,
              "--lora", hyper_lora("Hyper-SD15-1step-lora"), "--out", tmp_path / "out", "--json")
    alone = cli(*common, "--tiles")
    assert alone.returncode == 2 and "--tiles repaints an enlarged picture a tile at a time" in alone.stderr
    unfixed = cli(*common, "--init-image", init, "--strength", 0.5, "--enlarge", 2, "--seams-fix", "band")
    assert unfixed.returncode == 2 and "--seams-fix repaints the seams between the tiles of --tiles" in unfixed.stderr
    unpadded = cli(*common, "--init-image", init, "--strength", 0.5, "--enlarge", 2, "--tile-padding", 16)
    assert unpadded.returncode == 2 and "--tile-padding is for the tiles of --tiles" in unpadded.stderr
    run = cli(*common, "--init-image", init, "--strength", 0.5, "--enlarge", 2, "--tiles", 64, "--seams-fix", "band",
              "--seams-strength", 0.3, "--tile-padding", 16, "--tile-mask-blur", 4)
    assert run.returncode == 0, run.stderr
    (line,) = [json.loads(line) for line in run.stdout.splitlines()]
    with Image.open(line["path"]) as image:
        assert image.size == (96, 64)
        assert "Ultimate SD upscale tile_width: 64, Ultimate SD upscale tile_height: 64" in image.text["parameters"]
        assert "Ultimate SD upscale seams_fix_type: Band pass, Ultimate SD upscale seams_fix_denoise: 0.3" in \
            image.text["parameters"]
    assert read_request(line["path"])["repaint_tile"] == 64
    assert (read_request(line["path"])["tile_padding"], read_request(line["path"])["tile_mask_blur"]) == (16, 4)
    assert read_request(line["path"])["seams_fix"] == {"mode": "band", "strength": 0.3, "width": 64, "mask_blur": 4,
                                                       "padding": 16}
    listing = json.loads(cli("gallery", "search", "door", "--json").stdout)
    assert "--tiles 64 --tile-padding 16 --tile-mask-blur 4 --seams-fix band --seams-strength 0.3" in \
        cli("gallery", "reuse", listing[0]["id"]).stdout
    default = cli(*common, "--init-image", init, "--strength", 0.5, "--enlarge", 2, "--tiles", "--no-gallery")
    assert default.returncode == 0, default.stderr
    assert read_request(json.loads(default.stdout)["path"])["repaint_tile"] == 512  # the model's own side


def test_an_ip_adapter_steers_by_a_picture_with_the_installed_encoder_and_reuse_repeats_it(tiny_sd15, hyper_lora,
                                                                                          ip_adapters, tmp_path):
    """--ip-adapter MODEL:IMAGE:SCALE finds the installed encoder the adapter reads with, says what to install where
    none is, writes the unit as sd-webui-controlnet does, and `gallery reuse` gives the same command back."""
    from pictures import init_picture

    picture = tmp_path / "reference.png"
    init_picture().rotate(90).save(picture)
    base = ["generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
            "--steps", 2, "--width", 64, "--height", 64, "--seed", 3, "--out", tmp_path / "out", "--json"]
    steer = ["--ip-adapter", f"{ip_adapters['sd15']}:{picture}:0.7"]
    missing = cli(*base, *steer)
    assert missing.returncode == 2
    assert "reads pictures with a CLIP image encoder 16 wide, and no such image encoder is installed" in missing.stderr
    assert "name one with --image-encoder" in missing.stderr
    assert cli("models", "import", ip_adapters["encoder"]).returncode == 0
    run = cli(*base, *steer)
    assert run.returncode == 0, run.stderr
    (line,) = [json.loads(line) for line in run.stdout.splitlines()]
    (adapter,) = read_request(line["path"])["ip_adapters"]
    assert (adapter["model"], adapter["encoder"], adapter["scale"]) == (
        str(ip_adapters["sd15"]), str(ip_adapters["encoder"]), 0.7)
    with Image.open(line["path"]) as made:
        assert 'ControlNet 0: "Module: ip-adapter_clip, Model: ip-adapter_sd15, Weight: 0.7, Guidance Start: 0, ' \
               'Guidance End: 1"' in made.text["parameters"]
        steered = np.asarray(made.convert("RGB"), dtype=np.int16)
    plain = cli(*base)
    with Image.open(json.loads(plain.stdout)["path"]) as made:
        assert np.abs(np.asarray(made.convert("RGB"), dtype=np.int16) - steered).max() > 10
    listing = json.loads(cli("gallery", "search", "fox", "--json").stdout)
    reuse = cli("gallery", "reuse", next(item["id"] for item in listing if item["path"] == line["path"])).stdout
    assert f"--ip-adapter {ip_adapters['sd15']}:" in reuse and ":0.7 --image-encoder" in reuse, reuse
    given = cli(*base, *steer, "--image-encoder", ip_adapters["encoder file"])
    assert given.returncode == 0, given.stderr
    assert read_request(json.loads(given.stdout)["path"])["ip_adapters"][0]["encoder"] == str(
        ip_adapters["encoder file"])
    not_one = cli(*base, "--ip-adapter", f"{hyper_lora('Hyper-SD15-1step-lora')}:{picture}")
    assert not_one.returncode == 2 and "is a LoRA, not an IP-Adapter" in not_one.stderr


def test_only_the_masked_area_is_inpainted_and_the_photo_keeps_its_size(tiny_sd15, hyper_lora, tmp_path):
    from pictures import init_picture

    photo, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    init_picture().resize((320, 240)).save(photo)
    drawn = Image.new("L", (320, 240), 0)
    drawn.paste(255, (200, 100, 240, 140))
    drawn.save(mask)
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
              "--steps", 2, "--init-image", photo, "--mask", mask, "--only-masked", 8, "--width", 64, "--height", 64,
              "--seed", 3, "--out", tmp_path / "out", "--json")
    assert run.returncode == 0, run.stderr
    (line,) = [json.loads(line) for line in run.stdout.splitlines()]
    with Image.open(line["path"]) as made, Image.open(photo) as original:
        assert made.size == (320, 240)
        settings = made.text["parameters"].splitlines()[-1]
        kept = (slice(0, 60), slice(0, 320))  # far from the mask: the photo's own pixels
        assert (np.asarray(made.convert("RGB"))[kept] == np.asarray(original.convert("RGB"))[kept]).all()
    assert "Mask blur: 4, Inpaint area: Only masked, Masked area padding: 8" in settings
    assert read_request(line["path"])["masked_padding"] == 8
    listing = json.loads(cli("gallery", "search", "fox", "--json").stdout)
    reuse = cli("gallery", "reuse", listing[0]["id"]).stdout
    assert "--only-masked 8" in reuse, reuse
    no_mask = cli("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--init-image", photo, "--only-masked",
                  "--out", tmp_path / "out")
    assert no_mask.returncode == 2 and "Inpainting only the masked area needs a mask" in no_mask.stderr


def test_generate_with_canny_edges_of_a_photo(tiny_sd15, controlnets, tmp_path, app_home):
    """--preprocess canny makes the edge map (the model card's cv2.Canny 100/200) and the request names the map."""
    import cv2
    import numpy as np

    from hypersd_desktop.core.paths import AppPaths
    from pictures import init_picture

    photo = tmp_path / "photo.jpg"
    init_picture().save(photo, quality=95)
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a lighthouse", "--steps", 1, "--width", 64, "--height", 64,
              "--control", f"{controlnets['sd15']}:{photo}", "--preprocess", "canny", "--out", tmp_path / "out", "--json")
    assert run.returncode == 0, run.stderr
    (control,) = read_request(json.loads(run.stdout)["path"])["controls"]
    assert control["preprocessor"] == "none"
    (kept,) = AppPaths.default().inputs.glob(control["image"] + ".*")  # the edge map only, not the photo
    assert [path.name for path in AppPaths.default().inputs.iterdir()] == [kept.name]
    with Image.open(photo) as opened:
        expected = cv2.Canny(np.asarray(opened.convert("RGB")), 100, 200)
    with Image.open(kept) as edges:
        found = np.asarray(edges.convert("L"))
    assert np.array_equal(found, expected) and 0 < (found > 0).mean() < 0.5


def test_a_t2i_adapter_in_the_original_layout_steers_and_is_written_as_a1111_writes_a_unit(tiny_sd15, hyper_lora,
                                                                                          tmp_path, app_home):
    """`--control` takes a T2I-Adapter as A1111's folders hold it (`t2iadapter_canny_sd14v1`, the original layout);
    the PNG names it as a ControlNet unit, as sd-webui-controlnet does, and the image differs from one without it."""
    from safetensors.torch import load_file, save_file

    import tiny_models
    from pictures import edges_picture

    folder = tiny_models.save_t2i_adapter(tmp_path / "adapter", "sd15")
    adapter = tmp_path / "t2iadapter_canny_sd14v1.safetensors"
    save_file(tiny_models.t2i_adapter_original(load_file(folder / "diffusion_pytorch_model.safetensors")), adapter)
    edges = tmp_path / "edges.png"
    edges_picture().save(edges)
    common = ("generate", "--model", tiny_sd15, "--prompt", "a lighthouse", "--lora",
              hyper_lora("Hyper-SD15-1step-lora"), "--steps", 2, "--width", 64, "--height", 64, "--seed", 5, "--json")
    run = cli(*common, "--control", f"{adapter}:{edges}:0.9", "--out", tmp_path / "steered")
    assert run.returncode == 0, run.stderr
    path = json.loads(run.stdout)["path"]
    (control,) = read_request(path)["controls"]
    assert Path(control["model"]) == adapter and control["scale"] == 0.9
    assert 'ControlNet 0: "Module: none, Model: t2iadapter_canny_sd14v1' in read_png_text(path)["parameters"]
    said = cli("inspect", adapter).stdout
    assert said.startswith("t2iadapter_canny_sd14v1.safetensors: controlnet for SD1.5") and "A T2I-Adapter" in said
    plain = cli(*common, "--out", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    with Image.open(path) as steered, Image.open(json.loads(plain.stdout)["path"]) as unsteered:
        difference = np.abs(np.asarray(steered, np.int16) - np.asarray(unsteered, np.int16))
    assert difference.max() > 10


def test_canny_edges_of_a_large_photo_are_found_at_the_runs_size(tiny_sd15, controlnets, tmp_path, app_home):
    """A camera's photo is fitted to the run before its edges are found; found at 1600 × 1200 and scaled down to
    the run, they would reach the ControlNet faded to grey."""
    import cv2
    import numpy as np
    from PIL import ImageOps

    from hypersd_desktop.core.paths import AppPaths
    from pictures import init_picture

    photo = tmp_path / "DSC_0042.jpg"
    init_picture().resize((1600, 1200), Image.Resampling.BICUBIC).save(photo, quality=95)
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a lighthouse", "--steps", 1, "--width", 96, "--height",
              64, "--control", f"{controlnets['sd15']}:{photo}", "--preprocess", "canny", "--out", tmp_path / "out",
              "--json")
    assert run.returncode == 0, run.stderr
    (control,) = read_request(json.loads(run.stdout)["path"])["controls"]
    (kept,) = AppPaths.default().inputs.glob(control["image"] + ".*")
    with Image.open(photo) as opened:
        expected = cv2.Canny(np.asarray(ImageOps.fit(opened.convert("RGB"), (96, 64), Image.Resampling.LANCZOS)),
                             100, 200)
    with Image.open(kept) as edges:
        found = np.asarray(edges.convert("L"))
    assert found.shape == (64, 96) and np.array_equal(found, expected) and (found == 255).any()


def test_a_union_controlnet_is_told_what_each_image_is(tiny_sdxl, union_controlnets, tmp_path, app_home):
    """MODEL:IMAGE:SCALE:TYPE; --preprocess canny says canny by itself; a Union model told nothing is refused."""
    from pictures import depth_picture, edges_picture

    edges, depth = tmp_path / "edges.png", tmp_path / "depth.png"
    edges_picture().save(edges)
    depth_picture().save(depth)
    union = union_controlnets[8]
    base = ["generate", "--model", tiny_sdxl, "--prompt", "a lighthouse", "--steps", 1, "--width", 64, "--height", 64,
            "--out", tmp_path / "out", "--json", "--backend", "torch"]
    run = cli(*base, "--control", f"{union}:{edges}:0.5:canny", "--control", f"{union}:{depth}:0.7:depth")
    assert run.returncode == 0, run.stderr
    controls = read_request(json.loads(run.stdout)["path"])["controls"]
    assert [(c["scale"], c["control_type"]) for c in controls] == [(0.5, "canny"), (0.7, "depth")]
    refused = cli(*base, "--control", f"{union}:{depth}")
    assert refused.returncode == 2 and "is a ControlNet Union model" in refused.stderr
    assert "say which kind the control image is" in refused.stderr
    unknown = cli(*base, "--control", f"{union}:{depth}:1:lineart")
    assert unknown.returncode == 2 and "the control type in" in unknown.stderr
    said = cli("inspect", union / "diffusion_pytorch_model.safetensors").stdout
    assert "A ControlNet Union model of 8 control types: openpose, depth, softedge, canny, normal, segment, tile, " \
           "repaint" in said


def test_inspect_json(hyper_lora):
    run = cli("inspect", hyper_lora("Hyper-SDXL-2steps-lora"), "--json")
    assert run.returncode == 0
    data = json.loads(run.stdout)
    assert (data["kind"], data["architecture"], data["format"], data["hyper_sd"]) == (
        "lora", "sdxl", "kohya", "Hyper-SDXL-2steps-lora")


def test_prompt_styles_add_their_words_as_in_the_window(tiny_sd15, hyper_lora, tmp_path, app_home):
    """`--style NAME` applies a style of the app's styles.csv (in the order given), in `generate` and to each line of
    a `batch` job; without guidance its negative words are not added (no negative prompt is read); a name of no
    style is refused, naming the styles there are."""
    from hypersd_desktop.core.prompt_styles import PromptStyle, apply_styles, write_styles

    styles = [PromptStyle("Ink", "ink drawing of {prompt}", "colour"), PromptStyle("Sharp", "sharp focus", "blur")]
    write_styles(app_home / "data" / "styles.csv", styles)
    base = ["generate", "--model", tiny_sd15, "--prompt", "a {red|blue} fox", "--width", 64, "--height", 64,
            "--seed", 8, "--json", "--no-gallery", "--out", tmp_path / "out", "--style", "Sharp", "--style", "Ink"]
    run = cli(*base, "--negative", "text", "--guidance", 5, "--steps", 2)  # a plain model, guided
    assert run.returncode == 0, run.stderr
    request = read_request(json.loads(run.stdout)["path"])
    fox = request["prompt"].removeprefix("ink drawing of ").removesuffix(", sharp focus")
    assert fox in ("a red fox", "a blue fox")  # the choice made by the seed, within the styles' words
    assert (request["prompt"], request["negative_prompt"]) == apply_styles(fox, "text", styles[::-1])
    assert request["prompt_template"] == "ink drawing of a {red|blue} fox, sharp focus"

    run = cli(*base, "--lora", hyper_lora("Hyper-SD15-1step-lora"))  # no guidance: no negative prompt read
    assert run.returncode == 0, run.stderr
    request = read_request(json.loads(run.stdout)["path"])
    assert request["negative_prompt"] == "" and request["prompt"].startswith("ink drawing of a ")
    assert json.loads(run.stdout)["warnings"] == []

    job = tmp_path / "job.txt"  # a batch job's lines take them too, as A1111's prompt-file lines
    job.write_text('an owl\n--prompt "a hare" --negative_prompt "fog" --cfg_scale 6\n', encoding="utf-8")
    run = cli("batch", job, "--model", tiny_sd15, "--lora", hyper_lora("Hyper-SD15-1step-lora"), "--width", 64,
              "--height", 64, "--seed", 3, "--to", tmp_path / "batch", "--style", "Ink")
    assert run.returncode == 0, run.stderr
    made = sorted((read_request(path)["prompt"], read_request(path)["negative_prompt"])
                  for path in (tmp_path / "batch").rglob("*.png"))
    assert made == [apply_styles("a hare", "fog", styles[:1]), ("ink drawing of an owl", "")]

    plot = cli("generate", "--model", tiny_sd15, "--prompt", "a fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
               "--width", 64, "--height", 64, "--seed", 3, "--json", "--style", "Sharp", "--x-axis", "styles:None, Ink",
               "--out", tmp_path / "plot")  # A1111's Styles axis: each style added after the chosen ones
    assert plot.returncode == 0, plot.stderr
    made = [json.loads(line) for line in plot.stdout.splitlines()]
    assert [(item["x"], read_request(item["path"])["prompt"]) for item in made[:2]] == [
        ("None", "a fox, sharp focus"), ("Ink", "ink drawing of a fox, sharp focus")]
    assert cli(*base[:-4], "--x-axis", "styles:Oil").stderr.strip().endswith("(the styles: Ink, Sharp).")

    missing = cli("generate", "--model", tiny_sd15, "--prompt", "a fox", "--style", "Watercolour")
    assert missing.returncode == 2 and "No style is named 'Watercolour'" in missing.stderr
    assert "its styles: Ink, Sharp" in missing.stderr


@pytest.fixture
def bad_inputs(tmp_path, tiny_sd15, hyper_lora):
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x02}q\x00.")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes()[:5000])
    not_safetensors = tmp_path / "text.safetensors"
    not_safetensors.write_text("hello, this is not a model")
    base = ["generate", "--model", tiny_sd15, "--prompt", "x"]
    picture, small, colours = tmp_path / "picture.png", tmp_path / "small.png", tmp_path / "colours.png"
    Image.new("RGB", (64, 64), "gray").save(picture)
    Image.new("L", (32, 32), 255).save(small)
    Image.new("RGB", (64, 64), (255, 0, 0)).save(colours)
    other_controlnet = tmp_path / "sdxl-canny"
    other_controlnet.mkdir()
    (other_controlnet / "config.json").write_text('{"_class_name": "ControlNetModel", "cross_attention_dim": 2048}')
    return {
        "mask-size": ([*base, "--init-image", picture, "--mask", small], "grayscale image of the same size"),
        "mask-colours": ([*base, "--init-image", picture, "--mask", colours], "The mask has colours"),
        "mask-without-init": ([*base, "--mask", small], "--mask needs --init-image"),
        "init-not-an-image": ([*base, "--init-image", not_safetensors], "cannot be read as an image"),
        "enlarge-without-init": ([*base, "--enlarge", 2], "--enlarge needs --init-image"),
        "enlarge-and-width": ([*base, "--init-image", picture, "--enlarge", 2, "--width", 128], "leave out --width"),
        "enlarge-too-far": ([*base, "--init-image", picture, "--enlarge", 5], "at most 4; got 5"),
        "controlnet-architecture": ([*base, "--control", f"{other_controlnet}:{picture}"],
                                   "ControlNet sdxl-canny is for SDXL; the base model is SD1.5"),
        "other-architecture": ([*base, "--lora", hyper_lora("Hyper-SDXL-2steps-lora")], "for SDXL; the base model is SD1.5"),
        "width-not-multiple-of-8": ([*base, "--width", 100], "multiple of 8"),
        "pickle-lora": ([*base, "--lora", pickle], "pickle"),
        "pickle-model": (["generate", "--model", pickle, "--prompt", "x"], "pickle"),
        "truncated-lora": ([*base, "--lora", truncated], "truncated"),
        "not-safetensors": ([*base, "--lora", not_safetensors], "is text, not model weights"),
        "missing-model": (["generate", "--model", tmp_path / "nope", "--prompt", "x"], "does not exist"),
        "inspect-pickle": (["inspect", pickle], "pickle"),
    }


@pytest.mark.parametrize("case", ["other-architecture", "width-not-multiple-of-8", "pickle-lora", "pickle-model",
                                  "truncated-lora", "not-safetensors", "missing-model", "inspect-pickle",
                                  "mask-size", "mask-colours", "mask-without-init",
                                  "init-not-an-image", "controlnet-architecture", "enlarge-without-init",
                                  "enlarge-and-width", "enlarge-too-far"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(bad_inputs, case, tmp_path):
    args, message = bad_inputs[case]
    out = tmp_path / "out"
    run = cli(*args, *(["--out", out] if args[0] == "generate" else []))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert message in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_a_long_weighted_prompt_is_read_whole_and_kept_as_written(tiny_sd15, tmp_path):
    prompt = "(cat:1.2), " * 45 + "[giraffe]"
    run = cli("generate", "--model", tiny_sd15, "--prompt", prompt, "--steps", 1, "--width", 64, "--height", 64,
              "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    assert "dropped" not in run.stderr and "window" not in run.stderr
    (image,) = tmp_path.glob("*.png")
    assert read_request(image)["prompt"] == prompt


def test_an_installed_embedding_named_in_the_prompt_applies_and_reuse_names_it(tiny_sd15, tmp_path):
    import torch
    from safetensors.torch import save_file

    embedding = tmp_path / "lantern_glow.safetensors"
    save_file({"emb_params": torch.randn(2, 32, generator=torch.Generator().manual_seed(4))}, str(embedding))
    assert cli("models", "import", embedding).returncode == 0

    def generate(prompt, out):
        run = cli("generate", "--model", tiny_sd15, "--prompt", prompt, "--steps", 1, "--width", 64, "--height", 64,
                  "--seed", 3, "--out", out)
        assert run.returncode == 0, run.stderr
        (image,) = out.glob("*.png")
        return image

    named = generate("a paper lantern, lantern_glow", tmp_path / "named")
    assert read_request(named)["embeddings"] == [str(embedding)]
    # named as A1111 names the embeddings it used: 12 digits of the file's sha256
    ti_hash = hashlib.sha256(embedding.read_bytes()).hexdigest()[:12]
    assert f'TI hashes: "lantern_glow: {ti_hash}"' in read_png_text(named)["parameters"]
    plain = generate("a paper lantern", tmp_path / "plain")
    assert read_request(plain)["embeddings"] == []
    with Image.open(named) as a, Image.open(plain) as b:
        assert a.tobytes() != b.tobytes()


def test_a_lora_applied_without_its_trigger_words_is_noted(tiny_sd15, hyper_lora, tmp_path, app_home):
    lora = tmp_path / "pixel_art.safetensors"
    lora.write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes())
    lora.with_name("pixel_art.civitai.info").write_text('{"trainedWords": ["pixel art", "8-bit"]}')
    assert cli("models", "import", lora).returncode == 0

    def generate(prompt):
        run = cli("generate", "--model", tiny_sd15, "--prompt", prompt, "--steps", 1, "--width", 64, "--height", 64,
                  "--out", tmp_path / "out")
        assert run.returncode == 0, run.stderr
        return [line for line in run.stderr.splitlines() if line.startswith("note:")]

    assert generate("a castle <lora:pixel_art:0.7>") == [
        "note: pixel_art is applied, but the prompt has none of its trigger words (pixel art, 8-bit); it may show "
        "little without them."]
    assert generate("a castle, 8-bit <lora:pixel_art:0.7>") == []


def test_generate_with_a_photos_depth_map(tiny_sd15, hyper_lora, depth_model, tmp_path, app_home):
    """--preprocess depth makes the map with the depth model (--depth-model, or the installed one) and the
    request names the map: the image is the one made from that map given as it is."""
    import tiny_models

    from hypersd_desktop.engine.depth import DepthEstimator

    controlnet = tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11f1p_sd15_depth")
    rng = np.random.default_rng(9)
    Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    common = ("generate", "--model", tiny_sd15, "--prompt", "a room", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
              "--steps", 2, "--width", 64, "--height", 64, "--seed", 5, "--json", "--out", tmp_path / "out")
    run = cli(*common, "--control", f"{controlnet}:{tmp_path / 'photo.png'}", "--preprocess", "depth")
    assert run.returncode == 2 and "models download depth-anything-v2-small" in run.stderr, run.stderr
    assert cli("models", "import", depth_model).returncode == 0  # installed: found without --depth-model

    run = cli(*common, "--control", f"{controlnet}:{tmp_path / 'photo.png'}", "--preprocess", "depth")
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout)
    (control,) = read_request(made["path"])["controls"]
    depth = DepthEstimator().depth_map(Image.open(tmp_path / "photo.png"), str(depth_model), "cpu")
    depth.save(tmp_path / "depth.png")
    assert control["preprocessor"] == "none" and control["image"] == hashlib.sha256(
        (tmp_path / "depth.png").read_bytes()).hexdigest()
    again = cli(*common, "--control", f"{controlnet}:{tmp_path / 'depth.png'}")  # the map given as it is
    with Image.open(made["path"]) as first, Image.open(json.loads(again.stdout)["path"]) as second:
        assert np.array_equal(np.asarray(first), np.asarray(second))

    run = cli(*common, "--control", f"{controlnet}:{tmp_path / 'photo.png'}", "--preprocess", "depth",
              "--depth-model", tiny_sd15)
    assert run.returncode == 2 and "is not a depth model" in run.stderr
    run = cli(*common, "--control", f"{controlnet}:{tmp_path / 'photo.png'}", "--depth-model", depth_model)
    assert run.returncode == 2 and "--depth-model is for --preprocess depth" in run.stderr


def test_generate_with_the_pose_in_a_photo(tiny_sd15, hyper_lora, pose_models, tmp_path, app_home):
    """--preprocess pose draws the people in the photo as OpenPose's skeleton with the installed pose model and
    person detector (or --pose-model, --person-detector); the request names the map; a missing model is named with
    the command that installs it."""
    import tiny_models

    from hypersd_desktop.engine.pose import PoseEstimator

    model, detector = pose_models
    controlnet = tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11p_sd15_openpose")
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (60, 90, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    common = ("generate", "--model", tiny_sd15, "--prompt", "a dancer", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
              "--steps", 2, "--width", 64, "--height", 64, "--seed", 5, "--json", "--out", tmp_path / "out",
              "--control", f"{controlnet}:{tmp_path / 'p.png'}")
    run = cli(*common, "--preprocess", "pose")
    assert run.returncode == 2 and "models download vitpose-base-simple" in run.stderr, run.stderr
    assert cli("models", "import", model).returncode == 0
    run = cli(*common, "--preprocess", "pose")
    assert run.returncode == 2 and "models download rtdetr-r50vd-coco-o365" in run.stderr, run.stderr
    listed = cli("models", "import", detector)
    assert listed.returncode == 0 and "detector" in listed.stdout, listed.stdout

    run = cli(*common, "--preprocess", "pose")
    assert run.returncode == 0, run.stderr
    (control,) = read_request(json.loads(run.stdout)["path"])["controls"]
    drawn = PoseEstimator().pose_map(Image.open(tmp_path / "p.png"), str(model), str(detector), "cpu")
    drawn.save(tmp_path / "pose.png")
    assert control["preprocessor"] == "none" and control["image"] == hashlib.sha256(
        (tmp_path / "pose.png").read_bytes()).hexdigest()

    run = cli(*common, "--preprocess", "pose", "--pose-model", detector)
    assert run.returncode == 2 and "is not a pose model" in run.stderr, run.stderr
    run = cli(*common, "--preprocess", "depth", "--person-detector", detector)
    assert run.returncode == 2 and "--person-detector is for --preprocess pose" in run.stderr, run.stderr


def assert_made_again(reuse: list[str], made: str, out: Path) -> None:
    """The `generate` command `gallery reuse` gave (`reuse`, split into words) makes the image `made` again."""
    again = cli(*reuse[reuse.index("generate"):], "--json", "--out", out)
    assert again.returncode == 0, again.stderr
    with Image.open(made) as first, Image.open(json.loads(again.stdout)["path"]) as second:
        assert np.array_equal(np.asarray(first), np.asarray(second))


def test_generate_with_a_face_pass(tiny_sd15, hyper_lora, pose_models, tmp_path, app_home):
    """--detail-faces repaints the faces the installed pose models find (ADetailer's pass): the request names the pass
    and the models, the PNG says it in ADetailer's words, and `gallery reuse` repeats it."""
    model, detector = pose_models
    common = ("generate", "--model", tiny_sd15, "--prompt", "two friends", "--lora",
              hyper_lora("Hyper-SD15-1step-lora"), "--steps", 2, "--width", 128, "--height", 96, "--seed", 5,
              "--json", "--out", tmp_path / "out")
    faces = ("--detail-faces", "--face-prompt", "freckles", "--face-confidence", 0.1, "--face-padding", 8)
    run = cli(*common, *faces)
    assert run.returncode == 2 and "--detail-faces needs a pose model" in run.stderr and \
        "models download vitpose-base-simple" in run.stderr, run.stderr
    assert cli("models", "import", model).returncode == 0 and cli("models", "import", detector).returncode == 0
    run = cli(*common, *faces)
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout)["path"]
    detail = read_request(made)["face_detail"]
    assert (detail["strength"], detail["prompt"], detail["confidence"], detail["padding"]) == (0.4, "freckles", 0.1, 8)
    assert Path(detail["model"]).name == "vitpose-base-simple" and Path(detail["detector"]).name == detector.name
    with Image.open(made) as png:
        assert "ADetailer model: face from pose (vitpose-base-simple), ADetailer prompt: freckles" in \
            png.text["parameters"]
    plain = cli(*common)
    with Image.open(made) as detailed, Image.open(json.loads(plain.stdout)["path"]) as image:
        assert np.abs(np.asarray(detailed, np.int16) - np.asarray(image, np.int16)).max() > 10

    listing = json.loads(cli("gallery", "search", "friends", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", next(item["id"] for item in listing
                                                     if item["path"] == made)).stdout)
    found = json.loads(cli("gallery", "search", "freckles", "--json").stdout)  # the faces' own prompt is searched
    assert [item["path"] for item in found] == [made]
    assert reuse[reuse.index("--detail-faces") + 1] == "0.4" and reuse[reuse.index("--face-prompt") + 1] == "freckles"
    assert_made_again(reuse, made, tmp_path / "again")

    run = cli(*common, "--face-prompt", "freckles")
    assert run.returncode == 2 and "--face-prompt is the face pass's own" in run.stderr, run.stderr
    run = cli(*common, "--face-padding", 48)  # not silently left out
    assert run.returncode == 2 and "--face-padding is the face pass's own" in run.stderr, run.stderr
    run = cli(*common, "--detail-faces", 1.5)
    assert run.returncode == 2 and "strength must be above 0 and at most 1" in run.stderr, run.stderr


def test_generate_with_a_hand_pass_after_the_faces(tiny_sd15, hyper_lora, pose_models, tmp_path, app_home):
    """--detail-hands repaints the hands after the faces, with its own options; `gallery reuse` repeats both."""
    model, detector = pose_models
    assert cli("models", "import", model).returncode == 0 and cli("models", "import", detector).returncode == 0
    common = ("generate", "--model", tiny_sd15, "--prompt", "two friends waving", "--lora",
              hyper_lora("Hyper-SD15-1step-lora"), "--steps", 2, "--width", 128, "--height", 96, "--seed", 5,
              "--json", "--out", tmp_path / "out")
    run = cli(*common, "--detail-faces", "--face-confidence", 0.1, "--detail-hands", 0.6, "--hand-prompt",
              "five fingers", "--hand-confidence", 0.1, "--hand-padding", 12, "--hand-largest", 1, "--hand-steps", 3,
              "--hand-size", "96x64", "--hand-dilate", -2, "--hand-offset=-1,2", "--hand-ratios", "0,0.9",
              "--hand-merge", "invert")
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout)["path"]
    hands = read_request(made)["hand_detail"]
    assert (hands["strength"], hands["prompt"], hands["confidence"], hands["padding"], hands["largest"], hands["steps"],
            hands["width"], hands["height"]) == (0.6, "five fingers", 0.1, 12, 1, 3, 96, 64)
    assert (hands["dilate_erode"], hands["x_offset"], hands["y_offset"], hands["min_ratio"], hands["max_ratio"],
            hands["merge"]) == (-2, -1, 2, 0.0, 0.9, "merge and invert")
    assert read_request(made)["face_detail"]["confidence"] == 0.1
    with Image.open(made) as png:
        assert "ADetailer model 2nd: hand from pose (vitpose-base-simple), ADetailer prompt 2nd: five fingers" in \
            png.text["parameters"]
    listing = json.loads(cli("gallery", "search", "friends", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", next(item["id"] for item in listing
                                                     if item["path"] == made)).stdout)
    assert reuse[reuse.index("--detail-hands") + 1:reuse.index("--detail-hands") + 22] == [
        "0.6", "--hand-prompt", "five fingers", "--hand-padding", "12", "--hand-largest", "1", "--hand-steps", "3",
        "--hand-size", "96x64", "--hand-dilate", "-2", "--hand-offset=-1,2", "--hand-ratios", "0,0.9",
        "--hand-merge", "invert", "--hand-confidence", "0.1", "--pose-model"]
    assert "--detail-faces" in reuse
    assert_made_again(reuse, made, tmp_path / "again")
    run = cli(*common, "--hand-prompt", "five fingers")
    assert run.returncode == 2 and "--hand-prompt is the hand pass's own; add --detail-hands" in run.stderr, run.stderr
    run = cli(*common, "--detail-hands", "--hand-size", "big")
    assert run.returncode == 2 and "'big' is not a size: give it as WxH, such as 1024x1024" in run.stderr, run.stderr
    run = cli(*common, "--detail-hands", "--hand-offset", "up")
    assert run.returncode == 2 and "'up' is not two whole numbers: give them as X,Y" in run.stderr, run.stderr

    # the hands of a picture alone, nothing else of it (ADetailer's "skip img2img"); reuse repeats that too
    picture = tmp_path / "plain.png"
    Image.new("RGB", (128, 96), (200, 180, 160)).save(picture)
    plain = json.loads(cli(*common).stdout)["path"]
    alone = cli(*common, "--init-image", plain, "--detail-only", "--detail-hands", "--hand-confidence", 0.1)
    assert alone.returncode == 0, alone.stderr
    made = json.loads(alone.stdout)["path"]
    assert read_request(made)["detail_only"] is True
    with Image.open(made) as detailed, Image.open(plain) as before:
        assert detailed.size == before.size and not np.array_equal(np.asarray(detailed), np.asarray(before))
    listing = json.loads(cli("gallery", "search", "waving", "--json").stdout)
    reuse = shlex.split(cli("gallery", "reuse", next(item["id"] for item in listing if item["path"] == made)).stdout)
    assert "--detail-only" in reuse and "--init-image" in reuse
    assert_made_again(reuse, made, tmp_path / "again-alone")
    nothing = cli(*common, "--init-image", picture, "--detail-only", "--detail-hands", "--hand-confidence", 1)
    assert nothing.returncode == 2 and "No face or hand was found in the picture" in nothing.stderr, nothing.stderr
    bare = cli(*common, "--init-image", picture, "--detail-only")
    assert bare.returncode == 2 and "Detailing a picture alone" in bare.stderr, bare.stderr


def test_the_packaged_app_has_the_runtimes_worker_make_the_depth_map(tiny_sd15, hyper_lora, depth_model, tmp_path,
                                                                     app_home, monkeypatch, capsys):
    """The packaged app's command line has no torch: the worker of the compute runtime makes the depth map first,
    then the image from it. The runtime is this interpreter here (an installed runtime is tests/runtime's)."""
    import tiny_models

    from hypersd_desktop.cli import build_parser, generate
    from hypersd_desktop.engine.depth import DepthEstimator
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.runtime import install
    from hypersd_desktop.worker.client import worker_command

    monkeypatch.setattr(install, "status", lambda paths: install.RuntimeStatus("ready", "ready"))
    monkeypatch.setattr(install, "runtime_worker_command", lambda paths: worker_command())
    controlnet = tiny_models.save_controlnet(tiny_sd15, tmp_path / "control_v11f1p_sd15_depth")
    Image.fromarray(np.random.default_rng(9).integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    args = build_parser().parse_args([
        "generate", "--model", str(tiny_sd15), "--prompt", "a room", "--lora", str(hyper_lora("Hyper-SD15-1step-lora")),
        "--steps", "2", "--width", "64", "--height", "64", "--seed", "5", "--json", "--control",
        f"{controlnet}:{tmp_path / 'p.png'}", "--preprocess", "depth", "--depth-model", str(depth_model),
        "--out", str(tmp_path / "made" / "room.png")])
    request = generate.request_from_args(args)
    assert generate.run_in_runtime(request, args, AppPaths.default(), generate.map_of(args)) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["path"] == str(tmp_path / "made" / "room.png")  # a copy of the runtime's image, named by --out
    (control,) = read_request(made["path"])["controls"]
    depth = DepthEstimator().depth_map(Image.open(tmp_path / "p.png"), str(depth_model), "cpu")
    depth.save(tmp_path / "depth.png")
    assert control["image"] == hashlib.sha256((tmp_path / "depth.png").read_bytes()).hexdigest()


def test_importing_a_folder_without_models_says_so_and_where_its_images_go(app_home, tmp_path):
    outputs = tmp_path / "outputs" / "txt2img-images"
    outputs.mkdir(parents=True)
    for k in range(3):
        Image.new("RGB", (8, 8)).save(outputs / f"0000{k}.png")
    result = cli("models", "import", tmp_path / "outputs")
    assert result.returncode == 0 and result.stdout == ""
    assert "no model files in" in result.stderr, "not a silent success"
    assert f"its 3 images go to the gallery with `gallery import {tmp_path / 'outputs'}`" in result.stderr


def test_an_images_folder_on_a_drive_that_is_not_there_is_said_and_the_app_still_runs(tiny_sd15, app_home, tmp_path):
    """The images folder chosen in Settings is gone (an unplugged drive; here a file stands on its path): the
    commands still start, and generating says the image was not saved, where, and why, writing nothing."""
    from hypersd_desktop.core.paths import AppPaths

    paths = AppPaths.default()
    paths.config.mkdir(parents=True, exist_ok=True)
    unplugged = tmp_path / "usb-drive"
    unplugged.write_text("not a folder")
    (paths.config / "settings.json").write_text(json.dumps({"images_dir": str(unplugged / "images")}))
    assert cli("models", "list").returncode == 0
    run = cli("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--seed", 3, "--steps", 1, "--width", 64,
              "--height", 64)
    assert run.returncode == 2, run.stderr
    assert f"The image (seed 3) was not saved: it could not be written into {unplugged / 'images'}" in run.stderr
    assert "bug" not in run.stderr and unplugged.read_text() == "not a folder"


def test_generate_without_a_model_runs_the_windows_model_and_hyper_sd_file(tiny_sd15, hyper_lora, tmp_path, app_home):
    """Typed by someone who set the window up: `generate "a red fox"` runs the base model and the Hyper-SD file the
    window starts with (the last chosen), and says which; a Hyper-SD --lora named on the line replaces the file."""
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.settings import Settings, save_settings
    from hypersd_desktop.models.library import ModelLibrary

    run = cli("generate", "a red fox")
    assert run.returncode == 2 and run.stderr.startswith("error: No base model is installed: `hypersd-desktop models "
                                                         "download sd15`"), run.stderr
    for path in (tiny_sd15, hyper_lora("Hyper-SD15-1step-lora"), hyper_lora("Hyper-SD15-4steps-lora")):
        assert cli("models", "import", path).returncode == 0
    library = ModelLibrary(AppPaths.default())
    (four_steps,) = [m for m in library.hyper_files("sd15") if m.recipe == "Hyper-SD15-4steps-lora"]
    library.close()
    save_settings(Settings(last_hyper=four_steps.id))  # the window's last choice; not the first in its list

    def generate(*args):
        run = cli("generate", *args, "--width", 64, "--height", 64, "--seed", 5, "--json", "--out", tmp_path / "out")
        assert run.returncode == 0, run.stderr
        line = json.loads(run.stdout)
        return line, read_request(line["path"]), run.stderr

    line, request, said = generate("a red fox")
    assert (line["recipe"], line["steps"]) == ("Hyper-SD15-4steps-lora", 4)
    assert [lora["path"] for lora in request["loras"]] == [four_steps.path] and request["prompt"] == "a red fox"
    assert "note: using sd15 with Hyper-SD15-4steps-lora, as the window would; --model names another" in said
    line, request, _ = generate("--prompt", "a red fox", "--lora", "Hyper-SD15-1step-lora")
    assert line["recipe"] == "Hyper-SD15-1step-lora" and len(request["loras"]) == 1
    job = tmp_path / "job.txt"
    job.write_text("an owl\n")
    run = cli("batch", job, "--width", 64, "--height", 64, "--to", tmp_path / "batch")
    assert run.returncode == 0 and "using sd15 with Hyper-SD15-4steps-lora" in run.stderr, run.stderr
    (made,) = (tmp_path / "batch").rglob("*.png")
    assert [lora["path"] for lora in read_request(made)["loras"]] == [four_steps.path]

    run = cli("generate", "--model", tiny_sd15)
    assert run.returncode == 2 and "Say what to make: hypersd-desktop generate \"a lighthouse at dusk\"" in run.stderr
    run = cli("generate", "a red fox", "--prompt", "an owl")
    assert run.returncode == 2 and "Give the prompt once" in run.stderr


def test_gallery_enlarge_makes_copies_alone_by_the_upscaler_named(tmp_path, app_home):
    """`gallery enlarge` does what the window's "Enlarge only" does: by a gallery id or a file, with an upscaler
    model (by its installed name) or Lanczos, into the gallery; what is no upscaler is refused with what it is."""
    import tiny_models
    import torch
    from safetensors.torch import save_file

    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary

    picture = tmp_path / "20261204-101500-31.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(picture)
    upscaler = tiny_models.save_upscaler(tmp_path / "2x-Compact.safetensors", "compact", scale=2)
    library = ModelLibrary(AppPaths.default())
    library.import_path(upscaler)
    library.close()
    said = cli("inspect", upscaler).stdout
    assert said.startswith("2x-Compact.safetensors: upscaler for SD1.5 and SDXL images, Real-ESRGAN Compact ×2 "
                           "(1 convolution); 8 tensors"), said
    run = cli("gallery", "enlarge", str(picture), "--scale", "4", "--upscaler", "2x-Compact", "--json")
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout.splitlines()[-1])
    with Image.open(made["path"]) as image:
        assert image.size == (128, 96)
        assert image.text["postprocessing"] == "Postprocess upscale by: 4, Postprocess upscaler: 2x-Compact"
    assert made["seed"] == 31 and made["image_id"] is not None

    again = cli("gallery", "enlarge", str(made["image_id"]), "--scale", "1.5")  # by its id, with Lanczos
    assert again.returncode == 0, again.stderr
    with Image.open(again.stdout.strip()) as image:
        assert image.size == (192, 144)
    refused = cli("gallery", "enlarge", str(picture), "--upscaler", str(tmp_path / "20261204-101500-31.png"))
    assert refused.returncode == 2 and "is a picture (PNG, JPEG, WebP or GIF), not model weights" in refused.stderr
    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_a.lora_down.weight": torch.zeros(4, 8), "lora_unet_a.lora_up.weight": torch.zeros(8, 4)},
              str(lora))
    refused = cli("gallery", "enlarge", str(picture), "--upscaler", lora)
    assert refused.returncode == 2 and "is a LoRA, not an upscaler" in refused.stderr, refused.stderr
    refused = cli("gallery", "enlarge", "9999", "--scale", "2")
    assert refused.returncode == 2 and "No image 9999 in the gallery" in refused.stderr, refused.stderr


def test_the_packaged_app_has_the_runtimes_worker_enlarge(tmp_path, app_home, monkeypatch, capsys):
    """Without torch in the program (the packaged app), `gallery enlarge` asks the compute runtime's worker, which is
    this interpreter here."""
    import argparse

    from hypersd_desktop.cli import gallery
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.runtime import install
    from hypersd_desktop.worker.client import worker_command
    from hypersd_desktop.worker.protocol import Enlargement

    monkeypatch.setattr(install, "status", lambda paths: install.RuntimeStatus("ready", "ready"))
    monkeypatch.setattr(install, "runtime_worker_command", lambda paths: worker_command())
    pictures = [tmp_path / f"{n}.png" for n in range(2)]
    for n, path in enumerate(pictures):
        Image.new("RGB", (20 + n, 10), (n * 90, 40, 200)).save(path)
    args = argparse.Namespace(device="auto", json=True)
    assert gallery._enlarge_in_runtime(AppPaths.default(), [Enlargement(str(p), 2.0) for p in pictures], args) == 0
    made = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(Image.open(m["path"]).size for m in made) == [(40, 20), (42, 20)]


def test_an_xy_plot_writes_each_image_and_the_labelled_grid_into_the_folder(tiny_sd15, hyper_lora, tmp_path):
    """--x-axis, --y-axis and --z-axis (A1111's X/Y/Z plot): each image is the one `generate` makes with its
    settings, the grid is last, and the axes' values are checked before anything runs."""
    base = ["generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
            "--width", 64, "--height", 64, "--seed", 3, "--json", "--backend", "torch"]
    run = cli(*base, "--x-axis", "steps:1-2", "--y-axis", "Prompt S/R:red, blue", "--out", tmp_path / "plot")
    assert run.returncode == 0, run.stderr
    made = [json.loads(line) for line in run.stdout.splitlines()]
    assert [item["grid"] for item in made] == [False] * 4 + [True]
    assert [(item["x"], item["y"]) for item in made[:4]] == [("Steps: 1", "red"), ("Steps: 2", "red"),
                                                             ("Steps: 1", "blue"), ("Steps: 2", "blue")]
    assert all(Path(item["path"]).parent == tmp_path / "plot" for item in made)
    with Image.open(made[-1]["path"]) as grid:
        assert 'X Type: Steps, X Values: 1-2, Y Type: Prompt S/R, Y Values: "red, blue"' in grid.text["parameters"]
    reuse = shlex.split(cli("gallery", "reuse", made[-1]["path"]).stdout)  # the grid: its plot again
    assert reuse[reuse.index("--x-axis") + 1] == "steps:1-2"
    assert reuse[reuse.index("--y-axis") + 1] == "prompt:red, blue"
    assert reuse[reuse.index("--prompt") + 1] == "a red fox"
    alone = json.loads(cli(*base, "--steps", 2, "--prompt", "a blue fox", "--out", tmp_path / "alone").stdout)
    with Image.open(made[3]["path"]) as one, Image.open(alone["path"]) as two:
        assert np.abs(np.asarray(one, np.int16) - np.asarray(two, np.int16)).max() <= 1  # made in a batch of two

    one, two = hyper_lora("Hyper-SD15-1step-lora"), hyper_lora("Hyper-SD15-2steps-lora")
    files = cli(*base, "--x-axis", f"hyper-sd:{one}, {two}", "--z-axis", "seed:3, 4",  # each file at its recipe,
                "--out", tmp_path / "files")                                       # a grid of them for each seed
    assert files.returncode == 0, files.stderr
    made = [json.loads(line) for line in files.stdout.splitlines()]
    assert [(item.get("z"), "y" in item, item["grid"]) for item in made] == [
        ("Seed: 3", False, False)] * 2 + [("Seed: 4", False, False)] * 2 + [(None, False, True)]
    assert [read_request(item["path"])["seed"] for item in made[:4]] == [3, 3, 4, 4]
    reuse = shlex.split(cli("gallery", "reuse", made[-1]["path"]).stdout)
    assert reuse[reuse.index("--z-axis") + 1] == "seed:3, 4" and "--y-axis" not in reuse
    cells = made[:2]
    assert [(read_request(c["path"])["loras"][0]["path"], read_request(c["path"])["steps"]) for c in cells] == [
        (str(one), None), (str(two), None)]
    assert ["Steps: 1," in read_png_text(c["path"])["parameters"] for c in cells] == [True, False]
    assert "Steps: 2," in read_png_text(cells[1]["path"])["parameters"]

    for options, said in ((["--x-axis", "steps:0-2"], "Steps 0 cannot be used"),
                          (["--x-axis", "model:no such model"], "no such model is neither a file nor an installed"),
                          (["--x-axis", "size:1,2"], "No plot axis is called 'size'"),
                          (["--x-axis", "steps"], "is not AXIS:VALUES"),
                          (["--y-axis", "seed:1,2"], "--y-axis is part of an X/Y/Z plot"),
                          (["--z-axis", "seed:1,2"], "--z-axis is part of an X/Y/Z plot"),
                          (["--x-axis", "seed:1,2", "--z-axis", "seed:3"], "X and Z are both Seed"),
                          (["--x-axis", "prompt:owl,cat"], "'owl' (its first value) is in neither the prompt"),
                          (["--x-axis", "seed:1,2", "--out", tmp_path / "grid.png"], "name a folder")):
        refused = cli(*base, *options)
        assert refused.returncode != 0 and said in refused.stderr, refused.stderr


def test_describe_prints_a_pictures_tags_as_a_prompt(tagger, tmp_path, app_home):
    """`describe` with no tagger installed says which to download; with one installed (or named) it prints each
    picture's tags, as a prompt or as JSON with scores."""
    red, blue = tmp_path / "red.png", tmp_path / "blue photo.jpg"
    Image.new("RGB", (80, 80), "red").save(red)
    Image.new("RGB", (80, 80), "blue").save(blue, quality=95)
    none = cli("describe", red)
    assert none.returncode == 2 and "hypersd-desktop models download wd-swinv2-tagger-v3" in none.stderr
    named = cli("describe", red, "--tagger", tagger)
    assert named.returncode == 0, named.stderr
    assert named.stdout == "red background, cosplay \\(costume\\), ^_^, long hair\n"
    assert cli("models", "import", tagger).returncode == 0
    both = cli("describe", red, blue, "--threshold", 0.6)
    assert both.returncode == 0, both.stderr
    assert both.stdout.splitlines() == [f"{red}: red background, cosplay \\(costume\\)", f"{blue}: blue theme"]
    record = json.loads(cli("describe", red, "--json").stdout)
    assert record["prompt"].startswith("red background") and record["rating"] == "general"
    assert record["tags"][0] == {"name": "red_background", "score": pytest.approx(1.0, abs=1e-3), "character": False}
    bad = cli("describe", red, "--threshold", 2)
    assert bad.returncode == 2 and "--threshold is a score from 0 to 1" in bad.stderr
    not_a_tagger = cli("describe", red, "--tagger", tmp_path)
    assert not_a_tagger.returncode == 2 and "is not a tagger the app reads" in not_a_tagger.stderr
    missing = cli("describe", tmp_path / "gone.png")
    assert missing.returncode == 2 and "gone.png cannot be read" in missing.stderr


def test_gallery_describe_lets_the_search_find_images_by_what_they_show(tagger, tmp_path, app_home):
    """`gallery describe` reads each image not described yet with the tagger and keeps its tags for the search:
    pictures without a prompt (a photo, an edit) are found by what they show; --again and ids describe anew; an
    image whose file is gone is named and the others are described (exit 1)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.new("RGB", (40, 40), "red").save(folder / "poster.png")
    Image.new("RGB", (40, 40), "blue").save(folder / "sea.png")
    imported = cli("gallery", "import", folder)
    assert "added 2" in imported.stdout
    assert "2 of them came without a prompt: `hypersd-desktop gallery describe` has a tagger read them" in (
        imported.stderr)
    assert "No images match" in cli("gallery", "search", "background").stdout
    assert "No images match" in cli("gallery", "list", "--made-with", "comfyui").stdout  # not "empty": a filter
    assert len(cli("gallery", "list", "--made-with", "none").stdout.splitlines()) == 2  # photos: no generation data
    none = cli("gallery", "describe")
    assert none.returncode == 2 and "hypersd-desktop models download wd-swinv2-tagger-v3" in none.stderr
    run = cli("gallery", "describe", "--tagger", tagger, "--threshold", 0.6)
    assert run.returncode == 0, run.stderr
    assert "2 images described; the search finds them by their tags" in run.stderr
    found = json.loads(cli("gallery", "search", "red background", "--json").stdout)
    assert [Path(item["path"]).name for item in found] == ["poster.png"]
    assert "red background, cosplay" in cli("gallery", "search", "red background").stdout  # what it shows, listed
    assert found[0]["described"] == "red background, cosplay \\(costume\\)"
    assert [Path(item["path"]).name for item in json.loads(cli("gallery", "search", "blue", "--json").stdout)] == [
        "sea.png"]
    again = cli("gallery", "describe", "--tagger", tagger)
    assert again.returncode == 0 and "Every image is described already" in again.stderr
    (folder / "sea.png").unlink()
    anew = cli("gallery", "describe", "--again", "--tagger", tagger)  # the default threshold: more tags
    assert anew.returncode == 1 and "not read: " in anew.stderr and "sea.png" in anew.stderr
    assert "1 image described" in anew.stderr
    assert json.loads(cli("gallery", "search", "long hair", "--json").stdout)[0]["id"] == found[0]["id"]


def test_describe_writes_captions_for_a_folder_of_pictures(tagger, tmp_path, app_home):
    """A folder of pictures (a LoRA's training set) gets a caption file beside each picture, as kohya's scripts
    read them; an existing caption is kept unless --overwrite, a damaged picture is named and the others are
    captioned (exit 1), and hidden folders are left out."""
    data = tmp_path / "dataset"
    (data / "more").mkdir(parents=True)
    (data / ".thumbnails").mkdir()
    Image.new("RGB", (40, 40), "red").save(data / "a.png")
    Image.new("RGB", (40, 40), "blue").save(data / "more" / "b.webp")
    Image.new("RGB", (40, 40), "blue").save(data / ".thumbnails" / "c.png")
    (data / "b.txt").write_text("my own caption", encoding="utf-8")
    Image.new("RGB", (40, 40), "blue").save(data / "b.jpg")
    run = cli("describe", data, "--captions", "--tagger", tagger, "--threshold", 0.6)
    assert run.returncode == 0, run.stderr
    assert "2 captions written; 1 existing kept" in run.stderr
    assert (data / "a.txt").read_text(encoding="utf-8") == "red background, cosplay \\(costume\\)\n"
    assert (data / "more" / "b.txt").read_text(encoding="utf-8") == "blue theme\n"
    assert (data / "b.txt").read_text(encoding="utf-8") == "my own caption"
    assert not (data / ".thumbnails" / "c.txt").exists()
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    again = cli("describe", data, "--captions", "--overwrite", "--caption-extension", "caption", "--tagger", tagger)
    assert again.returncode == 1 and "not read: " in again.stderr and "broken.png" in again.stderr
    assert (data / "b.caption").read_text(encoding="utf-8").startswith("blue theme")
    assert "3 captions written" in again.stderr
    assert (data / "b.txt").read_text(encoding="utf-8") == "my own caption"
    over = cli("describe", data, "--captions", "--caption-extension", ".png", "--tagger", tagger)
    assert over.returncode == 2 and "would write over pictures" in over.stderr
    lone = cli("describe", data, "--overwrite", "--tagger", tagger)
    assert lone.returncode == 2 and "it goes with --captions" in lone.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = cli("describe", empty, "--tagger", tagger)
    assert nothing.returncode == 2 and "No pictures in" in nothing.stderr

    # a LoRA's trigger word first in every caption, tags left out (as written in a prompt or in the tag list)
    trigger = cli("describe", data / "a.png", "--captions", "--overwrite", "--tagger", tagger, "--prepend",
                  "mychar, long hair", "--exclude", "Red Background, cosplay \\(costume\\)")
    assert trigger.returncode == 0, trigger.stderr
    assert (data / "a.txt").read_text(encoding="utf-8") == "mychar, long hair, ^_^\n"  # long hair once


def test_describe_leaves_out_the_tags_the_settings_name(tagger, tmp_path, app_home):
    from hypersd_desktop.core.settings import load_settings, save_settings

    save_settings(load_settings().replace(describe_exclude="^_^, long_hair"))
    Image.new("RGB", (80, 80), "red").save(tmp_path / "red.png")
    run = cli("describe", tmp_path / "red.png", "--tagger", tagger)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "red background, cosplay \\(costume\\)\n"
    run = cli("describe", tmp_path / "red.png", "--tagger", tagger, "--exclude", "red_background")  # its own list
    assert run.stdout == "cosplay \\(costume\\), ^_^, long hair\n"


def test_the_command_lines_bar_counts_the_steps_of_each_tile_face_and_hand(capsys):
    """A repaint in tiles, a face pass and a hand pass count their steps, each part named on the bar; only work done
    once before denoising (an ONNX export) is announced as taking a while."""
    from hypersd_desktop.cli.common import ProgressBar
    from hypersd_desktop.cli.generate import StageProgress

    bar = ProgressBar("generate", "step", enabled=False)
    show = StageProgress(bar)
    for stage in ("Repainting in tiles (2 of 4)", "Fixing the tiles' seams (1 of 2)", "Detailing faces (1 of 2)",
                  "Detailing hands (1 of 3)"):
        show(stage, 1, 2)
        assert (bar.title, bar.unit) == (stage.lower(), "step")
    assert capsys.readouterr().err == ""
    show("Exporting to ONNX", 1, 10)
    assert (bar.title, bar.unit) == ("export", "%") and "Exporting to ONNX; this takes a while once." in \
        capsys.readouterr().err


def test_a_request_whose_passes_have_their_own_pose_models_says_the_command_line_shares_one(tmp_path, app_home):
    from hypersd_desktop.cli.reuse import request_command
    from hypersd_desktop.engine.types import DetailPass, GenerationRequest

    faces, hands = DetailPass("/m/vitpose-base", "/m/rtdetr"), DetailPass("/m/vitpose-large", "/m/rtdetr", mask_blur=6)
    command, note = request_command(GenerationRequest(prompt="a crowd", base_model="/m/sd15", face_detail=faces,
                                                      hand_detail=hands))
    words = shlex.split(command)
    assert words[words.index("--pose-model") + 1] == "vitpose-base" and "--detail-hands" in words
    assert "the command line's hand pass blurs its masks 4 pixels, not 6" in note
    assert "the command line's face and hand passes share one pose model and person detector" in note
