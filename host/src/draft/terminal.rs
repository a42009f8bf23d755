//! The draft in a terminal: a client of the draft API that prints the
//! live feed and the board, and reads the human's picks from any line
//! input (a terminal, a pipe or a file).

use std::io::Write;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::client::json_call;
use super::rules::TEAMS;
use crate::http_client::{KeepAlive, Outgoing, Target};

/// Players listed with numbers when it is the human's turn.
const LISTED: usize = 12;

/// How to play.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub rounds: Option<u8>,
    pub seed: Option<u64>,
    /// The advisor picks for the human.
    pub auto: bool,
    /// Repeat each line read after its prompt: input from a pipe or a
    /// file is not echoed by a terminal, and the transcript should read
    /// like a session.
    pub echo_input: bool,
}

/// Plays one draft on the server at `base_url`, reading picks from
/// `input` and writing the feed to `out`. The draft's session is ended
/// when this returns, whatever happened.
pub async fn play<R, W>(
    base_url: &str,
    options: Options,
    input: R,
    out: &mut W,
) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: Write,
{
    let target = Target::parse(base_url)?;
    if target.tls {
        bail!("{base_url}: the terminal client speaks plain HTTP; use an http:// URL");
    }
    let api = KeepAlive::new(target.authority);
    let base_path = target.path.trim_end_matches('/').to_string();
    let mut body = json!({"auto": options.auto});
    if let Some(r) = options.rounds {
        body["rounds"] = json!(r);
    }
    if let Some(s) = options.seed {
        body["seed"] = json!(s);
    }
    let (status, draft) = json_call(
        &api,
        Method::POST,
        &format!("{base_path}/v1/drafts"),
        None,
        &[],
        Some(&body),
    )
    .await?;
    if status != StatusCode::CREATED {
        bail!(
            "the server did not start a draft ({status}): {}",
            draft["error"]["message"]
                .as_str()
                .unwrap_or("no reason given")
        );
    }
    let id = draft["id"].as_str().unwrap_or_default().to_string();
    let token = draft["token"].as_str().unwrap_or_default().to_string();
    let path = format!("{base_path}/v1/drafts/{id}");
    let played = Game {
        api: &api,
        path: &path,
        token: &token,
        input: input.lines(),
        echo_input: options.echo_input,
        out,
    }
    .run(&draft)
    .await;
    let _ = json_call(&api, Method::DELETE, &path, Some(&token), &[], None).await;
    played
}

struct Game<'a, R, W> {
    api: &'a KeepAlive,
    path: &'a str,
    token: &'a str,
    input: tokio::io::Lines<R>,
    echo_input: bool,
    out: &'a mut W,
}

/// Writes a line; a closed output is not worth failing a draft for.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{ let _ = writeln!($out, $($arg)*); }};
}

