"""Models named by their Hugging Face address: a file someone links to, downloaded as a catalog entry is.

People share models as links to a file on the hub: its page (`https://huggingface.co/<owner>/<repo>/blob/<revision>/
<file>.safetensors`) or its download (`…/resolve/<revision>/…`, often with `?download=true`). The link names the
repository, the revision and the file, which is all a download needs: the hub publishes the file's size and
sha256, so it is verified, paused and resumed as a catalog entry is. What the file is (a checkpoint, a LoRA…, for
SD1.5 or SDXL) is read from its header once it is here, as an import reads it.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from pathlib import PurePosixPath

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import ModelLayout
from hypersd_desktop.models.catalog import CatalogEntry, CatalogFile

HUB_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
_FILE = re.compile(r"^/(?P<repo>[\w.-]+/[\w.-]+)/(?:blob|resolve)/(?P<revision>[^/]+)/(?P<path>.+)$")
# The names diffusers gives every model's file (`unet/diffusion_pytorch_model.fp16.safetensors`, a trained LoRA's
# `pytorch_lora_weights.safetensors`)
GENERIC_NAMES = ("diffusion_pytorch_model", "model", "pytorch_lora_weights")
_REPO_ONLY = re.compile(r"^/[\w.-]+/[\w.-]+(?:/tree/.*)?/?$")


def is_hub_link(text: str, endpoint: str) -> bool:
    """Whether `text` is an address on the Hugging Face hub (or on `endpoint`, the hub the app downloads from)."""
    address = urllib.parse.urlsplit(text.strip())
    origin = f"{address.scheme}://{address.netloc}".lower()
    return address.netloc.lower() in HUB_HOSTS or origin == endpoint.rstrip("/").lower()


def address_entry(text: str, endpoint: str) -> CatalogEntry:
    """The download a hub address names (`endpoint`: the hub the app downloads from, `HF_ENDPOINT`, whose addresses
    are taken too); `InputError` saying what to give instead for an address that names no single safetensors
    file on the hub."""
    text = text.strip().strip("\"'<>")
    if not text:
        raise InputError("Paste the address of a .safetensors file on Hugging Face (…/blob/main/model.safetensors).")
    if text.lower().startswith(HUB_HOSTS):
        text = "https://" + text
    if not is_hub_link(text, endpoint):
        raise InputError(f"{text} is not a Hugging Face address. For a model from another site (Civitai…), "
                         "download the file in your browser, then import it (Import files…, or drop it here).")
    address = urllib.parse.urlsplit(text)
    found = _FILE.match(address.path)
    if found is None:
        what = "a repository, not one of its files" if _REPO_ONLY.match(address.path) else "no file"
        raise InputError(f"{text} names {what}: on the model's page, open Files and versions, then copy the address of "
                         "the .safetensors file (its download button's link, with /resolve/ in it).")
    repo, revision = found["repo"], urllib.parse.unquote(found["revision"])
    path = urllib.parse.unquote(found["path"])
    if PurePosixPath(path).suffix.lower() != ".safetensors" or ".." in PurePosixPath(path).parts:
        raise InputError(f"{PurePosixPath(path).name} is not a .safetensors file: only safetensors weights are "
                         "downloaded (a .ckpt, .pt or .bin file can run code when it is loaded). Look for a "
                         ".safetensors version of the model.")
    name = PurePosixPath(path).stem
    if name.split(".")[0] in GENERIC_NAMES:  # diffusers' file names: the repository's (and its folder's) say more
        name = " ".join((repo.split("/")[1], *PurePosixPath(path).parent.parts))
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "model"
    digest = hashlib.sha1(f"{repo}/{revision}/{path}".encode()).hexdigest()[:6]
    return CatalogEntry(
        id=f"{slug}-{digest}", name=name, kind="", architecture="", layout=ModelLayout.FILE, repo=repo,
        revision=revision, licence="see the model's page", enables=f"from huggingface.co/{repo}",
        files=(CatalogFile(path, 0),), address=text)
