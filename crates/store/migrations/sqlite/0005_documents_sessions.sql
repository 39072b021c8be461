-- Recorded documents (a process's `record: errors | all`): what entered each step of a run, kept
-- until `expires_at` (the run's end plus the process's `retention_days`); and console sessions,
-- kept here so that any node of a cluster knows them (only the SHA-256 of a session id is kept).
CREATE TABLE run_documents (
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step       TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    properties TEXT NOT NULL,
    data       BLOB NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (run_id, step, seq)
);
CREATE INDEX run_documents_by_expiry ON run_documents (expires_at);

CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    token_name TEXT NOT NULL REFERENCES tokens (name) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
);
