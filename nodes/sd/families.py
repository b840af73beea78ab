"""The supported model families and the files that ship with them (configs, tokenizers): no hub, ever."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"
TOKENIZER_ROOT = Path(__file__).resolve().parent / "tokenizers"


@dataclass(frozen=True)
class Family:
    key: str
    label: str  # what the user reads: "SD1.5", "SDXL", "SDXL refiner"
    text_encoders: tuple[str, ...]  # diffusers component names, in ClipHandle order
    tokenizers: tuple[str, ...]  # tokenizer kind for each text encoder ("clip_l" or "clip_g")
    pipeline: str

    @property
    def config_dir(self) -> Path:
        return CONFIG_ROOT / self.key


FAMILIES: dict[str, Family] = {
    "sd15": Family("sd15", "SD1.5", ("text_encoder",), ("clip_l",), "StableDiffusionPipeline"),
    "sdxl": Family("sdxl", "SDXL", ("text_encoder", "text_encoder_2"), ("clip_l", "clip_g"),
                   "StableDiffusionXLPipeline"),
    "sdxl_refiner": Family("sdxl_refiner", "SDXL refiner", ("text_encoder_2",), ("clip_g",),
                           "StableDiffusionXLImg2ImgPipeline"),
}


def family_label(family: str) -> str:
    return FAMILIES[family].label if family in FAMILIES else family


def load_config(family: str, component: str) -> dict[str, Any]:
    """The shipped diffusers config of ``component`` (unet, vae, text_encoder, text_encoder_2, scheduler)."""
    folder = FAMILIES[family].config_dir / component
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    return json.loads((folder / name).read_text(encoding="utf-8"))


@cache
def load_tokenizer(kind: str) -> Any:
    """The CLIP tokenizer for ``kind``: "clip_l" pads with <|endoftext|>, "clip_g" (OpenCLIP bigG) with
    id 0 ("!"), as the SDXL models were trained. Both share one BPE vocabulary. Tokenizers are never
    mutated by encoding, so one instance per kind is shared."""
    from transformers import CLIPTokenizer

    if kind not in ("clip_l", "clip_g"):
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    # from_pretrained: transformers 5.x ignores vocab_file/merges_file passed to the constructor
    extra = {"pad_token": "!"} if kind == "clip_g" else {}
    return CLIPTokenizer.from_pretrained(str(TOKENIZER_ROOT / "clip"), local_files_only=True, **extra)
