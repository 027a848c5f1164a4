"""Models downloaded by their Hugging Face address, as people share them, against the local hub server."""

from __future__ import annotations

import json
import re
import struct

import pytest

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.models.addresses import address_entry, repo_parts
from hypersd_desktop.models.catalog import Catalog
from hypersd_desktop.models.downloads import DownloadError
from hypersd_desktop.models.library import ModelLibrary
from hub_server import HubServer

HUB = "https://huggingface.co"


@pytest.mark.parametrize("address, repo, revision, path, name", [
    ("https://huggingface.co/Lykon/dreamshaper-8/blob/main/dreamshaper_8.safetensors", "Lykon/dreamshaper-8", "main",
     "dreamshaper_8.safetensors", "dreamshaper_8"),
    ("https://huggingface.co/ByteDance/Hyper-SD/resolve/main/Hyper-SD15-1step-lora.safetensors?download=true",
     "ByteDance/Hyper-SD", "main", "Hyper-SD15-1step-lora.safetensors", "Hyper-SD15-1step-lora"),
    ('"hf.co/madebyollin/sdxl-vae-fp16-fix/blob/207b116/sdxl.vae.safetensors"', "madebyollin/sdxl-vae-fp16-fix",
     "207b116", "sdxl.vae.safetensors", "sdxl.vae"),
    ("https://huggingface.co/someone/my-model/blob/refs%2Fpr%2F3/unet/diffusion_pytorch_model.fp16.safetensors",
     "someone/my-model", "refs/pr/3", "unet/diffusion_pytorch_model.fp16.safetensors", "my-model unet"),
    ("https://huggingface.co/someone/pixel-lora/resolve/main/pytorch_lora_weights.safetensors", "someone/pixel-lora",
     "main", "pytorch_lora_weights.safetensors", "pixel-lora"),
])
def test_an_address_names_the_repository_revision_and_file(address, repo, revision, path, name):
    entry = address_entry(address, HUB)
    assert (entry.repo, entry.revision, entry.files[0].path, entry.name) == (repo, revision, path, name)
    assert entry.address and entry.layout == "file"
    assert address_entry(address, HUB).id == entry.id  # the same address again: the same download, resumed


@pytest.mark.parametrize("address, said", [
    ("https://openmodeldb.info/models/4x-UltraSharp", "is not a Hugging Face or Civitai address"),
    ("https://huggingface.co/docs/diffusers/index", "names no model"),
    ("https://huggingface.co/someone/model/blob/main/model.ckpt", "model.ckpt is not a .safetensors file"),
    ("https://huggingface.co/someone/model/blob/main/../../x.safetensors", "is not a .safetensors file"),
    ("   ", "Paste the address"),
])
def test_an_address_that_names_no_safetensors_file_says_what_to_give(address, said):
    with pytest.raises(InputError, match=said.replace(".", r"\.")):
        address_entry(address, HUB)


@pytest.mark.parametrize("address, revision", [("https://huggingface.co/Lykon/dreamshaper-8", "main"),
                                               ("huggingface.co/Lykon/dreamshaper-8/tree/v2", "v2")])
def test_a_repositorys_page_names_a_diffusers_model_whose_files_are_listed_when_it_downloads(address, revision):
    entry = address_entry(address, HUB)
    assert (entry.repo, entry.revision, entry.name, entry.layout, entry.files) == (
        "Lykon/dreamshaper-8", revision, "dreamshaper-8", "diffusers", ())


SDXL_REPO = ["model_index.json", "README.md", "scheduler/scheduler_config.json", "text_encoder/config.json",
             "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors", "text_encoder/pytorch_model.bin",
             "text_encoder_2/config.json", "text_encoder_2/model.safetensors", "text_encoder_2/model.fp16.safetensors",
             "tokenizer/merges.txt", "tokenizer/vocab.json", "tokenizer/special_tokens_map.json",
             "tokenizer/tokenizer_config.json", "tokenizer_2/merges.txt", "tokenizer_2/vocab.json",
             "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_flax_model.msgpack", "unet/model.onnx",
             "vae/config.json",
             "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
             "vae_1_0/diffusion_pytorch_model.safetensors", "sd_xl_base_1.0.safetensors",
             "sd_xl_offset_example-lora.safetensors"]


