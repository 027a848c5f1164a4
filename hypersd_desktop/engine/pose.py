"""Pose maps for OpenPose ControlNets, from a photo: the people in it found by a person detector (RT-DETR),
each one's 17 body keypoints by ViTPose, drawn as the OpenPose skeleton the pose ControlNets were trained on
(`control_v11p_sd15_openpose`, the SDXL OpenPose ControlNets, ControlNet Union's pose type).

Both models are transformers folders read from safetensors only (`config.json`, `preprocessor_config.json`,
`model.safetensors`), Apache-2.0 licensed, unlike the original OpenPose weights. The keypoints are the ones
transformers' documented top-down recipe gives (the detector's person boxes, then ViTPose on each box).
transformers' ViTPose processor crops each person with scipy's `affine_transform` and smooths the heatmaps with its
`gaussian_filter`; the compute runtime has no scipy, so numpy versions of the functions it calls stand in
(`SCIPY_STAND_INS`; the tests check them against scipy's).

The drawing is OpenPose's 18-point convention: COCO's 17 keypoints in OpenPose's order, a neck halfway between the
shoulders, 17 limbs drawn as ellipses four pixels wide in 60 % of their colour, then each joint a disc of radius 4 in
its full colour, on black, at 512 pixels on the short side (the preprocessor's detection size), then scaled to the
photo. Torch side: the worker and the command line make maps; the window asks the worker.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import torch

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.engine.devices import choose_device
from hypersd_desktop.engine.inspect import MAP_MODEL_FILES, is_person_detector, is_pose_model

PERSON_THRESHOLD = 0.3  # the detector's score for a person box, as transformers' ViTPose example takes them
KEYPOINT_THRESHOLD = 0.3  # a keypoint below this score is not drawn (OpenPose's and DWPose's threshold)
DRAW_SIDE = 512  # the short side the skeleton is drawn at, as the OpenPose preprocessor draws it
STICK_WIDTH = 4
JOINT_RADIUS = 4
LIMB_SHADE = 0.6

# OpenPose's 18 points from COCO's 17 (None: the neck, made from the shoulders): nose, neck, right shoulder, elbow,
# wrist, left shoulder, elbow, wrist, right hip, knee, ankle, left hip, knee, ankle, right eye, left eye, right ear,
# left ear.
COCO_OF_OPENPOSE = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
NO_PERSON = ("No person was found in the photo, so there is no pose to follow; choose a photo with a person in it, or "
             "another preprocessor.")


class PoseEstimator:
    """A pose model and a person detector, loaded on first use and kept: a session makes many maps."""

    def __init__(self) -> None:
        self._loaded: tuple[tuple[str, str, str], tuple] | None = None  # ((model, detector, device), networks)
        self._lock = threading.Lock()

    def pose_map(self, picture, model: str, detector: str, device: str = "auto"):
        """`picture`'s (PIL) pose map as an RGB image of its size: the skeletons of the people in it, on black."""
        people = self.keypoints(picture, model, detector, device)
        if not people:
            raise InputError(NO_PERSON)
        return draw_pose([openpose_points(person) for person in people], picture.size)

    def keypoints(self, picture, model: str, detector: str, device: str = "auto") -> list[np.ndarray]:
        """Each person's 17 COCO keypoints in `picture` (PIL) as rows of (x, y, score), in pixels."""
        rgb = picture.convert("RGB")
        with self._lock:
            placed = choose_device(device)
            network, processor, finder, finder_processor = self._load(Path(model), Path(detector), placed)
            found = finder_processor(images=rgb, return_tensors="pt").to(placed)
            with torch.inference_mode():
                outputs = finder(**found)
            (boxes,) = finder_processor.post_process_object_detection(
                outputs, target_sizes=[(rgb.height, rgb.width)], threshold=PERSON_THRESHOLD)
            person = _person_label(finder.config)
            people = boxes["boxes"][boxes["labels"] == person].float().cpu().numpy()
            if not len(people):
                return []
            people[:, 2:] -= people[:, :2]  # corners to COCO's (x, y, width, height)
            inputs = processor(rgb, boxes=[people], return_tensors="pt").to(placed)
            extra = {}
            if getattr(network.config.backbone_config, "num_experts", 1) > 1:  # ViTPose+: COCO's head
                extra["dataset_index"] = torch.zeros(len(people), dtype=torch.long, device=placed)
            with torch.inference_mode():
                estimated = network(**inputs, **extra)
            estimated.heatmaps = estimated.heatmaps.float().cpu()
            (poses,) = processor.post_process_pose_estimation(estimated, boxes=[people])
        return [np.concatenate([pose["keypoints"].numpy(), pose["scores"].numpy()[:, None]], axis=1)
                for pose in poses]

    def _load(self, model: Path, detector: Path, device: str):
        key = (str(model), str(detector), device)
        if self._loaded is not None and self._loaded[0] == key:
            return self._loaded[1]
        if not is_pose_model(model):
            raise InputError(f"{model} is not a pose model this app reads (a ViTPose folder with "
                             f"{', '.join(MAP_MODEL_FILES)}); download ViTPose Base in the Models tab.")
        if not is_person_detector(detector):
            raise InputError(f"{detector} is not a person detector this app reads (an RT-DETR folder with "
                             f"{', '.join(MAP_MODEL_FILES)}); download RT-DETR (person detector) in the Models tab.")
        from transformers import AutoImageProcessor, AutoModelForObjectDetection, VitPoseForPoseEstimation

        install_scipy_stand_ins()
        self._loaded = None  # the old ones go before the new ones load
        networks = []
        for folder, cls, what in ((model, VitPoseForPoseEstimation, "pose model"),
                                  (detector, AutoModelForObjectDetection, "person detector")):
            try:
                network = cls.from_pretrained(folder, local_files_only=True, use_safetensors=True)
                processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, use_fast=False)
            except Exception as error:  # noqa: BLE001 - a damaged download: transformers, safetensors raise many kinds
                raise ModelFormatError(f"The {what} in {folder} cannot be read ({type(error).__name__}: "
                                       f"{str(error)[:200]}); remove it and download it again in the Models "
                                       "tab.") from error
            networks += [network.to(device).eval(), processor]
        if _person_label(networks[2].config) is None:
            raise ModelFormatError(f"{detector} finds no people (its labels have no \"person\"); download RT-DETR "
                                   "(person detector) in the Models tab.")
        self._loaded = (key, tuple(networks))
        return self._loaded[1]


