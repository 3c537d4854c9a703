"""The local backend's records: one SQLite database in WAL mode, shared by every process.

Kernels, the CLI, the server and job supervisors all open it; writes that must not interleave
(scheduling, status transitions) run in `BEGIN IMMEDIATE` transactions.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...exceptions import BackendUnavailable
from ...models import (
    Event,
    JobInfo,
    JobQuery,
    JobStatus,
    ReplicaInfo,
    ReplicaStatus,
    TrainSpec,
    from_dict,
)
from ..common.replica_states import settle_all
from .disk import disk_note

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    replicas TEXT NOT NULL,
    cpu_demand REAL NOT NULL,
    gpu_demand INTEGER NOT NULL,
    gpu_ids TEXT NOT NULL DEFAULT '[]',
    python TEXT NOT NULL,
    supervisor_pid INTEGER,
    supervisor_started REAL,
    dispatched REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    machine TEXT,
    restarts INTEGER NOT NULL DEFAULT 0,
    not_before REAL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created DESC);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    time REAL NOT NULL,
    type TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, time);
CREATE TABLE IF NOT EXISTS labels (
    job_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS labels_key ON labels (key, value);
"""

#: `PRAGMA user_version` of the current schema; older stores are brought up to it on open.
SCHEMA_VERSION = 3
#: Columns added since version 1. Version 2 records with each job the slots of the backend that
#: queued it (JSON: `cpu_slots`, `gpu_ids`), so that whoever dispatches it later starts it as
#: that backend would have; and how often a job was restarted after losing its supervisor, and
#: not before when it may start again. Version 3: the interpreter of each role whose image maps
#: to one of its own (JSON, role to path; the others run `python`), and the process that
#: dispatched the job (JSON: `pid`, `started`), so a job whose dispatcher died before it started
#: the supervisor is queued again at once.
ADDED_COLUMNS = {
    "machine": "ALTER TABLE jobs ADD COLUMN machine TEXT",
    "restarts": "ALTER TABLE jobs ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0",
    "not_before": "ALTER TABLE jobs ADD COLUMN not_before REAL",
    "role_pythons": "ALTER TABLE jobs ADD COLUMN role_pythons TEXT NOT NULL DEFAULT '{}'",
    "dispatcher": "ALTER TABLE jobs ADD COLUMN dispatcher TEXT",
}
#: Version 1 indexes labels in their own table; fill it from the specs of older stores.
FILL_LABELS = """
INSERT OR IGNORE INTO labels (job_id, key, value)
SELECT jobs.id, each.key, each.value FROM jobs, json_each(jobs.spec, '$.labels') AS each
"""

ACTIVE = (JobStatus.STARTING.value, JobStatus.RUNNING.value, JobStatus.RETRYING.value)
QUEUED = JobStatus.QUEUED.value


