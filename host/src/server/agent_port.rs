//! The A2A server of one agent: the card without auth, JSON-RPC at its
//! base URL behind the session's bearer token and rate. The same handler
//! serves an agent's own port and its gateway path; it hands the body to
//! the slot's [`A2aService`](crate::a2a::A2aService), and the guest never
//! sees the socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ALLOW, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_TYPE, ETAG, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::access::{token_missing, token_wrong};
use super::http::{
    Body, BodyError, ClientPatience, DRAINING, RequestBody, answer_request, draining,
    error_response, full, host_header, json_bytes, method_not_allowed, read_body, read_whole,
    refuse_connection, spawn_connection, sse_response, too_many_requests, with_retry_after,
};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tonic::Status;

use crate::a2a::error::HOST_DOMAIN;
use crate::a2a::grpc;
use crate::a2a::rest::{self, Endpoint, NotAnEndpoint};
use crate::a2a::{Reply, agent_card};
use crate::budget::Kind;
use crate::metrics::{Metrics, metrics};
use crate::session::{Access, Session, SlotAgent};

/// Limits every agent request is held to.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Largest JSON-RPC body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: std::time::Duration,
    /// Time a client has to send a request's body, and to take any of
    /// an answer it has been sent.
    pub body_timeout: std::time::Duration,
}

impl PortLimits {
    /// What a connection's client is given, for every listener.
    pub fn patience(&self) -> ClientPatience {
        ClientPatience {
            headers: self.header_timeout,
            reading: self.body_timeout,
        }
    }
}

/// Serves `agent` on `listener` until the session ends or the server
/// stops accepting. The returned task finishes only after the listener
/// is closed.
pub fn spawn(
    session: Arc<Session>,
    agent: Arc<SlotAgent>,
    listener: std::net::TcpListener,
    limits: PortLimits,
    drain: Arc<super::Drain>,
    admission: Arc<super::admission::Admission>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(session = %session.id, port = ?agent.port, error = %e, "cannot serve agent port");
                return;
            }
        };
        let shutdown = session.shutdown_signal().clone();
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = drain.stop_accepting().cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, most likely: back off
                        // rather than spin.
                        tracing::warn!(session = %session.id, port = ?agent.port, error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let held = match session.budget.try_take(Kind::Connections, 1) {
                Ok(held) => held,
                Err(e) => {
                    refuse_connection(stream, e.to_string());
                    continue;
                }
            };
            let admitted = match admission.admit(None) {
                Ok(admitted) => admitted,
                Err(why) => {
                    refuse_connection(stream, why.to_string());
                    continue;
                }
            };
            let (session, agent, drain) =
                (Arc::clone(&session), Arc::clone(&agent), Arc::clone(&drain));
            let local = stream.local_addr().ok();
            let service = hyper::service::service_fn(move |req| {
                let (session, agent) = (Arc::clone(&session), Arc::clone(&agent));
                let in_flight = drain.request();
                let drain = Arc::clone(&drain);
                async move {
                    let _in_flight = in_flight;
                    let base = |req: &Request<RequestBody>| port_base_url(req, local);
                    let at = Mount {
                        base: &base,
                        prefix_len: 0,
                    };
                    Ok::<_, Infallible>(
                        answer_request(req, |req| {
                            answer(&session, &agent, req, at, limits, &drain)
                        })
                        .await,
                    )
                }
            });
            spawn_connection(
                stream,
                service,
                shutdown.clone(),
                limits.patience(),
                (held, admitted),
            );
        }
        // The listener drops here: the port is closed before the session
        // is reported deleted.
    })
}

/// What a request refused for budget is told to wait before retrying.
const BUDGET_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The 1.0 card's path (RFC 8615).
const CARD_PATH: &str = "/.well-known/agent-card.json";
/// The 0.3 card's path, for clients that predate 1.0.
const CARD_PATH_V03: &str = "/.well-known/agent.json";

/// `http://{Host}/` of a request on an agent port: the URL its card
/// advertises.
fn port_base_url(req: &Request<RequestBody>, local: Option<SocketAddr>) -> String {
    let authority = match (host_header(req), local) {
        (Some(host), _) => host.to_string(),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "localhost".to_string(),
    };
    format!("http://{authority}/")
}

/// Where an agent is reached.
#[derive(Clone, Copy)]
pub(crate) struct Mount<'a> {
    /// Writes the agent's base URL as clients use it, only for the
    /// answers that show it (the card, a wrong path), not for every call.
    pub base: &'a (dyn Fn(&Request<RequestBody>) -> String + Sync),
    /// The length of the request path's part that names the agent: 0 on
    /// its own port or host name, that of `/s/{session}/{slot}` on the
    /// gateway.
    pub prefix_len: usize,
}

