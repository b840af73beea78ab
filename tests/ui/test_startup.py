"""Start-up stays light: the editor's window comes up without torch (it loads at the first run)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.ui.conftest import ROOT

PROBE = """
import sys
from ui.app import application
app = application()
from ui.main_window import MainWindow
window = MainWindow()
window.show()
app.processEvents()
print(sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules))
"""


def test_opening_the_window_does_not_import_torch(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NODEGRAPH_DATA": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
