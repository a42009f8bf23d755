//! A2A 1.0 wire types in their ProtoJSON form: camelCase fields, enums by
//! their full proto names, unset fields omitted.
//!
//! Deserialising is also validation: an unknown enum value, a part with
//! no or two content fields, or bad base64 fails here, and the dispatcher
//! turns that failure into `-32602` naming the field.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::json_object::{self, Object};

/// A JSON value kept as the text that arrived, on one line: a single
/// allocation however deep the value is, so the memory it holds is its
/// length and goes back to the system whole when its task is deleted
/// (a parsed tree of small objects would pin pages shared with other
/// sessions' allocations). It is checked as JSON when it is read, and
/// written out as it came.
#[derive(Debug, Clone)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// Checks `text` as one JSON value.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        Self::one_line(RawValue::from_string(text.trim().to_string())?)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Line breaks outside strings would end an SSE `data:` line early:
    /// such a value is rewritten compactly (inside strings they are
    /// always escaped, so only whitespace is lost).
    fn one_line(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let text = raw.get().as_bytes();
        if !text.contains(&b'\n') && !text.contains(&b'\r') {
            return Ok(JsonText(raw));
        }
        let value: serde_json::Value = serde_json::from_str(raw.get())?;
        serde_json::value::to_raw_value(&value).map(JsonText)
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        JsonText::one_line(raw).map_err(serde::de::Error::custom)
    }
}

/// Free-form metadata: a JSON object (a proto `Struct`), never another
/// JSON type; kept as text (see [`JsonText`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Metadata(JsonText);

impl Metadata {
    /// The object's JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = JsonText::deserialize(d)?;
        if text.get().starts_with('{') {
            Ok(Metadata(text))
        } else {
            Err(serde::de::Error::custom("metadata must be a JSON object"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
/// Who sent a message: the client (`ROLE_USER`) or the agent (`ROLE_AGENT`).
pub enum Role {
    #[serde(rename = "ROLE_USER")]
    User,
    #[serde(rename = "ROLE_AGENT")]
    Agent,
}

/// Where a task stands. Completed, canceled, failed and rejected are
/// terminal: nothing moves a task out of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_STATE_SUBMITTED")]
    Submitted,
    #[serde(rename = "TASK_STATE_WORKING")]
    Working,
    #[serde(rename = "TASK_STATE_INPUT_REQUIRED")]
    InputRequired,
    #[serde(rename = "TASK_STATE_COMPLETED")]
    Completed,
    #[serde(rename = "TASK_STATE_CANCELED")]
    Canceled,
    #[serde(rename = "TASK_STATE_FAILED")]
    Failed,
    #[serde(rename = "TASK_STATE_REJECTED")]
    Rejected,
    #[serde(rename = "TASK_STATE_AUTH_REQUIRED")]
    AuthRequired,
}

impl TaskState {
    /// True for the states a task never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Canceled | TaskState::Failed | TaskState::Rejected
        )
    }
}

/// The one content field a part carries.
#[derive(Debug, Clone, PartialEq)]
pub enum PartContent {
    Text(String),
    Raw(Vec<u8>),
    Url(String),
    Data(JsonText),
}

/// A piece of a message or artifact: exactly one content field plus
/// optional media type, file name and metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Object<PartWire>")]
pub struct Part {
    pub content: PartContent,
    pub media_type: Option<String>,
    pub filename: Option<String>,
    pub metadata: Option<Metadata>,
}

impl Part {
    /// A plain text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part {
            content: PartContent::Text(text.into()),
            media_type: None,
            filename: None,
            metadata: None,
        }
    }
}

/// A part as it is read: its content fields, of which exactly one must
/// be set.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartWire {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    data: Option<JsonText>,
    #[serde(default)]
    #[serde(alias = "media_type")]
    media_type: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// Why a part is not one.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("a part needs exactly one of text, raw, url, data; this one has {0}")]
    ContentFields(usize),
    #[error("part.raw is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

