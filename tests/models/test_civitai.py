"""Models downloaded by their Civitai address, as people copy them, against a local server speaking Civitai's API."""

from __future__ import annotations

import json
import re
import struct
import urllib.parse
from pathlib import Path

import pytest
from safetensors.torch import save_file

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.models.addresses import address_entry
from hypersd_desktop.models.catalog import Catalog
from hypersd_desktop.models.civitai import civitai_plan, search_results
from hypersd_desktop.models.downloads import DownloadError
from hypersd_desktop.models.library import ModelLibrary
from civitai_server import CivitaiFile, CivitaiServer, CivitaiVersion

HUB = "https://huggingface.co"
SHA = "AB" * 32


@pytest.mark.parametrize("address, repo, revision, name", [
    ("https://civitai.com/models/4384/dreamshaper", "civitai.com/models/4384", "latest", "dreamshaper"),
    ("https://civitai.com/models/4384/dreamshaper?modelVersionId=128713", "civitai.com/models/4384", "128713",
     "dreamshaper"),
    ("civitai.com/models/4384?modelVersionId=128713", "civitai.com/models/4384", "128713", "Civitai model 4384"),
    ("https://civitai.com/api/download/models/128713?type=Model&format=SafeTensor&size=pruned&fp=fp16",
     "civitai.com/models/?version=128713", "128713", "Civitai version 128713"),
    ("urn:air:sd1:checkpoint:civitai:4384@128713", "civitai.com/models/4384", "128713", "Civitai model 4384"),
    ('"https://civitai.green/models/133005/juggernaut-xl"', "civitai.com/models/133005", "latest", "juggernaut xl"),
    ("https://civitai.com/api/v1/model-versions/by-hash/879DB523C3", "civitai.com/models/?hash=879db523c3",
     "hash:879db523c3", "the file with hash 879db523c3"),
])
def test_a_civitai_address_names_the_model_and_its_version(address, repo, revision, name):
    entry = address_entry(address, HUB)
    assert (entry.repo, entry.revision, entry.name, entry.layout, entry.files) == (repo, revision, name, "file", ())
    assert entry.on_civitai and address_entry(address, HUB).id == entry.id  # the same address: the same download


@pytest.mark.parametrize("address, said", [
    ("https://civitai.com/images/41235", "names no model on Civitai"),
    ("https://civitai.com/user/someone/models", "names no model on Civitai"),
    ("https://tensor.art/models/612345", "is not a Hugging Face or Civitai address"),
])
def test_an_address_of_something_else_says_what_to_copy(address, said):
    with pytest.raises(InputError, match=said):
        address_entry(address, HUB)


def version(files: list[dict], model_type: str = "Checkpoint", base_model: str = "SDXL 1.0") -> dict:
    """A model version as Civitai's API describes it."""
    return {"id": 128713, "modelId": 4384, "name": "v8", "baseModel": base_model,
            "model": {"name": "DreamShaper", "type": model_type}, "files": files}


def civitai_file(name: str, format: str = "SafeTensor", size: str = "pruned", fp: str = "fp16", primary=False,
                 kind: str = "Model", kb: float = 2082642.3046875) -> dict:
    return {"name": name, "type": kind, "sizeKB": kb, "primary": primary, "hashes": {"SHA256": SHA},
            "metadata": {"format": format, "size": size, "fp": fp},
            "downloadUrl": f"https://civitai.com/api/download/models/128713?type={kind}&format={format}"}


def plan(answer: dict, address: str = "https://civitai.com/models/4384/dreamshaper"):
    return civitai_plan(address_entry(address, HUB), answer)


