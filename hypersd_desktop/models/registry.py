"""The registry of installed models: one SQLite database under the app's data folder.

A model is registered only once it is complete and verified. Rows hold paths; files live on
disk. `owned` says whether the app made the files (a download or a copy), which decides
whether removing the model deletes them: a file the app only references is never deleted.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from hypersd_desktop.core.database import Database, below
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.prompt_tags import network_tags, tag_weight, trigger_words
from hypersd_desktop.core.vocab import ModelKind, ModelLayout
from hypersd_desktop.models.model_notes import NOTED_KINDS, preferred_weight

log = logging.getLogger("hypersd.models")

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE models (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        architecture TEXT,
        layout TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        sha256 TEXT,
        short_hash TEXT,
        source TEXT NOT NULL,
        owned INTEGER NOT NULL,
        licence TEXT,
        catalog_id TEXT,
        recipe TEXT,
        revision TEXT,
        added REAL NOT NULL,
        last_used REAL
    );
    CREATE TABLE model_files (
        model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT,
        PRIMARY KEY (model_id, path)
    );
    """,
    # The hashes other tools' images name files by (see core.hashes): NULL until computed, "" when a file has none.
    """
    ALTER TABLE models ADD COLUMN lora_hash TEXT;
    ALTER TABLE models ADD COLUMN legacy_hash TEXT;
    """,
    # What a LoRA's or embedding's makers say to write in the prompt (a JSON list; NULL: not read yet, as for the
    # rows before it) and the weight they suggest.
    """
    ALTER TABLE models ADD COLUMN trigger_words TEXT;
    ALTER TABLE models ADD COLUMN preferred_weight REAL;
    """,
    # Folders of models imported by reference (an A1111 or ComfyUI models folder, a Hugging Face cache), looked
    # through again at each start for models added there since; a model the person removed from one is left out of
    # those looks until it is imported again by hand.
    """
    CREATE TABLE linked_folders (path TEXT PRIMARY KEY, added REAL NOT NULL);
    CREATE TABLE left_out (path TEXT PRIMARY KEY);
    """,
)


@dataclass(frozen=True)
class ModelFile:
    """One file of a model; `path` is relative to the model's folder for folder models."""

    path: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class InstalledModel:
    id: str
    name: str
    kind: str
    architecture: str | None
    layout: str  # "diffusers" (a folder) or "file"
    path: str
    size: int
    sha256: str | None
    short_hash: str | None
    source: str  # "download", "hf-cache", "import-copy", "import-reference"
    owned: bool
    licence: str | None = None
    catalog_id: str | None = None
    recipe: str | None = None
    revision: str | None = None
    added: float = 0.0
    last_used: float | None = None
    lora_hash: str | None = None  # A1111's hash of a LoRA file (`core.hashes.lora_hash`)
    legacy_hash: str | None = None  # A1111's old 8-digit model hash ("AutoV1")
    files: tuple[ModelFile, ...] = ()
    trigger_words: tuple[str, ...] = ()  # what to write in the prompt for a LoRA or embedding (`models.model_notes`)
    preferred_weight: float | None = None  # a LoRA's suggested weight

    def has_hash(self, short_hash: str) -> bool:
        """Whether `short_hash` (from an image's metadata: 8 to 64 hex digits) names this model's file."""
        wanted = short_hash.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", wanted):
            return False
        return (any(full and full.startswith(wanted) for full in (self.sha256, self.short_hash, self.lora_hash))
                or wanted == self.legacy_hash)


_COLUMNS = {field.name for field in fields(InstalledModel)} - {"files"}
MAX_TRIGGER_TEXT = 64 * 1024


