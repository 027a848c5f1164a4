"""Local import (files, diffusers folders, A1111/ComfyUI folders), the registry, verify and remove."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import ImportStatus
from hypersd_desktop.models.registry import MIGRATIONS, Registry


@pytest.fixture
def a1111(tmp_path, tiny_sd15, hyper_lora, controlnets):
    """An AUTOMATIC1111-style models folder with good, broken, pickle and unknown files."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    import ldm_format
    import tiny_models

    root = tmp_path / "stable-diffusion-webui" / "models"
    checkpoints, loras, control = root / "Stable-diffusion", root / "Lora", root / "ControlNet"
    for folder in (checkpoints, loras, control):
        folder.mkdir(parents=True)
    original = ldm_format.convert_controlnet(load_file(controlnets["sd15"] / "diffusion_pytorch_model.safetensors"), 1, "")
    save_file(original, control / "control_v11p_sd15_canny_fp16.safetensors")
    tiny_models.save_control_lora(tiny_models.sdxl_unet(), control / "control-lora-canny-rank128.safetensors")
    save_file({"input_hint_block.0.weight": torch.zeros(16, 3, 3, 3),  # an SD2.1 ControlNet: 1024-wide text
               "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024)},
              control / "controlnet-sd21-canny.safetensors")
    ldm_format.save_single_file(StableDiffusionPipeline.from_pretrained(tiny_sd15), checkpoints / "tiny-v1.safetensors")
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), loras / "Hyper-SD15-2steps-lora.safetensors")
    (checkpoints / "old-model.ckpt").write_bytes(b"\x80\x02}q\x00.")
    (loras / "cut.safetensors").write_bytes(hyper_lora("Hyper-SD15-4steps-lora").read_bytes()[:3000])
    save_file({"something.else": torch.zeros(3)}, str(loras / "mystery.safetensors"))
    (loras / "Hyper-SD15-2steps-lora.preview.png").write_bytes(b"\x89PNG not really")
    shutil.copytree(tiny_sd15, root / "diffusers" / "tiny-diffusers")
    return root


def test_a1111_folder_lists_every_file_correctly(library, a1111):
    events = []
    items = {item.path.rsplit("/", 1)[-1]: item for item in library.import_path(a1111, on_progress=events.append)}
    assert set(items) == {"tiny-v1.safetensors", "Hyper-SD15-2steps-lora.safetensors", "old-model.ckpt",
                          "cut.safetensors", "mystery.safetensors", "tiny-diffusers",
                          "control_v11p_sd15_canny_fp16.safetensors", "control-lora-canny-rank128.safetensors",
                          "controlnet-sd21-canny.safetensors"}
    assert (items["tiny-v1.safetensors"].status, items["tiny-v1.safetensors"].kind,
            items["tiny-v1.safetensors"].architecture) == (ImportStatus.IMPORTED, "base", "sd15")
    assert (items["Hyper-SD15-2steps-lora.safetensors"].status, items["Hyper-SD15-2steps-lora.safetensors"].kind) == (
        ImportStatus.IMPORTED, "lora")
    assert items["tiny-diffusers"].status == ImportStatus.IMPORTED and items["tiny-diffusers"].architecture == "sd15"
    assert items["old-model.ckpt"].status == ImportStatus.REFUSED and "pickle" in items["old-model.ckpt"].reason
    assert items["cut.safetensors"].status == ImportStatus.BROKEN and "truncated" in items["cut.safetensors"].reason
    assert items["mystery.safetensors"].status == ImportStatus.UNSUPPORTED
    control = items["control_v11p_sd15_canny_fp16.safetensors"]
    assert (control.status, control.kind, control.architecture) == (ImportStatus.IMPORTED, "controlnet", "sd15")
    control_lora = items["control-lora-canny-rank128.safetensors"]
    assert (control_lora.status, control_lora.kind, control_lora.architecture) == (ImportStatus.IMPORTED, "controlnet",
                                                                                  "sdxl")
    sd21 = items["controlnet-sd21-canny.safetensors"]
    assert sd21.status == ImportStatus.UNSUPPORTED and "a ControlNet for SD2" in sd21.reason

    lora = library.registry.get("hyper-sd15-2steps-lora")
    data = (a1111 / "Lora" / "Hyper-SD15-2steps-lora.safetensors").read_bytes()
    assert lora.sha256 == hashlib.sha256(data).hexdigest() and lora.short_hash == lora.sha256[:10]
    assert lora.recipe == "Hyper-SD15-2steps-lora" and lora.source == "import-reference" and not lora.owned
    done = [event.done for event in events]
    assert done == sorted(done) and events[-1].done == events[-1].total

    again = library.import_path(a1111)
    imported = {item.path for item in items.values() if item.status == ImportStatus.IMPORTED}
    assert {item.status for item in again if item.path in imported} == {ImportStatus.ALREADY}
    assert len(library.registry.list()) == 5


