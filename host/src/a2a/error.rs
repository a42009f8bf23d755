//! JSON-RPC error objects with the A2A codes. Each constructor takes what
//! the client needs to fix the call: the field, the task id, the method.
//!
//! The error object has only `code`, `message` and `data`; `data` is an
//! array of typed details (specification section 9.5): every A2A error
//! (-32001 to -32099) carries a `google.rpc.ErrorInfo` whose `reason` names
//! the error (`TASK_NOT_FOUND`) in the `a2a-protocol.org` domain, with the
//! ids involved in its `metadata`; invalid params carry a
//! `google.rpc.BadRequest` naming the field.

use std::collections::BTreeMap;

use serde::Serialize;

/// The JSON-RPC server-error code of a refusal for budget: the request
/// did nothing and can be retried later.
pub const OVER_BUDGET: i32 = -32000;

/// The domain of the A2A errors' `ErrorInfo`.
pub const A2A_DOMAIN: &str = "a2a-protocol.org";

/// The domain of this server's own reasons (budgets, streams cut short).
pub const HOST_DOMAIN: &str = "a2a-sandbox";

/// A JSON-RPC error as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<Detail>,
}

/// One typed detail of an error, as `google.rpc` defines it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "@type")]
pub enum Detail {
    /// Why the error happened, machine-readably.
    #[serde(rename = "type.googleapis.com/google.rpc.ErrorInfo")]
    ErrorInfo {
        reason: &'static str,
        domain: &'static str,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        metadata: BTreeMap<&'static str, String>,
    },
    /// Which fields of the request are wrong.
    #[serde(rename = "type.googleapis.com/google.rpc.BadRequest")]
    BadRequest {
        #[serde(rename = "fieldViolations")]
        field_violations: Vec<FieldViolation>,
    },
}

