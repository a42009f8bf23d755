//! The draft API on the control listener (`/v1/drafts`) and the page at
//! `/` that plays it. A draft is a session of five drafters plus an
//! engine that calls them over A2A; its id and token are the session's.
//!
//! Drafts are for players, not operators: they need no admin token (a
//! body that picks other components does), and they count against the
//! same session limits as any session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::Drain;
use super::access::{AdminToken, create_refusal, token_refusal};
use super::http::{
    Body, RequestBody, draining, error_response, full, json_response, method_not_allowed,
    read_body, read_json_or_default, sse_response,
};
use crate::a2a::service::deliver;
use crate::config::Mode;
use crate::draft::client::{AskError, DrafterClient};
use crate::draft::lineup::{DraftRequest, ModelAccess, default_lineup, draft_spec, persona_of};
use crate::draft::rules::{DEFAULT_ROUNDS, HUMAN_TEAM, MAX_ROUNDS, team_of};
use crate::draft::{Draft, Drafts, PickError, Settings, team_cards};
use crate::json_object::Object;
use crate::runtime::catalog::Catalog;
use crate::session::{Session, SessionRegistry};

/// Largest draft-create or pick body.
const MAX_DRAFT_BODY: usize = 16 * 1024;
/// How often an idle event stream says it is alive (and keeps the draft's
/// session from expiring while a page watches it).
const HEARTBEAT: Duration = Duration::from_secs(15);

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/draft.js");
const STYLE: &str = include_str!("web/draft.css");
const ICON: &str = include_str!("web/favicon.svg");

/// What the page may load and who may frame it: its own script, style,
/// icon and API, nothing inline, nothing from elsewhere, no frames. The
/// page holds a draft's token; a script injected into it or a page that
/// frames it could use that token.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The page and its assets. The icon answers at `/favicon.ico` too,
/// where browsers look when a page names none. Each is served as its
/// declared type only (`nosniff`) and sends no `Referer` on: the event
/// stream's URL carries the token.
pub(super) fn asset(name: &str) -> Response<Body> {
    let (body, kind) = match name {
        "draft.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "draft.css" => (STYLE, "text/css; charset=utf-8"),
        "favicon.svg" | "favicon.ico" => (ICON, "image/svg+xml"),
        _ => (PAGE, "text/html; charset=utf-8"),
    };
    let mut r = Response::new(full(body));
    let headers = r.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    r
}

/// A drafter the engine could not reach when its draft started.
#[derive(Debug, thiserror::Error)]
#[error("Team {team}: {source}")]
pub struct SeatError {
    team: u8,
    source: AskError,
}

/// The draft router: `/v1/drafts` and below.
pub struct DraftApi {
    registry: Arc<SessionRegistry>,
    /// For the drafters' descriptions.
    catalog: Arc<Catalog>,
    /// The drafts being played.
    drafts: Arc<Drafts>,
    /// The control listener's address: the engine reaches its agents
    /// through it (gateway) or beside it (ports).
    listen: SocketAddr,
    body_timeout: Duration,
    drain: Arc<Drain>,
    /// Needed only to seat other components than the default drafters.
    admin: AdminToken,
    /// The language model the drafters may ask for their lines.
    model: Option<ModelAccess>,
}

impl DraftApi {
    /// Drafts are sessions of `registry`; their engines reach the agents
    /// through `listen`, the control listener's bound address.
    pub fn new(
        registry: Arc<SessionRegistry>,
        catalog: Arc<Catalog>,
        listen: SocketAddr,
        body_timeout: Duration,
        drain: Arc<Drain>,
        admin: AdminToken,
        model: Option<ModelAccess>,
    ) -> Self {
        DraftApi {
            registry,
            catalog,
            drafts: Arc::default(),
            listen,
            body_timeout,
            drain,
            admin,
            model,
        }
    }

