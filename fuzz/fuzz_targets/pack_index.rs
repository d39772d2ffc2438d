//! The object store's pack reading: a container whose packs.idx holds one row built from the
//! input (offset, length, size, compressed) and whose pack file is the rest of the input. The
//! object is opened and read to the end, as `repo/contents` does.
#![no_main]

use std::io::Read;

use aiida_rest::storage::repository::objectstore::Container;
use libfuzzer_sys::fuzz_target;

const KEY: &str = "5f4dcc3b5aa765d61d8327deb882cf99a2b5c1d1e0f6a7b8c9d0e1f2a3b4c5d6";

fn number(data: &mut &[u8], width: usize) -> i64 {
    let (head, rest) = data.split_at(width.min(data.len()));
    *data = rest;
    let mut bytes = [0u8; 8];
    bytes[..head.len()].copy_from_slice(head);
    // Small widths keep most values near the pack's size; wide ones reach the extremes.
    i64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let wide = rest.first().is_some_and(|b| b & 1 == 1);
    rest = rest.get(1..).unwrap_or_default();
    let width = if wide { 8 } else { 2 };
    let offset = number(&mut rest, width);
    let length = number(&mut rest, width);
    let size = number(&mut rest, width);
    let compressed = number(&mut rest, 1) & 1 == 1;
    let pack = rest;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("config.json"),
        r#"{"container_version": 1, "hash_type": "sha256", "loose_prefix_len": 2, "compression_algorithm": "zlib+1"}"#,
    )
    .unwrap();
    std::fs::create_dir(root.join("loose")).unwrap();
    std::fs::create_dir(root.join("packs")).unwrap();
    std::fs::write(root.join("packs").join("0"), pack).unwrap();
    let index = rusqlite::Connection::open(root.join("packs.idx")).unwrap();
    index
        .execute_batch(
            "CREATE TABLE db_object (id INTEGER PRIMARY KEY, hashkey VARCHAR NOT NULL UNIQUE, compressed BOOLEAN NOT NULL, \
             size INTEGER NOT NULL, \"offset\" INTEGER NOT NULL, length INTEGER NOT NULL, pack_id INTEGER NOT NULL)",
        )
        .unwrap();
    index
        .execute(
            "INSERT INTO db_object (hashkey, compressed, size, \"offset\", length, pack_id) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
            rusqlite::params![KEY, compressed, size, offset, length],
        )
        .unwrap();
    drop(index);

    let Ok(container) = Container::open(root) else { return };
    let _ = container.object_size(KEY);
    if let Ok(reader) = container.open_object(KEY) {
        let mut sink = Vec::new();
        let _ = reader.take(1 << 20).read_to_end(&mut sink);
    }
});
