//! Reading the AiiDA configuration (`$AIIDA_PATH`/`~/.aiida`, `config.json`) to find where a
//! profile keeps its data.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::storage::StorageError;

/// Where a profile's data lives, by storage backend.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileStorage {
    SqliteDos(PathBuf),
    SqliteZip(PathBuf),
    PsqlDos(PsqlDos),
    Other(String),
}

/// The connection settings and repository of a `core.psql_dos` profile.
#[derive(Clone, PartialEq)]
pub struct PsqlDos {
    /// `None`: the local Unix socket.
    pub host: Option<String>,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// The disk-objectstore container: `<repository_uri path>/container`.
    pub container: PathBuf,
}

impl std::fmt::Debug for PsqlDos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PsqlDos")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("container", &self.container)
            .finish()
    }
}

/// The AiiDA configuration folder, following aiida-core's `AIIDA_PATH` rules: each entry of
/// the colon-separated list names a folder that holds (or is) `.aiida`; the first existing one
/// wins, else the last one.
pub fn config_dir(aiida_path: Option<&str>, home: Option<&Path>) -> PathBuf {
    let expand = |p: &str| -> PathBuf {
        match (p.strip_prefix('~'), home) {
            (Some(rest), Some(h)) => h.join(rest.trim_start_matches('/')),
            _ => PathBuf::from(p),
        }
    };
    if let Some(list) = aiida_path {
        let candidates: Vec<PathBuf> = list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let p = expand(p);
                if p.file_name().is_some_and(|n| n == ".aiida") { p } else { p.join(".aiida") }
            })
            .collect();
        if let Some(found) = candidates.iter().find(|c| c.is_dir()) {
            return found.clone();
        }
        if let Some(last) = candidates.last() {
            return last.clone();
        }
    }
    home.map(|h| h.join(".aiida")).unwrap_or_else(|| PathBuf::from(".aiida"))
}

/// Finds profile `name` in the configuration of this environment.
pub fn find_profile(name: &str) -> Result<ProfileStorage, StorageError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let dir = config_dir(std::env::var("AIIDA_PATH").ok().as_deref(), home.as_deref());
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| StorageError::Config(format!("cannot read the AiiDA configuration {}: {e}", path.display())))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| StorageError::Config(format!("{} is not valid JSON: {e}", path.display())))?;
    profile_storage(&config, name).map_err(|msg| StorageError::Config(format!("{}: {msg}", path.display())))
}

/// Extracts the storage of profile `name` from a parsed `config.json`.
pub fn profile_storage(config: &Value, name: &str) -> Result<ProfileStorage, String> {
    let version = config.pointer("/CONFIG_VERSION/CURRENT").and_then(Value::as_i64);
    if let Some(v) = version
        && v < 9
    {
        return Err(format!("configuration version {v} is too old; run `verdi` once to migrate it"));
    }
    let profiles = config.get("profiles").and_then(Value::as_object).ok_or("no profiles defined")?;
    let Some(profile) = profiles.get(name) else {
        let mut names: Vec<&str> = profiles.keys().map(String::as_str).collect();
        names.sort_unstable();
        return Err(format!("no profile named '{name}'; known profiles: {}", names.join(", ")));
    };
    let backend = profile.pointer("/storage/backend").and_then(Value::as_str).unwrap_or("");
    let filepath = profile.pointer("/storage/config/filepath").and_then(Value::as_str);
    match backend {
        "core.sqlite_dos" => Ok(ProfileStorage::SqliteDos(PathBuf::from(
            filepath.ok_or("core.sqlite_dos profile without storage.config.filepath")?,
        ))),
        "core.sqlite_zip" => Ok(ProfileStorage::SqliteZip(PathBuf::from(
            filepath.ok_or("core.sqlite_zip profile without storage.config.filepath")?,
        ))),
        "core.psql_dos" => {
            psql_dos(profile.pointer("/storage/config").unwrap_or(&Value::Null)).map(ProfileStorage::PsqlDos)
        }
        other => Ok(ProfileStorage::Other(other.to_string())),
    }
}

