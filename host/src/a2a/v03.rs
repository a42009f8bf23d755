//! The A2A 0.3 dialect, for clients that predate 1.0.
//!
//! A request that names a method the 0.3 way (`message/send`,
//! `tasks/get`, ...) is answered entirely in 0.3 wire format. Its params
//! are rewritten into the 1.0 shape and served by the same code and the
//! same task store; the answer is rewritten back. The differences are all
//! in shape: lower-case roles and `kind` tags, 0.3 state names (`input-
//! required`), file parts nested under `file`, `final` on the status
//! event that ends a stream, push configs nested in their task's, and
//! results that are the object itself rather than wrapped in a field.
//! 1.0 requests never pass through here.

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::error::RpcError;
use super::jsonrpc::Params;

/// Which wire format a request is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A2A 1.0: `SendMessage`, `ROLE_USER`, `TASK_STATE_COMPLETED`.
    V1,
    /// A2A 0.3: `message/send`, `user`, `completed`.
    V03,
}

impl Dialect {
    /// The dialect a method name is spelled in: every 0.3 name has a `/`.
    pub fn of_method(name: &str) -> Dialect {
        if name.contains('/') {
            Dialect::V03
        } else {
            Dialect::V1
        }
    }

    /// Whether a request in this dialect may carry `A2A-Version: version`.
    /// 0.3 clients send none, or a 0.3 version.
    pub fn accepts_version(self, version: Option<&str>) -> bool {
        match (self, version) {
            (_, None) => true,
            (Dialect::V1, Some(v)) => v == "1.0",
            (Dialect::V03, Some(v)) => v == "0.3" || v.starts_with("0.3."),
        }
    }
}

/// What a 0.3 request asks for, by the shape of its params and result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Send,
    Task,
    TaskList,
    SetPushConfig,
    GetPushConfig,
    ListPushConfigs,
    DeletePushConfig,
    Other,
}

/// The 1.0 params of a 0.3 request.
pub fn params_to_v1(shape: Shape, params: &RawValue) -> Result<Params, RpcError> {
    let mut p: Map<String, Value> = serde_json::from_str(params.get())
        .map_err(|e| RpcError::invalid_params("params", e.to_string()))?;
    match shape {
        Shape::Send => {
            if let Some(message) = p.get_mut("message") {
                message_to_v1(message);
            }
            if let Some(Value::Object(config)) = p.get_mut("configuration") {
                if let Some(blocking) = config.remove("blocking") {
                    config.insert("returnImmediately".into(), json!(blocking == json!(false)));
                }
                if let Some(push) = config.remove("pushNotificationConfig") {
                    config.insert("taskPushNotificationConfig".into(), push_config_to_v1(push));
                }
            }
        }
        Shape::SetPushConfig => {
            let task_id = p.remove("taskId").unwrap_or(Value::Null);
            let config = p.remove("pushNotificationConfig").unwrap_or(json!({}));
            let mut config = push_config_to_v1(config);
            // 0.3 names a config the client gave no id by its task.
            if config.get("id").is_none_or(|id| id == "" || id.is_null()) {
                config["id"] = task_id.clone();
            }
            config["taskId"] = task_id;
            p = config.as_object().cloned().unwrap_or_default();
        }
        Shape::GetPushConfig | Shape::DeletePushConfig => {
            let task_id = p.remove("id").unwrap_or(Value::Null);
            let config_id = p
                .remove("pushNotificationConfigId")
                .filter(|id| !id.is_null())
                .unwrap_or_else(|| task_id.clone());
            p = Map::from_iter([("taskId".into(), task_id), ("id".into(), config_id)]);
        }
        Shape::ListPushConfigs => {
            if let Some(task_id) = p.remove("id") {
                p.insert("taskId".into(), task_id);
            }
        }
        Shape::Task | Shape::TaskList | Shape::Other => {}
    }
    Ok(super::jsonrpc::params_of(&p))
}

/// The 0.3 form of a 1.0 result.
pub fn result_from_v1(shape: Shape, result: Value) -> Value {
    match shape {
        Shape::Send => match result {
            Value::Object(mut o) => match (o.remove("task"), o.remove("message")) {
                (Some(task), _) => task_from_v1(task),
                (None, Some(message)) => message_from_v1(message),
                (None, None) => Value::Object(o),
            },
            other => other,
        },
        Shape::Task => task_from_v1(result),
        Shape::TaskList => {
            let mut result = result;
            if let Some(Value::Array(tasks)) = result.get_mut("tasks") {
                for task in tasks.iter_mut() {
                    *task = task_from_v1(task.take());
                }
            }
            result
        }
        Shape::SetPushConfig | Shape::GetPushConfig => push_config_from_v1(result),
        Shape::ListPushConfigs => match result {
            Value::Object(mut o) => match o.remove("configs") {
                Some(Value::Array(configs)) => {
                    Value::Array(configs.into_iter().map(push_config_from_v1).collect())
                }
                _ => json!([]),
            },
            other => other,
        },
        Shape::DeletePushConfig => Value::Null,
        Shape::Other => result,
    }
}

