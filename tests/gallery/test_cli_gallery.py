"""`hypersd-desktop gallery …` as a user runs it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from cli_process import run_cli


def cli(*args, input=None):
    return run_cli(*args, input=input)


def test_generate_lands_in_the_gallery_and_reuse_reproduces_it(tiny_sd15, hyper_lora, tmp_path):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    made = cli("generate", "--model", tiny_sd15, "--prompt", "an old lighthouse", "--lora", f"{lora}:0.7", "--steps", 3,
               "--eta", 0.6, "--width", 64, "--height", 64, "--seed", 21, "--clip-skip", 2, "--json")
    original = json.loads(made.stdout)["path"]
    with Image.open(original) as image:
        assert ", Clip skip: 2," in image.info["parameters"]  # as A1111 writes it
    listing = json.loads(cli("gallery", "search", "lighthouse", "--json").stdout)
    assert [(r["path"], r["seed"], r["steps"]) for r in listing] == [(original, 21, 3)]

    command = cli("gallery", "reuse", listing[0]["id"]).stdout.strip()
    words = shlex.split(command)
    assert words[:2] == ["hypersd-desktop", "generate"] and words[words.index("--clip-skip") + 1] == "2"
    again = cli(*words[1:], "--out", tmp_path, "--json")
    assert again.returncode == 0, again.stderr
    with Image.open(original) as a, Image.open(json.loads(again.stdout)["path"]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_generate_applies_an_installed_lora_its_prompts_tag_names(tiny_sd15, hyper_lora, tmp_path):
    """`<lora:NAME:WEIGHT>` in --prompt applies the installed LoRA of that file name, as A1111 applies it: the image
    says so in its parameters, and is the one --lora makes."""
    import shutil

    style = tmp_path / "watercolour_wash.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), style)
    assert cli("models", "import", style).returncode == 0
    common = ["--model", tiny_sd15, "--lora", hyper_lora("Hyper-SD15-1step-lora"), "--width", 64, "--height", 64,
              "--seed", 5, "--json", "--out", tmp_path / "out"]
    tagged = cli("generate", "--prompt", "a harbour <lora:watercolour_wash:0.5>", *common)
    listed = cli("generate", "--prompt", "a harbour", "--lora", f"{style}:0.5", *common)
    assert tagged.returncode == 0 and listed.returncode == 0, tagged.stderr + listed.stderr
    with Image.open(json.loads(tagged.stdout)["path"]) as a, Image.open(json.loads(listed.stdout)["path"]) as b:
        assert "watercolour_wash" in a.info["parameters"] and "Lora hashes" in a.info["parameters"]
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert "applies no LoRA" not in tagged.stderr


def test_reuse_of_an_image_made_from_pictures_names_them_and_reproduces_it(tiny_sd15, hyper_lora, tmp_path):
    """The init image, mask and control image are kept in the app's input store; the command names those files."""
    import tiny_models
    from hypersd_desktop.core.paths import AppPaths

    init, mask, drawing = tmp_path / "init.png", tmp_path / "mask.png", tmp_path / "drawing.png"
    Image.new("RGB", (64, 64), (40, 120, 200)).save(init)
    mask_pixels = np.zeros((64, 64), np.uint8)
    mask_pixels[16:48, 8:40] = 255
    Image.fromarray(mask_pixels).save(mask)
    Image.new("RGB", (64, 64), "white").save(drawing)
    controlnet = tiny_models.save_controlnet(tiny_sd15, tmp_path / "controlnet")
    made = cli("generate", "--model", tiny_sd15, "--prompt", "a red fox", "--lora", hyper_lora("Hyper-SD15-1step-lora"),
               "--steps", 4, "--init-image", init, "--strength", 0.5, "--mask", mask, "--mask-blur", 2, "--control",
               f"{controlnet}:{drawing}:0.7", "--preprocess", "scribble", "--seed", 3, "--backend", "torch", "--json")
    assert made.returncode == 0, made.stderr
    original = json.loads(made.stdout)["path"]
    (record,) = json.loads(cli("gallery", "list", "--json").stdout)
    reuse = cli("gallery", "reuse", record["id"])
    assert reuse.returncode == 0 and not reuse.stderr, reuse.stderr  # all of it repeated: no note
    words = shlex.split(reuse.stdout.strip())
    inputs = AppPaths.default().inputs
    assert words[words.index("--strength") + 1] == "0.5" and words[words.index("--mask-blur") + 1] == "2"
    assert words[words.index("--preprocess") + 1] == "scribble"
    control = words[words.index("--control") + 1]
    assert control.startswith(f"{controlnet}:{inputs}") and control.endswith(":0.7")
    again = cli(*words[1:], "--out", tmp_path / "again", "--json")
    assert again.returncode == 0, again.stderr
    with Image.open(original) as a, Image.open(json.loads(again.stdout)["path"]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))

    for kept in inputs.iterdir():  # the store emptied: the command says what it cannot repeat
        kept.unlink()
    gone = cli("gallery", "reuse", record["id"])
    assert "cannot repeat all of the request: its init image" in gone.stderr and "control image" in gone.stderr


