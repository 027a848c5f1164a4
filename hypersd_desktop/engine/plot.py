"""X/Y/Z plots (A1111's "X/Y/Z plot" script): one request made again with one, two or three of its settings stepped
through lists of values, and the images laid out as a labelled grid (a Z axis: a grid for each of its values, side by
side under their labels).

An axis is a setting and its values as A1111 reads them: a comma-separated list (`1, 2, 4, 8`; a value holding a
comma in double quotes), ranges `1-5` (every whole number), `1-9 (+2)` (a step; `(-2)` counts down), `0.5-1
(+0.25)`, and `1-10 [4]` (that many values spread evenly from the first to the last). A seed of -1 is a new random
seed, fixed when the plot is planned (`PlotSpec.fixed`), so the grid's text says the seeds it was made with.
Prompt S/R replaces its first value, which the prompt or negative prompt must hold, by each value in turn (the
first value is the prompt as it is). Styles adds a prompt style to each image's prompts (its value names one; `None`
adds none), after the Generate tab's own, as A1111's Styles axis adds one to those chosen. Each cell is one image
(the batch size is left out); the grid's PNG text is its first image's with A1111's `Script: X/Y/Z plot, X Type:
Steps, X Values: "1,2,4,8"` added (`Y …` and `Z …` too).

Torch-free: the window checks an axis's values as they are typed.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, ImageDraw, ImageFont

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.prompt_styles import PromptStyle, apply_styles
from hypersd_desktop.core.vocab import ModelKind, Scheduler, TextEnum
from hypersd_desktop.engine.planning import reads_negative
from hypersd_desktop.engine.recipes import recipe_for_file
from hypersd_desktop.engine.types import MAX_CLIP_SKIP, MAX_SEED, MAX_STEPS, GenerationRequest, LoraSpec

MOST_CELLS = 100  # images one plot makes (as many as one Generate's combinations of a dynamic prompt)
RANDOM = -1  # a seed value that stands for a new random seed
SCRIPT = "X/Y/Z plot"  # the name A1111 writes into a grid's text
PLOT_STAGE = "X/Y/Z plot"  # a plot's progress: its images made, in hundredths of an image (`PLOT_PARTS`)
PLOT_PARTS = 100
PLOT_KEY = "plot"  # a grid's stored request keeps its plot's fields under it (reuse leaves unknown keys out)
GRID_MOST_PIXELS = 64 * 2**20  # a larger grid is made of smaller images: Pillow warns of a "bomb" at 89 MP


class Axis(TextEnum):
    """A setting an X/Y/Z plot steps through; `label` is A1111's name for it (written into the grid's text)."""

    SEED = "seed"
    STEPS = "steps"
    GUIDANCE = "guidance"
    PROMPT = "prompt"
    SCHEDULER = "scheduler"
    LORA_WEIGHT = "lora-weight"
    STRENGTH = "strength"
    VARIATION_STRENGTH = "variation-strength"
    CLIP_SKIP = "clip-skip"
    ETA = "eta"
    HYPER = "hyper-sd"
    MODEL = "model"
    VAE = "vae"
    STYLES = "styles"
    FACE_STRENGTH = "face-strength"
    HAND_STRENGTH = "hand-strength"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def named(cls, name: str) -> Axis:
        """The axis `name` is: its value (`steps`) or A1111's label (`CFG Scale`; an extension's axis by its name,
        ADetailer's `[ADetailer] ADetailer denoising strength 1st`), in any case."""
        key = name.strip().lower().replace("_", "-")
        if name.strip().lower() in _OTHER_NAMES:
            return _OTHER_NAMES[name.strip().lower()]
        for axis in cls:
            if key in (axis.value, axis.label.lower(), axis.value.replace("-", " ")):
                return axis
        raise InputError(f"No plot axis is called {name.strip()!r}; choose one of "
                         f"{', '.join(axis.value for axis in cls)}.")


