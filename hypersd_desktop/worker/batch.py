"""Batch jobs: a job file of prompts generated into the gallery and exported by a template.

A job file is text (one prompt per line; `#` starts a comment), CSV with a header (comma, semicolon or
tab between columns; a text file whose first line is tab-separated column names is one too), or JSON (a
list of prompts or objects, or {"items": [...]} / {"prompts": [...]}), in any of the encodings editors save text in (see `core.text.saved_text`). Columns: prompt, negative, seed, seeds ("1,2,5" or
"10-13"), images (of the item, on consecutive seeds), steps, guidance, model, lora
("path[:weight];…"), width, height, image (a picture to start from: image-to-image; a path, from the job file's
folder), mask (white repainted: inpainting) and strength (how much of the picture is repainted). Missing values
take the job's defaults. Every (item, seed) is one unit. A job can also run on every picture in a folder
(`with_pictures`): each item once for each picture, as A1111's img2img batch runs its prompt on each file. A text
line may also be one of A1111's "Prompts from file or textbox" script: `--prompt "…" --negative_prompt "…" --steps 4
--seed 7 --n_iter 2 …`.

Each unit's gallery file has a fixed name and its export path is recorded in a state file in the
export folder before it is written, both written through a temporary name and renamed; so a job
that is stopped or killed and started again skips what is done and produces every unit exactly
once.

Units next to each other that differ only in prompt and seed run as one batch of the engine, as
many at once as `BatchSizer` finds fastest.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypersd_desktop.core.dynamic_prompts import Wildcards, chosen, every, is_dynamic
from hypersd_desktop.core.errors import AppError, CancelledError, InputError, NotSavedError, OutOfMemoryError
from hypersd_desktop.core.files import remove_stale_partials, why_not_written, write_atomic
from hypersd_desktop.core.images import (
    PICTURE_SUFFIXES, InputImages, fitted_size, open_any_size, png_chunks_after_image_data, png_data,
    read_formats, read_formats_words,
)
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.prompt_styles import PromptStyle, apply_styles
from hypersd_desktop.core.text import saved_text
from hypersd_desktop.core.vocab import Architecture, BatchUnitState, ExportStatus
from hypersd_desktop.engine.backend import batch_key
from hypersd_desktop.engine.inputs import edge_map
from hypersd_desktop.engine.inspect import base_architecture
from hypersd_desktop.engine.types import GenerationRequest, GenerationResult, LoraSpec, enlarged_size, init_size
from hypersd_desktop.gallery.export import ExportEntry, ExportOptions, plan_destination, write_image, write_manifests
from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES, Gallery, read_metadata
from hypersd_desktop.worker.service import GenerationService

MAX_UNITS = 100_000  # images in one job
LARGEST_BATCH = 8  # images per engine call a batch job tries at most
MOST_COMBINATIONS = 100  # jobs one Generate queues for a prompt's combinations (InvokeAI's default too)
FASTER = 1.05  # a larger batch is taken when its images per second beat the best so far by this factor
COLUMNS = ("prompt", "negative", "seed", "seeds", "images", "steps", "guidance", "model", "lora", "width", "height",
           "image", "mask", "strength")
PICTURE_COLUMNS = ("image", "mask")  # paths, read from the job file's folder
PICTURE_FILES = (*IMAGE_SUFFIXES, *PICTURE_SUFFIXES)  # what a folder's pictures are named
EXIF_ORIENTATION = 0x0112  # 5 to 8: the picture is shown turned a quarter
MOST_EXIF_BYTES = 1 << 20
UNUSED = "a1111_unused"  # an item's A1111 options that this app does not use (see `unused_options`)
IGNORED = "other_columns"  # an item's columns of no setting here (a spreadsheet's notes; see `unused_options`)

# A1111's "Prompts from file or textbox" script: its options by the column they fill, the two that multiply the
# images of a line, and those it has that this app has no use for (the Hyper-SD recipe sets the sampler)
_A1111_COLUMNS = {"prompt": "prompt", "negative_prompt": "negative", "seed": "seed", "steps": "steps",
                  "cfg_scale": "guidance", "width": "width", "height": "height", "sd_model": "model",
                  "denoising_strength": "strength"}
_A1111_COUNTS = ("n_iter", "batch_size")
_A1111_UNUSED = ("sampler_name", "sampler_index", "scheduler", "styles", "subseed", "subseed_strength",
                 "seed_resize_from_h", "seed_resize_from_w", "restore_faces", "tiling", "do_not_save_samples",
                 "do_not_save_grid", "outpath_samples", "outpath_grids", "prompt_for_display")


CANNY = "canny"  # a ControlNet following each picture by its Canny edges (`PictureControl`)
FOLLOWING = "0" * 64  # the image of a ControlNet that follows each picture, until `follow_pictures` names its own


@dataclass(frozen=True)
class PictureControl:
    """How a picture batch's ControlNet follows each picture, as the Generate tab's box makes its image from its own
    picture: `kind` "canny", the picture's edges at the run's size (found in the app: the compute runtime has no
    OpenCV); "depth" or "pose", a map the worker makes with the model at `model` (and for a pose, the person detector
    at `detector`); "", the picture itself (which the control's preprocessor makes a scribble of)."""

    kind: str = ""
    model: str = ""
    detector: str = ""


@dataclass(frozen=True)
class BatchUnit:
    number: int  # 1-based, in job order
    item: int
    request: GenerationRequest
    picture: str = ""  # the name of the picture it starts from, without its extension (the template's {picture})
    # the maps the worker makes of the unit's picture for its ControlNets (depth, pose), by their place in the
    # request's controls (None: the control's image is its own); the request names the picture until then
    maps: tuple[PictureControl | None, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.number}:{self.item}:{self.request.seed}"


def parse_job(path: Path) -> list[dict[str, Any]]:
    """The job file's items as dicts of the known columns."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"The job file {path} cannot be read: {error.strerror or error}.") from None
    text = saved_text(raw)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            raise InputError(f"{path.name} is not valid JSON ({reason}).") from None
        items = next((data[key] for key in ("items", "prompts") if key in data), None) if isinstance(data, dict) \
            else data
        if isinstance(items, list):  # a plain list of prompts, as scripts write them, is prompts
            items = [{"prompt": item} if isinstance(item, str) else item for item in items]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InputError(f"{path.name}: a JSON job is a list of prompts or objects, or an object with an "
                             "\"items\" or \"prompts\" list.")
    elif suffix in (".csv", ".tsv") or _is_tab_table(text):
        items = table_items(text, _delimiter(text, suffix), path.name)
    else:
        items = prompt_lines(text, path.name)
    cleaned = []
    for number, item in enumerate(items, start=1):
        if len(cleaned) >= MAX_UNITS:
            raise InputError(f"{path.name} has more than {MAX_UNITS:,} prompts; split it into several jobs.")
        item = _named_columns(item, f"{path.name}, item {number}")
        unknown = sorted({str(key) for key in item} - {*COLUMNS, UNUSED})
        misspelt = [f"{column} ({near}?)" for column in unknown if (near := _near_column(column))]
        if misspelt:  # a setting that would be left out unseen
            raise InputError(f"{path.name}, item {number}: unknown column(s) {', '.join(misspelt)}; "
                             f"known: {', '.join(COLUMNS)}.")
        if not str(item.get("prompt") or "").strip():
            raise InputError(f"{path.name}, item {number}: the prompt is empty.")
        kept = {key: value for key, value in item.items() if value not in (None, "") and str(key) not in unknown}
        for column in PICTURE_COLUMNS:  # as the job file's folder sees them
            if column in kept:
                kept[column] = str(path.parent / Path(_here(str(kept[column]).strip())).expanduser())
        if unknown:  # a spreadsheet's own columns (notes, an id, another tool's sampler): said, not used
            kept[IGNORED] = tuple(unknown)
        cleaned.append(kept)
    if not cleaned:
        raise InputError(f"{path.name} has no prompts.")
    return cleaned


def _here(relative: str) -> str:
    """A path a job file names, as this system spells it: "photos\\cat.png", as a job made on Windows writes it, is
    photos/cat.png on macOS and Linux too (a drive's path, "C:\\…", is Windows' alone)."""
    if os.sep == "/" and "\\" in relative and not re.match(r"[A-Za-z]:", relative):
        return relative.replace("\\", "/")
    return relative


def table_items(text: str, delimiter: str, name: str) -> list[dict[str, str]]:
    """The rows of a CSV or TSV job by column, as spreadsheets and people write them: rows with nothing in them (the
    ";;;" a spreadsheet saves past the data) and columns without a name that hold nothing are left out; a file whose
    first row names no column is a list of prompts, a row each (a prompt's commas are its own: a prompt list saved
    as .csv); and so is a row of a table whose only column is the prompt. Elsewhere a row with more values than
    there are columns is an error saying to quote the prompt."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise InputError(f"{name} is not a CSV job file this app can read ({error}).") from None
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    named = [_column_name(column) for column in header if column.strip()]
    if not any(column in COLUMNS or _near_column(column) for column in named):  # no header: each row is a prompt
        return [{"prompt": delimiter.join(row).strip()} for row in rows]
    items = []
    for number, row in enumerate(body, start=1):
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
            if named != ["prompt"]:
                raise InputError(f"{name}, item {number}: {len(row)} values for {len(header)} columns. A prompt with "
                                 f"{_DELIMITER_NAMES[delimiter]} in it goes in double quotes (\"a fox, in snow\"), as "
                                 "spreadsheets save it.")
            row = [delimiter.join(row)]  # the one column's prompt, with its commas
        item = {}
        for column, cell in zip(header, row):
            if column.strip():
                item[column] = cell
            elif cell.strip():
                raise InputError(f"{name}, item {number}: {cell.strip()[:40]!r} is in a column without a name; name "
                                 "the column, or move it.")
        items.append(item)
    return items


_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}


