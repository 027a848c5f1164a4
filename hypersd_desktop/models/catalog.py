"""The catalog of known downloads (`resources/catalog.json`) as typed records.

Each entry is one thing a user can download: a base model (a diffusers folder of fp16 files,
only the subfolders a pipeline needs), a Hyper-SD LoRA or UNet, TAESD, a VAE or a ControlNet,
with its hub repository, revision, files, sizes, licence, and what it enables.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.resources import resources_dir
from hypersd_desktop.core.vocab import ModelKind, ModelLayout

KINDS = ModelKind.values()
FP16_SDXL_VAE = "sdxl-vae-fp16-fix"  # the catalog's SDXL VAE that decodes in fp16 without overflowing
CATALOG_VAES = {"sd15": "sd-vae-ft-mse", "sdxl": FP16_SDXL_VAE}  # the catalog's VAE for each architecture
CIVITAI = "https://civitai.com"  # where the app asks Civitai's API (models/civitai.py)
CIVITAI_HOSTS = ("civitai.com", "www.civitai.com", "civitai.green", "www.civitai.green")
CIVITAI_REPO = "civitai.com/models/"  # the `repo` of a download from Civitai, then the model's id


def slug(name: str) -> str:
    """A model's name as ids and folder names write it: lowercase letters and digits joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def address_id(name: str, where: str) -> str:
    """The id of a download someone named by its address, from the model's name and where it is: the same address
    is the same download (resumed), whenever it is given again."""
    return f"{slug(name)[:48]}-{hashlib.sha1(where.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class CatalogFile:
    """One file of a download; `sha256`, when the catalog pins it, is checked even when the hub sends none."""

    path: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    """A downloadable model. `layout` is "diffusers" (a folder) or "file" (one weights file)."""

    id: str
    name: str
    kind: str
    architecture: str
    layout: str
    repo: str
    revision: str
    licence: str
    enables: str
    files: tuple[CatalogFile, ...]
    recipe: str | None = None
    address: str = ""  # the address a person gave, on the hub or Civitai (addresses.py); "" for the catalog's own
    trigger_words: tuple[str, ...] = ()  # what its page says to write in the prompt (Civitai's `trainedWords`)
    preview: str = ""  # the address of a picture its page shows, kept beside the file once downloaded

    @property
    def on_civitai(self) -> bool:
        """Whether this is a download from Civitai (an address someone gave), not from the Hugging Face hub."""
        return self.repo.startswith(CIVITAI_REPO)

    @property
    def size(self) -> int:
        return sum(file.size for file in self.files)

    @property
    def weights_file(self) -> str | None:
        """For a single-file entry, the file a pipeline loads."""
        return self.files[0].path if self.layout == ModelLayout.FILE else None


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]

    def get(self, entry_id: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.id == entry_id.lower():
                return entry
        known = ", ".join(entry.id for entry in self.entries)
        raise InputError(f"No catalog entry {entry_id!r}; known entries: {known}.")


def parse_catalog(data: dict) -> Catalog:
    """Typed records from the catalog JSON; `InputError` names the first bad entry."""
    entries = []
    for raw in data.get("entries", []):
        try:
            files = tuple(CatalogFile(f["path"], int(f["size"]), _pinned(f.get("sha256"))) for f in raw["files"])
            entry = CatalogEntry(
                id=raw["id"], name=raw["name"], kind=raw["kind"], architecture=raw["architecture"],
                layout=raw["layout"], repo=raw["repo"], revision=raw["revision"], licence=raw["licence"],
                enables=raw["enables"], files=files, recipe=raw.get("recipe"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"Catalog entry {raw.get('id', '?')!r} is malformed ({error}).") from None
        if entry.kind not in KINDS or entry.layout not in ModelLayout.values() or not files:
            raise InputError(f"Catalog entry {entry.id!r} has an unknown kind or layout, or no files.")
        if any(file.sha256 for file in files) and not re.fullmatch(r"[0-9a-f]{40}", entry.revision):
            # A hash pinned against a branch breaks the day the branch moves; pin the commit the hashes came from.
            raise InputError(f"Catalog entry {entry.id!r} pins sha256 values but not the commit they belong to.")
        entries.append(entry)
    return Catalog(tuple(entries))


def _pinned(sha256: object) -> str | None:
    if sha256 is None:
        return None
    if not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)):
        raise ValueError(f"{sha256!r} is not a sha256")
    return sha256


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or resources_dir() / "catalog.json"
    return parse_catalog(json.loads(path.read_text(encoding="utf-8")))


def format_size(size: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"
