//! What every listener shares: the body type, JSON and error responses,
//! bounded body reads, and serving one connection until shutdown.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A response body: whole, or (for streams) produced as it goes.
pub type Body = BoxBody<Bytes, Infallible>;

/// A request body as the handlers read it: a connection's body, boxed at
/// the edge, so handlers can also be driven without a socket (the fuzz
/// targets do).
pub type RequestBody = BoxBody<Bytes, hyper::Error>;

/// A request from a connection, as the handlers take it.
pub fn boxed(req: Request<Incoming>) -> Request<RequestBody> {
    req.map(BodyExt::boxed)
}

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A response with a JSON body.
pub fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A body fed by a channel: each item is sent as soon as it arrives; the
/// body ends when the sender is dropped. Dropping the body (the client
/// left) closes the channel, which tells the producer to stop.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

/// A `text/event-stream` response whose events come from `events`.
pub fn sse_response(events: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut response = Response::new(BoxBody::new(ChannelBody(events)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    response
}

/// A response with `value` as JSON.
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    json_bytes(
        status,
        serde_json::to_vec(value).expect("responses serialise"),
    )
}

/// An error in the one shape the HTTP surface uses:
/// `{"error": {"code": "...", "message": "..."}}`.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

/// 429 with `Retry-After`.
pub fn too_many_requests(wait: Duration, why: &str) -> Response<Body> {
    with_retry_after(
        error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{why}; retry after {wait:.1?}"),
        ),
        wait,
    )
}

/// Adds `Retry-After` in whole seconds (at least 1).
pub fn with_retry_after(mut r: Response<Body>, wait: Duration) -> Response<Body> {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    r.headers_mut()
        .insert("retry-after", HeaderValue::from(secs));
    r
}

/// Runs a handler; if it panics, answers 500 with a JSON error and logs
/// the panic, so a bug never leaves a client with an empty reply.
pub async fn answer_even_on_panic(
    handler: impl std::future::Future<Output = Response<Body>>,
) -> Response<Body> {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a request handler panicked; answered 500");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the server hit a bug answering this request; it has been logged",
            )
        }
    }
}

/// 503 for new work while the server shuts down.
pub fn draining() -> Response<Body> {
    with_retry_after(
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down and takes no new work; retry on another instance",
        ),
        Duration::from_secs(5),
    )
}

/// 405 with the methods the path takes.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this path takes {allow}"),
    );
    r.headers_mut()
        .insert("allow", HeaderValue::from_static(allow));
    r
}

/// Reads a body of at most `limit` bytes; a larger one is a 413.
///
/// A client that has not sent the whole body within `timeout` gets 408:
/// a slow sender cannot hold a request open.
pub async fn read_body(
    body: RequestBody,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Response<Body>> {
    let Ok(read) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        let mut r = error_response(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within {timeout:?}"),
        );
        r.headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        return Err(r);
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {limit} bytes"),
        )),
        Err(e) => Err(error_response(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("could not read the request body: {e}"),
        )),
    }
}

/// Reads a JSON body as `T`; an empty (or all-whitespace) body is
/// `T::default()`. A body that does not parse is a 400 naming `what`.
pub async fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(
    body: RequestBody,
    limit: usize,
    timeout: Duration,
    what: &str,
) -> Result<T, Response<Body>> {
    let bytes = read_body(body, limit, timeout).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("body is not a valid {what}: {e}"),
        )
    })
}

/// The hostname part of a `Host` header, if it is a plausible host name
/// (it is echoed into URLs, so nothing else gets through).
pub fn host_header(req: &Request<RequestBody>) -> Option<&str> {
    let host = req.headers().get(hyper::header::HOST)?.to_str().ok()?;
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    valid.then_some(host)
}

/// Strips the port from a `Host` value (`example.com:8080`, `[::1]:80`).
pub fn host_without_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// Answers a connection over its cap with one 429 and closes it, without
/// reading its request: the descriptor is back within a second.
pub fn refuse_connection(mut stream: TcpStream, why: String) {
    use tokio::io::AsyncWriteExt;
    let body = json!({"error": {"code": "too_many_connections", "message": why}}).to_string();
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        })
        .await;
    });
}

/// Serves HTTP/1.1 on one connection until the client leaves or
/// `shutdown` fires, whichever comes first. A client that takes longer
/// than `header_timeout` to send a request's headers (or idles that long
/// between requests) is disconnected. `held` (the connection's place in
/// a cap) is kept until the connection ends.
pub fn spawn_connection<S>(
    stream: TcpStream,
    service: S,
    shutdown: CancellationToken,
    header_timeout: Duration,
    held: impl Send + 'static,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        tokio::select! {
            _ = conn => {}
            _ = shutdown.cancelled() => {}
        }
        drop(held);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_with_a_json_error() {
        let response = answer_even_on_panic(async {
            if std::hint::black_box(true) {
                panic!("a bug");
            }
            Response::new(full(""))
        })
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "internal_error");
    }
}
