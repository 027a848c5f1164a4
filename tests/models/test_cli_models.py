"""`hypersd-desktop models …` end to end, against the local hub server, as a user runs it."""

from __future__ import annotations

import json
import os

import pytest

from cli_process import run_cli
from hub_server import HubServer


def cli(*args, env_extra=None):
    return run_cli(*args, env={**os.environ, **(env_extra or {})})


@pytest.fixture
def hub_env(tmp_path, hyper_lora):
    with HubServer() as hub:
        hub.add("ByteDance/Hyper-SD", "Hyper-SD15-1step-lora.safetensors", hyper_lora("Hyper-SD15-1step-lora").read_bytes())
        yield hub, {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home")}


def test_catalog_json_lists_sizes_and_licences():
    run = cli("models", "catalog", "--json")
    assert run.returncode == 0, run.stderr
    rows = {row["id"]: row for row in json.loads(run.stdout)}
    assert rows["sdxl"]["licence"] == "openrail++" and rows["sdxl"]["size"] > 6e9
    assert rows["hyper-sd15-1step-lora"]["recipe"] == "Hyper-SD15-1step-lora"
    assert rows["hyper-sd15-1step-lora"]["installed"] is False


def test_download_then_list_then_generate_by_name(hub_env, tiny_sd15, tmp_path):
    hub, env = hub_env
    run = cli("models", "download", "hyper-sd15-1step-lora", "--yes", env_extra=env)
    assert run.returncode == 0, run.stderr
    size = hub.files[("ByteDance/Hyper-SD", "Hyper-SD15-1step-lora.safetensors")].data
    assert f"{len(size) / 1e3:.1f} kB in all" in run.stderr and "openrail++" in run.stderr  # the hub's size, up front
    assert "installed hyper-sd15-1step-lora" in run.stdout

    listing = json.loads(cli("models", "list", "--json").stdout)
    assert [(m["id"], m["source"], m["recipe"]) for m in listing] == [
        ("hyper-sd15-1step-lora", "download", "Hyper-SD15-1step-lora")]

    run = cli("generate", "--model", tiny_sd15, "--lora", "hyper-sd15-1step-lora", "--prompt", "a cat", "--steps", 2,
              "--width", 64, "--height", 64, "--out", tmp_path / "out", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["recipe"] == "Hyper-SD15-1step-lora"


def test_download_of_a_missing_file_is_one_clear_line(hub_env):
    hub, env = hub_env
    run = cli("models", "download", "hyper-sd15-2steps-lora", "--yes", env_extra=env)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("error: ") and "not found on the hub" in run.stderr


def test_import_verify_remove(tmp_path, hyper_lora):
    folder = tmp_path / "loras"
    folder.mkdir()
    (folder / "style.safetensors").write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes())
    (folder / "bad.pt").write_bytes(b"\x80\x02}q\x00.")
    run = cli("models", "import", folder, "--json")
    items = {item["path"].rsplit("/", 1)[-1]: item for item in json.loads(run.stdout)}
    assert items["style.safetensors"]["status"] == "imported" and items["bad.pt"]["status"] == "refused"
    assert cli("models", "verify").returncode == 0
    run = cli("models", "remove", "style")
    assert run.returncode == 0 and "left in place" in run.stdout
    assert (folder / "style.safetensors").exists()


def test_a_loras_trigger_words_are_listed_and_set(tmp_path, hyper_lora):
    lora = tmp_path / "pixel-art.safetensors"
    lora.write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes())
    lora.with_name("pixel-art.civitai.info").write_text(json.dumps({"trainedWords": ["pixel art, 8-bit"]}))
    assert cli("models", "import", lora).returncode == 0
    listed = cli("models", "list").stdout.splitlines()
    assert listed[listed.index(next(line for line in listed if line.startswith("pixel-art "))) + 1].split() == [
        "trigger", "words:", "pixel", "art,", "8-bit"]
    assert cli("models", "words", "pixel-art").stdout == "pixel-art: pixel art, 8-bit\n"
    run = cli("models", "words", "pixel-art", "sprite,  sprite, isometric", "--weight", "0.7")
    assert (run.returncode, run.stdout) == (0, "pixel-art: sprite, isometric; suggested weight 0.7\n")
    (model,) = [m for m in json.loads(cli("models", "list", "--json").stdout) if m["id"] == "pixel-art"]
    assert (model["trigger_words"], model["preferred_weight"]) == (["sprite", "isometric"], 0.7)
    assert cli("models", "words", "pixel-art", "", "--weight", "0").stdout == "pixel-art: no trigger words\n"
    import sqlite3

    from hypersd_desktop.core.paths import AppPaths

    with sqlite3.connect(AppPaths.default().data / "models.sqlite3") as db:  # as a registry from before the words
        db.execute("UPDATE models SET trigger_words = NULL")
    assert cli("models", "words", "pixel-art").stdout == "pixel-art: pixel art, 8-bit\n"  # read once, on the way


