//! StructureData: the `xsf`, `xyz`, `chemdoodle` and `cif` downloads, the derived properties
//! (dimensionality and Hill formula) and the `/links/tree` description (compact Hill formula).
//!
//! Numbers are spelled the way Python spells them (`repr` for `str(float)`, `%18.10f` for the
//! fixed-width columns). Where the reference goes through numpy/LAPACK (cell volumes, norms,
//! fractional coordinates), [`linalg`] repeats the exact floating-point operations of the
//! OpenBLAS kernels the reference runs on, so the last digits agree too.

use serde_json::{Map, Value};

use super::array::Py;
use super::{Export, ExportError, NodeInfo};
use crate::model::pyjson::python_float_repr;

pub fn export(node: &NodeInfo, format: &str) -> Result<Export, ExportError> {
    let s = Structure::from_node(node)?;
    let content = match format {
        "xsf" => s.xsf()?,
        "xyz" => s.xyz()?,
        "chemdoodle" => s.chemdoodle()?,
        "cif" => s.cif()?,
        _ => return Err(ExportError::Unsupported(format.to_string())),
    };
    Ok(Export { content: content.into_bytes(), filename: None })
}

/// `{"dimensionality": get_dimensionality(), "formula": get_formula()}`.
pub fn derived_properties(node: &NodeInfo) -> Result<Value, ExportError> {
    let s = Structure::from_node(node)?;
    let (dim, value) = s.dimensionality()?;
    let label = ["", "length", "surface", "volume"][dim];
    let value = match value {
        // Python keeps the integer 0 for zero-dimensional structures.
        None => Value::from(0),
        Some(v) => crate::model::pyjson::float(v),
    };
    let mut dimensionality = Map::new();
    dimensionality.insert("dim".into(), Value::from(dim));
    dimensionality.insert("label".into(), Value::from(label));
    dimensionality.insert("value".into(), value);
    let mut out = Map::new();
    out.insert("dimensionality".into(), Value::Object(dimensionality));
    out.insert("formula".into(), Value::from(s.formula(false)?));
    Ok(Value::Object(out))
}

/// `get_description()`: the compact Hill formula. On inconsistent data the reference's
/// `ValueError` makes `/links/tree` fall back to the class name.
pub fn description(node: &NodeInfo) -> String {
    Structure::from_node(node).and_then(|s| s.formula(true)).unwrap_or_else(|_| "StructureData".to_string())
}

fn invalid(msg: impl Into<String>) -> ExportError {
    ExportError::Invalid(msg.into())
}

struct Kind {
    name: String,
    symbols: Vec<String>,
    weights: Vec<f64>,
}

impl Kind {
    fn is_alloy(&self) -> bool {
        self.symbols.len() != 1
    }

    fn has_vacancies(&self) -> bool {
        // Written as the reference's `not 1.0 - sum < threshold` (NaN counts as a vacancy).
        (1.0 - self.weights.iter().sum::<f64>()).partial_cmp(&1e-6) != Some(std::cmp::Ordering::Less)
    }

    /// `Kind.get_symbols_string()`: `"Ba"`, or `"{Au0.50Cu0.50}"` for alloys and vacancies.
    fn symbols_string(&self) -> String {
        if self.symbols.len() == 1 && self.weights.first() == Some(&1.0) {
            return self.symbols[0].clone();
        }
        let mut pieces: Vec<String> =
            self.symbols.iter().zip(&self.weights).map(|(s, w)| format!("{s}{w:4.2}")).collect();
        if self.has_vacancies() {
            pieces.push(format!("X{:4.2}", 1.0 - self.weights.iter().sum::<f64>()));
        }
        pieces.sort();
        format!("{{{}}}", pieces.concat())
    }
}

struct Site {
    kind_name: String,
    position: [f64; 3],
}

struct Structure {
    /// The cell as stored (for `str()` of its entries in the xyz header).
    cell_raw: Vec<Vec<Value>>,
    cell: [[f64; 3]; 3],
    pbc: [bool; 3],
    kinds: Vec<Kind>,
    sites: Vec<Site>,
}

fn f64_of(v: &Value) -> Result<f64, ExportError> {
    v.as_f64().ok_or_else(|| invalid(format!("expected a number, found {v}")))
}

fn vec3(v: &Value) -> Result<[f64; 3], ExportError> {
    match v.as_array().map(Vec::as_slice) {
        Some([a, b, c]) => Ok([f64_of(a)?, f64_of(b)?, f64_of(c)?]),
        _ => Err(invalid(format!("expected three numbers, found {v}"))),
    }
}

