//! Every A2A method and error code on a live agent port, driven over HTTP
//! against the real binary with the conformance agent.

use a2a_sandbox_tests::*;
use serde_json::{Value, json};

fn task_of(r: &Value) -> &Value {
    &r["result"]["task"]
}

fn code(r: &Value) -> i64 {
    r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error: {r}"))
}

/// A task on the conformance agent that stays working (`work …`).
async fn start_working(url: &str, token: &str, text: &str) -> String {
    let r = rpc(
        url,
        token,
        "SendMessage",
        text_message(&format!("work {text}")),
    )
    .await;
    assert_eq!(task_of(&r)["status"]["state"], "TASK_STATE_WORKING", "{r}");
    task_of(&r)["id"].as_str().unwrap().to_string()
}

fn follow_up(task_id: &str, text: &str) -> Value {
    let mut p = text_message(text);
    p["message"]["taskId"] = json!(task_id);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_declares_what_works() {
    let server = Server::start(10, &[]);
    let (url, _) = conformance_agent(&server).await;
    {
        let r = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "").await;
        assert_eq!(r.status, 200);
        assert!(r.headers.get("cache-control").is_some());
        let card = r.json();
        assert_eq!(
            card["capabilities"],
            json!({"streaming": true, "pushNotifications": true})
        );
        assert_eq!(
            card["supportedInterfaces"][0],
            json!({"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"})
        );
        assert_eq!(card["skills"][0]["id"], "conformance");
        assert!(card.get("extendedAgentCard").is_none());
        assert!(
            !card.to_string().contains(&server.addr.to_string()),
            "no internal addresses"
        );
    }
    // The 0.3 card, where 0.3 clients look for it.
    let old = http("GET", &format!("{url}.well-known/agent.json"), &[], "")
        .await
        .json();
    assert_eq!(old["protocolVersion"], "0.3.0");
    assert_eq!(old["url"], url.as_str());
    assert_eq!(old["preferredTransport"], "JSONRPC");
    assert_eq!(old["capabilities"]["streaming"], true);
    assert_eq!(old["security"], json!([{"session": []}]));
    assert_eq!(old["skills"][0]["id"], "conformance");
    let no_push = Server::start(5, &["--no-push"]);
    let (url, token) = conformance_agent(&no_push).await;
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    assert_eq!(card["capabilities"]["pushNotifications"], false);
    let id = start_working(&url, &token, "hi").await;
    for (method, params) in [
        (
            "CreateTaskPushNotificationConfig",
            json!({"taskId": id, "url": "http://127.0.0.1:9/x"}),
        ),
        (
            "GetTaskPushNotificationConfig",
            json!({"taskId": id, "id": "x"}),
        ),
        ("ListTaskPushNotificationConfigs", json!({"taskId": id})),
        (
            "DeleteTaskPushNotificationConfig",
            json!({"taskId": id, "id": "x"}),
        ),
    ] {
        assert_eq!(
            code(&rpc(&url, &token, method, params).await),
            -32003,
            "{method}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_follow_ups_history_and_terminal_rules() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let id = start_working(&url, &token, "hello").await;
    let r = rpc(&url, &token, "SendMessage", follow_up(&id, "more")).await;
    let task = task_of(&r);
    assert_eq!(
        task["status"]["message"]["parts"][0]["text"],
        "follow-up 2: more"
    );
    assert_eq!(
        task["history"].as_array().unwrap().len(),
        4,
        "user, agent, user, agent"
    );
    let mut p = follow_up(&id, "complete");
    p["configuration"] = json!({"historyLength": 1});
    let r = rpc(&url, &token, "SendMessage", p).await;
    let task = task_of(&r);
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(task["history"].as_array().unwrap().len(), 1);
    assert_eq!(task["artifacts"][0]["name"], "result");
    assert_eq!(
        code(&rpc(&url, &token, "SendMessage", follow_up(&id, "again")).await),
        -32004
    );

    let mut wrong_context = follow_up(&start_working(&url, &token, "x").await, "y");
    wrong_context["message"]["contextId"] = json!("another-context");
    assert_eq!(
        code(&rpc(&url, &token, "SendMessage", wrong_context).await),
        -32602
    );

    let r = rpc(&url, &token, "SendMessage", text_message("input")).await;
    assert_eq!(task_of(&r)["status"]["state"], "TASK_STATE_INPUT_REQUIRED");
    let waiting = task_of(&r)["id"].as_str().unwrap().to_string();
    let r = rpc(&url, &token, "SendMessage", follow_up(&waiting, "complete")).await;
    assert_eq!(task_of(&r)["status"]["state"], "TASK_STATE_COMPLETED");
    let r = rpc(&url, &token, "SendMessage", text_message("reject")).await;
    assert_eq!(task_of(&r)["status"]["state"], "TASK_STATE_REJECTED");
    let r = rpc(&url, &token, "SendMessage", text_message("fail")).await;
    assert_eq!(task_of(&r)["status"]["state"], "TASK_STATE_FAILED");
    assert!(
        task_of(&r)["status"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .contains("asked me to")
    );

    let mut immediate = text_message("stream 3");
    immediate["configuration"] = json!({"returnImmediately": true});
    let r = rpc(&url, &token, "SendMessage", immediate).await;
    assert_eq!(task_of(&r)["status"]["state"], "TASK_STATE_SUBMITTED");
    let id = task_of(&r)["id"].clone();
    let done = task_in_state(&url, &token, &id, "TASK_STATE_COMPLETED", 5).await;
    assert_eq!(
        done["result"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{done}"
    );
    assert_eq!(done["result"]["artifacts"][0]["name"], "stream-result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_task_and_history_length() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let id = start_working(&url, &token, "one").await;
    rpc(&url, &token, "SendMessage", follow_up(&id, "two")).await;
    let all = rpc(&url, &token, "GetTask", json!({"id": id})).await;
    assert_eq!(all["result"]["history"].as_array().unwrap().len(), 4);
    let none = rpc(
        &url,
        &token,
        "GetTask",
        json!({"id": id, "historyLength": 0}),
    )
    .await;
    assert!(none["result"].get("history").is_none());
    let last = rpc(
        &url,
        &token,
        "GetTask",
        json!({"id": id, "historyLength": 1}),
    )
    .await;
    assert_eq!(last["result"]["history"][0]["role"], "ROLE_AGENT");
    assert_eq!(
        code(
            &rpc(
                &url,
                &token,
                "GetTask",
                json!({"id": id, "historyLength": -1})
            )
            .await
        ),
        -32602
    );
    assert_eq!(
        code(&rpc(&url, &token, "GetTask", json!({"id": "no-such-task"})).await),
        -32001
    );
    assert_eq!(code(&rpc(&url, &token, "GetTask", json!({})).await), -32602);
    // Another session's task id is not found here.
    let (other_url, other_token) = conformance_agent(&server).await;
    assert_eq!(
        code(&rpc(&other_url, &other_token, "GetTask", json!({"id": id})).await),
        -32001
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tasks_filters_and_pages() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let mut context = String::new();
    for i in 0..7 {
        let mut p = text_message(if i == 0 { "complete" } else { "work" });
        if i % 2 == 1 && !context.is_empty() {
            p["message"]["contextId"] = json!(context);
        }
        let r = rpc(&url, &token, "SendMessage", p).await;
        if i == 1 {
            context = task_of(&r)["contextId"].as_str().unwrap().to_string();
        }
    }
    let mut ids = Vec::new();
    let mut token_param = String::new();
    let mut pages = 0;
    loop {
        let r = rpc(
            &url,
            &token,
            "ListTasks",
            json!({"pageSize": 3, "pageToken": token_param}),
        )
        .await;
        let result = &r["result"];
        assert_eq!(result["totalSize"], 7);
        assert_eq!(result["pageSize"], 3);
        for t in result["tasks"].as_array().unwrap() {
            assert!(t.get("artifacts").is_none(), "artifacts only on request");
            ids.push(t["id"].as_str().unwrap().to_string());
        }
        pages += 1;
        token_param = result["nextPageToken"].as_str().unwrap().to_string();
        if token_param.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 7);
    let all = rpc(
        &url,
        &token,
        "ListTasks",
        json!({"includeArtifacts": true, "historyLength": 0}),
    )
    .await;
    let tasks = all["result"]["tasks"].as_array().unwrap();
    let stamps: Vec<&str> = tasks
        .iter()
        .map(|t| t["status"]["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted, "newest first");
    assert!(tasks.iter().any(|t| t["artifacts"].is_array()));
    assert!(tasks.iter().all(|t| t.get("history").is_none()));
    let done = rpc(
        &url,
        &token,
        "ListTasks",
        json!({"status": "TASK_STATE_COMPLETED"}),
    )
    .await;
    assert_eq!(done["result"]["totalSize"], 1);
    let in_context = rpc(&url, &token, "ListTasks", json!({"contextId": context})).await;
    assert_eq!(
        in_context["result"]["totalSize"], 3,
        "tasks 1, 3 and 5 share a context"
    );
    let future = rpc(
        &url,
        &token,
        "ListTasks",
        json!({"statusTimestampAfter": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(future["result"]["totalSize"], 0);
    assert_eq!(future["result"]["nextPageToken"], "");
    let past = rpc(
        &url,
        &token,
        "ListTasks",
        json!({"statusTimestampAfter": "2000-01-01T00:00:00.000Z"}),
    )
    .await;
    assert_eq!(past["result"]["totalSize"], 7);
    for bad in [
        json!({"pageSize": 0}),
        json!({"pageSize": 101}),
        json!({"pageToken": "forged"}),
        json!({"status": "TASK_STATE_DONE"}),
        json!({"statusTimestampAfter": "yesterday"}),
        json!({"historyLength": -2}),
    ] {
        assert_eq!(
            code(&rpc(&url, &token, "ListTasks", bad.clone()).await),
            -32602,
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_task_and_the_cancel_race() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let id = start_working(&url, &token, "work").await;
    let r = rpc(&url, &token, "CancelTask", json!({"id": id})).await;
    assert_eq!(r["result"]["status"]["state"], "TASK_STATE_CANCELED");
    assert_eq!(
        code(&rpc(&url, &token, "CancelTask", json!({"id": id})).await),
        -32002
    );
    assert_eq!(
        code(&rpc(&url, &token, "CancelTask", json!({"id": "nope"})).await),
        -32001
    );
    assert_eq!(
        code(&rpc(&url, &token, "SendMessage", follow_up(&id, "more")).await),
        -32004
    );

    // The race: a long stream is running, ten cancels and a follow-up
    // arrive at once. Exactly one cancel wins; the task ends canceled and
    // stays canceled when the agent's call finishes.
    let mut stream = EventStream::open(
        &url,
        &token,
        "SendStreamingMessage",
        text_message("stream 6"),
    )
    .await;
    let first = stream.expect(5).await;
    let id = first["result"]["task"]["id"].as_str().unwrap().to_string();
    stream.expect(5).await; // first progress update: the agent is in its call
    let mut racers = Vec::new();
    for _ in 0..10 {
        let (url, token, id) = (url.clone(), token.clone(), id.clone());
        racers.push(tokio::spawn(async move {
            rpc(&url, &token, "CancelTask", json!({"id": id})).await
        }));
    }
    let outcomes: Vec<Value> = futures_all(racers).await;
    let wins = outcomes
        .iter()
        .filter(|r| r["result"]["status"]["state"] == "TASK_STATE_CANCELED")
        .count();
    let refusals = outcomes
        .iter()
        .filter(|r| r["error"]["code"] == -32002)
        .count();
    assert_eq!((wins, refusals), (1, 9), "{outcomes:?}");
    let rest = stream.rest(10).await;
    let last = rest.last().expect("the stream ends with the cancel");
    assert_eq!(
        last["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_CANCELED"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let r = rpc(&url, &token, "GetTask", json!({"id": id})).await;
    assert_eq!(
        r["result"]["status"]["state"], "TASK_STATE_CANCELED",
        "the agent's late answer did not revive it"
    );
}

async fn futures_all<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_sends_task_then_updates_then_closes() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let mut stream = EventStream::open(
        &url,
        &token,
        "SendStreamingMessage",
        text_message("stream 3"),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.content_type, "text/event-stream");
    let events = stream.rest(10).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| {
            assert_eq!(e["jsonrpc"], "2.0");
            assert_eq!(e["id"], "stream-1");
            e["result"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .as_str()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "task",
            "statusUpdate",
            "statusUpdate",
            "statusUpdate",
            "artifactUpdate",
            "statusUpdate"
        ]
    );
    assert_eq!(
        events[2]["result"]["statusUpdate"]["status"]["message"]["parts"][0]["text"],
        "progress 2/3"
    );
    assert_eq!(
        events[5]["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    assert_eq!(events[4]["result"]["artifactUpdate"]["lastChunk"], true);

    // Errors found before streaming are one SSE error event.
    let mut bad =
        EventStream::open(&url, &token, "SendStreamingMessage", json!({"message": {}})).await;
    let events = bad.rest(5).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["error"]["code"], -32602);
    let mut done = EventStream::open(
        &url,
        &token,
        "SendStreamingMessage",
        text_message("complete"),
    )
    .await;
    let events = done.rest(5).await;
    assert_eq!(
        events.last().unwrap()["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );

    // 0.3 name of the same method.
    let mut old = EventStream::open(&url, &token, "message/stream", text_message("stream 1")).await;
    assert_eq!(old.rest(5).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_joins_a_working_task() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let id = start_working(&url, &token, "long job").await;
    let mut sub = EventStream::open(&url, &token, "SubscribeToTask", json!({"id": id})).await;
    let first = sub.expect(5).await;
    assert_eq!(first["result"]["task"]["id"], id.as_str());
    assert_eq!(
        first["result"]["task"]["status"]["state"],
        "TASK_STATE_WORKING"
    );
    rpc(&url, &token, "SendMessage", follow_up(&id, "ping")).await;
    // The follow-up itself, then the agent's answer to it.
    let reply = sub.expect(5).await;
    assert_eq!(reply["result"]["message"]["parts"][0]["text"], "ping");
    let update = sub.expect(5).await;
    assert_eq!(
        update["result"]["statusUpdate"]["status"]["message"]["parts"][0]["text"],
        "follow-up 2: ping"
    );
    rpc(&url, &token, "CancelTask", json!({"id": id})).await;
    let canceled = sub.expect(5).await;
    assert_eq!(
        canceled["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_CANCELED"
    );
    assert!(
        sub.next().await.is_none(),
        "closed after the terminal state"
    );

    let mut gone = EventStream::open(&url, &token, "SubscribeToTask", json!({"id": id})).await;
    assert_eq!(gone.rest(5).await[0]["error"]["code"], -32004);
    let mut unknown =
        EventStream::open(&url, &token, "tasks/resubscribe", json!({"id": "nope"})).await;
    assert_eq!(unknown.rest(5).await[0]["error"]["code"], -32001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_configs_and_delivery_to_a_loopback_webhook() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let mut hook = Webhook::start().await;
    let id = start_working(&url, &token, "watch me").await;
    let created = rpc(
        &url,
        &token,
        "CreateTaskPushNotificationConfig",
        json!({
            "taskId": id, "url": hook.url, "token": "tok-1",
            "authentication": {"scheme": "Bearer", "credentials": "secret-cred"}
        }),
    )
    .await;
    let config = &created["result"];
    let config_id = config["id"]
        .as_str()
        .expect("an id is assigned")
        .to_string();
    assert_eq!(config["url"], hook.url.as_str());
    assert_eq!(config["taskId"], id.as_str());

    rpc(&url, &token, "SendMessage", follow_up(&id, "complete")).await;
    let mut seen = Vec::new();
    loop {
        let (headers, body) = hook.expect(10).await;
        assert_eq!(headers["content-type"], "application/a2a+json");
        assert_eq!(headers["authorization"], "Bearer secret-cred");
        assert_eq!(headers["x-a2a-notification-token"], "tok-1");
        let done = body["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED";
        seen.push(body);
        if done {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|b| b["artifactUpdate"]["artifact"]["name"] == "result"),
        "{seen:?}"
    );

    let got = rpc(
        &url,
        &token,
        "GetTaskPushNotificationConfig",
        json!({"taskId": id, "id": config_id}),
    )
    .await;
    assert_eq!(got["result"]["id"], config_id.as_str());
    let listed = rpc(
        &url,
        &token,
        "ListTaskPushNotificationConfigs",
        json!({"taskId": id}),
    )
    .await;
    assert_eq!(listed["result"]["configs"].as_array().unwrap().len(), 1);
    assert_eq!(listed["result"]["nextPageToken"], "");
    let deleted = rpc(
        &url,
        &token,
        "DeleteTaskPushNotificationConfig",
        json!({"taskId": id, "id": config_id}),
    )
    .await;
    assert_eq!(deleted["result"], json!({}));
    assert_eq!(
        code(
            &rpc(
                &url,
                &token,
                "GetTaskPushNotificationConfig",
                json!({"taskId": id, "id": config_id})
            )
            .await
        ),
        -32001
    );

    // A config given with the message itself.
    let mut p = text_message("complete");
    p["configuration"] = json!({"taskPushNotificationConfig": {"url": hook.url}});
    let r = rpc(&url, &token, "SendMessage", p).await;
    let (_, artifact) = hook.expect(10).await;
    assert_eq!(artifact["artifactUpdate"]["taskId"], task_of(&r)["id"]);
    let (_, status) = hook.expect(10).await;
    assert_eq!(status["statusUpdate"]["taskId"], task_of(&r)["id"]);

    let other = start_working(&url, &token, "x").await;
    for (url_param, why) in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://metadata.google.internal/", "metadata"),
        ("file:///etc/passwd", "http"),
    ] {
        let r = rpc(
            &url,
            &token,
            "CreateTaskPushNotificationConfig",
            json!({"taskId": other, "url": url_param}),
        )
        .await;
        assert_eq!(code(&r), -32602, "{url_param}");
        assert!(r["error"]["message"].as_str().unwrap().contains(why), "{r}");
    }
    let r = rpc(
        &url,
        &token,
        "tasks/pushNotificationConfig/set",
        json!({"taskId": "nope", "pushNotificationConfig": {"url": hook.url}}),
    )
    .await;
    assert_eq!(code(&r), -32001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_and_alias() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    assert_eq!(
        code(&rpc(&url, &token, "GetExtendedAgentCard", json!({})).await),
        -32007
    );
    assert_eq!(
        code(
            &rpc(
                &url,
                &token,
                "agent/getAuthenticatedExtendedCard",
                json!({})
            )
            .await
        ),
        -32007
    );
    let image = message(json!([{"raw": "aGk=", "mediaType": "image/png"}]));
    assert_eq!(code(&rpc(&url, &token, "SendMessage", image).await), -32005);

    let r = rpc(&url, &token, "SendMessage", text_message("panic")).await;
    assert_eq!(code(&r), -32006);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("guest panic"),
        "{r}"
    );
    let failed_id = r["error"]["data"][0]["metadata"]["taskId"]
        .as_str()
        .unwrap();
    let t = rpc(&url, &token, "GetTask", json!({"id": failed_id})).await;
    assert_eq!(t["result"]["status"]["state"], "TASK_STATE_FAILED");
    assert!(
        t["result"]["status"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .contains("panic")
    );
    let after = rpc(&url, &token, "SendMessage", text_message("complete")).await;
    assert_eq!(
        task_of(&after)["status"]["state"],
        "TASK_STATE_COMPLETED",
        "the recycled instance answers"
    );

    let auth = format!("Bearer {token}");
    let body =
        json!({"jsonrpc": "2.0", "id": 9, "method": "SendMessage", "params": text_message("v")})
            .to_string();
    for (version, ok) in [("1.0", true), ("0.3", false), ("2.0", false)] {
        let r = http(
            "POST",
            &url,
            &[("authorization", &auth), ("A2A-Version", version)],
            body.clone(),
        )
        .await
        .json();
        assert_eq!(r.get("result").is_some(), ok, "version {version}: {r}");
        if !ok {
            assert_eq!(code(&r), -32009);
            assert!(r["error"]["message"].as_str().unwrap().contains("1.0"));
        }
    }
    let r = http(
        "POST",
        &format!("{url}?A2A-Version=7"),
        &[("authorization", &auth)],
        body.clone(),
    )
    .await
    .json();
    assert_eq!(code(&r), -32009);
    let note =
        json!({"jsonrpc": "2.0", "method": "SendMessage", "params": text_message("notified")})
            .to_string();
    assert_eq!(
        http("POST", &url, &[("authorization", &auth)], note)
            .await
            .status,
        204
    );
    let a2a_json = http(
        "POST",
        &url,
        &[
            ("authorization", &auth),
            ("content-type", "application/a2a+json"),
        ],
        body,
    )
    .await;
    assert!(a2a_json.json().get("result").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_has_validators_and_a_client_that_has_it_gets_304() {
    let server = Server::start(5, &[]);
    let s = SessionInfo::from(&server.session(None).await);
    let url = format!("{}.well-known/agent-card.json", s.urls[0]);
    let first = http("GET", &url, &[], "").await;
    assert_eq!(first.status, 200);
    let header = |r: &Response, name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let etag = header(&first, "etag");
    let modified = header(&first, "last-modified");
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    assert!(modified.ends_with(" GMT"), "{modified}");
    let ask = |headers: Vec<(&'static str, String)>| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http("GET", &url, &headers, "").await
        }
    };
    let cached = ask(vec![("if-none-match", etag.clone())]).await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(header(&cached, "etag"), etag);
    let listed = ask(vec![("if-none-match", format!("\"other\", W/{etag}"))]).await;
    assert_eq!(listed.status, 304, "a weak match in a list");
    assert_eq!(
        ask(vec![("if-modified-since", modified.clone())])
            .await
            .status,
        304
    );
    let stale = ask(vec![("if-none-match", "\"other\"".to_string())]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, first.body);
    let old = "Thu, 01 Jan 1970 00:00:00 GMT".to_string();
    assert_eq!(
        ask(vec![("if-modified-since", old.clone())]).await.status,
        200
    );
    // If-None-Match decides when both are sent.
    let both = ask(vec![
        ("if-none-match", "\"other\"".to_string()),
        ("if-modified-since", modified),
    ])
    .await;
    assert_eq!(both.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_to_an_interrupted_task_follows_it_to_the_end() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let asked = rpc(&url, &token, "SendMessage", text_message("input")).await;
    let task = asked["result"]["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        asked["result"]["task"]["status"]["state"],
        "TASK_STATE_INPUT_REQUIRED"
    );
    let mut watch = EventStream::open(&url, &token, "SubscribeToTask", json!({"id": task})).await;
    let first = watch.expect(5).await;
    assert_eq!(
        first["result"]["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{first}"
    );
    let follow_up = |text: &str| {
        let mut params = text_message(text);
        params["message"]["taskId"] = json!(task);
        params
    };
    for (text, state) in [
        ("more", "TASK_STATE_WORKING"),
        ("input", "TASK_STATE_INPUT_REQUIRED"),
        ("complete", "TASK_STATE_COMPLETED"),
    ] {
        rpc(&url, &token, "SendMessage", follow_up(text)).await;
        let mut seen_reply = false;
        loop {
            let event = watch.expect(5).await;
            let result = &event["result"];
            if result["message"]["role"] == "ROLE_USER" {
                assert_eq!(result["message"]["parts"][0]["text"], text, "{event}");
                seen_reply = true;
            }
            if result["statusUpdate"]["status"]["state"] == state {
                break;
            }
        }
        assert!(seen_reply, "the follow-up {text:?} was delivered");
    }
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.next())
            .await
            .expect("the stream ends")
            .is_none(),
        "the stream ends at the terminal state"
    );
}

/// A CA made for the test, and an HTTPS webhook on loopback whose
/// certificate (for `localhost` only) it signed. Returns the CA's PEM,
/// the webhook's port, and the bodies it receives.
async fn tls_webhook() -> (String, u16, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let _ =
                                tx.send(serde_json::from_slice::<Value>(&body).unwrap_or_default());
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::new()),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (ca.pem(), port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_go_over_tls_to_a_verified_host_only() {
    let (ca_pem, port, mut received) = tls_webhook().await;
    let ca_file = repo_root()
        .join("target")
        .join(format!("webhook-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let trusting = Server::start(
        5,
        &["--set", &format!("push.ca_file={}", ca_file.display())],
    );
    let (url, token) = conformance_agent(&trusting).await;
    // Each call registers `hook` on a new task the agent completes.
    let push = async |url: &str, token: &str, hook: String| {
        let mut params = text_message("complete");
        params["configuration"] = json!({"taskPushNotificationConfig": {"url": hook}});
        let r = rpc(url, token, "SendMessage", params).await;
        assert!(r.get("result").is_some(), "{r}");
    };
    // The host name matches the certificate, which chains to the CA.
    push(&url, &token, format!("https://localhost:{port}/hook")).await;
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
        .await
        .expect("a delivery over TLS")
        .unwrap();
    assert!(first.is_object(), "{first}");
    while tokio::time::timeout(std::time::Duration::from_millis(500), received.recv())
        .await
        .is_ok()
    {}
    // The same webhook by address: the certificate does not name it.
    push(&url, &token, format!("https://127.0.0.1:{port}/hook")).await;
    // A server that does not trust the CA delivers nothing either.
    let strict = Server::start(5, &[]);
    let (url, token) = conformance_agent(&strict).await;
    push(&url, &token, format!("https://localhost:{port}/hook")).await;
    let nothing = tokio::time::timeout(std::time::Duration::from_secs(3), received.recv()).await;
    assert!(
        nothing.is_err(),
        "no delivery without a verified certificate and host name: {nothing:?}"
    );
    let _ = std::fs::remove_file(&ca_file);
}

/// `message/send` params in 0.3 form.
fn v03_message(text: &str) -> Value {
    json!({"message": {"kind": "message", "messageId": uuid_like(), "role": "user",
        "parts": [{"kind": "text", "text": text}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_0_3_dialect_answers_0_3_method_names_in_0_3_form() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let working = rpc(&url, &token, "message/send", v03_message("work on it")).await;
    let task = &working["result"];
    assert_eq!(task["kind"], "task", "the result is the task: {working}");
    assert_eq!(task["status"]["state"], "working");
    assert_eq!(task["status"]["message"]["role"], "agent");
    assert_eq!(task["history"][0]["role"], "user");
    assert_eq!(task["history"][0]["parts"][0]["kind"], "text");
    let id = task["id"].as_str().unwrap().to_string();
    let got = rpc(
        &url,
        &token,
        "tasks/get",
        json!({"id": id, "historyLength": 1}),
    )
    .await;
    assert_eq!(got["result"]["kind"], "task");
    assert_eq!(got["result"]["history"].as_array().unwrap().len(), 1);

    // Push configs nest in their task's, and round-trip.
    let hook = Webhook::start().await;
    let set = rpc(
        &url,
        &token,
        "tasks/pushNotificationConfig/set",
        json!({"taskId": id, "pushNotificationConfig": {"url": hook.url, "token": "t03"}}),
    )
    .await;
    assert_eq!(set["result"]["taskId"], id.as_str(), "{set}");
    assert_eq!(
        set["result"]["pushNotificationConfig"]["url"],
        hook.url.as_str()
    );
    let config_id = set["result"]["pushNotificationConfig"]["id"].clone();
    let get = rpc(
        &url,
        &token,
        "tasks/pushNotificationConfig/get",
        json!({"id": id, "pushNotificationConfigId": config_id}),
    )
    .await;
    assert_eq!(
        get["result"]["pushNotificationConfig"]["token"], "t03",
        "{get}"
    );
    let list = rpc(
        &url,
        &token,
        "tasks/pushNotificationConfig/list",
        json!({"id": id}),
    )
    .await;
    assert_eq!(list["result"].as_array().map(Vec::len), Some(1), "{list}");
    let deleted = rpc(
        &url,
        &token,
        "tasks/pushNotificationConfig/delete",
        json!({"id": id, "pushNotificationConfigId": config_id}),
    )
    .await;
    assert!(
        deleted["result"].is_null() && deleted.get("error").is_none(),
        "{deleted}"
    );

    let mut resubscribed =
        EventStream::open(&url, &token, "tasks/resubscribe", json!({"id": id})).await;
    let now = resubscribed.expect(5).await;
    assert_eq!(now["result"]["kind"], "task", "{now}");
    assert_eq!(now["result"]["status"]["state"], "working");

    let canceled = rpc(&url, &token, "tasks/cancel", json!({"id": id})).await;
    assert_eq!(canceled["result"]["status"]["state"], "canceled");
    let ended = resubscribed.expect(5).await;
    assert_eq!(ended["result"]["kind"], "status-update", "{ended}");
    assert_eq!(ended["result"]["status"]["state"], "canceled");
    assert_eq!(ended["result"]["final"], true);
    let missing = rpc(&url, &token, "tasks/get", json!({"id": "no-such-task"})).await;
    assert_eq!(code(&missing), -32001);

    let reply = rpc(&url, &token, "message/send", v03_message("reply")).await;
    assert_eq!(reply["result"]["kind"], "message", "{reply}");
    assert_eq!(reply["result"]["role"], "agent");

    let mut stream =
        EventStream::open(&url, &token, "message/stream", v03_message("stream 2")).await;
    let events = stream.rest(10).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["result"]["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds.first(), Some(&"task"), "{events:?}");
    assert!(kinds.contains(&"artifact-update"), "{kinds:?}");
    let last = &events.last().unwrap()["result"];
    assert_eq!(last["kind"], "status-update");
    assert_eq!(last["status"]["state"], "completed");
    assert_eq!(last["final"], true);
    let finals = events
        .iter()
        .filter(|e| e["result"]["final"] == true)
        .count();
    assert_eq!(finals, 1, "only the last event is final: {events:?}");

    // A 0.3 client may say which version it speaks; a 1.0 name may not
    // be sent as 0.3.
    let auth = format!("Bearer {token}");
    let body = |method: &str| {
        json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": v03_message("x")}).to_string()
    };
    let old = http(
        "POST",
        &url,
        &[("authorization", &auth), ("A2A-Version", "0.3")],
        body("message/send"),
    )
    .await
    .json();
    assert_eq!(old["result"]["kind"], "task", "{old}");
}
