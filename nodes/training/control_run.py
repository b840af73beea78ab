"""What Train ControlNet / Train T2I-Adapter do when they run: check the inputs before anything slow, build
or copy the model to train, run :class:`~nodes.training.control_training.ControlTrainer` with progress,
validation previews, checkpoints and cancel-saves, write the result into the user's model folder and read it
back through the ordinary loader.

:func:`build_control` and :func:`fit` are the same code path for the demo trainer (nodes/demo/train_control.py),
which feeds them its procedural dataset instead of a folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nodegraph.context import NodeContext
from nodegraph.errors import Cancelled, NodeInputError
from nodes.training.base_checks import check_handles, check_resolution, result_name, user_model_folder
from nodes.training.control_models import ControlBuildError
from nodes.training.control_training import ControlSettings, ControlTrainer

FOLDER_KIND = {"controlnet": "controlnet", "t2i_adapter": "t2i_adapter"}
WHAT = {"controlnet": "ControlNet", "t2i_adapter": "T2I-Adapter"}


@dataclass
class Validation:
    prompts: list[str]
    conditions: torch.Tensor  # IMAGE [N, R, R, 3]
    every: int
    steps: int
    cfg: float
    seed: int


# ------------------------------------------------------------------------------------------ model to train


def build_control(kind: str, model: Any, vae: Any, start: Any, *, seed: int, embedding_channels: tuple[int, ...] = (),
                  adapter_type: str = "auto") -> Any:
    """The float32 module to train: a copy of ``start`` (a loaded CONTROL_NET / T2I_ADAPTER handle) or a new one
    built for ``model``'s UNet."""
    import copy

    from nodes.training import control_models as cm

    factor = cm.vae_factor(vae.vae)
    if start is not None:
        module = copy.deepcopy(start.model if kind == "controlnet" else start.adapter)
        module = module.float().train().requires_grad_(True)
    elif kind == "controlnet":
        module = cm.new_controlnet(model.unet, embedding_channels or cm.DEFAULT_EMBEDDING_CHANNELS, factor, seed)
    else:
        if adapter_type == "auto":
            adapter_type = "full_adapter_xl" if model.family == "sdxl" else "full_adapter"
        module = cm.new_adapter(cm.adapter_config(model.unet, model.family, adapter_type, factor), seed)
    if kind == "t2i_adapter":
        added = None
        if model.family == "sdxl":
            pooled = model.unet.add_embedding.linear_1.in_features - 6 * model.unet.config.addition_time_embed_dim
            added = {"text_embeds": torch.zeros(1, pooled), "time_ids": torch.zeros(1, 6)}
        cm.check_adapter_fits(module, model.unet, factor, added)
    return module


# --------------------------------------------------------------------------------------------- training


def fit(trainer: ControlTrainer, *, on_step: Callable[[int, float], None] | None = None,
        validation: Validation | None = None, on_validation: Callable[[int, torch.Tensor], None] | None = None,
        checkpoint_every: int = 0, on_checkpoint: Callable[[int, Any], None] | None = None) -> Any:
    """Train to the end; validate every ``validation.every`` steps and at the end; hand a checkpoint (the
    exported module) to ``on_checkpoint`` every ``checkpoint_every`` steps. Returns the exported module.
    A :class:`Cancelled` raised by ``on_step`` propagates (the caller saves ``trainer.export()``)."""
    total = trainer.settings.steps
    with trainer:
        while trainer.steps_done < total:
            report = trainer.step()
            if on_step is not None:
                on_step(report.step, report.loss)
            last = report.step == total
            if validation is not None and on_validation is not None and (
                    last or (validation.every and report.step % validation.every == 0)):
                images = trainer.validate(validation.prompts, validation.conditions, seed=validation.seed,
                                          steps=validation.steps, cfg=validation.cfg)
                on_validation(report.step, images)
            if checkpoint_every and on_checkpoint is not None and report.step % checkpoint_every == 0 and not last:
                on_checkpoint(report.step, trainer.export())
        return trainer.export()


# ------------------------------------------------------------------------------------------------- node


