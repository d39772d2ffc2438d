//! ArrayData and the subclasses without an exporter of their own (XyData, KpointsData,
//! ProjectionData; TrajectoryData's `json`): AiiDA's `ArrayData._prepare_json`, i.e. every array as nested
//! lists (NaN and ±inf as `null`), then `original_uuid` and the `comments` file header, written by
//! `json.dumps` with its default separators.
//!
//! Also home of the small pieces the BandsData exporters share with it: reading an array from the
//! node repository and an insertion-ordered JSON value that prints like Python's `json.dumps`.

use serde_json::{Map, Value};

use super::npy::{self, NpyArray, NpyData};
use super::{Export, ExportError, NodeFiles, NodeInfo};
use crate::model::pyjson::{python_float_repr, write_str};

/// `aiida.get_file_header(comment_char='')` of aiida-core 2.9.4, without the trailing newline.
pub(super) const FILE_HEADER: &str = "This file has been created with AiiDA v. 2.9.4\n\
If you use AiiDA for publication purposes, please cite:\n\
S. P. Huber et al., \"AiiDA 1.0, a scalable computational infrastructure for automated reproducible \
workflows and data provenance\", Scientific Data 7, 300 (2020); https://doi.org/10.1038/s41597-020-00638-4";

const ARRAY_PREFIX: &str = "array|";

pub fn export(node: &NodeInfo, files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    match format {
        "json" => {
            let names = array_names(node);
            Ok(Export { content: json_content(node, files, &names)?.into_bytes(), filename: None })
        }
        _ => Err(ExportError::Unsupported(format.to_string())),
    }
}

/// The node's array names, as `ArrayData.get_arraynames()` lists them: the `array|<name>`
/// attribute keys in the order the attributes dict has them.
///
/// The reference keeps the stored (insertion) order of the attributes JSON; `NodeInfo.attributes`
/// is a sorted map, so until the stored key order reaches this module the names come out sorted.
/// They differ only for nodes whose arrays were not set in alphabetical order.
fn array_names(node: &NodeInfo) -> Vec<String> {
    if !node.attribute_keys.is_empty() {
        // The reference lists arrays in stored attribute order.
        return node.attribute_keys.iter().filter_map(|k| k.strip_prefix(ARRAY_PREFIX)).map(str::to_string).collect();
    }
    match &node.attributes {
        Value::Object(map) => map.keys().filter_map(|k| k.strip_prefix(ARRAY_PREFIX)).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn json_content(node: &NodeInfo, files: &dyn NodeFiles, names: &[String]) -> Result<String, ExportError> {
    let mut dict = Vec::with_capacity(names.len() + 2);
    for name in names {
        let array = read_array(files, name)?;
        dict.push((name.clone(), clean_array(&array)));
    }
    dict.push(("original_uuid".to_string(), Py::Str(node.uuid.clone())));
    dict.push(("comments".to_string(), Py::Str(FILE_HEADER.to_string())));
    Ok(Py::Dict(dict).dumps())
}

/// Loads `<name>.npy` from the node repository.
pub(super) fn read_array(files: &dyn NodeFiles, name: &str) -> Result<NpyArray, ExportError> {
    let bytes = files.read(&format!("{name}.npy"))?;
    npy::parse(&bytes).map_err(|e| ExportError::Invalid(format!("array `{name}`: {e}")))
}

/// `clean_array`: nested lists following the shape; non-finite floats become `None`.
fn clean_array(array: &NpyArray) -> Py {
    let items: Vec<Py> = match &array.data {
        NpyData::F64(v) => v.iter().map(|&x| if x.is_finite() { Py::Float(x) } else { Py::Null }).collect(),
        NpyData::I64(v) => v.iter().map(|&i| Py::Int(i)).collect(),
        NpyData::Bool(v) => v.iter().map(|&b| Py::Bool(b)).collect(),
    };
    nest(&array.shape, &mut items.into_iter())
}

/// `ndarray.tolist()`: splits the flat C-order items along `shape` (a 0-d array is a scalar).
pub(super) fn nest(shape: &[usize], items: &mut dyn Iterator<Item = Py>) -> Py {
    match shape.split_first() {
        None => items.next().unwrap_or(Py::Null),
        Some((&n, rest)) => Py::List((0..n).map(|_| nest(rest, items)).collect()),
    }
}

/// A Python value as the exporters build it: dicts keep insertion order, as `json.dumps` writes
/// them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Py {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    Dict(Vec<(String, Py)>),
}

impl Py {
    pub(super) fn str(s: &str) -> Py {
        Py::Str(s.to_string())
    }

    pub(super) fn floats(v: &[f64]) -> Py {
        Py::List(v.iter().map(|&x| Py::Float(x)).collect())
    }

    /// `json.dumps(self)`: separators `", "` and `": "`, ASCII-only, `NaN`/`Infinity` allowed.
    pub(super) fn dumps(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None, 0);
        out
    }

    /// `json.dumps(self, indent=n)`: one item per line, `","` at line ends.
    pub(super) fn dumps_indent(&self, indent: usize) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(indent), 0);
        out
    }

    fn write(&self, out: &mut String, indent: Option<usize>, level: usize) {
        match self {
            Py::Null => out.push_str("null"),
            Py::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Py::Int(i) => out.push_str(&i.to_string()),
            Py::Float(x) => out.push_str(&python_float_repr(*x)),
            Py::Str(s) => write_py_str(out, s),
            Py::List(items) => {
                write_seq(out, indent, level, ('[', ']'), items.iter(), |out, item, level| {
                    item.write(out, indent, level)
                });
            }
            Py::Dict(items) => {
                write_seq(out, indent, level, ('{', '}'), items.iter(), |out, (k, v), level| {
                    write_py_str(out, k);
                    out.push_str(": ");
                    v.write(out, indent, level);
                });
            }
        }
    }

    /// The value as `json.loads` would give it back (for `jsonify`, which re-sorts the keys).
    /// Non-finite floats have no JSON value and become `null`.
    pub(super) fn to_value(&self) -> Value {
        match self {
            Py::Null => Value::Null,
            Py::Bool(b) => Value::Bool(*b),
            Py::Int(i) => Value::from(*i),
            Py::Float(x) => crate::model::pyjson::float(*x),
            Py::Str(s) => Value::String(s.clone()),
            Py::List(items) => Value::Array(items.iter().map(Py::to_value).collect()),
            Py::Dict(items) => {
                Value::Object(items.iter().map(|(k, v)| (k.clone(), v.to_value())).collect::<Map<_, _>>())
            }
        }
    }
}