def _person_label(config) -> int | None:
    return next((int(index) for index, label in config.id2label.items() if str(label).lower() == "person"), None)


def openpose_points(keypoints: np.ndarray) -> list[tuple[float, float] | None]:
    """One person's COCO keypoints (rows of x, y, score) as OpenPose's 18 points; None where a point is not seen
    (the neck is seen where both shoulders are)."""
    seen = [(float(x), float(y)) if score >= KEYPOINT_THRESHOLD else None for x, y, score in keypoints]
    points = []
    for coco in COCO_OF_OPENPOSE:
        if coco is not None:
            points.append(seen[coco])
        else:
            left, right = seen[5], seen[6]
            points.append(((left[0] + right[0]) / 2, (left[1] + right[1]) / 2) if left and right else None)
    return points


def draw_pose(people: list[list[tuple[float, float] | None]], size: tuple[int, int]):
    """The OpenPose picture (PIL, RGB, `size`) of `people`, each OpenPose's 18 points in pixels of `size`."""
    from PIL import Image, ImageDraw

    width, height = size
    scale = DRAW_SIDE / min(width, height)
    canvas_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("RGB", canvas_size, "black")
    draw = ImageDraw.Draw(canvas)
    placed = [[(point[0] * scale, point[1] * scale) if point else None for point in person] for person in people]
    for (a, b), colour in zip(LIMBS, COLOURS):
        shade = tuple(int(c * LIMB_SHADE) for c in colour)
        for person in placed:
            if person[a] and person[b]:
                draw.polygon(_limb(person[a], person[b]), fill=shade)
    for index, colour in enumerate(COLOURS):
        for person in placed:
            if person[index]:
                x, y = (int(v) for v in person[index])
                draw.ellipse((x - JOINT_RADIUS, y - JOINT_RADIUS, x + JOINT_RADIUS, y + JOINT_RADIUS), fill=colour)
    return canvas if canvas.size == tuple(size) else canvas.resize(size, Image.Resampling.BILINEAR)


