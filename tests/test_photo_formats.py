"""Pictures in the formats people's phones and browsers save: an iPhone's HEIC photo, AVIF and JPEG XL come in as
init, mask and control images, upright, kept as PNG (tests/photos/SOURCES.md says where the files come from)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from pictures import init_picture

from cli_process import run_cli
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import (PICTURE_SUFFIXES, InputImages, check_image_bytes, is_converted, kept_bytes,
                                         read_formats)
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.gallery.metadata import read_request

PHOTOS = Path(__file__).parent / "photos"
IPHONE = PHOTOS / "arrow.heic"


def _ink_tip(picture: Image.Image) -> tuple[float, float]:
    """Where the arrow's topmost ink is across the drawing's width (0 left, 1 right), and how wide it is."""
    gray = np.asarray(picture.convert("L").resize((picture.width // 10, picture.height // 10)))
    rows, columns = np.nonzero(gray < 60)  # the marker's ink; the paper and its ruled lines are lighter
    tip = columns[rows < rows.min() + 5]
    width = columns.max() - columns.min()
    return (tip.mean() - columns.min()) / width, (tip.max() - tip.min()) / width


def test_an_iphone_heic_photo_comes_in_upright_as_png(tmp_path):
    store = InputImages(tmp_path / "inputs")
    digest = store.add_file(IPHONE)
    kept = store.find(digest)
    assert kept.suffix == ".png" and digest == hashlib.sha256(kept.read_bytes()).hexdigest()
    with Image.open(kept) as picture:
        # stored 4032 × 3024 and turned a quarter by its orientation: the arrow stands up, as a phone shows it
        assert picture.size == (3024, 4032) and picture.mode == "RGB"
        assert len(picture.info["icc_profile"]) > 0  # the photo's colour profile goes with it
        across, wide = _ink_tip(picture)
        assert 0.4 < across < 0.6 and wide < 0.1  # the tip: at the top, in the middle, narrow
    assert store.add_file(IPHONE) == digest  # the same photo is kept once


@pytest.mark.parametrize("heif, original", [("RGBA_8__29x100.heif", "RGBA_8__29x100.png"),
                                            ("RGB_10__29x100.heif", "RGB_16__29x100.png")])
def test_heif_colour_alpha_and_ten_bits_come_in_as_encoded(heif, original):
    data, extension = kept_bytes((PHOTOS / heif).read_bytes())
    with Image.open(io.BytesIO(data)) as picture, Image.open(PHOTOS / original) as source:
        assert extension == "png" and picture.size == source.size == (29, 100)
        assert picture.mode == source.mode  # alpha kept; ten bits become eight, as the rest of the app reads
        difference = np.abs(np.asarray(picture, np.int16) - np.asarray(source, np.int16))
    assert difference.mean() < 5  # HEIF is lossy: the encoder's error, not a shift or a scaling


def test_an_avif_picture_comes_in_upright(tmp_path):
    """Pillow reads AVIF itself and leaves its EXIF orientation to the reader, as for a JPEG."""
    picture = Image.new("RGB", (64, 32), (220, 30, 30))
    picture.paste((30, 200, 30), (0, 0, 16, 32))  # green on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: the green band comes to the top
    buffer = io.BytesIO()
    picture.save(buffer, "AVIF", quality=95, exif=exif.tobytes())
    store = InputImages(tmp_path / "inputs")
    digest = store.add(buffer.getvalue(), "The AVIF")
    assert store.find(digest).suffix == ".png"
    shown = store.open(digest)
    assert shown.size == (32, 64)
    top, bottom = np.asarray(shown)[4, 16], np.asarray(shown)[60, 16]
    assert top[1] > 150 > top[0] and bottom[0] > 150 > bottom[1]


def test_jpeg_xl_pictures_come_in_as_libjxl_decodes_them(tmp_path):
    """JPEG XL's conformance files: a picture with transparency equals its reference; a grey one keeps its own
    profile (Dot Gain 10 %). A JPEG transcoded by cjxl with its EXIF orientation (6) comes in upright once: libjxl
    turns it, and the EXIF the file still carries is not applied again."""
    store = InputImages(tmp_path / "inputs")
    digest = store.add((PHOTOS / "alpha_triangles.jxl").read_bytes(), "The picture")
    assert store.find(digest).suffix == ".png" and "JPEG XL" in read_formats() and ".jxl" in PICTURE_SUFFIXES
    with Image.open(store.find(digest)) as made, Image.open(PHOTOS / "alpha_triangles.png") as reference:
        assert made.mode == "RGBA" and made.size == reference.size == (1024, 1024)
        difference = np.abs(np.asarray(made, np.int16) - np.asarray(reference.convert("RGBA"), np.int16))
        assert difference.max() <= 1
    grey = Image.open(io.BytesIO(kept_bytes((PHOTOS / "grayscale.jxl").read_bytes())[0]))
    assert grey.mode == "L" and grey.size == (200, 200)
    assert b"Dot Gain 10%" in grey.info["icc_profile"].replace(b"\0", b"")

    turned = (PHOTOS / "turned-by-exif.jxl").read_bytes()
    assert check_image_bytes(turned) == ("png", (60, 120))  # upright, as the box says the result's size
    shown = np.asarray(Image.open(io.BytesIO(kept_bytes(turned)[0])).convert("RGB"), np.int16)
    jpeg = np.asarray(ImageOps.exif_transpose(Image.open(PHOTOS / "turned-by-exif.jpg")).convert("RGB"), np.int16)
    assert shown.shape == jpeg.shape == (120, 60, 3) and np.abs(shown - jpeg).max() <= 2  # as the JPEG is shown
    assert shown[2, 30, 2] > 150 > shown[2, 30, 0]  # the blue band stored on the left, at the top


def test_a_jpeg_xl_picture_written_by_libjxl_comes_back_as_it_was(tmp_path):
    import pylibjxl

    pixels = np.asarray(init_picture(96).convert("RGB"))
    data = pylibjxl.encode(np.ascontiguousarray(pixels), lossless=True)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(kept_bytes(data)[0]))), pixels)
    with pytest.raises(InputError, match="^The picture is a JPEG XL picture that cannot be decoded; it may be "
                                         "damaged or cut short"):
        kept_bytes(data[:len(data) // 2], "The picture")


def test_a_panorama_comes_in_scaled_down_to_8192_on_its_longer_side(tmp_path):
    """A phone's panorama (16000 × 3000 here, shown upright by its EXIF) is kept as a PNG 8192 pixels long, read off
    the GUI thread as a HEIC photo is, where it was refused; a JPEG decodes at half its size to be scaled. A picture
    past Pillow's guard against decompression bombs (about 179 megapixels) is still refused."""
    across = np.linspace(0, 255, 16000, dtype=np.float32)[None, :]
    down = np.linspace(0, 255, 3000, dtype=np.float32)[:, None]
    pixels = np.stack([np.broadcast_to(across, (3000, 16000)), np.broadcast_to(down, (3000, 16000)),
                       np.full((3000, 16000), 90, np.float32)], axis=-1).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # turned a quarter clockwise to be shown
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    data = buffer.getvalue()
    assert is_converted(data) and check_image_bytes(data) == ("png", (8192, 1536))
    store = InputImages(tmp_path / "inputs")
    digest = store.add(data, "The panorama")
    assert store.find(digest).suffix == ".png"
    shown = store.open(digest)
    assert shown.size == (1536, 8192)  # upright
    expected = Image.fromarray(pixels).resize((8192, 1536), Image.Resampling.LANCZOS).transpose(
        Image.Transpose.ROTATE_270)
    assert np.abs(np.asarray(shown, np.int16) - np.asarray(expected, np.int16)).mean() < 2
    bomb = io.BytesIO()
    Image.new("L", (20000, 10000)).save(bomb, "PNG")
    with pytest.raises(InputError, match="has more pixels than an input can have"):
        kept_bytes(bomb.getvalue(), "The scan")