impl TryFrom<Object<PartWire>> for Part {
    type Error = PartError;
    fn try_from(wire: Object<PartWire>) -> Result<Self, PartError> {
        Part::try_from(wire.0)
    }
}

impl TryFrom<PartWire> for Part {
    type Error = PartError;
    fn try_from(w: PartWire) -> Result<Self, PartError> {
        let given = [
            w.text.is_some(),
            w.raw.is_some(),
            w.url.is_some(),
            w.data.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let content = match (w.text, w.raw, w.url, w.data) {
            (Some(t), None, None, None) => PartContent::Text(t),
            (None, Some(r), None, None) => PartContent::Raw(BASE64.decode(r)?),
            (None, None, Some(u), None) => PartContent::Url(u),
            (None, None, None, Some(d)) => PartContent::Data(d),
            _ => return Err(PartError::ContentFields(given)),
        };
        Ok(Part {
            content,
            media_type: w.media_type,
            filename: w.filename,
            metadata: w.metadata,
        })
    }
}

/// Written from the part in place: its content is not copied on the way
/// out (a history can hold megabytes of it), and raw bytes go out as
/// base64 without an encoded copy.
impl Serialize for Part {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = 1
            + usize::from(self.media_type.is_some())
            + usize::from(self.filename.is_some())
            + usize::from(self.metadata.is_some());
        let mut map = s.serialize_map(Some(fields))?;
        match &self.content {
            PartContent::Text(t) => map.serialize_entry("text", t)?,
            PartContent::Raw(r) => map.serialize_entry("raw", &Base64Text(r))?,
            PartContent::Url(u) => map.serialize_entry("url", u)?,
            PartContent::Data(d) => map.serialize_entry("data", d)?,
        }
        if let Some(media_type) = &self.media_type {
            map.serialize_entry("mediaType", media_type)?;
        }
        if let Some(filename) = &self.filename {
            map.serialize_entry("filename", filename)?;
        }
        if let Some(metadata) = &self.metadata {
            map.serialize_entry("metadata", metadata)?;
        }
        map.end()
    }
}

/// Bytes written as a base64 string.
struct Base64Text<'a>(&'a [u8]);

impl Serialize for Base64Text<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&base64::display::Base64Display::new(self.0, &BASE64))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// One turn of a conversation: the client's request or the agent's answer.
pub struct Message {
    #[serde(alias = "message_id")]
    pub message_id: String,
    pub role: Role,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "context_id")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "task_id")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "reference_task_ids")]
    pub reference_task_ids: Option<Vec<String>>,
}

