"""Dynamic prompts: one prompt that stands for many (the Dynamic Prompts extension's syntax, as A1111, Forge and
InvokeAI read it).

- `{red|green|blue}` is one of its options; options may hold choices of their own (`{a {small|big} dog|a cat}`),
  and an empty option is a choice of nothing (`{old |}house`). `{2::red|green}` weighs an option (twice as likely
  as the others when a seed chooses). `{2$$red|green|blue}` is two different options joined by ", ", `{1-3$$…}`
  one to three, `{2$$ and $$…}` joined by " and "; `{2$$__colors__}` two lines of a wildcard file.
- `__colors__` is one line of the wildcard file `colors.txt` in the wildcards folder (`__styles/ink__`: of
  `styles/ink.txt`); its lines may hold choices and wildcards of their own. Empty lines and lines starting with
  `#` are not options.
- Anything else is the prompt's own text: braces without a `|` in them stay as they are (NovelAI's emphasis), as do
  A1111's `(word:1.2)`, `[from:to:0.5]` and `[a|b]`, which the engine reads later. `\\{`, `\\}` and `\\|` are
  the characters themselves.

An image picks its options by its seed (`chosen`), so the same seed gives the same prompt; `every` gives each
combination once, in order, the last choice changing fastest. Torch-free and Qt-free: the window, the command line
and batch jobs expand prompts before a request is made, and each request names the prompt its image was made with.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hypersd_desktop.core.errors import InputError

MAX_COMBINATIONS = 1000  # `every` stops here: a prompt of four choices of ten options each is 10,000 images
MAX_DEPTH = 12  # wildcards within wildcards: deeper than this is a wildcard that names itself
_WILDCARD = re.compile(r"__([A-Za-z0-9_\-./ ]+?)__")
_COUNT = re.compile(r"\s*(\d+)(?:-(\d+))?\$\$(?:(.*?)\$\$)?", re.DOTALL)  # `2$$`, `1-3$$`, `2$$ and $$`
_WEIGHT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)::")  # `2::`, `0.5::` before an option


@dataclass(frozen=True)
class _Choice:
    options: tuple[tuple, ...]  # each a sequence of parts: text (str) or a choice
    weights: tuple[float, ...] | None = None  # how likely each option is, where any was weighed
    counts: tuple[int, int] = (1, 1)  # how many different options are taken, at least and at most
    separator: str = ", "  # what joins several


class Wildcards:
    """The wildcard files of a folder, read when first named (and again when changed)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._read: dict[str, tuple[float, tuple[str, ...]]] = {}

    def options(self, name: str) -> tuple[str, ...]:
        """The lines of `name`.txt; `InputError` saying where it was looked for when there is none."""
        outside = ".." in Path(name).parts or Path(name).is_absolute()  # only the folder's own files
        path = self.folder / f"{name}.txt" if self.folder is not None and not outside else None
        try:
            if path is None:
                raise OSError("no such wildcard file")
            stamp = path.stat().st_mtime_ns
            if name not in self._read or self._read[name][0] != stamp:
                text = path.read_text(encoding="utf-8-sig", errors="replace")
                lines = tuple(line.strip() for line in text.splitlines())
                self._read[name] = (stamp, tuple(line for line in lines if line and not line.startswith("#")))
        except OSError:
            where = f" in {self.folder}" if self.folder is not None else ""
            raise InputError(f"The prompt names the wildcard __{name}__, and there is no wildcard file {name}.txt"
                             f"{where}. Put one there (an option a line), or write the options as {{a|b|c}}.") from None
        if not self._read[name][1]:
            raise InputError(f"The wildcard file {path} has no options: write one a line.")
        return self._read[name][1]


def is_dynamic(text: str, wildcards: Wildcards | None = None) -> bool:
    """Whether `text` has a choice or a wildcard in it (`InputError` for a wildcard that has no file)."""
    return _parts(text, wildcards) is not None


def chosen(text: str, seed: int, wildcards: Wildcards | None = None) -> str:
    """`text` with each choice made at random, by `seed`: the same seed makes the same choices. A text without
    choices is returned as it is."""
    parts = _parts(text, wildcards)
    return text if parts is None else _pick(parts, random.Random(seed))


def every(text: str, wildcards: Wildcards | None = None, most: int = MAX_COMBINATIONS) -> tuple[list[str], bool]:
    """Each combination of `text`'s choices once, at most `most`, and whether there were more."""
    parts = _parts(text, wildcards)
    if parts is None:
        return [text], False
    made = list(itertools.islice(_expand(parts), most + 1))
    return made[:most], len(made) > most


def _parts(text: str, wildcards: Wildcards | None) -> tuple | None:
    """`text` parsed, or None where it has no choice."""
    if "|" not in text and "__" not in text:
        return None
    parts = _parse(text, wildcards, 0)
    return parts if any(isinstance(part, _Choice) for part in parts) else None


def _parse(text: str, wildcards: Wildcards | None, depth: int) -> tuple:
    """`text` as parts: runs of text and choices."""
    if depth > MAX_DEPTH:
        raise InputError("A wildcard names itself, or wildcards name each other in a circle; the prompt cannot be "
                         "made.")
    return _sequence(text, 0, len(text), wildcards, depth, top=True)[0]


