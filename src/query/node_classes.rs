//! Node queries by class: the restriction of a node query to a class and its subclasses
//! (`node_type` prefixes), the type strings older AiiDA versions stored (mapped to today's), and
//! the process state of process nodes (an attribute today, a column in AiiDA 0.x).
//!
//! REST API v2 serves typed resources (`/structures`, `/codes`, `/calculations`, ...) and
//! accepts the type strings of its time; this module is what it asks.

use std::collections::HashMap;

use crate::query::error::QueryResult;
use crate::query::lists::{Conditions, Scope};
use crate::storage::db::sql::escape_like;
use crate::storage::db::{Cell, Db, Dialect, Query};

/// Nodes whose `node_type` starts with one of `prefixes` (none: every node). A class and its
/// subclasses share the module path of the class, so a prefix selects both.
#[derive(Debug, Clone, Copy)]
pub struct TypePrefixes(pub &'static [&'static str]);

impl TypePrefixes {
    /// Appends ` AND (node_type LIKE 'p1%' OR ...)` on `alias.node_type` (nothing when there is
    /// no prefix).
    pub fn push(&self, q: &mut Query, alias: &str) {
        if self.0.is_empty() {
            return;
        }
        q.push(" AND (");
        for (i, prefix) in self.0.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push(alias).push(".node_type LIKE ").bind_text(format!("{}%", escape_like(prefix))).push(" ESCAPE '\\'");
        }
        q.push(")");
    }

    /// Whether a stored `node_type` is in the class.
    pub fn contains(&self, node_type: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| node_type.starts_with(p))
    }
}

/// A class restriction followed by other conditions, as one [`Conditions`].
pub struct InClass<'a> {
    pub class: TypePrefixes,
    pub conditions: &'a dyn Conditions,
}

impl Conditions for InClass<'_> {
    fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()> {
        self.class.push(q, scope.entity.alias);
        self.conditions.push(q, scope)
    }
}

/// The SQL expression of the process state attribute of node alias `alias` (text, NULL when
/// the node has none).
pub fn process_state_sql(dialect: Dialect, alias: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("json_extract({alias}.attributes, '$.process_state')"),
        Dialect::Postgres => format!("({alias}.attributes ->> 'process_state')"),
    }
}

/// The process state of each of `pks` that has one (one query, whatever the number).
pub async fn process_states(db: &Db, pks: &[i64]) -> QueryResult<HashMap<i64, String>> {
    let mut states = HashMap::new();
    if pks.is_empty() {
        return Ok(states);
    }
    let mut q = db.query();
    let state = process_state_sql(q.dialect, "n");
    q.push("SELECT n.id, ").push(&state).push(" FROM db_dbnode n WHERE n.node_type LIKE 'process.%' AND n.id IN (");
    for (i, pk) in pks.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind_int(*pk);
    }
    q.push(")");
    for row in db.fetch_all(q).await? {
        let mut cells = row.into_iter();
        if let (Some(id), Some(Cell::Text(state))) = (cells.next().and_then(|c| c.as_i64()), cells.next()) {
            states.insert(id, state);
        }
    }
    Ok(states)
}

/// Type strings of AiiDA 0.x and 1.x whose class lives elsewhere today, exactly.
pub const RENAMED_TYPES: &[(&str, &str)] = &[
    ("data.parameter.ParameterData.", "data.core.dict.Dict."),
    ("data.base.Int.", "data.core.int.Int."),
    ("data.base.Float.", "data.core.float.Float."),
    ("data.base.Str.", "data.core.str.Str."),
    ("data.base.Bool.", "data.core.bool.Bool."),
    ("data.base.List.", "data.core.list.List."),
    ("code.Code.", "data.core.code.Code."),
    ("calculation.job.JobCalculation.", "process.calculation.calcjob.CalcJobNode."),
    ("calculation.inline.InlineCalculation.", "process.calculation.calcfunction.CalcFunctionNode."),
    ("calculation.function.FunctionCalculation.", "process.workflow.workfunction.WorkFunctionNode."),
    ("calculation.work.WorkCalculation.", "process.workflow.workchain.WorkChainNode."),
    ("calculation.Calculation.", "process.calculation.CalculationNode."),
    ("node.process.calculation.CalcFunctionNode.", "process.calculation.calcfunction.CalcFunctionNode."),
    ("node.process.calculation.CalcJobNode.", "process.calculation.calcjob.CalcJobNode."),
    ("node.process.workflow.WorkChainNode.", "process.workflow.workchain.WorkChainNode."),
    ("node.process.workflow.WorkFunctionNode.", "process.workflow.workfunction.WorkFunctionNode."),
];

