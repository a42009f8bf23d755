//! The isolation suite: attacks a running a2a-sandbox with the `hostile`
//! fixture and reports what the host did about each. It needs only the
//! control API's URL, so operators run it against their own deployment
//! (`make test-isolation URL=...`); `make test` runs it against a server
//! it starts.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{SessionInfo, http, reply_text, rpc, text_message};

/// One attack and what came of it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub attack: &'static str,
    pub expected: &'static str,
    pub observed: String,
    pub passed: bool,
}

/// Everything the suite observed.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    fn record(
        &mut self,
        attack: &'static str,
        expected: &'static str,
        observed: String,
        passed: bool,
    ) {
        self.outcomes.push(Outcome {
            attack,
            expected,
            observed,
            passed,
        });
    }

    /// True when every attack had the expected outcome.
    pub fn passed(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.passed)
    }

    /// A table, one attack per line.
    pub fn render(&self) -> String {
        let mut out =
            String::from("| attack | expected | observed | result |\n|---|---|---|---|\n");
        for o in &self.outcomes {
            let observed: String = o
                .observed
                .chars()
                .take(140)
                .collect::<String>()
                .replace('|', "/");
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                o.attack,
                o.expected,
                observed,
                if o.passed { "PASS" } else { "FAIL" }
            ));
        }
        let passed = self.outcomes.iter().filter(|o| o.passed).count();
        out.push_str(&format!(
            "\n{passed} passed, {} failed\n",
            self.outcomes.len() - passed
        ));
        out
    }
}

async fn create(base: &str, body: Value) -> Result<SessionInfo, String> {
    let r = http(
        "POST",
        &format!("{base}/v1/sessions"),
        &[],
        body.to_string(),
    )
    .await;
    if r.status != 201 {
        return Err(format!(
            "cannot create a session with the hostile fixture (HTTP {}): {} — is `hostile` loaded?",
            r.status,
            r.text()
        ));
    }
    Ok(SessionInfo::from(&r.json()))
}

/// Sends `text` and returns (the response, how long it took).
async fn attack(url: &str, token: &str, text: &str) -> (Value, Duration) {
    let started = Instant::now();
    let r = rpc(url, token, "SendMessage", text_message(text)).await;
    (r, started.elapsed())
}

fn describe(r: &Value) -> String {
    if let Some(e) = r.get("error") {
        format!("{} {}", e["code"], e["message"].as_str().unwrap_or(""))
    } else {
        format!(
            "{} {}",
            r["result"]["task"]["status"]["state"]
                .as_str()
                .unwrap_or("?"),
            reply_text(r)
        )
    }
}

