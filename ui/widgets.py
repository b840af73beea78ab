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
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QPixmap, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
FLOAT_LIMIT = 1e12
WIDGET_WIDTH = 160
PROPERTY_PREFIX = "param:"

# (folder, extensions, directories) -> names; filled by the canvas so a 300-node file lists each folder once
ModelLister = Callable[[str, tuple[str, ...], bool], list[str]]


class FieldBox(QWidget):
    """A caption above a widget. Stands in for NodeGraphQt's group box, which re-applies a style sheet on
    every node redraw (most of the time spent opening a large workflow)."""

    def __init__(self, label: str, inner: QWidget) -> None:
        super().__init__()
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(1)
        self.caption = QLabel(label)
        font = self.caption.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        self.caption.setFont(font)
        palette = self.caption.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(138, 138, 138))
        self.caption.setPalette(palette)
        self.caption.setVisible(bool(label))
        layout.addWidget(self.caption)
        layout.addWidget(inner)
        self.inner = inner
        self._align = ""

    def setTitle(self, text: str) -> None:
        self.caption.setText(text)
        self.caption.setVisible(bool(text))

    def setTitleAlign(self, align: str = "center") -> None:
        if align != self._align:
            self._align = align
            flags = {"left": Qt.AlignmentFlag.AlignLeft, "right": Qt.AlignmentFlag.AlignRight}
            self.caption.setAlignment(flags.get(align, Qt.AlignmentFlag.AlignHCenter))

    def get_node_widget(self) -> QWidget:
        return self.inner


class LightWidget(NodeBaseWidget):
    """A NodeGraphQt node widget framed by a :class:`FieldBox`."""

    def set_custom_widget(self, widget: QWidget) -> None:
        self.setWidget(FieldBox(self.get_label(), widget))


class ParamWidget(LightWidget):
    """Base of the parameter widgets: ``edited(name, value)`` is emitted for user edits only."""

    edited = Signal(str, object)

    def __init__(self, schema: dict[str, Any], parent: Any = None) -> None:
        # NodeGraphQt keeps widget values as node properties; a prefix keeps parameters such as "width",
        # "name" or "color" clear of its reserved property names
        super().__init__(parent, PROPERTY_PREFIX + schema["name"], schema.get("label", schema["name"]))
        self.param_name: str = schema["name"]
        self.schema = schema
        inner = self.build()
        inner.setMinimumWidth(WIDGET_WIDTH)
        if schema.get("help"):
            inner.setToolTip(schema["help"])
        self.set_custom_widget(inner)
        self.set_value(schema.get("default"))

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
    """Multiline text (prompts): every change is an edit; the undo stack merges consecutive ones."""

    def build(self) -> QWidget:
        self.text = QPlainTextEdit()
        self.text.setFixedHeight(72)
        self.text.setPlaceholderText(self.schema.get("placeholder", ""))
        self.text.textChanged.connect(self._emit)
        return self.text

    def get_value(self) -> str:
        return self.text.toPlainText()

    def set_value(self, value: Any) -> None:
        if self.text.toPlainText() != (value or ""):
            with QSignalBlocker(self.text):
                self.text.setPlainText(value or "")


class BoolWidget(ParamWidget):
    def build(self) -> QWidget:
        self.box = QCheckBox(self.schema.get("label", ""))
        self.box.toggled.connect(self._emit)
        return self.box

    def get_value(self) -> bool:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.box):
            self.box.setChecked(bool(value))


class ChoiceWidget(ParamWidget):
    def build(self) -> QWidget:
        self.combo = QComboBox()
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
        self.dice = QPushButton("🎲")
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
    """Files of a model folder (checkpoints, loras, ...), listed through :class:`ModelFolders`."""

    lister: ModelLister | None = None

    def build(self) -> QWidget:
        self.combo = QComboBox()
        names: list[str] = []
        if ModelFileWidget.lister is not None:
            names = ModelFileWidget.lister(
                self.schema.get("folder", "checkpoints"),
                tuple(self.schema.get("extensions", ())),
                bool(self.schema.get("allow_directories", False)),
            )
        self.combo.addItems(names)
        if not names:
            self.combo.setPlaceholderText(f"(no files in {self.schema.get('folder', 'the model folder')})")
        self.combo.currentTextChanged.connect(self._emit)
        return self.combo

    def get_value(self) -> str:
        return self.combo.currentText()

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.combo):
            value = value or ""
            if value and self.combo.findText(value) < 0:
                self.combo.addItem(value)
                index = self.combo.findText(value)
                self.combo.setItemData(index, "not found in the model folders", Qt.ItemDataRole.ToolTipRole)
            self.combo.setCurrentIndex(self.combo.findText(value) if value else -1)


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


class ImagePreviewWidget(LightWidget):
    """The latest image a node produced (or received, for output nodes), shown inside the node."""

    SIZE = 200

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent, "__preview__", "")
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setFixedSize(self.SIZE, self.SIZE)
        self.label.setStyleSheet("background: #202020; color: #888;")
        self.set_custom_widget(self.label)

    def get_value(self) -> None:
        return None

    def set_value(self, value: Any) -> None:
        pass

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self.label.setPixmap(
            pixmap.scaled(self.SIZE, self.SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        )


class TextResultWidget(LightWidget):
    """The text an output node produced (Show Value), shown inside the node."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent, "__result__", "")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setMaximumWidth(260)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setStyleSheet("background: #1d2a1d; color: #d8f0d8; padding: 4px; border-radius: 3px;")
        self.set_custom_widget(self.label)

    def get_value(self) -> str:
        return self.label.text()

    def set_value(self, value: Any) -> None:
        text = str(value or "")
        self.label.setText(text if len(text) <= 400 else text[:397] + "...")
