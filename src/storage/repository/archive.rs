//! Read-only access to the `repo/<key>` entries of a `.aiida` archive zip (spec section 8.1).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::DeflateDecoder;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::RepoError;
use super::readers::{CheckedReader, RangeReader, validate_hex_key};

/// Length of the sha256 keys used by archives (`key_format: sha256`).
const ARCHIVE_KEY_LEN: usize = 64;
/// Read-ahead of [`PosFile`]: the central directory is parsed with many tiny reads.
const POS_BUF_SIZE: usize = 16 * 1024;

/// A `.aiida` zip opened once; the parsed central directory is shared by all clones.
#[derive(Clone)]
pub struct ArchiveRepo {
    zip: ZipArchive<PosFile>,
    file: Arc<File>,
    path: Arc<PathBuf>,
}

impl fmt::Debug for ArchiveRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveRepo")
            .field("path", &self.path)
            .field("entries", &self.zip.len())
            .finish_non_exhaustive()
    }
}

/// Position of an entry's payload and what is needed to decode and check it.
struct EntryInfo {
    data_start: u64,
    compressed_size: u64,
    size: u64,
    crc32: u32,
    method: CompressionMethod,
}

impl ArchiveRepo {
    /// Opens the zip and parses its central directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RepoError> {
        let path = path.as_ref().to_path_buf();
        let file = Arc::new(File::open(&path)?);
        let reader = PosFile::new(file.clone())?;
        let zip = ZipArchive::new(reader).map_err(|e| zip_error(&path, e))?;
        Ok(ArchiveRepo { zip, file, path: Arc::new(path) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A clone of the parsed archive (e.g. to read `metadata.json` or `db.sqlite3`).
    pub fn zip_archive(&self) -> ZipArchive<PosFile> {
        self.zip.clone()
    }

    /// Uncompressed size of the object `repo/<key>`.
    pub fn object_size(&self, key: &str) -> Result<u64, RepoError> {
        validate_hex_key(key, ARCHIVE_KEY_LEN)?;
        match self.entry_info(&format!("repo/{key}"))? {
            Some(info) => Ok(info.size),
            None => Err(RepoError::MissingObject(key.to_owned())),
        }
    }

    /// Opens the object `repo/<key>` for streaming.
    pub fn open_object(&self, key: &str) -> Result<EntryReader, RepoError> {
        validate_hex_key(key, ARCHIVE_KEY_LEN)?;
        match self.entry_info(&format!("repo/{key}"))? {
            Some(info) => self.reader(info, &format!("object {key}")),
            None => Err(RepoError::MissingObject(key.to_owned())),
        }
    }

    /// Opens any file entry by its exact name; `NotFound(name)` if absent or a directory.
    pub fn open_entry(&self, name: &str) -> Result<EntryReader, RepoError> {
        match self.entry_info(name)? {
            Some(info) => self.reader(info, &format!("entry {name}")),
            None => Err(RepoError::NotFound(name.to_owned())),
        }
    }

    fn entry_info(&self, name: &str) -> Result<Option<EntryInfo>, RepoError> {
        let Some(index) = self.zip.index_for_name(name) else {
            return Ok(None);
        };
        // Cloning is cheap (Arc'd metadata); the data offset is cached after the first lookup.
        let mut zip = self.zip.clone();
        let entry = zip.by_index_raw(index).map_err(|e| match e {
            // A damaged local header (or one cut off) names the entry.
            ZipError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                RepoError::Corrupt(format!("{}: entry {name}: local header cut off ({e})", self.path.display()))
            }
            ZipError::Io(e) => RepoError::Io(e),
            other => RepoError::Corrupt(format!("{}: entry {name}: {other}", self.path.display())),
        })?;
        if entry.is_dir() {
            return Ok(None);
        }
        if entry.encrypted() {
            return Err(RepoError::Corrupt(format!("{}: entry {name} is encrypted", self.path.display())));
        }
        Ok(Some(EntryInfo {
            data_start: entry.data_start(),
            compressed_size: entry.compressed_size(),
            size: entry.size(),
            crc32: entry.crc32(),
            method: entry.compression(),
        }))
    }

    // The payload is decoded from our own positional reader instead of `ZipFile`, which
    // borrows the archive and so cannot be handed to another thread as an owned reader.
    // The local header was checked when the entry was looked up (its signature; the zip crate
    // finds the data after it); here, that the data lies within the file.
    fn reader(&self, info: EntryInfo, what: &str) -> Result<EntryReader, RepoError> {
        let range = RangeReader::new(self.file.clone(), info.data_start, info.compressed_size)?;
        range.check_within_file(&format!("{}: {what}", self.path.display()))?;
        let inner = match info.method {
            CompressionMethod::Stored => {
                if info.compressed_size != info.size {
                    return Err(RepoError::Corrupt(format!(
                        "{}: stored entry with compressed size {} != size {}",
                        self.path.display(),
                        info.compressed_size,
                        info.size
                    )));
                }
                EntryInner::Stored(range)
            }
            CompressionMethod::Deflated => EntryInner::Deflated(DeflateDecoder::new(range)),
            other => {
                return Err(RepoError::Corrupt(format!(
                    "{}: unsupported compression method {other}",
                    self.path.display()
                )));
            }
        };
        Ok(EntryReader { size: info.size, inner: CheckedReader::new(inner, info.size, Some(info.crc32)) })
    }
}

fn zip_error(path: &Path, e: ZipError) -> RepoError {
    match e {
        ZipError::Io(e) => RepoError::Io(e),
        other => RepoError::Corrupt(format!("{}: {other}", path.display())),
    }
}

/// Blocking streaming reader of one zip entry, checked against its size and CRC-32.
pub struct EntryReader {
    size: u64,
    inner: CheckedReader<EntryInner>,
}

enum EntryInner {
    Stored(RangeReader),
    Deflated(DeflateDecoder<RangeReader>),
}

impl Read for EntryInner {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            EntryInner::Stored(r) => r.read(buf),
            EntryInner::Deflated(r) => r.read(buf),
        }
    }
}