def test_the_safetensors_model_file_is_taken_and_its_size_and_sha256_published():
    """A version with a pickle as its primary file, a safetensors one beside it, its VAE and training data."""
    answer = version([civitai_file("dreamshaper_8.ckpt", format="PickleTensor", primary=True),
                      civitai_file("dreamshaper_8.safetensors"),
                      civitai_file("vae.safetensors", kind="VAE"), civitai_file("data.zip", "Other", kind="Training Data")])
    entry, remote = plan(answer)
    assert (entry.name, entry.kind, entry.architecture, [f.path for f in entry.files]) == (
        "DreamShaper v8", "base", "sdxl", ["dreamshaper_8.safetensors"])
    assert (remote.size, remote.sha256, remote.commit) == (2132625720, SHA.lower(), "128713")
    assert remote.url.startswith("https://civitai.com/api/download/models/128713") and entry.size == remote.size


def test_a_file_listed_without_its_download_link_is_downloaded_by_its_versions():
    listed = {key: value for key, value in civitai_file("a.safetensors").items() if key != "downloadUrl"}
    assert plan(version([listed]))[1].url == "https://civitai.com/api/download/models/128713"


def test_the_download_links_choice_of_file_is_kept():
    answer = version([civitai_file("model_pruned.safetensors", primary=True),
                      civitai_file("model_full.safetensors", size="full", fp="fp32")])
    address = "https://civitai.com/api/download/models/128713?type=Model&format=SafeTensor&size=full&fp=fp32"
    assert plan(answer, address)[1].path == "model_full.safetensors"
    assert plan(answer)[1].path == "model_pruned.safetensors"  # the page: the primary file


def test_a_models_page_takes_its_newest_version_and_names_made_unsafe_for_a_folder_are_mended():
    newest = {**version([civitai_file('pixel:art "v2"/final.safetensors', primary=True)], base_model="Pony"), "id": 9}
    answer = {"id": 4384, "name": "Pixel Art", "type": "LORA", "modelVersions": [newest, version([])]}
    entry, remote = plan(answer)
    assert (entry.name, entry.kind, entry.architecture, remote.path, remote.commit) == (
        "Pixel Art v8", "lora", "sdxl", "pixel_art _v2__final.safetensors", "9")


@pytest.mark.parametrize("base_model, architecture", [("SD 1.5", "sd15"), ("SD 1.5 Hyper", "sd15"),
                                                      ("SDXL Lightning", "sdxl"), ("Illustrious", "sdxl"),
                                                      ("NoobAI", "sdxl"), ("Other", "")])
def test_the_base_models_the_app_runs(base_model, architecture):
    assert plan(version([civitai_file("a.safetensors")], base_model=base_model))[0].architecture == architecture


@pytest.mark.parametrize("answer, said", [
    (version([civitai_file("a.safetensors")], "LORA", "Flux.1 D"), "DreamShaper v8 is made for Flux.1 D; HyperSD "
                                                                   "Desktop runs SD1.5 and SDXL models"),
    (version([civitai_file("a.safetensors")], "LORA", "Pony V7"), "is made for Pony V7"),
    (version([civitai_file("a.safetensors")], "LORA", "SD 2.1 768"), "is made for SD 2.1 768"),
    (version([civitai_file("a.pt", "PickleTensor")], "Hypernetwork", "SD 1.5"), "is a hypernetwork, which"),
    (version([civitai_file("a.pt", "PickleTensor")], "TextualInversion", "SD 1.5"), "offered only as a.pt: not "
                                                                                    "safetensors"),
    (version([{**civitai_file("a.safetensors"), "hashes": {"AutoV2": "ABCDEF0123"}}]), "publishes no sha256"),
    (version([{**civitai_file("a.safetensors"), "sizeKB": None}]), "lists no size for DreamShaper v8's file"),
    ({"id": 4384, "name": "Gone", "type": "LORA", "modelVersions": []}, "Gone has no published version"),
])
def test_what_the_app_cannot_run_or_verify_is_named_before_it_downloads(answer, said):
    with pytest.raises(InputError, match=re.escape(said)):
        plan(answer)


