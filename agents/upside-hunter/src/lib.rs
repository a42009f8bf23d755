//! Team 5: Upside Hunter. With more than three players left, half the time
//! (seeded random) skips the two safest picks and takes the third.
use a2a_agent_sdk::{Config, export_agent};
use drafter::{Drafter, Player, Strategy};

pub struct UpsideHunter {
    rng: u64,
}

impl Default for UpsideHunter {
    fn default() -> Self {
        UpsideHunter { rng: 0x5eed_2024 }
    }
}

impl UpsideHunter {
    /// xorshift64: deterministic for a given seed, so drafts replay.
    fn coin(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng & 1 == 1
    }
}

impl Strategy for UpsideHunter {
    const COMPONENT: &'static str = "upside-hunter";
    const RULE: &'static str = "Half the time skips the two safest players for the third.";
    const CATCHPHRASE: &'static str = "Safe picks are for losers.";
    const DEFAULT_NAME: &'static str = "Team 5 — Upside Hunter";

    fn configure(&mut self, config: &Config) {
        if let Some(seed) = config.get("seed").and_then(|s| s.parse::<u64>().ok()) {
            self.rng = seed.max(1);
        }
    }

    fn choose(&mut self, _round: u32, available: &[Player]) -> (usize, String) {
        if available.len() > 3 && self.coin() {
            (
                2,
                "Everyone sees the obvious two. I see the ceiling.".into(),
            )
        } else {
            (
                0,
                "Even a gambler takes the sure thing when it's this good.".into(),
            )
        }
    }

    fn comment(&self, rival: bool, player: &Player, _pick: u32) -> Option<String> {
        rival.then(|| format!("{}? Boring. Safe picks are for losers.", player.name))
    }
}

export_agent!(Drafter<UpsideHunter>);
