//! The query string of a GET request: reserved keys (paging, projections, downloads) and the
//! filters that remain.

use crate::http::error::{ApiError, ApiResult};
use crate::http::querystring::{self, Op, Value};
pub use crate::query::filter::{Filter, display, python_str};

/// Most fields in one query string, and most values in all its lists: beyond these a query
/// is not a browsing request, and databases limit expression depth and parameter counts.
const MAX_FIELDS: usize = 200;
const MAX_VALUES: usize = 10_000;

/// The most rows one request may return, and the largest `perpage`.
pub const LIMIT_MAX: i64 = 400;
pub const PERPAGE_DEFAULT: i64 = 20;

/// Reserved keys, in the order the reference checks them for repetition, and the field of
/// [`Params`] each one fills.
type Slot = fn(&mut Params) -> &mut Option<Value>;
const RESERVED: [(&str, Slot); 15] = [
    ("limit", |p| &mut p.limit),
    ("offset", |p| &mut p.offset),
    ("perpage", |p| &mut p.perpage),
    ("orderby", |p| &mut p.orderby),
    ("download", |p| &mut p.download),
    ("download_format", |p| &mut p.download_format),
    ("filename", |p| &mut p.filename),
    ("in_limit", |p| &mut p.in_limit),
    ("out_limit", |p| &mut p.out_limit),
    ("attributes", |p| &mut p.attributes),
    ("attributes_filter", |p| &mut p.attributes_filter),
    ("extras", |p| &mut p.extras),
    ("extras_filter", |p| &mut p.extras_filter),
    ("full_type", |p| &mut p.full_type),
    ("profile", |p| &mut p.profile),
];

tokio::task_local! {
    /// Set while a request runs on the database its `profile` parameter chose
    /// (`databases`, several databases served): the parameter is then accepted.
    pub(crate) static PROFILE_SWITCHING: bool;
}

#[derive(Debug, Clone, Default)]
pub struct Params {
    pub limit: Option<Value>,
    pub offset: Option<Value>,
    pub perpage: Option<Value>,
    pub orderby: Option<Value>,
    pub download: Option<Value>,
    pub download_format: Option<Value>,
    pub filename: Option<Value>,
    pub in_limit: Option<Value>,
    pub out_limit: Option<Value>,
    pub attributes: Option<Value>,
    pub attributes_filter: Option<Value>,
    pub extras: Option<Value>,
    pub extras_filter: Option<Value>,
    pub full_type: Option<Value>,
    pub profile: Option<Value>,
    pub filters: Vec<Filter>,
}

impl Params {
    /// Parses a percent-decoded query string.
    pub fn parse(query: &str) -> ApiResult<Self> {
        let fields = querystring::parse(query).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if fields.len() > MAX_FIELDS {
            return Err(ApiError::bad_request(format!(
                "The query string has {} fields; at most {MAX_FIELDS} are accepted.",
                fields.len()
            )));
        }
        let values: usize =
            fields.iter().map(|f| if let Value::List(items) = &f.value { items.len() } else { 1 }).sum();
        if values > MAX_VALUES {
            return Err(ApiError::bad_request(format!(
                "The query string has {values} values; at most {MAX_VALUES} are accepted."
            )));
        }
        for (key, _) in RESERVED {
            if fields.iter().filter(|f| f.key == key).count() > 1 {
                return Err(ApiError::bad_request(format!("You cannot specify {key} more than once")));
            }
        }
        let mut params = Params::default();
        for field in fields {
            match RESERVED.iter().find(|(key, _)| *key == field.key) {
                Some(_) if field.op != Op::Eq => {
                    return Err(ApiError::bad_request(format!(
                        "only assignment operator '=' is permitted after '{}'",
                        field.key
                    )));
                }
                Some((_, slot)) => *slot(&mut params) = Some(field.value),
                None => match params.filters.iter_mut().find(|f| f.key == field.key) {
                    Some(filter) => filter.conditions.push((field.op, field.value)),
                    None => params.filters.push(Filter { key: field.key, conditions: vec![(field.op, field.value)] }),
                },
            }
        }
        // One process serves one storage: there is no profile to switch to (unless it serves
        // several and the request runs on the one its `profile` names).
        if params.profile.is_some() && !PROFILE_SWITCHING.try_with(|on| *on).unwrap_or(false) {
            return Err(ApiError::bad_request("specifying an explicit profile is not enabled for this REST API."));
        }
        Ok(params)
    }

    /// Whether anything beyond reserved keys narrows the result.
    pub fn has_filters(&self) -> bool {
        !self.filters.is_empty() || self.full_type.is_some()
    }

    pub fn limit(&self) -> ApiResult<Option<i64>> {
        integer("limit", "Limit", &self.limit)
    }
    pub fn offset(&self) -> ApiResult<Option<i64>> {
        integer("offset", "Offset", &self.offset)
    }
    pub fn perpage(&self) -> ApiResult<Option<i64>> {
        integer("perpage", "Perpage", &self.perpage)
    }
    pub fn in_limit(&self) -> ApiResult<Option<i64>> {
        integer("in_limit", "in_limit", &self.in_limit)
    }
    pub fn out_limit(&self) -> ApiResult<Option<i64>> {
        integer("out_limit", "out_limit", &self.out_limit)
    }

