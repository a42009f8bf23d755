//! The HTTP+JSON (REST) binding: the URL patterns of the specification
//! (section 11.3) mapped to the same methods, params and results as
//! JSON-RPC, and errors as HTTP statuses with a `google.rpc.Status` body
//! (section 11.6) whose details carry the `ErrorInfo`.
//!
//! A REST request becomes a method and its params in the 1.0 JSON shape,
//! so it is served by the one [`A2aService`](super::A2aService) and task
//! store behind every binding.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{Detail, RpcError};
use super::jsonrpc::Params;
use super::service::Method;

/// A REST endpoint: the method a path and verb name, and the ids the
/// path carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    task_id: Option<String>,
    config_id: Option<String>,
    /// The query string's pairs, decoded.
    query: Vec<(String, String)>,
}

/// Why a path is not a REST endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAnEndpoint {
    /// No endpoint has this path.
    NotFound,
    /// The path exists, with other verbs: the ones it takes.
    WrongVerb(&'static str),
}

impl Endpoint {
    /// The endpoint `verb` and `path` (below the agent's base URL, with
    /// its leading `/`) name, with the query string's parameters.
    pub fn parse(verb: &str, path: &str, query: Option<&str>) -> Result<Endpoint, NotAnEndpoint> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (method, allowed, task_id, config_id) = match segments.as_slice() {
            ["message:send"] => (Method::SendMessage, "POST", None, None),
            ["message:stream"] => (Method::SendStreamingMessage, "POST", None, None),
            ["tasks"] => (Method::ListTasks, "GET", None, None),
            ["extendedAgentCard"] => (Method::GetExtendedAgentCard, "GET", None, None),
            ["tasks", task] => match task.rsplit_once(':') {
                Some((id, "cancel")) => (Method::CancelTask, "POST", Some(id), None),
                Some((id, "subscribe")) => (Method::SubscribeToTask, "GET, POST", Some(id), None),
                Some(_) => return Err(NotAnEndpoint::NotFound),
                None => (Method::GetTask, "GET", Some(*task), None),
            },
            ["tasks", task, "pushNotificationConfigs"] => match verb {
                "POST" => (Method::CreatePushConfig, "GET, POST", Some(*task), None),
                _ => (Method::ListPushConfigs, "GET, POST", Some(*task), None),
            },
            ["tasks", task, "pushNotificationConfigs", config] => match verb {
                "DELETE" => (
                    Method::DeletePushConfig,
                    "GET, DELETE",
                    Some(*task),
                    Some(*config),
                ),
                _ => (
                    Method::GetPushConfig,
                    "GET, DELETE",
                    Some(*task),
                    Some(*config),
                ),
            },
            _ => return Err(NotAnEndpoint::NotFound),
        };
        if !allowed.split(", ").any(|v| v == verb) {
            return Err(NotAnEndpoint::WrongVerb(allowed));
        }
        let decode = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Ok(Endpoint {
            method,
            task_id: task_id.filter(|id| !id.is_empty()).map(decode),
            config_id: config_id.filter(|id| !id.is_empty()).map(decode),
            query: query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        })
    }

    /// Whether the endpoint reads a request body.
    pub fn takes_body(&self) -> bool {
        matches!(
            self.method,
            Method::SendMessage | Method::SendStreamingMessage | Method::CreatePushConfig
        )
    }

    /// The method's params in the 1.0 JSON shape: the body (if the
    /// endpoint takes one), the ids of the path, and the query string's
    /// parameters, typed as the method's params are. A large body
    /// ([`crate::bulk::LARGE`]) is read as bulk work, off the threads
    /// that serve requests.
    pub async fn read_params(self, body: Bytes) -> Result<Params, RpcError> {
        crate::bulk::run_if_large(body.len(), move || self.params(&body))
            .await
            .unwrap_or_else(|_| Err(RpcError::internal()))
    }

    /// [`Endpoint::read_params`], on the calling thread.
    fn params(&self, body: &[u8]) -> Result<Params, RpcError> {
        let mut params = if self.takes_body() && !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(o)) => o,
                Ok(_) => {
                    return Err(RpcError::invalid_params(
                        "",
                        "the body must be a JSON object",
                    ));
                }
                Err(e) => return Err(RpcError::parse_error(e)),
            }
        } else {
            Map::new()
        };
        for (name, value) in &self.query {
            params.insert(name.clone(), query_value(name, value)?);
        }
        match (&self.task_id, &self.config_id) {
            (Some(task), Some(config)) => {
                params.insert("taskId".into(), Value::String(task.clone()));
                params.insert("id".into(), Value::String(config.clone()));
            }
            (Some(task), None)
                if matches!(
                    self.method,
                    Method::CreatePushConfig | Method::ListPushConfigs
                ) =>
            {
                params.insert("taskId".into(), Value::String(task.clone()));
            }
            (Some(task), None) => {
                params.insert("id".into(), Value::String(task.clone()));
            }
            (None, _) => {}
        }
        Ok(super::jsonrpc::params_of(&params))
    }
}

/// A query parameter as its JSON value: numbers and booleans for the
/// parameters that are numbers and booleans, strings for the rest.
fn query_value(name: &str, value: &str) -> Result<Value, RpcError> {
    let number = |v: &str| {
        v.parse::<i64>().map(Value::from).map_err(|_| {
            RpcError::invalid_params(name, format!("{name} must be a whole number, not {v:?}"))
        })
    };
    match name {
        "historyLength" | "history_length" | "pageSize" | "page_size" => number(value),
        "includeArtifacts" | "include_artifacts" => match value {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            other => Err(RpcError::invalid_params(
                name,
                format!("{name} must be true or false, not {other:?}"),
            )),
        },
        _ => Ok(Value::String(value.to_string())),
    }
}

