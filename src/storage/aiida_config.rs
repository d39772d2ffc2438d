//! Reading the AiiDA configuration (`$AIIDA_PATH`/`~/.aiida`, `config.json`) to find where a
//! profile keeps its data, and which profile `verdi` uses when none is named.

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
    // As Python's `expanduser` for the current user: `~` and `~/...` only.
    let expand = |p: &str| -> PathBuf {
        match (p.strip_prefix('~'), home) {
            (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => h.join(rest.trim_start_matches('/')),
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

/// The `config.json` of this environment's AiiDA configuration (`$AIIDA_PATH`, else `~/.aiida`).
pub fn config_file() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    config_dir(std::env::var("AIIDA_PATH").ok().as_deref(), home.as_deref()).join("config.json")
}

/// Reads and parses `config.json`; `Ok(None)` when there is none.
fn read_config(path: &Path) -> Result<Option<Value>, StorageError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StorageError::Config(format!("cannot read the AiiDA configuration {}: {e}", path.display())));
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StorageError::Config(format!("{} is not valid JSON: {e}", path.display())))
}

/// Finds profile `name` in the configuration of this environment.
pub fn find_profile(name: &str) -> Result<ProfileStorage, StorageError> {
    let path = config_file();
    let Some(config) = read_config(&path)? else {
        return Err(StorageError::Config(format!(
            "cannot read the AiiDA configuration {}: no such file (set AIIDA_PATH to the folder that holds .aiida)",
            path.display()
        )));
    };
    profile_storage(&config, name).map_err(|msg| StorageError::Config(format!("{}: {msg}", path.display())))
}

/// What the AiiDA configuration of this environment offers when no profile is named.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultProfile {
    /// There is no AiiDA configuration: this `config.json` does not exist.
    NoConfiguration(PathBuf),
    /// This `config.json` defines no profile at all.
    NoProfiles(PathBuf),
    /// The default profile of this `config.json`, as `verdi` would use it.
    Named { name: String, config_file: PathBuf, storage: ProfileStorage },
}

/// Finds the profile that `verdi` uses when none is named (`default_profile` of `config.json`).
/// A configuration that cannot be read, or whose default profile is missing or broken, is an
/// error: only the absence of any configuration or profile is not.
pub fn find_default_profile() -> Result<DefaultProfile, StorageError> {
    default_profile_of(&config_file())
}

/// [`find_default_profile`] in the configuration file `path`.
pub fn default_profile_of(path: &Path) -> Result<DefaultProfile, StorageError> {
    let Some(config) = read_config(path)? else { return Ok(DefaultProfile::NoConfiguration(path.to_path_buf())) };
    let fail = |msg: String| StorageError::Config(format!("{}: {msg}", path.display()));
    match default_profile(&config).map_err(fail)? {
        None => Ok(DefaultProfile::NoProfiles(path.to_path_buf())),
        Some(name) => {
            let storage = profile_storage(&config, &name).map_err(fail)?;
            Ok(DefaultProfile::Named { name, config_file: path.to_path_buf(), storage })
        }
    }
}

/// The name of the default profile of a parsed `config.json`: `Ok(None)` when it defines no
/// profile and no default; an error when profiles exist but none is the default, or when the
/// default names a profile that does not exist (`verdi` then has no profile either).
pub fn default_profile(config: &Value) -> Result<Option<String>, String> {
    check_version(config)?;
    let names = profile_names(config)?;
    let default = match config.get("default_profile") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("default_profile is not a profile name: {other}")),
    };
    match default {
        None if names.is_empty() => Ok(None),
        None => Err(format!(
            "no default profile is set; name one with --profile (known profiles: {}) or set one with `verdi profile set-default`",
            names.join(", ")
        )),
        Some(name) if names.contains(&name.as_str()) => Ok(Some(name)),
        Some(name) if names.is_empty() => Err(format!("the default profile '{name}' is not defined; no profiles are")),
        Some(name) => Err(format!("the default profile '{name}' is not defined; known profiles: {}", names.join(", "))),
    }
}

fn check_version(config: &Value) -> Result<(), String> {
    let version = config.pointer("/CONFIG_VERSION/CURRENT").and_then(Value::as_i64);
    if let Some(v) = version
        && v < 9
    {
        return Err(format!("configuration version {v} is too old; run `verdi` once to migrate it"));
    }
    Ok(())
}

/// The names of the profiles, sorted; a missing or `null` `profiles` is none.
fn profile_names(config: &Value) -> Result<Vec<&str>, String> {
    let mut names: Vec<&str> = match config.get("profiles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(profiles)) => profiles.keys().map(String::as_str).collect(),
        Some(_) => return Err("profiles is not a JSON object".into()),
    };
    names.sort_unstable();
    Ok(names)
}

