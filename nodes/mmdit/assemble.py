"""Loaded FLUX / SD3 parts -> MODEL, CLIP and VAE handles, with the release the weights look like."""

from __future__ import annotations

from typing import Any

from nodes.mmdit.handles import FlowModelHandle, FlowTextEncoders
from nodes.sampling.flow_matching import FLOW_PREDICTION

CLIP_LENGTH = 77
T5_LENGTHS = {"flux": 512, "sd3": 256}
# latent scaling of the 16-channel VAEs (their diffusers configs' scaling_factor / shift_factor)
VAE_SCALING = {"flux": (0.3611, 0.1159), "sd3": (1.5305, 0.0609)}


def variant(family: str, config: Any) -> str:
    """What a transformer config looks like: "FLUX.1 [dev]", "SD3.5 Large", ... (for messages only)."""
    get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    if family == "flux":
        return "FLUX.1 [dev]" if get("guidance_embeds") else "FLUX.1 [schnell]"
    if get("dual_attention_layers"):
        return "SD3.5 Medium"
    if get("qk_norm"):
        return "SD3.5 Large"
    return "SD3 Medium"


def model_handle(family: str, transformer: Any, scheduler_config: dict[str, Any]) -> FlowModelHandle:
    return FlowModelHandle(transformer, family, dict(scheduler_config), FLOW_PREDICTION,
                           variant=variant(family, transformer.config))


def clip_handle(family: str, tokenizers: tuple, encoders: tuple, joint_width: int = 4096) -> FlowTextEncoders:
    """``tokenizers`` / ``encoders``: FLUX (CLIP-L, T5); SD3 (CLIP-L, CLIP-G, T5 or None)."""
    lengths = (CLIP_LENGTH, T5_LENGTHS["flux"]) if family == "flux" else (CLIP_LENGTH, CLIP_LENGTH, T5_LENGTHS["sd3"])
    return FlowTextEncoders(family, tuple(tokenizers), tuple(encoders), lengths, joint_width=joint_width)


def vae_handle(family: str, vae: Any, own_config: bool = True) -> Any:
    """A VaeHandle with the family's latent scaling: the VAE's own config when it came with one, else the table."""
    from nodes.sd.handles import VaeHandle

    scale, shift = VAE_SCALING[family]
    if own_config:
        scale = float(vae.config.scaling_factor)
        shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    return VaeHandle(vae, family, scale, shift)
