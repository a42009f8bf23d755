//! JSON-RPC dispatch for one agent: method names (1.0 and the 0.3
//! aliases), params validation, the task rules, streams, push configs,
//! and the call into the agent through [`AgentBackend`].
//!
//! The agent runs to its end whatever the client does: a client that
//! disconnects, or asked for `returnImmediately`, does not stop it, and
//! its result always reaches the task store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::cost;
use super::error::RpcError;
use super::jsonrpc::{self, Params, RequestId};
use super::push::PushQueue;
use super::tasks::{
    Cursor, Snapshot, StoreError, TaskEvent, TaskQuery, TaskStore, TaskUpdate, new_id,
};
use super::types::{
    GetTaskParams, ListPushConfigsParams, ListTasksParams, Message, PushConfig, PushConfigRef,
    Role, SendMessageParams, StreamResponse, Task, TaskIdParams, TaskState,
};
use super::v03::{self, Dialect, Shape};
use crate::budget::{Held, Kind, SessionBudget};
use crate::config::BindingSettings;
use crate::egress::{Destination, Outbound};
use crate::metrics::{KindLabel, Metrics, metrics};
use prometheus_client::metrics::gauge::Gauge;

/// Media types every agent takes; a part declaring another is refused.
pub const INPUT_MODES: [&str; 2] = ["text/plain", "application/json"];
/// Largest page a client may ask for.
const MAX_PAGE: i32 = 100;
/// Page size when the client gives none.
const DEFAULT_PAGE: i32 = 50;
/// Frames buffered per stream before the forwarder waits for the client.
const STREAM_BUFFER: usize = 32;

/// A message for the agent, with the task it belongs to.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    pub task_id: String,
    pub context_id: String,
    /// True when this message starts the task.
    pub new_task: bool,
    /// Shared with the task store, which keeps it in the history.
    pub message: Arc<Message>,
}

/// Why the agent did not produce an update.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentFailure {
    /// The agent answered with an error: the task fails with this text.
    Refused(String),
    /// The agent crashed (trap, deadline, memory limit): the task fails
    /// and the caller gets `-32006` naming the cause.
    Crashed(Crash),
}

/// Why an agent's call gave no valid answer: the kind of failure, as
/// the sandbox names it (`deadline`, `memory`, `trap`, `panic`, ...; and
/// `invalid_update` for an answer the protocol refuses), and its detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Crash {
    pub kind: &'static str,
    pub detail: String,
}

/// What an agent answered a message with.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentReply {
    /// A bare message: the exchange needs no task.
    Message(Message),
    /// The task's state afterwards.
    Task(TaskUpdate),
}

/// The result of `SendMessage`: `{"task": …}` or `{"message": …}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Sent {
    Task(Task),
    Message(Message),
}

/// Receives progress the agent emits while a call runs: (task id, update).
pub type EmitSink = Arc<dyn Fn(&str, TaskUpdate) + Send + Sync>;

/// What the protocol layer needs of an agent. The host implements it
/// with a Wasm instance. The service calls both methods from a task of
/// their own, never from a request's future, so they always run to the
/// end even when the client that caused them has gone.
pub trait AgentBackend: Send + Sync + 'static {
    /// Handles one message: a reply, or the task's new state.
    fn run(
        &self,
        req: AgentRequest,
        emit: EmitSink,
    ) -> impl Future<Output = Result<AgentReply, AgentFailure>> + Send;

    /// Tells the agent a task was canceled.
    fn cancel(&self, task_id: String) -> impl Future<Output = ()> + Send;
}

/// What to send back for a request.
#[derive(Debug)]
pub enum Reply {
    /// A JSON-RPC response body.
    Json(Vec<u8>),
    /// A JSON-RPC error body refusing the request for budget: sent with
    /// HTTP 429 and `Retry-After`. Nothing was done.
    OverBudget(Vec<u8>),
    /// An SSE stream: each item is one complete `data:` event.
    Stream(mpsc::Receiver<Bytes>),
    /// A REST error: its HTTP status and `google.rpc.Status` body.
    Failed(u16, Vec<u8>),
    /// A notification was processed: nothing to send.
    Nothing,
}

/// The A2A methods, by their 1.0 names; [`Method::parse`] also takes the
/// 0.3 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SendMessage,
    SendStreamingMessage,
    GetTask,
    ListTasks,
    CancelTask,
    SubscribeToTask,
    CreatePushConfig,
    GetPushConfig,
    ListPushConfigs,
    DeletePushConfig,
    GetExtendedAgentCard,
}

impl Method {
    /// The method a name means, in 1.0 or in 0.3 spelling.
    pub fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "SendMessage" | "message/send" => Method::SendMessage,
            "SendStreamingMessage" | "message/stream" => Method::SendStreamingMessage,
            "GetTask" | "tasks/get" => Method::GetTask,
            "ListTasks" | "tasks/list" => Method::ListTasks,
            "CancelTask" | "tasks/cancel" => Method::CancelTask,
            "SubscribeToTask" | "tasks/resubscribe" => Method::SubscribeToTask,
            "CreateTaskPushNotificationConfig" | "tasks/pushNotificationConfig/set" => {
                Method::CreatePushConfig
            }
            "GetTaskPushNotificationConfig" | "tasks/pushNotificationConfig/get" => {
                Method::GetPushConfig
            }
            "ListTaskPushNotificationConfigs"
            | "ListTaskPushNotificationConfig"
            | "tasks/pushNotificationConfig/list" => Method::ListPushConfigs,
            "DeleteTaskPushNotificationConfig" | "tasks/pushNotificationConfig/delete" => {
                Method::DeletePushConfig
            }
            "GetExtendedAgentCard" | "agent/getAuthenticatedExtendedCard" => {
                Method::GetExtendedAgentCard
            }
            _ => return None,
        })
    }

    fn streams(self) -> bool {
        matches!(self, Method::SendStreamingMessage | Method::SubscribeToTask)
    }

    /// The shape of the method's params and result, for the 0.3 dialect.
    fn shape(self) -> Shape {
        match self {
            Method::SendMessage | Method::SendStreamingMessage => Shape::Send,
            Method::GetTask | Method::CancelTask | Method::SubscribeToTask => Shape::Task,
            Method::ListTasks => Shape::TaskList,
            Method::CreatePushConfig => Shape::SetPushConfig,
            Method::GetPushConfig => Shape::GetPushConfig,
            Method::ListPushConfigs => Shape::ListPushConfigs,
            Method::DeletePushConfig => Shape::DeletePushConfig,
            Method::GetExtendedAgentCard => Shape::Other,
        }
    }
}

/// What an agent's server offers beyond the basics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// SendStreamingMessage and SubscribeToTask work.
    pub streaming: bool,
    /// Push notification configs are accepted.
    pub push: bool,
    /// The bindings served beside JSON-RPC.
    pub bindings: BindingSettings,
    /// The agent may answer with a bare message (contract 0.2.0): a
    /// message stream then starts with the agent's first event or its
    /// reply, not with the task as submitted.
    pub message_replies: bool,
}

/// The A2A server of one agent instance: its task store and its backend.
pub struct A2aService<B> {
    backend: Arc<B>,
    tasks: Arc<TaskStore>,
    capabilities: Capabilities,
    /// The owning session's budget; also names it in log lines.
    budget: Arc<SessionBudget>,
    /// How webhooks are reached.
    outbound: Arc<Outbound>,
    /// Calls this agent may hold at once: the one running and the few
    /// allowed to wait. A call that finds none free is refused.
    calls: Arc<Semaphore>,
    /// The `budget_used{kind="queued_calls"}` gauge, looked up once.
    queued: Gauge,
}

