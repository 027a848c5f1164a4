"""Tiny random Stable Diffusion models built in code, saved in the real file formats.

The architectures are the real ones shrunk (the SD1.5 and SDXL block layouts, text-time
conditioning and two text encoders for SDXL), so loading, LoRA key mapping, schedulers and
architecture detection run the same code paths as full-size weights. The scheduler configs are
the base models' published ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
SDXL_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def write_byte_level_tokenizer(folder: Path, pad_token: str = "<|endoftext|>") -> None:
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols (plus end-of-word forms)."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {symbol: i for i, symbol in enumerate(symbols)}
    vocab.update({symbol + "</w>": len(symbols) + i for i, symbol in enumerate(symbols)})
    merges = ["t h", "th e</w>", "a </w>", "c a", "ca t</w>"]
    for merge in merges:
        merged = merge.replace(" ", "")
        vocab.setdefault(merged, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token=pad_token)
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(folder)


def _text_config(tokenizer, projection: bool, width: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, hidden_size=width, intermediate_size=width + 5,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=600,
        hidden_act="gelu", projection_dim=32 if projection else 512, max_position_embeddings=77,
    )


def _clip_l(tokenizer):
    """SD1.5's text encoder, read at its last (layer-normed) hidden state. A trained CLIP's final layer norm has a
    bias, which keeps that output's mean away from 0; prompt emphasis scales each window back to that mean, so
    the tiny encoder gets a bias too (a freshly made one is zeros)."""
    from transformers import CLIPTextModel

    model = CLIPTextModel(_text_config(tokenizer, False))
    with torch.no_grad():
        model.text_model.final_layer_norm.bias.copy_(torch.linspace(0.0, 1.0, model.config.hidden_size))
    return model


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, sample_size=64,
    )


def sd15_unet(in_channels: int = 4):
    """The tiny SD1.5 UNet; 9 input channels make an inpainting model's (latents, mask, masked image). Its attention
    is at the latents' full size, as the real one's first block is, in 2 heads of 16: 8 heads (the real one's count)
    of 4 took a test image's step 3.6 times as long on the CPU, to no end; the weights' shapes are the same."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=in_channels, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=2, norm_num_groups=32,
    )


