//! JSON-RPC bodies (every method's params, page tokens, timestamps, in
//! the 1.0 and the 0.3 dialect) into one agent of an open session,
//! through the gateway.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// The agent's gateway path.
fn agent_path(server: &common::Fuzzed) -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let body = br#"{"agents": [{"component": "conformance", "config": {"interval_ms": "5"}}], "auth": "none"}"#;
        let req = common::request(server, "POST", "/v1/sessions", &[], body.to_vec())
            .expect("a request");
        let (status, answer) = common::send(server, req);
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
        let session: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
        format!("/s/{}/0/", session["id"].as_str().expect("an id"))
    })
}

fuzz_target!(|data: &[u8]| {
    let server = common::server();
    let path = agent_path(server);
    // No A2A-Version: 1.0 and 0.3 method names (and so both dialects)
    // are both served.
    let req = common::request(server, "POST", path, &[], data.to_vec())
    .expect("a request");
    let (status, answer) = common::send(server, req);
    // JSON-RPC always answers 200 with a JSON body, 429 with one, or a
    // stream (read for a moment) or nothing for a notification.
    assert!(matches!(status, 200 | 204 | 413 | 429), "HTTP {status}");
    if status == 429 {
        assert!(serde_json::from_slice::<serde_json::Value>(&answer).is_ok());
    }
});
