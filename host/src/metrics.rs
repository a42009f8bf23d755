//! Process-wide metrics in Prometheus text format: what the sessions,
//! ports, agents and limits are doing. One registry for the process;
//! every layer records into [`metrics()`].

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
/// The `kind` label of the budget and rate metrics.
pub struct KindLabel {
    pub kind: String,
}

impl KindLabel {
    /// A label for `kind`.
    pub fn new(kind: &str) -> Self {
        KindLabel {
            kind: kind.to_string(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
/// The labels of a guest call's metrics: which component, which outcome.
pub struct CallLabels {
    pub component: String,
    pub method: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
/// The `component` label.
pub struct ComponentLabel {
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
/// The labels of a guest's HTTP request: who sent it, where, and what
/// came of it (answered, not_granted, address_refused, over_budget,
/// timeout, failed).
pub struct GuestHttpLabels {
    pub component: String,
    pub destination: String,
    pub result: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub sessions_active: Gauge,
    pub sessions_created: Counter,
    /// Sessions that ended, by why: deleted, expired, shutdown.
    pub sessions_ended: Family<KindLabel, Counter>,
    pub ports_in_use: Gauge,
    pub ports_free: Gauge,
    pub instances_live: Gauge,
    /// Calls into guests by component, method (handle, cancel) and
    /// outcome (ok, refused, crashed).
    pub guest_calls: Family<CallLabels, Counter>,
    pub guest_call_seconds: Family<ComponentLabel, Histogram, fn() -> Histogram>,
    /// Failed guest calls by cause: deadline, memory, stack_overflow,
    /// panic, trap, response_too_large, unavailable.
    pub guest_traps: Family<KindLabel, Counter>,
    pub instance_recycle_seconds: Histogram,
    /// Guest calls that ran as long runners (computed past 2 ms, or
    /// started soon after their agent's last long runner).
    pub guest_long_runners: Counter,
    /// Guest output refused by a cap: log, emit.
    pub guest_output_dropped: Family<KindLabel, Counter>,
    /// Requests refused with 429, by scope: control (per IP), agent
    /// (per session), sessions_per_ip.
    pub rate_limited: Family<KindLabel, Counter>,
    /// Session creates refused with 503, by reason: full, ports.
    pub sessions_refused: Family<KindLabel, Counter>,
    /// File descriptors the process holds, read at each scrape.
    pub open_fds: Gauge,
    /// Component loads after start-up (reload, upload), by outcome:
    /// loaded, refused, removed.
    pub component_reloads: Family<KindLabel, Counter>,
    /// What sessions hold of their budgets now, summed over sessions, by
    /// kind: store_bytes, push_configs, outbound_connections, streams,
    /// connections, queued_calls.
    pub budget_used: Family<KindLabel, Gauge>,
    /// Work refused because a budget or cap was spent, by kind.
    pub budget_refusals: Family<KindLabel, Counter>,
    /// Outbound destinations refused by the address policy, at creation
    /// or at connect.
    pub outbound_refused: Counter,
    /// Guests' HTTP requests, by component, destination and result.
    pub guest_http_requests: Family<GuestHttpLabels, Counter>,
    /// Bulk jobs (large requests and answers, memory collection) queued
    /// and not yet started: a queue that stays long means the bulk
    /// threads are the bottleneck.
    pub bulk_jobs_waiting: Gauge,
    /// Bulk jobs started.
    pub bulk_jobs: Counter,
}

fn call_latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("a2a_sandbox");
        let m = Metrics {
            registry: Registry::default(),
            sessions_active: Gauge::default(),
            sessions_created: Counter::default(),
            sessions_ended: Family::default(),
            ports_in_use: Gauge::default(),
            ports_free: Gauge::default(),
            instances_live: Gauge::default(),
            guest_calls: Family::default(),
            guest_call_seconds: Family::new_with_constructor(call_latency),
            guest_traps: Family::default(),
            instance_recycle_seconds: Histogram::new(exponential_buckets(0.000_01, 2.0, 16)),
            guest_long_runners: Counter::default(),
            guest_output_dropped: Family::default(),
            rate_limited: Family::default(),
            sessions_refused: Family::default(),
            open_fds: Gauge::default(),
            component_reloads: Family::default(),
            budget_used: Family::default(),
            budget_refusals: Family::default(),
            outbound_refused: Counter::default(),
            guest_http_requests: Family::default(),
            bulk_jobs_waiting: Gauge::default(),
            bulk_jobs: Counter::default(),
        };
        registry.register(
            "sessions_active",
            "Sessions alive now",
            m.sessions_active.clone(),
        );
        registry.register(
            "sessions_created",
            "Sessions created",
            m.sessions_created.clone(),
        );
        registry.register(
            "sessions_ended",
            "Sessions ended, by reason",
            m.sessions_ended.clone(),
        );
        registry.register(
            "ports_in_use",
            "Agent ports held by sessions",
            m.ports_in_use.clone(),
        );
        registry.register(
            "ports_free",
            "Agent ports in the pool",
            m.ports_free.clone(),
        );
        registry.register(
            "instances_live",
            "Agent instances alive",
            m.instances_live.clone(),
        );
        registry.register(
            "guest_calls",
            "Calls into agent components",
            m.guest_calls.clone(),
        );
        registry.register(
            "guest_call_seconds",
            "Duration of calls into agent components",
            m.guest_call_seconds.clone(),
        );
        registry.register(
            "guest_traps",
            "Guest calls that failed, by cause",
            m.guest_traps.clone(),
        );
        registry.register(
            "instance_recycle_seconds",
            "Time to re-create a trapped instance",
            m.instance_recycle_seconds.clone(),
        );
        registry.register(
            "guest_long_runners",
            "Guest calls that ran as long runners, sharing one core fewer than the machine has",
            m.guest_long_runners.clone(),
        );
        registry.register(
            "guest_output_dropped",
            "Guest log lines and updates refused by a cap",
            m.guest_output_dropped.clone(),
        );
        registry.register(
            "component_reloads",
            "Components loaded, refused or removed after start-up (hot reload, upload)",
            m.component_reloads.clone(),
        );
        registry.register(
            "open_fds",
            "File descriptors the process holds",
            m.open_fds.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429, by scope",
            m.rate_limited.clone(),
        );
        registry.register(
            "sessions_refused",
            "Session creates refused with 503, by reason",
            m.sessions_refused.clone(),
        );
        registry.register(
            "budget_used",
            "What sessions hold of their budgets now, by kind",
            m.budget_used.clone(),
        );
        registry.register(
            "budget_refusals",
            "Work refused because a session budget or a server cap was spent, by kind",
            m.budget_refusals.clone(),
        );
        registry.register(
            "outbound_refused",
            "Outbound destinations refused by the address policy",
            m.outbound_refused.clone(),
        );
        registry.register(
            "guest_http_requests",
            "Guests' HTTP requests, by component, destination and result",
            m.guest_http_requests.clone(),
        );
        registry.register(
            "bulk_jobs_waiting",
            "Bulk jobs (large requests and answers, memory collection) queued and not yet started",
            m.bulk_jobs_waiting.clone(),
        );
        registry.register(
            "bulk_jobs",
            "Bulk jobs started on the bulk threads",
            m.bulk_jobs.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Counts one thing by kind.
    pub fn count(family: &Family<KindLabel, Counter>, kind: &str) {
        Metrics::series(family, kind).inc();
    }

    /// The series of `kind`, for a caller that counts it often and looks
    /// it up once.
    pub fn series(family: &Family<KindLabel, Counter>, kind: &str) -> Counter {
        family.get_or_create(&KindLabel::new(kind)).clone()
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
