"""The command line: exit codes, overrides, JSON events, listing, and a fast --help."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodegraph.cli import main

ROOT = Path(__file__).resolve().parents[2]
PRIMITIVES = ROOT / "workflows" / "primitives.json"


def _write(tmp_path, nodes):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"format": "nodegraph.workflow", "version": 1, "nodes": nodes}))
    return path


def test_run_prints_output_nodes_and_exits_0(capsys):
    assert main(["run", str(PRIMITIVES)]) == 0
    out = capsys.readouterr().out
    assert "show_prompt.text: a red circle on a blue background" in out


def test_set_overrides_a_parameter(capsys):
    assert main(["run", str(PRIMITIVES), "--set", "colour.value=green", "--set", "steps.value=4"]) == 0
    out = capsys.readouterr().out
    assert "a green circle" in out and "show_scale.text: 2.0" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [("steps.value=abc", "expected an integer"), ("nosuch.value=1", "no such node"), ("steps.zzz=1", "no such parameter"), ("oops", "NODE.PARAM=VALUE")],
)
def test_bad_override_exits_2_and_says_why(capsys, override, message):
    assert main(["run", str(PRIMITIVES), "--set", override]) == 2
    assert message in capsys.readouterr().err


def test_json_events_are_one_object_per_line(capsys):
    assert main(["run", str(PRIMITIVES), "--events", "json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"
    assert {"node_started", "node_finished", "node_log"} <= {e["event"] for e in events}


def test_invalid_workflow_exits_2_listing_every_problem(tmp_path, capsys):
    path = _write(tmp_path, {"m": {"type": "core.Math", "params": {"operation": "cube", "a_value": "x"}}, "u": {"type": "ext.Unknown"}})
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err and "'operation'" in err and "'a_value'" in err and "ext.Unknown" in err
    assert main(["validate", str(path), "--json"]) == 2
    problems = json.loads(capsys.readouterr().out)
    assert {p["field"] for p in problems} == {"operation", "a_value", ""}


def test_failing_node_exits_1_naming_the_node_and_type(tmp_path, capsys):
    path = _write(tmp_path, {"div": {"type": "core.Math", "params": {"operation": "divide", "a_value": 1.0}}, "show": {"type": "core.Show", "inputs": {"value": ["div", "result"]}}})
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "node 'div' (core.Math) failed" in err and "division by zero" in err


def test_validate_and_nodes(capsys):
    assert main(["validate", str(PRIMITIVES)]) == 0
    assert "valid (7 nodes)" in capsys.readouterr().out
    assert main(["nodes"]) == 0
    assert "core.StringFormat" in capsys.readouterr().out
    assert main(["nodes", "--json"]) == 0
    schema = {d["id"]: d for d in json.loads(capsys.readouterr().out)}
    assert schema["core.Math"]["params"][0]["choices"][0] == "add"


def test_help_is_fast_and_imports_neither_torch_nor_qt():
    code = "import sys, runpy; sys.argv=['nodegraph','--help']\ntry:\n runpy.run_module('nodegraph', run_name='__main__')\nexcept SystemExit: pass\nprint('HEAVY', [m for m in ('torch','PySide6','diffusers') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "usage: nodegraph" in out and "HEAVY []" in out


def test_ctrl_c_cancels_with_exit_130(tmp_path):
    plugin = tmp_path / "slowplugin.py"
    plugin.write_text(
        "import time\n"
        "from nodegraph.node import Output, node\n"
        "from nodegraph.types import INT\n"
        "@node('slow.Loop', outputs=[Output('n', INT)], output_node=True)\n"
        "def loop(ctx):\n"
        "    for i in range(10000):\n"
        "        time.sleep(0.01)\n"
        "        ctx.progress(i + 1, 10000)\n"
        "    return 1\n"
    )
    runner = tmp_path / "run.py"
    runner.write_text(
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import slowplugin\n"
        "from nodegraph.installed import default_registry\n"
        "default_registry().register(slowplugin.loop, source='test')\n"
        "from nodegraph.cli import main\n"
        "sys.exit(main(['run', sys.argv[2], '--events', 'json']))\n"
    )
    workflow = _write(tmp_path, {"loop": {"type": "slow.Loop"}})
    proc = subprocess.Popen([sys.executable, str(runner), str(tmp_path), str(workflow)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in proc.stdout:
        if '"node_progress"' in line:
            break
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "cancelled" in err
    assert '"run_cancelled"' in out
