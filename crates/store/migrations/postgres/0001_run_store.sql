-- The run store on PostgreSQL (process format section 8). Applied by sqlx's migrator under an
-- advisory lock, so nodes starting at once migrate once.
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    process         TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    scheduled_for   TIMESTAMPTZ,
    queued_at       TIMESTAMPTZ,
    started_at      TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ,
    status          TEXT NOT NULL,
    documents_in    BIGINT NOT NULL DEFAULT 0,
    documents_out   BIGINT NOT NULL DEFAULT 0,
    documents_error BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    owner           TEXT,
    node            TEXT,
    content_hash    TEXT,
    overlap         TEXT NOT NULL DEFAULT 'allow',
    overrides       TEXT,
    lease_until     TIMESTAMPTZ,
    closed_by       TEXT,
    sort_at         TIMESTAMPTZ GENERATED ALWAYS AS (COALESCE(started_at, queued_at)) STORED
);
CREATE INDEX runs_by_sort ON runs (sort_at DESC, run_id DESC);
CREATE INDEX runs_by_process ON runs (process, status);
CREATE INDEX runs_open ON runs (status, queued_at) WHERE status IN ('QUEUED', 'INPROCESS');
CREATE INDEX runs_leased ON runs (lease_until) WHERE status = 'INPROCESS';

CREATE TABLE run_steps (
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    ordinal         INTEGER NOT NULL,
    step            TEXT NOT NULL,
    documents_in    BIGINT NOT NULL,
    documents_out   BIGINT NOT NULL,
    documents_error BIGINT NOT NULL,
    millis          BIGINT NOT NULL,
    PRIMARY KEY (run_id, ordinal)
);

-- One row per fire of a schedule: the primary key makes a second record of a fire impossible.
CREATE TABLE fires (
    process         TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    instant         TIMESTAMPTZ NOT NULL,
    run_id          TEXT NOT NULL,
    PRIMARY KEY (process, schedule, instant)
);

CREATE TABLE schedule_state (
    process         TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    last_fired      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (process, schedule)
);

CREATE TABLE run_logs (
    seq             BIGSERIAL PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    at              TIMESTAMPTZ NOT NULL,
    level           TEXT NOT NULL,
    node            TEXT NOT NULL,
    message         TEXT NOT NULL
);
CREATE INDEX run_logs_by_run ON run_logs (run_id, seq);
