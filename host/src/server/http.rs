//! What every listener shares: the body type, JSON and error responses,
//! bounded body reads, answering one request (a HEAD as its GET, a
//! panic as a 500), and serving one connection until shutdown, cutting
//! off a client that takes nothing of its answers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::json_object::Object;

/// A response body: whole, or (for streams) produced as it goes.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A request body as the handlers read it: a connection's body, boxed at
/// the edge, so handlers can also be driven without a socket (the fuzz
/// targets do).
pub type RequestBody = BoxBody<Bytes, hyper::Error>;

/// Serves a request from a connection with `handle`, which never sees a
/// HEAD: it is handed the GET the HEAD asks about, and the answer goes
/// back with the GET's status and headers and without its body (RFC 9110
/// section 9.3.2: every GET path answers HEAD). A handler that panics is
/// answered 500 ([`answer_even_on_panic`]).
pub fn answer_request<F>(
    req: Request<Incoming>,
    handle: impl FnOnce(Request<RequestBody>) -> F,
) -> impl Future<Output = Response<Body>>
where
    F: Future<Output = Response<Body>>,
{
    let mut req = req.map(BodyExt::boxed);
    let head = req.method() == Method::HEAD;
    if head {
        *req.method_mut() = Method::GET;
    }
    futures_util::FutureExt::map(answer_even_on_panic(handle(req)), move |answer| {
        if head { headers_only(answer) } else { answer }
    })
}

/// `answer` without its body, its length still said (a stream's body
/// dropped here ends the stream). A 204 or 304 has no length to say.
fn headers_only(answer: Response<Body>) -> Response<Body> {
    let (mut parts, body) = answer.into_parts();
    let has_content = !matches!(
        parts.status,
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
    );
    if let Some(length) = hyper::body::Body::size_hint(&body)
        .exact()
        .filter(|_| has_content)
    {
        parts
            .headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(length));
    }
    Response::from_parts(parts, full(""))
}

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
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
    let mut response = Response::new(Body::new(ChannelBody(events)));
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
/// the panic, so a bug never leaves a client with an empty reply. Built
/// from combinators, so the future it returns holds `handler` once (an
/// `async fn` would hold it twice, and each request moves it).
fn answer_even_on_panic(
    handler: impl Future<Output = Response<Body>>,
) -> impl Future<Output = Response<Body>> {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(handler)
        .catch_unwind()
        .map(|answered| answered.unwrap_or_else(panic_response))
}

/// The 500 a panicking handler answers, its panic logged.
fn panic_response(panic: Box<dyn std::any::Any + Send>) -> Response<Body> {
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

/// 503 for new work while the server shuts down.
pub fn draining() -> Response<Body> {
    with_retry_after(
        error_response(StatusCode::SERVICE_UNAVAILABLE, "draining", DRAINING),
        Duration::from_secs(5),
    )
}

/// What a request to a server that is shutting down is told.
pub const DRAINING: &str =
    "the server is shutting down and takes no new work; retry on another instance";

/// 405 with the methods the path takes (`allow`, as `"GET, POST"`); a
/// path that takes GET takes HEAD too ([`answer_request`]), and says so.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let allow = match allow.split(", ").any(|m| m == "GET") {
        true => allow.replacen("GET", "GET, HEAD", 1),
        false => allow.to_string(),
    };
    let mut r = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this path takes {allow}"),
    );
    if let Ok(value) = HeaderValue::from_str(&allow) {
        r.headers_mut().insert("allow", value);
    }
    r
}

/// Why a request body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0:?}")]
    TimedOut(Duration),
    #[error("could not read the request body: {0}")]
    Unreadable(String),
}

impl BodyError {
    /// The HTTP answer: 413, 408 (closing the connection) or 400.
    pub fn response(self) -> Response<Body> {
        let message = self.to_string();
        match self {
            BodyError::TooLarge(_) => {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
            }
            BodyError::TimedOut(_) => {
                let mut r = error_response(StatusCode::REQUEST_TIMEOUT, "body_timeout", message);
                r.headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
            BodyError::Unreadable(_) => {
                error_response(StatusCode::BAD_REQUEST, "bad_body", message)
            }
        }
    }
}

/// Reads a body of at most `limit` bytes within `timeout`: a slow sender
/// cannot hold a request open, nor a large one make the host buffer it.
pub async fn read_whole(
    body: RequestBody,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let Ok(read) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        return Err(BodyError::TimedOut(timeout));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Err(e) => Err(BodyError::Unreadable(e.to_string())),
    }
}

