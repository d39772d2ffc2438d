//! File repositories: the virtual file tree of a node (`repository_metadata`, [`tree`]) and the
//! stores holding file contents by key: a disk-objectstore container ([`objectstore`]) or the
//! `repo/` entries of a `.aiida` archive ([`archive`]).

pub mod archive;
pub mod objectstore;
mod readers;
pub mod tree;

use std::future::Future;
use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::task::JoinHandle;

pub use tree::{Entry, EntryKind, RepoTree};

/// Size of the chunks yielded by [`Repository::stream_object`] (the last one may be shorter).
pub const STREAM_CHUNK_SIZE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Absolute path, `..` component or NUL byte (client error).
    #[error("invalid repository path {0:?}: must be relative, without '..' or NUL")]
    InvalidPath(String),
    #[error("no file or directory at path {0:?}")]
    NotFound(String),
    #[error("path {0:?} is not a directory")]
    NotADirectory(String),
    #[error("path {0:?} is not a file")]
    NotAFile(String),
    /// Not a lowercase hex digest of the container's hash type; rejected before any I/O.
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("object {0} is missing from the repository")]
    MissingObject(String),
    /// From [`Repository::read_object_to_vec`].
    #[error("object {key} has {size} bytes, more than the limit of {max}")]
    TooLarge { key: String, size: u64, max: u64 },
    #[error("corrupt repository: {0}")]
    Corrupt(String),
    #[error("repository I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Where file contents live. Cheap to clone (everything is behind `Arc`s).
#[derive(Debug, Clone)]
pub enum Repository {
    ObjectStore(objectstore::Container),
    Archive(archive::ArchiveRepo),
}

impl From<objectstore::Container> for Repository {
    fn from(c: objectstore::Container) -> Self {
        Repository::ObjectStore(c)
    }
}

impl From<archive::ArchiveRepo> for Repository {
    fn from(a: archive::ArchiveRepo) -> Self {
        Repository::Archive(a)
    }
}

/// Blocking reader of one object, from either backend.
#[derive(Debug)]
pub enum ObjectReader {
    ObjectStore(objectstore::ObjectReader),
    Archive(archive::EntryReader),
}

impl ObjectReader {
    /// Uncompressed size of the object; reading yields exactly this many bytes or an error.
    pub fn size(&self) -> u64 {
        match self {
            ObjectReader::ObjectStore(r) => r.size(),
            ObjectReader::Archive(r) => r.size(),
        }
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ObjectReader::ObjectStore(r) => r.read(buf),
            ObjectReader::Archive(r) => r.read(buf),
        }
    }
}

impl Repository {
    /// Opens a disk-objectstore container directory (`<profile>/container`).
    pub fn open_container(dir: impl AsRef<Path>) -> Result<Self, RepoError> {
        objectstore::Container::open(dir).map(Repository::ObjectStore)
    }

    /// Opens a `.aiida` archive zip.
    pub fn open_archive(path: impl AsRef<Path>) -> Result<Self, RepoError> {
        archive::ArchiveRepo::open(path).map(Repository::Archive)
    }

    /// Uncompressed size of an object (blocking, but only metadata I/O).
    pub fn object_size(&self, key: &str) -> Result<u64, RepoError> {
        match self {
            Repository::ObjectStore(c) => c.object_size(key),
            Repository::Archive(a) => a.object_size(key),
        }
    }

    /// Opens an object as a blocking reader (only metadata I/O happens here).
    pub fn open_object(&self, key: &str) -> Result<ObjectReader, RepoError> {
        match self {
            Repository::ObjectStore(c) => c.open_object(key).map(ObjectReader::ObjectStore),
            Repository::Archive(a) => a.open_object(key).map(ObjectReader::Archive),
        }
    }

