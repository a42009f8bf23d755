//! Calls between the agents of one session (`a2a:agent/peers`): a call
//! is a SendMessage to the callee's own [`A2aService`](crate::a2a::A2aService),
//! exactly as a client's, so the callee's task store, queue budget and
//! limits apply and its task list shows the call. The chain of agents
//! waiting on a call, and the time its caller has left, travel in the
//! message's metadata, where the callee's backend reads them; a client
//! that writes them there only limits its own calls.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use super::SlotAgent;
use super::agent::{message_from_guest_as, message_to_guest, update_to_guest};
use crate::a2a::service::{Method, Reply};
use crate::a2a::types::{Message, Role, Task};
use crate::runtime::{CallChain, Peers, guest, peers};

/// The metadata key of the slots waiting on a call.
pub const WAITING_KEY: &str = "a2a-sandbox/waiting";
/// The metadata key of the time, in ms, the caller had left.
pub const BUDGET_KEY: &str = "a2a-sandbox/budget_ms";

/// One session's agents, as each of them reaches the others. The agents
/// are set once the session has them; they are held weakly, so a session
/// that ends frees them whatever its instances still hold.
#[derive(Default)]
pub struct SessionPeers {
    agents: OnceLock<Vec<Weak<SlotAgent>>>,
}

impl SessionPeers {
    /// The session's agents, in slot order.
    pub fn set(&self, agents: &[Arc<SlotAgent>]) {
        let _ = self.agents.set(agents.iter().map(Arc::downgrade).collect());
    }

    fn agent(&self, slot: u8) -> Option<Arc<SlotAgent>> {
        self.agents.get()?.get(usize::from(slot))?.upgrade()
    }
}

impl Peers for SessionPeers {
    fn members(&self, own: u8) -> Vec<peers::Peer> {
        self.agents
            .get()
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
            .map(|a| peers::Peer {
                slot: a.slot,
                name: a.info.name.clone(),
                is_self: a.slot == own,
            })
            .collect()
    }

    fn call(
        &self,
        to: u8,
        message: guest::Message,
        chain: CallChain,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<guest::Reply, String>> + Send>> {
        let callee = self.agent(to);
        Box::pin(async move {
            let Some(callee) = callee else {
                return Err(format!("this session has no agent in slot {to}"));
            };
            let mut sent = message_from_guest_as(message, Role::User);
            sent.message_id = crate::a2a::tasks::new_id();
            let budget_ms = chain.budget.map_or(0, |b| b.as_millis() as u64);
            sent.metadata = serde_json::from_value(
                json!({ WAITING_KEY: chain.waiting, BUDGET_KEY: budget_ms }),
            )
            .ok();
            let params = serde_json::value::to_raw_value(&json!({ "message": sent }))
                .map_err(|e| e.to_string())?;
            match callee
                .service
                .call_rest(None, Method::SendMessage, params.into())
                .await
            {
                Reply::Json(body) => answer_of(to, &body),
                Reply::Failed(_, body) | Reply::OverBudget(body) => Err(format!(
                    "slot {to} refused the call: {}",
                    error_message(&body)
                )),
                _ => Err(format!("slot {to} answered in a shape a call cannot take")),
            }
        })
    }
}

/// The chain a message carries, when another agent of the session sent it.
pub fn chain_of(message: &Message) -> CallChain {
    let Some(metadata) = &message.metadata else {
        return CallChain::default();
    };
    let Ok(value) = serde_json::from_str::<Value>(metadata.get()) else {
        return CallChain::default();
    };
    let waiting = value[WAITING_KEY]
        .as_array()
        .map(|slots| {
            slots
                .iter()
                .filter_map(|s| s.as_u64().and_then(|s| u8::try_from(s).ok()))
                .collect()
        })
        .unwrap_or_default();
    CallChain {
        waiting,
        budget: value[BUDGET_KEY].as_u64().map(Duration::from_millis),
    }
}

/// The callee's answer to SendMessage, as the caller's contract reads it.
fn answer_of(to: u8, body: &[u8]) -> Result<guest::Reply, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let Some(message) = answer.get("message") {
        let message: Message = serde_json::from_value(message.clone())
            .map_err(|e| format!("slot {to} answered with an unreadable message: {e}"))?;
        return Ok(guest::Reply::Message(message_to_guest(&message)));
    }
    let task: Task = serde_json::from_value(answer["task"].clone())
        .map_err(|e| format!("slot {to} answered with an unreadable task: {e}"))?;
    Ok(guest::Reply::Task(update_to_guest(&task)))
}

/// The message of a `google.rpc.Status` error body.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}
