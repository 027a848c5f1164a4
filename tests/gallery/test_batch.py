"""Batch jobs: job files, and a job killed part way then restarted producing every item exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine import GenerationRequest
from hypersd_desktop.gallery.store import GalleryStore
from hypersd_desktop.worker.batch import parse_job, plan_units

DEFAULTS = GenerationRequest(prompt="", base_model="/m", seed=100, steps=2, width=64, height=64)



def test_an_item_naming_another_model_takes_that_models_vae(tmp_path):
    """The defaults' VAE goes with the defaults' model (it may be one chosen for it); an item that names another
    model gets the VAE the app picks for that one."""
    job = tmp_path / "job.json"
    job.write_text(json.dumps([{"prompt": "a ship"}, {"prompt": "a tree", "model": "/other"},
                               {"prompt": "a bird", "model": "/m"}]))
    defaults = DEFAULTS.replace(vae="/vaes/chosen.safetensors")
    picks = {"/other": "/vaes/for-other.safetensors", "/m": "/vaes/automatic.safetensors"}
    units = plan_units(parse_job(job), defaults, vae_for=picks.get)
    assert [u.request.vae for u in units] == ["/vaes/chosen.safetensors", "/vaes/for-other.safetensors",
                                             "/vaes/chosen.safetensors"]
    assert [u.request.vae for u in plan_units(parse_job(job), defaults)] == ["/vaes/chosen.safetensors"] * 3

def test_text_csv_and_json_jobs(tmp_path):
    text = tmp_path / "job.txt"
    text.write_text("a castle\n\n# a comment\na dragon\n")
    assert [i["prompt"] for i in parse_job(text)] == ["a castle", "a dragon"]
    table = tmp_path / "job.csv"
    table.write_text("prompt,negative,seeds,steps,width\na ship,fog,1-3,4,\na tree,,7,,96\n")
    units = plan_units(parse_job(table), DEFAULTS)
    assert [(u.item, u.request.seed, u.request.steps) for u in units] == [(1, 1, 4), (1, 2, 4), (1, 3, 4), (2, 7, 2)]
    assert units[0].request.negative_prompt == "fog" and units[3].request.width == 96
    data = tmp_path / "job.json"
    data.write_text(json.dumps({"items": [{"prompt": "a cat", "lora": "/l/a.safetensors:0.5;/l/b.safetensors"}]}))
    (unit,) = plan_units(parse_job(data), DEFAULTS)
    assert [(l.path, l.weight) for l in unit.request.loras] == [("/l/a.safetensors", 0.5), ("/l/b.safetensors", 1.0)]
    assert [u.request.seed for u in plan_units(parse_job(text), DEFAULTS, seeds_per_prompt=2)] == [100, 101, 102, 103]


@pytest.mark.parametrize("content,message", [
    ("prompt,colour\na,red\n", "unknown column"), ("prompt,steps\n,4\n", "prompt is empty"), ("\n# nothing\n", "no prompts"),
])
def test_bad_jobs(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    if message == "no prompts":
        path = path.rename(tmp_path / "bad.txt")
    with pytest.raises(InputError, match=message):
        parse_job(path)


def test_killed_batch_restarts_and_produces_each_item_once(tiny_sd15, hyper_lora, tmp_path, app_home):
    job = tmp_path / "job.txt"
    prompts = [f"a picture number {i}" for i in range(8)]
    job.write_text("\n".join(prompts) + "\n")
    out = tmp_path / "export"
    command = [sys.executable, "-m", "hypersd_desktop", "batch", str(job), "--model", str(tiny_sd15),
               "--lora", str(hyper_lora("Hyper-SD15-1step-lora")), "--steps", "2", "--width", "64", "--height", "64",
               "--to", str(out), "--template", "{index}-{seed}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    exported_before = len(list(out.glob("*.png")))
    assert 3 <= exported_before < 8, "the job should have been killed part way"

    store = GalleryStore(AppPaths.default().data / "gallery.sqlite3")
    assert store.integrity_check() == "ok"
    for _, path in store.all_paths():
        with Image.open(path) as image:
            image.load()  # complete, readable files only
    store.close()

    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(f"{i}-{i - 1}.png" for i in range(1, 9))  # {index}-{seed}; seeds 0..7
    store = GalleryStore(AppPaths.default().data / "gallery.sqlite3")
    rows = store.all_paths()
    assert len(rows) == 8 and len({p for _, p in rows}) == 8
    assert store.integrity_check() == "ok"
    assert not list(out.rglob(".partial-*"))
    store.close()


def test_the_temporary_files_of_killed_writers_are_removed_and_no_others(tmp_path):
    from hypersd_desktop.core.files import remove_stale_partials

    def writer() -> subprocess.Popen:
        """A process in the middle of writing tmp_path/out.png (it waits with the temporary file open)."""
        code = ("import sys, time; from pathlib import Path; from hypersd_desktop.core.files import atomic_writer\n"
                "with atomic_writer(Path(sys.argv[1])) as stream:\n"
                "    stream.write(b'half'); stream.flush(); print('writing', flush=True); time.sleep(60)")
        process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out.png")], stdout=subprocess.PIPE)
        assert process.stdout.readline().strip() == b"writing"
        return process

    killed, running = writer(), writer()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (tmp_path / ".partial-old.png").write_bytes(b"")  # no process id: left alone
    assert len(list(tmp_path.glob(".partial-*"))) == 3
    assert remove_stale_partials(tmp_path) == 1
    left = sorted(path.name for path in tmp_path.glob(".partial-*"))
    assert left == sorted([".partial-old.png", next(n for n in left if n.startswith(f".partial-{running.pid}-"))])
    running.kill()
    running.wait()
