//! `/nodes/statistics`, `/nodes/full_types`, `/nodes/full_types_count` and
//! `/nodes/download_formats`: what kinds of nodes the database holds, and what each kind can be
//! downloaded as.
//!
//! The counting is `query::stats`; this module parses the parameters and builds the namespace
//! tree of the full types from the counts.

use std::collections::{BTreeMap, HashMap};

use axum::response::Response;
use serde_json::{Map, Value};

use crate::http::error::{ApiError, ApiResult};
use crate::http::querystring::{Op, Value as QValue};
use crate::model::node_class;
use crate::query::stats::{self, TypeCount};
use crate::storage::db::Db;

use crate::http::params::{Params, python_str};
use crate::http::request::Ctx;

/// Namespace of process nodes whose process_type is not an entry-point string.
const NO_ENTRY_POINT: &str = "~no-entry-point~";

/// Deeper namespaces are left out of the tree: building and writing it recurses once per level.
const MAX_DEPTH: usize = 256;

// ---------------------------------------------------------------------------------------------
// Handlers

/// `GET /nodes/statistics[?user=<id>]`
pub async fn statistics(db: &Db, ctx: &Ctx) -> ApiResult<Response> {
    let params = parse_params(ctx)?;
    let user = user_filter(&params, "/nodes/statistics")?;

    let stats = stats::statistics(db, user).await?;
    let data = serde_json::json!({
        "ctime_by_day": counts_object(stats.ctime_by_day),
        "total": stats.total,
        "types": counts_object(stats.types),
    });
    ok(ctx, data)
}

/// `GET /nodes/full_types` and `GET /nodes/full_types_count[?user=<id>]`
pub async fn full_types(db: &Db, ctx: &Ctx, counts: bool) -> ApiResult<Response> {
    let params = parse_params(ctx)?;
    // The reference reads the user only for the counting variant and ignores filters otherwise.
    let user = if counts { user_filter(&params, "/nodes/full_types_count")? } else { None };

    let groups = stats::full_type_counts(db, user).await?;
    ok(ctx, TREES.tree(&groups, counts))
}

/// The type trees already built, by a digest of their rows and the variant: the rows come from
/// the result cache, but building a large database's tree cost ten times the rest of the
/// answer (1.35M instructions per request at 10^5 nodes).
static TREES: Trees = Trees(std::sync::Mutex::new(Vec::new()));

struct Trees(std::sync::Mutex<Vec<((u64, bool), Value)>>);

impl Trees {
    /// Trees kept at most (the least recently built dropped first).
    const KEPT: usize = 32;

    fn tree(&self, groups: &[TypeCount], counts: bool) -> Value {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        for group in groups {
            (&group.node_type, &group.process_type, group.count).hash(&mut hasher);
        }
        let key = (hasher.finish(), counts);
        if let Some((_, tree)) = self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| *k == key) {
            return tree.clone();
        }
        let tree = node_namespace(groups, counts);
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= Self::KEPT {
            kept.remove(0);
        }
        kept.push((key, tree.clone()));
        tree
    }
}

/// `GET /nodes/download_formats[?full_type="<node_type>|<process_type>"]`
pub async fn download_formats(ctx: &Ctx) -> ApiResult<Response> {
    let params = parse_params(ctx)?;
    let data = match params.full_type.as_ref().filter(|v| truthy(v)) {
        None => {
            let mut all = Map::new();
            for (node_type, formats) in crate::export::FORMATS {
                all.insert(format!("{node_type}|"), string_list(formats));
            }
            Value::Object(all)
        }
        Some(QValue::Str(full_type)) => formats_of_full_type(full_type)?,
        Some(other) => return Err(invalid_full_type(&python_str(other))),
    };
    ok(ctx, data)
}

fn parse_params(ctx: &Ctx) -> ApiResult<Params> {
    let params = Params::parse(&ctx.query)?;
    Ok(params)
}

fn ok(ctx: &Ctx, data: Value) -> ApiResult<Response> {
    Ok(ctx.answer("nodes", Some(&Value::Null), &data, Some(0), None))
}

/// The `user=<id>` filter, the only one these endpoints understand. The reference fails with a
/// 500 on anything else; a clear 400 is more useful.
fn user_filter(params: &Params, endpoint: &str) -> ApiResult<Option<i64>> {
    let usage = format!("{endpoint} accepts only the filter user=<id>, with the integer id of a user");
    let mut user = None;
    for filter in &params.filters {
        if filter.key != "user" {
            return Err(ApiError::bad_request(format!("{usage}; '{}' is not accepted", filter.key)));
        }
        let [(op, value)] = filter.conditions.as_slice() else {
            return Err(ApiError::bad_request(format!("{usage}, given once")));
        };
        if *op != Op::Eq {
            return Err(ApiError::bad_request(format!("{usage}; the operator {} is not accepted", op.as_str())));
        }
        let id = match value {
            QValue::Int(i) => Some(*i),
            QValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(*f as i64),
            QValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        };
        user = Some(id.ok_or_else(|| ApiError::bad_request(format!("{usage}; got user={}", python_str(value))))?);
    }
    Ok(user)
}

