//! One agent instance: a `Store` with its limits, the guest's exports,
//! and the rule that a trapped instance is replaced by a fresh one made
//! from the same `InstancePre` and config.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{Agent, AgentPre};
use super::guest;
use super::limits::{GuestLimits, Limiter, MemoryLimitExceeded};

/// Receives a guest's `emit` calls during one call: (task id, update).
pub type EmitFn = Box<dyn FnMut(&str, guest::Update) + Send>;

/// Longest guest log line kept; the rest is cut.
const MAX_LOG_LINE: usize = 1024;
/// Log lines a guest may write per call; later ones are counted, not kept.
const MAX_LOGS_PER_CALL: u32 = 100;

/// Who a guest's log lines and errors are about.
#[derive(Debug, Clone)]
pub struct LogTag {
    pub session: Arc<str>,
    pub slot: Option<u8>,
    pub component: Arc<str>,
}

impl LogTag {
    /// A tag for an instance that belongs to no session (the card probe).
    pub fn component(name: &str) -> Self {
        LogTag {
            session: Arc::from("-"),
            slot: None,
            component: Arc::from(name),
        }
    }
}

/// Why a call into a guest failed. The instance has been replaced by the
/// time the caller sees this.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("deadline exceeded: the agent ran longer than {0:?}")]
    DeadlineExceeded(Duration),
    #[error("{0}")]
    MemoryLimit(String),
    #[error("stack overflow in the agent")]
    StackOverflow,
    #[error("guest panic: the agent aborted (unreachable executed)")]
    GuestPanic,
    #[error("guest trap: {0}")]
    Trap(String),
    #[error("agent init failed: {0}")]
    Init(String),
    #[error("agent unavailable: {0}")]
    Unavailable(String),
}

/// The deadline of the current call has passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

/// What a store holds for its guest.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    deadline: Instant,
    emit: Option<EmitFn>,
    tag: LogTag,
    logs_this_call: u32,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl super::bindings::a2a::agent::types::Host for GuestState {}

impl super::bindings::a2a::agent::host::Host for GuestState {
    fn emit(&mut self, task_id: String, update: guest::Update) {
        if let Some(emit) = self.emit.as_mut() {
            emit(&task_id, update);
        }
    }

    fn log(&mut self, level: u8, mut text: String) {
        self.logs_this_call += 1;
        if self.logs_this_call > MAX_LOGS_PER_CALL {
            return;
        }
        if text.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let LogTag {
            session,
            slot,
            component,
        } = &self.tag;
        match level {
            0 => {
                tracing::error!(target: "guest", session = %session, slot, component = %component, "{text}")
            }
            1 => {
                tracing::warn!(target: "guest", session = %session, slot, component = %component, "{text}")
            }
            2 => {
                tracing::info!(target: "guest", session = %session, slot, component = %component, "{text}")
            }
            _ => {
                tracing::debug!(target: "guest", session = %session, slot, component = %component, "{text}")
            }
        }
    }
}

/// A live agent: its store and exports, plus what it takes to make it
/// again after a trap.
pub struct AgentInstance {
    pre: AgentPre<GuestState>,
    limits: GuestLimits,
    config: Vec<(String, String)>,
    tag: LogTag,
    live: Option<(Store<GuestState>, Agent)>,
}

impl AgentInstance {
    /// Instantiates from `pre` and calls the guest's `init` with `config`.
    pub(crate) async fn new(
        pre: AgentPre<GuestState>,
        limits: GuestLimits,
        config: Vec<(String, String)>,
        tag: LogTag,
    ) -> Result<Self, CallError> {
        let mut instance = AgentInstance {
            pre,
            limits,
            config,
            tag,
            live: None,
        };
        instance.start().await?;
        Ok(instance)
    }

    /// The tag this instance logs under.
    pub fn tag(&self) -> &LogTag {
        &self.tag
    }

