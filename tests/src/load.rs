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
//! requests one after another.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::Instant;

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
}

impl Run {
    fn merge(&mut self, other: Run) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
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

/// A lane's connections, one per server address, opened when first used
/// and again after a failure.
#[derive(Default)]
struct Connections(HashMap<String, SendRequest<Full<Bytes>>>);

impl Connections {
    /// Sends one SendMessage to `target`; true when it completed a task.
    async fn send(&mut self, target: &Target, body: &Bytes) -> bool {
        let usable = match self.0.get_mut(&target.authority) {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let Some(sender) = connect(&target.authority).await else {
                self.0.remove(&target.authority);
                return false;
            };
            self.0.insert(target.authority.clone(), sender);
        }
        let sender = self.0.get_mut(&target.authority).expect("connected");
        let request = Request::post(&target.path)
            .header("host", &target.authority)
            .header("content-type", "application/json")
            .header("authorization", &target.authorization)
            .body(Full::new(body.clone()))
            .expect("a request");
        let completed = match sender.send_request(request).await {
            Ok(response) if response.status() == 200 => match response.collect().await {
                Ok(body) => contains(&body.to_bytes(), b"TASK_STATE_COMPLETED"),
                Err(_) => false,
            },
            _ => false,
        };
        if !completed {
            self.0.remove(&target.authority);
        }
        completed
    }

    /// Opens a connection to each address among `targets`.
    async fn open(&mut self, targets: &[Target]) {
        for target in targets {
            if !self.0.contains_key(&target.authority)
                && let Some(sender) = connect(&target.authority).await
            {
                self.0.insert(target.authority.clone(), sender);
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn connect(authority: &str) -> Option<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(authority).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Open loop: each target gets one SendMessage every `period` for `run`,
/// `targets` spread round-robin over `lanes` lanes (one keep-alive
/// connection per lane and server address). Latency counts from when each
/// request was due.
pub async fn open_loop(targets: &[Target], lanes: usize, period: Duration, run: Duration) -> Run {
    let total = targets.len();
    let lanes = lanes.clamp(1, total.max(1));
    let clock = Clock::new(lanes);
    let tasks: Vec<_> = (0..lanes)
        .map(|lane| {
            // Target i is due at i/total of the period after the start,
            // then every period.
            let mine: Vec<(Target, Duration)> = (lane..total)
                .step_by(lanes)
                .map(|i| (targets[i].clone(), period.mul_f64(i as f64 / total as f64)))
                .collect();
            let clock = clock.clone();
            tokio::spawn(async move {
                let body = send_message();
                let mut connections = Connections::default();
                let just_targets: Vec<Target> = mine.iter().map(|(t, _)| t.clone()).collect();
                connections.open(&just_targets).await;
                let start = clock.started().await;
                let end = start + run;
                let mut due: BinaryHeap<Reverse<(Instant, usize)>> = mine
                    .iter()
                    .enumerate()
                    .map(|(k, (_, phase))| Reverse((start + *phase, k)))
                    .collect();
                let mut measured = Run::default();
                while let Some(Reverse((at, k))) = due.pop() {
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                    if connections.send(&mine[k].0, &body).await {
                        measured.micros.push(micros(at.elapsed()));
                    } else {
                        measured.errors += 1;
                    }
                    due.push(Reverse((at + period, k)));
                }
                measured
            })
        })
        .collect();
    let start = clock.start().await;
    gather(tasks, start).await
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
                    if connections.send(target, &body).await {
                        measured.micros.push(micros(sent.elapsed()));
                    } else {
                        measured.errors += 1;
                    }
                }
                measured
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

async fn gather(tasks: Vec<tokio::task::JoinHandle<Run>>, start: Instant) -> Run {
    let mut all = Run::default();
    for task in tasks {
        all.merge(task.await.expect("a load lane"));
    }
    all.elapsed = start.elapsed();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_rank_the_answers() {
        let run = Run {
            micros: (1..=1000).rev().collect(),
            errors: 0,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(run.percentile(50.0), Duration::from_micros(501));
        assert_eq!(run.percentile(99.9), Duration::from_micros(999));
        assert_eq!(run.percentile(100.0), Duration::from_micros(1000));
        assert_eq!(run.per_second(), 500.0);
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