/// A call's place with its agent: running, or waiting to run.
struct CallSlot {
    _permit: OwnedSemaphorePermit,
    queued: Gauge,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.queued.dec();
    }
}

/// The params as `T`; large params ([`crate::bulk::LARGE`], such as a
/// message carrying a MiB of nested data) are read as bulk work.
async fn params<T: DeserializeOwned + Send + 'static>(p: &Params) -> Result<T, RpcError> {
    let p = p.clone();
    crate::bulk::run_if_large(p.text().len(), move || parse_params(p.text()))
        .await
        .unwrap_or_else(|_| Err(RpcError::internal()))
}

/// The params as `T`. Only params that do not parse are read a second
/// time, tracking the path, to name the field at fault.
fn parse_params<T: DeserializeOwned>(text: &[u8]) -> Result<T, RpcError> {
    serde_json::from_slice(text).map_err(|first| {
        let mut json = serde_json::Deserializer::from_slice(text);
        let field = match serde_path_to_error::deserialize::<_, T>(&mut json) {
            Err(e) => e.path().to_string(),
            Ok(_) => String::new(),
        };
        let field = if field == "." { String::new() } else { field };
        // serde names the object a required member is missing from; the
        // violation names the member.
        let reason = first.to_string();
        let field = match reason
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            Some(missing) if field.is_empty() => missing.to_string(),
            Some(missing) => format!("{field}.{missing}"),
            None => field,
        };
        RpcError::invalid_params(&field, reason)
    })
}

/// What a client's message must be: an id, some parts, the user's role,
/// and parts of media types this agent takes.
fn check_user_message(message: &Message) -> Result<(), RpcError> {
    if message.message_id.is_empty() {
        return Err(RpcError::invalid_params(
            "message.messageId",
            "message.messageId must not be empty",
        ));
    }
    if message.parts.is_empty() {
        return Err(RpcError::invalid_params(
            "message.parts",
            "message.parts must not be empty",
        ));
    }
    if message.role != Role::User {
        return Err(RpcError::invalid_params(
            "message.role",
            "message.role must be ROLE_USER (\"user\" in A2A 0.3): a client sends only its own turns",
        ));
    }
    for (i, part) in message.parts.iter().enumerate() {
        if let Some(media) = &part.media_type
            && !INPUT_MODES.contains(&media.as_str())
        {
            return Err(RpcError::content_type_not_supported(format!(
                "part {i} is {media}; this agent takes {}",
                INPUT_MODES.join(", ")
            )));
        }
    }
    Ok(())
}

fn history_length(n: Option<i32>) -> Result<Option<usize>, RpcError> {
    match n {
        Some(n) if n < 0 => Err(RpcError::invalid_params(
            "historyLength",
            "historyLength must not be negative",
        )),
        n => Ok(n.map(|n| n as usize)),
    }
}

fn page_size(n: Option<i32>) -> Result<usize, RpcError> {
    match n.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n as usize),
        n => Err(RpcError::invalid_params(
            "pageSize",
            format!("pageSize must be between 1 and {MAX_PAGE}, not {n}"),
        )),
    }
}

/// A method's result, typed, serialised once into the response.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Answer {
    /// SendMessage: `{"task": Task}` or `{"message": Message}`.
    Sent(Sent),
    /// GetTask, CancelTask.
    Task(Task),
    /// ListTasks.
    #[serde(rename_all = "camelCase")]
    Page {
        tasks: Vec<Task>,
        next_page_token: String,
        page_size: usize,
        total_size: usize,
    },
    /// Create and GetTaskPushNotificationConfig.
    Config(PushConfig),
    /// ListTaskPushNotificationConfigs.
    #[serde(rename_all = "camelCase")]
    Configs {
        configs: Vec<PushConfig>,
        next_page_token: String,
    },
    /// DeleteTaskPushNotificationConfig: `{}`.
    Empty {},
}

impl Answer {
    /// The memory the answer's tasks hold: about what it takes to write.
    fn weight(&self) -> usize {
        match self {
            Answer::Sent(Sent::Task(task)) | Answer::Task(task) => cost::task(task),
            Answer::Sent(Sent::Message(message)) => cost::message(message),
            Answer::Page { tasks, .. } => tasks.iter().map(cost::task).sum(),
            Answer::Config(_) | Answer::Configs { .. } | Answer::Empty {} => 0,
        }
    }
}

/// `answer` as `write` writes it. Tens of MiB of history take
/// milliseconds to write out, so a large answer ([`crate::bulk::LARGE`]
/// by the memory its content holds) is bulk work: the threads that serve
/// every other session's requests are not held up by it. `None` if
/// writing panicked (logged).
async fn written(
    answer: Answer,
    write: impl FnOnce(&Answer) -> Vec<u8> + Send + 'static,
) -> Option<Vec<u8>> {
    crate::bulk::run_if_large(answer.weight(), move || write(&answer))
        .await
        .ok()
}

/// The response body for a method's result, in the request's dialect.
fn answer_body(dialect: Dialect, shape: Shape, id: &RequestId, result: &Answer) -> Vec<u8> {
    match dialect {
        Dialect::V1 => jsonrpc::result_body(id, result),
        Dialect::V03 => {
            let v1 = serde_json::to_value(result).expect("answers serialise");
            jsonrpc::result_body(id, &v03::result_from_v1(shape, v1))
        }
    }
}

/// A task that was created or continued, ready for the agent.
struct Prepared {
    request: AgentRequest,
    /// The task as submitted, when the client is shown it before the
    /// agent has run (a stream, or a send that returns at once).
    snapshot: Option<Task>,
    history: Option<usize>,
    return_immediately: bool,
}

/// A JSON-RPC request as read from its body: everything but its params'
/// own type, which the method decides.
struct Read {
    /// `None` for a notification.
    id: Option<RequestId>,
    dialect: Dialect,
    /// The method, or why it cannot be served (unknown, or 0.3 params
    /// that do not translate).
    method: Result<Method, RpcError>,
    /// In the 1.0 shape: a slice of the body, or a 0.3 request's
    /// rewritten.
    params: Params,
}

/// Reads a JSON-RPC body. On failure, the error and the id to answer it
/// with.
fn read_request(body: &Bytes) -> Result<Read, (RequestId, RpcError)> {
    let request = jsonrpc::parse(body)?;
    let dialect = Dialect::of_method(&request.method);
    let method =
        Method::parse(&request.method).ok_or_else(|| RpcError::method_not_found(&request.method));
    let (method, params) = match (dialect, method) {
        (Dialect::V03, Ok(m)) => match v03::params_to_v1(m.shape(), request.params) {
            Ok(translated) => (Ok(m), translated),
            Err(e) => (Err(e), Params::in_body(body, request.params)),
        },
        (_, method) => (method, Params::in_body(body, request.params)),
    };
    Ok(Read {
        id: request.id,
        dialect,
        method,
        params,
    })
}

impl<B: AgentBackend> A2aService<B> {
    /// The server of one agent of the session `budget` belongs to. Its
    /// content, calls, streams and webhooks are charged to that budget.
    pub fn new(
        backend: B,
        capabilities: Capabilities,
        budget: Arc<SessionBudget>,
        outbound: Arc<Outbound>,
    ) -> Self {
        let calls = Arc::new(Semaphore::new(budget.limits().queued_calls_per_agent + 1));
        A2aService {
            backend: Arc::new(backend),
            tasks: Arc::new(TaskStore::new(Arc::clone(&budget))),
            capabilities,
            budget,
            outbound,
            calls,
            queued: metrics()
                .budget_used
                .get_or_create(&KindLabel::new("queued_calls"))
                .clone(),
        }
    }

