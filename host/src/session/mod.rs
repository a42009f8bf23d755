//! Sessions: five (or fewer) agents, each with its own instance, task
//! store and port, and the registry that creates and frees them.
//!
//! Freeing is one path for every reason a session ends: its port servers
//! stop (listeners closed, connections dropped), the ports go back to the
//! pool, and the instances are dropped with the last reference.

mod agent;
pub mod peers;
pub mod spec;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use agent::{GuestBackend, SlotService, info_from_guest};
pub use spec::{SessionRequest, SessionSpec, SlotRequest, SlotSpec};

use crate::a2a::{A2aService, AgentInfo, Capabilities};
use crate::budget::SessionBudget;
use crate::config::Mode;
use crate::config::{BindingSettings, BudgetLimits};
use crate::egress::Outbound;
use crate::guest_http::{Grant, GuestHttp, HttpLimits, Secret, SessionHttp};
use crate::metrics::{Metrics, metrics};
use crate::ports::{Lease, PortPool, PortsExhausted};
use crate::rate::TokenBucket;
use crate::runtime::{CallError, GuestInstance, LoadedComponent, LogTag, Reach, Runtime, guest};
use peers::SessionPeers;

/// An instance started for a slot of a session being created.
struct Started {
    /// The display name the request gave, if any.
    name: Option<String>,
    component: Arc<LoadedComponent>,
    instance: GuestInstance,
    info: guest::Info,
}

/// One agent of a session.
pub struct SlotAgent {
    pub slot: u8,
    pub name: String,
    pub component: String,
    /// The agent's own port, in ports mode.
    pub port: Option<u16>,
    /// The card fields the instance gave at session start.
    pub info: AgentInfo,
    pub service: SlotService,
}

/// A live session.
pub struct Session {
    pub id: String,
    /// The bearer token agent calls must carry; `None` for open sessions.
    token: Option<String>,
    /// How its agents are reached: `Ports` or `Gateway`, never `Auto`.
    pub mode: Mode,
    pub created_at: String,
    /// Who created it (for the per-IP limit).
    pub client_ip: IpAddr,
    pub agents: Vec<Arc<SlotAgent>>,
    shutdown: CancellationToken,
    servers: Mutex<Vec<JoinHandle<()>>>,
    started: Instant,
    /// Milliseconds after `started` of the last traffic.
    last_seen_ms: AtomicU64,
    /// Agent requests this session may still make now.
    agent_rate: Mutex<TokenBucket>,
    /// When the session ends regardless of traffic.
    pub expires_at: Option<SystemTime>,
    idle_timeout: Option<Duration>,
    /// When the reaper is to look at it next (see [`SessionRegistry::reap`]).
    check_at: Mutex<Option<Instant>>,
    /// What the session may make the host hold, and what it holds now.
    pub budget: Arc<SessionBudget>,
}

/// The result of checking a request's bearer token.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    /// The token matches, or none is required.
    Granted,
    /// No bearer token was sent.
    Missing,
    /// A token was sent, but it is not this session's.
    Wrong,
}

/// Checks an `Authorization` header against the token `expected` (none:
/// anyone may pass), in constant time.
pub fn check_bearer(expected: Option<&str>, authorization: Option<&[u8]>) -> Access {
    let Some(expected) = expected else {
        return Access::Granted;
    };
    let Some(given) = authorization.and_then(bearer_token) else {
        return Access::Missing;
    };
    if constant_time_eq(given, expected.as_bytes()) {
        Access::Granted
    } else {
        Access::Wrong
    }
}