def test_comfyui_folder_and_single_file(library, tmp_path, hyper_lora):
    comfy = tmp_path / "ComfyUI" / "models" / "loras"
    comfy.mkdir(parents=True)
    shutil.copy(hyper_lora("Hyper-SDXL-1step-lora"), comfy)
    (item,) = library.import_path(comfy.parent.parent)
    assert (item.status, item.kind, item.architecture) == (ImportStatus.IMPORTED, "lora", "sdxl")
    (single,) = library.import_path(hyper_lora("Hyper-SD15-8steps-CFG-lora"))
    assert single.status == ImportStatus.IMPORTED


def test_copy_import_then_remove_frees_space_but_reference_is_kept(library, hyper_lora, tmp_path):
    source = tmp_path / "mine" / "style.safetensors"
    source.parent.mkdir()
    shutil.copy(hyper_lora("Hyper-SD15-4steps-lora"), source)
    (copied,) = library.import_path(source, copy=True)
    model = library.registry.get(copied.model_id)
    assert model.owned and model.path.startswith(str(library.paths.models))
    assert library.remove(model.id) == source.stat().st_size
    assert source.exists() and not (library.paths.models / model.id).exists()

    (referenced,) = library.import_path(source)
    assert library.remove(referenced.model_id) == 0
    assert source.exists()
    assert library.registry.find(referenced.model_id) is None


def test_a_copying_import_counts_the_copy_in_its_progress_and_stops_mid_copy_when_cancelled(library, tiny_sd15,
                                                                                           tmp_path):
    """Copying a 7 GB SDXL folder takes as long as hashing it: the progress counts both (reaching the total at the
    end) and a cancel during the copy stops it there, leaving no part of the copy and nothing registered."""
    from hypersd_desktop.core.errors import CancelledError
    from hypersd_desktop.core import files
    from hypersd_desktop.core.progress import CancelToken

    reports = []
    (item,) = library.import_path(tiny_sd15, copy=True, on_progress=reports.append)
    assert item.status == ImportStatus.IMPORTED
    size = sum(p.stat().st_size for p in tiny_sd15.rglob("*") if p.is_file())
    assert reports[-1].total == reports[-1].done == 2 * size
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    library.remove(item.model_id)

    class CancelOnceCopying(CancelToken):  # the user presses Cancel once part of the copy is on disk
        def raise_if_cancelled(self) -> None:
            if any(library.paths.models.rglob("*.safetensors")):
                self.cancel()
            super().raise_if_cancelled()

    original = files.COPY_CHUNK
    files.COPY_CHUNK = 64 * 1024  # the tiny model's files in several chunks, as a real model's are
    try:
        with pytest.raises(CancelledError):
            library.import_path(tiny_sd15, copy=True, cancel=CancelOnceCopying())
    finally:
        files.COPY_CHUNK = original
    assert not any(library.paths.models.iterdir()) and library.registry.list() == []


