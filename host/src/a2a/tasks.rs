//! The task store of one agent instance: tasks with their history and
//! artifacts, the events each change produces (for streams and push),
//! and push configs. A terminal task never changes again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use tokio::sync::broadcast;

use super::push::PushQueue;
use super::types::{
    Artifact, Message, PushConfig, Role, StreamResponse, Task, TaskArtifactUpdateEvent, TaskState,
    TaskStatus, TaskStatusUpdateEvent,
};
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
/// Content bytes an agent's store may hold. Past this, finished tasks
/// are dropped oldest first, then the oldest history of the task being
/// changed, and new tasks are refused while working ones fill it.
pub const MAX_STORE_BYTES: usize = 32 << 20;

/// A change the agent made to a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    pub state: TaskState,
    pub message: Option<Message>,
    pub artifacts: Vec<Artifact>,
}

/// One event of a task, serialized once for every subscriber and webhook.
#[derive(Debug, Clone)]
pub struct TaskEvent {
    /// A serialized `StreamResponse`.
    pub json: Bytes,
    /// True when this event ends a stream: the task is terminal or waits
    /// for the client (input or auth required).
    pub ends_stream: bool,
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
}

struct Entry {
    task: Task,
    /// Content bytes of the task, as [`content_bytes`] counts them.
    bytes: usize,
    /// Status timestamp, ms since the epoch: the ListTasks sort key.
    updated_ms: u64,
    events: Option<broadcast::Sender<TaskEvent>>,
    push: BTreeMap<String, (PushConfig, PushQueue)>,
}

impl Entry {
    /// Sends events to subscribers and webhooks. Called under the lock,
    /// so events of one task are published in order; nothing here waits.
    fn publish(&mut self, events: Vec<TaskEvent>) {
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

    fn status_event(&self) -> TaskEvent {
        let state = self.task.status.state;
        event(
            &StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
                task_id: self.task.id.clone(),
                context_id: self.task.context_id.clone(),
                status: self.task.status.clone(),
                metadata: None,
            }),
            ends_stream(state),
        )
    }
}

fn ends_stream(state: TaskState) -> bool {
    state.is_terminal() || matches!(state, TaskState::InputRequired | TaskState::AuthRequired)
}

fn event(response: &StreamResponse, ends_stream: bool) -> TaskEvent {
    TaskEvent {
        json: Bytes::from(serde_json::to_vec(response).expect("events serialise")),
        ends_stream,
    }
}

/// Bytes of content in a task: parts of its history, status message and
/// artifacts, plus a fixed overhead per message.
fn content_bytes(task: &Task) -> usize {
    fn parts(parts: &[super::types::Part]) -> usize {
        use super::types::PartContent;
        parts
            .iter()
            .map(|p| match &p.content {
                PartContent::Text(t) | PartContent::Url(t) => t.len(),
                PartContent::Raw(r) => r.len(),
                PartContent::Data(d) => d.to_string().len(),
            })
            .sum::<usize>()
            + 64
    }
    let history: usize = task.history.iter().flatten().map(|m| parts(&m.parts)).sum();
    let artifacts: usize = task
        .artifacts
        .iter()
        .flatten()
        .map(|a| parts(&a.parts))
        .sum();
    let status = task.status.message.as_ref().map_or(0, |m| parts(&m.parts));
    256 + history + artifacts + status
}

#[derive(Default)]
struct Tasks {
    by_id: HashMap<String, Entry>,
    /// Ids, oldest first.
    order: VecDeque<String>,
    /// Sum of every entry's `bytes`.
    bytes: usize,
}

impl Tasks {
    /// Drops the oldest finished task other than `keep`. False if there
    /// is none.
    fn drop_oldest_finished(&mut self, keep: Option<&str>) -> bool {
        let oldest_done = self.order.iter().position(|id| {
            Some(id.as_str()) != keep && self.by_id[id].task.status.state.is_terminal()
        });
        let Some(i) = oldest_done else { return false };
        let id = self.order.remove(i).expect("position is in range");
        if let Some(entry) = self.by_id.remove(&id) {
            self.bytes -= entry.bytes;
        }
        true
    }

    /// Makes room for one more task within the count and byte limits.
    fn make_room(&mut self) -> bool {
        while self.by_id.len() >= MAX_TASKS || self.bytes > MAX_STORE_BYTES {
            if !self.drop_oldest_finished(None) {
                return false;
            }
        }
        true
    }

