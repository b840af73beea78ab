"""SD3 / SD3.5 single-file checkpoints as Stability ships them (the MMDiT under ``model.diffusion_model.`` in the
original layout, the VAE under ``first_stage_model.``, CLIP-L, CLIP-G and T5 under ``text_encoders.*``), with and
without the text encoders. Loaded weights equal diffusers' ``StableDiffusion3Pipeline.from_single_file`` of the same
file, and the images equal that pipeline's."""

from __future__ import annotations

import pytest
import torch

from tests.fixtures import spiece
from tests.fixtures.flow_files import (
    check_sd3_inverse,
    clip_file_state,
    save,
    sd3_to_original,
    t5_file_state,
    vae_file_state,
)
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401
from tests.nodes.flow_fixtures import link

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def models(tmp_path_factory, sd35_medium_folder):
    root = tmp_path_factory.mktemp("models")
    folder = link(sd35_medium_folder, root, "tiny-sd35")
    pipe = diffusers.StableDiffusion3Pipeline.from_pretrained(folder, local_files_only=True)
    state = pipe.transformer.state_dict()
    original = sd3_to_original(state, pipe.transformer.config.num_layers)
    check_sd3_inverse(state, original)
    core = {f"model.diffusion_model.{k}": v for k, v in original.items()}
    core |= {f"first_stage_model.{k}": v for k, v in vae_file_state(pipe.vae).items()}
    encoders = {f"text_encoders.clip_l.transformer.{k}": v for k, v in clip_file_state(pipe.text_encoder).items()}
    encoders |= {f"text_encoders.clip_g.transformer.{k}": v for k, v in clip_file_state(pipe.text_encoder_2).items()}
    t5 = {f"text_encoders.t5xxl.transformer.{k}": v for k, v in t5_file_state(pipe.text_encoder_3, True).items()}
    save(root / "checkpoints" / "sd35-tiny-t5.safetensors", core | encoders | t5)
    save(root / "checkpoints" / "sd35-tiny-clips.safetensors", core | encoders)
    save(root / "checkpoints" / "sd35-tiny-bare.safetensors", core)
    save(root / "diffusion_models" / "sd35-tiny-mmdit.safetensors", original)
    spiece.write_folder(root / "text_encoders" / "t5_tokenizer", "t5")
    return root


@pytest.fixture(scope="module")
def executor(models):
    return make_executor(models)


def single_file_pipeline(models, name: str, **components):
    return diffusers.StableDiffusion3Pipeline.from_single_file(
        str(models / "checkpoints" / name), config=str(models / "checkpoints" / "tiny-sd35"), local_files_only=True,
        **components)


def assert_same_weights(ours, theirs) -> None:
    ours, theirs = ours.state_dict(), theirs.state_dict()
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not different, different[:5]


def workflow(name: str) -> dict:
    return {
        "load": n("core.FlowCheckpointLoader", {"ckpt_name": name}),
        "pos": n("core.SD3TextEncode", {"text": PROMPT}, clip=("load", "clip")),
        "neg": n("core.SD3TextEncode", {"text": ""}, clip=("load", "clip")),
        "empty": n("core.EmptyLatentForModel", {"width": 32, "height": 48}, model=("load", "model")),
        "sampler": n("core.KSampler", {"seed": 5, "steps": 2, "cfg": 3.0, "scheduler": "euler"},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }


@pytest.mark.parametrize(("name", "t5"), [("sd35-tiny-t5.safetensors", True), ("sd35-tiny-clips.safetensors", False)])
def test_sd3_checkpoint_equals_from_single_file(models, executor, name, t5):
    result = run(executor, workflow(name), ["decode", "load"])
    outputs = result.outputs["load"]
    assert outputs["family"] == "SD3.5 Medium"
    pipe = single_file_pipeline(models, name, **({} if t5 else {"text_encoder_3": None, "tokenizer_3": None}))
    assert_same_weights(outputs["model"].unet, pipe.transformer)
    assert_same_weights(outputs["vae"].vae, pipe.vae)
    clip = outputs["clip"]
    assert_same_weights(clip.text_encoders[0], pipe.text_encoder)
    assert_same_weights(clip.text_encoders[1], pipe.text_encoder_2)
    assert clip.has_t5 == t5
    if t5:
        assert_same_weights(clip.text_encoders[2], pipe.text_encoder_3)
        pipe.text_encoder_3.eval()  # diffusers' single-file T5 comes in training mode (dropout on)
    expected = pipe(PROMPT, negative_prompt="", height=48, width=32, num_inference_steps=2, guidance_scale=3.0,
                    generator=torch.Generator("cpu").manual_seed(5), output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_checkpoint_without_text_encoders_loads_the_rest_and_says_what_to_connect(models, executor):
    from nodegraph.events import NodeLog
    from nodegraph.workflow import parse_workflow

    events = []
    doc = {"format": "nodegraph.workflow", "version": 1,
           "nodes": {"load": n("core.FlowCheckpointLoader", {"ckpt_name": "sd35-tiny-bare.safetensors"})}}
    result = executor.run(parse_workflow(doc, executor.registry), ["load"], on_event=events.append)
    assert result.outputs["load"]["clip"] is None and result.outputs["load"]["vae"] is not None
    warnings = [e.message for e in events if isinstance(e, NodeLog)]
    assert any("Load Text Encoders (FLUX / SD3)" in w for w in warnings), warnings


def test_separate_transformer_and_text_encoder_files_equal_the_whole_checkpoint(models, executor):
    whole = run(executor, workflow("sd35-tiny-t5.safetensors"), ["decode"]).outputs["decode"]["image"]
    for name, state in (("clip_l", "clip_l"), ("clip_g", "clip_g"), ("t5xxl", "t5xxl")):
        source = models / "checkpoints" / "sd35-tiny-t5.safetensors"
        from safetensors import safe_open

        with safe_open(str(source), "pt") as f:
            prefix = f"text_encoders.{state}.transformer."
            save(models / "text_encoders" / f"{name}.safetensors",
                 {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)})
    nodes = workflow("unused")
    nodes["load"] = n("core.FlowTransformerLoader", {"unet_name": "sd35-tiny-mmdit.safetensors"})
    nodes["clip"] = n("core.FlowTextEncoderLoader", {"type": "sd3", "clip_l": "clip_l.safetensors",
                                                     "clip_g": "clip_g.safetensors", "t5": "t5xxl.safetensors"})
    nodes["vae"] = n("core.FlowCheckpointLoader", {"ckpt_name": "sd35-tiny-bare.safetensors"})
    for key in ("pos", "neg"):
        nodes[key]["inputs"]["clip"] = ["clip", "clip"]
    nodes["decode"]["inputs"]["vae"] = ["vae", "vae"]
    separate = run(executor, nodes, ["decode"]).outputs["decode"]["image"]
    assert_same_image(separate, whole.numpy())
