"""Train the demo VAE (encoder and decoder), and fine-tune its decoder alone.

The VAE bounds every score of the demo model: a colour its encoder confuses (the first demo model's encoder,
frozen after 600 steps, took black for dark green) is lost for the UNet too. So it trains until its own
reconstructions classify correctly (``vae_eval.csv`` logs the classifier's colour / shape / background accuracy
and the corner fill of squares every ``eval_every`` steps), and only then is the encoder frozen and the
latents cached. The decoder can be fine-tuned afterwards without touching the cached latents.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nodes.demo import dataset, measure, models
from nodes.demo.conditions import images_to_tensor
from nodes.demo.runs import Run

VAL_SEED = 1000
EVAL_COUNT = 96


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in -1..1."""
    mse = ((a.clamp(-1, 1) - b) ** 2).mean().item() / 4.0  # on the 0..1 scale
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def edge_weights(x: torch.Tensor, weight: float) -> torch.Tensor:
    """1 on flat areas, 1 + ``weight`` within a pixel of an edge of ``x`` (corners are where edges meet)."""
    grey = x.mean(dim=1, keepdim=True)
    edges = torch.zeros_like(grey)
    edges[..., :, 1:] += grey.diff(dim=-1).abs()
    edges[..., 1:, :] += grey.diff(dim=-2).abs()
    near = F.max_pool2d((edges > 0.05).float(), 3, stride=1, padding=1)
    return 1.0 + weight * near


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, edge_weight: float = 0.0) -> torch.Tensor:
    """MSE for PSNR, L1 for exact flat colours, L1 of the image gradients for crisp edges and square corners;
    ``edge_weight`` > 0 weighs the L1 near edges more (the decoder's fine-tune: edges are a few % of the pixels)."""
    grad = (F.l1_loss(recon.diff(dim=-1), x.diff(dim=-1)) + F.l1_loss(recon.diff(dim=-2), x.diff(dim=-2))) / 2
    l1 = (edge_weights(x, edge_weight) * (recon - x).abs()).mean() if edge_weight else F.l1_loss(recon, x)
    return F.mse_loss(recon, x) + 0.5 * l1 + 0.5 * grad


def classify_reconstructions(recon: torch.Tensor, labels: list, shapes: list[str]) -> str:
    """The classifier's accuracy on reconstructions [N, 3, H, W] in -1..1, and the corner fill of squares."""
    images = ((recon.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    found = [measure.measure(img) for img in images]
    hits = np.asarray([m.matches(*lab) for m, lab in zip(found, labels)], dtype=np.float64).mean(axis=0)
    corners = [measure.corner_fill(m.mask) for m, s in zip(found, shapes) if s == "square" and m.mask.any()]
    return (f"colour {hits[0]:.3f} shape {hits[1]:.3f} bg {hits[2]:.3f} "
            f"square corners {np.mean(corners) if corners else 0.0:.3f}")


def _validation(seed: int):
    images, _, _, labels = dataset.batch_arrays(EVAL_COUNT, seed=seed + VAL_SEED)
    return images_to_tensor(images), labels, [lab[1] for lab in labels]


def train_vae(out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0, eval_every: int = 250,
              kl_weight: float = 1e-6) -> None:
    torch.manual_seed(seed)
    vae = models.build_vae().train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    run = Run(out, "vae", {"vae": vae}, optimizer, steps, lr, resume)
    val, labels, shapes = _validation(seed)
    bar = tqdm(total=steps, initial=run.step, desc="vae", dynamic_ncols=True)
    while run.step < steps:
        run.set_lr()
        x = images_to_tensor(dataset.batch_arrays(batch, seed=seed, start=run.step * batch)[0])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        loss = reconstruction_loss(recon, x) + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        run.step += 1
        bar.update(1)
        if run.step % 25 == 0 or run.step == steps:
            bar.set_postfix(loss=f"{loss.item():.4f}", std=f"{posterior.std.mean().item():.3f}")
            run.log(loss=loss.item(), posterior_std=posterior.std.mean().item())
        if run.step % eval_every == 0 or run.step == steps:
            run.save()
        if run.step % eval_every == 0:
            with torch.no_grad():
                vae.eval()
                recon = vae.decode(vae.encode(val).latent_dist.sample()).sample
                vae.train()
            scores = f"psnr {psnr(recon, val):.2f} {classify_reconstructions(recon, labels, shapes)}"
            tqdm.write(f"[vae] step {run.step}: {scores}")
            run.note("vae_eval.csv", scores)
    bar.close()
    save_vae(out, vae, seed)


def train_decoder(out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0,
                  latent_noise: float = 1.0, eval_every: int = 250, edge_weight: float = 4.0) -> None:
    """Fine-tune the VAE decoder alone, encoder frozen: the cached latents stay valid."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(out / "vae")
    vae.requires_grad_(False)
    trainable = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    for p in trainable:
        p.requires_grad_(True)
    vae.decoder.train()
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    run = Run(out, "decoder", {"vae": vae}, optimizer, steps, lr, resume)
    val, labels, shapes = _validation(seed)
    bar = tqdm(total=steps, initial=run.step, desc="decoder", dynamic_ncols=True)
    while run.step < steps:
        run.set_lr()
        x = images_to_tensor(dataset.batch_arrays(batch, seed=seed + 3000, start=run.step * batch)[0])
        with torch.no_grad():
            posterior = vae.encode(x).latent_dist
            z = posterior.mean + latent_noise * posterior.std * torch.randn_like(posterior.std)
        recon = vae.decode(z).sample
        loss = reconstruction_loss(recon, x, edge_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        run.step += 1
        bar.update(1)
        if run.step % 25 == 0 or run.step == steps:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            run.log(loss=loss.item())
        if run.step % eval_every == 0 or run.step == steps:
            run.save()
            vae.eval()
            with torch.no_grad():
                recon = vae.decode(vae.encode(val).latent_dist.sample()).sample
            scores = f"psnr {psnr(recon, val):.2f} {classify_reconstructions(recon, labels, shapes)}"
            tqdm.write(f"[decoder] step {run.step}: {scores}")
            run.note("decoder_eval.csv", scores)
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


def load_vae(out: Path):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(out / "vae").eval()
    vae.requires_grad_(False)
    return vae
