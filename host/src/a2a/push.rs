//! Push notifications: the order, queueing and retries of deliveries.
//!
//! Each push config gets its own worker and a bounded queue, so updates
//! reach a webhook in order, a slow webhook delays only itself, and the
//! agent never waits: when the queue is full the update is dropped and
//! logged. Each delivery is retried a few times with backoff, each
//! attempt bounded by a timeout. The transport is the host's: a webhook
//! is an [`egress::Destination`](crate::egress::Destination), and each
//! delivery goes through [`Outbound`], which resolves the name and checks
//! every address against the one address policy. The worker, its queue
//! and its connection end with the session.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use tokio::sync::mpsc;

use super::types::PushConfig;
use crate::budget::{Held, SessionBudget};
use crate::egress::{Destination, Outbound, OutboundError};
use crate::http_client::Outgoing;

/// Updates waiting per webhook; more are dropped.
const QUEUE: usize = 64;
/// Attempts per update.
const ATTEMPTS: u32 = 3;
/// Time one attempt may take, connect to response.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before the second attempt; doubles after.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Bytes of a webhook's answer read before it is dropped: only its
/// status matters.
const ANSWER_LIMIT: usize = 64 << 10;

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error("webhook answered {0}")]
    Status(hyper::StatusCode),
    #[error("no answer within {ATTEMPT_TIMEOUT:?}")]
    Timeout,
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
        webhook: Destination,
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
                    .unwrap_or(Err(DeliveryError::Timeout));
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

/// One delivery attempt: a POST of `body` with the config's headers.
async fn post(
    outbound: &Outbound,
    budget: &Arc<SessionBudget>,
    webhook: &Destination,
    authorization: Option<&str>,
    token: Option<&str>,
    body: Bytes,
) -> Result<(), DeliveryError> {
    let mut headers = vec![("content-type", "application/a2a+json")];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    if let Some(t) = token {
        headers.push(("x-a2a-notification-token", t));
    }
    let request = Outgoing {
        method: Method::POST,
        path: webhook.path(),
        headers: &headers,
        body,
    };
    let answer = outbound
        .request(budget, webhook, request, ANSWER_LIMIT)
        .await?;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(answer.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::egress::AddressPolicy;

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
            "not a url",
        ] {
            assert!(Destination::parse(url, &open).is_err(), "{url} is refused");
        }
        assert!(Destination::parse("http://127.0.0.1:9/hook", &open).is_ok());
        assert!(Destination::parse("https://127.0.0.1:9/hook", &open).is_ok());
        // A name that does not resolve now is accepted: it is resolved
        // (and checked) at each delivery.
        assert!(Destination::parse("https://not-yet.invalid/hook", &open).is_ok());
        let e =
            Destination::parse("http://127.0.0.1:9/hook", &AddressPolicy::default()).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        // A name is checked when it is resolved, at each delivery.
        assert!(Destination::parse("http://localhost:9/hook", &AddressPolicy::default()).is_ok());
    }
}
