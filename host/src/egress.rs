//! The one way out: every connection the host opens on a tenant's behalf
//! (webhooks today) goes through [`Outbound`], which resolves the name at
//! connect time, checks every address with one classifier
//! ([`AddressPolicy`]), and connects only to a checked address, within a
//! connect timeout, a global cap and the session's own cap. Requests go
//! over it with the host's one HTTP client ([`crate::http_client`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The TLS client settings for `https` destinations: the public web
/// roots, plus the certificates of `extra_roots` (PEM) if given. Host
/// names are verified.
pub fn tls_client(extra_roots: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_roots {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {shown}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{shown} is not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{shown} holds no certificate"));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{shown}: a certificate is not usable as a root: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

use crate::budget::{Held, Kind, OverBudget, SessionBudget};
use crate::http_client::{self, Answer, ClientError, Outgoing, Target};
use crate::metrics::{Metrics, metrics};

/// Host names that always mean cloud instance metadata.
const METADATA_HOSTS: [&str; 4] = [
    "metadata.google.internal",
    "metadata",
    "instance-data",
    "metadata.azure.internal",
];

/// Which addresses the host may connect to for a tenant. The default
/// refuses loopback and private networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Loopback (127/8, ::1): tests and sidecars only.
    pub allow_loopback: bool,
    /// Private networks (10/8, 172.16/12, 192.168/16, fc00::/7).
    pub allow_private: bool,
    /// The host's own ports (control listener, agent port range): refused
    /// on every address of this machine, whatever else is allowed.
    pub own_ports: Vec<RangeInclusive<u16>>,
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is refused: {why}")]
pub struct Refused {
    pub addr: String,
    pub why: &'static str,
}

/// Why an outbound request was not made or not answered.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    #[error("the server has {0} outbound connections open, its limit (outbound.max_connections)")]
    ServerCap(usize),
    #[error("cannot resolve {host}: {why}")]
    Resolve { host: String, why: String },
    #[error("connect {addr}: {why}")]
    Connect { addr: SocketAddr, why: String },
    #[error("{0}")]
    Url(String),
    #[error("TLS with {host}: {why}")]
    Tls { host: String, why: String },
    #[error(transparent)]
    Http(#[from] ClientError),
}

/// What kind of address an IP is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Public,
    Loopback,
    Private,
    /// Never reachable through the policy, with the reason.
    Forbidden(&'static str),
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    let in_net = |net: [u8; 4], bits: u32| {
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
    };
    if o[0] == 0 {
        Class::Forbidden("unspecified and 'this network' addresses (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_link_local() {
        Class::Forbidden("link-local and cloud-metadata addresses (169.254.0.0/16)")
    } else if o == [100, 100, 100, 200] || o == [192, 0, 0, 192] {
        Class::Forbidden("cloud-metadata addresses")
    } else if in_net([100, 64, 0, 0], 10) {
        Class::Forbidden("carrier-grade NAT addresses (100.64.0.0/10)")
    } else if ip.is_multicast() || o[0] >= 240 {
        Class::Forbidden("multicast, broadcast and reserved addresses")
    } else if in_net([192, 0, 2, 0], 24)
        || in_net([198, 51, 100, 0], 24)
        || in_net([203, 0, 113, 0], 24)
    {
        Class::Forbidden("documentation addresses")
    } else if in_net([198, 18, 0, 0], 15) {
        Class::Forbidden("benchmarking addresses (198.18.0.0/15)")
    } else if in_net([192, 0, 0, 0], 24) || in_net([192, 88, 99, 0], 24) {
        Class::Forbidden("protocol-assignment and relay addresses")
    } else if ip.is_private() {
        Class::Private
    } else {
        Class::Public
    }
}

/// The IPv4 address an IPv6 address carries, where it carries one
/// (mapped, compatible, NAT64, 6to4, Teredo): such an address reaches
/// the IPv4 one and is judged as it.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return vec![v4];
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        // IPv4-compatible (::a.b.c.d), deprecated but still routed by some.
        return vec![tail];
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        // NAT64: the well-known prefix and the local-use one.
        return vec![tail];
    }
    if s[0] == 0x2002 {
        // 6to4: the IPv4 address follows the prefix.
        return vec![Ipv4Addr::new(o[2], o[3], o[4], o[5])];
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: the server, and the client's address inverted.
        let server = Ipv4Addr::new(o[4], o[5], o[6], o[7]);
        let client = Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]);
        return vec![server, client];
    }
    Vec::new()
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    let embedded = embedded_v4(ip);
    if !embedded.is_empty() {
        // The strictest class of what it carries.
        let classes: Vec<Class> = embedded.into_iter().map(classify_v4).collect();
        return classes
            .iter()
            .copied()
            .find(|c| matches!(c, Class::Forbidden(_)))
            .or_else(|| classes.iter().copied().find(|c| *c == Class::Loopback))
            .or_else(|| classes.iter().copied().find(|c| *c == Class::Private))
            .unwrap_or(Class::Public);
    }
    if ip.is_unspecified() {
        Class::Forbidden("the unspecified address (::)")
    } else if ip.is_loopback() {
        Class::Loopback
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Class::Forbidden("link-local addresses (fe80::/10)")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Class::Forbidden("site-local addresses (fec0::/10)")
    } else if ip.is_multicast() {
        Class::Forbidden("multicast addresses (ff00::/8)")
    } else if s[0] == 0xfd00 && s[1] == 0x0ec2 {
        Class::Forbidden("cloud-metadata addresses")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Class::Forbidden("documentation addresses (2001:db8::/32)")
    } else if s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0 {
        Class::Forbidden("benchmarking addresses (2001:2::/48)")
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        Class::Forbidden("discard-only addresses (100::/64)")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Class::Private
    } else {
        Class::Public
    }
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// True when `ip` is an address of this machine: one the host could be
/// listening on.
fn is_own_address(ip: IpAddr) -> bool {
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        return is_own_address(IpAddr::V4(v4));
    }
    // Binding succeeds only on a local address.
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

