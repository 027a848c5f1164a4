"""Watched folders: folders another tool saves its images in (ComfyUI's `output`, A1111's `outputs`), kept in the
gallery as images arrive there.

The folders are polled, not watched through the operating system's notifications: a folder's time changes when a
file is added to it, so a look every few seconds at each folder's time (thousands of `stat`s take milliseconds)
finds the changed ones. Notifications would lock every watched folder against renaming on Windows (QTBUG-52470),
run out of Linux's inotify watches on a large tree, and say nothing on a network drive; a look works on all. Every
`COUNT_EVERY` looks each folder's entries are counted too: a FAT or exFAT drive (a USB stick) may leave a folder's
time as it was when a file is added.

A file is taken once two looks `SETTLED_S` apart found it the same size and time: a tool writing a large PNG, or a
copy still under way, is not read half-written (its thumbnail would be cached broken). The app's own folders are
never watched: its images come into the gallery as they are made, with what made them, and its caches (the
thumbnails are WebP files) and models are no gallery's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.tool_folders import OUTPUT_PLACES, ToolFolder, candidates, find_tool_folders
from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES, ImportReport, not_images
from hypersd_desktop.gallery.store import GalleryStore

MAX_WATCHED_DIRS = 4096  # folders looked at, the watched ones and those below together (a look's cost)
SETTLED_S = 1.0  # a file unchanged this long is complete
COUNT_EVERY = 15  # looks between countings of each folder's entries (a FAT drive's folder times stay put)


def watched_folders(text: str) -> list[Path]:
    """The folders of Settings' `watched_folders` (one a line), as given."""
    return [Path(line.strip()) for line in text.splitlines() if line.strip()]


def watched_text(folders: list[Path]) -> str:
    return "\n".join(str(folder) for folder in folders)


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:  # gone meanwhile
        return False


def looked_at(path: Path) -> tuple[int, float] | None:
    """A file's size and time as `arrivals` compares them; None where it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime


def found_output_folders(watched: list[Path]) -> list[ToolFolder]:
    """The folders other tools save their images in, found where they put them, not watched yet."""
    return find_tool_folders(candidates(relative_places=OUTPUT_PLACES), linked=watched, suffixes=IMAGE_SUFFIXES,
                             holds=("images", "image"))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def own_folders(paths: AppPaths) -> dict[Path, str]:
    """The app's own folders (resolved), which are never watched, and what each holds."""
    named = ((paths.images, "images folder"), (paths.models, "models folder"), (paths.data, "data folder"),
             (paths.cache, "cache folder"), (paths.config, "settings folder"))
    return {folder.resolve(): name for folder, name in named}


def check_watchable(folder: Path, paths: AppPaths, watched: list[Path]) -> Path:
    """`folder` resolved, or InputError saying why it cannot be watched: not a folder, one of the app's own
    folders or inside one, or inside a folder already watched (a watched folder's subfolders are watched with it).
    A folder holding the app's own (a home folder) can be: they are left out."""
    try:
        resolved = folder.expanduser().resolve()
    except OSError as error:
        raise InputError(f"{folder} cannot be watched: {error.strerror or error}.") from error
    if not resolved.is_dir():
        raise InputError(f"{folder} is not a folder (or is on a drive that is not there).")
    for own, name in own_folders(paths).items():
        if _inside(resolved, own):
            why = ("its images come into the gallery as they are made" if name == "images folder"
                   else "no other tool saves its images there")
            raise InputError(f"{resolved} is the app's own {name}{' or inside it' if resolved != own else ''}: "
                             f"{why}.")
    for other in watched:
        if _inside(resolved, other.resolve()):
            raise InputError(f"{resolved} is watched already, with {other}." if resolved != other.resolve()
                             else f"{resolved} is watched already.")
    return resolved


@dataclass(frozen=True)
class Tree:
    """The folders to watch below the watched ones (each watched folder first), as many as can be watched."""

    folders: tuple[Path, ...]
    cut: bool = False  # more folders than MAX_WATCHED_DIRS: those after the limit are not watched
    gone: tuple[Path, ...] = ()  # watched folders not there now (a drive unplugged): watched again once back


def folder_tree(watched: list[Path], paths: AppPaths, limit: int = MAX_WATCHED_DIRS) -> Tree:
    """Each watched folder and the folders below it (not hidden ones, not the app's own folders, not through
    links), breadth first, up to `limit` in all."""
    own = own_folders(paths)
    found: list[Path] = []
    gone: list[Path] = []
    for root in watched:
        if not root.is_dir():
            gone.append(root)
            continue
        queue = [root]
        while queue:
            folder = queue.pop(0)
            if len(found) >= limit:
                return Tree(tuple(found), True, tuple(gone))
            found.append(folder)
            queue += sorted(sub for sub in _subfolders(folder) if sub.resolve() not in own)
    return Tree(tuple(found), False, tuple(gone))


