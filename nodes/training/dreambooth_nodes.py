"""The Train LoRA (DreamBooth) node. The work is in :mod:`nodes.training.dreambooth` (imported inside the node
function: it needs torch)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import Cancelled, NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Float, Int, Seed, String, Text
from nodegraph.types import CLIP, LORA, MODEL, STRING, VAE
from nodes.training.base_checks import check_handles, check_resolution, result_name, user_model_folder

_WORD = re.compile(r"[A-Za-z0-9_]+")


def _class_default_name(prompt: str) -> str:
    slug = "_".join(_WORD.findall(prompt.lower()))[:60]
    return slug or "class"


def _instance_resolver(ctx: NodeContext) -> Any:
    return lambda text: ctx.input_path(text, "instance_images", "instance image folder", folder=True)


def _class_folder(ctx: NodeContext, text: str, prompt: str) -> tuple[Path, bool]:
    from nodes.training.image_folder import class_folder

    writable = ctx.settings.path_policy().input_dirs
    return class_folder(text, ctx.output_dir, _class_default_name(prompt), writable)


def _folders(params: dict[str, Any], ctx: NodeContext) -> tuple[Path | None, Path | None]:
    from nodes.training.image_folder import FolderError, instance_folder

    try:
        instance = instance_folder(params["instance_images"], _instance_resolver(ctx))
    except FolderError:
        instance = None  # the node reports it when it runs
    klass = None
    if params["class_prompt"].strip():
        try:
            klass, _ = _class_folder(ctx, params["class_images"], params["class_prompt"])
        except FolderError:
            klass = None
    return instance, klass


def _fingerprint(params: dict[str, Any], ctx: NodeContext) -> Any:
    """The images the node reads: the instance folder's files, and the class folder's own files (generated
    class images are a function of the node's other inputs, so making them does not change the key)."""
    from nodes.training.image_folder import folder_fingerprint

    instance, klass = _folders(params, ctx)
    return [folder_fingerprint(instance), folder_fingerprint(klass, skip_generated=True)]


def _targets(text: str, field: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise NodeInputError("no target modules: list module names separated by commas, e.g. to_q,to_k,to_v,to_out.0",
                             field)
    return names


def _check_targets(ctx: NodeContext, unet: Any, targets: tuple[str, ...]) -> None:
    """Match the names as peft will (a whole module name or its dotted ending), before anything slow runs."""
    names = [name for name, _ in unet.named_modules()]
    unmatched = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if len(unmatched) == len(targets):
        raise NodeInputError(
            f"target modules: none of {', '.join(targets)} names a layer of this UNet (e.g. to_q, to_k, to_v, "
            "to_out.0, proj_in, ff.net.2)", "target_modules")
    if unmatched:
        ctx.warn(f"target modules {', '.join(unmatched)} match no layer of this UNet and are ignored")


def _lora_path(ctx: NodeContext, lora_name: str) -> tuple[Path, str]:
    name = result_name(lora_name, "lora_name", (".safetensors",))
    target = user_model_folder(ctx, "loras", "lora_name")
    # Nothing the user saved is overwritten: a taken name gets a number.
    stem, number = name, 1
    while (target / f"{stem}.safetensors").exists():
        number += 1
        stem = f"{name}_{number}"
    if stem != name:
        ctx.log(f"{name}.safetensors exists in {target}: saving the new LoRA as {stem}.safetensors")
    return target / f"{stem}.safetensors", f"{stem}.safetensors"


def _load_instance(ctx: NodeContext, folder_text: str, resolution: int) -> Any:
    from nodes.training.image_folder import FolderError, instance_folder, list_images, load_images

    try:
        folder = instance_folder(folder_text, _instance_resolver(ctx))
        listing = list_images(folder)
    except FolderError as exc:
        raise NodeInputError(f"instance images: {exc}", "instance_images") from None
    for note in listing.skipped:
        ctx.warn(f"instance images: skipped {note}")
    if not listing.images:
        raise NodeInputError(
            f"folder {str(folder)!r} holds no image files (expected .png, .jpg, .webp, ... directly inside it)",
            "instance_images")
    loaded = load_images(listing.images, resolution)
    for note in loaded.unreadable:
        ctx.warn(f"instance images: cannot read {note}; left out")
    if not loaded.names:
        raise NodeInputError(
            f"none of the {len(listing.images)} image file(s) in {str(folder)!r} could be read "
            f"({loaded.unreadable[0]})", "instance_images")
    if loaded.resized:
        ctx.log(f"instance images cropped to a square and resized to {resolution}x{resolution}: "
                + ", ".join(loaded.resized))
    if len(loaded.names) > 20:
        ctx.warn(f"{len(loaded.names)} instance images: DreamBooth expects a few (3-5) images of one subject")
    return loaded


def _class_images(
    ctx: NodeContext, model: Any, clip: Any, vae: Any, *, prompt: str, folder_text: str, wanted: int, seed: int,
    resolution: int, steps: int, cfg: float,
) -> Any:
    """Load ``wanted`` class images, generating the missing ones with the frozen base model first."""
    from nodes.training.dreambooth import generate_class_images
    from nodes.training.image_folder import (
        FolderError,
        generated_name,
        load_images,
        plan_class_images,
        save_png,
    )

    try:
        folder, creatable = _class_folder(ctx, folder_text, prompt)
        if creatable:
            folder.mkdir(parents=True, exist_ok=True)
        plan = plan_class_images(folder, prompt, wanted)
    except (FolderError, OSError) as exc:
        raise NodeInputError(f"class images: {exc}", "class_images") from None
    if plan.missing:
        ctx.log(f"generating {len(plan.missing)} class image(s) of {prompt!r} with the base model into {folder}")
        runtime = ctx.runtime
        images = generate_class_images(
            model, clip, vae, prompt, plan.missing, seed=seed, resolution=resolution, steps=steps, cfg=cfg,
            device=runtime.device, dtype=runtime.dtype, residency=runtime.residency,
        )
        for done, (index, image) in enumerate(images, 1):
            path = folder / generated_name(prompt, index)
            save_png(image[0], path, {"nodegraph.class_prompt": prompt, "nodegraph.seed": str(seed + index)})
            plan.existing.append(path)
            ctx.progress(done, len(plan.missing), message=f"class image {done}/{len(plan.missing)}")
    loaded = load_images(sorted(plan.existing, key=lambda p: p.name), resolution)
    for note in loaded.unreadable:
        ctx.warn(f"class images: cannot read {note}; left out")
    if not loaded.names:
        raise NodeInputError(f"no readable class images in {str(folder)!r}", "class_images")
    if loaded.resized:
        ctx.log(f"{len(loaded.resized)} class image(s) cropped/resized to {resolution}x{resolution}")
    return loaded


@node(
    "core.TrainLoraDreamBooth", name="Train LoRA (DreamBooth)", category="training",
    description=(
        "Teaches the model a subject from a few images (DreamBooth) by training a LoRA. With a class prompt, "
        "class images drawn by the base model keep the class from drifting (prior preservation; missing ones are "
        "generated into the class folder). Saves the LoRA into the loras folder and outputs the model and CLIP "
        "with it applied; the inputs are left unchanged."
    ),
    inputs=[
        Input("model", MODEL, help="The base model (unpatched, from a checkpoint loader)."),
        Input("clip", CLIP, help="Its text encoder(s)."),
        Input("vae", VAE, help="The VAE that turns the training images into latents."),
    ],
    params=[
        String("instance_images", "", placeholder="folder of 3-5 subject images",
               help="Folder holding the images of the subject (a relative path is looked up beside the workflow "
                    "file, then in the input folders)."),
        Text("instance_prompt", "a photo of sks dog",
             help="Caption of every instance image: the identifier plus the class noun."),
        String("identifier", "sks",
               help="The rare word that names the subject; the node warns when the instance prompt lacks it."),
        Text("class_prompt", "",
             help="Prompt of the subject's class (\"a photo of a dog\"); empty turns prior preservation off."),
        String("class_images", "", placeholder="(default: <output>/dreambooth_class/<class prompt>)",
               help="Folder of class images. Relative paths lie in the output folder and are created there; an "
                    "absolute one must lie in the output folder or an input folder. Missing images are generated "
                    "into it with the base model."),
        Int("num_class_images", 50, min=1, max=10000, help="How many class images prior preservation uses."),
        Float("prior_loss_weight", 1.0, min=0.0, max=100.0, step=0.05,
              help="Weight of the class (prior) half of the loss."),
        Int("rank", 4, min=1, max=512, help="LoRA rank."),
        Float("alpha", 4.0, min=0.01, max=4096.0, step=0.5,
              help="LoRA alpha: the update is scaled by alpha / rank (stored in the file's metadata)."),
        Float("learning_rate", 1e-4, min=1e-7, max=1.0, step=1e-5, help="AdamW learning rate."),
        Int("steps", 400, min=1, max=100000, help="Optimisation steps."),
        Int("batch_size", 1, min=1, max=64,
            help="Instance images per step (with prior preservation as many class images join them)."),
        Int("resolution", 512, min=8, max=4096, step=8,
            help="Training images are centre-cropped to a square and resized to this size."),
        Seed("seed", 0, help="Seed of the LoRA's initialisation, the batches, the noise and the class images."),
        Bool("train_text_encoder", False, help="Also train LoRA layers in the text encoder(s) (q/k/v/out projections)."),
        String("target_modules", "to_q,to_k,to_v,to_out.0",
               help="UNet layers that get LoRA layers: module names (or name endings), separated by commas."),
        String("lora_name", "dreambooth_lora", help="File name of the LoRA saved into the loras folder."),
        Int("class_steps", 20, min=1, max=1000, help="Sampler steps for generated class images."),
        Float("class_cfg", 7.0, min=1.0, max=30.0, step=0.5, help="CFG scale for generated class images."),
    ],
    outputs=[
        Output("model", MODEL, help="The model with the trained LoRA applied."),
        Output("clip", CLIP, help="The CLIP with the trained LoRA applied (unchanged unless the text encoder trained)."),
        Output("lora", LORA, help="The trained LoRA's weights, as read back from the saved file."),
        Output("lora_name", STRING, help="The saved file's name in the loras folder (feeds a Load LoRA node)."),
    ],
    fingerprint=_fingerprint,
)
def train_lora_dreambooth(
    ctx: NodeContext, model: Any, clip: Any, vae: Any, instance_images: str, instance_prompt: str, identifier: str,
    class_prompt: str, class_images: str, num_class_images: int, prior_loss_weight: float, rank: int, alpha: float,
    learning_rate: float, steps: int, batch_size: int, resolution: int, seed: int, train_text_encoder: bool,
    target_modules: str, lora_name: str, class_steps: int, class_cfg: float,
) -> dict[str, Any]:
    check_handles(model, clip, vae)
    check_resolution(model, vae, resolution)
    targets = _targets(target_modules, "target_modules")
    _check_targets(ctx, model.unet, targets)
    path, file_name = _lora_path(ctx, lora_name)
    if not instance_prompt.strip():
        raise NodeInputError("the instance prompt is empty", "instance_prompt")
    words = set(_WORD.findall(instance_prompt.lower()))
    ident = identifier.strip().lower()
    if ident and ident not in words:
        ctx.warn(f"the instance prompt {instance_prompt!r} does not contain the identifier {identifier!r}: the "
                 "subject will be bound to the prompt's ordinary words (and overwrite what they mean)")
    prior = bool(class_prompt.strip())
    if prior and ident and ident in set(_WORD.findall(class_prompt.lower())):
        ctx.warn(f"the class prompt {class_prompt!r} contains the identifier {identifier!r}: it should name the "
                 "class alone")
    if not prior and class_images.strip():
        ctx.warn("class images are set but the class prompt is empty: prior preservation is off, they are not used")

    instance = _load_instance(ctx, instance_images, resolution)
    klass = None
    if prior:
        klass = _class_images(ctx, model, clip, vae, prompt=class_prompt.strip(), folder_text=class_images,
                              wanted=num_class_images, seed=seed, resolution=resolution, steps=class_steps,
                              cfg=class_cfg)
    return _train(ctx, model, clip, vae, instance, klass, path, file_name, targets, dict(
        instance_prompt=instance_prompt, class_prompt=class_prompt.strip() if prior else None,
        prior_loss_weight=prior_loss_weight, rank=rank, alpha=alpha, learning_rate=learning_rate, steps=steps,
        batch_size=batch_size, seed=seed, train_text_encoder=train_text_encoder,
    ))


def _train(
    ctx: NodeContext, model: Any, clip: Any, vae: Any, instance: Any, klass: Any, path: Path, file_name: str,
    targets: tuple[str, ...], settings: dict[str, Any],
) -> dict[str, Any]:
    from nodes.training.dreambooth import DreamBoothTrainer, PromptLengthError, TrainSettings, encode_images
    from nodes.training.lora_training import TargetError, save_lora

    runtime = ctx.runtime
    instance_latents = encode_images(vae, instance.images, runtime.residency)
    class_latents = encode_images(vae, klass.images, runtime.residency) if klass is not None else None
    config = TrainSettings(unet_targets=targets, **settings)
    trainer = DreamBoothTrainer(model, clip, instance_latents, class_latents, config, runtime.device,
                                runtime.dtype, runtime.residency)
    info = {
        "method": "dreambooth", "instance_prompt": config.instance_prompt, "class_prompt": config.class_prompt,
        "instance_images": instance.names, "class_images": len(klass.names) if klass is not None else 0,
        "prior_loss_weight": config.prior_loss_weight if klass is not None else None, "rank": config.rank,
        "alpha": config.alpha, "learning_rate": config.learning_rate, "batch_size": config.batch_size,
        "seed": config.seed, "train_text_encoder": config.train_text_encoder, "steps": config.steps,
    }
    started = time.perf_counter()
    try:
        with trainer:
            try:
                while trainer.steps_done < config.steps:
                    report = trainer.step()
                    prior = f", prior {report.prior:.4f}" if report.prior is not None else ""
                    ctx.progress(report.step, config.steps,
                                 message=f"loss {report.loss:.4f} (instance {report.instance:.4f}{prior})")
            except Cancelled:
                if trainer.steps_done:  # keep what was learnt: the last state is the checkpoint
                    save_lora(trainer.export(), path, {**info, "steps_done": trainer.steps_done})
                    ctx.warn(f"cancelled after {trainer.steps_done} of {config.steps} steps; the LoRA trained so "
                             f"far is saved as {path}")
                raise
            trained = trainer.export()
    except TargetError as exc:
        raise NodeInputError(f"target modules: {exc}", "target_modules") from None
    except PromptLengthError as exc:
        raise NodeInputError(str(exc), "class_prompt") from None
    seconds = time.perf_counter() - started
    save_lora(trained, path, {**info, "steps_done": trainer.steps_done})
    tail = trainer.losses[-10:]
    ctx.log(f"trained {trainer.steps_done} steps in {seconds:.1f} s (mean loss of the last {len(tail)}: "
            f"{sum(tail) / len(tail):.4f}); saved {path}")
    return _outputs(ctx, model, clip, path, file_name)


def _outputs(ctx: NodeContext, model: Any, clip: Any, path: Path, file_name: str) -> dict[str, Any]:
    """Read the saved file back with the LoRA loader's own code and patch the handles with it, so the outputs
    are exactly what a Load LoRA node would make of the file."""
    from nodes.adapters.lora import make_patches, plan_lora, read_lora

    lora = read_lora(path)
    plan = plan_lora(lora, model.family, model.unet, tuple(clip.encoders), clip.family)
    model_patch, clip_patch = make_patches(lora, plan, 1.0, 1.0)
    return {
        "model": model.replace(patches=(*model.patches, model_patch)) if model_patch else model,
        "clip": clip.replace(patches=(*clip.patches, clip_patch)) if clip_patch else clip,
        "lora": lora,
        "lora_name": file_name,
    }
