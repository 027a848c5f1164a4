"""Files for base models the app does not run (FLUX, SD3, SD2, the SDXL refiner) are named, never taken for
SD1.5 or SDXL ones.

People's model folders hold these beside their SD1.5 and SDXL files. Each file here has the key names and
the telling shapes of the tool that writes such files (kohya sd-scripts, diffusers/PEFT, XLabs, Black Forest
Labs, ComfyUI, Stability's originals); the tensors are zeros, written sparse, so full-size shapes cost no disk.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from hypersd_desktop.core.errors import ArchitectureMismatchError, InputError
from hypersd_desktop.core.vocab import ImportStatus
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.engine.inspect import EDM_FAMILY, base_architecture, inspect_file
from hypersd_desktop.engine.planning import check_controlnet, check_lora_files

BYTES = {"F16": 2, "BF16": 2, "F32": 4}


def write_zeros(path: Path, shapes: dict[str, list[int]], dtype: str = "F16") -> Path:
    """A valid safetensors file of zero tensors with these names and shapes (its data is a hole in the file)."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = BYTES[dtype]
        for dim in shape:
            size *= dim
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    return path


def lora(prefix: str, down: str, up: str, width: int, out: int | None = None, rank: int = 16) -> dict[str, list[int]]:
    return {f"{prefix}.{down}": [rank, width], f"{prefix}.{up}": [out or width, rank]}


