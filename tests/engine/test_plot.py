"""X/Y/Z plots' axes as A1111's X/Y/Z plot reads them, the requests a plot makes, and its labelled grid."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import Scheduler
from hypersd_desktop.engine.plot import (
    MOST_CELLS, SCRIPT, Axis, PlotAxis, PlotSpec, axis_values, joined_values, plot_grid, split_values,
)
from hypersd_desktop.engine.types import DetailPass, GenerationRequest, LoraSpec

BASE = GenerationRequest(prompt="a cat on a red sofa", negative_prompt="blurry cat", base_model="/m/sd15", seed=7,
                         steps=4, batch_size=3, loras=(LoraSpec("/l/detail.safetensors", 0.6),
                                                       LoraSpec("/l/Hyper-SD15-4steps-lora.safetensors", 1.0)))


@pytest.mark.parametrize(("axis", "text", "values"), [
    (Axis.STEPS, "1, 2,4 ,8", [1, 2, 4, 8]),
    (Axis.STEPS, "1-5", [1, 2, 3, 4, 5]),
    (Axis.STEPS, "1-9 (+2)", [1, 3, 5, 7, 9]),
    (Axis.STEPS, "10-1 (-3)", [10, 7, 4, 1]),
    (Axis.STEPS, "8-5", [8, 7, 6, 5]),
    (Axis.STEPS, "1-10 [4]", [1, 4, 7, 10]),
    (Axis.STEPS, "1-2, 6-8 (+2), 12", [1, 2, 6, 8, 12]),
    (Axis.GUIDANCE, "0.5-1 (+0.25)", [0.5, 0.75, 1.0]),
    (Axis.GUIDANCE, "1-2 [3], 7", [1.0, 1.5, 2.0, 7.0]),
    (Axis.GUIDANCE, "0-0.3 (+0.1)", [0.0, 0.1, 0.2, 0.3]),  # 0.1 steps arrive at their end despite rounding
    (Axis.LORA_WEIGHT, "-0.5, .25", [-0.5, 0.25]),
    (Axis.SEED, "-1, 5, 2-3", [-1, 5, 2, 3]),
    (Axis.SEED, "9223372036854775806, 9223372036854775800-9223372036854775807 [3]",  # exactly, as big as they are
     [2**63 - 2, 2**63 - 8, 2**63 - 5, 2**63 - 1]),
    (Axis.PROMPT, 'red, "green, striped", blue', ["red", "green, striped", "blue"]),
    (Axis.SCHEDULER, "TCD, DDIM, lcm, ddim-trailing, the model's own",
     [Scheduler.TCD, Scheduler.DDIM_TRAILING, Scheduler.LCM, Scheduler.DDIM_TRAILING, Scheduler.BASE]),
])
def test_values_are_read_as_a1111s_xyz_plot_reads_them(axis, text, values):
    assert axis_values(axis, text) == values


@pytest.mark.parametrize(("axis", "text", "said"), [
    (Axis.STEPS, "", "type the values"),
    (Axis.STEPS, "0, 4", "Steps 0 cannot be used: the values must be from 1 to 100"),
    (Axis.STEPS, "1.5", "Steps: 1.5 is not a whole number"),
    (Axis.STEPS, "four", "'four' is not a whole number or a range"),
    (Axis.STEPS, "1-5 (-1)", "a step of -1 never goes from 1 to 5"),
    (Axis.STEPS, "1-5 (+0)", "a step of 0"),
    (Axis.STEPS, "1-1000", "1000 values; a plot makes at most 100"),
    (Axis.STEPS, "1-9 [0]", "the count in brackets must be from 1 to 100"),
    (Axis.GUIDANCE, "31", "from 0 to 30"),
    (Axis.STRENGTH, "0, 0.5", "above 0 and at most 1"),
    (Axis.SCHEDULER, "Euler a", "No sampler is called 'Euler a'; choose one of"),
    (Axis.SEED, "-2", "Seed -2 cannot be used"),
    (Axis.PROMPT, '"unclosed, a', None),  # read as text: a CSV line's quotes are lenient, as A1111's are
])
def test_values_that_cannot_be_used_say_which_and_why(axis, text, said):
    if said is None:
        assert axis_values(axis, text)
        return
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        axis_values(axis, text)


def test_axes_are_named_by_their_value_or_a1111s_label():
    assert [Axis.named(name) for name in ("steps", "CFG Scale", "cfg scale", "Prompt S/R", "lora_weight",
                                          "Var. strength", "sampler")] == [
        Axis.STEPS, Axis.GUIDANCE, Axis.GUIDANCE, Axis.PROMPT, Axis.LORA_WEIGHT, Axis.VARIATION_STRENGTH,
        Axis.SCHEDULER]
    with pytest.raises(InputError, match="No plot axis is called 'size'"):
        Axis.named("size")
    assert split_values(" a , ,b,\n c ") == ["a", "b", "c"]


def test_each_image_is_the_base_request_with_the_columns_and_rows_values_one_image_each():
    spec = PlotSpec(BASE, PlotAxis(Axis.STEPS, "1, 2, 4"), PlotAxis(Axis.PROMPT, "red, green"))
    cells = spec.cells()
    assert [(cell.column, cell.row) for cell in cells] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert [cell.request.steps for cell in cells] == [1, 2, 4] * 2
    assert [cell.request.prompt for cell in cells] == ["a cat on a red sofa"] * 3 + ["a cat on a green sofa"] * 3
    assert all(cell.request.batch_size == 1 and cell.request.seed == 7 for cell in cells)
    assert cells[3].request == BASE.replace(steps=1, prompt="a cat on a green sofa", batch_size=1)
    assert spec.shape() == (3, 2, 1) and spec.describe() == "X/Y/Z plot of 6 images: Steps × Prompt S/R"
    assert [spec.place(cell) for cell in cells[2:4]] == ["Steps: 4, red", "Steps: 1, green"]
    assert spec.x.labels() == ["Steps: 1", "Steps: 2", "Steps: 4"] and spec.y.labels() == ["red", "green"]
    assert spec.text_fields() == [("Script", SCRIPT), ("X Type", "Steps"), ("X Values", "1, 2, 4"),
                                  ("Y Type", "Prompt S/R"), ("Y Values", "red, green")]


@pytest.mark.parametrize(("axis", "text", "field", "expected"), [
    (Axis.SEED, "3, 9", "seed", [3, 9]),
    (Axis.GUIDANCE, "1, 2.5", "guidance", [1.0, 2.5]),
    (Axis.SCHEDULER, "tcd, lcm", "scheduler", [Scheduler.TCD, Scheduler.LCM]),
    (Axis.CLIP_SKIP, "1-2", "clip_skip", [1, 2]),
    (Axis.ETA, "0.3, 1", "eta", [0.3, 1.0]),
    (Axis.VARIATION_STRENGTH, "0.1, 0.2", "variation_strength", [0.1, 0.2]),
])
def test_each_axis_sets_its_setting(axis, text, field, expected):
    cells = PlotSpec(BASE, PlotAxis(axis, text)).cells()
    assert [getattr(cell.request, field) for cell in cells] == expected
    assert all(cell.request.replace(**{field: getattr(BASE, field)}, batch_size=3) == BASE
               for cell in cells if axis != Axis.VARIATION_STRENGTH)


def test_the_prompt_axis_replaces_its_first_value_in_both_prompts_and_must_find_it():
    cells = PlotSpec(BASE, PlotAxis(Axis.PROMPT, "cat, dog")).cells()
    assert [(c.request.prompt, c.request.negative_prompt) for c in cells] == [
        ("a cat on a red sofa", "blurry cat"), ("a dog on a red sofa", "blurry dog")]
    with pytest.raises(InputError, match="'owl' .* is in neither the prompt nor the negative prompt"):
        PlotSpec(BASE, PlotAxis(Axis.PROMPT, "owl, cat")).cells()


def test_lora_weight_is_the_hyper_sd_loras_or_the_first_loras_and_needs_one():
    cells = PlotSpec(BASE, PlotAxis(Axis.LORA_WEIGHT, "0.5, 1")).cells()
    assert [[lora.weight for lora in cell.request.loras] for cell in cells] == [[0.6, 0.5], [0.6, 1.0]]
    plain = BASE.replace(loras=(LoraSpec("/l/detail.safetensors", 0.6), LoraSpec("/l/style.safetensors", 0.3)))
    cells = PlotSpec(plain, PlotAxis(Axis.LORA_WEIGHT, "0.2")).cells()
    assert [lora.weight for lora in cells[0].request.loras] == [0.2, 0.3]
    with pytest.raises(InputError, match="choose a LoRA first"):
        PlotSpec(BASE.replace(loras=()), PlotAxis(Axis.LORA_WEIGHT, "0.2")).cells()


def test_denoising_is_the_init_images_strength_or_the_hires_fixs_and_needs_one():
    picture = "a" * 64
    cells = PlotSpec(BASE.replace(init_image=picture), PlotAxis(Axis.STRENGTH, "0.3, 0.6")).cells()
    assert [cell.request.strength for cell in cells] == [0.3, 0.6]
    cells = PlotSpec(BASE.replace(hires_scale=2.0, width=512, height=512), PlotAxis(Axis.STRENGTH, "0.4")).cells()
    assert cells[0].request.hires_strength == 0.4 and cells[0].request.strength == BASE.strength
    with pytest.raises(InputError, match="add an init image"):
        PlotSpec(BASE, PlotAxis(Axis.STRENGTH, "0.4")).cells()


def test_the_face_strength_is_detail_faces_and_needs_it():
    """ADetailer's axis: its own name (as A1111's grids write it) and the app's both choose it; its label is short."""
    faces = DetailPass("/p/vitpose-base-simple", "/p/rtdetr", strength=0.4, prompt="freckles")
    cells = PlotSpec(BASE.replace(face_detail=faces), PlotAxis(Axis.FACE_STRENGTH, "0.2-0.6 (+0.2)")).cells()
    assert [cell.request.face_detail for cell in cells] == [dataclasses.replace(faces, strength=value)
                                                            for value in (0.2, 0.4, 0.6)]
    assert Axis.named("[ADetailer] ADetailer denoising strength 1st") == Axis.named("face-strength") == \
        Axis.named("Face strength") == Axis.FACE_STRENGTH
    with pytest.raises(InputError, match="turn Detail faces on"):
        PlotSpec(BASE, PlotAxis(Axis.FACE_STRENGTH, "0.4")).cells()
    with pytest.raises(InputError, match="above 0 and at most 1"):
        PlotSpec(BASE.replace(face_detail=faces), PlotAxis(Axis.FACE_STRENGTH, "0, 0.5")).cells()


