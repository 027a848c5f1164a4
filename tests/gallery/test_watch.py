"""Watched folders: which folders are watched, which can be, and which files in a changed folder are new and
complete (gallery/watch.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.settings import Settings, save_settings
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.watch import (
    SETTLED_S, FolderPoll, arrivals, check_watchable, folder_tree, looked_at, watched_folders, watched_text,
)


@pytest.fixture
def gallery(app_home):
    gallery = Gallery(AppPaths.default())
    yield gallery
    gallery.close()


def picture(path: Path, age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), "red").save(path)
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


def test_the_settings_keep_one_folder_a_line(tmp_path):
    folders = [tmp_path / "ComfyUI" / "output", tmp_path / "a folder with spaces"]
    assert watched_folders(watched_text(folders)) == folders
    assert watched_folders("\n  \n") == []


def test_a_folder_that_cannot_be_watched_says_why(gallery, tmp_path):
    paths, images = gallery.paths, gallery.paths.images
    outputs = tmp_path / "outputs"
    (outputs / "txt2img-images").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("x")
    (images / "2026-12-07").mkdir(parents=True)
    (paths.cache / "thumbnails").mkdir(parents=True)
    assert check_watchable(outputs, paths, []) == outputs.resolve()
    for folder, words in ((tmp_path / "none", "is not a folder"), (tmp_path / "notes.txt", "is not a folder"),
                          (images, "the app's own images folder: its images come"),
                          (images / "2026-12-07", "images folder or inside it"),
                          (paths.cache / "thumbnails", "the app's own cache folder or inside it: no other tool")):
        with pytest.raises(InputError, match=words):
            check_watchable(folder, paths, [])
    with pytest.raises(InputError, match="is watched already."):
        check_watchable(outputs, paths, [outputs])
    with pytest.raises(InputError, match=f"is watched already, with {outputs}"):
        check_watchable(outputs / "txt2img-images", paths, [outputs])
    home = paths.data.parent  # holds the app's folders: watched, without them
    (home / "Pictures").mkdir()
    assert check_watchable(home, paths, []) == home.resolve()
    assert folder_tree([home], paths).folders == (home, home / "Pictures")


def test_the_folders_below_are_watched_but_hidden_ones_and_the_apps_own_images(app_home, tmp_path):
    root = tmp_path / "outputs"
    for folder in ("txt2img-images/2026-12-06", "txt2img-images/2026-12-07", "img2img-images", ".thumbnails"):
        (root / folder).mkdir(parents=True)
    images = root / "hypersd"  # the person chose a folder inside the watched one for the app's images
    save_settings(Settings(images_dir=str(images)))
    paths = AppPaths.default().ensure()
    assert paths.images == images and images.is_dir()
    tree = folder_tree([root, tmp_path / "unplugged"], paths)
    assert [folder.relative_to(tmp_path).as_posix() for folder in tree.folders] == [
        "outputs", "outputs/img2img-images", "outputs/txt2img-images", "outputs/txt2img-images/2026-12-06",
        "outputs/txt2img-images/2026-12-07"]
    assert tree.gone == (tmp_path / "unplugged",) and not tree.cut
    few = folder_tree([root], paths, limit=3)
    assert len(few.folders) == 3 and few.cut


def test_a_new_file_is_taken_once_two_looks_found_it_unchanged(gallery, tmp_path):
    """A file being written (or copied in with its old time kept) is not read half-done: the first look notes its
    size and time, the next one after SETTLED_S takes it if they are the same; one still growing waits."""
    folder = tmp_path / "output"
    done = picture(folder / "ComfyUI_00001_.png")
    growing = folder / "ComfyUI_00002_.png"
    growing.write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "workflow.json").write_text("{}")
    (folder / "day").mkdir()
    now = time.time()
    first = arrivals([folder], gallery.store, now=now)
    assert first.ready == () and set(first.unsettled) == {done, growing} and first.folders == (folder / "day",)
    growing.write_bytes(growing.read_bytes() + b"more")
    later = now + SETTLED_S + 0.5
    second = arrivals([folder], gallery.store, first.unsettled, now=later)
    assert second.ready == (done,) and set(second.unsettled) == {growing}
    third = arrivals([folder], gallery.store, second.unsettled, now=later + SETTLED_S + 0.5)
    assert third.ready == (growing,)


def test_files_older_than_the_trusted_age_are_taken_at_once_and_those_in_the_gallery_never(gallery, tmp_path):
    folder = tmp_path / "output"
    old = picture(folder / "yesterday.png", age=3600)
    fresh = picture(folder / "now.png")
    found = arrivals([folder], gallery.store, trust_older_than=60)
    assert found.ready == (old,) and set(found.unsettled) == {fresh}
    gallery.import_files([old])
    assert arrivals([folder], gallery.store, trust_older_than=60).ready == ()
    assert arrivals([tmp_path / "gone"], gallery.store).ready == ()


def test_a_file_that_could_not_be_imported_is_left_alone_until_it_changes(gallery, tmp_path):
    folder = tmp_path / "output"
    broken = folder / "broken.png"
    folder.mkdir()
    broken.write_bytes(b"not a png")
    past = time.time() - 3600
    os.utime(broken, (past, past))
    assert arrivals([folder], gallery.store, trust_older_than=60).ready == (broken,)
    assert looked_at(folder / "gone.png") is None
    unreadable = {broken: looked_at(broken)}
    assert arrivals([folder], gallery.store, trust_older_than=60, unreadable=unreadable).ready == ()
    picture(broken, age=1800)  # written again, whole
    assert arrivals([folder], gallery.store, trust_older_than=60, unreadable=unreadable).ready == (broken,)


def test_the_poll_takes_what_arrives_in_the_watched_folders_and_those_below(gallery, tmp_path):
    """Looks as the window's timer makes them (`now` moved on by hand): the first takes what came while the app was
    closed; a new image is taken at the second look that finds it unchanged; a new day folder is looked into; a
    folder deleted is dropped; a watched folder on a drive not plugged in is taken once it is there."""
    output, usb = tmp_path / "ComfyUI" / "output", tmp_path / "usb" / "renders"
    picture(output / "old.png", age=3600)
    poll = FolderPoll([output, usb], gallery.paths)

    def names(look) -> list[str]:  # the images it brought (none has a prompt)
        return sorted(Path(gallery.store.get(image).path).name for image in look.report.unprompted)

    now = time.time()
    first = poll.look(gallery.import_files, gallery.store, now=now)
    assert first.added == 1 and names(first) == ["old.png"]
    assert poll.folders == [output] and poll.gone == (usb,)
    assert poll.look(gallery.import_files, gallery.store, now=now + 2) is None  # nothing new
    day = output / "2026-12-07"
    picture(day / "ComfyUI_00001_.png")
    time.sleep(0.01)
    os.utime(output)  # as the folder's time moves when a file or folder is added to it
    assert poll.look(gallery.import_files, gallery.store, now=time.time()) is None  # the new folder found
    assert day in poll.folders
    assert poll.look(gallery.import_files, gallery.store, now=time.time()) is None  # its file seen once
    report = poll.look(gallery.import_files, gallery.store, now=time.time() + SETTLED_S + 1)
    assert names(report) == ["ComfyUI_00001_.png"]
    picture(usb / "from-the-usb-drive.png", age=600)
    shutil.rmtree(day)
    look = poll.look(gallery.import_files, gallery.store, now=time.time() + 10)
    assert names(look) == ["from-the-usb-drive.png"] and poll.gone == () and day not in poll.folders
    assert look.dropped == 0 and gallery.store.count() == 3  # a folder gone may be one renamed: a look later
    assert poll.look(gallery.import_files, gallery.store).dropped == 1  # … its image leaves the gallery with it
    assert gallery.store.count() == 2
    shutil.rmtree(usb.parent)  # a drive unplugged: its images stay in the gallery, shown as gone
    assert poll.look(gallery.import_files, gallery.store) is None and poll.gone == (usb,)
    assert gallery.store.count() == 2


def test_an_image_renamed_or_moved_keeps_its_place_and_one_deleted_leaves(gallery, tmp_path):
    """A rename or a move between watched folders (the same size and time) keeps the gallery's row — its
    favourite, rating and tags — at the new path; a file deleted there takes its row out of the gallery."""
    output = tmp_path / "output"
    keep, moved, deleted = (picture(output / name, age=600) for name in ("keep.png", "moved.png", "deleted.png"))
    picture(output / "best" / "other.png", age=600)
    poll = FolderPoll([output], gallery.paths)
    assert poll.look(gallery.import_files, gallery.store).added == 4
    image = gallery.store.id_of_path(str(moved.resolve()))
    gallery.store.set_favourite(image, True)
    gallery.store.set_tags(image, ["portfolio"])
    before = gallery.store.count()
    moved.rename(output / "best" / "the best one.png")
    deleted.unlink()
    trashed = gallery.delete([gallery.store.id_of_path(str(keep.resolve()))])  # the app's own delete: no row lost
    assert trashed.moved
    look = poll.look(gallery.import_files, gallery.store)
    assert (look.added, look.moved, look.dropped) == (0, 1, 1)
    record = gallery.store.get(image)
    assert record.path == str((output / "best" / "the best one.png").resolve()) and record.favourite
    assert list(record.tags) == ["portfolio"] and gallery.store.count() == before - 2  # the deleted, the trashed
    gallery.undo_delete(trashed.moved)
    assert poll.look(gallery.import_files, gallery.store) is None and gallery.store.count() == before - 1


def test_a_poll_without_catch_up_leaves_the_images_there_already(gallery, tmp_path):
    """A folder just added is imported with the import's progress: the first look only notes the folders."""
    output = tmp_path / "output"
    picture(output / "there.png", age=3600)
    poll = FolderPoll([output], gallery.paths, catch_up=False)
    assert poll.look(gallery.import_files, gallery.store) is None
    gallery.import_folder(output)  # the window's import, with its progress
    picture(output / "new.png", age=3600)  # moved in, its time kept: taken at the second look, as any new file
    assert poll.look(gallery.import_files, gallery.store) is None
    assert poll.look(gallery.import_files, gallery.store).added == 1 and gallery.store.count() == 2