impl Structure {
    fn from_node(node: &NodeInfo) -> Result<Structure, ExportError> {
        let attrs = &node.attributes;
        let cell_value = attrs.get("cell").ok_or_else(|| invalid("the structure has no cell"))?;
        let rows = cell_value.as_array().filter(|r| r.len() == 3).ok_or_else(|| invalid("invalid cell"))?;
        let cell = [vec3(&rows[0])?, vec3(&rows[1])?, vec3(&rows[2])?];
        let cell_raw = rows.iter().map(|r| r.as_array().cloned().unwrap_or_default()).collect();
        let pbc = ["pbc1", "pbc2", "pbc3"].map(|k| attrs.get(k).and_then(Value::as_bool).unwrap_or(false));
        let empty = Vec::new();
        let kinds = attrs
            .get("kinds")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .iter()
            .map(|k| {
                let strings = |key: &str| -> Vec<String> {
                    match k.get(key) {
                        Some(Value::String(s)) => vec![s.clone()],
                        Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
                        _ => Vec::new(),
                    }
                };
                let weights = match k.get("weights") {
                    None | Some(Value::Null) => vec![1.0],
                    Some(Value::Array(a)) => a.iter().map(f64_of).collect::<Result<_, _>>()?,
                    Some(w) => vec![f64_of(w)?],
                };
                Ok(Kind {
                    name: k.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    symbols: strings("symbols"),
                    weights,
                })
            })
            .collect::<Result<Vec<_>, ExportError>>()?;
        let sites = attrs
            .get("sites")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .iter()
            .map(|s| {
                Ok(Site {
                    kind_name: s.get("kind_name").and_then(Value::as_str).unwrap_or("").to_string(),
                    position: vec3(s.get("position").unwrap_or(&Value::Null))?,
                })
            })
            .collect::<Result<Vec<_>, ExportError>>()?;
        Ok(Structure { cell_raw, cell, pbc, kinds, sites })
    }

    fn kind(&self, name: &str) -> Result<&Kind, ExportError> {
        self.kinds.iter().find(|k| k.name == name).ok_or_else(|| invalid(format!("Kind name '{name}' unknown")))
    }

    fn is_alloy_or_vacancy(&self) -> bool {
        self.kinds.iter().any(|k| k.is_alloy() || k.has_vacancies())
    }

    /// `get_formula(mode='hill')`, or `'hill_compact'` (counts divided by their gcd).
    fn formula(&self, compact: bool) -> Result<String, ExportError> {
        let symbols = self
            .sites
            .iter()
            .map(|s| self.kind(&s.kind_name).map(Kind::symbols_string))
            .collect::<Result<Vec<_>, _>>()?;
        let mut unique: Vec<&String> = symbols.iter().collect();
        unique.sort();
        unique.dedup();
        if unique.iter().any(|s| s.as_str() == "C") {
            // Hill order: carbon, then hydrogen, then the rest alphabetically.
            let key = |s: &&String| match s.as_str() {
                "C" => "0".to_string(),
                "H" => "1".to_string(),
                other => other.to_string(),
            };
            unique.sort_by_key(key);
        }
        let mut counts: Vec<(usize, &String)> =
            unique.into_iter().map(|u| (symbols.iter().filter(|s| *s == u).count(), u)).collect();
        if compact {
            let g = counts.iter().fold(0, |g, (n, _)| gcd(g, *n));
            if g > 0 {
                counts.iter_mut().for_each(|(n, _)| *n /= g);
            }
        }
        Ok(counts.iter().map(|(n, s)| if *n == 1 { s.to_string() } else { format!("{s}{n}") }).collect())
    }

    /// `(dim, value)`; the value is `None` for dimension 0 (the reference's integer 0).
    fn dimensionality(&self) -> Result<(usize, Option<f64>), ExportError> {
        let periodic: Vec<[f64; 3]> = (0..3).filter(|&i| self.pbc[i]).map(|i| self.cell[i]).collect();
        let value = match periodic.as_slice() {
            [] => None,
            [a] => Some(linalg::norm(a)),
            [a, b] => Some(linalg::norm(&linalg::cross(a, b))),
            _ => Some(linalg::dot(&self.cell[0], &linalg::cross(&self.cell[1], &self.cell[2])).abs()),
        };
        Ok((periodic.len(), value))
    }

    fn xsf(&self) -> Result<String, ExportError> {
        if self.is_alloy_or_vacancy() {
            return Err(invalid("XSF for alloys or systems with vacancies not implemented."));
        }
        let mut out = String::from("CRYSTAL\nPRIMVEC 1\n");
        for row in &self.cell {
            out.push_str(&format!("{:18.10} {:18.10} {:18.10}\n", row[0], row[1], row[2]));
        }
        out.push_str(&format!("PRIMCOORD 1\n{} 1\n", self.sites.len()));
        for site in &self.sites {
            let symbol = &self.kind(&site.kind_name)?.symbols[0];
            let z = atomic_number(symbol).ok_or_else(|| invalid(format!("'{symbol}'")))?;
            let [x, y, zz] = site.position;
            out.push_str(&format!("{z} {x:18.10} {y:18.10} {zz:18.10}\n"));
        }
        Ok(out)
    }

