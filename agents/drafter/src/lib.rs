//! The five fantasy-draft drafters share everything but their decision
//! rule and their lines: the pick/comment protocol, their memory of the
//! draft, how lines are chosen and filled in, and how a persona changes
//! the voice. An agent crate supplies a [`Strategy`] and calls
//! `a2a_agent_sdk::export_agent!(Drafter<MyStrategy>)`.
//!
//! Protocol: the `draft-protocol` crate, which the host's draft engine
//! shares (JSON in a `data` part, answered the same way): a pick request
//! gets a pick, a comment request a comment or a pass, and `{"type":
//! "memory"}` (or the text `memory`) everything this drafter remembers in
//! this session. Any other text is remembered as a note and acknowledged
//! in voice.
//!
//! Config: `name`, `persona` (free text that changes the voice, never the
//! rules) and `seed` (fixes every random choice, so a draft replays).
//! With `llm_url`, `llm_model` and `llm_timeout_ms` (the host sets them
//! when the operator configures a language model), a drafter asks the
//! model for its reasoning and trash talk, in its persona, with its
//! roster and the board as context. The pick is always the rule's; a
//! model answer that is late, malformed or refused leaves the rule-based
//! lines, so a draft never waits on the model.

use a2a_agent_sdk::{Agent, Config, Info, Message, Part, Reply, Request, Update};
use serde::Serialize;
use serde_json::{Value, json};

/// Notes and lines a drafter keeps; older ones are forgotten.
const MAX_MEMORY: usize = 50;

pub use draft_protocol::Player;
use draft_protocol::{Answer, CommentRequest, PickRequest, Remark};

/// A deterministic random source (xorshift64*): the config's `seed`
/// fixes every choice a drafter makes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// A number below `n` (which is not 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Why a strategy took its player: which lines explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The strategy's own rule chose him.
    Plan,
    /// The rule had nothing to say (or its position is gone): best value.
    Value,
}

/// The lines a drafter speaks. Placeholders: `{player}`, `{pos}`,
/// `{team}` (NFL team), `{tier}`, `{value}` (where he went, in words),
/// `{about}` (the team picking), `{me}` (this drafter's name).
pub struct Lines {
    /// Reasons for a pick by the strategy's rule.
    pub plan: &'static [&'static str],
    /// Reasons for a pick by plain value.
    pub value: &'static [&'static str],
    /// About a rival's pick.
    pub rival: &'static [&'static str],
    /// About the human's pick.
    pub human: &'static [&'static str],
    /// About anyone else's pick, when the strategy cares.
    pub other: &'static [&'static str],
    /// Trash talk with a pick.
    pub boast: &'static [&'static str],
}

/// How a drafter decides and what it says.
pub trait Strategy: Default + 'static {
    /// Component name, as in the session's slot list.
    const COMPONENT: &'static str;
    /// One line on the decision rule, for the card.
    const RULE: &'static str;
    /// The drafter's signature line.
    const CATCHPHRASE: &'static str;
    /// Display name when the session gives none.
    const DEFAULT_NAME: &'static str;
    /// Everything it says.
    const LINES: Lines;

    /// Picks from `available`, which is sorted by ADP (best first) and
    /// never empty.
    fn choose(&mut self, round: u32, available: &[Player], rng: &mut Rng) -> (usize, Why);

    /// Whether a pick that is not a rival's or the human's is worth a
    /// remark (otherwise the drafter usually passes).
    fn cares_about(&self, _player: &Player) -> bool {
        false
    }
}

/// A language model a drafter asks for its lines: an OpenAI-compatible
/// chat-completions endpoint.
#[derive(Debug, Clone)]
struct Model {
    /// `{base}/chat/completions`.
    url: String,
    model: String,
    /// The per-answer budget: later than this, the rule's lines stand.
    timeout: std::time::Duration,
}

impl Model {
    /// The model the config names, if any.
    fn from_config(config: &Config) -> Result<Option<Model>, String> {
        let (Some(base), Some(model)) = (config.get("llm_url"), config.get("llm_model")) else {
            return Ok(None);
        };
        let ms = match config.get("llm_timeout_ms") {
            None => 3000,
            Some(ms) => ms
                .parse::<u64>()
                .map_err(|_| format!("config.llm_timeout_ms must be a whole number, not {ms:?}"))?,
        };
        Ok(Some(Model {
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            model: model.to_string(),
            timeout: std::time::Duration::from_millis(ms),
        }))
    }
}

