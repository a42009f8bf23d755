//! The process's allocator, mimalloc, and the settings that make a
//! session's memory what the process holds and its creation steady:
//! freed pages go back to the system within a quarter of a second, the
//! heap is made of small pages only, and the end of a large session
//! collects what its threads freed.
//!
//! Against glibc's malloc (one arena, mmap for large blocks, trimmed
//! after a large session), a SendMessage costs about a fifth less CPU,
//! and an idle session takes the same memory (the README's figures).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mi_option_e` has no Rust name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed pages stay with the process before they go back to
/// the system. Not at once: a large request's buffers would then be
/// given back as each is freed and the next one's faulted in afresh, and
/// that cycle (`madvise`, page faults, zeroing) was a third of the CPU
/// a 1 MiB message of nested JSON cost (6.5 -> 4.0 ms in all; 1.4-1.7
/// -> 0.6 ms of it on the threads that serve requests). What it costs:
/// an idle server holds some 10 MiB more (50 MiB against 40 after
/// start, and after sessions come and go), the same per session.
/// mimalloc's own default is a second.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// How often [`purge_in_background`] purges: a process that
/// has gone idle frees no more pages, which is when mimalloc would
/// otherwise purge, so what was freed last would stay resident.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Freed pages go back to the system `PURGE_DELAY_MS` after they are
/// freed, or at the next purge ([`purge_in_background`]).
///
/// And no transparent huge pages: mimalloc asks for them on its heap
/// (`madvise`), so where the kernel has them free, the first touch of
/// each 2 MiB zeroes all of it. A session's few hundred KiB then cost
/// one create in four a 2 MiB clear: create p99 while filling 4,000
/// sessions went from 8.2 ms to 1.8-3.2 ms without them, with the same
/// memory per session. Disabled for the process (the kernel's own
/// switch), since mimalloc's option is read before `main` runs.
///
/// Process-wide; called once at start. An error says huge pages stay on.
pub fn tune() -> std::io::Result<()> {
    // SAFETY: sets one of the allocator's process-wide options.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    // SAFETY: a prctl that sets one flag of this process; no pointers.
    match unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Starts the thread that purges every `PURGE_EVERY`. An error says
/// what was freed last may stay resident while the server is quiet.
pub fn purge_in_background() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("purge-freed".into())
        .spawn(|| {
            loop {
                std::thread::sleep(PURGE_EVERY);
                purge_freed();
            }
        })
        .map(drop)
}

/// Content a session must have held for its end to collect freed memory.
pub const COLLECT_AFTER_BYTES: usize = 4 << 20;

/// Asks for a collection: bumped by [`give_back`], seen by each runtime
/// thread when it next parks.
static COLLECTIONS_ASKED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COLLECTIONS_DONE: Cell<u64> = const { Cell::new(0) };
}

/// The runtime's `on_thread_park` hook: collects this thread's freed
/// memory if a collection was asked for since it last did. A thread's
/// heap can be collected only by that thread, and a parking thread has
/// nothing else to do; when none was asked for this is one atomic load.
pub fn collect_if_asked() {
    let asked = COLLECTIONS_ASKED.load(Ordering::Relaxed);
    if COLLECTIONS_DONE.get() != asked {
        COLLECTIONS_DONE.set(asked);
        collect_this_thread();
    }
}

/// Gives back the freed pages whose delay is over, whichever thread
/// freed them (mimalloc's arenas are the process's), and collects the
/// calling thread's heap: run on a thread that allocates nothing, that
/// is all but free, where a thread that serves requests would walk its
/// own heap's pages.
fn purge_freed() {
    // SAFETY: collects the calling thread's own heap; not forced, so only
    // pages whose purge delay is over are given back.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

/// Returns this thread's freed pages to the system; mimalloc lets only
/// the thread that owns a heap collect it.
fn collect_this_thread() {
    // SAFETY: collects the calling thread's own heap.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Hands freed memory back to the system once a large session's content
/// has been dropped (its last references go with its connections and
/// calls, just after it ends), so RSS returns to where it was: every
/// runtime thread collects its heap when it next parks (a task per
/// thread wakes the idle ones), and so does each bulk thread (large
/// requests are read there, so their content is allocated there).
pub fn give_back() {
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        COLLECTIONS_ASKED.fetch_add(1, Ordering::Relaxed);
        let threads = tokio::runtime::Handle::current().metrics().num_workers();
        for _ in 0..threads {
            tokio::spawn(tokio::task::yield_now());
        }
        let _ = crate::bulk::run_on_each_thread(collect_this_thread).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Touches and frees `mib` blocks of 1 MiB, as large requests do;
    /// the resident KiB while they were held and just after.
    fn churn(mib: usize) -> (u64, u64) {
        let blocks: Vec<Vec<u8>> = (0..mib).map(|_| vec![1u8; 1 << 20]).collect();
        let held = resident_kib();
        drop(blocks);
        (held, resident_kib())
    }

    #[test]
    fn freed_pages_stay_for_the_delay_then_the_purging_thread_gives_them_back() {
        tune().expect("tuned");
        purge_in_background().expect("purging");
        // What was freed before the delay was set is due a second later
        // (mimalloc's default); let that pass first.
        churn(8);
        std::thread::sleep(std::time::Duration::from_millis(1100));

        // Kept a moment for the next request. A purge another test's
        // frees fall due for may take them at once, so up to three tries.
        let mut tries = Vec::new();
        let just_freed = loop {
            let (held, just_freed) = churn(64);
            tries.push((held, just_freed));
            if held.saturating_sub(just_freed) < 32 << 10 {
                break just_freed;
            }
            assert!(
                tries.len() < 3,
                "freed pages went back at once: {tries:?} KiB"
            );
        };
        // Nothing else is freed meanwhile: the purging thread gives them
        // back within a purge period. A loaded machine may run it late, so
        // it has a few periods; with no purging thread they never go.
        let waited = std::time::Instant::now();
        let mut purged = resident_kib();
        while just_freed.saturating_sub(purged) < 32 << 10 && waited.elapsed() < PURGE_EVERY * 12 {
            std::thread::sleep(PURGE_EVERY / 5);
            purged = resident_kib();
        }
        assert!(
            just_freed.saturating_sub(purged) >= 32 << 10,
            "freed pages go back when their purge falls due ({just_freed} -> {purged} KiB \
             after {:?})",
            waited.elapsed()
        );
    }
}
