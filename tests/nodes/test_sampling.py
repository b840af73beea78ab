"""The sampling package: guidance chain, step ranges, the loop's noise/leftover semantics, the residual hook
(ControlNet through the denoiser interface), and the sampler nodes inside the Executor (progress,
cancellation, caching, clear errors)."""

from __future__ import annotations

import pytest
import torch

from nodes.sampling.denoiser import CondBatch, Residuals, StepInfo, UNetDenoiser
from nodes.sampling.guidance import ClassifierFreeGuidance, GuidanceRescale, GuidanceState, build_chain, run_chain
from nodes.sampling.loop import StepRange, sample
from nodes.sampling.schedulers import SCHEDULER_NAMES, make_scheduler
from nodes.sd.conditioning import ConditioningEntry
from tests.fixtures.tiny_sd import reference_scheduler

diffusers = pytest.importorskip("diffusers")


def state(cond, uncond, *, x=None, alpha=0.5, prediction_type="epsilon", scale=7.0) -> GuidanceState:
    return GuidanceState(
        cond=cond, uncond=uncond, guided=cond, x=x if x is not None else torch.zeros_like(cond), timestep=10,
        alpha_prod=torch.tensor(alpha), prediction_type=prediction_type, cfg_scale=scale,
    )


def test_cfg_is_diffusers_formula_and_passes_cond_through_without_uncond():
    cond, uncond = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    assert torch.equal(ClassifierFreeGuidance(7.0)(state(cond, uncond)), uncond + 7.0 * (cond - uncond))
    assert ClassifierFreeGuidance(7.0)(state(cond, None)) is cond


def test_guidance_links_compose_in_chain_order():
    cond, uncond = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)

    def add_one(s):
        return s.guided + 1

    def double(s):
        return s.guided * 2

    guided = uncond + 3.0 * (cond - uncond)
    assert torch.equal(run_chain(build_chain(3.0, extra=(add_one, double)), state(cond, uncond)), (guided + 1) * 2)
    assert torch.equal(run_chain(build_chain(3.0, extra=(double, add_one)), state(cond, uncond)), guided * 2 + 1)


def test_guidance_rescale_is_diffusers_rescale_noise_cfg_and_zero_is_a_no_op():
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

    cond, uncond = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    s = state(cond, uncond)
    s = s.replace(guided=ClassifierFreeGuidance(7.0)(s))
    assert torch.equal(GuidanceRescale(0.7)(s), rescale_noise_cfg(s.guided, cond, guidance_rescale=0.7))
    assert GuidanceRescale(0.0)(s) is s.guided
    assert len(build_chain(7.0, 0.0)) == 1 and len(build_chain(7.0, 0.5)) == 2


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_x0_conversions_invert_each_other(prediction_type):
    x0, eps = torch.randn(1, 4, 2, 2, dtype=torch.float64), torch.randn(1, 4, 2, 2, dtype=torch.float64)
    a = torch.tensor(0.3, dtype=torch.float64)
    x = a.sqrt() * x0 + (1 - a).sqrt() * eps
    s = state(x0, None, x=x, alpha=0.3, prediction_type=prediction_type).replace(alpha_prod=a)
    prediction = s.from_x0(x0)
    assert torch.allclose(s.to_x0(prediction), x0)
    if prediction_type == "epsilon":
        assert torch.allclose(prediction, eps)


def test_step_range_follows_diffusers_img2img_strength_and_clamps_the_end():
    assert StepRange.of(4, denoise=0.5) == StepRange(4, 2, 4)
    assert StepRange.of(10, denoise=0.75) == StepRange(10, 3, 10)  # 10 - int(7.5)
    assert StepRange.of(4, denoise=0.1).empty  # int(0.4) = 0 steps, as diffusers
    assert StepRange.of(20, start_step=5, end_step=10000) == StepRange(20, 5, 20)
    with pytest.raises(ValueError, match="steps"):
        StepRange.of(0)


def test_every_offered_scheduler_builds_from_a_model_config():
    from nodes.sd.families import load_config

    for family in ("sd15", "sdxl"):
        config = load_config(family, "scheduler")
        for name in SCHEDULER_NAMES:
            if name == "lms" and not scipy_available():
                with pytest.raises(ValueError, match=r"'lms' is not available.*scipy"):
                    make_scheduler(name, config)
                continue
            scheduler = make_scheduler(name, config, "v_prediction")
            assert scheduler.config.prediction_type == "v_prediction"
    assert make_scheduler("dpmpp_2m_karras", config).config.use_karras_sigmas
    with pytest.raises(ValueError, match="known: euler"):
        make_scheduler("nope", config)


def scipy_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("scipy") is not None