/// `{key: count}`
fn counts_object(counts: Vec<(String, i64)>) -> Value {
    Value::Object(counts.into_iter().map(|(key, count)| (key, Value::from(count))).collect())
}

fn string_list(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

/// Python truthiness: the reference lists every format when `full_type` is empty or zero.
fn truthy(value: &QValue) -> bool {
    match value {
        QValue::Str(s) => !s.is_empty(),
        QValue::Int(i) => *i != 0,
        QValue::Float(f) => *f != 0.0,
        QValue::Bool(b) => *b,
        QValue::List(items) => !items.is_empty(),
        QValue::DateTime(_) => true,
        QValue::Null => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The namespace tree of `full_types`

/// One concrete node kind, placed in the tree at `namespace`.
#[derive(Debug, Clone, PartialEq)]
struct Leaf {
    namespace: String,
    label: String,
    full_type: String,
    counter: Option<i64>,
}

/// The tree of `/nodes/full_types` (with counters when `counts`), as a JSON value.
pub fn node_namespace(groups: &[TypeCount], counts: bool) -> Value {
    let mut root = Space::new("node", "node".into(), "node".into(), Some(infer_full_type("node")), None, false);
    for leaf in leaves(groups, counts) {
        root.create(&leaf.namespace, &leaf);
    }
    root.describe().0
}

/// The leaves, sorted by namespace (the order decides where same-named entries end up).
fn leaves(groups: &[TypeCount], counts: bool) -> Vec<Leaf> {
    // A NULL process_type is the same kind as an empty one.
    let mut pairs: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut per_node_type: HashMap<&str, i64> = HashMap::new();
    for group in groups {
        let process_type = group.process_type.as_deref().unwrap_or("");
        *pairs.entry((&group.node_type, process_type)).or_default() += group.count;
        *per_node_type.entry(&group.node_type).or_default() += group.count;
    }
    let mut leaves = Vec::with_capacity(pairs.len());
    for ((node_type, process_type), count) in pairs {
        let Some((namespace, label)) = leaf_position(node_type, process_type) else {
            continue;
        };
        // The reference fails (500) on an empty trailing component; such kinds are left out.
        if namespace.is_empty() || namespace.ends_with('.') || namespace.split('.').count() > MAX_DEPTH {
            continue;
        }
        // Only process kinds are told apart by process_type when counting.
        let counter = counts.then(|| if node_class::is_process(node_type) { count } else { per_node_type[node_type] });
        leaves.push(Leaf { namespace, label, full_type: format!("{node_type}|{process_type}"), counter });
    }
    leaves.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    leaves
}

/// Where a kind sits in the tree (namespace) and its label; `None` for node types without a
/// dot, which the reference skips.
fn leaf_position(node_type: &str, process_type: &str) -> Option<(String, String)> {
    let parts = rsplit2(node_type);
    let module = &parts[..parts.len().saturating_sub(2)];
    if process_type.is_empty() {
        if parts.len() < 2 {
            return None;
        }
        return Some((module.join("."), parts[parts.len() - 2].to_string()));
    }
    let mut namespace: Vec<&str> = module.to_vec();
    let label = match entry_point(process_type) {
        Some((_, name)) => {
            namespace.push(name);
            last_component(name)
        }
        None => {
            namespace.push(NO_ENTRY_POINT);
            namespace.push(process_type);
            last_component(process_type)
        }
    };
    Some((namespace.join("."), label.to_string()))
}

/// Python's `text.rsplit('.', 2)`.
fn rsplit2(text: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = text.rsplitn(3, '.').collect();
    parts.reverse();
    parts
}

fn last_component(text: &str) -> &str {
    text.rsplit('.').next().unwrap_or(text)
}

/// Labels of the well-known inner namespaces.
fn path_label(path: &str) -> Option<&'static str> {
    Some(match path {
        "node" => "Node",
        "node.data" => "Data",
        "node.process" => "Process",
        "node.process.calculation" => "Calculation",
        "node.process.calculation.calcjob" => "Calculation job",
        "node.process.calculation.calcfunction" => "Calculation function",
        "node.process.workflow" => "Workflow",
        "node.process.workflow.workchain" => "Work chain",
        "node.process.workflow.workfunction" => "Work function",
        _ => return None,
    })
}

/// Namespaces below these process paths are plugins: (path prefix, node class, entry-point group).
const PROCESS_PLUGIN_PATHS: [(&str, &str, &str); 4] = [
    ("process.calculation.calcjob.", "process.calculation.calcjob.CalcJobNode.", "aiida.calculations"),
    ("process.calculation.calcfunction.", "process.calculation.calcfunction.CalcFunctionNode.", "aiida.calculations"),
    ("process.workflow.workfunction.", "process.workflow.workfunction.WorkFunctionNode.", "aiida.workflows"),
    ("process.workflow.workchain.", "process.workflow.workchain.WorkChainNode.", "aiida.workflows"),
];

/// The full type that selects every node below an inner namespace at `path`.
fn infer_full_type(path: &str) -> String {
    let base = path.strip_prefix("node.").unwrap_or(path);
    if base.starts_with("process.") {
        for (prefix, class_type, group) in PROCESS_PLUGIN_PATHS {
            if let Some(plugin) = base.strip_prefix(prefix) {
                return if plugin.starts_with(NO_ENTRY_POINT) {
                    let module = plugin.strip_prefix("~no-entry-point~.").unwrap_or(plugin);
                    format!("{class_type}|{module}.%")
                } else {
                    format!("{class_type}|{group}:{plugin}.%")
                };
            }
        }
    }
    // The wildcard for process_type is decided on the result, so `node.process` gets it too.
    let mut full_type = format!("{base}.%|");
    if full_type.starts_with("process.") {
        full_type.push('%');
    }
    full_type
}

/// A node of the tree. Children keep their insertion order; replacing a child keeps its place.
#[derive(Debug)]
struct Space {
    namespace: String,
    path: String,
    label: String,
    full_type: Option<String>,
    counter: Option<i64>,
    is_leaf: bool,
    children: Vec<Space>,
    index: HashMap<String, usize>,
}

impl Space {
    fn new(
        namespace: &str,
        path: String,
        label: String,
        full_type: Option<String>,
        counter: Option<i64>,
        is_leaf: bool,
    ) -> Self {
        // Unregistered process types have no common full type to select them by.
        let (label, full_type) =
            if namespace == NO_ENTRY_POINT { ("Unregistered".into(), None) } else { (label, full_type) };
        Self {
            namespace: namespace.to_string(),
            path,
            label,
            full_type,
            counter,
            is_leaf,
            children: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn inner(namespace: &str, path: String) -> Self {
        let label = path_label(&path).map(str::to_string).unwrap_or_else(|| last_component(&path).to_string());
        let full_type = infer_full_type(&path);
        Self::new(namespace, path, label, Some(full_type), None, false)
    }

    fn leaf(namespace: &str, path: String, leaf: &Leaf) -> Self {
        Self::new(namespace, path, leaf.label.clone(), Some(leaf.full_type.clone()), leaf.counter, true)
    }

    fn set_child(&mut self, key: &str, child: Space) -> usize {
        match self.index.get(key) {
            Some(&i) => {
                self.children[i] = child;
                i
            }
            None => {
                self.children.push(child);
                self.index.insert(key.to_string(), self.children.len() - 1);
                self.children.len() - 1
            }
        }
    }

    /// Places `leaf` at the dotted `name` below this namespace, creating inner namespaces on
    /// the way. A kind whose namespace is also the parent of other kinds becomes a same-named
    /// child of that inner namespace.
    fn create(&mut self, name: &str, leaf: &Leaf) {
        let (head, rest) = match name.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (name, None),
        };
        let child_path = format!("{}.{head}", self.path);
        let i = match self.index.get(head).copied() {
            None => {
                let child = match rest {
                    Some(_) => Space::inner(head, child_path),
                    None => Space::leaf(head, child_path, leaf),
                };
                self.set_child(head, child)
            }
            Some(i) => {
                let existing_is_leaf = self.children[i].is_leaf;
                if existing_is_leaf && rest.is_some() {
                    // The old leaf keeps its path, which is now also its parent's.
                    let old = std::mem::replace(&mut self.children[i], Space::inner(head, child_path));
                    self.children[i].set_child(head, old);
                } else if !existing_is_leaf && rest.is_none() {
                    let path = format!("{child_path}.{head}");
                    self.children[i].set_child(head, Space::leaf(head, path, leaf));
                }
                // Two kinds with the same namespace: the first one stays (as in the reference).
                i
            }
        };
        if let Some(rest) = rest {
            self.children[i].create(rest, leaf);
        }
    }

    /// The JSON description and the counter (own plus the children's), if any.
    fn describe(self) -> (Value, Option<i64>) {
        let mut counter = self.counter;
        let mut subspaces = Vec::with_capacity(self.children.len());
        for child in self.children {
            let (value, child_counter) = child.describe();
            if let Some(c) = child_counter {
                counter = Some(counter.unwrap_or(0) + c);
            }
            subspaces.push(value);
        }
        let mut map = Map::new();
        map.insert("namespace".into(), Value::String(self.namespace));
        map.insert("full_type".into(), self.full_type.map(Value::String).unwrap_or(Value::Null));
        map.insert("label".into(), Value::String(self.label));
        map.insert("path".into(), Value::String(self.path));
        map.insert("subspaces".into(), Value::Array(subspaces));
        if let Some(c) = counter {
            map.insert("counter".into(), Value::from(c));
        }
        (Value::Object(map), counter)
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points and download formats

/// The entry-point groups aiida-core 2.9.4 knows: `group:name` process types in these groups
/// are entry-point strings.
const ENTRY_POINT_GROUPS: [&str; 20] = [
    "aiida.calculations",
    "aiida.calculations.importers",
    "aiida.calculations.monitors",
    "aiida.cmdline.computer.configure",
    "aiida.cmdline.data",
    "aiida.cmdline.data.structure.import",
    "aiida.data",
    "aiida.groups",
    "aiida.orm",
    "aiida.node",
    "aiida.parsers",
    "aiida.schedulers",
    "aiida.storage",
    "aiida.transports",
    "aiida.tools.calculations",
    "aiida.tools.workflows",
    "aiida.tools.data.orbitals",
    "aiida.tools.dbexporters",
    "aiida.tools.dbimporters",
    "aiida.workflows",
];

/// `(group, name)` of an entry-point string: exactly one `:` and a known group.
fn entry_point(text: &str) -> Option<(&str, &str)> {
    let (group, name) = text.split_once(':')?;
    (!name.contains(':') && ENTRY_POINT_GROUPS.contains(&group)).then_some((group, name))
}

/// The `aiida.data` entry points of aiida-core 2.9.4 and their class names; the class's
/// node_type is `data.<name>.<class>.`.
const DATA_ENTRY_POINTS: [(&str, &str); 32] = [
    ("core.array", "ArrayData"),
    ("core.array.bands", "BandsData"),
    ("core.array.kpoints", "KpointsData"),
    ("core.array.projection", "ProjectionData"),
    ("core.array.trajectory", "TrajectoryData"),
    ("core.array.xy", "XyData"),
    ("core.base", "BaseType"),
    ("core.bool", "Bool"),
    ("core.cif", "CifData"),
    ("core.code", "Code"),
    ("core.code.abstract", "AbstractCode"),
    ("core.code.containerized", "ContainerizedCode"),
    ("core.code.installed", "InstalledCode"),
    ("core.code.portable", "PortableCode"),
    ("core.dict", "Dict"),
    ("core.enum", "EnumData"),
    ("core.float", "Float"),
    ("core.folder", "FolderData"),
    ("core.int", "Int"),
    ("core.jsonable", "JsonableData"),
    ("core.list", "List"),
    ("core.numeric", "NumericType"),
    ("core.orbital", "OrbitalData"),
    ("core.remote", "RemoteData"),
    ("core.remote.stash", "RemoteStashData"),
    ("core.remote.stash.compress", "RemoteStashCompressedData"),
    ("core.remote.stash.custom", "RemoteStashCustomData"),
    ("core.remote.stash.folder", "RemoteStashFolderData"),
    ("core.singlefile", "SinglefileData"),
    ("core.str", "Str"),
    ("core.structure", "StructureData"),
    ("core.upf", "UpfData"),
];

/// Entry points that load the base `Data` class (no formats, but it has the notion).
const BASE_DATA_ENTRY_POINTS: [(&str, &str); 2] = [("aiida.node", "data"), ("aiida.orm", "core.data")];

/// The other entry points of aiida-core 2.9.4: they load, but what they load has no download
/// formats at all.
const OTHER_ENTRY_POINTS: [(&str, &[&str]); 14] = [
    (
        "aiida.calculations",
        &["core.arithmetic.add", "core.stash", "core.templatereplacer", "core.transfer", "core.unstash"],
    ),
    ("aiida.calculations.importers", &["core.arithmetic.add"]),
    ("aiida.calculations.monitors", &["core.always_kill"]),
    // `core.ssh` fails to load in the reference (500); it has no formats either way.
    ("aiida.cmdline.computer.configure", &["core.local", "core.ssh"]),
    (
        "aiida.cmdline.data",
        &[
            "core.array",
            "core.bands",
            "core.cif",
            "core.dict",
            "core.remote",
            "core.singlefile",
            "core.structure",
            "core.trajectory",
            "core.upf",
        ],
    ),
    ("aiida.groups", &["core", "core.auto", "core.import", "core.upf"]),
    (
        "aiida.node",
        &[
            "process",
            "process.calculation",
            "process.calculation.calcfunction",
            "process.calculation.calcjob",
            "process.workflow",
            "process.workflow.workchain",
            "process.workflow.workfunction",
        ],
    ),
    (
        "aiida.orm",
        &[
            "core.auth_info",
            "core.comment",
            "core.computer",
            "core.entity",
            "core.group",
            "core.log",
            "core.node",
            "core.user",
        ],
    ),
    ("aiida.parsers", &["core.arithmetic.add", "core.templatereplacer"]),
    ("aiida.schedulers", &["core.direct", "core.lsf", "core.pbspro", "core.sge", "core.slurm", "core.torque"]),
    ("aiida.storage", &["core.psql_dos", "core.sqlite_dos", "core.sqlite_temp", "core.sqlite_zip"]),
    ("aiida.tools.data.orbitals", &["core.orbital", "core.realhydrogen"]),
    (
        "aiida.tools.dbimporters",
        &[
            "core.cod",
            "core.icsd",
            "core.materialsproject",
            "core.mpds",
            "core.mpod",
            "core.nninc",
            "core.oqmd",
            "core.pcod",
            "core.tcod",
        ],
    ),
    ("aiida.transports", &["core.local", "core.ssh", "core.ssh_async"]),
];

/// `aiida.workflows` is listed apart only to keep the table above readable.
const WORKFLOW_ENTRY_POINTS: [&str; 2] = ["core.arithmetic.add_multiply", "core.arithmetic.multiply_add"];

/// Names from before aiida-core 2.0 that still resolve to `core.<name>`.
const DEPRECATED_NAMES: [(&str, &[&str]); 8] = [
    ("aiida.calculations", &["arithmetic.add", "templatereplacer"]),
    (
        "aiida.data",
        &[
            "array",
            "array.bands",
            "array.kpoints",
            "array.projection",
            "array.trajectory",
            "array.xy",
            "base",
            "bool",
            "cif",
            "code",
            "dict",
            "float",
            "folder",
            "int",
            "list",
            "numeric",
            "orbital",
            "remote",
            "remote.stash",
            "remote.stash.folder",
            "singlefile",
            "str",
            "structure",
            "upf",
        ],
    ),
    ("aiida.tools.dbimporters", &["cod", "icsd", "materialsproject", "mpds", "mpod", "nninc", "oqmd", "pcod", "tcod"]),
    ("aiida.tools.data.orbitals", &["orbital", "realhydrogen"]),
    ("aiida.parsers", &["arithmetic.add", "templatereplacer.doubler"]),
    ("aiida.schedulers", &["direct", "lsf", "pbspro", "sge", "slurm", "torque"]),
    ("aiida.transports", &["local", "ssh"]),
    ("aiida.workflows", &["arithmetic.multiply_add", "arithmetic.add_multiply"]),
];

/// What an entry point loads, as far as download formats are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loaded {
    /// A data class, with its (possibly empty) formats.
    Data(&'static [&'static str]),
    /// Anything else: it has no notion of download formats.
    Other,
}

/// Resolves an entry point of aiida-core itself; `None` when it does not exist (plugins are
/// not installed here).
fn load_entry_point(group: &str, name: &str) -> Option<Loaded> {
    let deprecated = DEPRECATED_NAMES.iter().any(|(g, names)| *g == group && names.contains(&name));
    let current;
    let name = if deprecated {
        current = format!("core.{name}");
        current.as_str()
    } else {
        name
    };
    if group == "aiida.data" {
        return DATA_ENTRY_POINTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, class)| Loaded::Data(crate::export::formats(&format!("data.{n}.{class}."))));
    }
    if BASE_DATA_ENTRY_POINTS.contains(&(group, name)) {
        return Some(Loaded::Data(&[]));
    }
    let known = OTHER_ENTRY_POINTS.iter().any(|(g, names)| *g == group && names.contains(&name))
        || (group == "aiida.workflows" && WORKFLOW_ENTRY_POINTS.contains(&name));
    known.then_some(Loaded::Other)
}

/// The class a full type stands for: its process_type's entry point, else for data nodes the
/// data entry point named by the node_type's module part.
fn load_full_type(node_type: &str, process_type: &str) -> Option<Loaded> {
    if let Some((group, name)) = entry_point(process_type) {
        return load_entry_point(group, name);
    }
    let module = node_type.strip_prefix("data.")?;
    load_entry_point("aiida.data", rsplit2(module)[0])
}

fn invalid_full_type(full_type: &str) -> ApiError {
    ApiError::bad_request(format!("The full type {full_type} is invalid."))
}

/// `{full_type: [formats]}`, or `{}` when the class has no notion of formats.
fn formats_of_full_type(full_type: &str) -> ApiResult<Value> {
    let (node_type, process_type) = match full_type.split_once('|') {
        Some((n, p)) if !p.contains('|') => (n, p),
        _ => return Err(invalid_full_type(full_type)),
    };
    // The reference answers 501 here; a class it does not know is not a server failure.
    let loaded = load_full_type(node_type, process_type)
        .ok_or_else(|| ApiError::not_found("The download formats for this node type are not available."))?;
    let mut map = Map::new();
    if let Loaded::Data(formats) = loaded {
        map.insert(full_type.to_string(), string_list(formats));
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::filter::rest::split_full_type;

    fn group(node_type: &str, process_type: Option<&str>, count: i64) -> TypeCount {
        TypeCount { node_type: node_type.into(), process_type: process_type.map(str::to_string), count }
    }

    /// The subspace with the given namespace.
    fn sub<'a>(space: &'a Value, namespace: &str) -> &'a Value {
        space["subspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["namespace"] == namespace)
            .unwrap_or_else(|| panic!("no subspace {namespace} in {}", space["path"]))
    }

    fn n_subs(space: &Value) -> usize {
        space["subspaces"].as_array().unwrap().len()
    }

    /// Whether a node with these types is selected by `full_type`, with the semantics of the
    /// `/nodes?full_type=` filter.
    fn selects(full_type: &str, node_type: &str, process_type: Option<&str>) -> bool {
        let (nt, pt) = split_full_type(full_type).unwrap();
        let node_ok = match nt.strip_suffix('%') {
            Some(prefix) => node_type.starts_with(prefix),
            None => node_type == nt,
        };
        let process_type = process_type.unwrap_or("");
        let process_ok = match pt.strip_suffix('%') {
            Some(prefix) => process_type.starts_with(prefix),
            None => process_type == pt,
        };
        node_ok && process_ok
    }

    fn selected(full_type: &Value, nodes: &[TypeCount]) -> i64 {
        let ft = full_type.as_str().unwrap();
        nodes.iter().filter(|n| selects(ft, &n.node_type, n.process_type.as_deref())).map(|n| n.count).sum()
    }

    #[test]
    fn leaf_positions() {
        let pos = |nt, pt| leaf_position(nt, pt).map(|(n, l)| format!("{n} {l}"));
        assert_eq!(pos("data.core.dict.Dict.", "").unwrap(), "data.core.dict Dict");
        assert_eq!(pos("data.core.array.ArrayData.", "").unwrap(), "data.core.array ArrayData");
        assert_eq!(
            pos("process.calculation.calcjob.CalcJobNode.", "aiida.calculations:core.arithmetic.add").unwrap(),
            "process.calculation.calcjob.core.arithmetic.add add"
        );
        assert_eq!(
            pos("process.calculation.calcfunction.CalcFunctionNode.", "mod.sub.func").unwrap(),
            "process.calculation.calcfunction.~no-entry-point~.mod.sub.func func"
        );
        // Two colons or an unknown group: not an entry point.
        assert_eq!(pos("process.X.", "aiida.data:a:b").unwrap(), "process.~no-entry-point~.aiida.data:a:b data:a:b");
        assert_eq!(pos("process.X.", "aiida.brokers:x").unwrap(), "process.~no-entry-point~.aiida.brokers:x brokers:x");
        assert_eq!(pos("Node", ""), None);
        assert_eq!(pos("data.", "").unwrap(), " data");
        assert_eq!(pos("Node", "aiida.workflows:a.b").unwrap(), "a.b b");
    }

    #[test]
    fn inferred_full_types() {
        assert_eq!(infer_full_type("node"), "node.%|");
        assert_eq!(infer_full_type("node.data.core"), "data.core.%|");
        assert_eq!(infer_full_type("node.process"), "process.%|%");
        assert_eq!(infer_full_type("node.process.calculation.calcjob"), "process.calculation.calcjob.%|%");
        assert_eq!(
            infer_full_type("node.process.calculation.calcjob.core.arithmetic"),
            "process.calculation.calcjob.CalcJobNode.|aiida.calculations:core.arithmetic.%"
        );
        assert_eq!(
            infer_full_type("node.process.workflow.workfunction.~no-entry-point~.mod.sub"),
            "process.workflow.workfunction.WorkFunctionNode.|mod.sub.%"
        );
    }

    #[test]
    fn leaf_that_is_also_a_namespace() {
        let tree = node_namespace(
            &[
                group("data.core.array.bands.BandsData.", None, 2),
                group("data.core.array.ArrayData.", None, 1),
                group("data.core.dict.Dict.", Some(""), 3),
            ],
            true,
        );
        assert_eq!(tree["label"], "node");
        assert_eq!(tree["full_type"], "node.%|");
        assert_eq!(tree["counter"], 6);
        let core = sub(sub(&tree, "data"), "core");
        assert_eq!(core["full_type"], "data.core.%|");
        let array = sub(core, "array");
        assert_eq!(array["path"], "node.data.core.array");
        assert_eq!(array["full_type"], "data.core.array.%|");
        assert_eq!(array["counter"], 3);
        // The ArrayData leaf moved inside the `array` namespace, first, with its own path.
        let names: Vec<_> = array["subspaces"].as_array().unwrap().iter().map(|s| s["label"].clone()).collect();
        assert_eq!(names, ["ArrayData", "BandsData"]);
        let leaf = &array["subspaces"][0];
        assert_eq!(leaf["path"], "node.data.core.array");
        assert_eq!(leaf["full_type"], "data.core.array.ArrayData.|");
        assert_eq!(leaf["counter"], 1);
        assert_eq!(sub(core, "dict")["counter"], 3);
        // Without counts there is no counter anywhere.
        let plain = node_namespace(&[group("data.core.dict.Dict.", None, 3)], false);
        assert!(plain.get("counter").is_none());
        assert!(sub(&plain, "data").get("counter").is_none());
    }

    #[test]
    fn leaf_arriving_at_an_inner_namespace() {
        let leaf = |ns: &str, label: &str| Leaf {
            namespace: ns.into(),
            label: label.into(),
            full_type: format!("{label}|"),
            counter: Some(1),
        };
        let mut root = Space::new("node", "node".into(), "node".into(), None, None, false);
        root.create("a.b", &leaf("a.b", "B"));
        root.create("a", &leaf("a", "A"));
        root.create("a", &leaf("a", "A2"));
        let (tree, total) = root.describe();
        assert_eq!(total, Some(2));
        let a = sub(&tree, "a");
        assert_eq!(a["label"], "a");
        // The later leaf replaced the earlier one in place.
        assert_eq!(a["subspaces"][0]["label"], "B");
        assert_eq!(a["subspaces"][1]["label"], "A2");
        assert_eq!(a["subspaces"][1]["path"], "node.a.a");
    }

    #[test]
    fn duplicate_namespaces_keep_the_first() {
        let tree =
            node_namespace(&[group("data.core.dict.Dict.", None, 3), group("data.core.dict.Other.", None, 4)], true);
        let dict = sub(sub(sub(&tree, "data"), "core"), "dict");
        assert_eq!(dict["label"], "Dict");
        assert_eq!(tree["counter"], 3);
    }

    #[test]
    fn counters_of_data_ignore_process_type() {
        let groups = [
            group("data.core.int.Int.", None, 5),
            group("data.core.int.Int.", Some("mod.f"), 2),
            group("process.calculation.calcfunction.CalcFunctionNode.", Some("mod.f"), 7),
            group("process.calculation.calcfunction.CalcFunctionNode.", None, 1),
            group("process.calculation.calcfunction.CalcFunctionNode.", Some(""), 2),
        ];
        let tree = node_namespace(&groups, true);
        let int = sub(sub(sub(&tree, "data"), "core"), "int");
        assert_eq!(int["label"], "int");
        assert_eq!(sub(int, "int")["counter"], 7);
        assert_eq!(sub(int, "~no-entry-point~")["counter"], 7);
        let calcfunction = sub(sub(sub(&tree, "process"), "calculation"), "calcfunction");
        assert_eq!(sub(calcfunction, "calcfunction")["counter"], 3);
        assert_eq!(sub(calcfunction, "~no-entry-point~")["counter"], 7);
    }

    #[test]
    fn malformed_namespaces_are_left_out() {
        let tree = node_namespace(
            &[
                group("data.", None, 1),
                group("process.calculation.calcfunction.CalcFunctionNode.", Some("module."), 1),
                group("Node", None, 1),
                group("data.core.dict.Dict.", None, 1),
            ],
            true,
        );
        assert_eq!(tree["counter"], 1);
        assert_eq!(n_subs(&tree), 1);
    }

    fn unregistered(node_type: &str, base: &[&str]) {
        let nodes = [
            group(node_type, Some("unregistered_type1.process1"), 1),
            group(node_type, Some("unregistered_type2.process1"), 1),
            group(node_type, Some("unregistered_type2.process2"), 1),
        ];
        let tree = node_namespace(&nodes, false);
        assert_eq!(n_subs(&tree), 1);
        let mut space = &tree;
        for name in base {
            space = sub(space, name);
            assert_eq!(n_subs(space), 1, "{name}");
            assert_eq!(selected(&space["full_type"], &nodes), 3, "{name}");
        }
        let unreg = sub(space, NO_ENTRY_POINT);
        assert_eq!(unreg["label"], "Unregistered");
        assert_eq!(unreg["full_type"], Value::Null);
        assert_eq!(n_subs(unreg), 2);
        for (module, n) in [("unregistered_type1", 1), ("unregistered_type2", 2)] {
            let space = sub(unreg, module);
            assert_eq!(n_subs(space), n);
            assert_eq!(selected(&space["full_type"], &nodes), n as i64);
            for leaf in space["subspaces"].as_array().unwrap() {
                assert_eq!(n_subs(leaf), 0);
                assert_eq!(selected(&leaf["full_type"], &nodes), 1);
            }
        }
    }

    #[test]
    fn test_full_type_unregistered() {
        unregistered("process.calculation.calcfunction.CalcFunctionNode.", &["process", "calculation", "calcfunction"]);
        unregistered("process.calculation.calcjob.CalcJobNode.", &["process", "calculation", "calcjob"]);
        unregistered("process.workflow.workfunction.WorkFunctionNode.", &["process", "workflow", "workfunction"]);
        unregistered("process.workflow.workchain.WorkChainNode.", &["process", "workflow", "workchain"]);
    }

    #[test]
    fn test_full_type_backwards_compatibility() {
        for node_type in ["process.calculation.calcfunction.CalcFunctionNode.", "data.core.dict.Dict."] {
            let nodes = [group(node_type, Some(""), 1), group(node_type, None, 1)];
            for counts in [false, true] {
                let tree = node_namespace(&nodes, counts);
                let mut space = &tree;
                for level in 0..3 {
                    assert_eq!(n_subs(space), 1, "{node_type} level {level}");
                    space = &space["subspaces"][0];
                    if level < 2 {
                        assert_eq!(selected(&space["full_type"], &nodes), 2, "{node_type} level {}", level + 1);
                    }
                }
                if counts {
                    assert_eq!(tree["counter"], 2);
                }
            }
        }
    }

    #[test]
    fn entry_point_strings() {
        assert_eq!(
            entry_point("aiida.calculations:core.arithmetic.add"),
            Some(("aiida.calculations", "core.arithmetic.add"))
        );
        assert_eq!(entry_point("aiida.tools.dbimporters:x"), Some(("aiida.tools.dbimporters", "x")));
        assert_eq!(entry_point("aiida.brokers:core.rabbitmq"), None);
        assert_eq!(entry_point("aiida.data:a:b"), None);
        assert_eq!(entry_point("module.func"), None);
    }

    #[test]
    fn formats_by_full_type() {
        let formats = |ft: &str| {
            formats_of_full_type(ft).map(|v| v.to_string()).map_err(|e| (e.status().as_u16(), e.to_string()))
        };
        assert_eq!(
            formats("data.core.structure.StructureData.|").unwrap(),
            r#"{"data.core.structure.StructureData.|":["chemdoodle","cif","xsf","xyz"]}"#
        );
        assert_eq!(formats("data.core.dict.Dict.|").unwrap(), r#"{"data.core.dict.Dict.|":[]}"#);
        assert_eq!(formats("data.core.dict.Dict.|%").unwrap(), r#"{"data.core.dict.Dict.|%":[]}"#);
        // Legacy node types and names resolve through the deprecated names.
        assert_eq!(formats("data.dict.Dict.|").unwrap(), r#"{"data.dict.Dict.|":[]}"#);
        assert_eq!(formats("data.array.bands.BandsData.|").unwrap().matches(',').count(), 9);
        // The class comes from the module part of the node type.
        assert_eq!(formats("data.core.array.Foo.|").unwrap(), r#"{"data.core.array.Foo.|":["json"]}"#);
        // A process_type entry point wins over the node type.
        assert_eq!(formats("x.|aiida.data:core.cif").unwrap(), r#"{"x.|aiida.data:core.cif":["cif"]}"#);
        assert_eq!(formats("x|aiida.node:data").unwrap(), r#"{"x|aiida.node:data":[]}"#);
        assert_eq!(
            formats("process.calculation.calcjob.CalcJobNode.|aiida.calculations:core.arithmetic.add").unwrap(),
            "{}"
        );
        assert_eq!(formats("x.|aiida.schedulers:direct").unwrap(), "{}");
        assert_eq!(formats("x.|aiida.workflows:core.arithmetic.multiply_add").unwrap(), "{}");
        // An invalid entry-point string falls back to the node type.
        assert_eq!(
            formats("data.core.cif.CifData.|aiida.data:a:b").unwrap(),
            r#"{"data.core.cif.CifData.|aiida.data:a:b":["cif"]}"#
        );
        let not_available = (404, "The download formats for this node type are not available.".to_string());
        for ft in [
            "data.core.foo.Foo.|",
            "data.Data.|",
            "data.|",
            "data.core.structure.|",
            "%|",
            "process.calculation.calcfunction.CalcFunctionNode.|mod.f",
            "process.calculation.calcjob.CalcJobNode.|aiida.calculations:quantumespresso.pw",
            "x.|aiida.parsers:templatereplacer.doubler",
            "x.|aiida.data:",
        ] {
            assert_eq!(formats(ft).unwrap_err(), not_available, "{ft}");
        }
        for ft in ["abc", "a|b|c"] {
            assert_eq!(formats(ft).unwrap_err(), (400, format!("The full type {ft} is invalid.")));
        }
    }

    #[test]
    fn listed_formats_are_loadable() {
        // Every class of the format table is reachable through its data entry point.
        for (node_type, formats) in crate::export::FORMATS {
            let module = node_type.strip_prefix("data.").unwrap();
            assert_eq!(load_entry_point("aiida.data", rsplit2(module)[0]), Some(Loaded::Data(formats)), "{node_type}");
        }
    }

    #[test]
    fn user_filter_accepts_only_user_equals() {
        let user = |q: &str| user_filter(&Params::parse(q).unwrap(), "/x").map_err(|e| e.to_string());
        assert_eq!(user("").unwrap(), None);
        assert_eq!(user("user=3").unwrap(), Some(3));
        assert_eq!(user("user=\"3\"").unwrap(), Some(3));
        assert_eq!(user("user=3&limit=2").unwrap(), Some(3));
        assert!(user("id=3").unwrap_err().contains("'id' is not accepted"));
        assert!(user("user=1&id=3").is_err());
        assert!(user("user>1").unwrap_err().contains("operator >"));
        assert!(user("user=1&user=2").is_err());
        assert!(user("user=\"bob\"").is_err());
    }

    #[test]
    fn kept_trees_are_the_trees_built() {
        let group = |node_type: &str, count| TypeCount { node_type: node_type.into(), process_type: None, count };
        let a = vec![group("data.core.dict.Dict.", 3), group("data.core.int.Int.", 1)];
        let b = vec![group("data.core.dict.Dict.", 4), group("data.core.int.Int.", 1)];
        for groups in [&a, &b, &a] {
            for counts in [true, false] {
                assert_eq!(TREES.tree(groups, counts), node_namespace(groups, counts));
            }
        }
        assert_ne!(TREES.tree(&a, true), TREES.tree(&b, true));
    }
}
