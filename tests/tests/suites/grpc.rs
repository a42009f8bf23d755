//! The gRPC binding on every agent, beside JSON-RPC and REST: the
//! specification's `A2AService` on the agent's own port (HTTP/2 without
//! TLS), one task store behind all three bindings, statuses with
//! `ErrorInfo`, the session's token and budgets, hostile frames, and
//! host-name routing on the gateway. The official Python client over
//! gRPC is in the interop suite.

use std::time::Duration;

use a2a_pb::a2a_service_client::A2aServiceClient;
use a2a_pb::{
    CancelTaskRequest, GetTaskRequest, ListTasksRequest, Message, Part, Role, SendMessageRequest,
    SubscribeToTaskRequest, TaskState, part, send_message_response, stream_response,
};
use a2a_sandbox_tests::*;
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

/// Adds a bearer token to every call.
#[derive(Clone)]
struct Token(Option<String>);

impl Interceptor for Token {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            let value = MetadataValue::try_from(format!("Bearer {token}")).unwrap();
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    }
}

type Client = A2aServiceClient<tonic::service::interceptor::InterceptedService<Channel, Token>>;

/// A client of the gRPC target `target` (`host:port`), reaching it at
/// `addr` when given (host-name routing), with `token` on every call.
async fn client(target: &str, addr: Option<&str>, token: Option<&str>) -> Client {
    let mut endpoint = Endpoint::from_shared(format!("http://{}", addr.unwrap_or(target))).unwrap();
    if addr.is_some() {
        endpoint = endpoint.origin(format!("http://{target}").parse().unwrap());
    }
    let channel = endpoint.connect().await.expect("a gRPC connection");
    A2aServiceClient::with_interceptor(channel, Token(token.map(str::to_string)))
}

