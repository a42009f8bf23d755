//! One `Config` for the server: defaults, then a TOML file (`--config`),
//! then `A2A_SANDBOX_*` environment variables, then flags. It is
//! validated once at start, and every error names the key that is wrong.
//!
//! Keys are the TOML paths (`listen`, `sessions.max_sessions`); the
//! environment variable of a key is `A2A_SANDBOX_` and the path in capitals
//! with `.` as `_` (`A2A_SANDBOX_SESSIONS_MAX_SESSIONS`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::guest_http::{Grant, Secret};

/// The prefix of every environment variable the server reads.
pub const ENV_PREFIX: &str = "A2A_SANDBOX_";

/// Everything `serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Control API address. Anything but loopback requires `admin_token`.
    pub listen: SocketAddr,
    /// Base URL clients reach the control listener at (for gateway URLs
    /// and cards behind a proxy), e.g. `https://agents.example.com`.
    /// Unset: taken from each request's `Host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// This server's name among several behind one load balancer
    /// (`A2A_SANDBOX_INSTANCE_ID`, e.g. from the pod name). Every session
    /// id starts with it and a `-`, so a balancer can send each
    /// session's requests, by path or host name, to the server that
    /// holds it. Unset: ids are bare UUIDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Directory of agent components (`*.wasm`).
    pub agents_dir: PathBuf,
    /// How sessions are served: `ports`, `gateway` or `auto`.
    pub mode: Mode,
    /// Agent ports, inclusive, `LO-HI`.
    pub port_range: PortRange,
    /// Bearer token for the control API. Required when `listen` is not
    /// a loopback address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Whether sessions may be created without a bearer token.
    pub allow_open_sessions: bool,
    /// `human` or `json` logs.
    pub log_format: LogFormat,
    pub sessions: SessionLimits,
    pub http: HttpLimits,
    pub limits: AgentLimits,
    /// What each session may make the host hold on its behalf.
    pub budgets: BudgetLimits,
    pub push: PushSettings,
    pub outbound: OutboundConfig,
    pub gateway: GatewaySettings,
    pub bindings: BindingSettings,
    /// What each component is granted, by component name
    /// (`[components.NAME]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentSettings>,
    /// Values the host adds to guests' requests for one destination
    /// (`[secrets.NAME]`); the config holds where to read each value,
    /// never the value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretSettings>,
    pub llm: LlmSettings,
}

/// A language model the draft's drafters ask for their reasoning and
/// trash talk: an OpenAI-compatible chat-completions endpoint. Without
/// `base_url`, drafters use their rule-based lines and nothing leaves
/// the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// The API's base URL: requests go to `{base_url}/chat/completions`
    /// (e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The model to ask for.
    pub model: String,
    /// The `[secrets.NAME]` sent to it (its API key), if it needs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Longest a drafter waits for the model's answer before it uses
    /// its rule-based line.
    pub answer_timeout_ms: u64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            base_url: None,
            model: String::new(),
            secret: None,
            answer_timeout_ms: 3000,
        }
    }
}

impl LlmSettings {
    /// The destination the drafters are granted for it, when it is on.
    pub fn destination(&self) -> Result<Option<Grant>, ConfigError> {
        let Some(url) = &self.base_url else {
            return Ok(None);
        };
        let origin = url
            .split_once("://")
            .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or("")))
            .unwrap_or_default();
        Grant::parse(&origin).map(Some).map_err(|why| {
            invalid(
                "llm.base_url",
                format!("{url:?} is not an http(s) URL: {why}"),
            )
        })
    }
}

/// What one component is granted beyond computing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentSettings {
    /// Destinations its guests may send HTTP requests to:
    /// `scheme://host[:port]`, `*.` for every subdomain of a host.
    pub allowed_outbound_hosts: Vec<String>,
}

/// Where a secret's value comes from and where it may go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSettings {
    /// The environment variable holding the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Or the file holding it (a trailing newline is dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The one destination it is sent to, as a component's grant names it.
    pub destination: String,
    /// The header it is sent in.
    pub header: String,
    /// Written before the value, e.g. `"Bearer "`.
    pub prefix: String,
}

