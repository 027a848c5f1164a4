"""The gallery database: one SQLite file (WAL, ordered migrations) with full-text search.

A row per image holds its path and what made it; the image itself is a file on disk. FTS5
indexes prompt, negative prompt, model and LoRA names, the other prompts an image holds, and what a tagger saw in
it (Describe for search).
Deleted images move to the app's trash and keep their row (marked `trashed_at`) until the trash
is emptied, so a delete can be undone.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hypersd_desktop.core.database import Database, below

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        file_size INTEGER NOT NULL DEFAULT 0,
        width INTEGER, height INTEGER,
        prompt TEXT NOT NULL DEFAULT '',
        negative_prompt TEXT NOT NULL DEFAULT '',
        seed INTEGER, steps INTEGER, guidance REAL, scheduler TEXT, recipe TEXT,
        model_name TEXT, model_hash TEXT,
        loras TEXT NOT NULL DEFAULT '[]',
        lora_names TEXT NOT NULL DEFAULT '',
        device TEXT, time_taken REAL,
        created REAL NOT NULL,
        favourite INTEGER NOT NULL DEFAULT 0,
        rating INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,
        metadata_format TEXT,
        request TEXT,
        trashed_at REAL,
        trash_path TEXT
    );
    CREATE INDEX images_created ON images (created DESC, id DESC);
    CREATE INDEX images_model ON images (model_name, created DESC);
    CREATE INDEX images_steps ON images (steps, created DESC);
    CREATE INDEX images_favourite ON images (favourite, created DESC);
    CREATE TABLE tags (
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (image_id, tag)
    );
    CREATE INDEX tags_tag ON tags (tag);
    CREATE VIRTUAL TABLE images_fts USING fts5(
        prompt, negative_prompt, model_name, lora_names, content='images', content_rowid='id'
    );
    CREATE TRIGGER images_ai AFTER INSERT ON images BEGIN
        INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names)
        VALUES (new.id, new.prompt, new.negative_prompt, coalesce(new.model_name, ''), new.lora_names);
    END;
    CREATE TRIGGER images_ad AFTER DELETE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_name, lora_names)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, coalesce(old.model_name, ''), old.lora_names);
    END;
    CREATE TRIGGER images_au AFTER UPDATE OF prompt, negative_prompt, model_name, lora_names ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_name, lora_names)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, coalesce(old.model_name, ''), old.lora_names);
        INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names)
        VALUES (new.id, new.prompt, new.negative_prompt, coalesce(new.model_name, ''), new.lora_names);
    END;
    """,
    # LoRA names are kept apart by LORA_SEPARATOR, no longer by spaces, which names have ("add detail v2")
    """
    UPDATE images SET lora_names = lora_names_of(loras) WHERE loras != '[]';
    """,
    # The prompts an image holds besides its own two (NovelAI's character prompts, ADetailer's), searched too;
    # NULL for the images indexed before, whose files were not read for them (an import of their folder reads them)
    """
    ALTER TABLE images ADD COLUMN other_prompts TEXT;
    DROP TRIGGER images_ai;
    DROP TRIGGER images_ad;
    DROP TRIGGER images_au;
    DROP TABLE images_fts;
    CREATE VIRTUAL TABLE images_fts USING fts5(
        prompt, negative_prompt, model_name, lora_names, other_prompts, content='images', content_rowid='id'
    );
    CREATE TRIGGER images_ai AFTER INSERT ON images BEGIN
        INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names, other_prompts)
        VALUES (new.id, new.prompt, new.negative_prompt, coalesce(new.model_name, ''), new.lora_names,
                new.other_prompts);
    END;
    CREATE TRIGGER images_ad AFTER DELETE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_name, lora_names, other_prompts)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, coalesce(old.model_name, ''), old.lora_names,
                old.other_prompts);
    END;
    CREATE TRIGGER images_au AFTER UPDATE OF prompt, negative_prompt, model_name, lora_names, other_prompts
    ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_name, lora_names, other_prompts)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, coalesce(old.model_name, ''), old.lora_names,
                old.other_prompts);
        INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names, other_prompts)
        VALUES (new.id, new.prompt, new.negative_prompt, coalesce(new.model_name, ''), new.lora_names,
                new.other_prompts);
    END;
    INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names, other_prompts)
    SELECT id, prompt, negative_prompt, coalesce(model_name, ''), lora_names, other_prompts FROM images;
    """,
    # What a tagger saw in the picture (Describe for search: its booru tags), searched too; NULL: not described
    """
    ALTER TABLE images ADD COLUMN described TEXT;
    DROP TRIGGER images_ai;
    DROP TRIGGER images_ad;
    DROP TRIGGER images_au;
    DROP TABLE images_fts;
    CREATE VIRTUAL TABLE images_fts USING fts5(
        prompt, negative_prompt, model_name, lora_names, other_prompts, described, content='images',
        content_rowid='id'
    );
    CREATE TRIGGER images_ai AFTER INSERT ON images BEGIN
        INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names, other_prompts, described)
        VALUES (new.id, new.prompt, new.negative_prompt, coalesce(new.model_name, ''), new.lora_names,
                new.other_prompts, new.described);
    END;
    CREATE TRIGGER images_ad AFTER DELETE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_name, lora_names, other_prompts,
                                described)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, coalesce(old.model_name, ''), old.lora_names,
                old.other_prompts, old.described);
    END;
    CREATE TRIGGER images_au AFTER UPDATE OF prompt, negative_prompt, model_name, lora_names, other_prompts,
                                            described ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt, model_name, lora_names, other_prompts,
                                described)
        VALUES ('delete', old.id, old.prompt, old.negative_prompt, coalesce(old.model_name, ''), old.lora_names,
                old.other_prompts, old.described);
        INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names, other_prompts, described)
        VALUES (new.id, new.prompt, new.negative_prompt, coalesce(new.model_name, ''), new.lora_names,
                new.other_prompts, new.described);
    END;
    INSERT INTO images_fts (rowid, prompt, negative_prompt, model_name, lora_names, other_prompts, described)
    SELECT id, prompt, negative_prompt, coalesce(model_name, ''), lora_names, other_prompts, described FROM images;
    """,
)

