"""The ONNX backend's engine: export on first use with progress and cancel, sessions kept between requests,
previews and TAESD decode, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.hashes import sha256_file
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.engine import backend
from hypersd_desktop.engine.onnx import export as onnx_export
from hypersd_desktop.engine.onnx.engine import EXPORT_STAGE, OnnxEngine
from hypersd_desktop.engine.onnx.export import ExportCache
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def engine(tmp_path) -> OnnxEngine:
    return OnnxEngine(ExportCache(tmp_path / "onnx", hash_of=sha256_file))


@pytest.fixture
def request_sd15(tiny_sd15, hyper_lora) -> GenerationRequest:
    return GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sd15), seed=5, steps=2, width=64, height=64,
                             loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),), backend="onnx", device="cpu")


def test_the_first_request_exports_with_progress_and_the_next_reuses_export_and_sessions(engine, request_sd15,
                                                                                         monkeypatch):
    events = []
    (first,) = engine.generate(request_sd15, on_progress=events.append)
    stages = [e for e in events if e.stage]
    assert stages and all(e.stage.startswith(EXPORT_STAGE) for e in stages)
    assert [e.step for e in stages] == sorted(e.step for e in stages) and stages[-1].step == stages[-1].total_steps == 100
    assert "unet" in " ".join(e.stage for e in stages)
    assert [e.step for e in events if not e.stage] == [1, 2]
    assert first.settings.backend == "onnx" and first.settings.device == "cpu" and first.settings.dtype == "fp32"
    assert first.timings["load_s"] > first.timings["denoise_s"]

    pipeline = engine._open.pipeline
    monkeypatch.setattr(onnx_export, "load_fused_pipeline", lambda spec: pytest.fail("exported a second time"))
    later = []
    (again,) = engine.generate(request_sd15.replace(prompt="a dog", seed=6), on_progress=later.append)
    assert engine._open.pipeline is pipeline and not any(e.stage for e in later)
    assert np.abs(np.asarray(again.image, np.int16) - np.asarray(first.image, np.int16)).max() > 10
    # the worker's memory, as the status bar shows it: the process's on the CPU; a GPU's ONNX Runtime does not say
    import psutil

    assert engine.memory_in_use("cpu") >= psutil.Process().memory_info().rss // 2 > 0
    assert engine.memory_in_use("directml") is None


def test_cancelling_during_the_export_stops_it_and_leaves_no_export(engine, request_sd15):
    token = CancelToken()

    def cancel_in_the_export(progress):
        if progress.stage:
            token.cancel()

    with pytest.raises(CancelledError):
        engine.generate(request_sd15, on_progress=cancel_in_the_export, cancel=token)
    assert engine.cache.entries() == [] and list(engine.cache.root.iterdir()) == []


def test_cancelling_between_steps_stops_the_run(engine, request_sd15):
    engine.prepare(request_sd15)
    token = CancelToken()

    def cancel_after_the_first_step(progress):
        if progress.step == 1 and not progress.stage:
            token.cancel()

    with pytest.raises(CancelledError):
        engine.generate(request_sd15.replace(steps=4), on_progress=cancel_after_the_first_step, cancel=token)


def test_taesd_previews_and_fast_decode_equal_the_torch_backends(engine, request_sd15, tmp_path):
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    taesd = tmp_path / "taesd"
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1)).save_pretrained(taesd)
    request = request_sd15.replace(preview="taesd", decoder="taesd", taesd=str(taesd), dtype="fp32")
    events = []
    (ours,) = engine.generate(request, on_progress=events.append)
    (theirs,) = TorchEngine().generate(request.replace(backend="torch"))
    assert events[-1].preview.size == ours.image.size == (64, 64)
    assert np.abs(np.asarray(ours.image, np.int16) - np.asarray(theirs.image, np.int16)).max() <= 2
    (full,) = engine.generate(request.replace(decoder="vae", preview="none"))
    assert np.abs(np.asarray(ours.image, np.int16) - np.asarray(full.image, np.int16)).max() > 10  # another decoder


def test_plain_generation_without_a_hyper_sd_scheduler_is_refused_with_what_to_do(engine, tiny_sd15):
    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sd15), steps=2, width=64, height=64,
                                backend="onnx", device="cpu")
    with pytest.raises(InputError, match="runs the Hyper-SD schedulers .* only; choose a Hyper-SD LoRA"):
        engine.generate(request)
    assert engine.cache.entries() == []  # refused before any export


def test_controlnets_and_missing_images_are_refused_before_any_export_with_what_to_do(engine, request_sd15):
    from hypersd_desktop.engine import ControlSpec, IPAdapterSpec

    digest = "cd" * 32
    with pytest.raises(InputError, match="has no ControlNet .*choose PyTorch"):
        engine.generate(request_sd15.replace(controls=(ControlSpec("/cn", digest),)))
    with pytest.raises(InputError, match="has no IP-Adapter; .*choose PyTorch"):
        engine.generate(request_sd15.replace(ip_adapters=(IPAdapterSpec("/ip.safetensors", "/encoder", digest),)))
    with pytest.raises(InputError, match="given no input image store"):
        engine.generate(request_sd15.replace(init_image=digest))
    assert engine.cache.entries() == []


def test_auto_takes_onnx_runtime_on_the_cpu_and_torch_for_what_onnx_runtime_declines(request_sd15):
    """ONNX Runtime is the faster CPU backend (bench/backends.py); plain generation needs the base model's
    own scheduler, which only torch has."""
    assert backend.for_request(request_sd15.replace(backend="auto")).name == "onnx"
    plain = request_sd15.replace(backend="auto", loras=())
    assert backend.for_request(plain).name == "torch"
    assert backend.for_request(plain.replace(backend="onnx")).name == "onnx"  # named: its engine says why not


def test_the_onnx_backend_is_in_the_registry_with_its_providers():
    (info,) = [info for info in backend.probe_all() if info.name == "onnx"]
    assert info.available and "cpu" in info.devices and info.version
    assert backend.choose("onnx", "cpu").name == "onnx"
    with pytest.raises(InputError, match="No backend here runs text-to-image on the DIRECTML device"):
        backend.choose("onnx", "directml")  # onnxruntime (CPU build) here, not onnxruntime-directml


def test_a_provider_with_fixed_shapes_gets_sessions_per_shape_and_the_same_image(tmp_path, request_sd15):
    """DirectML's way (free dimensions fixed per session), tried on the CPU provider."""
    import dataclasses

    from hypersd_desktop.engine.onnx.providers import CPU

    cache = ExportCache(tmp_path / "onnx", hash_of=sha256_file)
    fixed = OnnxEngine(cache, dataclasses.replace(CPU, fixed_shapes=True))
    (image,) = fixed.generate(request_sd15)
    first = fixed._open.pipeline
    assert first.shape is not None and first.shape.unet_batch == 1 and first.shape.width == 64
    (dynamic,) = OnnxEngine(cache).generate(request_sd15)
    assert np.array_equal(np.asarray(image.image), np.asarray(dynamic.image))
    fixed.generate(request_sd15.replace(seed=9))
    assert fixed._open.pipeline is first  # the same shape: the same sessions
    (wide,) = fixed.generate(request_sd15.replace(width=96, batch_size=1))
    assert fixed._open.pipeline is not first and wide.image.size == (96, 64)

    long = request_sd15.replace(prompt="a lighthouse, " + "cat, " * 40 + "zebra")
    (cut,) = fixed.generate(long)
    (warning,) = [warning for warning in cut.warnings if "was dropped" in warning]
    assert '75 tokens that are read; this part was dropped: "cat, cat' in warning and "lighthouse" not in warning
    assert "choose PyTorch" in warning
    (whole,) = OnnxEngine(cache).generate(long)
    assert not whole.warnings and np.abs(np.asarray(whole.image, np.int16) - np.asarray(cut.image)).max() > 0


def test_running_out_of_memory_is_the_apps_out_of_memory_error_with_what_to_do(engine, request_sd15):
    from hypersd_desktop.core.errors import OutOfMemoryError

    engine.prepare(request_sd15)
    # The tiny VAE halves only once: 1024² is 512² latents, whose self-attention wants ~275 GB at once.
    with pytest.raises(OutOfMemoryError, match="ONNX Runtime ran out of memory .* Try a smaller size or batch"):
        engine.generate(request_sd15.replace(width=1024, height=1024))
    assert engine._open is None  # freed
    assert engine.generate(request_sd15)[0].image.size == (64, 64)
