"""ComfyUI's wire shapes: websocket messages, queue entries, history entries, validation errors.

The engine's events become ComfyUI's messages (``status``, ``execution_start``, ``execution_cached``,
``executing``, ``progress``, ``executed``, ``execution_error``, ``execution_interrupted``,
``execution_success``), in ComfyUI's order: a job's ``executed`` messages, ``execution_success`` and the
closing ``executing`` with ``node: null`` are sent once its outputs are saved, so a client that then asks
``/history`` finds them. Previews go out as ComfyUI's binary frames (4 bytes event type 1, 4 bytes image
type 1 = JPEG or 2 = PNG, then the image).
"""

from __future__ import annotations

import struct
import time
from typing import Any

from nodegraph.errors import Problem
from nodegraph.server.hub import Message
from nodegraph.server.store import SUCCESS, Job

PREVIEW_IMAGE = 1
IMAGE_TYPES = {"jpeg": 1, "png": 2}


def status_message(queue_remaining: int, sid: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return {"type": "status", "data": data}


def preview_frame(kind: str, data: bytes) -> bytes:
    return struct.pack(">II", PREVIEW_IMAGE, IMAGE_TYPES.get(kind, 1)) + data


def _ms() -> int:
    return int(time.time() * 1000)


class Translator:
    """Native events -> ComfyUI messages, for one websocket client. Keeps what each job has executed."""

    def __init__(self, previews: bool) -> None:
        self.previews = previews
        self._executed: dict[str, list[str]] = {}
        self._current: dict[str, tuple[str, str]] = {}

    def translate(self, message: Message) -> list[dict[str, Any] | bytes]:
        data = message.data
        event = data.get("event")
        job = message.job_id or ""
        if event == "queue":
            return [status_message(int(data.get("queue_remaining", 0)))]
        if event == "job_started":
            self._executed[job] = []
            return [{"type": "execution_start", "data": {"prompt_id": job, "timestamp": _ms()}}]
        if event == "node_cached":
            return [{"type": "execution_cached", "data": {"nodes": [data["node"]], "prompt_id": job, "timestamp": _ms()}}]
        if event == "node_started":
            self._current[job] = (data["node"], data.get("type", ""))
            return [{"type": "executing", "data": {"node": data["node"], "display_node": data["node"], "prompt_id": job}}]
        if event == "node_finished":
            self._executed.setdefault(job, []).append(data["node"])
            return []
        if event == "node_progress":
            out: list[dict[str, Any] | bytes] = [{"type": "progress", "data": {
                "value": data.get("step", 0), "max": data.get("total", 0), "prompt_id": job, "node": data.get("node")}}]
            if self.previews and message.preview is not None:
                out.append(preview_frame(*message.preview))
            return out
        if event == "node_failed":
            return [self._error(job, data.get("node"), data.get("type", ""), data.get("message", ""),
                                data.get("error_type", "Exception"), data.get("inputs") or {})]
        if event == "run_cancelled":
            node, node_type = self._current.get(job, (data.get("node"), ""))
            return [{"type": "execution_interrupted", "data": {"prompt_id": job, "node_id": node, "node_type": node_type,
                                                               "executed": self._executed.get(job, [])}}]
        if event == "job_finished":
            return self._finished(job, data)
        return []

    def _finished(self, job: str, data: dict[str, Any]) -> list[dict[str, Any] | bytes]:
        out: list[dict[str, Any] | bytes] = []
        status = data.get("status")
        started = job in self._executed
        if status == SUCCESS:
            for node, output in node_outputs(data.get("outputs", []), data.get("values", {})).items():
                out.append({"type": "executed", "data": {"node": node, "display_node": node, "output": output, "prompt_id": job}})
            out.append({"type": "execution_success", "data": {"prompt_id": job, "timestamp": _ms()}})
        elif status == "failed" and data.get("error") and not data["error"].get("node"):
            error = data["error"]
            out.append(self._error(job, None, "", error.get("message", ""), error.get("error_type", "Exception"), {}))
        if started or status == SUCCESS:
            out.append({"type": "executing", "data": {"node": None, "display_node": None, "prompt_id": job}})
        self._executed.pop(job, None)
        self._current.pop(job, None)
        return out

    def _error(self, job: str, node: Any, node_type: str, message: str, error_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "execution_error", "data": {
            "prompt_id": job, "node_id": node, "node_type": node_type, "executed": self._executed.get(job, []),
            "exception_message": message, "exception_type": error_type, "traceback": [],
            "current_inputs": inputs, "current_outputs": {}, "timestamp": _ms()}}


def node_outputs(files: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ComfyUI's per-node ``output``: ``{"images": [{filename, subfolder, type}]}``; text values as ``text``."""
    result: dict[str, dict[str, Any]] = {}
    for item in files:
        entry = {"filename": item["filename"], "subfolder": item["subfolder"], "type": item["type"]}
        result.setdefault(item.get("node") or "", {}).setdefault("images", []).append(entry)
    for node, outputs in (values or {}).items():
        texts = [str(v) for v in outputs.values() if isinstance(v, str)]
        if texts:
            result.setdefault(node, {})["text"] = texts
    return result


def queue_entry(job: Job, prompt: dict[str, Any], outputs: list[str]) -> list[Any]:
    """``[number, prompt_id, prompt, extra_data, outputs_to_execute]``, as ComfyUI lists its queue."""
    extra = dict(job.request.get("extra_data") or {})
    if job.request.get("client_id"):
        extra.setdefault("client_id", job.request["client_id"])
    return [job.number, job.id, prompt, extra, outputs]


def history_entry(job: Job, prompt: dict[str, Any], outputs: list[str], finish_event: dict[str, Any] | None) -> dict[str, Any]:
    messages: list[list[Any]] = []
    if job.started:
        messages.append(["execution_start", {"prompt_id": job.id, "timestamp": int(job.started * 1000)}])
    cached = (finish_event or {}).get("cached") or []
    if cached:
        messages.append(["execution_cached", {"nodes": cached, "prompt_id": job.id, "timestamp": int((job.started or 0) * 1000)}])
    end = int((job.finished or time.time()) * 1000)
    if job.status == SUCCESS:
        messages.append(["execution_success", {"prompt_id": job.id, "timestamp": end}])
    elif job.status == "cancelled":
        messages.append(["execution_interrupted", {"prompt_id": job.id, "node_id": None, "node_type": None,
                                                   "executed": (finish_event or {}).get("executed", []), "timestamp": end}])
    elif job.error:
        messages.append(["execution_error", {"prompt_id": job.id, "node_id": job.error.get("node"),
                                             "node_type": job.error.get("type"), "exception_message": job.error.get("message", ""),
                                             "exception_type": job.error.get("error_type", "Exception"), "traceback": [],
                                             "executed": [], "timestamp": end}])
    node_outs = node_outputs(job.outputs, job.values)
    return {
        "prompt": queue_entry(job, prompt, outputs),
        "outputs": node_outs,
        "status": {"status_str": "success" if job.status == SUCCESS else "error", "completed": job.status == SUCCESS,
                   "messages": messages},
        "meta": {node: {"node_id": node, "display_node": node, "parent_node": None, "real_node_id": node} for node in node_outs},
    }


def validation_error(problems: list[Problem], kind: str, class_types: dict[str, str]) -> dict[str, Any]:
    """ComfyUI's 400 body for a prompt that fails validation, with our structured problems kept as well."""
    node_errors: dict[str, Any] = {}
    general: list[str] = []
    for problem in problems:
        detail = f"{problem.field}: expected {problem.expected}, found {problem.found}" if problem.field else (
            f"expected {problem.expected}, found {problem.found}" if problem.expected or problem.found else "")
        if not problem.node:
            general.append(str(problem))
            continue
        entry = node_errors.setdefault(problem.node, {"errors": [], "dependent_outputs": [],
                                                      "class_type": class_types.get(problem.node, "")})
        entry["errors"].append({"type": problem.code, "message": problem.message, "details": detail,
                                "extra_info": {"input_name": problem.field}})
    if kind == "prompt_no_outputs":
        error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "; ".join(general), "extra_info": {}}
    elif node_errors:
        error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                 "details": "; ".join(general), "extra_info": {}}
    else:
        error = {"type": "invalid_prompt", "message": "; ".join(general) or "invalid prompt", "details": "", "extra_info": {}}
    return {"error": error, "node_errors": node_errors, "problems": [p.to_json() for p in problems]}
