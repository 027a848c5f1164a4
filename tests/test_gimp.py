"""GIMP's own files (.xcf) as pictures. Files GIMP saved (tests/photos/gimp: made with GIMP 2.10.34 by its make.scm
in each precision, grey and indexed, with groups, masks and blending modes, and two GIMP 2.8 files from
gimp-export-layers' tests) come in as the picture GIMP shows, within 1/255 of GIMP's own picture of each. Files
written here (tests/pictures.xcf_file) for what GIMP's scripts cannot choose: raw and zlib tiles, 32-bit pointers,
floating selections, layers far past the canvas, damaged files."""

from __future__ import annotations

import io
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pictures import XcfLayer, xcf_file
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.images import PICTURE_SUFFIXES, is_converted, kept_bytes, read_formats

GIMP_FILES = Path(__file__).parent / "photos" / "gimp"


def picture(data: bytes, what: str = "The sketch") -> np.ndarray:
    kept, extension = kept_bytes(data, what)
    assert extension == "png"
    with Image.open(io.BytesIO(kept)) as made:
        assert made.format == "PNG"
        return np.asarray(made.convert("LA" if made.mode == "LA" else "RGBA"), np.int16)


@pytest.mark.parametrize("path", sorted(GIMP_FILES.glob("*.xcf")), ids=lambda path: path.stem)
def test_a_gimp_file_comes_in_as_gimp_shows_it(path):
    data = path.read_bytes()
    assert is_converted(data) and "XCF" in read_formats() and ".xcf" in PICTURE_SUFFIXES
    made = picture(data)
    with Image.open(GIMP_FILES / f"{path.stem}.gimp.png") as shown:
        gimp = np.asarray(shown.convert("LA" if made.shape[2] == 2 else "RGBA"), np.int16)
    assert made.shape == gimp.shape
    assert np.abs(made[..., -1] - gimp[..., -1]).max() <= 1  # the transparency
    seen = (made[..., -1] > 0) & (gimp[..., -1] > 0)
    colours = np.abs(made[..., :-1] - gimp[..., :-1])[seen]  # where there are any
    # within 1/255, but for a pixel or two where a mode divides by about 0 (Vivid light, legacy Divide)
    assert (colours > 1).sum() <= 2 and colours.max() <= 4


def square(size, colour, where=None) -> np.ndarray:
    """RGBA pixels: transparent, with `colour` over `where` (left, top, right, bottom), or everywhere."""
    pixels = np.zeros((size[1], size[0], 4), np.uint8)
    left, top, right, bottom = where or (0, 0, *size)
    pixels[top:bottom, left:right] = colour
    return pixels


def layered(tmp_path: Path, compression: int = 1, version: int = 11, mode: int = 28) -> Path:
    """A 100 × 80 sketch: a hidden black layer on top; a group at half opacity holding a red square and a green one
    whose mask hides its right half; a blue layer reaching past the bottom right; white paper without alpha."""
    paper = np.full((80, 100, 3), 255, np.uint8)
    mask = np.zeros((20, 20), np.uint8)
    mask[:, :10] = 255
    group = XcfLayer(opacity=0.5, mode=mode, size=(100, 80), children=[
        XcfLayer(square((20, 20), (0, 255, 0, 255)), place=(40, 10), mask=mask, mode=mode),
        XcfLayer(square((30, 30), (255, 0, 0, 255)), place=(-10, -10), mode=mode)])
    layers = [XcfLayer(square((100, 80), (0, 0, 0, 255)), visible=False), group,
              XcfLayer(square((40, 40), (0, 0, 255, 255)), place=(80, 60), mode=mode), XcfLayer(paper, mode=mode)]
    return xcf_file(tmp_path / f"sketch-{compression}-{version}-{mode}.xcf", (100, 80), layers, compression, version)


def test_raw_run_length_and_zlib_tiles_and_both_pointer_sizes_read_alike(tmp_path):
    """GIMP writes run-length tiles, zlib ones when asked, and 64-bit pointers since XCF 11; older files have 32-bit
    pointers, and raw tiles are in the specification."""
    first = picture(layered(tmp_path).read_bytes())
    for compression in (0, 1, 2):
        for version in (0, 3, 11, 13):
            assert np.array_equal(picture(layered(tmp_path, compression, version).read_bytes()), first)
    assert (first[..., 3] == 255).all()  # on opaque paper
    assert (first[:60, 60:] == 255).all()  # white paper: the hidden black layer is not shown
    assert (first[60:, 80:] == (0, 0, 255, 255)).all()  # the blue, cut at the canvas's edges
    assert (first[30:60] == 255).all()  # nothing of the group below its squares


def test_layers_are_put_together_in_linear_light_or_gamma_encoded_as_their_modes_say(tmp_path):
    """Half a red square over white paper: GIMP 2.10's Normal puts them together in linear light (green and blue
    at 0.5 linear: 188), GIMP 2.8's ("legacy") gamma encoded (128), as GIMP shows each."""
    new, legacy = (picture(layered(tmp_path, mode=mode).read_bytes()) for mode in (28, 0))
    assert np.abs(new[5, 5] - (255, 188, 188, 255)).max() <= 1
    assert np.abs(legacy[5, 5] - (255, 128, 128, 255)).max() <= 1
    assert np.abs(new[15, 45] - (188, 255, 188, 255)).max() <= 1  # the green's left half, through its mask
    assert (new[15, 55] == 255).all()  # its right half hidden by the mask


