//! The rules of the mock draft: snake order, which team sits in which
//! session slot, who comments on a pick, and the human's advisor. Pure
//! functions of the draft so far and a seeded random source, so a seed
//! replays a draft exactly.

use serde::Serialize;

use super::players::Player;

/// Teams in a draft.
pub const TEAMS: u8 = 6;
/// The human's team.
pub const HUMAN_TEAM: u8 = 4;
/// Rounds a 48-player pool supports.
pub const MAX_ROUNDS: u8 = 8;
/// Rounds when a draft does not say.
pub const DEFAULT_ROUNDS: u8 = 3;

/// The round (1-based) and team on the clock at overall pick `pick`
/// (1-based). Odd rounds run 1→6, even rounds 6→1.
pub fn on_the_clock(pick: u32) -> (u32, u8) {
    let round = (pick - 1) / TEAMS as u32 + 1;
    let place = ((pick - 1) % TEAMS as u32) as u8;
    let team = if round % 2 == 1 {
        place + 1
    } else {
        TEAMS - place
    };
    (round, team)
}

/// The session slot of an AI team: Teams 1, 2, 3, 5, 6 are slots 0..4.
pub fn slot_of(team: u8) -> Option<usize> {
    match team {
        1..=3 => Some(team as usize - 1),
        5 | 6 => Some(team as usize - 2),
        _ => None,
    }
}

/// The team in session slot `slot`.
pub fn team_of(slot: usize) -> u8 {
    if slot < 3 {
        slot as u8 + 1
    } else {
        slot as u8 + 2
    }
}

/// The teams `team` loves to mock: 1 ↔ 3, 5 → 2 and 6, 2 → 5, 6 → 5.
pub fn rivals_of(team: u8) -> &'static [u8] {
    match team {
        1 => &[3],
        3 => &[1],
        5 => &[2, 6],
        2 | 6 => &[5],
        _ => &[],
    }
}

/// A deterministic random source (splitmix64): a draft's seed fixes every
/// coin flip in it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A fair coin flip.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// One of `items`, which must not be empty.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// A pick is a reach when the player's ADP is more than 5 beyond 1.5 ×
/// the pick number.
pub fn is_reach(player: &Player, pick: u32) -> bool {
    player.adp > 1.5 * pick as f64 + 5.0
}

/// Who comments on a pick, and whether as a rival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commenter {
    pub team: u8,
    pub rival: bool,
}

/// Chooses at most one AI team to comment on the pick just made.
///
/// `earlier` is every player picked before this one, in order. In turn:
/// obvious early picks by the AI are skipped half the time; then a rival
/// of the picking team; then the next drafter in this round's order; then
/// the strategy's natural enemy (an RB pick draws Team 1, a WR pick Team
/// 3); then, for a controversial pick, a random AI; else a coin flip for a
/// random AI. The human's picks always draw a comment.
pub fn commenter(
    pick: u32,
    team: u8,
    player: &Player,
    earlier: &[&Player],
    rng: &mut Rng,
) -> Option<Commenter> {
    let human = team == HUMAN_TEAM;
    let obvious = pick <= 3 && (player.adp - pick as f64).abs() <= 1.0;
    if !human && obvious && rng.coin() {
        return None;
    }
    let ai_except_picker = |t: u8| t != team && t != HUMAN_TEAM;
    let rivals: Vec<u8> = (1..=TEAMS)
        .filter(|&t| ai_except_picker(t) && rivals_of(t).contains(&team))
        .collect();
    if !rivals.is_empty() {
        return Some(Commenter {
            team: rng.pick(&rivals),
            rival: true,
        });
    }
    let (round, _) = on_the_clock(pick);
    let next_in_round = (!pick.is_multiple_of(TEAMS as u32)).then(|| on_the_clock(pick + 1).1);
    if let Some(next) = next_in_round.filter(|&t| ai_except_picker(t)) {
        debug_assert_eq!(on_the_clock(pick + 1).0, round);
        return Some(Commenter {
            team: next,
            rival: false,
        });
    }
    let enemy = match player.position.as_str() {
        "RB" => Some(1),
        "WR" => Some(3),
        _ => None,
    };
    if let Some(enemy) = enemy.filter(|&t| ai_except_picker(t)) {
        return Some(Commenter {
            team: enemy,
            rival: false,
        });
    }
    let others: Vec<u8> = (1..=TEAMS).filter(|&t| ai_except_picker(t)).collect();
    let third_in_a_row = earlier.len() >= 2
        && earlier[earlier.len() - 2..]
            .iter()
            .all(|p| p.position == player.position);
    if human || is_reach(player, pick) || third_in_a_row || rng.coin() {
        return Some(Commenter {
            team: rng.pick(&others),
            rival: false,
        });
    }
    None
}

/// The advisor's suggestion for the human's pick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub player: String,
    pub reason: String,
}

