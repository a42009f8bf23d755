//! The functional suites: one module each, one test binary for them all.
//!
//! Each test binary links the suites' library and the clients (hyper,
//! tonic, rustls) afresh, which took about as long for a 100-line suite
//! as for a 1,000-line one, so suites that only check behaviour share
//! this binary. Those that measure the machine run in binaries of their
//! own, one after another: `isolation` (idle memory, the noisy
//! neighbour), `tenancy` (a quiet session's latency under attack) and
//! `scale` (17,500 agent ports of its own range).
//!
//! Run one suite with its module name as the filter:
//! `cargo test --release -p a2a-sandbox-tests --test suites protocol::`.

mod balancer;
mod components;
mod conformance;
mod draft;
mod grpc;
mod hostile;
mod interop;
mod languages;
mod model;
mod operations;
mod outbound;
mod peers;
mod protocol;
mod rest;
mod sessions;
mod template;
