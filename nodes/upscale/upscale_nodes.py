"""Load Upscale Model and Upscale Image (using Model): ComfyUI's UpscaleModelLoader and ImageUpscaleWithModel, with
the same field names, plus explicit tile settings (ComfyUI tiles at 512 with an overlap of 32 on its own)."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Int, ModelFile
from nodegraph.types import IMAGE, define_type

UPSCALE_MODEL = define_type("UPSCALE_MODEL", (150, 110, 230), "A super-resolution network (ESRGAN, SwinIR, HAT, ...).")
EXTENSIONS = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


@node(
    "core.UpscaleModelLoader", name="Load Upscale Model", category="loaders",
    description=(
        "Loads a super-resolution model from the upscale_models folders (ComfyUI's and A1111's ESRGAN folder "
        "too): ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, OmniSR, SPAN and the other architectures spandrel "
        "recognises from the weights. Pickled files are read without running code."
    ),
    params=[ModelFile("model_name", folder="upscale_models", extensions=EXTENSIONS,
                      help="A .safetensors or .pth file from the upscale_models folders.")],
    outputs=[Output("upscale_model", UPSCALE_MODEL)],
)
def upscale_model_loader(ctx: NodeContext, model_name: str) -> Any:
    from nodes.upscale.loading import UpscaleModelError, load_upscale_model

    path = ctx.folders.resolve("upscale_models", model_name)
    try:
        model = load_upscale_model(path)
    except UpscaleModelError as exc:
        raise NodeInputError(str(exc), "model_name") from None
    params = sum(p.numel() for p in model.module.parameters()) / 1e6
    ctx.log(f"loaded {model.architecture} x{model.scale} upscaler {path.name}: {params:.2f}M parameters")
    return model


@node(
    "core.ImageUpscaleWithModel", name="Upscale Image (using Model)", category="image/upscaling",
    description=(
        "Enlarges images with an upscale model, tile by tile so that memory stays bounded at any size; tiles "
        "overlap and are blended, so no seam shows. A tile larger than the image upscales it in one piece."
    ),
    inputs=[Input("upscale_model", UPSCALE_MODEL), Input("image", IMAGE)],
    params=[
        Int("tile_size", 512, min=32, max=8192, step=8,
            help="Tile side in pixels of the input image; smaller uses less memory."),
        Int("overlap", 32, min=0, max=1024, step=8,
            help="Pixels shared by neighbouring tiles (less than half the tile). Tiled equals untiled when this "
                 "is at least four times the network's reach; larger networks only blend the seams away."),
    ],
    outputs=[Output("image", IMAGE)],
)
def image_upscale_with_model(ctx: NodeContext, upscale_model: Any, image: Any, tile_size: int, overlap: int) -> Any:
    from nodegraph.runtime import cpu_threads_for, module_nbytes
    from nodes.image.convert import check_image
    from nodes.upscale.loading import UpscaleModel
    from nodes.upscale.tiling import upscale_image

    if not isinstance(upscale_model, UpscaleModel):
        raise NodeInputError(f"expected an UPSCALE_MODEL from Load Upscale Model, found {type(upscale_model).__name__}",
                             "upscale_model")
    images = check_image(image, "image")
    if overlap * 2 >= tile_size:
        raise NodeInputError(f"the overlap ({overlap}) must be less than half the tile size ({tile_size})", "overlap")
    height, width = images.shape[1:3]
    if tile_size >= max(height, width):
        ctx.log(f"the tile size {tile_size} covers the {width}x{height} image: upscaling it in one piece")
    module = ctx.runtime.residency.load(upscale_model.module)
    device = next(module.parameters()).device
    dtype = ctx.runtime.dtype
    descriptor = upscale_model.descriptor
    supported = {"float16": descriptor.supports_half, "bfloat16": descriptor.supports_bfloat16}
    if not supported.get(str(dtype).removeprefix("torch."), True):
        dtype = images.dtype  # this architecture is only reliable in fp32
    with cpu_threads_for(str(device), module_nbytes(module)):
        result = upscale_image(
            descriptor, images, tile_size, overlap, device=device, dtype=dtype,
            progress=ctx.progress, check_cancelled=ctx.check_cancelled,
        )
    ctx.log(f"upscaled {width}x{height} to {result.shape[2]}x{result.shape[1]} ({upscale_model.architecture} "
            f"x{upscale_model.scale})")
    return result
