//! The HTTP+JSON (REST) binding on every agent, beside JSON-RPC: the
//! URL patterns of the specification, errors as HTTP statuses with
//! `ErrorInfo`, one task store behind both bindings, and the same auth
//! and budgets. The official clients over REST are in the interop suite.

use a2a_sandbox_tests::*;
use serde_json::{Value, json};

/// A REST call with the session's token: status and JSON body.
async fn rest(verb: &str, url: &str, token: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = http(verb, url, &[("authorization", &auth)], body.to_string()).await;
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, body)
}

fn send_body(text: &str) -> String {
    text_message(text).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_endpoint_serves_the_one_task_store() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    let authority = authority(&url);
    assert_eq!(
        card["supportedInterfaces"],
        json!([
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
            {"url": authority, "protocolBinding": "GRPC", "protocolVersion": "1.0"}
        ])
    );

    let (status, sent) = rest(
        "POST",
        &format!("{url}message:send"),
        &token,
        &send_body("work"),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(sent["task"]["status"]["state"], "TASK_STATE_WORKING");

    // Created over REST, seen over JSON-RPC, continued over JSON-RPC and
    // read back over REST.
    let got = rpc(&url, &token, "GetTask", json!({"id": id})).await;
    assert_eq!(got["result"]["id"], id.as_str());
    let (status, task) = rest(
        "GET",
        &format!("{url}tasks/{id}?historyLength=1"),
        &token,
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(task["history"].as_array().unwrap().len(), 1);

    let (status, page) = rest(
        "GET",
        &format!("{url}tasks?pageSize=1&status=TASK_STATE_WORKING"),
        &token,
        "",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["tasks"][0]["id"], id.as_str());
    assert_eq!(page["totalSize"], 1);

    let hook = Webhook::start().await;
    let configs = format!("{url}tasks/{id}/pushNotificationConfigs");
    let (status, config) = rest(
        "POST",
        &configs,
        &token,
        &json!({"url": hook.url}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["taskId"], id.as_str());
    let config_id = config["id"].as_str().unwrap().to_string();
    let (_, listed) = rest("GET", &configs, &token, "").await;
    assert_eq!(
        listed["configs"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let one = format!("{configs}/{config_id}");
    let (status, fetched) = rest("GET", &one, &token, "").await;
    assert_eq!(
        (status, fetched["url"].as_str()),
        (200, Some(hook.url.as_str()))
    );
    let (status, _) = rest("DELETE", &one, &token, "").await;
    assert_eq!(status, 200);
    let (status, gone) = rest("GET", &one, &token, "").await;
    assert_eq!(status, 404, "{gone}");

    let (status, canceled) = rest("POST", &format!("{url}tasks/{id}:cancel"), &token, "").await;
    assert_eq!(status, 200);
    assert_eq!(canceled["status"]["state"], "TASK_STATE_CANCELED");
    let (status, again) = rest("POST", &format!("{url}tasks/{id}:cancel"), &token, "").await;
    assert_eq!(status, 409, "a finished task cannot be canceled: {again}");
    assert_eq!(
        again["error"]["details"][0]["reason"],
        "TASK_NOT_CANCELABLE"
    );

    let (status, reply) = rest(
        "POST",
        &format!("{url}message:send"),
        &token,
        &send_body("reply"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["message"]["role"], "ROLE_AGENT", "{reply}");

    let (status, card) = rest("GET", &format!("{url}extendedAgentCard"), &token, "").await;
    assert_eq!(status, 400, "{card}");
    assert_eq!(
        card["error"]["details"][0]["reason"],
        "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_streams_are_bare_stream_responses() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let auth = format!("Bearer {token}");
    let r = http(
        "POST",
        &format!("{url}message:stream"),
        &[("authorization", &auth)],
        send_body("stream 2"),
    )
    .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events[0]["task"].is_object(), "{text}");
    assert!(
        events.iter().any(|e| e["artifactUpdate"].is_object()),
        "{text}"
    );
    let last = &events.last().unwrap()["statusUpdate"]["status"]["state"];
    assert_eq!(last, "TASK_STATE_COMPLETED");

    // A subscription to a finished task is refused before streaming.
    let id = events[0]["task"]["id"].as_str().unwrap();
    let (status, refused) = rest("GET", &format!("{url}tasks/{id}:subscribe"), &token, "").await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["status"], "UNIMPLEMENTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rest_requests_get_the_binding_s_errors() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let send = format!("{url}message:send");
    for (body, status, reason) in [
        ("{oops", 400, "INVALID_ARGUMENT"),
        ("[1]", 400, "INVALID_ARGUMENT"),
        (
            r#"{"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}"#,
            400,
            "INVALID_ARGUMENT",
        ),
        (&"[".repeat(100_000), 400, "INVALID_ARGUMENT"),
    ] {
        let (got, answer) = rest("POST", &send, &token, body).await;
        assert_eq!(got, status, "{body:.40}: {answer}");
        assert_eq!(answer["error"]["status"], reason, "{answer}");
    }
    let (status, answer) = rest("GET", &format!("{url}tasks?pageSize=lots"), &token, "").await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["details"][0]["fieldViolations"][0]["field"],
        "pageSize"
    );
    let (status, missing) = rest("GET", &format!("{url}tasks/no-such-task"), &token, "").await;
    assert_eq!(status, 404);
    assert_eq!(
        missing["error"]["details"][0]["metadata"]["taskId"],
        "no-such-task"
    );

    // Refusals made before the call are google.rpc.Status too, with
    // their HTTP status as the code and their headers kept.
    let google_status = |r: &Response, code: u16, status: &str, reason: &str| {
        let body = r.json();
        assert_eq!(r.status, code, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["error"]["status"], status, "{body}");
        assert_eq!(body["error"]["details"][0]["reason"], reason, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
    };
    let wrong_verb = http("GET", &send, &[], "").await;
    google_status(&wrong_verb, 405, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED");
    assert_eq!(wrong_verb.headers["allow"], "POST");
    for nowhere in ["nowhere", "nowhere/", "message:send/"] {
        let r = http("POST", &format!("{url}{nowhere}"), &[], "{}").await;
        assert_eq!(r.status, 404, "POST {nowhere}: {}", r.text());
        assert!(r.text().contains("JSON-RPC is at POST"), "{}", r.text());
    }
    // The same token rules as JSON-RPC.
    let no_token = http("GET", &format!("{url}tasks"), &[], "").await;
    google_status(&no_token, 401, "UNAUTHENTICATED", "UNAUTHORIZED");
    assert_eq!(no_token.headers["www-authenticate"], "Bearer");
    let other = format!("Bearer {}", "0".repeat(64));
    let r = http(
        "GET",
        &format!("{url}tasks"),
        &[("authorization", &other)],
        "",
    )
    .await;
    google_status(&r, 403, "PERMISSION_DENIED", "FORBIDDEN");
    let auth = format!("Bearer {token}");
    let too_large = http(
        "POST",
        &send,
        &[("authorization", &auth)],
        "x".repeat(2 << 20),
    )
    .await;
    google_status(&too_large, 413, "RESOURCE_EXHAUSTED", "BODY_TOO_LARGE");
    // JSON-RPC's refusals keep the server's own shape.
    let rpc_refused = http("POST", &url, &[], "{}").await.json();
    assert_eq!(rpc_refused["error"]["code"], "unauthorized");
    let (status, version) = {
        let auth = format!("Bearer {token}");
        let r = http(
            "GET",
            &format!("{url}tasks"),
            &[("authorization", &auth), ("A2A-Version", "0.3")],
            "",
        )
        .await;
        (r.status, r.json())
    };
    assert_eq!(status, 400);
    assert_eq!(
        version["error"]["details"][0]["reason"],
        "VERSION_NOT_SUPPORTED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_works_on_the_gateway_path_too() {
    let server = Server::start(5, &["--mode", "gateway"]);
    let s = server
        .session(Some(json!({"agents": [{"component": "conformance"}]})))
        .await;
    let s = SessionInfo::from(&s);
    let url = &s.urls[0];
    assert!(url.contains("/s/"), "a gateway URL: {url}");
    let (status, sent) = rest(
        "POST",
        &format!("{url}message:send"),
        &s.token,
        &send_body("complete"),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["task"]["id"].as_str().unwrap();
    let (status, task) = rest("GET", &format!("{url}tasks/{id}"), &s.token, "").await;
    assert_eq!((status, task["id"].as_str()), (200, Some(id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_can_be_turned_off() {
    let server = Server::start(5, &["--set", "bindings.rest=false"]);
    let (url, token) = conformance_agent(&server).await;
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    let bindings: Vec<&str> = card["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["protocolBinding"].as_str().unwrap())
        .collect();
    assert_eq!(bindings, ["JSONRPC", "GRPC"]);
    let (status, _) = rest(
        "POST",
        &format!("{url}message:send"),
        &token,
        &send_body("hi"),
    )
    .await;
    assert_eq!(status, 404);
    let r = rpc(&url, &token, "SendMessage", text_message("complete")).await;
    assert_eq!(
        r["result"]["task"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_calls_and_streams_count_against_the_session_s_budgets() {
    let server = Server::start(5, &["--set", "budgets.streams=1"]);
    let (url, token) = conformance_agent(&server).await;
    let auth = format!("Bearer {token}");
    // One stream open over JSON-RPC (its task stays working)...
    let mut open =
        EventStream::open(&url, &token, "SendStreamingMessage", text_message("work")).await;
    open.expect(5).await;
    // ...is the session's one stream: a second, over REST, is refused.
    let second = http(
        "POST",
        &format!("{url}message:stream"),
        &[("authorization", &auth)],
        send_body("work"),
    )
    .await;
    assert_eq!(second.status, 429, "{}", second.text());
    assert!(second.headers.contains_key("retry-after"));
    let refused = second.json();
    assert_eq!(
        refused["error"]["status"], "RESOURCE_EXHAUSTED",
        "{refused}"
    );
    assert_eq!(refused["error"]["details"][0]["reason"], "OVER_BUDGET");
    drop(open);
}