def test_the_hand_strength_is_detail_hands_and_needs_it():
    hands = DetailPass("/p/vitpose-base-simple", "/p/rtdetr", strength=0.4)
    both = BASE.replace(face_detail=hands, hand_detail=hands)
    cells = PlotSpec(both, PlotAxis(Axis.HAND_STRENGTH, "0.3, 0.6")).cells()
    assert [(cell.request.face_detail.strength, cell.request.hand_detail.strength) for cell in cells] == [
        (0.4, 0.3), (0.4, 0.6)]  # the hands' alone
    assert Axis.named("Hand strength") == Axis.named("hand-strength") == Axis.HAND_STRENGTH
    with pytest.raises(InputError, match="turn Detail hands on \\(--detail-hands\\) first"):
        PlotSpec(BASE.replace(face_detail=hands), PlotAxis(Axis.HAND_STRENGTH, "0.4")).cells()


def test_a_variation_strength_varies_by_the_requests_variation_seed_or_the_next_seed():
    cells = PlotSpec(BASE, PlotAxis(Axis.VARIATION_STRENGTH, "0, 0.5")).cells()
    assert [(c.request.variation_seed, c.request.variation_strength) for c in cells] == [(8, 0.0), (8, 0.5)]
    cells = PlotSpec(BASE.replace(variation_seed=99), PlotAxis(Axis.VARIATION_STRENGTH, "0.5")).cells()
    assert cells[0].request.variation_seed == 99


