"""Prompt editing (`[from:to:when]`) and alternation (`[a|b]`), as AUTOMATIC1111 reads them.

The schedules are checked against the examples in A1111's own documentation of
`get_learned_conditioning_prompt_schedules` and against 400 prompts whose schedules A1111's parser gave
(`prompt_editing_cases.json`, which says how they were made). The engine's images are checked against
diffusers' pipelines given each step's prompt embeddings through their step callback.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hypersd_desktop.engine.prompt_editing import runs, schedule, text_at
from hypersd_desktop.engine.torch_engine import TorchEngine
from hypersd_desktop.engine.types import GenerationRequest

# A1111's examples at 10 steps (its doctest). Its `a [{b|d{:.5] c` example is left out: its comment says it is
# not handled, and A1111's parser reads that prompt as one text (a `|` outside an alternation), as this one does.
A1111_EXAMPLES = [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", [(step, "a" if step % 2 else "(b:1.1)") for step in range(1, 11)]),
    ("[fe|]male", [(step, "female" if step % 2 else "male") for step in range(1, 11)]),
    ("[fe|||]male", [(step, "female" if step % 4 == 1 else "male") for step in range(1, 11)]),
]
CASES = json.loads((Path(__file__).parent / "prompt_editing_cases.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize(("text", "expected"), A1111_EXAMPLES)
def test_schedules_are_a1111s_documented_ones(text, expected):
    assert schedule(text, 10) == expected


def test_schedules_equal_a1111s_parser_on_400_prompts():
    wrong = [(text, steps) for text, steps, expected in CASES
             if schedule(text, steps) != [tuple(entry) for entry in expected]]
    assert len(CASES) == 400 and not wrong


def test_a_step_uses_the_first_text_whose_last_step_is_not_before_it():
    """A1111's sampler counts steps from 0: at 4 steps `[cat:dog:0.5]` (step 2) reads cat for steps 0, 1, 2."""
    entries = schedule("[cat:dog:0.5]", 4)
    assert entries == [(2, "cat"), (4, "dog")]
    assert [text_at(entries, index) for index in range(4)] == ["cat", "cat", "cat", "dog"]
    assert schedule("[cat:dog:0.5]", 1) == [(1, "dog")]  # step 0.5 of 1 is step 0: the edit is done at once
    assert schedule("[cat:dog:1e1]", 4) == [(4, "cat")]  # no decimal point: a step number, past the last
    edited = runs(["a [cat:dog:2]", "[x|y]"], 4)
    assert edited == [(1, ["a cat", "x"]), (2, ["a cat", "y"]), (3, ["a dog", "x"]), (4, ["a dog", "y"])]
    assert runs(["a cat", "(dog:1.2) [x]"], 4) == [(4, ["a cat", "(dog:1.2) [x]"])]
    # LoRA tags are taken out first, as A1111 takes them out: their colons are not an edit's
    assert schedule("[a cat <lora:ink:0.6>:a dog:0.5] <lora:x:1>", 4) == [(2, "a cat"), (4, "a dog")]


def test_only_edits_and_alternations_count_as_edits():
    """Weights and de-emphasis are not edits: such prompts still share a batch."""
    from hypersd_desktop.engine.prompt_editing import has_edits

    for text in ("(masterpiece:1.2), [blurry], a cat", "a [cat]:2", "[a:b]", "<lora:x:0.5> [cat]", "[" * 5000 + ":"):
        assert not has_edits(text), text
    for text in ("a [cat:dog:0.5]", "[cat|dog]", "a [cat::3]", "((x)) [[y]:[z|w]:2]"):
        assert has_edits(text), text


def test_long_and_deep_prompts_are_read_quickly_or_left_as_one_text():
    import time

    started = time.perf_counter()
    assert schedule("[" * 20_000, 8) == [(8, "[" * 20_000)]
    assert len(schedule("a, " * 6_000 + "[cat:dog:0.5]", 8)) == 2
    assert schedule("[a:" * 5_000, 8) == [(8, "[a:" * 5_000)]
    assert time.perf_counter() - started < 20  # quadratic rereading took minutes; read once it is milliseconds
    assert schedule("a | b [c:d:2]", 4) == [(4, "a | b [c:d:2]")]  # a bar outside brackets: one text, as A1111
    assert schedule("[c:d:2] \\", 4) == [(4, "[c:d:2] \\")]  # so is a backslash that escapes nothing


def _reference(pipe, texts_per_step, negatives_per_step, guidance, seed, steps, sdxl):
    """diffusers' pipeline with each step's prompt embeddings (its own `encode_prompt`) put in by its callback."""
    guided = guidance > 1

    def encoded(index):
        if sdxl:
            embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
                texts_per_step[index], device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=guided,
                negative_prompt=negatives_per_step[index] if guided else None)
            if guided:
                return torch.cat([negative, embeds]), torch.cat([negative_pooled, pooled])
            return embeds, pooled
        embeds, negative = pipe.encode_prompt(texts_per_step[index], "cpu", 1, guided,
                                              negatives_per_step[index] if guided else None)
        return (torch.cat([negative, embeds]) if guided else embeds), None

    def callback(_pipe, index, _timestep, _tensors):
        if index + 1 >= steps:
            return {}
        embeds, pooled = encoded(index + 1)
        return {"prompt_embeds": embeds, **({"add_text_embeds": pooled} if sdxl else {})}

    return pipe(prompt=texts_per_step[0], negative_prompt=negatives_per_step[0] if guided else None,
                num_inference_steps=steps, guidance_scale=guidance, generator=[torch.Generator("cpu").manual_seed(seed)],
                width=64, height=64, callback_on_step_end=callback, output_type="np").images[0]


