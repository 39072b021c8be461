//! Batching of id-list mutations across documents (`userAddToGroups`, `userDeleteMemberships`,
//! `userArchive`, `groupArchive`, ...): documents whose other arguments are the same share
//! calls of at most [`crate::ops::BULK_SIZE`] ids; a document may span several calls.

use serde_json::{Map, Value};

/// One document's share of a bulk operation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Item {
    /// The document's other arguments (for example `groupIds`), identical for every document
    /// of one call.
    pub key: Map<String, Value>,
    pub ids: Vec<i64>,
}

/// One call: the ids it carries and the documents (by input index) that have ids in it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chunk {
    pub key: Map<String, Value>,
    pub ids: Vec<i64>,
    pub inputs: Vec<usize>,
}

/// A canonical form of a key: arrays of numbers sorted and deduplicated.
pub(crate) fn canonical(key: &Map<String, Value>) -> Map<String, Value> {
    key.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Array(items) if items.iter().all(Value::is_i64) => {
                    let mut n: Vec<i64> = items.iter().filter_map(Value::as_i64).collect();
                    n.sort_unstable();
                    n.dedup();
                    Value::Array(n.into_iter().map(Value::from).collect())
                }
                v => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// Groups items by key (first appearance first), deduplicates ids within a group, and cuts each
/// group into calls of at most `size` ids.
pub(crate) fn plan(items: &[Item], size: usize) -> Vec<Chunk> {
    let size = size.max(1);
    let mut groups: Vec<(Map<String, Value>, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = canonical(&item.key);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let mut chunks = Vec::new();
    for (key, members) in groups {
        let mut ids: Vec<i64> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &m in &members {
            for &id in &items[m].ids {
                if seen.insert(id) {
                    ids.push(id);
                }
            }
        }
        for part in ids.chunks(size) {
            let inputs = members.iter().copied().filter(|m| items[*m].ids.iter().any(|id| part.contains(id))).collect();
            chunks.push(Chunk { key: key.clone(), ids: part.to_vec(), inputs });
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(key: Value, ids: &[i64]) -> Item {
        Item { key: key.as_object().cloned().unwrap_or_default(), ids: ids.to_vec() }
    }

    #[test]
    fn one_call_per_fifty_ids_per_key() {
        let items: Vec<Item> = (0..120).map(|i| item(json!({"groupIds": [7]}), &[1000 + i])).collect();
        let chunks = plan(&items, 50);
        assert_eq!(chunks.iter().map(|c| c.ids.len()).collect::<Vec<_>>(), vec![50, 50, 20]);
        assert_eq!(chunks[0].inputs, (0..50).collect::<Vec<_>>());
        assert_eq!(chunks[2].inputs, (100..120).collect::<Vec<_>>());
    }

    #[test]
    fn keys_split_calls_and_are_canonical() {
        let items = vec![
            item(json!({"groupIds": [2, 1]}), &[1]),
            item(json!({"groupIds": [3]}), &[2]),
            item(json!({"groupIds": [1, 2, 2]}), &[3, 1]),
        ];
        let chunks = plan(&items, 50);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].ids, vec![1, 3]);
        assert_eq!(chunks[0].inputs, vec![0, 2]);
        assert_eq!(Value::Object(chunks[0].key.clone()), json!({"groupIds": [1, 2]}));
        assert_eq!(chunks[1].inputs, vec![1]);
    }

    #[test]
    fn a_big_document_spans_calls() {
        let ids: Vec<i64> = (1..=120).collect();
        let chunks = plan(&[item(json!({"groupId": 5}), &ids)], 50);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.inputs == vec![0]));
    }
}
