"""Real files written by other tools, read as their own projects' tests say they must be.

The corpus (`corpus/`, sources in `corpus/SOURCES.md`) is read through the same path as a
gallery import. The report counts fields right against fields present, per tool; the test
passes only when every field of every file is right.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from hypersd_desktop.gallery.formats.common import hires_settings
from hypersd_desktop.gallery.gallery import read_metadata
from hypersd_desktop.gallery.store import ImageQuery

CORPUS = Path(__file__).parent / "corpus"
NOT_FIELDS = {"tool", "made_by", "expected_from"}
TEXTS = {"prompt", "negative_prompt"}  # compared without surrounding whitespace


def hires_reading(metadata, wanted: dict | None) -> dict | None:
    """The Hires fix reuse makes of an image (None: none), as its project's test names the values it gives."""
    settings = hires_settings(metadata) if metadata else None
    if settings is None:
        return None
    upscaler = {key.lower(): value for key, value in metadata.extra.items()}.get("hires upscaler")
    got = {"scale": settings.scale, "upscaler": upscaler, "steps": settings.steps,
           "denoise": round(settings.strength, 4)}
    return {key: got[key] for key in wanted or got}


def upscale_reading(metadata, wanted: dict | None) -> dict | None:
    """The enlargement of the finished image an image says of (A1111's Extras' words; None: none), as its
    project's test names the values it gives."""
    extra = {key.lower(): value for key, value in metadata.extra.items()} if metadata else {}
    scale = extra.get("postprocess upscale by")
    if not scale:
        return None
    got = {"scale": float(scale), "upscaler": extra.get("postprocess upscaler")}
    return {key: got[key] for key in wanted or got}


READINGS = {"hires": hires_reading, "upscale": upscale_reading}


def corpus() -> dict[str, dict]:
    return json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))["files"]


def test_every_field_of_every_real_file_reads_as_its_project_expects():
    right: dict[str, int] = defaultdict(int)
    present: dict[str, int] = defaultdict(int)
    wrong = []
    for name, expected in corpus().items():
        metadata, _w, _h, warnings = read_metadata(CORPUS / name)
        maker = expected["made_by"]
        checks = {"format": (metadata.format if metadata else "none", expected["tool"])}
        for field, value in expected.items():
            if field in READINGS:
                checks[field] = (READINGS[field](metadata, value), value)
            elif field not in NOT_FIELDS:
                got = getattr(metadata, field, None)
                checks[field] = (got.strip(), value.strip()) if field in TEXTS and got is not None else (got, value)
        for field, (got, want) in checks.items():
            present[maker] += 1
            if got == want:
                right[maker] += 1
            else:
                wrong.append(f"{name}: {field} is {got!r}, expected {want!r}")
        assert warnings == [], warnings
    report = [f"{maker:17} {right[maker]:4}/{present[maker]:4} fields right ({100 * right[maker] / present[maker]:.0f} %)"
              for maker in sorted(present)]
    print("\n" + "\n".join(report))
    assert not wrong, "\n".join(wrong)


# Files whose record is split across chunks (Stability Matrix's and TensorArt's beside the graph that holds the
# sampler or seed; NovelAI's older Comment, whose prompt is in Description), or written as a command line (InvokeAI's
# Dream): no one text copied from them holds all of it
SPLIT_RECORDS = {"sd-parsers/invokeai_dream1.png", "sd-parsers/novelai1_cropped.png",
                 "sd-metadata/png/stability-matrix.png", "sd-metadata/png/stability-matrix-hires.png",
                 "sd-metadata/png/stability-matrix-upscale.png", "sd-metadata/png/tensorart.png"}


def test_generation_data_copied_as_text_from_a_real_file_reads_as_the_file_does():
    """What a person copies out of an image (its A1111 text, its graph or workflow, its tool's JSON record) and
    pastes: one of its texts reads with every field the file is expected to have. Images without settings have
    no text that reads."""
    from hypersd_desktop.gallery.formats import parse_text
    from hypersd_desktop.gallery.gallery import metadata_chunks

    def same(metadata, expected) -> bool:
        return all((getattr(metadata, field) or "").strip() == value.strip() if field in TEXTS
                   else READINGS[field](metadata, value) == value if field in READINGS
                   else getattr(metadata, field) == value
                   for field, value in expected.items() if field not in NOT_FIELDS)

    read = 0
    for name, expected in corpus().items():
        texts = [text for text in metadata_chunks(CORPUS / name).values() if isinstance(text, str)]
        readings = [parse_text(text) for text in texts]
        if expected["tool"] == "none":
            assert readings == [None] * len(texts), name
        elif name not in SPLIT_RECORDS:
            assert any(reading is not None and same(reading, expected) for reading in readings), name
            read += 1
    assert read == len(corpus()) - len(SPLIT_RECORDS) - 6  # 6 images without settings