    /// `orderby` as (column name, descending) pairs, in the order given.
    pub fn orderby(&self) -> ApiResult<Vec<(String, bool)>> {
        let values = match &self.orderby {
            None => return Ok(Vec::new()),
            Some(Value::List(items)) => items.iter().collect(),
            Some(single) => vec![single],
        };
        values
            .into_iter()
            .map(|v| match v {
                Value::Str(s) => Ok(match (s.strip_prefix('-'), s.strip_prefix('+')) {
                    (Some(col), _) => (col.to_string(), true),
                    (_, Some(col)) => (col.to_string(), false),
                    _ => (s.clone(), false),
                }),
                other => Err(ApiError::bad_request(format!(
                    "orderby takes column names, optionally prefixed by + or -; got {}",
                    display(other)
                ))),
            })
            .collect()
    }

    /// `attributes=true` / `extras=true`: only booleans are accepted.
    pub fn flag(&self, name: &str) -> ApiResult<bool> {
        let value = if name == "attributes" { &self.attributes } else { &self.extras };
        match value {
            None | Some(Value::Bool(false)) => Ok(false),
            Some(Value::Bool(true)) => Ok(true),
            Some(_) => Err(ApiError::bad_request(format!(
                "The {name} filter is false by default and can only be set to true."
            ))),
        }
    }

    /// `attributes_filter` / `extras_filter` as a list of key names.
    pub fn key_filter(&self, name: &str) -> Option<Vec<String>> {
        let value = if name == "attributes" { &self.attributes_filter } else { &self.extras_filter };
        match value.as_ref()? {
            Value::List(items) => Some(items.iter().map(python_str).collect()),
            single => Some(vec![python_str(single)]),
        }
    }

    /// `download`: a file download unless the value is one of the reference's false spellings.
    pub fn download(&self) -> bool {
        !matches!(&self.download, Some(Value::Bool(false)))
            && !matches!(&self.download, Some(Value::Str(s)) if s == "false" || s == "False")
    }

    pub fn string(value: &Option<Value>, name: &str) -> ApiResult<Option<String>> {
        match value {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::bad_request(format!("{name} must be a string, got {}", display(other)))),
        }
    }
}

/// `int(value)` as the reference applies it: floats truncate, booleans count as 0 and 1, numeric
/// strings are read; anything else is refused. Negative values are returned as they are (the
/// callers decide what they mean).
fn integer(_key: &str, label: &str, value: &Option<Value>) -> ApiResult<Option<i64>> {
    let n = match value {
        None => return Ok(None),
        Some(Value::Int(i)) => *i,
        Some(Value::Float(f)) if f.is_finite() && f.abs() < 9.0e18 => f.trunc() as i64,
        Some(Value::Bool(b)) => *b as i64,
        Some(Value::Str(s)) => match s.trim().parse::<i64>() {
            Ok(i) => i,
            Err(_) => return Err(ApiError::bad_request(format!("{label} value must be an integer"))),
        },
        Some(_) => return Err(ApiError::bad_request(format!("{label} value must be an integer"))),
    };
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_once_and_with_equals() {
        let err = Params::parse("limit=2&limit=3").unwrap_err();
        assert_eq!(err.to_string(), "You cannot specify limit more than once");
        let err = Params::parse("limit>2").unwrap_err();
        assert_eq!(err.to_string(), "only assignment operator '=' is permitted after 'limit'");
    }

    #[test]
    fn filters_group_by_key() {
        let p = Params::parse("id>1&label=\"a\"&id<4").unwrap();
        assert_eq!(p.filters.len(), 2);
        assert_eq!(p.filters[0].key, "id");
        assert_eq!(p.filters[0].conditions.len(), 2);
    }

    #[test]
    fn limits() {
        assert_eq!(Params::parse("limit=2.5").unwrap().limit().unwrap(), Some(2));
        assert!(Params::parse("limit=abc").unwrap().limit().is_err());
        assert_eq!(Params::parse("limit=-1").unwrap().limit().unwrap(), Some(-1));
        assert_eq!(Params::parse("limit=\"7\"").unwrap().limit().unwrap(), Some(7));
    }

    #[test]
    fn orderby_signs() {
        let p = Params::parse("orderby=+id,-label,ctime").unwrap();
        assert_eq!(p.orderby().unwrap(), vec![("id".into(), false), ("label".into(), true), ("ctime".into(), false)]);
        assert!(Params::parse("orderby=5").unwrap().orderby().is_err());
    }

    #[test]
    fn download_spellings() {
        for q in ["download=false", "download=False", "download=\"false\""] {
            assert!(!Params::parse(q).unwrap().download(), "{q}");
        }
        assert!(Params::parse("download=true").unwrap().download());
        assert!(Params::parse("").unwrap().download());
    }
}
