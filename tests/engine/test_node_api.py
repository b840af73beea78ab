"""Node declarations: malformed ones are refused at declaration time; results are normalised."""

from __future__ import annotations

import json

import pytest

from nodegraph.node import Input, NodeDefinitionError, Output, node
from nodegraph.params import Int
from nodegraph.registry import Registry, RegistryConflict
from nodegraph.types import INT


def _declare(**kwargs):
    kwargs.setdefault("outputs", [Output("x", INT)])
    node_id = kwargs.pop("id", "test.Thing")
    return node(node_id, **kwargs)(lambda ctx, **kw: 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "NoNamespace"}, "namespaced"),
        ({"version": 0}, "version"),
        ({"params": [Int("a"), Int("a")]}, "declared twice"),
        ({"inputs": [Input("a", INT)], "params": [Int("a")]}, "declared twice"),
        ({"params": [Int("steps", 0, min=1)]}, "default of parameter 'steps'"),
        ({"inputs": [Input("a", "INT")]}, "SocketType"),
        ({"outputs": [Output("x", INT), Output("x", INT)]}, "declared twice"),
        ({"params": [Int("bad name")]}, "not a valid identifier"),
    ],
)
def test_malformed_declarations_are_refused(kwargs, message):
    with pytest.raises(NodeDefinitionError, match=message):
        _declare(**kwargs)


def test_results_are_normalised_from_dict_tuple_or_bare_value():
    two = node("test.Two", outputs=[Output("a", INT), Output("b", INT)])(lambda ctx: (1, 2))
    assert two.normalise_result((1, 2)) == {"a": 1, "b": 2}
    assert two.normalise_result({"b": 2, "a": 1}) == {"a": 1, "b": 2}
    with pytest.raises(TypeError, match="no value for output"):
        two.normalise_result({"a": 1})
    with pytest.raises(TypeError, match="must return 2 outputs"):
        two.normalise_result(5)
    one = _declare()
    assert one.normalise_result((1, 2)) == {"x": (1, 2)}


def test_schema_is_json_and_complete():
    definition = _declare(params=[Int("n", 3, min=0, help="count")], inputs=[Input("a", INT, optional=True)])
    schema = json.loads(json.dumps(definition.schema()))
    assert schema["id"] == "test.Thing" and schema["version"] == 1
    assert schema["params"][0]["help"] == "count"
    assert schema["inputs"][0]["optional"] is True
    assert schema["outputs"] == [{"name": "x", "type": "INT", "label": "x", "help": ""}]


def test_registry_refuses_silent_replacement_but_allows_explicit_override():
    registry = Registry()
    registry.register(_declare(), source="builtin")
    with pytest.raises(RegistryConflict, match="conflicts with the one from builtin"):
        registry.register(_declare(), source="plugin-x")
    replacement = _declare()
    registry.register(replacement, source="plugin-x", override=True)
    assert registry.get("test.Thing") is replacement


def test_builtin_registry_lists_primitives_without_importing_torch():
    import subprocess
    import sys

    code = "import sys; from nodegraph.installed import default_registry; r = default_registry(); " \
           "print(len(r), 'torch' in sys.modules, 'PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) >= 10 and out[1:] == ["False", "False"]


def test_a_registry_built_from_another_registrys_types_keeps_each_types_source():
    from nodegraph.registry import registry_from

    @node("acme.Thing", name="Thing", outputs=[Output("value", INT)])
    def thing(ctx):
        return 1

    plugins = Registry()
    plugins.register(thing, source="plugin:acme")
    copied = registry_from(plugins)
    assert copied.get("acme.Thing").source == "plugin:acme"
    assert plugins.get("acme.Thing").source == "plugin:acme"  # the shared definition was not relabelled
