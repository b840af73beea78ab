"""The weights of a LoRA, per adapted module and per patched module object: the data :mod:`nodes.adapters.lora`
(reading, matching, planning) produces and :mod:`nodes.adapters.patching` puts into a module. Kept apart from
both so that neither imports the other."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True, eq=False)
class LoraWeights:
    """One adapted module: ``down`` [r, in(, kh, kw)], ``up`` [out, r(, 1, 1)], ``alpha`` (None = rank)."""

    down: torch.Tensor
    up: torch.Tensor
    alpha: float | None = None

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        return (self.alpha if self.alpha is not None else self.rank) / self.rank



@dataclass(frozen=True, eq=False)
class LoraPart:
    """LoRA weights for one module object (a UNet or one text encoder), at one strength."""

    module: Any
    weights: dict[str, LoraWeights]  # module name inside ``module`` -> weights
    strength: float
    use_rslora: bool = False

    def peft_config(self) -> Any:
        """A peft ``LoraConfig`` naming exactly these modules, with each one's rank and alpha."""
        from peft import LoraConfig

        ranks = {name: w.rank for name, w in self.weights.items()}
        alphas = {name: (w.alpha if w.alpha is not None else float(w.rank)) for name, w in self.weights.items()}
        rank = Counter(ranks.values()).most_common(1)[0][0]
        alpha = Counter(alphas.values()).most_common(1)[0][0]
        return LoraConfig(
            r=rank,
            lora_alpha=alpha,
            target_modules=sorted(self.weights),
            # peft matches these patterns against the full module name: escaped full names are exact
            rank_pattern={re.escape(n): r for n, r in ranks.items() if r != rank},
            alpha_pattern={re.escape(n): a for n, a in alphas.items() if a != alpha},
            use_rslora=self.use_rslora,
            init_lora_weights=False,
            lora_dropout=0.0,
        )

    def peft_state_dict(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, w in self.weights.items():
            out[f"{name}.lora_A.weight"] = w.down
            out[f"{name}.lora_B.weight"] = w.up
        return out

    def cache_nbytes(self) -> int:
        return sum(w.down.numel() * w.down.element_size() + w.up.numel() * w.up.element_size() for w in self.weights.values())
