"""Jobs, their events and their history, in one SQLite file (stdlib ``sqlite3``), so they survive a restart.

The queue's order is ``(priority, number)``: a normal submission gets priority = its number, one sent to
the front of the queue gets a negative priority. A job found ``running`` when the store opens was cut
short by a crash: it goes back to the front of the queue once, marked as retried; if it was already
retried, it fails with a message saying so. WAL journaling keeps writes cheap (no fsync per event).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PENDING, RUNNING, SUCCESS, FAILED, CANCELLED = "pending", "running", "success", "failed", "cancelled"
ACTIVE = (PENDING, RUNNING)
FINISHED = (SUCCESS, FAILED, CANCELLED)
MAX_ATTEMPTS = 2  # the first run and one retry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    workflow TEXT NOT NULL,
    request TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',
    vals TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, priority, number);
CREATE TABLE IF NOT EXISTS events (
    job TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job, seq)
);
"""


@dataclass
class Job:
    id: str
    number: int
    status: str
    source: str  # "native" or "comfy": the format it was submitted in
    workflow: dict[str, Any]  # the nodegraph document that runs
    request: dict[str, Any] = field(default_factory=dict)  # targets, client_id, extra_data, ComfyUI prompt, id map
    priority: int = 0
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    retried: bool = False
    worker: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


_COLUMNS = ("id", "number", "priority", "status", "source", "workflow", "request", "created", "started",
            "finished", "attempts", "retried", "worker", "outputs", "vals", "error")


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], number=row["number"], priority=row["priority"], status=row["status"], source=row["source"],
        workflow=json.loads(row["workflow"]), request=json.loads(row["request"]), created=row["created"],
        started=row["started"], finished=row["finished"], attempts=row["attempts"], retried=bool(row["retried"]),
        worker=row["worker"], outputs=json.loads(row["outputs"]), values=json.loads(row["vals"]),
        error=json.loads(row["error"]) if row["error"] else None,
    )


