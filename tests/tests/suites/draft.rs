//! The mock draft end to end against the real binary: the engine through
//! `/v1/drafts` (legal drafts, fallbacks, a trapping drafter, the human's
//! picks and their errors), the terminal with a scripted stdin, and the
//! page in headless Chromium.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use a2a_sandbox_tests::*;
use a2a_sandbox_tests::{
    create_draft as create, draft_snapshot as snapshot, wait_for_draft as wait_for,
};
use serde_json::{Value, json};

/// 18 distinct players, snake order, three per team.
fn assert_legal(picks: &[Value]) {
    assert_eq!(picks.len(), 18);
    let names: HashSet<&str> = picks
        .iter()
        .map(|p| p["player"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 18, "18 distinct players");
    let teams: Vec<u64> = picks.iter().map(|p| p["team"].as_u64().unwrap()).collect();
    assert_eq!(
        teams,
        [1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6],
        "snake order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_auto_drafts_are_legal_replayable_and_fast() {
    let server = Server::start(60, &[]);
    let mut timings = Vec::new();
    let mut boards = Vec::new();
    for seed in [1u64, 2, 3, 1] {
        let (id, token) = create(&server, json!({"auto": true, "seed": seed}), &[]).await;
        let s = wait_for(&server, &id, &token, |s| s["finished"] == true).await;
        let picks = s["picks"].as_array().unwrap().clone();
        assert_legal(&picks);
        assert!(picks.iter().all(|p| if p["team"] == 4 {
            p["by"] == "advisor"
        } else {
            p["by"] == "agent"
        }));
        timings.push(s["elapsed_ms"].as_f64().unwrap());
        boards.push(
            picks
                .iter()
                .map(|p| p["player"]["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
        assert_eq!(server.delete(&id).await, 204);
    }
    assert_eq!(boards[0], boards[3], "the same seed replays the same draft");
    timings.sort_by(f64::total_cmp);
    println!("auto draft host time (ms), 4 drafts: {timings:?}");
    assert!(
        timings[1] < 1000.0,
        "a whole draft takes well under a second: {timings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_answers_and_a_trapping_drafter_fall_back_without_stopping_the_draft() {
    // A spinning drafter costs a whole call deadline per request.
    let server = Server::start(20, &["--call-timeout-ms", "200"]);
    let seats = json!([
        {"component": "echo"},
        {"component": "hostile", "config": {"attack": "panic"}},
        {"component": "hostile", "config": {"attack": "spin"}},
        {"component": "bpa"},
        {"component": "upside-hunter"},
    ]);
    let (id, token) = create(&server, json!({"auto": true, "agents": seats}), &[]).await;
    let s = wait_for(&server, &id, &token, |s| s["finished"] == true).await;
    let picks = s["picks"].as_array().unwrap();
    assert_legal(picks);
    for p in picks {
        let expected = match p["team"].as_u64().unwrap() {
            1..=3 => "fallback",
            4 => "advisor",
            _ => "agent",
        };
        assert_eq!(p["by"], expected, "{p}");
    }
    let events = draft_feed(&server, &id, &token).await;
    let note = |team: u64| {
        events
            .iter()
            .find(|e| e["type"] == "pick" && e["team"] == team)
            .map(|e| e["note"].as_str().unwrap_or_default().to_string())
            .unwrap()
    };
    assert!(note(1).contains("no data part"), "echo: {}", note(1));
    assert!(note(2).contains("-32006"), "a trap: {}", note(2));
    assert!(note(3).contains("-32006"), "a deadline: {}", note(3));
    // The drafters that work picked for themselves and the others kept
    // answering; the server is fine.
    let health = http("GET", &format!("{}/healthz", server.base()), &[], "").await;
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_human_picks_through_the_api_and_bad_picks_are_refused_clearly() {
    let server = Server::start(20, &["--set", "admin_token=let-me-in-please-now"]);
    let base = server.base();
    // Choosing the seats is for operators.
    let r = http(
        "POST",
        &format!("{base}/v1/drafts"),
        &[],
        json!({"agents": [{"component": "echo"}]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    for (body, says) in [
        (json!({"rounds": 9}), "rounds must be 1 to 8"),
        (
            json!({"personas": {"4": "me"}}),
            "personas are keyed by AI team",
        ),
        (json!({"colour": "red"}), "unknown field"),
        (json!([2, 11]), "expected an object"),
    ] {
        let r = http("POST", &format!("{base}/v1/drafts"), &[], body.to_string()).await;
        assert_eq!(r.status, 400);
        assert!(r.error_message().contains(says), "{}", r.text());
    }
    let lineup = http("GET", &format!("{base}/v1/drafts"), &[], "")
        .await
        .json();
    assert_eq!(lineup["teams"].as_array().unwrap().len(), 5);
    assert!(
        lineup["teams"][0]["description"]
            .as_str()
            .unwrap()
            .contains("wide receiver")
    );

    let (id, token) = create(&server, json!({"rounds": 2, "seed": 11}), &[]).await;
    let url = format!("{base}/v1/drafts/{id}");
    let auth = format!("Bearer {token}");
    let pick = |player: &str| json!({"player": player}).to_string();
    let post = |body: String, auth: Option<String>| {
        let url = format!("{url}/pick");
        async move {
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            http("POST", &url, &headers, body).await
        }
    };
    assert_eq!(post(pick("x"), None).await.status, 401);
    assert_eq!(
        post(pick("x"), Some("Bearer nope".into())).await.status,
        403
    );
    // The draft's session, for its page: the draft token is enough (no
    // admin token), and the session's own token is not repeated.
    let session_url = format!("{url}/session");
    let session = http("GET", &session_url, &[("authorization", &auth)], "").await;
    assert_eq!(session.status, 200, "{}", session.text());
    let session = session.json();
    assert_eq!(session["id"], id.as_str());
    assert_eq!(session["agents"].as_array().map(Vec::len), Some(5));
    assert!(session.get("token").is_none(), "{session}");
    assert_eq!(http("GET", &session_url, &[], "").await.status, 401);
    let mut turns = 0;
    loop {
        let s = wait_for(&server, &id, &token, |s| {
            s["your_turn"] == true || s["finished"] == true
        })
        .await;
        if s["finished"] == true {
            break;
        }
        turns += 1;
        let taken = s["picks"][0]["player"]["name"].as_str().unwrap();
        let r = post(pick(taken), Some(auth.clone())).await;
        assert_eq!(r.refusal(), (409, "player_taken".into()));
        let r = post(pick("Nobody Atall"), Some(auth.clone())).await;
        assert_eq!(r.refusal(), (400, "unknown_player".into()));
        let r = post("{}".into(), Some(auth.clone())).await;
        assert_eq!(r.status, 400);
        let advice = s["advice"]["player"].as_str().unwrap();
        assert!(!s["advice"]["reason"].as_str().unwrap().is_empty());
        let r = post(pick(&advice.to_lowercase()), Some(auth.clone())).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["player"]["name"], advice);
    }
    assert_eq!(turns, 2);
    let r = post(pick("x"), Some(auth.clone())).await;
    assert_eq!(r.refusal(), (409, "draft_finished".into()));
    let s = snapshot(&server, &id, &token).await;
    let mine: Vec<&Value> = s["picks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["team"] == 4)
        .collect();
    assert!(mine.iter().all(|p| p["by"] == "human"));

    // The feed replays from any point, with ids a browser resumes from.
    let resumed = http(
        "GET",
        &format!("{url}/events"),
        &[("authorization", &auth), ("last-event-id", "4")],
        "",
    )
    .await
    .text();
    let first_id = resumed
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap();
    assert_eq!(first_id, "5");
    assert!(resumed.contains("\"type\":\"done\""));

    let admin = [("authorization", "Bearer let-me-in-please-now")];
    let r = http("DELETE", &url, &[("authorization", &auth)], "").await;
    assert_eq!(r.status, 204);
    let r = http("GET", &format!("{base}/v1/sessions/{id}"), &admin, "").await;
    assert_eq!(r.status, 404, "the draft's session is gone");
    assert_eq!(
        http("GET", &url, &[("authorization", &auth)], "")
            .await
            .status,
        404
    );
}

/// Runs `a2a-sandbox draft ARGS` with `stdin`; returns stdout.
fn terminal(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(server_bin())
        .arg("draft")
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "draft failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_plays_a_scripted_draft_from_stdin() {
    let server = Server::start(20, &[]);
    // Turn 1: a name nobody has, a number off the list, then number 2.
    // Turn 2: Enter (the advisor's pick). Turn 3: end of input.
    let out = terminal(
        &["--url", &server.base(), "--seed", "5"],
        "Nobody Atall\n40\n2\n\n",
    );
    assert!(out.contains("You are Team 4"), "{out}");
    assert!(
        out.contains("No available player matches \"Nobody Atall\""),
        "{out}"
    );
    assert!(out.contains("Choose a number from 1 to 12."), "{out}");
    assert!(
        out.contains("(no more input: taking the advisor's pick)"),
        "{out}"
    );
    for round in 1..=3 {
        assert!(
            out.contains(&format!("Board after round {round}:")),
            "{out}"
        );
    }
    let picks = out
        .lines()
        .filter(|l| {
            l.trim_start()
                .split_once(". Team ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .count();
    assert_eq!(picks, 18, "{out}");
    assert_eq!(out.matches("Team 4 — You:").count(), 3, "{out}");
    assert!(
        out.contains("Final rosters:") && out.contains("Draft complete:"),
        "{out}"
    );
    let sessions = http("GET", &format!("{}/v1/sessions", server.base()), &[], "")
        .await
        .json();
    assert_eq!(
        sessions["sessions"],
        json!([]),
        "the draft's session was ended"
    );

    // Without --url it starts its own server; --auto needs no input.
    let out = terminal(&["--auto", "--rounds", "1", "--seed", "9"], "");
    assert!(out.contains("[advisor's pick]"), "{out}");
    assert!(
        out.contains("Board after round 1:") && out.contains("Draft complete:"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_plays_whole_drafts_in_headless_chromium() {
    let server = Server::start(40, &[]);
    let script = repo_root().join("tests/browser/draft.mjs");
    let screenshot = repo_root().join("target/draft-finished.png");
    let out = Command::new("node")
        .arg(&script)
        .arg(server.base())
        .arg(&screenshot)
        .output()
        .expect("node runs (make browser-deps installs what it needs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser test failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["ok"], true);
    println!("browser figures: {}", result["figures"]);
    assert!(result["figures"]["page_bytes"].as_u64().unwrap() > 1000);
    assert_ne!(result["tabs"]["a"], result["tabs"]["b"]);
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

/// Runs `tests/browser/errors.mjs` in `mode` with `args`.
fn page_error_script(mode: &str, args: &[&str]) -> Value {
    let script = repo_root().join("tests/browser/errors.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(mode)
        .args(args)
        .output()
        .expect("node runs (make browser-deps installs what it needs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{mode}: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_when_the_server_is_full() {
    let server = Server::start(10, &["--set", "sessions.max_sessions=1"]);
    let taken = server.create(None).await;
    assert_eq!(taken.status, 201);
    let base = server.base();
    let result = tokio::task::spawn_blocking(move || page_error_script("full", &[&base]))
        .await
        .unwrap();
    assert_eq!(result["ok"], true, "{result}");
}

#[test]
fn the_page_says_a_draft_is_gone_when_its_server_restarts_mid_draft() {
    let (bin, agents) = (server_bin(), repo_root().join("build/test-agents"));
    let args = [bin.to_str().unwrap(), agents.to_str().unwrap()];
    let result = page_error_script("restart", &args);
    assert_eq!(result["ok"], true, "{result}");
}
