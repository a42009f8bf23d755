//! Teams 2 and 6: best player available, always the lowest ADP. The two
//! teams differ only in persona.
use a2a_agent_sdk::export_agent;
use drafter::{Drafter, Lines, Player, Rng, Strategy, Why};

#[derive(Default)]
pub struct BestAvailable;

impl Strategy for BestAvailable {
    const COMPONENT: &'static str = "bpa";
    const RULE: &'static str = "Always takes the best player available.";
    const CATCHPHRASE: &'static str = "Value is value; I don't reach.";
    const DEFAULT_NAME: &'static str = "Team 2 — Best Available";
    const LINES: Lines = Lines {
        plan: &[
            "{player} ({pos}, {team}) is the best player on the board: {value}.",
            "The board says {player}, so {player} it is — {value}.",
            "Tier {tier} {pos} {player} at this spot is {value}. Easy.",
            "No need to think: {player} is {value}.",
        ],
        value: &["{player} is the best left, {value}."],
        rival: &[
            "{player} to {about}? That's {value}. The board remembers.",
            "{about} took {player}. I'll note that: {value}.",
            "Interesting price on {player}, {about}. {value}.",
            "{about} goes {player}. Somebody's chasing upside again.",
        ],
        human: &[
            "{player} for you: {value}. Sensible.",
            "You took {player}. I had him on my board too.",
            "{player}, {value}. I'd call that disciplined.",
        ],
        other: &[
            "{player} to {about}: {value}. Noted.",
            "{about} takes {player}. The board agrees, mostly.",
        ],
        boast: &[
            "Value is value; I don't reach.",
            "Patience pays.",
            "The board never lies.",
            "Discipline beats hunches.",
        ],
    };

    fn choose(&mut self, _round: u32, _available: &[Player], _rng: &mut Rng) -> (usize, Why) {
        (0, Why::Plan)
    }

    fn cares_about(&self, player: &Player) -> bool {
        // Reaches offend a value drafter.
        player.adp > 20.0
    }
}

export_agent!(Drafter<BestAvailable>);