    fn xyz(&self) -> Result<String, ExportError> {
        if self.is_alloy_or_vacancy() {
            return Err(invalid("XYZ for alloys or systems with vacancies not implemented."));
        }
        let cell: Vec<String> = self.cell_raw.iter().flatten().map(py_str_number).collect();
        let pbc = self.pbc.map(|b| if b { "True" } else { "False" });
        let mut lines = vec![
            self.sites.len().to_string(),
            format!("Lattice=\"{}\" pbc=\"{} {} {}\"", cell.join(" "), pbc[0], pbc[1], pbc[2]),
        ];
        for site in &self.sites {
            let symbol = &self.kind(&site.kind_name)?.symbols[0];
            let [x, y, z] = site.position;
            lines.push(format!("{symbol:<6} {x:18.10} {y:18.10} {z:18.10}"));
        }
        Ok(lines.join("\n"))
    }

    /// The ChemDoodle JSON: the cell and the atoms shifted so the cell is centred on the origin.
    fn chemdoodle(&self) -> Result<String, ExportError> {
        let [a, b, c] = self.cell;
        let add = |u: [f64; 3], v: [f64; 3]| [u[0] + v[0], u[1] + v[1], u[2] + v[2]];
        let sub = |u: [f64; 3], v: [f64; 3]| [u[0] - v[0], u[1] - v[1], u[2] - v[2]];
        let center = add(add(a, b), c).map(|x| x / 2.0);
        // The reference adds `0 * a + 0 * b + 0 * c` (a one-cell supercell) before subtracting
        // the centre; kept for the sign of zeros.
        let zero = |u: [f64; 3]| u.map(|x| 0.0 * x);
        let shift = sub(add(add(zero(a), zero(b)), zero(c)), center);
        let mut atoms = Vec::with_capacity(self.sites.len());
        for site in &self.sites {
            let label = self.kind(&site.kind_name)?.symbols_string();
            let p = site.position;
            atoms.push(Py::Dict(vec![
                ("l".into(), Py::Str(label.clone())),
                ("x".into(), Py::Float(p[0] + shift[0])),
                ("y".into(), Py::Float(p[1] + shift[1])),
                ("z".into(), Py::Float(p[2] + shift[2])),
                ("atomic_elements_html".into(), Py::Str(atom_kinds_to_html(&label))),
            ]));
        }
        let neg_center = center.map(|x| -x);
        let cell = Py::Dict(vec![
            ("t".into(), Py::str("UnitCell")),
            ("i".into(), Py::str("s0")),
            ("o".into(), Py::floats(&neg_center)),
            ("x".into(), Py::floats(&sub(a, center))),
            ("y".into(), Py::floats(&sub(b, center))),
            ("z".into(), Py::floats(&sub(c, center))),
            ("xy".into(), Py::floats(&sub(add(a, b), center))),
            ("xz".into(), Py::floats(&sub(add(a, c), center))),
            ("yz".into(), Py::floats(&sub(add(b, c), center))),
            ("xyz".into(), Py::floats(&sub(add(add(a, b), c), center))),
        ]);
        let doc = Py::Dict(vec![
            ("s".into(), Py::List(vec![cell])),
            ("m".into(), Py::List(vec![Py::Dict(vec![("a".into(), Py::List(atoms))])])),
            ("units".into(), Py::str("&Aring;")),
        ]);
        Ok(doc.dumps())
    }

    /// The CIF the reference writes via ASE (`cif_from_ase`) and PyCifRW.
    fn cif(&self) -> Result<String, ExportError> {
        for site in &self.sites {
            let kind =
                self.kinds.iter().find(|k| k.name == site.kind_name).ok_or_else(|| {
                    invalid(format!("No kind '{}' has been found in the list of kinds", site.kind_name))
                })?;
            if kind.is_alloy() || kind.has_vacancies() {
                return Err(invalid("Cannot convert to ASE if the kind represents an alloy or it has vacancies."));
            }
        }
        let cell = &self.cell;
        let (a, b, c) = (linalg::norm(&cell[0]), linalg::norm(&cell[1]), linalg::norm(&cell[2]));
        // libm's acos: numpy's agrees with it except on AVX-512 machines (SVML), where the last
        // digit can differ (see the `cif_angles_use_libm_acos` test).
        let angle = |u: &[f64; 3], v: &[f64; 3], lu: f64, lv: f64| {
            (linalg::dot(u, v) / (lu * lv)).acos() * 180.0 / std::f64::consts::PI
        };
        let mut scalars: Vec<(&str, CifValue)> = vec![
            ("_cell_length_a", CifValue::One(python_float_repr(a))),
            ("_cell_length_b", CifValue::One(python_float_repr(b))),
            ("_cell_length_c", CifValue::One(python_float_repr(c))),
            ("_cell_angle_alpha", CifValue::One(python_float_repr(angle(&cell[1], &cell[2], b, c)))),
            ("_cell_angle_beta", CifValue::One(python_float_repr(angle(&cell[0], &cell[2], a, c)))),
            ("_cell_angle_gamma", CifValue::One(python_float_repr(angle(&cell[0], &cell[1], a, b)))),
        ];
        if self.pbc.iter().all(|&p| p) {
            scalars.push(("_symmetry_space_group_name_H-M", CifValue::One("P 1".into())));
            scalars.push(("_symmetry_int_tables_number", CifValue::One("1".into())));
            scalars.push(("_symmetry_equiv_pos_as_xyz", CifValue::List(vec!["x, y, z".into()])));
        }
        scalars.sort_by_key(|(tag, _)| *tag);

        let positions: Vec<[f64; 3]> = self.sites.iter().map(|s| s.position).collect();
        let mut scaled =
            linalg::solve_transposed(&ase_complete_cell(cell), &positions).ok_or_else(|| invalid("Singular matrix"))?;
        for p in &mut scaled {
            for (x, periodic) in p.iter_mut().zip(self.pbc) {
                if periodic {
                    // ASE wraps twice: a tiny negative coordinate becomes 1.0 after the first.
                    *x = numpy_mod1(numpy_mod1(*x));
                }
            }
        }
        let mut seen: Vec<(&str, usize)> = Vec::new();
        let mut columns: [Vec<String>; 5] = Default::default();
        for (site, frac) in self.sites.iter().zip(&scaled) {
            let symbol = self.kind(&site.kind_name)?.symbols[0].as_str();
            let n = match seen.iter_mut().find(|(s, _)| *s == symbol) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    seen.push((symbol, 1));
                    1
                }
            };
            columns[0].push(format!("{symbol}{n}"));
            for i in 0..3 {
                columns[i + 1].push(python_float_repr(frac[i]));
            }
            columns[4].push(symbol.to_string());
        }

        let mut block = CifBlockWriter::new();
        if !self.sites.is_empty() {
            let names = [
                "_atom_site_label",
                "_atom_site_fract_x",
                "_atom_site_fract_y",
                "_atom_site_fract_z",
                "_atom_site_type_symbol",
            ];
            block.loop_(&names, &columns);
        }
        for (tag, value) in &scalars {
            match value {
                CifValue::One(v) => block.item(tag, v),
                CifValue::List(v) => block.loop_(&[tag], std::slice::from_ref(v)),
            }
        }
        Ok(format!("{CIF_HEADER}\ndata_0\n{}", block.finish()))
    }
}

