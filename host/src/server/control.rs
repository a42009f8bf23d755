//! The control listener: the control API (sessions, components, health,
//! metrics) and the gateway (`/s/{session}/{slot}/`), which hands agent
//! requests to the same handler an agent port uses.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::Drain;
use super::access::{AdminToken, create_refusal};
use super::agent_port::{self, PortLimits};
use super::draft_api::{self, DraftApi};
use super::http::{
    Body, RequestBody, draining, error_response, full, host_header, host_without_port,
    json_response, method_not_allowed, read_body, read_json_or_default, too_many_requests,
};
use crate::a2a::agent_card;
use crate::config::Mode;
use crate::draft::lineup::default_lineup;
use crate::metrics::{Metrics, metrics};
use crate::rate::KeyedLimiter;
use crate::runtime::LoadedComponent;
use crate::runtime::catalog::{Catalog, UploadError, Uploaded};
use crate::session::{Session, SessionRegistry, SessionRequest};

/// Largest component upload accepted.
const MAX_COMPONENT_BYTES: usize = 64 << 20;
/// Largest create body accepted.
const MAX_CONTROL_BODY: usize = 64 * 1024;

/// The control listener's state.
pub struct ControlApi {
    pub registry: Arc<SessionRegistry>,
    /// `host:port` of the control listener, for URLs when a request has
    /// no `Host` header.
    pub listen_authority: String,
    /// Configured public base URL (gateway URLs behind a proxy).
    pub public_url: Option<String>,
    /// The control API's bearer token, if one is required.
    pub admin: AdminToken,
    /// Control requests per client IP.
    pub rate: KeyedLimiter<IpAddr>,
    /// Whether sessions can still be served when the pool is empty.
    pub gateway_fallback: bool,
    pub limits: PortLimits,
    pub drain: Arc<Drain>,
    /// `/v1/drafts` and below.
    pub drafts: DraftApi,
    /// The components on offer; uploads go here.
    pub catalog: Arc<Catalog>,
    /// Peers whose forwarding headers name the client.
    pub trusted_proxies: crate::forwarded::TrustedProxies,
    /// Agents' own host names: `{session}-{slot}.` this suffix
    /// (`gateway.host_suffix`, lower case).
    pub host_suffix: Option<String>,
}

/// Where a request says it came to: `Host`, else the listener.
pub(super) struct Origin {
    /// `host:port` as the client wrote it.
    pub(super) authority: String,
}

impl Origin {
    fn hostname(&self) -> &str {
        host_without_port(&self.authority)
    }
}

impl ControlApi {
    /// Routes one request from `peer` (the client behind it, when `peer`
    /// is a trusted proxy).
    pub async fn route(&self, req: Request<RequestBody>, peer: IpAddr) -> Response<Body> {
        let peer = self.trusted_proxies.client(peer, req.headers());
        let origin = Origin {
            authority: host_header(&req)
                .unwrap_or(&self.listen_authority)
                .to_string(),
        };
        if let Some((session, slot)) = self.agent_host(origin.hostname()) {
            let base =
                |_: &Request<RequestBody>| format!("{}://{}/", self.scheme(), origin.authority);
            let at = agent_port::Mount {
                base: &base,
                prefix_len: 0,
            };
            return self.agent(req, &session, &slot, at).await;
        }
        let path = req.uri().path().to_string();
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        match (req.method().clone(), segments.as_slice()) {
            (Method::GET, ["healthz"]) => json_response(StatusCode::OK, &json!({"status": "ok"})),
            (Method::GET, ["readyz"]) => self.readiness(),
            (_, ["healthz" | "readyz"]) => method_not_allowed("GET"),
            (_, ["s", session, slot, ..]) => self.gateway(req, session, slot, &origin).await,
            (Method::GET, [] | ["draft.js" | "draft.css" | "favicon.svg" | "favicon.ico"]) => {
                draft_api::asset(segments.first().copied().unwrap_or(""))
            }
            // Cleaning up is never refused for rate: a client that
            // deletes quickly must not leak what it meant to free.
            (Method::DELETE, ["v1", "drafts", _]) => self.drafts.route(req, &segments, peer).await,
            // A draft's session as its page shows it: the endpoints as
            // this client reaches them.
            (Method::GET, ["v1", "drafts", id, "session"]) => match self.rate_limit(peer) {
                Some(refused) => refused,
                None => match self.drafts.authorized_draft(&req, id) {
                    Ok((session, _)) => {
                        json_response(StatusCode::OK, &self.session_json(&session, &origin, false))
                    }
                    Err(refused) => refused,
                },
            },
            (_, ["v1", "drafts", ..]) => match self.rate_limit(peer) {
                Some(refused) => refused,
                None => self.drafts.route(req, &segments, peer).await,
            },
            _ => {
                if let Some(refused) = self.admin.refusal(&req) {
                    return refused;
                }
                let cleanup = matches!(
                    (req.method(), segments.as_slice()),
                    (&Method::DELETE, ["v1", "sessions", _])
                );
                if !cleanup && let Some(refused) = self.rate_limit(peer) {
                    return refused;
                }
                self.api(req, &segments, &origin, peer).await
            }
        }
    }

