//! Hot reload: watches the agents directory and re-checks a component
//! whose file changed. A new version that passes the contract check is
//! what new sessions get; running sessions keep the version they started
//! with (they hold it). A version that fails is refused and the old one
//! stays. A removed file stops being offered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Runtime, RuntimeError, component_files, component_name, read_component};

/// What one poll of the directory did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reload {
    /// A new or changed component is live.
    Loaded {
        name: String,
        hash: String,
        took: Duration,
    },
    /// A changed file failed the check; the previous version (if any)
    /// stays.
    Refused { name: String, reason: String },
    /// The file is gone; new sessions can no longer ask for it.
    Removed { name: String },
}

/// The directory as one poll found it: its component files, and those
/// changed since the last poll.
struct Scan {
    files: Vec<PathBuf>,
    changed: Vec<Changed>,
}

/// A file changed since the last poll: its new stamp and, if it could be
/// read, its component name and bytes.
type Changed = (PathBuf, Stamp, Option<(String, Vec<u8>)>);

/// When a file was last modified, and its length.
type Stamp = (SystemTime, u64);

/// Reads the directory (blocking): what changed against `seen`.
fn scan(dir: &Path, seen: &HashMap<PathBuf, Stamp>) -> Result<Scan, RuntimeError> {
    let files = component_files(dir)?;
    let changed = files
        .iter()
        .filter_map(|path| {
            let now = stamp(path)?;
            (seen.get(path) != Some(&now)).then(|| (path.clone(), now, read_component(path).ok()))
        })
        .collect();
    Ok(Scan { files, changed })
}

/// The state of the agents directory as last seen.
pub struct DirWatch {
    dir: PathBuf,
    seen: HashMap<PathBuf, Stamp>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl DirWatch {
    /// Starts from the directory as it is now (already loaded).
    pub fn new(dir: PathBuf) -> DirWatch {
        let seen = component_files(&dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| stamp(&p).map(|s| (p, s)))
            .collect();
        DirWatch { dir, seen }
    }

    /// Looks for changes once and applies them to `runtime`. The
    /// directory is read off the async threads.
    pub async fn poll(&mut self, runtime: &Runtime) -> Vec<Reload> {
        let mut outcomes = Vec::new();
        let (dir, seen) = (self.dir.clone(), self.seen.clone());
        let scanned = tokio::task::spawn_blocking(move || scan(&dir, &seen)).await;
        // A directory that cannot be read now (descriptors exhausted, a
        // mount gone) says nothing about its files: change nothing.
        let Scan { files, changed } = match scanned {
            Ok(Ok(scan)) => scan,
            Ok(Err(e)) => {
                tracing::warn!("hot reload skipped this round: {e}");
                return outcomes;
            }
            Err(e) => {
                tracing::warn!("hot reload skipped this round: {e}");
                return outcomes;
            }
        };
        for (path, now, read) in changed {
            self.seen.insert(path, now);
            let Some((name, bytes)) = read else {
                continue;
            };
            if let Some(current) = runtime.component(&name)
                && current.hash == super::hash_of(&bytes)
            {
                // Touched or rewritten with the same bytes (an upload).
                continue;
            }
            match runtime.check(&name, bytes).await {
                Ok(loaded) => {
                    let outcome = Reload::Loaded {
                        name: name.clone(),
                        hash: loaded.hash.clone(),
                        took: loaded.load_time,
                    };
                    runtime.install(loaded);
                    outcomes.push(outcome);
                }
                Err(e) => outcomes.push(Reload::Refused {
                    name,
                    reason: e.to_string(),
                }),
            }
        }
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|p| !files.contains(p))
            .cloned()
            .collect();
        for path in gone {
            self.seen.remove(&path);
            if let Some(name) = component_name(&path)
                && runtime.remove(&name)
            {
                outcomes.push(Reload::Removed { name });
            }
        }
        outcomes
    }
}
