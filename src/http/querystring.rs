//! The REST query-string grammar (spec 4.2, 4.3).
//!
//! A hand-written PEG that mirrors the reference pyparsing grammar (pyparsing 3.3.3, Python 3.11)
//! quirk for quirk: which inputs are accepted, what they become and where an error is reported
//! are all visible on the wire, so the ordered choices, the lack of backtracking inside a matched
//! alternative and the odd token boundaries are deliberate.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};

/// The grammar produces the query layer's filter model.
pub use crate::query::filter::{DateTimeValue, Op, Value};

/// Operators in the reference's try order: the first literal that matches is taken and never
/// revisited, even if the value after it then fails (so `x=like=,` is not read as `x = like...`).
const OPERATORS: [Op; 10] = [Op::Like, Op::ILike, Op::In, Op::NotIn, Op::Eq, Op::Ne, Op::Ge, Op::Gt, Op::Le, Op::Lt];

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: String,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// `position` is a char offset into the query after tab expansion (as pyparsing counts).
    #[error(
        "The query string format is invalid: expected {expected}, found {found} at position {position} (column {column})",
        found = describe_found(.found.as_deref()),
        column = .position + 1
    )]
    Syntax { position: usize, found: Option<String>, expected: String },
    #[error(
        "time value has wrong format. The right format is <date>T<time><offset>, where <date> is expressed as [YYYY]-[MM]-[DD], <time> is expressed as [HH]:[MM]:[SS], <offset> is expressed as +/-[HH]:[MM] given with respect to UTC"
    )]
    DateTime { token: String },
}

fn describe_found(found: Option<&str>) -> String {
    match found {
        Some(tok) => format!("'{tok}'"),
        None => "end of input".to_owned(),
    }
}

impl ParseError {
    /// pyparsing's own text for a syntax error (`Expected end of text, found 'x'  (at char N),
    /// (line:L, col:C)`), which the reference embeds in its error body. `query` must be the string
    /// given to [`parse`]; line and column are pyparsing's, so they differ from `position` after a
    /// newline. `None` for datetime errors.
    pub fn pyparsing_message(&self, query: &str) -> Option<String> {
        let ParseError::Syntax { position, found, expected } = self else {
            return None;
        };
        let s = expand_tabs(query);
        let loc = (*position).min(s.len());
        let line = s[..loc].iter().filter(|&&c| c == '\n').count() + 1;
        let col = match s[..loc].iter().rposition(|&c| c == '\n') {
            Some(nl) => loc - nl,
            None => loc + 1,
        };
        let found = match found {
            Some(tok) => python_repr(tok),
            None => "end of text".to_owned(),
        };
        Some(format!("Expected {expected}, found {found}  (at char {loc}), (line:{line}, col:{col})"))
    }
}

/// Parse a percent-decoded query string into its fields, in order. Fields keyed `_` (jQuery's
/// cache buster) are dropped, as the reference does.
pub fn parse(query: &str) -> Result<Vec<Field>, ParseError> {
    // pyparsing expands tabs before parsing; this changes quoted strings and error offsets.
    let p = Parser { s: expand_tabs(query) };
    let mut fields = Vec::new();
    let mut loc = 0;
    if let Some((f, end)) = p.field(0)? {
        fields.push(f);
        loc = end;
    }
    loop {
        let amp = p.skip_ws(loc);
        if p.at(amp) != Some('&') {
            break;
        }
        match p.field(amp + 1)? {
            Some((f, end)) => {
                fields.push(f);
                loc = end;
            }
            None => break,
        }
    }
    let amp = p.skip_ws(loc);
    if p.at(amp) == Some('&') {
        loc = amp + 1;
    }
    let end = p.skip_ws(loc);
    if end < p.s.len() {
        return Err(ParseError::Syntax {
            position: end,
            found: Some(p.found_token(end)),
            expected: "end of text".to_owned(),
        });
    }
    fields.retain(|f| f.key != "_");
    Ok(fields)
}

/// Some((value, end)) on a match, None on no match; Err only for datetime errors, which abort the
/// whole parse at the first attempt, as the reference's parse action raises a non-parse error.
type PResult<T> = Result<Option<(T, usize)>, ParseError>;

struct Parser {
    s: Vec<char>,
}

