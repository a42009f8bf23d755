//! What task content costs in memory. The store charges a session for
//! the memory its content takes, not for its size on the wire. Free-form
//! JSON (data parts, metadata) is kept as its text, so it costs its
//! length; everything else is counted in its parsed form (`String`,
//! `Vec`, the structs) with the allocator's rounding, so the count stays
//! within 2x of the resident memory it causes for any shape of content
//! (see the tenancy suite).

use std::mem::size_of;

use super::types::{Artifact, JsonText, Message, Metadata, Part, PartContent, Task};

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

/// Free-form JSON: its text, behind a box.
fn json(j: &JsonText) -> usize {
    heap(j.get().len())
}

fn metadata(m: &Option<Metadata>) -> usize {
    m.as_ref().map_or(0, |m| heap(m.get().len()))
}

fn part(p: &Part) -> usize {
    let content = match &p.content {
        PartContent::Text(t) | PartContent::Url(t) => string(t),
        PartContent::Raw(bytes) => heap(bytes.len()),
        PartContent::Data(d) => json(d),
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
    fn free_form_json_costs_its_text_however_it_nests() {
        let wire = format!("[{}0]", "[{\"a\":[]}],".repeat(9_999));
        let nested = JsonText::parse(&wire).unwrap();
        let cost = json(&nested);
        assert!(cost >= wire.len() && cost < wire.len() + 64, "{cost}");
        let spread = JsonText::parse("[1,\n 2]").unwrap();
        assert_eq!(spread.get(), "[1,2]", "kept on one line");
        let text = Part::text("x".repeat(1 << 20));
        assert!(part(&text) < (1 << 20) + 256);
    }
}
