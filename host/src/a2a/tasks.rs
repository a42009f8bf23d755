//! The task store of one agent instance: tasks with their history and
//! artifacts, the events each change produces (for streams and push),
//! and push configs. A terminal task never changes again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use tokio::sync::broadcast;

use super::cost;
use super::push::PushQueue;
use super::types::{
    Artifact, Message, PushConfig, Role, StreamResponse, Task, TaskArtifactUpdateEvent, TaskState,
    TaskStatus, TaskStatusUpdateEvent,
};
use crate::budget::{Kind, OverBudget, SessionBudget};
use crate::clock::{now_ms, rfc3339};

/// Tasks kept per agent. Past this, the oldest finished task is dropped
/// to make room; if none is finished, new tasks are refused.
pub const MAX_TASKS: usize = 1000;
/// Push configs per task.
pub const MAX_PUSH_CONFIGS: usize = 10;
/// Events buffered per subscriber; one that falls further behind is cut off.
pub const SUBSCRIBER_BUFFER: usize = 256;
/// Messages kept in a task's history; older ones are dropped.
pub const MAX_HISTORY: usize = 100;
/// Artifacts kept per task; older ones are dropped.
pub const MAX_ARTIFACTS: usize = 100;

/// A change the agent made to a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    pub state: TaskState,
    pub message: Option<Message>,
    pub artifacts: Vec<Artifact>,
    /// Set when the artifacts are pieces of artifacts sent in parts.
    pub chunk: Option<ArtifactChunk>,
}

/// How a piece of an artifact joins the task: `append` adds its parts
/// to the artifact with the same id, `last_chunk` marks the last piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactChunk {
    pub append: bool,
    pub last_chunk: bool,
}

/// One event of a task, serialized once for every subscriber and webhook.
#[derive(Debug, Clone)]
pub struct TaskEvent {
    /// A serialized `StreamResponse`.
    pub json: Bytes,
    /// True when this event ends a message stream: the task is terminal
    /// or waits for the client (input or auth required).
    pub ends_stream: bool,
    /// True when the task is terminal: no event follows, and every
    /// stream ends (a `SubscribeToTask` stream stays open through input
    /// and auth required).
    pub terminal: bool,
}

/// Why the store refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("task {0} not found")]
    NotFound(String),
    #[error("task {id} is already {state:?}")]
    Terminal { id: String, state: TaskState },
    #[error("this agent has {MAX_TASKS} unfinished tasks; finish or cancel some first")]
    Full,
    #[error("push config {config} not found for task {task}")]
    ConfigNotFound { task: String, config: String },
    #[error("task {0} already has {MAX_PUSH_CONFIGS} push configs")]
    TooManyConfigs(String),
    /// The session's content budget is spent: new content is refused
    /// (content already accepted is kept).
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

struct Entry {
    task: Task,
    /// Memory the task's content takes, as [`cost`] counts it; kept up
    /// to date change by change, so a change costs its own size.
    bytes: usize,
    /// Status timestamp, ms since the epoch: the ListTasks sort key.
    updated_ms: u64,
    events: Option<broadcast::Sender<TaskEvent>>,
    push: BTreeMap<String, (PushConfig, PushQueue)>,
    /// Whether an event of this task has been published.
    published: bool,
}

impl Entry {
    /// Sends events to subscribers and webhooks. Called under the lock,
    /// so events of one task are published in order; nothing here waits.
    fn publish(&mut self, events: Vec<TaskEvent>) {
        self.published |= !events.is_empty();
        for event in events {
            for (_, queue) in self.push.values() {
                queue.send(event.json.clone());
            }
            if let Some(tx) = &self.events
                && tx.send(event).is_err()
            {
                self.events = None;
            }
        }
    }

    /// Whether anyone receives the task's events: stream subscribers or
    /// webhooks. Events nobody receives are not made.
    fn listened_to(&self) -> bool {
        self.events.is_some() || !self.push.is_empty()
    }

    fn status_event(&self) -> TaskEvent {
        let state = self.task.status.state;
        event(
            &StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
                task_id: self.task.id.clone(),
                context_id: self.task.context_id.clone(),
                status: self.task.status.clone(),
                metadata: None,
            }),
            Some(state),
        )
    }

    /// Sends `event` to the task's stream subscribers only (not to its
    /// webhooks).
    fn publish_to_streams(&mut self, event: TaskEvent) {
        self.published = true;
        if let Some(tx) = &self.events
            && tx.send(event).is_err()
        {
            self.events = None;
        }
    }
}

/// An event; `state` is the task's state when the event changes it.
fn event(response: &StreamResponse, state: Option<TaskState>) -> TaskEvent {
    TaskEvent {
        json: Bytes::from(serde_json::to_vec(response).expect("events serialise")),
        ends_stream: state.is_some_and(|s| {
            s.is_terminal() || matches!(s, TaskState::InputRequired | TaskState::AuthRequired)
        }),
        terminal: state.is_some_and(TaskState::is_terminal),
    }
}