/// Runs every attack against the server whose control API is at `base`.
pub async fn run(base: &str) -> Result<Report, String> {
    let mut report = Report::default();
    let a = create(
        base,
        json!({"agents": [
            {"component": "hostile", "config": {"marker": "session-a"}},
            {"component": "hostile"}
        ]}),
    )
    .await?;
    let b = create(
        base,
        json!({"agents": [{"component": "hostile", "config": {"marker": "session-b"}}]}),
    )
    .await?;
    let (url, token) = (a.urls[0].as_str(), a.token.as_str());

    rpc(
        &b.urls[0],
        &b.token,
        "SendMessage",
        text_message("note from B"),
    )
    .await;
    rpc(url, token, "SendMessage", text_message("note from A")).await;

    let traps: [(&'static str, &'static str, &str); 8] = [
        ("spin", "deadline exceeded", "deadline exceeded"),
        ("alloc", "memory limit exceeded", "memory limit exceeded"),
        ("recurse", "stack overflow", "stack overflow"),
        ("panic", "guest panic", "guest panic"),
        ("oob", "out-of-bounds trap", "out of bounds"),
        ("sleep", "deadline exceeded", "deadline exceeded"),
        ("huge", "memory limit exceeded", "memory limit exceeded"),
        ("big 8", "response too large", "response too large"),
    ];
    for (text, expected, cause) in traps {
        let (r, took) = attack(url, token, text).await;
        let message = r["error"]["message"].as_str().unwrap_or("");
        let mut passed = r["error"]["code"] == -32006 && message.contains(cause);
        let mut observed = format!("{} in {:.2}s", describe(&r), took.as_secs_f64());
        if let Some(task_id) = r["error"]["data"][0]["metadata"]["taskId"].as_str() {
            let t = rpc(url, token, "GetTask", json!({"id": task_id})).await;
            let state = t["result"]["status"]["state"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            let says = t["result"]["status"]["message"]["parts"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_string();
            passed &= state == "TASK_STATE_FAILED" && says.contains(cause);
            observed.push_str(&format!("; task {state}"));
        } else {
            passed = false;
        }
        let (next, _) = attack(url, token, "memory").await;
        let next_ok = next["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED";
        passed &= next_ok;
        observed.push_str(if next_ok {
            "; next call works"
        } else {
            "; NEXT CALL FAILED"
        });
        let expectation: &'static str = match text {
            "big 8" => "-32006 response too large; task failed; next call works",
            _ => expected,
        };
        report.record(text_static(text), expectation, observed, passed);
    }

    let (r, _) = attack(url, token, "memory").await;
    let fresh = reply_text(&r) == "notes: []";
    report.record(
        "state after a trap",
        "a fresh instance (memory empty)",
        reply_text(&r),
        fresh,
    );

    let (passed, observed) = upload_escape(base).await;
    report.record(
        "files and sockets",
        "a component importing them is refused at load (422)",
        observed,
        passed,
    );

    outbound_http(base, &mut report).await?;
    calls_that_wait_on_themselves(base, &mut report).await?;
    turns_kept_only_while_computing(base, &a, &mut report).await?;

    let (r, _) = attack(url, token, "env").await;
    let text = reply_text(&r);
    report.record(
        "env",
        "no environment variables, no args",
        text.clone(),
        text.starts_with("env vars: 0 []; args: 0 []"),
    );

    let (r, took) = attack(url, token, "flood 20000").await;
    let history = match r["result"]["task"]["id"].as_str() {
        Some(id) => rpc(url, token, "GetTask", json!({"id": id})).await["result"]["history"]
            .as_array()
            .map_or(usize::MAX, Vec::len),
        None => usize::MAX,
    };
    report.record(
        "flood 20000",
        "the call ends; at most 100 updates kept, logs rate-limited",
        format!(
            "{} in {:.2}s; {history} messages in the task",
            describe(&r),
            took.as_secs_f64()
        ),
        reply_text(&r) == "flood finished" && history <= 102,
    );

    let (r, _) = attack(url, token, "config").await;
    let text = reply_text(&r);
    report.record(
        "config",
        "the guest sees only its own slot's config: no session id, no token",
        text.clone(),
        text.contains("session-a")
            && !text.contains(&a.id)
            && !text.contains(&a.token)
            && !text.contains("session-b"),
    );

    let (r, _) = attack(&a.urls[1], token, "memory").await;
    report.record(
        "other slot, same session",
        "untouched by its neighbour's traps",
        reply_text(&r),
        reply_text(&r) == "notes: []",
    );
    let (r, _) = attack(&b.urls[0], &b.token, "memory").await;
    report.record(
        "other session",
        "its agent kept its state through all of it",
        reply_text(&r),
        reply_text(&r) == "notes: [\"note from B\"]",
    );

    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": text_message("hi")})
            .to_string();
    let missing = http("POST", &b.urls[0], &[], body.clone()).await;
    report.record(
        "no token",
        "401 that says a bearer token is needed",
        format!("{} {}", missing.status, missing.text()),
        missing.status == 401 && missing.text().contains("Bearer"),
    );
    let other = http(
        "POST",
        &b.urls[0],
        &[("authorization", &format!("Bearer {}", a.token))],
        body,
    )
    .await;
    report.record(
        "another session's token",
        "403 that says the token is not this session's",
        format!("{} {}", other.status, other.text()),
        other.status == 403 && other.text().contains("not this session's"),
    );

    tenancy(base, &a, &mut report).await?;

    for s in [&a, &b] {
        http("DELETE", &format!("{base}/v1/sessions/{}", s.id), &[], "").await;
    }
    Ok(report)
}

/// Outbound HTTP from a component the operator granted nothing (the
/// fetcher fixture, on a server with no grant for it): the cloud
/// metadata service, this server's own control API and a public site
/// are each refused inside the guest, as not granted.
async fn outbound_http(base: &str, report: &mut Report) -> Result<(), String> {
    let s = create(base, json!({"agents": [{"component": "fetcher"}]})).await?;
    for (what, url) in [
        (
            "HTTP to cloud metadata",
            "http://169.254.169.254/latest/meta-data/".to_string(),
        ),
        (
            "HTTP to the host's control API",
            format!("{base}/v1/sessions"),
        ),
        ("HTTP to a public site", "https://example.com/".to_string()),
    ] {
        let asked = json!({ "url": url }).to_string();
        let r = rpc(&s.urls[0], &s.token, "SendMessage", text_message(&asked)).await;
        let outcome = &r["result"]["message"]["parts"][0]["data"]["outcomes"][0];
        let error = outcome["error"].as_str().unwrap_or_default().to_string();
        report.record(
            what,
            "refused inside the guest: the component is granted no destination",
            if error.is_empty() {
                describe(&r)
            } else {
                error.clone()
            },
            error.starts_with("not granted"),
        );
    }
    http("DELETE", &format!("{base}/v1/sessions/{}", s.id), &[], "").await;
    Ok(())
}

/// Calls between agents that would wait on themselves (the fan-out
/// agent calling itself, and two fan-outs calling each other) fail at
/// once with an error that says so, instead of hanging both agents.
async fn calls_that_wait_on_themselves(base: &str, report: &mut Report) -> Result<(), String> {
    let s = create(
        base,
        json!({"agents": [{"component": "fan-out"}, {"component": "fan-out"}]}),
    )
    .await?;
    for (what, text, says) in [
        ("an agent calling itself", "@0 hi", "cannot call itself"),
        (
            "two agents calling each other",
            "hi",
            "already waiting in this chain of calls",
        ),
    ] {
        let (r, took) = attack(&s.urls[0], &s.token, text).await;
        let answer = r["result"]["message"]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        report.record(
            what,
            "refused at once, saying why; both agents keep working",
            format!("{} in {:.2}s", clip_line(&answer), took.as_secs_f64()),
            answer.contains(says) && took < std::time::Duration::from_secs(2),
        );
    }
    http("DELETE", &format!("{base}/v1/sessions/{}", s.id), &[], "").await;
    Ok(())
}

/// Long runners hold a CPU turn only while they compute. A long runner
/// that takes a turn and then sleeps (`hold`), and, while it sleeps, a
/// long call to another agent (`work`): the work must be answered before
/// the sleeper's call ends at its deadline. Then an agent whose `init`
/// runs long, recycled after a trap and idle since: another agent's long
/// call must be answered (a turn kept by the idle agent would keep it
/// waiting past its deadline).
async fn turns_kept_only_while_computing(
    base: &str,
    a: &SessionInfo,
    report: &mut Report,
) -> Result<(), String> {
    let hold = async {
        let (r, took) = attack(&a.urls[0], &a.token, "hold 20").await;
        (r, took, Instant::now())
    };
    let work = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (r, took) = attack(&a.urls[1], &a.token, "work 20").await;
        (r, took, Instant::now())
    };
    let ((held, held_for, hold_ended), (worked, work_took, work_ended)) = tokio::join!(hold, work);
    report.record(
        "a long runner sleeping on its turn",
        "its turn goes back while it sleeps: another agent's long call is answered first",
        format!(
            "work: {} in {:.2}s; hold: {} after {:.2}s",
            describe(&worked),
            work_took.as_secs_f64(),
            describe(&held),
            held_for.as_secs_f64()
        ),
        reply_text(&worked).starts_with("worked")
            && held["error"]["code"] == -32006
            && work_ended < hold_ended,
    );

    let long_init = create(
        base,
        json!({"agents": [{"component": "hostile", "config": {"init": "work"}}]}),
    )
    .await?;
    // The panic recycles the instance: a fresh one runs the long init
    // again, this time with no call after it.
    let (panicked, _) = attack(&long_init.urls[0], &long_init.token, "panic").await;
    let (worked, took) = attack(&a.urls[1], &a.token, "work 20").await;
    report.record(
        "an agent whose init ran long, now idle",
        "holds no turn: another agent's long call is answered",
        format!("{} in {:.2}s", describe(&worked), took.as_secs_f64()),
        reply_text(&worked).starts_with("worked") && panicked["error"]["code"] == -32006,
    );
    http(
        "DELETE",
        &format!("{base}/v1/sessions/{}", long_init.id),
        &[],
        "",
    )
    .await;
    Ok(())
}

/// The first line of `text`, at most 100 characters.
fn clip_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect()
}