/// Extracts the storage of profile `name` from a parsed `config.json`.
pub fn profile_storage(config: &Value, name: &str) -> Result<ProfileStorage, String> {
    check_version(config)?;
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
        assert_eq!(config_dir(Some("~"), Some(Path::new("/home/u"))), PathBuf::from("/home/u/.aiida"));
        // `~other` is another user's home in Python; it is left as it is here.
        assert_eq!(config_dir(Some("~other/p"), Some(Path::new("/home/u"))), PathBuf::from("~other/p/.aiida"));
        // A path already ending in `.aiida` is the folder itself; empty entries are skipped.
        let direct = tmp.path().join("c/.aiida");
        std::fs::create_dir_all(&direct).unwrap();
        assert_eq!(config_dir(Some(&format!("::{}:", direct.display())), None), direct);
        // Set but empty: as if unset.
        assert_eq!(config_dir(Some(""), Some(Path::new("/home/u"))), PathBuf::from("/home/u/.aiida"));
        assert_eq!(config_dir(Some(":"), Some(Path::new("/home/u"))), PathBuf::from("/home/u/.aiida"));
    }

    #[test]
    fn default_profile_rules() {
        let profiles = json!({"a": {}, "b": {}});
        let with = |default: Value| json!({"CONFIG_VERSION": {"CURRENT": 9}, "default_profile": default, "profiles": profiles});
        assert_eq!(default_profile(&with(json!("b"))), Ok(Some("b".into())));
        // Profiles but no default: `verdi` has no profile to use, so neither do we.
        for none in [Value::Null, json!("")] {
            let err = default_profile(&with(none)).unwrap_err();
            assert!(err.contains("no default profile") && err.contains("known profiles: a, b"), "{err}");
        }
        let mut missing_key = with(Value::Null);
        missing_key.as_object_mut().unwrap().remove("default_profile");
        assert!(default_profile(&missing_key).unwrap_err().contains("--profile"));
        // A default that names no profile.
        let err = default_profile(&with(json!("gone"))).unwrap_err();
        assert!(err.contains("'gone'") && err.contains("known profiles: a, b"), "{err}");
        assert!(default_profile(&json!({"default_profile": "x", "profiles": {}})).unwrap_err().contains("'x'"));
        assert!(default_profile(&with(json!(3))).is_err());
        // No profile at all (as `verdi` leaves a new configuration): nothing to serve.
        assert_eq!(default_profile(&json!({"CONFIG_VERSION": {"CURRENT": 9}, "profiles": {}})), Ok(None));
        assert_eq!(default_profile(&json!({})), Ok(None));
        assert!(default_profile(&json!({"profiles": []})).is_err());
        assert!(
            default_profile(&json!({"CONFIG_VERSION": {"CURRENT": 3}, "profiles": {}}))
                .unwrap_err()
                .contains("too old")
        );
    }

    #[test]
    fn default_profile_from_the_configuration_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.json");
        assert_eq!(default_profile_of(&file).unwrap(), DefaultProfile::NoConfiguration(file.clone()));
        std::fs::write(&file, r#"{"CONFIG_VERSION": {"CURRENT": 9}, "profiles": {}}"#).unwrap();
        assert_eq!(default_profile_of(&file).unwrap(), DefaultProfile::NoProfiles(file.clone()));
        let config = json!({"CONFIG_VERSION": {"CURRENT": 9}, "default_profile": "main", "profiles": {
            "main": {"storage": {"backend": "core.sqlite_dos", "config": {"filepath": "/data/main"}}},
            "other": {"storage": {"backend": "core.sqlite_zip", "config": {"filepath": "/a.aiida"}}}}});
        std::fs::write(&file, config.to_string()).unwrap();
        assert_eq!(
            default_profile_of(&file).unwrap(),
            DefaultProfile::Named {
                name: "main".into(),
                config_file: file.clone(),
                storage: ProfileStorage::SqliteDos("/data/main".into())
            }
        );
        // A broken configuration is an error naming the file, never a reason to serve the demo.
        std::fs::write(&file, "{not json").unwrap();
        let err = default_profile_of(&file).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("not valid JSON"), "{err}");
        let broken =
            json!({"default_profile": "main", "profiles": {"main": {"storage": {"backend": "core.sqlite_dos"}}}});
        std::fs::write(&file, broken.to_string()).unwrap();
        assert!(default_profile_of(&file).unwrap_err().to_string().contains("filepath"));
        // A folder where the file should be cannot be read.
        let dir = tmp.path().join("as-dir");
        std::fs::create_dir(&dir).unwrap();
        assert!(default_profile_of(&dir).unwrap_err().to_string().contains("cannot read"));
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