/// The 0.3 form of one 1.0 stream event (a serialised StreamResponse);
/// `last` marks the event that ends the stream.
pub fn event_from_v1(event: &[u8], last: bool) -> Vec<u8> {
    let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(event) else {
        return event.to_vec();
    };
    let converted = if let Some(task) = o.remove("task") {
        task_from_v1(task)
    } else if let Some(message) = o.remove("message") {
        message_from_v1(message)
    } else if let Some(Value::Object(mut e)) = o.remove("statusUpdate") {
        if let Some(status) = e.get_mut("status") {
            status_from_v1(status);
        }
        e.insert("kind".into(), json!("status-update"));
        e.insert("final".into(), json!(last));
        Value::Object(e)
    } else if let Some(Value::Object(mut e)) = o.remove("artifactUpdate") {
        if let Some(artifact) = e.get_mut("artifact") {
            parts_from_v1(artifact);
        }
        e.insert("kind".into(), json!("artifact-update"));
        e.entry("append").or_insert(json!(false));
        e.entry("lastChunk").or_insert(json!(false));
        Value::Object(e)
    } else {
        Value::Object(o)
    };
    serde_json::to_vec(&converted).expect("JSON values serialise")
}

/// The 0.3 agent card (`/.well-known/agent.json`), from the 1.0 one.
pub fn card_from_v1(card: &Value, url: &str) -> Value {
    let mut v03 = json!({
        "protocolVersion": "0.3.0",
        "name": card["name"],
        "description": card["description"],
        "url": url,
        "preferredTransport": "JSONRPC",
        "version": card["version"],
        "capabilities": {
            "streaming": card["capabilities"]["streaming"],
            "pushNotifications": card["capabilities"]["pushNotifications"],
            "stateTransitionHistory": false,
        },
        "defaultInputModes": card["defaultInputModes"],
        "defaultOutputModes": card["defaultOutputModes"],
        "skills": card["skills"],
        "supportsAuthenticatedExtendedCard": false,
    });
    if card.get("securitySchemes").is_some() {
        v03["securitySchemes"] = json!({"session": {"type": "http", "scheme": "bearer"}});
        v03["security"] = json!([{"session": []}]);
    }
    v03
}

fn message_to_v1(message: &mut Value) {
    let Value::Object(m) = message else { return };
    m.remove("kind");
    if let Some(role) = m.get_mut("role") {
        match role.as_str() {
            Some("user") => *role = json!("ROLE_USER"),
            Some("agent") => *role = json!("ROLE_AGENT"),
            _ => {}
        }
    }
    if let Some(Value::Array(parts)) = m.get_mut("parts") {
        for part in parts.iter_mut() {
            part_to_v1(part);
        }
    }
}

fn part_to_v1(part: &mut Value) {
    let Value::Object(p) = part else { return };
    let kind = p.remove("kind");
    if kind.as_ref().and_then(Value::as_str) != Some("file") {
        return;
    }
    let Some(Value::Object(mut file)) = p.remove("file") else {
        return;
    };
    for (v03, v1) in FILE_FIELDS {
        if let Some(value) = file.remove(v03) {
            p.insert(v1.into(), value);
        }
    }
}

/// A file part's fields: the 0.3 name (under `file`) and the 1.0 name
/// (on the part itself).
const FILE_FIELDS: [(&str, &str); 4] = [
    ("bytes", "raw"),
    ("uri", "url"),
    ("mimeType", "mediaType"),
    ("name", "filename"),
];

fn push_config_to_v1(config: Value) -> Value {
    let Value::Object(mut c) = config else {
        return config;
    };
    if let Some(Value::Object(mut auth)) = c.remove("authentication") {
        let scheme = match auth.remove("schemes") {
            Some(Value::Array(schemes)) => schemes.into_iter().next().unwrap_or(json!("")),
            _ => json!(""),
        };
        auth.insert("scheme".into(), scheme);
        c.insert("authentication".into(), Value::Object(auth));
    }
    Value::Object(c)
}