def _near_column(name: str) -> str | None:
    """The column a misspelt column name means ("promt": prompt), or None."""
    import difflib

    close = difflib.get_close_matches(name, COLUMNS, n=1, cutoff=0.8)
    return close[0] if close else None


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def _delimiter(text: str, suffix: str) -> str:
    """The table's delimiter, from its header: a tab in a `.tsv`, else the most frequent of comma, semicolon (the
    CSV of Excel in the locales whose decimal mark is a comma) and tab."""
    if suffix == ".tsv":
        return "\t"
    header = _first_line(text)
    return max((",", ";", "\t"), key=header.count) if any(c in header for c in ",;\t") else ","


def _is_tab_table(text: str) -> bool:
    """Whether a text file is a table with a header of tab-separated column names, as spreadsheets save "Text (Tab
    delimited)" and "Unicode Text": no prompt is a line of column names."""
    names = [_column_name(name) for name in _first_line(text).split("\t")]
    return len(names) > 1 and "prompt" in names and all(name in COLUMNS for name in names if name)


# Other names spreadsheets and other tools' job files give the columns, after lower case and "_" for spaces
_COLUMN_NAMES = {"negative_prompt": "negative", "neg": "negative", "negative_prompts": "negative", "prompts": "prompt",
                 "positive_prompt": "prompt", "positive": "prompt", "cfg": "guidance", "cfg_scale": "guidance",
                 "guidance_scale": "guidance", "num_inference_steps": "steps", "loras": "lora", "checkpoint": "model",
                 "sd_model": "model", "model_name": "model", "base_model": "model", "count": "images",
                 "init_image": "image", "input_image": "image", "picture": "image", "init_images": "image",
                 "mask_image": "mask", "denoising_strength": "strength", "denoise": "strength"}


def _column_name(name: str) -> str:
    name = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return _COLUMN_NAMES.get(name, name)


