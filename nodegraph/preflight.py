"""Preflight: the problems a run would meet, found before any model loads and reported all at once.

:func:`nodegraph.graph.validate` checks the graph's shape (types, links, values against their bounds); this
module checks what lies outside it and what only a node knows:

- files the workflow names that are missing or may not be read (:mod:`nodegraph.file_checks`: model files
  with every folder searched, images under the run's read policy), and model choices left empty (unless the
  parameter is declared ``optional``; an image not chosen yet is the node's to report when it runs);
- parameter combinations a node declares invalid (``@node(check=...)``: steps the scheduler cannot do,
  sizes the VAE cannot encode), reading only the node's own parameters;
- seed controls that name no seed or no known control (:mod:`nodegraph.seed_control`);
- a device that is not available (``--device cuda`` on a machine or a torch build without CUDA);
- an output path that is not a folder.

``nodegraph validate``, ``nodegraph run`` (through the executor) and the editor's marks all call
:func:`preflight`, so they report the same problems. Nothing here imports torch: a device is judged from
torch's build information and the system's driver files unless torch is already loaded.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodegraph.errors import Problem
from nodegraph.graph import Graph, GraphNode
from nodegraph.model_folders import ModelFolders
from nodegraph.node import Issue, NodeDef
from nodegraph.params import ModelFile
from nodegraph.registry import Registry
from nodegraph.seed_control import control_problems

if TYPE_CHECKING:
    from nodegraph.paths import PathPolicy

LISTED_CHOICES = 5  # model files named in an "empty choice" message
Lister = Callable[[str, tuple[str, ...], bool], list[str]]


class _ListingCache(dict):
    """Listings answered by a lister (the editor's cache of its model folders)."""

    def __init__(self, lister: Lister) -> None:
        super().__init__()
        self._lister = lister

    def __missing__(self, key: tuple[str, tuple[str, ...], bool]) -> list[str]:
        value = self[key] = list(self._lister(*key))
        return value

    def __contains__(self, key: object) -> bool:
        return True  # every listing is available (fetched on first use)


def preflight(
    graph: Graph,
    registry: Registry,
    folders: ModelFolders,
    *,
    nodes: Iterable[str] | None = None,
    device: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    lister: Lister | None = None,
    policy: PathPolicy | None = None,
) -> list[Problem]:
    """Every problem found in ``nodes`` (default: all), the ``device`` and the ``output_dir``.

    Files the workflow names are checked as the nodes will resolve them (:func:`nodegraph.file_checks.input_problems`
    under ``policy``, the run's read policy; by default the environment's input folders plus the model folders).
    ``lister(folder, extensions, directories)`` lists a model folder for the "no file chosen" message (the
    editor passes its cached listing; by default the folders are read)."""
    from nodegraph.file_checks import input_problems
    from nodegraph.paths import PathPolicy

    problems: list[Problem] = []
    problems.extend(device_problems(device))
    if output_dir is not None:
        problems.extend(output_dir_problems(Path(output_dir)))
    policy = policy if policy is not None else PathPolicy().with_roots(*folders.all_folders())
    problems.extend(input_problems(graph, registry, policy, folders, graph.nodes if nodes is None else nodes))
    listings: dict[tuple[str, tuple[str, ...], bool], list[str]] = {}
    if lister is not None:
        listings = _ListingCache(lister)
    for node_id in graph.nodes if nodes is None else nodes:
        node = graph.nodes.get(node_id)
        definition = registry.get(node.type) if node is not None else None
        if node is None or definition is None:
            continue  # unknown types are validation's to report
        problems.extend(node_problems(node, definition, folders, listings))
    problems.extend(control_problems(graph, registry, graph.nodes if nodes is None else nodes))
    return problems


def own_params(node: GraphNode, definition: NodeDef) -> dict[str, Any]:
    """The node's parameters that no link drives (defaults filled in): what a declared check reads."""
    return {p.name: node.params.get(p.name, p.default) for p in definition.params if p.name not in node.inputs}


def node_problems(
    node: GraphNode,
    definition: NodeDef,
    folders: ModelFolders,
    listings: dict[tuple[str, tuple[str, ...], bool], list[str]] | None = None,
) -> list[Problem]:
    params = own_params(node, definition)
    problems: list[Problem] = []
    for param in definition.params:  # empty choices (a file that is named but missing: file_checks)
        value = params.get(param.name)
        if isinstance(param, ModelFile) and value == "" and not param.optional:
            problems.append(_empty_model_problem(node.id, param, folders, listings if listings is not None else {}))
    if definition.check is not None:
        try:
            issues = list(definition.check(params))
        except Exception as exc:  # a plugin's check is foreign code: report it, never crash validation
            issues = [Issue("", f"the node's parameter check failed: {type(exc).__name__}: {exc}")]
        for issue in issues:
            problems.append(Problem("invalid_params", issue.message, node.id, issue.field, issue.expected, issue.found))
    return problems


def _empty_model_problem(
    node_id: str, param: ModelFile, folders: ModelFolders, listings: dict[tuple[str, tuple[str, ...], bool], list[str]]
) -> Problem:
    key = (param.folder, tuple(param.extensions), param.allow_directories)
    if key not in listings:
        listings[key] = folders.list(param.folder, param.extensions, param.allow_directories)
    available = listings[key]
    if available:
        names = ", ".join(available[:LISTED_CHOICES]) + (", ..." if len(available) > LISTED_CHOICES else "")
        expected = f"a file from the {param.folder} folders ({len(available)} found: {names})"
    else:
        first = next(iter(folders.folders(param.folder)), None)
        expected = f"a file in a {param.folder} folder (none found; put one in {first})" if first else f"a {param.folder} file"
    return Problem("no_model_chosen", f"no {param.folder} file chosen", node_id, param.name, expected, "nothing")


# -- output folder -------------------------------------------------------------------------------------


def output_dir_problems(path: Path) -> list[Problem]:
    """The output folder must be a folder (or not exist yet, under a folder) that we may write in."""
    path = path.expanduser()
    if path.exists():
        if not path.is_dir():
            return [Problem("output_not_a_folder", f"the output path {path} is a file, not a folder",
                            field="output", expected="a folder (or a path that does not exist yet)", found="a file")]
        if not os.access(path, os.W_OK | os.X_OK):
            return [Problem("output_not_writable", f"the output folder {path} is not writable",
                            field="output", expected="a folder you may write in", found="no write permission")]
        return []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return [Problem("output_not_a_folder", f"the output path {path} lies under {parent}, which is a file",
                        field="output", expected="a path under a folder", found=f"{parent} is a file")]
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return [Problem("output_not_writable", f"cannot create the output folder {path}: {parent} is not writable",
                        field="output", expected="a folder you may write in", found="no write permission")]
    return []


# -- devices -------------------------------------------------------------------------------------------

_DEVICE = re.compile(r"^(cpu|cuda|mps|xpu)(?::(\d+))?$")


def device_problems(device: str | None) -> list[Problem]:
    """Whether ``device`` (as given to ``--device``) can compute here; [] for None/"auto" or when unsure."""
    if device in (None, "", "auto"):
        return []
    match = _DEVICE.match(device.strip().lower())
    if match is None:
        return [Problem("bad_device", f"unknown device {device!r}", field="device",
                        expected="cpu, cuda, cuda:N, mps or auto", found=repr(device))]
    kind, index = match.group(1), int(match.group(2) or 0)
    reason = _unavailable(kind, index)
    if reason is None:
        return []
    return [Problem("device_unavailable", f"device {device!r} is not available: {reason}", field="device",
                    expected="an available device (leave --device out to pick the best one)", found=repr(device))]


def _unavailable(kind: str, index: int) -> str | None:
    if kind == "cpu":
        return None
    torch = sys.modules.get("torch")
    if torch is not None:  # already loaded (the editor after a run): ask it
        if kind == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            return None if index < count else _cuda_count_reason(count, index)
        if kind == "mps":
            mps = getattr(torch.backends, "mps", None)
            return None if mps is not None and mps.is_available() else "this machine has no Metal (MPS) GPU"
        return None
    if kind == "cuda":
        build = torch_gpu_build()
        if build == "":
            return f"the installed torch ({torch_version() or 'unknown version'}) is built without CUDA; install a CUDA build or use --device cpu"
        count = visible_gpu_count()
        if count is not None and index >= count:
            return _cuda_count_reason(count, index)
        return None
    if kind == "mps":
        return None if platform.system() == "Darwin" else "MPS exists only on Apple machines"
    return None


def _cuda_count_reason(count: int, index: int) -> str:
    if count == 0:
        return "no CUDA GPU is visible (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides them); use --device cpu"
    return f"there are {count} CUDA GPU(s), numbered 0 to {count - 1}; cuda:{index} does not exist"


def _torch_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("torch")  # locates the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def torch_version() -> str:
    folder = _torch_dir()
    text = _read(folder / "version.py") if folder else ""
    match = re.search(r"^__version__\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return match.group(1) if match else ""


def torch_gpu_build() -> str | None:
    """The CUDA (or ROCm) version torch was built for; "" for a CPU-only build; None if unknown."""
    folder = _torch_dir()
    text = _read(folder / "version.py") if folder else ""
    if not text:
        return None
    found = None
    for name in ("cuda", "hip"):
        match = re.search(rf"^{name}\s*(?::[^=]*)?=\s*(None|['\"][^'\"]*['\"])", text, re.M)
        if match is not None:
            found = found or ""
            if match.group(1) != "None":
                return match.group(1).strip("'\"")
    return found


def visible_gpu_count() -> int | None:
    """NVIDIA GPUs the driver lists, less those CUDA_VISIBLE_DEVICES hides; None when it cannot be told."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir():
        count = sum(1 for _ in gpus.iterdir())
    elif Path("/dev/kfd").exists() or Path("/dev/nvidiactl").exists():
        return None  # a GPU stack is present but does not list its devices here
    elif sys.platform.startswith("linux"):
        count = 0
    else:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        listed = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        count = min(count, len(listed)) if count else 0
    return count


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


__all__ = ["Issue", "device_problems", "node_problems", "output_dir_problems", "own_params", "preflight"]