def test_random_seeds_are_chosen_once_and_written_as_the_seeds_made():
    spec = PlotSpec(BASE, PlotAxis(Axis.STEPS, "1, 2"), PlotAxis(Axis.SEED, "-1, 5, -1"))
    fixed = spec.fixed(random.Random(3))
    seeds = fixed.y.parsed()
    assert seeds[1] == 5 and -1 not in seeds and seeds[0] != seeds[2]
    assert fixed.x == spec.x and fixed.fixed(random.Random(4)) == fixed  # once fixed, they stay
    assert ("Y Values", fixed.y.values) in fixed.text_fields() and "-1" not in fixed.y.values
    checked = spec.cells()  # a plot not fixed yet is checked with seeds chosen for it
    assert len(checked) == 6 and all(cell.request.seed >= 0 for cell in checked)


def test_plots_that_cannot_be_made_say_so_before_any_image_is():
    with pytest.raises(InputError, match="X and Y are both Steps"):
        PlotSpec(BASE, PlotAxis(Axis.STEPS, "1"), PlotAxis(Axis.STEPS, "2")).cells()
    with pytest.raises(InputError, match=f"11 × 10 is 110 images; a plot makes at most {MOST_CELLS}"):
        PlotSpec(BASE, PlotAxis(Axis.STEPS, "1-11"), PlotAxis(Axis.SEED, "1-10")).cells()
    long = "cat " * 6000  # a replacement past the longest prompt read
    with pytest.raises(InputError, match="The image at Steps: 4, (cat ){9}cat… cannot be made: The prompt is 24,015"):
        PlotSpec(BASE, PlotAxis(Axis.STEPS, "4"), PlotAxis(Axis.PROMPT, f"cat, {long}")).cells()