impl Session {
    /// Records traffic: the session is not idle.
    pub fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_seen_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last traffic.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// True when the TTL has passed or the session has idled too long.
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|t| SystemTime::now() >= t)
            || self
                .idle_timeout
                .is_some_and(|limit| self.idle_for() >= limit)
    }

    /// The earliest moment the session could have expired as things
    /// stand: its TTL, or its idle timeout counted from the last traffic.
    /// `None` when it never expires.
    fn next_check(&self) -> Option<Instant> {
        let now = Instant::now();
        let ttl = self
            .expires_at
            .map(|t| now + t.duration_since(SystemTime::now()).unwrap_or_default());
        let idle = self.idle_timeout.map(|limit| {
            self.started + Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed)) + limit
        });
        ttl.into_iter().chain(idle).min()
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// Takes one request from the session's rate, or says how long to wait.
    pub fn take_request(&self) -> Result<(), Duration> {
        lock(&self.agent_rate).take()
    }

    /// The agent in `slot`.
    pub fn agent(&self, slot: usize) -> Option<&Arc<SlotAgent>> {
        self.agents.get(slot)
    }

    /// Checks an `Authorization` header value.
    pub fn check_access(&self, authorization: Option<&[u8]>) -> Access {
        check_bearer(self.token.as_deref(), authorization)
    }

    /// The token, for the create response only.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Cancelled when the session ends; port servers watch it.
    pub fn shutdown_signal(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Ends the session's work (queued calls, deliveries, streams), stops
    /// the port servers and waits until their listeners are closed.
    async fn stop_servers(&self) {
        self.budget.end();
        self.shutdown.cancel();
        let servers = std::mem::take(&mut *lock(&self.servers));
        for server in servers {
            let _ = server.await;
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// matched without regard to case (RFC 7235), spaces after it skipped.
pub fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `mutex`'s guard; a panic elsewhere while it was held does not stop
/// the sessions.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the server is full: {max} sessions are alive; try again later")]
    Full { max: usize },
    #[error("{ip} already holds {max} sessions, the most one client may; delete one first")]
    TooManyForIp { ip: IpAddr, max: usize },
    #[error("slot {slot}: no component named {component:?} is loaded (see GET /v1/components)")]
    UnknownComponent { slot: usize, component: String },
    #[error("open sessions (auth \"none\") are not allowed on this server")]
    OpenNotAllowed,
    #[error(transparent)]
    PortsExhausted(#[from] PortsExhausted),
    #[error("the server has no room for more agent instances ({0}); try again later")]
    InstancesExhausted(String),
    #[error("slot {slot} ({component}): {reason}")]
    AgentStart {
        slot: usize,
        component: String,
        reason: String,
    },
}

/// Starts the server of one agent port. Given by the server layer, so
/// sessions know nothing of HTTP.
pub type ServePort = Arc<
    dyn Fn(Arc<Session>, Arc<SlotAgent>, std::net::TcpListener) -> JoinHandle<()> + Send + Sync,
>;

/// Settings the registry needs.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Starts every session id (`{instance}-{uuid}`), so a load balancer
    /// can route a session's requests to this server.
    pub instance_id: Option<String>,
    /// Whether `auth: "none"` is accepted.
    pub allow_open_sessions: bool,
    /// Whether push notifications are offered.
    pub push: bool,
    /// The bindings agents are served over beside JSON-RPC.
    pub bindings: BindingSettings,
    /// What each session may make the host hold.
    pub budgets: BudgetLimits,
    /// The one way out, for webhooks.
    pub outbound: Arc<Outbound>,
    /// Ports, gateway, or ports while they last.
    pub mode: Mode,
    pub max_sessions: usize,
    pub max_sessions_per_ip: usize,
    /// Session lifetime; `None`: unlimited.
    pub ttl: Option<Duration>,
    /// Idle lifetime; `None`: unlimited.
    pub idle_timeout: Option<Duration>,
    /// Agent requests per second per session.
    pub agent_rate: u32,
    /// Outbound HTTP for guests: grants by component, secrets, limits.
    pub guest_http: GuestHttpSettings,
}

/// What guests may reach over HTTP, and within what.
#[derive(Debug, Clone, Default)]
pub struct GuestHttpSettings {
    /// Destinations by component name; a component not here gets none.
    pub grants: HashMap<String, Arc<[Grant]>>,
    pub secrets: Arc<[Secret]>,
    pub limits: HttpLimits,
}

/// Sessions counted against the limits, including ones being created.
#[derive(Default)]
struct Reservations {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A place counted against the session limits for a create in progress;
/// dropping it gives the place back.
struct Reservation<'a> {
    registry: &'a SessionRegistry,
    ip: IpAddr,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.registry.unreserve(self.ip);
    }
}

/// Every live session, by id.
pub struct SessionRegistry {
    runtime: Arc<Runtime>,
    pool: PortPool,
    settings: RegistrySettings,
    serve_port: ServePort,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    /// Sessions that can expire, by when each is next worth a look: the
    /// reaper reads only those that are due, so its work does not grow
    /// with the sessions held.
    expiry: Mutex<BTreeSet<(Instant, String)>>,
    reservations: Mutex<Reservations>,
}

impl SessionRegistry {
    /// A registry that starts instances on `runtime`, leases ports from
    /// `pool` and serves each leased port with `serve_port`.
    pub fn new(
        runtime: Arc<Runtime>,
        pool: PortPool,
        settings: RegistrySettings,
        serve_port: ServePort,
    ) -> Self {
        let registry = SessionRegistry {
            runtime,
            pool,
            settings,
            serve_port,
            sessions: RwLock::new(HashMap::new()),
            expiry: Mutex::new(BTreeSet::new()),
            reservations: Mutex::new(Reservations::default()),
        };
        registry.count_ports();
        registry
    }

    /// Settings sessions are created with.
    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// The sandbox every session's agents run in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The agent port pool.
    pub fn pool(&self) -> &PortPool {
        &self.pool
    }

    /// Counts a session against the limits before it exists, so that
    /// concurrent creates cannot overshoot them.
    fn reserve(&self, ip: IpAddr) -> Result<(), CreateError> {
        let mut r = lock(&self.reservations);
        let max = self.settings.max_sessions;
        if r.total >= max {
            return Err(CreateError::Full { max });
        }
        let max_ip = self.settings.max_sessions_per_ip;
        let mine = r.by_ip.entry(ip).or_insert(0);
        if *mine >= max_ip {
            return Err(CreateError::TooManyForIp { ip, max: max_ip });
        }
        *mine += 1;
        r.total += 1;
        Ok(())
    }

    fn unreserve(&self, ip: IpAddr) {
        let mut r = lock(&self.reservations);
        r.total = r.total.saturating_sub(1);
        if let Some(n) = r.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                r.by_ip.remove(&ip);
            }
        }
    }

    /// Creates a session for `client_ip`: checks the limits and the spec,
    /// starts one instance per slot, then takes ports (or routes through
    /// the gateway) and starts serving.
    pub async fn create(
        &self,
        spec: SessionSpec,
        client_ip: IpAddr,
    ) -> Result<Arc<Session>, CreateError> {
        self.reserve(client_ip)?;
        // Given back unless the session is made, including when this
        // future is dropped half-way (the client left during `init`).
        let reservation = Reservation {
            registry: self,
            ip: client_ip,
        };
        let created = self.create_reserved(spec, client_ip).await;
        if created.is_ok() {
            std::mem::forget(reservation);
        }
        created
    }

    /// Creates a session whose place under the limits is reserved: its
    /// components are found, their instances started and described, its
    /// ports leased, and its agents served.
    async fn create_reserved(
        &self,
        spec: SessionSpec,
        client_ip: IpAddr,
    ) -> Result<Arc<Session>, CreateError> {
        if !spec.secured && !self.settings.allow_open_sessions {
            return Err(CreateError::OpenNotAllowed);
        }
        let components = self.components_of(&spec)?;
        let id = self.new_session_id();
        let budget = SessionBudget::new(Arc::from(id.as_str()), self.settings.budgets);
        let session_peers = Arc::new(SessionPeers::default());
        let started = self
            .start_instances(&id, &spec, components, &budget, &session_peers)
            .await?;
        let (leases, mode) = self.lease_ports(started.len())?;
        let now = SystemTime::now();
        let agents = self.slot_agents(started, &leases, &budget);
        session_peers.set(&agents);
        let session = Arc::new(Session {
            id: id.clone(),
            token: spec.secured.then(new_token),
            mode,
            created_at: crate::clock::rfc3339(now),
            client_ip,
            started: Instant::now(),
            last_seen_ms: AtomicU64::new(0),
            agent_rate: Mutex::new(TokenBucket::new(self.settings.agent_rate)),
            expires_at: self.settings.ttl.map(|ttl| now + ttl),
            idle_timeout: self.settings.idle_timeout,
            check_at: Mutex::new(None),
            agents,
            shutdown: CancellationToken::new(),
            servers: Mutex::new(Vec::new()),
            budget,
        });
        let servers: Vec<JoinHandle<()>> = leases
            .into_iter()
            .zip(&session.agents)
            .map(|(Lease { listener, .. }, agent)| {
                (self.serve_port)(Arc::clone(&session), Arc::clone(agent), listener)
            })
            .collect();
        *lock(&session.servers) = servers;
        self.write().insert(id.clone(), Arc::clone(&session));
        self.schedule(&session);
        let m = metrics();
        m.sessions_created.inc();
        m.sessions_active.inc();
        self.count_ports();
        tracing::info!(session = %id, agents = session.agents.len(), mode = ?mode, client = %client_ip, "session created");
        Ok(session)
    }

    /// A fresh session id, led by this server's instance id if it has
    /// one.
    fn new_session_id(&self) -> String {
        let uuid = uuid::Uuid::new_v4();
        match &self.settings.instance_id {
            Some(instance) => format!("{instance}-{uuid}"),
            None => uuid.to_string(),
        }
    }

    /// The loaded component of each slot.
    fn components_of(&self, spec: &SessionSpec) -> Result<Vec<Arc<LoadedComponent>>, CreateError> {
        spec.slots
            .iter()
            .enumerate()
            .map(|(slot, s)| {
                self.runtime
                    .component(&s.component)
                    .ok_or_else(|| CreateError::UnknownComponent {
                        slot,
                        component: s.component.clone(),
                    })
            })
            .collect()
    }

    /// Starts and describes one instance per slot of session `id`.
    async fn start_instances(
        &self,
        id: &str,
        spec: &SessionSpec,
        components: Vec<Arc<LoadedComponent>>,
        budget: &Arc<SessionBudget>,
        session_peers: &Arc<SessionPeers>,
    ) -> Result<Vec<Started>, CreateError> {
        let session_tag: Arc<str> = Arc::from(id);
        let guest_http = &self.settings.guest_http;
        let granted = |c: &LoadedComponent| {
            guest_http
                .grants
                .get(&c.name)
                .is_some_and(|g| !g.is_empty())
        };
        let session_http = components.iter().any(|c| granted(c)).then(|| {
            SessionHttp::new(
                Arc::clone(&self.settings.outbound),
                Arc::clone(budget),
                self.settings.budgets.outbound_requests_per_second,
                guest_http.limits,
            )
        });
        let mut started = Vec::with_capacity(spec.slots.len());
        for (slot, (slot_spec, component)) in spec.slots.iter().zip(components).enumerate() {
            let mut config = slot_spec.config.clone();
            if let Some(name) = &slot_spec.name {
                config.retain(|(k, _)| k != "name");
                config.push(("name".into(), name.clone()));
            }
            let tag = LogTag {
                session: Arc::clone(&session_tag),
                slot: Some(slot as u8),
                component: Arc::from(component.name.as_str()),
            };
            let fail = |reason: String| CreateError::AgentStart {
                slot,
                component: component.name.clone(),
                reason,
            };
            let http = match (&session_http, guest_http.grants.get(&component.name)) {
                (Some(session), Some(grants)) if !grants.is_empty() => Some(Arc::new(GuestHttp {
                    session: Arc::clone(session),
                    component: Arc::clone(&tag.component),
                    slot: slot as u8,
                    grants: Arc::clone(grants),
                    secrets: guest_http
                        .secrets
                        .iter()
                        .filter(|s| grants.contains(&s.destination))
                        .cloned()
                        .collect(),
                })),
                _ => None,
            };
            let reach = Reach {
                http,
                peers: Some(Arc::clone(session_peers) as Arc<dyn crate::runtime::Peers>),
            };
            let mut instance = self
                .runtime
                .instantiate(&component, config, tag, reach)
                .await
                .map_err(|e| match e {
                    CallError::PoolFull(why) => CreateError::InstancesExhausted(why),
                    other => fail(other.to_string()),
                })?;
            let info = instance.describe().await.map_err(|e| fail(e.to_string()))?;
            started.push(Started {
                name: slot_spec.name.clone(),
                component,
                instance,
                info,
            });
        }
        Ok(started)
    }

    /// Ports for `agents` agents as the serving mode asks, and the mode
    /// the session gets: ports if it got them, else the gateway.
    fn lease_ports(&self, agents: usize) -> Result<(Vec<Lease>, Mode), CreateError> {
        let leases = match self.settings.mode {
            Mode::Ports => self.pool.take(agents)?,
            Mode::Gateway => Vec::new(),
            Mode::Auto => self.pool.take(agents).unwrap_or_default(),
        };
        let mode = if leases.is_empty() {
            Mode::Gateway
        } else {
            Mode::Ports
        };
        Ok((leases, mode))
    }

    /// The session's agents: each started instance behind its A2A
    /// service, charged to `budget`.
    fn slot_agents(
        &self,
        started: Vec<Started>,
        leases: &[Lease],
        budget: &Arc<SessionBudget>,
    ) -> Vec<Arc<SlotAgent>> {
        started
            .into_iter()
            .enumerate()
            .map(|(slot, started)| {
                let info = info_from_guest(started.info);
                let capabilities = Capabilities {
                    streaming: info.streaming,
                    push: self.settings.push,
                    bindings: self.settings.bindings,
                    message_replies: started.component.contract().replies_with_messages(),
                };
                Arc::new(SlotAgent {
                    slot: slot as u8,
                    name: started.name.unwrap_or_else(|| info.name.clone()),
                    component: started.component.name.clone(),
                    port: leases.get(slot).map(|l| l.port),
                    info,
                    service: Arc::new(A2aService::new(
                        GuestBackend::new(started.instance, &started.component.name),
                        capabilities,
                        Arc::clone(budget),
                        Arc::clone(&self.settings.outbound),
                    )),
                })
            })
            .collect()
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.read().get(id).cloned()
    }

    /// Every live session, oldest first.
    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends a session: its listeners are closed and its ports back in the
    /// pool when this returns. False if there was no such session.
    pub async fn delete(&self, id: &str) -> bool {
        let Some(session) = self.write().remove(id) else {
            return false;
        };
        self.release(&session, "deleted").await;
        tracing::info!(session = %id, "session deleted");
        true
    }

    /// Ends every session past its TTL or idle timeout; returns how many.
    pub async fn reap(&self) -> usize {
        let due = {
            let mut queue = lock(&self.expiry);
            let later = queue.split_off(&(Instant::now(), String::new()));
            std::mem::replace(&mut *queue, later)
        };
        let mut expired = Vec::new();
        for (at, id) in due {
            let Some(session) = self.get(&id) else {
                continue;
            };
            if lock(&session.check_at)
                .take_if(|scheduled| *scheduled == at)
                .is_none()
            {
                continue;
            }
            if !session.is_expired() {
                self.schedule(&session);
            } else if let Some(session) = self.write().remove(&id) {
                expired.push(session);
            }
        }
        for session in &expired {
            self.release(session, "expired").await;
            tracing::info!(session = %session.id, idle_ms = session.idle_for().as_millis() as u64, "session expired");
        }
        expired.len()
    }

    /// Puts `session` in the expiry queue at its next check, if it can
    /// expire.
    fn schedule(&self, session: &Session) {
        let Some(at) = session.next_check() else {
            return;
        };
        *lock(&session.check_at) = Some(at);
        lock(&self.expiry).insert((at, session.id.clone()));
    }

    /// Takes `session` out of the expiry queue.
    fn unschedule(&self, session: &Session) {
        if let Some(at) = lock(&session.check_at).take() {
            lock(&self.expiry).remove(&(at, session.id.clone()));
        }
    }

    /// Tells every open stream the server is shutting down; they send a
    /// last event and close. Calls in flight go on.
    pub fn close_streams(&self) {
        for session in self.read().values() {
            session.budget.close_streams();
        }
    }

    /// Streams open now, over all sessions.
    pub fn open_streams(&self) -> usize {
        self.read()
            .values()
            .map(|s| s.budget.used(crate::budget::Kind::Streams))
            .sum()
    }

    /// Ends every session (server shutdown).
    pub async fn delete_all(&self) {
        let all: Vec<_> = self.write().drain().map(|(_, s)| s).collect();
        for session in all {
            self.release(&session, "shutdown").await;
        }
    }

    /// Frees what a session holds; the one path for every reason a
    /// session ends.
    async fn release(&self, session: &Session, reason: &str) {
        self.unschedule(session);
        let held = session.budget.used(crate::budget::Kind::StoreBytes);
        session.stop_servers().await;
        if held >= crate::allocator::COLLECT_AFTER_BYTES {
            crate::allocator::give_back();
        }
        self.pool
            .release(session.agents.iter().filter_map(|a| a.port));
        self.unreserve(session.client_ip);
        let m = metrics();
        m.sessions_active.dec();
        Metrics::count(&m.sessions_ended, reason);
        self.count_ports();
    }

    fn count_ports(&self) {
        let free = self.pool.free();
        let m = metrics();
        m.ports_free.set(free as i64);
        m.ports_in_use
            .set(self.pool.total().saturating_sub(free) as i64);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(
                bearer_token(header.as_bytes()),
                Some(&b"abc"[..]),
                "{header}"
            );
        }
        for header in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "Bear abc"] {
            assert_eq!(bearer_token(header.as_bytes()), None, "{header}");
        }
    }
}

