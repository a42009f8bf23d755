//! What one session may make the host hold on its behalf. Every resource
//! a session causes outside its sandbox (calls waiting for an agent,
//! task content, push configs and their connections, streams, open
//! connections) is taken from its [`SessionBudget`] by its real cost and
//! given back when released, and all of it when the session ends.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use prometheus_client::metrics::gauge::Gauge;

use crate::config::BudgetLimits;
use crate::metrics::{KindLabel, Metrics, metrics};

/// A kind of resource a session is charged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    StoreBytes,
    PushConfigs,
    OutboundConnections,
    Streams,
    Connections,
    /// Guests' HTTP requests in flight.
    OutboundRequests,
    /// Bytes guests' HTTP requests sent and received (never given back).
    OutboundBytes,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::StoreBytes,
        Kind::PushConfigs,
        Kind::OutboundConnections,
        Kind::Streams,
        Kind::Connections,
        Kind::OutboundRequests,
        Kind::OutboundBytes,
    ];

    /// The metric label and the name in refusals.
    pub fn name(self) -> &'static str {
        match self {
            Kind::StoreBytes => "store_bytes",
            Kind::PushConfigs => "push_configs",
            Kind::OutboundConnections => "outbound_connections",
            Kind::Streams => "streams",
            Kind::Connections => "connections",
            Kind::OutboundRequests => "outbound_requests",
            Kind::OutboundBytes => "outbound_bytes",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A request refused because the session's budget of `kind` is spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct OverBudget {
    pub kind: Kind,
    pub limit: usize,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this session's {name} budget (budgets.{name} = {}) is used up; finish or delete some of its work first",
            self.limit,
            name = self.kind.name(),
        )
    }
}

/// One session's budgets and what it uses of them now. Ended (and its
/// queued work cancelled) when the session ends.
pub struct SessionBudget {
    session: Arc<str>,
    limits: BudgetLimits,
    used: [AtomicUsize; Kind::ALL.len()],
    ended: CancellationToken,
    /// Cancelled when the server drains: streams end with a last event.
    streams_closing: CancellationToken,
}

impl SessionBudget {
    /// A budget for the session `session`, nothing used yet.
    pub fn new(session: Arc<str>, limits: BudgetLimits) -> Arc<Self> {
        Arc::new(SessionBudget {
            session,
            limits,
            used: Default::default(),
            ended: CancellationToken::new(),
            streams_closing: CancellationToken::new(),
        })
    }

    /// The session's id, for log lines.
    pub fn session(&self) -> &Arc<str> {
        &self.session
    }

    /// The limits this budget holds the session to.
    pub fn limits(&self) -> &BudgetLimits {
        &self.limits
    }

    fn limit(&self, kind: Kind) -> usize {
        match kind {
            Kind::StoreBytes => self.limits.store_bytes,
            Kind::PushConfigs => self.limits.push_configs,
            Kind::OutboundConnections => self.limits.outbound_connections,
            Kind::Streams => self.limits.streams,
            Kind::Connections => self.limits.connections,
            Kind::OutboundRequests => self.limits.outbound_requests,
            Kind::OutboundBytes => self.limits.outbound_bytes,
        }
    }

    /// What the session uses of `kind` now.
    pub fn used(&self, kind: Kind) -> usize {
        self.used[kind.index()].load(Ordering::Relaxed)
    }

    /// Takes `amount` of `kind`, or refuses (and counts the refusal)
    /// when that would pass the limit. Given back when the guard drops.
    pub fn try_take(self: &Arc<Self>, kind: Kind, amount: usize) -> Result<Held, OverBudget> {
        let limit = self.limit(kind);
        let cell = &self.used[kind.index()];
        let mut now = cell.load(Ordering::Relaxed);
        loop {
            if now + amount > limit || self.ended.is_cancelled() {
                return Err(refused(kind, limit));
            }
            match cell.compare_exchange_weak(now, now + amount, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(seen) => now = seen,
            }
        }
        gauge(kind, amount as i64);
        Ok(Held {
            budget: Arc::clone(self),
            kind,
            amount,
        })
    }

