"""The gallery store and service: queries, search, paging, import, delete with undo, repair."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.core.errors import CancelledError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.store import ImageQuery, ImageRecord


@pytest.fixture
def gallery(app_home):
    gallery = Gallery(AppPaths.default())
    yield gallery
    gallery.close()


def record(i: int, **changes) -> ImageRecord:
    values = dict(path=f"/images/{i}.png", created=1_700_000_000 + i, source="generated", prompt=f"prompt {i}",
                  seed=i, steps=1 + i % 8, model_name="sd15" if i % 2 else "sdxl",
                  loras=((f"style{i % 3}", 1.0, None),))
    values.update(changes)
    return ImageRecord(**values)


def test_paging_newest_first_and_filters(gallery):
    gallery.store.add_many([record(i) for i in range(250)])
    seen, cursor = [], None
    while True:
        page = gallery.store.query(limit=100, cursor=cursor)
        seen += [r.seed for r in page.images]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == list(range(249, -1, -1))
    assert gallery.store.count(ImageQuery(model="sd15")) == 125
    assert gallery.store.count(ImageQuery(steps=3)) == len([i for i in range(250) if 1 + i % 8 == 3])
    assert gallery.store.count(ImageQuery(lora="style1")) == len([i for i in range(250) if i % 3 == 1])
    assert gallery.store.count(ImageQuery(created_from=1_700_000_100, created_to=1_700_000_110)) == 10


def test_full_text_search_over_prompt_negative_model_and_loras(gallery):
    gallery.store.add_many([
        record(1, prompt="a red fox in the snow", negative_prompt="blurry"),
        record(2, prompt="a blue whale", model_name="dreamshaper"),
        record(3, prompt="fox hunting at night", loras=(("Hyper-SD15-1step-lora", 1.0, None),)),
    ])
    ids = lambda text: sorted(r.seed for r in gallery.store.query(ImageQuery(text=text)).images)  # noqa: E731
    assert ids("fox") == [1, 3]
    assert ids("fox snow") == [1]
    assert ids("blurry") == [1]
    assert ids("dreamshaper") == [2]
    assert ids("Hyper") == [3]
    assert ids('"unbalanced') == []  # user text never breaks the FTS syntax


def test_lora_names_with_spaces_are_one_filter_each_and_match_whole(gallery):
    """Other tools' LoRA names hold spaces ("add detail v2", ComfyUI's "my style.safetensors") and underscores: the
    LoRA filter offers each name once, whole, and picks the images with that name, not with a part of it or with
    a name LIKE's wildcards would match."""
    gallery.store.add_many([
        record(1, loras=(("add detail v2", 0.5, None), ("Hyper-SD15-8steps-lora", 1.0, None))),
        record(2, loras=(("detail", 1.0, None),)),
        record(3, loras=(("more_details", 1.0, None),)),
        record(4, loras=(("moreXdetails", 1.0, None),)),
    ])
    assert gallery.store.facets()["loras"] == ["add detail v2", "detail", "Hyper-SD15-8steps-lora", "more_details",
                                               "moreXdetails"]
    seeds = lambda lora: sorted(r.seed for r in gallery.store.query(ImageQuery(lora=lora)).images)  # noqa: E731
    assert seeds("add detail v2") == [1]
    assert seeds("detail") == [2]
    assert seeds("more_details") == [3]
    assert seeds("hyper-sd15-8steps-lora") == [1]  # typed in another case (`gallery list --lora`)
    assert sorted(r.seed for r in gallery.store.query(ImageQuery(text="tweaker detail")).images) == []
    assert sorted(r.seed for r in gallery.store.query(ImageQuery(text="detail")).images) == [1, 2, 3]  # words