    /// Creates the store and instance, then runs `init`.
    async fn start(&mut self) -> Result<(), CallError> {
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = GuestState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes: self.limits.memory_bytes,
                table_elements: self.limits.table_elements,
            },
            deadline: Instant::now() + self.limits.call_timeout,
            emit: None,
            tag: self.tag.clone(),
            logs_this_call: 0,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        self.arm(&mut store);
        let agent = match self.pre.instantiate_async(&mut store).await {
            Ok(agent) => agent,
            Err(e) => return Err(self.classify(e)),
        };
        let init = agent.call_init(&mut store, &self.config).await;
        match init {
            Ok(Ok(())) => {
                self.live = Some((store, agent));
                Ok(())
            }
            Ok(Err(refusal)) => Err(CallError::Init(refusal)),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Starts the per-call budget: deadline and log quota.
    fn arm(&self, store: &mut Store<GuestState>) {
        let data = store.data_mut();
        data.deadline = Instant::now() + self.limits.call_timeout;
        data.logs_this_call = 0;
        store.set_epoch_deadline(1);
    }

    fn classify(&self, e: wasmtime::Error) -> CallError {
        if e.downcast_ref::<DeadlineExceeded>().is_some() {
            return CallError::DeadlineExceeded(self.limits.call_timeout);
        }
        if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
            return CallError::MemoryLimit(m.to_string());
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => CallError::StackOverflow,
            Some(Trap::UnreachableCodeReached) => CallError::GuestPanic,
            Some(trap) => CallError::Trap(trap.to_string()),
            None => CallError::Trap(format!("{e:#}")),
        }
    }

    /// Runs one export call under the deadline. On any failure the
    /// instance is dropped and made again before returning, so the next
    /// call finds a working agent.
    async fn run<R>(
        &mut self,
        emit: Option<EmitFn>,
        call: impl AsyncFnOnce(&Agent, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if self.live.is_none() {
            self.start()
                .await
                .map_err(|e| CallError::Unavailable(e.to_string()))?;
        }
        let limits = self.limits;
        let (store, agent) = self.live.as_mut().expect("started above");
        let data = store.data_mut();
        data.deadline = Instant::now() + limits.call_timeout;
        data.logs_this_call = 0;
        data.emit = emit;
        store.set_epoch_deadline(1);
        // The epoch callback traps a guest that computes past its
        // deadline; the timeout also covers one blocked in a host call.
        let outcome =
            tokio::time::timeout(limits.call_timeout + EPOCH_SLACK, call(agent, store)).await;
        store.data_mut().emit = None;
        let error = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => self.classify(e),
            Err(_elapsed) => CallError::DeadlineExceeded(limits.call_timeout),
        };
        self.recycle(&error).await;
        Err(error)
    }

    /// Replaces a trapped instance with a fresh one (same config).
    async fn recycle(&mut self, cause: &CallError) {
        self.live = None;
        let started = Instant::now();
        let outcome = self.start().await;
        let LogTag {
            session,
            slot,
            component,
        } = &self.tag;
        match outcome {
            Ok(()) => tracing::warn!(
                session = %session, slot, component = %component, %cause,
                recycle_us = started.elapsed().as_micros() as u64,
                "agent trapped; instance recycled"
            ),
            Err(e) => tracing::error!(
                session = %session, slot, component = %component, %cause, error = %e,
                "agent trapped and could not be restarted; will retry on the next call"
            ),
        }
    }

    /// The guest's `describe`.
    pub async fn describe(&mut self) -> Result<guest::Info, CallError> {
        self.run(None, async |agent, store| agent.call_describe(store).await)
            .await
    }

    /// The guest's `handle`; `emit` receives its progress updates.
    pub async fn handle(
        &mut self,
        req: &guest::Request,
        emit: EmitFn,
    ) -> Result<Result<guest::Update, String>, CallError> {
        self.run(Some(emit), async |agent, store| {
            agent.call_handle(store, req).await
        })
        .await
    }

    /// The guest's `cancel`.
    pub async fn cancel(&mut self, task_id: &str) -> Result<(), CallError> {
        self.run(None, async |agent, store| {
            agent.call_cancel(store, task_id).await
        })
        .await
    }
}

/// How long past the deadline the host waits for a guest blocked in a
/// host call before it gives up on the call.
const EPOCH_SLACK: Duration = Duration::from_millis(500);