FILES = {
    # kohya sd-scripts FLUX LoRA: every key starts lora_unet_, as an SD1.5 LoRA's do.
    "flux-kohya-lora": ("FLUX", "lora", {
        **lora("lora_unet_double_blocks_0_img_attn_qkv", "lora_down.weight", "lora_up.weight", 3072, 9216),
        **lora("lora_unet_single_blocks_0_linear1", "lora_down.weight", "lora_up.weight", 3072, 21504),
        "lora_unet_double_blocks_0_img_attn_qkv.alpha": []}),
    # diffusers / ai-toolkit / Hyper-FLUX: PEFT names on the diffusers transformer.
    "flux-peft-lora": ("FLUX", "lora", {
        **lora("transformer.transformer_blocks.0.attn.to_k", "lora_A.weight", "lora_B.weight", 3072),
        **lora("transformer.transformer_blocks.0.attn.add_k_proj", "lora_A.weight", "lora_B.weight", 3072),
        **lora("transformer.single_transformer_blocks.0.attn.to_q", "lora_A.weight", "lora_B.weight", 3072)}),
    # A FLUX LoRA trained on the double blocks alone: told from SD3 by its width.
    "flux-double-blocks-lora": ("FLUX", "lora", {
        **lora("transformer.transformer_blocks.0.attn.to_k", "lora_A.weight", "lora_B.weight", 3072),
        **lora("transformer.transformer_blocks.0.attn.add_k_proj", "lora_A.weight", "lora_B.weight", 3072)}),
    "flux-xlabs-lora": ("FLUX", "unknown", {
        **lora("double_blocks.0.processor.qkv_lora1", "down.weight", "up.weight", 3072, 9216)}),
    "flux1-dev-transformer": ("FLUX", "unknown", {
        "double_blocks.0.img_attn.qkv.weight": [9216, 3072], "single_blocks.0.linear1.weight": [21504, 3072],
        "img_in.weight": [3072, 64]}),
    # ComfyUI's all-in-one FLUX checkpoint: the original SD prefix for the model.
    "flux1-dev-fp8-checkpoint": ("FLUX", "checkpoint", {
        "model.diffusion_model.double_blocks.0.img_attn.qkv.weight": [9216, 3072],
        "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight": [768],
        "vae.decoder.conv_in.weight": [512, 16, 3, 3]}),
    "sd3-peft-lora": ("SD3", "lora", {
        **lora("transformer.transformer_blocks.0.attn.to_k", "lora_A.weight", "lora_B.weight", 1536),
        **lora("transformer.transformer_blocks.0.attn.add_k_proj", "lora_A.weight", "lora_B.weight", 1536)}),
    "sd3-kohya-lora": ("SD3", "lora", {
        **lora("lora_unet_joint_blocks_0_x_block_attn_qkv", "lora_down.weight", "lora_up.weight", 1536, 4608)}),
    "sd3.5-medium-checkpoint": ("SD3", "checkpoint", {
        "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": [4608, 1536],
        "text_encoders.clip_g.transformer.text_model.final_layer_norm.weight": [1280]}),
    # An SD2.1 LoRA has SD1.5's blocks; only the 1024-wide text (OpenCLIP-H) tells them apart.
    "sd21-kohya-lora": ("SD2", "lora", {
        **lora("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", "lora_down.weight",
               "lora_up.weight", 1024, 320),
        **lora("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", "lora_down.weight",
               "lora_up.weight", 320)}),
    "v2-1_768-ema-pruned": ("SD2", "checkpoint", {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024],
        "cond_stage_model.model.positional_embedding": [77, 1024],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3]}),
    "sd_xl_refiner_1.0": ("the SDXL refiner", "checkpoint", {
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": [768, 1280],
        "model.diffusion_model.label_emb.0.0.weight": [1536, 2560],
        "conditioner.embedders.0.model.positional_embedding": [77, 1280],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3]}),
    # SDXL's shape with EDM sampling and Playground's latent scale (CosXL marks itself with `edm_vpred.sigma_max`)
    "playground-v2.5-1024px-aesthetic": (EDM_FAMILY, "checkpoint", {
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": [640, 2048],
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": [768],
        "conditioner.embedders.1.model.positional_embedding": [77, 1280],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3], "edm_mean": [1, 4, 1, 1], "edm_std": [1, 4, 1, 1]}),
    "controlnet-sd21-canny": ("SD2", "controlnet", {
        "input_hint_block.0.weight": [16, 3, 3, 3],
        "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024]}),
}


@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("foreign")
    for name, (_family, _kind, shapes) in FILES.items():
        write_zeros(folder / f"{name}.safetensors", shapes)
    return folder


@pytest.mark.parametrize("name", list(FILES))
def test_each_file_is_named_for_its_base_model(foreign, name):
    family, kind, _ = FILES[name]
    info = inspect_file(foreign / f"{name}.safetensors")
    assert (info.family, info.kind, info.architecture) == (family, kind, None)


@pytest.mark.parametrize("name", ["sd_xl_refiner_1.0", "v2-1_768-ema-pruned", "flux1-dev-fp8-checkpoint",
                                  "sd3.5-medium-checkpoint", "flux1-dev-transformer",
                                  "playground-v2.5-1024px-aesthetic"])
def test_a_foreign_base_model_is_refused_by_name(foreign, name):
    with pytest.raises(InputError) as caught:
        base_architecture(foreign / f"{name}.safetensors")
    message = str(caught.value)
    assert f"for {FILES[name][0]}, which this app does not run" in message and "SD1.5 or SDXL" in message


@pytest.mark.parametrize("name", ["flux-kohya-lora", "flux-peft-lora", "sd3-peft-lora", "sd21-kohya-lora"])
def test_a_foreign_lora_in_a_request_names_its_base(foreign, name):
    request = GenerationRequest(prompt="x", base_model="unused", loras=(LoraSpec(str(foreign / f"{name}.safetensors")),))
    with pytest.raises(ArchitectureMismatchError) as caught:
        check_lora_files(request, "sd15")
    assert f"is a LoRA for {FILES[name][0]}, which this app does not run" in str(caught.value)
    assert "Use SD1.5 LoRAs" in str(caught.value)


def test_a_foreign_controlnet_is_named(foreign):
    with pytest.raises(InputError, match="is a ControlNet for SD2, which this app does not run"):
        check_controlnet(foreign / "controlnet-sd21-canny.safetensors", "sd15")


def test_import_lists_foreign_files_as_unsupported_with_their_base(app_home, foreign):
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary

    library = ModelLibrary(AppPaths.default())
    try:
        items = {Path(item.path).stem: item for item in library.import_path(foreign)}
        assert library.registry.list() == []
    finally:
        library.close()
    assert set(items) == set(FILES)
    for name, (family, _kind, _shapes) in FILES.items():
        assert items[name].status == ImportStatus.UNSUPPORTED, name
        assert f"for {family}" in items[name].reason, (name, items[name].reason)


def test_sd15_and_sdxl_files_keep_their_architecture(tmp_path):
    """The same shapes at SD1.5's and SDXL's widths: the family checks claim none of them."""
    cases = {
        "sd15-kohya": ("sd15", lora("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
                                    "lora_down.weight", "lora_up.weight", 768, 320)),
        "sdxl-peft": ("sdxl", lora("unet.down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k",
                                   "lora_A.weight", "lora_B.weight", 2048, 640)),
        "sdxl-base": ("sdxl", {"model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": [640, 2048],
                               "model.diffusion_model.label_emb.0.0.weight": [1280, 2816],
                               "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": [768],
                               "conditioner.embedders.1.model.positional_embedding": [77, 1280]}),
    }
    for name, (architecture, shapes) in cases.items():
        info = inspect_file(write_zeros(tmp_path / f"{name}.safetensors", shapes))
        assert (info.architecture, info.family) == (architecture, None), name


def test_an_sd2_diffusers_folder_is_not_taken_for_sd15(app_home, tmp_path):
    """stable-diffusion-2-1's folder names SD1.5's pipeline class; its UNet's text width is what tells."""
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.models.library import ModelLibrary

    folder = tmp_path / "stable-diffusion-2-1"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (folder / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel",
                                                              "cross_attention_dim": 1024}))
    write_zeros(folder / "unet" / "diffusion_pytorch_model.safetensors",
                {"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": [320, 1024]})
    with pytest.raises(InputError, match="is a model for SD2, which this app does not run"):
        base_architecture(folder)
    library = ModelLibrary(AppPaths.default())
    try:
        (item,) = library.import_path(folder)
    finally:
        library.close()
    assert item.status == ImportStatus.UNSUPPORTED and "a model for SD2" in item.reason


EMBEDDINGS = {  # name: (key style, base model, its tensors) as A1111, SDXL trainers and diffusers write them
    "EasyNegative": ("a1111", "sd15", {"emb_params": [8, 768]}),
    "web_y2k_emb": ("sdxl", "sdxl", {"clip_g": [2, 1280], "clip_l": [2, 768]}),
    "learned_embeds": ("diffusers", "sd15", {"<cat-toy>": [768]}),
    "sd21-negative": ("a1111", None, {"emb_params": [16, 1024]}),
}


def test_textual_inversion_embeddings_import_with_their_base_model(app_home, tmp_path, capsys):
    import argparse

    from hypersd_desktop.cli import inspect as inspect_command
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.vocab import ModelKind, WeightsKind
    from hypersd_desktop.models.library import ModelLibrary

    folder = tmp_path / "embeddings"
    folder.mkdir()
    for name, (_style, _base, shapes) in EMBEDDINGS.items():
        write_zeros(folder / f"{name}.safetensors", shapes, "F32")
    for name, (style, base, _shapes) in EMBEDDINGS.items():
        info = inspect_file(folder / f"{name}.safetensors")
        assert (info.kind, info.format, info.architecture) == (WeightsKind.EMBEDDING, style, base), name
    assert inspect_file(folder / "sd21-negative.safetensors").family == "SD2"
    library = ModelLibrary(AppPaths.default())
    try:
        items = {Path(item.path).stem: item for item in library.import_path(folder)}
        installed = {model.name: model for model in library.registry.list(kind=ModelKind.EMBEDDING)}
    finally:
        library.close()
    assert {name: model.architecture for name, model in installed.items()} == {
        "EasyNegative": "sd15", "web_y2k_emb": "sdxl", "learned_embeds": "sd15"}
    assert items["sd21-negative"].status == ImportStatus.UNSUPPORTED
    assert "a textual-inversion embedding for SD2" in items["sd21-negative"].reason
    embedding = str(folder / "EasyNegative.safetensors")
    with pytest.raises(InputError, match="EasyNegative.safetensors is a textual-inversion embedding, not a LoRA"):
        check_lora_files(GenerationRequest(prompt="x", base_model=embedding, loras=(LoraSpec(embedding),)), "sd15")
    inspect_command.run(argparse.Namespace(file=folder / "web_y2k_emb.safetensors", json=False))
    assert capsys.readouterr().out.startswith("web_y2k_emb.safetensors: embedding for SDXL, sdxl keys, 2 tensors")
    lone = write_zeros(tmp_path / "vae-part.safetensors", {"decoder.conv_in.weight": [768]}, "F32")
    assert inspect_file(lone).kind == WeightsKind.UNKNOWN, "one tensor named as a model part is no embedding"
