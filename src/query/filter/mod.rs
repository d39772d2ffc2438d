//! The filter model every front end's parser produces (the REST query string, the QueryBuilder
//! dictionary, later OPTIMADE): operators, typed values, and the conditions of one key; and the
//! one translator of a condition into SQL ([`sql`]).

pub mod rest;
pub mod sql;

use chrono::{DateTime, FixedOffset};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
}

impl Op {
    /// The operator as written in a REST query string (used in messages).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "=like=",
            Op::ILike => "=ilike=",
            Op::In => "=in=",
            Op::NotIn => "=notin=",
        }
    }
}

/// A value a column is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    /// Also integers outside the i64 range (Python keeps them as big ints; they only ever reach
    /// the database as numbers).
    Float(f64),
    Bool(bool),
    DateTime(DateTimeValue),
    List(Vec<Value>),
    /// JSON `null` (QueryBuilder): `==` means `IS NULL`.
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DateTimeValue {
    /// Note that chrono's `PartialEq` compares instants only, not offsets.
    pub datetime: DateTime<FixedOffset>,
    /// What an equality means: [`DateTimeValue::EXACT`] the instant itself; otherwise
    /// 1 + the number of `T`/`:` in the query-string token (1 a day, 2 an hour, 3 a minute,
    /// 4 a second); 5 is possible and is refused when translated.
    pub precision: u8,
}

impl DateTimeValue {
    /// The precision of an instant that compares as itself.
    pub const EXACT: u8 = 0;
}

/// One filter key with all its conditions (several occurrences of a key are combined with AND).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub key: String,
    pub conditions: Vec<(Op, Value)>,
}

/// Python's `str()` of a value, used where the reference stringifies.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => crate::model::pyjson::python_float_repr(*f),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::DateTime(dt) => dt.datetime.to_rfc3339(),
        Value::List(items) => format!("[{}]", items.iter().map(python_str).collect::<Vec<_>>().join(", ")),
        Value::Null => "None".into(),
    }
}

/// A value as it would be written in a query string, for messages.
pub fn display(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("\"{s}\""),
        Value::List(items) => items.iter().map(display).collect::<Vec<_>>().join(","),
        other => python_str(other),
    }
}