def _limb(a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
    """The outline of the ellipse OpenPose draws a limb as: from joint to joint, `STICK_WIDTH` across."""
    centre_x, centre_y = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    half_length = math.hypot(a[0] - b[0], a[1] - b[1]) / 2
    angle = math.atan2(a[1] - b[1], a[0] - b[0])
    cos, sin = math.cos(angle), math.sin(angle)
    outline = []
    for degree in range(360):
        t = math.radians(degree)
        x, y = half_length * math.cos(t), STICK_WIDTH * math.sin(t)
        outline.append((centre_x + x * cos - y * sin, centre_y + x * sin + y * cos))
    return outline


# -- scipy's functions, as transformers' ViTPose processor calls them ------------------------------------------


def affine_transform(channel: np.ndarray, matrix: np.ndarray, output_shape: tuple[int, int], order: int = 1):
    """scipy.ndimage.affine_transform for a 2-D array with a homogeneous 3 × 3 `matrix` (output index to input
    index), linear interpolation (`order` 1), and 0 outside the input (mode "constant": nothing is interpolated
    beyond the edges)."""
    if order != 1:
        raise ValueError("only linear interpolation (order 1) stands in for scipy's")
    rows, cols = np.indices(output_shape, dtype=np.float64)
    r = matrix[0, 0] * rows + matrix[0, 1] * cols + matrix[0, 2]
    c = matrix[1, 0] * rows + matrix[1, 1] * cols + matrix[1, 2]
    height, width = channel.shape
    inside = (r > -1e-9) & (r < height - 1 + 1e-9) & (c > -1e-9) & (c < width - 1 + 1e-9)
    r, c = np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    r1, c1 = np.minimum(r0 + 1, height - 1), np.minimum(c0 + 1, width - 1)
    fr, fc = r - r0, c - c0
    values = channel.astype(np.float64)
    result = ((1 - fr) * (1 - fc) * values[r0, c0] + (1 - fr) * fc * values[r0, c1]
              + fr * (1 - fc) * values[r1, c0] + fr * fc * values[r1, c1])
    result = np.where(inside, result, 0.0)
    if np.issubdtype(channel.dtype, np.integer):
        info = np.iinfo(channel.dtype)
        return np.clip(np.round(result), info.min, info.max).astype(channel.dtype)
    return result.astype(channel.dtype)


def gaussian_filter(array: np.ndarray, sigma: float, radius: tuple[int, int], axes: tuple[int, int] = (0, 1)):
    """scipy.ndimage.gaussian_filter of a 2-D array over both axes with the given radii, edges mirrored (scipy's
    "reflect": d c b a | a b c d)."""
    result = array.astype(np.float64)
    for axis, reach in zip(axes, radius):
        offsets = np.arange(-reach, reach + 1)
        weights = np.exp(-0.5 * (offsets / sigma) ** 2)
        weights /= weights.sum()
        padded = np.pad(result, [(reach, reach) if a == axis else (0, 0) for a in range(result.ndim)],
                        mode="symmetric")
        length = result.shape[axis]
        result = sum(weight * np.take(padded, np.arange(k, k + length), axis=axis)
                     for k, weight in enumerate(weights))
    return result.astype(array.dtype)


SCIPY_STAND_INS = {"inv": np.linalg.inv, "affine_transform": affine_transform, "gaussian_filter": gaussian_filter}


def install_scipy_stand_ins() -> None:
    """Give transformers' ViTPose processor the scipy functions it calls where scipy is not installed (it imports
    them only when scipy is there, and fails with a NameError otherwise)."""
    from transformers.models.vitpose import image_processing_vitpose as module

    for name, stand_in in SCIPY_STAND_INS.items():
        if not hasattr(module, name):
            setattr(module, name, stand_in)
