"""Faces and hands read off body keypoints (engine/body_parts.py): the boxes a face or hand pass repaints. Keypoints
are COCO's (nose, left eye, right eye, left ear, right ear, then the shoulders, elbows and wrists, left before right,
and the legs), in pixels, as ViTPose gives them."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hypersd_desktop.engine.body_parts import (
    ARMS, PartBox, face_box, face_boxes, hand_box, hand_boxes, part_boxes, part_mask, pass_prompt, shaped_masks,
    square_morph, within_ratio,
)

SIZE = (640, 480)


def person(nose=None, left_eye=None, right_eye=None, left_ear=None, right_ear=None, score=0.9) -> np.ndarray:
    """17 keypoints, the five of the head where given (scored `score`), the body's unseen."""
    points = np.zeros((17, 3))
    for index, point in enumerate((nose, left_eye, right_eye, left_ear, right_ear)):
        if point is not None:
            points[index] = (*point, score)
    return points


def contains(box: PartBox, *points) -> bool:
    return all(box.left <= x <= box.right and box.top <= y <= box.bottom for x, y in points)


FRONT = dict(nose=(330, 232), right_eye=(300, 200), left_eye=(360, 200), right_ear=(265, 215), left_ear=(395, 215))


def test_a_face_seen_from_the_front_is_boxed_forehead_to_chin_and_ear_to_ear():
    box = face_box(person(**FRONT), SIZE, 0.3)
    # eyes 60 apart: a face 132 wide (2.2 of that; the ears' 130 and the nose's 2.7 × 44 give less)
    assert box.right - box.left == pytest.approx(1.15 * 132, abs=1)
    assert box.bottom - box.top == pytest.approx(1.5 * 132, abs=1)
    assert contains(box, *FRONT.values())
    assert (box.left + box.right) / 2 == pytest.approx(330, abs=1)  # about the face's middle
    assert 200 - box.top == pytest.approx(0.42 * (box.bottom - box.top), abs=1)  # the eyes 42 % down
    assert box.bottom - 232 > 40  # below the nose: the mouth and chin are in it
    assert box.score == pytest.approx(0.9)


def test_a_profile_is_measured_nose_to_ear():
    """A face turned aside: one eye and ear, and the nose; the eyes' distance would say little."""
    box = face_box(person(nose=(200, 300), left_eye=(222, 285), left_ear=(290, 295)), SIZE, 0.3)
    assert contains(box, (200, 300), (222, 285), (290, 295))
    # 1.4 nose-to-ear distances, or 2 eye-to-ear ones: the wider
    assert box.right - box.left == pytest.approx(1.15 * max(1.4 * np.hypot(90, 5), 2.0 * np.hypot(68, 10)), abs=1)
    assert box.left <= 200 - 10 and box.right >= 290  # the nose's tip and the ear with room around them


def test_turning_the_head_does_not_shrink_the_box():
    """Eyes foreshortened by a turned head (a three-quarter view, 30 apart) do not make the face smaller: the widest
    estimate counts, here the nose's 2.7 × its 50 to the far eye."""
    turned = face_box(person(nose=(330, 240), right_eye=(300, 200), left_eye=(330, 200), right_ear=(265, 215)),
                      SIZE, 0.3)
    assert turned.right - turned.left == pytest.approx(1.15 * 2.7 * 50, abs=1)


def test_a_face_on_its_side_or_upside_down_is_boxed_so():
    """Down is from the eyes to the nose: a face lying on its side (the front view turned a quarter, chin to the
    right) is boxed wide, its chin's side past the nose; upside down, the chin's side is above."""
    upright = face_box(person(**FRONT), SIZE, 0.3)
    turned = {key: (300 - (y - 200), 240 + (x - 330)) for key, (x, y) in FRONT.items()}  # chin towards -x
    side = face_box(person(**turned), SIZE, 0.3)
    assert side.right - side.left == upright.bottom - upright.top and side.bottom - side.top == upright.right - \
        upright.left
    assert contains(side, *turned.values()) and turned["nose"][0] - side.left > 40  # room for the mouth and chin
    flipped = {key: (x, 400 - y) for key, (x, y) in FRONT.items()}
    upside = face_box(person(**flipped), SIZE, 0.3)
    assert (upside.left, upside.right) == (upright.left, upright.right) and contains(upside, *flipped.values())
    assert flipped["nose"][1] - upside.top > 40 and upside.bottom - 200 == pytest.approx(0.42 * (upside.bottom -
                                                                                                 upside.top), abs=1)


