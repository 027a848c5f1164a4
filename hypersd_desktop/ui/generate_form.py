"""The generation controls' shared vocabulary: size presets, the Hyper-SD list, seeds.

Used by the Generate tab and the batch dialog, so both offer the same choices.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

from hypersd_desktop.models.library import ModelLibrary

SIZE_PRESETS = {
    "sd15": [("512 × 512 (1:1)", 512, 512), ("512 × 768 (2:3)", 512, 768), ("768 × 512 (3:2)", 768, 512),
             ("576 × 1024 (9:16)", 576, 1024), ("1024 × 576 (16:9)", 1024, 576), ("640 × 512 (5:4)", 640, 512)],
    "sdxl": [("1024 × 1024 (1:1)", 1024, 1024), ("832 × 1216 (2:3)", 832, 1216), ("1216 × 832 (3:2)", 1216, 832),
             ("768 × 1344 (9:16)", 768, 1344), ("1344 × 768 (16:9)", 1344, 768), ("1152 × 896 (5:4)", 1152, 896)],
}
MAX_SEED = 2**31 - 1


def fill_hyper_box(box: QComboBox, library: ModelLibrary, architecture: str) -> int:
    """"None" and the installed Hyper-SD LoRAs and UNets for an architecture; returns how many of those."""
    box.clear()
    box.addItem("None (plain model)", None)
    hyper = [m for m in library.registry.list(architecture=architecture) if m.recipe and m.kind in ("lora", "unet")]
    for entry in hyper:
        box.addItem(entry.recipe, entry)
    return len(hyper)


def fill_sizes(box: QComboBox, architecture: str) -> None:
    box.clear()
    for label, width, height in SIZE_PRESETS.get(architecture, SIZE_PRESETS["sd15"]):
        box.addItem(label, (width, height))


def select_size(box: QComboBox, width: int, height: int, note: str = "") -> None:
    """Choose a size, adding it to the list when it is not one of the presets."""
    index = next((i for i in range(box.count()) if box.itemData(i) == (width, height)), -1)
    if index < 0:
        box.addItem(f"{width} × {height}{note}", (width, height))
        index = box.count() - 1
    box.setCurrentIndex(index)
