//! The versions of the agent contract the host serves, behind one face.
//!
//! `wit/agent.wit` (a2a:agent@0.2.0) is the contract: `handle` answers
//! with a message or with the task's state. Components built against
//! `wit/0.1.0/agent.wit`, whose `handle` answers with the task's state
//! only, keep working unchanged: the two versions share every type, and
//! the older `handle`'s answer is read as a task reply. Which version a
//! component implements is decided by the types of its exports.

use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

use super::instance::GuestState;

/// Generated from `wit/agent.wit`.
pub(crate) mod current {
    wasmtime::component::bindgen!({
        world: "agent",
        path: "../wit",
        exports: { default: async },
        imports: { "a2a:agent/peers.call": async },
    });
}

/// Generated from `wit/0.1.0/agent.wit`, with the current contract's
/// types (the records are the same).
pub(crate) mod first {
    wasmtime::component::bindgen!({
        world: "agent",
        path: "../wit/0.1.0",
        exports: { default: async },
        with: { "a2a:agent/types@0.1.0": super::current::a2a::agent::types },
    });
}

use current::a2a::agent::types as guest;

/// A contract version, as `validate` and the catalog name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    /// `handle` answers with the task's state only.
    V0_1,
    /// `handle` answers with a message or with the task's state.
    V0_2,
}

impl ContractVersion {
    /// The package name and version, as the WIT file declares it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "a2a:agent@0.1.0",
            ContractVersion::V0_2 => "a2a:agent@0.2.0",
        }
    }

    /// Whether `handle` may answer with a bare message.
    pub fn replies_with_messages(self) -> bool {
        self == ContractVersion::V0_2
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Puts the host side of every contract version into `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    current::Agent::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    first::Agent::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
}

/// A component ready to instantiate, with the version it implements.
#[derive(Clone)]
pub(crate) enum AgentPre {
    Current(current::AgentPre<GuestState>),
    First(first::AgentPre<GuestState>),
}

/// A live instance's exports.
pub(crate) enum Exports {
    Current(current::Agent),
    First(first::Agent),
}

impl AgentPre {
    /// Links `component` and finds which contract its exports implement;
    /// the error says why it implements neither.
    pub fn new(linker: &Linker<GuestState>, component: &Component) -> wasmtime::Result<Self> {
        let pre: InstancePre<GuestState> = linker.instantiate_pre(component)?;
        match current::AgentPre::new(pre.clone()) {
            Ok(current) => Ok(AgentPre::Current(current)),
            Err(current_error) => match first::AgentPre::new(pre) {
                Ok(first) => Ok(AgentPre::First(first)),
                Err(_) => Err(current_error),
            },
        }
    }

    /// The contract version the component implements.
    pub fn version(&self) -> ContractVersion {
        match self {
            AgentPre::Current(_) => ContractVersion::V0_2,
            AgentPre::First(_) => ContractVersion::V0_1,
        }
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        match self {
            AgentPre::Current(pre) => pre.engine(),
            AgentPre::First(pre) => pre.engine(),
        }
    }

    pub async fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            AgentPre::Current(pre) => Exports::Current(pre.instantiate_async(store).await?),
            AgentPre::First(pre) => Exports::First(pre.instantiate_async(store).await?),
        })
    }
}

impl Exports {
    pub async fn init(
        &self,
        store: &mut Store<GuestState>,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Exports::Current(agent) => agent.call_init(store, config).await,
            Exports::First(agent) => agent.call_init(store, config).await,
        }
    }

    pub async fn describe(&self, store: &mut Store<GuestState>) -> wasmtime::Result<guest::Info> {
        match self {
            Exports::Current(agent) => agent.call_describe(store).await,
            Exports::First(agent) => agent.call_describe(store).await,
        }
    }

    /// `handle`; an older component's update is a task reply.
    pub async fn handle(
        &self,
        store: &mut Store<GuestState>,
        req: &guest::Request,
    ) -> wasmtime::Result<Result<guest::Reply, String>> {
        match self {
            Exports::Current(agent) => agent.call_handle(store, req).await,
            Exports::First(agent) => {
                Ok(agent.call_handle(store, req).await?.map(guest::Reply::Task))
            }
        }
    }

    pub async fn cancel(
        &self,
        store: &mut Store<GuestState>,
        task_id: &str,
    ) -> wasmtime::Result<()> {
        match self {
            Exports::Current(agent) => agent.call_cancel(store, task_id).await,
            Exports::First(agent) => agent.call_cancel(store, task_id).await,
        }
    }
}
