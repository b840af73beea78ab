"""The image panel: the latest images of the run, with zoom and Save As."""

from __future__ import annotations

from PySide6.QtCore import Qt
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


class ZoomView(QGraphicsView):
    """A graphics view that zooms with the wheel around the cursor."""

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.scale(factor, factor)


class ImagePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: dict[str, list[QImage]] = {}  # "node id #index" -> image
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
        self.save_button.clicked.connect(self.save_as)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.chooser)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self.chooser.currentIndexChanged.connect(self._show_current)
        self.save_button.setEnabled(False)

    def set_images(self, node_id: str, images: list[QImage]) -> None:
        """Show the images a node produced; the newest arrival is selected."""
        for index, image in enumerate(images):
            key = f"{node_id} #{index + 1}" if len(images) > 1 else node_id
            self.images[key] = [image]
            position = self.chooser.findText(key)
            if position < 0:
                self.chooser.addItem(key)
                position = self.chooser.count() - 1
            if position == self.chooser.currentIndex():
                self._show_current()
            else:
                self.chooser.setCurrentIndex(position)

    def clear(self) -> None:
        self.images.clear()
        self.chooser.clear()
        self.item.setPixmap(QPixmap())
        self.save_button.setEnabled(False)

    def current_image(self) -> QImage | None:
        found = self.images.get(self.chooser.currentText())
        return found[0] if found else None

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

    def save_as(self, path: str | None = None) -> bool:
        image = self.current_image()
        if image is None:
            return False
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save image", f"{self.chooser.currentText().split()[0]}.png", "PNG (*.png);;JPEG (*.jpg)")
        if not path:
            return False
        if not image.save(path):
            QMessageBox.warning(self, "Save image", f"Could not write {path}.")
            return False
        return True
