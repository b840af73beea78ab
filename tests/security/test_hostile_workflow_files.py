"""Red team, workflow files: whatever a workflow file holds, ``nodegraph validate`` and ``run`` answer with the
problems (node, field, expected, found) and exit 2, never a traceback, a hang or gigabytes of memory."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.security.hostile import WORKFLOW_FORMAT, cli, pixel_bomb_png, text_bomb_png, tiny_png_bytes, write_workflow

OK_NODE = {"type": "core.Int", "params": {"value": 1}}

# (case id, file contents, a fragment the answer must contain)
FILE_CASES = [
    ("empty file", b"", "not valid JSON"),
    ("whitespace", b"   \n", "not valid JSON"),
    ("binary garbage", bytes(range(256)) * 4, "not UTF-8"),
    ("latin-1 text", "{\"a\": \"\xe9\"}".encode("latin-1"), "not UTF-8"),
    ("a JSON string", b'"hello"', "must be a JSON object"),
    ("a JSON array", b"[1, 2]", "must be a JSON object"),
    ("null", b"null", "must be a JSON object"),
    ("no format", json.dumps({"version": 1, "nodes": {}}).encode(), "not a nodegraph workflow"),
    ("wrong format", json.dumps({"format": "comfy", "version": 1, "nodes": {}}).encode(), "not a nodegraph workflow"),
    ("version as text", json.dumps({**WORKFLOW_FORMAT, "version": "1", "nodes": {}}).encode(), "whole number"),
    ("version negative", json.dumps({**WORKFLOW_FORMAT, "version": -1, "nodes": {}}).encode(), "whole number"),
    ("version from the future", json.dumps({**WORKFLOW_FORMAT, "version": 99, "nodes": {}}).encode(), "newer"),
    ("version true", json.dumps({**WORKFLOW_FORMAT, "version": True, "nodes": {}}).encode(), "whole number"),
    ("nodes missing", json.dumps(WORKFLOW_FORMAT).encode(), "'nodes' must map"),
    ("nodes a list of junk", json.dumps({**WORKFLOW_FORMAT, "nodes": [1, "x", None]}).encode(), "problem"),
    ("nodes a string", json.dumps({**WORKFLOW_FORMAT, "nodes": "x"}).encode(), "'nodes' must map"),
    ("node not an object", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": 5}}).encode(), "must be a JSON object"),
    ("node without type", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {}}}).encode(), "needs a type"),
    ("type is a number", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": 3}}}).encode(), "needs a type"),
    ("empty node id", json.dumps({**WORKFLOW_FORMAT, "nodes": {"": OK_NODE}}).encode(), "non-empty"),
    ("params a list", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Int", "params": [1]}}}).encode(),
     "'params' must map"),
    ("inputs a string", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Show", "inputs": "x"}}}).encode(),
     "'inputs' must map"),
    ("link of three", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Show", "inputs": {"value": ["a", "b", "c"]}}}}).encode(),
     "[source node id, output name]"),
    ("link to itself", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Show", "inputs": {"value": ["a", "text"]}}}}).encode(),
     "cycle"),
    ("link to nowhere", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Show", "inputs": {"value": ["zz", "v"]}}}}).encode(),
     "does not exist"),
    ("layout a number", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {**OK_NODE, "layout": 3}}}).encode(), "'layout' must be"),
    ("node version zero", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {**OK_NODE, "version": 0}}}).encode(), ">= 1"),
    ("node version future", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {**OK_NODE, "version": 9}}}).encode(), "version 9"),
    ("unknown node type", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "evil.Thing"}}}).encode(), "not installed"),
    ("unknown parameter", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Int", "params": {"zz": 1}}}}).encode(),
     "no parameter"),
    ("nested 5,000 deep", (b'{"a":' * 5000) + b"1" + b"}" * 5000, "json_depth"),
    ("nested arrays 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "json_depth"),
    ("a 5,000-digit number", b'{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Int", '
     b'"params": {"value": ' + b"9" * 5000 + b"}}}}", "json_number_digits"),
    ("a 5,000-digit float", b'{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Float", '
     b'"params": {"value": 1.' + b"5" * 5000 + b"}}}}", "json_number_digits"),
    ("an int of 10**400 for core.Int", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Int", "params": {"value": 10**400}}}}).encode(),
     "json_number_digits"),
    ("an int of 10**30 for core.Int", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": {"type": "core.Int", "params": {"value": 10**30}}}}).encode(),
     "at most"),
    ("NaN float", b'{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Float", "params": {"value": NaN}}}}',
     "finite"),
    ("Infinity float", b'{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Float", "params": {"value": -Infinity}}}}',
     "finite"),
    ("1e999 float", b'{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Float", "params": {"value": 1e999}}}}',
     "finite"),
    ("duplicate node ids", b'{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Int"}, "a": {"type": "core.Float"}}}',
     "node id 'a' is used by two nodes"),
    ("duplicate parameter", b'{"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Int", "params": {"value": 1, "value": 2}}}}',
     "appears twice in node 'a' params"),
    ("duplicate top-level key", b'{"format": "nodegraph.workflow", "version": 1, "version": 1, "nodes": {}}', "appears twice in the top level"),
    ("truncated", json.dumps({**WORKFLOW_FORMAT, "nodes": {"a": OK_NODE}}).encode()[:-7], "not valid JSON"),
    ("trailing garbage", json.dumps({**WORKFLOW_FORMAT, "nodes": {}}).encode() + b"}}", "not valid JSON"),
    ("a PNG without a workflow", tiny_png_bytes(), "carries no nodegraph workflow"),
    ("a PNG that is cut short", tiny_png_bytes()[:20], "carries no nodegraph workflow"),
    ("a PNG whose workflow is not JSON", None, "not valid JSON"),
]


@pytest.mark.parametrize(("raw", "fragment"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_broken_workflow_file_is_refused_with_a_message(capsys, tmp_path, command, raw, fragment):
    if raw is None:
        from tests.security.hostile import png_chunk

        raw = tiny_png_bytes(extra_chunks=png_chunk(b"tEXt", b"nodegraph.workflow\0{not json"))
    path = write_workflow(tmp_path / ("wf.png" if raw.startswith(b"\x89PNG") else "wf.json"), raw=raw)
    answer = cli(capsys, command, path, *(["--output", tmp_path / "out"] if command == "run" else []))
    assert answer.code == 2
    assert fragment in answer.text
    assert not (tmp_path / "out").exists()  # nothing ran


def test_a_png_whose_workflow_chunk_inflates_to_gigabytes_is_refused_at_the_limit(capsys, tmp_path):
    bomb = text_bomb_png(tmp_path / "bomb.png", inflated=256 << 20)
    assert bomb.stat().st_size < 2 << 20  # the issue's was 4 MB
    answer = cli(capsys, "validate", bomb)
    assert answer.code == 2 and "png_text_bytes" in answer.text and "--limit" in answer.text


def test_a_workflow_past_the_size_limit_is_refused_and_the_limit_can_be_raised(capsys, tmp_path):
    nodes = {f"n{i}": {"type": "core.String", "params": {"value": "x" * 100}} for i in range(40)}
    path = write_workflow(tmp_path / "big.json", nodes)
    answer = cli(capsys, "validate", path, "--limit", "workflow_bytes=2000")
    assert answer.code == 2 and "workflow_bytes" in answer.text
    assert cli(capsys, "validate", path, "--limit", "workflow_bytes=100000").code == 0


def test_a_bad_limit_argument_is_a_usage_error(capsys, tmp_path):
    path = write_workflow(tmp_path / "wf.json", {"a": OK_NODE})
    for bad in ("nope=3", "image_pixels", "image_pixels=-1", "image_pixels=lots"):
        answer = cli(capsys, "validate", path, "--limit", bad)
        assert answer.code == 2 and "--limit" in answer.text


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "/proc/self/status", "folder", "fifo"])
def test_a_workflow_path_that_is_no_regular_file_is_refused_without_reading_it(capsys, tmp_path, target):
    if target == "folder":
        target = tmp_path
    elif target == "fifo":
        target = tmp_path / "pipe.json"
        os.mkfifo(target)  # opening it would wait for a writer forever
    answer = cli(capsys, "validate", target)
    assert answer.code == 2 and "workflow file" in answer.text


def test_a_pixel_bomb_image_is_no_workflow_and_is_refused_by_load_image(capsys, tmp_path):
    bomb = pixel_bomb_png(tmp_path / "big.png")
    assert bomb.stat().st_size < 256 << 10  # 12000 x 12000 pixels (5.9 GB decoded) in a small file
    assert "carries no nodegraph workflow" in cli(capsys, "validate", bomb).text
    workflow = write_workflow(tmp_path / "wf.json", {"load": {"type": "core.LoadImage", "params": {"path": "big.png"}},
                                                   "show": {"type": "core.Show", "inputs": {"value": ["load", "width"]}}})
    answer = cli(capsys, "run", workflow, "--output", tmp_path / "out")
    assert answer.code == 1 and "image_pixels" in answer.text and "12000x12000" in answer.text


def test_ctrl_c_while_the_workflow_loads_ends_with_cancelled_not_a_traceback(capsys, tmp_path, monkeypatch):
    import nodegraph.workflow_input as workflow_input

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflow_input, "read_document", interrupted)
    answer = cli(capsys, "validate", write_workflow(tmp_path / "wf.json", {"a": OK_NODE}))
    assert answer.code == 130 and "cancelled" in answer.err


def test_ctrl_c_right_after_a_run_ends_with_cancelled_not_a_traceback(capsys, tmp_path, monkeypatch):
    from nodegraph.reporting import Reporter

    def interrupted(self, graph, result):
        raise KeyboardInterrupt

    monkeypatch.setattr(Reporter, "summary", interrupted)
    workflow = write_workflow(tmp_path / "wf.json", {"a": OK_NODE, "s": {"type": "core.Show", "inputs": {"value": ["a", "value"]}}})
    answer = cli(capsys, "run", workflow, "--output", tmp_path / "out")
    assert answer.code == 130 and "cancelled" in answer.err


def test_the_error_summary_of_a_huge_value_is_short(capsys):
    from nodegraph.executor import summarize
    from nodegraph.params import describe

    assert "digits" in summarize(10**5000) and len(summarize(10**5000)) < 80
    assert "digits" in describe(10**5000)
    assert len(summarize("x" * 10**6)) < 120
    sys.set_int_max_str_digits(4300)  # the default: a repr of 10**5000 would raise here
