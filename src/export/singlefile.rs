//! CifData and UpfData downloads: the stored file (`cif`, `upf`) and the UPF as JSON
//! (`upf_to_json`, the SIRIUS converter aiida-core uses).
//!
//! A complete file gives the converter's JSON key for key. Where the converter fails with a
//! Python exception (a file without `PP_NONLOCAL`, which a potential without projectors need
//! not have, answers `list index out of range` there), sections the file does not have and
//! its header does not announce are left out, as the converter leaves out the optional parts
//! it knows (`core_charge_density`, `augmentation`, `paw_data`). A file that cannot be read
//! is a 400 whose message names the section or line.

use serde_json::Value;

use super::array::Py;
use super::{Export, ExportError, NodeFiles, NodeInfo};

pub fn export_cif(node: &NodeInfo, files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    if format != "cif" {
        return Err(ExportError::Unsupported(format.to_string()));
    }
    // `_prepare_cif` returns the stored bytes unchanged.
    let filename = stored_filename(node)?;
    Ok(Export { content: files.read(&filename)?, filename: Some(filename) })
}

pub fn export_upf(node: &NodeInfo, files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    let filename = stored_filename(node)?;
    let text = read_text(files, &filename)?;
    let content = match format {
        "upf" => text.into_bytes(),
        "json" => upf_to_json(&text, &filename)?.dumps().into_bytes(),
        _ => return Err(ExportError::Unsupported(format.to_string())),
    };
    Ok(Export { content, filename: Some(filename) })
}

fn stored_filename(node: &NodeInfo) -> Result<String, ExportError> {
    node.attributes
        .get("filename")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ExportError::Invalid("the node has no `filename` attribute".into()))
}

/// The file as Python's text mode reads it: strict UTF-8 with universal newlines.
fn read_text(files: &dyn NodeFiles, path: &str) -> Result<String, ExportError> {
    let bytes = files.read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let pos = e.utf8_error().valid_up_to();
        let byte = e.as_bytes()[pos];
        ExportError::Invalid(format!(
            "'utf-8' codec can't decode byte 0x{byte:02x} in position {pos}: invalid start byte"
        ))
    })?;
    Ok(if text.contains('\r') { text.replace("\r\n", "\n").replace('\r', "\n") } else { text })
}

fn err(msg: impl Into<String>) -> ExportError {
    ExportError::Invalid(msg.into())
}

/// Python's `float(s)` for one whitespace-free token.
fn py_float(s: &str) -> Result<f64, ExportError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let parsed = if matches!(unsigned, "inf" | "infinity" | "nan") {
        t.parse::<f64>().ok().or_else(|| {
            let negative = t.starts_with('-');
            let v = if unsigned == "nan" { f64::NAN } else { f64::INFINITY };
            Some(if negative { -v } else { v })
        })
    } else if t.contains('_') {
        // Underscores are allowed between digits only.
        let ok = !t.contains("__")
            && t.split('_').all(|p| !p.is_empty())
            && t.char_indices().filter(|(_, c)| *c == '_').all(|(i, _)| {
                t[..i].ends_with(|c: char| c.is_ascii_digit()) && t[i + 1..].starts_with(|c: char| c.is_ascii_digit())
            });
        if ok { t.replace('_', "").parse::<f64>().ok() } else { None }
    } else if t.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E')) {
        t.parse::<f64>().ok()
    } else {
        None
    };
    parsed.ok_or_else(|| err(format!("could not convert string to float: '{s}'")))
}

/// Python's `int(s)`.
fn py_int(s: &str) -> Result<i64, ExportError> {
    let t = s.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !body.is_empty()
        && !body.starts_with('_')
        && !body.ends_with('_')
        && !body.contains("__")
        && body.chars().all(|c| c.is_ascii_digit() || c == '_');
    ok.then(|| t.replace('_', "").parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| err(format!("invalid literal for int() with base 10: '{s}'")))
}

/// `[float(e) for e in text.split()]`, optionally halved (Ry → Ha).
fn floats(text: &str, scale_half: bool) -> Result<Vec<f64>, ExportError> {
    text.split_whitespace().map(|e| py_float(e).map(|x| if scale_half { x / 2.0 } else { x })).collect()
}

fn float_list(v: &[f64]) -> Py {
    Py::List(v.iter().map(|&x| Py::Float(x)).collect())
}

/// `items[0:stop]` with Python's slice rules.
fn py_prefix<T: Clone>(items: &[T], stop: i64) -> Vec<T> {
    let n = items.len() as i64;
    let stop = if stop < 0 { (n + stop).max(0) } else { stop.min(n) };
    items[..stop as usize].to_vec()
}

fn upf_to_json(text: &str, filename: &str) -> Result<Py, ExportError> {
    let first_line = text.split('\n').next().unwrap_or("");
    let mut doc = if first_line.contains("<PP_INFO>") {
        upf1::parse(text)?
    } else if first_line.contains("UPF version") {
        upf2::parse(text)?
    } else {
        return Err(err(
            "line 1: neither the start of a UPF v2 file (<UPF version=...>) nor of a UPF v1 file (<PP_INFO>)",
        ));
    };
    if let Some(header) = dict_get(&mut doc, &["pseudo_potential", "header"]) {
        dict_set(header, "original_upf_file", Py::str(filename));
    }
    Ok(doc)
}

fn dict_get<'a>(value: &'a mut Py, path: &[&str]) -> Option<&'a mut Py> {
    let mut current = value;
    for key in path {
        let Py::Dict(items) = current else {
            return None;
        };
        current = &mut items.iter_mut().find(|(k, _)| k == key)?.1;
    }
    Some(current)
}

/// `d[key] = value`: replaces in place, or appends.
fn dict_set(dict: &mut Py, key: &str, value: Py) {
    if let Py::Dict(items) = dict {
        match items.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => items.push((key.to_string(), value)),
        }
    }
}

fn str2bool(v: &str) -> bool {
    matches!(v.to_lowercase().as_str(), "yes" | "true" | "t" | "1")
}

/// UPF version 2: XML, read with a small ElementTree-like parser.
mod upf2 {
    use super::*;

    /// A JSON object's entries, in the converter's order.
    type Entries = Vec<(String, Py)>;

    pub(super) struct Element {
        pub tag: String,
        pub attrib: Vec<(String, String)>,
        /// ElementTree's `.text`: the character data before the first child (comments are
        /// skipped and do not split it), `None` if there is none.
        pub text: Option<String>,
        pub children: Vec<Element>,
    }

    impl Element {
        fn attr(&self, key: &str) -> Result<&str, ExportError> {
            self.attrib
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| err(format!("{}: the attribute `{key}` is missing", self.tag)))
        }

        fn has_attr(&self, key: &str) -> bool {
            self.attrib.iter().any(|(k, _)| k == key)
        }

        fn int_attr(&self, key: &str) -> Result<i64, ExportError> {
            py_int(self.attr(key)?).map_err(|e| in_section(&self.tag, &format!("attribute `{key}`: {e}")))
        }

        fn float_attr(&self, key: &str) -> Result<f64, ExportError> {
            py_float(self.attr(key)?).map_err(|e| in_section(&self.tag, &format!("attribute `{key}`: {e}")))
        }

        /// The element at `path` (`A/B`), if the file has it.
        fn find_opt(&self, path: &str) -> Option<&Element> {
            let mut current = self;
            for part in path.split('/') {
                current = current.children.iter().find(|c| c.tag == part)?;
            }
            Some(current)
        }

        /// The element at `path`, which the file must have.
        fn find(&self, path: &str) -> Result<&Element, ExportError> {
            self.find_opt(path).ok_or_else(|| err(format!("the file has no {path} section")))
        }