    /// Takes a place in this agent's call queue, or refuses at once.
    fn call_slot(&self) -> Result<CallSlot, RpcError> {
        let permit = Arc::clone(&self.calls)
            .try_acquire_owned()
            .map_err(|_| self.busy())?;
        self.queued.inc();
        Ok(CallSlot {
            _permit: permit,
            queued: self.queued.clone(),
        })
    }

    /// The refusal of a call that finds this agent's queue full.
    fn busy(&self) -> RpcError {
        Metrics::count(&metrics().budget_refusals, "queued_calls");
        let waiting = self.budget.limits().queued_calls_per_agent;
        RpcError::over_budget(
            format!(
                "this agent is busy and {waiting} calls already wait for it \
                 (budgets.queued_calls_per_agent); retry when one has finished"
            ),
            "queued_calls",
        )
    }

    /// The refusal a REST or gRPC call of `method` gets from an agent
    /// whose queue is full, decided from the request's path before its
    /// body is read: reading a megabyte only to answer "busy" would let a
    /// client keep the host's cores busy with calls that never run.
    /// `None` when there is a place, the method takes none, or `version`
    /// is refused first. (A JSON-RPC call names its method in its body,
    /// so it is read first.)
    pub fn busy_before_reading(&self, method: Method, version: Option<&str>) -> Option<RpcError> {
        let takes_a_place = matches!(method, Method::SendMessage | Method::SendStreamingMessage);
        let version_spoken = Dialect::V1.accepts_version(version);
        (takes_a_place && version_spoken && self.calls.available_permits() == 0)
            .then(|| self.busy())
    }

    /// What this agent's server offers (for its card).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Answers one JSON-RPC body. `version` is the client's `A2A-Version`.
    pub async fn call(self: &Arc<Self>, version: Option<&str>, body: Bytes) -> Reply {
        let read = crate::bulk::run_if_large(body.len(), move || read_request(&body))
            .await
            .unwrap_or_else(|_| Err((RequestId::null(), RpcError::internal())));
        let Read {
            id,
            dialect,
            method,
            params,
        } = match read {
            Ok(read) => read,
            Err((id, e)) => return Reply::Json(jsonrpc::error_body(&id, &e)),
        };
        // A version this dialect does not speak refuses the request
        // whatever its method.
        let method = match version.filter(|v| !dialect.accepts_version(Some(v))) {
            Some(v) => Err(RpcError::version_not_supported(v)),
            None => method,
        };
        let reply_id = id.clone().unwrap_or_else(RequestId::null);
        let shape = method.as_ref().map_or(Shape::Other, |m| m.shape());
        let outcome = match method {
            Ok(m) if m.streams() => {
                let frames = Frames::JsonRpc {
                    id: reply_id.clone(),
                    dialect,
                };
                let stream = self.stream(m, frames, &params).await;
                return match (id, stream) {
                    (None, _) => Reply::Nothing,
                    (Some(_), Ok(stream)) => Reply::Stream(stream),
                    (Some(_), Err(refused)) => {
                        Reply::OverBudget(jsonrpc::error_body(&reply_id, &refused))
                    }
                };
            }
            Ok(m) => self.dispatch(m, &params).await,
            Err(e) => Err(e),
        };
        match (id, outcome) {
            (None, _) => Reply::Nothing,
            (Some(id), Ok(result)) => {
                match written(result, move |a| answer_body(dialect, shape, &id, a)).await {
                    Some(body) => Reply::Json(body),
                    None => Reply::Json(jsonrpc::error_body(&reply_id, &RpcError::internal())),
                }
            }
            (Some(id), Err(e)) if e.is_over_budget() => {
                Reply::OverBudget(jsonrpc::error_body(&id, &e))
            }
            (Some(id), Err(e)) => Reply::Json(jsonrpc::error_body(&id, &e)),
        }
    }

    /// Answers one REST request: `method`, with its params in the 1.0
    /// JSON shape ([`super::rest`] made them from the path, query and
    /// body). `version` is the client's `A2A-Version`.
    pub async fn call_rest(
        self: &Arc<Self>,
        version: Option<&str>,
        method: Method,
        params: Params,
    ) -> Reply {
        let failed = |e: RpcError| {
            if e.is_over_budget() {
                Reply::OverBudget(super::rest::error_body(&e))
            } else {
                Reply::Failed(super::rest::status_of(&e).0, super::rest::error_body(&e))
            }
        };
        if let Some(v) = version.filter(|v| !Dialect::V1.accepts_version(Some(v))) {
            return failed(RpcError::version_not_supported(v));
        }
        if method.streams() {
            return match self.stream(method, Frames::Rest, &params).await {
                Ok(stream) => Reply::Stream(stream),
                Err(e) => failed(e),
            };
        }
        match self.dispatch(method, &params).await {
            Ok(answer) => {
                let body = written(answer, |a| {
                    serde_json::to_vec(a).expect("answers serialise")
                });
                match body.await {
                    Some(body) => Reply::Json(body),
                    None => failed(RpcError::internal()),
                }
            }
            Err(e) => failed(e),
        }
    }

    async fn dispatch(self: &Arc<Self>, method: Method, p: &Params) -> Result<Answer, RpcError> {
        match method {
            // The queue's place first: a call refused for a busy agent is
            // refused before its message is parsed, however large.
            Method::SendMessage => {
                let slot = self.call_slot()?;
                self.send_message(slot, params(p).await?).await
            }
            Method::GetTask => self.get_task(params(p).await?),
            Method::ListTasks => self.list_tasks(params(p).await?),
            Method::CancelTask => self.cancel_task(params(p).await?),
            Method::CreatePushConfig => self.create_push_config(params(p).await?),
            Method::GetPushConfig => {
                self.push_enabled()?;
                let r: PushConfigRef = params(p).await?;
                let config = self
                    .tasks
                    .push_config(&r.task_id, &r.id)
                    .map_err(store_error)?;
                Ok(Answer::Config(config))
            }
            Method::ListPushConfigs => self.list_push_configs(params(p).await?),
            Method::DeletePushConfig => {
                self.push_enabled()?;
                let r: PushConfigRef = params(p).await?;
                self.tasks
                    .delete_push_config(&r.task_id, &r.id)
                    .map_err(store_error)?;
                Ok(Answer::Empty {})
            }
            Method::GetExtendedAgentCard => Err(RpcError::extended_card_not_configured()),
            Method::SendStreamingMessage | Method::SubscribeToTask => {
                unreachable!("streaming methods are answered by stream()")
            }
        }
    }

