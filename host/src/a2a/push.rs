//! Push notifications: which webhook URLs are allowed, and delivery.
//!
//! Each push config gets its own worker and a bounded queue, so updates
//! reach a webhook in order, a slow webhook delays only itself, and the
//! agent never waits: when the queue is full the update is dropped and
//! logged. Each delivery is retried a few times with backoff, each
//! attempt bounded by a timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::types::PushConfig;

/// Updates waiting per webhook; more are dropped.
const QUEUE: usize = 64;
/// Attempts per update.
const ATTEMPTS: u32 = 3;
/// Time one attempt may take, connect to response.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before the second attempt; doubles after.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Which webhooks the server will call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPolicy {
    /// Push notifications are offered at all.
    pub enabled: bool,
    /// Webhooks on loopback addresses (tests, sidecars).
    pub allow_loopback: bool,
    /// Webhooks on private networks (10/8, 172.16/12, 192.168/16, fc00::/7).
    pub allow_private: bool,
}

impl Default for PushPolicy {
    fn default() -> Self {
        PushPolicy {
            enabled: true,
            allow_loopback: true,
            allow_private: true,
        }
    }
}

/// Host names that always mean cloud instance metadata.
const METADATA_HOSTS: [&str; 3] = ["metadata.google.internal", "metadata", "instance-data"];

impl PushPolicy {
    /// Why `ip` may not receive webhooks, if it may not.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                if v4.is_link_local() {
                    Some("link-local and cloud-metadata addresses (169.254.0.0/16) are refused")
                } else if o == [100, 100, 100, 200] {
                    Some("cloud-metadata addresses are refused")
                } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                    Some("unspecified, broadcast and multicast addresses are refused")
                } else if v4.is_loopback() && !self.allow_loopback {
                    Some("loopback webhooks are disabled on this server")
                } else if v4.is_private() && !self.allow_private {
                    Some("private-network webhooks are disabled on this server")
                } else {
                    None
                }
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                if (s[0] & 0xffc0) == 0xfe80 {
                    Some("link-local addresses (fe80::/10) are refused")
                } else if s[0] == 0xfd00 && s[1] == 0x0ec2 {
                    Some("cloud-metadata addresses are refused")
                } else if v6.is_unspecified() || v6.is_multicast() {
                    Some("unspecified and multicast addresses are refused")
                } else if v6.is_loopback() && !self.allow_loopback {
                    Some("loopback webhooks are disabled on this server")
                } else if (s[0] & 0xfe00) == 0xfc00 && !self.allow_private {
                    Some("private-network webhooks are disabled on this server")
                } else {
                    None
                }
            }
        }
    }

    /// Checks a webhook URL and resolves it to the addresses it may use.
    pub async fn resolve(&self, url: &str) -> Result<Webhook, String> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http") => {}
            Some("https") => {
                return Err(
                    "https webhooks are not supported by this server: use an http URL \
                            (for example a TLS-terminating proxy on loopback)"
                        .into(),
                );
            }
            _ => return Err(format!("url must be an http URL, not {url:?}")),
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
        let host = uri
            .host()
            .ok_or("url has no host")?
            .trim_matches(['[', ']'])
            .to_string();
        if METADATA_HOSTS.contains(&host.to_ascii_lowercase().as_str()) {
            return Err(format!("{host} is a cloud-metadata host and is refused"));
        }
        let port = uri.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} resolves to no address"));
        }
        if let Some(why) = addrs.iter().find_map(|a| self.refuses(a.ip())) {
            return Err(format!("webhook {host}: {why}"));
        }
        Ok(Webhook { uri, addrs })
    }
}

/// A webhook URL that passed the policy, with its addresses.
#[derive(Debug, Clone)]
pub struct Webhook {
    uri: hyper::Uri,
    addrs: Vec<SocketAddr>,
}

/// The sending side of one config's delivery queue. Dropping it lets the
/// worker finish what is queued and stop.
#[derive(Debug, Clone)]
pub struct PushQueue {
    tx: mpsc::Sender<Bytes>,
    session: Arc<str>,
}

impl PushQueue {
    /// Starts a worker delivering to `webhook` with `config`'s headers.
    /// `session` names the owner in the worker's log lines.
    pub fn start(config: &PushConfig, webhook: Webhook, session: Arc<str>) -> PushQueue {
        let owner = Arc::clone(&session);
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let authorization = config
            .authentication
            .as_ref()
            .map(|a| match &a.credentials {
                Some(c) => format!("{} {c}", a.scheme),
                None => a.scheme.clone(),
            });
        let token = config.token.clone();
        let (task_id, id) = (config.task_id.clone(), config.id.clone());
        tokio::spawn(async move {
            while let Some(body) = rx.recv().await {
                let mut backoff = FIRST_BACKOFF;
                for attempt in 1..=ATTEMPTS {
                    let sent = tokio::time::timeout(
                        ATTEMPT_TIMEOUT,
                        post(
                            &webhook,
                            authorization.as_deref(),
                            token.as_deref(),
                            body.clone(),
                        ),
                    )
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")));
                    match sent {
                        Ok(()) => break,
                        Err(e) if attempt == ATTEMPTS => {
                            tracing::warn!(session = %session, task = %task_id, config = %id, error = %e, "push notification dropped after {ATTEMPTS} attempts");
                        }
                        Err(e) => {
                            tracing::debug!(session = %session, task = %task_id, config = %id, error = %e, attempt, "push attempt failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                        }
                    }
                }
            }
        });
        PushQueue { tx, session: owner }
    }

    /// Queues one update (a serialized StreamResponse) without waiting.
    pub fn send(&self, body: Bytes) {
        if self.tx.try_send(body).is_err() {
            tracing::warn!(session = %self.session, "push queue full or closed; update dropped");
        }
    }
}

async fn post(
    webhook: &Webhook,
    authorization: Option<&str>,
    token: Option<&str>,
    body: Bytes,
) -> Result<(), String> {
    let mut last = String::from("no address");
    for addr in &webhook.addrs {
        let stream = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                last = format!("connect {addr}: {e}");
                continue;
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
        tokio::spawn(conn);
        let mut req = Request::post(
            webhook
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        )
        .header(
            "host",
            webhook
                .uri
                .authority()
                .map(|a| a.as_str())
                .unwrap_or_default(),
        )
        .header("content-type", "application/a2a+json");
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(t) = token {
            req = req.header("x-a2a-notification-token", t);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("bad webhook request: {e}"))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| format!("POST to {addr}: {e}"))?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        return if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {status}"))
        };
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_metadata_link_local_and_non_http() {
        let p = PushPolicy::default();
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/hook",
            "http://metadata.google.internal/x",
            "http://0.0.0.0/",
            "ftp://127.0.0.1/",
            "https://127.0.0.1/",
            "not a url",
        ] {
            assert!(p.resolve(url).await.is_err(), "{url} is refused");
        }
        assert!(p.resolve("http://127.0.0.1:9/hook").await.is_ok());
        let strict = PushPolicy {
            allow_loopback: false,
            ..p
        };
        let e = strict.resolve("http://127.0.0.1:9/hook").await.unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!(
            p.refuses("::ffff:169.254.169.254".parse().unwrap())
                .is_some()
        );
    }
}