/// The HTTP status and `google.rpc.Code` name an error is sent with
/// (specification section 5.4).
pub fn status_of(error: &RpcError) -> (u16, &'static str) {
    match error.code {
        -32001 => (404, "NOT_FOUND"),
        -32002 => (409, "FAILED_PRECONDITION"),
        -32003 | -32004 | -32009 => (400, "UNIMPLEMENTED"),
        -32005 => (415, "INVALID_ARGUMENT"),
        -32006 => (502, "INTERNAL"),
        -32007 | -32008 => (400, "FAILED_PRECONDITION"),
        -32000 => (429, "RESOURCE_EXHAUSTED"),
        -32700 | -32600 | -32602 => (400, "INVALID_ARGUMENT"),
        -32601 => (404, "NOT_FOUND"),
        _ => (500, "INTERNAL"),
    }
}

/// A `google.rpc.Status` body: `{"error": {code, status, message, details}}`.
pub fn error_body(error: &RpcError) -> Vec<u8> {
    #[derive(Serialize)]
    struct Status<'a> {
        code: u16,
        status: &'static str,
        message: &'a str,
        details: &'a [Detail],
    }
    #[derive(Serialize)]
    struct Body<'a> {
        error: Status<'a>,
    }
    let (code, status) = status_of(error);
    serde_json::to_vec(&Body {
        error: Status {
            code,
            status,
            message: &error.message,
            details: &error.data,
        },
    })
    .expect("errors serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(verb: &str, path: &str, query: Option<&str>, body: &str) -> Value {
        let endpoint = Endpoint::parse(verb, path, query).unwrap();
        serde_json::from_slice(endpoint.params(body.as_bytes()).unwrap().text()).unwrap()
    }

    #[test]
    fn paths_name_methods_and_carry_their_ids() {
        let method = |verb, path| Endpoint::parse(verb, path, None).map(|e| e.method);
        assert_eq!(method("POST", "/message:send"), Ok(Method::SendMessage));
        assert_eq!(
            method("POST", "/message:stream"),
            Ok(Method::SendStreamingMessage)
        );
        assert_eq!(method("GET", "/tasks/t1"), Ok(Method::GetTask));
        assert_eq!(method("GET", "/tasks"), Ok(Method::ListTasks));
        assert_eq!(method("POST", "/tasks/t1:cancel"), Ok(Method::CancelTask));
        assert_eq!(
            method("GET", "/tasks/t1:subscribe"),
            Ok(Method::SubscribeToTask)
        );
        assert_eq!(
            method("POST", "/tasks/t1:subscribe"),
            Ok(Method::SubscribeToTask)
        );
        assert_eq!(
            method("POST", "/tasks/t1/pushNotificationConfigs"),
            Ok(Method::CreatePushConfig)
        );
        assert_eq!(
            method("GET", "/tasks/t1/pushNotificationConfigs"),
            Ok(Method::ListPushConfigs)
        );
        assert_eq!(
            method("DELETE", "/tasks/t1/pushNotificationConfigs/c"),
            Ok(Method::DeletePushConfig)
        );
        assert_eq!(
            method("GET", "/extendedAgentCard"),
            Ok(Method::GetExtendedAgentCard)
        );
        assert_eq!(
            method("GET", "/message:send"),
            Err(NotAnEndpoint::WrongVerb("POST"))
        );
        assert_eq!(
            method("DELETE", "/tasks/t1"),
            Err(NotAnEndpoint::WrongVerb("GET"))
        );
        assert_eq!(
            method("GET", "/tasks/t1:explode"),
            Err(NotAnEndpoint::NotFound)
        );
        assert_eq!(method("GET", "/nothing"), Err(NotAnEndpoint::NotFound));
    }

    #[test]
    fn params_join_body_path_and_typed_query() {
        assert_eq!(
            params("GET", "/tasks/t%201", Some("historyLength=2"), ""),
            serde_json::json!({"id": "t 1", "historyLength": 2})
        );
        assert_eq!(
            params(
                "GET",
                "/tasks",
                Some(
                    "status=TASK_STATE_WORKING&includeArtifacts=true&statusTimestampAfter=2026-01-01T00%3A00%3A00Z"
                ),
                ""
            ),
            serde_json::json!({"status": "TASK_STATE_WORKING", "includeArtifacts": true,
                               "statusTimestampAfter": "2026-01-01T00:00:00Z"})
        );
        assert_eq!(
            params(
                "POST",
                "/tasks/t/pushNotificationConfigs",
                None,
                r#"{"url": "https://h"}"#
            ),
            serde_json::json!({"url": "https://h", "taskId": "t"})
        );
        assert_eq!(
            params("GET", "/tasks/t/pushNotificationConfigs/c", None, ""),
            serde_json::json!({"taskId": "t", "id": "c"})
        );
        let bad = Endpoint::parse("GET", "/tasks", Some("pageSize=many")).unwrap();
        assert_eq!(bad.params(b"").unwrap_err().code, -32602);
        let not_json = Endpoint::parse("POST", "/message:send", None).unwrap();
        assert_eq!(not_json.params(b"{oops").unwrap_err().code, -32700);
    }

    #[test]
    fn errors_are_statuses_with_error_info() {
        let e = RpcError::task_not_found("t9");
        assert_eq!(status_of(&e), (404, "NOT_FOUND"));
        let body: Value = serde_json::from_slice(&error_body(&e)).unwrap();
        assert_eq!(body["error"]["code"], 404);
        assert_eq!(body["error"]["status"], "NOT_FOUND");
        assert_eq!(body["error"]["details"][0]["reason"], "TASK_NOT_FOUND");
        assert_eq!(body["error"]["details"][0]["metadata"]["taskId"], "t9");
    }
}
