//! A crystal structure as AiiDA's `StructureData` stores it (attributes `cell`, `pbc1..3`,
//! `kinds`, `sites`), typed, with what AiiDA and ASE compute from it: Hill formulas, alloy and
//! vacancy handling, dimensionality, cell volume, lengths and angles, fractional coordinates.
//! Pure knowledge: the exporters and (later) OPTIMADE build their answers from it.
//!
//! Where the reference goes through numpy/OpenBLAS, the methods take the [`Kernels`] family
//! whose roundings to reproduce (the exporters pass [`Kernels::REFERENCE`]).

use serde_json::Value;

use super::linalg::{self, Kernels, Mat3, Vec3};

/// Why a structure's attributes cannot be used (the reference's `ValueError`/`KeyError`
/// message, where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StructureError(pub String);

fn invalid(msg: impl Into<String>) -> StructureError {
    StructureError(msg.into())
}

/// One kind of site: a species, or an alloy (several symbols) and/or a partial occupation (the
/// weights sum below 1: a vacancy).
#[derive(Debug, Clone, PartialEq)]
pub struct Kind {
    pub name: String,
    pub symbols: Vec<String>,
    /// One weight per symbol (`[1.0]` when the attribute is missing).
    pub weights: Vec<f64>,
    pub mass: Option<f64>,
}

impl Kind {
    /// Not exactly one symbol.
    pub fn is_alloy(&self) -> bool {
        self.symbols.len() != 1
    }

    /// Whether the weights sum to less than 1 (by more than 1e-6).
    pub fn has_vacancies(&self) -> bool {
        // Written as the reference's `not 1.0 - sum < threshold` (NaN counts as a vacancy).
        (1.0 - self.weights.iter().sum::<f64>()).partial_cmp(&1e-6) != Some(std::cmp::Ordering::Less)
    }

    /// `Kind.get_symbols_string()`: `"Ba"`, or `"{Au0.50Cu0.50}"` for alloys and vacancies.
    pub fn symbols_string(&self) -> String {
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

/// A site: a position (Cartesian, Å) and the name of its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub kind_name: String,
    pub position: Vec3,
}

/// `get_formula` modes computed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormulaMode {
    /// `'hill'`: carbon, hydrogen, then alphabetical (all alphabetical without carbon).
    Hill,
    /// `'hill_compact'`: the Hill formula with the counts divided by their gcd.
    HillCompact,
}

/// `get_dimensionality()`: the number of periodic directions and the length, area or volume
/// they span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dimensionality {
    pub dim: usize,
    /// `None` for dimension 0 (the reference's integer 0).
    pub value: Option<f64>,
}

impl Dimensionality {
    /// `""`, `"length"`, `"surface"` or `"volume"`.
    pub fn label(&self) -> &'static str {
        ["", "length", "surface", "volume"][self.dim]
    }
}

/// A StructureData: the cell, its periodicity, the kinds and the sites.
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    /// The lattice vectors as rows (Å).
    pub cell: Mat3,
    pub pbc: [bool; 3],
    pub kinds: Vec<Kind>,
    pub sites: Vec<Site>,
}

fn f64_of(v: &Value) -> Result<f64, StructureError> {
    v.as_f64().ok_or_else(|| invalid(format!("expected a number, found {v}")))
}

fn vec3(v: &Value) -> Result<Vec3, StructureError> {
    match v.as_array().map(Vec::as_slice) {
        Some([a, b, c]) => Ok([f64_of(a)?, f64_of(b)?, f64_of(c)?]),
        _ => Err(invalid(format!("expected three numbers, found {v}"))),
    }
}

/// A 3×3 matrix stored as three rows of three numbers (`None` otherwise).
pub fn mat3_of(value: &Value) -> Option<Mat3> {
    let rows = value.as_array().filter(|r| r.len() == 3)?;
    let mut m = [[0.0; 3]; 3];
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_array().filter(|r| r.len() == 3)?;
        for (j, v) in row.iter().enumerate() {
            m[i][j] = v.as_f64()?;
        }
    }
    Some(m)
}

