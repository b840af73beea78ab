"""Plugin discovery, isolation, conflicts, overrides, reload and node migrations (nodegraph/plugins.py)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nodegraph.errors import WorkflowError
from nodegraph.executor import Executor
from nodegraph.graph import Graph
from nodegraph.plugins import (
    CONFLICT,
    FAILED,
    LOADED,
    load_plugins,
    plugin_folders,
    reload_plugins,
    unload_plugins,
    user_plugin_dir,
)
from nodegraph.registry import Registry
from nodegraph.validation import validate
from nodegraph.workflow import parse_workflow, to_document
from nodes import BUILTIN_MODULES

ROOT = Path(__file__).resolve().parents[2]
_unique = itertools.count()

GOOD = """
from nodegraph.node import Output, node
from nodegraph.params import String
from nodegraph.types import STRING

NAMESPACE = "good"
__version__ = "2.5"

@node("good.Hello", params=[String("name", "world")], outputs=[Output("text", STRING)])
def hello(ctx, name):
    return f"hello {name}"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Built-ins only; no plugin folders from the environment; plugins unloaded (modules purged) afterwards."""
    monkeypatch.delenv("NODEGRAPH_PLUGIN_PATH", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    reg = Registry()
    for module in BUILTIN_MODULES:
        reg.register_module(module)
    yield reg
    unload_plugins(reg)


def by_name(infos, name):
    return next(i for i in infos if i.name == name)


def run_one(registry: Registry, node_type: str, params: dict | None = None, output: str = "text"):
    graph = Graph()
    graph.add_node(registry, node_type, "n", params)
    return Executor(registry).run(graph, ["n"]).outputs["n"][output]


# -- discovery ------------------------------------------------------------------------------------------


def make_distribution(site: Path, dist_name: str, version: str, entry_point: str, modules: dict[str, str]) -> None:
    """A real installed distribution: a module on sys.path plus a .dist-info with entry_points.txt."""
    for rel, text in modules.items():
        write(site / rel, text)
    info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    write(info / "entry_points.txt", f"[nodegraph.nodes]\n{entry_point}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    before = set(sys.modules)
    yield path
    for name in set(sys.modules) - before:  # the entry points' modules came from this temporary folder
        del sys.modules[name]


def test_entry_point_naming_a_module_is_discovered_with_the_distribution_version(registry, site):
    module = f"epmod{next(_unique)}"
    make_distribution(site, "acme-nodes", "1.2.3", f"acme = {module}", {f"{module}/__init__.py": GOOD.replace('"good', '"acme')})
    infos = load_plugins(registry, folders=[])
    info = by_name(infos, "acme")
    assert info.status == LOADED, info.error
    assert info.kind == "entry_point" and info.version == "1.2.3"  # package metadata wins over __version__
    assert "entry point acme" in info.source and "acme-nodes" in info.source
    assert info.node_types == ["acme.Hello"]
    assert registry.get("acme.Hello").source == "plugin:acme"
    assert run_one(registry, "acme.Hello", {"name": "plugins"}) == "hello plugins"


def test_entry_point_naming_a_callable_registers_what_it_returns(registry, site):
    module = f"epcall{next(_unique)}"
    source = """
        from nodegraph.node import Output, node
        from nodegraph.types import INT

        NAMESPACE = "calc"

        def nodes():
            @node("calc.Seven", outputs=[Output("value", INT)])
            def seven(ctx):
                return 7
            return [seven]
    """
    make_distribution(site, "calc-nodes", "0.3", f"calc = {module}:nodes", {f"{module}.py": source})
    info = by_name(load_plugins(registry, folders=[]), "calc")
    assert info.status == LOADED, info.error
    assert run_one(registry, "calc.Seven", output="value") == 7


def test_plugin_path_and_user_folder_are_searched_for_packages_and_single_modules(registry, tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    write(first / "pkgplugin" / "__init__.py", "from .impl import greet\nNAMESPACE = 'pkg'\n")
    write(first / "pkgplugin" / "impl.py", GOOD.replace('"good', '"pkg').replace("def hello", "def greet"))
    write(second / "single.py", GOOD.replace('"good', '"single'))
    write(user_plugin_dir() / "mine.py", GOOD.replace('"good', '"mine'))
    write(first / "notes.txt", "not a plugin")
    write(first / "pkgplugin.egg-info" / "PKG-INFO", "build metadata, not a plugin")
    monkeypatch.setenv("NODEGRAPH_PLUGIN_PATH", os.pathsep.join([str(first), str(second)]))

    assert plugin_folders() == [first, second, user_plugin_dir()]
    infos = load_plugins(registry, entry_points=False)
    assert [(i.name, i.status) for i in infos] == [("pkgplugin", LOADED), ("single", LOADED), ("mine", LOADED)]
    assert by_name(infos, "pkgplugin").source == str(first / "pkgplugin")
    assert by_name(infos, "single").version == "2.5"  # from the module's __version__
    assert run_one(registry, "pkg.Hello") == "hello world"  # the node lives in a submodule (relative import)
    assert run_one(registry, "mine.Hello", {"name": "me"}) == "hello me"



def test_a_folder_plugin_with_the_name_of_an_installed_one_is_a_conflict(registry, site, tmp_path):
    module = f"epmod{next(_unique)}"
    make_distribution(site, "good-nodes", "1.0", f"good = {module}", {f"{module}.py": GOOD})
    write(tmp_path / "p" / "good.py", GOOD.replace('"good', '"other'))
    infos = load_plugins(registry, folders=[tmp_path / "p"])
    installed, folder = (i for i in infos if i.name == "good")
    assert (installed.kind, installed.status) == ("entry_point", LOADED)
    assert (folder.kind, folder.status) == ("folder", CONFLICT)
    assert "a plugin named 'good' was already found: entry point good" in folder.error.message
    assert "other.Hello" not in registry and registry.get("good.Hello").source == "plugin:good"

# -- isolation: every failure kind is reported and nothing else breaks -------------------------------------

BROKEN_PLUGINS = {
    "missing_dependency": (
        "import",
        "import numpy_but_misspelled\n",
        "No module named 'numpy_but_misspelled'",
        1,
    ),
    "syntax_error": ("import", "NAMESPACE = 'syntax_error'\ndef broken(:\n    pass\n", "SyntaxError", 2),
    "raises_while_registering": (
        "register",
        "NAMESPACE = 'raises_while_registering'\n\ndef NODES():\n    raise RuntimeError('no GPU found')\n",
        "failed while registering: RuntimeError: no GPU found",
        4,
    ),
    "bad_type": (
        "definition",
        "from nodegraph.node import Input, node\n\n@node('bad_type.X', inputs=[Input('image', 'IMAGE')])\ndef x(ctx, image):\n    pass\n",
        "input 'image' has type 'IMAGE', expected a SocketType",
        3,
    ),
    "bad_default": (
        "definition",
        "from nodegraph.node import node\nfrom nodegraph.params import Int\n\n"
        "@node('bad_default.X', params=[Int('steps', 500, max=100)])\ndef x(ctx, steps):\n    pass\n",
        "default of parameter 'steps' is invalid",
        4,
    ),
    "duplicate_field": (
        "definition",
        "from nodegraph.node import node\nfrom nodegraph.params import Int\n\n"
        "@node('duplicate_field.X', params=[Int('n'), Int('n')])\ndef x(ctx, n):\n    pass\n",
        "field name 'n' is declared twice",
        4,
    ),
    "duplicate_id": (
        "definition",
        "from nodegraph.node import node\n\n@node('duplicate_id.Same')\ndef a(ctx):\n    pass\n\n\n"
        "@node('duplicate_id.Same')\ndef b(ctx):\n    pass\n",
        "declares node type 'duplicate_id.Same' twice",
        8,  # the second declaration's decorator line
    ),
    "exits": ("import", "import sys\nsys.exit(3)\n", "SystemExit", 2),
}


@pytest.mark.parametrize("name", sorted(BROKEN_PLUGINS))
def test_a_broken_plugin_is_reported_with_its_error_and_place_and_the_others_load(registry, tmp_path, name):
    kind, source, expected_message, line = BROKEN_PLUGINS[name]
    folder = tmp_path / "plugins"
    broken = write(folder / name / "__init__.py", source)
    write(folder / "zz_good.py", GOOD)
    infos = load_plugins(registry, entry_points=False, folders=[folder])

    info = by_name(infos, name)
    assert info.status == FAILED
    assert info.error.kind == kind
    assert expected_message in info.error.message
    assert "\n" not in info.error.message
    assert info.error.where == f"{broken}:{line}"
    assert info.node_types == [] and not any(i.startswith(name + ".") for i in registry.ids())
    assert by_name(infos, "zz_good").status == LOADED
    assert run_one(registry, "good.Hello") == "hello world"


def test_a_plugin_is_registered_all_or_nothing(registry, tmp_path):
    source = GOOD + "\n\n@node('good.Fine')\ndef fine(ctx):\n    pass\n\n\n@node('core.Sneaky')\ndef sneaky(ctx):\n    pass\n"
    plugin = write(tmp_path / "p" / "good.py", source)
    info = load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])[0]
    assert info.status == FAILED and info.error.kind == "namespace"
    assert "'core.Sneaky' is outside the plugin's namespace 'good'" in info.error.message
    line = source.splitlines().index("@node('core.Sneaky')") + 1
    assert info.error.where == f"{plugin}:{line}"
    assert "good.Hello" not in registry and "good.Fine" not in registry and "core.Sneaky" not in registry


def test_a_folder_without_init_is_reported_not_skipped(registry, tmp_path):
    write(tmp_path / "p" / "forgot_init" / "nodes.py", GOOD)
    info = load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])[0]
    assert (info.status, info.error.kind) == (FAILED, "not_a_plugin")
    assert "__init__.py" in info.error.message


# -- conflicts and overrides ------------------------------------------------------------------------------


def test_a_plugin_cannot_take_over_the_builtin_namespace(registry, tmp_path):
    write(tmp_path / "p" / "impostor.py", GOOD.replace('"good', '"core').replace("good.Hello", "core.Show"))
    builtin_show = registry.get("core.Show")
    info = load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])[0]
    assert info.status == CONFLICT
    assert "RegistryConflict" in info.error.message and "'core'" in info.error.message and "builtin" in info.error.message
    assert registry.get("core.Show") is builtin_show


def test_two_plugins_with_one_namespace_conflict_and_the_first_keeps_working(registry, tmp_path):
    write(tmp_path / "p" / "a_first.py", GOOD)
    write(tmp_path / "p" / "b_second.py", GOOD.replace("hello {name}", "HELLO {name}"))
    infos = load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])
    assert [(i.name, i.status) for i in infos] == [("a_first", LOADED), ("b_second", CONFLICT)]
    assert "already used by plugin:a_first" in by_name(infos, "b_second").error.message
    assert by_name(infos, "b_second").error.where == f"{tmp_path / 'p' / 'b_second.py'}:6"  # its NAMESPACE line
    assert run_one(registry, "good.Hello") == "hello world"


def test_a_plugin_cannot_declare_another_plugins_node_without_overrides(registry, tmp_path):
    write(tmp_path / "p" / "a_base.py", GOOD)
    write(tmp_path / "p" / "b_other.py", GOOD.replace('NAMESPACE = "good"', 'NAMESPACE = "other"'))
    infos = load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])
    assert by_name(infos, "b_other").status == FAILED
    assert "'good.Hello' is outside the plugin's namespace 'other'" in by_name(infos, "b_other").error.message
    assert registry.get("good.Hello").source == "plugin:a_base"


OVERRIDE_SHOW = """
from nodegraph.node import Input, Output, node
from nodegraph.types import ANY, STRING