impl AddressPolicy {
    /// Checks one address the host is about to connect to. Refusals are
    /// counted (`outbound_refused`).
    pub fn check(&self, addr: SocketAddr) -> Result<(), Refused> {
        let refuse = |why| {
            metrics().outbound_refused.inc();
            Err(Refused {
                addr: addr.to_string(),
                why,
            })
        };
        match classify(addr.ip()) {
            Class::Forbidden(why) => return refuse(why),
            Class::Loopback if !self.allow_loopback => {
                return refuse(
                    "loopback addresses are not allowed on this server (outbound.allow_loopback)",
                );
            }
            Class::Private if !self.allow_private => {
                return refuse(
                    "private-network addresses are not allowed on this server (outbound.allow_private)",
                );
            }
            _ => {}
        }
        if self.own_ports.iter().any(|r| r.contains(&addr.port())) && is_own_address(addr.ip()) {
            return refuse("it is this server's own listener");
        }
        Ok(())
    }

    /// Checks a host name before any lookup: metadata names are refused.
    pub fn check_name(&self, host: &str) -> Result<(), Refused> {
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        if METADATA_HOSTS.contains(&lower.as_str()) {
            metrics().outbound_refused.inc();
            return Err(Refused {
                addr: host.to_string(),
                why: "cloud-metadata host names",
            });
        }
        Ok(())
    }

    /// Checks what can be checked of `host` without a lookup: a metadata
    /// name, and the address a host written as an address stands for
    /// (`literal_address`). That address, when the host is one.
    pub fn check_unresolved(&self, host: &str, port: u16) -> Result<Option<SocketAddr>, Refused> {
        self.check_name(host)?;
        let Some(ip) = literal_address(host.trim_matches(['[', ']'])) else {
            return Ok(None);
        };
        let addr = SocketAddr::new(ip, port);
        self.check(addr)?;
        Ok(Some(addr))
    }

    /// Resolves `host` and checks every address it gives: all must pass.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        if let Some(addr) = self.check_unresolved(host, port)? {
            return Ok(vec![addr]);
        }
        let host = host.trim_matches(['[', ']']);
        let unresolved = |why: String| OutboundError::Resolve {
            host: host.to_string(),
            why,
        };
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| unresolved(format!("no answer within {RESOLVE_TIMEOUT:?}")))?
                .map_err(|e| unresolved(e.to_string()))?
                .collect();
        if addrs.is_empty() {
            return Err(unresolved("it has no address".into()));
        }
        for addr in &addrs {
            self.check(*addr)?;
        }
        Ok(addrs)
    }
}

/// The address a host written as an address stands for: an IP literal,
/// or IPv4 in the other forms the system's resolver also reads as one
/// (`inet_aton`: 1 to 4 parts, each decimal, `0x` hex or `0` octal, the
/// last filling the bytes left: `0x7f000001`, `2130706433`, `0177.1`,
/// `127.1`). Such a host is checked as the address it is, before any
/// lookup, so every spelling of a refused address is refused alike.
fn literal_address(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let mut values = Vec::with_capacity(4);
    for part in host.split('.') {
        let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
            None => (part, 10),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) || values.len() == 4 {
            return None;
        }
        values.push(u64::from_str_radix(digits, radix).ok()?);
    }
    let (last, leading) = values.split_last()?;
    let room = 32 - 8 * leading.len() as u32;
    if leading.iter().any(|v| *v > 255) || *last >= 1u64 << room {
        return None;
    }
    let address = leading
        .iter()
        .enumerate()
        .fold(*last, |a, (i, v)| a | v << (24 - 8 * i as u32));
    Some(IpAddr::V4(Ipv4Addr::from(address as u32)))
}

