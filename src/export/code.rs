//! Codes (`InstalledCode`, `PortableCode`, `ContainerizedCode`, legacy `Code`): the `yaml`/`yml`
//! download (`AbstractCode._prepare_yaml`, the `verdi code create` configuration) and the
//! description (`full_label`).

use serde_json::Value;

use super::{Export, ExportError, NodeInfo};
use crate::model::node_class::{CodeClass, NodeClass};

pub fn export(node: &NodeInfo, format: &str) -> Result<Export, ExportError> {
    match format {
        "yaml" | "yml" => Ok(Export { content: yaml(node)?.into_bytes(), filename: None }),
        _ => Err(ExportError::Unsupported(format.to_string())),
    }
}

/// `full_label`: `label@computer` for installed (and containerized) codes, the bare label for
/// portable ones, `label@repository` for a legacy code without computer.
pub fn description(node: &NodeInfo) -> String {
    let computer = node.computer_label.as_deref();
    match NodeClass::code_class(&node.node_type) {
        Some(CodeClass::Portable) => node.label.clone(),
        Some(CodeClass::Legacy) => format!("{}@{}", node.label, computer.unwrap_or("repository")),
        _ => format!("{}@{}", node.label, computer.unwrap_or("")),
    }
}

enum Scalar {
    Str(String),
    Bool(bool),
}

/// The CLI model of the code class, in field order, `None` values left out; the default
/// calculation plugin moves to the end (the reference pops it under its alias and re-adds it).
fn yaml(node: &NodeInfo) -> Result<String, ExportError> {
    let attrs = &node.attributes;
    let text = |key: &str| Scalar::Str(attrs.get(key).map(py_str).unwrap_or_default());
    let flag = |key: &str| match attrs.get(key) {
        Some(Value::Bool(b)) => Scalar::Bool(*b),
        Some(Value::Null) | None => Scalar::Bool(false),
        Some(other) => Scalar::Str(py_str(other)),
    };
    let mut fields: Vec<(&str, Scalar)> = vec![
        ("label", Scalar::Str(node.label.clone())),
        ("description", Scalar::Str(node.description.clone())),
        ("use_double_quotes", flag("use_double_quotes")),
    ];
    match attrs.get("with_mpi") {
        Some(Value::Bool(b)) => fields.push(("with_mpi", Scalar::Bool(*b))),
        Some(Value::Null) | None => {}
        Some(other) => fields.push(("with_mpi", Scalar::Str(py_str(other)))),
    }
    fields.push(("wrap_cmdline_params", flag("wrap_cmdline_params")));
    fields.push(("prepend_text", text("prepend_text")));
    fields.push(("append_text", text("append_text")));

    let executable =
        || Scalar::Str(pure_posix_path(attrs.get("filepath_executable").and_then(Value::as_str).unwrap_or("")));
    let computer = || {
        node.computer_label
            .clone()
            .map(Scalar::Str)
            .ok_or_else(|| ExportError::Invalid("'NoneType' object has no attribute 'label'".into()))
    };
    match NodeClass::code_class(&node.node_type) {
        Some(CodeClass::Installed) => {
            fields.push(("filepath_executable", executable()));
            fields.push(("computer", computer()?));
        }
        Some(CodeClass::Containerized) => {
            fields.push(("filepath_executable", executable()));
            fields.push(("computer", computer()?));
            fields.push(("engine_command", text("engine_command")));
            fields.push(("image_name", text("image_name")));
        }
        Some(CodeClass::Portable) => {
            fields.push(("filepath_executable", executable()));
            // The reference dumps the code's files into `<cwd>/<label>` and names that
            // directory; this server only names it.
            let cwd = std::env::current_dir().map_err(|e| ExportError::Invalid(e.to_string()))?;
            fields.push(("filepath_files", Scalar::Str(cwd.join(&node.label).to_string_lossy().into_owned())));
        }
        _ => {}
    }
    match attrs.get("input_plugin") {
        None | Some(Value::Null) => {}
        Some(plugin) => fields.push(("default_calc_job_plugin", Scalar::Str(py_str(plugin)))),
    }

    let mut out = YamlWriter::default();
    for (key, value) in &fields {
        out.mapping_entry(key, value);
    }
    Ok(out.finish())
}

/// Python's `str()` of a stored scalar.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => crate::model::pyjson::python_float_repr(n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

