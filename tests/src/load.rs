//! Load at fleet scale, for `make bench`: an open-loop generator that
//! sends at a constant arrival rate whatever the server does, and a
//! closed-loop one that sends as fast as answers come back.
//!
//! Open loop: every target gets one SendMessage per period, at a phase of
//! its own spread over the period, and each latency is measured from the
//! time the request was due, not from when it could be sent. A server that
//! falls behind therefore shows as latency (the requests queued behind a
//! slow answer wait on their connection), never as fewer requests: the
//! coordinated omission of a closed loop is not hidden.
//!
//! Requests are spread over lanes: a lane is one task with one keep-alive
//! connection per server address it talks to, sending its targets'
//! requests one after another. Targets the server has no descriptors to
//! hold a connection for get a connection per request instead.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use serde_json::json;
use tokio::time::Instant;

use crate::ms;

/// One agent to send to: where, and with which token.
#[derive(Clone, Debug)]
pub struct Target {
    authority: String,
    path: String,
    authorization: String,
}

impl Target {
    /// The agent at `url` (`http://host:port/path`), with its session's
    /// `token`.
    pub fn new(url: &str, token: &str) -> Target {
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        Target {
            authority: authority.to_string(),
            path: format!("/{path}"),
            authorization: format!("Bearer {token}"),
        }
    }
}

/// What a run measured: every answer's latency, and the failures.
#[derive(Debug, Default)]
pub struct Run {
    /// Latency of each successful answer, in microseconds.
    pub micros: Vec<u32>,
    /// Requests that failed: a refused connection, a non-200 status, or an
    /// answer that is not a completed task.
    pub errors: usize,
    /// How long the run took.
    pub elapsed: Duration,
    /// Why requests failed, by kind, with how many.
    pub why: std::collections::BTreeMap<String, usize>,
}