fn write_seq<T>(
    out: &mut String,
    indent: Option<usize>,
    level: usize,
    (open, close): (char, char),
    items: impl ExactSizeIterator<Item = T>,
    mut write_item: impl FnMut(&mut String, T, usize),
) {
    out.push(open);
    if items.len() == 0 {
        out.push(close);
        return;
    }
    for (i, item) in items.enumerate() {
        match indent {
            None if i > 0 => out.push_str(", "),
            None => {}
            Some(n) => {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&" ".repeat(n * (level + 1)));
            }
        }
        write_item(out, item, level + 1);
    }
    if let Some(n) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(n * level));
    }
    out.push(close);
}

/// `json.dumps` string escaping with `ensure_ascii=True`. It escapes DEL (0x7f) too, which
/// `crate::model::pyjson::write_str` leaves alone, hence the extra case.
fn write_py_str(out: &mut String, s: &str) {
    if !s.contains('\u{7f}') {
        write_str(out, s);
        return;
    }
    let mut tmp = String::new();
    write_str(&mut tmp, s);
    out.push_str(&tmp.replace('\u{7f}', "\\u007f"));
}

#[cfg(test)]
pub(super) mod testutil {
    //! The fixture profile as the exporters see it, and the recorded answers of the reference.

    use std::collections::HashMap;
    use std::path::Path;

    use base64::Engine;
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    use crate::export::{NodeFiles, NodeInfo};
    use crate::storage::repository::{RepoError, RepoTree, Repository};

    const PROFILE: &str = "tests/fixtures/ref-profile";

    pub struct FixtureFiles {
        repo: Repository,
        tree: RepoTree,
    }

    impl NodeFiles for FixtureFiles {
        fn read(&self, path: &str) -> Result<Vec<u8>, RepoError> {
            let key = self.tree.file_key(path)?;
            self.repo.read_object_to_vec(key, 1 << 30)
        }
    }

    /// The node with this uuid from the fixture database, with its repository files.
    pub fn load(uuid: &str) -> (NodeInfo, FixtureFiles) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(PROFILE);
        let uri = format!("file:{}?mode=ro&immutable=1", root.join("database.sqlite").display());
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let db = rusqlite::Connection::open_with_flags(uri, flags).unwrap();
        let (id, node_type, label, description, attributes, metadata): (i64, String, String, String, Option<String>, Option<String>) = db
            .query_row(
                "SELECT id, node_type, label, description, attributes, repository_metadata FROM db_dbnode WHERE uuid = ?1",
                [uuid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
        let attribute_keys = attributes.as_deref().map(crate::export::ordered_keys).unwrap_or_default();
        let attributes =
            attributes.map(|a| serde_json::from_str(&a).unwrap()).unwrap_or(Value::Object(Default::default()));
        let node = NodeInfo {
            attribute_keys,
            id,
            uuid: uuid.to_string(),
            node_type,
            process_type: None,
            label,
            description,
            attributes,
            computer_label: None,
        };
        let repo = Repository::open_container(root.join("container")).unwrap();
        let tree = RepoTree::from_json_str(metadata.as_deref().unwrap_or("{}")).unwrap();
        (node, FixtureFiles { repo, tree })
    }

    /// What the reference answered for `path`: the recorded raw bytes (when small enough to be
    /// kept) and the sha256 of the full answer.
    pub fn golden(path: &str) -> (Option<Vec<u8>>, String) {
        let entry = golden_entry(path);
        let raw = entry
            .get("raw_b64")
            .and_then(Value::as_str)
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap());
        let sha = entry["sha256"].as_str().unwrap().to_string();
        (raw, sha)
    }

