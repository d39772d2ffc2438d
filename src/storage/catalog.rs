//! The databases one process serves: `--database NAME=STORAGE` and the `[[database]]` entries
//! of a TOML configuration file (`--config FILE`). Nothing is opened here; an [`Entry`] says
//! what to open and with which per-database options.
//!
//! ```toml
//! port = 5000                  # server options: the long option names, `-` or `_`
//! idle_timeout = 600
//!
//! [[database]]
//! name = "django"
//! storage = "/data/django.aiida"      # archive, core.sqlite_dos folder, or postgresql:// URL
//! default = true
//!
//! [[database]]
//! name = "sqlalchemy"
//! storage = "postgresql://aiida@db/sqlalchemy"
//! repository = "/data/sqlalchemy/container"
//! max_connections = 4
//! posting = false
//! max_rows = 1000
//!
//! [[database]]
//! name = "mine"
//! profile = "mine"                    # a profile of the AiiDA configuration
//!
//! [[database]]
//! storage = "/data/archives"          # a folder of .aiida files: one database per file
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Value};

use crate::storage::{Source, StorageError};

/// One database to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The first segment of its URLs: `/<name>/api/v4`.
    pub name: String,
    pub source: Source,
    /// Also served at `/api/v4` and `/api/v2`.
    pub default: bool,
    pub posting: Option<bool>,
    pub max_rows: Option<i64>,
    pub max_connections: Option<usize>,
    pub statement_timeout: Option<u64>,
}

impl Entry {
    pub fn new(name: String, source: Source) -> Self {
        Entry {
            name,
            source,
            default: false,
            posting: None,
            max_rows: None,
            max_connections: None,
            statement_timeout: None,
        }
    }
}

/// A configuration: the databases, and the server options of the top level (by key, `-`
/// spelled `_`, values as text).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    pub options: BTreeMap<String, String>,
}

impl Catalog {
    /// Checks the names (unique, URL-safe) and the default (at most one; a single database is
    /// the default).
    pub fn check(mut self) -> Result<Self, StorageError> {
        let mut seen = std::collections::BTreeSet::new();
        for entry in &self.entries {
            if !valid_name(&entry.name) {
                return Err(StorageError::Config(format!(
                    "database name '{}': use letters, digits, '-', '_' and '.', not {}",
                    entry.name,
                    RESERVED_NAMES.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                )));
            }
            if !seen.insert(entry.name.clone()) {
                return Err(StorageError::Config(format!("database name '{}' is given twice", entry.name)));
            }
        }
        let defaults = self.entries.iter().filter(|e| e.default).count();
        if defaults > 1 {
            return Err(StorageError::Config("more than one database has default = true".into()));
        }
        if self.entries.len() == 1 {
            self.entries[0].default = true;
        }
        Ok(self)
    }

    /// A top-level option, by its long name (`-` or `_`).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(&key.replace('-', "_")).map(String::as_str)
    }
}

/// First path segments a database cannot be named by: those of the front doors
/// (`http::FRONT_DOORS`: `/api/v4`, `/api/v2`, `/optimade/v1`) and of the operations
/// endpoints (`/health`, `/ready`, `/metrics`), which the default database and the server answer at.
pub const RESERVED_NAMES: &[&str] = &["api", "optimade", "health", "ready", "metrics"];

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !RESERVED_NAMES.contains(&name)
        && !matches!(name, "." | "..")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `NAME=STORAGE` of `--database`: STORAGE is a path, `profile:NAME`, or a PostgreSQL URL
/// followed by `,repository=PATH`. A folder of `.aiida` files gives one database per file,
/// named by the file stem (NAME is then not used).
pub fn parse_spec(spec: &str) -> Result<Vec<Entry>, StorageError> {
    let (name, storage) = spec
        .split_once('=')
        .ok_or_else(|| StorageError::Config(format!("--database {spec}: expected NAME=STORAGE")))?;
    if let Some(profile) = storage.strip_prefix("profile:") {
        return Ok(vec![Entry::new(name.to_string(), Source::Profile(profile.to_string()))]);
    }
    let (storage, repository) = match storage.rsplit_once(",repository=") {
        Some((s, r)) => (s, Some(PathBuf::from(r))),
        None => (storage, None),
    };
    sources(Some(name), storage, repository, Path::new("."))
}

