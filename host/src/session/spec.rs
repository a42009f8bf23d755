//! The optional body of `POST /v1/sessions`: which component and config
//! each slot gets, and whether the session needs a bearer token.

use serde::Deserialize;
use serde_json::Value;

use crate::runtime::contract::check_card_name;

/// Agents a session may have.
pub const MAX_AGENTS: usize = 5;

/// The request as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    #[serde(default, deserialize_with = "crate::json_object::list")]
    pub agents: Option<Vec<SlotRequest>>,
    #[serde(default)]
    pub auth: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
/// One slot as a request names it: a component, a display name, config values.
pub struct SlotRequest {
    pub component: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub config: Option<serde_json::Map<String, Value>>,
}

/// One slot, validated: component name, display name, config pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotSpec {
    pub component: String,
    pub name: Option<String>,
    pub config: Vec<(String, String)>,
}

/// A validated session request.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpec {
    pub slots: Vec<SlotSpec>,
    /// False for an open session (no bearer token).
    pub secured: bool,
}

/// What is wrong with a session request.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("auth must be \"bearer\" or \"none\", not {0:?}")]
    Auth(String),
    #[error("agents must hold 1 to {MAX_AGENTS} entries, not {0}")]
    AgentCount(usize),
    #[error("slot {slot}: config.{key} must be a string, number or boolean")]
    ConfigValue { slot: usize, key: String },
    #[error("slot {slot}: name {why}")]
    Name { slot: usize, why: String },
}

impl SessionRequest {
    /// Checks the request; the error names the slot and what is wrong.
    /// A request that names no agents gets `default_lineup`.
    pub fn validate(
        self,
        default_lineup: impl FnOnce() -> Vec<SlotSpec>,
    ) -> Result<SessionSpec, SpecError> {
        let secured = match self.auth.as_deref() {
            None | Some("bearer") => true,
            Some("none") => false,
            Some(other) => return Err(SpecError::Auth(other.to_string())),
        };
        let Some(agents) = self.agents else {
            return Ok(SessionSpec {
                slots: default_lineup(),
                secured,
            });
        };
        if agents.is_empty() || agents.len() > MAX_AGENTS {
            return Err(SpecError::AgentCount(agents.len()));
        }
        let slots = agents
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                if let Some(name) = &a.name {
                    check_card_name(name).map_err(|why| SpecError::Name { slot: i, why })?;
                }
                let mut config = Vec::new();
                for (key, value) in a.config.unwrap_or_default() {
                    let value = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(SpecError::ConfigValue { slot: i, key }),
                    };
                    config.push((key, value));
                }
                Ok(SlotSpec {
                    component: a.component,
                    name: a.name,
                    config,
                })
            })
            .collect::<Result<_, SpecError>>()?;
        Ok(SessionSpec { slots, secured })
    }
}
