//! The OPTIMADE filter grammar (`filter.pest`, a PEG of the specification's grammar) and the
//! filter tree it yields, the query layer's [`Filter`].

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;

use crate::query::optimade::filter::{Comparison, Filter, Fuzzy, Literal, Op, SetMode};

#[derive(Parser)]
#[grammar = "http/optimade/filter.pest"]
struct Grammar;

/// The deepest nesting of parentheses a filter may have.
pub const MAX_DEPTH: usize = 64;

/// Parses a filter: `Ok(None)` for an empty one, the message of a 400 (with the position of
/// the error) for a malformed one.
pub fn parse(text: &str) -> Result<Option<Filter>, String> {
    check_depth(text)?;
    let mut pairs = Grammar::parse(Rule::filter, text).map_err(|e| {
        let (line, column) = match e.line_col {
            pest::error::LineColLocation::Pos(p) | pest::error::LineColLocation::Span(p, _) => p,
        };
        let position = match e.location {
            pest::error::InputLocation::Pos(p) | pest::error::InputLocation::Span((p, _)) => p,
        };
        let expected = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
                let mut names: Vec<String> = positives.iter().map(|r| format!("{r:?}")).collect();
                names.dedup();
                format!(": expected {}", names.join(", "))
            }
            _ => String::new(),
        };
        format!(
            "The filter is malformed at position {position} (line {line}, column {column}){expected}. Filter: {text}"
        )
    })?;
    let filter = pairs.next().expect("the filter rule");
    Ok(filter.into_inner().find(|p| p.as_rule() == Rule::expression).map(expression))
}

fn check_depth(text: &str) -> Result<(), String> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            (false, _, '(') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "The filter nests parentheses deeper than {MAX_DEPTH} levels (at position {i})."
                    ));
                }
            }
            (false, _, ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn expression(pair: Pair<'_, Rule>) -> Filter {
    let mut clauses: Vec<Filter> = pair.into_inner().map(clause).collect();
    if clauses.len() == 1 { clauses.pop().expect("one clause") } else { Filter::Or(clauses) }
}

fn clause(pair: Pair<'_, Rule>) -> Filter {
    let mut phrases: Vec<Filter> = pair.into_inner().map(phrase).collect();
    if phrases.len() == 1 { phrases.pop().expect("one phrase") } else { Filter::And(phrases) }
}

fn phrase(pair: Pair<'_, Rule>) -> Filter {
    let mut negated = false;
    let mut inner = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::not => negated = true,
            Rule::comparison => inner = Some(Filter::Cmp(comparison(p))),
            Rule::expression => inner = Some(expression(p)),
            _ => unreachable!("phrase holds {:?}", p.as_rule()),
        }
    }
    let inner = inner.expect("a phrase has a comparison or an expression");
    if negated { Filter::Not(Box::new(inner)) } else { inner }
}

fn op(pair: Pair<'_, Rule>) -> Op {
    match pair.as_str() {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        _ => Op::Ge,
    }
}

fn literal(pair: Pair<'_, Rule>) -> Literal {
    // `value` and `constant` wrap one token.
    let token = match pair.as_rule() {
        Rule::value | Rule::constant => pair.into_inner().next().expect("a value token"),
        _ => pair,
    };
    match token.as_rule() {
        Rule::string => Literal::Str(unescape(token.into_inner().next().map_or("", |p| p.as_str()))),
        Rule::number => Literal::Num(token.as_str().parse().unwrap_or(f64::NAN)),
        Rule::boolean => Literal::Bool(token.as_str() == "TRUE"),
        _ => Literal::Property(token.as_str().to_string()),
    }
}

/// A string's text: `\x` stands for `x` (`\"` and `\\` are the escapes the grammar needs).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// `[OP] value` (`=` when no operator).
fn op_value(pair: Pair<'_, Rule>) -> (Op, Literal) {
    let mut o = Op::Eq;
    let mut value = Literal::Bool(false);
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::operator => o = op(p),
            _ => value = literal(p),
        }
    }
    (o, value)
}

fn comparison(pair: Pair<'_, Rule>) -> Comparison {
    let inner = pair.into_inner().next().expect("a comparison");
    match inner.as_rule() {
        Rule::constant_first => {
            let mut parts = inner.into_inner();
            let left = literal(parts.next().expect("constant"));
            let o = op(parts.next().expect("operator"));
            match literal(parts.next().expect("value")) {
                Literal::Property(property) => Comparison::Value { property, op: o.flip(), value: left },
                right => Comparison::Constants { left, op: o, right },
            }
        }
        _ => {
            let mut parts = inner.into_inner();
            let property = parts.next().expect("property").as_str().to_string();
            let rhs = parts.next().expect("right-hand side");
            property_first(property, rhs)
        }
    }
}

