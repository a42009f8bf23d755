//! The mock-draft application: a human (Team 4) drafts against five AI
//! drafters, each an A2A agent of one session.
//!
//! The engine talks to the drafters only as an A2A client, over the
//! network, like any other client. The server hosts drafts behind
//! `/v1/drafts` and the page at `/`; the terminal plays one through the
//! same API.

pub mod client;
pub mod engine;
pub mod lineup;
pub mod players;
pub mod rules;
pub mod terminal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use engine::{Draft, PickError, Settings, TeamCard, team_cards};

/// The drafts being played, by id (the id of their session).
#[derive(Default)]
pub struct Drafts {
    drafts: Mutex<HashMap<String, Arc<Draft>>>,
}

impl Drafts {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Draft>>> {
        self.drafts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking a draft under its id.
    pub fn insert(&self, draft: Arc<Draft>) {
        self.map().insert(draft.id.clone(), draft);
    }

    /// The draft with this id, while it is played.
    pub fn get(&self, id: &str) -> Option<Arc<Draft>> {
        self.map().get(id).cloned()
    }

    /// Forgets a draft (its session ended).
    pub fn remove(&self, id: &str) {
        self.map().remove(id);
    }

    /// Drafts being played.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when no draft is being played.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
