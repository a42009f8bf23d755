//! `ListTasks` page tokens: any text is a token or refused.
#![no_main]

use a2a_sandbox::a2a::tasks::Cursor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(cursor) = Cursor::parse(text)
    {
        // A token the server reads, it can write again.
        assert_eq!(Cursor::parse(&cursor.token()), Some(cursor));
    }
});
