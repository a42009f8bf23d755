//! The components a server offers, behind one type: loaded from the
//! agents directory at start, kept in step with it (hot reload) and added
//! to by upload. The server manages components only through a
//! [`Catalog`]; the [`Runtime`] under it checks, compiles and
//! instantiates them.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Mutex;

use super::reload::{DirWatch, Reload};
use super::{ContractError, LoadedComponent, Runtime, is_component_name};

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(
        "{0:?} is not a component name: lowercase letters, digits and '-', starting with a letter"
    )]
    Name(String),
    #[error(transparent)]
    Invalid(#[from] ContractError),
    #[error("cannot write {path}: {source}")]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An upload that is now offered to new sessions.
pub struct Uploaded {
    pub component: Arc<LoadedComponent>,
    /// True when it replaced a component of the same name.
    pub replaced: bool,
}

/// The components on offer, and the directory they live in.
pub struct Catalog {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    watch: Mutex<DirWatch>,
}

impl Catalog {
    /// The catalog of `runtime`'s components, stored in `dir` (already
    /// loaded from it).
    pub fn new(runtime: Arc<Runtime>, dir: PathBuf) -> Catalog {
        let watch = Mutex::new(DirWatch::new(dir.clone()));
        Catalog {
            runtime,
            dir,
            watch,
        }
    }

    /// Every component on offer.
    pub fn list(&self) -> Vec<Arc<LoadedComponent>> {
        self.runtime.components()
    }

    /// The component called `name`, if it is on offer.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedComponent>> {
        self.runtime.component(name)
    }

    /// Refuses a name no component may have (before its bytes are read).
    pub fn check_name(name: &str) -> Result<(), UploadError> {
        if is_component_name(name) {
            Ok(())
        } else {
            Err(UploadError::Name(name.to_string()))
        }
    }

    /// Checks `bytes` as a load would, stores them as `{name}.wasm` in the
    /// directory (written whole, then renamed, off the async threads) and
    /// offers the component to new sessions.
    pub async fn upload(&self, name: &str, bytes: Bytes) -> Result<Uploaded, UploadError> {
        Catalog::check_name(name)?;
        let component = self.runtime.check(name, bytes.to_vec()).await?;
        let path = self.dir.join(format!("{name}.wasm"));
        let partial = self.dir.join(format!(".{name}.wasm.partial"));
        let target = path.clone();
        let stored = tokio::task::spawn_blocking(move || {
            std::fs::write(&partial, &bytes).and_then(|()| std::fs::rename(&partial, &target))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(source) = stored {
            return Err(UploadError::Store { path, source });
        }
        let replaced = self.runtime.component(name).is_some();
        self.runtime.install(Arc::clone(&component));
        Ok(Uploaded {
            component,
            replaced,
        })
    }

    /// Brings the offer in step with the directory once: changed files
    /// are checked and offered (or refused, the old version staying),
    /// removed ones withdrawn.
    pub async fn reload(&self) -> Vec<Reload> {
        self.watch.lock().await.poll(&self.runtime).await
    }
}
