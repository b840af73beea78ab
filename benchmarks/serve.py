"""Serving throughput, added latency and memory, measured against `nodegraph run` in the same session.

    python benchmarks/serve.py [--jobs 12] [--process-jobs 3] [--latency-jobs 40] [--ray]

1. Jobs per minute on the demo model (workflows/txt2img.json as shipped: 4 images of 64 px, 20 DDIM steps,
   a new seed per job): one `nodegraph run` process per job, then a real `nodegraph serve` process with 1
   and with 2 in-process workers (jobs submitted at once over HTTP, after one warm-up job per worker).
   Goal (issue 15): the server at least 5x the per-process rate.
2. The server's added latency per job: a trivial workflow (String -> Show), submitted one at a time and
   followed over the websocket; added = (submit -> job_finished) minus the engine's own run time reported
   in that event. Goal: under 20 ms.
3. Memory per idle worker: the server's resident memory, idle after warm-up, with 2 workers minus with 1;
   with --ray, the resident memory of an idle warm Ray actor (a process of its own).

The machine is shared: the load average is printed with the figures, which are ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "workflows" / "txt2img.json"
TRIVIAL = {"format": "nodegraph.workflow", "version": 1, "nodes": {
    "text": {"type": "core.String", "version": 1, "params": {"value": "hello"}},
    "show": {"type": "core.Show", "version": 1, "inputs": {"value": ["text", "value"]}}}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Server:
    def __init__(self, workers: int, home: Path, ray: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        state = Path(tempfile.mkdtemp(dir=home))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nodegraph", "serve", "--port", str(self.port), "--state", str(state), "--device", "cpu",
             *(["--ray", "local", "--ray-workers", str(workers)] if ray else ["--workers", str(workers)])],
            env=environment(home), cwd=home,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(self.url + "/v1/health", timeout=1)
                break
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    def submit(self, doc: dict, **fields) -> str:  # type: ignore[no-untyped-def]
        response = requests.post(self.url + "/v1/jobs", json={"workflow": doc, **fields}, timeout=30)
        response.raise_for_status()
        return response.json()["id"]

    def wait_all(self, ids: list[str]) -> None:
        for job_id in ids:
            while (job := requests.get(f"{self.url}/v1/jobs/{job_id}", timeout=30).json())["status"] in ("pending", "running"):
                time.sleep(0.05)
            if job["status"] != "success":
                raise RuntimeError(f"job failed: {job['error']}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def per_process_rate(jobs: int, home: Path) -> float:
    start = time.perf_counter()
    for seed in range(jobs):
        subprocess.run([sys.executable, "-m", "nodegraph", "run", str(WORKFLOW), "--set", f"sampler.seed={seed}",
                        "--device", "cpu", "--output", str(home / "per-process")], env=environment(home), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return jobs / (time.perf_counter() - start) * 60


def server_rate(workers: int, jobs: int, home: Path) -> tuple[float, float, int]:
    """(jobs per minute warm, seconds of the first job, resident bytes idle after warm-up)."""
    doc = json.loads(WORKFLOW.read_text())
    server = Server(workers, home)
    try:
        start = time.perf_counter()
        server.wait_all([server.submit(doc, set={"sampler.seed": 1000})])
        first = time.perf_counter() - start
        # Warm every worker: as many jobs at once as there are workers (one at a time would all go to the
        # worker that already holds the model).
        server.wait_all([server.submit(doc, set={"sampler.seed": 1000 + i}) for i in range(1, workers + 1)])
        time.sleep(1.0)
        idle = rss(server.process.pid)
        start = time.perf_counter()
        server.wait_all([server.submit(doc, set={"sampler.seed": seed}) for seed in range(jobs)])
        return jobs / (time.perf_counter() - start) * 60, first, idle
    finally:
        server.stop()


def added_latency(jobs: int, home: Path) -> tuple[float, float, float]:
    """(median added ms, 95th percentile added ms, median engine ms) for the trivial workflow."""
    server = Server(1, home)
    added, engine = [], []
    try:
        for i in range(jobs + 3):
            with connect(f"{server.url.replace('http', 'ws')}/v1/events?previews=none") as ws:
                start = time.perf_counter()
                job_id = server.submit(TRIVIAL, set={"text.value": f"hello {i}"})
                while True:
                    event = json.loads(ws.recv(timeout=30))
                    if event.get("job") == job_id and event["event"] == "job_finished":
                        break
                total = time.perf_counter() - start
            if i >= 3:  # the first jobs warm the server up
                added.append((total - event["seconds"]) * 1000)
                engine.append(event["seconds"] * 1000)
    finally:
        server.stop()
    added.sort()
    return statistics.median(added), added[int(len(added) * 0.95) - 1], statistics.median(engine)


def ray_actor_memory(home: Path) -> int:
    """Resident memory of one idle Ray actor (a process of its own) after a warm-up job."""
    server = Server(1, home, ray=True)
    try:
        server.wait_all([server.submit(json.loads(WORKFLOW.read_text()))])
        time.sleep(1.0)
        (worker,) = requests.get(server.url + "/v1/workers", timeout=60).json()["workers"]
        return int(worker["memory_bytes"])
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12, help="jobs per server measurement")
    parser.add_argument("--process-jobs", type=int, default=3, help="`nodegraph run` processes")
    parser.add_argument("--latency-jobs", type=int, default=40)
    parser.add_argument("--ray", action="store_true", help="also measure an idle Ray actor's memory (starts a local cluster)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        per_process = per_process_rate(args.process_jobs, home)
        one, first_one, idle_one = server_rate(1, args.jobs, home)
        two, _, idle_two = server_rate(2, args.jobs, home)
        median, p95, engine = added_latency(args.latency_jobs, home)
        actor = ray_actor_memory(home) if args.ray else None
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    print()
    print("demo model, workflows/txt2img.json (4 images, 64 px, 20 steps), jobs per minute:")
    print(f"  nodegraph run, one process per job   {per_process:7.1f}   1.0x")
    print(f"  nodegraph serve, 1 worker            {one:7.1f}   {one / per_process:.1f}x   (first job with model load: {first_one:.1f} s)")
    print(f"  nodegraph serve, 2 workers           {two:7.1f}   {two / per_process:.1f}x   ({two / one:.2f}x one worker)")
    print(f"added latency per job (String -> Show): median {median:.1f} ms, p95 {p95:.1f} ms (engine's own run: {engine:.2f} ms)")
    print(f"memory: server idle with 1 warm worker {idle_one / 2**20:.0f} MiB; each further idle warm worker "
          f"{(idle_two - idle_one) / 2**20:.0f} MiB (workers in one process share torch and the libraries)")
    if actor is not None:
        print(f"memory: an idle warm Ray actor (its own process) {actor / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
