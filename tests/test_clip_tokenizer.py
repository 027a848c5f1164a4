"""The window counts a prompt's tokens with its own CLIP tokenizer (no compute runtime there): it must read text
exactly as transformers' CLIPTokenizer does in the engine, token for token."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest

from hypersd_desktop.core.clip_tokenizer import ClipTokenizer, _kind, clip_tokenizer
from hypersd_desktop.core.resources import resources_dir
from hypersd_desktop.engine import prompts

CORPUS = Path(__file__).parent / "gallery" / "corpus" / "expected.json"


@pytest.fixture(scope="module")
def engine_tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(resources_dir() / "configs" / "sd15" / "tokenizer"))


def texts() -> list[str]:
    """Real prompts (the other tools' files of the metadata corpus), prompts in A1111's syntax, and random text
    over the characters that tokenizers get wrong: accents, combining marks, CJK, kana, hangul, emoji, numbers
    that are no digits, long s, spaces of all kinds, control characters."""
    found = [entry[key] for entry in json.loads(CORPUS.read_text(encoding="utf-8"))["files"].values()
             for key in ("prompt", "negative_prompt") if isinstance(entry.get(key), str)]
    found += ["a (red:1.3) cat, (masterpiece), best quality, 8k uhd, [[blurry]] BREAK on a mat <lora:fox:0.7>",
              "don't it's we're I'M THEY'LL can'ſ 'ſtart", "'''s '' 'x", "<|startoftext|>a<|endoftext|>b", "  ",
              "Ⅷ ² ½ ٣ १२ 12,000", "e\u0301te\u0301 ÉTÉ İstanbul ǅ ß ẞ",
              "photo\u200bof\u00a0a\u3000cat\u2028dog"]
    rng = random.Random(7)
    alphabet = ([chr(c) for c in range(32, 127)] * 4 + [chr(c) for c in range(0xA0, 0x370)]
                + [chr(c) for c in range(0x3040, 0x3100)] + [chr(c) for c in range(0x4E00, 0x4E40)]
                + [chr(c) for c in range(0x1F300, 0x1F330)] + list("\u0345\u017f\u2028\u200b\x85\xb2\u2167\u0966"
                                                                   "\u093f\ufffd\x00\t\n\r\u3000\uac00\u0627\u05d0"))
    found += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(3000)]
    return found


def test_it_reads_every_text_as_the_engine_does(engine_tokenizer):
    mine = clip_tokenizer()
    wrong = [(text, engine_tokenizer(text, add_special_tokens=False).input_ids, mine.encode(text)) for text in texts()]
    wrong = [case for case in wrong if case[1] != case[2]]
    assert not wrong, wrong[:3]
    assert (mine.bos_token_id, mine.eos_token_id, mine.pad_token_id) == (49406, 49407, 49407)  # SD1.5's padding
    assert ClipTokenizer.load(resources_dir() / "configs" / "sdxl" / "tokenizer_2").pad_token_id == 0  # "!" pads
    # SDXL's second encoder
    ids = mine.encode("A red fox , in the snow . It's cold !")
    assert mine.decode(ids) == engine_tokenizer.decode(ids, clean_up_tokenization_spaces=True)


def test_the_windows_and_counts_of_a_prompt_are_the_engines(engine_tokenizer):
    long = "masterpiece, best quality, (a red fox:1.2) in the snow, " * 12
    for text in ("", "a cat", long, long * 6, "a [cat:dog:0.5] BREAK on a mat <lora:fox:0.5>", "[a|b] " * 90):
        assert prompts.counted(clip_tokenizer(), text, 4) == prompts.counted(engine_tokenizer, text, 4)
        assert prompts.chunks(clip_tokenizer(), text) == prompts.chunks(engine_tokenizer, text)
    edited = "a [cat:a very long and winding sentence:2] here"
    assert prompts.counted(clip_tokenizer(), edited, 4) == (8, 1)  # the longer of its texts


def test_an_embedding_counts_as_its_vectors_as_the_engine_spells_it_out():
    """The engine adds an embedding's vectors to the tokenizer as tokens (`NAME`, `NAME_1` …) and diffusers spells
    the name out as all of them; the count takes each name (in any case, glued to a word, weighted, edited, as
    ComfyUI writes it) as that many tokens, and a LoRA tag holding the name as none."""
    from diffusers.loaders.textual_inversion import TextualInversionLoaderMixin
    from transformers import CLIPTokenizer

    from hypersd_desktop.engine.embeddings import in_their_case

    engine = CLIPTokenizer.from_pretrained(str(resources_dir() / "configs" / "sd15" / "tokenizer"))
    vectors = {"EasyNegative": 8, "bad-hands-5": 1, "ng_deepnegative_v1_75t": 75}
    for name, count in vectors.items():
        engine.add_tokens([name] + [f"{name}_{n}" for n in range(1, count)])
    paths = tuple(f"/models/embeddings/{name}.safetensors" for name in vectors)

    def spelled(piece: str) -> str:
        return TextualInversionLoaderMixin._maybe_convert_prompt(None, piece, engine)

    def engine_count(text: str, steps: int) -> tuple[int, int]:
        from hypersd_desktop.engine import prompt_editing

        counts = [(sum(window.length - 2 for window in windows), len(windows)) for windows in
                  (prompts.chunks(engine, in_their_case(step_text, paths), spelled)
                   for _, step_text in prompt_editing.schedule(text, steps))]
        return max(counts, key=lambda count: (count[1], count[0]))

    for text in ("a cat, EasyNegative", "easynegative, (EASYNEGATIVE:1.2), bad-hands-5",
                 "lowres, bad-hands-5EasyNegative",
                 "<lora:EasyNegativeStyle:0.5> a cat", "embedding:EasyNegative, a cat", "worst quality, " * 30 +
                 "EasyNegative, " * 10, "[EasyNegative:a dog:2] on a mat", "ng_deepnegative_v1_75t, a red fox"):
        assert prompts.counted(clip_tokenizer(), text, 4, vectors) == engine_count(text, 4), text
    assert prompts.counted(clip_tokenizer(), "a cat, EasyNegative", 4, vectors) == (11, 1)
    assert prompts.counted(clip_tokenizer(), "ng_deepnegative_v1_75t, a red fox", 4, vectors) == (79, 2)
    assert prompts.counted(clip_tokenizer(), "a cat, EasyNegative", 4) == (5, 1)  # no embedding: its words


def test_the_characters_that_part_pieces_are_the_patterns():
    """CLIP's pattern (the `regex` module's \\p{L}, \\p{N} and \\s, matched ignoring case) against `_kind`, over every
    character that text cleaning keeps."""
    import regex

    pattern = regex.compile(r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", regex.IGNORECASE)
    expected = {"L": lambda c: ["a" + c + "b"], "N": lambda c: ["a", c, "b"], "P": lambda c: ["a", c, "b"],
                " ": lambda c: ["a", "b"]}
    odd = [hex(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF
           and not unicodedata.category(chr(code)).startswith("C")
           and pattern.findall("a" + chr(code) + "b") != expected[_kind(chr(code))](chr(code))]
    assert odd == []
