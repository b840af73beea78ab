"""FLUX from single files, as users have them: the transformer alone (original and diffusers layout, ComfyUI's
diffusion_models), CLIP-L and T5 files with a T5 tokenizer folder (text_encoders), the VAE (ae.safetensors), and a
whole checkpoint with ComfyUI's prefixes. The loaded weights equal the folder's they were written from (and
diffusers' ``from_single_file`` where diffusers reads that file), and the images equal FluxPipeline's on the folder.
The original-layout conversion equals diffusers' own converter, key for key and row for row, at the released width.
"""

from __future__ import annotations

import pytest
import torch

from tests.fixtures import spiece
from tests.fixtures.flow_files import clip_file_state, flux_to_original, save, t5_file_state, vae_file_state
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401
from tests.nodes.flow_fixtures import link

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def models(tmp_path_factory, flux_dev_folder):
    root = tmp_path_factory.mktemp("models")
    folder = link(flux_dev_folder, root)
    pipe = diffusers.FluxPipeline.from_pretrained(folder, local_files_only=True)
    original = flux_to_original(pipe.transformer.state_dict())
    save(root / "diffusion_models" / "flux-tiny.safetensors", original)
    save(root / "diffusion_models" / "flux-tiny-diffusers.safetensors", pipe.transformer.state_dict())
    clip, t5, vae = clip_file_state(pipe.text_encoder), t5_file_state(pipe.text_encoder_2), vae_file_state(pipe.vae)
    save(root / "text_encoders" / "clip_l.safetensors", clip)
    save(root / "text_encoders" / "t5xxl_tiny.safetensors", t5)
    spiece.write_folder(root / "text_encoders" / "t5_tokenizer", "t5")
    save(root / "vae" / "ae.safetensors", vae)
    whole = {f"model.diffusion_model.{k}": v for k, v in original.items()}
    whole |= {f"text_encoders.clip_l.transformer.{k}": v for k, v in clip.items()}
    whole |= {f"text_encoders.t5xxl.transformer.{k}": v for k, v in t5.items()}
    whole |= {f"vae.{k}": v for k, v in vae.items()}
    save(root / "checkpoints" / "flux-tiny-full.safetensors", whole)
    return root


@pytest.fixture(scope="module")
def executor(models):
    return make_executor(models)


@pytest.fixture(scope="module")
def expected(models):
    pipe = diffusers.FluxPipeline.from_pretrained(models / "checkpoints" / "tiny-flux-dev", local_files_only=True)
    return pipe(PROMPT, height=32, width=48, num_inference_steps=2, guidance_scale=3.5,
                generator=torch.Generator("cpu").manual_seed(17), output_type="np").images