impl Structure {
    /// The structure of a StructureData's attributes dict.
    pub fn from_attributes(attrs: &Value) -> Result<Structure, StructureError> {
        let cell_value = attrs.get("cell").ok_or_else(|| invalid("the structure has no cell"))?;
        let rows = cell_value.as_array().filter(|r| r.len() == 3).ok_or_else(|| invalid("invalid cell"))?;
        let cell = [vec3(&rows[0])?, vec3(&rows[1])?, vec3(&rows[2])?];
        let pbc = ["pbc1", "pbc2", "pbc3"].map(|k| attrs.get(k).and_then(Value::as_bool).unwrap_or(false));
        let list = |key: &str| attrs.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let kinds = list("kinds").iter().map(kind_of).collect::<Result<Vec<_>, _>>()?;
        let sites = list("sites")
            .iter()
            .map(|s| {
                Ok(Site {
                    kind_name: s.get("kind_name").and_then(Value::as_str).unwrap_or("").to_string(),
                    position: vec3(s.get("position").unwrap_or(&Value::Null))?,
                })
            })
            .collect::<Result<Vec<_>, StructureError>>()?;
        Ok(Structure { cell, pbc, kinds, sites })
    }

    /// The structure of a StructureData's attributes as JSON text: read straight into typed
    /// values when they have the usual shape (fast: no JSON tree), else as
    /// [`Structure::from_attributes`] reads them (the same structure either way).
    pub fn from_json_text(text: &str) -> Result<Structure, StructureError> {
        match serde_json::from_str::<raw::Attributes>(text) {
            Ok(attrs) => Ok(attrs.into_structure()),
            Err(_) => {
                let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
                Structure::from_attributes(&value)
            }
        }
    }

    /// The kind called `name`.
    pub fn kind(&self, name: &str) -> Result<&Kind, StructureError> {
        self.kinds.iter().find(|k| k.name == name).ok_or_else(|| invalid(format!("Kind name '{name}' unknown")))
    }

    /// Whether any kind is an alloy or has vacancies (formats that need one species per site
    /// refuse such structures).
    pub fn has_alloys_or_vacancies(&self) -> bool {
        self.kinds.iter().any(|k| k.is_alloy() || k.has_vacancies())
    }

    /// `get_formula(mode)`; alloys and vacancies appear as their symbols string.
    pub fn formula(&self, mode: FormulaMode) -> Result<String, StructureError> {
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
        if mode == FormulaMode::HillCompact {
            let g = counts.iter().fold(0, |g, (n, _)| gcd(g, *n));
            if g > 0 {
                counts.iter_mut().for_each(|(n, _)| *n /= g);
            }
        }
        Ok(counts.iter().map(|(n, s)| if *n == 1 { s.to_string() } else { format!("{s}{n}") }).collect())
    }

    /// `get_dimensionality()`: the norm of the one periodic vector, the area spanned by two,
    /// or the cell volume.
    pub fn dimensionality(&self, k: Kernels) -> Dimensionality {
        let periodic: Vec<Vec3> = (0..3).filter(|&i| self.pbc[i]).map(|i| self.cell[i]).collect();
        let value = match periodic.as_slice() {
            [] => None,
            [a] => Some(k.norm(a)),
            [a, b] => Some(k.norm(&linalg::cross(a, b))),
            _ => Some(self.cell_volume(k)),
        };
        Dimensionality { dim: periodic.len(), value }
    }

    /// `|a · (b × c)|`.
    pub fn cell_volume(&self, k: Kernels) -> f64 {
        let [a, b, c] = &self.cell;
        k.dot(a, &linalg::cross(b, c)).abs()
    }

    /// The lengths of the three cell vectors.
    pub fn cell_lengths(&self, k: Kernels) -> [f64; 3] {
        self.cell.map(|v| k.norm(&v))
    }

    /// The angles alpha (b, c), beta (a, c), gamma (a, b) in degrees, as ASE's `cellpar()`
    /// computes them. `acos` is libm's: numpy's agrees with it except on AVX-512 machines
    /// (SVML), where the last digit can differ.
    pub fn cell_angles(&self, k: Kernels) -> [f64; 3] {
        let [a, b, c] = &self.cell;
        let [la, lb, lc] = self.cell_lengths(k);
        let angle =
            |u: &Vec3, v: &Vec3, lu: f64, lv: f64| (k.dot(u, v) / (lu * lv)).acos() * 180.0 / std::f64::consts::PI;
        [angle(b, c, lb, lc), angle(a, c, la, lc), angle(a, b, la, lb)]
    }

