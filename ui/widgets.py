"""Widgets inside nodes, one per parameter kind, built from :meth:`Param.schema`.

They are NodeGraphQt ``NodeBaseWidget`` proxies around real Qt widgets (NodeGraphQt's own spin box starts
at 0 and returns strings). A widget never writes to the node: it emits :attr:`ParamWidget.edited`, the
canvas turns that into an undoable document edit, and the document's change comes back via ``set_value``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from NodeGraphQt import NodeBaseWidget
from PySide6.QtCore import QPointF, QRect, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ui.icons import dice_icon
from ui.theme import CAPTION_COLOR, caption_font

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
FLOAT_LIMIT = 1e12
WIDGET_WIDTH = 180
PROPERTY_PREFIX = "param:"
MISSING_ROLE = Qt.ItemDataRole.UserRole + 1

# (folder, extensions, directories) -> names; filled by the canvas so a 300-node file lists each folder once
ModelLister = Callable[[str, tuple[str, ...], bool], list[str]]


class FieldBox(QWidget):
    """A caption above a widget. Stands in for NodeGraphQt's group box, which re-applies a style sheet on
    every node redraw (most of the time spent opening a large workflow). The caption is painted, not a QLabel:
    one child widget less per parameter is a fifth of the cost of a node when opening a large workflow."""

    CAPTION_COLOR = CAPTION_COLOR

    def __init__(self, label: str, inner: QWidget) -> None:
        super().__init__()
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self._layout = QVBoxLayout(self)
        self._layout.addWidget(inner)
        self.inner = inner
        self.title = ""
        self._align = Qt.AlignmentFlag.AlignHCenter
        self.setTitle(label)

    @staticmethod
    def caption_font() -> QFont:
        return caption_font()

    def _caption_height(self) -> int:
        return QFontMetrics(self.caption_font()).height() + 1 if self.title else 0

    def setTitle(self, text: str) -> None:
        self.title = text
        self._layout.setContentsMargins(0, 2 + self._caption_height(), 0, 2)
        self.update()

    def setTitleAlign(self, align: str = "center") -> None:
        flags = {"left": Qt.AlignmentFlag.AlignLeft, "right": Qt.AlignmentFlag.AlignRight}
        flag = flags.get(align, Qt.AlignmentFlag.AlignHCenter)
        if flag != self._align:
            self._align = flag
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.title:
            return
        painter = QPainter(self)
        painter.setFont(self.caption_font())
        painter.setPen(self.CAPTION_COLOR)
        rect = QRect(0, 2, self.width(), self._caption_height())
        painter.drawText(rect, self._align | Qt.AlignmentFlag.AlignVCenter, self.title)

    def get_node_widget(self) -> QWidget:
        return self.inner


class LightWidget(NodeBaseWidget):
    """A NodeGraphQt node widget framed by a :class:`FieldBox`."""

    def set_custom_widget(self, widget: QWidget) -> None:
        self.setWidget(FieldBox(self.get_label(), widget))


class ParamWidget(LightWidget):
    """Base of the parameter widgets: ``edited(name, value)`` is emitted for user edits only. A widget with
    ``stretch`` takes a share of the extra height when the user makes its node taller (prompts, notes)."""

    edited = Signal(str, object)
    stretch = False
    captioned_inside = False  # the widget shows its own label (a check box): no caption above it

    def __init__(self, schema: dict[str, Any], parent: Any = None) -> None:
        # NodeGraphQt keeps widget values as node properties; a prefix keeps parameters such as "width",
        # "name" or "color" clear of its reserved property names
        caption = "" if self.captioned_inside else schema.get("label", schema["name"])
        super().__init__(parent, PROPERTY_PREFIX + schema["name"], caption)
        self.param_name: str = schema["name"]
        self.schema = schema
        inner = self.build()
        inner.setMinimumWidth(WIDGET_WIDTH)
        if schema.get("help"):
            inner.setToolTip(schema["help"])
        self.set_custom_widget(inner)
        self.set_value(schema.get("default"))
        self.driven_by: str | None = None

    def set_driven(self, source: str | None) -> None:
        """Grey the widget out while a link drives the parameter (``source`` = "node.output"), so nobody
        edits a value the run will not use; its own value is kept for when the link goes."""
        if source == self.driven_by:
            return
        self.driven_by = source
        inner = self.get_custom_widget()
        inner.setEnabled(source is None)
        inner.setToolTip(f"driven by link from {source}" if source is not None else self.schema.get("help", ""))

    def build(self) -> QWidget:
        raise NotImplementedError

    def _emit(self, *_: Any) -> None:
        self.edited.emit(self.param_name, self.get_value())


class IntWidget(ParamWidget):
    def build(self) -> QWidget:
        self.box = QSpinBox()
        low, high = self.schema.get("min"), self.schema.get("max")
        self.box.setRange(INT32_MIN if low is None else max(low, INT32_MIN), INT32_MAX if high is None else min(high, INT32_MAX))
        self.box.setSingleStep(int(self.schema.get("step") or 1))
        self.box.setKeyboardTracking(False)  # one edit per finished number, not per digit
        self.box.valueChanged.connect(self._emit)
        return self.box

    def get_value(self) -> int:
        return int(self.box.value())

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.box):
            self.box.setValue(int(value or 0))


class FloatWidget(ParamWidget):
    SLIDER_STEPS = 1000

    def build(self) -> QWidget:
        self.box = QDoubleSpinBox()
        self.slider: QSlider | None = None
        low, high = self.schema.get("min"), self.schema.get("max")
        step = float(self.schema.get("step") or 0.01)
        decimals = max(2, min(6, len(f"{step:.10f}".rstrip("0").split(".")[1])))
        self.box.setDecimals(decimals)
        self.box.setRange(-FLOAT_LIMIT if low is None else low, FLOAT_LIMIT if high is None else high)
        self.box.setSingleStep(step)
        self.box.setKeyboardTracking(False)
        self.box.valueChanged.connect(self._emit)
        if not (self.schema.get("slider") and low is not None and high is not None and high > low):
            return self.box
        # a slider beside the spin box for bounded values that are tuned by eye (strengths, weights)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, self.SLIDER_STEPS)
        self.slider.valueChanged.connect(self._slider_moved)
        self.box.valueChanged.connect(self._sync_slider)
        row.addWidget(self.slider, 1)
        row.addWidget(self.box)
        return box

    def _slider_moved(self, position: int) -> None:
        low, high = self.box.minimum(), self.box.maximum()
        self.box.setValue(low + (high - low) * position / self.SLIDER_STEPS)

    def _sync_slider(self, value: float) -> None:
        if self.slider is not None:
            low, high = self.box.minimum(), self.box.maximum()
            with QSignalBlocker(self.slider):
                self.slider.setValue(round((value - low) / (high - low) * self.SLIDER_STEPS))

    def get_value(self) -> float:
        return float(self.box.value())

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.box):
            self.box.setValue(float(value or 0.0))
        self._sync_slider(self.box.value())


class LineWidget(ParamWidget):
    def build(self) -> QWidget:
        self.line = QLineEdit()
        self.line.setPlaceholderText(self.schema.get("placeholder", ""))
        self.line.editingFinished.connect(self._emit_if_changed)
        return self.line

    def _emit_if_changed(self) -> None:
        if self.line.isModified():
            self.line.setModified(False)
            self._emit()

    def get_value(self) -> str:
        return self.line.text()

    def set_value(self, value: Any) -> None:
        if self.line.text() != (value or ""):
            with QSignalBlocker(self.line):
                self.line.setText(value or "")


class TextWidget(ParamWidget):
    """Multiline text (prompts): every change is an edit; the undo stack merges consecutive ones. It grows
    with its node (drag the node's corner)."""

    stretch = True

    def build(self) -> QWidget:
        self.text = PromptEdit()
        self.text.setPlaceholderText(self.schema.get("placeholder", ""))
        self.text.textChanged.connect(self._emit)
        return self.text

    def get_value(self) -> str:
        return self.text.toPlainText()

    def set_value(self, value: Any) -> None:
        if self.text.toPlainText() != (value or ""):
            with QSignalBlocker(self.text):
                self.text.setPlainText(value or "")


class PromptEdit(QPlainTextEdit):
    """A text box four lines high by default, any height when its node is resized."""

    def sizeHint(self) -> QSize:
        return QSize(WIDGET_WIDTH, self.fontMetrics().lineSpacing() * 4 + 12)

    def minimumSizeHint(self) -> QSize:
        return QSize(WIDGET_WIDTH, self.fontMetrics().lineSpacing() * 2 + 12)


class BoolWidget(ParamWidget):
    captioned_inside = True

    def build(self) -> QWidget:
        self.box = QCheckBox(self.schema.get("label", ""))
        self.box.toggled.connect(self._emit)
        return self.box

    def get_value(self) -> bool:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.box):
            self.box.setChecked(bool(value))


