//! Opening AiiDA storage: `.aiida` archives, `core.sqlite_dos` profile folders and profiles
//! named in the AiiDA configuration. Nothing here ever writes to the user's files.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::aiida_config::{self, ProfileStorage};
use crate::db::{Cell, Db, DbLimits, SqlitePool};
use crate::repository::{Repository, archive::ArchiveRepo, objectstore::Container};

/// The archive schema version this server reads (`metadata.json` `export_version`).
pub const ARCHIVE_VERSION: &str = "main_0001";
/// Profile database schema versions this server reads (`alembic_version`). `main_0002` only
/// deleted stale hash extras, so `main_0001` data reads the same.
pub const PROFILE_VERSIONS: [&str; 2] = ["main_0002", "main_0001"];

/// The demo archive shipped inside the binary, served when no storage is named.
const DEMO_ARCHIVE: &[u8] = include_bytes!("../examples/demo.aiida");

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Unsupported(String),
}

fn invalid(path: &Path, message: impl Into<String>) -> StorageError {
    StorageError::Invalid { path: path.to_path_buf(), message: message.into() }
}

/// An opened storage: its database and its file repository.
pub struct Storage {
    pub db: Db,
    pub repo: Repository,
    /// What is served, for logs and `/server`.
    pub description: String,
    /// Keeps the extracted archive database alive as long as the storage is open.
    _scratch: Vec<tempfile::TempDir>,
}

/// What the user asked to serve.
#[derive(Debug, Clone)]
pub enum Source {
    Demo,
    Path(PathBuf),
    Profile(String),
}

pub async fn open(source: &Source, limits: DbLimits) -> Result<Storage, StorageError> {
    match source {
        Source::Demo => open_demo(limits).await,
        Source::Path(path) => open_path(path, limits).await,
        Source::Profile(name) => match aiida_config::find_profile(name)? {
            ProfileStorage::SqliteDos(dir) => open_profile_folder(&dir, limits).await,
            ProfileStorage::SqliteZip(file) => open_archive(&file, limits).await,
            ProfileStorage::PsqlDos => Err(StorageError::Unsupported(format!(
                "profile '{name}' uses the core.psql_dos (PostgreSQL) backend, which this version of aiida-rest does not support yet"
            ))),
            ProfileStorage::Other(backend) => Err(StorageError::Unsupported(format!(
                "profile '{name}' uses the storage backend '{backend}'; supported: core.sqlite_dos, core.sqlite_zip"
            ))),
        },
    }
}

async fn open_demo(limits: DbLimits) -> Result<Storage, StorageError> {
    let scratch = scratch_dir()?;
    let path = scratch.path().join("demo.aiida");
    std::fs::write(&path, DEMO_ARCHIVE).map_err(|e| invalid(&path, e.to_string()))?;
    let mut storage = open_archive(&path, limits).await?;
    storage.description = "the demo archive (examples/demo.aiida)".into();
    storage._scratch.push(scratch);
    Ok(storage)
}

pub async fn open_path(path: &Path, limits: DbLimits) -> Result<Storage, StorageError> {
    if !path.exists() {
        return Err(StorageError::Missing(path.to_path_buf()));
    }
    if path.is_dir() {
        if path.join("database.sqlite").is_file() {
            return open_profile_folder(path, limits).await;
        }
        return Err(invalid(
            path,
            "not an AiiDA storage folder: expected database.sqlite and container/ (a core.sqlite_dos profile)",
        ));
    }
    open_archive(path, limits).await
}

fn scratch_dir() -> Result<tempfile::TempDir, StorageError> {
    tempfile::Builder::new()
        .prefix("aiida-rest-")
        .tempdir()
        .map_err(|e| StorageError::Config(format!("cannot create a temporary folder: {e}")))
}

