"""nodegraph: a typed node-graph engine for diffusion workflows.

The engine is pure Python: importing it loads neither torch nor Qt. The public API:

- declaring nodes: :func:`node`, :class:`Input`, :class:`Output`, the parameter kinds in
  :mod:`nodegraph.params`, socket types in :mod:`nodegraph.types`;
- graphs and files: :class:`Graph`, :func:`validate`, :func:`load_workflow`, :func:`save_workflow`;
- running: :class:`Executor`, :class:`CancelToken`, events in :mod:`nodegraph.events`.
"""

from nodegraph.context import CancelToken, NodeContext, RunSettings
from nodegraph.errors import Cancelled, NodeExecutionError, NodeInputError, Problem, WorkflowError
from nodegraph.executor import Executor, RunResult
from nodegraph.graph import Graph, GraphNode, LinkRefused
from nodegraph.installed import default_registry
from nodegraph.node import Input, NodeDef, Output, node
from nodegraph.registry import Registry
from nodegraph.validation import validate
from nodegraph.version import __version__
from nodegraph.workflow import load_workflow, parse_workflow, save_workflow, to_document

__all__ = [
    "CancelToken",
    "Cancelled",
    "Executor",
    "Graph",
    "GraphNode",
    "Input",
    "LinkRefused",
    "NodeContext",
    "NodeDef",
    "NodeExecutionError",
    "NodeInputError",
    "Output",
    "Problem",
    "Registry",
    "RunResult",
    "RunSettings",
    "WorkflowError",
    "__version__",
    "default_registry",
    "load_workflow",
    "node",
    "parse_workflow",
    "save_workflow",
    "to_document",
    "validate",
]
