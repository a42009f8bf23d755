//! The draft API on the control listener (`/v1/drafts`) and the page at
//! `/` that plays it. A draft is a session of five drafters plus an
//! engine that calls them over A2A; its id and token are the session's.
//!
//! Drafts are for players, not operators: they need no admin token (a
//! body that picks other components does), and they count against the
//! same session limits as any session.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::control::{ControlApi, create_refusal};
use super::http::{
    Body, RequestBody, error_response, full, json_response, method_not_allowed, read_body,
    read_json_or_default, sse_response,
};
use crate::draft::client::A2aAgent;
use crate::draft::rules::{DEFAULT_ROUNDS, MAX_ROUNDS, team_of};
use crate::draft::{Draft, PickError, Settings, team_cards};
use crate::session::spec::{SlotRequest, SlotSpec, draft_slots};
use crate::session::{Access, Mode, Session, SessionRequest, SessionSpec};

/// Largest draft-create or pick body.
const MAX_DRAFT_BODY: usize = 16 * 1024;
/// Longest persona text.
const MAX_PERSONA_CHARS: usize = 200;
/// How often an idle event stream says it is alive (and keeps the draft's
/// session from expiring while a page watches it).
const HEARTBEAT: Duration = Duration::from_secs(15);

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/draft.js");
const STYLE: &str = include_str!("web/draft.css");

/// The body of `POST /v1/drafts`; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftRequest {
    rounds: Option<u8>,
    seed: Option<u64>,
    /// The advisor picks for the human.
    #[serde(default)]
    auto: bool,
    /// Persona text by team number ("1", "2", "3", "5", "6").
    #[serde(default)]
    personas: HashMap<String, String>,
    /// Other components for the five AI seats (admin only).
    agents: Option<Vec<SlotRequest>>,
}

