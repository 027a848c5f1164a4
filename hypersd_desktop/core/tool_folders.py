"""The folders other Stable Diffusion tools keep on this computer, found where those tools put them by default: their
models folders, so that a person who has used AUTOMATIC1111, Forge, ComfyUI or InvokeAI starts with the models they
have (imported where they are and linked: models/library.py) instead of downloading them again, and their output
folders, which the gallery can watch (gallery/watch.py).

Only the places each tool's installer or instructions use are looked at (the home folder, the system drive's root
on Windows, Hugging Face's cache for models), and each is walked only far enough to count its files: nothing is read.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

# (tool, the models folder relative to where the tool is usually put)
MODEL_PLACES: tuple[tuple[str, str], ...] = (
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
# (tool, the folder its images are saved in, relative to where the tool is usually put)
OUTPUT_PLACES: tuple[tuple[str, str], ...] = (
    ("AUTOMATIC1111", "stable-diffusion-webui/outputs"),
    ("AUTOMATIC1111", "sd.webui/webui/outputs"),
    ("Forge", "stable-diffusion-webui-forge/outputs"),
    ("Forge", "webui_forge_cu121_torch231/webui/outputs"),
    ("reForge", "stable-diffusion-webui-reForge/outputs"),
    ("SD.Next", "automatic/outputs"),
    ("SD.Next", "sdnext/outputs"),
    ("ComfyUI", "ComfyUI/output"),
    ("ComfyUI", "ComfyUI_windows_portable/ComfyUI/output"),
    ("ComfyUI Desktop", "Documents/ComfyUI/output"),
    ("Fooocus", "Fooocus/outputs"),
    ("Fooocus", "Fooocus_win64/Fooocus/outputs"),
    ("InvokeAI", "invokeai/outputs"),
)
WEIGHTS = (".safetensors",)  # what a models folder is counted by (pickles are not used)
MAX_WALKED = 20_000  # entries looked at in one folder before the count is given as "at least"


@dataclass(frozen=True)
class ToolFolder:
    """A folder another tool keeps, and how many of the files looked for are below it (`more`: at least that)."""

    tool: str
    path: Path
    files: int
    more: bool = False
    holds: tuple[str, str] = ("models", "file")  # what the folder holds, and what a file of it is called

    @property
    def label(self) -> str:
        what, noun = self.holds
        count = f"{self.files:,}{'+' if self.more else ''} {noun}{'s' if self.files != 1 or self.more else ''}"
        return f"{self.tool}'s {what} — {self.path} ({count})"


def hf_cache() -> Path:
    """Hugging Face's cache of downloaded repositories, where its own variables put it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ["HF_HOME"]) if os.environ.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def candidates(home: Path | None = None, drive: Path | None = None,
               relative_places: tuple[tuple[str, str], ...] = MODEL_PLACES) -> list[tuple[str, Path]]:
    """The places looked at: each tool's folder under the home folder and (on Windows) the system drive's root,
    then, for models, the Hugging Face cache."""
    home = home or Path.home()
    if drive is None and sys.platform == "win32":
        drive = Path(os.environ.get("SystemDrive", "C:") + "\\")
    roots = [home, *([drive] if drive is not None else [])]
    places = [(tool, root / relative) for root in roots for tool, relative in relative_places]
    return [*places, ("Hugging Face cache", hf_cache())] if relative_places is MODEL_PLACES else places


def find_tool_folders(places: list[tuple[str, Path]] | None = None, linked: list[Path] = (),
                      suffixes: tuple[str, ...] = WEIGHTS, holds: tuple[str, str] = ("models", "file")
                      ) -> list[ToolFolder]:
    """The places (the models folders' by default) that hold files ending in `suffixes`, but those inside a folder
    in `linked` (imported or watched already), each folder once."""
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
        files, more = _count(resolved, suffixes)
        if files:
            found.append(ToolFolder(tool, resolved, files, more, holds))
    return found


def _count(folder: Path, suffixes: tuple[str, ...]) -> tuple[int, bool]:
    """The files ending in `suffixes` below `folder`, not hidden ones (the Hugging Face cache's links counted as
    the files they are), and whether the walk stopped at `MAX_WALKED` entries."""
    count = walked = 0
    for _here, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        walked += len(subfolders) + len(files)
        count += sum(not name.startswith(".") and name.lower().endswith(suffixes) for name in files)
        if walked >= MAX_WALKED:
            return count, True
    return count, False
