//! The network edge: the control listener (control API and gateway), one
//! server per agent port, the session reaper, and graceful shutdown.
//! Routing lives here; protocol and sandbox do not.

mod access;
mod admission;
mod agent_port;
mod control;
mod draft_api;
mod http;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use agent_port::PortLimits;
pub use control::ControlApi;
pub use http::RequestBody;

use crate::config::{Config, Mode};
use crate::draft::lineup::ModelAccess;
use crate::egress::{AddressPolicy, Outbound, OutboundSettings};
use crate::guest_http::HttpLimits;
use crate::metrics::{Metrics, metrics};
use crate::ports::PortPool;
use crate::rate::KeyedLimiter;
use crate::runtime::catalog::Catalog;
use crate::runtime::reload::Reload;
use crate::runtime::{Dropped, GuestLimits, Hooks, Runtime};
use crate::session::{GuestHttpSettings, RegistrySettings, ServePort, SessionRegistry};
use access::AdminToken;
use admission::Admission;
use draft_api::DraftApi;

/// How often expired sessions are looked for.
const REAP_EVERY: Duration = Duration::from_millis(250);
/// Longest a shutdown waits for open streams to send their last event.
const STREAMS_CLOSE_WITHIN: Duration = Duration::from_millis(500);
/// How often the agents directory is checked for changed components.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Shutdown state every listener shares: whether the server is draining,
/// the requests in flight, and the signals to stop accepting and to
/// close connections.
#[derive(Default)]
pub struct Drain {
    draining: AtomicBool,
    /// Set when creates are refused: from the start of a session drain.
    refusing_sessions: AtomicBool,
    in_flight: AtomicUsize,
    /// Woken when the last request in flight ends.
    idle: Notify,
    stop_accepting: CancellationToken,
    /// Closes control connections once the grace period is over.
    close_connections: CancellationToken,
}

impl Drain {
    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// True once new sessions are refused: during a session drain and
    /// the shutdown after it. `/readyz` is 503 from then on.
    pub fn refuses_sessions(&self) -> bool {
        self.refusing_sessions.load(Ordering::Relaxed)
    }

    /// Refuses new sessions; the ones held keep being served.
    fn refuse_sessions(&self) {
        self.refusing_sessions.store(true, Ordering::Relaxed);
    }

    /// Counts a request in flight until the guard drops.
    fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Cancelled when the listeners must stop accepting.
    fn stop_accepting(&self) -> &CancellationToken {
        &self.stop_accepting
    }

    /// Starts the drain: new work is refused and listeners stop.
    fn begin(&self) {
        self.refuse_sessions();
        self.draining.store(true, Ordering::Relaxed);
        self.stop_accepting.cancel();
    }