def _subfolders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    except OSError:  # gone meanwhile, or not readable
        return []
    return [folder / name for name in names if not not_images(name, names)]


@dataclass(frozen=True)
class Arrivals:
    """What a look at changed folders found: images complete and not in the gallery yet, images that may still be
    being written (`unsettled`: each one's size and time as seen now; look again after `SETTLED_S`), and the folders
    below (a tool's new day folder) to watch."""

    ready: tuple[Path, ...]
    unsettled: dict[Path, tuple[int, float]]
    folders: tuple[Path, ...]


def arrivals(folders: list[Path], store: GalleryStore, seen: dict[Path, tuple[int, float]] | None = None,
             trust_older_than: float | None = None, unreadable: dict[Path, tuple[int, float]] | None = None,
             now: float | None = None) -> Arrivals:
    """The image files directly in `folders` that the gallery does not have and the subfolders of `folders`. A file
    is ready once two looks `SETTLED_S` apart (`seen`: the last look's `unsettled`) found it the same size and time
    and it has not changed for `SETTLED_S`: a file being copied in may keep its original time until the end. One
    unchanged for `trust_older_than` seconds is ready at once (images saved while the app was closed). A file in
    `unreadable` (size and time when it could not be imported) is left alone until it changes."""
    now = time.time() if now is None else now
    seen, unreadable = seen or {}, unreadable or {}
    ready, unsettled, below = [], {}, []
    for folder in folders:
        try:
            with os.scandir(folder) as scanned:
                entries = list(scanned)
        except OSError:
            continue
        subfolders = [entry.name for entry in entries if _is_folder(entry)]
        below += [folder / name for name in subfolders if not not_images(name, subfolders)]
        skipped = set(subfolders)
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") or entry.name in skipped:
                continue
            try:
                if path.suffix.lower() not in IMAGE_SUFFIXES or not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:  # gone meanwhile
                continue
            if store.has_path(str(path.resolve())):
                continue
            looked = (stat.st_size, stat.st_mtime)
            if unreadable.get(path) == looked:
                continue
            age = now - stat.st_mtime
            settled = seen.get(path) == looked and age >= SETTLED_S
            if settled or trust_older_than is not None and age >= trust_older_than:
                ready.append(path)
            else:
                unsettled[path] = looked
    return Arrivals(tuple(sorted(ready)), unsettled, tuple(sorted(below)))


@dataclass(frozen=True)
class Look:
    """What a look at the watched folders did: the import of the images that arrived (None: none came), the
    images that followed their files to another name or folder, and those dropped with their files."""

    report: ImportReport | None
    moved: int = 0
    dropped: int = 0

    @property
    def added(self) -> int:
        return self.report.added if self.report else 0

    @property
    def anything(self) -> bool:
        return bool(self.added or self.report and self.report.failed or self.moved or self.dropped)