    /// Routes `/v1/drafts/...`.
    pub async fn route(
        &self,
        req: Request<RequestBody>,
        segments: &[&str],
        peer: IpAddr,
    ) -> Response<Body> {
        match (req.method().clone(), segments) {
            (Method::GET, ["v1", "drafts"]) => self.lineup(),
            (Method::POST, ["v1", "drafts"]) => self.create_draft(req, peer).await,
            (_, ["v1", "drafts"]) => method_not_allowed("GET, POST"),
            (method, ["v1", "drafts", id, rest @ ..]) => {
                let (session, draft) = match self.authorized_draft(&req, id) {
                    Ok(found) => found,
                    Err(r) => return r,
                };
                session.touch();
                match (method, rest) {
                    (Method::GET, []) => json_response(StatusCode::OK, &draft.snapshot()),
                    (Method::DELETE, []) => {
                        self.registry.delete(id).await;
                        let mut r = Response::new(full(""));
                        *r.status_mut() = StatusCode::NO_CONTENT;
                        r
                    }
                    (_, []) => method_not_allowed("GET, DELETE"),
                    (Method::GET, ["events"]) => events(&req, session, draft),
                    (_, ["events"]) => method_not_allowed("GET"),
                    (Method::POST, ["pick"]) => self.human_pick(req, &draft).await,
                    (_, ["pick"]) => method_not_allowed("POST"),
                    _ => not_found(&req),
                }
            }
            _ => not_found(&req),
        }
    }

    /// The drafters a new draft seats, before it starts: team, name,
    /// component, the component's description and the default persona.
    fn lineup(&self) -> Response<Body> {
        let teams: Vec<_> = default_lineup()
            .into_iter()
            .enumerate()
            .map(|(slot, spec)| {
                let description = self
                    .catalog
                    .get(&spec.component)
                    .map(|c| c.info.description.clone())
                    .unwrap_or_default();
                json!({"team": team_of(slot), "name": spec.name, "component": spec.component,
                       "description": description, "persona": persona_of(&spec)})
            })
            .collect();
        json_response(
            StatusCode::OK,
            &json!({"teams": teams, "rounds": DEFAULT_ROUNDS, "max_rounds": MAX_ROUNDS,
                    "human_team": HUMAN_TEAM}),
        )
    }

    /// The draft and its session, if the request carries the session's
    /// token (`Authorization: Bearer`, or `?token=` where a browser cannot
    /// set headers: EventSource).
    #[allow(clippy::result_large_err)] // the error is the response to send
    /// The draft `id` and its session, if the request carries the
    /// draft's token; else the refusal to send.
    pub(super) fn authorized_draft(
        &self,
        req: &Request<RequestBody>,
        id: &str,
    ) -> Result<(Arc<Session>, Arc<Draft>), Response<Body>> {
        let missing = || {
            error_response(
                StatusCode::NOT_FOUND,
                "draft_not_found",
                format!("no draft {id}"),
            )
        };
        let session = self.registry.get(id).ok_or_else(missing)?;
        let draft = self.drafts.get(id).ok_or_else(missing)?;
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
        let query = query_param(req, "token").map(|t| format!("Bearer {t}").into_bytes());
        let access = session.check_access(header.or(query).as_deref());
        match token_refusal(
            access,
            "a draft needs its token: Authorization: Bearer <token> or ?token=<token>",
            "that is not this draft's token",
        ) {
            None => Ok((session, draft)),
            Some(refused) => Err(refused),
        }
    }

    async fn create_draft(&self, req: Request<RequestBody>, peer: IpAddr) -> Response<Body> {
        if self.drain.refuses_sessions() {
            return draining();
        }
        let admin_refusal = self.admin.refusal(&req);
        let request: DraftRequest = match read_json_or_default(
            req.into_body(),
            MAX_DRAFT_BODY,
            self.body_timeout,
            "draft request",
        )
        .await
        {
            Ok(r) => r,
            Err(r) => return r,
        };
        if request.agents.is_some()
            && let Some(refused) = admin_refusal
        {
            return refused;
        }
        let (spec, settings) = match draft_spec(request, self.model.as_ref()) {
            Ok(s) => s,
            Err(why) => {
                return error_response(StatusCode::BAD_REQUEST, "bad_request", why.to_string());
            }
        };
        let personas: Vec<String> = spec.slots.iter().map(persona_of).collect();
        let session = match self.registry.create(spec, peer).await {
            Ok(s) => s,
            Err(e) => return create_refusal(e, peer),
        };
        match self.start_draft(&session, settings, personas).await {
            Ok(draft) => {
                let mut body = draft.snapshot();
                body.token = session.token().map(str::to_string);
                json_response(StatusCode::CREATED, &body)
            }
            Err(why) => {
                self.registry.delete(&session.id).await;
                error_response(
                    StatusCode::BAD_GATEWAY,
                    "draft_start_failed",
                    why.to_string(),
                )
            }
        }
    }