def test_no_face_without_two_of_the_nose_and_eyes_seen():
    assert face_box(person(left_ear=(100, 100), right_ear=(160, 100)), SIZE, 0.3) is None  # seen from behind
    assert face_box(person(nose=(100, 100), left_ear=(160, 100)), SIZE, 0.3) is None
    assert face_box(person(**FRONT, score=0.2), SIZE, 0.3) is None  # not sure enough
    assert face_box(person(**FRONT, score=0.2), SIZE, 0.1) is not None


def test_a_face_at_the_edge_is_cut_to_the_image():
    box = face_box(person(nose=(10, 470), left_eye=(25, 455), right_eye=(0, 455)), SIZE, 0.3)
    assert box.left == 0 and box.bottom == 480 and box.top < 455


def test_faces_come_left_to_right_and_once_each():
    right = person(**{key: (x + 200, y) for key, (x, y) in FRONT.items()})
    left = person(**{key: (x - 250, y) for key, (x, y) in FRONT.items()})
    again = person(**{key: (x - 248, y + 3) for key, (x, y) in FRONT.items()}, score=0.5)  # found twice
    boxes = face_boxes([right, again, left], SIZE, 0.3)
    assert len(boxes) == 2 and boxes[0].left < boxes[1].left
    assert boxes[0] == face_box(left, SIZE, 0.3)  # the surer of the two
    assert face_boxes([], SIZE, 0.3) == []