def test_a_repositorys_pipeline_is_taken_in_fp16_without_the_rest_of_the_repository():
    """As the SDXL base repository lays its files out: the pipeline's configs, tokenizers and fp16 weights; not
    the full-precision copies, pickles, Flax or ONNX files, single-file checkpoints or other folders."""
    entry = repo_parts(address_entry("https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0", HUB), SDXL_REPO)
    chosen = [file.path for file in entry.files]
    assert chosen == ["model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                      "text_encoder/model.fp16.safetensors", "text_encoder_2/config.json",
                      "text_encoder_2/model.fp16.safetensors", "tokenizer/merges.txt",
                      "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
                      "tokenizer_2/merges.txt",
                      "tokenizer_2/vocab.json", "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
                      "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"]
    full = [name for name in SDXL_REPO if ".fp16." not in name or not name.startswith("text_encoder_2/")]
    chosen = [file.path for file in repo_parts(address_entry("hf.co/a/b", HUB), full).files]  # one part lacks fp16
    assert "unet/diffusion_pytorch_model.safetensors" in chosen and not any(".fp16." in name for name in chosen)


@pytest.mark.parametrize("names, said", [
    (["README.md", "model_a.safetensors", "model_b.safetensors"], "holds 2 .safetensors files (model_a.safetensors, "
                                                                  "model_b.safetensors): copy the address"),
    (["README.md"], "holds no diffusers pipeline (model_index.json) and no .safetensors file"),
    (["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin"], "has no safetensors weights for "
                                                                                   "its unet"),
])
def test_a_repository_with_nothing_to_take_says_what_to_give(names, said):
    with pytest.raises(InputError, match=re.escape(said)):
        repo_parts(address_entry("https://huggingface.co/a/b", HUB), names)


def test_a_repository_of_one_safetensors_file_is_that_file():
    entry = repo_parts(address_entry("https://huggingface.co/a/b", HUB), ["README.md", "b_v2.safetensors", "x.ckpt"])
    assert (entry.layout, entry.name, [file.path for file in entry.files]) == ("file", "b_v2", ["b_v2.safetensors"])


@pytest.fixture
def hub(online):
    with HubServer() as hub:
        yield hub


@pytest.fixture
def library(hub, app_home):
    library = ModelLibrary(AppPaths.default(), catalog=Catalog(()), endpoint=hub.url, token=False)
    yield library
    library.close()


def test_a_lora_downloaded_by_its_address_is_verified_judged_and_removable(hub, library, hyper_lora, monkeypatch):
    """Hashed once, as it comes in (a 7 GB checkpoint is not read again to register it)."""
    from hypersd_desktop.models import importer

    hashed = []
    monkeypatch.setattr(importer, "sha256_file", lambda path, *args: hashed.append(path))
    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    hub.add("someone/pixel-art", "pixel-art.safetensors", data)
    entry = library.add_address(f"{hub.url}/someone/pixel-art/blob/main/pixel-art.safetensors")
    assert library.entries() == (entry,) and library.add_address(entry.address) is entry
    progress = []
    model = library.download(entry.id, progress.append)
    path = library.paths.models / entry.id / "pixel-art.safetensors"
    assert path.read_bytes() == data and progress[-1].done == progress[-1].total
    assert (model.id, model.name, model.kind, model.architecture, model.source, model.owned) == (
        entry.id, "pixel-art", "lora", "sd15", "download", True)
    assert library.installed_entry(library.entry(entry.id)) == model and library.entry(entry.id).size == len(data)
    assert library.registry.get(entry.id).sha256 == hub.files[("someone/pixel-art", "pixel-art.safetensors")].sha256
    assert hashed == []
    assert library.remove(entry.id) == len(data) and not path.exists()


def test_a_file_the_app_cannot_use_is_deleted_again_saying_what_it_is(hub, library):
    header = json.dumps({"double_blocks.0.img_attn.qkv.lora_A.weight": {"dtype": "F16", "shape": [4, 3072],
                                                                        "data_offsets": [0, 24576]}}).encode()
    hub.add("someone/flux-style", "flux-style.safetensors", struct.pack("<Q", len(header)) + header + bytes(24576))
    entry = library.add_address(f"{hub.url}/someone/flux-style/resolve/main/flux-style.safetensors?download=true")
    with pytest.raises(DownloadError, match=r"^flux-style: a LoRA for FLUX.*The downloaded file was deleted\.$"):
        library.download(entry.id)
    assert not (library.paths.models / entry.id).exists() and library.registry.list() == []


