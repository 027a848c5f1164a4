"""Files dropped on the window: images go to "reuse settings", the gallery or the init image, pictures the
gallery does not hold (a phone's HEIC photo, BMP, TIFF, GIF, a painting program's .psd, .xcf, .kra or .ora; one
it cannot read, such as Clip Studio Paint's .clip, to say so) to the init image, text files of generation data (a ComfyUI
workflow's .json, A1111's .txt) to "reuse settings", folders of images (with no weights in them) to the gallery,
the rest to the model library; and the question asked about a single dropped image."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from hypersd_desktop.core.images import FOREIGN_PICTURE_SUFFIXES, PICTURE_SUFFIXES
from hypersd_desktop.engine.inspect import WEIGHTS_SUFFIXES
from hypersd_desktop.gallery.formats import ImageMetadata
from hypersd_desktop.gallery.gallery import IMAGE_SUFFIXES


WEB_SCHEMES = ("http", "https")  # links dragged from a browser (a model's page on Hugging Face, a picture's)
# Generation data saved as text: a ComfyUI workflow, A1111's parameters beside an image, another tool's JSON record
SETTINGS_SUFFIXES = (".json", ".txt")


@dataclass(frozen=True)
class DroppedFiles:
    """`images` (the gallery's image files), `pictures` (other picture files), `image_folders` (folders of images
    without weights in them: an outputs folder), `settings` (text files of generation data) and `models` (weights
    files and folders: everything else)."""

    images: tuple[Path, ...]
    pictures: tuple[Path, ...]
    models: tuple[Path, ...]
    image_folders: tuple[Path, ...] = ()
    settings: tuple[Path, ...] = ()

    @classmethod
    def sort(cls, paths: list[Path]) -> DroppedFiles:
        def having(suffixes: tuple[str, ...]) -> tuple[Path, ...]:
            return tuple(p for p in paths if p.suffix.lower() in suffixes and p.is_file())

        # another program's own picture file goes where a picture goes, to be said why it is not read
        pictures = having((*PICTURE_SUFFIXES, *FOREIGN_PICTURE_SUFFIXES))
        images, settings = having(IMAGE_SUFFIXES), having(SETTINGS_SUFFIXES)
        rest = [p for p in paths if p not in images and p not in pictures and p not in settings]
        folders = tuple(p for p in rest if p.is_dir() and not _holds(p, WEIGHTS_SUFFIXES) and _holds(p, IMAGE_SUFFIXES))
        return cls(images, pictures, tuple(p for p in rest if p not in folders), folders, settings)


MOST_FILES_LOOKED_AT = 50_000  # a drop is sorted on the GUI's thread: a larger tree goes to the model library


def _holds(folder: Path, suffixes: tuple[str, ...]) -> bool:
    """Whether a file below `folder` ends in one of `suffixes` (the walk stops at the first); True for a tree too
    large to look through, which the model library's importer then searches in the background as before."""
    seen = 0
    for _here, _folders, files in os.walk(folder):
        if any(Path(name).suffix.lower() in suffixes for name in files):
            return True
        seen += len(files)
        if seen > MOST_FILES_LOOKED_AT:
            return True
    return False


class ImageChoice(Enum):
    REUSE = "reuse its settings"
    INIT = "start from it"
    DESCRIBE = "write its tags into the prompt"
    IMPORT = "import it into the gallery"
    NOTHING = "cancel"


def ask_about_image(parent: QWidget, path: Path, metadata: ImageMetadata | None) -> ImageChoice:
    """Ask what to do with one dropped image: reuse its settings (when it has any, else describe it: its tags as the
    prompt), start from it or import it."""
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
    # a picture without a prompt: a tagger writes one from what it shows
    describe = box.addButton("Describe: its tags as the prompt", QMessageBox.ButtonRole.ActionRole) \
        if metadata is None else None
    start = box.addButton("Use as init image", QMessageBox.ButtonRole.ActionRole)
    add = box.addButton("Import into the gallery", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    choices = {reuse: ImageChoice.REUSE, describe: ImageChoice.DESCRIBE, start: ImageChoice.INIT,
               add: ImageChoice.IMPORT}
    return next((choice for button, choice in choices.items() if button is not None and box.clickedButton() is button),
                ImageChoice.NOTHING)
