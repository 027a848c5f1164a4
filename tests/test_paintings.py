"""Painting programs' files as pictures: Photoshop's .psd and .psb (real ones, tests/photos/SOURCES.md), and Krita's
.kra and OpenRaster's .ora written here as Krita and MyPaint write them (GIMP's .xcf: test_gimp.py). Each comes in
as the PNG of the picture its program shows, wherever a picture comes in: the init image box, a dropped file, a
picture batch."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_process import run_cli
from pictures import krita_file, painting, png
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import (PICTURE_SUFFIXES, InputImages, check_image_bytes, is_converted, kept_bytes,
                                         read_formats)
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.gallery.metadata import read_request

PHOTOS = Path(__file__).parent / "photos"


def sketch(size=(64, 64)) -> Image.Image:
    """A drawing: dark strokes on light paper, different in each quarter, so a picture turned or cut shows it."""
    picture = Image.new("RGB", size, (235, 230, 220))
    picture.paste((30, 30, 90), (4, 4, size[0] // 2, 12))
    picture.paste((120, 20, 20), (size[0] // 2 + 4, size[1] // 2, size[0] - 4, size[1] - 4))
    return picture


def test_a_photoshop_file_comes_in_as_its_merged_picture():
    """hopper.psd, saved by Photoshop with two layers and a colour profile: its merged picture, with the profile."""
    data = (PHOTOS / "hopper.psd").read_bytes()
    assert is_converted(data) and "PSD" in read_formats()
    kept, extension = kept_bytes(data, "The drawing")
    with Image.open(io.BytesIO(kept)) as made, Image.open(PHOTOS / "hopper.psd") as photoshop:
        assert extension == "png" and made.format == "PNG" and made.size == (128, 128)
        assert np.array_equal(np.asarray(made), np.asarray(photoshop.convert("RGB")))  # Photoshop's composite
        assert made.info["icc_profile"] == photoshop.info["icc_profile"]
    with Image.open(io.BytesIO(kept_bytes((PHOTOS / "rgba.psd").read_bytes())[0])) as transparent:
        assert transparent.mode == "RGBA" and transparent.getextrema()[3] == (0, 255)  # its transparency kept
    layer_off_the_page = kept_bytes((PHOTOS / "negative_top_left_layer.psd").read_bytes())[0]
    assert Image.open(io.BytesIO(layer_off_the_page)).size == (100, 100)


def pixels(data: bytes, mode: str = "RGBA") -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(kept_bytes(data)[0])).convert(mode), np.int16)


def test_photoshop_files_with_transparency_come_in_without_the_white_they_were_put_over():
    """Photoshop keeps a transparent document's merged picture put over white. psd-tools' opacity-fill.psd, a red
    layer at 45 % fill, is stored pink (255, 140, 140); it comes in red at 45 %. gray0.psd, a greyscale sketch on
    a transparent layer (Pillow reads its two planes as one: noise), comes in as grey with transparency, its soft
    brush's edges the grey of the brush (66, as its opaque middle), not fading to white."""
    red = pixels((PHOTOS / "opacity-fill.psd").read_bytes())
    soft = (red[..., 3] > 20) & (red[..., 3] < 235)
    assert soft.sum() == 1024 and (red[soft][:, :3] == (255, 0, 0)).all() and (red[soft][:, 3] == 115).all()
    sketch = pixels((PHOTOS / "gray0.psd").read_bytes(), "LA")
    grey, alpha = sketch[..., 0], sketch[..., 1]
    assert sketch.shape == (359, 400, 2) and (alpha == 0).mean() > 0.8  # mostly transparent paper
    soft = (alpha > 20) & (alpha < 235)
    assert soft.sum() > 5000 and abs(grey[soft].mean() - grey[alpha == 255].mean()) < 2 and grey[soft].std() < 3
    with Image.open(PHOTOS / "gray0.psd") as opened:
        assert opened.mode == "LA"  # wherever the app opens it


