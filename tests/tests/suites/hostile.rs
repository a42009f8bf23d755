//! Malformed and hostile requests on an agent port: the server answers
//! each with the right error and stays up.

use a2a_sandbox_tests::*;
use serde_json::{Value, json};

async fn still_answers(url: &str, token: &str) {
    let r = rpc(url, token, "SendMessage", text_message("complete")).await;
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_are_413_and_deep_nesting_is_a_parse_error() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let auth = format!("Bearer {token}");
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"message":{{"messageId":"m","role":"ROLE_USER","parts":[{{"text":"{}"}}]}}}}}}"#,
        "x".repeat(2 << 20)
    );
    let r = http("POST", &url, &[("authorization", &auth)], huge).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "body_too_large");

    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let r = http("POST", &url, &[("authorization", &auth)], deep).await;
    assert_eq!(r.json()["error"]["code"], -32700);
    let deep_params = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"message":{}1{}}}}}"#,
        r#"{"a":"#.repeat(5000),
        "}".repeat(5000)
    );
    let r = http("POST", &url, &[("authorization", &auth)], deep_params).await;
    assert!(r.json()["error"]["code"] == -32700 || r.json()["error"]["code"] == -32602);
    let not_utf8 = vec![0xff, 0xfe, 0x00, 0x7b];
    let r = http("POST", &url, &[("authorization", &auth)], not_utf8).await;
    assert_eq!(r.json()["error"]["code"], -32700);
    still_answers(&url, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_in_every_field_are_invalid_params() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let good = || json!({"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}]});
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for (field, bad) in [
        ("messageId", json!(5)),
        ("messageId", json!(null)),
        ("role", json!(1)),
        ("role", json!("ROLE_ROBOT")),
        ("role", json!("ROLE_AGENT")),
        ("parts", json!("hi")),
        ("parts", json!([])),
        ("parts", json!([{"text": 5}])),
        ("parts", json!([{"text": "a", "data": {}}])),
        ("parts", json!([{"raw": "not base64!!"}])),
        ("parts", json!([{"url": ["x"]}])),
        ("parts", json!([7])),
        ("contextId", json!(3)),
        ("taskId", json!({})),
        ("metadata", json!("x")),
        ("referenceTaskIds", json!("t")),
        ("extensions", json!([1])),
    ] {
        let mut m = good();
        m[field] = bad;
        cases.push(("SendMessage", json!({"message": m})));
    }
    for (field, bad) in [
        ("historyLength", json!("3")),
        ("historyLength", json!(-1)),
        ("returnImmediately", json!("yes")),
        ("acceptedOutputModes", json!("text/plain")),
        ("taskPushNotificationConfig", json!({"url": 5})),
    ] {
        cases.push((
            "SendMessage",
            json!({"message": good(), "configuration": {field: bad}}),
        ));
    }
    cases.push(("SendMessage", json!({"message": "hi"})));
    cases.push((
        "SendMessage",
        json!({"message": good(), "configuration": []}),
    ));
    for (method, params) in [
        ("GetTask", json!({"id": 5})),
        ("GetTask", json!({"id": "x", "historyLength": "all"})),
        ("ListTasks", json!({"pageSize": "ten"})),
        ("ListTasks", json!({"contextId": 1})),
        ("ListTasks", json!({"includeArtifacts": "true"})),
        ("CancelTask", json!({"id": []})),
        ("CancelTask", json!({})),
        (
            "CreateTaskPushNotificationConfig",
            json!({"taskId": "t", "url": 1}),
        ),
        ("CreateTaskPushNotificationConfig", json!({"taskId": "t"})),
        (
            "CreateTaskPushNotificationConfig",
            json!({"taskId": "t", "url": "http://127.0.0.1/", "authentication": "Bearer"}),
        ),
        ("GetTaskPushNotificationConfig", json!({"taskId": "t"})),
        ("ListTaskPushNotificationConfigs", json!({"taskId": 1})),
        ("DeleteTaskPushNotificationConfig", json!({"id": "x"})),
    ] {
        cases.push((method, params));
    }
    for (method, params) in &cases {
        let r = rpc(&url, &token, method, params.clone()).await;
        assert_eq!(r["error"]["code"], -32602, "{method} {params} -> {r}");
        assert!(!r["error"]["message"].as_str().unwrap().is_empty());
    }
    for (method, params) in [
        ("GetTask", json!({"id": "unknown"})),
        ("CancelTask", json!({"id": "unknown"})),
        (
            "ListTaskPushNotificationConfigs",
            json!({"taskId": "unknown"}),
        ),
        (
            "GetTaskPushNotificationConfig",
            json!({"taskId": "unknown", "id": "x"}),
        ),
        (
            "DeleteTaskPushNotificationConfig",
            json!({"taskId": "unknown", "id": "x"}),
        ),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a"}], "taskId": "unknown"}}),
        ),
    ] {
        let r = rpc(&url, &token, method, params.clone()).await;
        assert_eq!(r["error"]["code"], -32001, "{method} -> {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("unknown"));
    }
    still_answers(&url, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_all_get_the_update() {
    const SUBSCRIBERS: usize = 1000;
    // Far past the default budgets of a session (see tenancy.rs).
    let server = Server::start(
        5,
        &[
            "--set",
            "budgets.streams=1000",
            "--set",
            "budgets.connections=1100",
        ],
    );
    let (url, token) = conformance_agent(&server).await;
    let r = rpc(&url, &token, "SendMessage", text_message("work fan out")).await;
    let id = r["result"]["task"]["id"].as_str().unwrap().to_string();
    let mut streams = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let mut s = EventStream::open(&url, &token, "SubscribeToTask", json!({"id": id})).await;
        let first = s.expect(10).await;
        assert_eq!(first["result"]["task"]["id"], id.as_str());
        streams.push(s);
    }
    let mut p = text_message("complete");
    p["message"]["taskId"] = json!(id);
    let started = std::time::Instant::now();
    rpc(&url, &token, "SendMessage", p).await;
    let mut readers = Vec::new();
    for mut s in streams {
        readers.push(tokio::spawn(async move { s.rest(20).await }));
    }
    let mut complete = 0;
    for reader in readers {
        let events = reader.await.unwrap();
        if events.last().is_some_and(|e| {
            e["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
        }) {
            complete += 1;
        }
    }
    assert_eq!(
        complete, SUBSCRIBERS,
        "every subscriber saw the end and was closed"
    );
    eprintln!(
        "fan-out to {SUBSCRIBERS} subscribers done in {:?}",
        started.elapsed()
    );
    still_answers(&url, &token).await;

    // Subscribers that hang up cost nothing: open many, drop them, and the
    // agent still answers promptly.
    let id =
        rpc(&url, &token, "SendMessage", text_message("work again")).await["result"]["task"]["id"]
            .as_str()
            .unwrap()
            .to_string();
    for _ in 0..200 {
        let mut s = EventStream::open(&url, &token, "SubscribeToTask", json!({"id": id})).await;
        s.expect(10).await;
        drop(s);
    }
    still_answers(&url, &token).await;
}
