"""IP-Adapters: a picture steers the image as diffusers' own IP-Adapter code has it steer, with the image encoder
as h94/IP-Adapter keeps it (a folder) or as ComfyUI keeps it (its weights alone); the UNet is as it was once a
request names none; what cannot run is refused with what to do.

The reference side is the diffusers docs' code: the pipeline from the folder, the Hyper-SD LoRA fused, TCD,
`image_encoder` from the encoder's folder, `load_ip_adapter` from the adapter's file, `set_ip_adapter_scale` and
`ip_adapter_image` in the call. Tiny models, fp32, CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hypersd_desktop.core.errors import ArchitectureMismatchError, InputError, ModelFormatError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine import ControlSpec, GenerationRequest, IPAdapterSpec, LoraSpec
from hypersd_desktop.engine.backend import batch_key
from hypersd_desktop.engine.inspect import TensorInfo, inspect_file
from hypersd_desktop.engine.ip_adapter_files import EncoderNeed, encoder_config, need_of
from hypersd_desktop.engine.planning import check_lora_files
from hypersd_desktop.engine.torch_engine import TorchEngine
from pictures import SIZE, diffusers_image, edges_picture, init_picture, png

SEED = 31
PROMPT = "a lighthouse on a cliff"
CLASSES = {("sd15", False): "StableDiffusionPipeline", ("sdxl", False): "StableDiffusionXLPipeline",
           ("sd15", True): "StableDiffusionControlNetImg2ImgPipeline"}


def reference_picture():
    """The picture the adapter reads: not the init image, so that a test that mixed them up would fail."""
    return init_picture().transpose(0).rotate(90)


def as_array(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def diffusers_ip_image(base, lora, adapter, encoder_folder, scales, pictures, controlnet=None, **call):
    import diffusers
    from diffusers import ControlNetModel, TCDScheduler
    from transformers import CLIPVisionModelWithProjection

    architecture = "sdxl" if "xl" in base.name else "sd15"
    extra = {"controlnet": ControlNetModel.from_pretrained(controlnet)} if controlnet else {}
    pipe = getattr(diffusers, CLASSES[architecture, controlnet is not None]).from_pretrained(base, **extra)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    pipe.fuse_lora()
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    pipe.image_encoder = CLIPVisionModelWithProjection.from_pretrained(encoder_folder)
    pipe.load_ip_adapter([str(adapter.parent)] * len(scales), subfolder=[""] * len(scales),
                         weight_name=[adapter.name] * len(scales), image_encoder_folder=None)
    pipe.set_ip_adapter_scale(list(scales))
    return diffusers_image(pipe, prompt=PROMPT, num_inference_steps=2, guidance_scale=0, eta=1.0,
                           generator=torch.Generator("cpu").manual_seed(SEED), ip_adapter_image=list(pictures), **call)


@pytest.mark.parametrize("encoder", ["encoder", "encoder file"])
@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_an_ip_adapter_steers_as_the_diffusers_code_has_it(architecture, encoder, tiny_sd15, tiny_sdxl, hyper_lora,
                                                           ip_adapters, tmp_path):
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    lora = hyper_lora("Hyper-SDXL-1step-lora" if architecture == "sdxl" else "Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    picture = reference_picture()
    spec = IPAdapterSpec(str(ip_adapters[architecture]), str(ip_adapters[encoder]), store.add(png(picture)), 0.6)
    request = GenerationRequest(prompt=PROMPT, base_model=str(base), loras=(LoraSpec(str(lora)),), steps=2, seed=SEED,
                                width=SIZE, height=SIZE, ip_adapters=(spec,))
    engine = TorchEngine(inputs=store)
    (result,) = engine.generate(request)
    expected = diffusers_ip_image(base, lora, ip_adapters[architecture], ip_adapters["encoder"], [0.6], [picture],
                                  width=SIZE, height=SIZE)
    ours = as_array(result.image)
    assert ours.std() > 5
    assert np.abs(ours - as_array(expected)).max() <= 1
    (plain,) = engine.generate(request.replace(ip_adapters=()))
    assert np.abs(as_array(plain.image) - ours).max() > 10  # the picture steers: an adapter left out would not


def test_two_ip_adapters_with_a_controlnet_on_an_init_image(tiny_sd15, hyper_lora, ip_adapters, controlnets, tmp_path):
    """Each with its own picture and scale, in the mode pipeline of image-to-image with a ControlNet."""
    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    pictures = (reference_picture(), edges_picture())
    adapter, encoder = str(ip_adapters["sd15"]), str(ip_adapters["encoder"])
    init, edges = init_picture(), edges_picture()
    request = GenerationRequest(
        prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=2, seed=SEED,
        init_image=store.add(png(init)), strength=1.0,
        controls=(ControlSpec(str(controlnets["sd15"]), store.add(png(edges)), 0.8),),
        ip_adapters=tuple(IPAdapterSpec(adapter, encoder, store.add(png(picture)), scale)
                          for picture, scale in zip(pictures, (0.5, 0.9))))
    (result,) = TorchEngine(inputs=store).generate(request)
    expected = diffusers_ip_image(tiny_sd15, lora, ip_adapters["sd15"], ip_adapters["encoder"], [0.5, 0.9], pictures,
                                  controlnet=controlnets["sd15"], image=init, strength=1.0, control_image=edges,
                                  controlnet_conditioning_scale=0.8)
    assert np.abs(as_array(result.image) - as_array(expected)).max() <= 1


def test_the_unet_is_as_it_was_once_a_request_names_no_ip_adapter(tiny_sd15, hyper_lora, ip_adapters, tmp_path):
    """The adapter's layers go in and out of the UNet the LoRA is fused into, and attention slicing, which gives
    every attention a processor of its own, is off while an adapter runs and back after."""
    lora = hyper_lora("Hyper-SD15-1step-lora")
    store = InputImages(tmp_path / "inputs")
    spec = IPAdapterSpec(str(ip_adapters["sd15"]), str(ip_adapters["encoder"]), store.add(png(reference_picture())),
                         0.8)
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), steps=2,
                                seed=SEED, width=SIZE, height=SIZE)
    engine = TorchEngine(inputs=store)
    (plain,) = engine.generate(request)
    processors = {type(processor).__name__ for processor in engine._loaded.pipe.unet.attn_processors.values()}
    (steered,) = engine.generate(request.replace(ip_adapters=(spec,)))
    (sliced,) = engine.generate(request.replace(ip_adapters=(spec,), attention_slicing=True))
    assert np.array_equal(as_array(sliced.image), as_array(steered.image))
    assert any("Attention slicing is off while an IP-Adapter runs" in warning for warning in sliced.warnings)
    (plain_sliced,) = engine.generate(request.replace(attention_slicing=True))
    (plain_again,) = engine.generate(request)
    unet = engine._loaded.pipe.unet
    assert {type(processor).__name__ for processor in unet.attn_processors.values()} == processors
    assert unet.encoder_hid_proj is None and engine._loaded.pipe.image_encoder is None
    assert np.abs(as_array(plain_sliced.image) - as_array(plain.image)).max() <= 1
    assert np.array_equal(as_array(plain_again.image), as_array(plain.image))
    (unscaled,) = engine.generate(request.replace(ip_adapters=(dataclasses.replace(spec, scale=0.0),)))
    assert np.abs(as_array(unscaled.image) - as_array(plain.image)).max() <= 1  # scale 0: the picture counts nothing


def test_ip_adapters_that_cannot_run_are_refused_with_what_to_do(tiny_sd15, tiny_sdxl, hyper_lora, ip_adapters,
                                                                 tmp_path):
    digest = "ab" * 32
    request = GenerationRequest(prompt=PROMPT, base_model=str(tiny_sd15))

    def check(adapter, encoder, architecture="sd15"):
        check_lora_files(request.replace(ip_adapters=(IPAdapterSpec(str(adapter), str(encoder), digest),)),
                         architecture)

    check(ip_adapters["sd15"], ip_adapters["encoder"])
    with pytest.raises(ArchitectureMismatchError, match="IP-Adapter ip-adapter_sdxl_vit-h.safetensors is for other "
                                                        "models, whose text is 64 wide; this SD1.5 model's is 32"):
        check(ip_adapters["sdxl"], ip_adapters["encoder"])
    real_sdxl = tmp_path / "ip-adapter_sdxl.safetensors"  # as h94's is shaped where it says what it is for
    save_file({"image_proj.proj.weight": torch.zeros(8, 4), "ip_adapter.1.to_k_ip.weight": torch.zeros(4, 2048),
               "ip_adapter.1.to_v_ip.weight": torch.zeros(4, 2048)}, str(real_sdxl))
    assert inspect_file(real_sdxl).architecture == "sdxl"
    with pytest.raises(ArchitectureMismatchError, match="IP-Adapter ip-adapter_sdxl.safetensors is for SDXL; the "
                                                        "base model is SD1.5"):
        check(real_sdxl, ip_adapters["encoder"])
    with pytest.raises(InputError, match="is a LoRA, not an IP-Adapter"):
        check(hyper_lora("Hyper-SD15-1step-lora"), ip_adapters["encoder"])
    with pytest.raises(InputError, match="image encoder .*nowhere does not exist"):
        check(ip_adapters["sd15"], tmp_path / "nowhere")
    with pytest.raises(InputError, match="is a LoRA, not a CLIP image encoder"):
        check(ip_adapters["sd15"], hyper_lora("Hyper-SD15-1step-lora"))
    import tiny_models

    wide = tiny_models.save_image_encoder(tmp_path / "bigG.safetensors", projection=24)
    with pytest.raises(InputError, match=r"reads pictures with a CLIP image encoder 16 wide; the image encoder "
                                         r"bigG.safetensors is a CLIP image encoder 24 wide\. Install"):
        check(ip_adapters["sd15"], wide)
    with pytest.raises(InputError, match="scale must be between 0 and 2"):
        request.replace(ip_adapters=(IPAdapterSpec("a", "e", digest, 2.5),))
    with pytest.raises(InputError, match="one image encoder"):
        request.replace(ip_adapters=(IPAdapterSpec("a", "e", digest), IPAdapterSpec("a", "f", digest)))
    with pytest.raises(InputError, match="IP-Adapter's picture must be named by the sha256"):
        request.replace(ip_adapters=(IPAdapterSpec("a", "e", "picture.png"),))
    stored = request.replace(ip_adapters=(IPAdapterSpec("a", "e", digest, 0.4),))
    assert GenerationRequest.from_json(stored.to_json()) == stored
    assert digest in stored.input_images() and {"a", "e"} <= set(stored.model_paths())
    assert batch_key(stored) is None and batch_key(request) is not None  # runs alone: its picture is not batched


def _info(shape: tuple[int, ...]) -> TensorInfo:
    return TensorInfo("F16", shape)


def test_which_encoder_an_adapter_needs_is_read_from_its_shapes():
    """As h94's files are shaped (SD1.5: 768 wide text; SDXL: 2048): plain adapters take the image embedding, Plus
    and Full Face ones the hidden states; FaceID ones read faces with InsightFace and are refused."""
    plain = {"image_proj.proj.weight": _info((3072, 1024)), "image_proj.norm.weight": _info((768,))}
    plus_sdxl_vit_h = {"image_proj.latents": _info((1, 16, 1280)), "image_proj.proj_in.weight": _info((1280, 1280)),
                       "image_proj.proj_out.weight": _info((2048, 1280))}
    sdxl_bigg = {"image_proj.proj.weight": _info((8192, 1280))}
    full_face = {"image_proj.proj.0.weight": _info((1280, 1280)), "image_proj.proj.3.weight": _info((768,))}
    faceid = {"image_proj.proj.0.weight": _info((1024, 512)), "image_proj.proj.2.weight": _info((3072, 1024)),
              "image_proj.norm.weight": _info((768,))}
    assert need_of("ip-adapter_sd15", plain) == EncoderNeed(1024, hidden=False)
    assert need_of("ip-adapter-plus_sdxl_vit-h", plus_sdxl_vit_h) == EncoderNeed(1280, hidden=True)
    assert need_of("ip-adapter_sdxl", sdxl_bigg).encoder == "OpenCLIP ViT-bigG/14"
    assert need_of("ip-adapter-full-face_sd15", full_face).encoder == "OpenCLIP ViT-H/14"
    with pytest.raises(ModelFormatError, match="FaceID IP-Adapter"):
        need_of("ip-adapter-faceid_sd15", faceid)


def test_an_encoder_file_alone_is_given_the_config_h94_has_for_it():
    """OpenCLIP ViT-H/14 as CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors holds it: the config h94/IP-Adapter's
    models/image_encoder/config.json has (1280 wide, 32 layers of 5120, 16 heads, 224² in patches of 14, 1024-wide
    image embeddings)."""
    tensors = {"vision_model.embeddings.patch_embedding.weight": _info((1280, 3, 14, 14)),
               "vision_model.embeddings.position_embedding.weight": _info((257, 1280)),
               "visual_projection.weight": _info((1024, 1280)),
               **{f"vision_model.encoder.layers.{n}.mlp.fc1.weight": _info((5120, 1280)) for n in range(32)}}
    assert encoder_config("CLIP-ViT-H-14.safetensors", tensors) == dict(
        hidden_size=1280, intermediate_size=5120, projection_dim=1024, num_hidden_layers=32, num_attention_heads=16,
        num_channels=3, patch_size=14, image_size=224, hidden_act="gelu", layer_norm_eps=1e-5)
    with pytest.raises(ModelFormatError, match="no visual_projection.weight"):
        encoder_config("clip_vision.safetensors", {key: info for key, info in tensors.items()
                                                   if key != "visual_projection.weight"})


def test_adapters_and_encoders_are_told_apart_by_their_headers(ip_adapters, tmp_path):
    for name, kind, architecture in (("sd15", "ip_adapter", None), ("encoder file", "image_encoder", None)):
        info = inspect_file(ip_adapters[name])
        assert (info.kind, info.architecture) == (kind, architecture), name
    faceid = tmp_path / "ip-adapter-faceid_sd15.safetensors"
    save_file({"image_proj.proj.0.weight": torch.zeros(4, 2), "image_proj.proj.2.weight": torch.zeros(4, 4),
               "image_proj.norm.weight": torch.zeros(4), "ip_adapter.1.to_k_ip.weight": torch.zeros(4, 4)},
              str(faceid))
    assert inspect_file(faceid).kind == "unknown" and inspect_file(faceid).format.startswith("FaceID IP-Adapter")
