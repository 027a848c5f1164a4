"""Benchmark: the pose of the people in a photo for an OpenPose ControlNet, as the app makes it (engine/pose.py,
the worker's `control_map`: the models kept, scipy's functions by their numpy stand-ins as in the compute runtime),
against transformers' documented top-down recipe with the models loaded for each picture, the way example code
runs it (with scipy).

The models are ViTPose Base's and RT-DETR R50's architectures (their configs' sizes) with random weights, saved as
the hub has them; no download. Random weights find nobody, so the detector has 3 queries instead of 300, each one
set to be a person, as in a photo of three (the decoder's share of the time is small). A 512 × 512 photo and a
phone photo's 4032 × 3024 (made at 2048 × 1536 by the service).

    python bench/pose_map.py [--device cpu|cuda|mps] [--repeats 5]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = 3
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from depth_map import hold_photo, map_service, median_s, options  # noqa: E402
from hypersd_desktop.worker.protocol import ControlMap  # noqa: E402


def save_models(root: Path) -> tuple[Path, Path]:
    """vitpose-base-simple's sizes (a ViT-B/16 at 256 × 192, the simple head) and rtdetr_r50vd_coco_o365's (the
    defaults of RTDetrConfig: a ResNet-50-vd, 80 COCO labels; 3 queries, all people, instead of 300)."""
    import torch
    from transformers import (
        RTDetrConfig, RTDetrForObjectDetection, RTDetrImageProcessor, VitPoseBackboneConfig, VitPoseConfig,
        VitPoseForPoseEstimation, VitPoseImageProcessor,
    )

    torch.manual_seed(0)
    backbone = VitPoseBackboneConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, mlp_ratio=4,
                                     image_size=[256, 192], patch_size=[16, 16], out_indices=[12])
    VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, use_simple_decoder=True, num_labels=17)).eval() \
        .save_pretrained(root / "vitpose-base-simple", safe_serialization=True)
    VitPoseImageProcessor().save_pretrained(root / "vitpose-base-simple")
    labels = {i: f"class {i}" for i in range(80)} | {0: "person"}
    detector = RTDetrForObjectDetection(RTDetrConfig(id2label=labels, label2id={v: k for k, v in labels.items()},
                                                     num_queries=PEOPLE))
    with torch.no_grad():  # every query a person: random weights find nobody
        head = detector.model.decoder.class_embed[-1]
        head.weight.zero_()
        head.bias.fill_(-9.0)
        head.bias[0] = 4.0
    detector.eval().save_pretrained(root / "rtdetr", safe_serialization=True)
    RTDetrImageProcessor().save_pretrained(root / "rtdetr")
    return root / "vitpose-base-simple", root / "rtdetr"


def photo_pixels(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(width).integers(0, 255, (height, width, 3), dtype=np.uint8)


def documented_recipe(photo, model: Path, detector: Path, device: str) -> None:
    """transformers' ViTPose example: load both, find the people, pose each."""
    import torch
    from transformers import AutoProcessor, RTDetrForObjectDetection, VitPoseForPoseEstimation

    finder_processor = AutoProcessor.from_pretrained(detector)
    finder = RTDetrForObjectDetection.from_pretrained(detector).to(device)
    with torch.no_grad():
        outputs = finder(**finder_processor(images=photo, return_tensors="pt").to(device))
    found = finder_processor.post_process_object_detection(
        outputs, target_sizes=torch.tensor([(photo.height, photo.width)]), threshold=0.3)[0]
    boxes = found["boxes"][found["labels"] == 0].cpu().numpy()
    boxes[:, 2:] -= boxes[:, :2]
    processor = AutoProcessor.from_pretrained(model)
    network = VitPoseForPoseEstimation.from_pretrained(model).to(device)
    with torch.no_grad():
        heatmaps = network(**processor(photo, boxes=[boxes], return_tensors="pt").to(device))
    processor.post_process_pose_estimation(heatmaps, boxes=[boxes])


def main() -> None:
    args = options(__doc__)
    import torch
    from transformers.models.vitpose import image_processing_vitpose as module

    from hypersd_desktop.engine import pose

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model, detector = save_models(tmp_path)
        service = map_service(tmp_path)
        with_scipy = {name: getattr(module, name) for name in pose.SCIPY_STAND_INS}
        print(f"# pose maps, ViTPose Base + RT-DETR R50 architectures (random weights), {args.device}, "
              f"{torch.get_num_threads()} threads, median of {args.repeats} after a warm-up")
        print(f"{'photo':<14}{'people':>8}{'app (models kept), s':>23}{'recipe loaded per call, s':>28}")
        for width, height in ((512, 512), (4032, 3024)):
            photo = Image.fromarray(photo_pixels(width, height))
            request = ControlMap(hold_photo(service, photo), str(model), "pose", str(detector))
            vars(module).update(pose.SCIPY_STAND_INS)  # as in the compute runtime
            app = lambda: service.control_map(request, args.device)  # noqa: E731
            app()  # loads the models once, as the worker keeps them
            people = len(service._pose.keypoints(photo, str(model), str(detector), args.device))
            app_s = median_s(app, args.repeats)
            vars(module).update(with_scipy)
            recipe_s = median_s(lambda: documented_recipe(photo, model, detector, args.device),
                                max(1, args.repeats // 2))
            print(f"{width} × {height:<8}{people:>8}{app_s:>23.2f}{recipe_s:>28.2f}")


if __name__ == "__main__":
    main()