    /// Checks a message and creates or continues its task; `streamed`
    /// says the client is shown the task before the agent runs.
    fn prepare(&self, p: SendMessageParams, streamed: bool) -> Result<Prepared, RpcError> {
        let config = p.configuration.unwrap_or_default();
        let history = history_length(config.history_length)?;
        let return_immediately = config.return_immediately.unwrap_or(false);
        let snapshot = match streamed || return_immediately {
            true => Snapshot::Clipped(history),
            false => Snapshot::None,
        };
        let mut message = p.message;
        check_user_message(&message)?;
        let push = match config.task_push_notification_config {
            Some(push) => Some(self.checked_push_config(push, None)?),
            None => None,
        };
        let (task_id, context_id, new_task) = self.task_of(&message)?;
        message.task_id = Some(task_id.clone());
        message.context_id = Some(context_id.clone());
        // One copy of the message, shared by the store and the agent call.
        let message = Arc::new(message);
        let snapshot = if new_task {
            self.tasks
                .create(&task_id, &context_id, Arc::clone(&message), snapshot)
        } else {
            self.tasks
                .append_user_message(&task_id, Arc::clone(&message), snapshot)
        }
        .map_err(store_error)?;
        if let Some((mut config, queue)) = push {
            config.task_id = task_id.clone();
            self.tasks
                .set_push_config(config, queue)
                .map_err(store_error)?;
        }
        Ok(Prepared {
            request: AgentRequest {
                task_id,
                context_id,
                new_task,
                message,
            },
            snapshot,
            history,
            return_immediately,
        })
    }

    /// The task a message continues (its `taskId`, which must exist, be
    /// open and share the message's context) or a new one: its id, its
    /// context id, and whether it is new.
    fn task_of(&self, message: &Message) -> Result<(String, String, bool), RpcError> {
        let Some(id) = message.task_id.clone() else {
            let context = message.context_id.clone().unwrap_or_else(new_id);
            return Ok((new_id(), context, true));
        };
        let (context, state) = self
            .tasks
            .state(&id)
            .ok_or_else(|| RpcError::task_not_found(&id))?;
        if state.is_terminal() {
            return Err(terminal(&id, state));
        }
        if message.context_id.as_ref().is_some_and(|c| *c != context) {
            return Err(RpcError::invalid_params(
                "message.contextId",
                format!("message.contextId does not match task {id}'s context"),
            ));
        }
        Ok((id, context, false))
    }

