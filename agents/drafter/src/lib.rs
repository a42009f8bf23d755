//! The five fantasy-draft drafters share everything but their decision
//! rule and their voice: the pick/comment protocol, their memory of the
//! draft, and the wording of reasons. An agent crate supplies a
//! [`Strategy`] and calls `a2a_agent_sdk::export_agent!(Drafter<MyStrategy>)`.
//!
//! Protocol (JSON in a `data` part, answered the same way):
//! - `{"type":"pick_request","round":2,"pick":9,"available":[Player...],"my_picks":[...]}`
//!   → `{"type":"pick","player":"...","reasoning":"...","trash_talk":"..."}`
//! - `{"type":"comment_request","about_team":5,"player":Player,"pick":9,"rival":true}`
//!   → `{"type":"comment","text":"..."}` or `{"type":"pass"}`
//! - `{"type":"memory"}` (or the text `memory`) → `{"type":"memory",...}`:
//!   everything this drafter remembers in this session.
//! - any other text is remembered as a note and acknowledged in voice.

use a2a_agent_sdk::{Agent, Config, Info, Message, Part, Request, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Notes a drafter keeps; older ones are forgotten.
const MAX_NOTES: usize = 50;

/// A player as the draft engine describes him.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Player {
    pub name: String,
    pub position: String,
    #[serde(default)]
    pub team: String,
    pub adp: f64,
    #[serde(default)]
    pub tier: u32,
}

#[derive(Debug, Deserialize)]
struct PickRequest {
    round: u32,
    pick: u32,
    available: Vec<Player>,
}

#[derive(Debug, Deserialize)]
struct CommentRequest {
    about_team: u32,
    player: Player,
    pick: u32,
    #[serde(default)]
    rival: bool,
}

/// How a drafter decides and how it talks.
pub trait Strategy: Default + 'static {
    /// Component name, as in the session's slot list.
    const COMPONENT: &'static str;
    /// One line on the decision rule, for the card.
    const RULE: &'static str;
    /// The drafter's signature line.
    const CATCHPHRASE: &'static str;
    /// Display name when the session gives none.
    const DEFAULT_NAME: &'static str;

    /// Called once with the session config (seeds, knobs).
    fn configure(&mut self, _config: &Config) {}

    /// Picks from `available`, which is sorted by ADP (best first) and
    /// never empty. Returns the index and a short reason in voice.
    fn choose(&mut self, round: u32, available: &[Player]) -> (usize, String);

    /// What this drafter says about another team's pick, or `None` to pass.
    fn comment(&self, rival: bool, player: &Player, pick: u32) -> Option<String>;
}

/// An agent built from a [`Strategy`], with the drafter's memory.
pub struct Drafter<S: Strategy> {
    strategy: S,
    name: String,
    persona: Option<String>,
    my_picks: Vec<Player>,
    seen_comments: Vec<String>,
    notes: Vec<String>,
}

/// The lowest-ADP player at `position`, if any is left.
pub fn best_at(available: &[Player], position: &str) -> Option<usize> {
    available.iter().position(|p| p.position == position)
}

/// How a pick sits against the player's ADP, in words (never decimals).
pub fn value_words(player: &Player, pick: u32) -> &'static str {
    let pick = pick as f64;
    if player.adp <= 5.0 {
        "a top-5 player"
    } else if player.adp + 5.0 < pick {
        "a steal this late"
    } else if player.adp > 1.5 * pick + 5.0 {
        "a reach by the book"
    } else if player.adp <= 12.0 {
        "first-round value"
    } else if player.adp <= 24.0 {
        "second-round value"
    } else {
        "a sleeper"
    }
}

impl<S: Strategy> Drafter<S> {
    fn pick(&mut self, req: PickRequest) -> Result<Value, String> {
        let mut available = req.available;
        if available.is_empty() {
            return Err("pick_request has no available players".into());
        }
        available.sort_by(|a, b| a.adp.total_cmp(&b.adp));
        let (index, why) = self.strategy.choose(req.round, &available);
        let player = available.swap_remove(index.min(available.len() - 1));
        let reasoning = format!(
            "{} ({}, {}, tier {}) at pick {}: {}. {}",
            player.name,
            player.position,
            if player.team.is_empty() {
                "FA"
            } else {
                &player.team
            },
            player.tier,
            req.pick,
            value_words(&player, req.pick),
            why
        );
        let count = self.my_picks.len() + 1;
        let trash_talk = format!("{} — pick {count} for {}.", S::CATCHPHRASE, self.name);
        self.my_picks.push(player.clone());
        Ok(
            json!({"type": "pick", "player": player.name, "reasoning": reasoning, "trash_talk": trash_talk}),
        )
    }

    fn comment(&mut self, req: CommentRequest) -> Value {
        let line = self.strategy.comment(req.rival, &req.player, req.pick);
        if self.seen_comments.len() == MAX_NOTES {
            self.seen_comments.remove(0);
        }
        self.seen_comments
            .push(format!("team {} took {}", req.about_team, req.player.name));
        match line {
            Some(text) => json!({"type": "comment", "text": text}),
            None => json!({"type": "pass"}),
        }
    }

    fn memory(&self) -> Value {
        json!({
            "type": "memory",
            "name": self.name,
            "my_picks": self.my_picks.iter().map(|p| &p.name).collect::<Vec<_>>(),
            "seen": self.seen_comments,
            "notes": self.notes,
        })
    }
}

fn answer(value: Value) -> Update {
    Update::completed(Message::agent(vec![Part::Data(value.to_string())]))
}

