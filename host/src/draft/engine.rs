//! The draft engine: runs one mock draft from the first pick to the
//! summary. It asks the AI drafters for picks and comments through
//! [`Seats`], checks every answer, waits for the human (or lets the
//! advisor pick), and publishes each step as an event that any number of
//! watchers can replay from the start.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use draft_protocol::{Answer, CommentRequest, PickRequest, Remark, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use super::client::{AskError, DrafterClient, Exchange};
use super::players::{Player, pool};
use super::rules::{
    Advice, HUMAN_TEAM, Rng, TEAMS, advise, commenter, on_the_clock, slot_of, team_of,
};

/// Longest text kept from a drafter's answer.
const MAX_TEXT_CHARS: usize = 300;

/// How the drafters are reached: one per AI slot (0..5).
pub trait Seats: Send + Sync + 'static {
    /// Sends `request` to the drafter in `slot`; returns its `data` answer
    /// as it came (the engine checks it), and the exchange, when the
    /// drafter was reached over A2A.
    fn ask(
        &self,
        slot: usize,
        request: &Request,
    ) -> impl Future<Output = (Result<Value, AskError>, Option<Exchange>)> + Send;
}

impl Seats for Vec<DrafterClient> {
    async fn ask(
        &self,
        slot: usize,
        request: &Request,
    ) -> (Result<Value, AskError>, Option<Exchange>) {
        match self.get(slot) {
            Some(agent) => {
                let (answer, exchange) = agent.ask(request).await;
                (answer, Some(exchange))
            }
            None => (Err(AskError::NoSeat(slot)), None),
        }
    }
}

/// How a draft is played.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Settings {
    pub rounds: u8,
    /// Fixes every random choice of the engine (and, passed on, of the
    /// drafters): one seed, one draft.
    pub seed: u64,
    /// The advisor picks for the human.
    pub auto: bool,
}

/// A team as the page and the terminal show it.
#[derive(Debug, Clone, Serialize)]
pub struct TeamCard {
    pub team: u8,
    pub name: String,
    /// The strategy, from the agent's card (empty for the human).
    pub description: String,
    pub persona: String,
    pub human: bool,
}

/// Who made a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PickedBy {
    /// An AI drafter's own, valid choice.
    Agent,
    /// The engine, because the drafter's answer was unusable.
    Fallback,
    /// The human.
    Human,
    /// The advisor, for the human (auto mode).
    Advisor,
}

/// One step of a draft as pages and the terminal read it, in the event
/// log and on the event stream (`type` names the variant).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DraftEvent<'a> {
    /// The human is on the clock.
    Turn {
        pick: u32,
        round: u32,
        team: u8,
        advice: &'a Advice,
    },
    /// A pick was made, with what its drafter said (or the engine's note).
    Pick {
        pick: u32,
        round: u32,
        team: u8,
        team_name: &'a str,
        player: &'a Player,
        by: PickedBy,
        #[serde(flatten)]
        words: &'a Words,
    },
    /// A drafter's comment on a pick.
    Comment {
        pick: u32,
        team: u8,
        team_name: &'a str,
        about_team: u8,
        rival: bool,
        text: &'a str,
    },
    /// A round ended: every team's players so far, by team number.
    Round {
        round: u32,
        board: BTreeMap<u8, Vec<&'a Player>>,
    },
    /// A call the engine made to a drafter, for the A2A inspector.
    Call {
        team: u8,
        team_name: &'a str,
        /// What the call was for: `pick` or `comment`.
        purpose: &'static str,
        #[serde(flatten)]
        exchange: &'a Exchange,
    },
    /// The draft ended.
    Done {
        summary: Vec<TeamSummary<'a>>,
        elapsed_ms: f64,
    },
}

/// A team's result in the `done` event.
#[derive(Debug, Serialize)]
pub struct TeamSummary<'a> {
    team: u8,
    name: &'a str,
    human: bool,
    players: Vec<&'a Player>,
    points_per_game: f64,
}

/// An event as published: its place in the log and its JSON, written
/// once for every watcher.
#[derive(Debug, Clone)]
pub struct Published {
    pub seq: usize,
    pub json: Arc<str>,
}

