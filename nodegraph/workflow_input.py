"""Reading a workflow document from a file (JSON, or a PNG that embeds one), as untrusted input.

The file must be a regular file (a FIFO or ``/dev/zero`` would hang the read), no larger than the
``workflow_bytes`` limit (a PNG's image data is skipped, not read), valid UTF-8 JSON within the depth and
number limits, and without keys given twice: a node id or field given twice is reported as a problem, where
Python's ``json`` would silently keep the last one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nodegraph.limits as limits
from nodegraph.errors import Problem, WorkflowError
from nodegraph.png_meta import PNG_SIGNATURE, WORKFLOW_KEY, read_text_chunks
from nodegraph.safe_json import JsonInputError, parse_json


def _fail(code: str, message: str, path: Path, expected: str) -> WorkflowError:
    return WorkflowError([Problem(code, message, expected=expected, found=str(path))])


def read_document(path: Path) -> tuple[Any, list[Problem]]:
    """(document, problems about duplicate keys) of the workflow in ``path``; :class:`WorkflowError` when there
    is no document to read."""
    from nodegraph.paths import PathRefused, check_readable

    try:
        check_readable(path, "", "workflow file")
    except PathRefused as exc:
        raise _fail("unreadable", str(exc), path, "a readable workflow file (.json or .png)") from None
    try:
        with open(path, "rb") as stream:
            head = stream.read(8)
            stream.seek(0)
            if head == PNG_SIGNATURE:
                text = read_text_chunks(stream, str(path), {WORKFLOW_KEY}).get(WORKFLOW_KEY)
                if text is None:
                    raise _fail("no_workflow_in_png", f"{path} carries no nodegraph workflow", path,
                                f"a {WORKFLOW_KEY!r} text chunk")
                data: bytes | str = text
                where = f"the workflow in {path}"
            else:
                limit = limits.get("workflow_bytes")
                data = stream.read(limit + 1)
                limits.check(f"{path} is too large", "workflow_bytes", len(data))
                where = str(path)
    except OSError as exc:
        raise _fail("unreadable", f"cannot read {path}: {exc.strerror or exc}", path, "a readable file") from None
    except limits.LimitExceeded as exc:
        raise _fail("limit_exceeded", str(exc), path, "a smaller workflow") from None
    try:
        document = parse_json(data, where)
    except JsonInputError as exc:
        raise _fail("bad_json", str(exc), path, "a JSON workflow document") from None
    return document.value, duplicate_problems(document.value, document.duplicates)


def duplicate_problems(doc: Any, duplicates: list[tuple[int, str]]) -> list[Problem]:
    """A problem per key given twice: duplicate node ids named as such, other keys with their place."""
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    owners: dict[int, str] = {id(doc): "the top level"}
    if isinstance(nodes, dict):
        owners[id(nodes)] = "nodes"
        for node_id, node in nodes.items():
            if isinstance(node, dict):
                owners[id(node)] = f"node {node_id!r}"
                for part in ("params", "inputs", "layout"):
                    if isinstance(node.get(part), dict):
                        owners[id(node[part])] = f"node {node_id!r} {part}"
    problems = []
    for owner, key in duplicates:
        where = owners.get(owner)
        if where == "nodes":
            problems.append(Problem("duplicate_node_id", f"node id {key!r} is used by two nodes; only one would be "
                                    "kept: rename one of them", key, expected="unique node ids", found=f"{key!r} twice"))
        else:
            problems.append(Problem("duplicate_key", f"the key {key!r} appears twice in {where or 'one object'}; only "
                                    "one value would be kept: remove the other", expected="each key once",
                                    found=f"{key!r} twice"))
    return problems