def _sequence(text: str, position: int, end: int, wildcards: Wildcards | None, depth: int,
              top: bool) -> tuple[tuple, int]:
    """The parts from `position` up to the `|` that ends an option or to `end` (its choice's closing brace, or the
    end of the text at the top), and where it stopped."""
    parts: list = []
    run: list[str] = []
    square = 0  # A1111's `[a|b]` inside an option: its `|` is the prompt's, not the option's end

    def flush() -> None:
        if run:
            parts.append("".join(run))
            run.clear()

    while position < end:
        char = text[position]
        if char == "\\" and position + 1 < end and text[position + 1] in "{}|":
            run.append(text[position + 1])
            position += 2
        elif char == "{":
            closing = _closing(text, position, end)
            counted = closing is not None and _COUNT.match(text, position + 1, closing) is not None
            if closing is None or not (counted or _has_bar(text, position + 1, closing)):  # `{word}`: NovelAI's
                stop = closing + 1 if closing is not None else position + 1
                run.append(text[position:stop])
                position = stop
                continue
            flush()
            parts.append(_choice(text, position + 1, closing, wildcards, depth))
            position = closing + 1
        elif not top and square == 0 and char == "|":
            break
        elif char == "_" and text.startswith("__", position) and (match := _WILDCARD.match(text, position)):
            flush()
            lines = (wildcards or Wildcards(None)).options(match.group(1).strip())
            parts.append(_Choice(tuple(_parse(line, wildcards, depth + 1) for line in lines)))
            position = match.end()
        else:
            if char == "[":
                square += 1
            elif char == "]" and square:
                square -= 1
            run.append(char)
            position += 1
    flush()
    return tuple(parts), position


def _choice(text: str, position: int, closing: int, wildcards: Wildcards | None, depth: int) -> _Choice:
    """The choice written from `position` to its `closing` brace: its count and separator, its options, each up to
    a `|` of the choice's own, and their weights."""
    counts, separator = (1, 1), ", "
    if (count := _COUNT.match(text, position, closing)) is not None:
        low = int(count[1])
        counts, separator = (low, max(low, int(count[2] or low))), count[3] if count[3] is not None else ", "
        position = count.end()
    options, weights = [], []
    while position <= closing:
        weight = _WEIGHT.match(text, position, closing)
        weights.append(float(weight[1]) if weight else 1.0)
        option, position = _sequence(text, weight.end() if weight else position, closing, wildcards, depth, False)
        options.append(option)
        position += 1  # past the `|` or the brace
    if len(options) == 1 and len(options[0]) == 1 and isinstance(options[0][0], _Choice):
        only = options[0][0]  # `{2$$__colors__}`: the wildcard's lines are the options
        options, weights = list(only.options), list(only.weights or (1.0,) * len(only.options))
    return _Choice(tuple(options), tuple(weights) if any(w != 1.0 for w in weights) else None, counts, separator)


def _unescaped(text: str, start: int, end: int) -> Iterator[tuple[int, str]]:
    """The characters of `text[start:end]` with their positions, past escaped ones (`\\{`, `\\|`)."""
    position = start
    while position < end:
        if text[position] == "\\":
            position += 2
            continue
        yield position, text[position]
        position += 1


def _closing(text: str, start: int, end: int) -> int | None:
    """Where the brace opened at `start` closes before `end` (nested braces counted, escaped ones not); None if it
    does not."""
    level = 0
    for position, char in _unescaped(text, start, end):
        level += {"{": 1, "}": -1}.get(char, 0)
        if level == 0:
            return position
    return None


def _has_bar(text: str, start: int, end: int) -> bool:
    """Whether `text[start:end]` has a `|` of its own (not inside nested braces or A1111's `[a|b]`)."""
    level = 0
    for _, char in _unescaped(text, start, end):
        if char in "{[":
            level += 1
        elif char in "}]":
            level = max(level - 1, 0)
        elif char == "|" and level == 0:
            return True
    return False


def _pick(parts: tuple, rng: random.Random) -> str:
    return "".join(part if isinstance(part, str) else _pick_choice(part, rng) for part in parts)


def _pick_choice(choice: _Choice, rng: random.Random) -> str:
    if choice.counts == (1, 1):
        option = rng.choices(choice.options, choice.weights)[0] if choice.weights else rng.choice(choice.options)
        return _pick(option, rng)
    taken = min(rng.randint(*choice.counts), len(choice.options))
    return choice.separator.join(_pick(choice.options[k], rng) for k in sorted(rng.sample(range(len(choice.options)),
                                                                                          taken)))


def _expand(parts: tuple) -> Iterator[str]:
    """Every text `parts` can make, the last choice changing fastest."""
    if not parts:
        yield ""
        return
    first, rest = parts[0], parts[1:]
    heads = [first] if isinstance(first, str) else _expand_choice(first)
    for head in heads:
        for tail in _expand(rest):
            yield head + tail


WILDCARDS = "wildcards"  # the folder, in the app's data folder
SAMPLE = "colors.txt"
SAMPLE_TEXT = ("# A wildcard file: __colors__ in a prompt is one of these lines (# starts a comment).\n"
               "red\ngreen\nblue\ngolden\nteal\n")


def wildcards_folder(paths) -> Path:
    """Where the wildcard files are (`AppPaths`)."""
    return paths.data / WILDCARDS


def ensure_wildcards(paths) -> Path:
    """The wildcards folder, made with a sample file the first time."""
    folder = wildcards_folder(paths)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SAMPLE).write_text(SAMPLE_TEXT, encoding="utf-8")
    return folder


def _expand_choice(choice: _Choice) -> Iterator[str]:
    """Every text a choice can make: each option's, or each set of as many different options as it takes, in
    order, joined."""
    most = len(choice.options)  # more asked than there are: all of them, as a seed's choice takes
    low, high = min(choice.counts[0], most), min(choice.counts[1], most)
    for taken in range(low, high + 1):
        for options in itertools.combinations(choice.options, taken):
            for texts in itertools.product(*(list(_expand(option)) for option in options)):
                yield choice.separator.join(texts)
