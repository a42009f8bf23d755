//! The drafter protocol of the mock draft, in one place for both sides:
//! the draft engine (in the host) sends these requests as JSON in a
//! `data` part, and a drafter (a guest) answers with one of the answers
//! the same way.
//!
//! - [`Request::PickRequest`] → [`Answer::Pick`]
//! - [`Request::CommentRequest`] → [`Answer::Comment`] or [`Answer::Pass`]
//! - [`Request::Memory`] → the drafter's memory, free-form
//!
//! Fields a drafter may do without are optional on the way in, so an
//! older or hand-written request still parses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A draftable player.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Player {
    pub name: String,
    /// QB, RB, WR or TE.
    pub position: String,
    /// NFL team.
    #[serde(default)]
    pub team: String,
    /// Average draft position: lower goes earlier.
    pub adp: f64,
    /// 1 is the best tier.
    #[serde(default)]
    pub tier: u32,
    /// Fantasy points per game last season.
    #[serde(default)]
    pub ppg: f64,
}

/// What the engine asks a drafter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// It is the drafter's turn: pick one of `available`.
    PickRequest(PickRequest),
    /// Say something about another team's pick (or pass).
    CommentRequest(CommentRequest),
    /// Tell what you remember of this session.
    Memory,
}

/// The drafter's turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PickRequest {
    pub round: u32,
    pub pick: u32,
    /// The drafter's team number (1 to 6).
    #[serde(default)]
    pub team: u8,
    /// Rounds in this draft.
    #[serde(default)]
    pub rounds: u8,
    /// The players left, best ADP first.
    pub available: Vec<Player>,
    /// Names picked so far, by team number ("1" to "6").
    #[serde(default)]
    pub board: BTreeMap<String, Vec<String>>,
    /// Names this drafter picked so far.
    #[serde(default)]
    pub my_picks: Vec<String>,
    /// What other drafters said about this drafter's picks.
    #[serde(default)]
    pub said_about_me: Vec<Remark>,
}

/// What a drafter said about another team's pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remark {
    /// The team that said it.
    #[serde(default)]
    pub team: u32,
    /// That team's name.
    #[serde(default)]
    pub name: String,
    pub text: String,
}

/// A pick to comment on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentRequest {
    /// The team that picked.
    pub about_team: u32,
    /// Its name.
    #[serde(default)]
    pub about_name: String,
    /// True when the human made the pick.
    #[serde(default)]
    pub by_human: bool,
    pub player: Player,
    pub pick: u32,
    #[serde(default)]
    pub round: u32,
    /// True when the commenter is that team's rival.
    #[serde(default)]
    pub rival: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// What a drafter answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Answer {
    /// The drafter's pick, by the player's name.
    Pick {
        player: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trash_talk: Option<String>,
        /// The reasoning and trash talk came from a language model (the
        /// pick itself is always the drafter's rule).
        #[serde(default, skip_serializing_if = "is_false")]
        from_model: bool,
    },
    /// A remark on a pick.
    Comment { text: String },
    /// Nothing to say.
    Pass,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_carry_their_type() {
        let json = serde_json::to_string(&Request::Memory).unwrap();
        assert_eq!(json, r#"{"type":"memory"}"#);
        let pick: Answer =
            serde_json::from_str(r#"{"type":"pick","player":"Puka Nacua"}"#).unwrap();
        assert_eq!(
            pick,
            Answer::Pick {
                player: "Puka Nacua".into(),
                reasoning: None,
                trash_talk: None,
                from_model: false,
            }
        );
        let minimal = r#"{"type":"pick_request","round":1,"pick":4,"available":[{"name":"A","position":"RB","adp":1.5}]}"#;
        let Request::PickRequest(req) = serde_json::from_str(minimal).unwrap() else {
            panic!("a pick request")
        };
        assert_eq!(req.available[0].tier, 0);
        assert!(req.board.is_empty());
    }
}
