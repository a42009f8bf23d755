//! A server for the fuzz targets: the real control API over the test
//! agents, in gateway mode, driven in-process without sockets.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use a2a_sandbox::config::Config;
use a2a_sandbox::server::{ControlApi, RequestBody, Server};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

/// How long a streamed answer is read.
const STREAM_READ: std::time::Duration = std::time::Duration::from_millis(100);

pub struct Fuzzed {
    pub runtime: tokio::runtime::Runtime,
    pub api: Arc<ControlApi>,
    /// Where the server also listens, for what reaches it over HTTP (the
    /// draft engine is an A2A client of its agents).
    pub authority: String,
}

/// The one server of this process.
pub fn server() -> &'static Fuzzed {
    static SERVER: OnceLock<Fuzzed> = OnceLock::new();
    SERVER.get_or_init(|| {
        let agents = std::env::var("A2A_FUZZ_AGENTS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../build/test-agents").to_string()
        });
        let set = |k: &str, v: &str| (k.to_string(), v.to_string());
        let config = Config::load(
            None,
            [],
            &[
                set("listen", "127.0.0.1:0"),
                set("mode", "gateway"),
                set("agents_dir", &agents),
                set("allow_open_sessions", "true"),
                set("limits.max_instances", "200"),
                set("limits.call_timeout_ms", "200"),
                set("sessions.max_sessions", "30"),
                set("sessions.max_sessions_per_ip", "30"),
                set("http.control_rate_per_ip", "1000000"),
                set("http.agent_rate_per_session", "1000000"),
            ],
        )
        .expect("the fuzz config is valid");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let server = runtime
            .block_on(Server::bind(&config))
            .expect("the server binds over build/test-agents (make precompile)");
        let api = server.control_api();
        let authority = server.addr.to_string();
        runtime.spawn(server.run());
        Fuzzed {
            api,
            runtime,
            authority,
        }
    })
}

/// A request with a body, as the handlers take it.
pub fn request(
    fuzzed: &Fuzzed,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Option<Request<RequestBody>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", &fuzzed.authority);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let body = Full::new(Bytes::from(body))
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed();
    builder.body(body).ok()
}

/// Sends a request through the control API and reads the whole answer.
pub fn send(fuzzed: &Fuzzed, req: Request<RequestBody>) -> (u16, Bytes) {
    let peer: IpAddr = "192.0.2.1".parse().expect("an address");
    fuzzed.runtime.block_on(async {
        let response: Response<_> = fuzzed.api.route(req, peer).await;
        let status = response.status().as_u16();
        // A stream is read for a moment, not to its end.
        let body = tokio::time::timeout(STREAM_READ, response.into_body().collect())
            .await
            .ok()
            .and_then(|b| b.ok())
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (status, body)
    })
}