def ink(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """How many pixels of `box` are not white."""
    return int((np.asarray(image.crop(box).convert("L")) < 250).sum())


def test_the_grid_lays_the_images_out_row_by_row_under_their_labels():
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    images = [Image.new("RGB", (64, 48), colour) for colour in colours]
    grid = plot_grid(images, 3, ["Steps: 1", "Steps: 2", "Steps: 4"], ["Seed: 1", "Seed: 2"])
    left, top = grid.width - 3 * 64, grid.height - 2 * 48
    assert left > 0 and top > 0
    for index, image in enumerate(images):  # each image whole, in its place
        x, y = left + (index % 3) * 64, top + (index // 3) * 48
        assert np.array_equal(np.asarray(grid.crop((x, y, x + 64, y + 48))), np.asarray(image))
    for column in range(3):  # a label above each column, and to the left of each row
        assert ink(grid, (left + column * 64, 0, left + (column + 1) * 64, top)) > 20
    for row in range(2):
        assert ink(grid, (0, top + row * 48, left, top + (row + 1) * 48)) > 20
    assert ink(grid, (0, 0, left, top)) == 0  # the corner stays blank

    lone = plot_grid(images[:2], 2, ["a", "b"])  # no rows' axis: no labels on the left
    assert lone.width == 128 and np.array_equal(np.asarray(lone.crop((0, lone.height - 48, 64, lone.height))),
                                                np.asarray(images[0]))


def test_a_long_label_wraps_within_its_column_and_a_smaller_image_keeps_its_size():
    images = [Image.new("RGB", (64, 64), "red"), Image.new("RGB", (32, 32), "blue")]
    label = "a very long replacement text with many words in it"
    grid = plot_grid(images, 2, [label, "b"])
    short = plot_grid(images, 2, ["a", "b"])
    assert grid.width == short.width == 128 and grid.height > short.height  # more lines, not wider
    top = grid.height - 64
    assert np.array_equal(np.asarray(grid.crop((64, top, 96, top + 32))), np.asarray(images[1]))
    assert ink(grid, (96, top, 128, top + 64)) == 0  # the rest of its cell is white


def test_a_grid_past_its_pixels_is_made_of_the_images_made_smaller():
    images = [Image.new("RGB", (1000, 800), colour) for colour in ("red", "green", "blue", "yellow")]
    grid = plot_grid(images, 2, ["a", "b"], ["c", "d"], most_pixels=1_000_000)
    assert 900_000 < grid.width * grid.height <= 1_000_000 and grid.width < 1500  # smaller images, and labels
    assert grid.getpixel((grid.width - 1, grid.height - 1)) == (255, 255, 0)  # the last image, to the corner
    cell = next(x for x in range(grid.width - 1, 0, -1) if grid.getpixel((x, grid.height - 1)) != (255, 255, 0))
    assert 400 < grid.width - 1 - cell < 1000 and grid.getpixel((cell, grid.height - 1)) == (0, 0, 255)
    whole = plot_grid(images[:1], 1, ["a"], most_pixels=1_000_000)
    assert whole.width == 1000  # one image within the pixels: as it is


def test_a_grids_fields_give_its_axes_back_where_they_are_settings_a_plot_here_steps_through():
    from hypersd_desktop.engine.plot import stored_axes

    spec = PlotSpec(BASE, PlotAxis(Axis.STEPS, "1, 2"), PlotAxis(Axis.PROMPT, "red, blue"))
    assert stored_axes(dict(spec.text_fields())) == (spec.x, spec.y, None)
    assert stored_axes({"Script": SCRIPT, "X Type": "CFG Scale", "X Values": "3-7", "Y Type": "Nothing"}) == (
        PlotAxis(Axis.GUIDANCE, "3-7"), None, None)  # A1111's words, in its case or any
    assert stored_axes({"x type": "seed", "x values": "1,2"}) == (PlotAxis(Axis.SEED, "1,2"), None, None)
    assert stored_axes({"X Type": "Checkpoint name", "X Values": "a, b"}) == (PlotAxis(Axis.MODEL, "a, b"), None,
                                                                              None)
    # A1111 writes no X Type where X was Nothing: the plot's first axis goes across here
    assert stored_axes({"Y Type": "Steps", "Y Values": "1"}) == (PlotAxis(Axis.STEPS, "1"), None, None)
    for fields in ({"X Type": "Hires upscaler", "X Values": "a, b"},
                   {"X Type": "Steps", "X Values": "1", "Z Type": "Hires upscaler"}, {}, None, "Steps", {"X Type": 3}):
        assert stored_axes(fields) is None


HYPER_FILES = {"fp16 fix": "/v/sdxl-vae-fp16-fix.safetensors", "one": "/h/Hyper-SD15-1step-lora.safetensors",
               "eight": "/h/Hyper-SD15-8steps-CFG-lora.safetensors",
               "unet": "/h/Hyper-SDXL-1step-Unet.safetensors", "style": "/l/style.safetensors",
               "dream": "/m/dreamshaper_8.safetensors", "real": "/m/realistic vision, v6.safetensors"}


def test_a_hyper_sd_file_takes_the_place_of_the_requests_own_and_runs_at_its_own_recipe():
    base = BASE.replace(steps=4, guidance=1.0, eta=0.5, scheduler="tcd")
    spec = PlotSpec(base, PlotAxis(Axis.HYPER, "one, eight, unet").looked_up(HYPER_FILES.__getitem__))
    one, eight, unet = (cell.request for cell in spec.cells())
    assert one.loras == (LoraSpec(HYPER_FILES["one"], 1.0), LoraSpec("/l/detail.safetensors", 0.6))  # style kept
    assert eight.loras[0].path == HYPER_FILES["eight"] and unet.unet == HYPER_FILES["unet"]
    assert unet.loras == (LoraSpec("/l/detail.safetensors", 0.6),)
    assert all((r.steps, r.guidance, r.eta, r.scheduler, r.recipe) == (None, None, None, Scheduler.AUTO, None)
               for r in (one, eight, unet))  # each file's recipe decides
    assert spec.x.labels() == ["one", "eight", "unet"]
    # a Steps axis sets the steps of each file, whichever way round the axes are
    for x, y in ((PlotAxis(Axis.STEPS, "2"), PlotAxis(Axis.HYPER, "one")),
                 (PlotAxis(Axis.HYPER, "one"), PlotAxis(Axis.STEPS, "2"))):
        (cell,) = PlotSpec(base, x.looked_up(HYPER_FILES.__getitem__), y.looked_up(HYPER_FILES.__getitem__)).cells()
        assert (cell.request.steps, cell.request.loras[0].path) == (2, HYPER_FILES["one"])
    with pytest.raises(InputError, match="style.safetensors is no Hyper-SD file"):
        PlotSpec(base, PlotAxis(Axis.HYPER, "style").looked_up(HYPER_FILES.__getitem__)).cells()
    with pytest.raises(InputError, match="the files its values name were not looked up"):
        PlotSpec(base, PlotAxis(Axis.HYPER, "one")).cells()


def test_a_model_axis_runs_each_model_with_the_same_files_and_not_under_a_unet():
    axis = PlotAxis(Axis.MODEL, 'dream, "real"').looked_up(HYPER_FILES.__getitem__)
    cells = PlotSpec(BASE.replace(base_config="/configs/sd15"), axis).cells()
    assert [(c.request.base_model, c.request.base_config) for c in cells] == [(HYPER_FILES["dream"], None),
                                                                           (HYPER_FILES["real"], None)]
    assert all(c.request.loras == BASE.loras for c in cells)
    assert all(c.request.vae is None for c in cells)  # the request's VAE (its model's own) for each
    own = {HYPER_FILES["dream"]: "/v/dream.vae.safetensors", HYPER_FILES["real"]: None}
    each = PlotAxis(Axis.MODEL, 'dream, "real"').looked_up(HYPER_FILES.__getitem__, own.get)
    cells = PlotSpec(BASE.replace(vae="/v/first-models.vae.safetensors"), each).cells()
    assert [c.request.vae for c in cells] == ["/v/dream.vae.safetensors", None]  # each model's automatic VAE
    assert PlotAxis(Axis.MODEL, joined_values(["real vision, v6", "dream"])).parsed() == ["real vision, v6", "dream"]
    with pytest.raises(InputError, match="1-step UNet takes the place of each model's UNet"):
        PlotSpec(BASE.replace(unet=HYPER_FILES["unet"]), axis).cells()


# Grids' text as A1111 1.6 and 1.7 wrote it, from images shared with public model cards (found with the code search)
A1111_GRIDS = [
    ('1girl\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Script: X/Y/Z plot, X Type: Checkpoint '
     'name, X Values: "me_15_StarlightXLAnimatedV3_noREG-000030.safetensors [f31347de70],me15img\\model\\me_15_Starli'
     'ghtXLAnimatedV3-step00000901.safetensors [4610bf5599]", Version: v1.7.0-133-gde03882d'),
    ("1girl, sitting, outdoors\nSteps: 50, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 448x704, Model hash: "
     '7d7b896083, Model: Counterfeit-V2.2, Script: X/Y/Z plot, X Type: Prompt S/R, X Values: "sitting, standing, '
     'kneeling", Y Type: Prompt S/R, Y Values: "outdoors, indoors"'),
    ("1girl <lora:cru5rb:0.5>\nSteps: 20, Sampler: DPM++ SDE Karras, CFG scale: 5, Seed: 1964718363, Size: 512x512, "
     'Script: X/Y/Z plot, X Type: Prompt S/R, X Values: "<lora:cru5rb:0.5> , <lora:cru5rb:0.6>,<lora:cru5rb:0.7>,  '
     '<lora:cru5rb:0.8> ,<lora:cru5rb:0.9> , <lora:cru5rb:1>,"'),
]


def test_a1111_grids_give_their_axes_back_and_make_the_plot_again_here():
    from hypersd_desktop.engine.plot import stored_axes
    from hypersd_desktop.gallery.formats import parse_a1111

    models, prompts, loras = (parse_a1111(text) for text in A1111_GRIDS)
    installed = {"me_15_starlightxlanimatedv3_noreg-000030.safetensors": "/m/a.safetensors",
                 "me_15_starlightxlanimatedv3-step00000901.safetensors": "/m/b.safetensors"}

    def find(name: str) -> str:  # as the window finds an installed model: by its name or file name, in any case
        if name.lower() not in installed:
            raise InputError(f"{name!r} is no installed model")
        return installed[name.lower()]

    (x, y, _) = stored_axes(models.extra)
    assert y is None and x.axis == Axis.MODEL and x.looked_up(find).files == ("/m/a.safetensors", "/m/b.safetensors")
    base = BASE.replace(prompt=prompts.prompt, negative_prompt="")
    x, y, _ = stored_axes(prompts.extra)  # two Prompt S/R axes: each replaces its own words
    assert [c.request.prompt for c in PlotSpec(base, x, y).cells()] == [
        "1girl, sitting, outdoors", "1girl, standing, outdoors", "1girl, kneeling, outdoors",
        "1girl, sitting, indoors", "1girl, standing, indoors", "1girl, kneeling, indoors"]
    x, *_ = stored_axes(loras.extra)  # spaces around the values and a comma at the end, as typed into A1111
    cells = PlotSpec(BASE.replace(prompt="1girl <lora:cru5rb:0.5>"), x).cells()
    assert [c.request.prompt for c in cells] == [f"1girl <lora:cru5rb:{w}>" for w in ("0.5", "0.6", "0.7", "0.8",
                                                                                      "0.9", "1")]


def test_a_z_axis_makes_a_grid_of_the_x_and_y_axes_for_each_of_its_values():
    spec = PlotSpec(BASE, PlotAxis(Axis.STEPS, "1, 2"), PlotAxis(Axis.PROMPT, "red, green"),
                    PlotAxis(Axis.GUIDANCE, "1, 2.5, 4"))
    cells = spec.cells()
    assert spec.shape() == (2, 2, 3) and len(cells) == 12
    assert spec.describe() == "X/Y/Z plot of 12 images: Steps × Prompt S/R × CFG Scale"
    # grid by grid (A1111's order), each image its three values
    assert [(c.column, c.row, c.layer) for c in cells[:5]] == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1)]
    assert [c.request.guidance for c in cells] == [1.0] * 4 + [2.5] * 4 + [4.0] * 4
    assert cells[7].request == BASE.replace(steps=2, prompt="a cat on a green sofa", guidance=2.5, batch_size=1)
    assert spec.place(cells[7]) == "Steps: 2, green, CFG Scale: 2.5"
    assert spec.places(cells[7]) == {"x": "Steps: 2", "y": "green", "z": "CFG Scale: 2.5"}
    assert dict(spec.text_fields())["Z Type"] == "CFG Scale" and dict(spec.text_fields())["Z Values"] == "1, 2.5, 4"
    from hypersd_desktop.engine.plot import stored_axes
    assert stored_axes(dict(spec.text_fields())) == (spec.x, spec.y, spec.z)

    no_rows = PlotSpec(BASE, PlotAxis(Axis.STEPS, "1, 2"), z=PlotAxis(Axis.SEED, "3, 4"))  # Z without Y
    assert [(c.column, c.row, c.layer, c.request.seed) for c in no_rows.cells()] == [
        (0, 0, 0, 3), (1, 0, 0, 3), (0, 0, 1, 4), (1, 0, 1, 4)]
    assert no_rows.places(no_rows.cells()[3]) == {"x": "Steps: 2", "z": "Seed: 4"}
    assert [name for name, _ in no_rows.text_fields()] == ["Script", "X Type", "X Values", "Z Type", "Z Values"]
    rolled = no_rows.fixed(random.Random(1))
    assert rolled == no_rows  # nothing random: as it was