def test_a_floating_selection_is_shown_above_the_layer_it_belongs_to(tmp_path):
    """GIMP keeps a floating selection (a paste not yet anchored) first in the file; it is shown just above its
    layer, under the layers above that. One belonging to a channel or mask is not a layer shown."""
    blue = XcfLayer(square((60, 40), (0, 0, 255, 255)), floating_to=2)
    top = XcfLayer(square((60, 40), (0, 255, 0, 255), (0, 0, 20, 40)))
    layers = [blue, top, XcfLayer(square((60, 40), (0, 0, 0, 0))), XcfLayer(np.full((40, 60, 3), 255, np.uint8))]
    shown = picture(xcf_file(tmp_path / "floating.xcf", (60, 40), layers).read_bytes())
    assert (shown[:, :20] == (0, 255, 0, 255)).all() and (shown[:, 20:] == (0, 0, 255, 255)).all()
    layers[0] = XcfLayer(square((60, 40), (0, 0, 255, 255)), floating_to=0)  # points at itself: at no layer
    shown = picture(xcf_file(tmp_path / "on-a-mask.xcf", (60, 40), layers).read_bytes())
    assert (shown[:, 20:] == 255).all()


def test_only_the_part_of_a_layer_over_the_canvas_is_decoded(tmp_path):
    """A 3000² layer (a pasted photo) moved over a 200² canvas: the tiles over the canvas are read, not all 2,209
    of them (as float32 the whole layer would be 137 MiB)."""
    pixels = np.zeros((3000, 3000, 4), np.uint8)
    pixels[..., 3] = 255
    pixels[:, :, 0] = np.arange(3000, dtype=np.uint16)[None, :] % 256
    path = xcf_file(tmp_path / "pasted.xcf", (200, 200), [XcfLayer(pixels, place=(-1400, -1400))], compression=2)
    data = path.read_bytes()
    tracemalloc.start()
    try:
        shown = picture(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 << 20, f"{peak / 2**20:.0f} MiB"
    assert (shown[0, :, 0] == np.arange(1400, 1600) % 256).all()  # the layer's columns 1400 to 1599


def test_damaged_and_unknown_gimp_files_say_what_to_do(tmp_path):
    whole = layered(tmp_path).read_bytes()
    message = ("^The sketch is a GIMP file that cannot be decoded; it may be damaged or cut short. Open it in GIMP "
               "and export it as PNG.$")
    for damaged in (whole[:len(whole) // 2], whole[:40], b"gimp xcf v011\0" + bytes(500)):
        with pytest.raises(InputError, match=message):
            kept_bytes(damaged, "The sketch")
    pointer_past_the_end = bytearray(whole)
    at = whole.index(struct.pack(">III", 100, 80, 1), 60)  # the hidden layer's hierarchy's size and bpp…
    struct.pack_into(">Q", pointer_past_the_end, at + 12, len(whole) + 10)  # …and its level
    with pytest.raises(InputError, match=message):
        kept_bytes(bytes(pointer_past_the_end), "The sketch")

    newer = bytearray(whole)
    newer[9:13], newer[26:30] = b"v031", struct.pack(">I", 999)  # a precision this GIMP did not have
    with pytest.raises(InputError, match=re.escape(
            "The sketch is a GIMP file saved by a newer GIMP (XCF version 31) than the app knows, which the app "
            "cannot read; in GIMP choose File ▸ Export As… and export it as PNG (")):
        kept_bytes(bytes(newer), "The sketch")
    newer[26:30] = struct.pack(">I", 150)  # one that reads: taken as it is
    assert picture(bytes(newer)).shape == (80, 100, 4)

    huge = bytearray(whole)
    huge[14:22] = struct.pack(">II", 100_000, 100_000)
    with pytest.raises(InputError, match="^The sketch has more pixels than an input can have"):
        kept_bytes(bytes(huge), "The sketch")  # refused before anything of that size is made
    huge[14:22] = struct.pack(">II", 9000, 100)
    with pytest.raises(InputError, match="^The sketch is 9000 × 100 pixels; a painting program's file can be at "
                                         "most 8192 pixels on a side"):
        kept_bytes(bytes(huge), "The sketch")  # its canvas: claimed by a few bytes, not scaled down as a photo is


def test_groups_nested_past_32_deep_are_refused(tmp_path):
    leaf = XcfLayer(square((8, 8), (255, 0, 0, 255)))
    for _ in range(40):
        leaf = XcfLayer(size=(8, 8), children=[leaf])
    path = xcf_file(tmp_path / "deep.xcf", (8, 8), [leaf])
    with pytest.raises(InputError, match="cannot be decoded"):
        kept_bytes(path.read_bytes(), "The sketch")


def test_a_dissolve_layer_is_dots_of_its_colour_as_often_as_it_is_opaque(tmp_path):
    """GIMP's Dissolve: a red layer at 40 % over white paper shows red dots on 40 % of the pixels and white on the
    rest, not pink; the same file gives the same dots."""
    layers = [XcfLayer(square((80, 80), (255, 0, 0, 255)), opacity=0.4, mode=1),
              XcfLayer(np.full((80, 80, 3), 255, np.uint8))]
    data = xcf_file(tmp_path / "dissolve.xcf", (80, 80), layers).read_bytes()
    shown = picture(data)
    red = (shown[..., :3] == (255, 0, 0)).all(axis=2)
    white = (shown[..., :3] == 255).all(axis=2)
    assert (red | white).all() and 0.35 < red.mean() < 0.45
    assert np.array_equal(picture(data), shown)