/// [`read_whole`], with the refusal as the HTTP answer that says it.
pub async fn read_body(
    body: RequestBody,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Response<Body>> {
    read_whole(body, limit, timeout)
        .await
        .map_err(BodyError::response)
}

/// Reads a JSON object body as `T`; an empty (or all-whitespace) body is
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
    serde_json::from_slice::<Object<T>>(&bytes)
        .map(|o| o.0)
        .map_err(|e| {
            error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("body is not a valid {what}: {e}"),
            )
        })
}

/// The hostname part of a `Host` header, if it is a plausible host name
/// (it is echoed into URLs, so nothing else gets through).
/// HTTP/2 requests carry it as the URI's authority.
pub fn host_header(req: &Request<RequestBody>) -> Option<&str> {
    let host = match req.headers().get(hyper::header::HOST) {
        Some(host) => host.to_str().ok()?,
        None => req.uri().authority()?.as_str(),
    };
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

/// The first bytes an HTTP/2 client sends without TLS (RFC 9113 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most concurrent requests (streams) one HTTP/2 connection may have.
const HTTP2_MAX_STREAMS: u32 = 64;

/// Largest header block an HTTP/2 request may send.
const HTTP2_MAX_HEADER_BYTES: u32 = 16 * 1024;

/// The protocol a new connection speaks, from its first bytes.
#[derive(Debug, PartialEq)]
enum Protocol {
    Http1,
    Http2,
}

/// Waits (at most `within`) until the connection's first bytes tell
/// HTTP/2's preface from an HTTP/1.1 request, without consuming them.
/// `None`: the client sent nothing in time, or left.
async fn protocol_of(stream: &TcpStream, within: Duration) -> Option<Protocol> {
    let decide = async {
        let mut first = [0u8; HTTP2_PREFACE.len()];
        loop {
            let n = stream.peek(&mut first).await.ok()?;
            if n == 0 {
                return None;
            }
            if first[..n] != HTTP2_PREFACE[..n] {
                return Some(Protocol::Http1);
            }
            if n == HTTP2_PREFACE.len() {
                return Some(Protocol::Http2);
            }
            // Part of the preface so far: peek again once more arrives
            // (peeking returns at once while bytes wait unread).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(within, decide).await.ok().flatten()
}

/// How long a connection's client may take: to send a request's headers
/// (and to idle between requests), and to take any of an answer it has
/// been sent.
#[derive(Debug, Clone, Copy)]
pub struct ClientPatience {
    pub headers: Duration,
    pub reading: Duration,
}

/// Serves one connection, HTTP/1.1 or HTTP/2 (told apart by its first
/// bytes), until the client leaves or `shutdown` fires, whichever comes
/// first. A client that takes longer than `patience.headers` to start,
/// to send a request's headers, or that idles that long with nothing in
/// flight, is disconnected; so is one that takes nothing of an answer
/// for `patience.reading` ([`Impatient`]). `held` (the connection's
/// place in a cap) is kept until the connection ends.
pub fn spawn_connection<S>(
    stream: TcpStream,
    service: S,
    shutdown: CancellationToken,
    patience: ClientPatience,
    held: impl Send + 'static,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let served = async {
            let protocol = protocol_of(&stream, patience.headers).await;
            let stream = Impatient::new(stream, patience.reading);
            match protocol {
                Some(Protocol::Http1) => {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(patience.headers)
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = conn.await;
                }
                Some(Protocol::Http2) => serve_http2(stream, service, patience.headers).await,
                None => {}
            }
        };
        tokio::select! {
            _ = served => {}
            _ = shutdown.cancelled() => {}
        }
        drop(held);
    });
}

/// A connection's socket that gives up on a client that stops reading:
/// a write that can make no progress for `patience` fails, and the
/// connection with it. Without this, a client that asks for a stream
/// (or a large answer) and reads none of it would keep the answer's
/// buffers, a megabyte of the kernel's and the stream's own, for as long
/// as it kept the connection open, even after its session ended.
struct Impatient {
    stream: TcpStream,
    patience: Duration,
    /// When the write that is waiting gives up; set while one waits.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Impatient {
    fn new(stream: TcpStream, patience: Duration) -> Self {
        Impatient {
            stream,
            patience,
            stalled: None,
        }
    }

