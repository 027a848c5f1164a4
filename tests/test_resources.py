"""The bundled single-file configs describe the real SD1.5 and SDXL architectures."""

from __future__ import annotations

import json

import pytest
import torch

from hypersd_desktop.core.resources import resources_dir


@pytest.mark.parametrize(("architecture", "millions"), [("sd15", 859.5), ("sdxl", 2567.5)])
def test_unet_configs_have_the_published_size(architecture, millions):
    from diffusers import UNet2DConditionModel

    config = json.loads((resources_dir() / "configs" / architecture / "unet" / "config.json").read_text())
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    assert round(sum(p.numel() for p in unet.parameters()) / 1e6, 1) == millions


def test_bundled_tokenizer_is_clip():
    from transformers import CLIPTokenizer

    for folder in ("sd15/tokenizer", "sdxl/tokenizer", "sdxl/tokenizer_2"):
        tokenizer = CLIPTokenizer.from_pretrained(resources_dir() / "configs" / folder)
        ids = tokenizer("a photo of an astronaut riding a horse").input_ids
        assert ids == [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407]
    assert CLIPTokenizer.from_pretrained(resources_dir() / "configs" / "sdxl/tokenizer_2").pad_token == "!"
