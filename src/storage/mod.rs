//! Opening AiiDA storage: `.aiida` archives, `core.sqlite_dos` profile folders and profiles
//! named in the AiiDA configuration. Nothing here ever writes to the user's files. A damaged
//! database file is reported at start as damaged (`SQLITE_CORRUPT`/`SQLITE_NOTADB` while
//! reading the header, the schema, `alembic_version` and the first row of each AiiDA table).
//! [`ratelog`] keeps failures that every request repeats (an unreachable database, a damaged
//! file) from flooding the log.

pub mod aiida_config;
pub mod catalog;
pub mod db;
pub mod ratelog;
pub mod repository;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::storage::db::persisted::Origin;
use crate::storage::db::{Cell, CheckError, Db, DbError, DbLimits, PgPool, SqlitePool};
use crate::storage::repository::{Repository, archive::ArchiveRepo, objectstore::Container};
use aiida_config::{DefaultProfile, ProfileStorage, PsqlDos};

/// The archive schema version this server reads (`metadata.json` `export_version`).
pub const ARCHIVE_VERSION: &str = "main_0001";
/// Profile database schema versions this server reads (`alembic_version`). `main_0002` only
/// deleted stale hash extras, so `main_0001` data reads the same.
pub const PROFILE_VERSIONS: [&str; 2] = ["main_0002", "main_0001"];

/// The demo archive shipped inside the binary, served when no storage is named.
const DEMO_ARCHIVE: &[u8] = include_bytes!("../../examples/demo.aiida");

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
    /// The database server cannot be reached or refused the connection.
    #[error("{0}")]
    Database(String),
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

impl Storage {
    /// Whether its database answers a trivial query now (`/ready`).
    pub async fn ping(&self) -> Result<(), String> {
        scalar_db(&self.db, "SELECT 1").await.map(|_| ())
    }
}

/// What the user asked to serve.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Demo,
    /// Nothing named: the default profile of the AiiDA configuration, as `verdi` picks it, or
    /// the demo archive when there is no configuration or no profile at all.
    Default,
    Path(PathBuf),
    Profile(String),
    /// A `postgresql://` URL and the disk-objectstore container of that database.
    Postgres {
        url: String,
        repository: PathBuf,
    },
}

pub async fn open(source: &Source, limits: DbLimits) -> Result<Storage, StorageError> {
    match source {
        Source::Demo => open_demo(limits).await,
        Source::Path(path) => open_path(path, limits).await,
        Source::Postgres { url, repository } => open_postgres(url, repository, limits).await,
        Source::Profile(name) => {
            let mut storage = open_profile(name, aiida_config::find_profile(name)?, limits).await?;
            storage.description = format!("profile '{name}' ({})", storage.description);
            Ok(storage)
        }
        Source::Default => match aiida_config::find_default_profile()? {
            DefaultProfile::Named { name, config_file, storage } => {
                // Nothing was named on the command line: say where the storage came from.
                let what = format!("the default profile '{name}' of {}", config_file.display());
                let mut storage = open_profile(&name, storage, limits)
                    .await
                    .map_err(|e| StorageError::Config(format!("{what}: {e}")))?;
                storage.description = format!("{what} ({})", storage.description);
                Ok(storage)
            }
            DefaultProfile::NoConfiguration(file) => {
                let mut storage = open_demo(limits).await?;
                storage.description = format!(
                    "the demo archive built into the program (no AiiDA configuration: {} does not exist)",
                    file.display()
                );
                Ok(storage)
            }
            DefaultProfile::NoProfiles(file) => {
                let mut storage = open_demo(limits).await?;
                storage.description = format!(
                    "the demo archive built into the program (the AiiDA configuration {} has no profile)",
                    file.display()
                );
                Ok(storage)
            }
        },
    }
}

async fn open_profile(name: &str, profile: ProfileStorage, limits: DbLimits) -> Result<Storage, StorageError> {
    match profile {
        ProfileStorage::SqliteDos(dir) => open_profile_folder(&dir, limits).await,
        ProfileStorage::SqliteZip(file) => open_archive(&file, limits).await,
        ProfileStorage::PsqlDos(settings) => open_psql_dos(&settings, limits).await,
        ProfileStorage::Other(backend) => Err(StorageError::Unsupported(format!(
            "profile '{name}' uses the storage backend '{backend}'; supported: core.psql_dos, core.sqlite_dos, core.sqlite_zip"
        ))),
    }
}

