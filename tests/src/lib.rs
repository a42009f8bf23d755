//! Test support: start the real `a2a-sandbox` binary, talk HTTP to it.
//!
//! Every server runs on `127.0.0.1:0` for its control API and on a port
//! range of its own, so suites run in parallel without meeting.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

pub mod attacks;
pub mod isolation;
pub mod load;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A built component the suites serve (`build/test-agents/{name}.wasm`).
pub fn built(name: &str) -> PathBuf {
    repo_root()
        .join("build/test-agents")
        .join(format!("{name}.wasm"))
}

/// A fresh, empty agents directory under target/ for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = repo_root()
        .join("target/test-agents")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The server binary: `A2A_TEST_SERVER_BIN`, else the release build.
/// (Not an `A2A_SANDBOX_*` name: the server reads every one of those as
/// a setting, and the servers the suites start inherit this one.)
pub fn server_bin() -> PathBuf {
    std::env::var_os("A2A_TEST_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/a2a-sandbox"))
}

/// A port range no other server in this test process uses. `base` keeps
/// test binaries (which run one after another) apart too, and low: a
/// range reaching into the kernel's ephemeral ports (32768 and up) finds
/// some taken by client connections, and the bench's 10,400-port fleet
/// then ran out of ports from a base of 29,600.
pub fn port_range(len: u16) -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 10_000 + (std::process::id() % 10) as u16 * 400;
    loop {
        let start = base + NEXT.fetch_add(len, Ordering::SeqCst);
        let end = start + len - 1;
        // The server never gives out 10080 (browsers and fetch clients
        // refuse it): a range holding it would be one port short.
        if !(start..=end).contains(&BROWSER_BLOCKED_PORT) {
            return (start, end);
        }
    }
}

