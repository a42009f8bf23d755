//! a2a-sandbox: hosts A2A agents compiled to WebAssembly components.
//! Each session gets five TCP ports and five sandboxed agent instances.
//!
//! Dependencies point one way: `cli -> server -> {draft, session} -> {runtime, a2a}`,
//! and `config` imports nothing (docs/ARCHITECTURE.md draws the rest).

pub mod a2a;
pub mod allocator;
pub mod budget;
pub mod bulk;
// The unit tests do not drive the command line (the suites run the
// binary), so their build leaves it out.
#[cfg(not(test))]
pub mod cli;
pub mod clock;
pub mod config;
pub mod draft;
pub mod egress;
pub mod forwarded;
pub mod guest_http;
pub mod http_client;
pub mod json_object;
pub mod metrics;
pub mod ports;
pub mod rate;
pub mod runtime;
pub mod server;
pub mod session;

/// A future that holds 4 KiB across an await, as a request's does, then
/// gives `out`. The tests that pin what a wrapper around a request's
/// future costs wrap this one.
#[cfg(test)]
pub(crate) async fn holding_4_kib<T>(out: T) -> T {
    let held = [7u8; 4096];
    tokio::task::yield_now().await;
    std::hint::black_box(&held);
    out
}
