"""Benchmark: a photo's depth map for a depth ControlNet, as the app makes it (engine/depth.py, the worker's
`control_map`), against transformers' depth-estimation pipeline called fresh for each picture (load and run),
the way example code makes one.

The model is Depth Anything V2 Small's architecture (its config's sizes) with random weights, saved as the hub
has it; no download. A 512 × 512 photo and a phone photo's 4032 × 3024 (made at 2048 × 1536 by the service).

    python bench/depth_map.py [--device cpu|cuda|mps] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypersd_desktop.core.images import InputImages  # noqa: E402
from hypersd_desktop.core.paths import AppPaths  # noqa: E402
from hypersd_desktop.worker.protocol import ControlMap  # noqa: E402
from hypersd_desktop.worker.service import GenerationService  # noqa: E402


def save_small(folder: Path) -> Path:
    """Depth-Anything-V2-Small-hf's sizes: a DINOv2 ViT-S/14 backbone (384 wide, 12 layers) and its DPT head."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, image_size=518,
                            patch_size=14, out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=384,
                                 neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64, head_hidden_size=32)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder, safe_serialization=True)
    DPTImageProcessor(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def options(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    return parser.parse_args()


def map_service(root: Path) -> GenerationService:
    """The worker's generation service over an input store in `root`, as it makes control maps."""
    home = root / "home"
    return GenerationService(AppPaths(home / "data", home / "config", home / "cache"), None, None,
                             inputs=InputImages(root / "inputs"))


def hold_photo(service: GenerationService, photo: Image.Image) -> str:
    """`photo` in the service's input store as the window sends it (a PNG), by its digest."""
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG", compress_level=1)
    return service.inputs.hold(buffer.getvalue())


def median_s(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    args = options(__doc__)
    import torch
    from transformers import pipeline

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = save_small(tmp_path / "Depth-Anything-V2-Small-hf")
        service = map_service(tmp_path)
        rng = np.random.default_rng(1)
        print(f"# depth maps, Depth Anything V2 Small's architecture (random weights), {args.device}, "
              f"{torch.get_num_threads()} threads, median of {args.repeats} after a warm-up")
        print(f"{'photo':<14}{'app (model kept), s':>22}{'pipeline made per call, s':>28}")
        for width, height in ((512, 512), (4032, 3024)):
            photo = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
            digest = hold_photo(service, photo)
            app = lambda: service.control_map(ControlMap(digest, str(model)), args.device)  # noqa: E731
            app()  # loads the model once, as the worker keeps it

            def fresh() -> None:
                estimate = pipeline("depth-estimation", model=str(model), device=args.device)
                estimate(photo)["depth"]

            print(f"{width} × {height:<8}{median_s(app, args.repeats):>22.2f}"
                  f"{median_s(fresh, max(1, args.repeats // 2)):>28.2f}")


if __name__ == "__main__":
    main()
