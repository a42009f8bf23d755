//! Attacks on the host's own resources whose figures both the tenancy
//! suite (with bounds for a busy machine) and `make bench` (against the
//! targets) report.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    Client, Server, SessionInfo, authority, message, p99_of_sendmessage, p99_until, percentile,
    rpc, text_message,
};

/// Whole-history follow-ups the quiet session is measured across.
const ATTACK_ROUNDS: usize = 20;

/// Size of each follow-up in the big-history attack.
const FOLLOW_UP: usize = 300 << 10;

/// A session of one agent of `component`.
pub async fn one_agent(server: &Server, component: &str) -> SessionInfo {
    SessionInfo::from(
        &server
            .session(Some(json!({"agents": [{"component": component}]})))
            .await,
    )
}

/// `count` follow-ups of `size` bytes to one task, each asking for
/// `history` messages back; returns the time of each, in order.
pub async fn follow_ups(
    agent: &SessionInfo,
    task: &str,
    history: Option<u32>,
    count: usize,
) -> Vec<Duration> {
    let mut client = Client::connect(authority(&agent.urls[0])).await;
    let auth = format!("Bearer {}", agent.token);
    let text = "h".repeat(FOLLOW_UP);
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let mut params = text_message(&text);
        params["message"]["taskId"] = json!(task);
        if let Some(n) = history {
            params["configuration"] = json!({"historyLength": n});
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params});
        let t0 = Instant::now();
        let r = client
            .request("POST", "/", &[("authorization", &auth)], body.to_string())
            .await;
        times.push(t0.elapsed());
        assert_eq!(r.status, 200, "{}", r.text());
    }
    times
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    percentile(&times, 50.0)
}

/// What the big-history attack measured.
pub struct BigHistory {
    /// Bytes of the task's history once grown.
    pub history_bytes: usize,
    /// Median follow-up (historyLength 1) on a short history.
    pub small: Duration,
    /// The same on the grown history.
    pub big: Duration,
    /// Another session's p99 while follow-ups asking for the whole
    /// history ran.
    pub quiet: QuietP99,
}

impl BigHistory {
    /// How much dearer a follow-up got as the history grew (target 1).
    pub fn follow_up_growth(&self) -> f64 {
        self.big.as_secs_f64() / self.small.as_secs_f64()
    }
}

impl fmt::Display for BigHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "big history: {:.1} MiB of history; a {} KiB follow-up (historyLength 1) {:?} on a short history, {:?} on the long one ({:.2}x); {} under {ATTACK_ROUNDS} whole-history follow-ups",
            self.history_bytes as f64 / 1048576.0,
            FOLLOW_UP >> 10,
            self.small,
            self.big,
            self.follow_up_growth(),
            self.quiet,
        )
    }
}

/// One session grows a task's history to tens of MiB with 300 KiB
/// follow-ups, then sends `ATTACK_ROUNDS` follow-ups that each ask for
/// the whole history, while a quiet session's p99 is measured. The server
/// needs a content budget of some 48 MB (`budgets.store_bytes`).
pub async fn big_history(server: &Server) -> BigHistory {
    let quiet = one_agent(server, "echo").await;
    let attacker = one_agent(server, "conformance").await;
    let task = rpc(
        &attacker.urls[0],
        &attacker.token,
        "SendMessage",
        text_message("work"),
    )
    .await["result"]["task"]["id"]
        .as_str()
        .expect("a task")
        .to_string();
    let small = median(follow_ups(&attacker, &task, Some(1), 5).await);
    follow_ups(&attacker, &task, Some(0), 60).await;
    let history_bytes: usize = rpc(
        &attacker.urls[0],
        &attacker.token,
        "GetTask",
        json!({"id": task}),
    )
    .await["result"]["history"]
        .as_array()
        .map_or(0, |h| h.iter().map(|m| m.to_string().len()).sum());
    let big = median(follow_ups(&attacker, &task, Some(1), 5).await);
    let (quiet_id, attacker_id) = (quiet.id.clone(), attacker.id.clone());
    let whole_history = async move { follow_ups(&attacker, &task, None, ATTACK_ROUNDS).await };
    let (quiet, _) = quiet_p99_during(&quiet, whole_history).await;
    // The history's memory goes back, for whatever the server runs next.
    server.delete(&quiet_id).await;
    server.delete(&attacker_id).await;
    BigHistory {
        history_bytes,
        small,
        big,
        quiet,
    }
}

/// A quiet session's SendMessage p99, alone and while another session
/// attacks.
#[derive(Clone, Copy, Debug)]
pub struct QuietP99 {
    /// Before the attack.
    pub baseline: Duration,
    /// While it ran.
    pub noisy: Duration,
}

impl QuietP99 {
    /// Under attack over quiet (target at most 3).
    pub fn ratio(&self) -> f64 {
        self.noisy.as_secs_f64() / self.baseline.as_secs_f64()
    }

    /// The bound the suites assert on a busy 2-core machine: 10x the
    /// baseline, or 10 ms if that is more (a sub-millisecond p99 on a
    /// shared machine is mostly scheduler noise). `make bench` prints the
    /// ratio against the 3x target.
    pub fn assert_bounded(&self, attack: &str) {
        let bound = (self.baseline * 10).max(Duration::from_millis(10));
        assert!(
            self.noisy <= bound,
            "{attack}: quiet p99 {:?}, bound {bound:?} (target 3x)",
            self.noisy
        );
    }
}

