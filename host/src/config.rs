//! One `Config` for the server, validated once at start. Every error
//! names the setting that is wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::a2a::PushPolicy;
use crate::runtime::GuestLimits;

/// Everything `serve` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Control API address.
    pub listen: SocketAddr,
    /// Agent ports, inclusive.
    pub port_range: (u16, u16),
    /// Directory of agent components (`*.wasm`).
    pub agents_dir: PathBuf,
    /// Whether sessions may be created without a bearer token.
    pub allow_open_sessions: bool,
    /// Largest JSON-RPC request body on an agent port.
    pub max_body_bytes: usize,
    /// What each agent instance may use: memory, time, output.
    pub guest: GuestLimits,
    /// Push notifications: on or off, and which webhooks are allowed.
    pub push: PushPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            port_range: (5000, 9000),
            agents_dir: PathBuf::from("build/agents"),
            allow_open_sessions: false,
            max_body_bytes: 1 << 20,
            guest: GuestLimits::default(),
            push: PushPolicy::default(),
        }
    }
}

/// A setting that cannot work, named.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("invalid setting {key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        reason: reason.into(),
    }
}

/// Parses `LO-HI`, e.g. `5000-9000`.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("expected LO-HI, e.g. 5000-9000, got {s:?}"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number (1-65535)"))
    };
    Ok((port(lo)?, port(hi)?))
}

impl Config {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (lo, hi) = self.port_range;
        if lo == 0 || lo > hi {
            return Err(invalid(
                "port_range",
                format!("{lo}-{hi} is empty or starts at 0"),
            ));
        }
        let g = &self.guest;
        if g.memory_bytes < 1 << 20 {
            return Err(invalid("memory_bytes", "must be at least 1 MiB"));
        }
        if g.call_timeout < Duration::from_millis(10) {
            return Err(invalid("call_timeout", "must be at least 10 ms"));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if g.max_instances == 0 {
            return Err(invalid("max_instances", "must be at least 1"));
        }
        if g.max_response_bytes < 1024 {
            return Err(invalid("max_response_bytes", "must be at least 1024"));
        }
        if g.table_elements < 1000 {
            return Err(invalid("table_elements", "must be at least 1000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_validate() {
        assert_eq!(parse_port_range("5000-9000"), Ok((5000, 9000)));
        assert!(parse_port_range("5000").is_err());
        assert!(
            parse_port_range("5000-70000")
                .unwrap_err()
                .contains("70000")
        );
        let bad = Config {
            port_range: (9000, 5000),
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "port_range");
        assert!(Config::default().validate().is_ok());
    }
}
