"""Downloads against a local server that speaks the hub's protocol: resume, verify, errors, cancel."""

from __future__ import annotations

import hashlib
import random
from collections import namedtuple

import pytest

from hypersd_desktop.core.errors import CancelledError
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.models.catalog import CatalogEntry, CatalogFile
from hypersd_desktop.models.downloads import DownloadError, Downloader, InsufficientSpaceError, IntegrityError
from hypersd_desktop.models.registry import Registry
from hub_server import HubServer

REPO = "ByteDance/Hyper-SD"
NAME = "Hyper-SD15-1step-lora.safetensors"
SIZE = 3 * 1024 * 1024 + 123


def lora_entry(size: int = SIZE) -> CatalogEntry:
    return CatalogEntry(
        id="hyper-sd15-1step-lora", name="Hyper-SD15-1step-lora", kind="lora", architecture="sd15", layout="file",
        repo=REPO, revision="main", licence="openrail++", enables="test", files=(CatalogFile(NAME, size),),
        recipe="Hyper-SD15-1step-lora",
    )


def folder_entry() -> CatalogEntry:
    return CatalogEntry(
        id="tiny-base", name="Tiny base", kind="base", architecture="sd15", layout="diffusers", repo="org/tiny",
        revision="main", licence="mit", enables="test",
        files=(CatalogFile("model_index.json", 100), CatalogFile("unet/diffusion_pytorch_model.fp16.safetensors", 100)),
    )


@pytest.fixture
def payload():
    return random.Random(7).randbytes(SIZE)


pytestmark = pytest.mark.usefixtures("online")


@pytest.fixture
def hub(payload):
    with HubServer() as hub:
        hub.add(REPO, NAME, payload)
        yield hub


Setup = namedtuple("Setup", "downloader registry models waits")


@pytest.fixture
def setup(tmp_path, hub):
    registry = Registry(tmp_path / "models.sqlite3")
    waits: list[float] = []
    downloader = Downloader(tmp_path / "models", registry, endpoint=hub.url, token=False, retries=3,
                            sleep=waits.append, use_hf_cache=False, timeout=5)
    yield Setup(downloader, registry, tmp_path / "models", waits)
    registry.close()


def test_download_registers_with_rising_progress(setup, payload):
    events = []
    model = setup.downloader.download(lora_entry(), on_progress=events.append)
    path = setup.models / "hyper-sd15-1step-lora" / NAME
    assert path.read_bytes() == payload
    assert model.sha256 == hashlib.sha256(payload).hexdigest()
    assert model.short_hash == model.sha256[:10]
    # the hashes other tools' images name it by (the payload has no safetensors header: hashed whole)
    assert model.lora_hash == model.sha256 and model.legacy_hash == hashlib.sha256(payload[0x100000:0x110000]).hexdigest()[:8]
    assert setup.registry.get("hyper-sd15-1step-lora").path == str(path)
    done = [event.done for event in events]
    assert done == sorted(done) and done[-1] == SIZE and events[-1].total == SIZE
    assert not list(path.parent.glob("*.part*"))


def test_diffusers_layout_with_small_and_large_files(tmp_path, hub, setup):
    small, large = b'{"_class_name": "StableDiffusionPipeline"}', random.Random(1).randbytes(200_000)
    hub.add("org/tiny", "model_index.json", small, lfs=False)
    hub.add("org/tiny", "unet/diffusion_pytorch_model.fp16.safetensors", large)
    model = setup.downloader.download(folder_entry())
    assert model.layout == "diffusers" and model.path == str(setup.models / "tiny-base")
    assert (setup.models / "tiny-base" / "unet" / "diffusion_pytorch_model.fp16.safetensors").read_bytes() == large
    assert model.size == len(small) + len(large)


