"""Train the demo model family on the procedural shapes dataset, on CPU.

    python -m nodes.demo.train --component vae|decoder|unet|controlnet|adapter|all --out DIR [--resume] [--steps N]

Order matters: the VAE first (it bounds every score); then its encoder is frozen and the latents are cached
once, so the decoder fine-tune (``decoder``) and the UNet (trained jointly with the CLIP text encoder) can run
at the same time in two processes; then the ControlNet and the T2I-Adapter on the shape mask, base frozen
(also in parallel). ``all`` runs the five in that order in one process. Each component writes to DIR:
``<name>/`` (diffusers format; the UNet and text encoder as EMA weights), ``<name>_ckpt.pt`` (resumable
state, loaded with weights_only=True), ``<name>_loss.csv`` and, for the UNet / ControlNet / adapter,
``<name>_eval.csv`` (measured accuracy of a few samples every --eval-every steps). Progress: tqdm.
``python -m nodes.demo.ship --from DIR`` then writes the shipped files.

How the shipped models were made (2 shared CPU cores, 1 thread per process, --out .work):
  vae         --batch 16, stopped at step 600 (planned 2500) and saved with --resume --steps 600
  unet        --steps 3500 --batch 32 --eval-every 250, then --resume --steps 5000
  decoder     --steps 3000, --resume --steps 5000 (alongside the UNet), --resume --steps 6000 (shipped);
              a further --resume --steps 7000 --latent-noise 0.3 scored the same within noise: not shipped
  controlnet  --steps 1500 --batch 32;  adapter  --steps 1500 --batch 32 (in parallel)
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nodes.demo import dataset, models

DEFAULT_STEPS = {"vae": 600, "decoder": 6000, "unet": 5000, "controlnet": 1500, "adapter": 1500}
DEFAULT_BATCH = {"vae": 16, "decoder": 16, "unet": 64, "controlnet": 32, "adapter": 32}
DEFAULT_LR = {"vae": 2e-3, "decoder": 5e-4, "unet": 1e-3, "controlnet": 1e-3, "adapter": 1e-3}
LATENT_POOL = 8192
LOG_EVERY = 25  # steps between loss-log rows
EVAL_EVERY = 500  # UNet / ControlNet / adapter steps between saves + sampled evaluations  # cached training latents (each a fixed image; the posterior is sampled every step)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in -1..1 (the VAE's input range)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def masks_to_condition(masks: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Masks [N, H, W] in 0..1 -> control images [N, 3, H, W] in 0..1 (white shape on black, as the pipelines
    feed a mask image)."""
    m = torch.as_tensor(masks, dtype=torch.float32)
    return m[:, None].expand(-1, 3, -1, -1).contiguous()


def cosine_lr(step: int, total: int, base: float, warmup: int = 100, floor: float = 0.05) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class Run:
    """Bookkeeping shared by the components: resumable checkpoint, loss CSV, learning-rate schedule."""

    def __init__(self, out: Path, name: str, modules: dict, optimizer, steps: int, lr: float, resume: bool):
        self.out, self.name, self.modules, self.optimizer = out, name, modules, optimizer
        self.steps, self.lr, self.step = steps, lr, 0
        self.ckpt = out / f"{name}_ckpt.pt"
        self.csv_path = out / f"{name}_loss.csv"
        self.extra: dict = {}
        if resume and self.ckpt.exists():
            state = torch.load(self.ckpt, weights_only=True)
            for key, module in modules.items():
                module.load_state_dict(state["modules"][key])
            optimizer.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            self.extra = state.get("extra", {})
            print(f"[{name}] resumed at step {self.step}")
        elif not resume and self.csv_path.exists():
            self.csv_path.unlink()
        self.t0 = time.time()
        self.elapsed_before = float(self.extra.get("elapsed", 0.0))

    def set_lr(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = cosine_lr(self.step, self.steps, self.lr)

    def log(self, **values: float) -> None:
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "seconds", *values])
            writer.writerow([self.step, f"{self.elapsed():.1f}", *(f"{v:.6g}" for v in values.values())])

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.t0

    def save(self) -> None:
        self.extra["elapsed"] = self.elapsed()
        state = {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "extra": self.extra,
        }
        tmp = self.ckpt.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt)


