//! Team 3: Robust RB. Rounds 1–2 take the best running back; later, best value.
use a2a_agent_sdk::export_agent;
use drafter::{Drafter, Player, Strategy, best_at};

#[derive(Default)]
pub struct RobustRb;

impl Strategy for RobustRb {
    const COMPONENT: &'static str = "robust-rb";
    const RULE: &'static str =
        "Takes the best running back in rounds 1-2, then the best player left.";
    const CATCHPHRASE: &'static str = "RUNNING BACKS WIN CHAMPIONSHIPS!";
    const DEFAULT_NAME: &'static str = "Team 3 — Robust RB";

    fn choose(&mut self, round: u32, available: &[Player]) -> (usize, String) {
        if round <= 2
            && let Some(i) = best_at(available, "RB")
        {
            return (
                i,
                "Ground and pound, baby — you build from the backfield!".into(),
            );
        }
        (0, "Backfield's locked; now I grab whoever's best.".into())
    }

    fn comment(&self, rival: bool, player: &Player, _pick: u32) -> Option<String> {
        match (player.position.as_str(), rival) {
            ("WR", _) => Some(format!("{}? Receivers don't win in January!", player.name)),
            ("RB", true) => Some(format!(
                "Ha! Even Zero RB needs a {} sometimes!",
                player.name
            )),
            _ => None,
        }
    }
}

export_agent!(Drafter<RobustRb>);
