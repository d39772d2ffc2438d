//! Virtual file tree of a node, parsed from its `repository_metadata` column (spec section 6).

use std::collections::BTreeMap;

use serde_json::Value;

use super::RepoError;

/// One entry of a node's file tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file; `key` is the object-store hashkey of its content.
    File { key: String },
    /// A directory; children are sorted by name (bytewise, like Python's `sorted`).
    Directory { children: BTreeMap<String, Entry> },
}

/// Kind of an entry, as reported by [`RepoTree::list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Directory,
}

impl Entry {
    pub fn kind(&self) -> EntryKind {
        match self {
            Entry::File { .. } => EntryKind::File,
            Entry::Directory { .. } => EntryKind::Directory,
        }
    }
}

/// Parsed `repository_metadata` of one node. The root is always a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoTree {
    root: Entry,
}

impl Default for RepoTree {
    fn default() -> Self {
        RepoTree { root: Entry::Directory { children: BTreeMap::new() } }
    }
}

impl RepoTree {
    /// Parses the column value. JSON `null` (NULL column in old archives) is an empty tree.
    pub fn from_json(metadata: &Value) -> Result<Self, RepoError> {
        if metadata.is_null() {
            return Ok(Self::default());
        }
        match parse_entry(metadata)? {
            root @ Entry::Directory { .. } => Ok(RepoTree { root }),
            Entry::File { .. } => Err(RepoError::Corrupt("repository_metadata root is a file, not a directory".into())),
        }
    }

    /// Parses the column's JSON text.
    pub fn from_json_str(metadata: &str) -> Result<Self, RepoError> {
        let value: Value = serde_json::from_str(metadata)
            .map_err(|e| RepoError::Corrupt(format!("repository_metadata is not JSON: {e}")))?;
        Self::from_json(&value)
    }

    pub fn root(&self) -> &Entry {
        &self.root
    }

    /// True if the node has no files and no directories.
    pub fn is_empty(&self) -> bool {
        matches!(&self.root, Entry::Directory { children } if children.is_empty())
    }

    /// Resolves a relative POSIX path (`""`/`"."` = root; a trailing `/` requires a directory).
    pub fn resolve(&self, path: &str) -> Result<&Entry, RepoError> {
        let parts = split_path(path)?;
        let mut current = &self.root;
        for part in parts {
            match current {
                Entry::Directory { children } => {
                    current = children.get(part).ok_or_else(|| RepoError::NotFound(path.to_owned()))?;
                }
                Entry::File { .. } => return Err(RepoError::NotADirectory(path.to_owned())),
            }
        }
        if path.ends_with('/') && matches!(current, Entry::File { .. }) {
            return Err(RepoError::NotADirectory(path.to_owned()));
        }
        Ok(current)
    }

    /// Object key of the file at `path`.
    pub fn file_key(&self, path: &str) -> Result<&str, RepoError> {
        match self.resolve(path)? {
            Entry::File { key } => Ok(key),
            Entry::Directory { .. } => Err(RepoError::NotAFile(path.to_owned())),
        }
    }

    /// Direct children of the directory at `dir_path`, sorted by name.
    pub fn list(&self, dir_path: &str) -> Result<Vec<(String, EntryKind)>, RepoError> {
        match self.resolve(dir_path)? {
            Entry::Directory { children } => {
                Ok(children.iter().map(|(name, entry)| (name.clone(), entry.kind())).collect())
            }
            Entry::File { .. } => Err(RepoError::NotADirectory(dir_path.to_owned())),
        }
    }

