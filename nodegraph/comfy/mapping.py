"""How one ComfyUI class type becomes one nodegraph node type: the entries of the mapping table.

A :class:`ClassMapping` is data, not code paths: the ComfyUI class name, the node type it becomes, the
ComfyUI widget names in the order a UI-format file lists their values, renamed fields, value conversions,
and the output names by ComfyUI output index. The importer and the exporter read the same entries, so an
entry added by a plugin (:func:`register_mapping`) is imported and exported alike.

This module imports neither torch nor Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# What a seed widget's "control after generate" slot holds in a UI-format file
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap", "decrement-wrap"})

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class ValueMap:
    """A two-way conversion of one field's values (ComfyUI's spelling <-> nodegraph's)."""

    to_node: Convert
    to_comfy: Convert


def choice_map(pairs: Mapping[Any, Any]) -> ValueMap:
    """A :class:`ValueMap` from a table of ComfyUI value -> nodegraph value (unknown values pass unchanged)."""
    forward = dict(pairs)
    backward = {v: k for k, v in forward.items()}
    return ValueMap(lambda v: forward.get(v, v), lambda v: backward.get(v, v))


ENABLE = choice_map({"enable": True, "disable": False})


@dataclass(frozen=True)
class ClassMapping:
    """One ComfyUI class type and the nodegraph node type it becomes.

    - ``widgets``: ComfyUI's widget (value) inputs in the order a UI-format file stores their values. A name
      ending in ``*`` is a seed whose "control after generate" slot follows it in the file. Several
      spellings over ComfyUI's history are given by ``widget_variants`` (tried by length).
    - ``rename``: ComfyUI input name -> nodegraph field (an input or a parameter); others keep their name.
    - ``values``: per nodegraph field, a :class:`ValueMap` between ComfyUI's values and nodegraph's.
    - ``outputs``: nodegraph output names by ComfyUI output index.
    - ``ignore``: ComfyUI inputs with no nodegraph meaning (UI buttons, settings the product decides alone);
      they are kept in the node's data so an export writes them back.
    - ``params``: nodegraph parameters set on import (ComfyUI's fixed behaviour where nodegraph has a choice).
    - ``export``: False for entries that only import (another class type is written on export).
    - ``export_values``: ComfyUI inputs an export writes when the node has none of its own (inputs of
      ``ignore`` that ComfyUI requires).
    - ``note``: said in the import report for every node of this class (what differs from ComfyUI).
    """

    class_type: str
    node_type: str
    widgets: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, ValueMap] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    widget_variants: tuple[tuple[str, ...], ...] = ()
    export: bool = True
    export_values: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    pack: str = "comfy-core"

    @property
    def fields(self) -> Mapping[str, str]:
        """ComfyUI input name -> nodegraph field, for the inputs whose names differ (the ``rename`` table)."""
        return self.rename

    def field_for(self, comfy_name: str) -> str:
        return self.rename.get(comfy_name, comfy_name)

    def comfy_name(self, node_field: str) -> str:
        for comfy, name in self.rename.items():
            if name == node_field:
                return comfy
        return node_field

    def widget_names(self) -> tuple[str, ...]:
        """Every widget input name this class has had (without control markers)."""
        names: list[str] = []
        for entries in self.widget_lists():
            names.extend(widget_name(e) for e in entries if widget_name(e) not in names)
        return tuple(names)

    def widget_lists(self) -> tuple[tuple[str, ...], ...]:
        """Every known widget order, the current one first."""
        return (self.widgets, *self.widget_variants)

    def to_node_value(self, node_field: str, value: Any) -> Any:
        vm = self.values.get(node_field)
        return vm.to_node(value) if vm is not None else value

    def to_comfy_value(self, node_field: str, value: Any) -> Any:
        vm = self.values.get(node_field)
        return vm.to_comfy(value) if vm is not None else value


def widget_name(entry: str) -> str:
    """A widget list entry without its control-slot marker."""
    return entry.rstrip("*")


class MappingTable(Mapping[str, ClassMapping]):
    """ComfyUI class type -> :class:`ClassMapping`, with the reverse index the exporter needs."""

    def __init__(self) -> None:
        self._by_class: dict[str, ClassMapping] = {}

    def add(self, mapping: ClassMapping, *, override: bool = False) -> ClassMapping:
        if not isinstance(mapping, ClassMapping):
            raise TypeError(f"expected a ClassMapping, found {type(mapping).__name__}")
        if mapping.class_type in self._by_class and not override:
            raise ValueError(
                f"ComfyUI class type {mapping.class_type!r} already has a mapping (to "
                f"{self._by_class[mapping.class_type].node_type}); pass override=True to replace it"
            )
        self._by_class[mapping.class_type] = mapping
        return mapping

    def remove(self, class_type: str) -> None:
        self._by_class.pop(class_type, None)

    def for_node_type(self, node_type: str) -> ClassMapping | None:
        """The entry an export writes for ``node_type`` (the first exportable one)."""
        return next((m for m in self._by_class.values() if m.node_type == node_type and m.export), None)

    def __getitem__(self, class_type: str) -> ClassMapping:
        return self._by_class[class_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_class)

    def __len__(self) -> int:
        return len(self._by_class)


MAPPINGS = MappingTable()


def register_mapping(mapping: ClassMapping, *, override: bool = False) -> ClassMapping:
    """Add a ComfyUI class type to the table (a plugin mapping its own node types calls this)."""
    return MAPPINGS.add(mapping, override=override)