def test_a_z_axis_is_checked_with_the_others():
    with pytest.raises(InputError, match="X and Z are both Steps"):
        PlotSpec(BASE, PlotAxis(Axis.STEPS, "1"), PlotAxis(Axis.SEED, "1"), PlotAxis(Axis.STEPS, "2")).cells()
    with pytest.raises(InputError, match="Y and Z are both Seed"):
        PlotSpec(BASE, PlotAxis(Axis.STEPS, "1"), PlotAxis(Axis.SEED, "1"), PlotAxis(Axis.SEED, "2")).cells()
    with pytest.raises(InputError, match=f"5 × 5 × 5 is 125 images; a plot makes at most {MOST_CELLS}"):
        PlotSpec(BASE, PlotAxis(Axis.STEPS, "1-5"), PlotAxis(Axis.SEED, "1-5"), PlotAxis(Axis.GUIDANCE, "1-5")).cells()
    with pytest.raises(InputError, match="The image at Steps: 1, Seed: 1, Denoising: 0.5 cannot be made: Denoising"):
        PlotSpec(BASE, PlotAxis(Axis.STEPS, "1"), PlotAxis(Axis.SEED, "1"), PlotAxis(Axis.STRENGTH, "0.5")).cells()
    spec = PlotSpec(BASE, PlotAxis(Axis.STEPS, "1"), z=PlotAxis(Axis.SEED, "-1, -1"))
    fixed = spec.fixed(random.Random(2))  # a Z axis's random seeds are chosen once too
    assert -1 not in fixed.z.parsed() and fixed.fixed() == fixed and len(set(fixed.z.parsed())) == 2


