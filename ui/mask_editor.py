"""The mask editor: paint what to repaint over an image, for inpainting.

A dialog over one image file: a brush and an eraser (size, hardness), a fill bucket, invert, clear, undo/redo,
zoom (wheel, Fit, 1:1) and pan (middle or right button drag, or Space + drag). The mask shows as a red veil;
white in the saved file. Saving writes a new greyscale PNG beside the image (``<name>_mask_0001.png``, the next
free number; never over any file) and the Load Image node that opened it points its ``mask_path`` at it, so the
workflow stays reproducible headless. Opened from a Load Image node's context menu (Edit Mask…) or from the
Images panel (right click: Inpaint This Image…), which first saves the shown image into the input folder.

The mask lives in :class:`ui.mask_model.MaskModel` (a numpy array, 0 keep .. 255 repaint).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QImage, QKeySequence, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QGraphicsEllipseItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.mask_model import MaskModel

if TYPE_CHECKING:
    import numpy as np

def input_folder() -> Path:
    """Where images from the Images panel (and masks beside read-only images) are saved: the user's input
    folder, which workflows search for relative paths."""
    from nodegraph.paths import user_input_dir

    return user_input_dir()


class MaskView(QGraphicsView):
    """The image with the mask over it; paints with the left button, pans with the middle or right one (or
    Space + left), zooms with the wheel around the cursor."""

    painted = Signal()

    def __init__(self, editor: MaskEditor) -> None:
        super().__init__()
        self.editor = editor
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(45, 45, 48))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setMouseTracking(True)
        # panning is done with the mouse; scroll bars would only take room from the picture
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.image_item = QGraphicsPixmapItem()
        self.mask_item = QGraphicsPixmapItem()
        self.mask_item.setZValue(1)
        self.cursor_item = QGraphicsEllipseItem()
        self.cursor_item.setZValue(2)
        pen = QPen(QColor(255, 255, 255), 0)
        pen.setCosmetic(True)
        self.cursor_item.setPen(pen)
        for item in (self.image_item, self.mask_item, self.cursor_item):
            self.scene().addItem(item)
        self._panning: QPointF | None = None
        self._painting = False
        self.space_held = False

    def set_image(self, pixmap: QPixmap) -> None:
        self.image_item.setPixmap(pixmap)
        margin = max(pixmap.width(), pixmap.height())  # room to pan the picture's edges to the middle
        self.scene().setSceneRect(QRectF(pixmap.rect()).adjusted(-margin, -margin, margin, margin))

    def refresh_mask(self) -> None:
        self.mask_item.setPixmap(QPixmap.fromImage(self.editor.model.overlay()))

    def fit(self) -> None:
        self.fitInView(self.image_item, Qt.AspectRatioMode.KeepAspectRatio)
        self.scale(0.97, 0.97)  # a little room around the picture

    def zoom(self, factor: float) -> None:
        scale = self.transform().m11() * factor
        if 0.05 <= scale <= 64:
            self.scale(factor, factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)

    def _image_point(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def _update_cursor(self, point: QPointF) -> None:
        radius = self.editor.brush_size / 2
        self.cursor_item.setRect(point.x() - radius, point.y() - radius, 2 * radius, 2 * radius)
        self.cursor_item.setVisible(self.editor.tool != "fill")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton) or (
            button == Qt.MouseButton.LeftButton and self.space_held
        ):
            self._panning = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if button == Qt.MouseButton.LeftButton:
            point = self._image_point(event)
            if self.editor.tool == "fill":
                self.editor.model.fill(point.x(), point.y())
            else:
                self._painting = True
                self.editor.model.begin_stroke(point.x(), point.y(), self.editor.brush_size, self.editor.hardness,
                                               self.editor.tool == "eraser")
            self.refresh_mask()
            self.painted.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        point = self._image_point(event)
        self._update_cursor(point)
        if self._panning is not None:
            delta = event.position() - self._panning
            self._panning = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        elif self._painting:
            self.editor.model.continue_stroke(point.x(), point.y(), self.editor.brush_size, self.editor.hardness,
                                              self.editor.tool == "eraser")
            self.refresh_mask()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning is not None:
            self._panning = None
            self.viewport().unsetCursor()
        if self._painting:
            self._painting = False
            self.editor.model.end_stroke()
            self.painted.emit()


class MaskEditor(QDialog):
    """Edit the mask of ``image_path``, starting from ``mask_path`` when given. After ``exec()`` returns
    Accepted, ``saved_path`` is the new mask file."""

    def __init__(self, image_path: str | Path, mask_path: str | Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from nodes.mask.files import mask_array, open_upright

        self.image_path = Path(image_path)
        self.saved_path: Path | None = None
        picture = open_upright(self.image_path).convert("RGBA")  # ValueError with a message when unreadable
        self.setWindowTitle(f"Mask: {self.image_path.name}")
        initial = None
        self.note = ""
        if mask_path:
            initial = self._initial_mask(mask_array(open_upright(mask_path)), picture.size, Path(mask_path).name)
        self.model = MaskModel(picture.width, picture.height, initial)
        self.tool = "brush"
        self.brush_size = max(4, round(min(picture.size) / 12))
        self.hardness = 0.8

        self.view = MaskView(self)
        image = QImage(picture.tobytes(), picture.width, picture.height, picture.width * 4, QImage.Format.Format_RGBA8888)
        self.view.set_image(QPixmap.fromImage(image.copy()))
        self.view.refresh_mask()
        self.view.painted.connect(self._update_actions)

        self.tools = QButtonGroup(self)
        self.setStyleSheet("QToolButton:checked { background: #4678c8; color: white; }")
        bar = QHBoxLayout()
        for name, label, key, tip in (
            ("brush", "Brush", "B", "Paint what to repaint (B)"),
            ("eraser", "Eraser", "E", "Erase: keep this (E)"),
            ("fill", "Fill", "F", "Fill the enclosed area you click (F)"),
        ):
            button = QToolButton()
            button.setText(label)
            button.setCheckable(True)
            button.setToolTip(tip)
            button.setShortcut(QKeySequence(key))
            button.setObjectName(f"tool_{name}")
            button.clicked.connect(lambda _checked=False, n=name: self.set_tool(n))
            self.tools.addButton(button)
            bar.addWidget(button)
            if name == "brush":
                button.setChecked(True)
        self.size_slider = self._slider("Size", 1, max(8, max(picture.size) // 2), self.brush_size, bar,
                                        lambda v: self._set_size(v))
        self.hardness_slider = self._slider("Hardness", 0, 100, round(self.hardness * 100), bar,
                                            lambda v: setattr(self, "hardness", v / 100))
        bar.addSpacing(12)
        self.buttons: dict[str, QToolButton] = {}
        for name, label, key, slot in (
            ("invert", "Invert", "I", self.invert),
            ("clear", "Clear", None, self.clear),
            ("undo", "Undo", QKeySequence.StandardKey.Undo, self.undo),
            ("redo", "Redo", QKeySequence.StandardKey.Redo, self.redo),
            ("fit", "Fit", "0", self.view.fit),
            ("actual", "1:1", "1", self.view.resetTransform),
        ):
            button = QToolButton()
            button.setText(label)
            button.clicked.connect(slot)
            if key is not None:
                action = QAction(label, self)
                action.setShortcut(QKeySequence(key))
                action.triggered.connect(slot)
                self.addAction(action)
                button.setToolTip(f"{label} ({QKeySequence(key).toString()})")
            self.buttons[name] = button
            bar.addWidget(button)
        bar.addStretch(1)
        self.status = QLabel()
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.save)
        box.rejected.connect(self.reject)
        self.button_box = box
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(box)
        layout.addLayout(bottom)
        self.resize(900, 720)
        self._update_actions()

    @staticmethod
    def _slider(label: str, low: int, high: int, value: int, bar: QHBoxLayout, slot: Any) -> QSlider:
        bar.addWidget(QLabel(label))
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, high)
        slider.setValue(min(high, value))
        slider.setFixedWidth(110)
        slider.setObjectName(label.lower())
        slider.valueChanged.connect(slot)
        bar.addWidget(slider)
        return slider

    def _initial_mask(self, mask: np.ndarray, size: tuple[int, int], name: str) -> np.ndarray | None:
        import numpy as np
        from PIL import Image

        width, height = size
        if mask.shape == (height, width):
            return np.rint(mask * 255).astype(np.uint8)
        mh, mw = mask.shape
        if abs(mh * width - mw * height) > max(mh, mw, height, width):
            self.note = f"{name} ({mw}x{mh}) does not fit this {width}x{height} image: starting from an empty mask"
            return None
        self.note = f"{name} ({mw}x{mh}) was resized to the image's {width}x{height}"
        resized = Image.fromarray(np.rint(mask * 255).astype(np.uint8), "L").resize((width, height), Image.BILINEAR)
        return np.asarray(resized).copy()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, self.view.fit)  # after the layout has given the view its size

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.view.space_held = True
        elif event.key() == Qt.Key.Key_BracketLeft:
            self.size_slider.setValue(max(1, round(self.brush_size / 1.25)))
        elif event.key() == Qt.Key.Key_BracketRight:
            self.size_slider.setValue(round(self.brush_size * 1.25) + 1)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.view.space_held = False
        super().keyReleaseEvent(event)

    # -- actions ----------------------------------------------------------------------------------------

    def set_tool(self, name: str) -> None:
        self.tool = name
        for button in self.tools.buttons():
            button.setChecked(button.objectName() == f"tool_{name}")
        self.view.cursor_item.setVisible(name != "fill")

    def _set_size(self, value: int) -> None:
        self.brush_size = value

    def _edit(self, action: Any) -> None:
        action()
        self.view.refresh_mask()
        self._update_actions()

    def invert(self) -> None:
        self._edit(self.model.invert)

    def clear(self) -> None:
        self._edit(self.model.clear)

    def undo(self) -> None:
        self._edit(self.model.undo)

    def redo(self) -> None:
        self._edit(self.model.redo)

    def _update_actions(self) -> None:
        self.buttons["undo"].setEnabled(self.model.can_undo)
        self.buttons["redo"].setEnabled(self.model.can_redo)
        covered = float((self.model.mask >= 128).mean()) * 100
        height, width = self.model.mask.shape
        text = f"{width}x{height} · {covered:.1f}% to repaint · left: paint · wheel: zoom · right/middle drag: pan"
        self.status.setText(f"{self.note} · {text}" if self.note else text)

    def save(self) -> None:
        """Write the mask as a new PNG beside the image (or in the input folder when that folder is read-only)."""
        from nodes.mask.files import save_new_mask

        try:
            self.saved_path = save_new_mask(self.model.mask, self.image_path, input_folder())
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Save mask", f"The mask could not be saved: {exc}")
            return
        self.model.changed_since_save = False
        self.accept()

    def reject(self) -> None:
        if self.model.changed_since_save and self.isVisible():
            answer = QMessageBox.question(self, "Discard mask", "Discard the changes to this mask?",
                                          QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Discard:
                return
        super().reject()


# -- hooks into the editor's window ------------------------------------------------------------------------


def _mask_params(window: Any, node_id: str) -> tuple[str, str] | None:
    """(image parameter, mask parameter) of a node that loads an image with a mask file beside it."""
    node = window.document.graph.nodes.get(node_id)
    definition = window.registry.get(node.type) if node is not None else None
    if definition is None:
        return None
    files = [p.name for p in definition.params if p.kind == "image_file"]
    if "mask_path" in files and len(files) >= 2:
        return next(f for f in files if f != "mask_path"), "mask_path"
    return None


def _policy(window: Any) -> Any:
    """How the editor's runs find input files: beside the open workflow, then in the input folders."""
    from nodegraph.paths import PathPolicy

    path = getattr(window.document, "path", None)
    return PathPolicy(workflow_dir=Path(path).resolve().parent if path else None, confined=False)


