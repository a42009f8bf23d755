//! Components as a product, end to end: `a2a-sandbox validate`, the same
//! check at start-up and on upload (`PUT /v1/components/{name}`), hot
//! reload of the agents directory, and the precompiled-code cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use a2a_sandbox_tests::*;
use serde_json::Value;

fn refused(name: &str) -> PathBuf {
    repo_root()
        .join("build/refused")
        .join(format!("{name}.wasm"))
}

/// Replaces `to` with the bytes of `from` in one step, as a deploy would.
fn deploy(from: &Path, to: &Path) {
    let partial = to.with_extension("partial");
    std::fs::copy(from, &partial).unwrap();
    std::fs::rename(&partial, to).unwrap();
}

fn validate(paths: &[&Path]) -> (i32, String) {
    let out = Command::new(server_bin())
        .arg("validate")
        .args(paths)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The refused fixtures and what the one-line refusal must say.
const REFUSALS: [(&str, &str); 4] = [
    (
        "command",
        "exports wasi:cli/run@0.2.0, which makes it a command program, not an agent",
    ),
    ("partial", "missing export `describe`"),
    (
        "escape",
        // Any 0.2 version of WASI: the toolchain's, or the newest a
        // crate of the agents' workspace links.
        "(agents get no file system), imports wasi:sockets/network@0.2.",
    ),
    (
        "bad-card",
        "describe returned an invalid card: name is empty",
    ),
];

#[test]
fn validate_passes_every_agent_and_refuses_each_bad_kind_in_one_line() {
    let agents: Vec<PathBuf> = ["echo", "zero-rb", "conformance", "hostile"]
        .iter()
        .map(|n| built(n))
        .collect();
    let paths: Vec<&Path> = agents.iter().map(PathBuf::as_path).collect();
    let (code, out) = validate(&paths);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches(": ok — a2a:agent@0.2.0").count(), 4, "{out}");
    // Components built against the first contract are served unchanged.
    let (code, out) = validate(&[&built("js-echo"), &built("py-echo")]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches(": ok — a2a:agent@0.1.0").count(), 2, "{out}");

    for (fixture, says) in REFUSALS {
        let path = refused(fixture);
        let (code, out) = validate(&[&path]);
        assert_eq!(code, 1, "{fixture}: {out}");
        assert_eq!(out.lines().count(), 1, "one line: {out}");
        assert!(out.contains(says), "{fixture}: {out}");
    }
    // A directory is every component in it, one line each.
    let fixtures = scratch("validate-dir");
    for (fixture, _) in REFUSALS {
        std::fs::copy(refused(fixture), fixtures.join(format!("{fixture}.wasm"))).unwrap();
    }
    let (code, out) = validate(&[&fixtures]);
    assert_eq!(code, 1, "{out}");
    for (fixture, says) in REFUSALS {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("{fixture}.wasm")) && l.contains(says)),
            "{fixture}: {out}"
        );
    }
    let (code, out) = validate(&[&repo_root().join("build/agents")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().count() >= 8 && out.contains("echo.wasm: ok"),
        "{out}"
    );
    let empty = scratch("validate-empty");
    let (code, out) = validate(&[&empty]);
    assert_eq!(code, 1, "nothing to check is no pass: {out}");
    assert!(out.contains("no components (*.wasm)"), "{out}");

    let dir = scratch("validate");
    let text = dir.join("notes.wasm");
    std::fs::write(&text, "hello").unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let misnamed = dir.join("My_Agent.wasm");
    std::fs::copy(built("echo"), &misnamed).unwrap();
    let (code, out) = validate(&[&text, &core, &misnamed]);
    assert_eq!(code, 1);
    assert!(
        out.contains("\"My_Agent\" is not a component name: use lowercase letters"),
        "a server would not load it under that name: {out}"
    );
    assert!(out.contains("notes.wasm: not a WebAssembly file"), "{out}");
    assert!(
        out.contains(
            "core.wasm: a core Wasm module, not a component: build for --target wasm32-wasip2"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_skips_bad_components_at_start_with_the_same_message_and_serves_the_rest() {
    let dir = scratch("start");
    std::fs::copy(refused("escape"), dir.join("escape.wasm")).unwrap();
    std::fs::copy(refused("stalls"), dir.join("stalls.wasm")).unwrap();
    // Nothing that loads: the server does not start, and says why.
    let out = Command::new(server_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--call-timeout-ms",
            "300",
        ])
        .arg("--agents-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("could be loaded"), "{stderr}");
    assert!(
        stderr.contains("escape.wasm: imports wasi:filesystem"),
        "{stderr}"
    );

    // Beside a good one, each bad component is skipped with its reason,
    // a blocking `init` within the call deadline.
    std::fs::copy(built("echo"), dir.join("echo.wasm")).unwrap();
    let started = Instant::now();
    let server = Server::start_in(&dir, 10, &["--call-timeout-ms", "300"]);
    let took = started.elapsed();
    let names: Vec<Value> = components(&server)
        .await
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, vec![Value::from("echo")]);
    let escape = server
        .wait_for_log("escape.wasm: imports wasi:filesystem", 5)
        .await;
    assert!(escape.contains("(agents get no network)"), "{escape}");
    let stalls = server.wait_for_log("stalls.wasm", 5).await;
    assert!(
        stalls.contains("init did not return within 300ms"),
        "{stalls}"
    );
    assert!(took < Duration::from_secs(20), "start-up took {took:?}");
}

async fn components(server: &Server) -> Vec<Value> {
    components_as(server, &[]).await
}

async fn components_as(server: &Server, headers: &[(&str, &str)]) -> Vec<Value> {
    http(
        "GET",
        &format!("{}/v1/components", server.base()),
        headers,
        "",
    )
    .await
    .json()["components"]
        .as_array()
        .unwrap()
        .clone()
}

/// `GET /v1/components/{name}`: the component, or `None` (404
/// `unknown_component`).
async fn component(server: &Server, name: &str) -> Option<Value> {
    component_as(server, name, &[]).await
}

async fn component_as(server: &Server, name: &str, headers: &[(&str, &str)]) -> Option<Value> {
    let url = format!("{}/v1/components/{name}", server.base());
    let r = http("GET", &url, headers, "").await;
    match r.status {
        200 => Some(r.json()),
        404 => {
            assert_eq!(
                r.json()["error"]["code"],
                "unknown_component",
                "{}",
                r.text()
            );
            None
        }
        other => panic!("GET {url}: {other} {}", r.text()),
    }
}

async fn card_name(url: &str) -> String {
    http("GET", &format!("{url}.well-known/agent-card.json"), &[], "")
        .await
        .json()["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_stored_and_served() {
    let dir = scratch("upload");
    std::fs::copy(built("echo"), dir.join("echo.wasm")).unwrap();
    let admin = "upload-admin-token-0123";
    let server = Server::start_in(&dir, 20, &["--set", &format!("admin_token={admin}")]);
    let url = |name: &str| format!("{}/v1/components/{name}", server.base());
    let auth = format!("Bearer {admin}");
    let with_admin = [("authorization", auth.as_str())];
    let bytes = |p: PathBuf| std::fs::read(p).unwrap();

    let r = http("PUT", &url("greeter"), &[], bytes(built("conformance"))).await;
    assert_eq!(r.status, 401, "uploads are admin-only");
    let r = http("PUT", &url("Bad_Name"), &with_admin, "x").await;
    assert_eq!(r.status, 400, "{}", r.text());
    for (fixture, says) in REFUSALS {
        let r = http("PUT", &url("greeter"), &with_admin, bytes(refused(fixture))).await;
        assert_eq!(r.status, 422, "{fixture}");
        let body = r.json();
        assert_eq!(body["error"]["code"], "invalid_component");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    assert!(
        !dir.join("greeter.wasm").exists(),
        "refused uploads are not stored"
    );

    let r = http(
        "PUT",
        &url("greeter"),
        &with_admin,
        bytes(built("conformance")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["card"]["name"], "Conformance agent");
    assert!(
        dir.join("greeter.wasm").exists(),
        "stored for the next start"
    );
    let session = server
        .create_with(
            Some(serde_json::json!({"agents": [{"component": "greeter"}]})),
            &with_admin,
        )
        .await;
    assert_eq!(session.status, 201, "{}", session.text());
    let s = SessionInfo::from(&session.json());
    let r = rpc(
        &s.urls[0],
        &s.token,
        "SendMessage",
        text_message("complete"),
    )
    .await;
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{r}"
    );

    let r = http("PUT", &url("greeter"), &with_admin, bytes(built("echo"))).await;
    assert_eq!(r.status, 200, "a replacement: {}", r.text());
    // The watcher sees the stored file but it is the version already live.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = component_as(&server, "greeter", &with_admin).await.unwrap();
    assert_eq!(c["card"]["name"], "Echo");
    // One component is what the list says of it; one not loaded is a 404.
    let listed = components_as(&server, &with_admin).await;
    assert_eq!(listed.iter().find(|c| c["name"] == "greeter"), Some(&c));
    assert_eq!(component_as(&server, "nobody", &with_admin).await, None);
    let r = http("DELETE", &url("greeter"), &with_admin, "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, HEAD, PUT");
}

/// Waits until the server lists `name` with a hash other than `old`.
async fn wait_for_change(
    server: &Server,
    name: &str,
    old: Option<&Value>,
) -> (Option<Value>, Duration) {
    let started = Instant::now();
    loop {
        let now = component(server, name).await;
        if now.as_ref().map(|c| &c["hash"]) != old.map(|c| &c["hash"]) {
            return (now, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name} never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_serves_the_new_version_to_new_sessions_only() {
    let dir = scratch("reload");
    let greeter = dir.join("greeter.wasm");
    deploy(&built("echo"), &greeter);
    let server = Server::start_in(&dir, 20, &[]);
    let first = component(&server, "greeter").await.unwrap();
    assert_eq!(first["card"]["name"], "Echo");
    let body = Some(serde_json::json!({"agents": [{"component": "greeter"}]}));
    let old = SessionInfo::from(&server.session(body.clone()).await);

    deploy(&built("conformance"), &greeter);
    let (second, took) = wait_for_change(&server, "greeter", Some(&first)).await;
    let second = second.unwrap();
    println!(
        "reload seen after {took:?}; the check took {:.1} ms",
        second["load_ms"].as_f64().unwrap()
    );
    assert_eq!(second["card"]["name"], "Conformance agent");
    let new = SessionInfo::from(&server.session(body.clone()).await);
    assert_eq!(card_name(&new.urls[0]).await, "Conformance agent");
    assert_eq!(
        card_name(&old.urls[0]).await,
        "Echo",
        "a running session keeps its version"
    );
    let r = rpc(
        &old.urls[0],
        &old.token,
        "SendMessage",
        text_message("still you?"),
    )
    .await;
    let reply = reply_text(&r);
    assert!(reply.contains("heard: still you?"), "{r}");

    // A broken version is refused and the good one stays.
    deploy(&refused("escape"), &greeter);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = component(&server, "greeter").await.unwrap();
    assert_eq!(
        still["hash"], second["hash"],
        "the refused version is not served"
    );

    // A removed file is no longer offered to new sessions.
    std::fs::remove_file(&greeter).unwrap();
    let (gone, _) = wait_for_change(&server, "greeter", Some(&second)).await;
    assert!(gone.is_none());
    let r = server.create(body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "unknown_component");
    let metrics = http("GET", &format!("{}/metrics", server.base()), &[], "")
        .await
        .text();
    for kind in ["loaded", "refused", "removed"] {
        let line = format!("a2a_sandbox_component_reloads_total{{kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_precompiled_code_instead_of_compiling() {
    let dir = scratch("cache");
    deploy(&built("zero-rb"), &dir.join("zero-rb.wasm"));
    let cold = {
        let server = Server::start_in(&dir, 10, &[]);
        component(&server, "zero-rb").await.unwrap()
    };
    let warm = {
        let server = Server::start_in(&dir, 10, &[]);
        component(&server, "zero-rb").await.unwrap()
    };
    println!(
        "zero-rb: {:.1} ms compiled, {:.1} ms from the cache",
        cold["load_ms"].as_f64().unwrap(),
        warm["load_ms"].as_f64().unwrap()
    );
    assert_eq!(cold["precompiled"], false);
    assert_eq!(warm["precompiled"], true);
    assert_eq!(cold["hash"], warm["hash"]);
    let cached = dir
        .join(".precompiled")
        .join(format!("{}.cwasm", warm["hash"].as_str().unwrap()));
    assert!(cached.exists(), "{}", cached.display());

    // Code for a version that is gone is removed at the next start.
    deploy(&built("bpa"), &dir.join("zero-rb.wasm"));
    let replaced = {
        let server = Server::start_in(&dir, 10, &[]);
        component(&server, "zero-rb").await.unwrap()
    };
    assert_ne!(replaced["hash"], warm["hash"]);
    assert!(!cached.exists(), "stale code is pruned");
    let entries = std::fs::read_dir(dir.join(".precompiled")).unwrap().count();
    assert_eq!(entries, 1, "only the live version's code is kept");
}

/// The SDK's allocator, in a real instance: the hostile fixture churns its
/// heap three times the same way (blocks of many sizes grown and freed,
/// over-aligned blocks, and the C library's `malloc`, `realloc`, `calloc`
/// and `free`), checking every block, and reports its memory's size after
/// each round. Blocks freed in a round must serve the next: its memory
/// stops growing after the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_agents_heap_keeps_its_blocks_intact_and_reuses_what_is_freed() {
    let server = Server::start(5, &[]);
    let agent = attacks::one_agent(&server, "hostile").await;
    let r = rpc(
        &agent.urls[0],
        &agent.token,
        "SendMessage",
        text_message("heap 3"),
    )
    .await;
    let answer = reply_text(&r);
    let pages: Vec<u64> = answer
        .strip_prefix("heap ok: ")
        .and_then(|pages| serde_json::from_str(pages).ok())
        .unwrap_or_else(|| panic!("the heap check failed: {r}"));
    assert_eq!(pages.len(), 3, "{answer}");
    assert!(
        pages[0] > 17 && pages.iter().all(|p| *p == pages[0]),
        "memory grew after the first round (64 KiB pages after each): {pages:?}"
    );
}