def test_a_gallery_of_an_earlier_version_keeps_its_lora_names_apart_once_opened(app_home):
    """Rows written when names were kept apart by spaces are read again from their LoRAs on opening."""
    import json
    import sqlite3

    from hypersd_desktop.gallery.store import GalleryStore, MIGRATIONS

    database = AppPaths.default().data / "old-gallery.sqlite3"
    database.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(database)
    old.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    loras = [["add detail v2", 0.5, None], ["ink", 1.0, None]]
    old.execute("INSERT INTO images (path, created, source, loras, lora_names) VALUES (?, ?, ?, ?, ?)",
                ("/images/old.png", 1.0, "imported", json.dumps(loras), "add detail v2 ink"))
    old.commit()
    old.close()
    store = GalleryStore(database)
    try:
        assert store.notice is None
        assert store.facets()["loras"] == ["add detail v2", "ink"]
        assert store.count(ImageQuery(lora="add detail v2")) == 1 and store.count(ImageQuery(lora="detail")) == 0
        assert store.count(ImageQuery(text="detail")) == 1  # the search index follows the column
    finally:
        store.close()


CORPUS = Path(__file__).parent / "corpus"
THREE_CHARACTERS = CORPUS / "sd-metadata" / "png" / "novelai-full-3char.png"


def adetailer_png(path: Path) -> None:
    """An image as A1111 writes one made with ADetailer's own prompts for the faces it found."""
    info = PngInfo()
    info.add_text("parameters", 'a knight in a hall\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, '
                                'Size: 16x16, ADetailer model: face_yolov8n.pt, ADetailer prompt: "freckles, red '
                                'scarf", ADetailer negative prompt: "eyepatch", ADetailer version: 24.1.2, '
                                'Version: v1.10.1')
    Image.new("RGB", (16, 16)).save(path, pnginfo=info)


def test_the_prompts_an_image_holds_besides_its_own_two_are_searched(gallery, tmp_path):
    """NovelAI V4 gives each character a prompt beside the base prompt, and ADetailer its faces: a search finds
    an image by those words too, and by nothing else of its fields."""
    import shutil

    shutil.copy(THREE_CHARACTERS, tmp_path / "three.png")
    adetailer_png(tmp_path / "knight.png")
    assert gallery.import_folder(tmp_path).added == 2
    found = lambda text: sorted(Path(r.path).name for r in gallery.store.query(ImageQuery(text=text)).images)  # noqa
    assert found("kagamine len") == ["three.png"]  # the third character's prompt only
    assert found("dancing hatsune") == ["three.png"]  # a base prompt's word with a character's
    assert found("scarf") == ["knight.png"] and found("eyepatch") == ["knight.png"]
    assert found("knight freckles") == ["knight.png"]
    assert found("yolov8n") == [] and found("face_yolov8n") == []  # a detector's file is no prompt
    knight = gallery.store.query(ImageQuery(text="knight")).images[0]
    assert knight.other_prompts == "freckles, red scarf\neyepatch"
    gallery.delete([knight.id])
    assert found("scarf") == []  # the index follows a deleted row


def test_images_indexed_before_other_prompts_were_searched_get_them_when_their_folder_is_imported_again(app_home,
                                                                                                          tmp_path):
    """A gallery of the version before: opened, its rows are searched as before; their files' other prompts are
    read when their folder is imported again (not at opening, which would read every file), once."""
    import shutil
    import sqlite3

    from hypersd_desktop.gallery.store import MIGRATIONS, lora_names_of

    shutil.copy(THREE_CHARACTERS, tmp_path / "three.png")
    paths = AppPaths.default()
    paths.ensure()
    old = sqlite3.connect(paths.data / "gallery.sqlite3")
    old.create_function("lora_names_of", 1, lora_names_of)
    old.executescript(MIGRATIONS[0] + ";" + MIGRATIONS[1] + "; PRAGMA user_version=2;")
    old.execute("INSERT INTO images (path, created, source, prompt, metadata_format) VALUES (?, ?, ?, ?, ?)",
                (str(tmp_path / "three.png"), 1.0, "imported", "2girls, 1boy, dancing", "novelai"))
    old.commit()
    old.close()
    gallery = Gallery(paths)
    try:
        assert gallery.store.notice is None
        assert gallery.store.count(ImageQuery(text="dancing")) == 1  # the rebuilt index holds the old rows
        assert gallery.store.count(ImageQuery(text="kagamine")) == 0
        assert gallery.store.query().images[0].other_prompts is None  # not read yet
        report = gallery.import_folder(tmp_path)
        assert (report.added, report.skipped) == (0, 1)
        assert gallery.store.count(ImageQuery(text="kagamine rin")) == 1
        assert gallery.store.unread_other_prompts(str(tmp_path / "three.png")) is None  # read once
    finally:
        gallery.close()