/// The A2A protocol bindings agents are served over, beside JSON-RPC
/// (always on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BindingSettings {
    /// HTTP+JSON (REST) at the specification's paths below each agent's
    /// base URL.
    pub rest: bool,
    /// gRPC (HTTP/2 without TLS) on each agent's own port, and on the
    /// gateway when agents have host names of their own.
    pub grpc: bool,
}

impl Default for BindingSettings {
    fn default() -> Self {
        BindingSettings {
            rest: true,
            grpc: true,
        }
    }
}

/// How the gateway (the control listener) reaches agents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Agents also get host names of their own: `{session}-{slot}.` this
    /// suffix (one wildcard DNS name and certificate for the fleet), with
    /// their card at the root of that host. Unset: path routing only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_suffix: Option<String>,
}

/// How a session's agents are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One TCP port per agent.
    Ports,
    /// Path-routed on the control listener: `/s/{session}/{slot}/`.
    Gateway,
    /// Ports while the pool lasts, gateway after.
    Auto,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// Session counts and lifetimes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionLimits {
    /// Sessions alive at once; more get 503 with Retry-After.
    pub max_sessions: usize,
    /// Sessions one client IP may hold at once; more get 429.
    pub max_sessions_per_ip: usize,
    /// A session ends this long after it was created (0: never).
    pub ttl_secs: u64,
    /// A session with no A2A or control traffic for this long ends (0: never).
    pub idle_timeout_secs: u64,
}

/// What the HTTP listeners allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Largest request body; larger is 413.
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers; a slower client is
    /// disconnected. Also the longest a keep-alive connection may idle.
    pub header_timeout_secs: u64,
    /// Time a client has to send a request's body; a slower one gets 408.
    /// Also the longest a client may take nothing of an answer it has
    /// been sent before it is disconnected.
    pub body_timeout_secs: u64,
    /// Control API requests per second per client IP (bursts of twice); more get 429.
    pub control_rate_per_ip: u32,
    /// Agent requests per second per session (bursts of twice); more get 429.
    pub agent_rate_per_session: u32,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace_secs: u64,
    /// On SIGTERM, how long the server keeps serving the sessions it
    /// holds before it shuts down, while it refuses creates and
    /// `/readyz` is 503 so a balancer sends them elsewhere. Ends early
    /// when the last session ends. 0: shut down at once.
    pub session_drain_secs: u64,
    /// Client connections open at once, all listeners together; lowered
    /// at start to fit `ulimit -n`. More get one 429 and are closed.
    pub max_connections: usize,
    /// Connections one address may hold open to the control listener.
    pub max_connections_per_ip: usize,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` decide the client's
    /// address for per-address quotas: comma-separated CIDRs. Empty: the
    /// peer's address is the client's.
    pub trusted_proxies: String,
}

/// What each agent instance may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentLimits {
    pub memory_mib: usize,
    pub call_timeout_ms: u64,
    /// Instances alive at once across all sessions (the pool's size).
    pub max_instances: u32,
    pub max_response_kib: usize,
    pub table_elements: usize,
    pub max_emits_per_call: u32,
    pub log_lines_per_second: u32,
}

/// Push notification webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushSettings {
    pub enabled: bool,
    /// PEM file of certificate authorities that `https` webhooks may
    /// also chain to (a private CA), beside the public web roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Every connection the host opens on a tenant's behalf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Loopback destinations (127/8, ::1), for tests and sidecars.
    pub allow_loopback: bool,
    /// Private-network destinations (10/8, 172.16/12, 192.168/16, fc00::/7).
    pub allow_private: bool,
    /// Time to open a TCP connection, apart from the request's time.
    pub connect_timeout_ms: u64,
    /// Outbound connections open at once, across all sessions.
    pub max_connections: usize,
    /// Longest a guest's HTTP request may take (never longer than what
    /// is left of the call that makes it).
    pub request_timeout_ms: u64,
    /// Largest response body a guest may read, per request.
    pub max_response_bytes: usize,
}

/// The budgets, one set for every session; the `[budgets]` section of
/// the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetLimits {
    /// Calls that may wait for one agent while it runs another; more are
    /// refused at once.
    pub queued_calls_per_agent: usize,
    /// Bytes of task content (history, artifacts, status messages) all
    /// of a session's task stores may hold, counted as the memory the
    /// content takes.
    pub store_bytes: usize,
    /// Push notification configs alive at once.
    pub push_configs: usize,
    /// Outbound connections (webhook deliveries) open at once.
    pub outbound_connections: usize,
    /// Streams (SSE responses) open at once.
    pub streams: usize,
    /// Client connections open at once to the session's agent ports.
    pub connections: usize,
    /// Guests' HTTP requests in flight at once.
    pub outbound_requests: usize,
    /// Guests' HTTP requests a second.
    pub outbound_requests_per_second: u32,
    /// Bytes guests' HTTP requests may send and receive, over the
    /// session's life.
    pub outbound_bytes: usize,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            queued_calls_per_agent: 4,
            store_bytes: 16 << 20,
            push_configs: 20,
            outbound_connections: 4,
            streams: 16,
            connections: 64,
            outbound_requests: 8,
            outbound_requests_per_second: 20,
            outbound_bytes: 64 << 20,
        }
    }
}

/// An inclusive port range, written `LO-HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange(pub u16, pub u16);

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Why a port range does not parse.
#[derive(Debug, thiserror::Error)]
pub enum PortRangeError {
    #[error("expected LO-HI, e.g. 5000-9000, got {0:?}")]
    Shape(String),
    #[error("{0:?} is not a port number (1-65535)")]
    Port(String),
}

