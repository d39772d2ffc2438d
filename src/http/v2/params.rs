//! The query string of REST API v2: the grammar is v4's (`http::querystring`), the special keys
//! are v2's, and the filter keys are the seed's table, each with its value type and operators,
//! mapped to today's columns before the shared filter translator sees them.

use crate::http::error::{ApiError, ApiResult};
use crate::http::params::{Filter, Params, display, python_str};
use crate::http::querystring::{self, Op, Value};
use crate::query::QueryResult;
use crate::query::filter::rest::{MappedConditions, MappedFilter};
use crate::query::lists::{Conditions, Scope};
use crate::query::node_classes::{
    is_old_calc_state, job_plugin_pattern, job_plugin_process_type, modern_group_type, modern_type_string,
    push_job_plugin, push_states, push_types,
};
use crate::storage::db::Query;

use super::routes::Resource;

/// The special keys of v2, each at most once and only with `=`.
pub const SPECIAL: [&str; 14] = [
    "limit",
    "offset",
    "perpage",
    "orderby",
    "alist",
    "nalist",
    "elist",
    "nelist",
    "format",
    "visformat",
    "filename",
    "rtype",
    "in_limit",
    "out_limit",
];

/// The value type of a filter key (the seed's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Integer,
    String,
    DateTime,
    Bool,
}

impl ValueType {
    fn name(self) -> &'static str {
        match self {
            ValueType::Integer => "an integer",
            ValueType::String => "a string (in double quotes)",
            ValueType::DateTime => "a datetime (YYYY-MM-DD[THH[:MM[:SS]]][+/-HH[:MM]])",
            ValueType::Bool => "true or false",
        }
    }

    fn operators(self) -> &'static [Op] {
        use Op::*;
        match self {
            ValueType::Bool => &[Eq],
            ValueType::String => &[Eq, Ne, Gt, Ge, Lt, Le, Like, ILike, In, NotIn],
            ValueType::Integer | ValueType::DateTime => &[Eq, Ne, Gt, Ge, Lt, Le, In, NotIn],
        }
    }

    fn accepts(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (ValueType::Integer, Value::Int(_))
                | (ValueType::String, Value::Str(_))
                | (ValueType::DateTime, Value::DateTime(_))
                | (ValueType::Bool, Value::Bool(_))
        )
    }
}

/// Where a v2 key is found today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A column of today's table, by the name the filter translator knows.
    Column(&'static str),
    /// The node type: today's `node_type`, old spellings translated.
    NodeType,
    /// The type of a group: today's `type_string`, the type strings of AiiDA 0.x translated.
    GroupType,
    /// The process state attribute of process nodes (`null` for other nodes).
    ProcessState,
    /// A field today's schema does not have and nothing derives: `null` in every row, so no
    /// condition on it holds.
    Absent,
    /// Never filtered on, for privacy.
    Private,
}

/// One key of the seed's table for a resource.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub value: ValueType,
    pub target: Target,
}

const fn key(name: &'static str, value: ValueType, target: Target) -> Key {
    Key { name, value, target }
}

use Target::*;
use ValueType::{Bool, DateTime, Integer, String as Str};

const NODE_KEYS: &[Key] = &[
    key("id", Integer, Column("id")),
    key("pk", Integer, Column("id")),
    key("uuid", Str, Column("uuid")),
    key("label", Str, Column("label")),
    key("ctime", DateTime, Column("ctime")),
    key("mtime", DateTime, Column("mtime")),
    key("type", Str, NodeType),
    key("state", Str, ProcessState),
];
const COMPUTER_KEYS: &[Key] = &[
    key("id", Integer, Column("id")),
    key("pk", Integer, Column("id")),
    key("uuid", Str, Column("uuid")),
    key("name", Str, Column("label")),
    key("description", Str, Column("description")),
    key("hostname", Str, Column("hostname")),
    key("transport_type", Str, Column("transport_type")),
    key("scheduler_type", Str, Column("scheduler_type")),
    key("transport_params", Str, Absent),
    key("enabled", Bool, Absent),
];
const USER_KEYS: &[Key] = &[
    key("id", Integer, Column("id")),
    key("pk", Integer, Column("id")),
    key("first_name", Str, Column("first_name")),
    key("last_name", Str, Column("last_name")),
    key("institution", Str, Column("institution")),
    key("date_joined", DateTime, Absent),
    key("email", Str, Private),
    key("is_active", Bool, Private),
    key("last_login", DateTime, Private),
];
const GROUP_KEYS: &[Key] = &[
    key("id", Integer, Column("id")),
    key("pk", Integer, Column("id")),
    key("user_id", Integer, Column("user_id")),
    key("uuid", Str, Column("uuid")),
    key("name", Str, Column("label")),
    key("description", Str, Column("description")),
    key("type", Str, GroupType),
];

