"""Train the demo model's UNet and CLIP text encoder jointly on cached latents.

A frozen random text encoder taught the first probe nothing, so both train together. Each caption is drawn
afresh from the templates of :mod:`nodes.demo.captions` every time an image is used (sentences, tag lists,
"a photo of ..."; a tenth partial), and a tenth of the captions are empty for classifier-free guidance. The
EMA of the weights is what gets saved and shipped. ``unet_eval.csv`` logs the classifier's accuracy of
sampled images on training and held-out combinations, per prompt form, every ``eval_every`` steps.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nodes.demo import captions, dataset, models
from nodes.demo.latents import latent_cache, sample_batch
from nodes.demo.runs import EMA, Run, min_snr_weights

CAPTION_DROPOUT = 0.1


def tokenize(tokenizer, prompts: list[str]) -> torch.Tensor:
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def draw_captions(labels: torch.Tensor, rng: np.random.Generator, dropout: float = CAPTION_DROPOUT) -> list[str]:
    """A random caption for each combination index (``""`` for a share ``dropout`` of them)."""
    out = []
    for index in labels.tolist():
        if rng.random() < dropout:
            out.append("")
        else:
            out.append(captions.random_caption(rng, *dataset.TRAIN_COMBINATIONS[index]))
    return out


def encode_captions(text_encoder, tokenizer, texts: list[str]) -> torch.Tensor:
    """Hidden states [N, 77, D], each distinct caption of the batch encoded once."""
    unique = sorted(set(texts))
    where = {t: i for i, t in enumerate(unique)}
    hidden = text_encoder(tokenize(tokenizer, unique))[0]
    return hidden[torch.tensor([where[t] for t in texts])]


def train_unet(out: Path, steps: int, batch: int, lr: float, resume: bool, seed: int = 0,
               eval_every: int = 500) -> None:
    cache = latent_cache(out, seed)
    tokenizer = models.load_tokenizer()
    torch.manual_seed(seed)
    unet, text_encoder = models.build_unet().train(), models.build_text_encoder().train()
    scheduler = models.build_scheduler()
    ema = EMA([unet, text_encoder], decay=0.999)
    # fused: one kernel for all parameters; 5x faster than the default here (the 49,408-row token table dominates)
    optimizer = torch.optim.AdamW([*unet.parameters(), *text_encoder.parameters()], lr=lr, weight_decay=0.0,
                                  fused=True)
    run = Run(out, "unet", {"unet": unet, "text_encoder": text_encoder, "ema": ema}, optimizer, steps, lr, resume)
    generator = torch.Generator().manual_seed(seed + run.step)
    rng = np.random.default_rng([seed, run.step])
    params = optimizer.param_groups[0]["params"]
    bar = tqdm(total=steps, initial=run.step, desc="unet", dynamic_ncols=True)
    while run.step < steps:
        run.set_lr()
        idx, latents = sample_batch(cache, batch, generator)
        hidden = encode_captions(text_encoder, tokenizer, draw_captions(cache["labels"][idx], rng))
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator)
        pred = unet(scheduler.add_noise(latents, noise, t), t, encoder_hidden_states=hidden).sample
        per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * min_snr_weights(scheduler.alphas_cumprod, t)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.update(run.step)
        run.step += 1
        bar.update(1)
        if run.step % 25 == 0 or run.step == steps:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            run.log(loss=loss.item(), eps_mse=per_sample.mean().item())
        if run.step % eval_every == 0 or run.step == steps:
            run.save()
            save_base(out, unet, text_encoder, ema)
        if run.step % eval_every == 0:
            scores = quick_eval(out)
            tqdm.write(f"[unet] step {run.step}: {scores}")
            run.note("unet_eval.csv", scores)
    bar.close()


def save_base(out: Path, unet, text_encoder, ema: EMA) -> None:
    """Write the EMA weights as diffusers components out/unet and out/text_encoder (the raw ones stay in the
    checkpoint)."""
    u, te = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    ema.copy_to([u, te])
    u.save_pretrained(out / "unet")
    te.save_pretrained(out / "text_encoder")


def quick_eval(out: Path, per_split: int = 24) -> str:
    """Accuracy of a few sampled images: training combinations (sentence form), held-out ones in each form."""
    from nodes.demo import sampling

    pipe = sampling.load_pipeline(out)
    parts = []
    rows = [("train", "sentence")] + [("heldout", form) for form in captions.FORMS]
    for split, form in rows:
        _, _, _, labels = dataset.batch_arrays(per_split, seed=777, split=split)
        prompts = [captions.prompt(form, *lab) for lab in labels]
        images = sampling.txt2img(pipe, prompts, seed=0, steps=20)
        acc = sampling.accuracy(images, labels)
        parts.append(f"{split}/{form} {acc[0]:.2f} {acc[1]:.2f} {acc[2]:.2f}")
    return " | ".join(parts)


def load_base(out: Path):
    """The trained UNet and text encoder from the working folder, frozen."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(out / "unet").eval()
    text_encoder = CLIPTextModel.from_pretrained(out / "text_encoder").eval()
    unet.requires_grad_(False)
    text_encoder.requires_grad_(False)
    return unet, text_encoder