        /// The numbers of the element's text (none for an empty element), halved for Ry → Ha.
        fn floats(&self, half: bool) -> Result<Vec<f64>, ExportError> {
            floats(self.text.as_deref().unwrap_or(""), half).map_err(|e| in_section(&self.tag, &e.to_string()))
        }
    }

    fn in_section(tag: &str, msg: &str) -> ExportError {
        err(format!("{tag}: {msg}"))
    }

    /// An XML syntax error, with the line it is on.
    fn bad(s: &str, pos: usize, what: &str) -> ExportError {
        let line = s.as_bytes()[..pos.min(s.len())].iter().filter(|&&c| c == b'\n').count() + 1;
        err(format!("invalid XML at line {line}: {what}"))
    }

    /// A minimal XML reader: elements, attributes, character data, CDATA; comments,
    /// processing instructions and the doctype are skipped. Entity references cannot occur
    /// (the converter deletes every `&` first).
    pub(super) fn parse_xml(s: &str) -> Result<Element, ExportError> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        let append_text = |stack: &mut Vec<Element>, t: &str| {
            if let Some(top) = stack.last_mut()
                && top.children.is_empty()
            {
                top.text.get_or_insert_with(String::new).push_str(t);
            }
        };
        while i < b.len() {
            if b[i] != b'<' {
                let end = s[i..].find('<').map_or(b.len(), |p| i + p);
                if stack.is_empty() {
                    if !s[i..end].trim().is_empty() {
                        return Err(bad(s, i, "text outside the root element"));
                    }
                } else {
                    append_text(&mut stack, &s[i..end]);
                }
                i = end;
                continue;
            }
            let rest = &s[i..];
            if rest.starts_with("<!--") {
                i += rest.find("-->").ok_or_else(|| bad(s, i, "unclosed comment"))? + 3;
            } else if rest.starts_with("<![CDATA[") {
                let end = rest.find("]]>").ok_or_else(|| bad(s, i, "unclosed CDATA"))?;
                append_text(&mut stack, &rest[9..end]);
                i += end + 3;
            } else if rest.starts_with("<?") {
                i += rest.find("?>").ok_or_else(|| bad(s, i, "unclosed processing instruction"))? + 2;
            } else if rest.starts_with("<!") {
                i += rest.find('>').ok_or_else(|| bad(s, i, "unclosed declaration"))? + 1;
            } else if let Some(close) = rest.strip_prefix("</") {
                let end = close.find('>').ok_or_else(|| bad(s, i, "unclosed end tag"))?;
                let name = close[..end].trim();
                let element = stack.pop().ok_or_else(|| bad(s, i, "unexpected end tag"))?;
                if element.tag != name {
                    return Err(bad(s, i, &format!("</{name}> closes <{}>", element.tag)));
                }
                i += 2 + end + 1;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            } else {
                let (element, self_closing, next) = start_tag(s, i)?;
                i = next;
                if self_closing {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                } else {
                    if root.is_some() && stack.is_empty() {
                        return Err(bad(s, i, "junk after document element"));
                    }
                    stack.push(element);
                }
            }
        }
        if let Some(open) = stack.last() {
            return Err(bad(s, s.len(), &format!("the file ends inside <{}>", open.tag)));
        }
        root.ok_or_else(|| bad(s, s.len(), "no element found"))
    }

    /// The start tag at byte `i` (`<name attr="value" ...>` or `.../>`): the element (no text
    /// or children yet), whether it closes itself, and the index after the tag.
    fn start_tag(s: &str, i: usize) -> Result<(Element, bool, usize), ExportError> {
        let b = s.as_bytes();
        let mut j = i + 1;
        while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
            j += 1;
        }
        let tag = s[i + 1..j].to_string();
        if tag.is_empty() {
            return Err(bad(s, j, "empty tag name"));
        }
        let mut attrib = Vec::new();
        let self_closing;
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= b.len() {
                return Err(bad(s, j, "unclosed start tag"));
            }
            if b[j] == b'>' {
                self_closing = false;
                j += 1;
                break;
            }
            if s[j..].starts_with("/>") {
                self_closing = true;
                j += 2;
                break;
            }
            let name_start = j;
            while j < b.len() && b[j] != b'=' && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                j += 1;
            }
            let name = s[name_start..j].to_string();
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= b.len() || b[j] != b'=' {
                return Err(bad(s, j, "attribute without value"));
            }
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let quote = *b.get(j).ok_or_else(|| bad(s, j, "unclosed start tag"))?;
            if quote != b'"' && quote != b'\'' {
                return Err(bad(s, j, "unquoted attribute value"));
            }
            let value_end =
                s[j + 1..].find(quote as char).ok_or_else(|| bad(s, j, "unclosed attribute value"))? + j + 1;
            // Attribute-value normalisation: each whitespace character becomes a space.
            let value = s[j + 1..value_end].replace(['\t', '\n', '\r'], " ");
            attrib.push((name, value));
            j = value_end + 1;
        }
        Ok((Element { tag, attrib, text: None, children: Vec::new() }, self_closing, j))
    }

    fn header(root: &Element) -> Result<Entries, ExportError> {
        let node = root.find("PP_HEADER")?;
        Ok(vec![
            ("number_of_proj".into(), Py::Int(node.int_attr("number_of_proj")?)),
            ("core_correction".into(), Py::Bool(str2bool(node.attr("core_correction")?))),
            ("element".into(), Py::str(node.attr("element")?.trim())),
            ("pseudo_type".into(), Py::str(node.attr("pseudo_type")?)),
            ("z_valence".into(), Py::Float(node.float_attr("z_valence")?)),
            ("mesh_size".into(), Py::Int(node.int_attr("mesh_size")?)),
            ("is_ultrasoft".into(), Py::Bool(str2bool(node.attr("is_ultrasoft")?))),
            ("number_of_wfc".into(), Py::Int(node.int_attr("number_of_wfc")?)),
            ("spin_orbit".into(), Py::Bool(str2bool(node.attr("has_so")?))),
        ])
    }

    fn int_of(header: &[(String, Py)], key: &str) -> i64 {
        match header.iter().find(|(k, _)| k == key) {
            Some((_, Py::Int(n))) => *n,
            _ => 0,
        }
    }

    fn bool_of(header: &[(String, Py)], key: &str) -> bool {
        matches!(header.iter().find(|(k, _)| k == key), Some((_, Py::Bool(true))))
    }

    /// `upf_to_json` for a UPF v2 file, key for key as the converter writes a complete file.
    /// Sections the file does not have and its header does not announce are left out
    /// (`PP_LOCAL` of a Coulomb potential, `PP_NONLOCAL` without projectors, `PP_RHOATOM`);
    /// sections the header announces (projectors, wave functions, core correction,
    /// augmentation, PAW, spin-orbit) must be there, and an error names the one that is not.
    pub(super) fn parse(text: &str) -> Result<Py, ExportError> {
        let root = parse_xml(&text.replace('&', ""))?;
        let mut header = header(&root)?;
        let nproj = int_of(&header, "number_of_proj");
        let spin_orbit = bool_of(&header, "spin_orbit");

        let mut pp: Entries = Vec::new();
        pp.push(("radial_grid".into(), float_list(&root.find("PP_MESH/PP_R")?.floats(false)?)));
        if bool_of(&header, "core_correction") {
            let nlcc = root
                .find_opt("PP_NLCC")
                .ok_or_else(|| err("PP_HEADER has core_correction=\"T\" but the file has no PP_NLCC section"))?;
            pp.push(("core_charge_density".into(), float_list(&nlcc.floats(false)?)));
        }
        if let Some(local) = root.find_opt("PP_LOCAL") {
            pp.push(("local_potential".into(), float_list(&local.floats(true)?)));
        }
        let (mut betas, beta_l) = beta_projectors(&root, nproj, spin_orbit)?;
        let dij = match root.find_opt("PP_NONLOCAL/PP_DIJ") {
            Some(node) => Some(node.floats(true)?),
            None if nproj > 0 => {
                return Err(err(format!(
                    "PP_HEADER has number_of_proj=\"{nproj}\" but the file has no PP_NONLOCAL/PP_DIJ section"
                )));
            }
            None => None,
        };
        let augmentation = if bool_of(&header, "is_ultrasoft") { Some(augmentation(&root, &beta_l)?) } else { None };
        let is_paw = matches!(header.iter().find(|(k, _)| k == "pseudo_type"), Some((_, Py::Str(t))) if t == "PAW");
        let paw = if is_paw { Some(paw_data(&root, nproj, &mut header)?) } else { None };
        let wfcs = atomic_wave_functions(&root, int_of(&header, "number_of_wfc"), spin_orbit)?;
        if spin_orbit {
            relativistic_projectors(&root, &mut betas)?;
        }
        let rho = root.find_opt("PP_RHOATOM").map(|node| node.floats(false)).transpose()?;

        pp.insert(0, ("header".into(), Py::Dict(header)));
        pp.push(("beta_projectors".into(), Py::List(betas.into_iter().map(Py::Dict).collect())));
        if let Some(dij) = dij {
            pp.push(("D_ion".into(), float_list(&dij)));
        }
        if let Some(list) = augmentation {
            pp.push(("augmentation".into(), Py::List(list)));
        }
        if let Some(data) = paw {
            pp.push(("paw_data".into(), Py::Dict(data)));
        }
        pp.push(("atomic_wave_functions".into(), Py::List(wfcs)));
        if let Some(rho) = rho {
            pp.push(("total_charge_density".into(), float_list(&rho)));
        }
        Ok(Py::Dict(vec![("pseudo_potential".into(), Py::Dict(pp))]))
    }

    /// The `i`-th (1-based) numbered element `PARENT/TAG.i` that the header's `count_key`
    /// announces.
    fn numbered<'a>(
        root: &'a Element,
        parent: &str,
        tag: &str,
        i: i64,
        count_key: &str,
        count: i64,
    ) -> Result<&'a Element, ExportError> {
        root.find_opt(&format!("{parent}/{tag}.{i}")).ok_or_else(|| {
            err(format!("PP_HEADER has {count_key}=\"{count}\" but the file has no {parent}/{tag}.{i} section"))
        })
    }

    /// `PP_NONLOCAL/PP_BETA.n`: the projectors (cut at their cutoff radius) and their angular
    /// momenta.
    fn beta_projectors(root: &Element, nproj: i64, spin_orbit: bool) -> Result<(Vec<Entries>, Vec<i64>), ExportError> {
        let mut betas: Vec<Entries> = Vec::new();
        let mut beta_l: Vec<i64> = Vec::new();
        for i in 0..nproj.max(0) {
            let node = numbered(root, "PP_NONLOCAL", "PP_BETA", i + 1, "number_of_proj", nproj)?;
            let beta = node.floats(false)?;
            let nr = if node.has_attr("cutoff_radius_index") {
                node.int_attr("cutoff_radius_index")?
            } else {
                // The converter's tail cut: minus the count of trailing values <= 1e-80 (so an
                // array with no such tail becomes empty), or the full length.
                match beta.iter().rev().position(|&v| v > 1e-80) {
                    Some(idx) => -(idx as i64),
                    None => beta.len() as i64,
                }
            };
            let mut entry = vec![("radial_function".to_string(), float_list(&py_prefix(&beta, nr)))];
            if node.has_attr("label") {
                entry.push(("label".into(), Py::str(node.attr("label")?)));
            }
            let l = node.int_attr("angular_momentum")?;
            entry.push(("angular_momentum".into(), Py::Int(l)));
            beta_l.push(l);
            if spin_orbit {
                let rel = numbered(root, "PP_SPIN_ORB", "PP_RELBETA", i + 1, "number_of_proj", nproj)?;
                entry.push(("total_angular_momentum".into(), Py::Float(rel.float_attr("jjj")?)));
            }
            betas.push(entry);
        }
        Ok((betas, beta_l))
    }

    /// `PP_AUGMENTATION/PP_QIJL.i.j.l` of an ultrasoft pseudopotential, for each pair of
    /// projectors and each `l` their angular momenta couple to.
    fn augmentation(root: &Element, beta_l: &[i64]) -> Result<Vec<Py>, ExportError> {
        let node = root.find_opt("PP_NONLOCAL/PP_AUGMENTATION").ok_or_else(|| {
            err("PP_HEADER has is_ultrasoft=\"T\" but the file has no PP_NONLOCAL/PP_AUGMENTATION section")
        })?;
        if !matches!(node.attr("q_with_l")?.to_lowercase().as_str(), "t" | "true") {
            return Err(err("PP_AUGMENTATION: q_with_l=\"F\" (Q_ij without l) cannot be converted"));
        }
        let mut list = Vec::new();
        for (i, &li) in beta_l.iter().enumerate() {
            for (j, &lj) in beta_l.iter().enumerate().skip(i) {
                for l in (li - lj).abs()..=li + lj {
                    if (li + lj + l) % 2 != 0 {
                        continue;
                    }
                    let path = format!("PP_NONLOCAL/PP_AUGMENTATION/PP_QIJL.{}.{}.{}", i + 1, j + 1, l);
                    let q = root.find(&path)?;
                    let radial = q.floats(false)?;
                    let am = q.int_attr("angular_momentum")?;
                    if am != l {
                        return Err(in_section(&q.tag, &format!("angular_momentum=\"{am}\", expected {l}")));
                    }
                    list.push(Py::Dict(vec![
                        ("radial_function".into(), float_list(&radial)),
                        ("i".into(), Py::Int(i as i64)),
                        ("j".into(), Py::Int(j as i64)),
                        ("angular_momentum".into(), Py::Int(am)),
                    ]));
                }
            }
        }
        Ok(list)
    }

    /// The PAW data; adds `cutoff_radius_index` and `paw_core_energy` to the header.
    fn paw_data(root: &Element, nproj: i64, header: &mut Entries) -> Result<Entries, ExportError> {
        let aug = root.find("PP_NONLOCAL/PP_AUGMENTATION")?;
        header.push(("cutoff_radius_index".into(), Py::Int(aug.int_attr("cutoff_r_index")?)));
        let mut data = vec![
            ("aug_integrals".to_string(), float_list(&root.find("PP_NONLOCAL/PP_AUGMENTATION/PP_Q")?.floats(false)?)),
            (
                "aug_multipoles".to_string(),
                float_list(&root.find("PP_NONLOCAL/PP_AUGMENTATION/PP_MULTIPOLES")?.floats(false)?),
            ),
        ];
        for (key, tag) in [("ae_wfc", "PP_AEWFC"), ("ps_wfc", "PP_PSWFC")] {
            let mut wfcs = Vec::new();
            for i in 0..nproj.max(0) {
                let node = numbered(root, "PP_FULL_WFC", tag, i + 1, "number_of_proj", nproj)?;
                wfcs.push(Py::Dict(vec![
                    ("radial_function".into(), float_list(&node.floats(false)?)),
                    ("angular_momentum".into(), Py::Int(node.int_attr("l")?)),
                ]));
            }
            data.push((key.to_string(), Py::List(wfcs)));
        }
        let node = root.find("PP_PAW")?;
        if node.has_attr("core_energy") {
            header.push(("paw_core_energy".into(), Py::Float(node.float_attr("core_energy")? / 2.0)));
        }
        for (key, tag, half) in [
            ("occupations", "PP_PAW/PP_OCCUPATIONS", false),
            ("ae_core_charge_density", "PP_PAW/PP_AE_NLCC", false),
            ("ae_local_potential", "PP_PAW/PP_AE_VLOC", true),
        ] {
            let node = root.find(tag)?;
            let values = node.floats(half)?;
            if node.has_attr("size") && node.int_attr("size")? != values.len() as i64 {
                return Err(in_section(
                    &node.tag,
                    &format!("size=\"{}\" but it holds {} values", node.attr("size")?, values.len()),
                ));
            }
            data.push((key.to_string(), float_list(&values)));
        }
        Ok(data)
    }

    /// `PP_PSWFC/PP_CHI.n`: the pseudo wave functions.
    fn atomic_wave_functions(root: &Element, nwfc: i64, spin_orbit: bool) -> Result<Vec<Py>, ExportError> {
        let mut wfcs = Vec::new();
        for i in 0..nwfc.max(0) {
            let node = numbered(root, "PP_PSWFC", "PP_CHI", i + 1, "number_of_wfc", nwfc)?;
            let mut wfc = vec![
                ("radial_function".to_string(), float_list(&node.floats(false)?)),
                ("angular_momentum".to_string(), Py::Int(node.int_attr("l")?)),
                ("occupation".to_string(), Py::Float(node.float_attr("occupation")?)),
            ];
            if spin_orbit {
                let rel = numbered(root, "PP_SPIN_ORB", "PP_RELWFC", i + 1, "number_of_wfc", nwfc)?;
                wfc.push(("total_angular_momentum".into(), Py::Float(rel.float_attr("jchi")?)));
            }
            wfcs.push(Py::Dict(wfc));
        }
        Ok(wfcs)
    }

    /// Spin-orbit: the projectors' `l` becomes the float `lll` (in place) and `jjj` is set
    /// again.
    fn relativistic_projectors(root: &Element, betas: &mut [Entries]) -> Result<(), ExportError> {
        let nproj = betas.len() as i64;
        for (i, beta) in betas.iter_mut().enumerate() {
            let rel = numbered(root, "PP_SPIN_ORB", "PP_RELBETA", i as i64 + 1, "number_of_proj", nproj)?;
            let lll = rel.float_attr("lll")?;
            let jjj = rel.float_attr("jjj")?;
            let mut b = Py::Dict(std::mem::take(beta));
            dict_set(&mut b, "angular_momentum", Py::Float(lll));
            dict_set(&mut b, "total_angular_momentum", Py::Float(jjj));
            if let Py::Dict(items) = b {
                *beta = items;
            }
        }
        Ok(())
    }
}