/// Suggests a pick for the human: in the first two rounds the best RB or
/// WR at the position the roster lacks most; later the best player left,
/// unless the roster still has no RB or no WR. The reason notes what the
/// drafters have been taking.
///
/// `available` is sorted by ADP and not empty; `recent` holds the last
/// picks of the other teams, newest last.
pub fn advise(round: u32, roster: &[&Player], available: &[Player], recent: &[&Player]) -> Advice {
    let count = |pos: &str| roster.iter().filter(|p| p.position == pos).count();
    let best_at = |pos: &str| available.iter().find(|p| p.position == pos);
    let (rb, wr) = (count("RB"), count("WR"));
    let need = if round <= 2 || rb == 0 || wr == 0 {
        match rb.cmp(&wr) {
            std::cmp::Ordering::Less => Some("RB"),
            std::cmp::Ordering::Greater => Some("WR"),
            std::cmp::Ordering::Equal => None,
        }
        .or_else(|| {
            (round <= 2).then(|| {
                // Even roster: whichever of RB and WR is better right now.
                match (best_at("RB"), best_at("WR")) {
                    (Some(r), Some(w)) if w.adp < r.adp => "WR",
                    _ => "RB",
                }
            })
        })
    } else {
        None
    };
    let choice = need.and_then(best_at).unwrap_or(&available[0]);
    let mut reason = match need {
        Some(pos) if choice.position == pos => {
            let have = count(pos);
            format!(
                "Best {pos} left (tier {}, {}); you have {} {pos}{} so far.",
                choice.tier,
                choice.team,
                if have == 0 {
                    "no".to_string()
                } else {
                    have.to_string()
                },
                if have == 1 { "" } else { "s" },
            )
        }
        _ => format!(
            "Best player on the board (tier {} {}, {}).",
            choice.tier, choice.position, choice.team
        ),
    };
    if !recent.is_empty() {
        let mut tally: Vec<(&str, usize)> = Vec::new();
        for p in recent {
            match tally.iter_mut().find(|(pos, _)| *pos == p.position) {
                Some((_, n)) => *n += 1,
                None => tally.push((&p.position, 1)),
            }
        }
        tally.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let (pos, n) = tally[0];
        let left = available.iter().filter(|p| p.position == pos).count();
        reason.push_str(&format!(
            " {n} of the last {} picks were {pos}s; {left} {pos}{} left.",
            recent.len(),
            if left == 1 { " is" } else { "s are" }
        ));
    }
    Advice {
        player: choice.name.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::players::pool;

    #[test]
    fn snake_order_reverses_every_other_round() {
        let order: Vec<u8> = (1..=18).map(|p| on_the_clock(p).1).collect();
        assert_eq!(
            order,
            [1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6]
        );
        assert_eq!(on_the_clock(7).0, 2);
        assert_eq!(on_the_clock(48), (8, 1));
    }

    #[test]
    fn slots_and_teams_map_both_ways_around_the_human() {
        for slot in 0..5 {
            assert_eq!(slot_of(team_of(slot)), Some(slot));
        }
        assert_eq!(slot_of(HUMAN_TEAM), None);
        assert_eq!((0..5).map(team_of).collect::<Vec<_>>(), [1, 2, 3, 5, 6]);
    }

    fn named<'a>(pool: &'a [Player], name: &str) -> &'a Player {
        pool.iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn rivals_comment_first_and_the_human_always_draws_a_comment() {
        let pool = pool();
        let rb = named(&pool, "Bijan Robinson");
        let mut rng = Rng::new(7);
        // Team 1's pick: Team 3 is its rival.
        let c = commenter(10, 1, rb, &[], &mut rng).unwrap();
        assert_eq!(
            c,
            Commenter {
                team: 3,
                rival: true
            }
        );
        // Team 5's pick draws Team 2 or Team 6.
        for seed in 0..20 {
            let c = commenter(10, 5, rb, &[], &mut Rng::new(seed)).unwrap();
            assert!(c.rival && [2, 6].contains(&c.team));
        }
        // The human (pick 4, round 1): the next drafter, Team 5.
        for seed in 0..20 {
            let c = commenter(4, HUMAN_TEAM, rb, &[], &mut Rng::new(seed)).unwrap();
            assert_eq!(
                c,
                Commenter {
                    team: 5,
                    rival: false
                }
            );
        }
        // The human at pick 9 (round 2, order 6..1): next is Team 3.
        assert_eq!(commenter(9, HUMAN_TEAM, rb, &[], &mut rng).unwrap().team, 3);
    }

    #[test]
    fn obvious_early_picks_are_skipped_about_half_the_time() {
        let pool = pool();
        let cmc = &pool[0];
        let skipped = (0..200)
            .filter(|&s| commenter(1, 1, cmc, &[], &mut Rng::new(s)).is_none())
            .count();
        assert!((60..140).contains(&skipped), "{skipped} of 200");
    }

    #[test]
    fn reaches_are_recognised() {
        let pool = pool();
        let late = pool.last().unwrap();
        assert!(is_reach(late, 1));
        assert!(!is_reach(&pool[0], 1));
    }

    #[test]
    fn the_advisor_fills_the_missing_position_early_then_takes_value() {
        let pool = pool();
        let wr = named(&pool, "Justin Jefferson");
        let available: Vec<Player> = pool.iter().filter(|p| p != &wr).cloned().collect();
        let a = advise(2, &[wr], &available, &[]);
        let pick = named(&pool, &a.player);
        assert_eq!(pick.position, "RB", "{a:?}");
        assert!(a.reason.contains("no RB"), "{a:?}");
        // Round 3 with one RB and one WR: the best player left.
        let rb = named(&pool, "Christian McCaffrey");
        let available: Vec<Player> = pool
            .iter()
            .filter(|p| p != &wr && p != &rb)
            .cloned()
            .collect();
        let recent: Vec<&Player> = available
            .iter()
            .filter(|p| p.position == "WR")
            .take(3)
            .collect();
        let a = advise(3, &[wr, rb], &available, &recent);
        assert_eq!(a.player, available[0].name);
        assert!(a.reason.contains("3 of the last 3 picks were WRs"), "{a:?}");
    }
}
