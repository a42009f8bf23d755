//! Scale on one machine: 3,500 sessions in port mode (17,500 agent ports)
//! and 20,000 in gateway mode (100,000 agent instances), every session
//! spot-checked with a SendMessage. Prints the memory and the create p99
//! at that load, twice: over the fill's last tenth, where each create also
//! touches memory the process has never used, and over creates made and
//! deleted one at a time once the fill is complete, as sessions come and
//! go on a server that stays full.

use std::time::{Duration, Instant};

use a2a_sandbox_tests::*;

fn rss_mib(pid: u32) -> f64 {
    rss_kib(pid) as f64 / 1024.0
}

/// Creates `n` default sessions over one connection; returns them and the
/// create latency p99 over the last 10%.
async fn fill(server: &Server, n: usize) -> (Vec<SessionInfo>, Duration) {
    let mut control = Client::connect(&server.addr.to_string()).await;
    let mut sessions = Vec::with_capacity(n);
    let mut tail = Vec::new();
    for i in 0..n {
        let t0 = Instant::now();
        let r = control.request("POST", "/v1/sessions", &[], "").await;
        assert_eq!(r.status, 201, "session {i}: {}", r.text());
        if i >= n - n / 10 {
            tail.push(t0.elapsed());
        }
        sessions.push(SessionInfo::from(&r.json()));
    }
    tail.sort();
    (sessions, percentile(&tail, 99.0))
}

/// Creates and deletes `rounds` sessions one after another over one
/// connection while the server holds its fill; returns the create p99.
async fn churn(server: &Server, rounds: usize) -> Duration {
    let mut control = Client::connect(&server.addr.to_string()).await;
    let mut creates = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t0 = Instant::now();
        let r = control.request("POST", "/v1/sessions", &[], "").await;
        creates.push(t0.elapsed());
        assert_eq!(r.status, 201, "churn session {i}: {}", r.text());
        let id = SessionInfo::from(&r.json()).id;
        let r = control
            .request("DELETE", &format!("/v1/sessions/{id}"), &[], "")
            .await;
        assert_eq!(r.status, 204, "churn session {i}: {}", r.text());
    }
    creates.sort();
    percentile(&creates, 99.0)
}

/// One SendMessage to one agent of every session (slot by index).
async fn spot_check(sessions: &[SessionInfo]) {
    let mut checks = Vec::new();
    for (i, chunk) in sessions.chunks(sessions.len().div_ceil(8)).enumerate() {
        let targets: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(j, s)| (s.urls[(i + j) % s.urls.len()].clone(), s.token.clone()))
            .collect();
        checks.push(tokio::spawn(async move {
            for (url, token) in targets {
                let r = rpc(&url, &token, "SendMessage", text_message("memory")).await;
                assert_eq!(
                    r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
                    "{url}: {r}"
                );
            }
        }));
    }
    for c in checks {
        c.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_five_hundred_port_sessions_and_twenty_thousand_gateway_sessions() {
    const PORT_SESSIONS: usize = 3_500;
    const GATEWAY_SESSIONS: usize = 20_000;

    let server = Server::start(
        1,
        &[
            "--mode",
            "ports",
            "--set",
            "port_range=12000-29999",
            "--max-instances",
            "17505",
        ],
    );
    let before = rss_mib(server.pid());
    let started = Instant::now();
    let (sessions, p99) = fill(&server, PORT_SESSIONS).await;
    let filled = started.elapsed();
    spot_check(&sessions).await;
    let after = rss_mib(server.pid());
    println!(
        "ports: {PORT_SESSIONS} sessions ({} agent ports) in {filled:?}; create p99 over the fill's last tenth {p99:?}; RSS {before:.0} -> {after:.0} MiB; open fds {}",
        PORT_SESSIONS * 5,
        server.metric("a2a_sandbox_open_fds").await
    );
    assert_eq!(
        server.metric("a2a_sandbox_ports_in_use").await,
        (PORT_SESSIONS * 5) as f64
    );
    drop(server);

    let map_count: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    // Two mappings per pool slot and four per live instance, as the
    // server counts them when it warns.
    let instances = GATEWAY_SESSIONS * 5 + 5;
    let needed = (instances * 6 + 4096) as u64;
    assert!(
        map_count >= needed,
        "vm.max_map_count is {map_count}: {instances} pooled instances need {needed} (make test raises it; see README, Scaling)"
    );
    let server = Server::start(
        1,
        &[
            "--mode",
            "gateway",
            "--max-instances",
            &instances.to_string(),
        ],
    );
    let before = rss_mib(server.pid());
    let started = Instant::now();
    let (sessions, p99) = fill(&server, GATEWAY_SESSIONS).await;
    let filled = started.elapsed();
    spot_check(&sessions).await;
    let after = rss_mib(server.pid());
    let churned = churn(&server, 1_000).await;
    println!(
        "gateway: {GATEWAY_SESSIONS} sessions ({} agent instances) in {filled:?}; create p99 over the fill's last tenth {p99:?}, creating and deleting at that load {churned:?}; RSS {before:.0} -> {after:.0} MiB ({:.0} KiB per session)",
        GATEWAY_SESSIONS * 5,
        (after - before) * 1024.0 / GATEWAY_SESSIONS as f64
    );
    assert_eq!(
        server.metric("a2a_sandbox_instances_live").await,
        (GATEWAY_SESSIONS * 5) as f64
    );
}
