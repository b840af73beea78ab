"""T2I-Adapter: loading (diffusers folders, original TencentARC single files) and the residual source.

An adapter turns the condition image (pixel-unshuffled to latent size) into one feature map per UNet level,
added inside the UNet's down blocks (diffusers' ``down_intrablock_additional_residuals``). The features
depend on the image alone, so :class:`AdapterSource` computes them once per generation (the first model
call; kept for later calls with the same size, batch, device and dtype) instead of once per step.
Several adapters on one conditioning entry add up as ``sum(weight_i * features_i)``, diffusers'
``MultiAdapter`` order and arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nodegraph.model_probe import folder_class
from nodes.adapters.controlnet import LATENT_SCALE, check_control_fits, control_image_batch
from nodes.sampling.denoiser import CondBatch, Residuals, StepInfo

ADAPTER_TYPES = {"full_adapter": "sd15", "full_adapter_xl": "sdxl", "light_adapter": "sd15"}


class AdapterLoadError(ValueError):
    """A file or folder that is no T2I-Adapter this loader understands."""


@dataclass(frozen=True, eq=False)
class AdapterHandle:
    """Socket T2I_ADAPTER: a diffusers T2IAdapter (eval, no grad, CPU) and the family it fits."""

    adapter: Any
    family: str
    name: str

    @property
    def kind(self) -> str:
        return str(self.adapter.config.adapter_type)

    @property
    def in_channels(self) -> int:
        return int(self.adapter.config.in_channels)

    def cache_nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.adapter.parameters())


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    from nodes.weight_files import read_weights

    try:
        state, _ = read_weights(path)  # bounded, code never run
    except ValueError as exc:
        raise AdapterLoadError(str(exc)) from None
    return state


def original_to_diffusers(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """TencentARC's ``Adapter`` layout (``conv_in``, flat ``body.<k>.{in_conv,block1,block2}``) -> diffusers'
    ``T2IAdapter`` state dict and config. Body block k is level ``k // num_res_blocks``, resnet
    ``k % num_res_blocks``; a level that changes width carries ``in_conv`` on its first block."""
    if "conv_in.weight" not in state or not any(k.startswith("body.") for k in state):
        example = ", ".join(list(state)[:3])
        raise AdapterLoadError(f"no T2I-Adapter weights (expected conv_in.* and body.* keys; found keys like {example})")
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("body.")})
    starts = [b for b in blocks if f"body.{b}.in_conv.weight" in state]
    # res blocks per level: the distance between width changes (level 0 has no in_conv; the first change is level 1)
    per_level = starts[0] if starts else len(blocks)
    levels = len(blocks) // per_level
    conv_in = state["conv_in.weight"]
    unshuffled = int(conv_in.shape[1])
    factor = 16 if unshuffled % 256 == 0 and unshuffled // 256 in (1, 3) else 8
    channels = [int(state[f"body.{level * per_level}.block1.weight"].shape[0]) for level in range(levels)]
    out: dict[str, torch.Tensor] = {f"adapter.conv_in.{p}": state[f"conv_in.{p}"] for p in ("weight", "bias")}
    for key, tensor in state.items():
        if not key.startswith("body."):
            continue
        _, index, rest = key.split(".", 2)
        level, resnet = divmod(int(index), per_level)
        if rest.startswith("in_conv."):
            out[f"adapter.body.{level}.{rest}"] = tensor
        else:
            out[f"adapter.body.{level}.resnets.{resnet}.{rest}"] = tensor
    config = {
        "in_channels": unshuffled // (factor * factor),
        "channels": channels,
        "num_res_blocks": per_level,
        "downscale_factor": factor,
        "adapter_type": "full_adapter_xl" if factor == 16 else "full_adapter",
    }
    return out, config


def check_folder_class(path: Path, expected: str, label: str, use_instead: str = "") -> None:
    """Refuse a diffusers folder of another model class: diffusers would load its config into the wrong class
    and fill every weight it does not find with random numbers."""
    found = folder_class(path)
    if found != expected:
        hint = f": load it with {use_instead}" if use_instead else ""
        raise AdapterLoadError(f"{path.name} is not a {label}: its config.json declares "
                               f"{found or 'no model class'}, not {expected}{hint}")


def load_adapter(path: Path, dtype: Any = None) -> AdapterHandle:
    """A T2I-Adapter from a diffusers folder (config.json + weights) or an original single file."""
    from diffusers import T2IAdapter

    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AdapterLoadError(f"{path.name} is a folder without a diffusers config.json")
        check_folder_class(path, "T2IAdapter", "T2I-Adapter", "Load ControlNet" if "ControlNet" in str(
            folder_class(path)) else "")
        adapter = T2IAdapter.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
    else:
        state, config = original_to_diffusers(_read_state(path))
        adapter = T2IAdapter(**config)
        missing, unexpected = adapter.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise AdapterLoadError(
                f"{path.name}: the weights do not fit a {config['adapter_type']} T2I-Adapter "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        if dtype is not None:
            adapter = adapter.to(dtype)
    adapter.eval().requires_grad_(False)
    kind = str(adapter.config.adapter_type)
    if kind not in ADAPTER_TYPES:
        raise AdapterLoadError(f"{path.name}: adapter type {kind!r} is not supported ({', '.join(ADAPTER_TYPES)})")
    return AdapterHandle(adapter, ADAPTER_TYPES[kind], path.name)


def condition_pixels(image: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """IMAGE [B, H, W, 3] -> [B, channels, height, width] (one channel: the luminance, as diffusers' sketch
    adapters take a grey image)."""
    pixels = control_image_batch(image, image.shape[0], height, width)
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
        return (pixels * weights).sum(1, keepdim=True)
    return pixels


@dataclass(eq=False)
class AdapterSource:
    """One adapter, its condition image and weight (a :class:`ResidualSource`)."""

    handle: AdapterHandle
    image: torch.Tensor  # IMAGE [B, H, W, 3], 0..1
    weight: float = 1.0
    _features: dict = field(default_factory=dict, repr=False)
    runs: int = 0  # how many times the adapter itself ran (the tests check once per generation)

    def prepare(self, ctx: Any, model: Any, latent_shape: tuple[int, ...]) -> None:
        check_control_fits(ctx, model, f"T2I-Adapter {self.handle.name}", self.handle.family, self.image, latent_shape)
        ctx.runtime.residency.load(self.handle.adapter)

    def features(self, height: int, width: int, device: Any, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """``weight * adapter(image)``, computed once for a size, device and dtype."""
        key = (height, width, str(device), dtype)
        cached = self._features.get(key)
        if cached is None:
            adapter = self.handle.adapter
            pixels = condition_pixels(self.image, self.handle.in_channels, height, width)
            weights_dtype = next(adapter.parameters()).dtype
            with torch.inference_mode():
                raw = adapter(pixels.to(device, weights_dtype))
            self.runs += 1
            cached = tuple(self.weight * f.to(dtype) for f in raw)
            self._features.clear()
            self._features[key] = cached
        return cached

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> Residuals:
        if self.weight == 0.0:
            return Residuals()
        feats = self.features(x.shape[-2] * LATENT_SCALE, x.shape[-1] * LATENT_SCALE, x.device, x.dtype)
        repeat = x.shape[0] // feats[0].shape[0]
        # the batch holds the negative then the positive rows: torch.cat as diffusers does it, which also keeps the
        # features' memory format (channels-last from the adapter's convolutions) and so the UNet's kernels; and
        # fresh tensors, since the UNet may add into what it is given
        return Residuals(intrablock=tuple(torch.cat([f] * repeat, dim=0) for f in feats))
