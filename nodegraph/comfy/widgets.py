"""Naming a UI-format node's widget values.

A UI-format file stores a node's widget values as a positional list in the order the node declares its
widgets, with two complications:

- a seed widget with "control after generate" is followed by an extra slot ("fixed", "randomize", ...);
- a widget turned into an input socket (a "converted widget", fed by a link) keeps its slot in files from
  most frontend versions and loses it in others.

:func:`name_widget_values` tries the known widget orders, with and without the linked widgets, and takes the
first that accounts for every value exactly; failing that it assigns what it can and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nodegraph.comfy.mapping import CONTROL_VALUES, widget_name


def is_control_slot(value: Any) -> bool:
    """A seed's "control after generate" slot: one of its words, or a bare boolean in old files."""
    return isinstance(value, bool) or (isinstance(value, str) and value in CONTROL_VALUES)


def _walk(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any] | None:
    """Assign ``values`` to ``names`` in order; None unless every value is used exactly once."""
    out: dict[str, Any] = {}
    i = 0
    for entry in names:
        if i >= len(values):
            return None
        out[widget_name(entry)] = values[i]
        i += 1
        if entry.endswith("*") and i < len(values) and is_control_slot(values[i]):
            i += 1  # the control-after-generate slot: UI state, not a value the node reads
    return out if i == len(values) else None


def _plausible(named: dict[str, Any], linked: set[str]) -> bool:
    """A control slot's word where a number belongs means the alignment is off."""
    return not any(isinstance(v, str) and v in CONTROL_VALUES and k not in linked for k, v in named.items())


def name_widget_values(
    widget_lists: Sequence[Sequence[str]], values: Any, linked: set[str], converted: set[str] | None = None
) -> tuple[dict[str, Any], str | None]:
    """Name ``values`` (a list, or a dict already by name) with the first widget order that fits.

    ``linked`` are the widgets fed by a link, ``converted`` every widget that has an input socket in the
    file (linked or not). Returns ``(values by widget name, warning or None)``. Values of linked widgets are
    dropped: the link decides them.
    """
    dropped_sets = [set(), set(linked)] + ([set(converted)] if converted and set(converted) != set(linked) else [])
    if isinstance(values, dict):
        named = {k: v for k, v in values.items() if isinstance(k, str) and not k.startswith("control_")}
        return {k: v for k, v in named.items() if k not in linked}, None
    if values is None:
        return {}, None
    if not isinstance(values, list):
        return {}, f"widget values must be a list, found {type(values).__name__}: ignored"
    for names in widget_lists:
        for dropped in dropped_sets:
            candidate = [n for n in names if widget_name(n) not in dropped]
            named = _walk(candidate, values)
            if named is not None and _plausible(named, linked):
                return {k: v for k, v in named.items() if k not in linked}, None
    # No order fits exactly: assign in order as far as the values go, and say so.
    names = list(widget_lists[0]) if widget_lists else []
    named = {}
    i = 0
    for entry in names:
        if i >= len(values):
            break
        named[widget_name(entry)] = values[i]
        i += 1
        if entry.endswith("*") and i < len(values) and is_control_slot(values[i]):
            i += 1
    expected = len([n for n in names if widget_name(n) not in linked])
    warning = (
        f"{len(values)} widget value(s) for {expected} widget(s) ({', '.join(widget_name(n) for n in names) or 'none'}): "
        "assigned in order; check the values"
    )
    return {k: v for k, v in named.items() if k not in linked}, warning