class FolderPoll:
    """The state of the watched folders between looks (`look`, in a background thread, one at a time): each
    folder's time, the files that may still be being written, those that could not be imported."""

    def __init__(self, watched: list[Path], paths: AppPaths, catch_up: bool = True) -> None:
        self.watched, self.paths = list(watched), paths
        self._own = own_folders(paths)
        self.catch_up = catch_up  # the first look takes images older than a minute at once (saved while closed)
        self.cut = False  # more folders than MAX_WATCHED_DIRS: some are not looked at
        self.gone: tuple[Path, ...] = tuple(self.watched)  # watched folders not there (yet): looked for each time
        self._times: dict[Path, float | None] = {}  # folder -> its time at the last look (None: not looked at)
        self._seen: dict[Path, tuple[int, float]] = {}
        self._unreadable: dict[Path, tuple[int, float]] = {}
        self._first = True
        self._counts: dict[Path, int] = {}  # folder -> its entries at the last counting look
        self._looks = 0
        self._vanished: list[Path] = []  # folders gone at the last look: their images are followed or dropped now

    @property
    def folders(self) -> list[Path]:
        """The folders looked at: the watched ones that are there and the folders below them."""
        return list(self._times)

    @property
    def unsettled(self) -> bool:
        """Whether files seen at the last look may still be being written (the next look decides)."""
        return bool(self._seen)

    def look(self, import_files, store: GalleryStore, now: float | None = None) -> Look | None:
        """Bring the gallery in line with the folders that changed since the last look: the complete images that
        arrived are imported (`import_files(paths)`, the gallery's), an image renamed or moved within the watched
        folders keeps its row (its rating, tags, favourite, description), one deleted there leaves the gallery.
        None where nothing changed."""
        found_again = self._find_roots()
        changed, vanished = set(), []
        for folder, before in list(self._times.items()):
            try:
                time_now = folder.stat().st_mtime
            except OSError:  # removed (a day folder deleted), or its drive gone
                del self._times[folder]
                if folder in self.watched:
                    self.gone += (folder,)
                elif folder.parent.is_dir():  # deleted, not unplugged: its images are gone with it
                    vanished.append(folder)
                continue
            if time_now != before:
                self._times[folder] = time_now
                changed.add(folder)
        self._looks += 1
        if self._looks % COUNT_EVERY == 1:  # a drive whose folders' times do not move (FAT): their entries counted
            changed |= self._recounted()
        if self._first:  # everything is new to this look: what it holds came while the app was closed, or was
            trusted = changed if self.catch_up else set()  # imported as the folder was added
            changed = trusted
        else:
            trusted = changed & found_again  # a drive plugged in: its images were saved before
        self._first = False
        changed |= {path.parent for path in self._seen}
        # A folder gone may have been renamed: its images are matched a look later, once the folder under its new
        # name (found now, looked into next) lists them.
        vanished, self._vanished = self._vanished, vanished
        if not changed and not vanished:
            return None
        found = arrivals(sorted(changed - trusted), store, self._seen, None, self._unreadable, now)
        if trusted:
            caught = arrivals(sorted(trusted), store, self._seen, 60.0, self._unreadable, now)
            found = Arrivals(found.ready + caught.ready, found.unsettled | caught.unsettled,
                             found.folders + caught.folders)
        for folder in found.folders:
            if folder not in self._times and folder.resolve() not in self._own:
                self._add(folder)
        found, moved, dropped = self._follow_gone(store, changed, vanished, found)
        self._seen = found.unsettled
        report = import_files(list(found.ready)) if found.ready else None
        by_path = {str(path.resolve()): path for path in found.ready}
        for failed, _reason in report.failed if report else ():
            path = by_path.get(failed, Path(failed))
            if (looked := looked_at(path)) is not None:
                self._unreadable[path] = looked
        look = Look(report, moved, dropped)
        return look if look.anything else None

    def _follow_gone(self, store: GalleryStore, changed: set[Path], vanished: list[Path],
                     found: Arrivals) -> tuple[Arrivals, int, int]:
        """The gallery's images whose files left the changed folders (or went with a deleted folder): one whose
        file came back under another name or folder (the same size and time: a rename or a move) follows it, the
        others are dropped from the gallery. Returns the arrivals less the files followed, and how many moved and
        were dropped."""
        gone = [row for folder in changed for row in store.files_below(str(folder))
                if Path(row[1]).parent == folder and not os.path.exists(row[1])]
        gone += [row for folder in vanished for row in store.files_below(str(folder))]
        if not gone:
            return found, 0, 0
        candidates = {}  # (size, time) -> a new file
        for path in (*found.ready, *found.unsettled):
            if (looked := looked_at(path)) is not None:
                candidates.setdefault(looked, path)
        followed, dropped = set(), []
        for image_id, _path, size, created in gone:
            path = candidates.pop((size, created), None)
            if path is None or store.has_path(str(path.resolve())):
                dropped.append(image_id)
                continue
            store.set_path(image_id, str(path.resolve()))
            followed.add(path)
        store.delete_rows(dropped)
        found = Arrivals(tuple(path for path in found.ready if path not in followed),
                         {path: seen for path, seen in found.unsettled.items() if path not in followed}, found.folders)
        return found, len(followed), len(dropped)

    def _recounted(self) -> set[Path]:
        """The folders whose number of entries changed since they were last counted."""
        changed = set()
        for folder in list(self._times):
            try:
                with os.scandir(folder) as entries:
                    count = sum(1 for _ in entries)
            except OSError:
                continue
            if self._counts.get(folder, count) != count:
                changed.add(folder)
            self._counts[folder] = count
        return changed

    def _find_roots(self) -> set[Path]:
        """Watched folders not there at the last look that are now (a drive plugged in): listed, to be looked at;
        returns their folders."""
        if not self.gone:
            return set()
        tree = folder_tree(list(self.gone), self.paths, MAX_WATCHED_DIRS - len(self._times))
        for folder in tree.folders:
            self._add(folder)
        self.cut |= tree.cut
        self.gone = tree.gone
        return set(tree.folders)

    def _add(self, folder: Path) -> None:
        if len(self._times) >= MAX_WATCHED_DIRS:
            self.cut = True
            return
        self._times[folder] = None  # looked at on the next look: files may be in it already
