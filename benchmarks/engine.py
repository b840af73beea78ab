"""Engine overhead: chains and independent branches of trivial nodes, first run and fully cached re-run.

    python benchmarks/engine.py

Goal (issue 2): under 0.2 s first run and under 0.05 s cached at N = 800, growing linearly; also the time
of `nodegraph --help` (goal under 0.3 s). For comparison, ComfyUI on this kind of machine took 17.4 s
(first) and 21.5 s (cached) for the 800-node chain, growing quadratically.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodegraph.executor import Executor  # noqa: E402
from nodegraph.graph import Graph, GraphNode  # noqa: E402
from nodegraph.installed import default_registry  # noqa: E402
from nodegraph.model_folders import ModelFolders  # noqa: E402


def chain(n: int) -> tuple[Graph, list[str]]:
    nodes = [GraphNode("s0", "core.String", 1, {"value": "x"})]
    nodes += [GraphNode(f"s{i}", "core.StringJoin", 1, {"separator": ""}, {"a": (f"s{i - 1}", "value" if i == 1 else "text")}) for i in range(1, n)]
    return Graph(nodes), [f"s{n - 1}"]


def branches(n: int) -> tuple[Graph, list[str]]:
    nodes = [GraphNode(f"b{i}", "core.String", 1, {"value": f"v{i}"}) for i in range(n)]
    return Graph(nodes), [f"b{i}" for i in range(n)]


def measure(build, n: int, repeats: int = 5) -> tuple[float, float]:
    registry = default_registry()
    firsts, cached = [], []
    for _ in range(repeats):
        graph, targets = build(n)
        executor = Executor(registry, folders=ModelFolders([]))
        start = time.perf_counter()
        executor.run(graph, targets)
        firsts.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = executor.run(graph, targets)
        cached.append(time.perf_counter() - start)
        assert not result.executed
    return min(firsts), min(cached)


def help_time(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nodegraph", "--help"], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"{'graph':<10}{'N':>6}{'first run (s)':>16}{'cached (s)':>13}{'first/N (us)':>15}")
    for name, build in (("chain", chain), ("branches", branches)):
        rows = []
        for n in (100, 200, 400, 800):
            first, cached = measure(build, n)
            rows.append((n, first))
            print(f"{name:<10}{n:>6}{first:>16.4f}{cached:>13.4f}{first / n * 1e6:>15.1f}")
        per_node = [t / n for n, t in rows]
        print(f"{'':<10}growth: time per node at N=800 / at N=100 = {per_node[-1] / per_node[0]:.2f} (1.0 = linear)")
    python = statistics.median([help_time()])
    print(f"\n`python -m nodegraph --help`: {python:.3f} s (goal < 0.3 s)")
    print("goals at N=800: first run < 0.2 s, cached < 0.05 s; ComfyUI: 17.4 s / 21.5 s for the chain")


if __name__ == "__main__":
    main()