impl Message {
    /// A message of one text part from `role`, with no ids yet (the
    /// store gives it one when it records it).
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            message_id: String::new(),
            role,
            parts: vec![Part::text(text)],
            context_id: None,
            task_id: None,
            metadata: None,
            extensions: None,
            reference_task_ids: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// A result the agent produced for a task, made of parts.
pub struct Artifact {
    #[serde(alias = "artifact_id")]
    pub artifact_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// Where a task is: its state, the message that put it there, and when.
pub struct TaskStatus {
    pub state: TaskState,
    /// Shared with the task's history, where it is also kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Arc<Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// A unit of work with its status, history and artifacts, as the store keeps it.
pub struct Task {
    pub id: String,
    #[serde(alias = "context_id")]
    pub context_id: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<Artifact>>,
    /// Shared, not copied: a task handed out (a response, a stream's
    /// first event) costs a pointer a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Arc<Message>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `SendMessage` / `SendStreamingMessage` params.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageParams {
    #[serde(deserialize_with = "json_object::object")]
    pub message: Message,
    #[serde(default, deserialize_with = "json_object::optional_object")]
    pub configuration: Option<SendConfiguration>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
/// How the client wants a SendMessage answered: history length, whether to wait, a webhook.
pub struct SendConfiguration {
    #[serde(default)]
    #[serde(alias = "accepted_output_modes")]
    pub accepted_output_modes: Option<Vec<String>>,
    #[serde(default)]
    #[serde(alias = "history_length")]
    pub history_length: Option<i32>,
    #[serde(default)]
    #[serde(alias = "return_immediately")]
    pub return_immediately: Option<bool>,
    #[serde(default, deserialize_with = "json_object::optional_object")]
    #[serde(alias = "task_push_notification_config")]
    pub task_push_notification_config: Option<PushConfig>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A task's status changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatusUpdateEvent {
    #[serde(alias = "task_id")]
    pub task_id: String,
    #[serde(alias = "context_id")]
    pub context_id: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// A task produced (part of) an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskArtifactUpdateEvent {
    #[serde(alias = "task_id")]
    pub task_id: String,
    #[serde(alias = "context_id")]
    pub context_id: String,
    pub artifact: Artifact,
    #[serde(default, skip_serializing_if = "is_false")]
    pub append: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    #[serde(alias = "last_chunk")]
    pub last_chunk: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// One item of a stream (and the body of a push notification): exactly
/// one of its fields is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StreamResponse {
    Task(Task),
    Message(Message),
    StatusUpdate(TaskStatusUpdateEvent),
    ArtifactUpdate(TaskArtifactUpdateEvent),
}

/// `GetTask` params.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskParams {
    pub id: String,
    #[serde(default)]
    #[serde(alias = "history_length")]
    pub history_length: Option<i32>,
}

/// `CancelTask` and `SubscribeToTask` params.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskIdParams {
    pub id: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `ListTasks` params.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksParams {
    #[serde(default)]
    #[serde(alias = "context_id")]
    pub context_id: Option<String>,
    #[serde(default)]
    pub status: Option<TaskState>,
    #[serde(default)]
    #[serde(alias = "page_size")]
    pub page_size: Option<i32>,
    #[serde(default)]
    #[serde(alias = "page_token")]
    pub page_token: Option<String>,
    #[serde(default)]
    #[serde(alias = "history_length")]
    pub history_length: Option<i32>,
    #[serde(default)]
    #[serde(alias = "status_timestamp_after")]
    pub status_timestamp_after: Option<String>,
    #[serde(default)]
    #[serde(alias = "include_artifacts")]
    pub include_artifacts: Option<bool>,
}

/// How the host authenticates to a push webhook:
/// `Authorization: <scheme> <credentials>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationInfo {
    pub scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// A webhook for a task's updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushConfig {
    #[serde(default)]
    #[serde(alias = "task_id")]
    pub task_id: String,
    #[serde(default)]
    pub id: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "json_object::optional_object"
    )]
    pub authentication: Option<AuthenticationInfo>,
}

/// `Get`/`DeleteTaskPushNotificationConfig` params.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushConfigRef {
    #[serde(alias = "task_id")]
    pub task_id: String,
    pub id: String,
}