/// The filter keys of a resource.
pub fn keys(resource: Resource) -> &'static [Key] {
    match resource {
        Resource::Computers => COMPUTER_KEYS,
        Resource::Users => USER_KEYS,
        Resource::Groups => GROUP_KEYS,
        _ => NODE_KEYS,
    }
}

/// A filter of the request, checked against the seed's table.
#[derive(Debug, Clone)]
pub struct V2Filter {
    pub key: Key,
    pub conditions: Vec<(Op, Value)>,
}

/// A parsed v2 query string.
#[derive(Debug, Default)]
pub struct V2Params {
    /// The keys v2 shares with v4 (`limit`, `offset`, `perpage`, `orderby` already translated to
    /// today's column names, `filename`, `in_limit`, `out_limit`), to reuse its paging rules.
    pub shared: Params,
    pub alist: Option<Vec<String>>,
    pub nalist: Option<Vec<String>>,
    pub elist: Option<Vec<String>>,
    pub nelist: Option<Vec<String>>,
    pub format: Option<String>,
    pub visformat: Option<String>,
    pub rtype: Option<String>,
    pub filters: Vec<V2Filter>,
    /// The special keys given, for the endpoints that do not take them.
    pub given: Vec<&'static str>,
}

fn names(value: &Value) -> Vec<String> {
    match value {
        Value::List(items) => items.iter().map(python_str).collect(),
        single => vec![python_str(single)],
    }
}

fn string_value(key: &str, value: &Value) -> ApiResult<String> {
    match value {
        Value::Str(s) => Ok(s.clone()),
        other => Err(ApiError::bad_request(format!("{key} must be a string, got {}", display(other)))),
    }
}

impl V2Params {
    /// Parses the percent-decoded query string of a request on `resource`.
    pub fn parse(query: &str, resource: Option<Resource>) -> ApiResult<Self> {
        // The grammar errors and limits are v4's; only the special keys differ.
        let fields = querystring::parse(query).map_err(|e| ApiError::bad_request(e.to_string()))?;
        for field in &fields {
            if field.key.contains('-') {
                return Err(ApiError::bad_request(format!(
                    "'{}' is not a valid key: keys are letters, digits and _, not starting with a digit",
                    field.key
                )));
            }
        }
        for key in SPECIAL {
            if fields.iter().filter(|f| f.key == key).count() > 1 {
                return Err(ApiError::bad_request(format!("You cannot specify {key} more than once")));
            }
        }
        let mut params = V2Params::default();
        for field in fields {
            let Some(special) = SPECIAL.iter().find(|k| **k == field.key) else {
                let known = resource.map(keys).unwrap_or(&[]);
                let Some(key) = known.iter().find(|k| k.name == field.key).copied() else {
                    let valid: Vec<&str> =
                        known.iter().filter(|k| k.target != Private).map(|k| k.name).collect::<Vec<_>>();
                    return Err(ApiError::bad_request(format!(
                        "{} is not a filter key of {}; valid keys are: {}",
                        field.key,
                        resource.map_or("this endpoint", Resource::name),
                        valid.join(", ")
                    )));
                };
                check_condition(&key, field.op, &field.value)?;
                match params.filters.iter_mut().find(|f| f.key.name == key.name) {
                    Some(filter) => filter.conditions.push((field.op, field.value)),
                    None => params.filters.push(V2Filter { key, conditions: vec![(field.op, field.value)] }),
                }
                continue;
            };
            if field.op != Op::Eq {
                return Err(ApiError::bad_request(format!(
                    "only assignment operator '=' is permitted after '{special}'"
                )));
            }
            params.given.push(special);
            let value = field.value;
            match *special {
                "limit" => params.shared.limit = Some(value),
                "offset" => params.shared.offset = Some(value),
                "perpage" => params.shared.perpage = Some(value),
                "orderby" => params.shared.orderby = Some(value),
                "filename" => params.shared.filename = Some(value),
                "in_limit" => params.shared.in_limit = Some(value),
                "out_limit" => params.shared.out_limit = Some(value),
                "alist" => params.alist = Some(names(&value)),
                "nalist" => params.nalist = Some(names(&value)),
                "elist" => params.elist = Some(names(&value)),
                "nelist" => params.nelist = Some(names(&value)),
                "format" => params.format = Some(python_str(&value)),
                "visformat" => params.visformat = Some(python_str(&value)),
                "rtype" => params.rtype = Some(string_value("rtype", &value).unwrap_or_else(|_| python_str(&value))),
                _ => unreachable!("every special key has a slot"),
            }
        }
        if params.alist.is_some() && params.nalist.is_some() {
            return Err(ApiError::bad_request("you cannot specify both alist and nalist"));
        }
        if params.elist.is_some() && params.nelist.is_some() {
            return Err(ApiError::bad_request("you cannot specify both elist and nelist"));
        }
        Ok(params)
    }