/// Answers one request for an agent mounted `at`. The bulk work it
/// causes takes its turn with other sessions' ([`crate::bulk`]).
pub(crate) fn answer(
    session: &Session,
    agent: &SlotAgent,
    req: Request<RequestBody>,
    at: Mount<'_>,
    limits: PortLimits,
    drain: &super::Drain,
) -> impl Future<Output = Response<Body>> {
    // An open session's agents answer anyone who reaches them: a page on
    // another origin is not let read them through its visitor's browser.
    let cross_origin = session.token().is_some();
    let request = answer_in_session(session, agent, req, at, limits, drain);
    let answered = crate::bulk::in_session(Arc::clone(session.budget.session()), request);
    async move {
        let answer = answered.await;
        match cross_origin {
            true => readable_from_any_origin(answer),
            false => answer,
        }
    }
}

/// Methods the agent endpoints take, between them.
const AGENT_METHODS: &str = "GET, HEAD, POST, DELETE";

/// Lets a page on any origin read every answer an agent of a session
/// with a token gives. Its calls are authorised by the bearer token the
/// client sends, never by cookies or the client's address, so a page can
/// do no more than its own token allows.
fn readable_from_any_origin(mut r: Response<Body>) -> Response<Body> {
    let headers = r.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after, etag, www-authenticate"),
    );
    r
}

/// The answer to `OPTIONS`: what the endpoints take, and a browser's CORS
/// preflight granted for the token, JSON bodies and A2A's own headers.
fn preflight() -> Response<Body> {
    let mut r = Response::new(full(""));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let headers = r.headers_mut();
    headers.insert(ALLOW, HeaderValue::from_static(AGENT_METHODS));
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(AGENT_METHODS),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, a2a-version, a2a-extensions"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

async fn answer_in_session(
    session: &Session,
    agent: &SlotAgent,
    req: Request<RequestBody>,
    at: Mount<'_>,
    limits: PortLimits,
    drain: &super::Drain,
) -> Response<Body> {
    if req.method() == Method::OPTIONS {
        return preflight();
    }
    let path = req.uri().path();
    let below = path.get(at.prefix_len..).unwrap_or(path);
    let rest = match below.find("/.well-known/") {
        Some(i) => &below[i..],
        None if below.is_empty() => "/",
        None => below,
    };
    let content_type = req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes());
    if grpc::is_grpc(content_type) {
        return answer_grpc(session, agent, req, limits, drain).await;
    }
    if rest == CARD_PATH || rest == CARD_PATH_V03 {
        if req.method() != Method::GET {
            return method_not_allowed("GET");
        }
        let base_url = (at.base)(&req);
        return card(&req, session, agent, &base_url, rest == CARD_PATH_V03);
    }
    // JSON-RPC at the base URL; the REST binding's paths below it.
    let endpoint = match rest {
        "/" if req.method() != Method::POST => return method_not_allowed("POST"),
        "/" => None,
        path => match Endpoint::parse(req.method().as_str(), path, req.uri().query()) {
            Ok(_) if !agent.service.capabilities().bindings.rest => {
                let base_url = (at.base)(&req);
                return error_response(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!(
                        "no such path {}: this server serves JSON-RPC only (bindings.rest is off), \
                         at POST {base_url}",
                        req.uri().path()
                    ),
                );
            }
            Ok(endpoint) => Some(endpoint),
            Err(NotAnEndpoint::WrongVerb(allowed)) => {
                return as_google_status(method_not_allowed(allowed));
            }
            Err(NotAnEndpoint::NotFound) => {
                let base_url = (at.base)(&req);
                return error_response(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!(
                        "no such path {}: JSON-RPC is at POST {base_url}, REST at \
                         {base_url}message:send, tasks/… (A2A section 11.3), the card at {base_url}{}",
                        req.uri().path(),
                        &CARD_PATH[1..]
                    ),
                );
            }
        },
    };
    // A refusal before the call is said as the binding says errors.
    let rest_binding = endpoint.is_some();
    let refuse = move |refusal| match rest_binding {
        true => as_google_status(refusal),
        false => refusal,
    };
    if let Err(refusal) = admit(session, &req, drain) {
        return refuse(refusal.http());
    }
    let version = a2a_version(&req);
    // A REST call names its method in its path: one that finds the agent
    // busy is refused before its body is read.
    if let Some(endpoint) = &endpoint
        && let Some(busy) = agent
            .service
            .busy_before_reading(endpoint.method, version.as_deref())
    {
        return over_budget(rest::error_body(&busy));
    }
    let body = match read_body(req.into_body(), limits.max_body_bytes, limits.body_timeout).await {
        Ok(b) => b,
        Err(refusal) => return refuse(refusal),
    };
    let reply = match endpoint {
        None => agent.service.call(version.as_deref(), body).await,
        Some(endpoint) => {
            let method = endpoint.method;
            match endpoint.read_params(body).await {
                Ok(params) => {
                    let version = version.as_deref();
                    agent.service.call_rest(version, method, params).await
                }
                Err(e) => Reply::Failed(rest::status_of(&e).0, rest::error_body(&e)),
            }
        }
    };
    match reply {
        Reply::Json(bytes) => json_bytes(StatusCode::OK, bytes),
        Reply::Failed(status, bytes) => json_bytes(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            bytes,
        ),
        Reply::OverBudget(bytes) => over_budget(bytes),
        Reply::Stream(events) => sse_response(events),
        Reply::Nothing => {
            let mut r = Response::new(full(""));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    }
}

/// A call refused by a budget of its session: 429, and when to retry.
fn over_budget(body: Vec<u8>) -> Response<Body> {
    Metrics::count(&metrics().rate_limited, "budget");
    with_retry_after(
        json_bytes(StatusCode::TOO_MANY_REQUESTS, body),
        BUDGET_RETRY_AFTER,
    )
}

/// A refusal made in the server's own error shape (`{"error": {"code":
/// "rate_limited", "message": …}}`), said as the HTTP+JSON binding says
/// errors (specification section 11.6): a `google.rpc.Status` whose code
/// is the HTTP status, with the server's reason in an `ErrorInfo`. The
/// status and headers (`Retry-After`, `WWW-Authenticate`, `Allow`) stay.
fn as_google_status(refusal: Response<Body>) -> Response<Body> {
    let (parts, body) = refusal.into_parts();
    let ours: Value = body
        .collect()
        .now_or_never()
        .and_then(|whole| serde_json::from_slice(&whole.ok()?.to_bytes()).ok())
        .unwrap_or_default();
    let reason = ours["error"]["code"]
        .as_str()
        .unwrap_or("refused")
        .to_ascii_uppercase();
    let status = json!({"error": {
        "code": parts.status.as_u16(),
        "status": google_code_of(parts.status),
        "message": ours["error"]["message"],
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": HOST_DOMAIN,
        }],
    }});
    Response::from_parts(
        parts,
        full(serde_json::to_vec(&status).expect("JSON values serialise")),
    )
}

