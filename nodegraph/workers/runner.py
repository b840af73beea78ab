"""Run one :class:`JobSpec` on an Executor: the code every worker runs, in a thread or in a Ray actor.

The job writes into its own staging folder (``<staging root>/<job>-<attempt>/output``), never into the
final output folder: whoever gave the job commits the files when the attempt has succeeded
(:mod:`nodegraph.workers.outputs`), so an attempt that dies half way leaves nothing behind but its
staging folder.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodegraph.context import CancelToken, RunSettings
from nodegraph.errors import Cancelled, NodeExecutionError, WorkflowError
from nodegraph.workers.events import event_to_wire
from nodegraph.workers.spec import CANCELLED, FAILED, SUCCESS, JobSpec, Outcome, StagedFile

# (event as JSON, (preview format, preview bytes) or None)
WireSink = Callable[[dict[str, Any], Any], None]
PREVIEW_FOLDER = "nodegraph-preview"  # where core.PreviewImage writes (nodes/image/io.py)
MAX_VALUE_CHARS = 10_000


def staging_folder(root: Path, spec: JobSpec) -> Path:
    return root / f"{re.sub(r'[^A-Za-z0-9_-]', '_', spec.job_id)}-{spec.attempt}"


def run_spec(
    executor: Any,
    spec: JobSpec,
    staging_root: Path,
    emit: WireSink,
    token: CancelToken,
    *,
    ship_bytes: bool = False,
    worker: str = "",
) -> Outcome:
    """Run the attempt and describe how it ended. Never raises for a failing workflow: that is an Outcome."""
    staging = staging_folder(staging_root, spec)
    output_dir = staging / "output"
    output_dir.mkdir(parents=True, exist_ok=True)
    workflow = _with_inputs(spec, staging)
    failure: dict[str, Any] = {}

    def sink(event: Any) -> None:
        data, preview = event_to_wire(event)
        if data.get("event") == "node_failed":
            failure.update({k: data.get(k) for k in ("node", "type", "message", "error_type", "inputs")})
        emit(data, preview)

    from nodegraph.workflow import parse_workflow

    started = time.perf_counter()
    outcome = Outcome(FAILED, worker=worker)
    try:
        graph = parse_workflow(workflow, executor.registry)
        settings = RunSettings(output_dir=output_dir, device=spec.device, precision=spec.precision, workflow=spec.workflow,
                               paths=read_policy(spec, staging))
        result = executor.run(graph, spec.targets, on_event=sink, cancel=token, settings=settings)
    except WorkflowError as exc:
        outcome.error = {"message": str(exc), "problems": [p.to_json() for p in exc.problems]}
    except NodeExecutionError as exc:
        outcome.error = {"node": exc.node_id, "type": exc.node_type, "message": exc.message, **failure}
    except Cancelled:
        outcome.status = CANCELLED
    except Exception as exc:  # a bug below the engine's own error handling: report it, keep the worker alive
        outcome.error = {"message": f"{type(exc).__name__}: {exc}", "error_type": type(exc).__name__}
    else:
        outcome.status = SUCCESS
        outcome.executed, outcome.cached = list(result.executed), list(result.cached)
        outcome.files, outcome.values = _collect(result.outputs, output_dir, ship_bytes)
    outcome.seconds = time.perf_counter() - started
    if ship_bytes or outcome.status != SUCCESS:
        shutil.rmtree(staging, ignore_errors=True)
    return outcome


def read_policy(spec: JobSpec, staging: Path) -> Any:
    """Where the attempt may read (nodegraph.paths): the usual input folders, the job's own folders, and the
    staging folder its shipped input images were written to."""
    from nodegraph.paths import PathPolicy, default_input_dirs

    extra = [Path(d) for d in spec.read_dirs] + [staging / "input"]
    workflow_dir = Path(spec.workflow_dir) if spec.workflow_dir else None
    return PathPolicy(workflow_dir=workflow_dir, input_dirs=(*extra, *default_input_dirs()))


def _with_inputs(spec: JobSpec, staging: Path) -> dict[str, Any]:
    """The workflow, with shipped input images written to the staging folder and the params pointed there."""
    if not spec.inputs:
        return spec.workflow
    folder = staging / "input"
    folder.mkdir(parents=True, exist_ok=True)
    workflow = copy.deepcopy(spec.workflow)
    for name, data in spec.inputs.items():
        (folder / Path(name).name).write_bytes(data)
    for node_id, param, name in spec.input_params:
        workflow["nodes"][node_id].setdefault("params", {})[param] = str(folder / Path(name).name)
    return workflow


def _collect(
    outputs: dict[str, dict[str, Any]], output_dir: Path, ship_bytes: bool
) -> tuple[list[StagedFile], dict[str, dict[str, Any]]]:
    """The files the run wrote (attributed to the output node that names them) and the JSON-able values."""
    root = output_dir.resolve()
    preview_root = (Path(tempfile.gettempdir()) / PREVIEW_FOLDER).resolve()
    owner: dict[Path, str] = {}
    temp_files: list[tuple[str, Path]] = []
    values: dict[str, dict[str, Any]] = {}
    for node_id, node_outputs in outputs.items():
        for name, value in node_outputs.items():
            lines = _existing_files(value)
            if lines:
                for path in lines:
                    if path.is_relative_to(root):
                        owner.setdefault(path, node_id)
                    elif path.is_relative_to(preview_root):
                        temp_files.append((node_id, path))
                continue
            if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= MAX_VALUE_CHARS):
                values.setdefault(node_id, {})[name] = value
    files: list[StagedFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue  # a temporary file of an atomic write
            path = Path(dirpath) / filename
            rel = path.relative_to(root).as_posix()
            files.append(_staged(owner.get(path, ""), "output", rel, path, ship_bytes))
    for node_id, path in temp_files:
        files.append(_staged(node_id, "temp", path.name, path, True))  # copied: the node's cache still names it
    return files, values


def _staged(node: str, kind: str, rel: str, path: Path, read: bool) -> StagedFile:
    if read:
        return StagedFile(node, kind, rel, data=path.read_bytes())
    return StagedFile(node, kind, rel, path=str(path))


def _existing_files(value: Any) -> list[Path]:
    """The lines of a string output when every line names an existing file (Save Image's ``paths``)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 100_000:
        return []
    paths = [Path(line) for line in value.splitlines() if line.strip()]
    if not all(p.is_absolute() and p.is_file() for p in paths):
        return []
    return [p.resolve() for p in paths]
