"""Export to folders: templates, collisions, safe names, traversal, formats, metadata, manifests, cancel."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.gallery.export import ExportOptions, check_template, export_images, render, sanitize_component
from hypersd_desktop.gallery.store import ImageRecord

CREATED = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def image(tmp_path, i: int, **changes) -> ImageRecord:
    path = tmp_path / "src" / f"{i}.png"
    path.parent.mkdir(exist_ok=True)
    info = PngInfo()
    info.add_text("parameters", f"prompt {i}\nSteps: 4, Sampler: TCD, CFG scale: 0, Seed: {i}, Size: 24x16")
    Image.new("RGB", (24, 16), (10 * i % 255, 80, 160)).save(path, pnginfo=info)
    values = dict(path=str(path), created=CREATED + i, source="generated", prompt=f"prompt {i}", seed=i, steps=4,
                  model_name="sd15", loras=(("Hyper-SD15-4steps-lora", 1.0, None),), id=i)
    values.update(changes)
    return ImageRecord(**values)


def test_template_fields_and_subfolders(tmp_path):
    record = image(tmp_path, 7, prompt="A fox, in the snow: at dawn!")
    assert render("{model}/{lora}/{seed}-{steps}-{prompt:9}", record, 3, 120) == "sd15/Hyper-SD15-4steps-lora/7-4-A fox, in"
    assert render("{index}_{id}", record, 3, 120) == "003_7"
    assert render("{index:5}", record, 3, 9) == "00003"
    assert render("{prompt}", image(tmp_path, 1, prompt="a/b\\c"), 1, 1) == "a_b_c"


@pytest.mark.parametrize("created, date", [(1e20, "9999-12-31"), (-1e20, "1-01-01"), (float("nan"), "1-01-01")])
def test_a_date_the_platforms_clock_refuses_still_names_a_folder(tmp_path, created, date):
    """A file dated before 1970 (Windows' clock refuses those) or with a damaged date past any clock's range: the
    {date} field still writes a date, counted from 1970 (the year is written as the platform writes year 1)."""
    name = render("{date}/{seed}", image(tmp_path, 3, created=created), 1, 1)
    assert name.split("/")[0].lstrip("0").startswith(date) and name.endswith("/3")


@pytest.mark.parametrize("name,expected", [
    ("CON", "_CON"), ("com1.png", "_com1.png"), ("lpt9", "_lpt9"), ('a<b>c:d"e|f?g*h', "a_b_c_d_e_f_g_h"),
    ("ends with dots...", "ends with dots"), ("  ", "_"), ("..", "_"), ("tab\there", "tab_here"),
])
def test_names_valid_everywhere(name, expected):
    assert sanitize_component(name) == expected


def test_unicode_and_long_prompts(tmp_path):
    record = image(tmp_path, 1, prompt="東京の夜景、ネオン " * 40, model_name="模型")
    relative = render("{model}/{prompt}", record, 1, 1)
    folder, name = relative.split("/")
    assert folder == "模型" and len(name) <= 100 and len(relative) <= 200
    result = export_images([record], tmp_path / "out", ExportOptions(template="{model}/{prompt}"))
    assert result.written == 1 and (tmp_path / "out" / (relative + ".png")).exists()


@pytest.mark.parametrize("template", ["../{seed}", "a/../../{seed}", "/etc/{seed}", "C:/x/{seed}", "./{seed}", ""])
def test_templates_that_leave_the_folder_are_refused(template):
    with pytest.raises(InputError):
        check_template(template)


def test_unknown_field_is_refused():
    with pytest.raises(InputError, match="Unknown template field"):
        check_template("{sead}")


def test_collisions_skip_overwrite_number(tmp_path):
    records = [image(tmp_path, 1), image(tmp_path, 2, seed=1)]  # both render to "1"
    out = tmp_path / "out"
    first = export_images(records, out, ExportOptions(template="{seed}"))
    assert sorted(e.target for e in first.entries) == ["1-2.png", "1.png"]  # numbered within one export too
    skipped = export_images(records[:1], out, ExportOptions(template="{seed}", collision="skip"))
    assert skipped.entries[0].status == "skipped (exists)"
    numbered = export_images(records[:1], out, ExportOptions(template="{seed}", collision="number"))
    assert numbered.entries[0].target == "1-3.png"
    before = (out / "1.png").stat().st_mtime_ns
    overwritten = export_images(records[1:], out, ExportOptions(template="{seed}", collision="overwrite"))
    assert overwritten.entries[0].target == "1.png" and (out / "1.png").stat().st_mtime_ns >= before
    with Image.open(out / "1.png") as written:
        assert written.getpixel((0, 0))[0] == 20  # image 2's colour replaced image 1's


def test_formats_quality_and_metadata(tmp_path):
    record = image(tmp_path, 3)
    out = tmp_path / "out"
    export_images([record], out, ExportOptions(template="keep", format="png"))
    export_images([record], out, ExportOptions(template="strip", format="png", keep_metadata=False))
    export_images([record], out, ExportOptions(template="jpeg", format="jpeg", quality=70))
    export_images([record], out, ExportOptions(template="webp", format="webp", keep_metadata=False))
    with Image.open(out / "keep.png") as kept, Image.open(out / "strip.png") as stripped:
        assert "Seed: 3" in kept.text["parameters"] and "parameters" not in stripped.text
    from hypersd_desktop.gallery.gallery import read_metadata

    assert read_metadata(out / "jpeg.jpg")[0].seed == 3
    assert read_metadata(out / "webp.webp")[0] is None
    with Image.open(out / "jpeg.jpg") as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (24, 16)
    assert not list(out.rglob(".partial-*"))


def test_an_avif_export_keeps_the_parameters_as_a1111_writes_them_and_imports_back(tmp_path):
    from hypersd_desktop.gallery.gallery import read_metadata

    record = image(tmp_path, 5)
    out = tmp_path / "out"
    result = export_images([record], out, ExportOptions(template="{seed}", format="avif", quality=80))
    assert result.written == 1
    with Image.open(out / "5.avif") as avif, Image.open(record.path) as source:
        assert avif.format == "AVIF" and avif.size == (24, 16)
        difference = [abs(a - b) for a, b in zip(avif.convert("RGB").getpixel((12, 8)), source.getpixel((12, 8)))]
        assert max(difference) <= 6  # lossy, close
    metadata, *_ = read_metadata(out / "5.avif")
    expected, *_ = read_metadata(record.path)
    assert (metadata.prompt, metadata.seed, metadata.steps, metadata.sampler) == (
        expected.prompt, expected.seed, expected.steps, expected.sampler)
    export_images([record], out, ExportOptions(template="stripped", format="avif", keep_metadata=False))
    assert read_metadata(out / "stripped.avif")[0] is None


def test_manifest_and_progress_and_cancel(tmp_path):
    records = [image(tmp_path, i) for i in range(1, 6)]
    events = []
    result = export_images(records, tmp_path / "out", ExportOptions(template="{date}/{seed}"), on_progress=events.append)
    rows = list(csv.DictReader(result.manifest_csv.open()))
    assert [row["target"] for row in rows] == [f"2026-01-01/{i}.png" for i in range(1, 6)] or \
        all(row["target"].endswith(f"/{i}.png") for row, i in zip(rows, range(1, 6)))
    assert json.loads(result.manifest_json.read_text())["images"][0]["status"] == "written"
    assert events[-1].done == events[-1].total == 5

    token = CancelToken()
    with pytest.raises(CancelledError, match="after 1 of 5"):
        export_images(records, tmp_path / "out2", ExportOptions(template="{seed}"),
                      on_progress=lambda p: token.cancel(), cancel=token)
    written = sorted(p.name for p in (tmp_path / "out2").glob("*.png"))
    assert written == ["1.png"]
    assert list((tmp_path / "out2").glob("manifest-*.csv"))


def test_export_reads_its_records_one_at_a_time(tmp_path):
    """With a count given, the query is consumed as images are written, never loaded whole."""
    out = tmp_path / "out"
    written_when_asked = []

    def records():
        for i in range(1, 6):
            written_when_asked.append(len(list(out.glob("*.png"))) if out.exists() else 0)
            yield image(tmp_path, i)

    result = export_images(records(), out, ExportOptions(template="{seed}"), count=5)
    assert result.written == 5 and written_when_asked == [0, 1, 2, 3, 4]


def test_two_exports_in_the_same_second_keep_both_manifests(tmp_path, monkeypatch):
    import time as time_module

    monkeypatch.setattr(time_module, "strftime", lambda *args: "20260101-120000")  # the same second for both
    out = tmp_path / "out"
    first = export_images([image(tmp_path, 1)], out, ExportOptions(template="{seed}"))
    second = export_images([image(tmp_path, 2)], out, ExportOptions(template="{seed}"))
    assert first.manifest_csv.name == "manifest-20260101-120000.csv"
    assert second.manifest_csv.name == "manifest-20260101-120000-2.csv"
    assert "1.png" in first.manifest_csv.read_text() and "2.png" in second.manifest_csv.read_text()
    assert json.loads(first.manifest_json.read_text())["images"][0]["target"] == "1.png"


def test_strip_metadata_leaves_only_pixels_and_the_colour_profile(tmp_path):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    png = tmp_path / "src" / "private.png"
    png.parent.mkdir()
    info = PngInfo()
    info.add_text("parameters", "secret prompt")
    info.add(b"prVt", b"my private data")  # an ancillary private chunk
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png, pnginfo=info, icc_profile=profile)
    jpeg = tmp_path / "src" / "commented.jpg"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(jpeg, comment=b"secret comment", icc_profile=profile)
    for source, export_format in ((png, "png"), (png, "jpeg"), (jpeg, "jpeg"), (jpeg, "webp"), (jpeg, "png")):
        record = image(tmp_path, 1, path=str(source))
        out = tmp_path / f"out-{source.suffix[1:]}-{export_format}"
        export_images([record], out, ExportOptions(template="{id}", format=export_format, keep_metadata=False))
        (written,) = [p for p in out.iterdir() if not p.name.startswith("manifest")]
        data = written.read_bytes()
        assert b"secret" not in data and b"prVt" not in data and b"my private data" not in data, (source, export_format)
        with Image.open(written) as result:
            assert result.info.get("icc_profile") == profile
            assert all(abs(a - b) <= 3 for a, b in zip(result.convert("RGB").getpixel((0, 0)), (1, 2, 3)))


def test_cmyk_and_16_bit_images_export_as_they_look(tmp_path):
    import numpy as np

    (tmp_path / "src").mkdir()
    cmyk = tmp_path / "src" / "print.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk)  # pure red in print colours
    deep = tmp_path / "src" / "deep.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(deep)  # 16-bit mid grey
    for source, export_format, expected in ((cmyk, "png", (255, 0, 0)), (deep, "jpeg", (128, 128, 128)),
                                            (deep, "webp", (128, 128, 128))):
        out = tmp_path / f"out-{source.stem}-{export_format}"
        result = export_images([image(tmp_path, 1, path=str(source))], out,
                               ExportOptions(template="{id}", format=export_format))
        assert result.written == 1, result.entries
        with Image.open(next(p for p in out.iterdir() if not p.name.startswith("manifest"))) as written:
            assert all(abs(a - b) <= 3 for a, b in zip(written.convert("RGB").getpixel((4, 4)), expected))


def test_an_export_target_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "not-a-folder"
    target.write_text("x")
    with pytest.raises(InputError, match="is a file; choose a folder"):
        export_images([image(tmp_path, 1)], target, ExportOptions())
    with pytest.raises(InputError, match="Cannot write into"):
        export_images([image(tmp_path, 1)], target / "below", ExportOptions())


def test_a_full_disk_stops_the_export_and_says_so(tmp_path, monkeypatch):
    import errno

    from hypersd_desktop.gallery import export as export_module

    real = export_module.write_image
    calls = []

    def fill_up(record, destination, options):
        calls.append(record.id)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(record, destination, options)

    monkeypatch.setattr(export_module, "write_image", fill_up)
    with pytest.raises(InputError, match=r"is full: 2 of 6 images were written and manifest-.*\.csv lists them"):
        export_images([image(tmp_path, i) for i in range(1, 7)], tmp_path / "out", ExportOptions(template="{seed}"))
    assert len(calls) == 3  # it stopped at the first image that did not fit


def test_exported_files_follow_the_umask(tmp_path):
    import os
    import stat

    out = tmp_path / "out"
    export_images([image(tmp_path, 1)], out, ExportOptions(template="{seed}"))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((out / "1.png").stat().st_mode) == 0o666 & ~mask


def test_an_export_removes_what_a_killed_export_left_half_written_where_it_writes(tmp_path):
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / "out" / "sd15" / f".partial-{gone.pid}-1a2b3c.png"  # as atomic_writer names its files
    elsewhere = tmp_path / "out" / "other" / stale.name  # a folder this export does not write into
    for path in (stale, elsewhere):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"half")
    export_images([image(tmp_path, 1)], tmp_path / "out", ExportOptions(template="{model}/{seed}"))
    assert not stale.exists() and elsewhere.exists()
    assert (tmp_path / "out" / "sd15" / "1.png").is_file()
