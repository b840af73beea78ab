"""FLUX LoRAs: the layouts they are shared in, converted by diffusers' own FLUX LoRA code, applied with the product's
peft patches (nodes.adapters), so a LoRA acts exactly as diffusers' ``load_lora_weights`` makes it act.

Layouts:

- diffusers / PEFT (``transformer.transformer_blocks.0.attn.to_q.lora_A.weight``, ``text_encoder.*``; alphas in the
  file's adapter metadata or ``.alpha`` keys): used as they are;
- kohya / sd-scripts (``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight``, ``lora_te1_*``, ``.alpha``) and
  the original layout with ComfyUI's names (``diffusion_model.double_blocks.0.img_attn.qkv.lora_down.weight``,
  ``text_encoders.clip_l.transformer.*``): diffusers' ``FluxLoraLoaderMixin.lora_state_dict`` converts them (fused
  q/k/v LoRAs split, alpha folded into the weights);
- the original layout with PEFT's names (``diffusion_model.*.lora_A.weight`` / ``lora_B``): renamed to the previous
  layout first, which it is apart from the names;
- XLabs' (``double_blocks.0.processor.qkv_lora1.down.weight``): converted by diffusers too.

diffusers' kohya converter cuts a single block's fused ``linear1`` at the released width (3072); a LoRA of that layer
made for another width is refused with the converter's message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ORIGINAL_PREFIXES = ("diffusion_model.", "text_encoders.clip_l.transformer.")


def _original_peft_names(state: dict[str, Any]) -> dict[str, Any]:
    """``diffusion_model.*.lora_A.weight`` -> ``.lora_down.weight`` (and B -> up), the names diffusers converts."""
    if not any(k.startswith(ORIGINAL_PREFIXES) and ".lora_A." in k for k in state):
        return state
    return {k.replace(".lora_A.", ".lora_down.").replace(".lora_B.", ".lora_up.") if k.startswith(ORIGINAL_PREFIXES)
            else k: v for k, v in state.items()}


def convert_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Any FLUX LoRA layout -> diffusers' (``transformer.*`` / ``text_encoder.*`` with lora_A / lora_B, alphas as
    ``.alpha`` keys where the layout keeps them)."""
    from diffusers.loaders.lora_pipeline import FluxLoraLoaderMixin

    if all(k.startswith(("transformer.", "text_encoder.")) for k in state):
        return state  # diffusers / PEFT already
    state = _original_peft_names(dict(state))
    try:
        converted, alphas = FluxLoraLoaderMixin.lora_state_dict(state, return_alphas=True)
    except (AssertionError, ValueError, KeyError, RuntimeError) as exc:
        message = str(exc).strip() or "its layer sizes do not fit FLUX.1 (3072 wide)"
        raise ValueError(f"diffusers cannot convert this FLUX LoRA: {message}") from None
    return {**converted, **(alphas or {})}


def read_flux_lora(path: Path) -> Any:
    """The file parsed into a LoraFile (components "transformer" and "text_encoder"), cached like SD LoRAs."""
    from nodes.adapters.lora import read_lora

    return read_lora(path, convert_state_dict)


def apply_flux_lora(ctx: Any, model: Any, clip: Any, lora_name: str, strength_model: float,
                    strength_clip: float) -> dict[str, Any]:
    """Load LoRA for a FLUX MODEL (and its CLIP-L): the same handles plus one patch each, inputs untouched."""
    from nodegraph.errors import NodeInputError
    from nodes.adapters.lora import LoraFormatError, LoraPart, LoraPatch, match_lora
    from nodes.mmdit.checks import text_encoders

    if clip is not None:
        clip = text_encoders(clip, "flux")
    path = ctx.folders.resolve("loras", lora_name)
    try:
        lora = read_flux_lora(path)
    except (LoraFormatError, ValueError) as exc:
        raise NodeInputError(f"{path.name}: {exc}", "lora_name") from None
    except (OSError, RuntimeError) as exc:
        raise NodeInputError(f"cannot read {path.name} as a LoRA file: {exc}", "lora_name") from None
    transformer = match_lora(lora, "transformer", model.unet)
    encoder = clip.text_encoders[0] if clip is not None else None
    text = match_lora(lora, "text_encoder", encoder) if encoder is not None else None
    mismatched = transformer.mismatched + (text.mismatched if text else [])
    if mismatched:
        raise NodeInputError(f"this LoRA does not fit this FLUX model: {len(mismatched)} of its layers have other "
                             f"shapes (e.g. {mismatched[0]}); is it a LoRA for another model family?", "lora_name")
    matched = len(transformer.matched) + (len(text.matched) if text else 0)
    unmatched = transformer.unmatched + (text.unmatched if text else [])
    if not matched:
        example = ", ".join(unmatched[:3]) or ", ".join(lora.components)
        raise NodeInputError(f"none of this LoRA's layers exist in this FLUX model (e.g. {example}): is it a LoRA for "
                             "another model family?", "lora_name")
    if unmatched:
        ctx.warn(f"{len(unmatched)} LoRA layer(s) match no module of this model and are not applied, e.g. "
                 + ", ".join(unmatched[:3]))
    if lora.unknown:
        ctx.warn(f"{len(lora.unknown)} key(s) of the file are no LoRA weights this loader understands, e.g. "
                 + ", ".join(lora.unknown[:3]))
    if clip is None and lora.components.get("text_encoder"):
        ctx.log("the LoRA's text encoder layers are not applied (model only)")
    ctx.log(f"FLUX LoRA {path.name}: {matched} layer(s) matched")
    out = {"model": model, "clip": clip}
    if transformer.matched and strength_model != 0.0:
        part = LoraPart(model.unet, transformer.matched, strength_model, lora.use_rslora)
        out["model"] = model.replace(patches=(*model.patches, LoraPatch(path.name, (part,))))
    if text is not None and text.matched and strength_clip != 0.0:
        part = LoraPart(encoder, text.matched, strength_clip, lora.use_rslora)
        out["clip"] = clip.replace(patches=(*clip.patches, LoraPatch(path.name, (part,))))
    return out