@pytest.fixture
def civitai():
    import io

    from PIL import Image

    with CivitaiServer() as civitai:
        for name, colour in (("castle", (120, 90, 40)), ("mature", (200, 0, 0))):
            picture = io.BytesIO()
            Image.new("RGB", (24, 16), colour).save(picture, "PNG")
            civitai.pictures[name] = picture.getvalue()
        yield civitai


@pytest.fixture
def library(civitai, app_home, monkeypatch):
    monkeypatch.delenv("CIVITAI_TOKEN", raising=False)
    library = ModelLibrary(AppPaths.default(), catalog=Catalog(()), token=False, civitai=civitai.url,
                           civitai_token=civitai.key)
    yield library
    library.close()


def pixel_art(civitai, data: bytes, base_model: str = "SD 1.5") -> CivitaiVersion:
    return civitai.add(CivitaiVersion(
        id=250000, model_id=120000, model_name="Pixel Art", name="v2", base_model=base_model,
        trained_words=["pixelart style", " pixel art,  8-bit ", "Pixel Art", 7],
        images=[("mature", 8, "image"), ("castle", 1, "image")], files=[
            CivitaiFile("pixel-art-v2.safetensors", data),
            CivitaiFile("pixel-art-v2-full.safetensors", data + b"\0" * 8, size="full", fp="fp32", primary=False)]))


def test_a_lora_is_downloaded_with_the_key_sent_to_civitai_only_resumed_verified_and_judged(
        civitai, library, hyper_lora):
    """Its download link redirects to storage that refuses a request with an Authorization header (as signed links
    do): the key goes to Civitai, not there; a connection dropped part way resumes with a Range."""
    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    pixel_art(civitai, data)
    civitai.drops.append(2 * 64 * 1024)  # whole reads (downloads.READ_SIZE): a part-read one is read again
    entry = library.add_address(f"{civitai.url}/models/120000/pixel-art?modelVersionId=250000")
    library.downloader.sleep = lambda seconds: None
    progress = []
    model = library.download(entry.id, progress.append)
    path = library.paths.models / entry.id / "pixel-art-v2.safetensors"
    assert path.read_bytes() == data and progress[-1].done == progress[-1].total == len(data)
    assert (model.id, model.name, model.kind, model.architecture, model.source, model.revision) == (
        entry.id, "Pixel Art v2", "lora", "sd15", "download", "250000")
    # its page's trigger words, each of Civitai's texts cut at its commas, a repeat and a number left out
    assert library.registry.get(entry.id).trigger_words == ("pixelart style", "pixel art", "8-bit")
    # and its first picture rated for everyone, kept beside the file as other tools keep one
    assert path.with_name("pixel-art-v2.preview.png").read_bytes() == civitai.pictures["castle"]
    assert not [request for request in civitai.requests if "/mature/" in request[1]]
    assert library.registry.get(entry.id).sha256 == civitai.file("pixel-art-v2.safetensors").described("", 0)[
        "hashes"]["SHA256"].lower()
    api = [request for request in civitai.requests if request[0] == "api" and request[1].startswith("/api/")]
    stored = [request for request in civitai.requests if request[0] == "storage"]
    pictures = [request for request in civitai.requests if request[0] == "api" and request not in api]
    assert {auth for *_, auth in api} == {f"Bearer {civitai.key}"} and {auth for *_, auth in stored} == {None}
    assert [(path, auth) for _, path, _, auth in pictures] == [  # the image server gets no key either
        ("/xG1nkqKTMzGDvpLrqFT7WA/castle/width=450/castle.png", None)]
    assert [rng for _, _, rng, _ in stored] == [None, f"bytes={2 * 64 * 1024}-"] and len(data) > 2 * 64 * 1024
    assert library.installed_entry(library.entry(entry.id)) == model


