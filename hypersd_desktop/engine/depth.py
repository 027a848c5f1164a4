"""Depth maps for depth ControlNets, from a photo, with a depth-estimation model (Depth Anything V2).

The map is the one transformers' depth-estimation pipeline gives, in the convention the depth ControlNets
take (`control_v11f1p_sd15_depth`, `controlnet-depth-sdxl-1.0`, ControlNet Union's depth type): the
model's relative depth at the photo's size, near white and far black, stretched over 0–255. The
model is a transformers folder read from safetensors only (`config.json`, `preprocessor_config.json`,
`model.safetensors`). Torch side: the worker and the command line make maps; the window asks the worker.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.engine.devices import choose_device
from hypersd_desktop.engine.inspect import DEPTH_MODEL_FILES, is_depth_model


class DepthEstimator:
    """One depth model, loaded on first use and kept: a Draw or Generate session makes many maps."""

    def __init__(self) -> None:
        self._loaded: tuple[tuple[str, str], object, object] | None = None  # ((folder, device), model, processor)
        self._lock = threading.Lock()

    def depth_map(self, picture, model: str, device: str = "auto"):
        """`picture`'s (PIL) depth map as an RGB image of its size: near is white."""
        pixels, (width, height) = _seen(np.asarray(picture.convert("RGB"))), picture.size
        with self._lock:
            network, processor, placed = self._load(Path(model), choose_device(device))
            inputs = processor(images=pixels, return_tensors="pt", input_data_format="channels_last").to(placed)
            with torch.inference_mode():
                outputs = network(**inputs)
            (result,) = processor.post_process_depth_estimation(outputs, [pixels.shape[:2]])
        depth = result["predicted_depth"].float().cpu().numpy()[:height, :width]  # the picture, without its margin
        span = depth.max() - depth.min()
        scaled = (depth - depth.min()) / span if span > 0 else np.zeros_like(depth)  # a flat picture: all far
        from PIL import Image

        return Image.fromarray((scaled * 255).astype("uint8"), "L").convert("RGB")

    def _load(self, folder: Path, device: str):
        key = (str(folder), device)
        if self._loaded is not None and self._loaded[0] == key:
            return self._loaded[1], self._loaded[2], device
        if not is_depth_model(folder):
            raise InputError(f"{folder} is not a depth-estimation model this app reads (a Depth Anything folder with "
                             f"{', '.join(DEPTH_MODEL_FILES)}); download Depth Anything V2 Small in the Models tab.")
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self._loaded = None  # the old one goes before the new one loads
        try:
            network = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True, use_safetensors=True)
            processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        except Exception as error:  # noqa: BLE001 - a damaged download: transformers and safetensors raise many kinds
            raise ModelFormatError(f"The depth model in {folder} cannot be read ({type(error).__name__}: "
                                   f"{str(error)[:200]}); remove it and download Depth Anything V2 Small again in "
                                   "the Models tab.") from error
        network = network.to(device).eval()
        self._loaded = (key, network, processor)
        return network, processor, device


MIN_SIDE = 56  # four of the model's 14-pixel patches: a smaller side is resized to nothing
MAX_ASPECT = 4  # a strip or a panorama is estimated with its short side widened to a quarter of its long one


def _seen(pixels: np.ndarray) -> np.ndarray:
    """The pixels (H × W × 3) the model is shown: a picture too small or too narrow for it (a 1 × 3000 strip, an
    icon) with its last row and column repeated to the right and below until it is not; others as they are."""
    height, width = pixels.shape[:2]
    short = max(MIN_SIDE, -(-max(height, width) // MAX_ASPECT))
    wanted = (max(height, short), max(width, short))
    if wanted == (height, width):
        return pixels
    return np.pad(pixels, ((0, wanted[0] - height), (0, wanted[1] - width), (0, 0)), mode="edge")