impl FromStr for PortRange {
    type Err = PortRangeError;
    fn from_str(s: &str) -> Result<Self, PortRangeError> {
        let (lo, hi) = s
            .split_once('-')
            .ok_or_else(|| PortRangeError::Shape(s.to_string()))?;
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| PortRangeError::Port(p.to_string()))
        };
        Ok(PortRange(port(lo)?, port(hi)?))
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            instance_id: None,
            agents_dir: PathBuf::from("build/agents"),
            mode: Mode::Auto,
            port_range: PortRange(5000, 9000),
            admin_token: None,
            allow_open_sessions: false,
            log_format: LogFormat::Human,
            sessions: SessionLimits::default(),
            http: HttpLimits::default(),
            limits: AgentLimits::default(),
            budgets: BudgetLimits::default(),
            push: PushSettings::default(),
            outbound: OutboundConfig::default(),
            gateway: GatewaySettings::default(),
            bindings: BindingSettings::default(),
            components: BTreeMap::new(),
            secrets: BTreeMap::new(),
            llm: LlmSettings::default(),
        }
    }
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_sessions: 1000,
            max_sessions_per_ip: 50,
            ttl_secs: 4 * 3600,
            idle_timeout_secs: 15 * 60,
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 1 << 20,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            control_rate_per_ip: 100,
            agent_rate_per_session: 2000,
            shutdown_grace_secs: 10,
            session_drain_secs: 0,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            trusted_proxies: String::new(),
        }
    }
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            memory_mib: 64,
            call_timeout_ms: 5000,
            max_instances: 5_000,
            max_response_kib: 1024,
            table_elements: 20_000,
            max_emits_per_call: 100,
            log_lines_per_second: 50,
        }
    }
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            enabled: true,
            ca_file: None,
        }
    }
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow_loopback: false,
            allow_private: false,
            connect_timeout_ms: 3000,
            max_connections: 256,
            request_timeout_ms: 10_000,
            max_response_bytes: 8 << 20,
        }
    }
}

/// Longest instance id: a session's host name label
/// (`{instance}-{uuid}-{slot}`) must fit DNS's 63 characters.
pub const MAX_INSTANCE_ID: usize = 24;

/// Why `id` cannot start session ids (and host name labels).
fn check_instance_id(id: &str) -> Result<(), String> {
    let fits = !id.is_empty()
        && id.len() <= MAX_INSTANCE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{id:?} must be 1 to {MAX_INSTANCE_ID} lowercase letters, digits and '-', \
             not starting or ending with '-' (a pod name such as a2a-sandbox-0 fits)"
        ))
    }
}