    /// The recorded JSON body for `path`.
    pub fn golden_json(path: &str) -> Value {
        golden_entry(path)["json"].clone()
    }

    fn golden_entry(path: &str) -> Value {
        thread_local! {
            static GOLDEN: HashMap<String, Value> = {
                let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v4.jsonl");
                std::fs::read_to_string(file)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .map(|v| (v["path"].as_str().unwrap().to_string(), v))
                    .collect()
            };
        }
        GOLDEN.with(|g| g.get(path).unwrap_or_else(|| panic!("no golden answer for {path}")).clone())
    }

    pub fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{load, sha256_hex};
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    // sha256 of the reference's answers (aiida-core 2.9.4 serving the fixture), recorded with
    // `curl .../download?download_format=json`; the golden file has no ArrayData downloads.
    const LIVE_JSON: &[(&str, &[&str], &str)] = &[
        (
            "ef02c02d-60b6-4256-99e0-b82d5d68ec26",
            &["matrix", "vector", "tensor", "mask"],
            "892844d69487d0872df71973b78d8f52716888587290c2494c9b76eedd6afe9f",
        ),
        (
            "e0bd4819-add0-47d7-a9fd-c5778253fbb4",
            &["x_array", "y_array_0", "y_array_1"],
            "968a91055dbcf3a3e8053d08dd25905177aa655515dbffad9dcc1f881392fcd6",
        ),
        (
            "e8d9b133-c9af-4d52-b09c-c0c5eac19319",
            &["kpoints", "weights"],
            "6847c5a3a3244c20ec39229e15d3a4bd705a01ce4d89c3aaf1ad939664dacfef",
        ),
        (
            "74028fec-5939-4473-a777-a6169efc8f5f",
            &["kpoints"],
            "20c8f1a5a95148dbdfbd845ea5a2b7c40e6b6d2ff485fed1a6445545d31d489f",
        ),
        (
            "26a805a6-28b0-4041-bf3a-d99e01ee8760",
            &[],
            "900ccd0e160225872eee0870bbfe691c7137319c12f783ab7ff69846bd73fd21",
        ),
    ];

    #[test]
    fn json_matches_reference() {
        for (uuid, order, sha) in LIVE_JSON {
            let (node, files) = load(uuid);
            let text = json_content(&node, &files, &names(order)).unwrap();
            assert_eq!(sha256_hex(text.as_bytes()), *sha, "{uuid}");
        }
    }

    #[test]
    fn dispatcher_uses_attribute_arrays() {
        // Sorted and stored orders agree for this node.
        let (node, files) = load("e8d9b133-c9af-4d52-b09c-c0c5eac19319");
        let out = export(&node, &files, "json").unwrap();
        assert!(out.filename.is_none());
        let text = String::from_utf8(out.content).unwrap();
        assert!(text.starts_with("{\"kpoints\": [[0.0, 0.0, 0.0], [0.25, 0.0, 0.0], "), "{text}");
        assert!(text.contains("\"weights\": [0.1, 0.3, 0.3, 0.3], \"original_uuid\": \"e8d9b133-"));
    }

    #[test]
    fn clean_array_nests_and_nulls() {
        let a = NpyArray { shape: vec![2, 2], data: NpyData::F64(vec![1.0, f64::NAN, f64::NEG_INFINITY, -0.0]) };
        assert_eq!(clean_array(&a).dumps(), "[[1.0, null], [null, -0.0]]");
        let a = NpyArray { shape: vec![], data: NpyData::I64(vec![7]) };
        assert_eq!(clean_array(&a).dumps(), "7");
        let a = NpyArray { shape: vec![2, 0], data: NpyData::Bool(vec![]) };
        assert_eq!(clean_array(&a).dumps(), "[[], []]");
        let a = NpyArray { shape: vec![3], data: NpyData::Bool(vec![true, false, true]) };
        assert_eq!(clean_array(&a).dumps(), "[true, false, true]");
    }

    #[test]
    fn dumps_like_python() {
        let v = Py::Dict(vec![
            ("b".into(), Py::List(vec![Py::Int(1), Py::Float(1e-7), Py::Float(f64::NAN)])),
            ("a\u{7f}é".into(), Py::Dict(vec![])),
            ("c".into(), Py::List(vec![Py::List(vec![]), Py::Null, Py::Float(f64::NEG_INFINITY)])),
        ]);
        assert_eq!(v.dumps(), "{\"b\": [1, 1e-07, NaN], \"a\\u007f\\u00e9\": {}, \"c\": [[], null, -Infinity]}");
        assert_eq!(
            v.dumps_indent(2),
            "{\n  \"b\": [\n    1,\n    1e-07,\n    NaN\n  ],\n  \"a\\u007f\\u00e9\": {},\n  \"c\": [\n    [],\n    null,\n    -Infinity\n  ]\n}"
        );
    }
}