class OracleDenoiser:
    """A model that knows the clean latent: predicts exactly the noise separating ``x`` from ``x0``. Sampling
    with it must end at x0, which pins down the loop's bookkeeping independently of any network."""

    prediction_type = "epsilon"

    def __init__(self, scheduler, x0):
        self.scheduler = scheduler
        self.x0 = x0

    def __call__(self, x, t, cond, step):
        from nodes.sampling.loop import vp_alpha

        a = vp_alpha(self.scheduler, t)
        return (x - a.sqrt() * self.x0.repeat(x.shape[0] // self.x0.shape[0], 1, 1, 1)) / (1 - a).sqrt()


def entries():
    return (ConditioningEntry(torch.zeros(1, 77, 8)),), (ConditioningEntry(torch.zeros(1, 77, 8)),)


@pytest.mark.parametrize("scheduler_name", ["ddim", "euler", "euler_ancestral", "dpmpp_2m", "heun", "unipc"])
def test_stopping_early_without_leftover_noise_lands_on_the_predicted_clean_latent(scheduler_name):
    from nodes.sd.families import load_config

    scheduler = make_scheduler(scheduler_name, load_config("sd15", "scheduler"))
    x0 = torch.randn(1, 4, 4, 4)
    pos, neg = entries()
    out = sample(
        OracleDenoiser(scheduler, x0), scheduler, torch.zeros(1, 4, 4, 4), pos, neg, seed=3,
        span=StepRange.of(6, end_step=3), chain=build_chain(5.0), cfg_scale=5.0, return_leftover_noise=False,
    )
    assert torch.allclose(out, x0, atol=1e-4)
    leftover = sample(
        OracleDenoiser(scheduler, x0), scheduler, torch.zeros(1, 4, 4, 4), pos, neg, seed=3,
        span=StepRange.of(6, end_step=3), chain=build_chain(5.0), cfg_scale=5.0, return_leftover_noise=True,
    )
    assert (leftover - x0).abs().max() > 0.1  # the hand-off latent still carries noise


@pytest.fixture(scope="module")
def sd15():
    from tests.fixtures.tiny_sd import tiny_components

    return tiny_components("sd15")


def encoded(m, text):
    from nodes.sd.handles import ClipHandle
    from nodes.sd.text_encode import encode_prompt

    embeds, _ = encode_prompt(ClipHandle("sd15", m.tokenizers, m.text_encoders), (text,), "cpu")
    return ConditioningEntry(embeds)


@pytest.mark.parametrize("scheduler_name", ["ddim", "euler"])
def test_split_run_with_leftover_noise_equals_one_run_for_one_step_schedulers(sd15, scheduler_name):
    pos, neg = (encoded(sd15, "a lighthouse"),), (encoded(sd15, ""),)

    def run(latent, span, add_noise=True):
        scheduler = make_scheduler(scheduler_name, sd15.scheduler_config)
        return sample(UNetDenoiser(sd15.unet), scheduler, latent, pos, neg, seed=8, span=span,
                      chain=build_chain(6.0), cfg_scale=6.0, add_noise=add_noise)

    whole = run(torch.zeros(1, 4, 4, 4), StepRange.of(4))
    first = run(torch.zeros(1, 4, 4, 4), StepRange.of(4, end_step=2))
    second = run(first, StepRange.of(4, start_step=2), add_noise=False)
    assert torch.equal(second, whole)


class ControlNetSource:
    """A ResidualSource driving a diffusers ControlNetModel the way StableDiffusionControlNetPipeline does."""

    def __init__(self, controlnet, image, scale):
        self.controlnet, self.image, self.scale = controlnet, image, scale

    def __call__(self, x, t, cond: CondBatch, step: StepInfo) -> Residuals:
        image = torch.cat([self.image] * (x.shape[0] // self.image.shape[0]))
        down, mid = self.controlnet(x, t, encoder_hidden_states=cond.embeds, controlnet_cond=image,
                                    conditioning_scale=self.scale, guess_mode=False, return_dict=False)
        return Residuals(down=tuple(down), mid=mid)


def test_controlnet_residuals_enter_through_the_denoiser_interface_as_in_diffusers(sd15):
    controlnet = diffusers.ControlNetModel.from_unet(sd15.unet, conditioning_embedding_out_channels=(8, 16, 32, 32))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        for p in controlnet.parameters():  # wake the zero convolutions so the residuals are not all zero
            if not p.abs().sum():
                p.copy_(torch.randn_like(p) * 0.1)
        image = torch.rand(1, 3, 32, 32)
    controlnet.eval().requires_grad_(False)
    source = ControlNetSource(controlnet, image, 0.8)
    pos, neg = encoded(sd15, "a lighthouse"), encoded(sd15, "")
    pos, neg = pos.with_extras(residuals=(source,)), neg.with_extras(residuals=(source,))
    scheduler = make_scheduler("euler_ancestral", sd15.scheduler_config)
    ours = sample(UNetDenoiser(sd15.unet), scheduler, torch.zeros(1, 4, 4, 4), (pos,), (neg,), seed=2,
                  span=StepRange.of(2), chain=build_chain(6.0), cfg_scale=6.0)
    pipe = diffusers.StableDiffusionControlNetPipeline(
        vae=sd15.vae, text_encoder=sd15.text_encoders[0], tokenizer=sd15.tokenizers[0], unet=sd15.unet,
        controlnet=controlnet, scheduler=reference_scheduler("sd15", "EulerAncestralDiscreteScheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    theirs = pipe("a lighthouse", image=image, height=32, width=32, num_inference_steps=2, guidance_scale=6.0,
                  controlnet_conditioning_scale=0.8, generator=torch.Generator("cpu").manual_seed(2),
                  output_type="latent").images
    assert (ours - theirs).abs().max() <= 1e-5
    plain = sample(UNetDenoiser(sd15.unet), make_scheduler("euler_ancestral", sd15.scheduler_config),
                   torch.zeros(1, 4, 4, 4), (encoded(sd15, "a lighthouse"),), (encoded(sd15, ""),), seed=2,
                   span=StepRange.of(2), chain=build_chain(6.0), cfg_scale=6.0)
    assert (ours - plain).abs().max() > 1e-3  # the residuals really reached the UNet


# --- the sampler nodes inside the Executor -------------------------------------------------------------


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    from tests.nodes.sd_workflow_helpers import make_executor, make_models_root

    return make_executor(make_models_root(tmp_path_factory.mktemp("models")))


def sd15_graph(executor, seed=1, steps=3):
    from tests.nodes.sd_workflow_helpers import checkpoint, n

    return {
        "ckpt": checkpoint(executor, "sd15"),
        "pos": n("core.CLIPTextEncode", {"text": "a boat"}, clip=("ckpt", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": ""}, clip=("ckpt", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": 32, "height": 32, "batch_size": 1}),
        "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": 5.0, "scheduler": "ddim"},
                     model=("ckpt", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae")),
    }


def run(executor, nodes, targets, **kwargs):
    from nodegraph.workflow import parse_workflow

    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
    return executor.run(parse_workflow(doc, executor.registry), targets, **kwargs)


def test_sampler_reports_each_step_and_a_seed_change_reruns_only_sampler_and_decode(executor):
    from nodegraph.events import NodeProgress

    events = []
    run(executor, sd15_graph(executor, seed=1), ["decode"], on_event=events.append)
    steps = [(e.step, e.total) for e in events if isinstance(e, NodeProgress) and e.node == "sampler"]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    again = run(executor, sd15_graph(executor, seed=2), ["decode"])
    assert sorted(again.executed) == ["decode", "sampler"]
    assert {"ckpt", "pos", "neg", "empty"} <= set(again.cached)


def test_cancelling_during_sampling_stops_at_the_next_step(executor):
    from nodegraph.context import CancelToken
    from nodegraph.errors import Cancelled
    from nodegraph.events import NodeProgress

    token = CancelToken()
    seen = []

    def on_event(event):
        if isinstance(event, NodeProgress) and event.node == "sampler":
            seen.append(event.step)
            token.cancel()

    with pytest.raises(Cancelled):
        run(executor, sd15_graph(executor, seed=3, steps=5), ["decode"], on_event=on_event, cancel=token)
    assert seen == [1]


def test_sd15_conditioning_into_an_sdxl_model_is_a_clear_error(executor):
    from nodegraph.errors import NodeExecutionError
    from tests.nodes.sd_workflow_helpers import checkpoint

    nodes = sd15_graph(executor)
    nodes["xl"] = checkpoint(executor, "sdxl")
    nodes["sampler"]["inputs"]["model"] = ["xl", "model"]
    with pytest.raises(NodeExecutionError, match=r"wide.*another model family") as info:
        run(executor, nodes, ["sampler"])
    assert info.value.node_id == "sampler"


def test_a_latent_with_the_wrong_channel_count_is_a_clear_error(sd15):
    from nodegraph.errors import NodeInputError
    from nodes.sd.handles import ModelHandle
    from nodes.sd.sampler_nodes import ksampler

    model = ModelHandle(sd15.unet, "sd15", sd15.scheduler_config, sd15.prediction_type)
    cond = (ConditioningEntry(torch.zeros(1, 77, 32)),)
    from tests.nodes.test_text_encode import _ctx

    with pytest.raises(NodeInputError, match=r"4 channels.*found shape \[1, 3, 4, 4\]") as info:
        ksampler.fn(_ctx(), model, cond, cond, {"samples": torch.zeros(1, 3, 4, 4)}, 0, 2, 5.0, 0.0, "ddim", 1.0)
    assert info.value.field == "latent_image"