class PopupCombo(QComboBox):
    """A combo box inside a node whose list opens as a real pop-up window above the canvas, listing every
    entry at a readable size whatever the zoom. (Qt embeds a combo's own list in the scene, where the node's
    next field was drawn over it and the view cut it off; a click there picked an entry nobody could see.)"""

    def list_menu(self) -> QMenu:
        """The pop-up list: one checkable entry per item, the current one checked."""
        menu = QMenu(self._view())
        menu.setToolTipsVisible(True)
        for index in range(self.count()):
            action = menu.addAction(self.itemText(index))
            action.setCheckable(True)
            action.setChecked(index == self.currentIndex())
            action.setData(index)
            tip = self.itemData(index, Qt.ItemDataRole.ToolTipRole)
            if tip:
                action.setToolTip(str(tip))
        return menu

    def _view(self) -> QWidget | None:
        proxy = self.window().graphicsProxyWidget()
        views = proxy.scene().views() if proxy is not None and proxy.scene() is not None else []
        return views[0] if views else None

    def showPopup(self) -> None:
        view = self._view()
        if view is None:  # not on a canvas (a test, a dialog): the usual list
            super().showPopup()
            return
        proxy = self.window().graphicsProxyWidget()
        corner = proxy.mapToScene(QPointF(self.mapTo(self.window(), self.rect().bottomLeft())))
        menu = self.list_menu()
        menu.setMinimumWidth(max(120, round(self.width() * view.transform().m11())))
        current = next((a for a in menu.actions() if a.isChecked()), None)
        chosen = menu.exec(view.viewport().mapToGlobal(view.mapFromScene(corner)), current)
        if chosen is not None:
            self.setCurrentIndex(int(chosen.data()))
        menu.deleteLater()
        # the choice is made: keys go back to the canvas (Tab searches, Delete deletes), not to this field
        self.clearFocus()
        view.scene().setFocusItem(None)
        view.setFocus()


