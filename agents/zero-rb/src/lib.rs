//! Team 1: Zero RB. Rounds 1–3 take the best receiver; later, best value.
use a2a_agent_sdk::export_agent;
use drafter::{Drafter, Lines, Player, Rng, Strategy, Why, best_at};

#[derive(Default)]
pub struct ZeroRb;

impl Strategy for ZeroRb {
    const COMPONENT: &'static str = "zero-rb";
    const RULE: &'static str =
        "Takes the best wide receiver in rounds 1-3, then the best player left.";
    const CATCHPHRASE: &'static str = "RBs get hurt — elite receivers win titles.";
    const DEFAULT_NAME: &'static str = "Team 1 — Zero RB";
    const LINES: Lines = Lines {
        plan: &[
            "{player} ({pos}, {team}, tier {tier}) is {value}: receivers score every week.",
            "Targets are earned, carries are given. {player} from {team}, {value}.",
            "The data likes {player}: tier {tier} receiver, {value}.",
            "{player} keeps my receiver room elite — {value}, tier {tier}.",
            "While the room chases running backs, I take {player} ({team}).",
        ],
        value: &[
            "{player} ({pos}, {team}) is the best value left: {value}.",
            "Receivers are set; {player} is simply the most points on the board.",
            "No receiver worth it here, so {player}, {value}.",
        ],
        rival: &[
            "{about} took {player}? Enjoy the injury report.",
            "{player} to {about}: another running back, another hamstring.",
            "Bold of {about} to trust {player}'s knees.",
            "{about} drafts like it's 2005. {player}, really?",
        ],
        human: &[
            "You took {player}: {value}. My model gives it a passing grade.",
            "{player} for you. The numbers are lukewarm on that.",
            "Interesting: {player} at that spot. My model shrugs.",
        ],
        other: &[
            "{player} to {about}: a running back, so a coin flip on health.",
            "{about} takes {player}. The data saw that coming.",
        ],
        boast: &[
            "RBs get hurt — elite receivers win titles.",
            "Zero RB isn't a gamble, it's arithmetic.",
            "Check back in week 10 when the backs are on IR.",
            "My receivers don't need a bell cow.",
        ],
    };

    fn choose(&mut self, round: u32, available: &[Player], _rng: &mut Rng) -> (usize, Why) {
        match best_at(available, "WR") {
            Some(i) if round <= 3 => (i, Why::Plan),
            _ => (0, Why::Value),
        }
    }

    fn cares_about(&self, player: &Player) -> bool {
        player.position == "RB"
    }
}

export_agent!(Drafter<ZeroRb>);
