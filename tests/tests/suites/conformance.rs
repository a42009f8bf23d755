//! Message replies (contract 0.2.0) and the conformance agent's
//! scenarios, chosen by message id as conformance kits choose them,
//! through the real server and the real component.

use a2a_sandbox_tests::*;
use serde_json::{Value, json};

/// `SendMessage` params whose message has this id.
fn with_id(message_id: &str, text: &str) -> Value {
    let mut p = text_message(text);
    p["message"]["messageId"] = json!(message_id);
    p
}

fn state(r: &Value) -> &str {
    r["result"]["task"]["status"]["state"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {r}"))
}

/// The key that names what a stream event is: task, message,
/// statusUpdate or artifactUpdate.
fn kind(event: &Value) -> String {
    event["result"]
        .as_object()
        .and_then(|o| o.keys().next())
        .cloned()
        .unwrap_or_else(|| format!("not a result: {event}"))
}

/// Every event of a SendStreamingMessage with `params`, to its end.
async fn streamed(url: &str, token: &str, params: Value) -> Vec<Value> {
    EventStream::open(url, token, "SendStreamingMessage", params)
        .await
        .rest(10)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_by_message_id_end_as_each_says() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let send = |id: &str| rpc(&url, &token, "SendMessage", with_id(id, "go"));

    assert_eq!(
        state(&send("tck-complete-task-1").await),
        "TASK_STATE_COMPLETED"
    );
    assert_eq!(
        state(&send("tck-reject-task-1").await),
        "TASK_STATE_REJECTED"
    );
    assert_eq!(
        state(&send("tck-anything-else").await),
        "TASK_STATE_COMPLETED"
    );

    let asked = send("tck-input-required-1").await;
    assert_eq!(state(&asked), "TASK_STATE_INPUT_REQUIRED");
    // The follow-up, whatever its id, completes the task.
    let mut follow_up = with_id("tck-input-required-2", "here it is");
    follow_up["message"]["taskId"] = asked["result"]["task"]["id"].clone();
    let done = rpc(&url, &token, "SendMessage", follow_up).await;
    assert_eq!(state(&done), "TASK_STATE_COMPLETED", "{done}");

    for (id, field) in [
        ("tck-artifact-text-1", "text"),
        ("tck-artifact-file-1", "raw"),
        ("tck-artifact-file-url-1", "url"),
        ("tck-artifact-data-1", "data"),
    ] {
        let r = send(id).await;
        assert_eq!(state(&r), "TASK_STATE_COMPLETED", "{id}: {r}");
        let artifacts = r["result"]["task"]["artifacts"].as_array().unwrap();
        assert_eq!(artifacts.len(), 1, "{id}: {r}");
        assert!(
            artifacts[0]["parts"][0].get(field).is_some(),
            "{id}: a {field} part: {r}"
        );
    }

    // A message the agent does not know completes with an echo.
    let echoed = rpc(&url, &token, "SendMessage", text_message("hello there")).await;
    assert_eq!(state(&echoed), "TASK_STATE_COMPLETED");
    assert_eq!(
        echoed["result"]["task"]["status"]["message"]["parts"][0]["text"],
        "echo: hello there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reply_is_the_whole_answer_and_leaves_no_task() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    for params in [
        with_id("tck-message-response-1", "go"),
        text_message("reply please"),
    ] {
        let r = rpc(&url, &token, "SendMessage", params).await;
        let message = &r["result"]["message"];
        assert_eq!(message["role"], "ROLE_AGENT", "{r}");
        assert!(message["parts"][0]["text"].is_string(), "{r}");
        assert!(message["contextId"].is_string(), "{r}");
        assert!(r["result"].get("task").is_none(), "{r}");
    }
    let listed = rpc(&url, &token, "ListTasks", json!({})).await;
    assert_eq!(listed["result"]["totalSize"], 0, "{listed}");

    let events = streamed(&url, &token, with_id("tck-message-response-2", "go")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(kind(&events[0]), "message");
    assert_eq!(events[0]["result"]["message"]["role"], "ROLE_AGENT");

    // A task the client already holds completes with the reply.
    let mut at_once = with_id("tck-message-response-3", "go");
    at_once["configuration"] = json!({"returnImmediately": true});
    let r = rpc(&url, &token, "SendMessage", at_once).await;
    let id = r["result"]["task"]["id"].clone();
    let got = task_in_state(&url, &token, &id, "TASK_STATE_COMPLETED", 5).await;
    assert_eq!(
        got["result"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{got}"
    );
    assert_eq!(got["result"]["status"]["message"]["role"], "ROLE_AGENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_scenarios_send_updates_then_artifacts_then_completion_in_order() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    for id in [
        "tck-stream-001",
        "tck-stream-003",
        "tck-stream-ordering-001",
    ] {
        let events = streamed(&url, &token, with_id(id, "go")).await;
        let kinds: Vec<String> = events.iter().map(kind).collect();
        assert_eq!(
            kinds,
            [
                "task",
                "statusUpdate",
                "statusUpdate",
                "statusUpdate",
                "artifactUpdate",
                "statusUpdate"
            ],
            "{id}: {events:?}"
        );
        let last = &events[5]["result"]["statusUpdate"]["status"]["state"];
        assert_eq!(last, "TASK_STATE_COMPLETED", "{id}");
    }

    let events = streamed(&url, &token, with_id("tck-stream-artifact-chunks", "go")).await;
    let pieces: Vec<(bool, bool)> = events
        .iter()
        .filter_map(|e| e["result"].get("artifactUpdate"))
        .map(|a| {
            let flag = |name: &str| a[name].as_bool().unwrap_or(false);
            (flag("append"), flag("lastChunk"))
        })
        .collect();
    assert_eq!(
        pieces,
        [(false, false), (true, false), (true, true)],
        "{events:?}"
    );
    let task = &events.last().unwrap()["result"]["statusUpdate"];
    let id = task["taskId"].clone();
    let got = rpc(&url, &token, "GetTask", json!({"id": id})).await;
    let artifacts = got["result"]["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1, "the pieces make one artifact: {got}");
    assert_eq!(artifacts[0]["parts"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resubscribe_scenario_stays_working_then_completes() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let mut params = with_id("test-resubscribe-message-id", "go");
    params["configuration"] = json!({"returnImmediately": true});
    let r = rpc(&url, &token, "SendMessage", params).await;
    let id = r["result"]["task"]["id"].clone();
    let mut watch = EventStream::open(&url, &token, "SubscribeToTask", json!({"id": id})).await;
    let first = watch.expect(5).await;
    assert_eq!(first["result"]["task"]["id"], id);
    let rest = watch.rest(15).await;
    let states: Vec<&str> = rest
        .iter()
        .filter_map(|e| e["result"]["statusUpdate"]["status"]["state"].as_str())
        .collect();
    assert!(
        states.contains(&"TASK_STATE_WORKING"),
        "working a while: {rest:?}"
    );
    assert_eq!(states.last(), Some(&"TASK_STATE_COMPLETED"), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_card_says_nothing_only_tests_would_say() {
    let server = Server::start(5, &[]);
    let (url, _) = conformance_agent(&server).await;
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    let mut words = vec![card["name"].clone(), card["description"].clone()];
    for skill in card["skills"].as_array().unwrap() {
        words.extend([
            skill["name"].clone(),
            skill["description"].clone(),
            skill["tags"].clone(),
        ]);
    }
    let text = Value::Array(words).to_string().to_lowercase();
    for banned in ["test", "tck", "secret", "localhost", "internal"] {
        assert!(!text.contains(banned), "{banned:?} in the card: {text}");
    }
}

/// Calls one conformance instance serves in the memory test: at about a
/// hundred bytes for each finished task, more than the 2 MiB limit below
/// holds if the agent kept them (an agent that did failed at 14,336).
const MANY_TASKS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_leave_nothing_in_the_agents_memory() {
    // 2 MiB is the agent's own need with room to spare, and far below
    // what MANY_TASKS remembered tasks would take. (A directory of its
    // own: code compiled for another memory size is compiled afresh.)
    let dir = scratch("conformance-memory");
    std::fs::copy(built("conformance"), dir.join("conformance.wasm")).unwrap();
    let server = Server::start_in(&dir, 5, &["--set", "limits.memory_mib=2"]);
    let (url, token) = conformance_agent(&server).await;
    let mut client = Client::connect(authority(&url)).await;
    let auth = format!("Bearer {token}");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": text_message("complete")})
    .to_string();
    for call in 0..MANY_TASKS {
        let r = client
            .request("POST", "/", &[("authorization", &auth)], body.clone())
            .await;
        let answer = r.json();
        assert_eq!(
            answer["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
            "call {call}: {answer}"
        );
    }
    // A task left open is still remembered: its follow-ups are counted.
    let opened = rpc(&url, &token, "SendMessage", text_message("work")).await;
    let mut follow_up = text_message("complete");
    follow_up["message"]["taskId"] = opened["result"]["task"]["id"].clone();
    let done = rpc(&url, &token, "SendMessage", follow_up).await;
    assert_eq!(
        done["result"]["task"]["status"]["message"]["parts"][0]["text"],
        "completed after 2 messages",
        "{done}"
    );
}