def test_a_picture_that_cannot_be_had_leaves_the_download_whole(civitai, library, hyper_lora):
    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    pixel_art(civitai, data)
    civitai.pictures["castle"] = b"\x89PNG\r\n\x1a\n but no picture"
    entry = library.add_address(f"{civitai.url}/models/120000/pixel-art?modelVersionId=250000")
    model = library.download(entry.id)
    assert Path(model.path).read_bytes() == data
    assert [path.name for path in Path(model.path).parent.iterdir()] == ["pixel-art-v2.safetensors"]


@pytest.mark.parametrize("key, sign_in_page, said", [
    (None, False, r"Civitai refused .* \(401\): it asks for your API key to download\. Create one on civitai\.com "
                  r"\(Account settings → API Keys\), paste it in Settings → Civitai API key"),
    ("mistyped", False, r"refused .* with your API key \(401\): the key may be mistyped"),
    (None, True, r"Civitai sent a page instead of pixel-art-v2\.safetensors: it may ask you to sign in"),
])
def test_a_download_without_a_working_key_says_how_to_give_one(civitai, library, key, sign_in_page, said):
    pixel_art(civitai, b"weights" * 1000)
    civitai.sign_in_page = sign_in_page
    library.downloader.civitai_token = key
    entry = library.add_address(f"{civitai.url}/api/download/models/250000")
    with pytest.raises(DownloadError, match=said):
        library.download(entry.id)
    assert library.registry.list() == [] and library.downloader.partial(library.entry(entry.id)) == 0


def test_the_key_can_come_from_the_environment(civitai, library, hyper_lora, monkeypatch):
    pixel_art(civitai, hyper_lora("Hyper-SD15-1step-lora").read_bytes())
    library.downloader.civitai_token = None
    monkeypatch.setenv("CIVITAI_TOKEN", civitai.key)
    model = library.download(library.add_address("urn:air:sd1:lora:civitai:120000@250000").id)
    assert model.kind == "lora"


def test_a_model_for_another_base_is_named_before_anything_is_downloaded(civitai, library):
    pixel_art(civitai, b"x" * 4096, base_model="Flux.1 D")
    entry = library.add_address(f"{civitai.url}/models/120000/pixel-art")  # its page: the newest version
    with pytest.raises(InputError, match=r"^Pixel Art v2 is made for Flux\.1 D"):
        library.download(entry.id)
    assert [path for _, path, *_ in civitai.requests] == ["/api/v1/models/120000"]
    assert not (library.paths.models / entry.id).exists()


def test_a_file_that_is_not_what_civitai_says_is_judged_from_its_bytes(civitai, library):
    """Civitai's type and base model are what its uploader chose; the file's own tensors decide (a FLUX LoRA
    listed as SD 1.5 is deleted again, saying what it is)."""
    header = json.dumps({"double_blocks.0.img_attn.qkv.lora_A.weight": {"dtype": "F16", "shape": [4, 3072],
                                                                        "data_offsets": [0, 24576]}}).encode()
    pixel_art(civitai, struct.pack("<Q", len(header)) + header + bytes(24576))
    entry = library.add_address(f"{civitai.url}/models/120000?modelVersionId=250000")
    with pytest.raises(DownloadError, match=r"^Pixel Art v2: a LoRA for FLUX.*The downloaded file was deleted\.$"):
        library.download(entry.id)
    assert not (library.paths.models / entry.id).exists() and library.registry.list() == []


def test_a_model_an_image_names_by_its_hash_is_looked_up_and_downloaded(civitai, library, hyper_lora):
    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    pixel_art(civitai, data)
    autov2 = civitai.file("pixel-art-v2.safetensors").described("", 0)["hashes"]["AutoV2"]
    entry = library.add_address(f"https://civitai.com/api/v1/model-versions/by-hash/{autov2}")
    model = library.download(entry.id)
    assert (model.name, model.kind, model.revision) == ("Pixel Art v2", "lora", "250000")
    assert civitai.requests[0][1] == f"/api/v1/model-versions/by-hash/{autov2.lower()}"
    unknown = library.add_address("https://civitai.com/api/v1/model-versions/by-hash/0123456789")
    with pytest.raises(DownloadError, match=r"^Civitai has no file with the hash 0123456789: the model is not shared "
                                            r"there"):
        library.download(unknown.id)


