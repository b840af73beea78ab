"""The demo trainer's bookkeeping on real (tiny-batch) diffusers models: resumable checkpoints, loss logs, joint
text-encoder training on varied captions, components that load back through diffusers, and the ControlNet /
T2I-Adapter trained through the product's own training code."""

import csv

import torch

from nodes.demo import models, train


def _steps_logged(path):
    with path.open() as f:
        return [row["step"] for row in csv.DictReader(f)]


def test_vae_training_resumes_from_its_checkpoint(tmp_path):
    train.main(["--component", "vae", "--out", str(tmp_path), "--steps", "2", "--batch", "2"])
    first = torch.load(tmp_path / "vae_ckpt.pt", weights_only=True)
    train.main(["--component", "vae", "--out", str(tmp_path), "--steps", "3", "--batch", "2", "--resume"])
    second = torch.load(tmp_path / "vae_ckpt.pt", weights_only=True)
    assert (first["step"], second["step"]) == (2, 3)
    assert _steps_logged(tmp_path / "vae_loss.csv") == ["2", "3"]  # one log, continued
    # one more step from the saved weights changes them only slightly (a fresh start would not be close)
    diff = max((first["modules"]["vae"][k] - second["modules"]["vae"][k]).abs().max().item()
               for k in first["modules"]["vae"] if first["modules"]["vae"][k].is_floating_point())
    assert 0 < diff < 0.05
    vae = models.build_vae().from_pretrained(tmp_path / "vae")
    assert vae.config.scaling_factor != 0.18215  # measured from its own latents


def test_unet_training_also_trains_the_text_encoder_and_control_models_train_on_it(tmp_path):
    train.main(["--component", "vae", "--out", str(tmp_path), "--steps", "1", "--batch", "2"])
    torch.manual_seed(0)  # train_unet builds its models right after seeding with the same seed
    models.build_unet()
    reference = models.build_text_encoder().state_dict()
    train.main(["--component", "unet", "--out", str(tmp_path), "--steps", "2", "--batch", "4", "--pool", "8"])
    text = torch.load(tmp_path / "unet_ckpt.pt", weights_only=True)["modules"]["text_encoder"]
    changed = [k for k in reference if not torch.equal(text[k], reference[k])]
    assert any("layers.1" in k for k in changed) and any("token_embedding" in k for k in changed)
    assert torch.load(tmp_path / "latents.pt", weights_only=True)["mean"].shape == (8, 4, 8, 8)
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    assert UNet2DConditionModel.from_pretrained(tmp_path / "unet").config.cross_attention_dim == 64
    assert CLIPTextModel.from_pretrained(tmp_path / "text_encoder").config.hidden_size == 64

    from nodes.adapters.controlnet import load_controlnet
    from nodes.adapters.t2i_adapter import load_adapter

    for component in ("controlnet", "adapter"):
        train.main(["--component", component, "--out", str(tmp_path), "--steps", "2", "--batch", "2",
                    "--pool", "4", "--eval-every", "1000"])
    controlnet = load_controlnet(tmp_path / "controlnet").model
    assert tuple(controlnet.config.conditioning_embedding_out_channels) == models.CONTROLNET_EMBEDDING_CHANNELS
    assert controlnet.controlnet_mid_block.weight.abs().max() > 0  # trained away from its zero start
    assert load_adapter(tmp_path / "adapter").adapter.config.channels == list(models.UNET_CONFIG["block_out_channels"])