fn push_config_from_v1(config: Value) -> Value {
    let Value::Object(mut c) = config else {
        return config;
    };
    let task_id = c.remove("taskId").unwrap_or(Value::Null);
    if let Some(Value::Object(mut auth)) = c.remove("authentication") {
        let scheme = auth.remove("scheme").unwrap_or(json!(""));
        auth.insert("schemes".into(), json!([scheme]));
        c.insert("authentication".into(), Value::Object(auth));
    }
    json!({"taskId": task_id, "pushNotificationConfig": c})
}

fn task_from_v1(task: Value) -> Value {
    let Value::Object(mut t) = task else {
        return task;
    };
    t.insert("kind".into(), json!("task"));
    if let Some(status) = t.get_mut("status") {
        status_from_v1(status);
    }
    if let Some(Value::Array(history)) = t.get_mut("history") {
        for message in history.iter_mut() {
            *message = message_from_v1(message.take());
        }
    }
    if let Some(Value::Array(artifacts)) = t.get_mut("artifacts") {
        for artifact in artifacts.iter_mut() {
            parts_from_v1(artifact);
        }
    }
    Value::Object(t)
}

fn status_from_v1(status: &mut Value) {
    if let Some(state) = status.get_mut("state") {
        *state = json!(state_from_v1(state.as_str().unwrap_or("")));
    }
    if let Some(message) = status.get_mut("message") {
        *message = message_from_v1(message.take());
    }
}

/// `TASK_STATE_INPUT_REQUIRED` → `input-required`.
fn state_from_v1(state: &str) -> String {
    match state.strip_prefix("TASK_STATE_") {
        Some("UNSPECIFIED") | None => "unknown".into(),
        Some(name) => name.to_ascii_lowercase().replace('_', "-"),
    }
}

fn message_from_v1(message: Value) -> Value {
    let Value::Object(mut m) = message else {
        return message;
    };
    m.insert("kind".into(), json!("message"));
    if let Some(role) = m.get_mut("role") {
        *role = json!(match role.as_str() {
            Some("ROLE_USER") => "user",
            _ => "agent",
        });
    }
    let mut message = Value::Object(m);
    parts_from_v1(&mut message);
    message
}

/// Rewrites the `parts` of a message or artifact.
fn parts_from_v1(holder: &mut Value) {
    if let Some(Value::Array(parts)) = holder.get_mut("parts") {
        for part in parts.iter_mut() {
            *part = part_from_v1(part.take());
        }
    }
}

