//! The port pool: hands out *bound* listeners and takes their ports back.
//!
//! There is no bind-then-close probe, so no race with other processes: a
//! port is taken by binding it, and the bound listener is what the caller
//! gets. A port another process holds fails to bind, is skipped, and is
//! tried again on a later take.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Mutex;

use socket2::{Domain, Protocol, Socket, Type};

/// The pool could not supply the ports asked for.
#[derive(Debug, thiserror::Error)]
#[error("no free agent ports: asked for {wanted}, {free} of {total} in the range are free")]
pub struct PortsExhausted {
    pub wanted: usize,
    pub free: usize,
    pub total: usize,
}

/// A listener bound to a port of the pool. Return the port with
/// [`PortPool::release`] after the listener is closed.
#[derive(Debug)]
pub struct Lease {
    pub port: u16,
    pub listener: std::net::TcpListener,
}

/// Ports of one range, on one address.
pub struct PortPool {
    ip: IpAddr,
    total: usize,
    free: Mutex<VecDeque<u16>>,
}

/// Pending connections the kernel queues per agent port.
const BACKLOG: i32 = 1024;

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a released port be bound again while old connections linger
    // in TIME_WAIT; it never lets two listeners share a port.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The "bad ports" of the Fetch standard: browsers, and fetch-based
/// clients such as the official JavaScript A2A SDK, refuse to connect to
/// them, so an agent is never given one.
const FETCH_BLOCKED: [u16; 82] = [
    1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102,
    103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465,
    512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993,
    995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668,
    6669, 6679, 6697, 10080,
];

impl PortPool {
    /// A pool of `range` on `ip`, without the ports browsers and fetch
    /// clients refuse to connect to. Nothing is bound until
    /// [`take`](Self::take).
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Self {
        let free: VecDeque<u16> = range.filter(|p| !FETCH_BLOCKED.contains(p)).collect();
        PortPool {
            ip,
            total: free.len(),
            free: Mutex::new(free),
        }
    }

    /// Binds `n` ports, or none: if fewer than `n` can be bound, the ones
    /// bound are closed and returned and the error says how many are free.
    pub fn take(&self, n: usize) -> Result<Vec<Lease>, PortsExhausted> {
        let mut free = self.lock();
        let mut leases = Vec::with_capacity(n);
        let mut skipped = Vec::new();
        while leases.len() < n {
            let Some(port) = free.pop_front() else { break };
            match bind(SocketAddr::new(self.ip, port)) {
                Ok(listener) => leases.push(Lease { port, listener }),
                Err(e) => {
                    tracing::debug!(port, error = %e, "agent port busy; skipped");
                    skipped.push(port);
                }
            }
        }
        // Busy ports go to the back: tried again, but last.
        free.extend(skipped);
        if leases.len() < n {
            let got = leases.len();
            for lease in leases {
                free.push_front(lease.port);
            }
            return Err(PortsExhausted {
                wanted: n,
                free: free.len().saturating_sub(n - got),
                total: self.total,
            });
        }
        Ok(leases)
    }

    /// Gives ports back. Their listeners must already be closed.
    pub fn release(&self, ports: impl IntoIterator<Item = u16>) {
        self.lock().extend(ports);
    }

    /// Ports not leased (some may be held by other processes).
    pub fn free(&self) -> usize {
        self.lock().len()
    }

    /// Ports in the range.
    pub fn total(&self) -> usize {
        self.total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u16>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ports_browsers_refuse_are_never_given_out() {
        let pool = PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5995..=6005);
        assert_eq!(pool.total(), 10);
        assert!(!pool.lock().contains(&6000));
    }

    fn free_range(len: u16) -> RangeInclusive<u16> {
        // Find a run of ports nobody holds, so the test is not flaky.
        'outer: for start in (20_000..30_000).step_by(len as usize + 7) {
            for p in start..start + len {
                if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_err() {
                    continue 'outer;
                }
            }
            return start..=start + len - 1;
        }
        panic!("no free port run");
    }

    #[test]
    fn take_binds_release_returns_and_busy_ports_are_skipped() {
        let range = free_range(6);
        let held = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, *range.start())).unwrap();
        let pool = PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), range.clone());
        let a = pool.take(5).unwrap();
        assert!(
            a.iter().all(|l| l.port != *range.start()),
            "a held port is skipped"
        );
        let err = pool.take(1).unwrap_err();
        assert_eq!((err.wanted, err.total), (1, 6));
        let ports: Vec<u16> = a.iter().map(|l| l.port).collect();
        drop(a);
        pool.release(ports.clone());
        drop(held);
        let b = pool.take(6).unwrap();
        assert_eq!(b.len(), 6);
    }

    #[test]
    fn a_failed_take_keeps_nothing_bound() {
        let range = free_range(3);
        let pool = PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), range.clone());
        assert!(pool.take(4).is_err());
        assert_eq!(pool.free(), 3);
        for p in range {
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("port was closed");
        }
    }
}