/// The `google.rpc.Code` an HTTP status stands for, by Google's HTTP
/// mapping.
fn google_code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        413 | 429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// Answers a gRPC call: the session's checks as for the other bindings,
/// each refusal as the gRPC status that says it, then the call.
async fn answer_grpc(
    session: &Session,
    agent: &SlotAgent,
    req: Request<RequestBody>,
    limits: PortLimits,
    drain: &super::Drain,
) -> Response<Body> {
    let refused = |status| boxed_grpc(grpc::refusal(status));
    if !agent.service.capabilities().bindings.grpc {
        return refused(Status::unimplemented(
            "this server does not serve gRPC (bindings.grpc is off): use JSON-RPC or HTTP+JSON, \
             as the agent card lists",
        ));
    }
    if let Err(refusal) = admit(session, &req, drain) {
        return refused(refusal.grpc());
    }
    let (parts, body) = req.into_parts();
    if let Some(busy) = grpc::busy_before_reading(&agent.service, &parts) {
        return boxed_grpc(busy);
    }
    // The whole request is one message (every method's request is
    // unary): read it under the same size and time limits as a JSON
    // body, plus the 5 bytes of gRPC framing.
    let framed_limit = limits.max_body_bytes + 5;
    let body = match read_whole(body, framed_limit, limits.body_timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => {
            return refused(Status::resource_exhausted(format!(
                "the request message is larger than {} bytes",
                limits.max_body_bytes
            )));
        }
        Err(e @ BodyError::TimedOut(_)) => {
            return refused(Status::deadline_exceeded(e.to_string()));
        }
        Err(e @ BodyError::Unreadable(_)) => return refused(Status::cancelled(e.to_string())),
    };
    boxed_grpc(grpc::answer(&agent.service, parts, body, limits.max_body_bytes).await)
}

