"""Dynamic prompts ({a|b} choices and __wildcards__, the Dynamic Prompts extension's syntax): each combination
in order, choices made by a seed, wildcard files with comments, folders and choices of their own; the prompt
syntax around them (NovelAI's braces, A1111's [a|b], escapes) left as it is; and the jobs one Generate queues."""

from __future__ import annotations

import itertools

import pytest

from hypersd_desktop.core.dynamic_prompts import Wildcards, chosen, ensure_wildcards, every, is_dynamic
from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.worker.batch import MOST_COMBINATIONS, dynamic_jobs, plan_units, together


def test_each_combination_in_order_with_nested_and_empty_options():
    assert every("a {red|green|blue} {car|bike}") == (
        ["a red car", "a red bike", "a green car", "a green bike", "a blue car", "a blue bike"], False)
    assert every("a {small {old|new} |}house")[0] == ["a small old house", "a small new house", "a house"]
    assert every("{a|b}{c|d}{e|f}", most=5) == (["ace", "acf", "ade", "adf", "bce"], True)


@pytest.mark.parametrize("text", ["a plain prompt", "a {word} as NovelAI stresses it", "a [cat|dog] as A1111 swaps",
                                  "(masterpiece:1.2), [from:to:0.5], \\| kept", "under_scored __ words", ""])
def test_a_prompt_without_choices_is_left_exactly_as_it_is(text):
    assert not is_dynamic(text)
    assert chosen(text, 7) == text and every(text) == ([text], False)


def test_the_prompt_syntax_inside_and_around_choices_is_kept():
    assert every("a [cat|dog] {x|y}")[0] == ["a [cat|dog] x", "a [cat|dog] y"]
    assert every("{a [x|y] b|c}")[0] == ["a [x|y] b", "c"]  # A1111's alternation inside an option is its own
    assert every("{(red:1.2)|{blue}} \\{not a choice\\}")[0] == ["(red:1.2) {not a choice}", "{blue} {not a choice}"]
    assert every("{a\\|b|c}")[0] == ["a|b", "c"]


def test_a_seed_makes_the_same_choices_and_seeds_reach_every_option():
    template = "a {red|green|blue} {car|bike|boat|kite}"
    assert chosen(template, 12) == chosen(template, 12)
    made = {chosen(template, seed) for seed in range(200)}
    assert made == set(every(template)[0])  # twelve combinations, each some seed's


def test_wildcards_from_files_with_comments_folders_and_choices_of_their_own(tmp_path):
    (tmp_path / "styles").mkdir()
    (tmp_path / "colors.txt").write_text("# colours\nred\n\n  teal  \n{dark|light} __shades__\n", encoding="utf-8")
    (tmp_path / "shades.txt").write_text("grey\n", encoding="utf-8")
    (tmp_path / "styles" / "ink.txt").write_text("\ufeffsumi-e\ncomic\n", encoding="utf-8")  # a BOM from Notepad
    wildcards = Wildcards(tmp_path)
    assert is_dynamic("a __colors__ car", wildcards)
    assert every("a __colors__ car, __styles/ink__", wildcards)[0] == [
        "a red car, sumi-e", "a red car, comic", "a teal car, sumi-e", "a teal car, comic",
        "a dark grey car, sumi-e", "a dark grey car, comic", "a light grey car, sumi-e", "a light grey car, comic"]
    (tmp_path / "shades.txt").write_text("silver\n", encoding="utf-8")  # edited while the app runs
    assert "a dark silver car" in every("a __colors__ car", wildcards)[0]


def test_wildcards_that_cannot_be_read_say_what_to_do(tmp_path):
    wildcards = Wildcards(tmp_path)
    with pytest.raises(InputError, match=r"no wildcard file animals.txt in .*Put one there"):
        chosen("a __animals__", 1, wildcards)
    (tmp_path / "loop.txt").write_text("a __loop__\n", encoding="utf-8")
    with pytest.raises(InputError, match="names itself"):
        every("__loop__", wildcards)
    (tmp_path / "empty.txt").write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(InputError, match="has no options"):
        every("__empty__", wildcards)
    (tmp_path.parent / "outside.txt").write_text("secret\n", encoding="utf-8")
    with pytest.raises(InputError, match="no wildcard file"):  # only files in the folder
        every("__../outside__", wildcards)


def test_the_wildcards_folder_is_made_with_a_sample_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERSD_HOME", str(tmp_path))
    folder = ensure_wildcards(AppPaths.default())
    assert every("__colors__", Wildcards(folder))[0][:3] == ["red", "green", "blue"]
    (folder / "colors.txt").write_text("mine\n", encoding="utf-8")
    assert ensure_wildcards(AppPaths.default()) == folder and (folder / "colors.txt").read_text() == "mine\n"


