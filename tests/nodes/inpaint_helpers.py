"""Files for the inpainting tests: tiny SD1.5 / SDXL checkpoints with ordinary (4-channel) and inpainting
(9-channel) UNets, written the ways real models are shared (original single files, and diffusers folders written
by ``save_pretrained``), the diffusers config folders ``from_single_file`` reads them with, and input images and
masks as PNG files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 32  # pixels: 4x4 latent cells
CHECKPOINTS = {
    ("sd15", 4): "tiny_sd15.safetensors",
    ("sd15", 9): "tiny_sd15_inpainting.safetensors",
    ("sdxl", 4): "tiny_sdxl.safetensors",
    ("sdxl", 9): "tiny_sdxl_inpainting.safetensors",
}
FOLDER_9 = "tiny-sd15-inpainting"  # a diffusers folder of the 9-channel SD1.5 model
SEEDS = {("sd15", 4): 0, ("sd15", 9): 3, ("sdxl", 4): 0, ("sdxl", 9): 4}


def config_dir(root: Path, family: str, in_channels: int) -> Path:
    """A diffusers config folder (no weights) laid out as the real model repository, describing the tiny model,
    for ``from_single_file``."""
    from tests.fixtures.tiny_sd import tiny_configs, write_reference_folder

    parent = root / f"{family}-{in_channels}-config"
    if not parent.is_dir():
        parent.mkdir()
        write_reference_folder(parent, family, tiny_configs(family, wild=True, unet_in_channels=in_channels))
    return next(p for p in parent.iterdir() if p.is_dir())


def write_models(root: Path) -> Path:
    """``root/checkpoints`` with the four single files and the 9-channel SD1.5 diffusers folder."""
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers.schedulers import PNDMScheduler

    from tests.fixtures.tiny_sd import tiny_components, write_tiny_checkpoint

    folder = root / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    for (family, channels), name in CHECKPOINTS.items():
        # "wild": no configs in the file's metadata, as downloaded checkpoints come: the architecture (an
        # inpainting UNet's 9 input channels included) is inferred from the tensor shapes
        write_tiny_checkpoint(folder / name, family, SEEDS[(family, channels)], wild=True, unet_in_channels=channels)
    model = tiny_components("sd15", seed=7, unet_in_channels=9)
    StableDiffusionInpaintPipeline(
        vae=model.vae, text_encoder=model.text_encoders[0], tokenizer=model.tokenizers[0], unet=model.unet,
        scheduler=PNDMScheduler.from_config(model.scheduler_config), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder / FOLDER_9)
    return root


def write_image(path: Path, seed: int = 3) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).save(path)
    return path


def write_binary_mask(path: Path) -> Path:
    """White (repaint) over a 12x16 rectangle that is not aligned to the 8-pixel latent cells."""
    from PIL import Image

    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[6:18, 10:26] = 255
    Image.fromarray(mask, "L").save(path)
    return path


def write_soft_mask(path: Path) -> Path:
    """A horizontal ramp 0..255 with a few full and empty columns: every latent cell gets another value."""
    from PIL import Image

    ramp = np.clip(np.linspace(-40, 300, SIZE), 0, 255).astype(np.uint8)
    Image.fromarray(np.tile(ramp, (SIZE, 1)), "L").save(path)
    return path


_SHARED: dict[str, dict[str, Path]] = {}


def shared_files(tmp_path_factory) -> dict[str, Path]:
    """The models and images above, written once per test session (several test modules use them)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _SHARED:
        root = tmp_path_factory.mktemp("inpaint")
        write_models(root / "models")
        _SHARED[key] = {
            "root": root,
            "models": root / "models",
            "image": write_image(root / "image.png"),
            "binary": write_binary_mask(root / "binary_mask.png"),
            "soft": write_soft_mask(root / "soft_mask.png"),
        }
    return _SHARED[key]
