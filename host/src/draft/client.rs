//! The draft's network clients: a small HTTP/1.1 client that keeps one
//! connection to an origin, and on top of it an A2A client that sends a
//! drafter a `data` message and reads the `data` part of its answer. The
//! engine reaches agents only this way, as any A2A client would.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Longest a drafter may take to answer before the engine moves on.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

/// One keep-alive HTTP/1.1 connection to `authority`, reopened when it
/// breaks. Requests on it are sequential.
pub struct HttpClient {
    authority: String,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

/// Splits an `http://` URL into the client for its origin and its path.
pub fn parse_url(url: &str) -> Result<(HttpClient, String), String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url:?}: only http:// URLs are supported"));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?
        .to_string();
    let path = uri.path().to_string();
    Ok((HttpClient::new(authority), path))
}

impl HttpClient {
    pub fn new(authority: String) -> HttpClient {
        HttpClient {
            authority,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// `host:port` this client talks to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends a request for `path` and returns the response with its body
    /// unread. A connection that was closed under us is reopened once.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response<Incoming>, String> {
        let mut conn = self.conn.lock().await;
        for attempt in 0..2 {
            let usable = match conn.as_mut() {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            if !usable {
                *conn = Some(self.connect().await?);
            }
            let sender = conn.as_mut().expect("a connection was just made");
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header("host", &self.authority);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let req = req
                .body(Full::new(body.clone()))
                .map_err(|e| format!("bad request for {path}: {e}"))?;
            match sender.send_request(req).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 && e.is_canceled() => *conn = None,
                Err(e) => return Err(format!("{method} http://{}{path}: {e}", self.authority)),
            }
        }
        Err(format!(
            "{method} http://{}{path}: connection closed",
            self.authority
        ))
    }

    /// Sends a request (with the bearer `token` and any `extra` headers)
    /// and reads a JSON answer (`null` for an empty body).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), String> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        headers.extend_from_slice(extra);
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self.send(method, path, &headers, body).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer from {path}: {e}"))?
            .to_bytes();
        if bytes.is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{path} answered {status} with a body that is not JSON: {e}"))?;
        Ok((status, value))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.authority))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {}: {e}", self.authority))?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

/// An A2A agent reached over JSON-RPC, with the session's bearer token.
pub struct A2aAgent {
    http: HttpClient,
    path: String,
    token: Option<String>,
    /// One context per draft, so the agent can group its tasks.
    context_id: String,
}

impl A2aAgent {
    pub fn new(url: &str, token: Option<String>, context_id: &str) -> Result<A2aAgent, String> {
        let (http, path) = parse_url(url)?;
        Ok(A2aAgent {
            http,
            path,
            token,
            context_id: context_id.to_string(),
        })
    }

    /// The agent's card.
    pub async fn card(&self) -> Result<Value, String> {
        let path = format!("{}.well-known/agent-card.json", self.path);
        let (status, card) = self.http.json(Method::GET, &path, None, &[], None).await?;
        if status != StatusCode::OK {
            return Err(format!("agent card answered {status}"));
        }
        Ok(card)
    }

    /// Sends `data` as the one part of a user message and returns the
    /// first `data` part of the answer, whether the agent answered with a
    /// message or a task. Anything else is an error that says why.
    pub async fn ask(&self, data: &Value) -> Result<Value, String> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {"message": {
                "messageId": uuid::Uuid::new_v4().to_string(),
                "contextId": self.context_id,
                "role": "ROLE_USER",
                "parts": [{"data": data}],
            }},
        });
        let call = self.http.json(
            Method::POST,
            &self.path,
            self.token.as_deref(),
            &[("a2a-version", "1.0")],
            Some(&body),
        );
        let (status, answer) = tokio::time::timeout(AGENT_TIMEOUT, call)
            .await
            .map_err(|_| format!("no answer within {} s", AGENT_TIMEOUT.as_secs()))??;
        if status != StatusCode::OK {
            return Err(format!("HTTP {status}"));
        }
        if let Some(error) = answer.get("error") {
            return Err(format!(
                "error {}: {}",
                error["code"],
                error["message"].as_str().unwrap_or("no message")
            ));
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
            .ok_or_else(|| {
                let state = task["status"]["state"].as_str().unwrap_or("a message");
                format!("the answer ({state}) has no data part")
            })
    }
}
