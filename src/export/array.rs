//! ArrayData: (being written)
use super::{Export, ExportError, NodeFiles, NodeInfo};
pub fn export(_node: &NodeInfo, _files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    Err(ExportError::Unsupported(format.into()))
}
