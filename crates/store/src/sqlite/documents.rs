//! Recorded documents and the overrides of runs in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{immediate, int, ts, uint};
use crate::StoreError;
use crate::documents::{Chunk, RecordedDocument, StepDocuments, unpack};

pub(super) fn run_overrides(conn: &Connection, run_id: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
    let found: Option<Option<String>> =
        conn.query_row("SELECT overrides FROM runs WHERE run_id = ?1", params![run_id], |row| row.get(0)).optional()?;
    Ok(found.map(|text| crate::model::parse_overrides(text.as_deref())))
}

pub(super) fn save(
    conn: &mut Connection,
    run_id: &str,
    chunks: &[Chunk],
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO run_documents (run_id, step, first_seq, count, body, expires_at, encoding)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let expires_at = ts(expires_at);
        for c in chunks {
            insert.execute(params![run_id, c.step, int(c.first), int(c.count), c.body, expires_at, c.encoding])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn counts(conn: &Connection, run_id: &str) -> Result<Vec<StepDocuments>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT step, SUM(count) FROM run_documents WHERE run_id = ?1 GROUP BY step ORDER BY step")?;
    let counts = stmt
        .query_map(params![run_id], |row| Ok(StepDocuments { step: row.get(0)?, count: uint(row.get(1)?) }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(counts)
}

/// Documents `offset + 1` to `offset + limit` of the step, from the chunks that hold them.
pub(super) fn page(
    conn: &Connection,
    run_id: &str,
    step: &str,
    offset: u64,
    limit: u64,
) -> Result<Vec<RecordedDocument>, StoreError> {
    let (from, to) = (offset.saturating_add(1), offset.saturating_add(limit));
    let mut stmt = conn.prepare(
        "SELECT first_seq, body, encoding FROM run_documents
         WHERE run_id = ?1 AND step = ?2 AND first_seq <= ?4 AND first_seq + count > ?3
         ORDER BY first_seq",
    )?;
    let mut rows = stmt.query(params![run_id, step, int(from), int(to)])?;
    let mut documents = Vec::new();
    while let Some(row) = rows.next()? {
        let body: Vec<u8> = row.get(1)?;
        let encoding: Option<String> = row.get(2)?;
        documents.extend(unpack(step, uint(row.get(0)?), &body, encoding.as_deref(), from, to));
    }
    Ok(documents)
}
