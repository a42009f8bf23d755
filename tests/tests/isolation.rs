//! The isolation suite against a server started here, plus what only a
//! local run can measure: idle memory per session and the noisy
//! neighbour.

use std::time::Duration;

use a2a_sandbox_tests::*;
use serde_json::json;

/// The tests here measure time and memory: they run one at a time, so
/// none measures another's load.
async fn run_alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ALONE.lock().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_has_the_expected_outcome() {
    let _alone = run_alone().await;
    let server = Server::start(10, &["--call-timeout-ms", "1000"]);
    let report = isolation::run(&server.base()).await.expect("suite runs");
    println!("{}", report.render());
    assert!(report.passed(), "{}", report.render());
    let metrics = http("GET", &format!("{}/metrics", server.base()), &[], "")
        .await
        .text();
    for line in [
        "a2a_sandbox_guest_traps_total{kind=\"deadline\"} 3",
        "a2a_sandbox_guest_traps_total{kind=\"memory\"} 2",
        "a2a_sandbox_guest_traps_total{kind=\"stack_overflow\"} 1",
        "a2a_sandbox_guest_traps_total{kind=\"panic\"} 2",
        "a2a_sandbox_guest_traps_total{kind=\"response_too_large\"} 1",
    ] {
        assert!(metrics.contains(line), "metrics have {line}:\n{metrics}");
    }
    let value = |series: &str| -> u64 {
        let prefix = format!("a2a_sandbox_{series} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let dropped = |kind: &str| value(&format!("guest_output_dropped_total{{kind=\"{kind}\"}}"));
    assert!(
        value("guest_long_runners_total") >= 1,
        "the spin attack ran as a long runner and was counted:\n{metrics}"
    );
    assert!(
        dropped("emit") >= 19_000,
        "emits past the cap were dropped and counted"
    );
    assert!(
        dropped("log") >= 19_000,
        "logs past the rate were dropped and counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_cost_under_a_mebibyte_each() {
    let _alone = run_alone().await;
    const SESSIONS: usize = 500;
    const SCRIPTED: usize = 100;
    let server = Server::start(2600, &[]);
    let mut control = Client::connect(&server.addr.to_string()).await;
    // Warm up allocator and pools, then measure the growth.
    warm_up(&mut control, 20).await;
    let (rss, pss) = memory_per_session(&server, None, SESSIONS).await;
    println!(
        "idle memory: {SESSIONS} sessions of five drafters: {pss:.1} KiB each (Pss; RSS, which counts shared image pages once per instance: {rss:.1} KiB)"
    );
    assert!(pss <= 1024.0, "{pss:.1} KiB per idle session");
    // JavaScript and Python instances carry a whole language runtime in
    // their memory image; what an instance takes of its own stays small.
    for component in ["js-echo", "py-echo"] {
        let one = json!({"agents": [{"component": component}]});
        memory_per_session(&server, Some(one.clone()), 5).await;
        let (rss, pss) = memory_per_session(&server, Some(one), SCRIPTED).await;
        println!(
            "idle memory: {SCRIPTED} {component} instances: {pss:.1} KiB each (Pss; RSS {rss:.1} KiB)"
        );
        assert!(
            pss <= 1024.0,
            "an idle {component} instance takes {pss:.1} KiB"
        );
    }
}

/// Four sessions run the hostile fixture's attacks in a loop (spin,
/// alloc, flood, recurse, panic, huge); a fifth, quiet session's
/// SendMessage p99 must stay within 3x of its quiet baseline, measured in
/// one run over at least one full attack cycle per attacker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_session_keeps_its_latency_next_to_four_hostile_ones() {
    let _alone = run_alone().await;
    let server = Server::start(30, &["--call-timeout-ms", "1000"]);
    let quiet = SessionInfo::from(
        &server
            .session(Some(json!({"agents": [{"component": "bpa"}]})))
            .await,
    );
    let authority = authority(&quiet.urls[0]).to_string();
    p99_of_sendmessage(&authority, &quiet.token, 200).await;
    let baseline = p99_of_sendmessage(&authority, &quiet.token, 3000).await;

    // The attackers are other users: they run on a thread and runtime of
    // their own, so their client work does not queue behind the
    // measurement (or the other way round).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacks_done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut hostile = Vec::new();
    for _ in 0..4 {
        hostile.push(SessionInfo::from(
            &server
                .session(Some(json!({"agents": [{"component": "hostile"}]})))
                .await,
        ));
    }
    let attackers = {
        let stop = stop.clone();
        let attacks_done = attacks_done.clone();
        std::thread::spawn(move || {
            a2a_sandbox_tests::attacks::lowest_cpu_priority();
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
                let attacks: Vec<String> = std::env::var("A2A_NOISY_ATTACKS")
                    .unwrap_or_else(|_| "spin,alloc,flood 2000,recurse,panic,huge".into())
                    .split(',')
                    .map(str::to_string)
                    .collect();
                let loops: Vec<_> = hostile
                    .into_iter()
                    .map(|s| {
                        let (stop, attacks, attacks_done) = (stop.clone(), attacks.clone(), attacks_done.clone());
                        tokio::spawn(async move {
                            let auth = format!("Bearer {}", s.token);
                            let mut rounds = 0u32;
                            for attack in attacks.iter().cycle() {
                                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                    break;
                                }
                                let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message(attack)});
                                let r = http("POST", &s.urls[0], &[("authorization", &auth)], body.to_string()).await;
                                assert_eq!(r.status, 200);
                                rounds += 1;
                                attacks_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            rounds
                        })
                    })
                    .collect();
                let mut rounds = 0;
                for l in loops {
                    rounds += l.await.unwrap();
                }
                rounds
            })
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Measure until every attacker has been through every attack at
    // least once (one full cycle each), so the window covers them all.
    let attacks_per_cycle = std::env::var("A2A_NOISY_ATTACKS").map_or(6, |a| a.split(',').count());
    let noisy = p99_until(&authority, &quiet.token, 3000, || {
        attacks_done.load(std::sync::atomic::Ordering::Relaxed) >= 4 * attacks_per_cycle + 4
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = tokio::task::spawn_blocking(move || attackers.join().unwrap())
        .await
        .unwrap();
    let p99 = a2a_sandbox_tests::attacks::QuietP99 { baseline, noisy };
    println!("noisy neighbour: with 4 hostile sessions, {p99} ({rounds} attacks)");
    assert!(rounds >= 4, "the attackers ran");
    // The target is 3x; on a busy 2-core machine the test allows 10x (or
    // 10 ms for a sub-millisecond baseline) so that only a real
    // regression fails it.
    p99.assert_bounded("noisy neighbour");
}