_LABELS = {Axis.SEED: "Seed", Axis.STEPS: "Steps", Axis.GUIDANCE: "CFG Scale", Axis.PROMPT: "Prompt S/R",
           Axis.SCHEDULER: "Sampler", Axis.LORA_WEIGHT: "LoRA weight", Axis.STRENGTH: "Denoising",
           Axis.VARIATION_STRENGTH: "Var. strength", Axis.CLIP_SKIP: "Clip skip", Axis.ETA: "Eta",
           Axis.HYPER: "Hyper-SD file", Axis.MODEL: "Checkpoint name", Axis.VAE: "VAE", Axis.STYLES: "Styles",
           Axis.FACE_STRENGTH: "Face strength", Axis.HAND_STRENGTH: "Hand strength"}
_OTHER_NAMES = {"[adetailer] adetailer denoising strength 1st": Axis.FACE_STRENGTH}  # as A1111's grids write them
_WHOLE = {Axis.SEED, Axis.STEPS, Axis.CLIP_SKIP}
FILES = {Axis.HYPER, Axis.MODEL, Axis.VAE}  # axes whose values name installed files (`PlotAxis.files` holds them)
NAMED = {*FILES, Axis.STYLES}  # axes whose values name what is installed here (files, prompt styles)
NO_STYLE = "none"  # a Styles axis's value that adds no style
# A VAE axis's values besides installed VAEs, as A1111 names them: the model's own VAE, and the request's choice
OWN_VAE, CHOSEN_VAE = "none", "automatic"
# The order axes are applied in: a model or Hyper-SD file first (each brings settings of its own: its automatic VAE,
# its recipe's steps), then a VAE, then the rest (a Steps axis sets the steps a Hyper-SD file brought), and a style
# last (its negative words go where the image, as the other axes left it, reads a negative prompt)
_FIRST = {Axis.HYPER: 0, Axis.MODEL: 0, Axis.VAE: 1, Axis.STYLES: 3}
_WORDS = {Axis.PROMPT, Axis.SCHEDULER, *NAMED}
# A1111's sampler names of the schedulers a Hyper-SD file runs with, besides this app's own names and labels
_SAMPLER_NAMES = {"ddim": Scheduler.DDIM_TRAILING, "automatic": Scheduler.AUTO, "default": Scheduler.AUTO}

_NUMBER = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"
_STEPPED = re.compile(rf"({_NUMBER})\s*-\s*({_NUMBER})(?:\s*\(\s*({_NUMBER})\s*\))?")
_A1111_HASH = re.compile(r"\s*\[[0-9a-fA-F]{8,12}\]$")  # the short hash A1111 writes after a checkpoint's name
_COUNTED = re.compile(rf"({_NUMBER})\s*-\s*({_NUMBER})\s*\[\s*(\d+)\s*\]")


def _number(text: str, whole: bool) -> float:
    text = text.replace(" ", "")
    if not whole:
        return float(text)
    try:
        return int(text)  # exactly: a seed has more digits than a float holds
    except ValueError:
        value = float(text)
    if value != int(value):
        raise InputError(f"{text} is not a whole number.")
    return int(value)


