"""The graphs inside a UI-format file, and where every link really comes from.

A UI-format file may nest graphs: subgraph instances (a node whose ``type`` is the UUID of an entry of
``definitions.subgraphs``) and legacy group nodes (``workflow>Name`` / ``workflow/Name``, defined in
``extra.groupNodes``). Each nesting level is a :class:`Scope`; a node inside instance ``12`` gets the id
``12:<inner id>`` (ComfyUI's own spelling for expanded nodes).

:meth:`Resolver.source` follows a link to the node that really produces the value: through subgraph
boundaries (the inner input node has id -10, the output node -20), through group-node inputs and outputs,
through Reroute nodes (unless they are kept as nodes) and through bypassed or muted nodes when the engine
cannot keep them (ComfyUI's rule: a bypassed node passes on the input of the same type as the output).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SUBGRAPH_INPUT = "-10"
SUBGRAPH_OUTPUT = "-20"
GROUP_NODE_PREFIXES = ("workflow>", "workflow/")
MODES = {0: "", 1: "", 2: "mute", 4: "bypass"}  # 1 = "on event" (old LiteGraph): runs like always


def items(raw: Any, key: str) -> list:
    """``raw[key]`` when it is a list (files edited by hand or by plugins hold anything), else []."""
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, list) else []


def as_int(value: Any, default: int = -1) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


@dataclass(frozen=True)
class Endpoint:
    """A resolved source: output ``slot`` of the node with global id ``node``, or a plain ``value``."""

    node: str | None = None
    slot: int = 0
    value: Any = None
    is_value: bool = False


@dataclass
class RawLink:
    origin: str
    origin_slot: int
    target: str
    target_slot: int
    type: Any = None


@dataclass
class Scope:
    """One graph level: its raw nodes by (local) id and links by target ``(node, slot)``."""

    prefix: str
    nodes: dict[str, dict] = field(default_factory=dict)
    into: dict[tuple[str, int], RawLink] = field(default_factory=dict)
    out_of: dict[tuple[str, int], list[RawLink]] = field(default_factory=dict)
    parent: Scope | None = None
    instance: dict | None = None  # the subgraph instance / group node in the parent scope
    kind: str = "top"  # "top", "subgraph" or "group"
    mode: str = ""  # inherited from the instance: everything inside a bypassed subgraph is bypassed
    # group nodes: instance input k -> (inner id, inner slot); instance output k -> (inner id, inner slot)
    group_inputs: dict[int, tuple[str, int]] = field(default_factory=dict)
    group_outputs: dict[int, tuple[str, int]] = field(default_factory=dict)
    definition: dict | None = None

    def gid(self, local_id: str) -> str:
        return f"{self.prefix}{local_id}"

    def add_link(self, link: RawLink) -> None:
        self.into[(link.target, link.target_slot)] = link
        self.out_of.setdefault((link.origin, link.origin_slot), []).append(link)


def parse_links(raw_links: Any, warn: Callable[[str], None]) -> list[RawLink]:
    """Links as arrays (schema 0.4: ``[id, origin, slot, target, slot, type]``) or objects (schema 1)."""
    out: list[RawLink] = []
    for raw in raw_links if isinstance(raw_links, list) else []:
        if isinstance(raw, list) and len(raw) >= 5:
            _, origin, oslot, target, tslot, *rest = raw
            out.append(RawLink(str(origin), as_int(oslot), str(target), as_int(tslot), rest[0] if rest else None))
        elif isinstance(raw, dict) and {"origin_id", "target_id"} <= raw.keys():
            out.append(RawLink(str(raw["origin_id"]), as_int(raw.get("origin_slot")), str(raw["target_id"]),
                               as_int(raw.get("target_slot")), raw.get("type")))
        elif raw is not None:
            warn(f"a link that is neither an array nor an object was skipped: {str(raw)[:60]}")
    return out


def link_ids(raw_links: Any) -> dict[int, RawLink]:
    """Links by their id (for resolving a node input's ``link`` field)."""
    table: dict[int, RawLink] = {}
    for raw in raw_links if isinstance(raw_links, list) else []:
        if isinstance(raw, list) and len(raw) >= 5:
            table[as_int(raw[0])] = RawLink(str(raw[1]), as_int(raw[2]), str(raw[3]), as_int(raw[4]),
                                            raw[5] if len(raw) > 5 else None)
        elif isinstance(raw, dict) and "id" in raw and {"origin_id", "target_id"} <= raw.keys():
            table[as_int(raw["id"])] = RawLink(str(raw["origin_id"]), as_int(raw.get("origin_slot")),
                                               str(raw["target_id"]), as_int(raw.get("target_slot")), raw.get("type"))
    return table


def node_mode(raw: dict) -> str:
    return MODES.get(as_int(raw.get("mode"), 0), "")


def is_group_node(node_type: Any) -> bool:
    return isinstance(node_type, str) and node_type.startswith(GROUP_NODE_PREFIXES)


def group_name(node_type: str) -> str:
    for prefix in GROUP_NODE_PREFIXES:
        if node_type.startswith(prefix):
            return node_type[len(prefix):]
    return node_type


def scope_links(scope: Scope, raw_links: Any, warn: Callable[[str], None]) -> None:
    """Fill ``scope``'s link tables from a links list, cross-checked against the nodes' ``link`` fields.

    The links list is the truth for which output feeds which input; a node input naming a link id that the
    list lacks is reported and left unconnected.
    """
    by_id = link_ids(raw_links)
    for link in parse_links(raw_links, warn):
        scope.add_link(link)
    for local_id, raw in scope.nodes.items():
        for slot, inp in enumerate(items(raw, "inputs")):
            if not isinstance(inp, dict) or inp.get("link") is None:
                continue
            link = by_id.get(as_int(inp.get("link")))
            if link is None:
                warn(f"node {scope.gid(local_id)}: input {inp.get('name')!r} names link {inp.get('link')}, which the "
                     "file does not have: left unconnected")
            elif (local_id, slot) not in scope.into:
                scope.add_link(RawLink(link.origin, link.origin_slot, local_id, slot, link.type))


def iter_nodes(scope: Scope) -> Iterator[tuple[str, dict]]:
    yield from scope.nodes.items()