class Registry:
    """Installed models in `models.sqlite3` (WAL, foreign keys, ordered migrations)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        # Every read and write goes through the database's lock, as in the gallery store: the
        # connection is shared by the GUI thread and the download and import threads.
        self._db = Database(database, MIGRATIONS, timeout=10.0)
        self.notice = self._db.notice  # a damaged database was put aside: say so
        self._transaction = self._db.transaction

    def close(self) -> None:
        self._db.close()

    def add(self, model: InstalledModel) -> InstalledModel:
        """Register a complete, verified model (replacing a row with the same id)."""
        model = model if model.added else _replace(model, added=time.time())
        with self._transaction() as db:
            db.execute("DELETE FROM models WHERE id = ? OR path = ?", (model.id, model.path))
            db.execute(
                "INSERT INTO models (id, name, kind, architecture, layout, path, size, sha256, short_hash, source, owned,"
                " licence, catalog_id, recipe, revision, added, last_used, lora_hash, legacy_hash, trigger_words,"
                " preferred_weight) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (model.id, model.name, model.kind, model.architecture, model.layout, model.path, model.size, model.sha256,
                 model.short_hash, model.source, int(model.owned), model.licence, model.catalog_id, model.recipe,
                 model.revision, model.added, model.last_used, model.lora_hash, model.legacy_hash,
                 json.dumps(list(model.trigger_words)), model.preferred_weight),
            )
            db.executemany(
                "INSERT INTO model_files (model_id, path, size, sha256) VALUES (?,?,?,?)",
                [(model.id, f.path, f.size, f.sha256) for f in model.files],
            )
        return model

    def list(self, kind: str | None = None, architecture: str | None = None) -> list[InstalledModel]:
        query, args = "SELECT * FROM models WHERE 1=1", []
        if kind:
            query, args = query + " AND kind = ?", [*args, kind]
        if architecture:
            query, args = query + " AND architecture = ?", [*args, architecture]
        with self._db.lock:
            return [self._model(row) for row in self._db.execute(query + " ORDER BY kind, name", args)]

    def find(self, key: str) -> InstalledModel | None:
        """A model by id, by name (case-insensitive) or by path."""
        with self._db.lock:
            rows = self._db.execute(
                "SELECT * FROM models WHERE id = ? OR lower(name) = lower(?) OR path = ? ORDER BY id = ? DESC LIMIT 1",
                (key, key, key, key),
            )
            return self._model(rows[0]) if rows else None

    def get(self, key: str) -> InstalledModel:
        model = self.find(key)
        if model is None:
            raise InputError(f"No installed model {key!r}; `hypersd-desktop models list` shows what is installed.")
        return model

    def sha256_of(self, path: Path) -> str | None:
        """The recorded sha256 of a registered single-file model at `path`, if its size still matches."""
        return self._recorded("sha256", path)

    def lora_hash_of(self, path: Path) -> str | None:
        """The recorded LoRA hash of a registered single-file model at `path`, if its size still matches."""
        return self._recorded("lora_hash", path)

    def _recorded(self, column: str, path: Path) -> str | None:
        rows = self._db.execute(f"SELECT {column} AS value, size FROM models WHERE path = ? AND layout = 'file'",
                                (str(path),))
        row = rows[0] if rows else None
        if row is None or not row["value"] or not path.is_file() or path.stat().st_size != row["size"]:
            return None
        return row["value"]

    def set_hashes(self, model_id: str, lora_hash: str, legacy_hash: str) -> None:
        """Record a model's A1111 hashes ("" for one its file does not have)."""
        self._db.execute("UPDATE models SET lora_hash = ?, legacy_hash = ? WHERE id = ?",
                         (lora_hash, legacy_hash, model_id))

    def set_notes(self, model_id: str, words: tuple[str, ...], weight: float | None) -> None:
        """Record a model's trigger words and suggested weight (None: the default), as the person wrote them; an
        empty word, a duplicate or a weight out of range is left out as a note's would be."""
        words = trigger_words(list(words))
        self._db.execute("UPDATE models SET trigger_words = ?, preferred_weight = ? WHERE id = ?",
                         (json.dumps(list(words)), preferred_weight(weight), model_id))

    def unread_notes(self) -> list[InstalledModel]:
        """The LoRAs and embeddings registered before the registry kept trigger words, whose notes were never read
        (a row read and found without words holds an empty list)."""
        marks = ",".join("?" * len(NOTED_KINDS))
        with self._db.lock:
            return [self._model(row) for row in self._db.execute(
                f"SELECT * FROM models WHERE trigger_words IS NULL AND kind IN ({marks})", NOTED_KINDS)]

    def linked_folders(self) -> list[Path]:
        """The folders looked through for new models at each start, in the order they were linked."""
        return [Path(row["path"]) for row in self._db.execute("SELECT path FROM linked_folders ORDER BY added")]

    def link_folder(self, folder: Path) -> None:
        """Look through `folder` at each start from now on; folders linked below it are looked through with it."""
        with self._transaction() as db:
            db.execute("DELETE FROM linked_folders WHERE path >= ? AND path < ?", below(folder))
            db.execute("INSERT OR IGNORE INTO linked_folders (path, added) VALUES (?, ?)", (str(folder), time.time()))

    def unlink_folder(self, folder: Path) -> None:
        """No more looks through `folder`; its models stay installed."""
        self._db.execute("DELETE FROM linked_folders WHERE path = ?", (str(folder),))

    def left_out(self) -> set[str]:
        """The paths of models removed from a linked folder: not imported again by its looks."""
        return {row["path"] for row in self._db.execute("SELECT path FROM left_out")}

    def leave_out(self, path: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO left_out (path) VALUES (?)", (path,))

    def take_back(self, path: Path) -> None:
        """An import by hand of `path` (a file or a folder) brings back what was left out there."""
        self._db.execute("DELETE FROM left_out WHERE path = ? OR (path >= ? AND path < ?)", (str(path), *below(path)))

    def touch(self, model_id: str) -> None:
        self._db.execute("UPDATE models SET last_used = ? WHERE id = ?", (time.time(), model_id))

    def mark_used(self, paths: Iterable[str]) -> None:
        """Record now as the last use of the installed models at these paths (others are ignored)."""
        paths = list(dict.fromkeys(str(path) for path in paths))
        if not paths:
            return
        marks = ",".join("?" * len(paths))
        try:
            self._db.execute(f"UPDATE models SET last_used = ? WHERE path IN ({marks})", (time.time(), *paths))
        except sqlite3.Error as error:  # a busy or read-only library: not worth failing the work that used them
            log.warning("could not record the models' last use: %s", error)

    def remove(self, key: str) -> int:
        """Unregister a model; delete its files only if the app made them. Returns the bytes freed."""
        model = self.get(key)
        freed = 0
        if model.owned:
            path = Path(model.path)
            target = path.parent if model.layout == ModelLayout.FILE and path.parent.name == model.id else path
            freed = _disk_size(target)
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        with self._transaction() as db:
            db.execute("DELETE FROM models WHERE id = ?", (model.id,))
        return freed

    def _model(self, row: sqlite3.Row) -> InstalledModel:
        files = self._db.execute("SELECT path, size, sha256 FROM model_files WHERE model_id = ? ORDER BY path",
                                 (row["id"],))
        # a later version's columns are left out: going back to this version keeps the library readable
        values = {key: value for key, value in dict(row).items() if key in _COLUMNS}
        values["owned"] = bool(values["owned"])
        values["trigger_words"] = _stored_words(values.get("trigger_words"))
        values["preferred_weight"] = preferred_weight(values.get("preferred_weight"))
        return InstalledModel(**values, files=tuple(ModelFile(f["path"], f["size"], f["sha256"]) for f in files))


def named_embeddings(models: Iterable[InstalledModel], *texts: str) -> tuple[str, ...]:
    """The files of the embeddings among `models` that `texts` name: an embedding's name in a prompt is its file
    name without the extension, in any case, as in A1111, whose embeddings folder applies the same way."""
    return tuple(model.path for model in models if model.kind == ModelKind.EMBEDDING
                 and any(Path(model.path).stem.lower() in text.lower() for text in texts if text))


def tagged_loras(models: Iterable[InstalledModel], prompt: str, listed: Iterable[str] = ()) -> list[tuple[str, float]]:
    """The files and weights of the LoRAs among `models` a prompt's A1111 tags name (`<lora:NAME:WEIGHT>`, NAME the
    file's name without its extension, in any case), as A1111 applies a LoRA by its tag; a tag naming one of the
    `listed` files is left to the list, whose weight it keeps, and one naming no LoRA here to the generation's
    warning."""
    have = {Path(path).stem.lower() for path in listed}
    by_stem = {Path(m.path).stem.lower(): m for m in models if m.kind == ModelKind.LORA and Path(m.path).is_file()}
    found = []
    for kind, name, weight in network_tags(prompt):
        model = by_stem.get(name.lower())
        if kind != "hypernet" and model is not None and name.lower() not in have:
            found.append((model.path, tag_weight(weight)))
            have.add(name.lower())
    return found


def _stored_words(text: str | None) -> tuple[str, ...]:
    """The trigger words a row holds; a damaged cell (edited by hand, or by a later version) reads as none."""
    if not text or len(text) > MAX_TRIGGER_TEXT:
        return ()
    try:
        return trigger_words(json.loads(text))
    except (ValueError, RecursionError):
        return ()


def _replace(model: InstalledModel, **changes) -> InstalledModel:
    from dataclasses import replace

    return replace(model, **changes)


def _disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
