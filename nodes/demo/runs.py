"""Bookkeeping shared by the demo trainers: a resumable run (checkpoint, loss CSV, learning-rate schedule), the
EMA of weights and min-SNR loss weights. Checkpoints are written atomically and read with weights_only=True."""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path

import torch


def cosine_lr(step: int, total: int, base: float, warmup: int = 100, floor: float = 0.05) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class Run:
    """One component's training run: ``<out>/<name>_ckpt.pt`` (modules, optimiser, step, extra) and
    ``<out>/<name>_loss.csv``. ``resume`` continues from the checkpoint; otherwise the CSV starts afresh."""

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

    def note(self, filename: str, text: str) -> None:
        """Append a line to ``<out>/<filename>`` (evaluation logs)."""
        with (self.out / filename).open("a") as f:
            f.write(f"{self.step},{self.elapsed():.0f},{text}\n")

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


def min_snr_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """Min-SNR-gamma loss weights for epsilon prediction (Hang et al. 2023): steadier, faster convergence."""
    alphas = alphas_cumprod[timesteps]
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