    /// Charges a change in `kind` that must happen (content the session
    /// already sent); true while the session is within its limit.
    pub fn charge(&self, kind: Kind, delta: isize) -> bool {
        let cell = &self.used[kind.index()];
        let now = if delta >= 0 {
            cell.fetch_add(delta as usize, Ordering::AcqRel) + delta as usize
        } else {
            cell.fetch_sub(delta.unsigned_abs(), Ordering::AcqRel) - delta.unsigned_abs()
        };
        gauge(kind, delta as i64);
        now <= self.limit(kind)
    }

    /// True while `kind` is within its limit.
    pub fn within(&self, kind: Kind) -> bool {
        self.used(kind) <= self.limit(kind)
    }

    /// What the session uses of each budget and its limit, by kind name:
    /// `{"store_bytes": {"used": 1234, "limit": 16777216}, ...}`.
    pub fn report(&self) -> serde_json::Value {
        Kind::ALL
            .iter()
            .map(|&kind| {
                let entry = serde_json::json!({"used": self.used(kind), "limit": self.limit(kind)});
                (kind.name().to_string(), entry)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// The refusal for `kind`, counted.
    pub fn refusal(&self, kind: Kind) -> OverBudget {
        refused(kind, self.limit(kind))
    }

    /// Cancelled when the session ends: queued calls, deliveries and
    /// streams watch it and stop.
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    /// Ends the session's work: nothing more is taken, everything
    /// waiting is cancelled.
    pub fn end(&self) {
        self.ended.cancel();
    }

    /// Cancelled when the server shuts down: open streams send a last
    /// event saying so and close, while calls in flight go on.
    pub fn streams_closing(&self) -> &CancellationToken {
        &self.streams_closing
    }

    /// Tells the session's open streams that the server is shutting down.
    pub fn close_streams(&self) {
        self.streams_closing.cancel();
    }
}

impl Drop for SessionBudget {
    fn drop(&mut self) {
        // Whatever is still charged (content of stores dropped with the
        // session) leaves the gauges with it.
        for kind in Kind::ALL {
            let left = self.used[kind.index()].load(Ordering::Relaxed);
            if left > 0 {
                gauge(kind, -(left as i64));
            }
        }
    }
}

fn refused(kind: Kind, limit: usize) -> OverBudget {
    Metrics::count(&metrics().budget_refusals, kind.name());
    OverBudget { kind, limit }
}

/// Moves the `budget_used` gauge of `kind`; the gauges are looked up
/// once, not at every take and release.
fn gauge(kind: Kind, delta: i64) {
    static GAUGES: OnceLock<Vec<Gauge>> = OnceLock::new();
    let gauges = GAUGES.get_or_init(|| {
        Kind::ALL
            .iter()
            .map(|k| {
                metrics()
                    .budget_used
                    .get_or_create(&KindLabel::new(k.name()))
                    .clone()
            })
            .collect()
    });
    gauges[kind.index()].inc_by(delta);
}

/// A share of a session's budget, given back when dropped.
pub struct Held {
    budget: Arc<SessionBudget>,
    kind: Kind,
    amount: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used[self.kind.index()].fetch_sub(self.amount, Ordering::AcqRel);
        gauge(self.kind, -(self.amount as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back_on_drop() {
        let limits = BudgetLimits {
            streams: 2,
            ..BudgetLimits::default()
        };
        let budget = SessionBudget::new(Arc::from("s"), limits);
        let a = budget.try_take(Kind::Streams, 1).unwrap();
        let _b = budget.try_take(Kind::Streams, 1).unwrap();
        let e = budget.try_take(Kind::Streams, 1).err().unwrap();
        assert!(e.to_string().contains("budgets.streams = 2"), "{e}");
        drop(a);
        assert_eq!(budget.used(Kind::Streams), 1);
        assert!(budget.try_take(Kind::Streams, 1).is_ok());
        budget.end();
        assert!(
            budget.try_take(Kind::Streams, 1).is_err(),
            "an ended session takes nothing"
        );
    }

    #[test]
    fn charges_go_both_ways() {
        let limits = BudgetLimits {
            store_bytes: 100,
            ..BudgetLimits::default()
        };
        let budget = SessionBudget::new(Arc::from("s"), limits);
        assert!(budget.charge(Kind::StoreBytes, 80));
        assert!(!budget.charge(Kind::StoreBytes, 40));
        assert!(!budget.within(Kind::StoreBytes));
        assert!(budget.charge(Kind::StoreBytes, -40));
        assert_eq!(budget.used(Kind::StoreBytes), 80);
    }
}