def test_a_gallery_before_descriptions_keeps_its_rows_and_finds_what_a_tagger_describes(app_home, tmp_path):
    """The fourth migration adds what a tagger saw in an image (`described`) to the searched text: the rows of a
    gallery made before it are searched as before, none described yet, and a description is found once kept, by
    word and, in a script without spaces, inside one."""
    import sqlite3

    from hypersd_desktop.gallery.store import MIGRATIONS, lora_names_of

    paths = AppPaths.default()
    paths.ensure()
    old = sqlite3.connect(paths.data / "gallery.sqlite3")
    old.create_function("lora_names_of", 1, lora_names_of)
    old.executescript(";".join(MIGRATIONS[:3]) + "; PRAGMA user_version=3;")
    old.execute("INSERT INTO images (path, created, source, prompt, other_prompts) VALUES (?, ?, ?, ?, ?)",
                (str(tmp_path / "a.png"), 1.0, "imported", "", "a lantern"))
    old.commit()
    old.close()
    gallery = Gallery(paths)
    try:
        assert gallery.store.notice is None and gallery.store.count(ImageQuery(text="lantern")) == 1
        (image,) = gallery.store.query(ImageQuery(described=False)).images
        assert image.described is None and gallery.store.count(ImageQuery(described=True)) == 0
        gallery.store.set_described(image.id, "outdoors, night, paper lantern, 提灯")
        assert gallery.store.count(ImageQuery(text="night outdoors")) == 1
        assert gallery.store.count(ImageQuery(text="提")) == 1  # inside a word of a script without spaces
        assert gallery.store.get(image.id).described.startswith("outdoors")
        assert gallery.store.count(ImageQuery(described=False)) == 0
        gallery.store.set_described(image.id, "indoors")
        assert gallery.store.count(ImageQuery(text="night")) == 0  # the index follows the new words
    finally:
        gallery.close()


def test_parameters_copied_of_another_tools_image_say_what_its_file_says_and_no_more(gallery, tmp_path):
    """An image without A1111's text (a ComfyUI graph, Midjourney's prompt line) copies as A1111's text of what its
    file says: no setting it does not have ("Steps: 0" would be pasted as one) and no Version of this app's."""
    import shutil

    from hypersd_desktop.gallery.gallery import parameters_text
    from tool_layouts import midjourney_png

    shutil.copy(CORPUS / "sd-metadata" / "png" / "comfyui-hires.png", tmp_path / "graph.png")
    midjourney_png(tmp_path / "mj.png")
    gallery.import_folder(tmp_path)
    copied = {Path(record.path).name: parameters_text(record) for record in gallery.store.query().images}
    assert copied["mj.png"] == ("a lighthouse on a cliff, storm, oil painting\nNegative prompt: boats, people\n"
                                "Seed: 4242, Size: 24x16, Model: Midjourney v6.1")
    graph = copied["graph.png"].splitlines()[-1]
    assert graph.startswith("Steps: ") and ", Sampler: " in graph and ", Seed: " in graph and "Version" not in graph


def test_a_word_inside_a_chinese_japanese_or_thai_prompt_is_found(gallery):
    """These scripts put no spaces between words, so the full-text index holds a whole phrase as one word."""
    gallery.store.add_many([
        record(1, prompt="一只猫坐在窗台上, masterpiece"),
        record(2, prompt="窓辺に座る猫と犬", negative_prompt="低品質"),
        record(3, prompt="แมวนอนบนโซฟา"),
        record(4, prompt="a cat, 50% 猫_x"),
        record(5, prompt="一只狗"),
    ])
    ids = lambda text: sorted(r.seed for r in gallery.store.query(ImageQuery(text=text)).images)  # noqa: E731
    assert ids("猫") == [1, 2, 4]
    assert ids("窗台") == [1] and ids("座る猫") == [2] and ids("品質") == [2]  # the negative prompt too
    assert ids("猫 masterpiece") == [1] and ids("猫 犬") == [2] and ids("一只") == [1, 5]
    assert ids("โซฟา") == [3]
    assert ids("% 猫_") == [4] and ids("猫%") == [] and ids("猫x") == []  # LIKE's wildcards are the user's letters
    assert gallery.store.count(ImageQuery(text="狗")) == 1


