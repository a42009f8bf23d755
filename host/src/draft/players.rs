//! The player pool: 48 players from `host/data/players.csv`, built into
//! the binary so a draft never depends on the working directory.

const POOL_CSV: &str = include_str!("../../data/players.csv");

pub use draft_protocol::Player;

/// The whole pool, sorted by ADP (best first).
pub fn pool() -> Vec<Player> {
    let mut players = parse(POOL_CSV).expect("the built-in player pool parses");
    players.sort_by(|a, b| a.adp.total_cmp(&b.adp));
    players
}

/// A row of the player pool that does not parse.
#[derive(Debug, thiserror::Error)]
enum BadRow {
    #[error("row {row}: expected 6 fields, got {fields}")]
    Fields { row: usize, fields: usize },
    #[error("row {row}: {what} {value:?}: {source}")]
    Number {
        row: usize,
        what: &'static str,
        value: String,
        source: std::num::ParseFloatError,
    },
}

/// Parses `name,position,team,adp,tier,ppg_2023` rows after a header.
fn parse(csv: &str) -> Result<Vec<Player>, BadRow> {
    csv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let row = i + 2;
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [name, position, team, adp, tier, ppg] = fields[..] else {
                return Err(BadRow::Fields {
                    row,
                    fields: fields.len(),
                });
            };
            let number = |what: &'static str, v: &str| {
                v.parse::<f64>().map_err(|source| BadRow::Number {
                    row,
                    what,
                    value: v.to_string(),
                    source,
                })
            };
            Ok(Player {
                name: name.to_string(),
                position: position.to_string(),
                team: team.to_string(),
                adp: number("adp", adp)?,
                tier: number("tier", tier)? as u32,
                ppg: number("ppg", ppg)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_has_48_distinct_players_sorted_by_adp() {
        let p = pool();
        assert_eq!(p.len(), 48);
        assert!(p.windows(2).all(|w| w[0].adp <= w[1].adp));
        let mut names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 48);
        assert!(
            p.iter()
                .all(|p| ["QB", "RB", "WR", "TE"].contains(&p.position.as_str()))
        );
        assert_eq!(p[0].name, "Christian McCaffrey");
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let e = parse("h\nA,RB,SF,1.0,1,20\nB,WR,x\n").unwrap_err();
        assert!(e.to_string().contains("row 3"), "{e}");
    }
}
