"""What a worker is given and what it gives back. Plain data, so it crosses a Ray boundary as it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How a job attempt ended. "lost" means the worker itself went away (a Ray actor died, a node was lost):
# the job may be retried elsewhere; the others are final.
SUCCESS, FAILED, CANCELLED, LOST = "success", "failed", "cancelled", "lost"


@dataclass
class JobSpec:
    """One attempt at one job.

    ``workflow`` is a nodegraph workflow document, already validated and confined by whoever queued it.
    ``inputs`` carries the bytes of the input images the workflow reads (name -> bytes) when the worker
    may run on another machine; the worker writes them into its own staging folder and points the
    workflow's image parameters there (``input_params`` lists them as ``(node id, param name, name)``).
    ``workflow_dir`` and ``read_dirs`` say where the run may read (see :func:`nodegraph.workers.runner.read_policy`).
    """

    job_id: str
    workflow: dict[str, Any]
    targets: list[str] | None = None
    attempt: int = 1
    device: str | None = None
    precision: str = "auto"
    inputs: dict[str, bytes] = field(default_factory=dict)
    input_params: list[tuple[str, str, str]] = field(default_factory=list)
    # what the run may read besides the usual input folders (nodegraph.paths): the folder relative paths are
    # looked up in first (the workflow file's, for `nodegraph batch`) and folders the queue already confined to
    workflow_dir: str | None = None
    read_dirs: list[str] = field(default_factory=list)

    def model_files(self) -> set[str]:
        """``folder/name`` of every model file the workflow names: what scheduling by affinity compares."""
        return model_files_of(self.workflow)


def model_files_of(workflow: dict[str, Any]) -> set[str]:
    """The model files a workflow document names, as ``folder/name``, read from the node types' declarations
    when the registry knows them, otherwise from parameter names ending in ``_name`` (ComfyUI's habit)."""
    from nodegraph.installed import default_registry
    from nodegraph.params import ModelFile

    registry = default_registry()
    found: set[str] = set()
    nodes = workflow.get("nodes") if isinstance(workflow, dict) else None
    for entry in (nodes or {}).values():
        if not isinstance(entry, dict):
            continue
        definition = registry.get(str(entry.get("type")))
        params = entry.get("params") if isinstance(entry.get("params"), dict) else {}
        for name, value in params.items():
            param = definition.param(name) if definition else None
            if isinstance(param, ModelFile) and isinstance(value, str) and value:
                found.add(f"{param.folder}/{value}")
    return found


@dataclass
class StagedFile:
    """A file a job wrote, waiting in the worker's staging folder to be committed.

    ``kind`` is ``"output"`` (saved images and other files under the output folder) or ``"temp"``
    (previews). ``relpath`` is relative to the staging output folder (subfolders the workflow chose
    are kept). ``path`` is where it lies now when the worker shares this machine's disk; ``data`` holds
    the bytes when it does not (a Ray actor elsewhere).
    """

    node: str
    kind: str
    relpath: str
    path: str | None = None
    data: bytes | None = None


@dataclass
class Outcome:
    """How an attempt ended, what it produced, and what it cost."""

    status: str
    files: list[StagedFile] = field(default_factory=list)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    seconds: float = 0.0
    worker: str = ""
