//! The query-string grammar of the REST API (`?id>3&attributes=true&orderby=-ctime`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = aiida_rest::http::querystring::parse(query);
    }
});