class ChoiceWidget(ParamWidget):
    def build(self) -> QWidget:
        self.combo = PopupCombo()
        self.combo.addItems([str(c) for c in self.schema.get("choices", [])])
        self.combo.currentTextChanged.connect(self._emit)
        return self.combo

    def get_value(self) -> str:
        return self.combo.currentText()

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.combo):
            if value is not None and self.combo.findText(str(value)) < 0:
                self.combo.addItem(str(value))  # a saved value no longer offered: keep it visible
            self.combo.setCurrentText("" if value is None else str(value))


class BigIntWidget(ParamWidget):
    """Whole numbers beyond a QSpinBox's 32 bits: a checked line edit, clamped to the bounds."""

    def build(self) -> QWidget:
        box = QWidget()
        self.row = QHBoxLayout(box)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit()
        self.line.setValidator(QRegularExpressionValidator(r"-?\d{1,20}"))
        self.line.editingFinished.connect(self._emit_if_changed)
        self.row.addWidget(self.line, 1)
        return box

    def _emit_if_changed(self) -> None:
        if self.line.isModified():
            self.line.setModified(False)
            self.set_value(self.get_value())  # show the clamped number
            self._emit()

    def get_value(self) -> int:
        text = self.line.text().strip()
        value = int(text) if text not in ("", "-") else 0
        low, high = self.schema.get("min"), self.schema.get("max")
        if low is not None:
            value = max(value, int(low))
        if high is not None:
            value = min(value, int(high))
        return value

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.line):
            self.line.setText(str(int(value or 0)))


class SeedWidget(BigIntWidget):
    """Seeds go up to 2**64 - 1: the number plus a randomise button."""

    def build(self) -> QWidget:
        box = super().build()
        self.dice = QPushButton()
        self.dice.setIcon(dice_icon())  # painted: no emoji font needed
        self.dice.setToolTip("Pick a random seed")
        self.dice.setFixedWidth(32)
        self.dice.clicked.connect(self.randomise)
        self.row.addWidget(self.dice)
        return box

    def randomise(self) -> None:
        high = self.schema.get("max") or 2**32 - 1
        self.set_value(random.randint(int(self.schema.get("min") or 0), min(int(high), 2**32 - 1)))
        self._emit()


