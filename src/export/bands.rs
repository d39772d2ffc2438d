//! BandsData: (being written)
use super::{Export, ExportError, NodeFiles, NodeInfo};
use serde_json::Value;
pub fn export(_node: &NodeInfo, _files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    Err(ExportError::Unsupported(format.into()))
}
pub fn derived_properties(_node: &NodeInfo, _files: &dyn NodeFiles) -> Result<Value, ExportError> {
    Ok(Value::Object(Default::default()))
}
