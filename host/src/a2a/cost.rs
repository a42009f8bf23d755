//! What task content costs in memory. The store charges a session for
//! the memory its content takes, not for its size on the wire: a JSON
//! array of a million zeros is 2 MB sent and 32 MB parsed. The figures
//! follow the parsed form (`serde_json::Value`, `String`, `Vec`) and the
//! allocator's rounding, so the count stays within 2x of the resident
//! memory it causes for any shape of content (see the tenancy suite).

use std::mem::size_of;

use serde_json::Value;

use super::types::{Artifact, Message, Part, PartContent, Task};

/// Entries in one node of a `BTreeMap` (a JSON object).
const NODE_ENTRIES: usize = 11;
/// Bytes of one node: its key and value slots and header.
const NODE_BYTES: usize = NODE_ENTRIES * (size_of::<String>() + size_of::<Value>()) + 16;
/// Entries a node holds on average once objects grow past one node.
const NODE_FILL: usize = 7;

/// The nodes of a JSON object of `n` entries: one for a small object,
/// about one per [`NODE_FILL`] entries past that.
fn map_nodes(n: usize) -> usize {
    match n {
        0 => 0,
        n if n <= NODE_ENTRIES => heap(NODE_BYTES),
        n => heap(NODE_BYTES) * n.div_ceil(NODE_FILL),
    }
}

/// Bytes the allocator hands out for a request of `n`: a header and
/// 16-byte rounding, at least its smallest chunk.
fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

fn string(s: &str) -> usize {
    heap(s.len())
}

fn opt_string(s: &Option<String>) -> usize {
    s.as_deref().map_or(0, string)
}

/// The heap a parsed JSON value holds (its own slot is its parent's).
pub fn value(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => string(s),
        Value::Array(items) => {
            heap(items.capacity() * size_of::<Value>()) + items.iter().map(value).sum::<usize>()
        }
        Value::Object(map) => {
            map_nodes(map.len()) + map.iter().map(|(k, v)| string(k) + value(v)).sum::<usize>()
        }
    }
}

fn metadata(m: &Option<serde_json::Map<String, Value>>) -> usize {
    m.as_ref().map_or(0, |m| {
        map_nodes(m.len()) + m.iter().map(|(k, v)| string(k) + value(v)).sum::<usize>()
    })
}

fn part(p: &Part) -> usize {
    let content = match &p.content {
        PartContent::Text(t) | PartContent::Url(t) => string(t),
        PartContent::Raw(bytes) => heap(bytes.len()),
        PartContent::Data(d) => value(d),
    };
    size_of::<Part>()
        + content
        + opt_string(&p.media_type)
        + opt_string(&p.filename)
        + metadata(&p.metadata)
}

fn strings(list: &Option<Vec<String>>) -> usize {
    list.as_ref().map_or(0, |l| {
        heap(l.capacity() * size_of::<String>()) + l.iter().map(|s| string(s)).sum::<usize>()
    })
}

/// What a message costs, itself included (with its reference counts).
pub fn message(m: &Message) -> usize {
    size_of::<Message>()
        + 2 * size_of::<usize>()
        + string(&m.message_id)
        + heap(m.parts.capacity() * size_of::<Part>())
        + m.parts.iter().map(part).sum::<usize>()
        + opt_string(&m.context_id)
        + opt_string(&m.task_id)
        + metadata(&m.metadata)
        + strings(&m.extensions)
        + strings(&m.reference_task_ids)
}

pub fn artifact(a: &Artifact) -> usize {
    size_of::<Artifact>()
        + string(&a.artifact_id)
        + opt_string(&a.name)
        + opt_string(&a.description)
        + heap(a.parts.capacity() * size_of::<Part>())
        + a.parts.iter().map(part).sum::<usize>()
        + metadata(&a.metadata)
}

/// What a task costs in the store, itself included. Its status message
/// is one of its history's, counted there.
pub fn task(t: &Task) -> usize {
    let history = t.history.as_ref().map_or(0, |h| {
        heap(h.capacity() * size_of::<usize>()) + h.iter().map(|m| message(m)).sum::<usize>()
    });
    let artifacts = t.artifacts.as_ref().map_or(0, |a| {
        heap(a.capacity() * size_of::<Artifact>()) + a.iter().map(artifact).sum::<usize>()
    });
    size_of::<Task>()
        + string(&t.id)
        + string(&t.context_id)
        + opt_string(&t.status.timestamp)
        + history
        + artifacts
        + metadata(&t.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_cost_their_parsed_size_not_their_wire_size() {
        let wire = format!("[{}0]", "0,".repeat(99_999));
        let v: Value = serde_json::from_str(&wire).unwrap();
        let cost = value(&v);
        assert!(cost >= 100_000 * size_of::<Value>(), "{cost}");
        assert!(
            cost > 10 * wire.len(),
            "{cost} vs {} on the wire",
            wire.len()
        );
        let text = Value::String("x".repeat(1 << 20));
        assert!(value(&text) < (1 << 20) + 64);
    }
}