def test_a_z_axis_lays_its_grids_side_by_side_each_under_its_label():
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
    images = [Image.new("RGB", (64, 48), colour) for colour in colours]
    x_labels, y_labels = ["Steps: 1", "Steps: 2"], ["red", "green"]
    one = plot_grid(images[:4], 2, x_labels, y_labels)  # a grid of the first Z value alone
    grid = plot_grid(images, 2, x_labels, y_labels, ["CFG Scale: 1", "CFG Scale: 2"])
    title = grid.height - one.height
    gap = (grid.width - 2 * one.width)
    assert title > 0 and 0 < gap < one.width // 2  # a row of titles above, and a little white between the grids
    for k, left in enumerate((0, one.width + gap)):  # each Z value's grid whole, with its own labels
        sub = grid.crop((left, title, left + one.width, grid.height))
        assert np.array_equal(np.asarray(sub), np.asarray(plot_grid(images[4 * k:4 * k + 4], 2, x_labels, y_labels)))
        assert ink(grid, (left, 0, left + one.width, title)) > 20  # its Z label above it
    assert ink(grid, (one.width, 0, one.width + gap, grid.height)) == 0  # the gap is white
    big = [Image.new("RGB", (1000, 800), colour) for colour in colours]
    small = plot_grid(big, 2, x_labels, y_labels, ["a", "b"], most_pixels=2_000_000)
    assert 1_800_000 < small.width * small.height <= 2_000_000  # past its pixels: made of smaller images, as ever