def _range(item: str, whole: bool) -> list[float] | None:
    """The values a range item stands for, or None where `item` is one value."""
    counted = _COUNTED.fullmatch(item)
    if counted:
        start, end = _number(counted[1], whole), _number(counted[2], whole)
        count = int(counted[3])
        if not 1 <= count <= MOST_CELLS:
            raise InputError(f"{item}: the count in brackets must be from 1 to {MOST_CELLS}.")
        if whole:  # A1111 truncates the numbers it spreads, none negative here: floor division, exact for any size
            return [start + (end - start) * k // max(count - 1, 1) for k in range(count)]
        return [round(start + (end - start) * k / max(count - 1, 1), 6) for k in range(count)]
    stepped = _STEPPED.fullmatch(item)
    if not stepped:
        return None
    start, end = _number(stepped[1], whole), _number(stepped[2], whole)
    step = _number(stepped[3], whole) if stepped[3] else (1 if end >= start else -1)
    if step == 0 or (end - start) * step < 0:
        raise InputError(f"{item}: a step of {step:g} never goes from {start:g} to {end:g}.")
    count = math.floor((end - start) / step + 1e-9) + 1
    if count > MOST_CELLS:
        raise InputError(f"{item} is {count} values; a plot makes at most {MOST_CELLS} images.")
    values = [start + step * k for k in range(count)]
    return [int(value) for value in values] if whole else [round(value, 6) for value in values]


def split_values(text: str) -> list[str]:
    """The comma-separated items of `text`, as A1111 reads them (a CSV line: double quotes keep a comma)."""
    try:
        row = next(csv.reader([text.replace("\n", " ")], skipinitialspace=True), [])
    except csv.Error as error:
        raise InputError(f"The values cannot be read: {error}.") from None
    return [item.strip() for item in row if item.strip()]


def joined_values(values: list[str]) -> str:
    """Values as an axis takes them: separated by commas, one holding a comma in double quotes."""
    return ", ".join(f'"{value}"' if "," in value else value for value in values)


def _scheduler(text: str) -> Scheduler:
    key = text.strip().lower()
    for scheduler in Scheduler:
        if key in (scheduler.value, scheduler.label.lower()):
            return scheduler
    if key in _SAMPLER_NAMES:
        return _SAMPLER_NAMES[key]
    raise InputError(f"No sampler is called {text!r}; choose one of "
                     f"{', '.join(scheduler.label for scheduler in Scheduler)}.")


def axis_values(axis: Axis, text: str) -> list:
    """The values `text` gives `axis` (numbers, schedulers or prompt words), each checked; `InputError` says what
    is wrong with the first that cannot be used."""
    items = split_values(text)
    if not items:
        raise InputError(f"{axis.label}: type the values to compare, separated by commas.")
    if axis in _WORDS:
        values = [_scheduler(item) for item in items] if axis == Axis.SCHEDULER else items
    else:
        values = []
        whole = axis in _WHOLE
        for item in items:
            try:
                spread = _range(item, whole)
                values.extend(spread if spread is not None else [_number(item, whole)])
            except ValueError:
                kind = "a whole number" if whole else "a number"
                raise InputError(f"{axis.label}: {item!r} is not {kind} or a range (1-8, 1-8 (+2), 1-8 [4])."
                                 ) from None
            except InputError as error:
                raise InputError(f"{axis.label}: {error}") from None
        for value in values:
            _check(axis, value)
    if len(values) > MOST_CELLS:
        raise InputError(f"{axis.label} has {len(values)} values; a plot makes at most {MOST_CELLS} images.")
    return values


def _check(axis: Axis, value: float) -> None:
    bounds = {Axis.SEED: (0, MAX_SEED), Axis.STEPS: (1, MAX_STEPS), Axis.GUIDANCE: (0, 30),
              Axis.CLIP_SKIP: (1, MAX_CLIP_SKIP), Axis.ETA: (0, 1),
              Axis.LORA_WEIGHT: (-4, 4), Axis.STRENGTH: (0, 1), Axis.VARIATION_STRENGTH: (0, 1),
              Axis.FACE_STRENGTH: (0, 1), Axis.HAND_STRENGTH: (0, 1)}[axis]
    if axis == Axis.SEED and value == RANDOM:
        return
    low, high = bounds
    above_zero = axis in (Axis.STRENGTH, Axis.FACE_STRENGTH, Axis.HAND_STRENGTH)
    if not low <= value <= high or (above_zero and value == 0):
        where = "above 0 and at most 1" if above_zero else f"from {low:g} to {high:g}"
        raise InputError(f"{axis.label} {value:g} cannot be used: the values must be {where}.")


def _short(label: str, most: int = 40) -> str:
    return label if len(label) <= most else label[:most - 1].rstrip() + "…"


def _label(axis: Axis, value) -> str:
    if axis in (Axis.PROMPT, Axis.HYPER, Axis.MODEL, Axis.STYLES):  # the words or a name alone, as A1111 has them
        return str(value)
    text = value.label if isinstance(value, Scheduler) else value if isinstance(value, str) else f"{value:g}"
    return f"{axis.label}: {text}"


@dataclass(frozen=True)
class PlotAxis:
    """A setting to step through and its values as typed (A1111's syntax; see the module's text). For a Hyper-SD file
    or a model (`FILES`), the values are installed names (or paths) and `files` the file each names, as the window
    or the command line looks them up (`looked_up`)."""

    axis: Axis
    values: str
    files: tuple[str, ...] = ()
    # a model's VAE, for each model (None: its own), where the VAE is the automatic choice; empty: the request's
    vaes: tuple[str | None, ...] = ()
    styles: tuple[PromptStyle, ...] = ()  # a Styles axis's: the style each value names (`styled`)

    def __post_init__(self) -> None:
        if not isinstance(self.axis, Axis):
            object.__setattr__(self, "axis", Axis.named(str(self.axis)))

    def parsed(self) -> list:
        return axis_values(self.axis, self.values)

    def labels(self) -> list[str]:
        """Each value as the grid names it: `Steps: 4`, `CFG Scale: 1.5`; Prompt S/R's words alone."""
        return [_label(self.axis, value) for value in self.parsed()]

    def looked_up(self, find: Callable[[str], str], vae_of: Callable[[str], str | None] | None = None) -> PlotAxis:
        """The axis with the file each of its values names (`find` raises `InputError` for one it cannot find). A
        name as A1111 writes a checkpoint (`models\\dreamshaper_8.safetensors [879db523c3]`) is found by its file
        name too. With `vae_of`, each model runs with the VAE it gives for the model's file (the automatic choice
        of each, where the request's VAE was the first model's automatic one)."""
        if self.axis not in FILES:
            return self

        def found(name: str) -> str:
            if self.axis == Axis.VAE and name.strip().lower() in (OWN_VAE, CHOSEN_VAE):
                return name.strip().lower()
            try:
                return find(name)
            except InputError:
                bare = _A1111_HASH.sub("", re.split(r"[\\/]", name)[-1])
                if bare == name or not bare:
                    raise
                return find(bare)

        files = tuple(found(name) for name in self.parsed())
        vaes = tuple(vae_of(path) for path in files) if vae_of is not None and self.axis == Axis.MODEL else ()
        return PlotAxis(self.axis, self.values, files, vaes)

    def styled(self, styles: Sequence[PromptStyle]) -> PlotAxis:
        """A Styles axis with the style each of its values names among `styles` (`None`: no style); `InputError`
        names a value that names none."""
        if self.axis != Axis.STYLES:
            return self
        by_name = {style.name: style for style in styles}
        chosen = []
        for name in self.parsed():
            if name.strip().lower() == NO_STYLE:
                chosen.append(PromptStyle(name))
            elif name in by_name or name.strip() in by_name:
                chosen.append(by_name.get(name, by_name.get(name.strip())))
            else:
                there = ", ".join(sorted(by_name)[:10]) if by_name else "none yet: Styles → Edit… makes them"
                raise InputError(f"Styles: no style is named {name!r} (the styles: {there}).")
        return PlotAxis(self.axis, self.values, styles=tuple(chosen))

    def fixed(self, rng: random.Random) -> PlotAxis:
        """The axis with each random seed (-1) made a seed, so the plot can be made again."""
        if self.axis != Axis.SEED:
            return self
        seeds = [rng.randrange(MAX_SEED) if value == RANDOM else value for value in self.parsed()]
        return PlotAxis(self.axis, ", ".join(str(seed) for seed in seeds))

    def _file(self, index: int) -> str:
        if len(self.files) != len(self.parsed()):
            raise InputError(f"{self.axis.label}: the files its values name were not looked up.")
        return self.files[index]


@dataclass(frozen=True)
class PlotCell:
    """One image of a plot: its request, and the values it was made with (as the grid labels them)."""

    request: GenerationRequest
    column: int
    row: int
    layer: int = 0  # which of the Z axis's grids it is in


@dataclass(frozen=True)
class PlotSpec:
    """A plot: `base` made again with `x`'s values across, `y`'s (if any) down, and a grid of those for each of
    `z`'s values (if any)."""

    base: GenerationRequest
    x: PlotAxis
    y: PlotAxis | None = None
    z: PlotAxis | None = None

    def axes(self) -> tuple[PlotAxis, ...]:
        return tuple(axis for axis in self._slots() if axis is not None)

    def named_axes(self) -> list[tuple[str, PlotAxis]]:
        """Each axis there is and its letter: `[("X", …), ("Z", …)]`."""
        return [(name, axis) for name, axis in zip("XYZ", self._slots()) if axis is not None]

    def _slots(self) -> tuple[PlotAxis | None, PlotAxis | None, PlotAxis | None]:
        return self.x, self.y, self.z

    def fixed(self, rng: random.Random | None = None) -> PlotSpec:
        """The plot with its random seeds chosen (see `PlotAxis.fixed`)."""
        rng = rng or random.Random()
        return PlotSpec(self.base, *(axis.fixed(rng) if axis else None for axis in self._slots()))

    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, grids): the Z axis's values are grids of columns × rows."""
        return (len(self.x.parsed()), len(self.y.parsed()) if self.y else 1,
                len(self.z.parsed()) if self.z else 1)

    def cells(self) -> list[PlotCell]:
        """Every image's request, grid by grid, row by row; `InputError` names the first that cannot be made.
        Random seeds not yet fixed are chosen (anew at each call)."""
        fixed = self.fixed()
        if fixed != self:
            return fixed.cells()
        named = self.named_axes()
        for k, (name, axis) in enumerate(named):
            for other_name, other in named[k + 1:]:
                if axis.axis == other.axis != Axis.PROMPT:  # two words' replacements are two settings
                    raise InputError(f"{name} and {other_name} are both {axis.axis.label}; choose another setting "
                                     f"for one of them.")
        values = [axis.parsed() if axis else [None] for axis in self._slots()]
        count = math.prod(len(axis_values) for axis_values in values)
        if count > MOST_CELLS:
            sizes = " × ".join(str(len(values[k])) for k, axis in enumerate(self._slots()) if axis)
            raise InputError(f"{sizes} is {count} images; a plot makes at most {MOST_CELLS}. Use fewer values.")
        base = self.base.replace(batch_size=1)
        cells = []
        for layer, row, column in itertools.product(*(range(len(axis_values)) for axis_values in reversed(values))):
            place = (column, row, layer)
            steps = sorted([(axis, place[k], values[k]) for k, axis in enumerate(self._slots()) if axis],
                           key=lambda step: _FIRST.get(step[0].axis, 2))
            try:  # a request checks itself as it is made
                request = base
                for axis, index, axis_values in steps:
                    request = _applied(request, axis, index, axis_values)
            except InputError as error:
                where = ", ".join(_short(label) for label in self._places_at(place).values())
                raise InputError(f"The image at {where} cannot be made: {error}") from None
            cells.append(PlotCell(request, column, row, layer))
        return cells

    def place(self, cell: PlotCell) -> str:
        """Where `cell` is, as the grid labels it: `Steps: 2, red` (its Z value last)."""
        return ", ".join(self.places(cell).values())

    def places(self, cell: PlotCell) -> dict[str, str]:
        """`cell`'s label on each axis there is, by the axis's letter: `{"x": "Steps: 2", "y": "red"}`."""
        return self._places_at((cell.column, cell.row, cell.layer))

    def _places_at(self, indices: tuple[int, int, int]) -> dict[str, str]:
        return {name: axis.labels()[index] for name, axis, index in zip("xyz", self._slots(), indices) if axis}

    def grid(self, images: list[Image.Image], most_pixels: int = GRID_MOST_PIXELS) -> Image.Image:
        """The plot's images (in the order of `cells`) as its labelled grid (see `plot_grid`)."""
        return plot_grid(images, self.shape()[0], self.x.labels(), self.y.labels() if self.y else None,
                         self.z.labels() if self.z else None, most_pixels)

    def text_fields(self) -> list[tuple[str, str]]:
        """What A1111 writes into a grid's text: the script and each axis's type and values."""
        fields = [("Script", SCRIPT)]
        for name, axis in self.named_axes():
            fields.extend([(f"{name} Type", axis.axis.label), (f"{name} Values", axis.values)])
        return fields

    def describe(self) -> str:
        """`X/Y/Z plot of 12 images: Steps × Seed`."""
        names = " × ".join(axis.axis.label for axis in self.axes())
        return f"X/Y/Z plot of {math.prod(self.shape())} images: {names}"


