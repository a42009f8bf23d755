//! Running it for many users: expiry, gateway mode, limits, admin auth,
//! slow clients, readiness, graceful shutdown and churn, against the real
//! binary.

use std::time::{Duration, Instant};

use a2a_sandbox_tests::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ports_free(ports: &[u16]) -> bool {
    ports
        .iter()
        .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire_and_keepalive_keeps_them() {
    let server = Server::start(
        10,
        &["--mode", "ports", "--set", "sessions.idle_timeout_secs=1"],
    );
    let idle = SessionInfo::from(&server.session(None).await);
    let kept = server.session(None).await;
    assert_eq!(kept["idle_timeout_secs"], 1);
    let kept = SessionInfo::from(&kept);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let r = server.keepalive(&kept.id).await;
        assert_eq!(r.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let gone = server.get_session(&idle.id).await;
    assert_eq!(gone.status, 404, "the idle session was reaped");
    assert!(ports_free(&idle.ports), "its ports are free");
    let alive = server.get_session(&kept.id).await;
    assert_eq!(alive.status, 200, "keepalive kept it");
    // Agent traffic counts as activity too.
    for _ in 0..6 {
        rpc(
            &kept.urls[0],
            &kept.token,
            "SendMessage",
            text_message("memory"),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(server.get_session(&kept.id).await.status, 200);
    assert_eq!(
        server
            .metric("a2a_sandbox_sessions_ended_total{kind=\"expired\"}")
            .await,
        1.0
    );

    let ttl = Server::start(5, &["--set", "sessions.ttl_secs=1"]);
    let s = ttl.session(None).await;
    assert!(s["expires_at"].as_str().unwrap().ends_with('Z'));
    let s = SessionInfo::from(&s);
    for _ in 0..8 {
        ttl.keepalive(&s.id).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        ttl.get_session(&s.id).await.status,
        404,
        "TTL ends it despite keepalives"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_mode_serves_agents_on_paths_of_the_control_listener() {
    let server = Server::start(5, &["--mode", "gateway"]);
    let s = server
        .session(Some(json!({"agents": [{"component": "conformance", "config": {"interval_ms": 20}}, {"component": "bpa"}]})))
        .await;
    assert_eq!(s["mode"], "gateway");
    assert!(s["agents"][0].get("port").is_none());
    let info = SessionInfo::from(&s);
    let url = &info.urls[0];
    assert_eq!(url, &format!("{}/s/{}/0/", server.base(), info.id));
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json();
    assert_eq!(
        card["supportedInterfaces"][0]["url"],
        url.as_str(),
        "the card advertises the gateway URL"
    );
    let r = rpc(url, &info.token, "SendMessage", text_message("complete")).await;
    assert_eq!(
        r["result"]["task"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    let mut stream = EventStream::open(
        url,
        &info.token,
        "SendStreamingMessage",
        text_message("stream 2"),
    )
    .await;
    assert_eq!(
        stream.rest(5).await.len(),
        5,
        "task, 2 progress, artifact, completed"
    );
    let r = rpc(
        &info.urls[1],
        &info.token,
        "SendMessage",
        text_message("memory"),
    )
    .await;
    assert!(r["result"]["task"].is_object());
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message("x")})
            .to_string();
    assert_eq!(http("POST", url, &[], body.clone()).await.status, 401);
    let unknown = http(
        "POST",
        &format!("{}/s/nope/0/", server.base()),
        &[],
        body.clone(),
    )
    .await;
    assert_eq!(unknown.refusal(), (404, "session_not_found".into()));
    let no_slot = http(
        "POST",
        &format!("{}/s/{}/7/", server.base(), info.id),
        &[],
        body,
    )
    .await;
    assert_eq!(no_slot.status, 404);

    // auto: ports while they last, then the gateway.
    let auto = Server::start(5, &["--mode", "auto"]);
    let first = auto.session(None).await;
    let second = auto.session(None).await;
    assert_eq!(
        (first["mode"].as_str(), second["mode"].as_str()),
        (Some("ports"), Some("gateway"))
    );
    let second = SessionInfo::from(&second);
    let r = rpc(
        &second.urls[4],
        &second.token,
        "SendMessage",
        text_message("memory"),
    )
    .await;
    assert!(r["result"]["task"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_503_429_413_with_retry_after() {
    let server = Server::start(
        30,
        &[
            "--set",
            "sessions.max_sessions=2",
            "--set",
            "http.agent_rate_per_session=5",
            "--set",
            "http.max_body_bytes=2048",
        ],
    );
    let a = SessionInfo::from(
        &server
            .session(Some(json!({"agents": [{"component": "bpa"}]})))
            .await,
    );
    server
        .session(Some(json!({"agents": [{"component": "bpa"}]})))
        .await;
    let full = server.create(None).await;
    assert_eq!(full.status, 503);
    assert_eq!(full.json()["error"]["code"], "server_full");
    assert!(full.headers.get("retry-after").is_some());

    let auth = format!("Bearer {}", a.token);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message("memory")}).to_string();
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(
            http(
                "POST",
                &a.urls[0],
                &[("authorization", &auth)],
                body.clone(),
            )
            .await,
        );
    }
    let limited = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("the session rate limit hit");
    assert!(limited.headers.get("retry-after").is_some());
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    assert!(
        statuses.iter().filter(|r| r.status == 200).count() >= 10,
        "the burst went through"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message(&"x".repeat(4096))}).to_string();
    assert_eq!(
        http("POST", &a.urls[0], &[("authorization", &auth)], big)
            .await
            .status,
        413
    );

    let per_ip = Server::start(
        10,
        &[
            "--set",
            "sessions.max_sessions_per_ip=1",
            "--set",
            "http.control_rate_per_ip=5",
        ],
    );
    per_ip
        .session(Some(json!({"agents": [{"component": "bpa"}]})))
        .await;
    let second = per_ip
        .create(Some(json!({"agents": [{"component": "bpa"}]})))
        .await;
    assert_eq!(second.status, 429);
    assert_eq!(second.json()["error"]["code"], "too_many_sessions");
    let mut codes = Vec::new();
    for _ in 0..15 {
        codes.push(
            http("GET", &format!("{}/v1/sessions", per_ip.base()), &[], "")
                .await
                .status,
        );
    }
    assert!(
        codes.contains(&429),
        "the control rate limit hit: {codes:?}"
    );
    assert_eq!(
        http("GET", &format!("{}/healthz", per_ip.base()), &[], "")
            .await
            .status,
        200,
        "health is never limited"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await; // /metrics is a control request too
    assert!(
        per_ip
            .metric("a2a_sandbox_rate_limited_total{kind=\"control\"}")
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_guards_the_control_api() {
    let token = "admin-token-0123456789";
    let server = Server::start(5, &["--set", &format!("admin_token={token}")]);
    let base = server.base();
    let none = http("POST", &format!("{base}/v1/sessions"), &[], "").await;
    assert_eq!(none.status, 401);
    assert!(none.error_message().contains("admin token"));
    let wrong = http(
        "GET",
        &format!("{base}/v1/sessions"),
        &[("authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(
        http("GET", &format!("{base}/metrics"), &[], "")
            .await
            .status,
        401
    );
    let auth = format!("Bearer {token}");
    let ok = http(
        "POST",
        &format!("{base}/v1/sessions"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(ok.status, 201);
    assert_eq!(
        http("GET", &format!("{base}/healthz"), &[], "")
            .await
            .status,
        200
    );
    assert_eq!(
        http("GET", &format!("{base}/readyz"), &[], "").await.status,
        200
    );

    // Beyond loopback without a token the server refuses to start.
    let out = std::process::Command::new(server_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--agents-dir"])
        .arg(repo_root().join("build/agents"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_token"));
}

async fn cut_off_within(addr: &str, limit: Duration) -> bool {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    // The server answers 408 or just closes; either way the read ends.
    let read = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    read.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_and_readiness_follows_the_pool() {
    let server = Server::start(
        5,
        &["--mode", "ports", "--set", "http.header_timeout_secs=1"],
    );
    let ready = http("GET", &format!("{}/readyz", server.base()), &[], "").await;
    assert_eq!(ready.status, 200);
    let s = SessionInfo::from(&server.session(None).await);
    let started = Instant::now();
    assert!(cut_off_within(&format!("127.0.0.1:{}", s.ports[0]), Duration::from_secs(5)).await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut off after about a second"
    );
    assert!(cut_off_within(&server.addr.to_string(), Duration::from_secs(5)).await);
    // A body that never finishes arriving is cut off too.
    let slow_body = Server::start(
        5,
        &["--set", "http.body_timeout_secs=1", "--allow-open-sessions"],
    );
    let open = SessionInfo::from(
        &slow_body
            .session(Some(
                json!({"agents": [{"component": "bpa"}], "auth": "none"}),
            ))
            .await,
    );
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{}", open.ports[0]))
        .await
        .unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\"")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"));
    assert!(started.elapsed() < Duration::from_secs(3));

    let full = http("GET", &format!("{}/readyz", server.base()), &[], "").await;
    assert_eq!(full.status, 503, "no ports left and the gateway is off");
    assert!(full.text().contains("no free agent ports"));
}

/// A client that asks for answers and takes none of them is cut off once
/// nothing has been taken for `http.body_timeout_secs`, instead of
/// keeping the answers' buffers for as long as it keeps the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_of_its_answers_is_cut_off() {
    let server = Server::start(5, &["--set", "http.body_timeout_secs=1"]);
    let (url, token) = conformance_agent(&server).await;
    // A task whose answer is some 1.6 MB: the message and its echo.
    let sent = rpc(
        &url,
        &token,
        "SendMessage",
        text_message(&"x".repeat(800_000)),
    )
    .await;
    let id = sent["result"]["task"]["id"].as_str().unwrap();
    let get = json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": id}});
    let answer_bytes = rpc(&url, &token, "GetTask", json!({"id": id}))
        .await
        .to_string()
        .len();
    let (authority, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{get}",
        get.to_string().len()
    );
    // Twenty answers in a row, far more than the sockets' buffers hold.
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream
        .write_all(request.repeat(20).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut taken = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut taken)).await;
    assert!(
        ended.is_ok(),
        "the connection is still open after {} bytes",
        taken.len()
    );
    assert!(
        taken.len() < 10 * answer_bytes,
        "cut off, not served: {} bytes of the {} asked for",
        taken.len(),
        20 * answer_bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_finish_then_frees_everything() {
    let mut server = Server::start(5, &["--mode", "ports"]);
    let s = SessionInfo::from(
        &server
            .session(Some(
                json!({"agents": [{"component": "conformance", "config": {"interval_ms": 300}}]}),
            ))
            .await,
    );
    let (url, token) = (s.urls[0].clone(), s.token.clone());
    let slow =
        tokio::spawn(
            async move { rpc(&url, &token, "SendMessage", text_message("stream 3")).await },
        );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(15);
        (status, server)
    });
    let r = slow.await.unwrap();
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "the call in flight finished"
    );
    let (status, _server) = status.await.unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit 0");
    assert!(ports_free(&s.ports));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_drain_serves_held_sessions_until_its_time_is_up() {
    let mut server = Server::start(
        10,
        &["--mode", "ports", "--set", "http.session_drain_secs=2"],
    );
    let s = SessionInfo::from(
        &server
            .session(Some(json!({"agents": [{"component": "echo"}]})))
            .await,
    );
    let signalled = std::time::Instant::now();
    server.sigterm();
    server.wait_for_log("draining sessions", 10).await;
    let r = http("GET", &format!("{}/readyz", server.base()), &[], "").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (503, json!("draining"))
    );
    assert_eq!(
        server.create(None).await.refusal(),
        (503, "draining".into())
    );
    // The session held is served as before, on its own port.
    let answer = rpc(
        &s.urls[0],
        &s.token,
        "SendMessage",
        text_message("still here"),
    )
    .await;
    assert!(answer.to_string().contains("still here"), "{answer}");
    assert_eq!(server.get_session(&s.id).await.status, 200);
    // Its time up, the server shuts down as ever.
    let status = tokio::task::spawn_blocking(move || (server.exit_within(15), server))
        .await
        .unwrap()
        .0;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit 0");
    assert!(
        signalled.elapsed() >= Duration::from_millis(1900),
        "the drain ended after {:?}, before its 2 s",
        signalled.elapsed()
    );
    assert!(ports_free(&s.ports));
}

async fn delete_session(control: &mut Client, id: &str) {
    let r = control
        .request("DELETE", &format!("/v1/sessions/{id}"), &[], "")
        .await;
    assert_eq!(r.status, 204, "delete {id}: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_no_session_port_or_descriptor_behind() {
    const CLIENTS: usize = 4;
    const OPERATIONS: usize = 10_000;
    let server = Server::start(60, &["--mode", "ports"]);
    let baseline = server.metric("a2a_sandbox_open_fds").await;
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let authority = server.addr.to_string();
        clients.push(tokio::spawn(async move {
            let mut control = Client::connect(&authority).await;
            let mut live: Vec<String> = Vec::new();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ c as u64;
            for _ in 0..OPERATIONS / CLIENTS {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let create = live.is_empty() || (live.len() < 3 && seed.is_multiple_of(2));
                if create {
                    let r = control
                        .request(
                            "POST",
                            "/v1/sessions",
                            &[],
                            json!({"agents": [{"component": "bpa"}]}).to_string(),
                        )
                        .await;
                    match r.status {
                        201 => live.push(r.json()["id"].as_str().unwrap().to_string()),
                        503 => {}
                        other => panic!("create answered {other}: {}", r.text()),
                    }
                } else {
                    let id = live.swap_remove(seed as usize % live.len());
                    delete_session(&mut control, &id).await;
                }
            }
            for id in live {
                delete_session(&mut control, &id).await;
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.metric("a2a_sandbox_sessions_active").await, 0.0);
    assert_eq!(server.metric("a2a_sandbox_ports_in_use").await, 0.0);
    assert_eq!(server.metric("a2a_sandbox_instances_live").await, 0.0);
    let after = server.metric("a2a_sandbox_open_fds").await;
    println!(
        "churn: {OPERATIONS} creates and deletes by {CLIENTS} clients in {took:?}; open fds {baseline} -> {after}"
    );
    assert!(
        after <= baseline + 2.0,
        "descriptors back to the baseline: {baseline} -> {after}"
    );
}

/// Where the kernel has huge pages free, a heap on transparent huge
/// pages makes every few creates clear a 2 MiB page: the server turns
/// them off for itself before it serves, and its sessions add none (what
/// was touched before, at start, stays or is split).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_take_no_transparent_huge_pages() {
    let server = Server::start(1, &["--mode", "gateway"]);
    assert_eq!(proc_number(server.pid(), "status", "THP_enabled:"), 0);
    // kB; it may shrink (freeing part of a huge page splits it), not grow.
    let huge = || proc_number(server.pid(), "smaps_rollup", "AnonHugePages:");
    let before = huge();
    memory_per_session(&server, None, 200).await;
    let after = huge();
    assert!(
        after <= before,
        "kB on huge pages went from {before} to {after} over 200 sessions"
    );
}

#[test]
fn the_kubernetes_config_map_is_a_valid_config() {
    let manifest = std::fs::read_to_string(repo_root().join("deploy/kubernetes.yaml")).unwrap();
    let start = manifest
        .find("config.toml: |\n")
        .expect("the ConfigMap has config.toml")
        + "config.toml: |\n".len();
    let end = start + manifest[start..].find("\n---").unwrap();
    let toml: String = manifest[start..end]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let path = std::env::temp_dir().join(format!("a2a-k8s-{}.toml", std::process::id()));
    std::fs::write(&path, toml).unwrap();
    let out = std::process::Command::new(server_bin())
        .args(["config", "--config"])
        .arg(&path)
        .env("A2A_SANDBOX_ADMIN_TOKEN", "a-token-of-sixteen-chars")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("mode = \"gateway\"") && printed.contains("max_instances = 40005"),
        "{printed}"
    );
    assert!(
        printed.contains("admin_token = \"(set)\""),
        "the token is never printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_instance_pool_is_a_503_not_a_bad_request() {
    let server = Server::start(1, &["--mode", "gateway", "--max-instances", "7"]);
    server.session(None).await;
    let refused = server.create(None).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"]["code"], "instances_exhausted");
    assert!(refused.headers.get("retry-after").is_some());
    // The instances of the refused session were freed: a small one fits.
    let small = server
        .create(Some(json!({"agents": [{"component": "bpa"}]})))
        .await;
    assert_eq!(small.status, 201, "{}", small.text());
}

/// The agent card served for the host name `host`.
async fn card_on(client: &mut Client, host: &str) -> Response {
    client
        .request("GET", "/.well-known/agent-card.json", &[("host", host)], "")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_have_host_names_of_their_own_under_the_gateway_suffix() {
    let (server, info, host) = gateway_with_host_names().await;
    let port = server.addr.port();
    assert_eq!(info.urls[0], format!("http://{host}/"));
    // Every client resolves *.agents.test to this server: here, by Host.
    let mut client = Client::connect(&server.addr.to_string()).await;
    let card = card_on(&mut client, &host).await;
    assert_eq!(card.status, 200, "{}", card.text());
    assert_eq!(
        card.json()["supportedInterfaces"][0]["url"],
        format!("http://{host}/"),
        "the card is at the root of the agent's host and names it"
    );
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message("complete")});
    let auth = format!("Bearer {}", info.token);
    let sent = client
        .request(
            "POST",
            "/",
            &[("host", &host), ("authorization", &auth)],
            body.to_string(),
        )
        .await;
    assert_eq!(
        sent.json()["result"]["task"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    // The name written fully qualified, with its final dot, and in
    // capitals: the same agent.
    let (name, at) = host.rsplit_once(':').expect("host:port");
    let absolute = format!("{}.:{at}", name.to_ascii_uppercase());
    let card = card_on(&mut client, &absolute).await;
    assert_eq!(card.status, 200, "{absolute}: {}", card.text());
    let unknown = card_on(&mut client, &format!("nobody-0.agents.test:{port}")).await;
    assert_eq!(unknown.refusal(), (404, "session_not_found".into()));
    // Path routing stays.
    let by_path = http(
        "GET",
        &format!(
            "{}/s/{}/0/.well-known/agent-card.json",
            server.base(),
            info.id
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(by_path.status, 200);
}

/// Every path a GET reads answers HEAD with the GET's status and headers
/// and no body (RFC 9110 section 9.3.2). Each pair is asked on one
/// keep-alive connection and followed by another GET, so a body sent by
/// mistake would be read as the next answer; a stream's HEAD ends at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_get_path_answers_head_without_a_body() {
    let server = Server::start(10, &[]);
    let control = server.addr.to_string();
    let s = SessionInfo::from(
        &server
            .session(Some(json!({"agents": [{"component": "echo"}]})))
            .await,
    );
    let agent = authority(&s.urls[0]).to_string();
    let agent_auth = format!("Bearer {}", s.token);
    let draft = http("POST", &format!("{}/v1/drafts", server.base()), &[], "{}")
        .await
        .json();
    let draft_id = draft["id"].as_str().unwrap();
    let draft_auth = format!("Bearer {}", draft["token"].as_str().unwrap());
    // Until the human's turn the drafters' picks change the draft between
    // a GET and its HEAD.
    wait_for_draft(&server, draft_id, draft["token"].as_str().unwrap(), |d| {
        d["your_turn"] == true
    })
    .await;
    let session = format!("/v1/sessions/{}", s.id);
    let the_draft = format!("/v1/drafts/{draft_id}");
    let paths: [(&str, &str, &str); 10] = [
        (&control, "/healthz", ""),
        (&control, "/", ""),
        (&control, "/metrics", ""),
        (&control, "/v1/components/echo", ""),
        (&control, "/v1/components/nobody", ""),
        (&control, &session, ""),
        (&control, &the_draft, &draft_auth),
        (&agent, "/.well-known/agent-card.json", ""),
        (&agent, "/tasks", &agent_auth),
        (&agent, "/tasks/nowhere", &agent_auth),
    ];
    for (authority, path, auth) in paths {
        let headers: Vec<(&str, &str)> = match auth {
            "" => vec![],
            auth => vec![("authorization", auth)],
        };
        let mut client = Client::connect(authority).await;
        let get = client.request("GET", path, &headers, "").await;
        let head = client.request("HEAD", path, &headers, "").await;
        assert_eq!(head.status, get.status, "HEAD {path}: {}", head.text());
        assert!(head.body.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            head.headers.get("content-type"),
            get.headers.get("content-type"),
            "HEAD {path}"
        );
        if path != "/metrics" {
            // (The metrics change between the two asks.)
            assert_eq!(
                head.headers["content-length"],
                get.body.len().to_string(),
                "HEAD {path} says the GET's length"
            );
        }
        let again = client.request("GET", path, &headers, "").await;
        assert_eq!(again.status, get.status, "GET {path} after a HEAD");
    }
    let mut client = Client::connect(&control).await;
    let events = format!("{the_draft}/events");
    let head = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("HEAD", &events, &[("authorization", &draft_auth)], ""),
    )
    .await
    .expect("a stream's HEAD ends at once");
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-type"], "text/event-stream");
    let r = client.request("PUT", "/healthz", &[], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, HEAD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_may_call_an_agent_with_its_token() {
    for mode in ["ports", "gateway"] {
        let server = Server::start(5, &["--mode", mode]);
        let s = SessionInfo::from(
            &server
                .session(Some(json!({"agents": [{"component": "echo"}]})))
                .await,
        );
        let url = &s.urls[0];
        let origin = ("origin", "https://app.example");
        // The browser asks first (a CORS preflight), with no token: for the
        // JSON-RPC endpoint and for a REST path alike.
        for path in ["", "tasks"] {
            let asked = http(
                "OPTIONS",
                &format!("{url}{path}"),
                &[
                    origin,
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type, a2a-version",
                    ),
                ],
                "",
            )
            .await;
            assert_eq!(
                asked.status,
                204,
                "{mode} OPTIONS /{path}: {}",
                asked.text()
            );
            let header = |name: &str| {
                asked
                    .headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
            };
            assert_eq!(header("access-control-allow-origin").as_deref(), Some("*"));
            let methods = header("access-control-allow-methods").unwrap_or_default();
            assert!(
                methods.contains("POST") && methods.contains("GET"),
                "{methods}"
            );
            let allowed = header("access-control-allow-headers").unwrap_or_default();
            for wanted in ["authorization", "content-type", "a2a-version"] {
                assert!(allowed.contains(wanted), "{mode}: {wanted} in {allowed}");
            }
            assert!(header("access-control-max-age").is_some());
        }
        // Then calls: the answer, and a refusal too, are readable by the page.
        let auth = format!("Bearer {}", s.token);
        let send = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
            "params": text_message("hi")})
        .to_string();
        let sent = http(
            "POST",
            url,
            &[origin, ("authorization", &auth)],
            send.clone(),
        )
        .await;
        assert_eq!(sent.status, 200, "{}", sent.text());
        assert!(sent.json()["result"].is_object(), "{}", sent.text());
        let refused = http("POST", url, &[origin], send).await;
        assert_eq!(refused.status, 401);
        for answer in [&sent, &refused] {
            assert_eq!(answer.headers["access-control-allow-origin"], "*", "{mode}");
        }
        let exposed = refused.headers["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(
            exposed.contains("www-authenticate") && exposed.contains("retry-after"),
            "{exposed}"
        );
    }
    // An open session's agents answer anyone who reaches them, so no page
    // on another origin may read them through its visitor's browser.
    let server = Server::start(5, &["--allow-open-sessions"]);
    let open = SessionInfo::from(
        &server
            .session(Some(
                json!({"agents": [{"component": "echo"}], "auth": "none"}),
            ))
            .await,
    );
    let send = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": text_message("hi")});
    let origin = [("origin", "https://app.example")];
    let answered = http("POST", &open.urls[0], &origin, send.to_string()).await;
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert!(answered.json()["result"].is_object(), "{}", answered.text());
    assert!(
        answered
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
}
