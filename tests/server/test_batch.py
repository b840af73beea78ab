"""``nodegraph batch`` run from another folder: grids and zipped sweeps, values from ranges, lists and files,
the index, the same images as ``nodegraph run``, and every bad sweep reported at once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from nodegraph.batch.sweep import SweepError, combinations, parse_sweeps, raw_values
from nodegraph.cli import main
from nodegraph.installed import default_registry
from nodegraph.png_meta import png_text_chunks
from nodegraph.workflow import load_workflow
from tests.server.helpers import ROOT, demo_workflow

PRIMITIVES = ROOT / "workflows" / "primitives.json"


def index_of(folder):
    return [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]


def test_a_grid_on_two_workers_gives_the_images_of_separate_runs(tmp_path, monkeypatch):
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps(demo_workflow(steps=2, prefix="grid")))
    monkeypatch.chdir(tmp_path)
    code = main(["batch", str(workflow), "--sweep", "sampler.seed=1..2", "--sweep", "sampler.steps=2,3", "--workers", "2",
                 "--device", "cpu", "--precision", "fp32"])
    assert code == 0
    index = index_of(tmp_path / "output")
    assert sorted((i["params"]["sampler.seed"], i["params"]["sampler.steps"]) for i in index) == [(1, 2), (1, 3), (2, 2), (2, 3)]
    assert sorted(i["index"] for i in index) == [0, 1, 2, 3] and len({i["batch"] for i in index}) == 1
    for item in index:
        (name,) = item["files"]
        embedded = json.loads(png_text_chunks((tmp_path / "output" / name).read_bytes())["nodegraph.workflow"])
        assert embedded["nodes"]["sampler"]["params"]["seed"] == item["params"]["sampler.seed"]
    assert not (tmp_path / "output" / ".nodegraph-batch-staging").exists()
    one = next(i for i in index if i["params"] == {"sampler.seed": 2, "sampler.steps": 3})
    assert main(["run", str(workflow), "--set", "sampler.seed=2", "--set", "sampler.steps=3", "--device", "cpu",
                 "--precision", "fp32", "--output", "alone"]) == 0
    alone = np.asarray(Image.open(tmp_path / "alone" / "grid_00001.png"))
    assert np.array_equal(alone, np.asarray(Image.open(tmp_path / "output" / one["files"][0])))


def test_zipped_sweeps_pair_values_from_lists_and_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shapes.txt").write_text("# one per line\nsquare\n\ntriangle\n")
    code = main(["batch", str(PRIMITIVES), "--sweep", "shape.value=@shapes.txt", "--sweep", "colour.value=green,gold",
                 "--zip", "--output", "out"])
    assert code == 0
    index = index_of(tmp_path / "out")
    assert [i["values"]["show_prompt"]["text"] for i in sorted(index, key=lambda i: i["index"])] == [
        "a green square on a blue background", "a gold triangle on a blue background"]
    assert "2 of 2 combinations done" in capsys.readouterr().out
    assert main(["batch", str(PRIMITIVES), "--sweep", "steps.value=1..3", "--output", "out"]) == 0
    assert len(index_of(tmp_path / "out")) == 5  # a second batch appends to the index


def test_every_bad_sweep_is_reported_at_once(tmp_path, capsys):
    code = main(["batch", str(PRIMITIVES), "--sweep", "steps.value=a..3", "--sweep", "ghost.value=1",
                 "--sweep", "steps=4", "--sweep", "colour.value=@missing.txt", "--workers", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "5 problem(s)" in err and "ghost" in err and "NODE.PARAM=VALUES" in err and "missing.txt" in err and "--workers" in err


@pytest.mark.parametrize(("text", "values"), [
    ("1..4", ["1", "2", "3", "4"]), ("5..1..2", ["5", "3", "1"]), ("-2..0", ["-2", "-1", "0"]),
    ("a,b , c", ["a", "b", "c"]), ("7", ["7"]), ("1.5,2", ["1.5", "2"]),
])
def test_sweep_values_are_ranges_lists_or_files(text, values):
    assert raw_values(text) == values


def test_grids_multiply_and_zips_need_equal_lengths():
    graph = load_workflow(PRIMITIVES, default_registry())
    sweeps = parse_sweeps(["steps.value=1..3", "colour.value=red,blue"], graph, default_registry())
    assert combinations(sweeps) == [{"steps.value": s, "colour.value": c} for s in (1, 2, 3) for c in ("red", "blue")]
    with pytest.raises(SweepError, match="equal length"):
        combinations(sweeps, zipped=True)
    with pytest.raises(SweepError, match="at most"):
        combinations(parse_sweeps(["steps.value=1..1000", "scale.b_value=" + ",".join(["1"] * 200)], graph, default_registry()))
