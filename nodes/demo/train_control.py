"""Train the demo ControlNet and T2I-Adapter on the shape mask, through the product's own training code.

The same functions as the Train ControlNet / Train T2I-Adapter nodes (:func:`nodes.training.control_run.build_control`
and :func:`~nodes.training.control_run.fit` over :class:`~nodes.training.control_training.ControlTrainer`), fed
the procedural dataset from memory instead of a dataset folder: one code path, so the shipped demo files come
from the product's nodes' trainer. The base model (``DIR/vae``, ``unet``, ``text_encoder``) is frozen.
``--resume`` continues from ``DIR/<kind>/`` (the optimiser starts afresh, as when a node continues a model).
Every ``eval_every`` steps the model is saved to ``DIR/<kind>/`` and scored (``<kind>_eval.csv``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nodes.demo import captions, dataset, models

POOL = 8192
DATA_SEED = 6000
KINDS = {"controlnet": "controlnet", "adapter": "t2i_adapter"}


def base_handles(out: Path):
    """The trained base in the working folder as the MODEL / CLIP / VAE handles a checkpoint loader gives."""
    from nodes.demo.sampling import load_components
    from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle

    parts = load_components(out)
    for module in (parts["unet"], parts["vae"], parts["text_encoder"]):
        module.requires_grad_(False)
    return (ModelHandle(parts["unet"], "sd15", dict(models.SCHEDULER_CONFIG), "epsilon"),
            ClipHandle("sd15", (parts["tokenizer"],), (parts["text_encoder"],)),
            VaeHandle(parts["vae"], "sd15", parts["vae"].config.scaling_factor))


def mask_dataset(count: int = POOL, seed: int = DATA_SEED):
    """Procedural images, their masks as white-on-black condition images and captions of every form."""
    from nodes.training.control_dataset import TensorDataset

    images, masks, _, labels = dataset.batch_arrays(count, seed=seed)
    rng = np.random.default_rng([seed, 1])
    texts = [captions.random_caption(rng, *label) for label in labels]
    conditions = np.repeat(np.rint(masks * 255).astype(np.uint8)[..., None], 3, axis=-1)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(conditions), texts)


def train_control(name: str, out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0,
                  eval_every: int = 500) -> None:
    from nodes.training.control_run import build_control, fit
    from nodes.training.control_training import ControlSettings, ControlTrainer

    kind = KINDS[name]
    model, clip, vae = base_handles(out)
    start = None
    if resume and (out / name / "config.json").exists():
        start = _load(kind, out / name)
        print(f"[{name}] continuing from {out / name}")
    module = build_control(kind, model, vae, start, seed=seed, embedding_channels=models.CONTROLNET_EMBEDDING_CHANNELS,
                           adapter_type="full_adapter")
    settings = ControlSettings(kind, learning_rate=lr, steps=steps, batch_size=batch, resolution=dataset.SIZE,
                               seed=seed, empty_prompt_share=0.5)
    pool = int(os.environ.get("DEMO_LATENT_POOL", POOL))
    trainer = ControlTrainer(model, clip, vae, module, mask_dataset(pool), settings)
    bar = tqdm(total=steps, desc=name, dynamic_ncols=True)
    started = time.time()
    log = (out / f"{name}_loss.csv").open("w")
    log.write("step,seconds,loss\n")

    def on_step(step: int, loss: float) -> None:
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
            log.write(f"{step},{time.time() - started:.1f},{loss:.6g}\n")
            log.flush()

    def on_checkpoint(step: int, trained) -> None:
        trained.save_pretrained(out / name)
        if step % eval_every:
            return
        scores = quick_control_eval(out, name)
        tqdm.write(f"[{name}] step {step}: {scores}")
        with (out / f"{name}_eval.csv").open("a") as f:
            f.write(f"{step},{time.time() - started:.0f},{scores}\n")

    trained = fit(trainer, on_step=on_step, checkpoint_every=eval_every, on_checkpoint=on_checkpoint)
    bar.close()
    log.close()
    on_checkpoint(steps, trained)


def _load(kind: str, folder: Path):
    if kind == "controlnet":
        from nodes.adapters.controlnet import load_controlnet

        return load_controlnet(folder, torch.float32)
    from nodes.adapters.t2i_adapter import load_adapter

    return load_adapter(folder, torch.float32)


def quick_control_eval(out: Path, name: str, count: int = 16) -> str:
    from nodes.demo import sampling

    pipe = sampling.load_control_pipeline(out, name)
    _, masks, prompts, labels = dataset.batch_arrays(count, seed=778)
    images = sampling.controlled(pipe, prompts, masks, seed=0, steps=20)
    acc = sampling.accuracy(images, labels)
    return f"iou {sampling.mean_iou(images, masks):.3f} colour {acc[0]:.2f} shape {acc[1]:.2f} bg {acc[2]:.2f}"
