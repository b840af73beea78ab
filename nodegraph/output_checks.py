"""Checks on what a node produced, so garbage stops at the node that made it.

- Images, masks, latents and conditioning with NaN or infinite values fail the node that produced them (NaN
  weights, or a prompt weight that overflows, would otherwise decode to black images and a run that "worked").
  A run may opt out (``RunSettings.allow_nonfinite``, ``nodegraph run --allow-nonfinite``) to inspect them.
- Text longer than the ``text_chars`` limit fails the node (a template can ask for gigabytes).

Tensors are recognised by what they can do (``is_floating_point``, ``isfinite``), so this module imports no
torch. Models inside values (a ControlNet attached to conditioning) are never scanned.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import nodegraph.limits as limits
from nodegraph.errors import NodeInputError
from nodegraph.node import NodeDef

CHECKED_TYPES = {"IMAGE", "MASK", "LATENT", "CONDITIONING"}
_MAX_DEPTH = 4


class NonFiniteOutput(NodeInputError):
    """A node produced NaN or infinite values."""


def _tensors(value: Any, depth: int = 0) -> list[Any]:
    """The floating-point tensors inside a value (dicts, sequences, dataclasses), not looking into models."""
    if depth > _MAX_DEPTH or value is None:
        return []
    if hasattr(value, "parameters") and callable(value.parameters):
        return []  # a module: its weights are not this node's output
    if hasattr(value, "is_floating_point") and hasattr(value, "isfinite"):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v, depth + 1)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v, depth + 1)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for f in dataclasses.fields(value) for t in _tensors(getattr(value, f.name), depth + 1)]
    return []


def check_outputs(definition: NodeDef, outputs: dict[str, Any], allow_nonfinite: bool = False) -> None:
    """Raise :class:`NodeInputError` naming the output if one holds non-finite numbers or too long a text."""
    text_limit = limits.get("text_chars")
    for spec in definition.outputs:
        value = outputs.get(spec.name)
        if isinstance(value, str) and len(value) > text_limit:
            raise NodeInputError(str(limits.LimitExceeded(f"output {spec.name!r} is a text of {len(value)} characters",
                                                          "text_chars", len(value))))
        if allow_nonfinite or not (spec.type.members & CHECKED_TYPES):
            continue
        for tensor in _tensors(value):
            finite = tensor.isfinite()
            if bool(finite.all()):
                continue
            bad = int((~finite).sum())
            nan = int(tensor.isnan().sum())
            kinds = " and ".join(k for k, n in (("NaN", nan), ("infinite", bad - nan)) if n)
            raise NonFiniteOutput(
                f"output {spec.name!r} ({spec.type.name}) holds {kinds} values ({bad} of {tensor.numel()}): the result "
                "would be garbage (black images). Usual causes: damaged model weights, a prompt weight or a scale "
                "far too large, fp16 overflow (try --precision fp32). Run with --allow-nonfinite to keep them anyway"
            )
