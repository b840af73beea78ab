"""ControlNet and T2I-Adapter nodes: loaders, and apply nodes that attach a residual source to conditioning.

The apply nodes return new conditioning entries (``entry.with_extras(residuals=...)``); the shared tensors
and the incoming entries are never changed. The same source object goes on the positive and the negative
entries, so the sampler batches them into one model call and the control model runs once per step for
both, as diffusers' pipelines run it.
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, ModelFile
from nodegraph.types import CONDITIONING, CONTROL_NET, IMAGE, MODEL, T2I_ADAPTER

CONTROL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
FAMILY_NAMES = {"sd15": "SD1.5", "sdxl": "SDXL", "sdxl_refiner": "SDXL refiner"}


def _check_image(image: Any, field: str = "image") -> Any:
    import torch

    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] != 3:
        found = f"shape {list(image.shape)}" if isinstance(image, torch.Tensor) else type(image).__name__
        hint = " (a MASK? convert it to an image first)" if isinstance(image, torch.Tensor) and image.ndim == 3 else ""
        raise NodeInputError(f"expected an RGB IMAGE [B, H, W, 3] as the control image, found {found}{hint}", field)
    return image


def _check_conditioning(cond: Any, field: str) -> tuple:
    if not isinstance(cond, tuple) or not cond:
        raise NodeInputError(f"expected CONDITIONING from a text encoder, found {type(cond).__name__}", field)
    return cond


def _check_width(conditioning: tuple, expected: int, what: str, family: str, field: str) -> None:
    width = int(conditioning[0].embeds.shape[-1])
    if width != expected:
        raise NodeInputError(
            f"{what} is for {FAMILY_NAMES.get(family, family)} (text embeddings {expected} wide) but this conditioning "
            f"is {width} wide: it comes from another model family's text encoder", field,
        )


def _attach(conditioning: tuple, source: Any) -> tuple:
    return tuple(entry.with_extras(residuals=(*entry.extras.get("residuals", ()), source)) for entry in conditioning)


@node(
    "core.ControlNetLoader", name="Load ControlNet", category="loaders",
    description="Loads a ControlNet (SD1.5 or SDXL): a diffusers folder or an original single file.",
    inputs=[Input("model", MODEL, optional=True,
                  help="Optional: the model it will control. Original SDXL files take from it what their weights "
                       "cannot tell (the width of the size/crop embedding); also checks that the families match.")],
    params=[ModelFile("control_net_name", folder="controlnet", extensions=CONTROL_EXTENSIONS, allow_directories=True,
                      help="A ControlNet file or diffusers folder from the controlnet folders.")],
    outputs=[Output("control_net", CONTROL_NET)],
)
def controlnet_loader(ctx: NodeContext, model: Any, control_net_name: str) -> Any:
    from nodes.adapters.controlnet import ControlNetLoadError, load_controlnet

    path = ctx.folders.resolve("controlnet", control_net_name)
    reference = model.unet.config if model is not None and hasattr(model, "unet") else None
    try:
        handle = load_controlnet(path, ctx.runtime.dtype, reference)
    except ControlNetLoadError as exc:
        raise NodeInputError(str(exc), "control_net_name") from None
    except (OSError, RuntimeError) as exc:
        raise NodeInputError(f"cannot read {path.name} as a ControlNet: {exc}", "control_net_name") from None
    if model is not None and model.family != handle.family:
        raise NodeInputError(
            f"{path.name} is an {FAMILY_NAMES.get(handle.family)} ControlNet but the model is "
            f"{FAMILY_NAMES.get(model.family, model.family)}", "control_net_name",
        )
    params = sum(p.numel() for p in handle.model.parameters()) / 1e6
    ctx.log(f"loaded {FAMILY_NAMES[handle.family]} ControlNet {path.name}: {params:.1f}M parameters")
    return handle


@node(
    "core.ControlNetApply", name="Apply ControlNet", category="conditioning/control",
    description=(
        "Attaches a ControlNet with its control image to the positive and negative conditioning. Chain several "
        "to combine ControlNets (their residuals add up). The image is resized to the latent's size if needed."
    ),
    inputs=[
        Input("positive", CONDITIONING), Input("negative", CONDITIONING),
        Input("control_net", CONTROL_NET), Input("image", IMAGE, help="The control image (edges, pose, depth...)."),
    ],
    params=[
        Float("strength", 1.0, min=0.0, max=10.0, step=0.01, help="Scale of the residuals (conditioning scale)."),
        Float("start_percent", 0.0, min=0.0, max=1.0, step=0.001, help="Fraction of the steps before it starts."),
        Float("end_percent", 1.0, min=0.0, max=1.0, step=0.001, help="Fraction of the steps after which it stops."),
    ],
    outputs=[Output("positive", CONDITIONING), Output("negative", CONDITIONING)],
)
def controlnet_apply(
    ctx: NodeContext, positive: Any, negative: Any, control_net: Any, image: Any, strength: float,
    start_percent: float, end_percent: float,
) -> dict[str, Any]:
    from nodes.adapters.controlnet import ControlNetSource

    _check_conditioning(positive, "positive")
    _check_conditioning(negative, "negative")
    _check_image(image)
    if not hasattr(control_net, "model"):
        raise NodeInputError(f"expected a CONTROL_NET from Load ControlNet, found {type(control_net).__name__}",
                             "control_net")
    if start_percent > end_percent:
        raise NodeInputError(f"start_percent {start_percent} is after end_percent {end_percent}", "start_percent")
    what = f"ControlNet {control_net.name}"
    _check_width(positive, control_net.cross_attention_dim, what, control_net.family, "positive")
    _check_width(negative, control_net.cross_attention_dim, what, control_net.family, "negative")
    source = ControlNetSource(control_net, image, strength, start_percent, end_percent)
    return {"positive": _attach(positive, source), "negative": _attach(negative, source)}


@node(
    "core.T2IAdapterLoader", name="Load T2I-Adapter", category="loaders",
    description="Loads a T2I-Adapter (SD1.5 or SDXL): a diffusers folder or an original (TencentARC) single file.",
    params=[ModelFile("t2i_adapter_name", folder="t2i_adapter", extensions=CONTROL_EXTENSIONS, allow_directories=True,
                      help="An adapter file or diffusers folder from the t2i_adapter folders.")],
    outputs=[Output("t2i_adapter", T2I_ADAPTER)],
)
def t2i_adapter_loader(ctx: NodeContext, t2i_adapter_name: str) -> Any:
    from nodes.adapters.t2i_adapter import AdapterLoadError, load_adapter

    path = ctx.folders.resolve("t2i_adapter", t2i_adapter_name)
    try:
        handle = load_adapter(path, ctx.runtime.dtype)
    except AdapterLoadError as exc:
        raise NodeInputError(str(exc), "t2i_adapter_name") from None
    except (OSError, RuntimeError) as exc:
        raise NodeInputError(f"cannot read {path.name} as a T2I-Adapter: {exc}", "t2i_adapter_name") from None
    ctx.log(f"loaded {handle.kind} T2I-Adapter {path.name} ({FAMILY_NAMES[handle.family]})")
    return handle


@node(
    "core.T2IAdapterApply", name="Apply T2I-Adapter", category="conditioning/control",
    description=(
        "Attaches a T2I-Adapter with its condition image to the positive and negative conditioning. The adapter "
        "runs once per generation; several adapters on the same conditioning combine by a weighted sum of their "
        "features (diffusers' MultiAdapter)."
    ),
    inputs=[
        Input("positive", CONDITIONING), Input("negative", CONDITIONING),
        Input("t2i_adapter", T2I_ADAPTER), Input("image", IMAGE, help="The condition image (sketch, depth...)."),
    ],
    params=[Float("weight", 1.0, min=0.0, max=10.0, step=0.01, help="Weight of this adapter's features.")],
    outputs=[Output("positive", CONDITIONING), Output("negative", CONDITIONING)],
)
def t2i_adapter_apply(ctx: NodeContext, positive: Any, negative: Any, t2i_adapter: Any, image: Any, weight: float) -> dict[str, Any]:
    from nodes.adapters.t2i_adapter import AdapterSource

    _check_conditioning(positive, "positive")
    _check_conditioning(negative, "negative")
    _check_image(image)
    if not hasattr(t2i_adapter, "adapter"):
        raise NodeInputError(f"expected a T2I_ADAPTER from Load T2I-Adapter, found {type(t2i_adapter).__name__}",
                             "t2i_adapter")
    channels = t2i_adapter.in_channels
    if channels == 1:
        ctx.log("this adapter takes a one-channel condition image: the image's luminance is used")
    source = AdapterSource(t2i_adapter, image, weight)
    return {"positive": _attach(positive, source), "negative": _attach(negative, source)}