fn psql_dos(config: &Value) -> Result<PsqlDos, String> {
    let text = |key: &str| -> Option<String> {
        match config.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    let required = |key: &str| text(key).ok_or(format!("core.psql_dos profile without storage.config.{key}"));
    let port = match text("database_port") {
        None => 5432,
        Some(p) => p.trim().parse().map_err(|_| format!("invalid database_port '{p}'"))?,
    };
    Ok(PsqlDos {
        host: text("database_hostname"),
        port,
        user: required("database_username")?,
        password: text("database_password"),
        database: required("database_name")?,
        container: repository_path(&required("repository_uri")?)?.join("container"),
    })
}

/// The folder of a `file://` repository URI, as `url2pathname(urlparse(uri).path)` reads it.
pub fn repository_path(uri: &str) -> Result<PathBuf, String> {
    let rest = uri
        .strip_prefix("file://")
        .ok_or_else(|| format!("unsupported repository_uri '{uri}' (expected file://...)"))?;
    // `file://host/path`: the path starts at the first slash.
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => return Err(format!("repository_uri '{uri}' has no path")),
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Ok(PathBuf::from(percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aiida_path_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("b");
        std::fs::create_dir_all(existing.join(".aiida")).unwrap();
        let list = format!("{}:{}", tmp.path().join("a").display(), existing.display());
        assert_eq!(config_dir(Some(&list), None), existing.join(".aiida"));
        let missing = format!("{}:{}", tmp.path().join("x").display(), tmp.path().join("y/.aiida").display());
        assert_eq!(config_dir(Some(&missing), None), tmp.path().join("y/.aiida"));
        assert_eq!(config_dir(None, Some(Path::new("/home/u"))), PathBuf::from("/home/u/.aiida"));
        assert_eq!(config_dir(Some("~/p"), Some(Path::new("/home/u"))), PathBuf::from("/home/u/p/.aiida"));
    }

    #[test]
    fn profiles_by_backend() {
        let config = json!({"CONFIG_VERSION": {"CURRENT": 10, "OLDEST_COMPATIBLE": 10}, "profiles": {
            "s": {"storage": {"backend": "core.sqlite_dos", "config": {"filepath": "/d"}}},
            "z": {"storage": {"backend": "core.sqlite_zip", "config": {"filepath": "/a.aiida"}}},
            "p": {"storage": {"backend": "core.psql_dos", "config": {
                "database_engine": "postgresql_psycopg", "database_hostname": "127.0.0.1",
                "database_port": 55432, "database_username": "aiida", "database_password": "pw",
                "database_name": "aiidadb", "repository_uri": "file:///abs/my%20repo"}}},
            "q": {"storage": {"backend": "core.psql_dos", "config": {
                "database_hostname": null, "database_port": "5433", "database_username": "u",
                "database_password": null, "database_name": "d", "repository_uri": "file:///r"}}},
            "bad": {"storage": {"backend": "core.psql_dos", "config": {"database_name": "d"}}}}});
        assert_eq!(profile_storage(&config, "s"), Ok(ProfileStorage::SqliteDos("/d".into())));
        assert_eq!(profile_storage(&config, "z"), Ok(ProfileStorage::SqliteZip("/a.aiida".into())));
        assert_eq!(
            profile_storage(&config, "p"),
            Ok(ProfileStorage::PsqlDos(PsqlDos {
                host: Some("127.0.0.1".into()),
                port: 55432,
                user: "aiida".into(),
                password: Some("pw".into()),
                database: "aiidadb".into(),
                container: "/abs/my repo/container".into(),
            }))
        );
        let Ok(ProfileStorage::PsqlDos(q)) = profile_storage(&config, "q") else { panic!("q is psql_dos") };
        assert_eq!((q.host, q.port, q.password), (None, 5433, None));
        assert!(profile_storage(&config, "bad").unwrap_err().contains("database_username"));
        assert!(!format!("{:?}", profile_storage(&config, "p")).contains("pw"));
        assert!(profile_storage(&config, "nope").unwrap_err().contains("known profiles: bad, p, q, s, z"));
        let old = json!({"CONFIG_VERSION": {"CURRENT": 5}, "profiles": {}});
        assert!(profile_storage(&old, "s").unwrap_err().contains("too old"));
    }
}