/// What a client needs to draw a draft now (`GET /v1/drafts/{id}`).
#[derive(Debug, Serialize)]
pub struct Snapshot {
    id: String,
    rounds: u8,
    seed: u64,
    auto: bool,
    human_team: u8,
    teams: Vec<TeamCard>,
    picks: Vec<PickRecord>,
    available: Vec<Player>,
    on_the_clock: Option<OnTheClock>,
    your_turn: bool,
    advice: Option<Advice>,
    finished: bool,
    elapsed_ms: Option<f64>,
    events: usize,
    /// The draft's token: in the create response only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Who picks next.
#[derive(Debug, Serialize)]
struct OnTheClock {
    pick: u32,
    round: u32,
    team: u8,
}

#[derive(Debug, Clone, Serialize)]
struct PickRecord {
    pick: u32,
    round: u32,
    team: u8,
    player: Player,
    by: PickedBy,
}

/// Why a human's pick was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("it is not your turn")]
    NotYourTurn,
    #[error("the draft is over")]
    Finished,
    #[error("no player named {0:?} in the pool")]
    Unknown(String),
    #[error("{0} is already taken")]
    Taken(String),
}

#[derive(Default)]
struct State {
    available: Vec<Player>,
    picks: Vec<PickRecord>,
    /// Comments made about each team's picks: (about team, by team, text).
    comments: Vec<(u8, u8, String)>,
    events: Vec<Published>,
    /// The human's turn: which pick, and the advisor's tip.
    awaiting: Option<(u32, Advice)>,
    choice: Option<Player>,
    elapsed: Option<Duration>,
}

/// One draft: its teams, its state so far, and its event log.
pub struct Draft {
    pub id: String,
    pub settings: Settings,
    pub teams: Vec<TeamCard>,
    state: Mutex<State>,
    published: watch::Sender<usize>,
    human_chose: Notify,
}

impl Draft {
    /// A draft about to start. `teams` holds all six, in team order.
    pub fn new(id: String, settings: Settings, teams: Vec<TeamCard>) -> Draft {
        assert_eq!(teams.len(), TEAMS as usize);
        Draft {
            id,
            settings,
            teams,
            state: Mutex::new(State {
                available: pool(),
                ..State::default()
            }),
            published: watch::channel(0).0,
            human_chose: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn team_name(&self, team: u8) -> &str {
        &self.teams[team as usize - 1].name
    }

    /// Events `from` onward (0-based sequence numbers).
    pub fn events_since(&self, from: usize) -> Vec<Published> {
        self.state().events.get(from..).unwrap_or_default().to_vec()
    }

    /// Changes whenever an event is published; holds the event count.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.published.subscribe()
    }

    /// Whether the summary has been published.
    pub fn is_finished(&self) -> bool {
        self.state().elapsed.is_some()
    }

    /// Appends `event` to the log (with its `seq`) and wakes watchers.
    fn publish(&self, events: &mut Vec<Published>, event: &DraftEvent<'_>) {
        #[derive(Serialize)]
        struct Logged<'e, 'a> {
            seq: usize,
            #[serde(flatten)]
            event: &'e DraftEvent<'a>,
        }
        let seq = events.len();
        let json = serde_json::to_string(&Logged { seq, event }).expect("events serialise");
        events.push(Published {
            seq,
            json: Arc::from(json),
        });
        self.published.send_replace(events.len());
    }

    /// Everything a client needs to draw the draft now.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state();
        let pick = state.picks.len() as u32 + 1;
        let total = self.settings.rounds as u32 * TEAMS as u32;
        let on_the_clock = (pick <= total).then(|| {
            let (round, team) = on_the_clock(pick);
            OnTheClock { pick, round, team }
        });
        Snapshot {
            id: self.id.clone(),
            rounds: self.settings.rounds,
            seed: self.settings.seed,
            auto: self.settings.auto,
            human_team: HUMAN_TEAM,
            teams: self.teams.clone(),
            picks: state.picks.clone(),
            available: state.available.clone(),
            on_the_clock,
            your_turn: state.awaiting.is_some() && state.choice.is_none(),
            advice: state.awaiting.as_ref().map(|(_, a)| a.clone()),
            finished: state.elapsed.is_some(),
            elapsed_ms: state.elapsed.map(|d| d.as_secs_f64() * 1e3),
            events: state.events.len(),
            token: None,
        }
    }

    /// The human's pick, by name (case and spacing do not matter).
    pub fn choose(&self, name: &str) -> Result<Player, PickError> {
        let mut state = self.state();
        if state.elapsed.is_some() {
            return Err(PickError::Finished);
        }
        if state.awaiting.is_none() || state.choice.is_some() {
            return Err(PickError::NotYourTurn);
        }
        let index = match locate(name, &state.available, &state.picks) {
            Ok(index) => index,
            Err(Some(taken)) => return Err(PickError::Taken(taken.player.name.clone())),
            Err(None) => return Err(PickError::Unknown(name.to_string())),
        };
        let player = state.available[index].clone();
        state.choice = Some(player.clone());
        drop(state);
        self.human_chose.notify_one();
        Ok(player)
    }

