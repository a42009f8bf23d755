//! The official A2A SDKs (Python `a2a-sdk`, JavaScript `@a2a-js/sdk`)
//! against a live session, each of the 1.x line (over JSON-RPC and over
//! HTTP+JSON; Python also over gRPC, which the JavaScript SDK does not
//! speak) and of the 0.3 line:
//! each client program in `tests/interop/` (1.x) and `tests/interop/v03/`
//! (0.3, served in the 0.3 dialect) resolves the card, sends, gets a
//! message reply, streams, gets, cancels, sets a push config and meets
//! an error, asserting on what came back. `make test` installs the SDKs
//! first.

use std::process::Command;

use a2a_sandbox_tests::*;
use serde_json::json;

const STEPS: [&str; 10] = [
    "card",
    "send",
    "reply",
    "stream",
    "get",
    "list",
    "cancel",
    "subscribe",
    "push",
    "errors",
];

/// The steps every 0.3 client program passes.
const STEPS_V03: [&str; 8] = [
    "card", "send", "reply", "stream", "get", "cancel", "push", "errors",
];

/// A client program of the suite: `script` in `dir` (under
/// tests/interop), run with `program`, over `binding` when given.
struct Client {
    dir: &'static str,
    program: &'static str,
    script: &'static str,
    binding: Option<&'static str>,
}

/// Runs `client` against `url` with `token` and checks that it passed
/// each of `steps`.
fn run_client(client: Client, steps: &[&str], url: &str, token: &str) {
    let Client {
        dir,
        program,
        script,
        binding,
    } = client;
    let dir = repo_root().join("tests/interop").join(dir);
    let output = Command::new(program)
        .arg(script)
        .args([url, token])
        .args(binding)
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
/// once per binding in `bindings` (passed as their third argument; `None`
/// passes none), each against its own conformance agent of one session.
/// gRPC is driven by the Python client only.
async fn python_and_javascript(
    dir: &'static str,
    steps: &'static [&'static str],
    bindings: &[Option<&'static str>],
) {
    const PYTHON: (&str, &str) = (".venv/bin/python", "python_client.py");
    const JAVASCRIPT: (&str, &str) = ("node", "js_client.mjs");
    let runs_of = |binding: Option<&'static str>| match binding {
        Some("GRPC") => vec![(binding, PYTHON)],
        _ => vec![(binding, PYTHON), (binding, JAVASCRIPT)],
    };
    let planned: Vec<_> = bindings.iter().flat_map(|b| runs_of(*b)).collect();
    let server = Server::start(10, &[]);
    let agent = json!({"component": "conformance", "config": {"interval_ms": 100}});
    let agents = vec![agent; planned.len()];
    let s = SessionInfo::from(&server.session(Some(json!({ "agents": agents }))).await);
    let mut runs = Vec::new();
    for (i, (binding, (program, script))) in planned.into_iter().enumerate() {
        let (url, token) = (s.urls[i].clone(), s.token.clone());
        let client = Client {
            dir,
            program,
            script,
            binding,
        };
        runs.push(tokio::task::spawn_blocking(move || {
            run_client(client, steps, &url, &token)
        }));
    }
    for run in runs {
        run.await.expect("an SDK client");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_pass_every_step_over_json_rpc_rest_and_grpc() {
    let bindings = [Some("JSONRPC"), Some("HTTP+JSON"), Some("GRPC")];
    python_and_javascript("", &STEPS, &bindings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_0_3_clients_pass_every_step_in_the_0_3_dialect() {
    python_and_javascript("v03", &STEPS_V03, &[None]).await;
}