def test_a_copy_the_disk_cannot_take_ends_the_import_saying_why(library, hyper_lora, tmp_path):
    """A full disk (here the system's limit on file size, the same failed write) is no broken model file: the
    import stops saying why, keeping no part of the copy and registering nothing."""
    from hypersd_desktop.core.errors import AppError

    resource = pytest.importorskip("resource")
    source = tmp_path / "style.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-4steps-lora"), source)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (source.stat().st_size // 2, hard))
    try:
        with pytest.raises(AppError, match="style.safetensors was not copied: the drive holding .* cannot hold a file "
                                           "this large"):
            library.import_path(source, copy=True)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert not any(path.is_file() for path in library.paths.models.rglob("*")) and library.registry.list() == []


def test_a_hugging_face_cache_snapshot_is_copied_as_files(library, tiny_sd15, tmp_path):
    """The hub's cache keeps a snapshot's files as links into its blobs folder: a copy holds the files."""
    import os

    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "0123abcd"
    blobs = tmp_path / "hub" / "models--org--tiny" / "blobs"
    blobs.mkdir(parents=True)
    for file in tiny_sd15.rglob("*"):
        if file.is_file():
            blob = blobs / hashlib.sha256(file.read_bytes()).hexdigest()
            shutil.copy(file, blob)
            link = snapshot / file.relative_to(tiny_sd15)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(blob, link.parent), link)
    (item,) = library.import_path(snapshot, copy=True)
    model = library.registry.get(item.model_id)
    copied = [p for p in Path(model.path).rglob("*") if p.is_file()]
    assert model.name == "tiny" and copied and not any(p.is_symlink() for p in copied)
    assert (Path(model.path) / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (tiny_sd15 / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert all(result.ok for result in library.verify(item.model_id))


def test_verify_reports_a_changed_file(library, hyper_lora, tmp_path):
    path = tmp_path / "lora.safetensors"
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), path)
    (item,) = library.import_path(path)
    assert all(result.ok for result in library.verify())
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    (result,) = library.verify(item.model_id)
    assert not result.ok and "sha256 differs" in result.problems[0]
    path.unlink()
    (result,) = library.verify(item.model_id)
    assert "missing" in result.problems[0]


def test_names_resolve_to_paths(library, hyper_lora):
    (item,) = library.import_path(hyper_lora("Hyper-SD15-1step-lora"))
    assert library.resolve("hyper-sd15-1step-lora") == str(hyper_lora("Hyper-SD15-1step-lora"))
    assert library.resolve("Hyper-SD15-1step-lora") == str(hyper_lora("Hyper-SD15-1step-lora"))
    with pytest.raises(InputError, match="neither a file nor an installed model"):
        library.resolve("no-such-model")


def test_models_used_by_a_request_are_marked_used(library, hyper_lora):
    from hypersd_desktop.engine import GenerationRequest, LoraSpec

    used, unused = hyper_lora("Hyper-SD15-1step-lora"), hyper_lora("Hyper-SD15-2steps-lora")
    library.import_path(used)
    library.import_path(unused)
    request = GenerationRequest(prompt="x", base_model="/not/installed", loras=(LoraSpec(str(used)),))
    library.registry.mark_used(request.model_paths())
    marked = {model.name: model.last_used for model in library.registry.list()}
    assert marked["Hyper-SD15-1step-lora"] is not None and marked["Hyper-SD15-2steps-lora"] is None


def test_registry_migrates_and_survives_reopening(tmp_path):
    registry = Registry(tmp_path / "r.sqlite3")
    version = registry._db.execute("PRAGMA user_version")[0][0]
    registry.close()
    again = Registry(tmp_path / "r.sqlite3")
    assert again._db.execute("PRAGMA user_version")[0][0] == version == len(MIGRATIONS)
    assert again._db.execute("PRAGMA journal_mode")[0][0] == "wal"
    again.close()


def test_a_registry_from_a_later_version_still_lists_its_models(library, hyper_lora):
    """Going back to an older build after a newer one added columns: the models are listed, the new columns
    left alone."""
    (item,) = library.import_path(hyper_lora("Hyper-SD15-2steps-lora"))
    library.registry._db.execute("ALTER TABLE models ADD COLUMN from_the_future TEXT")
    library.registry._db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    again = Registry(library.registry.database)
    try:
        assert [model.id for model in again.list()] == [item.model_id]
    finally:
        again.close()