    /// 429 when `peer` has sent more control requests than its rate.
    fn rate_limit(&self, peer: IpAddr) -> Option<Response<Body>> {
        let wait = self.rate.take(&peer).err()?;
        Metrics::count(&metrics().rate_limited, "control");
        Some(too_many_requests(
            wait,
            "too many control requests from this address",
        ))
    }

    async fn api(
        &self,
        req: Request<RequestBody>,
        segments: &[&str],
        origin: &Origin,
        peer: IpAddr,
    ) -> Response<Body> {
        match (req.method().clone(), segments) {
            (Method::GET, ["metrics"]) => {
                let mut r = Response::new(full(metrics().render()));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                r
            }
            (_, ["metrics"]) => method_not_allowed("GET"),
            (Method::GET, ["v1", "components"]) => self.components(),
            (_, ["v1", "components"]) => method_not_allowed("GET"),
            (Method::GET, ["v1", "components", name]) => self.component(name),
            (Method::PUT, ["v1", "components", name]) => self.upload(req, name).await,
            (_, ["v1", "components", _]) => method_not_allowed("GET, PUT"),
            (Method::POST, ["v1", "sessions"]) => self.create(req, origin, peer).await,
            (Method::GET, ["v1", "sessions"]) => {
                let sessions: Vec<Value> = self
                    .registry
                    .list()
                    .iter()
                    .map(|s| self.session_json(s, origin, false))
                    .collect();
                json_response(StatusCode::OK, &json!({"sessions": sessions}))
            }
            (_, ["v1", "sessions"]) => method_not_allowed("GET, POST"),
            (Method::GET, ["v1", "sessions", id]) => match self.registry.get(id) {
                Some(s) => {
                    s.touch();
                    json_response(StatusCode::OK, &self.session_json(&s, origin, false))
                }
                None => no_session(id),
            },
            (Method::DELETE, ["v1", "sessions", id]) => {
                if self.registry.delete(id).await {
                    let mut r = Response::new(full(""));
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    r
                } else {
                    no_session(id)
                }
            }
            (_, ["v1", "sessions", _]) => method_not_allowed("GET, DELETE"),
            (Method::POST, ["v1", "sessions", id, "keepalive"]) => match self.registry.get(id) {
                Some(s) => {
                    s.touch();
                    json_response(StatusCode::OK, &self.session_json(&s, origin, false))
                }
                None => no_session(id),
            },
            (_, ["v1", "sessions", _, "keepalive"]) => method_not_allowed("POST"),
            _ => error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such path {}", req.uri().path()),
            ),
        }
    }

    fn readiness(&self) -> Response<Body> {
        let (status, why) = if self.drain.refuses_sessions() {
            (StatusCode::SERVICE_UNAVAILABLE, "draining")
        } else if !self.gateway_fallback
            && self.registry.pool().free() < crate::session::spec::MAX_AGENTS
        {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "no free agent ports and the gateway is off",
            )
        } else {
            (StatusCode::OK, "ready")
        };
        json_response(status, &json!({"status": why}))
    }

    /// A request on the gateway's path for an agent.
    async fn gateway(
        &self,
        req: Request<RequestBody>,
        session: &str,
        slot: &str,
        origin: &Origin,
    ) -> Response<Body> {
        let base =
            |_: &Request<RequestBody>| format!("{}/s/{session}/{slot}/", self.gateway_base(origin));
        let at = agent_port::Mount {
            base: &base,
            prefix_len: "/s/".len() + session.len() + "/".len() + slot.len(),
        };
        self.agent(req, session, slot, at).await
    }

    /// The session and slot an agent host name (`{session}-{slot}.` the
    /// suffix) names, when host names are configured.
    fn agent_host(&self, hostname: &str) -> Option<(String, String)> {
        let suffix = self.host_suffix.as_deref()?;
        let hostname = hostname.to_ascii_lowercase();
        // A fully qualified name may end in a dot: the same name.
        let hostname = hostname.strip_suffix('.').unwrap_or(&hostname);
        let label = hostname.strip_suffix(suffix)?.strip_suffix('.')?;
        let (session, slot) = label.rsplit_once('-')?;
        Some((session.to_string(), slot.to_string()))
    }

    /// `https` when the public URL is, else `http`.
    fn scheme(&self) -> &str {
        match &self.public_url {
            Some(url) if url.starts_with("https://") => "https",
            _ => "http",
        }
    }

    /// The URL of a session's agent on its own host name: scheme and
    /// port as the client reaches this server.
    fn agent_host_url(&self, suffix: &str, origin: &Origin, session: &str, slot: u8) -> String {
        let port = match &self.public_url {
            Some(url) => {
                let authority = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let authority = authority.split('/').next().unwrap_or_default();
                authority
                    .strip_prefix(host_without_port(authority))
                    .unwrap_or_default()
                    .to_string()
            }
            None => origin
                .authority
                .strip_prefix(origin.hostname())
                .unwrap_or_default()
                .to_string(),
        };
        format!("{}://{session}-{slot}.{suffix}{port}/", self.scheme())
    }

    /// Serves a request for the agent in `slot` of `session`, mounted
    /// `at`.
    async fn agent(
        &self,
        req: Request<RequestBody>,
        session: &str,
        slot: &str,
        at: agent_port::Mount<'_>,
    ) -> Response<Body> {
        let Some(session) = self.registry.get(session) else {
            return no_session(session);
        };
        let Some(agent) = slot
            .parse::<usize>()
            .ok()
            .and_then(|i| session.agent(i))
            .cloned()
        else {
            return error_response(
                StatusCode::NOT_FOUND,
                "agent_not_found",
                format!("session {} has no agent in slot {slot}", session.id),
            );
        };
        agent_port::answer(&session, &agent, req, at, self.limits, &self.drain).await
    }

    /// The base URL of the gateway as the client should use it.
    fn gateway_base(&self, origin: &Origin) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", origin.authority),
        }
    }

    fn components(&self) -> Response<Body> {
        let components: Vec<Value> = self
            .catalog
            .list()
            .iter()
            .map(|c| self.component_json(c))
            .collect();
        json_response(StatusCode::OK, &json!({"components": components}))
    }

    /// `GET /v1/components/{name}`: one loaded component, as the list
    /// shows it (an author checks the upload they just made).
    fn component(&self, name: &str) -> Response<Body> {
        match self.catalog.get(name) {
            Some(c) => json_response(StatusCode::OK, &self.component_json(&c)),
            None => error_response(
                StatusCode::NOT_FOUND,
                "unknown_component",
                format!("no component named {name:?} is loaded (see GET /v1/components)"),
            ),
        }
    }

    /// What the API says about a loaded component: its version, its
    /// card, and whether it sends HTTP requests and where it may.
    fn component_json(&self, c: &LoadedComponent) -> Value {
        let settings = self.registry.settings();
        let info = crate::session::info_from_guest(c.info.clone());
        let granted: Vec<&str> = settings
            .guest_http
            .grants
            .get(&c.name)
            .map(|grants| grants.iter().map(|g| g.as_str()).collect())
            .unwrap_or_default();
        json!({"name": c.name, "hash": c.hash, "bytes": c.bytes,
               "contract": c.contract().as_str(),
               "load_ms": c.load_time.as_secs_f64() * 1e3, "precompiled": c.cached,
               "outbound_http": {"imports": c.sends_http, "allowed_outbound_hosts": granted},
               "card": agent_card(&info, None, true, settings.push, settings.bindings)})
    }

    /// `PUT /v1/components/{name}`: checks the uploaded component as a
    /// load would, then stores it in the agents directory and offers it
    /// to new sessions.
    async fn upload(&self, req: Request<RequestBody>, name: &str) -> Response<Body> {
        if let Err(e) = Catalog::check_name(name) {
            return error_response(StatusCode::BAD_REQUEST, "bad_request", e.to_string());
        }
        let body = match read_body(
            req.into_body(),
            MAX_COMPONENT_BYTES,
            self.limits.body_timeout,
        )
        .await
        {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Uploaded {
            component,
            replaced,
        } = match self.catalog.upload(name, body).await {
            Ok(uploaded) => uploaded,
            Err(e) => {
                let (status, code) = match e {
                    UploadError::Name(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                    UploadError::Invalid(_) => {
                        tracing::warn!(component = %name, "upload refused: {e}");
                        Metrics::count(&metrics().component_reloads, "refused");
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_component")
                    }
                    UploadError::Store { .. } => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "store_failed")
                    }
                };
                return error_response(status, code, e.to_string());
            }
        };
        tracing::info!(component = %name, hash = %&component.hash[..12], "component uploaded");
        Metrics::count(&metrics().component_reloads, "loaded");
        json_response(
            if replaced {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            &self.component_json(&component),
        )
    }

    async fn create(
        &self,
        req: Request<RequestBody>,
        origin: &Origin,
        peer: IpAddr,
    ) -> Response<Body> {
        if self.drain.refuses_sessions() {
            return draining();
        }
        let request: SessionRequest = match read_json_or_default(
            req.into_body(),
            MAX_CONTROL_BODY,
            self.limits.body_timeout,
            "session request",
        )
        .await
        {
            Ok(r) => r,
            Err(r) => return r,
        };
        // A session that names no agents gets the mock draft's drafters.
        let spec = match request.validate(default_lineup) {
            Ok(s) => s,
            Err(why) => {
                return error_response(StatusCode::BAD_REQUEST, "bad_request", why.to_string());
            }
        };
        match self.registry.create(spec, peer).await {
            Ok(session) => json_response(
                StatusCode::CREATED,
                &self.session_json(&session, origin, true),
            ),
            Err(e) => create_refusal(e, peer),
        }
    }

    /// A session as the API shows it. The token appears only in the
    /// create response: it is the session's secret.
    fn session_json(&self, session: &Session, origin: &Origin, with_token: bool) -> Value {
        let gateway = self.gateway_base(origin);
        let agents: Vec<Value> = session
            .agents
            .iter()
            .map(|a| {
                let url = match (session.mode, a.port, &self.host_suffix) {
                    (Mode::Ports, Some(port), _) => {
                        format!("http://{}:{port}/", origin.hostname())
                    }
                    (_, _, Some(suffix)) => {
                        self.agent_host_url(suffix, origin, &session.id, a.slot)
                    }
                    _ => format!("{gateway}/s/{}/{}/", session.id, a.slot),
                };
                let mut v = json!({
                    "slot": a.slot,
                    "name": a.name,
                    "component": a.component,
                    "card_url": format!("{url}.well-known/agent-card.json"),
                    "url": url,
                });
                if let Some(port) = a.port {
                    v["port"] = json!(port);
                }
                v
            })
            .collect();
        let mut v = json!({
            "id": session.id,
            "mode": session.mode,
            "created_at": session.created_at,
            "auth": if session.token().is_some() { "bearer" } else { "none" },
            "agents": agents,
            "budgets": session.budget.report(),
        });
        if let Some(t) = session.expires_at {
            v["expires_at"] = json!(crate::clock::rfc3339(t));
        }
        if let Some(idle) = session.idle_timeout() {
            v["idle_timeout_secs"] = json!(idle.as_secs());
        }
        if with_token && let Some(token) = session.token() {
            v["token"] = json!(token);
        }
        v
    }
}

fn no_session(id: &str) -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "session_not_found",
        format!("no session {id}"),
    )
}