    /// Runs the draft to the end. Time spent waiting for the human is not
    /// counted in the reported `elapsed_ms`.
    pub async fn run<S: Seats>(&self, seats: &S) {
        let mut rng = Rng::new(self.settings.seed);
        let total = self.settings.rounds as u32 * TEAMS as u32;
        let mut busy = Duration::ZERO;
        let mut since = Instant::now();
        for pick in 1..=total {
            let (round, team) = on_the_clock(pick);
            let (player, by, words) = if team == HUMAN_TEAM {
                let advice = self.advice(round);
                if self.settings.auto {
                    let player = self.available_named(&advice.player);
                    (player, PickedBy::Advisor, Words::default())
                } else {
                    busy += since.elapsed();
                    let player = self.wait_for_human(pick, round, advice).await;
                    since = Instant::now();
                    (player, PickedBy::Human, Words::default())
                }
            } else {
                self.ai_pick(seats, pick, round, team).await
            };
            self.record(pick, round, team, player.clone(), by, words);
            self.comment(seats, pick, round, team, &player, &mut rng)
                .await;
            if pick % TEAMS as u32 == 0 || pick == total {
                self.end_of_round(round);
            }
        }
        busy += since.elapsed();
        self.finish(busy);
    }

    fn advice(&self, round: u32) -> Advice {
        let state = self.state();
        let roster: Vec<&Player> = state
            .picks
            .iter()
            .filter(|r| r.team == HUMAN_TEAM)
            .map(|r| &r.player)
            .collect();
        let recent: Vec<&Player> = state
            .picks
            .iter()
            .rev()
            .filter(|r| r.team != HUMAN_TEAM)
            .take(TEAMS as usize)
            .map(|r| &r.player)
            .collect();
        advise(round, &roster, &state.available, &recent)
    }

    fn available_named(&self, name: &str) -> Player {
        let state = self.state();
        state
            .available
            .iter()
            .find(|p| p.name == name)
            .unwrap_or(&state.available[0])
            .clone()
    }

    async fn wait_for_human(&self, pick: u32, round: u32, advice: Advice) -> Player {
        {
            let mut state = self.state();
            let state = &mut *state;
            let event = DraftEvent::Turn {
                pick,
                round,
                team: HUMAN_TEAM,
                advice: &advice,
            };
            self.publish(&mut state.events, &event);
            state.awaiting = Some((pick, advice));
        }
        loop {
            {
                let mut state = self.state();
                if let Some(player) = state.choice.take() {
                    state.awaiting = None;
                    return player;
                }
            }
            self.human_chose.notified().await;
        }
    }

    /// Asks an AI team for its pick and checks the answer; an unusable
    /// answer becomes the best player left, with a note saying why.
    async fn ai_pick<S: Seats>(
        &self,
        seats: &S,
        pick: u32,
        round: u32,
        team: u8,
    ) -> (Player, PickedBy, Words) {
        let request = self.pick_request(pick, round, team);
        let slot = slot_of(team).expect("AI teams have slots");
        let (answer, exchange) = seats.ask(slot, &request).await;
        let mut state = self.state();
        if let Some(exchange) = &exchange {
            let event = DraftEvent::Call {
                team,
                team_name: self.team_name(team),
                purpose: "pick",
                exchange,
            };
            self.publish(&mut state.events, &event);
        }
        let checked = answer
            .map_err(Unusable::from)
            .and_then(|a| check_pick(&a, &state.available, &state.picks));
        match checked {
            Ok((index, words)) => (state.available[index].clone(), PickedBy::Agent, words),
            Err(why) => {
                tracing::info!(draft = %self.id, team, pick, reason = %why, "drafter's pick replaced");
                let words = Words {
                    note: Some(format!(
                        "{}'s answer was unusable ({}); the engine took the best player left.",
                        self.team_name(team),
                        clip(&why.to_string())
                    )),
                    ..Words::default()
                };
                (state.available[0].clone(), PickedBy::Fallback, words)
            }
        }
    }

