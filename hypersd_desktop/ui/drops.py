"""Files dropped on the window: images go to "reuse settings" or the gallery, the rest to the
model library; and the question asked about a single dropped image."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from hypersd_desktop.gallery.formats import ImageMetadata
from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES


@dataclass(frozen=True)
class DroppedFiles:
    """`images` (files with an image suffix) and `models` (weights files and folders: everything else)."""

    images: tuple[Path, ...]
    models: tuple[Path, ...]

    @classmethod
    def sort(cls, paths: list[Path]) -> DroppedFiles:
        images = tuple(p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        return cls(images, tuple(p for p in paths if p not in images))


class ImageChoice(Enum):
    REUSE = "reuse its settings"
    IMPORT = "import it into the gallery"
    NOTHING = "cancel"


def ask_about_image(parent: QWidget, path: Path, metadata: ImageMetadata | None) -> ImageChoice:
    """Ask what to do with one dropped image: reuse its settings (when it has any) or import it."""
    box = QMessageBox(parent)
    box.setWindowTitle("Dropped image")
    box.setIcon(QMessageBox.Icon.Question)
    if metadata is not None:
        box.setText(f"{path.name} has {metadata.format.upper()} generation settings.")
        box.setInformativeText(f"Prompt: {metadata.prompt[:200]}")
        reuse = box.addButton("Reuse its settings", QMessageBox.ButtonRole.AcceptRole)
    else:
        box.setText(f"{path.name} carries no generation settings.")
        reuse = None
    add = box.addButton("Import into the gallery", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if reuse is not None and box.clickedButton() is reuse:
        return ImageChoice.REUSE
    return ImageChoice.IMPORT if box.clickedButton() is add else ImageChoice.NOTHING