    /// Waits until no request is in flight, or `within` has passed;
    /// returns how many are still running.
    async fn requests_done(&self, within: Duration) -> usize {
        let all_done = async {
            loop {
                let idle = self.idle.notified();
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(within, all_done).await;
        self.in_flight.load(Ordering::Acquire)
    }
}

/// A request in flight: counted while it lives.
struct InFlight(Arc<Drain>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

fn log_reload(outcome: &Reload) {
    let kind = match outcome {
        Reload::Loaded { .. } => "loaded",
        Reload::Refused { .. } => "refused",
        Reload::Removed { .. } => "removed",
    };
    Metrics::count(&metrics().component_reloads, kind);
    match outcome {
        Reload::Loaded { name, hash, took } => tracing::info!(
            component = %name, hash = %&hash[..12], took_ms = took.as_millis() as u64,
            "component reloaded: new sessions get this version"
        ),
        Reload::Refused { name, reason } => tracing::warn!(
            component = %name, "changed component refused, previous version kept: {reason}"
        ),
        Reload::Removed { name } => {
            tracing::info!(component = %name, "component file removed: no longer offered")
        }
    }
}

/// Instance events, counted.
fn metric_hooks() -> Hooks {
    // A guest past its log rate has every further line dropped, one a
    // call: the two series are looked up once, not by label each time.
    let dropped = &metrics().guest_output_dropped;
    let logs = Metrics::series(dropped, "log");
    let emits = Metrics::series(dropped, "emit");
    Hooks {
        on_drop: Some(Arc::new(move |what| {
            let series = match what {
                Dropped::Log => &logs,
                Dropped::Emit => &emits,
            };
            series.inc();
        })),
        on_recycle: Some(Arc::new(|_cause, took| {
            metrics()
                .instance_recycle_seconds
                .observe(took.as_secs_f64());
        })),
        on_long_runner: Some(Arc::new(|| {
            metrics().guest_long_runners.inc();
        })),
    }
}

/// The limits every agent instance runs under (`[limits]`).
fn guest_limits(config: &Config) -> GuestLimits {
    let l = &config.limits;
    GuestLimits {
        memory_bytes: l.memory_mib << 20,
        call_timeout: Duration::from_millis(l.call_timeout_ms),
        max_instances: l.max_instances,
        max_response_bytes: l.max_response_kib << 10,
        table_elements: l.table_elements,
        max_emits_per_call: l.max_emits_per_call,
        log_lines_per_second: l.log_lines_per_second,
        ..GuestLimits::default()
    }
}

/// Outbound connection settings (`[outbound]`, and `push.ca_file` for
/// TLS); `control_port` is the control listener's port as bound, refused
/// as a destination with the agent port range.
fn outbound_settings(config: &Config, control_port: u16) -> anyhow::Result<OutboundSettings> {
    let o = &config.outbound;
    let tls = crate::egress::tls_client(config.push.ca_file.as_deref())
        .map_err(|why| anyhow::anyhow!("push.ca_file: {why}"))?;
    Ok(OutboundSettings {
        policy: AddressPolicy {
            allow_loopback: o.allow_loopback,
            allow_private: o.allow_private,
            own_ports: vec![
                control_port..=control_port,
                config.port_range.0..=config.port_range.1,
            ],
        },
        connect_timeout: Duration::from_millis(o.connect_timeout_ms),
        max_connections: o.max_connections,
        tls: Arc::new(tls),
    })
}

/// What guests may reach over HTTP: the grants parsed, the secrets'
/// values read (from the environment or their files) once, at start.
fn guest_http_settings(config: &Config) -> anyhow::Result<GuestHttpSettings> {
    let grants = config
        .guest_http_grants()?
        .into_iter()
        .map(|(name, grants)| (name, Arc::from(grants)))
        .collect();
    let secrets = config.load_secrets(|var| std::env::var(var).ok())?;
    Ok(GuestHttpSettings {
        grants,
        secrets: Arc::from(secrets),
        limits: HttpLimits {
            request_timeout: Duration::from_millis(config.outbound.request_timeout_ms),
            max_response_bytes: config.outbound.max_response_bytes,
        },
    })
}

/// Runs `job` every `period` until `stop` (a missed tick is not made up).
fn every<F, Fut>(period: Duration, stop: CancellationToken, job: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => job().await,
            }
        }
    })
}

/// A started server: where it listens and how to stop it.
pub struct Server {
    pub addr: SocketAddr,
    registry: Arc<SessionRegistry>,
    listener: TcpListener,
    api: Arc<ControlApi>,
    shutdown: CancellationToken,
    grace: Duration,
    session_drain: Duration,
    admission: Arc<Admission>,
}