@pytest.mark.parametrize("file_format", ["JPEG", "TIFF"])
def test_a_cmyk_picture_comes_in_through_its_colour_profile(tmp_path, file_format):
    """A print picture (CMYK, with its press's colour profile, as a stock photo or a designer's file has it) comes in
    as RGB as Photoshop shows it: the press's cyan is (0, 174, 239), not the screen's (0, 255, 255), and black ink
    is the ink's grey. Without a profile, the plain conversion; the worker reads one kept before as the app does."""
    from pictures import INKS, cmyk_profile

    picture = Image.new("CMYK", (64, 16), (0, 0, 0, 0))
    for at, ink in enumerate([(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 255)]):
        picture.paste(ink, (at * 16, 0, at * 16 + 16, 16))
    for profile, expected in ((cmyk_profile(), list(INKS.values())),
                              (None, [(0, 255, 255), (255, 0, 255), (255, 255, 0), (0, 0, 0)])):
        buffer = io.BytesIO()
        picture.save(buffer, file_format, **({"quality": 100} if file_format == "JPEG" else {}),
                     **({"icc_profile": profile} if profile else {}))
        data = buffer.getvalue()
        assert check_image_bytes(data)[0] == "png"  # kept as RGB
        store = InputImages(tmp_path / f"inputs-{profile is None}")
        shown = np.asarray(store.open(store.add(data, "The print")), np.int16)
        for at, colour in enumerate(expected):
            assert np.abs(shown[8, at * 16 + 8] - colour).max() <= 5, (at, shown[8, at * 16 + 8], colour)
        with Image.open(io.BytesIO(data)) as kept_before:  # as InputImages kept it before: the bytes themselves
            from hypersd_desktop.core.images import _in_mode

            assert np.abs(np.asarray(_in_mode(kept_before, "RGB"), np.int16)[8, 8] - expected[0]).max() <= 3


