"""Which image of which batch a saved file is, so that ``nodegraph run image.png`` reproduces exactly it.

Every image of a batch is drawn from one noise tensor made from the sampler's seed (as diffusers and ComfyUI
draw it), so image k is identified by the seed *and* its batch index: running image k alone with batch size 1
would give other noise. Save Image therefore writes into each file a ``nodegraph.image`` record::

    {"node": "save", "batch_index": 2, "batch_size": 4, "seeds": {"sampler": {"seed": 7}}}

and adds ``Batch size`` / ``Batch pos`` to the A1111 parameters text (A1111's own keys). To reproduce the
file, the CLI runs the embedded workflow as it ran and asks that Save Image node, through
``RunSettings.only_batch_index``, to write only image k (:func:`chosen_indices`).
"""

from __future__ import annotations

import json
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.png_meta import IMAGE_KEY

A1111_KEY = "parameters"


def chosen_indices(ctx: NodeContext, count: int) -> list[int]:
    """The batch indices this output node writes: all, or the one a reproduction asks for."""
    only = ctx.settings.only_batch_index.get(ctx.node_id)
    if only is None:
        return list(range(count))
    if not 0 <= only < count:
        raise NodeInputError(
            f"the image to reproduce is number {only + 1} of its batch, but this run made only {count} image(s); "
            "was the batch size changed?", "images")
    return [only]


def upstream_seeds(ctx: NodeContext) -> dict[str, dict[str, Any]]:
    """``{node id: {seed parameter: value}}`` of the nodes upstream of this one that have seed parameters."""
    from nodegraph.installed import default_registry
    from nodes.image.metadata import WorkflowView

    doc = ctx.workflow
    if not isinstance(doc, dict):
        return {}
    view = WorkflowView(doc, default_registry())
    seeds: dict[str, dict[str, Any]] = {}
    for node_id in view.upstream(ctx.node_id):
        definition = view.definition(node_id)
        if definition is None:
            continue
        names = [p.name for p in definition.params if p.kind == "seed"]
        if names:
            params = view.params(node_id)
            seeds[node_id] = {name: params.get(name) for name in names}
    return seeds


def record_chunks(ctx: NodeContext, text: dict[str, str], index: int, count: int,
                  seeds: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The text chunks of image ``index`` of ``count``: the shared ones plus its own record."""
    chunks = dict(text)
    record = {"node": ctx.node_id, "batch_index": index, "batch_size": count, "seeds": seeds}
    chunks[IMAGE_KEY] = json.dumps(record, default=repr)
    if count > 1 and A1111_KEY in chunks:
        chunks[A1111_KEY] += f", Batch size: {count}, Batch pos: {index}"
    return chunks
