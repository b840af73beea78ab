"""The DreamBooth trainer on tiny random SD1.5 and SDXL modules: the text path matches the product's encoder,
text encoder LoRAs train and save for SDXL's two encoders, the seed decides the result, the loss falls, and
the shared modules are left as they were."""

from __future__ import annotations

import pytest
import torch

from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
from nodes.training.dreambooth import DreamBoothTrainer, TrainSettings, encode_with_grad, train
from tests.fixtures.tiny_sd import tiny_components


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: thread hand-offs dominate
    yield
    torch.set_num_threads(threads)


def handles(family: str):
    m = tiny_components(family)
    return (ModelHandle(m.unet, family, m.scheduler_config, m.prediction_type),
            ClipHandle(family, m.tokenizers, m.text_encoders),
            VaeHandle(m.vae, family, m.vae.config.scaling_factor))


def latents(count: int, seed: int) -> torch.Tensor:
    return torch.randn(count, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_trainable_text_path_equals_the_product_encoder(family):
    from nodes.sd.text_encode import encode_prompt

    _, clip, _ = handles(family)
    prompt = "a photo of (sks:1.2) dog"  # weighted, so the weighting path is compared too
    embeds, pooled = encode_with_grad(clip, prompt, "cpu")
    expected, expected_pooled = encode_prompt(clip, (prompt,) * len(clip.encoders), "cpu")
    assert torch.equal(embeds, expected)
    assert (pooled is None) == (expected_pooled is None)
    if pooled is not None:
        assert torch.equal(pooled, expected_pooled)


def test_sdxl_with_text_encoders_trains_saves_and_restores_every_module(tmp_path):
    from nodes.adapters.lora import plan_lora, read_lora
    from nodes.training.lora_training import save_lora

    model, clip, _ = handles("sdxl")
    modules = [model.unet, *clip.encoders]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]
    settings = TrainSettings("a photo of sks dog", "a photo of a dog", steps=2, rank=2, alpha=1.0,
                             train_text_encoder=True, learning_rate=1e-2)
    trained = train(DreamBoothTrainer(model, clip, latents(2, 0), latents(3, 1), settings))
    assert len(trained.text_encoders) == 2
    # lora_B starts at zero; after two steps every component has learnt something
    for state, _ in (trained.unet, *trained.text_encoders):
        assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in state.items())
    for module, snapshot in zip(modules, before):
        state = module.state_dict()
        assert list(state) == list(snapshot) and all(torch.equal(state[k], snapshot[k]) for k in snapshot)
        assert not hasattr(module, "peft_config")

    path = save_lora(trained, tmp_path / "sdxl.safetensors")
    lora = read_lora(path)
    assert set(lora.components) == {"unet", "text_encoder", "text_encoder_2"}
    plan = plan_lora(lora, "sdxl", model.unet, tuple(clip.encoders), "sdxl")
    assert plan.unmatched == [] and plan.matched_count == sum(len(c) for c in lora.components.values())
    assert all(w.alpha == 1.0 and w.rank == 2 for c in lora.components.values() for w in c.values())


def test_the_seed_decides_the_lora():
    model, clip, _ = handles("sd15")

    def run(seed: int):
        settings = TrainSettings("a photo of sks dog", None, steps=2, seed=seed, learning_rate=1e-2)
        return train(DreamBoothTrainer(model, clip, latents(2, 0), None, settings)).unet[0]

    first, again, other = run(3), run(3), run(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_training_lowers_the_instance_loss_and_the_patch_reproduces_it():
    """Fixed noise and timesteps, loss of the base model vs the model with the trained LoRA (as a Load LoRA
    node would apply it): training on one latent must fit it better."""
    from diffusers import DDPMScheduler

    from nodes.adapters.lora import make_patches, parse_lora_state_dict, plan_lora
    from nodes.sd.text_encode import encode_prompt, patches_applied

    model, clip, _ = handles("sd15")
    target = latents(1, 7)
    settings = TrainSettings("a photo of sks dog", None, steps=25, learning_rate=1e-2, rank=4, alpha=4.0)
    trained = train(DreamBoothTrainer(model, clip, target, None, settings))
    state = {f"unet.{k}": v for k, v in trained.unet[0].items()}
    lora = parse_lora_state_dict(state, {}, "in memory")
    patch, _ = make_patches(lora, plan_lora(lora, "sd15", model.unet), 1.0, 0.0)

    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    generator = torch.Generator().manual_seed(11)
    noise = torch.randn(8, 4, 8, 8, generator=generator)
    timesteps = torch.randint(0, 1000, (8,), generator=generator)
    noisy = scheduler.add_noise(target.expand(8, -1, -1, -1), noise, timesteps)
    embeds, _ = encode_prompt(clip, ("a photo of sks dog",), "cpu")

    def loss(patches) -> float:
        with torch.no_grad(), patches_applied(model.unet, patches):
            pred = model.unet(noisy, timesteps, encoder_hidden_states=embeds.expand(8, -1, -1)).sample
        return float(torch.nn.functional.mse_loss(pred, noise))

    assert loss((patch,)) < 0.9 * loss(())