struct Tasks {
    by_id: HashMap<String, Entry>,
    /// Ids, oldest first.
    order: VecDeque<String>,
    /// Sum of every entry's `bytes`, charged to the session's budget.
    bytes: usize,
    budget: Arc<SessionBudget>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.budget.charge(Kind::StoreBytes, -(self.bytes as isize));
    }
}

impl Tasks {
    /// Moves the store's count (and the session's) by `delta`.
    fn charge(&mut self, delta: isize) {
        self.bytes = self.bytes.saturating_add_signed(delta);
        self.budget.charge(Kind::StoreBytes, delta);
    }

    /// Drops the oldest finished task other than `keep`. False if there
    /// is none.
    fn drop_oldest_finished(&mut self, keep: Option<&str>) -> bool {
        let oldest_done = self.order.iter().position(|id| {
            Some(id.as_str()) != keep && self.by_id[id].task.status.state.is_terminal()
        });
        let Some(i) = oldest_done else { return false };
        let id = self.order.remove(i).expect("position is in range");
        if let Some(entry) = self.by_id.remove(&id) {
            self.charge(-(entry.bytes as isize));
        }
        true
    }

    /// Makes room for `bytes` more content (and, for a new task, one more
    /// task) by dropping finished tasks other than `keep`, oldest first.
    fn make_room(
        &mut self,
        bytes: usize,
        new_task: bool,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        while new_task && self.by_id.len() >= MAX_TASKS {
            if !self.drop_oldest_finished(keep) {
                return Err(StoreError::Full);
            }
        }
        let limit = self.budget.limits().store_bytes;
        while self.budget.used(Kind::StoreBytes) + bytes > limit {
            if !self.drop_oldest_finished(keep) {
                return Err(self.budget.refusal(Kind::StoreBytes).into());
            }
        }
        Ok(())
    }

    /// Charges an entry's change (its count moved from `before`) and
    /// brings the store back within the session's budget: finished tasks
    /// go first, then the oldest history of the task being changed. The
    /// change itself is kept: it was accepted.
    fn settle(&mut self, id: &str, before: usize) {
        let Some(entry) = self.by_id.get_mut(id) else {
            return;
        };
        let mut removed = 0;
        let task = &mut entry.task;
        if let Some(h) = task.history.as_mut().filter(|h| h.len() > MAX_HISTORY) {
            removed += h
                .drain(..h.len() - MAX_HISTORY)
                .map(|m| cost::message(&m))
                .sum::<usize>();
        }
        if let Some(a) = task.artifacts.as_mut().filter(|a| a.len() > MAX_ARTIFACTS) {
            removed += a
                .drain(..a.len() - MAX_ARTIFACTS)
                .map(|a| cost::artifact(&a))
                .sum::<usize>();
        }
        entry.bytes -= removed.min(entry.bytes);
        let after = entry.bytes;
        self.charge(after as isize - before as isize);
        while !self.budget.within(Kind::StoreBytes) {
            // Never the task being changed: its caller reads it next.
            if self.drop_oldest_finished(Some(id)) {
                continue;
            }
            // Only this task and working ones are left: forget this
            // task's oldest messages.
            let entry = self.by_id.get_mut(id).expect("checked above");
            let Some(history) = entry.task.history.as_mut().filter(|h| h.len() > 1) else {
                break;
            };
            let freed = cost::message(&history.remove(0)).min(entry.bytes);
            entry.bytes -= freed;
            self.charge(-(freed as isize));
        }
    }

    fn entry(&mut self, id: &str) -> Result<&mut Entry, StoreError> {
        self.by_id
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// The entry of a task that is not terminal.
    fn live_entry(&mut self, id: &str) -> Result<&mut Entry, StoreError> {
        let entry = self.entry(id)?;
        match entry.task.status.state {
            state if state.is_terminal() => Err(StoreError::Terminal {
                id: id.to_string(),
                state,
            }),
            _ => Ok(entry),
        }
    }
}

/// What `ListTasks` asks for, validated.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub context_id: Option<String>,
    pub state: Option<TaskState>,
    /// Only tasks whose status changed at or after this time (ms).
    pub since_ms: Option<i64>,
    pub page_size: usize,
    pub after: Option<Cursor>,
    /// History kept in each task of the page.
    pub history: Option<usize>,
}

/// A position in the ListTasks order (newest first), as an opaque token.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    updated_ms: u64,
    id: String,
}

