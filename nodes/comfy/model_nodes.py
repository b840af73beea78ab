"""ComfyUI's LoRA loaders (merged weights, fp16-rounded text encoder) and its one loader for ControlNets and
T2I-Adapters alike."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, ModelFile
from nodegraph.types import CLIP, CONTROL_NET, MODEL

LORA_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
CONTROL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
CLIP_DTYPE = "float16"  # ComfyUI keeps text encoders in fp16: a patched CLIP weight is rounded to it


def _merge_patches(ctx: NodeContext, model: Any, clip: Any | None, lora_name: str, strength_model: float,
                   strength_clip: float) -> tuple[Any, Any]:
    import torch

    from nodes.adapters.lora_nodes import _lora_file, _plan, _report
    from nodes.comfy.lora_merge import MergedLoraPatch, MergePart

    lora = _lora_file(ctx, lora_name)
    plan = _plan(ctx, lora, model, clip)
    _report(ctx, lora, plan)
    label = lora_name
    model_patch = clip_patch = None
    if plan.unet.matched and strength_model != 0.0:
        model_patch = MergedLoraPatch(label, (MergePart(plan.unet_module, plan.unet.matched, strength_model),))
    parts = tuple(
        MergePart(encoder, m.matched, strength_clip, getattr(torch, CLIP_DTYPE)) for _, encoder, m in plan.encoders if m.matched
    )
    if parts and strength_clip != 0.0:
        clip_patch = MergedLoraPatch(label, parts)
    return model_patch, clip_patch


def _check(value: Any, attribute: str, field: str, what: str) -> None:
    if value is None or not hasattr(value, attribute):
        raise NodeInputError(f"expected a {what} from a checkpoint loader, found {type(value).__name__}", field)


@node(
    "comfy.LoraLoader", name="Load LoRA (ComfyUI)", category="loaders/comfyui",
    description=("ComfyUI's Load LoRA: merges the LoRA into the model's and the text encoder's weights as ComfyUI "
                 "does (the patched text-encoder weights rounded to fp16). The incoming model is left unchanged."),
    inputs=[Input("model", MODEL), Input("clip", CLIP)],
    params=[
        ModelFile("lora_name", folder="loras", extensions=LORA_EXTENSIONS, help="A LoRA file from the loras folders."),
        Float("strength_model", 1.0, min=-100.0, max=100.0, step=0.01, help="UNet strength (0 = off)."),
        Float("strength_clip", 1.0, min=-100.0, max=100.0, step=0.01, help="Text encoder strength (0 = off)."),
    ],
    outputs=[Output("model", MODEL), Output("clip", CLIP)],
)
def lora_loader(ctx: NodeContext, model: Any, clip: Any, lora_name: str, strength_model: float,
                strength_clip: float) -> dict[str, Any]:
    _check(model, "unet", "model", "MODEL")
    _check(clip, "encoders", "clip", "CLIP")
    model_patch, clip_patch = _merge_patches(ctx, model, clip, lora_name, strength_model, strength_clip)
    return {
        "model": model.replace(patches=(*model.patches, model_patch)) if model_patch else model,
        "clip": clip.replace(patches=(*clip.patches, clip_patch)) if clip_patch else clip,
    }


@node(
    "comfy.LoraLoaderModelOnly", name="Load LoRA, model only (ComfyUI)", category="loaders/comfyui",
    description="ComfyUI's LoraLoaderModelOnly: merges the LoRA into the model's (UNet's) weights only.",
    inputs=[Input("model", MODEL)],
    params=[
        ModelFile("lora_name", folder="loras", extensions=LORA_EXTENSIONS, help="A LoRA file from the loras folders."),
        Float("strength_model", 1.0, min=-100.0, max=100.0, step=0.01, help="UNet strength (0 = off)."),
    ],
    outputs=[Output("model", MODEL)],
)
def lora_loader_model_only(ctx: NodeContext, model: Any, lora_name: str, strength_model: float) -> Any:
    _check(model, "unet", "model", "MODEL")
    model_patch, _ = _merge_patches(ctx, model, None, lora_name, strength_model, 0.0)
    return model.replace(patches=(*model.patches, model_patch)) if model_patch else model


@node(
    "comfy.ControlNetLoader", name="Load ControlNet Model (ComfyUI)", category="loaders/comfyui",
    description=("ComfyUI's Load ControlNet Model: a ControlNet or a T2I-Adapter file (SD1.5 or SDXL), told apart "
                 "by its weights, from the controlnet folders."),
    params=[ModelFile("control_net_name", folder="controlnet", extensions=CONTROL_EXTENSIONS, allow_directories=True,
                      help="A ControlNet or T2I-Adapter file or diffusers folder.")],
    outputs=[Output("control_net", CONTROL_NET)],
)
def controlnet_loader(ctx: NodeContext, control_net_name: str) -> Any:
    from nodes.adapters.controlnet import ControlNetLoadError, load_controlnet
    from nodes.adapters.t2i_adapter import AdapterLoadError, load_adapter

    path = ctx.folders.resolve("controlnet", control_net_name)
    try:
        handle = load_controlnet(path, ctx.runtime.dtype)
        ctx.log(f"loaded ControlNet {path.name} ({handle.family})")
        return handle
    except ControlNetLoadError as controlnet_error:
        try:
            handle = load_adapter(path, ctx.runtime.dtype)
        except AdapterLoadError:
            raise NodeInputError(f"{path.name} is neither a ControlNet nor a T2I-Adapter: {controlnet_error}",
                                 "control_net_name") from None
        ctx.log(f"loaded T2I-Adapter {path.name} ({handle.family})")
        return handle
    except (OSError, RuntimeError) as exc:
        raise NodeInputError(f"cannot read {path.name}: {exc}", "control_net_name") from None
