//! One agent instance: a `Store` with its limits, the guest's exports,
//! and the rule that a trapped instance is replaced by a fresh one made
//! from the same `InstancePre` and config.

use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use wasmtime::component::ResourceTable;
use wasmtime::{CallHook, Store, StoreContextMut, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::guest_http::GuestHttp;

use super::guest;
use super::limits::{GuestLimits, Limiter, MemoryLimitExceeded};
use super::versions::current::a2a::agent::peers;
use super::versions::{AgentPre, Exports, current, first};
use crate::rate::TokenBucket;

/// Receives a guest's `emit` and `emit-chunk` calls during one call:
/// (task id, update, and for a piece of an artifact how it joins).
pub type EmitFn = Box<dyn FnMut(&str, guest::Update, Option<Chunk>) + Send>;

/// A piece of an artifact: whether it adds to the artifact of the same
/// id, and whether it is the last piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub append: bool,
    pub last: bool,
}

/// Longest guest log line kept; the rest is cut.
const MAX_LOG_LINE: usize = 1024;
/// A call that has run this long is a long runner; see [`fair_share`].
/// Agents answer in microseconds; a call past this is computing hard.
const LONG_RUNNER_AFTER: Duration = Duration::from_millis(2);
/// A call that starts this soon after its instance's last long runner
/// ended is a long runner from its first tick: an agent sent one long
/// call after another does not get each one's first milliseconds free.
const LONG_RUNNER_MEMORY: Duration = Duration::from_millis(100);
/// After the second trap in a row, an instance's next call waits this
/// long, doubling with each further trap up to [`MAX_TRAP_BACKOFF`]: an
/// agent that crashes on every call cannot turn recycling into a CPU
/// storm. A call that succeeds resets it.
const FIRST_TRAP_BACKOFF: Duration = Duration::from_millis(2);
const MAX_TRAP_BACKOFF: Duration = Duration::from_secs(1);

/// Turns to run for long runners: one core fewer than the machine has
/// (at least one), so short calls always find a free core.
fn long_runner_turns() -> &'static Arc<Semaphore> {
    static TURNS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    TURNS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)))
    })
}

/// The turn a long runner holds while it computes: until its next epoch
/// tick or its next call into the host, whichever comes first.
type Turn = Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>;

/// What a guest's output was refused for; counted by the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// A log line past the instance's rate.
    Log,
    /// An update past the per-call count or the size cap.
    Emit,
}

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
    #[error("response too large: the agent answered {size} bytes, the limit is {limit}")]
    ResponseTooLarge { size: usize, limit: usize },
    #[error("agent init failed: {0}")]
    Init(String),
    #[error("agent unavailable: {0}")]
    Unavailable(String),
    #[error("no room for another agent instance: {0}")]
    PoolFull(String),
}

impl CallError {
    /// A short stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::DeadlineExceeded(_) => "deadline",
            CallError::MemoryLimit(_) => "memory",
            CallError::StackOverflow => "stack_overflow",
            CallError::GuestPanic => "panic",
            CallError::Trap(_) => "trap",
            CallError::ResponseTooLarge { .. } => "response_too_large",
            CallError::Init(_) => "init",
            CallError::Unavailable(_) => "unavailable",
            CallError::PoolFull(_) => "pool_full",
        }
    }
}

/// The deadline of the current call has passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

/// Most agents one chain of calls between agents may hold.
pub const MAX_CHAIN: usize = 4;

/// Where a call comes from when another agent of the session made it:
/// the slots waiting on it (first caller first) and the time the last
/// caller has left, which the call does not outlive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallChain {
    pub waiting: Vec<u8>,
    pub budget: Option<Duration>,
}

/// The other agents of an instance's session, as `a2a:agent/peers`
/// reaches them.
pub trait Peers: Send + Sync {
    /// The session's agents, `own` marked as the asker.
    fn members(&self, own: u8) -> Vec<peers::Peer>;

    /// Sends `message` to the agent in slot `to`, as part of `chain`.
    fn call(
        &self,
        to: u8,
        message: guest::Message,
        chain: CallChain,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<guest::Reply, String>> + Send>>;
}

/// What an instance may reach outside itself.
#[derive(Clone, Default)]
pub struct Reach {
    /// Where its HTTP requests go (none: every one is refused).
    pub http: Option<Arc<GuestHttp>>,
    /// Its session's other agents (none: calls to them are refused).
    pub peers: Option<Arc<dyn Peers>>,
}

/// What a store holds for its guest.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    deadline: Instant,
    /// When the current call started.
    started: Instant,
    emit: Option<EmitFn>,
    tag: LogTag,
    limits: GuestLimits,
    emits_this_call: u32,
    logs: TokenBucket,
    on_drop: Option<DropHook>,
    /// The long-runner turn held, if any.
    turn: Turn,
    /// Whether the current call has run as a long runner.
    long_runner: bool,
    /// When the last call that ran as a long runner ended.
    last_long_runner: Option<Instant>,
    http: WasiHttpCtx,
    http_hooks: HttpHooks,
    /// The session's other agents (none: the card probe).
    peers: Option<Arc<dyn Peers>>,
    /// The slots waiting on the current call.
    waiting: Vec<u8>,
}