def test_catalog_lists_every_hyper_sd_file_and_sizes():
    from hypersd_desktop.engine.recipes import RECIPES
    from hypersd_desktop.models.catalog import load_catalog

    catalog = load_catalog()
    assert {r.id for r in RECIPES} <= {e.recipe for e in catalog.entries if e.recipe}
    base = catalog.get("sd15")
    assert all(".fp16." in f.path for f in base.files if f.path.endswith(".safetensors"))
    assert {f.path.split("/")[0] for f in base.files} >= {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}
    assert 1.9e9 < base.size + catalog.get("hyper-sd15-1step-lora").size < 2.6e9
    assert 7.0e9 < catalog.get("sdxl").size + catalog.get("hyper-sdxl-1step-lora").size < 8.2e9
    assert {e.id for e in catalog.entries} >= {"taesd", "taesdxl", "sdxl-vae-fp16-fix", "controlnet-sd15-canny",
                                                "controlnet-sd15-scribble", "controlnet-sdxl-canny",
                                                "controlnet-sdxl-union-promax"}


def test_image_metadata_hashes_come_from_the_registry_without_rehashing(library, hyper_lora, monkeypatch):
    import hypersd_desktop.core.hashes as hashes

    (item,) = library.import_path(hyper_lora("Hyper-SD15-4steps-lora"))
    model = library.registry.get(item.model_id)

    def no_rehash(path, *args, **kwargs):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(hashes, "sha256_file", no_rehash)
    assert library.hash_cache().short_hash(hyper_lora("Hyper-SD15-4steps-lora")) == model.short_hash


def test_registry_readers_on_other_threads_never_see_a_half_written_model(tmp_path):
    """The GUI thread lists models while a download or import thread adds them: each model is
    seen with all its files or not at all."""
    import threading

    from hypersd_desktop.models.registry import InstalledModel, ModelFile

    registry = Registry(tmp_path / "models.sqlite3")
    files = tuple(ModelFile(f"unet/part-{k}.safetensors", 10, "0" * 64) for k in range(3))
    seen, errors, done = [], [], threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                for model in registry.list():
                    seen.append(len(model.files))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for k in range(150):
        registry.add(InstalledModel(f"m{k}", f"model {k}", "base", "sd15", "diffusers", f"/models/m{k}", 30, None, None,
                                    "import-reference", False, files=files))
        if k % 3 == 0:
            registry.remove(f"m{k}")
    done.set()
    for reader in readers:
        reader.join()
    registry.close()
    assert errors == [] and seen and set(seen) == {3}


