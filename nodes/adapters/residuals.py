"""What the sampler asks of the residual sources (ControlNet, T2I-Adapter) attached to its conditioning
before it samples: one call, :func:`prepare_residual_sources`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nodegraph.errors import NodeInputError


def residual_sources(entries: Iterable[Any]) -> list[Any]:
    """The distinct sources attached to ``entries``, in order of first appearance."""
    seen: dict[int, Any] = {}
    for entry in entries:
        for source in entry.extras.get("residuals", ()):
            seen.setdefault(id(source), source)
    return list(seen.values())


def prepare_residual_sources(ctx: Any, model: Any, entries: Iterable[Any], latent_shape: tuple[int, ...]) -> None:
    """Let each source check the model, load its module and note what it will resize. A source for another
    model family is a bad input of the sampler's conditioning."""
    from nodes.adapters.controlnet import ControlNetMismatch

    for source in residual_sources(entries):
        prepare = getattr(source, "prepare", None)
        if prepare is None:
            continue
        try:
            prepare(ctx, model, latent_shape)
        except ControlNetMismatch as exc:
            raise NodeInputError(str(exc), "positive") from None
