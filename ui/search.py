"""Ranked node-type search (Tab search, the palette's Enter, link-drop search). Pure Python, no Qt.

A query is matched against the display name first, as a user reads it: exact name, then names that start
with the query, then names whose words start with the query's words, then names containing them; only
then the type id, and last the category and description. Within a tier, the product's own ``core.`` types
come before other namespaces (plugins, and compatibility sets such as ``comfy.`` that reproduce another
tool's behaviour), then shorter names ("KSampler" before "KSampler (Advanced)").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nodegraph.node import NodeDef
from nodegraph.types import compatible, type_named

_WORD = re.compile(r"[a-z0-9]+")

EXACT, PREFIX, WORD_PREFIX, IN_NAME, IN_ID, ELSEWHERE = range(6)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _compact(text: str) -> str:
    return "".join(_words(text))


def tier(definition: NodeDef, query: str) -> int | None:
    """How well ``definition`` matches ``query`` (lower is better), or None if it does not match."""
    words = _words(query)
    if not words:
        return ELSEWHERE
    name = definition.name.lower()
    name_words = _words(name)
    compact_query = "".join(words)
    compact_name = "".join(name_words)
    if compact_name == compact_query:
        return EXACT
    if " ".join(name_words).startswith(" ".join(words)) or compact_name.startswith(compact_query):
        return PREFIX
    if all(any(w.startswith(q) for w in name_words) for q in words):
        return WORD_PREFIX
    if all(any(q in w for w in name_words) for q in words):
        return IN_NAME
    type_id = definition.id.lower()
    if compact_query in _compact(type_id) or all(q in type_id for q in words):
        return IN_ID
    haystack = f"{name} {type_id} {definition.category} {definition.description}".lower()
    if all(q in haystack for q in words):
        return ELSEWHERE
    return None


def rank(definitions: Iterable[NodeDef], query: str) -> list[NodeDef]:
    """The definitions that match ``query``, best first (an empty query keeps the given order)."""
    if not _words(query):
        return list(definitions)
    scored = []
    for index, definition in enumerate(definitions):
        found = tier(definition, query)
        if found is not None:
            foreign = definition.namespace != "core"
            scored.append((found, foreign, len(definition.name), definition.name.lower(), index, definition))
    scored.sort(key=lambda item: item[:5])
    return [item[-1] for item in scored]


def fitting_port(definition: NodeDef, type_name: str, from_output: bool) -> str | None:
    """For a link dragged from an output of type ``type_name`` (``from_output``): the input of this node type
    that would take it (declared inputs first, then parameters, an exact type before ``*``); for a link dragged
    from an input: the output that would feed it. None if there is none."""
    dragged = type_named(type_name)
    if from_output:
        fields = [(i.name, i.type) for i in definition.inputs] + [(p.name, p.socket_type) for p in definition.params]
        fits = [(name, t) for name, t in fields if compatible(dragged, t)]
    else:
        fits = [(o.name, o.type) for o in definition.outputs if compatible(o.type, dragged)]
    exact = [name for name, t in fits if t.members == dragged.members]
    if exact:
        return exact[0]
    typed = [name for name, t in fits if not t.is_any]
    if typed:
        return typed[0]
    return fits[0][0] if fits else None
