"""The executor: runs what the requested outputs need, in topological order, from cache where it can.

Each node's cache key is a Merkle hash of its type, version, parameters, the fingerprints of the external
inputs it reads (model files, images) and the keys of its upstream nodes, so keys cost one pass over the
graph and a change invalidates exactly the changed node and what lies downstream of it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodegraph.cache import CacheEntry, OutputCache, estimate_nbytes
from nodegraph.context import CancelToken, NodeContext, RunSettings
from nodegraph.errors import Cancelled, NodeExecutionError, NodeInputError, Problem, WorkflowError
from nodegraph.events import (
    CacheEvicted,
    Event,
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
)
from nodegraph.graph import Graph, GraphNode, input_socket, topological_order
from nodegraph.model_folders import ModelFolders, fingerprint_path
from nodegraph.modes import never_runs, resolve_modes
from nodegraph.node import NodeDef
from nodegraph.output_checks import check_outputs
from nodegraph.params import ImageFile, ModelFile, ParamError
from nodegraph.paths import resolve_read
from nodegraph.registry import Registry
from nodegraph.runtime import Runtime
from nodegraph.types import FLOAT, SocketType
from nodegraph.validation import validate

EventSink = Callable[[Event], None]


@dataclass
class RunResult:
    """What a run produced: the outputs of its target nodes, and what ran or came from the cache."""

    outputs: dict[str, dict[str, Any]]
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)  # needed nodes that did not run (muted, bypassed): why


def needed_nodes(graph: Graph, targets: Iterable[str]) -> set[str]:
    """The targets and everything upstream of them."""
    needed: set[str] = set()
    stack = [t for t in targets if t in graph.nodes]
    while stack:
        current = stack.pop()
        if current in needed:
            continue
        needed.add(current)
        stack.extend(src for src in graph.sources(current) if src in graph.nodes)
    return needed


def default_targets(graph: Graph, registry: Registry) -> list[str]:
    """Output nodes (save, preview, show); if the graph has none, the nodes nothing reads (notes excepted)."""
    outputs = [n.id for n in graph.nodes.values() if (d := registry.get(n.type)) is not None and d.output_node]
    if outputs:
        return outputs
    read = {link.source for link in graph.links()}
    return [n for n in graph.nodes if n not in read and not never_runs(registry.get(graph.nodes[n].type))]


def summarize(value: Any) -> str:
    """A one-line description of a value, for failure reports (never raises: the value may be hostile)."""
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        device = getattr(value, "device", "")
        return f"{type(value).__name__}{list(shape)} {value.dtype} {device}".strip()
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"int of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > 80:
        return repr(value[:77]) + f"... ({len(value)} characters)"
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__, or a number too long to print
        return f"{type(value).__name__} (not printable: {type(exc).__name__})"
    return text if len(text) <= 80 else text[:77] + "..."


def failure_message(exc: BaseException) -> str:
    """What a node's exception says to the user: its own words for an explained error, else type and text."""
    if isinstance(exc, NodeInputError):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"the node called sys.exit({exc.code!r}); a node may not end the program"
    try:
        text = str(exc)
    except Exception:
        text = "(its message cannot be printed)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Executor:
    """Runs graphs against one registry, keeping an output cache between runs."""

    def __init__(
        self,
        registry: Registry,
        cache: OutputCache | None = None,
        runtime: Runtime | None = None,
        folders: ModelFolders | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache if cache is not None else OutputCache()
        self.runtime = runtime if runtime is not None else Runtime()
        self.folders = folders if folders is not None else ModelFolders.from_environment()

    def run(
        self,
        graph: Graph,
        targets: Iterable[str] | None = None,
        *,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        settings: RunSettings | None = None,
    ) -> RunResult:
        """Run ``targets`` (default: the output nodes) and what they need.

        Raises :class:`WorkflowError` if the needed part of the graph is invalid, :class:`NodeExecutionError`
        if a node fails, :class:`Cancelled` if ``cancel`` is set.
        """
        emit = on_event or (lambda event: None)
        token = cancel or CancelToken()
        settings = settings or RunSettings()
        if settings.workflow is None:
            from nodegraph.workflow import to_document

            settings.workflow = to_document(graph)
        target_list = list(targets) if targets is not None else default_targets(graph, self.registry)
        written = graph
        missing = [t for t in target_list if t not in graph.nodes]
        if missing:
            raise WorkflowError([Problem("unknown_target", "no such node to run", t, expected="a node id in the workflow", found=repr(t)) for t in missing])
        # muted, bypassed and rerouting nodes leave the graph; their readers read what they pass on
        resolution = resolve_modes(graph, self.registry)
        skipped = {n: resolution.skipped[n] for n in needed_nodes(graph, target_list) if n in resolution.skipped}
        graph = resolution.graph
        target_list = [t for t in target_list if t in graph.nodes]
        needed = needed_nodes(graph, target_list)
        problems = [p for p in validate(written, self.registry) if p.node in needed or p.code == "cycle"]
        if not problems:  # files named by the workflow: missing or refused before anything loads
            from nodegraph.file_checks import input_problems

            problems = input_problems(graph, self.registry, settings.path_policy(self.folders), self.folders, needed)
        if problems:
            raise WorkflowError(problems)
        order, _ = topological_order(graph, needed)
        started = time.perf_counter()

        keys: dict[str, str] = {}
        for node_id in order:
            node = graph.nodes[node_id]
            try:
                keys[node_id] = self._key(node, self.registry.get(node.type), keys, settings)  # type: ignore[arg-type]
            except (Exception, SystemExit) as exc:  # a missing file, or a plugin's fingerprint hook failing
                message = str(exc) if isinstance(exc, (OSError, ValueError)) else failure_message(exc)
                emit(RunStarted((node_id,), tuple(target_list)))
                emit(NodeFailed(node_id, node.type, message, type(exc).__name__))
                emit(RunFailed(node_id, time.perf_counter() - started))
                raise NodeExecutionError(node_id, node.type, message) from exc

        # Pull from the targets: a node whose result is cached cuts off everything above it.
        values: dict[str, dict[str, Any]] = {}
        to_run: set[str] = set()
        stack = list(target_list)
        while stack:
            node_id = stack.pop()
            if node_id in values or node_id in to_run:
                continue
            entry = self.cache.get(keys[node_id])
            if entry is not None:
                values[node_id] = entry.outputs  # held here, so a later eviction cannot lose it
            else:
                to_run.add(node_id)
                stack.extend(src for src, _ in graph.nodes[node_id].inputs.values())
        readers_left = dict.fromkeys(order, 0)
        for node_id in to_run:
            for src, _ in graph.nodes[node_id].inputs.values():
                readers_left[src] += 1
        target_set = set(target_list)

        result = RunResult(outputs={}, skipped=skipped)
        emit(RunStarted(tuple(order), tuple(target_list)))
        current = ""
        try:
            # Nodes not run are reported as cached: their result is up to date, whether it was read from the
            # cache or made unnecessary by a cached node downstream.
            for node_id in order:
                current = node_id
                token.check()
                node = graph.nodes[node_id]
                if node_id not in to_run:
                    result.cached.append(node_id)
                    emit(NodeCached(node_id, node.type))
                    continue
                values[node_id] = self._run_node(node, keys[node_id], values, result, emit, token, settings)
                for src, _ in node.inputs.values():
                    readers_left[src] -= 1
                    if readers_left[src] == 0 and src not in target_set:
                        del values[src]  # the cache keeps its own reference if it kept the entry
            result.outputs = {t: values[t] for t in target_list}
        except Cancelled:
            emit(RunCancelled(current, time.perf_counter() - started))
            raise
        except NodeExecutionError:
            emit(RunFailed(current, time.perf_counter() - started))
            raise
        result.seconds = time.perf_counter() - started
        emit(RunFinished(result.seconds, len(result.executed), len(result.cached)))
        return result

    def _run_node(
        self,
        node: GraphNode,
        key: str,
        values: dict[str, dict[str, Any]],
        result: RunResult,
        emit: EventSink,
        token: CancelToken,
        settings: RunSettings,
    ) -> dict[str, Any]:
        definition = self.registry.get(node.type)
        assert definition is not None  # validated before the run
        params = _params_of(node, definition)
        ctx = NodeContext(node.id, node.type, emit, token, settings, self.runtime, self.folders, params)
        kwargs: dict[str, Any] = dict(params)
        for spec in definition.inputs:
            kwargs[spec.name] = None
        emit(NodeStarted(node.id, node.type))
        begin = time.perf_counter()
        try:
            for name, (src, out) in node.inputs.items():
                kwargs[name] = _promote(values[src][out], input_socket(definition, name), name)
            for name in node.inputs:
                param = definition.param(name)
                if param is not None:
                    try:
                        kwargs[name] = param.check(kwargs[name])
                    except ParamError as exc:
                        raise NodeInputError(f"the value linked into {name!r} is invalid: {exc}", name) from None
            ctx.params = {k: kwargs[k] for k in params}
            outputs = definition.normalise_result(definition.fn(ctx, **kwargs))
            check_outputs(definition, outputs, settings.allow_nonfinite)
        except Cancelled:
            raise
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the run silently
            message = failure_message(exc)
            inputs = {name: summarize(kwargs.get(name)) for name in node.inputs if name in kwargs}
            emit(NodeFailed(node.id, node.type, message, type(exc).__name__, inputs))
            raise NodeExecutionError(node.id, node.type, message) from exc
        seconds = time.perf_counter() - begin
        result.executed.append(node.id)
        result.timings[node.id] = seconds
        emit(NodeFinished(node.id, node.type, seconds))
        for victim in self.cache.put(key, CacheEntry(node.id, node.type, outputs, estimate_nbytes(outputs))):
            reason = "larger than the cache" if victim.outputs is outputs else "least recently used"
            emit(CacheEvicted(victim.node, victim.type, victim.nbytes, reason))
        return outputs

    def _key(self, node: GraphNode, definition: NodeDef, keys: dict[str, str], settings: RunSettings) -> str:
        params = _params_of(node, definition)
        fingerprints: dict[str, Any] = {}
        for param in definition.params:
            if param.name in node.inputs:
                continue
            value = params[param.name]
            try:
                if isinstance(param, ModelFile) and value:
                    fingerprints[param.name] = fingerprint_path(self.folders.resolve(param.folder, value))
                elif isinstance(param, ImageFile) and value:
                    fingerprints[param.name] = _file_digest(resolve_read(settings.path_policy(self.folders), value,
                                                                         param.name, "image file"))
            except (OSError, ValueError) as exc:
                raise NodeInputError(f"parameter {param.name!r}: {exc}", param.name) from exc
        if definition.fingerprint is not None:
            ctx = NodeContext(node.id, node.type, lambda event: None, CancelToken(), settings, self.runtime, self.folders, params)
            fingerprints["*"] = definition.fingerprint(params, ctx)
        upstream = sorted((name, keys[src], out) for name, (src, out) in node.inputs.items())
        own = {k: v for k, v in params.items() if k not in node.inputs}
        blob = json.dumps(
            [node.type, node.version, own, fingerprints, upstream], sort_keys=True, default=repr, separators=(",", ":")
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _params_of(node: GraphNode, definition: NodeDef) -> dict[str, Any]:
    """The node's parameters with defaults for those the file leaves out."""
    return {p.name: node.params.get(p.name, p.default) for p in definition.params}


def _promote(value: Any, target: SocketType | None, name: str = "") -> Any:
    # INT -> FLOAT is the one conversion the type rule allows; make it real where the value crosses.
    if target is not None and target.members == FLOAT.members and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise NodeInputError(f"the whole number linked into {name!r} is too large for a real number "
                                 f"({summarize(value)})", name) from None
    return value


def _file_digest(path: Path | str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path!r} does not exist") from None
    return digest.hexdigest()
