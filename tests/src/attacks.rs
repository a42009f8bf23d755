//! Attacks on the host's own resources whose figures both the tenancy
//! suite (with bounds for a busy machine) and `make bench` (against the
//! targets) report.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{
    Client, Server, SessionInfo, p99_of_sendmessage, p99_until, percentile, rpc, text_message,
};

/// Whole-history follow-ups the quiet session is measured across.
const ATTACK_ROUNDS: usize = 20;

/// Size of each follow-up in the big-history attack.
const FOLLOW_UP: usize = 300 << 10;

/// `host:port` of an agent URL (`http://host:port/`).
pub fn authority(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

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
    /// Another session's SendMessage p99, quiet.
    pub baseline: Duration,
    /// The same while follow-ups asking for the whole history run.
    pub noisy: Duration,
    /// Whole-history follow-ups sent meanwhile.
    pub rounds: usize,
}

impl BigHistory {
    /// How much dearer a follow-up got as the history grew (target 1).
    pub fn follow_up_growth(&self) -> f64 {
        self.big.as_secs_f64() / self.small.as_secs_f64()
    }

    /// The quiet session's p99 under attack over its baseline (target 3).
    pub fn quiet_ratio(&self) -> f64 {
        self.noisy.as_secs_f64() / self.baseline.as_secs_f64()
    }
}

impl fmt::Display for BigHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "big history: {:.1} MiB of history; a {} KiB follow-up (historyLength 1) {:?} on a short history, {:?} on the long one ({:.2}x); quiet p99 {:?} -> {:?} ({:.2}x) under {} whole-history follow-ups",
            self.history_bytes as f64 / 1048576.0,
            FOLLOW_UP >> 10,
            self.small,
            self.big,
            self.follow_up_growth(),
            self.baseline,
            self.noisy,
            self.quiet_ratio(),
            self.rounds
        )
    }
}

/// One session grows a task's history to tens of MiB with 300 KiB
/// follow-ups, then sends follow-ups that ask for the whole history
/// without end, while a quiet session's p99 is measured. The server needs
/// a content budget of some 48 MB (`budgets.store_bytes`).
pub async fn big_history(server: &Server) -> BigHistory {
    let quiet = one_agent(server, "echo").await;
    let attacker = one_agent(server, "conformance").await;
    let task = rpc(
        &attacker.urls[0],
        &attacker.token,
        "SendMessage",
        text_message("hold"),
    )
    .await["result"]["task"]["id"]
        .as_str()
        .expect("a task")
        .to_string();
    let quiet_authority = authority(&quiet.urls[0]).to_string();
    let baseline = p99_of_sendmessage(&quiet_authority, &quiet.token, 300).await;

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

    // The quiet session is measured over whole attack cycles: at least
    // ATTACK_ROUNDS follow-ups that each write out the whole history.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let attack = {
        let (attacker, task) = (attacker, task.clone());
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                follow_ups(&attacker, &task, None, 1).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let noisy = p99_until(&quiet_authority, &quiet.token, 300, || {
        done.load(Ordering::Relaxed) >= ATTACK_ROUNDS
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    attack.await.expect("the attack ran");
    let rounds = done.load(Ordering::Relaxed);
    BigHistory {
        history_bytes,
        small,
        big,
        baseline,
        noisy,
        rounds,
    }
}
