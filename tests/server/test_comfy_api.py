"""ComfyUI's API against a real server, driven by an unmodified ComfyUI client library from PyPI
(comfy-api-simplified) and by a raw websocket client for the message order."""

from __future__ import annotations

import io
import json
import struct
import time
import uuid

import pytest
import requests
from comfy_api_simplified import ComfyApiWrapper, ComfyWorkflowWrapper
from PIL import Image
from websockets.sync.client import connect

from nodegraph.server import comfy_bridge
from tests.server.helpers import comfy_demo_prompt, steps_workflow


def messages_until(ws, prompt_id: str, timeout: float = 120):
    """Text messages (and binary frames) until ComfyUI's end of a prompt: executing with node None."""
    received = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = ws.recv(timeout=timeout)
        message = raw if isinstance(raw, bytes) else json.loads(raw)
        received.append(message)
        if isinstance(message, dict) and message["type"] == "executing":
            if message["data"]["node"] is None and message["data"]["prompt_id"] == prompt_id:
                return received
    raise AssertionError("the prompt did not finish")


def test_the_comfy_client_queues_a_prompt_and_downloads_its_image(demo_server):
    api = ComfyApiWrapper(demo_server.url)
    workflow = ComfyWorkflowWrapper(comfy_demo_prompt(seed=3))
    workflow.set_node_param("KSampler", "steps", 2)
    images = api.queue_and_wait_images(workflow, "Save Image")
    assert len(images) == 1
    (name, data), = images.items()
    assert name.startswith("comfy_") and Image.open(io.BytesIO(data)).size == (64, 64)
    assert (demo_server.service.settings.output_dir / name).read_bytes() == data


def test_the_comfy_client_reads_queue_history_nodes_and_stats(demo_server, tmp_path):
    api = ComfyApiWrapper(demo_server.url)
    prompt_id = api.queue_prompt(comfy_demo_prompt(seed=4, steps=2))["prompt_id"]
    deadline = time.monotonic() + 120
    while not api.get_history(prompt_id):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    entry = api.get_history(prompt_id)[prompt_id]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert next(m[0] for m in entry["status"]["messages"]) == "execution_start"
    assert entry["prompt"][1] == prompt_id and entry["prompt"][2]["3"]["class_type"] == "KSampler"
    (image,) = entry["outputs"]["9"]["images"]
    assert image["type"] == "output" and api.get_image(image["filename"], image["subfolder"], image["type"])[:4] == b"\x89PNG"
    assert api.get_queue() == {"queue_running": [], "queue_pending": []}
    info = api.get_object_info("CheckpointLoaderSimple")["CheckpointLoaderSimple"]
    assert "demo_shapes.safetensors" in info["input"]["required"]["ckpt_name"][0]
    assert info["output"] == ["MODEL", "CLIP", "VAE", "STRING"]
    listed_as = comfy_bridge.class_names(demo_server.service.registry)  # our node type -> ComfyUI class name
    assert listed_as[api.get_object_info()["KSampler"]["nodegraph_type"]] == "KSampler"
    assert api.get_system_stats()["system"]["ram_total"] > 0
    assert api.get_embeddings() == []
    picture = tmp_path / "ring.png"
    Image.new("RGB", (8, 8), "white").save(picture)
    assert api.upload_image(picture, subfolder="")["name"] == "ring.png"
    assert (demo_server.service.settings.input_dir / "ring.png").read_bytes() == picture.read_bytes()


