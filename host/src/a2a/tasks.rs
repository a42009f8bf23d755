//! The task store of one agent instance: tasks, their history and
//! artifacts, and the rule that a terminal task never changes again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::types::{Artifact, Message, Role, Task, TaskState, TaskStatus};
use crate::clock::now_rfc3339;

/// A change the agent made to a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    pub state: TaskState,
    pub message: Option<Message>,
    pub artifacts: Vec<Artifact>,
}

/// Why an update was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("task {0} not found")]
    NotFound(String),
    #[error("task {id} is already {state:?}")]
    Terminal { id: String, state: TaskState },
    #[error("this agent has {MAX_TASKS} unfinished tasks; finish or cancel some first")]
    Full,
}

/// Tasks kept per agent. Past this, the oldest finished task is dropped
/// to make room; if none is finished, new tasks are refused.
pub const MAX_TASKS: usize = 1000;

/// Tasks of one agent instance, by id. Short critical sections only: the
/// lock is never held across a guest call.
#[derive(Default)]
pub struct TaskStore {
    inner: Mutex<Tasks>,
}

#[derive(Default)]
struct Tasks {
    by_id: HashMap<String, Task>,
    /// Ids, oldest first.
    order: VecDeque<String>,
}

impl Tasks {
    /// Makes room for one more task by dropping the oldest finished one.
    fn make_room(&mut self) -> bool {
        if self.by_id.len() < MAX_TASKS {
            return true;
        }
        let oldest_done = self
            .order
            .iter()
            .position(|id| self.by_id[id].status.state.is_terminal());
        match oldest_done {
            Some(i) => {
                let id = self.order.remove(i).expect("position is in range");
                self.by_id.remove(&id);
                true
            }
            None => false,
        }
    }
}

fn new_id() -> String {
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
        let task = Task {
            id: task_id.to_string(),
            context_id: context_id.to_string(),
            status: TaskStatus {
                state: TaskState::Submitted,
                message: None,
                timestamp: Some(now_rfc3339()),
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
        tasks.by_id.insert(task.id.clone(), task.clone());
        Ok(task)
    }

    /// A copy of the task.
    pub fn get(&self, id: &str) -> Option<Task> {
        self.lock().by_id.get(id).cloned()
    }

    /// Adds a user message to a task that is not terminal.
    pub fn append_user_message(&self, id: &str, message: Message) -> Result<Task, StoreError> {
        self.modify(id, |task| {
            task.history.get_or_insert_with(Vec::new).push(message);
        })
    }

    /// Applies an agent update: new state, the agent's status message
    /// (ids filled in, added to history) and new artifacts.
    pub fn apply(&self, id: &str, update: TaskUpdate) -> Result<Task, StoreError> {
        self.modify(id, |task| {
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
            let artifacts = task.artifacts.get_or_insert_with(Vec::new);
            for mut artifact in update.artifacts {
                if artifact.artifact_id.is_empty() {
                    artifact.artifact_id = new_id();
                }
                artifacts.push(artifact);
            }
            task.status = TaskStatus {
                state: update.state,
                message,
                timestamp: Some(now_rfc3339()),
            };
        })
    }

    fn modify(&self, id: &str, change: impl FnOnce(&mut Task)) -> Result<Task, StoreError> {
        let mut tasks = self.lock();
        let task = tasks
            .by_id
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        if task.status.state.is_terminal() {
            return Err(StoreError::Terminal {
                id: id.to_string(),
                state: task.status.state,
            });
        }
        change(task);
        Ok(task.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A copy of `task` trimmed to the last `history_length` messages
/// (`None` = all, 0 = no history).
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
        assert_eq!(
            store.apply(
                "nope",
                TaskUpdate {
                    state: TaskState::Working,
                    message: None,
                    artifacts: vec![]
                }
            ),
            Err(StoreError::NotFound("nope".into()))
        );
    }

    #[test]
    fn the_store_is_bounded_and_drops_the_oldest_finished_task() {
        let store = TaskStore::default();
        let working = TaskUpdate {
            state: TaskState::Working,
            message: None,
            artifacts: vec![],
        };
        let done = TaskUpdate {
            state: TaskState::Completed,
            message: None,
            artifacts: vec![],
        };
        for i in 0..MAX_TASKS {
            store.create(&i.to_string(), "c", msg("x")).unwrap();
            let update = if i == 5 {
                done.clone()
            } else {
                working.clone()
            };
            store.apply(&i.to_string(), update).unwrap();
        }
        store.create("new", "c", msg("x")).unwrap();
        assert!(store.get("5").is_none(), "the finished task made room");
        assert!(store.get("0").is_some(), "working tasks are kept");
        assert_eq!(store.create("newer", "c", msg("x")), Err(StoreError::Full));
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
}