# ----------------------------------------------------------------------------------------------------- VAE


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in -1..1."""
    mse = ((a.clamp(-1, 1) - b) ** 2).mean().item() / 4.0  # on the 0..1 scale
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def train_vae(out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0) -> None:
    torch.manual_seed(seed)
    vae = models.build_vae().train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    run = Run(out, "vae", {"vae": vae}, optimizer, steps, lr, resume)
    val = images_to_tensor(dataset.batch_arrays(64, seed=seed + 1000)[0])
    bar = tqdm(total=steps, initial=run.step, desc="vae", dynamic_ncols=True)
    while run.step < steps:
        run.set_lr()
        x = images_to_tensor(dataset.batch_arrays(batch, seed=seed, start=run.step * batch)[0])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        # MSE for PSNR, L1 for crisp edges and exact flat colours, a tiny KL as in SD's VAE.
        loss = F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x) + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        run.step += 1
        bar.update(1)
        if run.step % LOG_EVERY == 0 or run.step == steps:
            with torch.no_grad():
                vae.eval()
                val_psnr = psnr(vae.decode(vae.encode(val).latent_dist.mode()).sample, val)
                vae.train()
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{val_psnr:.1f}")
            run.log(loss=loss.item(), val_psnr=val_psnr)
        if run.step % 200 == 0 or run.step == steps:
            run.save()
    bar.close()
    save_vae(out, vae, seed)


def train_decoder(out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0,
                  latent_noise: float = 1.0) -> None:
    """Fine-tune the VAE decoder alone, encoder frozen: the cached latents stay valid, so this can run alongside
    the UNet's training."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(out / "vae")
    vae.requires_grad_(False)
    trainable = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    for p in trainable:
        p.requires_grad_(True)
    vae.decoder.train()
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    run = Run(out, "decoder", {"vae": vae}, optimizer, steps, lr, resume)
    val = images_to_tensor(dataset.batch_arrays(64, seed=seed + 1000)[0])
    with torch.no_grad():
        val_latents = vae.encode(val).latent_dist.mode()
    bar = tqdm(total=steps, initial=run.step, desc="decoder", dynamic_ncols=True)
    while run.step < steps:
        run.set_lr()
        x = images_to_tensor(dataset.batch_arrays(batch, seed=seed + 3000, start=run.step * batch)[0])
        with torch.no_grad():
            posterior = vae.encode(x).latent_dist
            # latent_noise < 1 narrows the posterior noise: colours whose posterior means lie closer than its
            # std (black / green foregrounds of the shipped encoder) can then still be told apart.
            z = posterior.mean + latent_noise * posterior.std * torch.randn_like(posterior.std)
        recon = vae.decode(z).sample
        loss = F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        run.step += 1
        bar.update(1)
        if run.step % LOG_EVERY == 0 or run.step == steps:
            with torch.no_grad():
                vae.decoder.eval()
                val_psnr = psnr(vae.decode(val_latents).sample, val)
                vae.decoder.train()
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{val_psnr:.1f}")
            run.log(loss=loss.item(), val_psnr=val_psnr)
        if run.step % 200 == 0 or run.step == steps:
            run.save()
            vae.eval()
            vae.save_pretrained(out / "vae")  # same encoder and scaling factor: cached latents stay valid
            vae.decoder.train()
    bar.close()


@torch.no_grad()
def save_vae(out: Path, vae, seed: int) -> None:
    """Set the latent scaling factor so that scaled latents have unit variance (as SD's 0.18215), then save."""
    vae.eval()
    x = images_to_tensor(dataset.batch_arrays(256, seed=seed + 2000)[0])
    std = vae.encode(x).latent_dist.sample().std().item()
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))
    vae.save_pretrained(out / "vae")
    print(f"[vae] saved; latent std {std:.4f}, scaling_factor {vae.config.scaling_factor}")


