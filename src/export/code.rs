//! Codes: (being written)
use super::{Export, ExportError, NodeInfo};
pub fn export(_node: &NodeInfo, format: &str) -> Result<Export, ExportError> {
    Err(ExportError::Unsupported(format.into()))
}
pub fn description(_node: &NodeInfo) -> String {
    String::new()
}
