"""Write the trained demo models into the package's built-in model folder, in fp16:

    python -m nodes.demo.ship --from .work

- the base model (UNet + VAE + CLIP text encoder) as one original-layout single file,
  nodes/models/checkpoints/demo_shapes.safetensors (with the product's writer, nodes/sd/save_checkpoint.py);
- the ControlNet in diffusers format, nodes/models/controlnet/demo_shapes_mask/;
- the T2I-Adapter in diffusers format, nodes/models/t2i_adapter/demo_shapes_mask/.
The total must stay within 16 MB. ``--parts base`` or ``--parts control`` ships one half.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import torch

from nodes.demo import models
from nodes.demo.paths import (
    ADAPTER_DIR,
    BUDGET_BYTES,
    CHECKPOINT_FILE,
    CHECKPOINT_FOLDER,
    CONTROLNET_DIR,
    MODELS_ROOT,
    shipped_files,
)

DTYPE = torch.float16


def _save_base(source: Path) -> Path:
    from nodes.demo.sampling import load_components

    parts = load_components(source)
    unet, vae, text_encoder = parts["unet"], parts["vae"], parts["text_encoder"]
    for target in (CHECKPOINT_FILE, CHECKPOINT_FOLDER):
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    from nodes.sd.save_checkpoint import save_single_file

    return save_single_file(CHECKPOINT_FILE, "sd15", unet, vae, (text_encoder,), dict(models.SCHEDULER_CONFIG),
                            "epsilon", dtype=DTYPE)


def _save_control(source: Path, kind: str, target: Path) -> None:
    from diffusers import ControlNetModel, T2IAdapter

    cls = ControlNetModel if kind == "controlnet" else T2IAdapter
    model = cls.from_pretrained(source / kind)
    if target.exists():
        shutil.rmtree(target)
    model.half().save_pretrained(target, safe_serialization=True)
    _drop_training_folder(target / "config.json")


def _drop_training_folder(config: Path) -> None:
    """diffusers records the folder a model was read from (``_name_or_path``): here the trainer's working folder,
    which means nothing to a user; the shipped config leaves it out."""
    import json

    data = json.loads(config.read_text(encoding="utf-8"))
    data.pop("_name_or_path", None)
    config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nodes.demo.ship", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="the trainer's --out folder")
    parser.add_argument("--parts", choices=["all", "base", "control"], default="all",
                        help="the base model, the ControlNet + T2I-Adapter, or both")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.parts in ("all", "base"):
        print("base:", _save_base(args.source))
    if args.parts in ("all", "control"):
        for kind, target in (("controlnet", CONTROLNET_DIR), ("adapter", ADAPTER_DIR)):
            if (args.source / kind / "config.json").exists():
                _save_control(args.source, kind, target)
                print(f"{kind}: {target}")
    total = 0
    for path in shipped_files():
        size = path.stat().st_size
        total += size
        print(f"{size / 1e6:8.2f} MB  {path.relative_to(MODELS_ROOT)}")
    print(f"{total / 1e6:8.2f} MB  total (budget {BUDGET_BYTES / 1e6:.2f} MB)")
    if total > BUDGET_BYTES:
        raise SystemExit(f"the shipped demo models take {total} bytes, over the {BUDGET_BYTES}-byte budget")
    if args.parts in ("all", "base"):
        _compare_with_source(args.source)


def _compare_with_source(source: Path) -> None:
    """What storing fp16 costs: the same prompts and seeds through the fp32 training output and through the
    shipped files, and the classification of both."""
    import numpy as np

    from nodes.demo import dataset, sampling

    _, _, prompts, labels = dataset.batch_arrays(16, seed=99)
    shipped = sampling.txt2img(sampling.load_pipeline(None, sampling.load_shipped()[0]), prompts)
    original = sampling.txt2img(sampling.load_pipeline(source), prompts)
    print(f"fp16 files vs fp32 training output, 16 prompts: max |pixel difference| "
          f"{np.abs(shipped - original).max() * 255:.1f}/255, mean {np.abs(shipped - original).mean() * 255:.2f}/255; "
          f"accuracy fp32 {sampling.accuracy(original, labels).round(2)}, fp16 {sampling.accuracy(shipped, labels).round(2)}")


if __name__ == "__main__":
    main()