@pytest.mark.parametrize("trial", range(12))
def test_dropped_connections_resume_to_the_right_sha256(setup, hub, payload, trial):
    rng = random.Random(trial)
    hub.drops[NAME] = [rng.randrange(1, SIZE // 4) for _ in range(rng.randint(1, 3))]  # bytes sent per try
    offsets = list(hub.drops[NAME])
    model = setup.downloader.download(lora_entry())
    assert model.sha256 == hashlib.sha256(payload).hexdigest()
    ranges = hub.gets(NAME)
    assert ranges[0] is None and len(ranges) == len(offsets) + 1
    # Each retry continues from what was kept (all but the last partial read of 64 KiB),
    # never from byte 0 once a full read has landed.
    starts = [0] + [int(r.split("=")[1].rstrip("-")) if r else 0 for r in ranges[1:]]
    position = 0
    for start, cut in zip(starts[1:], offsets):
        position += cut
        assert position - 64 * 1024 < start <= position or (start == 0 and position < 64 * 1024)
        position = start


def test_bytes_that_do_not_match_the_published_sha256_are_rejected(setup, hub, payload):
    corrupt = bytearray(payload)
    corrupt[1000] ^= 0xFF
    hub.files[(REPO, NAME)].served = bytes(corrupt)
    with pytest.raises(IntegrityError, match="does not match its published sha256"):
        setup.downloader.download(lora_entry())
    assert setup.registry.find("hyper-sd15-1step-lora") is None
    folder = setup.models / "hyper-sd15-1step-lora"
    assert not (folder / NAME).exists() and not list(folder.glob("*.part"))


def test_401_says_to_log_in(setup, hub):
    hub.statuses[NAME] = [401]
    with pytest.raises(DownloadError, match="gated or needs a login.*huggingface-cli login"):
        setup.downloader.download(lora_entry())


def test_gated_repository_works_with_the_token_huggingface_hub_holds(tmp_path, hub, payload, monkeypatch):
    hub.required_token = "hf_test_token"
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    registry = Registry(tmp_path / "gated.sqlite3")
    downloader = Downloader(tmp_path / "models", registry, endpoint=hub.url, use_hf_cache=False)  # token: the stored one
    assert downloader.download(lora_entry()).sha256 == hashlib.sha256(payload).hexdigest()
    registry.close()


def test_404_says_not_found(setup, hub):
    hub.files.pop((REPO, NAME))
    with pytest.raises(DownloadError, match="not found on the hub"):
        setup.downloader.download(lora_entry())


def test_5xx_is_retried_with_backoff_then_explained(setup, hub):
    hub.statuses[NAME] = [503] * 10
    with pytest.raises(DownloadError, match=r"\(503\) 4 times.*Try again later"):
        setup.downloader.download(lora_entry())
    assert setup.waits == [1.0, 2.0, 4.0]


def test_transient_5xx_recovers(setup, hub, payload):
    hub.statuses[NAME] = [500, 502]
    model = setup.downloader.download(lora_entry())
    assert model.sha256 == hashlib.sha256(payload).hexdigest()
    assert setup.waits == [1.0, 2.0]


def test_cancel_mid_file_registers_nothing_and_resumes_later(setup, hub, payload):
    hub.pause_per_64k = 0.01
    token = CancelToken()

    def cancel_half_way(progress):
        if progress.done > SIZE // 2:
            token.cancel()

    with pytest.raises(CancelledError):
        setup.downloader.download(lora_entry(), on_progress=cancel_half_way, cancel=token)
    assert setup.registry.find("hyper-sd15-1step-lora") is None
    part = setup.models / "hyper-sd15-1step-lora" / f"{NAME}.part"
    kept = part.stat().st_size
    assert 0 < kept < SIZE

    # A new downloader (as after an app restart) continues from the kept bytes.
    again = Downloader(setup.models, setup.registry, endpoint=hub.url, token=False, use_hf_cache=False)
    events = []
    model = again.download(lora_entry(), on_progress=events.append)
    assert model.sha256 == hashlib.sha256(payload).hexdigest()
    assert hub.gets(NAME)[-1] == f"bytes={kept}-"
    assert events[0].done >= kept


def test_not_enough_space_is_refused_before_the_first_byte(setup, hub, monkeypatch):
    import shutil

    usage = shutil.disk_usage(setup.models.parent)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage._replace(free=SIZE // 2))
    with pytest.raises(InsufficientSpaceError, match="Not enough disk space"):
        setup.downloader.download(lora_entry())
    assert hub.gets(NAME) == []


def test_a_disk_that_cannot_take_more_mid_file_is_said_so_and_the_download_resumes_later(setup, hub, payload):
    """The space was there when the download started, then ran out (another program took it), or the drive holds
    no file this large (FAT32): that is said, not taken for a network error and tried again, and what was written
    is kept for the download to resume once there is room. The operating system's own limit on file size stands
    in for the full disk here (the same failed write, where a test cannot fill a disk)."""
    resource = pytest.importorskip("resource")  # POSIX; Python ignores SIGXFSZ, so the write fails with EFBIG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE // 2, hard))
    try:
        with pytest.raises(DownloadError) as raised:
            setup.downloader.download(lora_entry())
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    message = str(raised.value)
    assert message.startswith(f"{NAME} stopped downloading: the drive holding {setup.models / 'hyper-sd15-1step-lora'}"
                              " cannot hold a file this large (File too large; FAT32 drives hold up to 4 GB)")
    assert message.endswith("what was downloaded so far is kept.") and "network" not in message
    assert len(hub.gets(NAME)) == 1 and setup.waits == []  # not retried
    assert setup.registry.find("hyper-sd15-1step-lora") is None
    kept = (setup.models / "hyper-sd15-1step-lora" / f"{NAME}.part").stat().st_size
    assert 0 < kept <= SIZE // 2

    model = setup.downloader.download(lora_entry())
    assert model.sha256 == hashlib.sha256(payload).hexdigest()
    assert hub.gets(NAME)[-1] == f"bytes={kept}-"


def test_a_models_folder_on_a_drive_that_is_gone_is_said(setup, hub, tmp_path):
    gone = tmp_path / "usb-drive"
    gone.write_text("not a folder")
    downloader = Downloader(gone / "models", setup.registry, endpoint=hub.url, token=False, use_hf_cache=False)
    with pytest.raises(DownloadError, match=f"Hyper-SD15-1step-lora was not downloaded: it could not be written into "
                                            f"{gone / 'models'}"):
        downloader.download(lora_entry())
    assert hub.gets(NAME) == []


@pytest.fixture
def hf_cache(tmp_path, payload, monkeypatch):
    """The user's Hugging Face cache holding the LoRA, as huggingface_hub lays it out (a snapshot's link to a blob)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    storage = cache / "models--ByteDance--Hyper-SD"
    blob = storage / "blobs" / hashlib.sha256(payload).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(payload)
    snapshot = storage / "snapshots" / "0123456789abcdef0123456789abcdef01234567" / NAME
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(blob)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    return cache


def test_a_file_in_the_hugging_face_cache_is_used_without_downloading(tmp_path, hub, payload, hf_cache):
    registry = Registry(tmp_path / "models.sqlite3")
    downloader = Downloader(tmp_path / "models", registry, endpoint=hub.url, token=False)
    model = downloader.download(lora_entry())
    assert hub.gets(NAME) == []
    assert model.sha256 == hashlib.sha256(payload).hexdigest()
    registry.close()


def test_a_cached_file_on_another_drive_is_copied_whole_or_not_at_all(tmp_path, hub, payload, hf_cache, monkeypatch):
    """A cache on another drive cannot be linked: the file is copied, counted on the progress bar, and a disk that
    cannot take it (the system's file-size limit standing in for a full disk) leaves no half file under the real
    name, which the next download would have taken for a finished one."""
    import errno
    import os

    from hypersd_desktop.core.errors import AppError
    from hypersd_desktop.models import downloads

    resource = pytest.importorskip("resource")

    def across_drives(source, target):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(downloads.os, "link", across_drives)
    registry = Registry(tmp_path / "models.sqlite3")
    downloader = Downloader(tmp_path / "models", registry, endpoint=hub.url, token=False)
    folder = tmp_path / "models" / "hyper-sd15-1step-lora"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE // 2, hard))
    try:
        with pytest.raises(AppError, match=f"{NAME} was not copied: the drive holding {folder} cannot hold a file "
                                           "this large"):
            downloader.download(lora_entry())
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert list(folder.iterdir()) == [] and registry.find("hyper-sd15-1step-lora") is None

    reports = []
    model = downloader.download(lora_entry(), on_progress=reports.append)
    assert hub.gets(NAME) == [] and (folder / NAME).read_bytes() == payload and not (folder / NAME).is_symlink()
    assert model.sha256 == hashlib.sha256(payload).hexdigest()
    assert reports[-1].done == SIZE and [r.done for r in reports] == sorted(r.done for r in reports)
    registry.close()


def pinned_entry(sha256: str) -> CatalogEntry:
    entry = lora_entry()
    return CatalogEntry(**{**entry.__dict__, "files": (CatalogFile(NAME, SIZE, sha256),)})


def test_a_pinned_hash_catches_junk_from_a_hub_that_publishes_none(setup, hub, payload):
    hosted = hub.add(REPO, NAME, payload, lfs=False)  # no X-Linked-Etag: the hub says nothing of the bytes
    hosted.served = random.Random(8).randbytes(SIZE)
    with pytest.raises(IntegrityError, match="does not match its published sha256"):
        setup.downloader.download(pinned_entry(hashlib.sha256(payload).hexdigest()))
    assert setup.registry.list() == [] and not list(setup.models.rglob("*.safetensors"))


def test_unpinned_weights_from_a_hub_that_publishes_no_hash_are_never_installed(setup, hub, payload):
    hub.add(REPO, NAME, payload, lfs=False)
    with pytest.raises(IntegrityError, match="published no sha256 .* nothing was downloaded"):
        setup.downloader.download(lora_entry())
    assert hub.gets(f"/{REPO}/resolve/main/{NAME}") == []
    assert setup.registry.list() == [] and not list(setup.models.rglob("*.safetensors"))


def test_a_hub_that_publishes_another_file_than_the_pinned_one_downloads_nothing(setup, hub):
    with pytest.raises(IntegrityError, match="The hub now publishes another file as"):
        setup.downloader.download(pinned_entry("0" * 64))
    assert hub.gets(f"/{REPO}/resolve/main/{NAME}") == []


def test_an_unreadable_size_from_the_hub_is_a_clear_error(setup, hub, payload):
    hub.add(REPO, NAME, payload).size_header = "3 MB"
    with pytest.raises(DownloadError, match=r"The hub sent an unreadable size \('3 MB'\)"):
        setup.downloader.download(lora_entry())


@pytest.mark.parametrize("entry_id", ["depth-anything-v2-small", "vitpose-base-simple", "rtdetr-r50vd-coco-o365"])
def test_the_catalogs_map_models_download_as_models_the_engine_reads(tmp_path, hub, setup, depth_model, pose_models,
                                                                     entry_id):
    """Depth Anything V2 Small, ViTPose Base and RT-DETR, as the catalog lists them, served as the hub serves their
    repositories (the tiny models' files under the real names): each lands as a folder the depth or pose estimator
    reads, registered as a depth model, a pose model or a person detector."""
    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine import inspect
    from hypersd_desktop.models.catalog import load_catalog

    folder, kind, check = {"depth-anything-v2-small": (depth_model, ModelKind.DEPTH, inspect.is_depth_model),
                           "vitpose-base-simple": (pose_models[0], ModelKind.POSE, inspect.is_pose_model),
                           "rtdetr-r50vd-coco-o365": (pose_models[1], ModelKind.DETECTOR,
                                                      inspect.is_person_detector)}[entry_id]
    entry = load_catalog().get(entry_id)
    assert entry.kind == kind
    for file in entry.files:
        data = (folder / file.path).read_bytes()
        hub.add(entry.repo, file.path, data, lfs=file.path.endswith(".safetensors"))
    model = setup.downloader.download(entry)
    assert (model.kind, model.layout, model.architecture) == (kind, "diffusers", "")
    assert check(setup.models / entry_id) and model.path == str(setup.models / entry.id)
    assert setup.registry.list(kind=kind)[0].id == entry.id


def test_the_catalogs_upscaler_downloads_as_an_upscaler_the_hires_fix_runs(tmp_path, hub, setup):
    """Real-ESRGAN ×4 as the catalog lists it, served as the hub serves Comfy-Org's repackaging (a small file in
    Real-ESRGAN's key layout under the real name): it lands as an upscaler for either architecture, and it loads."""
    from safetensors.torch import save_file

    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine.upscalers import load_upscaler
    from hypersd_desktop.models.catalog import load_catalog
    from tests.tiny_models import upscaler_state

    entry = load_catalog().get("realesrgan-x4plus")
    assert (entry.kind, entry.layout, entry.architecture) == (ModelKind.UPSCALER, "file", "")
    [file] = entry.files
    save_file(upscaler_state("basicsr", scale=4), str(tmp_path / "served.safetensors"))
    hub.add(entry.repo, file.path, (tmp_path / "served.safetensors").read_bytes())
    model = setup.downloader.download(entry)
    assert model.kind == ModelKind.UPSCALER and not model.architecture
    assert setup.registry.list(kind=ModelKind.UPSCALER)[0].id == "realesrgan-x4plus"
    assert load_upscaler(model.path)[1].scale == 4


def test_the_catalogs_control_loras_download_as_sdxl_controlnets_that_load(tmp_path, hub, setup):
    """Stability's Control-LoRAs as the catalog lists them, each served as the hub serves it (a tiny file in their
    layout under the real name, its hash in place of the pinned one): each lands as an SDXL ControlNet, is read as
    a Control-LoRA, builds on an SDXL UNet, and its name chooses the pictures it takes."""
    import dataclasses
    from pathlib import Path

    import torch

    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine.controlnet_files import load_controlnet
    from hypersd_desktop.engine.inspect import CONTROL_LORA_FORMAT, inspect_file
    from hypersd_desktop.models.catalog import load_catalog
    from hypersd_desktop.ui.control_image import preprocessor_for
    from tests.tiny_models import save_control_lora, sdxl_unet

    unet = sdxl_unet()
    data = save_control_lora(unet, tmp_path / "served.safetensors").read_bytes()
    catalog = load_catalog()
    pictures = {"canny": "canny", "depth": "depth", "sketch": "scribble", "recolor": "none"}
    for what, preprocessor in pictures.items():
        entry = catalog.get(f"control-lora-sdxl-{what}")
        [file] = entry.files
        assert (entry.kind, entry.architecture) == (ModelKind.CONTROLNET, "sdxl")
        assert entry.repo == "stabilityai/control-lora"
        assert 395e6 < file.size < 396e6 and file.sha256 and what in file.path
        hub.add(entry.repo, file.path, data)
        served = dataclasses.replace(entry, files=(dataclasses.replace(
            file, size=len(data), sha256=hashlib.sha256(data).hexdigest()),))
        model = setup.downloader.download(served)
        assert (model.kind, model.architecture) == (ModelKind.CONTROLNET, "sdxl")
        assert Path(model.path).name == Path(file.path).name
        assert inspect_file(model.path).format == CONTROL_LORA_FORMAT
        assert load_controlnet(Path(model.path), torch.float32, unet=unet).config.conditioning_channels == 3
        assert preprocessor_for(model) == preprocessor, (what, model.name)


def test_the_catalogs_ip_adapters_and_image_encoder_download_and_find_each_other(hub, ip_adapters):
    """h94's IP-Adapters and the OpenCLIP ViT-H/14 encoder as the catalog lists them, each served as the hub serves
    it (a tiny file in its layout under the real name): each lands as the kind the app runs, the adapters for their
    architecture, and the library finds the downloaded encoder for an adapter; the message for an adapter without
    one names the catalog's encoder."""
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine.inspect import WeightsKind, inspect_file
    from hypersd_desktop.engine.ip_adapter_files import ENCODER_ENTRIES, EncoderNeed, no_encoder
    from hypersd_desktop.models.library import ModelLibrary

    library = ModelLibrary(AppPaths.default(), endpoint=hub.url)
    adapters = [entry for entry in library.catalog.entries if entry.kind == ModelKind.IP_ADAPTER]
    assert {entry.architecture for entry in adapters} == {"sd15", "sdxl"} and len(adapters) == 5
    served = {"sd15": ip_adapters["sd15"], "sdxl": ip_adapters["sdxl"]}
    for entry in adapters:
        [file] = entry.files
        assert entry.repo == "h94/IP-Adapter" and file.path.endswith(".safetensors")
        hub.add(entry.repo, file.path, served[entry.architecture].read_bytes())
    entry_id, name = ENCODER_ENTRIES["OpenCLIP ViT-H/14"]
    encoder_entry = library.entry(entry_id)
    assert (encoder_entry.kind, encoder_entry.architecture, encoder_entry.name) == (ModelKind.IMAGE_ENCODER, "", name)
    hub.add(encoder_entry.repo, encoder_entry.files[0].path, ip_adapters["encoder file"].read_bytes())

    adapter = library.download("ip-adapter-plus-sd15")
    assert (adapter.kind, adapter.architecture) == (ModelKind.IP_ADAPTER, "sd15")
    assert inspect_file(adapter.path).kind == WeightsKind.IP_ADAPTER
    assert library.image_encoder_for(adapter.path) is None
    encoder = library.download(entry_id)
    assert inspect_file(encoder.path).kind == WeightsKind.IMAGE_ENCODER
    assert library.image_encoder_for(adapter.path) == encoder
    assert library.download("ip-adapter-sdxl-vit-h").architecture == "sdxl"
    message = no_encoder(adapter.path, EncoderNeed(1024, False), "choose another")
    assert f"the Models tab's {name}, or `hypersd-desktop models download {entry_id}`" in message


def test_the_catalogs_tagger_downloads_as_a_tagger_that_describes(hub, setup, tagger):
    """WD SwinV2 Tagger v3 as the catalog lists it, served as the hub serves its repository (the tiny tagger's
    files under the real names, the model as Git LFS): it lands as a tagger folder that describes a picture."""
    from PIL import Image

    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine.tagger import Tagger
    from hypersd_desktop.models.catalog import load_catalog

    entry = load_catalog().get("wd-swinv2-tagger-v3")
    assert (entry.kind, entry.layout, entry.architecture, entry.licence) == (ModelKind.TAGGER, "diffusers", "",
                                                                              "apache-2.0")
    assert [file.path for file in entry.files] == ["model.onnx", "selected_tags.csv"]
    for file in entry.files:
        hub.add(entry.repo, file.path, (tagger / file.path).read_bytes(), lfs=file.path.endswith(".onnx"))
    model = setup.downloader.download(entry)
    assert (model.kind, model.layout, model.path) == (ModelKind.TAGGER, "diffusers", str(setup.models / entry.id))
    described = Tagger(model.path).describe(Image.new("RGB", (32, 32), "red"))
    assert described.tags[0].name == "red_background"
