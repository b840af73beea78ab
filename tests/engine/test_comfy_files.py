"""ComfyUI graphs inside files (JSON, PNG text chunks, WebP EXIF), detection by content, and clear errors for
files that are not ComfyUI workflows."""

from __future__ import annotations

import json

import pytest

from nodegraph.comfy import is_comfy_document, load_comfy
from nodegraph.comfy.files import file_has_workflow, load_any
from nodegraph.errors import WorkflowError
from nodegraph.workflow import dumps
from tests.engine.comfy_helpers import deep, fixture, fixture_bytes, png_with_texts, registry, webp_with_texts


def test_a_png_with_both_graphs_gives_the_ui_layout_with_the_prompts_values():
    workflow = fixture("ui_v04_features.json")
    prompt = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 4242, "steps": 9, "cfg": 5.5, "sampler_name": "heun",
                                                   "scheduler": "karras", "denoise": 1.0, "model": ["4", 0],
                                                   "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "what drew the image", "clip": ["4", 1]}},
    }
    data = png_with_texts({"workflow": json.dumps(workflow), "prompt": json.dumps(prompt)})
    result = load_comfy(data, registry(), source="image.png")
    graph = result.graph
    assert result.report.origin == "png:workflow" and result.report.format == "ui-0.4"
    assert graph["3"].params["steps"] == 9 and graph["3"].params["sampler_name"] == "heun"
    assert graph["3"].inputs["seed"] == ("13", "value")  # the link stays, and the primitive takes the seed used
    assert graph["13"].params["value"] == 4242
    assert graph["6"].params["text"] == "what drew the image"
    assert graph["6"].layout["title"] == "Positive"  # layout from the workflow
    assert any("taken from the PNG's API prompt" in line for line in result.report.layout)


def test_a_png_with_only_the_api_prompt_is_imported_from_it():
    prompt = fixture("api_txt2img_lora.json")
    result = load_comfy(png_with_texts({"prompt": json.dumps(prompt)}), registry())
    assert result.report.origin == "png:prompt" and set(result.graph.nodes) == set(prompt)


def test_a_webp_saved_by_comfyui_is_read_from_its_exif():
    workflow = fixture("ui_v1_nested.json")
    result = load_comfy(webp_with_texts({"workflow": json.dumps(workflow)}), registry())
    assert result.report.origin == "webp:workflow" and "20:1" in result.graph.nodes


def test_an_image_without_a_workflow_is_a_structured_error():
    with pytest.raises(WorkflowError) as caught:
        load_comfy(png_with_texts({"parameters": "a1111 text"}), registry(), source="photo.png")
    problem = caught.value.problems[0]
    assert problem.code == "no_comfy_in_image" and "photo.png" in problem.message
    with pytest.raises(WorkflowError, match="not valid JSON"):
        load_comfy(png_with_texts({"workflow": "{broken"}), registry())


@pytest.mark.parametrize("doc", [
    {"format": "nodegraph.workflow", "version": 1, "nodes": {}},
    {"hello": "world"},
    [1, 2, 3],
    {},
    {"nodes": "not a list", "links": []},
])
def test_documents_that_are_not_comfyui_workflows_say_what_was_found(doc):
    assert not is_comfy_document(doc)
    with pytest.raises(WorkflowError) as caught:
        load_comfy(doc, registry(), source="thing.json")
    problem = caught.value.problems[0]
    assert problem.code == "not_comfy" and problem.expected and problem.found


def test_bytes_that_are_neither_json_nor_an_image_are_a_structured_error():
    with pytest.raises(WorkflowError) as caught:
        load_comfy(b"\x00\x01\xffgarbage", registry(), source="x.bin")
    assert caught.value.problems[0].found == "binary data"


def test_detection_tells_the_formats_apart():
    assert is_comfy_document(fixture("api_txt2img_lora.json"))
    assert is_comfy_document(fixture("ui_v04_features.json"))
    assert is_comfy_document(fixture("ui_v1_nested.json"))


def test_load_any_opens_nodegraph_and_comfyui_files_by_content(tmp_path):
    reg = registry()
    comfy = tmp_path / "from_comfy.json"
    comfy.write_bytes(fixture_bytes("api_txt2img_lora.json"))
    graph, report = load_any(comfy, reg)
    assert report is not None and report.format == "api" and "3" in graph.nodes
    native = tmp_path / "native.json"
    native.write_text(dumps(graph))
    again, report = load_any(native, reg)
    assert report is None and set(again.nodes) == set(graph.nodes)
    image = tmp_path / "comfy.png"
    image.write_bytes(png_with_texts({"workflow": json.dumps(fixture("ui_v04_features.json"))}))
    assert file_has_workflow(image)
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_with_texts({}))
    assert not file_has_workflow(plain)
    with pytest.raises(WorkflowError, match="carries no nodegraph workflow and no ComfyUI workflow"):
        load_any(plain, reg)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"a": 1}))
    with pytest.raises(WorkflowError, match="neither a nodegraph nor a ComfyUI workflow"):
        load_any(other, reg)


def test_an_input_image_is_found_beside_the_workflow(tmp_path):
    from PIL import Image

    prompt = deep(fixture("api_txt2img_lora.json"))
    prompt["20"] = {"class_type": "LoadImage", "inputs": {"image": "photo.png [input]", "upload": "image"}}
    (tmp_path / "input").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "input" / "photo.png")
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(prompt))
    graph, _ = load_any(path, registry())
    assert graph["20"].params["path"] == str((tmp_path / "input" / "photo.png").resolve())
    from nodegraph.comfy import export_api_prompt

    assert export_api_prompt(graph, registry())["20"]["inputs"]["image"] == "photo.png"


def test_an_input_image_name_that_leaves_the_input_folder_is_not_followed(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    (tmp_path / "wf").mkdir()
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "../secret.png"}}}
    path = tmp_path / "wf" / "wf.json"
    path.write_text(json.dumps(prompt))
    graph, report = load_any(path, registry())
    assert graph["1"].params["path"] == "../secret.png"
    assert any("outside the input folder" in str(w) for w in report.warnings)
