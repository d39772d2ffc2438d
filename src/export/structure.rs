//! StructureData: (being written)
use super::{Export, ExportError, NodeInfo};
use serde_json::Value;
pub fn export(_node: &NodeInfo, format: &str) -> Result<Export, ExportError> {
    Err(ExportError::Unsupported(format.into()))
}
pub fn derived_properties(_node: &NodeInfo) -> Result<Value, ExportError> {
    Ok(Value::Object(Default::default()))
}
pub fn description(_node: &NodeInfo) -> String {
    String::new()
}