/// The page and its two assets.
pub(super) fn asset(name: &str) -> Response<Body> {
    let (body, kind) = match name {
        "draft.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "draft.css" => (STYLE, "text/css; charset=utf-8"),
        _ => (PAGE, "text/html; charset=utf-8"),
    };
    let mut r = Response::new(full(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

impl ControlApi {
    /// Routes `/v1/drafts/...`.
    pub(super) async fn drafts(
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
        let runtime = self.registry.runtime();
        let teams: Vec<_> = draft_slots()
            .into_iter()
            .enumerate()
            .map(|(slot, spec)| {
                let description = runtime
                    .component(&spec.component)
                    .map(|c| c.info.description.clone())
                    .unwrap_or_default();
                json!({"team": team_of(slot), "name": spec.name, "component": spec.component,
                       "description": description, "persona": persona_of(&spec)})
            })
            .collect();
        json_response(
            StatusCode::OK,
            &json!({"teams": teams, "rounds": DEFAULT_ROUNDS, "max_rounds": MAX_ROUNDS,
                    "human_team": crate::draft::rules::HUMAN_TEAM}),
        )
    }

    /// The draft and its session, if the request carries the session's
    /// token (`Authorization: Bearer`, or `?token=` where a browser cannot
    /// set headers: EventSource).
    #[allow(clippy::result_large_err)] // the error is the response to send
    fn authorized_draft(
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
        match session.check_access(header.or(query).as_deref()) {
            Access::Granted => Ok((session, draft)),
            Access::Missing => Err(error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a draft needs its token: Authorization: Bearer <token> or ?token=<token>",
            )),
            Access::Wrong => Err(error_response(
                StatusCode::FORBIDDEN,
                "forbidden",
                "that is not this draft's token",
            )),
        }
    }

    async fn create_draft(&self, req: Request<RequestBody>, peer: IpAddr) -> Response<Body> {
        if self.drain.is_draining() {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                "the server is shutting down",
            );
        }
        let admin_refusal = self.check_admin(&req);
        let request: DraftRequest = match read_json_or_default(
            req.into_body(),
            MAX_DRAFT_BODY,
            self.limits.body_timeout,
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
        let (spec, settings) = match draft_spec(request) {
            Ok(s) => s,
            Err(why) => return error_response(StatusCode::BAD_REQUEST, "bad_request", why),
        };
        let personas: Vec<String> = spec.slots.iter().map(persona_of).collect();
        let session = match self.registry.create(spec, peer).await {
            Ok(s) => s,
            Err(e) => return create_refusal(e, peer),
        };
        match self.start_draft(&session, settings, personas).await {
            Ok(draft) => {
                let mut body = draft.snapshot();
                body["token"] = json!(session.token());
                json_response(StatusCode::CREATED, &body)
            }
            Err(why) => {
                self.registry.delete(&session.id).await;
                error_response(StatusCode::BAD_GATEWAY, "draft_start_failed", why)
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
    ) -> Result<Arc<Draft>, String> {
        let mut seats = Vec::new();
        let mut cards = Vec::new();
        for (agent, persona) in session.agents.iter().zip(personas) {
            let url = self.internal_url(session, agent.slot, agent.port);
            let seat = A2aAgent::new(&url, session.token().map(str::to_string), &session.id)?;
            let card = seat
                .card()
                .await
                .map_err(|e| format!("Team {}: {e}", team_of(agent.slot as usize)))?;
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
        let control: SocketAddr = self
            .listen_authority
            .parse()
            .expect("the listen address is a socket address");
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
        let body = match read_body(req.into_body(), MAX_DRAFT_BODY, self.limits.body_timeout).await
        {
            Ok(b) => b,
            Err(r) => return r,
        };
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pick {
            player: String,
        }
        let pick: Pick = match serde_json::from_slice(&body) {
            Ok(p) => p,
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

/// The session request and settings for a draft request, or what is wrong.
fn draft_spec(request: DraftRequest) -> Result<(SessionSpec, Settings), String> {
    let rounds = request.rounds.unwrap_or(DEFAULT_ROUNDS);
    if !(1..=MAX_ROUNDS).contains(&rounds) {
        return Err(format!(
            "rounds must be 1 to {MAX_ROUNDS} (the pool holds 48 players), not {rounds}"
        ));
    }
    let seed = request.seed.unwrap_or_else(rand_seed);
    let mut slots = match request.agents {
        None => draft_slots(),
        Some(agents) if agents.len() == 5 => {
            SessionRequest {
                agents: Some(agents),
                auth: None,
            }
            .validate()?
            .slots
        }
        Some(agents) => {
            return Err(format!(
                "agents must name the 5 AI seats (Teams 1, 2, 3, 5, 6), not {}",
                agents.len()
            ));
        }
    };
    for (key, persona) in &request.personas {
        let slot = match key.parse::<u8>() {
            Ok(team @ (1..=3 | 5 | 6)) => crate::draft::rules::slot_of(team).expect("AI team"),
            _ => {
                return Err(format!(
                    "personas.{key}: personas are keyed by AI team: 1, 2, 3, 5 or 6"
                ));
            }
        };
        let persona = persona.trim();
        if persona.chars().count() > MAX_PERSONA_CHARS {
            return Err(format!(
                "personas.{key} is longer than {MAX_PERSONA_CHARS} characters"
            ));
        }
        let config = &mut slots[slot].config;
        config.retain(|(k, _)| k != "persona");
        if !persona.is_empty() {
            config.push(("persona".into(), persona.into()));
        }
    }
    for (slot, spec) in slots.iter_mut().enumerate() {
        let team = team_of(slot);
        spec.config.retain(|(k, _)| k != "seed" && k != "team");
        spec.config.push(("team".into(), team.to_string()));
        // Each drafter gets its own stream of the draft's randomness.
        let own = seed ^ (team as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        spec.config.push(("seed".into(), own.to_string()));
    }
    Ok((
        SessionSpec {
            slots,
            secured: true,
        },
        Settings {
            rounds,
            seed,
            auto: request.auto,
        },
    ))
}

/// The persona a slot's config sets, or "".
fn persona_of(slot: &SlotSpec) -> String {
    slot.config
        .iter()
        .find(|(k, _)| k == "persona")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A fresh seed when the client gives none: two drafts read differently.
fn rand_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    u64::from_le_bytes(bytes) >> 11
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
                let frame = format!("id: {}\ndata: {event}\n\n", event["seq"]);
                if tx.send(Bytes::from(frame)).await.is_err() {
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
                    if tx.send(Bytes::from_static(b": alive\n\n")).await.is_err() {
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