def test_websocket_messages_follow_comfyuis_order_and_reach_only_their_client(demo_server):
    client_id, other_id = uuid.uuid4().hex, uuid.uuid4().hex
    with connect(f"{demo_server.ws_url}/ws?clientId={client_id}") as ws, \
            connect(f"{demo_server.ws_url}/ws?clientId={other_id}") as other:
        hello = json.loads(ws.recv(timeout=10))
        assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}}
        json.loads(other.recv(timeout=10))
        response = requests.post(demo_server.url + "/prompt", json={"prompt": comfy_demo_prompt(seed=9, steps=3), "client_id": client_id})
        prompt_id = response.json()["prompt_id"]
        assert response.json()["number"] >= 1 and response.json()["node_errors"] == {}
        received = messages_until(ws, prompt_id)
        others = []
        while True:
            try:
                others.append(json.loads(other.recv(timeout=1)))
            except TimeoutError:
                break
    kinds = [m["type"] for m in received]
    start = kinds.index("execution_start")
    assert "status" in kinds[:start]
    assert kinds[-3:] == ["executed", "execution_success", "executing"]
    executing = [m["data"]["node"] for m in received if m["type"] == "executing"]
    assert executing[:-1] and executing[-1] is None and "3" in executing and executing.index("3") < executing.index("8")
    progress = [m["data"] for m in received if m["type"] == "progress"]
    assert [(p["node"], p["value"], p["max"]) for p in progress if p["node"] == "3"] == [("3", i, 3) for i in range(1, 4)]
    executed = next(m["data"] for m in received if m["type"] == "executed")
    assert executed["node"] == "9" and executed["output"]["images"][0]["filename"].startswith("comfy_")
    assert all(m["type"] == "status" for m in others)  # the other client hears the queue, not this prompt


def test_previews_reach_comfy_clients_as_binary_frames_when_enabled(make_server):
    served = make_server(comfy_previews=True)
    client_id = "viewer"
    with connect(f"{served.ws_url}/ws?clientId={client_id}") as ws:
        ws.recv(timeout=10)
        job = served.submit(steps_workflow(steps=3, preview=True, delay=0.05), client_id=client_id)
        received = messages_until(ws, job["id"])
    frames = [m for m in received if isinstance(m, bytes)]
    assert len(frames) == 3
    event, image_type = struct.unpack(">II", frames[0][:8])
    assert (event, image_type) == (1, 1) and Image.open(io.BytesIO(frames[0][8:])).format == "JPEG"


def test_interrupt_stops_the_running_prompt(make_server):
    served = make_server()
    with connect(f"{served.ws_url}/ws?clientId=stopper") as ws:
        ws.recv(timeout=10)
        job = served.submit(steps_workflow(steps=5000, delay=0.01), client_id="stopper")
        served.wait(job["id"], until=("running",))
        ComfyApiWrapper(served.url).interrupt()
        received = messages_until(ws, job["id"])
    assert served.wait(job["id"])["status"] == "cancelled"
    interrupted = next(m for m in received if m["type"] == "execution_interrupted")
    assert interrupted["data"]["prompt_id"] == job["id"] and interrupted["data"]["node_id"] == "count"


def test_the_queue_can_be_listed_pruned_and_cleared(make_server):
    served = make_server(start_workers=False)  # nothing runs: the prompts stay queued
    ids = [requests.post(served.url + "/prompt", json={"prompt": comfy_demo_prompt(seed=s)}).json()["prompt_id"] for s in (1, 2, 3)]
    front = requests.post(served.url + "/prompt", json={"prompt": comfy_demo_prompt(seed=4), "front": True}).json()["prompt_id"]
    queue = requests.get(served.url + "/queue").json()
    assert queue["queue_running"] == []
    assert [entry[1] for entry in queue["queue_pending"]] == [front, *ids]
    number, prompt_id, prompt, _extra, outputs = queue["queue_pending"][1]
    assert prompt_id == ids[0] and prompt["3"]["inputs"]["seed"] == 1 and outputs == ["9"] and number >= 1
    assert requests.get(served.url + "/prompt").json() == {"exec_info": {"queue_remaining": 4}}
    requests.post(served.url + "/queue", json={"delete": [ids[1]]})
    assert [e[1] for e in requests.get(served.url + "/queue").json()["queue_pending"]] == [front, ids[0], ids[2]]
    requests.post(served.url + "/queue", json={"clear": True})
    assert requests.get(served.url + "/queue").json()["queue_pending"] == []