def test_import_export_delete_undo(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    assert "added 3" in cli("gallery", "import", folder).stdout
    (folder / "page.png").write_text("<html>a web page saved as .png</html>")
    again = cli("gallery", "import", folder)  # the summary counts what was skipped, whatever the reason
    assert again.stdout.strip() == "added 0, already in the gallery 3, skipped 1" and again.returncode == 1
    assert "skipped " in again.stderr and "page.png: not a readable image" in again.stderr
    (folder / "page.png").unlink()
    run = cli("gallery", "export", "--to", tmp_path / "out", "--template", "{index}", "--format", "webp")
    assert run.returncode == 0 and sorted(p.name for p in (tmp_path / "out").glob("*.webp")) == ["1.webp", "2.webp", "3.webp"]
    ids = [r["id"] for r in json.loads(cli("gallery", "list", "--json").stdout)]
    assert "gallery undo" in cli("gallery", "delete", ids[0]).stdout
    assert len(json.loads(cli("gallery", "list", "--json").stdout)) == 2
    cli("gallery", "undo", ids[0])
    assert len(json.loads(cli("gallery", "list", "--json").stdout)) == 3
    run = cli("gallery", "export", "--to", tmp_path / "bad", "--template", "../{seed}")
    assert run.returncode == 2 and "leave the export folder" in run.stderr


def test_reuse_of_an_image_made_elsewhere_repeats_what_its_file_says(tmp_path):
    """An A1111 image's clip skip, VAE and variation seed are not in the gallery's row: `gallery reuse` reads them
    from the file."""
    from pathlib import Path

    from PIL.PngImagePlugin import PngInfo

    folder = tmp_path / "from-a1111"
    folder.mkdir()
    info = PngInfo()
    info.add_text("parameters", "a paper lantern\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, "
                                "CFG scale: 7, Seed: 77, Size: 512x768, Model: anything-v5, Clip skip: 2, "
                                "VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, "
                                "Variation seed: 4021, Variation seed strength: 0.15, "
                                "Hires upscale: 2, Hires upscaler: Latent, Hires CFG Scale: 5, "
                                "ADetailer model: face_yolov8n.pt, ADetailer use separate steps: True, "
                                "ADetailer steps: 12, ADetailer use inpaint width height: True, ADetailer inpaint "
                                "width: 768, ADetailer inpaint height: 768")
    Image.new("RGB", (8, 8)).save(folder / "lantern.png", pnginfo=info)
    assert "added 1" in cli("gallery", "import", folder).stdout
    (record,) = json.loads(cli("gallery", "list", "--json").stdout)
    run = cli("gallery", "reuse", record["id"])
    words = shlex.split(run.stdout.strip())
    assert words[words.index("--model") + 1] == "anything-v5" and words[words.index("--seed") + 1] == "77"
    assert words[words.index("--clip-skip") + 1] == "2" and words[words.index("--negative") + 1] == "blurry"
    assert (words[words.index("--variation-seed") + 1], words[words.index("--variation-strength") + 1]) == (
        "4021", "0.15")  # A1111's variation seed: reuse varies the seed's image by it
    assert "variation" not in run.stderr  # taken, so not among what reuse does not repeat
    assert words[words.index("--vae") + 1] == "vae-ft-mse-840000-ema-pruned"  # the installed VAE of that file name
    assert "not made here" in run.stderr
    assert "made at 512 × 768 and then enlarged to 1024 × 1536 by a Hires fix pass (Latent)" in run.stderr
    assert words[words.index("--hires") + 1] == "2" and words[words.index("--hires-strength") + 1] == "0.7"
    assert words[words.index("--hires-steps") + 1] == "20"  # A1111 runs all of the first pass's steps again
    assert words[words.index("--hires-cfg") + 1] == "5"  # Forge's second pass's own guidance (the first's: 7)
    assert "reuse runs the Hires fix at ×2, strength 0.7 (A1111’s default: the image does not say)" in run.stderr
    assert words[words.index("--detail-faces") + 1] == "0.4"  # ADetailer's face pass, at its default strength
    assert (words[words.index("--face-steps") + 1], words[words.index("--face-size") + 1]) == ("12", "768x768")
    assert "made again by ADetailer (face_yolov8n.pt, strength 0.4); reuse does that with Detail faces" in run.stderr
    assert "reuse does not repeat" not in run.stderr
    Path(record["path"]).unlink()  # the file is gone: what the row holds is repeated
    assert "--clip-skip" not in cli("gallery", "reuse", record["id"]).stdout


def test_reuse_of_a_novelai_image_writes_its_weights_in_a1111s_syntax(tmp_path):
    """The corpus's NovelAI V4 image weighs "feet" -0.8 with its own syntax; the command says it as A1111 does."""
    import shutil
    from pathlib import Path

    folder = tmp_path / "from-novelai"
    folder.mkdir()
    corpus = Path(__file__).parent / "corpus" / "sd-metadata" / "webp" / "novelai-curated.webp"
    shutil.copy(corpus, folder)
    assert "added 1" in cli("gallery", "import", folder).stdout
    (record,) = json.loads(cli("gallery", "list", "--json").stdout)
    assert "-0.8::feet::" in record["prompt"]  # the gallery keeps it as written
    run = cli("gallery", "reuse", record["id"])
    words = shlex.split(run.stdout.strip())
    prompt = words[words.index("--prompt") + 1]
    assert "(feet:-0.8)" in prompt and "::" not in prompt
    assert "NovelAI weighting is written in A1111's syntax" in run.stderr


def test_search_and_show_read_a_novelai_images_character_prompts(tmp_path):
    """`gallery search` finds the corpus's three-character NovelAI image by a character's words; `gallery show`
    prints the fields its file holds beyond the gallery's row, as NovelAI wrote them."""
    import shutil
    from pathlib import Path

    folder = tmp_path / "from-novelai"
    folder.mkdir()
    shutil.copy(Path(__file__).parent / "corpus" / "sd-metadata" / "png" / "novelai-full-3char.png", folder)
    shutil.copy(Path(__file__).parent / "corpus" / "sd-metadata" / "png" / "novelai-full.png", folder)
    assert "added 2" in cli("gallery", "import", folder).stdout
    found = json.loads(cli("gallery", "search", "kagamine len", "--json").stdout)
    assert [Path(image["path"]).name for image in found] == ["novelai-full-3char.png"]
    shown = cli("gallery", "show", found[0]["id"]).stdout
    assert ("other fields (as the image's tool wrote them):\n  Character prompts: girl, hatsune miku, spread arms\n"
            "                     girl, kagamine rin, hand up\n") in shown
    assert "other_prompts" not in shown  # said once, under the field's own name
    record = json.loads(cli("gallery", "show", found[0]["id"], "--json").stdout)
    assert record["file_fields"]["Character prompts"].splitlines()[2] == "boy, kagamine len, hand up"
    assert record["other_prompts"].splitlines()[2] == "boy, kagamine len, hand up"


def test_reuse_of_a_midjourney_image_leaves_the_model_to_be_named(tmp_path):
    """A Midjourney image is found by its prompt; reuse cannot name a model for it (Midjourney's run only there):
    the command says MODEL and the note says why, and which of its parameters are not repeated."""
    from tool_layouts import midjourney_png

    folder = tmp_path / "from-midjourney"
    folder.mkdir()
    midjourney_png(folder / "lumen_artist_a_lighthouse_5e0b2f7c_0.png")
    assert "added 1" in cli("gallery", "import", folder).stdout
    (record,) = json.loads(cli("gallery", "search", "lighthouse storm", "--json").stdout)
    assert (record["model_name"], record["metadata_format"]) == ("Midjourney v6.1", "midjourney")
    run = cli("gallery", "reuse", record["id"])
    words = shlex.split(run.stdout.strip())
    assert words[words.index("--model") + 1] == "MODEL" and words[words.index("--negative") + 1] == "boats, people"
    assert words[words.index("--seed") + 1] == "4242"
    assert ("runs only on Midjourney's own service: name a model installed here in place of MODEL; its other "
            "parameters (--ar 3:2 --stylize 250 --v 6.1) are not repeated.") in run.stderr


def test_reuse_of_copied_generation_data_names_the_installed_models_it_matches(installed, tiny_sd15, hyper_lora,
                                                                             tmp_path):
    """A1111's text of an image made elsewhere, as a .txt file or piped in: the LoRA it names by its hash is
    installed here under another name and applied with --lora (its tag taken out of the prompt); made without
    Hyper-SD, it runs the installed recipe's steps and guidance; a LoRA not installed keeps its tag and is named in
    the note. The command makes the image."""
    from pathlib import Path

    import torch
    from diffusers import UNet2DConditionModel

    import tiny_models

    with torch.no_grad():
        unet = UNet2DConditionModel.from_pretrained(tiny_sd15, subfolder="unet")
    style = tiny_models.kohya_lora(unet, tmp_path / "watercolour_wash.safetensors", seed=7)
    assert cli("models", "import", style).returncode == 0
    models = {Path(m["path"]).stem: m for m in json.loads(cli("models", "list", "--json").stdout)}
    lora_hash = models["watercolour_wash"]["lora_hash"][:12]
    text = (f"a harbour at dawn <lora:ink_style:0.6> <lora:gone_style:0.4>\nNegative prompt: fog\nSteps: 20, "
            f"Sampler: DPM++ 2M, CFG scale: 7, Seed: 12, Size: 64x64, Model: {Path(tiny_sd15).name}, "
            f'Lora hashes: "ink_style: {lora_hash}", Version: v1.10.1')
    (tmp_path / "harbour.txt").write_text(text, encoding="utf-8")
    run = cli("gallery", "reuse", tmp_path / "harbour.txt")
    assert run.returncode == 0, run.stderr
    words = shlex.split(run.stdout.strip())
    options = [(words[i], words[i + 1]) for i in range(2, len(words), 2)]
    assert options == [("--model", models[Path(tiny_sd15).name]["path"]),
                       ("--prompt", "a harbour at dawn <lora:gone_style:0.4>"), ("--negative", "fog"),
                       ("--lora", models["Hyper-SD15-1step-lora"]["path"]),
                       ("--lora", f"{models['watercolour_wash']['path']}:0.6"),
                       ("--steps", "1"), ("--guidance", "0"), ("--seed", "12"), ("--width", "64"), ("--height", "64")]
    assert "made without Hyper-SD (the DPM++ 2M sampler, 20 steps, guidance 7)" in run.stderr
    assert "Not installed here: the LoRA gone_style." in run.stderr
    piped = cli("gallery", "reuse", "-", input=text)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, run.stdout, run.stderr)

    made = cli(*words[1:], "--out", tmp_path / "again.png")
    assert made.returncode == 0, made.stderr
    with Image.open(tmp_path / "again.png") as image:
        assert "watercolour_wash" in image.info["parameters"] and "Steps: 1," in image.info["parameters"]


