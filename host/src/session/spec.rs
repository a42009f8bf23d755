//! The optional body of `POST /v1/sessions`: which component and config
//! each slot gets, and whether the session needs a bearer token.

use serde::Deserialize;
use serde_json::Value;

/// Agents a session may have.
pub const MAX_AGENTS: usize = 5;

/// The request as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    #[serde(default)]
    pub agents: Option<Vec<SlotRequest>>,
    #[serde(default)]
    pub auth: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The five drafters of the mock draft: Teams 1, 2, 3, 5, 6.
pub fn draft_slots() -> Vec<SlotSpec> {
    let slot = |component: &str, name: &str, persona: &str| SlotSpec {
        component: component.into(),
        name: Some(name.into()),
        config: vec![("persona".into(), persona.into())],
    };
    vec![
        slot(
            "zero-rb",
            "Team 1 — Zero RB",
            "analytical; receivers win titles",
        ),
        slot("bpa", "Team 2 — Best Available", "calm, value-obsessed"),
        slot("robust-rb", "Team 3 — Robust RB", "old-school and loud"),
        slot(
            "upside-hunter",
            "Team 5 — Upside Hunter",
            "swaggering risk-taker",
        ),
        slot(
            "bpa",
            "Team 6 — The Professor",
            "professorial; enjoys punishing reaches",
        ),
    ]
}

impl SessionRequest {
    /// Checks the request; the error names the slot and what is wrong.
    pub fn validate(self) -> Result<SessionSpec, String> {
        let secured = match self.auth.as_deref() {
            None | Some("bearer") => true,
            Some("none") => false,
            Some(other) => {
                return Err(format!(
                    "auth must be \"bearer\" or \"none\", not {other:?}"
                ));
            }
        };
        let Some(agents) = self.agents else {
            return Ok(SessionSpec {
                slots: draft_slots(),
                secured,
            });
        };
        if agents.is_empty() || agents.len() > MAX_AGENTS {
            return Err(format!(
                "agents must hold 1 to {MAX_AGENTS} entries, not {}",
                agents.len()
            ));
        }
        let slots = agents
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let mut config = Vec::new();
                for (key, value) in a.config.unwrap_or_default() {
                    let value = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(format!(
                                "slot {i}: config.{key} must be a string, number or boolean"
                            ));
                        }
                    };
                    config.push((key, value));
                }
                Ok(SlotSpec {
                    component: a.component,
                    name: a.name,
                    config,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(SessionSpec { slots, secured })
    }
}
