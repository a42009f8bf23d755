//! The whole control listener: method, path (control API, drafts, the
//! gateway's `/s/{session}/{slot}/...` paths) and body. The input is a
//! method selector byte, a path up to the first newline, then the body.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let (path, body) = rest.split_at(split);
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let path = format!("/{}", path.trim_start_matches('/'));
    let body = body.get(1..).unwrap_or_default().to_vec();
    let method = METHODS[usize::from(selector) % METHODS.len()];
    let server = common::server();
    if let Some(req) = common::request(server, method, &path, &[], body) {
        let (status, answer) = common::send(server, req);
        // Every answer but a stream or an empty one is JSON.
        if status != 200 && status != 204 && !answer.is_empty() {
            assert!(
                serde_json::from_slice::<serde_json::Value>(&answer).is_ok(),
                "{status}: not JSON"
            );
        }
    }
});
