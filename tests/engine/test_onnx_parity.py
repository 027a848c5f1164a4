"""The ONNX pipeline's image equals the torch backend's for the same request (tiny SD1.5, fp32, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from hypersd_desktop.engine.onnx.export import ExportCache, ExportSpec
from hypersd_desktop.engine.onnx.pipeline import OnnxSD15
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.core.hashes import sha256_file

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_sd15, hyper_lora):
    """One export per LoRA file used below (weights as the torch engine fuses them)."""
    cache = ExportCache(tmp_path_factory.mktemp("onnx"), hash_of=sha256_file)

    def export(lora_name: str | None, weight: float = 1.0):
        loras = (LoraSpec(str(hyper_lora(lora_name)), weight),) if lora_name else ()
        return cache.export(ExportSpec("sd15", str(tiny_sd15), loras=loras)), loras

    return export


@pytest.mark.parametrize("lora,steps", [
    ("Hyper-SD15-1step-lora", 1), ("Hyper-SD15-1step-lora", 2), ("Hyper-SD15-1step-lora", 4),
    ("Hyper-SD15-2steps-lora", 2), ("Hyper-SD15-8steps-lora", 8), ("Hyper-SD15-8steps-CFG-lora", 8),
])
def test_the_onnx_image_equals_the_torch_backends(exported, tiny_sd15, lora, steps):
    folder, loras = exported(lora)
    request = GenerationRequest(prompt="a lighthouse on a cliff at dusk", negative_prompt="blurry",
                                base_model=str(tiny_sd15), loras=loras, steps=steps, seed=1234, width=64, height=64,
                                batch_size=2, device="cpu", dtype="fp32")
    results = TorchEngine().generate(request)
    settings = results[0].settings
    ours = OnnxSD15(folder).generate(request.prompt, request.seed, settings.steps, settings.scheduler, 64, 64,
                                     batch_size=2, guidance=settings.guidance, negative_prompt=request.negative_prompt,
                                     eta=settings.eta, timesteps=settings.timesteps)
    for result, image in zip(results, ours):
        expected = np.asarray(result.image, dtype=np.int16)
        assert np.abs(image.astype(np.int16) - expected).max() <= 2, (settings.scheduler, settings.steps)
    assert np.abs(ours[0].astype(np.int16) - ours[1]).max() > 20, "the two seeds' images differ: the check can fail"


def test_the_onnx_pipeline_runs_where_torch_cannot_be_imported(exported):
    """As in a runtime with ONNX Runtime and no torch: importing torch or diffusers fails, and transformers is
    told there is none (USE_TORCH=0, what it finds by itself where torch is not installed)."""
    import os
    import subprocess
    import sys

    folder, _ = exported("Hyper-SD15-1step-lora")
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "diffusers"):
            raise ImportError(f"{{name}} is not installed here")
sys.meta_path.insert(0, NoTorch())
from pathlib import Path
from hypersd_desktop.engine.onnx.pipeline import OnnxSD15
images = OnnxSD15(Path({str(folder)!r})).generate("a lighthouse", 7, 2, "tcd", 64, 64, eta=1.0)
print(images[0].shape, images[0].std() > 1, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "USE_TORCH": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "(64, 64, 3) True []"