/// A setting that cannot work, named by its key.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("invalid setting {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Every key and its environment variable, with the kind of value it
/// takes (from the defaults, with optional keys filled in).
fn keys() -> Vec<(String, String, toml::Value)> {
    let mut sample = Config {
        public_url: Some(String::new()),
        instance_id: Some(String::new()),
        admin_token: Some(String::new()),
        ..Config::default()
    };
    sample.agents_dir = PathBuf::new();
    sample.push.ca_file = Some(PathBuf::new());
    sample.gateway.host_suffix = Some(String::new());
    sample.llm.base_url = Some(String::new());
    sample.llm.secret = Some(String::new());
    let table = toml::Table::try_from(&sample).expect("the config serialises");
    let mut keys = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(section) => {
                for (inner, value) in section {
                    let path = format!("{key}.{inner}");
                    keys.push((env_name(&path), path, value));
                }
            }
            value => keys.push((env_name(&key), key, value)),
        }
    }
    keys
}

fn env_name(path: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        path.replace('.', "_").to_ascii_uppercase()
    )
}

/// Parses `raw` as the same kind of value as `like`.
fn scalar(key: &str, raw: &str, like: &toml::Value) -> Result<toml::Value, ConfigError> {
    Ok(match like {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| invalid(key, format!("{raw:?} is not a whole number")))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(invalid(key, format!("{raw:?} is not true or false"))),
        }),
        _ => toml::Value::String(raw.to_string()),
    })
}

fn set(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        Some((section, key)) => {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(key.to_string(), value);
            }
        }
        None => {
            table.insert(path.to_string(), value);
        }
    }
}