def sdxl_unet(cross_attention_dim: int = 64, in_channels: int = 4, layers_per_block: int = 1):
    """The tiny SDXL UNet; `layers_per_block` 2 is the real one's (diffusers' Control-LoRA reader assumes it)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=layers_per_block, sample_size=32, in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=cross_attention_dim, norm_num_groups=32,
    )


def build_pipeline(architecture: str, seed: int = 0, text_width_2: int = 32):
    """A tiny random pipeline of the given architecture ("sd15" or "sdxl").

    `text_width_2` is SDXL's second text encoder's width; as in the real model (768 and 1280), a
    single-file loader tells the two encoders apart by it, so a checkpoint test needs them unequal.
    """
    from diffusers import (
        EulerDiscreteScheduler, PNDMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline,
    )
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer
    import tempfile

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        write_byte_level_tokenizer(Path(tmp) / "tok")
        tokenizer = CLIPTokenizer.from_pretrained(Path(tmp) / "tok")
        if architecture == "sdxl":
            write_byte_level_tokenizer(Path(tmp) / "tok2", pad_token="!")
            tokenizer_2 = CLIPTokenizer.from_pretrained(Path(tmp) / "tok2")
    if architecture == "sd15":
        return StableDiffusionPipeline(
            unet=sd15_unet(), vae=_vae(), text_encoder=_clip_l(tokenizer), tokenizer=tokenizer,
            scheduler=PNDMScheduler.from_config(SD15_SCHEDULER), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
    return StableDiffusionXLPipeline(
        unet=sdxl_unet(32 + text_width_2), vae=_vae(), text_encoder=_clip_l(tokenizer),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(tokenizer_2, True, text_width_2)), tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER),
    )


def save_pipeline(architecture: str, folder: Path, seed: int = 0, text_width_2: int = 32) -> Path:
    """Save a tiny pipeline as a diffusers folder (safetensors weights)."""
    build_pipeline(architecture, seed, text_width_2).save_pretrained(folder, safe_serialization=True)
    return folder


def save_inpainting_pipeline(base: Path, folder: Path, seed: int = 5) -> Path:
    """An inpainting model in the layout of stable-diffusion-inpainting (or SDXL's inpainting-0.1): `base`'s
    folder (a tiny SD1.5 or SDXL one) with a 9-channel UNet."""
    import json
    import shutil

    shutil.copytree(base, folder)
    torch.manual_seed(seed)
    config = json.loads((base / "unet" / "config.json").read_text())
    shutil.rmtree(folder / "unet")
    xl = bool(config.get("addition_embed_type"))
    unet = sdxl_unet(config["cross_attention_dim"], in_channels=9) if xl else sd15_unet(in_channels=9)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    index = json.loads((folder / "model_index.json").read_text())  # named as the published inpainting models are
    index["_class_name"] = "StableDiffusionXLInpaintPipeline" if xl else "StableDiffusionInpaintPipeline"
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def kohya_lora(unet, path: Path, rank: int = 4, alpha: float | None = 2.0, seed: int = 1,
               text_encoder=None, te_prefix: str = "lora_te", relative: float | None = None) -> Path:
    """A kohya-format LoRA over the Hyper-SD target modules of `unet`, saved at `path`.

    Keys are `lora_unet_<module path with _>.lora_down.weight / .lora_up.weight / .alpha`, as in
    the published Hyper-SD files; optionally text-encoder keys under `te_prefix`.

    The factors' entries are N(0, 0.1²), which changes a tiny model's image plainly. With `relative`, the down
    factor is scaled by the layer's fan-in and the up factor by the rank instead, so that the update adds
    about `relative` times a unit input's size to each output, as a trained LoRA adds a small part: a
    full-size model with random weights then stays finite in fp16 (with N(0, 0.1²) factors of rank 64, its
    activations grow past 10¹² and fp16 gives NaN).
    """
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}

    def factors(fan_in: int, down_shape: tuple, up_shape: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        down = torch.randn(*down_shape, generator=generator)
        up = torch.randn(*up_shape, generator=generator)
        if relative is None:
            return down * 0.1, up * 0.1
        scale = 1.0 if alpha is None else alpha / rank  # what the loader multiplies the update by
        return down / fan_in**0.5, up * relative / (rank**0.5 * scale)

    def add(prefix: str, module_name: str, module) -> None:
        base = f"{prefix}_{module_name.replace('.', '_')}"
        if isinstance(module, torch.nn.Linear):
            down, up = factors(module.in_features, (rank, module.in_features), (module.out_features, rank))
        else:
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            down, up = factors(fan_in, (rank, module.in_channels, *module.kernel_size), (module.out_channels, rank, 1, 1))
        tensors[f"{base}.lora_down.weight"] = down
        tensors[f"{base}.lora_up.weight"] = up
        if alpha is not None:
            tensors[f"{base}.alpha"] = torch.tensor(float(alpha))

    targets = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
               "conv1", "conv2", "conv_shortcut", "time_emb_proj", "downsamplers.0.conv", "upsamplers.0.conv")
    for name, module in unet.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and name.endswith(targets):
            add("lora_unet", name, module)
    if text_encoder is not None:
        for name, module in text_encoder.named_modules():
            if isinstance(module, torch.nn.Linear) and name.endswith(("q_proj", "k_proj", "v_proj", "out_proj")):
                add(te_prefix, name, module)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def save_controlnet(base: Path, folder: Path, seed: int = 3) -> Path:
    """A tiny ControlNet made from the base model's UNet (as ControlNets are trained), saved as a diffusers folder.

    Its conditioning embedding downsamples once, to the tiny VAE's latent size. The zero convolutions a
    ControlNet starts with get random weights: one that adds nothing would make every ControlNet test pass.
    """
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                       controlnet.controlnet_cond_embedding.conv_out):
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    controlnet.save_pretrained(folder, safe_serialization=True)
    return folder



def save_t2i_adapter(folder: Path, architecture: str, channels: int = 3, seed: int = 23) -> Path:
    """A tiny T2I-Adapter for the tiny base model of `architecture`, as a diffusers folder: SD1.5's `full_adapter`,
    SDXL's `full_adapter_xl`, each shrinking the image to the tiny VAE's latents (2×, where the real ones shrink 8×
    and 16×) and giving features of its UNet's down blocks' widths; `channels` 1 is a sketch adapter's."""
    from diffusers import T2IAdapter

    torch.manual_seed(seed)
    sdxl = architecture == "sdxl"
    adapter = T2IAdapter(in_channels=channels, channels=[32, 64], num_res_blocks=2, downscale_factor=4 if sdxl else 2,
                         adapter_type="full_adapter_xl" if sdxl else "full_adapter")
    adapter.save_pretrained(folder, safe_serialization=True)
    return folder


def t2i_adapter_original(state: dict[str, torch.Tensor], per_level: int = 2) -> dict[str, torch.Tensor]:
    """A diffusers T2I-Adapter's weights under the original names (`conv_in`, `body.K.block1`, `body.K.in_conv`), as
    A1111's and ComfyUI's `t2iadapter_*` files have them."""
    original = {}
    for key, tensor in state.items():
        parts = key.removeprefix("adapter.").split(".")
        if parts[0] == "body" and parts[2] == "resnets":
            original[f"body.{int(parts[1]) * per_level + int(parts[3])}.{'.'.join(parts[4:])}"] = tensor
        elif parts[0] == "body":
            original[f"body.{int(parts[1]) * per_level}.{'.'.join(parts[2:])}"] = tensor
        else:
            original[".".join(parts)] = tensor
    return original


def save_union_controlnet(base: Path, folder: Path, seed: int = 5, control_types: int = 6) -> Path:
    """A tiny ControlNet Union model (xinsir's kind) made from the base model's UNet, as a diffusers folder;
    `control_types` 8 is the ProMax layout. Its zero-initialised parts (the control blocks, the projection of the
    control images' mixed features) get random weights, so the image depends on the control image and its type."""
    from diffusers import ControlNetUnionModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    made = ControlNetUnionModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    width = unet.config.block_out_channels[0]  # the control features' width, which the union parts mix
    config = {key: value for key, value in made.config.items() if key != "_use_default_values"}
    controlnet = ControlNetUnionModel.from_config({**config, "num_control_type": control_types,
                                                   "num_trans_channel": width, "num_proj_channel": width})
    controlnet.load_state_dict({key: value for key, value in made.state_dict().items()
                                if key.split(".")[0] not in ("task_embedding", "transformer_layes", "spatial_ch_projs",
                                                             "control_add_embedding")}, strict=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                       controlnet.controlnet_cond_embedding.conv_out, controlnet.spatial_ch_projs):
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    controlnet.save_pretrained(folder, safe_serialization=True)
    return folder


def save_pose_model(folder: Path, seed: int = 8, plus: bool = False) -> Path:
    """A tiny ViTPose (a ViT backbone and the simple heatmap head, as vitpose-base-simple is: COCO's 17 keypoints)
    saved as transformers saves it, its image processor at 64 × 48 instead of 256 × 192. `plus`: ViTPose+, whose
    backbone has an expert per training dataset (vitpose-plus-base) and the classic decoder."""
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation, VitPoseImageProcessor

    torch.manual_seed(seed)
    experts = {"num_experts": 6, "part_features": 4} if plus else {}
    backbone = VitPoseBackboneConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                                     image_size=[64, 48], patch_size=[8, 8], out_indices=[2], **experts)
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=not plus, num_labels=17)
    VitPoseForPoseEstimation(config).eval().save_pretrained(folder, safe_serialization=True)
    VitPoseImageProcessor(size={"height": 64, "width": 48}).save_pretrained(folder)
    return folder


