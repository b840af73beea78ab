"""Plugin discovery. (Filled in by the plugins work; for now a stub that finds nothing.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nodegraph.registry import Registry


def load_plugins(registry: Registry) -> list[object]:
    return []


def print_plugins(as_json: bool = False) -> int:
    print("[]" if as_json else "no plugins installed")
    return 0