def test_a_controlnet_folder_is_named_by_its_folder_not_its_generic_weights_file(library, tmp_path):
    """A downloaded ControlNet folder holds `diffusion_pytorch_model.safetensors`; the library and the
    Draw tab's list must not call every such model "diffusion_pytorch_model"."""
    folder = tmp_path / "control_v11p_sd15_scribble"
    folder.mkdir()
    save_file({"controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 3, 3, 3),
               "controlnet_down_blocks.0.weight": torch.zeros(320, 320, 1, 1),
               "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 768)},
              str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text("{}")
    (item,) = library.import_path(folder)
    assert item.status == ImportStatus.IMPORTED, item.reason
    assert library.registry.find(item.model_id).name == "control_v11p_sd15_scribble"


def _hub_cache_snapshot(hub, repository: str, source) -> Path:
    """`source`'s files laid out as huggingface_hub caches a download: blobs named by hash, and a snapshot folder
    named by the commit holding links to them under the files' names."""
    import os

    cache = hub / f"models--{repository.replace('/', '--')}"
    snapshot = cache / "snapshots" / hashlib.sha1(repository.encode()).hexdigest()
    for file in (p for p in sorted(source.rglob("*")) if p.is_file()):
        blob = cache / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, blob)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return snapshot


def test_a_hugging_face_cache_imports_with_each_model_named_by_its_repository(library, tmp_path, tiny_sd15,
                                                                             controlnets, depth_model):
    """~/.cache/huggingface/hub, imported whole: a pipeline, a ControlNet and a depth model, each in a snapshot
    folder named by a commit, are known by their repository's names."""
    hub = tmp_path / "huggingface" / "hub"
    _hub_cache_snapshot(hub, "stable-diffusion-v1-5/stable-diffusion-v1-5", tiny_sd15)
    _hub_cache_snapshot(hub, "lllyasviel/control_v11p_sd15_canny", controlnets["sd15"])
    _hub_cache_snapshot(hub, "depth-anything/Depth-Anything-V2-Small-hf", depth_model)
    items = library.import_path(hub)
    assert [item.status for item in items] == [ImportStatus.IMPORTED] * 3, [item.reason for item in items]
    names = {model.kind: model.name for model in library.registry.list()}
    assert names == {"base": "stable-diffusion-v1-5", "controlnet": "control_v11p_sd15_canny",
                     "depth": "Depth-Anything-V2-Small-hf"}


def test_ip_adapters_and_their_image_encoders_import_as_comfyui_and_h94_keep_them(library, tmp_path, ip_adapters):
    """ComfyUI's ipadapter and clip_vision folders, and h94/IP-Adapter's layout (the encoder a transformers folder
    beside the adapters, with its pickle copy), imported whole; an encoder named only `image_encoder` is named by
    what it is."""
    comfy, h94 = tmp_path / "ComfyUI" / "models", tmp_path / "IP-Adapter" / "models"
    for folder in (comfy / "ipadapter", comfy / "clip_vision", h94):
        folder.mkdir(parents=True)
    shutil.copy(ip_adapters["sd15"], comfy / "ipadapter" / "ip-adapter_sd15.safetensors")
    shutil.copy(ip_adapters["encoder file"], comfy / "clip_vision" / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors")
    shutil.copy(ip_adapters["sdxl"], h94 / "ip-adapter_sdxl_vit-h.safetensors")
    shutil.copytree(ip_adapters["encoder"], h94 / "image_encoder")
    (h94 / "image_encoder" / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    items = library.import_path(tmp_path)
    assert [item.status for item in items] == [ImportStatus.IMPORTED] * 4, [item.reason for item in items]
    models = {model.name: model for model in library.registry.list()}
    assert {name: model.kind for name, model in models.items()} == {
        "ip-adapter_sd15": "ip-adapter", "ip-adapter_sdxl_vit-h": "ip-adapter",
        "CLIP-ViT-H-14-laion2B-s32B-b79K": "image-encoder", "CLIP image encoder (16 wide)": "image-encoder"}
    assert models["CLIP image encoder (16 wide)"].path == str(h94 / "image_encoder")
    assert models["CLIP image encoder (16 wide)"].layout == "diffusers"


def _register(library, path, kind, architecture=None, catalog_id=None):
    from hypersd_desktop.models.registry import InstalledModel

    return library.registry.add(InstalledModel(
        id=path.stem, name=path.stem, kind=kind, architecture=architecture, layout="file", path=str(path),
        size=path.stat().st_size, sha256=None, short_hash=None, source="import-reference", owned=False,
        catalog_id=catalog_id))


def _weights(path, *keys):
    save_file({key: torch.zeros(1) for key in keys}, str(path))
    return path


def test_the_automatic_vae_follows_a1111s_file_beside_then_the_catalog_then_the_models_own(library, tmp_path):
    from hypersd_desktop.models.catalog import CATALOG_VAES

    whole = _weights(tmp_path / "whole.safetensors", "model.diffusion_model.x", "first_stage_model.x")
    bare = _weights(tmp_path / "bare.safetensors", "model.diffusion_model.x")
    vaes = tmp_path / "vae"
    vaes.mkdir()
    assert library.vae_for(str(whole), "sd15") is None, "the model's own"
    assert library.vae_for(str(bare), "sd15") is None, "none installed: loading says what to install"
    anime = _register(library, _weights(vaes / "kl-f8-anime2.safetensors", "decoder.x"), "vae")
    assert library.vae_for(str(bare), "sd15") is None, "a VAE that does not say its architecture is not guessed"
    made_for = _register(library, _weights(vaes / "a-sd15-vae.safetensors", "decoder.x"), "vae", "sd15")
    assert library.vae_for(str(bare), "sd15") == made_for.path
    catalog = _register(library, _weights(vaes / "vae-ft-mse.safetensors", "decoder.x"), "vae", "sd15",
                        CATALOG_VAES["sd15"])
    xl = _register(library, _weights(vaes / "sdxl-fp16-fix.safetensors", "decoder.x"), "vae", "sdxl", CATALOG_VAES["sdxl"])
    assert library.vae_for(str(bare), "sd15") == catalog.path
    assert library.vae_for(str(whole), "sd15") is None, "a model with a VAE keeps it"
    assert library.vae_for(str(whole), "sdxl") == xl.path, "SDXL decodes in fp16 with the fp16-safe VAE"
    assert [vae.path for vae in library.vaes_for("sd15")] == [catalog.path, made_for.path, anime.path]
    assert [vae.path for vae in library.vaes_for("sdxl")] == [xl.path, anime.path]
    flux = tmp_path / "ae.safetensors"  # registered before imports told a FLUX VAE apart: not offered
    save_file({"decoder.conv_in.weight": torch.zeros(8, 16, 3, 3), "decoder.up.0.block.0.conv1.weight": torch.zeros(1)},
              str(flux))
    _register(library, flux, "vae")
    assert [vae.path for vae in library.vaes_for("sd15")] == [catalog.path, made_for.path, anime.path]

    beside = _weights(tmp_path / "whole.vae.safetensors", "decoder.x")
    assert library.vae_for(str(whole), "sd15") == str(beside), "AUTOMATIC1111's <checkpoint>.vae.safetensors"
    copied = vaes / "copied"
    copied.mkdir()
    shutil.move(beside, copied / beside.name)
    pair = _register(library, copied / beside.name, "vae")
    assert library.vae_for(str(whole), "sd15") == pair.path, "the pair imported together, copied apart"
    assert library.vae_for(str(bare)) is None, "a file that is no model: left to loading to explain"


def test_an_imported_vae_is_for_the_architecture_its_hash_or_its_diffusers_config_says(library, tmp_path, monkeypatch):
    """A VAE's weights do not say which model's latents it decodes: a well-known file's hash does, and so does the
    latent scaling factor in the config beside a diffusers VAE's weights."""
    import json

    from hypersd_desktop.models import importer

    plain = _weights(tmp_path / "some-vae.safetensors", "decoder.up.0.block.0.conv1.weight", "encoder.conv_in.weight")
    known = _weights(tmp_path / "known-vae.safetensors", "decoder.up.0.block.0.conv1.weight", "decoder.conv_out.weight")
    folder = tmp_path / "sdxl-vae"
    folder.mkdir()
    _weights(folder / "diffusion_pytorch_model.safetensors", "decoder.up_blocks.0.resnets.0.conv1.weight",
             "encoder.conv_out.weight")
    (folder / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "scaling_factor": 0.13025}))
    monkeypatch.setitem(importer.KNOWN_VAES, hashlib.sha256(known.read_bytes()).hexdigest(), "sd15")
    imported = {}
    for path in (plain, known, folder / "diffusion_pytorch_model.safetensors"):
        (item,) = library.import_path(path)
        assert (item.status, item.kind) == (ImportStatus.IMPORTED, "vae"), item.reason
        imported[path.parent.name if path.parent != tmp_path else path.stem] = item.architecture
    assert imported == {"some-vae": None, "known-vae": "sd15", "sdxl-vae": "sdxl"}
    assert library.registry.get("sdxl-vae").architecture == "sdxl"


def test_an_installed_model_resolves_by_its_file_name_as_other_tools_name_it(library, tmp_path):
    from hypersd_desktop.models.registry import InstalledModel

    path = _weights(tmp_path / "vae-ft-mse-840000-ema-pruned.safetensors", "decoder.up.0.block.0.conv1.weight")
    library.registry.add(InstalledModel(
        id="sd-vae-ft-mse", name="SD1.5 VAE (ft-MSE)", kind="vae", architecture="sd15", layout="file", path=str(path),
        size=1, sha256=None, short_hash=None, source="download", owned=True, catalog_id="sd-vae-ft-mse"))
    assert library.resolve("vae-ft-mse-840000-ema-pruned") == str(path)  # as A1111's `VAE:` field names it
    assert library.resolve("VAE-ft-mse-840000-ema-pruned.safetensors") == str(path)  # with its extension (job files)
    assert library.resolve("SD1.5 VAE (ft-MSE)") == library.resolve("sd-vae-ft-mse") == str(path)
    with pytest.raises(InputError, match="neither a file nor an installed model"):
        library.resolve("vae-ft-mse")


def test_a_model_whose_file_name_is_no_utf8_text_is_listed_and_the_rest_imported(library, hyper_lora, tmp_path):
    """A LoRA named café in Latin-1 (a Linux file name is bytes) cannot be kept in the registry by its name: it is
    listed as not added, saying why and what to do, and the folder's other models go in."""
    import os

    folder = tmp_path / "loras"
    folder.mkdir()
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), folder / "Hyper-SD15-2steps-lora.safetensors")
    try:
        odd = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.safetensors"))
        shutil.copy(hyper_lora("Hyper-SD15-1step-lora"), odd)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names (macOS, Windows)")
    items = sorted(library.import_path(folder), key=lambda item: item.path)
    assert [(Path(item.path).name, item.status) for item in items] == [
        ("Hyper-SD15-2steps-lora.safetensors", ImportStatus.IMPORTED), ("caf\ufffd.safetensors", ImportStatus.BROKEN)]
    assert items[1].reason == "its name is not UTF-8 text (a file from an older system or drive); rename it to add it"


