"""SD1.5 benchmark: the workflow against diffusers, in one process, on a full-size random-weight checkpoint.

    python benchmarks/sd15.py                 # CPU: 256x256, 4 steps, fp32 then bf16
    python benchmarks/sd15.py --json out.json # also write the figures as JSON

On a CUDA device it runs fp16 at 512x512, 20 steps (``--size``/``--steps`` override either default).

What it does (issue 3, "What must be shown"):

1. builds an SD1.5-architecture checkpoint from the shipped configs with random weights (no download) and
   writes it as an original single file with the Save Checkpoint code;
2. first run of the workflow (load, encode, sample, decode) vs diffusers' ``from_single_file`` + pipeline
   call; then a run with the model cached (prompt changed) vs the pipeline call alone. Goals: both ratios
   at most 1.02;
3. a run with only the seed changed: the executor must run only the sampler and what follows it;
4. peak memory (resident set growth) while loading, against the size of the weights in the compute dtype
   (goal: at most 1.3x), for both loaders;
5. bf16 (CPU) speed-up of the workflow, next to diffusers' own bf16 speed-up.

Both sides use the same scheduler (DDIM), prompt, seed and output (float images, no PNG writing). The file
is read once before timing so that both loaders find it in the page cache. Timings of repeated parts are
minimums of ``--repeat`` runs: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "a photograph of a lighthouse on a cliff at sunset, highly detailed"
PROMPT_2 = "an oil painting of a lighthouse in a storm"
NEGATIVE = "blurry, low quality"
CHECKPOINT = "bench_sd15.safetensors"


class RssSampler:
    """Samples this process's resident set size every few milliseconds, so that peaks inside a window (one
    node's run, one library call) can be read afterwards."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.rss()))
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def peak_growth(self, start: float, end: float) -> int:
        """Largest RSS inside [start, end] minus the RSS at ``start``."""
        before = [rss for t, rss in self.samples if t <= start]
        base = before[-1] if before else self.samples[0][1]
        inside = [rss for t, rss in self.samples if start <= t <= end] or [base]
        return max(inside) - base