def test_a_folder_whose_time_stays_put_is_found_changed_by_its_count(gallery, tmp_path, monkeypatch):
    """On a FAT or exFAT drive a folder's time may not move when a file is added: every COUNT_EVERY looks the
    entries are counted, and a folder with more is looked into."""
    from hypersd_desktop.gallery import watch

    monkeypatch.setattr(watch, "COUNT_EVERY", 3)
    folder = tmp_path / "usb-stick"
    folder.mkdir()
    poll = FolderPoll([folder], gallery.paths, catch_up=False)
    assert poll.look(gallery.import_files, gallery.store) is None  # look 1: counted
    kept = folder.stat().st_mtime
    picture(folder / "render.png", age=600)
    os.utime(folder, (kept, kept))  # the folder's time as it was
    later = time.time() + 5
    assert poll.look(gallery.import_files, gallery.store, now=later) is None  # look 2: times only, nothing seen
    assert poll.look(gallery.import_files, gallery.store, now=later) is None  # look 3
    assert poll.look(gallery.import_files, gallery.store, now=later) is None  # look 4: counted, the file seen once
    assert poll.look(gallery.import_files, gallery.store, now=later).added == 1  # look 5: taken


def test_a_watched_invokeai_outputs_folder_takes_its_images_not_their_thumbnails(gallery, tmp_path):
    outputs = tmp_path / "invokeai" / "outputs"
    picture(outputs / "images" / "a1b2.png", age=600)
    picture(outputs / "thumbnails" / "a1b2.webp", age=600)
    picture(outputs / "images" / "._a1b2.png", age=600)
    poll = FolderPoll([outputs], gallery.paths)
    assert poll.folders == [] and poll.look(gallery.import_files, gallery.store).added == 1
    assert poll.folders == [outputs, outputs / "images"]
    assert [Path(path).name for _id, path in gallery.store.all_paths()] == ["a1b2.png"]


def test_images_of_a_renamed_folder_keep_their_place(gallery, tmp_path):
    output = tmp_path / "output"
    picture(output / "2026-12-07" / "one.png", age=600)
    picture(output / "2026-12-07" / "two.png", age=600)
    poll = FolderPoll([output], gallery.paths)
    assert poll.look(gallery.import_files, gallery.store).added == 2
    image = gallery.store.id_of_path(str((output / "2026-12-07" / "one.png").resolve()))
    gallery.store.set_rating(image, 5)
    (output / "2026-12-07").rename(output / "best of december")
    looks = [poll.look(gallery.import_files, gallery.store, now=time.time() + 5) for _ in range(3)]
    looks = [look for look in looks if look is not None]
    assert sum(look.moved for look in looks) == 2 and sum(look.dropped + look.added for look in looks) == 0
    record = gallery.store.get(image)
    assert record.path == str((output / "best of december" / "one.png").resolve()) and record.rating == 5