impl Parser {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some(' ' | '\t' | '\n' | '\r')) {
            i += 1;
        }
        i
    }

    fn lit(&self, i: usize, lit: &str) -> Option<usize> {
        let mut j = i;
        for c in lit.chars() {
            if self.at(j) != Some(c) {
                return None;
            }
            j += 1;
        }
        Some(j)
    }

    /// Exactly `n` ASCII digits (the datetime parts use pyparsing's ASCII `nums`).
    fn ascii_digits(&self, i: usize, n: usize) -> Option<usize> {
        (i..i + n).all(|j| self.at(j).is_some_and(|c| c.is_ascii_digit())).then_some(i + n)
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.s[from..to].iter().collect()
    }

    /// pyparsing reports up to 16 "word" characters of its extended Latin/Greek/Cyrillic set, or
    /// else the single offending character.
    fn found_token(&self, i: usize) -> String {
        let n = self.s[i..].iter().take(16).take_while(|&&c| in_ranges(c, EXCEPTION_WORD_CHARS)).count();
        self.text(i, i + n.max(1))
    }

    fn key(&self, i: usize) -> Option<(String, usize)> {
        let first = self.at(i)?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let mut j = i + 1;
        while self.at(j).is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            j += 1;
        }
        Some((self.text(i, j), j))
    }

    fn field(&self, i: usize) -> PResult<Field> {
        let Some((key, after_key)) = self.key(self.skip_ws(i)) else {
            return Ok(None);
        };
        let at_op = self.skip_ws(after_key);

        // list_field
        let list_op = [Op::In, Op::NotIn].into_iter().find_map(|op| self.lit(at_op, op.as_str()).map(|e| (op, e)));
        if let Some((op, e)) = list_op
            && let Some((values, end)) = self.value_list(e)?
        {
            let value = Value::List(values);
            return Ok(Some((Field { key, op, value }, end)));
        }

        // orderby_field: `=` with a list, for any key
        if let Some(e) = self.lit(at_op, "=")
            && let Some((values, end)) = self.value_list(e)?
        {
            let (op, value) = (Op::Eq, Value::List(values));
            return Ok(Some((Field { key, op, value }, end)));
        }

        // single_field
        let Some((op, e)) = OPERATORS.into_iter().find_map(|op| self.lit(at_op, op.as_str()).map(|e| (op, e))) else {
            return Ok(None);
        };
        Ok(self.value(e)?.map(|(value, end)| (Field { key, op, value }, end)))
    }

    /// Two or more values; one trailing comma is swallowed.
    fn value_list(&self, i: usize) -> PResult<Vec<Value>> {
        let Some((first, mut end)) = self.value(i)? else {
            return Ok(None);
        };
        let mut values = vec![first];
        loop {
            let comma = self.skip_ws(end);
            if self.at(comma) != Some(',') {
                break;
            }
            match self.value(comma + 1)? {
                Some((v, e)) => {
                    values.push(v);
                    end = e;
                }
                None => break,
            }
        }
        if values.len() < 2 {
            return Ok(None);
        }
        let comma = self.skip_ws(end);
        if self.at(comma) == Some(',') {
            end = comma + 1;
        }
        Ok(Some((values, end)))
    }

    fn value(&self, i: usize) -> PResult<Value> {
        let i = self.skip_ws(i);
        if let Some((s, e)) = self.string(i) {
            return Ok(Some((Value::Str(s), e)));
        }
        // No word-end check after the literal, as in the reference: `x=trueish` is `true`
        // followed by junk, i.e. a syntax error.
        if let Some(e) = self.lit(i, "true") {
            return Ok(Some((Value::Bool(true), e)));
        }
        if let Some(e) = self.lit(i, "false") {
            return Ok(Some((Value::Bool(false), e)));
        }
        if let Some(found) = self.datetime(i)? {
            return Ok(Some(found));
        }
        if let Some(found) = self.number(i) {
            return Ok(Some(found));
        }
        Ok(self.word(i).map(|(w, e)| (Value::Str(w), e)))
    }

    /// `"..."` with `""` for a quote; no raw newline or carriage return inside.
    fn string(&self, i: usize) -> Option<(String, usize)> {
        if self.at(i) != Some('"') {
            return None;
        }
        let mut j = i + 1;
        let mut last_pair = None;
        let close = loop {
            match self.at(j) {
                Some('"') if self.at(j + 1) == Some('"') => {
                    last_pair = Some(j);
                    j += 2;
                }
                Some('"') => break j,
                // The reference's regex backtracks: an unterminated string still matches if a
                // `""` was seen, closing at its first quote.
                None | Some('\n' | '\r') => break last_pair?,
                Some(_) => j += 1,
            }
        };
        Some((unquote(&self.s[i + 1..close]), close + 1))
    }

    /// DATE [TIME] [SHIFT], which must end a word: the next char may be `&`, whitespace, a
    /// non-ASCII char or end of input. A `,` is printable, so a datetime can only be the last
    /// element of a value list: `ctime=in=2019-01-01,2019-01-02` fails, as in the reference.
    fn datetime(&self, i: usize) -> PResult<Value> {
        let date_end = self
            .ascii_digits(i, 4)
            .and_then(|j| self.lit(j, "-"))
            .and_then(|j| self.ascii_digits(j, 2))
            .and_then(|j| self.lit(j, "-"))
            .and_then(|j| self.ascii_digits(j, 2));
        let Some(mut j) = date_end else {
            return Ok(None);
        };
        let colon_pair = |j: usize| self.lit(j, ":").and_then(|k| self.ascii_digits(k, 2));
        if let Some(mut k) = self.lit(j, "T").and_then(|k| self.ascii_digits(k, 2)) {
            if let Some(m) = colon_pair(k) {
                k = m;
                if let Some(s) = colon_pair(k) {
                    k = s;
                }
            }
            j = k;
        }
        if let Some(mut k) = self.lit(j, "+").or_else(|| self.lit(j, "-")).and_then(|k| self.ascii_digits(k, 2)) {
            if let Some(m) = colon_pair(k) {
                k = m;
            }
            j = k;
        }
        if self.at(j).is_some_and(|c| c.is_ascii_graphic() && c != '&') {
            return Ok(None);
        }
        let token = &self.s[i..j];
        let precision = 1 + token.iter().filter(|&&c| c == 'T' || c == ':').count() as u8;
        match iso_datetime(token) {
            Some(datetime) => Ok(Some((Value::DateTime(DateTimeValue { datetime, precision }), j))),
            None => Err(ParseError::DateTime { token: token.iter().collect() }),
        }
    }

    /// pyparsing_common.number: scientific real | real | signed integer. Its regexes use Python's
    /// `\d`, i.e. any Unicode decimal digit, which Python's int()/float() accept too. Nothing needs
    /// to follow, so `1abc` is the number 1 followed by junk.
    fn number(&self, i: usize) -> Option<(Value, usize)> {
        let digit = |j: usize| self.at(j).is_some_and(|c| decimal_value(c).is_some());
        let digits_from = |mut j: usize| {
            while digit(j) {
                j += 1;
            }
            j
        };
        let exponent = |j: usize| {
            if !matches!(self.at(j), Some('e' | 'E')) {
                return None;
            }
            let k = if matches!(self.at(j + 1), Some('+' | '-')) { j + 2 } else { j + 1 };
            digit(k).then(|| digits_from(k))
        };
        let start = if matches!(self.at(i), Some('+' | '-')) { i + 1 } else { i };
        let int_end = digits_from(start);
        let has_int = int_end > start;
        if has_int && let Some(e) = exponent(int_end) {
            return Some((Value::Float(self.to_f64(i, e)), e));
        }
        let mantissa_end = if self.at(int_end) == Some('.') && (has_int || digit(int_end + 1)) {
            Some(digits_from(int_end + 1))
        } else {
            None
        };
        if let Some(m) = mantissa_end {
            let e = exponent(m).unwrap_or(m);
            return Some((Value::Float(self.to_f64(i, e)), e));
        }
        if !has_int {
            return None;
        }
        let ascii = self.ascii_number(i, int_end);
        let value = match ascii.parse::<i64>() {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Float(ascii.parse().unwrap_or(f64::NAN)),
        };
        Some((value, int_end))
    }

    fn ascii_number(&self, from: usize, to: usize) -> String {
        self.s[from..to]
            .iter()
            .map(|&c| match decimal_value(c) {
                Some(d) => char::from(b'0' + d),
                None => c,
            })
            .collect()
    }

    fn to_f64(&self, from: usize, to: usize) -> f64 {
        // The matched shapes are all valid Rust float syntax ("1.", ".5", "+1e3").
        self.ascii_number(from, to).parse().unwrap_or(f64::NAN)
    }

    /// `[+-]key`, contiguous.
    fn word(&self, i: usize) -> Option<(String, usize)> {
        let start = if matches!(self.at(i), Some('+' | '-')) { i + 1 } else { i };
        let (_, end) = self.key(start)?;
        Some((self.text(i, end), end))
    }
}

