"""Turn a submitted document into a job's workflow: parsed, overridden, validated and confined, or refused
with every problem at once (the structured problems of ``nodegraph validate``, sent as HTTP 400 JSON).

Accepted documents: a nodegraph workflow (``"format": "nodegraph.workflow"``), ComfyUI's API format (the
``prompt`` of ``POST /prompt``), and whatever else the ComfyUI import understands (its editor format).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodegraph.errors import Problem, WorkflowError
from nodegraph.graph import Graph
from nodegraph.overrides import apply_value_overrides
from nodegraph.params import describe
from nodegraph.registry import Registry
from nodegraph.server import comfy_bridge
from nodegraph.server.confine import confine
from nodegraph.validation import validate
from nodegraph.workflow import FORMAT, parse_workflow, to_document


class SubmissionError(Exception):
    """The document cannot be queued. ``problems`` says why, one entry per problem."""

    def __init__(self, problems: list[Problem], kind: str = "invalid_workflow") -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
        self.kind = kind


@dataclass
class Submission:
    workflow: dict[str, Any]  # the nodegraph document that will run
    source: str  # "native" or "comfy"
    targets: list[str] | None = None
    notes: list[str] = field(default_factory=list)  # what the ComfyUI import reported (ignored inputs, ...)
    graph: Graph | None = None


def prepare(
    doc: Any,
    registry: Registry,
    input_dir: Path,
    *,
    targets: Any = None,
    overrides: Any = None,
    allowed: set[str] | frozenset[str] = frozenset(),
    comfy: bool = False,
) -> Submission:
    """Check everything that can be checked before a model loads. Raises :class:`SubmissionError`."""
    graph, source, notes = _parse(doc, registry, comfy)
    problems = apply_value_overrides(graph, registry, overrides)
    target_list = _targets(graph, targets, problems)
    problems.extend(validate(graph, registry))
    problems.extend(confine(graph, registry, input_dir, allowed))
    if problems:
        raise SubmissionError(problems)
    if source == "comfy" and target_list is None and not any(
        (d := registry.get(n.type)) is not None and d.output_node for n in graph.nodes.values()
    ):
        raise SubmissionError([Problem("prompt_no_outputs", "the prompt has no output node (Save Image, Preview Image, ...)",
                                       expected="at least one output node", found="none")], "prompt_no_outputs")
    return Submission(to_document(graph), source, target_list, notes, graph)


def _parse(doc: Any, registry: Registry, comfy: bool) -> tuple[Graph, str, list[str]]:
    if not isinstance(doc, dict):
        raise SubmissionError([Problem("not_a_workflow", "the workflow must be a JSON object", expected="an object", found=describe(doc))])
    try:
        if doc.get("format") == FORMAT and not comfy:
            return parse_workflow(doc, registry), "native", []
        if comfy:
            graph, notes = comfy_bridge.import_api_prompt(doc, registry)
            return graph, "comfy", notes
        if comfy_bridge.is_comfy_document(doc):
            graph, notes = comfy_bridge.load_comfy(doc, registry)
            return graph, "comfy", notes
    except WorkflowError as exc:
        raise SubmissionError(exc.problems) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape the importer did not expect
        raise SubmissionError([Problem("bad_comfy_document", f"the ComfyUI document could not be read: {exc}")]) from None
    raise SubmissionError([Problem("not_a_workflow", "this is neither a nodegraph workflow nor a ComfyUI workflow",
                                   field="format", expected=f"{FORMAT!r}, or ComfyUI's API format",
                                   found=describe(doc.get("format")))])


def _targets(graph: Graph, targets: Any, problems: list[Problem]) -> list[str] | None:
    if targets is None:
        return None
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets) or not targets:
        problems.append(Problem("bad_targets", "'targets' must be a list of node ids", field="targets",
                                expected="a non-empty list of strings", found=describe(targets)))
        return None
    for target in targets:
        if target not in graph.nodes:
            problems.append(Problem("unknown_target", "no such node to run", target, expected="a node id in the workflow", found=repr(target)))
    return list(targets)
