//! The contract is language-neutral: the same echo agent written in Rust
//! (`agents/echo`), JavaScript (`agents/js-echo`, componentize-js) and
//! Python (`agents/py-echo`, componentize-py) passes the same protocol
//! checks, keeps its state across calls, and keeps it per session.

use std::time::{Duration, Instant};

use a2a_sandbox_tests::*;
use serde_json::{Value, json};

/// The same checks for every language.
async fn check_agent(server: &Server, component: &str) {
    let body = json!({"agents": [{"component": component, "name": "Polyglot"}]});
    let s = SessionInfo::from(&server.session(Some(body.clone())).await);
    let url = &s.urls[0];

    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    assert_eq!(card["name"], "Polyglot", "{component}: {card}");
    assert_eq!(card["skills"][0]["id"], "echo", "{component}");
    assert_eq!(card["supportedInterfaces"][0]["url"], url.as_str());
    assert_eq!(card["capabilities"]["streaming"], true);

    let first = rpc(url, &s.token, "SendMessage", text_message("hello")).await;
    assert_eq!(
        first["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{component}: {first}"
    );
    assert_eq!(
        reply_text(&first),
        "Polyglot heard: hello (message 1)",
        "{component}"
    );
    let second = rpc(url, &s.token, "SendMessage", text_message("again")).await;
    assert_eq!(
        reply_text(&second),
        "Polyglot heard: again (message 2)",
        "{component} keeps its state across calls"
    );
    let id = first["result"]["task"]["id"].as_str().unwrap();
    let task = rpc(url, &s.token, "GetTask", json!({"id": id})).await;
    assert_eq!(task["result"]["id"], id, "{component}: {task}");

    let failed = rpc(url, &s.token, "SendMessage", text_message("fail")).await;
    let status = &failed["result"]["task"]["status"];
    assert_eq!(
        status["state"], "TASK_STATE_FAILED",
        "{component}: {failed}"
    );
    assert!(
        status.to_string().contains("asked to fail"),
        "{component}: the agent's error reaches the client: {failed}"
    );

    let mut stream = EventStream::open(
        url,
        &s.token,
        "SendStreamingMessage",
        text_message("streamed"),
    )
    .await;
    let events = stream.rest(10).await;
    let last = events.last().expect("events");
    let text = last.to_string();
    assert!(
        text.contains("TASK_STATE_COMPLETED") && text.contains("(message 3)"),
        "{component}: {events:?}"
    );

    // Another session gets a fresh instance.
    let other = SessionInfo::from(&server.session(Some(body)).await);
    let r = rpc(
        &other.urls[0],
        &other.token,
        "SendMessage",
        text_message("hi"),
    )
    .await;
    assert_eq!(
        reply_text(&r),
        "Polyglot heard: hi (message 1)",
        "{component}"
    );
    assert_eq!(server.delete(&s.id).await, 204);
    assert_eq!(server.delete(&other.id).await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_javascript_and_python_agents_pass_the_same_checks() {
    let server = Server::start(40, &[]);
    for component in ["echo", "js-echo", "py-echo"] {
        check_agent(&server, component).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_per_language() {
    let server = Server::start(40, &[]);
    let components: Vec<Value> = http("GET", &format!("{}/v1/components", server.base()), &[], "")
        .await
        .json()["components"]
        .as_array()
        .unwrap()
        .clone();
    for component in ["echo", "js-echo", "py-echo"] {
        let listed = components.iter().find(|c| c["name"] == component).unwrap();
        let mut took = Vec::new();
        for _ in 0..10 {
            let started = Instant::now();
            let s = server
                .session(Some(json!({"agents": [{"component": component}]})))
                .await;
            took.push(started.elapsed());
            server.delete(s["id"].as_str().unwrap()).await;
        }
        took.sort();
        let p50 = percentile(&took, 0.5);
        println!(
            "{component}: {} KiB, loaded in {:.1} ms (precompiled: {}), session with one instance p50 {:.2} ms",
            listed["bytes"].as_u64().unwrap() / 1024,
            listed["load_ms"].as_f64().unwrap(),
            listed["precompiled"],
            p50.as_secs_f64() * 1e3
        );
        assert!(p50 < Duration::from_secs(2), "{component}: {took:?}");
    }
}
