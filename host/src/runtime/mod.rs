//! The sandbox: one wasmtime `Engine` for the process (async, pooling
//! allocator, epoch interruption driven by a ticker thread), the agent
//! components compiled once at startup with an `InstancePre` each, and
//! [`GuestInstance`]s made from them. Knows nothing of HTTP or A2A.

pub mod catalog;
pub mod contract;
mod instance;
mod limits;
pub mod reload;
mod versions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use contract::ContractError;
pub use instance::{
    CallChain, CallError, Chunk, Dropped, EmitFn, GuestInstance, Hooks, LogTag, Peers, Reach,
    update_size,
};
pub use limits::GuestLimits;

pub use versions::ContractVersion;
/// The contract's types as the host sees them.
pub use versions::current::a2a::agent::peers;
pub use versions::current::a2a::agent::types as guest;

/// How often the epoch ticks. Deadlines are checked, and long-running
/// guests step aside for other work, at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Memory mappings one pooled instance can take: its stack and guard,
/// its linear memory and tables, each split in two by protection.
const MAPPINGS_PER_INSTANCE: u64 = 6;

/// Warns when the kernel's per-process mapping limit cannot hold the
/// instance pool: instantiation would then fail with "Cannot allocate
/// memory" long before memory runs out.
fn warn_if_too_few_mappings(instances: u32) {
    let Ok(text) = std::fs::read_to_string("/proc/sys/vm/max_map_count") else {
        return;
    };
    let Ok(limit) = text.trim().parse::<u64>() else {
        return;
    };
    let needed = u64::from(instances) * MAPPINGS_PER_INSTANCE + 4096;
    if limit < needed {
        tracing::warn!(
            vm_max_map_count = limit,
            needed,
            max_instances = instances,
            "the kernel's vm.max_map_count is too low for this many instances; raise it \
             (sysctl -w vm.max_map_count={needed}) or lower limits.max_instances"
        );
    }
}

/// Why the runtime could not start or load a component.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    #[error("cannot read agents directory {dir}: {source}")]
    AgentsDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("no agent components (*.wasm) in {0}; build them with `make agents`")]
    NoComponents(PathBuf),
    #[error("no component in {dir} could be loaded; the first refusal: {first}")]
    NothingLoaded {
        dir: PathBuf,
        first: Box<RuntimeError>,
    },
    #[error("{path}: {source}")]
    Component {
        path: PathBuf,
        source: ContractError,
    },
}

/// A compiled agent component, ready to instantiate.
pub struct LoadedComponent {
    /// The file stem: what a session's slot names.
    pub name: String,
    /// What the component says about itself with an empty config.
    pub info: guest::Info,
    /// SHA-256 of the component's bytes, hex: its version.
    pub hash: String,
    /// Size of the component file.
    pub bytes: usize,
    /// Time to compile (or load precompiled code), check and describe it.
    pub load_time: Duration,
    /// Whether the code came from the precompiled cache.
    pub cached: bool,
    /// Whether it imports `wasi:http/outgoing-handler`: it sends HTTP
    /// requests, which reach only what the operator grants it.
    pub sends_http: bool,
    pre: versions::AgentPre,
}

impl LoadedComponent {
    /// The contract version the component implements.
    pub fn contract(&self) -> ContractVersion {
        self.pre.version()
    }
}

