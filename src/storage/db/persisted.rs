//! The [`Aggregates`] of each storage saved in a cache folder of the server's own (never in
//! the user's storage), so that a server started again answers the statistics and type trees at
//! once instead of reading every node row.
//!
//! One small JSON file per storage, named by a digest of the storage's identity: for an archive
//! its canonical path, for a profile folder the canonical path of its database file, for
//! PostgreSQL the server's system identifier, address and the database (name and oid; never a
//! user or password). The file holds the identity itself (a file of another storage or of
//! another program is ignored), the state of the storage it was computed at (for an archive the
//! file's size, times, inode and device; otherwise the database fingerprint of
//! [`super::Db::fingerprint`]) and the aggregates with the row count and largest node id they
//! cover, from which [`super::aggregates::add_appended`] adds the rows appended since. Files are
//! written to a temporary name and renamed over the old one, so a reader (another server on the
//! same folder) sees a whole file or none; a file that cannot be read, parsed or checked counts
//! as absent and is replaced. A folder that cannot be made or written is reported once and the
//! server goes on without it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::aggregates::Aggregates;

/// The format written in every file; a file of another format is ignored (and replaced).
const FORMAT: &str = "aiida-rest aggregates 1";
/// A larger file is not one of ours.
const MAX_BYTES: u64 = 64 << 20;

/// The folder of the process, set once at start-up ([`set_cache_dir`]); none until then.
static DIR: RwLock<Option<PathBuf>> = RwLock::new(None);

tokio::task_local! {
    /// The folder for the storages opened inside [`with_cache_dir`] (tests, embedding programs).
    static SCOPED: Option<PathBuf>;
}

/// Sets the cache folder of the storages this process opens from now on (`None`: none).
pub fn set_cache_dir(dir: Option<PathBuf>) {
    *DIR.write().unwrap_or_else(|e| e.into_inner()) = dir;
}

/// Runs `work` with `dir` as the cache folder of the storages it opens, whatever
/// [`set_cache_dir`] says.
pub async fn with_cache_dir<F: Future>(dir: Option<PathBuf>, work: F) -> F::Output {
    SCOPED.scope(dir, work).await
}

/// The cache folder for a storage opened now.
pub fn cache_dir() -> Option<PathBuf> {
    SCOPED.try_with(Clone::clone).unwrap_or_else(|_| DIR.read().unwrap_or_else(|e| e.into_inner()).clone())
}

/// The default cache folder: `$XDG_CACHE_HOME/aiida-rest`, else `$HOME/.cache/aiida-rest`
/// (relative values are ignored, as the XDG rules say); `None` without either.
pub fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("aiida-rest"))
}

/// What a storage is, as its opener knows it.
#[derive(Debug, Clone, Default)]
pub enum Origin {
    /// Nothing to name it by (the built-in demo): not saved.
    #[default]
    Unnamed,
    /// An archive file (its database is an extracted copy that never changes).
    Archive(PathBuf),
    /// The SQLite database file of a profile folder.
    Profile(PathBuf),
    /// A PostgreSQL database (named by what its server says, see [`postgres_identity`]).
    Postgres,
}

impl Origin {
    /// Whether the rows may have grown since an earlier state (an archive replaced by another
    /// file is another set of nodes altogether).
    pub fn appendable(&self) -> bool {
        !matches!(self, Origin::Archive(_))
    }

    /// The identity and, for an archive, its state, read now, as the storage opens (an
    /// archive's state is that of the file that was opened). A profile's state is the database
    /// fingerprint, except for one read as unchanging (`frozen`: a WAL database no writer has
    /// open), whose fingerprint says nothing of its content: its state is that of its files then.
    /// `None` for a storage that is not saved or whose file is gone.
    pub fn identity(&self, frozen: bool) -> Option<(String, Option<String>)> {
        match self {
            Origin::Unnamed | Origin::Postgres => None,
            Origin::Archive(path) => {
                let path = std::fs::canonicalize(path).ok()?;
                let stamp = file_stamp(&path)?;
                Some((format!("archive {}", path.display()), Some(stamp)))
            }
            Origin::Profile(path) => {
                let path = std::fs::canonicalize(path).ok()?;
                let stamp = frozen.then(|| {
                    let mut wal = path.as_os_str().to_owned();
                    wal.push("-wal");
                    format!(
                        "files {} / {}",
                        file_stamp(&path).unwrap_or_default(),
                        file_stamp(Path::new(&wal)).unwrap_or_default()
                    )
                });
                Some((format!("sqlite {}", path.display()), stamp))
            }
        }
    }
}

