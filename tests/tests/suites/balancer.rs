//! Scale-out behind a real load balancer: three servers, each with its
//! own instance id, behind HAProxy configured by `deploy/haproxy.cfg`
//! (the file the README documents, used as is). Creates go through the
//! balancer, every agent of every session is used through it (by path
//! and by host name), a drained server stops getting creates while its
//! sessions keep working, and a killed server's sessions get a JSON error
//! at once while the others are unaffected.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use a2a_sandbox_tests::*;
use serde_json::json;

const INSTANCES: [&str; 3] = ["s0", "s1", "s2"];

/// HAProxy running `deploy/haproxy.cfg`; killed when dropped.
struct Balancer {
    child: Child,
    base: String,
}

impl Balancer {
    fn start(listen: &str, servers: &[Server]) -> Balancer {
        let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("HAProxy is installed (`make test` installs Debian's haproxy)");
        let mut command = Command::new(haproxy);
        command
            .arg("-db")
            .arg("-f")
            .arg(repo_root().join("deploy/haproxy.cfg"))
            .env("A2A_BALANCER_LISTEN", listen)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (id, server) in INSTANCES.iter().zip(servers) {
            command.env(
                format!("A2A_SERVER_{}", id.to_uppercase()),
                server.addr.to_string(),
            );
        }
        let child = command.spawn().expect("HAProxy starts");
        Balancer {
            child,
            base: format!("http://{listen}"),
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on yet.
fn free_address() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

/// The instance a session id names: what comes before its UUID.
fn instance_of(id: &str) -> &str {
    let uuid_len = 36;
    assert!(id.len() > uuid_len + 1, "{id} carries no instance id");
    &id[..id.len() - uuid_len - 1]
}

/// Sends one SendMessage to every agent of `session` (through the URLs
/// the create returned) and checks each answer.
async fn use_every_agent(session: &SessionInfo) {
    for (slot, url) in session.urls.iter().enumerate() {
        let text = format!("hello {slot}");
        let answer = rpc(url, &session.token, "SendMessage", text_message(&text)).await;
        assert!(
            answer.get("error").is_none() && answer["result"].is_object(),
            "{url}: {answer}"
        );
        assert!(answer.to_string().contains(&text), "{url}: {answer}");
    }
}

/// One SendMessage of `text` to `url` with the session's token (and
/// `host` as the Host header when given): the answer as it came.
async fn send_text(url: &str, host: Option<&str>, session: &SessionInfo, text: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": text_message(text)});
    let auth = format!("Bearer {}", session.token);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(host.map(|h| ("host", h)));
    http("POST", url, &headers, body.to_string()).await
}

/// A SendMessage to slot 0 by the agent's host name, through the
/// balancer.
async fn use_by_host_name(balancer: &Balancer, session: &SessionInfo) -> Response {
    let host = format!("{}-0.agents.test", session.id);
    send_text(
        &format!("{}/", balancer.base),
        Some(&host),
        session,
        "by host name",
    )
    .await
}

/// Creates a session of five echo agents through the balancer. Its URLs
/// name the agents' host names at the balancer's port; the session is
/// returned with its path URLs (`/s/{id}/{slot}/` on the balancer), which
/// route as well.
async fn create(balancer: &Balancer) -> (SessionInfo, Duration) {
    let five_echoes = json!({"agents": vec![json!({"component": "echo"}); 5]});
    let started = Instant::now();
    let r = http(
        "POST",
        &format!("{}/v1/sessions", balancer.base),
        &[],
        five_echoes.to_string(),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status, 201, "create through the balancer: {}", r.text());
    let mut session = SessionInfo::from(&r.json());
    let port = balancer.base.rsplit(':').next().unwrap();
    for (slot, url) in session.urls.iter_mut().enumerate() {
        assert_eq!(
            *url,
            format!("http://{}-{slot}.agents.test:{port}/", session.id)
        );
        *url = format!("{}/s/{}/{slot}/", balancer.base, session.id);
    }
    (session, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_behind_haproxy_route_drain_and_fail_over() {
    let listen = free_address();
    let public_url = format!("http://{listen}");
    let mut servers: Vec<Server> = INSTANCES
        .iter()
        .map(|id| {
            Server::start(
                5,
                &[
                    "--mode",
                    "gateway",
                    "--public-url",
                    &public_url,
                    "--set",
                    &format!("instance_id={id}"),
                    "--set",
                    "gateway.host_suffix=agents.test",
                    "--set",
                    "http.session_drain_secs=120",
                ],
            )
        })
        .collect();
    let balancer = Balancer::start(&listen, &servers);
    let ready = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            let r = http("GET", &format!("{}/readyz", balancer.base), &[], "").await;
            if r.status == 200 {
                break;
            }
        }
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "HAProxy never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Creates through the balancer reach every server, and each session's
    // id names the server that holds it.
    let mut by_instance: BTreeMap<String, Vec<SessionInfo>> = BTreeMap::new();
    let mut create_times = Vec::new();
    while by_instance.len() < 3 || by_instance.values().any(|s| s.len() < 2) {
        assert!(
            create_times.len() < 40,
            "creates never reached all three servers: {:?}",
            by_instance.keys().collect::<Vec<_>>()
        );
        let (session, took) = create(&balancer).await;
        create_times.push(took);
        by_instance
            .entry(instance_of(&session.id).to_string())
            .or_default()
            .push(session);
    }
    assert_eq!(
        by_instance.keys().map(String::as_str).collect::<Vec<_>>(),
        INSTANCES
    );
    create_times.sort();

    // Every agent of every session, by path; slot 0 by host name; the
    // session itself on the control API.
    for session in by_instance.values().flatten() {
        use_every_agent(session).await;
        let r = use_by_host_name(&balancer, session).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("by host name"), "{}", r.text());
        let r = http(
            "GET",
            &format!("{}/v1/sessions/{}", balancer.base, session.id),
            &[],
            "",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["id"], session.id.as_str());
    }

    // Drain s1: it refuses creates and fails readiness, and the balancer
    // sends creates elsewhere, while s1's sessions keep working.
    servers[1].sigterm();
    let r = loop {
        let r = http("GET", &format!("{}/readyz", servers[1].base()), &[], "").await;
        if r.status == 503 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(r.json()["status"], "draining");
    let (status, code) = servers[1].create(None).await.refusal();
    assert_eq!((status, code.as_str()), (503, "draining"));
    for _ in 0..6 {
        let (session, _) = create(&balancer).await;
        assert_ne!(
            instance_of(&session.id),
            "s1",
            "a draining server got a create"
        );
        by_instance
            .entry(instance_of(&session.id).to_string())
            .or_default()
            .push(session);
    }
    for session in &by_instance["s1"] {
        use_every_agent(session).await;
    }

    // Kill s2: its sessions get the balancer's JSON error at once; the
    // other servers' sessions are unaffected.
    servers[2].kill();
    let mut failovers = Vec::new();
    for session in &by_instance["s2"] {
        let started = Instant::now();
        let r = send_text(&session.urls[0], None, session, "anyone there?").await;
        failovers.push(started.elapsed());
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.refusal().1, "instance_unavailable", "{}", r.text());
        assert!(r.error_message().contains("create a new session"));
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let r = use_by_host_name(&balancer, session).await;
        assert_eq!(r.refusal(), (503, "instance_unavailable".to_string()));
    }
    let slowest_failover = failovers.iter().max().copied().unwrap();
    assert!(
        slowest_failover < Duration::from_secs(5),
        "a dead server's session waited {slowest_failover:?} for its error"
    );
    for id in ["s0", "s1"] {
        for session in &by_instance[id] {
            use_every_agent(session).await;
        }
    }
    let (session, _) = create(&balancer).await;
    assert_eq!(instance_of(&session.id), "s0", "only s0 takes creates now");
    use_every_agent(&session).await;

    // The drained server exits once its last session is deleted.
    for session in &by_instance["s1"] {
        let r = http(
            "DELETE",
            &format!("{}/v1/sessions/{}", balancer.base, session.id),
            &[],
            "",
        )
        .await;
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let exited = servers[1]
        .exit_within(20)
        .expect("the drained server exited");
    assert!(exited.success(), "{exited:?}");

    println!(
        "balancer: create through HAProxy p50 {:?} max {:?} over {} creates; \
         a killed server's session answered 503 instance_unavailable within {:?} (slowest of {})",
        create_times[create_times.len() / 2],
        create_times.last().unwrap(),
        create_times.len(),
        slowest_failover,
        failovers.len()
    );
}
