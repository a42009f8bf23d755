//! JSON-RPC dispatch for one agent: method names (1.0 and the 0.3
//! aliases), params validation, the task rules, and the call into the
//! agent through [`AgentBackend`].

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::RpcError;
use super::jsonrpc::{self, RequestId};
use super::tasks::{StoreError, TaskStore, TaskUpdate, with_history};
use super::types::{Message, Part, Role, SendMessageParams, TaskState};

/// A message for the agent, with the task it belongs to.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    pub task_id: String,
    pub context_id: String,
    /// True when this message starts the task.
    pub new_task: bool,
    pub message: Message,
}

/// Why the agent did not produce an update.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentFailure {
    /// The agent answered with an error: the task fails with this text.
    Refused(String),
    /// The agent crashed (trap, deadline, memory limit): the task fails
    /// and the caller gets `-32006` naming the cause.
    Crashed(String),
}

/// Receives progress the agent emits while a call runs: (task id, update).
pub type EmitSink = Arc<dyn Fn(&str, TaskUpdate) + Send + Sync>;

/// What the protocol layer needs of an agent. The host implements it
/// with a Wasm instance; tests implement it with plain Rust.
pub trait AgentBackend: Send + Sync + 'static {
    /// Handles one message and returns the task's new state.
    fn handle(
        &self,
        req: AgentRequest,
        emit: EmitSink,
    ) -> impl Future<Output = Result<TaskUpdate, AgentFailure>> + Send;
}

/// What to send back for a request.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// A JSON-RPC response body.
    Json(Vec<u8>),
    /// A notification was processed: nothing to send.
    Nothing,
}

/// The A2A methods, by their 1.0 names; [`Method::parse`] also takes the
/// 0.3 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SendMessage,
}

impl Method {
    fn parse(name: &str) -> Option<Method> {
        match name {
            "SendMessage" | "message/send" => Some(Method::SendMessage),
            _ => None,
        }
    }
}

/// The A2A server of one agent instance: its task store and its backend.
pub struct A2aService<B> {
    backend: B,
    tasks: Arc<TaskStore>,
}

fn params<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::invalid_params(e.to_string()))
}