def test_reuse_reads_an_image_file_or_a_workflow_without_importing_it(tmp_path):
    """Any image with parameters, or a ComfyUI workflow saved as .json, gives a command; nothing is added to the
    gallery. A file without settings, or a name that is neither an id nor a file, says what to give instead."""
    from pathlib import Path

    corpus = Path(__file__).parent / "corpus"
    run = cli("gallery", "reuse", corpus / "sd-parsers" / "automatic1111_cropped.png")
    words = shlex.split(run.stdout.strip())
    assert words[words.index("--prompt") + 1] == "photo of a duck" and words[words.index("--seed") + 1] == "235284042"
    assert "by-hash/c0d1994c73` fetches it from Civitai" in run.stderr  # its model, by the hash the image gives
    assert json.loads(cli("gallery", "list", "--json").stdout) == []

    with Image.open(corpus / "sd-metadata" / "png" / "comfyui.png") as image:
        (tmp_path / "workflow.json").write_text(image.info["workflow"], encoding="utf-8")
    run = cli("gallery", "reuse", tmp_path / "workflow.json")
    words = shlex.split(run.stdout.strip())
    assert run.returncode == 0 and words[words.index("--model") + 1] == "waiIllustriousSDXL_v160"
    assert words[words.index("--seed") + 1] == "422847914351919"
    assert "hatsune miku" in words[words.index("--prompt") + 1]

    (tmp_path / "notes.txt").write_text("a red fox, Steps: 20", encoding="utf-8")
    for given, said in ((tmp_path / "notes.txt", "notes.txt holds no generation settings to repeat"),
                        (corpus / "sd-metadata" / "png" / "empty.png", "empty.png holds no generation settings"),
                        (tmp_path / "nowhere.png", "is neither an image id of the gallery")):
        run = cli("gallery", "reuse", given)
        assert (run.returncode, run.stdout) == (2, "") and said in run.stderr, run.stderr


