-- The console (process format section 9): API tokens (only their SHA-256 hash is kept), the
-- audit trail of actions, and paused processes (their schedules do not fire).
CREATE TABLE tokens (
    name         TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    view_data    INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);

CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);

CREATE TABLE paused_processes (
    process   TEXT PRIMARY KEY,
    paused_by TEXT NOT NULL,
    paused_at TEXT NOT NULL
);