/// What tells a file apart from another one at the same path: size, modification and change
/// times (ns), inode and device.
pub fn file_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(format!(
        "{} {}.{:09} {}.{:09} {} {}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino(),
        meta.dev()
    ))
}

/// The SQL of a PostgreSQL database's identity; the system identifier comes apart
/// ([`POSTGRES_SYSTEM_ID`]), as some servers let only administrators read it.
pub const POSTGRES_IDENTITY: &str = "SELECT current_database() || ' ' || \
     (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())::text || ' ' || \
     coalesce(host(inet_server_addr()), 'socket') || ':' || coalesce(inet_server_port()::text, '') || ' ' || \
     current_schema()";
/// The SQL of the PostgreSQL cluster's system identifier (unique per `initdb`).
pub const POSTGRES_SYSTEM_ID: &str = "SELECT system_identifier::text FROM pg_catalog.pg_control_system()";

/// The identity of a PostgreSQL database from the answers of [`POSTGRES_SYSTEM_ID`] (if it
/// could be read) and [`POSTGRES_IDENTITY`].
pub fn postgres_identity(system_id: Option<&str>, database: &str) -> String {
    format!("postgres {} {database}", system_id.unwrap_or("-"))
}

#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    identity: String,
    state: String,
    aggregates: Aggregates,
}

/// The file name of `identity`: a 64-bit FNV-1a digest (the identity inside tells collisions
/// apart).
fn file_name(identity: &str) -> String {
    let digest =
        identity.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("aggregates-{digest:016x}.json")
}

/// The state and aggregates saved for `identity` in `dir`, if a sound file of ours holds them.
pub fn load(dir: &Path, identity: &str) -> Option<(String, Aggregates)> {
    let path = dir.join(file_name(identity));
    let file = std::fs::File::open(&path).ok()?;
    if file.metadata().ok()?.len() > MAX_BYTES {
        return None;
    }
    let saved: Saved = match serde_json::from_reader(std::io::BufReader::new(file)) {
        Ok(saved) => saved,
        Err(e) => {
            tracing::debug!("ignoring the cache file {}: {e}", path.display());
            return None;
        }
    };
    if saved.format != FORMAT || saved.identity != identity || !sound(&saved.aggregates) {
        tracing::debug!("ignoring the cache file {}: not the aggregates of {identity}", path.display());
        return None;
    }
    Some((saved.state, saved.aggregates))
}

/// Whether the counts agree with each other, as any computed ones do.
fn sound(a: &Aggregates) -> bool {
    let types: i64 = a.types.iter().map(|t| t.1).sum();
    let full: i64 = a.full.iter().map(|t| t.2).sum();
    let days: i64 = a.days.iter().map(|t| t.1).sum();
    let all = a.types.iter().map(|t| t.1).chain(a.days.iter().map(|t| t.1)).chain(a.full.iter().map(|t| t.2));
    let positive = all.clone().all(|n| n > 0);
    positive && types == a.count && full == a.count && days <= a.count && (a.count == 0) == a.max_id.is_none()
}

/// Saves `aggregates` of `identity` at `state` into `dir` (made if missing), atomically. A
/// failure is logged once per folder.
pub fn store(dir: &Path, identity: &str, state: &str, aggregates: &Aggregates) {
    if let Err(e) = try_store(dir, identity, state, aggregates) {
        static WARNED: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Default::default);
        if WARNED.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_path_buf()) {
            tracing::warn!(
                "cannot write the statistics cache into {} ({e}); going on without it (see --cache-dir)",
                dir.display()
            );
        }
    }
}