def test_taggers_import_as_the_hub_comfyui_and_a1111s_tagger_keep_them(library, tmp_path, tagger):
    """A WD tagger's folder as the hub has it, ComfyUI's WD14 Tagger's `NAME.onnx` with `NAME.csv` beside it, and
    the Hugging Face cache's snapshot folder A1111's Tagger extension downloads into, found in a models folder
    among other files; a copied pair moves with both its files, and a folder whose tag list is no tag list is
    named broken."""
    from hypersd_desktop.engine.tagger import Tagger, tagger_files

    models = tmp_path / "models"
    comfy = models / "ComfyUI" / "custom_nodes" / "ComfyUI-WD14-Tagger" / "models"
    comfy.mkdir(parents=True)
    shutil.copy(tagger / "model.onnx", comfy / "wd-v1-4-moat-tagger-v2.onnx")
    shutil.copy(tagger / "selected_tags.csv", comfy / "wd-v1-4-moat-tagger-v2.csv")
    (comfy / "lone.onnx").write_bytes((tagger / "model.onnx").read_bytes())  # no tag list: not a tagger
    snapshot = models / "hub" / "models--SmilingWolf--wd-vit-tagger-v3" / "snapshots" / "0123abcd"
    shutil.copytree(tagger, snapshot)
    shutil.copytree(tagger, models / "wd-swinv2-tagger-v3")
    broken = shutil.copytree(tagger, models / "damaged-tagger")
    (broken / "selected_tags.csv").write_text("id,word\n1,cat\n", encoding="utf-8")
    items = library.import_path(models)
    assert sorted((Path(item.path).name, item.status) for item in items) == [
        ("0123abcd", ImportStatus.IMPORTED), ("damaged-tagger", ImportStatus.BROKEN),
        ("wd-swinv2-tagger-v3", ImportStatus.IMPORTED), ("wd-v1-4-moat-tagger-v2.onnx", ImportStatus.IMPORTED)]
    assert "no `name` column" in next(item.reason for item in items if item.status == ImportStatus.BROKEN)
    found = {model.name: model for model in library.registry.list(kind="tagger")}
    assert sorted(found) == ["wd-swinv2-tagger-v3", "wd-v1-4-moat-tagger-v2", "wd-vit-tagger-v3"]
    assert found["wd-v1-4-moat-tagger-v2"].layout == "file" and found["wd-vit-tagger-v3"].layout == "diffusers"
    assert [file.path for file in found["wd-swinv2-tagger-v3"].files] == ["model.onnx", "selected_tags.csv"]
    assert [result.problems for result in library.verify()] == [()] * 3
    (comfy / "wd-v1-4-moat-tagger-v2.csv").write_text("tag_id,name,category,count\n1,changed,0,1\n")
    assert [problem for result in library.verify() for problem in result.problems] == [
        "wd-v1-4-moat-tagger-v2.csv has changed (sha256 differs)"]
    shutil.copy(tagger / "selected_tags.csv", comfy / "wd-v1-4-moat-tagger-v2.csv")
    [copied] = library.import_path(comfy / "wd-v1-4-moat-tagger-v2.onnx", copy=True)
    assert copied.status == ImportStatus.IMPORTED
    moved = library.registry.get(copied.model_id)
    assert moved.owned and all(path.is_file() for path in tagger_files(moved.path))
    assert Tagger(moved.path).tags == Tagger(tagger).tags
    library.remove(moved.id)
    assert not Path(moved.path).parent.exists()