def test_the_map_models_are_listed_for_any_architecture(depth_model, pose_models):
    """Depth Anything, ViTPose and RT-DETR serve SD1.5 and SDXL alike: the listings say so rather than leaving the
    column empty. One import takes them all."""
    catalog = {line.split()[0]: line.split() for line in cli("models", "catalog").stdout.splitlines()}
    assert catalog["depth-anything-v2-small"][1:3] == ["depth", "any"]
    assert catalog["vitpose-base-simple"][1:3] == ["pose", "any"]
    assert catalog["rtdetr-r50vd-coco-o365"][1:3] == ["detector", "any"]
    assert catalog["controlnet-sd15-depth"][1:3] == ["controlnet", "sd15"]
    assert cli("models", "import", depth_model, *pose_models).returncode == 0
    listed = sorted(line.split()[:3] for line in cli("models", "list").stdout.splitlines())
    assert listed == [["depth-anything-v2-small-hf", "depth", "any"], ["rtdetr-r50vd-coco-o365", "detector", "any"],
                      ["vitpose-base-simple", "pose", "any"]]  # their ids


def test_a_file_is_downloaded_by_its_hugging_face_address(hub_env):
    """The address as copied from the file's page; a link to another site says what to do instead."""
    hub, env = hub_env
    data = hub.files[("ByteDance/Hyper-SD", "Hyper-SD15-1step-lora.safetensors")].data
    hub.add("someone/pixel-art", "pixel-art.safetensors", data)
    run = cli("models", "download", f"{hub.url}/someone/pixel-art/blob/main/pixel-art.safetensors", "--yes",
              env_extra=env)
    assert run.returncode == 0, run.stderr
    assert f"Downloading pixel-art: {len(data) / 1e3:.1f} kB in all" in run.stderr and "installed pixel-art-" in run.stdout
    listing = json.loads(cli("models", "list", "--json").stdout)
    assert [(m["name"], m["kind"], m["architecture"], m["source"]) for m in listing] == [
        ("pixel-art", "lora", "sd15", "download")]
    refused = cli("models", "download", "https://openmodeldb.info/models/4x-UltraSharp", "--yes", env_extra=env)
    assert refused.returncode == 2 and "is not a Hugging Face or Civitai address" in refused.stderr


def test_a_model_is_downloaded_by_its_civitai_address_with_the_api_key(tmp_path, hyper_lora):
    """The key from CIVITAI_TOKEN (or the app's settings); without it, one line saying where to get one."""
    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    with CivitaiServer() as civitai:
        civitai.add(CivitaiVersion(id=250000, model_id=120000, model_name="Pixel Art", name="v2",
                                   files=[CivitaiFile("pixel-art-v2.safetensors", data)]))
        env = {"CIVITAI_ENDPOINT": civitai.url, "CIVITAI_TOKEN": ""}
        refused = cli("models", "download", "urn:air:sd1:lora:civitai:120000@250000", "--yes", env_extra=env)
        assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1].startswith(
            "error: Civitai refused Pixel Art v2 (pixel-art-v2.safetensors) (401): it asks for your API key")
        run = cli("models", "download", f"{civitai.url}/models/120000/pixel-art", "--yes",
                  env_extra={**env, "CIVITAI_TOKEN": civitai.key})
    assert run.returncode == 0, run.stderr
    assert f"Downloading Pixel Art v2: {len(data) / 1e3:.1f} kB in all" in run.stderr and "installed pixel-art-" in run.stdout
    listing = json.loads(cli("models", "list", "--json").stdout)
    assert [(m["name"], m["kind"], m["architecture"], m["revision"]) for m in listing] == [
        ("Pixel Art v2", "lora", "sd15", "250000")]


