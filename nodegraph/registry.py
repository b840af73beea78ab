"""The registry of node types: built-ins and plugins go through the same door.

This module is the container only; :mod:`nodegraph.installed` fills the process-wide one (built-in library,
then plugins, both found by :mod:`nodegraph.plugins`)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from types import ModuleType

from nodegraph.node import NodeDef


class RegistryConflict(ValueError):
    """Two sources declare the same node id and neither asked to override."""


class Registry:
    def __init__(self) -> None:
        self._defs: dict[str, NodeDef] = {}

    def register(self, definition: NodeDef, *, source: str = "builtin", override: bool = False) -> NodeDef:
        """Add a node type. Replacing an existing id needs ``override=True``, so nothing is lost silently."""
        if not isinstance(definition, NodeDef):
            raise TypeError(f"expected a NodeDef, found {type(definition).__name__}")
        existing = self._defs.get(definition.id)
        if existing is not None and existing is not definition and not override:
            raise RegistryConflict(
                f"node type {definition.id!r} from {source} conflicts with the one from {existing.source}; "
                "rename it, or register it with override=True to replace the existing one on purpose"
            )
        if definition.source != source:
            object.__setattr__(definition, "source", source)
        self._defs[definition.id] = definition
        return definition

    def register_module(self, module: ModuleType | str, *, source: str = "builtin", override: bool = False) -> list[NodeDef]:
        """Register every NodeDef defined at the top level of a module, in definition order."""
        if isinstance(module, str):
            module = importlib.import_module(module)
        found = [v for v in vars(module).values() if isinstance(v, NodeDef)]
        return [self.register(d, source=source, override=override) for d in found]

    def unregister_source(self, source: str) -> list[str]:
        """Remove every node type a source registered (used when reloading plugins)."""
        removed = [k for k, d in self._defs.items() if d.source == source]
        for key in removed:
            del self._defs[key]
        return removed

    def get(self, node_id: str) -> NodeDef | None:
        return self._defs.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._defs

    def __iter__(self) -> Iterator[NodeDef]:
        return iter(sorted(self._defs.values(), key=lambda d: (d.category, d.name, d.id)))

    def __len__(self) -> int:
        return len(self._defs)

    def ids(self) -> list[str]:
        return sorted(self._defs)

    def copy(self) -> Registry:
        clone = Registry()
        clone._defs = dict(self._defs)
        return clone


def registry_from(definitions: Iterable[NodeDef]) -> Registry:
    """A registry holding exactly these node types (handy in tests). Each keeps the source it has: registering
    a definition under another source would relabel it in every registry that shares it."""
    registry = Registry()
    for d in definitions:
        registry.register(d, source=d.source)
    return registry