def test_history_entries_can_be_deleted_and_cleared(make_server):
    served = make_server()
    ids = [served.wait(served.submit(steps_workflow(steps=1))["id"])["id"] for _ in range(3)]
    history = requests.get(served.url + "/history").json()
    assert list(history) == ids
    assert list(requests.get(served.url + "/history", params={"max_items": 2}).json()) == ids[1:]
    requests.post(served.url + "/history", json={"delete": [ids[0]]})
    assert list(requests.get(served.url + "/history").json()) == ids[1:]
    requests.post(served.url + "/history", json={"clear": True})
    assert requests.get(served.url + "/history").json() == {}
    assert requests.get(served.url + f"/history/{ids[1]}").json() == {}


@pytest.mark.parametrize(("prompt", "kind", "node"), [
    ({"1": {"class_type": "NoSuchNode", "inputs": {}}}, "prompt_outputs_failed_validation", "1"),
    ({**comfy_demo_prompt(), "3": {**comfy_demo_prompt()["3"], "inputs": {**comfy_demo_prompt()["3"]["inputs"], "steps": -2}}},
     "prompt_outputs_failed_validation", "3"),
    ({k: v for k, v in comfy_demo_prompt().items() if k != "9"}, "prompt_no_outputs", None),
])
def test_invalid_prompts_get_comfyuis_error_shape(make_server, prompt, kind, node):
    served = make_server(start_workers=False)
    response = requests.post(served.url + "/prompt", json={"prompt": prompt})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == kind and body["problems"]
    if node:
        assert body["node_errors"][node]["errors"][0]["message"]
    assert requests.get(served.url + "/queue").json()["queue_pending"] == []


def test_comfy_routes_are_also_served_under_api(make_server):
    served = make_server(start_workers=False)
    assert requests.get(served.url + "/api/prompt").json() == {"exec_info": {"queue_remaining": 0}}
    assert "KSampler" in requests.get(served.url + "/api/object_info").json()


def test_preview_images_come_back_as_temp_files(demo_server):
    prompt = comfy_demo_prompt(seed=6, steps=2)
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}, "_meta": {"title": "Preview"}}
    prompt_id = requests.post(demo_server.url + "/prompt", json={"prompt": prompt}).json()["prompt_id"]
    job = demo_server.wait(prompt_id)
    assert job["status"] == "success", job["error"]
    entry = requests.get(demo_server.url + f"/history/{prompt_id}").json()[prompt_id]
    (image,) = entry["outputs"]["9"]["images"]
    assert image["type"] == "temp"
    served = requests.get(demo_server.url + "/view", params=image)
    assert served.status_code == 200 and Image.open(io.BytesIO(served.content)).size == (64, 64)


def test_the_native_api_also_takes_a_comfy_prompt(demo_server):
    job = demo_server.submit(comfy_demo_prompt(seed=7, steps=2, prefix="native_comfy"))
    done = demo_server.wait(job["id"])
    assert done["status"] == "success" and done["source"] == "comfy"
    assert done["outputs"][0]["node"] == "9" and done["outputs"][0]["filename"].startswith("native_comfy_")


def test_comfyuis_editor_format_is_read_and_checked_too(make_server):
    from tests.server.helpers import ROOT

    served = make_server(start_workers=False)
    document = json.loads((ROOT / "tests" / "fixtures" / "comfy" / "ui_v04_features.json").read_text())
    result = served.post("/v1/validate", json={"workflow": document}).json()
    assert result["valid"] is False
    # FaceDetailer, a custom node this product has no equivalent for, is named with its node id.
    assert "17" in {p["node"] for p in result["problems"]}
    refused = served.post("/v1/jobs", json={"workflow": document})
    assert refused.status_code == 400 and "17" in {p["node"] for p in refused.json()["problems"]}
