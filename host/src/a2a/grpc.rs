//! The gRPC binding (specification section 10): the `A2AService` of the
//! specification's `a2a.proto`, as the A2A project's `a2a-pb` crate
//! compiles it, served by tonic from the same [`A2aService`] and task
//! store as the other bindings.
//!
//! Each request becomes the ProtoJSON params the REST binding produces,
//! and each answer (or streamed event) the proto message again. The
//! crossing is by the binary form: `a2a-pb`'s proto types and their
//! ProtoJSON twins are compiled from the one file, so they share it.
//! Errors become statuses with the code of section 10.6 and the error's
//! `google.rpc` details (`ErrorInfo`, `BadRequest`) in
//! `grpc-status-details-bin`.
//!
//! The session's checks (token, rate, draining) happen before a request
//! gets here, on its HTTP/2 headers, which are its metadata.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use a2a_pb::a2a_service_server::{A2aService as A2aProtoService, A2aServiceServer};
use a2a_pb::protojson as twin;
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::Full;
use hyper::body::Frame;
use hyper::{Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tonic::codegen::Service as _;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::service::{A2aService, AgentBackend, Method, Reply};

/// Whether a request is a gRPC call (by its content type).
pub fn is_grpc(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|t| t.starts_with(b"application/grpc"))
}

/// Answers one gRPC call whose whole request body is `body`. Messages
/// larger than `max_message` bytes are refused with `RESOURCE_EXHAUSTED`.
pub async fn answer<B: AgentBackend>(
    service: &Arc<A2aService<B>>,
    parts: hyper::http::request::Parts,
    body: Bytes,
    max_message: usize,
) -> Response<GrpcBody> {
    let agent = GrpcAgent {
        service: Arc::clone(service),
    };
    let mut server = A2aServiceServer::new(agent)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(usize::MAX);
    let request = Request::from_parts(parts, Full::new(body));
    match server.call(request).await {
        Ok(response) => response.map(GrpcBody),
        Err(never) => match never {},
    }
}

/// The refusal of a call to a busy agent, decided from its path before
/// its message is read ([`A2aService::busy_before_reading`]): `None` for
/// any other call, or when the agent has a place for it.
pub fn busy_before_reading<B: AgentBackend>(
    service: &A2aService<B>,
    parts: &hyper::http::request::Parts,
) -> Option<Response<GrpcBody>> {
    let method = match parts.uri.path().strip_prefix("/lf.a2a.v1.A2AService/")? {
        "SendMessage" => Method::SendMessage,
        "SendStreamingMessage" => Method::SendStreamingMessage,
        _ => return None,
    };
    let version = parts
        .headers
        .get("a2a-version")
        .and_then(|v| v.to_str().ok());
    let busy = service.busy_before_reading(method, version.map(str::trim))?;
    Some(refusal(status_of(&super::rest::error_body(&busy), true)))
}

/// A status as a whole gRPC response (headers only), for calls refused
/// before they reach the service.
pub fn refusal(status: Status) -> Response<GrpcBody> {
    status.into_http().map(GrpcBody)
}

/// A status saying the client is too fast or over its budget, with the
/// time to wait in a `RetryInfo`.
pub fn retry_later(code: Code, message: impl Into<String>, wait: Duration) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_retry_info(Some(wait.max(Duration::from_secs(1)))),
    )
}

/// tonic's response body, as the server's connections send it. Its only
/// error is a message that failed to encode, which tonic already turns
/// into the stream's status; should one still surface, the body ends.
pub struct GrpcBody(tonic::body::Body);

impl hyper::body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(status))) => {
                tracing::warn!(status = %status, "a gRPC response body failed; ended it");
                Poll::Ready(None)
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.0.size_hint()
    }
}

/// The generated service's implementation: one agent's [`A2aService`].
struct GrpcAgent<B> {
    service: Arc<A2aService<B>>,
}

/// The events of a streaming method.
type Events = Pin<Box<dyn Stream<Item = Result<a2a_pb::StreamResponse, Status>> + Send>>;

impl<B: AgentBackend> GrpcAgent<B> {
    /// Calls `method` with `request`'s params; the answer is read as
    /// `Res` by way of its twin `ResTwin`.
    async fn unary<Req, ReqTwin, Res, ResTwin>(
        &self,
        method: Method,
        request: tonic::Request<Req>,
    ) -> Result<tonic::Response<Res>, Status>
    where
        Req: prost::Message + Send + 'static,
        ReqTwin: prost::Message + Default + Serialize,
        Res: prost::Message + Default + Send + 'static,
        ResTwin: prost::Message + DeserializeOwned,
    {
        match self.call::<Req, ReqTwin>(method, request).await? {
            Reply::Json(json) => {
                let answer =
                    crate::bulk::run_if_large(json.len(), move || from_json::<ResTwin, Res>(&json));
                Ok(tonic::Response::new(
                    answer.await.unwrap_or_else(abandoned)?,
                ))
            }
            _ => Err(unexpected(method)),
        }
    }

