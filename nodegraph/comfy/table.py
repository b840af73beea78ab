"""The mapping table for ComfyUI's core class types (pack "comfy-core").

Where a nodegraph core node does what the ComfyUI node does, the class maps onto it (fields renamed where
the names differ). Where ComfyUI's meaning differs from the product's native one (its samplers, noise and
sigma schedules, its LoRA arithmetic, its 8-bit truncation, its resize methods), the class maps onto a
``comfy.*`` node type of the ``nodes.comfy`` package, which keeps ComfyUI's field names and values exactly.

Widget lists are ComfyUI's widget inputs in the order UI-format files store their values (checked against
ComfyUI 0.8's ``nodes.py``); older orders that files still carry are listed as variants.
"""

from __future__ import annotations

import ntpath
import posixpath

from nodegraph.comfy.mapping import ClassMapping, MappingTable, ValueMap, register_mapping

# ComfyUI names input images by file name inside its input folder; an import finds the file (see build.py)
IMAGE_NAME = ValueMap(lambda v: v, lambda v: ntpath.basename(posixpath.basename(v)) if isinstance(v, str) else v)

_TILED_WIDGETS = ("tile_size", "overlap", "temporal_size", "temporal_overlap")

CORE_MAPPINGS: tuple[ClassMapping, ...] = (
    # ------------------------------------------------------------------ loaders
    ClassMapping("CheckpointLoaderSimple", "core.CheckpointLoader", ("ckpt_name",), ("model", "clip", "vae")),
    ClassMapping(
        "CheckpointLoader", "core.CheckpointLoader", ("config_name", "ckpt_name"), ("model", "clip", "vae"),
        ignore=("config_name",), export=False,
        note="the config file is not needed: the architecture is read from the checkpoint itself",
    ),
    ClassMapping("VAELoader", "core.VAELoader", ("vae_name",), ("vae",)),
    ClassMapping("LoraLoader", "comfy.LoraLoader", ("lora_name", "strength_model", "strength_clip"), ("model", "clip")),
    ClassMapping("LoraLoaderModelOnly", "comfy.LoraLoaderModelOnly", ("lora_name", "strength_model"), ("model",)),
    ClassMapping("ControlNetLoader", "comfy.ControlNetLoader", ("control_net_name",), ("control_net",)),
    # ------------------------------------------------------------------ text and conditioning
    ClassMapping("CLIPSetLastLayer", "core.CLIPSetLastLayer", ("stop_at_clip_layer",), ("clip",)),
    ClassMapping("CLIPTextEncode", "comfy.CLIPTextEncode", ("text",), ("conditioning",)),
    ClassMapping(
        "CLIPTextEncodeSDXL", "core.CLIPTextEncodeSDXL",
        ("width", "height", "crop_w", "crop_h", "target_width", "target_height", "text_g", "text_l"),
        ("conditioning",),
        rename={"width": "original_width", "height": "original_height", "crop_w": "crop_left", "crop_h": "crop_top"},
    ),
    ClassMapping(
        "CLIPTextEncodeSDXLRefiner", "core.CLIPTextEncodeSDXLRefiner", ("ascore", "width", "height", "text"),
        ("conditioning",),
        rename={"ascore": "aesthetic_score", "width": "original_width", "height": "original_height"},
    ),
    ClassMapping("ConditioningCombine", "comfy.ConditioningCombine", (), ("conditioning",)),
    ClassMapping("ConditioningZeroOut", "comfy.ConditioningZeroOut", (), ("conditioning",)),
    ClassMapping("ControlNetApply", "comfy.ControlNetApply", ("strength",), ("conditioning",)),
    ClassMapping(
        "ControlNetApplyAdvanced", "comfy.ControlNetApplyAdvanced", ("strength", "start_percent", "end_percent"),
        ("positive", "negative"), ignore=("vae",),
    ),
    # ------------------------------------------------------------------ latents
    ClassMapping("EmptyLatentImage", "core.EmptyLatentImage", ("width", "height", "batch_size"), ("latent",)),
    ClassMapping("LatentUpscale", "comfy.LatentUpscale", ("upscale_method", "width", "height", "crop"), ("latent",)),
    ClassMapping("LatentUpscaleBy", "comfy.LatentUpscaleBy", ("upscale_method", "scale_by"), ("latent",)),
    ClassMapping("VAEEncode", "core.VAEEncode", (), ("latent",), params={"mode": "mode"}),
    ClassMapping("VAEDecode", "core.VAEDecode", (), ("image",)),
    ClassMapping(
        "VAEEncodeTiled", "core.VAEEncodeTiled", _TILED_WIDGETS, ("latent",),
        widget_variants=(("tile_size", "overlap"), ("tile_size",)), ignore=("temporal_size", "temporal_overlap"),
        params={"mode": "mode"}, export_values={"temporal_size": 64, "temporal_overlap": 8},
        note="tiles are blended with linear ramps, not as ComfyUI blends them: seams differ slightly",
    ),
    ClassMapping(
        "VAEDecodeTiled", "core.VAEDecodeTiled", _TILED_WIDGETS, ("image",),
        widget_variants=(("tile_size", "overlap"), ("tile_size",)), ignore=("temporal_size", "temporal_overlap"),
        export_values={"temporal_size": 64, "temporal_overlap": 8},
        note="tiles are blended with linear ramps, not as ComfyUI blends them: seams differ slightly",
    ),
    # ------------------------------------------------------------------ sampling
    ClassMapping(
        "KSampler", "comfy.KSampler", ("seed*", "steps", "cfg", "sampler_name", "scheduler", "denoise"), ("latent",),
    ),
    ClassMapping(
        "KSamplerAdvanced", "comfy.KSamplerAdvanced",
        ("add_noise", "noise_seed*", "steps", "cfg", "sampler_name", "scheduler", "start_at_step", "end_at_step",
         "return_with_leftover_noise"),
        ("latent",),
    ),
    # ------------------------------------------------------------------ images
    ClassMapping(
        "LoadImage", "core.LoadImage", ("image", "upload"), ("image", "mask"), rename={"image": "path"},
        ignore=("upload",), values={"path": IMAGE_NAME},
    ),
    ClassMapping("ImageScale", "comfy.ImageScale", ("upscale_method", "width", "height", "crop"), ("image",)),
    ClassMapping("ImageScaleBy", "comfy.ImageScaleBy", ("upscale_method", "scale_by"), ("image",)),
    ClassMapping("ImageInvert", "core.ImageInvert", (), ("images",), rename={"image": "images"}),
    ClassMapping("SaveImage", "comfy.SaveImage", ("filename_prefix",), ()),
    ClassMapping("PreviewImage", "core.PreviewImage", (), ()),
    # ------------------------------------------------------------------ primitives (comfy_extras/nodes_primitive)
    ClassMapping("PrimitiveInt", "core.Int", ("value*",), ("value",)),
    ClassMapping("PrimitiveFloat", "core.Float", ("value",), ("value",)),
    ClassMapping("PrimitiveString", "core.String", ("value",), ("value",)),
    ClassMapping("PrimitiveStringMultiline", "core.Text", ("value",), ("value",)),
    ClassMapping("PrimitiveBoolean", "core.Bool", ("value",), ("value",)),
)