def stored_axes(fields: object) -> tuple[PlotAxis, PlotAxis | None, PlotAxis | None] | None:
    """The X, Y and Z axes of the plot a grid's fields name (`X Type`, `X Values`, `Y Type` … as the grid's request
    keeps them and A1111 writes them), where they are settings a plot here steps through; None otherwise. A Seed
    axis has the seeds the grid was made with (A1111's `Fixed X Values`, where its values were random)."""
    if not isinstance(fields, dict):
        return None
    fields = {str(key).lower(): value for key, value in fields.items() if isinstance(value, str)}
    axes: list[PlotAxis | None] = []
    for name in "xyz":
        kind, values = fields.get(f"{name} type"), fields.get(f"{name} values")
        if kind is None or kind.lower() == "nothing":
            axes.append(None)
            continue
        try:
            axis = Axis.named(kind)
        except InputError:
            return None
        fixed = fields.get(f"fixed {name} values")
        axes.append(PlotAxis(axis, fixed if axis == Axis.SEED and fixed else values or ""))
    if axes[0] is None:  # A1111 makes a plot of Y (or Z) alone: here its first axis is across
        axes = [axis for axis in axes if axis is not None] + [axis for axis in axes if axis is None]
    return (axes[0], axes[1], axes[2]) if axes[0] is not None else None


