"""The tiles a repaint larger than the model's size is made in, as the Ultimate SD Upscale extension makes it
(torch-free; the worker's service runs them, worker/service.py).

A picture of W × H is cut into the fewest columns and rows of at most `tile` pixels, as even as multiples of 8
allow (a 1920-wide picture in tiles of 1024 is two columns of 960, not 1024 and a sliver of 896). Each tile is
inpainted on its own into the picture the tile before it left, only the masked area: the tile and `TILE_PADDING`
pixels around it (and the reach of its mask's blur), made at its own pixels. With tiles of the model's own size,
every tile is made at about the size the model was trained at, and the memory is one tile's whatever the picture's
size. The tile's mask is blurred `TILE_MASK_BLUR` pixels, so it blends into its neighbours where they meet. Tiles
go left to right, then top to bottom, each with the image's seed.
"""

from __future__ import annotations

import math


def tile_edges(length: int, tile: int) -> list[int]:
    """Where the tiles along a side of `length` pixels begin and end: the fewest of at most `tile` pixels, their
    edges on multiples of 8 (the last at `length`)."""
    count = math.ceil(length / tile)
    return [min(length, round(length * n / count / 8) * 8) for n in range(count)] + [length]


def tile_boxes(size: tuple[int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """The tiles (left, top, right, bottom) a picture of `size` is repainted in, row by row."""
    xs, ys = tile_edges(size[0], tile), tile_edges(size[1], tile)
    return [(left, top, right, bottom) for top, bottom in zip(ys, ys[1:]) for left, right in zip(xs, xs[1:])]


def tile_run_size(size: tuple[int, int], box: tuple[int, int, int, int], blur: int, padding: int) -> tuple[int, int]:
    """The size a tile is made at (`inputs.masked_size` of its mask): read from the tile's neighbourhood, as far as
    its blur and padding can reach, rather than from a mask of the whole picture blurred once more for each tile
    (a 4096² mask takes about 0.4 s to blur on a CPU; the engine blurs it once, when it runs the tile)."""
    from hypersd_desktop.engine.inputs import masked_size

    reach = 4 * blur + padding  # past the blur's reach (about twice its radius) and the padding beyond it
    left, top = max(0, box[0] - reach), max(0, box[1] - reach)
    right, bottom = min(size[0], box[2] + reach), min(size[1], box[3] + reach)
    near = tile_mask((right - left, bottom - top), (box[0] - left, box[1] - top, box[2] - left, box[3] - top))
    return masked_size(near, blur, padding)


def tile_mask(size: tuple[int, int], box: tuple[int, int, int, int]):
    """A mask of `size` (PIL, L) painting the tile `box` (white: repainted)."""
    from PIL import Image

    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask
