"""Header inspection: kinds, architectures and key styles of real-format files; bad files refused."""

from __future__ import annotations

import json
import re
import struct

import pytest
import torch
from safetensors.torch import save_file

from hypersd_desktop.core.errors import ModelFormatError, UnsafeFileError
from hypersd_desktop.engine.inspect import inspect_file


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_diffusers_components(architecture, tiny_sd15, tiny_sdxl):
    folder = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    unet = inspect_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
    assert (unet.kind, unet.architecture, unet.format) == ("unet", architecture, "diffusers")
    vae = inspect_file(folder / "vae" / "diffusion_pytorch_model.safetensors")
    assert (vae.kind, vae.architecture) == ("vae", None)


@pytest.mark.parametrize("name", ["Hyper-SD15-1step-lora", "Hyper-SDXL-8steps-CFG-lora"])
def test_hyper_sd_loras(name, hyper_lora):
    info = inspect_file(hyper_lora(name))
    assert info.kind == "lora"
    assert info.format == "kohya"
    assert info.architecture == ("sdxl" if "SDXL" in name else "sd15")
    assert info.hyper_sd == name


def test_renamed_hyper_sd_file_is_a_plain_lora(hyper_lora, tmp_path):
    copy = tmp_path / "my-style.safetensors"
    copy.write_bytes(hyper_lora("Hyper-SD15-2steps-lora").read_bytes())
    assert inspect_file(copy).hyper_sd is None


def test_full_size_shapes_decide_the_architecture(tmp_path):
    # LoRA down matrices of the cross-attention key projection: 768 inputs on SD1.5, 2048 on SDXL.
    for dim, architecture in ((768, "sd15"), (2048, "sdxl")):
        path = tmp_path / f"lora-{dim}.safetensors"
        base = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k"
        save_file({f"{base}.lora_down.weight": torch.zeros(4, dim), f"{base}.lora_up.weight": torch.zeros(8, 4)}, str(path))
        assert inspect_file(path).architecture == architecture


def test_ldm_checkpoint_and_controlnet(tmp_path):
    sd15 = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1),
               "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(1),
               "first_stage_model.decoder.conv_in.weight": torch.zeros(1)}, str(sd15))
    assert (inspect_file(sd15).kind, inspect_file(sd15).architecture, inspect_file(sd15).format) == ("checkpoint", "sd15", "ldm")
    sdxl = tmp_path / "xl.safetensors"
    save_file({"model.diffusion_model.label_emb.0.0.weight": torch.zeros(1),
               "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.zeros(1)}, str(sdxl))
    assert inspect_file(sdxl).architecture == "sdxl"
    control = tmp_path / "control.safetensors"
    save_file({"control_model.input_hint_block.0.weight": torch.zeros(1)}, str(control))
    assert inspect_file(control).kind == "controlnet"


def write_raw(path, header: bytes, data: bytes = b"", declared: int | None = None):
    path.write_bytes(struct.pack("<Q", len(header) if declared is None else declared) + header + data)
    return path


def good_header(**changes):
    entry = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    entry.update(changes)
    return json.dumps({"w": entry}).encode()


@pytest.mark.parametrize(
    ("header", "data", "declared", "message"),
    [
        (good_header(), b"", 10_000, "header runs past the end"),
        (b"not json at all", b"", None, "not JSON"),
        (b"{}", b"", 2**40, "far more than any real model"),
        (good_header(dtype="F13"), b"\0" * 8, None, "unknown dtype"),
        (good_header(), b"\0" * 4, None, "truncated"),
        (good_header(shape=[3]), b"\0" * 8, None, "wrong byte length"),
        (b"[1, 2]", b"", None, "not a JSON object"),
    ],
    ids=["header-past-end", "non-json", "gigantic-header", "unknown-dtype", "truncated-data", "bad-length", "not-object"],
)
def test_bad_files_give_clear_errors(tmp_path, header, data, declared, message):
    path = write_raw(tmp_path / "bad.safetensors", header, data, declared)
    with pytest.raises(ModelFormatError, match=message):
        inspect_file(path)


def test_tiny_file_and_missing_file(tmp_path):
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"abc")
    with pytest.raises(ModelFormatError, match="only 3 bytes"):
        inspect_file(tiny)
    with pytest.raises(ModelFormatError, match="does not exist"):
        inspect_file(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("name", ["model.ckpt", "model.pt", "pytorch_model.bin"])
def test_pickle_files_are_refused_by_name(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(UnsafeFileError, match="pickle"):
        inspect_file(path)


def test_pickle_disguised_as_safetensors_is_refused(tmp_path):
    path = tmp_path / "disguised.safetensors"
    torch.save({"w": torch.zeros(2)}, path)  # a PyTorch zip archive
    with pytest.raises(UnsafeFileError, match="despite its name"):
        inspect_file(path)


def test_a_header_length_that_looks_like_a_pickle_opcode_is_still_safetensors(tmp_path):
    # header lengths whose first byte is 0x80 or whose first bytes are "PK"
    for pad in (0x80 - 2, 0x4B50 - 2):
        header = b"{}" + b" " * pad
        path = write_raw(tmp_path / f"h{pad}.safetensors", header)
        assert inspect_file(path).kind == "unknown"


# Key names as the files people keep beside their models have them (a few tensors each).
OTHER_FILES = {
    "ip-adapter-faceid_sd15": ("a FaceID IP-Adapter (it reads faces with InsightFace, not a CLIP image encoder)", [
        "image_proj.proj.0.weight", "image_proj.proj.2.weight", "image_proj.norm.weight",
        "ip_adapter.1.to_k_ip.weight"]),
    # T2I-Adapters of other kinds than the full ones the app runs (engine/t2i_adapters.py)
    "t2iadapter_color_sd14v1": ("a T2I-Adapter of the color (light) kind", [
        "body.0.in_conv.weight", "body.0.body.0.block1.weight", "body.0.out_conv.weight"]),
    "t2iadapter_style_sd14v1": ("a T2I style adapter", ["style_embedding", "ln_post.weight", "ln_pre.weight"]),
    "kohya_controllllite_xl_canny": ("a ControlNet-LLLite", [
        "lllite_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.conditioning1.0.weight"]),
    "mm_sd_v15_v2": ("an AnimateDiff motion module", [
        "down_blocks.0.motion_modules.0.temporal_transformer.norm.weight"]),
    "clip_vision_h": ("a CLIP vision encoder", ["vision_model.embeddings.class_embedding",
                                                "vision_model.post_layernorm.weight"]),
    "t5xxl_fp16": ("a T5 text encoder", ["shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight"]),
    "4x_esrgan_plus": ("an ESRGAN variant (ESRGAN+)", [
        "model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.0.RDB1.conv1x1.weight"]),
    "4x_Swin2SR": ("an upscaler of another architecture (Swin2SR) or a DAT, HAT or SwinIR variant", [
        "conv_first.weight", "layers.0.residual_group.blocks.0.attn.relative_position_bias_table"]),
    "1x_DAT": ("an upscaler of another architecture (Swin2SR) or a DAT, HAT or SwinIR variant", [
        "conv_first.weight", "before_RG.1.weight", "layers.0.blocks.0.attn.qkv.weight"]),
    "2x-SPAN-cut-short": ("a SPAN or PLKSR variant (PLKSR)", ["conv_1.sk.weight", "block_1.c1_r.sk.weight"]),
    "4x_PLKSR": ("a SPAN or PLKSR variant (PLKSR)", [
        "feats.0.weight", "feats.1.lk.conv.weight", "feats.1.channe_mixer.0.weight"]),
}


@pytest.mark.parametrize("name", list(OTHER_FILES))
def test_files_the_app_does_not_run_are_named(name, tmp_path, app_home):
    """Importing a whole models folder says what each file it skips is; a request naming one says so too."""
    from hypersd_desktop.core.errors import InputError
    from hypersd_desktop.core.paths import AppPaths
    from hypersd_desktop.core.vocab import ImportStatus
    from hypersd_desktop.engine.planning import check_lora_files
    from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
    from hypersd_desktop.models.library import ModelLibrary

    phrase, keys = OTHER_FILES[name]
    path = tmp_path / f"{name}.safetensors"
    save_file({key: torch.zeros(2, 2) for key in keys}, str(path))
    assert inspect_file(path).kind == "unknown"
    library = ModelLibrary(AppPaths.default())
    [item] = library.import_path(path)
    library.close()
    assert item.status == ImportStatus.UNSUPPORTED and item.reason.startswith(f"{phrase};")
    request = GenerationRequest(prompt="", base_model="unused", loras=(LoraSpec(str(path)),))
    with pytest.raises(InputError, match=rf"^{name}.safetensors is {re.escape(phrase)}, which this app does not run, "
                                         "not a LoRA.$"):
        check_lora_files(request, "sd15")


def test_a_file_is_inspected_once_until_it_is_written_again(tmp_path):
    """Each request inspects its base model and LoRAs; the header is parsed once per version of the file: one
    rewritten in place, even to the same size, is read anew, and what callers get are their own copies."""
    from hypersd_desktop.engine.inspect import read_header

    path = tmp_path / "style.safetensors"
    name = "lora_unet_down_blocks_0_attentions_0_proj_in"

    def write(prefix: str, value: float) -> None:
        save_file({f"{prefix}.lora_down.weight": torch.full((4, 320), value),
                   f"{prefix}.lora_up.weight": torch.full((320, 4), value)}, str(path), metadata={"v": str(value)})

    write(name, 1.0)
    first = inspect_file(path)
    assert (first.kind, first.tensor_count, first.metadata) == ("lora", 2, {"v": "1.0"})
    first.metadata["v"] = "changed by a caller"
    tensors, metadata = read_header(path)
    tensors.clear()
    metadata.clear()
    assert inspect_file(path).metadata == {"v": "1.0"} and len(read_header(path)[0]) == 2
    size = path.stat().st_size
    write(name.replace("proj_in", "proj_xx"), 2.0)  # the same size: another key of the same length
    assert path.stat().st_size == size
    assert inspect_file(path).metadata == {"v": "2.0"}
    assert all("proj_xx" in key for key in read_header(path)[0])
    path.write_bytes(b"not weights at all")
    with pytest.raises(ModelFormatError):
        inspect_file(path)
