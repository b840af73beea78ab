"""Helpers for the image and latent node tests: a node context without an executor, and a tiny random
AutoencoderKL built from a config (real diffusers code, a few thousand parameters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodegraph.context import CancelToken, NodeContext, RunSettings
from nodegraph.events import Event
from nodegraph.model_folders import ModelFolders
from nodegraph.node import NodeDef
from nodegraph.runtime import Runtime


def make_ctx(
    output_dir: Path, node_id: str = "node", workflow: dict | None = None, params: dict | None = None,
    events: list[Event] | None = None,
) -> NodeContext:
    settings = RunSettings(output_dir=output_dir, workflow=workflow)
    sink = events.append if events is not None else (lambda event: None)
    return NodeContext(node_id, "test", sink, CancelToken(), settings, Runtime("cpu"), ModelFolders([]), params or {})


def call(definition: NodeDef, ctx: NodeContext, **kwargs: Any) -> dict[str, Any]:
    """Run a node function as the executor does: defaults for missing params, outputs by name."""
    values = {**definition.default_params(), **kwargs}
    return definition.normalise_result(definition.fn(ctx, **values))


def tiny_vae(seed: int = 0, mid_attention: bool = True, blocks: int = 4, **config: Any) -> Any:
    """An AutoencoderKL with SD's structure at toy width: 2**(blocks-1) pixels per latent cell."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(8, 16, 16, 16)[:blocks], layers_per_block=1, norm_num_groups=4, sample_size=32,
        mid_block_add_attention=mid_attention, scaling_factor=0.18215, **config,
    )
    return vae.eval().requires_grad_(False)


def vae_handle(vae: Any, shift_factor: float = 0.0) -> Any:
    from nodes.sd.handles import VaeHandle

    return VaeHandle(vae=vae, family="sd15", scaling_factor=vae.config.scaling_factor, shift_factor=shift_factor)