/// Longest line taken from a model answer.
const MAX_MODEL_LINE: usize = 280;

/// The `reasoning` and `trash_talk` of a model's answer: the JSON object
/// in its message content (fenced or not). `None` for anything else.
fn model_lines(body: &[u8]) -> Option<(String, String)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let content = answer["choices"][0]["message"]["content"].as_str()?;
    let object = &content[content.find('{')?..=content.rfind('}')?];
    let lines: Value = serde_json::from_str(object).ok()?;
    let line = |key: &str| {
        let text = lines[key].as_str()?.trim();
        (!text.is_empty()).then(|| text.chars().take(MAX_MODEL_LINE).collect::<String>())
    };
    Some((line("reasoning")?, line("trash_talk")?))
}

/// An agent built from a [`Strategy`], with the drafter's memory.
pub struct Drafter<S: Strategy> {
    strategy: S,
    name: String,
    persona: Option<String>,
    /// The language model it asks for its lines, when configured.
    model: Option<Model>,
    voice: Voice,
    rng: Rng,
    my_picks: Vec<Player>,
    /// Every team's picks, as of the last pick request.
    board: std::collections::BTreeMap<String, Vec<String>>,
    /// Picks of other teams it was asked about: "team N took X".
    seen: Vec<String>,
    /// Remarks about its picks it has already answered.
    answered: Vec<Remark>,
    /// Lines it has said, newest last.
    said: Vec<String>,
    /// Templates used lately, so lines do not repeat back to back.
    used: Vec<&'static str>,
    /// Positions of every player it has seen in a pick request.
    positions: std::collections::BTreeMap<String, String>,
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

/// How a persona changes the way a drafter talks.
#[derive(Debug, Clone, PartialEq)]
enum Voice {
    Plain,
    Loud,
    Formal,
    Pirate,
    Analytical,
    Calm,
    Swagger,
    Terse,
    /// A persona with no style we know: its words sign the trash talk.
    Signed(String),
}

impl Voice {
    fn from_persona(persona: Option<&str>) -> Voice {
        let Some(persona) = persona.map(str::trim).filter(|p| !p.is_empty()) else {
            return Voice::Plain;
        };
        let lower = persona.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        if has(&["pirate", "arr"]) {
            Voice::Pirate
        } else if has(&["loud", "shout", "angry", "yell", "old-school"]) {
            Voice::Loud
        } else if has(&["professor", "formal", "polite", "academic"]) {
            Voice::Formal
        } else if has(&["terse", "quiet", "short", "few words"]) {
            Voice::Terse
        } else if has(&["analytic", "data", "nerd", "stats"]) {
            Voice::Analytical
        } else if has(&["swagger", "cocky", "brash", "risk"]) {
            Voice::Swagger
        } else if has(&["calm", "zen", "patient"]) {
            Voice::Calm
        } else {
            Voice::Signed(persona.chars().take(60).collect())
        }
    }