def test_reuse_after_the_models_moved_names_them_by_file_name_and_reproduces_the_image(tiny_sd15, hyper_lora,
                                                                                       tmp_path):
    import shutil

    first, moved = tmp_path / "models" / "tiny-sd15", tmp_path / "new-disk" / "tiny-sd15"
    shutil.copytree(tiny_sd15, first)
    lora = shutil.copy(hyper_lora("Hyper-SD15-1step-lora"), tmp_path / "models")
    assert cli("models", "import", first).returncode == 0 and cli("models", "import", lora).returncode == 0
    made = cli("generate", "--model", "tiny-sd15", "--prompt", "a moved harbour", "--lora", lora, "--steps", 2,
               "--width", 64, "--height", 64, "--seed", 8, "--json")
    assert made.returncode == 0, made.stderr
    original = json.loads(made.stdout)["path"]
    shutil.move(str(tmp_path / "models"), str(tmp_path / "new-disk"))  # the whole models folder, to another disk
    assert cli("models", "import", moved).returncode == 0
    assert cli("models", "import", tmp_path / "new-disk" / "Hyper-SD15-1step-lora.safetensors").returncode == 0

    listing = json.loads(cli("gallery", "search", "harbour", "--json").stdout)
    reuse = cli("gallery", "reuse", listing[0]["id"])
    words = shlex.split(reuse.stdout.strip())
    assert words[words.index("--model") + 1] == "tiny-sd15"
    assert words[words.index("--lora") + 1] == "Hyper-SD15-1step-lora:1"
    assert "names them by file name, as installed here (tiny-sd15, Hyper-SD15-1step-lora)" in reuse.stderr
    again = cli(*words[1:], "--out", tmp_path / "again", "--json")
    assert again.returncode == 0, again.stderr
    with Image.open(original) as a, Image.open(json.loads(again.stdout)["path"]) as b:
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_prompts_and_paths_in_any_script_print_where_output_goes_to_a_file_on_windows(tmp_path):
    """On Windows, output sent to a file or a pipe is in the ANSI code page (cp1252): printing 猫 raised
    UnicodeEncodeError. PYTHONIOENCODING=cp1252 gives this process the same streams; the output is UTF-8."""
    import os

    from PIL.PngImagePlugin import PngInfo

    folder = tmp_path / "写真"
    folder.mkdir()
    info = PngInfo()
    info.add_itxt("parameters", "一只猫坐在窗台上, café\nNegative prompt: 低品質\nSteps: 4, Sampler: Euler a, "
                                "CFG scale: 1, Seed: 5, Size: 8x8, Model: ユーザー")
    Image.new("RGB", (8, 8)).save(folder / "猫.png", pnginfo=info)

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "hypersd_desktop", *map(str, args)], capture_output=True,
                              timeout=300, env={**os.environ, "PYTHONIOENCODING": "cp1252"})
        return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")

    assert run("gallery", "import", folder)[0] == 0
    status, out, err = run("gallery", "search", "猫", "--json")
    assert status == 0, err
    (found,) = json.loads(out)
    assert found["prompt"] == "一只猫坐在窗台上, café" and found["path"].endswith("写真/猫.png".replace("/", os.sep))
    status, out, err = run("gallery", "search", "猫")
    assert status == 0 and "一只猫坐在窗台上" in out and "ユーザー" in out, err
    status, out, err = run("gallery", "show", found["id"])
    assert status == 0 and "猫.png" in out and "低品質" in out, err
    status, _, err = run("gallery", "list", "--model", "ユーザー", "--steps", "四")  # argparse says it back
    assert status == 2 and "'四'" in err


