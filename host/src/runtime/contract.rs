//! Checks a component against the agent contract before anything runs
//! it: that it is a component, exports the `a2a:agent` world, imports
//! only what the sandbox grants, and describes itself with a valid card.
//! `a2a-sandbox validate`, start-up, hot reload and `PUT
//! /v1/components/{name}` all use this one check, so each refusal reads
//! the same everywhere: one line that says what to change.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::guest;

/// What an agent exports: the `agent` world of `wit/agent.wit`.
pub const EXPORTS: [&str; 4] = ["init", "describe", "handle", "cancel"];

/// Interfaces an agent may import (package/interface, any 0.2 version for
/// WASI). Everything a plain Rust, JavaScript or Python agent needs: the
/// host interface, I/O streams, stdio (discarded), an empty environment,
/// clocks and randomness, and the interfaces of outbound HTTP (whose
/// requests reach only what the operator grants the component; with no
/// grant, each is refused inside the guest). Files and sockets are not
/// granted.
const GRANTED: &[&str] = &[
    "wasi:http/types",
    "wasi:http/outgoing-handler",
    "a2a:agent/types@0.2.0",
    "a2a:agent/host@0.2.0",
    "a2a:agent/peers@0.2.0",
    "a2a:agent/types@0.1.0",
    "a2a:agent/host@0.1.0",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Why a component does not fit the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("not a WebAssembly file (no \\0asm header): build the agent with `make agents`")]
    NotWasm,
    #[error(
        "a core Wasm module, not a component: build for --target wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error(
        "{0:?} is not a component name: use lowercase letters, digits and '-', starting with a letter"
    )]
    Name(String),
    #[error("cannot read: {0}")]
    Read(String),
    #[error("cannot compile: {0}")]
    Compile(String),
    #[error(
        "exports {0}, which makes it a {1}, not an agent: implement the `agent` world of wit/agent.wit (init, describe, handle, cancel)"
    )]
    WrongWorld(String, &'static str),
    #[error(
        "missing export `{0}`: the `agent` world of wit/agent.wit exports init, describe, handle and cancel"
    )]
    MissingExport(&'static str),
    #[error("{}; remove the code that uses them", forbidden_list(.0))]
    Forbidden(Vec<(String, &'static str)>),
    #[error(
        "its exports match neither wit/agent.wit (a2a:agent@0.2.0) nor wit/0.1.0/agent.wit (a2a:agent@0.1.0): {0}"
    )]
    Types(String),
    #[error("init with an empty config failed: {0}; init must succeed without config")]
    Init(String),
    #[error("describe failed: {0}")]
    Describe(String),
    #[error("describe returned an invalid card: {0}")]
    Card(String),
}

/// Rejects bytes that are not a component, before compiling them.
pub fn check_header(bytes: &[u8]) -> Result<(), ContractError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ContractError::NotWasm);
    }
    // Core modules are version 1; components carry layer 1.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(ContractError::CoreModule);
    }
    Ok(())
}

/// Checks what a compiled component imports and exports.
pub fn check_interfaces(engine: &Engine, component: &Component) -> Result<(), ContractError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if !exports.iter().any(|e| EXPORTS.contains(&e.as_str())) {
        let kind = |e: &String| {
            if e.starts_with("wasi:cli/run") {
                Some("command program")
            } else if e.starts_with("wasi:http/incoming-handler") {
                Some("wasi:http proxy")
            } else {
                None
            }
        };
        if let Some((e, k)) = exports.iter().find_map(|e| kind(e).map(|k| (e, k))) {
            return Err(ContractError::WrongWorld(e.clone(), k));
        }
    }
    for name in EXPORTS {
        if !exports.iter().any(|e| e == name) {
            return Err(ContractError::MissingExport(name));
        }
    }
    // One refused import per reason, so the line names every fix.
    let mut refused: Vec<(String, &'static str)> = Vec::new();
    for (import, _) in ty.imports(engine) {
        let unversioned = import.split('@').next().unwrap_or(import);
        let granted = GRANTED
            .iter()
            .any(|g| *g == import || (g.starts_with("wasi:") && *g == unversioned));
        let why = forbidden_because(unversioned);
        if !granted && !refused.iter().any(|(_, w)| *w == why) {
            refused.push((import.to_string(), why));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ContractError::Forbidden(refused))
    }
}

/// Whether `component` imports outbound HTTP (`wasi:http/outgoing-handler`).
pub fn sends_http(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("wasi:http/outgoing-handler"))
}