    /// Opens an object and returns its size and a stream of its content in chunks of at most
    /// [`STREAM_CHUNK_SIZE`] bytes, for use as an HTTP body. Lookup errors (missing object,
    /// invalid key) are returned here; read errors (e.g. corrupt data) end the stream with `Err`.
    ///
    /// The lookup (an index query and a file open) runs on the calling thread; each chunk is then
    /// read in `spawn_blocking` only when the stream is polled (which must happen within a Tokio
    /// runtime), so at most one chunk per stream is in memory and a slow client never pins a
    /// blocking-pool thread.
    pub fn stream_object(&self, key: &str) -> Result<(u64, ObjectStream), RepoError> {
        let reader = self.open_object(key)?;
        Ok((reader.size(), ReaderStream::new(reader)))
    }

    /// Reads a whole object into memory (blocking). Fails with [`RepoError::TooLarge`] without
    /// reading anything if the object has more than `max_bytes` bytes.
    pub fn read_object_to_vec(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, RepoError> {
        let reader = self.open_object(key)?;
        let size = reader.size();
        if size > max_bytes {
            return Err(RepoError::TooLarge { key: key.to_owned(), size, max: max_bytes });
        }
        let mut out = Vec::with_capacity(size as usize);
        // The reader fails on a length mismatch itself; the limit is a second guard.
        reader.take(max_bytes.saturating_add(1)).read_to_end(&mut out).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => RepoError::Corrupt(format!("object {key}: {e}")),
            _ => RepoError::Io(e),
        })?;
        Ok(out)
    }
}

/// Stream of an object's content, see [`Repository::stream_object`].
pub type ObjectStream = ReaderStream<ObjectReader>;

/// Turns a blocking reader into a stream of chunks of at most [`STREAM_CHUNK_SIZE`] bytes.
/// Each chunk is read in `spawn_blocking` when the stream is polled, so at most one chunk is
/// buffered. Dropping the stream mid-read lets the pending chunk read finish in the background.
#[derive(Debug)]
pub struct ReaderStream<R> {
    state: StreamState<R>,
}

type ChunkRead<R> = (R, Vec<u8>, io::Result<usize>);

#[derive(Debug)]
enum StreamState<R> {
    Idle(R),
    Reading(JoinHandle<ChunkRead<R>>),
    Done,
}

impl<R: Read + Send + 'static> ReaderStream<R> {
    pub fn new(reader: R) -> Self {
        ReaderStream { state: StreamState::Idle(reader) }
    }
}

// The reader is never pinned (it moves in and out of the blocking task).
impl<R> Unpin for ReaderStream<R> {}

impl<R: Read + Send + 'static> Stream for ReaderStream<R> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::mem::replace(&mut self.state, StreamState::Done) {
                StreamState::Idle(mut reader) => {
                    self.state = StreamState::Reading(tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0u8; STREAM_CHUNK_SIZE];
                        let result = read_chunk(&mut reader, &mut buf);
                        (reader, buf, result)
                    }));
                }
                StreamState::Reading(mut task) => {
                    return match Pin::new(&mut task).poll(cx) {
                        Poll::Pending => {
                            self.state = StreamState::Reading(task);
                            Poll::Pending
                        }
                        Poll::Ready(Ok((_, _, Ok(0)))) => Poll::Ready(None),
                        Poll::Ready(Ok((reader, mut buf, Ok(n)))) => {
                            buf.truncate(n);
                            self.state = StreamState::Idle(reader);
                            Poll::Ready(Some(Ok(Bytes::from(buf))))
                        }
                        Poll::Ready(Ok((_, _, Err(e)))) => Poll::Ready(Some(Err(e))),
                        Poll::Ready(Err(e)) => Poll::Ready(Some(Err(io::Error::other(e)))),
                    };
                }
                StreamState::Done => return Poll::Ready(None),
            }
        }
    }
}

