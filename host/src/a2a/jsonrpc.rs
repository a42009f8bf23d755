//! JSON-RPC 2.0 framing: turn a body into a request or the right error,
//! and a result or error into a response body.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::RpcError;

/// A request id: a string, a number or null, kept as the JSON text the
/// client sent so it is echoed exactly (`1e3` stays `1e3`, and a number
/// past 64 bits keeps every digit).
#[derive(Debug, Clone)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// The id of an answer to a request whose id could not be read.
    pub fn null() -> RequestId {
        RequestId(RawValue::from_string("null".into()).expect("null is JSON"))
    }

    /// The id as sent, if it is a string, a number or null.
    fn of(raw: &RawValue) -> Option<RequestId> {
        let text = raw.get();
        let valid = text == "null"
            || text.starts_with('"')
            || text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
        valid.then(|| RequestId(raw.to_owned()))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A well-formed JSON-RPC request. `params` is the request's own text,
/// parsed once, straight into the method's type: content is never held
/// twice while a request is read.
#[derive(Debug)]
pub struct Request<'a> {
    /// `None` for a notification (no `id` member): process, answer nothing.
    pub id: Option<RequestId>,
    pub method: String,
    pub params: &'a RawValue,
}

/// The members of a request object, as sent.
#[derive(Deserialize)]
struct Envelope<'a> {
    /// `None` when absent; `Some("null")` for `"id": null`.
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default)]
    jsonrpc: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses a body. On failure returns the error and the id to answer with
/// (null when the id could not be read).
pub fn parse(body: &[u8]) -> Result<Request<'_>, (RequestId, RpcError)> {
    // Only an object is read as a request: serde would also read the
    // members from an array, by position, and a batch is refused whole.
    let envelope = match body.trim_ascii_start().first() {
        Some(b'{') => serde_json::from_slice::<Envelope>(body)
            .map_err(|e| format!("not a request object: {e}")),
        Some(b'[') => Err("batch requests are not supported; send one object".to_string()),
        _ => Err("body must be a JSON object".to_string()),
    };
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(why) => {
            // Not JSON at all (nested past the parser's depth limit
            // counts as not JSON), or valid JSON that is not a request.
            if let Err(invalid) = serde_json::from_slice::<Value>(body) {
                return Err((RequestId::null(), RpcError::parse_error(invalid)));
            }
            return Err((RequestId::null(), RpcError::invalid_request(why)));
        }
    };
    let id = match envelope.id.map(RequestId::of) {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => {
            return Err((
                RequestId::null(),
                RpcError::invalid_request("id must be a string, a number or null"),
            ));
        }
    };
    // Only a refusal needs a copy of the id.
    let reply_id = || id.clone().unwrap_or_else(RequestId::null);
    if envelope.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        return Err((
            reply_id(),
            RpcError::invalid_request("jsonrpc must be \"2.0\""),
        ));
    }
    let method = match envelope.method {
        Some(Value::String(m)) => m,
        _ => {
            return Err((
                reply_id(),
                RpcError::invalid_request("method must be a string"),
            ));
        }
    };
    let params = match envelope.params {
        None => no_params(),
        Some(p) if p.get() == "null" => no_params(),
        Some(p) if p.get().starts_with('{') => p,
        Some(_) => {
            return Err((
                reply_id(),
                RpcError::invalid_params("params", "params must be an object"),
            ));
        }
    };
    Ok(Request { id, method, params })
}

/// A request's params as the method reads them: the text of a JSON
/// object, shared. On the JSON-RPC binding it is a slice of the request's
/// body; params a binding built (REST, gRPC, a call between agents) or
/// rewrote (the 0.3 dialect) hold text of their own. Either way, large
/// params reach the bulk pool to be read without a copy.
#[derive(Debug, Clone)]
pub struct Params(Bytes);

impl Params {
    /// `raw`, read from `body`: a slice of the body when it lies in it
    /// (the params a request sent), else a copy (the `{}` of a request
    /// that sent none).
    pub fn in_body(body: &Bytes, raw: &RawValue) -> Params {
        let text = raw.get().as_bytes();
        let within = body.as_ptr_range();
        if within.contains(&text.as_ptr()) && text.as_ptr_range().end <= within.end {
            Params(body.slice_ref(text))
        } else {
            Params(Bytes::copy_from_slice(text))
        }
    }

    /// The JSON text.
    pub fn text(&self) -> &[u8] {
        &self.0
    }
}

impl From<Box<RawValue>> for Params {
    /// Params with text of their own, taken without a copy.
    fn from(raw: Box<RawValue>) -> Params {
        Params(Bytes::from(String::from(Box::<str>::from(raw))))
    }
}

/// Params built here (from a REST path, or rewritten from another
/// dialect).
pub fn params_of(params: &serde_json::Map<String, Value>) -> Params {
    let text = serde_json::to_string(params).expect("JSON values serialise");
    Params(Bytes::from(text))
}

/// `{}`: the params of a request that sent none.
fn no_params() -> &'static RawValue {
    static EMPTY: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| RawValue::from_string("{}".into()).expect("{} is JSON"))
}

#[derive(Serialize)]
struct Response<'a, T: Serialize> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

/// Serialises a success response.
pub fn result_body<T: Serialize>(id: &RequestId, result: &T) -> Vec<u8> {
    serde_json::to_vec(&Response {
        jsonrpc: "2.0",
        id,
        result: Some(result),
        error: None,
    })
    .expect("JSON-RPC results serialise")
}