def _applied(request: GenerationRequest, axis: PlotAxis, index: int, values: list) -> GenerationRequest:
    """`request` with `axis` set to its value `index` (of `values`)."""
    kind, value = axis.axis, values[index]
    if kind == Axis.HYPER:
        return _hyper_file(request, axis._file(index))
    if kind == Axis.VAE:
        path = axis._file(index)
        return request.replace(vae=None if path == OWN_VAE else request.vae if path == CHOSEN_VAE else path)
    if kind == Axis.MODEL:
        if request.unet is not None:
            raise InputError("The Hyper-SDXL 1-step UNet takes the place of each model's UNet, so the models would "
                             "make one image: compare models with a Hyper-SD LoRA.")
        vae = axis.vaes[index] if len(axis.vaes) == len(values) else request.vae
        return request.replace(base_model=axis._file(index), base_config=None, vae=vae)
    if kind == Axis.SEED:
        return request.replace(seed=value)
    if kind == Axis.STEPS:
        return request.replace(steps=value)
    if kind == Axis.GUIDANCE:
        return request.replace(guidance=float(value))
    if kind == Axis.SCHEDULER:
        return request.replace(scheduler=value)
    if kind == Axis.CLIP_SKIP:
        return request.replace(clip_skip=value)
    if kind == Axis.ETA:
        return request.replace(eta=float(value))
    if kind == Axis.PROMPT:
        return _replaced(request, values[0], value)
    if kind == Axis.STYLES:
        if len(axis.styles) != len(values):
            raise InputError("Styles: the styles its values name were not looked up.")
        prompt, negative = apply_styles(request.prompt, request.negative_prompt, [axis.styles[index]])
        return request.replace(prompt=prompt, negative_prompt=negative if negative != request.negative_prompt
                               and reads_negative(request) else request.negative_prompt)
    if kind == Axis.LORA_WEIGHT:
        return _lora_weighed(request, float(value))
    if kind == Axis.STRENGTH:
        if request.init_image is not None:
            return request.replace(strength=float(value))
        if request.hires_scale is not None:  # as A1111's Denoising axis sets its Hires fix's strength
            return request.replace(hires_strength=float(value))
        raise InputError("Denoising is how much of a picture is repainted: add an init image (or turn on Hires fix) "
                         "first, or choose another setting to compare.")
    if kind in (Axis.FACE_STRENGTH, Axis.HAND_STRENGTH):
        part = "face" if kind == Axis.FACE_STRENGTH else "hand"
        wanted = getattr(request, f"{part}_detail")
        if wanted is None:
            raise InputError(f"The {part} strength is how much of each {part} the {part} pass makes again: turn "
                             f"Detail {part}s on (--detail-{part}s) first, or choose another setting to compare.")
        return request.replace(**{f"{part}_detail": dataclasses.replace(wanted, strength=float(value))})
    # a variation strength needs a seed to vary by: the request's, or the one after the image's seed
    variation_seed = request.variation_seed if request.variation_seed is not None else (request.seed + 1) % MAX_SEED
    return request.replace(variation_strength=float(value), variation_seed=variation_seed)


