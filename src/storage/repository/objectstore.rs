//! Read-only access to a disk-objectstore container (spec section 7).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use flate2::read::ZlibDecoder;
use percent_encoding::{AsciiSet, CONTROLS, percent_encode};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Deserialize;

use super::RepoError;
use super::readers::{CheckedReader, RangeReader, is_zlib_header, validate_hex_key};

/// Idle index connections kept for reuse.
const MAX_POOLED_CONNECTIONS: usize = 16;

/// A disk-objectstore container opened read-only. Cheap to clone.
#[derive(Clone)]
pub struct Container {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    index_path: PathBuf,
    wal_path: PathBuf,
    loose_prefix_len: usize,
    key_len: usize,
    container_id: Option<String>,
    pool: Mutex<Vec<IndexConn>>,
}

struct IndexConn {
    conn: Connection,
    /// `Some(stamp of packs.idx at open)` for `immutable=1` connections.
    immutable_stamp: Option<FileStamp>,
}

type FileStamp = (u64, Option<SystemTime>);

#[derive(Deserialize)]
struct Config {
    container_version: u64,
    hash_type: String,
    loose_prefix_len: u64,
    compression_algorithm: String,
    #[serde(default)]
    container_id: Option<String>,
}

/// Where an object was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectLocation {
    Loose,
    Packed,
    PackedCompressed,
}

#[derive(Debug, Clone, Copy)]
struct PackedLoc {
    pack_id: i64,
    offset: u64,
    length: u64,
    compressed: bool,
    size: u64,
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field("root", &self.inner.root)
            .field("container_id", &self.inner.container_id)
            .finish_non_exhaustive()
    }
}

