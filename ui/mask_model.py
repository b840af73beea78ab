"""The mask being edited: a ``uint8 [H, W]`` array (0 keep .. 255 repaint) with brush dabs, strokes, a fill bucket,
invert and clear, and stroke-by-stroke undo/redo. numpy and OpenCV only (no Qt widgets), so tests drive it directly;
:mod:`ui.mask_editor` shows it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtGui import QImage

if TYPE_CHECKING:
    import numpy as np

UNDO_LIMIT = 50
OVERLAY = (235, 50, 50)  # the veil's colour; its opacity follows the mask (up to OVERLAY_ALPHA)
OVERLAY_ALPHA = 150


class MaskModel:
    """A mask being edited: ``uint8 [H, W]`` (0 keep, 255 repaint), with stroke-by-stroke undo."""

    def __init__(self, width: int, height: int, initial: np.ndarray | None = None) -> None:
        import numpy as np

        self.mask = np.zeros((height, width), np.uint8) if initial is None else initial.astype(np.uint8).copy()
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._last: tuple[float, float] | None = None
        self.changed_since_save = False

    # -- history ----------------------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Remember the mask before an edit (one undo step)."""
        self._undo.append(self.mask.copy())
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self.changed_since_save = True

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.mask)
        self.mask = self._undo.pop()
        self.changed_since_save = True
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.mask)
        self.mask = self._redo.pop()
        self.changed_since_save = True
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # -- edits ------------------------------------------------------------------------------------------

    def begin_stroke(self, x: float, y: float, size: float, hardness: float, erase: bool) -> None:
        self.checkpoint()
        self._last = (x, y)
        self.stamp(x, y, size, hardness, erase)

    def continue_stroke(self, x: float, y: float, size: float, hardness: float, erase: bool) -> None:
        """Stamps from the last point to (x, y), an eighth of the brush apart, so fast strokes stay solid."""
        if self._last is None:
            self.begin_stroke(x, y, size, hardness, erase)
            return
        x0, y0 = self._last
        spacing = max(1.0, size / 8)
        count = max(1, math.ceil(math.hypot(x - x0, y - y0) / spacing))
        for i in range(1, count + 1):
            self.stamp(x0 + (x - x0) * i / count, y0 + (y - y0) * i / count, size, hardness, erase)
        self._last = (x, y)

    def end_stroke(self) -> None:
        self._last = None

    def stamp(self, x: float, y: float, size: float, hardness: float, erase: bool) -> None:
        """One round dab of diameter ``size`` at (x, y): full strength within ``hardness`` of its radius,
        fading to nothing at the rim."""
        import numpy as np

        height, width = self.mask.shape
        radius = max(0.5, size / 2)
        left, right = max(0, math.floor(x - radius)), min(width, math.ceil(x + radius) + 1)
        top, bottom = max(0, math.floor(y - radius)), min(height, math.ceil(y + radius) + 1)
        if left >= right or top >= bottom:
            return
        yy, xx = np.mgrid[top:bottom, left:right]
        distance = np.hypot(xx + 0.5 - x, yy + 0.5 - y)
        soft = max(radius * (1.0 - hardness), 0.75)  # at least a pixel of antialiasing
        strength = np.clip((radius - distance) / soft, 0.0, 1.0)
        dab = np.rint(strength * 255).astype(np.uint8)
        region = self.mask[top:bottom, left:right]
        if erase:
            np.minimum(region, 255 - dab, out=region)
        else:
            np.maximum(region, dab, out=region)

    def fill(self, x: float, y: float, tolerance: int = 64) -> None:
        """Set the connected area around (x, y) whose mask is within ``tolerance`` of the clicked value to 255:
        draw an outline, then fill it."""
        import cv2
        import numpy as np

        height, width = self.mask.shape
        col, row = int(x), int(y)
        if not (0 <= col < width and 0 <= row < height):
            return
        self.checkpoint()
        flags = 4 | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
        canvas = self.mask.copy()
        region = np.zeros((height + 2, width + 2), np.uint8)
        cv2.floodFill(canvas, region, (col, row), 255, tolerance, tolerance, flags | cv2.FLOODFILL_MASK_ONLY)
        self.mask[region[1:-1, 1:-1] > 0] = 255

    def invert(self) -> None:
        self.checkpoint()
        self.mask = 255 - self.mask

    def clear(self) -> None:
        self.checkpoint()
        self.mask[...] = 0

    def overlay(self) -> QImage:
        """The mask as a translucent red ARGB image."""
        import numpy as np

        height, width = self.mask.shape
        rgba = np.empty((height, width, 4), np.uint8)
        rgba[..., 0], rgba[..., 1], rgba[..., 2] = OVERLAY
        rgba[..., 3] = (self.mask.astype(np.uint16) * OVERLAY_ALPHA // 255).astype(np.uint8)
        image = QImage(rgba.data, width, height, width * 4, QImage.Format.Format_RGBA8888)
        return image.copy()  # own the pixels: the array goes away
