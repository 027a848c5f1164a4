"""Pose maps for OpenPose ControlNets: people found by an RT-DETR person detector, their keypoints by ViTPose as
transformers' documented top-down recipe gives them, drawn in OpenPose's convention. Tiny models, CPU.

The compute runtime has no scipy, which transformers' ViTPose processor calls; the numpy stand-ins are checked
against scipy here (a test dependency), and the whole recipe with them against the recipe with scipy.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import scipy.ndimage
import torch
from PIL import Image

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.engine import pose
from hypersd_desktop.engine.inspect import is_depth_model, is_person_detector, is_pose_model
from hypersd_desktop.engine.pose import COLOURS, LIMB_SHADE, NO_PERSON, PoseEstimator, draw_pose, openpose_points


def photo(size=(120, 90)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(6).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture
def without_scipy(monkeypatch):
    """transformers' ViTPose processor as the compute runtime has it: the numpy stand-ins in scipy's place."""
    from transformers.models.vitpose import image_processing_vitpose as module

    for name, stand_in in pose.SCIPY_STAND_INS.items():
        monkeypatch.setattr(module, name, stand_in, raising=False)


def test_the_stand_ins_compute_what_scipy_does():
    from transformers.models.vitpose.image_processing_vitpose import box_to_center_and_scale, get_warp_matrix

    rng = np.random.default_rng(2)
    picture = rng.integers(0, 256, (90, 120), dtype=np.uint8)
    for box in ([10, 5, 40, 70], [100, 60, 50, 60], [-5, -8, 30, 20], [0, 0, 120, 90]):  # some run off the picture
        center, scale = box_to_center_and_scale(box, image_width=48, image_height=64)
        matrix = np.vstack([get_warp_matrix(0, center * 2.0, np.array([47.0, 63.0]), scale * 200.0), [0, 0, 1]])
        inverse = np.linalg.inv(matrix)
        swapped = inverse[[1, 0, 2]][:, [1, 0, 2]]  # (row, column) order, as the processor hands it to scipy
        for channel in (picture, picture.astype(np.float32) / 255):
            expected = scipy.ndimage.affine_transform(channel, swapped, output_shape=(64, 48), order=1)
            made = pose.affine_transform(channel, swapped, output_shape=(64, 48), order=1)
            assert made.dtype == expected.dtype
            assert np.abs(made.astype(np.float64) - expected).max() <= (1 if channel.dtype == np.uint8 else 1e-5)
    heatmap = rng.random((16, 12)).astype(np.float32)
    for radius in (1, 5):
        expected = scipy.ndimage.gaussian_filter(heatmap, sigma=0.8, radius=(radius, radius), axes=(0, 1))
        made = pose.gaussian_filter(heatmap, sigma=0.8, radius=(radius, radius), axes=(0, 1))
        assert made.dtype == expected.dtype and np.allclose(made, expected, atol=1e-6)


def test_the_keypoints_are_transformers_top_down_recipes(pose_models, monkeypatch):
    """The recipe of transformers' ViTPose documentation: the detector's person boxes (score above 0.3), as COCO
    boxes, then ViTPose on each; computed here with scipy, in the app with the stand-ins."""
    from transformers import AutoProcessor, RTDetrForObjectDetection, VitPoseForPoseEstimation

    model, detector = pose_models
    picture = photo()
    finder = RTDetrForObjectDetection.from_pretrained(detector)
    finder_processor = AutoProcessor.from_pretrained(detector)
    with torch.no_grad():
        outputs = finder(**finder_processor(images=picture, return_tensors="pt"))
    result = finder_processor.post_process_object_detection(
        outputs, target_sizes=torch.tensor([(picture.height, picture.width)]), threshold=0.3)[0]
    boxes = result["boxes"][result["labels"] == 0].numpy()
    boxes[:, 2] -= boxes[:, 0]
    boxes[:, 3] -= boxes[:, 1]
    processor, network = AutoProcessor.from_pretrained(model), VitPoseForPoseEstimation.from_pretrained(model)
    with torch.no_grad():
        heatmaps = network(**processor(picture, boxes=[boxes], return_tensors="pt"))
    expected = processor.post_process_pose_estimation(heatmaps, boxes=[boxes])[0]
    assert len(expected) == 3  # the tiny detector's three queries, all people

    for name, stand_in in pose.SCIPY_STAND_INS.items():  # the compute runtime's way
        from transformers.models.vitpose import image_processing_vitpose as module

        monkeypatch.setattr(module, name, stand_in)
    people = PoseEstimator().keypoints(picture, str(model), str(detector), "cpu")
    assert len(people) == len(expected)
    for person, reference in zip(people, expected):
        assert person.shape == (17, 3)
        assert np.allclose(person[:, :2], reference["keypoints"].numpy(), atol=1e-2)
        assert np.allclose(person[:, 2], reference["scores"].numpy(), atol=1e-4)


WITHOUT_SCIPY = """
import json, sys
import transformers.utils.import_utils as found
found._scipy_available = False  # as in the compute runtime, which has no scipy
from PIL import Image
from hypersd_desktop.engine.pose import PoseEstimator
people = PoseEstimator().keypoints(Image.open(sys.argv[1]), sys.argv[2], sys.argv[3], "cpu")
print(json.dumps([person.tolist() for person in people]))
"""


def test_the_keypoints_come_out_the_same_where_transformers_finds_no_scipy(pose_models, tmp_path):
    """In a process where transformers sees no scipy (its ViTPose processor then lacks the functions), the stand-ins
    are put in their place and the keypoints are those of the recipe with scipy."""
    import subprocess
    import sys

    model, detector = pose_models
    photo().save(tmp_path / "photo.png")
    run = subprocess.run([sys.executable, "-c", WITHOUT_SCIPY, str(tmp_path / "photo.png"), str(model), str(detector)],
                         capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert run.returncode == 0, run.stderr
    found = np.array(json.loads(run.stdout))
    expected = np.array(PoseEstimator().keypoints(Image.open(tmp_path / "photo.png"), str(model), str(detector), "cpu"))
    assert found.shape == expected.shape == (3, 17, 3)
    assert np.allclose(found[..., :2], expected[..., :2], atol=1e-2) and np.allclose(found[..., 2], expected[..., 2],
                                                                                      atol=1e-4)


def test_the_map_is_openposes_drawing_of_the_people(pose_models, without_scipy):
    model, detector = pose_models
    picture = photo((160, 100))
    estimator = PoseEstimator()
    people = estimator.keypoints(picture, str(model), str(detector), "cpu")
    made = estimator.pose_map(picture, str(model), str(detector), "cpu")
    assert made.mode == "RGB" and made.size == picture.size
    expected = draw_pose([openpose_points(person) for person in people], picture.size)
    assert np.array_equal(np.asarray(made), np.asarray(expected))
    assert estimator._loaded[1] is not None
    first = estimator._loaded[1]
    estimator.pose_map(photo((40, 40)), str(model), str(detector), "cpu")
    assert estimator._loaded[1] is first, "the models are loaded once"


def test_a_vitpose_plus_model_reads_cocos_keypoints(pose_models, tmp_path, without_scipy):
    """ViTPose+ (vitpose-plus-base) has an expert per training dataset: it is asked for COCO's (index 0)."""
    import tiny_models

    plus = tiny_models.save_pose_model(tmp_path / "vitpose-plus-base", plus=True)
    people = PoseEstimator().keypoints(photo(), str(plus), str(pose_models[1]), "cpu")
    assert len(people) == 3 and all(person.shape == (17, 3) for person in people)