    fn pick_request(&self, pick: u32, round: u32, team: u8) -> Request {
        let state = self.state();
        let board: BTreeMap<String, Vec<String>> = (1..=TEAMS)
            .map(|t| {
                let names = state
                    .picks
                    .iter()
                    .filter(|r| r.team == t)
                    .map(|r| r.player.name.clone())
                    .collect();
                (t.to_string(), names)
            })
            .collect();
        let said_about_me = state
            .comments
            .iter()
            .filter(|(about, _, _)| *about == team)
            .map(|(_, by, text)| Remark {
                team: u32::from(*by),
                name: self.team_name(*by).to_string(),
                text: text.clone(),
            })
            .collect();
        Request::PickRequest(PickRequest {
            round,
            pick,
            team,
            rounds: self.settings.rounds,
            available: state.available.clone(),
            my_picks: board[&team.to_string()].clone(),
            board,
            said_about_me,
        })
    }

    fn record(&self, pick: u32, round: u32, team: u8, player: Player, by: PickedBy, words: Words) {
        let mut state = self.state();
        let state = &mut *state;
        state.available.retain(|p| p.name != player.name);
        let event = DraftEvent::Pick {
            pick,
            round,
            team,
            team_name: self.team_name(team),
            player: &player,
            by,
            words: &words,
        };
        self.publish(&mut state.events, &event);
        state.picks.push(PickRecord {
            pick,
            round,
            team,
            player,
            by,
        });
    }

    /// At most one comment per pick, from the AI team the rules choose.
    async fn comment<S: Seats>(
        &self,
        seats: &S,
        pick: u32,
        round: u32,
        team: u8,
        player: &Player,
        rng: &mut Rng,
    ) {
        let chosen = {
            let state = self.state();
            let earlier: Vec<&Player> = state
                .picks
                .iter()
                .take(state.picks.len() - 1)
                .map(|r| &r.player)
                .collect();
            commenter(pick, team, player, &earlier, rng)
        };
        let Some(c) = chosen else { return };
        let request = Request::CommentRequest(CommentRequest {
            about_team: u32::from(team),
            about_name: self.team_name(team).to_string(),
            by_human: team == HUMAN_TEAM,
            player: player.clone(),
            pick,
            round,
            rival: c.rival,
        });
        let slot = slot_of(c.team).expect("commenters are AI teams");
        let (answer, exchange) = seats.ask(slot, &request).await;
        if let Some(exchange) = &exchange {
            let mut state = self.state();
            let event = DraftEvent::Call {
                team: c.team,
                team_name: self.team_name(c.team),
                purpose: "comment",
                exchange,
            };
            self.publish(&mut state.events, &event);
        }
        let answer = answer.map(serde_json::from_value::<Answer>);
        let text = match answer {
            Ok(Ok(Answer::Comment { text })) if !text.trim().is_empty() => clip(text.trim()),
            Ok(_) => return,
            Err(why) => {
                tracing::info!(draft = %self.id, team = c.team, pick, reason = %why, "comment failed");
                return;
            }
        };
        let mut state = self.state();
        let state = &mut *state;
        let event = DraftEvent::Comment {
            pick,
            team: c.team,
            team_name: self.team_name(c.team),
            about_team: team,
            rival: c.rival,
            text: &text,
        };
        self.publish(&mut state.events, &event);
        state.comments.push((team, c.team, text));
    }

    fn end_of_round(&self, round: u32) {
        let mut state = self.state();
        let state = &mut *state;
        let mut board: BTreeMap<u8, Vec<&Player>> = BTreeMap::new();
        for r in &state.picks {
            board.entry(r.team).or_default().push(&r.player);
        }
        self.publish(&mut state.events, &DraftEvent::Round { round, board });
    }

    fn finish(&self, busy: Duration) {
        let mut state = self.state();
        let state = &mut *state;
        state.elapsed = Some(busy);
        let summary = self
            .teams
            .iter()
            .map(|t| {
                let players: Vec<&Player> = state
                    .picks
                    .iter()
                    .filter(|r| r.team == t.team)
                    .map(|r| &r.player)
                    .collect();
                let points: f64 = players.iter().map(|p| p.ppg).sum();
                TeamSummary {
                    team: t.team,
                    name: &t.name,
                    human: t.human,
                    players,
                    points_per_game: (points * 10.0).round() / 10.0,
                }
            })
            .collect();
        let event = DraftEvent::Done {
            summary,
            elapsed_ms: busy.as_secs_f64() * 1e3,
        };
        self.publish(&mut state.events, &event);
    }
}

/// What a drafter said with its pick, or the engine's note.
#[derive(Debug, Default, Serialize)]
pub struct Words {
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trash_talk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// The reasoning and trash talk came from the language model.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    from_model: bool,
}

