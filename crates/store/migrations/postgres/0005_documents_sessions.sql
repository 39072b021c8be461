-- Recorded documents (a process's `record: errors | all`): what entered each step of a run, kept
-- until `expires_at` (the run's end plus the process's `retention_days`), in chunks of up to 256
-- consecutive documents of a step per row; and console sessions,
-- kept here so that any node of the cluster knows them (only the SHA-256 of a session id is kept).
CREATE TABLE run_documents (
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step       TEXT NOT NULL,
    first_seq  BIGINT NOT NULL,   -- documents first_seq .. first_seq + count - 1 of the step
    count      BIGINT NOT NULL,
    body       BYTEA NOT NULL,      -- each document's properties (JSON) and data, length-prefixed
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, step, first_seq)
);
CREATE INDEX run_documents_by_expiry ON run_documents (expires_at);

CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    token_name TEXT NOT NULL REFERENCES tokens (name) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL
);