fn history_length(n: Option<i32>) -> Result<Option<usize>, RpcError> {
    match n {
        Some(n) if n < 0 => Err(RpcError::invalid_params(
            "historyLength must not be negative",
        )),
        n => Ok(n.map(|n| n as usize)),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl<B: AgentBackend> A2aService<B> {
    pub fn new(backend: B) -> Self {
        A2aService {
            backend,
            tasks: Arc::new(TaskStore::default()),
        }
    }

    /// The agent behind this service.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Answers one JSON-RPC body. `version` is the client's `A2A-Version`.
    pub async fn call(&self, version: Option<&str>, body: &[u8]) -> Reply {
        let request = match jsonrpc::parse(body) {
            Ok(r) => r,
            Err((id, e)) => return Reply::Json(jsonrpc::error_body(&id, &e)),
        };
        let outcome = self
            .dispatch(version, &request.method, request.params)
            .await;
        match request.id {
            None => Reply::Nothing,
            Some(id) => Reply::Json(respond(&id, outcome)),
        }
    }

    async fn dispatch(
        &self,
        version: Option<&str>,
        method: &str,
        p: Value,
    ) -> Result<Value, RpcError> {
        if let Some(v) = version.filter(|v| *v != "1.0") {
            return Err(RpcError::version_not_supported(v));
        }
        match Method::parse(method).ok_or_else(|| RpcError::method_not_found(method))? {
            Method::SendMessage => self.send_message(params(p)?).await,
        }
    }

    async fn send_message(&self, p: SendMessageParams) -> Result<Value, RpcError> {
        let config = p.configuration.unwrap_or_default();
        let history = history_length(config.history_length)?;
        let mut message = p.message;
        if message.message_id.is_empty() {
            return Err(RpcError::invalid_params(
                "message.messageId must not be empty",
            ));
        }
        if message.parts.is_empty() {
            return Err(RpcError::invalid_params("message.parts must not be empty"));
        }
        if message.role != Role::User {
            return Err(RpcError::invalid_params("message.role must be ROLE_USER"));
        }
        let (task_id, context_id, new_task) = match message.task_id.clone() {
            Some(id) => {
                let task = self
                    .tasks
                    .get(&id)
                    .ok_or_else(|| RpcError::task_not_found(&id))?;
                if task.status.state.is_terminal() {
                    return Err(terminal(&id, task.status.state));
                }
                if message
                    .context_id
                    .as_ref()
                    .is_some_and(|c| *c != task.context_id)
                {
                    return Err(RpcError::invalid_params(format!(
                        "message.contextId does not match task {id}'s context"
                    )));
                }
                (id, task.context_id, false)
            }
            None => (
                new_id(),
                message.context_id.clone().unwrap_or_else(new_id),
                true,
            ),
        };
        message.task_id = Some(task_id.clone());
        message.context_id = Some(context_id.clone());
        if new_task {
            self.tasks.create(&task_id, &context_id, message.clone())
        } else {
            self.tasks.append_user_message(&task_id, message.clone())
        }
        .map_err(store_error)?;
        let request = AgentRequest {
            task_id: task_id.clone(),
            context_id,
            new_task,
            message,
        };
        let outcome = self.backend.handle(request, self.emit_sink()).await;
        let task = match outcome {
            Ok(update) => self.tasks.apply(&task_id, update),
            Err(AgentFailure::Refused(why)) => self.tasks.apply(&task_id, failed(why)),
            Err(AgentFailure::Crashed(cause)) => {
                let _ = self.tasks.apply(&task_id, failed(cause.clone()));
                return Err(
                    RpcError::invalid_agent_response(cause).with_data(json!({"taskId": task_id}))
                );
            }
        };
        // A task canceled while the agent worked stays canceled.
        let task = match task {
            Ok(task) => task,
            Err(StoreError::Terminal { .. }) => self
                .tasks
                .get(&task_id)
                .ok_or_else(|| RpcError::task_not_found(&task_id))?,
            Err(e) => return Err(store_error(e)),
        };
        Ok(json!({"task": with_history(task, history)}))
    }

    fn emit_sink(&self) -> EmitSink {
        let tasks = Arc::clone(&self.tasks);
        Arc::new(move |task_id: &str, update: TaskUpdate| {
            // Progress on an unknown or finished task is dropped: the
            // guest cannot create or revive tasks by emitting.
            let _ = tasks.apply(task_id, update);
        })
    }
}

fn failed(why: String) -> TaskUpdate {
    TaskUpdate {
        state: TaskState::Failed,
        message: Some(Message {
            message_id: String::new(),
            role: Role::Agent,
            parts: vec![Part::text(why)],
            context_id: None,
            task_id: None,
            metadata: None,
            extensions: None,
            reference_task_ids: None,
        }),
        artifacts: Vec::new(),
    }
}

fn terminal(id: &str, state: TaskState) -> RpcError {
    RpcError::unsupported_operation(format!("task {id} is {state:?}, a terminal state"))
}

fn store_error(e: StoreError) -> RpcError {
    match e {
        StoreError::NotFound(id) => RpcError::task_not_found(&id),
        StoreError::Terminal { id, state } => terminal(&id, state),
        StoreError::Full => RpcError::unsupported_operation(StoreError::Full.to_string()),
    }
}

fn respond(id: &RequestId, outcome: Result<Value, RpcError>) -> Vec<u8> {
    match outcome {
        Ok(result) => jsonrpc::result_body(id, &result),
        Err(e) => jsonrpc::error_body(id, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a2a::types::PartContent;

    /// Echoes the text back; fails on "refuse", crashes on "crash",
    /// stays working on "wait".
    struct Echo;

    impl AgentBackend for Echo {
        async fn handle(
            &self,
            req: AgentRequest,
            _emit: EmitSink,
        ) -> Result<TaskUpdate, AgentFailure> {
            let text = match &req.message.parts[0].content {
                PartContent::Text(t) => t.clone(),
                _ => String::new(),
            };
            match text.as_str() {
                "refuse" => Err(AgentFailure::Refused("no thanks".into())),
                "crash" => Err(AgentFailure::Crashed("guest panic".into())),
                _ => Ok(TaskUpdate {
                    state: if text == "wait" {
                        TaskState::Working
                    } else {
                        TaskState::Completed
                    },
                    message: Some(failed(format!("echo: {text}")).message.unwrap()),
                    artifacts: vec![],
                }),
            }
        }
    }

    async fn call(svc: &A2aService<Echo>, body: Value) -> Value {
        match svc.call(None, body.to_string().as_bytes()).await {
            Reply::Json(b) => serde_json::from_slice(&b).unwrap(),
            Reply::Nothing => Value::Null,
        }
    }

    fn send(text: &str, task_id: Option<&str>) -> Value {
        let mut message =
            json!({"messageId": new_id(), "role": "ROLE_USER", "parts": [{"text": text}]});
        if let Some(t) = task_id {
            message["taskId"] = json!(t);
        }
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}})
    }

    #[tokio::test]
    async fn send_message_runs_the_task_rules() {
        let svc = A2aService::new(Echo);
        let r = call(&svc, send("hello", None)).await;
        let task = &r["result"]["task"];
        assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
        assert_eq!(task["status"]["message"]["parts"][0]["text"], "echo: hello");
        assert_eq!(task["history"].as_array().unwrap().len(), 2);
        let done = task["id"].as_str().unwrap();
        assert_eq!(
            call(&svc, send("again", Some(done))).await["error"]["code"],
            -32004
        );
        assert_eq!(
            call(&svc, send("x", Some("missing"))).await["error"]["code"],
            -32001
        );

        let r = call(&svc, send("wait", None)).await;
        let working = r["result"]["task"]["id"].as_str().unwrap().to_string();
        let r = call(&svc, send("more", Some(&working))).await;
        assert_eq!(r["result"]["task"]["history"].as_array().unwrap().len(), 4);

        let r = call(&svc, send("refuse", None)).await;
        assert_eq!(r["result"]["task"]["status"]["state"], "TASK_STATE_FAILED");
        let r = call(&svc, send("crash", None)).await;
        assert_eq!(r["error"]["code"], -32006);
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("guest panic")
        );
    }

    #[tokio::test]
    async fn bad_calls_get_their_codes() {
        let svc = A2aService::new(Echo);
        let m = |method: &str, params: Value| json!({"jsonrpc": "2.0", "id": "x", "method": method, "params": params});
        assert_eq!(
            call(&svc, m("Nope", json!({}))).await["error"]["code"],
            -32601
        );
        assert_eq!(
            call(&svc, m("SendMessage", json!({}))).await["error"]["code"],
            -32602
        );
        let bad_role =
            json!({"message": {"messageId": "1", "role": "ROLE_BOSS", "parts": [{"text": "a"}]}});
        assert_eq!(
            call(&svc, m("SendMessage", bad_role)).await["error"]["code"],
            -32602
        );
        let no_parts = json!({"message": {"messageId": "1", "role": "ROLE_USER", "parts": []}});
        assert_eq!(
            call(&svc, m("SendMessage", no_parts)).await["error"]["code"],
            -32602
        );
        let r = call(&svc, send("alias", None)).await;
        assert_eq!(r["id"], 1);
        let alias = json!({"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": send("a", None)["params"]});
        assert_eq!(
            call(&svc, alias).await["result"]["task"]["status"]["state"],
            "TASK_STATE_COMPLETED"
        );
        let v = svc
            .call(Some("0.2"), send("a", None).to_string().as_bytes())
            .await;
        let Reply::Json(v) = v else { panic!() };
        assert_eq!(
            serde_json::from_slice::<Value>(&v).unwrap()["error"]["code"],
            -32009
        );
        let notification =
            json!({"jsonrpc": "2.0", "method": "SendMessage", "params": send("n", None)["params"]});
        assert_eq!(
            svc.call(None, notification.to_string().as_bytes()).await,
            Reply::Nothing
        );
    }
}