def test_the_jobs_one_generate_queues():
    request = GenerationRequest(prompt="a {red|blue} fox", negative_prompt="{blur|noise}", base_model="m", seed=10,
                                batch_size=2)
    plain, note = dynamic_jobs(request.replace(prompt="a fox", negative_prompt=""), 3, False)
    assert [(job.seed, job.batch_size) for job in plain] == [(10, 2), (12, 2), (14, 2)] and note is None
    each, note = dynamic_jobs(request, 2, True)  # every combination with the same seeds: only the words differ
    assert [(job.prompt, job.seed) for job in each] == [("a red fox", 10), ("a red fox", 12), ("a blue fox", 10),
                                                        ("a blue fox", 12)]
    assert all(job.negative_prompt == chosen("{blur|noise}", job.seed) for job in each)
    assert {(job.prompt_template, job.negative_template) for job in each} == {("a {red|blue} fox", "{blur|noise}")}
    assert (plain[0].prompt_template, plain[0].negative_template) == (None, None)
    assert note == "2 combinations of the prompt queued."
    own, note = dynamic_jobs(request, 3, False)  # each image its own, by its seed
    assert [(job.seed, job.batch_size) for job in own] == [(seed, 1) for seed in range(10, 16)]
    assert [job.prompt for job in own] == [chosen("a {red|blue} fox", seed) for seed in range(10, 16)]
    assert {job.prompt for job in own} == {"a red fox", "a blue fox"}
    many, note = dynamic_jobs(request.replace(prompt="{a|b|c|d|e}{a|b|c|d|e}{a|b|c|d|e}", batch_size=1), 1, True)
    assert len(many) == MOST_COMBINATIONS and "more than 100 combinations" in note


def test_a_batchs_images_with_their_own_choices_are_queued_as_one_job_where_they_can_run_as_one_batch():
    request = GenerationRequest(prompt="a {red|blue} fox", base_model="m", seed=10, batch_size=3)
    own, _ = dynamic_jobs(request, 2, False)  # two batches of three, each image with its own choices
    assert [[job.seed for job in group] for group in together(own, 3)] == [[10, 11, 12], [13, 14, 15]]
    assert together(own, 3)[0] == tuple(own[:3])
    assert [len(group) for group in together(own, 1)] == [1] * 6  # a batch size of one: one image a job
    negative, _ = dynamic_jobs(request.replace(negative_prompt="{blur|noise|grain|haze}"), 2, False)
    runs = [len(list(run)) for _, run in itertools.groupby(negative, key=lambda job: job.negative_prompt)]
    assert len(runs) > 2 and [len(group) for group in together(negative, 6)] == runs  # only with the same negative
    picture, _ = dynamic_jobs(request.replace(init_image="a" * 64), 1, False)
    assert [len(group) for group in together(picture, 3)] == [1, 1, 1]  # from a picture: one by one
    plain, _ = dynamic_jobs(request.replace(prompt="a fox"), 2, False)
    assert together(plain, 3) == [(plain[0],), (plain[1],)]  # a batch of its own already


def test_a_batch_jobs_prompts_make_their_choices_by_each_images_seed(tmp_path):
    (tmp_path / "animals.txt").write_text("fox\nowl\nhare\n", encoding="utf-8")
    defaults = GenerationRequest(prompt="", base_model="m", seed=100)
    units = plan_units([{"prompt": "a __animals__ in {snow|rain}"}, {"prompt": "a plain one"}], defaults, 4,
                       wildcards=Wildcards(tmp_path))
    prompts = [unit.request.prompt for unit in units]
    assert prompts[:4] == [chosen("a __animals__ in {snow|rain}", seed, Wildcards(tmp_path)) for seed in
                           range(100, 104)]
    assert all("__" not in prompt and "{" not in prompt for prompt in prompts) and prompts[4:] == ["a plain one"] * 4
    assert [unit.request.prompt_template for unit in units] == ["a __animals__ in {snow|rain}"] * 4 + [None] * 4


def test_unbalanced_and_odd_prompts_are_read_without_failing():
    assert every("{x|a [b}")[0] == ["x", "a [b"]  # an unclosed [ inside an option ends at the choice's brace
    assert every("a {b|c")[0] == ["a {b|c"] and every("{a|b}}")[0] == ["a}", "b}"]
    assert every("{|}")[0] == ["", ""] and every("{a\\}|b}")[0] == ["a}", "b"]
    import random

    rng = random.Random(5)
    for _ in range(3000):  # any text of the syntax's characters reads as text and choices, or says why it cannot
        text = "".join(rng.choice("{}|[]\\_ab ") for _ in range(rng.randrange(1, 24)))
        try:
            made, _ = every(text, most=50)
            assert chosen(text, 1) in made or len(made) == 50
        except InputError as error:
            assert "wildcard" in str(error)


def test_weights_counts_and_separators_as_the_dynamic_prompts_extension_writes_them(tmp_path):
    assert every("{2$$red|green|blue}")[0] == ["red, green", "red, blue", "green, blue"]
    assert every("{1-2$$ and $$a|b|c}")[0] == ["a", "b", "c", "a and b", "a and c", "b and c"]
    assert every("{3::a|b} {1girl|2girls}")[0] == ["a 1girl", "a 2girls", "b 1girl", "b 2girls"]
    picks = [chosen("{3::a|b}", seed) for seed in range(400)]
    assert 0.65 < picks.count("a") / 400 < 0.85  # three times as likely
    assert {chosen("{2$$x|y|z}", seed) for seed in range(50)} == {"x, y", "x, z", "y, z"}  # two different ones
    (tmp_path / "colors.txt").write_text("red\nteal\ngold\n", encoding="utf-8")
    assert every("{2$$__colors__}", Wildcards(tmp_path))[0] == ["red, teal", "red, gold", "teal, gold"]
    assert every("{5$$a|b}")[0] == ["a, b"] == [chosen("{5$$a|b}", 1)]  # more asked than there are: all
