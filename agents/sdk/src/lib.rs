//! The agent SDK: write an A2A agent for a2a-sandbox as one Rust type.
//!
//! Implement [`Agent`] for your type and call [`export_agent!`] once. The
//! host does HTTP, JSON-RPC, tasks, streaming and push; your type only
//! decides what to answer. Its fields are the agent's memory for the life
//! of the session: one value lives in one sandboxed instance per session.
//!
//! ```
//! use a2a_agent_sdk::*;
//!
//! /// Counts what it hears.
//! struct Counter {
//!     greeting: String,
//!     seen: usize,
//! }
//!
//! impl Agent for Counter {
//!     fn init(config: Config) -> Result<Self, String> {
//!         Ok(Counter { greeting: config.get_or("greeting", "Hi").to_string(), seen: 0 })
//!     }
//!     fn describe(&self) -> Info {
//!         Info::new("Counter", "Counts messages").skill("count", "Count", "Counts", &["example"])
//!     }
//!     fn handle(&mut self, req: Request) -> Result<Reply, String> {
//!         self.seen += 1;
//!         Ok(Reply::text(&format!("{} #{}: {}", self.greeting, self.seen, req.text())))
//!     }
//! }
//! // In the agent crate: export_agent!(Counter);
//!
//! // An agent is plain Rust, so it is tested without a host:
//! let mut agent = Counter::init(Config::from_pairs(&[("greeting", "Hello")])).unwrap();
//! let answer = agent.handle(Request::user_text("ping")).unwrap();
//! assert_eq!(answer.message().unwrap().text(), "Hello #1: ping");
//! ```
//!
//! An agent answers in one of two shapes. A bare message
//! ([`Reply::text`], [`Reply::data`], or any [`Message`] `.into()`) is
//! the whole exchange: no task is kept, right for an echo or a lookup.
//! A task [`Update`] (`.into()` a [`Reply`]) keeps a task the client can
//! follow, continue, cancel and subscribe to: right for work that takes
//! turns, streams progress or produces artifacts.
//!
//! ```
//! use a2a_agent_sdk::*;
//!
//! /// Asks for a name, then greets it: a task over two turns.
//! struct Greeter;
//!
//! impl Agent for Greeter {
//!     fn init(_: Config) -> Result<Self, String> { Ok(Greeter) }
//!     fn describe(&self) -> Info { Info::new("Greeter", "Greets by name") }
//!     fn handle(&mut self, req: Request) -> Result<Reply, String> {
//!         if req.new_task {
//!             return Ok(Update::input_required("What is your name?").into());
//!         }
//!         Ok(Update::text(&format!("Hello, {}", req.text())).into())
//!     }
//! }
//!
//! let mut agent = Greeter::init(Config::default()).unwrap();
//! let asked = agent.handle(Request::user_text("hi")).unwrap();
//! assert_eq!(asked.task().unwrap().state, TaskState::InputRequired);
//! ```
//!
//! Data parts carry JSON; read them typed with [`Request::data`] and
//! answer with [`Update::data`]:
//!
//! ```
//! use a2a_agent_sdk::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Order { item: String, quantity: u32 }
//! #[derive(Serialize)]
//! struct Receipt { total: u32 }
//!
//! let req = Request::user_data(&serde_json::json!({"item": "tea", "quantity": 3}));
//! let order: Order = req.data().unwrap().expect("a data part");
//! assert_eq!(order.item, "tea");
//! let reply = Reply::data(&Receipt { total: order.quantity * 2 });
//! let receipt: serde_json::Value = reply.message().unwrap().data_as().unwrap().unwrap();
//! assert_eq!(receipt["total"], 6);
//! ```
//!
//! Long work reports progress while `handle` runs with
//! [`Request::progress`] and streams artifacts with
//! [`Request::emit_artifact`]; the [`Update`] `handle` returns is the
//! task's state afterwards. See `docs/AGENTS.md` for the whole contract.
//!
//! The SDK is also the agent's memory allocator, for Rust and the C
//! library alike: it keeps an idle instance to the pages its data covers.

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod heap;
#[cfg(feature = "http")]
pub mod http;

use std::any::Any;
use std::cell::RefCell;

#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        world: "agent",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_guest",
        default_bindings_module: "a2a_agent_sdk::bindings",
    });
}