/// A JSON-RPC call with any `Authorization` value; the raw response.
async fn call_as(url: &str, authorization: &str, method: &str, params: Value) -> crate::Response {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    http(
        "POST",
        url,
        &[("authorization", authorization)],
        body.to_string(),
    )
    .await
}

/// Attacks on the host's own resources rather than the sandbox: the call
/// queue, outbound addresses, malformed input, a blocking `init`.
async fn tenancy(base: &str, a: &SessionInfo, report: &mut Report) -> Result<(), String> {
    let (url, token) = (a.urls[0].as_str(), a.token.as_str());
    let bearer = format!("Bearer {token}");

    // A flood of calls that each hold the agent until its deadline.
    let c = create(base, json!({"agents": [{"component": "hostile"}]})).await?;
    let c_bearer = format!("Bearer {}", c.token);
    let mut accepted = 0;
    let mut refusal = None;
    for _ in 0..64 {
        let mut params = text_message("sleep");
        params["configuration"] = json!({"returnImmediately": true});
        let r = call_as(&c.urls[0], &c_bearer, "SendMessage", params).await;
        if r.status == 429 {
            refusal = Some(r);
            break;
        }
        accepted += 1;
    }
    let deleted = http("DELETE", &format!("{base}/v1/sessions/{}", c.id), &[], "").await;
    let observed = match &refusal {
        Some(r) => format!(
            "{accepted} accepted, then HTTP 429 (Retry-After {:?}): {}; DELETE {}",
            r.headers.get("retry-after"),
            r.text(),
            deleted.status
        ),
        None => format!("all {accepted} accepted"),
    };
    let passed = refusal.as_ref().is_some_and(|r| {
        r.headers.contains_key("retry-after") && r.json()["error"]["code"] == -32000
    }) && deleted.status == 204;
    report.record(
        "call flood",
        "a few calls wait per agent; the rest get 429 with Retry-After and -32000; DELETE frees them",
        observed,
        passed,
    );

    // Addresses no webhook may reach, whatever the server allows.
    let task = rpc(url, token, "SendMessage", text_message("note")).await["result"]["task"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let control = base
        .rsplit(':')
        .next()
        .unwrap_or("8080")
        .trim_end_matches('/');
    let forms = [
        format!("http://127.0.0.1:{control}/v1/sessions"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://[::169.254.169.254]/".to_string(),
        "http://[::ffff:169.254.169.254]/".to_string(),
        "http://[64:ff9b::a9fe:a9fe]/".to_string(),
        "http://[2002:a9fe:a9fe::]/".to_string(),
        "http://100.64.0.1/".to_string(),
        "http://[fec0::1]/".to_string(),
        "http://0.0.0.0/".to_string(),
        "http://metadata.google.internal/".to_string(),
    ];
    let mut accepted = Vec::new();
    for form in &forms {
        let r = rpc(
            url,
            token,
            "CreateTaskPushNotificationConfig",
            json!({"taskId": task, "url": form}),
        )
        .await;
        // -32602: refused; -32003: the server offers no push at all.
        if !(r["error"]["code"] == -32602 || r["error"]["code"] == -32003) {
            accepted.push(form.clone());
        }
    }
    report.record(
        "SSRF forms",
        "own listeners, metadata, link-local, CGNAT, site-local and IPv4-in-IPv6 webhooks refused",
        if accepted.is_empty() {
            format!("all {} refused", forms.len())
        } else {
            format!("ACCEPTED: {}", accepted.join(", "))
        },
        accepted.is_empty(),
    );

    let r = call_as(
        url,
        &bearer.replacen("Bearer", "bearer", 1),
        "ListTasks",
        json!({"statusTimestampAfter": "2026-11-24T17:05:00+0\u{20ac}x"}),
    )
    .await;
    report.record(
        "malformed timestamp, lower-case bearer",
        "accepted token; -32602 in a JSON body",
        format!("HTTP {} {}", r.status, r.text()),
        r.status == 200 && r.json()["error"]["code"] == -32602,
    );

    let started = Instant::now();
    let r = http(
        "POST",
        &format!("{base}/v1/sessions"),
        &[],
        json!({"agents": [{"component": "hostile", "config": {"init": "sleep"}}]}).to_string(),
    )
    .await;
    let took = started.elapsed();
    report.record(
        "init that blocks",
        "the create is refused within the call deadline, naming the cause",
        format!(
            "HTTP {} in {:.2}s: {}",
            r.status,
            took.as_secs_f64(),
            r.text()
        ),
        r.status >= 400
            && r.text().contains("init did not return")
            && took < Duration::from_secs(60),
    );
    Ok(())
}

fn text_static(text: &str) -> &'static str {
    match text {
        "spin" => "spin",
        "alloc" => "alloc",
        "recurse" => "recurse",
        "panic" => "panic",
        "oob" => "oob",
        "sleep" => "sleep",
        "huge" => "huge",
        _ => "big 8",
    }
}

/// Uploads the `refused-escape` fixture (an agent whose code reads files
/// and opens sockets) and expects the server to refuse it, naming both.
/// The admin token, if the server needs one, comes from
/// `A2A_SANDBOX_ADMIN_TOKEN`.
async fn upload_escape(base: &str) -> (bool, String) {
    let path = crate::repo_root().join("build/refused/escape.wasm");
    let Ok(bytes) = std::fs::read(&path) else {
        return (
            false,
            format!("{} is missing: run `make agents`", path.display()),
        );
    };
    let auth = std::env::var("A2A_SANDBOX_ADMIN_TOKEN")
        .map(|t| format!("Bearer {t}"))
        .unwrap_or_default();
    let headers: Vec<(&str, &str)> = if auth.is_empty() {
        vec![]
    } else {
        vec![("authorization", &auth)]
    };
    let r = http(
        "PUT",
        &format!("{base}/v1/components/escape"),
        &headers,
        bytes,
    )
    .await;
    let text = r.text();
    let passed = r.status == 422
        && text.contains("agents get no file system")
        && text.contains("agents get no network");
    (passed, format!("HTTP {}: {text}", r.status))
}