fn try_store(dir: &Path, identity: &str, state: &str, aggregates: &Aggregates) -> std::io::Result<()> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let saved =
        Saved { format: FORMAT.into(), identity: identity.into(), state: state.into(), aggregates: aggregates.clone() };
    let text = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
    let name = file_name(identity);
    // Unique among processes and among the storages of this one.
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed)));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        // Not synced to the disk: after a crash a file left empty or cut short is ignored and
        // written again, as any damaged one (a sync held the answers up by tens of ms).
        file.write_all(&text)?;
        std::fs::rename(&temp, dir.join(&name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Aggregates {
        Aggregates {
            types: vec![(Some("data.Int.".into()), 2), (Some("process.P.".into()), 1)],
            days: vec![(Some("2024-01-02".into()), 3)],
            full: vec![(Some("data.Int.".into()), None, 2), (Some("process.P.".into()), Some("x".into()), 1)],
            count: 3,
            max_id: Some(7),
            max_uuid: Some("u7".into()),
        }
    }

    #[test]
    fn a_saved_file_is_read_back_for_its_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("made/on/demand");
        store(&sub, "sqlite /a", "s1", &sample());
        assert_eq!(load(&sub, "sqlite /a"), Some(("s1".to_string(), sample())));
        assert_eq!(load(&sub, "sqlite /b"), None);
        // Saving again replaces the file; no temporary file is left.
        store(&sub, "sqlite /a", "s2", &sample());
        assert_eq!(load(&sub, "sqlite /a").unwrap().0, "s2");
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 1);
    }

    #[test]
    fn damaged_truncated_and_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name("sqlite /a"));
        store(dir.path(), "sqlite /a", "s", &sample());
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        assert_eq!(load(dir.path(), "sqlite /a"), None, "truncated");
        std::fs::write(&path, b"\x00\xffnot json").unwrap();
        assert_eq!(load(dir.path(), "sqlite /a"), None, "binary");
        // Another storage's file under this name (a digest collision), another format, counts
        // that do not add up.
        let text = String::from_utf8(whole).unwrap();
        std::fs::write(&path, text.replace("sqlite /a", "sqlite /z")).unwrap();
        assert_eq!(load(dir.path(), "sqlite /a"), None, "identity");
        std::fs::write(&path, text.replace(FORMAT, "aiida-rest aggregates 0")).unwrap();
        assert_eq!(load(dir.path(), "sqlite /a"), None, "format");
        std::fs::write(&path, text.replace("\"count\":3", "\"count\":4")).unwrap();
        assert_eq!(load(dir.path(), "sqlite /a"), None, "counts");
        // And a sound file again is read.
        std::fs::write(&path, &text).unwrap();
        assert!(load(dir.path(), "sqlite /a").is_some());
    }

    #[test]
    fn an_unwritable_folder_is_survived() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be: nothing can be made under it, even as root.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let under = blocker.join("cache");
        store(&under, "sqlite /a", "s", &sample());
        store(&under, "sqlite /a", "s", &sample());
        assert_eq!(load(&under, "sqlite /a"), None);
    }

    #[test]
    fn an_archive_replaced_by_another_file_has_another_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.aiida");
        std::fs::write(&path, b"first").unwrap();
        let (identity, state) = Origin::Archive(path.clone()).identity(false).unwrap();
        // Same size, same modification time, another file renamed over it.
        let other = dir.path().join("b.aiida");
        std::fs::write(&other, b"other").unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(&other).unwrap().set_modified(mtime).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let (identity2, state2) = Origin::Archive(path).identity(false).unwrap();
        assert_eq!(identity, identity2);
        assert_ne!(state, state2);
    }

    #[tokio::test]
    async fn the_scoped_folder_wins() {
        let dir = PathBuf::from("/nonexistent/scoped");
        assert_eq!(with_cache_dir(Some(dir.clone()), async { cache_dir() }).await, Some(dir));
        assert_eq!(with_cache_dir(None, async { cache_dir() }).await, None);
    }
}
