//! Recorded documents and the overrides of runs in PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{int, uint};
use crate::StoreError;
use crate::documents::{DocumentChunks, RecordedDocument, StepDocuments, unpack};

pub(super) async fn run_overrides(pool: &PgPool, run_id: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
    let row = sqlx::query("SELECT overrides FROM runs WHERE run_id = $1").bind(run_id).fetch_optional(pool).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text: Option<String> = row.try_get("overrides")?;
    Ok(Some(crate::model::parse_overrides(text.as_deref())))
}

/// All chunks in one statement (arrays unnested), so a large run costs one round trip.
pub(super) async fn save(
    pool: &PgPool,
    run_id: &str,
    documents: DocumentChunks,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let chunks = documents.into_chunks();
    let steps: Vec<&str> = chunks.iter().map(|c| c.step.as_str()).collect();
    let firsts: Vec<i64> = chunks.iter().map(|c| int(c.first)).collect();
    let counts: Vec<i64> = chunks.iter().map(|c| int(c.count)).collect();
    let bodies: Vec<&[u8]> = chunks.iter().map(|c| c.body.as_slice()).collect();
    let encodings: Vec<Option<&str>> = chunks.iter().map(|c| c.encoding).collect();
    sqlx::query(
        "INSERT INTO run_documents (run_id, step, first_seq, count, body, expires_at, encoding)
         SELECT $1, step, first_seq, count, body, $6, encoding
         FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bytea[], $7::text[])
              AS d (step, first_seq, count, body, encoding)
         ON CONFLICT (run_id, step, first_seq) DO UPDATE
         SET count = EXCLUDED.count, body = EXCLUDED.body, expires_at = EXCLUDED.expires_at,
             encoding = EXCLUDED.encoding",
    )
    .bind(run_id)
    .bind(&steps)
    .bind(&firsts)
    .bind(&counts)
    .bind(&bodies)
    .bind(expires_at)
    .bind(&encodings)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn counts(pool: &PgPool, run_id: &str) -> Result<Vec<StepDocuments>, StoreError> {
    let rows = sqlx::query(
        "SELECT step, SUM(count)::bigint AS count FROM run_documents WHERE run_id = $1 GROUP BY step ORDER BY step",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    let counts = rows
        .iter()
        .map(|row| Ok(StepDocuments { step: row.try_get("step")?, count: uint(row.try_get("count")?) }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(counts)
}

/// Documents `offset + 1` to `offset + limit` of the step, from the chunks that hold them.
pub(super) async fn page(
    pool: &PgPool,
    run_id: &str,
    step: &str,
    offset: u64,
    limit: u64,
) -> Result<Vec<RecordedDocument>, StoreError> {
    let (from, to) = (offset.saturating_add(1), offset.saturating_add(limit));
    let rows = sqlx::query(
        "SELECT first_seq, body, encoding FROM run_documents
         WHERE run_id = $1 AND step = $2 AND first_seq <= $4 AND first_seq + count > $3
         ORDER BY first_seq",
    )
    .bind(run_id)
    .bind(step)
    .bind(int(from))
    .bind(int(to))
    .fetch_all(pool)
    .await?;
    let mut documents = Vec::new();
    for row in &rows {
        let body: Vec<u8> = row.try_get("body")?;
        let encoding: Option<String> = row.try_get("encoding")?;
        documents.extend(unpack(step, uint(row.try_get("first_seq")?), &body, encoding.as_deref(), from, to));
    }
    Ok(documents)
}