def _named_columns(item: dict, where: str) -> dict:
    """An item's columns by this app's names: any case, spaces or dashes for "_", and the other names of
    `_COLUMN_NAMES` ("Negative Prompt", "CFG scale"); `InputError` when two columns give the same one."""
    named: dict = {}
    for key, value in item.items():
        if key == UNUSED or not isinstance(key, str):
            named[key] = value
            continue
        column = _column_name(key)
        if column in named and value not in (None, "") and named[column] not in (None, ""):
            raise InputError(f"{where}: the columns {key!r} and another both give {column}; keep one.")
        if column not in named or named[column] in (None, ""):
            named[column] = value
    return named


def prompt_lines(text: str, name: str = "The prompts") -> list[dict[str, Any]]:
    """Items of prompts one a line (`#` starts a comment), each a plain prompt or a line of A1111's prompt-file
    script (`--prompt "…" --steps 4 …`; see `a1111_line`)."""
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            items.append(a1111_line(line) if line.startswith("--") else {"prompt": line})
        except ValueError as error:
            raise InputError(f"{name}, line {number}: {error}.") from None
    return items


def a1111_line(line: str) -> dict[str, Any]:
    """A line of A1111's "Prompts from file or textbox" script as an item: `--option value` pairs, the words
    after `--prompt` and `--negative_prompt` up to the next option being the prompt; `--n_iter` × `--batch_size`
    images; a seed of -1 is a random one (here: the job's next). Its options this app does not use are listed
    under `UNUSED`. `ValueError` says what is wrong with the line."""
    try:
        words = shlex.split(line)
    except ValueError as error:  # "No closing quotation"
        raise ValueError(f"it cannot be read as A1111's --option value line ({str(error).lower()})") from None
    item: dict[str, Any] = {}
    unused: list[str] = []
    images, at = 1, 0
    while at < len(words):
        option = words[at]
        name = option[2:]
        if not option.startswith("--"):
            raise ValueError(f"{option[:40]!r} is not an option (an A1111 line is --option value pairs)")
        if name in ("prompt", "negative_prompt"):
            end = next((k for k in range(at + 1, len(words)) if words[k].startswith("--")), len(words))
            value, at = " ".join(words[at + 1:end]), end
        elif at + 1 < len(words):
            value, at = words[at + 1], at + 2
        else:
            raise ValueError(f"{option} has no value")
        if name in _A1111_COUNTS:
            try:
                images *= int(value)
            except ValueError:
                raise ValueError(f"{option} {value[:40]!r} is not a whole number") from None
        elif name == "seed" and value.strip() == "-1":
            continue
        elif name == "sd_model":  # A1111 names a checkpoint "name.safetensors [hash]"
            item["model"] = re.sub(r"\s*\[[0-9a-fA-F]{8,10}\]$", "", value.strip())
        elif name in _A1111_COLUMNS:
            item[_A1111_COLUMNS[name]] = value
        elif name in _A1111_UNUSED:
            unused.append(option)
        else:
            raise ValueError(f"{option} is not an option of A1111's prompt-file script")
    if "prompt" not in item:
        raise ValueError("the line has no --prompt")
    if images != 1:
        item["images"] = images
    if unused:
        item[UNUSED] = unused
    return item


def unused_options(items: list[dict[str, Any]]) -> str | None:
    """A note naming the A1111 options and the other columns of a job that this app does not use, or None when there
    are none."""
    unused = sorted({option for item in items for option in item.get(UNUSED, ())})
    ignored = sorted({column for item in items for column in item.get(IGNORED, ())})
    notes = []
    if unused:
        notes.append(f"The job's A1111 option{'s' if len(unused) > 1 else ''} {', '.join(unused)} "
                     f"{'are' if len(unused) > 1 else 'is'} not used here: the Hyper-SD recipe sets the sampler, and "
                     "the rest are A1111's own.")
    if ignored:
        notes.append(f"The job's column{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} "
                     f"{'are' if len(ignored) > 1 else 'is'} not used (the columns used: {', '.join(COLUMNS)}).")
    return " ".join(notes) or None


def _seeds(item: dict[str, Any], default: int, per_prompt: int) -> list[int]:
    if "seeds" in item:
        seeds: list[int] = []
        for part in str(item["seeds"]).replace(";", ",").split(","):
            if match := re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", part):
                first, last = int(match[1]), int(match[2])
                if last - first >= MAX_UNITS:
                    raise ValueError(f"the seed range {first}-{last} is over {MAX_UNITS:,} images")
                seeds += range(first, last + 1)
            elif part.strip():
                try:
                    seeds.append(int(part))
                except ValueError:
                    raise ValueError(f"seed {part.strip()[:40]!r} is not a whole number") from None
        return seeds
    try:
        first = int(item["seed"]) if "seed" in item else default
    except (TypeError, ValueError):
        raise ValueError(f"seed {str(item['seed'])[:40]!r} is not a whole number") from None
    if "images" in item:
        try:
            per_prompt = int(item["images"])
        except (TypeError, ValueError):
            raise ValueError(f"images {str(item['images'])[:40]!r} is not a whole number") from None
        if not 1 <= per_prompt <= MAX_UNITS:
            raise ValueError(f"images is {per_prompt}; an item makes 1 to {MAX_UNITS:,}")
    return [first + k for k in range(per_prompt)]