    /// Refuses the special keys that `endpoint` does not take (those in `allowed` it does).
    pub fn only(&self, allowed: &[&str], endpoint: &str) -> ApiResult<()> {
        match self.given.iter().find(|k| !allowed.contains(k)) {
            Some(key) => Err(ApiError::bad_request(format!("the key {key} cannot be used with {endpoint}"))),
            None => Ok(()),
        }
    }

    /// v4's paging checks, and the seed's value type of `limit` and `offset`: a non-negative
    /// integer (v4 reads a negative limit as "no limit", which v2 never offered).
    pub fn check_paging(&self, page: Option<u64>) -> ApiResult<()> {
        crate::http::v4::collection::check_paging(&self.shared, page)?;
        for (name, value) in [("limit", self.shared.limit()?), ("offset", self.shared.offset()?)] {
            if value.is_some_and(|v| v < 0) {
                return Err(ApiError::bad_request(format!("{name} must be a non-negative integer")));
            }
        }
        Ok(())
    }

    /// `orderby` as today's `(column, descending)` pairs.
    pub fn orderby(&self, resource: Resource) -> ApiResult<Vec<(String, bool)>> {
        let mut order = self.shared.orderby()?;
        for (name, _) in &mut order {
            if let Some(key) = keys(resource).iter().find(|k| k.name == name.as_str()) {
                match key.target {
                    Column(column) => *name = column.to_string(),
                    NodeType => *name = "node_type".into(),
                    GroupType => *name = "type_string".into(),
                    ProcessState | Absent => {
                        return Err(ApiError::bad_request(format!(
                            "cannot order by {name}: today's database does not store it as a column"
                        )));
                    }
                    Private => return Err(ApiError::bad_request(format!("cannot order by {name}: it is private"))),
                }
            }
        }
        Ok(order)
    }
}

/// Checks one condition against the key's value type and operators (before any query runs).
fn check_condition(key: &Key, op: Op, value: &Value) -> ApiResult<()> {
    if key.target == Private {
        return Err(ApiError::bad_request(format!(
            "{} is private: it cannot be returned, filtered or ordered on",
            key.name
        )));
    }
    if !key.value.operators().contains(&op) {
        let ops: Vec<&str> = key.value.operators().iter().map(|o| o.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "the operator {} cannot be used with {} (a key of type {}); its operators are {}",
            op.as_str(),
            key.name,
            key.value.name(),
            ops.join(" ")
        )));
    }
    let values: Vec<&Value> = match (op, value) {
        (Op::In | Op::NotIn, Value::List(items)) => items.iter().collect(),
        (Op::In | Op::NotIn, single) => vec![single],
        (_, Value::List(_)) => {
            return Err(ApiError::bad_request(format!(
                "the operator {} takes a single value; use =in= for a list",
                op.as_str()
            )));
        }
        (_, single) => vec![single],
    };
    for v in values {
        if !key.value.accepts(v) {
            return Err(ApiError::bad_request(format!("{} takes {}, got {}", key.name, key.value.name(), display(v))));
        }
        if let Value::DateTime(dt) = v
            && op == Op::Eq
            && dt.precision > 5
        {
            return Err(ApiError::bad_request("The datetime resolution is not valid."));
        }
    }
    Ok(())
}

/// A single value after `=in=`/`=notin=` is a list of one (the grammar reads `a` and `a,b`
/// differently; the seed means both as lists).
fn as_list(op: Op, value: Value) -> Value {
    match (op, value) {
        (Op::In | Op::NotIn, Value::List(items)) => Value::List(items),
        (Op::In | Op::NotIn, single) => Value::List(vec![single]),
        (_, value) => value,
    }
}

