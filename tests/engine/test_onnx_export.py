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
    def broken(model, config, folder: Path, opset, tiling):
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


def initializer_types(model_file: Path) -> set[int]:
    import onnx

    model = onnx.load(str(model_file), load_external_data=False)
    return {tensor.data_type for tensor in model.graph.initializer if tensor.dims}


def test_an_fp16_export_for_gpus_runs_and_keeps_the_sdxl_vae_in_fp32(cache, tiny_sd15, tiny_sdxl):
    import onnx

    from hypersd_desktop.engine.onnx.pipeline import OnnxPipeline

    for base, architecture in ((tiny_sd15, "sd15"), (tiny_sdxl, "sdxl")):
        full = cache.export(ExportSpec(architecture, str(base)))
        half = cache.export(ExportSpec(architecture, str(base), dtype="fp16"))
        assert initializer_types(half / "unet" / "model.onnx") == {onnx.TensorProto.FLOAT16}
        assert initializer_types(full / "unet" / "model.onnx") == {onnx.TensorProto.FLOAT}
        vae = {"sd15": onnx.TensorProto.FLOAT16, "sdxl": onnx.TensorProto.FLOAT}[architecture]
        assert initializer_types(half / "vae_decoder" / "model.onnx") == {vae}
        expected = OnnxPipeline(full).generate("a red kite", 3, 2, "tcd", 64, 64, eta=1.0)[0]
        image = OnnxPipeline(half).generate("a red kite", 3, 2, "tcd", 64, 64, eta=1.0)[0]
        assert np.abs(image.astype(np.int16) - expected).max() <= 3, architecture


def test_an_export_made_elsewhere_is_imported_and_found(cache, tiny_sd15, tmp_path):
    spec = ExportSpec("sd15", str(tiny_sd15))
    made = cache.export(spec)
    elsewhere = ExportCache(tmp_path / "other", hash_of=sha256_file)
    assert elsewhere.find(spec) is None
    imported = elsewhere.import_folder(made)
    assert elsewhere.find(spec) == imported and imported.parent == elsewhere.root
    assert sorted(p.name for p in imported.iterdir()) == sorted(p.name for p in made.iterdir())
    with pytest.raises(InputError, match="not an ONNX export made by this app"):
        elsewhere.import_folder(tiny_sd15)
    assert leftovers(elsewhere) == [imported.name]


def test_taesd_decoder_export_matches_the_torch_decoder(cache, tmp_path):
    import torch
    from diffusers import AutoencoderTiny

    from hypersd_desktop.engine.onnx.providers import CPU

    torch.manual_seed(0)
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1)).save_pretrained(tmp_path / "taesd")
    folder = cache.export_taesd(tmp_path / "taesd")
    assert cache.export_taesd(tmp_path / "taesd") == folder
    latent = torch.randn(1, 4, 16, 16)
    with torch.inference_mode():
        expected = AutoencoderTiny.from_pretrained(tmp_path / "taesd").decode(latent).sample.numpy()
    got = CPU.session(folder / "decoder.onnx").run(None, {"latent_sample": latent.numpy()})[0]
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_the_cache_stays_within_its_budget_removing_the_least_recently_used(tmp_path, tiny_sd15, hyper_lora):
    import os

    lora = str(hyper_lora("Hyper-SD15-1step-lora"))
    specs = [ExportSpec("sd15", str(tiny_sd15), loras=(LoraSpec(lora, weight),)) for weight in (1.0, 0.9, 0.8)]
    unlimited = ExportCache(tmp_path / "onnx", hash_of=sha256_file, budget_bytes=None)
    first = unlimited.export(specs[0])
    size = unlimited.entries()[0].size_bytes
    cache = ExportCache(tmp_path / "onnx", hash_of=sha256_file, budget_bytes=int(2.6 * size))  # room for two
    second = cache.export(specs[1])
    for age, folder in ((200, first), (100, second)):  # the first made (and used) longest ago
        stamp = os.stat(folder / MANIFEST).st_mtime - age
        os.utime(folder / MANIFEST, (stamp, stamp))
    assert cache.find(specs[0]) == first  # used now: the second is the least recently used
    third = cache.export(specs[2])
    assert sorted(entry.folder for entry in cache.entries()) == sorted([first, third])
    assert cache.find(specs[1]) is None and not second.exists()


def test_without_torch_a_missing_export_says_what_to_install(cache, tiny_sd15, monkeypatch):
    monkeypatch.setattr(onnx_export, "torch_installed", lambda: False)
    with pytest.raises(InputError, match="exporting needs PyTorch, which this Python lacks. Install the cpu or directml"):
        cache.export(ExportSpec("sd15", str(tiny_sd15)))
    assert leftovers(cache) == []