    /// Connects to the session's agents over A2A, reads their cards and
    /// runs the engine until the draft ends; the draft is forgotten when
    /// its session ends.
    async fn start_draft(
        &self,
        session: &Arc<Session>,
        settings: Settings,
        personas: Vec<String>,
    ) -> Result<Arc<Draft>, SeatError> {
        let mut seats = Vec::new();
        let mut cards = Vec::new();
        for (agent, persona) in session.agents.iter().zip(personas) {
            let url = self.internal_url(session, agent.slot, agent.port);
            let failed = |e: AskError| SeatError {
                team: team_of(agent.slot as usize),
                source: e,
            };
            let seat = DrafterClient::new(&url, session.token().map(str::to_string), &session.id)
                .map_err(|e| failed(e.into()))?;
            let card = seat.card().await.map_err(failed)?;
            let text = |k: &str| card[k].as_str().unwrap_or_default().to_string();
            cards.push((text("name"), text("description"), persona));
            seats.push(seat);
        }
        let draft = Arc::new(Draft::new(session.id.clone(), settings, team_cards(cards)));
        self.drafts.insert(Arc::clone(&draft));
        let (drafts, running, ended) = (
            Arc::clone(&self.drafts),
            Arc::clone(&draft),
            session.shutdown_signal().clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = running.run(&seats) => ended.cancelled().await,
                _ = ended.cancelled() => {}
            }
            drafts.remove(&running.id);
        });
        Ok(draft)
    }

    /// Where this server reaches its own agent: the agent's port, or the
    /// gateway path, on the address the server listens on.
    fn internal_url(&self, session: &Session, slot: u8, port: Option<u16>) -> String {
        let control = self.listen;
        let ip = if control.ip().is_unspecified() {
            match control {
                SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
                SocketAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            }
        } else {
            control.ip()
        };
        match (session.mode, port) {
            (Mode::Ports, Some(port)) => format!("http://{}/", SocketAddr::new(ip, port)),
            _ => format!(
                "http://{}/s/{}/{slot}/",
                SocketAddr::new(ip, control.port()),
                session.id
            ),
        }
    }

    async fn human_pick(&self, req: Request<RequestBody>, draft: &Draft) -> Response<Body> {
        let body = match read_body(req.into_body(), MAX_DRAFT_BODY, self.body_timeout).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pick {
            player: String,
        }
        let pick = match serde_json::from_slice::<Object<Pick>>(&body) {
            Ok(Object(p)) => p,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("expected {{\"player\": \"<name>\"}}: {e}"),
                );
            }
        };
        match draft.choose(&pick.player) {
            Ok(player) => json_response(StatusCode::OK, &json!({"player": player})),
            Err(e) => {
                let (status, code) = match e {
                    PickError::NotYourTurn => (StatusCode::CONFLICT, "not_your_turn"),
                    PickError::Finished => (StatusCode::CONFLICT, "draft_finished"),
                    PickError::Taken(_) => (StatusCode::CONFLICT, "player_taken"),
                    PickError::Unknown(_) => (StatusCode::BAD_REQUEST, "unknown_player"),
                };
                error_response(status, code, e.to_string())
            }
        }
    }
}

/// The value of `name` in the query string, if present.
fn query_param<'a>(req: &'a Request<RequestBody>, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn not_found(req: &Request<RequestBody>) -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such path {}", req.uri().path()),
    )
}

/// The draft's events as server-sent events, from the start (or after
/// `Last-Event-ID` when a browser reconnects), then live until the draft
/// is done. While a watcher is connected, the draft's session stays alive.
fn events(req: &Request<RequestBody>, session: Arc<Session>, draft: Arc<Draft>) -> Response<Body> {
    let resume = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(0, |last| last + 1);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut changes = draft.subscribe();
        let ended = session.shutdown_signal().clone();
        let mut next = resume;
        loop {
            let finished = draft.is_finished();
            for event in draft.events_since(next) {
                let frame = format!("id: {}\ndata: {}\n\n", event.seq, event.json);
                if !deliver(&tx, Bytes::from(frame), &ended).await {
                    return;
                }
                next += 1;
            }
            if finished {
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(HEARTBEAT) => {
                    session.touch();
                    if !deliver(&tx, Bytes::from_static(b": alive\n\n"), &ended).await {
                        return;
                    }
                }
                _ = ended.cancelled() => return,
                _ = tx.closed() => return,
            }
        }
    });
    sse_response(rx)
}
