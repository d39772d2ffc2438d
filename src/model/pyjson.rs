//! JSON output byte-compatible with Flask's `jsonify`: keys sorted at every level, compact
//! separators, ASCII-only escaping, Python float spelling and one trailing newline.

use serde_json::{Number, Value};
use std::fmt::Write;

/// Serialises `value` the way the Python reference does (sorted keys come from serde_json's
/// default `BTreeMap`, whose byte order equals Python's code-point order for UTF-8 keys).
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out.push('\n');
    out
}

/// Appends `value` to `out` as [`to_string`] spells it, without the trailing newline.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // With `arbitrary_precision` the number keeps the text it was read with, which is what
        // Python wrote into the database, so integers beyond 64 bits survive unchanged.
        Value::Number(n) => out.push_str(n.as_str()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// Python's `json.dumps(..., ensure_ascii=True)` string escaping. Runs of characters that need
/// no escape are copied at once.
pub fn write_str(out: &mut String, s: &str) {
    write_str_parts(out, &[s]);
}

/// [`write_str`] of the concatenation of `parts`, without making it.
pub fn write_str_parts(out: &mut String, parts: &[&str]) {
    out.reserve(parts.iter().map(|p| p.len()).sum::<usize>() + 2);
    out.push('"');
    for part in parts {
        write_escaped(out, part);
    }
    out.push('"');
}

fn write_escaped(out: &mut String, s: &str) {
    let mut rest = s;
    loop {
        let run = rest.bytes().position(|b| !PLAIN[usize::from(b)]).unwrap_or(rest.len());
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        // A byte that needs escaping, or the first byte of a non-ASCII character.
        let Some(c) = rest.chars().next() else { break };
        rest = &rest[c.len_utf8()..];
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
}

/// The bytes [`write_str`] copies as they are: printable ASCII but `"` and `\`.
static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        table[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    table
};

/// Python's `str(float)`: as `repr`, but `nan`, `inf` and `-inf` in lowercase (JSON's `repr`
/// spelling, `NaN`/`Infinity`, is [`python_float_repr`]'s).
pub fn python_float_str(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        python_float_repr(x)
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `.0` for integral values, exponent form
/// outside `1e-4 <= |x| < 1e16`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `{:e}` gives the shortest round-trip mantissa, e.g. "1.5e-7".
    let sci = format!("{:e}", x);
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let mut m = String::new();
        m.push_str(&digits[..1]);
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        return format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let point = exp + 1; // position of the decimal point within `digits`
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    format!("{sign}{body}")
}

/// A JSON number spelled as Python would spell the float. Non-finite values become `null`,
/// since they are not valid JSON.
pub fn float(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    let text = python_float_repr(x);
    serde_json::from_str::<Number>(&text).map(Value::Number).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_compact_ascii() {
        let v = json!({"b": 1, "a": "é\"\n", "A": [true, null]});
        assert_eq!(to_string(&v), "{\"A\":[true,null],\"a\":\"\\u00e9\\\"\\n\",\"b\":1}\n");
    }

    #[test]
    fn astral_chars_are_surrogate_pairs() {
        assert_eq!(to_string(&json!("😀")), "\"\\ud83d\\ude00\"\n");
        // Python escapes everything outside ' '..'~', DEL included, but not '/'.
        assert_eq!(to_string(&json!("\u{7f}/")), "\"\\u007f/\"\n");
    }

    #[test]
    fn python_floats() {
        for (x, s) in [
            (8.0, "8.0"),
            (1e-5, "1e-05"),
            (1e16, "1e+16"),
            (1234.5, "1234.5"),
            (0.0001, "0.0001"),
            (-1.5e-300, "-1.5e-300"),
            (6.022e23, "6.022e+23"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5e-10, "-2.5e-10"),
        ] {
            assert_eq!(python_float_repr(x), s);
        }
    }

    #[test]
    fn big_integers_survive() {
        let v: Value = serde_json::from_str("{\"x\": 100000000000000000000, \"y\": 1e-05}").unwrap();
        assert_eq!(to_string(&v), "{\"x\":100000000000000000000,\"y\":1e-05}\n");
    }
}
