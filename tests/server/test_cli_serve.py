"""The serve and batch subcommands as a user meets them: help without heavy imports, the token at first start,
clear errors for a busy port or bad arguments."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

from nodegraph.cli import main
from tests.server.helpers import ROOT


def run(args, tmp_path, timeout=60):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nodegraph", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


def test_help_names_serve_and_batch_without_loading_the_web_framework_ray_or_torch(tmp_path):
    code = ("import sys, nodegraph, nodegraph.cli as c; p = c.build_parser(); p.format_help(); "
            "p.parse_args(['serve', '--port', '1']); p.parse_args(['batch', 'w.json', '--sweep', 'a.b=1..3']); "
            "print([m for m in ('fastapi', 'starlette', 'uvicorn', 'ray', 'torch', 'websockets') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
    help_text = run(["--help"], tmp_path).stdout
    assert "serve" in help_text and "batch" in help_text
    serve_help = run(["serve", "--help"], tmp_path).stdout
    assert "--ray" in serve_help and "--auth" in serve_help and "mode 0600" in serve_help


def test_the_first_start_makes_a_private_token_and_a_busy_port_is_reported(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(["serve", "--port", str(port), "--state", str(tmp_path / "state")], tmp_path)
        again = run(["serve", "--port", str(port), "--state", str(tmp_path / "state")], tmp_path)
    assert result.returncode == 1 and again.returncode == 1
    token_file = tmp_path / "config" / "nodegraph" / "server-token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token in result.stderr and "cannot listen" in result.stderr and "--port" in result.stderr
    assert token not in again.stderr  # printed once, at first start


def test_bad_serve_arguments_exit_2(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
