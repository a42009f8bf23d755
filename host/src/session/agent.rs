//! The bridge between the protocol layer and the sandbox: a Wasm
//! instance as an [`AgentBackend`], and the conversions between A2A wire
//! types and the contract's types.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::a2a::tasks::ArtifactChunk;
use crate::a2a::types::{Artifact, JsonText, Message, Part, PartContent, Role, TaskState};
use crate::a2a::{
    AgentBackend, AgentFailure, AgentInfo, AgentReply, AgentRequest, Crash, EmitSink, Skill,
    TaskUpdate,
};
use crate::metrics::{CallLabels, ComponentLabel, Metrics, metrics};
use crate::runtime::{CallError, Chunk, GuestInstance, guest};

/// One agent instance behind a lock: a store runs one call at a time, so
/// calls to one agent queue here while other agents run in parallel.
///
/// [`A2aService`](crate::a2a::A2aService) runs every call to its end (in a
/// task of its own once the client goes away), so a client that leaves
/// never drops a guest mid-call.
pub struct GuestBackend {
    instance: tokio::sync::Mutex<GuestInstance>,
    /// Calls waiting for the instance.
    waiting: AtomicUsize,
    component: String,
    /// The series every answered call moves, looked up once rather than
    /// by label on each call.
    handled: Counter,
    call_seconds: Histogram,
}

impl GuestBackend {
    /// The backend of one agent: `instance`, of the component named `component`.
    pub fn new(instance: GuestInstance, component: &str) -> Self {
        let m = metrics();
        m.instances_live.inc();
        let handled = m
            .guest_calls
            .get_or_create(&call_labels(component, "handle", "ok"))
            .clone();
        let call_seconds = m
            .guest_call_seconds
            .get_or_create(&ComponentLabel {
                component: component.to_string(),
            })
            .clone();
        GuestBackend {
            instance: tokio::sync::Mutex::new(instance),
            waiting: AtomicUsize::new(0),
            component: component.to_string(),
            handled,
            call_seconds,
        }
    }

    fn record(&self, method: &str, outcome: &str) {
        metrics()
            .guest_calls
            .get_or_create(&call_labels(&self.component, method, outcome))
            .inc();
    }

    fn record_crash(&self, method: &str, crash: &CallError) {
        self.record(method, "crashed");
        Metrics::count(&metrics().guest_traps, crash.kind());
    }
}

/// A call counted among those waiting for an instance until dropped
/// (which it is also when the caller gives up waiting).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn call_labels(component: &str, method: &str, outcome: &str) -> CallLabels {
    CallLabels {
        component: component.to_string(),
        method: method.to_string(),
        outcome: outcome.to_string(),
    }
}

impl Drop for GuestBackend {
    fn drop(&mut self) {
        metrics().instances_live.dec();
    }
}

impl AgentBackend for GuestBackend {
    async fn run(&self, req: AgentRequest, emit: EmitSink) -> Result<AgentReply, AgentFailure> {
        let request = guest::Request {
            task_id: req.task_id,
            context_id: req.context_id,
            new_task: req.new_task,
            message: guest_copy(&req.message).await,
        };
        let on_emit = Box::new(
            move |task_id: &str, update: guest::Update, chunk: Option<Chunk>| {
                let mut update = update_from_guest(update);
                update.chunk = chunk.map(|c| ArtifactChunk {
                    append: c.append,
                    last_chunk: c.last,
                });
                emit(task_id, update)
            },
        );
        let chain = super::peers::chain_of(&req.message);
        let outcome = {
            let waiting = Waiting::enter(&self.waiting);
            let mut instance = self.instance.lock().await;
            drop(waiting);
            let started = std::time::Instant::now();
            let outcome = instance.handle(&request, on_emit, chain).await;
            self.call_seconds.observe(started.elapsed().as_secs_f64());
            outcome
        };
        // The lock went to the next caller, which now waits to be run on
        // this thread once this task yields (tokio runs a task it has just
        // woken next, on the same thread, and no other thread may take it
        // over). Yield now, so the agent is not idle while this call writes
        // its answer; the rest of this call can move to the other threads.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            tokio::task::yield_now().await;
        }
        match outcome {
            Ok(Ok(reply)) => {
                self.handled.inc();
                Ok(match reply {
                    guest::Reply::Message(m) => AgentReply::Message(message_from_guest(m)),
                    guest::Reply::Task(update) => AgentReply::Task(update_from_guest(update)),
                })
            }
            Ok(Err(refusal)) => {
                self.record("handle", "refused");
                Err(AgentFailure::Refused(refusal))
            }
            Err(crash) => {
                self.record_crash("handle", &crash);
                Err(AgentFailure::Crashed(Crash {
                    kind: crash.kind(),
                    detail: crash.to_string(),
                }))
            }
        }
    }

    async fn cancel(&self, task_id: String) {
        let mut instance = self.instance.lock().await;
        let outcome = instance.cancel(&task_id).await;
        match &outcome {
            Ok(()) => self.record("cancel", "ok"),
            Err(crash) => self.record_crash("cancel", crash),
        }
        if let Err(e) = outcome {
            let tag = instance.tag();
            tracing::warn!(session = %tag.session, slot = tag.slot, task = %task_id, error = %e, "agent cancel failed");
        }
    }
}

/// The card fields of a guest's `describe`.
pub fn info_from_guest(info: guest::Info) -> AgentInfo {
    AgentInfo {
        name: info.name,
        description: info.description,
        version: info.version,
        skills: info
            .skills
            .into_iter()
            .map(|s| Skill {
                id: s.id,
                name: s.name,
                description: s.description,
                tags: s.tags,
            })
            .collect(),
        streaming: info.streaming,
    }
}

