"""Importing ComfyUI's API format (POST /prompt bodies, PNG 'prompt' chunks) and exporting back to it."""

from __future__ import annotations

import pytest

from nodegraph.comfy import MAPPINGS, export_api_prompt, import_api_prompt, is_comfy_document, load_comfy
from nodegraph.comfy.export import ExportError
from nodegraph.errors import WorkflowError
from nodegraph.validation import validate
from nodegraph.workflow import parse_workflow, to_document
from tests.engine.comfy_helpers import deep, fixture, registry


def test_api_prompt_maps_every_core_node_with_values_links_and_titles():
    reg = registry()
    prompt = fixture("api_txt2img_lora.json")
    result = import_api_prompt(prompt, reg)
    graph = result.graph
    assert set(graph.nodes) == set(prompt)
    assert result.report.ok and not result.report.placeholders
    assert graph["4"].type == "core.CheckpointLoader" and graph["4"].params == {"ckpt_name": "model.safetensors"}
    assert graph["4"].layout["title"] == "Load Checkpoint"
    sampler = graph["3"]
    assert sampler.type == "comfy.KSampler"
    assert sampler.params == {"seed": 156680208700286, "steps": 3, "cfg": 7.5, "sampler_name": "dpmpp_2m",
                              "scheduler": "karras", "denoise": 1.0}
    # links name the nodegraph outputs that ComfyUI's output indices stand for
    assert sampler.inputs == {"model": ("10", "model"), "positive": ("12", "conditioning"),
                              "negative": ("7", "conditioning"), "latent_image": ("5", "latent")}
    assert graph["8"].inputs["vae"] == ("4", "vae")
    assert graph["11"].inputs["clip"] == ("10", "clip")
    assert graph["16"].inputs == {"images": ("15", "image")}  # ImageInvert's "image" is core's "images"
    assert graph["14"].params["add_noise"] == "enable" and graph["14"].params["start_at_step"] == 2
    assert validate(graph, reg) == []


def test_import_then_export_of_a_core_only_api_workflow_gives_the_same_graph():
    reg = registry()
    prompt = fixture("api_txt2img_lora.json")
    exported = export_api_prompt(import_api_prompt(prompt, reg).graph, reg)
    assert exported == prompt


def test_an_exported_graph_survives_a_save_and_a_reload():
    reg = registry()
    prompt = fixture("api_txt2img_lora.json")
    graph = import_api_prompt(prompt, reg).graph
    reloaded = parse_workflow(to_document(graph), reg)
    assert export_api_prompt(reloaded, reg) == prompt


def test_a_whole_post_prompt_body_is_accepted():
    reg = registry()
    body = {"prompt": fixture("api_txt2img_lora.json"), "client_id": "abc"}
    assert is_comfy_document(body)
    assert set(load_comfy(body, reg).graph.nodes) == set(body["prompt"])


def test_unmapped_class_types_become_placeholders_that_keep_their_data_and_export_back():
    reg = registry()
    prompt = fixture("api_custom_nodes.json")
    result = import_api_prompt(prompt, reg)
    placeholders = {p.comfy_id: p for p in result.report.placeholders}
    assert set(placeholders) == {"6", "8"}
    assert "not mapped yet" in placeholders["8"].reason  # a core class without a mapping says why
    sharpen = result.graph["6"]
    assert sharpen.type == "comfyui.Image Sharpen (WAS)"
    assert sharpen.extra["comfy"]["inputs"] == {"radius": 2, "strength": 0.5}
    assert sharpen.inputs == {"image": ("5", "image")}
    assert result.graph["7"].inputs["images"] == ("6", "output_0")
    problems = validate(result.graph, reg)
    assert {p.node for p in problems} == {"6", "8"}
    assert all(p.code == "comfy_node_not_mapped" for p in problems)
    assert "Image Sharpen (WAS)" in str(problems[0])
    assert export_api_prompt(result.graph, reg) == prompt  # the rest of the graph and the placeholders alike


def test_an_export_names_each_node_without_a_comfyui_counterpart():
    reg = registry()
    graph = import_api_prompt(fixture("api_txt2img_lora.json"), reg).graph
    graph.add_node(reg, "core.KSampler", "native_sampler")
    graph.add_node(reg, "core.StringJoin", "join")
    with pytest.raises(ExportError) as caught:
        export_api_prompt(graph, reg)
    assert {p.node for p in caught.value.problems} == {"native_sampler", "join"}
    assert "core.KSampler has no ComfyUI counterpart" in str(caught.value)


