//! The sandbox: one wasmtime `Engine` for the process (async, pooling
//! allocator, epoch interruption driven by a ticker thread), the agent
//! components compiled once at startup with an `InstancePre` each, and
//! [`AgentInstance`]s made from them. Knows nothing of HTTP or A2A.

mod instance;
mod limits;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use instance::{AgentInstance, CallError, Dropped, EmitFn, Hooks, LogTag, update_size};
pub use limits::GuestLimits;

/// Generated from `wit/agent.wit`.
mod bindings {
    wasmtime::component::bindgen!({
        world: "agent",
        path: "../wit",
        exports: { default: async },
    });
}

/// The contract's types as the host sees them.
pub use bindings::a2a::agent::types as guest;

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
    #[error("component {path}: {reason}")]
    Component { path: PathBuf, reason: String },
}

/// A compiled agent component, ready to instantiate.
pub struct LoadedComponent {
    /// The file stem: what a session's slot names.
    pub name: String,
    /// What the component says about itself with an empty config.
    pub info: guest::Info,
    pre: bindings::AgentPre<instance::GuestState>,
}

/// The engine, the linker and every loaded component.
pub struct Runtime {
    engine: Engine,
    linker: Linker<instance::GuestState>,
    components: BTreeMap<String, Arc<LoadedComponent>>,
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
            .and_then(|_| {
                bindings::Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            })
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
            components: BTreeMap::new(),
            limits,
            hooks,
            ticker_running,
        })
    }

    /// Compiles every `*.wasm` in `dir` and reads each one's card. A
    /// component that does not fit the contract stops the load with an
    /// error naming the file.
    pub async fn load_dir(&mut self, dir: &Path) -> Result<(), RuntimeError> {
        let entries = std::fs::read_dir(dir).map_err(|source| RuntimeError::AgentsDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(RuntimeError::NoComponents(dir.to_path_buf()));
        }
        for path in paths {
            self.load(&path).await?;
        }
        Ok(())
    }

    /// Compiles one component file and registers it under its file stem.
    pub async fn load(&mut self, path: &Path) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let fail = |reason: String| RuntimeError::Component {
            path: path.to_path_buf(),
            reason,
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| fail("file name is not UTF-8".into()))?
            .to_string();
        let engine = self.engine.clone();
        let file = path.to_path_buf();
        let component = tokio::task::spawn_blocking(move || Component::from_file(&engine, &file))
            .await
            .map_err(|e| fail(format!("compile task failed: {e}")))?
            .map_err(|e| fail(format!("not a valid component: {e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(bindings::AgentPre::new)
            .map_err(|e| fail(format!("does not fit the a2a:agent world: {e:#}")))?;
        let mut probe = AgentInstance::new(
            pre.clone(),
            self.limits,
            Vec::new(),
            LogTag::component(&name),
            self.hooks.clone(),
        )
        .await
        .map_err(|e| fail(format!("cannot start with an empty config: {e}")))?;
        let info = probe
            .describe()
            .await
            .map_err(|e| fail(format!("describe failed: {e}")))?;
        let loaded = Arc::new(LoadedComponent {
            name: name.clone(),
            info,
            pre,
        });
        self.components.insert(name, Arc::clone(&loaded));
        Ok(loaded)
    }

    /// The component registered under `name`.
    pub fn component(&self, name: &str) -> Option<&Arc<LoadedComponent>> {
        self.components.get(name)
    }

    /// Every loaded component, by name.
    pub fn components(&self) -> impl Iterator<Item = &Arc<LoadedComponent>> {
        self.components.values()
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> GuestLimits {
        self.limits
    }

    /// A fresh instance of `component`, initialised with `config`.
    pub async fn instantiate(
        &self,
        component: &LoadedComponent,
        config: Vec<(String, String)>,
        tag: LogTag,
    ) -> Result<AgentInstance, CallError> {
        AgentInstance::new(
            component.pre.clone(),
            self.limits,
            config,
            tag,
            self.hooks.clone(),
        )
        .await
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_running.store(false, Ordering::Relaxed);
    }
}
