//! The refusals both routers of the control listener give: the admin
//! token, a server that is draining, and a session that could not be
//! created.

use std::net::IpAddr;
use std::time::Duration;

use hyper::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};

use super::http::{Body, RequestBody, error_response, with_retry_after};
use crate::metrics::{Metrics, metrics};
use crate::session::{Access, CreateError, check_bearer};

/// What a full server tells clients to wait before trying again.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The control API's bearer token, when one is required.
#[derive(Clone, Default)]
pub struct AdminToken(Option<String>);

impl AdminToken {
    /// `None`: the control API is open (a loopback listener).
    pub fn new(token: Option<String>) -> Self {
        AdminToken(token)
    }

    /// 401 or 403 unless `req` carries the token (when one is set).
    pub fn refusal(&self, req: &Request<RequestBody>) -> Option<Response<Body>> {
        let given = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
        token_refusal(
            check_bearer(self.0.as_deref(), given),
            "the control API needs the admin token: send Authorization: Bearer <admin token>",
            "the bearer token is not the admin token",
        )
    }
}

/// The answer to a request whose bearer token was checked: none when
/// access is granted, 401 (with `WWW-Authenticate`) saying what is
/// `needed` when no token was sent, 403 saying it is `wrong` otherwise.
pub fn token_refusal(access: Access, needed: &str, wrong: &str) -> Option<Response<Body>> {
    match access {
        Access::Granted => None,
        Access::Missing => Some(token_missing(needed)),
        Access::Wrong => Some(token_wrong(wrong)),
    }
}

/// 401, with `WWW-Authenticate`, saying what token is `needed`.
pub fn token_missing(needed: &str) -> Response<Body> {
    let mut r = error_response(StatusCode::UNAUTHORIZED, "unauthorized", needed);
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// 403, saying why the token sent is the `wrong` one.
pub fn token_wrong(wrong: &str) -> Response<Body> {
    error_response(StatusCode::FORBIDDEN, "forbidden", wrong)
}

/// Why a session (for the API or a draft) was not created, as a response.
pub fn create_refusal(e: CreateError, peer: IpAddr) -> Response<Body> {
    tracing::info!(error = %e, client = %peer, "session not created");
    let message = e.to_string();
    match e {
        CreateError::UnknownComponent { .. } => {
            error_response(StatusCode::BAD_REQUEST, "unknown_component", message)
        }
        CreateError::OpenNotAllowed => {
            error_response(StatusCode::FORBIDDEN, "open_sessions_disabled", message)
        }
        CreateError::AgentStart { .. } => {
            error_response(StatusCode::BAD_REQUEST, "agent_start_failed", message)
        }
        CreateError::PortsExhausted(_) => {
            Metrics::count(&metrics().sessions_refused, "ports");
            full(StatusCode::SERVICE_UNAVAILABLE, "ports_exhausted", message)
        }
        CreateError::InstancesExhausted(_) => {
            Metrics::count(&metrics().sessions_refused, "instances");
            full(
                StatusCode::SERVICE_UNAVAILABLE,
                "instances_exhausted",
                message,
            )
        }
        CreateError::Full { .. } => {
            Metrics::count(&metrics().sessions_refused, "full");
            full(StatusCode::SERVICE_UNAVAILABLE, "server_full", message)
        }
        CreateError::TooManyForIp { .. } => {
            Metrics::count(&metrics().rate_limited, "sessions_per_ip");
            full(StatusCode::TOO_MANY_REQUESTS, "too_many_sessions", message)
        }
    }
}

/// A create refused for capacity: the error, and when to try again.
fn full(status: StatusCode, code: &str, message: String) -> Response<Body> {
    with_retry_after(error_response(status, code, message), FULL_RETRY_AFTER)
}