# A grid's text as A1111's scripts/xyz_grid.py (1.6 on) writes it for an X/Y/Z plot with a Z axis and random seeds:
# X, Y and Z's fields, and the seeds it chose for `-1` as "Fixed … Values" (the code, read with the code search)
A1111_XYZ = ("a lighthouse at dusk\nSteps: 6, Sampler: DPM++ SDE Karras, CFG scale: 2, Seed: 3011426843, "
             "Size: 512x512, Model hash: 879db523c3, Model: dreamshaper_8, Script: X/Y/Z plot, X Type: Seed, "
             "X Values: \"-1, -1\", Fixed X Values: \"3011426843, 1077352161\", Y Type: Steps, Y Values: \"4, 6\", "
             "Z Type: CFG Scale, Z Values: \"1.5,2\", Version: v1.9.4")


def test_an_a1111_xyz_grid_gives_its_three_axes_back_with_the_seeds_it_was_made_with():
    from hypersd_desktop.engine.plot import stored_axes
    from hypersd_desktop.gallery.formats import parse_a1111
    from hypersd_desktop.gallery.formats.common import plot_axes

    metadata = parse_a1111(A1111_XYZ)
    x, y, z = stored_axes(metadata.extra)
    assert (x.axis, y.axis, z.axis) == (Axis.SEED, Axis.STEPS, Axis.GUIDANCE)
    assert x.parsed() == [3011426843, 1077352161] and y.parsed() == [4, 6] and z.parsed() == [1.5, 2.0]
    cells = PlotSpec(BASE, x, y, z).cells()
    assert [(c.request.seed, c.request.steps, c.request.guidance) for c in cells[:3]] == [
        (3011426843, 4, 1.5), (1077352161, 4, 1.5), (3011426843, 6, 1.5)]
    assert plot_axes(metadata.extra) == "Seed (3011426843, 1077352161) × Steps (4, 6) × CFG Scale (1.5,2)"