def test_every_corpus_file_says_where_it_comes_from():
    files = corpus()
    assert {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".png", ".jpg", ".jpeg", ".webp")} == set(files)
    assert all(entry["expected_from"] for entry in files.values())


def test_the_gallery_search_finds_every_tool_by_a_word_of_its_prompt(app_home, tmp_path):
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.gallery.gallery import Gallery
    from hypersd_desktop.gallery.store import ImageQuery
    from tool_layouts import draw_things_png, easy_diffusion_png

    gallery = Gallery(AppPaths.default())
    try:
        report = gallery.import_folder(CORPUS)
        assert (report.added, report.failed) == (len(corpus()), ())
        gallery.import_files([draw_things_png(tmp_path / "dt.png"), easy_diffusion_png(tmp_path / "ed.png")])
        for word, name in (("frog", "dt.png"), ("birch", "ed.png")):  # the tools without sample files
            assert [Path(r.path).name for r in gallery.store.query(ImageQuery(text=word)).images] == [name]
        for name, expected in corpus().items():
            words = [w for w in expected.get("prompt", "").replace(",", " ").split() if w.isalpha() and len(w) > 3]
            if not words:
                continue
            found = {Path(r.path).name for r in gallery.store.query(ImageQuery(text=words[-1])).images}
            assert Path(name).name in found, (name, words[-1])
        # the Japanese word the sd-metadata samples end their prompts with, by a part of it that does not begin it
        japanese = {Path(name).name for name, expected in corpus().items() if "テスト" in expected.get("prompt", "")}
        assert len(japanese) > 30
        assert {Path(r.path).name for r in gallery.store.query(ImageQuery(text="スト"), limit=500).images} == japanese
    finally:
        gallery.close()


def test_an_avif_saved_as_a1111_and_forge_save_one_reads_as_their_jpeg(app_home, tmp_path):
    """A1111 (1.10) and Forge save AVIF with the EXIF block they put in a JPEG: the `parameters` in the
    UserComment (piexif's). Made here from the corpus JPEGs' own EXIF bytes, as their `save_image_with_geninfo`
    passes them to Pillow."""
    from PIL import Image

    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.gallery.gallery import Gallery

    folder = tmp_path / "outputs"
    folder.mkdir()
    names = ("sd-metadata/jpg/sd-webui.jpg", "sd-metadata/jpg/forge-classic-hires.jpeg")
    for name in names:
        with Image.open(CORPUS / name) as jpeg:
            jpeg.convert("RGB").save(folder / f"{Path(name).stem}.avif", quality=90, exif=jpeg.info["exif"])
    for name in names:
        avif = folder / f"{Path(name).stem}.avif"
        metadata, width, height, warnings = read_metadata(avif)
        expected, *_ = read_metadata(CORPUS / name)
        assert warnings == [] and metadata == expected and metadata.format == corpus()[name]["tool"]
    gallery = Gallery(AppPaths.default())
    try:
        report = gallery.import_folder(folder)
        assert (report.added, report.failed) == (2, ())
        records = {Path(record.path).stem: record for record in gallery.store.query(ImageQuery()).images}
        for name in names:
            record = records[Path(name).stem]
            assert (record.prompt.strip(), record.seed) == (corpus()[name]["prompt"].strip(), corpus()[name]["seed"])
            assert gallery.thumbnails.make(Path(record.path)).is_file()
    finally:
        gallery.close()


def test_the_civitai_versions_images_from_civitai_name_are_read():
    """Its generator's A1111 text (`Civitai resources`), its graphs (`extra.airs`; an upscale's `extraMetadata`
    lists versions only): what a missing model is downloaded by."""
    found = {name: read_metadata(CORPUS / "sd-metadata" / "jpg" / name)[0].civitai
             for name in ("civitai.jpeg", "civitai-hires.jpg", "civitai-upscale.jpg")}
    assert found == {"civitai.jpeg": (("checkpoint", 2514310),), "civitai-hires.jpg": (("checkpoint", 2514310),),
                     "civitai-upscale.jpg": (("", 2514310),)}  # its upscaler's AIR is not a kind the app uses