    /// Runs the agent on a request and records the outcome: the task
    /// afterwards (or the agent's message, if it answered with one), or
    /// `-32006` if the agent crashed or answered something invalid.
    /// `shown` says whether the client has been shown the task already (a
    /// follow-up, or a send that returned at once): a message reply then
    /// completes the task rather than drop it.
    ///
    /// The run holds `slot` until it is done; when the session ends it is
    /// dropped, waiting or running, and the agent with it. It must run to
    /// its end whatever the client does: spawn it, or await it through
    /// [`FinishOnDrop`].
    fn agent_run(
        &self,
        request: AgentRequest,
        slot: CallSlot,
        history: Option<usize>,
        shown: bool,
    ) -> impl Future<Output = Result<Sent, RpcError>> + Send + 'static {
        // The budget, not a clone of its token: cloning a cancellation
        // token takes a lock that every call of the session shares.
        let budget = Arc::clone(&self.budget);
        let (backend, tasks) = (Arc::clone(&self.backend), Arc::clone(&self.tasks));
        let emit_tasks = Arc::clone(&self.tasks);
        let emit: EmitSink = Arc::new(move |task_id: &str, update: TaskUpdate| {
            // Progress on an unknown or finished task is dropped: the
            // guest cannot create or revive tasks by emitting.
            if valid_update(&update).is_ok() {
                let _ = emit_tasks.apply(task_id, update);
            }
        });
        async move {
            let _slot = slot;
            let task_id = request.task_id.clone();
            // The run is polled first: most calls end on their first
            // poll, and the session's token, whose lock every call of the
            // session shares, is then never polled.
            let outcome = tokio::select! {
                biased;
                outcome = backend.run(request, emit) => outcome,
                _ = budget.ended().cancelled() => {
                    return Err(RpcError::unsupported_operation("the session ended"));
                }
            };
            let crash = match outcome {
                Ok(AgentReply::Task(update)) => match valid_update(&update) {
                    Ok(()) => match tasks.apply_and_get(&task_id, update, history) {
                        Ok(task) => return Ok(Sent::Task(task)),
                        // Canceled while the agent worked: read below.
                        Err(_) => None,
                    },
                    Err(why) => Some(why),
                },
                Ok(AgentReply::Message(message)) if message.parts.is_empty() => Some(Crash {
                    kind: "invalid_update",
                    detail: "the agent's reply message has no parts".into(),
                }),
                Ok(AgentReply::Message(message)) => {
                    // A task canceled while the agent worked stays
                    // canceled: the reply is not delivered.
                    match tasks.finish_with_message(&task_id, message, shown) {
                        Ok(message) => return Ok(Sent::Message(message)),
                        Err(_) => None,
                    }
                }
                Err(AgentFailure::Refused(why)) => {
                    let _ = tasks.apply(&task_id, failed(why));
                    None
                }
                Err(AgentFailure::Crashed(cause)) => Some(cause),
            };
            if let Some(cause) = crash {
                let _ = tasks.apply(&task_id, failed(cause.detail.clone()));
                return Err(RpcError::invalid_agent_response(cause.detail)
                    .with_meta("taskId", task_id)
                    .with_meta("crash", cause.kind));
            }
            // A task canceled while the agent worked stays canceled.
            tasks
                .get(&task_id, history)
                .map(Sent::Task)
                .ok_or_else(|| RpcError::task_not_found(&task_id))
        }
    }

    async fn send_message(
        self: &Arc<Self>,
        slot: CallSlot,
        p: SendMessageParams,
    ) -> Result<Answer, RpcError> {
        let prepared = self.prepare(p, false)?;
        let shown = !prepared.request.new_task || prepared.return_immediately;
        let run = self.agent_run(prepared.request, slot, prepared.history, shown);
        if let (true, Some(submitted)) = (prepared.return_immediately, prepared.snapshot) {
            tokio::spawn(run);
            return Ok(Answer::Sent(Sent::Task(submitted)));
        }
        // Most calls end in microseconds: run in this request's task, and
        // move to a task of its own only if the client leaves first.
        Ok(Answer::Sent(FinishOnDrop::new(run).await?))
    }

    fn get_task(&self, p: GetTaskParams) -> Result<Answer, RpcError> {
        let history = history_length(p.history_length)?;
        let task = self
            .tasks
            .get(&p.id, history)
            .ok_or_else(|| RpcError::task_not_found(&p.id))?;
        Ok(Answer::Task(task))
    }

    fn list_tasks(&self, p: ListTasksParams) -> Result<Answer, RpcError> {
        let history = history_length(p.history_length)?;
        let page_size = page_size(p.page_size)?;
        let after = match p.page_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(Cursor::parse(token).ok_or_else(|| {
                RpcError::invalid_params("pageToken", "pageToken is not a token this server issued")
            })?),
            None => None,
        };
        let since_ms = match p.status_timestamp_after.as_deref() {
            Some(t) => Some(crate::clock::parse_rfc3339(t).ok_or_else(|| {
                RpcError::invalid_params(
                    "statusTimestampAfter",
                    format!("statusTimestampAfter {t:?} is not an ISO 8601 timestamp"),
                )
            })?),
            None => None,
        };
        let page = self.tasks.list(&TaskQuery {
            context_id: p.context_id.filter(|c| !c.is_empty()),
            state: p.status,
            since_ms,
            page_size,
            after,
            history,
        });
        let include_artifacts = p.include_artifacts.unwrap_or(false);
        let tasks: Vec<Task> = page
            .tasks
            .into_iter()
            .map(|mut t| {
                if !include_artifacts {
                    t.artifacts = None;
                }
                t
            })
            .collect();
        Ok(Answer::Page {
            tasks,
            next_page_token: page.next.map(|c| c.token()).unwrap_or_default(),
            page_size,
            total_size: page.total,
        })
    }

    fn cancel_task(&self, p: TaskIdParams) -> Result<Answer, RpcError> {
        let task = self.tasks.cancel(&p.id).map_err(|e| match e {
            StoreError::Terminal { id, state } => {
                RpcError::task_not_cancelable(&id, &format!("{state:?}"))
            }
            other => store_error(other),
        })?;
        // The task is canceled now; the agent hears of it when its
        // current call (if any) is done, if its queue has room.
        if let Ok(slot) = self.call_slot() {
            let backend = Arc::clone(&self.backend);
            let ended = self.budget.ended().clone();
            tokio::spawn(async move {
                let _slot = slot;
                tokio::select! {
                    _ = backend.cancel(p.id) => {}
                    _ = ended.cancelled() => {}
                }
            });
        }
        Ok(Answer::Task(task))
    }

    fn push_enabled(&self) -> Result<(), RpcError> {
        if self.capabilities.push {
            Ok(())
        } else {
            Err(RpcError::push_not_supported())
        }
    }

    /// Validates a push config and starts its delivery queue, charged to
    /// the session's push budget.
    fn checked_push_config(
        &self,
        mut config: PushConfig,
        task_id: Option<&str>,
    ) -> Result<(PushConfig, PushQueue), RpcError> {
        self.push_enabled()?;
        if let Some(task_id) = task_id {
            config.task_id = task_id.to_string();
        }
        if config.id.is_empty() {
            config.id = new_id();
        }
        let webhook = Destination::parse(&config.url, self.outbound.policy())
            .map_err(|e| RpcError::invalid_params("url", format!("webhook {e}")))?;
        let held = self
            .budget
            .try_take(Kind::PushConfigs, 1)
            .map_err(|e| RpcError::over_budget(&e, Kind::PushConfigs.name()))?;
        let queue = PushQueue::start(
            &config,
            webhook,
            Arc::clone(&self.budget),
            Arc::clone(&self.outbound),
            held,
        );
        Ok((config, queue))
    }

    fn create_push_config(&self, config: PushConfig) -> Result<Answer, RpcError> {
        self.push_enabled()?;
        if config.task_id.is_empty() {
            return Err(RpcError::invalid_params("taskId", "taskId is required"));
        }
        let task_id = config.task_id.clone();
        if self.tasks.state(&task_id).is_none() {
            return Err(RpcError::task_not_found(&task_id));
        }
        let (config, queue) = self.checked_push_config(config, Some(&task_id))?;
        let stored = self
            .tasks
            .set_push_config(config, queue)
            .map_err(store_error)?;
        Ok(Answer::Config(stored))
    }

    fn list_push_configs(&self, p: ListPushConfigsParams) -> Result<Answer, RpcError> {
        self.push_enabled()?;
        let limit = page_size(p.page_size.filter(|n| *n != 0))?;
        let after = match p.page_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(
                URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        RpcError::invalid_params(
                            "pageToken",
                            "pageToken is not a token this server issued",
                        )
                    })?,
            ),
            None => None,
        };
        let (configs, more) = self
            .tasks
            .push_configs(&p.task_id, after.as_deref(), limit)
            .map_err(store_error)?;
        let next = match (more, configs.last()) {
            (true, Some(last)) => URL_SAFE_NO_PAD.encode(&last.id),
            _ => String::new(),
        };
        Ok(Answer::Configs {
            configs,
            next_page_token: next,
        })
    }

    /// Answers a streaming method: one SSE event per StreamResponse. A
    /// stream is charged to the session's stream budget while it is open;
    /// a refusal for budget comes back as an error, anything else as an
    /// error event on the stream (over REST, as an error too).
    async fn stream(
        self: &Arc<Self>,
        method: Method,
        frames: Frames,
        p: &Params,
    ) -> Result<mpsc::Receiver<Bytes>, RpcError> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let held = self
            .budget
            .try_take(Kind::Streams, 1)
            .map_err(|e| RpcError::over_budget(&e, Kind::Streams.name()))?;
        let started = match method {
            _ if !self.capabilities.streaming => Err(RpcError::unsupported_operation(
                "this agent does not stream (its card says streaming: false)",
            )),
            Method::SendStreamingMessage => self.start_stream(p).await,
            _ => self
                .resubscribe(p)
                .await
                .map(|(task, events)| (task, events, None)),
        };
        match started {
            Ok((snapshot, events, reply)) => {
                let first =
                    serde_json::to_vec(&StreamResponse::Task(snapshot)).expect("tasks serialise");
                let ends = Ends {
                    session: self.budget.ended().clone(),
                    server: self.budget.streams_closing().clone(),
                    // A message's stream ends when the task waits for the
                    // client; a subscription follows the task to its end.
                    at_interruption: method == Method::SendStreamingMessage,
                };
                tokio::spawn(forward(frames, first, reply, events, tx, held, ends));
            }
            // REST answers an error found before streaming with its
            // HTTP status; JSON-RPC streams it as one error event.
            Err(e) if e.is_over_budget() || matches!(frames, Frames::Rest) => return Err(e),
            Err(e) => {
                let _ = tx.try_send(frames.error(&e));
            }
        }
        Ok(rx)
    }

    /// Starts the agent on a streamed message: the task as submitted,
    /// its events, and (for an agent that may answer with a bare
    /// message) the agent's reply to wait for before the first event.
    async fn start_stream(&self, p: &Params) -> Result<StreamStart, RpcError> {
        let slot = self.call_slot()?;
        let prepared = self.prepare(params(p).await?, true)?;
        let submitted = prepared.snapshot.ok_or_else(RpcError::internal)?;
        // Subscribe before the agent starts, so no event is missed.
        let (_, events) = self
            .tasks
            .subscribe(&prepared.request.task_id, Some(0))
            .map_err(store_error)?;
        let replies = self.capabilities.message_replies;
        let shown = !prepared.request.new_task || !replies;
        let run = tokio::spawn(self.agent_run(prepared.request, slot, prepared.history, shown));
        Ok((submitted, events, replies.then_some(run)))
    }

    async fn resubscribe(
        &self,
        p: &Params,
    ) -> Result<(Task, broadcast::Receiver<TaskEvent>), RpcError> {
        let p: TaskIdParams = params(p).await?;
        self.tasks.subscribe(&p.id, None).map_err(|e| match e {
            StoreError::Terminal { id, state } => RpcError::unsupported_operation(format!(
                "task {id} is {state:?}; there is nothing left to subscribe to"
            )),
            other => store_error(other),
        })
    }
}

/// A stream's start: the task, its events, and the agent's reply when
/// the stream waits for it (see [`Capabilities::message_replies`]).
type StreamStart = (
    Task,
    broadcast::Receiver<TaskEvent>,
    Option<tokio::task::JoinHandle<Result<Sent, RpcError>>>,
);

/// Writes a stream's SSE frames as its binding does: JSON-RPC responses
/// to request `id` in the request's dialect, or (REST) the bare
/// StreamResponse, with errors as `event: error`.
enum Frames {
    JsonRpc { id: RequestId, dialect: Dialect },
    Rest,
}

impl Frames {
    /// A frame holding one serialised StreamResponse; `last` when it ends
    /// the stream.
    fn result(&self, event: &[u8], last: bool) -> Bytes {
        match self {
            Frames::JsonRpc {
                id,
                dialect: Dialect::V1,
            } => jsonrpc::sse_result(id, event),
            Frames::JsonRpc {
                id,
                dialect: Dialect::V03,
            } => jsonrpc::sse_result(id, &v03::event_from_v1(event, last)),
            Frames::Rest => {
                let mut frame = Vec::with_capacity(event.len() + 8);
                frame.extend_from_slice(b"data: ");
                frame.extend_from_slice(event);
                frame.extend_from_slice(b"\n\n");
                frame.into()
            }
        }
    }

