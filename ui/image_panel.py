"""The image panel: the latest images of the runs (each once) and a sampler's live preview, with zoom and a
Save As that always embeds the workflow that made the image (open the PNG to get the workflow back)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nodegraph.png_meta import IMAGE_KEY, WORKFLOW_KEY, add_text_chunks
from nodegraph.workflow import atomic_write_bytes
from ui.run_images import ImageEntry

LIVE = " (live)"  # the chooser's label of a sampler's live preview


class ZoomView(QGraphicsView):
    """A graphics view that zooms with the wheel around the cursor."""

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.scale(factor, factor)


def png_with_workflow(image: QImage, workflow: dict[str, Any] | None, record: dict[str, Any] | None = None,
                      parameters: str | None = None) -> bytes:
    """PNG bytes of ``image`` carrying the workflow (and the image's batch record, and A1111 parameters)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError("the image could not be encoded as PNG")
    buffer.close()
    chunks: dict[str, str] = {}
    if workflow:
        chunks[WORKFLOW_KEY] = json.dumps(workflow, ensure_ascii=False)
    if record:
        chunks[IMAGE_KEY] = json.dumps(record, default=repr)
    if parameters:
        chunks["parameters"] = parameters
    return add_text_chunks(bytes(data.data()), chunks)


class ImagePanel(QWidget):
    def __init__(self, parent: QWidget | None = None, registry: Any = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.images: dict[str, list[QImage]] = {}  # chooser label -> [image]
        self.entries: dict[str, ImageEntry] = {}  # chooser label -> what the image is (absent for live previews)
        self.live_workflow: dict[str, Any] | None = None  # the running workflow (for saving a live preview)
        self.chooser = QComboBox()
        self.chooser.setMinimumContentsLength(12)
        self.scene = QGraphicsScene(self)
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene.addItem(self.item)
        self.view = ZoomView(self.scene)
        self.view.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.view.setBackgroundBrush(Qt.GlobalColor.darkGray)
        buttons = QHBoxLayout()
        for text, slot in (("−", self.zoom_out), ("+", self.zoom_in), ("Fit", self.fit), ("1:1", self.actual_size)):
            button = QPushButton(text)
            button.setFixedWidth(40)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        self.save_button = QPushButton("Save As…")
        self.save_button.setToolTip("Save the image as a PNG that carries its workflow")
        self.save_button.clicked.connect(lambda *_: self.save_as())
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.chooser)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self.chooser.currentIndexChanged.connect(self._show_current)
        self.save_button.setEnabled(False)

    # -- filling -----------------------------------------------------------------------------------

    def _put(self, label: str, image: QImage, select: bool = True) -> None:
        self.images[label] = [image]
        position = self.chooser.findText(label)
        if position < 0:
            self.chooser.addItem(label)
            position = self.chooser.count() - 1
        if position == self.chooser.currentIndex():
            self._show_current()
        elif select:
            self.chooser.setCurrentIndex(position)

    def add_entries(self, entries: list[ImageEntry]) -> None:
        """Show a run's images (each source once); the first new one is selected."""
        self.clear_live()
        for position, entry in enumerate(entries):
            self.entries[entry.label] = entry
            self._put(entry.label, entry.image, select=position == 0)

    def set_images(self, node_id: str, images: list[QImage]) -> None:
        """Show images a node produced that came without a record (the newest arrival is selected)."""
        for index, image in enumerate(images):
            self._put(f"{node_id} #{index + 1}" if len(images) > 1 else node_id, image)

    def show_preview(self, node_id: str, image: QImage) -> None:
        """A sampler's live preview: shown under "<node> (live)" until the run's images arrive."""
        label = node_id + LIVE
        self._put(label, image, select=label not in self.images)  # selected when it appears, then left alone

    def clear_live(self) -> None:
        for label in [t for t in self.images if t.endswith(LIVE)]:
            del self.images[label]
            self.chooser.removeItem(self.chooser.findText(label))

    def clear(self) -> None:
        self.images.clear()
        self.entries.clear()
        self.chooser.clear()
        self.item.setPixmap(QPixmap())
        self.save_button.setEnabled(False)

    # -- showing -----------------------------------------------------------------------------------

    def current_image(self) -> QImage | None:
        found = self.images.get(self.chooser.currentText())
        return found[0] if found else None

    def current_entry(self) -> ImageEntry | None:
        return self.entries.get(self.chooser.currentText())

    def select_entry(self, entry: ImageEntry) -> None:
        """Show ``entry`` (from the gallery), adding it back if a later run replaced it."""
        self.entries[entry.label] = entry
        self._put(entry.label, entry.image)

    def _show_current(self) -> None:
        image = self.current_image()
        self.item.setPixmap(QPixmap.fromImage(image) if image is not None else QPixmap())
        self.scene.setSceneRect(self.item.boundingRect())
        self.save_button.setEnabled(image is not None)
        if image is not None:
            self.fit()

    def zoom_in(self) -> None:
        self.view.scale(1.25, 1.25)

    def zoom_out(self) -> None:
        self.view.scale(0.8, 0.8)

    def fit(self) -> None:
        self.view.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        self.view.resetTransform()

    # -- saving ------------------------------------------------------------------------------------

    def _parameters(self, entry: ImageEntry) -> str | None:
        if self.registry is None:
            return None
        try:
            from nodes.image.metadata import a1111_parameters

            return a1111_parameters(entry.workflow, self.registry, entry.node, entry.image.width(), entry.image.height())
        except Exception:  # best effort, as Save Image does: never stop a save for it
            return None

    def save_as(self, path: str | None = None) -> bool:
        """Save the shown image as a PNG with its workflow (never over a file without asking: the dialog asks)."""
        image = self.current_image()
        if image is None:
            return False
        if not path:
            stem = self.chooser.currentText().split()[0].replace(".", "_")
            path, _ = QFileDialog.getSaveFileName(self, "Save image", f"{stem}.png", "PNG with workflow (*.png)")
        if not path:
            return False
        target = Path(path)
        if target.suffix.lower() != ".png":
            target = target.with_suffix(target.suffix + ".png") if target.suffix else target.with_suffix(".png")
        entry = self.current_entry()
        workflow = entry.workflow if entry is not None else self.live_workflow
        record = entry.record if entry is not None else None
        try:
            atomic_write_bytes(target, png_with_workflow(image, workflow, record, self._parameters(entry) if entry else None))
        except OSError as exc:
            QMessageBox.warning(self, "Save image", f"Could not write {target}: {exc.strerror or exc}")
            return False
        return True
