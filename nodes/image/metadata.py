"""What Save Image writes next to the pixels: every node's resolved parameters, and an A1111-style
``parameters`` text (prompt, negative prompt, steps, sampler, CFG scale, seed, size, model) that other tools
(A1111's PNG Info, Civitai, image browsers) read.

Both are worked out from the workflow document alone, walking upstream from the Save Image node. Values fed
into a parameter by a link are followed to a constant node (Integer, Text, ...) where there is one; anything
computed further up is recorded as the link it comes from. The parameters text is best effort: a workflow
without a sampler simply gets none.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from typing import Any

from nodegraph.node import NodeDef
from nodegraph.params import ModelFile
from nodegraph.registry import Registry

# Sampler / scheduler ids as A1111 spells them; unknown ids are written as they are.
A1111_SAMPLER_NAMES = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "euler_ancestral": "Euler a",
    "heun": "Heun",
    "lms": "LMS",
    "ddim": "DDIM",
    "ddpm": "DDPM",
    "pndm": "PLMS",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_karras": "DPM++ 2M SDE Karras",
    "unipc": "UniPC",
}

_TEXT_PARAMS = ("text", "text_g", "prompt", "text_l")
_STEPS_PARAMS = ("steps",)
_CFG_PARAMS = ("cfg", "cfg_scale", "guidance_scale")
_SEED_PARAMS = ("seed", "noise_seed")
_SAMPLER_PARAMS = ("sampler_name", "sampler", "scheduler")
_DENOISE_PARAMS = ("denoise", "strength")


class WorkflowView:
    """Read-only helpers over a workflow document and the registry that defines its node types."""

    def __init__(self, doc: dict[str, Any], registry: Registry) -> None:
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        self.nodes: dict[str, dict[str, Any]] = nodes if isinstance(nodes, dict) else {}
        self.registry = registry

    def definition(self, node_id: str) -> NodeDef | None:
        raw = self.nodes.get(node_id)
        return self.registry.get(raw.get("type", "")) if isinstance(raw, dict) else None

    def links(self, node_id: str) -> dict[str, tuple[str, str]]:
        raw = self.nodes.get(node_id) or {}
        inputs = raw.get("inputs") if isinstance(raw.get("inputs"), dict) else {}
        return {name: (link[0], link[1]) for name, link in inputs.items() if isinstance(link, list) and len(link) == 2}

    def params(self, node_id: str, _depth: int = 0) -> dict[str, Any]:
        """The node's parameters: saved values, defaults for the rest, linked values followed to constants."""
        raw = self.nodes.get(node_id) or {}
        saved = raw.get("params") if isinstance(raw.get("params"), dict) else {}
        definition = self.definition(node_id)
        if definition is None:
            return dict(saved)
        params = {p.name: saved.get(p.name, p.default) for p in definition.params}
        for name, (src, out) in self.links(node_id).items():
            if definition.param(name) is not None:
                params[name] = self._constant(src, _depth) if _depth < 8 else None
                if params[name] is None:
                    params[name] = {"linked_from": [src, out]}
        return params

    def _constant(self, node_id: str, depth: int) -> Any:
        # A node with no inputs and a single parameter (Integer, Float, Text, Seed, ...) just passes it on.
        definition = self.definition(node_id)
        if definition is None or definition.inputs or len(definition.params) != 1 or len(definition.outputs) != 1:
            return None
        return self.params(node_id, depth + 1)[definition.params[0].name]

    def upstream(self, start: str, through: str | None = None) -> Iterator[str]:
        """Nodes above ``start`` nearest first (only through input ``through`` for the first hop, if given)."""
        first = self.links(start)
        queue = deque(src for name, (src, _) in first.items() if through is None or name == through)
        seen = {start}
        while queue:
            node_id = queue.popleft()
            if node_id in seen or node_id not in self.nodes:
                continue
            seen.add(node_id)
            yield node_id
            queue.extend(src for src, _ in self.links(node_id).values())

    def input_names(self, node_id: str) -> set[str]:
        definition = self.definition(node_id)
        return {i.name for i in definition.inputs} if definition is not None else set(self.links(node_id))


def resolved_params(doc: dict[str, Any], registry: Registry) -> dict[str, dict[str, Any]]:
    """``{node id: {parameter: value}}`` for every node of the workflow."""
    view = WorkflowView(doc, registry)
    return {node_id: view.params(node_id) for node_id in view.nodes}


def _first(params: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = params.get(name)
        if value is not None and not isinstance(value, dict):
            return value
    return None


def _quote(value: Any) -> str:
    # A1111 quotes values that would break its "key: value, key: value" line.
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:"\n') else text


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def a1111_parameters(doc: dict[str, Any], registry: Registry, save_node: str, width: int, height: int) -> str | None:
    """The ``parameters`` text of the sampler nearest above ``save_node``, or None if there is no sampler."""
    view = WorkflowView(doc, registry)
    sampler = next((n for n in view.upstream(save_node) if {"positive", "negative"} <= view.input_names(n)), None)
    if sampler is None:
        return None
    settings = view.params(sampler)

    def prompt(which: str) -> str:
        for node_id in view.upstream(sampler, through=which):
            text = _first(view.params(node_id), _TEXT_PARAMS)
            if isinstance(text, str):
                return text
        return ""

    fields: list[tuple[str, Any]] = []
    if (steps := _first(settings, _STEPS_PARAMS)) is not None:
        fields.append(("Steps", steps))
    if (name := _first(settings, _SAMPLER_PARAMS)) is not None:
        fields.append(("Sampler", A1111_SAMPLER_NAMES.get(str(name), name)))
    if (cfg := _first(settings, _CFG_PARAMS)) is not None:
        fields.append(("CFG scale", cfg))
    if (seed := _first(settings, _SEED_PARAMS)) is not None:
        fields.append(("Seed", seed))
    fields.append(("Size", f"{width}x{height}"))
    model = _model_name(view, sampler)
    if model:
        fields.append(("Model", model))
    denoise = _first(settings, _DENOISE_PARAMS)
    if isinstance(denoise, (int, float)) and denoise < 1:
        fields.append(("Denoising strength", denoise))

    lines = [prompt("positive")]
    negative = prompt("negative")
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{key}: {_quote(_number(value))}" for key, value in fields))
    return "\n".join(lines)


def _model_name(view: WorkflowView, sampler: str) -> str:
    """The checkpoint file the sampler's MODEL comes from, without folder and extension."""
    for node_id in view.upstream(sampler, through="model"):
        definition = view.definition(node_id)
        if definition is None:
            continue
        params = view.params(node_id)
        for param in definition.params:
            if isinstance(param, ModelFile) and param.folder in ("checkpoints", "diffusers") and isinstance(params.get(param.name), str):
                name = params[param.name].replace("\\", "/").rsplit("/", 1)[-1]
                return name.rsplit(".", 1)[0] if "." in name else name
    return ""