def _param_for(value: str, image: Path, saved: Path) -> str:
    """The mask's path written the way the image's is: relative (to the same folder the image was found from)
    when the image's path is relative and the mask lies beside it, else absolute."""
    relative = Path(value)
    if not relative.is_absolute() and saved.parent == image.parent:
        return (relative.parent / saved.name).as_posix()
    return str(saved)


def edit_node_mask(window: Any, node_id: str) -> MaskEditor | None:
    """Open the mask editor on a Load Image node's image; on save, point the node's mask_path at the new file."""
    from nodegraph.errors import NodeInputError
    from nodegraph.paths import resolve_read

    params = _mask_params(window, node_id)
    if params is None:
        return None
    node = window.document.graph.nodes[node_id]
    image_value, mask_value = node.params.get(params[0], ""), node.params.get(params[1]) or ""
    policy = _policy(window)
    try:
        image = resolve_read(policy, image_value, params[0], "image file")
        mask = resolve_read(policy, mask_value, params[1], "mask file") if mask_value else None
    except (NodeInputError, OSError) as exc:
        QMessageBox.warning(window, "Edit mask", str(exc))
        return None
    try:
        editor = MaskEditor(image, mask, window)
    except ValueError as exc:
        QMessageBox.warning(window, "Edit mask", str(exc))
        return None
    if editor.exec() == QDialog.DialogCode.Accepted and editor.saved_path is not None:
        window.document.set_param(node_id, params[1], _param_for(image_value, image, editor.saved_path))
        window.log("info", f"mask saved to {editor.saved_path}; {node_id}.{params[1]} points at it")
    return editor


