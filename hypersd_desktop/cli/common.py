"""What every command group shares: exit statuses, name resolution, LoRA arguments, progress."""

from __future__ import annotations

import argparse
import codecs
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import TransferProgress
from hypersd_desktop.core.prompt_styles import PromptStyle, StyleBook, styles_file
from hypersd_desktop.engine.types import LoraSpec

if TYPE_CHECKING:
    from hypersd_desktop.models.registry import InstalledModel

EXIT_UNEXPECTED = 1  # a bug: the traceback is in cli.log
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


def warn(notice: str | None) -> None:
    """Say on stderr what a service found on opening (a damaged database put aside)."""
    if notice:
        print(f"warning: {notice}", file=sys.stderr)


def parse_lora(text: str) -> LoraSpec:
    """`PATH` or `PATH:WEIGHT` (a drive letter's colon is not mistaken for a weight)."""
    path, sep, weight = text.rpartition(":")
    if sep and path and not weight.startswith(("\\", "/")):
        try:
            return LoraSpec(path, float(weight))
        except ValueError:
            pass
    return LoraSpec(text, 1.0)


def resolver():
    """Paths as given; a name that is no path is looked up in the model library."""
    library = None

    def resolve(name_or_path: str) -> str:
        nonlocal library
        path = Path(name_or_path).expanduser()
        if path.exists():
            return str(path.resolve())
        if library is None:
            from hypersd_desktop.models.library import ModelLibrary

            library = ModelLibrary(AppPaths.default())
        return library.resolve(name_or_path)

    return resolve


@contextmanager
def installed_library() -> Iterator:
    """The model library, open for the block, or None where none was made yet (nothing is installed)."""
    paths = AppPaths.default()
    if not paths.data.exists():
        yield None
        return
    from hypersd_desktop.models.library import ModelLibrary

    library = ModelLibrary(paths)
    try:
        yield library
    finally:
        library.close()


def window_choice() -> tuple[str, InstalledModel | None, str]:
    """For a command given no --model: the base model the window starts with (the one chosen last, while installed,
    else the first installed whose files are here) and its Hyper-SD file likewise (the last one for the model's
    architecture, else the first; none for a checkpoint with its recipe built in). Returns the base model's path,
    the Hyper-SD file, and a line saying what was chosen."""
    from hypersd_desktop.core.settings import load_settings
    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine.recipes import recipe_for_checkpoint

    settings = load_settings()
    with installed_library() as library:
        bases = library.registry.list(kind=ModelKind.BASE) if library is not None else []
        present = [model for model in bases if Path(model.path).exists()]
        if not present:
            raise InputError("No base model is installed: `hypersd-desktop models download sd15` (or `sdxl`) gets one, "
                             "`hypersd-desktop models import PATH` adds one you have; or name a file with --model.")
        model = next((m for m in present if m.id == settings.last_model), present[0])
        built_in = recipe_for_checkpoint(model.path) is not None
        offered = [] if built_in else library.hyper_files(model.architecture)
        hyper = next((m for m in offered if m.id == settings.last_hyper), offered[0] if offered else None)
    if hyper is not None:
        said = f"{model.name} with {hyper.recipe}"
    else:
        said = f"{model.name} ({'its Hyper-SD recipe built in' if built_in else 'no Hyper-SD file installed'})"
    return model.path, hyper, f"using {said}, as the window would; --model names another"


def with_windows_model(loras: list[LoraSpec], named: bool, resolve) -> tuple[str, list[LoraSpec], str | None]:
    """For a command given no --model: the base model the window would use (`window_choice`), said on stderr, the
    `loras` with its Hyper-SD file first (unless `named`, one the command names already, or one of `loras` is a
    Hyper-SD file), and the UNet when its Hyper-SD file is one."""
    from hypersd_desktop.core.vocab import ModelKind
    from hypersd_desktop.engine.recipes import recipe_for_file

    model, hyper, said = window_choice()
    print(f"note: {said}", file=sys.stderr)
    if hyper is None or named or any(recipe_for_file(resolve(spec.path)) for spec in loras):
        return model, loras, None
    if hyper.kind == ModelKind.UNET:
        return model, loras, hyper.path
    return model, [LoraSpec(hyper.path, 1.0), *loras], None