    /// Re-counts an entry after a change and brings the store back under
    /// its byte budget.
    fn settle(&mut self, id: &str) {
        let Some(entry) = self.by_id.get_mut(id) else {
            return;
        };
        let task = &mut entry.task;
        if let Some(h) = task.history.as_mut().filter(|h| h.len() > MAX_HISTORY) {
            h.drain(..h.len() - MAX_HISTORY);
        }
        if let Some(a) = task.artifacts.as_mut().filter(|a| a.len() > MAX_ARTIFACTS) {
            a.drain(..a.len() - MAX_ARTIFACTS);
        }
        let before = entry.bytes;
        entry.bytes = content_bytes(&entry.task);
        self.bytes = self.bytes - before + entry.bytes;
        while self.bytes > MAX_STORE_BYTES {
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
            history.remove(0);
            let before = entry.bytes;
            entry.bytes = content_bytes(&entry.task);
            self.bytes = self.bytes - before + entry.bytes;
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
/// lock is never held across a guest call or a network write.
#[derive(Default)]
pub struct TaskStore {
    inner: Mutex<Tasks>,
}

/// A fresh id for a task, context, message, artifact or push config.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl TaskStore {
    /// Starts a task from the user's first message and returns it.
    pub fn create(
        &self,
        task_id: &str,
        context_id: &str,
        first: Message,
    ) -> Result<Task, StoreError> {
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
        let mut tasks = self.lock();
        if !tasks.make_room() {
            return Err(StoreError::Full);
        }
        tasks.order.push_back(task.id.clone());
        let bytes = content_bytes(&task);
        tasks.bytes += bytes;
        tasks.by_id.insert(
            task.id.clone(),
            Entry {
                task: task.clone(),
                bytes,
                updated_ms: now_ms(),
                events: None,
                push: BTreeMap::new(),
            },
        );
        Ok(task)
    }

    /// A copy of the task.
    pub fn get(&self, id: &str) -> Option<Task> {
        self.lock().by_id.get(id).map(|e| e.task.clone())
    }

    /// Adds a user message to a task that is not terminal.
    pub fn append_user_message(&self, id: &str, message: Message) -> Result<Task, StoreError> {
        self.modify(id, |entry| {
            entry
                .task
                .history
                .get_or_insert_with(Vec::new)
                .push(message);
            Vec::new()
        })
    }

    /// Applies an agent update: new state, the agent's status message
    /// (ids filled in, added to history) and new artifacts. Publishes an
    /// artifact event per artifact, then the status event.
    pub fn apply(&self, id: &str, update: TaskUpdate) -> Result<Task, StoreError> {
        self.modify(id, |entry| apply_update(entry, update))
    }

    /// As [`apply`](Self::apply), for progress nobody waits on: the task
    /// is not copied out.
    pub fn record_progress(&self, id: &str, update: TaskUpdate) -> Result<(), StoreError> {
        self.modify_then(id, |entry| apply_update(entry, update), |_| ())
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
        Ok((entry.task.clone(), rx))
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
            tasks: page.into_iter().map(|e| e.task.clone()).collect(),
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
        self.modify_then(id, change, Task::clone)
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
        let events = change(entry);
        entry.publish(events);
        tasks.settle(id);
        Ok(result(&tasks.by_id[id].task))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What an agent update does to a task: the agent's status message (ids
/// filled in, added to history), new artifacts, the new state. Returns
/// the events to publish: one per artifact, then the status.
fn apply_update(entry: &mut Entry, update: TaskUpdate) -> Vec<TaskEvent> {
    let task = &mut entry.task;
    let message = update.message.map(|mut m| {
        if m.message_id.is_empty() {
            m.message_id = new_id();
        }
        m.role = Role::Agent;
        m.task_id = Some(task.id.clone());
        m.context_id = Some(task.context_id.clone());
        m
    });
    if let Some(m) = &message {
        task.history.get_or_insert_with(Vec::new).push(m.clone());
    }
    let mut events = Vec::new();
    for mut artifact in update.artifacts {
        if artifact.artifact_id.is_empty() {
            artifact.artifact_id = new_id();
        }
        events.push(event(
            &StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
                task_id: task.id.clone(),
                context_id: task.context_id.clone(),
                artifact: artifact.clone(),
                append: false,
                last_chunk: true,
                metadata: None,
            }),
            false,
        ));
        task.artifacts.get_or_insert_with(Vec::new).push(artifact);
    }
    set_status(entry, update.state, message);
    events.push(entry.status_event());
    events
}

fn config_not_found(task: &str, config: &str) -> StoreError {
    StoreError::ConfigNotFound {
        task: task.to_string(),
        config: config.to_string(),
    }
}

fn set_status(entry: &mut Entry, state: TaskState, message: Option<Message>) {
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

/// A copy of `task` trimmed to the last `history_length` messages
/// (`None` = all, 0 = no history); empty artifact lists are left out.
pub fn with_history(mut task: Task, history_length: Option<usize>) -> Task {
    match (history_length, task.history.as_mut()) {
        (Some(0), _) => task.history = None,
        (Some(n), Some(h)) if h.len() > n => {
            h.drain(..h.len() - n);
        }
        _ => {}
    }
    if task.artifacts.as_ref().is_some_and(Vec::is_empty) {
        task.artifacts = None;
    }
    task
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a2a::types::Part;

    fn msg(text: &str) -> Message {
        Message {
            message_id: new_id(),
            role: Role::User,
            parts: vec![Part::text(text)],
            context_id: None,
            task_id: None,
            metadata: None,
            extensions: None,
            reference_task_ids: None,
        }
    }

    /// Creates task `id` and completes it with `text` as the answer.
    fn finished_with(store: &TaskStore, id: &str, text: &str) {
        store.create(id, "c", msg("go")).unwrap();
        let done = TaskUpdate {
            state: TaskState::Completed,
            message: Some(msg(text)),
            artifacts: vec![],
        };
        store.apply(id, done).unwrap();
    }

    fn update(state: TaskState) -> TaskUpdate {
        TaskUpdate {
            state,
            message: None,
            artifacts: vec![],
        }
    }

    #[test]
    fn terminal_tasks_never_change() {
        let store = TaskStore::default();
        store.create("t", "c", msg("hi")).unwrap();
        let done = TaskUpdate {
            state: TaskState::Completed,
            message: Some(msg("bye")),
            artifacts: vec![],
        };
        let task = store.apply("t", done.clone()).unwrap();
        assert_eq!(task.status.state, TaskState::Completed);
        assert_eq!(task.history.as_ref().unwrap().len(), 2);
        assert_eq!(task.history.unwrap()[1].role, Role::Agent);
        assert!(matches!(
            store.apply("t", done),
            Err(StoreError::Terminal { .. })
        ));
        assert!(matches!(
            store.append_user_message("t", msg("more")),
            Err(StoreError::Terminal { .. })
        ));
        assert!(matches!(
            store.cancel("t"),
            Err(StoreError::Terminal { .. })
        ));
        assert!(matches!(
            store.subscribe("t"),
            Err(StoreError::Terminal { .. })
        ));
        assert_eq!(
            store.apply("nope", update(TaskState::Working)),
            Err(StoreError::NotFound("nope".into()))
        );
    }

    #[test]
    fn the_store_is_bounded_and_drops_the_oldest_finished_task() {
        let store = TaskStore::default();
        for i in 0..MAX_TASKS {
            store.create(&i.to_string(), "c", msg("x")).unwrap();
            let state = if i == 5 {
                TaskState::Completed
            } else {
                TaskState::Working
            };
            store.apply(&i.to_string(), update(state)).unwrap();
        }
        store.create("new", "c", msg("x")).unwrap();
        assert!(store.get("5").is_none(), "the finished task made room");
        assert!(store.get("0").is_some(), "working tasks are kept");
        assert_eq!(store.create("newer", "c", msg("x")), Err(StoreError::Full));
    }

    #[test]
    fn history_and_bytes_stay_within_bounds() {
        let store = TaskStore::default();
        store.create("t", "c", msg("first")).unwrap();
        for _ in 0..MAX_HISTORY + 20 {
            store.append_user_message("t", msg("more")).unwrap();
        }
        assert_eq!(store.get("t").unwrap().history.unwrap().len(), MAX_HISTORY);
        // Finished tasks of 1 MiB each: the store keeps about its budget.
        let big = "x".repeat(1 << 20);
        for i in 0..100 {
            let id = format!("big{i}");
            finished_with(&store, &id, &big);
        }
        let held = store.lock().bytes;
        assert!(
            held <= MAX_STORE_BYTES + (2 << 20),
            "store holds {held} bytes"
        );
        assert!(store.get("big0").is_none() && store.get("big99").is_some());
        // A working task that grows past the budget loses its oldest history.
        store.create("w", "c", msg("start")).unwrap();
        for _ in 0..40 {
            store.append_user_message("w", msg(&big)).unwrap();
        }
        assert!(store.lock().bytes <= MAX_STORE_BYTES + (2 << 20));
        assert!(store.get("w").is_some(), "the working task is kept");
    }

    #[test]
    fn the_task_being_finished_is_never_the_one_evicted() {
        let store = TaskStore::default();
        let big = "x".repeat(1 << 20);
        // The oldest task finishes last, with the store over its budget.
        store.create("first", "c", msg("go")).unwrap();
        for i in 0..40 {
            let id = format!("t{i}");
            finished_with(&store, &id, &big);
        }
        let done = store
            .apply(
                "first",
                TaskUpdate {
                    state: TaskState::Completed,
                    message: Some(msg(&big)),
                    artifacts: vec![],
                },
            )
            .unwrap();
        assert_eq!(done.status.state, TaskState::Completed);
        assert!(store.get("first").is_some());
    }

    #[test]
    fn history_length_trims_from_the_front() {
        let store = TaskStore::default();
        let t = store.create("t", "c", msg("1")).unwrap();
        store.append_user_message("t", msg("2")).unwrap();
        let t2 = store.append_user_message("t", msg("3")).unwrap();
        assert!(with_history(t.clone(), Some(0)).history.is_none());
        let last = with_history(t2.clone(), Some(1)).history.unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].parts[0], Part::text("3"));
        assert_eq!(with_history(t2, None).history.unwrap().len(), 3);
    }

    #[test]
    fn subscribers_see_artifacts_then_status_and_the_stream_ends_at_terminal() {
        let store = TaskStore::default();
        store.create("t", "c", msg("1")).unwrap();
        let (snapshot, mut rx) = store.subscribe("t").unwrap();
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
        let store = TaskStore::default();
        for i in 0..7 {
            let ctx = if i % 2 == 0 { "even" } else { "odd" };
            store.create(&format!("t{i}"), ctx, msg("x")).unwrap();
            store
                .apply(&format!("t{i}"), update(TaskState::Working))
                .unwrap();
        }
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
