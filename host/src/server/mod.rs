//! The network edge: the control listener, one server per agent port,
//! and graceful shutdown. Routing lives here; protocol and sandbox do not.

mod agent_port;
mod control;
mod http;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use agent_port::PortLimits;
pub use control::ControlApi;

use crate::config::Config;
use crate::metrics::{Metrics, metrics};
use crate::ports::PortPool;
use crate::runtime::{Dropped, Hooks, Runtime};
use crate::session::{RegistrySettings, ServePort, SessionRegistry};

/// Instance events, counted.
fn metric_hooks() -> Hooks {
    Hooks {
        on_drop: Some(Arc::new(|what| {
            let kind = match what {
                Dropped::Log => "log",
                Dropped::Emit => "emit",
            };
            Metrics::count(&metrics().guest_output_dropped, kind);
        })),
        on_recycle: Some(Arc::new(|_cause, took| {
            metrics()
                .instance_recycle_seconds
                .observe(took.as_secs_f64());
        })),
    }
}

/// A started server: where it listens and how to stop it.
pub struct Server {
    pub addr: SocketAddr,
    registry: Arc<SessionRegistry>,
    listener: TcpListener,
    shutdown: CancellationToken,
}

impl Server {
    /// Loads the components, binds the control listener and readies the
    /// session registry. Nothing is served until [`run`](Self::run).
    pub async fn bind(config: &Config) -> anyhow::Result<Server> {
        let mut runtime = Runtime::new(config.guest, metric_hooks())?;
        runtime.load_dir(&config.agents_dir).await?;
        let runtime = Arc::new(runtime);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (--listen): {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let pool = PortPool::new(addr.ip(), config.port_range.0..=config.port_range.1);
        let limits = PortLimits {
            max_body_bytes: config.max_body_bytes,
        };
        let serve_port: ServePort = Arc::new(move |session, agent, listener| {
            agent_port::spawn(session, agent, listener, limits)
        });
        let registry = Arc::new(SessionRegistry::new(
            runtime,
            pool,
            RegistrySettings {
                allow_open_sessions: config.allow_open_sessions,
                push: config.push,
            },
            serve_port,
        ));
        Ok(Server {
            addr,
            registry,
            listener,
            shutdown: CancellationToken::new(),
        })
    }

    /// A handle that stops [`run`](Self::run) when cancelled.
    pub fn shutdown_handle(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves the control API until shutdown, then ends every session.
    pub async fn run(self) {
        let api = Arc::new(ControlApi {
            registry: Arc::clone(&self.registry),
            default_host: self.addr.ip().to_string(),
        });
        let components: Vec<String> = self
            .registry
            .runtime()
            .components()
            .map(|c| c.name.clone())
            .collect();
        tracing::info!(
            components = components.join(","),
            ports = %format!("{}-free-of-{}", self.registry.pool().free(), self.registry.pool().total()),
            "control API listening on http://{}",
            self.addr
        );
        loop {
            let stream = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "control accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let api = Arc::clone(&api);
            let service = hyper::service::service_fn(move |req| {
                let api = Arc::clone(&api);
                async move { Ok::<_, Infallible>(api.handle(req).await) }
            });
            http::spawn_connection(stream, service, self.shutdown.clone());
        }
        let live = self.registry.len();
        self.registry.delete_all().await;
        tracing::info!(sessions_released = live, "shut down");
    }
}