/// `ListTaskPushNotificationConfigs` params.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPushConfigsParams {
    #[serde(alias = "task_id")]
    pub task_id: String,
    #[serde(default)]
    #[serde(alias = "page_size")]
    pub page_size: Option<i32>,
    #[serde(default)]
    #[serde(alias = "page_token")]
    pub page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn part_needs_exactly_one_content_field() {
        let none: Result<Part, _> = serde_json::from_value(json!({"mediaType": "text/plain"}));
        assert!(none.unwrap_err().to_string().contains("exactly one"));
        let two: Result<Part, _> = serde_json::from_value(json!({"text": "a", "url": "b"}));
        assert!(two.unwrap_err().to_string().contains("has 2"));
        let raw: Part = serde_json::from_value(json!({"raw": "aGk="})).unwrap();
        assert_eq!(raw.content, PartContent::Raw(b"hi".to_vec()));
        assert_eq!(serde_json::to_value(&raw).unwrap(), json!({"raw": "aGk="}));
    }

    #[test]
    fn free_form_json_is_kept_as_it_came_on_one_line() {
        let body = "{\"data\": {\"a\": [1,\n  2], \"s\": \"x\\ny\"}, \"metadata\": {\"k\": true}}";
        let part: Part = serde_json::from_str(body).unwrap();
        let PartContent::Data(data) = &part.content else {
            panic!("a data part: {part:?}")
        };
        assert_eq!(data.get(), "{\"a\":[1,2],\"s\":\"x\\ny\"}");
        assert_eq!(part.metadata.as_ref().unwrap().get(), "{\"k\": true}");
        let out = serde_json::to_string(&part).unwrap();
        assert_eq!(
            out,
            "{\"data\":{\"a\":[1,2],\"s\":\"x\\ny\"},\"metadata\":{\"k\": true}}"
        );
        let listed: Result<Part, _> = serde_json::from_str("{\"text\": \"t\", \"metadata\": [1]}");
        assert!(
            listed
                .unwrap_err()
                .to_string()
                .contains("metadata must be a JSON object")
        );
    }

    #[test]
    fn proto_field_names_are_read_as_well_as_camel_case_and_camel_case_is_written() {
        let camel = r#"{"message": {"messageId": "m", "contextId": "c", "taskId": "t", "role": "ROLE_USER",
            "parts": [{"text": "x", "mediaType": "text/plain"}], "referenceTaskIds": ["r"]},
            "configuration": {"historyLength": 2, "returnImmediately": true, "acceptedOutputModes": ["text/plain"],
            "taskPushNotificationConfig": {"url": "http://h/", "taskId": "t"}}}"#;
        let snake = r#"{"message": {"message_id": "m", "context_id": "c", "task_id": "t", "role": "ROLE_USER",
            "parts": [{"text": "x", "media_type": "text/plain"}], "reference_task_ids": ["r"]},
            "configuration": {"history_length": 2, "return_immediately": true, "accepted_output_modes": ["text/plain"],
            "task_push_notification_config": {"url": "http://h/", "task_id": "t"}}}"#;
        let a: SendMessageParams = serde_json::from_str(camel).unwrap();
        let b: SendMessageParams = serde_json::from_str(snake).unwrap();
        assert_eq!(a.message, b.message);
        let (ca, cb) = (a.configuration.unwrap(), b.configuration.unwrap());
        assert_eq!(cb.history_length, Some(2));
        assert_eq!(cb.return_immediately, Some(true));
        assert_eq!(
            ca.task_push_notification_config,
            cb.task_push_notification_config
        );
        let get: GetTaskParams =
            serde_json::from_str(r#"{"id": "t", "history_length": 1}"#).unwrap();
        assert_eq!(get.history_length, Some(1));
        let written = serde_json::to_string(&b.message).unwrap();
        assert!(
            written.contains("\"messageId\"") && !written.contains("message_id"),
            "{written}"
        );
    }

    #[test]
    fn a_part_is_written_as_it_is_read() {
        for written in [
            r#"{"text":"a \"b\"\n","mediaType":"text/plain","filename":"n.txt","metadata":{"k":1}}"#,
            r#"{"raw":"AP8Q","filename":"b.bin"}"#,
            r#"{"url":"https://example.test/f","mediaType":"image/png"}"#,
            r#"{"data":{"x":[1,{"y":null}]}}"#,
        ] {
            let part: Part = serde_json::from_str(written).unwrap();
            assert_eq!(serde_json::to_string(&part).unwrap(), written);
        }
    }

    #[test]
    fn enums_use_proto_names_and_reject_unknown_values() {
        let s: TaskState = serde_json::from_value(json!("TASK_STATE_INPUT_REQUIRED")).unwrap();
        assert_eq!(s, TaskState::InputRequired);
        assert!(serde_json::from_value::<TaskState>(json!("done")).is_err());
        assert!(serde_json::from_value::<Role>(json!("user")).is_err());
    }

    #[test]
    fn unset_fields_are_omitted() {
        let m = Message {
            message_id: "m".into(),
            role: Role::Agent,
            parts: vec![Part::text("hi")],
            context_id: None,
            task_id: None,
            metadata: None,
            extensions: None,
            reference_task_ids: None,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "hi"}]})
        );
    }
}