def test_favourite_rating_tags(gallery):
    first, second = gallery.store.add_many([record(1), record(2)])
    gallery.store.set_favourite(first, True)
    gallery.store.set_rating(second, 4)
    gallery.store.set_tags(second, ["portfolio", "blue"])
    assert [r.id for r in gallery.store.query(ImageQuery(favourite=True)).images] == [first]
    assert [r.id for r in gallery.store.query(ImageQuery(min_rating=3)).images] == [second]
    assert [r.id for r in gallery.store.query(ImageQuery(tag="portfolio")).images] == [second]
    assert gallery.store.get(second).tags == ("blue", "portfolio")


def write_images(folder, count, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        info = PngInfo()
        info.add_text("parameters", f"image {i}\nSteps: 4, Sampler: TCD, CFG scale: 0, Seed: {i}, Size: 16x16")
        Image.new("RGB", (16, 16), (i % 255, 0, 0)).save(folder / f"{i:03}.png", pnginfo=info)


def test_import_folder_twice_adds_nothing_twice(gallery, tmp_path):
    folder = tmp_path / "old-images"
    write_images(folder, 12)
    (folder / "notes.png").write_bytes(b"not an image")
    events = []
    report = gallery.import_folder(folder, on_progress=events.append)
    assert (report.added, report.skipped, len(report.failed)) == (12, 0, 1)
    assert events[-1].done == events[-1].total == 13
    write_images(folder, 3, start=12)
    again = gallery.import_folder(folder)
    assert (again.added, again.skipped) == (3, 12)
    assert gallery.store.count() == 15
    assert gallery.store.query(ImageQuery(text="image")).images[0].metadata_format == "a1111"
    assert report.unprompted == again.unprompted == ()  # every one has its prompt


def test_an_import_names_the_pictures_that_came_without_a_prompt(gallery, tmp_path):
    """What Describe for search is for: a photo, an edit saved without its settings, a picture whose settings give
    no prompt; not an image made from a prompt, nor one already in the gallery."""
    folder = tmp_path / "mixed"
    write_images(folder, 2)
    Image.new("RGB", (16, 16), "green").save(folder / "photo.jpg")
    info = PngInfo()
    info.add_text("parameters", "Steps: 4, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 16x16")  # no prompt
    Image.new("RGB", (16, 16), "blue").save(folder / "no-prompt.png", pnginfo=info)
    report = gallery.import_folder(folder)
    assert report.added == 4
    named = {Path(gallery.store.get(image).path).name for image in report.unprompted}
    assert named == {"photo.jpg", "no-prompt.png"}
    Image.new("RGB", (16, 16), "red").save(folder / "later.webp")
    assert [Path(gallery.store.get(image).path).name for image in gallery.import_folder(folder).unprompted] == [
        "later.webp"]


def test_importing_a_fooocus_outputs_folder_reads_its_bare_images_from_its_logs(gallery, tmp_path):
    """Fooocus saves its images without metadata by default, a day a folder, each with its log.html: imported,
    they are found by their prompts and models, and the logs are no images."""
    from tool_layouts import fooocus_outputs

    outputs = tmp_path / "Fooocus" / "outputs"
    fooocus_outputs(outputs / "2026-12-02", ("2026-12-02_21-40-11_4455.png",))
    fooocus_outputs(outputs / "2026-12-03")
    report = gallery.import_folder(outputs)
    assert (report.added, len(report.failed)) == (3, 0)
    found = gallery.store.query(ImageQuery(text="fox juggernautXL_v8Rundiffusion")).images
    assert len(found) == 3 and {image.metadata_format for image in found} == {"fooocus"}
    assert sorted(image.seed for image in found) == [1234567890, 1234567890, 1234567891]


def test_import_cancel_keeps_what_was_added(gallery, tmp_path):
    folder = tmp_path / "many"
    write_images(folder, 30)
    token = CancelToken()

    def stop(progress):
        token.cancel()  # at the first report

    with pytest.raises(CancelledError) as stopped:
        gallery.import_folder(folder, on_progress=stop, cancel=token)
    kept = gallery.store.count()
    assert 0 < kept < 30
    assert str(stopped.value) == (f"import stopped after {kept} of 30 files: {kept} images added; "
                                  "importing again adds the rest")
    assert gallery.import_folder(folder).added == 30 - kept


def test_delete_undo_and_empty_trash(gallery, tmp_path):
    write_images(tmp_path / "imgs", 3)
    gallery.import_folder(tmp_path / "imgs")
    target = gallery.store.query().images[0]
    gallery.delete([target.id])
    assert not (tmp_path / "imgs" / target.path.rsplit("/", 1)[-1]).exists()
    assert gallery.store.count() == 2 and gallery.store.count(ImageQuery(trashed=True)) == 1
    gallery.undo_delete([target.id])
    assert gallery.store.count() == 3 and (tmp_path / "imgs" / target.path.rsplit("/", 1)[-1]).exists()
    gallery.delete([target.id])
    assert gallery.empty_trash() == 1
    assert gallery.store.get(target.id) is None and not list(gallery.trash_dir.iterdir())


def test_a_file_that_cannot_be_moved_stays_in_the_gallery_and_the_others_go(gallery, tmp_path, monkeypatch):
    """On Windows a picture open in another program cannot be moved (WinError 32). The operating system's refusal
    is made here for one file; the delete goes on with the others and says which stayed and what to do."""
    import os

    write_images(tmp_path / "imgs", 3)
    gallery.import_folder(tmp_path / "imgs")
    images = gallery.store.query().images
    held = images[1].path
    replace = os.replace

    def refusing(source, target):
        if str(source) == held:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        replace(source, target)

    monkeypatch.setattr(os, "replace", refusing)
    result = gallery.delete([image.id for image in images])
    assert result.moved == [images[0].id, images[2].id] and result.kept[0][0] == held
    assert "001.png could not be moved to the trash (The process cannot access the file" in result.problem()
    assert result.problem().endswith("; close any program that has them open and delete them again.")
    assert [record.path for record in gallery.store.query().images] == [held]  # still shown, still on disk
    assert os.path.exists(held) and gallery.store.count(ImageQuery(trashed=True)) == 2

    gone = images[0].path  # as if its folder were on a drive removed since

    def unreachable(source, target):
        if str(target) == gone:
            raise FileNotFoundError(2, "No such file or directory")
        replace(source, target)

    monkeypatch.setattr(os, "replace", unreachable)
    back = gallery.undo_delete([images[0].id, images[2].id])  # the undo goes on past it, and says so
    assert back.moved == [images[2].id] and back.kept == [(gone, "No such file or directory")]
    assert back.problem().startswith(f"{Path(gone).name} could not be moved back (No such file or directory); they "
                                     "stay in the trash")
    assert os.path.exists(images[2].path) and gallery.store.count(ImageQuery(trashed=True)) == 1
    monkeypatch.setattr(os, "replace", replace)
    gallery.delete([images[2].id])

    trashed = sorted(str(p) for p in gallery.trash_dir.iterdir())
    unlink = Path.unlink

    def refusing_unlink(path, missing_ok=False):
        if str(path) == trashed[0]:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refusing_unlink)
    assert gallery.empty_trash() == 1  # the one in use stays in the trash, with its row, for the next time
    assert [str(p) for p in gallery.trash_dir.iterdir()] == trashed[:1]
    assert gallery.store.count(ImageQuery(trashed=True)) == 1