impl EntryReader {
    /// Uncompressed size of the entry.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for EntryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl fmt::Debug for EntryReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryReader").field("size", &self.size).finish_non_exhaustive()
    }
}

/// `Read + Seek` over a shared file using positional reads with its own cursor, so clones can be
/// used from many threads without locking. A small read-ahead buffer (not shared by clones)
/// makes the many tiny reads of zip metadata parsing cheap.
pub struct PosFile {
    file: Arc<File>,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl PosFile {
    pub fn new(file: Arc<File>) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(PosFile { file, len, pos: 0, buf: Vec::new(), buf_start: 0 })
    }
}

impl Clone for PosFile {
    fn clone(&self) -> Self {
        PosFile { file: self.file.clone(), len: self.len, pos: self.pos, buf: Vec::new(), buf_start: 0 }
    }
}

impl fmt::Debug for PosFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PosFile").field("len", &self.len).field("pos", &self.pos).finish_non_exhaustive()
    }
}

impl Read for PosFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let buffered = self.pos.checked_sub(self.buf_start).filter(|&skip| skip < self.buf.len() as u64);
        let skip = match buffered {
            Some(skip) => skip as usize,
            None if out.len() >= POS_BUF_SIZE => {
                let n = self.file.read_at(out, self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            None => {
                self.buf.resize(POS_BUF_SIZE, 0);
                let n = self.file.read_at(&mut self.buf, self.pos)?;
                self.buf.truncate(n);
                self.buf_start = self.pos;
                if n == 0 {
                    return Ok(0);
                }
                0
            }
        };
        let available = &self.buf[skip..];
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PosFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek to a negative position"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::repository::objectstore::tests::fixture_keys;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn demo_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.aiida")
    }

    fn read_entry(reader: &mut EntryReader) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn demo_objects_readable() {
        let repo = ArchiveRepo::open(demo_path()).unwrap();
        let keys = fixture_keys();
        assert!(!keys.is_empty());
        for key in &keys {
            let mut reader = repo.open_object(key).unwrap();
            let content = read_entry(&mut reader).unwrap();
            assert_eq!(content.len() as u64, reader.size());
            assert_eq!(repo.object_size(key).unwrap(), reader.size());
        }
        // Same bytes through clones used from several threads at once.
        std::thread::scope(|s| {
            for _ in 0..4 {
                let repo = repo.clone();
                let keys = &keys;
                s.spawn(move || {
                    for key in keys {
                        let mut reader = repo.open_object(key).unwrap();
                        assert_eq!(read_entry(&mut reader).unwrap().len() as u64, reader.size());
                    }
                });
            }
        });
    }

    #[test]
    fn demo_other_entries() {
        let repo = ArchiveRepo::open(demo_path()).unwrap();
        let metadata = read_entry(&mut repo.open_entry("metadata.json").unwrap()).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&metadata).unwrap();
        assert_eq!(value["export_version"], "main_0001");
        let db = repo.open_entry("db.sqlite3").unwrap();
        assert!(db.size() > 100_000);
        assert!(matches!(repo.open_entry("nope"), Err(RepoError::NotFound(_))));
        let mut zip = repo.zip_archive();
        assert!(zip.by_name("metadata.json").is_ok());
    }

    #[test]
    fn missing_and_invalid_keys() {
        let repo = ArchiveRepo::open(demo_path()).unwrap();
        let missing = "0".repeat(64);
        assert!(matches!(
            repo.open_object(&missing),
            Err(RepoError::MissingObject(k)) if k == missing
        ));
        assert!(matches!(repo.object_size(&missing), Err(RepoError::MissingObject(_))));
        for bad in ["", "../db.sqlite3", &"A".repeat(64), &"a".repeat(40)] {
            assert!(matches!(repo.open_object(bad), Err(RepoError::InvalidKey(_))));
            assert!(matches!(repo.object_size(bad), Err(RepoError::InvalidKey(_))));
        }
    }

    #[test]
    fn not_a_zip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.aiida");
        std::fs::write(&path, b"definitely not a zip file").unwrap();
        assert!(matches!(ArchiveRepo::open(&path), Err(RepoError::Corrupt(_))));
        assert!(matches!(ArchiveRepo::open(dir.path().join("missing.aiida")), Err(RepoError::Io(_))));
    }

    /// Writes a zip with a stored and a deflated object plus a directory entry.
    fn write_zip(path: &Path, stored: &[u8], deflated: &[u8]) -> (String, String) {
        let (k1, k2) = ("1".repeat(64), "2".repeat(64));
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        zip.add_directory("repo/", SimpleFileOptions::default()).unwrap();
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        zip.start_file(format!("repo/{k1}"), opts).unwrap();
        zip.write_all(stored).unwrap();
        let opts =
            SimpleFileOptions::default().compression_method(CompressionMethod::Deflated).compression_level(Some(1));
        zip.start_file(format!("repo/{k2}"), opts).unwrap();
        zip.write_all(deflated).unwrap();
        zip.finish().unwrap();
        (k1, k2)
    }

    #[test]
    fn stored_deflated_and_crc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.aiida");
        let stored = b"stored bytes".to_vec();
        let deflated: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (k1, k2) = write_zip(&path, &stored, &deflated);
        let repo = ArchiveRepo::open(&path).unwrap();
        assert_eq!(read_entry(&mut repo.open_object(&k1).unwrap()).unwrap(), stored);
        assert_eq!(read_entry(&mut repo.open_object(&k2).unwrap()).unwrap(), deflated);
        assert!(matches!(repo.open_entry("repo/"), Err(RepoError::NotFound(_))));

        // Flip a byte of the stored payload: the CRC check must catch it.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(stored.len()).position(|w| w == stored).unwrap();
        bytes[at] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let repo = ArchiveRepo::open(&path).unwrap();
        let err = read_entry(&mut repo.open_object(&k1).unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn pos_file_read_seek() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
        f.write_all(&data).unwrap();
        let mut r = PosFile::new(Arc::new(f)).unwrap();
        let mut small = [0u8; 10];
        r.seek(SeekFrom::Start(5)).unwrap();
        r.read_exact(&mut small).unwrap();
        assert_eq!(small, data[5..15]);
        let mut clone = r.clone();
        r.seek(SeekFrom::Current(-3)).unwrap();
        r.read_exact(&mut small).unwrap();
        assert_eq!(small, data[12..22]);
        clone.read_exact(&mut small).unwrap();
        assert_eq!(small, data[15..25]);
        assert_eq!(r.seek(SeekFrom::End(-4)).unwrap(), 99_996);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, data[99_996..]);
        r.seek(SeekFrom::Start(0)).unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        assert!(r.seek(SeekFrom::Current(-200_000)).is_err());
    }
}
