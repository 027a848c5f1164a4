"""The bundled configs describe the real SD1.5 and SDXL architectures; the catalog pins the real files."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.resources import resources_dir
from hypersd_desktop.models.catalog import load_catalog, parse_catalog


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


def test_base_models_are_pinned_to_a_commit_and_every_file_to_a_sha256():
    catalog = load_catalog()
    for entry_id in ("sd15", "sdxl"):
        entry = catalog.get(entry_id)
        assert re.fullmatch(r"[0-9a-f]{40}", entry.revision)
        assert all(file.sha256 and file.size > 0 for file in entry.files)


def test_the_pinned_tokenizer_hash_is_the_hash_of_the_real_file_bundled_here():
    """The bundled merges.txt is byte for byte the hub's; its pin was taken from elsewhere, so they check each other."""
    bundled = hashlib.sha256((resources_dir() / "configs" / "sd15" / "tokenizer" / "merges.txt").read_bytes()).hexdigest()
    catalog = load_catalog()
    pins = {file.sha256 for entry_id in ("sd15", "sdxl") for file in catalog.get(entry_id).files
            if file.path.endswith("merges.txt")}
    assert pins == {bundled}


def test_a_hash_pinned_against_a_branch_is_refused():
    raw = json.loads((resources_dir() / "catalog.json").read_text(encoding="utf-8"))
    sd15 = next(entry for entry in raw["entries"] if entry["id"] == "sd15")
    with pytest.raises(InputError, match="not the commit"):
        parse_catalog({"entries": [{**sd15, "revision": "main"}]})
