"""What the command-line tools print on stderr: errors and lists of problems, in one style."""

from __future__ import annotations

import json
import sys
from typing import Any


def error(message: str) -> None:
    print(f"nodegraph: {message}", file=sys.stderr)


def print_problems(problems: list[Any], as_json: bool = False) -> None:
    """Every problem, one per line (``as_json``: a JSON list on stdout, for other programs)."""
    if as_json:
        print(json.dumps([p.to_json() for p in problems], indent=2))
        return
    error(f"the workflow has {len(problems)} problem(s):")
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
