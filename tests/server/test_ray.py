"""Workers as Ray actors on a real local cluster started by the test (2 CPUs, shared by the module's tests):
jobs spread over two actors, an actor killed mid-job (its job completes elsewhere, once), and a sweep on
Ray that gives the same images as separate `nodegraph run`s. Ray is heavy on a 2-core machine: the first
test's jobs use the torch-free test nodes, so only the sweep's actors load the demo model."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from tests.server.helpers import PLUGINS, ROOT, demo_workflow, start_server, steps_workflow, stop_server

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    env = {"OMP_NUM_THREADS": "1", "NODEGRAPH_PLUGIN_PATH": str(PLUGINS), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", runtime_env={"env_vars": env})
    yield
    ray.shutdown()


@pytest.fixture
def ray_server(cluster, tmp_path, registry):
    served = start_server(tmp_path / "state", registry, ray="auto")
    yield served
    stop_server(served)


def test_jobs_spread_over_two_actors_and_a_killed_actor_loses_no_job(ray_server):
    pool = ray_server.service.pool
    assert [w.name for w in pool.workers] == ["ray-1", "ray-2"]
    jobs = [ray_server.submit(steps_workflow(steps=5, delay=0.05, text=f"job {i}")) for i in range(4)]
    done = [ray_server.wait(j["id"], timeout=300) for j in jobs]
    assert [d["values"]["count"]["text"] for d in done] == [f"job {i} after 5 steps" for i in range(4)]
    assert all(d["status"] == "success" for d in done), [d["error"] for d in done]
    assert {d["worker"] for d in done} == {"ray-1", "ray-2"}
    pids = {w.describe()["pid"] for w in pool.workers}
    assert len(pids) == 2 and os.getpid() not in pids  # separate processes

    long = ray_server.submit(steps_workflow(steps=400, delay=0.02, write="once.txt"))
    running = ray_server.wait(long["id"], until=("running",), timeout=120)
    deadline = time.monotonic() + 60
    while not any(e["event"] == "node_progress" for e in ray_server.get(f"/v1/jobs/{long['id']}/events").json()["events"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim = next(w for w in pool.workers if w.name == running["worker"])
    ray.kill(victim.actor)
    finished = ray_server.wait(long["id"], timeout=300)
    assert finished["status"] == "success" and finished["retried"] is True and finished["attempts"] == 2
    assert finished["worker"] != running["worker"]
    events = [e["event"] for e in ray_server.get(f"/v1/jobs/{long['id']}/events").json()["events"]]
    assert events.count("job_started") == 2 and "job_retried" in events
    assert sorted(p.name for p in ray_server.service.settings.output_dir.glob("once*")) == ["once.txt"]
    assert len(pool.workers) == 2 and all(w.alive for w in pool.workers)  # the dead actor was replaced


def test_a_sweep_on_ray_gives_the_images_of_separate_runs(cluster, tmp_path, monkeypatch):
    from nodegraph.cli import main

    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps(demo_workflow(steps=2, prefix="sweep")))
    monkeypatch.chdir(tmp_path)
    assert main(["batch", str(workflow), "--sweep", "sampler.seed=1..2", "--sweep", "sampler.cfg=4", "--ray", "auto",
                 "--device", "cpu", "--precision", "fp32", "--output", "swept"]) == 0
    index = [json.loads(line) for line in (tmp_path / "swept" / "index.jsonl").read_text().splitlines()]
    assert sorted((i["params"]["sampler.seed"], i["params"]["sampler.cfg"]) for i in index) == [(1, 4.0), (2, 4.0)]
    assert {i["status"] for i in index} == {"success"}
    for item in index:
        if item["params"] != {"sampler.seed": 2, "sampler.cfg": 4.0}:
            continue
        assert main(["run", str(workflow), "--set", "sampler.seed=2", "--set", "sampler.cfg=4", "--device", "cpu",
                     "--precision", "fp32", "--output", "alone"]) == 0
        alone = np.asarray(Image.open(tmp_path / "alone" / "sweep_00001.png"))
        swept = np.asarray(Image.open(tmp_path / "swept" / item["files"][0]))
        assert np.array_equal(alone, swept)
    assert ROOT.exists()
