"""One rule for names given relative to a folder (nodegraph.paths.name_problem / join_inside), applied alike by the
engine (model names, Save Image prefixes) and the server (model names in submitted workflows, upload subfolders,
files served back), and one pixel limit for images, whether loaded or uploaded (nodegraph.limits)."""

from __future__ import annotations

import pytest

from nodegraph import limits
from nodegraph.errors import NodeInputError
from nodegraph.graph import Graph, GraphNode
from nodegraph.installed import default_registry
from nodegraph.paths import join_inside, name_problem
from tests.security.hostile import tiny_png_bytes

NAMES = ["a.png", "sub/a.png", "sub\\a.png", "./a.png", "sub/./a.png", "../a.png", "sub/../a.png", "sub/../../a.png",
         "..\\a.png", "/etc/passwd", "C:\\a.png", "C:a.png", "\\\\server\\share\\a.png", "a\0b.png"]
REFUSED = {"../a.png", "sub/../a.png", "sub/../../a.png", "..\\a.png", "/etc/passwd", "C:\\a.png", "C:a.png",
           "\\\\server\\share\\a.png", "a\0b.png"}


@pytest.mark.parametrize("name", NAMES)
def test_the_rule_refuses_absolute_names_drives_parent_parts_and_nul(name):
    assert bool(name_problem(name)) == (name in REFUSED)


@pytest.mark.parametrize("name", NAMES)
def test_the_server_and_the_engine_refuse_the_same_names(tmp_path, name):
    from nodegraph.server.confine import confine
    from nodegraph.server.uploads import UploadError, store_upload
    from nodes.image.output_files import resolve_prefix

    refused = name in REFUSED
    (tmp_path / "input" / "sub").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    # a workflow's model name on the server
    graph = Graph()
    graph.nodes["load"] = GraphNode("load", "core.CheckpointLoader", 1, {"ckpt_name": name})
    problems = confine(graph, default_registry(), tmp_path / "input")
    assert any(p.code == "model_path_refused" for p in problems) == refused
    # an upload's subfolder
    try:
        store_upload(tmp_path / "input", "up.png", tiny_png_bytes(), subfolder=name)
        uploaded = True
    except UploadError:
        uploaded = False
    assert uploaded != refused and (join_inside(tmp_path / "input", name) is None) == refused
    # a Save Image prefix
    try:
        resolve_prefix(tmp_path / "out", name)
        saved = True
    except NodeInputError:
        saved = False
    assert saved != refused


def test_a_link_out_of_the_folder_is_refused_by_join_inside(tmp_path):
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "out").symlink_to(tmp_path)
    assert join_inside(tmp_path / "inside", "out/x.png") is None
    assert join_inside(tmp_path / "inside", "x.png") == (tmp_path / "inside" / "x.png").resolve()


def test_uploads_and_load_image_share_the_image_pixels_limit():
    from nodegraph.server.settings import Limits
    from nodegraph.server.uploads import UploadError, check_image

    assert Limits().image_pixels == limits.get("image_pixels")
    limits.set_limits(["image_pixels=15"])
    try:
        assert Limits().image_pixels == 15
        with pytest.raises(UploadError) as refused:
            check_image(tiny_png_bytes(4, 4))
        assert refused.value.status == 413 and "image_pixels" in str(refused.value)
        assert check_image(tiny_png_bytes(3, 5)) == "PNG"
    finally:
        limits.reset()
