"""Importing and exporting ComfyUI's FLUX and SD3 class types: the mapping entries and their conversions
(nodegraph.comfy.flow_table). Running the imported workflows against diffusers is tests/nodes/test_comfy_flow_workflows.py."""

from __future__ import annotations

import math

import pytest

from nodegraph.comfy import export_api_prompt, import_api_prompt, load_comfy
from nodegraph.comfy.flow_table import encoder_role, flux_mu
from nodegraph.installed import default_registry
from nodegraph.validation import validate
from tests.engine.comfy_helpers import fixture

REGISTRY = default_registry()


def one(class_type: str, inputs: dict) -> dict:
    return {"1": {"class_type": class_type, "inputs": inputs}}


def imported(prompt: dict):
    return import_api_prompt(prompt, REGISTRY)


@pytest.mark.parametrize("name", ["ui_flux_dev.json", "api_flux_dev.json", "ui_flux_schnell.json",
                                  "api_flux_schnell.json", "ui_sd35.json", "api_sd35.json"])
def test_flux_and_sd35_fixtures_map_every_node_and_validate(name):
    result = load_comfy(fixture(name), REGISTRY)
    assert not result.report.placeholders
    assert not [p for p in validate(result.graph, REGISTRY)]


@pytest.mark.parametrize(("names", "t5", "clip_l"), [
    (("t5xxl_fp16.safetensors", "clip_l.safetensors"), "t5xxl_fp16.safetensors", "clip_l.safetensors"),
    (("clip_l.safetensors", "t5xxl_fp8_e4m3fn_scaled.safetensors"), "t5xxl_fp8_e4m3fn_scaled.safetensors", "clip_l.safetensors"),
    (("ViT-L-14-TEXT-improved.safetensors", "google_t5-v1_1-xxl_encoderonly.safetensors"),
     "google_t5-v1_1-xxl_encoderonly.safetensors", "ViT-L-14-TEXT-improved.safetensors"),
])
def test_dual_clip_loader_for_flux_tells_t5_from_clip_l_by_name_in_either_order(names, t5, clip_l):
    result = imported(one("DualCLIPLoader", {"clip_name1": names[0], "clip_name2": names[1], "type": "flux"}))
    node = result.graph.nodes["1"]
    assert node.type == "core.FlowTextEncoderLoader"
    assert node.params == {"type": "flux", "clip_l": clip_l, "clip_g": "", "t5": t5}
    assert not result.report.warnings


def test_encoder_names_that_do_not_tell_are_assigned_in_order_and_the_report_says_so():
    result = imported(one("DualCLIPLoader", {"clip_name1": "t5xxl.safetensors", "clip_name2": "text_model.safetensors",
                                             "type": "flux"}))
    assert result.graph.nodes["1"].params["clip_l"] == "text_model.safetensors"
    assert any("does not say which encoder" in w.message and w.node == "1" for w in result.report.warnings)


def test_triple_clip_loader_assigns_sd3_encoders_whatever_their_order():
    result = imported(one("TripleCLIPLoader", {"clip_name1": "clip_g.safetensors", "clip_name2": "t5xxl_fp16.safetensors",
                                               "clip_name3": "clip_l.safetensors"}))
    assert result.graph.nodes["1"].params == {"type": "sd3", "clip_l": "clip_l.safetensors",
                                              "clip_g": "clip_g.safetensors", "t5": "t5xxl_fp16.safetensors"}


@pytest.mark.parametrize(("inputs", "reason"), [
    ({"clip_name1": "clip_l.safetensors", "clip_name2": "clip_g.safetensors", "type": "sdxl"}, "type 'sdxl'"),
    ({"clip_name1": "clip_l.safetensors", "clip_name2": "t5xxl.safetensors", "type": "sd3"}, "CLIP-L and CLIP-G"),
    ({"clip_name1": "t5xxl.safetensors", "clip_name2": "", "type": "flux"}, "CLIP-L and a T5"),
])
def test_text_encoder_sets_the_product_cannot_load_stay_placeholders_with_the_reason(inputs, reason):
    result = imported(one("DualCLIPLoader", inputs))
    (placeholder,) = result.report.placeholders
    assert placeholder.class_type == "DualCLIPLoader" and reason in placeholder.reason
    assert result.graph.nodes["1"].extra["comfy"]["inputs"] == inputs  # kept as written, for the export


def test_model_sampling_flux_becomes_the_fixed_shift_of_its_image_size():
    prompt = one("ModelSamplingFlux", {"max_shift": 1.15, "base_shift": 0.5, "width": 1024, "height": 768})
    node = imported(prompt).graph.nodes["1"]
    tokens = 1024 * 768 / 256
    mu = 0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256)  # linear from 256 tokens (base) to 4096 (max)
    assert node.type == "core.FlowShift" and node.params["mode"] == "fixed"
    assert node.params["shift"] == pytest.approx(math.exp(mu), rel=1e-12)
    assert flux_mu(1.15, 0.5, 1024, 1024) == pytest.approx(1.15)