def test_reuse_of_an_a1111_grids_text_gives_the_plot_again(tmp_path):
    """An X/Y/Z plot's grid text (A1111 writes the plot's axes into it): the command makes the plot again."""
    text = tmp_path / "grid.txt"
    text.write_text("1girl, sitting, outdoors\nSteps: 4, Sampler: Euler a, CFG scale: 1, Seed: 1, Size: 512x512, "
                    'Script: X/Y/Z plot, X Type: Prompt S/R, X Values: "sitting, standing", Y Type: Steps, Y Values: '
                    '"1, 2"', encoding="utf-8")
    words = shlex.split(cli("gallery", "reuse", text).stdout.strip())
    assert words[words.index("--x-axis") + 1] == "prompt:sitting, standing"
    assert words[words.index("--y-axis") + 1] == "steps:1, 2"


def test_gallery_watch_adds_lists_syncs_and_stops_watched_folders(app_home, tmp_path):
    """`gallery watch FOLDER` watches and imports it, `gallery watch` lists, `--sync` does what the window's looks
    do (a new image imported, a deleted one dropped), `--stop` ends it; the app's own folders are refused."""
    from PIL.PngImagePlugin import PngInfo

    def saved(path, prompt, age=0):
        path.parent.mkdir(parents=True, exist_ok=True)
        info = PngInfo()
        info.add_text("parameters", f"{prompt}\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 16x16")
        Image.new("RGB", (16, 16), "navy").save(path, pnginfo=info)
        if age:
            os.utime(path, (time.time() - age, time.time() - age))

    output = tmp_path / "ComfyUI" / "output"
    saved(output / "ComfyUI_00001_.png", "a harbour at night")
    found = run_cli("gallery", "watch", "--find", env={**os.environ, "HOME": str(tmp_path)})
    assert found.stdout.splitlines() == [f"{output.resolve()}\tComfyUI\t1 image"]
    none = cli("gallery", "watch")
    assert none.returncode == 0 and "No folder is watched" in none.stderr
    own = cli("gallery", "watch", app_home / "data" / "images")
    assert own.returncode == 1 and "the app's own images folder" in own.stderr
    added = cli("gallery", "watch", output)
    assert added.returncode == 0, added.stderr
    assert f"watching {output.resolve()}" in added.stderr and "added 1" in added.stdout
    assert cli("gallery", "watch").stdout.strip() == f"{output.resolve()}  (1 image)"
    saved(output / "2026-12-07" / "ComfyUI_00002_.png", "a lighthouse in fog", age=120)
    (output / "ComfyUI_00001_.png").unlink()
    synced = cli("gallery", "watch", "--sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip() == "added 1, moved 0, dropped 1 (deleted there), skipped 0"
    assert "lighthouse" in cli("gallery", "search", "lighthouse").stdout
    assert "No images match" in cli("gallery", "search", "harbour").stdout
    stopped = cli("gallery", "watch", "--stop", output)
    assert stopped.returncode == 0 and "no longer watching" in stopped.stderr
    assert "No folder is watched" in cli("gallery", "watch").stderr
    assert cli("gallery", "watch", "--stop", output).returncode == 1
