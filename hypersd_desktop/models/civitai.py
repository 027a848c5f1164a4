"""Models named by their Civitai address: most SD1.5 and SDXL fine-tunes, LoRAs and embeddings people use are there.

People copy one of these: a model's page (`https://civitai.com/models/<model>/<slug>`, the newest version), a
version's page (`…?modelVersionId=<version>`), the Download button's link (`https://civitai.com/api/download/models/
<version>`, perhaps with `?type=Model&format=SafeTensor`), or a resource's AIR (`urn:air:sdxl:lora:civitai:<model>@
<version>`). Civitai's public API (`GET /api/v1/model-versions/<version>`, `GET /api/v1/models/<model>`) says what
the version is (its type and base model) and lists its files with their size and sha256, so a download is
planned, verified and resumed as a catalog entry's is, and a model the app cannot run (a FLUX LoRA, an SD 3
checkpoint) is named before a byte of it is downloaded. Downloading a file takes the person's API key (Civitai asks
for one for every file): sent as a bearer token to Civitai only, never to the storage its download link redirects
to.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, replace

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.prompt_tags import trigger_words
from hypersd_desktop.core.vocab import Architecture, ModelKind, ModelLayout, upscaler_families
from hypersd_desktop.models.catalog import (
    CIVITAI, CIVITAI_HOSTS, CIVITAI_REPO, CatalogEntry, CatalogFile, address_id, slug)
from hypersd_desktop.models.downloads import RemoteFile

_MODEL_PAGE = re.compile(r"^/models/(?P<model>\d+)(?:/[^/]*)?/?$")
_DOWNLOAD = re.compile(r"^/api/download/models/(?P<version>\d+)/?$")
# The API's lookup of a version by one of its file's hashes (AutoV1, AutoV2, SHA256…): how the app asks for a model
# an image names by its hash only
_BY_HASH = re.compile(r"^/api/v1/model-versions/by-hash/(?P<hash>[0-9a-f]{8,64})/?$", re.IGNORECASE)
_AIR = re.compile(r"^urn:air:[\w.-]+:[\w.-]+:civitai:(?P<model>\d+)@(?P<version>\d+)", re.IGNORECASE)
# Civitai's model types, as its API names them, and what the app makes of each
KINDS = {"checkpoint": ModelKind.BASE, "lora": ModelKind.LORA, "locon": ModelKind.LORA, "dora": ModelKind.LORA,
         "textualinversion": ModelKind.EMBEDDING, "vae": ModelKind.VAE, "controlnet": ModelKind.CONTROLNET,
         "upscaler": ModelKind.UPSCALER}
OTHER_TYPES = {"hypernetwork": "a hypernetwork", "aestheticgradient": "an aesthetic gradient",
               "motionmodule": "an AnimateDiff motion module", "poses": "a set of poses",
               "wildcards": "a wildcards list", "workflows": "a workflow", "detection": "a detection model"}
# Civitai's base models the app runs: SD 1.4/1.5 and their LCM/Hyper variants; SDXL and the models made from it
_SDXL_FAMILY = ("pony", "illustrious", "noobai")
_UNSAFE_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
# The size Civitai's image server is asked for, in a picture's address (`/width=832/`, or `/original=true/`)
_WIDTH = re.compile(r"/(?:width=\d+|original=true)/")


def is_civitai_link(text: str, endpoint: str = CIVITAI) -> bool:
    """Whether `text` is an address on Civitai (or on `endpoint`, the Civitai the app asks), or a Civitai AIR."""
    text = text.strip().strip("\"'<>")
    if _AIR.match(text):
        return True
    address = urllib.parse.urlsplit(text if "://" in text else "https://" + text)
    origin = f"{address.scheme}://{address.netloc}".lower()
    return address.netloc.lower() in CIVITAI_HOSTS or origin == endpoint.rstrip("/").lower()


def civitai_entry(text: str) -> CatalogEntry:
    """The download a Civitai address (or AIR) names; `InputError` saying what to copy instead for an address of
    something else on Civitai (an image, a creator's page)."""
    text = text.strip().strip("\"'<>")
    model = version = None
    air = _AIR.match(text)
    if air:
        model, version = air["model"], air["version"]
        slug = ""
    else:
        address = urllib.parse.urlsplit(text if "://" in text else "https://" + text)
        query = urllib.parse.parse_qs(address.query)
        page, download = _MODEL_PAGE.match(address.path), _DOWNLOAD.match(address.path)
        if by_hash := _BY_HASH.match(address.path):
            digest = by_hash["hash"].lower()
            return _entry(text, address_id("civitai", f"civitai/hash/{digest}"), f"the file with hash {digest}",
                          f"{CIVITAI_REPO}?hash={digest}", f"hash:{digest}")
        if page:
            model = page["model"]
            version = next((v for v in query.get("modelVersionId", ()) if v.isdigit()), None)
            slug = urllib.parse.unquote(address.path.rstrip("/").split("/")[-1]) if address.path.count("/") > 2 else ""
        elif download:
            version, slug = download["version"], ""
        else:
            raise InputError(f"{text} names no model on Civitai: copy the address of the model's page "
                             "(https://civitai.com/models/…), or its Download button's link.")
    name = slug.replace("-", " ").strip() or (f"Civitai model {model}" if model else f"Civitai version {version}")
    return _entry(text, address_id(slug or "civitai", f"civitai/{version}" if version else f"civitai/model/{model}"),
                  name, f"{CIVITAI_REPO}{model}" if model else f"{CIVITAI_REPO}?version={version}", version or "latest")


def _entry(address: str, entry_id: str, name: str, repo: str, revision: str) -> CatalogEntry:
    """A download from Civitai, as an address names it: what it is and its file are known once planned."""
    return CatalogEntry(id=entry_id, name=name, kind="", architecture="", layout=ModelLayout.FILE, repo=repo,
                        revision=revision, licence="see the model's page", enables="from civitai.com", files=(),
                        address=address)


def api_address(entry: CatalogEntry, endpoint: str) -> str:
    """Where Civitai's API describes `entry`'s version (or, for a model's page, the model with its versions)."""
    if entry.revision.startswith("hash:"):
        return f"{endpoint.rstrip('/')}/api/v1/model-versions/by-hash/{entry.revision.removeprefix('hash:')}"
    if entry.revision != "latest":
        return f"{endpoint.rstrip('/')}/api/v1/model-versions/{entry.revision}"
    return f"{endpoint.rstrip('/')}/api/v1/models/{entry.repo.removeprefix(CIVITAI_REPO)}"


def civitai_plan(entry: CatalogEntry, answer: dict) -> tuple[CatalogEntry, RemoteFile]:
    """`entry` with the file it downloads, chosen from the version Civitai's API describes in `answer` (a version's,
    or a model's with its versions, newest first), and that file's size, sha256 and download link. `InputError`
    names what cannot be run here (another base model, a hypernetwork…) or downloaded safely (pickles only)."""
    if "modelVersions" in answer:  # a model's page: its newest version
        versions = [v for v in _list(answer.get("modelVersions")) if isinstance(v, dict)]
        if not versions:
            raise InputError(f"{answer.get('name') or entry.name} has no published version on Civitai to download.")
        version = {**versions[0], "model": {"name": answer.get("name"), "type": answer.get("type")}}
    else:
        version = answer
    model = _object(version.get("model"))
    name = version_name(version) or entry.name
    kind = _kind(name, str(model.get("type") or ""))
    # an upscaler enlarges pictures of any model, whichever base model its page names
    architecture = "" if kind == ModelKind.UPSCALER else _architecture(name, str(version.get("baseModel") or ""))
    file = _chosen_file(name, version.get("files"), urllib.parse.urlsplit(entry.address).query)
    sha256 = str(_object(file.get("hashes")).get("SHA256") or "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise InputError(f"Civitai publishes no sha256 for {name}, so its download could not be verified; nothing "
                         "was downloaded. Download it in your browser, then import it.")
    size = _size(file)
    if size <= 0:
        raise InputError(f"Civitai lists no size for {name}'s file, so its download could not be checked; nothing "
                         "was downloaded. Download it in your browser, then import it.")
    path = _UNSAFE_NAME.sub("_", str(file.get("name") or ""))[-200:].strip(". ") or f"{entry.id}.safetensors"
    if not path.lower().endswith(".safetensors"):
        path += ".safetensors"
    version_id = str(version["id"]) if type(version.get("id")) is int and version["id"] > 0 else entry.revision
    url = str(file.get("downloadUrl") or f"{CIVITAI}/api/download/models/{version_id}")
    planned = replace(entry, name=name, kind=kind, architecture=architecture, files=(CatalogFile(path, size),),
                      trigger_words=trigger_words(version.get("trainedWords")), preview=_preview(version.get("images")))
    return planned, RemoteFile(path=path, url=url, size=size, sha256=sha256, commit=version_id, etag=None)


def version_name(version: dict) -> str:
    """A version's name as its page shows it: its model's name and its own ("Pixel Art v2"); "" when not given."""
    return " ".join(str(part) for part in (_object(version.get("model")).get("name"), version.get("name")) if part)


def hash_entry(sha256: str) -> CatalogEntry:
    """Civitai's version of the file with this sha256 (`api_address` asks its by-hash lookup, which takes no key)."""
    return civitai_entry(f"{CIVITAI}/api/v1/model-versions/by-hash/{sha256}")


def _kind(name: str, civitai_type: str) -> str:
    key = civitai_type.lower().replace(" ", "")
    if key in OTHER_TYPES:
        raise InputError(f"{name} is {OTHER_TYPES[key]}, which HyperSD Desktop does not use: it takes checkpoints, "
                         "LoRAs (LoCon, DoRA), embeddings, VAEs, ControlNets and upscalers "
                         f"({upscaler_families('and')}).")
    return KINDS.get(key, "")  # "Other": judged from the file once it is here, as an import judges it


def _architecture(name: str, base_model: str) -> str:
    label = base_model.strip().lower()
    if label.startswith("sd 1."):
        return Architecture.SD15
    if label.startswith("sdxl") or label in _SDXL_FAMILY:
        return Architecture.SDXL
    if label in ("", "other"):
        return ""
    raise InputError(f"{name} is made for {base_model}; HyperSD Desktop runs SD1.5 and SDXL models (and those made "
                     "from SDXL: Pony, Illustrious, NoobAI). If you know it is one of those, download it in your "
                     "browser, then import it.")


def _chosen_file(name: str, files, query: str) -> dict:
    """The version's model file in safetensors: the one the address asks for (`?type=…&format=…&size=…&fp=…`, as the
    Download button's menu writes them), else the primary one, else the first."""
    files = [f for f in _list(files) if isinstance(f, dict)]
    models = [f for f in files if str(f.get("type") or "Model") in ("Model", "Pruned Model")]
    safe = [f for f in models if _is_safetensors(f)]
    if not safe:
        offered = ", ".join(str(f.get("name")) for f in models[:3]) or "no model file"
        raise InputError(f"{name} is offered only as {offered}: not safetensors, which the app needs (a .ckpt, .pt or "
                         ".bin file can run code when it is loaded). Look for a SafeTensor version of the model.")
    wanted = {key: values[0].lower() for key, values in urllib.parse.parse_qs(query).items()
              if key in ("type", "format", "size", "fp")}
    wanted.pop("format", None)  # safetensors in any case

    def fits(file: dict) -> bool:
        meta = _object(file.get("metadata"))
        offered = {"type": str(file.get("type") or "Model"), "size": meta.get("size"), "fp": meta.get("fp")}
        return all(str(offered.get(key) or "").lower() == value for key, value in wanted.items())

    return next((f for f in safe if fits(f) and f.get("primary")), None) or next((f for f in safe if fits(f)), None) \
        or next((f for f in safe if f.get("primary")), safe[0])


def _size(file: dict) -> int:
    """A file's size in bytes (0: not said). `sizeKB` is the size divided by 1024, which a double holds exactly."""
    kb = file.get("sizeKB")
    return round(kb * 1024) if type(kb) in (int, float) and math.isfinite(kb) and kb > 0 else 0


def _object(value) -> dict:
    """A JSON object of an answer, or an empty one where the answer has something else."""
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _is_safetensors(file: dict) -> bool:
    meta = _object(file.get("metadata"))
    return str(meta.get("format") or "").lower() == "safetensor" or str(file.get("name") or "").lower().endswith(
        ".safetensors")



# -- search ------------------------------------------------------------------------------------------------------

# What the app runs, in the words of Civitai's search filters: its model types by kind, its base models by family
SEARCH_TYPES = {ModelKind.BASE: ("Checkpoint",), ModelKind.LORA: ("LORA", "LoCon", "DoRA"),
                ModelKind.EMBEDDING: ("TextualInversion",), ModelKind.VAE: ("VAE",),
                ModelKind.CONTROLNET: ("Controlnet",), ModelKind.UPSCALER: ("Upscaler",)}
# Kinds made for no base model (an upscaler enlarges any model's pictures, whichever base model its page names):
# searched only when asked for, and then without the base-model filter
ANY_BASE = (ModelKind.UPSCALER,)
SEARCH_BASES = {Architecture.SD15: ("SD 1.4", "SD 1.5", "SD 1.5 LCM", "SD 1.5 Hyper"),
                Architecture.SDXL: ("SDXL 1.0", "SDXL Lightning", "SDXL Hyper", "SDXL Turbo", "Pony", "Illustrious",
                                    "NoobAI")}
SEARCH_PAGE = 30
MOST_VERSIONS = 50  # of one model, offered in the search
SORTS = {"downloads": "Most Downloaded", "rating": "Highest Rated", "newest": "Newest"}  # the app's, Civitai's words
# The search's requests, explained as a download's are when they fail
SEARCH = CatalogEntry(id="civitai-search", name="the search", kind="", architecture="", layout=ModelLayout.FILE,
                      repo=f"{CIVITAI_REPO}?search", revision="", licence="", enables="", files=())


@dataclass(frozen=True)
class CivitaiModel:
    """A model Civitai's search found, as the newest of its versions the app runs."""

    model_id: int
    version_id: int
    name: str
    version: str
    kind: str
    architecture: str
    base_model: str
    size: int  # its safetensors file's, in bytes
    downloads: int
    creator: str
    preview: str = ""  # the address of its first picture a person asked to see (at 450 px wide); "" for none
    trigger_words: tuple[str, ...] = ()
    older: tuple[CivitaiModel, ...] = ()  # its older versions the app runs, newest first

    @property
    def address(self) -> str:
        """The version's page, which the Models tab downloads as any address pasted there."""
        return f"{CIVITAI}/models/{self.model_id}/{slug(self.name)}?modelVersionId={self.version_id}"


def search_address(endpoint: str, query: str, kinds: tuple[str, ...] = (), architectures: tuple[str, ...] = (),
                   mature: bool = False, cursor: str | None = None, filtered: bool = True, sort: str = "") -> str:
    """Civitai's search (`GET /api/v1/models`) for `query` among the models of these kinds and families (all the app
    runs but upscalers, where none are given; any, not `filtered`), without mature ones unless `mature`, in the order
    `sort` names (one of `SORTS`; "": Civitai's best match); `cursor` continues an earlier page. With an upscaler
    among the kinds, no base model is asked for (the families are sorted out of the answer)."""
    params = [("query", query.strip()), ("limit", str(SEARCH_PAGE)), ("nsfw", "true" if mature else "false"),
              ("primaryFileOnly", "false")]
    if sort in SORTS:
        params.append(("sort", SORTS[sort]))
    if filtered:
        kinds = searched_kinds(kinds)
        params += [("types", name) for kind in kinds for name in SEARCH_TYPES[kind]]
        if not set(kinds) & set(ANY_BASE):
            params += [("baseModels", name) for family in (architectures or tuple(SEARCH_BASES))
                       for name in SEARCH_BASES[family]]
    if cursor:
        params.append(("cursor", cursor))
    return f"{endpoint.rstrip('/')}/api/v1/models?{urllib.parse.urlencode(params)}"


def searched_kinds(kinds: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The kinds a search asks for: `kinds`, or where none are given every kind made for a base model."""
    return kinds or tuple(kind for kind in SEARCH_TYPES if kind not in ANY_BASE)


def search_results(answer: dict, mature: bool = False, architectures: tuple[str, ...] = ()) -> tuple[
        list[CivitaiModel], str | None]:
    """The models of a search's answer the app can download and run (each as its newest such version: made for
    SD1.5 or SDXL, or for those of `architectures` asked for, or an upscaler, for any; with a safetensors file; its
    other such versions in `older`), and the cursor of the next page (None: the last). A version's preview is its
    first still picture rated for everyone (any, with `mature`)."""
    found = []
    for item in _list(answer.get("items")):
        if not isinstance(item, dict) or type(item.get("id")) is not int:
            continue
        kind = KINDS.get(str(item.get("type") or "").lower().replace(" ", ""))
        usable = []
        for version in _list(item.get("modelVersions")):
            if not isinstance(version, dict) or type(version.get("id")) is not int:
                continue
            try:
                architecture = "" if kind in ANY_BASE else _architecture("", str(version.get("baseModel") or ""))
                file = _chosen_file("", version.get("files"), "")
            except InputError:
                continue
            if kind not in ANY_BASE and (not architecture or (architectures and architecture not in architectures)):
                continue  # "Other": what it is is known only from its file; one for the other family
            usable.append(CivitaiModel(
                model_id=item["id"], version_id=version["id"], name=str(item.get("name") or item["id"]),
                version=str(version.get("name") or ""), kind=kind or "", architecture=architecture,
                base_model=str(version.get("baseModel") or ""),
                size=_size(file),
                downloads=_count(_object(item.get("stats")).get("downloadCount")),
                creator=str(_object(item.get("creator")).get("username") or ""),
                preview=_preview(version.get("images"), mature),
                trigger_words=trigger_words(version.get("trainedWords"))))
        if usable:
            found.append(replace(usable[0], older=tuple(usable[1:MOST_VERSIONS])))
    cursor = _object(answer.get("metadata")).get("nextCursor")
    return found, str(cursor) if cursor not in (None, "") and (found or _list(answer.get("items"))) else None


def _preview(images, mature: bool = False) -> str:
    """The address of the first still picture among a version's `images` that may be shown (rated PG, Civitai's
    `nsfwLevel` 1, unless `mature`; one without a rating is not shown), asked for 450 pixels wide, as Civitai's
    own cards ask its image server (`…/width=450/…`)."""
    for image in _list(images):
        image = _object(image)
        url, level = image.get("url"), image.get("nsfwLevel")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or image.get("type", "image") != \
                "image":
            continue
        if mature or (type(level) is int and level == 1):
            return _WIDTH.sub("/width=450/", url, count=1)
    return ""


def _count(value) -> int:
    return value if type(value) is int and value >= 0 else 0