def test_16_and_32_bit_photoshop_files_and_large_documents_come_in_at_8_bits():
    """Photoshop's own files from psd-tools' tests: the same 5 × 5 picture in 16 and 32 bits (32-bit values are
    linear light) and as a large document (.psb) reads the same; a 16-bit greyscale file as the PNG beside it; a
    .psb (run-length encoded with 4-byte row counts) as its .psd twin reads through Pillow."""
    sixteen = (PHOTOS / "16bit5x5.psd").read_bytes()
    assert is_converted(sixteen) and ".psb" in PICTURE_SUFFIXES
    made = pixels(sixteen)
    assert made.shape == (5, 5, 4) and made[0, 0, 0] == round(60539 / 65535 * 255)  # its first red, scaled
    assert Image.open(io.BytesIO(kept_bytes(sixteen)[0])).info["icc_profile"][36:40] == b"acsp"  # its profile kept
    for other in ("32bit5x5.psd", "32bit5x5.psb"):
        assert np.abs(pixels((PHOTOS / other).read_bytes()) - made).max() <= 1
    grey = pixels((PHOTOS / "threshold_16bits_grayscale.psd").read_bytes(), "L")
    with Image.open(PHOTOS / "threshold_16bits_grayscale.png") as expected:
        assert np.abs(grey - np.asarray(expected.convert("L"), np.int16)).max() <= 1
    large = pixels((PHOTOS / "2layers.psb").read_bytes(), "RGB")
    with Image.open(PHOTOS / "2layers.psd") as twin:
        assert large.shape == (55, 101, 3) and np.abs(large - np.asarray(twin.convert("RGB"), np.int16)).max() <= 1


def test_photoshop_files_without_a_picture_to_read_say_what_to_do():
    with pytest.raises(InputError, match=r"^The drawing is a layered Photoshop file saved without its merged picture; "
                                         r"in Photoshop, turn on .*Maximize PSD and PSB File Compatibility and save it "
                                         r"again, or export it as PNG\.$"):
        kept_bytes((PHOTOS / "no-composite.psd").read_bytes(), "The drawing")  # its stand-in is not taken
    data = bytearray((PHOTOS / "16bit5x5.psd").read_bytes())
    with pytest.raises(InputError, match="^The drawing is a Photoshop file that cannot be decoded; it may be damaged "
                                         "or cut short"):
        kept_bytes(bytes(data[:-200]), "The drawing")  # an interrupted copy
    data[22:24] = struct.pack(">H", 24)
    with pytest.raises(InputError, match=r"is a Photoshop file of a kind the app does not know \(version 1, 24 bits\), "
                                         "which the app cannot read"):
        check_image_bytes(bytes(data), "The drawing")


@pytest.mark.parametrize("start, words", [
    (b"CSFCHUNK\0\0\0\0", "is a Clip Studio Paint file (.clip), which the app cannot read; in Clip Studio Paint"),
    (b"PDN3", "is a Paint.NET file (.pdn), which the app cannot read; in Paint.NET choose File ▸ Save As…"),
])
def test_other_painting_programs_files_say_how_their_program_saves_a_picture(start, words):
    with pytest.raises(InputError, match="^The sketch " + re.escape(words)):
        kept_bytes(start + bytes(200), "The sketch")


def test_a_procreate_file_says_how_procreate_shares_a_png(tmp_path):
    """Procreate's file (an iPad's, sent to a computer) is a zip of its own archive and tiles."""
    path = tmp_path / "Untitled Artwork.procreate"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Document.archive", b"bplist00" + bytes(64))
        archive.writestr("QuickLook/Thumbnail.png", png(Image.new("RGB", (8, 8))))
    with pytest.raises(InputError, match=r"^The sketch is a Procreate file \(\.procreate\), which the app cannot "
                                         r"read; in Procreate choose Share ▸ PNG"):
        kept_bytes(path.read_bytes(), "The sketch")


def test_a_krita_file_comes_in_as_its_merged_picture(tmp_path):
    drawn = sketch((96, 64))
    path = krita_file(tmp_path / "sketch.kra", drawn)
    store = InputImages(tmp_path / "inputs")
    digest = store.add_file(path)
    kept = store.find(digest)
    assert kept.suffix == ".png" and hashlib.sha256(kept.read_bytes()).hexdigest() == digest
    with Image.open(kept) as picture:
        assert picture.size == (96, 64)  # the picture, not its 32-pixel preview
        assert np.array_equal(np.asarray(picture.convert("RGB")), np.asarray(drawn))

    old = krita_file(tmp_path / "old.kra", None)
    with pytest.raises(InputError, match=r"^The sketch is a Krita file saved without its merged picture "
                                         r"\(mergedimage.png\); open it in Krita and save it again, or export it "
                                         r"as PNG\.$"):
        store.add(old.read_bytes(), "The sketch")