/// Why a request was refused before its call, by the checks every
/// binding makes ([`admit`]); each binding says it in its own form.
enum Refusal {
    Draining,
    /// No bearer token.
    TokenMissing,
    /// A bearer token that is not the session's.
    TokenWrong,
    /// The session is over its request rate: retry after this long.
    TooFast(std::time::Duration),
}

/// What an agent request with no token is told.
const TOKEN_NEEDED: &str =
    "this agent needs the session's token: send Authorization: Bearer <token>";
/// What an agent request with another token is told.
const TOKEN_WRONG: &str = "the bearer token is not this session's token";
/// What an agent request over the session's rate is told.
const TOO_FAST: &str = "this session is sending agent requests too fast";

/// The checks every binding makes before a call, in order: the server
/// takes new work, the token is the session's, the session is within
/// its request rate. A request that passes is the session's traffic.
fn admit(
    session: &Session,
    req: &Request<RequestBody>,
    drain: &super::Drain,
) -> Result<(), Refusal> {
    if drain.is_draining() {
        return Err(Refusal::Draining);
    }
    match session.check_access(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes())) {
        Access::Granted => {}
        Access::Missing => return Err(Refusal::TokenMissing),
        Access::Wrong => return Err(Refusal::TokenWrong),
    }
    if let Err(wait) = session.take_request() {
        Metrics::count(&metrics().rate_limited, "agent");
        return Err(Refusal::TooFast(wait));
    }
    session.touch();
    Ok(())
}

impl Refusal {
    /// As the server's HTTP error (the REST binding re-says it as a
    /// `google.rpc.Status`).
    fn http(self) -> Response<Body> {
        match self {
            Refusal::Draining => draining(),
            Refusal::TokenMissing => token_missing(TOKEN_NEEDED),
            Refusal::TokenWrong => token_wrong(TOKEN_WRONG),
            Refusal::TooFast(wait) => too_many_requests(wait, TOO_FAST),
        }
    }

    /// As a gRPC status: the codes gRPC gives the HTTP statuses above
    /// (401 unauthenticated, 403 permission denied).
    fn grpc(self) -> Status {
        match self {
            Refusal::Draining => Status::unavailable(DRAINING),
            Refusal::TokenMissing => Status::unauthenticated(TOKEN_NEEDED),
            Refusal::TokenWrong => Status::permission_denied(TOKEN_WRONG),
            Refusal::TooFast(wait) => grpc::retry_later(
                tonic::Code::ResourceExhausted,
                format!("{TOO_FAST}; retry after {wait:.1?}"),
                wait,
            ),
        }
    }
}

/// A gRPC response as the connection sends it.
fn boxed_grpc(response: Response<grpc::GrpcBody>) -> Response<Body> {
    response.map(Body::new)
}

/// The `A2A-Version` header, or the query parameter of the same name.
fn a2a_version(req: &Request<RequestBody>) -> Option<String> {
    if let Some(v) = req.headers().get("a2a-version") {
        return Some(String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    }
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.eq_ignore_ascii_case("a2a-version").then(|| v.to_string())
    })
}

/// The agent's card (1.0, or the 0.3 form for `v03`), readable from any
/// origin, with validators:
/// `ETag` (a hash of the bytes, which depend on the URL it is reached at)
/// and `Last-Modified` (the session's start: a running session's card
/// never changes). A client that has it gets 304 (`If-None-Match`, or
/// failing that `If-Modified-Since`).
fn card(
    req: &Request<RequestBody>,
    session: &Session,
    agent: &SlotAgent,
    url: &str,
    v03: bool,
) -> Response<Body> {
    use sha2::{Digest, Sha256};
    let capabilities = agent.service.capabilities();
    let secured = session.token().is_some();
    let mut card = agent_card(
        &agent.info,
        Some(url),
        secured,
        capabilities.push,
        capabilities.bindings,
    );
    if v03 {
        card = crate::a2a::v03::card_from_v1(&card, url);
    }
    let body = serde_json::to_vec(&card).expect("cards serialise");
    let digest = Sha256::digest(&body);
    let etag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{etag}\"");
    let modified =
        crate::clock::parse_rfc3339(&session.created_at).map_or(0, |ms| ms / 1000) as u64;
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let unchanged = match header(IF_NONE_MATCH) {
        Some(tags) => tags
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag),
        None => header(IF_MODIFIED_SINCE)
            .and_then(crate::clock::parse_http_date)
            .is_some_and(|since| modified <= since),
    };
    let mut r = if unchanged {
        let mut r = Response::new(full(""));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json_bytes(StatusCode::OK, body)
    };
    let headers = r.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&crate::clock::http_date(modified)) {
        headers.insert(LAST_MODIFIED, v);
    }
    r
}
