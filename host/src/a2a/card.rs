//! The agent card: what the guest says about itself, plus what only the
//! host knows (the URL to use, the security scheme, the capabilities the
//! host implements).

use serde::Serialize;
use serde_json::{Value, json};

/// An agent's self-description, as its component gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentInfo {
    pub name: String,
    pub description: String,
    pub version: String,
    pub skills: Vec<Skill>,
    /// The agent emits progress while it works.
    pub streaming: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
/// One skill on an agent card: what the agent can do, with tags.
pub struct Skill {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
}

/// The A2A 1.0 agent card for an agent served at `url` (`None`: not
/// served anywhere yet, so no interfaces are listed). `secured` adds
/// the bearer scheme every call must carry; `push` says whether push
/// notifications work on this server, `rest` whether HTTP+JSON does.
pub fn agent_card(
    info: &AgentInfo,
    url: Option<&str>,
    secured: bool,
    push: bool,
    rest: bool,
) -> Value {
    let skills: Vec<Value> = info
        .skills
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name, "description": s.description, "tags": s.tags}))
        .collect();
    let mut card = json!({
        "name": info.name,
        "description": info.description,
        "version": info.version,
        "capabilities": {"streaming": info.streaming, "pushNotifications": push},
        "defaultInputModes": super::INPUT_MODES,
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": skills,
    });
    if let Some(url) = url {
        // The bindings at the one base URL: JSON-RPC at it, REST below it.
        let mut interfaces =
            vec![json!({"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"})];
        if rest {
            interfaces.push(
                json!({"url": url, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}),
            );
        }
        card["supportedInterfaces"] = Value::Array(interfaces);
    }
    if secured {
        card["securitySchemes"] =
            json!({"session": {"httpAuthSecurityScheme": {"scheme": "Bearer"}}});
        card["securityRequirements"] = json!([{"schemes": {"session": {"list": []}}}]);
    }
    card
}