/// Opens a `.aiida` archive: checks `metadata.json`, copies `db.sqlite3` out of the zip into
/// a private temporary file, and serves repository files straight from the zip.
pub async fn open_archive(path: &Path, limits: DbLimits) -> Result<Storage, StorageError> {
    let file = File::open(path).map_err(|e| invalid(path, format!("cannot open: {e}")))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| invalid(path, format!("not a valid .aiida archive (zip): {e}")))?;
    let metadata: serde_json::Value = {
        let mut entry = zip
            .by_name("metadata.json")
            .map_err(|_| invalid(path, "not an AiiDA archive: metadata.json is missing"))?;
        let mut text = String::new();
        entry
            .by_ref()
            .take(16 << 20)
            .read_to_string(&mut text)
            .map_err(|e| invalid(path, format!("cannot read metadata.json: {e}")))?;
        serde_json::from_str(&text).map_err(|e| invalid(path, format!("metadata.json is not valid JSON: {e}")))?
    };
    let version = metadata.get("export_version").and_then(|v| v.as_str()).unwrap_or("");
    if version != ARCHIVE_VERSION {
        let found = if version.is_empty() { "none".to_string() } else { format!("'{version}'") };
        return Err(invalid(
            path,
            format!(
                "unsupported archive version {found}; this server reads version '{ARCHIVE_VERSION}' (migrate the archive with `verdi archive migrate`)"
            ),
        ));
    }
    let scratch = scratch_dir()?;
    let db_path = scratch.path().join("db.sqlite3");
    {
        let mut entry = zip
            .by_name("db.sqlite3")
            .map_err(|_| invalid(path, "archive has no db.sqlite3"))?;
        let mut out = File::create(&db_path).map_err(|e| invalid(&db_path, e.to_string()))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| invalid(path, format!("cannot extract db.sqlite3 (corrupt archive?): {e}")))?;
    }
    let pool = SqlitePool::open(&db_path, true, limits)
        .map_err(|e| invalid(path, format!("db.sqlite3 is not a readable SQLite database: {e}")))?;
    check_aiida_tables(&pool, path).await?;
    let repo = ArchiveRepo::open(path).map_err(|e| invalid(path, e.to_string()))?;
    Ok(Storage {
        db: Db::Sqlite(pool),
        repo: Repository::Archive(repo),
        description: format!("archive {}", path.display()),
        _scratch: vec![scratch],
    })
}

/// Opens a `core.sqlite_dos` profile folder in place, read-only.
pub async fn open_profile_folder(dir: &Path, limits: DbLimits) -> Result<Storage, StorageError> {
    let db_path = dir.join("database.sqlite");
    if !db_path.is_file() {
        return Err(StorageError::Missing(db_path));
    }
    let pool = SqlitePool::open(&db_path, false, limits)
        .map_err(|e| invalid(&db_path, format!("not a readable SQLite database: {e}")))?;
    check_aiida_tables(&pool, &db_path).await?;
    let version = scalar(&pool, "SELECT version_num FROM alembic_version")
        .await
        .map_err(|_| invalid(&db_path, "no alembic_version table: not an AiiDA 2.x profile database"))?;
    if !PROFILE_VERSIONS.contains(&version.as_str()) {
        return Err(invalid(
            &db_path,
            format!(
                "unsupported database schema version '{version}'; this server reads {} (run `verdi storage migrate` with a matching aiida-core)",
                PROFILE_VERSIONS.join(" or ")
            ),
        ));
    }
    let container_dir = dir.join("container");
    let container = Container::open(&container_dir).map_err(|e| invalid(&container_dir, e.to_string()))?;
    Ok(Storage {
        db: Db::Sqlite(pool),
        repo: Repository::ObjectStore(container),
        description: format!("profile folder {}", dir.display()),
        _scratch: Vec::new(),
    })
}

async fn check_aiida_tables(pool: &SqlitePool, path: &Path) -> Result<(), StorageError> {
    let n = scalar(
        pool,
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN \
         ('db_dbnode', 'db_dblink', 'db_dbuser', 'db_dbcomputer', 'db_dbgroup', 'db_dbgroup_dbnodes', 'db_dbcomment', 'db_dblog')",
    )
    .await
    .map_err(|e| invalid(path, e))?;
    if n != "8" {
        return Err(invalid(path, "not an AiiDA database: the AiiDA tables (db_dbnode, ...) are missing"));
    }
    Ok(())
}

async fn scalar(pool: &SqlitePool, sql: &str) -> Result<String, String> {
    let mut q = crate::db::Query::new(crate::db::Dialect::Sqlite);
    q.push(sql);
    let rows = pool.fetch_all(q).await.map_err(|e| e.to_string())?;
    match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
        Some(Cell::Null) | None => Err("no value".into()),
        Some(cell) => cell.into_string().ok_or_else(|| "no value".into()),
    }
}
