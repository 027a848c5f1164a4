"""Batch jobs: a job file of prompts generated into the gallery and exported by a template.

A job file is text (one prompt per line; `#` starts a comment), CSV with a header, or JSON (a
list of objects, or {"items": [...]}). Columns: prompt, negative, seed, seeds ("1,2,5" or
"10-13"), steps, guidance, model, lora ("path[:weight];…"), width, height. Missing values take
the job's defaults. Every (item, seed) is one unit.

Each unit's gallery file has a fixed name and its export path is recorded in a state file in the
export folder before it is written, both written through a temporary name and renamed; so a job
that is stopped or killed and started again skips what is done and produces every unit exactly
once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hypersd_desktop.core.errors import CancelledError, InputError
from hypersd_desktop.core.files import write_atomic
from hypersd_desktop.core.progress import CancelToken, TransferMeter, TransferProgress
from hypersd_desktop.core.vocab import BatchUnitState, ExportStatus
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.export import ExportEntry, ExportOptions, plan_destination, write_image, write_manifests
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.worker.service import GenerationService

MAX_UNITS = 100_000  # images in one job
COLUMNS = ("prompt", "negative", "seed", "seeds", "steps", "guidance", "model", "lora", "width", "height")


@dataclass(frozen=True)
class BatchUnit:
    number: int  # 1-based, in job order
    item: int
    request: GenerationRequest

    @property
    def key(self) -> str:
        return f"{self.number}:{self.item}:{self.request.seed}"


def parse_job(path: Path) -> list[dict[str, Any]]:
    """The job file's items as dicts of the known columns."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"The job file {path} cannot be read: {error.strerror or error}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:  # an "ANSI" file from an older Windows editor
        text = raw.decode("cp1252", errors="replace")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            raise InputError(f"{path.name} is not valid JSON ({reason}).") from None
        items = data.get("items") if isinstance(data, dict) else data
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InputError(f"{path.name}: a JSON job is a list of objects, or an object with an \"items\" list.")
    elif suffix == ".csv":
        try:
            items = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as error:
            raise InputError(f"{path.name} is not a CSV job file this app can read ({error}).") from None
    else:
        items = [{"prompt": line.strip()} for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    cleaned = []
    for number, item in enumerate(items, start=1):
        if len(cleaned) >= MAX_UNITS:
            raise InputError(f"{path.name} has more than {MAX_UNITS:,} prompts; split it into several jobs.")
        unknown = {str(key) for key in item} - set(COLUMNS)
        if unknown:
            raise InputError(f"{path.name}, item {number}: unknown column(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(COLUMNS)}.")
        if not str(item.get("prompt") or "").strip():
            raise InputError(f"{path.name}, item {number}: the prompt is empty.")
        cleaned.append({key: value for key, value in item.items() if value not in (None, "")})
    if not cleaned:
        raise InputError(f"{path.name} has no prompts.")
    return cleaned


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
    return [first + k for k in range(per_prompt)]


def plan_units(items: list[dict[str, Any]], defaults: GenerationRequest, seeds_per_prompt: int = 1,
               resolve: Callable[[str], str] = str) -> list[BatchUnit]:
    """Every (item, seed) as a request built on `defaults`; `resolve` maps model/LoRA names to paths.

    Raises `InputError` naming the item for any value that cannot be used.
    """
    units: list[BatchUnit] = []
    for index, item in enumerate(items, start=1):
        try:
            base = defaults.replace(**_item_changes(item, resolve))
            for seed in _seeds(item, defaults.seed + (index - 1) * seeds_per_prompt, seeds_per_prompt):
                units.append(BatchUnit(len(units) + 1, index, replace(base, seed=seed, batch_size=1)))
        except (ValueError, TypeError, OverflowError) as error:
            raise InputError(f"Job item {index}: {error}.") from None
        except InputError as error:
            raise InputError(f"Job item {index}: {error}") from None
        if len(units) > MAX_UNITS:
            raise InputError(f"The job makes more than {MAX_UNITS:,} images; split it into several jobs.")
    return units


def _item_changes(item: dict[str, Any], resolve: Callable[[str], str]) -> dict[str, Any]:
    """What one job item changes in the defaults (`ValueError` for a value that is not a number)."""
    changes: dict[str, Any] = {"prompt": str(item["prompt"]).strip()}
    if "negative" in item:
        changes["negative_prompt"] = str(item["negative"])
    for key, cast in (("steps", int), ("width", int), ("height", int), ("guidance", float)):
        if key in item:
            try:
                changes[key] = cast(item[key])
            except (TypeError, ValueError):
                raise ValueError(f"{key} {str(item[key])[:40]!r} is not a number") from None
    if "model" in item:
        changes["base_model"] = resolve(str(item["model"]))
    if "lora" in item:
        loras = []
        for spec in str(item["lora"]).split(";"):
            path, sep, weight = spec.strip().rpartition(":")
            path, weight = (path, float(weight)) if sep and re.fullmatch(r"[\d.]+", weight) else (spec.strip(), 1.0)
            loras.append(LoraSpec(resolve(path), weight))
        changes["loras"] = tuple(loras)
    return changes


@dataclass(frozen=True)
class BatchReport:
    units: int
    generated: int
    skipped: int
    manifest: Path


class BatchRunner:
    """Runs units through the generation service into its gallery and exports them to `target`."""

    def __init__(self, service: GenerationService) -> None:
        if service.gallery is None:
            raise ValueError("a batch needs the gallery")
        self.service = service
        self.gallery: Gallery = service.gallery

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
        meter = TransferMeter(f"batch {job_id}", len(units), 0, on_progress)
        claimed = {str(target / entry["target"]).lower() for entry in state.values() if entry.get("target")}
        generated = skipped = 0
        try:
            for unit in units:
                cancel.raise_if_cancelled()
                entry = state.get(unit.key, {})
                if entry.get("status") == BatchUnitState.DONE:
                    skipped += 1
                    meter.advance(unit.request.prompt, 1)
                    continue
                image = folder / f"{unit.number:05d}-{unit.request.seed}.png"
                if image.exists():  # made by a run that was stopped before it was exported
                    image_id = self.gallery.add_file(image)
                else:
                    (result,) = self.service.generate(unit.request, cancel=cancel)
                    image_id = self.service.save(result, path=image).image_id
                    generated += 1
                record = self.gallery.store.get(image_id)
                if entry.get("status") == BatchUnitState.PLANNED:
                    destination = target / entry["target"]
                else:
                    destination, status = plan_destination(record, target, options, unit.number, len(units), claimed)
                    if status is not None:  # "skip" rule and the file exists
                        state[unit.key] = {"status": BatchUnitState.DONE, "id": image_id, "note": status,
                                           "target": destination.relative_to(target).as_posix()}
                        _save_state(state_path, state)
                        meter.advance(unit.request.prompt, 1)
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
                meter.advance(unit.request.prompt, 1)
        except CancelledError:
            raise CancelledError(
                f"batch stopped after {sum(e.get('status') == BatchUnitState.DONE for e in state.values())} of "
                f"{len(units)} images; "
                "run it again to continue") from None
        finally:
            meter.advance("", 0, force=True)
        entries = [ExportEntry(state[u.key].get("id", 0), "", state[u.key]["target"], ExportStatus.WRITTEN) for u in units
                   if u.key in state]
        manifest, _ = write_manifests(target, entries, options)
        return BatchReport(len(units), generated, skipped, manifest)


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
               seeds_per_prompt: int) -> str:
    """A short id that changes when the job's items, its defaults or its export options change."""
    digest = hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode())
    digest.update(defaults.to_json().encode())
    digest.update(json.dumps(options.__dict__, sort_keys=True).encode())
    digest.update(str(seeds_per_prompt).encode())
    return digest.hexdigest()[:12]


def _load_state(path: Path) -> dict[str, dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_state(path: Path, state: dict) -> None:
    write_atomic(path, json.dumps(state))
