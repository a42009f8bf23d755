//! Who sits at a draft: the five default drafters, and the session a
//! draft request asks for (rounds, seed, personas, other components).

use std::collections::HashMap;

use serde::Deserialize;

use super::Settings;
use super::rules::{DEFAULT_ROUNDS, MAX_ROUNDS, slot_of, team_of};
use crate::session::spec::SpecError;
use crate::session::{SessionRequest, SessionSpec, SlotRequest, SlotSpec};

/// Longest persona text.
const MAX_PERSONA_CHARS: usize = 200;

/// The body of `POST /v1/drafts`; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    pub rounds: Option<u8>,
    pub seed: Option<u64>,
    /// The advisor picks for the human.
    #[serde(default)]
    pub auto: bool,
    /// Persona text by team number ("1", "2", "3", "5", "6").
    #[serde(default)]
    pub personas: HashMap<String, String>,
    /// Other components for the five AI seats (admin only).
    #[serde(default, deserialize_with = "crate::json_object::list")]
    pub agents: Option<Vec<SlotRequest>>,
}

/// What is wrong with a draft request.
#[derive(Debug, thiserror::Error)]
pub enum LineupError {
    #[error("rounds must be 1 to {MAX_ROUNDS} (the pool holds 48 players), not {0}")]
    Rounds(u8),
    #[error("agents must name the 5 AI seats (Teams 1, 2, 3, 5, 6), not {0}")]
    Seats(usize),
    #[error(transparent)]
    Slot(#[from] SpecError),
    #[error("personas.{0}: personas are keyed by AI team: 1, 2, 3, 5 or 6")]
    PersonaKey(String),
    #[error("personas.{0} is longer than {MAX_PERSONA_CHARS} characters")]
    PersonaTooLong(String),
}

/// The drafter components: what a configured language model (`[llm]`)
/// is granted to.
pub const DRAFTER_COMPONENTS: [&str; 4] = ["zero-rb", "bpa", "robust-rb", "upside-hunter"];

/// How the drafters reach a language model, told to each in its config
/// (`llm_url`, `llm_model`, `llm_timeout_ms`).
#[derive(Debug, Clone)]
pub struct ModelAccess {
    pub base_url: String,
    pub model: String,
    pub answer_timeout_ms: u64,
}

/// The five drafters of the mock draft: Teams 1, 2, 3, 5, 6. Also the
/// agents of a session created without a body.
pub fn default_lineup() -> Vec<SlotSpec> {
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

/// The session and settings a draft request asks for. Each drafter is
/// told its team and gets its own stream of the draft's randomness, and
/// (with `model`) how to reach the language model.
pub fn draft_spec(
    request: DraftRequest,
    model: Option<&ModelAccess>,
) -> Result<(SessionSpec, Settings), LineupError> {
    let rounds = request.rounds.unwrap_or(DEFAULT_ROUNDS);
    if !(1..=MAX_ROUNDS).contains(&rounds) {
        return Err(LineupError::Rounds(rounds));
    }
    let seed = request.seed.unwrap_or_else(rand_seed);
    let mut slots = match request.agents {
        None => default_lineup(),
        Some(agents) if agents.len() == 5 => {
            SessionRequest {
                agents: Some(agents),
                auth: None,
            }
            .validate(default_lineup)?
            .slots
        }
        Some(agents) => return Err(LineupError::Seats(agents.len())),
    };
    for (key, persona) in &request.personas {
        let slot = match key.parse::<u8>().ok().and_then(slot_of) {
            Some(slot) => slot,
            None => return Err(LineupError::PersonaKey(key.clone())),
        };
        let persona = persona.trim();
        if persona.chars().count() > MAX_PERSONA_CHARS {
            return Err(LineupError::PersonaTooLong(key.clone()));
        }
        let config = &mut slots[slot].config;
        config.retain(|(k, _)| k != "persona");
        if !persona.is_empty() {
            config.push(("persona".into(), persona.into()));
        }
    }
    for (slot, spec) in slots.iter_mut().enumerate() {
        let team = team_of(slot);
        spec.config.retain(|(k, _)| k != "seed" && k != "team");
        spec.config.push(("team".into(), team.to_string()));
        let own = seed ^ (team as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        spec.config.push(("seed".into(), own.to_string()));
        if let Some(model) = model.filter(|_| DRAFTER_COMPONENTS.contains(&spec.component.as_str()))
        {
            spec.config.retain(|(k, _)| !k.starts_with("llm_"));
            spec.config.extend([
                ("llm_url".into(), model.base_url.clone()),
                ("llm_model".into(), model.model.clone()),
                ("llm_timeout_ms".into(), model.answer_timeout_ms.to_string()),
            ]);
        }
    }
    Ok((
        SessionSpec {
            slots,
            secured: true,
        },
        Settings {
            rounds,
            seed,
            auto: request.auto,
        },
    ))
}

/// The persona a slot's config sets, or "".
pub fn persona_of(slot: &SlotSpec) -> String {
    slot.config
        .iter()
        .find(|(k, _)| k == "persona")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A fresh seed when the client gives none: two drafts read differently.
fn rand_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    u64::from_le_bytes(bytes) >> 11
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personas_are_keyed_by_ai_team_and_seats_get_team_and_seed() {
        let request = |personas: &[(&str, &str)]| DraftRequest {
            seed: Some(7),
            personas: personas
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DraftRequest::default()
        };
        let (spec, settings) = draft_spec(request(&[("6", "terse")]), None).unwrap();
        assert_eq!(settings.seed, 7);
        assert_eq!(persona_of(&spec.slots[4]), "terse");
        let team = |i: usize| {
            spec.slots[i]
                .config
                .iter()
                .find(|(k, _)| k == "team")
                .map(|(_, v)| v.clone())
        };
        assert_eq!(team(0).as_deref(), Some("1"));
        assert_eq!(team(3).as_deref(), Some("5"));
        for key in ["4", "0", "seven"] {
            let e = draft_spec(request(&[(key, "x")]), None).unwrap_err();
            assert!(matches!(e, LineupError::PersonaKey(_)), "{key}: {e}");
        }
        let long = "x".repeat(MAX_PERSONA_CHARS + 1);
        assert!(matches!(
            draft_spec(request(&[("1", &long)]), None),
            Err(LineupError::PersonaTooLong(_))
        ));
        let rounds = DraftRequest {
            rounds: Some(MAX_ROUNDS + 1),
            ..DraftRequest::default()
        };
        assert!(matches!(
            draft_spec(rounds, None),
            Err(LineupError::Rounds(_))
        ));
    }
}