/// A value with old type strings replaced by today's.
fn modern(value: &Value) -> Value {
    match value {
        Value::Str(s) => Value::Str(modern_type_string(s)),
        Value::List(items) => Value::List(items.iter().map(modern).collect()),
        other => other.clone(),
    }
}

/// A value with the group type strings of AiiDA 0.x replaced by today's.
fn modern_group_types(value: &Value) -> Value {
    match value {
        Value::Str(s) => Value::Str(modern_group_type(s).to_string()),
        Value::List(items) => Value::List(items.iter().map(modern_group_types).collect()),
        other => other.clone(),
    }
}

/// A datetime `=` with a seconds field and an offset (`2024-05-01T10:00:00+02:00`) means that
/// second, as in v2; v4's translator counts the offset's colon as a finer precision.
fn seconds_precision(value: &Value) -> Value {
    match value {
        Value::DateTime(dt) if dt.precision == 5 => {
            let mut dt = dt.clone();
            dt.precision = 4;
            Value::DateTime(dt)
        }
        other => other.clone(),
    }
}

/// Conditions of v2 that the shared translator has no word for: old calculation states and
/// the plugin of old job calculation types, on today's attributes and `process_type`.
#[derive(Debug, Clone)]
pub enum NodeCondition {
    /// The state is one of these (old or today's names); negated: a process whose state is none.
    States { negate: bool, states: Vec<String> },
    /// The type is one of these (old or today's spellings); negated: a node whose type is none.
    Types { negate: bool, types: Vec<String> },
    /// The `process_type` is this plugin's or one below it.
    JobPlugin(String),
}

/// The request's filters on today's tables: those the shared translator maps, then v2's own.
pub struct V2Conditions {
    pub mapped: MappedConditions,
    pub node: Vec<NodeCondition>,
}

impl Conditions for V2Conditions {
    fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()> {
        self.mapped.push(q, scope)?;
        let alias = scope.entity.alias;
        for condition in &self.node {
            match condition {
                NodeCondition::States { negate, states } => push_states(q, alias, *negate, states),
                NodeCondition::Types { negate, types } => push_types(q, alias, *negate, types),
                NodeCondition::JobPlugin(process_type) => push_job_plugin(q, alias, process_type),
            }
        }
        Ok(())
    }
}

/// The strings of a `=`, `!=`, `=in=` or `=notin=` condition: `(negated, values)`.
fn membership(op: Op, value: &Value) -> Option<(bool, Vec<String>)> {
    let strings = |items: &[Value]| -> Option<Vec<String>> {
        items.iter().map(|v| if let Value::Str(s) = v { Some(s.clone()) } else { None }).collect()
    };
    match (op, value) {
        (Op::Eq | Op::Ne, Value::Str(s)) => Some((op == Op::Ne, vec![s.clone()])),
        (Op::In | Op::NotIn, Value::List(items)) => Some((op == Op::NotIn, strings(items)?)),
        (Op::In | Op::NotIn, Value::Str(s)) => Some((op == Op::NotIn, vec![s.clone()])),
        _ => None,
    }
}