def bounded_int(low: int, high: int):
    """An argparse type: a whole number from `low` to `high`, or a one-line error naming the range."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range ({low:,} to {high:,})")
        return value

    return number


image_id = bounded_int(1, 2**63 - 1)


def image_ids(text: str) -> tuple[int, ...]:
    """Comma-separated image ids (`3,7,12`)."""
    return tuple(image_id(part.strip()) for part in text.split(",") if part.strip())


def date_argument(text: str) -> float:
    import time

    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"dates are YYYY-MM-DD, not {text!r}") from None


# C0 controls but tab, newline and carriage return (progress bars redraw with it), DEL, C1 controls,
# and the bidirectional overrides that can make text read backwards.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control characters written as `\\uXXXX`: data from images and files (a prompt, a
    file name) cannot move the cursor, retitle or clear the terminal. The escapes are also valid
    inside JSON strings, so JSON output stays JSON."""
    return _UNSAFE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


def speak_utf8(stream) -> None:
    """Make `stream` write UTF-8 where it writes a narrower encoding: on Windows, output sent to a file or a pipe
    is in the ANSI code page (cp1252), which has no 猫 or ユーザー, and printing a prompt or a path with them
    raised UnicodeEncodeError. JSON is UTF-8 by its standard, and UTF-8 says every prompt."""
    encoding = getattr(stream, "encoding", None)
    if encoding and codecs.lookup(encoding).name != "utf-8" and hasattr(stream, "reconfigure"):
        stream.reconfigure(encoding="utf-8")


class TerminalSafe:
    """A text stream that escapes control characters in everything written to it (`printable`)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class ProgressBar:
    """A progress bar on stderr fed with `TransferProgress` (tqdm draws it: counts, rate, time left).

    `unit` is "B" for byte-sized work (shown as KB/MB/GB with a rate in bytes per second) or a
    word such as "image". Nothing is drawn when stderr is not a terminal, unless `enabled`.
    """

    def __init__(self, title: str, unit: str = "B", enabled: bool | None = None) -> None:
        self.title = title
        self.unit = unit
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None

    def __call__(self, progress: TransferProgress) -> None:
        if not self.enabled or progress.total <= 0:
            return
        if self._bar is None:
            from tqdm import tqdm

            binary = self.unit == "B"
            self._bar = tqdm(total=progress.total, initial=progress.done, desc=self.title, unit=self.unit,
                             unit_scale=binary, unit_divisor=1024 if binary else 1000, file=sys.stderr,
                             dynamic_ncols=True, leave=True, mininterval=0.1)
        self._bar.total = progress.total
        self._bar.update(progress.done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def styles_named(names: list[str]) -> list[PromptStyle]:
    """The styles `--style` names, from the app's styles file; `InputError` names one there is none of."""
    return _style_book().named(names) if names else []


def styles_of_book() -> list[PromptStyle]:
    """Every style of the app's styles file (a plot's Styles axis looks its values up among them)."""
    return _style_book().styles


def _style_book() -> StyleBook:
    book = StyleBook(styles_file(AppPaths.default()))
    book.load()
    if book.problem:
        raise InputError(f"{book.problem} ({book.path})")
    return book


def add_style_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style", action="append", default=[], metavar="NAME",
                        help="a prompt style of the app's styles.csv (A1111's Styles: made in the window, or an A1111 "
                             "styles.csv imported there) adding its words to the prompts; repeatable, applied in "
                             "the order given")


def stop_folders(asked: list[Path], listed: list[Path], stop: Callable[[Path], None], not_listed: str,
                 stopped: str) -> int:
    """Stop each folder of `asked` that is in `listed` (`stop(resolved)`, then `stopped` said with it), or say
    `not_listed` with one that is not; returns how many were not."""
    failed = 0
    for folder in asked:
        resolved = folder.expanduser().resolve()
        if resolved not in listed:
            print(f"{folder} {not_listed}", file=sys.stderr)
            failed += 1
            continue
        stop(resolved)
        print(f"{stopped} {resolved}", file=sys.stderr)
    return failed
