//! Push notifications: which webhook URLs are accepted, and delivery.
//!
//! Each push config gets its own worker and a bounded queue, so updates
//! reach a webhook in order, a slow webhook delays only itself, and the
//! agent never waits: when the queue is full the update is dropped and
//! logged. Each delivery is retried a few times with backoff, each
//! attempt bounded by a timeout. Connections go through the host's
//! [`Outbound`] connector: the name is resolved at delivery and every
//! address checked against the one address policy. The worker, its queue
//! and its connection end with the session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::types::PushConfig;
use crate::budget::{Held, SessionBudget};
use crate::egress::{AddressPolicy, Outbound};

/// Updates waiting per webhook; more are dropped.
const QUEUE: usize = 64;
/// Attempts per update.
const ATTEMPTS: u32 = 3;
/// Time one attempt may take, connect to response.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before the second attempt; doubles after.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A webhook URL that passed the checks that can be made before delivery:
/// an `http` URL with a host; a literal address already checked against
/// the policy, a name checked at each delivery.
#[derive(Debug, Clone)]
pub struct Webhook {
    uri: hyper::Uri,
    host: String,
    port: u16,
}

impl Webhook {
    /// Checks a webhook URL against `policy`.
    pub fn parse(url: &str, policy: &AddressPolicy) -> Result<Webhook, String> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http") => {}
            Some("https") => {
                return Err(
                    "https webhooks are not supported by this server: use an http URL \
                            (for example a TLS-terminating proxy)"
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
        let port = uri.port_u16().unwrap_or(80);
        policy
            .check_name(&host)
            .map_err(|e| format!("webhook {e}"))?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            policy
                .check(SocketAddr::new(ip, port))
                .map_err(|e| format!("webhook {e}"))?;
        }
        Ok(Webhook { uri, host, port })
    }
}

/// The sending side of one config's delivery queue. Dropping it lets the
/// worker finish what is queued and stop; the session's end stops it at
/// once.
#[derive(Debug, Clone)]
pub struct PushQueue {
    tx: mpsc::Sender<Bytes>,
    session: Arc<str>,
}

impl PushQueue {
    /// Starts a worker delivering to `webhook` with `config`'s headers,
    /// holding `held` (the config's share of the session's budget) until
    /// it stops.
    pub fn start(
        config: &PushConfig,
        webhook: Webhook,
        budget: Arc<SessionBudget>,
        outbound: Arc<Outbound>,
        held: Held,
    ) -> PushQueue {
        let session = Arc::clone(budget.session());
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
        let ended = budget.ended().clone();
        let deliveries = async move {
            let _held = held;
            while let Some(body) = rx.recv().await {
                let mut backoff = FIRST_BACKOFF;
                for attempt in 1..=ATTEMPTS {
                    let sent = tokio::time::timeout(
                        ATTEMPT_TIMEOUT,
                        post(
                            &outbound,
                            &budget,
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
                            tracing::warn!(session = %budget.session(), task = %task_id, config = %id, error = %e, "push notification dropped after {ATTEMPTS} attempts");
                        }
                        Err(e) => {
                            tracing::debug!(session = %budget.session(), task = %task_id, config = %id, error = %e, attempt, "push attempt failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                        }
                    }
                }
            }
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = deliveries => {}
                _ = ended.cancelled() => {}
            }
        });
        PushQueue { tx, session }
    }

    /// Queues one update (a serialized StreamResponse) without waiting.
    pub fn send(&self, body: Bytes) {
        if self.tx.try_send(body).is_err() {
            tracing::warn!(session = %self.session, "push queue full or closed; update dropped");
        }
    }
}

async fn post(
    outbound: &Outbound,
    budget: &Arc<SessionBudget>,
    webhook: &Webhook,
    authorization: Option<&str>,
    token: Option<&str>,
    body: Bytes,
) -> Result<(), String> {
    let connection = outbound
        .connect(budget, &webhook.host, webhook.port)
        .await?;
    let addr = connection.addr;
    // The connection (and its place in the caps) lives as long as this
    // delivery: it ends when the request is answered or abandoned.
    let _permit = connection.permit;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(connection.stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    let driver = tokio::spawn(conn);
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
    let answered = async {
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| format!("POST to {addr}: {e}"))?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {status}"))
        }
    }
    .await;
    driver.abort();
    answered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_metadata_link_local_and_non_http() {
        let open = AddressPolicy {
            allow_loopback: true,
            allow_private: true,
            own_ports: Vec::new(),
        };
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/hook",
            "http://[::169.254.169.254]/hook",
            "http://metadata.google.internal/x",
            "http://0.0.0.0/",
            "ftp://127.0.0.1/",
            "https://127.0.0.1/",
            "not a url",
        ] {
            assert!(Webhook::parse(url, &open).is_err(), "{url} is refused");
        }
        assert!(Webhook::parse("http://127.0.0.1:9/hook", &open).is_ok());
        let e = Webhook::parse("http://127.0.0.1:9/hook", &AddressPolicy::default()).unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        // A name is checked when it is resolved, at each delivery.
        assert!(Webhook::parse("http://localhost:9/hook", &AddressPolicy::default()).is_ok());
    }
}
