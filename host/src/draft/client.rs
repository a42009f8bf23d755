//! The draft's A2A client: it sends a drafter a `data` message and reads
//! the `data` part of its answer, over the host's HTTP client. The engine
//! reaches agents only this way, as any A2A client would.

use std::time::Duration;

use bytes::Bytes;
use draft_protocol::Request;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::http_client::{ClientError, KeepAlive, Outgoing, Target};

/// Longest a drafter may take to answer before the engine moves on.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer read from a drafter (an agent's answer is at most
/// 1 MiB of content; room for the envelope).
const ANSWER_LIMIT: usize = 4 << 20;

/// Longest request or answer text an [`Exchange`] keeps.
const EXCHANGE_TEXT: usize = 12 * 1024;

/// One call the engine made to a drafter, as the page's A2A inspector
/// shows it: the JSON-RPC request and answer as they went over the wire
/// (the bearer token masked, long texts clipped), and what came of it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Exchange {
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The task's state afterwards, `message` for a bare message reply,
    /// or `error`.
    pub state: String,
    pub latency_ms: f64,
    /// Request and answer bodies together.
    pub bytes: usize,
    pub request: String,
    pub response: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `text`, cut at [`EXCHANGE_TEXT`] characters.
fn clipped(text: &str) -> String {
    match text.char_indices().nth(EXCHANGE_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Why a drafter gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error(transparent)]
    Http(#[from] ClientError),
    #[error("no answer within {} s", AGENT_TIMEOUT.as_secs())]
    Timeout,
    #[error("HTTP {0}")]
    Status(StatusCode),
    #[error("the answer is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("the answer ({state}) has no data part")]
    NoData { state: String },
    #[error("the session has no agent in slot {0}")]
    NoSeat(usize),
}

/// Sends a JSON request on `http` (with the bearer `token` and `extra`
/// headers) and reads a JSON answer: `null` for an empty body.
pub async fn json_call(
    http: &KeepAlive,
    method: Method,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(StatusCode, Value), AskError> {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let (status, answer) = text_call(http, method, path, token, extra, body).await?;
    Ok((status, parse_answer(&answer)?))
}

/// [`json_call`] with the request and the answer as the bytes that went
/// over the wire.
async fn text_call(
    http: &KeepAlive,
    method: Method,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Bytes,
) -> Result<(StatusCode, Bytes), AskError> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    headers.extend_from_slice(extra);
    let request = Outgoing {
        method,
        path,
        headers: &headers,
        body,
    };
    let answer = http.send(request, ANSWER_LIMIT).await?;
    Ok((answer.status, answer.body))
}

/// An answer's JSON: `null` for an empty body.
fn parse_answer(body: &[u8]) -> Result<Value, AskError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(AskError::NotJson)
}

/// An A2A agent reached over JSON-RPC, with the session's bearer token.
pub struct DrafterClient {
    http: KeepAlive,
    path: String,
    token: Option<String>,
    /// One context per draft, so the agent can group its tasks.
    context_id: String,
}

impl DrafterClient {
    /// An agent at `url` (`http://`), reached with `token`; its tasks
    /// share the context `context_id`.
    pub fn new(
        url: &str,
        token: Option<String>,
        context_id: &str,
    ) -> Result<DrafterClient, ClientError> {
        let target = Target::parse(url)?;
        if target.tls {
            return Err(ClientError::Url {
                url: url.to_string(),
                why: "the draft reaches its agents over plain HTTP on this server".into(),
            });
        }
        Ok(DrafterClient {
            http: KeepAlive::new(target.authority),
            path: target.path,
            token,
            context_id: context_id.to_string(),
        })
    }

    /// The agent's card.
    pub async fn card(&self) -> Result<Value, AskError> {
        let path = format!("{}.well-known/agent-card.json", self.path);
        let (status, card) = json_call(&self.http, Method::GET, &path, None, &[], None).await?;
        if status != StatusCode::OK {
            return Err(AskError::Status(status));
        }
        Ok(card)
    }

    /// Sends `request` as the one (`data`) part of a user message and
    /// returns the first `data` part of the answer, whether the agent
    /// answered with a message or a task (anything else is an error that
    /// says why), with the exchange as it went.
    pub async fn ask(&self, request: &Request) -> (Result<Value, AskError>, Exchange) {
        let started = std::time::Instant::now();
        let request_text = self.body(request).to_string();
        let mut answer = Value::Null;
        let mut answer_text = Bytes::new();
        let outcome = self
            .send(
                Bytes::from(request_text.clone()),
                &mut answer,
                &mut answer_text,
            )
            .await;
        let result = &answer["result"];
        let task = &result["task"];
        let state = match (&outcome, result.get("message")) {
            (Err(_), _) => "error".to_string(),
            (_, Some(_)) => "message".to_string(),
            _ => task["status"]["state"].as_str().unwrap_or("").to_string(),
        };
        let response_text = String::from_utf8_lossy(&answer_text);
        let headers = match &self.token {
            Some(_) => "Authorization: Bearer •••• (the session token)\nA2A-Version: 1.0\n\n",
            None => "A2A-Version: 1.0\n\n",
        };
        let exchange = Exchange {
            method: "SendMessage",
            task_id: task["id"].as_str().map(str::to_string),
            state,
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
            bytes: request_text.len() + response_text.len(),
            request: clipped(&format!("{headers}{request_text}")),
            response: clipped(&response_text),
            error: outcome.as_ref().err().map(|e| e.to_string()),
        };
        (outcome, exchange)
    }

    /// The JSON-RPC body that carries `request`.
    fn body(&self, request: &Request) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": crate::a2a::tasks::new_id(),
                    "contextId": self.context_id,
                    "role": "ROLE_USER",
                    "parts": [{"data": request}],
                },
                // The engine reads the answer, not its own message echoed.
                "configuration": {"historyLength": 0},
            },
        })
    }

    /// [`ask`](Self::ask)'s call: `answer` receives the JSON-RPC answer,
    /// and `answer_text` its bytes as they came.
    async fn send(
        &self,
        body: Bytes,
        answer: &mut Value,
        answer_text: &mut Bytes,
    ) -> Result<Value, AskError> {
        let call = text_call(
            &self.http,
            Method::POST,
            &self.path,
            self.token.as_deref(),
            &[("a2a-version", "1.0")],
            body,
        );
        let (status, text) = tokio::time::timeout(AGENT_TIMEOUT, call)
            .await
            .map_err(|_| AskError::Timeout)??;
        *answer_text = text.clone();
        *answer = parse_answer(&text)?;
        let answer = &*answer;
        if status != StatusCode::OK {
            return Err(AskError::Status(status));
        }
        if let Some(error) = answer.get("error") {
            return Err(AskError::Rpc {
                code: error["code"].as_i64().unwrap_or_default(),
                message: error["message"]
                    .as_str()
                    .unwrap_or("no message")
                    .to_string(),
            });
        }
        let result = &answer["result"];
        let task = &result["task"];
        let messages = [&result["message"], &task["status"]["message"]];
        let artifact_parts = task["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["parts"].as_array());
        messages
            .into_iter()
            .filter_map(|m| m["parts"].as_array())
            .chain(artifact_parts)
            .flatten()
            .find_map(|p| p.get("data").cloned())
            .ok_or_else(|| AskError::NoData {
                state: task["status"]["state"]
                    .as_str()
                    .unwrap_or("a message")
                    .to_string(),
            })
    }
}
