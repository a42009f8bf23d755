//! JSON-RPC error objects with the A2A codes. Each constructor takes what
//! the client needs to fix the call: the field, the task id, the method.

use serde::Serialize;
use serde_json::Value;

/// The JSON-RPC server-error code of a refusal for budget: the request
/// did nothing and can be retried later.
pub const OVER_BUDGET: i32 = -32000;

/// A JSON-RPC error as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700: the body is not JSON.
    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        Self::new(
            -32700,
            format!("parse error: body is not valid JSON ({detail})"),
        )
    }
    /// -32600: JSON, but not a JSON-RPC request object.
    pub fn invalid_request(why: impl Into<String>) -> Self {
        Self::new(-32600, format!("invalid request: {}", why.into()))
    }
    /// -32601: no such method (A2A 1.0 names, and the 0.3 aliases).
    pub fn method_not_found(method: &str) -> Self {
        Self::new(-32601, format!("method not found: {method}"))
    }
    /// -32602: the params do not fit the method; `why` names the field.
    pub fn invalid_params(why: impl Into<String>) -> Self {
        Self::new(-32602, format!("invalid params: {}", why.into()))
    }
    /// A host bug. The detail goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(-32603, "internal error")
    }
    /// -32001: no task with this id in this agent's store.
    pub fn task_not_found(id: &str) -> Self {
        Self::new(-32001, format!("task not found: {id}"))
    }
    /// -32002: the task is in a state (`state`) that cannot be canceled.
    pub fn task_not_cancelable(id: &str, state: &str) -> Self {
        Self::new(
            -32002,
            format!("task {id} is {state} and cannot be canceled"),
        )
    }
    /// -32003: push notifications are off on this server.
    pub fn push_not_supported() -> Self {
        Self::new(-32003, "push notifications are not supported by this agent")
    }
    /// -32004: the agent does not do this (for example streaming).
    pub fn unsupported_operation(why: impl Into<String>) -> Self {
        Self::new(-32004, format!("unsupported operation: {}", why.into()))
    }
    /// -32005: a part's media type is not one the agent takes.
    pub fn content_type_not_supported(why: impl Into<String>) -> Self {
        Self::new(
            -32005,
            format!("content type not supported: {}", why.into()),
        )
    }
    /// -32006: the agent trapped, timed out or answered something invalid.
    pub fn invalid_agent_response(why: impl Into<String>) -> Self {
        Self::new(-32006, format!("invalid agent response: {}", why.into()))
    }
    /// -32007: no extended agent card is configured.
    pub fn extended_card_not_configured() -> Self {
        Self::new(-32007, "this agent has no extended agent card")
    }
    /// The session's budget (or the agent's call queue) is spent: the
    /// request was refused before anything was done, and may be retried.
    /// Answered with HTTP 429 and `Retry-After`.
    pub fn over_budget(why: impl std::fmt::Display, budget: &str) -> Self {
        Self::new(OVER_BUDGET, format!("over budget: {why}"))
            .with_data(serde_json::json!({"budget": budget}))
    }

    /// True for [`over_budget`](Self::over_budget) refusals.
    pub fn is_over_budget(&self) -> bool {
        self.code == OVER_BUDGET
    }

    /// -32009: the client's `A2A-Version` is not one this server speaks.
    pub fn version_not_supported(asked: &str) -> Self {
        Self::new(
            -32009,
            format!("A2A version {asked:?} is not supported; this server speaks 1.0"),
        )
        .with_data(serde_json::json!({"supportedVersions": ["1.0"]}))
    }
}