def _stack(*children: str, w: int = 64, h: int = 48) -> bytes:
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n<image w=\"{w}\" h=\"{h}\" version=\"0.0.5\">"
            f"<stack composite-op=\"svg:src-over\" opacity=\"1.0\" name=\"root\">{''.join(children)}</stack>"
            "</image>").encode()


def test_an_openraster_file_without_a_merged_picture_is_put_together_from_its_layers(tmp_path):
    """As MyPaint wrote them before 1.2: each visible layer over those below at its place and opacity (a group's
    opacity on the group as a whole), the background kept as a tile and repeated."""
    layers = {"data/hidden.png": png(Image.new("RGBA", (64, 48), (0, 0, 0, 255))),
              "data/red.png": png(Image.new("RGBA", (16, 16), (255, 0, 0, 255))),
              "data/red2.png": png(Image.new("RGBA", (16, 16), (255, 0, 0, 255))),
              "data/blue.png": png(Image.new("RGBA", (20, 10), (0, 0, 255, 255))),
              "data/background_tile.png": png(Image.new("RGBA", (8, 8), (255, 255, 255, 255)))}
    layers["stack.xml"] = _stack(
        '<layer src="data/hidden.png" visibility="hidden" x="0" y="0" opacity="1.0"/>',  # the top one, not shown
        '<stack opacity="0.5" name="group"><layer src="data/red.png" x="-8" y="-8" opacity="1.0"/>'  # off the top left
        '<layer src="data/red2.png" x="-8" y="-8" opacity="1.0"/></stack>',  # two in the group: still half
        '<layer src="data/blue.png" x="50" y="40" opacity="1.0"/>',  # past the bottom right
        '<layer src="data/background_tile.png" name="background" background_tile="data/background_tile.png" '
        'x="0" y="0"/>')
    path = painting(tmp_path / "old.ora", "image/openraster", layers)
    kept, extension = kept_bytes(path.read_bytes(), "The sketch")
    pixels = np.asarray(Image.open(io.BytesIO(kept)).convert("RGBA"), np.int16)
    assert extension == "png" and pixels.shape == (48, 64, 4)
    assert np.abs(pixels[2, 2] - (255, 127, 127, 255)).max() <= 1  # the group's red at half over white
    assert (pixels[0:8, 0:8] == pixels[2, 2]).all() and (pixels[8:, 8:50] == 255).all()  # its corner; white paper
    assert (pixels[40:, 50:] == (0, 0, 255, 255)).all()  # the blue, cut at the edges
    assert (pixels[:, :, 3] == 255).all()


def test_an_openraster_merged_picture_is_read_as_its_program_showed_it(tmp_path):
    """The merged picture wins over the layers (blending modes are the program's); one not of the file's size (a
    stand-in) is passed over for the layers."""
    merged = sketch((64, 48))
    layers = {"stack.xml": _stack('<layer src="data/red.png" x="0" y="0"/>'),
              "data/red.png": png(Image.new("RGBA", (64, 48), (255, 0, 0, 255)))}
    path = painting(tmp_path / "new.ora", "image/openraster", {**layers, "mergedimage.png": png(merged)})
    kept = Image.open(io.BytesIO(kept_bytes(path.read_bytes())[0]))
    assert np.array_equal(np.asarray(kept.convert("RGB")), np.asarray(merged))
    stand_in = painting(tmp_path / "stand-in.ora", "image/openraster",
                        {**layers, "mergedimage.png": png(Image.new("RGB", (8, 8), "green"))})
    kept = Image.open(io.BytesIO(kept_bytes(stand_in.read_bytes())[0]))
    assert kept.size == (64, 48) and kept.convert("RGB").getpixel((30, 30)) == (255, 0, 0)