    /// Calls a streaming `method` with `request`'s params.
    async fn stream<Req, ReqTwin>(
        &self,
        method: Method,
        request: tonic::Request<Req>,
    ) -> Result<tonic::Response<Events>, Status>
    where
        Req: prost::Message + Send + 'static,
        ReqTwin: prost::Message + Default + Serialize,
    {
        match self.call::<Req, ReqTwin>(method, request).await? {
            Reply::Stream(frames) => Ok(tonic::Response::new(Box::pin(events(frames)))),
            _ => Err(unexpected(method)),
        }
    }

    /// Hands `request` to the service as the REST binding would, with
    /// the client's `a2a-version`. A refusal is the error's status.
    async fn call<Req, ReqTwin>(
        &self,
        method: Method,
        request: tonic::Request<Req>,
    ) -> Result<Reply, Status>
    where
        Req: prost::Message + Send + 'static,
        ReqTwin: prost::Message + Default + Serialize,
    {
        let version = request
            .metadata()
            .get("a2a-version")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string());
        let size = request.get_ref().encoded_len();
        let request = request.into_inner();
        let params = crate::bulk::run_if_large(size, move || to_json::<Req, ReqTwin>(&request))
            .await
            .unwrap_or_else(abandoned)?;
        match self
            .service
            .call_rest(version.as_deref(), method, params.into())
            .await
        {
            Reply::Failed(_, body) => Err(status_of(&body, false)),
            Reply::OverBudget(body) => Err(status_of(&body, true)),
            reply => Ok(reply),
        }
    }
}

#[tonic::async_trait]
impl<B: AgentBackend> A2aProtoService for GrpcAgent<B> {
    async fn send_message(
        &self,
        request: tonic::Request<a2a_pb::SendMessageRequest>,
    ) -> Result<tonic::Response<a2a_pb::SendMessageResponse>, Status> {
        self.unary::<_, twin::SendMessageRequest, _, twin::SendMessageResponse>(
            Method::SendMessage,
            request,
        )
        .await
    }

    type SendStreamingMessageStream = Events;

    async fn send_streaming_message(
        &self,
        request: tonic::Request<a2a_pb::SendMessageRequest>,
    ) -> Result<tonic::Response<Events>, Status> {
        self.stream::<_, twin::SendMessageRequest>(Method::SendStreamingMessage, request)
            .await
    }

    async fn get_task(
        &self,
        request: tonic::Request<a2a_pb::GetTaskRequest>,
    ) -> Result<tonic::Response<a2a_pb::Task>, Status> {
        self.unary::<_, twin::GetTaskRequest, _, twin::Task>(Method::GetTask, request)
            .await
    }

    async fn list_tasks(
        &self,
        request: tonic::Request<a2a_pb::ListTasksRequest>,
    ) -> Result<tonic::Response<a2a_pb::ListTasksResponse>, Status> {
        self.unary::<_, twin::ListTasksRequest, _, twin::ListTasksResponse>(
            Method::ListTasks,
            request,
        )
        .await
    }

    async fn cancel_task(
        &self,
        request: tonic::Request<a2a_pb::CancelTaskRequest>,
    ) -> Result<tonic::Response<a2a_pb::Task>, Status> {
        self.unary::<_, twin::CancelTaskRequest, _, twin::Task>(Method::CancelTask, request)
            .await
    }

    type SubscribeToTaskStream = Events;

    async fn subscribe_to_task(
        &self,
        request: tonic::Request<a2a_pb::SubscribeToTaskRequest>,
    ) -> Result<tonic::Response<Events>, Status> {
        self.stream::<_, twin::SubscribeToTaskRequest>(Method::SubscribeToTask, request)
            .await
    }

    async fn create_task_push_notification_config(
        &self,
        request: tonic::Request<a2a_pb::TaskPushNotificationConfig>,
    ) -> Result<tonic::Response<a2a_pb::TaskPushNotificationConfig>, Status> {
        self.unary::<_, twin::TaskPushNotificationConfig, _, twin::TaskPushNotificationConfig>(
            Method::CreatePushConfig,
            request,
        )
        .await
    }

    async fn get_task_push_notification_config(
        &self,
        request: tonic::Request<a2a_pb::GetTaskPushNotificationConfigRequest>,
    ) -> Result<tonic::Response<a2a_pb::TaskPushNotificationConfig>, Status> {
        self.unary::<_, twin::GetTaskPushNotificationConfigRequest, _, twin::TaskPushNotificationConfig>(
            Method::GetPushConfig,
            request,
        )
        .await
    }

    async fn list_task_push_notification_configs(
        &self,
        request: tonic::Request<a2a_pb::ListTaskPushNotificationConfigsRequest>,
    ) -> Result<tonic::Response<a2a_pb::ListTaskPushNotificationConfigsResponse>, Status> {
        self.unary::<
            _,
            twin::ListTaskPushNotificationConfigsRequest,
            _,
            twin::ListTaskPushNotificationConfigsResponse,
        >(Method::ListPushConfigs, request)
        .await
    }

    async fn get_extended_agent_card(
        &self,
        request: tonic::Request<a2a_pb::GetExtendedAgentCardRequest>,
    ) -> Result<tonic::Response<a2a_pb::AgentCard>, Status> {
        self.unary::<_, twin::GetExtendedAgentCardRequest, _, twin::AgentCard>(
            Method::GetExtendedAgentCard,
            request,
        )
        .await
    }

