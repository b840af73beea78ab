"""What a workflow may touch on a server: files in the input folder, models by name, outputs in the output folder.

A workflow sent over HTTP comes from someone who may not read the server's disk. Before a job enters the
queue, every image parameter is resolved inside the input folder (a relative name, as ComfyUI clients send,
or an absolute path that lies inside it), model parameters must be plain names inside the model folders,
file parameters may not be fed by links (a linked string would skip these checks), and node types that
read or write elsewhere are refused unless the server allows them by name (``--allow-node``).
Save nodes already confine their file names to the output folder themselves.

These are the server's own small helpers; the engine's path-confinement helpers (being added in
parallel) can replace ``inside`` and ``safe_name`` when they land.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from nodegraph.errors import Problem
from nodegraph.graph import Graph
from nodegraph.params import ImageFile, ModelFile
from nodegraph.registry import Registry

# Node types that read folders anywhere on the server or write outside its output folder.
REFUSED_BY_DEFAULT: dict[str, str] = {
    "core.TrainLoraDreamBooth": "reads image folders anywhere on the server and writes LoRA files into its model folders",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` resolved, or None if it would leave ``root`` (``..``, absolute, a link out)."""
    text = relative.replace("\\", "/")
    if "\0" in text or PurePosixPath(text).is_absolute() or PureWindowsPath(relative).drive:
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    base = root.resolve()
    target = base.joinpath(*parts).resolve()
    return target if target == base or base in target.parents else None


def safe_name(name: str, default: str = "upload") -> str:
    """A file name with no folder part, no leading dot and only letters, digits, ``._ -``."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    return name[:120] or default


def confine(graph: Graph, registry: Registry, input_dir: Path, allowed: set[str] | frozenset[str] = frozenset()) -> list[Problem]:
    """Check and rewrite ``graph`` in place for serving; returns the problems (empty: it may be queued).

    Image parameters are rewritten to absolute paths inside ``input_dir``.
    """
    problems: list[Problem] = []
    for node in graph.nodes.values():
        reason = REFUSED_BY_DEFAULT.get(node.type)
        if reason and node.type not in allowed:
            problems.append(Problem(
                "node_not_allowed", f"{node.type} is refused on this server: it {reason}. Start the server with "
                f"--allow-node {node.type} to allow it", node.id, expected="a node type the server allows", found=node.type))
            continue
        definition = registry.get(node.type)
        if definition is None:
            continue  # validation reports unknown types
        for param in definition.params:
            if not isinstance(param, (ImageFile, ModelFile)):
                continue
            if param.name in node.inputs:
                problems.append(Problem(
                    "linked_file_param", "on a server, file parameters must be set directly, not fed by a link",
                    node.id, param.name, "a file name", "a link"))
                continue
            value = node.params.get(param.name, param.default)
            if not isinstance(value, str) or not value:
                continue  # empty: the node itself reports it
            if isinstance(param, ModelFile):
                problem = _check_model_name(value)
                if problem:
                    problems.append(Problem("model_path_refused", problem, node.id, param.name,
                                            f"a file name from the {param.folder} folder", repr(value)))
            else:
                resolved = _input_path(input_dir, value)
                if resolved is None:
                    problems.append(Problem("input_path_refused", "image files must lie in the server's input folder "
                                            "(upload them first: POST /upload/image or /v1/uploads)", node.id,
                                            param.name, "a name inside the input folder", repr(value)))
                elif not resolved.is_file():
                    problems.append(Problem("input_not_found", "no such file in the server's input folder", node.id,
                                            param.name, "an uploaded image", repr(value)))
                else:
                    node.params[param.name] = str(resolved)
    return problems


def _check_model_name(value: str) -> str:
    text = value.replace("\\", "/")
    if "\0" in text:
        return "the name contains a NUL character"
    if PurePosixPath(text).is_absolute() or PureWindowsPath(value).drive or text.startswith("~"):
        return "on a server, models are named relative to the model folders, not by absolute path"
    if ".." in text.split("/"):
        return "model names may not contain '..'"
    return ""


def _input_path(input_dir: Path, value: str) -> Path | None:
    candidate = Path(value)
    if candidate.is_absolute():
        base = input_dir.resolve()
        resolved = candidate.resolve()
        return resolved if base in resolved.parents else None
    # ComfyUI clients name uploads "name.png" or "subfolder/name.png", optionally with " [input]".
    return inside(input_dir, re.sub(r"\s*\[input\]$", "", value))
