"""Helpers for the server tests: real servers on 127.0.0.1 (a free port) over the real engine.

Workflows either use the ``servetest`` plugin nodes (no torch, milliseconds, optional delays, progress
and previews) or the shipped demo model (real text-to-image at 64 px in a few steps).
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = Path(__file__).resolve().parent / "plugins"
TOKEN = "test-token-0123456789abcdef"


def servetest_module() -> Any:
    spec = importlib.util.spec_from_file_location("servetest", PLUGINS / "servetest" / "__init__.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def steps_workflow(steps: int = 3, delay: float = 0.0, preview: bool = False, write: str = "", text: str = "hi") -> dict[str, Any]:
    return {"format": "nodegraph.workflow", "version": 1, "nodes": {
        "text": {"type": "core.String", "version": 1, "params": {"value": text}},
        "count": {"type": "servetest.Steps", "version": 1, "inputs": {"text": ["text", "value"]},
                  "params": {"steps": steps, "delay": delay, "preview": preview, "write": write}},
    }}


def demo_workflow(seed: int = 1, steps: int = 3, batch: int = 1, prefix: str = "demo") -> dict[str, Any]:
    doc = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    doc["nodes"]["latent"]["params"]["batch_size"] = batch
    doc["nodes"]["sampler"]["params"].update(seed=seed, steps=steps)
    doc["nodes"]["save"]["params"]["filename_prefix"] = prefix
    return doc


def comfy_demo_prompt(seed: int = 1, steps: int = 3, prefix: str = "comfy") -> dict[str, Any]:
    """ComfyUI's API format for the demo model, as ComfyUI's "Export (API)" writes it."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "demo_shapes.safetensors"},
              "_meta": {"title": "Load Checkpoint"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle on a blue background", "clip": ["4", 1]},
              "_meta": {"title": "Positive"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}, "_meta": {"title": "Negative"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1},
              "_meta": {"title": "Empty Latent Image"}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": steps, "cfg": 3.0, "sampler_name": "ddim",
                                                   "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                                   "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]},
              "_meta": {"title": "KSampler"}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "_meta": {"title": "VAE Decode"}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}, "_meta": {"title": "Save Image"}},
    }


class Served:
    """A running server: its URL, its service, and helpers to call it."""

    def __init__(self, thread: Any, token: str | None) -> None:
        self.thread = thread
        self.service = thread.service
        self.url = thread.url
        self.ws_url = self.url.replace("http://", "ws://")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, headers={**self.headers, **kwargs.pop("headers", {})}, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, headers={**self.headers, **kwargs.pop("headers", {})}, timeout=30, **kwargs)

    def submit(self, workflow: dict[str, Any], **fields: Any) -> dict[str, Any]:
        response = self.post("/v1/jobs", json={"workflow": workflow, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def wait(self, job_id: str, timeout: float = 120.0, until: tuple[str, ...] = ("success", "failed", "cancelled")) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in until:
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s"
            time.sleep(0.05)


def start_server(state: Path, registry: Any, *, start_workers: bool = True, **settings: Any) -> Served:
    from nodegraph.server.service import Service
    from nodegraph.server.serving import ServerThread
    from nodegraph.server.settings import ServerSettings

    settings.setdefault("device", "cpu")
    settings.setdefault("precision", "fp32")
    settings.setdefault("token", TOKEN)
    settings.setdefault("token_path", state.parent / "token")
    service = Service(ServerSettings(state_dir=state, **settings), registry=registry)
    if start_workers:
        service.start()
    thread = ServerThread(service, host=settings.get("host", "127.0.0.1")).start()
    token = settings["token"] if settings.get("require_auth") else None
    return Served(thread, token)


def stop_server(served: Served) -> None:
    served.thread.stop()
    served.service.close()