enum CifValue {
    One(String),
    List(Vec<String>),
}

const CIF_HEADER: &str = "
##########################################################################
#               Crystallographic Information Format file
#               Produced by PyCifRW module
#
#  This is a CIF file.  CIF has been adopted by the International
#  Union of Crystallography as the standard for data archiving and
#  transmission.
#
#  For information on this file format, follow the CIF links at
#  http://www.iucr.org
##########################################################################
";

/// PyCifRW's block output (CIF 1.1 grammar, 80-column target): its column bookkeeping has
/// quirks (the position after a newline inside a written string counts as 1), which decide
/// where padding goes, so they are reproduced as they are.
struct CifBlockWriter {
    out: String,
    pos: usize,
    tab: usize,
    last: Option<char>,
}

const CIF_WIDTH: usize = 80;

impl CifBlockWriter {
    fn new() -> Self {
        CifBlockWriter { out: String::new(), pos: 0, tab: 0, last: None }
    }

    fn finish(self) -> String {
        self.out
    }

    /// A line break as `mustbreak` writes it (indent level is always 0 here).
    fn must_break(&mut self) {
        self.out.push('\n');
        self.pos = 0;
        self.last = Some('\n');
    }

    fn pad_to_tab(&mut self) {
        if let Some(stops) = self.pos.checked_div(self.tab) {
            let next = (stops + 1) * self.tab;
            self.out.push_str(&" ".repeat(next - self.pos));
            self.pos = next;
            self.last = Some(' ');
        }
    }

    /// A value or name; `do_tab` pads to the next tab stop first. Values never force a line
    /// break here (`canbreak` only matters for values starting a too-long line, which the
    /// reference then breaks; kept for completeness).
    fn text(&mut self, s: &str, do_tab: bool, can_break: bool) {
        if self.pos + s.chars().count() > CIF_WIDTH && !s.starts_with('\n') && can_break {
            self.out.push('\n');
            self.pos = 0;
            self.last = Some('\n');
        }
        if do_tab {
            self.pad_to_tab();
        }
        self.out.push_str(s);
        match s.rfind('\n') {
            // PyCifRW counts `len - index_of_newline`, i.e. one more than the true column.
            Some(i) => self.pos = s[i..].chars().count(),
            None => self.pos += s.chars().count(),
        }
        if let Some(c) = s.chars().last() {
            self.last = Some(c);
        }
    }

    /// The one-space delimiter after a name or value: dropped past the line width (the line
    /// break that follows serves as delimiter) or after whitespace.
    fn delimiter(&mut self) {
        let fits = self.pos < CIF_WIDTH;
        if fits && !matches!(self.last, Some(' ' | '\n' | '\t')) {
            self.out.push(' ');
        }
        // Counted and remembered even when not written.
        self.pos += 1;
        self.last = Some(' ');
    }

    fn item(&mut self, name: &str, value: &str) {
        self.tab = 40;
        self.must_break();
        self.text(name, false, false);
        self.delimiter();
        self.text(&cif_quote(value), true, true);
    }