/// The one port in the suites' ranges that browsers will not connect to.
const BROWSER_BLOCKED_PORT: u16 = 10080;

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub ports: (u16, u16),
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server with a fresh range of `ports` agent ports and any
    /// extra flags, serving the product agents and the test fixtures
    /// (`build/test-agents`).
    pub fn start(ports: u16, extra: &[&str]) -> Server {
        Server::start_in(&repo_root().join("build/test-agents"), ports, extra)
    }

    /// [`Server::start`] with the components in `agents_dir`.
    pub fn start_in(agents_dir: &std::path::Path, ports: u16, extra: &[&str]) -> Server {
        let range = port_range(ports);
        let mut child = Command::new(server_bin())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--port-range", &format!("{}-{}", range.0, range.1)])
            .arg("--agents-dir")
            .arg(agents_dir)
            // Suites send requests as fast as they can from one address;
            // the tests of these limits set their own.
            .args(["--set", "http.control_rate_per_ip=1000000"])
            .args(["--set", "sessions.max_sessions_per_ip=100000"])
            .args(["--set", "sessions.max_sessions=100000"])
            .args(["--set", "http.agent_rate_per_session=1000000"])
            .args(["--set", "http.max_connections_per_ip=100000"])
            // Webhooks in the suites listen on loopback.
            .args(["--set", "outbound.allow_loopback=true"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_bin().display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                if std::env::var_os("A2A_TEST_SERVER_LOG").is_some() {
                    eprintln!("[server] {line}");
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(why) => {
                // Not left running: it would hold the suite's output open
                // and keep the runner waiting long after this test failed.
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "the server did not say where it listens ({why}); it ended: {status:?}; \
                     its output: {:?}",
                    log.lock().unwrap()
                );
            }
        };
        Server {
            child,
            addr: addr.parse().expect("a socket address"),
            ports: range,
            log,
        }
    }

    /// The server's log lines so far that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Waits up to `secs` for a log line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(line) = self.log_lines(needle).pop() {
                return line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {needle:?} within {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT` of the control API.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a session with `body` (or none) and returns the response.
    pub async fn create(&self, body: Option<Value>) -> Response {
        self.create_with(body, &[]).await
    }

    /// [`Server::create`] with extra headers (the admin token).
    pub async fn create_with(&self, body: Option<Value>, headers: &[(&str, &str)]) -> Response {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        http(
            "POST",
            &format!("{}/v1/sessions", self.base()),
            headers,
            body,
        )
        .await
    }

    /// Creates a session and asserts it worked.
    pub async fn session(&self, body: Option<Value>) -> Value {
        let r = self.create(body).await;
        assert_eq!(r.status, 201, "create failed: {}", r.text());
        r.json()
    }

    /// `GET /v1/sessions/{id}`.
    pub async fn get_session(&self, id: &str) -> Response {
        http("GET", &format!("{}/v1/sessions/{id}", self.base()), &[], "").await
    }

    /// `POST /v1/sessions/{id}/keepalive`.
    pub async fn keepalive(&self, id: &str) -> Response {
        http(
            "POST",
            &format!("{}/v1/sessions/{id}/keepalive", self.base()),
            &[],
            "",
        )
        .await
    }

    /// Deletes a session, returning the status.
    pub async fn delete(&self, id: &str) -> u16 {
        http(
            "DELETE",
            &format!("{}/v1/sessions/{id}", self.base()),
            &[],
            "",
        )
        .await
        .status
    }

    /// Sends SIGTERM and waits (at most `secs`) for the process to exit.
    pub fn terminate(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        self.sigterm();
        self.exit_within(secs)
    }

    /// Sends SIGTERM: the shutdown begins (after the session drain, if
    /// one is configured).
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Ends the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (at most `secs`) for the process to exit.
    pub fn exit_within(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A metric's value from `/metrics` (the first sample whose line
    /// starts with `name`).
    pub async fn metric(&self, name: &str) -> f64 {
        self.metric_if_any(name)
            .await
            .unwrap_or_else(|| panic!("no metric {name} in /metrics"))
    }

    /// [`Server::metric`], or `None` when no sample has been recorded.
    pub async fn metric_if_any(&self, name: &str) -> Option<f64> {
        let text = http("GET", &format!("{}/metrics", self.base()), &[], "")
            .await
            .text();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
    }

    /// Process id, for /proc reads.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The status and `error.code` of a refusal in the control API's
    /// error shape (`{"error": {"code", "message"}}`).
    pub fn refusal(&self) -> (u16, String) {
        let code = self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (self.status, code)
    }
    /// The `error.message` of an error body ("" if there is none).
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One request on a fresh connection.
pub async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response {
    let uri: hyper::Uri = url.parse().expect("a URL");
    let authority = uri.authority().expect("URL has host:port").to_string();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Client::connect(&authority)
        .await
        .request(method, path, headers, body)
        .await
}

/// A gateway whose agents also have host names under `agents.test`,
/// with one session of one conformance agent: the server, the session,
/// and the agent's host name (`{session}-0.agents.test:{port}`), which
/// clients reach by sending it as the `Host` (or `:authority`).
pub async fn gateway_with_host_names() -> (Server, SessionInfo, String) {
    let server = Server::start(
        5,
        &[
            "--mode",
            "gateway",
            "--set",
            "gateway.host_suffix=agents.test",
        ],
    );
    let s = server
        .session(Some(json!({"agents": [{"component": "conformance"}]})))
        .await;
    let info = SessionInfo::from(&s);
    let host = format!("{}-0.agents.test:{}", info.id, server.addr.port());
    (server, info, host)
}

/// Every event of a finished draft's feed, in order (the events stream
/// of a finished draft ends after the last one).
pub async fn draft_feed(server: &Server, id: &str, token: &str) -> Vec<Value> {
    http(
        "GET",
        &format!("{}/v1/drafts/{id}/events?token={token}", server.base()),
        &[],
        "",
    )
    .await
    .text()
    .lines()
    .filter_map(|l| l.strip_prefix("data: "))
    .map(|d| serde_json::from_str::<Value>(d).expect("feed events are JSON"))
    .collect()
}

/// A JSON-RPC call to an agent URL with the session's token.
pub async fn rpc(url: &str, token: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let auth = format!("Bearer {token}");
    let r = http("POST", url, &[("authorization", &auth)], body.to_string()).await;
    assert_eq!(
        r.status,
        200,
        "{method} got HTTP {}: {}",
        r.status,
        r.text()
    );
    r.json()
}

/// Asks for task `id` until it is in `state` (`TASK_STATE_…`) or `secs`
/// seconds pass; returns the last `GetTask` answer.
pub async fn task_in_state(url: &str, token: &str, id: &Value, state: &str, secs: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = rpc(url, token, "GetTask", json!({"id": id})).await;
        if got["result"]["status"]["state"] == state || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `SendMessage` params holding one user message with these parts.
pub fn message(parts: Value) -> Value {
    json!({"message": {
        "messageId": uuid_like(),
        "role": "ROLE_USER",
        "parts": parts,
    }})
}

/// `SendMessage` params holding one text part.
pub fn text_message(text: &str) -> Value {
    message(json!([{"text": text}]))
}

/// The text of a SendMessage answer's task status message (what an SDK
/// agent's reply says), or empty when the answer has none.
pub fn reply_text(r: &Value) -> String {
    r["result"]["task"]["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A unique-enough id for test messages.
pub fn uuid_like() -> String {
    static N: AtomicU16 = AtomicU16::new(0);
    format!(
        "msg-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The first three players of the pool, as the draft engine sends them.
pub fn sample_players() -> Value {
    json!([
        {"name": "Christian McCaffrey", "position": "RB", "team": "SF", "adp": 1.2, "tier": 1},
        {"name": "Justin Jefferson", "position": "WR", "team": "MIN", "adp": 1.8, "tier": 1},
        {"name": "CeeDee Lamb", "position": "WR", "team": "DAL", "adp": 2.5, "tier": 1},
        {"name": "Bijan Robinson", "position": "RB", "team": "ATL", "adp": 4.1, "tier": 1},
    ])
}

/// `host:port` of an agent URL (`http://host:port/`).
pub fn authority(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// Session fields every test reads.
#[derive(Clone)]
pub struct SessionInfo {
    pub id: String,
    pub token: String,
    pub urls: Vec<String>,
    /// The agents' ports (none in gateway mode).
    pub ports: Vec<u16>,
}

impl From<&Value> for SessionInfo {
    fn from(v: &Value) -> Self {
        let agents = v["agents"].as_array().expect("agents");
        SessionInfo {
            id: v["id"].as_str().unwrap().to_string(),
            token: v["token"].as_str().unwrap_or_default().to_string(),
            urls: agents
                .iter()
                .map(|a| a["url"].as_str().unwrap().to_string())
                .collect(),
            ports: agents
                .iter()
                .filter_map(|a| a["port"].as_u64().map(|p| p as u16))
                .collect(),
        }
    }
}

/// One keep-alive HTTP/1.1 connection, for many requests in a row.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

/// A keep-alive HTTP/1.1 connection to `host:port`, its driver spawned;
/// why not, if it cannot be opened.
pub async fn open_connection(
    authority: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, OpenError> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(OpenError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(OpenError::Handshake)?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Why [`open_connection`] failed; it does not name the address, so
/// failures to many addresses count as one kind.
#[derive(Debug)]
pub enum OpenError {
    Connect(std::io::Error),
    Handshake(hyper::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Connect(e) => write!(f, "connect: {e}"),
            OpenError::Handshake(e) => write!(f, "HTTP handshake: {e}"),
        }
    }
}

/// A duration in milliseconds, three decimals, for figures.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

impl Client {
    /// Connects to `host:port`.
    pub async fn connect(authority: &str) -> Client {
        let sender = open_connection(authority)
            .await
            .unwrap_or_else(|why| panic!("{authority}: {why}"));
        Client {
            sender,
            authority: authority.to_string(),
        }
    }

    /// Sends one request on this connection and reads the whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response {
        self.sender.ready().await.expect("connection is usable");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        // A `host` among `headers` replaces the connection's authority.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req = req.header("host", &self.authority);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .sender
            .send_request(req.body(Full::new(body.into())).unwrap())
            .await
            .expect("HTTP response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Response {
            status,
            headers,
            body,
        }
    }
}

/// Creates and deletes `n` sessions, so pools and allocators are warm
/// before something is measured.
pub async fn warm_up(control: &mut Client, n: usize) {
    for _ in 0..n {
        let s = control
            .request("POST", "/v1/sessions", &[], "")
            .await
            .json();
        let id = s["id"].as_str().expect("a session id");
        control
            .request("DELETE", &format!("/v1/sessions/{id}"), &[], "")
            .await;
    }
}

/// A session with one conformance agent that streams fast; its URL and
/// token.
pub async fn conformance_agent(server: &Server) -> (String, String) {
    let s = server
        .session(Some(
            json!({"agents": [{"component": "conformance", "config": {"interval_ms": 50}}]}),
        ))
        .await;
    let s = SessionInfo::from(&s);
    (s.urls[0].clone(), s.token)
}

/// The number after `field` (as `"VmRSS:"`) in `/proc/PID/{file}`, its
/// first word (Linux).
pub fn proc_number(pid: u32, file: &str, field: &str) -> u64 {
    let path = format!("/proc/{pid}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after {field} in {path}"))
}

/// Resident memory of process `pid`, in KiB (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    proc_number(pid, "status", "VmRSS:")
}

/// The process's proportional set size (`Pss` of
/// `/proc/PID/smaps_rollup`): the memory it takes, with pages mapped
/// more than once counted once. RSS counts a page once per mapping, so it
/// counts every instance's view of a component's copy-on-write memory
/// image (file pages all instances share) again.
pub fn pss_kib(pid: u32) -> u64 {
    proc_number(pid, "smaps_rollup", "Pss:")
}

/// What each of `n` sessions created with `body` (none: the default
/// five drafters) adds to `server`, in KiB: RSS growth and Pss growth,
/// each divided by `n`. The sessions are left alive.
///
/// The first reading waits out the allocator's purge (every 250 ms):
/// a server that has just started hands back 14 MiB of start-up memory
/// at its first, and read before that, the drop was taken off the
/// sessions' growth (500 drafter sessions read 197 KiB each, not 220).
pub async fn memory_per_session(server: &Server, body: Option<Value>, n: usize) -> (f64, f64) {
    let mut control = Client::connect(&server.addr.to_string()).await;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss0, pss0) = (rss_kib(server.pid()), pss_kib(server.pid()));
    for _ in 0..n {
        let r = control
            .request("POST", "/v1/sessions", &[], body.clone())
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let grown = |after: u64, before: u64| after.saturating_sub(before) as f64 / n as f64;
    (
        grown(rss_kib(server.pid()), rss0),
        grown(pss_kib(server.pid()), pss0),
    )
}

/// p99 of `n` sequential SendMessage calls (text `memory`) to an agent.
pub async fn p99_of_sendmessage(authority: &str, token: &str, n: usize) -> Duration {
    p99_until(authority, token, n, || true).await
}

/// p99 of sequential SendMessage calls: at least `n` of them, and on
/// until `done()` says so.
pub async fn p99_until(
    authority: &str,
    token: &str,
    n: usize,
    done: impl Fn() -> bool,
) -> Duration {
    let mut client = Client::connect(authority).await;
    let auth = format!("Bearer {token}");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message("memory")}).to_string();
    let mut samples = Vec::with_capacity(n);
    while samples.len() < n || !done() {
        let t0 = std::time::Instant::now();
        let r = client
            .request("POST", "/", &[("authorization", &auth)], body.clone())
            .await;
        samples.push(t0.elapsed());
        assert_eq!(r.status, 200);
    }
    samples.sort();
    percentile(&samples, 99.0)
}

