//! Sessions: five (or fewer) agents, each with its own instance, task
//! store and port, and the registry that creates and frees them.
//!
//! Freeing is one path for every reason a session ends: its port servers
//! stop (listeners closed, connections dropped), the ports go back to the
//! pool, and the instances are dropped with the last reference.

mod agent;
pub mod spec;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use agent::{SlotService, WasmAgent, info_from_guest};
pub use spec::{SessionRequest, SessionSpec, SlotSpec};

use crate::a2a::{A2aService, AgentInfo, Capabilities, PushPolicy};
use crate::metrics::{Metrics, metrics};
use crate::ports::{Lease, PortPool, PortsExhausted};
use crate::runtime::{LogTag, Runtime};

/// How a session's agents are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One TCP port per agent.
    Ports,
}

/// One agent of a session.
pub struct SlotAgent {
    pub slot: u8,
    pub name: String,
    pub component: String,
    pub port: u16,
    /// The card fields the instance gave at session start.
    pub info: AgentInfo,
    pub service: SlotService,
}

/// A live session.
pub struct Session {
    pub id: String,
    /// The bearer token agent calls must carry; `None` for open sessions.
    token: Option<String>,
    pub mode: Mode,
    pub created_at: String,
    pub agents: Vec<Arc<SlotAgent>>,
    shutdown: CancellationToken,
    servers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// The result of checking a request's credentials against a session.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// No bearer token was sent.
    Missing,
    /// A token was sent, but it is not this session's.
    Wrong,
}

impl Session {
    /// Checks an `Authorization` header value.
    pub fn check_access(&self, authorization: Option<&[u8]>) -> Access {
        let Some(token) = &self.token else {
            return Access::Granted;
        };
        let Some(given) = authorization.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return Access::Missing;
        };
        if constant_time_eq(given, token.as_bytes()) {
            Access::Granted
        } else {
            Access::Wrong
        }
    }

    /// The token, for the create response only.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Cancelled when the session ends; port servers watch it.
    pub fn shutdown_signal(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Stops the port servers and waits until their listeners are closed.
    async fn stop_servers(&self) {
        self.shutdown.cancel();
        let servers = std::mem::take(&mut *self.servers.lock().unwrap_or_else(|e| e.into_inner()));
        for server in servers {
            let _ = server.await;
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    BadRequest(String),
    #[error("slot {slot}: no component named {component:?} is loaded (see GET /v1/components)")]
    UnknownComponent { slot: usize, component: String },
    #[error("open sessions (auth \"none\") are not allowed on this server")]
    OpenNotAllowed,
    #[error(transparent)]
    PortsExhausted(#[from] PortsExhausted),
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
    /// Whether `auth: "none"` is accepted.
    pub allow_open_sessions: bool,
    /// Push notification webhooks allowed (and whether push works).
    pub push: PushPolicy,
}

/// Every live session, by id.
pub struct SessionRegistry {
    runtime: Arc<Runtime>,
    pool: PortPool,
    settings: RegistrySettings,
    serve_port: ServePort,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
}

impl SessionRegistry {
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

    /// Creates a session: checks the spec, takes ports, starts one
    /// instance per slot, and starts serving each port.
    pub async fn create(&self, spec: SessionSpec) -> Result<Arc<Session>, CreateError> {
        if !spec.secured && !self.settings.allow_open_sessions {
            return Err(CreateError::OpenNotAllowed);
        }
        let components = spec
            .slots
            .iter()
            .enumerate()
            .map(|(slot, s)| {
                self.runtime
                    .component(&s.component)
                    .cloned()
                    .ok_or_else(|| CreateError::UnknownComponent {
                        slot,
                        component: s.component.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let id = uuid::Uuid::new_v4().to_string();
        let session_tag: Arc<str> = Arc::from(id.as_str());

        let mut started = Vec::with_capacity(spec.slots.len());
        for (slot, (slot_spec, component)) in spec.slots.iter().zip(&components).enumerate() {
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
            let mut instance = self
                .runtime
                .instantiate(component, config, tag)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let info = instance.describe().await.map_err(|e| fail(e.to_string()))?;
            started.push((slot_spec, component, instance, info));
        }

        let leases = self.pool.take(started.len())?;
        let session = Arc::new(Session {
            id: id.clone(),
            token: spec.secured.then(new_token),
            mode: Mode::Ports,
            created_at: crate::clock::now_rfc3339(),
            agents: started
                .into_iter()
                .zip(&leases)
                .enumerate()
                .map(|(slot, ((slot_spec, component, instance, info), lease))| {
                    let info = info_from_guest(info);
                    let capabilities = Capabilities {
                        streaming: info.streaming,
                        push: self.settings.push,
                    };
                    Arc::new(SlotAgent {
                        slot: slot as u8,
                        name: slot_spec.name.clone().unwrap_or_else(|| info.name.clone()),
                        component: component.name.clone(),
                        port: lease.port,
                        info,
                        service: Arc::new(A2aService::new(
                            WasmAgent::new(instance, &component.name),
                            capabilities,
                        )),
                    })
                })
                .collect(),
            shutdown: CancellationToken::new(),
            servers: std::sync::Mutex::new(Vec::new()),
        });
        let servers: Vec<JoinHandle<()>> = leases
            .into_iter()
            .zip(&session.agents)
            .map(|(Lease { listener, .. }, agent)| {
                (self.serve_port)(Arc::clone(&session), Arc::clone(agent), listener)
            })
            .collect();
        *session.servers.lock().unwrap_or_else(|e| e.into_inner()) = servers;
        self.write().insert(id.clone(), Arc::clone(&session));
        let m = metrics();
        m.sessions_created.inc();
        m.sessions_active.inc();
        self.count_ports();
        tracing::info!(session = %id, agents = session.agents.len(), "session created");
        Ok(session)
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
        session.stop_servers().await;
        self.pool.release(session.agents.iter().map(|a| a.port));
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