def plan_units(items: list[dict[str, Any]], defaults: GenerationRequest, seeds_per_prompt: int = 1,
               resolve: Callable[[str], str] = str,
               embeddings: Callable[..., tuple[str, ...]] | None = None,
               vae_for: Callable[[str], str | None] | None = None,
               loras_tagged: Callable[..., list[tuple[str, float]]] | None = None,
               wildcards: Wildcards | None = None, styles: Sequence[PromptStyle] = (),
               reads_negative: Callable[[GenerationRequest], bool] | None = None,
               picture: Callable[[str, str], str] | None = None) -> list[BatchUnit]:
    """Every (item, seed) as a request built on `defaults`; `resolve` maps model/LoRA names to paths,
    `embeddings(base_model, prompt, negative)` gives the installed embeddings an item's prompts name,
    `vae_for(base_model)` the VAE for an item that names another model than the defaults (see
    `ModelLibrary.vae_for`), and `loras_tagged` the LoRAs its prompt's A1111 tags name (see `with_tagged_loras`).
    A prompt with choices (`{a|b}`, `__wildcard__`: core/dynamic_prompts.py) makes them by each image's seed.
    `styles` (the window's prompt styles) add their words to each item's prompts, as A1111 adds them to its
    prompt-file lines: to the negative prompt where `reads_negative(request)` (guidance reads one). `picture(path,
    what)` names the picture (mask) at `path` as a request does, by its digest (`InputImages.add_file`); a job whose
    items name pictures needs it.

    Raises `InputError` naming the item for any value that cannot be used.
    """
    units: list[BatchUnit] = []
    next_seed = defaults.seed  # an item without a seed takes the seeds after those the items before it would
    for index, item in enumerate(items, start=1):
        try:
            base = defaults.replace(**_item_changes(item, resolve), **_item_pictures(item, picture))
            if styles:
                prompt, negative = apply_styles(base.prompt, base.negative_prompt, styles)
                base = base.replace(prompt=prompt, negative_prompt=negative if reads_negative is None
                                    or reads_negative(base) else base.negative_prompt)
            if vae_for is not None and base.base_model != defaults.base_model:
                base = base.replace(vae=vae_for(base.base_model))
            base = with_tagged_loras(base, loras_tagged)
            if embeddings is not None:
                base = base.replace(embeddings=embeddings(base.base_model, base.prompt, base.negative_prompt))
            seeds = _seeds(item, next_seed, seeds_per_prompt)
            next_seed += len(seeds) if "images" in item and "seeds" not in item else seeds_per_prompt
            for seed in seeds:
                templated = with_templates(replace(base, seed=seed, batch_size=1), wildcards)
                units.append(BatchUnit(len(units) + 1, index, replace(
                    templated, prompt=chosen(base.prompt, seed, wildcards),
                    negative_prompt=chosen(base.negative_prompt, seed, wildcards)),
                    Path(item["image"]).stem if "image" in item else ""))
        except (ValueError, TypeError, OverflowError) as error:
            raise InputError(f"Job item {index}: {error}.") from None
        except InputError as error:
            raise InputError(f"Job item {index}: {error}") from None
        if len(units) > MAX_UNITS:
            raise InputError(f"The job makes more than {MAX_UNITS:,} images; split it into several jobs.")
    return units


def dynamic_jobs(request: GenerationRequest, count: int, each_combination: bool,
                 wildcards: Wildcards | None = None) -> tuple[list[GenerationRequest], str | None]:
    """The jobs one Generate queues for `request`, `count` times (the batch count), and a note for the status bar.

    A plain prompt: `count` jobs, each its batch's seeds on from the last. A prompt with choices
    (core/dynamic_prompts.py): with `each_combination`, each combination of the prompt's choices `count` times,
    every combination with the same seeds (so only the words differ), at most `MOST_COMBINATIONS`; else each
    image its own one-image job whose choices its seed makes (`together` makes a batch's of them one job again, run
    as one batch). The negative prompt's choices are made by each image's seed."""
    size = request.batch_size
    request = with_templates(request, wildcards)
    if request.prompt_template is None and request.negative_template is None:
        return [request.advanced(k * size) for k in range(count)], None
    if each_combination:
        prompts, more = every(request.prompt, wildcards, MOST_COMBINATIONS)
        jobs = [request.replace(prompt=prompt).advanced(k * size) for prompt in prompts for k in range(count)]
        note = (f"The prompt makes more than {MOST_COMBINATIONS} combinations; the first {MOST_COMBINATIONS} are "
                "queued." if more else f"{len(prompts)} combinations of the prompt queued.")
    else:
        jobs, note = [request.replace(batch_size=1).advanced(k) for k in range(count * size)], None
        jobs = [job.replace(prompt=chosen(job.prompt, job.seed, wildcards)) for job in jobs]
    return [job.replace(negative_prompt=chosen(job.negative_prompt, job.seed, wildcards)) for job in jobs], note


def together(jobs: list[GenerationRequest], size: int) -> list[tuple[GenerationRequest, ...]]:
    """`dynamic_jobs`' jobs as the window queues them: one-image jobs in a row that can run as one batch (equal
    `batch_key`s: a dynamic prompt's images, each with its own choices), up to `size` (the batch size asked for)
    in one job; any other job alone."""
    groups: list[list[GenerationRequest]] = []
    for job in jobs:
        key = batch_key(job)
        if groups and key is not None and len(groups[-1]) < size and batch_key(groups[-1][0]) == key:
            groups[-1].append(job)
        else:
            groups.append([job])
    return [tuple(group) for group in groups]


def with_templates(request: GenerationRequest, wildcards: Wildcards | None) -> GenerationRequest:
    """`request` naming its prompts as their templates where they have choices (`{a|b}`, `__wildcard__`)."""
    return request.replace(
        prompt_template=request.prompt if is_dynamic(request.prompt, wildcards) else None,
        negative_template=request.negative_prompt if is_dynamic(request.negative_prompt, wildcards) else None)


def with_tagged_loras(request: GenerationRequest,
                      loras_tagged: Callable[..., list[tuple[str, float]]] | None) -> GenerationRequest:
    """The request with the installed LoRAs its prompt's `<lora:NAME:WEIGHT>` tags name, at their weights, after
    those it lists (as A1111 applies them); `loras_tagged(base_model, prompt, listed)` finds them
    (`ModelLibrary.loras_tagged`)."""
    if loras_tagged is None:
        return request
    tagged = loras_tagged(request.base_model, request.prompt, [lora.path for lora in request.loras])
    return request.replace(loras=(*request.loras, *(LoraSpec(path, weight) for path, weight in tagged))) if tagged \
        else request