def test_a_download_stopped_part_way_is_listed_after_a_restart_and_resumes(hub, library, hyper_lora):
    from hypersd_desktop.core.errors import CancelledError
    from hypersd_desktop.core.progress import CancelToken

    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    hub.add("someone/pixel-art", "pixel-art.safetensors", data)
    hub.pause_per_64k = 0.05  # 0.25 s for the file: the progress reported every 0.1 s stops it part way
    entry = library.add_address(f"{hub.url}/someone/pixel-art/blob/main/pixel-art.safetensors")
    token = CancelToken()
    with pytest.raises(CancelledError):
        library.download(entry.id, lambda progress: token.cancel() if progress.done > 64 * 1024 else None, token)
    library.close()

    again = ModelLibrary(AppPaths.default(), catalog=Catalog(()), endpoint=hub.url, token=False)
    try:
        (listed,) = again.entries()
        kept = again.downloader.partial(listed)
        assert listed.id == entry.id and 64 * 1024 < kept < len(data)
        again.download(listed.id)
        assert hub.gets("pixel-art.safetensors")[-1] == f"bytes={kept}-"
        assert again.registry.get(entry.id).sha256 == hub.files[("someone/pixel-art", "pixel-art.safetensors")].sha256
    finally:
        again.close()
    third = ModelLibrary(AppPaths.default(), catalog=Catalog(()), endpoint=hub.url, token=False)
    assert third.entries() == ()  # installed: listed among the installed models only
    third.close()


def test_an_address_of_a_file_the_catalog_has_is_its_catalog_entry(app_home):
    library = ModelLibrary(AppPaths.default())
    try:
        address = "https://huggingface.co/ByteDance/Hyper-SD/blob/main/Hyper-SD15-1step-lora.safetensors"
        entry = library.add_address(address)
        assert entry is library.catalog.get("hyper-sd15-1step-lora") and library.addresses == {}
        entry = library.add_address("https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0")
        assert entry is library.catalog.get("sdxl") and library.addresses == {}
        entry = library.add_address("https://huggingface.co/someone/tiny-sd15")  # none the catalog has
        assert library.addresses == {entry.id: entry}
    finally:
        library.close()


def test_a_diffusers_model_is_downloaded_from_its_repositorys_page(hub, library, tiny_sd15):
    """What the pipeline loads, listed by the hub, each file verified; a README and a pickle copy stay behind."""
    for path in sorted(p for p in tiny_sd15.rglob("*") if p.is_file()):
        name = path.relative_to(tiny_sd15).as_posix()
        hub.add("someone/tiny-sd15", name, path.read_bytes(), lfs=name.endswith(".safetensors"))
    hub.add("someone/tiny-sd15", "README.md", b"# tiny", lfs=False)
    hub.add("someone/tiny-sd15", "unet/diffusion_pytorch_model.bin", b"pickle", lfs=True)
    entry = library.add_address(f"{hub.url}/someone/tiny-sd15")
    model = library.download(entry.id)
    folder = library.paths.models / entry.id
    assert (model.id, model.kind, model.architecture, model.layout, model.path) == (
        entry.id, "base", "sd15", "diffusers", str(folder.resolve()))
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == sorted(p.relative_to(tiny_sd15).as_posix() for p in tiny_sd15.rglob("*") if p.is_file())
    assert library.entry(entry.id).size == sum(p.stat().st_size for p in tiny_sd15.rglob("*") if p.is_file())
    assert library.remove(entry.id) > 0 and not folder.exists()


def test_a_repository_listing_is_retried_through_a_hub_hiccup_and_a_missing_one_said(hub, library, tiny_sd15):
    for path in sorted(p for p in tiny_sd15.rglob("*") if p.is_file()):
        name = path.relative_to(tiny_sd15).as_posix()
        hub.add("someone/tiny-sd15", name, path.read_bytes(), lfs=name.endswith(".safetensors"))
    waits = []
    library.downloader.sleep = waits.append
    hub.statuses["api:someone/tiny-sd15"] += [503, 502]
    entry, remote = library.plan(library.add_address(f"{hub.url}/someone/tiny-sd15"))
    files = [p for p in tiny_sd15.rglob("*") if p.is_file()]
    assert len(waits) == 2 and len(remote) == len(entry.files) == len(files)
    with pytest.raises(DownloadError, match=r"someone/elsewhere was not found on the hub \(404\); check the address"):
        library.plan(library.add_address(f"{hub.url}/someone/elsewhere"))
