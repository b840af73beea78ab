"""Icons painted with QPainter, so they look the same on every machine (no emoji or icon font needed)."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap


@cache
def dice_icon(size: int = 20) -> QIcon:
    """A die showing five: the randomise-seed button."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    body = QRectF(1.5, 1.5, size - 3, size - 3)
    painter.setPen(QPen(QColor(40, 40, 40), 1.2))
    painter.setBrush(QColor(235, 235, 235))
    painter.drawRoundedRect(body, size * 0.2, size * 0.2)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(40, 40, 40))
    r = size * 0.09
    for fx, fy in ((0.3, 0.3), (0.7, 0.3), (0.5, 0.5), (0.3, 0.7), (0.7, 0.7)):
        painter.drawEllipse(QPointF(size * fx, size * fy), r, r)
    painter.end()
    return QIcon(pixmap)