async fn open_demo(limits: DbLimits) -> Result<Storage, StorageError> {
    let scratch = scratch_dir()?;
    let path = scratch.path().join("demo.aiida");
    std::fs::write(&path, DEMO_ARCHIVE).map_err(|e| {
        StorageError::Config(format!(
            "cannot copy the demo archive into the temporary folder {} (TMPDIR): {e}",
            scratch.path().display()
        ))
    })?;
    let mut storage = open_archive_as(&path, limits, Origin::Unnamed).await?;
    storage.description = "the demo archive built into the program (examples/demo.aiida)".into();
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

/// Which side of [`copy_out`] failed.
#[derive(Debug)]
enum Copy {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `from` into `to`, telling a damaged source from a full or unwritable destination
/// (the temporary folder), which `std::io::copy` does not.
fn copy_out(from: &mut impl Read, to: &mut impl std::io::Write) -> Result<u64, Copy> {
    let mut buffer = vec![0u8; 64 << 10];
    let mut copied = 0;
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        to.write_all(&buffer[..n]).map_err(Copy::Write)?;
        copied += n as u64;
    }
}

/// Opens a `.aiida` archive: checks `metadata.json`, copies `db.sqlite3` out of the zip into
/// a private temporary file, and serves repository files straight from the zip.
pub async fn open_archive(path: &Path, limits: DbLimits) -> Result<Storage, StorageError> {
    open_archive_as(path, limits, Origin::Archive(path.to_path_buf())).await
}

/// [`open_archive`], named `origin` in the statistics cache folder.
async fn open_archive_as(path: &Path, limits: DbLimits, origin: Origin) -> Result<Storage, StorageError> {
    let file = File::open(path).map_err(|e| invalid(path, format!("cannot open: {e}")))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| invalid(path, format!("not a valid .aiida archive (zip): {e}")))?;
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
        let mut entry = zip.by_name("db.sqlite3").map_err(|_| invalid(path, "archive has no db.sqlite3"))?;
        let unwritable = |e: std::io::Error| {
            invalid(
                path,
                format!("cannot copy db.sqlite3 into the temporary folder {} (TMPDIR): {e}", scratch.path().display()),
            )
        };
        let mut out = File::create(&db_path).map_err(unwritable)?;
        copy_out(&mut entry, &mut out).map_err(|e| match e {
            Copy::Read(e) => invalid(path, format!("cannot extract db.sqlite3 (corrupt archive?): {e}")),
            Copy::Write(e) => unwritable(e),
        })?;
    }
    let pool = SqlitePool::open(&db_path, true, limits).map_err(|e| match e {
        CheckError::Damaged(e) => damaged(path, "its db.sqlite3", &e),
        CheckError::Failed(e) => invalid(path, format!("db.sqlite3 is not a readable SQLite database: {e}")),
    })?;
    check_aiida_tables(&pool, path).await?;
    let repo = ArchiveRepo::open(path).map_err(|e| invalid(path, e.to_string()))?;
    let db = Db::Sqlite(pool);
    db.warm_up(origin);
    Ok(Storage {
        db,
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
    let immutable = wal_without_shared_memory(&db_path);
    if immutable {
        tracing::warn!(
            "{} is in WAL mode and no writer has it open: reading it as unchanging, so that no -wal/-shm \
             files are created next to it (restart aiida-rest to see later changes)",
            db_path.display()
        );
    }
    let pool = SqlitePool::open(&db_path, immutable, limits).map_err(|e| match e {
        CheckError::Damaged(e) => damaged(&db_path, "its first page", &e),
        CheckError::Failed(e) => invalid(&db_path, format!("not a readable SQLite database: {e}")),
    })?;
    check_aiida_tables(&pool, &db_path).await?;
    let version = match pool.check_scalar("SELECT version_num FROM alembic_version").await {
        Ok(Some(version)) => version,
        Err(CheckError::Damaged(e)) => return Err(damaged(&db_path, "its alembic_version table", &e)),
        Ok(None) | Err(CheckError::Failed(_)) => {
            return Err(invalid(&db_path, "no alembic_version table: not an AiiDA 2.x profile database"));
        }
    };
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
    let db = Db::Sqlite(pool);
    db.warm_up(Origin::Profile(db_path));
    Ok(Storage {
        db,
        repo: Repository::ObjectStore(container),
        description: format!("profile folder {}", dir.display()),
        _scratch: Vec::new(),
    })
}

/// Opens the database and container of a `core.psql_dos` profile.
pub async fn open_psql_dos(settings: &PsqlDos, limits: DbLimits) -> Result<Storage, StorageError> {
    let mut config = tokio_postgres::Config::new();
    match &settings.host {
        Some(host) => {
            config.host(host);
        }
        None => add_local_sockets(&mut config),
    }
    config.port(settings.port).user(&settings.user).dbname(&settings.database);
    if let Some(password) = &settings.password {
        config.password(password);
    }
    open_pg(config, &settings.container, limits).await
}

/// Opens `postgresql://user:password@host:port/database` with the container at `repository`
/// (the container folder itself, or the folder that holds `container/`).
pub async fn open_postgres(url: &str, repository: &Path, limits: DbLimits) -> Result<Storage, StorageError> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| StorageError::Config(format!("invalid PostgreSQL URL: {e}")))?;
    if config.get_hosts().is_empty() {
        add_local_sockets(&mut config);
    }
    // Keeps the password out of the command line (and `ps`), as libpq does.
    if config.get_password().is_none()
        && let Some(password) = std::env::var_os("PGPASSWORD")
    {
        config.password(password.as_encoded_bytes());
    }
    if !repository.exists() {
        return Err(StorageError::Missing(repository.to_path_buf()));
    }
    let container = if repository.join("config.json").is_file() || !repository.join("container").is_dir() {
        repository.to_path_buf()
    } else {
        repository.join("container")
    };
    open_pg(config, &container, limits).await
}

