//! What AiiDA's data classes compute from a node: the download formats (`/download`) and the
//! derived properties (`/contents/derived_properties`). Everything here is pure computation over
//! the node's row and its repository files, so it runs on a blocking thread.

mod array;
mod bands;
pub mod bz;
mod code;
mod kpoints;
mod npy;
mod plot;
mod singlefile;
mod structure;
mod trajectory;

use serde_json::Value;

use crate::model::node_class::NodeClass;
use crate::model::structure::StructureError;
use crate::storage::repository::RepoError;

/// The node as the exporters see it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: i64,
    pub uuid: String,
    pub node_type: String,
    pub process_type: Option<String>,
    pub label: String,
    pub description: String,
    /// The attributes dict (`{}` when the column is NULL).
    pub attributes: Value,
    /// The top-level attribute keys in the order the database stores them (`attributes` is a
    /// sorted map); some exports list arrays in this order.
    pub attribute_keys: Vec<String>,
    /// Label of the node's computer, if it has one (codes print `label@computer`).
    pub computer_label: Option<String>,
}

/// The keys of a JSON object text in the order they are written (empty if it is not an object).
pub fn ordered_keys(json: &str) -> Vec<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    serde_json::Deserializer::from_str(json).deserialize_map(Keys).unwrap_or_default()
}

/// Read access to the node's own repository files (blocking).
pub trait NodeFiles {
    /// The whole content of the file at `path` (relative, `/`-separated).
    fn read(&self, path: &str) -> Result<Vec<u8>, RepoError>;
}

/// A download: the bytes and the file name the reference gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub content: Vec<u8>,
    /// `None` means the default `<uuid>.<format>`.
    pub filename: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The node type has no such format.
    #[error("The format {0} is not supported.")]
    Unsupported(String),
    /// The node's data cannot be exported (inconsistent attributes, unreadable arrays, ...).
    #[error("{0}")]
    Invalid(String),
    /// The format exists in the reference but needs a library this server does not carry.
    #[error("{0}")]
    NotAvailable(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<StructureError> for ExportError {
    fn from(e: StructureError) -> Self {
        ExportError::Invalid(e.0)
    }
}

/// The node_type of a class and the download formats the reference offers for it, sorted as
/// `/nodes/download_formats` lists them (core plugins of aiida-core 2.9.4).
pub const FORMATS: &[(&str, &[&str])] = &[
    ("data.core.array.ArrayData.", &["json"]),
    (
        "data.core.array.bands.BandsData.",
        &[
            "agr",
            "agr_batch",
            "dat_blocks",
            "dat_multicolumn",
            "gnuplot",
            "json",
            "mpl_pdf",
            "mpl_png",
            "mpl_singlefile",
            "mpl_withjson",
        ],
    ),
    ("data.core.array.kpoints.KpointsData.", &["json"]),
    ("data.core.array.projection.ProjectionData.", &["json"]),
    ("data.core.array.trajectory.TrajectoryData.", &["cif", "json", "xsf"]),
    ("data.core.array.xy.XyData.", &["json"]),
    ("data.core.cif.CifData.", &["cif"]),
    ("data.core.code.Code.", &["yaml", "yml"]),
    ("data.core.code.abstract.AbstractCode.", &["yaml", "yml"]),
    ("data.core.code.containerized.ContainerizedCode.", &["yaml", "yml"]),
    ("data.core.code.installed.InstalledCode.", &["yaml", "yml"]),
    ("data.core.code.portable.PortableCode.", &["yaml", "yml"]),
    ("data.core.structure.StructureData.", &["chemdoodle", "cif", "xsf", "xyz"]),
    ("data.core.upf.UpfData.", &["json", "upf"]),
];

/// The download formats of a node type (empty when it has none).
pub fn formats(node_type: &str) -> &'static [&'static str] {
    FORMATS.iter().find(|(t, _)| *t == node_type).map(|(_, f)| *f).unwrap_or(&[])
}

/// Exports `node` in `format`.
pub fn export(node: &NodeInfo, files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    if !formats(&node.node_type).contains(&format) {
        return Err(ExportError::Unsupported(format.to_string()));
    }
    match NodeClass::of(&node.node_type) {
        NodeClass::Structure => structure::export(node, format),
        NodeClass::Cif => singlefile::export_cif(node, files, format),
        NodeClass::Upf => singlefile::export_upf(node, files, format),
        NodeClass::Bands => bands::export(node, files, format),
        NodeClass::Code => code::export(node, format),
        NodeClass::Trajectory => trajectory::export(node, files, format),
        // ArrayData and its other subclasses: the arrays as JSON.
        _ => array::export(node, files, format),
    }
}

/// `/contents/derived_properties`: what the reference's translator for the node's class
/// computes, and `{}` for classes without one.
pub fn derived_properties(node: &NodeInfo, files: &dyn NodeFiles) -> Result<Value, ExportError> {
    match NodeClass::of(&node.node_type) {
        NodeClass::Structure => structure::derived_properties(node),
        NodeClass::Kpoints => kpoints::derived_properties(node, files),
        NodeClass::Bands => bands::derived_properties(node, files),
        _ => Ok(Value::Object(Default::default())),
    }
}

/// `node.get_description()` as shown by `/links/tree`: the class-specific one-line summary.
pub fn description(node: &NodeInfo) -> String {
    match NodeClass::of(&node.node_type) {
        NodeClass::Structure => structure::description(node),
        NodeClass::Kpoints | NodeClass::Bands => kpoints::description(node),
        NodeClass::Code => code::description(node),
        NodeClass::CalcJob => node.attributes.get("state").and_then(Value::as_str).unwrap_or("").to_string(),
        _ => String::new(),
    }
}