pub use bindings::a2a::agent::types::{
    Artifact, FileRef, Info, Message, Part, Reply, Request, Role, Skill, TaskState, Update,
};

/// The per-agent config a session passes to `init`, as key/value pairs.
/// The host always sets `name` (the slot's display name) when the session
/// gave one.
#[derive(Debug, Clone, Default)]
pub struct Config(pub Vec<(String, String)>);

impl Config {
    /// A config from key/value pairs (for tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Config {
        Config(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value of `key`, if the session set it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default`.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key` parsed as `T`; `None` if unset, an error that
    /// names the key if it does not parse (return it from `init` to
    /// refuse the session with that message).
    ///
    /// ```
    /// # use a2a_agent_sdk::Config;
    /// let config = Config::from_pairs(&[("rounds", "3"), ("speed", "fast")]);
    /// assert_eq!(config.parse::<u32>("rounds"), Ok(Some(3)));
    /// assert_eq!(config.parse::<u32>("missing"), Ok(None));
    /// assert!(config.parse::<u32>("speed").unwrap_err().contains("config.speed"));
    /// ```
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| format!("config.{key} is not valid ({v:?}): {e}"))
            })
            .transpose()
    }
}

/// An agent's behaviour. One value of this type lives in one instance for
/// the life of a session.
pub trait Agent: Sized + 'static {
    /// Builds the agent from the session's config. Must succeed for an
    /// empty config: the host calls it that way to read the agent's card.
    fn init(config: Config) -> Result<Self, String>;
    /// The agent's name, description, skills.
    fn describe(&self) -> Info;
    /// Answers one message: with a bare [`Message`], or with the task's
    /// state afterwards (an [`Update`]). An error fails the task with
    /// that text.
    fn handle(&mut self, req: Request) -> Result<Reply, String>;
    /// Stops work on a task. The host marks it canceled afterwards.
    fn cancel(&mut self, _task_id: &str) {}
}

thread_local! {
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_agent<A: Agent, R>(f: impl FnOnce(&mut A) -> R) -> R {
    STATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let agent = A::init(Config::default()).expect("init with an empty config must succeed");
            *slot = Some(Box::new(agent));
        }
        let agent = slot
            .as_mut()
            .and_then(|b| b.downcast_mut::<A>())
            .expect("one agent type per component");
        f(agent)
    })
}

/// Adapts an [`Agent`] to the generated guest bindings. Used by
/// [`export_agent!`]; not for direct use.
#[doc(hidden)]
pub struct Exported<A>(std::marker::PhantomData<A>);

impl<A: Agent> bindings::Guest for Exported<A> {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let agent = A::init(Config(config))?;
        STATE.with(|cell| *cell.borrow_mut() = Some(Box::new(agent)));
        Ok(())
    }
    fn describe() -> Info {
        with_agent::<A, _>(|a| a.describe())
    }
    fn handle(req: Request) -> Result<Reply, String> {
        with_agent::<A, _>(|a| a.handle(req))
    }
    fn cancel(task_id: String) {
        with_agent::<A, _>(|a| a.cancel(&task_id))
    }
}

/// Exports `$agent` (a type implementing [`Agent`]) as this component's
/// agent.
#[macro_export]
macro_rules! export_agent {
    ($agent:ty) => {
        type __A2aExportedAgent = $crate::Exported<$agent>;
        $crate::bindings::export_guest!(__A2aExportedAgent with_types_in $crate::bindings);
    };
}

/// Streams an update for `task_id` while `handle` runs. Most agents use
/// [`Request::progress`] and [`Request::emit_artifact`] instead.
pub fn emit(task_id: &str, update: &Update) {
    bindings::a2a::agent::host::emit(task_id, update)
}

/// The other agents of this session: ask one a question and get its
/// answer. A call goes through the host like a client's (the callee's
/// tasks, limits and budgets apply) and has at most what is left of the
/// current call. Calling this agent itself, or one already waiting on
/// this call, fails at once, as does a chain of more than four agents.
///
/// ```no_run
/// use a2a_agent_sdk::peers;
///
/// for peer in peers::members().iter().filter(|p| !p.is_self) {
///     match peers::ask(peer.slot, "Who should I draft next?") {
///         Ok(answer) => { /* combine */ }
///         Err(why) => { /* the call failed: say so */ }
///     }
/// }
/// ```
pub mod peers {
    use super::bindings::a2a::agent::peers as host;
    pub use host::Peer;