    fn error(&self, e: &RpcError) -> Bytes {
        match self {
            Frames::JsonRpc { id, .. } => jsonrpc::sse_error(id, e),
            Frames::Rest => {
                let mut frame = b"event: error\ndata: ".to_vec();
                frame.extend_from_slice(&super::rest::error_body(e));
                frame.extend_from_slice(b"\n\n");
                frame.into()
            }
        }
    }
}

/// What ends a stream: the session ending, the server shutting down
/// (which says so in a last event), and the task reaching a terminal
/// state or, if `at_interruption`, one that waits for the client.
struct Ends {
    session: CancellationToken,
    server: CancellationToken,
    at_interruption: bool,
}

/// Sends the first event and then every task event until one ends the
/// stream, the client goes away, the client falls too far behind, or the
/// session or the server ends. The stream's share of the budget is held
/// until then.
///
/// With a `reply` to wait for, the first event waits for the task's
/// first event or the agent's answer: an agent that answers with a bare
/// message before showing the task gives a stream of that one message.
async fn forward(
    frames: Frames,
    first: Vec<u8>,
    reply: Option<tokio::task::JoinHandle<Result<Sent, RpcError>>>,
    mut events: broadcast::Receiver<TaskEvent>,
    tx: mpsc::Sender<Bytes>,
    _held: Held,
    ends: Ends,
) {
    let mut early = None;
    if let Some(reply) = reply {
        tokio::select! {
            // Events first: a task the reply completed has published them.
            biased;
            _ = tx.closed() => return,
            _ = ends.session.cancelled() => return,
            _ = ends.server.cancelled() => {}
            // A task dropped for a message reply closes its events.
            Ok(event) = events.recv() => early = Some(Ok(event)),
            answer = reply => {
                if let Ok(Ok(Sent::Message(message))) = answer {
                    let json = serde_json::to_vec(&StreamResponse::Message(message))
                        .expect("messages serialise");
                    deliver(&tx, frames.result(&json, true), &ends.session).await;
                    return;
                }
            }
        }
    }
    if !deliver(&tx, frames.result(&first, false), &ends.session).await {
        return;
    }
    loop {
        let event = if let Some(event) = early.take() {
            event
        } else {
            tokio::select! {
            _ = tx.closed() => return,
            _ = ends.session.cancelled() => return,
            _ = ends.server.cancelled() => {
                let e = RpcError::unsupported_operation(
                    "the server is shutting down; this stream ends here: \
                     subscribe again (SubscribeToTask) on another instance or later",
                )
                .with_meta("cause", "shutting_down");
                deliver(&tx, frames.error(&e), &ends.session).await;
                return;
            }
            event = events.recv() => event,
            }
        };
        match event {
            Ok(event) => {
                let last = event.terminal || (ends.at_interruption && event.ends_stream);
                if !deliver(&tx, frames.result(&event.json, last), &ends.session).await || last {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let e = RpcError::stream_ended(
                    "CLIENT_TOO_SLOW",
                    format!("the client fell {missed} events behind; subscribe again"),
                );
                deliver(&tx, frames.error(&e), &ends.session).await;
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Sends `frame` to a stream's client, unless the session ends first;
/// false if it was not sent. A client that takes nothing of a stream
/// (an HTTP/2 stream it never reads, on a connection it keeps busy with
/// others) must not keep the stream, and the frames waiting for it, past
/// its session. Every server-sent event stream sends this way.
pub(crate) async fn deliver(
    tx: &mpsc::Sender<Bytes>,
    frame: Bytes,
    session: &CancellationToken,
) -> bool {
    tokio::select! {
        sent = tx.send(frame) => sent.is_ok(),
        _ = session.cancelled() => false,
    }
}

/// A future awaited in place that is not lost when its awaiter is
/// dropped (the client went away): what is left of it then runs to its
/// end in a task of its own. Saves a task spawn and a wake-up per call
/// for work that nearly always finishes while the client waits.
pub struct FinishOnDrop<F: Future + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future + Send + 'static> FinishOnDrop<F> {
    pub fn new(run: F) -> Self {
        FinishOnDrop(Some(Box::pin(run)))
    }
}

impl<F: Future + Send + 'static> Future for FinishOnDrop<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let run = self.0.as_mut().expect("polled after it finished");
        // A run that panics is not handed on: it cannot be polled again.
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                self.0 = None;
                Poll::Ready(out)
            }
            Err(panic) => {
                self.0 = None;
                std::panic::resume_unwind(panic)
            }
        }
    }
}

impl<F: Future + Send + 'static> Drop for FinishOnDrop<F> {
    fn drop(&mut self) {
        if let (Some(rest), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                rest.await;
            });
        }
    }
}

/// An agent's update the protocol can record: no message or artifact
/// without parts.
fn valid_update(update: &TaskUpdate) -> Result<(), Crash> {
    let invalid = |detail: String| Crash {
        kind: "invalid_update",
        detail,
    };
    if update.message.as_ref().is_some_and(|m| m.parts.is_empty()) {
        return Err(invalid("the agent's status message has no parts".into()));
    }
    if let Some(a) = update.artifacts.iter().find(|a| a.parts.is_empty()) {
        return Err(invalid(format!(
            "artifact {:?} has no parts",
            a.artifact_id
        )));
    }
    Ok(())
}

fn failed(why: String) -> TaskUpdate {
    TaskUpdate {
        state: TaskState::Failed,
        message: Some(Message::text(Role::Agent, why)),
        artifacts: Vec::new(),
        chunk: None,
    }
}

fn terminal(id: &str, state: TaskState) -> RpcError {
    RpcError::unsupported_operation(format!("task {id} is {state:?}, a terminal state"))
}

fn store_error(e: StoreError) -> RpcError {
    match e {
        StoreError::NotFound(id) => RpcError::task_not_found(&id),
        StoreError::Terminal { id, state } => terminal(&id, state),
        StoreError::ConfigNotFound { task, config } => {
            RpcError::task_not_found(&task).with_meta("configId", config)
        }
        e @ (StoreError::Full | StoreError::TooManyConfigs(_)) => {
            RpcError::unsupported_operation(e.to_string())
        }
        StoreError::OverBudget(e) => RpcError::over_budget(&e, e.kind.name()),
    }
}

#[cfg(test)]
mod tests {
    //! Protocol rules checked in-process, through the [`AgentBackend`]
    //! seam: no Wasm, no sockets.

    use super::*;
    use crate::config::BudgetLimits;
    use crate::egress::OutboundSettings;
    use serde_json::Value;
    use serde_json::json;
    use tokio::sync::Notify;

    /// An agent that answers what the first text part asks: `fail`
    /// crashes, `refuse` refuses, `wait` blocks until released, `say`
    /// answers with a bare message, `progress` emits an update and then
    /// answers with a message, anything else completes with the text
    /// echoed.
    #[derive(Default)]
    struct Scripted {
        release: Notify,
    }