def test_an_export_refuses_a_link_from_an_output_comfyui_does_not_have():
    reg = registry()
    graph = import_api_prompt(fixture("api_txt2img_lora.json"), reg).graph
    graph["6"].inputs["clip"] = ("4", "family")  # core.CheckpointLoader's fourth output: not in ComfyUI
    with pytest.raises(ExportError, match="output 'family'"):
        export_api_prompt(graph, reg)


@pytest.mark.parametrize("bad", [
    {"1": {"inputs": {}}},
    {"1": {"class_type": 5, "inputs": {}}},
    {"1": {"class_type": "KSampler", "inputs": ["seed", 1]}},
    {"1": "KSampler"},
])
def test_a_malformed_api_node_is_a_structured_error_naming_it(bad):
    with pytest.raises(WorkflowError) as caught:
        import_api_prompt(bad, registry())
    assert caught.value.problems[0].node == "1"


def test_a_link_to_a_missing_node_or_output_is_left_open_and_reported():
    reg = registry()
    prompt = deep(fixture("api_txt2img_lora.json"))
    prompt["3"]["inputs"]["model"] = ["99", 0]
    prompt["8"]["inputs"]["vae"] = ["4", 7]
    result = import_api_prompt(prompt, reg)
    assert "model" not in result.graph["3"].inputs and "vae" not in result.graph["8"].inputs
    messages = " | ".join(str(w) for w in result.report.warnings)
    assert "node 99, which the graph does not have" in messages
    assert "output 7 of node 4 (CheckpointLoaderSimple), which has 3 output(s)" in messages
    assert {p.field for p in validate(result.graph, reg)} == {"model", "vae"}


def test_an_out_of_range_value_is_kept_and_reported_by_validation():
    reg = registry()
    prompt = deep(fixture("api_txt2img_lora.json"))
    prompt["3"]["inputs"]["steps"] = 0
    prompt["3"]["inputs"]["sampler_name"] = "no_such_sampler"
    result = import_api_prompt(prompt, reg)
    assert result.graph["3"].params["steps"] == 0
    problems = {p.field: p for p in validate(result.graph, reg)}
    assert set(problems) == {"steps", "sampler_name"}
    assert "euler_ancestral" in problems["sampler_name"].expected


def test_the_mapping_table_is_consistent_with_the_installed_node_types():
    from nodegraph.comfy.table import AWAITING_MAPPINGS

    reg = registry()
    awaiting = {m.class_type for m in AWAITING_MAPPINGS}
    for class_type, mapping in MAPPINGS.items():
        definition = reg.get(mapping.node_type)
        if definition is None and class_type in awaiting:
            continue  # the node type comes with the inpainting work: checked once it is installed
        assert definition is not None, f"{class_type} maps to {mapping.node_type}, which is not registered"
        outputs = [o.name for o in definition.outputs]
        assert all(name in outputs for name in mapping.outputs), class_type
        for widget in mapping.widget_names():
            if widget in mapping.ignore:
                continue
            field = mapping.field_for(widget)
            assert definition.param(field) is not None, f"{class_type}.{widget} -> {mapping.node_type}.{field}"
        for name in mapping.params:
            assert definition.param(name) is not None, f"{class_type}: preset {name}"


def test_every_class_the_issue_names_has_a_mapping():
    required = """CheckpointLoaderSimple VAELoader LoraLoader LoraLoaderModelOnly CLIPSetLastLayer CLIPTextEncode
        CLIPTextEncodeSDXL CLIPTextEncodeSDXLRefiner ConditioningCombine ConditioningZeroOut EmptyLatentImage
        LatentUpscale LatentUpscaleBy VAEEncode VAEDecode VAEEncodeTiled VAEDecodeTiled KSampler KSamplerAdvanced
        ControlNetLoader ControlNetApply ControlNetApplyAdvanced LoadImage ImageScale ImageInvert SaveImage
        PreviewImage""".split()
    assert [c for c in required if c not in MAPPINGS] == []
