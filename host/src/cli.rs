//! The `a2a-sandbox` command line: parses flags and hands over to the
//! rest of the library.
//!
//! It lives in the library, not in the binary, so the server's code is
//! compiled once: the binary calls [`main`], which is not generic and
//! not async, and so instantiates nothing of the library's again (a
//! binary that polled the library's futures itself compiled them a
//! second time, about a minute of every release build).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::server::Server;

/// Hosts A2A agents compiled to WebAssembly components: each session gets
/// five agents, each served by its own sandboxed instance on its own port
/// (or path-routed through the gateway).
#[derive(Parser)]
#[command(name = "a2a-sandbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the control API, and agents per session.
    Serve(ConfigArgs),
    /// Print the effective config (defaults, file, environment, flags) as TOML.
    Config(ConfigArgs),
    /// Play the mock draft in the terminal: you are Team 4 against five
    /// AI drafters. Picks are read from standard input, which may be a
    /// pipe or a file.
    Draft(DraftArgs),
    /// Check agent components against the contract before deploying them:
    /// a component of the `agent` world (wit/agent.wit), importing only
    /// what the sandbox grants, with a valid card. Prints one line per
    /// file; exits 1 if any is refused.
    Validate {
        /// Component files (*.wasm), or directories of them (an agents
        /// directory: every *.wasm in it, as `serve` would load them).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct DraftArgs {
    /// A running server to play on; without it, one is started in this
    /// process on a free loopback port and stopped at the end.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Agent components for the server this command starts.
    #[arg(long, value_name = "DIR", default_value = "build/agents")]
    agents_dir: String,
    /// Let the advisor make every one of your picks.
    #[arg(long)]
    auto: bool,
    /// Rounds to draft (1 to 8).
    #[arg(long, value_name = "N")]
    rounds: Option<u8>,
    /// Fixes all randomness: the same seed replays the same draft.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

/// Settings come from defaults, then `--config`, then `A2A_SANDBOX_*`
/// environment variables, then these flags. Every key can be set with
/// `--set KEY=VALUE`; `a2a-sandbox config` lists them all.
#[derive(clap::Args)]
struct ConfigArgs {
    /// A TOML config file.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address of the control API (sessions, components, health, gateway).
    /// [key: listen; default 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Agent ports handed to sessions, five per session, e.g. 5000-9000;
    /// ports another process holds are skipped. [key: port_range]
    #[arg(long, value_name = "LO-HI")]
    port_range: Option<String>,
    /// Directory of agent components (*.wasm); each file's stem is the
    /// component name sessions use. [key: agents_dir; default build/agents]
    #[arg(long, value_name = "DIR")]
    agents_dir: Option<String>,
    /// ports: one TCP port per agent; gateway: path-routed on the control
    /// listener; auto: ports while the pool lasts, then gateway. [key: mode]
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Base URL clients reach this server at, for gateway URLs behind a
    /// proxy. [key: public_url]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Let clients create open sessions ("auth": "none"), whose agents
    /// take calls without a bearer token. [key: allow_open_sessions]
    #[arg(long)]
    allow_open_sessions: bool,
    /// human or json. [key: log_format]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Wall-clock budget of one call into an agent. [key: limits.call_timeout_ms]
    #[arg(long, value_name = "MS")]
    call_timeout_ms: Option<String>,
    /// Linear memory per agent instance. [key: limits.memory_mib]
    #[arg(long, value_name = "MIB")]
    memory_mib: Option<String>,
    /// Agent instances alive at once. [key: limits.max_instances]
    #[arg(long, value_name = "N")]
    max_instances: Option<String>,
    /// Turn push notifications off. [key: push.enabled]
    #[arg(long)]
    no_push: bool,
    /// Any other setting, e.g. --set sessions.idle_timeout_secs=60 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl ConfigArgs {
    fn load(self) -> anyhow::Result<Config> {
        let mut overrides: Vec<(String, String)> = Vec::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                overrides.push((key.to_string(), v));
            }
        };
        put("listen", self.listen);
        put("port_range", self.port_range);
        put("agents_dir", self.agents_dir);
        put("mode", self.mode);
        put("public_url", self.public_url);
        put("log_format", self.log_format);
        put("limits.call_timeout_ms", self.call_timeout_ms);
        put("limits.memory_mib", self.memory_mib);
        put("limits.max_instances", self.max_instances);
        put(
            "allow_open_sessions",
            self.allow_open_sessions.then(|| "true".into()),
        );
        put("push.enabled", self.no_push.then(|| "false".into()));
        for pair in self.set {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--set takes KEY=VALUE, got {pair:?}"))?;
            overrides.push((key.trim().to_string(), value.to_string()));
        }
        Ok(Config::load(
            self.config.as_deref(),
            std::env::vars(),
            &overrides,
        )?)
    }
}

