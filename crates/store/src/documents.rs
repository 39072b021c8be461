//! Recorded documents: what entered each step of a run, kept when the process says
//! `record: errors` (runs that did not complete) or `record: all`, until they expire.

use std::collections::BTreeMap;

use serde::Serialize;

/// One document that entered a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedDocument {
    /// The step it entered.
    pub step: String,
    /// Its number among the documents that entered the step, from 1.
    pub seq: u64,
    /// Its properties.
    pub properties: BTreeMap<String, String>,
    /// Its bytes.
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// How many documents of a step are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepDocuments {
    /// The step.
    pub step: String,
    /// How many of its documents are kept.
    pub count: u64,
}

/// The most documents one stored chunk holds. Documents are kept in chunks of consecutive
/// documents of one step (one row each), so that keeping a large run costs a few rows, not one
/// per document.
pub(crate) const CHUNK_DOCUMENTS: usize = 256;
/// A chunk is closed once it holds this many bytes.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Consecutive documents of one step, encoded in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) step: String,
    /// The number of its first document.
    pub(crate) first: u64,
    pub(crate) count: u64,
    /// For each document: its properties as JSON and its data, each after its length (u32,
    /// little-endian).
    pub(crate) body: Vec<u8>,
}

/// `documents` as chunks: a new chunk at each change of step, break in numbering, or full chunk.
pub(crate) fn chunks(documents: &[RecordedDocument]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for d in documents {
        let props = serde_json::to_vec(&d.properties).unwrap_or_else(|_| b"{}".to_vec());
        let fits = out.last().is_some_and(|c| {
            c.step == d.step
                && c.first + c.count == d.seq
                && (c.count as usize) < CHUNK_DOCUMENTS
                && c.body.len() < CHUNK_BYTES
        });
        if !fits {
            out.push(Chunk { step: d.step.clone(), first: d.seq, count: 0, body: Vec::new() });
        }
        if let Some(chunk) = out.last_mut() {
            for part in [&props[..], &d.data[..]] {
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                chunk.body.extend_from_slice(&len.to_le_bytes());
                chunk.body.extend_from_slice(part);
            }
            chunk.count += 1;
        }
    }
    out
}

/// The documents of a chunk numbered `from` to `to` (inclusive); a damaged body yields what
/// it can.
pub(crate) fn unpack(step: &str, first: u64, body: &[u8], from: u64, to: u64) -> Vec<RecordedDocument> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut take = || -> Option<&[u8]> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let part = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(part)
    };
    let mut seq = first;
    while let (Some(props), Some(data)) = (take(), take()) {
        if seq > to {
            break;
        }
        if seq >= from {
            let properties = serde_json::from_slice(props).unwrap_or_default();
            out.push(RecordedDocument { step: step.to_owned(), seq, properties, data: data.to_vec() });
        }
        seq += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(step: &str, seq: u64, data: &[u8]) -> RecordedDocument {
        let properties = [("n".to_owned(), seq.to_string())].into_iter().collect();
        RecordedDocument { step: step.to_owned(), seq, properties, data: data.to_vec() }
    }

    #[test]
    fn chunks_round_trip() {
        let mut documents: Vec<_> = (1..=600).map(|i| doc("a", i, format!("{i}").as_bytes())).collect();
        documents.push(doc("b", 1, &[0xff, 0]));
        documents.push(doc("b", 5, b""));
        let chunks = chunks(&documents);
        let shape: Vec<(&str, u64, u64)> = chunks.iter().map(|c| (c.step.as_str(), c.first, c.count)).collect();
        assert_eq!(shape, [("a", 1, 256), ("a", 257, 256), ("a", 513, 88), ("b", 1, 1), ("b", 5, 1)]);
        let back: Vec<_> = chunks.iter().flat_map(|c| unpack(&c.step, c.first, &c.body, 0, u64::MAX)).collect();
        assert_eq!(back, documents);
        let middle = unpack("a", 257, &chunks[1].body, 300, 302);
        assert_eq!(middle.iter().map(|d| d.seq).collect::<Vec<_>>(), [300, 301, 302]);
        assert!(unpack("a", 1, &[1, 0], 0, 9).is_empty(), "a damaged body yields nothing");
    }
}
