"""ControlNet: loading (diffusers folders, original single files) and the residual source the denoiser calls.

A ControlNet is attached to conditioning entries as a :class:`ControlNetSource` (``extras["residuals"]``, see
:mod:`nodes.sampling.denoiser`). At each model call the source runs diffusers' ``ControlNetModel`` on the
same latents, timestep, text embeddings (and SDXL added conditions) the UNet sees, with the control image
repeated to the batch, and returns its down/mid residuals scaled by ``strength``; outside
``[start_percent, end_percent]`` of the steps it returns nothing (diffusers' ``control_guidance_start/end``:
step i of n is active unless ``i/n < start`` or ``(i+1)/n > end``). Several sources on one entry add up, in
order, as diffusers' ``MultiControlNetModel`` adds them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nodegraph.model_probe import folder_class
from nodes.sampling.denoiser import CondBatch, Residuals, StepInfo

LATENT_SCALE = 8  # pixels per latent cell (SD / SDXL VAE)
ORIGINAL_PREFIX = "control_model."


class ControlNetLoadError(ValueError):
    """A file or folder that is no ControlNet this loader understands."""


@dataclass(frozen=True, eq=False)
class ControlNetHandle:
    """Socket CONTROL_NET: a diffusers ControlNetModel (eval, no grad, CPU) and the family it fits."""

    model: Any
    family: str  # "sd15" | "sdxl"
    name: str

    @property
    def cross_attention_dim(self) -> int:
        return int(self.model.config.cross_attention_dim)

    def cache_nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


def family_of_config(config: Any) -> str:
    """SDXL ControlNets take SDXL's added text/time conditions; everything else here is SD1.5-shaped."""
    return "sdxl" if getattr(config, "addition_embed_type", None) == "text_time" else "sd15"


# --------------------------------------------------------------------------------------------- loading


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    from nodes.weight_files import read_weights

    try:
        state, _ = read_weights(path)  # bounded, code never run
    except ValueError as exc:
        raise ControlNetLoadError(str(exc)) from None
    return state


def _hint_channels(state: dict[str, torch.Tensor]) -> tuple[int, list[int]]:
    """(conditioning image channels, conditioning_embedding_out_channels) from ``input_hint_block``."""
    convs = sorted(
        int(k.split(".")[1]) for k in state if k.startswith("input_hint_block.") and k.endswith(".weight")
    )
    channels = [int(state[f"input_hint_block.{convs[0]}.weight"].shape[0])]
    blocks = convs[1:-1]
    channels += [int(state[f"input_hint_block.{i}.weight"].shape[0]) for i in blocks[1::2]]
    return int(state[f"input_hint_block.{convs[0]}.weight"].shape[1]), channels


def original_config(state: dict[str, torch.Tensor], reference_unet_config: Any = None) -> tuple[dict[str, Any], str]:
    """The ControlNetModel config of an original-layout state dict (prefix removed), and its family.

    The UNet part is inferred from tensor shapes by the checkpoint loader's own inference; what shapes cannot
    tell (SDXL's size of the sinusoidal time-id embedding) comes from ``reference_unet_config`` when given,
    else from the family's shipped config."""
    from diffusers import ControlNetModel

    from nodes.sd.architecture import infer_unet_config
    from nodes.sd.convert_to_ldm import UNET_PREFIX

    family = "sdxl" if "label_emb.0.0.weight" in state else "sd15"
    shapes = {UNET_PREFIX + k: tuple(v.shape) for k, v in state.items()}
    first = shapes[UNET_PREFIX + "input_blocks.0.0.weight"]
    shapes[UNET_PREFIX + "out.2.weight"] = (first[1], first[0], 3, 3)  # the UNet's output conv: a ControlNet has none
    pooled = None
    if family == "sdxl" and reference_unet_config is not None:
        ids = getattr(reference_unet_config, "addition_time_embed_dim", None)
        total = shapes[UNET_PREFIX + "label_emb.0.0.weight"][1]
        pooled = total - 6 * ids if ids else None
    config = infer_unet_config(shapes, family, pooled_dim=pooled)
    conditioning_channels, embedding_channels = _hint_channels(state)
    config.update(conditioning_channels=conditioning_channels, conditioning_embedding_out_channels=embedding_channels)
    accepted = set(inspect.signature(ControlNetModel.__init__).parameters) - {"self"}
    return {k: v for k, v in config.items() if k in accepted}, family