impl fmt::Display for QuietP99 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "quiet p99 {:?} -> {:?} ({:.2}x)",
            self.baseline,
            self.noisy,
            self.ratio()
        )
    }
}

/// Runs `attack` while `quiet` sends SendMessage calls one after another
/// (at least 200, and on until the attack is over); returns the quiet
/// session's p99 before and during it, and what the attack returned.
///
/// The attacking client runs on a thread of its own at the lowest CPU
/// priority: a real attacker's client runs on another machine, and on a
/// 2-core machine its own work (building and reading megabytes of JSON)
/// would otherwise be counted as the host's.
pub async fn quiet_p99_during<F>(quiet: &SessionInfo, attack: F) -> (QuietP99, F::Output)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    const SAMPLES: usize = 200;
    let quiet_authority = authority(&quiet.urls[0]).to_string();
    let baseline = p99_of_sendmessage(&quiet_authority, &quiet.token, SAMPLES).await;
    let over = Arc::new(AtomicBool::new(false));
    let attacker = {
        let over = Arc::clone(&over);
        std::thread::spawn(move || {
            lowest_cpu_priority();
            let output = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the attacker")
                .block_on(attack);
            over.store(true, Ordering::Relaxed);
            output
        })
    };
    let noisy = p99_until(&quiet_authority, &quiet.token, SAMPLES, || {
        over.load(Ordering::Relaxed)
    })
    .await;
    let output = tokio::task::spawn_blocking(move || attacker.join())
        .await
        .expect("joined")
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    (QuietP99 { baseline, noisy }, output)
}

/// Lowers the calling thread's CPU priority to the least (nice 19): an
/// attacking client's thread, whose own work would otherwise be counted
/// as the host's on a machine shared with it.
pub fn lowest_cpu_priority() {
    // SAFETY: gettid has no preconditions; setpriority on our own thread
    // id changes only this thread's nice value.
    let lowered = unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19)
    };
    assert_eq!(
        lowered,
        0,
        "setpriority: {}",
        std::io::Error::last_os_error()
    );
}

/// Calls the call flood sends.
pub const FLOOD_CALLS: usize = 300;

/// What a call flood got back.
#[derive(Clone, Copy, Debug)]
pub struct Flood {
    /// Calls accepted (running or queued).
    pub accepted: usize,
    /// Calls refused by the queue budget.
    pub refused: usize,
}

/// `FLOOD_CALLS` SendMessage calls of 512 KiB with `returnImmediately` to
/// the hostile agent of `agent`, each of which sleeps in the guest until
/// the call deadline. Every refusal must be the queue budget's 429.
pub async fn call_flood(agent: SessionInfo) -> Flood {
    let mut client = Client::connect(authority(&agent.urls[0])).await;
    let auth = format!("Bearer {}", agent.token);
    let mut params = message(json!([{"text": format!("sleep {}", "z".repeat(512 << 10))}]));
    params["configuration"] = json!({"returnImmediately": true});
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}).to_string();
    let mut flood = Flood {
        accepted: 0,
        refused: 0,
    };
    for _ in 0..FLOOD_CALLS {
        let r = client
            .request("POST", "/", &[("authorization", &auth)], body.clone())
            .await;
        match r.status {
            200 => flood.accepted += 1,
            429 => {
                flood.refused += 1;
                assert!(r.headers.contains_key("retry-after"));
                let e = r.json();
                assert_eq!(e["error"]["code"], -32000, "{e}");
                assert!(
                    e["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("budgets.queued_calls_per_agent"),
                    "{e}"
                );
            }
            other => panic!("HTTP {other}: {}", r.text()),
        }
    }
    flood
}

/// Sends messages of one `part` each to `agent` until its store refuses
/// one (at most 500); returns how many were stored.
pub async fn fill_store(agent: SessionInfo, part: Value) -> usize {
    let mut client = Client::connect(authority(&agent.urls[0])).await;
    let auth = format!("Bearer {}", agent.token);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": message(json!([part]))})
        .to_string();
    for stored in 0..500 {
        let r = client
            .request("POST", "/", &[("authorization", &auth)], body.clone())
            .await;
        if r.status == 429 {
            assert!(
                r.text().contains("budgets.store_bytes"),
                "the store budget refused: {}",
                r.text()
            );
            return stored;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    500
}

/// A TCP listener that accepts connections and never answers; returns its
/// webhook URL and the task that holds the connections.
pub async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    (url, held)
}

/// `count` completed tasks on the conformance agent of `agent`, each with
/// a push config that delivers to `hook`; returns how many were accepted.
pub async fn push_to(agent: SessionInfo, hook: String, count: usize) -> usize {
    let mut configs = 0;
    for _ in 0..count {
        let mut params = message(json!([{"text": "complete"}]));
        params["configuration"] = json!({"taskPushNotificationConfig": {"url": hook}});
        let r = rpc(&agent.urls[0], &agent.token, "SendMessage", params).await;
        if r.get("result").is_some() {
            configs += 1;
        }
    }
    configs
}
