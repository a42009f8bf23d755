//! `make new-agent NAME=...` end to end, in a scratch copy of the
//! repository: the new crate builds with the rest, passes `validate`,
//! and answers when served.

use std::path::Path;
use std::process::Command;

use a2a_sandbox_tests::*;
use serde_json::json;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the command starts");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{all}");
    all
}

/// Copies the sources an agent build needs (not build output).
fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ["target", "node_modules", ".venv", "js-echo", "py-echo"].contains(&name.as_ref()) {
            continue;
        }
        let dest = to.join(&*name);
        if entry.file_type().unwrap().is_dir() {
            copy_sources(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_agent_from_the_template_builds_validates_and_answers() {
    let root = repo_root();
    let scratch = root.join("target/template-check");
    let _ = std::fs::remove_dir_all(&scratch);
    copy_sources(&root.join("agents"), &scratch.join("agents"));
    copy_sources(&root.join("wit"), &scratch.join("wit"));
    std::fs::copy(root.join("Makefile"), scratch.join("Makefile")).unwrap();

    let new_agent = |name: &str| {
        let mut make = Command::new("make");
        make.arg("-C")
            .arg(&scratch)
            .args(["new-agent", &format!("NAME={name}")]);
        make
    };
    let made = run(&mut new_agent("my-agent"));
    assert!(made.contains("agents/my-agent created"), "{made}");
    let lib = std::fs::read_to_string(scratch.join("agents/my-agent/src/lib.rs")).unwrap();
    assert!(lib.contains("impl Agent for") && lib.contains("export_agent!("));
    assert!(
        !lib.contains("bindings::"),
        "no raw bindings in an agent's file"
    );
    // Refuses to overwrite, and refuses a bad name.
    for refused in ["my-agent", "My_Agent"] {
        let out = new_agent(refused).output().unwrap();
        assert!(!out.status.success(), "{refused} is refused");
    }

    // Its own target directory, so the repository's build/agents is not
    // touched; compiled dependencies are kept between runs.
    let target = root.join("target/template-agents");
    run(Command::new("cargo")
        .current_dir(scratch.join("agents"))
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "my-agent",
        ]));
    let served = scratch.join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::copy(
        target.join("wasm32-wasip2/release/my_agent.wasm"),
        served.join("my-agent.wasm"),
    )
    .unwrap();
    let checked = run(Command::new(server_bin())
        .arg("validate")
        .arg(served.join("my-agent.wasm")));
    assert!(checked.contains(": ok — "), "{checked}");

    let server = Server::start_in(&served, 10, &[]);
    let s = SessionInfo::from(
        &server
            .session(Some(
                json!({"agents": [{"component": "my-agent", "name": "Mine"}]}),
            ))
            .await,
    );
    let r = rpc(&s.urls[0], &s.token, "SendMessage", text_message("hello")).await;
    assert_eq!(
        r["result"]["task"]["status"]["message"]["parts"][0]["text"],
        "Mine heard: hello (message 1)",
        "{r}"
    );
}
