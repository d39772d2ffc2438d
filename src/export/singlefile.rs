//! CifData and UpfData: (being written)
use super::{Export, ExportError, NodeFiles, NodeInfo};
pub fn export_cif(_node: &NodeInfo, _files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    Err(ExportError::Unsupported(format.into()))
}
pub fn export_upf(_node: &NodeInfo, _files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    Err(ExportError::Unsupported(format.into()))
}