fn part_from_v1(part: Value) -> Value {
    let Value::Object(mut p) = part else {
        return part;
    };
    let mut out = Map::new();
    if let Some(text) = p.remove("text") {
        out.insert("kind".into(), json!("text"));
        out.insert("text".into(), text);
    } else if let Some(data) = p.remove("data") {
        out.insert("kind".into(), json!("data"));
        // 0.3 data parts hold an object.
        let data = if data.is_object() {
            data
        } else {
            json!({"value": data})
        };
        out.insert("data".into(), data);
    } else {
        let mut file = Map::new();
        for (v03, v1) in FILE_FIELDS {
            if let Some(value) = p.remove(v1) {
                file.insert(v03.into(), value);
            }
        }
        out.insert("kind".into(), json!("file"));
        out.insert("file".into(), Value::Object(file));
    }
    if let Some(metadata) = p.remove("metadata") {
        out.insert("metadata".into(), metadata);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    fn params(shape: Shape, v: Value) -> Value {
        serde_json::from_slice(params_to_v1(shape, &raw(v)).unwrap().text()).unwrap()
    }

    #[test]
    fn a_0_3_message_becomes_a_1_0_message() {
        let p = params(
            Shape::Send,
            json!({"message": {"kind": "message", "messageId": "m", "role": "user", "parts": [
                {"kind": "text", "text": "hi"},
                {"kind": "data", "data": {"a": 1}},
                {"kind": "file", "file": {"bytes": "aGk=", "mimeType": "text/plain", "name": "f"}},
                {"kind": "file", "file": {"uri": "https://x/y"}}
            ]}, "configuration": {"blocking": false, "historyLength": 2,
                "pushNotificationConfig": {"url": "https://hook", "authentication": {"schemes": ["Bearer"]}}}}),
        );
        assert_eq!(
            p["message"],
            json!({"messageId": "m", "role": "ROLE_USER", "parts": [
                {"text": "hi"}, {"data": {"a": 1}},
                {"raw": "aGk=", "mediaType": "text/plain", "filename": "f"},
                {"url": "https://x/y"}
            ]})
        );
        assert_eq!(p["configuration"]["returnImmediately"], true);
        assert_eq!(p["configuration"]["historyLength"], 2);
        assert_eq!(
            p["configuration"]["taskPushNotificationConfig"]["authentication"]["scheme"],
            "Bearer"
        );
    }

    #[test]
    fn push_config_params_name_the_task_and_the_config() {
        let set = params(
            Shape::SetPushConfig,
            json!({"taskId": "t", "pushNotificationConfig": {"url": "https://hook", "token": "k"}}),
        );
        assert_eq!(
            set,
            json!({"taskId": "t", "id": "t", "url": "https://hook", "token": "k"})
        );
        let get = params(
            Shape::GetPushConfig,
            json!({"id": "t", "pushNotificationConfigId": "c"}),
        );
        assert_eq!(get, json!({"taskId": "t", "id": "c"}));
        let list = params(Shape::ListPushConfigs, json!({"id": "t"}));
        assert_eq!(list, json!({"taskId": "t"}));
        let back = result_from_v1(
            Shape::ListPushConfigs,
            json!({"configs": [{"taskId": "t", "id": "c", "url": "u"}], "nextPageToken": ""}),
        );
        assert_eq!(
            back,
            json!([{"taskId": "t", "pushNotificationConfig": {"id": "c", "url": "u"}}])
        );
    }

    #[test]
    fn results_are_unwrapped_and_spelled_the_0_3_way() {
        let task = json!({"id": "t", "contextId": "c",
            "status": {"state": "TASK_STATE_INPUT_REQUIRED",
                "message": {"messageId": "a", "role": "ROLE_AGENT", "parts": [{"text": "more?"}]}},
            "history": [{"messageId": "u", "role": "ROLE_USER", "parts": [{"data": [1, 2]}]}],
            "artifacts": [{"artifactId": "x", "parts": [{"url": "https://f", "mediaType": "text/plain"}]}]});
        let v03 = result_from_v1(Shape::Send, json!({"task": task}));
        assert_eq!(v03["kind"], "task");
        assert_eq!(v03["status"]["state"], "input-required");
        assert_eq!(v03["status"]["message"]["role"], "agent");
        assert_eq!(v03["status"]["message"]["kind"], "message");
        assert_eq!(
            v03["status"]["message"]["parts"][0],
            json!({"kind": "text", "text": "more?"})
        );
        assert_eq!(
            v03["history"][0]["parts"][0],
            json!({"kind": "data", "data": {"value": [1, 2]}})
        );
        assert_eq!(
            v03["artifacts"][0]["parts"][0],
            json!({"kind": "file", "file": {"uri": "https://f", "mimeType": "text/plain"}})
        );
        let message = result_from_v1(
            Shape::Send,
            json!({"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": []}}),
        );
        assert_eq!(message["kind"], "message");
        assert_eq!(
            result_from_v1(Shape::DeletePushConfig, json!({})),
            Value::Null
        );
    }

    #[test]
    fn the_last_status_event_is_final() {
        let event = br#"{"statusUpdate":{"taskId":"t","contextId":"c","status":{"state":"TASK_STATE_COMPLETED"}}}"#;
        let v: Value = serde_json::from_slice(&event_from_v1(event, true)).unwrap();
        assert_eq!(
            v,
            json!({"kind": "status-update", "taskId": "t", "contextId": "c",
                   "status": {"state": "completed"}, "final": true})
        );
        let artifact = br#"{"artifactUpdate":{"taskId":"t","contextId":"c","artifact":{"artifactId":"a","parts":[{"text":"x"}]},"lastChunk":true}}"#;
        let v: Value = serde_json::from_slice(&event_from_v1(artifact, false)).unwrap();
        assert_eq!(v["kind"], "artifact-update");
        assert_eq!(v["append"], false);
        assert_eq!(v["artifact"]["parts"][0]["kind"], "text");
    }

    #[test]
    fn versions_go_with_their_dialect() {
        assert_eq!(Dialect::of_method("message/send"), Dialect::V03);
        assert_eq!(Dialect::of_method("SendMessage"), Dialect::V1);
        assert!(Dialect::V03.accepts_version(None));
        assert!(Dialect::V03.accepts_version(Some("0.3")));
        assert!(!Dialect::V03.accepts_version(Some("1.0")));
        assert!(!Dialect::V1.accepts_version(Some("0.3")));
    }
}
