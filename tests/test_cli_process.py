"""tests/cli_process.py: a run forked from the preloaded process gives what a fresh `python -m hypersd_desktop`
gives: output, errors, exit status, standard input, working folder and environment; so does a worker program
started through tests/worker_shim.py, which also ends when the shim is killed."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from cli_process import FORKS, SHIM, _zygote, differences, run_cli, worker_command

pytestmark = pytest.mark.skipif(not FORKS, reason="runs are forked on Linux only")

A1111_TEXT = ("a lighthouse at dusk\nNegative prompt: blurry\nSteps: 4, Sampler: Euler a, CFG scale: 1, Seed: 7, "
              "Size: 64x64, Model: dreamshaper_8\n")


def fresh(*args, input=None, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hypersd_desktop", *map(str, args)], input=input,
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def same(forked: subprocess.CompletedProcess, interpreter: subprocess.CompletedProcess) -> None:
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        interpreter.returncode, interpreter.stdout, interpreter.stderr)


def test_runs_are_forked_from_the_preloaded_process_when_the_environment_allows():
    assert not differences(dict(os.environ)) and _zygote(dict(os.environ)) is not None
    assert _zygote({**os.environ, "PYTHONPATH": "/elsewhere"}) is not None  # put on the run's path
    assert _zygote({**os.environ, "CUDA_VISIBLE_DEVICES": ""}) is None  # read by torch at its import
    assert _zygote({**os.environ, "HYPERSD_BACKENDS": "fake_backend:BACKEND"}) is None  # the fake reports torch


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


PROBE = """
import json, os, sys
line = sys.stdin.readline()
print(json.dumps({"argv": sys.argv, "path": sys.path[:2], "cwd": os.getcwd(), "said": line,
                  "probe": os.environ.get("PROBE"), "main": __name__}), flush=True)
print("to stderr", file=sys.stderr)
sys.exit(3)
"""


def shim_and_fresh(module: str, folder, input: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(folder), "PROBE": "yes"}
    command = worker_command()
    assert command is not None and command[:2] == [sys.executable, str(SHIM)]
    shim = [*command[:-1], module]
    return tuple(subprocess.run(line, input=input, capture_output=True, text=True, cwd=folder, env=env, timeout=60)
                 for line in (shim, [sys.executable, "-m", module]))


def test_a_program_through_the_shim_has_its_streams_path_folder_environment_and_exit_status(tmp_path):
    (tmp_path / "probe_program.py").write_text(PROBE)
    shimmed, interpreter = shim_and_fresh("probe_program", tmp_path, "hello\n")
    assert shimmed.returncode == 3 and shimmed.stderr == "to stderr\n", shimmed
    seen = json.loads(shimmed.stdout)
    assert seen["path"] == [str(tmp_path), str(tmp_path)] and seen["said"] == "hello\n" and seen["probe"] == "yes"
    same(shimmed, interpreter)


def started_program(tmp_path, body: str) -> tuple[subprocess.Popen, int]:
    """A program through the shim that prints its process id, then runs `body`; the shim and that id."""
    (tmp_path / "waiting_program.py").write_text(f"import os, time\nprint(os.getpid(), flush=True)\n{body}\n")
    command = worker_command()
    shim = subprocess.Popen([*command[:-1], "waiting_program"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    return shim, int(shim.stdout.readline())


def test_a_program_ends_when_its_shim_is_killed_and_takes_the_shims_signals(tmp_path):
    shim, pid = started_program(tmp_path, "time.sleep(600)")
    assert pid != shim.pid
    shim.kill()
    assert select.select([shim.stdout], [], [], 30)[0] and shim.stdout.read() == b""  # no process holds it open
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)

    shim, pid = started_program(tmp_path, "time.sleep(600)")
    shim.send_signal(signal.SIGTERM)
    assert shim.wait(30) == -signal.SIGTERM and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a process that has ended but is not reaped yet is a zombie: Z
        return stat.read().split(")")[-1].split()[0] != "Z"