# Between the LoRA names of a row's `lora_names`: a character no file name has, and a word break to the search.
LORA_SEPARATOR = "\x1f"


def lora_names_of(loras: str) -> str:
    """The names in a row's `loras` JSON, as `lora_names` keeps them (for the gallery's second migration)."""
    try:
        return LORA_SEPARATOR.join(str(lora[0]) for lora in json.loads(loras))
    except (ValueError, TypeError, IndexError, KeyError):
        return ""

COLUMNS = (
    "path", "file_size", "width", "height", "prompt", "negative_prompt", "seed", "steps", "guidance", "scheduler",
    "recipe", "model_name", "model_hash", "loras", "lora_names", "device", "time_taken", "created", "favourite",
    "rating", "source", "metadata_format", "request", "other_prompts", "described",
)


_RECORD_FIELDS = frozenset(COLUMNS) - {"lora_names"} | {"id"}


@dataclass(frozen=True)
class ImageRecord:
    """One gallery image. `loras` are (name, weight, hash); `request` is the exact request JSON, if known."""

    path: str
    created: float
    source: str
    prompt: str = ""
    negative_prompt: str = ""
    file_size: int = 0
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    recipe: str | None = None
    model_name: str | None = None
    model_hash: str | None = None
    loras: tuple[tuple[str, float, str | None], ...] = ()
    device: str | None = None
    time_taken: float | None = None
    favourite: bool = False
    rating: int = 0
    metadata_format: str | None = None
    request: str | None = None
    # the prompts the file holds besides these two, a line each (searched); None: the file was not read for them
    other_prompts: str | None = ""
    # the booru tags a tagger saw in the picture (Describe for search), searched; None: not described
    described: str | None = None
    tags: tuple[str, ...] = ()
    id: int | None = None

    def row(self) -> tuple:
        values = {
            **{name: getattr(self, name, None) for name in COLUMNS},
            **{name: _as_int64(getattr(self, name)) for name in ("width", "height", "steps")},
            "seed": _seed_to_int64(self.seed),
            "loras": json.dumps([list(lora) for lora in self.loras]),
            "lora_names": LORA_SEPARATOR.join(name for name, _, _ in self.loras),
            "favourite": int(self.favourite),
        }
        return tuple(values[name] for name in COLUMNS)