/// UPF version 1: tagged plain-text sections read line by line.
mod upf1 {
    use super::*;

    /// `io.StringIO(text)` with `readline()`: lines keep their `\n`; `""` at the end. Knows
    /// the number of the last line read and the section it is in, for error messages.
    struct Lines<'a> {
        text: &'a str,
        pos: usize,
        line: usize,
        section: &'static str,
    }

    /// The words of one line, with where they are.
    struct Words<'a> {
        items: Vec<&'a str>,
        at: String,
    }

    impl<'a> Words<'a> {
        fn fail(&self, msg: impl std::fmt::Display) -> ExportError {
            err(format!("{}: {msg}", self.at))
        }

        fn get(&self, i: usize) -> Result<&'a str, ExportError> {
            self.items.get(i).copied().ok_or_else(|| self.fail(format!("expected at least {} values", i + 1)))
        }

        fn int(&self, i: usize) -> Result<i64, ExportError> {
            py_int(self.get(i)?).map_err(|e| self.fail(e))
        }

        fn float(&self, i: usize) -> Result<f64, ExportError> {
            py_float(self.get(i)?).map_err(|e| self.fail(e))
        }
    }

    impl<'a> Lines<'a> {
        fn new(text: &'a str) -> Self {
            Lines { text, pos: 0, line: 0, section: "" }
        }

        fn readline(&mut self) -> &'a str {
            let rest = &self.text[self.pos..];
            let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
            self.pos += end;
            if end > 0 {
                self.line += 1;
            }
            &rest[..end]
        }

        fn at(&self) -> String {
            format!("line {} ({})", self.line, self.section)
        }

        fn fail(&self, msg: impl std::fmt::Display) -> ExportError {
            err(format!("{}: {msg}", self.at()))
        }

        fn words(&mut self) -> Words<'a> {
            let items = self.readline().split_whitespace().collect();
            Words { items, at: self.at() }
        }

        /// Skips past the first line containing `tag`, which the file must have.
        fn read_until(&mut self, tag: &'static str) -> Result<(), ExportError> {
            if self.find(tag) {
                Ok(())
            } else {
                Err(err(format!("the file has no {tag} section after line {}", self.line)))
            }
        }

        /// Skips past the first line containing `tag`; `false` (at the end) if there is none.
        fn find(&mut self, tag: &'static str) -> bool {
            let start = self.line;
            loop {
                let line = self.readline();
                if line.is_empty() {
                    self.line = start.max(self.line);
                    return false;
                }
                if line.contains(tag) {
                    self.section = tag;
                    return true;
                }
            }
        }

        /// Reads whole lines of numbers until exactly `n` values are collected.
        fn mesh(&mut self, n: i64) -> Result<Vec<f64>, ExportError> {
            let mut out = Vec::new();
            loop {
                let line = self.readline();
                for w in line.split_whitespace() {
                    out.push(py_float(w).map_err(|e| self.fail(e))?);
                }
                if out.len() as i64 == n {
                    return Ok(out);
                }
                // The converter would loop forever here.
                if line.is_empty() || out.len() as i64 > n {
                    return Err(self.fail(format!("expected {n} values, found {}", out.len())));
                }
            }
        }
    }

    /// Whether some line of `text` contains `tag`.
    fn has_section(text: &str, tag: &str) -> bool {
        text.split('\n').any(|line| line.contains(tag))
    }

    /// The `PP_HEADER` fields the converter reads.
    struct Header {
        element: String,
        pseudo_type: String,
        core_correction: bool,
        z_valence: f64,
        l_max: i64,
        mesh_size: i64,
        nwfc: i64,
        nproj: i64,
    }

    impl Header {
        /// The header: one value per line, in a fixed order, some lines skipped.
        fn read(text: &str) -> Result<Header, ExportError> {
            let mut f = Lines::new(text);
            f.read_until("<PP_HEADER>")?;
            f.readline(); // version
            let element = f.words().get(0)?.trim().to_string();
            let pseudo_type = f.words().get(0)?.to_string();
            let core_correction = f.words().get(0)?.starts_with(['T', 't']);
            f.readline(); // functional
            let z_valence = f.words().float(0)?;
            f.readline(); // total energy
            f.readline(); // cutoffs
            let l_max = f.words().int(0)?;
            let mesh_size = f.words().int(0)?;
            let w = f.words();
            let nwfc = w.int(0)?;
            let nproj = w.int(1)?;
            Ok(Header { element, pseudo_type, core_correction, z_valence, l_max, mesh_size, nwfc, nproj })
        }

        fn to_py(&self) -> Py {
            Py::Dict(vec![
                ("element".to_string(), Py::str(&self.element)),
                ("pseudo_type".to_string(), Py::str(&self.pseudo_type)),
                // `(c == 'T' or c == 't') or 0`: True, or the integer 0.
                ("core_correction".to_string(), if self.core_correction { Py::Bool(true) } else { Py::Int(0) }),
                ("z_valence".to_string(), Py::Float(self.z_valence)),
                ("l_max".to_string(), Py::Int(self.l_max)),
                ("mesh_size".to_string(), Py::Int(self.mesh_size)),
                ("number_of_wfc".to_string(), Py::Int(self.nwfc)),
                ("number_of_proj".to_string(), Py::Int(self.nproj)),
            ])
        }
    }

    /// `upf_to_json` for a UPF v1 file, key for key as the converter writes a complete file.
    /// Each section is searched from the start of the file (the non-local part and the
    /// augmentation are read in one pass), in the converter's order. Sections the file does
    /// not have and its header does not announce (`PP_LOCAL`, `PP_NONLOCAL` without
    /// projectors, `PP_PSWFC` without wave functions, `PP_RHOATOM`) are left out; errors name
    /// the line and section.
    pub(super) fn parse(text: &str) -> Result<Py, ExportError> {
        let h = Header::read(text)?;
        let mut f = Lines::new(text);
        f.read_until("<PP_R>")?;
        let radial_grid = f.mesh(h.mesh_size)?;
        f.read_until("<PP_RAB>")?;

        let mut pp: Vec<(String, Py)> =
            vec![("header".into(), h.to_py()), ("radial_grid".into(), float_list(&radial_grid))];
        if h.core_correction {
            if !has_section(text, "<PP_NLCC>") {
                return Err(err("PP_HEADER announces a core correction but the file has no <PP_NLCC> section"));
            }
            pp.push(("core_charge_density".into(), float_list(&section(text, "<PP_NLCC>", h.mesh_size)?)));
        }
        if has_section(text, "<PP_LOCAL>") {
            let vloc: Vec<f64> = section(text, "<PP_LOCAL>", h.mesh_size)?.iter().map(|v| v / 2.0).collect();
            pp.push(("local_potential".into(), float_list(&vloc)));
        }

        let mut f = Lines::new(text);
        if f.find("<PP_NONLOCAL>") {
            let (betas, beta_l) = beta_projectors(&mut f, h.nproj)?;
            pp.push(("beta_projectors".into(), Py::List(betas)));
            if h.nproj > 0 || has_section(text, "<PP_DIJ>") {
                pp.push(("D_ion".into(), Py::List(d_ion(&mut f, beta_l.len())?)));
            }
            if h.pseudo_type == "US" {
                pp.push(("augmentation".into(), Py::List(augmentation(&mut f, &h, &beta_l, &radial_grid)?)));
            }
        } else if h.nproj > 0 {
            return Err(err(format!(
                "PP_HEADER announces {} projectors but the file has no <PP_NONLOCAL> section",
                h.nproj
            )));
        } else {
            pp.push(("beta_projectors".into(), Py::List(Vec::new())));
        }

        pp.push(("atomic_wave_functions".into(), Py::List(atomic_wave_functions(text, &h)?)));
        if has_section(text, "<PP_RHOATOM>") {
            pp.push(("total_charge_density".into(), float_list(&section(text, "<PP_RHOATOM>", h.mesh_size)?)));
        }
        Ok(Py::Dict(vec![("pseudo_potential".into(), Py::Dict(pp))]))
    }

    /// The `n` numbers after the first line containing `tag`.
    fn section(text: &str, tag: &'static str, n: i64) -> Result<Vec<f64>, ExportError> {
        let mut f = Lines::new(text);
        f.read_until(tag)?;
        f.mesh(n)
    }

    /// The `PP_BETA` blocks: the projectors and their angular momenta.
    fn beta_projectors(f: &mut Lines, nproj: i64) -> Result<(Vec<Py>, Vec<i64>), ExportError> {
        let mut betas = Vec::new();
        let mut beta_l = Vec::new();
        for _ in 0..nproj.max(0) {
            f.read_until("<PP_BETA>")?;
            let l = f.words().int(1)?;
            let nr = f.words().int(0)?;
            let beta = f.mesh(nr)?;
            beta_l.push(l);
            betas.push(Py::Dict(vec![
                ("label".into(), Py::str("")),
                ("angular_momentum".into(), Py::Int(l)),
                ("radial_function".into(), float_list(&beta)),
                ("cutoff_radius".into(), Py::Float(0.0)),
                ("ultrasoft_cutoff_radius".into(), Py::Float(0.0)),
            ]));
        }
        Ok((betas, beta_l))
    }

    /// `PP_DIJ`: the nonzero entries (in Ha) of the symmetric `nb`×`nb` matrix, flattened with
    /// Python's list indexing (negative indices count from the end).
    fn d_ion(f: &mut Lines, nb: usize) -> Result<Vec<Py>, ExportError> {
        // Unset entries stay the integer 0.
        let mut dij: Vec<Py> = vec![Py::Int(0); nb * nb];
        f.read_until("<PP_DIJ>")?;
        let nd = f.words().int(0)?;
        for _ in 0..nd.max(0) {
            let w = f.words();
            let i = w.int(0)? - 1;
            let j = w.int(1)? - 1;
            let value = w.float(2)? / 2.0;
            for index in [i * nb as i64 + j, j * nb as i64 + i] {
                let len = dij.len() as i64;
                let slot = if index < 0 { index + len } else { index };
                if !(0..len).contains(&slot) {
                    return Err(w.fail(format!("the entry ({}, {}) is outside the {nb}×{nb} matrix", i + 1, j + 1)));
                }
                dij[slot as usize] = Py::Float(value);
            }
        }
        Ok(dij)
    }

    /// `PP_QIJ` of an ultrasoft pseudopotential, read on from the end of `PP_DIJ`: for each pair
    /// of projectors, Q_ij on the radial grid and, with `nqf > 0`, its pseudized form for each
    /// `l` their angular momenta couple to.
    fn augmentation(f: &mut Lines, h: &Header, beta_l: &[i64], radial_grid: &[f64]) -> Result<Vec<Py>, ExportError> {
        let mut augmentation = Vec::new();
        f.read_until("<PP_QIJ>")?;
        let nq = f.words().int(0)?;
        let mut r_inner = Vec::new();
        if nq != 0 {
            f.read_until("<PP_RINNER>")?;
            for _ in 0..(2 * h.l_max + 1).max(0) {
                r_inner.push(f.words().float(1)?);
            }
            f.read_until("</PP_RINNER>")?;
            f.section = "<PP_QIJ>";
        }
        for (i, &li) in beta_l.iter().enumerate() {
            for (j, &lj) in beta_l.iter().enumerate().skip(i) {
                let w = f.words();
                if w.int(2)? != lj {
                    return Err(w.fail(format!("l(j) is not {lj}, the angular momentum of projector {}", j + 1)));
                }
                if w.int(0)? != i as i64 + 1 || w.int(1)? != j as i64 + 1 {
                    return Err(w.fail(format!("expected the indices {} {}", i + 1, j + 1)));
                }
                f.readline();
                let qij = f.mesh(h.mesh_size)?;
                if nq > 0 {
                    f.read_until("<PP_QFCOEF>")?;
                    let coefs = f.mesh(nq * (2 * h.l_max + 1))?;
                    f.read_until("</PP_QFCOEF>")?;
                    f.section = "<PP_QIJ>";
                    for l in (li - lj).abs()..=li + lj {
                        if (li + lj + l) % 2 != 0 {
                            continue;
                        }
                        let rin = *r_inner.get(l as usize).ok_or_else(|| {
                            err(format!("<PP_RINNER> has no radius for l = {l} (l_max is {})", h.l_max))
                        })?;
                        let coefs_l = &coefs[(l * nq) as usize..((l + 1) * nq) as usize];
                        augmentation.push(Py::Dict(vec![
                            ("radial_function".into(), float_list(&pseudized_qij(&qij, radial_grid, coefs_l, rin, l))),
                            ("i".into(), Py::Int(i as i64)),
                            ("j".into(), Py::Int(j as i64)),
                            ("angular_momentum".into(), Py::Int(l)),
                        ]));
                    }
                }
            }
        }
        Ok(augmentation)
    }

    /// Q_ij inside `r_inner`: `x^(l+2) · Σ_n c_n x^(2n)` replaces the tabulated values.
    fn pseudized_qij(qij: &[f64], radial_grid: &[f64], coefs: &[f64], r_inner: f64, l: i64) -> Vec<f64> {
        let mut fixed = qij.to_vec();
        for (ir, value) in fixed.iter_mut().enumerate() {
            let x = radial_grid[ir];
            let x2 = x * x;
            if x < r_inner {
                *value = coefs[0];
                for (n, c) in coefs.iter().enumerate().skip(1) {
                    *value += c * x2.powf(n as f64);
                }
                *value *= x.powf((l + 2) as f64);
            }
        }
        fixed
    }

    /// `PP_PSWFC`: the pseudo wave functions, each a label line and its values.
    fn atomic_wave_functions(text: &str, h: &Header) -> Result<Vec<Py>, ExportError> {
        let mut f = Lines::new(text);
        if h.nwfc <= 0 && !has_section(text, "<PP_PSWFC>") {
            return Ok(Vec::new());
        }
        f.read_until("<PP_PSWFC>")?;
        let mut wfcs = Vec::new();
        for _ in 0..h.nwfc.max(0) {
            let w = f.words();
            let label = w.get(0)?.to_string();
            let l = w.int(1)?;
            let occupation = w.float(2)?;
            let radial = f.mesh(h.mesh_size)?;
            wfcs.push(Py::Dict(vec![
                ("label".into(), Py::Str(label)),
                ("angular_momentum".into(), Py::Int(l)),
                ("occupation".into(), Py::Float(occupation)),
                ("radial_function".into(), float_list(&radial)),
            ]));
        }
        Ok(wfcs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::array::testutil::{golden, load, sha256_hex};
    use super::*;

    #[test]
    fn cif_is_the_stored_file() {
        for (uuid, name) in [
            ("7405ac80-1a09-43f5-b6d1-964ae207b919", "Si.cif"),
            ("831b781b-148e-46c7-97c4-4750dee93f8c", "tmpfbpsvdv2"),
        ] {
            let (node, files) = load(uuid);
            let out = export_cif(&node, &files, "cif").unwrap();
            assert_eq!(out.filename.as_deref(), Some(name));
            let (raw, sha) = golden(&format!("/api/v4/nodes/{uuid}/download?download_format=cif"));
            assert_eq!(sha256_hex(&out.content), sha, "{uuid}");
            assert_eq!(Some(out.content), raw);
        }
    }

    #[test]
    fn upf_file_and_json() {
        // The fixture's file (1408 bytes) has no projectors and no PP_NONLOCAL: the reference
        // fails ("list index out of range", a 500); the sections it has are converted.
        let (node, files) = load("0975f729-970f-497d-bd5c-67ac6f43c890");
        let out = export_upf(&node, &files, "upf").unwrap();
        assert_eq!(out.filename.as_deref(), Some("Si.pbe-nc-fixture.UPF"));
        assert_eq!(out.content.len(), 1408);
        assert!(out.content.starts_with(b"<UPF version=\"2.0.1\">\n  <PP_INFO>\n"));
        let json = export_upf(&node, &files, "json").unwrap();
        let expected = r#"{"pseudo_potential": {"header": {"number_of_proj": 0, "core_correction": false, "element": "Si", "pseudo_type": "NC", "z_valence": 12.0, "mesh_size": 4, "is_ultrasoft": false, "number_of_wfc": 0, "spin_orbit": false, "original_upf_file": "Si.pbe-nc-fixture.UPF"}, "radial_grid": [0.0, 0.001, 0.002, 0.003], "local_potential": [-6.0, -6.0, -6.0, -6.0], "beta_projectors": [], "atomic_wave_functions": [], "total_charge_density": [0.0, 0.0, 0.0, 0.0]}}"#;
        assert_eq!(String::from_utf8(json.content).unwrap(), expected);
    }

    #[test]
    fn every_fixture_upf_converts() {
        // The twelve UpfData of the fixture, all without PP_NONLOCAL and PP_PSWFC.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ref-profile/database.sqlite");
        let db = rusqlite::Connection::open_with_flags(root, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut stmt = db.prepare("SELECT uuid FROM db_dbnode WHERE node_type = 'data.core.upf.UpfData.'").unwrap();
        let uuids: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(uuids.len(), 12);
        for uuid in uuids {
            let (node, files) = load(&uuid);
            let json = export_upf(&node, &files, "json").unwrap_or_else(|e| panic!("{uuid}: {e}"));
            let value: Value = serde_json::from_slice(&json.content).unwrap();
            let pp = &value["pseudo_potential"];
            assert_eq!(pp["header"]["element"], node.attributes["element"], "{uuid}");
            assert_eq!(pp["beta_projectors"], serde_json::json!([]), "{uuid}");
            assert!(pp.get("D_ion").is_none(), "{uuid}");
            assert_eq!(pp["radial_grid"].as_array().unwrap().len(), 4, "{uuid}");
        }
    }

    /// Complete files of both versions (tests/fixtures/exporters-upf, written by
    /// `exporters_make_upf.py` in the generators' layout): the JSON is the converter's, byte
    /// for byte (the `.json` files were written by aiida-core's `upf_to_json`).
    #[test]
    fn complete_files_match_the_converter() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exporters-upf");
        let mut seen = 0;
        for name in ["Si.oncv-nc.upf2.UPF", "O.ld1-us.upf2.UPF", "Al.nc.upf1.UPF"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let expected = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
            let got = upf_to_json(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got.dumps(), expected.trim_end(), "{name}");
            seen += 1;
        }
        assert_eq!(seen, 3);
    }

    #[test]
    fn absent_optional_sections_are_left_out() {
        let answer = |text: &str| upf_to_json(text, "f.UPF").map(|p| p.dumps()).map_err(|e| e.to_string());
        // A Coulomb potential: no PP_LOCAL; no projectors, no PP_NONLOCAL; no PP_RHOATOM.
        let coulomb = UPF2
            .replace(r#"number_of_proj="2""#, r#"number_of_proj="0""#)
            .replace("  <PP_LOCAL size=\"4\">-1.0 -2.0 -3.0 -4.0</PP_LOCAL>\n", "");
        let start = coulomb.find("  <PP_NONLOCAL>").unwrap();
        let end = coulomb.find("  <PP_PSWFC>").unwrap();
        let coulomb = format!("{}{}", &coulomb[..start], &coulomb[end..]);
        let start = coulomb.find("  <PP_RHOATOM").unwrap();
        let coulomb = format!("{}</UPF>\n", &coulomb[..start]);
        let json = answer(&coulomb).unwrap();
        for absent in ["local_potential", "D_ion", "total_charge_density"] {
            assert!(!json.contains(absent), "{absent}: {json}");
        }
        assert!(json.contains(r#""beta_projectors": [], "atomic_wave_functions": [{"#), "{json}");

        // UPF v1 without PP_NONLOCAL (no projectors) and without PP_PSWFC (no wave functions).
        let v1 = UPF1.replace(
            "    1    1             Number of Wavefunctions",
            "    0    0             Number of Wavefunctions",
        );
        let start = v1.find("  <PP_NONLOCAL>").unwrap();
        let end = v1.find("  <PP_RHOATOM>").unwrap();
        let v1 = format!("{}{}", &v1[..start], &v1[end..]);
        let json = answer(&v1).unwrap();
        assert!(
            json.contains(r#""beta_projectors": [], "atomic_wave_functions": [], "total_charge_density""#),
            "{json}"
        );
        assert!(!json.contains("D_ion"), "{json}");
    }

    #[test]
    fn unreadable_files_name_the_section_or_line() {
        let answer = |text: &str| upf_to_json(text, "f.UPF").map(|p| p.dumps()).unwrap_err().to_string();
        // Projectors announced, none there.
        let start = UPF2.find("  <PP_NONLOCAL>").unwrap();
        let end = UPF2.find("  <PP_PSWFC>").unwrap();
        let no_nonlocal = format!("{}{}", &UPF2[..start], &UPF2[end..]);
        assert_eq!(
            answer(&no_nonlocal),
            r#"PP_HEADER has number_of_proj="2" but the file has no PP_NONLOCAL/PP_BETA.1 section"#
        );
        assert_eq!(
            answer(&UPF2.replace("0.5 0.25 0.125", "0.5 x 0.125")),
            "PP_CHI.1: could not convert string to float: 'x'"
        );
        assert_eq!(answer(&UPF2.replace("mesh_size=\"4\"", "")), "PP_HEADER: the attribute `mesh_size` is missing");
        assert_eq!(
            answer(&UPF2.replace("</PP_LOCAL>", "</PP_LOCA>")),
            "invalid XML at line 14: </PP_LOCA> closes <PP_LOCAL>"
        );
        assert_eq!(answer(&UPF2.replace("</UPF>\n", "")), "invalid XML at line 24: the file ends inside <UPF>");
        assert_eq!(
            answer("garbage\n"),
            "line 1: neither the start of a UPF v2 file (<UPF version=...>) nor of a UPF v1 file (<PP_INFO>)"
        );
        // UPF v1: the line and its section.
        assert_eq!(
            answer(&UPF1.replace("  -1.0 -2.0 -3.0", "  -1.0 -2.0")),
            "line 29 (<PP_LOCAL>): could not convert string to float: '</PP_LOCAL>'"
        );
        assert_eq!(
            answer(&UPF1.replace("  0.5 0.25\n", "  0.5 0.2x5\n")),
            "line 34 (<PP_BETA>): could not convert string to float: '0.2x5'"
        );
        assert_eq!(
            answer(&UPF1.replace("    1    1  4.0", "    1    3  4.0")),
            "line 38 (<PP_DIJ>): the entry (1, 3) is outside the 1×1 matrix"
        );
        let start = UPF1.find("  <PP_NONLOCAL>").unwrap();
        let end = UPF1.find("  <PP_PSWFC>").unwrap();
        assert_eq!(
            answer(&format!("{}{}", &UPF1[..start], &UPF1[end..])),
            "PP_HEADER announces 1 projectors but the file has no <PP_NONLOCAL> section"
        );
    }

    const UPF2: &str = r#"<UPF version="2.0.1">
  <PP_INFO>
    generated by hand <PP_INPUTFILE>&input
/</PP_INPUTFILE>
  </PP_INFO>
  <!-- comment -->
  <PP_HEADER element=" Si" pseudo_type="NC" is_ultrasoft="F" core_correction="T" z_valence="4.0"
     mesh_size="4" number_of_wfc="1" number_of_proj="2" has_so="F"/>
  <PP_MESH>
    <PP_R size="4"> 0.0 1.0E-3
      2.0E-3 3.0e-3 </PP_R>
  </PP_MESH>
  <PP_NLCC size="4">1 2 3 4</PP_NLCC>
  <PP_LOCAL size="4">-1.0 -2.0 -3.0 -4.0</PP_LOCAL>
  <PP_NONLOCAL>
    <PP_BETA.1 angular_momentum="0" cutoff_radius_index="3" label="3S">0.1 0.2 0.3 0.4</PP_BETA.1>
    <PP_BETA.2 angular_momentum="1">0.5 1e-90 0.0 0.0</PP_BETA.2>
    <PP_DIJ>1.0 0.0 0.0 3.0</PP_DIJ>
  </PP_NONLOCAL>
  <PP_PSWFC>
    <PP_CHI.1 l="0" occupation="2.00" label="3S">0.5 0.25 0.125 0.0625</PP_CHI.1>
  </PP_PSWFC>
  <PP_RHOATOM size="4">0.0 0.1 0.2 0.3</PP_RHOATOM>
</UPF>
"#;

    #[test]
    fn upf2_to_json_matches_converter() {
        // Expected text produced by `json.dumps(upf_to_json(UPF2, fname='x.UPF'))` in the
        // reference venv.
        let expected = r#"{"pseudo_potential": {"header": {"number_of_proj": 2, "core_correction": true, "element": "Si", "pseudo_type": "NC", "z_valence": 4.0, "mesh_size": 4, "is_ultrasoft": false, "number_of_wfc": 1, "spin_orbit": false, "original_upf_file": "x.UPF"}, "radial_grid": [0.0, 0.001, 0.002, 0.003], "core_charge_density": [1.0, 2.0, 3.0, 4.0], "local_potential": [-0.5, -1.0, -1.5, -2.0], "beta_projectors": [{"radial_function": [0.1, 0.2, 0.3], "label": "3S", "angular_momentum": 0}, {"radial_function": [0.5], "angular_momentum": 1}], "D_ion": [0.5, 0.0, 0.0, 1.5], "atomic_wave_functions": [{"radial_function": [0.5, 0.25, 0.125, 0.0625], "angular_momentum": 0, "occupation": 2.0}], "total_charge_density": [0.0, 0.1, 0.2, 0.3]}}"#;
        assert_eq!(upf_to_json(UPF2, "x.UPF").unwrap().dumps(), expected);
    }

    const UPF1: &str = "  <PP_INFO>
  </PP_INFO>
  <PP_HEADER>
   0                   Version Number
  Si                   Element
   NC                  Norm - Conserving pseudopotential
    F                  Nonlinear Core Correction
 SLA  PW   PBE  PBE     PBE  Exchange-Correlation functional
    4.00000000000      Z valence
   -7.47480832320      Total energy
    0.0000000    0.0000000 Suggested cutoff for wfc and rho
    1                  Max angular momentum component
    3                  Number of points in mesh
    1    1             Number of Wavefunctions, Number of Projectors
 Wavefunctions         nl  l   occ
                       3S  0  2.00
  </PP_HEADER>
  <PP_MESH>
  <PP_R>
  1.0E-3 2.0E-3
  3.0E-3
  </PP_R>
  <PP_RAB>
  1 1 1
  </PP_RAB>
  </PP_MESH>
  <PP_LOCAL>
  -1.0 -2.0 -3.0
  </PP_LOCAL>
  <PP_NONLOCAL>
    <PP_BETA>
    1    0             Beta    L
     2
  0.5 0.25
    </PP_BETA>
    <PP_DIJ>
    1                  Number of nonzero Dij
    1    1  4.0
    </PP_DIJ>
  </PP_NONLOCAL>
  <PP_PSWFC>
3S    0  2.00          Wavefunction
  0.1 0.2 0.3
  </PP_PSWFC>
  <PP_RHOATOM>
  0.0 0.5 1.0
  </PP_RHOATOM>
";

    #[test]
    fn upf1_to_json_matches_converter() {
        let expected = r#"{"pseudo_potential": {"header": {"element": "Si", "pseudo_type": "NC", "core_correction": 0, "z_valence": 4.0, "l_max": 1, "mesh_size": 3, "number_of_wfc": 1, "number_of_proj": 1, "original_upf_file": "y.UPF"}, "radial_grid": [0.001, 0.002, 0.003], "local_potential": [-0.5, -1.0, -1.5], "beta_projectors": [{"label": "", "angular_momentum": 0, "radial_function": [0.5, 0.25], "cutoff_radius": 0.0, "ultrasoft_cutoff_radius": 0.0}], "D_ion": [2.0], "atomic_wave_functions": [{"label": "3S", "angular_momentum": 0, "occupation": 2.0, "radial_function": [0.1, 0.2, 0.3]}], "total_charge_density": [0.0, 0.5, 1.0]}}"#;
        assert_eq!(upf_to_json(UPF1, "y.UPF").unwrap().dumps(), expected);
    }

    #[test]
    fn python_number_parsing() {
        assert_eq!(py_float("1.0E-3").unwrap(), 1e-3);
        assert_eq!(py_float("-inf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(py_float("1_0.5").unwrap(), 10.5);
        assert!(py_float("1.0D+00").is_err());
        assert_eq!(py_int(" 42\n").unwrap(), 42);
        assert!(py_int("4.0").is_err());
        assert_eq!(py_prefix(&[1, 2, 3], -1), vec![1, 2]);
        assert_eq!(py_prefix(&[1, 2, 3], 0), Vec::<i32>::new());
        assert_eq!(py_prefix(&[1, 2, 3], 9), vec![1, 2, 3]);
    }

    const UPF2_SO_US_PAW: &str = r#"<UPF version="2.0.1">
  <PP_INFO>x</PP_INFO>
  <PP_HEADER element="Fe" pseudo_type="PAW" is_ultrasoft="T" core_correction="F" z_valence="8.0"
     mesh_size="3" number_of_wfc="2" number_of_proj="2" has_so="T"/>
  <PP_MESH>
    <PP_R size="3">0.1 0.2 0.3</PP_R>
  </PP_MESH>
  <PP_LOCAL size="3">-1.0 -2.0 -3.0</PP_LOCAL>
  <PP_NONLOCAL>
    <PP_BETA.1 angular_momentum="0" label="4S">0.1 0.2 0.0</PP_BETA.1>
    <PP_BETA.2 angular_momentum="1" cutoff_radius_index="2">0.5 0.6 0.7</PP_BETA.2>
    <PP_DIJ>1.0 0.0 0.0 3.0</PP_DIJ>
    <PP_AUGMENTATION q_with_l="T" cutoff_r_index="2">
      <PP_Q>0.1 0.2 0.3 0.4</PP_Q>
      <PP_MULTIPOLES>1 2 3</PP_MULTIPOLES>
      <PP_QIJL.1.1.0 angular_momentum="0">1 2 3</PP_QIJL.1.1.0>
      <PP_QIJL.1.2.1 angular_momentum="1">4 5 6</PP_QIJL.1.2.1>
      <PP_QIJL.2.2.0 angular_momentum="0">7 8 9</PP_QIJL.2.2.0>
      <PP_QIJL.2.2.2 angular_momentum="2">10 11 12</PP_QIJL.2.2.2>
    </PP_AUGMENTATION>
  </PP_NONLOCAL>
  <PP_PSWFC>
    <PP_CHI.1 l="0" occupation="2.00">0.5 0.25 0.125</PP_CHI.1>
    <PP_CHI.2 l="1" occupation="1.50">0.4 0.3 0.2</PP_CHI.2>
  </PP_PSWFC>
  <PP_FULL_WFC>
    <PP_AEWFC.1 l="0">1 1 1</PP_AEWFC.1>
    <PP_AEWFC.2 l="1">2 2 2</PP_AEWFC.2>
    <PP_PSWFC.1 l="0">3 3 3</PP_PSWFC.1>
    <PP_PSWFC.2 l="1">4 4 4</PP_PSWFC.2>
  </PP_FULL_WFC>
  <PP_PAW core_energy="-10.5">
    <PP_OCCUPATIONS size="2">2 1</PP_OCCUPATIONS>
    <PP_AE_NLCC size="3">0.1 0.2 0.3</PP_AE_NLCC>
    <PP_AE_VLOC>-4 -5 -6</PP_AE_VLOC>
  </PP_PAW>
  <PP_SPIN_ORB>
    <PP_RELWFC.1 jchi="0.5"/>
    <PP_RELWFC.2 jchi="1.5"/>
    <PP_RELBETA.1 lll="0" jjj="0.5"/>
    <PP_RELBETA.2 lll="1" jjj="1.5"/>
  </PP_SPIN_ORB>
  <PP_RHOATOM size="3">0.0 0.1 0.2</PP_RHOATOM>
</UPF>
"#;

    const UPF1_US: &str = "  <PP_INFO>
  </PP_INFO>
  <PP_HEADER>
   0                   Version Number
  Fe                   Element
   US                  Ultrasoft
    T                  Nonlinear Core Correction
 SLA  PW   PBE  PBE     PBE  Exchange-Correlation functional
    8.00000000000      Z valence
   -7.47480832320      Total energy
    0.0000000    0.0000000 Suggested cutoff for wfc and rho
    1                  Max angular momentum component
    3                  Number of points in mesh
    2    2             Number of Wavefunctions, Number of Projectors
  </PP_HEADER>
  <PP_MESH>
  <PP_R>
  0.5 1.0 1.5
  </PP_R>
  <PP_RAB>
  1 1 1
  </PP_RAB>
  </PP_MESH>
  <PP_NLCC>
  0.3 0.2 0.1
  </PP_NLCC>
  <PP_LOCAL>
  -1.0 -2.0 -3.0
  </PP_LOCAL>
  <PP_NONLOCAL>
    <PP_BETA>
    1    0             Beta    L
     2
  0.5 0.25
    </PP_BETA>
    <PP_BETA>
    2    1             Beta    L
     3
  0.1 0.2 0.3
    </PP_BETA>
    <PP_DIJ>
    3                  Number of nonzero Dij
    1    1  4.0
    1    2  1.0
    2    2  2.0
    </PP_DIJ>
    <PP_QIJ>
    2     nqf
    <PP_RINNER>
    1  1.2
    2  0.8
    3  2.0
    </PP_RINNER>
    1  1  0   i  j  (l(j))
    0.1 Q_int
    1 2 3
    <PP_QFCOEF>
    0.1 0.2 0.3 0.4 0.5 0.6
    </PP_QFCOEF>
    1  2  1   i  j  (l(j))
    0.2 Q_int
    4 5 6
    <PP_QFCOEF>
    1 2 3 4 5 6
    </PP_QFCOEF>
    2  2  1   i  j  (l(j))
    0.3 Q_int
    7 8 9
    <PP_QFCOEF>
    -1 -2 -3 -4 -5 -6
    </PP_QFCOEF>
    </PP_QIJ>
  </PP_NONLOCAL>
  <PP_PSWFC>
4S    0  2.00          Wavefunction
  0.1 0.2 0.3
4P    1  1.00          Wavefunction
  0.4 0.5 0.6
  </PP_PSWFC>
  <PP_RHOATOM>
  0.0 0.5 1.0
  </PP_RHOATOM>
";

    /// The answer (JSON or error message) to each file above, to every prefix of whole lines of
    /// it and to it with any one line removed: every error names a section or a line, and the
    /// answers, hashed, are those recorded when the messages were written (a regression guard
    /// for the section readers).
    #[test]
    fn truncated_and_damaged_files_answer_as_recorded() {
        use sha2::{Digest, Sha256};
        let us = UPF2_SO_US_PAW.replace("pseudo_type=\"PAW\"", "pseudo_type=\"US\"");
        let no_so = UPF2_SO_US_PAW.replace("has_so=\"T\"", "has_so=\"F\"");
        let q_without_l = UPF2_SO_US_PAW.replace("q_with_l=\"T\"", "q_with_l=\"F\"");
        let bad_size = UPF2_SO_US_PAW.replace("size=\"2\">2 1", "size=\"3\">2 1");
        let nqf_0 = UPF1_US.replace("    2     nqf", "    0     nqf");
        let no_nlcc = UPF2.replace("core_correction=\"T\"", "core_correction=\"F\"");
        let inputs: [&str; 10] =
            [UPF2, UPF1, UPF2_SO_US_PAW, UPF1_US, &us, &no_so, &q_without_l, &bad_size, &nqf_0, &no_nlcc];
        let answer = |text: &str| upf_to_json(text, "f.UPF").map(|p| p.dumps()).map_err(|e| e.to_string());
        assert!(answer(UPF2_SO_US_PAW).unwrap().contains("\"paw_core_energy\": -5.25"));
        assert!(answer(UPF1_US).unwrap().contains("\"augmentation\": [{"));
        let mut h = Sha256::new();
        for (k, text) in inputs.iter().enumerate() {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for cut in 0..=lines.len() {
                let a = answer(&lines[..cut].concat());
                if let Err(e) = &a {
                    assert!(e.contains("line ") || e.contains("PP_"), "{k}/{cut}: {e}");
                }
                h.update(format!("{k}/{cut}: {a:?}\n"));
                let mut without = lines.clone();
                if cut < lines.len() {
                    without.remove(cut);
                }
                let a = answer(&without.concat());
                if let Err(e) = &a {
                    assert!(e.contains("line ") || e.contains("PP_"), "{k}/-{cut}: {e}");
                }
                h.update(format!("{k}/-{cut}: {a:?}\n"));
            }
        }
        assert_eq!(format!("{:x}", h.finalize()), "1c9ee2acfcfe8c1647c808c1f69cf993ac1b0ef311c624e167076f94757ca441");
    }
}