def test_model_sampling_sd3_becomes_a_fixed_flow_shift():
    node = imported(one("ModelSamplingSD3", {"shift": 5.0})).graph.nodes["1"]
    assert (node.type, node.params) == ("core.FlowShift", {"shift": 5.0, "mode": "fixed"})


def test_clip_text_encode_flux_pads_t5_as_comfyui_and_keeps_long_prompts_whole():
    short = imported(one("CLIPTextEncodeFlux", {"clip_l": "a cat", "t5xxl": "a cat on a mat", "guidance": 2.5}))
    assert short.graph.nodes["1"].params == {"text": "a cat", "text_t5": "a cat on a mat", "guidance": 2.5,
                                             "max_length": 256}
    long = imported(one("CLIPTextEncodeFlux", {"clip_l": "x", "t5xxl": "word " * 200, "guidance": 3.5}))
    assert long.graph.nodes["1"].params["max_length"] == 512
    assert any("long T5 prompt" in w.message for w in long.report.warnings)
    empty_t5 = imported(one("CLIPTextEncodeFlux", {"clip_l": "a cat", "t5xxl": "", "guidance": 3.5}))
    assert any("T5 prompt is empty" in w.message for w in empty_t5.report.warnings)


def test_unet_loader_says_fp8_storage_is_not_used():
    result = imported(one("UNETLoader", {"unet_name": "flux1-dev-fp8.safetensors", "weight_dtype": "fp8_e4m3fn_fast"}))
    assert result.graph.nodes["1"].params == {"unet_name": "flux1-dev-fp8.safetensors"}
    assert any("fp8" in w.message for w in result.report.warnings)
    assert not imported(one("UNETLoader", {"unet_name": "a.safetensors", "weight_dtype": "default"})).report.warnings


@pytest.mark.parametrize(("name", "role"), [("t5xxl_fp16.safetensors", "t5"), ("clip_g.safetensors", "clip_g"),
                                            ("sd3/clip_l.safetensors", "clip_l"), ("CLIP-ViT-bigG-14.safetensors", "clip_g"),
                                            ("model.safetensors", None)])
def test_encoder_role_reads_the_usual_file_names(name, role):
    assert encoder_role(name) == role


def test_export_writes_triple_or_dual_clip_loader_and_the_shift_node_of_the_graphs_family():
    from nodegraph.workflow import parse_workflow

    def graph(kind: str, shift_type: str, t5: str) -> dict:
        text = ("core.FluxTextEncode", {"text": "a"}) if kind == "flux" else ("comfy.CLIPTextEncode", {"text": "a"})
        return {"format": "nodegraph.workflow", "version": 1, "nodes": {
            "clip": {"type": "core.FlowTextEncoderLoader", "params": {"type": kind, "clip_l": "l.safetensors",
                                                                      "clip_g": "g.safetensors", "t5": t5}},
            "unet": {"type": "core.FlowTransformerLoader", "params": {"unet_name": "m.safetensors"}},
            "shift": {"type": "core.FlowShift", "params": {"mode": shift_type, "shift": 2.0},
                      "inputs": {"model": ["unet", "model"]}},
            "text": {"type": text[0], "params": text[1], "inputs": {"clip": ["clip", "clip"]}},
            "empty": {"type": "core.EmptyFlowLatent", "params": {"width": 768, "height": 512}}}}

    sd3 = export_api_prompt(parse_workflow(graph("sd3", "fixed", "t5.safetensors"), REGISTRY), REGISTRY)
    assert sd3["clip"] == {"class_type": "TripleCLIPLoader", "inputs": {
        "clip_name1": "l.safetensors", "clip_name2": "g.safetensors", "clip_name3": "t5.safetensors"}}
    assert sd3["shift"] == {"class_type": "ModelSamplingSD3", "inputs": {"shift": 2.0, "model": ["unet", 0]}}
    assert sd3["unet"]["inputs"] == {"unet_name": "m.safetensors", "weight_dtype": "default"}
    no_t5 = export_api_prompt(parse_workflow(graph("sd3", "fixed", ""), REGISTRY), REGISTRY)
    assert no_t5["clip"]["class_type"] == "DualCLIPLoader" and no_t5["clip"]["inputs"]["type"] == "sd3"
    flux = export_api_prompt(parse_workflow(graph("flux", "fixed", "t5.safetensors"), REGISTRY), REGISTRY)
    assert flux["clip"]["inputs"] == {"clip_name1": "t5.safetensors", "clip_name2": "l.safetensors", "type": "flux"}
    assert flux["shift"]["class_type"] == "ModelSamplingFlux"  # ModelSamplingSD3 would feed FLUX wrong timesteps
    back = import_api_prompt(flux, REGISTRY).graph.nodes["shift"]
    assert back.params["shift"] == pytest.approx(2.0)
    resolution = export_api_prompt(parse_workflow(graph("flux", "resolution", "t5.safetensors"), REGISTRY), REGISTRY)
    assert resolution["shift"]["inputs"] | {"model": None} == {"max_shift": 1.15, "base_shift": 0.5, "width": 768,
                                                                "height": 512, "model": None}