impl<S: Strategy> Agent for Drafter<S> {
    fn init(config: Config) -> Result<Self, String> {
        let mut strategy = S::default();
        strategy.configure(&config);
        Ok(Drafter {
            strategy,
            name: config.get("name").unwrap_or(S::DEFAULT_NAME).to_string(),
            persona: config.get("persona").map(str::to_string),
            my_picks: Vec::new(),
            seen_comments: Vec::new(),
            notes: Vec::new(),
        })
    }

    fn describe(&self) -> Info {
        let mut description = format!("{} {}", S::RULE, S::CATCHPHRASE);
        if let Some(persona) = &self.persona {
            description.push_str(&format!(" Persona: {persona}."));
        }
        Info::new(&self.name, &description)
            .skill(
                "draft-pick",
                "Draft pick",
                "Answers a pick_request with a legal pick and a reason",
                &["fantasy-football", "draft"],
            )
            .skill(
                "commentary",
                "Commentary",
                "Answers a comment_request with a remark on another team's pick",
                &["fantasy-football", "banter"],
            )
    }

    fn handle(&mut self, req: Request) -> Result<Update, String> {
        let Some(data) = req.message.data() else {
            let text = req.text();
            if text.trim() == "memory" {
                return Ok(answer(self.memory()));
            }
            if self.notes.len() == MAX_NOTES {
                self.notes.remove(0);
            }
            self.notes.push(text);
            return Ok(Update::completed(Message::agent_text(&format!(
                "{} Noted. Send me a pick_request when it's my turn.",
                S::CATCHPHRASE
            ))));
        };
        let value: Value =
            serde_json::from_str(data).map_err(|e| format!("data part is not JSON: {e}"))?;
        match value.get("type").and_then(Value::as_str) {
            Some("pick_request") => {
                let req =
                    serde_json::from_value(value).map_err(|e| format!("bad pick_request: {e}"))?;
                self.pick(req).map(answer)
            }
            Some("comment_request") => {
                let req = serde_json::from_value(value)
                    .map_err(|e| format!("bad comment_request: {e}"))?;
                Ok(answer(self.comment(req)))
            }
            Some("memory") => Ok(answer(self.memory())),
            other => Err(format!(
                "unknown request type {other:?}: expected pick_request, comment_request or memory"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use a2a_agent_sdk::{Role, TaskState};

    #[derive(Default)]
    struct WantsTe;
    impl Strategy for WantsTe {
        const COMPONENT: &'static str = "te";
        const RULE: &'static str = "Tight ends.";
        const CATCHPHRASE: &'static str = "TE or bust.";
        const DEFAULT_NAME: &'static str = "Team TE";
        fn choose(&mut self, _round: u32, available: &[Player]) -> (usize, String) {
            (best_at(available, "TE").unwrap_or(0), "Because.".into())
        }
        fn comment(&self, rival: bool, player: &Player, _pick: u32) -> Option<String> {
            rival.then(|| format!("{} is fine.", player.name))
        }
    }

    fn request(data: Value) -> Request {
        Request {
            task_id: "t".into(),
            context_id: "c".into(),
            new_task: true,
            message: Message {
                message_id: "m".into(),
                role: Role::User,
                parts: vec![Part::Data(data.to_string())],
                context_id: None,
                task_id: None,
            },
        }
    }

    fn answer_of(update: Update) -> Value {
        assert_eq!(update.state, TaskState::Completed);
        let data = update.message.unwrap().data().unwrap().to_string();
        serde_json::from_str(&data).unwrap()
    }

    fn player(name: &str, position: &str, adp: f64) -> Value {
        json!({"name": name, "position": position, "team": "KC", "adp": adp, "tier": 2})
    }

    #[test]
    fn picks_by_strategy_from_an_unsorted_pool_and_remembers() {
        let mut d = Drafter::<WantsTe>::init(Config::default()).unwrap();
        let pool = json!([
            player("B", "WR", 9.0),
            player("Kelce", "TE", 20.0),
            player("A", "RB", 3.0)
        ]);
        let a = answer_of(
            d.handle(request(
                json!({"type": "pick_request", "round": 1, "pick": 4, "available": pool}),
            ))
            .unwrap(),
        );
        assert_eq!(a["player"], "Kelce");
        assert!(a["reasoning"].as_str().unwrap().contains("TE"));
        let memory = answer_of(d.handle(request(json!({"type": "memory"}))).unwrap());
        assert_eq!(memory["my_picks"], json!(["Kelce"]));
    }

    #[test]
    fn comments_pass_or_speak_and_bad_requests_are_errors() {
        let mut d = Drafter::<WantsTe>::init(Config(vec![("name".into(), "Bob".into())])).unwrap();
        assert_eq!(d.describe().name, "Bob");
        let ask = |rival: bool| {
            request(
                json!({"type": "comment_request", "about_team": 2, "player": player("X", "QB", 30.0), "pick": 8, "rival": rival}),
            )
        };
        assert_eq!(answer_of(d.handle(ask(false)).unwrap())["type"], "pass");
        assert_eq!(
            answer_of(d.handle(ask(true)).unwrap())["text"],
            "X is fine."
        );
        assert!(
            d.handle(request(
                json!({"type": "pick_request", "round": 1, "pick": 1, "available": []})
            ))
            .is_err()
        );
        assert!(
            d.handle(request(json!({"type": "dance"})))
                .unwrap_err()
                .contains("unknown request type")
        );
    }

    #[test]
    fn value_words_never_show_numbers() {
        let p = |adp: f64| Player {
            name: "P".into(),
            position: "RB".into(),
            team: String::new(),
            adp,
            tier: 1,
        };
        assert_eq!(value_words(&p(1.5), 1), "a top-5 player");
        assert_eq!(value_words(&p(10.0), 20), "a steal this late");
        assert_eq!(value_words(&p(40.0), 10), "a reach by the book");
        assert_eq!(value_words(&p(30.0), 30), "a sleeper");
    }
}
