"""Persistent job records: SQLite (WAL) in the state directory, so jobs survive a restart."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ACTIVE_STATES = ("queued", "running")
TERMINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    pid INTEGER,
    progress TEXT NOT NULL DEFAULT '{}',
    version TEXT,
    parent TEXT,
    metrics TEXT,
    decision TEXT,
    error TEXT,
    log_tail TEXT NOT NULL DEFAULT '',
    pid_started TEXT,
    phase TEXT
);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""
JSON_COLUMNS = ("params", "progress", "metrics", "decision")
# Columns added after the first release: a database made before them gains them at start-up.
ADDED_COLUMNS = {"pid_started": "TEXT", "phase": "TEXT"}


class JobRecord(BaseModel):
    id: str
    state: str
    params: dict[str, Any]
    idempotency_key: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    pid: int | None
    progress: dict[str, Any]
    version: str | None
    parent: str | None
    metrics: dict[str, Any] | None
    decision: dict[str, Any] | None
    error: str | None
    log_tail: str
    pid_started: str | None = None  # the process's start time: a reused PID is not the job's
    phase: str | None = None  # queued, training, evaluating, publishing, then None at the end


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobDatabase:
    """A thin, thread-safe layer over one SQLite connection."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _row(self, row: sqlite3.Row | None) -> JobRecord | None:
        if row is None:
            return None
        data = dict(row)
        for column in JSON_COLUMNS:
            data[column] = json.loads(data[column]) if data[column] is not None else None
        return JobRecord.model_validate(data)

    def create(self, params: dict[str, Any], idempotency_key: str | None, parent: str) -> JobRecord:
        job_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, state, params, idempotency_key, created_at, parent, phase) "
                "VALUES (?, 'queued', ?, ?, ?, ?, 'queued')",
                (job_id, json.dumps(params), idempotency_key, now(), parent),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._row(row)

    def by_idempotency_key(self, key: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE idempotency_key = ?", (key,)
            ).fetchone()
        return self._row(row)

    def active(self) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE state IN ('queued', 'running') "
                "ORDER BY created_at LIMIT 1"
            ).fetchone()
        return self._row(row)

    def recent(self, limit: int = 100) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [job for job in map(self._row, rows) if job is not None]

    def update(self, job_id: str, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = [json.dumps(v) if k in JSON_COLUMNS else v for k, v in fields.items()]
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values, job_id))  # noqa: S608 - names are ours

    def add_event(self, job_id: str, event: dict[str, Any]) -> int:
        with self._lock:
            (last,) = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM job_events WHERE job_id = ?", (job_id,)
            ).fetchone()
            self._db.execute(
                "INSERT INTO job_events (job_id, seq, data) VALUES (?, ?, ?)",
                (job_id, last + 1, json.dumps(event)),
            )
        return int(last) + 1

    def events_after(self, job_id: str, seq: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, data FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                (job_id, seq),
            ).fetchall()
        return [(int(row["seq"]), json.loads(row["data"])) for row in rows]

    def mark_interrupted(self) -> list[JobRecord]:
        """At start-up: jobs left queued or running by a previous process are interrupted."""
        stale = [job for job in self.recent(limit=1000) if job.state in ACTIVE_STATES]
        for job in stale:
            self.update(
                job.id,
                state="interrupted",
                phase=None,
                finished_at=now(),
                error="the server stopped while this job was running",
            )
            self.add_event(job.id, {"event": "state", "state": "interrupted"})
        return stale