/// Why a drafter's pick was replaced by the engine's.
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error(transparent)]
    Ask(#[from] AskError),
    #[error("expected a pick, got {0}")]
    NotAPick(String),
    #[error("the pick names no player")]
    NoPlayer,
    #[error("{player} was already taken at pick {pick}")]
    Taken { player: String, pick: u32 },
    #[error("{0:?} is not in the player pool")]
    Unknown(String),
}

/// Checks a drafter's answer: a `pick` naming a player still available.
/// Returns the player's index in `available`, or why the answer is unusable.
fn check_pick(
    answer: &Value,
    available: &[Player],
    picks: &[PickRecord],
) -> Result<(usize, Words), Unusable> {
    let Ok(Answer::Pick {
        player: name,
        reasoning,
        trash_talk,
        from_model,
    }) = Answer::deserialize(answer)
    else {
        return Err(Unusable::NotAPick(clip(&answer.to_string())));
    };
    if name.trim().is_empty() {
        return Err(Unusable::NoPlayer);
    }
    let index = locate(&name, available, picks).map_err(|taken| match taken {
        Some(r) => Unusable::Taken {
            player: r.player.name.clone(),
            pick: r.pick,
        },
        None => Unusable::Unknown(clip(&name)),
    })?;
    let said = |text: Option<String>| {
        text.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(clip)
    };
    Ok((
        index,
        Words {
            reasoning: said(reasoning),
            trash_talk: said(trash_talk),
            note: None,
            from_model,
        },
    ))
}

/// Where `name` is among the available players; if it is not there, the
/// pick that took him (`None`: no such player). Case and spacing do not
/// matter.
fn locate<'a>(
    name: &str,
    available: &[Player],
    picks: &'a [PickRecord],
) -> Result<usize, Option<&'a PickRecord>> {
    let wanted = normalize(name);
    available
        .iter()
        .position(|p| normalize(&p.name) == wanted)
        .ok_or_else(|| picks.iter().find(|r| normalize(&r.player.name) == wanted))
}