/// The entries a storage names: one, or one per `.aiida` file of a folder.
fn sources(
    name: Option<&str>,
    storage: &str,
    repository: Option<PathBuf>,
    base: &Path,
) -> Result<Vec<Entry>, StorageError> {
    let is_url = storage.starts_with("postgresql://") || storage.starts_with("postgres://");
    if is_url {
        let name = name.ok_or_else(|| StorageError::Config(format!("{storage}: a database needs a name")))?;
        let repository = repository.ok_or_else(|| {
            StorageError::Config(format!("database '{name}': a PostgreSQL database needs its repository"))
        })?;
        let source = Source::Postgres { url: storage.to_string(), repository: base.join(repository) };
        return Ok(vec![Entry::new(name.to_string(), source)]);
    }
    if repository.is_some() {
        return Err(StorageError::Config(format!("{storage}: repository goes with a postgresql:// URL")));
    }
    let path = base.join(storage);
    if path.is_dir() && !path.join("database.sqlite").exists() {
        return archive_folder(&path);
    }
    let name = match name {
        Some(name) => name.to_string(),
        None => {
            stem(&path).ok_or_else(|| StorageError::Config(format!("{}: a database needs a name", path.display())))?
        }
    };
    Ok(vec![Entry::new(name, Source::Path(path))])
}

fn stem(path: &Path) -> Option<String> {
    path.file_stem().map(|s| s.to_string_lossy().into_owned())
}

/// One entry per `*.aiida` file of `dir`, named by the file stem, in name order.
fn archive_folder(dir: &Path) -> Result<Vec<Entry>, StorageError> {
    let read = std::fs::read_dir(dir).map_err(|e| StorageError::Config(format!("{}: {e}", dir.display())))?;
    let mut entries: Vec<Entry> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "aiida") && p.is_file())
        .filter_map(|p| Some(Entry::new(stem(&p)?, Source::Path(p))))
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Reads a configuration file. Relative paths in it are relative to the file's folder.
pub fn load(path: &Path) -> Result<Catalog, StorageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StorageError::Config(format!("cannot read {}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|e| StorageError::Config(format!("{}: {e}", path.display())))
}

/// Parses the text of a configuration file.
pub fn parse(text: &str, base: &Path) -> Result<Catalog, String> {
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| e.to_string())?;
    let mut catalog = Catalog::default();
    for (key, item) in doc.iter() {
        if key == "database" {
            continue;
        }
        let value = item.as_value().ok_or_else(|| format!("'{key}': expected a value"))?;
        catalog.options.insert(key.replace('-', "_"), scalar(value).ok_or_else(|| format!("'{key}': not a scalar"))?);
    }
    let tables = match doc.get("database") {
        None => return Ok(catalog),
        Some(Item::ArrayOfTables(tables)) => tables,
        Some(_) => return Err("'database' must be a list of tables ([[database]])".into()),
    };
    for (index, table) in tables.iter().enumerate() {
        let at = |key: &str| format!("database #{}: '{key}'", index + 1);
        let text = |key: &str| -> Result<Option<String>, String> {
            match table.get(key) {
                None => Ok(None),
                Some(item) => item.as_str().map(|s| Some(s.to_string())).ok_or_else(|| at(key) + " must be a string"),
            }
        };
        let int = |key: &str| -> Result<Option<i64>, String> {
            match table.get(key) {
                None => Ok(None),
                Some(item) => item.as_integer().map(Some).ok_or_else(|| at(key) + " must be an integer"),
            }
        };
        let boolean = |key: &str| -> Result<Option<bool>, String> {
            match table.get(key) {
                None => Ok(None),
                Some(item) => item.as_bool().map(Some).ok_or_else(|| at(key) + " must be true or false"),
            }
        };
        for (key, _) in table.iter() {
            let known = [
                "name",
                "storage",
                "repository",
                "profile",
                "default",
                "posting",
                "max_rows",
                "max_connections",
                "statement_timeout",
            ];
            if !known.contains(&key) {
                return Err(format!("{}: unknown key (known: {})", at(key), known.join(", ")));
            }
        }
        let name = text("name")?;
        let mut found = match (text("storage")?, text("profile")?) {
            (Some(storage), None) => sources(name.as_deref(), &storage, text("repository")?.map(PathBuf::from), base)
                .map_err(|e| format!("database #{}: {e}", index + 1))?,
            (None, Some(profile)) => {
                vec![Entry::new(name.unwrap_or_else(|| profile.clone()), Source::Profile(profile))]
            }
            _ => return Err(format!("database #{}: give either storage or profile", index + 1)),
        };
        for entry in &mut found {
            entry.default = boolean("default")?.unwrap_or(false);
            entry.posting = boolean("posting")?;
            entry.max_rows = int("max_rows")?;
            entry.max_connections = int("max_connections")?.map(|n| n.max(1) as usize);
            entry.statement_timeout = int("statement_timeout")?.map(|n| n.max(1) as u64);
        }
        catalog.entries.extend(found);
    }
    Ok(catalog)
}

