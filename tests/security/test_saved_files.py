"""Integrity of what the product saves: through links, with the usual permissions, no temporary litter, and a
PNG with a large embedded workflow opens again."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from nodegraph.atomic_files import STALE_SECONDS, atomic_write_bytes, clean_stale_temps
from nodegraph.graph import Graph
from nodegraph.installed import default_registry
from nodegraph.workflow import load_workflow, save_workflow
from tests.security.hostile import cli, image_png, write_workflow


@pytest.fixture
def umask():
    """Set the process umask for a test and put the old one back."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def small_graph() -> Graph:
    graph = Graph()
    graph.add_node(default_registry(), "core.Int", "a", {"value": 3})
    return graph


def test_saving_over_a_link_writes_the_file_it_points_to_and_keeps_the_link(tmp_path):
    real = tmp_path / "store" / "flow.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "flow.json"
    link.symlink_to(real)
    save_workflow(small_graph(), link)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert load_workflow(real).nodes["a"].params["value"] == 3


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_a_new_workflow_gets_the_permissions_the_umask_allows(tmp_path, umask, mask, expected):
    umask(mask)
    save_workflow(small_graph(), tmp_path / "new.json")
    assert mode(tmp_path / "new.json") == expected


def test_overwriting_a_file_keeps_its_own_mode(tmp_path, umask):
    path = tmp_path / "private.json"
    path.write_text("{}")
    path.chmod(0o600)
    save_workflow(small_graph(), path)
    assert mode(path) == 0o600
    path.chmod(0o640)
    atomic_write_bytes(path, b"{}")
    assert mode(path) == 0o640


def test_saved_images_get_the_usual_permissions_not_those_of_a_temporary_file(capsys, tmp_path, umask):
    umask(0o022)
    image_png(tmp_path / "in.png")
    workflow = write_workflow(tmp_path / "wf.json", {
        "load": {"type": "core.LoadImage", "params": {"path": "in.png"}},
        "save": {"type": "core.SaveImage", "params": {"filename_prefix": "x"}, "inputs": {"images": ["load", "image"]}},
    })
    assert cli(capsys, "run", workflow, "--output", tmp_path / "out", "--events", "none").code == 0
    [saved] = (tmp_path / "out").glob("x_*.png")
    assert mode(saved) == 0o644


def test_dreambooth_class_images_get_the_usual_permissions(tmp_path, umask):
    import torch

    from nodes.training.image_folder import save_png

    umask(0o022)
    save_png(torch.rand(8, 8, 3), tmp_path / "class.png")
    assert mode(tmp_path / "class.png") == 0o644


def test_temporary_files_left_by_a_killed_save_are_removed_by_the_next_save_and_fresh_ones_kept(tmp_path):
    stale = tmp_path / ".flow.json.ab12cd34.tmp"  # what a SIGKILL in the middle of a save leaves
    fresh = tmp_path / ".flow.json.ef56gh78.tmp"  # another process saving right now
    theirs = tmp_path / ".notes.tmp"  # not ours: never touched
    for path in (stale, fresh, theirs):
        path.write_bytes(b"half")
    old = time.time() - STALE_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(theirs, (old, old))
    save_workflow(small_graph(), tmp_path / "flow.json")
    assert not stale.exists() and fresh.exists() and theirs.exists()
    assert clean_stale_temps(tmp_path) == []


def test_a_png_whose_embedded_workflow_passes_pillows_text_limit_reopens(capsys, tmp_path):
    """Pillow refuses text chunks over 1 MB by default: the product's own Load Image could not open its PNGs."""
    image_png(tmp_path / "in.png")
    big = "x" * (3 << 20)
    workflow = write_workflow(tmp_path / "wf.json", {
        "note": {"type": "core.Text", "params": {"value": big}},
        "load": {"type": "core.LoadImage", "params": {"path": "in.png"}},
        "save": {"type": "core.SaveImage", "params": {"filename_prefix": "big"}, "inputs": {"images": ["load", "image"]}},
    })
    assert cli(capsys, "run", workflow, "--output", tmp_path, "--events", "none").code == 0
    [png] = tmp_path.glob("big_*.png")
    assert load_workflow(png).nodes["note"].params["value"] == big  # the editor and `nodegraph run image.png`
    reopen = write_workflow(tmp_path / "reopen.json", {
        "load": {"type": "core.LoadImage", "params": {"path": png.name}},
        "show": {"type": "core.Show", "inputs": {"value": ["load", "width"]}},
    })
    answer = cli(capsys, "run", reopen, "--output", tmp_path / "out", "--events", "none")
    assert answer.code == 0 and "show.text: 16" in answer.out
