//! Which client connections the server takes: at most so many at once in
//! all (sized to leave descriptors for accepting, health checks, reloads
//! and outbound connections), and at most so many from one address on
//! the control listener. A connection over a cap gets one 429 and is
//! closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{Metrics, metrics};

/// Descriptors kept free of client connections: for the listeners'
/// accepts, health checks, the reloader's directory reads and the
/// precompiled cache.
pub const DESCRIPTOR_RESERVE: usize = 128;

/// The process's limit on open descriptors (`ulimit -n`), if known.
pub fn descriptor_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The connection caps every listener shares.
#[derive(Debug)]
pub struct Admission {
    global: Arc<Semaphore>,
    global_limit: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    per_ip_limit: usize,
}

/// A connection's place in the caps, given back when it closes.
#[derive(Debug)]
pub struct Admitted {
    _global: OwnedSemaphorePermit,
    ip: Option<(Arc<Admission>, IpAddr)>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some((admission, ip)) = self.ip.take() {
            let mut counts = admission.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

impl Admission {
    /// Caps of `max_connections` in all (lowered to fit the descriptor
    /// limit less `other_descriptors` and the reserve) and
    /// `max_per_ip` per address on the control listener.
    pub fn new(max_connections: usize, max_per_ip: usize, other_descriptors: usize) -> Arc<Self> {
        let fitting = descriptor_limit()
            .map(|fds| fds.saturating_sub(other_descriptors + DESCRIPTOR_RESERVE))
            .unwrap_or(max_connections);
        let global_limit = max_connections.min(fitting).max(1);
        if global_limit < max_connections {
            tracing::warn!(
                configured = max_connections,
                used = global_limit,
                "http.max_connections lowered to fit the descriptor limit (ulimit -n) beside \
                 listeners, outbound connections and a reserve of {DESCRIPTOR_RESERVE}"
            );
        }
        Arc::new(Admission {
            global: Arc::new(Semaphore::new(global_limit)),
            global_limit,
            per_ip: Mutex::new(HashMap::new()),
            per_ip_limit: max_per_ip,
        })
    }

    /// A place for a connection, counted against `ip` when given (the
    /// control listener), or why there is none.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Admitted, Refused> {
        let global = Arc::clone(&self.global).try_acquire_owned().map_err(|_| {
            Metrics::count(&metrics().budget_refusals, "connections_global");
            Refused::Server(self.global_limit)
        })?;
        let Some(ip) = ip else {
            return Ok(Admitted {
                _global: global,
                ip: None,
            });
        };
        let mut counts = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let mine = counts.entry(ip).or_insert(0);
        if *mine >= self.per_ip_limit {
            Metrics::count(&metrics().budget_refusals, "connections_per_ip");
            return Err(Refused::Address {
                ip,
                limit: self.per_ip_limit,
            });
        }
        *mine += 1;
        Ok(Admitted {
            _global: global,
            ip: Some((Arc::clone(self), ip)),
        })
    }
}

/// Why a connection was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "the server holds {0} client connections, its limit (http.max_connections); retry soon"
    )]
    Server(usize),
    #[error(
        "{ip} holds {limit} connections, the most one address may (http.max_connections_per_ip)"
    )]
    Address { ip: IpAddr, limit: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_places_come_back() {
        let a = Admission::new(3, 2, 0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let one = a.admit(Some(ip)).unwrap();
        let _two = a.admit(Some(ip)).unwrap();
        assert!(matches!(a.admit(Some(ip)), Err(Refused::Address { .. })));
        let _three = a.admit(None).unwrap();
        assert!(matches!(a.admit(None), Err(Refused::Server(3))));
        drop(one);
        assert!(a.admit(Some(ip)).is_ok());
        assert!(descriptor_limit().is_some_and(|n| n > 0));
    }
}