def _replaced(request: GenerationRequest, search: str, replacement: str) -> GenerationRequest:
    if search not in request.prompt and search not in request.negative_prompt:
        raise InputError(f"Prompt S/R: {search!r} (its first value) is in neither the prompt nor the negative "
                         "prompt; its first value is the words each of the others replaces.")
    return request.replace(prompt=request.prompt.replace(search, replacement),
                           negative_prompt=request.negative_prompt.replace(search, replacement))


def _hyper_file(request: GenerationRequest, path: str) -> GenerationRequest:
    """The request run with the Hyper-SD file at `path` in place of its own, at that file's recipe (its steps,
    guidance and scheduler: the settings the request chose for its own file need not suit it)."""
    recipe = recipe_for_file(path)
    if recipe is None:
        raise InputError(f"{PurePath(path).name} is no Hyper-SD file (by its published name); name the Hyper-SD "
                         "LoRAs or the UNet to compare.")
    loras = tuple(lora for lora in request.loras if recipe_for_file(lora.path) is None)
    if recipe.kind == ModelKind.UNET:
        return request.replace(unet=path, loras=loras, recipe=None, steps=None, guidance=None, eta=None,
                               scheduler=Scheduler.AUTO, timesteps=None)
    return request.replace(unet=None, loras=(LoraSpec(path, 1.0), *loras), recipe=None, steps=None, guidance=None,
                           eta=None, scheduler=Scheduler.AUTO, timesteps=None)


