"""ONNX exports of a base model with fused LoRAs: complete or absent, cached by what makes the graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.engine.onnx import export as onnx_export
from hypersd_desktop.engine.onnx.export import MANIFEST, ExportCache, ExportSpec, export_key
from hypersd_desktop.engine.types import LoraSpec
from hypersd_desktop.core.hashes import sha256_file

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def cache(tmp_path) -> ExportCache:
    return ExportCache(tmp_path / "onnx", hash_of=sha256_file)


def leftovers(cache: ExportCache) -> list[str]:
    return sorted(p.name for p in cache.root.iterdir()) if cache.root.exists() else []


def test_an_export_runs_in_onnx_runtime_and_a_second_request_finds_it(cache, tiny_sd15, hyper_lora, monkeypatch):
    spec = ExportSpec("sd15", str(tiny_sd15), loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora")), 1.0),))
    seen = []
    folder = cache.export(spec, on_progress=seen.append)
    assert [p.item for p in seen[:-1]] == ["text_encoder", "unet", "vae_encoder", "vae_decoder"]
    assert seen[-1].item == "done" and seen[-1].done == seen[-1].total
    for part in ("text_encoder", "unet", "vae_encoder", "vae_decoder"):
        assert (folder / part / "model.onnx").stat().st_size > 0 and (folder / part / "config.json").is_file()
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["spec"]["loras"][0]["weight"] == 1.0 and manifest["seconds"] > 0
    assert [entry.key for entry in cache.entries()] == [folder.name] and cache.entries()[0].size_bytes > 1_000_000

    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "unet" / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"sample": np.zeros((1, 4, 8, 8), np.float32), "timestep": np.array(999, np.float32),
             "encoder_hidden_states": np.zeros((1, 77, 32), np.float32)}
    feeds = {i.name: feeds[i.name] for i in session.get_inputs()}
    assert session.run(None, feeds)[0].shape == (1, 4, 8, 8)
    from optimum.onnxruntime import ORTStableDiffusionPipeline  # the layout optimum's pipelines read

    images = ORTStableDiffusionPipeline.from_pretrained(folder, provider="CPUExecutionProvider")(
        "a lighthouse", num_inference_steps=1, height=64, width=64, guidance_scale=0, output_type="np").images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()

    monkeypatch.setattr(onnx_export, "load_fused_pipeline", lambda spec: pytest.fail("exported a second time"))
    assert cache.export(spec) == folder


def test_another_lora_weight_is_another_export(cache, tiny_sd15, hyper_lora):
    lora = str(hyper_lora("Hyper-SD15-1step-lora"))
    full = ExportSpec("sd15", str(tiny_sd15), loras=(LoraSpec(lora, 1.0),))
    half = ExportSpec("sd15", str(tiny_sd15), loras=(LoraSpec(lora, 0.5),))
    assert export_key(full, sha256_file) != export_key(half, sha256_file)
    assert export_key(full, sha256_file) == export_key(ExportSpec("sd15", str(tiny_sd15), loras=(LoraSpec(lora, 1.0),)),
                                                       sha256_file)
    assert cache.export(full) != cache.export(half)
    assert len(cache.entries()) == 2


def test_a_cancelled_export_leaves_nothing(cache, tiny_sd15):
    token = CancelToken()

    def cancel_after_the_text_encoder(progress):
        if progress.item == "unet":
            token.cancel()

    spec = ExportSpec("sd15", str(tiny_sd15))
    with pytest.raises(CancelledError, match="nothing half-written"):
        cache.export(spec, on_progress=cancel_after_the_text_encoder, cancel=token)
    assert leftovers(cache) == [] and cache.find(spec) is None


def test_a_failed_export_leaves_nothing(cache, tiny_sd15, monkeypatch):
    def broken(model, config, folder: Path, opset):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "write_component", broken)
    with pytest.raises(RuntimeError):
        cache.export(ExportSpec("sd15", str(tiny_sd15)))
    assert leftovers(cache) == []


def test_too_little_disk_is_refused_before_writing(tmp_path, tiny_sd15):
    cache = ExportCache(tmp_path / "onnx", hash_of=sha256_file, free_space=lambda path: 1_000)
    with pytest.raises(InputError, match="needs about .* GiB free"):
        cache.export(ExportSpec("sd15", str(tiny_sd15)))
    assert leftovers(cache) == []


def test_remove_frees_an_export(cache, tiny_sd15):
    folder = cache.export(ExportSpec("sd15", str(tiny_sd15)))
    assert cache.remove(folder.name) > 0 and cache.entries() == []
    with pytest.raises(InputError):
        cache.remove(folder.name)
