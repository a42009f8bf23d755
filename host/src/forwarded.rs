//! Who a request is from. Behind a proxy every request arrives from the
//! proxy's address; per-address quotas would then be shared by all its
//! users. Only from peers the operator lists (`http.trusted_proxies`) are
//! `Forwarded` and `X-Forwarded-For` believed, and then only the hops
//! that trusted proxies added.

use std::net::IpAddr;
use std::str::FromStr;

use hyper::HeaderMap;

/// A list of networks (CIDRs, or single addresses) whose peers are
/// proxies of the operator's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

fn in_network(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Why a list of trusted proxies does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ProxyListError {
    #[error("{0:?} is not an address or CIDR")]
    Address(String),
    #[error("{item:?}: the prefix must be 0 to {max}")]
    Prefix { item: String, max: u8 },
}

impl FromStr for TrustedProxies {
    type Err = ProxyListError;

    /// Comma-separated CIDRs or addresses: `10.0.0.0/8, 127.0.0.1, ::1/128`.
    fn from_str(s: &str) -> Result<Self, ProxyListError> {
        let mut networks = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| ProxyListError::Address(item.to_string()))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                "" => max,
                b => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                    ProxyListError::Prefix {
                        item: item.to_string(),
                        max,
                    }
                })?,
            };
            networks.push((ip, bits));
        }
        Ok(TrustedProxies(networks))
    }
}

/// One hop of `Forwarded: for=...` or `X-Forwarded-For`, as an address.
fn hop(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    v.parse().ok().or_else(|| {
        // IPv4 with a port.
        let (ip, port) = v.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        ip.parse().ok()
    })
}

/// The hops a request names, client first: from `Forwarded` when it is
/// there, else from `X-Forwarded-For`. `None` for a hop that is not an
/// address (`unknown`, obfuscated names).
fn hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<Option<IpAddr>> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| hop(v))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(hop)
        .collect()
}

impl TrustedProxies {
    /// True when `ip` is one of the operator's proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| in_network(ip, *net))
    }

    /// The address a request from `peer` is from: `peer` itself, unless
    /// it is a trusted proxy; then the nearest hop, walking back from the
    /// peer, that is not one. A hop that is not an address ends the walk
    /// at the proxy that reported it.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in hops(headers).into_iter().rev() {
            match hop {
                Some(ip) if self.contains(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_trusted_peers_are_believed_and_only_their_hops() {
        let trusted: TrustedProxies = "10.0.0.0/8, ::1".parse().unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.7, 10.9.9.9")]);
        assert_eq!(
            trusted.client(proxy, &xff),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            trusted.client(stranger, &xff),
            stranger,
            "a stranger's header is ignored"
        );
        // A client that forges hops before its own address gains nothing.
        let forged = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7")]);
        assert_eq!(
            trusted.client(proxy, &forged),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let fwd = headers(&[(
            "forwarded",
            "for=\"[2001:db8::17]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            trusted.client(proxy, &fwd),
            "2001:db8::17".parse::<IpAddr>().unwrap()
        );
        let unknown = headers(&[("forwarded", "for=unknown, for=10.0.0.2")]);
        assert_eq!(
            trusted.client(proxy, &unknown),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(trusted.client(proxy, &HeaderMap::new()), proxy);
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("nonsense".parse::<TrustedProxies>().is_err());
        assert_eq!(
            "".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::default()
        );
    }
}
