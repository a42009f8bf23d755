//! The `a2a-sandbox` command line. Parses flags and hands over to the
//! library; nothing else happens here.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use a2a_sandbox::a2a::PushPolicy;
use a2a_sandbox::config::{Config, parse_port_range};
use a2a_sandbox::runtime::GuestLimits;
use a2a_sandbox::server::Server;

/// Hosts A2A agents compiled to WebAssembly components: each session gets
/// five TCP ports, each served by its own sandboxed agent instance.
#[derive(Parser)]
#[command(name = "a2a-sandbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the control API, and agent ports per session.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address of the control API (sessions, components, health).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Agent ports to hand to sessions, five per session, e.g. 5000-9000.
    /// Ports that another process holds are skipped.
    #[arg(long, value_name = "LO-HI", default_value = "5000-9000", value_parser = parse_port_range)]
    port_range: (u16, u16),
    /// Directory of agent components (*.wasm); each file's stem is the
    /// component name sessions use.
    #[arg(long, value_name = "DIR", default_value = "build/agents")]
    agents_dir: PathBuf,
    /// Let clients create open sessions (`"auth": "none"`), whose agents
    /// take calls without a bearer token.
    #[arg(long)]
    allow_open_sessions: bool,
    /// Wall-clock budget of one call into an agent, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    call_timeout_ms: u64,
    /// Linear memory per agent instance, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    memory_mib: usize,
    /// Agent instances alive at once across all sessions.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    max_instances: u32,
    /// Largest answer an agent may give per call, in KiB; larger answers
    /// fail the task with -32006.
    #[arg(long, value_name = "KIB", default_value_t = 1024)]
    max_response_kib: usize,
    /// Elements per table in an agent instance.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    table_elements: usize,
    /// Progress updates an agent may emit per call; more are dropped.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_emits_per_call: u32,
    /// Log lines per second an agent instance may write; more are dropped.
    #[arg(long, value_name = "N", default_value_t = 50)]
    log_lines_per_second: u32,
    /// Turn push notifications off: cards say pushNotifications: false and
    /// the push config methods answer -32003.
    #[arg(long)]
    no_push: bool,
    /// Refuse push webhooks on loopback addresses.
    #[arg(long)]
    push_deny_loopback: bool,
    /// Refuse push webhooks on private networks (10/8, 172.16/12, 192.168/16, fc00::/7).
    #[arg(long)]
    push_deny_private: bool,
}

impl ServeArgs {
    fn into_config(self) -> Config {
        Config {
            listen: self.listen,
            port_range: self.port_range,
            agents_dir: self.agents_dir,
            allow_open_sessions: self.allow_open_sessions,
            guest: GuestLimits {
                call_timeout: Duration::from_millis(self.call_timeout_ms),
                memory_bytes: self.memory_mib << 20,
                max_instances: self.max_instances,
                max_response_bytes: self.max_response_kib << 10,
                table_elements: self.table_elements,
                max_emits_per_call: self.max_emits_per_call,
                log_lines_per_second: self.log_lines_per_second,
                ..GuestLimits::default()
            },
            push: PushPolicy {
                enabled: !self.no_push,
                allow_loopback: !self.push_deny_loopback,
                allow_private: !self.push_deny_private,
            },
            ..Config::default()
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config();
            config.validate()?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(config))
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(&config).await?;
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received; releasing sessions");
        stop.cancel();
    });
    server.run().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
