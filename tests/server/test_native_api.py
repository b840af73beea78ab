"""The native API (/v1) against a real server: jobs, outputs, events in order, cancel, node types, uploads."""

from __future__ import annotations

import io
import json
import time

import pytest
from websockets.sync.client import connect

from nodegraph.png_meta import png_text_chunks
from tests.server.helpers import demo_workflow, steps_workflow


def read_events(served, job_id: str, previews: str = "url", until: str = "job_finished", timeout: float = 60):
    events = []
    with connect(f"{served.ws_url}/v1/events?job={job_id}&previews={previews}", open_timeout=10) as ws:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = json.loads(ws.recv(timeout=timeout))
            events.append(event)
            if event["event"] == until:
                return events
    raise AssertionError(f"no {until} event: {[e['event'] for e in events]}")


def test_a_queued_workflow_runs_and_its_image_carries_the_workflow(demo_server):
    job = demo_server.submit(demo_workflow(seed=5), set={"sampler.steps": 2})
    assert job["status"] in ("pending", "running") and job["links"]["self"] == f"/v1/jobs/{job['id']}"
    done = demo_server.wait(job["id"])
    assert done["status"] == "success", done["error"]
    assert [o["node"] for o in done["outputs"]] == ["save"]
    image = demo_server.get(done["outputs"][0]["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    embedded = json.loads(png_text_chunks(image.content)["nodegraph.workflow"])
    assert embedded["nodes"]["sampler"]["params"]["seed"] == 5 and embedded["nodes"]["sampler"]["params"]["steps"] == 2
    listed = demo_server.get("/v1/jobs", params={"status": "finished"}).json()["jobs"]
    assert job["id"] in [j["id"] for j in listed]


def test_a_second_job_on_the_same_checkpoint_does_not_load_it_again(demo_server):
    first = demo_server.wait(demo_server.submit(demo_workflow(seed=11))["id"])
    second = demo_server.submit(demo_workflow(seed=12))
    assert demo_server.wait(second["id"])["status"] == "success" and first["status"] == "success"
    events = demo_server.get(f"/v1/jobs/{second['id']}/events").json()["events"]
    started = [e["node"] for e in events if e["event"] == "node_started"]
    cached = [e["node"] for e in events if e["event"] == "node_cached"]
    assert "checkpoint" in cached and "checkpoint" not in started and "sampler" in started


def test_events_stream_over_the_websocket_in_the_order_the_engine_emits_them(make_server):
    served = make_server()
    job = served.submit(steps_workflow(steps=4, preview=True))
    events = read_events(served, job["id"])
    kinds = [e["event"] for e in events]
    assert kinds == ["job_queued", "job_started", "run_started", "node_started", "node_finished", "node_started",
                     "node_progress", "node_progress", "node_progress", "node_progress", "node_finished",
                     "run_finished", "job_finished"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    progress = [e for e in events if e["event"] == "node_progress"]
    assert [(e["node"], e["step"], e["total"]) for e in progress] == [("count", i, 4) for i in range(1, 5)]
    assert all(e["preview"].startswith(f"/v1/jobs/{job['id']}/preview") for e in progress)
    assert events[-1]["status"] == "success" and events[-1]["values"]["count"]["text"] == "hi after 4 steps"


def test_previews_can_come_inline_as_base64(make_server):
    from PIL import Image

    served = make_server()
    # Listening to every job from before the submission: previews arrive live (replayed events name the URL).
    with connect(f"{served.ws_url}/v1/events?previews=base64", open_timeout=10) as ws:
        job = served.submit(steps_workflow(steps=2, preview=True))
        events = []
        while not events or events[-1]["event"] != "job_finished":
            event = json.loads(ws.recv(timeout=30))
            if event.get("job") == job["id"]:
                events.append(event)
    previews = [e["preview"] for e in events if e["event"] == "node_progress"]
    assert len(previews) == 2 and all(p.startswith("data:image/jpeg;base64,") for p in previews)
    import base64

    image = Image.open(io.BytesIO(base64.b64decode(previews[-1].split(",", 1)[1])))
    assert image.size == (16, 16)


def test_the_latest_preview_of_a_running_job_is_served(make_server):
    served = make_server()
    job = served.submit(steps_workflow(steps=200, delay=0.02, preview=True))
    deadline = time.monotonic() + 30
    while (response := served.get(f"/v1/jobs/{job['id']}/preview")).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert response.headers["content-type"] == "image/jpeg"
    served.post(f"/v1/jobs/{job['id']}/cancel")
    assert served.wait(job["id"])["status"] == "cancelled"
    assert served.get(f"/v1/jobs/{job['id']}/preview").status_code == 404


def test_cancel_stops_a_running_job_and_drops_a_pending_one(make_server):
    served = make_server()
    running = served.submit(steps_workflow(steps=2000, delay=0.01))
    pending = served.submit(steps_workflow(steps=1, text="later"))
    served.wait(running["id"], until=("running",))
    assert served.get(f"/v1/jobs/{pending['id']}").json()["position"] == 0
    assert served.post(f"/v1/jobs/{pending['id']}/cancel").json() == {"id": pending["id"], "cancelled": True}
    assert served.get(f"/v1/jobs/{pending['id']}").json()["status"] == "cancelled"
    assert served.post(f"/v1/jobs/{running['id']}/cancel").status_code == 200
    stopped = served.wait(running["id"], timeout=20)
    assert stopped["status"] == "cancelled" and stopped["error"] is None
    events = served.get(f"/v1/jobs/{running['id']}/events").json()["events"]
    assert [e["event"] for e in events][-2:] == ["run_cancelled", "job_finished"]
    assert served.post(f"/v1/jobs/{running['id']}/cancel").status_code == 409  # finished: nothing to cancel
    after = served.wait(served.submit(steps_workflow(steps=1))["id"])
    assert after["status"] == "success"  # the worker goes on serving


def test_a_failing_node_is_reported_with_its_id_type_and_message(make_server):
    served = make_server()
    doc = steps_workflow()
    doc["nodes"]["boom"] = {"type": "servetest.Fail", "version": 1, "inputs": {"text": ["text", "value"]}}
    job = served.wait(served.submit(doc, targets=["boom"])["id"])
    assert job["status"] == "failed"
    assert job["error"]["node"] == "boom" and job["error"]["type"] == "servetest.Fail"
    assert "this node always fails" in job["error"]["message"]


def test_targets_and_overrides_choose_what_runs(make_server):
    served = make_server()
    job = served.wait(served.submit(steps_workflow(), targets=["text"], set={"text.value": "only this"})["id"])
    assert job["status"] == "success" and job["values"] == {"text": {"value": "only this"}}


def test_validate_checks_without_queueing(make_server):
    served = make_server()
    good = served.post("/v1/validate", json={"workflow": steps_workflow()}).json()
    assert good == {"valid": True, "problems": [], "notes": []}
    bad = steps_workflow()
    bad["nodes"]["count"]["params"]["steps"] = 0
    result = served.post("/v1/validate", json={"workflow": bad}).json()
    assert result["valid"] is False and result["problems"][0]["node"] == "count" and result["problems"][0]["field"] == "steps"
    assert served.get("/v1/jobs").json()["jobs"] == []


def test_node_types_are_listed_with_their_schemas(make_server):
    served = make_server(start_workers=False)
    nodes = {n["id"]: n for n in served.get("/v1/nodes").json()["nodes"]}
    assert {"core.KSampler", "core.SaveImage", "servetest.Steps"} <= set(nodes)
    assert "seed" in [p["name"] for p in nodes["core.KSampler"]["params"]]
    assert served.get("/v1/nodes/core.LoadImage").json()["params"][0]["kind"] == "image_file"
    assert served.get("/v1/nodes/core.Nope").status_code == 404


def test_an_uploaded_image_feeds_load_image(make_server):
    from PIL import Image

    served = make_server()
    buffer = io.BytesIO()
    Image.new("RGB", (40, 24), (10, 200, 30)).save(buffer, format="PNG")
    upload = served.post("/v1/uploads", files={"file": ("my photo.png", buffer.getvalue(), "image/png")},
                         data={"subfolder": "shots"})
    assert upload.status_code == 201 and upload.json()["name"] == "shots/my photo.png"
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": {
        "load": {"type": "core.LoadImage", "version": 1, "params": {"path": upload.json()["name"]}},
        "show": {"type": "core.Show", "version": 1, "inputs": {"value": ["load", "width"]}}}}
    job = served.wait(served.submit(doc)["id"])
    assert job["status"] == "success" and job["values"]["show"]["text"] == "40"


def test_the_api_is_described_as_openapi_at_docs_without_a_cdn(make_server):
    served = make_server(start_workers=False)
    page = served.get("/docs").text
    assert "cdn" not in page.lower() and "/docs-static/swagger-ui-bundle.js" in page
    assert served.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    schema = served.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    paths = schema["paths"]
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/nodes", "/v1/uploads", "/prompt", "/history", "/view"} <= set(paths)


@pytest.mark.parametrize("path", ["/v1/jobs/nope", "/v1/jobs/nope/events", "/v1/jobs/nope/cancel"])
def test_unknown_jobs_get_404(make_server, path):
    served = make_server(start_workers=False)
    response = served.post(path) if path.endswith("cancel") else served.get(path)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