fn user_text(text: &str) -> SendMessageRequest {
    SendMessageRequest {
        message: Some(Message {
            message_id: format!("m-{}", rand_suffix()),
            role: Role::User as i32,
            parts: vec![Part {
                content: Some(part::Content::Text(text.to_string())),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The task a SendMessage answered with.
fn task_of(response: a2a_pb::SendMessageResponse) -> a2a_pb::Task {
    match response.payload {
        Some(send_message_response::Payload::Task(task)) => task,
        other => panic!("a task, not {other:?}"),
    }
}

/// A task left working, and a subscription to it.
async fn working_and_followed(
    grpc: &mut Client,
) -> (a2a_pb::Task, tonic::Streaming<a2a_pb::StreamResponse>) {
    let task = task_of(
        grpc.send_message(user_text("work"))
            .await
            .unwrap()
            .into_inner(),
    );
    let follow = grpc
        .subscribe_to_task(SubscribeToTaskRequest {
            id: task.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (task, follow)
}

fn state_of(task: &a2a_pb::Task) -> TaskState {
    TaskState::try_from(task.status.as_ref().unwrap().state).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_over_grpc_is_read_over_rest_and_cancelled_over_json_rpc() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let target = grpc_target(&url).await;
    assert_eq!(
        format!("http://{target}/"),
        url,
        "gRPC at the agent's own port"
    );
    let mut grpc = client(&target, None, Some(&token)).await;

    let task = task_of(
        grpc.send_message(user_text("work"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(state_of(&task), TaskState::Working);
    let id = task.id.clone();

    // Read over REST, cancelled over JSON-RPC, read back over gRPC.
    let auth = format!("Bearer {token}");
    let read = http(
        "GET",
        &format!("{url}tasks/{id}"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["status"]["state"], "TASK_STATE_WORKING");
    let canceled = rpc(&url, &token, "CancelTask", json!({"id": id})).await;
    assert_eq!(
        canceled["result"]["status"]["state"], "TASK_STATE_CANCELED",
        "{canceled}"
    );
    let got = grpc
        .get_task(GetTaskRequest {
            id: id.clone(),
            history_length: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&got), TaskState::Canceled);
    assert_eq!(got.history.len(), 1, "historyLength is honoured");

    // Created over JSON-RPC, listed and cancelled over gRPC.
    let sent = rpc(&url, &token, "SendMessage", text_message("work")).await;
    let other = sent["result"]["task"]["id"].as_str().unwrap().to_string();
    let listed = grpc
        .list_tasks(ListTasksRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.tasks.iter().map(|t| t.id.as_str()).collect();
    assert!(
        ids.contains(&other.as_str()) && ids.contains(&id.as_str()),
        "{ids:?}"
    );
    let canceled = grpc
        .cancel_task(CancelTaskRequest {
            id: other,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state_of(&canceled), TaskState::Canceled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_streams_carry_the_task_then_its_events_to_the_end() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let mut grpc = client(&grpc_target(&url).await, None, Some(&token)).await;
    let mut events = grpc
        .send_streaming_message(user_text("stream 2"))
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    let mut last_state = None;
    while let Some(event) = events.message().await.unwrap() {
        match event.payload.unwrap() {
            stream_response::Payload::Task(_) => kinds.push("task"),
            stream_response::Payload::StatusUpdate(update) => {
                last_state = update.status.map(|s| s.state);
                kinds.push("status");
            }
            stream_response::Payload::ArtifactUpdate(_) => kinds.push("artifact"),
            stream_response::Payload::Message(_) => kinds.push("message"),
        }
    }
    assert_eq!(kinds[0], "task", "{kinds:?}");
    assert!(kinds.contains(&"artifact"), "{kinds:?}");
    assert_eq!(last_state, Some(TaskState::Completed as i32), "{kinds:?}");

    // A subscription follows a working task until a cancel (over
    // JSON-RPC) ends it.
    let (task, mut follow) = working_and_followed(&mut grpc).await;
    let first = follow.message().await.unwrap().unwrap();
    assert!(matches!(
        first.payload,
        Some(stream_response::Payload::Task(_))
    ));
    rpc(&url, &token, "CancelTask", json!({"id": task.id})).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        let mut last = None;
        while let Some(event) = follow.message().await.unwrap() {
            if let Some(stream_response::Payload::StatusUpdate(u)) = event.payload {
                last = u.status.map(|s| s.state);
            }
        }
        last
    })
    .await
    .expect("the subscription ends");
    assert_eq!(ended, Some(TaskState::Canceled as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_errors_are_statuses_with_the_a2a_error_info() {
    let server = Server::start(5, &["--set", "budgets.streams=1"]);
    let (url, token) = conformance_agent(&server).await;
    let target = grpc_target(&url).await;

    // The session's token, as for every binding.
    let mut anonymous = client(&target, None, None).await;
    let refused = anonymous
        .list_tasks(ListTasksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Another token is refused as HTTP refuses it (403, and REST's
    // PERMISSION_DENIED).
    let mut wrong = client(&target, None, Some("not-the-token")).await;
    let refused = wrong
        .list_tasks(ListTasksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let mut grpc = client(&target, None, Some(&token)).await;
    let missing = grpc
        .get_task(GetTaskRequest {
            id: "no-such-task".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let info = missing.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "TASK_NOT_FOUND");
    assert_eq!(info.domain, "a2a-protocol.org");
    assert_eq!(info.metadata["taskId"], "no-such-task");

    // A message without parts: INVALID_ARGUMENT naming the field.
    let mut empty = user_text("");
    empty.message.as_mut().unwrap().parts.clear();
    let invalid = grpc.send_message(empty).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");
    let bad = invalid.get_details_bad_request().expect("a BadRequest");
    assert!(
        bad.field_violations
            .iter()
            .any(|v| v.field.contains("parts") || v.description.contains("parts")),
        "{bad:?}"
    );

    // A finished task cannot be cancelled: FAILED_PRECONDITION.
    let done = task_of(
        grpc.send_message(user_text("complete"))
            .await
            .unwrap()
            .into_inner(),
    );
    let not_cancelable = grpc
        .cancel_task(CancelTaskRequest {
            id: done.id,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(not_cancelable.code(), Code::FailedPrecondition);
    assert_eq!(
        not_cancelable.get_details_error_info().unwrap().reason,
        "TASK_NOT_CANCELABLE"
    );

    // The session's one stream is open over gRPC: a second, over
    // JSON-RPC, and a third, over gRPC, are refused for budget.
    let mut open = grpc
        .send_streaming_message(user_text("work"))
        .await
        .unwrap()
        .into_inner();
    open.message().await.unwrap().expect("the task");
    let second = http(
        "POST",
        &url,
        &[("authorization", &format!("Bearer {token}"))],
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage",
               "params": text_message("work")})
        .to_string(),
    )
    .await;
    assert_eq!(second.status, 429, "{}", second.text());
    let third = grpc
        .send_streaming_message(user_text("work"))
        .await
        .unwrap_err();
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    assert_eq!(
        third.get_details_error_info().unwrap().reason,
        "OVER_BUDGET"
    );
    assert!(third.get_details_retry_info().is_some(), "a RetryInfo");
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_grpc_frames_get_statuses_never_a_panic_or_a_hang() {
    use prost::Message as _;
    let server = Server::start(5, &["--set", "http.max_body_bytes=65536"]);
    let (url, token) = conformance_agent(&server).await;
    let target = grpc_target(&url).await;
    let send = "/lf.a2a.v1.A2AService/SendMessage";
    let call = |path: &'static str, body: Vec<u8>| {
        let (target, token) = (target.clone(), token.clone());
        async move {
            let (status, message) = raw_call(&target, path, "application/grpc", &token, body).await;
            (status.parse::<i32>().map(Code::from).unwrap(), message)
        }
    };

    // Bytes that are not a SendMessageRequest: the message does not
    // decode (tonic, like grpc-go, says INTERNAL for that).
    let (code, message) = call(send, framed(&[0xff; 32])).await;
    assert_eq!(code, Code::Internal, "{message}");
    assert!(message.contains("decode"), "{message}");
    // A frame that says it is longer than what follows.
    let mut short = framed(b"\x0a\x02hi");
    short[4] = 200;
    let (code, message) = call(send, short).await;
    assert_ne!(code, Code::Ok, "{message}");
    // A message larger than the body limit (64 KiB here).
    let big = user_text(&"x".repeat(100_000)).encode_to_vec();
    let (code, message) = call(send, framed(&big)).await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    // A frame header that claims 4 GiB.
    let mut huge = framed(b"");
    huge[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
    let (code, message) = call(send, huge).await;
    assert_eq!(code, Code::OutOfRange, "{message}");
    assert!(message.contains("too%20large"), "{message}");
    // Data nested far deeper than the decoder allows.
    let mut nested = prost_types::Value {
        kind: Some(prost_types::value::Kind::NullValue(0)),
    };
    for _ in 0..200 {
        nested = prost_types::Value {
            kind: Some(prost_types::value::Kind::ListValue(
                prost_types::ListValue {
                    values: vec![nested],
                },
            )),
        };
    }
    let mut deep = user_text("complete");
    deep.message.as_mut().unwrap().parts[0].content = Some(part::Content::Data(nested));
    let (code, message) = call(send, framed(&deep.encode_to_vec())).await;
    assert_eq!(code, Code::Internal, "{message}");
    assert!(message.contains("recursion"), "{message}");
    // A method the service does not have, and a compressed message it
    // did not offer to take.
    let (code, _) = call("/lf.a2a.v1.A2AService/NoSuchMethod", framed(b"")).await;
    assert_eq!(code, Code::Unimplemented);
    let mut compressed = framed(&user_text("complete").encode_to_vec());
    compressed[0] = 1;
    let (code, message) = call(send, compressed).await;
    assert_ne!(code, Code::Ok, "{message}");

    // The agent still answers over every binding.
    let mut client = client(&target, None, Some(&token)).await;
    let task = task_of(
        client
            .send_message(user_text("complete"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(state_of(&task), TaskState::Completed);
    let jsonrpc = rpc(&url, &token, "GetTask", json!({"id": task.id})).await;
    assert_eq!(jsonrpc["result"]["status"]["state"], "TASK_STATE_COMPLETED");
    let panics = server.log_lines("panicked");
    assert!(panics.is_empty(), "no handler panicked: {panics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_but_a_live_stream_is_not() {
    let server = Server::start(5, &["--set", "http.header_timeout_secs=1"]);
    let (url, token) = conformance_agent(&server).await;
    let target = grpc_target(&url).await;

    // One call, then nothing: the server closes the connection.
    let stream = tokio::net::TcpStream::connect(&target).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::post(format!("http://{target}/lf.a2a.v1.A2AService/ListTasks"))
        .header("content-type", "application/grpc")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(framed(b""))))
        .unwrap();
    let answered = sender.send_request(req).await.unwrap();
    assert_eq!(answered.status(), 200);
    drop(answered);
    tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .expect("the server closes a connection idle past http.header_timeout_secs")
        .unwrap()
        .expect("closed cleanly (GOAWAY)");

    // A subscription that outlives the timeout is in flight: it stays.
    let mut grpc = client(&target, None, Some(&token)).await;
    let (task, mut follow) = working_and_followed(&mut grpc).await;
    follow.message().await.unwrap().expect("the task");
    tokio::time::sleep(Duration::from_secs(3)).await;
    rpc(&url, &token, "CancelTask", json!({"id": task.id})).await;
    let mut last = None;
    while let Some(event) = follow.message().await.unwrap() {
        if let Some(stream_response::Payload::StatusUpdate(u)) = event.payload {
            last = u.status.map(|s| s.state);
        }
    }
    assert_eq!(last, Some(TaskState::Canceled as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_reaches_agents_on_the_gateway_by_host_name_only() {
    let (server, info, host) = gateway_with_host_names().await;
    // The card at the agent's host name lists gRPC at that host name.
    let mut http1 = a2a_sandbox_tests::Client::connect(&server.addr.to_string()).await;
    let card = http1
        .request(
            "GET",
            "/.well-known/agent-card.json",
            &[("host", &host)],
            "",
        )
        .await
        .json();
    let bindings: Vec<&Value> = card["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["protocolBinding"])
        .collect();
    assert_eq!(
        bindings,
        [&json!("JSONRPC"), &json!("HTTP+JSON"), &json!("GRPC")]
    );
    assert_eq!(card["supportedInterfaces"][2]["url"], host.as_str());

    let addr = server.addr.to_string();
    let mut grpc = client(&host, Some(&addr), Some(&info.token)).await;
    let task = task_of(
        grpc.send_message(user_text("complete"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(state_of(&task), TaskState::Completed);

    // A gateway path cannot carry gRPC's fixed paths: its card does not
    // offer it.
    let by_path = http(
        "GET",
        &format!(
            "{}/s/{}/0/.well-known/agent-card.json",
            server.base(),
            info.id
        ),
        &[],
        "",
    )
    .await
    .json();
    let offered = by_path["supportedInterfaces"].to_string();
    assert!(!offered.contains("GRPC"), "{offered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_can_be_turned_off() {
    let server = Server::start(5, &["--set", "bindings.grpc=false"]);
    let (url, token) = conformance_agent(&server).await;
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    assert!(
        !card["supportedInterfaces"].to_string().contains("GRPC"),
        "{card}"
    );
    let target = authority(&url);
    let mut grpc = client(target, None, Some(&token)).await;
    let off = grpc
        .list_tasks(ListTasksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(off.code(), Code::Unimplemented, "{off:?}");
    assert!(off.message().contains("bindings.grpc"), "{off:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_rate_limit_holds_over_grpc_and_json_alike() {
    let server = Server::start(5, &["--set", "http.agent_rate_per_session=5"]);
    let (url, token) = conformance_agent(&server).await;
    let mut grpc = client(&grpc_target(&url).await, None, Some(&token)).await;
    let mut limited = None;
    for _ in 0..15 {
        if let Err(status) = grpc.list_tasks(ListTasksRequest::default()).await {
            limited = Some(status);
            break;
        }
    }
    let limited = limited.expect("the session rate limit hit over gRPC");
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    assert!(limited.message().contains("too fast"), "{limited:?}");
    let wait = limited.get_details_retry_info().expect("a RetryInfo");
    assert!(
        wait.retry_delay
            .is_some_and(|d| d >= Duration::from_secs(1))
    );
    // The bucket is the session's: JSON-RPC is limited too.
    let auth = format!("Bearer {token}");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}});
    let r = http("POST", &url, &[("authorization", &auth)], body.to_string()).await;
    assert_eq!(r.status, 429, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_path_without_the_grpc_content_type_is_not_a_grpc_call() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let auth = format!("Bearer {token}");
    // JSON at a gRPC method's path: no REST endpoint is there.
    let r = http(
        "POST",
        &format!("{url}lf.a2a.v1.A2AService/SendMessage"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        "{}",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_found");
    // gRPC framing in a JSON-RPC body: a JSON-RPC parse error.
    let r = http(
        "POST",
        &url,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        framed(b"\x0a\x00"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"]["code"], -32700, "{}", r.text());
}

/// The text of a message's first part.
fn first_text(message: Option<&Message>) -> &str {
    match message
        .and_then(|m| m.parts.first())
        .and_then(|p| p.content.as_ref())
    {
        Some(part::Content::Text(text)) => text,
        other => panic!("a text part, not {other:?}"),
    }
}

/// Requests and answers of 64 KiB and more are read and written on the
/// server's bulk threads; they arrive whole over every binding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_arrive_whole_over_every_binding() {
    let server = Server::start(5, &[]);
    let (url, token) = conformance_agent(&server).await;
    let mut grpc = client(&grpc_target(&url).await, None, Some(&token)).await;
    let text = format!("work {}", "x".repeat(100_000));
    let answer = format!("working on: {text}");

    // In over gRPC, read back over JSON-RPC.
    let task = task_of(
        grpc.send_message(user_text(&text))
            .await
            .unwrap()
            .into_inner(),
    );
    let status = task.status.as_ref().unwrap();
    assert_eq!(first_text(status.message.as_ref()), answer);
    let got = rpc(&url, &token, "GetTask", json!({"id": task.id})).await;
    assert_eq!(
        got["result"]["history"][0]["parts"][0]["text"],
        text.as_str()
    );

    // In over REST, read back over gRPC.
    let auth = format!("Bearer {token}");
    let sent = http(
        "POST",
        &format!("{url}message:send"),
        &[("authorization", &auth)],
        text_message(&text).to_string(),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let sent = sent.json();
    assert_eq!(
        sent["task"]["status"]["message"]["parts"][0]["text"],
        answer.as_str()
    );
    let got = grpc
        .get_task(GetTaskRequest {
            id: sent["task"]["id"].as_str().unwrap().to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_text(got.history.first()), text);
}