def test_an_imported_files_trigger_words_are_looked_up_on_civitai_by_its_sha256(civitai, library, hyper_lora, tmp_path):
    """Without an API key (the lookup takes none); a file Civitai does not know is said to be unknown there."""
    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    pixel_art(civitai, data)
    (tmp_path / "pixel_art_v2.safetensors").write_bytes(data)
    (tmp_path / "own.safetensors").write_bytes(data[:-4] + bytes(4))
    library.downloader.civitai_token = None
    models = {library.registry.get(item.model_id).name: library.registry.get(item.model_id)
              for item in library.import_path(tmp_path)}
    assert library.civitai_notes(models["pixel_art_v2"]) == ("Pixel Art v2", ("pixelart style", "pixel art", "8-bit"))
    assert {auth for *_, auth in civitai.requests} == {None}
    with pytest.raises(DownloadError, match=r"^Civitai has no file with the hash [0-9a-f]{64}: the model is not"):
        library.civitai_notes(models["own"])


def test_a_missing_version_is_said(civitai, library):
    entry = library.add_address(f"{civitai.url}/models/1?modelVersionId=999")
    with pytest.raises(DownloadError, match=r"^Civitai model 1 was not found on Civitai \(404\); check the "
                                            r"address\."):
        library.download(entry.id)


def test_a_search_answer_gives_each_model_as_its_newest_version_the_app_runs():
    """As Civitai answers `GET /api/v1/models`: a model whose newest version is for FLUX is offered as its SDXL one;
    one with pickles only, or for another base model only, is left out."""
    answer = {"items": [
        {"id": 1, "name": "Juggernaut XL", "type": "Checkpoint", "creator": {"username": "KandooAI"},
         "stats": {"downloadCount": 123456},
         "modelVersions": [{**version([civitai_file("jugg_flux.safetensors")], base_model="Flux.1 D"), "id": 12},
                           {**version([civitai_file("jugg_x.safetensors", kb=6775430.0)]), "id": 11,
                            "name": "Ragnarok"}]},
        {"id": 2, "name": "Old Pickle", "type": "Checkpoint",
         "modelVersions": [version([civitai_file("old.ckpt", "PickleTensor")], base_model="SD 1.5")]},
        {"id": 3, "name": "Flux Only", "type": "LORA", "modelVersions": [version([civitai_file("f.safetensors")],
                                                                                 base_model="Flux.1 D")]},
        {"id": "junk"}, "junk"],
        "metadata": {"nextCursor": "2|55|10"}}
    (found,), cursor = search_results(answer)
    assert (found.model_id, found.version_id, found.name, found.version, found.kind, found.architecture,
            found.size, found.downloads, found.creator) == (1, 11, "Juggernaut XL", "Ragnarok", "base", "sdxl",
                                                             6775430 * 1024, 123456, "KandooAI")
    assert found.address == "https://civitai.com/models/1/juggernaut-xl?modelVersionId=11" and cursor == "2|55|10"
    assert address_entry(found.address, HUB).revision == "11"
    # asked for SD1.5: a model's newest SD1.5 version, not its newer SDXL one
    answer["items"][0]["modelVersions"].append({**version([civitai_file("jugg_15.safetensors")], base_model="SD 1.5"),
                                                "id": 10, "name": "v9"})
    (older,), _ = search_results(answer, architectures=("sd15",))
    assert (older.version_id, older.version, older.architecture) == (10, "v9", "sd15")
    assert search_results(answer, architectures=("sdxl",))[0][0].version_id == 11