    /// `line` in this voice. `signed` lines (trash talk) carry a persona
    /// we have no style for.
    fn speak(&self, line: &str, signed: bool, rng: &mut Rng) -> String {
        let mut one_of = |options: &[&'static str]| options[rng.below(options.len())];
        match self {
            Voice::Plain => line.to_string(),
            Voice::Loud => format!("{}!", line.trim_end_matches(['.', '!']).to_uppercase()),
            Voice::Formal => format!(
                "{}{line}",
                one_of(&[
                    "If I may: ",
                    "For the record: ",
                    "Class, note this: ",
                    "Observe: "
                ])
            ),
            Voice::Pirate => format!(
                "{}{}, matey!",
                one_of(&["Arr! ", "Yo-ho! ", "Shiver me timbers! "]),
                line.trim_end_matches(['.', '!'])
            ),
            Voice::Analytical => format!(
                "{}{line}",
                one_of(&["Per my model: ", "The numbers say: ", "Data point: ", ""])
            ),
            Voice::Calm => format!(
                "{line}{}",
                one_of(&[" No panic.", " Breathe.", " All part of the plan.", ""])
            ),
            Voice::Swagger => format!(
                "{line}{}",
                one_of(&[" Take notes.", " You're welcome.", " Easy money.", ""])
            ),
            Voice::Terse => line
                .split_inclusive(['.', '!', '?'])
                .next()
                .unwrap_or(line)
                .trim()
                .to_string(),
            Voice::Signed(persona) if signed => format!("{line} ({persona}.)"),
            Voice::Signed(_) => line.to_string(),
        }
    }
}

fn fill(template: &str, player: &Player, pick: u32, about: &str, me: &str) -> String {
    template
        .replace("{player}", &player.name)
        .replace("{pos}", &player.position)
        .replace(
            "{team}",
            if player.team.is_empty() {
                "his team"
            } else {
                &player.team
            },
        )
        .replace("{tier}", &player.tier.to_string())
        .replace("{value}", value_words(player, pick))
        .replace("{about}", about)
        .replace("{me}", me)
}

/// "Upside Hunter" for "Team 5 — Upside Hunter": how drafters say a name.
fn short(name: &str) -> &str {
    name.rsplit(" — ").next().unwrap_or(name)
}

fn ordinal(n: usize) -> &'static str {
    [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
    ]
    .get(n.wrapping_sub(1))
    .copied()
    .unwrap_or("next")
}

fn remember(list: &mut Vec<String>, item: String) {
    if list.len() == MAX_MEMORY {
        list.remove(0);
    }
    list.push(item);
}

impl<S: Strategy> Drafter<S> {
    /// A line from `lines` it has not used lately (if it can help it).
    fn line(&mut self, lines: &'static [&'static str]) -> &'static str {
        if lines.is_empty() {
            return "";
        }
        let start = self.rng.below(lines.len());
        let chosen = (0..lines.len())
            .map(|i| lines[(start + i) % lines.len()])
            .find(|l| !self.used.contains(l))
            .unwrap_or(lines[start]);
        if self.used.len() == 12 {
            self.used.remove(0);
        }
        self.used.push(chosen);
        chosen
    }

    fn say(&mut self, text: String) -> String {
        remember(&mut self.said, text.clone());
        text
    }

    fn pick(&mut self, req: PickRequest) -> Result<Answer, String> {
        let mut available = req.available;
        if available.is_empty() {
            return Err("pick_request has no available players".into());
        }
        available.sort_by(|a, b| a.adp.total_cmp(&b.adp));
        for p in &available {
            self.positions
                .entry(p.name.clone())
                .or_insert_with(|| p.position.clone());
        }
        if !req.board.is_empty() {
            self.board = req.board;
        }
        let (index, why) = self.strategy.choose(req.round, &available, &mut self.rng);
        let player = available.swap_remove(index.min(available.len() - 1));
        let template = match why {
            Why::Plan => self.line(S::LINES.plan),
            Why::Value => self.line(S::LINES.value),
        };
        let mut reasoning = fill(template, &player, req.pick, "", &self.name);
        let same: Vec<&str> = self
            .my_picks
            .iter()
            .filter(|p| p.position == player.position)
            .map(|p| p.name.as_str())
            .collect();
        reasoning.push(' ');
        reasoning.push_str(&match same.as_slice() {
            [] if self.my_picks.is_empty() => "First brick of the roster.".to_string(),
            [] => format!(
                "My first {}, next to {}.",
                player.position,
                self.my_picks.last().map_or("nobody", |p| p.name.as_str())
            ),
            others => format!(
                "My {} {} after {}.",
                ordinal(others.len() + 1),
                player.position,
                others.join(" and ")
            ),
        });
        let reasoning = self.voice.speak(&reasoning, false, &mut self.rng);
        let trash_talk = match req
            .said_about_me
            .into_iter()
            .rev()
            .find(|r| !self.answered.contains(r))
        {
            Some(remark) => {
                let who = if remark.name.is_empty() {
                    format!("Team {}", remark.team)
                } else {
                    short(&remark.name).to_string()
                };
                let answer = format!(
                    "{who} had jokes about my last pick. {} is my answer.",
                    player.name
                );
                self.answered.push(remark);
                answer
            }
            None => {
                let boast = self.line(S::LINES.boast);
                fill(boast, &player, req.pick, "", &self.name)
            }
        };
        let trash_talk = self.voice.speak(&trash_talk, true, &mut self.rng);
        let asked = self
            .model
            .as_ref()
            .and_then(|model| self.ask_model(model, &player, (req.round, req.pick), &reasoning));
        let (reasoning, trash_talk, from_model) = match asked {
            Some((reasoning, trash_talk)) => (reasoning, trash_talk, true),
            None => (reasoning, trash_talk, false),
        };
        self.say(reasoning.clone());
        let trash_talk = self.say(trash_talk);
        self.my_picks.push(player.clone());
        Ok(Answer::Pick {
            player: player.name.clone(),
            reasoning: Some(reasoning),
            trash_talk: Some(trash_talk),
            from_model,
        })
    }

    /// Asks `model` for the reasoning and trash talk of taking `player`,
    /// in this drafter's persona; `rule` is the rule-based reasoning. The
    /// answer's lines, or `None` if the model did not give usable ones in
    /// time.
    fn ask_model(
        &self,
        model: &Model,
        player: &Player,
        (round, pick): (u32, u32),
        rule: &str,
    ) -> Option<(String, String)> {
        let persona = self
            .persona
            .as_deref()
            .unwrap_or("a confident fantasy football drafter");
        let roster: Vec<String> = self
            .my_picks
            .iter()
            .map(|p| format!("{} ({})", p.name, p.position))
            .collect();
        let board: Vec<String> = self
            .board
            .iter()
            .map(|(team, picks)| format!("Team {team}: {}", picks.join(", ")))
            .collect();
        let system = format!(
            "You are {name}, an AI drafter in a fantasy football mock draft. Your persona: \
             {persona}. Your rule: {rule_line}. Stay in character, keep it friendly, no \
             profanity. Answer with JSON only: {{\"reasoning\": \"one sentence on why you took \
             the player\", \"trash_talk\": \"one short line of trash talk for the other teams\"}}.",
            name = self.name,
            rule_line = S::RULE,
        );
        let user = format!(
            "Round {round}, pick {pick}. You just took {player} ({pos}, {team}), {value}. \
             Your rule's reason: {rule} \
             Your roster before this pick: {roster}. The board so far: {board}.",
            player = player.name,
            pos = player.position,
            team = player.team,
            value = value_words(player, pick),
            roster = if roster.is_empty() {
                "nobody yet".to_string()
            } else {
                roster.join(", ")
            },
            board = if board.is_empty() {
                "no picks yet".to_string()
            } else {
                board.join("; ")
            },
        );
        let body = json!({
            "model": model.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_tokens": 160,
            "temperature": 0.8,
        });
        let answer = a2a_agent_sdk::http::send(&a2a_agent_sdk::http::HttpRequest {
            method: "POST".into(),
            url: model.url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            timeout: Some(model.timeout),
        })
        .ok()?;
        if answer.status != 200 {
            return None;
        }
        model_lines(&answer.body)
    }

    fn comment(&mut self, req: CommentRequest) -> Answer {
        let about = if req.about_name.is_empty() {
            format!("Team {}", req.about_team)
        } else {
            short(&req.about_name).to_string()
        };
        remember(
            &mut self.seen,
            format!("{about} took {} at pick {}", req.player.name, req.pick),
        );
        let lines = if req.rival {
            S::LINES.rival
        } else if req.by_human {
            S::LINES.human
        } else if self.strategy.cares_about(&req.player) || self.rng.coin() {
            S::LINES.other
        } else {
            return Answer::Pass;
        };
        let template = self.line(lines);
        if template.is_empty() {
            return Answer::Pass;
        }
        let mut text = fill(template, &req.player, req.pick, &about, &self.name);
        let roster = self.board.entry(req.about_team.to_string()).or_default();
        if !roster.contains(&req.player.name) {
            roster.push(req.player.name.clone());
        }
        let position = &req.player.position;
        let same = roster
            .iter()
            .filter(|n| self.positions.get(*n) == Some(position) || **n == req.player.name)
            .count();
        if same >= 2 {
            text.push_str(&format!(" That's {same} {position}s for {about} now."));
        }
        let text = self.voice.speak(&text, false, &mut self.rng);
        Answer::Comment {
            text: self.say(text),
        }
    }

    fn memory(&self) -> Value {
        json!({
            "type": "memory",
            "name": self.name,
            "my_picks": self.my_picks.iter().map(|p| &p.name).collect::<Vec<_>>(),
            "board": self.board,
            "seen": self.seen,
            "answered": self.answered,
            "said": self.said,
            "notes": self.notes,
        })
    }
}

