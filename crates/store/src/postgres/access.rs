//! Tokens, the audit trail and paused processes in PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use crate::StoreError;
use crate::access::{AuditEntry, NewToken, Paused, Revoked, Role, TokenRecord};

const TOKEN_COLUMNS: &str = "name, role, view_data, created_at, last_used_at";

fn token_from_row(row: &PgRow) -> Result<TokenRecord, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(TokenRecord {
        name: row.try_get("name")?,
        role: role.parse::<Role>().map_err(|e| sqlx::Error::Decode(e.into()))?,
        view_data: row.try_get("view_data")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

pub(super) async fn create_token(pool: &PgPool, token: &NewToken) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO tokens (name, hash, role, view_data, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(&token.name)
    .bind(&token.hash)
    .bind(token.role.as_str())
    .bind(token.view_data)
    .bind(token.created_at)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::DuplicateToken(token.name.clone()));
    }
    Ok(())
}

pub(super) async fn create_first_token(pool: &PgPool, token: &NewToken) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    // Nodes starting at once on an empty store: one of them makes the first token.
    sqlx::query("LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    let inserted = sqlx::query(
        "INSERT INTO tokens (name, hash, role, view_data, created_at)
         SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM tokens)",
    )
    .bind(&token.name)
    .bind(&token.hash)
    .bind(token.role.as_str())
    .bind(token.view_data)
    .bind(token.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(inserted.rows_affected() == 1)
}

pub(super) async fn tokens(pool: &PgPool) -> Result<Vec<TokenRecord>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name")).fetch_all(pool).await?;
    Ok(rows.iter().map(token_from_row).collect::<Result<_, _>>()?)
}

pub(super) async fn revoke_token(pool: &PgPool, name: &str, keep_an_admin: bool) -> Result<Revoked, StoreError> {
    let mut tx = pool.begin().await?;
    // The admin tokens stay locked until the delete commits: a second revoke waits, then sees
    // what is left.
    let admins: Vec<String> = sqlx::query_scalar("SELECT name FROM tokens WHERE role = $1 ORDER BY name FOR UPDATE")
        .bind(Role::Admin.as_str())
        .fetch_all(&mut *tx)
        .await?;
    if keep_an_admin && admins.len() == 1 && admins[0] == name {
        return Ok(Revoked::LastAdmin);
    }
    let done = sqlx::query("DELETE FROM tokens WHERE name = $1").bind(name).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(if done.rows_affected() > 0 { Revoked::Revoked } else { Revoked::NoSuchToken })
}

pub(super) async fn authenticate(
    pool: &PgPool,
    hash: &str,
    at: DateTime<Utc>,
) -> Result<Option<TokenRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"))
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    let Some(token) = row.as_ref().map(token_from_row).transpose()? else {
        return Ok(None);
    };
    Ok(Some(record_use(pool, token, at).await?))
}

/// Records that `token` was used at `at`, when it was not already within
/// [`crate::model::LAST_USED_GRANULARITY`].
async fn record_use(pool: &PgPool, mut token: TokenRecord, at: DateTime<Utc>) -> Result<TokenRecord, StoreError> {
    if crate::model::use_worth_recording(token.last_used_at, at) {
        sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE name = $1")
            .bind(&token.name)
            .bind(at)
            .execute(pool)
            .await?;
        token.last_used_at = Some(at);
    }
    Ok(token)
}

pub(super) async fn record_audit<'e>(pool: impl sqlx::PgExecutor<'e>, entry: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(crate::model::text(&entry.target))
        .bind(entry.detail.as_deref().map(crate::model::text))
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn audit(pool: &PgPool, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query("SELECT at, actor, action, target, detail FROM audit ORDER BY seq DESC LIMIT $1")
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    let entries = rows
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(entries)
}

pub(super) async fn set_paused(
    pool: &PgPool,
    process: &str,
    by: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let query = match by {
        Some(by) => sqlx::query(
            "INSERT INTO paused_processes (process, paused_by, paused_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(process)
        .bind(by)
        .bind(at),
        None => sqlx::query("DELETE FROM paused_processes WHERE process = $1").bind(process),
    };
    query.execute(pool).await?;
    Ok(())
}

pub(super) async fn paused(pool: &PgPool) -> Result<Vec<Paused>, StoreError> {
    let rows = sqlx::query("SELECT process, paused_by, paused_at FROM paused_processes ORDER BY process")
        .fetch_all(pool)
        .await?;
    let paused = rows
        .iter()
        .map(|r| {
            Ok(Paused {
                process: r.try_get("process")?,
                paused_by: r.try_get("paused_by")?,
                paused_at: r.try_get("paused_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(paused)
}

pub(super) async fn open_session(
    pool: &PgPool,
    hash: &str,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO sessions (hash, token_name, expires_at) VALUES ($1, $2, $3)")
        .bind(hash)
        .bind(token)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// The session's token, joined so that a revoked token has no session left.
pub(super) async fn session(pool: &PgPool, hash: &str, now: DateTime<Utc>) -> Result<Option<TokenRecord>, StoreError> {
    let columns = TOKEN_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
    let row = sqlx::query(&format!(
        "SELECT {columns} FROM sessions s JOIN tokens t ON t.name = s.token_name WHERE s.hash = $1 AND s.expires_at > $2"
    ))
    .bind(hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some(token) = row.as_ref().map(token_from_row).transpose()? else {
        return Ok(None);
    };
    // A session stands for its token: using it is using the token.
    Ok(Some(record_use(pool, token, now).await?))
}

pub(super) async fn close_session(pool: &PgPool, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE hash = $1 OR expires_at <= $2").bind(hash).bind(now).execute(pool).await?;
    Ok(())
}
