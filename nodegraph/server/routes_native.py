"""The native API under ``/v1``: jobs (submit, status, events, outputs, cancel, delete), node types, uploads.

Every error is JSON: ``{"error": {"type", "message"}, "problems": [...]}`` where ``problems`` lists the
structured problems of ``nodegraph validate`` (node, field, expected, found).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from nodegraph.server.errors import error_response, read_json
from nodegraph.server.service import QueueFull, Service
from nodegraph.server.store import ACTIVE, FINISHED, PENDING, Job
from nodegraph.server.submit import SubmissionError
from nodegraph.server.uploads import UploadError, store_upload


class JobRequest(BaseModel):
    """A job: a workflow plus how to run it."""

    workflow: dict[str, Any] = Field(description="a nodegraph workflow document, or a ComfyUI workflow (API format)")
    targets: list[str] | None = Field(None, description="node ids to run (default: the output nodes)")
    set: dict[str, Any] | None = Field(None, description='parameter overrides, e.g. {"sampler.seed": 7}')
    front: bool = Field(False, description="queue ahead of the waiting jobs")
    client_id: str | None = Field(None, description="a ComfyUI websocket client to send this job's messages to")


def job_view(job: Job, service: Service, *, workflow: bool = False) -> dict[str, Any]:
    base = f"/v1/jobs/{job.id}"
    view: dict[str, Any] = {
        "id": job.id, "number": job.number, "status": job.status, "source": job.source,
        "created": job.created, "started": job.started, "finished": job.finished,
        "attempts": job.attempts, "retried": job.retried, "worker": job.worker,
        "outputs": job.outputs, "values": job.values, "error": job.error,
        "notes": job.request.get("notes", []), "targets": job.request.get("targets"),
        "links": {"self": base, "events": base + "/events", "events_ws": f"/v1/events?job={job.id}",
                  "preview": base + "/preview", "cancel": base + "/cancel"},
    }
    if job.status == PENDING:
        queue = [j.id for j in service.store.queue() if j.status == PENDING]
        view["position"] = queue.index(job.id) if job.id in queue else None
    if workflow:
        view["workflow"] = job.workflow
    return view


def problems_response(exc: SubmissionError) -> JSONResponse:
    first = f"; the first: {exc.problems[0]}" if exc.problems else ""
    return error_response(400, exc.kind, f"the workflow cannot run: {len(exc.problems)} problem(s){first}",
                          problems=[p.to_json() for p in exc.problems])


def make_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["native"])

    def get_job(job_id: str) -> Job | JSONResponse:
        job = service.store.get(job_id)
        return job if job is not None else error_response(404, "not_found", f"no job {job_id!r}")

    @router.post("/jobs", status_code=201, summary="Queue a workflow",
                 openapi_extra={"requestBody": {"content": {"application/json": {"schema": JobRequest.model_json_schema()}}, "required": True}})
    async def submit(request: Request) -> Any:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if not isinstance(body, dict) or not isinstance(body.get("workflow"), dict):
            return error_response(400, "bad_request", "send {\"workflow\": {...}} (a nodegraph or ComfyUI workflow) as JSON")
        try:
            parsed = JobRequest.model_validate(body)
            submission = service.prepare(parsed.workflow, targets=parsed.targets, overrides=parsed.set)
            job = service.submit(submission, client_id=parsed.client_id, front=parsed.front)
        except SubmissionError as exc:
            return problems_response(exc)
        except QueueFull as exc:
            return error_response(429, "queue_full", str(exc), headers={"Retry-After": "10"})
        except ValueError as exc:  # pydantic's ValidationError
            return error_response(400, "bad_request", str(exc))
        return JSONResponse(job_view(job, service), status_code=201)

    @router.post("/validate", summary="Check a workflow without queueing it")
    async def check(request: Request) -> Any:
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        doc = body.get("workflow") if isinstance(body, dict) and "workflow" in body else body
        try:
            submission = service.prepare(doc, targets=body.get("targets") if isinstance(body, dict) else None)
        except SubmissionError as exc:
            return {"valid": False, "problems": [p.to_json() for p in exc.problems]}
        return {"valid": True, "problems": [], "notes": submission.notes}

    @router.get("/jobs", summary="List jobs, newest first")
    def list_jobs(status: str | None = Query(None, description="pending, running, success, failed, cancelled, active or finished"),
                  limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)) -> Any:
        groups = {"active": ACTIVE, "finished": FINISHED}
        statuses = groups.get(status or "", (status,) if status else None)
        return {"jobs": [job_view(j, service) for j in service.store.list(statuses, limit, offset=offset)]}

    @router.get("/jobs/{job_id}", summary="A job's status and outputs")
    def read_job(job_id: str, workflow: bool = False) -> Any:
        job = get_job(job_id)
        return job if isinstance(job, JSONResponse) else job_view(job, service, workflow=workflow)

    @router.get("/jobs/{job_id}/events", summary="A job's events so far (after ?after=SEQ)")
    def job_events(job_id: str, after: int = -1, limit: int = Query(1000, ge=1, le=10_000)) -> Any:
        job = get_job(job_id)
        if isinstance(job, JSONResponse):
            return job
        return {"job": job_id, "status": job.status, "events": service.store.events(job_id, after, limit)}

    @router.get("/jobs/{job_id}/preview", summary="The latest sampler preview of a running job")
    def job_preview(job_id: str) -> Any:
        preview = service.preview(job_id)
        if preview is None:
            return error_response(404, "no_preview", "this job has no preview now (not running, or no node sent one yet)")
        kind, data = preview
        return Response(data, media_type=f"image/{kind}", headers={"Cache-Control": "no-store"})

    @router.post("/jobs/{job_id}/cancel", summary="Cancel a pending or running job")
    def cancel(job_id: str) -> Any:
        job = get_job(job_id)
        if isinstance(job, JSONResponse):
            return job
        if not service.cancel(job_id):
            return error_response(409, "not_active", f"job {job_id} is {job.status}; only pending or running jobs can be cancelled")
        return {"id": job_id, "cancelled": True}

    @router.delete("/jobs/{job_id}", summary="Remove a job from the history (output files stay)")
    def delete(job_id: str) -> Any:
        job = get_job(job_id)
        if isinstance(job, JSONResponse):
            return job
        if job.status == "running":
            return error_response(409, "running", "cancel the running job first (POST .../cancel)")
        service.delete([job_id])
        return {"id": job_id, "deleted": True}

    @router.get("/nodes", summary="Installed node types with their schemas")
    def nodes() -> Any:
        return {"nodes": [d.schema() for d in service.registry]}

    @router.get("/nodes/{node_type}", summary="One node type's schema")
    def node_schema(node_type: str) -> Any:
        definition = service.registry.get(node_type)
        if definition is None:
            return error_response(404, "not_found", f"no node type {node_type!r}")
        return definition.schema()

    @router.post("/uploads", status_code=201, summary="Upload an input image (use its 'name' in Load Image's path)")
    async def upload(file: Annotated[UploadFile, File()], subfolder: Annotated[str, Form()] = "",
                     overwrite: Annotated[bool, Form()] = False) -> Any:
        data = await file.read(service.settings.limits.upload_bytes + 1)
        if len(data) > service.settings.limits.upload_bytes:
            return error_response(413, "upload_too_large", f"uploads are limited to {service.settings.limits.upload_bytes} bytes")
        try:
            stored = store_upload(service.settings.input_dir, file.filename or "upload", data, subfolder=subfolder,  # type: ignore[arg-type]
                                  overwrite=overwrite, max_pixels=service.settings.limits.image_pixels)
        except UploadError as exc:
            return error_response(exc.status, "bad_upload", str(exc))
        return JSONResponse({"name": stored.reference, "filename": stored.name, "subfolder": stored.subfolder}, status_code=201)

    @router.get("/workers", summary="The workers and what each holds")
    def workers() -> Any:
        return {"workers": service.pool.info() if service.pool else []}

    @router.get("/health", summary="Liveness and queue length (needs no token)")
    def health() -> Any:
        from nodegraph import __version__

        return {"status": "ok", "version": __version__, "queue_remaining": service.queue_remaining()}

    return router