/// Runs the command line the process was started with; a failure is one
/// line on stderr and exit status 2.
pub fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("a2a-sandbox: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Config(args) => {
            print!("{}", args.load()?.to_toml());
            Ok(())
        }
        Command::Validate { paths } => {
            let refused = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(validate(paths))?;
            if refused > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Draft(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(draft(args)),
        Command::Serve(args) => {
            let config = args.load()?;
            // Before any thread allocates: see its doc.
            let tuned = crate::allocator::tune();
            init_logs(config.log_format);
            if let Err(e) = tuned {
                tracing::warn!(
                    "transparent huge pages stay on ({e}): a session create may stall while \
                     the kernel clears a 2 MiB page"
                );
            }
            if let Err(e) = crate::allocator::purge_in_background() {
                tracing::warn!(
                    "cannot start the thread that hands freed memory back ({e}): what was \
                     freed last stays resident while the server is quiet"
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .on_thread_park(crate::allocator::collect_if_asked)
                .enable_all()
                .build()?;
            let served = runtime.block_on(serve(config));
            // Work still running after the drain (a guest blocked in a
            // host call) is abandoned, not waited for.
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            served
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Human => logs.with_ansi(std::io::stdout().is_terminal()).init(),
    }
}

/// Serves until SIGTERM or Ctrl-C, then drains. Whatever guests do, the
/// process ends within `http.session_drain_secs` +
/// `http.shutdown_grace_secs` + 1 s of the signal: a watchdog exits if
/// the drain has not finished by then, and a signal during start-up
/// (components still loading) ends it at once.
async fn serve(config: Config) -> anyhow::Result<()> {
    let grace = std::time::Duration::from_secs(
        config.http.session_drain_secs + config.http.shutdown_grace_secs,
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let signalled = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received; draining");
        signalled.cancel();
        std::thread::spawn(move || {
            std::thread::sleep(grace + std::time::Duration::from_millis(800));
            eprintln!("a2a-sandbox: the drain outlived the grace period; exiting");
            std::process::exit(0);
        });
    });
    let server = tokio::select! {
        server = Server::bind(&config) => server?,
        _ = stop.cancelled() => return Ok(()),
    };
    let server_stop = server.shutdown_handle();
    tokio::spawn(async move {
        stop.cancelled().await;
        server_stop.cancel();
    });
    server.run().await;
    Ok(())
}

/// A directory stands for the components in it. One that cannot be read,
/// or holds none, is a refusal: a deploy check must not pass on nothing.
fn component_paths(paths: Vec<PathBuf>) -> Vec<Result<PathBuf, String>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(Ok(path));
            continue;
        }
        match crate::runtime::component_files(&path) {
            Ok(found) if found.is_empty() => files.push(Err(format!(
                "{}: no components (*.wasm) in this directory",
                path.display()
            ))),
            Ok(found) => files.extend(found.into_iter().map(Ok)),
            Err(e) => files.push(Err(e.to_string())),
        }
    }
    files
}

/// The same check the server runs when it loads a component.
async fn validate(paths: Vec<PathBuf>) -> anyhow::Result<usize> {
    let mut refused = 0;
    for path in component_paths(paths) {
        let path = match path {
            Ok(path) => path,
            Err(why) => {
                refused += 1;
                println!("{why}");
                continue;
            }
        };
        match crate::runtime::validate_file(&path).await {
            Ok(c) => println!(
                "{}: ok — {}, {:?}, {} skill(s), {}{} KiB, checked in {} ms",
                path.display(),
                c.contract(),
                c.info.name,
                c.info.skills.len(),
                if c.sends_http {
                    "sends HTTP requests (only to destinations granted in \
                     [components.NAME] allowed_outbound_hosts), "
                } else {
                    ""
                },
                c.bytes / 1024,
                c.load_time.as_millis()
            ),
            Err(why) => {
                refused += 1;
                println!("{why}");
            }
        }
    }
    Ok(refused)
}

async fn draft(args: DraftArgs) -> anyhow::Result<()> {
    let options = crate::draft::terminal::Options {
        rounds: args.rounds,
        seed: args.seed,
        auto: args.auto,
        echo_input: !std::io::stdin().is_terminal(),
    };
    let mut own_server = None;
    let url = match args.url {
        Some(url) => url,
        None => {
            let overrides = [
                ("listen".to_string(), "127.0.0.1:0".to_string()),
                ("mode".to_string(), "gateway".to_string()),
                ("agents_dir".to_string(), args.agents_dir),
            ];
            let config = Config::load(None, std::env::vars(), &overrides)?;
            let server = Server::bind(&config).await?;
            let url = format!("http://{}", server.addr);
            let stop = server.shutdown_handle();
            own_server = Some((stop, tokio::spawn(server.run())));
            url
        }
    };
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    let played = crate::draft::terminal::play(&url, options, input, &mut std::io::stdout()).await;
    if let Some((stop, server)) = own_server {
        stop.cancel();
        let _ = server.await;
    }
    played
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
