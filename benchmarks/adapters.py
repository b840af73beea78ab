"""Adapter benchmark on a full-size SD1.5-architecture UNet with random weights (shipped config, no download).

    python benchmarks/adapters.py                  # CPU: 256x256 (32x32 latent), fp32, 2 repeats
    python benchmarks/adapters.py --size 512 --repeat 3 --json out.json

What it measures (issue 4, "What must be shown"):

1. the cost of one sampler step (one CFG model call: batch 2, through the denoiser interface the sampler
   uses) bare, with one ControlNet (``ControlNetModel.from_unet``, full size) and with one T2I-Adapter
   (diffusers' full SD1.5 adapter: channels 320/640/1280/1280); the adapter's features are computed once per
   generation, so its per-step cost is the residual additions alone (its one-off cost is reported apart);
2. the LoRA strength-change re-run: the LoRA loader's work when only a strength changes (the parsed file
   comes from the cache: matching and patch building) plus putting the patch into the UNet and taking it
   out again around a sampling run, for a rank-16 LoRA on every attention projection (kohya layout); the
   first load (reading the file) is reported next to it, and so is the per-step cost of the patched UNet
   (peft's unfused LoRA layers: base output plus the low-rank product), interleaved with the others.

Timings are minimums of ``--repeat`` runs: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="image size in pixels (latent = size / 8)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    import torch
    from diffusers import ControlNetModel, T2IAdapter, UNet2DConditionModel

    from nodes.adapters.controlnet import ControlNetHandle, ControlNetSource
    from nodes.adapters.lora import make_patches, plan_lora, read_lora
    from nodes.adapters.t2i_adapter import AdapterHandle, AdapterSource
    from nodes.sampling.denoiser import CondBatch, StepInfo, UNetDenoiser
    from nodes.sd.families import load_config
    from nodes.sd.text_encode import patches_applied

    torch.manual_seed(0)
    start = time.perf_counter()
    unet = UNet2DConditionModel.from_config(load_config("sd15", "unet")).eval().requires_grad_(False)
    controlnet = ControlNetModel.from_unet(unet).eval().requires_grad_(False)
    adapter = T2IAdapter(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2, downscale_factor=8,
                         adapter_type="full_adapter").eval().requires_grad_(False)
    print(f"built UNet, ControlNet and T2I-Adapter in {time.perf_counter() - start:.1f} s")

    latent = args.size // 8
    x = torch.randn(2, 4, latent, latent)
    t = torch.tensor(500)
    embeds = torch.randn(2, 77, unet.config.cross_attention_dim)
    image = torch.rand(1, args.size, args.size, 3)
    step = StepInfo(0, 20, t)
    denoiser = UNetDenoiser(unet)
    cn_source = ControlNetSource(ControlNetHandle(controlnet, "sd15", "bench"), image, 1.0)
    t2i_source = AdapterSource(AdapterHandle(adapter, "sd15", "bench"), image, 1.0)

    def call(sources: tuple) -> None:
        with torch.inference_mode():
            denoiser(x, t, CondBatch(embeds, None, sources), step)

    # LoRA: a kohya file with a rank-r pair on every attention projection of the UNet
    from safetensors.torch import save_file

    lora_state = {}
    for name, module in unet.named_modules():
        if name.endswith(("to_q", "to_k", "to_v", "to_out.0")):
            flat = "lora_unet_" + name.replace(".", "_")
            lora_state[f"{flat}.lora_down.weight"] = torch.randn(args.lora_rank, module.in_features) * 0.01
            lora_state[f"{flat}.lora_up.weight"] = torch.randn(module.out_features, args.lora_rank) * 0.01
            lora_state[f"{flat}.alpha"] = torch.tensor(float(args.lora_rank))
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / "bench_lora.safetensors"
    save_file(lora_state, str(path))
    results: dict[str, Any] = {"size": args.size, "threads": torch.get_num_threads()}
    start = time.perf_counter()
    lora = read_lora(path)
    results["lora_first_read_s"] = time.perf_counter() - start
    results["lora_layers"] = lora.count()
    patch, _ = make_patches(lora, plan_lora(lora, "sd15", unet), 1.0, 0.0)

    def lora_call() -> float:
        with patches_applied(unet, (patch,)):  # once per sampling run in the sampler: not part of the step
            begin = time.perf_counter()
            call(())
            return time.perf_counter() - begin

    first = time.perf_counter()
    call((t2i_source,))  # computes the adapter features (once per generation)
    results["t2i_first_step_s"] = time.perf_counter() - first
    call(())
    call((cn_source,))  # warm-up: the first calls allocate
    lora_call()
    # interleaved rounds, minimum per variant: on a shared machine the load changes between rounds
    rounds: dict[str, list[float]] = {"bare": [], "controlnet": [], "t2i": [], "lora": []}
    for _ in range(args.repeat):
        for key, sources in (("bare", ()), ("controlnet", (cn_source,)), ("t2i", (t2i_source,))):
            rounds[key].append(best(lambda sources=sources: call(sources), 1))
        rounds["lora"].append(lora_call())
    for key, times in rounds.items():
        results[f"{key}_step_s"] = min(times)
    for key in ("controlnet", "t2i", "lora"):
        results[f"{key}_step_ratio"] = results[f"{key}_step_s"] / results["bare_step_s"]
    results["t2i_adapter_runs"] = t2i_source.runs

    strengths = iter([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])

    def strength_change() -> None:
        cached = read_lora(path)  # the node's first step: from the cache, no disk read
        model_patch, _ = make_patches(cached, plan_lora(cached, "sd15", unet), next(strengths), 0.0)
        with patches_applied(unet, (model_patch,)):  # what the sampler adds around its run
            pass

    results["lora_strength_change_s"] = best(strength_change, args.repeat)
    folder.cleanup()

    for key, value in results.items():
        print(f"{key:>26}: {value:.3f}" if isinstance(value, float) else f"{key:>26}: {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
