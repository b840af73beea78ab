"""The README's editor screenshots: each workflow opened in the real window at its default zoom, run first
when every model it names is installed, then the window saved as a PNG.

    xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/make_screenshots.py \\
        workflows/txt2img.json workflows/demo_controlnet.json workflows/sdxl_txt2img.json --out docs

Writes docs/screenshot_<workflow>.png. Runs write their images to a temporary folder, not beside the
workflows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SIZE = (1920, 1080)


def models_installed(window: object) -> list[str]:
    """The model files the workflow names that are not installed (empty: it can run)."""
    missing = []
    for node in window.document.graph.nodes.values():
        definition = window.registry.get(node.type)
        for param in definition.params if definition else ():
            if param.kind == "model_file":
                name = node.params.get(param.name, param.default)
                try:
                    window.folders.resolve(param.folder, name)
                except (OSError, ValueError):
                    missing.append(f"{node.id}.{param.name} = {name!r}")
    return missing


def shoot(path: Path, out: Path, app: object, timeout: float) -> Path:
    from ui.app import settle
    from ui.main_window import MainWindow

    window = MainWindow(remember_layout=False)
    window.resize(*SIZE)
    window.show()
    settle(app)
    if not window.open_path(path, ask=False):
        raise SystemExit(f"cannot open {path}")
    settle(app)
    missing = models_installed(window)
    if missing:
        print(f"{path.name}: not run, models not installed: {', '.join(missing)}")
    else:
        window.output_dir = lambda: Path(tempfile.mkdtemp(prefix="nodegraph-shot-"))
        window.run()
        deadline = time.monotonic() + timeout
        while (window.runner.running or not window.run_action.isEnabled()) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        print(f"{path.name}: {window.state_label.text()}")
    settle(app)
    window.fit_all()
    settle(app, 10)
    target = out / f"screenshot_{path.stem}.png"
    if not window.grab().save(str(target)):
        raise SystemExit(f"could not write {target}")
    window.document.undo_stack.setClean()
    window.close()
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workflows", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each run")
    args = parser.parse_args(argv)
    os.environ.setdefault("NODEGRAPH_DATA", tempfile.mkdtemp(prefix="nodegraph-shot-data-"))
    from ui.app import application

    app = application()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.workflows:
        print(f"wrote {shoot(path, args.out, app, args.timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
