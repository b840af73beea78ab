"""Peak memory of loading a full-size SD1.5 single-file checkpoint, against the size of its weights.

    python -m benchmarks.load_memory [--keep PATH] [--dtype fp32|bf16] [--diffusers]

Writes a random-weight SD1.5 checkpoint (about 4.3 GB in fp32; built from the shipped configs, no
download) with Save Checkpoint's writer, then loads it in a fresh process and reports the peak resident
memory the load added (``ru_maxrss`` after minus before), divided by the bytes of the loaded weights.
``--diffusers`` also measures ``StableDiffusionPipeline.from_single_file`` on the same file, for
comparison. Needs about 2x the checkpoint size in free memory; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(path: Path) -> None:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from nodes.sd.families import load_config
    from nodes.sd.save_checkpoint import save_single_file

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(load_config("sd15", "unet"))
    vae = AutoencoderKL.from_config(load_config("sd15", "vae"))
    text = CLIPTextModel(CLIPTextConfig(**load_config("sd15", "text_encoder")))
    save_single_file(path, "sd15", unet, vae, (text,), load_config("sd15", "scheduler"))


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, dtype_name: str, how: str) -> dict:
    import time

    import diffusers  # noqa: F401  (imports are not part of the load)

    from nodegraph.runtime import module_nbytes, torch_dtype
    from nodes.sd.families import CONFIG_ROOT

    dtype = torch_dtype(dtype_name)
    before = _peak_mb()
    start = time.perf_counter()
    if how == "nodegraph":
        from nodes.sd.single_file import load_single_file

        loaded = load_single_file(path, dtype)
        modules = [loaded.unet, loaded.vae, *loaded.text_encoders]
    else:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_single_file(
            str(path), config=str(CONFIG_ROOT / "sd15"), local_files_only=True, torch_dtype=dtype,
            safety_checker=None, requires_safety_checker=False,
        )
        modules = [pipe.unet, pipe.vae, pipe.text_encoder]
    seconds = time.perf_counter() - start
    weights = sum(module_nbytes(m) for m in modules) / 2**20
    added = _peak_mb() - before
    return {"how": how, "dtype": dtype_name, "seconds": round(seconds, 1), "weights_mb": round(weights),
            "peak_added_mb": round(added), "ratio": round(added / weights, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="checkpoint path to reuse (written if missing)")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--diffusers", action="store_true", help="also measure diffusers' from_single_file")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # child process: path how
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.dtype, args.measure[1])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "sd15_random.safetensors"
        if not path.exists():
            # built in its own process, so that the measuring processes start clean
            code = f"from pathlib import Path; from benchmarks.load_memory import build; build(Path({str(path)!r}))"
            subprocess.run([sys.executable, "-c", code], check=True)
        print(f"checkpoint: {path} ({path.stat().st_size / 2**20:.0f} MB)")
        for how in ("nodegraph", "diffusers") if args.diffusers else ("nodegraph",):
            out = subprocess.run([sys.executable, "-m", "benchmarks.load_memory", "--dtype", args.dtype,
                                  "--measure", str(path), how], check=True, capture_output=True, text=True)
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