    /// ASE's `get_scaled_positions()`: the site positions in the basis of the completed cell
    /// ([`complete_cell`]), wrapped into [0, 1) along the periodic directions.
    pub fn fractional_positions(&self, k: Kernels) -> Result<Vec<Vec3>, StructureError> {
        let positions: Vec<Vec3> = self.sites.iter().map(|s| s.position).collect();
        let mut scaled =
            k.solve_transposed(&complete_cell(k, &self.cell), &positions).ok_or_else(|| invalid("Singular matrix"))?;
        for p in &mut scaled {
            for (x, periodic) in p.iter_mut().zip(self.pbc) {
                if periodic {
                    // ASE wraps twice: a tiny negative coordinate becomes 1.0 after the first.
                    *x = numpy_mod1(numpy_mod1(*x));
                }
            }
        }
        Ok(scaled)
    }
}

/// A kind as an OPTIMADE `species`: its symbols, plus `"vacancy"` when the weights sum below 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Species {
    pub name: String,
    pub chemical_symbols: Vec<String>,
    pub concentration: Vec<f64>,
    /// One mass per symbol (0 for the vacancy), when the kind's one mass belongs to one element.
    pub mass: Option<Vec<f64>>,
}

/// The OPTIMADE properties of a structure that its geometry and kinds determine.
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    /// The element symbols present on the sites, alphabetically (the vacancy and `X` left out).
    pub elements: Vec<String>,
    /// Each element's share of the occupied sites (occupation-weighted), in the order of `elements`.
    pub elements_ratios: Vec<f64>,
    /// Alphabetical, proportions reduced by their greatest common divisor (omitted when 1).
    pub formula_reduced: String,
    /// Hill order (carbon, hydrogen, the rest alphabetically; all alphabetical without
    /// carbon), proportions not reduced.
    pub formula_hill: String,
    /// `A`, `B`, ... for the reduced proportions, largest first.
    pub formula_anonymous: String,
    /// Only the kinds that some site uses, in the order of the kinds.
    pub species: Vec<Species>,
    /// Whether some species has more than one symbol (an alloy, or a vacancy).
    pub disorder: bool,
}

/// The labels of OPTIMADE's anonymous formulas: `A`..`Z`, then `Aa`, `Ab`, ..., `Zz`.
pub fn anonymous_label(i: usize) -> String {
    let upper = |n: usize| char::from(b'A' + (n % 26) as u8);
    if i < 26 {
        return upper(i).to_string();
    }
    let j = i - 26;
    format!("{}{}", upper(j / 26), char::from(b'a' + (j % 26) as u8))
}

/// Rounds `x` to 12 decimals, so that `1 - 0.9` is written `0.1`.
fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

/// The smallest whole multiple (up to 10 000 times) of occupation-weighted counts that are all
/// whole numbers to 1e-6, as integers; for weights with no such multiple, the counts times
/// 10 000 rounded.
fn whole_counts(counts: &[f64]) -> Vec<u64> {
    let whole = |m: f64| counts.iter().all(|c| ((c * m) - (c * m).round()).abs() < 1e-6 * (c * m).max(1.0));
    let m = (1..=10_000).map(f64::from).find(|&m| whole(m)).unwrap_or(10_000.0);
    counts.iter().map(|c| (c * m).round() as u64).collect()
}

fn formula_text<'a>(parts: impl Iterator<Item = (&'a str, u64)>) -> String {
    parts.map(|(s, n)| if n == 1 { s.to_string() } else { format!("{s}{n}") }).collect()
}

