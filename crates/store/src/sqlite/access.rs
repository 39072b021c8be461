//! Tokens, the audit trail and paused processes in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use super::{parse_opt_ts, parse_ts, ts};
use crate::StoreError;
use crate::access::{AuditEntry, NewToken, Paused, Revoked, Role, TokenRecord};

const TOKEN_COLUMNS: &str = "name, role, view_data, created_at, last_used_at";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let role: String = row.get(1)?;
    Ok(TokenRecord {
        name: row.get(0)?,
        role: role.parse::<Role>().map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, e.into()))?,
        view_data: row.get(2)?,
        created_at: parse_ts(row, 3)?,
        last_used_at: parse_opt_ts(row, 4)?,
    })
}

pub(super) fn create_token(conn: &Connection, token: &NewToken) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (name, hash, role, view_data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token.name, token.hash, token.role.as_str(), token.view_data, ts(token.created_at)],
    )
    .map_err(|error| match &error {
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation => {
            StoreError::DuplicateToken(token.name.clone())
        }
        _ => StoreError::Sqlite(error),
    })?;
    Ok(())
}

pub(super) fn create_first_token(conn: &Connection, token: &NewToken) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO tokens (name, hash, role, view_data, created_at)
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM tokens)",
        params![token.name, token.hash, token.role.as_str(), token.view_data, ts(token.created_at)],
    )?;
    Ok(inserted == 1)
}

pub(super) fn tokens(conn: &Connection) -> Result<Vec<TokenRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name"))?;
    let tokens = stmt.query_map([], token_from_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(tokens)
}

pub(super) fn revoke_token(conn: &mut Connection, name: &str, keep_an_admin: bool) -> Result<Revoked, StoreError> {
    // One connection, one transaction: nothing else runs between the check and the delete.
    let tx = conn.transaction()?;
    let admins: Vec<String> = {
        let mut stmt = tx.prepare("SELECT name FROM tokens WHERE role = ?1")?;
        stmt.query_map(params![Role::Admin.as_str()], |row| row.get(0))?.collect::<Result<_, _>>()?
    };
    if keep_an_admin && admins.len() == 1 && admins[0] == name {
        return Ok(Revoked::LastAdmin);
    }
    let deleted = tx.execute("DELETE FROM tokens WHERE name = ?1", params![name])?;
    tx.commit()?;
    Ok(if deleted > 0 { Revoked::Revoked } else { Revoked::NoSuchToken })
}

pub(super) fn authenticate(
    conn: &Connection,
    hash: &str,
    at: DateTime<Utc>,
) -> Result<Option<TokenRecord>, StoreError> {
    let found = conn
        .query_row(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"), params![hash], token_from_row)
        .optional()?;
    found.map(|token| record_use(conn, token, at)).transpose()
}

/// Records that `token` was used at `at`, when it was not already within
/// [`crate::model::LAST_USED_GRANULARITY`].
fn record_use(conn: &Connection, mut token: TokenRecord, at: DateTime<Utc>) -> Result<TokenRecord, StoreError> {
    if crate::model::use_worth_recording(token.last_used_at, at) {
        conn.prepare_cached("UPDATE tokens SET last_used_at = ?1 WHERE name = ?2")?
            .execute(params![ts(at), token.name])?;
        token.last_used_at = Some(at);
    }
    Ok(token)
}

pub(super) fn record_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            ts(entry.at),
            entry.actor,
            entry.action,
            crate::model::text(&entry.target),
            entry.detail.as_deref().map(crate::model::text)
        ],
    )?;
    Ok(())
}

pub(super) fn audit(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare("SELECT at, actor, action, target, detail FROM audit ORDER BY seq DESC LIMIT ?1")?;
    let entries = stmt
        .query_map(params![limit], |row| {
            Ok(AuditEntry {
                at: parse_ts(row, 0)?,
                actor: row.get(1)?,
                action: row.get(2)?,
                target: row.get(3)?,
                detail: row.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entries)
}

pub(super) fn set_paused(
    conn: &Connection,
    process: &str,
    by: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    match by {
        Some(by) => conn.execute(
            "INSERT INTO paused_processes (process, paused_by, paused_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![process, by, ts(at)],
        )?,
        None => conn.execute("DELETE FROM paused_processes WHERE process = ?1", params![process])?,
    };
    Ok(())
}

pub(super) fn paused(conn: &Connection) -> Result<Vec<Paused>, StoreError> {
    let mut stmt = conn.prepare("SELECT process, paused_by, paused_at FROM paused_processes ORDER BY process")?;
    let paused = stmt
        .query_map([], |row| Ok(Paused { process: row.get(0)?, paused_by: row.get(1)?, paused_at: parse_ts(row, 2)? }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(paused)
}

pub(super) fn open_session(
    conn: &Connection,
    hash: &str,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sessions (hash, token_name, expires_at) VALUES (?1, ?2, ?3)",
        params![hash, token, ts(expires_at)],
    )?;
    Ok(())
}

/// The session's token, joined so that a revoked token has no session left.
pub(super) fn session(conn: &Connection, hash: &str, now: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
    let columns = TOKEN_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {columns} FROM sessions s JOIN tokens t ON t.name = s.token_name WHERE s.hash = ?1 AND s.expires_at > ?2"
    );
    let found = conn.prepare_cached(&sql)?.query_row(params![hash, ts(now)], token_from_row).optional()?;
    // A session stands for its token: using it is using the token.
    found.map(|token| record_use(conn, token, now)).transpose()
}

pub(super) fn close_session(conn: &Connection, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute("DELETE FROM sessions WHERE hash = ?1 OR expires_at <= ?2", params![hash, ts(now)])?;
    Ok(())
}
