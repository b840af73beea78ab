"""`nodegraph run` beyond one plain run: --previews DIR, --repeat N with seed controls, saved files in the JSON
events, and `nodegraph run image.png` reproducing exactly image k of a batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nodegraph.cli import main
from nodegraph.png_meta import image_record, png_text_chunks

ROOT = Path(__file__).resolve().parents[2]


def _demo(tmp_path: Path, steps: int = 3, batch: int = 1, seed: int = 1, controls: dict | None = None) -> Path:
    doc = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    doc["nodes"]["sampler"]["params"].update(steps=steps, seed=seed)
    doc["nodes"]["latent"]["params"]["batch_size"] = batch
    if controls:
        doc["nodes"]["sampler"]["controls"] = controls
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(doc))
    return path


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_json_events_name_the_files_each_output_node_saved(tmp_path, capsys):
    path = _demo(tmp_path, batch=2)
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--events", "json"]) == 0
    finished = [e for e in _events(capsys.readouterr().out) if e["event"] == "node_finished"]
    files = {e["node"]: e["files"] for e in finished}
    assert files["save"] == [str(tmp_path / "out" / f"txt2img_0000{i}.png") for i in (1, 2)]
    assert all(Path(f).is_file() for f in files["save"]) and files["sampler"] == []


def test_previews_are_written_to_the_folder_asked_for(tmp_path, capsys):
    path = _demo(tmp_path, steps=4)
    previews = tmp_path / "previews"
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--previews", str(previews),
                 "--preview-every", "0", "--events", "none"]) == 0
    written = sorted(p.name for p in previews.iterdir())
    assert written == [f"sampler_0000{i}.png" for i in range(1, 5)]
    assert Image.open(previews / written[-1]).size == (256, 256)  # 8x8 cells enlarged to a viewable size


def test_repeat_applies_the_seed_control_between_runs(tmp_path, capsys):
    path = _demo(tmp_path, seed=10, controls={"seed": "increment"})
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--repeat", "3", "--events", "none"]) == 0
    saved = sorted((tmp_path / "out").glob("*.png"))
    seeds = [image_record(p.read_bytes())["seeds"]["sampler"]["seed"] for p in saved]
    assert seeds == [10, 11, 12]
    assert "Seed: 11" in png_text_chunks(saved[1].read_bytes())["parameters"]
    assert "run 2 of 3: sampler.seed 10 -> 11" in capsys.readouterr().err
    assert json.loads(path.read_text())["nodes"]["sampler"]["params"]["seed"] == 10  # the file is not changed


def test_repeat_must_be_a_positive_number(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", str(_demo(tmp_path)), "--repeat", "0"])
    assert info.value.code == 2 and "at least 1 run" in capsys.readouterr().err


def test_running_image_k_of_a_batch_reproduces_exactly_that_image(tmp_path, capsys):
    path = _demo(tmp_path, batch=3, seed=5)
    first = tmp_path / "first"
    assert main(["run", str(path), "--output", str(first), "--events", "none"]) == 0
    saved = sorted(first.glob("*.png"))
    records = [image_record(p.read_bytes()) for p in saved]
    assert [(r["batch_index"], r["batch_size"]) for r in records] == [(0, 3), (1, 3), (2, 3)]
    assert all(r["seeds"] == {"sampler": {"seed": 5}} for r in records)
    assert "Batch size: 3, Batch pos: 1" in png_text_chunks(saved[1].read_bytes())["parameters"]

    again = tmp_path / "again"
    assert main(["run", str(saved[1]), "--output", str(again), "--events", "none"]) == 0
    assert "image 2 of a batch of 3" in capsys.readouterr().err
    (only,) = sorted(again.glob("*.png"))
    pixels = np.asarray(Image.open(only))
    assert np.array_equal(pixels, np.asarray(Image.open(saved[1])))
    assert not np.array_equal(pixels, np.asarray(Image.open(saved[0])))
    assert image_record(only.read_bytes())["batch_index"] == 1