/// A request's `type`, read without building the rest: the request is
/// then parsed once, straight into its own type.
fn request_type(data: &str) -> Result<Option<String>, String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    match serde_json::from_str::<Typed>(data) {
        Ok(typed) => Ok(typed.kind),
        // Valid JSON that is not an object has no type.
        Err(_) if serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok() => Ok(None),
        Err(e) => Err(format!("data part is not JSON: {e}")),
    }
}

fn answer(value: &impl Serialize) -> Reply {
    let json = serde_json::to_string(value).expect("answers serialise");
    Update::completed(Message::agent(vec![Part::Data(json)])).into()
}

impl<S: Strategy> Agent for Drafter<S> {
    fn init(config: Config) -> Result<Self, String> {
        let seed = match config.get("seed") {
            None => 0x5eed_2024,
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| format!("config.seed must be a whole number, not {s:?}"))?,
        };
        Ok(Drafter {
            strategy: S::default(),
            name: config.get("name").unwrap_or(S::DEFAULT_NAME).to_string(),
            persona: config.get("persona").map(str::to_string),
            model: Model::from_config(&config)?,
            voice: Voice::from_persona(config.get("persona")),
            rng: Rng::new(seed),
            my_picks: Vec::new(),
            board: Default::default(),
            seen: Vec::new(),
            answered: Vec::new(),
            said: Vec::new(),
            used: Vec::new(),
            positions: Default::default(),
            notes: Vec::new(),
        })
    }

    fn describe(&self) -> Info {
        // Joined, not formatted: `format!` calls through the module's
        // function table, and `describe` runs when a session is created,
        // so formatting here would give every idle drafter a page of
        // that table (4 KiB an instance) it otherwise never touches.
        let mut description = [S::RULE, " “", S::CATCHPHRASE, "”"].concat();
        if let Some(persona) = &self.persona {
            description.extend([" Persona: ", persona, "."]);
        }
        Info::new(&self.name, description)
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

    fn handle(&mut self, req: Request) -> Result<Reply, String> {
        let Some(data) = req.message.data() else {
            let text = req.text();
            if text.trim() == "memory" {
                return Ok(answer(&self.memory()));
            }
            remember(&mut self.notes, text);
            let ack = self.voice.speak(
                &format!(
                    "{} Noted. Send me a pick_request when it's my turn.",
                    S::CATCHPHRASE
                ),
                false,
                &mut self.rng,
            );
            return Ok(Update::completed(Message::agent_text(&ack)).into());
        };
        match request_type(data)?.as_deref() {
            Some("pick_request") => {
                let req = serde_json::from_str::<PickRequest>(data)
                    .map_err(|e| format!("bad pick_request: {e}"))?;
                self.pick(req).map(|a| answer(&a))
            }
            Some("comment_request") => {
                let req = serde_json::from_str::<CommentRequest>(data)
                    .map_err(|e| format!("bad comment_request: {e}"))?;
                Ok(answer(&self.comment(req)))
            }
            Some("memory") => Ok(answer(&self.memory())),
            other => Err(format!(
                "unknown request type {other:?}: expected pick_request, comment_request or memory"
            )),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn model_lines_come_from_the_json_in_the_answer_or_not_at_all() {
        let answer = |content: &str| {
            json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
                .to_string()
                .into_bytes()
        };
        let lines = r#"{"reasoning": "He wins in space.", "trash_talk": "Catch up."}"#;
        let want = Some(("He wins in space.".to_string(), "Catch up.".to_string()));
        assert_eq!(model_lines(&answer(lines)), want);
        assert_eq!(
            model_lines(&answer(&format!("```json\n{lines}\n```"))),
            want
        );
        assert_eq!(model_lines(&answer("I can't help with that.")), None);
        assert_eq!(model_lines(&answer(r#"{"reasoning": "only one"}"#)), None);
        assert_eq!(
            model_lines(&answer(r#"{"reasoning": " ", "trash_talk": "x"}"#)),
            None
        );
        assert_eq!(model_lines(b"not json"), None);
        assert_eq!(
            model_lines(br#"{"error": {"message": "rate limited"}}"#),
            None
        );
        let long = "x".repeat(1000);
        let (reasoning, _) = model_lines(&answer(
            &json!({"reasoning": long, "trash_talk": "t"}).to_string(),
        ))
        .unwrap();
        assert_eq!(reasoning.chars().count(), MAX_MODEL_LINE);
    }
    use super::*;
    use a2a_agent_sdk::{Role, TaskState};

    #[derive(Default)]
    struct WantsTe;
    impl Strategy for WantsTe {
        const COMPONENT: &'static str = "te";
        const RULE: &'static str = "Tight ends.";
        const CATCHPHRASE: &'static str = "TE or bust.";
        const DEFAULT_NAME: &'static str = "Team TE";
        const LINES: Lines = Lines {
            plan: &[
                "{player} is the tight end I wanted.",
                "Tight end {player}, {value}.",
            ],
            value: &["{player} is the best left."],
            rival: &["{about} took {player}? Cute.", "{player} to {about}. Bold."],
            human: &["You took {player}. Fine."],
            other: &["{player} to {about}."],
            boast: &["TE or bust.", "Tight ends forever.", "Mismatch city."],
        };
        fn choose(&mut self, _round: u32, available: &[Player], _rng: &mut Rng) -> (usize, Why) {
            match best_at(available, "TE") {
                Some(i) => (i, Why::Plan),
                None => (0, Why::Value),
            }
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

    fn answer_of(reply: Reply) -> Value {
        let update = reply.task().expect("drafters answer with a task");
        assert_eq!(update.state, TaskState::Completed);
        let data = reply.message().unwrap().data().unwrap().to_string();
        serde_json::from_str(&data).unwrap()
    }

    fn player(name: &str, position: &str, adp: f64) -> Value {
        json!({"name": name, "position": position, "team": "KC", "adp": adp, "tier": 2})
    }

    fn drafter(config: &[(&str, &str)]) -> Drafter<WantsTe> {
        Drafter::init(Config(
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
        .unwrap()
    }

    fn pick_request(pick: u32, pool: Value, said: Value) -> Request {
        request(
            json!({"type": "pick_request", "round": 1, "pick": pick, "available": pool,
                       "board": {"1": ["A"], "2": []}, "said_about_me": said}),
        )
    }

    #[test]
    fn picks_by_strategy_from_an_unsorted_pool_and_remembers() {
        let mut d = drafter(&[]);
        let pool = json!([
            player("B", "WR", 9.0),
            player("Kelce", "TE", 20.0),
            player("A", "RB", 3.0)
        ]);
        let a = answer_of(d.handle(pick_request(4, pool, json!([]))).unwrap());
        assert_eq!(a["player"], "Kelce");
        assert!(a["reasoning"].as_str().unwrap().contains("Kelce"), "{a}");
        let memory = answer_of(d.handle(request(json!({"type": "memory"}))).unwrap());
        assert_eq!(memory["my_picks"], json!(["Kelce"]));
        assert_eq!(memory["board"]["1"], json!(["A"]));
        assert_eq!(memory["said"].as_array().unwrap().len(), 2, "{memory}");
    }

    #[test]
    fn reasoning_follows_the_roster_and_trash_talk_answers_a_mocking_rival() {
        let mut d = drafter(&[("name", "Tess")]);
        let pool = || json!([player("Kelce", "TE", 20.0), player("Andrews", "TE", 30.0)]);
        let first = answer_of(d.handle(pick_request(4, pool(), json!([]))).unwrap());
        assert!(
            first["reasoning"].as_str().unwrap().contains("First brick"),
            "{first}"
        );
        let pool = json!([player("Andrews", "TE", 30.0)]);
        let said = json!([{"team": 3, "name": "Team 3", "text": "Kelce? Cute."}]);
        let second = answer_of(d.handle(pick_request(9, pool, said.clone())).unwrap());
        assert!(
            second["reasoning"]
                .as_str()
                .unwrap()
                .contains("My second TE after Kelce"),
            "{second}"
        );
        let talk = second["trash_talk"].as_str().unwrap();
        assert!(
            talk.contains("Team 3 had jokes") && talk.contains("Andrews"),
            "{talk}"
        );
        // A remark is answered once.
        let third = answer_of(
            d.handle(pick_request(16, json!([player("X", "QB", 40.0)]), said))
                .unwrap(),
        );
        assert!(
            !third["trash_talk"].as_str().unwrap().contains("had jokes"),
            "{third}"
        );
    }

    #[test]
    fn the_seed_varies_the_lines_and_replays_them() {
        let lines = |seed: &str| {
            let mut d = drafter(&[("seed", seed)]);
            (0..6)
                .map(|i| {
                    let pool = json!([player(&format!("T{i}"), "TE", 20.0 + i as f64)]);
                    answer_of(d.handle(pick_request(4 + i, pool, json!([]))).unwrap())["trash_talk"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(lines("1"), lines("1"), "same seed, same draft");
        let distinct: std::collections::HashSet<Vec<String>> =
            ["1", "2", "3", "4"].iter().map(|s| lines(s)).collect();
        assert!(distinct.len() > 1, "different seeds read differently");
        assert!(Drafter::<WantsTe>::init(Config(vec![("seed".into(), "x".into())])).is_err());
    }

    #[test]
    fn a_persona_changes_the_voice_not_the_pick() {
        let pool = || json!([player("B", "WR", 9.0), player("Kelce", "TE", 20.0)]);
        let mut plain = drafter(&[("seed", "5")]);
        let mut pirate = drafter(&[("seed", "5"), ("persona", "a salty pirate")]);
        let mut loud = drafter(&[("seed", "5"), ("persona", "LOUD and angry")]);
        let mut odd = drafter(&[("seed", "5"), ("persona", "a retired ballet dancer")]);
        let a = answer_of(plain.handle(pick_request(4, pool(), json!([]))).unwrap());
        let b = answer_of(pirate.handle(pick_request(4, pool(), json!([]))).unwrap());
        let c = answer_of(loud.handle(pick_request(4, pool(), json!([]))).unwrap());
        let d = answer_of(odd.handle(pick_request(4, pool(), json!([]))).unwrap());
        assert_eq!(a["player"], b["player"]);
        assert_eq!(a["player"], c["player"]);
        assert!(
            b["reasoning"].as_str().unwrap().ends_with(", matey!"),
            "{b}"
        );
        let shout = c["reasoning"].as_str().unwrap();
        assert_eq!(shout, shout.to_uppercase());
        assert!(
            d["trash_talk"].as_str().unwrap().contains("ballet dancer"),
            "{d}"
        );
    }

    #[test]
    fn comments_speak_to_rivals_and_the_human_and_bad_requests_are_errors() {
        let mut d = drafter(&[("name", "Bob")]);
        assert_eq!(d.describe().name, "Bob");
        let calm = drafter(&[("persona", "calm")]);
        assert_eq!(
            calm.describe().description,
            "Tight ends. “TE or bust.” Persona: calm."
        );
        let ask = |rival: bool, by_human: bool| {
            request(
                json!({"type": "comment_request", "about_team": 2, "about_name": "Team 2",
                           "player": player("X", "QB", 30.0), "pick": 8, "rival": rival,
                           "by_human": by_human}),
            )
        };
        let rival = answer_of(d.handle(ask(true, false)).unwrap());
        assert_eq!(rival["type"], "comment");
        let text = rival["text"].as_str().unwrap();
        assert!(text.contains("X") && text.contains("Team 2"), "{text}");
        let human = answer_of(d.handle(ask(false, true)).unwrap());
        assert_eq!(human["text"], "You took X. Fine.");
        let others: Vec<Value> = (0..20)
            .map(|_| answer_of(d.handle(ask(false, false)).unwrap()))
            .collect();
        assert!(others.iter().any(|a| a["type"] == "pass"));
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
        let memory = answer_of(d.handle(request(json!({"type": "memory"}))).unwrap());
        assert_eq!(memory["seen"][0], "Team 2 took X at pick 8");
    }

    #[test]
    fn value_words_never_show_numbers() {
        let p = |adp: f64| Player {
            name: "P".into(),
            position: "RB".into(),
            team: String::new(),
            adp,
            tier: 1,
            ppg: 0.0,
        };
        assert_eq!(value_words(&p(1.5), 1), "a top-5 player");
        assert_eq!(value_words(&p(10.0), 20), "a steal this late");
        assert_eq!(value_words(&p(40.0), 10), "a reach by the book");
        assert_eq!(value_words(&p(30.0), 30), "a sleeper");
    }
}
