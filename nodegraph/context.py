"""What a running node sees of the engine: progress, cancellation, the runtime and logging."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodegraph.errors import Cancelled

if TYPE_CHECKING:
    from nodegraph.events import Event
    from nodegraph.model_folders import ModelFolders
    from nodegraph.paths import PathPolicy
    from nodegraph.runtime import Runtime


class CancelToken:
    """Set from any thread (Ctrl-C, the editor's Stop button); checked between nodes and inside long ones."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


@dataclass
class RunSettings:
    """Settings shared by every node of one run."""

    output_dir: Path = field(default_factory=lambda: Path("output"))
    device: str | None = None
    precision: str = "auto"
    workflow: dict[str, Any] | None = None
    # where input files may be read from (the workflow's folder, input folders, trusted paths); None: the input
    # folders of the environment, confined (see nodegraph.paths)
    paths: PathPolicy | None = None
    allow_nonfinite: bool = False  # keep NaN/infinite images and latents instead of failing the node

    def path_policy(self, folders: ModelFolders | None = None) -> PathPolicy:
        """The run's read policy, with the output folder and the model folders added to what it may read."""
        from nodegraph.paths import PathPolicy

        base = self.paths if self.paths is not None else PathPolicy()
        extra = (Path(self.output_dir), *(folders.all_folders() if folders is not None else ()))
        return base.with_roots(*extra)


class NodeContext:
    """Handed to a node function as its first argument."""

    def __init__(
        self,
        node_id: str,
        node_type: str,
        emit: Callable[[Event], None],
        token: CancelToken,
        settings: RunSettings,
        runtime: Runtime,
        folders: ModelFolders,
        resolved_params: dict[str, Any] | None = None,
    ) -> None:
        self.node_id = node_id
        self.node_type = node_type
        self._emit = emit
        self._token = token
        self.settings = settings
        self.runtime = runtime
        self.folders = folders
        self.params = resolved_params or {}

    @property
    def output_dir(self) -> Path:
        return self.settings.output_dir

    @property
    def workflow(self) -> dict[str, Any] | None:
        """The workflow document being run (Save Image embeds it)."""
        return self.settings.workflow

    def input_path(self, value: str, field: str, what: str = "file", folder: bool = False) -> Path:
        """The input file (or folder) a parameter names, resolved and checked: relative paths beside the
        workflow file first, then in the input folders; never a device or FIFO (:mod:`nodegraph.paths`). Raises
        :class:`~nodegraph.errors.NodeInputError` naming ``field``."""
        from nodegraph.paths import resolve_read

        return resolve_read(self.settings.path_policy(self.folders), value, field, what, folder)

    def progress(self, step: int, total: int, preview: Any = None, message: str = "") -> None:
        """Report ``step`` of ``total`` done, then check for cancellation."""
        from nodegraph.events import NodeProgress

        self._emit(NodeProgress(self.node_id, self.node_type, step, total, message, preview))
        self._token.check()

    def check_cancelled(self) -> None:
        """Raise :class:`~nodegraph.errors.Cancelled` if the run was cancelled."""
        self._token.check()

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def log(self, message: str, level: str = "info") -> None:
        """Show a message to the user (terminal, JSON events, the editor's log panel)."""
        from nodegraph.events import NodeLog

        self._emit(NodeLog(self.node_id, self.node_type, level, message))

    def warn(self, message: str) -> None:
        self.log(message, "warning")
