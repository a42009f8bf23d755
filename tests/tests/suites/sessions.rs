//! Sessions end to end against the real binary: ports, cards,
//! SendMessage, delete, isolation of state, exhaustion, bad input.

use a2a_sandbox_tests::*;
use serde_json::{Value, json};

fn pick_request() -> Value {
    message(json!([{"data": {
        "type": "pick_request", "round": 1, "pick": 3, "available": sample_players()
    }}]))
}

async fn assert_agent_answers(url: &str, token: &str) {
    let card = http("GET", &format!("{url}.well-known/agent-card.json"), &[], "").await;
    assert_eq!(card.status, 200);
    let card = card.json();
    assert_eq!(card["supportedInterfaces"][0]["url"], url);
    assert_eq!(card["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
    assert!(
        card["skills"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "draft-pick")
    );
    let r = rpc(url, token, "SendMessage", pick_request()).await;
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    let pick = &task["status"]["message"]["parts"][0]["data"];
    assert_eq!(pick["type"], "pick");
    let players = sample_players();
    let names: Vec<&str> = players
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&pick["player"].as_str().unwrap()),
        "legal pick: {pick}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_sessions_get_disjoint_ports_and_all_fifteen_agents_answer() {
    let server = Server::start(40, &[]);
    let (a, b, c) = tokio::join!(
        server.session(None),
        server.session(None),
        server.session(None)
    );
    let sessions: Vec<SessionInfo> = [&a, &b, &c].into_iter().map(SessionInfo::from).collect();
    let mut ports: Vec<u16> = sessions.iter().flat_map(|s| s.ports.clone()).collect();
    assert_eq!(ports.len(), 15);
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 15, "port sets are disjoint");
    assert!(
        ports
            .iter()
            .all(|p| (server.ports.0..=server.ports.1).contains(p))
    );
    for session in [&a, &b, &c] {
        assert_eq!(session["mode"], "ports");
        assert!(session["created_at"].as_str().unwrap().ends_with('Z'));
        let components: Vec<&str> = session["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["component"].as_str().unwrap())
            .collect();
        assert_eq!(
            components,
            ["zero-rb", "bpa", "robust-rb", "upside-hunter", "bpa"]
        );
        for agent in session["agents"].as_array().unwrap() {
            for key in ["slot", "name", "component", "port", "url", "card_url"] {
                assert!(!agent[key].is_null(), "agent has {key}");
            }
        }
    }
    let mut calls = Vec::new();
    for s in &sessions {
        for url in &s.urls {
            let (url, token) = (url.clone(), s.token.clone());
            calls.push(tokio::spawn(async move {
                assert_agent_answers(&url, &token).await
            }));
        }
    }
    for call in calls {
        call.await.expect("agent answered card and SendMessage");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_frees_ports_and_a_new_session_is_served_from_them() {
    let server = Server::start(5, &[]);
    let first = SessionInfo::from(&server.session(None).await);
    assert_eq!(server.delete(&first.id).await, 204);
    let gone = server.get_session(&first.id).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"]["code"], "session_not_found");
    assert_eq!(server.delete(&first.id).await, 404);
    for port in &first.ports {
        let l = std::net::TcpListener::bind(("127.0.0.1", *port))
            .unwrap_or_else(|e| panic!("port {port} still held after DELETE: {e}"));
        drop(l);
    }
    let second = SessionInfo::from(&server.session(None).await);
    let mut a = first.ports.clone();
    let mut b = second.ports.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the only five ports were reused");
    for url in &second.urls {
        assert_agent_answers(url, &second.token).await;
    }
    let old = http(
        "POST",
        &first.urls[0],
        &[("authorization", &format!("Bearer {}", first.token))],
        "{}",
    )
    .await;
    assert_eq!(
        old.status, 403,
        "the old token does not open the new session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_agent_is_told_in_one_session_stays_there() {
    let server = Server::start(10, &[]);
    let a = SessionInfo::from(&server.session(None).await);
    let b = SessionInfo::from(&server.session(None).await);
    rpc(
        &a.urls[0],
        &a.token,
        "SendMessage",
        text_message("remember: secret-4711"),
    )
    .await;
    rpc(&a.urls[0], &a.token, "SendMessage", pick_request()).await;
    let memory = |r: Value| r["result"]["task"]["status"]["message"]["parts"][0]["data"].clone();
    let in_a = memory(rpc(&a.urls[0], &a.token, "SendMessage", text_message("memory")).await);
    assert_eq!(in_a["notes"], json!(["remember: secret-4711"]));
    assert_eq!(in_a["my_picks"].as_array().unwrap().len(), 1);
    let in_b = memory(rpc(&b.urls[0], &b.token, "SendMessage", text_message("memory")).await);
    assert_eq!(
        in_b["notes"],
        json!([]),
        "session B's agent knows nothing of A"
    );
    assert_eq!(in_b["my_picks"], json!([]));
    // Same session, another slot: its own instance too.
    let other_slot = memory(rpc(&a.urls[1], &a.token, "SendMessage", text_message("memory")).await);
    assert_eq!(other_slot["notes"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_a_503_and_earlier_sessions_keep_working() {
    let server = Server::start(10, &["--mode", "ports"]);
    let a = SessionInfo::from(&server.session(None).await);
    let b = SessionInfo::from(&server.session(None).await);
    let third = server.create(None).await;
    assert_eq!(third.status, 503);
    assert!(third.headers.get("retry-after").is_some());
    let error = third.json();
    assert_eq!(error["error"]["code"], "ports_exhausted");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no free agent ports")
    );
    for s in [&a, &b] {
        for url in &s.urls {
            assert_agent_answers(url, &s.token).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_rpc_gets_the_right_error_codes() {
    let server = Server::start(5, &[]);
    let s = SessionInfo::from(&server.session(None).await);
    let auth = format!("Bearer {}", s.token);
    let post = |body: &'static str| {
        let (url, auth) = (s.urls[1].clone(), auth.clone());
        async move {
            let r = http("POST", &url, &[("authorization", &auth)], body).await;
            assert_eq!(r.status, 200, "protocol errors are HTTP 200");
            r.json()
        }
    };
    let cases: [(&str, i64); 7] = [
        ("{not json", -32700),
        ("[1,2]", -32600),
        (r#"{"jsonrpc":"2.0","id":3,"method":7}"#, -32600),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"NoSuchMethod","params":{}}"#,
            -32601,
        ),
        (r#"{"jsonrpc":"2.0","id":5,"method":"SendMessage"}"#, -32602),
        (
            r#"{"jsonrpc":"2.0","id":6,"method":"SendMessage","params":{"message":{"messageId":"x","role":"ROLE_USER","parts":[{}]}}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"SendMessage","params":{"message":{"messageId":"x","role":"ROLE_USER","parts":[{"text":"a"}],"taskId":"nope"}}}"#,
            -32001,
        ),
    ];
    for (body, code) in cases {
        let r = post(body).await;
        assert_eq!(r["error"]["code"], code, "{body} -> {r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let r = post(r#"{"jsonrpc":"2.0","id":"str-id","method":"NoSuchMethod"}"#).await;
    assert_eq!(r["id"], "str-id", "the id is echoed");
    let v = http(
        "POST",
        &s.urls[1],
        &[("authorization", &auth), ("a2a-version", "9.9")],
        r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}"#,
    )
    .await;
    assert_eq!(v.json()["error"]["code"], -32009);
    // The agent still answers after all that.
    let r = rpc(
        &s.urls[1],
        &s.token,
        "SendMessage",
        text_message("still there?"),
    )
    .await;
    assert_eq!(
        r["result"]["task"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ports_check_the_session_token() {
    let server = Server::start(10, &["--allow-open-sessions"]);
    let a = SessionInfo::from(&server.session(None).await);
    let b = SessionInfo::from(
        &server
            .session(Some(
                json!({"agents": [{"component": "bpa"}], "auth": "none"}),
            ))
            .await,
    );
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message("hi")})
            .to_string();
    let missing = http("POST", &a.urls[0], &[], body.clone()).await;
    assert_eq!(missing.status, 401);
    assert!(missing.error_message().contains("Bearer"));
    let open_token = format!("Bearer {}", "0".repeat(64));
    let wrong = http(
        "POST",
        &a.urls[0],
        &[("authorization", &open_token)],
        body.clone(),
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert!(b.token.is_empty(), "open sessions have no token");
    let open = http("POST", &b.urls[0], &[], body.clone()).await;
    assert_eq!(open.status, 200);
    let card = http(
        "GET",
        &format!("{}.well-known/agent-card.json", b.urls[0]),
        &[],
        "",
    )
    .await
    .json();
    assert!(
        card.get("securitySchemes").is_none(),
        "open sessions advertise no security"
    );
    let card = http(
        "GET",
        &format!("{}.well-known/agent.json", a.urls[0]),
        &[],
        "",
    )
    .await
    .json();
    assert_eq!(
        card["securitySchemes"]["session"],
        json!({"type": "http", "scheme": "bearer"}),
        "the 0.3 card names the bearer scheme the 0.3 way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_lists_inspects_and_refuses_bad_requests_clearly() {
    let server = Server::start(10, &[]);
    let base = server.base();
    let health = http("GET", &format!("{base}/healthz"), &[], "").await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, json!("ok"))
    );

    let components = http("GET", &format!("{base}/v1/components"), &[], "")
        .await
        .json();
    let names: Vec<&str> = components["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in ["bpa", "robust-rb", "upside-hunter", "zero-rb"] {
        assert!(names.contains(&expected), "{expected} loaded");
    }
    assert!(components["components"][0]["card"]["skills"].is_array());

    let custom = server
        .session(Some(json!({"agents": [
            {"component": "robust-rb", "name": "Mine", "config": {"persona": "whispering", "seed": 7}},
            {"component": "upside-hunter"}
        ]})))
        .await;
    let s = SessionInfo::from(&custom);
    assert_eq!(s.urls.len(), 2);
    assert_eq!(custom["agents"][0]["name"], "Mine");
    let card = http(
        "GET",
        &format!("{}.well-known/agent-card.json", s.urls[0]),
        &[],
        "",
    )
    .await
    .json();
    assert_eq!(card["name"], "Mine");
    assert!(card["description"].as_str().unwrap().contains("whispering"));

    let listed = http("GET", &format!("{base}/v1/sessions"), &[], "")
        .await
        .json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    assert!(
        listed["sessions"][0].get("token").is_none(),
        "tokens are shown once, at creation"
    );
    let one = http("GET", &format!("{base}/v1/sessions/{}", s.id), &[], "").await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["agents"][1]["component"], "upside-hunter");

    let bad = [
        (
            json!({"agents": [{"component": "nope"}]}),
            400,
            "unknown_component",
            "slot 0",
        ),
        (json!({"agents": []}), 400, "bad_request", "1 to 5"),
        (
            json!({"agents": [{"component": "bpa"}, {"component": "bpa", "config": {"x": [1]}}]}),
            400,
            "bad_request",
            "slot 1",
        ),
        (
            json!({"auth": "none"}),
            403,
            "open_sessions_disabled",
            "not allowed",
        ),
        (json!({"auth": "magic"}), 400, "bad_request", "auth"),
        (json!({"agent": []}), 400, "bad_request", "unknown field"),
        // A slot's name is a card's name: the rule an agent's own is held to.
        (
            json!({"agents": [{"component": "echo", "name": " "}]}),
            400,
            "bad_request",
            "slot 0: name is empty",
        ),
        (
            json!({"agents": [{"component": "echo"}, {"component": "echo", "name": "a\u{1b}[2Jb"}]}),
            400,
            "bad_request",
            "slot 1: name holds a control character",
        ),
        // Fields by position are not an object, at the top or within.
        (
            json!([[{"component": "echo"}]]),
            400,
            "bad_request",
            "expected an object",
        ),
        (
            json!({"agents": [["echo", "Team A"]]}),
            400,
            "bad_request",
            "expected an object",
        ),
    ];
    for (body, status, code, says) in bad {
        let r = server.create(Some(body.clone())).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let e = r.json();
        assert_eq!(e["error"]["code"], code, "{body}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {e}"
        );
    }
    let garbage = http("POST", &format!("{base}/v1/sessions"), &[], "{{{").await;
    assert_eq!(garbage.status, 400);
    assert_eq!(
        http("GET", &format!("{base}/nowhere"), &[], "")
            .await
            .status,
        404
    );
    assert_eq!(
        http("PUT", &format!("{base}/v1/sessions"), &[], "")
            .await
            .status,
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_example_answers_and_counts() {
    let server = Server::start(5, &[]);
    let s = SessionInfo::from(
        &server
            .session(Some(
                json!({"agents": [{"component": "echo", "name": "Parrot"}]}),
            ))
            .await,
    );
    let text = |r: Value| {
        r["result"]["task"]["status"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        text(rpc(&s.urls[0], &s.token, "SendMessage", text_message("hello")).await),
        "Parrot heard: hello (message 1)"
    );
    assert_eq!(
        text(rpc(&s.urls[0], &s.token, "SendMessage", text_message("again")).await),
        "Parrot heard: again (message 2)"
    );
}
