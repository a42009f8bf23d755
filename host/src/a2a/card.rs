//! The agent card: what the guest says about itself, plus what only the
//! host knows (the URL to use, the security scheme, the capabilities the
//! host implements).

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::BindingSettings;

/// The gRPC target (`host:port`) of an agent whose base URL is `url`, if
/// gRPC can reach it there: gRPC's paths are fixed, so only an agent at
/// the root of its origin (its own port or host name) can serve it.
fn grpc_target(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() || authority.is_empty() {
        return None;
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'));
    Some(match (has_port, scheme) {
        (true, _) => authority.to_string(),
        (false, "https") => format!("{authority}:443"),
        (false, _) => format!("{authority}:80"),
    })
}

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
/// notifications work on this server, `bindings` which bindings beside
/// JSON-RPC it serves.
pub fn agent_card(
    info: &AgentInfo,
    url: Option<&str>,
    secured: bool,
    push: bool,
    bindings: BindingSettings,
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
        // JSON-RPC at the base URL, REST below it, gRPC at its authority.
        let interface = |url: &str, binding| json!({"url": url, "protocolBinding": binding, "protocolVersion": "1.0"});
        let mut interfaces = vec![interface(url, "JSONRPC")];
        if bindings.rest {
            interfaces.push(interface(url, "HTTP+JSON"));
        }
        if let Some(target) = grpc_target(url).filter(|_| bindings.grpc) {
            interfaces.push(interface(&target, "GRPC"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_is_offered_at_the_authority_of_an_agent_at_the_root_of_its_origin() {
        assert_eq!(
            grpc_target("http://127.0.0.1:19100/").as_deref(),
            Some("127.0.0.1:19100")
        );
        assert_eq!(
            grpc_target("https://s1-0.agents.example.com/").as_deref(),
            Some("s1-0.agents.example.com:443")
        );
        assert_eq!(grpc_target("http://[::1]/").as_deref(), Some("[::1]:80"));
        // A gateway path: gRPC's fixed paths cannot reach it.
        assert_eq!(grpc_target("http://127.0.0.1:8080/s/abc/0/"), None);
    }
}