def _lora_weighed(request: GenerationRequest, weight: float) -> GenerationRequest:
    """The Hyper-SD LoRA's weight set (or the first LoRA's, where none is a Hyper-SD file)."""
    if not request.loras:
        raise InputError("LoRA weight compares weights of the Hyper-SD LoRA (or the first LoRA): choose a LoRA "
                         "first, or another setting to compare.")
    index = next((k for k, lora in enumerate(request.loras) if recipe_for_file(lora.path)), 0)
    loras = list(request.loras)
    loras[index] = LoraSpec(loras[index].path, weight)
    return request.replace(loras=tuple(loras))


# -- the grid ------------------------------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrapped(text: str, font, width: int) -> list[str]:
    """`text` in lines no wider than `width` (a word longer than that is broken)."""
    lines: list[str] = []
    for word in text.split() or [""]:
        line = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(line) <= width:
            lines[-1] = line
            continue
        while font.getlength(word) > width and len(word) > 1:
            cut = max(1, next((k for k in range(len(word), 0, -1) if font.getlength(word[:k]) <= width), 1))
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def plot_grid(images: list[Image.Image], columns: int, x_labels: list[str], y_labels: list[str] | None = None,
              z_labels: list[str] | None = None, most_pixels: int = GRID_MOST_PIXELS) -> Image.Image:
    """The images, row by row `columns` wide, on white with each column's label above it and each row's to its left
    (A1111's layout); with `z_labels`, the images are that many such grids in turn, laid side by side each under its
    label. Cells are the largest image's size; a smaller image sits at its cell's top left. A grid that would pass
    `most_pixels` is made of the images made smaller (they are saved whole on their own)."""
    grid = _laid_out(images, columns, x_labels, y_labels, z_labels)
    scale = 1.0
    while grid.width * grid.height > most_pixels:  # the labels shrink with the images: smaller until it fits
        scale *= math.sqrt(most_pixels / (grid.width * grid.height)) * 0.98
        smaller = [image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                Image.Resampling.LANCZOS) for image in images]
        grid = _laid_out(smaller, columns, x_labels, y_labels, z_labels)
    return grid