def _precision(ctx: NodeContext, choice: str) -> torch.dtype:
    device = str(ctx.runtime.device)
    if choice == "auto":
        return ctx.runtime.dtype
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[choice]
    if dtype == torch.float16 and not device.startswith("cuda"):
        raise NodeInputError(f"fp16 training needs a CUDA GPU (this run is on {device}); choose bf16 or fp32",
                             "precision")
    return dtype


def _embedding_channels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        values = ()
    if not values or any(v < 1 or v > 4096 for v in values):
        raise NodeInputError(f"embedding channels {text!r}: expected widths separated by commas, e.g. 16,32,96,256",
                             "embedding_channels")
    return values


def _dataset(ctx: NodeContext, text: str) -> Any:
    from nodes.training.control_dataset import DatasetError, FolderDataset, list_dataset

    try:
        listing = list_dataset(text)
    except (DatasetError, OSError) as exc:
        raise NodeInputError(f"dataset: {exc}", "dataset") from None
    for note in listing.notes[:10]:
        ctx.warn(f"dataset: {note}")
    if len(listing.notes) > 10:
        ctx.warn(f"dataset: {len(listing.notes) - 10} more examples left out")
    empty = sum(1 for e in listing.examples if not e.caption)
    if empty:
        ctx.log(f"dataset: {empty} of {len(listing.examples)} examples have no caption (trained with the empty one)")
    ctx.log(f"dataset: {len(listing.examples)} examples ({listing.layout} layout) from {listing.root}")
    return FolderDataset(listing)


def _validation(ctx: NodeContext, dataset: Any, images: Any, params: dict[str, Any]) -> Validation | None:
    from nodes.image.convert import check_image
    from nodes.image.resize import center_crop_to_aspect, resize_nchw

    res = params["resolution"]
    prompts = [line.strip() for line in params["validation_prompts"].splitlines() if line.strip()]
    if images is not None:
        images = check_image(images, "validation_images")
        x = images.permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (res, res):
            x = resize_nchw(center_crop_to_aspect(x, res, res), res, res, "bilinear").clamp(0, 1)
        conditions = x.permute(0, 2, 3, 1).contiguous()
        if not prompts:
            prompts = [dataset.caption(i % len(dataset)) for i in range(conditions.shape[0])]
    else:
        count = min(params["validation_count"], len(dataset))
        if count == 0:
            return None
        conditions = torch.stack([dataset.pixels(i, res)[1] for i in range(count)]).permute(0, 2, 3, 1).contiguous()
        if not prompts:
            prompts = [dataset.caption(i) for i in range(count)]
    prompts = [prompts[i % len(prompts)] for i in range(conditions.shape[0])]
    return Validation(prompts, conditions, params["validation_every"], params["validation_steps"],
                      params["validation_cfg"], params["seed"])


def _grid(conditions: torch.Tensor, images: torch.Tensor) -> Any:
    """Preview: each condition above its sample."""
    from PIL import Image

    from nodes.image.convert import to_uint8

    top, bottom = to_uint8(conditions), to_uint8(images)
    n, h, w = bottom.shape[0], bottom.shape[1], bottom.shape[2]
    sheet = Image.new("RGB", (n * w, 2 * h))
    for i in range(n):
        sheet.paste(Image.fromarray(top[i]), (i * w, 0))
        sheet.paste(Image.fromarray(bottom[i]), (i * w, h))
    return sheet