/// Lower case, single spaces: how names are compared.
fn normalize(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `text`, cut to [`MAX_TEXT_CHARS`] characters.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The six team cards: the five drafters' cards (name and description
/// from their agent cards) around the human's.
pub fn team_cards(drafters: Vec<(String, String, String)>) -> Vec<TeamCard> {
    let mut drafters = drafters.into_iter();
    (1..=TEAMS)
        .map(|team| {
            if team == HUMAN_TEAM {
                return TeamCard {
                    team,
                    name: "Team 4 — You".into(),
                    description: String::new(),
                    persona: String::new(),
                    human: true,
                };
            }
            let (name, description, persona) = drafters
                .next()
                .unwrap_or_else(|| (format!("Team {team}"), String::new(), String::new()));
            debug_assert_eq!(team_of(slot_of(team).unwrap()), team);
            TeamCard {
                team,
                name,
                description,
                persona,
                human: false,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;
    use std::sync::Arc;

    /// Drafters that take the best player left, except the ones told to
    /// misbehave.
    struct Fake {
        /// slot → what it answers instead of a good pick.
        bad: Vec<(usize, Value)>,
        dead: Vec<usize>,
    }

    impl Seats for Fake {
        async fn ask(
            &self,
            slot: usize,
            request: &Request,
        ) -> (Result<Value, AskError>, Option<Exchange>) {
            (self.answer(slot, request), None)
        }
    }

    impl Fake {
        fn answer(&self, slot: usize, request: &Request) -> Result<Value, AskError> {
            if self.dead.contains(&slot) {
                return Err(AskError::Rpc {
                    code: -32006,
                    message: "the agent trapped".into(),
                });
            }
            let request = serde_json::to_value(request).unwrap();
            if request["type"] == "comment_request" {
                return Ok(json!({"type": "comment", "text": format!("slot {slot} saw it")}));
            }
            if let Some((_, answer)) = self.bad.iter().find(|(s, _)| *s == slot) {
                return Ok(answer.clone());
            }
            let best = &request["available"][0]["name"];
            Ok(json!({"type": "pick", "player": best, "reasoning": "best left"}))
        }
    }

    fn draft(seed: u64, auto: bool) -> Arc<Draft> {
        let cards = team_cards(
            (0..5)
                .map(|s| (format!("AI {s}"), String::new(), String::new()))
                .collect(),
        );
        Arc::new(Draft::new(
            "d".into(),
            Settings {
                rounds: 3,
                seed,
                auto,
            },
            cards,
        ))
    }

    fn events(d: &Draft) -> Vec<Value> {
        d.events_since(0)
            .iter()
            .map(|e| serde_json::from_str(&e.json).unwrap())
            .collect()
    }

    fn picks(d: &Draft) -> Vec<Value> {
        events(d)
            .into_iter()
            .filter(|e| e["type"] == "pick")
            .collect()
    }

    #[tokio::test]
    async fn an_auto_draft_is_legal_snake_ordered_and_summarised() {
        for seed in 0..5 {
            let d = draft(seed, true);
            d.run(&Fake {
                bad: vec![],
                dead: vec![],
            })
            .await;
            let picks = picks(&d);
            assert_eq!(picks.len(), 18);
            let names: HashSet<&str> = picks
                .iter()
                .map(|p| p["player"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(names.len(), 18, "18 distinct players");
            let teams: Vec<u64> = picks.iter().map(|p| p["team"].as_u64().unwrap()).collect();
            assert_eq!(
                teams,
                [1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6]
            );
            for team in 1..=6 {
                assert_eq!(teams.iter().filter(|&&t| t == team).count(), 3);
            }
            let events = events(&d);
            let per_pick = |n: u64| {
                events
                    .iter()
                    .filter(|e| e["type"] == "comment" && e["pick"] == n)
                    .count()
            };
            assert!((1..=18).all(|n| per_pick(n) <= 1), "one comment at most");
            assert_eq!(per_pick(4), 1, "the human's pick draws a comment");
            assert_eq!(events.iter().filter(|e| e["type"] == "round").count(), 3);
            let done = events.last().unwrap();
            assert_eq!(done["type"], "done");
            assert_eq!(done["summary"].as_array().unwrap().len(), 6);
            assert!(d.is_finished());
        }
    }

    #[tokio::test]
    async fn unusable_answers_and_dead_drafters_fall_back_to_the_best_left() {
        let d = draft(1, true);
        d.run(&Fake {
            bad: vec![
                (0, json!({"type": "pick", "player": "Nobody Atall"})),
                (1, json!("not even an object")),
                (2, json!({"type": "pick", "player": "Christian McCaffrey"})),
            ],
            dead: vec![4],
        })
        .await;
        let picks = picks(&d);
        assert_eq!(picks.len(), 18);
        for p in &picks {
            let team = p["team"].as_u64().unwrap();
            let expect = match team {
                1..=3 | 6 => "fallback",
                4 => "advisor",
                _ => "agent",
            };
            // Team 3 asks for McCaffrey: fine only if still there (never:
            // Team 1 takes him first by falling back to the best left).
            assert_eq!(p["by"], expect, "{p}");
            if expect == "fallback" {
                assert!(p["note"].as_str().unwrap().contains("unusable"), "{p}");
            }
        }
        let note = picks[2]["note"].as_str().unwrap();
        assert!(note.contains("already taken"), "{note}");
        let names: HashSet<&str> = picks
            .iter()
            .map(|p| p["player"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 18);
    }

    #[tokio::test]
    async fn the_human_picks_by_name_and_bad_picks_are_refused() {
        let d = draft(3, false);
        let runner = {
            let d = Arc::clone(&d);
            tokio::spawn(async move {
                d.run(&Fake {
                    bad: vec![],
                    dead: vec![],
                })
                .await
            })
        };
        let mut seen = d.subscribe();
        assert_eq!(d.choose("Puka Nacua"), Err(PickError::NotYourTurn));
        let mut turns = 0;
        while !d.is_finished() {
            seen.changed().await.unwrap();
            let snap = serde_json::to_value(d.snapshot()).unwrap();
            if snap["your_turn"] == true {
                turns += 1;
                let first = snap["picks"][0]["player"]["name"].as_str().unwrap();
                assert!(matches!(d.choose(first), Err(PickError::Taken(_))));
                assert!(matches!(d.choose("Nobody"), Err(PickError::Unknown(_))));
                let tip = snap["advice"]["player"].as_str().unwrap().to_uppercase();
                d.choose(&tip).unwrap();
                assert_eq!(d.choose(&tip), Err(PickError::NotYourTurn));
            }
        }
        runner.await.unwrap();
        assert_eq!(turns, 3);
        assert_eq!(d.choose("x"), Err(PickError::Finished));
        let mine = picks(&d)
            .into_iter()
            .filter(|p| p["team"] == 4)
            .all(|p| p["by"] == "human");
        assert!(mine);
    }
}
