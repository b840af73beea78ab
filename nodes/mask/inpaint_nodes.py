"""Inpainting nodes: put a mask on a latent, encode an image for inpainting, condition an inpainting model.

Three ways in, as in ComfyUI (same ids, fields and meaning where ComfyUI has the node):

- **Set Latent Noise Mask**: any latent (usually VAE Encode of the image) plus a mask; the sampler repaints
  only under the mask and keeps the rest on the image's trajectory. Works with every model; denoise < 1 keeps
  some of what was under the mask.
- **VAE Encode (for Inpainting)**: grows the mask, fills the masked pixels with grey and encodes that, so
  nothing of the old content shows through; use denoise 1. Suits inpainting models (and ordinary ones).
- **Inpaint Conditioning**: for inpainting models (9-channel UNets): the prompts carry the mask and the
  masked image, the latent is the whole image (so denoise < 1 works too), with the mask as noise mask.

The masked image is made as diffusers' inpaint pipelines make it: pixels where the mask is at least 0.5 become
0.5 grey (0 in the VAE's -1..1 input), the others stay exactly as they are.
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Int
from nodegraph.types import CONDITIONING, IMAGE, LATENT, MASK, VAE


def _pixels_and_mask(ctx: NodeContext, pixels: Any, mask: Any, factor: int) -> tuple[Any, Any]:
    """The image and its mask [B, H, W], the mask fitted to the image, both trimmed to a multiple of ``factor``
    (centred, as VAE Encode trims)."""
    from nodes.image.convert import check_image
    from nodes.mask.ops import check_mask, fit_mask, match_batch

    images = check_image(pixels, "pixels")
    masks = check_mask(mask, "mask")
    height, width = images.shape[1:3]
    masks, note = fit_mask(masks, height, width)
    if note:
        ctx.log(note)
    masks = match_batch(masks, images.shape[0])
    new_h, new_w = height - height % factor, width - width % factor
    if new_h == 0 or new_w == 0:
        raise NodeInputError(f"the image ({width}x{height}) is smaller than one latent cell ({factor}x{factor} pixels)",
                             "pixels")
    if (new_h, new_w) != (height, width):
        ctx.log(f"cropped the image and mask from {width}x{height} to {new_w}x{new_h} (a multiple of {factor})")
        top, left = (height - new_h) // 2, (width - new_w) // 2
        images = images[:, top : top + new_h, left : left + new_w, :]
        masks = masks[:, top : top + new_h, left : left + new_w]
    return images, masks


def masked_pixels(images: Any, masks: Any) -> Any:
    """The image with every pixel whose mask is at least 0.5 set to 0.5 grey; the others untouched."""
    import torch

    return torch.where((masks >= 0.5)[..., None], torch.full_like(images, 0.5), images)


def _encode(ctx: NodeContext, vae: Any, images: Any) -> Any:
    from nodes.latent.codec import encode
    from nodes.latent.vae_nodes import _vae_module

    module = _vae_module(ctx, vae)
    return encode(module, images, vae.scaling_factor, getattr(vae, "shift_factor", 0.0), sample=False)


def _vae_factor(ctx: NodeContext, vae: Any) -> int:
    from nodes.latent.codec import spatial_factor
    from nodes.latent.vae_nodes import _vae_module

    return spatial_factor(_vae_module(ctx, vae))


def _warn_coverage(ctx: NodeContext, masks: Any) -> None:
    if not (masks >= 0.5).any():
        ctx.warn("the mask is empty (no value reaches 0.5): nothing will be repainted")


@node(
    "core.SetLatentNoiseMask", name="Set Latent Noise Mask", category="latent/inpaint",
    description=(
        "Puts a mask on a latent: the sampler repaints only where the mask is 1 (soft values blend) and keeps "
        "the rest on the input image's trajectory. Works with every model; with denoise below 1 the masked "
        "region keeps some of the old image."
    ),
    inputs=[Input("samples", LATENT, help="The latent of the image to repaint (VAE Encode)."),
            Input("mask", MASK, help="1 = repaint. Any size with the image's aspect ratio (resized to the latent).")],
    outputs=[Output("latent", LATENT)],
)
def set_latent_noise_mask(ctx: NodeContext, samples: Any, mask: Any) -> dict:
    import torch

    from nodes.mask.ops import check_mask
    from nodes.sampling.masking import same_aspect

    latents = samples.get("samples") if isinstance(samples, dict) else None
    if not isinstance(latents, torch.Tensor) or latents.ndim != 4:
        raise NodeInputError(f"'samples' must be a LATENT {{'samples': [B, C, h, w]}}, found {type(samples).__name__}",
                             "samples")
    masks = check_mask(mask, "mask")
    h, w = latents.shape[-2:]
    if not same_aspect(tuple(masks.shape[-2:]), (h, w)):
        raise NodeInputError(
            f"the mask is {masks.shape[-1]}x{masks.shape[-2]} but the latent is {w * 8}x{h * 8} pixels: their aspect "
            "ratios differ. Draw the mask on the image that was encoded", "mask",
        )
    if masks.shape[0] not in (1, latents.shape[0]) and latents.shape[0] % masks.shape[0]:
        raise NodeInputError(f"the mask batch ({masks.shape[0]}) does not divide the latent batch ({latents.shape[0]})",
                             "mask")
    _warn_coverage(ctx, masks)
    return {"latent": {**samples, "noise_mask": masks[:, None].clone()}}


@node(
    "core.VAEEncodeForInpaint", name="VAE Encode (for Inpainting)", category="latent/inpaint",
    description=(
        "Encodes the image with the masked pixels filled grey, and puts the (grown) mask on the latent, so "
        "the sampler repaints the masked region from scratch: sample with denoise 1. Inpainting models read "
        "the mask and this masked image; ordinary models repaint under the mask."
    ),
    inputs=[Input("pixels", IMAGE), Input("vae", VAE),
            Input("mask", MASK, help="1 = repaint. Resized to the image if only its size differs.")],
    params=[Int("grow_mask_by", 6, min=0, max=64,
                help="Grows the noise mask with a square window of this many pixels (about half of it on each "
                     "side, as ComfyUI), so the repainted region blends in at its edge. The grey fill uses the "
                     "mask as drawn.")],
    outputs=[Output("latent", LATENT)],
)
def vae_encode_for_inpaint(ctx: NodeContext, pixels: Any, vae: Any, mask: Any, grow_mask_by: int) -> dict:
    from nodes.mask.ops import dilate_square

    images, masks = _pixels_and_mask(ctx, pixels, mask, _vae_factor(ctx, vae))
    _warn_coverage(ctx, masks)
    hard = (masks >= 0.5).float()
    samples = _encode(ctx, vae, masked_pixels(images, masks))
    return {"latent": {"samples": samples, "noise_mask": dilate_square(hard, grow_mask_by)[:, None]}}


@node(
    "core.InpaintModelConditioning", name="Inpaint Conditioning", category="conditioning/inpaint",
    description=(
        "Prepares an inpainting model (a 9-channel inpainting checkpoint): the prompts carry the mask and the "
        "image with the masked pixels filled grey, and the latent is the whole image, so denoise below 1 "
        "works too. With ordinary models only the latent's noise mask matters."
    ),
    inputs=[Input("positive", CONDITIONING), Input("negative", CONDITIONING), Input("vae", VAE),
            Input("pixels", IMAGE), Input("mask", MASK, help="1 = repaint. Resized to the image if only its size differs.")],
    params=[Bool("noise_mask", True,
                 help="Also put the mask on the latent as its noise mask (ordinary models need it to repaint only "
                      "the masked region; inpainting models repaint only there by themselves).")],
    outputs=[Output("positive", CONDITIONING), Output("negative", CONDITIONING), Output("latent", LATENT)],
)
def inpaint_model_conditioning(
    ctx: NodeContext, positive: Any, negative: Any, vae: Any, pixels: Any, mask: Any, noise_mask: bool
) -> dict:
    for name, cond in (("positive", positive), ("negative", negative)):
        if not isinstance(cond, tuple) or not cond:
            raise NodeInputError(f"expected CONDITIONING from a text encoder, found {type(cond).__name__}", name)
    images, masks = _pixels_and_mask(ctx, pixels, mask, _vae_factor(ctx, vae))
    _warn_coverage(ctx, masks)
    samples = _encode(ctx, vae, images)
    concat = _encode(ctx, vae, masked_pixels(images, masks))

    def attach(cond: tuple) -> tuple:
        return tuple(e.with_extras(concat_latent_image=concat, concat_mask=masks) for e in cond)

    latent = {"samples": samples, "noise_mask": masks[:, None].clone()} if noise_mask else {"samples": samples}
    return {"positive": attach(positive), "negative": attach(negative), "latent": latent}
