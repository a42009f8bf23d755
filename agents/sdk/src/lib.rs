//! The agent SDK: write an A2A agent for a2a-sandbox as one Rust type.
//!
//! Implement [`Agent`] for your type and call [`export_agent!`] once. The
//! host does HTTP, JSON-RPC, tasks, streaming and push; your type only
//! decides what to answer. Its fields are the agent's memory for the life
//! of the session.
//!
//! ```ignore
//! use a2a_agent_sdk::*;
//! struct Echo;
//! impl Agent for Echo {
//!     fn init(_: Config) -> Result<Self, String> { Ok(Echo) }
//!     fn describe(&self) -> Info { Info::new("echo", "Says it back") }
//!     fn handle(&mut self, req: Request) -> Result<Update, String> {
//!         Ok(Update::completed(Message::agent_text(&req.text())))
//!     }
//! }
//! export_agent!(Echo);
//! ```

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
    Artifact, FileRef, Info, Message, Part, Request, Role, Skill, TaskState, Update,
};

/// The per-agent config a session passes to `init`, as key/value pairs.
/// The host always sets `name` (the slot's display name) when the session
/// gave one.
#[derive(Debug, Clone, Default)]
pub struct Config(pub Vec<(String, String)>);

impl Config {
    /// The value of `key`, if the session set it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
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
    /// Answers one message.
    fn handle(&mut self, req: Request) -> Result<Update, String>;
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
    fn handle(req: Request) -> Result<Update, String> {
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

/// Streams a progress update for `task_id` while `handle` runs.
pub fn emit(task_id: &str, update: &Update) {
    bindings::a2a::agent::host::emit(task_id, update)
}

/// Writes to the host's log. The host tags the line with session and slot.
pub mod log {
    use super::bindings::a2a::agent::host::log;
    pub fn error(text: &str) {
        log(0, text)
    }
    pub fn warn(text: &str) {
        log(1, text)
    }
    pub fn info(text: &str) {
        log(2, text)
    }
    pub fn debug(text: &str) {
        log(3, text)
    }
}

impl Info {
    /// An info with a name and description, version 0.1.0, no skills.
    /// Streaming is on: the host streams every agent's updates; an agent
    /// turns it off with [`Info::without_streaming`].
    pub fn new(name: &str, description: &str) -> Self {
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
}

impl Request {
    /// All text parts of the incoming message, joined by newlines.
    pub fn text(&self) -> String {
        self.message.text()
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
