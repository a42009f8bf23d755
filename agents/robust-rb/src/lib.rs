//! Team 3: Robust RB. Rounds 1–2 take the best running back; later, best value.
use a2a_agent_sdk::export_agent;
use drafter::{Drafter, Lines, Player, Rng, Strategy, Why, best_at};

#[derive(Default)]
pub struct RobustRb;

impl Strategy for RobustRb {
    const COMPONENT: &'static str = "robust-rb";
    const RULE: &'static str =
        "Takes the best running back in rounds 1-2, then the best player left.";
    const CATCHPHRASE: &'static str = "Running backs win championships!";
    const DEFAULT_NAME: &'static str = "Team 3 — Robust RB";
    const LINES: Lines = Lines {
        plan: &[
            "Ground and pound: {player} ({team}, tier {tier}), {value}.",
            "{player} carries the load — you build from the backfield.",
            "Workhorse back {player} from {team}. {value}, and mine.",
            "Give me {player} and twenty carries a game.",
        ],
        value: &[
            "Backfield's locked, so {player} ({pos}, {team}) — {value}.",
            "Now I grab whoever's best: {player}, {value}.",
            "{player} is the best left; the backs already did their job.",
        ],
        rival: &[
            "{player}? Receivers don't win in January, {about}!",
            "{about} took {player}. Cute. Who's blocking?",
            "Another receiver for {about}. {player} won't run the clock out.",
            "Ha! {about} with {player}. Enjoy your box-score garbage time.",
        ],
        human: &[
            "You took {player}! {value}. Now let's see you run the ball!",
            "{player} for the human. Not bad for a rookie drafter.",
            "Hmm, {player}. Keep drafting like that and you might scare me.",
        ],
        other: &[
            "{about} with {player}. A receiver. Of course.",
            "{player} to {about}? Fine, more backs for me.",
        ],
        boast: &[
            "Running backs win championships!",
            "Control the clock, control the league.",
            "Three yards and a cloud of fantasy points.",
            "You can't teach a stiff-arm.",
        ],
    };

    fn choose(&mut self, round: u32, available: &[Player], _rng: &mut Rng) -> (usize, Why) {
        match best_at(available, "RB") {
            Some(i) if round <= 2 => (i, Why::Plan),
            _ => (0, Why::Value),
        }
    }

    fn cares_about(&self, player: &Player) -> bool {
        player.position == "WR"
    }
}

export_agent!(Drafter<RobustRb>);