NAMESPACE = "loud"
OVERRIDES = {"core.Show"}

@node("core.Show", version=1, inputs=[Input("value", ANY)], outputs=[Output("text", STRING)], output_node=True)
def show(ctx, value):
    return str(value).upper()
"""


def test_overrides_replaces_a_builtin_on_purpose_and_unloading_restores_it(registry, tmp_path):
    builtin_show = registry.get("core.Show")
    write(tmp_path / "p" / "loud.py", OVERRIDE_SHOW)
    info = load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])[0]
    assert info.status == LOADED, info.error
    assert info.overrides == ["core.Show"] and registry.get("core.Show").source == "plugin:loud"

    graph = Graph()
    graph.add_node(registry, "core.String", "s", {"value": "quiet"})
    graph.add_node(registry, "core.Show", "show")
    graph.connect(registry, "s", "value", "show", "value")
    assert Executor(registry).run(graph).outputs["show"]["text"] == "QUIET"

    assert unload_plugins(registry) == ["core.Show"]
    assert registry.get("core.Show") is builtin_show
    assert Executor(registry).run(graph).outputs["show"]["text"] == "quiet"


def test_overrides_naming_a_node_nobody_provides_is_refused(registry, tmp_path):
    write(tmp_path / "p" / "loud.py", OVERRIDE_SHOW.replace("core.Show", "core.NoSuchNode"))
    info = load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])[0]
    assert info.status == FAILED and "no installed node type has that id" in info.error.message


# -- a workflow using a broken or missing plugin ------------------------------------------------------------


def test_validation_names_the_failed_plugin_and_its_error(registry, tmp_path):
    write(tmp_path / "p" / "imagefx" / "__init__.py", "NAMESPACE = 'fx'\nimport scipy_not_installed\n")
    load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": {"blur": {"type": "fx.Blur", "params": {"radius": 2}}}}
    graph = parse_workflow(doc, registry)
    assert to_document(graph)["nodes"]["blur"]["params"] == {"radius": 2}  # kept untouched

    [problem] = validate(graph, registry)
    assert problem.code == "unknown_node_type" and problem.node == "blur"
    assert "plugin 'imagefx' failed to load" in problem.message
    assert "No module named 'scipy_not_installed'" in problem.message
    with pytest.raises(WorkflowError, match="plugin 'imagefx' failed to load"):
        Executor(registry).run(graph, ["blur"])


def test_validation_of_a_node_a_loaded_plugin_lacks_names_the_plugin_and_its_version(registry, tmp_path):
    write(tmp_path / "p" / "good.py", GOOD)
    load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": {"x": {"type": "good.Goodbye"}}}
    [problem] = validate(parse_workflow(doc, registry), registry)
    assert "plugin 'good' (version 2.5) is loaded but has no node type 'good.Goodbye'" in problem.message


def test_validation_of_a_node_from_an_unknown_plugin_suggests_installing_it(registry):
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": {"x": {"type": "zzz.Thing"}}}
    [problem] = validate(parse_workflow(doc, registry), registry)
    assert "comes from the plugin 'zzz'" in problem.message and "Install that plugin" in problem.message


# -- reload and versioned migrations ------------------------------------------------------------------------

GREET_V1 = """
from nodegraph.node import Output, node
from nodegraph.params import String
from nodegraph.types import STRING

