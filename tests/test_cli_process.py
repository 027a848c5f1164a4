"""tests/cli_process.py: a run forked from the preloaded process gives what a fresh `python -m hypersd_desktop`
gives: output, errors, exit status, standard input, working folder and environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from cli_process import _zygote, run_cli

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="runs are forked where the system can fork")

A1111_TEXT = ("a lighthouse at dusk\nNegative prompt: blurry\nSteps: 4, Sampler: Euler a, CFG scale: 1, Seed: 7, "
              "Size: 64x64, Model: dreamshaper_8\n")


def fresh(*args, input=None, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hypersd_desktop", *map(str, args)], input=input,
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def same(forked: subprocess.CompletedProcess, interpreter: subprocess.CompletedProcess) -> None:
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        interpreter.returncode, interpreter.stdout, interpreter.stderr)


def test_runs_are_forked_from_the_preloaded_process_when_the_environment_allows():
    assert _zygote(dict(os.environ)) is not None
    assert _zygote({**os.environ, "PYTHONPATH": "/elsewhere"}) is None  # read at start: a fresh interpreter


@pytest.mark.parametrize("args", [("--version",), ("gallery", "list", "--json"), ("gallery", "show", "12"),
                                  ("nonsense",), ("generate",)], ids=lambda args: " ".join(args))
def test_a_forked_run_says_and_exits_as_a_fresh_interpreter(args):
    same(run_cli(*args), fresh(*args))


def test_standard_input_working_folder_and_environment_are_the_runs(tmp_path):
    same(run_cli("gallery", "reuse", "-", input=A1111_TEXT), fresh("gallery", "reuse", "-", input=A1111_TEXT))
    (tmp_path / "settings.txt").write_text(A1111_TEXT)
    forked = run_cli("gallery", "reuse", "settings.txt", cwd=tmp_path)
    assert forked.returncode == 0 and "--seed 7" in forked.stdout, forked.stderr
    same(forked, fresh("gallery", "reuse", "settings.txt", cwd=tmp_path))

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (8, 8)).save(pictures / "one.png")
    other_home = {**os.environ, "HYPERSD_HOME": str(tmp_path / "other")}
    assert run_cli("gallery", "import", pictures, env=other_home).returncode == 0
    assert len(json.loads(run_cli("gallery", "list", "--json", env=other_home).stdout)) == 1
    assert json.loads(run_cli("gallery", "list", "--json").stdout) == []  # this test's home, app_home
