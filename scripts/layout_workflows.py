"""Lay out workflow files with the editor's auto layout, by the real sizes of the editor's node items.

    python scripts/layout_workflows.py workflows/*.json

Only the nodes' ``layout.x`` and ``layout.y`` change; everything else in the file (its version, order,
titles, colours) is written back as it was. Runs without a display (Qt's offscreen platform).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def layout_file(path: Path, registry: object) -> tuple[int, float, float]:
    """Lay out one file in place; returns (node count, width, height) of the result."""
    from nodegraph.workflow import atomic_write_bytes
    from ui.canvas import Canvas
    from ui.document import Document

    raw = json.loads(path.read_text(encoding="utf-8"))
    document = Document(registry)
    canvas = Canvas(document)
    document.open(path)
    positions = canvas.layout_positions()
    sizes = canvas.node_sizes()
    for node_id, (x, y) in positions.items():
        layout = raw["nodes"][node_id].setdefault("layout", {})
        layout["x"], layout["y"] = x, y
    atomic_write_bytes(path, (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    width = max((x + sizes[n][0] for n, (x, _) in positions.items()), default=0.0)
    height = max((y + sizes[n][1] for n, (_, y) in positions.items()), default=0.0)
    canvas.viewer().deleteLater()
    return len(positions), width, height


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from nodegraph.errors import WorkflowError
    from nodegraph.installed import default_registry
    from ui.app import application

    application()
    registry = default_registry()
    status = 0
    for name in argv:
        path = Path(name)
        try:
            count, width, height = layout_file(path, registry)
        except (OSError, WorkflowError, json.JSONDecodeError) as exc:
            print(f"{path}: not laid out: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: {count} nodes, {width:.0f} x {height:.0f}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
