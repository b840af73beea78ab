"""FLUX LoRAs through Load LoRA equal diffusers' FluxPipeline.load_lora_weights, for each layout: diffusers/PEFT,
kohya, and the original layout with ComfyUI's names (lora_down/lora_up, or PEFT's lora_A/lora_B). Strength scales as
the pipeline's LoRA scale; the incoming model is left unchanged (sampling it after the LoRA run gives the base)."""

from __future__ import annotations

import pytest
import torch

from tests.fixtures.flux_loras import TEXT_ATTENTION, original_modules, write_kohya, write_original, write_peft
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401
from tests.nodes.flow_fixtures import link

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def models(tmp_path_factory, flux_dev_folder):
    root = tmp_path_factory.mktemp("models")
    folder = link(flux_dev_folder, root, "tiny-flux")
    pipe = diffusers.FluxPipeline.from_pretrained(folder, local_files_only=True)
    modules = original_modules(pipe.transformer, pipe.text_encoder)
    loras = root / "loras"
    write_kohya(loras / "kohya.safetensors", modules)
    write_original(loras / "comfy.safetensors", modules)
    write_original(loras / "original_peft_names.safetensors", modules, peft_names=True)
    write_kohya(loras / "kohya_te_attention.safetensors",
                original_modules(pipe.transformer, pipe.text_encoder, seed=1, text=TEXT_ATTENTION))
    write_peft(loras, "peft.safetensors", pipe.transformer, pipe.text_encoder)
    return root


@pytest.fixture(scope="module")
def executor(models):
    return make_executor(models)


def workflow(lora: str | None, strength: float = 1.0) -> dict:
    nodes = {
        "load": n("core.FlowCheckpointLoader", {"ckpt_name": "tiny-flux"}),
        "pos": n("core.FluxTextEncode", {"text": PROMPT}, clip=("load", "clip")),
        "empty": n("core.EmptyLatentForModel", {"width": 32, "height": 32}, model=("load", "model")),
        "sampler": n("core.KSampler", {"seed": 1, "steps": 2, "cfg": 1.0, "scheduler": "euler"},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("pos", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }
    if lora:
        nodes["lora"] = n("core.LoraLoader", {"lora_name": lora, "strength_model": strength, "strength_clip": strength},
                          model=("load", "model"), clip=("load", "clip"))
        nodes["pos"]["inputs"]["clip"] = ["lora", "clip"]
        nodes["sampler"]["inputs"]["model"] = ["lora", "model"]
    return nodes


def reference(models, weight_name: str, strength: float = 1.0):
    pipe = diffusers.FluxPipeline.from_pretrained(models / "checkpoints" / "tiny-flux", local_files_only=True)
    pipe.load_lora_weights(str(models / "loras"), weight_name=weight_name)
    return pipe(PROMPT, height=32, width=32, num_inference_steps=2, guidance_scale=3.5,
                joint_attention_kwargs={"scale": strength}, generator=torch.Generator("cpu").manual_seed(1),
                output_type="np").images


@pytest.fixture(scope="module")
def base_image(executor):
    return run(executor, workflow(None), ["decode"]).outputs["decode"]["image"]


@pytest.mark.parametrize(("lora", "reference_file"), [
    ("peft.safetensors", "peft.safetensors"),
    ("kohya.safetensors", "kohya.safetensors"),
    ("comfy.safetensors", "comfy.safetensors"),
    # diffusers does not read this spelling; it is the ComfyUI file with PEFT's names, so the reference is that file
    ("original_peft_names.safetensors", "comfy.safetensors"),
])
def test_flux_lora_equals_load_lora_weights(models, executor, base_image, lora, reference_file):
    result = run(executor, workflow(lora), ["decode"])
    image = result.outputs["decode"]["image"]
    assert (image - base_image).abs().max() > 1e-3  # the LoRA changes the image
    assert_same_image(image, reference(models, reference_file))


def test_kohya_text_encoder_attention_layers_equal_the_same_lora_in_peft_names(models, executor):
    """diffusers 0.42 converts these to the old processor names (to_q_lora) and, with transformers 5, drops them;
    renamed to PEFT's names (q_proj.lora_A) it loads them, and that is the reference."""
    from diffusers.loaders.lora_pipeline import FluxLoraLoaderMixin
    from safetensors.torch import load_file, save_file

    converted = FluxLoraLoaderMixin.lora_state_dict(load_file(models / "loras" / "kohya_te_attention.safetensors"))
    renamed = {}
    for key, value in converted.items():
        for old, new in (("to_q_lora.down", "q_proj.lora_A"), ("to_q_lora.up", "q_proj.lora_B"),
                         ("to_v_lora.down", "v_proj.lora_A"), ("to_v_lora.up", "v_proj.lora_B")):
            key = key.replace(old, new)
        renamed[key] = value.clone()
    assert any("q_proj.lora_A" in k for k in renamed)
    save_file(renamed, str(models / "loras" / "te_attention_peft_names.safetensors"))
    result = run(executor, workflow("kohya_te_attention.safetensors"), ["decode"])
    assert_same_image(result.outputs["decode"]["image"], reference(models, "te_attention_peft_names.safetensors"))


def test_flux_lora_strength_is_the_pipelines_lora_scale(models, executor):
    result = run(executor, workflow("kohya.safetensors", strength=0.5), ["decode"])
    assert_same_image(result.outputs["decode"]["image"], reference(models, "kohya.safetensors", strength=0.5))


def test_flux_lora_leaves_the_incoming_model_unchanged(executor, base_image):
    run(executor, workflow("kohya.safetensors"), ["decode"])
    nodes = workflow(None)
    nodes["sampler"]["params"]["seed"] = 1  # same as the base; a fresh executor key: change nothing else
    again = run(make_executor(executor.folders.roots[0]), nodes, ["decode"]).outputs["decode"]["image"]
    assert torch.equal(again, base_image)


def test_sd_lora_on_flux_is_refused_naming_the_layers(models, executor):
    from safetensors.torch import save_file

    from nodegraph.errors import NodeExecutionError

    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 8),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(8, 2)},
              str(models / "loras" / "sd15_lora.safetensors"))
    with pytest.raises(NodeExecutionError) as info:
        run(executor, workflow("sd15_lora.safetensors"), ["lora"])
    assert info.value.node_id == "lora" and "FLUX" in info.value.message
