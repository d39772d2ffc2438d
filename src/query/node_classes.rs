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

/// The calculation states of AiiDA 0.x (a column then) and the conditions on today's attributes
/// that stand for them, where they can be derived: `process_state`, `exit_status`, and the
/// calculation job state `state`, which a job keeps only while it is active (waiting or running).
/// `None`: today's database records nothing that tells the state (such a state matches no node).
pub const OLD_CALC_STATES: &[(&str, Option<OldState>)] = &[
    ("NEW", Some(OldState::Process(&["created"]))),
    ("TOSUBMIT", None),
    ("SUBMITTING", Some(OldState::Job(&["uploading", "submitting"]))),
    ("WITHSCHEDULER", Some(OldState::Job(&["withscheduler"]))),
    ("COMPUTED", None),
    ("RETRIEVING", Some(OldState::Job(&["retrieving"]))),
    ("PARSING", Some(OldState::Job(&["parsing"]))),
    ("FINISHED", Some(OldState::Finished)),
    ("SUBMISSIONFAILED", None),
    ("RETRIEVALFAILED", None),
    ("PARSINGFAILED", None),
    ("FAILED", Some(OldState::Failed)),
    ("IMPORTED", None),
];

/// What an old calculation state is today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldState {
    /// The process state is one of these.
    Process(&'static [&'static str]),
    /// An active calculation job (waiting or running) whose job state is one of these.
    Job(&'static [&'static str]),
    /// Finished with exit status 0.
    Finished,
    /// Finished with a non-zero exit status, excepted, or killed (0.x marked a killed
    /// calculation FAILED).
    Failed,
}

/// Whether `state` is the name of a calculation state of AiiDA 0.x.
pub fn is_old_calc_state(state: &str) -> bool {
    OLD_CALC_STATES.iter().any(|(name, _)| *name == state)
}

fn attribute_sql(dialect: Dialect, alias: &str, name: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("json_extract({alias}.attributes, '$.{name}')"),
        Dialect::Postgres => format!("({alias}.attributes ->> '{name}')"),
    }
}

fn quoted_list(values: &[&str]) -> String {
    values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}

/// The SQL condition (constants only) that the state `name` stands for on node alias `alias`:
/// an old 0.x state as [`OLD_CALC_STATES`] maps it, today's process states as themselves.
fn state_sql(q: &mut Query, alias: &str, name: &str) {
    let dialect = q.dialect;
    let process = process_state_sql(dialect, alias);
    let exit = attribute_sql(dialect, alias, "exit_status");
    let zero = match dialect {
        Dialect::Sqlite => "0",
        Dialect::Postgres => "'0'",
    };
    match OLD_CALC_STATES.iter().find(|(n, _)| *n == name) {
        Some((_, None)) => {
            q.push("1 = 0");
        }
        Some((_, Some(OldState::Process(states)))) => {
            q.push(&format!("{process} IN ({})", quoted_list(states)));
        }
        Some((_, Some(OldState::Job(states)))) => {
            let job = attribute_sql(dialect, alias, "state");
            q.push(&format!("({process} IN ('waiting', 'running') AND {job} IN ({}))", quoted_list(states)));
        }
        Some((_, Some(OldState::Finished))) => {
            q.push(&format!("({process} = 'finished' AND {exit} = {zero})"));
        }
        Some((_, Some(OldState::Failed))) => {
            q.push(&format!(
                "(({process} = 'finished' AND ({exit} IS NULL OR {exit} <> {zero})) OR {process} IN ('excepted', 'killed'))"
            ));
        }
        None => {
            q.push(&process).push(" = ").bind_text(name.to_string());
        }
    }
}

/// ` AND <state is one of states>` (or, `negate`d, ` AND <a process whose state is none of
/// them>`), where a state is an old 0.x calculation state or today's process state.
pub fn push_states(q: &mut Query, alias: &str, negate: bool, states: &[String]) {
    let process = process_state_sql(q.dialect, alias);
    q.push(" AND ");
    if negate {
        q.push("(").push(&process).push(" IS NOT NULL AND NOT ");
    }
    q.push("(");
    if states.is_empty() {
        q.push("1 = 0");
    }
    for (i, state) in states.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        // `COALESCE`: a missing attribute is false, so that `NOT` keeps the row.
        q.push("COALESCE(");
        state_sql(q, alias, state);
        q.push(", 1 = 0)");
    }
    q.push(")");
    if negate {
        q.push(")");
    }
}

