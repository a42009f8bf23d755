//! Calls between the agents of a session (`a2a:agent/peers`), driven
//! through the fan-out agent: a call reaches its callee through the same
//! service as a client's (its task list shows it), chains are refused
//! when they would wait on themselves or grow too long, a callee gets no
//! more time than its caller has left, and a trapping callee or a
//! session deleted mid-call fails the call, not the host.

use std::time::{Duration, Instant};

use a2a_sandbox_tests::*;
use serde_json::{Value, json};

/// A session of `components` (slot order): its URLs and token.
async fn session(server: &Server, components: &[&str]) -> SessionInfo {
    let agents: Vec<Value> = components.iter().map(|c| json!({"component": c})).collect();
    SessionInfo::from(&server.session(Some(json!({ "agents": agents }))).await)
}

/// The text of an agent's answer to `text` (a bare message).
async fn answer(s: &SessionInfo, slot: usize, text: &str) -> String {
    let r = rpc(&s.urls[slot], &s.token, "SendMessage", text_message(text)).await;
    r["result"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("a message answer: {r}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_its_siblings_through_their_own_service() {
    let server = Server::start(5, &[]);
    let s = session(&server, &["fan-out", "echo", "conformance"]).await;
    let said = answer(&s, 0, "hello there").await;
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(
        lines[0].starts_with("Echo: ") && lines[0].contains("hello there"),
        "{said}"
    );
    assert!(lines[1].starts_with("Conformance agent: "), "{said}");

    // The callee's task list shows the call, with the chain that made it.
    let listed = rpc(&s.urls[2], &s.token, "ListTasks", json!({})).await;
    let tasks = listed["result"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{listed}");
    let got = rpc(
        &s.urls[2],
        &s.token,
        "GetTask",
        json!({"id": tasks[0]["id"]}),
    )
    .await;
    let first = &got["result"]["history"][0];
    assert_eq!(first["role"], "ROLE_USER");
    assert_eq!(
        first["metadata"]["a2a-sandbox/waiting"],
        json!([0]),
        "{got}"
    );
    assert!(first["metadata"]["a2a-sandbox/budget_ms"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_would_wait_on_themselves_fail_at_once() {
    let server = Server::start(10, &[]);
    // Itself.
    let s = session(&server, &["fan-out", "echo"]).await;
    let said = answer(&s, 0, "@0 hi").await;
    assert!(said.contains("cannot call itself"), "{said}");
    // A cycle: slot 0 asks slot 1, which asks everyone else: slot 0 is
    // waiting, so that call is refused at once, and the answer comes back.
    let s = session(&server, &["fan-out", "fan-out"]).await;
    let started = Instant::now();
    let said = answer(&s, 0, "anyone?").await;
    assert!(
        said.contains("already waiting in this chain of calls (0 -> 1 -> 0)"),
        "{said}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Five fan-outs: every chain stops at four agents.
    let s = session(
        &server,
        &["fan-out", "fan-out", "fan-out", "fan-out", "fan-out"],
    )
    .await;
    let said = answer(&s, 0, "deep?").await;
    assert!(said.contains("holds at most 4 agents"), "{said}");
    let health = http("GET", &format!("{}/healthz", server.base()), &[], "").await;
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_gets_no_more_time_than_its_caller_has_left() {
    // Calls may take 5 s; the caller is given 800 ms (as a caller agent
    // would pass on what it had left), so its callee gets no more.
    let server = Server::start(5, &["--call-timeout-ms", "5000"]);
    let s = session(&server, &["fan-out", "hostile"]).await;
    let mut message = text_message("@1 sleep");
    message["message"]["metadata"] = json!({"a2a-sandbox/budget_ms": 800});
    let started = Instant::now();
    let r = rpc(&s.urls[0], &s.token, "SendMessage", message).await;
    let took = started.elapsed();
    // The hostile agent sleeps for an hour: the whole chain ends with the
    // first caller's 800 ms, not the callee's own 5 s.
    assert!(took < Duration::from_millis(3000), "{took:?}: {r}");
    // The callee's own call ended at that deadline too (well before its
    // 5 s), failing its task.
    let listed = rpc(&s.urls[1], &s.token, "ListTasks", json!({})).await;
    let id = listed["result"]["tasks"][0]["id"].clone();
    let failed = task_in_state(&s.urls[1], &s.token, &id, "TASK_STATE_FAILED", 2).await;
    let task = &failed["result"];
    assert_eq!(task["status"]["state"], "TASK_STATE_FAILED", "{failed}");
    let why = task["status"]["message"]["parts"][0]["text"].to_string();
    assert!(why.contains("deadline"), "{why}");

    // A callee that traps fails the call, not the caller.
    let said = answer(&s, 0, "@1 panic").await;
    assert!(
        said.contains("could not answer") && said.contains("panic"),
        "{said}"
    );
    // Both agents work afterwards.
    let said = answer(&s, 0, "@1 memory").await;
    assert!(said.contains("notes"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_session_mid_call_ends_the_call_and_frees_everything() {
    let server = Server::start(5, &["--call-timeout-ms", "30000"]);
    let before = server.metric("a2a_sandbox_instances_live").await;
    let s = session(&server, &["fan-out", "hostile"]).await;
    let url = s.urls[0].clone();
    let token = s.token.clone();
    let call = tokio::spawn(async move {
        let auth = format!("Bearer {token}");
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                          "params": text_message("@1 sleep")});
        http("POST", &url, &[("authorization", &auth)], body.to_string()).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.delete(&s.id).await, 204);
    let ended = tokio::time::timeout(Duration::from_secs(10), call).await;
    assert!(ended.is_ok(), "the call ended with the session");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = server.metric("a2a_sandbox_instances_live").await;
        if live == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instances left: {live} (before {before})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_an_outside_agent_only_through_a_granted_destination() {
    // The outside agent: an open session's echo on another server.
    let outside = Server::start(5, &["--set", "allow_open_sessions=true"]);
    let open = outside
        .session(Some(
            json!({"agents": [{"component": "echo"}], "auth": "none"}),
        ))
        .await;
    let echo_url = SessionInfo::from(&open).urls[0].clone();
    let origin = echo_url.trim_end_matches('/').to_string();

    let config = scratch("peers-outside").join("config.toml");
    std::fs::write(
        &config,
        format!("[components.fan-out]\nallowed_outbound_hosts = [\"{origin}\"]\n"),
    )
    .unwrap();
    let server = Server::start(5, &["--config", config.to_str().unwrap()]);
    let s = session(&server, &["fan-out"]).await;
    let said = answer(&s, 0, &format!("@{echo_url} good morning")).await;
    assert!(
        said.starts_with(&echo_url) && said.contains("good morning"),
        "{said}"
    );
    assert!(!said.contains("could not answer"), "{said}");

    // Without the grant, the same call is refused inside the agent.
    let ungranted = Server::start(5, &[]);
    let s = session(&ungranted, &["fan-out"]).await;
    let said = answer(&s, 0, &format!("@{echo_url} good morning")).await;
    assert!(said.contains("could not answer (not granted"), "{said}");
}
