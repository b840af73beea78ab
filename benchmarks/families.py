"""Per-step cost of the one sampler for FLUX, SD3 and the class-conditional DiT, next to the bare transformer call on
the same input (goal: sampler overhead under 3% per step).

Each family gets a random-weight transformer from its config conventions, narrowed to run on a CPU in tens of
milliseconds (the overhead is what the sampler adds per step, so the model's size only has to dwarf timer noise):
the bare side calls the transformer ``steps`` times on inputs prepared once, as a hand-written loop would; the sampler
side runs ``nodes.sampling.loop.sample`` with the family's denoiser (packing, position ids, conditioning batching,
guidance chain, scheduler step), CFG off so both make one model call per step. The overhead is the sampler's time
outside the transformer calls divided by the time of those calls, both taken in the same sampler run (so load on a
shared machine cancels); the bare loop's time is printed beside it. Best of the repeats.

    python benchmarks/families.py [--steps 8] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def flux_case(size: int):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    from nodes.mmdit.assemble import model_handle
    from nodes.sd.conditioning import ConditioningEntry

    torch.manual_seed(0)
    net = FluxTransformer2DModel(in_channels=64, num_layers=2, num_single_layers=4, attention_head_dim=64,
                                 num_attention_heads=4, joint_attention_dim=256, pooled_projection_dim=64,
                                 guidance_embeds=True, axes_dims_rope=(8, 28, 28)).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    handle = model_handle("flux", net, {**scheduler.config, "_class_name": type(scheduler).__name__})
    entry = ConditioningEntry(torch.randn(1, 128, 256), torch.randn(1, 64), {"guidance": 3.5})
    latent = torch.zeros(1, 16, size, size)
    packed = FluxPipeline._pack_latents(torch.randn(1, 16, size, size), 1, 16, size, size)
    bare_inputs = dict(hidden_states=packed, timestep=torch.tensor([0.5]), guidance=torch.tensor([3.5]),
                       pooled_projections=entry.pooled, encoder_hidden_states=entry.embeds,
                       txt_ids=torch.zeros(128, 3), img_ids=FluxPipeline._prepare_latent_image_ids(1, size // 2, size // 2, "cpu", torch.float32),
                       return_dict=False)
    return "FLUX.1", handle, scheduler, entry, latent, lambda: net(**bare_inputs)


def sd3_case(size: int):
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

    from nodes.mmdit.assemble import model_handle
    from nodes.sd.conditioning import ConditioningEntry

    torch.manual_seed(0)
    net = SD3Transformer2DModel(sample_size=size, patch_size=2, in_channels=16, num_layers=6, attention_head_dim=64,
                                num_attention_heads=4, joint_attention_dim=256, caption_projection_dim=256,
                                pooled_projection_dim=64, out_channels=16, pos_embed_max_size=96,
                                qk_norm="rms_norm").eval()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    handle = model_handle("sd3", net, {**scheduler.config, "_class_name": type(scheduler).__name__})
    entry = ConditioningEntry(torch.randn(1, 154, 256), torch.randn(1, 64))
    latent = torch.zeros(1, 16, size, size)
    bare_inputs = dict(hidden_states=torch.randn(1, 16, size, size), timestep=torch.tensor([500.0]),
                       encoder_hidden_states=entry.embeds, pooled_projections=entry.pooled, return_dict=False)
    return "SD3", handle, scheduler, entry, latent, lambda: net(**bare_inputs)


def dit_case(size: int):
    from diffusers import DDIMScheduler, DiTTransformer2DModel

    from nodes.dit.handles import DiffusionModelHandle
    from nodes.sd.conditioning import ConditioningEntry

    torch.manual_seed(0)
    net = DiTTransformer2DModel(num_attention_heads=4, attention_head_dim=64, in_channels=4, out_channels=8,
                                num_layers=8, sample_size=size, patch_size=2).eval()
    scheduler = DDIMScheduler()
    handle = DiffusionModelHandle(net, "dit_class", dict(scheduler.config), "epsilon")
    entry = ConditioningEntry(torch.zeros(1, 1, dtype=torch.long), None, {"class_label": 207})
    latent = torch.zeros(1, 4, size, size)
    bare_inputs = dict(timestep=torch.tensor([500]), class_labels=torch.tensor([207]), return_dict=False)
    x = torch.randn(1, 4, size, size)
    return "DiT (class)", handle, scheduler, entry, latent, lambda: net(x, **bare_inputs)


class TimedNetwork:
    """The transformer, timing its calls: what the sampler spends outside them is its own cost, measured in the same
    run as the calls (so a busy machine slows both alike)."""

    def __init__(self, network: torch.nn.Module) -> None:
        self.network = network
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.network(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name: str):
        return getattr(self.network, name)


def measure(case: Callable, args: argparse.Namespace) -> tuple[str, float, float, float]:
    """(family, bare seconds per step, sampler seconds per step, model seconds per step inside the sampler)."""
    from nodes.sampling.guidance import build_chain
    from nodes.sampling.loop import StepRange, sample
    from nodes.sampling.schedulers import make_scheduler

    name, handle, scheduler, entry, latent, bare_call = case(args.size)
    scheduler_name = "ddim" if type(scheduler).__name__ == "DDIMScheduler" else "euler"
    timed = TimedNetwork(handle.unet)
    denoiser = handle.make_denoiser(timed)
    span = StepRange.of(args.steps)
    inside: list[float] = []

    def sampler() -> None:
        fresh = make_scheduler(scheduler_name, handle.scheduler_config)
        timed.seconds = 0.0
        sample(denoiser, fresh, latent, (entry,), (entry,), seed=0, span=span, chain=build_chain(1.0), cfg_scale=1.0)
        inside.append(timed.seconds)

    def bare() -> None:
        with torch.inference_mode():
            for _ in range(args.steps):
                bare_call()

    sampler()  # warm-up of both paths (allocator, kernels)
    bare()
    # interleaved repeats, so that drifting load on a shared machine hits both sides alike
    bare_time = sampler_time = own_time = float("inf")
    model_time = 0.0
    for _ in range(args.repeats):
        bare_time = min(bare_time, best(bare, 1))
        total = best(sampler, 1)
        if total - inside[-1] < own_time:  # the run whose own work was least disturbed
            own_time, sampler_time, model_time = total - inside[-1], total, inside[-1]
    return name, bare_time / args.steps, sampler_time / args.steps, model_time / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=32, help="latent side in cells (32 = a 256 px image)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.steps} steps, latent {args.size}x{args.size}, {args.threads} thread(s), best of {args.repeats}")
    print("overhead = the sampler's own time per step (outside the transformer call) / the transformer call")
    print(f"{'family':<12} {'bare call ms':>12} {'sampler ms/step':>16} {'call in sampler':>16} {'overhead':>9}")
    for case in (flux_case, sd3_case, dit_case):
        name, bare, sampler, model = measure(case, args)
        print(f"{name:<12} {bare * 1000:>12.2f} {sampler * 1000:>16.2f} {model * 1000:>16.2f} "
              f"{100 * (sampler - model) / model:>8.2f}%")


if __name__ == "__main__":
    main()