impl Run {
    /// Adds another lane's answers and failures to this run's.
    pub fn merge(&mut self, other: Run) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
        for (why, n) in other.why {
            *self.why.entry(why).or_default() += n;
        }
    }

    /// Counts one request: its latency when it succeeded, else why not.
    fn count(&mut self, sent: Result<(), Failure>, latency: Duration) {
        match sent {
            Ok(()) => self.answered(latency),
            Err(why) => self.failed(why),
        }
    }

    /// Counts a successful answer that took `latency`.
    pub fn answered(&mut self, latency: Duration) {
        self.micros.push(micros(latency));
    }

    /// Counts a failed request under `why`.
    pub fn failed(&mut self, why: impl std::fmt::Display) {
        self.errors += 1;
        *self.why.entry(why.to_string()).or_default() += 1;
    }

    /// The error count and its first few kinds (`0` when none failed): a
    /// reason that names a task would otherwise make each failure a kind
    /// of its own.
    pub fn describe_errors(&self) -> String {
        const SHOWN: usize = 3;
        if self.errors == 0 {
            return "0".into();
        }
        let mut kinds: Vec<String> = self
            .why
            .iter()
            .take(SHOWN)
            .map(|(w, n)| format!("{n} {w}"))
            .collect();
        if self.why.len() > SHOWN {
            kinds.push(format!("{} more", self.why.len() - SHOWN));
        }
        format!("{} ({})", self.errors, kinds.join(", "))
    }

    /// Successful answers per second.
    pub fn per_second(&self) -> f64 {
        self.micros.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`th percentile latency of the successful answers.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted: Vec<Duration> = self
            .micros
            .iter()
            .map(|&us| Duration::from_micros(u64::from(us)))
            .collect();
        sorted.sort_unstable();
        crate::percentile(&sorted, p)
    }
}

/// The SendMessage every request carries (the same bytes each time).
fn send_message() -> Bytes {
    Bytes::from(
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
            "messageId": "load", "role": "ROLE_USER", "parts": [{"text": "memory"}]}}})
        .to_string(),
    )
}

/// A lane's keep-alive connections, one per server address, opened
/// before the run (and again after a failure).
#[derive(Default)]
struct Connections {
    open: HashMap<String, SendRequest<Full<Bytes>>>,
}

impl Connections {
    /// Sends one SendMessage to `target` over the lane's connection to its
    /// address; `Ok` when it completed a task.
    async fn send(&mut self, target: &Target, body: &Bytes) -> Result<(), Failure> {
        let usable = match self.open.get_mut(&target.authority) {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            match crate::open_connection(&target.authority).await {
                Ok(sender) => self.open.insert(target.authority.clone(), sender),
                Err(why) => {
                    self.open.remove(&target.authority);
                    return Err(Failure::Open(why));
                }
            };
        }
        let sender = self.open.get_mut(&target.authority).expect("connected");
        let answered = post(sender, target, body, false).await;
        if answered.is_err() {
            self.open.remove(&target.authority);
        }
        answered
    }

    /// Opens a connection to each address among `targets`.
    async fn open(&mut self, targets: impl IntoIterator<Item = &Target>) {
        for target in targets {
            if !self.open.contains_key(&target.authority)
                && let Ok(sender) = crate::open_connection(&target.authority).await
            {
                self.open.insert(target.authority.clone(), sender);
            }
        }
    }
}

/// Sends one SendMessage to `target` on a new connection, closed after
/// the answer.
async fn send_once(target: &Target, body: &Bytes) -> Result<(), Failure> {
    let mut sender = crate::open_connection(&target.authority)
        .await
        .map_err(Failure::Open)?;
    post(&mut sender, target, body, true).await
}

/// Posts `body` to `target` on `sender`; `Ok` when the answer is a
/// completed task. `close` asks the server to close the connection after
/// it answers.
async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    body: &Bytes,
    close: bool,
) -> Result<(), Failure> {
    let mut request = Request::post(&target.path);
    if close {
        request = request.header("connection", "close");
    }
    let request = request
        .header("host", &target.authority)
        .header("content-type", "application/json")
        .header("authorization", &target.authorization)
        .body(Full::new(body.clone()))
        .expect("a request");
    match sender.send_request(request).await {
        Ok(response) if response.status() == 200 => {
            match response.collect().await.map(|b| b.to_bytes()) {
                Ok(body) if contains(&body, b"TASK_STATE_COMPLETED") => Ok(()),
                Ok(_) => Err(Failure::NotCompleted),
                Err(_) => Err(Failure::Cut),
            }
        }
        Ok(response) => Err(Failure::Status(response.status().as_u16())),
        Err(_) => Err(Failure::Cut),
    }
}

/// Why a request failed.
enum Failure {
    /// The connection could not be opened (the reason names no address).
    Open(crate::OpenError),
    Cut,
    Status(u16),
    NotCompleted,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Open(why) => write!(f, "{why}"),
            Failure::Cut => write!(f, "connections closed before the answer"),
            Failure::Status(code) => write!(f, "HTTP {code}"),
            Failure::NotCompleted => write!(f, "answers that were not a completed task"),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Open loop: each target gets one SendMessage every `period` for `run`,
/// `targets` spread round-robin over `lanes` lanes. Latency counts from
/// when each request was due.
///
/// `held` of the targets, spread evenly among them, are sent to over
/// keep-alive connections the lanes hold for the run; each of the others
/// gets a new connection for every request, closed after its answer, as
/// clients do when the server cannot hold a connection for each. A
/// lane's keep-alive connection carries one request at a time, so a slow
/// answer delays the lane's next request on it (still measured from when
/// it was due); a request on a connection of its own is sent when due
/// whatever is still in flight, as independent clients would.
pub async fn open_loop(
    targets: &[Target],
    lanes: usize,
    held: usize,
    period: Duration,
    run: Duration,
) -> Run {
    let total = targets.len();
    let lanes = lanes.clamp(1, total.max(1));
    let clock = Clock::new(lanes);
    let tasks: Vec<_> = (0..lanes)
        .map(|lane| {
            // Target i is due at i/total of the period after the start,
            // then every period.
            let mine: Vec<(Target, Duration, bool)> = (lane..total)
                .step_by(lanes)
                .map(|i| {
                    let phase = period.mul_f64(i as f64 / total as f64);
                    (targets[i].clone(), phase, is_held(i, held, total))
                })
                .collect();
            let clock = clock.clone();
            tokio::spawn(async move {
                let body = send_message();
                let mut connections = Connections::default();
                let kept: Vec<&Target> = mine
                    .iter()
                    .filter(|(_, _, held)| *held)
                    .map(|(target, _, _)| target)
                    .collect();
                connections.open(kept).await;
                let start = clock.started().await;
                let end = start + run;
                let mut due: BinaryHeap<Reverse<(Instant, usize)>> = mine
                    .iter()
                    .enumerate()
                    .map(|(k, (_, phase, _))| Reverse((start + *phase, k)))
                    .collect();
                let mut measured = Run::default();
                // A request on a connection of its own does not wait for
                // the lane's previous answer: the lane only keeps time.
                let mut own_connections = tokio::task::JoinSet::new();
                while let Some(Reverse((at, k))) = due.pop() {
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                    let (target, _, held) = &mine[k];
                    if *held {
                        let sent = connections.send(target, &body).await;
                        measured.count(sent, at.elapsed());
                    } else {
                        let (target, body) = (target.clone(), body.clone());
                        own_connections.spawn(async move {
                            let sent = send_once(&target, &body).await;
                            (sent, at.elapsed())
                        });
                    }
                    due.push(Reverse((at + period, k)));
                    while let Some(done) = own_connections.try_join_next() {
                        let (sent, latency) = done.expect("a request task");
                        measured.count(sent, latency);
                    }
                }
                while let Some(done) = own_connections.join_next().await {
                    let (sent, latency) = done.expect("a request task");
                    measured.count(sent, latency);
                }
                (measured, connections)
            })
        })
        .collect();
    let start = clock.start().await;
    gather(tasks, start).await
}

/// Whether target `i` of `total` is among the `held` that keep a
/// connection: exactly `held` of them are, spread evenly, so the requests
/// that open a connection each are spread over the period too.
fn is_held(i: usize, held: usize, total: usize) -> bool {
    (i + 1) * held / total > i * held / total
}

/// Closed loop: `lanes` lanes send back to back for `run`, each cycling
/// over its share of `targets` (several lanes share a target when there
/// are fewer targets than lanes). Latency counts from each send.
pub async fn closed_loop(targets: &[Target], lanes: usize, run: Duration) -> Run {
    assert!(!targets.is_empty(), "a closed loop needs a target");
    let clock = Clock::new(lanes);
    let tasks: Vec<_> = (0..lanes)
        .map(|lane| {
            let mine: Vec<Target> = if targets.len() >= lanes {
                (lane..targets.len())
                    .step_by(lanes)
                    .map(|i| targets[i].clone())
                    .collect()
            } else {
                vec![targets[lane % targets.len()].clone()]
            };
            let clock = clock.clone();
            tokio::spawn(async move {
                let body = send_message();
                let mut connections = Connections::default();
                connections.open(&mine).await;
                let end = clock.started().await + run;
                let mut measured = Run::default();
                for target in mine.iter().cycle() {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let answered = connections.send(target, &body).await;
                    measured.count(answered, sent.elapsed());
                }
                (measured, connections)
            })
        })
        .collect();
    let start = clock.start().await;
    gather(tasks, start).await
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// The start both loops share: lanes open their connections first, then
/// wait for one start time, so connecting is not measured.
#[derive(Clone)]
struct Clock {
    ready: std::sync::Arc<tokio::sync::Barrier>,
    start: tokio::sync::watch::Receiver<Option<Instant>>,
    set: std::sync::Arc<tokio::sync::watch::Sender<Option<Instant>>>,
}

impl Clock {
    fn new(lanes: usize) -> Clock {
        let (set, start) = tokio::sync::watch::channel(None);
        Clock {
            ready: std::sync::Arc::new(tokio::sync::Barrier::new(lanes + 1)),
            start,
            set: std::sync::Arc::new(set),
        }
    }

    /// A lane is connected; waits for the start time.
    async fn started(mut self) -> Instant {
        self.ready.wait().await;
        let start = self
            .start
            .wait_for(Option::is_some)
            .await
            .expect("the run's start");
        start.expect("set")
    }

    /// Waits for every lane to connect, then starts the run shortly after.
    async fn start(&self) -> Instant {
        self.ready.wait().await;
        let start = Instant::now() + Duration::from_millis(50);
        self.set.send_replace(Some(start));
        start
    }
}

/// The lanes' runs together. Each lane hands back its connections, which
/// stay open until every lane is done: a lane that ends first would
/// otherwise close its connections while others still measure.
async fn gather(tasks: Vec<tokio::task::JoinHandle<(Run, Connections)>>, start: Instant) -> Run {
    let mut all = Run::default();
    let mut open = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (run, connections) = task.await.expect("a load lane");
        all.merge(run);
        open.push(connections);
    }
    all.elapsed = start.elapsed();
    drop(open);
    all
}

/// Descriptors the fleet runs need: 10,000 client connections here, and
/// in the server (which inherits the limit) as many listeners and
/// accepted connections.
const FLEET_DESCRIPTORS: u64 = 65_536;

/// Raises this process's descriptor limit for the fleet runs (children,
/// the server among them, inherit it); without the privilege, to the
/// hard limit.
pub fn raise_descriptor_limit() {
    let now = descriptor_limits();
    let wanted = libc::rlimit {
        rlim_cur: FLEET_DESCRIPTORS,
        rlim_max: FLEET_DESCRIPTORS.max(now.rlim_max),
    };
    // SAFETY: setrlimit only reads the struct passed, which lives across
    // each call.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            let hard = libc::rlimit {
                rlim_cur: now.rlim_max,
                rlim_max: now.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &hard);
            eprintln!(
                "note: the descriptor limit stays at {}; the port-mode fleet run holds fewer connections",
                now.rlim_max
            );
        }
    }
}

/// This process's descriptor limits, soft and hard.
fn descriptor_limits() -> libc::rlimit {
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed, which lives across
    // the call.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) };
    now
}

/// Descriptors a fleet server keeps for everything but the open loop's
/// held connections. The server takes connections up to its limit less
/// its listeners, its outbound connections
/// ([`FLEET_OUTBOUND_CONNECTIONS`]) and a reserve of 128, so this leaves
/// room for 300 - 16 - 128 = 156 connections opened per request at
/// once, beside the held ones.
const DESCRIPTOR_MARGIN: usize = 300;

/// The fleet server's outbound connections: it sends no webhooks, so its
/// descriptors go to client connections.
const FLEET_OUTBOUND_CONNECTIONS: usize = 16;

/// Keep-alive connections a server with `listeners` agent ports can hold
/// within its descriptor limit, which it inherits from this process.
fn connections_beside(listeners: usize) -> usize {
    usize::try_from(descriptor_limits().rlim_cur)
        .unwrap_or(usize::MAX)
        .saturating_sub(listeners + DESCRIPTOR_MARGIN)
}

/// Sessions in a fleet run, five drafters each.
pub const FLEET_SESSIONS: usize = 2_000;
/// How long the open loop runs, each agent getting one SendMessage a
/// second.
pub const FLEET_SECONDS: u64 = 60;
/// Sessions and connections of the closed loop.
const CLOSED_SESSIONS: usize = 100;
const CLOSED_LANES: usize = 64;
/// The closed loops take turns, a window each per round: on a shared
/// machine one window can be slow for reasons of its own, so the ratio
/// is taken between windows side by side and the median round's is the
/// figure.
const CLOSED_ROUNDS: usize = 3;
const CLOSED_SECONDS: u64 = 5;
/// Lanes the open loop spreads the agents over.
const OPEN_LANES: usize = 256;

/// A fleet run on a server of its own: the open loop over every agent,
/// and the closed loop over 100 sessions beside one over a single port.
pub struct Fleet {
    mode: String,
    sessions: usize,
    seconds: u64,
    create_p99: Duration,
    /// Agents the open loop sent to over keep-alive connections; each of
    /// the others got a connection per request.
    held: usize,
    open: Run,
    /// Where the machine's CPU went during the open loop.
    open_cpu: CpuShare,
    closed: Vec<ClosedRound>,
}

/// One round of the closed loops: many sessions, then one agent, each
/// with the server's CPU per answer in µs.
struct ClosedRound {
    sessions: Run,
    one_agent: Run,
    sessions_cpu_us: f64,
    one_agent_cpu_us: f64,
}

/// A closed loop, and the server's CPU per answer over it in µs.
async fn closed_loop_cpu(
    server: u32,
    targets: &[Target],
    lanes: usize,
    run: Duration,
) -> (Run, f64) {
    let (measured, spent) = cpu_during(server, closed_loop(targets, lanes, run)).await;
    let cpu_us = 1e6 * spent / (measured.micros.len() as f64).max(1.0);
    (measured, cpu_us)
}

/// Runs `work`; returns what it gave and the CPU seconds process `pid`
/// spent meanwhile.
pub async fn cpu_during<T>(pid: u32, work: impl std::future::Future<Output = T>) -> (T, f64) {
    let before = process_cpu_seconds(pid);
    let done = work.await;
    (done, process_cpu_seconds(pid) - before)
}

impl ClosedRound {
    /// The many sessions' answers per second over the one agent's.
    fn ratio(&self) -> f64 {
        self.sessions.per_second() / self.one_agent.per_second().max(1.0)
    }
}

/// Ratios as whole percentages, listed: "98%, 87%, 93%".
pub fn percentages(ratios: &[f64]) -> String {
    ratios
        .iter()
        .map(|r| format!("{:.0}%", 100.0 * r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ratios as multiples to two places, listed: "1.58x, 1.63x".
pub fn multiples(ratios: &[f64]) -> String {
    ratios
        .iter()
        .map(|r| format!("{r:.2}x"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The median of `figures` (none if empty).
pub fn median(mut figures: Vec<f64>) -> Option<f64> {
    figures.sort_by(f64::total_cmp);
    figures.get(figures.len() / 2).copied()
}

/// Starts a server in `mode` (`ports` or `gateway`), fills it with
/// `sessions` default sessions (five drafters each), and runs the open
/// loop for `seconds`, then the closed loops.
pub async fn fleet(mode: &str, sessions: usize, seconds: u64) -> Fleet {
    let agents = sessions * 5;
    let ports = if mode == "ports" { agents + 100 } else { 5 };
    let server = crate::Server::start(
        u16::try_from(ports).expect("a port range"),
        &[
            "--mode",
            mode,
            "--max-instances",
            &(agents + 50).to_string(),
            "--set",
            "http.max_connections=30000",
            "--set",
            &format!("outbound.max_connections={FLEET_OUTBOUND_CONNECTIONS}"),
            "--set",
            "budgets.queued_calls_per_agent=16",
        ],
    );
    let mut control = crate::Client::connect(&server.addr.to_string()).await;
    let mut created = Vec::with_capacity(sessions);
    let mut creates = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let t0 = std::time::Instant::now();
        let r = control.request("POST", "/v1/sessions", &[], "").await;
        creates.push(t0.elapsed());
        assert_eq!(r.status, 201, "{mode} session {i}: {}", r.text());
        created.push(crate::SessionInfo::from(&r.json()));
    }
    drop(control);
    creates.sort();
    let targets: Vec<Target> = created
        .iter()
        .flat_map(|s| s.urls.iter().map(|u| Target::new(u, &s.token)))
        .collect();
    // Port mode: every agent is a listener of its own, and the server's
    // descriptors hold its listeners and its connections alike.
    let held = match mode {
        "ports" => connections_beside(ports).min(agents),
        _ => agents,
    };
    let cpu_before = CpuTicks::now(server.pid());
    let open = open_loop(
        &targets,
        OPEN_LANES,
        held,
        Duration::from_secs(1),
        Duration::from_secs(seconds),
    )
    .await;
    let open_cpu = cpu_before.share_since(server.pid());
    let closed_for = Duration::from_secs(CLOSED_SECONDS);
    let closed_agents = CLOSED_SESSIONS.min(sessions) * 5;
    let mut closed = Vec::with_capacity(CLOSED_ROUNDS);
    let pid = server.pid();
    for _ in 0..CLOSED_ROUNDS {
        let (one_agent, one_agent_cpu_us) =
            closed_loop_cpu(pid, &targets[..1], 8, closed_for).await;
        let (sessions, sessions_cpu_us) =
            closed_loop_cpu(pid, &targets[..closed_agents], CLOSED_LANES, closed_for).await;
        closed.push(ClosedRound {
            sessions,
            one_agent,
            sessions_cpu_us,
            one_agent_cpu_us,
        });
    }
    Fleet {
        mode: mode.to_string(),
        sessions,
        seconds,
        create_p99: crate::percentile(&creates, 99.0),
        held,
        open,
        open_cpu,
        closed,
    }
}

/// CPU time so far, in clock ticks: of the server, of this process, and
/// the machine's stolen and idle time (all CPUs).
struct CpuTicks {
    server: u64,
    generator: u64,
    steal: u64,
    idle: u64,
    at: std::time::Instant,
}

/// CPU used over a stretch of time, in cores (a core busy the whole
/// time is 1).
#[derive(Debug)]
struct CpuShare {
    server: f64,
    generator: f64,
    steal: f64,
    idle: f64,
}

impl std::fmt::Display for CpuShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} / {:.2} / {:.2} / {:.2} of {}",
            self.server,
            self.generator,
            self.steal,
            self.idle,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )
    }
}

impl CpuTicks {
    fn now(server: u32) -> CpuTicks {
        let (steal, idle) = machine_steal_and_idle();
        CpuTicks {
            server: process_ticks(&server.to_string()),
            generator: process_ticks("self"),
            steal,
            idle,
            at: std::time::Instant::now(),
        }
    }

    fn share_since(self, server: u32) -> CpuShare {
        let now = CpuTicks::now(server);
        let per_second = ticks_per_second();
        let seconds = now.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let cores =
            |after: u64, before: u64| after.saturating_sub(before) as f64 / per_second / seconds;
        CpuShare {
            server: cores(now.server, self.server),
            generator: cores(now.generator, self.generator),
            steal: cores(now.steal, self.steal),
            idle: cores(now.idle, self.idle),
        }
    }
}

/// CPU time process `pid` has used so far (user plus system), in
/// seconds; 0 if it cannot be read.
fn process_cpu_seconds(pid: u32) -> f64 {
    process_ticks(&pid.to_string()) as f64 / ticks_per_second()
}

/// Clock ticks a second, the unit of `/proc`'s CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// User plus system ticks of process `pid` (`self` for this one), from
/// `/proc/{pid}/stat`; 0 if it cannot be read.
fn process_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces, in ().
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15, the 12th and 13th after it.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// The machine's stolen and idle ticks over all CPUs, from `/proc/stat`.
fn machine_steal_and_idle() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| cpu.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    (at(7), at(3) + at(4))
}

impl Fleet {
    /// How the open loop's clients connected.
    fn connections(&self) -> String {
        let agents = self.sessions * 5;
        match agents - self.held {
            0 => "keep-alive".into(),
            own if own == agents => "a connection per request".into(),
            own => format!(
                "keep-alive to {} agents, a connection per request to {own}",
                self.held
            ),
        }
    }

    /// The run as table rows: what, figure, target.
    pub fn rows(&self) -> Vec<(String, String, &'static str)> {
        let (mode, sessions, seconds, open) = (&self.mode, self.sessions, self.seconds, &self.open);
        vec![
            (
                format!("{mode} mode: session create p99 while filling to {sessions} sessions"),
                ms(self.create_p99),
                "at most 2 ms",
            ),
            (
                format!(
                    "{mode} mode, open loop: {sessions} sessions x 5 drafters, each 1 SendMessage/s for {seconds}s, {OPEN_LANES} lanes ({}): answers/s, p50 / p99 / p99.9 / max",
                    self.connections()
                ),
                format!(
                    "{:.0}/s, {} / {} / {} / {}",
                    open.per_second(),
                    ms(open.percentile(50.0)),
                    ms(open.percentile(99.0)),
                    ms(open.percentile(99.9)),
                    ms(open.percentile(100.0)),
                ),
                "p99 at most 5 ms",
            ),
            (
                format!(
                    "{mode} mode, open loop: the machine's CPU in cores, server / load generator / taken by the host of this VM (steal) / idle"
                ),
                self.open_cpu.to_string(),
                "",
            ),
            (
                format!("{mode} mode, open loop: errors"),
                open.describe_errors(),
                "0",
            ),
            (
                format!(
                    "{mode} mode, closed loop: {} sessions over {CLOSED_LANES} connections / one agent over 8 connections, answers/s: the median of {CLOSED_ROUNDS} rounds of {CLOSED_SECONDS}s windows side by side",
                    CLOSED_SESSIONS.min(sessions)
                ),
                self.closed_figure(),
                "at least 90%",
            ),
        ]
    }

    /// The closed loops' median ratio, every round's, the median
    /// answers per second of each loop, and the errors of all.
    fn closed_figure(&self) -> String {
        let ratios: Vec<f64> = self.closed.iter().map(ClosedRound::ratio).collect();
        let Some(ratio) = median(ratios.clone()) else {
            return "not measured".into();
        };
        let median_of = |of: fn(&ClosedRound) -> f64| {
            median(self.closed.iter().map(of).collect()).unwrap_or(f64::NAN)
        };
        let errors: usize = self
            .closed
            .iter()
            .map(|r| r.sessions.errors + r.one_agent.errors)
            .sum();
        format!(
            "{:.0}% (rounds: {}; median {:.0} / {:.0}, the server's CPU per answer {:.1} / {:.1} µs; {errors} errors)",
            100.0 * ratio,
            percentages(&ratios),
            median_of(|r| r.sessions.per_second()),
            median_of(|r| r.one_agent.per_second()),
            median_of(|r| r.sessions_cpu_us),
            median_of(|r| r.one_agent_cpu_us),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_listed_as_whole_percentages() {
        assert_eq!(percentages(&[0.984, 0.87, 1.1]), "98%, 87%, 110%");
        assert_eq!(percentages(&[]), "");
    }

    #[test]
    fn ratios_are_listed_as_multiples() {
        assert_eq!(multiples(&[1.584, 1.6, 3.0]), "1.58x, 1.60x, 3.00x");
        assert_eq!(multiples(&[]), "");
    }

    #[test]
    fn percentiles_rank_the_answers() {
        let run = Run {
            micros: (1..=1000).rev().collect(),
            errors: 0,
            elapsed: Duration::from_secs(2),
            why: Default::default(),
        };
        assert_eq!(run.percentile(50.0), Duration::from_micros(501));
        assert_eq!(run.percentile(99.9), Duration::from_micros(999));
        assert_eq!(run.percentile(100.0), Duration::from_micros(1000));
        assert_eq!(run.per_second(), 500.0);
    }

    #[test]
    fn failures_are_counted_by_kind_and_at_most_three_kinds_are_named() {
        let mut run = Run::default();
        assert_eq!(run.describe_errors(), "0");
        run.failed(Failure::Status(503));
        run.failed(Failure::Status(503));
        run.failed("Unavailable: closed");
        assert_eq!(
            run.describe_errors(),
            "3 (2 HTTP 503, 1 Unavailable: closed)"
        );
        run.failed(Failure::Open(crate::OpenError::Connect(
            std::io::ErrorKind::ConnectionRefused.into(),
        )));
        run.failed(Failure::Cut);
        assert_eq!(
            run.describe_errors(),
            "5 (2 HTTP 503, 1 Unavailable: closed, 1 connect: connection refused, 1 more)"
        );
    }

    #[test]
    fn held_connections_are_as_many_as_asked_and_spread_evenly() {
        for (held, total) in [(0, 10), (10, 10), (7, 10), (3, 10), (8_600, 10_000), (1, 3)] {
            let kept: Vec<bool> = (0..total).map(|i| is_held(i, held, total)).collect();
            assert_eq!(
                kept.iter().filter(|&&k| k).count(),
                held,
                "{held} of {total}"
            );
            // Every stretch of targets has its share of each kind, so the
            // connections opened per request do not bunch up in one part
            // of the period.
            for (kind, count) in [(true, held), (false, total - held)] {
                if count == 0 {
                    continue;
                }
                let stretch = total.div_ceil(count);
                for window in kept.windows(stretch) {
                    assert!(
                        window.contains(&kind),
                        "{stretch} targets in a row without a held={kind} one: {held} of {total}"
                    );
                }
            }
        }
    }

    #[test]
    fn targets_split_url_into_address_and_path() {
        let t = Target::new("http://127.0.0.1:8080/s/abc/0/", "tok");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/s/abc/0/");
        assert_eq!(t.authorization, "Bearer tok");
        assert_eq!(Target::new("http://127.0.0.1:5000/", "t").path, "/");
    }
}
