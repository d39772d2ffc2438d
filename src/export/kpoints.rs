//! KpointsData: (being written)
use super::{ExportError, NodeFiles, NodeInfo};
use serde_json::Value;
pub fn derived_properties(_node: &NodeInfo, _files: &dyn NodeFiles) -> Result<Value, ExportError> {
    Ok(Value::Object(Default::default()))
}
pub fn description(_node: &NodeInfo) -> String {
    String::new()
}