    impl AgentBackend for Scripted {
        async fn run(&self, req: AgentRequest, emit: EmitSink) -> Result<AgentReply, AgentFailure> {
            let text = match &req.message.parts[0].content {
                crate::a2a::types::PartContent::Text(t) => t.clone(),
                _ => String::new(),
            };
            match text.as_str() {
                "fail" => Err(AgentFailure::Crashed(Crash {
                    kind: "trap",
                    detail: "guest trap: unreachable".into(),
                })),
                "refuse" => Err(AgentFailure::Refused("not today".into())),
                "wait" => {
                    self.release.notified().await;
                    Ok(AgentReply::Task(completed("released")))
                }
                "say" => Ok(AgentReply::Message(Message::text(Role::Agent, "said"))),
                "progress" => {
                    let mut working = completed("on it");
                    working.state = TaskState::Working;
                    emit(&req.task_id, working);
                    Ok(AgentReply::Message(Message::text(Role::Agent, "done")))
                }
                other => Ok(AgentReply::Task(completed(other))),
            }
        }

        async fn cancel(&self, _task_id: String) {}
    }

    fn completed(text: &str) -> TaskUpdate {
        TaskUpdate {
            state: TaskState::Completed,
            message: Some(Message::text(Role::Agent, text)),
            artifacts: Vec::new(),
            chunk: None,
        }
    }

    fn service(limits: BudgetLimits) -> Arc<A2aService<Scripted>> {
        let budget = SessionBudget::new(Arc::from("unit"), limits);
        let outbound = Arc::new(Outbound::new(OutboundSettings {
            policy: Default::default(),
            connect_timeout: std::time::Duration::from_secs(1),
            max_connections: 4,
            tls: Arc::new(crate::egress::tls_client(None).unwrap()),
        }));
        let capabilities = Capabilities {
            streaming: true,
            push: true,
            bindings: BindingSettings::default(),
            message_replies: true,
        };
        Arc::new(A2aService::new(
            Scripted::default(),
            capabilities,
            budget,
            outbound,
        ))
    }

