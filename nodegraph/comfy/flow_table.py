"""The mapping table's entries for ComfyUI's FLUX.1 and SD3 / 3.5 class types (checked against ComfyUI's
``nodes.py``, ``comfy_extras/nodes_flux.py``, ``nodes_sd3.py`` and ``nodes_model_advanced.py``).

Most are renames onto the product's FLUX / SD3 nodes. Three need a :class:`~nodegraph.comfy.mapping.Conversion`:

- the text encoder loaders name their files ``clip_name1..3`` in any order (ComfyUI tells them apart by their
  weights); the import tells them apart by their names (``t5``, ``clip_g``, ``clip_l`` as the files are
  distributed) and says so when a name does not tell, and the export writes DualCLIPLoader (FLUX; SD3 without
  T5) or TripleCLIPLoader (SD3 with T5);
- ModelSamplingFlux sets FLUX's shift ``mu`` from an image size it is given (not the latent's): the import turns
  it into Flow Shift's fixed shift ``e^mu``, the same curve for every size, as in ComfyUI;
- CLIPTextEncodeFlux pads T5 to 256 tokens (ComfyUI's FLUX tokenizer; diffusers pads to 512): the import sets
  FLUX Text Encode's ``max_length`` to 256, or to 512 for prompts that may be longer (ComfyUI never cuts them).

KSampler, CLIPTextEncode and VAELoader keep their entries in :mod:`nodegraph.comfy.table`: their ``comfy.*`` and
``core.*`` node types take FLUX and SD3 models too.
"""

from __future__ import annotations

import math
import ntpath
import posixpath
from typing import Any

from nodegraph.comfy.mapping import ClassMapping, Conversion, ExportContext, Unmapped

# ComfyUI's ModelSamplingFlux: mu is linear in the image's token count (one token per 16x16 pixels)
TOKENS_LOW, TOKENS_HIGH = 256, 4096
FLUX_T5_TOKENS = 256  # ComfyUI pads FLUX's T5 prompt to this many tokens (diffusers: 512)
LONG_PROMPT_CHARS = 600  # past this a T5 prompt may run past 256 tokens (about 4 characters a token)
ENCODER_ROLES = ("clip_l", "clip_g", "t5")


def encoder_role(name: Any) -> str | None:
    """Which text encoder a file name says it holds: "t5", "clip_g", "clip_l", or None."""
    if not isinstance(name, str):
        return None
    low = ntpath.basename(posixpath.basename(name)).lower().replace("-", "_")
    if "t5" in low:
        return "t5"
    if any(k in low for k in ("clip_g", "clipg", "bigg", "vit_g")):
        return "clip_g"
    if any(k in low for k in ("clip_l", "clipl", "vit_l")):
        return "clip_l"
    return None


