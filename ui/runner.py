"""Runs workflows in a worker thread and reports to the GUI thread through Qt signals.

One :class:`~nodegraph.Executor` lives as long as the window, so its cache carries over between runs:
running again after a change recomputes only what the change touched. The worker turns image tensors
into ``QImage`` (numpy, off the GUI thread); the GUI thread only makes pixmaps of them.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QImage

from nodegraph.context import CancelToken, RunSettings
from nodegraph.errors import Cancelled, NodeExecutionError, WorkflowError
from nodegraph.events import (
    CacheEvicted,
    Event,
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeLog,
    NodeProgress,
    NodeStarted,
    RunStarted,
)
from nodegraph.executor import Executor, default_targets, needed_nodes, summarize
from nodegraph.graph import Graph
from nodegraph.registry import Registry
from nodegraph.types import IMAGE
from nodegraph.workflow import to_document

MAX_PREVIEW_EDGE = 1024
# node progress arrives as fast as a node can call ctx.progress; the GUI needs a few updates a second
PROGRESS_INTERVAL = 0.05
GUI_SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while the other waits, during runs


def to_qimages(value: Any, limit: int = 4) -> list[QImage]:
    """QImages from an IMAGE value (tensor or array [B,H,W,C] or [H,W,C], 0..1) or a PIL image.

    Returns [] for anything else. Safe to call off the GUI thread.
    """
    if hasattr(value, "convert") and hasattr(value, "size") and not hasattr(value, "shape"):  # PIL image
        import numpy as np

        value = np.asarray(value.convert("RGB"), dtype=np.float32) / 255.0
    if not hasattr(value, "shape"):
        return []
    if hasattr(value, "detach"):  # torch tensor; torch is already loaded if one arrives
        value = value.detach().float().cpu().numpy()
    import numpy as np

    array = np.asarray(value)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        return []
    images = []
    for frame in array[:limit]:
        rgb = np.clip(frame[..., :3] if frame.shape[-1] >= 3 else np.repeat(frame, 3, axis=-1), 0.0, 1.0)
        data = np.ascontiguousarray((rgb * 255.0 + 0.5).astype(np.uint8))
        height, width = data.shape[:2]
        image = QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()  # own the pixels
        if max(width, height) > MAX_PREVIEW_EDGE:
            image = image.scaled(
                MAX_PREVIEW_EDGE, MAX_PREVIEW_EDGE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        images.append(image)
    return images


def image_producers(graph: Graph, registry: Registry, targets: list[str]) -> dict[str, list[tuple[str, str]]]:
    """For each node whose image the editor shows: where its image comes from, as (node, output) pairs.

    A node with IMAGE outputs shows its own; an output node with an IMAGE input (Save, Preview) shows
    the image it received.
    """
    needed = needed_nodes(graph, targets)
    shown: dict[str, list[tuple[str, str]]] = {}
    for node_id in needed:
        node = graph.nodes[node_id]
        definition = registry.get(node.type)
        if definition is None:
            continue
        own = [(node_id, o.name) for o in definition.outputs if o.type.name == IMAGE.name]
        received = [
            node.inputs[i.name] for i in definition.inputs if i.type.name == IMAGE.name and i.name in node.inputs
        ]
        if own or (definition.output_node and received):
            shown[node_id] = own or received
    return shown


class RunController(QObject):
    """Starts runs on a worker thread; one run at a time."""

    run_started = Signal(list)  # node ids in order
    node_state = Signal(str, str, str)  # node id, state (running, cached, done, failed), message
    node_progress = Signal(str, int, int)
    node_images = Signal(str, list)  # node id, [QImage]
    node_text = Signal(str, str)  # an output node's text result (Show Value)
    log = Signal(str, str)  # level, message
    run_finished = Signal(str, str)  # outcome (done, failed, cancelled, invalid), summary

    def __init__(self, registry: Registry, executor: Executor | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.executor = executor if executor is not None else Executor(registry)
        self._token: CancelToken | None = None
        self._thread: threading.Thread | None = None
        self._last_progress: dict[str, float] = {}
        # Python's cyclic GC runs in whichever thread happens to allocate. If the worker triggers it, Qt
        # objects that died in the GUI thread (closed nodes, old windows) get destroyed in the worker, which
        # crashes Qt. During a run, collection is done by this GUI-thread timer instead.
        self._gc_timer = QTimer(self)
        self._gc_timer.setInterval(250)
        self._gc_timer.timeout.connect(lambda: gc.collect(1))
        self._gc_was_enabled = gc.isenabled()
        self._switch_interval = sys.getswitchinterval()
        self.run_finished.connect(self._after_run)

    def _after_run(self, *_: object) -> None:
        sys.setswitchinterval(self._switch_interval)
        self._gc_timer.stop()
        if self._gc_was_enabled:
            gc.enable()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(
        self, graph: Graph, output_dir: Any = None, targets: list[str] | None = None, workflow_path: Any = None
    ) -> bool:
        """Run a snapshot of ``graph`` (its output nodes, or ``targets`` and what they need); returns False if a
        run is already going. Relative input paths are looked up beside ``workflow_path`` (the open file), then in
        the input folders; absolute ones are accepted (the person at the screen chose them)."""
        from nodegraph.paths import PathPolicy

        if self.running:
            return False
        snapshot = graph.copy()  # the user keeps editing while the worker runs
        self._token = CancelToken()
        folder = Path(workflow_path).resolve().parent if workflow_path is not None else None
        settings = RunSettings(workflow=to_document(snapshot), paths=PathPolicy(workflow_dir=folder, confined=False))
        if output_dir is not None:
            settings.output_dir = output_dir
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self._gc_timer.start()
        # The canvas paints through Python methods, each needing the GIL; with the default 5 ms switch interval a
        # busy Python node makes every painted item wait up to 5 ms (a stall of 100-200 ms per frame).
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GUI_SWITCH_INTERVAL)
        self._thread = threading.Thread(
            target=self._work, args=(snapshot, self._token, settings, targets), name="nodegraph-run", daemon=True
        )
        self._thread.start()
        return True

    def stop(self) -> None:
        if self._token is not None:
            self._token.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    # -- worker thread ---------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.run_started.emit(list(event.nodes))
        elif isinstance(event, NodeStarted):
            self.node_state.emit(event.node, "running", "")
        elif isinstance(event, NodeCached):
            self.node_state.emit(event.node, "cached", "from the cache")
        elif isinstance(event, NodeFinished):
            self.node_state.emit(event.node, "done", f"{event.seconds:.2f} s")
        elif isinstance(event, NodeFailed):
            self.node_state.emit(event.node, "failed", event.message)
            inputs = ", ".join(f"{k}={v}" for k, v in event.inputs.items())
            self.log.emit("error", f"{event.node} ({event.type}) failed: {event.message}" + (f" [inputs: {inputs}]" if inputs else ""))
        elif isinstance(event, NodeProgress):
            now = time.monotonic()
            last = self._last_progress.get(event.node, 0.0)
            if event.preview is not None or event.step >= event.total or now - last >= PROGRESS_INTERVAL:
                self._last_progress[event.node] = now
                self.node_progress.emit(event.node, event.step, event.total)
                if event.preview is not None:
                    images = to_qimages(event.preview)
                    if images:
                        self.node_images.emit(event.node, images)
        elif isinstance(event, NodeLog):
            self.log.emit(event.level, f"{event.node}: {event.message}")
        elif isinstance(event, CacheEvicted):
            self.log.emit("info", f"cache: dropped the outputs of {event.node} ({event.nbytes / 2**20:.1f} MiB, {event.reason})")

    def _work(self, graph: Graph, token: CancelToken, settings: RunSettings, chosen: list[str] | None) -> None:
        self._last_progress.clear()
        try:
            targets = list(chosen) if chosen else default_targets(graph, self.registry)
            shown = image_producers(graph, self.registry, targets)
            # nodes whose images are shown become targets too, so that their outputs come back
            extra = sorted({src for pairs in shown.values() for src, _ in pairs} - set(targets))
            result = self.executor.run(graph, targets + extra, on_event=self._on_event, cancel=token, settings=settings)
        except WorkflowError as exc:
            for problem in exc.problems:
                if problem.node:
                    self.node_state.emit(problem.node, "failed", str(problem))
                self.log.emit("error", str(problem))
            self.run_finished.emit("invalid", f"the workflow cannot run: {len(exc.problems)} problem(s)")
            return
        except NodeExecutionError as exc:
            self.run_finished.emit("failed", str(exc))
            return
        except Cancelled:
            self.run_finished.emit("cancelled", "stopped")
            return
        except Exception as exc:  # a bug must end the run visibly, never kill the worker silently
            self.log.emit("error", f"{type(exc).__name__}: {exc}")
            self.run_finished.emit("failed", f"{type(exc).__name__}: {exc}")
            return
        for node_id, pairs in shown.items():
            images: list[QImage] = []
            for src, out in pairs:
                images.extend(to_qimages(result.outputs.get(src, {}).get(out)))
            if images:
                self.node_images.emit(node_id, images)
        for node_id in targets:
            definition = self.registry.get(graph.nodes[node_id].type)
            texts = [v for v in result.outputs.get(node_id, {}).values() if isinstance(v, str)]
            if definition is not None and definition.output_node and texts:
                self.node_text.emit(node_id, texts[0])
            elif chosen and node_id in chosen and node_id not in shown:
                # a node run on its own that shows nothing in the canvas: its values go to the log
                for name, value in result.outputs.get(node_id, {}).items():
                    self.log.emit("info", f"{node_id}.{name} = {summarize(value)}")
        self.run_finished.emit(
            "done", f"done in {result.seconds:.2f} s: {len(result.executed)} ran, {len(result.cached)} from the cache"
        )
