"""Models named by their address: a file someone links to, downloaded as a catalog entry is (on Civitai:
models/civitai.py).

People share models as links to a file on the hub: its page (`https://huggingface.co/<owner>/<repo>/blob/<revision>/
<file>.safetensors`) or its download (`…/resolve/<revision>/…`, often with `?download=true`). The link names the
repository, the revision and the file, which is all a download needs: the hub publishes the file's size and
sha256, so it is verified, paused and resumed as a catalog entry is. What the file is (a checkpoint, a LoRA…, for
SD1.5 or SDXL) is read from its header once it is here, as an import reads it.

A link to a repository's page (`https://huggingface.co/<owner>/<repo>`, or `…/tree/<revision>`) names a diffusers
model, the way diffusers' own `from_pretrained` takes it: what the pipeline loads is downloaded (`repo_parts`: the
configs, the tokenizers, and one set of safetensors weights, fp16 where every part has them), not the rest of
the repository. A repository with no pipeline but one .safetensors file is that file.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import replace
from pathlib import PurePosixPath

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import ModelLayout
from hypersd_desktop.models.catalog import CatalogEntry, CatalogFile, address_id
from hypersd_desktop.models.civitai import CIVITAI, civitai_entry, is_civitai_link

HUB_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
_FILE = re.compile(r"^/(?P<repo>[\w.-]+/[\w.-]+)/(?:blob|resolve)/(?P<revision>[^/]+)/(?P<path>.+)$")
# The names diffusers gives every model's file (`unet/diffusion_pytorch_model.fp16.safetensors`, a trained LoRA's
# `pytorch_lora_weights.safetensors`)
GENERIC_NAMES = ("diffusion_pytorch_model", "model", "pytorch_lora_weights")
_REPO = re.compile(r"^/(?P<repo>[\w.-]+/[\w.-]+)(?:/tree/(?P<revision>[^/]+))?/?$")
# The folders of a pipeline the app loads (no safety checker, no feature extractor: the app runs without them)
PIPELINE_PARTS = ("scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "vae")
_SMALL_FILES = (".json", ".txt", ".model")  # configs and tokenizer files (vocab.json, merges.txt, spiece.model)
_FP16 = re.compile(r"\.fp16[.-]")  # model.fp16.safetensors, diffusion_pytorch_model.fp16-00001-of-00002.safetensors


def is_hub_link(text: str, endpoint: str) -> bool:
    """Whether `text` is an address on the Hugging Face hub (or on `endpoint`, the hub the app downloads from)."""
    address = urllib.parse.urlsplit(text.strip())
    origin = f"{address.scheme}://{address.netloc}".lower()
    return address.netloc.lower() in HUB_HOSTS or origin == endpoint.rstrip("/").lower()


def is_model_link(text: str, endpoint: str, civitai: str = CIVITAI) -> bool:
    """Whether `text` is an address the app downloads models from: on the hub (`endpoint`) or on Civitai."""
    return is_hub_link(text, endpoint) or is_civitai_link(text, civitai)


def address_entry(text: str, endpoint: str, civitai: str = CIVITAI) -> CatalogEntry:
    """The download an address names: on the hub (`endpoint`: the hub the app downloads from, `HF_ENDPOINT`, whose
    addresses are taken too) or on Civitai (`civitai`: the Civitai the app asks, models/civitai.py); `InputError`
    saying what to give instead for an address that names no single safetensors file or model."""
    text = text.strip().strip("\"'<>")
    if not text:
        raise InputError("Paste the address of a model's page on Hugging Face or Civitai, or of one of its "
                         ".safetensors files.")
    if is_civitai_link(text, civitai):
        return civitai_entry(text)
    if text.lower().startswith(HUB_HOSTS):
        text = "https://" + text
    if not is_hub_link(text, endpoint):
        raise InputError(f"{text} is not a Hugging Face or Civitai address. For a model from another site, "
                         "download the file in your browser, then import it (Import files…, or drop it here).")
    address = urllib.parse.urlsplit(text)
    found = _FILE.match(address.path)
    if found is None:
        repository = _REPO.match(address.path)
        if repository is None:
            raise InputError(f"{text} names no model: copy the address of the model's page, or of its .safetensors "
                             "file (on the page, under Files and versions).")
        repo, revision = repository["repo"], urllib.parse.unquote(repository["revision"] or "main")
        return CatalogEntry(
            id=address_id(repo.split("/")[1], f"{repo}/{revision}"), name=repo.split("/")[1], kind="", architecture="",
            layout=ModelLayout.DIFFUSERS, repo=repo, revision=revision, licence="see the model's page",
            enables=f"from huggingface.co/{repo}", files=(), address=text)
    repo, revision = found["repo"], urllib.parse.unquote(found["revision"])
    path = urllib.parse.unquote(found["path"])
    if PurePosixPath(path).suffix.lower() != ".safetensors" or ".." in PurePosixPath(path).parts:
        raise InputError(f"{PurePosixPath(path).name} is not a .safetensors file: only safetensors weights are "
                         "downloaded (a .ckpt, .pt or .bin file can run code when it is loaded). Look for a "
                         ".safetensors version of the model.")
    name = PurePosixPath(path).stem
    if name.split(".")[0] in GENERIC_NAMES:  # diffusers' file names: the repository's (and its folder's) say more
        name = " ".join((repo.split("/")[1], *PurePosixPath(path).parent.parts))
    return CatalogEntry(
        id=address_id(name, f"{repo}/{revision}/{path}"), name=name, kind="", architecture="", layout=ModelLayout.FILE,
        repo=repo, revision=revision, licence="see the model's page", enables=f"from huggingface.co/{repo}",
        files=(CatalogFile(path, 0),), address=text)


def repo_parts(entry: CatalogEntry, names: list[str]) -> CatalogEntry:
    """A repository's download (`entry`, from its page's address) with its files chosen from `names`, all the files
    the repository holds: a diffusers pipeline's parts, or its one .safetensors file. `InputError` says why there
    is nothing to take."""
    names = sorted(set(names))
    if "model_index.json" not in names:
        top = [name for name in names if "/" not in name and name.lower().endswith(".safetensors")]
        if len(top) == 1:
            return replace(entry, layout=ModelLayout.FILE, name=PurePosixPath(top[0]).stem,
                           files=(CatalogFile(top[0], 0),))
        what = f"{len(top)} .safetensors files ({', '.join(top[:4])}{', …' if len(top) > 4 else ''})" if top else \
            "no diffusers pipeline (model_index.json) and no .safetensors file"
        raise InputError(f"{entry.repo} holds {what}: copy the address of the file you want (on the model's page, "
                         "under Files and versions).")
    parts = {part: [name for name in names if name.startswith(f"{part}/") and name.count("/") == 1]
             for part in PIPELINE_PARTS}
    weights = {part: [n for n in files if n.endswith(".safetensors")] for part, files in parts.items()}
    weighted = [part for part in weights if weights[part]]
    pickled = [part for part, files in parts.items() if not weights[part] and any(
        n.endswith((".bin", ".ckpt", ".pt", ".pth")) for n in files)]
    if pickled or "unet" not in weighted:
        where = ", ".join(pickled) if pickled else "unet"
        raise InputError(f"{entry.repo} has no safetensors weights for its {where} (only pickle files, which can run "
                         "code when loaded, or none): look for a .safetensors version of the model.")
    # fp16 files for every part where each has them (as the app loads a folder: engine/loading.py), else full ones
    fp16 = all(any(_FP16.search(n) for n in weights[part]) for part in weighted) and \
        "unet/diffusion_pytorch_model.fp16.safetensors" in weights["unet"]
    lacking = [part for part in weighted if not any(bool(_FP16.search(n)) == fp16 for n in weights[part])]
    if lacking:
        raise InputError(f"{entry.repo} has full-precision weights for some parts and only fp16 ones for others "
                         f"({', '.join(lacking)}), which a pipeline does not load together.")
    chosen = ["model_index.json"]
    for part, files in parts.items():
        chosen += [n for n in files if n.endswith(_SMALL_FILES)]
        chosen += [n for n in weights[part] if bool(_FP16.search(n)) == fp16]
    return replace(entry, files=tuple(CatalogFile(name, 0) for name in chosen))
