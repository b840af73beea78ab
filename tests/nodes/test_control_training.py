"""The ControlNet / T2I-Adapter trainer on tiny random SD1.5 and SDXL models: a new ControlNet changes nothing,
the loss is the one diffusers' training scripts compute (recomputed here independently, so leaving out the
residuals or training the UNet would show), the base stays frozen, the seed decides the weights, saved
results reload through the product's loaders equal to what was trained, and SDXL runs."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
from nodes.training.control_dataset import TensorDataset
from nodes.training.control_run import build_control, fit
from nodes.training.control_training import ControlSettings, ControlTrainer
from tests.fixtures.tiny_sd import tiny_components

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: thread hand-offs dominate
    yield
    torch.set_num_threads(threads)


@functools.cache
def handles(family: str):
    """Shared by the tests (they never change the base: one of them checks exactly that)."""
    m = tiny_components(family)
    return (ModelHandle(m.unet, family, m.scheduler_config, m.prediction_type),
            ClipHandle(family, m.tokenizers, m.text_encoders),
            VaeHandle(m.vae, family, m.vae.config.scaling_factor))


def dataset(count: int = 6, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(count, SIZE, SIZE, 3, generator=g) * 255).to(torch.uint8)
    conditions = (torch.rand(count, SIZE, SIZE, 3, generator=g) > 0.5).to(torch.uint8) * 255
    captions = ["a red circle on a blue background", "a photo of a dog", ""] * (count // 3) + [""] * (count % 3)
    return TensorDataset(images, conditions, captions)


def trainer(family: str, kind: str, *, start=None, seed: int = 0, steps: int = 2, **settings):
    model, clip, vae = handles(family)
    module = build_control(kind, model, vae, None, seed=seed) if start is None else start
    config = ControlSettings(kind, steps=steps, batch_size=2, resolution=SIZE, seed=seed, learning_rate=1e-2,
                             **settings)
    return ControlTrainer(model, clip, vae, module, dataset(), config)


def randomised_controlnet(unet, seed: int):
    """A ControlNet from the UNet with its zero convolutions given random weights (a zero ControlNet's residuals
    are zero, so a loss that leaves them out could not be told apart)."""
    from tests.nodes.control_files import make_controlnet

    return make_controlnet(unet, seed).train().requires_grad_(True)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _equal_states(a, b) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------------ loss


def _fixed_batch(t: ControlTrainer):
    latents = torch.randn(2, 4, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(5))
    conditions = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(6))
    return latents, conditions, ["a red circle on a blue background", "a photo of a dog"]


def _script_draws(t: ControlTrainer, latents: torch.Tensor):
    """The noise and timesteps the trainer will draw next (a copy of its generator's state)."""
    from nodes.training.control_loss import sample_timesteps

    g = torch.Generator().manual_seed(0)
    g.set_state(t._generator.get_state())
    noise = torch.randn(latents.shape, generator=g)
    timesteps = sample_timesteps(t.settings.kind, latents.shape[0], 1000, g)
    return noise, timesteps


def _text(clip, captions):
    from nodes.sd.text_encode import encode_prompt

    return torch.cat([encode_prompt(clip, (c,) * len(clip.encoders), "cpu")[0] for c in captions])


def test_controlnet_loss_is_the_training_scripts_loss():
    """train_controlnet.py: noisy = add_noise; down, mid = controlnet(...); pred = unet(..., residuals);
    loss = F.mse_loss(pred.float(), noise.float())."""
    from diffusers import DDPMScheduler

    model, _, _ = handles("sd15")
    t = trainer("sd15", "controlnet", start=randomised_controlnet(model.unet, 3))
    latents, conditions, captions = _fixed_batch(t)
    noise, timesteps = _script_draws(t, latents)
    ours = t.loss_on(latents, conditions, captions)

    scheduler = DDPMScheduler.from_config(t.model.scheduler_config)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    text = _text(t.clip, captions)
    down, mid = t.control(noisy, timesteps, encoder_hidden_states=text, controlnet_cond=conditions, return_dict=False)
    pred = t.model.unet(noisy, timesteps, encoder_hidden_states=text, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid).sample
    script = F.mse_loss(pred.float(), noise.float(), reduction="mean")
    without = F.mse_loss(t.model.unet(noisy, timesteps, encoder_hidden_states=text).sample, noise)
    assert torch.allclose(ours, script, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(script, without, rtol=1e-3)  # the residuals matter: leaving them out would show


def test_adapter_loss_is_the_training_scripts_x0_space_loss_with_cubic_timesteps():
    """train_t2i_adapter_sdxl.py: cubic timesteps, Euler sigmas, the loss on denoised latents weighted by
    sigma**-2, which is the epsilon MSE the trainer computes."""
    t = trainer("sd15", "t2i_adapter")
    latents, conditions, captions = _fixed_batch(t)
    noise, timesteps = _script_draws(t, latents)
    ours = t.loss_on(latents, conditions, captions)

    alphas = torch.as_tensor(t._noise.alphas_cumprod)[timesteps].view(-1, 1, 1, 1)
    sigmas = ((1 - alphas) / alphas) ** 0.5
    noisy = latents + sigmas * noise  # EulerDiscreteScheduler.add_noise
    text = _text(t.clip, captions)
    features = t.control(conditions)
    pred = t.model.unet(noisy / (sigmas**2 + 1) ** 0.5, timesteps, encoder_hidden_states=text,
                        down_intrablock_additional_residuals=list(features)).sample
    denoised = pred * (-sigmas) + noisy
    script = torch.mean((sigmas**-2.0 * (denoised - latents) ** 2).reshape(latents.shape[0], -1), dim=1).mean()
    assert torch.allclose(ours, script, rtol=1e-4)
    assert timesteps.float().mean() > 500  # cubic sampling favours the noisy end


def test_cubic_timesteps_favour_high_noise_and_controlnet_timesteps_are_uniform():
    from nodes.training.control_loss import sample_timesteps

    g = torch.Generator().manual_seed(0)
    cubic = sample_timesteps("t2i_adapter", 20000, 1000, g).float()
    uniform = sample_timesteps("controlnet", 20000, 1000, g).float()
    assert 0 <= cubic.min() and cubic.max() <= 999 and 0 <= uniform.min() and uniform.max() <= 999
    assert abs(uniform.mean().item() - 499.5) < 10
    assert abs(cubic.mean().item() - 750) < 10  # E[1 - u^3] = 3/4


# ------------------------------------------------------------------------------------------ behaviour


def test_an_untrained_controlnet_leaves_the_sample_exactly_unchanged():
    from nodes.adapters.controlnet import ControlNetHandle, ControlNetSource
    from nodes.sampling.denoiser import UNetDenoiser
    from nodes.sampling.guidance import build_chain
    from nodes.sampling.loop import StepRange, sample
    from nodes.sampling.schedulers import make_scheduler
    from nodes.sd.text_encode import encode_entry

    model, clip, vae = handles("sd15")
    controlnet = build_control("controlnet", model, vae, None, seed=0).eval().requires_grad_(False)
    source = ControlNetSource(ControlNetHandle(controlnet, "sd15", "new"), torch.rand(1, SIZE, SIZE, 3))
    pos = encode_entry(clip, ("a red circle",) * len(clip.encoders), "cpu")
    neg = encode_entry(clip, ("",) * len(clip.encoders), "cpu")

    def draw(residuals):
        p, n = (pos.with_extras(residuals=residuals), neg.with_extras(residuals=residuals)) if residuals else (pos, neg)
        return sample(UNetDenoiser(model.unet), make_scheduler("euler", model.scheduler_config), torch.zeros(1, 4, 8, 8),
                      [p], [n], seed=1, span=StepRange.of(3), chain=build_chain(4.0), cfg_scale=4.0)

    assert torch.equal(draw((source,)), draw(()))
    assert any(p.abs().sum() > 0 for p in controlnet.controlnet_cond_embedding.conv_in.parameters())


@pytest.mark.parametrize("kind", ["controlnet", "t2i_adapter"])
def test_training_changes_only_the_control_model(kind):
    t = trainer("sd15", kind)
    frozen = [t.model.unet, t.vae.vae, *t.clip.encoders]
    before = [_snapshot(m) for m in frozen]
    start = _snapshot(t.control)
    trained = fit(t)
    assert all(_equal_states(_snapshot(m), s) for m, s in zip(frozen, before))
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
    changed = [k for k, v in trained.state_dict().items() if not torch.equal(v, start[k])]
    assert len(changed) > len(start) // 2


def test_the_seed_decides_the_trained_weights():
    a = fit(trainer("sd15", "t2i_adapter", seed=4)).state_dict()
    b = fit(trainer("sd15", "t2i_adapter", seed=4)).state_dict()
    c = fit(trainer("sd15", "t2i_adapter", seed=5)).state_dict()
    assert _equal_states(a, b)
    assert not _equal_states(a, c)


def test_gradient_accumulation_and_checkpointing_train_and_restore_the_unet():
    t = trainer("sd15", "controlnet", gradient_accumulation=2, gradient_checkpointing=True)
    fit(t)
    assert t.steps_done == 2 and len(t.losses) == 2
    assert not t.model.unet.is_gradient_checkpointing  # switched on for the run only


@pytest.mark.parametrize(("kind", "single_file"), [("controlnet", False), ("controlnet", True),
                                                    ("t2i_adapter", False), ("t2i_adapter", True)])
def test_saved_results_reload_through_the_loaders_equal_to_what_was_trained(tmp_path, kind, single_file):
    from nodes.adapters.controlnet import load_controlnet
    from nodes.adapters.t2i_adapter import load_adapter
    from nodes.training.control_models import free_target, save_control

    t = trainer("sd15", kind)
    trained = fit(t)
    target, name = free_target(tmp_path, "result", single_file)
    save_control(trained, target, single_file)
    assert free_target(tmp_path, "result", single_file)[1] != name  # taken: the next save gets another name
    loaded = load_controlnet(target).model if kind == "controlnet" else load_adapter(target).adapter
    assert _equal_states(loaded.state_dict(), trained.state_dict())
    assert (target.stat().st_mode & 0o777) == (0o777 if target.is_dir() else 0o666) & ~_umask()


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("kind", ["controlnet", "t2i_adapter"])
def test_sdxl_trains_validates_and_reloads(tmp_path, kind):
    from nodes.adapters.controlnet import load_controlnet
    from nodes.adapters.t2i_adapter import load_adapter
    from nodes.training.control_models import save_control

    if kind == "t2i_adapter":  # SDXL's adapter layout needs SDXL's three levels (the tiny SDXL has two)
        from tests.fixtures.tiny_sd import tiny_components

        m = tiny_components("sdxl")
        model, clip, vae = handles("sdxl")
        unet = _three_level_sdxl_unet(m.unet)
        model = ModelHandle(unet, "sdxl", m.scheduler_config, m.prediction_type)
        module = build_control(kind, model, vae, None, seed=0)
        t = ControlTrainer(model, clip, vae, module, dataset(),
                           ControlSettings(kind, steps=2, batch_size=2, resolution=SIZE, learning_rate=1e-2))
    else:
        t = trainer("sdxl", kind)
    trained = fit(t)
    images = t.validate(["a red circle"], torch.rand(1, SIZE, SIZE, 3), seed=0, steps=2, cfg=3.0)
    assert images.shape == (1, SIZE, SIZE, 3) and torch.isfinite(images).all()
    save_control(trained, tmp_path / "xl", False)
    loaded = load_controlnet(tmp_path / "xl") if kind == "controlnet" else load_adapter(tmp_path / "xl")
    assert loaded.family == "sdxl"


def _three_level_sdxl_unet(tiny):
    from diffusers import UNet2DConditionModel

    config = dict(tiny.config)
    config.update(block_out_channels=[32, 64, 64], down_block_types=["DownBlock2D", "CrossAttnDownBlock2D",
                  "CrossAttnDownBlock2D"], up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                  attention_head_dim=[2, 4, 4], transformer_layers_per_block=[1, 1, 1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return UNet2DConditionModel.from_config(config).eval().requires_grad_(False)


def test_adapter_layouts_that_do_not_fit_the_unet_are_refused_clearly():
    from nodes.training.control_models import ControlBuildError

    model, _, vae = handles("sd15")
    with pytest.raises(ControlBuildError, match="light adapter"):
        build_control("t2i_adapter", model, vae, None, seed=0, adapter_type="light_adapter")
    with pytest.raises(ControlBuildError, match="SDXL"):
        build_control("t2i_adapter", model, vae, None, seed=0, adapter_type="full_adapter_xl")
    with pytest.raises(ControlBuildError, match="4 widths"):
        build_control("controlnet", model, vae, None, seed=0, embedding_channels=(16, 32))


def test_bf16_mixed_precision_trains_float32_weights():
    model, clip, vae = handles("sd15")
    module = build_control("controlnet", model, vae, None, seed=0)
    t = ControlTrainer(model, clip, vae, module, dataset(),
                       ControlSettings("controlnet", steps=1, batch_size=2, resolution=SIZE, learning_rate=1e-2),
                       dtype=torch.bfloat16)
    trained = fit(t)
    assert all(p.dtype == torch.float32 for p in trained.parameters())
    assert t.losses and all(loss == loss for loss in t.losses)  # finite, not NaN
