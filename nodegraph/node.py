"""The node definition API: one declaration per node type drives the editor, validation and execution.

A node type is a plain function decorated with :func:`node`::

    @node(
        "core.MathOp", version=1, name="Math", category="primitives/math",
        description="Applies an arithmetic operation to two numbers.",
        inputs=[Input("a", FLOAT), Input("b", FLOAT)],
        params=[Choice("op", choices=("add", "subtract", "multiply", "divide"))],
        outputs=[Output("result", FLOAT)],
    )
    def math_op(ctx: NodeContext, a: float, b: float, op: str) -> float:
        ...

The function receives the :class:`NodeContext` and then every input and parameter by name, and returns
its outputs: a dict by output name, a tuple in declaration order, or the bare value for a single output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nodegraph.params import Param
from nodegraph.types import SocketType

if TYPE_CHECKING:
    from nodegraph.context import NodeContext

NODE_ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NodeDefinitionError(ValueError):
    """A node declaration is malformed (bad id, duplicate field names, bad default, ...)."""


@dataclass(frozen=True)
class Input:
    """A typed input socket. Optional inputs are passed as ``None`` when unconnected."""

    name: str
    type: SocketType
    optional: bool = False
    help: str = ""
    label: str = ""

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.name,
            "optional": self.optional,
            "label": self.label or self.name.replace("_", " "),
            "help": self.help,
        }


@dataclass(frozen=True)
class Output:
    """A named, typed output socket."""

    name: str
    type: SocketType
    help: str = ""
    label: str = ""

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.name,
            "label": self.label or self.name.replace("_", " "),
            "help": self.help,
        }


@dataclass(frozen=True)
class Issue:
    """A parameter combination a node's declared ``check`` refuses (see :func:`node`)."""

    field: str
    message: str
    expected: str = ""
    found: str = ""