# Inpainting and upscale-model class types, onto the node types the inpainting work adds (core.* with
# ComfyUI's field names). Until those node types are installed an import keeps these nodes as placeholders
# and says "maps to core.X, which is not installed"; once they are, the entries apply as they stand. Further
# entries for that work go here.
AWAITING_MAPPINGS: tuple[ClassMapping, ...] = (
    ClassMapping("UpscaleModelLoader", "core.UpscaleModelLoader", ("model_name",), ("upscale_model",)),
    ClassMapping("ImageUpscaleWithModel", "core.ImageUpscaleWithModel", (), ("image",)),
    ClassMapping("SetLatentNoiseMask", "core.SetLatentNoiseMask", (), ("latent",)),
    ClassMapping("VAEEncodeForInpaint", "core.VAEEncodeForInpaint", ("grow_mask_by",), ("latent",)),
    ClassMapping("InpaintModelConditioning", "core.InpaintModelConditioning", ("noise_mask",),
                 ("positive", "negative", "latent")),
    ClassMapping("ImageCompositeMasked", "core.ImageCompositeMasked", ("x", "y", "resize_source"), ("image",)),
    ClassMapping("ImagePadForOutpaint", "core.ImagePadForOutpaint", ("left", "top", "right", "bottom", "feathering"),
                 ("image", "mask")),
    ClassMapping("InvertMask", "core.InvertMask", (), ("mask",)),
    ClassMapping("GrowMask", "core.GrowMask", ("expand", "tapered_corners"), ("mask",)),
    ClassMapping("FeatherMask", "core.FeatherMask", ("left", "top", "right", "bottom"), ("mask",)),
    ClassMapping("ThresholdMask", "core.ThresholdMask", ("value",), ("mask",)),
    ClassMapping("SolidMask", "core.SolidMask", ("value", "width", "height"), ("mask",)),
    ClassMapping("MaskToImage", "core.MaskToImage", (), ("image",)),
    ClassMapping("ImageColorToMask", "core.ImageColorToMask", ("color",), ("mask",)),
    ClassMapping("MaskComposite", "core.MaskComposite", ("x", "y", "operation"), ("mask",)),
)

# Core class types with no mapping yet: an import names the reason instead of only "no mapping".
PENDING: dict[str, str] = {
    "LoadImageMask": "mask loading by channel is not mapped yet",
}

# UI-only node types: they never reach ComfyUI's server, and the importer turns them into layout.
UI_ONLY = frozenset({"Reroute", "Note", "MarkdownNote", "PrimitiveNode"})

__all__ = ["AWAITING_MAPPINGS", "CORE_MAPPINGS", "PENDING", "UI_ONLY", "install_core"]


def install_core(table: MappingTable | None = None) -> None:
    """Put the core entries into ``table`` (default: the shared table), leaving entries already there."""
    from nodegraph.comfy.flow_table import FLOW_MAPPINGS

    for mapping in (*CORE_MAPPINGS, *FLOW_MAPPINGS, *AWAITING_MAPPINGS):
        if table is None:
            from nodegraph.comfy.mapping import MAPPINGS

            if mapping.class_type not in MAPPINGS:
                register_mapping(mapping)
        elif mapping.class_type not in table:
            table.add(mapping)