/// The p-th percentile (0-100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// An SSE response being read event by event.
pub struct EventStream {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
    pub status: u16,
    pub content_type: String,
}

impl EventStream {
    /// Opens a streaming JSON-RPC call (`SendStreamingMessage`,
    /// `SubscribeToTask`).
    pub async fn open(url: &str, token: &str, method: &str, params: Value) -> EventStream {
        let uri: hyper::Uri = url.parse().expect("a URL");
        let authority = uri.authority().expect("host:port").to_string();
        let stream = TcpStream::connect(&authority).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let body = json!({"jsonrpc": "2.0", "id": "stream-1", "method": method, "params": params});
        let mut req = Request::post(uri.path())
            .header("host", &authority)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream");
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let response = sender
            .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await
            .expect("response");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        EventStream {
            body: response.into_body(),
            buffer: Vec::new(),
            status,
            content_type,
        }
    }

    /// The next event's JSON-RPC response, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(event).expect("UTF-8 events");
                let data: String = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data).expect("event data is JSON"));
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }

    /// The next event, or a panic if none comes within `secs` seconds.
    pub async fn expect(&mut self, secs: u64) -> Value {
        tokio::time::timeout(Duration::from_secs(secs), self.next())
            .await
            .expect("an event in time")
            .expect("the stream is still open")
    }

    /// Reads events until the stream ends; returns them.
    pub async fn rest(&mut self, secs: u64) -> Vec<Value> {
        let mut all = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.next()).await {
            all.push(e);
        }
        all
    }
}