def test_openraster_files_made_to_cost_time_or_memory_are_bounded(tmp_path):
    """A background tile of one pixel repeated over a large canvas is a few pastes, not millions; groups nested past
    32 deep (each its own canvas) are refused; junk numbers are taken as their defaults."""
    import time

    dot = {"data/dot.png": png(Image.new("RGBA", (1, 1), (10, 20, 30, 255)))}
    tiled = painting(tmp_path / "tiled.ora", "image/openraster", {
        "stack.xml": _stack('<layer src="data/dot.png" background_tile="data/dot.png" opacity="nan" x="inf"/>',
                            w=4000, h=3000), **dot})
    started = time.perf_counter()
    picture = Image.open(io.BytesIO(kept_bytes(tiled.read_bytes())[0]))
    assert time.perf_counter() - started < 10 and picture.size == (4000, 3000)
    assert picture.getpixel((3999, 2999)) == (10, 20, 30, 255)  # tiled to the far corner, at full opacity
    nested = '<layer src="data/dot.png"/>'
    for _ in range(40):
        nested = f"<stack>{nested}</stack>"
    deep = painting(tmp_path / "deep.ora", "image/openraster", {"stack.xml": _stack(nested, w=8, h=8), **dot})
    with pytest.raises(InputError, match="cannot be decoded"):
        kept_bytes(deep.read_bytes(), "The sketch")


def test_other_zip_files_and_damaged_paintings_are_refused(tmp_path):
    plain = tmp_path / "models.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("model.safetensors", b"weights")
    with pytest.raises(InputError, match="^The file cannot be read as an image"):
        kept_bytes(plain.read_bytes(), "The file")
    assert not is_converted(plain.read_bytes())
    whole = krita_file(tmp_path / "cut.kra", sketch()).read_bytes()
    with pytest.raises(InputError, match="cannot be read as an image|cannot be decoded"):
        kept_bytes(whole[: len(whole) // 2], "The sketch")  # cut short, as an interrupted copy leaves it
    bomb = painting(tmp_path / "bomb.ora", "image/openraster", {"stack.xml": _stack(w=100_000, h=100_000)})
    with pytest.raises(InputError, match="^The sketch has more pixels than an input can have"):
        kept_bytes(bomb.read_bytes(), "The sketch")  # refused before anything of that size is made
    wide = painting(tmp_path / "wide.ora", "image/openraster", {"stack.xml": _stack(w=9000, h=100)})
    with pytest.raises(InputError, match="^The sketch is 9000 × 100 pixels; a painting program's file can be at "
                                         "most 8192"):
        kept_bytes(wide.read_bytes(), "The sketch")


def test_a_picture_batch_starts_from_photoshop_krita_openraster_and_gimp_files(tiny_sd15, hyper_lora, tmp_path,
                                                                                app_home):
    """A folder of an artist's files, as A1111's img2img batch takes a folder of PNGs: one image from each, at its
    picture's size, its request naming the PNG of the picture."""
    folder = tmp_path / "sketches"
    folder.mkdir()
    (folder / "a photoshop.psd").write_bytes((PHOTOS / "hopper.psd").read_bytes())
    krita_file(folder / "b krita.kra", sketch((64, 96)))
    painting(folder / "c mypaint.ora", "image/openraster",
             {"stack.xml": _stack('<layer src="data/a.png" x="0" y="0"/>', w=96, h=64),
              "data/a.png": png(sketch((96, 64)).convert("RGBA"))})
    (folder / "d gimp.xcf").write_bytes((PHOTOS / "gimp" / "sketch-16bit-linear.xcf").read_bytes())
    out, job = tmp_path / "out", tmp_path / "job.txt"
    job.write_text("a castle\n")
    run = run_cli("batch", job, "--model", tiny_sd15, "--lora", hyper_lora("Hyper-SD15-1step-lora"),
                  "--steps", 1, "--pictures", folder, "--strength", 0.6, "--to", out, "--template", "{picture}")
    assert run.returncode == 0, run.stderr
    made = {path.stem: path for path in out.glob("*.png")}
    assert sorted(made) == ["a photoshop", "b krita", "c mypaint", "d gimp"]
    sizes = {"a photoshop": (128, 128), "b krita": (64, 96), "c mypaint": (96, 64), "d gimp": (96, 64)}
    inputs = InputImages(AppPaths.default().inputs)
    for stem, path in made.items():
        with Image.open(path) as image:
            assert image.size == sizes[stem]  # the picture's own
        request = read_request(path)
        source = next(folder.glob(f"{stem}.*"))
        assert request["init_image"] == hashlib.sha256(kept_bytes(source.read_bytes())[0]).hexdigest()
        assert inputs.find(request["init_image"]).suffix == ".png" and request["strength"] == 0.6
