"""LoRA loader nodes: MODEL (+ CLIP) in, the same handles plus one more patch out.

The inputs are never changed: the outputs are ``handle.replace(patches=handle.patches + (patch,))``, and a
patch touches the shared modules only while the sampler or the text encoder runs (DESIGN contract 3). The
file is parsed once per file version (see :func:`nodes.adapters.lora.read_lora`), so changing a strength
re-runs only the cheap matching step.
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, ModelFile
from nodegraph.types import CLIP, MODEL

LORA_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
EXAMPLES = 3


def _lora_file(ctx: NodeContext, lora_name: str) -> Any:
    from nodes.adapters.lora import LoraFormatError, read_lora

    path = ctx.folders.resolve("loras", lora_name)
    try:
        return read_lora(path)
    except LoraFormatError as exc:
        raise NodeInputError(f"{path.name}: {exc}", "lora_name") from None
    except (OSError, RuntimeError, ValueError) as exc:  # truncated or not a tensor file at all
        raise NodeInputError(f"cannot read {path.name} as a LoRA file: {exc}", "lora_name") from None


def _report(ctx: NodeContext, lora: Any, plan: Any) -> None:
    unmatched = plan.unmatched
    if unmatched:
        ctx.warn(
            f"{len(unmatched)} LoRA layer(s) match no module of this model and are not applied, e.g. "
            + ", ".join(unmatched[:EXAMPLES])
        )
    if lora.unknown:
        ctx.warn(
            f"{len(lora.unknown)} key(s) of the file are no LoRA weights this loader understands (LoHa/LoKr/DoRA "
            "parts, or another layout) and are not applied, e.g. " + ", ".join(lora.unknown[:EXAMPLES])
        )
    if plan.ignored:
        ctx.log(f"{len(plan.ignored)} LoRA layer(s) for parts this loader does not patch, e.g. {plan.ignored[0]}")
    ctx.log(f"{lora.layout} LoRA: {plan.matched_count} layer(s) matched")


def _check_model(model: Any) -> None:
    if model is None or not hasattr(model, "unet"):
        raise NodeInputError(f"expected a MODEL from a checkpoint loader, found {type(model).__name__}", "model")


def _check_clip(clip: Any) -> None:
    if clip is None or not hasattr(clip, "encoders"):
        raise NodeInputError(f"expected a CLIP from a checkpoint loader, found {type(clip).__name__}", "clip")


def _plan(ctx: NodeContext, lora: Any, model: Any, clip: Any | None) -> Any:
    from nodes.adapters.lora import LoraMismatch, plan_lora

    try:
        return plan_lora(
            lora, model.family, model.unet,
            tuple(clip.encoders) if clip is not None else (), clip.family if clip is not None else None,
        )
    except LoraMismatch as exc:
        raise NodeInputError(str(exc), exc.field) from None


STRENGTH_HELP = "{what}: 1 = as trained, 0 = off (exactly the base), negative values invert it."


@node(
    "core.LoraLoader", name="Load LoRA", category="loaders",
    description=(
        "Adds a LoRA (kohya/A1111, diffusers/PEFT or, for FLUX, the original layout; SD1.5, SDXL or FLUX.1) to the "
        "model and its text encoders, "
        "with separate strengths. Chain several to stack them. The incoming model is left unchanged."
    ),
    inputs=[
        Input("model", MODEL, help="The model to patch (the output shares its weights)."),
        Input("clip", CLIP, help="The text encoder(s) to patch."),
    ],
    params=[
        ModelFile("lora_name", folder="loras", extensions=LORA_EXTENSIONS, help="A LoRA file from the loras folders."),
        Float("strength_model", 1.0, min=-10.0, max=10.0, step=0.01, help=STRENGTH_HELP.format(what="UNet strength")),
        Float("strength_clip", 1.0, min=-10.0, max=10.0, step=0.01,
              help=STRENGTH_HELP.format(what="Text encoder strength")),
    ],
    outputs=[Output("model", MODEL), Output("clip", CLIP)],
)
def lora_loader(
    ctx: NodeContext, model: Any, clip: Any, lora_name: str, strength_model: float, strength_clip: float
) -> dict[str, Any]:
    from nodes.adapters.lora import make_patches

    if getattr(model, "family", None) == "flux":  # FLUX's layouts and handles: nodes.flux.lora
        from nodes.flux.lora import apply_flux_lora

        return apply_flux_lora(ctx, model, clip, lora_name, strength_model, strength_clip)
    _check_model(model)
    _check_clip(clip)
    lora = _lora_file(ctx, lora_name)
    plan = _plan(ctx, lora, model, clip)
    _report(ctx, lora, plan)
    model_patch, clip_patch = make_patches(lora, plan, strength_model, strength_clip)
    return {
        "model": model.replace(patches=(*model.patches, model_patch)) if model_patch else model,
        "clip": clip.replace(patches=(*clip.patches, clip_patch)) if clip_patch else clip,
    }


@node(
    "core.LoraLoaderModelOnly", name="Load LoRA (model only)", category="loaders",
    description="Adds a LoRA to the model (UNet) alone; text encoder weights in the file are not used.",
    inputs=[Input("model", MODEL, help="The model to patch (the output shares its weights).")],
    params=[
        ModelFile("lora_name", folder="loras", extensions=LORA_EXTENSIONS, help="A LoRA file from the loras folders."),
        Float("strength_model", 1.0, min=-10.0, max=10.0, step=0.01, help=STRENGTH_HELP.format(what="UNet strength")),
    ],
    outputs=[Output("model", MODEL)],
)
def lora_loader_model_only(ctx: NodeContext, model: Any, lora_name: str, strength_model: float) -> Any:
    from nodes.adapters.lora import make_patches

    if getattr(model, "family", None) == "flux":
        from nodes.flux.lora import apply_flux_lora

        return apply_flux_lora(ctx, model, None, lora_name, strength_model, 0.0)["model"]
    _check_model(model)
    lora = _lora_file(ctx, lora_name)
    plan = _plan(ctx, lora, model, None)
    _report(ctx, lora, plan)
    model_patch, _ = make_patches(lora, plan, strength_model, 0.0)
    return model.replace(patches=(*model.patches, model_patch)) if model_patch else model
