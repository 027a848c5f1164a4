"""Where the faces and hands in an image are, for a detail pass (`DetailPass`, ADetailer's pass): read off the body
keypoints the pose models give each person (engine/pose.py: the person detector's boxes, then ViTPose's 17 COCO
keypoints). ADetailer finds them with YOLO detectors that are pickles; the pose models are safetensors the app
already offers.

A face is where a person's nose and eyes are seen (two of the three at least, each scored `confidence` or more).
Its width is the largest of the widths its points' distances give (turning the head shortens them, so the
largest is the truest): 2.2 eye-to-eye distances, 2.7 eye-to-nose, the distance between the ears, 1.4 nose to
ear or 2 eye to ear (a profile), from the proportions of an adult face (eyes 63 mm apart in a face 140 mm wide).
The box is 1.15 of that wide and 1.5 tall (forehead to chin), its eyes 42 % of the way down: down being the way
from the eyes to the nose, so that a face upside down or on its side is boxed so too.

A hand is where a person's wrist and elbow are seen, boxed as OpenPose boxes a hand from the body's keypoints
before it reads the hand's own (Simon et al., "Hand Keypoint Detection in Single Images using Multiview
Bootstrapping", 2017): a square centred a third of a forearm beyond the wrist (the hand goes on the way the forearm
points), 1.5 times the longer of the forearm and 0.9 of the upper arm wide (the upper arm where the shoulder is
seen: a forearm pointing at the viewer looks short, the hand does not), so a hand bent at the wrist stays in it.
Where the elbow is out of sight (a hand raised in a portrait that ends at the chest) but the face is seen, the box
is centred on the wrist and measured by the face: a hand is about 1.35 face widths long (190 mm to 140 mm), and it
may point any way from the wrist, so the square is twice that. Numpy and PIL only: the pass runs in the compute
runtime, which has no OpenCV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = range(5)  # COCO's first five keypoints
# COCO's arms: (shoulder, elbow, wrist) of the person's left and right
ARMS = ((5, 7, 9), (6, 8, 10))
# the face's width, in distances between two of its points
WIDTH_OF = {(LEFT_EYE, RIGHT_EYE): 2.2, (NOSE, LEFT_EYE): 2.7, (NOSE, RIGHT_EYE): 2.7, (LEFT_EAR, RIGHT_EAR): 1.0,
            (NOSE, LEFT_EAR): 1.4, (NOSE, RIGHT_EAR): 1.4, (LEFT_EYE, LEFT_EAR): 2.0, (RIGHT_EYE, RIGHT_EAR): 2.0}
BOX_WIDTH = 1.15  # the box around a face, in face widths
BOX_HEIGHT = 1.5
EYES_DOWN = 0.42  # how far down the box the eyes are
SAME_PART = 0.5  # two boxes that overlap this much (intersection over union) are one face (or hand) found twice
BEYOND_WRIST = 0.33  # a hand's middle, in forearms beyond its wrist
HAND_SIDE = 1.5  # its box's side, in the longer of the forearm and 0.9 of the upper arm
UPPER_ARM = 0.9
HAND_BY_FACE = 2 * 1.35  # without the elbow: the box's side, in face widths, centred on the wrist


@dataclass(frozen=True)
class PartBox:
    """A face's or hand's box in pixels of the image (left, top, right, bottom; clipped to it) and how sure the pose
    model is of it (the lowest score of the points it was read from: a face's nose and eyes seen, a hand's wrist and
    elbow)."""

    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def area(self) -> int:
        return (self.right - self.left) * (self.bottom - self.top)

    def overlap(self, other: PartBox) -> float:
        """Intersection over union."""
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.bottom, other.bottom) - max(self.top, other.top)
        shared = max(0, width) * max(0, height)
        return shared / (self.area + other.area - shared) if shared else 0.0


def face_box(keypoints: np.ndarray, size: tuple[int, int], confidence: float) -> PartBox | None:
    """One person's face (rows of x, y, score: COCO's keypoints) in an image of `size`; None where fewer than two of
    its nose and eyes are seen with `confidence`, or the box falls outside the image."""
    seen = {index: keypoints[index, :2].astype(float) for index in range(5) if keypoints[index, 2] >= confidence}
    central = [index for index in (NOSE, LEFT_EYE, RIGHT_EYE) if index in seen]
    if len(central) < 2:
        return None
    width = _face_width(seen)
    if width <= 0:
        return None
    centre = np.mean(list(seen.values()), axis=0)
    eyes = np.mean([seen[index] for index in (LEFT_EYE, RIGHT_EYE) if index in seen], axis=0)
    down = _down(seen)  # the face's chin-ward side: the box's long side lies along it, the eyes 42 % of the way
    along, across = BOX_HEIGHT * width, BOX_WIDTH * width
    axis = 0 if abs(down[0]) > abs(down[1]) else 1  # a face lying on its side is boxed lying too
    start = eyes[axis] - EYES_DOWN * along if down[axis] >= 0 else eyes[axis] + EYES_DOWN * along - along
    corners = [0.0, 0.0, 0.0, 0.0]  # left, top, right, bottom
    corners[axis], corners[axis + 2] = start, start + along
    corners[1 - axis], corners[3 - axis] = centre[1 - axis] - across / 2, centre[1 - axis] + across / 2
    return _clipped(corners, size, float(min(keypoints[index, 2] for index in central)))


def _face_width(seen: dict[int, np.ndarray]) -> float:
    """A face's width from the head's points `seen` (by index): the largest its points' distances give; 0 where
    fewer than two are seen."""
    return max((factor * float(np.linalg.norm(seen[a] - seen[b]))
                for (a, b), factor in WIDTH_OF.items() if a in seen and b in seen), default=0.0)


def _clipped(corners, size: tuple[int, int], score: float) -> PartBox | None:
    """The box of `corners` (left, top, right, bottom) within an image of `size`; None where none of it is in it."""
    left, top, right, bottom = (round(value) for value in corners)
    image_width, image_height = size
    left, top, right, bottom = max(0, left), max(0, top), min(image_width, right), min(image_height, bottom)
    if right <= left or bottom <= top:
        return None
    return PartBox(left, top, right, bottom, score)


def _down(seen: dict[int, np.ndarray]) -> np.ndarray:
    """Which way the face's chin lies: from between the eyes towards the nose where all three are seen (a face
    upright, upside down or on its side), else down the image."""
    if all(index in seen for index in (NOSE, LEFT_EYE, RIGHT_EYE)):
        towards = seen[NOSE] - (seen[LEFT_EYE] + seen[RIGHT_EYE]) / 2
        if np.linalg.norm(towards) > 0:
            return towards
    return np.array([0.0, 1.0])


def face_boxes(people: list[np.ndarray], size: tuple[int, int], confidence: float) -> list[PartBox]:
    """The faces of `people` (each one's COCO keypoints) in an image of `size`, left to right; a face found twice
    (two boxes of one person) is kept once, its surer box."""
    return _distinct(face_box(person, size, confidence) for person in people)


def hand_box(keypoints: np.ndarray, arm: tuple[int, int, int], size: tuple[int, int],
             confidence: float) -> PartBox | None:
    """The hand at the end of one of a person's `arm`s (`ARMS`: its shoulder, elbow and wrist keypoints) in an image
    of `size`; None where its wrist is not seen with `confidence`, nor its elbow or two of the head's points, or the
    box falls outside the image."""
    shoulder, elbow, wrist = arm
    if keypoints[wrist, 2] < confidence:
        return None
    at_wrist, at_elbow = keypoints[wrist, :2].astype(float), keypoints[elbow, :2].astype(float)
    if keypoints[elbow, 2] < confidence:  # measured by the face, centred on the wrist
        head = [index for index in range(5) if keypoints[index, 2] >= confidence]
        side = HAND_BY_FACE * _face_width({index: keypoints[index, :2].astype(float) for index in head})
        if side <= 0:
            return None
        corners = (at_wrist[0] - side / 2, at_wrist[1] - side / 2, at_wrist[0] + side / 2, at_wrist[1] + side / 2)
        return _clipped(corners, size, float(min(keypoints[[wrist, *head], 2])))
    forearm = float(np.linalg.norm(at_wrist - at_elbow))
    upper = float(np.linalg.norm(at_elbow - keypoints[shoulder, :2])) if keypoints[shoulder, 2] >= confidence else 0.0
    side = HAND_SIDE * max(forearm, UPPER_ARM * upper)
    if side <= 0:
        return None
    centre = at_wrist + BEYOND_WRIST * (at_wrist - at_elbow)
    corners = (centre[0] - side / 2, centre[1] - side / 2, centre[0] + side / 2, centre[1] + side / 2)
    return _clipped(corners, size, float(min(keypoints[wrist, 2], keypoints[elbow, 2])))


def hand_boxes(people: list[np.ndarray], size: tuple[int, int], confidence: float) -> list[PartBox]:
    """The hands of `people` (each one's COCO keypoints) in an image of `size`, left to right; two hands boxed as
    one (held together, or one hand of two people's boxes) are kept once, the surer box."""
    return _distinct(hand_box(person, arm, size, confidence) for person in people for arm in ARMS)


def part_boxes(part: str, people: list[np.ndarray], size: tuple[int, int], confidence: float) -> list[PartBox]:
    """The faces (`part` "face") or hands ("hand") of `people`."""
    return {"face": face_boxes, "hand": hand_boxes}[part](people, size, confidence)


def _distinct(found) -> list[PartBox]:
    """The boxes `found` (None: none), left to right, those of one part found twice kept once (the surer)."""
    kept: list[PartBox] = []
    for box in sorted((box for box in found if box is not None), key=lambda box: -box.score):
        if all(box.overlap(other) < SAME_PART for other in kept):
            kept.append(box)
    return sorted(kept, key=lambda box: (box.left, box.top))


def part_mask(size: tuple[int, int], box: PartBox):
    """The mask (PIL, grayscale, `size`) a face or hand is repainted through: the ellipse that fills its box, white
    on black."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((box.left, box.top, box.right - 1, box.bottom - 1), fill=255)
    return mask


def within_ratio(boxes: list[PartBox], size: tuple[int, int], low: float, high: float) -> list[PartBox]:
    """The boxes whose area is `low` to `high` of the image's (ADetailer's "mask min / max area ratio")."""
    whole = size[0] * size[1]
    return [box for box in boxes if low <= box.area / whole <= high]


def shaped_masks(masks: list, dilate_erode: int = 0, x_offset: int = 0, y_offset: int = 0, merge: str = "none"
                 ) -> list:
    """The masks (PIL, grayscale) shaped as ADetailer shapes them before it inpaints (its `mask_preprocess`): moved
    `x_offset` pixels right and `y_offset` up, wrapping round the image's edges (PIL's `ImageChops.offset`, which
    it uses); grown by a square `dilate_erode` pixels across (OpenCV's dilation, as it runs it), or shrunk by one
    `-dilate_erode` across (erosion; the image's edge does not eat into a mask); one left empty dropped; then, for
    `merge` "merge", all of them as one, and for "merge and invert", all the rest of the image as one."""
    from PIL import Image

    arrays = [np.asarray(mask.convert("L")) for mask in masks]
    if x_offset or y_offset:
        arrays = [np.roll(array, (-y_offset, x_offset), axis=(0, 1)) for array in arrays]
    if dilate_erode:
        arrays = [square_morph(array, dilate_erode) for array in arrays]
        arrays = [array for array in arrays if array.any()]
    if merge != "none" and arrays:
        union = np.maximum.reduce(arrays)
        arrays = [union if merge == "merge" else 255 - union]
    return [Image.fromarray(np.ascontiguousarray(array), mode="L") for array in arrays]


def square_morph(array: np.ndarray, size: int) -> np.ndarray:
    """An 8-bit image (2-D) dilated by a square `size` pixels across, or eroded by one `-size` across, as OpenCV's
    `dilate` (`erode`) with `getStructuringElement(MORPH_RECT, (size, size))` makes it: each pixel the largest
    (smallest) of the square centred on it (for an even size, the pixel right of and below the middle is its
    centre); what lies past the image's edge counts for nothing. A square is a row, then a column."""
    extreme, outside = (np.maximum, 0) if size > 0 else (np.minimum, 255)
    size = abs(size)
    rows = _running(extreme, np.pad(array, ((0, 0), (size // 2, size - 1 - size // 2)), constant_values=outside), size)
    both = _running(extreme, np.pad(rows.T, ((0, 0), (size // 2, size - 1 - size // 2)), constant_values=outside),
                    size)
    return np.ascontiguousarray(both.T)


def _running(extreme, padded: np.ndarray, size: int) -> np.ndarray:
    """Along each row of `padded`, the extreme of each `size` pixels, one a pixel, in as many steps as `size` has
    bits: each step doubles the window, and two windows that overlap make up the rest."""
    span = 1
    while span * 2 <= size:
        padded = extreme(padded[:, :-span], padded[:, span:])
        span *= 2
    rest = size - span
    return extreme(padded[:, :padded.shape[1] - rest], padded[:, rest:]) if rest else padded


def pass_prompt(text: str, own: str, number: int) -> str | None:
    """The prompt a detail pass's `text` gives the face (hand) `number` (from 0, left to right), as ADetailer reads
    its prompts: split at `[SEP]`, that one's part (the last part for those past it); an empty part is the image's
    prompt `own`, and `[PROMPT]` in a part stands for it. None where the part is `[SKIP]`: that one is left as it
    is."""
    parts = re.split(r"\s*\[SEP\]\s*", text)
    chosen = parts[min(number, len(parts) - 1)].strip()
    if chosen == "[SKIP]":
        return None
    return chosen.replace("[PROMPT]", own) if chosen else own