    /// Every file of the tree as `(path, key)`, depth-first in name order.
    pub fn files(&self) -> Vec<(String, &str)> {
        fn walk<'a>(prefix: &str, entry: &'a Entry, out: &mut Vec<(String, &'a str)>) {
            match entry {
                Entry::File { key } => out.push((prefix.to_owned(), key)),
                Entry::Directory { children } => {
                    for (name, child) in children {
                        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
                        walk(&path, child, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.root, &mut out);
        out
    }
}

/// Splits a relative POSIX path into its components. Empty and `.` components are dropped (as
/// `pathlib.PurePosixPath` does); absolute paths, `..` and NUL bytes are rejected.
pub fn split_path(path: &str) -> Result<Vec<&str>, RepoError> {
    if path.starts_with('/') || path.contains('\0') {
        return Err(RepoError::InvalidPath(path.to_owned()));
    }
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty() && *part != ".").collect();
    if parts.contains(&"..") {
        return Err(RepoError::InvalidPath(path.to_owned()));
    }
    Ok(parts)
}

// Mirrors aiida's `File.from_serialized`: `k` makes a file, otherwise a directory whose
// children are in `o` (absent for an empty directory).
fn parse_entry(value: &Value) -> Result<Entry, RepoError> {
    let Value::Object(map) = value else {
        return Err(RepoError::Corrupt(format!("repository_metadata entry is not an object: {value}")));
    };
    if let Some(key) = map.get("k") {
        return match key {
            Value::String(key) => Ok(Entry::File { key: key.clone() }),
            other => Err(RepoError::Corrupt(format!("repository_metadata file key is not a string: {other}"))),
        };
    }
    let mut children = BTreeMap::new();
    match map.get("o") {
        None | Some(Value::Null) => {}
        Some(Value::Object(objects)) => {
            for (name, child) in objects {
                // Such names could never be addressed by a path, so the metadata is broken.
                if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
                    return Err(RepoError::Corrupt(format!("invalid entry name {name:?} in repository_metadata")));
                }
                children.insert(name.clone(), parse_entry(child)?);
            }
        }
        Some(other) => {
            return Err(RepoError::Corrupt(format!("repository_metadata directory listing is not an object: {other}")));
        }
    }
    Ok(Entry::Directory { children })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const K1: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const K2: &str = "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3";

    fn sample() -> RepoTree {
        RepoTree::from_json(&json!({"o": {
            "sub": {"o": {"dir": {"o": {"a.txt": {"k": K2}}}}},
            "emptydir": {},
            "top.txt": {"k": K1},
            "dup_same_content.txt": {"k": K1},
            "with space.txt": {"k": K1},
            "ünï cödé.txt": {"k": K2},
            "percent%20name%.txt": {"k": K2},
            "back\\slash": {"k": K1},
        }}))
        .unwrap()
    }

    #[test]
    fn empty_metadata() {
        for value in [json!({}), json!({"o": {}}), Value::Null] {
            let tree = RepoTree::from_json(&value).unwrap();
            assert!(tree.is_empty());
            assert_eq!(tree.list("").unwrap(), vec![]);
            assert!(tree.files().is_empty());
            assert!(matches!(tree.resolve("x"), Err(RepoError::NotFound(p)) if p == "x"));
        }
        let tree = RepoTree::from_json_str("{}").unwrap();
        assert_eq!(tree, RepoTree::default());
    }

    #[test]
    fn list_root_sorted() {
        let tree = sample();
        assert!(!tree.is_empty());
        let listing = tree.list("").unwrap();
        let names: Vec<&str> = listing.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "back\\slash",
                "dup_same_content.txt",
                "emptydir",
                "percent%20name%.txt",
                "sub",
                "top.txt",
                "with space.txt",
                "ünï cödé.txt"
            ]
        );
        assert_eq!(listing[2].1, EntryKind::Directory);
        assert_eq!(listing[5].1, EntryKind::File);
        for root in [".", "./", "./.", ".//"] {
            assert_eq!(tree.list(root).unwrap(), listing);
        }
    }

    #[test]
    fn nested_and_empty_dirs() {
        let tree = sample();
        assert_eq!(tree.list("sub").unwrap(), vec![("dir".to_owned(), EntryKind::Directory)]);
        assert_eq!(tree.list("sub/dir/").unwrap(), vec![("a.txt".to_owned(), EntryKind::File)]);
        assert_eq!(tree.list("emptydir").unwrap(), vec![]);
        assert_eq!(tree.list("emptydir/").unwrap(), vec![]);
        assert!(matches!(
            tree.resolve("emptydir").unwrap(),
            Entry::Directory { children } if children.is_empty()
        ));
        assert_eq!(tree.file_key("sub/dir/a.txt").unwrap(), K2);
        assert_eq!(tree.file_key("sub//dir/./a.txt").unwrap(), K2);
        assert_eq!(tree.resolve("top.txt").unwrap(), &Entry::File { key: K1.to_owned() });
    }