# ------------------------------------------------------------------------------------- latent cache


def load_vae(out: Path):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(out / "vae").eval()
    vae.requires_grad_(False)
    return vae


def latent_cache(out: Path, seed: int = 0, count: int | None = None) -> dict:
    """Encode ``count`` training images once with the frozen VAE encoder: posterior mean and std, the shape
    masks (uint8) and the index of each caption in ``dataset.TRAIN_COMBINATIONS``."""
    path = out / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    count = count or int(os.environ.get("DEMO_LATENT_POOL", LATENT_POOL))
    vae = load_vae(out)
    means, stds, masks, labels = [], [], [], []
    index_of = {c: i for i, c in enumerate(dataset.TRAIN_COMBINATIONS)}
    for start in tqdm(range(0, count, 256), desc="encode latents", dynamic_ncols=True):
        images, m, _, lab = dataset.batch_arrays(min(256, count - start), seed=seed + 5000, start=start)
        with torch.no_grad():
            dist = vae.encode(images_to_tensor(images)).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
        masks.append(torch.from_numpy(np.rint(m * 255).astype(np.uint8)))
        labels.append(torch.tensor([index_of[x] for x in lab]))
    cache = {
        "mean": torch.cat(means),
        "std": torch.cat(stds),
        "masks": torch.cat(masks),
        "labels": torch.cat(labels),
        "scaling_factor": torch.tensor(vae.config.scaling_factor),
    }
    torch.save(cache, path)
    return cache


def tokenize(tokenizer, prompts: list[str]) -> torch.Tensor:
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def batch_from_cache(cache: dict, batch: int, generator: torch.Generator):
    idx = torch.randint(0, cache["mean"].shape[0], (batch,), generator=generator)
    mean, std = cache["mean"][idx], cache["std"][idx]
    latents = (mean + std * torch.randn(mean.shape, generator=generator)) * cache["scaling_factor"]
    return idx, latents


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """Min-SNR-gamma loss weights for epsilon prediction (Hang et al. 2023): steadier, faster convergence."""
    alphas = scheduler.alphas_cumprod[timesteps]
    snr = alphas / (1 - alphas)
    return torch.clamp(snr, max=gamma) / snr


