//! The conformance agent: drives every part of the A2A surface so
//! clients and test kits can exercise it. What a message's text starts
//! with decides what happens:
//!
//! - `stream [N]`: N (default 3) progress updates, one per `interval_ms`
//!   (config, default 1000), then an artifact; the task completes.
//! - `complete`: the task completes with an artifact.
//! - `input`: the task waits for input (input-required).
//! - `reject`: the task is rejected.
//! - `fail`: the agent answers with an error; the task fails.
//! - `panic`: the agent panics; the host recycles it.
//! - anything else: the task is working and stays working; the answer
//!   echoes the text. Follow-ups with the task id append to it.
//!
//! Cancel ends a task as canceled; the agent remembers which.

use std::collections::HashMap;
use std::time::Duration;

use a2a_agent_sdk::*;

struct Conformance {
    interval: Duration,
    turns: HashMap<String, u32>,
    canceled: Vec<String>,
}

fn update(state: TaskState, text: String) -> Update {
    Update {
        state,
        message: Some(Message::agent_text(&text)),
        artifacts: Vec::new(),
    }
}

impl Agent for Conformance {
    fn init(config: Config) -> Result<Self, String> {
        let interval_ms = match config.get("interval_ms") {
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| format!("interval_ms must be a number of milliseconds, not {v:?}"))?,
            None => 1000,
        };
        Ok(Conformance {
            interval: Duration::from_millis(interval_ms),
            turns: HashMap::new(),
            canceled: Vec::new(),
        })
    }

    fn describe(&self) -> Info {
        Info::new(
            "Conformance agent",
            "Exercises the whole A2A surface: long-running tasks, follow-ups, streams, artifacts, cancel.",
        )
        .skill(
            "conformance",
            "Conformance",
            "stream [N] | complete | input | reject | fail | panic | anything else (echo, stays working)",
            &["a2a", "testing"],
        )
    }

    fn handle(&mut self, req: Request) -> Result<Update, String> {
        let text = req.text();
        let turn = self.turns.entry(req.task_id.clone()).or_insert(0);
        *turn += 1;
        let turn = *turn;
        let mut words = text.split_whitespace();
        match words.next().unwrap_or("") {
            "stream" => {
                let steps: u32 = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(3)
                    .min(20);
                for step in 1..=steps {
                    emit(
                        &req.task_id,
                        &update(TaskState::Working, format!("progress {step}/{steps}")),
                    );
                    std::thread::sleep(self.interval);
                }
                let mut done = update(TaskState::Completed, format!("streamed {steps} updates"));
                done.artifacts.push(Artifact::text(
                    "stream-result",
                    &format!("{steps} steps done"),
                ));
                Ok(done)
            }
            "complete" => {
                let mut done = update(
                    TaskState::Completed,
                    format!("completed after {turn} messages"),
                );
                done.artifacts.push(Artifact::text(
                    "result",
                    &format!("task {} finished", req.task_id),
                ));
                Ok(done)
            }
            "input" => Ok(update(
                TaskState::InputRequired,
                "what should I do next?".into(),
            )),
            "reject" => Ok(update(TaskState::Rejected, "I will not do that".into())),
            "fail" => Err("failed because the message asked me to".into()),
            "panic" => panic!("the conformance agent was asked to panic"),
            _ if req.new_task => Ok(update(TaskState::Working, format!("echo: {text}"))),
            _ => Ok(update(
                TaskState::Working,
                format!("follow-up {turn}: {text}"),
            )),
        }
    }

    fn cancel(&mut self, task_id: &str) {
        log::info(&format!("task {task_id} canceled"));
        self.turns.remove(task_id);
        self.canceled.push(task_id.to_string());
        if self.canceled.len() > 100 {
            self.canceled.remove(0);
        }
    }
}

export_agent!(Conformance);
