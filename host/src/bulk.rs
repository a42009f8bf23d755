//! Bulk work: CPU-heavy jobs one session causes that no other session
//! should wait for: reading a request of [`LARGE`] or more (a MiB of
//! nested JSON), writing out an answer that large (tens of MiB of task
//! history), handing freed memory back to the system.
//!
//! They run on a small pool of threads of their own at a lower CPU
//! priority (nice 10) than the threads that serve requests, so on a busy
//! machine the scheduler gives every session's request path the CPU first
//! and the session that asked for the bulk work waits for it (see the
//! tenancy suite's big-history and large-message cases).
//!
//! The pool takes turns between sessions: each session's jobs wait in a
//! lane of their own, and a free thread takes the next job of the next
//! lane in turn. A session that queues a hundred large requests delays
//! another session's one large request by at most one of its own jobs
//! per thread, not by all hundred. A job's lane is the session whose
//! request is being served ([`in_session`]); work outside any request,
//! such as collecting memory, shares one lane of its own.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock};

use tokio::sync::oneshot;

/// Threads in the pool: bulk jobs of different sessions overlap, but
/// never take more than this many cores.
const THREADS: usize = 2;

/// The nice value bulk threads run at (0 is the default, 19 the least).
const NICE: libc::c_int = 10;

/// Bytes of JSON that make reading or writing it bulk work
/// ([`run_if_large`]). A request or an answer this large is read or
/// written on the pool:
/// nested JSON takes some 7 ms per MiB to read into typed values on the
/// 2-core development machine, so this much is about half a millisecond,
/// the most one request may hold a request thread for it.
pub const LARGE: usize = 64 << 10;

type Job = Box<dyn FnOnce() + Send>;

/// Whose turn a job waits for: a session's id, or `None` for work no
/// session's request asked for.
type Lane = Option<Arc<str>>;

tokio::task_local! {
    /// The session whose request the current task is serving.
    static SESSION: Arc<str>;
}

/// Serves `request` for `session`: the bulk jobs it causes wait in that
/// session's lane. A plain function, not an `async fn`: an `async fn`
/// would keep `request` twice in its own state, the argument and the
/// scoped copy it awaits, and every request would move that around.
pub fn in_session<F: Future>(session: Arc<str>, request: F) -> impl Future<Output = F::Output> {
    SESSION.scope(session, request)
}

/// Jobs waiting, by lane, and the order lanes take their turns in. A
/// lane is in `turns` exactly when it has jobs waiting.
#[derive(Default)]
struct Lanes {
    waiting: HashMap<Lane, VecDeque<Job>>,
    turns: VecDeque<Lane>,
}

impl Lanes {
    fn push(&mut self, lane: Lane, job: Job) {
        let jobs = self.waiting.entry(lane.clone()).or_default();
        if jobs.is_empty() {
            self.turns.push_back(lane);
        }
        jobs.push_back(job);
    }

    /// The first job of the lane whose turn it is; that lane goes to the
    /// back of the line if it has more.
    fn next(&mut self) -> Option<Job> {
        while let Some(lane) = self.turns.pop_front() {
            let Some(jobs) = self.waiting.get_mut(&lane) else {
                continue;
            };
            let job = jobs.pop_front();
            if jobs.is_empty() {
                self.waiting.remove(&lane);
            } else {
                self.turns.push_back(lane);
            }
            if job.is_some() {
                return job;
            }
        }
        None
    }
}

/// The pool's queue: its lanes, and the signal that one has a job.
struct Queue {
    lanes: Mutex<Lanes>,
    job_waiting: Condvar,
}

/// The pool's queue, its threads started on first use.
fn queue() -> &'static Queue {
    static QUEUE: OnceLock<&'static Queue> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let queue: &'static Queue = Box::leak(Box::new(Queue {
            lanes: Mutex::default(),
            job_waiting: Condvar::new(),
        }));
        for n in 0..THREADS {
            std::thread::Builder::new()
                .name(format!("bulk-{n}"))
                .spawn(move || work(queue))
                .expect("the OS starts a thread");
        }
        queue
    })
}

