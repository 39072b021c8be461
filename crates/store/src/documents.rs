//! Recorded documents: what entered each step of a run, and the error documents each step made,
//! kept when the process says `record: errors` (runs that did not complete cleanly) or
//! `record: all`, until they expire.

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

/// What a step's error documents are kept under, next to the documents that entered it: step
/// ids are `[a-z0-9_]+`, so the suffix never meets a real step.
pub const ERRORS_SUFFIX: &str = ":errors";

/// The key the error documents of `step` are kept under.
pub fn error_documents_key(step: &str) -> String {
    format!("{step}{ERRORS_SUFFIX}")
}

/// The step whose error documents `key` holds, if it is such a key.
pub fn error_documents_of(key: &str) -> Option<&str> {
    key.strip_suffix(ERRORS_SUFFIX)
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

/// How a chunk's body is kept: `None`, as encoded; [`LZ4`], compressed (LZ4 block, its size
/// first).
pub(crate) const LZ4: &str = "lz4";

/// The largest chunk body there can be: a full chunk, then one more document as large as a
/// run may keep (`stepwise`'s limit is 256 MiB), and its properties.
const MAX_CHUNK_BODY: usize = CHUNK_BYTES + (512 << 20);

/// The size an LZ4 body says it decompresses to.
fn lz4_size(body: &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize)
}

/// Consecutive documents of one step, encoded in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) step: String,
    /// The number of its first document.
    pub(crate) first: u64,
    pub(crate) count: u64,
    /// For each document: its properties as JSON and its data, each after its length (u32,
    /// little-endian); compressed as `encoding` says once the chunk is full.
    pub(crate) body: Vec<u8>,
    pub(crate) encoding: Option<&'static str>,
}

/// Documents to keep, encoded as the store keeps them: in chunks of consecutive documents of
/// one step (one row each), compressed as each chunk fills. Build it document by document
/// ([`DocumentChunks::push`]) so that keeping a large run copies each document once.
#[derive(Debug, Default)]
pub struct DocumentChunks {
    chunks: Vec<Chunk>,
    /// The body of the last chunk while it fills (reused from chunk to chunk).
    open: Vec<u8>,
    documents: u64,
}

impl DocumentChunks {
    pub fn new() -> DocumentChunks {
        DocumentChunks::default()
    }

    /// Document `seq` of `step`: its properties as a JSON object, and its data.
    pub fn push(&mut self, step: &str, seq: u64, properties_json: &[u8], data: &[u8]) {
        let fits = self.chunks.last().is_some_and(|c| {
            c.encoding.is_none()
                && c.step == step
                && c.first + c.count == seq
                && (c.count as usize) < CHUNK_DOCUMENTS
                && self.open.len() < CHUNK_BYTES
        });
        if !fits {
            self.seal_last();
            self.chunks.push(Chunk { step: step.to_owned(), first: seq, count: 0, body: Vec::new(), encoding: None });
        }
        for part in [properties_json, data] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            self.open.extend_from_slice(&len.to_le_bytes());
            self.open.extend_from_slice(part);
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.count += 1;
        }
        self.documents += 1;
    }

    /// `documents`, in order.
    pub fn from_documents(documents: &[RecordedDocument]) -> DocumentChunks {
        let mut out = DocumentChunks::new();
        for d in documents {
            let props = serde_json::to_vec(&d.properties).unwrap_or_else(|_| b"{}".to_vec());
            out.push(&d.step, d.seq, &props, &d.data);
        }
        out
    }

    /// Appends `other`'s documents (encoded apart, say on another thread) after these.
    pub fn append(&mut self, mut other: DocumentChunks) {
        self.seal_last();
        other.seal_last();
        self.chunks.append(&mut other.chunks);
        self.documents += other.documents;
    }

    /// How many documents it holds.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// The chunks, each compressed.
    pub(crate) fn into_chunks(mut self) -> Vec<Chunk> {
        self.seal_last();
        self.chunks
    }

    fn seal_last(&mut self) {
        if let Some(chunk) = self.chunks.last_mut().filter(|c| c.encoding.is_none()) {
            chunk.body = lz4_flex::compress_prepend_size(&self.open);
            chunk.encoding = Some(LZ4);
            self.open.clear();
        }
    }
}