def test_missing_files_are_reported_and_repaired(gallery, tmp_path):
    write_images(tmp_path / "a", 4)
    gallery.import_folder(tmp_path / "a")
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "a" / "000.png").rename(moved / "000.png")
    (tmp_path / "a" / "001.png").unlink()
    assert sorted(p.rsplit("/", 1)[-1] for _, p in gallery.missing()) == ["000.png", "001.png"]
    assert gallery.repair(relink_root=moved) == (1, 1)
    assert gallery.missing() == [] and gallery.store.count() == 3


def test_thumbnails_are_made_off_thread_and_cached(gallery, tmp_path):
    write_images(tmp_path / "t", 1)
    source = tmp_path / "t" / "000.png"
    assert gallery.thumbnails.path_if_ready(source) is None
    future = gallery.thumbnails.request(source)
    path = future.result(timeout=30)
    assert path.exists() and gallery.thumbnails.path_if_ready(source) == path
    with Image.open(path) as thumb:
        assert max(thumb.size) <= 256
    before = path.stat().st_mtime_ns
    time.sleep(0.01)
    assert gallery.thumbnails.make(source).stat().st_mtime_ns == before


def test_thumbnails_are_made_when_their_cache_cannot_be_written(tmp_path):
    """A full disk or a read-only cache (here a file where the cache folder goes): the gallery still shows
    thumbnails, made each time instead of kept."""
    import io

    from hypersd_desktop.gallery.thumbnails import Thumbnails

    write_images(tmp_path / "t", 1)
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    made = Thumbnails(blocked / "thumbnails").make(tmp_path / "t" / "000.png")
    assert isinstance(made, bytes)
    with Image.open(io.BytesIO(made)) as thumb:
        assert thumb.format == "WEBP" and max(thumb.size) <= 256