    use super::{Message, Part, Reply, Role};

    /// The agents of this session, in slot order (`is_self` marks this one).
    pub fn members() -> Vec<Peer> {
        host::members()
    }

    /// Sends `message` to the agent in `slot` and waits for its answer.
    pub fn call(slot: u8, message: &Message) -> Result<Reply, String> {
        host::call(slot, message)
    }

    /// Sends `text` to the agent in `slot`; the text of its answer (its
    /// message, or its task's status message and text artifacts).
    pub fn ask(slot: u8, text: &str) -> Result<String, String> {
        let message = Message {
            message_id: String::new(),
            role: Role::User,
            parts: vec![Part::Text(text.into())],
            context_id: None,
            task_id: None,
        };
        let reply = call(slot, &message)?;
        let mut said: Vec<String> = reply.message().map(Message::text).into_iter().collect();
        if let Some(update) = reply.task() {
            for artifact in &update.artifacts {
                said.extend(artifact.parts.iter().filter_map(|p| match p {
                    Part::Text(t) => Some(t.clone()),
                    _ => None,
                }));
            }
        }
        Ok(said
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// Writes to the host's log. The host tags the line with session and slot.
pub mod log {
    use super::bindings::a2a::agent::host::log;
    /// Something failed.
    pub fn error(text: &str) {
        log(0, text)
    }
    /// Something looks wrong.
    pub fn warn(text: &str) {
        log(1, text)
    }
    /// What the agent is doing.
    pub fn info(text: &str) {
        log(2, text)
    }
    /// Detail for whoever debugs the agent.
    pub fn debug(text: &str) {
        log(3, text)
    }
}

impl Info {
    /// An info with a name and description, version 0.1.0, no skills.
    /// Streaming is on: the host streams every agent's updates; an agent
    /// turns it off with [`Info::without_streaming`]. A description built
    /// at run time is taken as it is, not copied.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Info {
            name: name.into(),
            description: description.into(),
            version: "0.1.0".into(),
            skills: Vec::new(),
            streaming: true,
        }
    }

    /// Declares that this agent does not stream: its card says so and
    /// the host refuses streaming calls to it.
    pub fn without_streaming(mut self) -> Self {
        self.streaming = false;
        self
    }

    /// Adds a skill.
    pub fn skill(mut self, id: &str, name: &str, description: &str, tags: &[&str]) -> Self {
        self.skills.push(Skill {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        });
        self
    }
}

impl Message {
    /// A message from the agent with the given parts. The host fills ids.
    pub fn agent(parts: Vec<Part>) -> Self {
        Message {
            message_id: String::new(),
            role: Role::Agent,
            parts,
            context_id: None,
            task_id: None,
        }
    }

    /// A message from the agent holding one text part.
    pub fn agent_text(text: &str) -> Self {
        Self::agent(vec![Part::Text(text.into())])
    }

    /// All text parts, joined by newlines.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n")
    }

    /// The first data part (serialized JSON), if any.
    pub fn data(&self) -> Option<&str> {
        self.parts.iter().find_map(|p| match p {
            Part::Data(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// The first data part as a `T`: `Ok(None)` without one, an error
    /// that says what is wrong when it does not fit `T`.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, String> {
        self.data()
            .map(|d| serde_json::from_str(d).map_err(|e| format!("data part: {e}")))
            .transpose()
    }

    /// Every data part, as JSON values.
    pub fn data_values(&self) -> Vec<serde_json::Value> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Data(d) => serde_json::from_str(d).ok(),
                _ => None,
            })
            .collect()
    }
}

impl Request {
    /// A request holding one user message with these parts, as the host
    /// would pass it (for tests).
    pub fn user(parts: Vec<Part>) -> Request {
        Request {
            task_id: "task-1".into(),
            context_id: "context-1".into(),
            new_task: true,
            message: Message {
                message_id: "message-1".into(),
                role: Role::User,
                parts,
                context_id: None,
                task_id: None,
            },
        }
    }

    /// A request holding one text part (for tests).
    pub fn user_text(text: &str) -> Request {
        Request::user(vec![Part::Text(text.into())])
    }