/// Longest a name lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Outbound connection settings.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub policy: AddressPolicy,
    /// How `https` destinations are verified: the roots a certificate
    /// must chain to; host names are always checked.
    pub tls: Arc<rustls::ClientConfig>,
    /// Time to establish a TCP connection, apart from the request's time.
    pub connect_timeout: Duration,
    /// Outbound connections open at once, across all sessions.
    pub max_connections: usize,
}

/// The host's outbound connector: policy, timeouts and caps.
#[derive(Debug)]
pub struct Outbound {
    settings: OutboundSettings,
    global: Arc<Semaphore>,
}

/// An open outbound connection and its place in the caps.
pub struct Connection {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    /// Keep it as long as the connection is open.
    pub permit: ConnectionPermit,
}

/// A connection's place in the global and the session's caps, given
/// back when dropped.
pub struct ConnectionPermit {
    _global: OwnedSemaphorePermit,
    _session: Held,
}

impl Outbound {
    /// A connector with `settings`; no connection is open yet.
    pub fn new(settings: OutboundSettings) -> Self {
        let global = Arc::new(Semaphore::new(settings.max_connections));
        Outbound { settings, global }
    }

    /// How `https` destinations are verified.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.settings.tls)
    }

    /// The address policy every connection is held to.
    pub fn policy(&self) -> &AddressPolicy {
        &self.settings.policy
    }

    /// Connects to `host:port` for `budget`'s session: resolves now,
    /// checks every address, and tries the checked addresses in turn.
    /// Over a cap or past the connect timeout is an error, never a wait.
    pub async fn connect(
        &self,
        budget: &Arc<SessionBudget>,
        host: &str,
        port: u16,
    ) -> Result<Connection, OutboundError> {
        let session = budget.try_take(Kind::OutboundConnections, 1)?;
        let global = Arc::clone(&self.global).try_acquire_owned().map_err(|_| {
            Metrics::count(&metrics().budget_refusals, "outbound_connections_global");
            OutboundError::ServerCap(self.settings.max_connections)
        })?;
        let addrs = self.settings.policy.resolve(host, port).await?;
        let mut last = None;
        for addr in addrs {
            let timeout = self.settings.connect_timeout;
            let why = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Connection {
                        stream,
                        addr,
                        permit: ConnectionPermit {
                            _global: global,
                            _session: session,
                        },
                    });
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {timeout:?}"),
            };
            last = Some(OutboundError::Connect { addr, why });
        }
        Err(last.unwrap_or_else(|| OutboundError::Resolve {
            host: host.to_string(),
            why: "it has no address".into(),
        }))
    }

    /// Sends one request to `to` for `budget`'s session over a connection
    /// of its own (checked and capped as [`connect`](Self::connect) does),
    /// and reads the answer to `limit` bytes. The connection and its
    /// place in the caps last as long as the request.
    pub async fn request(
        &self,
        budget: &Arc<SessionBudget>,
        to: &Destination,
        request: Outgoing<'_>,
        limit: usize,
    ) -> Result<Answer, OutboundError> {
        let target = &to.0;
        let connection = self.connect(budget, &target.host, target.port).await?;
        let _permit = connection.permit;
        if !target.tls {
            return Ok(
                http_client::exchange(connection.stream, &target.authority, request, limit).await?,
            );
        }
        let tls_failed = |why: String| OutboundError::Tls {
            host: target.host.clone(),
            why,
        };
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| tls_failed(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(&self.settings.tls))
            .connect(name, connection.stream)
            .await
            .map_err(|e| tls_failed(e.to_string()))?;
        Ok(http_client::exchange(stream, &target.authority, request, limit).await?)
    }
}

/// An `http` or `https` URL the host may be asked to call (a webhook),
/// checked as far as it can be before delivery: a literal address against
/// the policy now, a name at every connect (a name that does not resolve
/// now is accepted).
#[derive(Debug, Clone)]
pub struct Destination(Target);

