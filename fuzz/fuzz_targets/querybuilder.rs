//! The QueryBuilder body parser (`POST /querybuilder`), and the SQL built from what it accepts
//! on both dialects (nothing is run).
#![no_main]

use aiida_rest::query::querybuilder::{parse, sql};
use aiida_rest::storage::db::Dialect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(qb) = parse::parse_body(data) {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let _ = sql::rows_query(&qb, dialect, 100);
            let _ = sql::count_query(&qb, dialect);
        }
    }
});