class EMA:
    """Exponential moving average of a set of modules' parameters (evaluated and shipped instead of the raw
    weights: much less noisy after a few thousand steps)."""

    def __init__(self, modules: list, decay: float):
        self.decay = decay
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))  # warm-up: early weights are forgotten quickly
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - decay)

    def state_dict(self) -> dict:
        return {str(i): t for i, t in enumerate(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        for i, t in enumerate(self.shadow):
            t.copy_(state[str(i)])

    @torch.no_grad()
    def copy_to(self, modules: list) -> None:
        for p, s in zip([p for m in modules for p in m.parameters()], self.shadow):
            p.copy_(s)


# ---------------------------------------------------------------------------------------------- UNet



def train_unet(out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0) -> None:
    """UNet and CLIP text encoder trained jointly (a frozen random text encoder taught the probe nothing)."""
    cache = latent_cache(out, seed)
    tokenizer = models.load_tokenizer()
    torch.manual_seed(seed)
    unet, text_encoder = models.build_unet().train(), models.build_text_encoder().train()
    scheduler = models.build_scheduler()
    # The training captions and the empty prompt, tokenised once; each step encodes the distinct ones it uses.
    captions = [dataset.caption(*c) for c in dataset.TRAIN_COMBINATIONS] + [""]
    ids = tokenize(tokenizer, captions)
    empty = len(captions) - 1
    ema = EMA([unet, text_encoder], decay=0.998)
    optimizer = torch.optim.AdamW([*unet.parameters(), *text_encoder.parameters()], lr=lr, weight_decay=0.0)
    run = Run(out, "unet", {"unet": unet, "text_encoder": text_encoder, "ema": ema}, optimizer, steps, lr, resume)
    generator = torch.Generator().manual_seed(seed + run.step)
    bar = tqdm(total=steps, initial=run.step, desc="unet", dynamic_ncols=True)
    while run.step < steps:
        run.set_lr()
        idx, latents = batch_from_cache(cache, batch, generator)
        caption_idx = cache["labels"][idx].clone()
        caption_idx[torch.rand(batch, generator=generator) < 0.1] = empty  # for classifier-free guidance
        unique, inverse = torch.unique(caption_idx, return_inverse=True)
        hidden = text_encoder(ids[unique])[0][inverse]  # encode each distinct caption of the batch once
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator)
        pred = unet(scheduler.add_noise(latents, noise, t), t, encoder_hidden_states=hidden).sample
        per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * min_snr_weights(scheduler, t)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], 1.0)
        optimizer.step()
        ema.update(run.step)
        run.step += 1
        bar.update(1)
        if run.step % LOG_EVERY == 0 or run.step == steps:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            run.log(loss=loss.item(), eps_mse=per_sample.mean().item())
        if run.step % EVAL_EVERY == 0 or run.step == steps:
            run.save()
            save_base(out, unet, text_encoder, ema)
        if run.step % EVAL_EVERY == 0:
            scores = quick_eval(out)
            tqdm.write(f"[unet] step {run.step}: {scores}")
            with (out / "unet_eval.csv").open("a") as f:
                f.write(f"{run.step},{run.elapsed():.0f},{scores}\n")
    bar.close()


def save_base(out: Path, unet, text_encoder, ema: EMA) -> None:
    """Write the EMA weights as diffusers components out/unet and out/text_encoder (the raw ones stay in the
    checkpoint)."""
    import copy

    u, te = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    ema.copy_to([u, te])
    u.save_pretrained(out / "unet")
    te.save_pretrained(out / "text_encoder")


def quick_eval(out: Path, per_split: int = 24) -> str:
    from nodes.demo import sampling

    pipe = sampling.load_pipeline(out)
    parts = []
    for split in ("train", "heldout"):
        _, _, prompts, labels = dataset.batch_arrays(per_split, seed=777, split=split)
        images = sampling.txt2img(pipe, prompts, seed=0, steps=20)
        acc = sampling.accuracy(images, labels)
        parts.append(f"{split} colour {acc[0]:.2f} shape {acc[1]:.2f} bg {acc[2]:.2f}")
    return " | ".join(parts)


# ------------------------------------------------------------------------------------ ControlNet / adapter


def load_base(out: Path):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(out / "unet").eval()
    text_encoder = CLIPTextModel.from_pretrained(out / "text_encoder").eval()
    unet.requires_grad_(False)
    text_encoder.requires_grad_(False)
    return unet, text_encoder


