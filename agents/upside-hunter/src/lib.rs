//! Team 5: Upside Hunter. With more than three players left, half the time
//! (seeded random) skips the two safest picks and takes the third.
use a2a_agent_sdk::export_agent;
use drafter::{Drafter, Lines, Player, Rng, Strategy, Why};

#[derive(Default)]
pub struct UpsideHunter;

impl Strategy for UpsideHunter {
    const COMPONENT: &'static str = "upside-hunter";
    const RULE: &'static str = "Half the time skips the two safest players for the third.";
    const CATCHPHRASE: &'static str = "Safe picks are for losers.";
    const DEFAULT_NAME: &'static str = "Team 5 — Upside Hunter";
    const LINES: Lines = Lines {
        plan: &[
            "Everyone sees the obvious two. I see {player}'s ceiling.",
            "{player} ({pos}, {team}): {value}, and the upside nobody priced in.",
            "Skip the chalk, take {player}. Tier {tier} with a cannon of a ceiling.",
            "{player} is the swing I came for.",
        ],
        value: &[
            "Even a gambler takes the sure thing: {player}, {value}.",
            "{player} fell to me. {value}. I'll allow it.",
            "Sometimes the safe pick is loaded too: {player}.",
        ],
        rival: &[
            "{player}? Boring. Safe picks are for losers, {about}.",
            "{about} took {player}. Chalk, chalk, chalk.",
            "Wake me when {about} drafts someone with a pulse. {player}? Yawn.",
            "{about} and {player}: the spreadsheet special.",
        ],
        human: &[
            "{player}? Safe. I like you less already.",
            "You took {player}. Swing bigger next time.",
            "{player} for you — fine, if you like floors.",
        ],
        other: &[
            "{player} to {about}. Snooze.",
            "{about} with {player}? Where's the fun?",
        ],
        boast: &[
            "Safe picks are for losers.",
            "Fortune favours the bold.",
            "Ceilings win leagues, floors win nothing.",
            "Go big or go to the consolation bracket.",
        ],
    };

    fn choose(&mut self, _round: u32, available: &[Player], rng: &mut Rng) -> (usize, Why) {
        if available.len() > 3 && rng.coin() {
            (2, Why::Plan)
        } else {
            (0, Why::Value)
        }
    }
}

export_agent!(Drafter<UpsideHunter>);