def test_a_models_folder_used_in_place_is_looked_through_again_for_models_added_since(library, hyper_lora, tmp_path):
    """An A1111 or ComfyUI models folder imported by reference is linked: `sync_folders` imports what was added
    there since (a LoRA downloaded into it), passes over what is installed, and leaves out a model the person
    removed until it is imported again by hand. A copy, a folder without models and the app's own folder are not
    linked; a folder inside a linked one is not linked twice."""
    models = tmp_path / "ComfyUI" / "models"
    loras = models / "loras"
    loras.mkdir(parents=True)
    shutil.copy(hyper_lora("Hyper-SD15-4steps-lora"), loras / "first.safetensors")
    (models / "notes.txt").write_text("downloaded from …")
    (loras / "._first.safetensors").write_bytes(b"\x00\x05\x16\x07")  # a Mac's companion file: passed over
    (first,) = library.import_path(models)
    assert first.status == ImportStatus.IMPORTED and library.registry.linked_folders() == [models.resolve()]
    assert library.sync_folders() and all(item.status == ImportStatus.ALREADY for item in library.sync_folders())

    shutil.copy(hyper_lora("Hyper-SD15-8steps-lora"), loras / "second.safetensors")
    synced = {Path(item.path).name: item.status for item in library.sync_folders()}
    assert synced == {"first.safetensors": ImportStatus.ALREADY, "second.safetensors": ImportStatus.IMPORTED}
    assert library.registry.find(str((loras / "second.safetensors").resolve())) is not None

    assert library.remove(first.model_id) == 0 and (loras / "first.safetensors").exists()
    assert [Path(item.path).name for item in library.sync_folders()] == ["second.safetensors"]  # left out
    (again,) = library.import_path(loras / "first.safetensors")  # by hand: back, and in the looks again
    assert again.status == ImportStatus.IMPORTED
    assert len(library.sync_folders()) == 2

    library.import_path(loras)  # inside the linked folder: one link
    empty = tmp_path / "Downloads"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    library.import_path(empty)
    copied = tmp_path / "to-copy"
    copied.mkdir()
    shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), copied / "copied.safetensors")
    library.import_path(copied, copy=True)
    assert not library.link_folder(library.paths.models)
    assert library.registry.linked_folders() == [models.resolve()]

    above = tmp_path / "ComfyUI"  # a folder above the linked one takes its place
    assert library.link_folder(above) and library.registry.linked_folders() == [above.resolve()]
    shutil.rmtree(tmp_path / "ComfyUI")  # a drive unplugged: passed over
    assert library.sync_folders() == []
