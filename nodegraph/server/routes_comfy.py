"""ComfyUI's HTTP API, so the client libraries and tools written for ComfyUI work against this server.

``POST /prompt`` takes the API format (``{"prompt": {...}, "client_id": ...}``); ``/queue``, ``/interrupt``,
``/history``, ``/view``, ``/upload/image``, ``/object_info`` and ``/system_stats`` answer as ComfyUI does.
ComfyUI also serves each route under ``/api``; so does this router when mounted twice.
"""

from __future__ import annotations

import mimetypes
import os
import platform
import sys
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from nodegraph.server import comfy_bridge
from nodegraph.server.comfy_nodes import object_info
from nodegraph.server.comfy_shapes import history_entry, queue_entry, validation_error
from nodegraph.server.confine import inside
from nodegraph.server.errors import error_response, read_json
from nodegraph.server.service import QueueFull, Service
from nodegraph.server.store import FINISHED, PENDING, RUNNING, Job
from nodegraph.server.submit import SubmissionError
from nodegraph.server.uploads import UploadError, store_upload
from nodegraph.workflow import parse_workflow


def make_router(service: Service, *, in_schema: bool = True) -> APIRouter:
    router = APIRouter(tags=["ComfyUI-compatible"], include_in_schema=in_schema)

    def prompt_of(job: Job) -> dict[str, Any]:
        prompt = job.request.get("prompt")
        if isinstance(prompt, dict):
            return prompt
        try:
            return comfy_bridge.export_api_prompt(parse_workflow(job.workflow, service.registry), service.registry)
        except Exception:
            return {}

    def outputs_to_execute(job: Job) -> list[str]:
        targets = job.request.get("targets")
        if targets:
            return list(targets)
        nodes = job.workflow.get("nodes", {})
        return [n for n, e in nodes.items() if (d := service.registry.get(e.get("type", ""))) is not None and d.output_node]

    @router.post("/prompt", summary="Queue an API-format prompt (ComfyUI)")
    async def post_prompt(request: Request) -> Any:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), dict):
            return JSONResponse({"error": {"type": "invalid_prompt", "message": "no prompt provided", "details": "send "
                                           "{\"prompt\": {node id: {class_type, inputs}}}", "extra_info": {}}, "node_errors": {}},
                                status_code=400)
        prompt = body["prompt"]
        try:
            submission = service.prepare(prompt, comfy=True)
        except SubmissionError as exc:
            classes = {str(k): v.get("class_type", "") for k, v in prompt.items() if isinstance(v, dict)}
            return JSONResponse(validation_error(exc.problems, exc.kind, classes), status_code=400)
        wanted_id = body.get("prompt_id")
        if wanted_id is not None and (not isinstance(wanted_id, str) or not wanted_id or service.store.get(wanted_id)):
            return JSONResponse({"error": {"type": "invalid_prompt", "message": "prompt_id must be a new, non-empty string",
                                           "details": "", "extra_info": {}}, "node_errors": {}}, status_code=400)
        extra = body.get("extra_data") if isinstance(body.get("extra_data"), dict) else {}
        client_id = body.get("client_id") or extra.get("client_id")
        try:
            job = service.submit(submission, client_id=client_id if isinstance(client_id, str) else None,
                                 front=bool(body.get("front")), extra={"prompt": prompt, "extra_data": _plain(extra)},
                                 job_id=wanted_id)
        except QueueFull as exc:
            return error_response(429, "queue_full", str(exc), headers={"Retry-After": "10"})
        return {"prompt_id": job.id, "number": job.number, "node_errors": {}}

    @router.get("/prompt", summary="Queue length (ComfyUI)")
    def get_prompt() -> Any:
        return {"exec_info": {"queue_remaining": service.queue_remaining()}}

    @router.get("/queue", summary="Running and pending prompts (ComfyUI)")
    def get_queue() -> Any:
        jobs = service.store.queue()
        return {
            "queue_running": [queue_entry(j, prompt_of(j), outputs_to_execute(j)) for j in jobs if j.status == RUNNING],
            "queue_pending": [queue_entry(j, prompt_of(j), outputs_to_execute(j)) for j in jobs if j.status == PENDING],
        }

    @router.post("/queue", summary="Clear the queue or delete pending prompts (ComfyUI)")
    async def post_queue(request: Request) -> Any:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if isinstance(body, dict) and body.get("clear"):
            service.clear_pending()
        if isinstance(body, dict) and isinstance(body.get("delete"), list):
            for job_id in body["delete"]:
                job = service.store.get(str(job_id))
                if job is not None and job.status == PENDING:
                    service.cancel(job.id)
        return JSONResponse({}, status_code=200)

    @router.post("/interrupt", summary="Stop the running prompt (ComfyUI)")
    async def interrupt(request: Request) -> Any:
        raw = await request.body()
        job_id = None
        if raw.strip():
            body = await read_json(request)
            if isinstance(body, dict) and isinstance(body.get("prompt_id"), str):
                job_id = body["prompt_id"]
        service.interrupt(job_id)
        return JSONResponse({}, status_code=200)

    def history(jobs: list[Job]) -> dict[str, Any]:
        result = {}
        for job in jobs:
            finish = service.store.last_event(job.id, "job_finished")
            result[job.id] = history_entry(job, prompt_of(job), outputs_to_execute(job), finish)
        return result

    @router.get("/history", summary="Finished prompts with their outputs (ComfyUI)")
    def get_history(max_items: int | None = Query(None, ge=1), offset: int = Query(0, ge=0)) -> Any:
        # Prompts removed from the queue before they ran are not history (as in ComfyUI).
        jobs = [j for j in service.store.list(FINISHED, max_items or 10_000, newest_first=True, offset=offset) if j.started]
        return history(list(reversed(jobs)))

    @router.get("/history/{prompt_id}", summary="One finished prompt (ComfyUI)")
    def get_history_one(prompt_id: str) -> Any:
        job = service.store.get(prompt_id)
        if job is None or job.status not in FINISHED:
            return {}
        return history([job])

    @router.post("/history", summary="Clear or delete history entries (ComfyUI)")
    async def post_history(request: Request) -> Any:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if isinstance(body, dict) and body.get("clear"):
            service.store.delete([j.id for j in service.store.list(FINISHED)])
        if isinstance(body, dict) and isinstance(body.get("delete"), list):
            service.store.delete([str(i) for i in body["delete"] if (j := service.store.get(str(i))) and j.status in FINISHED])
        return JSONResponse({}, status_code=200)

    @router.get("/view", summary="An output, input or temp image (ComfyUI)")
    def view(filename: str, subfolder: str = "", type: str = "output") -> Any:
        roots = service.settings.folders()
        root = roots.get(type)
        if root is None:
            return error_response(400, "bad_type", f"type must be one of {', '.join(roots)}, found {type!r}")
        if not filename or "/" in filename.replace("\\", "/"):
            return error_response(400, "bad_filename", "filename must be a plain file name; put folders in 'subfolder'")
        folder = inside(root, subfolder) if subfolder else root.resolve()
        path = inside(folder, filename) if folder is not None else None
        if path is None:
            return error_response(403, "outside", "that file lies outside the output, input and temp folders")
        if not path.is_file():
            return error_response(404, "not_found", f"no file {filename!r} in {type}/{subfolder}".rstrip("/"))
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, headers={"Content-Disposition": f'inline; filename="{path.name}"'})

    @router.post("/upload/image", summary="Upload an input image (ComfyUI)")
    async def upload_image(image: Annotated[UploadFile, File()], subfolder: Annotated[str, Form()] = "",
                           overwrite: Annotated[str, Form()] = "false", type: Annotated[str, Form()] = "input") -> Any:
        if type != "input":
            return error_response(400, "bad_type", "uploads go to the input folder only (type=input)")
        data = await image.read(service.settings.limits.upload_bytes + 1)
        if len(data) > service.settings.limits.upload_bytes:
            return error_response(413, "upload_too_large", f"uploads are limited to {service.settings.limits.upload_bytes} bytes")
        try:
            stored = store_upload(service.settings.input_dir, image.filename or "upload", data, subfolder=subfolder,  # type: ignore[arg-type]
                                  overwrite=overwrite.lower() in ("true", "1"), max_pixels=service.settings.limits.image_pixels)
        except UploadError as exc:
            return error_response(exc.status, "bad_upload", str(exc))
        return {"name": stored.name, "subfolder": stored.subfolder, "type": "input"}

    @router.get("/object_info", summary="Node types, described as ComfyUI describes nodes")
    def get_object_info() -> Any:
        return object_info(service.registry, _folders(service), service.settings.input_dir)  # type: ignore[arg-type]

    @router.get("/object_info/{node_class}", summary="One node type (ComfyUI)")
    def get_object_info_one(node_class: str) -> Any:
        info = object_info(service.registry, _folders(service), service.settings.input_dir)  # type: ignore[arg-type]
        return {node_class: info[node_class]} if node_class in info else {}

    @router.get("/system_stats", summary="Versions, memory and devices (ComfyUI)")
    def system_stats() -> Any:
        from nodegraph import __version__

        total, free = _memory()
        return {
            "system": {"os": os.name, "python_version": sys.version, "embedded_python": False,
                       "comfyui_version": f"nodegraph {__version__}", "nodegraph_version": __version__,
                       "pytorch_version": _torch_version(), "argv": [], "ram_total": total, "ram_free": free,
                       "platform": platform.platform()},
            "devices": _devices(service),
        }

    @router.get("/embeddings", summary="Textual inversion embeddings (none)")
    def embeddings() -> Any:
        return []

    @router.get("/extensions", summary="Front-end extensions (none)")
    def extensions() -> Any:
        return []

    @router.get("/models/{folder}", summary="Model files of one kind (ComfyUI)")
    def models(folder: str) -> Any:
        return _folders(service).list(folder)

    return router


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    # extra_data may carry the editor's whole workflow (extra_pnginfo); kept, but bounded by the body limit.
    return {k: v for k, v in value.items() if isinstance(k, str)}


def _folders(service: Service) -> Any:
    from nodegraph.model_folders import ModelFolders

    return ModelFolders.from_environment(service.settings.models)


def _memory() -> tuple[int, int]:
    try:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()}
        return info.get("MemTotal", 0), info.get("MemAvailable", 0)
    except (OSError, ValueError, IndexError):
        return 0, 0


def _torch_version() -> str:
    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", "") if torch else ""


def _devices(service: Service) -> list[dict[str, Any]]:
    devices = []
    for worker in service.pool.workers if service.pool else []:
        devices.append({"name": worker.name, "type": getattr(worker, "kind", "local"), "index": len(devices),
                        "vram_total": 0, "vram_free": 0, "torch_vram_total": 0, "torch_vram_free": 0})
    return devices
