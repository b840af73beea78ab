"""Red team, the process: a plugin's node cannot end the run with exit 0 (``sys.exit``) nor keep it from ending
(a thread that is not a daemon); Ctrl-C during plugin import ends cleanly; small hostile files stay small in
memory. These run ``nodegraph`` in a child process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.security.hostile import pixel_bomb_png, text_bomb_png, write_workflow

ROOT = Path(__file__).resolve().parents[2]
MAX_RSS = 600 << 20  # a bounded read; the issue measured 5.3 GB and 5.9 GB for these files


def nodegraph(*argv, plugins: Path | None = None, timeout: int = 120, cwd: Path | None = None):
    """(exit code, stdout, stderr, seconds) of ``nodegraph ARGV`` in a child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if plugins is not None:
        env["NODEGRAPH_PLUGIN_PATH"] = str(plugins)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "nodegraph", *map(str, argv)], cwd=cwd or ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise AssertionError(f"nodegraph {' '.join(map(str, argv))} did not end within {timeout} s") from None
    return child.returncode, out, err, time.perf_counter() - started


# The child reports its own peak (VmHWM, which exec resets: getrusage would count pytest's memory inherited at fork).
PEAK_WRAPPER = """
import atexit, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    with open(sys.argv[1], "w") as out:
        out.write(peak.split()[1])
atexit.register(report)
from nodegraph.cli import main
sys.exit(main(sys.argv[2:]))
"""


def peak_memory(tmp_path: Path, *argv, timeout: int = 120) -> tuple[int, str, int]:
    """(exit code, stderr, peak resident memory in bytes) of ``nodegraph ARGV``."""
    report = tmp_path / "peak.txt"
    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(report), *map(str, argv)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stderr, int(report.read_text()) * 1024


def plugin(folder: Path, body: str) -> Path:
    (folder / "evil").mkdir(parents=True)
    (folder / "evil" / "__init__.py").write_text(textwrap.dedent(body))
    return folder


NODE = """
import sys, threading, time
from nodegraph.node import Output, node
from nodegraph.types import INT
NAMESPACE = "evil"

@node("evil.Do", outputs=[Output("n", INT)], output_node=True)
def do(ctx):
    {action}
    return 1
"""


def test_a_node_calling_sys_exit_fails_the_run_instead_of_ending_it_with_success(tmp_path):
    plugins = plugin(tmp_path / "plugins", NODE.format(action="sys.exit(0)"))
    workflow = write_workflow(tmp_path / "wf.json", {"do": {"type": "evil.Do"}})
    code, _out, err, _ = nodegraph("run", workflow, "--output", tmp_path / "out", plugins=plugins)
    assert code == 1, err
    assert "called sys.exit(0)" in err and "'do'" in err and "Traceback" not in err


def test_a_thread_a_node_leaves_running_does_not_keep_the_run_from_ending(tmp_path):
    action = "threading.Thread(target=time.sleep, args=(3600,), name='forever').start()"
    plugins = plugin(tmp_path / "plugins", NODE.format(action=action))
    workflow = write_workflow(tmp_path / "wf.json", {"do": {"type": "evil.Do"}})
    code, _out, err, seconds = nodegraph("run", workflow, "--output", tmp_path / "out", plugins=plugins, timeout=90)
    assert code == 0 and seconds < 90
    assert "forever" in err and "still running" in err


def test_ctrl_c_during_plugin_import_ends_with_cancelled(tmp_path):
    plugins = plugin(tmp_path / "plugins", "raise KeyboardInterrupt\n")
    workflow = write_workflow(tmp_path / "wf.json", {"a": {"type": "core.Int"}})
    code, _out, err, _ = nodegraph("validate", workflow, plugins=plugins)
    assert code == 130 and "cancelled" in err and "Traceback" not in err


def test_a_png_text_bomb_is_refused_in_bounded_memory(tmp_path):
    code, err, rss = peak_memory(tmp_path, "validate", text_bomb_png(tmp_path / "bomb.png", inflated=512 << 20))
    assert code == 2 and "png_text_bytes" in err
    assert rss < MAX_RSS, f"peak memory {rss >> 20} MB"


def test_a_pixel_bomb_is_refused_by_load_image_in_bounded_memory(tmp_path):
    pixel_bomb_png(tmp_path / "big.png")
    workflow = write_workflow(tmp_path / "wf.json", {"load": {"type": "core.LoadImage", "params": {"path": "big.png"}},
                                                   "show": {"type": "core.Show", "inputs": {"value": ["load", "width"]}}})
    code, err, rss = peak_memory(tmp_path, "run", workflow, "--output", tmp_path / "out")
    assert code == 1 and "image_pixels" in err
    assert rss < MAX_RSS, f"peak memory {rss >> 20} MB"