class ModelFileWidget(ParamWidget):
    """Files of a model folder (checkpoints, loras, ...), listed through :class:`ModelFolders`. A saved name
    that is not installed stays selected and is marked as missing."""

    lister: ModelLister | None = None
    MISSING = "(missing) "  # in front: still seen when the name is cut off

    def build(self) -> QWidget:
        self.combo = PopupCombo()
        names: list[str] = []
        if ModelFileWidget.lister is not None:
            names = ModelFileWidget.lister(
                self.schema.get("folder", "checkpoints"),
                tuple(self.schema.get("extensions", ())),
                bool(self.schema.get("allow_directories", False)),
            )
        for name in names:
            self.combo.addItem(name, name)
        if not names:
            self.combo.setPlaceholderText(f"(no files in {self.schema.get('folder', 'the model folder')})")
        self.combo.currentIndexChanged.connect(self._emit)
        return self.combo

    def get_value(self) -> str:
        value = self.combo.currentData()
        return value if isinstance(value, str) else ""

    def is_missing(self) -> bool:
        return bool(self.combo.currentData(MISSING_ROLE))

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.combo):
            value = value or ""
            index = self.combo.findData(value)
            if value and index < 0:
                self.combo.addItem(self.MISSING + value, value)
                index = self.combo.count() - 1
                folder = self.schema.get("folder", "checkpoints")
                self.combo.setItemData(index, f"{value} is not in the {folder} folders: install it, or pick another",
                                       Qt.ItemDataRole.ToolTipRole)
                self.combo.setItemData(index, QColor(235, 110, 90), Qt.ItemDataRole.ForegroundRole)
                self.combo.setItemData(index, True, MISSING_ROLE)
            self.combo.setCurrentIndex(index if value else -1)
        missing = self.is_missing()
        if missing != bool(self.combo.styleSheet()):
            self.combo.setStyleSheet("QComboBox { color: #eb6e5a; }" if missing else "")
        self.combo.setToolTip(self.combo.itemData(index, Qt.ItemDataRole.ToolTipRole) if missing else self.schema.get("help", ""))


class ImageFileWidget(ParamWidget):
    def build(self) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit()
        self.line.editingFinished.connect(self._emit)
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.setToolTip("Choose an image file")
        browse.clicked.connect(self.browse)
        row.addWidget(self.line, 1)
        row.addWidget(browse)
        return box

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(None, "Choose an image", self.line.text(), "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            self.set_value(path)
            self._emit()

    def get_value(self) -> str:
        return self.line.text()

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.line):
            self.line.setText(value or "")


class ReadOnlyWidget(ParamWidget):
    """A value the editor cannot edit (a placeholder's parameters, an unknown kind): shown, kept as is."""

    def build(self) -> QWidget:
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return self.label

    def get_value(self) -> Any:
        return self._value

    def set_value(self, value: Any) -> None:
        self._value = value
        text = repr(value)
        self.label.setText(text if len(text) < 120 else text[:117] + "...")


WIDGETS: dict[str, type[ParamWidget]] = {
    "int": IntWidget,
    "float": FloatWidget,
    "string": LineWidget,
    "text": TextWidget,
    "bool": BoolWidget,
    "choice": ChoiceWidget,
    "seed": SeedWidget,
    "model_file": ModelFileWidget,
    "image_file": ImageFileWidget,
}


def widget_for(schema: dict[str, Any], parent: Any) -> ParamWidget:
    """The widget for a parameter schema, inside the node item ``parent``; unknown kinds (from a newer
    plugin API) are shown read-only."""
    kind = schema.get("kind")
    if kind == "string" and schema.get("multiline"):
        kind = "text"
    low, high = schema.get("min"), schema.get("max")
    if kind == "int" and ((low is not None and low < INT32_MIN) or (high is not None and high > INT32_MAX)):
        return BigIntWidget(schema, parent)
    return WIDGETS.get(kind, ReadOnlyWidget)(schema, parent)