#[cfg(test)]
mod registry_tests {
    //! The registry's accounting, in-process: no component loaded, and a
    //! port server that is never reached.

    use super::*;
    use crate::egress::OutboundSettings;
    use crate::runtime::{GuestLimits, Hooks};

    fn registry(allow_open_sessions: bool) -> SessionRegistry {
        let limits = GuestLimits {
            max_instances: 2,
            ..GuestLimits::default()
        };
        let runtime = Arc::new(Runtime::new(limits, Hooks::default()).unwrap());
        let serve_port: ServePort =
            Arc::new(|_, _, _| tokio::spawn(async { unreachable!("no session is served") }));
        SessionRegistry::new(
            runtime,
            PortPool::new(IpAddr::from([127, 0, 0, 1]), 1..=1),
            RegistrySettings {
                instance_id: None,
                allow_open_sessions,
                push: false,
                bindings: BindingSettings::default(),
                budgets: BudgetLimits::default(),
                outbound: Arc::new(Outbound::new(OutboundSettings {
                    policy: Default::default(),
                    connect_timeout: Duration::from_secs(1),
                    max_connections: 1,
                    tls: Arc::new(crate::egress::tls_client(None).unwrap()),
                })),
                mode: Mode::Gateway,
                max_sessions: 1,
                max_sessions_per_ip: 1,
                ttl: None,
                idle_timeout: None,
                agent_rate: 10,
                guest_http: GuestHttpSettings::default(),
            },
            serve_port,
        )
    }