/// The engine, the linker and every loaded component.
pub struct Runtime {
    engine: Engine,
    linker: Linker<instance::GuestState>,
    components: RwLock<BTreeMap<String, Arc<LoadedComponent>>>,
    /// Where precompiled code is kept, by component hash.
    cache_dir: Option<PathBuf>,
    limits: GuestLimits,
    hooks: Hooks,
    ticker_running: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker. The pooling
    /// allocator reserves slots for `limits.max_instances` live instances.
    pub fn new(limits: GuestLimits, hooks: Hooks) -> Result<Self, RuntimeError> {
        let mut pool = PoolingAllocationConfig::new();
        let instances = limits.max_instances;
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(limits::CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(limits::CORE_INSTANCES_PER_COMPONENT)
            .total_memories(instances)
            .max_memories_per_component(1)
            .total_tables(instances.saturating_mul(limits::TABLES_PER_COMPONENT))
            .max_tables_per_component(limits::TABLES_PER_COMPONENT)
            .max_tables_per_module(limits::TABLES_PER_COMPONENT)
            .table_elements(limits.table_elements)
            .total_stacks(instances)
            .max_memory_size(limits.memory_bytes);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Memories are small (tens of MiB), so reserve just that much
            // address space per slot: thousands of slots fit comfortably.
            .memory_reservation(limits.memory_bytes as u64)
            .memory_guard_size(64 * 1024)
            .memory_reservation_for_growth(0)
            .max_wasm_stack(limits.wasm_stack_bytes);
        warn_if_too_few_mappings(instances);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|_| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|_| versions::add_to_linker(&mut linker))
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let ticker_running = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&ticker_running);
        let ticking = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticking.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| RuntimeError::Engine(format!("cannot start epoch ticker: {e}")))?;

        Ok(Runtime {
            engine,
            linker,
            components: RwLock::default(),
            cache_dir: None,
            limits,
            hooks,
            ticker_running,
        })
    }

    /// Keeps precompiled code in `dir` (created if missing), keyed by
    /// the component's hash, so a restart or reload of the same bytes
    /// does not compile again.
    pub fn with_cache(mut self, dir: PathBuf) -> Self {
        match std::fs::create_dir_all(&dir) {
            Ok(()) => self.cache_dir = Some(dir),
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e,
                "cannot create the precompiled-code cache; components will be compiled at every start"),
        }
        self
    }

    /// Compiles and registers every `*.wasm` in `dir`. A component that
    /// does not fit the contract (or whose `init` blocks) is skipped with
    /// an error log line naming the file and what to change, and the rest
    /// are served, as hot reload does; the refusals are returned. A
    /// directory where nothing loads is an error.
    pub async fn load_dir(&self, dir: &Path) -> Result<Vec<RuntimeError>, RuntimeError> {
        let paths = component_files(dir)?;
        if paths.is_empty() {
            return Err(RuntimeError::NoComponents(dir.to_path_buf()));
        }
        let mut refused = Vec::new();
        for path in paths {
            if let Err(e) = self.load_file(&path).await {
                tracing::error!("component skipped: {e}");
                refused.push(e);
            }
        }
        if self.components().is_empty() {
            return Err(RuntimeError::NothingLoaded {
                dir: dir.to_path_buf(),
                first: Box::new(refused.swap_remove(0)),
            });
        }
        self.prune_cache();
        Ok(refused)
    }

    /// Deletes precompiled code for components no longer in the
    /// directory, so the cache does not grow with every version ever
    /// deployed.
    fn prune_cache(&self) {
        let Some(dir) = &self.cache_dir else { return };
        let live: Vec<String> = self.components().iter().map(|c| c.hash.clone()).collect();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let stale = path.extension().is_some_and(|x| x == "cwasm")
                && path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|hash| !live.iter().any(|h| h == hash));
            if stale && std::fs::remove_file(&path).is_ok() {
                tracing::info!(path = %path.display(), "removed stale precompiled code");
            }
        }
    }

    /// Compiles one component file and registers it under its file stem.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let fail = |source: ContractError| RuntimeError::Component {
            path: path.to_path_buf(),
            source,
        };
        let (name, bytes) = read_component(path).map_err(fail)?;
        let loaded = self.check(&name, bytes).await.map_err(fail)?;
        self.install(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Checks `bytes` against the agent contract and compiles them: the
    /// one check behind `validate`, start-up, reload and upload. Nothing
    /// is registered.
    pub async fn check(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<Arc<LoadedComponent>, ContractError> {
        let started = Instant::now();
        contract::check_header(&bytes)?;
        let hash = hash_of(&bytes);
        let size = bytes.len();
        let (component, cached) = self.compile(&hash, bytes).await?;
        contract::check_interfaces(&self.engine, &component)?;
        let pre = versions::AgentPre::new(&self.linker, &component)
            .map_err(|e| ContractError::Types(format!("{e:#}")))?;
        let mut probe = GuestInstance::new(
            pre.clone(),
            self.limits,
            Vec::new(),
            LogTag::component(name),
            self.hooks.clone(),
            // The probe reaches nothing.
            Reach::default(),
        )
        .await
        .map_err(|e| ContractError::Init(e.to_string()))?;
        let info = probe
            .describe()
            .await
            .map_err(|e| ContractError::Describe(e.to_string()))?;
        contract::check_info(&info)?;
        Ok(Arc::new(LoadedComponent {
            name: name.to_string(),
            info,
            hash,
            bytes: size,
            load_time: started.elapsed(),
            cached,
            sends_http: contract::sends_http(&self.engine, &component),
            pre,
        }))
    }

    /// Compiled code for `bytes`: from the cache when it holds code for
    /// this hash and this engine, else compiled and stored there. All of
    /// it (file reads, compiling, file writes) runs off the async threads.
    async fn compile(
        &self,
        hash: &str,
        bytes: Vec<u8>,
    ) -> Result<(Component, bool), ContractError> {
        let engine = self.engine.clone();
        let cached = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{hash}.cwasm")));
        tokio::task::spawn_blocking(move || compile_cached(&engine, cached, &bytes))
            .await
            .map_err(|e| ContractError::Compile(format!("compile task failed: {e}")))?
    }

    /// Makes `loaded` the version new sessions get. Sessions already
    /// running keep the version they started with.
    pub fn install(&self, loaded: Arc<LoadedComponent>) {
        self.components
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(loaded.name.clone(), loaded);
    }

    /// Stops offering `name` to new sessions.
    pub fn remove(&self, name: &str) -> bool {
        self.components
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some()
    }

    /// The current version of the component registered under `name`.
    pub fn component(&self, name: &str) -> Option<Arc<LoadedComponent>> {
        self.components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every loaded component, by name.
    pub fn components(&self) -> Vec<Arc<LoadedComponent>> {
        self.components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> GuestLimits {
        self.limits
    }

    /// A fresh instance of `component`, initialised with `config`.
    /// `reach` is what it may reach outside itself: where its HTTP
    /// requests go and the session's other agents.
    pub async fn instantiate(
        &self,
        component: &LoadedComponent,
        config: Vec<(String, String)>,
        tag: LogTag,
        reach: Reach,
    ) -> Result<GuestInstance, CallError> {
        GuestInstance::new(
            component.pre.clone(),
            self.limits,
            config,
            tag,
            self.hooks.clone(),
            reach,
        )
        .await
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_running.store(false, Ordering::Relaxed);
    }
}

/// Checks a component file as a server loading it would (name, contract,
/// card) and keeps its compiled code beside it in `.precompiled/`, where
/// a server serving that directory looks first. The error names the file.
pub async fn validate_file(path: &Path) -> Result<Arc<LoadedComponent>, RuntimeError> {
    let refused = |source| RuntimeError::Component {
        path: path.to_path_buf(),
        source,
    };
    let (name, bytes) = read_component(path).map_err(refused)?;
    let limits = GuestLimits {
        max_instances: 4,
        ..GuestLimits::default()
    };
    let cache = path.parent().unwrap_or(Path::new(".")).join(".precompiled");
    let runtime = Runtime::new(limits, Hooks::default())?.with_cache(cache);
    runtime.check(&name, bytes).await.map_err(refused)
}

/// [`Runtime::compile`]'s work, on a blocking thread: the code cached
/// at `cached` if it is there and current, else `bytes` compiled (and
/// stored at `cached`). True when it came from the cache.
fn compile_cached(
    engine: &Engine,
    cached: Option<PathBuf>,
    bytes: &[u8],
) -> Result<(Component, bool), ContractError> {
    if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
        // SAFETY: the cache directory is the operator's, written only by
        // this server from code it compiled itself; wasmtime checks that
        // the code matches this engine and version.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok((c, true)),
            Err(e) => tracing::info!(path = %path.display(), error = %e,
                "precompiled code is stale; compiling again"),
        }
    }
    let component =
        Component::new(engine, bytes).map_err(|e| ContractError::Compile(format!("{e:#}")))?;
    if let Some(path) = cached {
        let write = component
            .serialize()
            .map_err(std::io::Error::other)
            .and_then(|code| {
                // Unique per writer: servers sharing a cache never
                // interleave their writes.
                let partial = path.with_extension(format!(
                    "{}.{}.partial",
                    std::process::id(),
                    uuid::Uuid::new_v4()
                ));
                std::fs::write(&partial, code)?;
                std::fs::rename(&partial, &path)
            });
        if let Err(e) = write {
            tracing::warn!(path = %path.display(), error = %e, "cannot store precompiled code");
        }
    }
    Ok((component, false))
}

/// The `*.wasm` files in `dir`, sorted.
pub fn component_files(dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RuntimeError::AgentsDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// A component file's name (its stem, which must be a component name)
/// and bytes.
pub fn read_component(path: &Path) -> Result<(String, Vec<u8>), ContractError> {
    let name = component_name(path).ok_or_else(|| {
        ContractError::Name(
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    })?;
    let bytes = std::fs::read(path).map_err(|e| ContractError::Read(e.to_string()))?;
    Ok((name, bytes))
}

/// The component name of a file: its stem, if it is a valid name.
pub fn component_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    is_component_name(stem).then(|| stem.to_string())
}

/// Lowercase letters, digits and `-`, starting with a letter, at most 64.
pub fn is_component_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// SHA-256 of a component's bytes, hex: its version everywhere.
pub fn hash_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
