"""The training objective of ControlNets and T2I-Adapters, as diffusers' training scripts compute it.

- ControlNet (``examples/controlnet/train_controlnet.py``): timesteps uniform over the training schedule,
  DDPM noise, the ControlNet's down/mid residuals added to the frozen UNet's, and the plain MSE between the
  UNet's prediction and the target (the noise, or the velocity for v-prediction models).
- T2I-Adapter (``examples/t2i_adapter/train_t2i_adapter_sdxl.py``): the same, with timesteps drawn by
  *cubic* sampling, ``t = (1 - u**3) * T`` for uniform ``u``, which favours the noisy early steps where an
  adapter decides the layout (T2I-Adapter paper, section 3.4). The script writes the loss in x0 space,
  ``mean(sigma**-2 * (x_noisy - sigma * pred - x0)**2)``; with ``x_noisy = x0 + sigma * noise`` that is
  exactly ``mean((pred - noise)**2)``, the form used here (tests/nodes/test_control_training.py checks
  both forms give the same number).

Pure functions over tensors, so tests can pin them down without a model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("controlnet", "t2i_adapter")


def sample_timesteps(kind: str, batch: int, num_train_timesteps: int, generator: torch.Generator) -> torch.Tensor:
    """Training timesteps (int64, CPU) for ``batch`` rows."""
    if kind == "controlnet":
        return torch.randint(0, num_train_timesteps, (batch,), generator=generator)
    if kind == "t2i_adapter":
        u = torch.rand((batch,), generator=generator)
        t = ((1 - u**3) * num_train_timesteps).long()
        return t.clamp(0, num_train_timesteps - 1)
    raise ValueError(f"unknown control model kind {kind!r}; expected one of {KINDS}")


def target(noise_scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
           prediction_type: str) -> torch.Tensor:
    """What the UNet should predict: the noise (epsilon), the velocity (v_prediction) or the clean latents."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    if prediction_type == "sample":
        return latents
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def control_loss(prediction: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """``F.mse_loss(pred.float(), target.float(), reduction="mean")``, the scripts' loss."""
    return F.mse_loss(prediction.float(), goal.float(), reduction="mean")
