//! Outbound HTTP from an agent (the `http` feature), over
//! `wasi:http/outgoing-handler`. The host sends a request only to a
//! destination the operator granted this component
//! (`[components.NAME] allowed_outbound_hosts`), within the session's
//! budgets and before the call's deadline; anything else fails here with
//! the error code that says why. Secrets the operator bound to a
//! destination are added by the host: the agent never sees them.
//!
//! ```no_run
//! use a2a_agent_sdk::http;
//!
//! let answer = http::get("https://api.example.com/status")?;
//! if answer.status == 200 {
//!     let text = answer.text();
//! }
//! # Ok::<(), String>(())
//! ```

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, ... (`GET` when empty).
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Longest to wait for the answer to start, and between its pieces
    /// (the host's own limits and the call's deadline apply anyway).
    pub timeout: Option<std::time::Duration>,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<HttpResponse, String> {
    send(&HttpRequest {
        method: "GET".into(),
        url: url.into(),
        ..HttpRequest::default()
    })
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<HttpResponse, String> {
    send(&HttpRequest {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        timeout: None,
    })
}

/// A small A2A client for an agent outside this session, reached through
/// a granted destination: sends `text` as a JSON-RPC `SendMessage` to the
/// agent's base `url` (with `bearer` as its token, if it needs one) and
/// returns the text of its answer (its message, or its task's status
/// message and text artifacts). An A2A error is the error.
pub fn a2a_ask(url: &str, bearer: Option<&str>, text: &str) -> Result<String, String> {
    let call = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": {"message": {
            "messageId": format!("m-{}", wasip2::random::random::get_random_u64()),
            "role": "ROLE_USER", "parts": [{"text": text}]}},
    });
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("a2a-version".to_string(), "1.0".to_string()),
    ];
    if let Some(token) = bearer {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    let answer = send(&HttpRequest {
        method: "POST".into(),
        url: url.into(),
        headers,
        body: call.to_string().into_bytes(),
        timeout: None,
    })?;
    let body: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|_| format!("{url} answered {} with no JSON-RPC body", answer.status))?;
    if let Some(error) = body.get("error") {
        return Err(format!(
            "{url}: {}",
            error["message"].as_str().unwrap_or("error")
        ));
    }
    let result = &body["result"];
    let texts = |parts: &serde_json::Value| -> Vec<String> {
        parts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["text"].as_str().map(str::to_string))
            .collect()
    };
    let mut said = texts(&result["message"]["parts"]);
    said.extend(texts(&result["task"]["status"]["message"]["parts"]));
    for artifact in result["task"]["artifacts"].as_array().into_iter().flatten() {
        said.extend(texts(&artifact["parts"]));
    }
    Ok(said.join("\n"))
}

/// Sends `request` and reads the whole answer. The error says what the
/// host refused or what failed (`not granted: ...`, `timeout`, ...).
pub fn send(request: &HttpRequest) -> Result<HttpResponse, String> {
    let (scheme, rest) = request
        .url
        .split_once("://")
        .ok_or_else(|| format!("{:?} is not an absolute URL", request.url))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let headers = Fields::new();
    for (name, value) in &request.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| format!("header {name}: {e:?}"))?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method.to_ascii_uppercase().as_str() {
        "" | "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let bad = |what: &str| format!("invalid {what} in {:?}", request.url);
    outgoing.set_method(&method).map_err(|_| bad("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|_| bad("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|_| bad("host"))?;
    outgoing
        .set_path_with_query(Some(&path))
        .map_err(|_| bad("path"))?;
    let body = outgoing
        .body()
        .map_err(|_| "the request body".to_string())?;
    let options = request.timeout.map(|wait| {
        let options = RequestOptions::new();
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });
    let pending = outgoing_handler::handle(outgoing, options).map_err(|e| describe(&e))?;
    // A refused request closes the body: its own error, from the answer,
    // says why better than the closed stream does.
    let written = write_body(&body, &request.body)
        .and_then(|()| OutgoingBody::finish(body, None).map_err(|e| describe(&e)));
    let answer = loop {
        match pending.get() {
            Some(answer) => break answer,
            None => pending.subscribe().block(),
        }
    };
    let response = answer
        .map_err(|_| "the answer was already taken".to_string())?
        .map_err(|e| describe(&e))?;
    written?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| "the answer body".to_string())?;
    let body = read_body(&incoming)?;
    drop(IncomingBody::finish(incoming));
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body.write().map_err(|_| "the request body".to_string())?;
    for chunk in bytes.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| stream_error(&e))?;
    }
    Ok(())
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, String> {
    let stream = incoming
        .stream()
        .map_err(|_| "the answer body".to_string())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(body),
            Err(e) => return Err(stream_error(&e)),
        }
    }
}

fn stream_error(e: &StreamError) -> String {
    match e {
        StreamError::Closed => "the stream closed".into(),
        StreamError::LastOperationFailed(error) => {
            match wasip2::http::types::http_error_code(error) {
                Some(code) => describe(&code),
                // The host ended the body: its text says why.
                None => {
                    let text = error.to_debug_string();
                    let kind = if text.contains("size exceeds limit") {
                        "too large"
                    } else if text.contains("timeout") || text.contains("timed out") {
                        "timeout"
                    } else if text.contains("connection limit") {
                        "over budget"
                    } else {
                        "failed"
                    };
                    format!("{kind}: {text}")
                }
            }
        }
    }
}

/// What an error code means for the agent's author.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => {
            "not granted: the operator has not granted this component that destination".into()
        }
        ErrorCode::DestinationIpProhibited => {
            "refused: the destination's address is not one the host may reach".into()
        }
        ErrorCode::ConnectionLimitReached => {
            "over budget: the session's outbound HTTP budget is spent for now".into()
        }
        ErrorCode::HttpResponseTimeout | ErrorCode::ConnectionTimeout => {
            "timeout: no answer in time".into()
        }
        ErrorCode::HttpResponseBodySize(limit) => {
            format!("too large: the answer is larger than the host's limit ({limit:?} bytes)")
        }
        other => format!("failed: {other:?}"),
    }
}
