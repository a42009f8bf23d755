//! Hot reload: watches the agents directory and re-checks a component
//! whose file changed. A new version that passes the contract check is
//! what new sessions get; running sessions keep the version they started
//! with (they hold it). A version that fails is refused and the old one
//! stays. A removed file stops being offered.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{Runtime, component_files, component_name, read_component};

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

/// The state of the agents directory as last seen.
pub struct DirWatch {
    dir: PathBuf,
    seen: HashMap<PathBuf, (SystemTime, u64)>,
}

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
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

    /// Looks for changes once and applies them to `runtime`.
    pub async fn poll(&mut self, runtime: &Runtime) -> Vec<Reload> {
        let mut outcomes = Vec::new();
        // A directory that cannot be read now (descriptors exhausted, a
        // mount gone) says nothing about its files: change nothing.
        let files = match component_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!("hot reload skipped this round: {e}");
                return outcomes;
            }
        };
        for path in &files {
            let Some(now) = stamp(path) else { continue };
            if self.seen.get(path) == Some(&now) {
                continue;
            }
            self.seen.insert(path.clone(), now);
            let Ok((name, bytes)) = read_component(path) else {
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