def run_training(ctx: NodeContext, kind: str, model: Any, clip: Any, vae: Any, start: Any, validation_images: Any,
                 params: dict[str, Any]) -> dict[str, Any]:
    from nodes.training.control_models import free_target, save_control
    from nodes.training.image_folder import save_png

    check_handles(model, clip, vae)
    check_resolution(model, vae, params["resolution"])
    name = result_name(params["name"], "name", (".safetensors",))
    single_file = params["save_as"] == "single file"
    dtype = _precision(ctx, params["precision"])
    what = WHAT[kind]
    start_field = "control_net" if kind == "controlnet" else "t2i_adapter"
    if start is not None:
        module_attr = "model" if kind == "controlnet" else "adapter"
        if not hasattr(start, module_attr):
            raise NodeInputError(f"expected a {start_field.upper()} from its loader, found {type(start).__name__}",
                                 start_field)
        if start.family != model.family:
            raise NodeInputError(f"the {what} to continue is for {start.family} but the model is {model.family}",
                                 start_field)
    if kind == "t2i_adapter" and single_file and params.get("adapter_type") == "light_adapter":
        raise NodeInputError("a light adapter has no single-file layout: save it as a diffusers folder", "save_as")
    dataset = _dataset(ctx, params["dataset"])
    try:
        module = build_control(kind, model, vae, start, seed=params["seed"],
                               embedding_channels=_embedding_channels(params.get("embedding_channels", "16,32,96,256"))
                               if kind == "controlnet" else (),
                               adapter_type=params.get("adapter_type", "auto"))
    except ControlBuildError as exc:
        raise NodeInputError(str(exc), "embedding_channels" if kind == "controlnet" else "adapter_type") from None
    validation = _validation(ctx, dataset, validation_images, params)
    folder = user_model_folder(ctx, FOLDER_KIND[kind], "name")
    work = Path(ctx.output_dir) / f"{name}_training"
    settings = ControlSettings(
        kind=kind, learning_rate=params["learning_rate"], steps=params["steps"], batch_size=params["batch_size"],
        gradient_accumulation=params["gradient_accumulation"], resolution=params["resolution"], seed=params["seed"],
        empty_prompt_share=params["empty_prompt_share"], gradient_checkpointing=params["gradient_checkpointing"],
        cache_latents=params["cache"])
    runtime = ctx.runtime
    trainer = ControlTrainer(model, clip, vae, module, dataset, settings, runtime.device, dtype, runtime.residency)
    info = {"nodegraph.training": f"{kind} steps={settings.steps} lr={settings.learning_rate} seed={settings.seed}"}

    def save(trained: Any) -> tuple[Path, str]:
        target, saved_name = free_target(folder, name, single_file)
        if saved_name not in (name, f"{name}.safetensors"):
            ctx.log(f"{name} exists in {folder}: saving as {saved_name}")
        return save_control(trained, target, single_file, info), saved_name

    warned = []

    def on_step(step: int, loss: float) -> None:
        if trainer.cache_full and not warned:
            warned.append(True)
            ctx.log("the latent cache is full (2 GiB): the remaining examples are encoded afresh each time they are used")
        ctx.progress(step, settings.steps, message=f"loss {loss:.4f}")

    def on_validation(step: int, images: torch.Tensor) -> None:
        (work / "validation").mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            save_png(image, work / "validation" / f"step_{step:06d}_{i}.png",
                     {"nodegraph.prompt": validation.prompts[i], "nodegraph.step": str(step)})
        ctx.progress(step, settings.steps, preview=_grid(validation.conditions, images),
                     message=f"validation samples at step {step} saved in {work / 'validation'}")

    def on_checkpoint(step: int, trained: Any) -> None:
        target = work / f"checkpoint-{step:06d}"
        if not target.exists():
            save_control(trained, target, False, info)
            ctx.log(f"checkpoint at step {step}: {target}")

    started = time.perf_counter()
    try:
        trained = fit(trainer, on_step=on_step, validation=validation, on_validation=on_validation,
                      checkpoint_every=params["checkpoint_every"], on_checkpoint=on_checkpoint)
    except Cancelled:
        if trainer.steps_done:  # keep what was learnt
            path, _ = save(trainer.export())
            ctx.warn(f"cancelled after {trainer.steps_done} of {settings.steps} steps; the {what} trained so far is "
                     f"saved as {path}")
        raise
    path, saved_name = save(trained)
    tail = trainer.losses[-20:]
    ctx.log(f"trained {trainer.steps_done} steps in {time.perf_counter() - started:.1f} s (mean loss of the last "
            f"{len(tail)}: {sum(tail) / len(tail):.4f}); saved {path}")
    return {start_field: _load_back(kind, path, ctx, model), "name": saved_name}


def _load_back(kind: str, path: Path, ctx: NodeContext, model: Any) -> Any:
    """The saved result read by the ordinary loader, as Load ControlNet / Load T2I-Adapter would read it."""
    if kind == "controlnet":
        from nodes.adapters.controlnet import load_controlnet

        return load_controlnet(path, ctx.runtime.dtype, model.unet.config)
    from nodes.adapters.t2i_adapter import load_adapter

    return load_adapter(path, ctx.runtime.dtype)