impl Structure {
    /// The composition of the sites as OPTIMADE describes it: alloy kinds count each symbol
    /// by its weight, a vacancy (weights summing below 1) counts for nothing.
    pub fn composition(&self) -> Result<Composition, StructureError> {
        let mut used: Vec<&Kind> = Vec::new();
        let mut counts: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
        for site in &self.sites {
            let kind = self.kind(&site.kind_name)?;
            if !used.iter().any(|k| k.name == kind.name) {
                used.push(kind);
            }
            for (symbol, weight) in kind.symbols.iter().zip(&kind.weights) {
                if symbol != "X" {
                    *counts.entry(symbol.as_str()).or_insert(0.0) += weight;
                }
            }
        }
        counts.retain(|_, c| *c > 0.0);
        let elements: Vec<String> = counts.keys().map(|s| s.to_string()).collect();
        let values: Vec<f64> = counts.values().copied().collect();
        let total: f64 = values.iter().sum();
        let elements_ratios = values.iter().map(|c| c / total).collect();
        let whole = whole_counts(&values);
        let g = whole.iter().fold(0, |g, &n| gcd(g, n as usize)).max(1) as u64;
        let reduced: Vec<u64> = whole.iter().map(|n| n / g).collect();
        let formula_reduced = formula_text(elements.iter().map(String::as_str).zip(reduced.iter().copied()));
        let mut hill: Vec<(&str, u64)> = elements.iter().map(String::as_str).zip(whole.iter().copied()).collect();
        if counts.contains_key("C") {
            hill.sort_by_key(|(s, _)| match *s {
                "C" => (0, ""),
                "H" => (1, ""),
                other => (2, other),
            });
        }
        let formula_hill = formula_text(hill.into_iter());
        let mut anonymous = reduced.clone();
        anonymous.sort_by(|a, b| b.cmp(a));
        let labels: Vec<String> = (0..anonymous.len()).map(anonymous_label).collect();
        let formula_anonymous = formula_text(labels.iter().map(String::as_str).zip(anonymous));
        let species: Vec<Species> = used
            .iter()
            .map(|kind| {
                let mut chemical_symbols = kind.symbols.clone();
                let mut concentration = kind.weights.clone();
                let vacancy = kind.has_vacancies();
                if vacancy {
                    chemical_symbols.push("vacancy".into());
                    concentration.push(round12(1.0 - kind.weights.iter().sum::<f64>()));
                }
                let mass = match (kind.mass, kind.symbols.len(), vacancy) {
                    (Some(m), 1, false) => Some(vec![m]),
                    (Some(m), 1, true) => Some(vec![m, 0.0]),
                    _ => None,
                };
                Species { name: kind.name.clone(), chemical_symbols, concentration, mass }
            })
            .collect();
        let disorder = species.iter().any(|s| s.chemical_symbols.len() > 1);
        Ok(Composition {
            elements,
            elements_ratios,
            formula_reduced,
            formula_hill,
            formula_anonymous,
            species,
            disorder,
        })
    }
}

/// The usual shape of StructureData attributes, for [`Structure::from_json_text`]; anything
/// else fails to deserialize and goes through [`Structure::from_attributes`].
mod raw {
    use serde::Deserialize;

    use super::{Kind, Site, Structure};

    #[derive(Deserialize)]
    pub(super) struct Attributes {
        cell: [[f64; 3]; 3],
        pbc1: Option<bool>,
        pbc2: Option<bool>,
        pbc3: Option<bool>,
        #[serde(default)]
        kinds: Vec<RawKind>,
        #[serde(default)]
        sites: Vec<RawSite>,
    }

    #[derive(Deserialize)]
    struct RawKind {
        name: Option<String>,
        #[serde(default)]
        symbols: Vec<String>,
        weights: Option<Vec<f64>>,
        mass: Option<f64>,
    }

    #[derive(Deserialize)]
    struct RawSite {
        kind_name: Option<String>,
        position: [f64; 3],
    }

    impl Attributes {
        pub(super) fn into_structure(self) -> Structure {
            let pbc = [self.pbc1, self.pbc2, self.pbc3].map(|p| p.unwrap_or(false));
            let kinds = self
                .kinds
                .into_iter()
                .map(|k| Kind {
                    name: k.name.unwrap_or_default(),
                    symbols: k.symbols,
                    weights: k.weights.unwrap_or_else(|| vec![1.0]),
                    mass: k.mass,
                })
                .collect();
            let sites = self
                .sites
                .into_iter()
                .map(|s| Site { kind_name: s.kind_name.unwrap_or_default(), position: s.position })
                .collect();
            Structure { cell: self.cell, pbc, kinds, sites }
        }
    }
}

fn kind_of(k: &Value) -> Result<Kind, StructureError> {
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
        mass: k.get("mass").and_then(Value::as_f64),
    })
}

