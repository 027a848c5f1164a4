"""The tiles a repaint larger than the model's size is made in, as the Ultimate SD Upscale extension makes it
(torch-free; the worker's service runs them, worker/service.py).

A picture of W × H is cut into the fewest columns and rows of at most `tile` pixels, as even as multiples of 8
allow (a 1920-wide picture in tiles of 1024 is two columns of 960, not 1024 and a sliver of 896). Each tile is
inpainted on its own into the picture the tile before it left, only the masked area: the tile and `TILE_PADDING`
pixels around it (and the reach of its mask's blur), made at its own pixels. With tiles of the model's own size,
every tile is made at about the size the model was trained at, and the memory is one tile's whatever the picture's
size. The tile's mask is blurred `TILE_MASK_BLUR` pixels, so it blends into its neighbours where they meet. Tiles
go left to right, then top to bottom, each with the image's seed.

Where tiles meet, a seam may show: each was made on its own. A seams fix (`SeamsFix`, the extension's) then
repaints the seams' areas one by one, as the extension does, each through a mask that is white on the seam and fades
to black away from it, so the repaint blends into both tiles:

- band pass: a band `width` pixels across each seam between two columns, the picture's whole height, then each
  seam between two rows, its whole width (its fading is its edge: no blur);
- half tile: a tile's size centred on each seam, from the middle of one tile to the middle of the next (the seams
  between rows first, then those between columns);
- half tile + intersections: those, then a round mask on each point where four tiles meet, from the middle of each
  to the middle of the next (no padding).

Each is made at its own pixels, at the seams fix's strength, with the image's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def tile_edges(length: int, tile: int) -> list[int]:
    """Where the tiles along a side of `length` pixels begin and end: the fewest of at most `tile` pixels, their
    edges on multiples of 8 (the last at `length`)."""
    count = math.ceil(length / tile)
    return [min(length, round(length * n / count / 8) * 8) for n in range(count)] + [length]


def tile_boxes(size: tuple[int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """The tiles (left, top, right, bottom) a picture of `size` is repainted in, row by row."""
    xs, ys = tile_edges(size[0], tile), tile_edges(size[1], tile)
    return [(left, top, right, bottom) for top, bottom in zip(ys, ys[1:]) for left, right in zip(xs, xs[1:])]


@dataclass(frozen=True)
class Patch:
    """One inpainting of a repaint in tiles: the area `box` (left, top, right, bottom; it may reach past the picture,
    which cuts it) painted by a mask of `shape` — "tile" (all of it), or a seams fix's: "across" (white down the
    middle of the box, fading to its left and right edges: a seam between columns), "down" (between rows) or
    "round" (white at its centre, fading to the circle in the box: where four tiles meet) — made with `padding`
    pixels around it and the mask blurred `blur` pixels."""

    box: tuple[int, int, int, int]
    shape: str
    padding: int
    blur: int

    def mask(self, size: tuple[int, int]):
        """The mask (PIL, L) of a picture of `size` that paints this patch."""
        return patch_mask(size, self.box, self.shape)

    def run_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size it is made at in a picture of `size` (`inputs.masked_size` of its mask, at its own pixels): read
        from the box's neighbourhood, as far as the blur and padding can reach, rather than from a mask of the whole
        picture blurred once more for each patch (a 4096² mask takes about 0.4 s to blur on a CPU; the engine blurs
        it once, when it runs the patch)."""
        from hypersd_desktop.engine.inputs import masked_size

        reach = 4 * self.blur + self.padding  # past the blur's reach (about twice its radius) and the padding
        box = self.box
        left, top = max(0, box[0] - reach), max(0, box[1] - reach)
        right, bottom = min(size[0], box[2] + reach), min(size[1], box[3] + reach)
        near = patch_mask((right - left, bottom - top), (box[0] - left, box[1] - top, box[2] - left, box[3] - top),
                          self.shape)
        return masked_size(near, self.blur, self.padding)


def tiles(size: tuple[int, int], tile: int, padding: int, blur: int) -> list[Patch]:
    """The tiles (`tile_boxes`) of a picture of `size`, each inpainted with `padding` and `blur`."""
    return [Patch(box, "tile", padding, blur) for box in tile_boxes(size, tile)]


def seams(size: tuple[int, int], tile: int, fix) -> list[Patch]:
    """The repaints of the seams fix `fix` (a `SeamsFix`) of a picture of `size` repainted in tiles of `tile`, in
    the order they run; none where it is one tile."""
    from hypersd_desktop.core.vocab import SeamFix

    xs, ys = tile_edges(size[0], tile), tile_edges(size[1], tile)
    if fix.mode == SeamFix.BAND:
        half = fix.width // 2
        return ([Patch((x - half, 0, x - half + fix.width, size[1]), "across", fix.padding, 0) for x in xs[1:-1]]
                + [Patch((0, y - half, size[0], y - half + fix.width), "down", fix.padding, 0) for y in ys[1:-1]])
    mx, my = _middles(xs), _middles(ys)  # the middle of each column (row)
    made = [Patch((left, top, right, bottom), "down", fix.padding, fix.mask_blur)
            for top, bottom in zip(my, my[1:]) for left, right in zip(xs, xs[1:])]
    made += [Patch((left, top, right, bottom), "across", fix.padding, fix.mask_blur)
             for top, bottom in zip(ys, ys[1:]) for left, right in zip(mx, mx[1:])]
    if fix.mode == SeamFix.HALF_TILE_CORNERS:
        made += [Patch((left, top, right, bottom), "round", 0, fix.mask_blur)
                 for top, bottom in zip(my, my[1:]) for left, right in zip(mx, mx[1:])]
    return made


def _middles(edges: list[int]) -> list[int]:
    return [(start + end) // 2 for start, end in zip(edges, edges[1:])]


def patch_mask(size: tuple[int, int], box: tuple[int, int, int, int], shape: str):
    """A mask of `size` (PIL, L) painting `box` by `shape` (`Patch`): a tile all 255; a seam 255 on the seam,
    falling evenly to 0 at the box's edges; 0 outside the box."""
    import numpy as np
    from PIL import Image

    width, height = box[2] - box[0], box[3] - box[1]
    across = 1 - np.abs((np.arange(width) + 0.5) / width * 2 - 1)  # 0 at the edges, 1 in the middle
    down = 1 - np.abs((np.arange(height) + 0.5) / height * 2 - 1)
    if shape == "tile":
        values = np.ones((height, width))
    elif shape == "across":
        values = np.broadcast_to(across[None, :], (height, width))
    elif shape == "down":
        values = np.broadcast_to(down[:, None], (height, width))
    else:  # the distance from the centre, 1 at the circle (ellipse) the box holds
        values = np.clip(1 - np.hypot(*np.meshgrid(1 - across, 1 - down)), 0, 1)
    painted = Image.fromarray(np.round(values * 255).astype(np.uint8))
    mask = Image.new("L", size, 0)
    mask.paste(painted, box[:2])  # cut where it reaches past the picture
    return mask
