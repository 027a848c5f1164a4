"""The Generate tab's *Tile seams* row: how the seams between the tiles of a repaint in tiles (the Upscaler row's
*In tiles*) are repainted after them, as the Ultimate SD Upscale extension's "Seams fix" repaints them — left as
the tiles meet, a band across each seam, or a tile's size centred on each seam (and on each point where four tiles
meet) — with the strength that repaints them and a band's width (`SeamsFix`)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QSpinBox, QWidget

from hypersd_desktop.core.vocab import SeamFix
from hypersd_desktop.engine.types import SeamsFix

# the list's words for each (the extension's names, shortened to fit the row)
CHOICES = (("As the tiles meet", ""), ("Band pass", SeamFix.BAND.value), ("Half tile", SeamFix.HALF_TILE.value),
           ("Half tile + corners", SeamFix.HALF_TILE_CORNERS.value))


class TileSeams(QObject):
    """The row (`row`): the seams fix, its strength and a band's width. `set_tiles(on)` follows *In tiles*: without
    tiles there are no seams."""

    def __init__(self, mode: str = "", strength: float = 0.35, parent: QObject | None = None) -> None:
        super().__init__(parent)
        defaults = SeamsFix()
        self.mode = QComboBox()
        for label, value in CHOICES:
            self.mode.addItem(label, value)
        self.mode.setToolTip("Where tiles meet a seam may show, each tile made on its own. Once every tile is made, "
                             "repaint each seam's area again through a mask that fades away from the seam (the "
                             "Ultimate SD Upscale extension's Seams fix): a band across each seam (Band pass); a "
                             "tile's size centred on each seam (Half tile); and also on each point where four tiles "
                             "meet (+ corners). Each takes a repaint of its own: Band pass the fewest.")
        self.strength = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, decimals=2, value=strength)
        self.strength.setPrefix("Strength ")
        self.strength.setToolTip("How much of each seam's area is made again: about 0.35 blends the tiles, higher "
                                 "redraws more of what is across the seam")
        self.width = QSpinBox(minimum=8, maximum=256, singleStep=8, value=defaults.width, suffix=" px")
        self.width.setPrefix("Band ")
        self.width.setToolTip("How wide the band across each seam is (Band pass)")
        self._mask_blur, self._padding = defaults.mask_blur, defaults.padding  # the extension's; a reused one's kept
        self._tiles = True
        self.row = QWidget()
        layout = QHBoxLayout(self.row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.mode, 1)
        layout.addWidget(self.strength)
        layout.addWidget(self.width)
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))
        self.mode.currentIndexChanged.connect(lambda _index: self._update())
        self._update()

    def set_tiles(self, on: bool) -> None:
        """Whether the repaint is made in tiles (*In tiles*): the row is for them."""
        self._tiles = on
        self._update()

    def _update(self) -> None:
        fixed = self.mode.currentData()
        self.mode.setEnabled(self._tiles)
        self.strength.setEnabled(self._tiles and bool(fixed))
        self.width.setEnabled(self._tiles and fixed == SeamFix.BAND)

    def spec(self) -> SeamsFix | None:
        """The seams fix the row asks for (None: the seams are left as the tiles meet)."""
        mode = self.mode.currentData()
        return None if not mode else SeamsFix(SeamFix(mode), round(self.strength.value(), 2), self.width.value(),
                                                  self._mask_blur, self._padding)

    def set_spec(self, fix: SeamsFix | None) -> None:
        """Show a reused request's seams fix (None: none)."""
        self.mode.setCurrentIndex(max(0, self.mode.findData("" if fix is None else fix.mode.value)))
        if fix is not None:
            self.strength.setValue(fix.strength)
            self.width.setValue(fix.width)
            self._mask_blur, self._padding = fix.mask_blur, fix.padding