def train_control(kind: str, out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0) -> None:
    """ControlNet (``kind="controlnet"``) or T2I-Adapter (``"adapter"``) on the shape mask, base frozen."""
    cache = latent_cache(out, seed)
    tokenizer = models.load_tokenizer()
    unet, text_encoder = load_base(out)
    scheduler = models.build_scheduler()
    captions = [dataset.caption(*c) for c in dataset.TRAIN_COMBINATIONS] + [""]
    with torch.no_grad():
        table = text_encoder(tokenize(tokenizer, captions))[0]
    empty = len(captions) - 1
    torch.manual_seed(seed)
    model = models.build_controlnet(unet) if kind == "controlnet" else models.build_adapter()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    run = Run(out, kind, {kind: model}, optimizer, steps, lr, resume)
    generator = torch.Generator().manual_seed(seed + 10_000 + run.step)
    bar = tqdm(total=steps, initial=run.step, desc=kind, dynamic_ncols=True)
    while run.step < steps:
        run.set_lr()
        idx, latents = batch_from_cache(cache, batch, generator)
        caption_idx = cache["labels"][idx].clone()
        caption_idx[torch.rand(batch, generator=generator) < 0.1] = empty
        hidden = table[caption_idx]
        cond = masks_to_condition(cache["masks"][idx].float() / 255.0)
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator)
        noisy = scheduler.add_noise(latents, noise, t)
        if kind == "controlnet":
            down, mid = model(noisy, t, encoder_hidden_states=hidden, controlnet_cond=cond, return_dict=False)
            pred = unet(noisy, t, encoder_hidden_states=hidden, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid).sample
        else:
            pred = unet(noisy, t, encoder_hidden_states=hidden,
                        down_intrablock_additional_residuals=list(model(cond))).sample
        per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * min_snr_weights(scheduler, t)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        run.step += 1
        bar.update(1)
        if run.step % LOG_EVERY == 0 or run.step == steps:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            run.log(loss=loss.item())
        if run.step % EVAL_EVERY == 0 or run.step == steps:
            run.save()
            model.eval()
            model.save_pretrained(out / kind)
            model.train()
        if run.step % EVAL_EVERY == 0:
            scores = quick_control_eval(out, kind)
            tqdm.write(f"[{kind}] step {run.step}: {scores}")
            with (out / f"{kind}_eval.csv").open("a") as f:
                f.write(f"{run.step},{run.elapsed():.0f},{scores}\n")
    bar.close()


def quick_control_eval(out: Path, kind: str, count: int = 16) -> str:
    from nodes.demo import sampling

    pipe = sampling.load_control_pipeline(out, kind)
    _, masks, prompts, labels = dataset.batch_arrays(count, seed=778)
    images = sampling.controlled(pipe, prompts, masks, seed=0, steps=20)
    acc = sampling.accuracy(images, labels)
    return f"iou {sampling.mean_iou(images, masks):.3f} colour {acc[0]:.2f} shape {acc[1]:.2f} bg {acc[2]:.2f}"


# ----------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nodes.demo.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--component", required=True, choices=["vae", "decoder", "unet", "controlnet", "adapter", "all"])
    parser.add_argument("--out", required=True, type=Path, help="working folder (diffusers components, checkpoints)")
    parser.add_argument("--resume", action="store_true", help="continue from DIR/<component>_ckpt.pt")
    parser.add_argument("--steps", type=int, help="total optimiser steps (default per component)")
    parser.add_argument("--batch", type=int, help="batch size (default per component)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default per component)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on shared cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="steps between saves + sampled scores")
    parser.add_argument("--latent-noise", type=float, default=1.0,
                        help="decoder: scale of the posterior noise on its training latents")
    parser.add_argument("--pool", type=int, default=LATENT_POOL, help="training images whose latents are cached")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    os.environ["DEMO_LATENT_POOL"] = str(args.pool)
    globals()["EVAL_EVERY"] = args.eval_every
    args.out.mkdir(parents=True, exist_ok=True)
    components = ["vae", "decoder", "unet", "controlnet", "adapter"] if args.component == "all" else [args.component]
    trainers = {
        "vae": train_vae,
        "decoder": train_decoder,
        "unet": train_unet,
        "controlnet": lambda *a, **k: train_control("controlnet", *a, **k),
        "adapter": lambda *a, **k: train_control("adapter", *a, **k),
    }
    for name in components:
        start = time.time()
        extra = {"latent_noise": args.latent_noise} if name == "decoder" else {}
        trainers[name](
            args.out,
            steps=args.steps or DEFAULT_STEPS[name],
            batch=args.batch or DEFAULT_BATCH[name],
            lr=args.lr or DEFAULT_LR[name],
            resume=args.resume,
            seed=args.seed,
            **extra,
        )
        print(f"[{name}] finished in {time.time() - start:.0f} s this session")


if __name__ == "__main__":
    main()