    /// A request holding one data part (for tests).
    pub fn user_data(value: &impl serde::Serialize) -> Request {
        Request::user(vec![Part::Data(
            serde_json::to_string(value).expect("serializable"),
        )])
    }

    /// All text parts of the incoming message, joined by newlines.
    pub fn text(&self) -> String {
        self.message.text()
    }

    /// The message's first data part as a `T` (see [`Message::data_as`]).
    pub fn data<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, String> {
        self.message.data_as()
    }

    /// Tells the client where the task stands (a `working` status update)
    /// while `handle` is still running.
    pub fn progress(&self, text: &str) {
        emit(&self.task_id, &Update::working(Message::agent_text(text)));
    }

    /// Streams one piece of an artifact while `handle` is still running:
    /// `append` adds its parts to the artifact with the same id streamed
    /// before, `last` marks the last piece. Give the artifact an id of
    /// your own, so the pieces share it.
    pub fn emit_artifact_chunk(&self, artifact: &Artifact, append: bool, last: bool) {
        bindings::a2a::agent::host::emit_chunk(&self.task_id, artifact, append, last)
    }

    /// Streams an artifact to the client while `handle` is still running.
    pub fn emit_artifact(&self, artifact: Artifact) {
        emit(
            &self.task_id,
            &Update {
                state: TaskState::Working,
                message: None,
                artifacts: vec![artifact],
            },
        );
    }
}

impl Artifact {
    /// An artifact holding one text part. The host fills its id.
    pub fn text(name: &str, text: &str) -> Artifact {
        Artifact {
            artifact_id: String::new(),
            name: Some(name.into()),
            description: None,
            parts: vec![Part::Text(text.into())],
        }
    }

    /// An artifact holding `value` as one data part.
    pub fn data(name: &str, value: &impl serde::Serialize) -> Artifact {
        Artifact {
            artifact_id: String::new(),
            name: Some(name.into()),
            description: None,
            parts: vec![Part::Data(
                serde_json::to_string(value).expect("serializable"),
            )],
        }
    }
}

impl Reply {
    /// A bare message holding one text part.
    pub fn text(text: &str) -> Self {
        Reply::Message(Message::agent_text(text))
    }

    /// A bare message holding `value` as one data part.
    pub fn data(value: &impl serde::Serialize) -> Self {
        Reply::Message(Message::agent(vec![Part::Data(
            serde_json::to_string(value).expect("serializable"),
        )]))
    }

    /// The message this reply carries: the bare message, or the task's
    /// status message.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Reply::Message(m) => Some(m),
            Reply::Task(update) => update.message.as_ref(),
        }
    }

    /// The task update, if the reply is one.
    pub fn task(&self) -> Option<&Update> {
        match self {
            Reply::Task(update) => Some(update),
            Reply::Message(_) => None,
        }
    }
}

impl From<Message> for Reply {
    fn from(message: Message) -> Self {
        Reply::Message(message)
    }
}

impl From<Update> for Reply {
    fn from(update: Update) -> Self {
        Reply::Task(update)
    }
}

impl Update {
    /// The task is done; `message` is the agent's answer.
    pub fn completed(message: Message) -> Self {
        Update {
            state: TaskState::Completed,
            message: Some(message),
            artifacts: Vec::new(),
        }
    }

    /// The task is done; the answer is `text`.
    pub fn text(text: &str) -> Self {
        Self::completed(Message::agent_text(text))
    }

    /// The task is done; the answer is `value` as one data part.
    pub fn data(value: &impl serde::Serialize) -> Self {
        Self::completed(Message::agent(vec![Part::Data(
            serde_json::to_string(value).expect("serializable"),
        )]))
    }

    /// The task waits for the client to say more (`input-required`).
    pub fn input_required(question: &str) -> Self {
        Update {
            state: TaskState::InputRequired,
            message: Some(Message::agent_text(question)),
            artifacts: Vec::new(),
        }
    }

    /// The task goes on; `message` tells the client where it stands.
    pub fn working(message: Message) -> Self {
        Update {
            state: TaskState::Working,
            message: Some(message),
            artifacts: Vec::new(),
        }
    }

    /// Adds an artifact.
    pub fn with_artifact(mut self, artifact: Artifact) -> Self {
        self.artifacts.push(artifact);
        self
    }
}