def _register_node_action() -> None:
    from ui.node_menu import register_node_action

    register_node_action(
        "Edit Mask…", lambda ctx: edit_node_mask(ctx.window, ctx.node_id), node_types={"core.LoadImage"},
        enabled=lambda ctx: bool(ctx.node.params.get("path")),
        tip="Paint the area to repaint; the mask is saved beside the image and this node points at it",
    )


_register_node_action()


def inpaint_image_from_panel(window: Any) -> str | None:
    """Save the image shown in the Images panel into the input folder, open the mask editor on it, and add a
    Load Image node with the image and the new mask. Returns the new node's id."""
    image = window.image_panel.current_image()
    if image is None:
        return None
    folder = input_folder()
    folder.mkdir(parents=True, exist_ok=True)
    stem = (window.image_panel.chooser.currentText().split() or ["image"])[0].replace("/", "_")
    target, number = folder / f"{stem}.png", 1
    while target.exists():  # never over an existing file
        target = folder / f"{stem}_{number:04d}.png"
        number += 1
    if not image.save(str(target)):
        QMessageBox.warning(window, "Inpaint image", f"Could not write {target}.")
        return None
    editor = MaskEditor(target, None, window)
    if editor.exec() != QDialog.DialogCode.Accepted or editor.saved_path is None:
        return None
    loader = window.registry.get("core.LoadImage")
    if loader is None:
        return None
    node_id = window.document.add_node("core.LoadImage", (0.0, 0.0),
                                       {"path": str(target), "mask_path": str(editor.saved_path)})
    window.log("info", f"{target.name} and its mask {editor.saved_path.name} are in {folder}; node {node_id} loads them")
    return node_id


def attach_to_image_panel(window: Any) -> None:
    """Right click on the Images panel's picture: Inpaint This Image…"""
    view = window.image_panel.view
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show_menu(pos: Any) -> None:
        from PySide6.QtWidgets import QMenu

        menu = QMenu(view)
        action = menu.addAction("Inpaint This Image… (Edit Mask)", lambda: inpaint_image_from_panel(window))
        action.setEnabled(window.image_panel.current_image() is not None)
        menu.exec(view.mapToGlobal(pos))
        menu.deleteLater()

    view.customContextMenuRequested.connect(show_menu)
