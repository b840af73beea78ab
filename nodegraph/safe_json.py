"""JSON from untrusted sources (workflow files, embedded workflows, model configs), parsed within bounds.

Python's ``json`` turns hostile input into tracebacks or silent damage: nesting 5,000 deep raises
RecursionError, an integer of more than 4,300 digits raises a ValueError that is not a JSONDecodeError, and a key
given twice silently keeps the last value. Here every such case is a :class:`JsonInputError` (a ``ValueError``)
that says what was found and which limit applies (:mod:`nodegraph.limits`), and duplicate keys are recorded
so the caller can report them (a workflow names the duplicate node id).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import nodegraph.limits as limits

# a string (escapes included) or one bracket: strings are skipped whole, so brackets inside them do not count
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JsonInputError(ValueError):
    """The text is not JSON within the limits; the message says what and where."""


@dataclass
class JsonDocument:
    value: Any
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (id of the object, key given twice)

    def duplicate_keys(self, obj: Any = None) -> list[str]:
        """Keys given more than once: in ``obj`` (an object of the document) or anywhere."""
        return [key for owner, key in self.duplicates if obj is None or owner == id(obj)]


def max_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects, counted without recursion."""
    depth = deepest = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def parse_json(data: bytes | str, where: str, size_limit: str = "workflow_bytes") -> JsonDocument:
    """Parse ``data`` (UTF-8 bytes or text) within the size, depth and number limits; ``where`` names the
    source in messages. Duplicate keys do not fail here: they are listed in the result."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        limits.check(f"{where} is too large", size_limit, len(raw))
        limits.check(f"{where} nests arrays and objects too deeply", "json_depth", max_depth(raw))
    except limits.LimitExceeded as exc:
        raise JsonInputError(str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"{where} is not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r})") from None
    document = JsonDocument(None)
    digits = limits.get("json_number_digits")

    def number(kind: type) -> Any:
        def parse(token: str) -> Any:
            if len(token.lstrip("-")) > digits:
                raise limits.LimitExceeded(f"{where} holds a number of {len(token)} characters ({token[:12]}...)",
                                           "json_number_digits", len(token.lstrip("-")))
            return kind(token)

        return parse

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in items:
            if key in obj:
                document.duplicates.append((id(obj), key))
            obj[key] = value
        return obj

    try:
        document.value = json.loads(text, object_pairs_hook=pairs, parse_int=number(int), parse_float=number(float))
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except limits.LimitExceeded as exc:
        raise JsonInputError(str(exc)) from None
    except RecursionError:  # below the depth limit but deeper than this Python's stack allows
        raise JsonInputError(f"{where} nests arrays and objects too deeply for this Python to read") from None
    return document


def loads_limited(data: bytes | str, where: str, size_limit: str = "config_bytes") -> Any:
    """Parse ``data`` like :func:`parse_json`, refusing duplicate keys (for configs, where one is ambiguous)."""
    document = parse_json(data, where, size_limit)
    if document.duplicates:
        keys = ", ".join(sorted({repr(k) for _, k in document.duplicates}))
        raise JsonInputError(f"{where} gives the key(s) {keys} more than once in one object: which one is meant?")
    return document.value
