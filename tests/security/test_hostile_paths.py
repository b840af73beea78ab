"""Red team, paths: a workflow reads only regular files inside its own folder, the input folders, the model
folders and the output folder, or files the user named on the command line; it writes only inside the output
(or model, or input) folders. Devices, FIFOs and /proc never reach a reader, so nothing hangs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.hostile import cli, image_png, write_workflow

ROOT = Path(__file__).resolve().parents[2]


def load_image_workflow(folder: Path, path: str) -> Path:
    return write_workflow(folder / "wf.json", {
        "load": {"type": "core.LoadImage", "params": {"path": path}},
        "show": {"type": "core.Show", "inputs": {"value": ["load", "width"]}},
    })


def validate_elsewhere(workflow: Path, cwd: Path, *extra: str, timeout: int = 60) -> subprocess.CompletedProcess:
    """``nodegraph validate`` in a child process (what must not hang is bounded by ``timeout``)."""
    return subprocess.run([sys.executable, "-m", "nodegraph", "validate", str(workflow), *extra], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize(("path", "fragment"), [
    ("/dev/zero", "outside the folders"),
    ("/proc/self/environ", "outside the folders"),
    ("/etc/passwd", "outside the folders"),
    ("../secret.png", "outside the folders"),
    ("sub/../../secret.png", "outside the folders"),
    ("missing.png", "was not found"),
    ("", ""),
    ("x\0y", "NUL"),
])
def test_an_input_path_outside_the_allowed_folders_is_refused_before_the_run(capsys, tmp_path, path, fragment):
    flows = tmp_path / "flows"
    flows.mkdir()
    image_png(tmp_path / "secret.png")
    workflow = load_image_workflow(flows, path)
    answer = cli(capsys, "validate", workflow)
    if path:
        assert answer.code == 2 and fragment in answer.text and "'load'" in answer.text
    else:
        assert answer.code == 0  # no file chosen yet: the node says so when it runs


@pytest.mark.parametrize("kind", ["device link", "fifo", "folder", "dangling link"])
def test_what_is_not_a_regular_file_is_refused_even_inside_the_workflow_folder(tmp_path, kind):
    flows = tmp_path / "flows"
    flows.mkdir()
    target = flows / "input.png"
    if kind == "device link":
        target.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(target)  # opening it would wait for a writer forever
    elif kind == "folder":
        target.mkdir()
    else:
        target.symlink_to(flows / "gone.png")
    done = validate_elsewhere(load_image_workflow(flows, "input.png"), tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    expected = {"device link": "a device", "fifo": "a FIFO", "folder": "a folder", "dangling link": "does not exist"}
    assert expected[kind] in done.stderr


def test_a_relative_input_is_found_beside_the_workflow_from_any_working_folder(tmp_path):
    """The shipped demo workflows name their images relatively: they validate (and run) from anywhere."""
    for name in ("demo_img2img.json", "demo_controlnet.json", "demo_t2i_adapter.json"):
        done = validate_elsewhere(ROOT / "workflows" / name, tmp_path)
        assert done.returncode == 0, done.stderr
    flows = tmp_path / "flows"
    flows.mkdir()
    image_png(flows / "mine.png")
    assert validate_elsewhere(load_image_workflow(flows, "mine.png"), Path("/")).returncode == 0


def test_the_workflow_folder_comes_before_the_input_folders(capsys, tmp_path):
    flows, inputs = tmp_path / "flows", tmp_path / "inputs"
    flows.mkdir()
    inputs.mkdir()
    image_png(inputs / "a.png", (8, 8))
    workflow = load_image_workflow(flows, "a.png")
    answer = cli(capsys, "run", workflow, "--input", inputs, "--output", tmp_path / "out", "--events", "none")
    assert answer.code == 0 and "show.text: 8" in answer.out
    image_png(flows / "a.png", (24, 24))
    answer = cli(capsys, "run", workflow, "--input", inputs, "--output", tmp_path / "out", "--events", "none")
    assert answer.code == 0 and "show.text: 24" in answer.out


def test_a_path_the_user_names_on_the_command_line_may_lie_anywhere(capsys, tmp_path, monkeypatch):
    flows, elsewhere = tmp_path / "flows", tmp_path / "elsewhere"
    flows.mkdir()
    elsewhere.mkdir()
    image_png(elsewhere / "b.png", (12, 12))
    workflow = load_image_workflow(flows, str(elsewhere / "b.png"))
    assert cli(capsys, "validate", workflow).code == 2  # the workflow may not name it
    monkeypatch.chdir(elsewhere)  # the user may, relative to where they stand
    answer = cli(capsys, "run", workflow, "--set", "load.path=b.png", "--output", tmp_path / "out", "--events", "none")
    assert answer.code == 0 and "show.text: 12" in answer.out


def test_a_model_path_outside_the_model_folders_is_refused_and_a_device_never_read(capsys, tmp_path):
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "zero.safetensors").symlink_to("/dev/zero")
    (tmp_path / "outside.safetensors").write_bytes(b"not a model")
    for name, fragment in (("/dev/zero", "outside the model folders"), (str(tmp_path / "outside.safetensors"),
                           "outside the model folders"), ("zero.safetensors", "a device"),
                           ("../outside.safetensors", "may not contain '..'")):
        workflow = write_workflow(tmp_path / "wf.json", {"ckpt": {"type": "core.CheckpointLoader", "params": {"ckpt_name": name}}})
        answer = cli(capsys, "run", workflow, "--models", models, "--output", tmp_path / "out")
        assert answer.code == 2 and fragment in answer.text and "ckpt_name" in answer.text, name


@pytest.mark.parametrize("prefix", ["../escape", "/tmp/escape", "C:\\escape", "a/../../escape", "link/escape"])
def test_save_image_never_writes_outside_the_output_folder(capsys, tmp_path, prefix):
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)  # a link inside the output folder that leads out of it
    image_png(tmp_path / "in.png")
    workflow = write_workflow(tmp_path / "wf.json", {
        "load": {"type": "core.LoadImage", "params": {"path": "in.png"}},
        "save": {"type": "core.SaveImage", "params": {"filename_prefix": prefix}, "inputs": {"images": ["load", "image"]}},
    })
    before = sorted(p.name for p in tmp_path.iterdir())
    answer = cli(capsys, "run", workflow, "--output", out, "--events", "none")
    assert answer.code == 1 and "[save] failed: the filename prefix" in answer.text
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not Path("/tmp/escape_00001.png").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its permissions")
def test_a_file_without_read_permission_says_permission_denied(capsys, tmp_path):
    image = image_png(tmp_path / "locked.png")
    image.chmod(0)
    answer = cli(capsys, "validate", load_image_workflow(tmp_path, "locked.png"))
    assert answer.code == 2 and "permission denied" in answer.text


def test_a_word_typed_into_a_text_parameter_is_not_taken_for_a_path(capsys, tmp_path, monkeypatch):
    (tmp_path / "output").mkdir()  # a folder named like the word
    monkeypatch.chdir(tmp_path)
    workflow = write_workflow(tmp_path / "wf.json", {"s": {"type": "core.String"},
                                                    "show": {"type": "core.Show", "inputs": {"value": ["s", "value"]}}})
    answer = cli(capsys, "run", workflow, "--set", "s.value=output", "--output", tmp_path / "out", "--events", "none")
    assert answer.code == 0 and "show.text: output\n" in answer.out