NAMESPACE = "greet"

@node("greet.Greet", version=1, params=[String("name", "world")], outputs=[Output("text", STRING)])
def greet(ctx, name):
    return f"hello {name}"

@node("greet.Bye", params=[String("name", "world")], outputs=[Output("text", STRING)])
def bye(ctx, name):
    return f"bye {name}"
"""

GREET_V2 = """
from nodegraph.node import Output, node
from nodegraph.params import Choice, String
from nodegraph.types import STRING

NAMESPACE = "greet"

def migrate(old_version, params):
    # version 1 called the parameter "name"; version 2 calls it "who" and adds a greeting
    if old_version == 1:
        params = {"who": params.pop("name", "world"), **params}
    return params

@node("greet.Greet", version=2, params=[String("who", "world"), Choice("greeting", choices=("hello", "hi"))],
      outputs=[Output("text", STRING)], migrate=migrate)
def greet(ctx, who, greeting):
    return f"{greeting} {who}"

@node("greet.Wave", outputs=[Output("text", STRING)])
def wave(ctx):
    return "o/"
"""


def test_reload_reports_changes_and_a_version_bump_migrates_an_old_saved_workflow(registry, tmp_path):
    plugin = write(tmp_path / "p" / "greet.py", GREET_V1)
    load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])
    graph = Graph()
    graph.add_node(registry, "greet.Greet", "g", {"name": "Ada"})
    saved = json.loads(json.dumps(to_document(graph)))
    assert saved["nodes"]["g"] == {"type": "greet.Greet", "version": 1, "params": {"name": "Ada"}}

    write(plugin, GREET_V2)
    changes = reload_plugins(registry)
    assert (changes.added, changes.removed, changes.changed) == (["greet.Wave"], ["greet.Bye"], ["greet.Greet"])
    assert registry.get("greet.Greet").version == 2

    upgraded = parse_workflow(saved, registry)
    assert upgraded.nodes["g"].version == 2 and upgraded.nodes["g"].params == {"who": "Ada"}
    assert validate(upgraded, registry) == []
    assert Executor(registry).run(upgraded, ["g"]).outputs["g"]["text"] == "hello Ada"
    assert to_document(upgraded)["nodes"]["g"]["version"] == 2


def test_reload_flags_a_node_whose_code_changed_but_not_an_untouched_one(registry, tmp_path):
    write(tmp_path / "p" / "greet.py", GREET_V1)
    write(tmp_path / "p" / "zz_good.py", GOOD)
    load_plugins(registry, entry_points=False, folders=[tmp_path / "p"])
    assert reload_plugins(registry).changed == []  # nothing edited: nothing to invalidate

    write(tmp_path / "p" / "greet.py", GREET_V1.replace('f"bye {name}"', 'f"goodbye {name}"'))
    changes = reload_plugins(registry)
    assert changes.changed == ["greet.Bye", "greet.Greet"]  # same declarations, new code in their plugin
    assert run_one(registry, "greet.Bye") == "goodbye world"
    assert run_one(registry, "good.Hello") == "hello world"


def test_reload_picks_up_a_fixed_plugin_and_a_new_one(registry, tmp_path):
    folder = tmp_path / "p"
    write(folder / "greet.py", GREET_V1.replace("import Output, node", "import Output, missing_name, node"))
    infos = load_plugins(registry, entry_points=False, folders=[folder])
    assert infos[0].status == FAILED

    write(folder / "greet.py", GREET_V1)
    write(folder / "zz_good" / "__init__.py", GOOD)
    changes = reload_plugins(registry)
    assert [(i.name, i.status) for i in changes.plugins] == [("greet", LOADED), ("zz_good", LOADED)]
    assert changes.added == ["good.Hello", "greet.Bye", "greet.Greet"] and changes.removed == []


# -- the command line ---------------------------------------------------------------------------------------


def test_nodegraph_plugins_lists_source_version_status_nodes_and_errors(tmp_path):
    folder = tmp_path / "plugins"
    write(folder / "hello.py", GOOD)
    broken = write(folder / "broken" / "__init__.py", "NAMESPACE = 'broken'\nraise ValueError('bad config')\n")
    env = {**os.environ, "NODEGRAPH_PLUGIN_PATH": str(folder), "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "nodegraph", "plugins", "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    listed = {p["name"]: p for p in json.loads(run.stdout)}
    assert listed["hello"]["status"] == "loaded" and listed["hello"]["version"] == "2.5"
    assert listed["hello"]["source"] == str(folder / "hello.py") and listed["hello"]["node_types"] == ["good.Hello"]
    assert listed["broken"]["status"] == "failed"
    assert listed["broken"]["error"] == {
        "kind": "import",
        "message": "failed to import: ValueError: bad config",
        "where": f"{broken}:2",
    }

    text = subprocess.run([sys.executable, "-m", "nodegraph", "plugins"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert "hello  2.5  loaded  " + str(folder / "hello.py") in text.stdout
    assert "  nodes: good.Hello" in text.stdout
    assert "  error: failed to import: ValueError: bad config" in text.stdout and f"  at: {broken}:2" in text.stdout
