//! What kind of AiiDA object a node is, read from its `node_type` (the type string AiiDA stores,
//! e.g. `data.core.structure.StructureData.`). Every rule that depends on a node's class asks
//! this module instead of matching type strings, so the exporters, the API versions (v4's
//! download formats and namespace tree, v2's typed resources) and OPTIMADE agree on it.

/// The broad family of a node: the first component of its `node_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `data.*`: inputs and outputs.
    Data,
    /// `process.*`: calculations and workflows.
    Process,
    /// The base `node.Node.` type or anything unknown.
    Other,
}

/// The classes whose behaviour the server knows (exports, derived properties, typed resources).
/// Data plugins outside aiida-core and unknown types are [`NodeClass::OtherData`] or
/// [`NodeClass::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeClass {
    Array,
    Bands,
    Kpoints,
    Projection,
    Trajectory,
    XyData,
    Cif,
    Upf,
    Structure,
    /// Any code class: the abstract base, installed, portable, containerized and the legacy
    /// `Code`.
    Code,
    Dict,
    Remote,
    Folder,
    /// Another data class (a base type such as `Int`, or a plugin's class).
    OtherData,
    CalcJob,
    CalcFunction,
    WorkChain,
    WorkFunction,
    /// Another process class (the abstract `CalculationNode`, `WorkflowNode`, ...).
    OtherProcess,
    Other,
}

/// `node_type` of each class that has one canonical type string.
const CANONICAL: &[(NodeClass, &str)] = &[
    (NodeClass::Array, "data.core.array.ArrayData."),
    (NodeClass::Bands, "data.core.array.bands.BandsData."),
    (NodeClass::Kpoints, "data.core.array.kpoints.KpointsData."),
    (NodeClass::Projection, "data.core.array.projection.ProjectionData."),
    (NodeClass::Trajectory, "data.core.array.trajectory.TrajectoryData."),
    (NodeClass::XyData, "data.core.array.xy.XyData."),
    (NodeClass::Cif, "data.core.cif.CifData."),
    (NodeClass::Upf, "data.core.upf.UpfData."),
    (NodeClass::Structure, "data.core.structure.StructureData."),
    (NodeClass::Dict, "data.core.dict.Dict."),
    (NodeClass::Remote, "data.core.remote.RemoteData."),
    (NodeClass::Folder, "data.core.folder.FolderData."),
    (NodeClass::CalcJob, "process.calculation.calcjob.CalcJobNode."),
    (NodeClass::CalcFunction, "process.calculation.calcfunction.CalcFunctionNode."),
    (NodeClass::WorkChain, "process.workflow.workchain.WorkChainNode."),
    (NodeClass::WorkFunction, "process.workflow.workfunction.WorkFunctionNode."),
];

/// The namespace of every code class (`data.core.code.installed.InstalledCode.`, ...).
pub const CODE_NAMESPACE: &str = "data.core.code.";

/// Which code class a [`NodeClass::Code`] node is (their downloads and labels differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeClass {
    /// `InstalledCode`: an executable on a computer.
    Installed,
    /// `PortableCode`: files stored with the node.
    Portable,
    /// `ContainerizedCode`: an executable in a container image on a computer.
    Containerized,
    /// The legacy `Code` class.
    Legacy,
    /// `AbstractCode` or another class in the code namespace.
    Other,
}

const CODE_CLASSES: &[(CodeClass, &str)] = &[
    (CodeClass::Installed, "data.core.code.installed.InstalledCode."),
    (CodeClass::Portable, "data.core.code.portable.PortableCode."),
    (CodeClass::Containerized, "data.core.code.containerized.ContainerizedCode."),
    (CodeClass::Legacy, "data.core.code.Code."),
];

impl NodeClass {
    /// The class of a stored `node_type`.
    pub fn of(node_type: &str) -> NodeClass {
        if let Some((class, _)) = CANONICAL.iter().find(|(_, t)| *t == node_type) {
            return *class;
        }
        if node_type.starts_with(CODE_NAMESPACE) {
            return NodeClass::Code;
        }
        match Family::of(node_type) {
            Family::Data => NodeClass::OtherData,
            Family::Process => NodeClass::OtherProcess,
            Family::Other => NodeClass::Other,
        }
    }