/// `str(pathlib.PurePosixPath(p))`: repeated and trailing slashes and `.` parts dropped, a
/// leading `//` kept.
fn pure_posix_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let root = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    let joined = parts.join("/");
    if joined.is_empty() && root.is_empty() { ".".into() } else { format!("{root}{joined}") }
}

// --- A PyYAML emitter for one block mapping of scalars (default settings: width 80, indent 2,
// --- no unicode). Strings are plain when possible, else single- or double-quoted, with
// --- PyYAML's line folding.

const BEST_WIDTH: usize = 80;
const VALUE_INDENT: usize = 2;

#[derive(Default)]
struct YamlWriter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    started: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_break(c: char) -> bool {
    matches!(c, '\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

impl YamlWriter {
    fn finish(mut self) -> String {
        if self.started {
            self.line_break();
        }
        self.out
    }

    fn write(&mut self, s: &str) {
        self.column += s.chars().count();
        self.out.push_str(s);
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    fn indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    fn indicator(&mut self, indicator: &str, need_whitespace: bool) {
        if self.whitespace || !need_whitespace {
            self.write(indicator);
        } else {
            self.write(&format!(" {indicator}"));
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn mapping_entry(&mut self, key: &str, value: &Scalar) {
        if self.started {
            self.indent(0);
        } else {
            // Stream start: at column 0, "after whitespace".
            self.whitespace = true;
            self.indention = true;
            self.started = true;
        }
        self.plain(key, false, 0);
        self.indicator(":", false);
        match value {
            Scalar::Bool(b) => self.plain(if *b { "true" } else { "false" }, true, VALUE_INDENT),
            Scalar::Str(s) => match choose_style(s) {
                Style::Plain => self.plain(s, true, VALUE_INDENT),
                Style::Single => self.single_quoted(s, VALUE_INDENT),
                Style::Double => self.double_quoted(s, VALUE_INDENT),
            },
        }
    }

    fn plain(&mut self, text: &str, split: bool, indent: usize) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.indent(indent);
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.write(&chars[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.breaks(&chars[start..end]);
                    self.indent(indent);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                self.write(&chars[start..end].iter().collect::<String>());
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    /// Line breaks inside a quoted or plain scalar: a leading `\n` is doubled (a single break
    /// would fold into a space when read back).
    fn breaks(&mut self, run: &[char]) {
        if run.first() == Some(&'\n') {
            self.line_break();
        }
        for &br in run {
            if br == '\n' {
                self.line_break();
            } else {
                self.out.push(br);
                self.whitespace = true;
                self.indention = true;
                self.column = 0;
            }
        }
    }

    fn single_quoted(&mut self, text: &str, indent: usize) {
        self.indicator("'", true);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && start != 0 && end != chars.len() {
                        self.indent(indent);
                    } else {
                        self.write(&chars[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.breaks(&chars[start..end]);
                    self.indent(indent);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                self.write(&chars[start..end].iter().collect::<String>());
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.indicator("'", false);
    }

    fn double_quoted(&mut self, text: &str, indent: usize) {
        self.indicator("\"", true);
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            let needs_escape = ch.is_none_or(|c| {
                matches!(c, '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}') || !(' '..='~').contains(&c)
            });
            if needs_escape {
                if start < end {
                    self.write(&chars[start..end].iter().collect::<String>());
                    start = end;
                }
                if let Some(c) = ch {
                    let escaped = match c {
                        '\0' => "\\0".to_string(),
                        '\u{07}' => "\\a".into(),
                        '\u{08}' => "\\b".into(),
                        '\t' => "\\t".into(),
                        '\n' => "\\n".into(),
                        '\u{0b}' => "\\v".into(),
                        '\u{0c}' => "\\f".into(),
                        '\r' => "\\r".into(),
                        '\u{1b}' => "\\e".into(),
                        '"' => "\\\"".into(),
                        '\\' => "\\\\".into(),
                        '\u{85}' => "\\N".into(),
                        '\u{a0}' => "\\_".into(),
                        '\u{2028}' => "\\L".into(),
                        '\u{2029}' => "\\P".into(),
                        c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                        c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                        c => format!("\\U{:08X}", c as u32),
                    };
                    self.write(&escaped);
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < chars.len()
                && (ch == Some(' ') || start >= end)
                && self.column + end.saturating_sub(start) > BEST_WIDTH
            {
                let mut data: String = chars[start.min(end)..end].iter().collect();
                data.push('\\');
                if start < end {
                    start = end;
                }
                self.write(&data);
                self.indent(indent);
                self.whitespace = false;
                self.indention = false;
                if chars.get(start) == Some(&' ') {
                    self.write("\\");
                }
            }
            end += 1;
        }
        self.indicator("\"", false);
    }
}

enum Style {
    Plain,
    Single,
    Double,
}

/// PyYAML's `choose_scalar_style` for a block-mapping value of type `str`.
fn choose_style(s: &str) -> Style {
    let a = analyze(s);
    if !resolves_to_other_type(s) && a.allow_block_plain {
        Style::Plain
    } else if a.allow_single_quoted {
        Style::Single
    } else {
        Style::Double
    }
}

struct Analysis {
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

/// PyYAML's `analyze_scalar`, reduced to what a block-mapping value needs.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis { allow_block_plain: true, allow_single_quoted: true };
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = n == 1 || is_blank_or_break(chars[1]);
    let (mut previous_space, mut previous_break) = (false, false);
    for (index, &ch) in chars.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_indicators = true;
            }
            if (ch == '?' || ch == ':' || ch == '-') && followed_by_whitespace {
                block_indicators = true;
            }
        } else if (ch == ':' && followed_by_whitespace) || (ch == '#' && preceded_by_whitespace) {
            block_indicators = true;
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            // Without `allow_unicode` every other character needs escaping.
            special = true;
        }
        if ch == ' ' {
            leading_space |= index == 0;
            trailing_space |= index == n - 1;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(ch) {
            leading_break |= index == 0;
            trailing_break |= index == n - 1;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank_or_break(ch);
        followed_by_whitespace = index + 2 >= n || is_blank_or_break(chars[index + 2]);
    }
    let mut plain = !(leading_space || leading_break || trailing_space || trailing_break);
    let mut single = true;
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special {
        plain = false;
        single = false;
    }
    if line_breaks || block_indicators {
        plain = false;
    }
    Analysis { allow_block_plain: plain, allow_single_quoted: single }
}

/// Whether PyYAML's implicit resolvers (YAML 1.1: bool, int, float, null, timestamp, merge,
/// value) would read the plain scalar back as something other than a string.
fn resolves_to_other_type(s: &str) -> bool {
    // Python's `$` also matches before one trailing newline.
    let t = s.strip_suffix('\n').unwrap_or(s);
    is_yaml_bool(t)
        || is_yaml_null(t)
        || is_yaml_int(t)
        || is_yaml_float(t)
        || is_yaml_timestamp(t)
        || t == "<<"
        || t == "="
}

fn is_yaml_bool(s: &str) -> bool {
    matches!(
        s,
        "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn is_yaml_null(s: &str) -> bool {
    matches!(s, "~" | "null" | "Null" | "NULL" | "")
}

/// A tiny cursor for the hand-written versions of PyYAML's resolver regexes.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn eat(&mut self, pred: impl Fn(u8) -> bool) -> bool {
        if self.i < self.b.len() && pred(self.b[self.i]) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_many(&mut self, pred: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.eat(&pred) {}
        self.i - start
    }
    fn sign(&mut self) {
        self.eat(|c| c == b'+' || c == b'-');
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

fn digit(c: u8) -> bool {
    c.is_ascii_digit()
}
fn digit_(c: u8) -> bool {
    c.is_ascii_digit() || c == b'_'
}

/// `(?::[0-5]?[0-9])+` (sexagesimal groups), at least one.
fn sexagesimal(c: &mut Cur) -> bool {
    let mut groups = 0;
    loop {
        let save = c.i;
        if !c.eat(|x| x == b':') {
            break;
        }
        let n = c.eat_many(digit);
        let ok = match n {
            1 => true,
            2 => c.b[c.i - 2] <= b'5',
            _ => false,
        };
        if !ok {
            c.i = save;
            break;
        }
        groups += 1;
    }
    groups > 0
}

fn is_yaml_int(s: &str) -> bool {
    let b = s.as_bytes();
    let alternatives: [&dyn Fn(&mut Cur) -> bool; 5] = [
        &|c| {
            c.sign();
            c.eat(|x| x == b'0') && c.eat(|x| x == b'b') && c.eat_many(|x| x == b'0' || x == b'1' || x == b'_') > 0
        },
        &|c| {
            c.sign();
            c.eat(|x| x == b'0') && c.eat_many(|x| (b'0'..=b'7').contains(&x) || x == b'_') > 0
        },
        &|c| {
            c.sign();
            if c.eat(|x| x == b'0') {
                return true;
            }
            c.eat(|x| (b'1'..=b'9').contains(&x)) && {
                c.eat_many(digit_);
                true
            }
        },
        &|c| {
            c.sign();
            c.eat(|x| x == b'0') && c.eat(|x| x == b'x') && c.eat_many(|x| x.is_ascii_hexdigit() || x == b'_') > 0
        },
        &|c| {
            c.sign();
            c.eat(|x| (b'1'..=b'9').contains(&x)) && {
                c.eat_many(digit_);
                sexagesimal(c)
            }
        },
    ];
    alternatives.iter().any(|alt| {
        let mut c = Cur { b, i: 0 };
        alt(&mut c) && c.done()
    })
}

fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let exponent = |c: &mut Cur| {
        let save = c.i;
        if c.eat(|x| x == b'e' || x == b'E') && c.eat(|x| x == b'+' || x == b'-') && c.eat_many(digit) > 0 {
            return;
        }
        c.i = save;
    };
    let alternatives: [&dyn Fn(&mut Cur) -> bool; 5] = [
        &|c| {
            c.sign();
            if !c.eat(digit) {
                return false;
            }
            c.eat_many(digit_);
            if !c.eat(|x| x == b'.') {
                return false;
            }
            c.eat_many(digit_);
            exponent(c);
            true
        },
        &|c| {
            if !(c.eat(|x| x == b'.') && c.eat(digit)) {
                return false;
            }
            c.eat_many(digit_);
            exponent(c);
            true
        },
        &|c| {
            c.sign();
            if !c.eat(digit) {
                return false;
            }
            c.eat_many(digit_);
            if !sexagesimal(c) || !c.eat(|x| x == b'.') {
                return false;
            }
            c.eat_many(digit_);
            true
        },
        &|c| {
            c.sign();
            c.eat(|x| x == b'.')
                && ["inf", "Inf", "INF"].iter().any(|w| {
                    c.b[c.i..] == *w.as_bytes() && {
                        c.i = c.b.len();
                        true
                    }
                })
        },
        &|c| {
            c.eat(|x| x == b'.')
                && ["nan", "NaN", "NAN"].iter().any(|w| {
                    c.b[c.i..] == *w.as_bytes() && {
                        c.i = c.b.len();
                        true
                    }
                })
        },
    ];
    alternatives.iter().any(|alt| {
        let mut c = Cur { b, i: 0 };
        alt(&mut c) && c.done()
    })
}

fn is_yaml_timestamp(s: &str) -> bool {
    let mut c = Cur { b: s.as_bytes(), i: 0 };
    let n4 = (0..4).all(|_| c.eat(digit));
    if !n4 || !c.eat(|x| x == b'-') {
        return false;
    }
    // Date only: YYYY-MM-DD.
    {
        let mut d = Cur { b: c.b, i: c.i };
        if d.eat(digit) && d.eat(digit) && d.eat(|x| x == b'-') && d.eat(digit) && d.eat(digit) && d.done() {
            return true;
        }
    }
    let one_or_two = |c: &mut Cur| {
        c.eat(digit) && {
            c.eat(digit);
            true
        }
    };
    if !(one_or_two(&mut c) && c.eat(|x| x == b'-') && one_or_two(&mut c)) {
        return false;
    }
    if !(c.eat(|x| x == b'T' || x == b't') || c.eat_many(|x| x == b' ' || x == b'\t') > 0) {
        return false;
    }
    if !(one_or_two(&mut c)
        && c.eat(|x| x == b':')
        && c.eat(digit)
        && c.eat(digit)
        && c.eat(|x| x == b':')
        && c.eat(digit)
        && c.eat(digit))
    {
        return false;
    }
    if c.eat(|x| x == b'.') {
        c.eat_many(digit);
    }
    if c.done() {
        return true;
    }
    c.eat_many(|x| x == b' ' || x == b'\t');
    if c.eat(|x| x == b'Z') {
        return c.done();
    }
    if !(c.eat(|x| x == b'+' || x == b'-') && one_or_two(&mut c)) {
        return false;
    }
    if c.eat(|x| x == b':') && !(c.eat(digit) && c.eat(digit)) {
        return false;
    }
    c.done()
}

#[cfg(test)]
mod tests {
    use super::super::array::testutil::load;
    use super::*;

    fn with_computer(uuid: &str, computer: Option<&str>) -> NodeInfo {
        let (mut node, _) = load(uuid);
        node.computer_label = computer.map(str::to_string);
        node
    }

    fn yaml_of(node: &NodeInfo) -> String {
        String::from_utf8(export(node, "yaml").unwrap().content).unwrap()
    }

    #[test]
    fn installed_codes_match_reference() {
        // Answers of the reference (`download?download_format=yaml`, identical for `yml`).
        let pw = with_computer("35ecb657-b171-4140-9d1d-c48d18983e88", Some("ref-daint-like"));
        assert_eq!(
            yaml_of(&pw),
            "label: pw-7.2\ndescription: Quantum ESPRESSO pw.x 7.2\nuse_double_quotes: false\nwith_mpi: true\nwrap_cmdline_params: false\nprepend_text: module load QuantumESPRESSO/7.2-CrayGNU\nappend_text: rm -rf out/*.wfc*\nfilepath_executable: /apps/qe/7.2/bin/pw.x\ncomputer: ref-daint-like\ndefault_calc_job_plugin: quantumespresso.pw\n"
        );
        assert_eq!(export(&pw, "yml").unwrap().content, export(&pw, "yaml").unwrap().content);
        let bash = with_computer("45abcd9f-342a-4102-8da2-0d9dfc222d4f", Some("localhost"));
        assert_eq!(
            yaml_of(&bash),
            "label: bash\ndescription: Bash shell used by core.arithmetic.add\nuse_double_quotes: false\nwrap_cmdline_params: false\nprepend_text: ''\nappend_text: ''\nfilepath_executable: /bin/bash\ncomputer: localhost\ndefault_calc_job_plugin: core.arithmetic.add\n"
        );
        assert_eq!(description(&pw), "pw-7.2@ref-daint-like");
    }

    #[test]
    fn legacy_and_portable_codes() {
        let legacy = with_computer("4647c615-b9c7-496c-b5ce-d363f816e6f3", None);
        assert_eq!(
            yaml_of(&legacy),
            "label: legacy-python\ndescription: Code created with the deprecated orm.Code class\nuse_double_quotes: false\nwrap_cmdline_params: false\nprepend_text: ''\nappend_text: ''\ndefault_calc_job_plugin: core.templatereplacer\n"
        );
        assert_eq!(description(&legacy), "legacy-python@repository");
        let portable = with_computer("dccf1d3f-5416-4802-96bc-1d0811e2a251", None);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            yaml_of(&portable),
            format!(
                "label: portable-add\ndescription: Portable code shipping its own scripts\nuse_double_quotes: false\nwrap_cmdline_params: false\nprepend_text: ''\nappend_text: ''\nfilepath_executable: add.sh\nfilepath_files: {}/portable-add\ndefault_calc_job_plugin: core.arithmetic.add\n",
                cwd.display()
            )
        );
        assert_eq!(description(&portable), "portable-add");
    }

    /// Strings whose `yaml.dump({'k': s})` PyYAML 6 output was recorded in the reference venv.
    #[test]
    fn scalar_styles_match_pyyaml() {
        let cases: &[(&str, &str)] = &[
            ("", "k: ''\n"),
            ("true", "k: 'true'\n"),
            ("1.5", "k: '1.5'\n"),
            ("012", "k: '012'\n"),
            ("1_000", "k: '1_000'\n"),
            ("0x1F", "k: '0x1F'\n"),
            ("1:30", "k: '1:30'\n"),
            ("2024-01-01", "k: '2024-01-01'\n"),
            ("2001-12-14t21:59:43.10-05:00", "k: '2001-12-14t21:59:43.10-05:00'\n"),
            (".inf", "k: '.inf'\n"),
            ("~", "k: '~'\n"),
            ("1e5", "k: 1e5\n"),
            ("1.0e+5", "k: '1.0e+5'\n"),
            ("a: b", "k: 'a: b'\n"),
            ("a:b", "k: a:b\n"),
            ("a #b", "k: 'a #b'\n"),
            ("a#b", "k: a#b\n"),
            ("- x", "k: '- x'\n"),
            ("-x", "k: -x\n"),
            ("@x", "k: '@x'\n"),
            (" lead", "k: ' lead'\n"),
            ("trail ", "k: 'trail '\n"),
            ("it's", "k: it's\n"),
            ("'q'", "k: '''q'''\n"),
            ("line1\nline2", "k: 'line1\n\n  line2'\n"),
            ("a\n\nb\n", "k: 'a\n\n\n  b\n\n  '\n"),
            ("tab\there", "k: \"tab\\there\"\n"),
            ("caf\u{00e9}", "k: \"caf\\xE9\"\n"),
            ("x \ny", "k: \"x \\ny\"\n"),
            ("export A=1\n  indented", "k: \"export A=1\\n  indented\"\n"),
            (
                "word word word word word word word word word word word word word word word word word word word word",
                "k: word word word word word word word word word word word word word word word word\n  word word word word\n",
            ),
            (
                "'word word word word word word word word word word word word word word word word word word word word",
                "k: '''word word word word word word word word word word word word word word word word\n  word word word word'\n",
            ),
            (
                "module load x && export OMP_NUM_THREADS=1\nexport PATH=/opt/bin:$PATH\n",
                "k: 'module load x && export OMP_NUM_THREADS=1\n\n  export PATH=/opt/bin:$PATH\n\n  '\n",
            ),
            (
                "a very long line with \"double quotes\" and a tab\tthat keeps going and going and going until it wraps around",
                "k: \"a very long line with \\\"double quotes\\\" and a tab\\tthat keeps going and going\\\n  \\ and going until it wraps around\"\n",
            ),
            ("2024-1-5 1:02:03", "k: '2024-1-5 1:02:03'\n"),
            ("2024-01-05T10:20:30Z", "k: '2024-01-05T10:20:30Z'\n"),
            ("0b101", "k: '0b101'\n"),
            ("+12", "k: '+12'\n"),
            ("-0", "k: '-0'\n"),
            ("1__", "k: '1__'\n"),
            ("._5", "k: ._5\n"),
            (".5", "k: '.5'\n"),
            ("5.", "k: '5.'\n"),
            ("190:20:30.15", "k: '190:20:30.15'\n"),
            ("NO", "k: 'NO'\n"),
            ("n", "k: n\n"),
            ("<<", "k: '<<'\n"),
            ("=", "k: '='\n"),
            ("---x", "k: '---x'\n"),
            ("? x", "k: '? x'\n"),
            ("?x", "k: ?x\n"),
            ("%x", "k: '%x'\n"),
            (":x", "k: :x\n"),
            ("x:", "k: 'x:'\n"),
            ("[x", "k: '[x'\n"),
            ("x]", "k: x]\n"),
            ("x,y", "k: x,y\n"),
            ("x{", "k: x{\n"),
            ("!x", "k: '!x'\n"),
            ("&x", "k: '&x'\n"),
            ("*x", "k: '*x'\n"),
            ("|x", "k: '|x'\n"),
            (">x", "k: '>x'\n"),
            ("`x", "k: '`x'\n"),
            ("a\u{00a0}b", "k: \"a\\_b\"\n"),
            ("\u{feff}x", "k: \"\\uFEFFx\"\n"),
            ("x\u{007f}", "k: \"x\\x7F\"\n"),
            (
                "\u{00e9}\u{00e9}\u{00e9} word word word word word word word word word word word word word word word word word word word word ",
                "k: \"\\xE9\\xE9\\xE9 word word word word word word word word word word word word word\\\n  \\ word word word word word word word \"\n",
            ),
            (
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx y",
                "k: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  y\n",
            ),
            (
                "short then zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
                "k: short then zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\n",
            ),
            (
                "a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a ",
                "k: 'a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a\n  a a a a a a a a a a a '\n",
            ),
            (
                "multi\n word word word word word word word word word word word word word word word word word word",
                "k: \"multi\\n word word word word word word word word word word word word word word\\\n  \\ word word word word\"\n",
            ),
        ];
        for (s, expected) in cases {
            let mut w = YamlWriter::default();
            w.mapping_entry("k", &Scalar::Str(s.to_string()));
            assert_eq!(&w.finish(), expected, "{s:?}");
        }
    }

    #[test]
    fn posix_paths() {
        assert_eq!(pure_posix_path("/bin//bash/"), "/bin/bash");
        assert_eq!(pure_posix_path("./add.sh"), "add.sh");
        assert_eq!(pure_posix_path("//net/x"), "//net/x");
        assert_eq!(pure_posix_path("///x"), "/x");
    }
}
