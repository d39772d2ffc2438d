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
    PsqlDos,
    Other(String),
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
        "core.psql_dos" => Ok(ProfileStorage::PsqlDos),
        other => Ok(ProfileStorage::Other(other.to_string())),
    }
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
            "p": {"storage": {"backend": "core.psql_dos", "config": {}}}}});
        assert_eq!(profile_storage(&config, "s"), Ok(ProfileStorage::SqliteDos("/d".into())));
        assert_eq!(profile_storage(&config, "z"), Ok(ProfileStorage::SqliteZip("/a.aiida".into())));
        assert_eq!(profile_storage(&config, "p"), Ok(ProfileStorage::PsqlDos));
        assert!(profile_storage(&config, "nope").unwrap_err().contains("known profiles: p, s, z"));
        let old = json!({"CONFIG_VERSION": {"CURRENT": 5}, "profiles": {}});
        assert!(profile_storage(&old, "s").unwrap_err().contains("too old"));
    }
}