def test_thumbnails_follow_the_cameras_orientation(gallery, tmp_path):
    """A phone photo stored landscape with EXIF orientation 6 (rotate 90° clockwise) is shown upright."""
    photo = Image.new("RGB", (400, 200), (0, 0, 255))
    photo.paste((255, 0, 0), (0, 0, 200, 200))  # left half red, right half blue as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    source = tmp_path / "phone.jpg"
    photo.save(source, exif=exif.tobytes(), quality=95)
    with Image.open(gallery.thumbnails.make(source)) as thumb:
        assert thumb.size == (128, 256)  # upright: portrait
        top, bottom = thumb.convert("RGB").getpixel((64, 10)), thumb.convert("RGB").getpixel((64, 245))
    assert top[0] > 200 and top[2] < 60  # the stored left (red) edge is now at the top
    assert bottom[2] > 200 and bottom[0] < 60


def test_deep_grey_and_float_images_look_as_they_are_as_thumbnails_and_as_inputs(gallery, tmp_path):
    """Pillow opens 16-bit grey PNGs (depth maps, scans) as "I;16" and float TIFFs as "F"; its own conversion to
    8 bits clips them to white. Thumbnails and generation inputs scale them."""
    import numpy as np

    from hypersd_desktop.core.images import InputImages

    ramp = np.tile(np.linspace(0, 65535, 256), (64, 1)).astype(np.uint16)  # black to white, left to right
    deep = tmp_path / "depth.png"
    Image.fromarray(ramp).save(deep)
    floats = tmp_path / "height.tif"
    Image.fromarray((ramp / 65535).astype(np.float32)).save(floats)
    inputs = InputImages(tmp_path / "inputs")
    for source in (deep, floats):
        with Image.open(source) as opened:
            assert opened.mode in ("I;16", "I", "F")
        with Image.open(gallery.thumbnails.make(source)) as thumb:
            grey = np.asarray(thumb.convert("L"), dtype=np.int16)
        assert grey[:, :8].mean() < 12 and grey[:, -8:].mean() > 243, source.name  # a ramp, not a white page
        assert 110 < grey.mean() < 145
        for mode in ("RGB", "L"):
            pixels = np.asarray(inputs.open(inputs.add_file(source), mode), dtype=np.int16)
            assert pixels.shape[:2] == (64, 256) and abs(int(pixels[..., 0].mean() if mode == "RGB" else pixels.mean())
                                                          - 127) <= 2
            row = pixels[0, :, 0] if mode == "RGB" else pixels[0]
            assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)


def test_the_thumbnail_threads_start_only_when_a_thumbnail_is_asked_for(tmp_path):
    import threading

    from hypersd_desktop.gallery.thumbnails import Thumbnails

    image = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(image)
    thumbnails = Thumbnails(tmp_path / "cache")
    before = {t for t in threading.enumerate() if t.name.startswith("thumbnails")}
    assert thumbnails.path_if_ready(image) is None and thumbnails._pool is None
    assert thumbnails.request(image).result(30).exists()
    assert {t for t in threading.enumerate() if t.name.startswith("thumbnails")} - before
    thumbnails.close()


