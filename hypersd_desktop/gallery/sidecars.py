"""Generation parameters kept beside an image instead of in it, for images whose file says nothing.

- AUTOMATIC1111 (and Forge) with "Create a text file next to every image with generation parameters": the
  `parameters` text in `<image name>.txt`.
- Fooocus, which by default writes no metadata into its images: each day's output folder has a `log.html`
  listing every image made there, each entry a table of its settings and (from 2.1.85x) a "Copy to Clipboard"
  button holding them as URL-quoted JSON: keyed as in Fooocus's `parameters` JSON (2.2 and later), or by the
  table's labels ("Prompt", "Guidance Scale"; 2.1). An entry without the button is read from its table, and
  one of before the table (autumn 2023) from its paragraphs.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import urllib.parse
from functools import lru_cache
from pathlib import Path

from hypersd_desktop.core.text import saved_text
from hypersd_desktop.gallery.formats import MAX_PASTED, ImageMetadata, parse_a1111, parse_text
from hypersd_desktop.gallery.formats.fooocus import parse_fooocus

MAX_TEXT_BYTES = 1024 * 1024  # a parameters text beside an image
MAX_LOG_BYTES = 64 * 1024 * 1024  # a Fooocus day's log: ~3 kB an image
FOOOCUS_LOG = "log.html"

# In one image's entry: its file name (the link around its picture), its settings (the button's call) and the
# table's rows (2.1's cells are class 'key', later ones 'label')
_LINK = re.compile(r'<a href="([^"<>]+)"')
_BUTTON = re.compile(r"to_clipboard\('([^'<>]*)'\)")
_ROW = re.compile(r"<td class='(?:key|label)'>([^<]*)</td><td class='value'>(.*?)</td></tr>", re.DOTALL)
# Before November 2023 (2.1.78x and older) an entry was paragraphs: `<p>Prompt: <b>…</b> </p>`, then two
# settings a paragraph (`<p>Sharpness: <b>2.0</b>, Guidance Scale: <b>7.0</b></p>`), then its picture
_PICTURE = re.compile(r'<img src="([^"<>]+)"')
_PARAGRAPH = re.compile(r"(?:<p>|, )([A-Za-z][A-Za-z0-9 ]*): <b>(.*?)</b>", re.DOTALL)
# Fooocus 2.1's labels, by the keys of its later JSON (`parse_fooocus` reads those)
_LABELS = {"Prompt": "prompt", "Negative Prompt": "negative_prompt", "Fooocus V2 Expansion": "prompt_expansion",
           "Styles": "styles", "Performance": "performance", "Resolution": "resolution", "Sharpness": "sharpness",
           "Guidance Scale": "guidance_scale", "ADM Guidance": "adm_guidance", "Base Model": "base_model",
           "Refiner Model": "refiner_model", "Refiner Switch": "refiner_switch", "Sampler": "sampler",
           "Scheduler": "scheduler", "Seed": "seed", "Steps": "steps", "VAE": "vae", "Version": "version"}


def sidecar_metadata(path: Path) -> ImageMetadata | None:
    """What the files beside an image say of it, or None."""
    text = path.with_suffix(".txt")
    try:
        if text.is_file() and text.stat().st_size <= MAX_TEXT_BYTES:
            # as A1111 wrote it (UTF-8; CRLF on Windows), or as an editor saved it again (a BOM, UTF-16, "ANSI")
            found = parse_a1111(saved_text(text.read_bytes()).replace("\r\n", "\n"))
            if found is not None:
                return found
        log = path.parent / FOOOCUS_LOG
        if log.is_file():
            stat = log.stat()
            entry = _fooocus_log(str(log), stat.st_mtime_ns, stat.st_size).get(path.name)
            return parse_fooocus(entry) if entry else None
    except OSError:
        return None
    return None


def settings_file(path: Path) -> ImageMetadata | None:
    """The settings a text file of generation data holds (A1111's `.txt`, a ComfyUI workflow's `.json`, another
    tool's JSON record, in whatever encoding an editor saved it: `parse_text`), or None; `OSError` when it cannot
    be read."""
    with path.open("rb") as file:
        raw = file.read(4 * MAX_PASTED)  # UTF-8 takes up to 4 bytes a character; UTF-16 2
    return parse_text(saved_text(raw))


@lru_cache(maxsize=4)  # an import walks a folder's images one by one: its log is read once
def _fooocus_log(path: str, _mtime_ns: int, size: int) -> dict[str, str]:
    """The JSON text of each image a Fooocus log lists, by file name."""
    if size > MAX_LOG_BYTES:
        return {}
    html = Path(path).read_text(encoding="utf-8", errors="replace")
    entries: dict[str, str] = {}
    tables = 'class="image-container"' in html
    for block in html.split('class="image-container"' if tables else '<div id="')[1:]:
        link = _LINK.search(block) if tables else _PICTURE.search(block)
        if link is None:
            continue
        settings = _button_settings(block)
        if settings is None:  # before the button: the table's rows, or before the table the paragraphs
            settings = {label.strip(): html_lib.unescape(re.sub(r"\s*<\s*/?\s*br\s*/?\s*>\s*", "\n", value)).strip()
                        for label, value in (_ROW if tables else _PARAGRAPH).findall(block)}
        settings = {_key(name): value for name, value in settings.items()}
        if "prompt" in settings:
            entries.setdefault(urllib.parse.unquote(link[1]), json.dumps(settings))  # the newest first: prepended
    return entries


def _button_settings(block: str) -> dict | None:
    button = _BUTTON.search(block)
    if button is None:
        return None
    try:
        settings = json.loads(urllib.parse.unquote(button[1]))
    except (ValueError, RecursionError):
        return None
    return settings if isinstance(settings, dict) else None


def _key(name: str) -> str:
    """A setting's key as Fooocus's JSON has it, from 2.1's label ("LoRA 2": `lora_combined_2`)."""
    if match := re.fullmatch(r"LoRA (\d+)", name):
        return f"lora_combined_{match[1]}"
    return _LABELS.get(name, name)
