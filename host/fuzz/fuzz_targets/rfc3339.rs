//! Timestamps as `ListTasks` takes them (`statusTimestampAfter`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(ms) = a2a_sandbox::clock::parse_rfc3339(text) {
            // What parses also formats.
            let _ = a2a_sandbox::clock::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
            );
        }
    }
});
