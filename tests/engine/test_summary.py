"""Values in logs and failure reports are summarised (shape, dtype, device), never printed number by number."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from nodegraph.summary import summarize


@dataclass
class Handle:
    unet: torch.nn.Module
    family: str
    config: dict


class Palette:
    def __repr__(self) -> str:
        return "Palette(#aa0000, #00aa00)"


def test_tensors_and_arrays_show_shape_dtype_and_device():
    assert summarize(torch.zeros(2, 4, 8, 8)) == "Tensor[2, 4, 8, 8] float32 cpu"
    assert summarize(np.zeros((3, 5), dtype=np.uint8)).startswith("ndarray[3, 5] uint8")


def test_a_latent_dict_summarises_its_tensor():
    assert summarize({"samples": torch.zeros(1, 4, 8, 8, dtype=torch.float16)}) == "{samples: Tensor[1, 4, 8, 8] float16 cpu}"


def test_modules_show_their_size_not_their_layers():
    module = torch.nn.Linear(1000, 1000)
    assert summarize(module) == "Linear 1.0M params"
    handle = Handle(module, "sd15", {"beta_start": 0.00085, "steps": list(range(1000))})
    text = summarize(handle)
    assert text.startswith("Handle(unet=Linear 1.0M params, family='sd15', config={beta_start: 0.00085, steps: list[1000]")
    assert len(text) <= 160


def test_short_reprs_of_their_own_are_kept_and_lists_are_counted():
    assert summarize(Palette()) == "Palette(#aa0000, #00aa00)"
    assert summarize([torch.zeros(3)] * 6) == "list[6]: Tensor[3] float32 cpu, Tensor[3] float32 cpu, Tensor[3] float32 cpu, Tensor[3] float32 cpu, ..."
    assert summarize(Image.new("RGB", (64, 32))) == "PIL.Image 64x32 RGB"
    assert summarize("x" * 200).endswith("...' (200 characters)") and summarize(7) == "7"


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_hostile_values_are_described_without_raising():
    assert summarize(10**5000) == "int of about 5001 digits"
    assert summarize(Hostile()) == "<Hostile>"
    assert summarize({"a": Hostile()}) == "{a: <Hostile>}"