class JobStore:
    """Thread-safe: one connection behind a lock (writes are short; the web loop and workers share it)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- jobs ---------------------------------------------------------------------------------------

    def next_number(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(number), 0) FROM jobs").fetchone()
            return int(row[0]) + 1

    def add(self, job: Job) -> Job:
        with self._lock:
            job.number = self.next_number()
            if job.priority == 0:
                job.priority = job.number
            elif job.priority < 0:
                job.priority = -job.number
            job.created = job.created or time.time()
            self._db.execute(
                f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                (job.id, job.number, job.priority, job.status, job.source, json.dumps(job.workflow),
                 json.dumps(job.request), job.created, job.started, job.finished, job.attempts, int(job.retried),
                 job.worker, json.dumps(job.outputs), json.dumps(job.values),
                 json.dumps(job.error) if job.error else None),
            )
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def list(self, statuses: tuple[str, ...] | None = None, limit: int | None = None, newest_first: bool = True,
             offset: int = 0) -> list[Job]:
        query = "SELECT * FROM jobs"
        args: list[Any] = []
        if statuses:
            query += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            args.extend(statuses)
        query += " ORDER BY number DESC" if newest_first else " ORDER BY number"
        if limit is not None:
            query += " LIMIT ? OFFSET ?"
            args.extend([limit, offset])
        with self._lock:
            return [_row_to_job(r) for r in self._db.execute(query, args).fetchall()]

    def queue(self) -> list[Job]:
        """Running jobs, then pending ones in the order they will run."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY status = ?, priority, number",
                (RUNNING, PENDING, PENDING),
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def count(self, status: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0])

    def update(self, job_id: str, **changes: Any) -> None:
        encoded = {}
        for key, value in changes.items():
            column = "vals" if key == "values" else key
            if column not in _COLUMNS:
                raise KeyError(key)
            if column in ("outputs", "vals", "request", "workflow") or (column == "error" and value is not None):
                value = json.dumps(value)
            elif column == "retried":
                value = int(value)
            encoded[column] = value
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in encoded)} WHERE id = ?",
                             (*encoded.values(), job_id))

    def claim(self, job_id: str, worker: str) -> Job | None:
        """pending -> running, in one step; None if the job is not pending any more."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, started = ?, worker = ?, attempts = attempts + 1 WHERE id = ? AND status = ?",
                (RUNNING, time.time(), worker, job_id, PENDING),
            )
            return self.get(job_id) if cursor.rowcount == 1 else None

    def delete(self, job_ids: list[str]) -> int:
        """Remove finished or pending jobs (running ones are left: cancel them first)."""
        removed = 0
        with self._lock:
            for job_id in job_ids:
                cursor = self._db.execute("DELETE FROM jobs WHERE id = ? AND status != ?", (job_id, RUNNING))
                if cursor.rowcount:
                    self._db.execute("DELETE FROM events WHERE job = ?", (job_id,))
                    removed += 1
        return removed

    def recover(self) -> tuple[list[str], list[str]]:
        """After a crash: ``(requeued, failed)`` ids of the jobs that were running."""
        requeued, failed = [], []
        with self._lock:
            for row in self._db.execute("SELECT id, attempts, number FROM jobs WHERE status = ?", (RUNNING,)).fetchall():
                if row["attempts"] < MAX_ATTEMPTS:
                    self._db.execute("UPDATE jobs SET status = ?, retried = 1, priority = ?, worker = NULL WHERE id = ?",
                                     (PENDING, -row["number"] - 1_000_000_000, row["id"]))
                    requeued.append(row["id"])
                else:
                    error = {"message": "the server stopped while this job was running, for the second time; "
                                        "it is not retried again"}
                    self._db.execute("UPDATE jobs SET status = ?, finished = ?, error = ? WHERE id = ?",
                                     (FAILED, time.time(), json.dumps(error), row["id"]))
                    failed.append(row["id"])
        return requeued, failed

    def prune(self, older_than_days: float, keep: int) -> list[str]:
        """Drop finished jobs past the retention limits; returns their ids."""
        cutoff = time.time() - older_than_days * 86400
        with self._lock:
            old = [r[0] for r in self._db.execute(
                f"SELECT id FROM jobs WHERE status IN ({', '.join('?' * len(FINISHED))}) AND finished < ?",
                (*FINISHED, cutoff)).fetchall()]
            extra = [r[0] for r in self._db.execute(
                f"SELECT id FROM jobs WHERE status IN ({', '.join('?' * len(FINISHED))}) ORDER BY number DESC "
                "LIMIT -1 OFFSET ?", (*FINISHED, keep)).fetchall()]
        victims = sorted(set(old) | set(extra))
        self.delete(victims)
        return victims

    # -- events -------------------------------------------------------------------------------------

    def add_event(self, job_id: str, seq: int, data: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO events (job, seq, data) VALUES (?, ?, ?)",
                             (job_id, seq, json.dumps(data, default=str)))

    def events(self, job_id: str, after: int = -1, limit: int = 10_000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, data FROM events WHERE job = ? AND seq > ? ORDER BY seq LIMIT ?",
                                    (job_id, after, limit)).fetchall()
        return [{"seq": r["seq"], **json.loads(r["data"])} for r in rows]

    def last_event(self, job_id: str, kind: str) -> dict[str, Any] | None:
        """The latest event of one kind (``job_finished``, say) of a job, without reading the others."""
        with self._lock:
            row = self._db.execute("SELECT seq, data FROM events WHERE job = ? AND json_extract(data, '$.event') = ? "
                                   "ORDER BY seq DESC LIMIT 1", (job_id, kind)).fetchone()
        return {"seq": row["seq"], **json.loads(row["data"])} if row else None

    def last_seq(self, job_id: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), -1) FROM events WHERE job = ?", (job_id,)).fetchone()
        return int(row[0])
