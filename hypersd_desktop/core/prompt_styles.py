"""Prompt styles: named pieces of prompt and negative prompt added to the prompt typed, as A1111's Styles.

A style's text either holds `{prompt}`, which the typed prompt takes the place of (`cinematic photo of {prompt},
film grain`), or is added after the prompt with ", " between. Styles apply in the order chosen, each to the prompt
the ones before it made, to the prompt and the negative prompt alike (A1111's `merge_prompts`).

The styles live in `<data>/styles.csv`, in A1111's own file format (columns `name`, `prompt`, `negative_prompt`,
UTF-8 with a byte-order mark), so an A1111 or Forge `styles.csv` can be copied in or imported and ours read there.
Imports also take the JSON style lists of Fooocus and ComfyUI's SDXL Prompt Styler (a list of objects with the same
three fields). An image records the prompt its styles made, as A1111's does; reusing it finds the styles in that
prompt again (`take_out`, A1111's `extract_styles_from_prompt`), so the prompt box gets the typed prompt back and the
styles are chosen, and the image made again is the same. Qt-free: the window and the command line share it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.files import write_atomic

STYLES_FILE = "styles.csv"
PLACE = "{prompt}"
COLUMNS = ("name", "prompt", "negative_prompt")  # A1111's, in its order
_CONFLICT = ("<<<<<<< ", "=======", ">>>>>>> ")  # a merge's conflict markers, as shared style lists hold them
MAX_STYLES_BYTES = 16 * 1024 * 1024  # a style list far past any real one is not a style list


@dataclass(frozen=True)
class PromptStyle:
    name: str
    prompt: str = ""
    negative_prompt: str = ""

    @property
    def empty(self) -> bool:
        return not self.prompt.strip() and not self.negative_prompt.strip()


def styles_file(paths) -> Path:
    """Where the app's styles are (`AppPaths`)."""
    return paths.data / STYLES_FILE


def merge(style_text: str, prompt: str) -> str:
    """`prompt` with one style's text: in the place of `{prompt}`, or after it with ", " between."""
    if PLACE in style_text:
        return style_text.replace(PLACE, prompt)
    return ", ".join(part for part in (prompt.strip(), style_text.strip()) if part)


def apply_styles(prompt: str, negative: str, styles: Iterable[PromptStyle]) -> tuple[str, str]:
    """The prompt and negative prompt with `styles` applied, in their order."""
    for style in styles:
        prompt, negative = merge(style.prompt, prompt), merge(style.negative_prompt, negative)
    return prompt, negative