def test_a_vae_axis_runs_each_vae_the_models_own_or_the_one_chosen_and_follows_a_model_axis():
    base = BASE.replace(vae="/v/chosen.safetensors")
    axis = PlotAxis(Axis.VAE, "fp16 fix, None, Automatic").looked_up(HYPER_FILES.__getitem__)
    assert axis.files == (HYPER_FILES["fp16 fix"], "none", "automatic")
    cells = PlotSpec(base, axis).cells()
    assert [c.request.vae for c in cells] == [HYPER_FILES["fp16 fix"], None, "/v/chosen.safetensors"]
    assert all(c.request.replace(vae=base.vae, batch_size=3) == base for c in cells)  # nothing else changes
    assert axis.labels() == ["VAE: fp16 fix", "VAE: None", "VAE: Automatic"]
    own = {HYPER_FILES["dream"]: "/v/dream.vae.safetensors", HYPER_FILES["real"]: None}
    models = PlotAxis(Axis.MODEL, "dream, real").looked_up(HYPER_FILES.__getitem__, own.get)
    for x, y in ((axis, models), (models, axis)):  # the VAE axis's VAE, whichever way round; Automatic: each model's
        cells = PlotSpec(base, x, y).cells()
        assert sorted((c.request.base_model, str(c.request.vae)) for c in cells) == sorted(
            (model, vae) for model in (HYPER_FILES["dream"], HYPER_FILES["real"])
            for vae in (HYPER_FILES["fp16 fix"], "None", str(own[model])))
    with pytest.raises(InputError, match="'sdxl vae' is no installed"):
        PlotAxis(Axis.VAE, "sdxl vae").looked_up(lambda name: (_ for _ in ()).throw(
            InputError(f"{name!r} is no installed model")))


def test_a_styles_axis_adds_each_style_after_the_chosen_ones_and_its_negative_where_guidance_reads_one(
        tiny_sd15, hyper_lora):
    from hypersd_desktop.core.prompt_styles import PromptStyle
    from hypersd_desktop.engine.plot import stored_axes

    cinematic, ink = PromptStyle("Cinematic", "cinematic still of {prompt}", "cartoon"), PromptStyle("Ink", "ink")
    guided = GenerationRequest(prompt="a fox", negative_prompt="blurry", base_model=str(tiny_sd15), steps=20,
                               guidance=5.0, seed=3)
    axis = PlotAxis(Axis.STYLES, "None, Cinematic, Ink").styled([ink, cinematic, PromptStyle("Unused", "x")])
    assert axis.styles == (PromptStyle("None"), cinematic, ink) and axis.labels() == ["None", "Cinematic", "Ink"]
    cells = PlotSpec(guided, axis).cells()
    assert [(c.request.prompt, c.request.negative_prompt) for c in cells] == [
        ("a fox", "blurry"), ("cinematic still of a fox", "blurry, cartoon"), ("a fox, ink", "blurry")]
    assert all(c.request.replace(prompt="a fox", negative_prompt="blurry") == guided.replace(batch_size=1)
               for c in cells)

    # without guidance no negative prompt is read: none is added; with a CFG axis, only where it reads one
    unguided = guided.replace(negative_prompt="", guidance=None, steps=None,
                              loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora")), 1.0),))
    assert [c.request.negative_prompt for c in PlotSpec(unguided, axis).cells()] == ["", "", ""]
    cells = PlotSpec(guided.replace(negative_prompt=""), PlotAxis(Axis.GUIDANCE, "1, 5"), axis).cells()
    assert [(c.request.guidance, c.request.negative_prompt) for c in cells if c.row == 1] == [
        (1.0, ""), (5.0, "cartoon")]

    spec = PlotSpec(guided, axis)
    assert ("X Type", "Styles") in spec.text_fields() and ("X Values", "None, Cinematic, Ink") in spec.text_fields()
    (back, _, _) = stored_axes(dict(spec.text_fields()))
    assert back == PlotAxis(Axis.STYLES, "None, Cinematic, Ink")  # names: the window looks them up again
    with pytest.raises(InputError, match="were not looked up"):
        PlotSpec(guided, back).cells()
    with pytest.raises(InputError, match="no style is named 'Oil' \\(the styles: Cinematic, Ink\\)"):
        PlotAxis(Axis.STYLES, "Cinematic, Oil").styled([cinematic, ink])
