//! Outbound HTTP for guests, granted per component: the fetcher fixture
//! sends the requests its messages describe to a stand-in server on
//! loopback, and the suite checks what the host let through: grants,
//! the address policy, redirects, budgets, timeouts, response caps and
//! secrets (added for their destination only, never shown).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use a2a_sandbox_tests::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::{Value, json};

/// A stand-in destination on loopback:
/// `/echo` answers the request it got (method, path, headers, body) as
/// JSON; `/redirect?to=URL` is a 302 to URL; `/slow` never answers;
/// `/bytes?n=N` answers N bytes.
async fn destination() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service =
                hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(answer(req).await)
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

async fn answer(req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let value = |key: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_string()
    };
    match path.as_str() {
        "/redirect" => Response::builder()
            .status(302)
            .header("location", value("to"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            Response::new(Full::new(Bytes::new()))
        }
        "/bytes" => {
            let n: usize = value("n").parse().unwrap_or(0);
            Response::new(Full::new(Bytes::from(vec![b'x'; n])))
        }
        _ => {
            let method = req.method().to_string();
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
                .collect();
            let target = req.uri().to_string();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let echo = json!({
                "method": method,
                "target": target,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            Response::new(Full::new(Bytes::from(echo.to_string())))
        }
    }
}

/// A server whose config (TOML, in a scratch directory) is `config`,
/// and the config file's path.
fn server_with(test: &str, config: &str, extra: &[&str]) -> (Server, std::path::PathBuf) {
    let path = scratch(test).join("config.toml");
    std::fs::write(&path, config).unwrap();
    let shown = path.to_string_lossy().to_string();
    let mut args = vec!["--config", shown.as_str()];
    args.extend_from_slice(extra);
    (Server::start(5, &args), path)
}

/// The stand-in destination, and a server whose fetcher is granted it
/// (and nothing else), started with `extra`.
async fn granted_destination(test: &str, extra: &[&str]) -> (Server, u16) {
    let port = destination().await.port();
    let config =
        format!("[components.fetcher]\nallowed_outbound_hosts = [\"http://127.0.0.1:{port}\"]\n");
    (server_with(test, &config, extra).0, port)
}

/// A session of one fetcher.
async fn fetcher_session(server: &Server) -> SessionInfo {
    let s = server
        .session(Some(json!({"agents": [{"component": "fetcher"}]})))
        .await;
    SessionInfo::from(&s)
}

/// A session of one fetcher: its URL and token.
async fn fetcher(server: &Server) -> (String, String) {
    let s = fetcher_session(server).await;
    (s.urls[0].clone(), s.token)
}

/// Has the fetcher send `request`; one outcome per time it was sent.
async fn fetch(agent: &(String, String), request: Value) -> Vec<Value> {
    let (url, token) = agent;
    let r = rpc(
        url,
        token,
        "SendMessage",
        text_message(&request.to_string()),
    )
    .await;
    let data = &r["result"]["message"]["parts"][0]["data"];
    data["outcomes"]
        .as_array()
        .unwrap_or_else(|| panic!("outcomes in {r}"))
        .clone()
}

async fn fetch_one(agent: &(String, String), url: &str) -> Value {
    fetch(agent, json!({ "url": url })).await.remove(0)
}

fn error_of(outcome: &Value) -> &str {
    outcome["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error, not {outcome}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_reaches_what_it_is_granted_and_nothing_else() {
    let to = destination().await;
    let port = to.port();
    let config = format!(
        "[components.fetcher]\nallowed_outbound_hosts = [\"http://127.0.0.1:{port}\", \"http://*.localhost:{port}\"]\n"
    );
    let (server, _) = server_with("granted", &config, &[]);
    let session = fetcher_session(&server).await;
    let agent = (session.urls[0].clone(), session.token.clone());

    let got = fetch(
        &agent,
        json!({"url": format!("http://127.0.0.1:{port}/echo?q=1"), "method": "POST",
               "headers": {"x-asked": "yes"}, "body": "hello"}),
    )
    .await
    .remove(0);
    assert_eq!(got["status"], 200, "{got}");
    let echo: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["target"], "/echo?q=1", "origin-form request line");
    assert_eq!(echo["headers"]["x-asked"], "yes");
    assert_eq!(echo["headers"]["host"], format!("127.0.0.1:{port}"));
    assert_eq!(echo["body"], "hello");

    // Another port, another scheme, another host: not granted.
    for url in [
        format!("http://127.0.0.1:{}/echo", port + 1),
        format!("https://127.0.0.1:{port}/echo"),
        format!("http://127.0.0.2:{port}/echo"),
        format!("http://localhost:{port}/echo"),
    ] {
        let refused = fetch_one(&agent, &url).await;
        assert!(
            error_of(&refused).starts_with("not granted"),
            "{url}: {refused}"
        );
    }
    // A port past 65535 is no port: refused as such, not sent to port 80.
    let past = fetch_one(
        &agent,
        &format!("http://127.0.0.1:{}/echo", port as u32 + 65536),
    )
    .await;
    assert!(error_of(&past).contains("HttpRequestUriInvalid"), "{past}");
    // The wildcard grants subdomains: whatever the name resolves to, the
    // request is not refused as ungranted.
    let sub = fetch_one(&agent, &format!("http://a.localhost:{port}/echo")).await;
    assert!(
        !sub["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("not granted"),
        "{sub}"
    );

    let answered = server
        .metric(&format!(
            "a2a_sandbox_guest_http_requests_total{{component=\"fetcher\",destination=\"http://127.0.0.1:{port}\",result=\"answered\"}}"
        ))
        .await;
    assert_eq!(answered, 1.0);
    let denied = server
        .metric(&format!(
            "a2a_sandbox_guest_http_requests_total{{component=\"fetcher\",destination=\"http://127.0.0.1:{}\",result=\"not_granted\"}}",
            port + 1
        ))
        .await;
    assert_eq!(denied, 1.0);
    let logged = server.log_lines("guest HTTP request");
    assert!(
        logged.iter().any(|l| l.contains("status=200")
            && l.contains("received=")
            && l.contains("component=fetcher")),
        "{logged:?}"
    );

    // The session's own figures: what its guests sent and received.
    let budgets = server.get_session(&session.id).await.json()["budgets"].clone();
    let bytes = budgets["outbound_bytes"]["used"].as_u64().unwrap();
    assert!(
        bytes >= 5 + 100,
        "request and answer bodies counted: {budgets}"
    );
    assert_eq!(
        budgets["outbound_requests"]["used"], 0,
        "none in flight now"
    );

    // A component with no grant loads, and each request is refused.
    let s = server
        .session(Some(json!({"agents": [{"component": "conformance"}]})))
        .await;
    assert!(s["id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_policy_holds_for_granted_destinations() {
    let to = destination().await;
    let port = to.port();
    let config = format!(
        "[components.fetcher]\nallowed_outbound_hosts = [\"http://127.0.0.1:{port}\", \"http://localhost:{port}\", \"http://169.254.169.254\", \"http://[::ffff:127.0.0.1]:{port}\", \"http://[::1]:{port}\", \"http://0.0.0.0:{port}\", \"http://10.1.2.3\", \"http://metadata.google.internal\"]\n"
    );
    // Loopback refused, as on any production server.
    let (server, _) = server_with(
        "policy",
        &config,
        &["--set", "outbound.allow_loopback=false"],
    );
    let agent = fetcher(&server).await;
    for url in [
        format!("http://127.0.0.1:{port}/echo"),
        // A name whose DNS answer is loopback.
        format!("http://localhost:{port}/echo"),
        // Cloud metadata, and loopback in an IPv6 disguise.
        "http://169.254.169.254/latest/meta-data".to_string(),
        format!("http://[::ffff:127.0.0.1]:{port}/echo"),
        format!("http://[::1]:{port}/echo"),
        // "This host" on any interface, a private network, a metadata name.
        format!("http://0.0.0.0:{port}/echo"),
        "http://10.1.2.3/".to_string(),
        "http://metadata.google.internal/computeMetadata/v1/".to_string(),
    ] {
        let refused = fetch_one(&agent, &url).await;
        assert!(
            error_of(&refused).starts_with("refused"),
            "{url}: {refused}"
        );
    }
    let refused = server.metric("a2a_sandbox_outbound_refused_total").await;
    assert!(refused >= 8.0, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_answers_not_followed() {
    let (server, port) = granted_destination("redirects", &[]).await;
    let agent = fetcher(&server).await;
    let elsewhere = "http://169.254.169.254/latest/meta-data";
    let got = fetch_one(
        &agent,
        &format!("http://127.0.0.1:{port}/redirect?to={elsewhere}"),
    )
    .await;
    assert_eq!(got["status"], 302, "{got}");
    assert_eq!(got["headers"]["location"], elsewhere);
    // Following it is the guest's own request, held to its grants.
    let followed = fetch_one(&agent, elsewhere).await;
    assert!(error_of(&followed).starts_with("not granted"), "{followed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_timeouts_and_caps_are_errors_inside_the_guest() {
    let (server, port) = granted_destination(
        "budgets",
        &[
            "--set",
            "budgets.outbound_requests_per_second=5",
            "--set",
            "outbound.max_response_bytes=100000",
            "--set",
            "outbound.request_timeout_ms=1000",
        ],
    )
    .await;
    let agent = fetcher(&server).await;
    let base = format!("http://127.0.0.1:{port}");

    // A huge answer is cut at the cap.
    let huge = fetch_one(&agent, &format!("{base}/bytes?n=5000000")).await;
    assert!(error_of(&huge).starts_with("too large"), "{huge}");
    let small = fetch_one(&agent, &format!("{base}/bytes?n=1000")).await;
    assert_eq!(small["bytes"], 1000, "{small}");

    // A destination that never answers: the request times out (1 s),
    // well before the call's own deadline, and the agent answers.
    let started = std::time::Instant::now();
    let slow = fetch_one(&agent, &format!("{base}/slow")).await;
    assert!(error_of(&slow).starts_with("timeout"), "{slow}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Past the session's rate: the rest are refused inside the guest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burst = fetch(&agent, json!({"url": format!("{base}/echo"), "times": 20})).await;
    let refused = burst
        .iter()
        .filter(|o| {
            o["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("over budget"))
        })
        .count();
    let answered = burst.iter().filter(|o| o["status"] == 200).count();
    assert!(answered >= 1 && refused >= 10, "{burst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_s_byte_budget_ends_its_guests_http_when_spent() {
    let (server, port) =
        granted_destination("bytes", &["--set", "budgets.outbound_bytes=50000"]).await;
    let agent = fetcher(&server).await;
    let url = format!("http://127.0.0.1:{port}/bytes?n=30000");
    let outcomes = fetch(&agent, json!({"url": url, "times": 3})).await;
    // 30 KB fits; the second answer passes 50 KB while it is read and is
    // cut there; the third is refused before it is sent.
    assert_eq!(outcomes[0]["bytes"], 30000, "{outcomes:?}");
    for cut in &outcomes[1..] {
        assert!(error_of(cut).starts_with("over budget"), "{outcomes:?}");
    }
    // Another session has its own budget.
    let other = fetcher(&server).await;
    let fresh = fetch(&other, json!({ "url": url })).await.remove(0);
    assert_eq!(fresh["bytes"], 30000, "{fresh}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_s_requests_in_flight_are_capped_across_its_agents() {
    let (server, port) = granted_destination(
        "in-flight",
        &[
            "--set",
            "budgets.outbound_requests=1",
            "--set",
            "outbound.request_timeout_ms=3000",
        ],
    )
    .await;
    let s = server
        .session(Some(
            json!({"agents": [{"component": "fetcher"}, {"component": "fetcher"}]}),
        ))
        .await;
    let s = SessionInfo::from(&s);
    let first = (s.urls[0].clone(), s.token.clone());
    let second = (s.urls[1].clone(), s.token.clone());
    // One agent's request to a destination that never answers holds the
    // session's one place in flight...
    let slow = format!("http://127.0.0.1:{port}/slow");
    let holding = tokio::spawn(async move { fetch_one(&first, &slow).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...so its sibling's request is refused at once...
    let refused = fetch_one(&second, &format!("http://127.0.0.1:{port}/echo")).await;
    assert!(error_of(&refused).starts_with("over budget"), "{refused}");
    // ...until that request times out and gives its place back.
    let timed_out = holding.await.unwrap();
    assert!(error_of(&timed_out).starts_with("timeout"), "{timed_out}");
    let answered = fetch_one(&second, &format!("http://127.0.0.1:{port}/echo")).await;
    assert_eq!(answered["status"], 200, "{answered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_goes_to_its_destination_only_and_is_never_shown() {
    let granted = destination().await;
    let other = destination().await;
    let dir = scratch("secret-value");
    let secret_file = dir.join("key");
    let value = "sk-do-not-print-8271";
    std::fs::write(&secret_file, format!("{value}\n")).unwrap();
    let config = format!(
        "[components.fetcher]\n\
         allowed_outbound_hosts = [\"http://127.0.0.1:{}\", \"http://127.0.0.1:{}\"]\n\
         [secrets.model]\n\
         file = \"{}\"\n\
         destination = \"http://127.0.0.1:{}\"\n\
         header = \"authorization\"\n\
         prefix = \"Bearer \"\n",
        granted.port(),
        other.port(),
        secret_file.display(),
        granted.port()
    );
    let (server, config_path) = server_with("secret", &config, &[]);
    let agent = fetcher(&server).await;

    // The guest's own authorization header is replaced at the secret's
    // destination.
    let got = fetch(
        &agent,
        json!({"url": format!("http://127.0.0.1:{}/echo", granted.port()),
               "headers": {"authorization": "Bearer guess"}}),
    )
    .await
    .remove(0);
    let echo: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["headers"]["authorization"], format!("Bearer {value}"));
    // Anywhere else, no secret.
    let got = fetch_one(&agent, &format!("http://127.0.0.1:{}/echo", other.port())).await;
    let echo: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert!(echo["headers"].get("authorization").is_none(), "{echo}");
    // An error on the way there does not show it either.
    let refused = fetch_one(&agent, "http://127.0.0.1:1/echo").await;
    assert!(!refused.to_string().contains(value));

    let metrics = http("GET", &format!("{}/metrics", server.base()), &[], "").await;
    assert!(!metrics.text().contains(value));
    let log = server.log_lines("");
    assert!(
        log.iter().all(|l| !l.contains(value)),
        "the log shows the secret"
    );
    // `config` prints where the value comes from, not the value.
    let shown = std::process::Command::new(server_bin())
        .args(["config", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("[secrets.model]"), "{shown}");
    assert!(!shown.contains(value), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_secrets_that_cannot_work_stop_the_server_with_the_key() {
    for (config, key) in [
        (
            "[components.fetcher]\nallowed_outbound_hosts = [\"ftp://example.com\"]\n",
            "components.fetcher.allowed_outbound_hosts",
        ),
        (
            "[secrets.s]\nenv = \"X\"\ndestination = \"https://api.example.com\"\nheader = \"authorization\"\n",
            "secrets.s.destination",
        ),
    ] {
        let dir = scratch("bad-grants");
        let path = dir.join("config.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(server_bin())
            .args(["config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config}");
        assert!(err.contains(key), "{key}: {err}");
    }
}
