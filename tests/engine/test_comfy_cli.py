"""`nodegraph import`, `nodegraph export --comfy`, and `run`/`validate` on ComfyUI files."""

from __future__ import annotations

import json

from nodegraph.cli import main
from tests.engine.comfy_helpers import fixture, fixture_bytes, png_with_texts


def test_import_writes_a_nodegraph_workflow_and_prints_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "custom.json"
    source.write_bytes(fixture_bytes("api_custom_nodes.json"))
    assert main(["import", str(source)]) == 0
    written = json.loads((tmp_path / "custom.nodegraph.json").read_text())
    assert written["format"] == "nodegraph.workflow" and written["nodes"]["4"]["type"] == "comfy.KSampler"
    err = capsys.readouterr().err
    assert "6 node(s) mapped, 2 not mapped" in err and "Image Sharpen (WAS)" in err


def test_import_never_replaces_an_existing_file_unless_forced(tmp_path, capsys):
    source = tmp_path / "wf.json"
    source.write_bytes(fixture_bytes("api_txt2img_lora.json"))
    target = tmp_path / "out.json"
    target.write_text("precious")
    assert main(["import", str(source), "-o", str(target)]) == 2
    assert target.read_text() == "precious"
    assert "exists" in capsys.readouterr().err
    assert main(["import", str(source), "-o", str(target), "--force"]) == 0
    assert json.loads(target.read_text())["format"] == "nodegraph.workflow"


def test_import_to_stdout_and_the_report_as_json(tmp_path, capsys):
    source = tmp_path / "wf.png"
    source.write_bytes(png_with_texts({"workflow": json.dumps(fixture("ui_v04_features.json"))}))
    assert main(["import", str(source), "-o", "-", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["format"] == "nodegraph.workflow"
    report = json.loads(captured.err)
    assert report["format"] == "ui-0.4" and report["placeholders"][0]["pack"] == "comfyui-impact-pack"


def test_import_of_a_file_that_is_not_a_workflow_exits_2_with_the_problem(tmp_path, capsys):
    source = tmp_path / "notes.json"
    source.write_text('{"todo": ["buy milk"]}')
    assert main(["import", str(source)]) == 2
    err = capsys.readouterr().err
    assert "is not a ComfyUI workflow" in err and "expected a ComfyUI graph" in err
    assert main(["import", str(tmp_path / "missing.json")]) == 2
    assert "missing.json' does not exist" in capsys.readouterr().err


def test_export_writes_the_api_format_and_names_unmapped_nodes(tmp_path, capsys):
    comfy = tmp_path / "wf.json"
    comfy.write_bytes(fixture_bytes("api_txt2img_lora.json"))
    native = tmp_path / "native.json"
    assert main(["import", str(comfy), "-o", str(native)]) == 0
    assert main(["export", "--comfy", str(native), "-o", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == fixture("api_txt2img_lora.json")
    assert main(["export", str(native)]) == 2
    assert "--comfy" in capsys.readouterr().err
    doc = json.loads(native.read_text())
    doc["nodes"]["extra"] = {"type": "core.StringJoin", "version": 1}
    native.write_text(json.dumps(doc))
    assert main(["export", "--comfy", str(native), "-o", str(tmp_path / "api.json")]) == 2
    assert "node 'extra'" in capsys.readouterr().err and not (tmp_path / "api.json").exists()


def test_validate_and_run_accept_comfyui_files_directly(tmp_path, capsys):
    comfy = tmp_path / "wf.json"
    comfy.write_bytes(fixture_bytes("api_txt2img_lora.json"))
    # imported and checked like any workflow: the only problems are the model files this machine lacks
    assert main(["validate", str(comfy), "--json"]) == 2
    captured = capsys.readouterr()
    assert "ComfyUI API format" in captured.err
    assert {(p["node"], p["field"]) for p in json.loads(captured.out)} == {("4", "ckpt_name"), ("10", "lora_name")}
    custom = tmp_path / "custom.json"
    custom.write_bytes(fixture_bytes("api_custom_nodes.json"))
    assert main(["validate", str(custom), "--json"]) == 2
    problems = json.loads(capsys.readouterr().out)
    assert {p["node"] for p in problems} == {"6", "8"}
    assert main(["run", str(custom), "--output", str(tmp_path / "out"), "--events", "none"]) == 2
    assert "cannot run here" in capsys.readouterr().err