/// The guest's copy of a part (the store keeps the original).
fn part_to_guest(part: &Part) -> guest::Part {
    match &part.content {
        PartContent::Text(t) => guest::Part::Text(t.clone()),
        PartContent::Data(d) => guest::Part::Data(d.get().to_string()),
        PartContent::Raw(bytes) => guest::Part::File(guest::FileRef {
            name: part.filename.clone(),
            media_type: part.media_type.clone(),
            uri: None,
            bytes: Some(bytes.clone()),
        }),
        PartContent::Url(uri) => guest::Part::File(guest::FileRef {
            name: part.filename.clone(),
            media_type: part.media_type.clone(),
            uri: Some(uri.clone()),
            bytes: None,
        }),
    }
}

fn part_from_guest(part: guest::Part) -> Part {
    let (content, media_type, filename) = match part {
        guest::Part::Text(t) => (PartContent::Text(t), None, None),
        // A guest that sends malformed JSON still gets its text through.
        guest::Part::Data(d) => match JsonText::parse(&d) {
            Ok(v) => (PartContent::Data(v), None, None),
            Err(_) => (PartContent::Text(d), None, None),
        },
        guest::Part::File(f) => match (f.bytes, f.uri) {
            (Some(bytes), _) => (PartContent::Raw(bytes), f.media_type, f.name),
            (None, Some(uri)) => (PartContent::Url(uri), f.media_type, f.name),
            (None, None) => (PartContent::Text(String::new()), f.media_type, f.name),
        },
    };
    Part {
        content,
        media_type,
        filename,
        metadata: None,
    }
}

/// The guest's copy of a message; of a large one ([`crate::bulk::LARGE`]),
/// made as bulk work (here only if the pool could not).
async fn guest_copy(message: &Arc<Message>) -> guest::Message {
    let shared = Arc::clone(message);
    crate::bulk::run_if_large(crate::a2a::cost::message(message), move || {
        message_to_guest(&shared)
    })
    .await
    .unwrap_or_else(|_| message_to_guest(message))
}

/// The guest's copy of a message.
pub(super) fn message_to_guest(m: &Message) -> guest::Message {
    guest::Message {
        message_id: m.message_id.clone(),
        role: match m.role {
            Role::User => guest::Role::User,
            Role::Agent => guest::Role::Agent,
        },
        parts: m.parts.iter().map(part_to_guest).collect(),
        context_id: m.context_id.clone(),
        task_id: m.task_id.clone(),
    }
}

fn message_from_guest(m: guest::Message) -> Message {
    let mut message = message_from_guest_as(m, Role::Agent);
    message.context_id = None;
    message.task_id = None;
    message
}

/// A guest's message as one sent by `role`, with the task and context it
/// names.
pub(super) fn message_from_guest_as(m: guest::Message, role: Role) -> Message {
    Message {
        message_id: m.message_id,
        role,
        parts: m.parts.into_iter().map(part_from_guest).collect(),
        context_id: m.context_id,
        task_id: m.task_id,
        metadata: None,
        extensions: None,
        reference_task_ids: None,
    }
}

/// A task as a caller's contract sees another agent's answer: its state,
/// status message and artifacts.
pub(super) fn update_to_guest(task: &crate::a2a::types::Task) -> guest::Update {
    guest::Update {
        state: state_to_guest(task.status.state),
        message: task.status.message.as_deref().map(message_to_guest),
        artifacts: task
            .artifacts
            .iter()
            .flatten()
            .map(|a| guest::Artifact {
                artifact_id: a.artifact_id.clone(),
                name: a.name.clone(),
                description: a.description.clone(),
                parts: a.parts.iter().map(part_to_guest).collect(),
            })
            .collect(),
    }
}

fn state_to_guest(s: TaskState) -> guest::TaskState {
    match s {
        TaskState::Submitted => guest::TaskState::Submitted,
        TaskState::Working => guest::TaskState::Working,
        TaskState::InputRequired => guest::TaskState::InputRequired,
        TaskState::Completed => guest::TaskState::Completed,
        TaskState::Canceled => guest::TaskState::Canceled,
        TaskState::Failed => guest::TaskState::Failed,
        TaskState::Rejected => guest::TaskState::Rejected,
        TaskState::AuthRequired => guest::TaskState::AuthRequired,
    }
}

fn state_from_guest(s: guest::TaskState) -> TaskState {
    match s {
        guest::TaskState::Submitted => TaskState::Submitted,
        guest::TaskState::Working => TaskState::Working,
        guest::TaskState::InputRequired => TaskState::InputRequired,
        guest::TaskState::Completed => TaskState::Completed,
        guest::TaskState::Canceled => TaskState::Canceled,
        guest::TaskState::Failed => TaskState::Failed,
        guest::TaskState::Rejected => TaskState::Rejected,
        guest::TaskState::AuthRequired => TaskState::AuthRequired,
    }
}

fn update_from_guest(u: guest::Update) -> TaskUpdate {
    TaskUpdate {
        state: state_from_guest(u.state),
        message: u.message.map(message_from_guest),
        artifacts: u
            .artifacts
            .into_iter()
            .map(|a| Artifact {
                artifact_id: a.artifact_id,
                name: a.name,
                description: a.description,
                parts: a.parts.into_iter().map(part_from_guest).collect(),
                metadata: None,
            })
            .collect(),
        chunk: None,
    }
}

/// Shared handle to a slot's service, as servers hold it.
pub type SlotService = Arc<crate::a2a::A2aService<GuestBackend>>;