/// Python's `str.expandtabs()`: tab stops every 8 columns, columns reset by `\n` and `\r`.
fn expand_tabs(s: &str) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len());
    let mut col = 0;
    for c in s.chars() {
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\n' | '\r' => {
                out.push(c);
                col = 0;
            }
            _ => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

/// pyparsing 3.3's unquoting: one left-to-right escape scan, then `""` -> `"` (two passes, so
/// `\x22` next to `""` collapses as in the reference). Besides `\t \n \f \r`, 3.3 meant to
/// decode `\ooo`, `\0`, `\xHH` and `\uHHHH`, but its regex is an f-string in which `{3}`, `{2}`,
/// `{4}` became the literal digits 3, 2, 4. We copy what it really does: `\d3` (d octal) loses
/// its backslash, `\0` is NUL, `\xH2` and `\uH4` are the code points 0xH2 and 0xH4; any other
/// backslash stays.
fn unquote(content: &[char]) -> String {
    let at = |i: usize| content.get(i).copied();
    // one hex digit, then the fixed `last` digit
    let hex_then = |i: usize, last: char| -> Option<char> {
        let high = at(i)?.to_digit(16)?;
        if at(i + 1) != Some(last) {
            return None;
        }
        char::from_u32(high * 16 + last.to_digit(16)?)
    };
    let mut out = String::with_capacity(content.len());
    let mut i = 0;
    while let Some(c) = at(i) {
        if c == '\\'
            && let Some(next) = at(i + 1)
        {
            let decoded = match next {
                't' => Some(('\t', 2)),
                'n' => Some(('\n', 2)),
                'f' => Some(('\u{c}', 2)),
                'r' => Some(('\r', 2)),
                '0'..='7' if at(i + 2) == Some('3') => {
                    out.push(next);
                    Some(('3', 3))
                }
                '0' => Some(('\0', 2)),
                'x' => hex_then(i + 2, '2').map(|ch| (ch, 4)),
                'u' => hex_then(i + 2, '4').map(|ch| (ch, 4)),
                _ => None,
            };
            if let Some((ch, len)) = decoded {
                out.push(ch);
                i += len;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out.replace("\"\"", "\"")
}

/// Python 3.11 `datetime.fromisoformat` on the token shapes the grammar admits; None where it
/// raises. Naive results are taken as UTC.
fn iso_datetime(tok: &[char]) -> Option<DateTime<FixedOffset>> {
    let num = |part: &[char]| part.iter().try_fold(0u32, |acc, c| Some(acc * 10 + c.to_digit(10)?));
    let year = num(&tok[0..4])?;
    if year == 0 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, num(&tok[5..7])?, num(&tok[8..10])?)?;
    let rest = &tok[10..];
    let (time, shift) = match rest.first() {
        None => (&rest[..0], None),
        // fromisoformat takes ANY character at index 10 as the date/time separator, so a shift
        // right after the date (`2019-04-23+03`) is read as a naive 03:00, not as an offset.
        Some('+' | '-') => (&rest[1..], None),
        _ => {
            let t = &rest[1..];
            match t.iter().position(|&c| c == '+' || c == '-') {
                Some(p) => (&t[..p], Some((t[p], &t[p + 1..]))),
                None => (t, None),
            }
        }
    };
    // HH[:MM[:SS]], every part two digits
    let part = |k: usize| time.get(3 * k..3 * k + 2).map_or(Some(0), num);
    let time = NaiveTime::from_hms_opt(part(0)?, part(1)?, part(2)?)?;
    let offset_minutes = match shift {
        None => 0,
        Some((sign, hhmm)) => {
            // Python does not range-check the parts, only the total: +05:60 is +06:00.
            let hours = num(&hhmm[0..2])?;
            let minutes = hhmm.get(3..5).map_or(Some(0), num)?;
            let total = (hours * 60 + minutes) as i32;
            if total >= 24 * 60 {
                return None;
            }
            if sign == '-' { -total } else { total }
        }
    };
    let offset = FixedOffset::east_opt(offset_minutes * 60)?;
    date.and_time(time).and_local_timezone(offset).single()
}

/// Python's repr() of a found token, as pyparsing prints it (with `\\` collapsed back to `\`).
fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if in_ranges(c, NON_PRINTABLE) => {
                let code = c as u32;
                let escaped = match code {
                    0..=0xff => format!("\\x{code:02x}"),
                    0x100..=0xffff => format!("\\u{code:04x}"),
                    _ => format!("\\U{code:08x}"),
                };
                out.push_str(&escaped);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    find_range(c, ranges).is_some()
}

fn find_range(c: char, ranges: &[(u32, u32)]) -> Option<(u32, u32)> {
    let code = c as u32;
    let i = ranges.partition_point(|&(_, hi)| hi < code);
    ranges.get(i).copied().filter(|&(lo, _)| lo <= code)
}

/// Value of a Unicode decimal digit (category Nd, Unicode 14 as in Python 3.11). Every Nd run
/// is a sequence of whole 0..9 blocks.
fn decimal_value(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    let (start, _) = find_range(c, DECIMAL_DIGITS)?;
    Some(((c as u32 - start) % 10) as u8)
}

// The tables below were generated with Python 3.11 (Unicode 14.0) and pyparsing 3.3.3.

/// Unicode category Nd.
const DECIMAL_DIGITS: &[(u32, u32)] = &[
    (0x30, 0x39),
    (0x660, 0x669),
    (0x6f0, 0x6f9),
    (0x7c0, 0x7c9),
    (0x966, 0x96f),
    (0x9e6, 0x9ef),
    (0xa66, 0xa6f),
    (0xae6, 0xaef),
    (0xb66, 0xb6f),
    (0xbe6, 0xbef),
    (0xc66, 0xc6f),
    (0xce6, 0xcef),
    (0xd66, 0xd6f),
    (0xde6, 0xdef),
    (0xe50, 0xe59),
    (0xed0, 0xed9),
    (0xf20, 0xf29),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x17e0, 0x17e9),
    (0x1810, 0x1819),
    (0x1946, 0x194f),
    (0x19d0, 0x19d9),
    (0x1a80, 0x1a89),
    (0x1a90, 0x1a99),
    (0x1b50, 0x1b59),
    (0x1bb0, 0x1bb9),
    (0x1c40, 0x1c49),
    (0x1c50, 0x1c59),
    (0xa620, 0xa629),
    (0xa8d0, 0xa8d9),
    (0xa900, 0xa909),
    (0xa9d0, 0xa9d9),
    (0xa9f0, 0xa9f9),
    (0xaa50, 0xaa59),
    (0xabf0, 0xabf9),
    (0xff10, 0xff19),
    (0x104a0, 0x104a9),
    (0x10d30, 0x10d39),
    (0x11066, 0x1106f),
    (0x110f0, 0x110f9),
    (0x11136, 0x1113f),
    (0x111d0, 0x111d9),
    (0x112f0, 0x112f9),
    (0x11450, 0x11459),
    (0x114d0, 0x114d9),
    (0x11650, 0x11659),
    (0x116c0, 0x116c9),
    (0x11730, 0x11739),
    (0x118e0, 0x118e9),
    (0x11950, 0x11959),
    (0x11c50, 0x11c59),
    (0x11d50, 0x11d59),
    (0x11da0, 0x11da9),
    (0x16a60, 0x16a69),
    (0x16ac0, 0x16ac9),
    (0x16b50, 0x16b59),
    (0x1d7ce, 0x1d7ff),
    (0x1e140, 0x1e149),
    (0x1e2f0, 0x1e2f9),
    (0x1e950, 0x1e959),
    (0x1fbf0, 0x1fbf9),
];

/// The alphanumerics pyparsing gathers into the "found" word of an error message.
const EXCEPTION_WORD_CHARS: &[(u32, u32)] = &[
    (0x30, 0x39),
    (0x41, 0x5a),
    (0x61, 0x7a),
    (0xaa, 0xaa),
    (0xb2, 0xb3),
    (0xb5, 0xb5),
    (0xb9, 0xba),
    (0xc0, 0xd6),
    (0xd8, 0xf6),
    (0xf8, 0x24f),
    (0x370, 0x374),
    (0x376, 0x377),
    (0x37a, 0x37d),
    (0x37f, 0x37f),
    (0x386, 0x386),
    (0x388, 0x38a),
    (0x38c, 0x38c),
    (0x38e, 0x3a1),
    (0x3a3, 0x3e1),
    (0x3f0, 0x3f5),
    (0x3f7, 0x481),
    (0x48a, 0x52f),
    (0x1c80, 0x1c88),
    (0x1d26, 0x1d2b),
    (0x1d5e, 0x1d5e),
    (0x1d60, 0x1d60),
    (0x1d66, 0x1d6a),
    (0x1d78, 0x1d78),
    (0x1f00, 0x1f15),
    (0x1f18, 0x1f1d),
    (0x1f20, 0x1f45),
    (0x1f48, 0x1f4d),
    (0x1f50, 0x1f57),
    (0x1f59, 0x1f59),
    (0x1f5b, 0x1f5b),
    (0x1f5d, 0x1f5d),
    (0x1f5f, 0x1f7d),
    (0x1f80, 0x1fb4),
    (0x1fb6, 0x1fbc),
    (0x1fbe, 0x1fbe),
    (0x1fc2, 0x1fc4),
    (0x1fc6, 0x1fcc),
    (0x1fd0, 0x1fd3),
    (0x1fd6, 0x1fdb),
    (0x1fe0, 0x1fec),
    (0x1ff2, 0x1ff4),
    (0x1ff6, 0x1ffc),
    (0xa640, 0xa66e),
    (0xa67f, 0xa69d),
    (0xab65, 0xab65),
];

/// Chars Python's repr() escapes, less unassigned code points (too many ranges to be worth it).
const NON_PRINTABLE: &[(u32, u32)] = &[
    (0x0, 0x1f),
    (0x7f, 0xa0),
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xe000, 0xf8ff),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x13438),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn ok(q: &str) -> Vec<Field> {
        parse(q).unwrap_or_else(|e| panic!("{q:?} failed: {e}"))
    }

    fn one(q: &str) -> Value {
        let mut fields = ok(q);
        assert_eq!(fields.len(), 1, "{q:?}");
        fields.remove(0).value
    }

    fn field(key: &str, op: Op, value: Value) -> Field {
        let key = key.to_owned();
        Field { key, op, value }
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    /// (position, found) of a syntax error.
    fn err(q: &str) -> (usize, Option<String>) {
        match parse(q) {
            Err(ParseError::Syntax { position, found, .. }) => (position, found),
            other => panic!("{q:?} gave {other:?}"),
        }
    }

    fn err_at(q: &str, position: usize, found: &str) {
        assert_eq!(err(q), (position, Some(found.to_owned())), "{q:?}");
    }

    fn dt(q: &str) -> DateTimeValue {
        match one(q) {
            Value::DateTime(d) => d,
            other => panic!("{q:?} gave {other:?}"),
        }
    }

    /// RFC 3339 text and precision, which (unlike `==`) also checks the offset.
    fn dt_text(q: &str) -> (String, u8) {
        let d = dt(q);
        (d.datetime.to_rfc3339(), d.precision)
    }

    fn dt_err(q: &str) -> String {
        match parse(q) {
            Err(ParseError::DateTime { token }) => token,
            other => panic!("{q:?} gave {other:?}"),
        }
    }

    #[test]
    fn empty_and_separators() {
        assert!(ok("").is_empty());
        assert!(ok("   ").is_empty());
        assert!(ok("&").is_empty());
        assert_eq!(ok("&id=1"), vec![field("id", Op::Eq, Value::Int(1))]);
        assert_eq!(ok("id=1&"), vec![field("id", Op::Eq, Value::Int(1))]);
        assert_eq!(ok("&id=1&"), vec![field("id", Op::Eq, Value::Int(1))]);
        assert_eq!(ok("id=1 & ").len(), 1);
        err_at("id=1&&", 5, "&");
        err_at("&&", 1, "&");
        err_at("&&id=1", 1, "&");
        err_at("id=1&&id=2", 5, "&");
        err_at("id=1 &&", 6, "&");
    }

    #[test]
    fn every_operator() {
        let cases = [
            ("id=1", Op::Eq),
            ("id!=1", Op::Ne),
            ("id>1", Op::Gt),
            ("id>=1", Op::Ge),
            ("id<1", Op::Lt),
            ("id<=1", Op::Le),
            ("id=like=1", Op::Like),
            ("id=ilike=1", Op::ILike),
            ("id=in=1", Op::In),
            ("id=notin=1", Op::NotIn),
        ];
        for (q, op) in cases {
            assert_eq!(ok(q), vec![field("id", op, Value::Int(1))], "{q}");
            assert_eq!(q, format!("id{}1", op.as_str()));
        }
        // MatchFirst commits to `=like=` even though the value after it then fails, so the
        // whole field fails rather than being read as `x = like`.
        err_at("x=like=,", 0, "x");
        err_at("id=>1", 0, "id");
        err_at("id==1", 0, "id");
    }

    #[test]
    fn several_fields_in_order() {
        assert_eq!(
            ok("id>1&id<4&label=like=\"a%\""),
            vec![
                field("id", Op::Gt, Value::Int(1)),
                field("id", Op::Lt, Value::Int(4)),
                field("label", Op::Like, s("a%")),
            ]
        );
    }

    #[test]
    fn keys() {
        assert_eq!(ok("a-b_C9=1")[0].key, "a-b_C9");
        assert_eq!(ok("_x=1")[0].key, "_x");
        err_at("1abc=3", 0, "1abc");
        err_at("-a=1", 0, "-");
        err_at("attributes.x=1", 0, "attributes");
        err_at("a b=1", 0, "a");
    }

    #[test]
    fn underscore_key_is_dropped() {
        assert_eq!(
            ok("_=1234&id=1&__=2&_x=3"),
            vec![
                field("id", Op::Eq, Value::Int(1)),
                field("__", Op::Eq, Value::Int(2)),
                field("_x", Op::Eq, Value::Int(3)),
            ]
        );
        assert!(ok("_=1").is_empty());
    }

    #[test]
    fn numbers() {
        assert_eq!(one("x=1"), Value::Int(1));
        assert_eq!(one("x=+1"), Value::Int(1));
        assert_eq!(one("x=-1"), Value::Int(-1));
        assert_eq!(one("x=007"), Value::Int(7));
        assert_eq!(one("x=1."), Value::Float(1.0));
        assert_eq!(one("x=.5"), Value::Float(0.5));
        assert_eq!(one("x=-.5"), Value::Float(-0.5));
        assert_eq!(one("x=1e3"), Value::Float(1000.0));
        assert_eq!(one("x=1.e2"), Value::Float(100.0));
        assert_eq!(one("x=-1.5E-3"), Value::Float(-0.0015));
        assert_eq!(one("x=1e400"), Value::Float(f64::INFINITY));
        assert_eq!(one("x=9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(one("x=-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(one("x=9223372036854775808"), Value::Float(9_223_372_036_854_775_808.0));
        // Python's \d and int() accept any Unicode decimal digit
        assert_eq!(one("x=\u{663}\u{661}"), Value::Int(31));
        assert_eq!(one("x=\u{ff11}.5"), Value::Float(1.5));
        // a number needs no word end: the rest is junk
        err_at("x=1_000", 3, "_");
        err_at("id=1abc", 4, "abc");
        err_at("x=1e", 3, "e");
        err_at("x=1.5.3", 5, ".");
        err_at("x=1e5.3", 5, ".");
    }

    #[test]
    fn bools_and_words() {
        assert_eq!(one("x=true"), Value::Bool(true));
        assert_eq!(one("x=false"), Value::Bool(false));
        assert_eq!(one("x=True"), s("True"));
        assert_eq!(one("x=null"), s("null"));
        assert_eq!(one("x=abc"), s("abc"));
        assert_eq!(one("x=a-b"), s("a-b"));
        assert_eq!(one("orderby=-ctime"), s("-ctime"));
        assert_eq!(one("orderby=+id"), s("+id"));
        assert_eq!(one("x=-true"), s("-true"));
        // the bool literal has no word end, as in the reference
        err_at("x=trueish", 6, "ish");
        err_at("x=falsey", 7, "y");
        err_at("x=a/b", 3, "/");
        err_at("x=a.b", 3, ".");
        err_at("x=a?b", 3, "?");
        err_at("x=+ id", 0, "x");
        err_at("x=--a", 0, "x");
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(one(r#"x="abc""#), s("abc"));
        assert_eq!(one(r#"x="""#), s(""));
        assert_eq!(one(r#"x="a""b""#), s("a\"b"));
        assert_eq!(one(r#"x="""""""#), s("\"\""));
        assert_eq!(one(r#"x="a&b=c%d,e f""#), s("a&b=c%d,e f"));
        assert_eq!(one(r#"x="a\nb\tc\fd\re""#), s("a\nb\tc\u{c}d\re"));
        assert_eq!(one(r#"x="a\%b\\q""#), s(r"a\%b\\q"));
        assert_eq!(one(r#"x="\\n""#), s("\\\n"));
        assert_eq!(one(r#"x="true""#), s("true"));
        assert_eq!(one(r#"x="1""#), s("1"));
        assert_eq!(one(r#"filename="calcjob_inputs/aiida.in""#), s("calcjob_inputs/aiida.in"));
        assert_eq!(one("x=\"é'\""), s("é'"));
        // pyparsing expands tabs before parsing, even inside quotes
        assert_eq!(one("x=\"a\tb\""), s("a    b"));
        // the reference's (buggy) numeric escapes, see `unquote`
        assert_eq!(one(r#"x="\x42\x41""#), s(r"B\x41"));
        assert_eq!(one(r#"x="\03\0\83""#), s("03\0\\83"));
        assert_eq!(one(r#"x="\ua4\u00e9""#), s("\u{a4}\\u00e9"));
        assert_eq!(one(r#"x="\x22\x22""#), s("\""));
        // no raw newline inside quotes
        err_at("x=\"a\nb\"", 0, "x");
        err_at(r#"id="abc"#, 0, "id");
        // an unterminated string still closes at its last `""`, as the reference's regex does
        err_at(r#"x="a"""#, 5, "\"");
        err_at(r#"x="a""b""c"#, 8, "\"");
    }

    #[test]
    fn value_lists() {
        let list = |vs: Vec<Value>| Value::List(vs);
        assert_eq!(ok("orderby=label,-ctime"), vec![field("orderby", Op::Eq, list(vec![s("label"), s("-ctime")]))]);
        assert_eq!(one("a=1,2,"), list(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(
            ok("id=in=1,2.5,\"x,y\",true"),
            vec![field("id", Op::In, list(vec![Value::Int(1), Value::Float(2.5), s("x,y"), Value::Bool(true)]))]
        );
        assert_eq!(ok("id=notin=a,b")[0].op, Op::NotIn);
        err_at("id>1,2", 4, ",");
    }

    #[test]
    fn value_list_errors() {
        err_at("orderby=label,", 13, ",");
        err_at("id=in=1,", 7, ",");
        err_at("a=1,2,,", 6, ",");
        err_at("a=,1", 0, "a");
    }

    #[test]
    fn whitespace_between_tokens() {
        assert_eq!(ok(" id = 1 "), vec![field("id", Op::Eq, Value::Int(1))]);
        assert_eq!(
            ok("a = 1 , 2 ,\t&\n b\r<\t\"x\" "),
            vec![field("a", Op::Eq, Value::List(vec![Value::Int(1), Value::Int(2)])), field("b", Op::Lt, s("x")),]
        );
        err_at("foo bar", 0, "foo");
        err_at("id=1   x", 7, "x");
        // no whitespace inside a signed word or a datetime
        err_at("orderby=- ctime", 0, "orderby");
        err_at("x=- 1", 0, "x");
        err_at("x=2019-01-01 T05", 13, "T05");
    }

    #[test]
    fn datetime_precisions_and_offsets() {
        let cases = [
            ("ctime=2019-04-23", "2019-04-23T00:00:00+00:00", 1),
            ("ctime=2019-04-23T05", "2019-04-23T05:00:00+00:00", 2),
            ("ctime=2019-04-23T05:45", "2019-04-23T05:45:00+00:00", 3),
            ("ctime=2019-04-23T05:45:30", "2019-04-23T05:45:30+00:00", 4),
            ("ctime=2019-04-23T05+03:00", "2019-04-23T05:00:00+03:00", 3),
            ("ctime=2019-04-23T05:45+03:45", "2019-04-23T05:45:00+03:45", 4),
            ("ctime=2019-04-23T05:45:30+03", "2019-04-23T05:45:30+03:00", 4),
            ("ctime=2019-04-23T05:45:30-02", "2019-04-23T05:45:30-02:00", 4),
            ("ctime=2019-04-23T05:45:30+03:00", "2019-04-23T05:45:30+03:00", 5),
            ("ctime=2019-04-23T05-00:00", "2019-04-23T05:00:00+00:00", 3),
            ("ctime=2019-04-23T05-23:59", "2019-04-23T05:00:00-23:59", 3),
            // Python only checks the total offset
            ("ctime=2019-04-23T05+05:60", "2019-04-23T05:00:00+06:00", 3),
            // DATE+HH is read as date, separator, hour (naive)
            ("ctime=2019-04-23+03", "2019-04-23T03:00:00+00:00", 1),
            ("ctime=2019-04-23-03:30", "2019-04-23T03:30:00+00:00", 2),
            ("ctime=2020-02-29", "2020-02-29T00:00:00+00:00", 1),
            ("ctime=0001-01-01T00-05", "0001-01-01T00:00:00-05:00", 2),
        ];
        for (q, text, precision) in cases {
            assert_eq!(dt_text(q), (text.to_owned(), precision), "{q}");
        }
        let d = dt("ctime>=2019-04-23T05:45+03:45");
        let offset = FixedOffset::east_opt(3 * 3600 + 45 * 60).unwrap();
        let expected = offset.with_ymd_and_hms(2019, 4, 23, 5, 45, 0).unwrap();
        assert_eq!(d.datetime, expected);
        assert_eq!(d.datetime.offset(), &offset);
    }

    #[test]
    fn datetime_word_end() {
        assert_eq!(ok("ctime=2019-04-23&id=1").len(), 2);
        assert_eq!(ok("ctime=2019-04-23 &id=1").len(), 2);
        // a datetime is followed by a printable: not a datetime, so the number 2019 and junk
        err_at("ctime>2000-01-01T10:11:12.5", 10, "-");
        err_at("ctime>2019-04-23T05:45:30Z", 10, "-");
        err_at("ctime=2019-04-23T05:4", 10, "-");
        err_at("ctime=in=2019-01-01,2019-01-02", 13, "-");
        // ... but the last element of a list may be one
        let list = one("ctime=in=1,2019-01-01");
        let Value::List(items) = list else { panic!("{list:?}") };
        assert!(matches!(items[1], Value::DateTime(_)));
        // a non-ASCII char is no printable: the datetime matches, then the char is junk
        err_at("x=2019-01-01é", 12, "é");
    }

    #[test]
    fn datetime_errors() {
        assert_eq!(dt_err("ctime=2019-13-01"), "2019-13-01");
        assert_eq!(dt_err("ctime=2019-02-29"), "2019-02-29");
        assert_eq!(dt_err("ctime=2019-01-00"), "2019-01-00");
        assert_eq!(dt_err("ctime=0000-01-01"), "0000-01-01");
        assert_eq!(dt_err("ctime=2019-01-01T24"), "2019-01-01T24");
        assert_eq!(dt_err("ctime=2019-01-01T23:60"), "2019-01-01T23:60");
        assert_eq!(dt_err("ctime=2019-01-01T00:00:60"), "2019-01-01T00:00:60");
        assert_eq!(dt_err("ctime=2019-01-01T05+24:00"), "2019-01-01T05+24:00");
        assert_eq!(dt_err("ctime=2019-01-01T05+23:60"), "2019-01-01T05+23:60");
        assert_eq!(dt_err("ctime=2019-01-01+24"), "2019-01-01+24");
        // raised as soon as the token is seen, even if the query would fail later
        assert_eq!(dt_err("x=2019-13-01&foo bar"), "2019-13-01");
        assert_eq!(dt_err("x=in=2019-13-01"), "2019-13-01");
        assert_eq!(err("foo bar&x=2019-13-01").0, 0);
    }

    #[test]
    fn error_messages() {
        let e = parse("id=1&&").unwrap_err();
        assert_eq!(
            e.to_string(),
            "The query string format is invalid: expected end of text, found '&' at position 5 (column 6)"
        );
        assert_eq!(
            e.pyparsing_message("id=1&&").unwrap(),
            "Expected end of text, found '&'  (at char 5), (line:1, col:6)"
        );
        let e = ParseError::Syntax { position: 3, found: None, expected: "end of text".into() };
        assert_eq!(
            e.to_string(),
            "The query string format is invalid: expected end of text, found end of input at position 3 (column 4)"
        );
        let e = parse("x=2019-13-01").unwrap_err();
        assert_eq!(
            e.to_string(),
            "time value has wrong format. The right format is <date>T<time><offset>, where <date> is expressed as [YYYY]-[MM]-[DD], <time> is expressed as [HH]:[MM]:[SS], <offset> is expressed as +/-[HH]:[MM] given with respect to UTC"
        );
        assert_eq!(e.pyparsing_message("x=2019-13-01"), None);
    }

    #[test]
    fn pyparsing_found_tokens() {
        let msg = |q: &str| parse(q).unwrap_err().pyparsing_message(q).unwrap();
        assert_eq!(msg("id=1\n\tfoo"), "Expected end of text, found 'foo'  (at char 13), (line:2, col:9)");
        assert_eq!(
            msg("abcdefghijklmnopqrst"),
            "Expected end of text, found 'abcdefghijklmnop'  (at char 0), (line:1, col:1)"
        );
        assert!(msg("x=1'").contains(r#"found "'"  (at char 3)"#));
        assert!(msg("x=1\\").contains(r"found '\'  (at"));
        assert!(msg("x=1\u{1}").contains(r"found '\x01'  (at"));
        assert!(msg("x=1\u{200b}").contains(r"found '\u200b'  (at"));
        assert!(msg("x=1αβγ").contains("found 'αβγ'  (at"));
        assert!(msg("x=1€").contains("found '€'  (at"));
    }

    // ---- property tests -------------------------------------------------------------------

    /// A value plus the text that should parse back to it.
    #[derive(Debug, Clone)]
    struct Rendered {
        value: Value,
        text: String,
    }

    fn quoted(v: &str) -> String {
        let body = v.replace('"', "\"\"").replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t");
        format!("\"{body}\"")
    }

    fn is_word(v: &str) -> bool {
        let bare = v.strip_prefix(['+', '-']).unwrap_or(v);
        let mut chars = bare.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !bare.starts_with("true")
            && !bare.starts_with("false")
    }

    fn string_value() -> impl Strategy<Value = Rendered> {
        // Backslashes are left out: the grammar has no way to write one before `n`, `x`, ...
        let text = prop_oneof!["[^\\\\]{0,12}", "[a-z\"&%,= \n\t]{0,12}", "[+-]?[A-Za-z_][A-Za-z0-9_-]{0,8}",];
        (text, any::<bool>()).prop_map(|(v, bare)| {
            let text = if bare && is_word(&v) { v.clone() } else { quoted(&v) };
            Rendered { value: Value::Str(v), text }
        })
    }

    fn datetime_value() -> impl Strategy<Value = Rendered> {
        let date = (1i32..=9999, 1u32..=12, 1u32..=28);
        let time = (0usize..4, 0u32..24, 0u32..60, 0u32..60);
        // 0: none, 1: ±HH, 2: ±HH:MM
        let shift = (0usize..3, any::<bool>(), 0u32..24, 0u32..60);
        (date, time, shift, any::<bool>()).prop_map(
            |((y, mo, d), (parts, h, mi, sec), (shift_kind, neg, sh, sm), quirk)| {
                let mut text = format!("{y:04}-{mo:02}-{d:02}");
                let (mut h, mut mi, mut sec) = (h, mi, sec);
                let sign = if neg { '-' } else { '+' };
                let mut offset_minutes = 0;
                if quirk && shift_kind > 0 {
                    // DATE±HH[:MM] is a naive time
                    text.push_str(&format!("{sign}{sh:02}"));
                    (h, mi, sec) = (sh, 0, 0);
                    if shift_kind == 2 {
                        text.push_str(&format!(":{sm:02}"));
                        mi = sm;
                    }
                } else {
                    if parts == 0 {
                        (h, mi, sec) = (0, 0, 0);
                    } else {
                        text.push_str(&format!("T{h:02}"));
                        if parts >= 2 {
                            text.push_str(&format!(":{mi:02}"));
                        } else {
                            mi = 0;
                        }
                        if parts == 3 {
                            text.push_str(&format!(":{sec:02}"));
                        } else {
                            sec = 0;
                        }
                    }
                    // (a shift without a time would be the quirk above)
                    if shift_kind > 0 && parts > 0 {
                        text.push_str(&format!("{sign}{sh:02}"));
                        offset_minutes = sh as i32 * 60;
                        if shift_kind == 2 {
                            text.push_str(&format!(":{sm:02}"));
                            offset_minutes += sm as i32;
                        }
                        if neg {
                            offset_minutes = -offset_minutes;
                        }
                    }
                }
                let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
                let datetime = offset.with_ymd_and_hms(y, mo, d, h, mi, sec).unwrap();
                let precision = 1 + text.matches(['T', ':']).count() as u8;
                Rendered { value: Value::DateTime(DateTimeValue { datetime, precision }), text }
            },
        )
    }

    /// Scalars that may sit in a list (a datetime cannot be followed by `,`).
    fn list_scalar() -> impl Strategy<Value = Rendered> {
        prop_oneof![
            string_value(),
            any::<i64>().prop_map(|n| Rendered { value: Value::Int(n), text: n.to_string() }),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Rendered { value: Value::Float(f), text: format!("{f:?}") }),
            any::<bool>().prop_map(|b| Rendered { value: Value::Bool(b), text: b.to_string() }),
        ]
    }

    fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n"), 1 => Just("\t"), 1 => Just(" \r ")]
    }

    const ALL_OPS: [Op; 10] = OPERATORS;

    fn rendered_field() -> impl Strategy<Value = (Field, String)> {
        let key = "[A-Za-z_][A-Za-z0-9_-]{0,8}";
        let scalar = prop_oneof![3 => list_scalar(), 1 => datetime_value()];
        let single = (proptest::sample::select(ALL_OPS.to_vec()), scalar).prop_map(|(op, r)| (op, r.value, r.text));
        let list = (
            proptest::sample::select(vec![Op::Eq, Op::In, Op::NotIn]),
            proptest::collection::vec((list_scalar(), ws(), ws()), 2..5),
            any::<bool>(),
        )
            .prop_map(|(op, items, trailing)| {
                let text = items
                    .iter()
                    .map(|(r, before, after)| format!("{before}{}{after}", r.text))
                    .collect::<Vec<_>>()
                    .join(",");
                let text = if trailing { text + "," } else { text };
                let values = items.into_iter().map(|(r, _, _)| r.value).collect();
                (op, Value::List(values), text)
            });
        (key, prop_oneof![single, list], ws(), ws(), ws()).prop_map(|(key, (op, value, text), w1, w2, w3)| {
            let rendered = format!("{w1}{key}{w2}{}{w3}{text}", op.as_str());
            (Field { key, op, value }, rendered)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn rendered_fields_round_trip(
            fields in proptest::collection::vec(rendered_field(), 0..5),
            leading in any::<bool>(),
            trailing in any::<bool>(),
            sep_ws in ws(),
        ) {
            let mut query = fields
                .iter()
                .map(|(_, text)| text.as_str())
                .collect::<Vec<_>>()
                .join(&format!("{sep_ws}&{sep_ws}"));
            if leading {
                query.insert(0, '&');
            }
            if trailing && !(leading && fields.is_empty()) {
                query.push('&');
            }
            let expected: Vec<Field> =
                fields.into_iter().map(|(f, _)| f).filter(|f| f.key != "_").collect();
            let parsed = parse(&query);
            // Debug output also covers datetime offsets and the sign of zero
            prop_assert_eq!(format!("{parsed:?}"), format!("{:?}", Ok::<_, ParseError>(expected)), "query {:?}", query);
        }

        #[test]
        fn arbitrary_input_never_panics(q in any::<String>()) {
            check_no_panic(&q);
        }

        #[test]
        fn grammar_like_input_never_panics(q in "[a-zT_0-9+\\-=!<>&,.:\"\\\\ \t\n\ré١]{0,40}") {
            check_no_panic(&q);
        }
    }

    fn check_no_panic(q: &str) {
        if let Err(e) = parse(q) {
            let _ = e.to_string();
            let msg = e.pyparsing_message(q);
            if let ParseError::Syntax { position, found, .. } = e {
                assert!(found.is_some());
                assert!(position < expand_tabs(q).len());
                assert!(msg.is_some());
            }
        }
    }
}
