"""Parameter sweeps: ``NODE.PARAM=VALUES`` specs, and the combinations they make (a grid, or zipped).

VALUES is ``A..B`` (whole numbers from A to B inclusive; ``A..B..STEP`` for a step), ``a,b,c`` (a list; a
lone value is a list of one), or ``@file.txt`` (one value per line; blank lines and lines starting with
``#`` are skipped). Each value is parsed and checked by the parameter it sets, as ``nodegraph run --set``
does, so a bad value is reported with its node and field before anything runs.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodegraph.errors import Problem
from nodegraph.graph import Graph
from nodegraph.params import ParamError
from nodegraph.registry import Registry

MAX_COMBINATIONS = 100_000
_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?:\.\.\s*(-?\d+)\s*)?$")


@dataclass(frozen=True)
class Sweep:
    node: str
    param: str
    values: tuple[Any, ...]

    @property
    def key(self) -> str:
        return f"{self.node}.{self.param}"


class SweepError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def raw_values(text: str, base: Path | None = None) -> list[str]:
    """The values a VALUES text names, still as text."""
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the values file {path}: {exc}") from None
        values = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not values:
            raise ValueError(f"the values file {path} holds no values")
        return values
    match = _RANGE.match(text)
    if match:
        start, stop = int(match[1]), int(match[2])
        size = abs(int(match[3])) if match[3] else 1  # the step's size; its direction is from A to B
        if size == 0:
            raise ValueError(f"the range {text!r} has a step of 0")
        step = size if stop >= start else -size
        count = (stop - start) // step + 1
        if count > MAX_COMBINATIONS:
            raise ValueError(f"the range {text!r} has {count} values; at most {MAX_COMBINATIONS}")
        return [str(v) for v in range(start, stop + (1 if step > 0 else -1), step)]
    return [part.strip() for part in text.split(",")]


def parse_sweeps(specs: list[str], graph: Graph, registry: Registry, base: Path | None = None) -> list[Sweep]:
    """Parse every ``--sweep`` spec; raises :class:`SweepError` listing all the problems."""
    sweeps: list[Sweep] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for spec in specs:
        target, sep, text = spec.partition("=")
        node_id, dot, name = target.rpartition(".")
        if not sep or not dot or not node_id or not name or not text:
            problems.append(Problem("bad_sweep", "write sweeps as NODE.PARAM=VALUES (VALUES: 1..64, a,b,c or @file.txt)",
                                    expected="NODE.PARAM=VALUES", found=repr(spec)))
            continue
        node = graph.nodes.get(node_id)
        definition = registry.get(node.type) if node else None
        param = definition.param(name) if definition else None
        if param is None:
            names = ", ".join(p.name for p in definition.params) if definition else "a node id of the workflow"
            problems.append(Problem("bad_sweep", "no such node parameter", node_id, name,
                                    f"one of {names}" if definition else names, repr(target)))
            continue
        if target in seen:
            problems.append(Problem("bad_sweep", "this parameter is swept twice", node_id, name, "one --sweep per parameter", repr(spec)))
            continue
        seen.add(target)
        try:
            texts = raw_values(text, base)
        except ValueError as exc:
            problems.append(Problem("bad_sweep", str(exc), node_id, name, "1..64, a,b,c or @file.txt", repr(text)))
            continue
        values = []
        for item in texts:
            try:
                values.append(param.parse_text(item))
            except ParamError as exc:
                problems.append(Problem("bad_sweep", "invalid value", node_id, name, exc.expected, exc.found))
        sweeps.append(Sweep(node_id, name, tuple(values)))
    if problems:
        raise SweepError(problems)
    return sweeps


def combinations(sweeps: list[Sweep], zipped: bool = False) -> list[dict[str, Any]]:
    """Every combination as ``{"node.param": value}``: the grid (last sweep varies fastest), or zipped."""
    if not sweeps:
        return [{}]
    if zipped:
        lengths = {len(s.values) for s in sweeps}
        if len(lengths) > 1:
            detail = ", ".join(f"{s.key}: {len(s.values)}" for s in sweeps)
            raise SweepError([Problem("bad_sweep", f"--zip needs sweeps of equal length ({detail})",
                                      expected="the same number of values in every sweep", found=detail)])
        return [{s.key: v for s, v in zip(sweeps, row)} for row in zip(*(s.values for s in sweeps))]
    total = 1
    for sweep in sweeps:
        total *= len(sweep.values)
    if total > MAX_COMBINATIONS:
        raise SweepError([Problem("bad_sweep", f"the grid has {total} combinations; at most {MAX_COMBINATIONS}",
                                  expected=f"<= {MAX_COMBINATIONS} combinations", found=str(total))])
    return [{s.key: v for s, v in zip(sweeps, row)} for row in itertools.product(*(s.values for s in sweeps))]
