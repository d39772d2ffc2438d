//! The OPTIMADE filter as a tree (what the front end's parser produces), its check against the
//! properties of the entries, and its evaluation on one entry.
//!
//! A comparison with an unknown value (a null property, or a property of another provider)
//! is false, so `NOT` of it is true; only `IS UNKNOWN` holds for it.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use super::entry::{Entry, ItemType, Prop, PropType, property};
use crate::model::time;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// `a OP b` becomes `b FLIP(OP) a`.
    pub fn flip(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }

    fn holds(self, ordering: Option<Ordering>) -> bool {
        match ordering {
            None => false,
            Some(o) => match self {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
            },
        }
    }
}

/// A literal of the filter (or, on the right of an operator, a property: not supported).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Property(String),
}

/// `CONTAINS`, `STARTS WITH`, `ENDS WITH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fuzzy {
    Contains,
    Starts,
    Ends,
}

/// `HAS ALL`, `HAS ANY`, `HAS ONLY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    All,
    Any,
    Only,
}

/// One comparison of a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// `property OP value` (a constant-first comparison is turned around).
    Value {
        property: String,
        op: Op,
        value: Literal,
    },
    /// `constant OP constant`.
    Constants {
        left: Literal,
        op: Op,
        right: Literal,
    },
    Known {
        property: String,
        known: bool,
    },
    Fuzzy {
        property: String,
        fuzzy: Fuzzy,
        value: Literal,
    },
    /// `property HAS [OP] value`.
    Has {
        property: String,
        op: Op,
        value: Literal,
    },
    Set {
        property: String,
        mode: SetMode,
        values: Vec<(Op, Literal)>,
    },
    Length {
        property: String,
        op: Op,
        value: Literal,
    },
    /// `p1:p2:... HAS [ALL|ANY|ONLY] v1:v2:..., ...` (`mode` `None` for one tuple).
    Zip {
        properties: Vec<String>,
        mode: Option<SetMode>,
        tuples: Vec<Vec<(Op, Literal)>>,
    },
}

/// A filter: comparisons joined by `AND`, `OR`, `NOT`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cmp(Comparison),
}

/// Why a filter cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// The filter asks something that has no meaning (400).
    Bad(String),
    /// The filter uses an optional part of the language this server does not offer (501).
    NotImplemented(String),
}

/// The provider prefix of this server's own fields.
pub const PREFIX: &str = "_aiida_";

/// What the check found besides errors: the properties of other providers it treats as unknown.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Checked {
    pub foreign: Vec<String>,
}

fn bad(msg: impl Into<String>) -> FilterError {
    FilterError::Bad(msg.into())
}

/// Looks up a property: `Ok(Some)` ours, `Ok(None)` another provider's (unknown), else 400.
fn lookup(name: &str, checked: &mut Checked) -> Result<Option<PropType>, FilterError> {
    if let Some(def) = property(name) {
        if !def.queryable {
            return Err(FilterError::NotImplemented(format!("Queries on the property '{name}' are not supported.")));
        }
        return Ok(Some(def.kind));
    }
    let foreign = name.starts_with('_') && !name.starts_with(PREFIX) && name[1..].contains('_');
    if foreign {
        if !checked.foreign.iter().any(|f| f == name) {
            checked.foreign.push(name.to_string());
        }
        return Ok(None);
    }
    Err(bad(format!("Unknown property '{name}' in the filter.")))
}

/// Whether `value` can be compared with values of type `item`.
fn check_value(name: &str, item: PropType, value: &Literal) -> Result<(), FilterError> {
    let ok = match value {
        Literal::Property(_) => {
            return Err(FilterError::NotImplemented("Properties as values in comparisons are not supported.".into()));
        }
        Literal::Bool(_) => false,
        Literal::Str(s) => match item {
            PropType::String => true,
            PropType::Timestamp => {
                if time::parse_client(s).is_none() {
                    return Err(bad(format!(
                        "'{s}' is not a timestamp (compare '{name}' with \"YYYY-MM-DDTHH:MM:SSZ\")."
                    )));
                }
                true
            }
            _ => false,
        },
        Literal::Num(_) => matches!(item, PropType::Integer | PropType::Float),
    };
    if ok { Ok(()) } else { Err(bad(format!("The property '{name}' cannot be compared with {}.", describe(value)))) }
}

