-- The run store (schema version 2): the queue of runs, leases, nodes, fire records and run logs.
-- `runs` is rebuilt (SQLite cannot drop NOT NULL from `started_at`); foreign keys are off while
-- this runs, so run_steps keeps its rows.
CREATE TABLE runs_v2 (
    run_id          TEXT PRIMARY KEY NOT NULL,
    process         TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    scheduled_for   TEXT,
    queued_at       TEXT,
    started_at      TEXT,
    ended_at        TEXT,
    status          TEXT NOT NULL,
    documents_in    INTEGER NOT NULL DEFAULT 0,
    documents_out   INTEGER NOT NULL DEFAULT 0,
    documents_error INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    owner           TEXT,
    node            TEXT,
    content_hash    TEXT,
    overlap         TEXT NOT NULL DEFAULT 'allow',
    overrides       TEXT,
    lease_until     TEXT,
    closed_by       TEXT
);
INSERT INTO runs_v2 (run_id, process, trigger, scheduled_for, started_at, ended_at, status,
                     documents_in, documents_out, documents_error, error, owner)
    SELECT run_id, process, trigger, scheduled_for, started_at, ended_at, status,
           documents_in, documents_out, documents_error, error, owner
    FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v2 RENAME TO runs;
CREATE INDEX runs_by_sort ON runs (COALESCE(started_at, queued_at));
CREATE INDEX runs_by_process ON runs (process, status);
CREATE INDEX runs_open ON runs (status, queued_at) WHERE status IN ('QUEUED', 'INPROCESS');
CREATE TABLE fires (
    process         TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    instant         TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    PRIMARY KEY (process, schedule, instant)
) WITHOUT ROWID;
CREATE TABLE run_logs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    at              TEXT NOT NULL,
    level           TEXT NOT NULL,
    node            TEXT NOT NULL,
    message         TEXT NOT NULL
);
CREATE INDEX run_logs_by_run ON run_logs (run_id, seq);
