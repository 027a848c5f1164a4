"""The model library: catalog, downloads, imports, registry and verification behind one object.

The CLI and the GUI both go through this, so a model downloaded in one is known to the other.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from hypersd_desktop.core.errors import AppError, InputError
from hypersd_desktop.core.files import write_atomic
from hypersd_desktop.core.images import kept_bytes
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.prompt_tags import network_tags, trigger_words
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.vocab import Architecture, ImportStatus, ModelKind, ModelLayout
from hypersd_desktop.engine.inspect import (
    base_architecture, base_has_vae, embedding_vectors, read_header, vae_family,
)
from hypersd_desktop.models.addresses import address_entry, is_model_link, repo_parts
from hypersd_desktop.models.civitai import (
    SEARCH, CivitaiModel, api_address, civitai_plan, hash_entry, search_address, search_results, searched_kinds,
    version_name)
from hypersd_desktop.models.catalog import CATALOG_VAES, Catalog, CatalogEntry, CatalogFile, load_catalog
from hypersd_desktop.models.downloads import DownloadError, Downloader, RefusedRequestError, RemoteFile
from hypersd_desktop.core.hashes import HashCache, other_tools_hashes, sha256_file
from hypersd_desktop.models.importer import ImportItem, Importer, is_models_folder
from hypersd_desktop.models.model_notes import NOTED_KINDS, ModelNotes, read_notes
from hypersd_desktop.models.registry import InstalledModel, Registry, named_embeddings, tagged_loras

log = logging.getLogger("hypersd.models")

Report = Callable[[TransferProgress], None]


@dataclass(frozen=True)
class VerifyResult:
    """`problems` lists files that are missing or whose sha256 changed; empty when the model is intact."""

    model: InstalledModel
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _file_of(model: InstalledModel, name: str) -> Path:
    """Where a one-file model's listed file is: the model's own file, or one beside it (a tagger's tag list)."""
    path = Path(model.path)
    return path if len(model.files) == 1 or Path(name).name == path.name else path.with_name(Path(name).name)


def vae_beside(checkpoint: Path) -> Path | None:
    """The VAE file beside a checkpoint named as AUTOMATIC1111 looks for one, `<checkpoint>.vae.safetensors`."""
    beside = checkpoint.with_name(f"{checkpoint.stem}.vae.safetensors")
    return beside if checkpoint.suffix.lower() == ".safetensors" and beside.is_file() else None


ADDRESSES_FILE = "addresses.json"  # hub addresses whose download is not finished (`ModelLibrary.add_address`)


class ModelLibrary:
    """Everything about installed and installable models, rooted at `paths`."""

    def __init__(self, paths: AppPaths, catalog: Catalog | None = None, endpoint: str | None = None,
                 token: str | None = None, civitai: str | None = None, civitai_token: str | None = None) -> None:
        paths.ensure()
        self.paths = paths
        self.catalog = catalog or load_catalog()
        self.registry = Registry(paths.data / "models.sqlite3")
        self.downloader = Downloader(paths.models, self.registry, endpoint=endpoint, token=token, civitai=civitai,
                                     civitai_token=civitai_token)
        self.importer = Importer(self.registry, paths.models)
        self.addresses: dict[str, CatalogEntry] = {}  # downloads asked for by address, by entry id
        # A download's thread fills in an address's entry once planned, while the window lists them
        self._addresses_lock = threading.Lock()
        for text in self._kept_addresses():  # not finished when the app last closed: listed to resume
            try:
                entry = self._address_entry(text)
            except InputError:
                continue
            if self.installed_entry(entry) is None:
                self.addresses[entry.id] = entry

    def entries(self) -> tuple[CatalogEntry, ...]:
        """What can be downloaded: the catalog's entries, then the addresses given (until each is installed)."""
        with self._addresses_lock:
            return (*self.catalog.entries, *self.addresses.values())

    def entry(self, entry_id: str) -> CatalogEntry:
        with self._addresses_lock:
            entry = self.addresses.get(entry_id)
        return entry or self.catalog.get(entry_id)

    def is_model_link(self, text: str) -> bool:
        """Whether `text` is an address of a model on the hub or on Civitai, which `add_address` takes."""
        return is_model_link(text, self.downloader.endpoint, self.downloader.civitai)

    def _address_entry(self, text: str) -> CatalogEntry:
        return address_entry(text, self.downloader.endpoint, self.downloader.civitai)

    def search_civitai(self, query: str, kinds: tuple[str, ...] = (), architectures: tuple[str, ...] = (),
                       mature: bool = False, cursor: str | None = None, sort: str = "") -> tuple[
                           list[CivitaiModel], str | None]:
        """Civitai's models for `query` that the app runs (of these kinds and families, all where none are given),
        and the cursor of the next page (None: no more), in the order `sort` names (`civitai.SORTS`; "": Civitai's
        best match). Each downloads by its `address` (`add_address`)."""
        address = search_address(self.downloader.civitai, query, kinds, architectures, mature, cursor, sort=sort)
        try:
            return search_results(self.downloader.civitai_answer(SEARCH, address), mature, architectures)
        except RefusedRequestError:  # a type's or base model's name Civitai no longer knows: sorted out here
            everything = search_address(self.downloader.civitai, query, mature=mature, cursor=cursor, filtered=False,
                                        sort=sort)
            found, cursor = search_results(self.downloader.civitai_answer(SEARCH, everything), mature, architectures)
            return [model for model in found if model.kind in searched_kinds(kinds)], cursor

    def civitai_notes(self, model: InstalledModel) -> tuple[str, tuple[str, ...]]:
        """Civitai's name for an installed file ("Pixel Art v2") and the trigger words its page gives, found by the
        file's sha256 (no API key needed); `DownloadError` saying so where Civitai does not know the file."""
        if not model.sha256:
            raise InputError(f"{model.name} has no recorded sha256 to look it up by on Civitai.")
        entry = hash_entry(model.sha256)
        answer = self.downloader.civitai_answer(entry, api_address(entry, self.downloader.civitai))
        return version_name(answer) or model.name, trigger_words(answer.get("trainedWords"))

    def add_address(self, text: str) -> CatalogEntry:
        """A download of what a Hugging Face or Civitai address names (`InputError` for any other address), listed
        with the catalog's until it is installed, across restarts. The same address again is the same entry: its
        download resumes what an earlier one left. A model the catalog has is its catalog entry."""
        entry = self._address_entry(text)
        known = self._catalogs(entry)
        if known is not None:
            return known
        with self._addresses_lock:
            entry = self.addresses.setdefault(entry.id, entry)
        self._keep_addresses()
        return entry

    @property
    def _addresses_file(self) -> Path:
        return self.paths.data / ADDRESSES_FILE

    def _kept_addresses(self) -> list[str]:
        try:
            kept = json.loads(self._addresses_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [text for text in kept if isinstance(text, str)] if isinstance(kept, list) else []

    def _keep_addresses(self) -> None:
        """Write down the addresses whose download is not finished, so a paused one is listed after a restart (its
        bytes are kept under its entry's id); a data folder that cannot be written only loses the list."""
        with self._addresses_lock:
            entries = tuple(self.addresses.values())
        unfinished = [entry.address for entry in entries if self.installed_entry(entry) is None]
        try:
            write_atomic(self._addresses_file, json.dumps(unfinished, indent=1))
        except OSError:
            pass

    def close(self) -> None:
        self.registry.close()

    def hash_cache(self) -> HashCache:
        """Short hashes for image metadata, taken from the registry where a file is registered."""
        return HashCache(self.paths.cache / "hashes.json", known=self.registry.sha256_of,
                         known_lora=self.registry.lora_hash_of)

    def lacking_hashes(self) -> list[InstalledModel]:
        """The single-file models whose hashes for other tools (see `complete_hashes`) are not recorded yet."""
        return [model for model in self.registry.list() if model.layout == ModelLayout.FILE and model.legacy_hash is None]

    def complete_hashes(self, cancel: CancelToken | None = None) -> list[InstalledModel]:
        """Compute the hashes other tools name files by (`core.hashes.other_tools_hashes`) for the single-file models
        registered before the registry kept them; the models, updated. Reading a LoRA takes about a second; a
        checkpoint's old hash reads 64 KiB."""
        for model in self.lacking_hashes():
            path = Path(model.path)
            if path.is_file():
                try:
                    lora, legacy = other_tools_hashes(path, model.kind == ModelKind.LORA, cancel)
                except OSError:
                    continue  # unreadable now: tried again next time
                self.registry.set_hashes(model.id, lora, legacy)
        return self.registry.list()

    def complete_notes(self, cancel: CancelToken | None = None) -> int:
        """Read the trigger words of the LoRAs and embeddings registered before the registry kept them (from their
        headers and the notes beside them, as an import reads them); how many had some. A file not here now is
        tried again next time."""
        found = 0
        for model in self.registry.unread_notes():
            if cancel is not None:
                cancel.raise_if_cancelled()
            path = Path(model.path)
            if model.layout != ModelLayout.FILE or not path.is_file():
                continue
            try:
                notes = read_notes(path, read_header(path)[1])
            except AppError:
                notes = ModelNotes()  # a file that no longer reads: none
            self.registry.set_notes(model.id, notes.trigger_words, notes.preferred_weight)
            found += bool(notes.trigger_words)
        return found

    def plan(self, entry: CatalogEntry) -> tuple[CatalogEntry, list[RemoteFile]]:
        """`entry` with its files (a repository's chosen from the hub's list of them) and the hub's metadata for
        each (sizes, sha256, commit); an address's entry is kept so, for the Models tab to show its size."""
        if entry.on_civitai:  # Civitai's API describes the version, its file, size and sha256
            entry, remote = civitai_plan(entry, self.downloader.civitai_answer(
                entry, api_address(entry, self.downloader.civitai)))
            self._planned(entry)
            return entry, [remote]
        if entry.address and not entry.files:  # a repository's page: its pipeline's parts, or its one file
            entry = repo_parts(entry, self.downloader.repo_files(entry))
        remote = self.downloader.plan(entry)
        if entry.address:
            entry = replace(entry, files=tuple(CatalogFile(file.path, file.size) for file in remote))
            self._planned(entry)
        return entry, remote

    def _planned(self, entry: CatalogEntry) -> None:
        with self._addresses_lock:
            self.addresses[entry.id] = entry

    def download(self, entry_id: str, on_progress: Report | None = None, cancel: CancelToken | None = None,
                 remote: list[RemoteFile] | None = None) -> InstalledModel:
        """Download and register a catalog entry or what an address names (`remote`: its `plan()`, when made)."""
        entry = self.entry(entry_id)
        if entry.address:
            return self._download_address(entry, on_progress, cancel or CancelToken(), remote)
        return self.downloader.download(entry, on_progress, cancel, remote)

    def _download_address(self, entry: CatalogEntry, on_progress: Report | None, cancel: CancelToken,
                          remote: list[RemoteFile] | None) -> InstalledModel:
        """Download the file an address names, verified against the sha256 the hub publishes, then judge it as an
        import does; a file the app cannot use is deleted again, saying what it is."""
        if remote is None:
            entry, remote = self.plan(entry)
        else:
            entry = self.entry(entry.id)  # as planned: with its files and their sizes
        files = self.downloader.fetch(entry, remote, on_progress, cancel)
        folder = self.paths.models / entry.id
        path = (folder / entry.weights_file if entry.weights_file else folder).resolve()
        (item,) = self.importer.import_path(path, on_progress=on_progress, cancel=cancel,
                                            sha256=files[0].sha256 if entry.weights_file else None)
        if item.model_id is None:
            shutil.rmtree(folder, ignore_errors=True)
            raise DownloadError(f"{entry.name}: {item.reason}. The downloaded file was deleted.")
        if entry.preview and entry.weights_file:
            self._keep_preview(entry.preview, path)
        model = self.registry.get(item.model_id)
        model = self.registry.add(replace(
            model, id=entry.id, name=entry.name, source="download", owned=True, catalog_id=entry.id,
            revision=remote[0].commit, added=0.0,
            trigger_words=(entry.trigger_words if model.kind in NOTED_KINDS else ()) or model.trigger_words))
        self._keep_addresses()
        return model

    def _keep_preview(self, address: str, weights: Path) -> None:
        """Keep the picture a model's page shows beside its downloaded file, as other tools keep it
        (`NAME.preview.jpeg`), for the app's lists to show; a picture that cannot be had is done without."""
        try:
            data, extension = kept_bytes(self.downloader.picture(address), "The preview")
            write_atomic(weights.with_name(f"{weights.stem}.preview.{extension}"), data)
        except (AppError, OSError) as error:
            log.info("no preview kept for %s: %s", weights.name, error)

    def import_path(self, path: Path, copy: bool = False, on_progress: Report | None = None,
                    cancel: CancelToken | None = None) -> list[ImportItem]:
        """Import a weights file, a model's folder, or every model below a folder (see `Importer.import_path`). A
        folder of models used where they are becomes a linked folder (`sync_folders`) once it held one; what was
        removed from it before comes back, as it was asked for by hand."""
        path = path.expanduser().resolve()
        self.registry.take_back(path)
        items = self.importer.import_path(path, copy, on_progress, cancel)
        usable = any(item.status in (ImportStatus.IMPORTED, ImportStatus.ALREADY) for item in items)
        if not copy and usable and is_models_folder(path):
            self.link_folder(path)
        return items

    def link_folder(self, folder: Path) -> bool:
        """Look through `folder` for new models at each start (`sync_folders`); False (and nothing done) where a
        linked folder holds it already, or it is the app's own models folder or inside it."""
        folder = folder.expanduser().resolve()
        own = self.paths.models.resolve()
        if folder == own or own in folder.parents:
            return False
        if any(folder == linked or linked in folder.parents for linked in self.registry.linked_folders()):
            return False
        self.registry.link_folder(folder)
        return True

    def check_linkable(self, folder: Path, linked: list[Path]) -> Path:
        """`folder` resolved, or InputError saying why it cannot be linked: not a folder, the app's own models
        folder or inside it, or inside a folder of `linked`."""
        resolved = folder.expanduser().resolve()
        if not resolved.is_dir():
            raise InputError(f"{folder} is not a folder (or is on a drive that is not there).")
        own = self.paths.models.resolve()
        if resolved == own or own in resolved.parents:
            raise InputError(f"{resolved} is the app's own models folder{' or inside it' if resolved != own else ''}: "
                             "what the app downloads or copies is installed already.")
        for other in linked:
            if resolved == other or other in resolved.parents:
                raise InputError(f"{resolved} is linked already" + (f", with {other}." if resolved != other else "."))
        return resolved

    def sync_folders(self, on_progress: Report | None = None, cancel: CancelToken | None = None) -> list[ImportItem]:
        """Import the models added to the linked folders since they were last looked through (those there already
        are passed over by path and size, in moments; a new one is hashed as any import is), leaving out the ones
        the person removed. A linked folder not there now (a drive unplugged) is passed over."""
        left_out = self.registry.left_out()
        items = []
        for folder in self.registry.linked_folders():
            if folder.is_dir():
                items += self.importer.import_path(folder, False, on_progress, cancel, leave_out=left_out)
        return items

    def installed_address(self, text: str) -> InstalledModel | None:
        """The installed model a Hugging Face or Civitai address names, if it was downloaded (None also for an
        address of nothing the app downloads)."""
        try:
            entry = self._address_entry(text)
        except InputError:
            return None
        return self.installed_entry(self._catalogs(entry) or entry)

    def _catalogs(self, entry: CatalogEntry) -> CatalogEntry | None:
        """The catalog's entry for what an address names (a Hyper-SD LoRA, SDXL), with its recipe; None if none."""
        wanted = entry.files[0].path if entry.files else None  # a file, or a repository's pipeline
        return next((known for known in self.catalog.entries
                     if known.repo == entry.repo and known.weights_file == wanted), None)

    def installed_entry(self, entry: CatalogEntry) -> InstalledModel | None:
        model = self.registry.find(entry.id)
        return model if model is not None and model.catalog_id == entry.id else None

    def embeddings_named(self, base_model: str, *texts: str) -> tuple[str, ...]:
        """The installed embeddings for the base model's architecture that `texts` name (see `named_embeddings`);
        none for a base model the library does not know."""
        model = self.registry.find(base_model)
        if model is None or not model.architecture:
            return ()
        return named_embeddings(self.registry.list(ModelKind.EMBEDDING, model.architecture), *texts)

    def embedding_vectors(self, base_model: str, text: str) -> dict[str, int]:
        """The installed embeddings `text` names for the base model (`embeddings_named`), by name, each with the
        vectors it puts in the prompt: as many tokens, which A1111's counter counts. One whose file cannot be read
        now is left out (its name counts as words; generating says what is wrong with it)."""
        vectors = {}
        for path in self.embeddings_named(base_model, text):
            try:
                count = embedding_vectors(read_header(path)[0])
            except AppError:
                continue
            if count is not None:
                vectors[Path(path).stem] = count
        return vectors

    def loras_tagged(self, base_model: str, prompt: str, listed: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The installed LoRAs the prompt's `<lora:NAME:WEIGHT>` tags name, as (file, weight), for the base model's
        architecture (see `tagged_loras`): one for the other architecture is left out, as A1111 skips it, and the
        generation's warning names its tag."""
        if not network_tags(prompt):
            return []
        model = self.registry.find(base_model)
        architecture = model.architecture if model is not None else None
        if architecture is None:  # a file the library does not know: its header says
            try:
                architecture = base_architecture(base_model)
            except AppError:
                pass
        loras = [lora for lora in self.registry.list(ModelKind.LORA)
                 if architecture is None or lora.architecture in (None, architecture)]
        return tagged_loras(loras, prompt, listed)

    def unprompted_words(self, lora_paths: Iterable[str], prompt: str) -> list[str]:
        """A note for each installed LoRA at these paths whose trigger words the prompt has none of: its makers say
        it shows little without them."""
        notes = []
        for path in dict.fromkeys(lora_paths):
            model = self.registry.find(str(path))
            if model is not None and model.trigger_words and not any(
                    word.lower() in prompt.lower() for word in model.trigger_words):
                notes.append(f"{model.name} is applied, but the prompt has none of its trigger words "
                             f"({', '.join(model.trigger_words)}); it may show little without them.")
        return notes

    def image_encoder_for(self, adapter: str) -> InstalledModel | None:
        """The installed image encoder the IP-Adapter at `adapter` reads its pictures with (`ip_adapter_files`);
        None where none is installed. `ModelFormatError` for a file that is no IP-Adapter the app runs."""
        from hypersd_desktop.core.errors import ModelFormatError
        from hypersd_desktop.engine.ip_adapter_files import adapter_need, encoder_shape

        need = adapter_need(adapter)
        for encoder in self.registry.list(ModelKind.IMAGE_ENCODER):
            try:
                if encoder_shape(encoder.path).serves(need):
                    return encoder
            except (OSError, ModelFormatError):  # moved or damaged since it was installed
                continue
        return None

    def vaes_for(self, architecture: str) -> list[InstalledModel]:
        """The installed VAEs a model of `architecture` may use: those for it, and those whose architecture is not
        known (a VAE file does not say which model's latents it decodes), the catalog's first. A FLUX VAE registered
        before imports told them apart is left out."""
        vaes = [vae for vae in self.registry.list(ModelKind.VAE)
                if vae.architecture in (None, architecture) and vae_family(vae.path) is None]
        return sorted(vaes, key=lambda vae: (vae.catalog_id != CATALOG_VAES.get(architecture), vae.name.lower()))

    def vae_for(self, base_model: str, architecture: str | None = None) -> str | None:
        """The VAE the app uses for a base model when none is chosen ("Automatic"), or None for the model's own:

        - a VAE file beside a checkpoint, named as AUTOMATIC1111 looks for one (`<checkpoint>.vae.safetensors`);
        - for a checkpoint without a VAE of its own, the catalog's VAE for its architecture, else an installed VAE
          made for it (None if there is none: loading then says what to install);
        - for SDXL, the fp16-safe SDXL VAE where it is installed: it decodes in fp16 on a GPU, where the SDXL
          base VAE overflows and is decoded in fp32, about twice as slow.
        """
        path = Path(base_model)
        beside = vae_beside(path)
        if beside is not None:
            return str(beside)
        if path.suffix.lower() == ".safetensors":  # the pair imported together, then copied apart
            name = f"{path.stem}.vae.safetensors"
            pair = [vae for vae in self.registry.list(ModelKind.VAE) if Path(vae.path).name == name]
            if pair:
                return pair[0].path
        if architecture is None:  # read from the model; one that cannot be read is left to loading to explain
            try:
                architecture = base_architecture(path)
            except AppError:
                return None
        made_for = self.registry.list(ModelKind.VAE, architecture)
        catalogs = [vae for vae in made_for if vae.catalog_id == CATALOG_VAES.get(architecture)]
        if not base_has_vae(path):
            return (catalogs or made_for)[0].path if made_for else None
        if architecture == Architecture.SDXL and catalogs:
            return catalogs[0].path
        return None

    def taesd_for(self, architecture: str) -> str | None:
        """The installed TAESD (SD1.5) or TAESDXL that decodes `architecture`'s latents, if any: the catalog's
        first, then an imported one."""
        found = self.registry.list(ModelKind.TAESD, architecture)
        found.sort(key=lambda model: model.catalog_id is None)
        return found[0].path if found else None

    def hyper_files(self, architecture: str) -> list[InstalledModel]:
        """The installed Hyper-SD LoRAs and UNets for `architecture`, in the order the window lists them."""
        return [model for model in self.registry.list(architecture=architecture)
                if model.recipe and model.kind in (ModelKind.LORA, ModelKind.UNET)]

    def style_loras(self, architecture: str) -> list[InstalledModel]:
        """The installed LoRAs for `architecture` other than Hyper-SD's: those a person adds for a style."""
        return [model for model in self.registry.list(ModelKind.LORA, architecture) if not model.recipe]

    def named(self, name: str) -> InstalledModel | None:
        """The installed model with that id, name or file name (in any case), one whose files are here first (a
        model imported again after a move); None if there is none."""
        wanted = name.strip().lower()
        named = [m for m in self.registry.list()  # the file's own name too, as other tools write it
                 if wanted in (m.id.lower(), m.name.lower(), Path(m.path).stem.lower(), Path(m.path).name.lower())]
        named.sort(key=lambda m: (not Path(m.path).exists(), m.id.lower() != wanted, m.name.lower() != wanted))
        return named[0] if named else None

    def resolve(self, name_or_path: str) -> str:
        """A path as given if it exists, else the path of the installed model with that id, name or file name."""
        if Path(name_or_path).expanduser().exists():
            return str(Path(name_or_path).expanduser().resolve())
        model = self.named(name_or_path)
        if model is None and any(sep in name_or_path for sep in ("/", "\\")):
            raise InputError(f"{name_or_path} does not exist; check the path.")
        if model is None:
            raise InputError(
                f"{name_or_path} is neither a file nor an installed model; check the path, or see "
                "`hypersd-desktop models list`."
            )
        self.registry.touch(model.id)
        return model.path

    def verify(self, key: str | None = None, on_progress: Report | None = None,
               cancel: CancelToken | None = None) -> list[VerifyResult]:
        """Re-hash the files of one model (or all) and compare with the recorded sha256."""
        models = [self.registry.get(key)] if key else self.registry.list()
        total = sum(file.size for model in models for file in model.files)
        meter = TransferMeter("verify", total, 0, on_progress)
        results = []
        for model in models:
            folder = Path(model.path) if model.layout == ModelLayout.DIFFUSERS else Path(model.path).parent
            problems = []
            for file in model.files:
                path = folder / file.path if model.layout == ModelLayout.DIFFUSERS else _file_of(model, file.path)
                if not path.is_file():
                    problems.append(f"{file.path} is missing")
                    meter.advance(file.path, file.size)
                elif file.sha256 and sha256_file(path, meter, cancel) != file.sha256:
                    problems.append(f"{file.path} has changed (sha256 differs)")
                elif not file.sha256:
                    meter.advance(file.path, file.size)
            results.append(VerifyResult(model, tuple(problems)))
        meter.advance("", 0, force=True)
        return results

    def remove(self, key: str) -> int:
        """Unregister a model; delete its files only if the app downloaded or copied them. Returns bytes freed. A
        model used where it is in a linked folder is left out of that folder's looks from now on."""
        model = self.registry.get(key)
        path = Path(model.path)
        if not model.owned and any(linked in path.parents for linked in self.registry.linked_folders()):
            self.registry.leave_out(model.path)
        return self.registry.remove(key)
