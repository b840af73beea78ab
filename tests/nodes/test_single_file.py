"""The original single-file layout: the writer is the exact inverse of diffusers' converters (checked at
full size on the meta device, so no weights are allocated), family detection, and architecture inference
from tensor shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
    infer_diffusers_model_type,
)
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from nodes.sd.architecture import detect_family, infer_open_clip_config, infer_unet_config, infer_vae_config
from nodes.sd.convert_to_ldm import OPEN_CLIP_PREFIX, open_clip_to_ldm, unet_to_ldm, vae_to_ldm
from nodes.sd.families import FAMILIES, load_config
from nodes.sd.single_file import load_single_file
from nodes.sd.tensor_sources import CheckpointError, SafetensorsSource
from tests.fixtures.tiny_sd import write_tiny_checkpoint


def _meta_unet(config: dict) -> UNet2DConditionModel:
    with init_empty_weights(include_buffers=True):
        return UNet2DConditionModel.from_config(config)


def _meta_vae(config: dict) -> AutoencoderKL:
    with init_empty_weights(include_buffers=True):
        return AutoencoderKL.from_config(config)


def _shapes(pairs) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in pairs}


# Fields of a UNet config that decide the weights' shapes (the rest, such as head counts and norm groups,
# are not stored in a checkpoint).
UNET_SHAPE_FIELDS = ("in_channels", "out_channels", "block_out_channels", "layers_per_block", "down_block_types",
                     "up_block_types", "cross_attention_dim", "use_linear_projection",
                     "projection_class_embeddings_input_dim", "addition_time_embed_dim")


@pytest.mark.parametrize(("family", "keys", "model_type"), [
    ("sd15", 686, "v1"), ("sdxl", 1680, "xl_base"), ("sdxl_refiner", 1220, "xl_refiner"),
])
def test_full_size_unet_round_trips_through_the_original_layout(family: str, keys: int, model_type: str) -> None:
    config = load_config(family, "unet")
    state = _meta_unet(config).state_dict()
    ldm = dict(unet_to_ldm(state, config))
    assert len(ldm) == len(state) == keys
    back = convert_ldm_unet_checkpoint(ldm, config)
    assert back.keys() == state.keys()
    assert all(back[k] is state[k] for k in state)  # each tensor lands exactly where it came from
    if family == "sd15":
        assert infer_diffusers_model_type(ldm) == model_type
    # a standard checkpoint without metadata infers exactly the family's shipped config
    pooled = 1280 if family != "sd15" else None
    assert infer_unet_config(_shapes(ldm.items()), family, pooled) == config


@pytest.mark.parametrize("family", ["sdxl", "sdxl_refiner"])
def test_full_size_sdxl_checkpoint_is_recognised_by_diffusers(family: str) -> None:
    text = load_config(family, "text_encoder_2")
    with init_empty_weights(include_buffers=True):
        encoder = CLIPTextModelWithProjection(CLIPTextConfig(**text))
    prefix = OPEN_CLIP_PREFIX[family]
    ldm = dict(open_clip_to_ldm(encoder.state_dict(), prefix))
    ldm.update(unet_to_ldm(_meta_unet(load_config(family, "unet")).state_dict(), load_config(family, "unet")))
    assert infer_diffusers_model_type(ldm) == {"sdxl": "xl_base", "sdxl_refiner": "xl_refiner"}[family]
    assert infer_open_clip_config(_shapes(ldm.items()), family, prefix) == {**text}


def test_full_size_vae_round_trips_and_its_config_is_inferred() -> None:
    config = load_config("sd15", "vae")
    state = _meta_vae(config).state_dict()
    ldm = dict(vae_to_ldm(state, config))
    assert len(ldm) == len(state)
    # the decoder's up blocks are numbered from the full-resolution end: up.0 is diffusers' last up block
    assert ldm["first_stage_model.decoder.up.0.block.0.conv1.weight"].shape == (128, 256, 3, 3)
    assert ldm["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (512, 512, 1, 1)  # 1x1 conv
    back = convert_ldm_vae_checkpoint(ldm, config)
    assert back.keys() == state.keys()
    assert all(back[k].shape == state[k].shape for k in state)
    inferred = infer_vae_config(_shapes(ldm.items()), "sd15")
    assert inferred == config


def test_open_clip_fused_attention_splits_back_exactly() -> None:
    torch.manual_seed(0)
    config = CLIPTextConfig(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
                            projection_dim=8, vocab_size=50, max_position_embeddings=7)
    encoder = CLIPTextModelWithProjection(config)
    state = encoder.state_dict()
    prefix = OPEN_CLIP_PREFIX["sdxl"]
    ldm = dict(open_clip_to_ldm(state, prefix))
    assert ldm[prefix + "transformer.resblocks.1.attn.in_proj_weight"].shape == (48, 16)
    assert ldm[prefix + "text_projection"].shape == (16, 8)  # open_clip stores it as x @ P
    back = convert_open_clip_checkpoint(encoder, ldm, prefix=prefix)
    for key, value in state.items():
        if not key.endswith("position_ids"):
            assert torch.equal(back[key], value), key


@pytest.mark.parametrize(("keys", "expected"), [
    ({"model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.model.token_embedding.weight"},
     "Stable Diffusion 2.x"),
    ({"lora_unet_down_blocks_0.lora_down.weight"}, "a LoRA"),
    ({"encoder.down.0.block.0.conv1.weight", "decoder.up.0.block.0.conv1.weight"}, "a VAE on its own"),
    ({"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"}, "Stable Diffusion 3"),
    ({"model.diffusion_model.input_blocks.0.0.weight"}, "a UNet without the text encoders"),
    (set(), "no tensors at all"),
])
def test_detection_names_what_an_unsupported_file_holds(keys: set, expected: str) -> None:
    with pytest.raises(CheckpointError, match=r"not an SD1\.5, SDXL or SDXL refiner checkpoint") as info:
        detect_family(dict.fromkeys(keys, (1,)), "x.safetensors")
    assert expected in str(info.value)


def test_custom_unet_architecture_is_inferred_from_shapes() -> None:
    """An SD1.5-style UNet nobody ships: three levels of odd widths, one layer each, two transformer layers,
    9 input channels (inpainting), a 24-wide text encoder."""
    config = load_config("sd15", "unet")
    config.update(block_out_channels=[16, 48, 64], layers_per_block=1, in_channels=9, cross_attention_dim=24,
                  down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                  up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                  transformer_layers_per_block=2, norm_num_groups=16)
    ldm = dict(unet_to_ldm(_meta_unet(config).state_dict(), config))
    inferred = infer_unet_config(_shapes(ldm.items()), "sd15")
    for field in (*UNET_SHAPE_FIELDS, "transformer_layers_per_block", "norm_num_groups"):
        assert inferred.get(field) == config.get(field), field
    # the inferred config builds a UNet whose weights the file fills exactly
    assert _meta_unet(inferred).state_dict().keys() == convert_ldm_unet_checkpoint(ldm, inferred).keys()


def test_custom_sdxl_unet_with_per_level_depths_is_inferred_from_shapes() -> None:
    config = load_config("sdxl", "unet")
    config.update(block_out_channels=[64, 128, 192], transformer_layers_per_block=[1, 2, 3], cross_attention_dim=96,
                  addition_time_embed_dim=16, projection_class_embeddings_input_dim=48 + 6 * 16)
    ldm = dict(unet_to_ldm(_meta_unet(config).state_dict(), config))
    inferred = infer_unet_config(_shapes(ldm.items()), "sdxl", pooled_dim=48)
    for field in UNET_SHAPE_FIELDS:
        assert inferred.get(field) == config.get(field), field
    assert inferred["transformer_layers_per_block"] == [1, 2, 3]
    assert inferred["attention_head_dim"] == [1, 2, 3]  # 64-wide heads, as SDXL's
    assert _meta_unet(inferred).state_dict().keys() == convert_ldm_unet_checkpoint(ldm, inferred).keys()


def test_checkpoint_without_metadata_loads_from_inferred_architecture(tmp_path: Path) -> None:
    path = write_tiny_checkpoint(tmp_path / "meta.safetensors", "sdxl", seed=7)
    plain = tmp_path / "plain.safetensors"
    save_file(load_file(str(path)), str(plain))  # same tensors, no configs in the metadata
    with_meta, without = load_single_file(path), load_single_file(plain)
    assert not with_meta.inferred and without.inferred
    for a, b in ((with_meta.unet, without.unet), (with_meta.vae, without.vae),
                 *zip(with_meta.text_encoders, without.text_encoders)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    for field in UNET_SHAPE_FIELDS:
        assert without.configs["unet"].get(field) == with_meta.configs["unet"].get(field), field


def test_checkpoint_as_trainers_write_it_loads(tmp_path: Path) -> None:
    """Original SD1.5 files also carry an EMA copy, CLIP's position ids and the noise schedule."""
    path = write_tiny_checkpoint(tmp_path / "clean.safetensors", "sd15", seed=8)
    tensors = load_file(str(path))
    tensors["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    tensors["alphas_cumprod"] = torch.linspace(1, 0, 1000)
    tensors.update({f"model_ema.diffusion_model{i}": torch.zeros(2) for i in range(3)})
    save_file(tensors, str(tmp_path / "trainer.safetensors"))
    clean, trainer = load_single_file(path), load_single_file(tmp_path / "trainer.safetensors")
    assert trainer.family == "sd15"
    sa, sb = clean.text_encoders[0].state_dict(), trainer.text_encoders[0].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_each_weight_is_read_once_and_assigned_without_a_copy(tmp_path: Path, monkeypatch) -> None:
    path = write_tiny_checkpoint(tmp_path / "m.safetensors", "sd15")
    reads: dict[str, int] = {}
    pointers: set[int] = set()
    original = SafetensorsSource.__getitem__

    def spy(self, key):
        tensor = original(self, key)
        reads[key] = reads.get(key, 0) + 1
        pointers.add(tensor.data_ptr())
        return tensor

    monkeypatch.setattr(SafetensorsSource, "__getitem__", spy)
    loaded = load_single_file(path)
    assert max(reads.values()) == 1
    modules = (loaded.unet, loaded.vae, *loaded.text_encoders)
    params = [p for m in modules for p in m.parameters()]
    # parameters are the very buffers read from the file (the VAE's attention weights are views of them)
    assert all(p.untyped_storage().data_ptr() in pointers for p in params)
    assert len(reads) == sum(len(m.state_dict()) for m in modules)  # nothing read that is not used


def test_every_family_has_shipped_configs_for_its_components() -> None:
    for family in FAMILIES.values():
        for name in ("unet", "vae", "scheduler", *family.text_encoders):
            assert load_config(family.key, name)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_saved_file_is_read_by_diffusers_own_single_file_loader(tmp_path: Path, family: str) -> None:
    """The writer produces the real original layout: diffusers' ``from_single_file`` reads it back exactly."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from tests.fixtures.tiny_sd import tiny_components, tiny_configs, write_reference_folder

    path = write_tiny_checkpoint(tmp_path / "tiny.safetensors", family, seed=9)
    config = write_reference_folder(tmp_path, family, tiny_configs(family))
    cls = StableDiffusionPipeline if family == "sd15" else StableDiffusionXLPipeline
    extra = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False} if (
        family == "sd15") else {}
    pipe = cls.from_single_file(str(path), config=str(config), local_files_only=True, torch_dtype=torch.float32,
                                **extra)
    original = tiny_components(family, seed=9)
    pairs = [(original.unet, pipe.unet), (original.vae, pipe.vae), (original.text_encoders[0], pipe.text_encoder)]
    if family == "sdxl":
        pairs.append((original.text_encoders[1], pipe.text_encoder_2))
    for ours, theirs in pairs:
        sa, sb = ours.state_dict(), theirs.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