impl Config {
    /// Builds the config: defaults < `file` < `env` (`A2A_SANDBOX_*`) <
    /// `overrides` (key path, value), then validates it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid("--config", format!("cannot read {}: {e}", path.display()))
                })?;
                text.parse::<toml::Table>().map_err(|e| {
                    invalid("--config", format!("{} is not TOML: {e}", path.display()))
                })?
            }
            None => toml::Table::new(),
        };
        let keys = keys();
        for (name, raw) in env {
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            let Some((_, path, like)) = keys.iter().find(|(env, _, _)| *env == name) else {
                return Err(invalid(&name, "no such setting (see `a2a-sandbox config`)"));
            };
            set(&mut table, path, scalar(path, &raw, like)?);
        }
        for (path, raw) in overrides {
            let Some((_, path, like)) = keys.iter().find(|(_, p, _)| p == path) else {
                return Err(invalid(path, "no such setting (see `a2a-sandbox config`)"));
            };
            set(&mut table, path, scalar(path, raw, like)?);
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                // The key whose value does not fit (serde names unknown
                // keys in its message, and their table as the path).
                let key = e.path().to_string();
                let reason = e.inner().message().to_string();
                match key.as_str() {
                    "." => invalid(file.map_or("config", |_| "--config"), reason),
                    _ => invalid(&key, reason),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Each component's grants, parsed; a grant that is not a
    /// destination names its key.
    pub fn guest_http_grants(&self) -> Result<BTreeMap<String, Vec<Grant>>, ConfigError> {
        let mut grants = BTreeMap::new();
        for (name, settings) in &self.components {
            let key = format!("components.{name}.allowed_outbound_hosts");
            let parsed = settings
                .allowed_outbound_hosts
                .iter()
                .map(|g| Grant::parse(g).map_err(|why| invalid(&key, why)))
                .collect::<Result<Vec<_>, _>>()?;
            grants.insert(name.clone(), parsed);
        }
        // A configured model is granted to every drafter of the draft.
        if let Some(model) = self.llm.destination()? {
            if self.llm.model.trim().is_empty() {
                return Err(invalid("llm.model", "name the model to ask for"));
            }
            if self.llm.answer_timeout_ms == 0 {
                return Err(invalid("llm.answer_timeout_ms", "must be at least 1"));
            }
            for drafter in crate::draft::lineup::DRAFTER_COMPONENTS {
                let granted = grants.entry(drafter.to_string()).or_default();
                if !granted.contains(&model) {
                    granted.push(model.clone());
                }
            }
            if let Some(secret) = &self.llm.secret {
                let bound = self.secrets.get(secret).map(|s| s.destination.as_str());
                if bound.and_then(|d| Grant::parse(d).ok()) != Some(model.clone()) {
                    return Err(invalid(
                        "llm.secret",
                        format!(
                            "name a [secrets.NAME] whose destination is the model's origin, {}",
                            model.as_str()
                        ),
                    ));
                }
            }
        }
        for (name, secret) in &self.secrets {
            let key = |k: &str| format!("secrets.{name}.{k}");
            if secret.env.is_some() == secret.file.is_some() {
                return Err(invalid(
                    &key("env"),
                    "give the value's source: env (a variable) or file, one of them",
                ));
            }
            let destination = Grant::parse(&secret.destination)
                .map_err(|why| invalid(&key("destination"), why))?;
            if !grants.values().flatten().any(|g| *g == destination) {
                return Err(invalid(
                    &key("destination"),
                    format!(
                        "{} is granted to no component: a secret goes only to a granted \
                         destination (components.NAME.allowed_outbound_hosts)",
                        secret.destination
                    ),
                ));
            }
            if hyper::header::HeaderName::try_from(secret.header.as_str()).is_err() {
                return Err(invalid(&key("header"), "not a header name"));
            }
        }
        Ok(grants)
    }

    /// The secrets with their values, read from the environment
    /// (`env`) or their files. An error names the secret, never a value.
    pub fn load_secrets(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Secret>, ConfigError> {
        self.secrets
            .iter()
            .map(|(name, settings)| {
                let key = |k: &str| format!("secrets.{name}.{k}");
                let value = match (&settings.env, &settings.file) {
                    (Some(var), _) => env(var).ok_or_else(|| {
                        invalid(
                            &key("env"),
                            format!("the environment variable {var} is not set"),
                        )
                    })?,
                    (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                        invalid(&key("file"), format!("cannot read {}: {e}", path.display()))
                    })?,
                    (None, None) => return Err(invalid(&key("env"), "no source for the value")),
                };
                let destination = Grant::parse(&settings.destination)
                    .map_err(|why| invalid(&key("destination"), why))?;
                Secret::new(
                    name,
                    &settings.header,
                    &settings.prefix,
                    &value,
                    destination,
                )
                .map_err(|why| invalid(&key("header"), why))
            })
            .collect()
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(id) = &self.instance_id {
            check_instance_id(id).map_err(|why| invalid("instance_id", why))?;
        }
        if let Some(suffix) = &self.gateway.host_suffix {
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            };
            if !suffix.split('.').all(label_ok) {
                return Err(invalid(
                    "gateway.host_suffix",
                    format!("{suffix:?} is not a DNS name (e.g. agents.example.com)"),
                ));
            }
        }
        let PortRange(lo, hi) = self.port_range;
        if lo == 0 || lo > hi {
            return Err(invalid(
                "port_range",
                format!("{lo}-{hi} is empty or starts at 0"),
            ));
        }
        let l = &self.limits;
        if l.memory_mib == 0 {
            return Err(invalid("limits.memory_mib", "must be at least 1"));
        }
        if l.call_timeout_ms < 10 {
            return Err(invalid("limits.call_timeout_ms", "must be at least 10"));
        }
        if l.max_instances < 5 {
            return Err(invalid(
                "limits.max_instances",
                "must hold at least one session of 5",
            ));
        }
        if l.max_response_kib == 0 {
            return Err(invalid("limits.max_response_kib", "must be at least 1"));
        }
        if l.table_elements < 1000 {
            return Err(invalid("limits.table_elements", "must be at least 1000"));
        }
        let b = &self.budgets;
        if b.store_bytes < 1 << 16 {
            return Err(invalid("budgets.store_bytes", "must be at least 65536"));
        }
        // A rate of 0 would refuse every request with a 429 whose
        // Retry-After no wait can honour; a budget of 0, every use.
        for (key, value) in [
            (
                "http.control_rate_per_ip",
                self.http.control_rate_per_ip as usize,
            ),
            (
                "http.agent_rate_per_session",
                self.http.agent_rate_per_session as usize,
            ),
            ("http.max_connections", self.http.max_connections),
            (
                "http.max_connections_per_ip",
                self.http.max_connections_per_ip,
            ),
            ("budgets.streams", b.streams),
            ("budgets.connections", b.connections),
            ("budgets.push_configs", b.push_configs),
            ("budgets.outbound_connections", b.outbound_connections),
            ("budgets.outbound_requests", b.outbound_requests),
            (
                "budgets.outbound_requests_per_second",
                b.outbound_requests_per_second as usize,
            ),
            (
                "outbound.max_response_bytes",
                self.outbound.max_response_bytes,
            ),
            ("budgets.outbound_bytes", b.outbound_bytes),
            ("outbound.max_connections", self.outbound.max_connections),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.outbound.connect_timeout_ms == 0 {
            return Err(invalid("outbound.connect_timeout_ms", "must be at least 1"));
        }
        if self.outbound.request_timeout_ms == 0 {
            return Err(invalid("outbound.request_timeout_ms", "must be at least 1"));
        }
        self.guest_http_grants()?;
        if self.http.max_body_bytes < 1024 {
            return Err(invalid("http.max_body_bytes", "must be at least 1024"));
        }
        if self.http.header_timeout_secs == 0 {
            return Err(invalid("http.header_timeout_secs", "must be at least 1"));
        }
        if self.http.body_timeout_secs == 0 {
            return Err(invalid("http.body_timeout_secs", "must be at least 1"));
        }
        if self.sessions.max_sessions == 0 || self.sessions.max_sessions_per_ip == 0 {
            return Err(invalid(
                "sessions.max_sessions",
                "limits must be at least 1",
            ));
        }
        if self.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err(invalid("admin_token", "must be at least 16 characters"));
        }
        if !self.listen.ip().is_loopback() && self.admin_token.is_none() {
            return Err(invalid(
                "admin_token",
                format!(
                    "the control API listens on {}, which is not loopback: set an admin token \
                     ({ENV_PREFIX}ADMIN_TOKEN) so strangers cannot create sessions",
                    self.listen
                ),
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("public_url", "must start with http:// or https://"));
        }
        Ok(())
    }

    /// The effective config as TOML (the admin token hidden).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.admin_token.is_some() {
            shown.admin_token = Some("(set)".into());
        }
        toml::to_string_pretty(&shown).expect("the config serialises")
    }
}