/// A bulk thread: lowers its own priority, then runs jobs until the
/// process ends. A job that panics is contained (logged here; its caller
/// sees [`Abandoned`]) and the thread goes on.
fn work(queue: &Queue) {
    lower_priority();
    loop {
        let job = {
            let Ok(mut lanes) = queue.lanes.lock() else {
                return;
            };
            loop {
                if let Some(job) = lanes.next() {
                    let metrics = crate::metrics::metrics();
                    metrics.bulk_jobs_waiting.dec();
                    metrics.bulk_jobs.inc();
                    break job;
                }
                lanes = match queue.job_waiting.wait(lanes) {
                    Ok(lanes) => lanes,
                    Err(_) => return,
                };
            }
        };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a bulk job panicked; its caller gets an error");
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority with our own
    // thread id changes only this thread's nice value. Raising one's own
    // nice value needs no privilege; if it fails the thread runs at the
    // normal priority, which is only less fair.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICE);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// A bulk job ended without a result: it panicked.
#[derive(Debug, thiserror::Error)]
#[error("a bulk job panicked")]
pub struct Abandoned;

/// Runs `job` on the bulk pool, in the lane of the session being served,
/// and waits for its result.
pub async fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Abandoned> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    let lane = SESSION.try_with(Arc::clone).ok();
    let queue = queue();
    {
        let mut lanes = queue.lanes.lock().map_err(|_| Abandoned)?;
        lanes.push(lane, job);
        // Counted under the lock, so a thread that takes the job counts
        // it out after.
        crate::metrics::metrics().bulk_jobs_waiting.inc();
    }
    queue.job_waiting.notify_one();
    rx.await.map_err(|_| Abandoned)
}

/// Runs `job` where it is asked for when `size` (bytes of JSON, or the
/// memory the content holds) is under [`LARGE`], else on the pool.
pub async fn run_if_large<T: Send + 'static>(
    size: usize,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Abandoned> {
    if size < LARGE {
        return Ok(job());
    }
    run(job).await
}

/// Runs `job` once on each of the pool's threads and waits for all: for
/// what a thread can only do for itself, such as collecting its heap.
pub async fn run_on_each_thread(job: fn()) -> Result<(), Abandoned> {
    // Two of these at once could each hold one thread at its barrier,
    // waiting for the other thread forever.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    // Each run waits at the barrier until every thread holds one, so no
    // thread takes two.
    let all_taken = Arc::new(Barrier::new(THREADS));
    let runs = (0..THREADS).map(|_| {
        let all_taken = Arc::clone(&all_taken);
        run(move || {
            all_taken.wait();
            job();
        })
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_in_its_sessions_lane_is_held_once() {
        let request = || async {
            crate::holding_4_kib(()).await;
            SESSION.with(|session| session.to_string())
        };
        let alone = std::mem::size_of_val(&request());
        let scoped = in_session(Arc::from("s-1"), request());
        assert!(
            std::mem::size_of_val(&scoped) < alone + 256,
            "{} bytes to scope a {alone}-byte request",
            std::mem::size_of_val(&scoped)
        );
        assert_eq!(scoped.await, "s-1");
    }

    #[tokio::test]
    async fn jobs_run_at_a_lower_priority_and_a_panic_is_contained() {
        let nice = run(|| {
            // SAFETY: reads this thread's own nice value.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        })
        .await
        .unwrap();
        assert_eq!(nice, NICE);
        assert!(run(|| panic!("a job fails")).await.is_err());
        for _ in 0..THREADS {
            assert_eq!(run(|| 7).await.unwrap(), 7, "the threads go on");
        }
    }

    #[tokio::test]
    async fn sessions_take_turns_so_a_long_queue_does_not_hold_up_another_session() {
        static STARTED: Mutex<Vec<&str>> = Mutex::new(Vec::new());
        fn job(session: &'static str) -> impl FnOnce() + Send + 'static {
            move || {
                STARTED.lock().unwrap().push(session);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        // Twenty jobs of one session queue first, then one of another.
        let busy = in_session(
            "busy".into(),
            futures_util::future::join_all((0..20).map(|_| run(job("busy")))),
        );
        let quiet = in_session("quiet".into(), run(job("quiet")));
        let (busy, quiet) = tokio::join!(busy, quiet);
        assert!(quiet.is_ok() && busy.iter().all(Result::is_ok));
        let started = STARTED.lock().unwrap().clone();
        let before_quiet = started.iter().take_while(|s| **s == "busy").count();
        // At most one busy job per thread was running when the quiet one
        // queued, and the busy lane then had at most one more turn.
        assert!(
            before_quiet <= THREADS + 1,
            "the quiet session's job started after {before_quiet} of the busy one's: {started:?}"
        );
        assert_eq!(started.len(), 21);
    }

    #[tokio::test]
    async fn a_job_for_each_thread_runs_once_on_every_thread() {
        static RAN_ON: Mutex<Vec<std::thread::ThreadId>> = Mutex::new(Vec::new());
        fn note_thread() {
            RAN_ON.lock().unwrap().push(std::thread::current().id());
        }
        // Two at once: neither may hold a thread the other waits for.
        let (a, b) = tokio::join!(
            run_on_each_thread(note_thread),
            run_on_each_thread(note_thread)
        );
        assert!(a.is_ok() && b.is_ok());
        let ran_on = RAN_ON.lock().unwrap().clone();
        assert_eq!(ran_on.len(), 2 * THREADS);
        for thread in &ran_on {
            let times = ran_on.iter().filter(|t| *t == thread).count();
            assert_eq!(times, 2, "once on each thread per call: {ran_on:?}");
        }
    }
}
