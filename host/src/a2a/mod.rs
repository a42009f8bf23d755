//! The A2A 1.0 protocol over JSON-RPC: wire types, framing, the task
//! store and dispatch. Knows nothing of wasmtime or of sockets: it takes
//! a request body and an [`AgentBackend`], and gives back a reply.

pub mod card;
pub(crate) mod cost;
pub mod error;
pub mod grpc;
pub mod jsonrpc;
pub mod push;
pub mod rest;
pub mod service;
pub mod tasks;
pub mod types;
pub mod v03;

pub use card::{AgentInfo, Skill, agent_card};
pub use service::{
    A2aService, AgentBackend, AgentFailure, AgentReply, AgentRequest, Capabilities, Crash,
    EmitSink, INPUT_MODES, Reply,
};
pub use tasks::TaskUpdate;
