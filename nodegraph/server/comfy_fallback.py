"""STOPGAP, to be replaced by ``nodegraph.comfy`` (the ComfyUI import, built in parallel).

A minimal conversion of ComfyUI's API format for the core class types, with the same names as the real
module (``import_api_prompt``, ``export_api_prompt``, ``is_comfy_document``, ``load_comfy``, ``MAPPINGS``),
so the server's ComfyUI endpoints work before the importer lands. It maps class types and field names
only; ComfyUI's sampling semantics (its noise, sigma schedules and sampler names) are the importer's
business, so images differ from ComfyUI's. :mod:`nodegraph.server.comfy_bridge` uses the real module
whenever it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodegraph.errors import Problem, WorkflowError
from nodegraph.graph import Graph, GraphNode
from nodegraph.registry import Registry


@dataclass(frozen=True)
class Mapping:
    node_type: str
    fields: dict[str, str] = field(default_factory=dict)  # ComfyUI input name -> ours (same name if absent)


MAPPINGS: dict[str, Mapping] = {
    "CheckpointLoaderSimple": Mapping("core.CheckpointLoader"),
    "CLIPTextEncode": Mapping("core.CLIPTextEncode"),
    "CLIPSetLastLayer": Mapping("core.CLIPSetLastLayer"),
    "EmptyLatentImage": Mapping("core.EmptyLatentImage"),
    "KSampler": Mapping("core.KSampler"),
    "VAEDecode": Mapping("core.VAEDecode"),
    "VAEEncode": Mapping("core.VAEEncode"),
    "VAELoader": Mapping("core.VAELoader"),
    "SaveImage": Mapping("core.SaveImage"),
    "PreviewImage": Mapping("core.PreviewImage"),
    "LoadImage": Mapping("core.LoadImage", {"image": "path"}),
    "LoraLoader": Mapping("core.LoraLoader"),
}

# ComfyUI (sampler_name, scheduler) -> our nearest scheduler choice
_SAMPLERS = {"euler": "euler", "euler_ancestral": "euler_ancestral", "ddim": "ddim", "heun": "heun", "lms": "lms",
             "dpmpp_2m": "dpmpp_2m", "dpmpp_2m_sde": "dpmpp_2m_sde", "uni_pc": "unipc", "ddpm": "ddpm"}
_DROPPED = {"sampler_name", "scheduler", "upload"}


@dataclass
class ComfyImport:
    graph: Graph
    report: list[str] = field(default_factory=list)


def is_comfy_document(doc: Any) -> bool:
    """True for ComfyUI's API format (``{id: {"class_type", "inputs"}}``), optionally wrapped as ``{"prompt": ...}``."""
    if isinstance(doc, dict) and isinstance(doc.get("prompt"), dict):
        doc = doc["prompt"]
    return isinstance(doc, dict) and bool(doc) and all(isinstance(v, dict) and "class_type" in v for v in doc.values())


def load_comfy(data: Any, registry: Registry, *, source: str = "") -> ComfyImport:
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict):
        data = data["prompt"]
    if not is_comfy_document(data):
        raise WorkflowError([Problem("not_comfy_api", "only ComfyUI's API format is understood here (Export (API) "
                                     "in ComfyUI)", expected="{node id: {class_type, inputs}}", found=source or "another shape")])
    return import_api_prompt(data, registry)


def import_api_prompt(prompt: dict[str, Any], registry: Registry) -> ComfyImport:
    problems: list[Problem] = []
    report: list[str] = []
    graph = Graph()
    for node_id, entry in prompt.items():
        class_type = entry.get("class_type")
        mapping = MAPPINGS.get(class_type) if isinstance(class_type, str) else None
        definition = registry.get(mapping.node_type) if mapping else None
        if mapping is None or definition is None:
            problems.append(Problem("unknown_comfy_class", f"ComfyUI node type {class_type!r} has no equivalent here",
                                    str(node_id), "class_type", "one of " + ", ".join(sorted(MAPPINGS)), repr(class_type)))
            continue
        inputs = entry.get("inputs") if isinstance(entry.get("inputs"), dict) else {}
        node = GraphNode(str(node_id), mapping.node_type, definition.version)
        for name, value in inputs.items():
            ours = mapping.fields.get(name, name)
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                source = prompt.get(str(value[0]))
                src_mapping = MAPPINGS.get(source.get("class_type")) if isinstance(source, dict) else None
                src_def = registry.get(src_mapping.node_type) if src_mapping else None
                if src_def is None or not 0 <= value[1] < len(src_def.outputs):
                    problems.append(Problem("bad_link", "the link names a missing node or output", str(node_id), name,
                                            "[node id, output index]", repr(value)))
                    continue
                node.inputs[ours] = (str(value[0]), src_def.outputs[value[1]].name)
            elif name not in _DROPPED:
                if definition.param(ours) is None:
                    report.append(f"node {node_id}: input {name!r} is ignored")
                    continue
                node.params[ours] = value
        if class_type == "KSampler":
            sampler = inputs.get("sampler_name", "euler")
            scheduler = _SAMPLERS.get(sampler, "euler")
            if scheduler == "dpmpp_2m" and inputs.get("scheduler") == "karras":
                scheduler = "dpmpp_2m_karras"
            node.params["scheduler"] = scheduler
        graph.nodes[node.id] = node
    if problems:
        raise WorkflowError(problems)
    return ComfyImport(graph, report)


def export_api_prompt(graph: Graph, registry: Registry) -> dict[str, Any]:
    reverse = {m.node_type: (name, {v: k for k, v in m.fields.items()}) for name, m in MAPPINGS.items()}
    prompt: dict[str, Any] = {}
    for node in graph.nodes.values():
        class_type, fields = reverse.get(node.type, (node.type, {}))
        inputs: dict[str, Any] = {fields.get(k, k): v for k, v in node.params.items()}
        for name, (src, out) in node.inputs.items():
            src_def = registry.get(graph.nodes[src].type) if src in graph.nodes else None
            index = next((i for i, o in enumerate(src_def.outputs) if o.name == out), 0) if src_def else 0
            inputs[fields.get(name, name)] = [src, index]
        prompt[node.id] = {"class_type": class_type, "inputs": inputs}
    return prompt
