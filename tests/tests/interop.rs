//! The official A2A SDKs (Python `a2a-sdk` 1.x, JavaScript
//! `@a2a-js/sdk`) against a live session: each client program in
//! `tests/interop/` resolves the card, sends, streams, gets, lists,
//! cancels and sets a push config served on loopback, asserting on what
//! came back. `make test` installs both SDKs first.

use std::process::Command;

use a2a_sandbox_tests::*;
use serde_json::json;

const STEPS: [&str; 9] = [
    "card", "send", "reply", "stream", "get", "list", "cancel", "push", "errors",
];

fn run_client(program: &str, args: &[&str], url: &str, token: &str) {
    let dir = repo_root().join("tests/interop");
    let output = Command::new(program)
        .args(args)
        .args([url, token])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (run `make test`, which installs the SDKs): {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{program} failed:\n{stdout}\n{stderr}"
    );
    for step in STEPS {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {step}")),
            "{program}: step {step} did not pass:\n{stdout}\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_and_javascript_clients_pass_every_step() {
    let server = Server::start(5, &[]);
    let s = server
        .session(Some(json!({"agents": [
            {"component": "conformance", "config": {"interval_ms": 100}},
            {"component": "conformance", "config": {"interval_ms": 100}}
        ]})))
        .await;
    let s = SessionInfo::from(&s);
    let (python_url, js_url, token) = (s.urls[0].clone(), s.urls[1].clone(), s.token.clone());
    let python = tokio::task::spawn_blocking(move || {
        run_client(
            ".venv/bin/python",
            &["python_client.py"],
            &python_url,
            &token,
        )
    });
    let token = s.token.clone();
    let js = tokio::task::spawn_blocking(move || {
        run_client("node", &["js_client.mjs"], &js_url, &token)
    });
    python.await.expect("Python SDK client");
    js.await.expect("JavaScript SDK client");
}