/// Module prefixes of older type strings and today's (a prefix maps every type below it).
pub const RENAMED_PREFIXES: &[(&str, &str)] = &[
    ("calculation.job.", "process.calculation.calcjob."),
    ("code.", "data.core.code."),
    ("node.process.", "process."),
    ("data.parameter.", "data.core.dict."),
    ("data.base.", "data.core."),
];

/// The modules of aiida-core's own data classes, which moved below `data.core.` in AiiDA 2.0
/// (`data.structure.StructureData.` is `data.core.structure.StructureData.` today).
pub const CORE_DATA_MODULES: &[&str] = &[
    "array",
    "bool",
    "cif",
    "code",
    "dict",
    "enum",
    "float",
    "folder",
    "int",
    "jsonable",
    "list",
    "numeric",
    "orbital",
    "remote",
    "singlefile",
    "str",
    "structure",
    "upf",
];

/// Today's spelling of a type string (or of the start of one, such as a `LIKE` pattern) written
/// as an older AiiDA stored it; today's strings and unknown ones are returned unchanged.
///
/// A job calculation of a plugin (`calculation.job.quantumespresso.pw.PwCalculation.`) is a
/// `CalcJobNode` today, its plugin in `process_type`: it maps to the CalcJobNode type string.
pub fn modern_type_string(old: &str) -> String {
    if let Some((_, new)) = RENAMED_TYPES.iter().find(|(o, _)| *o == old) {
        return new.to_string();
    }
    if let Some(rest) = old.strip_prefix("calculation.job.")
        && !rest.is_empty()
        && !rest.starts_with('%')
    {
        return "process.calculation.calcjob.CalcJobNode.".into();
    }
    for (o, n) in RENAMED_PREFIXES {
        if let Some(rest) = old.strip_prefix(o) {
            return format!("{n}{rest}");
        }
    }
    if let Some(rest) = old.strip_prefix("data.") {
        let module = rest.split('.').next().unwrap_or("");
        if CORE_DATA_MODULES.contains(&module) && rest.len() > module.len() {
            return format!("data.core.{rest}");
        }
    }
    old.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_type_strings() {
        for (old, new) in [
            ("data.structure.StructureData.", "data.core.structure.StructureData."),
            ("data.array.kpoints.KpointsData.", "data.core.array.kpoints.KpointsData."),
            ("data.remote.RemoteData.", "data.core.remote.RemoteData."),
            ("data.dict.Dict.", "data.core.dict.Dict."),
            ("data.parameter.ParameterData.", "data.core.dict.Dict."),
            ("data.base.Int.", "data.core.int.Int."),
            ("code.Code.", "data.core.code.Code."),
            ("calculation.job.quantumespresso.pw.PwCalculation.", "process.calculation.calcjob.CalcJobNode."),
            ("node.process.calculation.CalcFunctionNode.", "process.calculation.calcfunction.CalcFunctionNode."),
            ("data.structure.%", "data.core.structure.%"),
            ("data.core.structure.StructureData.", "data.core.structure.StructureData."),
            ("data.quantumespresso.forces.ForcesData.", "data.quantumespresso.forces.ForcesData."),
            ("data.Data.", "data.Data."),
            ("data.%", "data.%"),
        ] {
            assert_eq!(modern_type_string(old), new, "{old}");
        }
    }

    #[test]
    fn prefixes_are_escaped() {
        let mut q = Query::new(Dialect::Sqlite);
        TypePrefixes(&["data.core.array.kpoints.", "a_b."]).push(&mut q, "n");
        assert_eq!(q.sql, " AND (n.node_type LIKE ?1 ESCAPE '\\' OR n.node_type LIKE ?2 ESCAPE '\\')");
        assert!(TypePrefixes(&["data.core.cif."]).contains("data.core.cif.CifData."));
        assert!(!TypePrefixes(&["data.core.cif."]).contains("data.core.upf.UpfData."));
        assert!(TypePrefixes(&[]).contains("anything"));
    }
}
