-- The run history of stepwise before the run store (schema version 1).
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY NOT NULL,
    process         TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    scheduled_for   TEXT,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    status          TEXT NOT NULL,
    documents_in    INTEGER NOT NULL DEFAULT 0,
    documents_out   INTEGER NOT NULL DEFAULT 0,
    documents_error INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    owner           TEXT
);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_by_process ON runs (process, started_at);
CREATE INDEX runs_in_process ON runs (status) WHERE status = 'INPROCESS';
CREATE TABLE run_steps (
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    ordinal         INTEGER NOT NULL,
    step            TEXT NOT NULL,
    documents_in    INTEGER NOT NULL,
    documents_out   INTEGER NOT NULL,
    documents_error INTEGER NOT NULL,
    millis          INTEGER NOT NULL,
    PRIMARY KEY (run_id, ordinal)
) WITHOUT ROWID;
CREATE TABLE schedule_state (
    process         TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    last_fired      TEXT NOT NULL,
    PRIMARY KEY (process, schedule)
) WITHOUT ROWID;
