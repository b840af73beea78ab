"""docs/plugins.md followed literally: its step-by-step section is executed as a new user would do it.

In that section every code block is preceded by an instruction: "Create `path`:" writes the block to a file,
"Add to `path`:" appends it, "Run:" runs the shell commands (``nodegraph`` and ``python`` are this checkout's),
and "It prints ...:" is compared with what the previous commands printed ("..." matches anything). A block
without an instruction fails the test, so the guide and this test cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def steps(text: str) -> list[tuple[str, str, str, str]]:
    """(instruction, argument, language, code) for every code block of the text, in order."""
    result, previous_end = [], 0
    for match in FENCE.finditer(text):
        lead = [line for line in text[previous_end : match.start()].splitlines() if line.strip()]
        last = lead[-1] if lead else ""
        previous_end = match.end()
        if found := re.search(r"(Create|Add to) `([^`]+)`:\s*$", last):
            result.append((found.group(1), found.group(2), match.group(1), match.group(2)))
        elif re.search(r"\bRun:\s*$", last):
            result.append(("Run", "", match.group(1), match.group(2)))
        elif re.search(r"It prints[^:]*:\s*$", last):
            result.append(("Prints", "", match.group(1), match.group(2)))
        else:
            pytest.fail(f"docs/plugins.md: a code block in the step-by-step section has no instruction before it: {last!r}")
    return result


def expect(expected: str, output: str) -> None:
    for line in filter(str.strip, expected.splitlines()):
        pattern = ".*".join(re.escape(part) for part in line.split("..."))
        assert re.search(pattern, output), f"the guide says this is printed:\n{line}\nbut the output was:\n{output}"


def test_the_step_by_step_guide_works_as_written(tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, command in {"nodegraph": f'exec "{sys.executable}" -m nodegraph "$@"', "python": f'exec "{sys.executable}" "$@"'}.items():
        shim = bin_dir / name
        shim.write_text(f"#!/bin/sh\n{command}\n")
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "NODEGRAPH_PLUGIN_PATH"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT), XDG_DATA_HOME=str(tmp_path / "data"))

    exports: list[str] = []  # a reader's shell keeps its exports from one step to the next
    output = ""
    done = {"Create": 0, "Add to": 0, "Run": 0, "Prints": 0}
    for instruction, argument, _language, code in steps(section(GUIDE.read_text(encoding="utf-8"), "Step by step")):
        done[instruction] += 1
        if instruction in ("Create", "Add to"):
            target = work / argument
            target.parent.mkdir(parents=True, exist_ok=True)
            previous = target.read_text(encoding="utf-8") + "\n\n" if instruction == "Add to" else ""
            target.write_text(previous + code, encoding="utf-8")
        elif instruction == "Run":
            script = "\n".join(["set -e", *exports, code])
            run = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
            output = run.stdout + run.stderr
            assert run.returncode == 0, f"the guide's commands failed:\n{code}\n{output}"
            exports += [line for line in code.splitlines() if line.startswith("export ")]
        else:
            expect(code, output)
    assert done["Create"] >= 3 and done["Add to"] >= 2 and done["Run"] >= 3 and done["Prints"] >= 3


def test_every_snippet_of_the_guide_is_valid():
    text = GUIDE.read_text(encoding="utf-8")
    step_by_step = section(text, "Step by step")
    blocks = FENCE.findall(text)
    assert len(blocks) > 10
    for language, code in blocks:
        if language == "python":
            compiled = compile(code, "docs/plugins.md", "exec")
            if code not in step_by_step:  # the reference snippets are complete: their node declarations must hold
                exec(compiled, {"__name__": "plugins_md_snippet"})
        elif language == "json":
            json.loads(code)
        elif language == "toml":
            tomllib.loads(code)


def test_the_guide_links_to_files_that_exist():
    text = GUIDE.read_text(encoding="utf-8")
    for target in re.findall(r"\]\((\.\./[^)#]+)\)", text):
        assert (GUIDE.parent / target).exists(), target