    fn loop_(&mut self, names: &[&str], columns: &[Vec<String>]) {
        self.tab = 10;
        self.must_break();
        self.text("loop_\n", false, false);
        for name in names {
            self.text("  ", false, false);
            self.text(name, false, false);
            self.text("\n", false, false);
        }
        let rows = columns.first().map_or(0, Vec::len);
        for row in 0..rows {
            if row > 0 {
                self.text("\n", true, false);
            }
            for column in columns {
                self.text(&cif_quote(&column[row]), true, false);
                self.delimiter();
            }
        }
    }
}

/// PyCifRW's choice of delimiter for a CIF 1.1 string value.
fn cif_quote(s: &str) -> String {
    let lower = s.to_lowercase();
    let bare_ok = !(s.is_empty()
        || s.contains(|c: char| "[]{}\u{0b}\t ,\n\"'".contains(c))
        || s.starts_with(|c: char| "_$#;(".contains(c))
        || lower.starts_with("data")
        || lower.starts_with("save")
        || lower.starts_with("global"));
    if bare_ok {
        s.to_string()
    } else if s.contains('\n') || s.chars().count() > 2048 - 2 {
        format!("\n;{s}\n;")
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("\n;{s}\n;")
    }
}

/// ASE's `complete_cell`: zero cell vectors are replaced by orthogonal unit vectors.
fn ase_complete_cell(cell: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let missing: Vec<usize> = (0..3).filter(|&i| cell[i].iter().all(|&x| x == 0.0)).collect();
    let mut out = *cell;
    match missing.len() {
        0 => {}
        3 => out = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        1 => {
            let i = missing[0];
            let (j, k) = ((i + 1) % 3, (i + 2) % 3);
            let n = linalg::cross(&cell[j], &cell[k]);
            let len = linalg::norm(&n);
            out[i] = n.map(|x| x / len);
        }
        _ => {
            let present = (0..3).find(|i| !missing.contains(i)).unwrap_or(0);
            let v = cell[present];
            // A unit vector not parallel to `v`, then two orthogonal completions.
            let axis = (0..3).min_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs())).unwrap_or(0);
            let mut e = [0.0; 3];
            e[axis] = 1.0;
            let u = linalg::cross(&v, &e);
            let u = u.map(|x| x / linalg::norm(&u));
            let w = linalg::cross(&v, &u);
            let w = w.map(|x| x / linalg::norm(&w));
            out[missing[0]] = u;
            out[missing[1]] = w;
        }
    }
    out
}

/// numpy's float `x % 1.0` (sign of the divisor, `+0.0` for exact zeros).
fn numpy_mod1(x: f64) -> f64 {
    let m = x % 1.0;
    if m == 0.0 {
        0.0
    } else if m < 0.0 {
        m + 1.0
    } else {
        m
    }
}