/// A field of the request and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl RpcError {
    fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: Vec::new(),
        }
    }

    /// An error with an `ErrorInfo` of `reason` in `domain`.
    fn with_reason(code: i32, reason: &'static str, domain: &'static str, message: String) -> Self {
        RpcError {
            code,
            message,
            data: vec![Detail::ErrorInfo {
                reason,
                domain,
                metadata: BTreeMap::new(),
            }],
        }
    }

    /// An A2A error: `ErrorInfo` with `reason` in the A2A domain.
    fn a2a(code: i32, reason: &'static str, message: String) -> Self {
        Self::with_reason(code, reason, A2A_DOMAIN, message)
    }

    /// Adds `key: value` to the error's `ErrorInfo` metadata (the ids
    /// involved). An error without an `ErrorInfo` is unchanged.
    pub fn with_meta(mut self, key: &'static str, value: impl Into<String>) -> Self {
        if let Some(Detail::ErrorInfo { metadata, .. }) = self
            .data
            .iter_mut()
            .find(|d| matches!(d, Detail::ErrorInfo { .. }))
        {
            metadata.insert(key, value.into());
        }
        self
    }

    /// The `ErrorInfo` reason, if the error has one.
    pub fn reason(&self) -> Option<&'static str> {
        self.data.iter().find_map(|d| match d {
            Detail::ErrorInfo { reason, .. } => Some(*reason),
            Detail::BadRequest { .. } => None,
        })
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
    /// -32602: the params do not fit the method. `field` is the path of
    /// the field at fault (`message.parts`; empty for the params as a
    /// whole) and `why` the sentence the client reads.
    pub fn invalid_params(field: &str, why: impl Into<String>) -> Self {
        let why = why.into();
        RpcError {
            code: -32602,
            message: format!("invalid params: {why}"),
            data: vec![Detail::BadRequest {
                field_violations: vec![FieldViolation {
                    field: field.to_string(),
                    description: why,
                }],
            }],
        }
    }
    /// A host bug. The detail goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(-32603, "internal error")
    }
    /// -32001: no task with this id in this agent's store.
    pub fn task_not_found(id: &str) -> Self {
        Self::a2a(-32001, "TASK_NOT_FOUND", format!("task not found: {id}")).with_meta("taskId", id)
    }
    /// -32002: the task is in a state (`state`) that cannot be canceled.
    pub fn task_not_cancelable(id: &str, state: &str) -> Self {
        Self::a2a(
            -32002,
            "TASK_NOT_CANCELABLE",
            format!("task {id} is {state} and cannot be canceled"),
        )
        .with_meta("taskId", id)
    }
    /// -32003: push notifications are off on this server.
    pub fn push_not_supported() -> Self {
        Self::a2a(
            -32003,
            "PUSH_NOTIFICATION_NOT_SUPPORTED",
            "push notifications are not supported by this agent".into(),
        )
    }
    /// -32004: the agent does not do this (for example streaming).
    pub fn unsupported_operation(why: impl Into<String>) -> Self {
        Self::a2a(
            -32004,
            "UNSUPPORTED_OPERATION",
            format!("unsupported operation: {}", why.into()),
        )
    }
    /// -32005: a part's media type is not one the agent takes.
    pub fn content_type_not_supported(why: impl Into<String>) -> Self {
        Self::a2a(
            -32005,
            "CONTENT_TYPE_NOT_SUPPORTED",
            format!("content type not supported: {}", why.into()),
        )
    }
    /// -32006: the agent trapped, timed out or answered something invalid.
    pub fn invalid_agent_response(why: impl Into<String>) -> Self {
        Self::a2a(
            -32006,
            "INVALID_AGENT_RESPONSE",
            format!("invalid agent response: {}", why.into()),
        )
    }
    /// -32007: no extended agent card is configured.
    pub fn extended_card_not_configured() -> Self {
        Self::a2a(
            -32007,
            "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            "this agent has no extended agent card".into(),
        )
    }
    /// The session's budget (or the agent's call queue) is spent: the
    /// request was refused before anything was done, and may be retried.
    /// Answered with HTTP 429 and `Retry-After`; the `ErrorInfo` (reason
    /// `OVER_BUDGET`, this server's domain) names the budget.
    pub fn over_budget(why: impl std::fmt::Display, budget: &str) -> Self {
        Self::with_reason(
            OVER_BUDGET,
            "OVER_BUDGET",
            HOST_DOMAIN,
            format!("over budget: {why}"),
        )
        .with_meta("budget", budget)
    }

    /// True for [`over_budget`](Self::over_budget) refusals.
    pub fn is_over_budget(&self) -> bool {
        self.code == OVER_BUDGET
    }

    /// -32009: the client's `A2A-Version` is not one this server speaks.
    pub fn version_not_supported(asked: &str) -> Self {
        Self::a2a(
            -32009,
            "VERSION_NOT_SUPPORTED",
            format!("A2A version {asked:?} is not supported; this server speaks 1.0"),
        )
        .with_meta("supportedVersions", "1.0")
    }

    /// -32603 for a stream this server ended: `cause` says why
    /// (`CLIENT_TOO_SLOW`), in this server's domain.
    pub fn stream_ended(cause: &'static str, why: impl Into<String>) -> Self {
        Self::with_reason(-32603, cause, HOST_DOMAIN, why.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a2a_errors_carry_error_info_and_invalid_params_a_bad_request() {
        let e = serde_json::to_value(RpcError::task_not_found("t-1")).unwrap();
        assert_eq!(e["code"], -32001);
        let info = &e["data"][0];
        assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
        assert_eq!(info["reason"], "TASK_NOT_FOUND");
        assert_eq!(info["domain"], "a2a-protocol.org");
        assert_eq!(info["metadata"]["taskId"], "t-1");
        assert_eq!(e.as_object().unwrap().len(), 3, "code, message, data only");

        let e = serde_json::to_value(RpcError::invalid_params("message.role", "bad")).unwrap();
        let bad = &e["data"][0];
        assert_eq!(bad["@type"], "type.googleapis.com/google.rpc.BadRequest");
        assert_eq!(bad["fieldViolations"][0]["field"], "message.role");

        let plain = serde_json::to_value(RpcError::method_not_found("x")).unwrap();
        assert!(plain.get("data").is_none());
    }
}
