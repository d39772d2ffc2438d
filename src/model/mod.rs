//! AiiDA knowledge without I/O: node classes, crystal structures and the 3×3 linear algebra of
//! the reference's numpy, Python-compatible number and JSON spelling, timestamps.

pub mod linalg;
pub mod node_class;
pub mod pyjson;
pub mod structure;
pub mod time;
