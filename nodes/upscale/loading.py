"""Opening upscale model files: the state dict is read by us (safetensors, or a pickle with ``weights_only=True``:
spandrel's own file loader would run TorchScript from .pt files and unpickle more than tensors), then spandrel
recognises the architecture from the keys and shapes and builds the network.

Every failure is an :class:`UpscaleModelError` whose message says what the file is instead, when that can be
told from its keys (a Stable Diffusion checkpoint, a LoRA, a VAE, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UPSCALE_EXTENSIONS = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


class UpscaleModelError(ValueError):
    """A file that cannot be used as an upscale model; the message is for the user."""


@dataclass(frozen=True, eq=False)
class UpscaleModel:
    """Socket UPSCALE_MODEL: a spandrel ``ImageModelDescriptor`` and the file it came from."""

    descriptor: Any
    name: str

    @property
    def scale(self) -> int:
        return int(self.descriptor.scale)

    @property
    def architecture(self) -> str:
        return str(self.descriptor.architecture.name)

    @property
    def module(self) -> Any:
        return self.descriptor.model

    def cache_nbytes(self) -> int:
        from nodegraph.runtime import module_nbytes

        return module_nbytes(self.descriptor.model)


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file, or of a pickle read with ``weights_only=True``."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise UpscaleModelError(f"{path.name} is not a readable safetensors file: {exc}") from None
    import pickle

    import torch

    with open(path, "rb") as handle:
        head = handle.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch.save's zip, or a bare pickle
        raise UpscaleModelError(f"{path.name} is not a readable PyTorch weights file (neither a torch.save archive "
                                "nor a pickle)")
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UpscaleModelError(
            f"{path.name} holds Python objects besides tensors, which are not loaded (they could run code): "
            f"convert it to .safetensors. ({str(exc).splitlines()[0]})"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise UpscaleModelError(f"{path.name} is not a readable PyTorch weights file: {exc}") from None
    if not isinstance(data, Mapping):
        raise UpscaleModelError(f"{path.name} holds a {type(data).__name__}, not a dict of weights")
    return dict(data)


def _looks_like(keys: list[str]) -> str | None:
    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if has("model.diffusion_model.") or has("conditioner.embedders."):
        return "a Stable Diffusion checkpoint (it belongs in checkpoints/)"
    if has("lora_unet_") or any("lora_down" in k or ".lora_A." in k for k in keys):
        return "a LoRA (it belongs in loras/)"
    if has("encoder.down.") or has("encoder.down_blocks.") or has("first_stage_model."):
        return "a VAE (it belongs in vae/)"
    if has("control_model.") or has("controlnet_cond_embedding."):
        return "a ControlNet (it belongs in controlnet/)"
    if has("down_blocks.") and has("conv_in."):
        return "a diffusers UNet"
    return None


def load_upscale_model(path: Path) -> UpscaleModel:
    """Read ``path`` and let spandrel build the network; raises :class:`UpscaleModelError`."""
    import torch

    from nodes.upscale.spandrel_import import import_spandrel

    spandrel = import_spandrel()
    ImageModelDescriptor, ModelLoader = spandrel.ImageModelDescriptor, spandrel.ModelLoader
    UnsupportedModelError, canonicalize_state_dict = spandrel.UnsupportedModelError, spandrel.canonicalize_state_dict

    if path.is_dir():
        raise UpscaleModelError(f"{path.name} is a folder: an upscale model is one file (.safetensors or .pth)")
    if path.suffix.lower() not in UPSCALE_EXTENSIONS:
        raise UpscaleModelError(f"{path.name}: expected a {', '.join(UPSCALE_EXTENSIONS)} file")
    state = canonicalize_state_dict(read_state_dict(path))
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UpscaleModelError(f"{path.name} holds no weights")
    try:
        descriptor = ModelLoader("cpu").load_from_state_dict(state)
    except UnsupportedModelError:
        what = _looks_like(list(tensors))
        hint = f": it looks like {what}" if what else ""
        raise UpscaleModelError(
            f"{path.name} is not an upscale model that spandrel recognises{hint}. Supported are ESRGAN, "
            "Real-ESRGAN, SwinIR, HAT, DAT, OmniSR, SPAN and the other architectures spandrel reads"
        ) from None
    except (KeyError, RuntimeError, ValueError, IndexError) as exc:  # keys of an architecture, shapes that do not fit
        raise UpscaleModelError(f"{path.name} looks like an upscale model but its weights do not fit: {exc}") from None
    if not isinstance(descriptor, ImageModelDescriptor):
        raise UpscaleModelError(
            f"{path.name} is a {descriptor.architecture.name} model for {descriptor.purpose.lower()}, not an image "
            "upscaler"
        )
    if descriptor.purpose == "FaceSR":
        raise UpscaleModelError(
            f"{path.name} is a face restoration model ({descriptor.architecture.name}): it works on aligned faces, "
            "not on whole images"
        )
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise UpscaleModelError(
            f"{path.name} takes {descriptor.input_channels} and gives {descriptor.output_channels} channels: "
            "only RGB upscalers are supported"
        )
    descriptor.model.eval().requires_grad_(False)
    return UpscaleModel(descriptor, path.name)