def test_civitai_is_searched_from_the_command_line_and_a_result_downloaded_by_its_address(tmp_path, hyper_lora):
    from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    with CivitaiServer() as civitai:
        for n, base in enumerate(("SD 1.5", "SDXL 1.0", "Flux.1 D")):
            civitai.add(CivitaiVersion(id=10 + n, model_id=n + 1, model_name=f"Pixel Art {base}", name="v1",
                                       base_model=base, files=[CivitaiFile(f"pixel-{n}.safetensors", data)]))
        env = {"CIVITAI_ENDPOINT": civitai.url, "CIVITAI_TOKEN": civitai.key}
        run = cli("models", "search", "pixel", "art", "--for", "sd15", "--sort", "downloads", env_extra=env)
        assert "sort=Most+Downloaded" in civitai.search_requests[-1]
        assert run.returncode == 0, run.stderr
        (line,) = run.stdout.splitlines()
        assert line.startswith("Pixel Art SD 1.5") and line.endswith(
            "https://civitai.com/models/1/pixel-art-sd-1-5?modelVersionId=10")
        civitai.add(CivitaiVersion(id=5, model_id=1, model_name="Pixel Art SD 1.5", name="v0", base_model="SD 1.5",
                                   files=[CivitaiFile("pixel-old.safetensors", data)]))
        listed = json.loads(cli("models", "search", "pixel", "--json", env_extra=env).stdout)
        assert [(m["name"], m["architecture"]) for m in listed] == [("Pixel Art SDXL 1.0", "sdxl"),
                                                                    ("Pixel Art SD 1.5", "sd15")]
        assert [(old["version"], old["address"]) for old in listed[1]["older"]] == [
            ("v0", "https://civitai.com/models/1/pixel-art-sd-1-5?modelVersionId=5")]
        none = cli("models", "search", "watercolour", env_extra=env)
        assert none.returncode == 1 and "Nothing on Civitai" in none.stderr
        got = cli("models", "download", line.split()[-1], "--yes", env_extra=env)
    assert got.returncode == 0, got.stderr
    assert "Downloading Pixel Art SD 1.5 v1:" in got.stderr


def test_a_models_folder_imported_in_place_is_linked_and_synced(app_home, tmp_path, hyper_lora):
    """`models import FOLDER` links it (said on stderr), `models sync` installs a LoRA saved there since and leaves
    out one removed, `models folders` lists and `--stop` unlinks."""
    folder = tmp_path / "ComfyUI" / "models" / "loras"
    folder.mkdir(parents=True)
    (folder / "first.safetensors").write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes())
    imported = cli("models", "import", folder)
    assert imported.returncode == 0 and f"{folder.resolve()} is linked" in imported.stderr
    assert cli("models", "folders").stdout.strip() == str(folder.resolve())
    (folder / "second.safetensors").write_bytes(hyper_lora("Hyper-SD15-4steps-lora").read_bytes())
    synced = cli("models", "sync")
    assert synced.returncode == 0 and "1 new model in 1 linked folder(s)" in synced.stderr
    assert "installed second" in synced.stdout and "second.safetensors" in synced.stdout
    assert cli("models", "remove", "first").returncode == 0
    again = cli("models", "sync")
    assert "0 new models" in again.stderr and "first" not in cli("models", "list").stdout
    stopped = cli("models", "folders", "--stop", folder)
    assert stopped.returncode == 0 and "no longer looking through" in stopped.stderr
    assert "No linked folder" in cli("models", "folders").stderr
    assert cli("models", "folders", "--stop", folder).returncode == 1


def test_models_folders_find_lists_other_tools_folders_not_linked_yet(app_home, tmp_path, hyper_lora):
    home = tmp_path / "someone"
    loras = home / "stable-diffusion-webui" / "models" / "Lora"
    loras.mkdir(parents=True)
    (loras / "style.safetensors").write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes())
    env = {"HOME": str(home), "USERPROFILE": str(home), "HF_HUB_CACHE": str(tmp_path / "none")}
    found = cli("models", "folders", "--find", env_extra=env)
    models = (home / "stable-diffusion-webui" / "models").resolve()
    assert found.stdout.splitlines() == [f"{models}\tAUTOMATIC1111\t1 .safetensors file"]
    assert cli("models", "import", models, env_extra=env).returncode == 0
    again = cli("models", "folders", "--find", env_extra=env)
    assert again.stdout == "" and "No other tool's models folder was found" in again.stderr
