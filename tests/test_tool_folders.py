"""The folders other tools keep, found where they put them (core/tool_folders.py)."""

from __future__ import annotations

from pathlib import Path

from hypersd_desktop.core import tool_folders
from hypersd_desktop.core.tool_folders import OUTPUT_PLACES, ToolFolder, candidates, find_tool_folders


def weights(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")


def test_each_tools_folder_with_weights_is_found_once(tmp_path, monkeypatch):
    home, drive = tmp_path / "home", tmp_path / "C"
    weights(home / "stable-diffusion-webui" / "models" / "Stable-diffusion" / "dreamshaper_8.safetensors")
    weights(home / "stable-diffusion-webui" / "models" / "Lora" / "style.safetensors")
    (home / "stable-diffusion-webui" / "models" / "Lora" / "old.ckpt").write_bytes(b"pickle")  # not used: not counted
    (home / "ComfyUI" / "models" / "checkpoints").mkdir(parents=True)  # installed, no model yet: not offered
    weights(drive / "ComfyUI_windows_portable" / "ComfyUI" / "models" / "loras" / "a.safetensors")
    weights(home / "invokeai" / "models" / "sd-1" / "main" / "x.safetensors")
    (home / "Documents").mkdir()
    (home / "Documents" / "ComfyUI").symlink_to(drive / "ComfyUI_windows_portable" / "ComfyUI")  # the same folder
    hub = tmp_path / "hf" / "hub"
    weights(hub / "models--ByteDance--Hyper-SD" / "snapshots" / "abc" / "Hyper-SD15-1step-lora.safetensors")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    places = candidates(home, drive)
    assert places[-1] == ("Hugging Face cache", hub)
    found = find_tool_folders(places, linked=[home / "invokeai"])
    assert [(folder.tool, folder.path, folder.files) for folder in found] == [
        ("AUTOMATIC1111", (home / "stable-diffusion-webui" / "models").resolve(), 2),
        ("ComfyUI Desktop", (drive / "ComfyUI_windows_portable" / "ComfyUI" / "models").resolve(), 1),
        ("Hugging Face cache", hub.resolve(), 1)]
    assert found[0].label == f"AUTOMATIC1111's models — {found[0].path} (2 files)"


def test_a_huge_folder_is_counted_only_so_far(tmp_path, monkeypatch):
    monkeypatch.setattr(tool_folders, "MAX_WALKED", 5)
    for index in range(8):
        weights(tmp_path / "ComfyUI" / "models" / "loras" / f"{index}.safetensors")
    (found,) = find_tool_folders([("ComfyUI", tmp_path / "ComfyUI" / "models")])
    assert found.more and found.files >= 4 and found.label.endswith(f"({found.files}+ files)")
    assert ToolFolder("ComfyUI", tmp_path, 1).label.endswith("(1 file)")


def test_the_output_folders_are_found_by_their_images(tmp_path):
    home = tmp_path / "home"
    for name in ("ComfyUI_00001_.png", "ComfyUI_00002_.png", "._ComfyUI_00001_.png"):
        (home / "ComfyUI" / "output").mkdir(parents=True, exist_ok=True)
        (home / "ComfyUI" / "output" / name).write_bytes(b"png")
    (home / "stable-diffusion-webui" / "outputs" / "txt2img-images").mkdir(parents=True)  # nothing made yet
    places = candidates(home, None, OUTPUT_PLACES)
    assert all(tool != "Hugging Face cache" for tool, _path in places)
    (found,) = find_tool_folders(places, suffixes=(".png", ".jpg"), holds=("images", "image"))
    assert found.label == f"ComfyUI's images — {(home / 'ComfyUI' / 'output').resolve()} (2 images)"