    fn send(text: &str, extra: Value) -> Vec<u8> {
        let mut params =
            json!({"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": text}]}});
        if let Value::Object(extra) = extra {
            params.as_object_mut().unwrap().extend(extra);
        }
        json!({"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": params})
            .to_string()
            .into_bytes()
    }

    async fn answer(service: &Arc<A2aService<Scripted>>, body: &[u8]) -> (bool, Value) {
        match service.call(None, Bytes::copy_from_slice(body)).await {
            Reply::Json(bytes) => (false, serde_json::from_slice(&bytes).unwrap()),
            Reply::OverBudget(bytes) => (true, serde_json::from_slice(&bytes).unwrap()),
            _ => panic!("a JSON answer"),
        }
    }

    #[tokio::test]
    async fn a_message_makes_a_task_that_get_task_finds() {
        let service = service(BudgetLimits::default());
        let (_, sent) = answer(&service, &send("hello", json!({}))).await;
        let task = &sent["result"]["task"];
        assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{sent}");
        assert_eq!(task["status"]["message"]["parts"][0]["text"], "hello");
        let get =
            json!({"jsonrpc": "2.0", "id": 8, "method": "GetTask", "params": {"id": task["id"]}});
        let (_, got) = answer(&service, get.to_string().as_bytes()).await;
        assert_eq!(got["id"], 8);
        assert_eq!(got["result"]["id"], task["id"]);
        assert_eq!(got["result"]["history"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_stream_whose_client_takes_nothing_ends_with_its_session() {
        let (tx, _unread) = mpsc::channel(1);
        let session = CancellationToken::new();
        assert!(deliver(&tx, Bytes::from_static(b"first"), &session).await);
        let waiting = tokio::spawn({
            let (tx, session) = (tx.clone(), session.clone());
            async move { deliver(&tx, Bytes::from_static(b"second"), &session).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "the full buffer holds the frame back"
        );
        session.cancel();
        let sent = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the send gives up when the session ends")
            .unwrap();
        assert!(!sent);
    }

    async fn get_task(service: &Arc<A2aService<Scripted>>, id: &Value) -> Value {
        let get = json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": id}});
        answer(service, get.to_string().as_bytes()).await.1
    }

    #[tokio::test]
    async fn a_message_reply_to_a_new_task_leaves_no_task() {
        let service = service(BudgetLimits::default());
        let (_, sent) = answer(&service, &send("say", json!({}))).await;
        let message = &sent["result"]["message"];
        assert_eq!(message["parts"][0]["text"], "said", "{sent}");
        assert_eq!(message["role"], "ROLE_AGENT");
        assert!(message["contextId"].is_string() && message["taskId"].is_null());
        assert!(sent["result"]["task"].is_null());
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "ListTasks", "params": {}});
        let (_, listed) = answer(&service, list.to_string().as_bytes()).await;
        assert_eq!(listed["result"]["totalSize"], 0, "{listed}");
        assert_eq!(service.budget.used(Kind::StoreBytes), 0);
    }

    #[tokio::test]
    async fn a_message_reply_completes_a_task_the_client_has_seen() {
        let service = service(BudgetLimits::default());
        // Returned at once: the client holds the task, so it is kept.
        let at_once = json!({"configuration": {"returnImmediately": true}});
        let (_, sent) = answer(&service, &send("say", at_once)).await;
        let id = sent["result"]["task"]["id"].clone();
        let mut got = get_task(&service, &id).await;
        for _ in 0..100 {
            if got["result"]["status"]["state"] == "TASK_STATE_COMPLETED" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            got = get_task(&service, &id).await;
        }
        assert_eq!(got["result"]["status"]["state"], "TASK_STATE_COMPLETED");
        assert_eq!(
            got["result"]["status"]["message"]["parts"][0]["text"],
            "said"
        );
        // Progress was published: the reply completes the task.
        let (_, sent) = answer(&service, &send("progress", json!({}))).await;
        let message = &sent["result"]["message"];
        assert_eq!(message["parts"][0]["text"], "done", "{sent}");
        let got = get_task(&service, &message["taskId"]).await;
        assert_eq!(got["result"]["status"]["state"], "TASK_STATE_COMPLETED");
        assert_eq!(got["result"]["history"].as_array().unwrap().len(), 3);
    }

    /// The events of a SendStreamingMessage with `text`, as JSON results.
    async fn stream_of(service: &Arc<A2aService<Scripted>>, text: &str) -> Vec<Value> {
        let body = String::from_utf8(send(text, json!({})))
            .unwrap()
            .replace("\"SendMessage\"", "\"SendStreamingMessage\"");
        let Reply::Stream(mut rx) = service.call(None, Bytes::from(body)).await else {
            panic!("a stream");
        };
        let mut events = Vec::new();
        while let Some(frame) = rx.recv().await {
            let frame = std::str::from_utf8(&frame).unwrap();
            let data = frame.trim().strip_prefix("data:").unwrap().trim();
            let event: Value = serde_json::from_str(data).unwrap();
            events.push(event["result"].clone());
        }
        events
    }

    #[tokio::test]
    async fn a_streamed_message_reply_is_a_stream_of_that_message() {
        let service = service(BudgetLimits::default());
        let said = stream_of(&service, "say").await;
        assert_eq!(said.len(), 1, "{said:?}");
        assert_eq!(said[0]["message"]["parts"][0]["text"], "said");
        // Progress first: the task, its update, then its completion.
        let progress = stream_of(&service, "progress").await;
        let kinds: Vec<&str> = progress
            .iter()
            .map(|e| e.as_object().unwrap().keys().next().unwrap().as_str())
            .collect();
        assert_eq!(
            kinds,
            ["task", "statusUpdate", "statusUpdate"],
            "{progress:?}"
        );
        assert_eq!(
            progress[2]["statusUpdate"]["status"]["message"]["parts"][0]["text"],
            "done"
        );
        // A task reply streams as before.
        let echoed = stream_of(&service, "hi").await;
        assert!(echoed[0]["task"].is_object(), "{echoed:?}");
        assert_eq!(
            echoed.last().unwrap()["statusUpdate"]["status"]["state"],
            "TASK_STATE_COMPLETED"
        );
    }

    #[tokio::test]
    async fn a_crash_is_32006_with_its_kind_and_fails_the_task() {
        let service = service(BudgetLimits::default());
        let (_, crashed) = answer(&service, &send("fail", json!({}))).await;
        assert_eq!(crashed["error"]["code"], -32006, "{crashed}");
        let info = &crashed["error"]["data"][0];
        assert_eq!(info["reason"], "INVALID_AGENT_RESPONSE");
        assert_eq!(info["metadata"]["crash"], "trap");
        let id = info["metadata"]["taskId"].clone();
        let get = json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": id}});
        let (_, got) = answer(&service, get.to_string().as_bytes()).await;
        assert_eq!(got["result"]["status"]["state"], "TASK_STATE_FAILED");
        let (_, refused) = answer(&service, &send("refuse", json!({}))).await;
        assert_eq!(
            refused["result"]["task"]["status"]["state"],
            "TASK_STATE_FAILED"
        );
    }

    #[tokio::test]
    async fn a_client_that_leaves_mid_call_does_not_stop_the_agent() {
        let service = service(BudgetLimits::default());
        let client = {
            let service = Arc::clone(&service);
            tokio::spawn(async move { service.call(None, send("wait", json!({})).into()).await })
        };
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "ListTasks", "params": {}});
        let mut id = Value::Null;
        for _ in 0..100 {
            let (_, listed) = answer(&service, list.to_string().as_bytes()).await;
            id = listed["result"]["tasks"][0]["id"].clone();
            if !id.is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!id.is_null(), "the call made its task");
        // The client goes away: its request's future is dropped.
        client.abort();
        assert!(client.await.unwrap_err().is_cancelled());
        service.backend.release.notify_one();
        let get = json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": id}});
        for _ in 0..100 {
            let (_, got) = answer(&service, get.to_string().as_bytes()).await;
            if got["result"]["status"]["state"] == "TASK_STATE_COMPLETED" {
                assert_eq!(
                    got["result"]["status"]["message"]["parts"][0]["text"],
                    "released"
                );
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the agent's answer never reached the store");
    }

    #[tokio::test]
    async fn calls_past_the_queue_are_refused_at_once_and_nothing_is_lost() {
        let service = service(BudgetLimits {
            queued_calls_per_agent: 1,
            ..BudgetLimits::default()
        });
        let later = json!({"configuration": {"returnImmediately": true}});
        let (_, first) = answer(&service, &send("wait", later.clone())).await;
        let (_, second) = answer(&service, &send("wait", later.clone())).await;
        let (over, third) = answer(&service, &send("wait", later)).await;
        assert!(first["result"].is_object() && second["result"].is_object());
        assert!(over, "the third call is over budget: {third}");
        assert_eq!(third["error"]["code"], -32000);
        // The two accepted calls run to the end once the agent is free.
        service.backend.release.notify_one();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        service.backend.release.notify_one();
        let id = second["result"]["task"]["id"].clone();
        for _ in 0..100 {
            let get = json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": id}});
            let (_, got) = answer(&service, get.to_string().as_bytes()).await;
            if got["result"]["status"]["state"] == "TASK_STATE_COMPLETED" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the queued call never ran");
    }

    #[tokio::test]
    async fn bad_input_names_what_is_wrong() {
        let service = service(BudgetLimits::default());
        let cases = [
            (&b"{"[..], -32700),
            (b"[]", -32600),
            (br#"{"jsonrpc": "2.0", "id": 1, "method": "Nope"}"#, -32601),
            (
                br#"{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"messageId": "", "role": "ROLE_USER", "parts": [{"text": "x"}]}}}"#,
                -32602,
            ),
            (
                br#"{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "missing"}}"#,
                -32001,
            ),
        ];
        for (body, code) in cases {
            let (_, answered) = answer(&service, body).await;
            assert_eq!(answered["error"]["code"], code, "{answered}");
        }
        // Invalid params name the field, wherever it is.
        let body = br#"{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a"}, {"raw": "%%"}]}}}"#;
        let (_, answered) = answer(&service, body).await;
        let bad = &answered["error"]["data"][0];
        assert_eq!(bad["@type"], "type.googleapis.com/google.rpc.BadRequest");
        assert_eq!(
            bad["fieldViolations"][0]["field"], "message.parts[1]",
            "{answered}"
        );
    }

    /// Requests from [`crate::bulk::LARGE`] up are read on the bulk pool,
    /// with the same answers, ids and errors as small ones, in every
    /// dialect and binding.
    #[tokio::test]
    async fn large_requests_are_answered_as_small_ones_are() {
        let service = service(BudgetLimits::default());
        let big = "b".repeat(crate::bulk::LARGE);
        let echoed = |r: &Value| r["status"]["message"]["parts"][0]["text"] == big.as_str();

        let (_, sent) = answer(&service, &send(&big, json!({}))).await;
        assert_eq!(sent["id"], 7, "{sent}");
        assert!(echoed(&sent["result"]["task"]), "JSON-RPC");

        let v03 = json!({"jsonrpc": "2.0", "id": "v03", "method": "message/send", "params": {
            "message": {"messageId": "m3", "role": "user", "kind": "message",
                        "parts": [{"kind": "text", "text": big}]}}});
        let (_, sent) = answer(&service, v03.to_string().as_bytes()).await;
        assert_eq!(sent["id"], "v03");
        assert_eq!(sent["result"]["kind"], "task", "the 0.3 dialect");
        assert_eq!(
            sent["result"]["status"]["message"]["parts"][0]["text"],
            big.as_str()
        );

        let params =
            json!({"message": {"messageId": "m4", "role": "ROLE_USER", "parts": [{"text": big}]}});
        let rest = service
            .call_rest(
                None,
                Method::SendMessage,
                jsonrpc::params_of(params.as_object().unwrap()),
            )
            .await;
        let Reply::Json(body) = rest else {
            panic!("REST answers with JSON: {rest:?}");
        };
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert!(echoed(&sent["task"]), "REST");

        for (params, field) in [
            (
                json!({"message": {"role": "ROLE_USER", "parts": []}}),
                "message.messageId",
            ),
            (json!({}), "message"),
        ] {
            let body =
                json!({"jsonrpc": "2.0", "id": 8, "method": "SendMessage", "params": params});
            let (_, refused) = answer(&service, body.to_string().as_bytes()).await;
            assert_eq!(refused["error"]["code"], -32602, "{refused}");
            assert_eq!(
                refused["error"]["data"][0]["fieldViolations"][0]["field"], field,
                "the missing member is named: {refused}"
            );
        }

        let wrong_type = send(&big, json!({"configuration": {"historyLength": "all"}}));
        let (_, refused) = answer(&service, &wrong_type).await;
        assert_eq!(refused["id"], 7);
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
        assert_eq!(
            refused["error"]["data"][0]["fieldViolations"][0]["field"],
            "configuration.historyLength"
        );

        let mut cut_short = send(&big, json!({}));
        cut_short.pop();
        let (_, refused) = answer(&service, &cut_short).await;
        assert_eq!(refused["error"]["code"], -32700, "not JSON");
        assert_eq!(refused["id"], Value::Null);
    }
}