/// Fills `buf` as far as possible; returns fewer bytes only at the end of the reader.
fn read_chunk(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::objectstore::tests::{fixture_dir, fixture_keys, index_object, new_container};
    use super::objectstore::{Container, ObjectLocation};
    use super::*;
    use futures_util::StreamExt;
    use std::collections::BTreeSet;
    use std::fs;
    use std::io::Write;

    /// Minimal SHA-256 (FIPS 180-4) to check `sha256(content) == key`.
    fn sha256_hex(data: &[u8]) -> String {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
            0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
            0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
            0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
            0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
            0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
            0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let mut h: [u32; 8] =
            [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
        for block in msg.chunks(64) {
            let mut w = [0u32; 64];
            for (i, word) in block.chunks(4).enumerate() {
                w[i] = u32::from_be_bytes(word.try_into().unwrap());
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
            for i in 0..64 {
                let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
                let ch = (e & f) ^ (!e & g);
                let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
                let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
                let maj = (a & b) ^ (a & c) ^ (b & c);
                let t2 = s0.wrapping_add(maj);
                hh = g;
                g = f;
                f = e;
                e = d.wrapping_add(t1);
                d = c;
                c = b;
                b = a;
                a = t1.wrapping_add(t2);
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
                *x = x.wrapping_add(y);
            }
        }
        h.iter().map(|x| format!("{x:08x}")).collect()
    }

    #[test]
    fn handles_are_shareable() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        fn sendable<T: Send + Unpin + 'static>() {}
        shareable::<Repository>();
        sendable::<ObjectReader>();
        sendable::<ObjectStream>();
    }

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(sha256_hex(&[b'a'; 1000]), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
    }

    #[test]
    fn container_and_archive_agree_and_match_hashes() {
        let store = Repository::open_container(fixture_dir().join("container")).unwrap();
        let archive =
            Repository::open_archive(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.aiida")).unwrap();
        let Repository::ObjectStore(container) = &store else { unreachable!() };
        let mut kinds = BTreeSet::new();
        for key in fixture_keys() {
            let from_store = store.read_object_to_vec(&key, 1 << 30).unwrap();
            let from_archive = archive.read_object_to_vec(&key, 1 << 30).unwrap();
            assert_eq!(from_store, from_archive, "{key}");
            assert_eq!(sha256_hex(&from_store), key);
            assert_eq!(store.object_size(&key).unwrap(), from_store.len() as u64);
            assert_eq!(archive.object_size(&key).unwrap(), from_store.len() as u64);
            kinds.insert(container.open_object(&key).unwrap().location());
        }
        // Every storage kind was exercised (and verified) above.
        assert_eq!(
            kinds,
            BTreeSet::from([ObjectLocation::Loose, ObjectLocation::Packed, ObjectLocation::PackedCompressed])
        );
    }

    #[test]
    fn read_to_vec_limit() {
        let store = Repository::open_container(fixture_dir().join("container")).unwrap();
        let key = fixture_keys().into_iter().next().unwrap();
        let size = store.object_size(&key).unwrap();
        assert!(size > 0);
        assert_eq!(store.read_object_to_vec(&key, size).unwrap().len() as u64, size);
        assert!(matches!(
            store.read_object_to_vec(&key, size - 1),
            Err(RepoError::TooLarge { size: s, max, .. }) if s == size && max == size - 1
        ));
        assert!(matches!(store.read_object_to_vec(&"0".repeat(64), 10), Err(RepoError::MissingObject(_))));
    }

    #[tokio::test]
    async fn stream_fixture_objects() {
        let archive =
            Repository::open_archive(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.aiida")).unwrap();
        for key in fixture_keys() {
            let (size, stream) = archive.stream_object(&key).unwrap();
            let chunks: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
            let content: Vec<u8> = chunks.concat();
            assert_eq!(content.len() as u64, size);
            assert_eq!(sha256_hex(&content), key);
        }
        assert!(matches!(archive.stream_object(&"f".repeat(64)), Err(RepoError::MissingObject(_))));
        assert!(matches!(archive.stream_object("../x"), Err(RepoError::InvalidKey(_))));
    }

    const BIG: u64 = 50 * 1024 * 1024 + 12_345;

    /// Deterministic, compressible but not trivial content.
    fn pattern(i: u64) -> u8 {
        (i.wrapping_mul(31) ^ (i >> 11)) as u8
    }

    fn write_pattern(w: &mut impl Write, len: u64) {
        let mut buf = vec![0u8; 1 << 16];
        let mut i = 0;
        while i < len {
            let n = (len - i).min(buf.len() as u64) as usize;
            for (j, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(i + j as u64);
            }
            w.write_all(&buf[..n]).unwrap();
            i += n as u64;
        }
    }

    async fn check_stream(repo: &Repository, key: &str, expected: ObjectLocation) {
        if let Repository::ObjectStore(c) = repo {
            assert_eq!(c.open_object(key).unwrap().location(), expected);
        }
        let (size, mut stream) = repo.stream_object(key).unwrap();
        assert_eq!(size, BIG);
        let mut total = 0u64;
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= STREAM_CHUNK_SIZE);
            for (j, b) in chunk.iter().enumerate() {
                if *b != pattern(total + j as u64) {
                    panic!("content differs at byte {}", total + j as u64);
                }
            }
            total += chunk.len() as u64;
            chunks += 1;
        }
        assert_eq!(total, BIG);
        assert_eq!(chunks, BIG.div_ceil(STREAM_CHUNK_SIZE as u64));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_large_objects() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 2, "sha256");
        let loose_key = "1a".repeat(32);
        let packed_key = "2b".repeat(32);
        fs::create_dir_all(root.join("loose/1a")).unwrap();
        let mut loose = fs::File::create(root.join("loose/1a").join(&loose_key[2..])).unwrap();
        write_pattern(&mut loose, BIG);
        drop(loose);

        // Pack: a small plain object, then the big one zlib-compressed.
        let mut pack = fs::File::create(root.join("packs/0")).unwrap();
        pack.write_all(b"prefix").unwrap();
        let mut enc = flate2::write::ZlibEncoder::new(&mut pack, flate2::Compression::fast());
        write_pattern(&mut enc, BIG);
        enc.finish().unwrap();
        let end = pack.metadata().unwrap().len();
        drop(pack);
        let conn = rusqlite::Connection::open(root.join("packs.idx")).unwrap();
        index_object(&conn, &"3c".repeat(32), false, 6, 0, 6, 0);
        index_object(&conn, &packed_key, true, BIG, 6, end - 6, 0);
        drop(conn);

        let repo = Repository::from(Container::open(&root).unwrap());
        assert!(end - 6 < BIG / 4, "test data should compress");
        check_stream(&repo, &loose_key, ObjectLocation::Loose).await;
        check_stream(&repo, &packed_key, ObjectLocation::PackedCompressed).await;
        assert_eq!(repo.read_object_to_vec(&"3c".repeat(32), 6).unwrap(), b"prefix");

        // The stream does not borrow the repository.
        let (_, mut stream) = repo.stream_object(&loose_key).unwrap();
        drop(repo);
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.len(), STREAM_CHUNK_SIZE);
    }

    #[tokio::test]
    async fn stream_ends_with_error_on_corrupt_data() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_container(dir.path(), 2, "sha256");
        let key = "4d".repeat(32);
        fs::write(root.join("packs/0"), vec![7u8; 100_000]).unwrap();
        let conn = rusqlite::Connection::open(root.join("packs.idx")).unwrap();
        // Claims more bytes than the pack holds.
        index_object(&conn, &key, false, 200_000, 0, 200_000, 0);
        drop(conn);
        let repo = Repository::open_container(&root).unwrap();
        let (size, stream) = repo.stream_object(&key).unwrap();
        assert_eq!(size, 200_000);
        let items: Vec<io::Result<Bytes>> = stream.collect().await;
        let (last, ok) = items.split_last().unwrap();
        assert_eq!(ok.iter().map(|c| c.as_ref().unwrap().len()).sum::<usize>(), 65_536);
        assert_eq!(last.as_ref().unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(matches!(repo.read_object_to_vec(&key, 1 << 20), Err(RepoError::Corrupt(_))));
    }
}