/// The `process_type` of today for the plugin of an old job calculation type string
/// (`calculation.job.quantumespresso.pw.PwCalculation.` is `aiida.calculations:quantumespresso.pw`,
/// as aiida-core's migrations set it; the built-in plugins were renamed since).
pub fn job_plugin_process_type(old: &str) -> Option<String> {
    let rest = old.strip_prefix("calculation.job.")?.strip_suffix('.')?;
    let (plugin, class) = rest.rsplit_once('.')?;
    if plugin.is_empty() || class.is_empty() || rest.contains('%') {
        return None;
    }
    Some(format!("aiida.calculations:{}", modern_entry_point(plugin)))
}

/// The plugin of a `LIKE` pattern on old job calculation types ending in `.%`
/// (`calculation.job.quantumespresso.%`): the plugins at and below that module.
pub fn job_plugin_pattern(old: &str) -> Option<String> {
    let plugin = old.strip_prefix("calculation.job.")?.strip_suffix(".%")?;
    if plugin.is_empty() || plugin.contains(['%', '_', '\\']) {
        return None;
    }
    Some(format!("aiida.calculations:{}", modern_entry_point(plugin)))
}

/// Entry points of aiida-core's own calculation plugins as they were renamed
/// (`simpleplugins.arithmetic.add`, `arithmetic.add` are `core.arithmetic.add` today).
fn modern_entry_point(plugin: &str) -> String {
    const RENAMED: &[(&str, &str)] = &[
        ("simpleplugins.arithmetic.add", "core.arithmetic.add"),
        ("simpleplugins.templatereplacer", "core.templatereplacer"),
        ("arithmetic.add", "core.arithmetic.add"),
        ("templatereplacer", "core.templatereplacer"),
    ];
    RENAMED.iter().find(|(old, _)| *old == plugin).map_or_else(|| plugin.to_string(), |(_, new)| new.to_string())
}

/// ` AND <node type is one of types>` (negated: ` AND <a node whose type is none of them>`),
/// each type in an old or today's spelling; an old job calculation type of a plugin is a
/// CalcJobNode whose `process_type` is the plugin's.
pub fn push_types(q: &mut Query, alias: &str, negate: bool, types: &[String]) {
    q.push(" AND ");
    if negate {
        q.push("(").push(alias).push(".node_type IS NOT NULL AND NOT ");
    }
    q.push("(");
    if types.is_empty() {
        q.push("1 = 0");
    }
    for (i, old) in types.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(").push(alias).push(".node_type = ").bind_text(modern_type_string(old));
        if let Some(process_type) = job_plugin_process_type(old) {
            q.push(" AND COALESCE(").push(alias).push(".process_type, '') = ").bind_text(process_type);
        }
        q.push(")");
    }
    q.push(")");
    if negate {
        q.push(")");
    }
}

/// ` AND <process_type is the plugin's or below it>` for [`job_plugin_pattern`].
pub fn push_job_plugin(q: &mut Query, alias: &str, process_type: &str) {
    q.push(" AND (COALESCE(").push(alias).push(".process_type, '') = ").bind_text(process_type.to_string());
    q.push(" OR ").push(alias).push(".process_type LIKE ");
    q.bind_text(format!("{}.%", escape_like(process_type))).push(" ESCAPE '\\')");
}

/// Group type strings of older AiiDA versions and today's, as aiida-core's migrations renamed
/// them (0.x user groups had `""`).
pub const RENAMED_GROUP_TYPES: &[(&str, &str)] = &[
    ("", "core"),
    ("user", "core"),
    ("data.upf.family", "core.upf"),
    ("data.upf", "core.upf"),
    ("aiida.import", "core.import"),
    ("auto.import", "core.import"),
    ("autogroup.run", "core.auto"),
    ("auto.run", "core.auto"),
];

/// Today's spelling of a group type string (unchanged when it is today's or unknown).
pub fn modern_group_type(old: &str) -> &str {
    RENAMED_GROUP_TYPES.iter().find(|(o, _)| *o == old).map_or(old, |(_, new)| new)
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
    fn job_plugins() {
        let pt = job_plugin_process_type;
        assert_eq!(
            pt("calculation.job.quantumespresso.pw.PwCalculation.").unwrap(),
            "aiida.calculations:quantumespresso.pw"
        );
        assert_eq!(
            pt("calculation.job.simpleplugins.templatereplacer.TemplatereplacerCalculation.").unwrap(),
            "aiida.calculations:core.templatereplacer"
        );
        assert_eq!(pt("calculation.job.JobCalculation."), None);
        assert_eq!(pt("calculation.job.quantumespresso.%"), None);
        assert_eq!(pt("data.structure.StructureData."), None);
        assert_eq!(
            job_plugin_pattern("calculation.job.quantumespresso.%").unwrap(),
            "aiida.calculations:quantumespresso"
        );
        assert_eq!(job_plugin_pattern("calculation.job.%"), None);
        assert_eq!(job_plugin_pattern("calculation.job.q_e.%"), None);
        assert!(is_old_calc_state("FINISHED") && !is_old_calc_state("finished"));
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
