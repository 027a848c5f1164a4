"""The model library: catalog, downloads, imports, registry and verification behind one object.

The CLI and the GUI both go through this, so a model downloaded in one is known to the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.vocab import ModelKind, ModelLayout
from hypersd_desktop.models.catalog import Catalog, CatalogEntry, load_catalog
from hypersd_desktop.models.downloads import Downloader
from hypersd_desktop.core.hashes import HashCache, other_tools_hashes, sha256_file
from hypersd_desktop.models.importer import ImportItem, Importer
from hypersd_desktop.models.registry import InstalledModel, Registry, named_embeddings

Report = Callable[[TransferProgress], None]


@dataclass(frozen=True)
class VerifyResult:
    """`problems` lists files that are missing or whose sha256 changed; empty when the model is intact."""

    model: InstalledModel
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class ModelLibrary:
    """Everything about installed and installable models, rooted at `paths`."""

    def __init__(self, paths: AppPaths, catalog: Catalog | None = None, endpoint: str | None = None,
                 token: str | None = None) -> None:
        paths.ensure()
        self.paths = paths
        self.catalog = catalog or load_catalog()
        self.registry = Registry(paths.data / "models.sqlite3")
        self.downloader = Downloader(paths.models, self.registry, endpoint=endpoint, token=token)
        self.importer = Importer(self.registry, paths.models)

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

    def download(self, entry_id: str, on_progress: Report | None = None, cancel: CancelToken | None = None) -> InstalledModel:
        return self.downloader.download(self.catalog.get(entry_id), on_progress, cancel)

    def import_path(self, path: Path, copy: bool = False, on_progress: Report | None = None,
                    cancel: CancelToken | None = None) -> list[ImportItem]:
        return self.importer.import_path(path, copy, on_progress, cancel)

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

    def resolve(self, name_or_path: str) -> str:
        """A path as given if it exists, else the path of the installed model with that id or name."""
        if Path(name_or_path).expanduser().exists():
            return str(Path(name_or_path).expanduser().resolve())
        model = self.registry.find(name_or_path)
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
                path = folder / file.path if model.layout == ModelLayout.DIFFUSERS else Path(model.path)
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
        """Unregister a model; delete its files only if the app downloaded or copied them. Returns bytes freed."""
        return self.registry.remove(key)
