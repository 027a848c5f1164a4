"""What a LoRA's or embedding's makers say to write in the prompt (its trigger words), and the weight they suggest.

Where people's files say it: the file's own header (`modelspec.trigger_phrase`, which Kohya's sd-scripts and
SwarmUI write), and the notes other tools keep beside a model file, read when it is imported:
- `NAME.civitai.info`: Civitai Helper's (and many downloaders') copy of Civitai's answer for the version,
  with its `trainedWords`;
- `NAME.cm-info.json`: Stability Matrix's record of a model it downloaded (`TrainedWords`);
- `NAME.metadata.json`: ComfyUI LoRA Manager's record, holding Civitai's answer (`civitai.trainedWords`, which
  its editor changes too);
- `NAME.json`: A1111's notes on a LoRA (its "activation text", which a click on the LoRA's card adds to the
  prompt, and its "preferred weight").
A Civitai download takes the version's `trainedWords` from the API itself. Each note is a JSON file of a few
kilobytes; a larger, unreadable or damaged one is passed over, as a missing one is.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.prompt_tags import trigger_words
from hypersd_desktop.core.vocab import ModelKind

log = logging.getLogger("hypersd.models")

MAX_NOTE_BYTES = 4 * 1024 * 1024  # Civitai's answers with their descriptions are tens of kilobytes
MAX_WEIGHT = 10.0
MAX_TAG_LENGTH = 100
PREVIEW_SUFFIXES = tuple(f"{middle}.{kind}" for middle in (".preview", "") for kind in ("png", "jpeg", "jpg", "webp"))
NOTED_KINDS = (ModelKind.LORA, ModelKind.EMBEDDING)  # what a prompt's words call up (a checkpoint's are its own)


@dataclass(frozen=True)
class ModelNotes:
    """A model's trigger words and suggested weight (None: not said)."""

    trigger_words: tuple[str, ...] = ()
    preferred_weight: float | None = None


def read_notes(path: Path, header: dict[str, str] | None = None) -> ModelNotes:
    """The notes on the weights file at `path`: from its safetensors `header` metadata and the notes beside it, the
    A1111 and LoRA Manager notes' words first (a person edits those), then Civitai's copies, then the file's."""
    a1111 = _json_beside(path, ".json")
    manager = _json_beside(path, ".metadata.json").get("civitai")
    civitai = _json_beside(path, ".civitai.info")
    matrix = _json_beside(path, ".cm-info.json")
    words = trigger_words(a1111.get("activation text"),
                          manager.get("trainedWords") if isinstance(manager, dict) else None,
                          civitai.get("trainedWords"), matrix.get("TrainedWords"),
                          (header or {}).get("modelspec.trigger_phrase"))
    return ModelNotes(words, preferred_weight(a1111.get("preferred weight")))


def training_tags(header: dict[str, str], limit: int = 12) -> list[tuple[str, int]]:
    """The tags most often in a LoRA's training captions, with their counts, most frequent first, as Kohya's
    sd-scripts records them in the file's header (`ss_tag_frequency`: each dataset folder's tags and counts). A
    trigger word is in every caption, so it leads where there is one; a header without them gives none."""
    try:
        folders = json.loads(header.get("ss_tag_frequency") or "{}")
    except (ValueError, RecursionError):
        return []
    counts: dict[str, int] = {}
    for tags in (folders.values() if isinstance(folders, dict) else ()):
        for tag, count in (tags.items() if isinstance(tags, dict) else ()):
            tag = " ".join(str(tag).split())
            if tag and type(count) is int and count > 0 and len(tag) <= MAX_TAG_LENGTH:
                counts[tag] = counts.get(tag, 0) + count
    return sorted(counts.items(), key=lambda item: (-item[1], item[0].lower()))[:limit]


def preview_beside(path: Path) -> Path | None:
    """The picture other tools keep beside a model file to show it by (A1111's and Civitai Helper's
    `NAME.preview.png`, A1111's `NAME.png`, Stability Matrix's `NAME.preview.jpeg`…), if there is one."""
    for suffix in PREVIEW_SUFFIXES:
        picture = path.with_name(path.stem + suffix)
        try:
            if picture.is_file():
                return picture
        except OSError:  # a name the file system refuses, a drive gone
            return None
    return None


def preferred_weight(value) -> float | None:
    """A weight a note suggests: a finite number within ±10 other than 0 (A1111's "use the default")."""
    if type(value) not in (int, float) or not math.isfinite(value) or value == 0 or abs(value) > MAX_WEIGHT:
        return None
    return float(value)


def _json_beside(path: Path, suffix: str) -> dict:
    note = path.with_name(path.stem + suffix)
    try:
        if not note.is_file() or note.stat().st_size > MAX_NOTE_BYTES:
            return {}
        value = json.loads(note.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        log.info("passed over %s: %s", note.name, error)
        return {}
    return value if isinstance(value, dict) else {}