/// No host means the server's Unix socket, in the folders Debian and upstream builds use.
fn add_local_sockets(config: &mut tokio_postgres::Config) {
    for dir in ["/var/run/postgresql", "/tmp"] {
        config.host_path(dir);
    }
}

async fn open_pg(
    config: tokio_postgres::Config,
    container_dir: &Path,
    limits: DbLimits,
) -> Result<Storage, StorageError> {
    let target = PgPool::describe(&config);
    let pool = PgPool::connect(config, limits).await.map_err(|e| {
        let reason = match e {
            DbError::Unavailable(m) | DbError::Query(m) | DbError::InvalidValue(m) => m,
            DbError::Timeout => "the connection timed out".into(),
        };
        StorageError::Database(format!("PostgreSQL {target}: {reason}"))
    })?;
    let db = Db::Postgres(pool);
    let fail = |message: String| StorageError::Database(format!("PostgreSQL {target}: {message}"));
    let n = scalar_db(
        &db,
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename IN \
         ('db_dbnode', 'db_dblink', 'db_dbuser', 'db_dbcomputer', 'db_dbgroup', 'db_dbgroup_dbnodes', 'db_dbcomment', 'db_dblog')",
    )
    .await
    .map_err(&fail)?;
    if n != "8" {
        return Err(fail("not an AiiDA database: the AiiDA tables (db_dbnode, ...) are missing".into()));
    }
    let version = scalar_db(&db, "SELECT version_num FROM alembic_version")
        .await
        .map_err(|_| fail("no alembic_version table: not an AiiDA 2.x profile database".into()))?;
    if !PROFILE_VERSIONS.contains(&version.as_str()) {
        return Err(fail(format!(
            "unsupported database schema version '{version}'; this server reads {} (run `verdi storage migrate` with a matching aiida-core)",
            PROFILE_VERSIONS.join(" or ")
        )));
    }
    let container = Container::open(container_dir).map_err(|e| invalid(container_dir, e.to_string()))?;
    // AiiDA refuses a repository that belongs to another database; so do we.
    let setting = scalar_db(&db, "SELECT val #>> '{}' FROM db_dbsetting WHERE key = 'repository|uuid'").await.ok();
    if let (Some(expected), Some(found)) = (setting, container.container_id())
        && expected != found
    {
        return Err(invalid(
            container_dir,
            format!(
                "this container (id {found}) is not the repository of {target}, which expects container id {expected}"
            ),
        ));
    }
    db.warm_up(Origin::Postgres);
    Ok(Storage {
        db,
        repo: Repository::ObjectStore(container),
        description: format!("PostgreSQL {target} with the repository {}", container_dir.display()),
        _scratch: Vec::new(),
    })
}

