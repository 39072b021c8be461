//! Recorded documents and the overrides of runs in PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{int, uint};
use crate::StoreError;
use crate::documents::{RecordedDocument, StepDocuments, parse_properties, properties_json};

pub(super) async fn run_overrides(pool: &PgPool, run_id: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
    let row = sqlx::query("SELECT overrides FROM runs WHERE run_id = $1").bind(run_id).fetch_optional(pool).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text: Option<String> = row.try_get("overrides")?;
    Ok(Some(crate::model::parse_overrides(text.as_deref())))
}

/// All documents in one statement (arrays unnested), so a large run costs one round trip.
pub(super) async fn save(
    pool: &PgPool,
    run_id: &str,
    documents: &[RecordedDocument],
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let steps: Vec<&str> = documents.iter().map(|d| d.step.as_str()).collect();
    let seqs: Vec<i64> = documents.iter().map(|d| int(d.seq)).collect();
    let properties: Vec<String> = documents.iter().map(|d| properties_json(&d.properties)).collect();
    let data: Vec<&[u8]> = documents.iter().map(|d| d.data.as_slice()).collect();
    sqlx::query(
        "INSERT INTO run_documents (run_id, step, seq, properties, data, expires_at)
         SELECT $1, step, seq, properties, data, $6
         FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::bytea[]) AS d (step, seq, properties, data)
         ON CONFLICT (run_id, step, seq) DO UPDATE
         SET properties = EXCLUDED.properties, data = EXCLUDED.data, expires_at = EXCLUDED.expires_at",
    )
    .bind(run_id)
    .bind(&steps)
    .bind(&seqs)
    .bind(&properties)
    .bind(&data)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn counts(pool: &PgPool, run_id: &str) -> Result<Vec<StepDocuments>, StoreError> {
    let rows =
        sqlx::query("SELECT step, COUNT(*) AS count FROM run_documents WHERE run_id = $1 GROUP BY step ORDER BY step")
            .bind(run_id)
            .fetch_all(pool)
            .await?;
    let counts = rows
        .iter()
        .map(|row| Ok(StepDocuments { step: row.try_get("step")?, count: uint(row.try_get("count")?) }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(counts)
}

pub(super) async fn page(
    pool: &PgPool,
    run_id: &str,
    step: &str,
    offset: u64,
    limit: u64,
) -> Result<Vec<RecordedDocument>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, properties, data FROM run_documents WHERE run_id = $1 AND step = $2
         ORDER BY seq LIMIT $3 OFFSET $4",
    )
    .bind(run_id)
    .bind(step)
    .bind(int(limit))
    .bind(int(offset))
    .fetch_all(pool)
    .await?;
    let documents = rows
        .iter()
        .map(|row| {
            let properties: String = row.try_get("properties")?;
            Ok(RecordedDocument {
                step: step.to_owned(),
                seq: uint(row.try_get("seq")?),
                properties: parse_properties(&properties),
                data: row.try_get("data")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(documents)
}
