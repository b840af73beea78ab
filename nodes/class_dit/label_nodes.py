"""Class-label conditioning for class-conditional DiT models: an id, ImageNet class names, or the null class."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Int, Text
from nodegraph.types import CONDITIONING, INT, MODEL


def _entry(label: Any) -> tuple:
    import torch

    from nodes.sd.conditioning import ConditioningEntry

    # embeds: a placeholder the sampler can batch (the model reads the label from extras)
    return (ConditioningEntry(torch.zeros(1, 1, dtype=torch.long), None, {"class_label": label}),)


@node(
    "core.ClassLabel", name="Class Label (DiT)", category="conditioning",
    description="Conditions a class-conditional DiT on one class by its number (ImageNet: 0-999, e.g. 207 golden "
                "retriever). Wire Null Class into the negative input for classifier-free guidance.",
    params=[Int("class_id", 207, min=0, max=1_000_000, help="The class number (checked against the model when sampling).")],
    outputs=[Output("conditioning", CONDITIONING)],
)
def class_label(ctx: NodeContext, class_id: int) -> tuple:
    return _entry(int(class_id))


@node(
    "core.NullClassLabel", name="Null Class (DiT)", category="conditioning",
    description="The null class of a class-conditional DiT (the label it was trained to see when none is given): the "
                "unconditional side of classifier-free guidance, for the sampler's negative input.",
    outputs=[Output("conditioning", CONDITIONING)],
)
def null_class_label(ctx: NodeContext) -> tuple:
    return _entry(None)


@node(
    "core.ImageNetClassLabel", name="ImageNet Class (DiT)", category="conditioning",
    description="Turns class names into the model's class ids, with the names its folder ships (DiTPipeline's "
                "id2label: 'golden retriever', 'white shark', ...). Several names, separated by commas, give one class "
                "per image: use a latent batch of that size.",
    inputs=[Input("model", MODEL, help="A class-conditional DiT (its folder lists the class names).")],
    params=[Text("class_names", "golden retriever", help="Class names (or numbers), separated by commas.")],
    outputs=[Output("conditioning", CONDITIONING), Output("class_id", INT, help="The first class's id.")],
)
def imagenet_class_label(ctx: NodeContext, model: Any, class_names: str) -> dict:
    from nodes.class_dit.labels import UnknownClass, lookup

    if getattr(model, "family", None) != "dit_class":
        raise NodeInputError(f"expected a class-conditional DiT model, found {getattr(model, 'family', type(model).__name__)}",
                             "model")
    if not model.id2label:
        raise NodeInputError("this model's folder lists no class names (no id2label in model_index.json): use Class "
                             "Label with the class number", "model")
    try:
        ids = lookup(class_names, model.id2label)
    except UnknownClass as exc:
        raise NodeInputError(str(exc), "class_names") from None
    ctx.log("classes: " + ", ".join(f"{i} ({model.id2label.get(i, '?').split(',')[0]})" for i in ids))
    return {"conditioning": _entry(ids[0] if len(ids) == 1 else tuple(ids)), "class_id": ids[0]}
