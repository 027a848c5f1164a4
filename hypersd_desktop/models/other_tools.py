"""The models other Stable Diffusion tools keep on this computer, found where those tools put them by default, so
that a person who has used AUTOMATIC1111, Forge, ComfyUI or InvokeAI starts with the models they have (imported
where they are and linked: models/library.py) instead of downloading them again.

Only the places each tool's installer or instructions use are looked at (the home folder, the system drive's root
on Windows, Hugging Face's cache), and each is walked only far enough to count its weights files: nothing is read.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

# (tool, the models folder relative to where the tool is usually put)
PLACES: tuple[tuple[str, str], ...] = (
    ("AUTOMATIC1111", "stable-diffusion-webui/models"),
    ("AUTOMATIC1111", "sd.webui/webui/models"),  # the Windows one-click package
    ("Forge", "stable-diffusion-webui-forge/models"),
    ("Forge", "webui_forge_cu121_torch231/webui/models"),  # Forge's Windows one-click package
    ("reForge", "stable-diffusion-webui-reForge/models"),
    ("SD.Next", "automatic/models"),
    ("SD.Next", "sdnext/models"),
    ("ComfyUI", "ComfyUI/models"),
    ("ComfyUI", "ComfyUI_windows_portable/ComfyUI/models"),
    ("ComfyUI Desktop", "Documents/ComfyUI/models"),
    ("Fooocus", "Fooocus/models"),
    ("Fooocus", "Fooocus_win64/Fooocus/models"),
    ("InvokeAI", "invokeai/models"),
    ("Stability Matrix", "StabilityMatrix/Data/Models"),  # portable
    ("Stability Matrix", "AppData/Roaming/StabilityMatrix/Models"),
    ("Stability Matrix", ".config/StabilityMatrix/Models"),
)
MAX_WALKED = 20_000  # entries looked at in one folder before the count is given as "at least"


@dataclass(frozen=True)
class ToolFolder:
    """A models folder another tool keeps, and how many weights files are below it (`more`: at least that)."""

    tool: str
    path: Path
    files: int
    more: bool = False

    @property
    def label(self) -> str:
        count = f"{self.files:,}{'+' if self.more else ''} file{'s' if self.files != 1 or self.more else ''}"
        return f"{self.tool}'s models — {self.path} ({count})"


def hf_cache() -> Path:
    """Hugging Face's cache of downloaded repositories, where its own variables put it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ["HF_HOME"]) if os.environ.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def candidates(home: Path | None = None, drive: Path | None = None) -> list[tuple[str, Path]]:
    """The places looked at: each tool's folder under the home folder and (on Windows) the system drive's root,
    then the Hugging Face cache."""
    home = home or Path.home()
    if drive is None and sys.platform == "win32":
        drive = Path(os.environ.get("SystemDrive", "C:") + "\\")
    roots = [home, *([drive] if drive is not None else [])]
    places = [(tool, root / relative) for root in roots for tool, relative in PLACES]
    return [*places, ("Hugging Face cache", hf_cache())]


def find_tool_folders(places: list[tuple[str, Path]] | None = None, linked: list[Path] = ()) -> list[ToolFolder]:
    """The places that hold weights files, but those inside a folder in `linked` (imported already), each folder
    once."""
    found: list[ToolFolder] = []
    seen: set[Path] = set()
    for tool, path in places if places is not None else candidates():
        try:
            resolved = path.resolve()
            if not resolved.is_dir() or resolved in seen:
                continue
        except OSError:
            continue
        if any(resolved == folder or folder in resolved.parents for folder in linked):
            continue
        seen.add(resolved)
        files, more = _count_weights(resolved)
        if files:
            found.append(ToolFolder(tool, resolved, files, more))
    return found


def _count_weights(folder: Path) -> tuple[int, bool]:
    """The `.safetensors` files below `folder` (the Hugging Face cache's links counted as the files they are), and
    whether the walk stopped at `MAX_WALKED` entries."""
    count = walked = 0
    for _here, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        walked += len(subfolders) + len(files)
        count += sum(name.lower().endswith(".safetensors") for name in files)  # pickles are not used
        if walked >= MAX_WALKED:
            return count, True
    return count, False