/// Whether the database is in WAL mode (header bytes 18-19 are 2) with no `-shm` file: a
/// read-only connection would then create `-wal` and `-shm` files next to the user's data.
/// AiiDA itself does not use WAL, so this is for databases someone converted.
fn wal_without_shared_memory(db_path: &Path) -> bool {
    let mut header = [0u8; 20];
    let is_wal =
        File::open(db_path).and_then(|mut f| f.read_exact(&mut header)).is_ok() && header[18] == 2 && header[19] == 2;
    let mut shm = db_path.as_os_str().to_owned();
    shm.push("-shm");
    is_wal && !Path::new(&shm).exists()
}

const AIIDA_TABLES: [&str; 8] = [
    "db_dbnode",
    "db_dblink",
    "db_dbuser",
    "db_dbcomputer",
    "db_dbgroup",
    "db_dbgroup_dbnodes",
    "db_dbcomment",
    "db_dblog",
];

/// The database file is damaged: say so (not that a table is missing), and how to look closer.
fn damaged(path: &Path, what: &str, error: &str) -> StorageError {
    invalid(
        path,
        format!(
            "the database is damaged: reading {what} failed ({error}); restore it from a backup \
             (`sqlite3 FILE 'PRAGMA integrity_check'` shows the extent of the damage)"
        ),
    )
}

async fn check_aiida_tables(pool: &SqlitePool, path: &Path) -> Result<(), StorageError> {
    let n = pool
        .check_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN \
             ('db_dbnode', 'db_dblink', 'db_dbuser', 'db_dbcomputer', 'db_dbgroup', 'db_dbgroup_dbnodes', 'db_dbcomment', 'db_dblog')",
        )
        .await
        .map_err(|e| match e {
            CheckError::Damaged(e) => damaged(path, "its schema", &e),
            CheckError::Failed(e) => invalid(path, e),
        })?
        .unwrap_or_default();
    if n != "8" {
        return Err(invalid(path, "not an AiiDA database: the AiiDA tables (db_dbnode, ...) are missing"));
    }
    // The first row of each table: a cheap look at the root pages (a full integrity check
    // would read the whole file), so that a damaged table is reported now, not per request.
    for table in AIIDA_TABLES {
        match pool.check_scalar(&format!("SELECT count(*) FROM (SELECT * FROM {table} NOT INDEXED LIMIT 1)")).await {
            Ok(_) => {}
            Err(CheckError::Damaged(e)) => return Err(damaged(path, &format!("its table {table}"), &e)),
            Err(CheckError::Failed(e)) => return Err(invalid(path, format!("cannot read the table {table}: {e}"))),
        }
    }
    Ok(())
}

async fn scalar_db(db: &Db, sql: &str) -> Result<String, String> {
    let mut q = db.query();
    q.push(sql);
    first_text(db.fetch_all(q).await.map_err(|e| e.to_string())?)
}

fn first_text(rows: Vec<crate::storage::db::Row>) -> Result<String, String> {
    match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
        Some(Cell::Null) | None => Err("no value".into()),
        Some(cell) => cell.into_string().ok_or_else(|| "no value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full temporary folder (`/dev/full` answers every write with ENOSPC) is a failed
    /// write, not a damaged archive; a failing source is a failed read.
    #[test]
    fn copy_out_tells_a_full_destination_from_a_damaged_source() {
        let mut full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        match copy_out(&mut &[7u8; 100_000][..], &mut full) {
            Err(Copy::Write(e)) => assert_eq!(e.raw_os_error(), Some(28), "{e}"),
            other => panic!("{other:?}"),
        }
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad CRC"))
            }
        }
        assert!(matches!(copy_out(&mut Broken, &mut Vec::new()), Err(Copy::Read(_))));
        let mut out = Vec::new();
        assert_eq!(copy_out(&mut &[1u8; 200_000][..], &mut out).unwrap(), 200_000);
        assert_eq!(out, vec![1u8; 200_000]);
    }
}
