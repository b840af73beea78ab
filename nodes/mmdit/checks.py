"""Clear refusals when a FLUX / SD3 node gets the wrong handle (a model family it cannot drive)."""

from __future__ import annotations

from typing import Any

from nodegraph.errors import NodeInputError


def family_label(family: str | None) -> str:
    from nodes.dit.handles import FAMILY_LABELS
    from nodes.mmdit.handles import FLOW_LABELS
    from nodes.sd.families import family_label as sd_label

    if family is None:
        return "unknown"
    return FLOW_LABELS.get(family) or FAMILY_LABELS.get(family) or sd_label(family)


def text_encoders(clip: Any, family: str, field: str = "clip") -> Any:
    """``clip`` if it holds the text encoders of ``family``, else a NodeInputError saying which node fits it."""
    from nodes.mmdit.handles import FLOW_LABELS, TEXT_NODES

    if clip is None:
        raise NodeInputError(f"no text encoders: connect the clip output of a {FLOW_LABELS[family]} loader", field)
    found = getattr(clip, "family", None)
    if found == family and hasattr(clip, "text_encoders"):
        return clip
    if found in TEXT_NODES:
        hint = f"use {TEXT_NODES[found]}"
    elif hasattr(clip, "encoders"):
        hint = "use CLIP Text Encode"
    else:
        hint = "use the text encode node of that family"
    raise NodeInputError(f"expected the text encoders of {FLOW_LABELS[family]}, found those of "
                         f"{family_label(found)}: {hint}", field)


def flow_model(model: Any, families: tuple[str, ...], field: str = "model") -> Any:
    from nodes.mmdit.handles import FLOW_LABELS, FlowModelHandle

    if isinstance(model, FlowModelHandle) and model.family in families:
        return model
    wanted = " or ".join(FLOW_LABELS[f] for f in families)
    raise NodeInputError(f"expected a {wanted} model, found {family_label(getattr(model, 'family', None))} "
                         f"({type(model).__name__})", field)