def pictures_in(folder: Path) -> list[Path]:
    """The pictures a batch can start from in `folder` (not its subfolders), by name as a file browser sorts them
    ("2.png" before "10.png"); `InputError` when there are none or it cannot be read. Hidden files are left out: the
    "._IMG_0001.jpg" a Mac writes beside each file on a USB stick holds no picture."""
    try:
        found = [entry for entry in folder.iterdir() if entry.suffix.lower() in PICTURE_FILES
                 and not entry.name.startswith(".") and entry.is_file()]
    except OSError as error:
        raise InputError(f"The folder {folder} cannot be read: {error.strerror or error}.") from None
    if not found:
        raise InputError(f"{folder} holds no pictures ({', '.join(sorted(PICTURE_FILES))}).")
    if len(found) > MAX_UNITS:
        raise InputError(f"{folder} holds more than {MAX_UNITS:,} pictures; split it into several folders.")
    return sorted(found, key=lambda path: [int(part) if odd % 2 else part.lower()  # the digits' runs are the odd parts
                                           for odd, part in enumerate(re.split(r"(\d+)", path.name))])


def with_pictures(items: list[dict[str, Any]], pictures: Sequence[Path], own_prompts: bool = False,
                  masks: Sequence[Path] = (), enlarge: float = 1.0) -> list[dict[str, Any]]:
    """The job run on each of `pictures`: every item once for each picture, picture by picture (an item that names
    its own picture runs once, on that). With `own_prompts`, each picture's own prompts (as its file says it was
    made: `picture_prompts`) follow the item's, as A1111's img2img batch adds a picture's "PNG info" to its prompts;
    `InputError` for a picture without one where the item has none either. `masks` (a folder's: `pictures_in`)
    inpaint them, as A1111's "inpaint batch mask directory" does: one mask, every picture; more, each picture the
    mask of its name (`matched_masks`). `enlarge` above 1 makes each that many times its picture's size, the picture
    enlarged (by the job's upscaler) and repainted, as the window's Enlarge does: an upscale of each."""
    made = [item for item in items if "image" in item]
    mask_of = matched_masks(pictures, masks) if masks else {}
    for path in pictures:
        prompt, negative = picture_prompts(path) if own_prompts else ("", "")
        settings = {"mask": str(mask_of[path])} if path in mask_of else {}  # the picture's own
        if enlarge > 1:
            size = upright_size(path)
            if size is None:
                raise InputError(f"{path.name} cannot be read as a picture ({read_formats_words()}).")
            settings.update(zip(("width", "height"), enlarged_size(size, enlarge)))
        for item in items:
            if "image" in item:
                continue
            joined = {"prompt": _joined(item.get("prompt"), prompt), "negative": _joined(item.get("negative"), negative)}
            if not joined["prompt"]:
                raise InputError(f"{path.name} says no prompt it was made with, and the job gives none; type a prompt "
                                 "to make it with.")
            made.append({**item, "image": str(path), **settings, **{key: text for key, text in joined.items() if text}})
    return made


def matched_masks(pictures: Sequence[Path], masks: Sequence[Path]) -> dict[Path, Path]:
    """The mask of each picture: the only one, or the one of its name (any extension, any case); `InputError` naming
    the pictures without one, or a mask whose size is not its picture's (as shown: a phone photo turned upright)."""
    if len(masks) == 1:
        found = {path: masks[0] for path in pictures}
    else:
        by_name = {mask.stem.lower(): mask for mask in masks}
        found = {path: by_name[path.stem.lower()] for path in pictures if path.stem.lower() in by_name}
        missing = [path.name for path in pictures if path not in found]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InputError(f"No mask of the same name for {shown} in {masks[0].parent}: each picture is inpainted "
                             "through the mask named as it is (or one mask for all). Add them, or move those "
                             "pictures out.")
    for path, mask in found.items():
        sizes = upright_size(path), upright_size(mask)
        if None not in sizes and sizes[0] != sizes[1]:
            raise InputError(f"The mask {mask.name} is {sizes[1][0]} × {sizes[1][1]} and the picture {path.name} "
                             f"{sizes[0][0]} × {sizes[0][1]}; a mask is the size of its picture.")
    return found


def upright_size(path: Path) -> tuple[int, int] | None:
    """A picture's size as it is shown (its EXIF orientation applied) and kept (scaled down to `MAX_INPUT_SIDE`),
    read from its header; None where it cannot be read here (the job reads it later, and says why)."""
    from PIL import Image

    read_formats()  # HEIC opens once its reader is in
    try:
        with open_any_size(path) as image:
            width, height = image.size
            if image.format == "PNG" and "exif" not in image.info:  # Pillow would decode it to look past its pixels
                exif = Image.Exif()
                for _, data in png_chunks_after_image_data(path, (b"eXIf",), MOST_EXIF_BYTES)[-1:]:
                    exif.load(data)
            else:
                exif = image.getexif()
            turned = exif.get(EXIF_ORIENTATION) in (5, 6, 7, 8)
    except (OSError, ValueError, SyntaxError):
        return None
    return fitted_size((height, width) if turned else (width, height))  # a panorama: as it is kept


class UnreadPictures:
    """`plan_units`' `picture` for a job planned on the GUI thread: each picture (mask) named by a stand-in digest,
    read later off it (`read_pictures`); a folder of 500 phone photos takes seconds to read, and minutes where
    each is a HEIC photo made PNG."""

    def __init__(self) -> None:
        self.paths: dict[str, tuple[str, str]] = {}  # stand-in digest -> (path, what it is, for an error)

    def __call__(self, path: str, what: str) -> str:
        stand_in = hashlib.sha256(f"unread picture {path}".encode()).hexdigest()
        self.paths.setdefault(stand_in, (path, what))
        return stand_in


