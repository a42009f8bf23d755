//! The conformance agent: drives every part of the A2A surface so
//! clients and conformance kits can exercise it.
//!
//! # Text directives
//! What a message's text starts with decides what happens:
//!
//! - `stream [N]`: N (default 3) progress updates, one per `interval_ms`
//!   (config, default 1000), then an artifact; the task completes.
//! - `complete`: the task completes with an artifact.
//! - `input`: the task waits for input (input-required).
//! - `reject`: the task is rejected.
//! - `fail`: the agent answers with an error; the task fails.
//! - `panic`: the agent panics; the host recycles it.
//! - `work`: the task is working and stays working; follow-ups with the
//!   task id append to it (`follow-up N: …`) until one says `complete`.
//! - `reply`: the agent answers with a bare message; no task is kept.
//! - anything else: the task completes with an echo of the text, so no
//!   generic client waits on a task that never ends. A follow-up to a
//!   task that is still open keeps it working.
//!
//! # Scenarios by message id
//! Conformance kits choose a scenario by the `messageId` of the message
//! that starts the task; a recognised prefix wins over the text:
//!
//! - `tck-complete-task`: completes with a text answer.
//! - `tck-input-required`: asks for input; the follow-up completes it.
//! - `tck-reject-task`: rejected.
//! - `tck-artifact-text`, `tck-artifact-file` (bytes),
//!   `tck-artifact-file-url`, `tck-artifact-data`: one artifact of that
//!   part kind, then completed.
//! - `tck-message-response`: a bare message, no task.
//! - `tck-stream-001` to `tck-stream-003` and `tck-stream-ordering-001`:
//!   three status updates, then an artifact, then completed, in order.
//! - `tck-stream-artifact-…`: one artifact sent in three pieces
//!   (`append`, `lastChunk`), then completed.
//! - `test-resubscribe-message-id`: working for three seconds (a
//!   progress update each second), then completed.
//! - any other `tck-` id: completes at once.
//!
//! Cancel ends a task as canceled. The agent keeps nothing about a task
//! that ended, and at most 1,000 open ones, so its memory stays flat
//! however many calls it serves.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use a2a_agent_sdk::*;

struct Conformance {
    interval: Duration,
    /// Messages so far of each task that is still open, with when it was
    /// last answered (a counter); a task that ends is forgotten, so the
    /// agent's memory does not grow with the calls it has served.
    open: HashMap<String, OpenTask>,
    answered: u64,
    /// Tasks started by `tck-input-required`, waiting for their follow-up.
    awaiting: HashSet<String>,
}

/// A task the agent left open (working or waiting for input).
struct OpenTask {
    turns: u32,
    last_answered: u64,
}

/// Open tasks the agent remembers; past this the one answered longest
/// ago is forgotten (a follow-up to it starts again at turn one).
const MAX_OPEN_TASKS: usize = 1_000;

/// Pause between the updates of a message-id stream scenario.
const SCENARIO_STEP: Duration = Duration::from_millis(50);
/// How long `test-resubscribe-message-id` keeps its task working.
const RESUBSCRIBE_WINDOW_SECS: u32 = 3;

fn update(state: TaskState, text: String) -> Update {
    Update {
        state,
        message: Some(Message::agent_text(&text)),
        artifacts: Vec::new(),
    }
}

fn completed(text: &str) -> Result<Reply, String> {
    Ok(Update::text(text).into())
}

fn with_id(mut artifact: Artifact, id: &str) -> Artifact {
    artifact.artifact_id = id.into();
    artifact
}

fn file_artifact(name: &str, file: FileRef) -> Artifact {
    Artifact {
        artifact_id: String::new(),
        name: Some(name.into()),
        description: None,
        parts: vec![Part::File(file)],
    }
}

