//! Bulk work: CPU-heavy jobs one session causes that no other session
//! should wait for: reading a request of [`LARGE`] or more (a MiB of
//! nested JSON), writing out an answer that large (tens of MiB of task
//! history), handing freed memory back to the system.
//!
//! They run on a small pool of threads of their own at a lower CPU
//! priority (nice 10) than the threads that serve requests, so on a busy
//! machine the scheduler gives every session's request path the CPU first
//! and the session that asked for the bulk work waits for it (see the
//! tenancy suite's big-history and large-message cases). The pool's
//! queue is first come, first served: one session's large requests can
//! delay another's, not its small ones.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Barrier, Mutex, OnceLock};

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

/// The pool's queue, started on first use.
fn queue() -> &'static Mutex<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..THREADS {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("bulk-{n}"))
                .spawn(move || work(&rx))
                .expect("the OS starts a thread");
        }
        Mutex::new(tx)
    })
}

/// A bulk thread: lowers its own priority, then runs jobs until the
/// process ends. A job that panics is contained (logged here; its caller
/// sees [`Abandoned`]) and the thread goes on.
fn work(jobs: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match jobs.lock().map(|rx| rx.recv()) {
            Ok(Ok(job)) => job,
            _ => return,
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

/// Runs `job` on the bulk pool and waits for its result.
pub async fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Abandoned> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    queue()
        .lock()
        .map_err(|_| Abandoned)?
        .send(job)
        .map_err(|_| Abandoned)?;
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