def save_person_detector(folder: Path, finds_people: bool = True, seed: int = 9) -> Path:
    """A tiny RT-DETR (a ResNet backbone, the hybrid encoder, one decoder layer, three queries) saved as transformers
    saves it, labels "person" and "bicycle" as COCO's first two, its processor at 64 × 64. Its class head is set so
    that every query is a person (`finds_people`) or none is; the boxes are the random network's."""
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrImageProcessor, RTDetrResNetConfig

    torch.manual_seed(seed)
    backbone = RTDetrResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                                  layer_type="basic", out_features=["stage2", "stage3", "stage4"])
    config = RTDetrConfig(backbone_config=backbone, encoder_hidden_dim=16, encoder_in_channels=[16, 16, 32],
                          encoder_ffn_dim=32, encoder_attention_heads=2, encoder_layers=1, d_model=16,
                          decoder_ffn_dim=32, decoder_attention_heads=2, decoder_layers=1, decoder_in_channels=[16] * 3,
                          num_queries=3, num_denoising=0, num_labels=2, id2label={0: "person", 1: "bicycle"},
                          label2id={"person": 0, "bicycle": 1})
    detector = RTDetrForObjectDetection(config).eval()
    with torch.no_grad():
        head = detector.model.decoder.class_embed[0]
        head.weight.zero_()
        head.bias.copy_(torch.tensor([6.0, -6.0] if finds_people else [-6.0, 6.0]))
    detector.save_pretrained(folder, safe_serialization=True)
    RTDetrImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def save_depth_model(folder: Path, seed: int = 7) -> Path:
    """A tiny Depth Anything (a DINOv2 backbone and the DPT head, as Depth-Anything-V2-Small-hf is) saved as
    transformers saves it: config.json, model.safetensors and the image processor's preprocessor_config.json
    (that model's settings, at 56 pixels instead of 518)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(seed)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            image_size=56, patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 64],
                                 fusion_hidden_size=16, head_hidden_size=8)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder, safe_serialization=True)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def upscaler_state(layout: str = "esrgan", scale: int = 4, features: int | None = None, blocks: int = 1,
                   growth: int = 32, seed: int = 11, kernel: int = 7, **dat) -> dict:
    """Random weights of a small upscaler under the key names its kind of file has: "esrgan" (ESRGAN's own layout,
    as 4x-UltraSharp keeps it), "basicsr" (Real-ESRGAN's; at scale 2 folded by a pixel unshuffle as x2plus is, at
    scale 1 by one of 4 as BasicSR folds a 1× model),
    "bsrgan" (BSRGAN's, RealSR's), "compact" (Real-ESRGAN's SRVGGNetCompact; `blocks` is its middle convolutions),
    "span" (with the `eval_conv` copies its files carry; "span-raw": marked `no_norm`), "plksr" (RealPLKSR;
    "plksr-dysample", "plksr-layernorm": its variants; `blocks` is its blocks, `features` a multiple of 4, `kernel`
    its large kernel's size), "dat…", "hat…", "swinir…" (`dat_state`, `hat_state`, `swinir_state`, which `dat` is
    passed on to). `features`: 8 unless told (32 for the transformers)."""
    from hypersd_desktop.engine.upscaler_files import (
        COMPACT, ESRGAN, PLKSR, SPAN, UpscalerLayout, expected_shapes,
    )

    if layout.startswith("dat"):
        return dat_state(layout, scale, blocks, seed, features or 32, **dat)
    if layout.startswith("hat"):
        return hat_state(layout, scale, blocks, seed, features or 32, **dat)
    if layout.startswith("swinir"):
        return swinir_state(layout, scale, blocks, seed, features or 32, **dat)
    features = features or 8

    if layout == "compact":
        shapes = expected_shapes(UpscalerLayout(COMPACT, scale, features, blocks))
    elif layout.startswith("span"):
        shapes = expected_shapes(UpscalerLayout(SPAN, scale, features, 6, normalized=layout == "span"))
        shapes.update({name.replace(".sk.", ".eval_conv."): (*shape[:2], 3, 3) if len(shape) == 4 else shape
                       for name, shape in shapes.items() if ".sk." in name})
    elif layout.startswith("plksr"):
        shapes = expected_shapes(UpscalerLayout(PLKSR, scale, features, blocks, kernel=kernel, split=features // 4,
                                                layer_norm=layout.endswith("layernorm"),
                                                dysample=layout.endswith("dysample")))
    else:
        unshuffle = {2: 2, 1: 4}.get(scale, 1) if layout == "basicsr" else 1  # as BasicSR folds ×2 and ×1
        doublings = {1: 0, 2: 1, 4: 2, 8: 3}[scale * unshuffle]
        shapes = expected_shapes(UpscalerLayout(ESRGAN, scale, features, blocks, growth, doublings, unshuffle))
    generator = torch.Generator().manual_seed(seed)
    state = {name: torch.randn(shape, generator=generator) * (0.2 if name.endswith("weight") and len(shape) == 1
                                                               else 0.05) for name, shape in shapes.items()}
    if "no_norm" in state:
        state["no_norm"] = torch.zeros(1)
    if "to_img.init_pos" in state:
        state["to_img.init_pos"] = (state["to_img.init_pos"] * 4).clamp(-0.5, 0.5)  # offsets within a pixel
    if layout.startswith(("span", "plksr")):
        return state
    if layout == "esrgan":
        return {_esrgan_key(name, blocks, doublings): tensor for name, tensor in state.items()}
    if layout == "bsrgan":
        renames = (("conv_body.", "trunk_conv."), ("body.", "RRDB_trunk."), (".rdb", ".RDB"), ("conv_up", "upconv"),
                   ("conv_hr.", "HRconv."))
        for old, new in renames:
            state = {name.replace(old, new): tensor for name, tensor in state.items()}
    return state


def hat_state(layout: str, scale: int = 4, blocks: int = 1, seed: int = 11, features: int = 32,
              groups: int = 2, heads: int = 2, window: int = 4, compress: int = 3, squeeze: int = 16) -> dict:
    """A HAT as its files hold one (small unless told): "hat" (`groups` of `blocks` + 1 blocks with `features`
    channels and `window`-pixel windows, the cross-attention's windows half as large again, MLPs twice as wide, the
    convolution branch `compress` times narrower and its channel attention `squeeze` times, pixel shuffles from 64
    channels) or
    "hat-plain" (no norm as features become tokens, no convolution ending the groups); with its position indexes."""
    from hypersd_desktop.engine.upscaler_dat import window_index
    from hypersd_desktop.engine.upscaler_files import HAT, HATShape, UpscalerLayout, expected_shapes
    from hypersd_desktop.engine.upscaler_hat import overlap_index

    plain = layout == "hat-plain"
    overlap = window + window // 2
    shape = HATShape((blocks + 1,) * groups, (heads,) * groups, window, overlap, 2 * features, 2 * features,
                     features // compress, max(features // squeeze, 1), True, not plain, not plain, 64)
    state = _transformer_weights(expected_shapes(UpscalerLayout(HAT, scale, features, sum(shape.depths), hat=shape)),
                                 seed)
    state["relative_position_index_SA"] = window_index(window, window)
    state["relative_position_index_OCA"] = overlap_index(window, overlap)
    return state


def _transformer_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Small random weights of `shapes`, the norms' scales near 1, as trained."""
    generator = torch.Generator().manual_seed(seed)
    state = {name: torch.randn(shape, generator=generator) * (0.2 if name.endswith("weight") and len(shape) == 1
                                                              else 0.05) for name, shape in shapes.items()}
    for name in [name for name in state if name.endswith(".weight") and state[name].ndim == 1]:
        state[name] = state[name] + 1
    return state


def swinir_state(layout: str, scale: int = 4, blocks: int = 1, seed: int = 11, features: int = 32, groups: int = 2,
                 heads: int = 2, window: int = 4, trained_at: int = 16) -> dict:
    """A SwinIR as its files hold one (small unless told): `groups` of `blocks` + 1 blocks with `features` channels
    and `window`-pixel windows, MLPs twice as wide, with each block's position index and each shifted block's masks
    at the `trained_at` size, as the published files carry them. "swinir" (classical: pixel shuffles from 64
    channels), "swinir-light" (one pixel shuffle straight from the features), "swinir-real" (real-world:
    nearest-neighbour doublings, three convolutions ending each group, as A1111's SwinIR_4x)."""
    from hypersd_desktop.engine.upscaler_dat import shift_mask, window_index
    from hypersd_desktop.engine.upscaler_files import (
        DIRECT, NEAREST, PIXELSHUFFLE, SWINIR, SwinIRShape, UpscalerLayout, expected_shapes,
    )

    upsampler = {"swinir": PIXELSHUFFLE, "swinir-light": DIRECT, "swinir-real": NEAREST}[layout]
    shape = SwinIRShape((blocks + 1,) * groups, (heads,) * groups, window, 2 * features, True, upsampler == NEAREST,
                        upsampler, 0 if upsampler == DIRECT else 64)  # 64: SwinIR's own, which every file has
    state = _transformer_weights(expected_shapes(UpscalerLayout(SWINIR, scale, features, sum(shape.depths),
                                                                swinir=shape)), seed)
    for group in range(groups):
        for block in range(blocks + 1):
            name = f"layers.{group}.residual_group.blocks.{block}"
            state[f"{name}.attn.relative_position_index"] = window_index(window, window)
            if block % 2:
                mask = shift_mask(trained_at, trained_at, (window, window), (window // 2,) * 2)
                state[f"{name}.attn_mask"] = mask.clone()  # a tensor of its own each, as saved files have them
    return state


def dat_state(layout: str, scale: int = 4, blocks: int = 1, seed: int = 11, features: int = 32,
              groups: int | None = None, heads: int = 2, window: tuple[int, int] = (2, 4)) -> dict:
    """A DAT as its files hold one (small unless told): "dat" (`groups` (2) of `blocks` + 1 blocks with `features`
    channels, feed-forward layers twice as wide, pixel shuffles from 64 channels, as DAT always has), "dat-light"
    (one group ending in three convolutions, one convolution straight into the pixel shuffle) or "dat-tall" (its
    windows turned); with the position tables, the batch norms' step counts and the masks of its shifted blocks at the
    64-pixel size it was trained at, which the files carry."""
    from hypersd_desktop.engine.upscaler_dat import shift_mask, window_index, window_offsets
    from hypersd_desktop.engine.upscaler_files import DAT, DATShape, UpscalerLayout, dat_shifted, expected_shapes

    light = layout == "dat-light"
    window = window[::-1] if layout == "dat-tall" else window
    depths = (blocks + 1,) * (groups or (1 if light else 2))
    shape = DATShape(depths, (heads,) * len(depths), window, 2 * features, True, light, 0 if light else 64)
    shapes = expected_shapes(UpscalerLayout(DAT, scale, features, sum(depths), dat=shape))
    generator = torch.Generator().manual_seed(seed)
    state = {name: torch.randn(shape, generator=generator) * (0.2 if name.endswith("weight") and len(shape) == 1
                                                              else 0.05) for name, shape in shapes.items()}
    for name in [name for name in state if name.endswith(".running_var")]:
        state[name] = state[name].abs() + 0.5
        state[name.replace(".running_var", ".num_batches_tracked")] = torch.tensor(1000)
    for name in [name for name in state if name.endswith(".weight") and state[name].ndim == 1]:
        state[name] = state[name] + 1  # norms' scales near 1, as trained
    for name in [name for name in state if name.endswith(".rpe_biases")]:
        turned = name.endswith("attns.1.rpe_biases")
        height, width = window[::-1] if turned else window
        state[name] = window_offsets(height, width).contiguous()
        state[name.replace("rpe_biases", "relative_position_index")] = window_index(height, width)
    for group, depth in enumerate(depths):
        for block in range(0, depth, 2):
            if dat_shifted(group, block):
                for branch, (height, width) in enumerate((window, window[::-1])):
                    state[f"layers.{group}.blocks.{block}.attn.attn_mask_{branch}"] = \
                        shift_mask(64, 64, (height, width), (height // 2, width // 2)).clone()
    return state


def _esrgan_key(name: str, blocks: int, doublings: int) -> str:
    """BasicSR's name of an RRDBNet tensor in ESRGAN's own layout: a sequence whose layers between the convolutions
    (upsampling, activations) hold no weights but take their numbers."""
    import re

    kind = name.rsplit(".", 1)[1]
    if match := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)", name):
        return f"model.1.sub.{match[1]}.RDB{match[2]}.conv{match[3]}.0.{kind}"
    layer = name.rsplit(".", 1)[0]
    if layer == "conv_body":
        return f"model.1.sub.{blocks}.{kind}"  # the trunk's convolution, after its blocks
    if match := re.fullmatch(r"conv_up(\d)", layer):
        return f"model.{3 * int(match[1])}.{kind}"
    return {"conv_first": f"model.0.{kind}", "conv_hr": f"model.{3 * doublings + 2}.{kind}",
            "conv_last": f"model.{3 * doublings + 4}.{kind}"}[layer]


def save_upscaler(path: Path, layout: str = "esrgan", **shape) -> Path:
    """A small upscaler file (`upscaler_state`) at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(upscaler_state(layout, **shape), str(path))
    return path


def control_lora_tensors(unet, rank: int = 4, seed: int = 13,
                         hint: tuple[int, ...] = (16, 32)) -> dict[str, torch.Tensor]:
    """A tiny Control-LoRA's tensors for `unet`, under diffusers' ControlNet names (`save_control_lora` writes them
    as Stability's files have them). `hint`: the conditioning embedding's widths; (16, 32) downsamples once, to
    the tiny VAE's latents, and the published (16, 32, 96, 256) three times.

    The ControlNet's own parts (`controlnet_cond_embedding`, `controlnet_down_blocks`, `controlnet_mid_block`)
    are whole. The part a ControlNet copies from the base UNet holds, for every convolution and linear layer, a
    low-rank update of the base weight (`<layer>.up` and `<layer>.down`, with no alpha) and its bias whole;
    norms are whole too. Every tensor is random, so a loader that drops or misplaces any gives other outputs."""
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=hint)
    own = ("controlnet_down_blocks.", "controlnet_mid_block.", "controlnet_cond_embedding.")
    layers = {name for name, module in controlnet.named_modules()
              if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and not name.startswith(own)}
    generator = torch.Generator().manual_seed(seed)

    def noise(*shape: int, scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * scale

    tensors: dict[str, torch.Tensor] = {}
    for key, tensor in controlnet.state_dict().items():
        module, part = key.rsplit(".", 1)
        if key.startswith(own):
            tensors[key] = noise(*tensor.shape, scale=0.2)
        elif module in layers and part == "weight":
            out, *rest = tensor.shape
            tensors[f"{module}.up"] = noise(out, rank, *[1] * (len(rest) - 1), scale=0.1)
            tensors[f"{module}.down"] = noise(rank, *rest, scale=0.1)
        else:
            tensors[key] = tensor + noise(*tensor.shape, scale=0.05)
    return tensors


def save_control_lora(unet, path: Path, **shape) -> Path:
    """`control_lora_tensors(unet, **shape)` as Stability's Control-LoRA files hold them: original (cldm) names
    without a prefix (`input_blocks.1.0.in_layers.2.up`, `zero_convs.0.0.weight`, `input_hint_block.0.weight`),
    and the marker tensor `lora_controlnet`."""
    from ldm_format import convert_controlnet

    original = convert_controlnet(control_lora_tensors(unet, **shape), unet.config.layers_per_block, prefix="")
    save_file({**original, "lora_controlnet": torch.zeros(1)}, path)
    return path


def controlnet_from_control_lora(unet, tensors: dict[str, torch.Tensor], hint: tuple[int, ...] = (16, 32)):
    """The ControlNet a Control-LoRA stands for, made the way ComfyUI makes it, from diffusers-named `tensors`:
    a copy of `unet`, each layer's weight plus `up · down`, every other tensor as given."""
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=hint)
    parameters = dict(controlnet.named_parameters())
    with torch.no_grad():
        for key, tensor in tensors.items():
            module, part = key.rsplit(".", 1)
            if part == "up":
                weight = parameters[f"{module}.weight"]
                weight += (tensor.flatten(1) @ tensors[f"{module}.down"].flatten(1)).reshape(weight.shape)
            elif part != "down":
                parameters[key].copy_(tensor)
    return controlnet


def save_image_encoder(path: Path, folder: bool = False, seed: int = 17, projection: int = 16,
                       hidden: int = 32) -> Path:
    """A tiny CLIP image encoder (`CLIPVisionModelWithProjection`, OpenCLIP's 16 heads and GELU), 32 pixels square
    in patches of 8: a folder as h94/IP-Adapter keeps one (config.json, model.safetensors), or its weights alone
    at `path`, as ComfyUI keeps them."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(hidden_size=hidden, intermediate_size=37, projection_dim=projection, num_hidden_layers=2,
                              num_attention_heads=16, image_size=32, patch_size=8, hidden_act="gelu",
                              layer_norm_eps=1e-5)
    torch.manual_seed(seed)
    model = CLIPVisionModelWithProjection(config)
    if folder:
        model.save_pretrained(path, safe_serialization=True)
    else:
        save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))
    return path


def ip_adapter_tensors(unet, embedding: int = 16, seed: int = 19, tokens: int = 4) -> dict[str, torch.Tensor]:
    """A plain IP-Adapter for `unet` in h94's layout: the image projection of an image embedding `embedding` wide
    to `tokens` tokens of the text's width (`image_proj.proj`, `image_proj.norm`), and the key and value layers
    beside each cross-attention, numbered 1, 3, 5 … in the UNet's order of attentions."""
    generator = torch.Generator().manual_seed(seed)
    cross = unet.config.cross_attention_dim
    blocks = list(unet.config.block_out_channels)

    def random(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * 0.3

    tensors = {"image_proj.proj.weight": random(tokens * cross, embedding),
               "image_proj.proj.bias": random(tokens * cross),
               "image_proj.norm.weight": 1 + random(cross), "image_proj.norm.bias": random(cross)}
    number = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            width = blocks[-1]
        else:
            index = int(name.split(".")[1])
            width = blocks[index] if name.startswith("down_blocks") else blocks[::-1][index]
        tensors[f"ip_adapter.{number}.to_k_ip.weight"] = random(width, cross)
        tensors[f"ip_adapter.{number}.to_v_ip.weight"] = random(width, cross)
        number += 2
    return tensors


def save_ip_adapter(base: Path, path: Path, **shape) -> Path:
    """A tiny plain IP-Adapter for the UNet of the diffusers folder `base`, as a safetensors file
    (`ip_adapter_tensors`)."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    save_file(ip_adapter_tensors(unet, **shape), str(path))
    return path


# The tiny tagger's tags: (name, category, weights on the picture's mean blue, green and red (0–1), bias). A
# WD tagger reads BGR, so a red picture scores `red_background` and a blue one `blue_theme`; white scores
# `white_background`; `^_^` and `long_hair` score 0.5 and 0.45 whatever the picture.
TINY_TAGS = (
    ("general", 9, (0, 0, 0), 2.0), ("sensitive", 9, (0, 0, 0), -1.0), ("questionable", 9, (0, 0, 0), -3.0),
    ("explicit", 9, (0, 0, 0), -4.0),
    ("red_background", 0, (-10, -10, 10), -1.0), ("blue_theme", 0, (10, -10, -10), -1.0),
    ("white_background", 0, (5, 5, 5), -12.0), ("^_^", 0, (0, 0, 0), 0.0), ("long_hair", 0, (0, 0, 0), -0.2),
    ("cosplay_(costume)", 0, (0, 0, 2), -1.0), ("hatsune_miku", 4, (0, 8, 0), -2.0),
)


def save_tagger(folder: Path, side: int | str = 448, logits: bool = False, tags=TINY_TAGS,
                names: tuple[str, str] = ("model.onnx", "selected_tags.csv"), half: bool = False) -> Path:
    """A WD tagger in its real files: an ONNX model taking (batch, side, side, 3) BGR 0–255 (in fp16 with `half`)
    and scoring `tags` from the picture's mean colours (sigmoid scores, or logits with `logits`), and its tag list
    as the hub's selected_tags.csv writes it (tag_id,name,category,count). `side` "dynamic" leaves the input's size
    open."""
    import csv

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    dims = ["batch", side, side, 3] if isinstance(side, int) else ["batch", "height", "width", 3]
    weights = np.array([t[2] for t in tags], dtype=np.float32).T  # (3, tags)
    bias = np.array([t[3] for t in tags], dtype=np.float32)
    nodes = [helper.make_node("Cast", ["input"], ["pixels"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["pixels", "axes"], ["means"], keepdims=0),
             helper.make_node("Div", ["means", "full"], ["shares"]),
             helper.make_node("MatMul", ["shares", "weights"], ["scaled"]),
             helper.make_node("Add", ["scaled", "bias"], ["logits" if not logits else "output"])]
    if not logits:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["output"]))
    graph = helper.make_graph(
        nodes, "tiny_tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT16 if half else TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", len(tags)])],
        [numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes"),
         numpy_helper.from_array(np.array(255, dtype=np.float32), "full"),
         numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / names[0]))
    # quoted only where needed, as the hub's files are
    with open(folder / names[1], "w", encoding="utf-8", newline="") as listing:
        csv.writer(listing, lineterminator="\n").writerows(
            [("tag_id", "name", "category", "count")] + [(n, t[0], t[1], 1000 - n) for n, t in enumerate(tags)])
    return folder if names == ("model.onnx", "selected_tags.csv") else folder / names[0]