impl<R: AsyncBufRead + Unpin, W: Write> Game<'_, R, W> {
    async fn run(&mut self, draft: &Value) -> anyhow::Result<()> {
        say!(
            self.out,
            "Mock draft: {} rounds, 6 teams, snake order. You are Team 4.",
            draft["rounds"]
        );
        for t in draft["teams"].as_array().into_iter().flatten() {
            if t["human"] == true {
                continue;
            }
            say!(
                self.out,
                "  {} — {}",
                t["name"].as_str().unwrap_or("?"),
                t["description"].as_str().unwrap_or("")
            );
        }
        // The stream holds its own connection; picks go on `api`.
        let stream_client = KeepAlive::new(self.api.authority().to_string());
        let auth = format!("Bearer {}", self.token);
        let response = stream_client
            .open(Outgoing {
                method: Method::GET,
                path: &format!("{}/events", self.path),
                headers: &[("authorization", &auth), ("accept", "text/event-stream")],
                body: Bytes::new(),
            })
            .await?;
        if response.status() != StatusCode::OK {
            bail!("the event stream answered {}", response.status());
        }
        let mut body = response.into_body();
        let mut buffer = String::new();
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                    continue;
                };
                let event: Value =
                    serde_json::from_str(data).context("a malformed event from the server")?;
                if self.show(&event).await? {
                    return Ok(());
                }
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(bytes) = frame.data_ref() {
                        buffer.push_str(&String::from_utf8_lossy(bytes));
                    }
                }
                Some(Err(e)) => bail!("the event stream broke: {e}"),
                None => bail!("the event stream ended before the draft did"),
            }
        }
    }

    /// Prints one event (and plays the human's turn); true when done.
    async fn show(&mut self, event: &Value) -> anyhow::Result<bool> {
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        match event["type"].as_str().unwrap_or("") {
            "pick" => {
                let p = &event["player"];
                if event["pick"].as_u64().unwrap_or(0) % TEAMS as u64 == 1 {
                    say!(self.out, "\n— Round {} —", event["round"]);
                }
                say!(
                    self.out,
                    "{:>3}. {}: {} ({}, {}){}",
                    event["pick"],
                    text(&event["team_name"]),
                    text(&p["name"]),
                    text(&p["position"]),
                    text(&p["team"]),
                    match event["by"].as_str() {
                        Some("advisor") => " [advisor's pick]",
                        Some("fallback") => " [fallback]",
                        _ => "",
                    }
                );
                for key in ["reasoning", "trash_talk", "note"] {
                    if let Some(line) = event[key].as_str() {
                        say!(self.out, "       {line}");
                    }
                }
            }
            "comment" => say!(
                self.out,
                "       » {}: {}",
                text(&event["team_name"]),
                text(&event["text"])
            ),
            "round" => self.board(&event["board"], event["round"].as_u64().unwrap_or(0)),
            "turn" => self.human_turn(event).await?,
            "done" => {
                say!(self.out, "\nFinal rosters:");
                for team in event["summary"].as_array().into_iter().flatten() {
                    let players: Vec<String> = team["players"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| format!("{} ({})", text(&p["name"]), text(&p["position"])))
                        .collect();
                    say!(
                        self.out,
                        "  {:<28} {} — {} pts/game last season",
                        text(&team["name"]),
                        players.join(", "),
                        team["points_per_game"]
                    );
                }
                say!(
                    self.out,
                    "\nDraft complete: {:.1} ms of host time, every agent call included.",
                    event["elapsed_ms"].as_f64().unwrap_or(0.0)
                );
                return Ok(true);
            }
            _ => {}
        }
        Ok(false)
    }

    fn board(&mut self, board: &Value, round: u64) {
        say!(self.out, "\nBoard after round {round}:");
        for team in 1..=TEAMS {
            let row: Vec<String> = board[team.to_string()]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} {}",
                        p["position"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            say!(self.out, "  Team {team}: {}", row.join(" | "));
        }
    }

    /// Shows the advisor's tip and the best players left, reads a pick
    /// (a number, a name, or a unique part of one) and sends it. An empty
    /// line takes the tip; so does the end of input.
    async fn human_turn(&mut self, turn: &Value) -> anyhow::Result<()> {
        let (_, draft) = json_call(
            self.api,
            Method::GET,
            self.path,
            Some(self.token),
            &[],
            None,
        )
        .await?;
        let available: Vec<Value> = draft["available"].as_array().cloned().unwrap_or_default();
        let tip = turn["advice"]["player"].as_str().unwrap_or("").to_string();
        say!(
            self.out,
            "\nYour pick (round {}, pick {}). Advisor: {tip} — {}",
            turn["round"],
            turn["pick"],
            turn["advice"]["reason"].as_str().unwrap_or("")
        );
        for (i, p) in available.iter().take(LISTED).enumerate() {
            say!(
                self.out,
                "  {:>2}) {:<24} {} {:<3} tier {}",
                i + 1,
                p["name"].as_str().unwrap_or(""),
                p["position"].as_str().unwrap_or(""),
                p["team"].as_str().unwrap_or(""),
                p["tier"]
            );
        }
        loop {
            let _ = write!(
                self.out,
                "Number or name (Enter takes the advisor's pick): "
            );
            let _ = self.out.flush();
            let line = self.input.next_line().await.context("reading your pick")?;
            if self.echo_input
                && let Some(line) = &line
            {
                say!(self.out, "{line}");
            }
            let choice = match line {
                None => {
                    say!(self.out, "\n(no more input: taking the advisor's pick)");
                    tip.clone()
                }
                Some(line) => match resolve(line.trim(), &available, &tip) {
                    Ok(name) => name,
                    Err(why) => {
                        say!(self.out, "{why}");
                        continue;
                    }
                },
            };
            let (status, answer) = json_call(
                self.api,
                Method::POST,
                &format!("{}/pick", self.path),
                Some(self.token),
                &[],
                Some(&json!({"player": choice})),
            )
            .await?;
            if status == StatusCode::OK {
                return Ok(());
            }
            say!(
                self.out,
                "{}",
                answer["error"]["message"]
                    .as_str()
                    .unwrap_or("that pick was refused")
            );
        }
    }
}

/// Why what the human typed names no one player; shown as the prompt's
/// answer.
#[derive(Debug, thiserror::Error)]
enum NoMatch {
    #[error("Choose a number from 1 to {0}.")]
    Number(usize),
    #[error("No available player matches {0:?}.")]
    Nobody(String),
    #[error("{input:?} matches {names}: type more of the name.")]
    Several { input: String, names: String },
}

/// What the human typed, as a player's name: a list number, a full name,
/// or a part of exactly one available name. Empty means the tip.
fn resolve(input: &str, available: &[Value], tip: &str) -> Result<String, NoMatch> {
    let names: Vec<&str> = available
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    if input.is_empty() {
        return Ok(tip.to_string());
    }
    if let Ok(n) = input.parse::<usize>() {
        return match names.get(n.wrapping_sub(1)) {
            Some(name) if n <= LISTED => Ok(name.to_string()),
            _ => Err(NoMatch::Number(LISTED.min(names.len()))),
        };
    }
    let wanted = input.to_lowercase();
    if let Some(exact) = names.iter().find(|n| n.to_lowercase() == wanted) {
        return Ok(exact.to_string());
    }
    let matches: Vec<&&str> = names
        .iter()
        .filter(|n| n.to_lowercase().contains(&wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(NoMatch::Nobody(input.to_string())),
        many => Err(NoMatch::Several {
            input: input.to_string(),
            names: many
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_resolve_by_number_name_or_unique_part() {
        let available = vec![
            json!({"name": "Bijan Robinson"}),
            json!({"name": "Brian Robinson Jr."}),
            json!({"name": "Puka Nacua"}),
        ];
        assert_eq!(resolve("3", &available, "x").unwrap(), "Puka Nacua");
        assert_eq!(resolve("puka", &available, "x").unwrap(), "Puka Nacua");
        assert_eq!(resolve("", &available, "Tip").unwrap(), "Tip");
        assert_eq!(
            resolve("bijan robinson", &available, "x").unwrap(),
            "Bijan Robinson"
        );
        assert!(
            resolve("robinson", &available, "x")
                .unwrap_err()
                .to_string()
                .contains("matches")
        );
        assert!(resolve("9", &available, "x").is_err());
        assert!(resolve("0", &available, "x").is_err());
        assert!(resolve("zzz", &available, "x").is_err());
    }
}