/// Serialises an error response.
pub fn error_body(id: &RequestId, error: &RpcError) -> Vec<u8> {
    serde_json::to_vec(&Response::<()> {
        jsonrpc: "2.0",
        id,
        result: None,
        error: Some(error),
    })
    .expect("JSON-RPC errors serialise")
}

/// One SSE event holding a JSON-RPC success response whose `result` is
/// the already-serialized `result_json`.
pub fn sse_result(id: &RequestId, result_json: &[u8]) -> bytes::Bytes {
    let id = id.get();
    let mut frame = Vec::with_capacity(result_json.len() + id.len() + 48);
    frame.extend_from_slice(b"data: {\"jsonrpc\":\"2.0\",\"id\":");
    frame.extend_from_slice(id.as_bytes());
    frame.extend_from_slice(b",\"result\":");
    frame.extend_from_slice(result_json);
    frame.extend_from_slice(b"}\n\n");
    frame.into()
}

/// One SSE event holding a JSON-RPC error response.
pub fn sse_error(id: &RequestId, error: &RpcError) -> bytes::Bytes {
    let mut frame = b"data: ".to_vec();
    frame.extend_from_slice(&error_body(id, error));
    frame.extend_from_slice(b"\n\n");
    frame.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(body: &str) -> (Value, i32) {
        let (id, e) = parse(body.as_bytes()).unwrap_err();
        (serde_json::from_str(id.get()).unwrap(), e.code)
    }

    fn id(text: &str) -> RequestId {
        RequestId::of(&RawValue::from_string(text.into()).unwrap()).unwrap()
    }

    #[test]
    fn framing_errors_have_their_codes() {
        assert_eq!(code("{not json"), (Value::Null, -32700));
        assert_eq!(code("[]"), (Value::Null, -32600));
        assert_eq!(code("42"), (Value::Null, -32600));
        assert_eq!(
            code(r#"{"jsonrpc":"1.0","id":7,"method":"x"}"#),
            (json!(7), -32600)
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":"a","method":5}"#),
            (json!("a"), -32600)
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#),
            (Value::Null, -32600)
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            (json!(1), -32602)
        );
    }

    #[test]
    fn sse_frames_are_one_data_line_of_json_rpc() {
        let f = sse_result(&id("7"), br#"{"task":{}}"#);
        let text = std::str::from_utf8(&f).unwrap();
        assert!(text.starts_with("data: ") && text.ends_with("\n\n"));
        let v: Value = serde_json::from_str(text.trim_start_matches("data: ").trim()).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "id": 7, "result": {"task": {}}})
        );
    }

    #[test]
    fn ids_are_echoed_as_sent() {
        for sent in [
            "7",
            "-5",
            "1.0",
            "1e3",
            "-0",
            "123456789012345678901234567890",
            r#""a\u00e9""#,
            r#""""#,
            "null",
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{sent},"method":"m"}}"#);
            let request = parse(body.as_bytes()).unwrap();
            let id = request.id.expect("an id");
            let answer = String::from_utf8(error_body(&id, &RpcError::internal())).unwrap();
            assert!(
                answer.starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{sent},"#)),
                "{sent}: {answer}"
            );
        }
        for wrong in ["true", "{}", "[1]"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{wrong},"method":"m"}}"#);
            assert_eq!(code(&body), (Value::Null, -32600), "{wrong}");
        }
    }

    #[test]
    fn an_array_is_a_batch_refused_whole_never_read_as_one_request() {
        for batch in [
            "[]",
            r#"[{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"t"}}]"#,
            // The members of a request, in order: still a batch.
            r#" [1, "2.0", "GetTask", {"id": "t"}]"#,
        ] {
            let (id, e) = parse(batch.as_bytes()).unwrap_err();
            assert_eq!((id.get(), e.code), ("null", -32600), "{batch}");
            assert!(
                e.message.contains("batch requests are not supported"),
                "{batch}: {}",
                e.message
            );
        }
        assert_eq!(
            code("[1, "),
            (Value::Null, -32700),
            "an unfinished array is not JSON"
        );
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(code(&deep).1, -32700);
    }

    #[test]
    fn notifications_have_no_id_and_ids_echo() {
        let r = parse(br#"{"jsonrpc":"2.0","method":"SendMessage"}"#).unwrap();
        assert!(r.id.is_none());
        let r = parse(br#"{"jsonrpc":"2.0","id":null,"method":"m"}"#).unwrap();
        assert_eq!(r.id.as_ref().map(RequestId::get), Some("null"));
        let body = result_body(&id(r#""x""#), &json!({"ok": true}));
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"jsonrpc": "2.0", "id": "x", "result": {"ok": true}})
        );
    }

    #[test]
    fn params_sent_are_a_slice_of_the_body_and_none_sent_are_empty() {
        let body = Bytes::from_static(
            br#"{"jsonrpc": "2.0", "id": 1, "method": "M", "params": {"a": [1, 2]}}"#,
        );
        let request = parse(&body).unwrap();
        let params = Params::in_body(&body, request.params);
        assert_eq!(params.text(), br#"{"a": [1, 2]}"#);
        assert!(
            body.as_ptr_range().contains(&params.text().as_ptr()),
            "no copy"
        );

        let body = Bytes::from_static(br#"{"jsonrpc": "2.0", "id": 1, "method": "M"}"#);
        let request = parse(&body).unwrap();
        assert_eq!(Params::in_body(&body, request.params).text(), b"{}");
    }
}