def build_checkpoint(path: Path) -> None:
    """Full-size SD1.5 UNet, VAE and CLIP-L from the shipped configs, random weights, one original file."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from nodes.sd.families import load_config
    from nodes.sd.save_checkpoint import save_single_file

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(load_config("sd15", "unet")).eval()
    vae = AutoencoderKL.from_config(load_config("sd15", "vae")).eval()
    text_config = {k: v for k, v in load_config("sd15", "text_encoder").items() if k != "architectures"}
    text = CLIPTextModel(CLIPTextConfig(**text_config)).eval()
    save_single_file(path, "sd15", unet, vae, (text,), load_config("sd15", "scheduler"), "epsilon")


def workflow(size: int, steps: int, seed: int, prompt: str) -> dict[str, Any]:
    def n(kind: str, params: dict[str, Any], **inputs: tuple[str, str]) -> dict[str, Any]:
        return {"type": kind, "version": 1, "params": params, "inputs": {k: list(v) for k, v in inputs.items()}}

    return {
        "format": "nodegraph.workflow",
        "version": 1,
        "nodes": {
            "ckpt": n("core.CheckpointLoader", {"ckpt_name": CHECKPOINT}),
            "pos": n("core.CLIPTextEncode", {"text": prompt}, clip=("ckpt", "clip")),
            "neg": n("core.CLIPTextEncode", {"text": NEGATIVE}, clip=("ckpt", "clip")),
            "latent": n("core.EmptyLatentImage", {"width": size, "height": size, "batch_size": 1}),
            "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": 7.5, "scheduler": "ddim"},
                         model=("ckpt", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                         latent_image=("latent", "latent")),
            "decode": n("core.VAEDecode", {}, samples=("sampler", "latent"), vae=("ckpt", "vae")),
        },
    }


class WorkflowRunner:
    def __init__(self, models_root: Path, device: str, precision: str) -> None:
        from nodegraph.executor import Executor
        from nodegraph.installed import default_registry
        from nodegraph.model_folders import ModelFolders
        from nodegraph.runtime import Runtime

        self.executor = Executor(default_registry(), runtime=Runtime(device, precision), folders=ModelFolders([models_root]))
        self.windows: dict[str, tuple[float, float]] = {}

    def run(self, doc: dict[str, Any]) -> tuple[float, Any]:
        from nodegraph.events import NodeFinished, NodeStarted
        from nodegraph.workflow import parse_workflow

        started: dict[str, float] = {}

        def on_event(event: Any) -> None:
            if isinstance(event, NodeStarted):
                started[event.node] = time.perf_counter()
            elif isinstance(event, NodeFinished):
                self.windows[event.node] = (started[event.node], time.perf_counter())

        graph = parse_workflow(doc, self.executor.registry)
        begin = time.perf_counter()
        result = self.executor.run(graph, ["ckpt", "decode"], on_event=on_event)
        _sync()
        self.windows["*"] = (begin, time.perf_counter())
        return time.perf_counter() - begin, result



def weight_bytes(loader_outputs: dict[str, Any]) -> int:
    """Bytes of the loaded UNet, VAE and text encoder parameters (in the dtype they were loaded in)."""
    modules = [loader_outputs["model"].unet, loader_outputs["vae"].vae, *loader_outputs["clip"].encoders]
    return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def diffusers_load(path: Path, dtype: Any, device: str) -> Any:
    import diffusers

    from nodes.sd.families import FAMILIES, load_tokenizer

    pipe = diffusers.StableDiffusionPipeline.from_single_file(
        str(path), config=str(FAMILIES["sd15"].config_dir), local_files_only=True, torch_dtype=dtype,
        tokenizer=load_tokenizer("clip_l"), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def diffusers_call(pipe: Any, size: int, steps: int, seed: int, prompt: str) -> float:
    import torch

    begin = time.perf_counter()
    pipe(prompt, negative_prompt=NEGATIVE, height=size, width=size, num_inference_steps=steps, guidance_scale=7.5,
         generator=torch.Generator("cpu").manual_seed(seed), output_type="np")
    _sync()
    return time.perf_counter() - begin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (CPU 256, CUDA 512)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (CPU 4, CUDA 20)")
    parser.add_argument("--repeat", type=int, default=2, help="repetitions of the warm timings (minimum kept)")
    parser.add_argument("--skip-bf16", action="store_true", help="skip the bf16 comparison")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the checkpoint (default: a temp dir)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="reuse a checkpoint this script built before instead of building one")
    args = parser.parse_args(argv)
    # a terminated run still removes its temporary checkpoint (4 GB): exit through the context managers
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    size = args.size or (512 if cuda else 256)
    steps = args.steps or (20 if cuda else 4)
    precision = "fp16" if cuda else "fp32"
    dtype = torch.float16 if cuda else torch.float32
    figures: dict[str, Any] = {"device": device, "size": size, "steps": steps, "precision": precision,
                               "threads": torch.get_num_threads()}

    def report(key: str, value: Any, note: str = "") -> None:
        figures[key] = value
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:>34}: {shown} {note}", flush=True)

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp, RssSampler() as rss:
        root = Path(tmp)
        (root / "checkpoints").mkdir()
        path = root / "checkpoints" / CHECKPOINT
        if args.checkpoint:
            path.symlink_to(args.checkpoint.resolve())
        else:
            begin = time.perf_counter()
            build_checkpoint(path)
            gc.collect()
            report("build_checkpoint_s", time.perf_counter() - begin, f"({path.stat().st_size / 2**30:.2f} GiB file)")
        with open(path, "rb") as handle:  # into the page cache, so that neither loader pays the first read
            while handle.read(1 << 24):
                pass

        # --- first runs: the workflow (load + encode + sample + decode), then diffusers (load + call) ------
        runner = WorkflowRunner(root, device, precision)
        wf_cold, result = runner.run(workflow(size, steps, 1, PROMPT))
        report("workflow_first_run_s", wf_cold)
        weights = weight_bytes(result.outputs["ckpt"])
        report("weights_GiB", weights / 2**30, f"({precision})")
        report("workflow_load_peak_ratio", rss.peak_growth(*runner.windows["ckpt"]) / weights, "(goal <= 1.3)")
        # safetensors tensors stay memory-mapped until used: the whole first run shows what is really touched
        report("workflow_first_run_peak_ratio", rss.peak_growth(*runner.windows["*"]) / weights)

        begin = time.perf_counter()
        pipe = diffusers_load(path, dtype, device)
        loaded = time.perf_counter()
        diffusers_call(pipe, size, steps, 1, PROMPT)
        df_cold = time.perf_counter() - begin
        report("diffusers_from_single_file_s", loaded - begin)
        report("diffusers_load_peak_ratio", rss.peak_growth(begin, loaded) / weights)
        report("diffusers_first_run_peak_ratio", rss.peak_growth(begin, time.perf_counter()) / weights)
        report("diffusers_first_run_s", df_cold, "(from_single_file + call)")
        report("ratio_first_run", wf_cold / df_cold, "(workflow / diffusers, goal <= 1.02)")

        # --- warm runs, interleaved so that both sides see the same machine load ----------------------------
        wf_warm, df_calls = [], []
        for i in range(args.repeat):  # the prompt changes: encode, sample and decode run; the model is cached
            seconds, result = runner.run(workflow(size, steps, 1, f"{PROMPT_2} {i}"))
            assert "ckpt" in result.cached, result.executed
            wf_warm.append(seconds)
            df_calls.append(diffusers_call(pipe, size, steps, 1, f"{PROMPT_2} {i}"))
        report("workflow_cached_model_run_s", min(wf_warm))
        report("diffusers_call_s", min(df_calls))
        report("ratio_cached_model", min(wf_warm) / min(df_calls), "(workflow / pipeline call, goal <= 1.02)")
        seed_runs = []
        for seed in range(2, 2 + args.repeat):  # only the seed changes: the sampler and the decoder run
            seconds, result = runner.run(workflow(size, steps, seed, f"{PROMPT_2} {args.repeat - 1}"))
            seed_runs.append(seconds)
        report("seed_change_executed", sorted(result.executed), f"(cached: {sorted(result.cached)})")
        seed_fp32 = min(seed_runs)
        report("seed_change_run_s", seed_fp32)
        del runner, result
        gc.collect()

        # --- bf16 (CPU) ---------------------------------------------------------------------------------
        if not cuda and not args.skip_bf16:
            pipe = pipe.to(torch.bfloat16)
            runner = WorkflowRunner(root, device, "bf16")
            runner.run(workflow(size, steps, 1, PROMPT))
            bf16_runs, df_bf16 = [], []
            for seed in range(2, 2 + args.repeat):
                seconds, _ = runner.run(workflow(size, steps, seed, PROMPT))
                bf16_runs.append(seconds)
                df_bf16.append(diffusers_call(pipe, size, steps, seed, PROMPT))
            report("workflow_bf16_seed_change_run_s", min(bf16_runs))
            report("workflow_bf16_speedup", seed_fp32 / min(bf16_runs), "(sampler + decode, fp32 / bf16)")
            report("diffusers_bf16_call_s", min(df_bf16), f"(diffusers' speed-up {min(df_calls) / min(df_bf16):.2f}x)")
            report("workflow_bf16_vs_diffusers_bf16", min(bf16_runs) / min(df_bf16),
                   "(workflow sampler+decode / diffusers call incl. text encoding)")
            del runner
        del pipe
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
