"""Other tools' prompt weighting written in A1111's syntax for reuse: NovelAI's braces and V4 weights, InvokeAI's
compel suffixes. Each result is also read with this app's own prompt reader, so the weights are the ones meant."""

from __future__ import annotations

import pytest

from hypersd_desktop.engine.prompts import parse
from hypersd_desktop.gallery.formats.syntax import compel_to_a1111, novelai_to_a1111, reused_prompts


def weights(a1111: str) -> dict[str, float]:
    """Each stripped, non-empty part of an A1111 prompt with its weight, rounded."""
    return {text.strip(" ,"): round(weight, 4) for text, weight in parse(a1111) if text.strip(" ,")}


@pytest.mark.parametrize("novelai, expected, read", [
    # the corpus's sd-metadata/png/novelai-curated.png (NovelAI V4)
    ("1girl, solo, no text, -0.8::feet::, rating:general", "1girl, solo, no text, (feet:-0.8), rating:general",
     {"1girl, solo, no text": 1.0, "feet": -0.8, "rating:general": 1.0}),
    ("{{masterpiece}}, best quality, [[bad hands]]", "(masterpiece:1.1025), best quality, (bad hands:0.907)",
     {"masterpiece": 1.1025, "best quality": 1.0, "bad hands": 0.907}),
    ("{a [b] c}, d", "(a:1.05) b (c:1.05), d", {"a": 1.05, "b": 1.0, "c": 1.05, "d": 1.0}),
    ("artist (style), 1.5::rain, night", r"artist \(style\), (rain, night:1.5)",
     {"artist (style)": 1.0, "rain, night": 1.5}),  # round brackets are plain characters in NovelAI
    ("2::{cat}::", "(cat:2.1)", {"cat": 2.1}),
    ("plain words", "plain words", {"plain words": 1.0}),
])
def test_novelai_weighting_is_written_as_a1111_weights(novelai, expected, read):
    written = novelai_to_a1111(novelai)
    assert written == expected
    assert weights(written) == read


@pytest.mark.parametrize("compel, expected, read", [
    # the corpus's sd-parsers/invokeai_imeta1.png negative prompt
    ("grainy+, photo, compressed jpg+, noisy++, unfocused", "(grainy:1.1), photo, compressed (jpg:1.1), (noisy:1.21), "
     "unfocused", {"grainy": 1.1, "photo, compressed": 1.0, "jpg": 1.1, "noisy": 1.21, "unfocused": 1.0}),
    ("a (red car)1.3 on a (wet road)-- at night", "a (red car:1.3) on a (wet road:0.81) at night",
     {"a": 1.0, "red car": 1.3, "on a": 1.0, "wet road": 0.81, "at night": 1.0}),
    ("(imperfect skin), close-up, t-shirt", "imperfect skin, close-up, t-shirt",  # a group alone weighs 1
     {"imperfect skin, close-up, t-shirt": 1.0}),
    ("(b (c)+ d)1.2", "(b:1.2) (c:1.32) (d:1.2)", {"b": 1.2, "c": 1.32, "d": 1.2}),
    (r"x \(y\) [z]", r"x \(y\) \[z\]", {"x (y) [z]": 1.0}),
])
def test_invokeai_weighting_is_written_as_a1111_weights(compel, expected, read):
    written = compel_to_a1111(compel)
    assert written == expected
    assert weights(written) == read


def test_what_cannot_be_written_is_left_and_other_tools_are_untouched():
    blend = '("a cat", "a dog").blend(0.7, 0.3)'
    assert compel_to_a1111(blend) == blend
    assert reused_prompts("a1111", "{x}", "y+") == ("{x}", "y+", None)
    prompt, negative, note = reused_prompts("novelai", "{x}", "[y]")
    assert (prompt, negative) == ("(x:1.05)", "(y:0.9524)") and "NovelAI weighting" in note
    assert reused_prompts("invokeai", "a cat", "blurry")[2] is None  # nothing to write: no note


def test_novelai_v4_character_prompts_follow_the_prompt_on_reuse():
    """NovelAI V4 keeps a prompt for each character beside the base prompt (the corpus's novelai-full-3char.png):
    read into the image's extra, one a line, and added after the prompt on reuse, in A1111's syntax too."""
    from pathlib import Path

    from hypersd_desktop.gallery.gallery import read_metadata

    corpus = Path(__file__).parent / "corpus" / "sd-metadata" / "png"
    metadata, *_ = read_metadata(corpus / "novelai-full-3char.png")
    assert metadata.extra["Character prompts"].splitlines() == [
        "girl, hatsune miku, spread arms", "girl, kagamine rin, hand up", "boy, kagamine len, hand up"]
    assert "Character negative prompts" not in metadata.extra  # its characters' negatives are empty
    prompt, negative, note = reused_prompts(metadata.format, metadata.prompt, metadata.negative_prompt,
                                            metadata.extra)
    assert prompt.startswith("2girls, 1boy, dancing") and prompt.endswith(
        "no text, girl, hatsune miku, spread arms, girl, kagamine rin, hand up, boy, kagamine len, hand up")
    assert negative == metadata.negative_prompt.strip() and "3 character prompts follow the prompt" in note
    assert read_metadata(corpus / "novelai-full.png")[0].extra == {}  # one without characters
    prompt, negative, note = reused_prompts("novelai", "{dancing}", "lowres", {
        "Character prompts": "girl, {red hair}", "Character negative prompts": "[hat]"})
    assert (prompt, negative) == ("(dancing:1.05), girl, (red hair:1.05)", "lowres, (hat:0.9524)")
    assert "NovelAI weighting" in note and "1 character prompt follows the prompt" in note
    assert reused_prompts("a1111", "x", "y", {"Character prompts": "z"}) == ("x", "y", None)  # NovelAI's only
