//! Teams 2 and 6: best player available, always the lowest ADP.
use a2a_agent_sdk::export_agent;
use drafter::{Drafter, Player, Strategy, value_words};

#[derive(Default)]
pub struct BestAvailable;

impl Strategy for BestAvailable {
    const COMPONENT: &'static str = "bpa";
    const RULE: &'static str = "Always takes the best player available.";
    const CATCHPHRASE: &'static str = "Value is value; I don't reach.";
    const DEFAULT_NAME: &'static str = "Team 2 — Best Available";

    fn choose(&mut self, _round: u32, _available: &[Player]) -> (usize, String) {
        (0, "The board says he's the best left, so he's mine.".into())
    }

    fn comment(&self, rival: bool, player: &Player, pick: u32) -> Option<String> {
        let words = value_words(player, pick);
        if words == "a reach by the book" || rival {
            Some(format!(
                "{} there is {words}. The board remembers.",
                player.name
            ))
        } else {
            None
        }
    }
}

export_agent!(Drafter<BestAvailable>);