/// Where a guest's HTTP requests go: the agent's grants and budgets when
/// it has any, else every request is refused as not granted.
struct HttpHooks {
    gate: Option<Arc<GuestHttp>>,
    /// The current call's deadline, which no request outlives.
    deadline: Instant,
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = crate::guest_http::SendResult> + Send> {
        let (gate, deadline) = (self.gate.clone(), self.deadline);
        let first_byte = options.and_then(|o| o.first_byte_timeout);
        Box::new(async move {
            match gate {
                Some(gate) => gate.send(request, deadline, first_byte).await,
                None => Err(wasmtime_wasi_http::Error::HttpRequestDenied),
            }
        })
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http_hooks.deadline = self.deadline;
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl GuestState {
    fn dropped(&self, what: Dropped) {
        if let Some(count) = &self.on_drop {
            count(what);
        }
    }
}

/// The size of parts' content, as the response cap counts it.
fn parts_size(parts: &[guest::Part]) -> usize {
    parts
        .iter()
        .map(|p| match p {
            guest::Part::Text(t) | guest::Part::Data(t) => t.len(),
            guest::Part::File(f) => {
                f.bytes.as_ref().map_or(0, Vec::len) + f.uri.as_ref().map_or(0, String::len)
            }
        })
        .sum()
}

/// The size of an update's content, as the response cap counts it.
pub fn update_size(update: &guest::Update) -> usize {
    update.message.as_ref().map_or(0, |m| parts_size(&m.parts))
        + update
            .artifacts
            .iter()
            .map(|a| parts_size(&a.parts))
            .sum::<usize>()
}

/// The size of a reply's content, as the response cap counts it.
pub fn reply_size(reply: &guest::Reply) -> usize {
    match reply {
        guest::Reply::Message(m) => parts_size(&m.parts),
        guest::Reply::Task(update) => update_size(update),
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl current::a2a::agent::types::Host for GuestState {}

impl peers::Host for GuestState {
    fn members(&mut self) -> Vec<peers::Peer> {
        match (&self.peers, self.tag.slot) {
            (Some(peers), Some(own)) => peers.members(own),
            _ => Vec::new(),
        }
    }

    async fn call(&mut self, slot: u8, message: guest::Message) -> Result<guest::Reply, String> {
        let (Some(peers), Some(own)) = (self.peers.clone(), self.tag.slot) else {
            return Err("calls between agents work only in a session".into());
        };
        if slot == own {
            return Err("an agent cannot call itself: it would wait on its own answer".into());
        }
        let mut waiting = self.waiting.clone();
        waiting.push(own);
        if waiting.contains(&slot) {
            let chain: Vec<String> = waiting.iter().map(u8::to_string).collect();
            return Err(format!(
                "slot {slot} is already waiting in this chain of calls ({} -> {slot}): \
                 the call would wait on itself",
                chain.join(" -> ")
            ));
        }
        if waiting.len() >= MAX_CHAIN {
            return Err(format!(
                "a chain of calls between agents holds at most {MAX_CHAIN} agents"
            ));
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < MIN_PEER_BUDGET {
            return Err("no time is left in this call to call another agent".into());
        }
        let chain = CallChain {
            waiting,
            budget: Some(left),
        };
        match tokio::time::timeout(left, peers.call(slot, message, chain)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "slot {slot} did not answer within this call's remaining {left:?}"
            )),
        }
    }
}

/// Least time a call must have left to call another agent.
const MIN_PEER_BUDGET: Duration = Duration::from_millis(20);

impl first::a2a::agent::host::Host for GuestState {
    fn emit(&mut self, task_id: String, update: guest::Update) {
        current::a2a::agent::host::Host::emit(self, task_id, update)
    }

    fn log(&mut self, level: u8, text: String) {
        current::a2a::agent::host::Host::log(self, level, text)
    }
}

impl GuestState {
    /// Passes an update on, within the per-call count and size caps.
    fn emit_within_limits(&mut self, task_id: &str, update: guest::Update, chunk: Option<Chunk>) {
        self.emits_this_call += 1;
        if self.emits_this_call > self.limits.max_emits_per_call
            || update_size(&update) > self.limits.max_emit_bytes
        {
            self.dropped(Dropped::Emit);
            return;
        }
        if let Some(emit) = self.emit.as_mut() {
            emit(task_id, update, chunk);
        }
    }
}

impl current::a2a::agent::host::Host for GuestState {
    fn emit(&mut self, task_id: String, update: guest::Update) {
        self.emit_within_limits(&task_id, update, None);
    }

    fn emit_chunk(
        &mut self,
        task_id: String,
        artifact: guest::Artifact,
        append: bool,
        last_chunk: bool,
    ) {
        let update = guest::Update {
            state: guest::TaskState::Working,
            message: None,
            artifacts: vec![artifact],
        };
        let chunk = Chunk {
            append,
            last: last_chunk,
        };
        self.emit_within_limits(&task_id, update, Some(chunk));
    }

    fn log(&mut self, level: u8, mut text: String) {
        if self.logs.take().is_err() {
            self.dropped(Dropped::Log);
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
pub struct GuestInstance {
    pre: AgentPre,
    limits: GuestLimits,
    config: Vec<(String, String)>,
    tag: LogTag,
    live: Option<(Store<GuestState>, Exports)>,
    hooks: Hooks,
    reach: Reach,
    /// Traps since the last call that worked.
    traps_in_a_row: u32,
}

/// Told of guest output that was refused.
pub type DropHook = Arc<dyn Fn(Dropped) + Send + Sync>;
/// Told that a call failed and the instance was recycled: the cause and
/// how long the new instance took to start.
pub type RecycleHook = Arc<dyn Fn(&CallError, Duration) + Send + Sync>;
/// Told that a call ran as a long runner: an agent computing hard.
pub type LongRunnerHook = Arc<dyn Fn() + Send + Sync>;

/// What an instance reports to whoever keeps the numbers.
#[derive(Clone, Default)]
pub struct Hooks {
    pub on_drop: Option<DropHook>,
    pub on_recycle: Option<RecycleHook>,
    pub on_long_runner: Option<LongRunnerHook>,
}

/// Decides what a guest that reached an epoch tick does next: trap past
/// its deadline; otherwise let other work run.
///
/// A long runner ([`runs_long`]) at each tick gives back its turn and
/// waits for the next one. Long runners share one core fewer than the
/// machine has, taking turns in order, so guests that compute without end
/// cannot starve the short calls of well-behaved agents.
fn fair_share(state: &mut GuestState) -> wasmtime::Result<UpdateDeadline> {
    let now = Instant::now();
    if now >= state.deadline {
        return Err(wasmtime::Error::new(DeadlineExceeded));
    }
    if !runs_long(state.started, now, state.last_long_runner) {
        return Ok(UpdateDeadline::Yield(1));
    }
    state.long_runner = true;
    let turn = Arc::clone(&state.turn);
    end_turn(&turn);
    Ok(UpdateDeadline::YieldCustom(
        1,
        Box::pin(async move {
            if let Ok(permit) = Arc::clone(long_runner_turns()).acquire_owned().await {
                *lock(&turn) = Some(permit);
            }
        }),
    ))
}

/// Whether a call that started at `started` is a long runner at `now`:
/// it has run past [`LONG_RUNNER_AFTER`], or it started within
/// [`LONG_RUNNER_MEMORY`] of when its instance's last long runner ended.
fn runs_long(started: Instant, now: Instant, last_long_runner: Option<Instant>) -> bool {
    now.saturating_duration_since(started) > LONG_RUNNER_AFTER
        || last_long_runner
            .is_some_and(|ended| started.saturating_duration_since(ended) < LONG_RUNNER_MEMORY)
}

/// Keeps a long runner's turn to the time it computes: a call into the
/// host gives the turn back, and the return to the guest takes one again
/// if one is free, else makes the guest's next epoch check come at once,
/// where [`fair_share`] waits in line for one.
///
/// No epoch tick comes while a guest waits in the host, so a turn kept
/// over a WASI sleep, a pending HTTP answer or a call to another agent
/// would be kept for the whole wait: a hostile agent could hold every
/// turn while computing nothing, and a callee that ran long would wait
/// for its caller's turn while the caller waited for it.
fn turn_only_while_computing(
    mut ctx: StoreContextMut<'_, GuestState>,
    hook: CallHook,
) -> wasmtime::Result<()> {
    let state = ctx.data_mut();
    if !state.long_runner {
        return Ok(());
    }
    match hook {
        CallHook::CallingHost => end_turn(&state.turn),
        CallHook::ReturningFromHost => {
            let mut held = lock(&state.turn);
            if held.is_none() {
                match Arc::clone(long_runner_turns()).try_acquire_owned() {
                    Ok(permit) => *held = Some(permit),
                    Err(_) => {
                        drop(held);
                        ctx.set_epoch_deadline(0);
                    }
                }
            }
        }
        CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
    }
    Ok(())
}

/// Gives back a long runner's turn, if it holds one.
fn end_turn(turn: &Turn) {
    drop(lock(turn).take());
}

fn lock(turn: &Turn) -> std::sync::MutexGuard<'_, Option<OwnedSemaphorePermit>> {
    turn.lock().unwrap_or_else(|e| e.into_inner())
}

impl GuestInstance {
    /// Instantiates from `pre` and calls the guest's `init` with `config`.
    pub(crate) async fn new(
        pre: AgentPre,
        limits: GuestLimits,
        config: Vec<(String, String)>,
        tag: LogTag,
        hooks: Hooks,
        reach: Reach,
    ) -> Result<Self, CallError> {
        let mut instance = GuestInstance {
            pre,
            limits,
            config,
            tag,
            live: None,
            hooks,
            reach,
            traps_in_a_row: 0,
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
            started: Instant::now(),
            emit: None,
            tag: self.tag.clone(),
            limits: self.limits,
            emits_this_call: 0,
            logs: TokenBucket::new(self.limits.log_lines_per_second),
            on_drop: self.hooks.on_drop.clone(),
            turn: Turn::default(),
            long_runner: false,
            last_long_runner: None,
            http: WasiHttpCtx::new(),
            http_hooks: HttpHooks {
                gate: self.reach.http.clone(),
                deadline: Instant::now() + self.limits.call_timeout,
            },
            peers: self.reach.peers.clone(),
            waiting: Vec::new(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|mut ctx| fair_share(ctx.data_mut()));
        store.call_hook(turn_only_while_computing);
        let timeout = self.limits.call_timeout;
        arm(&mut store, timeout);
        // Instantiation and `init` run under the same deadline as any
        // call: the epoch callback traps a guest that computes too long,
        // and the timeout ends one that blocks in a host call (a sleep).
        let started = tokio::time::timeout(timeout + EPOCH_SLACK, async {
            let agent = self.pre.instantiate(&mut store).await?;
            let init = agent.init(&mut store, &self.config).await?;
            Ok::<_, wasmtime::Error>((agent, init))
        })
        .await;
        call_ended(store.data_mut(), &self.hooks);
        let stalled = || {
            CallError::Init(format!(
                "init did not return within {timeout:?}: the agent blocks or computes \
                 too long when it starts"
            ))
        };
        match started {
            Ok(Ok((agent, Ok(())))) => {
                self.live = Some((store, agent));
                Ok(())
            }
            Ok(Ok((_, Err(refusal)))) => Err(CallError::Init(refusal)),
            Ok(Err(e)) => match self.classify(e) {
                CallError::DeadlineExceeded(_) => Err(stalled()),
                other => Err(other),
            },
            Err(_elapsed) => Err(stalled()),
        }
    }

    fn classify(&self, e: wasmtime::Error) -> CallError {
        if e.downcast_ref::<DeadlineExceeded>().is_some() {
            return CallError::DeadlineExceeded(self.limits.call_timeout);
        }
        if let Some(full) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return CallError::PoolFull(full.to_string());
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
        chain: CallChain,
        call: impl AsyncFnOnce(&Exports, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if self.traps_in_a_row >= 2 {
            let doublings = (self.traps_in_a_row - 2).min(16);
            let backoff = (FIRST_TRAP_BACKOFF * 2u32.pow(doublings)).min(MAX_TRAP_BACKOFF);
            tokio::time::sleep(backoff).await;
        }
        // Starting an instance takes a future many times the size of a
        // call's: boxed, so every call's own future stays small (it is
        // moved as the call is made).
        if self.live.is_none() {
            Box::pin(self.start())
                .await
                .map_err(|e| CallError::Unavailable(e.to_string()))?;
        }
        let limits = self.limits;
        // A call from another agent gets no more than its caller has left.
        let timeout = chain
            .budget
            .map_or(limits.call_timeout, |left| left.min(limits.call_timeout));
        let (store, agent) = self.live.as_mut().expect("started above");
        arm(store, timeout);
        store.data_mut().emit = emit;
        store.data_mut().waiting = chain.waiting;
        // The epoch callback traps a guest that computes past its
        // deadline; the timeout also covers one blocked in a host call.
        let deadline = tokio::time::Instant::from_std(store.data().started) + timeout + EPOCH_SLACK;
        let outcome = {
            let call = std::pin::pin!(call(agent, store));
            by_deadline(deadline, call).await
        };
        let data = store.data_mut();
        data.emit = None;
        data.waiting = Vec::new();
        call_ended(data, &self.hooks);
        let error = match outcome {
            Ok(Ok(value)) => {
                self.traps_in_a_row = 0;
                return Ok(value);
            }
            Ok(Err(e)) => self.classify(e),
            Err(_elapsed) => CallError::DeadlineExceeded(timeout),
        };
        self.traps_in_a_row += 1;
        self.recycle(&error).await;
        Err(error)
    }

    /// Replaces a trapped instance with a fresh one (same config).
    async fn recycle(&mut self, cause: &CallError) {
        self.live = None;
        let started = Instant::now();
        let outcome = Box::pin(self.start()).await;
        if let Some(report) = &self.hooks.on_recycle {
            report(cause, started.elapsed());
        }
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
        self.run(None, CallChain::default(), async |agent, store| {
            agent.describe(store).await
        })
        .await
    }

    /// The guest's `handle`; `emit` receives its progress updates.
    /// The guest's `handle`; `chain` says which agents wait on it, when
    /// another agent of the session made the call.
    pub async fn handle(
        &mut self,
        req: &guest::Request,
        emit: EmitFn,
        chain: CallChain,
    ) -> Result<Result<guest::Reply, String>, CallError> {
        let answer = self
            .run(Some(emit), chain, async |agent, store| {
                agent.handle(store, req).await
            })
            .await?;
        let limit = self.limits.max_response_bytes;
        match answer.as_ref().map(reply_size) {
            Ok(size) if size > limit => Err(CallError::ResponseTooLarge { size, limit }),
            _ => Ok(answer),
        }
    }

    /// The guest's `cancel`.
    pub async fn cancel(&mut self, task_id: &str) -> Result<(), CallError> {
        self.run(None, CallChain::default(), async |agent, store| {
            agent.cancel(store, task_id).await
        })
        .await
    }
}

/// Ends a call (an export's or `init`'s) for the CPU's sharing: its turn
/// goes back, so an agent holds none while idle, and a call that ran as
/// a long runner is remembered and counted.
fn call_ended(state: &mut GuestState, hooks: &Hooks) {
    end_turn(&state.turn);
    if std::mem::take(&mut state.long_runner) {
        state.last_long_runner = Some(Instant::now());
        if let Some(report) = &hooks.on_long_runner {
            report();
        }
    }
}

/// Starts a call's budget: deadline, start time, emit quota.
fn arm(store: &mut Store<GuestState>, call_timeout: Duration) {
    let data = store.data_mut();
    let now = Instant::now();
    data.deadline = now + call_timeout;
    data.started = now;
    data.emits_this_call = 0;
    store.set_epoch_deadline(1);
}

/// `call`, given up at `deadline`. Most calls end on their first poll:
/// only one that does not sets a timer, which would otherwise cost every
/// call a reference to the runtime's shared timer handle, taken and
/// given back. The caller pins `call` where it lives: taken by value, it
/// would be held twice, as the argument and as the pinned copy.
async fn by_deadline<F: Future>(
    deadline: tokio::time::Instant,
    mut call: std::pin::Pin<&mut F>,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    match std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout_at(deadline, call).await,
    }
}

/// How long past the deadline the host waits for a guest blocked in a
/// host call before it gives up on the call.
const EPOCH_SLACK: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_under_its_deadline_is_held_once_by_its_caller() {
        let call = std::pin::pin!(crate::holding_4_kib(4096));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let timed = by_deadline(deadline, call);
        assert!(
            std::mem::size_of_val(&timed) < 1024,
            "{} bytes to time a call it does not hold",
            std::mem::size_of_val(&timed)
        );
        assert_eq!(timed.await, Ok(4096));
    }

    #[test]
    fn a_call_runs_long_past_its_grace_or_right_after_a_long_runner() {
        let start = Instant::now() + Duration::from_secs(1);
        let at = |ms: u64| start + Duration::from_millis(ms);
        // A call on its own is a long runner only past its grace.
        assert!(!runs_long(start, at(1), None));
        assert!(!runs_long(start, at(2), None));
        assert!(runs_long(start, at(3), None));
        // One that starts soon after the last long runner ended has no
        // grace; one that starts later has it again.
        let ended = start - Duration::from_millis(10);
        assert!(runs_long(start, at(1), Some(ended)));
        let long_ago = start - LONG_RUNNER_MEMORY - Duration::from_millis(1);
        assert!(!runs_long(start, at(1), Some(long_ago)));
    }
}