impl Server {
    /// Loads the components, binds the control listener and readies the
    /// session registry. Nothing is served until [`run`](Self::run).
    pub async fn bind(config: &Config) -> anyhow::Result<Server> {
        let runtime = Runtime::new(guest_limits(config), metric_hooks())?
            .with_cache(config.agents_dir.join(".precompiled"));
        // Refused components are logged and skipped; the rest are served.
        runtime.load_dir(&config.agents_dir).await?;
        let runtime = Arc::new(runtime);
        let catalog = Arc::new(Catalog::new(
            Arc::clone(&runtime),
            config.agents_dir.clone(),
        ));
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (listen): {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let pool = PortPool::new(addr.ip(), config.port_range.0..=config.port_range.1);
        let limits = PortLimits {
            max_body_bytes: config.http.max_body_bytes,
            header_timeout: Duration::from_secs(config.http.header_timeout_secs),
            body_timeout: Duration::from_secs(config.http.body_timeout_secs),
        };
        let drain = Arc::new(Drain::default());
        let port_drain = Arc::clone(&drain);
        let ports = usize::from(config.port_range.1 - config.port_range.0) + 1;
        let admission = Admission::new(
            config.http.max_connections,
            config.http.max_connections_per_ip,
            ports + config.outbound.max_connections,
        );
        let port_admission = Arc::clone(&admission);
        let serve_port: ServePort = Arc::new(move |session, agent, listener| {
            agent_port::spawn(
                session,
                agent,
                listener,
                limits,
                Arc::clone(&port_drain),
                Arc::clone(&port_admission),
            )
        });
        let seconds = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let registry = Arc::new(SessionRegistry::new(
            runtime,
            pool,
            RegistrySettings {
                instance_id: config.instance_id.clone(),
                allow_open_sessions: config.allow_open_sessions,
                push: config.push.enabled,
                bindings: config.bindings,
                budgets: config.budgets,
                outbound: Arc::new(Outbound::new(outbound_settings(config, addr.port())?)),
                mode: config.mode,
                max_sessions: config.sessions.max_sessions,
                max_sessions_per_ip: config.sessions.max_sessions_per_ip,
                ttl: seconds(config.sessions.ttl_secs),
                idle_timeout: seconds(config.sessions.idle_timeout_secs),
                agent_rate: config.http.agent_rate_per_session,
                guest_http: guest_http_settings(config)?,
            },
            serve_port,
        ));
        let admin = AdminToken::new(config.admin_token.clone());
        let drafts = DraftApi::new(
            Arc::clone(&registry),
            Arc::clone(&catalog),
            addr,
            limits.body_timeout,
            Arc::clone(&drain),
            admin.clone(),
            config.llm.base_url.as_ref().map(|url| ModelAccess {
                base_url: url.trim_end_matches('/').to_string(),
                model: config.llm.model.clone(),
                answer_timeout_ms: config.llm.answer_timeout_ms,
            }),
        );
        let api = Arc::new(ControlApi {
            registry: Arc::clone(&registry),
            listen_authority: addr.to_string(),
            public_url: config.public_url.clone(),
            admin,
            rate: KeyedLimiter::new(config.http.control_rate_per_ip),
            gateway_fallback: config.mode != Mode::Ports,
            limits,
            drain,
            drafts,
            catalog,
            trusted_proxies: config
                .http
                .trusted_proxies
                .parse()
                .map_err(|why| anyhow::anyhow!("http.trusted_proxies: {why}"))?,
            host_suffix: config
                .gateway
                .host_suffix
                .as_ref()
                .map(|s| s.to_ascii_lowercase()),
        });
        Ok(Server {
            addr,
            registry,
            listener,
            api,
            shutdown: CancellationToken::new(),
            grace: Duration::from_secs(config.http.shutdown_grace_secs),
            session_drain: Duration::from_secs(config.http.session_drain_secs),
            admission,
        })
    }

    /// The control listener's handler, to drive the whole HTTP surface
    /// without a socket (the fuzz targets do).
    pub fn control_api(&self) -> Arc<ControlApi> {
        Arc::clone(&self.api)
    }

    /// A handle that begins a graceful shutdown when cancelled.
    pub fn shutdown_handle(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until shutdown and the session drain after it; then stops
    /// accepting, lets requests in flight finish within the grace
    /// period, and ends every session.
    pub async fn run(self) {
        self.log_start();
        let stopping = CancellationToken::new();
        let background = [
            every(REAP_EVERY, stopping.clone(), {
                let registry = Arc::clone(&self.registry);
                move || {
                    let registry = Arc::clone(&registry);
                    async move {
                        registry.reap().await;
                    }
                }
            }),
            every(RELOAD_EVERY, stopping.clone(), {
                let catalog = Arc::clone(&self.api.catalog);
                move || {
                    let catalog = Arc::clone(&catalog);
                    async move {
                        for outcome in catalog.reload().await {
                            log_reload(&outcome);
                        }
                    }
                }
            }),
        ];
        self.accept_until_sessions_drained().await;
        stopping.cancel();
        self.drain(background).await;
    }

    /// Returns at the shutdown signal, or, with a session drain
    /// configured, once the sessions held have all ended or the drain's
    /// time is up. Creates are refused (and `/readyz` is 503) from the
    /// signal on; the sessions held are served as before.
    async fn sessions_drained(&self) {
        self.shutdown.cancelled().await;
        if self.session_drain.is_zero() {
            return;
        }
        self.api.drain.refuse_sessions();
        tracing::info!(
            sessions = self.registry.len(),
            within_secs = self.session_drain.as_secs(),
            "draining sessions: creates refused, the sessions held served until they end"
        );
        let deadline = Instant::now() + self.session_drain;
        while !self.registry.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_start(&self) {
        let components: Vec<String> = self
            .api
            .catalog
            .list()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        tracing::info!(
            components = components.join(","),
            ports = %format!("{}-free-of-{}", self.registry.pool().free(), self.registry.pool().total()),
            "control API listening on http://{}",
            self.addr
        );
    }

    /// Serves control connections until the sessions are drained.
    async fn accept_until_sessions_drained(&self) {
        let drain = &self.api.drain;
        let patience = self.api.limits.patience();
        let drained = self.sessions_drained();
        tokio::pin!(drained);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut drained => return,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "control accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let admitted = match self.admission.admit(Some(peer.ip())) {
                Ok(admitted) => admitted,
                Err(why) => {
                    http::refuse_connection(stream, why.to_string());
                    continue;
                }
            };
            let api = Arc::clone(&self.api);
            let service = hyper::service::service_fn(move |req| {
                let api = Arc::clone(&api);
                async move {
                    let _in_flight = api.drain.request();
                    Ok::<_, Infallible>(
                        http::answer_request(req, |req| api.route(req, peer.ip())).await,
                    )
                }
            });
            // Connections end with the server, after the grace period.
            http::spawn_connection(
                stream,
                service,
                drain.close_connections.clone(),
                patience,
                admitted,
            );
        }
    }

    /// Stops accepting, gives open streams their last event, lets
    /// requests in flight finish within the grace, then ends every
    /// session and closes what is left.
    async fn drain(self, background: [tokio::task::JoinHandle<()>; 2]) {
        drop(self.listener);
        let drain = &self.api.drain;
        drain.begin();
        // Streams get their last event out before anything is closed.
        self.registry.close_streams();
        let streams_closed = Instant::now() + STREAMS_CLOSE_WITHIN;
        while self.registry.open_streams() > 0 && Instant::now() < streams_closed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for task in background {
            let _ = task.await;
        }
        let unfinished = drain.requests_done(self.grace).await;
        let live = self.registry.len();
        self.registry.delete_all().await;
        drain.close_connections.cancel();
        tracing::info!(
            sessions_released = live,
            requests_cut = unfinished,
            "shut down"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_maps_to_the_runtimes_default_limits() {
        let mapped = guest_limits(&Config::default());
        let runtime = GuestLimits::default();
        assert_eq!(mapped.memory_bytes, runtime.memory_bytes);
        assert_eq!(mapped.call_timeout, runtime.call_timeout);
        assert_eq!(mapped.max_instances, runtime.max_instances);
        assert_eq!(mapped.max_response_bytes, runtime.max_response_bytes);
        assert_eq!(mapped.table_elements, runtime.table_elements);
        assert_eq!(mapped.max_emits_per_call, runtime.max_emits_per_call);
        assert_eq!(mapped.log_lines_per_second, runtime.log_lines_per_second);
    }
}
