"""What every command group shares: exit statuses, name resolution, LoRA arguments, progress."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.progress import TransferProgress
from hypersd_desktop.engine.types import LoraSpec

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


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


def date_argument(text: str) -> float:
    import time

    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"dates are YYYY-MM-DD, not {text!r}") from None


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