impl Destination {
    /// Checks `url` against `policy`.
    pub fn parse(url: &str, policy: &AddressPolicy) -> Result<Destination, OutboundError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            return Err(OutboundError::Url(format!(
                "url must be an http or https URL, not {url:?}"
            )));
        }
        let target = Target::parse(url).map_err(|e| OutboundError::Url(e.to_string()))?;
        policy.check_unresolved(&target.host, target.port)?;
        Ok(Destination(target))
    }

    /// The path and query to request.
    pub fn path(&self) -> &str {
        &self.0.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(loopback: bool, private: bool) -> AddressPolicy {
        AddressPolicy {
            allow_loopback: loopback,
            allow_private: private,
            own_ports: vec![8080..=8080, 5000..=5004],
        }
    }

    fn refused(p: &AddressPolicy, addr: &str) -> bool {
        p.check(addr.parse().unwrap()).is_err()
    }

    #[test]
    fn every_spelling_of_an_address_is_that_address() {
        for (host, ip) in [
            ("127.0.0.1", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("169.254.43518", "169.254.169.254"),
            ("0", "0.0.0.0"),
            ("::1", "::1"),
        ] {
            assert_eq!(literal_address(host), Some(ip.parse().unwrap()), "{host}");
        }
        for name in [
            "example.com",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.16777216",
            "0x",
            "08",
            "+1",
            "1..1",
            "127.0.0.1.",
        ] {
            assert_eq!(literal_address(name), None, "{name} is a name");
        }
        let strict = AddressPolicy::default();
        for url in [
            "http://0x7f000001/",
            "http://2130706433:9/",
            "http://169.254.43518/",
        ] {
            assert!(
                Destination::parse(url, &strict).is_err(),
                "{url} is refused"
            );
        }
    }

    #[test]
    fn always_refused_whatever_is_allowed() {
        let open = policy(true, true);
        for addr in [
            "169.254.169.254:80",
            "[::169.254.169.254]:80",
            "[::ffff:169.254.169.254]:80",
            "[64:ff9b::a9fe:a9fe]:80",
            "[64:ff9b:1::a9fe:a9fe]:80",
            "[2002:a9fe:a9fe::1]:80",
            "[2001:0:4136:e378:8000:63bf:5601:5601]:80",
            "100.64.0.1:80",
            "100.127.255.254:80",
            "100.100.100.200:80",
            "[fec0::1]:80",
            "[fe80::1]:80",
            "[fd00:ec2::254]:80",
            "0.0.0.0:80",
            "0.1.2.3:80",
            "[::]:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
            "240.0.0.1:80",
            "[ff02::1]:80",
            "192.0.2.1:80",
            "198.51.100.7:80",
            "203.0.113.9:80",
            "198.18.0.1:80",
            "198.19.255.1:80",
            "[2001:db8::1]:80",
            "[2001:2::1]:80",
            "127.0.0.1:8080",
            "127.0.0.1:5003",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:5000",
        ] {
            assert!(refused(&open, addr), "{addr} must be refused");
        }
        for addr in [
            "127.0.0.1:9999",
            "[::1]:9999",
            "10.1.2.3:80",
            "192.168.1.1:443",
            "[fd12::1]:80",
            "8.8.8.8:53",
            "[2606:4700::1111]:443",
            "[::ffff:8.8.8.8]:80",
            "[64:ff9b::808:808]:80",
        ] {
            assert!(
                !refused(&open, addr),
                "{addr} is allowed when everything may be"
            );
        }
    }

    #[test]
    fn loopback_and_private_are_refused_by_default() {
        let strict = AddressPolicy::default();
        for addr in [
            "127.0.0.1:9999",
            "127.8.9.10:9999",
            "[::1]:9999",
            "[::ffff:127.0.0.1]:9999",
            "[::127.0.0.1]:9999",
            "[64:ff9b::7f00:1]:9999",
            "[2002:7f00:1::]:9999",
            "10.0.0.1:80",
            "172.16.5.4:80",
            "192.168.0.1:80",
            "[::ffff:10.0.0.1]:80",
            "[fc00::1]:80",
            "[fd00::1]:80",
        ] {
            assert!(refused(&strict, addr), "{addr} must be refused by default");
        }
        assert!(!refused(&strict, "93.184.216.34:80"));
        let e = strict.check("127.0.0.1:9".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("outbound.allow_loopback"), "{e}");
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        let strict = AddressPolicy::default();
        let e = strict.resolve("localhost", 9).await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = strict
            .resolve("metadata.google.internal.", 80)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cloud-metadata"), "{e}");
        let e = strict.resolve("0x7f000001", 9).await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let open = policy(true, true);
        assert!(open.resolve("127.0.0.1", 9).await.is_ok());
        assert!(open.resolve("[::1]", 9).await.is_ok());
        assert!(open.resolve("127.0.0.1", 8080).await.is_err());
    }
}