def test_an_import_leaves_out_invokeais_thumbnails_hidden_folders_and_macos_companions(gallery, tmp_path):
    """InvokeAI keeps a small WebP of each image in `outputs/thumbnails` beside `outputs/images`; a file manager
    keeps `.thumbnails`; a Mac writes a `._name.png` companion beside each file on a USB drive. None is an image of
    the gallery's: importing the folder takes the images alone, and says nothing of the rest."""
    outputs = tmp_path / "invokeai" / "outputs"
    write_images(outputs / "images", 2)
    (outputs / "thumbnails").mkdir()
    for name in ("a.webp", "b.webp"):
        Image.new("RGB", (8, 8), "grey").save(outputs / "thumbnails" / name)
    (outputs / ".thumbnails").mkdir()
    Image.new("RGB", (8, 8), "grey").save(outputs / ".thumbnails" / "c.png")
    (outputs / "images" / "._image-0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    elsewhere = tmp_path / "my-art" / "thumbnails"  # a folder of that name elsewhere is the person's own
    write_images(elsewhere, 1)
    report = gallery.import_folder(tmp_path / "invokeai")
    assert (report.added, report.failed) == (2, ())
    assert gallery.import_folder(tmp_path / "my-art").added == 1
    assert sorted(Path(path).parent.name for _id, path in gallery.store.all_paths()) == [
        "images", "images", "thumbnails"]


def test_the_made_with_filter_picks_the_images_of_each_tool_by_the_data_their_files_hold(gallery, tmp_path):
    import shutil

    from hypersd_desktop.cli import build_parser
    from hypersd_desktop.cli.gallery import _query
    from hypersd_desktop.gallery.formats import tool_title
    from hypersd_desktop.gallery.store import NO_DATA

    corpus = Path(__file__).parent / "corpus"
    for name in ("sd-parsers/automatic1111_cropped.png", "sd-parsers/fooocus1_cropped.png",
                 "sd-parsers/novelai1_cropped.png", "sd-metadata/png/comfyui-hires.png", "sd-metadata/jpg/sd-next.jpg"):
        shutil.copy(corpus / name, tmp_path / Path(name).name)
    Image.new("RGB", (16, 16), "teal").save(tmp_path / "photo.png")  # a picture that says nothing
    assert gallery.import_folder(tmp_path).added == 6
    gallery.store.add_many([record(1, metadata_format="hypersd"), record(2, metadata_format=None)])  # an older row
    tools = gallery.store.facets()["tools"]
    assert tools == ["a1111", "comfyui", "fooocus", "hypersd", "novelai", NO_DATA]
    counts = {tool: gallery.store.count(ImageQuery(made_with=tool)) for tool in tools}
    assert counts == {"a1111": 2, "comfyui": 1, "fooocus": 1, "hypersd": 1, "novelai": 1, NO_DATA: 2}
    assert [tool_title(tool) for tool in tools] == ["A1111, Forge, SD.Next", "ComfyUI", "Fooocus", "HyperSD Desktop",
                                                    "NovelAI", "No generation data"]
    found = gallery.store.query(ImageQuery(made_with="comfyui", text="")).images
    assert [Path(image.path).name for image in found] == ["comfyui-hires.png"]
    args = build_parser().parse_args(["gallery", "list", "--made-with", "Fooocus"])
    assert gallery.store.count(_query(args)) == 1


def test_an_image_a_browser_saved_as_jfif_is_imported_with_its_settings_and_a_thumbnail(gallery, tmp_path):
    """A browser on Windows often saves a JPEG as .jfif: an A1111 JPEG downloaded so keeps its EXIF settings."""
    import shutil

    folder = tmp_path / "Downloads"
    folder.mkdir()
    corpus = Path(__file__).parent / "corpus" / "sd-metadata" / "jpg" / "sd-webui.jpg"
    shutil.copy(corpus, folder / "00012-1234.jfif")
    report = gallery.import_folder(folder)
    assert (report.added, report.failed) == (1, ())
    (row,) = gallery.store.query(ImageQuery()).images
    assert row.metadata_format == "a1111" and row.prompt
    with Image.open(gallery.thumbnails.request(Path(row.path)).result(timeout=30)) as thumb:
        assert 0 < max(thumb.size) <= 256