def test_the_mask_is_the_ellipse_in_the_box():
    box = face_box(person(**FRONT), SIZE, 0.3)
    mask = np.asarray(part_mask(SIZE, box))
    assert mask.shape == (480, 640) and set(np.unique(mask)) == {0, 255}
    centre = ((box.top + box.bottom) // 2, (box.left + box.right) // 2)
    assert mask[centre] == 255 and mask[box.top + 1, box.left + 1] == 0  # the box's corners are not repainted
    inside = np.argwhere(mask)
    assert inside[:, 0].min() >= box.top and inside[:, 0].max() < box.bottom
    assert inside[:, 1].min() >= box.left and inside[:, 1].max() < box.right


LEFT_ARM, RIGHT_ARM = ARMS


def arms(left=(), right=(), score=0.9) -> np.ndarray:
    """17 keypoints, the left and right arm's (shoulder, elbow, wrist; None: unseen) where given, the rest unseen."""
    points = np.zeros((17, 3))
    for indices, arm in ((LEFT_ARM, left), (RIGHT_ARM, right)):
        for index, point in zip(indices, arm):
            if point is not None:
                points[index] = (*point, score)
    return points


def test_a_hand_is_boxed_a_third_of_a_forearm_past_the_wrist():
    """OpenPose's box from the body: a square 1.5 times the longer of the forearm and 0.9 of the upper arm, centred
    0.33 forearms beyond the wrist, along the forearm."""
    box = hand_box(arms(left=((300, 100), (300, 180), (300, 240))), LEFT_ARM, SIZE, 0.3)
    side = 1.5 * max(60, 0.9 * 80)  # the upper arm (80) is the longer here
    assert (box.right - box.left, box.bottom - box.top) == (pytest.approx(side, abs=1), pytest.approx(side, abs=1))
    assert ((box.left + box.right) / 2, (box.top + box.bottom) / 2) == (pytest.approx(300, abs=1),
                                                                        pytest.approx(240 + 0.33 * 60, abs=1))
    assert contains(box, (300, 240), (300, 240 + 60 * 0.74))  # the wrist and the fingertips of a hand held straight
    assert box.score == pytest.approx(0.9)
    sideways = hand_box(arms(right=(None, (200, 300), (120, 300))), RIGHT_ARM, SIZE, 0.3)  # no shoulder seen
    assert sideways.right - sideways.left == pytest.approx(1.5 * 80, abs=1)  # the forearm alone
    assert (sideways.left + sideways.right) / 2 == pytest.approx(120 - 0.33 * 80, abs=1)  # beyond, to the left


def test_a_forearm_pointing_at_the_viewer_keeps_the_hand_its_size():
    """A forearm seen end on is short in the picture; the hand is not: the upper arm sets the box."""
    box = hand_box(arms(left=((300, 100), (300, 190), (304, 196))), LEFT_ARM, SIZE, 0.3)
    assert box.right - box.left == pytest.approx(1.5 * 0.9 * 90, abs=1)


def test_no_hand_without_its_wrist_and_elbow_seen():
    assert hand_box(arms(left=((300, 100), (300, 180), None)), LEFT_ARM, SIZE, 0.3) is None
    assert hand_box(arms(left=((300, 100), None, (300, 240))), LEFT_ARM, SIZE, 0.3) is None
    assert hand_box(arms(left=((300, 100), (300, 180), (300, 240)), score=0.2), LEFT_ARM, SIZE, 0.3) is None
    assert hand_box(arms(left=((300, 100), (300, 180), (300, 240)), score=0.2), LEFT_ARM, SIZE, 0.1) is not None
    assert hand_box(arms(left=((300, 100), (300, 180), (300, 180))), LEFT_ARM, SIZE, 0.3) is not None  # the upper arm
    assert hand_box(arms(left=(None, (300, 180), (300, 180))), LEFT_ARM, SIZE, 0.3) is None  # no length at all
    assert hand_box(arms(left=((900, 100), (900, 180), (900, 240))), LEFT_ARM, SIZE, 0.3) is None  # outside


def test_hands_come_left_to_right_and_hands_held_together_once():
    apart = arms(left=((400, 100), (440, 180), (460, 250)), right=((200, 100), (160, 180), (140, 250)))
    boxes = hand_boxes([apart], SIZE, 0.3)
    assert len(boxes) == 2 and boxes[0].right < 200 < 400 < boxes[1].left  # the person's right hand is on the left
    assert boxes == [hand_box(apart, RIGHT_ARM, SIZE, 0.3), hand_box(apart, LEFT_ARM, SIZE, 0.3)]
    clasped = arms(left=((360, 100), (340, 180), (305, 240)), right=((240, 100), (260, 180), (295, 240)))
    (box,) = hand_boxes([clasped], SIZE, 0.3)  # one box for the two hands: each is in it
    assert contains(box, (305, 240), (295, 240))
    edge = hand_box(arms(left=((600, 300), (620, 380), (630, 460))), LEFT_ARM, SIZE, 0.3)
    assert edge.bottom == 480 and edge.right == 640 and edge.top < 460
    assert part_boxes("hand", [apart], SIZE, 0.3) == boxes and part_boxes("face", [apart], SIZE, 0.3) == []


def test_a_pass_prompt_is_read_as_adetailer_reads_it():
    """`[SEP]` gives each face (hand) its own words, left to right, the last part those past it; an empty part, or
    `[PROMPT]` in one, is the image's prompt; `[SKIP]` leaves that one as it is."""
    own = "two friends on a bench"
    assert [pass_prompt("freckles", own, number) for number in (0, 3)] == ["freckles", "freckles"]
    assert pass_prompt("", own, 0) == own
    assert [pass_prompt("smiling [SEP] [PROMPT], frowning  [SEP]", own, number) for number in range(4)] == [
        "smiling", f"{own}, frowning", own, own]
    assert [pass_prompt("[SKIP][SEP]freckles", own, number) for number in range(3)] == [None, "freckles", "freckles"]
    assert pass_prompt("a [SKIP] here", own, 0) == "a [SKIP] here"  # a part that is only [SKIP] skips


def test_a_hand_whose_elbow_is_out_of_sight_is_measured_by_the_face():
    """A portrait that ends at the chest: a raised hand's wrist is seen, its elbow is not. The box is centred on
    the wrist, 2 × 1.35 face widths a side (the face 132 wide: eyes 60 apart), and as sure as the least sure point
    it was read from; without the face either, no hand."""
    points = person(**FRONT)
    points[9] = (420, 330, 0.6)  # the left wrist, under the face; the elbow below the picture, unseen
    box = hand_box(points, LEFT_ARM, SIZE, 0.3)
    side = 2 * 1.35 * 2.2 * 60
    assert (box.left + box.right) / 2 == pytest.approx(420, abs=1) and box.top == pytest.approx(330 - side / 2, abs=1)
    assert box.right - box.left == pytest.approx(side, abs=1) and box.bottom == 480  # cut at the picture's edge
    assert box.score == pytest.approx(0.6)
    assert hand_boxes([points], SIZE, 0.3) == [box]
    points[:5, 2] = 0.1  # the face unsure too
    assert hand_box(points, LEFT_ARM, SIZE, 0.3) is None


def _square(left: int, top: int, right: int, bottom: int, size=(40, 30)):
    """A mask (PIL) white from (left, top) to (right, bottom), both included."""
    from PIL import Image

    array = np.zeros((size[1], size[0]), np.uint8)
    array[top:bottom + 1, left:right + 1] = 255
    return Image.fromarray(array)


def _bounds(mask) -> tuple[int, int, int, int]:
    rows, columns = np.nonzero(np.asarray(mask))
    return columns.min(), rows.min(), columns.max(), rows.max()


def test_masks_are_shaped_as_adetailer_shapes_them():
    """ADetailer's mask preprocessing: moved (x right, y up, wrapping round the edges as PIL's offset does), grown or
    shrunk by an OpenCV square (4 across: 1 pixel up and left, 2 down and right), emptied ones dropped, merged or
    merged and inverted; and the boxes kept by their share of the image's area."""
    face, hand = _square(10, 10, 19, 19), _square(30, 2, 35, 5)
    assert [_bounds(mask) for mask in shaped_masks([face, hand])] == [(10, 10, 19, 19), (30, 2, 35, 5)]
    assert _bounds(shaped_masks([face], dilate_erode=4)[0]) == (9, 9, 21, 21)
    assert _bounds(shaped_masks([face], dilate_erode=3)[0]) == (9, 9, 20, 20)
    assert _bounds(shaped_masks([face], dilate_erode=-4)[0]) == (12, 12, 18, 18)
    assert [_bounds(mask) for mask in shaped_masks([face, hand], dilate_erode=-7)] == [(13, 13, 16, 16)]  # hand gone
    assert _bounds(shaped_masks([face], x_offset=5, y_offset=3)[0]) == (15, 7, 24, 16)
    wrapped = np.asarray(shaped_masks([hand], x_offset=6)[0])  # past the right edge: back in at the left
    assert wrapped[2:6, 36:].all() and wrapped[2:6, :2].all() and not wrapped[2:6, 2:36].any()
    edge = shaped_masks([_square(0, 0, 9, 9)], dilate_erode=-4)[0]  # the image's edge does not eat into it
    assert _bounds(edge) == (0, 0, 8, 8)
    (merged,) = shaped_masks([face, hand], merge="merge")
    assert np.array_equal(np.asarray(merged), np.maximum(np.asarray(face), np.asarray(hand)))
    (rest,) = shaped_masks([face, hand], merge="merge and invert")
    assert np.array_equal(np.asarray(rest), 255 - np.asarray(merged))
    assert shaped_masks([face], dilate_erode=-40, merge="merge") == []
    (grown,) = shaped_masks([face], dilate_erode=4)
    assert grown.mode == "L" and grown.size == face.size

    boxes = [PartBox(0, 0, 64, 48, 0.9), PartBox(0, 0, 320, 240, 0.9), PartBox(0, 0, 640, 480, 0.9)]  # 1%, 25%, all
    assert within_ratio(boxes, SIZE, 0.0, 1.0) == boxes
    assert within_ratio(boxes, SIZE, 0.05, 0.5) == boxes[1:2]
    assert within_ratio(boxes, SIZE, 0.0, 0.01) == boxes[:1]



@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 13, 32, 63, 127])
def test_masks_grow_and_shrink_as_opencv_dilates_and_erodes_them(size, monkeypatch):
    """The pass runs in the compute runtime, which has no OpenCV: its squares are numpy's, pixel for pixel OpenCV's
    (`cv2.dilate` / `cv2.erode` with a MORPH_RECT square, as ADetailer calls them), on masks and on any 8-bit image,
    of odd and even sizes, at the image's edges and in images smaller than the square."""
    import cv2

    rng = np.random.default_rng(size)
    pictures = [rng.integers(0, 256, (37, 52), dtype=np.uint8), (rng.random((64, 48)) > 0.97).astype(np.uint8) * 255,
                np.asarray(_square(0, 0, 9, 9)), rng.integers(0, 256, (3, 5), dtype=np.uint8)]
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    expected = [(cv2.dilate(p, square), cv2.erode(p, square)) for p in pictures]
    monkeypatch.setitem(sys.modules, "cv2", None)  # as in the runtime: `import cv2` fails
    for picture, (dilated, eroded) in zip(pictures, expected):
        assert np.array_equal(square_morph(picture, size), dilated)
        assert np.array_equal(square_morph(picture, -size), eroded)
    (grown,) = shaped_masks([_square(10, 10, 19, 19)], dilate_erode=size)
    assert np.array_equal(np.asarray(grown), cv2_free_reference(size))


def cv2_free_reference(size: int) -> np.ndarray:
    """The square (10, 10)–(19, 19) of a 40 × 30 mask grown by a `size` square: `size // 2` down and right, the
    rest up and left (4: 1 up, 2 down), as far as the mask's edges."""
    expected = np.zeros((30, 40), np.uint8)
    before, after = size - 1 - size // 2, size // 2
    expected[max(0, 10 - before):20 + after, max(0, 10 - before):20 + after] = 255
    return expected
