"""Plugins > Reload in the editor: a plugin folder edited while the editor is open (real files, real imports)."""

from __future__ import annotations

import json
import textwrap

import pytest

from nodegraph.plugins import load_plugins
from nodegraph.registry import Registry
from tests.ui.test_running import wait_for_run
from ui.node_items import MissingNode
from ui.palette import TYPE_ROLE

PLUGIN = """
from nodegraph.node import Output, node
from nodegraph.params import Int
from nodegraph.types import INT

@node("hotplug.Scale", name="Scale", category="hotplug", description={description!r},
      params=[Int("value", 2){extra_param}], outputs=[Output("result", INT)])
def scale(ctx, value{extra_arg}):
    return {expression}
"""


def write_plugin(folder, expression="value * 3", description="Multiplies.", extra_param="", extra_arg=""):
    source = PLUGIN.format(expression=expression, description=description, extra_param=extra_param, extra_arg=extra_arg)
    (folder / "hotplug.py").write_text(textwrap.dedent(source))


@pytest.fixture
def plugin_dir(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    return folder


@pytest.fixture
def plugin_window(make_window, plugin_dir):
    from nodes import BUILTIN_MODULES

    registry = Registry()
    for module in BUILTIN_MODULES:
        registry.register_module(module)
    registry.register_module("tests.ui.nodes_for_tests", source="tests")
    load_plugins(registry, entry_points=False, folders=[plugin_dir])
    return make_window(registry=registry)


@pytest.fixture
def workflow(tmp_path):
    """A workflow using the plugin's node before the plugin exists: Scale -> Show."""
    path = tmp_path / "uses_plugin.json"
    path.write_text(json.dumps({
        "format": "nodegraph.workflow", "version": 1,
        "nodes": {
            "scale": {"type": "hotplug.Scale", "version": 1, "params": {"value": 2}, "layout": {"x": 0, "y": 0}},
            "show": {"type": "core.Show", "version": 1, "inputs": {"value": ["scale", "result"]}, "layout": {"x": 300, "y": 0}},
        },
    }))
    return path


def shown_text(window, qtbot) -> str:
    assert window.run()
    wait_for_run(qtbot, window)
    return window.canvas.views["show"].result_text.get_value()


def test_reload_turns_a_placeholder_into_a_real_node_that_runs_and_back_when_the_plugin_breaks(plugin_window, plugin_dir, workflow, qtbot):
    window = plugin_window
    window.open_path(workflow, ask=False)
    assert isinstance(window.canvas.views["scale"], MissingNode)
    assert window.canvas.views["scale"].problems  # marked before any run
    assert "hotplug.Scale" in window.log_view.toPlainText()

    write_plugin(plugin_dir)
    changes = window.reload_plugins()
    assert changes.added == ["hotplug.Scale"]
    view = window.canvas.views["scale"]
    assert not isinstance(view, MissingNode) and view.problems == []
    assert view.param_widgets()["value"].get_value() == 2  # the saved value, not the default
    show = window.canvas.views["show"]
    assert show.inputs()["value"].connected_ports() == [view.outputs()["result"]]
    assert "hotplug.Scale" in window.palette.visible_types()
    assert not window.document.dirty  # reloading changes the view, not the workflow
    assert shown_text(window, qtbot) == "6"

    (plugin_dir / "hotplug.py").write_text("def broken(:\n")  # an edit that breaks the plugin
    changes = window.reload_plugins()
    assert changes.removed == ["hotplug.Scale"]
    placeholder = window.canvas.views["scale"]
    assert isinstance(placeholder, MissingNode)
    assert "plugin 'hotplug' failed to load" in placeholder.problems[0] and "SyntaxError" in placeholder.problems[0]
    assert window.document.graph.nodes["scale"].params == {"value": 2}
    assert window.document.graph.nodes["show"].inputs == {"value": ("scale", "result")}
    assert "hotplug.Scale" not in window.palette.visible_types()
    assert "plugin hotplug (failed)" in window.log_view.toPlainText()


def test_reload_of_a_changed_plugin_shows_its_new_parameter_and_drops_stale_results(plugin_window, plugin_dir, workflow, qtbot):
    window = plugin_window
    write_plugin(plugin_dir)
    window.reload_plugins()
    window.open_path(workflow, ask=False)
    assert shown_text(window, qtbot) == "6"

    # same declaration, new code: the cache key is unchanged, so only clearing the cache avoids a stale 6
    write_plugin(plugin_dir, expression="value * 4")
    assert window.reload_plugins().changed == ["hotplug.Scale"]
    assert shown_text(window, qtbot) == "8"

    write_plugin(plugin_dir, expression="value * 4 + offset", description="Multiplies and adds.",
                 extra_param=', Int("offset", 5)', extra_arg=", offset")
    window.reload_plugins()
    widgets = window.canvas.views["scale"].param_widgets()
    assert sorted(widgets) == ["offset", "value"] and widgets["offset"].get_value() == 5
    item = next(i for i in window.palette.type_items() if i.data(0, TYPE_ROLE) == "hotplug.Scale")
    assert "Multiplies and adds." in item.toolTip(0)
    window.document.set_param("scale", "offset", 1)
    assert shown_text(window, qtbot) == "9"


def test_reload_is_refused_during_a_run(plugin_window, plugin_dir, qtbot):
    window = plugin_window
    window.document.add_node("test.SlowCount", params={"steps": 200, "delay": 0.005})
    write_plugin(plugin_dir)
    window.run()
    assert not window.reload_plugins_action.isEnabled()
    assert window.reload_plugins() is None
    assert "hotplug.Scale" not in window.registry
    window.stop()
    wait_for_run(qtbot, window)
    assert window.reload_plugins_action.isEnabled()
    assert window.reload_plugins().added == ["hotplug.Scale"]


def test_plugins_dialog_lists_plugins_with_status_and_error(plugin_window, plugin_dir):
    write_plugin(plugin_dir)
    (plugin_dir / "broken.py").write_text("import definitely_not_installed_module\n")
    dialog = plugin_window.show_plugins()
    assert dialog.rows() == [["(no plugins found)", "", "", ""]]  # the files came after the editor started
    dialog.reload()
    rows = {row[0]: row for row in dialog.rows()}
    assert rows["hotplug"][2] == "loaded"
    assert rows["broken"][2] == "failed"
    broken = next(dialog.tree.topLevelItem(i) for i in range(dialog.tree.topLevelItemCount()) if dialog.tree.topLevelItem(i).text(0) == "broken")
    assert "definitely_not_installed_module" in broken.child(0).text(3)
    assert "broken (failed)" in plugin_window.log_view.toPlainText()
    dialog.close()



def test_reload_with_a_version_bump_migrates_the_open_workflow_as_one_undo_step(plugin_window, plugin_dir, workflow, qtbot):
    window = plugin_window
    write_plugin(plugin_dir)
    window.reload_plugins()
    window.open_path(workflow, ask=False)
    (plugin_dir / "hotplug.py").write_text(textwrap.dedent('''
        from nodegraph.node import Output, node
        from nodegraph.params import Int
        from nodegraph.types import INT

        def rename(old_version, params):
            params["factor"] = params.pop("value")
            return params

        @node("hotplug.Scale", version=2, name="Scale", category="hotplug", migrate=rename,
              params=[Int("factor", 1)], outputs=[Output("result", INT)])
        def scale(ctx, factor):
            return factor * 10
    '''))
    window.reload_plugins()
    node = window.document.graph.nodes["scale"]
    assert (node.version, node.params) == (2, {"factor": 2})
    assert window.canvas.views["scale"].param_widgets()["factor"].get_value() == 2
    assert window.canvas.views["scale"].problems == []
    assert window.document.dirty and "upgraded" in window.log_view.toPlainText()
    assert shown_text(window, qtbot) == "20"
    window.document.undo_stack.undo()
    assert (node.version, node.params) == (1, {"value": 2})
