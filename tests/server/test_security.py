"""Security by default and bad input: tokens, origins, hosts, body and upload limits, confined paths, floods,
and clients that go away. Every refusal is a clear JSON error and the server keeps serving."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest
import requests
from comfy_api_simplified import ComfyApiWrapper
from PIL import Image
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from nodegraph.server.settings import Limits, ServerSettings
from nodegraph.server.tokens import TokenFileError, load_or_create_token
from tests.server.helpers import TOKEN, comfy_demo_prompt, steps_workflow


def png_bytes(size=(8, 8), color="red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_loopback_needs_no_token_but_refuses_a_wrong_one(make_server):
    served = make_server(start_workers=False)
    assert requests.get(served.url + "/v1/jobs").status_code == 200
    wrong = requests.get(served.url + "/v1/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "unauthorized"


def test_with_auth_every_route_and_the_websocket_need_the_token(make_server):
    served = make_server(start_workers=False, require_auth=True)
    for path in ("/v1/jobs", "/queue", "/object_info", "/view?filename=x.png", "/history"):
        refused = requests.get(served.url + path)
        assert refused.status_code == 401, path
        assert refused.headers["WWW-Authenticate"].startswith("Bearer") and "token" in refused.json()["error"]["message"]
    assert requests.post(served.url + "/prompt", json={"prompt": comfy_demo_prompt()}).status_code == 401
    for path in ("/v1/health", "/docs", "/openapi.json"):  # liveness and the API's description need no token
        assert requests.get(served.url + path).status_code == 200
    assert requests.get(served.url + "/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert requests.get(served.url + "/v1/jobs", params={"token": TOKEN}).status_code == 200
    # ComfyUI clients behind a proxy send HTTP Basic auth: the token is the password.
    assert ComfyApiWrapper(served.url, user="me", password=TOKEN).get_queue() == {"queue_running": [], "queue_pending": []}
    with pytest.raises(Exception, match="401"):
        ComfyApiWrapper(served.url, user="me", password="wrong").get_queue()
    with pytest.raises(InvalidStatus):
        connect(f"{served.ws_url}/ws?clientId=a", open_timeout=10)
    with connect(f"{served.ws_url}/ws?clientId=a&token={TOKEN}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "status"
    with connect(f"{served.ws_url}/v1/events", additional_headers={"Authorization": f"Bearer {TOKEN}"}, open_timeout=10):
        pass


def test_a_listener_beyond_loopback_always_needs_the_token(tmp_path, registry):
    from nodegraph.server.service import Service
    from nodegraph.server.serving import ServerThread

    assert ServerSettings(host="0.0.0.0").auth_required and ServerSettings(host="192.168.1.5").auth_required
    assert not ServerSettings(host="127.0.0.1").auth_required and not ServerSettings(host="::1").auth_required
    # The policy follows the configured address; the test itself only listens on loopback.
    service = Service(ServerSettings(host="0.0.0.0", state_dir=tmp_path / "s", token=TOKEN), registry=registry)
    thread = ServerThread(service, host="127.0.0.1").start()
    try:
        assert requests.get(thread.url + "/v1/jobs").status_code == 401
        assert requests.get(thread.url + "/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        thread.stop()
        service.close()


def test_the_token_is_made_once_and_kept_private(tmp_path):
    path = tmp_path / "config" / "nodegraph" / "server-token"
    token, created = load_or_create_token(path)
    assert created and len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == (token, False)
    os.chmod(path, 0o644)
    with pytest.raises(TokenFileError, match="chmod 600"):
        load_or_create_token(path)


def test_web_pages_from_other_origins_are_refused_unless_allowed(make_server, tmp_path):
    served = make_server(start_workers=False)
    evil = {"Origin": "http://evil.example"}
    refused = requests.post(served.url + "/prompt", json={"prompt": comfy_demo_prompt()}, headers=evil)
    assert refused.status_code == 403 and "--cors-origin" in refused.json()["error"]["message"]
    assert requests.get(served.url + "/queue", headers={"Origin": served.url}).status_code == 200  # its own page
    with pytest.raises(InvalidStatus):
        connect(f"{served.ws_url}/ws", origin="http://evil.example", open_timeout=10)
    allowed = make_server(state=tmp_path / "other", start_workers=False, cors_origins=["http://app.example"])
    answer = requests.get(allowed.url + "/queue", headers={"Origin": "http://app.example"})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://app.example"
    preflight = requests.options(allowed.url + "/prompt", headers={"Origin": "http://app.example",
                                                                   "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200


def test_a_rebound_dns_name_cannot_reach_a_loopback_server(make_server):
    served = make_server(start_workers=False)
    refused = requests.get(served.url + "/queue", headers={"Host": f"attacker.example:{served.thread.port}"})
    assert refused.status_code == 403 and "loopback" in refused.json()["error"]["message"]
    assert requests.get(served.url + "/queue", headers={"Host": f"localhost:{served.thread.port}"}).status_code == 200


def test_oversized_bodies_are_refused_and_the_server_keeps_serving(make_server):
    served = make_server(start_workers=False, limits=Limits(body_bytes=20_000, upload_bytes=30_000))
    big = {"workflow": steps_workflow(text="x" * 50_000)}
    response = requests.post(served.url + "/v1/jobs", json=big)
    assert response.status_code == 413 and "20000 bytes" in response.json()["error"]["message"]
    chunked = requests.post(served.url + "/prompt", data=iter([b'{"prompt": {"1": "' + b"y" * 30_000 + b'"}}']))
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    upload = requests.post(served.url + "/upload/image", files={"image": ("big.png", png_bytes((300, 300)) + b"\0" * 40_000)})
    assert upload.status_code == 413
    assert requests.post(served.url + "/v1/jobs", json={"workflow": steps_workflow()}).status_code == 201


def test_uploads_are_type_checked_size_limited_and_confined(make_server):
    served = make_server(start_workers=False, limits=Limits(image_pixels=100 * 100))
    url = served.url + "/upload/image"
    not_image = requests.post(url, files={"image": ("notes.png", b"hello, not a picture")})
    assert not_image.status_code == 400 and "not an image" in not_image.json()["error"]["message"]
    huge = requests.post(url, files={"image": ("huge.png", png_bytes((200, 200)))})
    assert huge.status_code == 413 and "pixels" in huge.json()["error"]["message"]
    tricky = requests.post(url, files={"image": ("../../../etc/evil.png", png_bytes())})
    assert tricky.status_code == 200 and tricky.json() == {"name": "evil.png", "subfolder": "", "type": "input"}
    assert (served.service.settings.input_dir / "evil.png").is_file()
    escape = requests.post(url, files={"image": ("a.png", png_bytes())}, data={"subfolder": "../../outside"})
    assert escape.status_code == 400
    assert not (served.service.settings.state_dir.parent / "outside").exists()
    again = requests.post(url, files={"image": ("evil.png", png_bytes(color="blue"))})
    assert again.json()["name"] == "evil (1).png"  # a different image never replaces an upload
    same = requests.post(url, files={"image": ("evil.png", png_bytes())})
    assert same.json()["name"] == "evil.png"  # the same image again reuses it
    renamed = requests.post(url, files={"image": (".hidden.exe", png_bytes())})
    assert renamed.json()["name"] == "hidden.png"


def test_view_serves_only_the_output_input_and_temp_folders(make_server, tmp_path):
    served = make_server(start_workers=False)
    output = served.service.settings.output_dir
    (output / "sub").mkdir(parents=True)
    (output / "sub" / "ok.png").write_bytes(png_bytes())
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (output / "link").symlink_to(tmp_path)
    view = served.url + "/view"
    assert requests.get(view, params={"filename": "ok.png", "subfolder": "sub"}).status_code == 200
    for params, status in [
        ({"filename": "secret.txt", "subfolder": "../.."}, 403),
        ({"filename": "secret.txt", "subfolder": str(tmp_path)}, 403),
        ({"filename": "../secret.txt"}, 400),
        ({"filename": "secret.txt", "subfolder": "link"}, 403),
        ({"filename": "queue.sqlite3", "type": "state"}, 400),
        ({"filename": "missing.png"}, 404),
    ]:
        response = requests.get(view, params=params)
        assert response.status_code == status, params
        assert "secret" not in response.text or response.status_code != 200


@pytest.mark.parametrize(("node", "code"), [
    ({"type": "core.LoadImage", "version": 1, "params": {"path": "/etc/hostname"}}, "input_path_refused"),
    ({"type": "core.LoadImage", "version": 1, "params": {"path": "../../secret.png"}}, "input_path_refused"),
    ({"type": "core.LoadImage", "version": 1, "params": {"path": "never-uploaded.png"}}, "input_not_found"),
    ({"type": "core.CheckpointLoader", "version": 1, "params": {"ckpt_name": "/tmp/model.safetensors"}}, "model_path_refused"),
    ({"type": "core.LoraLoader", "version": 1, "params": {"lora_name": "../../x.safetensors"}}, "model_path_refused"),
    ({"type": "core.LoadImage", "version": 1, "inputs": {"path": ["text", "value"]}}, "linked_file_param"),
    ({"type": "core.TrainLoraDreamBooth", "version": 1, "params": {}}, "node_not_allowed"),
])
def test_workflows_cannot_reach_files_outside_the_servers_folders(make_server, node, code):
    served = make_server(start_workers=False)
    doc = steps_workflow()
    doc["nodes"]["risky"] = node
    response = requests.post(served.url + "/v1/jobs", json={"workflow": doc})
    assert response.status_code == 400
    problems = [p for p in response.json()["problems"] if p["node"] == "risky"]
    assert code in [p["code"] for p in problems]
    assert requests.get(served.url + "/v1/jobs").json()["jobs"] == []


def test_a_refused_node_type_can_be_allowed_by_name(make_server):
    served = make_server(start_workers=False, allow_nodes=["core.TrainLoraDreamBooth"])
    doc = steps_workflow()
    doc["nodes"]["train"] = {"type": "core.TrainLoraDreamBooth", "version": 1, "params": {}}
    response = requests.post(served.url + "/v1/validate", json={"workflow": doc}).json()
    assert "node_not_allowed" not in [p["code"] for p in response["problems"]]


@pytest.mark.parametrize(("body", "kind"), [
    (b"{not json", "bad_json"),
    (b"", "bad_json"),
    (b"\xff\xfe", "bad_json"),
    (b"[1, 2]", "bad_request"),
    (b'{"workflow": "a string"}', "bad_request"),
    (b'{"workflow": {"format": "something.else"}}', "invalid_workflow"),
    (b'{"workflow": {"format": "nodegraph.workflow", "version": 1, "nodes": {"a": {"type": "core.Nope"}}}}', "invalid_workflow"),
    (b'{"workflow": {"format": "nodegraph.workflow", "version": 1, "nodes": {}}, "targets": ["ghost"]}', "invalid_workflow"),
    (b'{"workflow": {"format": "nodegraph.workflow", "version": 1, "nodes": {}}, "set": {"x.y": 1}}', "invalid_workflow"),
])
def test_bad_submissions_get_a_clear_400(make_server, body, kind):
    served = make_server(start_workers=False)
    response = requests.post(served.url + "/v1/jobs", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == kind and response.json()["error"]["message"]
    assert requests.post(served.url + "/prompt", data=body).status_code == 400


def test_a_flood_of_submissions_is_bounded(make_server):
    served = make_server(start_workers=False, limits=Limits(pending_jobs=5))
    codes = [requests.post(served.url + "/v1/jobs", json={"workflow": steps_workflow()}).status_code for _ in range(8)]
    assert codes == [201] * 5 + [429] * 3
    refused = requests.post(served.url + "/prompt", json={"prompt": comfy_demo_prompt()})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
    assert requests.get(served.url + "/prompt").json()["exec_info"]["queue_remaining"] == 5
    requests.post(served.url + "/queue", json={"clear": True})
    assert requests.post(served.url + "/v1/jobs", json={"workflow": steps_workflow()}).status_code == 201


def test_a_websocket_client_leaving_mid_run_loses_nothing(make_server):
    served = make_server()
    with connect(f"{served.ws_url}/ws?clientId=leaver") as ws:
        ws.recv(timeout=10)
        job = served.submit(steps_workflow(steps=30, delay=0.02, write="kept.txt"), client_id="leaver")
        while json.loads(ws.recv(timeout=30))["type"] != "progress":
            pass
    done = served.wait(job["id"])
    assert done["status"] == "success" and [o["filename"] for o in done["outputs"]] == ["kept.txt"]
    history = requests.get(served.url + f"/history/{job['id']}").json()[job["id"]]
    assert history["status"]["completed"] is True
    with connect(f"{served.ws_url}/ws?clientId=next") as ws:
        assert json.loads(ws.recv(timeout=10))["data"]["status"]["exec_info"]["queue_remaining"] == 0
