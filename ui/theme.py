"""The editor's look in one place: fonts, node colours, run-state colours, and the zoom thresholds that keep
text legible (node text is never drawn smaller than :data:`MIN_TEXT_PX` screen pixels at the zoom a workflow
opens with, and below :data:`LOD_SCALE` nodes draw a large title instead of their fields)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontInfo
from PySide6.QtWidgets import QApplication

NODE_BODY = (40, 42, 46)
TITLE_BAR = (27, 28, 31)
BYPASS_COLOR = (160, 70, 220)  # a bypassed node is tinted purple, as in ComfyUI
MUTED_OPACITY = 0.4  # a muted node is drawn faded
CAPTION_COLOR = QColor(170, 170, 170)
PROBLEM_COLOR = QColor(235, 80, 60)
STATE_COLORS = {
    "waiting": QColor(120, 120, 120),
    "running": QColor(240, 180, 40),
    "cached": QColor(90, 140, 200),
    "done": QColor(80, 190, 100),
    "failed": QColor(225, 60, 60),
}

MIN_TEXT_PX = 9.0  # the smallest node text on screen at the zoom a workflow opens with
LOD_SCALE = 0.45  # below this zoom nodes hide their fields and show a large title
LOD_TITLE_PX = 15.0  # screen size of that title

_fonts: dict[str, QFont] = {}


def _font(key: str, scale: float, bold: bool = False) -> QFont:
    if key not in _fonts:
        font = QFont(QApplication.font())
        font.setPointSizeF(QApplication.font().pointSizeF() * scale)
        font.setBold(bold)
        _fonts[key] = font
    return _fonts[key]


def title_font() -> QFont:
    return _font("title", 1.15, bold=True)


def port_font() -> QFont:
    return _font("port", 1.0)


def caption_font() -> QFont:
    return _font("caption", 1.0)


def smallest_text_px() -> float:
    """The pixel size (em) of the smallest text inside a node, at zoom 1."""
    return float(min(QFontInfo(f).pixelSize() for f in (title_font(), port_font(), caption_font(), QApplication.font())))


def min_fit_scale() -> float:
    """The smallest zoom at which every node text is at least :data:`MIN_TEXT_PX` on screen."""
    return MIN_TEXT_PX / smallest_text_px()