def test_a_search_is_sorted_as_asked(civitai, library):
    for n, versions in enumerate((1, 3, 2)):
        for v in range(versions):
            civitai.add(CivitaiVersion(id=100 * n + v, model_id=n + 1, model_name=f"Ink {n}", name=f"v{v}",
                                       files=[CivitaiFile(f"ink-{n}-{v}.safetensors", b"x" * 10)]))
    assert [m.name for m in library.search_civitai("ink", sort="downloads")[0]] == ["Ink 1", "Ink 2", "Ink 0"]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(civitai.search_requests[-1]).query)["sort"] == [
        "Most Downloaded"]
    library.search_civitai("ink", sort="newest")
    assert "sort=Newest" in civitai.search_requests[-1]
    library.search_civitai("ink")  # the best match: Civitai's own order, no sort asked
    assert "sort=" not in civitai.search_requests[-1]


def test_a_searched_models_preview_is_its_first_still_picture_rated_for_everyone():
    pictures = [{"url": "https://image.civitai.com/x/a/width=832/1.mp4", "type": "video", "nsfwLevel": 1},
                {"url": "https://image.civitai.com/x/b/width=832/2.jpeg", "type": "image", "nsfwLevel": 4},
                {"url": "https://image.civitai.com/x/c/width=832/3.jpeg", "type": "image"},  # not rated
                {"url": "javascript:alert(1)", "nsfwLevel": 1}, "junk", {"url": 7, "nsfwLevel": 1},
                {"url": "https://image.civitai.com/x/d/original=true/4.jpeg", "type": "image", "nsfwLevel": 1}]
    answer = {"items": [{"id": 1, "name": "Pixel", "type": "LORA", "modelVersions": [
        {**version([civitai_file("p.safetensors")], "LORA", "SD 1.5"), "images": pictures,
         "trainedWords": ["pixel art"]}]}]}
    (found,), _ = search_results(answer)
    assert found.preview == "https://image.civitai.com/x/d/width=450/4.jpeg" and found.trigger_words == ("pixel art",)
    (mature,), _ = search_results(answer, mature=True)
    assert mature.preview == "https://image.civitai.com/x/b/width=450/2.jpeg"
    answer["items"][0]["modelVersions"][0]["images"] = pictures[:4]
    assert search_results(answer)[0][0].preview == ""


def test_a_preview_picture_is_fetched_without_the_key_and_only_a_picture(civitai, library):
    civitai.pictures["one"] = b"\x89PNG\r\n\x1a\n" + bytes(1000)
    civitai.add(CivitaiVersion(id=5, model_id=5, model_name="Pixel", name="v1", images=[("one", 1, "image")],
                               files=[CivitaiFile("p.safetensors", b"x" * 10)]))
    (found,), _ = library.search_civitai("pixel")
    assert found.preview.endswith("/one/width=450/one.png")
    assert library.downloader.picture(found.preview) == civitai.pictures["one"]
    assert civitai.requests[-1][1:] == ("/xG1nkqKTMzGDvpLrqFT7WA/one/width=450/one.png", None, None)
    with pytest.raises(DownloadError, match="larger than a preview should be"):
        library.downloader.picture(found.preview, limit=100)
    with pytest.raises(DownloadError, match=r"could not be fetched \(HTTPError\)"):
        library.downloader.picture(found.preview.replace("/one/", "/gone/"))
    with pytest.raises(DownloadError, match="something other than a picture"):
        library.downloader.picture(f"{civitai.url}/api/v1/models/5")


