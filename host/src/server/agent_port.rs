//! The A2A server on one agent port: the card without auth, JSON-RPC at
//! `POST /` behind the session's bearer token. It hands the body to the
//! slot's [`A2aService`](crate::a2a::A2aService); the guest never sees
//! the socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::http::{
    Body, error_response, host_header, json_bytes, json_response, method_not_allowed, read_body,
    spawn_connection,
};
use crate::a2a::{Reply, agent_card};
use crate::session::{Access, Session, SlotAgent};

/// Limits an agent port enforces.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Largest JSON-RPC body accepted (413 beyond).
    pub max_body_bytes: usize,
}

/// Serves `agent` on `listener` until the session ends. The returned
/// task finishes only after the listener is closed.
pub fn spawn(
    session: Arc<Session>,
    agent: Arc<SlotAgent>,
    listener: std::net::TcpListener,
    limits: PortLimits,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(session = %session.id, port = agent.port, error = %e, "cannot serve agent port");
                return;
            }
        };
        let shutdown = session.shutdown_signal().clone();
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: back off
                        // rather than spin.
                        tracing::warn!(session = %session.id, port = agent.port, error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let (session, agent) = (Arc::clone(&session), Arc::clone(&agent));
            let local = stream.local_addr().ok();
            let service = hyper::service::service_fn(move |req| {
                let (session, agent) = (Arc::clone(&session), Arc::clone(&agent));
                async move {
                    Ok::<_, Infallible>(handle(&session, &agent, req, local, peer, limits).await)
                }
            });
            spawn_connection(stream, service, shutdown.clone());
        }
        // The listener drops here: the port is closed before the session
        // is reported deleted.
    })
}

const CARD_PATHS: [&str; 2] = ["/.well-known/agent-card.json", "/.well-known/agent.json"];

async fn handle(
    session: &Session,
    agent: &SlotAgent,
    req: Request<Incoming>,
    local: Option<SocketAddr>,
    _peer: SocketAddr,
    limits: PortLimits,
) -> Response<Body> {
    let path = req.uri().path();
    if CARD_PATHS.contains(&path) {
        if req.method() != Method::GET {
            return method_not_allowed("GET");
        }
        return card(session, agent, &req, local);
    }
    if path != "/" {
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no such path {path}: JSON-RPC is at POST /, the card at {}",
                CARD_PATHS[0]
            ),
        );
    }
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    match session.check_access(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes())) {
        Access::Granted => {}
        Access::Missing => {
            let mut r = error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this agent needs the session's token: send Authorization: Bearer <token>",
            );
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        Access::Wrong => {
            return error_response(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the bearer token is not this session's token",
            );
        }
    }
    let version = a2a_version(&req);
    let body = match read_body(req.into_body(), limits.max_body_bytes).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    match agent.service.call(version.as_deref(), &body).await {
        Reply::Json(bytes) => json_bytes(StatusCode::OK, bytes),
        Reply::Stream(events) => super::http::sse_response(events),
        Reply::Nothing => {
            let mut r = Response::new(super::http::full(""));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    }
}

/// The `A2A-Version` header, or the query parameter of the same name.
fn a2a_version(req: &Request<Incoming>) -> Option<String> {
    if let Some(v) = req.headers().get("a2a-version") {
        return Some(String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    }
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.eq_ignore_ascii_case("a2a-version").then(|| v.to_string())
    })
}

fn card(
    session: &Session,
    agent: &SlotAgent,
    req: &Request<Incoming>,
    local: Option<SocketAddr>,
) -> Response<Body> {
    let authority = match (host_header(req), local) {
        (Some(host), _) => host.to_string(),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => format!("localhost:{}", agent.port),
    };
    let url = format!("http://{authority}/");
    let push = agent.service.capabilities().push.enabled;
    let card = agent_card(&agent.info, Some(&url), session.token().is_some(), push);
    let mut r = json_response(StatusCode::OK, &card);
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}