def test_openpose_points_and_their_drawing():
    """COCO's order to OpenPose's, the neck between the shoulders, a keypoint under 0.3 left out; limbs in 60 % of
    their colour, joints in theirs, the rest black, drawn at 512 on the short side and scaled to the picture."""
    keypoints = np.zeros((17, 3))
    named = {0: (100, 40), 5: (120, 80), 6: (80, 80), 7: (130, 120), 8: (70, 120), 11: (112, 160), 12: (88, 160)}
    for index, (x, y) in named.items():
        keypoints[index] = (x, y, 0.9)
    keypoints[9] = (140, 150, 0.2)  # the left wrist, too unsure to draw
    points = openpose_points(keypoints)
    assert points[0] == (100, 40) and points[1] == (100, 80) and points[2] == (80, 80) and points[5] == (120, 80)
    assert points[7] is None and points[8] == (88, 160) and points[11] == (112, 160) and points[14] is None

    drawn = np.asarray(draw_pose([points], (256, 256)).resize((512, 512), Image.Resampling.NEAREST))
    doubled = [(point[0] * 2, point[1] * 2) if point else None for point in points]
    canvas = np.asarray(draw_pose([doubled], (512, 512)))  # the drawing size itself: no scaling
    assert canvas.shape == (512, 512, 3)
    for index in (0, 1, 2, 5, 8, 11):  # each joint's centre in its colour
        x, y = (int(v) for v in doubled[index])
        assert tuple(canvas[y, x]) == COLOURS[index], index
    shade = tuple(int(c * LIMB_SHADE) for c in COLOURS[1])  # the neck to the right shoulder: limb 0, colour 0
    assert tuple(canvas[160, 180]) == tuple(int(c * LIMB_SHADE) for c in COLOURS[0])
    assert tuple(canvas[160, 220]) == shade  # the neck to the left shoulder: limb 1
    assert tuple(canvas[10, 10]) == (0, 0, 0) and tuple(canvas[300, 280]) == (0, 0, 0)  # where the left wrist was
    assert (canvas.sum(axis=2) > 0).mean() < 0.05
    assert np.abs(drawn.astype(int) - canvas).mean() < 8, "a smaller picture gets the same drawing, scaled"