def test_civitai_is_searched_for_what_the_app_runs_page_by_page(civitai, library, hyper_lora, monkeypatch):
    data = hyper_lora("Hyper-SD15-1step-lora").read_bytes()
    for n in range(45):  # more than a page (search's 30)
        civitai.add(CivitaiVersion(id=1000 + n, model_id=100 + n, model_name=f"Pixel Style {n}", name="v1",
                                   base_model="SDXL 1.0" if n % 2 else "SD 1.5",
                                   files=[CivitaiFile(f"pixel-{n}.safetensors", data)], mature=n == 3))
    civitai.add(CivitaiVersion(id=9, model_id=9, model_name="Pixel Flux", name="v1", base_model="Flux.1 D",
                               files=[CivitaiFile("pixel-flux.safetensors", data)]))
    found, cursor = library.search_civitai("pixel style")
    more, last = library.search_civitai("pixel style", cursor=cursor)
    assert len(found) == 30 and len(more) == 14 and last is None  # the mature one left out
    assert "Pixel Style 3" not in {m.name for m in found + more}
    assert "Pixel Style 3" in {m.name for m in library.search_civitai("pixel style 3", mature=True)[0]}
    sdxl, _ = library.search_civitai("pixel", kinds=("lora",), architectures=("sdxl",))
    assert sdxl and {m.architecture for m in sdxl} == {"sdxl"} and "Pixel Flux" not in {m.name for m in sdxl}
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(civitai.search_requests[-1]).query)
    assert query["types"] == ["LORA", "LoCon", "DoRA"] and "Pony" in query["baseModels"] and query["nsfw"] == ["false"]
    model = library.download(library.add_address(sdxl[0].address).id)
    assert (model.name, model.revision) == (f"{sdxl[0].name} v1", str(sdxl[0].version_id))
    civitai.unknown_bases = {"NoobAI"}  # one of the app's names Civitai came to refuse: asked again without them
    again, _ = library.search_civitai("pixel", kinds=("lora",), architectures=("sdxl",))
    assert again and {m.architecture for m in again} == {"sdxl"} and "Pixel Flux" not in {m.name for m in again}
    assert "baseModels" not in civitai.search_requests[-1] and "types" not in civitai.search_requests[-1]


def test_upscalers_are_searched_on_their_own_for_any_model_and_download_as_upscalers(civitai, library, tmp_path):
    """Civitai's upscalers name base models of every kind ("Other", "SD 1.5", "Upscaler"): asked for alone, they are
    searched without the base-model filter, each offered for any model; most are pickles (`.pth`), left out. A
    search for every kind leaves them out, as they are made for no base model."""
    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine.upscalers import load_upscaler
    from tests.tiny_models import upscaler_state

    path = tmp_path / "4x-span.safetensors"
    save_file(upscaler_state("span", scale=4), str(path))
    civitai.add(CivitaiVersion(id=71, model_id=7, model_name="4x Sharp SPAN", name="v1", model_type="Upscaler",
                               base_model="Other", files=[CivitaiFile("4x-sharp-span.safetensors", path.read_bytes())]))
    civitai.add(CivitaiVersion(id=81, model_id=8, model_name="4x Sharp Pickle", name="v1", model_type="Upscaler",
                               base_model="SD 1.5", files=[CivitaiFile("4x-sharp.pth", b"\x80\x02}q\x00.",
                                                                       format="PickleTensor")]))
    civitai.add(CivitaiVersion(id=91, model_id=9, model_name="Sharp Lines", name="v1", base_model="SD 1.5",
                               files=[CivitaiFile("sharp-lines.safetensors", b"x" * 10)]))
    found, _ = library.search_civitai("sharp", kinds=("upscaler",), architectures=("sdxl",))
    assert [(m.name, m.kind, m.architecture, m.base_model) for m in found] == [
        ("4x Sharp SPAN", ModelKind.UPSCALER, "", "Other")]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(civitai.search_requests[-1]).query)
    assert query["types"] == ["Upscaler"] and "baseModels" not in query
    everything, _ = library.search_civitai("sharp")
    assert [m.name for m in everything] == ["Sharp Lines"]
    assert "Upscaler" not in urllib.parse.parse_qs(urllib.parse.urlsplit(civitai.search_requests[-1]).query)["types"]
    model = library.download(library.add_address(found[0].address).id)
    assert model.kind == ModelKind.UPSCALER and not model.architecture
    assert load_upscaler(model.path)[1].description == "SPAN ×4 (8 channels)"