#[cfg(test)]
mod tests {

    fn with_secret() -> Config {
        let mut config = Config::default();
        config.components.insert(
            "fetcher".into(),
            ComponentSettings {
                allowed_outbound_hosts: vec!["https://api.example.com".into()],
            },
        );
        config.secrets.insert(
            "model".into(),
            SecretSettings {
                env: Some("MODEL_KEY".into()),
                destination: "https://api.example.com".into(),
                header: "authorization".into(),
                prefix: "Bearer ".into(),
                ..SecretSettings::default()
            },
        );
        config
    }

    #[test]
    fn a_configured_model_is_granted_to_the_drafters_and_checked() {
        let mut config = Config::default();
        config.llm.base_url = Some("http://127.0.0.1:11434/v1".into());
        let e = config.validate().unwrap_err();
        assert_eq!(e.key, "llm.model");
        config.llm.model = "llama3".into();
        let grants = config.guest_http_grants().unwrap();
        for drafter in crate::draft::lineup::DRAFTER_COMPONENTS {
            assert!(
                grants[drafter][0].allows(false, "127.0.0.1", 11434),
                "{drafter}"
            );
        }
        assert!(!grants.contains_key("echo"));
        // Its key must be a secret bound to the model's origin.
        config.llm.secret = Some("model".into());
        assert_eq!(config.validate().unwrap_err().key, "llm.secret");
        config.secrets.insert(
            "model".into(),
            SecretSettings {
                env: Some("K".into()),
                destination: "http://127.0.0.1:11434".into(),
                header: "authorization".into(),
                ..SecretSettings::default()
            },
        );
        config.validate().unwrap();
        config.llm.base_url = Some("ftp://x".into());
        assert_eq!(config.validate().unwrap_err().key, "llm.base_url");
    }