/// `str()` of a stored number: integers as integers, floats as Python's `repr`.
fn py_str_number(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => python_float_repr(n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

/// `atom_kinds_to_html`: `"{Cu0.90X0.10}"` → `"Cu<sub>0.90</sub> + vacancy<sub>0.10</sub>"`.
/// Follows the reference's regex `([A-Z][a-z]*)([0-1][.[0-9]*]?)?`.
fn atom_kinds_to_html(kind: &str) -> String {
    let chars: Vec<char> = kind.chars().collect();
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_uppercase() {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < chars.len() && chars[i].is_ascii_lowercase() {
            i += 1;
        }
        let species: String = chars[start..i].iter().collect();
        let mut weight = String::new();
        if i < chars.len() && (chars[i] == '0' || chars[i] == '1') {
            let wstart = i;
            i += 1;
            while i < chars.len() && (chars[i] == '.' || chars[i] == '[' || chars[i].is_ascii_digit()) {
                i += 1;
            }
            if i < chars.len() && chars[i] == ']' {
                i += 1;
            }
            weight = chars[wstart..i].iter().collect();
        }
        let species = if species == "X" { "vacancy".to_string() } else { species };
        pieces.push(if weight.is_empty() { species } else { format!("{species}<sub>{weight}</sub>") });
    }
    pieces.join(" + ")
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Element symbols by atomic number as aiida-core lists them (`X` is 0; 113, 115 and above 116
/// are missing there).
const ELEMENTS: &[&str] = &[
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce",
    "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir",
    "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
];

fn atomic_number(symbol: &str) -> Option<usize> {
    match symbol {
        "Fl" => Some(114),
        "Lv" => Some(116),
        _ => ELEMENTS.iter().position(|s| *s == symbol),
    }
}

/// The 3x3 linear algebra of numpy as the reference runs it (numpy 2.4 with OpenBLAS 0.3.31,
/// SkylakeX kernels): 3-element dot products are a fused multiply-add chain, `inv`/`solve`
/// are LAPACK `dgesv` (left-looking `getf2` with reciprocal scaling, then the blocked `trsm`
/// kernels, or `trsv` for a single right-hand side). Checked against numpy on thousands of
/// random matrices, bit for bit.
pub(super) mod linalg {
    pub type Mat3 = [[f64; 3]; 3];

    /// `numpy.dot` of two 3-vectors.
    pub fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
        a[2].mul_add(b[2], a[1].mul_add(b[1], a[0] * b[0]))
    }

    /// `numpy.linalg.norm` of a 3-vector.
    pub fn norm(a: &[f64; 3]) -> f64 {
        dot(a, a).sqrt()
    }

    /// `numpy.cross` (plain products and differences, no fusing).
    pub fn cross(a: &[f64; 3], b: &[f64; 3]) -> [f64; 3] {
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    }

    /// `numpy.dot(points, m)` for an N×3 array and a 3×3 matrix.
    pub fn matmul(points: &[[f64; 3]], m: &Mat3) -> Vec<[f64; 3]> {
        points
            .iter()
            .map(|p| {
                let col = |j: usize| p[2].mul_add(m[2][j], p[1].mul_add(m[1][j], p[0] * m[0][j]));
                [col(0), col(1), col(2)]
            })
            .collect()
    }

    /// LU factors (L unit lower, below the diagonal; U on and above) and row pivots.
    struct Lu {
        a: Mat3,
        piv: [usize; 3],
    }

    fn getrf(m: &Mat3) -> Option<Lu> {
        let mut a = *m;
        let mut piv = [0usize; 3];
        for j in 0..3 {
            for (i, &p) in piv.iter().enumerate().take(j) {
                if p != i {
                    let t = a[i][j];
                    a[i][j] = a[p][j];
                    a[p][j] = t;
                }
            }
            // Column j of U above the diagonal (a dot-product update; only row 1 needs one).
            if j == 2 {
                a[1][2] -= a[1][0] * a[0][2];
            }
            // The rest of column j: y -= A[j.., ..j] · U[..j, j], the sum accumulated first.
            if j > 0 {
                for r in j..3 {
                    // Only j == 2 has a second term.
                    let mut s = a[r][0] * a[0][j];
                    if j == 2 {
                        s = a[r][1].mul_add(a[1][j], s);
                    }
                    a[r][j] -= s;
                }
            }
            // First row with the largest magnitude.
            let mut p = j;
            for r in j + 1..3 {
                if a[r][j].abs() > a[p][j].abs() {
                    p = r;
                }
            }
            piv[j] = p;
            let pivot = a[p][j];
            if pivot == 0.0 {
                return None;
            }
            if p != j {
                // Rows are swapped in the columns done so far; later columns are permuted
                // when their turn comes.
                let (lo, hi) = a.split_at_mut(p);
                lo[j][..=j].swap_with_slice(&mut hi[0][..=j]);
            }
            let r = 1.0 / pivot;
            for row in a.iter_mut().skip(j + 1) {
                row[j] *= r;
            }
        }
        Some(Lu { a, piv })
    }

    fn permute(lu: &Lu, b: &mut [f64; 3]) {
        for (i, &p) in lu.piv.iter().enumerate() {
            b.swap(i, p);
        }
    }

    /// `getrs` for one of several right-hand sides (the `trsm` kernel path).
    fn getrs_multi(lu: &Lu, mut b: [f64; 3]) -> [f64; 3] {
        let a = &lu.a;
        permute(lu, &mut b);
        let x0 = b[0];
        let b1 = (-x0).mul_add(a[1][0], b[1]);
        let b2 = b[2] - a[2][1].mul_add(b1, a[2][0] * x0);
        let x2 = b2 * (1.0 / a[2][2]);
        let b0 = x0 - a[0][2] * x2;
        let b1 = b1 - a[1][2] * x2;
        let x1 = b1 * (1.0 / a[1][1]);
        let b0 = (-x1).mul_add(a[0][1], b0);
        let x0 = b0 * (1.0 / a[0][0]);
        [x0, x1, x2]
    }

    /// `getrs` for a single right-hand side (the `trsv` path: axpy updates, true division).
    fn getrs_single(lu: &Lu, mut b: [f64; 3]) -> [f64; 3] {
        let a = &lu.a;
        permute(lu, &mut b);
        for i in 0..3 {
            for k in i + 1..3 {
                b[k] = (-b[i]).mul_add(a[k][i], b[k]);
            }
        }
        for i in (0..3).rev() {
            b[i] /= a[i][i];
            for k in 0..i {
                b[k] = (-b[i]).mul_add(a[k][i], b[k]);
            }
        }
        b
    }

    /// `numpy.linalg.inv(m)`; `None` if singular.
    pub fn inv(m: &Mat3) -> Option<Mat3> {
        let lu = getrf(m)?;
        let cols = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]].map(|e| getrs_multi(&lu, e));
        Some([0, 1, 2].map(|i| [cols[0][i], cols[1][i], cols[2][i]]))
    }

    /// `numpy.linalg.solve(m.T, points.T).T`, i.e. the coordinates of each point in the basis
    /// of the rows of `m` (ASE's `scaled_positions`).
    pub fn solve_transposed(m: &Mat3, points: &[[f64; 3]]) -> Option<Vec<[f64; 3]>> {
        let mt = [0, 1, 2].map(|i| [m[0][i], m[1][i], m[2][i]]);
        let lu = getrf(&mt)?;
        Some(if points.len() == 1 {
            vec![getrs_single(&lu, points[0])]
        } else {
            points.iter().map(|p| getrs_multi(&lu, *p)).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::array::testutil::{golden, golden_json, load};
    use super::*;

    const BATIO3: &str = "a55eb0f5-68ab-45a7-8f6a-b22c38e2a583";
    const WATER: &str = "e6237c37-6e63-49cd-9666-511f220ed8e8";

    fn download(uuid: &str, format: &str) -> Vec<u8> {
        let (node, _) = load(uuid);
        let out = export(&node, format).unwrap();
        assert_eq!(out.filename, None);
        out.content
    }

    fn golden_download(uuid: &str, format: &str) -> Vec<u8> {
        golden(&format!("/api/v4/nodes/{uuid}/download?download_format={format}")).0.unwrap()
    }

    #[test]
    fn text_formats_match_reference() {
        for uuid in [BATIO3, WATER] {
            for format in ["xsf", "xyz", "chemdoodle"] {
                let ours = String::from_utf8(download(uuid, format)).unwrap();
                let theirs = String::from_utf8(golden_download(uuid, format)).unwrap();
                assert_eq!(ours, theirs, "{uuid} {format}");
            }
        }
    }

    #[test]
    fn xsf_literal() {
        let expected = "CRYSTAL\nPRIMVEC 1\n      9.7110000000       0.0000000000       0.0000000000\n      0.0000000000       9.7110000000       0.0000000000\n      0.0000000000       0.0000000000       9.7110000000\nPRIMCOORD 1\n3 1\n8       4.8555000000       4.8555000000       4.9710609000\n1       4.8555000000       5.5964493000       4.3936108515\n1       4.8555000000       4.1145507000       4.3922853000\n";
        assert_eq!(String::from_utf8(download(WATER, "xsf")).unwrap(), expected);
    }

    #[test]
    fn cif_matches_reference() {
        // The golden file allows other spellings here; this writer reproduces PyCifRW exactly.
        for uuid in [BATIO3, WATER] {
            let ours = String::from_utf8(download(uuid, "cif")).unwrap();
            let theirs = String::from_utf8(golden_download(uuid, "cif")).unwrap();
            assert_eq!(ours, theirs, "{uuid}");
        }
    }

    #[test]
    fn cif_angles_use_libm_acos() {
        // numpy's `arccos` on AVX-512 machines (SVML) can differ from libm by one ulp: the
        // live reference writes 59.99999999999999 for this fcc cell, while the fixture's
        // CifData 831b781b was made from this very structure on a machine where numpy
        // agreed with libm (60.00000000000001). This writer uses libm, so it reproduces that
        // stored file byte for byte.
        let ours = download("eea1aadd-8645-4c87-8fe8-8cdcfffa7a00", "cif");
        let stored =
            golden("/api/v4/nodes/831b781b-148e-46c7-97c4-4750dee93f8c/download?download_format=cif").0.unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(stored).unwrap());
    }

    #[test]
    fn derived_properties_match_reference() {
        for uuid in [BATIO3, WATER] {
            let (node, _) = load(uuid);
            let expected = golden_json(&format!("/api/v4/nodes/{uuid}/contents/derived_properties"));
            let ours = derived_properties(&node).unwrap();
            assert_eq!(
                crate::model::pyjson::to_string(&ours),
                crate::model::pyjson::to_string(&expected["data"]["derived_properties"]),
                "{uuid}"
            );
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(description(&load(BATIO3).0), "BaO3Ti");
        assert_eq!(description(&load(WATER).0), "H2O");
    }

    fn node_with(attributes: Value) -> NodeInfo {
        NodeInfo {
            id: 1,
            uuid: "u".into(),
            node_type: "data.core.structure.StructureData.".into(),
            process_type: None,
            label: String::new(),
            description: String::new(),
            attributes,
            attribute_keys: Vec::new(),
            computer_label: None,
        }
    }

    #[test]
    fn alloys_and_vacancies() {
        // Attributes of the fixture's "CuAu alloy 50%/50% with vacancy"; expected values from
        // the reference.
        let node = node_with(serde_json::json!({
            "cell": [[3.75, 0.0, 0.0], [0.0, 3.75, 0.0], [0.0, 0.0, 3.75]],
            "kinds": [
                {"mass": 130.2562845, "name": "CuAu", "symbols": ["Cu", "Au"], "weights": [0.5, 0.5]},
                {"mass": 63.546, "name": "Cu_vac", "symbols": ["Cu"], "weights": [0.9]},
                {"mass": 196.966569, "name": "Au", "symbols": ["Au"], "weights": [1.0]}
            ],
            "pbc1": true, "pbc2": true, "pbc3": true,
            "sites": [
                {"kind_name": "CuAu", "position": [0.0, 0.0, 0.0]},
                {"kind_name": "Cu_vac", "position": [1.875, 1.875, 0.0]},
                {"kind_name": "Au", "position": [1.875, 0.0, 1.875]},
                {"kind_name": "Au", "position": [0.0, 1.875, 1.875]}
            ]
        }));
        assert_eq!(
            crate::model::pyjson::to_string(&derived_properties(&node).unwrap()),
            "{\"dimensionality\":{\"dim\":3,\"label\":\"volume\",\"value\":52.734375},\"formula\":\"Au2{Au0.50Cu0.50}{Cu0.90X0.10}\"}\n"
        );
        let chemdoodle = String::from_utf8(export(&node, "chemdoodle").unwrap().content).unwrap();
        assert_eq!(
            chemdoodle,
            "{\"s\": [{\"t\": \"UnitCell\", \"i\": \"s0\", \"o\": [-1.875, -1.875, -1.875], \"x\": [1.875, -1.875, -1.875], \"y\": [-1.875, 1.875, -1.875], \"z\": [-1.875, -1.875, 1.875], \"xy\": [1.875, 1.875, -1.875], \"xz\": [1.875, -1.875, 1.875], \"yz\": [-1.875, 1.875, 1.875], \"xyz\": [1.875, 1.875, 1.875]}], \"m\": [{\"a\": [{\"l\": \"{Au0.50Cu0.50}\", \"x\": -1.875, \"y\": -1.875, \"z\": -1.875, \"atomic_elements_html\": \"Au<sub>0.50</sub> + Cu<sub>0.50</sub>\"}, {\"l\": \"{Cu0.90X0.10}\", \"x\": 0.0, \"y\": 0.0, \"z\": -1.875, \"atomic_elements_html\": \"Cu<sub>0.90</sub> + vacancy<sub>0.10</sub>\"}, {\"l\": \"Au\", \"x\": 0.0, \"y\": -1.875, \"z\": 0.0, \"atomic_elements_html\": \"Au\"}, {\"l\": \"Au\", \"x\": -1.875, \"y\": 0.0, \"z\": 0.0, \"atomic_elements_html\": \"Au\"}]}], \"units\": \"&Aring;\"}"
        );
        for (format, msg) in [
            ("xsf", "XSF for alloys or systems with vacancies not implemented."),
            ("xyz", "XYZ for alloys or systems with vacancies not implemented."),
            ("cif", "Cannot convert to ASE if the kind represents an alloy or it has vacancies."),
        ] {
            match export(&node, format) {
                Err(ExportError::Invalid(m)) => assert_eq!(m, msg),
                other => panic!("{format}: {other:?}"),
            }
        }
    }

    #[test]
    fn formulas() {
        let kinds = |syms: &[&str]| -> Value {
            Value::Array(
                syms.iter().map(|s| serde_json::json!({"name": s, "symbols": [s], "weights": [1.0]})).collect(),
            )
        };
        let sites = |syms: &[&str]| -> Value {
            Value::Array(
                syms.iter().map(|s| serde_json::json!({"kind_name": s, "position": [0.0, 0.0, 0.0]})).collect(),
            )
        };
        let cell = serde_json::json!([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        let s = |syms: &[&str]| {
            let node = node_with(serde_json::json!({"cell": cell, "kinds": kinds(syms), "sites": sites(syms)}));
            let st = Structure::from_node(&node).unwrap();
            (st.formula(false).unwrap(), st.formula(true).unwrap())
        };
        assert_eq!(s(&["C", "H", "H", "H", "O", "C", "H", "H", "H"]), ("C2H6O".into(), "C2H6O".into()));
        assert_eq!(s(&["S", "O", "O", "H", "O", "H", "O"]), ("H2O4S".into(), "H2O4S".into()));
        assert_eq!(s(&["C", "H", "H", "H", "O", "C", "H", "H", "H", "O", "O", "O"]), ("C2H6O4".into(), "CH3O2".into()));
        assert_eq!(s(&["Mg", "O", "Mg", "O"]), ("Mg2O2".into(), "MgO".into()));
    }

    #[test]
    fn html_of_kinds() {
        assert_eq!(atom_kinds_to_html("Ba"), "Ba");
        assert_eq!(
            atom_kinds_to_html("{Ba0.80Ca0.10X0.10}"),
            "Ba<sub>0.80</sub> + Ca<sub>0.10</sub> + vacancy<sub>0.10</sub>"
        );
    }

    #[test]
    fn numpy_linear_algebra() {
        // Values printed by numpy 2.4 on the reference machine.
        let cell = [[0.0, 2.7155, 2.7155], [2.7155, 0.0, 2.7155], [2.7155, 2.7155, 0.0]];
        let inv = linalg::inv(&cell).unwrap();
        assert_eq!(inv[0], [-0.18412815319462342, 0.18412815319462345, 0.18412815319462345]);
        assert_eq!(inv[2], [0.18412815319462345, 0.18412815319462345, -0.18412815319462347]);
        assert_eq!(linalg::norm(&[1.0, 2.0, 2.0]), 3.0);
        assert_eq!(numpy_mod1(-1e-17), 1.0);
        assert_eq!(numpy_mod1(numpy_mod1(-1e-17)), 0.0);
        assert_eq!(numpy_mod1(1.25), 0.25);
    }
}
