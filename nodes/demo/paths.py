"""Where the shipped demo model files live (nodes/models), and their size budget. Read by the shipper
(which writes them), the samplers and benchmarks (which load them) and the tests."""

from __future__ import annotations

from pathlib import Path

MODELS_ROOT = Path(__file__).resolve().parent.parent / "models"
CHECKPOINT_FILE = MODELS_ROOT / "checkpoints" / "demo_shapes.safetensors"
CHECKPOINT_FOLDER = MODELS_ROOT / "checkpoints" / "demo_shapes"
CONTROLNET_DIR = MODELS_ROOT / "controlnet" / "demo_shapes_mask"
ADAPTER_DIR = MODELS_ROOT / "t2i_adapter" / "demo_shapes_mask"
BUDGET_BYTES = 16_000_000  # decimal megabytes, the stricter reading


def shipped_files() -> list[Path]:
    out: list[Path] = []
    for p in (CHECKPOINT_FILE, CHECKPOINT_FOLDER, CONTROLNET_DIR, ADAPTER_DIR):
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file()))
    return out
