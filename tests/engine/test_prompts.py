"""Prompts read as A1111 reads them: emphasis, BREAK, and prompts longer than one window of the text encoder.

The parse cases are the examples in A1111's own documentation of `parse_prompt_attention`
(modules/prompt_parser.py); the encodings are checked against diffusers' `encode_prompt` on the tiny models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tiny_models
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine import conditioning, prompts
from hypersd_desktop.engine.prompts import BREAK, parse
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec

A1111_EXAMPLES = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.3 * 1.1 * 1.1), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
      (", sun, ", 1.1), ("sky", 1.1 ** 4), (".", 1.1)]),
]


@pytest.mark.parametrize(("text", "expected"), A1111_EXAMPLES)
def test_emphasis_parses_as_a1111_documents_it(text, expected):
    parsed = parse(text)
    assert [piece for piece, _ in parsed] == [piece for piece, _ in expected]
    assert [weight for _, weight in parsed] == pytest.approx([weight for _, weight in expected])


def test_parse_reads_weights_breaks_and_stray_brackets():
    assert parse("(cat:0.5) [[dog]]") == [("cat", 0.5), (" ", 1.0), ("dog", pytest.approx(1 / 1.21))]
    assert parse("a:b (c: 1.25 )") == [("a:b ", 1.0), ("c", 1.25)]
    assert parse("lonely) close] and :2)") == [("lonely) close] and :2)", 1.0)]
    assert parse("one BREAK two") == [("one", 1.0), ("BREAK", BREAK), ("two", 1.0)]
    assert parse("BREAKFAST") == [("BREAKFAST", 1.0)]
    assert parse("") == [("", 1.0)]
    assert not prompts.has_syntax("a cat, on a mat: 35mm") and prompts.has_syntax("a (cat)")


@pytest.fixture(scope="module")
def pipes():
    return {architecture: tiny_models.build_pipeline(architecture) for architecture in ("sd15", "sdxl")}


def test_a_plain_prompt_makes_the_pipelines_own_tokens(pipes):
    pipe = pipes["sdxl"]
    text = "the cat, a mat"
    for tokenizer in (pipe.tokenizer, pipe.tokenizer_2):  # padded with the end token, and with "!"
        (window,) = prompts.chunks(tokenizer, text)
        expected = tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
        assert list(window.ids) == expected and not window.weighted
        assert window.length == 2 + len(tokenizer(text, add_special_tokens=False).input_ids)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_long_prompts_are_cut_into_windows_at_commas_and_breaks(pipes):
    tokenizer = pipes["sd15"].tokenizer  # byte-level: a one-letter word is one token

    def inner(window):
        return tokenizer.decode(window.ids[1:window.length - 1]).replace(" ", "")

    text = " ".join("abcdefghij"[i % 10] for i in range(100))
    windows = prompts.chunks(tokenizer, text)
    assert [len(window.ids) for window in windows] == [77, 77] and [w.length for w in windows] == [77, 27]
    assert inner(windows[0]) + inner(windows[1]) == text.replace(" ", ""), "nothing left out, nothing repeated"

    with_comma = " ".join(["q"] * 60) + ", " + " ".join(["z"] * 30)  # the comma is token 61: 14 before the end
    first, second = prompts.chunks(tokenizer, with_comma)
    assert inner(first) == "q" * 60 + "," and inner(second) == "z" * 30

    far_comma = " ".join(["q"] * 40) + ", " + " ".join(["z"] * 60)  # 35 tokens back: cut at 75 tokens
    first, second = prompts.chunks(tokenizer, far_comma)
    assert first.length == 77 and inner(second) == "z" * 26

    one, two = prompts.chunks(tokenizer, "a (cat:1.5) BREAK the mat")
    assert inner(one) == "acat" and inner(two) == "themat"
    assert one.weights[:4] == (1.0, 1.0, 1.5, 1.0) and set(two.weights) == {1.0}


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
@pytest.mark.parametrize("guided", [False, True])
def test_the_encoding_of_a_plain_prompt_equals_the_pipelines(pipes, architecture, guided):
    pipe = pipes[architecture]
    for negative in ("", "blurry"):
        ours = conditioning.prompt_arguments(pipe, architecture, ["the cat", "a mat"], negative, guided)
        theirs = pipe.encode_prompt(["the cat", "a mat"], device="cpu", num_images_per_prompt=1,
                                    do_classifier_free_guidance=guided,
                                    negative_prompt=[negative] * 2 if negative else None)
        if architecture == "sd15":
            theirs = dict(zip(("prompt_embeds", "negative_prompt_embeds"), theirs))
        else:
            theirs = dict(zip(("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
                               "negative_pooled_prompt_embeds"), theirs))
        theirs = {name: value for name, value in theirs.items() if value is not None}
        assert set(ours) == set(theirs)
        for name, value in theirs.items():
            assert torch.equal(ours[name], value), name


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_a_weight_scales_its_tokens_against_the_rest(pipes, architecture):
    pipe = pipes[architecture]
    plain = conditioning.prompt_arguments(pipe, architecture, ["the cat a mat"], "", False)
    same = conditioning.prompt_arguments(pipe, architecture, ["(the cat a mat:1)"], "", False)
    assert torch.equal(plain["prompt_embeds"], same["prompt_embeds"])
    weighted = conditioning.prompt_arguments(pipe, architecture, ["the (cat:1.5) a mat"], "", False)
    window = prompts.chunks(pipe.tokenizer, "the (cat:1.5) a mat")[0]
    heavy = [i for i, weight in enumerate(window.weights) if weight == 1.5]
    assert heavy and len(heavy) < 4
    widths = [pipe.text_encoder.config.hidden_size] + ([pipe.text_encoder_2.config.hidden_size]
                                                       if architecture == "sdxl" else [])
    start = 0
    for width in widths:  # each encoder's output is weighted and scaled back to its own mean
        ours = weighted["prompt_embeds"][0, :, start:start + width].double()
        base = plain["prompt_embeds"][0, :, start:start + width].double()
        ratio = ours / base
        scale = ratio[0].mean()  # the weight-1 positions are all scaled by one factor
        expected = torch.full((77,), float(scale), dtype=torch.float64)
        expected[heavy] *= 1.5
        assert torch.allclose(ratio.mean(dim=1), expected, rtol=1e-3)
        assert ours.mean() == pytest.approx(float(base.mean()), rel=1e-4)
        start += width
    if architecture == "sdxl":  # the pooled embedding is the unweighted one
        assert torch.equal(weighted["pooled_prompt_embeds"], plain["pooled_prompt_embeds"])


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_a_long_prompt_is_its_windows_encoded_one_by_one(pipes, architecture):
    pipe = pipes[architecture]
    first, rest = " ".join(["q"] * 60), " ".join(["z"] * 30)
    arguments = conditioning.prompt_arguments(pipe, architecture, [f"{first}, {rest}"], "blurry", True)
    embeds = arguments["prompt_embeds"]
    assert embeds.shape[1] == 154
    for half, text in ((embeds[:, :77], f"{first},"), (embeds[:, 77:], rest)):
        alone = pipe.encode_prompt(text, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)
        assert torch.equal(half, alone[0])
    negative = arguments["negative_prompt_embeds"]  # the negative is padded with the empty prompt's window
    assert negative.shape == embeds.shape
    empty = pipe.encode_prompt("", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)[0]
    assert torch.equal(negative[:, 77:], empty)
    if architecture == "sdxl":
        pooled = pipe.encode_prompt(f"{first},", device="cpu", num_images_per_prompt=1,
                                    do_classifier_free_guidance=False)[2]
        assert torch.allclose(arguments["pooled_prompt_embeds"], pooled, rtol=0, atol=1e-6)  # batched with the negative


def _pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_the_engine_reads_weights_and_every_word_of_a_long_prompt(architecture, tiny_sd15, tiny_sdxl):
    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    request = GenerationRequest(prompt="a cat", base_model=str(base), steps=2, width=64, height=64, seed=4,
                                guidance=3.0, negative_prompt="the mat")
    engine = TorchEngine()

    def run(**changes):
        results = engine.generate(request.replace(**changes))
        assert not any("dropped" in warning for result in results for warning in result.warnings)
        return _pixels(results[0])

    plain = run()
    assert np.array_equal(run(prompt="(a cat:1)"), plain), "weight 1 is the pipeline's own encoding"
    assert np.abs(run(prompt="a (cat:1.6)") - plain).max() > 0
    long = " ".join(["cat"] * 80)
    assert np.abs(run(prompt=long + " zebra") - run(prompt=long + " mat")).max() > 0, "the words past 75 count"
    assert np.abs(run(negative_prompt=long + " zebra") - run(negative_prompt=long + " mat")).max() > 0
    assert run(prompt=long + " zebra", batch_size=2).shape == plain.shape


def test_lora_tags_are_left_out_of_the_text_and_named_when_no_lora_applies(pipes, tiny_sd15, hyper_lora):
    pipe = pipes["sd15"]
    tagged = conditioning.prompt_arguments(pipe, "sd15", ["the cat <lora:watercolour:0.6>, a mat"], "", False)
    plain = conditioning.prompt_arguments(pipe, "sd15", ["the cat, a mat"], "", False)
    assert torch.equal(tagged["prompt_embeds"], plain["prompt_embeds"])

    request = GenerationRequest(prompt="a cat <lora:watercolour:0.6> <lyco:Hyper-SD15-1step-lora:1>",
                                base_model=str(tiny_sd15), loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),),
                                width=64, height=64)
    (result,) = TorchEngine().generate(request)
    (warning,) = [warning for warning in result.warnings if "tag" in warning]
    assert "<lora:watercolour:0.6> tag is left out" in warning and "Hyper-SD15" not in warning
    alone = TorchEngine().generate(request.replace(prompt="a cat"))[0]
    assert np.array_equal(_pixels(result), _pixels(alone))


def test_clip_skip_reads_the_layer_a1111_and_diffusers_read(pipes, tiny_sd15, tiny_sdxl):
    pipe = pipes["sd15"]
    for clip_skip in (2, 3):  # A1111's clip skip N is diffusers' clip_skip N - 1
        theirs = pipe.encode_prompt("the cat", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False,
                                    clip_skip=clip_skip - 1)[0]
        ours = conditioning.prompt_arguments(pipe, "sd15", ["(the cat:1)"], "", False, clip_skip)["prompt_embeds"]
        assert torch.equal(ours, theirs)
    long = conditioning.prompt_arguments(pipe, "sd15", [" ".join(["q"] * 90)], "", False, 2)["prompt_embeds"]
    tail = pipe.encode_prompt(" ".join(["q"] * 15), device="cpu", num_images_per_prompt=1,
                              do_classifier_free_guidance=False, clip_skip=1)[0]
    assert torch.equal(long[:, 77:], tail)

    engine = TorchEngine()
    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), steps=2, width=64, height=64, seed=2)
    (last,), (skipped,) = engine.generate(request), engine.generate(request.replace(clip_skip=2))
    assert np.abs(_pixels(last) - _pixels(skipped)).max() > 0
    negative = conditioning.prompt_arguments(pipe, "sd15", ["a cat"], "blurry", True, 2)["negative_prompt_embeds"]
    assert torch.equal(negative, pipe.encode_prompt("blurry", device="cpu", num_images_per_prompt=1,
                                                    do_classifier_free_guidance=False, clip_skip=1)[0])

    sdxl = request.replace(base_model=str(tiny_sdxl))
    (plain,), (ignored,) = engine.generate(sdxl), engine.generate(sdxl.replace(clip_skip=2))
    assert np.array_equal(_pixels(plain), _pixels(ignored))
    assert any("Clip skip 2 was ignored" in warning for warning in ignored.warnings)
    with pytest.raises(InputError, match="between 1"):
        request.replace(clip_skip=13)


def test_the_onnx_backend_passes_clip_skip_to_torch(tiny_sd15, hyper_lora):
    from hypersd_desktop.engine import backend

    request = GenerationRequest(prompt="a cat", base_model=str(tiny_sd15), width=64, height=64, clip_skip=2,
                                loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),), device="cpu")
    assert backend.for_request(request).name == "torch"
    assert backend.for_request(request.replace(clip_skip=1)).name == "onnx"
    from hypersd_desktop.engine.onnx.backend import declines

    assert "clip skip" in declines(request)


def test_past_eight_windows_the_rest_is_dropped_and_named(tiny_sd15, pipes):
    tokenizer = pipes["sd15"].tokenizer
    read = " ".join(["q"] * 600)  # eight full windows
    assert len(prompts.chunks(tokenizer, read)) == prompts.MAX_WINDOWS
    assert prompts.dropped_words(tokenizer, read) is None
    assert prompts.dropped_words(tokenizer, read + " z y x") == "z y x"
    assert prompts.dropped_words(tokenizer, read + " z" * 30) == " ".join(["z"] * 12) + " …"

    engine = TorchEngine()
    request = GenerationRequest(prompt=read, base_model=str(tiny_sd15), steps=1, width=64, height=64, seed=3,
                                guidance=0.0)
    (whole,) = engine.generate(request)
    assert not any("dropped" in warning for warning in whole.warnings)
    (cut,) = engine.generate(request.replace(prompt=read + " zebra"))
    (warning,) = [warning for warning in cut.warnings if "dropped" in warning]
    assert "longer than the 600 tokens" in warning and '"zebra"' in warning
    assert np.array_equal(_pixels(cut), _pixels(whole))

    with pytest.raises(InputError, match="20,001 characters; the limit is 20,000"):
        request.replace(negative_prompt="x" * 20_001)


def test_comfyuis_embedding_prefix_reads_as_the_bare_name(pipes):
    from hypersd_desktop.core.prompt_tags import embeddings_by_name

    assert embeddings_by_name("embedding:EasyNegative, worst quality") == "EasyNegative, worst quality"
    assert embeddings_by_name("(embedding:EasyNegative.safetensors:1.2), x") == "(EasyNegative:1.2), x"
    assert embeddings_by_name("embedding:negatives/bad_hands.pt") == "bad_hands"
    assert embeddings_by_name("an embedding: of sorts") == "an embedding: of sorts"
    tokenizer = pipes["sd15"].tokenizer
    assert prompts.has_syntax("embedding:mat, the cat")
    assert prompts.chunks(tokenizer, "embedding:mat.pt, the cat") == prompts.chunks(tokenizer, "mat, the cat")
