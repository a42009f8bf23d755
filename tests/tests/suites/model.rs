//! Drafters with a language model: a stand-in for an OpenAI-compatible
//! chat-completions server on loopback (the real request and response
//! JSON; slow, malformed, failing and refusing answers on demand), and
//! whole auto drafts against it. Every pick stays legal and the rule's;
//! the model's lines are marked in the feed; any answer the drafter
//! cannot use leaves its rule-based lines, and no draft stalls.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use a2a_sandbox_tests::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::{Value, json};

/// How the stand-in answers.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Mode {
    /// JSON lines in the message content.
    Good,
    /// Later than any drafter waits.
    Slow,
    /// A 200 whose body is not JSON.
    Malformed,
    /// A 500 error object.
    Failing,
    /// A polite refusal in plain text.
    Refusing,
}

/// The stand-in server: its mode, and every request it got (headers of
/// interest and the JSON body).
#[derive(Clone, Default)]
struct StandIn {
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl StandIn {
    async fn start(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                let service = hyper::service::service_fn(move |req| {
                    let me = me.clone();
                    async move { Ok::<_, Infallible>(me.answer(req).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        addr
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.seen
            .lock()
            .unwrap()
            .push(json!({"path": path, "authorization": auth, "body": body}));
        let reply = |status: u16, text: String| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(text)))
                .unwrap()
        };
        let content = |text: &str| {
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
            })
            .to_string()
        };
        match self.mode.load(Ordering::SeqCst) {
            m if m == Mode::Good as u8 => {
                let lines = json!({
                    "reasoning": "Model says: the board fell my way.",
                    "trash_talk": "Model says: enjoy my leftovers.",
                });
                reply(200, content(&format!("```json\n{lines}\n```")))
            }
            m if m == Mode::Slow as u8 => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                reply(200, content("{}"))
            }
            m if m == Mode::Malformed as u8 => reply(200, "{\"choices\": [".to_string()),
            m if m == Mode::Failing as u8 => reply(
                500,
                json!({"error": {"message": "overloaded", "type": "server_error"}}).to_string(),
            ),
            _ => reply(200, content("I'm sorry, I can't help with that.")),
        }
    }
}

/// A server whose drafters are told of the stand-in at `addr`, with its
/// API key as a secret, and an answer budget of `timeout_ms`.
fn server_for(addr: SocketAddr, timeout_ms: u64) -> Server {
    let dir = scratch(&format!("model-{timeout_ms}"));
    let key = dir.join("model-key");
    std::fs::write(&key, "sk-stand-in\n").unwrap();
    let config = format!(
        "[llm]\n\
         base_url = \"http://{addr}/v1\"\n\
         model = \"stand-in-1\"\n\
         secret = \"model\"\n\
         answer_timeout_ms = {timeout_ms}\n\
         [secrets.model]\n\
         file = \"{}\"\n\
         destination = \"http://{addr}\"\n\
         header = \"authorization\"\n\
         prefix = \"Bearer \"\n",
        key.display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    Server::start(60, &["--config", path.to_str().unwrap()])
}

/// Plays a seeded auto draft to its end: its final snapshot and the
/// pick events of its feed (with what each drafter said).
async fn auto_draft(server: &Server, seed: u64) -> (Value, Vec<Value>) {
    let r = http(
        "POST",
        &format!("{}/v1/drafts", server.base()),
        &[],
        json!({"auto": true, "seed": seed}).to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let (id, token) = (
        created["id"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = http(
            "GET",
            &format!("{}/v1/drafts/{id}", server.base()),
            &[("authorization", &auth)],
            "",
        )
        .await
        .json();
        if s["finished"] == true {
            let picks = draft_feed(server, id, token)
                .await
                .into_iter()
                .filter(|e| e["type"] == "pick" && e["by"] == "agent")
                .collect();
            return (s, picks);
        }
        assert!(Instant::now() < deadline, "the draft stalled: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafters_ask_the_model_for_their_lines_and_the_feed_says_so() {
    let stand_in = StandIn::default();
    let addr = stand_in.start().await;
    let server = server_for(addr, 3000);
    let (s, picks) = auto_draft(&server, 7).await;
    assert_eq!(picks.len(), 15, "every AI pick is the drafter's own: {s}");
    for pick in &picks {
        assert_eq!(pick["from_model"], true, "{pick}");
        assert_eq!(pick["reasoning"], "Model says: the board fell my way.");
        assert_eq!(pick["trash_talk"], "Model says: enjoy my leftovers.");
    }
    println!(
        "auto draft with the stand-in model: {:.1} ms of host time",
        s["elapsed_ms"].as_f64().unwrap()
    );

    let seen = stand_in.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 15, "one question per AI pick");
    for request in &seen {
        assert_eq!(request["path"], "/v1/chat/completions");
        assert_eq!(request["body"]["model"], "stand-in-1");
        assert_eq!(
            request["authorization"], "Bearer sk-stand-in",
            "the host adds the secret"
        );
    }
    // Each drafter speaks in its persona, with its roster and the board.
    let systems: Vec<&str> = seen
        .iter()
        .filter_map(|r| r["body"]["messages"][0]["content"].as_str())
        .collect();
    assert!(
        systems.iter().any(|m| m.contains("receivers win titles")),
        "{systems:?}"
    );
    assert!(
        systems.iter().any(|m| m.contains("old-school and loud")),
        "{systems:?}"
    );
    let last = seen.last().unwrap()["body"]["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        last.contains("Round 3") && last.contains("Team 1:"),
        "{last}"
    );
    // The secret never reaches the log.
    assert!(server.log_lines("sk-stand-in").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_malformed_failing_and_refusing_models_leave_the_rule_based_lines() {
    let stand_in = StandIn::default();
    let addr = stand_in.start().await;
    let server = server_for(addr, 300);
    let mut reference = None;
    for (seed, mode) in [
        (11, Mode::Slow),
        (11, Mode::Malformed),
        (11, Mode::Failing),
        (11, Mode::Refusing),
    ] {
        stand_in.set(mode);
        let started = Instant::now();
        let (s, picks) = auto_draft(&server, seed).await;
        assert_eq!(picks.len(), 15, "{s}");
        for pick in &picks {
            assert!(pick.get("from_model").is_none(), "{pick}");
            let reasoning = pick["reasoning"].as_str().unwrap_or_default();
            assert!(
                !reasoning.is_empty() && !reasoning.contains("Model says"),
                "{pick}"
            );
        }
        // The rules decide, with or without the model: the same seed
        // drafts the same board every time.
        let board: Vec<Value> = s["picks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["player"]["name"].clone())
            .collect();
        match &reference {
            None => reference = Some(board),
            Some(first) => assert_eq!(first, &board),
        }
        // 15 late answers at 300 ms each, and nothing waits longer.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
