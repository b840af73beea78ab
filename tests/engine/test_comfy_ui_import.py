"""Importing ComfyUI's UI format: schema 0.4 and 1, positional and named widget values, the control slot,
converted widgets, primitives, reroutes, notes, groups, bypass and mute, subgraphs and legacy group nodes."""

from __future__ import annotations

import pytest

from nodegraph.comfy import export_api_prompt, load_comfy
from nodegraph.comfy import load as comfy_load
from nodegraph.comfy.widgets import name_widget_values
from nodegraph.validation import validate
from nodegraph.workflow import to_document
from tests.engine.comfy_helpers import deep, fixture, registry

KSAMPLER = [("seed*", "steps", "cfg", "sampler_name", "scheduler", "denoise")]


def mode_of(node) -> str | None:
    """Bypass / mute as the node carries it (an attribute from workflow file version 2, else its extra data)."""
    return getattr(node, "mode", None) or node.extra.get("mode")


def _import(name_or_doc, with_v2_types=False, keep_modes=False, monkeypatch=None):
    if monkeypatch is not None:
        monkeypatch.setattr(comfy_load, "_engine_keeps_modes", lambda: keep_modes)
    doc = fixture(name_or_doc) if isinstance(name_or_doc, str) else name_or_doc
    return load_comfy(doc, registry(with_v2_types))


# -- widget values --------------------------------------------------------------------------------------------


def test_positional_values_skip_the_control_after_generate_slot():
    named, warning = name_widget_values(KSAMPLER, [5, "randomize", 20, 8, "euler", "normal", 1], set())
    assert warning is None
    assert named == {"seed": 5, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}


def test_old_files_keep_the_control_slot_as_a_boolean():
    named, warning = name_widget_values(KSAMPLER, [7, True, 20, 8, "euler", "normal", 1], set())
    assert warning is None and named["seed"] == 7 and named["steps"] == 20


def test_positional_values_without_a_control_slot_still_line_up():
    named, _ = name_widget_values(KSAMPLER, [5, 20, 8, "euler", "normal", 1], set())
    assert named["steps"] == 20 and named["denoise"] == 1