def _laid_out(images: list[Image.Image], columns: int, x_labels: list[str], y_labels: list[str] | None,
              z_labels: list[str] | None = None) -> Image.Image:
    width = max(image.width for image in images)
    height = max(image.height for image in images)
    size = max(14, (width + height) // 25)  # A1111's font size for the cell's size, and legible at any
    font = _font(size)
    pad = size // 2
    line = size + size // 4
    if z_labels:
        each = len(images) // len(z_labels)
        grids = [_laid_out(images[k * each:(k + 1) * each], columns, x_labels, y_labels)
                 for k in range(len(z_labels))]
        titles = [_wrapped(label, font, grids[0].width - 2 * pad) for label in z_labels]
        top = max(len(lines) for lines in titles) * line + 2 * pad
        gap = size  # white between the grids, so that each reads as its own
        whole = Image.new("RGB", (sum(grid.width for grid in grids) + gap * (len(grids) - 1),
                                  top + max(grid.height for grid in grids)), "white")
        draw = ImageDraw.Draw(whole)
        for k, (grid, lines) in enumerate(zip(grids, titles)):
            left = k * (grid.width + gap)
            _draw_lines(draw, lines, font, left + grid.width // 2, pad + (top - 2 * pad) // 2, line)
            whole.paste(grid, (left, top))
        return whole
    rows = math.ceil(len(images) / columns)
    left = 0
    if y_labels:
        left = max(width * 3 // 4, size * 6)
    column_lines = [_wrapped(label, font, width - 2 * pad) for label in x_labels]
    top = max(len(lines) for lines in column_lines) * line + 2 * pad
    grid = Image.new("RGB", (left + columns * width, top + rows * height), "white")
    draw = ImageDraw.Draw(grid)
    for column, lines in enumerate(column_lines):
        _draw_lines(draw, lines, font, left + column * width + width // 2, pad + (top - 2 * pad) // 2, line)
    for row, label in enumerate(y_labels or []):
        lines = _wrapped(label, font, left - 2 * pad)
        _draw_lines(draw, lines, font, left // 2, top + row * height + height // 2, line)
    for index, image in enumerate(images):
        grid.paste(image.convert("RGB"), (left + (index % columns) * width, top + (index // columns) * height))
    return grid


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[str], font, centre_x: int, centre_y: int, line: int) -> None:
    y = centre_y - len(lines) * line // 2
    for text in lines:
        draw.text((centre_x - font.getlength(text) / 2, y), text, fill="black", font=font)
        y += line
