//! The official A2A SDKs (Python `a2a-sdk`, JavaScript `@a2a-js/sdk`)
//! against a live session, each of the 1.x line and of the 0.3 line:
//! each client program in `tests/interop/` (1.x) and `tests/interop/v03/`
//! (0.3, served in the 0.3 dialect) resolves the card, sends, gets a
//! message reply, streams, gets, cancels, sets a push config and meets
//! an error, asserting on what came back. `make test` installs the SDKs
//! first.

use std::process::Command;

use a2a_sandbox_tests::*;
use serde_json::json;

const STEPS: [&str; 9] = [
    "card", "send", "reply", "stream", "get", "list", "cancel", "push", "errors",
];

/// The steps every 0.3 client program passes.
const STEPS_V03: [&str; 8] = [
    "card", "send", "reply", "stream", "get", "cancel", "push", "errors",
];

/// Runs a client program in `dir` (under tests/interop) and checks that
/// it passed each of `steps`.
fn run_client(dir: &str, program: &str, args: &[&str], steps: &[&str], url: &str, token: &str) {
    let dir = repo_root().join("tests/interop").join(dir);
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
    for step in steps {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {step}")),
            "{program}: step {step} did not pass:\n{stdout}\n{stderr}"
        );
    }
}

/// Runs the Python and the JavaScript client programs in `dir` at once,
/// each against its own conformance agent of one session.
async fn python_and_javascript(dir: &'static str, steps: &'static [&'static str]) {
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
        let args = ["python_client.py"];
        run_client(dir, ".venv/bin/python", &args, steps, &python_url, &token)
    });
    let token = s.token.clone();
    let js = tokio::task::spawn_blocking(move || {
        run_client(dir, "node", &["js_client.mjs"], steps, &js_url, &token)
    });
    python.await.expect("Python SDK client");
    js.await.expect("JavaScript SDK client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_and_javascript_clients_pass_every_step() {
    python_and_javascript("", &STEPS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_0_3_clients_pass_every_step_in_the_0_3_dialect() {
    python_and_javascript("v03", &STEPS_V03).await;
}