impl Container {
    /// Opens the container at `dir`, validating `config.json` and the folder layout.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, RepoError> {
        let root = std::path::absolute(dir.as_ref())?;
        let config_path = root.join("config.json");
        let text = fs::read(&config_path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                RepoError::Corrupt(format!("{} is not a disk-objectstore container (no config.json)", root.display()))
            } else {
                RepoError::Io(e)
            }
        })?;
        let bad = |msg: String| RepoError::Corrupt(format!("{}: {msg}", config_path.display()));
        let config: Config = serde_json::from_slice(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        if config.container_version != 1 {
            return Err(bad(format!("unsupported container_version {}", config.container_version)));
        }
        let key_len = match config.hash_type.as_str() {
            "sha256" => 64,
            "sha1" => 40,
            other => return Err(bad(format!("unsupported hash_type {other:?}"))),
        };
        let loose_prefix_len = usize::try_from(config.loose_prefix_len)
            .ok()
            .filter(|&p| p < key_len)
            .ok_or_else(|| bad(format!("invalid loose_prefix_len {}", config.loose_prefix_len)))?;
        let level_ok = config
            .compression_algorithm
            .strip_prefix("zlib+")
            .and_then(|level| level.parse::<u8>().ok())
            .is_some_and(|level| level <= 9);
        if !level_ok {
            return Err(bad(format!("unsupported compression_algorithm {:?}", config.compression_algorithm)));
        }
        // sandbox/ and duplicates/ are only needed by writers, so they are not required here.
        for sub in ["loose", "packs"] {
            if !root.join(sub).is_dir() {
                return Err(RepoError::Corrupt(format!("{}: missing {sub}/ folder", root.display())));
            }
        }
        let container = Container {
            inner: Arc::new(Inner {
                index_path: root.join("packs.idx"),
                wal_path: root.join("packs.idx-wal"),
                root,
                loose_prefix_len,
                key_len,
                container_id: config.container_id,
                pool: Mutex::new(Vec::new()),
            }),
        };
        // Open the index once now so a broken packs.idx is reported at startup.
        if let Some(conn) = container.open_index()? {
            conn.conn
                .prepare("SELECT 1 FROM db_object LIMIT 1")
                .and_then(|mut s| s.exists([]))
                .map_err(|e| index_error(&container.inner.index_path, e))?;
            container.release(conn);
        }
        Ok(container)
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// `container_id` from config.json (matches the profile's `repository|uuid` setting).
    pub fn container_id(&self) -> Option<&str> {
        self.inner.container_id.as_deref()
    }

    /// Uncompressed size of an object.
    pub fn object_size(&self, key: &str) -> Result<u64, RepoError> {
        self.with_retry(key, |fresh| {
            if let Some(loc) = self.lookup_packed(key, fresh)? {
                return Ok(Some(loc.size));
            }
            match fs::metadata(self.loose_path(key)) {
                Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Opens an object for streaming; nothing is read until the reader is used.
    pub fn open_object(&self, key: &str) -> Result<ObjectReader, RepoError> {
        self.with_retry(key, |fresh| {
            if let Some(loc) = self.lookup_packed(key, fresh)? {
                let pack = self.inner.root.join("packs").join(loc.pack_id.to_string());
                match File::open(&pack) {
                    Ok(file) => return ObjectReader::packed(Arc::new(file), loc, key, &pack).map(Some),
                    // A concurrent repack may have just replaced the pack: look further.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let file = match File::open(self.loose_path(key)) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Ok(None);
            }
            Ok(Some(ObjectReader {
                size: meta.len(),
                location: ObjectLocation::Loose,
                inner: ReaderInner::Loose(file),
            }))
        })
    }

    /// Validates the key, then tries packs+loose, and once more with a fresh index snapshot
    /// (an object may have moved from loose to a pack in between; spec 7.5).
    fn with_retry<T>(
        &self,
        key: &str,
        mut attempt: impl FnMut(bool) -> Result<Option<T>, RepoError>,
    ) -> Result<T, RepoError> {
        validate_hex_key(key, self.inner.key_len)?;
        if let Some(found) = attempt(false)? {
            return Ok(found);
        }
        attempt(true)?.ok_or_else(|| RepoError::MissingObject(key.to_owned()))
    }

    fn loose_path(&self, key: &str) -> PathBuf {
        let loose = self.inner.root.join("loose");
        match self.inner.loose_prefix_len {
            0 => loose.join(key),
            p => loose.join(&key[..p]).join(&key[p..]),
        }
    }

    fn lookup_packed(&self, key: &str, fresh: bool) -> Result<Option<PackedLoc>, RepoError> {
        let pooled = if fresh {
            // Drop everything pooled: the caller wants the newest index state.
            self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()).clear();
            None
        } else {
            self.acquire()?
        };
        let (conn, was_pooled) = match pooled {
            Some(conn) => (conn, true),
            None => match self.open_index()? {
                Some(conn) => (conn, false),
                None => return Ok(None),
            },
        };
        match query_packed(&conn.conn, key) {
            Ok(found) => {
                self.release(conn);
                found
            }
            // An idle connection may have gone bad (e.g. the file was replaced): retry on a new one.
            Err(_) if was_pooled => {
                drop(conn);
                match self.open_index()? {
                    Some(conn) => {
                        let found =
                            query_packed(&conn.conn, key).map_err(|e| index_error(&self.inner.index_path, e))?;
                        self.release(conn);
                        found
                    }
                    None => Ok(None),
                }
            }
            Err(e) => Err(index_error(&self.inner.index_path, e)),
        }
    }

    /// Takes a pooled connection that is still valid for the current state of packs.idx.
    fn acquire(&self) -> Result<Option<IndexConn>, RepoError> {
        loop {
            let Some(conn) = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                return Ok(None);
            };
            match conn.immutable_stamp {
                None => return Ok(Some(conn)),
                // immutable=1 never notices changes: only reuse it while packs.idx is unchanged
                // and no writer is active.
                Some(stamp) => {
                    if !self.inner.wal_path.exists() && file_stamp(&self.inner.index_path)?.as_ref() == Some(&stamp) {
                        return Ok(Some(conn));
                    }
                }
            }
        }
    }

    fn release(&self, conn: IndexConn) {
        let mut pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_POOLED_CONNECTIONS {
            pool.push(conn);
        }
    }

    /// Opens packs.idx read-only; `None` if it does not exist (nothing packed yet).
    ///
    /// packs.idx is in WAL mode. A `mode=ro` open of a WAL database creates `-wal`/`-shm` files
    /// next to it (and leaves them behind), which must not happen to data we only read. When no
    /// `-wal` file exists, every committed transaction is in the main file, so `immutable=1`
    /// reads exactly the current state without creating files or taking locks. Since such a
    /// connection never sees later changes, [`Self::acquire`] drops it as soon as packs.idx
    /// changes or a `-wal` appears. With a `-wal` present (a writer is active, or crashed) its
    /// content must be read, which only `mode=ro` does; the writer has then already created
    /// `-shm`, so nothing new is created either.
    fn open_index(&self) -> Result<Option<IndexConn>, RepoError> {
        let path = &self.inner.index_path;
        let Some(stamp) = file_stamp(path)? else {
            return Ok(None);
        };
        let immutable = !self.inner.wal_path.exists();
        const URI_ESCAPES: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#').add(b' ');
        let uri = format!(
            "file:{}?mode=ro{}",
            percent_encode(path.as_os_str().as_bytes(), URI_ESCAPES),
            if immutable { "&immutable=1" } else { "" }
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags).map_err(|e| index_error(path, e))?;
        Ok(Some(IndexConn { conn, immutable_stamp: immutable.then_some(stamp) }))
    }
}

fn file_stamp(path: &Path) -> Result<Option<FileStamp>, RepoError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.len(), meta.modified().ok()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn index_error(path: &Path, e: rusqlite::Error) -> RepoError {
    RepoError::Io(io::Error::other(format!("{}: {e}", path.display())))
}

/// Outer error: SQLite failure; inner error: a row with impossible values.
fn query_packed(conn: &Connection, key: &str) -> rusqlite::Result<Result<Option<PackedLoc>, RepoError>> {
    let row = conn
        .prepare_cached(r#"SELECT pack_id, "offset", length, compressed, size FROM db_object WHERE hashkey = ?1"#)?
        .query_row([key], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, bool>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((pack_id, offset, length, compressed, size)) = row else {
        return Ok(Ok(None));
    };
    let (Ok(offset), Ok(length), Ok(size)) = (u64::try_from(offset), u64::try_from(length), u64::try_from(size)) else {
        return Ok(Err(RepoError::Corrupt(format!("packs.idx: negative offset/length/size for object {key}"))));
    };
    Ok(Ok(Some(PackedLoc { pack_id, offset, length, compressed, size })))
}

/// Blocking streaming reader of one object's content. Reads of packed objects are bounded to the
/// object's byte range and fail if the content is shorter or longer than the indexed size.
pub struct ObjectReader {
    size: u64,
    location: ObjectLocation,
    inner: ReaderInner,
}

enum ReaderInner {
    Loose(File),
    Packed(CheckedReader<RangeReader>),
    Compressed(CheckedReader<ZlibDecoder<RangeReader>>),
}

impl ObjectReader {
    /// Checks what can be checked without reading the object: its bytes lie within the pack
    /// file, and a compressed object starts with a zlib header.
    fn packed(pack: Arc<File>, loc: PackedLoc, key: &str, pack_path: &Path) -> Result<Self, RepoError> {
        let range = RangeReader::new(pack, loc.offset, loc.length)?;
        let what = format!("object {key} in pack {}", pack_path.display());
        range.check_within_file(&what)?;
        if loc.compressed {
            let (head, got) = range.peek::<2>()?;
            if !is_zlib_header(&head[..got]) {
                return Err(RepoError::Corrupt(format!(
                    "{what}: compressed data does not start with a zlib header (found {:02x?})",
                    &head[..got]
                )));
            }
        }
        let (location, inner) = if loc.compressed {
            let decoder = ZlibDecoder::new(range);
            (ObjectLocation::PackedCompressed, ReaderInner::Compressed(CheckedReader::new(decoder, loc.size, None)))
        } else {
            if loc.length != loc.size {
                return Err(RepoError::Corrupt(format!(
                    "packs.idx: uncompressed object with length {} != size {}",
                    loc.length, loc.size
                )));
            }
            (ObjectLocation::Packed, ReaderInner::Packed(CheckedReader::new(range, loc.size, None)))
        };
        Ok(ObjectReader { size: loc.size, location, inner })
    }

    /// Uncompressed size of the object.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn location(&self) -> ObjectLocation {
        self.location
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            ReaderInner::Loose(file) => file.read(buf),
            ReaderInner::Packed(reader) => reader.read(buf),
            ReaderInner::Compressed(reader) => reader.read(buf),
        }
    }
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("size", &self.size)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::repository::tree::RepoTree;
    use std::collections::BTreeSet;
    use std::io::Write;

    pub(crate) fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ref-profile")
    }

    /// Every object key referenced by a node of the fixture database.
    pub(crate) fn fixture_keys() -> BTreeSet<String> {
        let uri = format!("file:{}?mode=ro&immutable=1", fixture_dir().join("database.sqlite").display());
        let conn =
            Connection::open_with_flags(uri, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI).unwrap();
        let mut stmt = conn.prepare("SELECT repository_metadata FROM db_dbnode").unwrap();
        let rows = stmt.query_map([], |row| row.get::<_, Option<String>>(0)).unwrap();
        let mut keys = BTreeSet::new();
        for row in rows {
            let tree = match row.unwrap() {
                Some(text) => RepoTree::from_json_str(&text).unwrap(),
                None => RepoTree::default(),
            };
            keys.extend(tree.files().into_iter().map(|(_, k)| k.to_owned()));
        }
        keys
    }

    fn fixture_container() -> Container {
        Container::open(fixture_dir().join("container")).unwrap()
    }

    fn read_all(container: &Container, key: &str) -> (ObjectLocation, Vec<u8>) {
        let mut reader = container.open_object(key).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out.len() as u64, reader.size());
        (reader.location(), out)
    }

    #[test]
    fn fixture_has_all_kinds_and_reads_them() {
        let index = fixture_dir().join("container/packs.idx");
        let side_files_before = [index.with_extension("idx-wal").exists(), index.with_extension("idx-shm").exists()];
        let container = fixture_container();
        assert_eq!(container.container_id(), Some("033224ffd2184514ad071d5c4cb0d14b"));
        let keys = fixture_keys();
        assert!(keys.len() > 50, "only {} keys", keys.len());
        let mut kinds = BTreeSet::new();
        for key in &keys {
            let (location, content) = read_all(&container, key);
            assert_eq!(container.object_size(key).unwrap(), content.len() as u64);
            // Verified against the archive and sha256 in the parent module's tests.
            kinds.insert(location);
            let loose = container.loose_path(key).exists();
            if location == ObjectLocation::Loose {
                assert!(loose);
            }
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        // Neither the lookups nor the connection pool may leave files next to packs.idx.
        drop(container);
        if side_files_before == [false, false] {
            assert!(!index.with_extension("idx-wal").exists());
            assert!(!index.with_extension("idx-shm").exists());
        }
    }

    #[test]
    fn loose_and_packed_copies_agree() {
        // Some fixture objects are both loose and packed: compare the two copies.
        let container = fixture_container();
        let keys = fixture_keys();
        let mut compared = 0;
        for key in &keys {
            let loose = container.loose_path(key);
            if loose.exists() && matches!(read_all(&container, key).0, ObjectLocation::PackedCompressed) {
                assert_eq!(fs::read(&loose).unwrap(), read_all(&container, key).1);
                compared += 1;
            }
        }
        assert!(compared > 0);
    }

    #[test]
    fn missing_and_invalid_keys() {
        let container = fixture_container();
        let missing = "0".repeat(64);
        assert!(matches!(
            container.open_object(&missing),
            Err(RepoError::MissingObject(k)) if k == missing
        ));
        assert!(matches!(container.object_size(&missing), Err(RepoError::MissingObject(_))));
        for bad in ["../config.json", "", "ABC", &"A".repeat(64), &"a".repeat(40)] {
            assert!(matches!(container.open_object(bad), Err(RepoError::InvalidKey(_))));
            assert!(matches!(container.object_size(bad), Err(RepoError::InvalidKey(_))));
        }
    }

    #[test]
    fn invalid_key_checked_before_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 2, "sha256");
        let container = Container::open(&root).unwrap();
        fs::remove_dir_all(&root).unwrap();
        // A valid key now fails on the filesystem; invalid keys never get there.
        assert!(container.open_object(&"a".repeat(64)).is_err());
        let bad = format!("../../{}", "a".repeat(58));
        assert!(matches!(container.open_object(&bad), Err(RepoError::InvalidKey(_))));
    }

    /// Creates an empty container (with an empty packs.idx in WAL mode) under `parent`.
    pub(crate) fn new_container(parent: &Path, prefix: usize, hash: &str) -> PathBuf {
        let root = parent.join("container");
        for sub in ["loose", "packs", "sandbox", "duplicates"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        fs::write(
            root.join("config.json"),
            format!(
                r#"{{"container_version": 1, "loose_prefix_len": {prefix}, "pack_size_target": 4294967296, "hash_type": "{hash}", "container_id": "00112233445566778899aabbccddeeff", "compression_algorithm": "zlib+1"}}"#
            ),
        )
        .unwrap();
        let conn = Connection::open(root.join("packs.idx")).unwrap();
        conn.execute_batch(
            r#"PRAGMA journal_mode=wal;
            CREATE TABLE db_object (
              id INTEGER NOT NULL, hashkey VARCHAR NOT NULL, compressed BOOLEAN NOT NULL,
              size INTEGER NOT NULL, "offset" INTEGER NOT NULL, length INTEGER NOT NULL,
              pack_id INTEGER NOT NULL, PRIMARY KEY (id));
            CREATE UNIQUE INDEX ix_db_object_hashkey ON db_object (hashkey);"#,
        )
        .unwrap();
        root
    }

    pub(crate) fn index_object(
        conn: &Connection,
        key: &str,
        compressed: bool,
        size: u64,
        offset: u64,
        length: u64,
        pack_id: i64,
    ) {
        conn.execute(
            r#"INSERT INTO db_object (hashkey, compressed, size, "offset", length, pack_id)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6)"#,
            rusqlite::params![key, compressed, size as i64, offset as i64, length as i64, pack_id],
        )
        .unwrap();
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn config_validation() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 2, "sha256");
        let good = fs::read_to_string(root.join("config.json")).unwrap();
        for (from, to) in [
            (r#""container_version": 1"#, r#""container_version": 2"#),
            (r#""hash_type": "sha256""#, r#""hash_type": "md5""#),
            (r#""loose_prefix_len": 2"#, r#""loose_prefix_len": 64"#),
            (r#""loose_prefix_len": 2"#, r#""loose_prefix_len": -1"#),
            (r#""zlib+1""#, r#""zstd+1""#),
            (r#""zlib+1""#, r#""zlib""#),
            (r#""hash_type": "sha256","#, ""),
        ] {
            fs::write(root.join("config.json"), good.replace(from, to)).unwrap();
            assert!(matches!(Container::open(&root), Err(RepoError::Corrupt(_))), "{to} accepted");
        }
        fs::write(root.join("config.json"), "{").unwrap();
        assert!(matches!(Container::open(&root), Err(RepoError::Corrupt(_))));
        fs::remove_file(root.join("config.json")).unwrap();
        assert!(matches!(Container::open(&root), Err(RepoError::Corrupt(_))));
        fs::write(root.join("config.json"), &good).unwrap();
        fs::remove_dir(root.join("packs")).unwrap();
        assert!(matches!(Container::open(&root), Err(RepoError::Corrupt(_))));
        fs::create_dir(root.join("packs")).unwrap();
        assert!(Container::open(&root).is_ok());
        fs::write(root.join("packs.idx"), b"not a database at all, not even close").unwrap();
        assert!(Container::open(&root).is_err());
    }

    #[test]
    fn sha1_flat_container_without_index() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 0, "sha1");
        fs::remove_file(root.join("packs.idx")).unwrap();
        let key = "a".repeat(40);
        fs::write(root.join("loose").join(&key), b"flat").unwrap();
        let container = Container::open(&root).unwrap();
        let (location, content) = read_all(&container, &key);
        assert_eq!((location, content.as_slice()), (ObjectLocation::Loose, &b"flat"[..]));
        assert!(matches!(container.open_object(&"a".repeat(64)), Err(RepoError::InvalidKey(_))));
    }

    #[test]
    fn corrupt_pack_detected() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 2, "sha256");
        let data = b"some content that is compressed in the pack".repeat(10);
        let z = zlib(&data);
        let mut pack = Vec::new();
        pack.extend_from_slice(b"plain");
        pack.extend_from_slice(&z);
        fs::write(root.join("packs/0"), &pack).unwrap();
        let conn = Connection::open(root.join("packs.idx")).unwrap();
        let (k_plain, k_short, k_size, k_bad) = ("1".repeat(64), "2".repeat(64), "3".repeat(64), "4".repeat(64));
        index_object(&conn, &k_plain, false, 5, 0, 5, 0);
        // Range past the end of the pack.
        index_object(&conn, &k_short, false, 10_000, 0, 10_000, 0);
        // Indexed size smaller than the inflated content.
        index_object(&conn, &k_size, true, 10, 5, z.len() as u64, 0);
        // Not a zlib stream.
        index_object(&conn, &k_bad, true, 5, 0, 5, 0);
        drop(conn);
        let container = Container::open(&root).unwrap();
        assert_eq!(read_all(&container, &k_plain).1, b"plain");
        // Found when the object is opened: beyond the end of the pack, no zlib header.
        for key in [&k_short, &k_bad] {
            let err = container.open_object(key).unwrap_err();
            assert!(matches!(&err, RepoError::Corrupt(m) if m.contains(key.as_str())), "{err}");
        }
        // Found while reading.
        let mut out = Vec::new();
        let err = container.open_object(&k_size).unwrap().read_to_end(&mut out).unwrap_err();
        assert!(matches!(err.kind(), io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput), "{err:?}");
    }

    #[test]
    fn sees_objects_packed_after_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 2, "sha256");
        let wal = root.join("packs.idx-wal");
        assert!(!wal.exists(), "writer closed: WAL checkpointed and removed");
        let container = Container::open(&root).unwrap();
        let key = "ab".repeat(32);
        assert!(matches!(container.open_object(&key), Err(RepoError::MissingObject(_))));

        // A writer packs the object and stays connected, so its commit lives in the WAL only.
        let data = b"packed later".to_vec();
        let z = zlib(&data);
        fs::write(root.join("packs/0"), &z).unwrap();
        let writer = Connection::open(root.join("packs.idx")).unwrap();
        index_object(&writer, &key, true, data.len() as u64, 0, z.len() as u64, 0);
        assert!(wal.exists());
        let (location, content) = read_all(&container, &key);
        assert_eq!(location, ObjectLocation::PackedCompressed);
        assert_eq!(content, data);

        // Moved from loose to a pack behind our back: found via the retry.
        let key2 = "cd".repeat(32);
        fs::create_dir_all(root.join("loose/cd")).unwrap();
        fs::write(root.join("loose/cd").join(&key2[2..]), b"loose first").unwrap();
        assert_eq!(read_all(&container, &key2).0, ObjectLocation::Loose);
        let mut pack = fs::read(root.join("packs/0")).unwrap();
        let offset = pack.len() as u64;
        pack.extend_from_slice(b"loose first");
        fs::write(root.join("packs/0"), &pack).unwrap();
        index_object(&writer, &key2, false, 11, offset, 11, 0);
        fs::remove_file(root.join("loose/cd").join(&key2[2..])).unwrap();
        let (location, content) = read_all(&container, &key2);
        assert_eq!((location, content.as_slice()), (ObjectLocation::Packed, &b"loose first"[..]));
    }

    #[test]
    fn immutable_connection_refreshed_after_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 2, "sha256");
        let container = Container::open(&root).unwrap();
        let key = "ef".repeat(32);
        fs::write(root.join("packs/0"), b"xyz").unwrap();
        {
            // Writer commits and closes: checkpointed into packs.idx, WAL removed.
            let writer = Connection::open(root.join("packs.idx")).unwrap();
            index_object(&writer, &key, false, 3, 0, 3, 0);
        }
        assert!(!root.join("packs.idx-wal").exists());
        // The pooled immutable connection no longer matches packs.idx and is dropped.
        assert!(container.acquire().unwrap().is_none());
        assert_eq!(read_all(&container, &key).1, b"xyz");
        assert!(container.acquire().unwrap().is_some());
    }
}