def assign_encoders(names: list[Any], wanted: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Files to roles (``wanted``, in the order unknown names fill them); notes for names that did not tell."""
    assigned: dict[str, str] = {}
    unknown: list[str] = []
    for name in (n for n in names if isinstance(n, str) and n):
        role = encoder_role(name)
        if role in wanted and role not in assigned:
            assigned[role] = name
        else:
            unknown.append(name)
    notes = []
    for name in unknown:
        free = next((r for r in wanted if r not in assigned), None)
        if free is None:
            notes.append(f"{name!r} is not used: {', '.join(assigned.values())} already fill the encoders")
            continue
        assigned[free] = name
        notes.append(f"{name!r} does not say which encoder it is: taken as {free.replace('_', '-').upper()} (if it "
                     "is another, swap the files on the Load Text Encoders node)")
    return assigned, notes


class EncoderFiles(Conversion):
    """DualCLIPLoader / TripleCLIPLoader <-> Load Text Encoders (FLUX / SD3)."""

    def to_node(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        names = [values.pop(k, None) for k in ("clip_name1", "clip_name2", "clip_name3")]
        family = values.pop("type", "sd3")
        if family not in ("flux", "sd3"):
            raise Unmapped(f"text encoders of type {family!r}: only the FLUX and SD3 types are supported here")
        wanted = ("t5", "clip_l") if family == "flux" else ("clip_l", "clip_g", "t5")
        assigned, notes = assign_encoders(names, wanted)
        if family == "sd3" and not {"clip_l", "clip_g"} <= set(assigned):
            raise Unmapped("SD3 text encoders without both CLIP-L and CLIP-G: the product's SD3 needs both (T5 is "
                           "optional)")
        if family == "flux" and set(assigned) != {"t5", "clip_l"}:
            raise Unmapped("FLUX needs a CLIP-L and a T5 file")
        return {**values, "type": family, **{r: assigned.get(r, "") for r in ENCODER_ROLES}}, notes

    def to_comfy(self, mapping: ClassMapping, params: dict[str, Any],
                 context: ExportContext) -> tuple[str, dict[str, Any]]:
        if params.get("type") == "flux":
            return "DualCLIPLoader", {"clip_name1": params.get("t5", ""), "clip_name2": params.get("clip_l", ""),
                                      "type": "flux"}
        if params.get("t5"):
            return "TripleCLIPLoader", {"clip_name1": params.get("clip_l", ""), "clip_name2": params.get("clip_g", ""),
                                        "clip_name3": params["t5"]}
        return "DualCLIPLoader", {"clip_name1": params.get("clip_l", ""), "clip_name2": params.get("clip_g", ""),
                                  "type": "sd3"}


def flux_mu(max_shift: float, base_shift: float, width: float, height: float) -> float:
    """ComfyUI's ModelSamplingFlux: mu for an image of ``width`` x ``height`` pixels."""
    slope = (max_shift - base_shift) / (TOKENS_HIGH - TOKENS_LOW)
    return (width * height / (8 * 8 * 2 * 2)) * slope + (base_shift - slope * TOKENS_LOW)


def graph_family(graph: Any) -> str | None:
    """"flux" or "sd3" when the graph's text nodes say which family it samples, else None."""
    for node in getattr(graph, "nodes", {}).values():
        if node.type in ("core.FluxTextEncode", "core.FluxGuidance"):
            return "flux"
        if node.type == "core.SD3TextEncode":
            return "sd3"
        if node.type == "core.FlowTextEncoderLoader" and node.params.get("type") in ("flux", "sd3"):
            return node.params["type"]
    return None


def empty_latent_size(graph: Any) -> tuple[int, int] | None:
    """(width, height) of the graph's one empty latent, if it has exactly one."""
    sizes = {(n.params.get("width", 1024), n.params.get("height", 1024)) for n in getattr(graph, "nodes", {}).values()
             if n.type in ("core.EmptyFlowLatent", "core.EmptyLatentForModel")}
    return sizes.pop() if len(sizes) == 1 else None


class FlowShiftConversion(Conversion):
    """ModelSamplingFlux (max_shift, base_shift, width, height) <-> Flow Shift's fixed shift ``e^mu``, and
    ModelSamplingSD3 (shift) <-> its fixed shift. On export a FLUX graph gets ModelSamplingFlux (ComfyUI's
    ModelSamplingSD3 feeds FLUX timesteps 1000 times too large), an SD3 one ModelSamplingSD3."""

    def to_node(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        if "max_shift" not in values and "base_shift" not in values:  # ModelSamplingSD3
            return {**values, "mode": "fixed"}, []
        given = {k: values.pop(k, d) for k, d in (("max_shift", 1.15), ("base_shift", 0.5), ("width", 1024),
                                                   ("height", 1024))}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given.values()):
            raise Unmapped(f"ModelSamplingFlux values must be numbers, found {given}")
        mu = flux_mu(given["max_shift"], given["base_shift"], given["width"], given["height"])
        if mu > math.log(100.0):
            raise Unmapped(f"a shift of e^{mu:.2f} is past what Flow Shift takes (100)")
        return {**values, "mode": "fixed", "shift": math.exp(mu)}, []

    def to_comfy(self, mapping: ClassMapping, params: dict[str, Any],
                 context: ExportContext) -> tuple[str, dict[str, Any]]:
        family = {"ModelSamplingFlux": "flux", "ModelSamplingSD3": "sd3"}.get(context.origin or "")
        family = family or graph_family(context.graph)
        if params.get("mode") == "resolution":  # ComfyUI's node takes the image size as values
            width, height = empty_latent_size(context.graph) or (1024, 1024)
            return "ModelSamplingFlux", {"max_shift": params.get("max_shift", 1.15),
                                         "base_shift": params.get("base_shift", 0.5), "width": width, "height": height}
        shift = float(params.get("shift", 3.0))
        if family != "flux":
            return "ModelSamplingSD3", {"shift": shift}
        mu = math.log(shift)  # a constant mu: ComfyUI's shift is e^mu at any size
        return "ModelSamplingFlux", {"max_shift": mu, "base_shift": mu, "width": 1024, "height": 1024}


class FluxPrompt(Conversion):
    """CLIPTextEncodeFlux: ComfyUI's T5 length (256 tokens, longer prompts kept whole) on FLUX Text Encode."""

    def to_node(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        notes = []
        clip_l, t5 = values.get("clip_l"), values.get("t5xxl")
        long = isinstance(t5, str) and len(t5) > LONG_PROMPT_CHARS
        values["max_length"] = 512 if long else FLUX_T5_TOKENS
        if long:
            notes.append(f"a long T5 prompt: ComfyUI pads T5 to {FLUX_T5_TOKENS} tokens and never cuts a prompt; "
                         "max_length is 512 so that no words are cut (the padding, and so the image, differ from "
                         "ComfyUI's unless the prompt passes 256 tokens)")
        if t5 == "" and isinstance(clip_l, str) and clip_l:
            notes.append("the T5 prompt is empty: ComfyUI encodes the empty text with T5, here T5 reads the CLIP-L "
                         "prompt (FLUX Text Encode's empty text_t5 means the same prompt)")
        return values, notes

    def to_comfy(self, mapping: ClassMapping, params: dict[str, Any],
                 context: ExportContext) -> tuple[str, dict[str, Any]]:
        text = params.get("text", "")
        return mapping.class_type, {"clip_l": text, "t5xxl": params.get("text_t5") or text,
                                    "guidance": params.get("guidance", 3.5)}


class WeightDtype(Conversion):
    """UNETLoader's ``weight_dtype``: fp8 storage is ComfyUI's; here weights load in the run's precision."""

    def to_node(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        dtype = values.get("weight_dtype", "default")
        if dtype in (None, "default"):
            return values, []
        return values, [f"weight_dtype {dtype!r}: the weights load in the run's precision (--precision), not in fp8, "
                        "so they take more memory and the image differs slightly from ComfyUI's"]


_ENCODERS = EncoderFiles()
_SHIFT = FlowShiftConversion()

FLOW_MAPPINGS: tuple[ClassMapping, ...] = (
    ClassMapping("UNETLoader", "core.FlowTransformerLoader", ("unet_name", "weight_dtype"), ("model",),
                 ignore=("weight_dtype",), export_values={"weight_dtype": "default"}, convert=WeightDtype()),
    ClassMapping("DualCLIPLoader", "core.FlowTextEncoderLoader", ("clip_name1", "clip_name2", "type", "device"),
                 ("clip",), widget_variants=(("clip_name1", "clip_name2", "type"),), ignore=("device",),
                 convert=_ENCODERS),
    ClassMapping("TripleCLIPLoader", "core.FlowTextEncoderLoader", ("clip_name1", "clip_name2", "clip_name3"),
                 ("clip",), params={"type": "sd3"}, convert=_ENCODERS, export=False),
    ClassMapping("CLIPTextEncodeFlux", "core.FluxTextEncode", ("clip_l", "t5xxl", "guidance"), ("conditioning",),
                 rename={"clip_l": "text", "t5xxl": "text_t5"}, convert=FluxPrompt()),
    ClassMapping("FluxGuidance", "core.FluxGuidance", ("guidance",), ("conditioning",)),
    ClassMapping("EmptySD3LatentImage", "core.EmptyFlowLatent", ("width", "height", "batch_size"), ("latent",)),
    ClassMapping("ModelSamplingFlux", "core.FlowShift", ("max_shift", "base_shift", "width", "height"), ("model",),
                 convert=_SHIFT),
    ClassMapping("ModelSamplingSD3", "core.FlowShift", ("shift",), ("model",), convert=_SHIFT, export=False),
)

__all__ = ["FLOW_MAPPINGS", "assign_encoders", "encoder_role", "flux_mu"]