/// ASE's `complete_cell`: zero cell vectors are replaced by orthogonal unit vectors.
pub fn complete_cell(k: Kernels, cell: &Mat3) -> Mat3 {
    let missing: Vec<usize> = (0..3).filter(|&i| cell[i].iter().all(|&x| x == 0.0)).collect();
    let mut out = *cell;
    let unit = |v: Vec3| {
        let len = k.norm(&v);
        v.map(|x| x / len)
    };
    match missing.len() {
        0 => {}
        3 => out = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        1 => {
            let i = missing[0];
            let (j, l) = ((i + 1) % 3, (i + 2) % 3);
            out[i] = unit(linalg::cross(&cell[j], &cell[l]));
        }
        _ => {
            let present = (0..3).find(|i| !missing.contains(i)).unwrap_or(0);
            let v = cell[present];
            // A unit vector not parallel to `v`, then two orthogonal completions.
            let axis = (0..3).min_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs())).unwrap_or(0);
            let mut e = [0.0; 3];
            e[axis] = 1.0;
            let u = unit(linalg::cross(&v, &e));
            let w = unit(linalg::cross(&v, &u));
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

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Element symbols by atomic number as aiida-core lists them (`X` is 0; 113, 115 and above 116
/// are missing there).
pub const ELEMENTS: &[&str] = &[
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce",
    "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir",
    "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
];

/// The atomic number of an element symbol as aiida-core knows it (`X`, the vacancy, is 0).
pub fn atomic_number(symbol: &str) -> Option<usize> {
    match symbol {
        "Fl" => Some(114),
        "Lv" => Some(116),
        _ => ELEMENTS.iter().position(|s| *s == symbol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn structure(symbols: &[&str]) -> Structure {
        let kinds: Vec<Value> = symbols.iter().map(|s| json!({"name": s, "symbols": [s], "weights": [1.0]})).collect();
        let sites: Vec<Value> = symbols.iter().map(|s| json!({"kind_name": s, "position": [0.0, 0.0, 0.0]})).collect();
        let cell = json!([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        Structure::from_attributes(&json!({"cell": cell, "kinds": kinds, "sites": sites})).unwrap()
    }

    #[test]
    fn formulas() {
        let f = |syms: &[&str]| {
            let s = structure(syms);
            (s.formula(FormulaMode::Hill).unwrap(), s.formula(FormulaMode::HillCompact).unwrap())
        };
        assert_eq!(f(&["C", "H", "H", "H", "O", "C", "H", "H", "H"]), ("C2H6O".into(), "C2H6O".into()));
        assert_eq!(f(&["S", "O", "O", "H", "O", "H", "O"]), ("H2O4S".into(), "H2O4S".into()));
        assert_eq!(f(&["C", "H", "H", "H", "O", "C", "H", "H", "H", "O", "O", "O"]), ("C2H6O4".into(), "CH3O2".into()));
        assert_eq!(f(&["Mg", "O", "Mg", "O"]), ("Mg2O2".into(), "MgO".into()));
    }

    #[test]
    fn alloys_and_vacancies() {
        // The fixture's "CuAu alloy 50%/50% with vacancy".
        let s = Structure::from_attributes(&json!({
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
        }))
        .unwrap();
        assert!(s.has_alloys_or_vacancies());
        assert_eq!(s.kinds[0].mass, Some(130.2562845));
        assert_eq!(s.formula(FormulaMode::Hill).unwrap(), "Au2{Au0.50Cu0.50}{Cu0.90X0.10}");
        let d = s.dimensionality(Kernels::REFERENCE);
        assert_eq!((d.dim, d.label(), d.value), (3, "volume", Some(52.734375)));
        assert_eq!(s.kind("nope"), Err(StructureError("Kind name 'nope' unknown".into())));
        let c = s.composition().unwrap();
        assert_eq!(c.elements, ["Au", "Cu"]);
        assert_eq!(c.elements_ratios, [2.5 / 3.9, 1.4 / 3.9]);
        assert_eq!((c.formula_reduced.as_str(), c.formula_anonymous.as_str()), ("Au25Cu14", "A25B14"));
        assert!(c.disorder);
        assert_eq!(c.species[1].chemical_symbols, ["Cu", "vacancy"]);
        assert_eq!(c.species[1].concentration, [0.9, 0.1]);
        assert_eq!(c.species[1].mass, Some(vec![63.546, 0.0]));
        assert_eq!(c.species[0].mass, None);
    }

    #[test]
    fn json_text_reads_as_the_attributes_do() {
        for text in [
            r#"{"cell": [[3.75, 0, 0], [0, 3.75, 0], [0, 0, 3.75]], "pbc1": true, "pbc2": true, "pbc3": false,
                "kinds": [{"mass": 130.25, "name": "CuAu", "symbols": ["Cu", "Au"], "weights": [0.5, 0.5]},
                          {"name": "Cu", "symbols": ["Cu"]}],
                "sites": [{"kind_name": "CuAu", "position": [0.0, 0.0, 0.0]}, {"kind_name": "Cu", "position": [1, 2, 3]}]}"#,
            // Shapes only the general reader takes: a string symbol, a scalar weight, pbc as 1.
            r#"{"cell": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "pbc1": 1, "kinds": [{"name": "A", "symbols": "Si", "weights": 0.5}],
                "sites": [{"kind_name": "A", "position": [0, 0, 0]}]}"#,
            r#"{"cell": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "kinds": [{"name": "A", "symbols": ["Si"], "weights": null, "mass": "x"}]}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(Structure::from_json_text(text), Structure::from_attributes(&value), "{text}");
        }
        assert!(Structure::from_json_text(r#"{"cell": [[1, 0], [0, 1, 0], [0, 0, 1]]}"#).is_err());
        assert!(Structure::from_json_text("not json").is_err());
    }

    #[test]
    fn geometry() {
        let mut s = structure(&["Si", "Si"]);
        s.cell = [[0.0, 2.7155, 2.7155], [2.7155, 0.0, 2.7155], [2.7155, 2.7155, 0.0]];
        s.pbc = [true, true, false];
        s.sites[1].position = [1.355825, 1.35775, 1.35775];
        let k = Kernels::REFERENCE;
        assert_eq!(s.cell_lengths(k), [3.8402969286241397; 3]);
        assert_eq!(s.cell_angles(k), [60.00000000000001; 3]);
        assert_eq!(s.dimensionality(k).dim, 2);
        let frac = s.fractional_positions(k).unwrap();
        assert_eq!(frac[0], [0.0, 0.0, 0.0]);
        assert_eq!(frac[1], [0.25035444669489965, 0.24964555330510038, 0.2496455533051003]);
        assert_eq!(numpy_mod1(-1e-17), 1.0);
        assert_eq!(numpy_mod1(numpy_mod1(-1e-17)), 0.0);
        assert_eq!(numpy_mod1(1.25), 0.25);
        assert_eq!(complete_cell(k, &[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0; 3]])[2], [0.0, 0.0, 1.0]);
    }

    #[test]
    fn optimade_composition() {
        let c = structure(&["C", "H", "H", "H", "O", "C", "H", "H", "H", "O", "O", "O"]).composition().unwrap();
        assert_eq!(c.elements, ["C", "H", "O"]);
        assert_eq!(c.elements_ratios, [2.0 / 12.0, 6.0 / 12.0, 4.0 / 12.0]);
        assert_eq!((c.formula_reduced.as_str(), c.formula_hill.as_str()), ("CH3O2", "C2H6O4"));
        assert_eq!(c.formula_anonymous, "A3B2C");
        assert!(!c.disorder);
        let c = structure(&["Si", "O", "O", "Ti"]).composition().unwrap();
        assert_eq!((c.formula_reduced.as_str(), c.formula_hill.as_str()), ("O2SiTi", "O2SiTi"));
        assert_eq!(c.species.len(), 3);
        assert_eq!(c.species[1].mass, None);
        // AiiDA's "X" (no element) stays a species symbol, and is no element of the formulas.
        let c = structure(&["X", "Si", "Si"]).composition().unwrap();
        assert_eq!((c.elements.as_slice(), c.formula_reduced.as_str()), (["Si".to_string()].as_slice(), "Si"));
        assert_eq!(c.elements_ratios, [1.0]);
        assert_eq!(c.species[0].chemical_symbols, ["X"]);
        assert!(!c.disorder);
        assert_eq!(anonymous_label(0), "A");
        assert_eq!(anonymous_label(25), "Z");
        assert_eq!(anonymous_label(26), "Aa");
        assert_eq!(anonymous_label(27), "Ab");
        assert_eq!(anonymous_label(52), "Ba");
        assert_eq!(whole_counts(&[1.4, 2.5]), [14, 25]);
        assert_eq!(whole_counts(&[1.0 / 3.0, 2.0 / 3.0]), [1, 2]);
    }

    #[test]
    fn elements() {
        assert_eq!(atomic_number("X"), Some(0));
        assert_eq!(atomic_number("O"), Some(8));
        assert_eq!(atomic_number("Fl"), Some(114));
        assert_eq!(atomic_number("Lv"), Some(116));
        assert_eq!(atomic_number("Xx"), None);
        assert_eq!(ELEMENTS[56], "Ba");
    }
}