impl Cursor {
    /// The token a client sends back.
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.updated_ms, self.id))
    }

    /// Reads a token; `None` if it is not one this server made.
    pub fn parse(token: &str) -> Option<Cursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        let (ms, id) = raw.split_once(':')?;
        Some(Cursor {
            updated_ms: ms.parse().ok()?,
            id: id.to_string(),
        })
    }

    fn is_before(&self, updated_ms: u64, id: &str) -> bool {
        // Newest first: an item comes after the cursor when it is older,
        // or equally old with a smaller id.
        (updated_ms, id) < (self.updated_ms, self.id.as_str())
    }
}

/// A page of `ListTasks`.
#[derive(Debug)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    pub next: Option<Cursor>,
    pub total: usize,
}

/// Tasks of one agent instance, by id. Short critical sections only: the
/// lock is never held across a guest call or a network write, and no
/// change copies more than it adds.
pub struct TaskStore {
    inner: Mutex<Tasks>,
}

/// A fresh id for a task, context, message, artifact or push config.
pub(crate) fn new_id() -> String {
    // Written straight into its text, not through `fmt`: a send makes three.
    let mut text = uuid::Uuid::encode_buffer();
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

impl TaskStore {
    /// An empty store whose content is charged to `budget`.
    pub fn new(budget: Arc<SessionBudget>) -> Self {
        TaskStore {
            inner: Mutex::new(Tasks {
                by_id: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                budget,
            }),
        }
    }

    /// Starts a task from the user's first message; returns the snapshot
    /// of it `snapshot` asks for.
    pub fn create(
        &self,
        task_id: &str,
        context_id: &str,
        first: Arc<Message>,
        snapshot: Snapshot,
    ) -> Result<Option<Task>, StoreError> {
        let now = std::time::SystemTime::now();
        let task = Task {
            id: task_id.to_string(),
            context_id: context_id.to_string(),
            status: TaskStatus {
                state: TaskState::Submitted,
                message: None,
                timestamp: Some(rfc3339(now)),
            },
            artifacts: Some(Vec::new()),
            history: Some(vec![first]),
            metadata: None,
        };
        let bytes = cost::task(&task);
        let copy = snapshot.of(&task);
        let mut tasks = self.lock();
        tasks.make_room(bytes, true, None)?;
        tasks.order.push_back(task.id.clone());
        tasks.charge(bytes as isize);
        tasks.by_id.insert(
            task.id.clone(),
            Entry {
                task,
                bytes,
                updated_ms: now_ms(),
                events: None,
                push: BTreeMap::new(),
                published: false,
            },
        );
        Ok(copy)
    }

    /// Ends an exchange the agent answered with a bare message. A task
    /// nobody has seen (not `shown` to the client and no event of it
    /// published) is dropped as if it had never been; any other task
    /// completes with the message as its status. Returns the message as
    /// the client gets it: ids filled in, and the task's id only when the
    /// task is kept.
    pub fn finish_with_message(
        &self,
        id: &str,
        mut message: Message,
        shown: bool,
    ) -> Result<Message, StoreError> {
        let mut tasks = self.lock();
        let entry = tasks.live_entry(id)?;
        if shown || entry.published || !entry.push.is_empty() {
            let before = entry.bytes;
            let events = apply_update(
                entry,
                TaskUpdate {
                    state: TaskState::Completed,
                    message: Some(message),
                    artifacts: Vec::new(),
                    chunk: None,
                },
            );
            entry.publish(events);
            let answer = entry.task.status.message.as_deref().cloned();
            tasks.settle(id, before);
            return Ok(answer.expect("the update has a message"));
        }
        if message.message_id.is_empty() {
            message.message_id = new_id();
        }
        message.role = Role::Agent;
        message.context_id = Some(entry.task.context_id.clone());
        message.task_id = None;
        if let Some(entry) = tasks.by_id.remove(id) {
            tasks.order.retain(|o| o != id);
            tasks.charge(-(entry.bytes as isize));
        }
        Ok(message)
    }

    /// A copy of the task with its history clipped to `history`.
    pub fn get(&self, id: &str, history: Option<usize>) -> Option<Task> {
        self.lock().by_id.get(id).map(|e| clipped(&e.task, history))
    }

    /// The task's context and state, without copying the task.
    pub fn state(&self, id: &str) -> Option<(String, TaskState)> {
        self.lock()
            .by_id
            .get(id)
            .map(|e| (e.task.context_id.clone(), e.task.status.state))
    }

    /// Adds a user message to a task that is not terminal and returns the
    /// snapshot of the task `snapshot` asks for. Refused when the session's
    /// content budget has no room for the message.
    pub fn append_user_message(
        &self,
        id: &str,
        message: Arc<Message>,
        snapshot: Snapshot,
    ) -> Result<Option<Task>, StoreError> {
        let bytes = cost::message(&message);
        let mut tasks = self.lock();
        tasks.live_entry(id)?;
        tasks.make_room(bytes, false, Some(id))?;
        let entry = tasks.live_entry(id)?;
        let before = entry.bytes;
        if entry.events.is_some() {
            // Whoever watches the task (SubscribeToTask) sees the reply:
            // a StreamResponse `{"message": …}`, written from the shared
            // message without copying it.
            #[derive(serde::Serialize)]
            struct Reply<'a> {
                message: &'a Message,
            }
            let json =
                serde_json::to_vec(&Reply { message: &message }).expect("messages serialise");
            entry.publish_to_streams(TaskEvent {
                json: Bytes::from(json),
                ends_stream: false,
                terminal: false,
            });
        }
        entry
            .task
            .history
            .get_or_insert_with(Vec::new)
            .push(message);
        entry.bytes += bytes;
        tasks.settle(id, before);
        Ok(snapshot.of(&tasks.by_id[id].task))
    }

    /// Applies an agent update: new state, the agent's status message
    /// (ids filled in, added to history) and new artifacts. Publishes an
    /// artifact event per artifact, then the status event. The task is
    /// not copied out: [`get`](Self::get) it to read it.
    pub fn apply(&self, id: &str, update: TaskUpdate) -> Result<(), StoreError> {
        self.modify_then(id, |entry| apply_update(entry, update), |_| ())
    }

    /// [`apply`](Self::apply), then the task as it is afterwards with its
    /// history clipped to `history`, under one lock.
    pub fn apply_and_get(
        &self,
        id: &str,
        update: TaskUpdate,
        history: Option<usize>,
    ) -> Result<Task, StoreError> {
        self.modify_then(
            id,
            |entry| apply_update(entry, update),
            |task| clipped(task, history),
        )
    }

    /// Marks a task canceled. A terminal task cannot be canceled.
    pub fn cancel(&self, id: &str) -> Result<Task, StoreError> {
        self.modify(id, |entry| {
            set_status(entry, TaskState::Canceled, None);
            vec![entry.status_event()]
        })
    }

    /// The task as it is now and a receiver of every later event, taken
    /// together so nothing falls between them.
    pub fn subscribe(
        &self,
        id: &str,
        history: Option<usize>,
    ) -> Result<(Task, broadcast::Receiver<TaskEvent>), StoreError> {
        let mut tasks = self.lock();
        let entry = tasks.live_entry(id)?;
        let rx = match &entry.events {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(SUBSCRIBER_BUFFER);
                entry.events = Some(tx);
                rx
            }
        };
        Ok((clipped(&entry.task, history), rx))
    }

    /// One page of tasks matching `query`, newest status first.
    pub fn list(&self, query: &TaskQuery) -> TaskPage {
        let tasks = self.lock();
        let mut matching: Vec<&Entry> = tasks
            .by_id
            .values()
            .filter(|e| {
                query
                    .context_id
                    .as_ref()
                    .is_none_or(|c| *c == e.task.context_id)
            })
            .filter(|e| query.state.is_none_or(|s| s == e.task.status.state))
            .filter(|e| query.since_ms.is_none_or(|t| e.updated_ms as i64 >= t))
            .collect();
        let total = matching.len();
        matching.sort_by(|a, b| (b.updated_ms, &b.task.id).cmp(&(a.updated_ms, &a.task.id)));
        let mut page: Vec<&Entry> = matching
            .into_iter()
            .filter(|e| {
                query
                    .after
                    .as_ref()
                    .is_none_or(|c| c.is_before(e.updated_ms, &e.task.id))
            })
            .take(query.page_size + 1)
            .collect();
        let more = page.len() > query.page_size;
        page.truncate(query.page_size);
        let next = more.then(|| {
            let last = page.last().expect("a full page has a last item");
            Cursor {
                updated_ms: last.updated_ms,
                id: last.task.id.clone(),
            }
        });
        TaskPage {
            tasks: page
                .into_iter()
                .map(|e| clipped(&e.task, query.history))
                .collect(),
            next,
            total,
        }
    }

    /// Stores a push config (replacing one with the same id) and starts
    /// delivering the task's updates to it.
    pub fn set_push_config(
        &self,
        config: PushConfig,
        queue: PushQueue,
    ) -> Result<PushConfig, StoreError> {
        let mut tasks = self.lock();
        let entry = tasks.entry(&config.task_id)?;
        if entry.push.len() >= MAX_PUSH_CONFIGS && !entry.push.contains_key(&config.id) {
            return Err(StoreError::TooManyConfigs(config.task_id.clone()));
        }
        entry
            .push
            .insert(config.id.clone(), (config.clone(), queue));
        Ok(config)
    }

    /// A push config of a task.
    pub fn push_config(&self, task_id: &str, id: &str) -> Result<PushConfig, StoreError> {
        let mut tasks = self.lock();
        let entry = tasks.entry(task_id)?;
        entry
            .push
            .get(id)
            .map(|(c, _)| c.clone())
            .ok_or_else(|| config_not_found(task_id, id))
    }

    /// A task's push configs, by id, starting after `after`.
    pub fn push_configs(
        &self,
        task_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<PushConfig>, bool), StoreError> {
        let mut tasks = self.lock();
        let entry = tasks.entry(task_id)?;
        let mut configs: Vec<PushConfig> = entry
            .push
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
            .take(limit + 1)
            .map(|(_, (c, _))| c.clone())
            .collect();
        let more = configs.len() > limit;
        configs.truncate(limit);
        Ok((configs, more))
    }

    /// Removes a push config; its pending deliveries still go out.
    pub fn delete_push_config(&self, task_id: &str, id: &str) -> Result<(), StoreError> {
        let mut tasks = self.lock();
        let entry = tasks.entry(task_id)?;
        entry
            .push
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| config_not_found(task_id, id))
    }

    fn modify(
        &self,
        id: &str,
        change: impl FnOnce(&mut Entry) -> Vec<TaskEvent>,
    ) -> Result<Task, StoreError> {
        self.modify_then(id, change, |task| clipped(task, None))
    }

    /// Changes a live task, publishes the change, and returns `result` of
    /// the task afterwards (no copy of the task unless asked for).
    fn modify_then<R>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Entry) -> Vec<TaskEvent>,
        result: impl FnOnce(&Task) -> R,
    ) -> Result<R, StoreError> {
        let mut tasks = self.lock();
        let entry = tasks.live_entry(id)?;
        let before = entry.bytes;
        let events = change(entry);
        entry.publish(events);
        tasks.settle(id, before);
        Ok(result(&tasks.by_id[id].task))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What an agent update does to a task: the agent's status message (ids
/// filled in, added to history), new artifacts, the new state. Returns
/// the events to publish: one per artifact, then the status (unless
/// the update only adds artifacts to a task whose state stays), or none
/// when nobody listens (the task is marked published all the same).
fn apply_update(entry: &mut Entry, update: TaskUpdate) -> Vec<TaskEvent> {
    let listened_to = entry.listened_to();
    entry.published = true;
    let has_artifacts = !update.artifacts.is_empty();
    let mut added = 0;
    let task = &mut entry.task;
    let message = update.message.map(|mut m| {
        if m.message_id.is_empty() {
            m.message_id = new_id();
        }
        m.role = Role::Agent;
        m.task_id = Some(task.id.clone());
        m.context_id = Some(task.context_id.clone());
        Arc::new(m)
    });
    if let Some(m) = &message {
        // One copy, in the history and as the status message.
        added += cost::message(m);
        task.history
            .get_or_insert_with(Vec::new)
            .push(Arc::clone(m));
    }
    let mut events = Vec::new();
    let chunk = update.chunk.unwrap_or(ArtifactChunk {
        append: false,
        last_chunk: true,
    });
    for mut artifact in update.artifacts {
        if artifact.artifact_id.is_empty() {
            artifact.artifact_id = new_id();
        }
        added += cost::artifact(&artifact);
        let stored = task.artifacts.get_or_insert_with(Vec::new);
        // A piece that appends joins the artifact it continues; one that
        // continues nothing starts an artifact of its own.
        let continued = stored
            .iter_mut()
            .rev()
            .find(|a| chunk.append && a.artifact_id == artifact.artifact_id);
        if listened_to {
            events.push(event(
                &StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
                    task_id: task.id.clone(),
                    context_id: task.context_id.clone(),
                    artifact: artifact.clone(),
                    append: continued.is_some(),
                    last_chunk: chunk.last_chunk,
                    metadata: None,
                }),
                None,
            ));
        }
        match continued {
            Some(existing) => existing.parts.extend(artifact.parts),
            None => stored.push(artifact),
        }
    }
    entry.bytes += added;
    // Artifacts alone leave the status as it was: their events say all.
    if message.is_none() && has_artifacts && update.state == entry.task.status.state {
        return events;
    }
    set_status(entry, update.state, message);
    if listened_to {
        events.push(entry.status_event());
    }
    events
}