_INT64 = 2**63


def _as_int64(value: int | None) -> int | None:
    """What SQLite can store of a number read from another tool's metadata: out of range is unknown."""
    return value if value is None or -_INT64 <= value < _INT64 else None


def _seed_to_int64(seed: int | None) -> int | None:
    """Seeds go up to 2^64 - 1 (ComfyUI) and are never negative: those past 2^63 are stored as
    their two's complement, read back by `_seed_from_int64`."""
    if seed is not None and _INT64 <= seed < 2 * _INT64:
        return seed - 2 * _INT64
    return _as_int64(seed)


def _seed_from_int64(stored: int | None) -> int | None:
    return stored + 2 * _INT64 if stored is not None and stored < 0 else stored


@dataclass(frozen=True)
class ImageQuery:
    """Filters for listing images, newest first. `text` is full-text search (FTS5 syntax, words AND-ed)."""

    text: str | None = None
    model: str | None = None
    lora: str | None = None
    steps: int | None = None
    created_from: float | None = None
    created_to: float | None = None
    favourite: bool | None = None
    min_rating: int | None = None
    tag: str | None = None
    ids: tuple[int, ...] | None = None
    described: bool | None = None  # whether a tagger has described the image (Describe for search)
    made_with: str | None = None  # the tool whose data the file holds (`metadata_format`); NO_DATA: none
    trashed: bool = False
    oldest_first: bool = False


@dataclass(frozen=True)
class Page:
    """One page of results; pass `cursor` to the next call for the page after it (None: the end)."""

    images: list[ImageRecord]
    cursor: tuple[float, int] | None
    extra: dict = field(default_factory=dict)


