"""ControlNet nodes on the tiny models: parity with StableDiffusionControlNetPipeline (one and two ControlNets,
conditioning scale, guidance start/end) and StableDiffusionXLControlNetPipeline; loading both file layouts;
clear errors and notes.

The ControlNets come from ``ControlNetModel.from_unet`` on the tiny UNets with random zero convolutions,
written as a diffusers folder and as an original single file. The pipelines get the very module objects
the workflow loaded (the alignment trap in notes/ml-stack.md), so parity is asserted bit-exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodegraph.errors import NodeExecutionError
from nodegraph.events import NodeLog
from nodegraph.workflow import parse_workflow
from tests.fixtures.tiny_sd import reference_scheduler
from tests.input_policy import tmp_run_settings
from tests.nodes.control_files import make_controlnet, write_controlnet_original
from tests.nodes.sd_workflow_helpers import checkpoint, make_executor, make_models_root, n, run_workflow

diffusers = pytest.importorskip("diffusers")

PROMPT = "a house on a hill"
STEPS = 3
CFG = 5.0


def save_image(path, size: int, seed: int):
    from PIL import Image

    pixels = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_models_root(tmp_path_factory.mktemp("models"))
    executor = make_executor(root)
    for family in ("sd15", "sdxl"):
        unet = run_workflow(executor, {"ckpt": checkpoint(executor, family)}, ["ckpt"]).outputs["ckpt"]["model"].unet
        make_controlnet(unet, seed=1).save_pretrained(str(root / "controlnet" / f"{family}_folder"))
        write_controlnet_original(root / "controlnet" / f"{family}_original.safetensors", make_controlnet(unet, seed=2))
    images = tmp_path_factory.mktemp("images")
    paths = {"a": save_image(images / "a.png", 32, 0), "b": save_image(images / "b.png", 32, 1),
             "wide": save_image(images / "wide.png", 40, 2)}
    return root, executor, paths


def control_nodes(executor, family: str, nets: list[dict], size: int = 32) -> dict:
    """ckpt -> prompts -> one ControlNetApply per entry of ``nets`` -> KSampler -> decode."""
    encode = "core.CLIPTextEncode"
    nodes = {
        "ckpt": checkpoint(executor, family),
        "pos": n(encode, {"text": PROMPT}, clip=("ckpt", "clip")),
        "neg": n(encode, {"text": "blurry"}, clip=("ckpt", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": size, "height": size, "batch_size": 1}),
    }
    pos, neg = ("pos", "conditioning"), ("neg", "conditioning")
    for i, net in enumerate(nets):
        loader_inputs = {"model": ("ckpt", "model")} if net.get("with_model") else {}
        nodes[f"cn{i}"] = n("core.ControlNetLoader", {"control_net_name": net["name"]}, **loader_inputs)
        nodes[f"img{i}"] = n("core.LoadImage", {"path": net["image"]})
        nodes[f"apply{i}"] = n(
            "core.ControlNetApply",
            {"strength": net.get("strength", 1.0), "start_percent": net.get("start", 0.0), "end_percent": net.get("end", 1.0)},
            positive=pos, negative=neg, control_net=(f"cn{i}", "control_net"), image=(f"img{i}", "image"),
        )
        pos, neg = (f"apply{i}", "positive"), (f"apply{i}", "negative")
    nodes["sampler"] = n(
        "core.KSampler", {"seed": 7, "steps": STEPS, "cfg": CFG, "scheduler": "euler"},
        model=("ckpt", "model"), positive=pos, negative=neg, latent_image=("empty", "latent"),
    )
    nodes["decode"] = n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae"))
    return nodes


def pipeline_image(result, family: str, nets: list[dict], size: int = 32, **extra) -> np.ndarray:
    outputs = result.outputs
    model, clip, vae = outputs["ckpt"]["model"], outputs["ckpt"]["clip"], outputs["ckpt"]["vae"]
    controlnets = [outputs[f"cn{i}"]["control_net"].model for i in range(len(nets))]
    images = [outputs[f"img{i}"]["image"].permute(0, 3, 1, 2) for i in range(len(nets))]
    scheduler = reference_scheduler(model.family, "EulerDiscreteScheduler")
    single = len(nets) == 1
    kwargs = dict(
        controlnet=controlnets[0] if single else controlnets, vae=vae.vae, unet=model.unet, scheduler=scheduler,
    )
    if family == "sdxl":
        pipe = diffusers.StableDiffusionXLControlNetPipeline(
            text_encoder=clip.encoders[0], text_encoder_2=clip.encoders[1], tokenizer=clip.tokenizers[0],
            tokenizer_2=clip.tokenizers[1], **kwargs,
        )
    else:
        pipe = diffusers.StableDiffusionControlNetPipeline(
            text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, **kwargs,
        )

    def pick(key: str, default: float):
        values = [net.get(key, default) for net in nets]
        return values[0] if single else values

    return pipe(
        PROMPT, negative_prompt="blurry", image=images[0] if single else images, height=size, width=size,
        num_inference_steps=STEPS, guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(7),
        controlnet_conditioning_scale=pick("strength", 1.0), control_guidance_start=pick("start", 0.0),
        control_guidance_end=pick("end", 1.0), output_type="np", **extra,
    ).images


def base_image(executor, family: str, size: int = 32) -> np.ndarray:
    return run_workflow(executor, control_nodes(executor, family, [], size), ["decode"]).outputs["decode"]["image"].numpy()


def test_one_controlnet_equals_controlnet_pipeline_with_conditioning_scale(setup):
    _, executor, images = setup
    nets = [{"name": "sd15_folder", "image": images["a"], "strength": 0.7}]
    result = run_workflow(executor, control_nodes(executor, "sd15", nets), ["ckpt", "cn0", "img0", "decode"])
    ours = result.outputs["decode"]["image"].numpy()
    assert np.abs(ours - pipeline_image(result, "sd15", nets)).max() == 0.0
    assert np.abs(ours - base_image(executor, "sd15")).max() > 1e-3  # the ControlNet really steers


def test_two_controlnets_with_scales_and_step_windows_equal_multi_controlnet_pipeline(setup):
    _, executor, images = setup
    nets = [
        {"name": "sd15_folder", "image": images["a"], "strength": 0.8, "start": 0.0, "end": 0.6},
        {"name": "sd15_original.safetensors", "image": images["b"], "strength": 0.5, "start": 0.3, "end": 1.0},
    ]
    nodes = control_nodes(executor, "sd15", nets)
    result = run_workflow(executor, nodes, ["ckpt", "cn0", "cn1", "img0", "img1", "decode"])
    assert np.abs(result.outputs["decode"]["image"].numpy() - pipeline_image(result, "sd15", nets)).max() == 0.0


def test_sdxl_controlnet_from_an_original_file_equals_sdxl_controlnet_pipeline(setup):
    _, executor, images = setup
    nets = [{"name": "sdxl_original.safetensors", "image": images["a"], "strength": 0.9, "with_model": True}]
    result = run_workflow(executor, control_nodes(executor, "sdxl", nets), ["ckpt", "cn0", "img0", "decode"])
    assert result.outputs["cn0"]["control_net"].family == "sdxl"
    assert np.abs(result.outputs["decode"]["image"].numpy() - pipeline_image(result, "sdxl", nets)).max() == 0.0


def test_original_file_loads_the_same_weights_as_its_diffusers_twin(setup, tmp_path):
    from nodes.adapters.controlnet import load_controlnet
    from tests.nodes.control_files import controlnet_original_state

    root, _, _ = setup
    folder = load_controlnet(root / "controlnet" / "sd15_folder").model
    from safetensors.torch import save_file

    save_file(controlnet_original_state(folder), str(tmp_path / "twin.safetensors"))
    twin = load_controlnet(tmp_path / "twin.safetensors").model
    assert twin.config.block_out_channels == folder.config.block_out_channels
    theirs = folder.state_dict()
    for key, tensor in twin.state_dict().items():
        assert torch.equal(tensor, theirs[key]), key


def test_control_image_of_another_size_is_resized_with_a_note(setup):
    _, executor, images = setup
    nets = [{"name": "sd15_folder", "image": images["wide"]}]
    events = []
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": control_nodes(executor, "sd15", nets)}
    result = executor.run(parse_workflow(doc, executor.registry), ["decode"], on_event=events.append,
                          settings=tmp_run_settings())
    notes = [e.message for e in events if isinstance(e, NodeLog) and e.level == "warning"]
    assert any("40x40 resized to 32x32" in m for m in notes), notes
    assert result.outputs["decode"]["image"].shape == (1, 32, 32, 3)


def test_a_mask_as_control_image_is_refused_clearly(setup):
    from nodegraph.errors import NodeInputError, WorkflowError
    from nodes.adapters.control_nodes import controlnet_apply

    _, executor, images = setup
    nodes = control_nodes(executor, "sd15", [{"name": "sd15_folder", "image": images["a"]}])
    nodes["apply0"]["inputs"]["image"] = ["img0", "mask"]
    with pytest.raises(WorkflowError, match="MASK"):  # the validator refuses the link itself
        run_workflow(executor, nodes, ["decode"])
    # a value of the wrong shape that reaches the node anyway (a plugin's output) gets a clear message too
    result = run_workflow(executor, control_nodes(executor, "sd15", [{"name": "sd15_folder", "image": images["a"]}]),
                          ["pos", "neg", "cn0", "img0"])
    out = result.outputs
    with pytest.raises(NodeInputError, match=r"expected an RGB IMAGE \[B, H, W, 3\].*shape \[1, 32, 32\]"):
        controlnet_apply.fn(None, out["pos"]["conditioning"], out["neg"]["conditioning"], out["cn0"]["control_net"],
                         out["img0"]["mask"], 1.0, 0.0, 1.0)


def test_sd15_controlnet_with_sdxl_conditioning_is_refused(setup):
    _, executor, images = setup
    nodes = control_nodes(executor, "sdxl", [{"name": "sd15_folder", "image": images["a"]}])
    with pytest.raises(NodeExecutionError, match=r"apply0.*is for SD1.5.*another model family"):
        run_workflow(executor, nodes, ["decode"])


def test_loader_refuses_a_controlnet_of_another_family_than_its_model(setup):
    _, executor, images = setup
    nodes = control_nodes(executor, "sd15", [{"name": "sdxl_folder", "image": images["a"], "with_model": True}])
    with pytest.raises(NodeExecutionError, match=r"cn0.*SDXL ControlNet but the model is SD1.5"):
        run_workflow(executor, nodes, ["cn0"])