def test_a_damaged_heic_photo_says_so(tmp_path):
    store = InputImages(tmp_path / "inputs")
    with pytest.raises(InputError, match="The photo is a HEIC photo .* cannot be decoded; it may be damaged or cut "
                                         "short"):
        store.add(IPHONE.read_bytes()[:2000], "The photo")
    assert not (tmp_path / "inputs").exists() or not list((tmp_path / "inputs").iterdir())


def said_without(module: str, format_name: str, path: Path, what: str) -> str:
    """What the app says of the picture at `path` where `module` (its decoder) is not installed."""
    script = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from hypersd_desktop.core.images import InputImages, read_formats\n"
        "from hypersd_desktop.core.errors import InputError\n"
        f"assert {format_name!r} not in read_formats()\n"
        f"try: InputImages(None).hold(open({str(path)!r}, 'rb').read(), {what!r})\n"
        "except InputError as error: print(error)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_without_the_heic_decoder_a_heic_photo_is_named_with_what_to_do():
    """The compute runtime has no HEIC decoder (the app converts photos before they travel); nor might a
    source install without pi-heif."""
    said = said_without("pi_heif", "HEIC", IPHONE, "The photo")
    assert said.startswith("The photo is a HEIC photo (as iPhones take them), which the app cannot read; save it as "
                           "JPEG or PNG first (PNG, JPEG, WebP, BMP, TIFF, GIF, AVIF, JPEG XL, PSD, XCF, KRA and ORA "
                           "are read).")


def test_without_the_jpeg_xl_decoder_a_jpeg_xl_picture_is_named_with_what_to_do():
    """On a Mac older than macOS 14 (which pylibjxl's wheels need) the app has no JPEG XL decoder."""
    said = said_without("pylibjxl", "JPEG XL", PHOTOS / "grayscale.jxl", "The picture")
    assert said.startswith("The picture is a JPEG XL picture, which the app cannot read; save it as JPEG or PNG "
                           "first (")


def test_generate_from_an_iphone_photo(tiny_sd15, hyper_lora, tmp_path):
    """The command line as a user runs it: the photo as the init image and, made a scribble, as the control."""
    import tiny_models

    controlnet = tiny_models.save_controlnet(tiny_sd15, tmp_path / "controlnet")
    run = run_cli("generate", "--model", tiny_sd15, "--prompt", "an arrow", "--lora",
                  hyper_lora("Hyper-SD15-1step-lora"), "--steps", "1", "--init-image", IPHONE, "--strength", "1.0",
                  "--control", f"{controlnet}:{IPHONE}", "--preprocess", "scribble", "--width", "64", "--height", "88",
                  "--seed", "2", "--out", tmp_path / "out", "--json")
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout.splitlines()[-1])
    request = read_request(made["path"])
    assert request["init_image"] == request["controls"][0]["image"]  # the photo, kept once
    with Image.open(InputImages(AppPaths.default().inputs).find(request["init_image"])) as kept:
        assert (kept.format, kept.size) == ("PNG", (3024, 4032))
    with Image.open(made["path"]) as image:
        assert image.size == (64, 88)