impl Conformance {
    /// The scenario a kit chose by message id, if any.
    fn scenario(&mut self, req: &Request) -> Option<Result<Reply, String>> {
        let id = req.message.message_id.as_str();
        if id.starts_with("test-resubscribe-message-id") {
            for second in 1..=RESUBSCRIBE_WINDOW_SECS {
                req.progress(&format!("working, {second}s of {RESUBSCRIBE_WINDOW_SECS}s"));
                std::thread::sleep(Duration::from_secs(1));
            }
            return Some(completed("resubscribe window over"));
        }
        let scenario = id.strip_prefix("tck-")?;
        let has = |prefix: &str| scenario.starts_with(prefix);
        let done = |artifact: Artifact| {
            Ok(Update::text("artifact attached")
                .with_artifact(artifact)
                .into())
        };
        Some(if has("complete-task") {
            completed("task completed")
        } else if has("input-required") {
            self.awaiting.insert(req.task_id.clone());
            Ok(Update::input_required("more input is needed to go on").into())
        } else if has("reject-task") {
            Ok(update(TaskState::Rejected, "task rejected".into()).into())
        } else if has("artifact-text") {
            done(Artifact::text("text-artifact", "the artifact's text"))
        } else if has("artifact-file-url") {
            done(file_artifact(
                "file-url-artifact",
                FileRef {
                    name: Some("report.txt".into()),
                    media_type: Some("text/plain".into()),
                    uri: Some("https://example.com/files/report.txt".into()),
                    bytes: None,
                },
            ))
        } else if has("artifact-file") {
            done(file_artifact(
                "file-artifact",
                FileRef {
                    name: Some("report.txt".into()),
                    media_type: Some("text/plain".into()),
                    uri: None,
                    bytes: Some(b"the file's bytes".to_vec()),
                },
            ))
        } else if has("artifact-data") {
            done(Artifact {
                artifact_id: String::new(),
                name: Some("data-artifact".into()),
                description: None,
                parts: vec![Part::Data(r#"{"kind":"data","values":[1,2,3]}"#.into())],
            })
        } else if has("message-response") {
            Ok(Reply::text("a message, and no task"))
        } else if has("stream-artifact") {
            let pieces = ["first piece, ", "second piece, ", "last piece"];
            for (i, piece) in pieces.iter().enumerate() {
                let artifact = with_id(Artifact::text("chunked-artifact", piece), "chunked");
                req.emit_artifact_chunk(&artifact, i > 0, i == pieces.len() - 1);
                std::thread::sleep(SCENARIO_STEP);
            }
            completed("chunked artifact sent")
        } else if has("stream-") {
            for step in 1..=3 {
                req.progress(&format!("status update {step} of 3"));
                std::thread::sleep(SCENARIO_STEP);
            }
            req.emit_artifact(Artifact::text("stream-artifact", "streamed result"));
            completed("stream completed")
        } else {
            completed("task completed")
        })
    }
}

impl Agent for Conformance {
    fn init(config: Config) -> Result<Self, String> {
        let interval_ms = config.parse::<u64>("interval_ms")?.unwrap_or(1000);
        Ok(Conformance {
            interval: Duration::from_millis(interval_ms),
            open: HashMap::new(),
            answered: 0,
            awaiting: HashSet::new(),
        })
    }

    fn describe(&self) -> Info {
        Info::new(
            "Conformance agent",
            "Exercises the whole A2A surface: long-running tasks, follow-ups, streams, artifacts, message replies, cancel.",
        )
        .skill(
            "conformance",
            "Conformance",
            "Acts on the first word of a message: stream [N], complete, input, reject, fail, panic, work, reply; anything else is echoed back as a completed task.",
            &["a2a", "protocol"],
        )
    }

    fn handle(&mut self, req: Request) -> Result<Reply, String> {
        let turn = self.open.get(&req.task_id).map_or(0, |t| t.turns) + 1;
        let reply = self.answer(&req, turn);
        if leaves_open(&reply) {
            self.remember(&req.task_id, turn);
        } else {
            self.forget(&req.task_id);
        }
        reply
    }

    fn cancel(&mut self, task_id: &str) {
        log::info(&format!("task {task_id} canceled"));
        self.forget(task_id);
    }
}

/// Whether `reply` keeps its task open for follow-ups.
fn leaves_open(reply: &Result<Reply, String>) -> bool {
    matches!(reply, Ok(Reply::Task(update)) if matches!(
        update.state,
        TaskState::Submitted | TaskState::Working | TaskState::InputRequired | TaskState::AuthRequired
    ))
}

impl Conformance {
    /// Notes one more message on the open task `task_id`, forgetting the
    /// task answered longest ago when too many are open.
    fn remember(&mut self, task_id: &str, turns: u32) {
        if !self.open.contains_key(task_id)
            && self.open.len() >= MAX_OPEN_TASKS
            && let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, t)| t.last_answered)
                .map(|(id, _)| id.clone())
        {
            self.forget(&oldest);
        }
        self.answered += 1;
        let last_answered = self.answered;
        self.open.insert(
            task_id.to_string(),
            OpenTask {
                turns,
                last_answered,
            },
        );
    }

    /// Drops what the agent keeps about a task that ended.
    fn forget(&mut self, task_id: &str) {
        self.open.remove(task_id);
        self.awaiting.remove(task_id);
    }

    /// The answer to the `turn`th message of its task.
    fn answer(&mut self, req: &Request, turn: u32) -> Result<Reply, String> {
        let text = req.text();
        if self.awaiting.remove(&req.task_id) {
            return completed(&format!("completed with the input: {text}"));
        }
        if req.new_task
            && let Some(reply) = self.scenario(req)
        {
            return reply;
        }
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
                Ok(done.into())
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
                Ok(done.into())
            }
            "input" => Ok(update(TaskState::InputRequired, "what should I do next?".into()).into()),
            "reject" => Ok(update(TaskState::Rejected, "I will not do that".into()).into()),
            "fail" => Err("failed because the message asked me to".into()),
            "panic" => panic!("the conformance agent was asked to panic"),
            "reply" => Ok(Reply::text(&format!("reply: {text}"))),
            "work" if req.new_task => {
                Ok(update(TaskState::Working, format!("working on: {text}")).into())
            }
            _ if req.new_task => completed(&format!("echo: {text}")),
            _ => Ok(update(TaskState::Working, format!("follow-up {turn}: {text}")).into()),
        }
    }
}

export_agent!(Conformance);
