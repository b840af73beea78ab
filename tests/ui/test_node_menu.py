"""The node context menu: its entries, actions registered by other parts, the node's help."""

from __future__ import annotations

import pytest

from ui.node_help import help_html
from ui.node_menu import COLOR_PRESETS, register_node_action, unregister_node_action


def _texts(menu):
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_the_node_menu_offers_every_node_command(window):
    sampler = window.document.add_node("core.KSampler")
    texts = _texts(window.node_menu(sampler))
    assert texts == ["Run This Node", "Bypass", "Mute", "Rename…", "Colour", "Parameters as Inputs", "Duplicate",
                     "Delete", "Help"]


def test_menu_commands_apply_to_the_whole_selection_when_the_node_is_in_it(window):
    doc = window.document
    a, b, c = (doc.add_node("core.Int", (i * 200, 0)) for i in range(3))
    window.canvas.select([a, b])
    menu = window.node_menu(a)
    assert "Bypass (2 nodes)" in _texts(menu)
    next(x for x in menu.actions() if x.text() == "Mute (2 nodes)").trigger()
    assert [doc.graph.nodes[n].mode for n in (a, b, c)] == ["mute", "mute", None]
    colours = next(x.menu() for x in menu.actions() if x.text() == "Colour (2 nodes)")
    next(x for x in colours.actions() if x.text() == "Green").trigger()
    assert doc.graph.nodes[b].layout["color"] == list(COLOR_PRESETS["Green"])
    menu = window.node_menu(c)  # not selected: only itself
    next(x for x in menu.actions() if x.text() == "Delete").trigger()
    assert c not in doc.graph.nodes and a in doc.graph.nodes


def test_rename_from_the_menu_sets_the_title(window, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    node = window.document.add_node("core.Int")
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *args, **kwargs: ("Steps", True)))
    next(x for x in window.node_menu(node).actions() if x.text() == "Rename…").trigger()
    assert window.document.graph.nodes[node].layout["title"] == "Steps"
    assert window.canvas.views[node].name() == "Steps"


def test_other_parts_add_actions_by_node_type_or_parameter_kind(window):
    doc = window.document
    loader = doc.add_node("core.LoadImage")
    other = doc.add_node("core.Int")
    seen = []
    by_type = register_node_action("Inspect Loader…", lambda ctx: seen.append(("inspect", ctx.node_id, ctx.param)),
                                   node_types={"core.LoadImage"})
    by_kind = register_node_action("Open in Viewer", lambda ctx: seen.append(("view", ctx.node_id, ctx.param)),
                                   param_kind="image_file")
    try:
        texts = _texts(window.node_menu(loader))
        assert "Inspect Loader…" in texts and "Open in Viewer (path)" in texts
        assert texts.index("Inspect Loader…") < texts.index("Duplicate")
        assert "Inspect Loader…" not in _texts(window.node_menu(other))
        menu = window.node_menu(loader)
        next(x for x in menu.actions() if x.text() == "Inspect Loader…").trigger()
        next(x for x in menu.actions() if x.text() == "Open in Viewer (path)").trigger()
        assert seen == [("inspect", loader, None), ("view", loader, "path")]
    finally:
        unregister_node_action(by_type)
        unregister_node_action(by_kind)
    assert "Inspect Loader…" not in _texts(window.node_menu(loader))


@pytest.mark.parametrize("node_type", ["core.KSampler", "core.CheckpointLoader", "core.ControlNetApply"])
def test_help_shows_the_description_and_every_fields_help(window, node_type):
    definition = window.registry.get(node_type)
    html = help_html(definition)
    assert definition.name in html
    for field in (*definition.inputs, *definition.params, *definition.outputs):
        assert (field.label or field.name.replace("_", " ")) in html
        if field.help:
            from html import escape

            assert escape(field.help) in html