@pytest.mark.parametrize("values", [
    [5, "fixed", 20, 8, "euler", "normal", 1],  # the converted widget keeps its slot (most frontends)
    [20, 8, "euler", "normal", 1],  # ... or drops out (others)
])
def test_a_converted_widget_fed_by_a_link_is_named_either_way(values):
    named, warning = name_widget_values(KSAMPLER, values, {"seed"}, {"seed"})
    assert warning is None
    assert named == {"steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}


def test_values_that_fit_no_widget_order_are_assigned_in_order_with_a_warning():
    named, warning = name_widget_values(KSAMPLER, [5, "fixed", 20], set())
    assert named == {"seed": 5, "steps": 20}
    assert "3 widget value(s) for 6 widget(s)" in warning


def test_values_by_name_need_no_order():
    named, warning = name_widget_values(KSAMPLER, {"steps": 4, "seed": 1, "control_after_generate": "fixed"}, set())
    assert named == {"steps": 4, "seed": 1} and warning is None


# -- schema 0.4: the feature fixture --------------------------------------------------------------------------


def test_schema_04_nodes_values_and_links(monkeypatch):
    result = _import("ui_v04_features.json", monkeypatch=monkeypatch)
    graph = result.graph
    assert result.report.format == "ui-0.4"
    sampler = graph["3"]
    assert sampler.type == "comfy.KSampler"
    assert sampler.params == {"steps": 20, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}
    assert graph["6"].params["text"] == "a red (circle:1.2) on a blue background"
    assert graph["6"].layout == {"x": 415, "y": 186, "title": "Positive", "color": [0x33, 0x55, 0x33]}
    assert graph["5"].params == {"width": 512, "height": 512, "batch_size": 1}


def test_a_primitive_node_becomes_a_value_node_feeding_the_converted_widget(monkeypatch):
    graph = _import("ui_v04_features.json", monkeypatch=monkeypatch).graph
    assert graph["13"].type in ("core.Int", "core.Seed") and graph["13"].params == {"value": 42}
    assert graph["13"].layout["title"] == "Seed"
    assert graph["3"].inputs["seed"] == ("13", "value")


def test_bypass_and_mute_are_resolved_when_the_engine_cannot_keep_them(monkeypatch):
    result = _import("ui_v04_features.json", keep_modes=False, monkeypatch=monkeypatch)
    graph = result.graph
    assert "10" not in graph.nodes and "14" not in graph.nodes
    # the bypassed LoRA loader passes its inputs on by type: MODEL (through the reroute) and CLIP
    assert graph["3"].inputs["model"] == ("4", "model")
    assert graph["6"].inputs["clip"] == ("4", "clip") and graph["7"].inputs["clip"] == ("4", "clip")
    notes = " | ".join(result.report.layout)
    assert "node 10 (LoraLoader) is bypassed" in notes and "node 14 (PreviewImage) is muted" in notes


def test_bypass_and_mute_are_kept_on_the_nodes_from_file_version_2(monkeypatch):
    graph = _import("ui_v04_features.json", keep_modes=True, monkeypatch=monkeypatch).graph
    assert mode_of(graph["10"]) == "bypass" and mode_of(graph["14"]) == "mute"
    assert graph["6"].inputs["clip"] == ("10", "clip")
    assert to_document(graph)["nodes"]["10"]["mode"] == "bypass"
    exported = export_api_prompt(graph, registry())
    assert "10" not in exported and "14" not in exported  # as ComfyUI's frontend queues them
    assert exported["6"]["inputs"]["clip"] == ["4", 1] and exported["3"]["inputs"]["model"] == ["4", 0]


def test_reroutes_are_dissolved_or_kept_as_reroute_nodes(monkeypatch):
    without = _import("ui_v04_features.json", with_v2_types=False, keep_modes=True, monkeypatch=monkeypatch).graph
    assert "12" not in without.nodes and without["3"].inputs["model"] == ("10", "model")
    kept = _import("ui_v04_features.json", with_v2_types=True, keep_modes=True, monkeypatch=monkeypatch).graph
    assert kept["12"].type == "core.Reroute" and kept["12"].inputs == {"value": ("10", "model")}
    assert kept["3"].inputs["model"] == ("12", "value")
    assert export_api_prompt(kept, registry(True))["3"]["inputs"]["model"] == ["4", 0]


def test_notes_become_note_nodes_or_workflow_metadata(monkeypatch):
    kept = _import("ui_v04_features.json", with_v2_types=True, monkeypatch=monkeypatch).graph
    assert kept["15"].type == "core.Note" and kept["15"].params == {"text": "Remember to check the seed"}
    assert kept["16"].layout["title"] == "Read me"
    meta = _import("ui_v04_features.json", with_v2_types=False, monkeypatch=monkeypatch).graph
    assert "15" not in meta.nodes
    assert [n["text"] for n in meta.meta["comfy"]["notes"]] == ["Remember to check the seed", "# Title\nSome *markdown*"]


def test_groups_keep_title_colour_and_rectangle(monkeypatch):
    graph = _import("ui_v04_features.json", monkeypatch=monkeypatch).graph
    groups = getattr(graph, "groups", None) or graph.meta["groups"]
    assert groups == [{"title": "Prompt", "rect": [400, 100, 460, 500], "color": "#3f789e"}]


def test_a_custom_pack_node_is_a_placeholder_named_with_its_pack(monkeypatch):
    result = _import("ui_v04_features.json", monkeypatch=monkeypatch)
    (placeholder,) = result.report.placeholders
    assert (placeholder.comfy_id, placeholder.class_type, placeholder.pack) == ("17", "FaceDetailer", "comfyui-impact-pack")
    node = result.graph["17"]
    assert node.extra["comfy"]["widgets_values"][0] == 512 and node.inputs == {"image": ("8", "image")}
    assert any("comfyui-impact-pack" in line for line in result.report.lines())
    problems = validate(result.graph, registry())
    assert [p.node for p in problems] == ["17"] and "comfyui-impact-pack" in problems[0].message


# -- schema 1: subgraphs, legacy group nodes, values by name --------------------------------------------------


def test_schema_1_subgraph_is_flattened_with_its_links_through_the_boundary():
    result = _import("ui_v1_nested.json")
    graph = result.graph
    assert result.report.format == "ui-1"
    assert graph["20:1"].type == "comfy.CLIPTextEncode" and graph["20:1"].inputs["clip"] == ("4", "clip")
    assert graph["3"].inputs["positive"] == ("20:1", "conditioning")
    assert graph["3"].inputs["negative"] == ("20:2", "conditioning")
    assert graph["20:2"].params["text"] == "blurry"
    # the instance's promoted widget value wins over the definition's
    assert graph["20:1"].params["text"] == "a lighthouse at dawn"
    # inner positions are placed at the instance
    assert (graph["20:1"].layout["x"], graph["20:1"].layout["y"]) == (400, 100)
    assert validate(graph, registry()) == []


def test_schema_1_values_by_name_and_converted_widgets_without_links():
    graph = _import("ui_v1_nested.json").graph
    assert graph["5"].params == {"width": 640, "height": 448, "batch_size": 2}
    assert graph["3"].params["noise_seed"] == 7 and graph["3"].params["steps"] == 12
    assert graph["3"].params["scheduler"] == "karras"


def test_a_legacy_group_node_is_expanded_with_its_own_widget_values():
    result = _import("ui_v1_nested.json")
    graph = result.graph
    assert graph["30:0"].type == "core.VAEDecode"
    assert graph["30:0"].inputs == {"samples": ("3", "latent"), "vae": ("4", "vae")}
    assert graph["30:1"].inputs == {"images": ("30:0", "image")}
    assert graph["30:1"].params["filename_prefix"] == "grouped"
    assert any("legacy group node 'Decode and save'" in str(w) for w in result.report.warnings)


def test_a_subgraph_that_contains_itself_is_refused_with_a_structured_error():
    doc = deep(fixture("ui_v1_nested.json"))
    sub = doc["definitions"]["subgraphs"][0]
    sub["nodes"].append({"id": 9, "type": sub["id"], "pos": [0, 0], "mode": 0, "inputs": [], "outputs": []})
    from nodegraph.errors import WorkflowError

    with pytest.raises(WorkflowError) as caught:
        load_comfy(doc, registry())
    assert caught.value.problems[0].code == "comfy_subgraph_loop"


def test_a_bypassed_subgraph_bypasses_everything_inside(monkeypatch):
    doc = deep(fixture("ui_v1_nested.json"))
    doc["nodes"][1]["mode"] = 4
    graph = _import(doc, keep_modes=True, monkeypatch=monkeypatch).graph
    assert mode_of(graph["20:1"]) == "bypass" and mode_of(graph["20:2"]) == "bypass"


def test_links_that_name_missing_link_ids_are_reported_not_fatal():
    doc = deep(fixture("ui_v04_features.json"))
    doc["nodes"][2]["inputs"][0]["link"] = 999  # node 6's clip
    doc["links"] = [link for link in doc["links"] if link[0] != 23]
    result = load_comfy(doc, registry())
    assert "clip" not in result.graph["6"].inputs
    assert any("link 999" in str(w) for w in result.report.warnings)
