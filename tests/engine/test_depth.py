"""Depth maps for depth ControlNets: the map transformers' depth-estimation pipeline makes of a photo, from a
Depth Anything folder read from safetensors. Tiny model, CPU."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine.depth import DepthEstimator
from hypersd_desktop.engine.inspect import is_depth_model


def photo(size=(90, 60)) -> Image.Image:
    """Near things bright and large at the bottom, a far plane above: a picture with depth to find."""
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    pixels[size[1] // 2:, :, :] //= 3
    return Image.fromarray(pixels, "RGB")


def test_the_map_is_the_depth_estimation_pipelines(depth_model):
    from transformers import pipeline

    picture = photo()
    made = DepthEstimator().depth_map(picture, str(depth_model), "cpu")
    reference = pipeline("depth-estimation", model=str(depth_model), device="cpu")(picture)["depth"]
    assert made.mode == "RGB" and made.size == picture.size == reference.size
    channels = np.asarray(made)
    assert np.array_equal(channels[..., 0], np.asarray(reference)) and np.array_equal(channels[..., 0], channels[..., 2])
    assert channels.min() == 0 and channels.max() == 255  # stretched over the whole range, as the pipeline does


def test_the_model_is_loaded_once_and_a_flat_picture_is_all_far(depth_model):
    estimator = DepthEstimator()
    estimator.depth_map(photo(), str(depth_model), "cpu")
    first = estimator._loaded[1]
    flat = estimator.depth_map(Image.new("RGB", (28, 28), (90, 90, 90)), str(depth_model), "cpu")
    assert estimator._loaded[1] is first
    assert flat.size == (28, 28) and np.isfinite(np.asarray(flat, np.float32)).all()


def test_only_a_depth_anything_folder_in_safetensors_is_read(depth_model, tmp_path, tiny_sd15):
    assert is_depth_model(depth_model) and not is_depth_model(tiny_sd15) and not is_depth_model(tmp_path)
    pickled = shutil.copytree(depth_model, tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    other = shutil.copytree(depth_model, tmp_path / "other")
    config = json.loads((other / "config.json").read_text(encoding="utf-8"))
    (other / "config.json").write_text(json.dumps({**config, "model_type": "zoedepth"}), encoding="utf-8")
    for folder in (pickled, other, tiny_sd15):
        with pytest.raises(InputError, match="download Depth Anything V2 Small in the Models tab"):
            DepthEstimator().depth_map(photo(), str(folder), "cpu")


def test_a_damaged_depth_model_says_to_download_it_again(depth_model, tmp_path):
    from hypersd_desktop.core.errors import ModelFormatError

    damaged = shutil.copytree(depth_model, tmp_path / "damaged")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a download cut short
    with pytest.raises(ModelFormatError, match="cannot be read .*download Depth Anything V2 Small again"):
        DepthEstimator().depth_map(photo(), str(damaged), "cpu")


@pytest.mark.parametrize("size", [(1, 1), (1, 3000), (3000, 2), (50, 40), (13, 200)])
def test_a_tiny_or_very_narrow_picture_gets_a_map_of_its_size(depth_model, size):
    """The model's input is resized keeping the picture's shape: a strip or an icon came out 0 pixels wide
    ("height and width must be > 0"); it is estimated with its edges repeated to a shape the model can see."""
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    made = DepthEstimator().depth_map(picture, str(depth_model), "cpu")
    assert made.size == size and made.mode == "RGB"
