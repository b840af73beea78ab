"""Preflight: the commonest failures are reported before any model loads, all at once, by `validate`, `run`
and the executor alike, without importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodegraph.cli import main
from nodegraph.errors import WorkflowError
from nodegraph.executor import Executor
from nodegraph.graph import Graph
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.preflight import device_problems, output_dir_problems, preflight, torch_gpu_build
from nodegraph.workflow import parse_workflow

ROOT = Path(__file__).resolve().parents[2]


def six_problems(tmp_path: Path) -> dict:
    """A text-to-image workflow with one of each common mistake in it."""
    return {
        "format": "nodegraph.workflow", "version": 1,
        "nodes": {
            "ckpt": {"type": "core.CheckpointLoader", "params": {"ckpt_name": "missing_model.safetensors"}},
            "lora": {"type": "core.LoraLoader", "params": {"lora_name": ""},
                     "inputs": {"model": ["ckpt", "model"], "clip": ["ckpt", "clip"]}},
            "pos": {"type": "core.CLIPTextEncode", "params": {"text": "a cat"}, "inputs": {"clip": ["lora", "clip"]}},
            "neg": {"type": "core.CLIPTextEncode", "params": {"text": ""}, "inputs": {"clip": ["lora", "clip"]}},
            "latent": {"type": "core.EmptyLatentImage", "params": {"width": 500, "height": 512}},
            "sampler": {"type": "core.KSampler", "params": {"steps": 1500, "scheduler": "ddim"},
                        "inputs": {"model": ["lora", "model"], "positive": ["pos", "conditioning"],
                                   "negative": ["neg", "conditioning"], "latent_image": ["latent", "latent"]}},
            "decode": {"type": "core.VAEDecode", "inputs": {"samples": ["sampler", "latent"], "vae": ["ckpt", "vae"]}},
            "save": {"type": "core.SaveImage", "inputs": {"images": ["decode", "image"]}},
        },
    }


EXPECTED = {
    ("ckpt", "ckpt_name", "missing_file"),
    ("lora", "lora_name", "no_model_chosen"),
    ("latent", "width", "invalid_params"),
    ("sampler", "steps", "invalid_params"),
    ("", "device", "device_unavailable"),
    ("", "output", "output_not_a_folder"),
}

needs_cpu_torch = pytest.mark.skipif(torch_gpu_build() != "", reason="the installed torch has CUDA")


def _keys(problems):
    return {(p.node, p.field, p.code) for p in problems}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEGRAPH_MODELS_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = tmp_path / "w.json"
    path.write_text(json.dumps(six_problems(tmp_path)))
    not_a_folder = tmp_path / "output.txt"
    not_a_folder.write_text("a file")
    return path, not_a_folder


@needs_cpu_torch
def test_validate_reports_the_six_common_mistakes_at_once(setup, capsys):
    path, output = setup
    assert main(["validate", str(path), "--json", "--device", "cuda", "--output", str(output)]) == 2
    problems = json.loads(capsys.readouterr().out)
    assert {(p["node"], p["field"], p["code"]) for p in problems} == EXPECTED
    found = {p["code"]: p for p in problems}
    assert "missing_model.safetensors" in found["missing_file"]["message"]
    assert "checkpoints" in found["missing_file"]["message"]  # the folders searched are named
    assert "demo_sks_ring.safetensors" in found["no_model_chosen"]["expected"]  # what could be chosen
    assert found["invalid_params"]["expected"]  # expected and found are filled in
    assert "CUDA" in found["device_unavailable"]["message"]


@needs_cpu_torch
def test_run_lists_every_problem_validate_lists_and_loads_nothing(setup, capsys):
    path, output = setup
    assert main(["validate", str(path), "--device", "cuda", "--output", str(output)]) == 2
    validate_lines = sorted(line for line in capsys.readouterr().err.splitlines() if line.startswith("  - "))
    assert main(["run", str(path), "--device", "cuda", "--output", str(output), "--events", "json"]) == 2
    captured = capsys.readouterr()
    run_lines = sorted(line for line in captured.err.splitlines() if line.startswith("  - "))
    assert len(validate_lines) == 6 and run_lines == validate_lines
    assert captured.out == ""  # not one event: nothing started


def test_preflight_does_not_import_torch(setup):
    path, output = setup
    code = (
        "import sys, json\n"
        "from nodegraph.cli import main\n"
        f"main(['validate', {str(path)!r}, '--json', '--device', 'cuda', '--output', {str(output)!r}])\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers', 'numpy') if m in sys.modules)\n"
        "print('HEAVY', json.dumps(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    line = next(x for x in done.stdout.splitlines() if x.startswith("HEAVY"))
    assert json.loads(line.split(" ", 1)[1]) == []
    problems = json.loads(done.stdout[: done.stdout.index("HEAVY")])
    assert len(problems) == (6 if torch_gpu_build() == "" else 5)


def test_executor_refuses_before_running_any_node(tmp_path, setup):
    path, _ = setup
    registry = default_registry()
    graph = parse_workflow(json.loads(path.read_text()), registry)
    events = []
    with pytest.raises(WorkflowError) as info:
        Executor(registry, folders=ModelFolders.from_environment()).run(graph, on_event=events.append)
    assert {"ckpt", "lora", "latent", "sampler"} <= {p.node for p in info.value.problems}
    assert events == []


def test_steps_within_the_schedulers_limit_pass():
    registry = default_registry()
    graph = Graph()
    graph.add_node(registry, "core.KSampler", "ok", {"steps": 999, "scheduler": "ddim"})
    graph.add_node(registry, "core.KSampler", "euler", {"steps": 1000, "scheduler": "euler"})
    graph.add_node(registry, "core.KSampler", "bad", {"steps": 1000, "scheduler": "ddim"})
    problems = preflight(graph, registry, ModelFolders([]))
    assert [(p.node, p.field) for p in problems] == [("bad", "steps")]
    assert problems[0].expected == "at most 999 steps for ddim" and problems[0].found == "1000"


def test_a_linked_parameter_is_not_judged_by_its_stored_value():
    registry = default_registry()
    graph = Graph()
    graph.add_node(registry, "core.Int", "w", {"value": 512})
    graph.add_node(registry, "core.EmptyLatentImage", "latent", {"width": 500})
    graph.connect(registry, "w", "value", "latent", "width")
    assert preflight(graph, registry, ModelFolders([])) == []


def test_output_path_problems(tmp_path):
    file = tmp_path / "a_file"
    file.write_text("x")
    assert [p.code for p in output_dir_problems(file)] == ["output_not_a_folder"]
    assert [p.code for p in output_dir_problems(file / "below")] == ["output_not_a_folder"]
    assert output_dir_problems(tmp_path / "new" / "folder") == []
    assert output_dir_problems(tmp_path) == []


def test_device_names_are_checked():
    assert device_problems(None) == [] and device_problems("auto") == [] and device_problems("cpu") == []
    (problem,) = device_problems("gpu0")
    assert problem.code == "bad_device" and problem.expected.startswith("cpu, cuda")


@needs_cpu_torch
def test_cuda_on_a_cpu_build_of_torch_is_unavailable():
    (problem,) = device_problems("cuda")
    assert problem.code == "device_unavailable" and "--device" in problem.expected
