"""Textual-inversion embeddings: a file's vectors read where its name is in a prompt, as diffusers' own
`load_textual_inversion` reads them, in A1111's file layout (`emb_params`) and SDXL's (`clip_l`, `clip_g`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hypersd_desktop.core.errors import ArchitectureMismatchError, InputError
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.types import GenerationRequest


def _pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


@pytest.fixture(scope="module")
def embedding_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embeddings")
    generator = torch.Generator().manual_seed(11)
    sd15 = folder / "EasyNegative.safetensors"  # A1111's layout: vectors × width
    save_file({"emb_params": torch.randn(3, 32, generator=generator)}, str(sd15))
    sdxl = folder / "y2k_style.safetensors"  # SDXL trainers' layout: both encoders' vectors
    save_file({"clip_l": torch.randn(2, 32, generator=generator), "clip_g": torch.randn(2, 32, generator=generator)},
              str(sdxl))
    return {"sd15": sd15, "sdxl": sdxl}


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_an_embedding_reads_as_diffusers_loads_it(architecture, tiny_sd15, tiny_sdxl, embedding_files):
    from diffusers import AutoPipelineForText2Image
    from safetensors.torch import load_file

    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    path = embedding_files[architecture]
    name = path.stem
    request = GenerationRequest(prompt=f"a cat, {name}", base_model=str(base), steps=2, width=64, height=64, seed=6,
                                guidance=0.0, embeddings=(str(path),))
    engine = TorchEngine()
    (ours,) = engine.generate(request)

    pipe = AutoPipelineForText2Image.from_pretrained(base, local_files_only=True)
    tensors = load_file(str(path))
    if architecture == "sdxl":
        pipe.load_textual_inversion(tensors["clip_l"], token=name, tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder)
        pipe.load_textual_inversion(tensors["clip_g"], token=name, tokenizer=pipe.tokenizer_2,
                                    text_encoder=pipe.text_encoder_2)
    else:
        pipe.load_textual_inversion(tensors["emb_params"], token=name)
    # the prompt's embeddings in the engine's pipeline equal those of diffusers' own loading
    ours_embeds = engine._loaded.pipe.encode_prompt(request.prompt, device="cpu", num_images_per_prompt=1,
                                                    do_classifier_free_guidance=False)[0]
    their_embeds = pipe.encode_prompt(request.prompt, device="cpu", num_images_per_prompt=1,
                                      do_classifier_free_guidance=False)[0]
    assert torch.equal(ours_embeds, their_embeds)

    (plain,) = engine.generate(request.replace(embeddings=()))  # unloaded: the name is words again
    (words,) = TorchEngine().generate(request.replace(embeddings=()))
    assert np.array_equal(_pixels(plain), _pixels(words))
    assert np.abs(_pixels(plain) - _pixels(ours)).max() > 0
    (again,) = engine.generate(request)
    assert np.array_equal(_pixels(again), _pixels(ours))
    (weighted,) = engine.generate(request.replace(prompt=f"(a cat, {name}:1)"))  # A1111's syntax, the engine's encoding
    assert np.array_equal(_pixels(weighted), _pixels(ours))


def test_embeddings_for_another_base_model_are_refused(tiny_sd15, tiny_sdxl, embedding_files, tmp_path):
    request = GenerationRequest(prompt="x", base_model=str(tiny_sdxl), width=64, height=64,
                                embeddings=(str(embedding_files["sd15"]),))
    with pytest.raises(ArchitectureMismatchError, match="EasyNegative.safetensors is for SD1.5; the base model is SDXL"):
        TorchEngine().generate(request)
    wide = tmp_path / "wide.safetensors"
    save_file({"emb_params": torch.zeros(2, 768)}, str(wide))
    with pytest.raises(InputError, match="vectors 768 wide; this base model's text encoder takes 32"):
        TorchEngine().generate(request.replace(base_model=str(tiny_sd15), embeddings=(str(wide),)))
    with pytest.raises(InputError, match="does not exist"):
        TorchEngine().generate(request.replace(base_model=str(tiny_sd15), embeddings=(str(tmp_path / "gone.pt"),)))


def test_automatic_runs_embeddings_on_torch(tiny_sd15, embedding_files):
    from hypersd_desktop.engine import backend
    from hypersd_desktop.engine.onnx.backend import declines

    request = GenerationRequest(prompt="EasyNegative", base_model=str(tiny_sd15), width=64, height=64, device="cpu",
                                scheduler="tcd", steps=1, embeddings=(str(embedding_files["sd15"]),))
    assert declines(request) == "no textual-inversion embeddings"
    assert backend.for_request(request).name == "torch"
    assert backend.for_request(request.replace(embeddings=())).name == "onnx"


def test_a_failed_load_leaves_the_next_request_working(tiny_sd15, embedding_files, tmp_path):
    wide = tmp_path / "wide.safetensors"
    save_file({"emb_params": torch.zeros(2, 768)}, str(wide))
    engine = TorchEngine()
    request = GenerationRequest(prompt="a cat, EasyNegative", base_model=str(tiny_sd15), steps=1, width=64, height=64,
                                embeddings=(str(embedding_files["sd15"]), str(wide)))
    with pytest.raises(InputError, match="768 wide"):
        engine.generate(request)  # the first embedding was loaded before the second failed
    (after,) = engine.generate(request.replace(embeddings=(str(embedding_files["sd15"]),)))
    (fresh,) = TorchEngine().generate(request.replace(embeddings=(str(embedding_files["sd15"]),)))
    assert np.array_equal(_pixels(after), _pixels(fresh))


def test_an_embedding_name_is_read_in_any_case_as_a1111_reads_it(tiny_sd15, embedding_files):
    """A1111's tokenizer lowercases prompts, so "easynegative" applies EasyNegative.safetensors: the same image."""
    from hypersd_desktop.engine.embeddings import in_their_case
    from hypersd_desktop.models.registry import InstalledModel, named_embeddings

    path = embedding_files["sd15"]
    request = GenerationRequest(prompt="a cat, EasyNegative", base_model=str(tiny_sd15), steps=2, width=64, height=64,
                                seed=6, guidance=3.0, negative_prompt="blurry", embeddings=(str(path),))
    engine = TorchEngine()
    exact = _pixels(engine.generate(request)[0])
    for prompt in ("a cat, easynegative", "a cat, EASYNEGATIVE", "a cat, (easyNegative:1)"):
        assert np.array_equal(_pixels(engine.generate(request.replace(prompt=prompt))[0]), exact), prompt
    in_negative = _pixels(engine.generate(request.replace(prompt="a cat", negative_prompt="easynegative"))[0])
    words = _pixels(TorchEngine().generate(request.replace(prompt="a cat", negative_prompt="easynegative",
                                                           embeddings=()))[0])
    assert np.abs(in_negative - words).max() > 0  # read as the embedding in the negative prompt too
    assert in_their_case("x, easy, EASYNEGATIVE_v2", ("/e/EasyNegative.safetensors", "/e/easynegative_V2.safetensors")) \
        == "x, easy, easynegative_V2"  # the longer name first
    model = InstalledModel("easy", "EasyNegative", "embedding", "sd15", "file", str(path), 1, None, None,
                           "import-reference", False)
    assert named_embeddings([model], "a cat", "worst quality, easynegative") == (str(path),)
    assert named_embeddings([model], "a cat, easy negative") == ()
