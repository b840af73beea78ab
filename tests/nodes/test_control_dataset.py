"""Reading training datasets for ControlNets and T2I-Adapters: both documented layouts, captions, what is
left out and why, and paths that try to leave the dataset folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from nodes.training.control_dataset import DatasetError, FolderDataset, TensorDataset, list_dataset


def _png(path, size=(40, 30), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_paired_folders_with_captions_in_either_place(tmp_path):
    for stem in ("a", "b", "c"):
        _png(tmp_path / "images" / f"{stem}.png")
    _png(tmp_path / "conditioning" / "a.png")
    _png(tmp_path / "conditioning" / "b.jpg")
    _png(tmp_path / "conditioning" / "orphan.png")
    (tmp_path / "captions").mkdir()
    (tmp_path / "captions" / "a.txt").write_text("a red\n circle \n")
    (tmp_path / "images" / "b.txt").write_text("a blue square")
    listing = list_dataset(tmp_path)
    assert [(e.name, e.caption) for e in listing.examples] == [("a", "a red circle"), ("b", "a blue square")]
    assert any("c.png" in note for note in listing.notes)  # no condition: left out, said so
    assert any("orphan" in note for note in listing.notes)


def test_jsonl_index_with_diffusers_column_names(tmp_path):
    _png(tmp_path / "photos" / "x.png")
    _png(tmp_path / "edges" / "x.png")
    rows = [{"image": "photos/x.png", "conditioning_image": "edges/x.png", "text": "a photo"},
            {"image": "photos/missing.png", "conditioning_image": "edges/x.png", "text": "gone"}]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    for source in (tmp_path, tmp_path / "metadata.jsonl"):
        listing = list_dataset(source)
        assert listing.layout == "index"
        assert [e.caption for e in listing.examples] == ["a photo"]
        assert any("line 2" in note and "does not exist" in note for note in listing.notes)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.png", "photos/../../outside.png"])
def test_index_paths_may_not_leave_the_dataset_folder(tmp_path, bad):
    data = tmp_path / "data"
    _png(tmp_path / "outside.png")
    _png(data / "edges" / "x.png")
    (data / "metadata.jsonl").write_text(json.dumps({"image": bad, "conditioning_image": "edges/x.png"}) + "\n")
    with pytest.raises(DatasetError, match="relative to the index's folder"):
        list_dataset(data)


def test_links_out_of_the_folder_and_non_files_are_left_out(tmp_path):
    data = tmp_path / "data"
    secret = _png(tmp_path / "secret.png")
    _png(data / "images" / "a.png")
    _png(data / "conditioning" / "a.png")
    _png(data / "conditioning" / "b.png")
    os.symlink(secret, data / "images" / "b.png")
    os.mkfifo(data / "images" / "c.png")
    _png(data / "conditioning" / "c.png")
    listing = list_dataset(data)
    assert [e.name for e in listing.examples] == ["a"]
    assert any("outside the dataset folder" in note for note in listing.notes)
    assert any("not a regular file" in note for note in listing.notes)


def test_unusable_datasets_say_what_the_layout_should_be(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        list_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no dataset given"):
        list_dataset("  ")
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="conditioning folder"):
        list_dataset(tmp_path)
    (tmp_path / "conditioning").mkdir()
    with pytest.raises(DatasetError, match="no usable"):
        list_dataset(tmp_path)
    (tmp_path / "metadata.jsonl").write_text("{not json\n")
    with pytest.raises(DatasetError, match="line 1 is not JSON"):
        list_dataset(tmp_path)
    (tmp_path / "metadata.jsonl").write_text('["a list"]\n')
    with pytest.raises(DatasetError, match="expected an object"):
        list_dataset(tmp_path)


def test_pixels_are_centre_cropped_squares_in_the_trainers_ranges(tmp_path):
    image = np.zeros((30, 60, 3), np.uint8)
    image[:, 15:45] = 255  # the centre square is white, the sides black
    Image.fromarray(image).save(_png(tmp_path / "images" / "a.png"))
    _png(tmp_path / "conditioning" / "a.png", value=255)
    x, cond = FolderDataset(list_dataset(tmp_path)).pixels(0, 16)
    assert x.shape == cond.shape == (3, 16, 16)
    assert torch.allclose(x, torch.ones_like(x), atol=1e-3)  # -1..1: the white centre only
    assert torch.allclose(cond, torch.ones_like(cond))  # 0..1

    memory = TensorDataset(torch.full((1, 8, 8, 3), 255, dtype=torch.uint8), torch.zeros(1, 8, 8, 3), ["c"])
    x, cond = memory.pixels(0, 8)
    assert x.min() == 1.0 and cond.max() == 0.0 and memory.caption(0) == "c"
