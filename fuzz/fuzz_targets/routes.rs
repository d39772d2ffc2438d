//! The v4 path router (`/api/v4/nodes/<uuid>/repo/contents`, ...), with posting on and off.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        let _ = aiida_rest::http::v4::routes::parse(path, true);
        let _ = aiida_rest::http::v4::routes::parse(path, false);
    }
});