fn describe(value: &Literal) -> String {
    match value {
        Literal::Str(s) => format!("the string \"{s}\""),
        Literal::Num(n) => format!("the number {n}"),
        Literal::Bool(b) => format!("the boolean {}", if *b { "TRUE" } else { "FALSE" }),
        Literal::Property(p) => format!("the property {p}"),
    }
}

fn item_type(item: ItemType) -> PropType {
    match item {
        ItemType::String => PropType::String,
        ItemType::Integer => PropType::Integer,
        ItemType::Float => PropType::Float,
    }
}

/// The item type of a list property, or the 400 for using a scalar as a list.
fn list_items(name: &str, kind: PropType) -> Result<PropType, FilterError> {
    match kind {
        PropType::List(Some(item)) => Ok(item_type(item)),
        _ => Err(bad(format!("'{name}' is not a list: HAS and LENGTH apply to lists."))),
    }
}

/// Checks `filter` against the properties: unknown names and mismatched types are 400,
/// optional parts not offered 501.
pub fn check(filter: &Filter) -> Result<Checked, FilterError> {
    let mut checked = Checked::default();
    check_into(filter, &mut checked)?;
    Ok(checked)
}

fn check_into(filter: &Filter, checked: &mut Checked) -> Result<(), FilterError> {
    match filter {
        Filter::And(parts) | Filter::Or(parts) => parts.iter().try_for_each(|p| check_into(p, checked)),
        Filter::Not(inner) => check_into(inner, checked),
        Filter::Cmp(c) => check_comparison(c, checked),
    }
}

fn check_comparison(c: &Comparison, checked: &mut Checked) -> Result<(), FilterError> {
    match c {
        Comparison::Value { property, value, .. } => {
            let Some(kind) = lookup(property, checked)? else { return literal_ok(value) };
            if matches!(kind, PropType::List(_)) {
                return Err(bad(format!("'{property}' is a list: compare it with HAS, HAS ALL/ANY/ONLY or LENGTH.")));
            }
            check_value(property, kind, value)
        }
        Comparison::Constants { left, right, .. } => {
            literal_ok(left)?;
            literal_ok(right)?;
            if std::mem::discriminant(left) != std::mem::discriminant(right) {
                return Err(bad(format!("{} and {} cannot be compared.", describe(left), describe(right))));
            }
            Ok(())
        }
        Comparison::Known { property, .. } => lookup(property, checked).map(|_| ()),
        Comparison::Fuzzy { property, value, .. } => {
            let Some(kind) = lookup(property, checked)? else { return literal_ok(value) };
            if kind != PropType::String {
                return Err(bad(format!("'{property}' is not a string: CONTAINS, STARTS and ENDS apply to strings.")));
            }
            match value {
                Literal::Str(_) => Ok(()),
                Literal::Property(_) => check_value(property, kind, value),
                other => Err(bad(format!("CONTAINS, STARTS and ENDS take a string, not {}.", describe(other)))),
            }
        }
        Comparison::Has { property, value, .. } => {
            let Some(kind) = lookup(property, checked)? else { return literal_ok(value) };
            check_value(property, list_items(property, kind)?, value)
        }
        Comparison::Set { property, values, .. } => {
            let Some(kind) = lookup(property, checked)? else {
                return values.iter().try_for_each(|(_, v)| literal_ok(v));
            };
            let item = list_items(property, kind)?;
            values.iter().try_for_each(|(_, v)| check_value(property, item, v))
        }
        Comparison::Length { property, value, .. } => {
            let Some(kind) = lookup(property, checked)? else { return literal_ok(value) };
            list_items(property, kind)?;
            match value {
                Literal::Num(n) if n.fract() == 0.0 => Ok(()),
                other => Err(bad(format!("LENGTH takes an integer, not {}.", describe(other)))),
            }
        }
        Comparison::Zip { properties, tuples, .. } => {
            let mut items = Vec::new();
            for p in properties {
                items.push(match lookup(p, checked)? {
                    Some(kind) => Some(list_items(p, kind)?),
                    None => None,
                });
            }
            for tuple in tuples {
                if tuple.len() != properties.len() {
                    return Err(bad(format!(
                        "HAS on {} properties takes tuples of {} values, not {}.",
                        properties.len(),
                        properties.len(),
                        tuple.len()
                    )));
                }
                for ((name, item), (_, value)) in properties.iter().zip(&items).zip(tuple) {
                    match item {
                        Some(item) => check_value(name, *item, value)?,
                        None => literal_ok(value)?,
                    }
                }
            }
            Ok(())
        }
    }
}