fn config_not_found(task: &str, config: &str) -> StoreError {
    StoreError::ConfigNotFound {
        task: task.to_string(),
        config: config.to_string(),
    }
}

/// Sets the task's status; `message` is already in the history.
fn set_status(entry: &mut Entry, state: TaskState, message: Option<Arc<Message>>) {
    // Status times are strictly increasing per task, so a cursor never
    // skips a task updated twice within one millisecond.
    let ms = now_ms().max(entry.updated_ms + 1);
    entry.updated_ms = ms;
    entry.task.status = TaskStatus {
        state,
        message,
        timestamp: Some(rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )),
    };
}

/// Whether a change to the store hands back a copy of the task: a send
/// answered at once or streamed shows the task as submitted; one that
/// waits for the agent reads it afterwards and needs no copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshot {
    /// No copy.
    None,
    /// A copy, its history clipped to this many messages (all if `None`).
    Clipped(Option<usize>),
}

impl Snapshot {
    fn of(self, task: &Task) -> Option<Task> {
        match self {
            Snapshot::None => None,
            Snapshot::Clipped(history) => Some(clipped(task, history)),
        }
    }
}

/// A copy of `task` with only the last `history` messages (`None` = all,
/// 0 = no history) and without an empty artifact list. Only what is kept
/// is copied.
pub fn clipped(task: &Task, history: Option<usize>) -> Task {
    let history = match (history, &task.history) {
        (Some(0), _) | (_, None) => None,
        (Some(n), Some(h)) => Some(h[h.len().saturating_sub(n)..].to_vec()),
        (None, Some(h)) => Some(h.clone()),
    };
    Task {
        id: task.id.clone(),
        context_id: task.context_id.clone(),
        status: task.status.clone(),
        artifacts: task.artifacts.clone().filter(|a| !a.is_empty()),
        history,
        metadata: task.metadata.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a2a::types::Part;
    use crate::config::BudgetLimits;

    /// The session budget the tests' stores are held to.
    const BUDGET: usize = 32 << 20;

    fn store_with(store_bytes: usize) -> TaskStore {
        let limits = BudgetLimits {
            store_bytes,
            ..BudgetLimits::default()
        };
        TaskStore::new(SessionBudget::new(Arc::from("test"), limits))
    }

    fn msg(text: &str) -> Message {
        Message {
            message_id: new_id(),
            ..Message::text(Role::User, text)
        }
    }

    /// Creates task `id` and completes it with `text` as the answer.
    fn finished_with(store: &TaskStore, id: &str, text: &str) {
        store
            .create(id, "c", Arc::new(msg("go")), Snapshot::None)
            .unwrap();
        let done = TaskUpdate {
            state: TaskState::Completed,
            message: Some(msg(text)),
            artifacts: vec![],
            chunk: None,
        };
        store.apply(id, done).unwrap();
    }

    fn update(state: TaskState) -> TaskUpdate {
        TaskUpdate {
            state,
            message: None,
            artifacts: vec![],
            chunk: None,
        }
    }

    #[test]
    fn artifact_pieces_join_the_artifact_they_continue() {
        let store = store_with(BUDGET);
        store
            .create("t", "c", Arc::new(msg("hi")), Snapshot::None)
            .unwrap();
        let (_, mut events) = store.subscribe("t", None).unwrap();
        let piece = |text: &str, append: bool, last_chunk: bool| TaskUpdate {
            artifacts: vec![Artifact {
                artifact_id: "a".into(),
                name: None,
                description: None,
                parts: vec![Part::text(text)],
                metadata: None,
            }],
            chunk: Some(ArtifactChunk { append, last_chunk }),
            ..update(TaskState::Working)
        };
        store.apply("t", piece("one ", false, false)).unwrap();
        store.apply("t", piece("two", true, true)).unwrap();
        let task = store.get("t", None).unwrap();
        let artifacts = task.artifacts.unwrap();
        assert_eq!(artifacts.len(), 1);
        assert_eq!(artifacts[0].parts.len(), 2);
        let mut flags = Vec::new();
        while let Ok(e) = events.try_recv() {
            let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
            if let Some(a) = v.get("artifactUpdate") {
                let flag = |name: &str| a[name].as_bool().unwrap_or(false);
                flags.push((flag("append"), flag("lastChunk")));
            }
        }
        assert_eq!(flags, [(false, false), (true, true)]);
    }

    #[test]
    fn terminal_tasks_never_change() {
        let store = store_with(BUDGET);
        store
            .create("t", "c", Arc::new(msg("hi")), Snapshot::None)
            .unwrap();
        let done = TaskUpdate {
            state: TaskState::Completed,
            message: Some(msg("bye")),
            artifacts: vec![],
            chunk: None,
        };
        store.apply("t", done.clone()).unwrap();
        let task = store.get("t", None).unwrap();
        assert_eq!(task.status.state, TaskState::Completed);
        assert_eq!(task.history.as_ref().unwrap().len(), 2);
        assert_eq!(task.history.unwrap()[1].role, Role::Agent);
        assert!(matches!(
            store.apply("t", done),
            Err(StoreError::Terminal { .. })
        ));
        assert!(matches!(
            store.append_user_message("t", Arc::new(msg("more")), Snapshot::None),
            Err(StoreError::Terminal { .. })
        ));
        assert!(matches!(
            store.cancel("t"),
            Err(StoreError::Terminal { .. })
        ));
        assert!(matches!(
            store.subscribe("t", None),
            Err(StoreError::Terminal { .. })
        ));
        assert_eq!(
            store.apply("nope", update(TaskState::Working)),
            Err(StoreError::NotFound("nope".into()))
        );
    }

    #[test]
    fn the_store_is_bounded_and_drops_the_oldest_finished_task() {
        let store = store_with(BUDGET);
        for i in 0..MAX_TASKS {
            store
                .create(&i.to_string(), "c", Arc::new(msg("x")), Snapshot::None)
                .unwrap();
            let state = if i == 5 {
                TaskState::Completed
            } else {
                TaskState::Working
            };
            store.apply(&i.to_string(), update(state)).unwrap();
        }
        store
            .create("new", "c", Arc::new(msg("x")), Snapshot::None)
            .unwrap();
        assert!(
            store.get("5", None).is_none(),
            "the finished task made room"
        );
        assert!(store.get("0", None).is_some(), "working tasks are kept");
        assert_eq!(
            store.create("newer", "c", Arc::new(msg("x")), Snapshot::None),
            Err(StoreError::Full)
        );
    }

    #[test]
    fn history_and_bytes_stay_within_bounds() {
        let store = store_with(BUDGET);
        store
            .create("t", "c", Arc::new(msg("first")), Snapshot::None)
            .unwrap();
        for _ in 0..MAX_HISTORY + 20 {
            store
                .append_user_message("t", Arc::new(msg("more")), Snapshot::None)
                .unwrap();
        }
        assert_eq!(
            store.get("t", None).unwrap().history.unwrap().len(),
            MAX_HISTORY
        );
        // Finished tasks of 1 MiB each: the store keeps about its budget.
        let big = "x".repeat(1 << 20);
        for i in 0..100 {
            let id = format!("big{i}");
            finished_with(&store, &id, &big);
        }
        let held = store.lock().bytes;
        assert!(held <= BUDGET + (2 << 20), "store holds {held} bytes");
        assert!(store.get("big0", None).is_none() && store.get("big99", None).is_some());
        // A working task cannot grow past the budget: its new messages are
        // refused once the finished tasks are gone.
        store
            .create("w", "c", Arc::new(msg("start")), Snapshot::None)
            .unwrap();
        let refused = (0..40).find_map(|_| {
            store
                .append_user_message("w", Arc::new(msg(&big)), Snapshot::None)
                .err()
        });
        assert!(
            matches!(refused, Some(StoreError::OverBudget(_))),
            "{refused:?}"
        );
        assert!(store.lock().bytes <= BUDGET);
        assert!(store.get("w", None).is_some(), "the working task is kept");
    }

    #[test]
    fn the_task_being_finished_is_never_the_one_evicted() {
        let store = store_with(BUDGET);
        let big = "x".repeat(1 << 20);
        // The oldest task finishes last, with the store over its budget.
        store
            .create("first", "c", Arc::new(msg("go")), Snapshot::None)
            .unwrap();
        for i in 0..40 {
            let id = format!("t{i}");
            finished_with(&store, &id, &big);
        }
        store
            .apply(
                "first",
                TaskUpdate {
                    state: TaskState::Completed,
                    message: Some(msg(&big)),
                    artifacts: vec![],
                    chunk: None,
                },
            )
            .unwrap();
        let done = store.get("first", None).unwrap();
        assert_eq!(done.status.state, TaskState::Completed);
        assert!(store.get("first", None).is_some());
    }

    #[test]
    fn history_length_trims_from_the_front() {
        let store = store_with(BUDGET);
        let t = store
            .create("t", "c", Arc::new(msg("1")), Snapshot::Clipped(Some(0)))
            .unwrap()
            .unwrap();
        assert!(t.history.is_none());
        store
            .append_user_message("t", Arc::new(msg("2")), Snapshot::None)
            .unwrap();
        let last = store
            .append_user_message("t", Arc::new(msg("3")), Snapshot::Clipped(Some(1)))
            .unwrap()
            .unwrap()
            .history
            .unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].parts[0], Part::text("3"));
        assert_eq!(store.get("t", None).unwrap().history.unwrap().len(), 3);
        assert_eq!(store.get("t", Some(2)).unwrap().history.unwrap().len(), 2);
    }

    #[test]
    fn new_content_past_the_budget_is_refused_and_accepted_content_kept() {
        let store = store_with(4 << 20);
        let big = "x".repeat(1 << 20);
        store
            .create("w", "c", Arc::new(msg("start")), Snapshot::None)
            .unwrap();
        let mut refused = None;
        for i in 0..10 {
            if let Err(e) = store.append_user_message("w", Arc::new(msg(&big)), Snapshot::None) {
                refused = Some((i, e));
                break;
            }
        }
        let (i, e) = refused.expect("the budget refuses at some point");
        assert!(i >= 2, "room for a few MiB first ({i})");
        assert!(matches!(e, StoreError::OverBudget(_)), "{e}");
        assert_eq!(store.get("w", None).unwrap().history.unwrap().len(), i + 1);
        // The agent's answer is accepted even over budget.
        let answer = TaskUpdate {
            state: TaskState::Completed,
            message: Some(msg(&big)),
            artifacts: vec![],
            chunk: None,
        };
        store.apply("w", answer).unwrap();
        assert_eq!(
            store.get("w", None).unwrap().status.state,
            TaskState::Completed
        );
    }

    #[test]
    fn the_count_follows_every_change_and_goes_to_zero_with_the_store() {
        let budget = SessionBudget::new(Arc::from("test"), BudgetLimits::default());
        let store = TaskStore::new(Arc::clone(&budget));
        let data =
            crate::a2a::types::JsonText::parse(&format!("[{}0]", "0,".repeat(9999))).unwrap();
        let mut m = msg("x");
        m.parts.push(Part {
            content: crate::a2a::types::PartContent::Data(data),
            media_type: None,
            filename: None,
            metadata: None,
        });
        store
            .create("t", "c", Arc::new(m.clone()), Snapshot::None)
            .unwrap();
        let one = budget.used(Kind::StoreBytes);
        assert!(one > 10_000 * 2, "the data's text counted: {one}");
        store
            .append_user_message("t", Arc::new(m), Snapshot::None)
            .unwrap();
        assert!(budget.used(Kind::StoreBytes) > 2 * one - 1000);
        store.cancel("t").unwrap();
        assert_eq!(budget.used(Kind::StoreBytes), store.lock().bytes);
        drop(store);
        assert_eq!(budget.used(Kind::StoreBytes), 0);
    }

    #[test]
    fn subscribers_see_artifacts_then_status_and_the_stream_ends_at_terminal() {
        let store = store_with(BUDGET);
        store
            .create("t", "c", Arc::new(msg("1")), Snapshot::None)
            .unwrap();
        let (snapshot, mut rx) = store.subscribe("t", None).unwrap();
        assert_eq!(snapshot.status.state, TaskState::Submitted);
        let artifact = Artifact {
            artifact_id: String::new(),
            name: Some("a".into()),
            description: None,
            parts: vec![Part::text("x")],
            metadata: None,
        };
        store
            .apply(
                "t",
                TaskUpdate {
                    state: TaskState::Working,
                    message: None,
                    artifacts: vec![artifact],
                    chunk: None,
                },
            )
            .unwrap();
        store.cancel("t").unwrap();
        let first: serde_json::Value =
            serde_json::from_slice(&rx.try_recv().unwrap().json).unwrap();
        assert!(
            first["artifactUpdate"]["artifact"]["artifactId"]
                .as_str()
                .unwrap()
                .len()
                > 10
        );
        let second = rx.try_recv().unwrap();
        assert!(!second.ends_stream);
        let third = rx.try_recv().unwrap();
        assert!(third.ends_stream);
        let third: serde_json::Value = serde_json::from_slice(&third.json).unwrap();
        assert_eq!(
            third["statusUpdate"]["status"]["state"],
            "TASK_STATE_CANCELED"
        );
    }

    #[test]
    fn listing_pages_newest_first_with_opaque_cursors() {
        let store = store_with(BUDGET);
        for i in 0..7 {
            let ctx = if i % 2 == 0 { "even" } else { "odd" };
            store
                .create(&format!("t{i}"), ctx, Arc::new(msg("x")), Snapshot::None)
                .unwrap();
            store
                .apply(&format!("t{i}"), update(TaskState::Working))
                .unwrap();
        }
        // Status times are in milliseconds: t0's change must come later.
        std::thread::sleep(std::time::Duration::from_millis(3));
        store.apply("t0", update(TaskState::Completed)).unwrap();
        let mut seen = Vec::new();
        let mut query = TaskQuery {
            page_size: 3,
            ..TaskQuery::default()
        };
        loop {
            let page = store.list(&query);
            assert_eq!(page.total, 7);
            seen.extend(page.tasks.iter().map(|t| t.id.clone()));
            match page.next {
                Some(c) => query.after = Some(Cursor::parse(&c.token()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, ["t0", "t6", "t5", "t4", "t3", "t2", "t1"]);
        let evens = store.list(&TaskQuery {
            context_id: Some("even".into()),
            page_size: 50,
            ..TaskQuery::default()
        });
        assert_eq!(evens.total, 4);
        let done = store.list(&TaskQuery {
            state: Some(TaskState::Completed),
            page_size: 50,
            ..TaskQuery::default()
        });
        assert_eq!(done.tasks.len(), 1);
        assert!(Cursor::parse("garbage!").is_none());
        assert!(Cursor::parse(&URL_SAFE_NO_PAD.encode("x:y")).is_none());
    }
}