    /// The code class of a code's `node_type` (`None` for anything that is not a code).
    pub fn code_class(node_type: &str) -> Option<CodeClass> {
        if NodeClass::of(node_type) != NodeClass::Code {
            return None;
        }
        Some(CODE_CLASSES.iter().find(|(_, t)| *t == node_type).map_or(CodeClass::Other, |(c, _)| *c))
    }

    /// The canonical `node_type` of the class, where it has exactly one.
    pub fn node_type(self) -> Option<&'static str> {
        CANONICAL.iter().find(|(c, _)| *c == self).map(|(_, t)| *t)
    }

    pub fn family(self) -> Family {
        match self {
            NodeClass::CalcJob
            | NodeClass::CalcFunction
            | NodeClass::WorkChain
            | NodeClass::WorkFunction
            | NodeClass::OtherProcess => Family::Process,
            NodeClass::Other => Family::Other,
            _ => Family::Data,
        }
    }
}

impl Family {
    pub fn of(node_type: &str) -> Family {
        if node_type.starts_with("data.") {
            Family::Data
        } else if node_type.starts_with("process.") {
            Family::Process
        } else {
            Family::Other
        }
    }
}

/// The Python class name in a `node_type`: `KpointsData` for
/// `data.core.array.kpoints.KpointsData.`.
pub fn class_name(node_type: &str) -> &str {
    node_type.trim_end_matches('.').rsplit('.').next().unwrap_or(node_type)
}

/// Whether `node_type` is a data node (only those have downloads and derived properties).
pub fn is_data(node_type: &str) -> bool {
    Family::of(node_type) == Family::Data
}

/// Whether `node_type` is a process node (its `full_type` carries the process type).
pub fn is_process(node_type: &str) -> bool {
    Family::of(node_type) == Family::Process
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_type_strings() {
        assert_eq!(NodeClass::of("data.core.structure.StructureData."), NodeClass::Structure);
        assert_eq!(NodeClass::of("data.core.code.installed.InstalledCode."), NodeClass::Code);
        assert_eq!(NodeClass::of("data.core.code.Code."), NodeClass::Code);
        assert_eq!(NodeClass::of("data.core.int.Int."), NodeClass::OtherData);
        assert_eq!(NodeClass::of("data.myplugin.Foo."), NodeClass::OtherData);
        assert_eq!(NodeClass::of("process.calculation.calcjob.CalcJobNode."), NodeClass::CalcJob);
        assert_eq!(NodeClass::of("process.workflow.WorkflowNode."), NodeClass::OtherProcess);
        assert_eq!(NodeClass::of("node.Node."), NodeClass::Other);
        // A prefix of a known type is not that type.
        assert_eq!(NodeClass::of("data.core.structure."), NodeClass::OtherData);
    }

    #[test]
    fn canonical_types_round_trip() {
        for (class, node_type) in CANONICAL {
            assert_eq!(NodeClass::of(node_type), *class);
            assert_eq!(class.node_type(), Some(*node_type));
            assert_eq!(class.family(), Family::of(node_type));
        }
        assert_eq!(NodeClass::Code.node_type(), None);
        assert!(is_data("data.core.bool.Bool."));
        assert!(is_process("process.workflow.workchain.WorkChainNode."));
        assert!(!is_data("node.Node."));
    }

    #[test]
    fn code_classes_and_class_names() {
        assert_eq!(NodeClass::code_class("data.core.code.installed.InstalledCode."), Some(CodeClass::Installed));
        assert_eq!(NodeClass::code_class("data.core.code.portable.PortableCode."), Some(CodeClass::Portable));
        assert_eq!(
            NodeClass::code_class("data.core.code.containerized.ContainerizedCode."),
            Some(CodeClass::Containerized)
        );
        assert_eq!(NodeClass::code_class("data.core.code.Code."), Some(CodeClass::Legacy));
        assert_eq!(NodeClass::code_class("data.core.code.abstract.AbstractCode."), Some(CodeClass::Other));
        assert_eq!(NodeClass::code_class("data.core.int.Int."), None);
        assert_eq!(class_name("data.core.array.kpoints.KpointsData."), "KpointsData");
        assert_eq!(class_name("node.Node."), "Node");
        assert_eq!(class_name(""), "");
    }
}
