"""The command line's boundary: bad numbers are one error line with status 2, data cannot drive
the terminal, and an unexpected exception is one line naming the log that holds its traceback."""

from __future__ import annotations

import json
import subprocess

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from cli_process import run_cli
from hypersd_desktop import cli
from hypersd_desktop.core.paths import AppPaths


def run(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=120)


@pytest.mark.parametrize("args, complaint", [
    (("gallery", "show", "99999999999999999999"), "argument id: 99999999999999999999 is out of range"),
    (("gallery", "list", "--limit", "-1"), "argument --limit: -1 is out of range (1 to 1,000,000)"),
    (("gallery", "export", "--ids", "abc", "--to", "out"), "argument --ids: 'abc' is not a whole number"),
    (("gallery", "export", "--quality", "0", "--to", "out"), "argument --quality: 0 is out of range (1 to 100)"),
])
def test_bad_numbers_are_one_error_line(app_home, args, complaint):
    result = run(*args)
    assert result.returncode == 2 and complaint in result.stderr and "Traceback" not in result.stderr


def test_control_characters_from_metadata_do_not_reach_the_terminal(app_home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    info = PngInfo()
    info.add_text("parameters", "a fox \x1b]0;owned\x07\x1b[2J\x9b31m\u202egnp.exe\nSteps: 4, Seed: 1")
    Image.new("RGB", (8, 8)).save(folder / "evil.png", pnginfo=info)
    assert run("gallery", "import", str(folder)).returncode == 0
    for args in (("gallery", "list"), ("gallery", "show", "1"), ("gallery", "reuse", "1")):
        result = run(*args)
        assert result.returncode == 0 and "\\u001b]0;owned\\u0007" in result.stdout, result.stdout
        assert not any(c in result.stdout for c in "\x1b\x07\x9b\u202e")
    shown = run("gallery", "show", "1", "--json")
    assert json.loads(shown.stdout)["prompt"] == "a fox \x1b]0;owned\x07\x1b[2J\x9b31m\u202egnp.exe"  # JSON keeps the data
    assert "\x9b" not in shown.stdout and "\u202e" not in shown.stdout


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_the_log(app_home, monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli.inspect, "run", broken)
    assert cli.main(["inspect", "whatever.safetensors"]) == 1
    err = capsys.readouterr().err
    log = AppPaths.default().data / "cli.log"
    assert err.strip().splitlines() == [f"error: unexpected RuntimeError: a bug. This is a bug in HyperSD Desktop; the "
                                        f"details are in {log}."]
    assert "Traceback" in log.read_text() and "RuntimeError: a bug" in log.read_text()


def test_an_export_with_failures_says_so_and_exits_non_zero(app_home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 8)).save(folder / f"{name}.png")
    assert run("gallery", "import", str(folder)).returncode == 0
    (folder / "b.png").unlink()  # gone from the disk since the import
    result = run("gallery", "export", "--to", str(tmp_path / "out"), "--template", "{id}")
    assert result.returncode == 1
    assert f"failed {folder / 'b.png'}: No such file or directory" in result.stderr
    assert "exported 1 images" in result.stdout and "1 failed" in result.stdout


@pytest.mark.parametrize("stored, reason", [
    ('{"prompt": "a fox", "loras": [{"path": "/l/a.safetensors", "weight": "heavy"}]}', "request.base_model is missing"),
    ('{"prompt": "a fox", "base_model": "/m", "loras": [{"path": "/l/a.safetensors", "weight": "heavy"}]}',
     "request.loras[0].weight should be a number, not text"),
    ('{"prompt": "a fox", "base_model": ', "it is not JSON"),
])
def test_reuse_of_a_damaged_stored_request_falls_back_to_the_gallery_fields(app_home, stored, reason):
    from hypersd_desktop.gallery.store import GalleryStore, ImageRecord

    store = GalleryStore(AppPaths.default().ensure().data / "gallery.sqlite3")
    store.add(ImageRecord(path="/images/fox.png", created=0.0, source="generated", prompt="a fox", seed=9, steps=2,
                          model_name="sd15", request=stored))
    store.close()
    result = run("gallery", "reuse", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hypersd-desktop generate --model sd15 --prompt 'a fox' --steps 2 --seed 9"
    assert reason in result.stderr and "the command repeats the settings the gallery shows" in result.stderr