fn property_first(property: String, rhs: Pair<'_, Rule>) -> Comparison {
    let rule = rhs.as_rule();
    let mut parts = rhs.into_inner();
    match rule {
        Rule::value_op_rhs => {
            let o = op(parts.next().expect("operator"));
            Comparison::Value { property, op: o, value: literal(parts.next().expect("value")) }
        }
        Rule::known_op_rhs => {
            Comparison::Known { property, known: parts.next().expect("KNOWN").as_rule() == Rule::known }
        }
        Rule::fuzzy_op_rhs => {
            let fuzzy = match parts.next().expect("keyword").as_rule() {
                Rule::contains => Fuzzy::Contains,
                Rule::starts => Fuzzy::Starts,
                _ => Fuzzy::Ends,
            };
            Comparison::Fuzzy { property, fuzzy, value: literal(parts.next().expect("value")) }
        }
        Rule::set_op_rhs => {
            let first = parts.next().expect("HAS operand");
            let mode = match first.as_rule() {
                Rule::all => SetMode::All,
                Rule::any => SetMode::Any,
                Rule::only => SetMode::Only,
                _ => {
                    let (o, value) = op_value(first);
                    return Comparison::Has { property, op: o, value };
                }
            };
            let values = parts.next().expect("value list").into_inner().map(op_value).collect();
            Comparison::Set { property, mode, values }
        }
        Rule::length_op_rhs => {
            let mut o = Op::Eq;
            let mut value = Literal::Num(0.0);
            for p in parts {
                match p.as_rule() {
                    Rule::operator => o = op(p),
                    _ => value = literal(p),
                }
            }
            Comparison::Length { property, op: o, value }
        }
        _ => {
            // set_zip_op_rhs: the further properties, then the tuples.
            let mut properties = vec![property];
            let mut mode = None;
            let mut tuples = Vec::new();
            for p in parts {
                match p.as_rule() {
                    Rule::property => properties.push(p.as_str().to_string()),
                    Rule::all => mode = Some(SetMode::All),
                    Rule::any => mode = Some(SetMode::Any),
                    Rule::only => mode = Some(SetMode::Only),
                    Rule::value_zip => tuples.push(p.into_inner().map(op_value).collect()),
                    _ => tuples.extend(p.into_inner().map(|z| z.into_inner().map(op_value).collect())),
                }
            }
            Comparison::Zip { properties, mode, tuples }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(property: &str, op: Op, value: Literal) -> Filter {
        Filter::Cmp(Comparison::Value { property: property.into(), op, value })
    }

    #[test]
    fn precedence() {
        let f = parse("NOT a=1 AND b=2 OR c=3").unwrap().unwrap();
        let expected = Filter::Or(vec![
            Filter::And(vec![
                Filter::Not(Box::new(cmp("a", Op::Eq, Literal::Num(1.0)))),
                cmp("b", Op::Eq, Literal::Num(2.0)),
            ]),
            cmp("c", Op::Eq, Literal::Num(3.0)),
        ]);
        assert_eq!(f, expected);
        let f = parse("NOT (a=1 OR b=2)").unwrap().unwrap();
        assert!(matches!(f, Filter::Not(inner) if matches!(*inner, Filter::Or(_))));
    }

    #[test]
    fn comparisons() {
        assert_eq!(parse("3 < nsites").unwrap().unwrap(), cmp("nsites", Op::Gt, Literal::Num(3.0)));
        assert_eq!(
            parse("chemical_formula_reduced = \"a\\\"b\\\\\"").unwrap().unwrap(),
            cmp("chemical_formula_reduced", Op::Eq, Literal::Str("a\"b\\".into()))
        );
        assert_eq!(
            parse("elements HAS ALL \"Si\", >\"O\"").unwrap().unwrap(),
            Filter::Cmp(Comparison::Set {
                property: "elements".into(),
                mode: SetMode::All,
                values: vec![(Op::Eq, Literal::Str("Si".into())), (Op::Gt, Literal::Str("O".into()))],
            })
        );
        assert_eq!(
            parse("elements:elements_ratios HAS ANY \"Si\":>0.3, \"O\":<1e-1").unwrap().unwrap(),
            Filter::Cmp(Comparison::Zip {
                properties: vec!["elements".into(), "elements_ratios".into()],
                mode: Some(SetMode::Any),
                tuples: vec![
                    vec![(Op::Eq, Literal::Str("Si".into())), (Op::Gt, Literal::Num(0.3))],
                    vec![(Op::Eq, Literal::Str("O".into())), (Op::Lt, Literal::Num(0.1))],
                ],
            })
        );
        assert!(matches!(
            parse("_aiida_creator IS UNKNOWN").unwrap().unwrap(),
            Filter::Cmp(Comparison::Known { known: false, .. })
        ));
        assert!(matches!(
            parse("id STARTS \"ab\"").unwrap().unwrap(),
            Filter::Cmp(Comparison::Fuzzy { fuzzy: Fuzzy::Starts, .. })
        ));
        assert!(matches!(
            parse("elements LENGTH >= 2").unwrap().unwrap(),
            Filter::Cmp(Comparison::Length { op: Op::Ge, .. })
        ));
        assert_eq!(parse("  ").unwrap(), None);
    }

    #[test]
    fn errors_name_the_position() {
        let err = parse("nelements = ").unwrap_err();
        assert!(err.contains("position 12"), "{err}");
        let err = parse("nelements == 2").unwrap_err();
        assert!(err.contains("position 11"), "{err}");
        assert!(parse("Elements HAS \"Si\"").is_err());
        assert!(parse("nelements=2 AND").is_err());
        assert!(parse(&format!("{}a=1{}", "(".repeat(65), ")".repeat(65))).unwrap_err().contains("deeper"));
        assert!(parse(&format!("{}a=1{}", "(".repeat(64), ")".repeat(64))).is_ok());
    }
}