def read_pictures(units: list[BatchUnit], unread: UnreadPictures, inputs: InputImages,
                  on_progress: Callable[[TransferProgress], None] | None = None,
                  cancel: CancelToken | None = None) -> list[BatchUnit]:
    """The units with the pictures `unread` stood in for read into `inputs` and named by their digests, as
    `InputImages.add_file` names them; `on_progress` counts the pictures, `cancel` stops between them."""
    meter = TransferMeter("pictures", len(unread.paths), 0, on_progress)
    digests = {}
    for stand_in, (path, what) in unread.paths.items():
        if cancel is not None:
            cancel.raise_if_cancelled()
        digests[stand_in] = inputs.add_file(path, what)
        meter.advance(Path(path).stem, 1)
    meter.advance("", 0, force=True)

    def read(digest: str | None) -> str | None:
        return digests.get(digest, digest) if digest is not None else None

    return [replace(unit, request=unit.request.replace(init_image=read(unit.request.init_image),
                                                       mask_image=read(unit.request.mask_image))) for unit in units]


def follow_pictures(units: list[BatchUnit], follows: Sequence[PictureControl | None], inputs: InputImages,
                    on_progress: Callable[[TransferProgress], None] | None = None,
                    cancel: CancelToken | None = None) -> list[BatchUnit]:
    """The units with their ControlNets following each unit's own picture, as `follows` says of each (by its place in
    the request's controls; None: it keeps its image): the picture itself, its Canny edges at the run's size (found
    here, once a picture and size: some 30 ms for a 12-megapixel photo), or a map the worker makes of it
    (`BatchUnit.maps`). A unit without a picture, or a control past those `follows` names, keeps its image.
    `on_progress` counts the units; `cancel` stops between them."""
    edges: dict[tuple[str, tuple[int, int]], str] = {}
    sizes: dict[str, tuple[int, int]] = {}
    sides: dict[str, int] = {}  # each base model's (read from its file)
    meter = TransferMeter("edges", len(units), 0, on_progress)
    followed = []
    for unit in units:
        if cancel is not None:
            cancel.raise_if_cancelled()
        request, picture = unit.request, unit.request.init_image
        if picture is None or not any(follows):
            followed.append(unit)
            meter.advance(unit.picture, 1)
            continue
        controls, maps = list(request.controls), [None] * len(request.controls)
        for index, (control, rule) in enumerate(zip(request.controls, follows)):
            if rule is None:
                continue
            image = picture
            if rule.kind == CANNY:
                opened = None  # a photo is decoded once for its size and its edges
                if picture not in sizes:
                    opened = inputs.open(picture)
                    sizes[picture] = opened.size
                if request.base_model not in sides:
                    sides[request.base_model] = Architecture(base_architecture(request.base_model)).default_size
                size = edges_size(request, sizes[picture], sides[request.base_model])
                if (picture, size) not in edges:
                    found = edge_map(opened or inputs.open(picture), size)
                    edges[picture, size] = inputs.add(png_data(found), "The edge map")
                image = edges[picture, size]
            elif rule.kind:
                maps[index] = rule
            controls[index] = replace(control, image=image)
        followed.append(replace(unit, request=request.replace(controls=tuple(controls)),
                                maps=tuple(maps) if any(maps) else ()))
        meter.advance(unit.picture, 1)
    meter.advance("", 0, force=True)
    return followed


def edges_size(request: GenerationRequest, picture: tuple[int, int], model_side: int) -> tuple[int, int]:
    """The size a picture's Canny edges are found at for `request`, as the Generate tab finds them: the run's (the
    request's size, or the engine's `init_size` of the picture), or the whole picture's where only its masked area
    is made (the engine cuts that area out of the edge map)."""
    if request.masked_padding is not None:
        return picture
    own = init_size(picture, model_side)
    return request.width or own[0], request.height or own[1]


def picture_prompts(path: Path) -> tuple[str, str]:
    """The prompt and negative prompt a picture's file (or the files its tool keeps beside it) says it was made with,
    as the gallery and reuse read them; empty where it says none."""
    try:
        metadata, *_ = read_metadata(path)
    except OSError:  # no picture: read when the job reads it, which says so
        return "", ""
    return (metadata.prompt.strip(), metadata.negative_prompt.strip()) if metadata is not None else ("", "")


def _joined(typed: Any, own: str) -> str:
    """The job's words, then a picture's own, as one prompt."""
    typed = str(typed or "").strip()
    return ", ".join(part for part in (typed.rstrip(","), own) if part) if typed and own else typed or own


def _item_pictures(item: dict[str, Any], picture: Callable[[str, str], str] | None) -> dict[str, Any]:
    """The pictures an item starts from, by digest, and its strength."""
    changes: dict[str, Any] = {}
    for column, field_name, what in (("image", "init_image", "picture"), ("mask", "mask_image", "mask")):
        if column in item:
            if picture is None:
                raise InputError(f"its {what} {item[column]} cannot be read here.")
            changes[field_name] = picture(str(item[column]), f"The {what} {item[column]}")
    if "strength" in item:
        changes["strength"] = _number("strength", item["strength"], False)
    if "mask_image" in changes and "init_image" not in changes:
        raise InputError("it has a mask but no image to repaint; add the image column.")
    return changes


def _item_changes(item: dict[str, Any], resolve: Callable[[str], str]) -> dict[str, Any]:
    """What one job item changes in the defaults (`ValueError` for a value that is not a number)."""
    changes: dict[str, Any] = {"prompt": str(item["prompt"]).strip()}
    if "negative" in item:
        changes["negative_prompt"] = str(item["negative"])
    for key, whole in (("steps", True), ("width", True), ("height", True), ("guidance", False)):
        if key in item:
            changes[key] = _number(key, item[key], whole)
    if "model" in item:
        changes["base_model"] = resolve(str(item["model"]))
    if "lora" in item:
        loras = []
        for spec in str(item["lora"]).split(";"):
            path, sep, weight = spec.strip().rpartition(":")
            path, weight = ((path, _number("the LoRA's weight", weight, False)) if sep and re.fullmatch(r"\d*[.,]?\d+", weight)
                            else (spec.strip(), 1.0))
            loras.append(LoraSpec(resolve(path), weight))
        changes["loras"] = tuple(loras)
    return changes