    #[test]
    fn secrets_are_read_from_their_source_and_errors_never_hold_a_value() {
        let config = with_secret();
        config.validate().unwrap();
        let secrets = config
            .load_secrets(|var| (var == "MODEL_KEY").then(|| "sk-123".to_string()))
            .unwrap();
        assert_eq!(secrets.len(), 1);
        assert!(!format!("{secrets:?}").contains("sk-123"));
        let e = config.load_secrets(|_| None).unwrap_err();
        assert_eq!(e.key, "secrets.model.env");
        assert!(e.reason.contains("MODEL_KEY is not set"), "{e}");
        // A secret bound to a destination no component is granted.
        let mut config = with_secret();
        config.components.clear();
        let e = config.validate().unwrap_err();
        assert_eq!(e.key, "secrets.model.destination");
        // A value in a header that cannot carry it: the error names the
        // secret, not the value.
        let e = with_secret()
            .load_secrets(|_| Some("line\nbreak-secret".into()))
            .unwrap_err();
        assert!(!e.to_string().contains("break-secret"), "{e}");
    }
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A config file holding `text`, in a directory of this test's own.
    fn config_file(test: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("a2a-config-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, text).unwrap();
        file
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = Config::default();
        c.validate().unwrap();
        let text = c.to_toml();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
        assert!(text.contains("port_range = \"5000-9000\""));
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let file = config_file(
            "layers",
            "mode = \"gateway\"\n[sessions]\nmax_sessions = 7\nttl_secs = 60\n",
        );
        let c = Config::load(
            Some(&file),
            env(&[
                ("A2A_SANDBOX_SESSIONS_MAX_SESSIONS", "9"),
                ("HOME", "/root"),
            ]),
            &[("sessions.ttl_secs".into(), "5".into())],
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Gateway);
        assert_eq!(c.sessions.max_sessions, 9, "env beats the file");
        assert_eq!(c.sessions.ttl_secs, 5, "flags beat env");
    }

    #[test]
    fn instance_ids_fit_a_host_name_label() {
        let with = |id: &str| Config::load(None, env(&[("A2A_SANDBOX_INSTANCE_ID", id)]), &[]);
        assert_eq!(
            with("a2a-sandbox-0").unwrap().instance_id.as_deref(),
            Some("a2a-sandbox-0")
        );
        for bad in ["", "Pod-0", "-a", "a-", "a.b", "a_b", &"x".repeat(25)] {
            let e = with(bad).unwrap_err();
            assert_eq!(e.key, "instance_id", "{bad:?}");
            assert!(e.reason.contains("24"), "{e}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e =
            Config::load(None, env(&[("A2A_SANDBOX_SESSIONS_MAX_SESIONS", "9")]), &[]).unwrap_err();
        assert_eq!(e.key, "A2A_SANDBOX_SESSIONS_MAX_SESIONS");
        let e = Config::load(
            None,
            env(&[("A2A_SANDBOX_HTTP_MAX_BODY_BYTES", "lots")]),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "http.max_body_bytes");
        let e = Config::load(None, [], &[("port_range".into(), "9000-5000".into())]).unwrap_err();
        assert_eq!(e.key, "port_range");
        let e = Config::load(None, [], &[("listen".into(), "0.0.0.0:8080".into())]).unwrap_err();
        assert_eq!(e.key, "admin_token");
        let ok = Config::load(
            None,
            env(&[("A2A_SANDBOX_ADMIN_TOKEN", "0123456789abcdef")]),
            &[("listen".into(), "0.0.0.0:8080".into())],
        );
        assert!(ok.is_ok());
        for key in [
            "http.control_rate_per_ip",
            "http.agent_rate_per_session",
            "budgets.outbound_bytes",
        ] {
            let e = Config::load(None, [], &[(key.into(), "0".into())]).unwrap_err();
            assert_eq!(
                (e.key.as_str(), e.reason.as_str()),
                (key, "must be at least 1")
            );
        }
        let e = Config::load(None, [], &[("port_range".into(), "5000".into())]).unwrap_err();
        assert!(e.reason.contains("LO-HI"), "{e}");
        // A value of the right kind that its type refuses, from a flag or
        // a file: named by its key, not by where it came from.
        let e = Config::load(None, [], &[("listen".into(), "127.0.0.1:99999".into())]).unwrap_err();
        assert_eq!(e.key, "listen", "{e}");
        let file = config_file(
            "keys",
            "[sessions]\nmax_sessions = \"many\"\nttl_secs = 60\n",
        );
        let e = Config::load(Some(&file), [], &[]).unwrap_err();
        assert_eq!(e.key, "sessions.max_sessions", "{e}");
        std::fs::write(&file, "[sessions]\nmax_sesions = 9\n").unwrap();
        let e = Config::load(Some(&file), [], &[]).unwrap_err();
        assert_eq!(e.key, "sessions.max_sesions", "{e}");
    }
}