fn forbidden_list(refused: &[(String, &'static str)]) -> String {
    let items: Vec<String> = refused
        .iter()
        .map(|(import, why)| format!("imports {import} ({why})"))
        .collect();
    items.join(", ")
}

fn forbidden_because(interface: &str) -> &'static str {
    match interface.split('/').next().unwrap_or("") {
        "wasi:filesystem" => "agents get no file system",
        "wasi:sockets" => "agents get no network",
        "wasi:http" => "agents may send HTTP requests, not serve them",
        "a2a:agent" => "this host serves a2a:agent@0.2.0 (wit/agent.wit) and 0.1.0",
        _ => "the sandbox does not grant it",
    }
}

/// Longest card name and description accepted.
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 4096;

/// Checks a name an agent card shows, whoever gives it (the agent's
/// `describe`, or a session request naming a slot): not blank, at most
/// 200 characters (`MAX_NAME`), no control characters. The error completes
/// "name ...".
pub fn check_card_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("is empty".into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("is longer than {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("holds a control character (a line break, a tab, an escape)".into());
    }
    Ok(())
}

/// Checks the card an agent describes itself with.
pub fn check_info(info: &guest::Info) -> Result<(), ContractError> {
    let bad = |why: String| Err(ContractError::Card(why));
    if let Err(why) = check_card_name(&info.name) {
        return bad(format!("name {why}"));
    }
    if info.description.chars().count() > MAX_DESCRIPTION {
        return bad(format!(
            "description is longer than {MAX_DESCRIPTION} characters"
        ));
    }
    if info.version.trim().is_empty() {
        return bad("version is empty".into());
    }
    let mut ids = std::collections::HashSet::new();
    for (i, skill) in info.skills.iter().enumerate() {
        if skill.id.trim().is_empty() {
            return bad(format!("skills[{i}].id is empty"));
        }
        if skill.name.trim().is_empty() {
            return bad(format!("skills[{i}] ({}) has an empty name", skill.id));
        }
        if !ids.insert(skill.id.as_str()) {
            return bad(format!("skill id {:?} appears twice", skill.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_names_are_shown_text_of_a_sensible_length() {
        assert_eq!(check_card_name("Team 1 — Zero RB"), Ok(()));
        for (name, says) in [
            ("", "is empty"),
            ("  ", "is empty"),
            ("a\nb", "control character"),
            ("\u{1b}[31mred", "control character"),
        ] {
            let why = check_card_name(name).unwrap_err();
            assert!(why.contains(says), "{name:?}: {why}");
        }
        assert!(
            check_card_name(&"é".repeat(MAX_NAME)).is_ok(),
            "characters, not bytes"
        );
        assert!(check_card_name(&"x".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn headers_tell_files_modules_and_components_apart() {
        assert_eq!(check_header(b"hello world"), Err(ContractError::NotWasm));
        assert_eq!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(ContractError::CoreModule)
        );
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0"), Ok(()));
        assert!(
            ContractError::CoreModule
                .to_string()
                .contains("wasm32-wasip2")
        );
    }

    fn info() -> guest::Info {
        guest::Info {
            name: "A".into(),
            description: "d".into(),
            version: "1".into(),
            skills: vec![],
            streaming: true,
        }
    }

    #[test]
    fn cards_need_a_name_a_version_and_distinct_skill_ids() {
        assert_eq!(check_info(&info()), Ok(()));
        let e = check_info(&guest::Info {
            name: " ".into(),
            ..info()
        })
        .unwrap_err();
        assert!(e.to_string().contains("name is empty"));
        let skill = |id: &str| guest::Skill {
            id: id.into(),
            name: "n".into(),
            description: String::new(),
            tags: vec![],
        };
        let e = check_info(&guest::Info {
            skills: vec![skill("a"), skill("a")],
            ..info()
        })
        .unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
    }

    #[test]
    fn refusals_name_what_is_missing() {
        let e = ContractError::Forbidden(vec![
            (
                "wasi:filesystem/types@0.2.6".into(),
                forbidden_because("wasi:filesystem/types"),
            ),
            (
                "wasi:sockets/tcp@0.2.6".into(),
                forbidden_because("wasi:sockets/tcp"),
            ),
        ]);
        assert_eq!(
            e.to_string(),
            "imports wasi:filesystem/types@0.2.6 (agents get no file system), \
             imports wasi:sockets/tcp@0.2.6 (agents get no network); remove the code that uses them"
        );
    }
}