/// A webhook receiver on loopback: every POST it gets arrives on `rx`.
pub struct Webhook {
    pub url: String,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<(hyper::HeaderMap, Value)>,
}

impl Webhook {
    /// Starts a webhook that answers 200 to everything.
    pub async fn start() -> Webhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let headers = req.headers().clone();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let _ = tx.send((headers, value));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::new(),
                            )))
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Webhook { url, rx }
    }

    /// The next notification, within `secs` seconds.
    pub async fn expect(&mut self, secs: u64) -> (hyper::HeaderMap, Value) {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .expect("a push notification in time")
            .expect("webhook running")
    }
}

// The mock draft through `/v1/drafts`.

/// Creates a draft; returns (id, token).
pub async fn create_draft(
    server: &Server,
    body: Value,
    headers: &[(&str, &str)],
) -> (String, String) {
    let r = http(
        "POST",
        &format!("{}/v1/drafts", server.base()),
        headers,
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

/// The draft as its owner sees it (`GET /v1/drafts/{id}`).
pub async fn draft_snapshot(server: &Server, id: &str, token: &str) -> Value {
    let auth = format!("Bearer {token}");
    let r = http(
        "GET",
        &format!("{}/v1/drafts/{id}", server.base()),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Polls the draft until `done` says so (10 s at most).
pub async fn wait_for_draft(
    server: &Server,
    id: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = draft_snapshot(server, id, token).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "draft stuck: {s}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Host time (ms) of a complete auto draft with `seed`, as the engine
/// reports it; the draft is deleted after.
pub async fn auto_draft_ms(server: &Server, seed: u64) -> f64 {
    let (id, token) = create_draft(server, json!({"auto": true, "seed": seed}), &[]).await;
    let done = wait_for_draft(server, &id, &token, |s| s["finished"] == true).await;
    assert_eq!(server.delete(&id).await, 204);
    done["elapsed_ms"]
        .as_f64()
        .expect("a finished draft reports its time")
}

/// The gRPC target an agent's card lists.
pub async fn grpc_target(url: &str) -> String {
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    let interfaces = card["supportedInterfaces"].as_array().unwrap();
    let grpc = interfaces
        .iter()
        .find(|i| i["protocolBinding"] == "GRPC")
        .unwrap_or_else(|| panic!("the card lists gRPC: {card}"));
    grpc["url"].as_str().unwrap().to_string()
}

/// One raw gRPC call over HTTP/2 with `content_type` and `body` (already
/// framed): the `grpc-status` it ends with (from the headers of a
/// trailers-only answer or from the trailers) and its `grpc-message`.
pub async fn raw_call(
    addr: &str,
    path: &str,
    content_type: &str,
    token: &str,
    body: Vec<u8>,
) -> (String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let status_of = |headers: &hyper::HeaderMap| {
        let text = |name| {
            headers
                .get(name)
                .map(|v: &hyper::header::HeaderValue| v.to_str().unwrap().to_string())
        };
        Some((
            text("grpc-status")?,
            text("grpc-message").unwrap_or_default(),
        ))
    };
    if let Some(status) = status_of(response.headers()) {
        return status;
    }
    let collected = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the body ends")
        .unwrap();
    status_of(collected.trailers().expect("trailers")).expect("a grpc-status")
}

/// `message` in gRPC's length-prefixed framing.
pub fn framed(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}
