//! The control API: create, list, inspect and delete sessions; list
//! components; liveness. JSON in, JSON out, errors as
//! `{"error": {"code", "message"}}`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::http::{
    Body, error_response, host_header, host_without_port, json_response, method_not_allowed,
    read_body,
};
use crate::a2a::agent_card;
use crate::session::{CreateError, Session, SessionRegistry, SessionRequest};

/// Largest create body accepted.
const MAX_CONTROL_BODY: usize = 64 * 1024;

/// The control API's state.
pub struct ControlApi {
    pub registry: Arc<SessionRegistry>,
    /// Host to put in agent URLs when the request has no `Host` header.
    pub default_host: String,
}

impl ControlApi {
    /// Routes one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let host = host_header(&req)
            .map(host_without_port)
            .unwrap_or(&self.default_host)
            .to_string();
        let path = req.uri().path().trim_end_matches('/').to_string();
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        match (req.method().clone(), segments.as_slice()) {
            (Method::GET, ["healthz"]) => json_response(StatusCode::OK, &json!({"status": "ok"})),
            (_, ["healthz"]) => method_not_allowed("GET"),
            (Method::GET, ["metrics"]) => {
                let mut r = Response::new(super::http::full(crate::metrics::metrics().render()));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                r
            }
            (_, ["metrics"]) => method_not_allowed("GET"),
            (Method::GET, ["v1", "components"]) => self.components(),
            (_, ["v1", "components"]) => method_not_allowed("GET"),
            (Method::POST, ["v1", "sessions"]) => self.create(req, &host).await,
            (Method::GET, ["v1", "sessions"]) => {
                let sessions: Vec<Value> = self
                    .registry
                    .list()
                    .iter()
                    .map(|s| session_json(s, &host, false))
                    .collect();
                json_response(StatusCode::OK, &json!({"sessions": sessions}))
            }
            (_, ["v1", "sessions"]) => method_not_allowed("GET, POST"),
            (Method::GET, ["v1", "sessions", id]) => match self.registry.get(id) {
                Some(s) => json_response(StatusCode::OK, &session_json(&s, &host, false)),
                None => no_session(id),
            },
            (Method::DELETE, ["v1", "sessions", id]) => {
                if self.registry.delete(id).await {
                    let mut r = Response::new(super::http::full(""));
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    r
                } else {
                    no_session(id)
                }
            }
            (_, ["v1", "sessions", _]) => method_not_allowed("GET, DELETE"),
            _ => error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such path {}", req.uri().path()),
            ),
        }
    }

    fn components(&self) -> Response<Body> {
        let components: Vec<Value> = self
            .registry
            .runtime()
            .components()
            .map(|c| {
                let info = crate::session::info_from_guest(c.info.clone());
                let push = self.registry.settings().push.enabled;
                json!({"name": c.name, "card": agent_card(&info, None, true, push)})
            })
            .collect();
        json_response(StatusCode::OK, &json!({"components": components}))
    }

    async fn create(&self, req: Request<Incoming>, host: &str) -> Response<Body> {
        let body = match read_body(req.into_body(), MAX_CONTROL_BODY).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let request: SessionRequest = if body.iter().all(u8::is_ascii_whitespace) {
            SessionRequest::default()
        } else {
            match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("body is not a valid session request: {e}"),
                    );
                }
            }
        };
        let spec = match request.validate() {
            Ok(s) => s,
            Err(why) => return error_response(StatusCode::BAD_REQUEST, "bad_request", why),
        };
        match self.registry.create(spec).await {
            Ok(session) => json_response(StatusCode::CREATED, &session_json(&session, host, true)),
            Err(e) => {
                let (status, code) = match &e {
                    CreateError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                    CreateError::UnknownComponent { .. } => {
                        (StatusCode::BAD_REQUEST, "unknown_component")
                    }
                    CreateError::OpenNotAllowed => {
                        (StatusCode::FORBIDDEN, "open_sessions_disabled")
                    }
                    CreateError::PortsExhausted(_) => {
                        (StatusCode::SERVICE_UNAVAILABLE, "ports_exhausted")
                    }
                    CreateError::AgentStart { .. } => {
                        (StatusCode::BAD_REQUEST, "agent_start_failed")
                    }
                };
                tracing::info!(error = %e, "session not created");
                error_response(status, code, e.to_string())
            }
        }
    }
}

fn no_session(id: &str) -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "session_not_found",
        format!("no session {id}"),
    )
}

/// A session as the API shows it. The token appears only in the create
/// response: it is the session's secret.
fn session_json(session: &Session, host: &str, with_token: bool) -> Value {
    let agents: Vec<Value> = session
        .agents
        .iter()
        .map(|a| {
            let base = format!("http://{host}:{}", a.port);
            json!({
                "slot": a.slot,
                "name": a.name,
                "component": a.component,
                "port": a.port,
                "url": format!("{base}/"),
                "card_url": format!("{base}/.well-known/agent-card.json"),
            })
        })
        .collect();
    let mut v = json!({
        "id": session.id,
        "mode": session.mode,
        "created_at": session.created_at,
        "auth": if session.token().is_some() { "bearer" } else { "none" },
        "agents": agents,
    });
    if with_token && let Some(token) = session.token() {
        v["token"] = json!(token);
    }
    v
}
