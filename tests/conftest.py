"""Shared fixtures: tiny models in the real file formats, and an isolated app home per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach a hub
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # headless Qt; tools/screenshots.py uses Xvfb
# Each test process (pytest-xdist runs two) and the CLI and worker processes it starts compute with its share of
# the cores: two processes of two OpenMP threads each on two cores wait on each other's spinning threads, and
# the tiny models' tests ran 2.4 times slower. Set before torch is imported, which reads it once.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # a test process of several (not the one that starts them)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1)
                                                     // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

import cli_process  # noqa: E402  (after the variables above: its zygote starts with this environment)

SD15_PREFIX = "Hyper-SD15"
SDXL_PREFIX = "Hyper-SDXL"


@pytest.fixture(autouse=True)
def app_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HYPERSD_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def forked_workers(monkeypatch):
    """The worker programs the app starts in this process are forked from a process that has imported torch
    (`cli_process.worker_command`), not started afresh: a window test then waits milliseconds for its worker, not
    the seconds of torch's import. Not for a worker under another Python, nor with HYPERSD_TEST_FRESH_CLI=1."""
    from hypersd_desktop.worker import client

    fresh = client.worker_command

    def command(python: str | None = None) -> list[str] | None:
        forked = cli_process.worker_command() if python is None and not getattr(sys, "frozen", False) else None
        return forked or fresh(python)

    monkeypatch.setattr(client, "worker_command", command)


@pytest.fixture
def fake_backend(monkeypatch):
    """HYPERSD_BACKENDS names the fake backend (tests/fake_backend.py), for this process and the worker
    processes it starts."""
    from hypersd_desktop.engine import backend

    monkeypatch.setenv(backend.BACKENDS_ENV, "fake_backend:BACKEND")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                   os.environ.get("PYTHONPATH")])))
    yield
    backend._registered.pop("fake", None)
    backend._specs.clear()


@pytest.fixture
def online(monkeypatch):
    """The suite runs with HF_HUB_OFFLINE=1; tests using this talk to a server on 127.0.0.1 only."""
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    reset_sessions()
    yield
    reset_sessions()


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny")


def _pipeline_folder(root: Path, architecture: str) -> Path:
    import tiny_models

    folder = root / architecture
    if not folder.exists():
        tiny_models.save_pipeline(architecture, folder)
    return folder


@pytest.fixture(scope="session")
def tiny_sd15(tiny_root) -> Path:
    return _pipeline_folder(tiny_root, "sd15")


@pytest.fixture(scope="session")
def tiny_sdxl(tiny_root) -> Path:
    return _pipeline_folder(tiny_root, "sdxl")


@pytest.fixture(scope="session")
def controlnets(tmp_path_factory, tiny_sd15, tiny_sdxl) -> dict[str, Path]:
    """A tiny ControlNet for each tiny base model, as diffusers folders."""
    import tiny_models

    root = tmp_path_factory.mktemp("controlnets")
    return {"sd15": tiny_models.save_controlnet(tiny_sd15, root / "sd15"),
            "sdxl": tiny_models.save_controlnet(tiny_sdxl, root / "sdxl")}


@pytest.fixture(scope="session")
def ip_adapters(tmp_path_factory, tiny_sd15, tiny_sdxl) -> dict[str, Path]:
    """A tiny plain IP-Adapter for each tiny base model, named as h94's are, and the image encoder they read with,
    as h94/IP-Adapter keeps it (a folder: "encoder") and as ComfyUI keeps it (its weights alone: "encoder file")."""
    import tiny_models

    root = tmp_path_factory.mktemp("ip-adapters")
    return {"sd15": tiny_models.save_ip_adapter(tiny_sd15, root / "ip-adapter_sd15.safetensors"),
            "sdxl": tiny_models.save_ip_adapter(tiny_sdxl, root / "ip-adapter_sdxl_vit-h.safetensors"),
            "encoder": tiny_models.save_image_encoder(root / "models" / "image_encoder", folder=True),
            "encoder file": tiny_models.save_image_encoder(root / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors")}


@pytest.fixture(scope="session")
def depth_model(tmp_path_factory) -> Path:
    """A tiny Depth Anything folder, as Depth-Anything-V2-Small-hf is laid out."""
    import tiny_models

    return tiny_models.save_depth_model(tmp_path_factory.mktemp("depth") / "Depth-Anything-V2-Small-hf")


@pytest.fixture(scope="session")
def tagger(tmp_path_factory) -> Path:
    """A tiny WD tagger folder (model.onnx and selected_tags.csv), laid out as wd-swinv2-tagger-v3 is on the hub."""
    import tiny_models

    return tiny_models.save_tagger(tmp_path_factory.mktemp("tagger") / "wd-swinv2-tagger-v3")


@pytest.fixture(scope="session")
def pose_models(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny ViTPose folder and a tiny RT-DETR person detector, laid out as vitpose-base-simple and
    rtdetr_r50vd_coco_o365 are on the hub."""
    import tiny_models

    root = tmp_path_factory.mktemp("pose")
    return (tiny_models.save_pose_model(root / "vitpose-base-simple"),
            tiny_models.save_person_detector(root / "rtdetr_r50vd_coco_o365"))


@pytest.fixture(scope="session")
def union_controlnets(tmp_path_factory, tiny_sdxl) -> dict[int, Path]:
    """Tiny ControlNet Union models for the tiny SDXL, as diffusers folders, by their number of control types: the
    first version's layout (6) and ProMax's (8)."""
    import tiny_models

    root = tmp_path_factory.mktemp("unions")
    return {6: tiny_models.save_union_controlnet(tiny_sdxl, root / "controlnet-union-sdxl-1.0"),
            8: tiny_models.save_union_controlnet(tiny_sdxl, root / "promax", seed=6, control_types=8)}


@pytest.fixture(scope="session")
def hyper_lora(tiny_root, tiny_sd15, tiny_sdxl):
    """Make (once) a kohya-format LoRA with a published Hyper-SD name for a tiny model."""
    import torch
    from diffusers import UNet2DConditionModel

    import tiny_models

    made: dict[str, Path] = {}

    def make(name: str, seed: int = 1) -> Path:
        architecture = "sdxl" if name.startswith(SDXL_PREFIX) else "sd15"
        path = tiny_root / "loras" / f"{name}.safetensors"
        if name not in made:
            folder = tiny_sdxl if architecture == "sdxl" else tiny_sd15
            with torch.no_grad():
                unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
            tiny_models.kohya_lora(unet, path, seed=seed)
            made[name] = path
        return made[name]

    return make


@pytest.fixture
def installed(app_home, tiny_sd15, hyper_lora):
    """The tiny SD1.5 model and the unified 1-step Hyper-SD LoRA in the app's model library."""
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary

    library = ModelLibrary(AppPaths.default())
    library.import_path(tiny_sd15)
    library.import_path(hyper_lora("Hyper-SD15-1step-lora"))
    library.close()
    return app_home


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """Small real wheels, their lock (served as the `cpu` lock) and an app wheel: see runtime_kit.py."""
    from runtime_kit import make_kit

    return make_kit(tmp_path, monkeypatch)