class GalleryStore:
    """All reads and writes of the gallery database; safe to share between threads."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self._database = Database(database, MIGRATIONS, functions={"lora_names_of": lora_names_of})
        self.notice = self._database.notice  # a damaged database was put aside: say so
        self._db = self._database.connection
        self._lock = self._database.lock
        self.transaction = self._database.transaction
        self._row_names: dict[int, tuple[str, ...]] = {}

    def close(self) -> None:
        self._database.close()

    # -- writes ----------------------------------------------------------------------------

    def add(self, record: ImageRecord) -> int:
        """Insert an image (its file must already be complete on disk); returns its id."""
        return self.add_many([record])[0]

    def add_many(self, records: Sequence[ImageRecord]) -> list[int]:
        placeholders = ",".join("?" * len(COLUMNS))
        ids = []
        with self.transaction() as db:
            for record in records:
                cursor = db.execute(
                    f"INSERT INTO images ({','.join(COLUMNS)}) VALUES ({placeholders}) "
                    "ON CONFLICT(path) DO NOTHING", record.row())
                if cursor.rowcount:
                    image_id = cursor.lastrowid
                    db.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", [(image_id, t) for t in record.tags])
                else:
                    image_id = db.execute("SELECT id FROM images WHERE path = ?", (record.path,)).fetchone()[0]
                ids.append(image_id)
        return ids

    def has_path(self, path: str) -> bool:
        return self.id_of_path(path) is not None

    def id_of_path(self, path: str) -> int | None:
        """The id of the image kept at `path`, or None."""
        with self._lock:
            row = self._db.execute("SELECT id FROM images WHERE path = ?", (path,)).fetchone()
        return row[0] if row is not None else None

    def unread_other_prompts(self, path: str) -> int | None:
        """The id of the image at `path` if it was indexed before its other prompts were (`other_prompts`)."""
        with self._lock:
            row = self._db.execute("SELECT id FROM images WHERE path = ? AND other_prompts IS NULL", (path,)).fetchone()
        return row[0] if row is not None else None

    def set_other_prompts(self, image_id: int, text: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE images SET other_prompts = ? WHERE id = ?", (text, image_id))

    def set_described(self, image_id: int, text: str) -> None:
        """What a tagger saw in the image (its tags, as a prompt), for the search to find it by."""
        with self.transaction() as db:
            db.execute("UPDATE images SET described = ? WHERE id = ?", (text, image_id))

    def set_favourite(self, image_id: int, favourite: bool) -> None:
        with self.transaction() as db:
            db.execute("UPDATE images SET favourite = ? WHERE id = ?", (int(favourite), image_id))

    def set_rating(self, image_id: int, rating: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE images SET rating = ? WHERE id = ?", (max(0, min(5, rating)), image_id))

    def set_tags(self, image_id: int, tags: Sequence[str]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM tags WHERE image_id = ?", (image_id,))
            db.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", [(image_id, t.strip()) for t in tags if t.strip()])

    def set_path(self, image_id: int, path: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE images SET path = ? WHERE id = ?", (path, image_id))

    def mark_trashed(self, image_id: int, trash_path: str | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE images SET trashed_at = ?, trash_path = ? WHERE id = ?",
                       (time.time() if trash_path else None, trash_path, image_id))

    def delete_rows(self, ids: Sequence[int]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM images WHERE id = ?", [(i,) for i in ids])

    # -- reads -----------------------------------------------------------------------------

    def get(self, image_id: int) -> ImageRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
            return self._record(row) if row else None

    def trash_path(self, image_id: int) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT trash_path FROM images WHERE id = ?", (image_id,)).fetchone()
            return row[0] if row else None

    def query(self, query: ImageQuery = ImageQuery(), limit: int = 100, cursor: tuple[float, int] | None = None) -> Page:
        """A page of images matching `query`, newest first unless `oldest_first` (keyset paging: stable
        while images arrive)."""
        where, args = self._where(query)
        before, order = (">", "ASC") if query.oldest_first else ("<", "DESC")
        if cursor is not None:
            where.append(f"(images.created {before} ? OR (images.created = ? AND images.id {before} ?))")
            args += [cursor[0], cursor[0], cursor[1]]
        # With text, walk the date index in order and probe the full-text matches: a common word
        # matches a quarter of the gallery, and sorting all of those costs 10x more (bench/gallery_100k.py).
        source = "images INDEXED BY images_created" if query.text and query.text.strip() else "images"
        sql = (f"SELECT images.* FROM {source} WHERE {' AND '.join(where)} "
               f"ORDER BY created {order}, id {order} LIMIT ?")
        with self._lock:
            rows = self._db.execute(sql, [*args, limit + 1]).fetchall()
        images = [self._record(row, with_tags=False) for row in rows[:limit]]
        next_cursor = (images[-1].created, images[-1].id) if len(rows) > limit else None
        return Page(images, next_cursor)

    def ids(self, query: ImageQuery = ImageQuery(), connection: sqlite3.Connection | None = None) -> list[int]:
        """The ids of every image matching `query`, in order (110 ms for 100,000 on a laptop-class
        CPU). `connection` (from `open_reader`) lets another thread ask without taking the lock."""
        where, args = self._where(query)
        order = "ASC" if query.oldest_first else "DESC"
        source = "images INDEXED BY images_created" if query.text and query.text.strip() else "images"
        sql = f"SELECT images.id FROM {source} WHERE {' AND '.join(where)} ORDER BY created {order}, id {order}"
        if connection is not None:
            return [row[0] for row in connection.execute(sql, args)]
        with self._lock:
            return [row[0] for row in self._db.execute(sql, args)]

    def open_reader(self) -> sqlite3.Connection:
        """A read-only connection of its own, for a thread that should not wait for this one."""
        connection = sqlite3.connect(f"{self.database.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        return connection

    def get_many(self, ids: Sequence[int]) -> list[ImageRecord]:
        """The images with these ids, in the order given (ids no longer there are left out)."""
        if not ids:
            return []
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM images WHERE id IN ({','.join('?' * len(ids))})",
                                    list(ids)).fetchall()
        by_id = {row["id"]: row for row in rows}
        return [self._record(by_id[i], with_tags=False) for i in ids if i in by_id]

    def iterate(self, query: ImageQuery = ImageQuery(), batch: int = 500) -> Iterator[ImageRecord]:
        cursor = None
        while True:
            page = self.query(query, batch, cursor)
            yield from page.images
            if page.cursor is None:
                return
            cursor = page.cursor

    def count(self, query: ImageQuery = ImageQuery()) -> int:
        where, args = self._where(query)
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM images WHERE {' AND '.join(where)}", args).fetchone()[0]

    def newer_than(self, query: ImageQuery, created: float, image_id: int) -> list[ImageRecord]:
        """Images matching `query` that sort before (created, image_id) newest first: what arrived since."""
        where, args = self._where(query)
        where.append("(images.created > ? OR (images.created = ? AND images.id > ?))")
        args += [created, created, image_id]
        sql = f"SELECT images.* FROM images WHERE {' AND '.join(where)} ORDER BY created DESC, id DESC LIMIT 1000"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._record(row, with_tags=False) for row in rows]

    def facets(self) -> dict[str, list]:
        """The values the filters offer: model names, LoRA names, step counts, tags and the tools that made the images
        (`metadata_format`, NO_DATA for files that say none) in use."""
        # One pass over the table, not one per column: through an index that does not hold `trashed_at` each row
        # would be looked up again (bench/gallery_100k.py, 100,000 images: 65 ms against 239 ms)
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT model_name, lora_names, steps, metadata_format FROM images "
                                    "NOT INDEXED WHERE trashed_at IS NULL").fetchall()
            tags = [r[0] for r in self._db.execute("SELECT DISTINCT tag FROM tags ORDER BY 1")]
        models = sorted({row[0] for row in rows if row[0] is not None})
        loras = sorted({name for row in rows if row[1] for name in row[1].split(LORA_SEPARATOR) if name}, key=str.lower)
        steps = sorted({row[2] for row in rows if row[2] is not None})
        tools = sorted({row[3] or NO_DATA for row in rows}, key=lambda tool: (tool == NO_DATA, tool))
        return {"models": models, "loras": loras, "steps": steps, "tags": tags, "tools": tools}

    def files_below(self, folder: str) -> list[tuple[int, str, int, float]]:
        """The images kept below `folder` (an absolute path, no trailing separator), not trashed: id, path, file
        size and time (the file's when it was indexed). A range on the path's unique index, not a scan."""
        with self._lock:
            return [tuple(row) for row in self._db.execute(
                "SELECT id, path, file_size, created FROM images WHERE path >= ? AND path < ? AND trashed_at IS NULL",
                below(folder))]

    def all_paths(self) -> list[tuple[int, str]]:
        with self._lock:
            return [(row[0], row[1]) for row in self._db.execute("SELECT id, path FROM images WHERE trashed_at IS NULL")]

    def integrity_check(self) -> str:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def _where(self, query: ImageQuery) -> tuple[list[str], list]:
        where = ["images.trashed_at IS NOT NULL" if query.trashed else "images.trashed_at IS NULL"]
        args: list = []
        if query.text and query.text.strip():
            words, inside = search_words(query.text)
            if words:
                where.append("images.id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
                args.append(fts_query(" ".join(words)))
            for word in inside:
                where.append(f"({SEARCHED} LIKE ? ESCAPE '\\')")
                args.append("%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        for column, value in (("model_name", query.model), ("steps", query.steps)):
            if value is not None:
                where.append(f"images.{column} = ?")
                args.append(value)
        if query.lora:  # one of the names, whole, in any case
            where.append("instr(lower(char(31) || images.lora_names || char(31)), lower(?)) > 0")
            args.append(f"{LORA_SEPARATOR}{query.lora}{LORA_SEPARATOR}")
        if query.created_from is not None:
            where.append("images.created >= ?")
            args.append(query.created_from)
        if query.created_to is not None:
            where.append("images.created < ?")
            args.append(query.created_to)
        if query.favourite is not None:
            where.append("images.favourite = ?")
            args.append(int(query.favourite))
        if query.described is not None:
            where.append(f"images.described IS {'NOT ' if query.described else ''}NULL")
        if query.made_with == NO_DATA:
            where.append(f"coalesce(images.metadata_format, '{NO_DATA}') = '{NO_DATA}'")
        elif query.made_with is not None:
            where.append("images.metadata_format = ?")
            args.append(query.made_with)
        if query.min_rating:
            where.append("images.rating >= ?")
            args.append(query.min_rating)
        if query.tag:
            where.append("images.id IN (SELECT image_id FROM tags WHERE tag = ?)")
            args.append(query.tag)
        if query.ids is not None:
            where.append(f"images.id IN ({','.join('?' * len(query.ids)) or 'NULL'})")
            args.extend(query.ids)
        return where, args

    def _record(self, row: sqlite3.Row, with_tags: bool = True) -> ImageRecord:
        # Every query selects images.*, so the names come from the first row's shape (the grid reads
        # thousands of rows a second while scrolling; asking each row for its keys doubled the cost).
        names = self._row_names.get(len(row))
        if names is None:
            names = self._row_names[len(row)] = tuple(row.keys())
        values = {name: value for name, value in zip(names, row) if name in _RECORD_FIELDS}
        loras = values["loras"]
        values["loras"] = tuple(tuple(lora) for lora in json.loads(loras)) if loras and loras != "[]" else ()
        values["favourite"] = bool(values["favourite"])
        values["seed"] = _seed_from_int64(values["seed"])
        if with_tags:
            with self._lock:
                tags = self._db.execute("SELECT tag FROM tags WHERE image_id = ? ORDER BY tag", (row["id"],)).fetchall()
            values["tags"] = tuple(t[0] for t in tags)
        return ImageRecord(**values)


NO_DATA = "none"  # `metadata_format` of a file that holds no generation data (also NULL, in older rows)
MAX_SEARCH_WORDS = 32
MAX_SEARCH_WORD = 100  # characters


# What the search reads of a row: the columns images_fts indexes.
SEARCHED = "(images.prompt || ' ' || images.negative_prompt || ' ' || coalesce(images.model_name, '') || ' ' " \
           "|| images.lora_names || ' ' || coalesce(images.other_prompts, '') || ' ' || coalesce(images.described, ''))"
# Scripts written without spaces between words: CJK ideographs, kana, Thai, Lao, Myanmar, Khmer. FTS5's tokenizer
# takes a run of them for one word, so a word inside a Chinese or Japanese prompt ("猫" in "一只猫坐在窗台上") is
# found by a substring match instead.
UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                      "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]")


def search_words(text: str) -> tuple[list[str], list[str]]:
    """The search text's words (the first 32, each cut to 100 characters): those the full-text index finds as word
    prefixes, and those of scripts without spaces, found anywhere in the text. Punctuation alone (a "-" typed
    between words) is no word: the index holds none."""
    words = [word[:MAX_SEARCH_WORD] for word in text.split()[:MAX_SEARCH_WORDS]]
    inside = [w for w in words if UNSPACED.search(w)]
    return [w for w in words if w not in inside and any(c.isalnum() for c in w)], inside


def fts_query(text: str) -> str:
    """User words as an FTS5 query: each word a quoted prefix term, all required.

    Only the first 32 words count, each cut to 100 characters: a pasted page of text would
    otherwise make one search take most of a minute, and no prompt needs more to be found.
    """
    words = [word[:MAX_SEARCH_WORD].replace('"', '""') for word in text.split()[:MAX_SEARCH_WORDS]]
    return " ".join(f'"{word}"*' for word in words)
