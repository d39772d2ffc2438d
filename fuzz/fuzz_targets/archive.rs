//! The archive (zip) reader: the input is the archive file; every entry is looked up and read
//! (at most 1 MiB each), as `repo/contents` and `/download` do.
#![no_main]

use std::io::{Read, Write};

use aiida_rest::storage::repository::archive::ArchiveRepo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(data).unwrap();
    file.flush().unwrap();
    let Ok(repo) = ArchiveRepo::open(file.path()) else { return };
    let zip = repo.zip_archive();
    let names: Vec<String> = zip.file_names().take(64).map(str::to_owned).collect();
    for name in names {
        if let Some(key) = name.strip_prefix("repo/") {
            let _ = repo.object_size(key);
        }
        if let Ok(reader) = repo.open_entry(&name) {
            let mut sink = Vec::new();
            let _ = reader.take(1 << 20).read_to_end(&mut sink);
        }
    }
});