def _number(key: str, value: Any, whole: bool) -> int | float:
    """A job's number as people and spreadsheets write it: `4`, `4.0`, or with a decimal comma (`1,5`, as Excel
    saves numbers where that is the decimal mark); `ValueError` naming `key` for anything else."""
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+,\d+", text):
        text = text.replace(",", ".")
    try:
        number = float(text) if not isinstance(value, int) or isinstance(value, bool) else value
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not math.isfinite(number) or (whole and number != int(number)):
        raise ValueError(f"{key} {str(value)[:40]!r} is not a {'whole ' if whole else ''}number")
    return int(number) if whole else float(number)


@dataclass
class _Sizes:
    best: int = 1
    best_rate: float = 0.0
    trying: int | None = 1
    cap: int = LARGEST_BATCH
    seconds: dict[int, list[float]] = field(default_factory=dict)  # per image, of each call, by batch size


class BatchSizer:
    """How many images of a batch job run through the engine at once: the number with the most images per second.

    For each kind of request (its `batch_key`) it starts at one image per call and doubles while the images per
    second beat the best so far by 5%, up to `largest`. A size is judged by the faster of its first two calls (the
    first at a new size records CUDA graphs and warms caches). A size that runs out of memory caps the kind below
    it. What it learns lasts as long as the worker process.
    """

    def __init__(self, largest: int = LARGEST_BATCH) -> None:
        self.largest = largest
        self._kinds: dict[str, _Sizes] = {}

    def _kind(self, key: str) -> _Sizes:
        return self._kinds.setdefault(key, _Sizes(cap=self.largest))

    def size(self, key: str) -> int:
        kind = self._kind(key)
        return kind.trying if kind.trying is not None else kind.best

    def chosen(self, key: str) -> int | None:
        """The size settled on for `key`; None while sizes are still being tried."""
        kind = self._kind(key)
        return kind.best if kind.trying is None else None

    def record(self, key: str, size: int, seconds_per_image: float) -> None:
        kind = self._kind(key)
        samples = kind.seconds.setdefault(size, [])
        samples.append(seconds_per_image)
        if size != kind.trying or len(samples) < 2:
            return
        rate = 1 / max(min(samples), 1e-9)
        if rate >= kind.best_rate * FASTER:
            kind.best, kind.best_rate = size, rate
            kind.trying = size * 2 if size * 2 <= kind.cap else None
        else:
            kind.trying = None

    def too_large(self, key: str, size: int) -> None:
        """`size` images at once ran out of memory: never ask for that many again."""
        kind = self._kind(key)
        kind.cap = max(1, size // 2)
        kind.best = min(kind.best, kind.cap)
        if kind.trying is not None and kind.trying > kind.cap:
            kind.trying = None


@dataclass(frozen=True)
class BatchReport:
    units: int
    generated: int
    skipped: int
    manifest: Path


class BatchRunner:
    """Runs units through the generation service into its gallery and exports them to `target`; `sizer` says how
    many units run as one batch (a worker keeps one across jobs)."""

    def __init__(self, service: GenerationService, sizer: BatchSizer | None = None) -> None:
        if service.gallery is None:
            raise ValueError("a batch needs the gallery")
        self.service = service
        self.gallery: Gallery = service.gallery
        self.sizer = sizer or BatchSizer()

    def run(self, job_id: str, units: list[BatchUnit], target: Path, options: ExportOptions,
            on_progress: Callable[[TransferProgress], None] | None = None,
            cancel: CancelToken | None = None) -> BatchReport:
        options.validate()
        cancel = cancel or CancelToken()
        target = target.expanduser().resolve()
        target.mkdir(parents=True, exist_ok=True)
        state_path = target / f".hypersd-batch-{job_id}.json"
        state = _load_state(state_path)
        folder = self.gallery.paths.images / f"batch-{job_id}"
        # What a killed run was writing: its temporary files, where this job writes
        for written in {target, folder, *((target / entry["target"]).parent for entry in state.values()
                                          if entry.get("target"))}:
            if written.is_dir():
                remove_stale_partials(written)
        meter = TransferMeter(f"batch {job_id}", len(units), 0, on_progress)
        maps: dict[tuple[str, PictureControl], str] = {}  # the maps made of each picture, for the units after
        claimed = {str(target / entry["target"]).lower() for entry in state.values() if entry.get("target")}
        generated = skipped = 0
        made: dict[str, int] = {}  # gallery ids of images made ahead of their export, by unit

        def image_path(unit: BatchUnit) -> Path:
            return folder / f"{unit.number:05d}-{unit.request.seed}.png"

        def to_make(unit: BatchUnit) -> bool:
            return state.get(unit.key, {}).get("status") != BatchUnitState.DONE and not image_path(unit).exists()

        try:
            for index, unit in enumerate(units):
                entry = state.get(unit.key, {})
                if entry.get("status") == BatchUnitState.DONE:
                    skipped += 1
                    meter.advance(unit.picture or unit.request.prompt, 1)
                    continue
                if unit.key not in made and image_path(unit).exists():  # made by a run stopped before exporting it
                    made[unit.key] = self.gallery.add_file(image_path(unit))
                elif unit.key not in made:
                    # A stop takes effect before the next images are made: those made already (a batch's) are
                    # exported first, so that a stopped job leaves no made image unexported.
                    cancel.raise_if_cancelled()
                    group = self._group(units[index:], to_make, lambda unit: self._with_maps(unit, maps))
                    for member, result in zip(group, self._generate(group, cancel)):
                        try:
                            saved = self.service.save(result, path=image_path(member))
                        except NotSavedError as error:  # the gallery's folder: a full disk, a drive gone
                            raise NotSavedError(f"The batch stopped: {error.reason}. What was done is kept; run it "
                                                "again to continue.", reason=error.reason) from None
                        if saved.image_id is None:  # the export reads its gallery row: the job cannot go on
                            raise AppError(f"{saved.result.warnings[-1]} The batch stopped there; run it again to "
                                           "continue.")
                        made[member.key] = saved.image_id
                        generated += 1
                image_id = made.pop(unit.key)
                record = self.gallery.store.get(image_id)
                if entry.get("status") == BatchUnitState.PLANNED:
                    destination = target / entry["target"]
                else:
                    destination, status = plan_destination(record, target, options, unit.number, len(units), claimed,
                                                           unit.picture)
                    if status is not None:  # "skip" rule and the file exists
                        state[unit.key] = {"status": BatchUnitState.DONE, "id": image_id, "note": status,
                                           "target": destination.relative_to(target).as_posix()}
                        _save_state(state_path, state)
                        meter.advance(unit.picture or unit.request.prompt, 1)
                        continue
                    state[unit.key] = {"status": BatchUnitState.PLANNED,
                                       "target": destination.relative_to(target).as_posix()}
                    _save_state(state_path, state)
                claimed.add(str(destination).lower())
                if not destination.exists():
                    write_image(record, destination, options)
                state[unit.key] = {"status": BatchUnitState.DONE, "id": image_id,
                                   "target": destination.relative_to(target).as_posix()}
                _save_state(state_path, state)
                meter.advance(unit.picture or unit.request.prompt, 1)
        except CancelledError:
            raise CancelledError(
                f"batch stopped after {sum(e.get('status') == BatchUnitState.DONE for e in state.values())} of "
                f"{len(units)} images; "
                "run it again to continue") from None
        except OSError as error:  # writing into the export folder: a full disk, a drive gone
            raise AppError(f"The batch stopped: {why_not_written(error, target)}. What was done is kept; run it "
                           "again to continue.") from None
        finally:
            meter.advance("", 0, force=True)
        entries = [ExportEntry(state[u.key].get("id", 0), "", state[u.key]["target"], ExportStatus.WRITTEN) for u in units
                   if u.key in state]
        manifest, _ = write_manifests(target, entries, options)
        return BatchReport(len(units), generated, skipped, manifest)

    def _group(self, units: list[BatchUnit], to_make: Callable[[BatchUnit], bool],
               ready: Callable[[BatchUnit], BatchUnit]) -> list[BatchUnit]:
        """The first unit and those right after it that can run with it as one batch, as many as the sizer says, each
        `ready` to run (its maps made)."""
        group = [ready(units[0])]
        key = batch_key(group[0].request)
        if key is None:
            return group
        for unit in units[1:self.sizer.size(key)]:
            if not to_make(unit):
                break
            unit = ready(unit)
            if batch_key(unit.request) != key:
                break
            group.append(unit)
        return group

    def _with_maps(self, unit: BatchUnit, made: dict[tuple[str, PictureControl], str]) -> BatchUnit:
        """The unit with the maps of its picture its ControlNets follow (`BatchUnit.maps`) made, once a picture: its
        request names them, as a request the Generate tab makes names its map."""
        request = unit.request
        controls = list(request.controls)
        for index, rule in enumerate(unit.maps):
            if rule is None:
                continue
            if (request.init_image, rule) not in made:
                try:
                    png, _ = self.service.picture_map(request.init_image, rule.kind, rule.model, rule.detector,
                                                      request.device)
                except (AppError, OSError, ValueError) as error:
                    raise AppError(f"The {rule.kind} map of {unit.picture or 'a picture'} could not be made: "
                                   f"{error}") from None
                made[request.init_image, rule] = self.service.inputs.hold(png, f"The {rule.kind} map")
            controls[index] = replace(controls[index], image=made[request.init_image, rule])
        return replace(unit, request=request.replace(controls=tuple(controls)), maps=()) if unit.maps else unit

    def _generate(self, group: list[BatchUnit], cancel: CancelToken) -> list[GenerationResult]:
        """The group's images; a batch that runs out of memory is made smaller and tried again. While sizes are being
        tried, nothing is compiled for them (a compile per batch size tried would be minutes each on a GPU)."""
        key = batch_key(group[0].request)
        while True:
            trying = key is not None and self.sizer.chosen(key) is None
            try:
                results = self.service.generate_batch(
                    [unit.request.replace(compile=False) if trying else unit.request for unit in group], cancel=cancel)
            except OutOfMemoryError:
                if key is None or len(group) == 1:
                    raise
                self.sizer.too_large(key, len(group))
                group = group[:self.sizer.size(key)]
                continue
            if key is not None:
                self.sizer.record(key, len(group), results[0].timings["per_image_s"])
            return [dataclasses.replace(result, request=unit.request) for unit, result in zip(group, results)]


@dataclass(frozen=True)
class BatchSpec:
    """A whole batch job as the worker process runs it (sent over the pipe to it)."""

    batch_id: str
    units: tuple[BatchUnit, ...]
    target: Path
    options: ExportOptions

    def done_before(self) -> int:
        """Units a stopped earlier run of this job already finished (they are skipped)."""
        state = _load_state(self.target.expanduser().resolve() / f".hypersd-batch-{self.batch_id}.json")
        keys = {unit.key for unit in self.units}
        return sum(1 for key, entry in state.items() if key in keys and entry.get("status") == BatchUnitState.DONE)


def job_id_for(items: list[dict[str, Any]], defaults: GenerationRequest, options: ExportOptions,
               seeds_per_prompt: int, styles: Sequence[PromptStyle] = (),
               follows: Sequence[PictureControl | None] = ()) -> str:
    """A short id that changes when the job's items, its defaults, its styles, how its ControlNets follow its
    pictures (`follow_pictures`) or its export options change."""
    digest = hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode())
    if styles:
        digest.update(json.dumps([dataclasses.astuple(style) for style in styles]).encode())
    if any(follows):
        digest.update(json.dumps([rule and dataclasses.astuple(rule) for rule in follows]).encode())
    digest.update(defaults.to_json().encode())
    digest.update(json.dumps(options.__dict__, sort_keys=True).encode())
    digest.update(str(seeds_per_prompt).encode())
    return digest.hexdigest()[:12]


def _load_state(path: Path) -> dict[str, dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_state(path: Path, state: dict) -> None:
    write_atomic(path, json.dumps(state))