fn scalar(value: &Value) -> Option<String> {
    Some(match value {
        Value::String(s) => s.value().clone(),
        Value::Integer(i) => i.value().to_string(),
        Value::Float(f) => f.value().to_string(),
        Value::Boolean(b) => b.value().to_string(),
        Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>()?.join(","),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("many")).unwrap();
        for name in ["b", "a"] {
            std::fs::write(dir.path().join(format!("many/{name}.aiida")), b"").unwrap();
        }
        let text = r#"
            port = 5001
            cors-origin = ["https://a.org", "https://b.org"]
            [[database]]
            name = "django"
            storage = "x.aiida"
            default = true
            max_rows = 7
            [[database]]
            name = "pg"
            storage = "postgresql://u@h/db"
            repository = "/repo"
            posting = false
            [[database]]
            profile = "mine"
            [[database]]
            storage = "many"
        "#;
        let catalog = parse(text, dir.path()).unwrap().check().unwrap();
        assert_eq!(catalog.option("port"), Some("5001"));
        assert_eq!(catalog.option("cors-origin"), Some("https://a.org,https://b.org"));
        let names: Vec<&str> = catalog.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["django", "pg", "mine", "a", "b"]);
        assert!(catalog.entries[0].default && !catalog.entries[1].default);
        assert_eq!(catalog.entries[0].max_rows, Some(7));
        assert_eq!(catalog.entries[1].posting, Some(false));
        assert_eq!(catalog.entries[2].source, Source::Profile("mine".into()));
        assert!(parse("[[database]]\nname = \"x\"\n", dir.path()).is_err());
        assert!(parse("[[database]]\nstorage = \"x.aiida\"\nbogus = 1\n", dir.path()).is_err());
        let twice = parse("[[database]]\nstorage = \"x.aiida\"\n[[database]]\nstorage = \"x.aiida\"\n", dir.path());
        assert!(twice.unwrap().check().is_err());
    }

    #[test]
    fn database_options() {
        let one = parse_spec("django=/data/d.aiida").unwrap();
        assert_eq!(one[0].name, "django");
        assert_eq!(one[0].source, Source::Path("/data/d.aiida".into()));
        let pg = parse_spec("s=postgresql://u@h/db,repository=/r").unwrap();
        assert_eq!(pg[0].source, Source::Postgres { url: "postgresql://u@h/db".into(), repository: "/r".into() });
        assert_eq!(parse_spec("p=profile:x").unwrap()[0].source, Source::Profile("x".into()));
        assert!(parse_spec("nothing").is_err());
        assert!(parse_spec("s=postgresql://u@h/db").is_err());
    }
}