def sampling(model: tuple, clip: tuple, vae: tuple) -> dict:
    return {
        "pos": n("core.FluxTextEncode", {"text": PROMPT}, clip=clip),
        "empty": n("core.EmptyLatentForModel", {"width": 48, "height": 32}, model=model),
        "sampler": n("core.KSampler", {"seed": 17, "steps": 2, "cfg": 1.0, "scheduler": "euler"},
                     model=model, positive=("pos", "conditioning"), negative=("pos", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=vae),
    }


def separate_files(unet_name: str) -> dict:
    return {
        "unet": n("core.FlowTransformerLoader", {"unet_name": unet_name}),
        "clip": n("core.FlowTextEncoderLoader", {"type": "flux", "clip_l": "clip_l.safetensors",
                                                 "t5": "t5xxl_tiny.safetensors"}),
        "vae": n("core.VAELoader", {"vae_name": "ae.safetensors"}),
        **sampling(("unet", "model"), ("clip", "clip"), ("vae", "vae")),
    }


def assert_same_weights(ours, theirs) -> None:
    ours, theirs = ours.state_dict(), theirs.state_dict()
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not different, different[:5]


def test_separate_files_equal_the_folder_and_flux_pipeline(models, executor, expected):
    result = run(executor, separate_files("flux-tiny.safetensors"), ["decode", "unet", "clip", "vae"])
    folder = diffusers.FluxPipeline.from_pretrained(models / "checkpoints" / "tiny-flux-dev", local_files_only=True)
    assert result.outputs["unet"]["family"] == "FLUX.1 [dev]"
    assert_same_weights(result.outputs["unet"]["model"].unet, folder.transformer)
    clip = result.outputs["clip"]["clip"]
    assert_same_weights(clip.text_encoders[0], folder.text_encoder)
    assert_same_weights(clip.text_encoders[1], folder.text_encoder_2)
    vae = result.outputs["vae"]["vae"]
    assert (vae.scaling_factor, vae.shift_factor) == (0.3611, 0.1159)
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_diffusers_layout_transformer_file_equals_from_single_file(models, executor):
    result = run(executor, {"unet": n("core.FlowTransformerLoader", {"unet_name": "flux-tiny-diffusers.safetensors"})},
                 ["unet"])
    theirs = diffusers.FluxTransformer2DModel.from_single_file(
        str(models / "diffusion_models" / "flux-tiny-diffusers.safetensors"),
        config=str(models / "checkpoints" / "tiny-flux-dev"), subfolder="transformer", local_files_only=True)
    assert_same_weights(result.outputs["unet"]["model"].unet, theirs)


def test_vae_file_equals_from_single_file(models, executor):
    result = run(executor, {"vae": n("core.VAELoader", {"vae_name": "ae.safetensors"})}, ["vae"])
    theirs = diffusers.AutoencoderKL.from_single_file(
        str(models / "vae" / "ae.safetensors"), config=str(models / "checkpoints" / "tiny-flux-dev"), subfolder="vae",
        local_files_only=True)
    ours = result.outputs["vae"]["vae"].vae
    assert_same_weights(ours, theirs)
    latents = torch.randn(1, 16, 4, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the architecture (group norms, attention) is the same too, not only the weights
        assert torch.equal(ours.decode(latents).sample, theirs.decode(latents).sample)


def test_whole_checkpoint_equals_flux_pipeline(executor, expected):
    nodes = {"load": n("core.FlowCheckpointLoader", {"ckpt_name": "flux-tiny-full.safetensors"}),
             **sampling(("load", "model"), ("load", "clip"), ("load", "vae"))}
    result = run(executor, nodes, ["decode"])
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_t5_file_without_its_tokenizer_says_where_to_put_it(models, tmp_path):
    from nodegraph.errors import NodeExecutionError

    (tmp_path / "text_encoders").mkdir()
    for name in ("clip_l.safetensors", "t5xxl_tiny.safetensors"):
        (tmp_path / "text_encoders" / name).symlink_to(models / "text_encoders" / name)
    with pytest.raises(NodeExecutionError) as info:
        run(make_executor(tmp_path), {"clip": separate_files("x")["clip"]}, ["clip"])
    assert "t5_tokenizer" in info.value.message and "spiece.model" in info.value.message


def test_original_layout_conversion_equals_diffusers_converter_at_the_released_width():
    """Each tensor is one column of labels (file key, row): the converters only cut and reorder rows, so equal labels
    mean equal mappings, at the width diffusers' converter is written for (3072), without gigabytes of weights."""
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    from nodes.flux.transformer_file import original_to_diffusers

    inner, mlp, head = 3072, 12288, 128
    rows = {"time_in.in_layer": inner, "time_in.out_layer": inner, "vector_in.in_layer": inner,
            "vector_in.out_layer": inner, "guidance_in.in_layer": inner, "guidance_in.out_layer": inner,
            "txt_in": inner, "img_in": inner, "final_layer.linear": 64, "final_layer.adaLN_modulation.1": 2 * inner}
    for i in range(2):
        for stream in ("img", "txt"):
            rows |= {f"double_blocks.{i}.{stream}_mod.lin": 6 * inner, f"double_blocks.{i}.{stream}_attn.qkv": 3 * inner,
                     f"double_blocks.{i}.{stream}_attn.proj": inner, f"double_blocks.{i}.{stream}_mlp.0": mlp,
                     f"double_blocks.{i}.{stream}_mlp.2": inner}
        rows |= {f"single_blocks.{i}.linear1": 3 * inner + mlp, f"single_blocks.{i}.linear2": inner,
                 f"single_blocks.{i}.modulation.lin": 3 * inner}
    state: dict[str, torch.Tensor] = {}
    for index, (module, count) in enumerate(rows.items()):
        for part_index, part in enumerate(("weight", "bias")):
            label = (index * 2 + part_index) * 100_000
            state[f"{module}.{part}"] = torch.arange(label, label + count, dtype=torch.float64)[:, None]
    norms = [f"double_blocks.{i}.{s}_attn.norm.{q}_norm.scale" for i in range(2) for s in ("img", "txt")
             for q in ("query", "key")] + [f"single_blocks.{i}.norm.{q}_norm.scale" for i in range(2) for q in ("query", "key")]
    for index, key in enumerate(norms):
        state[key] = torch.arange(head, dtype=torch.float64) + 10_000_000 * (index + 1)
    ours = original_to_diffusers(state.__getitem__, list(state))
    theirs = convert_flux_transformer_checkpoint_to_diffusers({f"model.diffusion_model.{k}": v for k, v in state.items()})
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    different = [k for k in theirs if not torch.equal(ours[k], theirs[k])]
    assert not different, different[:5]