def _unmerged(style_text: str, prompt: str) -> str | None:
    """The prompt that `merge(style_text, …)` turned into `prompt`, or None where it did not."""
    prompt, style_text = prompt.strip(), style_text.strip()
    if PLACE in style_text:
        parts = style_text.split(PLACE)
        if len(parts) == 2:
            left, right = parts
            if prompt == (left + right).strip():  # an empty prompt: "score_9, {prompt}" made "score_9, "
                return ""
            if len(prompt) >= len(left) + len(right) and prompt.startswith(left) and prompt.endswith(right):
                return prompt[len(left):len(prompt) - len(right)]
            return None
        # `{prompt}` more than once: the typed prompt is the same text at each place
        fixed = sum(len(part) for part in parts)
        places = len(parts) - 1
        if len(prompt) < fixed or (len(prompt) - fixed) % places:
            return None
        typed = prompt[len(parts[0]):len(parts[0]) + (len(prompt) - fixed) // places]
        return typed if style_text.replace(PLACE, typed) == prompt else None
    if not prompt.endswith(style_text):
        return None
    typed = prompt[:len(prompt) - len(style_text)]
    if not style_text or not typed:
        return typed
    # merge joined them with ", ": "a very sharp focus" ends with the style "sharp focus" but was not made by it
    return typed[:-2] if typed.endswith(", ") else None


def take_out(prompt: str, negative: str, styles: Iterable[PromptStyle],
             negative_read: bool = True) -> tuple[list[str], str, str]:
    """The styles whose text `prompt` and `negative` end with (or are made around), taken out again: their names in
    the order they were applied, and the prompts without them. A style matches only where both its prompt and its
    negative prompt do, as in A1111 (its prompt alone where the negative prompt was not `negative_read`: a recipe
    without guidance); a style of no text never does. Where two match at once (one's text ends another's), the one
    with more text is taken out first: "nude" within "NSFW, nude" is not a style of its own."""
    left = sorted((style for style in styles if style.prompt.strip() or negative_read and not style.empty),
                  key=lambda style: -len(style.prompt.strip()) - len(style.negative_prompt.strip()))
    found: list[str] = []
    while True:
        for style in left:
            typed = _unmerged(style.prompt, prompt)
            typed_negative = _unmerged(style.negative_prompt, negative) if negative_read else negative
            if typed is not None and typed_negative is not None:
                prompt, negative = typed, typed_negative
                found.append(style.name)
                left.remove(style)
                break
        else:
            return found[::-1], prompt, negative


def unapplied(text: str, styles: Sequence[PromptStyle], negative: bool = False) -> str | None:
    """`text` as it was before `styles` were applied to it (the negative prompts' parts with `negative`), or None
    where they were not."""
    for style in reversed(styles):
        text = _unmerged(style.negative_prompt if negative else style.prompt, text)
        if text is None:
            return None
    return text


def _text(data: bytes) -> str:
    """A style file's text: UTF-8 (with or without a byte-order mark), or, where it is not, as Excel on Windows
    saves a CSV (cp1252)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_csv(text: str) -> list[PromptStyle]:
    """Styles from A1111's CSV: columns `name`, `prompt` (`text` in its first version), `negative_prompt`, any
    others ignored; rows without a name, whose name starts with `#` (a comment) or that are a merge's conflict markers
    (`<<<<<<< HEAD`) are left out. A spreadsheet that
    saved it with semicolons (Excel where the decimal point is a comma) is read too."""
    text = text.removeprefix("\ufeff")
    header = text.lstrip().split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True)
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        return []
    columns = [cell.strip().lower() for cell in rows[0]]
    if "name" not in columns or not {"prompt", "text"} & set(columns):
        raise InputError("This is not a styles file: its first line should name the columns name, prompt and "
                         f"negative_prompt (it has {', '.join(repr(c) for c in columns[:6]) or 'none'}).")

    def cell(row: list[str], column: str) -> str:
        index = columns.index(column) if column in columns else None
        return row[index] if index is not None and index < len(row) else ""

    styles = []
    for row in rows[1:]:
        name = cell(row, "name").strip()
        if name and not name.startswith(("#", *_CONFLICT)):
            styles.append(PromptStyle(name, cell(row, "prompt" if "prompt" in columns else "text"),
                                      cell(row, "negative_prompt")))
    return styles


def parse_json(text: str) -> list[PromptStyle]:
    """Styles from a JSON list of `{"name", "prompt", "negative_prompt"}` objects: Fooocus's `sdxl_styles/*.json`
    and ComfyUI's SDXL Prompt Styler files."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise InputError(f"This style list is not valid JSON ({error}).") from None
    if isinstance(data, dict) and isinstance(data.get("styles"), list):
        data = data["styles"]
    if not isinstance(data, list):
        raise InputError("This JSON file is not a style list: it should be a list of styles, each with a name, a "
                         "prompt and a negative_prompt.")
    styles = []
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"].strip():
            prompt, negative = entry.get("prompt", ""), entry.get("negative_prompt", "")
            styles.append(PromptStyle(entry["name"].strip(), prompt if isinstance(prompt, str) else "",
                                      negative if isinstance(negative, str) else ""))
    return styles


def read_styles(path: Path) -> list[PromptStyle]:
    """The styles in `path` (A1111's CSV, or a JSON style list by its `.json` name); a name that comes again
    takes the place of the earlier style, as A1111 reads it. `InputError` says why a file cannot be read."""
    try:
        if path.stat().st_size > MAX_STYLES_BYTES:
            raise InputError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB: too large to be a style list.")
        text = _text(path.read_bytes())
    except OSError as error:
        raise InputError(f"{path.name} could not be read: {error.strerror or error}.") from None
    styles = parse_json(text) if path.suffix.lower() == ".json" else parse_csv(text)
    return list({style.name: style for style in styles}.values())


def merged(styles: Sequence[PromptStyle], incoming: Sequence[PromptStyle]) -> tuple[list[PromptStyle], int]:
    """`styles` with `incoming` added (an import): a style of a name there already takes its place, where it is; how
    many did."""
    by_name = {style.name: style for style in styles}
    replaced = sum(style.name in by_name for style in incoming)
    by_name.update((style.name, style) for style in incoming)
    return list(by_name.values()), replaced


def csv_text(styles: Sequence[PromptStyle]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # csv's own line ends, as A1111's DictWriter writes them
    writer.writerow(COLUMNS)
    writer.writerows((style.name, style.prompt, style.negative_prompt) for style in styles)
    return "\ufeff" + out.getvalue()


def write_styles(path: Path, styles: Sequence[PromptStyle]) -> None:
    """Write `styles` to `path` in A1111's format, keeping the file it replaces as `<name>.bak` (as A1111 does), in
    one step: a crash leaves the old file or the new one."""
    if path.is_file():
        shutil.copyfile(path, path.with_name(path.name + ".bak"))
    write_atomic(path, csv_text(styles))


class StyleBook:
    """The app's styles file: read when asked, written whole on each change (so a style list edited outside the
    app while it runs is read again by `load`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.styles: list[PromptStyle] = []
        self.problem = ""  # why the file could not be read, where it could not (the styles are then none)
        self._read: tuple[int, int] | None = None  # the file's version when it was read

    def load(self) -> list[PromptStyle]:
        self.problem = ""
        self._read = self._version()
        try:
            self.styles = read_styles(self.path) if self.path.is_file() else []
        except InputError as error:
            self.styles, self.problem = [], str(error)
        return self.styles

    def changed(self) -> bool:
        """Whether the file changed (edited in a text editor, copied in) since it was read."""
        return self._version() != self._read

    def _version(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def named(self, names: Iterable[str]) -> list[PromptStyle]:
        """The styles of `names`, in that order; `InputError` names those there are none of."""
        by_name = {style.name: style for style in self.styles}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise InputError(f"No style is named {', '.join(repr(name) for name in missing)} in {self.path}"
                             + (f" (its styles: {', '.join(sorted(by_name)[:12])})." if by_name else ", which has "
                                "no styles yet: make one in the window (Styles → Edit styles…) or import one."))
        return [by_name[name] for name in names]

    def save(self, styles: Sequence[PromptStyle]) -> None:
        write_styles(self.path, styles)
        self.styles = list(styles)
        self._read = self._version()
