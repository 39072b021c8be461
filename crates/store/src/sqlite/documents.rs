//! Recorded documents and the overrides of runs in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{immediate, int, ts, uint};
use crate::StoreError;
use crate::documents::{RecordedDocument, StepDocuments, parse_properties, properties_json};

pub(super) fn run_overrides(conn: &Connection, run_id: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
    let found: Option<Option<String>> =
        conn.query_row("SELECT overrides FROM runs WHERE run_id = ?1", params![run_id], |row| row.get(0)).optional()?;
    Ok(found.map(|text| crate::model::parse_overrides(text.as_deref())))
}

pub(super) fn save(
    conn: &mut Connection,
    run_id: &str,
    documents: &[RecordedDocument],
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO run_documents (run_id, step, seq, properties, data, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let expires_at = ts(expires_at);
        for d in documents {
            insert.execute(params![run_id, d.step, int(d.seq), properties_json(&d.properties), d.data, expires_at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn counts(conn: &Connection, run_id: &str) -> Result<Vec<StepDocuments>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT step, COUNT(*) FROM run_documents WHERE run_id = ?1 GROUP BY step ORDER BY step")?;
    let counts = stmt
        .query_map(params![run_id], |row| Ok(StepDocuments { step: row.get(0)?, count: uint(row.get(1)?) }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(counts)
}

pub(super) fn page(
    conn: &Connection,
    run_id: &str,
    step: &str,
    offset: u64,
    limit: u64,
) -> Result<Vec<RecordedDocument>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, properties, data FROM run_documents WHERE run_id = ?1 AND step = ?2
         ORDER BY seq LIMIT ?3 OFFSET ?4",
    )?;
    let documents = stmt
        .query_map(params![run_id, step, int(limit), int(offset)], |row| {
            let properties: String = row.get(1)?;
            Ok(RecordedDocument {
                step: step.to_owned(),
                seq: uint(row.get(0)?),
                properties: parse_properties(&properties),
                data: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(documents)
}
