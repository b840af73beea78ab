"""The queue lives in SQLite: pending jobs, history and results survive a restart; a job that was running
when the server died (killed, not stopped) runs again once, reported as retried, without duplicate outputs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from nodegraph.server.store import FAILED, PENDING, RUNNING, Job, JobStore
from tests.server.helpers import PLUGINS, ROOT, steps_workflow


def test_pending_jobs_history_and_results_survive_a_restart(make_server, tmp_path):
    state = tmp_path / "state"
    first = make_server(state=state, start_workers=False)
    ids = [first.submit(steps_workflow(steps=1, text=f"job {i}", write=f"job{i}.txt"))["id"] for i in range(3)]
    first.thread.stop()
    first.service.close()

    second = make_server(state=state)
    done = [second.wait(job_id) for job_id in ids]
    assert [d["status"] for d in done] == ["success"] * 3
    assert [d["number"] for d in done] == [1, 2, 3]
    assert [d["values"]["count"]["text"] for d in done] == [f"job {i} after 1 steps" for i in range(3)]
    assert sorted(d["started"] for d in done) == [d["started"] for d in done]  # in queue order
    url = done[0]["outputs"][0]["url"]
    second.thread.stop()
    second.service.close()

    third = make_server(state=state, start_workers=False)
    assert list(requests.get(third.url + "/history").json()) == ids
    assert requests.get(third.url + url).text == "job 0 1\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_serve(state: Path, port: int, home: Path) -> subprocess.Popen:
    env = {**os.environ, "NODEGRAPH_PLUGIN_PATH": str(PLUGINS), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_DATA_HOME": str(home / "data"), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "nodegraph", "serve", "--state", str(state), "--port", str(port),
                                "--device", "cpu"], env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return process
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the server did not start: {process.communicate()[1].decode()[-2000:]}")
        time.sleep(0.1)


def test_a_job_running_when_the_server_is_killed_runs_again_once_without_duplicates(tmp_path):
    state, port = tmp_path / "state", free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_serve(state, port, tmp_path)
    try:
        doc = steps_workflow(steps=300, delay=0.02, write="result.txt")
        job = requests.post(url + "/v1/jobs", json={"workflow": doc}, timeout=10).json()
        waiting = requests.post(url + "/v1/jobs", json={"workflow": steps_workflow(steps=1, text="next")}, timeout=10).json()
        deadline = time.monotonic() + 60
        while not any(e["event"] == "node_progress" for e in requests.get(f"{url}/v1/jobs/{job['id']}/events", timeout=10).json()["events"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert list((state / "staging").rglob("result.txt"))  # the attempt had written its file...
    finally:
        server.send_signal(signal.SIGKILL)  # ...when the server died
        server.communicate(timeout=30)
    assert not (state / "output" / "result.txt").exists()

    server = start_serve(state, port, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while (again := requests.get(f"{url}/v1/jobs/{job['id']}", timeout=10).json())["status"] in (PENDING, RUNNING):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert again["status"] == "success" and again["retried"] is True and again["attempts"] == 2
        events = [e["event"] for e in requests.get(f"{url}/v1/jobs/{job['id']}/events", timeout=10).json()["events"]]
        assert events.count("job_started") == 2 and events.index("job_retried") < len(events) - 1
        later = requests.get(f"{url}/v1/jobs/{waiting['id']}", timeout=10).json()
        assert later["number"] > again["number"]
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert b"queued again" in err
    assert sorted(p.name for p in (state / "output").iterdir()) == ["result.txt"]  # once, not twice
    assert not list((state / "staging").rglob("*.txt"))


def test_a_job_running_at_a_graceful_stop_runs_again_at_the_next_start(make_server, tmp_path):
    state = tmp_path / "state"
    first = make_server(state=state)
    job = first.submit(steps_workflow(steps=2000, delay=0.01))
    first.wait(job["id"], until=("running",))
    first.thread.stop()
    first.service.close()
    second = make_server(state=state, start_workers=False)
    again = second.get(f"/v1/jobs/{job['id']}").json()
    assert again["status"] == "pending" and again["attempts"] == 0 and again["retried"] is False


def test_a_job_cut_short_twice_fails_instead_of_looping(tmp_path):
    store = JobStore(tmp_path / "q.sqlite3")
    store.add(Job(id="a", number=0, status=PENDING, source="native", workflow={}))
    assert store.claim("a", "w1").attempts == 1
    assert store.recover() == (["a"], [])
    assert store.get("a").status == PENDING and store.get("a").retried
    assert store.claim("a", "w1").attempts == 2
    assert store.recover() == ([], ["a"])
    failed = store.get("a")
    assert failed.status == FAILED and "second time" in failed.error["message"]


def test_retention_drops_the_oldest_finished_jobs(tmp_path):
    store = JobStore(tmp_path / "q.sqlite3")
    now = time.time()
    for i in range(5):
        store.add(Job(id=f"j{i}", number=0, status="success", source="native", workflow={}, finished=now - (5 - i) * 86400))
    store.add(Job(id="waiting", number=0, status=PENDING, source="native", workflow={}))
    assert store.prune(older_than_days=3.5, keep=10) == ["j0", "j1"]
    assert store.prune(older_than_days=30, keep=2) == ["j2"]
    assert [j.id for j in store.list()] == ["waiting", "j4", "j3"]


def test_two_servers_cannot_share_one_queue(tmp_path, registry):
    from nodegraph.server.service import Service, StateInUse
    from nodegraph.server.settings import ServerSettings

    first = Service(ServerSettings(state_dir=tmp_path / "state"), registry=registry)
    with pytest.raises(StateInUse, match="--state"):
        Service(ServerSettings(state_dir=tmp_path / "state"), registry=registry)
    first.close()
    Service(ServerSettings(state_dir=tmp_path / "state"), registry=registry).close()  # free again