/// The documents of a chunk numbered `from` to `to` (inclusive); a damaged body yields what
/// it can.
pub(crate) fn unpack(
    step: &str,
    first: u64,
    body: &[u8],
    encoding: Option<&str>,
    from: u64,
    to: u64,
) -> Vec<RecordedDocument> {
    let decompressed;
    let body = match encoding {
        None => body,
        // The size comes first: a damaged one must not make a huge allocation.
        Some(LZ4) if lz4_size(body).is_none_or(|size| size > MAX_CHUNK_BODY) => return Vec::new(),
        Some(LZ4) => match lz4_flex::decompress_size_prepended(body) {
            Ok(plain) => {
                decompressed = plain;
                &decompressed
            }
            Err(_) => return Vec::new(),
        },
        Some(_) => return Vec::new(),
    };
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
    fn chunks_round_trip_compressed() {
        let mut documents: Vec<_> = (1..=600).map(|i| doc("a", i, format!("{i}").as_bytes())).collect();
        documents.push(doc("b", 1, &[0xff, 0]));
        documents.push(doc("b", 5, b""));
        let encoded = DocumentChunks::from_documents(&documents);
        assert_eq!(encoded.documents(), 602);
        let chunks = encoded.into_chunks();
        let shape: Vec<(&str, u64, u64)> = chunks.iter().map(|c| (c.step.as_str(), c.first, c.count)).collect();
        assert_eq!(shape, [("a", 1, 256), ("a", 257, 256), ("a", 513, 88), ("b", 1, 1), ("b", 5, 1)]);
        assert!(chunks.iter().all(|c| c.encoding == Some(LZ4)));
        let unpacked = |c: &Chunk, from, to| unpack(&c.step, c.first, &c.body, c.encoding, from, to);
        let back: Vec<_> = chunks.iter().flat_map(|c| unpacked(c, 0, u64::MAX)).collect();
        assert_eq!(back, documents);
        let middle = unpacked(&chunks[1], 300, 302);
        assert_eq!(middle.iter().map(|d| d.seq).collect::<Vec<_>>(), [300, 301, 302]);
        assert!(unpack("a", 1, &[1, 0], None, 0, 9).is_empty(), "a damaged body yields nothing");
        assert!(unpack("a", 1, &[9, 0, 0, 0, 1], Some(LZ4), 0, 9).is_empty(), "a damaged body yields nothing");
        assert!(unpack("a", 1, &[255, 255, 255, 255, 1], Some(LZ4), 0, 9).is_empty(), "no 4 GiB allocation");
        assert!(unpack("a", 1, &chunks[0].body, Some("zip"), 0, 9).is_empty(), "an unknown encoding, nothing");
    }

    #[test]
    fn parts_encoded_apart_append_in_order() {
        let documents: Vec<_> = (1..=300).map(|i| doc("a", i, format!("{i}").as_bytes())).collect();
        let mut encoded = DocumentChunks::from_documents(&documents[..100]);
        encoded.append(DocumentChunks::from_documents(&documents[100..]));
        assert_eq!(encoded.documents(), 300);
        let chunks = encoded.into_chunks();
        let shape: Vec<(u64, u64)> = chunks.iter().map(|c| (c.first, c.count)).collect();
        assert_eq!(shape, [(1, 100), (101, 200)]);
        let back: Vec<_> =
            chunks.iter().flat_map(|c| unpack(&c.step, c.first, &c.body, c.encoding, 0, u64::MAX)).collect();
        assert_eq!(back, documents);
    }

    #[test]
    fn json_documents_compress() {
        let documents: Vec<_> = (1..=256)
            .map(|i| doc("a", i, format!(r#"{{"id":{i},"email":"user.{i}@example.com","active":true}}"#).as_bytes()))
            .collect();
        let plain: usize = documents.iter().map(|d| d.data.len()).sum();
        let chunks = DocumentChunks::from_documents(&documents).into_chunks();
        assert!(chunks[0].body.len() * 2 < plain, "{} bytes for {plain}", chunks[0].body.len());
    }
}
