"""LoRA loader nodes on the tiny models: parity with diffusers' ``load_lora_weights``, no leaked patches,
one file read per file version, clear errors and reports.

LoRA files are written by the tests from a real peft adapter (tests/nodes/lora_files.py), in the kohya and
the diffusers layout. The diffusers pipelines are built from the very module objects the workflow's
checkpoint loader produced (the alignment trap in notes/ml-stack.md), so parity is asserted bit-exact; the
pipelines' LoRA layers are unloaded again after each comparison, since the executor's cache shares them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nodegraph.errors import NodeExecutionError
from nodegraph.events import NodeLog
from nodegraph.workflow import parse_workflow
from tests.fixtures.tiny_sd import reference_scheduler
from tests.nodes.lora_files import TEXT_TARGETS, UNET_TARGETS, peft_adapter, write_diffusers, write_kohya
from tests.nodes.sd_workflow_helpers import checkpoint, make_executor, make_models_root, n, run_workflow

diffusers = pytest.importorskip("diffusers")

PROMPT = "a watercolour fox"
SIZE = 32
STEPS = 2
CFG = 6.0
FILES = {  # (family, layout) -> file name in the loras folder
    ("sd15", "kohya"): "sd15_kohya.safetensors",
    ("sd15", "diffusers"): "sd15_diffusers.safetensors",
    ("sdxl", "kohya"): "sdxl_kohya.safetensors",
    ("sdxl", "diffusers"): "sdxl_diffusers.safetensors",
    ("sd15", "second"): "sd15_second.safetensors",
}


def _write(root, executor, family: str, layout: str, seed: int, file_name: str) -> None:
    outputs = run_workflow(executor, {"ckpt": checkpoint(executor, family)}, ["ckpt"]).outputs["ckpt"]
    unet = outputs["model"].unet
    # alpha differs from the rank on purpose: the scale alpha/rank must be read from the file
    adapter = peft_adapter(unet, UNET_TARGETS, rank=4, alpha=8, seed=seed)
    encoders = [peft_adapter(e, TEXT_TARGETS, rank=4, alpha=2, seed=seed + 1 + i) for i, e in enumerate(outputs["clip"].encoders)]
    target = root / "loras" / file_name
    if layout == "diffusers":
        written = write_diffusers(root / "loras" / "tmp", family, adapter, encoders)
        written.rename(target)
    else:
        write_kohya(target, family, adapter, encoders, unet.config)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_models_root(tmp_path_factory.mktemp("models"))
    executor = make_executor(root)
    for ((family, layout), file_name), seed in zip(FILES.items(), (10, 20, 30, 40, 50)):
        _write(root, executor, family, "kohya" if layout == "second" else layout, seed, file_name)
    return root, executor


def lora_nodes(executor, family: str, lora: str | None, strength_model: float = 1.0, strength_clip: float = 1.0, seed: int = 3) -> dict:
    nodes = {"ckpt": checkpoint(executor, family)}
    source = "ckpt"
    if lora is not None:
        nodes["lora"] = n(
            "core.LoraLoader", {"lora_name": lora, "strength_model": strength_model, "strength_clip": strength_clip},
            model=("ckpt", "model"), clip=("ckpt", "clip"),
        )
        source = "lora"
    nodes.update(
        pos=n("core.CLIPTextEncode", {"text": PROMPT}, clip=(source, "clip")),
        neg=n("core.CLIPTextEncode", {"text": "blurry"}, clip=(source, "clip")),
        empty=n("core.EmptyLatentImage", {"width": SIZE, "height": SIZE, "batch_size": 1}),
        sampler=n(
            "core.KSampler", {"seed": seed, "steps": STEPS, "cfg": CFG, "scheduler": "euler"},
            model=(source, "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
            latent_image=("empty", "latent"),
        ),
        decode=n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae")),
    )
    return nodes


def pipeline(outputs, family: str):
    model, clip, vae = outputs["model"], outputs["clip"], outputs["vae"]
    scheduler = reference_scheduler(family, "EulerDiscreteScheduler")
    if family == "sdxl":
        return diffusers.StableDiffusionXLPipeline(
            vae=vae.vae, text_encoder=clip.encoders[0], text_encoder_2=clip.encoders[1], tokenizer=clip.tokenizers[0],
            tokenizer_2=clip.tokenizers[1], unet=model.unet, scheduler=scheduler,
        )
    return diffusers.StableDiffusionPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def diffusers_image(pipe, seed: int = 3, loras: dict[str, Any] | None = None, root=None) -> np.ndarray:
    """The pipeline's image with ``loras`` (file name -> weight, or per-component weights) loaded by
    load_lora_weights, unloaded after."""
    try:
        if loras:
            names = []
            for i, name in enumerate(loras):
                pipe.load_lora_weights(str(root / "loras" / name), adapter_name=f"a{i}")
                names.append(f"a{i}")
            pipe.set_adapters(names, adapter_weights=list(loras.values()))
        return pipe(
            PROMPT, negative_prompt="blurry", height=SIZE, width=SIZE, num_inference_steps=STEPS, guidance_scale=CFG,
            generator=torch.Generator("cpu").manual_seed(seed), output_type="np",
        ).images
    finally:
        if loras:
            pipe.unload_lora_weights()


def assert_unpatched(module) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    assert not any(isinstance(m, BaseTunerLayer) for m in module.modules())
    assert not hasattr(module, "peft_config")
    assert not any("lora" in k for k in module.state_dict())


@pytest.mark.parametrize(
    ("family", "layout", "strength"),
    # every layout at both strengths, every family with both layouts (the full product costs twice the time)
    [("sd15", "kohya", 1.0), ("sd15", "diffusers", 0.5), ("sdxl", "kohya", 0.5), ("sdxl", "diffusers", 1.0)],
)
def test_lora_workflow_equals_diffusers_load_lora_weights(setup, family, layout, strength):
    root, executor = setup
    name = FILES[(family, layout)]
    result = run_workflow(executor, lora_nodes(executor, family, name, strength, strength), ["ckpt", "decode"])
    ours = result.outputs["decode"]["image"].numpy()
    pipe = pipeline(result.outputs["ckpt"], family)
    expected = diffusers_image(pipe, loras={name: strength}, root=root)
    assert np.abs(ours - expected).max() == 0.0
    base = run_workflow(executor, lora_nodes(executor, family, None), ["decode"]).outputs["decode"]["image"].numpy()
    assert np.abs(ours - base).max() > 1e-3  # the LoRA really changes the image
    assert_unpatched(result.outputs["ckpt"]["model"].unet)


def test_separate_unet_and_text_encoder_strengths_equal_diffusers_per_component_weights(setup):
    root, executor = setup
    name = FILES[("sd15", "kohya")]
    result = run_workflow(executor, lora_nodes(executor, "sd15", name, 1.0, 0.3), ["ckpt", "lora", "decode"])
    assert result.outputs["lora"]["clip"].patches[0].parts[0].strength == 0.3
    expected = diffusers_image(pipeline(result.outputs["ckpt"], "sd15"), loras={name: {"unet": 1.0, "text_encoder": 0.3}},
                               root=root)
    assert np.abs(result.outputs["decode"]["image"].numpy() - expected).max() == 0.0


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_lora_at_strength_zero_gives_exactly_the_base_image(setup, family):
    _, executor = setup
    base = run_workflow(executor, lora_nodes(executor, family, None), ["decode"]).outputs["decode"]["image"]
    zero = run_workflow(executor, lora_nodes(executor, family, FILES[(family, "kohya")], 0.0, 0.0), ["decode"])
    assert torch.equal(zero.outputs["decode"]["image"], base)


def test_stacked_loras_equal_diffusers_with_two_adapters(setup):
    root, executor = setup
    first, second = FILES[("sd15", "diffusers")], FILES[("sd15", "second")]
    nodes = lora_nodes(executor, "sd15", first, 0.8, 0.8)
    nodes["lora2"] = n(
        "core.LoraLoader", {"lora_name": second, "strength_model": 0.6, "strength_clip": 0.6},
        model=("lora", "model"), clip=("lora", "clip"),
    )
    for key in ("pos", "neg"):
        nodes[key]["inputs"]["clip"] = ["lora2", "clip"]
    nodes["sampler"]["inputs"]["model"] = ["lora2", "model"]
    result = run_workflow(executor, nodes, ["ckpt", "decode"])
    expected = diffusers_image(pipeline(result.outputs["ckpt"], "sd15"), loras={first: 0.8, second: 0.6}, root=root)
    assert np.abs(result.outputs["decode"]["image"].numpy() - expected).max() == 0.0


def test_upstream_model_samples_unpatched_in_the_same_run_and_after_cached_reruns(setup):
    _, executor = setup
    nodes = lora_nodes(executor, "sd15", FILES[("sd15", "kohya")], 1.0, 1.0)
    # a second, LoRA-free branch sampling the loader's own MODEL and CLIP in the same run
    nodes["base_pos"] = n("core.CLIPTextEncode", {"text": PROMPT}, clip=("ckpt", "clip"))
    nodes["base_neg"] = n("core.CLIPTextEncode", {"text": "blurry"}, clip=("ckpt", "clip"))
    nodes["base_sampler"] = n(
        "core.KSampler", {"seed": 3, "steps": STEPS, "cfg": CFG, "scheduler": "euler"},
        model=("ckpt", "model"), positive=("base_pos", "conditioning"), negative=("base_neg", "conditioning"),
        latent_image=("empty", "latent"),
    )
    nodes["base_decode"] = n("core.VAEDecode", samples=("base_sampler", "latent"), vae=("ckpt", "vae"))
    first = run_workflow(executor, nodes, ["ckpt", "decode", "base_decode"])
    pipe = pipeline(first.outputs["ckpt"], "sd15")
    base = diffusers_image(pipe)
    assert np.abs(first.outputs["base_decode"]["image"].numpy() - base).max() == 0.0
    assert np.abs(first.outputs["decode"]["image"].numpy() - base).max() > 1e-3

    # re-run: the LoRA branch executes again (new strength), the base branch comes from the cache ...
    nodes["lora"]["params"]["strength_model"] = 0.7
    second = run_workflow(executor, nodes, ["decode", "base_decode"])
    assert "lora" in second.executed and "base_sampler" in second.cached
    # ... and a base sampler that executes after all that still samples the unpatched model
    nodes["base_sampler"]["params"]["seed"] = 4
    third = run_workflow(executor, nodes, ["decode", "base_decode"])
    assert "base_sampler" in third.executed
    assert np.abs(third.outputs["base_decode"]["image"].numpy() - diffusers_image(pipe, seed=4)).max() == 0.0
    for module in (first.outputs["ckpt"]["model"].unet, *first.outputs["ckpt"]["clip"].encoders):
        assert_unpatched(module)


def test_changing_only_a_strength_does_not_read_the_file_again(setup):
    from nodes.adapters.lora import file_reads

    root, executor = setup
    path = str((root / "loras" / FILES[("sd15", "second")]).resolve())
    reads_before = file_reads[path]
    for strength in (0.9, 0.4):
        nodes = {
            "ckpt": checkpoint(executor, "sd15"),
            "lora": n("core.LoraLoader", {"lora_name": FILES[("sd15", "second")], "strength_model": strength,
                                          "strength_clip": strength}, model=("ckpt", "model"), clip=("ckpt", "clip")),
        }
        result = run_workflow(executor, nodes, ["lora"])
        assert "lora" in result.executed
        assert result.outputs["lora"]["model"].patches[-1].parts[0].strength == strength
    assert file_reads[path] - reads_before <= 1


def test_inputs_are_not_mutated_and_outputs_carry_one_more_patch(setup):
    _, executor = setup
    nodes = lora_nodes(executor, "sdxl", FILES[("sdxl", "kohya")])
    result = run_workflow(executor, nodes, ["ckpt", "lora"])
    base, patched = result.outputs["ckpt"], result.outputs["lora"]
    assert base["model"].patches == () and base["clip"].patches == ()
    assert len(patched["model"].patches) == 1 and len(patched["clip"].patches) == 1
    assert patched["model"].unet is base["model"].unet  # weights are shared, never copied
    assert {p.module for p in patched["clip"].patches[0].parts} == set(base["clip"].encoders)  # both SDXL encoders


def test_sdxl_lora_on_sd15_model_is_refused_with_a_clear_message(setup):
    _, executor = setup
    nodes = lora_nodes(executor, "sd15", FILES[("sdxl", "diffusers")])
    with pytest.raises(NodeExecutionError) as info:
        run_workflow(executor, nodes, ["lora"])
    message = str(info.value)
    assert "core.LoraLoader" in message and "SDXL" in message and "SD1.5" in message


def test_sd15_lora_on_sdxl_model_is_refused_naming_the_shape_conflict(setup):
    _, executor = setup
    nodes = lora_nodes(executor, "sdxl", FILES[("sd15", "kohya")])
    with pytest.raises(NodeExecutionError) as info:
        run_workflow(executor, nodes, ["lora"])
    assert "does not fit this SDXL model" in str(info.value) or "none of this LoRA" in str(info.value)


def test_unmappable_keys_are_reported_with_count_and_examples(setup, tmp_path):
    from safetensors.torch import load_file, save_file

    root, executor = setup
    state = load_file(str(root / "loras" / FILES[("sd15", "kohya")]))
    state["lora_unet_no_such_block_to_q.lora_down.weight"] = torch.zeros(4, 32)
    state["lora_unet_no_such_block_to_q.lora_up.weight"] = torch.zeros(32, 4)
    state["lora_unet_no_such_block_to_q.alpha"] = torch.tensor(4.0)
    state["lora_unet_mid_block_resnets_0_conv1.hada_w1_a"] = torch.zeros(4, 4)  # a LoHa part: not LoRA
    save_file(state, str(root / "loras" / "with_extras.safetensors"))
    events = []
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": lora_nodes(executor, "sd15", "with_extras.safetensors")}
    executor.run(parse_workflow(doc, executor.registry), ["lora"], on_event=events.append)
    warnings = [e.message for e in events if isinstance(e, NodeLog) and e.level == "warning"]
    assert any("1 LoRA layer(s) match no module" in w and "no_such_block_to_q" in w for w in warnings), warnings
    assert any("1 key(s)" in w and "hada_w1_a" in w for w in warnings), warnings


def test_a_file_without_lora_weights_is_refused(setup):
    from safetensors.torch import save_file

    root, executor = setup
    save_file({"model.diffusion_model.conv_in.weight": torch.zeros(4, 4, 3, 3)}, str(root / "loras" / "not_a_lora.safetensors"))
    with pytest.raises(NodeExecutionError, match="no LoRA weights found"):
        run_workflow(executor, lora_nodes(executor, "sd15", "not_a_lora.safetensors"), ["lora"])


def test_layouts_are_parsed_into_the_same_modules():
    from nodes.adapters.lora import parse_lora_state_dict

    down, up = torch.ones(4, 8), torch.ones(8, 4)
    spellings = {
        "peft": {"unet.mid_block.attentions.0.proj_in.lora_A.weight": down, "unet.mid_block.attentions.0.proj_in.lora_B.weight": up},
        "bare peft": {"base_model.model.mid_block.attentions.0.proj_in.lora_A.weight": down,
                      "base_model.model.mid_block.attentions.0.proj_in.lora_B.weight": up},
        "lora.down": {"unet.mid_block.attentions.0.proj_in.lora.down.weight": down,
                      "unet.mid_block.attentions.0.proj_in.lora.up.weight": up},
    }
    for name, state in spellings.items():
        parsed = parse_lora_state_dict(state)
        assert list(parsed.components["unet"]) == ["mid_block.attentions.0.proj_in"], name
    processor = parse_lora_state_dict({
        "unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight": down,
        "unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight": up,
        "text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.down.weight": down,
        "text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.up.weight": up,
    })
    assert list(processor.components["unet"]) == ["mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0"]
    assert list(processor.components["text_encoder"]) == ["text_model.encoder.layers.0.self_attn.k_proj"]
    kohya = parse_lora_state_dict({"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": down,
                                   "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": up,
                                   "lora_te2_text_model_encoder_layers_0_mlp_fc1.alpha": torch.tensor(2.0)})
    weights = kohya.components["text_encoder_2"]["text_model_encoder_layers_0_mlp_fc1"]
    assert (kohya.layout, kohya.family_hint, weights.scale) == ("kohya", "sdxl", 0.5)