def load_controlnet(path: Path, dtype: Any = None, reference_unet_config: Any = None) -> ControlNetHandle:
    """A ControlNet from a diffusers folder (config.json + weights) or an original single file."""
    from diffusers import ControlNetModel

    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ControlNetLoadError(f"{path.name} is a folder without a diffusers config.json")
        found = folder_class(path)
        if found != "ControlNetModel":  # diffusers would fill what it does not find with random weights
            hint = ": load it with Load T2I-Adapter" if found == "T2IAdapter" else ""
            raise ControlNetLoadError(f"{path.name} is not a ControlNet: its config.json declares "
                                      f"{found or 'no model class'}, not ControlNetModel{hint}")
        model = ControlNetModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
    else:
        from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

        state = _read_state(path)
        state = {k.removeprefix(ORIGINAL_PREFIX): v for k, v in state.items()}
        if "input_hint_block.0.weight" in state:
            config, _ = original_config(state, reference_unet_config)
            converted = convert_controlnet_checkpoint(state, config)
            if config.get("addition_embed_type") == "text_time":
                # diffusers' converter maps label_emb for class embeddings only; SDXL uses it as add_embedding
                for i, j in ((1, 0), (2, 2)):
                    for leaf in ("weight", "bias"):
                        converted[f"add_embedding.linear_{i}.{leaf}"] = state[f"label_emb.0.{j}.{leaf}"]
            state = converted
        elif "controlnet_cond_embedding.conv_in.weight" not in state:
            example = ", ".join(list(state)[:3])
            raise ControlNetLoadError(
                f"{path.name} is no ControlNet (no input_hint_block / controlnet_cond_embedding weights; keys like {example})"
            )
        else:
            raise ControlNetLoadError(
                f"{path.name} holds diffusers-layout ControlNet weights without a config: put it in a folder with "
                "its config.json (diffusers folder layout)"
            )
        from accelerate import init_empty_weights

        with init_empty_weights():
            model = ControlNetModel.from_config(config)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:
            raise ControlNetLoadError(
                f"{path.name}: the weights do not fit the inferred ControlNet architecture "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        if dtype is not None:
            model = model.to(dtype)
    model.eval().requires_grad_(False)
    return ControlNetHandle(model, family_of_config(model.config), path.name)


# ----------------------------------------------------------------------------------------------- running


def active(step: StepInfo, start: float, end: float) -> bool:
    """diffusers' ``controlnet_keep``: step i of n runs unless i/n < start or (i+1)/n > end."""
    n = step.total or 1
    return not (step.index / n < start or (step.index + 1) / n > end)


def control_image_batch(image: torch.Tensor, batch: int, height: int, width: int) -> torch.Tensor:
    """IMAGE [B, H, W, 3] -> [batch, 3, height, width] (resized when needed, repeated to the batch)."""
    from nodes.image.resize import resize_nchw

    pixels = image.permute(0, 3, 1, 2)
    if pixels.shape[-2:] != (height, width):
        pixels = resize_nchw(pixels, height, width, "bilinear").clamp(0.0, 1.0)
    if pixels.shape[0] == batch:
        return pixels
    if batch % pixels.shape[0] == 0:  # CFG doubles the batch: [neg..., pos...] each with the images in order
        return pixels.repeat(batch // pixels.shape[0], 1, 1, 1)
    return pixels[:1].repeat(batch, 1, 1, 1)


@dataclass(eq=False)
class ControlNetSource:
    """A ControlNet applied with one image, strength and step window (a :class:`ResidualSource`)."""

    control: ControlNetHandle
    image: torch.Tensor  # IMAGE [B, H, W, 3], 0..1
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0
    _prepared: dict = field(default_factory=dict, repr=False)

    def prepare(self, ctx: Any, model: Any, latent_shape: tuple[int, ...]) -> None:
        """Called by the sampler before sampling: checks the family, moves the ControlNet to the device and
        notes a resize of the control image."""
        check_control_fits(ctx, model, f"ControlNet {self.control.name}", self.control.family, self.image, latent_shape)
        ctx.runtime.residency.load(self.control.model)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> Residuals:
        if self.strength == 0.0 or not active(step, self.start, self.end):
            return Residuals()
        model = self.control.model
        height, width = x.shape[-2] * LATENT_SCALE, x.shape[-1] * LATENT_SCALE
        key = (x.shape[0], height, width, x.device, x.dtype)
        image = self._prepared.get(key)
        if image is None:
            image = control_image_batch(self.image, x.shape[0], height, width).to(x.device, x.dtype)
            self._prepared.clear()
            self._prepared[key] = image
        weights_dtype = next(model.parameters()).dtype
        with torch.autocast(x.device.type, dtype=x.dtype, enabled=weights_dtype != x.dtype):
            down, mid = model(
                x, t, encoder_hidden_states=cond.embeds, controlnet_cond=image, conditioning_scale=self.strength,
                added_cond_kwargs=cond.added, return_dict=False,
            )
        return Residuals(down=tuple(d.to(x.dtype) for d in down), mid=mid.to(x.dtype))


def check_control_fits(ctx: Any, model: Any, what: str, family: str, image: torch.Tensor, latent_shape: tuple[int, ...]) -> None:
    """Refuse a control model of another family; note when the control image will be resized to the latent's
    size in pixels (ControlNet and T2I-Adapter alike)."""
    from nodes.sd.families import family_label

    if model.family != family:
        raise ControlNetMismatch(f"{what} is for {family_label(family)} but the model is {family_label(model.family)}")
    height, width = latent_shape[-2] * LATENT_SCALE, latent_shape[-1] * LATENT_SCALE
    if tuple(image.shape[1:3]) != (height, width):
        ctx.warn(f"control image {image.shape[2]}x{image.shape[1]} resized to {width}x{height} (the latent's size in "
                 f"pixels) for {what}")


class ControlNetMismatch(ValueError):
    """A ControlNet for another model family."""