    async fn delete_task_push_notification_config(
        &self,
        request: tonic::Request<a2a_pb::DeleteTaskPushNotificationConfigRequest>,
    ) -> Result<tonic::Response<()>, Status> {
        let method = Method::DeletePushConfig;
        match self
            .call::<_, twin::DeleteTaskPushNotificationConfigRequest>(method, request)
            .await?
        {
            Reply::Json(_) => Ok(tonic::Response::new(())),
            _ => Err(unexpected(method)),
        }
    }
}

/// A request's ProtoJSON, by way of its twin.
fn to_json<P, Twin>(request: &P) -> Result<Box<RawValue>, Status>
where
    P: prost::Message,
    Twin: prost::Message + Default + Serialize,
{
    let twin = Twin::decode(request.encode_to_vec().as_slice())
        .map_err(|e| Status::invalid_argument(format!("the request does not decode: {e}")))?;
    serde_json::value::to_raw_value(&twin)
        .map_err(|e| Status::invalid_argument(format!("the request has no JSON form: {e}")))
}

/// A large message's conversion, run as bulk work, panicked (logged there).
fn abandoned<T>(_: crate::bulk::Abandoned) -> Result<T, Status> {
    Err(Status::internal(
        "the server could not convert the message; it has been logged",
    ))
}

/// An answer's proto message, from its ProtoJSON by way of its twin.
fn from_json<Twin, P>(json: &[u8]) -> Result<P, Status>
where
    Twin: prost::Message + DeserializeOwned,
    P: prost::Message + Default,
{
    let twin: Twin = serde_json::from_slice(json).map_err(|e| {
        tracing::error!(error = %e, "an answer does not read as its proto message");
        Status::internal("the server could not encode its answer; it has been logged")
    })?;
    P::decode(twin.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("the answer does not re-encode: {e}")))
}

/// A method answered in a shape it never answers in: a host bug.
fn unexpected(method: Method) -> Status {
    tracing::error!(?method, "a gRPC method got an answer of the wrong kind");
    Status::internal("the server answered in the wrong shape; it has been logged")
}

/// A stream's events, from the REST binding's SSE frames: `data:` holds
/// a StreamResponse, `event: error` the error that ends the stream.
fn events(
    frames: mpsc::Receiver<Bytes>,
) -> impl Stream<Item = Result<a2a_pb::StreamResponse, Status>> {
    futures_util::stream::unfold(Some(frames), |frames| async move {
        let mut frames = frames?;
        let frame = frames.recv().await?;
        if let Some(error) = frame.strip_prefix(b"event: error\ndata: ") {
            return Some((Err(status_of(error.trim_ascii_end(), false)), None));
        }
        let event = frame.strip_prefix(b"data: ").unwrap_or(&frame);
        let event =
            from_json::<twin::StreamResponse, a2a_pb::StreamResponse>(event.trim_ascii_end());
        Some((event, Some(frames)))
    })
}

/// The status of an error the REST binding wrote as a `google.rpc.Status`
/// body: its code by name, its message, and its details. `retry` adds a
/// `RetryInfo` (a refusal for budget: nothing was done).
fn status_of(body: &[u8], retry: bool) -> Status {
    let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &parsed["error"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut details = ErrorDetails::new();
    for detail in error["details"].as_array().into_iter().flatten() {
        match detail["@type"].as_str() {
            Some("type.googleapis.com/google.rpc.ErrorInfo") => {
                let metadata: HashMap<String, String> = detail["metadata"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect();
                details.set_error_info(text(&detail["reason"]), text(&detail["domain"]), metadata);
            }
            Some("type.googleapis.com/google.rpc.BadRequest") => {
                for violation in detail["fieldViolations"].as_array().into_iter().flatten() {
                    details.add_bad_request_violation(
                        text(&violation["field"]),
                        text(&violation["description"]),
                    );
                }
            }
            _ => {}
        }
    }
    if retry {
        details.set_retry_info(Some(Duration::from_secs(1)));
    }
    let code = code_named(error["status"].as_str().unwrap_or_default());
    Status::with_error_details(code, text(&error["message"]), details)
}

/// The gRPC code of a `google.rpc.Code` name.
fn code_named(name: &str) -> Code {
    match name {
        "CANCELLED" => Code::Cancelled,
        "INVALID_ARGUMENT" => Code::InvalidArgument,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "NOT_FOUND" => Code::NotFound,
        "ALREADY_EXISTS" => Code::AlreadyExists,
        "PERMISSION_DENIED" => Code::PermissionDenied,
        "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
        "FAILED_PRECONDITION" => Code::FailedPrecondition,
        "ABORTED" => Code::Aborted,
        "OUT_OF_RANGE" => Code::OutOfRange,
        "UNIMPLEMENTED" => Code::Unimplemented,
        "UNAVAILABLE" => Code::Unavailable,
        "UNAUTHENTICATED" => Code::Unauthenticated,
        "INTERNAL" => Code::Internal,
        _ => Code::Unknown,
    }
}