class JobStore:
    """Typed access to the jobs and events tables; one connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        try:
            # SQLite gives its -wal and -shm files the database's mode: the owner's only. Only a
            # missing file is opened here: closing a descriptor of the database drops every lock
            # this process's connections hold on it (POSIX locks are per process), and the next
            # process to close would take itself for the last, and delete the WAL they still read.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as e:
            raise self._unopened(e) from e
        try:
            self._migrate()
        except sqlite3.Error as e:
            raise self._unopened(e) from e

    def _migrate(self) -> None:
        conn = self._conn()
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if version < 1:
                    db.execute(FILL_LABELS)
                columns = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
                for column, statement in ADDED_COLUMNS.items():
                    if column not in columns:
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _unopened(self, error: Exception) -> BackendUnavailable:
        note = disk_note(Path(self.path).parent)
        return BackendUnavailable(f"cannot open the job store {self.path}: {error}{note}")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as e:
                raise self._unopened(e) from e
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # --- jobs ----------------------------------------------------------------------------------

    def insert(
        self, row: dict[str, Any], labels: Mapping[str, str], db: sqlite3.Connection | None = None
    ) -> None:
        """Add a job record and its labels (in `db`'s transaction, else in one of its own);
        `sqlite3.IntegrityError` if the id is taken."""
        if db is None:
            with self.transaction() as own:
                return self.insert(row, labels, own)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        db.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", list(row.values()))
        db.executemany(
            "INSERT INTO labels (job_id, key, value) VALUES (?, ?, ?)",
            [(row["id"], key, value) for key, value in labels.items()],
        )

    def row(self, job_id: str) -> sqlite3.Row | None:
        return self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def status_row(self, job_id: str) -> sqlite3.Row | None:
        """Just the status and supervisor of a job (no spec to decode)."""
        sql = "SELECT status, supervisor_pid, supervisor_started FROM jobs WHERE id = ?"
        return self._conn().execute(sql, (job_id,)).fetchone()

    def update(self, job_id: str, db: sqlite3.Connection | None = None, **fields: Any) -> None:
        """Set columns of one job (JSON-encoding lists and dicts)."""
        values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in fields.values()]
        sets = ", ".join(f"{k} = ?" for k in fields)
        (db or self._conn()).execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*values, job_id])

    def finish(
        self,
        db: sqlite3.Connection,
        job_id: str,
        status: JobStatus,
        reason: str,
        *,
        event: str,
        message: str | None = None,
        type: str = "Warning",
        **fields: Any,
    ) -> bool:
        """Record a job's end in the caller's transaction: status, reason, time and the event
        saying why; nothing if it had already ended. Whether it was recorded."""
        row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or JobStatus(row["status"]).terminal:
            return False
        self.update(job_id, db, status=status.value, reason=reason, finished=time.time(), **fields)
        self.add_event(job_id, event, message or reason, type, db=db)
        return True

    def rows_with_status(
        self,
        statuses: Sequence[str],
        db: sqlite3.Connection | None = None,
        limit: int | None = None,
    ) -> list[sqlite3.Row]:
        marks = ", ".join("?" for _ in statuses)
        sql = f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return (db or self._conn()).execute(sql, list(statuses)).fetchall()

    def query(self, query: JobQuery) -> tuple[list[sqlite3.Row], int]:
        """One page of jobs matching the query, newest first, and the count of all matches."""
        where: list[str] = []
        params: list[Any] = []
        if query.status:
            where.append(f"status IN ({', '.join('?' for _ in query.status)})")
            params += [s.value for s in query.status]
        if query.name:
            where.append("(name LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')")
            pattern = "%" + query.name.replace("\\", "\\\\").replace("%", "\\%") + "%"
            params += [pattern, pattern]
        for key, value in query.labels.items():
            where.append("id IN (SELECT job_id FROM labels WHERE key = ? AND value = ?)")
            params += [key, value]
        for key in query.without_labels:
            where.append("id NOT IN (SELECT job_id FROM labels WHERE key = ?)")
            params.append(key)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        conn = self._conn()
        total = conn.execute(f"SELECT COUNT(*) FROM jobs {clause}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT * FROM jobs {clause} ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        ).fetchall()
        return rows, total

    def remove(self, job_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM labels WHERE job_id = ?", (job_id,))

    # --- events --------------------------------------------------------------------------------

    def add_event(
        self,
        job_id: str,
        reason: str,
        message: str,
        type: str = "Normal",
        db: sqlite3.Connection | None = None,
    ) -> None:
        (db or self._conn()).execute(
            "INSERT INTO events (job_id, time, type, reason, message) VALUES (?, ?, ?, ?, ?)",
            (job_id, time.time(), type, reason, message),
        )

    def events(self, job_id: str) -> list[Event]:
        rows = self._conn().execute(
            "SELECT * FROM events WHERE job_id = ? ORDER BY time, rowid", (job_id,)
        )
        return [Event(r["time"], r["reason"], r["message"], r["type"]) for r in rows]


def row_to_info(row: sqlite3.Row) -> JobInfo:
    """A job record as the model every caller sees."""
    replicas = tuple(
        ReplicaInfo(
            name=r["name"],
            status=ReplicaStatus(r["status"]),
            exit_code=r.get("exit_code"),
            gpus=tuple(r.get("gpus", ())),
        )
        for r in json.loads(row["replicas"])
    )
    status = JobStatus(row["status"])
    return JobInfo(
        id=row["id"],
        name=row["name"],
        status=status,
        reason=row["reason"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        attempt=row["attempt"],
        replicas=settle_all(status, replicas),
        spec=from_dict(TrainSpec, json.loads(row["spec"])),
    )