    /// `progress` as it is, except a wait that has lasted `patience`,
    /// which becomes an error.
    fn within_patience<T>(
        &mut self,
        cx: &mut Context<'_>,
        progress: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if progress.is_ready() {
            self.stalled = None;
            return progress;
        }
        let patience = self.patience;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(patience)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client took nothing of the answer for {patience:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Impatient {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Impatient {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let progress = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.within_patience(cx, progress)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let progress = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.within_patience(cx, progress)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let progress = Pin::new(&mut self.stream).poll_flush(cx);
        self.within_patience(cx, progress)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves an HTTP/2 connection, closed (GOAWAY) once it has had no
/// request in flight for `idle_timeout`.
async fn serve_http2<S>(stream: Impatient, service: S, idle_timeout: Duration)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let counted = {
        let activity = Arc::clone(&activity);
        let service = Arc::new(service);
        hyper::service::service_fn(move |req| {
            let started = InFlight::start(&activity);
            // A combinator, not an async block: the block would hold
            // the answer's future twice.
            futures_util::FutureExt::map(service.call(req), move |answered| {
                Ok::<_, Infallible>(answered?.map(|body| {
                    Body::new(Counted {
                        body,
                        _in_flight: started,
                    })
                }))
            })
        })
    };
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_STREAMS)
        .max_header_list_size(HTTP2_MAX_HEADER_BYTES)
        .keep_alive_interval(Some(idle_timeout))
        .keep_alive_timeout(idle_timeout)
        .serve_connection(TokioIo::new(stream), counted);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep(idle_timeout / 2), if !closing => {
                if activity.idle_for() >= idle_timeout {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Requests in flight on one HTTP/2 connection, and when the last ended
/// (when the connection opened, until one has).
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    last_end: std::sync::Mutex<std::time::Instant>,
}

impl Activity {
    /// A connection that has just opened.
    fn new() -> Self {
        Activity {
            in_flight: Default::default(),
            last_end: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// How long the connection has had nothing in flight (zero while it
    /// has; since it opened if it never had a request).
    fn idle_for(&self) -> Duration {
        use std::sync::atomic::Ordering;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        self.last_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

/// One request in flight until its response body is done or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight.
struct Counted {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http2_connection_is_idle_since_it_opened_or_its_last_request_ended() {
        let pause = Duration::from_millis(20);
        let opened = std::time::Instant::now();
        let activity = Arc::new(Activity::new());
        std::thread::sleep(pause);
        assert!(activity.idle_for() >= pause, "idle since it opened");
        let request = InFlight::start(&activity);
        std::thread::sleep(pause);
        assert_eq!(activity.idle_for(), Duration::ZERO, "busy while in flight");
        drop(request);
        let idle = activity.idle_for();
        assert!(
            idle + 2 * pause <= opened.elapsed(),
            "idle since the request ended, not since the connection opened"
        );
    }

    #[tokio::test]
    async fn a_head_answer_says_the_length_of_what_it_leaves_off() {
        let answer = |status: StatusCode, body: &'static str| {
            let mut r = Response::new(full(body));
            *r.status_mut() = status;
            r
        };
        let head = headers_only(answer(StatusCode::OK, "four"));
        assert_eq!(head.headers()[CONTENT_LENGTH], "4");
        let body = head.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
        // A 304 or 204 has no content whose length a HEAD would say.
        for status in [StatusCode::NOT_MODIFIED, StatusCode::NO_CONTENT] {
            let head = headers_only(answer(status, ""));
            assert_eq!(head.headers().get(CONTENT_LENGTH), None, "{status}");
        }
    }

    #[tokio::test]
    async fn the_panic_guard_holds_its_handler_once() {
        let handler = || crate::holding_4_kib(Response::new(full("")));
        let alone = std::mem::size_of_val(&handler());
        let guarded = answer_even_on_panic(handler());
        assert!(
            std::mem::size_of_val(&guarded) < alone + 256,
            "{} bytes to guard a {alone}-byte handler",
            std::mem::size_of_val(&guarded)
        );
        assert_eq!(guarded.await.status(), StatusCode::OK);
    }

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