    #[test]
    fn special_names() {
        let tree = sample();
        assert_eq!(tree.file_key("with space.txt").unwrap(), K1);
        assert_eq!(tree.file_key("ünï cödé.txt").unwrap(), K2);
        assert_eq!(tree.file_key("percent%20name%.txt").unwrap(), K2);
        assert_eq!(tree.file_key("back\\slash").unwrap(), K1);
        assert!(matches!(tree.file_key("percent name%.txt"), Err(RepoError::NotFound(_))));
    }

    #[test]
    fn kind_errors() {
        let tree = sample();
        assert!(matches!(tree.file_key("sub"), Err(RepoError::NotAFile(p)) if p == "sub"));
        assert!(matches!(tree.file_key(""), Err(RepoError::NotAFile(_))));
        assert!(matches!(tree.list("top.txt"), Err(RepoError::NotADirectory(p)) if p == "top.txt"));
        assert!(matches!(tree.resolve("top.txt/"), Err(RepoError::NotADirectory(_))));
        assert!(matches!(
            tree.resolve("top.txt/x"),
            Err(RepoError::NotADirectory(p)) if p == "top.txt/x"
        ));
        assert!(matches!(
            tree.resolve("sub/nope/a.txt"),
            Err(RepoError::NotFound(p)) if p == "sub/nope/a.txt"
        ));
        assert!(matches!(tree.resolve("Top.txt"), Err(RepoError::NotFound(_))));
    }

    #[test]
    fn traversal_rejected() {
        let tree = sample();
        for bad in [
            "..",
            "../",
            "/etc/passwd",
            "/",
            "a/../../b",
            "sub/..",
            "sub/../top.txt",
            "./..",
            "top.txt\0",
            "\0",
            "sub/\0/dir",
        ] {
            assert!(matches!(tree.resolve(bad), Err(RepoError::InvalidPath(p)) if p == bad), "{bad:?} accepted");
            assert!(matches!(tree.list(bad), Err(RepoError::InvalidPath(_))));
            assert!(matches!(tree.file_key(bad), Err(RepoError::InvalidPath(_))));
        }
        // `..` only as a whole component is special.
        assert!(matches!(tree.resolve("..a"), Err(RepoError::NotFound(_))));
        assert!(matches!(tree.resolve("a.."), Err(RepoError::NotFound(_))));
    }

    #[test]
    fn files_walk() {
        let tree = sample();
        let files = tree.files();
        assert_eq!(files.len(), 7);
        assert!(files.contains(&("sub/dir/a.txt".to_owned(), K2)));
        assert!(files.contains(&("with space.txt".to_owned(), K1)));
        let paths: Vec<&String> = files.iter().map(|(p, _)| p).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn corrupt_metadata() {
        for bad in [
            json!({"k": K1}),
            json!([]),
            json!("x"),
            json!({"o": []}),
            json!({"o": {"f": {"k": 1}}}),
            json!({"o": {"f": 3}}),
            json!({"o": {"a/b": {"k": K1}}}),
            json!({"o": {"..": {}}}),
            json!({"o": {"": {}}}),
        ] {
            assert!(matches!(RepoTree::from_json(&bad), Err(RepoError::Corrupt(_))), "{bad} accepted");
        }
        assert!(matches!(RepoTree::from_json_str("{"), Err(RepoError::Corrupt(_))));
    }

    #[test]
    fn python_formatted_text() {
        // ensure_ascii output of Python's json.dumps.
        let tree = RepoTree::from_json_str(r#"{"o": {"\u00fcn\u00ef.txt": {"k": "abc"}, "d": {}}}"#).unwrap();
        assert_eq!(tree.file_key("ünï.txt").unwrap(), "abc");
        assert_eq!(tree.list("d").unwrap(), vec![]);
    }
}
