"""FLUX and SD3 single files: a whole checkpoint (the transformer under ``model.diffusion_model.``, the VAE under
``first_stage_model.`` or ``vae.``, text encoders under ``text_encoders.{clip_l,clip_g,t5xxl}.transformer.``, any of
which a file may lack) or a transformer on its own (either layout, prefixed or not).

The family comes from the key names (diffusers' own detection keys), the architecture from the tensor shapes, the
scheduler and VAE scaling from configs shipped with the product for the released models: nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.mmdit.encoder_files import PrefixView, build_clip, build_t5, build_vae, shipped_config
from nodes.sd.tensor_sources import CheckpointError, open_source

PREFIXES = ("model.diffusion_model.", "")
ENCODER_PREFIX = "text_encoders.{}.transformer."
VAE_PREFIXES = ("first_stage_model.", "vae.")


def detect_transformer(keys: Any) -> tuple[str, str, str] | None:
    """(family, layout, prefix) of the transformer in a file's keys, or None."""
    from nodes.flux import transformer_file as flux
    from nodes.sd3 import transformer_file as sd3

    for prefix in PREFIXES:
        for family, module in (("flux", flux), ("sd3", sd3)):
            kind = module.layout(keys, prefix)
            if kind is not None:
                return family, kind, prefix
    return None


def scheduler_config(family: str, transformer_config: dict[str, Any]) -> dict[str, Any]:
    if family == "flux":
        return shipped_config("flux_dev_scheduler.json" if transformer_config["guidance_embeds"] else
                              "flux_schnell_scheduler.json")
    return shipped_config("sd3_scheduler.json")


def build_transformer(source: Any, family: str, kind: str, prefix: str, name: str,
                      on_tensor: Callable[[], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """The transformer (built on the meta device, then given the file's tensors) and its config."""
    from accelerate import init_empty_weights

    from nodes.sd.single_file import _assign

    view = PrefixView(source, prefix)
    shapes = view.shapes
    try:
        if family == "flux":
            from diffusers import FluxTransformer2DModel as cls

            from nodes.flux.transformer_file import infer_config, original_to_diffusers

            config = infer_config(shapes, kind)
            state = original_to_diffusers(view.__getitem__, shapes, on_tensor) if kind == "original" else dict(view)
        else:
            from diffusers import SD3Transformer2DModel as cls

            from nodes.sd3.transformer_file import infer_config, original_to_diffusers

            config = infer_config(shapes, kind)
            state = original_to_diffusers({k: view[k] for k in shapes}) if kind == "original" else dict(view)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{name}: an unexpected {family.upper()} transformer layout ({exc})") from None
    with init_empty_weights():
        module = cls.from_config(config)
    return _assign(module, state, f"{family.upper()} transformer", name), config


@dataclass
class FlowParts:
    model: Any
    clip: Any = None
    vae: Any = None
    notes: list[str] = field(default_factory=list)


def _encoder_view(source: Any, key: str) -> PrefixView | None:
    view = PrefixView(source, ENCODER_PREFIX.format(key))
    return view if len(view) else None


def load_flow_checkpoint(path: Path, dtype: Any = None, t5_tokenizer_dirs: tuple[Path, ...] = (),
                         on_tensor: Callable[[], None] | None = None, skip_t5: bool = False) -> FlowParts:
    """The parts of a FLUX / SD3 single file. Missing text encoders or VAE are noted, not fatal; ``skip_t5`` leaves
    SD3's T5 out."""
    from nodes.mmdit.assemble import clip_handle, model_handle, vae_handle
    from nodes.mmdit.encoder_files import T5_TOKENIZER_HELP, find_t5_tokenizer
    from nodes.sd.families import load_tokenizer

    source = open_source(path, dtype)
    try:
        found = detect_transformer(source.shapes)
        if found is None:
            raise CheckpointError(f"{path.name} holds no FLUX or SD3 transformer (an SD1.5/SDXL checkpoint: use Load "
                                  "Checkpoint)")
        family, kind, prefix = found
        transformer, config = build_transformer(source, family, kind, prefix, path.name, on_tensor)
        parts = FlowParts(model_handle(family, transformer, scheduler_config(family, config)))
        vae_prefix = next((p for p in VAE_PREFIXES if any(k.startswith(p) for k in source.shapes)), None)
        if vae_prefix is not None:
            parts.vae = vae_handle(family, build_vae(PrefixView(source, vae_prefix), family, path.name), own_config=False)
        else:
            parts.notes.append(f"{path.name} has no VAE: connect Load VAE (the {family.upper()} VAE)")
        views = {key: _encoder_view(source, key) for key in ("clip_l", "clip_g", "t5xxl")}
        needed = ("clip_l", "t5xxl") if family == "flux" else ("clip_l", "clip_g")
        if all(views[k] is not None for k in needed):
            encoders: list[Any] = [build_clip(views["clip_l"], "clip_l", family == "sd3", path.name)]
            tokenizers: list[Any] = [load_tokenizer("clip_l")]
            if family == "sd3":
                encoders.append(build_clip(views["clip_g"], "clip_g", True, path.name))
                tokenizers.append(load_tokenizer("clip_g"))
            t5 = t5_tokenizer = None
            if views["t5xxl"] is not None and not (skip_t5 and family == "sd3"):
                t5_tokenizer = find_t5_tokenizer(list(t5_tokenizer_dirs))
                if t5_tokenizer is None and family == "flux":
                    raise CheckpointError(f"{path.name}: {T5_TOKENIZER_HELP}")
                if t5_tokenizer is None:
                    parts.notes.append(f"{path.name} has T5 weights but no T5 tokenizer was found, so SD3 runs without "
                                       f"T5. {T5_TOKENIZER_HELP}")
                else:
                    t5 = build_t5(views["t5xxl"], path.name)
            encoders.append(t5)
            tokenizers.append(t5_tokenizer if t5 is not None else None)
            parts.clip = clip_handle(family, tuple(tokenizers), tuple(encoders), int(config["joint_attention_dim"]))
        else:
            missing = ", ".join(k for k in needed if views[k] is None)
            parts.notes.append(f"{path.name} has no {missing} text encoder weights: connect Load Text Encoders "
                               f"(FLUX / SD3) for the prompts")
    finally:
        source.close()
    return parts


def load_transformer_file(path: Path, dtype: Any = None, on_tensor: Callable[[], None] | None = None) -> Any:
    """A FLUX / SD3 transformer on its own (ComfyUI's diffusion_models files), as a MODEL handle."""
    from nodes.mmdit.assemble import model_handle

    source = open_source(path, dtype)
    try:
        found = detect_transformer(source.shapes)
        if found is None:
            raise CheckpointError(f"{path.name} holds no FLUX or SD3 transformer")
        transformer, config = build_transformer(source, *found, path.name, on_tensor)
    finally:
        source.close()
    return model_handle(found[0], transformer, scheduler_config(found[0], config))
