//! Team 1: Zero RB. Rounds 1–3 take the best receiver; later, best value.
use a2a_agent_sdk::export_agent;
use drafter::{Drafter, Player, Strategy, best_at};

#[derive(Default)]
pub struct ZeroRb;

impl Strategy for ZeroRb {
    const COMPONENT: &'static str = "zero-rb";
    const RULE: &'static str =
        "Takes the best wide receiver in rounds 1-3, then the best player left.";
    const CATCHPHRASE: &'static str = "RBs get hurt — elite receivers win titles.";
    const DEFAULT_NAME: &'static str = "Team 1 — Zero RB";

    fn choose(&mut self, round: u32, available: &[Player]) -> (usize, String) {
        if round <= 3
            && let Some(i) = best_at(available, "WR")
        {
            return (
                i,
                "Receivers score every week; the data agrees with me.".into(),
            );
        }
        (
            0,
            "Best value on the board; the structure is already built.".into(),
        )
    }

    fn comment(&self, rival: bool, player: &Player, _pick: u32) -> Option<String> {
        match (player.position.as_str(), rival) {
            ("RB", _) => Some(format!(
                "{} at running back? Enjoy the injury report.",
                player.name
            )),
            ("WR", true) => Some(format!(
                "Even Team 3 knows {} is the smart play.",
                player.name
            )),
            _ => None,
        }
    }
}

export_agent!(Drafter<ZeroRb>);
