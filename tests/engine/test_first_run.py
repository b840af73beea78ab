"""The first hour of a new user: setup's decisions, ``--version``, the editor without a display, and a test suite
that never touches the user's own folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# -- scripts/setup.sh ------------------------------------------------------------------------------------


def fake_checkout(tmp_path: Path) -> Path:
    """The files setup.sh reads, in a folder of their own (its dry run changes nothing, but it works here)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    plugin = repo / "examples" / "plugins" / "nodegraph-imagetools"
    plugin.mkdir(parents=True)
    (plugin / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    return repo


def fake_python(folder: Path, version: str) -> Path:
    """An interpreter that says it is Python ``version`` (3.9: too old for nodegraph)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "python3"
    major, minor = version.split(".")
    path.write_text(f"#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Python {version}.0'; else echo '{major} {minor}'; fi\n")
    path.chmod(0o755)
    return path


def only_these_commands(bin_dir: Path) -> Path:
    """``bin_dir`` plus the few tools setup.sh uses, and nothing else (no other Python to find)."""
    for tool in ("tr", "uname", "rm", "touch", "cat"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return bin_dir


def python_without_torch() -> str:
    """An interpreter (3.11+) that has no torch, as on a fresh machine: the one this venv was made from."""
    base = getattr(sys, "_base_executable", sys.executable)
    probe = subprocess.run([base, "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("no Python without torch on this machine")
    return base


def setup(repo: Path, bin_dir: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    path = os.environ["PATH"] if bin_dir is None else str(only_these_commands(bin_dir))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("NODEGRAPH_TORCH", "PYTHON"))}
    environment.update(PATH=path, NODEGRAPH_SETUP_DRY_RUN="1", **env)
    return subprocess.run([shutil.which("bash"), str(repo / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60,
                          env=environment)


def no_gpu(tmp_path: Path) -> Path:
    """A bin folder whose nvidia-smi fails (no GPU), whatever this machine has."""
    bin_dir = tmp_path / "nogpu"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\nexit 9\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    return bin_dir


@pytest.mark.skipif(Path("/proc/driver/nvidia/version").exists(), reason="this machine has an NVIDIA driver")
def test_setup_takes_the_cpu_build_without_a_gpu_and_the_default_build_with_one(tmp_path):
    repo = fake_checkout(tmp_path)
    cpu = setup(repo, PYTHON=python_without_torch())
    assert cpu.returncode == 0, cpu.stderr
    assert "CPU build" in cpu.stderr and "download.pytorch.org/whl/cpu" in cpu.stderr
    gpu_bin = tmp_path / "gpu"
    gpu_bin.mkdir()
    (gpu_bin / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: H100'\n")
    (gpu_bin / "nvidia-smi").chmod(0o755)
    gpu = subprocess.run(["bash", str(repo / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": f"{gpu_bin}{os.pathsep}{os.environ['PATH']}",
                              "NODEGRAPH_SETUP_DRY_RUN": "1", "PYTHON": python_without_torch()})
    assert gpu.returncode == 0 and "default build" in gpu.stderr


def test_setup_prints_a_line_per_phase_on_stderr_only(tmp_path):
    done = setup(fake_checkout(tmp_path), PYTHON=python_without_torch())
    phases = [line for line in done.stderr.splitlines() if line.startswith("setup: ")]
    assert [p.split()[1] for p in phases] == ["1/5", "2/5", "3/5", "4/5", "5/5"] and done.stdout == ""


def test_a_torch_the_python_already_has_is_kept_and_the_venv_sees_it(tmp_path):
    done = setup(fake_checkout(tmp_path), PYTHON=sys.executable)  # this interpreter has torch
    assert done.returncode == 0 and "sees the system's packages" in done.stderr and "torch: keeping" in done.stderr


@pytest.mark.parametrize(("choice", "fragment"), [("cpu", "CPU build"), ("cuda", "default build"),
                                                  ("none", "not installed"), ("rocm", "must be cpu, cuda or none")])
def test_an_environment_variable_overrides_the_torch_choice(tmp_path, choice, fragment):
    done = setup(fake_checkout(tmp_path), PYTHON=python_without_torch(), NODEGRAPH_TORCH=choice)
    assert fragment in done.stderr
    assert done.returncode == (1 if choice == "rocm" else 0)


def test_a_torch_index_can_be_named(tmp_path):
    done = setup(fake_checkout(tmp_path), PYTHON=python_without_torch(), NODEGRAPH_TORCH_INDEX="https://example.org/cu126")
    assert done.returncode == 0 and "https://example.org/cu126" in done.stderr


def test_setup_refuses_a_python_older_than_3_11_before_creating_anything(tmp_path):
    repo = fake_checkout(tmp_path)
    old = fake_python(tmp_path / "old", "3.9")
    done = setup(repo, PYTHON=str(old))
    assert done.returncode == 1 and "3.9" in done.stderr and "3.11 or newer" in done.stderr
    assert not (repo / ".venv").exists()
    done = setup(repo, bin_dir=tmp_path / "old")  # only an old python3 on the PATH: it says what it found
    assert done.returncode == 1 and "python3 (3.9)" in done.stderr


def test_a_venv_made_by_an_older_python_is_recreated_not_reused(tmp_path):
    repo = fake_checkout(tmp_path)
    fake_python(repo / ".venv" / "bin", "3.9").rename(repo / ".venv" / "bin" / "python")
    done = setup(repo, PYTHON=python_without_torch())
    assert done.returncode == 0 and ".venv was made by Python 3.9: recreating it" in done.stderr


def test_a_broken_venv_is_recreated(tmp_path):
    repo = fake_checkout(tmp_path)
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(tmp_path / "gone" / "python3.8")
    done = setup(repo, PYTHON=python_without_torch())
    assert done.returncode == 0 and "no longer runs: recreating it" in done.stderr


# -- the command line ------------------------------------------------------------------------------------


def test_version(capsys):
    from nodegraph.cli import main
    from nodegraph.version import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"nodegraph {__version__}"


def test_limits_are_listed_with_their_values(capsys):
    from nodegraph.cli import main

    assert main(["limits"]) == 0
    out = capsys.readouterr().out
    assert "image_pixels" in out and "67,108,864" in out and "--limit" in out


# -- the editor without a display ------------------------------------------------------------------------


def gui(*argv: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "nodegraph", "gui", *argv], capture_output=True, text=True,
                          timeout=120, env=environment)


def test_gui_without_a_display_says_so_instead_of_qts_abort():
    pytest.importorskip("PySide6")
    done = gui()
    assert done.returncode == 2 and "no display" in done.stderr and "nodegraph run" in done.stderr
    done = gui(DISPLAY=":97")
    assert done.returncode == 2 and "DISPLAY=:97" in done.stderr


def test_a_screenshot_of_a_workflow_that_cannot_open_prints_why_and_never_waits_on_a_dialog(tmp_path):
    pytest.importorskip("PySide6")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Int"}, "a": {}}}')
    done = gui(str(broken), "--screenshot", str(tmp_path / "shot.png"))
    assert done.returncode == 2 and "node id 'a' is used by two nodes" in done.stderr
    assert not (tmp_path / "shot.png").exists()


# -- the test suite itself -------------------------------------------------------------------------------


def test_the_suite_points_every_user_folder_at_a_temporary_folder():
    from nodegraph.model_folders import default_config_path, default_user_root
    from nodegraph.paths import user_input_dir
    from nodegraph.plugins import user_plugin_dir
    from tests.conftest import SESSION_HOME

    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        assert os.environ[name].startswith(SESSION_HOME)
    for path in (default_config_path(), default_user_root(), user_input_dir(), user_plugin_dir()):
        assert str(path).startswith(SESSION_HOME), path


# -- the README ------------------------------------------------------------------------------------------


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = text.split("```")[1::2]
    return [line.strip() for block in blocks if block.startswith("bash") for line in block.splitlines()[1:] if line.strip()]


def test_readme_commands_run_nodegraph_from_the_projects_environment():
    commands = readme_commands()
    assert any(c.startswith("./nodegraph.sh run") for c in commands)
    bare = [c for c in commands if c.split()[0] == "nodegraph"]
    assert bare == [], "use ./nodegraph.sh (or say how to activate the venv) in README examples"


def test_readme_says_what_the_demo_model_understands():
    from nodes.demo.dataset import COLOURS, SHAPES, SIZE

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**The demo model**"):][:600]
    assert f"{SIZE}x{SIZE}" in section and f"{len(COLOURS)} colours" in section and f"{len(SHAPES)} shapes" in section
    assert all(word in section for word in (*COLOURS, *SHAPES))
