"""The command line as a user runs it: a separate process, files on disk, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from PIL import Image

from hypersd_desktop.gallery.metadata import read_request


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hypersd_desktop", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


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
    assert prompt == "a red fox"
    assert "Steps: 4, Sampler: DDIM, CFG scale: 0, Seed: 5, Size: 64x64" in settings
    assert "Lora hashes: " in settings
    request = read_request(first["path"])
    assert request["seed"] == 5 and request["loras"][0]["path"] == str(lora)
    assert request["cuda_graphs"] is False
    assert sorted(p.name for p in out.iterdir()) == sorted(p.rsplit("/", 1)[-1] for p in (l["path"] for l in lines))


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


def test_inspect_json(hyper_lora):
    run = cli("inspect", hyper_lora("Hyper-SDXL-2steps-lora"), "--json")
    assert run.returncode == 0
    data = json.loads(run.stdout)
    assert (data["kind"], data["architecture"], data["format"], data["hyper_sd"]) == (
        "lora", "sdxl", "kohya", "Hyper-SDXL-2steps-lora")


@pytest.fixture
def bad_inputs(tmp_path, tiny_sd15, hyper_lora):
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x02}q\x00.")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes()[:5000])
    not_safetensors = tmp_path / "text.safetensors"
    not_safetensors.write_text("hello, this is not a model")
    base = ["generate", "--model", tiny_sd15, "--prompt", "x"]
    return {
        "other-architecture": ([*base, "--lora", hyper_lora("Hyper-SDXL-2steps-lora")], "for SDXL; the base model is SD1.5"),
        "width-not-multiple-of-8": ([*base, "--width", 100], "multiple of 8"),
        "pickle-lora": ([*base, "--lora", pickle], "pickle"),
        "pickle-model": (["generate", "--model", pickle, "--prompt", "x"], "pickle"),
        "truncated-lora": ([*base, "--lora", truncated], "truncated"),
        "not-safetensors": ([*base, "--lora", not_safetensors], "not safetensors"),
        "missing-model": (["generate", "--model", tmp_path / "nope", "--prompt", "x"], "does not exist"),
        "inspect-pickle": (["inspect", pickle], "pickle"),
    }


@pytest.mark.parametrize("case", ["other-architecture", "width-not-multiple-of-8", "pickle-lora", "pickle-model",
                                  "truncated-lora", "not-safetensors", "missing-model", "inspect-pickle"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(bad_inputs, case, tmp_path):
    args, message = bad_inputs[case]
    out = tmp_path / "out"
    run = cli(*args, *(["--out", out] if args[0] == "generate" else []))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert message in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_long_prompt_warns_on_stderr(tiny_sd15, tmp_path):
    run = cli("generate", "--model", tiny_sd15, "--prompt", "cat " * 90 + "giraffe", "--steps", 1,
              "--width", 64, "--height", 64, "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    assert "token window" in run.stderr and "giraffe" in run.stderr