@pytest.mark.parametrize(("architecture", "guidance"), [("sd15", 3.0), ("sdxl", 0.0), ("sdxl", 3.0)])
def test_the_engine_changes_the_prompt_between_steps_as_the_pipelines_would(architecture, guidance, tiny_sd15,
                                                                            tiny_sdxl):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    base = tiny_sdxl if architecture == "sdxl" else tiny_sd15
    prompt, negative = "a [cat:dog:2] on a mat", "[blurry|dark]"
    request = GenerationRequest(prompt=prompt, negative_prompt=negative, base_model=str(base), steps=4, width=64,
                                height=64, seed=7, guidance=guidance, device="cpu")
    engine = TorchEngine()
    edited = np.asarray(engine.generate(request)[0].image, dtype=np.int16)

    # steps 0-2 read "cat", step 3 "dog"; the negative alternates from step 0 as blurry, blurry, dark, blurry
    texts = ["a cat on a mat"] * 3 + ["a dog on a mat"]
    negatives = ["blurry", "blurry", "dark", "blurry"]
    assert [text_at(schedule(prompt, 4), index) for index in range(4)] == texts
    assert [text_at(schedule(negative, 4), index) for index in range(4)] == negatives
    pipeline_class = StableDiffusionXLPipeline if architecture == "sdxl" else StableDiffusionPipeline
    pipe = pipeline_class.from_pretrained(base)
    expected = np.round(_reference(pipe, texts, negatives, guidance, 7, 4, architecture == "sdxl") * 255)
    assert np.abs(edited - expected.astype(np.int16)).max() <= 1

    plain = np.asarray(engine.generate(request.replace(prompt="a cat on a mat"))[0].image, dtype=np.int16)
    assert np.abs(edited - plain).max() > 0  # the last step's "dog" counts
    batch = engine.generate(request.replace(batch_size=2))  # the batch's own layout of the replaced embeddings
    assert np.abs(np.asarray(batch[0].image, dtype=np.int16) - edited).max() <= 1  # a batch's float noise


@pytest.mark.parametrize("architecture", ["sd15", "sdxl"])
def test_every_mode_pipeline_lets_the_step_callback_see_the_prompt_embeddings(architecture):
    """The engine replaces an edited prompt's embeddings in place, in the tensors each pipeline hands its step
    callback: every mode's pipeline must hand them over (SDXL's pooled ones too)."""
    import diffusers

    from hypersd_desktop.core.vocab import Mode
    from hypersd_desktop.engine.modes import pipeline_class_name

    wanted = {"prompt_embeds", *({"add_text_embeds"} if architecture == "sdxl" else set())}
    for mode in Mode:
        for controlnet in (False, True):
            pipeline_class = getattr(diffusers, pipeline_class_name(architecture, mode, controlnet))
            assert wanted <= set(pipeline_class._callback_tensor_inputs), pipeline_class.__name__


def test_an_edit_that_changes_nothing_at_these_steps_says_what_is_read(tiny_sd15):
    from hypersd_desktop.engine.planning import plan

    request = GenerationRequest(prompt="a [cat:dog:0.5] on a mat", base_model=str(tiny_sd15), steps=1, guidance=0.0)
    (warning,) = [w for w in plan(request, "sd15").warnings if "Prompt editing" in w]
    assert 'in the prompt changes nothing at 1 step: it reads "a dog on a mat" throughout' in warning
    assert not any("Prompt editing" in w for w in plan(request.replace(steps=4), "sd15").warnings)
    guided = request.replace(steps=2, negative_prompt="[blurry|dark]", guidance=3.0, prompt="a (cat:1.2) [on a mat]")
    (warning,) = [w for w in plan(guided, "sd15").warnings if "Prompt editing" in w]
    assert warning.startswith('Prompt editing in the negative prompt changes nothing at 2 steps: it reads "blurry"')
    assert not any("Prompt editing" in w for w in plan(guided.replace(guidance=0.0), "sd15").warnings)  # unused


def test_an_edited_prompt_is_judged_long_by_the_texts_its_steps_read():
    """Both sides of an edit together may pass 600 tokens while each side fits: no words are dropped then."""
    import tiny_models
    from hypersd_desktop.engine import prompts

    tokenizer = tiny_models.build_pipeline("sd15").tokenizer
    both = "[" + "cat " * 400 + ":" + "cat " * 390 + ":0.5]"  # "cat" is one token of the tiny vocabulary
    assert prompts.length_warnings(tokenizer, both, "", steps=4) == []
    assert prompts.length_warnings(tokenizer, both, "")  # read as one text, as before: too long
    (warning,) = prompts.length_warnings(tokenizer, "[" + "cat " * 600 + "zebra:cat:0.5]", "", steps=4)
    assert 'this part was dropped: "zebra"' in warning


def test_a1111s_and_is_named_as_read_as_one_text(tiny_sd15):
    from hypersd_desktop.engine.planning import plan

    request = GenerationRequest(prompt="a cat AND a dog", base_model=str(tiny_sd15), steps=4, guidance=0.0)
    (warning,) = [w for w in plan(request, "sd15").warnings if "AND" in w]
    assert warning.startswith("The prompt joins parts with AND") and "reads it as one text" in warning
    for text in ("a cat and a dog", "ANDROID, BRANDY", "a cat, dog"):
        assert not any("AND" in w for w in plan(request.replace(prompt=text), "sd15").warnings), text
