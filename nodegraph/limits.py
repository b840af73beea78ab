"""Bounds on what untrusted input (a workflow, an image, a model file) may make the product allocate or do.

A small file must not become gigabytes: a PNG whose text chunk inflates without end, a 17 KB PNG that
decodes to 12000x12000 pixels, a pickle that declares huge tensors over a tiny storage, a template that pads a
value to three billion characters, JSON nested thousands deep. Each bound has a name, is stated in the error
that reports it, and can be raised where a user could need more:

- ``nodegraph run/validate --limit NAME=VALUE`` (repeatable), or
- ``NODEGRAPH_LIMITS="NAME=VALUE,NAME=VALUE"`` in the environment (read once, on first use).

``nodegraph limits`` (and :func:`table`) lists them with their values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = "NODEGRAPH_LIMITS"


@dataclass(frozen=True)
class Limit:
    name: str
    default: int
    unit: str
    help: str


LIMITS: dict[str, Limit] = {
    limit.name: limit
    for limit in (
        Limit("image_pixels", 2**26, "pixels", "largest image decoded or made (width x height; 8192x8192 by default)"),
        Limit("batch_pixels", 2**28, "pixels", "most pixels in one batch a node makes (images x width x height)"),
        Limit("png_text_bytes", 64 << 20, "bytes", "largest decompressed text chunk of a PNG (an embedded workflow)"),
        Limit("workflow_bytes", 64 << 20, "bytes", "largest workflow file or embedded workflow"),
        Limit("json_depth", 200, "levels", "deepest nesting of arrays and objects in a workflow or config"),
        Limit("json_number_digits", 100, "digits", "longest number in a workflow or config"),
        Limit("text_chars", 16 << 20, "characters", "longest text a node may produce (Format Text, Join Text)"),
        Limit("config_bytes", 1 << 20, "bytes", "largest model config (in a checkpoint's metadata or a folder)"),
        Limit("pickle_depth", 64, "levels", "deepest nesting of containers in a pickled (.ckpt/.pt) file"),
        Limit("pickle_items", 1_000_000, "items", "most containers, keys and values in a pickled file"),
        Limit("pickle_expansion", 4, "times", "how much larger than the file its tensors may be (views of one "
                                              "storage count at their full size)"),
    )
}

_values: dict[str, int] | None = None


class LimitError(ValueError):
    """A limit's name or value is not valid (an argument or environment mistake)."""


class LimitExceeded(ValueError):
    """Input goes past a limit. The message says what was found, the limit, and how to raise it."""

    def __init__(self, what: str, name: str, found: int | str) -> None:
        limit = LIMITS[name]
        super().__init__(
            f"{what}: {found} {limit.unit}, more than the limit {name} = {get(name)} {limit.unit} ({limit.help}). "
            f"If the input is trusted, raise it with --limit {name}=N (or {ENV}=\"{name}=N\")"
        )
        self.name = name
        self.found = found


def _parse(text: str, where: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in LIMITS:
            known = ", ".join(LIMITS)
            raise LimitError(f"{where}: {item!r} is not NAME=VALUE with a known NAME ({known})")
        try:
            number = int(value.strip().replace("_", ""))
        except ValueError:
            raise LimitError(f"{where}: the value of {name} must be a whole number, found {value.strip()!r}") from None
        if number < 1:
            raise LimitError(f"{where}: the value of {name} must be at least 1, found {number}")
        values[name] = number
    return values


def _current() -> dict[str, int]:
    global _values
    if _values is None:
        values = {name: limit.default for name, limit in LIMITS.items()}
        values.update(_parse(os.environ.get(ENV, ""), f"${ENV}"))
        _values = values
    return _values


def get(name: str) -> int:
    return _current()[name]


def set_limits(assignments: list[str] | str) -> None:
    """Apply ``NAME=VALUE`` assignments (from ``--limit``) to this process; :class:`LimitError` if one is wrong."""
    items = assignments if isinstance(assignments, list) else [assignments]
    _current().update(_parse(",".join(items), "--limit"))


def reset() -> None:
    """Back to the defaults and the environment (tests)."""
    global _values
    _values = None


def check(what: str, name: str, found: int) -> None:
    """Raise :class:`LimitExceeded` if ``found`` is above the limit ``name``."""
    if found > get(name):
        raise LimitExceeded(what, name, found)


def table() -> list[tuple[str, int, str, str]]:
    """(name, value, unit, help) of every limit, for ``nodegraph limits``."""
    return [(name, get(name), limit.unit, limit.help) for name, limit in LIMITS.items()]


def print_limits() -> int:
    """``nodegraph limits``: every limit, its value here and what it bounds."""
    width = max(len(name) for name in LIMITS)
    for name, value, unit, help_text in table():
        print(f"{name:<{width}}  {value:>12,} {unit:<10}  {help_text}")
    print(f"\nRaise one for a run with --limit NAME=VALUE, or for every run with {ENV}=\"NAME=VALUE,...\".")
    return 0