/// The request's filters as conditions on today's tables, for the shared translator (and v2's
/// own conditions where the translator has no word for them).
pub fn conditions(filters: &[V2Filter]) -> V2Conditions {
    let mut node = Vec::new();
    let mut mapped = Vec::new();
    for filter in filters {
        match filter.key.target {
            Column(column) => {
                let conditions =
                    filter.conditions.iter().map(|(op, v)| (*op, as_list(*op, seconds_precision(v)))).collect();
                mapped.push(MappedFilter::Column(Filter { key: column.to_string(), conditions }));
            }
            GroupType => {
                let conditions = filter
                    .conditions
                    .iter()
                    .map(|(op, v)| {
                        let v = match op {
                            Op::Like | Op::ILike => v.clone(),
                            _ => modern_group_types(v),
                        };
                        (*op, as_list(*op, v))
                    })
                    .collect();
                mapped.push(MappedFilter::Column(Filter { key: "type_string".into(), conditions }));
            }
            NodeType => {
                let mut conditions = Vec::new();
                for (op, v) in &filter.conditions {
                    match membership(*op, v) {
                        Some((negate, types)) if types.iter().any(|t| job_plugin_process_type(t).is_some()) => {
                            node.push(NodeCondition::Types { negate, types });
                            continue;
                        }
                        _ => {}
                    }
                    if let (Op::Like | Op::ILike, Value::Str(pattern)) = (op, v)
                        && let Some(process_type) = job_plugin_pattern(pattern)
                    {
                        node.push(NodeCondition::JobPlugin(process_type));
                    }
                    conditions.push((*op, as_list(*op, modern(v))));
                }
                if !conditions.is_empty() {
                    mapped.push(MappedFilter::Column(Filter { key: "node_type".into(), conditions }));
                }
            }
            ProcessState => {
                let mut conditions = Vec::new();
                for (op, v) in &filter.conditions {
                    match membership(*op, v) {
                        Some((negate, states)) if states.iter().any(|s| is_old_calc_state(s)) => {
                            node.push(NodeCondition::States { negate, states });
                        }
                        _ => conditions.push((*op, as_list(*op, v.clone()))),
                    }
                }
                if !conditions.is_empty() {
                    mapped.push(MappedFilter::ProcessState(conditions));
                }
            }
            Absent => mapped.push(MappedFilter::Absent),
            Private => mapped.push(MappedFilter::Private(filter.key.name.to_string())),
        }
    }
    V2Conditions { mapped: MappedConditions { filters: mapped }, node }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_keys() {
        let p = V2Params::parse("limit=3&offset=2&orderby=id", Some(Resource::Computers)).unwrap();
        assert_eq!(p.shared.limit().unwrap(), Some(3));
        assert_eq!(p.given, ["limit", "offset", "orderby"]);
        let err = V2Params::parse("alist=a&nalist=b", Some(Resource::Nodes)).unwrap_err();
        assert_eq!(err.to_string(), "you cannot specify both alist and nalist");
        let err = V2Params::parse("elist=a&nelist=b", Some(Resource::Nodes)).unwrap_err();
        assert_eq!(err.to_string(), "you cannot specify both elist and nelist");
        assert!(V2Params::parse("limit=1&limit=2", None).is_err());
        assert!(V2Params::parse("alist>a", None).is_err());
        assert_eq!(
            V2Params::parse("alist=append_text,is_local", None).unwrap().alist.unwrap(),
            ["append_text", "is_local"]
        );
    }

    #[test]
    fn filter_keys_have_types_and_operators() {
        let ok = |q: &str, r: Resource| V2Params::parse(q, Some(r)).map(|_| ()).map_err(|e| e.to_string());
        assert!(ok("id>578", Resource::Nodes).is_ok());
        assert!(ok("type=\"data.remote.RemoteData.\"", Resource::Nodes).is_ok());
        assert!(ok("first_name=ilike=\"aii%\"", Resource::Users).is_ok());
        assert!(ok("enabled=false", Resource::Computers).is_ok());
        assert!(ok("enabled>true", Resource::Computers).unwrap_err().contains("operator >"));
        assert!(ok("id=like=\"1\"", Resource::Nodes).unwrap_err().contains("operator =like="));
        assert!(ok("id=\"abc\"", Resource::Nodes).unwrap_err().contains("an integer"));
        assert!(ok("email=\"a\"", Resource::Users).unwrap_err().contains("private"));
        assert!(ok("last_login>2014-04-07", Resource::Users).unwrap_err().contains("private"));
        assert!(ok("name=\"x\"", Resource::Nodes).unwrap_err().contains("valid keys"));
        assert!(ok("node-type=\"x\"", Resource::Nodes).unwrap_err().contains("not a valid key"));
        assert!(ok("id=in=1,2,3", Resource::Nodes).is_ok());
        // The shared grammar reads a datetime only as the last item of a list (v4's quirk).
        assert!(ok("ctime=in=2024-01-01", Resource::Nodes).is_ok());
        assert!(ok("ctime=in=2024-01-01,2024-01-02", Resource::Nodes).is_err());
    }

    #[test]
    fn orderby_names() {
        let p = V2Params::parse("orderby=-type,name", None).unwrap();
        assert_eq!(p.orderby(Resource::Nodes).unwrap(), vec![("node_type".into(), true), ("name".into(), false)]);
        assert_eq!(p.orderby(Resource::Groups).unwrap(), vec![("type_string".into(), true), ("label".into(), false)]);
        assert!(V2Params::parse("orderby=state", None).unwrap().orderby(Resource::Nodes).is_err());
    }
}