def test_no_person_in_the_photo_is_said(pose_models, tmp_path, without_scipy):
    import tiny_models

    model, _ = pose_models
    empty = tiny_models.save_person_detector(tmp_path / "finds-none", finds_people=False)
    with pytest.raises(InputError, match=NO_PERSON):
        PoseEstimator().pose_map(photo(), str(model), str(empty), "cpu")


def test_only_vitpose_and_rt_detr_folders_in_safetensors_are_read(pose_models, depth_model, tmp_path, tiny_sd15):
    model, detector = pose_models
    assert is_pose_model(model) and not is_pose_model(detector) and not is_pose_model(depth_model)
    assert is_person_detector(detector) and not is_person_detector(model) and not is_depth_model(model)
    pickled = shutil.copytree(model, tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    for folder in (pickled, depth_model, tiny_sd15):
        with pytest.raises(InputError, match="download ViTPose Base in the Models tab"):
            PoseEstimator().pose_map(photo(), str(folder), str(detector), "cpu")
    with pytest.raises(InputError, match=r"download RT-DETR \(person detector\)"):
        PoseEstimator().pose_map(photo(), str(model), str(model), "cpu")
    other = shutil.copytree(detector, tmp_path / "no-people")
    config = json.loads((other / "config.json").read_text(encoding="utf-8"))
    config["id2label"], config["label2id"] = {"0": "cat", "1": "dog"}, {"cat": 0, "dog": 1}
    (other / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="finds no people"):
        PoseEstimator().pose_map(photo(), str(model), str(other), "cpu")


def test_a_damaged_pose_model_says_to_download_it_again(pose_models, tmp_path):
    model, detector = pose_models
    damaged = shutil.copytree(model, tmp_path / "damaged")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a download cut short
    with pytest.raises(ModelFormatError, match="cannot be read .*download it again"):
        PoseEstimator().pose_map(photo(), str(damaged), str(detector), "cpu")
