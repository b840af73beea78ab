"""Sample the demo models through diffusers' own pipelines (txt2img, ControlNet, T2I-Adapter) and score the
results by measurement. Used by the trainer's periodic evaluation, benchmarks/quality.py and the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nodes.demo import measure, models, paths
from nodes.demo.conditions import masks_to_condition

# Classifier-free guidance scale for these models: measured with benchmarks/quality.py on the shipped files
# (120 images per row), CFG 3 scored best overall; 2 lost held-out colour, 6 and 9 lost colour and shape
# (over-saturated latents the small VAE decodes badly).
DEFAULT_CFG = 3.0


def _scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(models.SCHEDULER_CONFIG)


def load_components(folder: Path) -> dict:
    """vae / text_encoder / unet from a folder of diffusers components (the trainer's --out)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(folder)
    return {
        "vae": AutoencoderKL.from_pretrained(folder / "vae").eval(),
        "text_encoder": CLIPTextModel.from_pretrained(folder / "text_encoder").eval(),
        "unet": UNet2DConditionModel.from_pretrained(folder / "unet").eval(),
        "tokenizer": models.load_tokenizer(),
        "scheduler": _scheduler(),
    }


def load_shipped() -> tuple[dict, dict[str, Path]]:
    """The demo models shipped in nodes/models, loaded through the product's checkpoint loader
    (nodes/sd/single_file.py: the single file, or the diffusers folder where no single file was written),
    in float32. Returns the pipeline components and the ControlNet / T2I-Adapter folders."""
    from nodes.sd.single_file import load_model

    path = paths.CHECKPOINT_FILE if paths.CHECKPOINT_FILE.exists() else paths.CHECKPOINT_FOLDER
    if not path.exists():
        raise FileNotFoundError(f"no shipped demo model at {paths.CHECKPOINT_FILE} or {paths.CHECKPOINT_FOLDER}")
    loaded = load_model(path, dtype=torch.float32)
    parts = {"vae": loaded.vae.float(), "text_encoder": loaded.text_encoders[0].float(), "unet": loaded.unet,
             "tokenizer": loaded.tokenizers[0]}
    for module in (parts["vae"], parts["text_encoder"], parts["unet"]):
        module.eval()
    parts["scheduler"] = _scheduler()
    return parts, {"controlnet": paths.CONTROLNET_DIR, "adapter": paths.ADAPTER_DIR}


def load_pipeline(folder: Path | None, components: dict | None = None):
    from diffusers import StableDiffusionPipeline

    parts = components or load_components(folder)
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_control_pipeline(folder: Path | None, kind: str, components: dict | None = None,
                          control_dir: Path | None = None):
    """A StableDiffusionControlNetPipeline (kind "controlnet") or StableDiffusionAdapterPipeline ("adapter"),
    from the trainer's folder or from given components and control model folder."""
    parts = components or load_components(folder)
    control_dir = Path(control_dir) if control_dir else Path(folder) / kind
    if kind == "controlnet":
        from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

        model = ControlNetModel.from_pretrained(control_dir).eval()
        pipe = StableDiffusionControlNetPipeline(**parts, controlnet=model, safety_checker=None,
                                                 feature_extractor=None, requires_safety_checker=False)
    elif kind == "adapter":
        from diffusers import StableDiffusionAdapterPipeline, T2IAdapter

        model = T2IAdapter.from_pretrained(control_dir).eval()
        pipe = StableDiffusionAdapterPipeline(**parts, adapter=model, safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)
    else:
        raise ValueError(f"unknown control kind {kind!r}; expected 'controlnet' or 'adapter'")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generators(seed: int, count: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(count)]


@torch.no_grad()
def txt2img(pipe, prompts: list[str], seed: int = 0, steps: int = 20, cfg: float = DEFAULT_CFG) -> np.ndarray:
    """float images [N, 64, 64, 3] in 0..1; sample i uses a CPU generator seeded ``seed + i``."""
    return pipe(prompts, height=64, width=64, num_inference_steps=steps, guidance_scale=cfg,
                generator=_generators(seed, len(prompts)), output_type="np").images


@torch.no_grad()
def controlled(pipe, prompts: list[str], masks: np.ndarray, seed: int = 0, steps: int = 20, cfg: float = DEFAULT_CFG,
               scale: float = 1.0) -> np.ndarray:
    """Sample with a ControlNet / T2I-Adapter pipeline, conditioned on shape masks [N, 64, 64] in 0..1."""
    cond = masks_to_condition(masks)
    kwargs = dict(height=64, width=64, num_inference_steps=steps, guidance_scale=cfg,
                  generator=_generators(seed, len(prompts)), output_type="np")
    if type(pipe).__name__.startswith("StableDiffusionControlNet"):
        out = pipe(prompts, image=cond, controlnet_conditioning_scale=scale, **kwargs)
    else:
        out = pipe(prompts, image=cond, adapter_conditioning_scale=scale, **kwargs)
    return np.asarray(out.images)


def accuracy(images: np.ndarray, labels: list[tuple[str, str, str]]) -> np.ndarray:
    """Share of images whose measured (colour, shape, background) match their label, per attribute."""
    hits = np.asarray([measure.measure(img).matches(*lab) for img, lab in zip(images, labels)], dtype=np.float64)
    return hits.mean(axis=0)


def mean_iou(images: np.ndarray, masks: np.ndarray) -> float:
    return float(np.mean([measure.iou(measure.measure(img).mask, m > 0.5) for img, m in zip(images, masks)]))