Migration = Callable[[int, dict[str, Any]], dict[str, Any]]
Fingerprint = Callable[[dict[str, Any], "NodeContext"], Any]
ParamCheck = Callable[[dict[str, Any]], Iterable[Issue]]
WorkEstimate = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class NodeDef:
    """Everything known about a node type. Built by :func:`node`; read by every other part."""

    id: str
    version: int
    name: str
    category: str
    description: str
    inputs: tuple[Input, ...]
    params: tuple[Param, ...]
    outputs: tuple[Output, ...]
    fn: Callable[..., Any]
    output_node: bool = False
    migrate: Migration | None = None
    fingerprint: Fingerprint | None = None
    check: ParamCheck | None = None
    work: WorkEstimate | None = None
    source: str = "builtin"
    field_index: dict[str, Input | Param] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_definition(self)
        index: dict[str, Input | Param] = {i.name: i for i in self.inputs}
        index.update({p.name: p for p in self.params})
        object.__setattr__(self, "field_index", index)

    @property
    def namespace(self) -> str:
        return self.id.rsplit(".", 1)[0]

    def param(self, name: str) -> Param | None:
        found = self.field_index.get(name)
        return found if isinstance(found, Param) else None

    def input(self, name: str) -> Input | None:
        found = self.field_index.get(name)
        return found if isinstance(found, Input) else None

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)

    def default_params(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def schema(self) -> dict[str, Any]:
        """The JSON description printed by ``nodegraph nodes --json`` and read by the editor."""
        return {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "output_node": self.output_node,
            "source": self.source,
            "inputs": [i.schema() for i in self.inputs],
            "params": [p.schema() for p in self.params],
            "outputs": [o.schema() for o in self.outputs],
        }

    def normalise_result(self, result: Any) -> dict[str, Any]:
        """Turn what the node function returned into ``{output name: value}``."""
        names = [o.name for o in self.outputs]
        if isinstance(result, Mapping):
            missing = [n for n in names if n not in result]
            if missing:
                raise TypeError(f"node {self.id} returned no value for output(s) {', '.join(missing)}")
            return {n: result[n] for n in names}
        if len(names) == 1:
            return {names[0]: result}
        if isinstance(result, tuple) and len(result) == len(names):
            return dict(zip(names, result))
        if not names and result is None:
            return {}
        raise TypeError(f"node {self.id} must return {len(names)} outputs ({', '.join(names)}), got {result!r:.80}")


def node(
    id: str,
    *,
    version: int = 1,
    name: str = "",
    category: str = "misc",
    description: str = "",
    inputs: Sequence[Input] = (),
    params: Sequence[Param] = (),
    outputs: Sequence[Output] = (),
    output_node: bool = False,
    migrate: Migration | None = None,
    fingerprint: Fingerprint | None = None,
    check: ParamCheck | None = None,
    work: WorkEstimate | None = None,
) -> Callable[[Callable[..., Any]], NodeDef]:
    """Declare a node type from a function. See the module docstring for the calling convention.

    ``output_node`` marks nodes whose results are what a run is for (save, preview, show); a run with no
    explicit targets evaluates them and everything they need. ``migrate(old_version, params)`` upgrades
    parameters saved by an older version. ``fingerprint(params, ctx)`` returns something hashable that
    changes when an external input the node reads changes (a file's content, say).

    ``check(params)`` finds parameter combinations that cannot work before anything runs (steps the scheduler
    cannot do, a size the VAE cannot encode): it reads only the node's own parameters (those not driven by a
    link are in ``params``) and yields :class:`Issue` s. It must be cheap and must not import torch:
    ``nodegraph validate``, ``nodegraph run`` and the editor's marks call it. ``work(params)`` estimates
    the node's work in sampler steps, for the overall progress bar (nodes with model files are weighed by
    their bytes without it).
    """

    def wrap(fn: Callable[..., Any]) -> NodeDef:
        return NodeDef(
            id=id,
            version=version,
            name=name or id.rsplit(".", 1)[-1],
            category=category,
            description=description or (fn.__doc__ or "").strip(),
            inputs=tuple(inputs),
            params=tuple(params),
            outputs=tuple(outputs),
            fn=fn,
            output_node=output_node,
            migrate=migrate,
            fingerprint=fingerprint,
            check=check,
            work=work,
        )

    return wrap


def _check_definition(d: NodeDef) -> None:
    def fail(message: str) -> None:
        raise NodeDefinitionError(f"node type {d.id!r}: {message}")

    if not isinstance(d.id, str) or not NODE_ID_PATTERN.match(d.id):
        fail("id must be namespaced like 'myplugin.MyNode' (letters, digits, underscores)")
    if not isinstance(d.version, int) or isinstance(d.version, bool) or d.version < 1:
        fail(f"version must be an integer >= 1, found {d.version!r}")
    if not callable(d.fn):
        fail("the node function is not callable")
    seen: set[str] = set()
    for item in (*d.inputs, *d.params):
        if not isinstance(item, (Input, Param)):
            fail(f"{item!r} is not an Input or a Param")
        if not NAME_PATTERN.match(item.name):
            fail(f"field name {item.name!r} is not a valid identifier")
        if item.name in seen:
            fail(f"field name {item.name!r} is declared twice")
        seen.add(item.name)
        if isinstance(item, Input) and not isinstance(item.type, SocketType):
            fail(f"input {item.name!r} has type {item.type!r}, expected a SocketType")
    for p in d.params:
        try:
            p.check(p.default)
        except ValueError as exc:
            fail(f"default of parameter {p.name!r} is invalid: {exc}")
    out_names: set[str] = set()
    for o in d.outputs:
        if not isinstance(o, Output) or not isinstance(o.type, SocketType):
            fail(f"output {o!r} must be an Output with a SocketType")
        if not NAME_PATTERN.match(o.name) or o.name in out_names:
            fail(f"output name {o.name!r} is invalid or declared twice")
        out_names.add(o.name)