fn literal_ok(value: &Literal) -> Result<(), FilterError> {
    match value {
        Literal::Property(_) => {
            Err(FilterError::NotImplemented("Properties as values in comparisons are not supported.".into()))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// One value of an entry: a scalar property or an item of a list.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Str(&'a str),
    Num(f64),
    Time(DateTime<Utc>),
}

fn compare(item: Item<'_>, op: Op, value: &Literal) -> bool {
    let ordering = match (item, value) {
        (Item::Str(a), Literal::Str(b)) => Some(a.cmp(b.as_str())),
        (Item::Num(a), Literal::Num(b)) => a.partial_cmp(b),
        (Item::Time(a), Literal::Str(b)) => time::parse_client(b).map(|b| a.cmp(&b)),
        _ => None,
    };
    op.holds(ordering)
}

fn scalar(prop: Prop<'_>) -> Option<Item<'_>> {
    match prop {
        Prop::Str(s) => Some(Item::Str(s)),
        Prop::Int(n) => Some(Item::Num(n as f64)),
        Prop::Float(x) => Some(Item::Num(x)),
        Prop::Time(t) => Some(Item::Time(t)),
        _ => None,
    }
}

fn list_len(prop: Prop<'_>) -> Option<usize> {
    match prop {
        Prop::Strs(v) => Some(v.len()),
        Prop::Ints(v) => Some(v.len()),
        Prop::Floats(v) => Some(v.len()),
        _ => None,
    }
}

fn list_item(prop: Prop<'_>, i: usize) -> Option<Item<'_>> {
    match prop {
        Prop::Strs(v) => v.get(i).map(|s| Item::Str(s)),
        Prop::Ints(v) => v.get(i).map(|&n| Item::Num(n as f64)),
        Prop::Floats(v) => v.get(i).map(|&x| Item::Num(x)),
        _ => None,
    }
}

fn literal_cmp(left: &Literal, op: Op, right: &Literal) -> bool {
    let ordering = match (left, right) {
        (Literal::Str(a), Literal::Str(b)) => Some(a.cmp(b)),
        (Literal::Num(a), Literal::Num(b)) => a.partial_cmp(b),
        (Literal::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    op.holds(ordering)
}

/// Whether `entry` matches a checked `filter`.
pub fn matches(filter: &Filter, entry: &Entry) -> bool {
    match filter {
        Filter::And(parts) => parts.iter().all(|p| matches(p, entry)),
        Filter::Or(parts) => parts.iter().any(|p| matches(p, entry)),
        Filter::Not(inner) => !matches(inner, entry),
        Filter::Cmp(c) => comparison(c, entry),
    }
}

/// A filter ready to run over many entries: `elements HAS [ALL|ANY|ONLY] "A", "B"` (equality
/// only) becomes a test of the entries' element bit sets; the rest is evaluated as [`matches`]
/// does, with the same results.
#[derive(Debug)]
pub enum Prepared<'f> {
    And(Vec<Prepared<'f>>),
    Or(Vec<Prepared<'f>>),
    Not(Box<Prepared<'f>>),
    Elements { mode: SetMode, mask: u128, unknown: bool, general: &'f Comparison },
    Cmp(&'f Comparison),
}

impl<'f> Prepared<'f> {
    pub fn new(filter: &'f Filter) -> Prepared<'f> {
        match filter {
            Filter::And(parts) => Prepared::And(parts.iter().map(Prepared::new).collect()),
            Filter::Or(parts) => Prepared::Or(parts.iter().map(Prepared::new).collect()),
            Filter::Not(inner) => Prepared::Not(Box::new(Prepared::new(inner))),
            Filter::Cmp(c) => Prepared::comparison(c),
        }
    }

    fn comparison(c: &'f Comparison) -> Prepared<'f> {
        let (mode, values): (SetMode, Vec<&Literal>) = match c {
            Comparison::Has { property, op: Op::Eq, value } if property == "elements" => (SetMode::All, vec![value]),
            Comparison::Set { property, mode, values }
                if property == "elements" && values.iter().all(|(o, _)| *o == Op::Eq) =>
            {
                (*mode, values.iter().map(|(_, v)| v).collect())
            }
            _ => return Prepared::Cmp(c),
        };
        let mut mask = 0u128;
        let mut unknown = false;
        for value in values {
            match value {
                Literal::Str(s) => match super::entry::element_mask([s.as_str()]) {
                    Some(bit) => mask |= bit,
                    None => unknown = true,
                },
                _ => return Prepared::Cmp(c),
            }
        }
        Prepared::Elements { mode, mask, unknown, general: c }
    }

    /// Whether `entry` matches.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Prepared::And(parts) => parts.iter().all(|p| p.matches(entry)),
            Prepared::Or(parts) => parts.iter().any(|p| p.matches(entry)),
            Prepared::Not(inner) => !inner.matches(entry),
            Prepared::Cmp(c) => comparison(c, entry),
            Prepared::Elements { mode, mask, unknown, general } => match entry.element_mask {
                // An entry whose elements all have atomic numbers has none of the unknown values.
                Some(have) => match mode {
                    SetMode::All => !unknown && have & mask == *mask,
                    SetMode::Any => have & mask != 0,
                    SetMode::Only => have & !mask == 0,
                },
                None => comparison(general, entry),
            },
        }
    }
}

fn get<'e>(entry: &'e Entry, name: &str) -> Prop<'e> {
    entry.get(name).unwrap_or(Prop::Null)
}

fn comparison(c: &Comparison, entry: &Entry) -> bool {
    match c {
        Comparison::Value { property, op, value } => {
            scalar(get(entry, property)).is_some_and(|i| compare(i, *op, value))
        }
        Comparison::Constants { left, op, right } => literal_cmp(left, *op, right),
        Comparison::Known { property, known } => !matches!(get(entry, property), Prop::Null) == *known,
        Comparison::Fuzzy { property, fuzzy, value } => match (get(entry, property), value) {
            (Prop::Str(s), Literal::Str(v)) => match fuzzy {
                Fuzzy::Contains => s.contains(v.as_str()),
                Fuzzy::Starts => s.starts_with(v.as_str()),
                Fuzzy::Ends => s.ends_with(v.as_str()),
            },
            _ => false,
        },
        Comparison::Has { property, op, value } => {
            let prop = get(entry, property);
            (0..list_len(prop).unwrap_or(0)).any(|i| list_item(prop, i).is_some_and(|it| compare(it, *op, value)))
        }
        Comparison::Set { property, mode, values } => {
            let prop = get(entry, property);
            let Some(n) = list_len(prop) else { return false };
            let has =
                |(op, v): &(Op, Literal)| (0..n).any(|i| list_item(prop, i).is_some_and(|it| compare(it, *op, v)));
            match mode {
                SetMode::All => values.iter().all(has),
                SetMode::Any => values.iter().any(has),
                SetMode::Only => (0..n)
                    .all(|i| list_item(prop, i).is_some_and(|it| values.iter().any(|(op, v)| compare(it, *op, v)))),
            }
        }
        Comparison::Length { property, op, value } => match (list_len(get(entry, property)), value) {
            (Some(n), Literal::Num(v)) => op.holds((n as f64).partial_cmp(v)),
            _ => false,
        },
        Comparison::Zip { properties, mode, tuples } => {
            let props: Vec<Prop<'_>> = properties.iter().map(|p| get(entry, p)).collect();
            let Some(n) = props.iter().map(|p| list_len(*p)).collect::<Option<Vec<usize>>>() else { return false };
            let n = n.into_iter().min().unwrap_or(0);
            let row_matches = |i: usize, tuple: &[(Op, Literal)]| {
                props.iter().zip(tuple).all(|(p, (op, v))| list_item(*p, i).is_some_and(|it| compare(it, *op, v)))
            };
            let has = |tuple: &Vec<(Op, Literal)>| (0..n).any(|i| row_matches(i, tuple));
            match mode {
                None | Some(SetMode::All) => tuples.iter().all(has),
                Some(SetMode::Any) => tuples.iter().any(has),
                Some(SetMode::Only) => (0..n).all(|i| tuples.iter().any(|t| row_matches(i, t))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators() {
        assert!(Op::Le.holds(Some(Ordering::Equal)));
        assert!(!Op::Lt.holds(Some(Ordering::Equal)));
        assert!(!Op::Ne.holds(None));
        assert_eq!(Op::Lt.flip(), Op::Gt);
        assert!(literal_cmp(&Literal::Num(1.0), Op::Lt, &Literal::Num(2.0)));
        assert!(!literal_cmp(&Literal::Num(1.0), Op::Eq, &Literal::Str("1".into())));
    }

    #[test]
    fn checks() {
        let cmp = |property: &str, value: Literal| {
            check(&Filter::Cmp(Comparison::Value { property: property.into(), op: Op::Eq, value }))
        };
        assert!(cmp("nelements", Literal::Num(2.0)).is_ok());
        assert!(matches!(cmp("nelements", Literal::Str("2".into())), Err(FilterError::Bad(_))));
        assert!(matches!(cmp("elements", Literal::Str("Si".into())), Err(FilterError::Bad(_))));
        assert!(matches!(cmp("crazyfield", Literal::Num(2.0)), Err(FilterError::Bad(_))));
        assert!(matches!(cmp("_aiida_nothing", Literal::Num(2.0)), Err(FilterError::Bad(_))));
        assert!(matches!(cmp("lattice_vectors", Literal::Num(2.0)), Err(FilterError::NotImplemented(_))));
        assert!(matches!(cmp("nsites", Literal::Property("nelements".into())), Err(FilterError::NotImplemented(_))));
        assert_eq!(cmp("_other_field", Literal::Num(2.0)).unwrap().foreign, ["_other_field"]);
        assert!(matches!(cmp("last_modified", Literal::Str("yesterday".into())), Err(FilterError::Bad(_))));
        assert!(cmp("last_modified", Literal::Str("2024-01-01T00:00:00Z".into())).is_ok());
    }

    #[test]
    fn element_bit_sets_agree_with_the_general_evaluation() {
        let entry = |symbols: &[&str]| {
            let kinds: Vec<String> =
                symbols.iter().map(|s| format!(r#"{{"name": "{s}", "symbols": ["{s}"], "weights": [1.0]}}"#)).collect();
            let sites: Vec<String> =
                symbols.iter().map(|s| format!(r#"{{"kind_name": "{s}", "position": [0, 0, 0]}}"#)).collect();
            let text = format!(
                r#"{{"cell": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "kinds": [{}], "sites": [{}]}}"#,
                kinds.join(","),
                sites.join(",")
            );
            let node = super::super::entry::NodeColumns {
                pk: 1,
                uuid: "u".into(),
                label: String::new(),
                ctime: None,
                mtime: None,
                creator: None,
            };
            Entry::derive(node, &text).unwrap()
        };
        let entries = [entry(&["Si", "O"]), entry(&["Si"]), entry(&["Qq", "Si"]), entry(&[])];
        assert_eq!(entries[0].element_mask, Some((1 << 14) | (1 << 8)));
        assert_eq!(entries[2].element_mask, None);
        let lit = |s: &str| (Op::Eq, Literal::Str(s.into()));
        for mode in [SetMode::All, SetMode::Any, SetMode::Only] {
            for values in [vec![lit("Si")], vec![lit("Si"), lit("O")], vec![lit("Qq"), lit("Si")], vec![lit("Xx")]] {
                let f = Filter::Cmp(Comparison::Set { property: "elements".into(), mode, values });
                let prepared = Prepared::new(&f);
                for e in &entries {
                    assert_eq!(prepared.matches(e), matches(&f, e), "{f:?} on {:?}", e.composition.elements);
                }
            }
        }
    }
}
