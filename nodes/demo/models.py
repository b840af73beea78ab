"""Configurations of the demo model family: a tiny SD1.5-architecture VAE, CLIP text encoder and UNet, and a
ControlNet / T2I-Adapter matching that UNet. Sizes are chosen so that everything, in fp16, fits in 16 MB."""

from __future__ import annotations

from pathlib import Path

TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "sd" / "tokenizers" / "clip"

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,  # 3 downsamplers: 64 px -> 8x8 latents, as SD's 8x
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[16, 32, 32, 64],  # the full-resolution stages dominate CPU time: keep them narrow
    layers_per_block=1,
    latent_channels=4,
    # Few, wide groups: one channel per group normalises a flat colour away (see notes/demo-probe.md).
    norm_num_groups=2,
    sample_size=64,
)

TEXT_CONFIG = dict(
    vocab_size=49408,  # the real CLIP vocabulary: its table is most of the file size (49,408 x hidden)
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,  # the first demo model had 2; one more for the varied wordings costs 0.1 MB
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=64,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
)

UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[32, 64, 64],
    layers_per_block=1,
    cross_attention_dim=64,
    attention_head_dim=8,
    norm_num_groups=8,
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)

CONTROLNET_EMBEDDING_CHANNELS = (16, 32, 64, 64)  # 3 stride-2 convs: a 64 px mask reaches the 8x8 latent


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**VAE_CONFIG)


def build_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))


def load_tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))


def build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**UNET_CONFIG)


def build_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(SCHEDULER_CONFIG)  # ignores the DDIM-only keys


def build_controlnet(unet):
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONTROLNET_EMBEDDING_CHANNELS)


def build_adapter():
    from diffusers import T2IAdapter

    return T2IAdapter(
        in_channels=3,
        channels=list(UNET_CONFIG["block_out_channels"]),
        num_res_blocks=1,
        downscale_factor=8,  # pixel-unshuffle 64 px to the 8x8 latent grid of the first UNet block
        adapter_type="full_adapter",
    )


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())