    fn spec(component: &str, secured: bool) -> SessionSpec {
        SessionSpec {
            slots: vec![SlotSpec {
                component: component.into(),
                name: None,
                config: Vec::new(),
            }],
            secured,
        }
    }

    #[tokio::test]
    async fn a_refused_create_gives_its_place_back() {
        let registry = registry(false);
        let ip = IpAddr::from([192, 0, 2, 1]);
        // The limits are one session, one per address: if a refusal kept
        // its place, the second attempt would be refused for the limit.
        for _ in 0..3 {
            let Err(e) = registry.create(spec("missing", true), ip).await else {
                panic!("no such component")
            };
            assert!(matches!(e, CreateError::UnknownComponent { .. }), "{e}");
            let Err(e) = registry.create(spec("missing", false), ip).await else {
                panic!("open sessions are off")
            };
            assert!(matches!(e, CreateError::OpenNotAllowed), "{e}");
        }
        assert_eq!(registry.len(), 0);
    }

    /// A session with no agents, held by `registry`, that ends after
    /// `idle` without traffic.
    fn held(registry: &SessionRegistry, id: &str, idle: Duration) -> Arc<Session> {
        let session = Arc::new(Session {
            id: id.into(),
            token: None,
            mode: Mode::Gateway,
            created_at: String::new(),
            client_ip: IpAddr::from([192, 0, 2, 1]),
            agents: Vec::new(),
            shutdown: CancellationToken::new(),
            servers: Mutex::new(Vec::new()),
            started: Instant::now(),
            last_seen_ms: AtomicU64::new(0),
            agent_rate: Mutex::new(TokenBucket::new(10)),
            expires_at: None,
            idle_timeout: Some(idle),
            check_at: Mutex::new(None),
            budget: SessionBudget::new(Arc::from(id), BudgetLimits::default()),
        });
        registry.write().insert(id.into(), Arc::clone(&session));
        registry.schedule(&session);
        session
    }

    #[tokio::test]
    async fn the_reaper_ends_due_sessions_requeues_the_rest_and_a_deleted_one_leaves_the_queue() {
        let registry = registry(true);
        held(&registry, "idle", Duration::ZERO);
        let busy = held(&registry, "busy", Duration::from_secs(3600));
        held(&registry, "deleted", Duration::from_secs(3600));
        assert_eq!(lock(&registry.expiry).len(), 3);
        assert!(registry.delete("deleted").await);
        assert_eq!(
            lock(&registry.expiry).len(),
            2,
            "a deleted session leaves the queue"
        );
        assert_eq!(registry.reap().await, 1);
        assert!(registry.get("idle").is_none(), "the idle session ended");
        assert!(registry.get("busy").is_some());
        let queue = lock(&registry.expiry);
        assert_eq!(queue.len(), 1, "only the live session stays queued");
        let (at, id) = queue.first().expect("queued");
        assert_eq!(id, "busy");
        assert_eq!(*lock(&busy.check_at), Some(*at), "at its idle deadline");
    }
}
